// Package health checks real servers, as keepalived's checkers do for IPVS:
// each target is probed on its own schedule (TCP connect, HTTP or HTTPS GET,
// or a UDP request and reply), and after Fall consecutive failed probes it
// is reported down, after Rise consecutive successful ones up again.
//
// The package only observes: what a down server means (quiescing it,
// dropping its connections) is the caller's business, done in the callback
// it gives NewMonitor. It knows nothing of the configuration file either.
package health

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Kinds of check.
const (
	KindTCP   = "tcp"   // connect, then close
	KindHTTP  = "http"  // GET, compare the status (and the body)
	KindHTTPS = "https" // the same over TLS
	KindUDP   = "udp"   // send a datagram, wait for a reply
)

// Defaults for the zero values of a Spec. They match the configuration
// file's, so a Spec filled from it means the same with or without them.
const (
	DefaultInterval     = 2 * time.Second
	DefaultTimeout      = time.Second // or Interval/2, whichever is shorter
	DefaultRise         = 2
	DefaultFall         = 3
	DefaultPath         = "/"
	DefaultExpectStatus = 200
	DefaultSend         = "xvs-health"
)

// MaxBody bounds how much of an HTTP response is searched for
// Spec.ExpectBody: a health page that needs more is not one.
const MaxBody = 64 << 10

// maxDatagram is the largest UDP payload IPv4 can carry.
const maxDatagram = 65507

// Spec is how to check one target. Zero fields take the defaults above.
type Spec struct {
	Kind     string        // KindTCP, KindHTTP, KindHTTPS or KindUDP
	Interval time.Duration // from the start of one probe to the next
	Timeout  time.Duration // bound on one probe; below Interval
	Rise     int           // consecutive successes that bring a down target up
	Fall     int           // consecutive failures that take an up target down

	// HTTP and HTTPS.
	Path         string // absolute path, may carry a query
	Host         string // Host header (and TLS server name); "" = the address
	ExpectBody   string // the body's first MaxBody bytes must contain it; "" = any
	ExpectStatus int    // exact status; redirects are not followed
	Insecure     bool   // HTTPS: do not verify the server's certificate

	// UDP.
	Send   []byte // the request
	Expect []byte // the reply must contain it; nil = any reply

	// StartDown makes a new target start down, to come up after Rise
	// successful probes, rather than up, to go down after Fall failed ones.
	StartDown bool
}

func (s Spec) withDefaults() Spec {
	if s.Interval == 0 {
		s.Interval = DefaultInterval
	}
	if s.Timeout == 0 {
		s.Timeout = min(DefaultTimeout, s.Interval/2)
	}
	if s.Rise == 0 {
		s.Rise = DefaultRise
	}
	if s.Fall == 0 {
		s.Fall = DefaultFall
	}
	switch s.Kind {
	case KindHTTP, KindHTTPS:
		if s.Path == "" {
			s.Path = DefaultPath
		}
		if s.ExpectStatus == 0 {
			s.ExpectStatus = DefaultExpectStatus
		}
	case KindUDP:
		if len(s.Send) == 0 {
			s.Send = []byte(DefaultSend)
		}
	}
	return s
}

// Validate reports whether s, with its zero fields defaulted, describes a
// check that can run.
func (s Spec) Validate() error {
	s = s.withDefaults()
	var errs []error
	switch s.Kind {
	case KindTCP, KindHTTP, KindHTTPS, KindUDP:
	default:
		errs = append(errs, fmt.Errorf("unknown kind %q (want tcp, http, https or udp)", s.Kind))
	}
	if s.Interval < 0 {
		errs = append(errs, fmt.Errorf("interval %v is negative", s.Interval))
	}
	if s.Timeout <= 0 || s.Timeout >= s.Interval {
		errs = append(errs, fmt.Errorf("timeout %v is not in (0, interval %v)", s.Timeout, s.Interval))
	}
	if s.Rise < 1 || s.Fall < 1 {
		errs = append(errs, fmt.Errorf("rise %d and fall %d must be at least 1", s.Rise, s.Fall))
	}
	if s.Kind == KindHTTP || s.Kind == KindHTTPS {
		if _, err := requestPath(s.Path); err != nil {
			errs = append(errs, err)
		}
		if s.ExpectStatus < 100 || s.ExpectStatus > 599 {
			errs = append(errs, fmt.Errorf("expected status %d is not in 100..599", s.ExpectStatus))
		}
		if strings.ContainsFunc(s.Host, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' }) {
			errs = append(errs, fmt.Errorf("host %q contains white space, control characters or '/'", s.Host))
		}
	}
	if s.Kind == KindUDP && len(s.Send) > maxDatagram {
		errs = append(errs, fmt.Errorf("request of %d bytes exceeds a datagram's %d", len(s.Send), maxDatagram))
	}
	return errors.Join(errs...)
}

// requestPath parses an HTTP check's path, which is what follows the host
// in a URL.
func requestPath(p string) (*url.URL, error) {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return nil, fmt.Errorf("path %q does not start with a single /", p)
	}
	if strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("path %q contains white space or control characters", p)
	}
	u, err := url.ParseRequestURI(p)
	if err != nil {
		return nil, fmt.Errorf("path %q: %w", p, err)
	}
	return u, nil
}

func (s Spec) equal(o Spec) bool {
	return s.Kind == o.Kind && s.Interval == o.Interval && s.Timeout == o.Timeout &&
		s.Rise == o.Rise && s.Fall == o.Fall && s.Path == o.Path && s.Host == o.Host &&
		s.ExpectBody == o.ExpectBody && s.ExpectStatus == o.ExpectStatus && s.Insecure == o.Insecure &&
		bytes.Equal(s.Send, o.Send) && bytes.Equal(s.Expect, o.Expect) && s.StartDown == o.StartDown
}

// counter applies keepalived's rise and fall: a target changes state only
// after a run of results that contradict it, and any result that agrees
// with the state ends the run.
type counter struct {
	up  bool
	run int // consecutive results against up
}

// observe records one probe's result and reports whether the state flipped.
func (c *counter) observe(ok bool, rise, fall int) bool {
	if ok == c.up {
		c.run = 0
		return false
	}
	c.run++
	need := fall
	if !c.up {
		need = rise
	}
	if c.run < need {
		return false
	}
	c.up, c.run = ok, 0
	return true
}
