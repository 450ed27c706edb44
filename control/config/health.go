package config

import (
	"math"
	"slices"
	"strings"
	"time"
)

// A [service.health] (or [group.health]) table checks each real server of
// its service, as keepalived's checkers do:
//
//	[service.health]
//	check = "http"          # tcp, http, https, udp or none
//	interval = "2s"
//	timeout = "1s"          # below interval
//	rise = 2                # consecutive successes that bring a server up
//	fall = 3                # consecutive failures that take it down
//	port = 8080             # default: each real server's port
//	path = "/healthz"       # http(s)
//	expect_status = 200     # http(s)
//	expect_body = "ok"      # http(s)
//	host = "example.org"    # http(s)
//	insecure = true         # https
//	send = "ping"           # udp
//	expect = "pong"         # udp
//	on_failure = "quiesce"  # or reset
//	initial = "up"          # or down
//
// A server that is down is made quiescent (weight 0) rather than removed,
// which is what keepalived's inhibit_on_failure does: its connections
// drain, or with on_failure = "reset" are dropped, as IPVS's
// expire_nodest_conn does.
//
// New servers start up, as in keepalived without alpha, so that a director
// starting or reloading does not take a whole service out of rotation for
// rise intervals; initial = "down" is keepalived's alpha, for servers that
// must prove themselves first.

// Values of HealthCheck.Check.
const (
	HealthTCP   = "tcp"   // connect, then close
	HealthHTTP  = "http"  // GET path; compare status (and body)
	HealthHTTPS = "https" // the same over TLS
	HealthUDP   = "udp"   // send, wait for a reply
	// HealthNone turns checking off. Its table's other keys are still
	// validated but then ignored, so that a check can be switched off
	// and on by editing one line.
	HealthNone = "none"
)

// Values of HealthCheck.OnFailure.
const (
	OnFailureQuiesce = "quiesce" // weight 0: existing connections drain
	OnFailureReset   = "reset"   // weight 0 and existing connections dropped
)

// Values of HealthCheck.Initial.
const (
	InitialUp   = "up"
	InitialDown = "down"
)

// Defaults of a health table.
const (
	DefaultHealthInterval     = 2 * time.Second
	DefaultHealthTimeout      = time.Second // or half the interval, if shorter
	DefaultHealthRise         = 2
	DefaultHealthFall         = 3
	DefaultHealthPath         = "/"
	DefaultHealthExpectStatus = 200
	DefaultHealthInsecure     = true // real servers often have self-signed certificates
	DefaultHealthSend         = "xvs-health"
	DefaultHealthOnFailure    = OnFailureQuiesce
	DefaultHealthInitial      = InitialUp
)

// Bounds of a health table's values.
const (
	minHealthInterval = 100 * time.Millisecond
	maxHealthInterval = time.Hour
	minHealthTimeout  = 10 * time.Millisecond
	maxRiseFall       = 100
	maxHealthSend     = 65507 // the largest UDP payload over IPv4
)

// HealthCheck is how a service's real servers are checked. Fields that do
// not apply to Check are zero.
type HealthCheck struct {
	Check    string        // HealthTCP, HealthHTTP, HealthHTTPS or HealthUDP
	Interval time.Duration // between probes of one server
	Timeout  time.Duration // bound on one probe, below Interval
	Rise     int           // consecutive successes that bring a down server up
	Fall     int           // consecutive failures that take an up server down
	// Port is where probes go; 0 = each real server's own port.
	Port uint16
	// HTTP and HTTPS.
	Path         string // with its query, if any
	ExpectStatus int    // exact; redirects are not followed
	ExpectBody   string // the body must contain it; "" = any body
	Host         string // Host header; "" = the real server's address
	Insecure     bool   // HTTPS: do not verify the server's certificate
	// UDP.
	Send   string // the request
	Expect string // the reply must contain it; "" = any reply
	// OnFailure is what happens to a server that goes down:
	// OnFailureQuiesce or OnFailureReset.
	OnFailure string
	// Initial is a new server's state until checks change it: InitialUp
	// or InitialDown.
	Initial string
	Line    int // line of the health table in Config.Source
}

// healthKinds lists the checks a key applies to; nil for the keys every
// check takes.
func healthKinds(key string) []string {
	switch key {
	case "path", "expect_status", "expect_body", "host":
		return []string{HealthHTTP, HealthHTTPS}
	case "insecure":
		return []string{HealthHTTPS}
	case "send", "expect":
		return []string{HealthUDP}
	}
	return nil
}

// healthChecks decodes the health tables of [[service]]s or [[group]]s:
// ts[i] is the table services[i] was decoded from.
func (d *decoder) healthChecks(ts []*tomlTable, services []Service) {
	for i, t := range ts {
		if i >= len(services) {
			return
		}
		ht, ok := t.sub("health", keysOf("service.health")...)
		if ok {
			services[i].Health = d.health(ht, &services[i])
		}
	}
}

// health decodes the health table of s; nil when checks are off.
func (d *decoder) health(t *tomlTable, s *Service) *HealthCheck {
	h := &HealthCheck{
		Interval:  DefaultHealthInterval,
		Rise:      DefaultHealthRise,
		Fall:      DefaultHealthFall,
		OnFailure: DefaultHealthOnFailure,
		Initial:   DefaultHealthInitial,
		Line:      d.lines.lineOf(t.path),
	}
	t.require("check")
	check, checkOK := t.enum("check", HealthTCP, HealthHTTP, HealthHTTPS, HealthUDP, HealthNone)
	h.Check = check

	intervalOK := !t.has("interval")
	if v, ok := t.span("interval", minHealthInterval, maxHealthInterval); ok {
		h.Interval, intervalOK = v, true
	}
	h.Timeout = min(DefaultHealthTimeout, h.Interval/2)
	if v, ok := t.span("timeout", minHealthTimeout, maxHealthInterval); ok {
		h.Timeout = v
		if intervalOK && v >= h.Interval {
			t.errorf("timeout", "%v is not shorter than the interval, %v", v, h.Interval)
		}
	}
	if n, ok := t.integer("rise", 1, maxRiseFall); ok {
		h.Rise = int(n)
	}
	if n, ok := t.integer("fall", 1, maxRiseFall); ok {
		h.Fall = int(n)
	}
	if n, ok := t.integer("port", 1, math.MaxUint16); ok {
		h.Port = uint16(n)
	}

	if str, ok := t.str("path"); ok {
		if msg := checkHealthPath(str); msg != "" {
			t.errorf("path", "%q %s", str, msg)
		}
		h.Path = str
	}
	if n, ok := t.integer("expect_status", 100, 599); ok {
		h.ExpectStatus = int(n)
	}
	h.ExpectBody = t.nonEmpty("expect_body")
	if str, ok := t.str("host"); ok {
		switch {
		case str == "":
			t.errorf("host", "empty: leave it out to send the real server's address")
		case strings.ContainsFunc(str, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' }):
			t.errorf("host", "%q contains white space, control characters or '/'", str)
		}
		h.Host = str
	}
	insecure, insecureSet := t.boolean("insecure")
	h.Send = t.nonEmpty("send")
	if len(h.Send) > maxHealthSend {
		t.errorf("send", "%d bytes do not fit in a datagram (at most %d)", len(h.Send), maxHealthSend)
	}
	h.Expect = t.nonEmpty("expect")
	if str, ok := t.enum("on_failure", OnFailureQuiesce, OnFailureReset); ok {
		h.OnFailure = str
	}
	if str, ok := t.enum("initial", InitialUp, InitialDown); ok {
		h.Initial = str
	}
	t.done()
	if !checkOK || check == HealthNone {
		return nil
	}

	for _, key := range []string{"path", "expect_status", "expect_body", "host", "insecure", "send", "expect"} {
		if kinds := healthKinds(key); t.has(key) && !slices.Contains(kinds, check) {
			t.errorf(key, "applies to check %s only, not %s", strings.Join(kinds, " and "), check)
		}
	}
	switch check {
	case HealthHTTP, HealthHTTPS:
		if h.Path == "" {
			h.Path = DefaultHealthPath
		}
		if h.ExpectStatus == 0 {
			h.ExpectStatus = DefaultHealthExpectStatus
		}
		if check == HealthHTTPS {
			h.Insecure = DefaultHealthInsecure
			if insecureSet {
				h.Insecure = insecure
			}
		}
	case HealthUDP:
		if h.Send == "" {
			h.Send = DefaultHealthSend
		}
	}
	// A group's real server without a port takes each packet's port: a
	// check needs one.
	if !t.has("port") {
		for _, r := range s.Reals {
			if r.Port == 0 {
				t.errorf("", "%s is missing port: the real server at line %d has none", t.name, r.Line)
				break
			}
		}
	}
	return h
}

// checkHealthPath checks an HTTP check's path, what follows the host in its
// URL.
func checkHealthPath(p string) string {
	switch {
	case !strings.HasPrefix(p, "/"):
		return "does not start with /"
	case strings.HasPrefix(p, "//"):
		return "starts with //, which would name a host"
	case strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return "contains white space or control characters"
	case strings.Contains(p, "#"):
		return "contains a fragment (#), which is never sent"
	}
	return ""
}
