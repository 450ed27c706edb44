package keepalived

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/sched"
)

// Options steer a conversion.
type Options struct {
	// Interfaces are the director's; nil: the interfaces keepalived's
	// VRRP instances name, else eth0 (reported).
	Interfaces []string
	// Key is [failover]'s shared secret (16 bytes or more); "": derived
	// from the instances' auth_pass, so that converting both directors'
	// files gives both the same key.
	Key string
	// ConfigID is keepalived's -i: which conditional lines (@ID) to read.
	ConfigID string
}

// Message is something of the keepalived configuration that xvs's has no
// equivalent for, or that changed on the way.
type Message struct {
	Pos  Pos
	Text string
}

func (m Message) String() string { return m.Pos.String() + ": " + m.Text }

// Result is a conversion: the configuration file and what it could not
// carry over.
type Result struct {
	TOML     []byte
	Messages []Message
}

// Defaults of keepalived's checkers (keepalived.conf(5)).
const (
	kaDelayLoop      = 60 * time.Second
	kaConnectTimeout = 5 * time.Second
	kaRetry          = 1
	kaDNSRetry       = 3
	kaPersistence    = 360 * time.Second
	kaAdvertInt      = time.Second
	kaPriority       = 100
	// failoverPort is where [failover]'s heartbeats go: keepalived's VRRP
	// is an IP protocol of its own, with no port to carry over.
	failoverPort = 8849
)

// Convert reads the keepalived configuration at path (and what it
// includes) and writes xvs's equivalent. Only a configuration keepalived
// could not read either is an error (a *SyntaxError); everything without an
// equivalent is in Result.Messages with its file and line, never dropped
// unsaid. The configuration written is checked with xvsd's own rules
// (config.Parse) before it is returned.
func Convert(path string, opts Options) (*Result, error) {
	c := &converter{opts: opts, groups: map[string]*node{}}
	p := &parser{opts: opts, report: c.report, defs: map[string]string{}}
	nodes, err := p.parseFile(path)
	if err != nil {
		return nil, err
	}
	c.file = path
	c.convert(nodes)
	out := c.write()
	if _, err := config.Parse(path+" (converted)", out); err != nil {
		return nil, fmt.Errorf("the configuration converted from %s does not validate (an importer bug; please report it): %w", path, err)
	}
	// In the order of the files as read, by line within each.
	order := map[string]int{}
	for _, m := range c.msgs {
		if _, ok := order[m.Pos.File]; !ok {
			order[m.Pos.File] = len(order)
		}
	}
	sort.SliceStable(c.msgs, func(i, j int) bool {
		a, b := c.msgs[i].Pos, c.msgs[j].Pos
		if a.File != b.File {
			return order[a.File] < order[b.File]
		}
		return a.Line < b.Line
	})
	return &Result{TOML: out, Messages: c.msgs}, nil
}

type converter struct {
	opts   Options
	file   string
	msgs   []Message
	groups map[string]*node // virtual_server_group by name

	interfaces []string
	firstVS    *Pos // the first virtual server, where a missing interface is reported
	services   []*service
	failover   *failoverOut
	seen       map[string]Pos // services by identity, for duplicates
	groupNames map[string]bool
}

func (c *converter) report(pos Pos, format string, args ...any) {
	c.msgs = append(c.msgs, Message{Pos: pos, Text: fmt.Sprintf(format, args...)})
}

// unsupported reports a keyword line (or block) that xvs has no
// equivalent for.
func (c *converter) unsupported(n *node, why string) {
	what := n.Key
	if n.Block {
		what += " { ... }"
	}
	c.report(n.Pos, "%s: not supported (%s); ignored", what, why)
}

// addInterface records an interface keepalived names, for [director];
// false when it is no interface name (an alias such as eth0:1).
func (c *converter) addInterface(pos Pos, name string) bool {
	if name == "" {
		return false
	}
	if len(name) > 15 || strings.ContainsAny(name, "/: \t") || name == "." || name == ".." {
		c.report(pos, "interface %s: not an interface name xvs can attach to (an alias?): not supported; ignored", name)
		return false
	}
	if !slices.Contains(c.interfaces, name) {
		c.interfaces = append(c.interfaces, name)
	}
	return true
}

// Top-level blocks xvs has nothing for, and why.
func topLevelWhy(key string) string {
	switch key {
	case "global_defs":
		return "global settings: e-mail alerts, router ids, scripts' users, SNMP and the like; xvs logs and serves metrics"
	case "vrrp_script", "vrrp_track_process", "track_file", "vrrp_track_file":
		return "tracking scripts, processes and files: xvs's failover follows the peer's heartbeats only"
	case "static_ipaddress", "static_routes", "static_rules", "linkbeat_interfaces":
		return "xvs sets no addresses, routes or rules outside [failover]"
	case "vrrp_sync_group":
		return "xvs's [failover] moves every floating address together: its instances are one group already; notify scripts do not run"
	case "bfd_instance":
		return "BFD"
	case "net_namespace", "instance", "use_pid_dir", "child_wait_time":
		return "process settings of keepalived's"
	}
	return "a keyword the importer does not know"
}

func (c *converter) convert(nodes []*node) {
	c.seen = map[string]Pos{}
	c.groupNames = map[string]bool{}
	for _, n := range nodes {
		if n.Key == "virtual_server_group" {
			if len(n.Args) != 1 {
				c.report(n.Pos, "virtual_server_group: want one name, not %d words: not supported; ignored", len(n.Args))
				continue
			}
			c.groups[n.Args[0]] = n
		}
	}
	for _, n := range nodes {
		switch n.Key {
		case "virtual_server_group":
			// Read where a virtual server uses it; unused, it does
			// nothing in keepalived either.
		case "virtual_server":
			c.virtualServer(n)
		case "vrrp_instance":
			c.vrrpInstance(n)
		default:
			c.unsupported(n, topLevelWhy(n.Key))
		}
	}
}

// ---- virtual servers

type service struct {
	pos        Pos
	group      string  // name, for a [[group]]
	mark       uint32  // fwmark: the group cannot be written (no matches known)
	matches    []match // group
	vip        netip.Addr
	port       uint16
	proto      string
	scheduler  string
	flags      []string
	persist    time.Duration
	netmask    string
	reals      []real
	health     *check
	healthFrom Pos // the real server whose check the service's is
}

type match struct {
	vip      netip.Addr
	from, to uint16
}

type real struct {
	pos          Pos
	addr         netip.Addr
	port         uint16 // 0: keep each packet's (groups)
	weight       int
	method       string
	upper, lower int
}

// check is a real server's checker in xvs's terms.
type check struct {
	kind         string
	interval     time.Duration
	timeout      time.Duration
	rise, fall   int
	port         uint16
	path         string
	status       int
	body         string
	host         string
	send, expect string
	initial      string
	pos          Pos
}

// same reports whether two real servers are checked alike.
func (a *check) same(b *check) bool {
	x, y := *a, *b
	x.pos, y.pos = Pos{}, Pos{}
	return x == y
}

// vsDefaults are a virtual server's settings that its real servers and
// checkers inherit.
type vsDefaults struct {
	delayLoop, connectTimeout, delayBeforeRetry time.Duration
	retry                                       int
	retrySet, delaySet                          bool
	alpha                                       bool
	host                                        string
	method                                      string
}

func (c *converter) virtualServer(n *node) {
	s := &service{pos: n.Pos, proto: "tcp", scheduler: config.DefaultScheduler}
	if c.firstVS == nil {
		c.firstVS = &n.Pos
	}
	def := vsDefaults{delayLoop: kaDelayLoop, connectTimeout: kaConnectTimeout, retry: -1, method: "nat"}
	var realNodes []*node
	var groupNode *node
	switch {
	case len(n.Args) == 2 && n.Args[0] == "fwmark":
		m, err := strconv.ParseUint(n.Args[1], 10, 32)
		if err != nil || m == 0 {
			c.report(n.Pos, "virtual_server fwmark %s: not a mark: not supported; ignored", n.Args[1])
			return
		}
		s.mark = uint32(m)
	case len(n.Args) == 2 && n.Args[0] == "group":
		g, ok := c.groups[n.Args[1]]
		if !ok {
			c.report(n.Pos, "virtual_server group %s: no virtual_server_group of that name: not supported; ignored", n.Args[1])
			return
		}
		groupNode, s.group = g, n.Args[1]
	case len(n.Args) == 1 || len(n.Args) == 2:
		a, err := netip.ParseAddr(n.Args[0])
		if err != nil {
			c.report(n.Pos, "virtual_server %s: not a numeric address (xvs resolves no names): not supported; ignored", n.Args[0])
			return
		}
		s.vip = a.Unmap()
		if len(n.Args) == 2 {
			p, err := strconv.ParseUint(n.Args[1], 10, 16)
			if err != nil {
				c.report(n.Pos, "virtual_server %s %s: not a numeric port: not supported; ignored", n.Args[0], n.Args[1])
				return
			}
			s.port = uint16(p)
		}
	default:
		c.report(n.Pos, "virtual_server %s: not supported (want an address and port, fwmark N or group NAME); ignored", strings.Join(n.Args, " "))
		return
	}
	for _, k := range n.Children {
		switch k.Key {
		case "delay_loop":
			def.delayLoop = c.timer(k, def.delayLoop)
		case "lb_algo", "lvs_sched":
			if len(k.Args) == 1 && slices.Contains(sched.Names(), k.Args[0]) {
				s.scheduler = k.Args[0]
			} else {
				c.report(k.Pos, "%s %s: not a scheduler xvs has: not supported; wlc instead", k.Key, strings.Join(k.Args, " "))
				s.scheduler = config.DefaultScheduler
			}
		case "lb_kind", "lvs_method":
			if m, ok := c.method(k); ok {
				def.method = m
			}
		case "persistence_timeout":
			s.persist = kaPersistence
			if len(k.Args) > 0 {
				s.persist = c.timer(k, kaPersistence)
			}
		case "persistence_granularity":
			if len(k.Args) == 1 {
				s.netmask = k.Args[0]
			}
		case "protocol":
			switch strings.ToUpper(strings.Join(k.Args, "")) {
			case "TCP":
				s.proto = "tcp"
			case "UDP":
				s.proto = "udp"
			default:
				c.report(k.Pos, "protocol %s: not supported (xvs balances TCP and UDP); virtual server ignored", strings.Join(k.Args, " "))
				return
			}
		case "sh-port", "sh-fallback", "mh-port", "mh-fallback", "flag-1", "flag-2", "flag-3":
			s.flags = append(s.flags, k.Key)
		case "virtualhost":
			if len(k.Args) == 1 {
				def.host = k.Args[0]
			}
		case "alpha":
			def.alpha = boolArg(k)
		case "connect_timeout":
			def.connectTimeout = c.timer(k, def.connectTimeout)
		case "retry", "nb_get_retry":
			def.retry, def.retrySet = c.integer(k, def.retry), true
		case "delay_before_retry":
			def.delayBeforeRetry, def.delaySet = c.timer(k, 0), true
		case "inhibit_on_failure":
			// xvs always quiesces a failed server (weight 0) rather than
			// removing it: keepalived's inhibit_on_failure, for every server.
		case "real_server":
			realNodes = append(realNodes, k)
		case "sorry_server", "sorry_server_inhibit", "sorry_server_lvs_method":
			c.unsupported(k, "xvs has no sorry server: a service whose real servers are all down takes no connections")
		case "quorum", "hysteresis", "quorum_up", "quorum_down", "omega":
			c.unsupported(k, "xvs has no quorum or its scripts")
		case "ha_suspend":
			c.unsupported(k, "xvs checks whether or not it holds the VIP")
		case "ops":
			c.unsupported(k, "one-packet scheduling")
		case "persistence_engine":
			c.unsupported(k, "persistence engines")
		case "smtp_alert", "snmp_name", "warmup", "ip_family":
			c.unsupported(k, "xvs has no e-mail alerts, SNMP or random check warm-up")
		default:
			c.unsupported(k, "a virtual_server keyword the importer does not know")
		}
	}
	if s.netmask != "" && s.persist == 0 {
		c.report(n.Pos, "persistence_granularity without persistence_timeout: not supported (a mask only means something with persistence); ignored")
		s.netmask = ""
	}
	if s.scheduler != "" {
		s.flags = c.flags(n.Pos, s.scheduler, s.flags)
	}
	for _, rn := range realNodes {
		c.realServer(s, rn, &def)
	}
	switch {
	case s.mark != 0:
		c.report(n.Pos, "virtual_server fwmark %d: not supported as it stands: the packets are marked by firewall rules outside keepalived, which xvs does not read; the [[group]] is written commented out, for its match list (the VIPs, ports and protocol the mark stands for) to be filled in", s.mark)
	case groupNode != nil:
		c.groupMatches(s, groupNode)
		if len(s.matches) == 0 {
			c.report(n.Pos, "virtual_server group %s: no address of the group is left: not supported; ignored", s.group)
			return
		}
		name := s.group
		for i := 2; c.groupNames[name]; i++ {
			name = fmt.Sprintf("%s-%s%d", s.group, s.proto, i)
		}
		s.group = name
		c.groupNames[name] = true
	case s.port == 0:
		// IPVS's port-0 service takes every port of the VIP: a group of
		// one match over all ports.
		s.matches = []match{{vip: s.vip, from: 1, to: math.MaxUint16}}
		s.group = fmt.Sprintf("%s-%s-all-ports", s.vip, s.proto)
		if c.groupNames[s.group] {
			c.report(n.Pos, "virtual_server %s: a second service on every port of the VIP: not supported; ignored", s.vip)
			return
		}
		c.groupNames[s.group] = true
	default:
		id := fmt.Sprintf("%s %s", s.proto, netip.AddrPortFrom(s.vip, s.port))
		if first, dup := c.seen[id]; dup {
			c.report(n.Pos, "virtual_server %s: not supported: the same service as at %s; ignored", id, first)
			return
		}
		c.seen[id] = n.Pos
	}
	c.services = append(c.services, s)
}

// flags keeps the scheduler flags that s's scheduler takes.
func (c *converter) flags(pos Pos, scheduler string, flags []string) []string {
	var out []string
	for _, f := range flags {
		switch {
		case slices.Contains(out, f):
		case slices.Contains(sched.FlagsFor(scheduler), f):
			out = append(out, f)
		default:
			c.report(pos, "%s: a flag scheduler %s does not take: not supported; ignored", f, scheduler)
		}
	}
	return out
}

// groupMatches reads the virtual_server_group that s uses into matches.
func (c *converter) groupMatches(s *service, g *node) {
	for _, e := range g.Children {
		if e.Key == "fwmark" {
			c.report(e.Pos, "fwmark %s in a virtual_server_group: not supported (marks are set by firewall rules xvs does not read); ignored", strings.Join(e.Args, " "))
			continue
		}
		if e.Block || len(e.Args) > 1 {
			c.report(e.Pos, "%s: not an address [port] of a virtual_server_group: not supported; ignored", strings.Join(append([]string{e.Key}, e.Args...), " "))
			continue
		}
		addrs, err := addressRange(e.Key)
		if err != nil {
			c.report(e.Pos, "%s: %v: not supported; ignored", e.Key, err)
			continue
		}
		from, to := uint16(1), uint16(math.MaxUint16)
		if len(e.Args) == 1 {
			p, err := strconv.ParseUint(e.Args[0], 10, 16)
			if err != nil || p == 0 {
				c.report(e.Pos, "%s %s: not a numeric port: not supported; ignored", e.Key, e.Args[0])
				continue
			}
			from, to = uint16(p), uint16(p)
		}
		for _, a := range addrs {
			if len(s.matches) > 0 && a.Is4() != s.matches[0].vip.Is4() {
				c.report(e.Pos, "%s: an address of the other family than the group's first: not supported (a group is IPv4 or IPv6); ignored", a)
				break
			}
			if slices.ContainsFunc(s.matches, func(m match) bool { return m.vip == a && m.from <= to && from <= m.to }) {
				c.report(e.Pos, "%s: ports listed twice for this address: not supported; ignored", e.Key)
				break
			}
			s.matches = append(s.matches, match{vip: a, from: from, to: to})
		}
	}
}

// maxRange bounds the addresses one range of a virtual_server_group may
// expand to.
const maxRange = 256

// addressRange reads keepalived's address ranges: an address,
// 192.168.200.3-10 (the last part), 192.168.200.250-192.168.201.10, or a
// prefix 192.168.202.8/29.
func addressRange(s string) ([]netip.Addr, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		p = p.Masked()
		var out []netip.Addr
		for a := p.Addr(); p.Contains(a); a = a.Next() {
			if len(out) == maxRange {
				return nil, fmt.Errorf("more than %d addresses", maxRange)
			}
			out = append(out, a)
		}
		return out, nil
	}
	lo, hiStr, isRange := strings.Cut(s, "-")
	first, err := netip.ParseAddr(lo)
	if err != nil {
		return nil, errors.New("not a numeric address or range")
	}
	first = first.Unmap()
	if !isRange {
		return []netip.Addr{first}, nil
	}
	last, err := netip.ParseAddr(hiStr)
	if err != nil {
		// Only the last part: a decimal octet or a hex group.
		base, n := 10, 8
		if first.Is6() {
			base, n = 16, 16
		}
		v, perr := strconv.ParseUint(hiStr, base, n)
		if perr != nil {
			return nil, errors.New("not a numeric address range")
		}
		b := first.AsSlice()
		if first.Is6() {
			b[14], b[15] = byte(v>>8), byte(v)
		} else {
			b[3] = byte(v)
		}
		last, _ = netip.AddrFromSlice(b)
	}
	if last.Is4() != first.Is4() || last.Less(first) {
		return nil, errors.New("the range ends before it starts")
	}
	var out []netip.Addr
	for a := first; ; a = a.Next() {
		if len(out) == maxRange {
			return nil, fmt.Errorf("more than %d addresses", maxRange)
		}
		out = append(out, a)
		if a == last {
			return out, nil
		}
	}
}

// method reads lb_kind / lvs_method.
func (c *converter) method(k *node) (string, bool) {
	if len(k.Args) == 0 {
		return "", false
	}
	m := map[string]string{"NAT": "nat", "DR": "dr", "TUN": "tun"}[strings.ToUpper(k.Args[0])]
	switch {
	case m == "":
		c.report(k.Pos, "%s %s: not supported (xvs forwards by NAT, DR or TUN); NAT instead", k.Key, k.Args[0])
		return "nat", true
	case len(k.Args) > 1 && !(m == "tun" && len(k.Args) == 3 && k.Args[1] == "type" && k.Args[2] == "ipip"):
		c.report(k.Pos, "%s %s: not supported (xvs tunnels by IPIP only, with checksums as the kernel's); %s without them", k.Key, strings.Join(k.Args, " "), k.Args[0])
	}
	return m, true
}

func (c *converter) realServer(s *service, n *node, vs *vsDefaults) {
	if len(n.Args) < 1 || len(n.Args) > 2 {
		c.report(n.Pos, "real_server %s: want an address and a port: not supported; ignored", strings.Join(n.Args, " "))
		return
	}
	a, err := netip.ParseAddr(n.Args[0])
	if err != nil {
		c.report(n.Pos, "real_server %s: not a numeric address: not supported; ignored", n.Args[0])
		return
	}
	r := real{pos: n.Pos, addr: a.Unmap(), weight: config.DefaultWeight, method: vs.method, port: s.port}
	if len(n.Args) == 2 {
		p, err := strconv.ParseUint(n.Args[1], 10, 16)
		if err != nil {
			c.report(n.Pos, "real_server %s %s: not a numeric port: not supported; ignored", n.Args[0], n.Args[1])
			return
		}
		r.port = uint16(p)
	}
	def := *vs
	var checks []*node
	for _, k := range n.Children {
		switch k.Key {
		case "weight":
			r.weight = min(max(c.integer(k, config.DefaultWeight), 0), sched.MaxWeight)
		case "lvs_method", "lb_kind":
			if m, ok := c.method(k); ok {
				r.method = m
			}
		case "uthreshold":
			r.upper = max(c.integer(k, 0), 0)
		case "lthreshold":
			r.lower = max(c.integer(k, 0), 0)
		case "inhibit_on_failure":
			// See the virtual server's: always so in xvs.
		case "alpha":
			def.alpha = boolArg(k)
		case "connect_timeout":
			def.connectTimeout = c.timer(k, def.connectTimeout)
		case "retry", "nb_get_retry":
			def.retry, def.retrySet = c.integer(k, def.retry), true
		case "delay_before_retry":
			def.delayBeforeRetry, def.delaySet = c.timer(k, 0), true
		case "delay_loop":
			def.delayLoop = c.timer(k, def.delayLoop)
		case "virtualhost":
			if len(k.Args) == 1 {
				def.host = k.Args[0]
			}
		case "TCP_CHECK", "HTTP_GET", "SSL_GET", "DNS_CHECK", "UDP_CHECK", "SMTP_CHECK", "MISC_CHECK", "PING_CHECK", "BFD_CHECK", "FILE_CHECK":
			checks = append(checks, k)
		case "notify_up", "notify_down":
			c.unsupported(k, "xvs runs no scripts; it logs every transition")
		case "smtp_alert", "snmp_name", "warmup":
			c.unsupported(k, "xvs has no e-mail alerts, SNMP or random check warm-up")
		default:
			c.unsupported(k, "a real_server keyword the importer does not know")
		}
	}
	if r.lower > 0 && r.upper == 0 {
		c.report(n.Pos, "lthreshold without uthreshold: not supported; ignored")
		r.lower = 0
	}
	if r.lower > r.upper {
		c.report(n.Pos, "lthreshold %d above uthreshold %d: not supported; ignored", r.lower, r.upper)
		r.lower = 0
	}
	if r.addr.Is4() != c.family(s) {
		c.report(n.Pos, "real_server %s: not of the virtual server's address family: not supported; ignored", r.addr)
		return
	}
	if s.vip.IsValid() && r.addr == s.vip {
		c.report(n.Pos, "real_server %s: the VIP itself: not supported; ignored", r.addr)
		return
	}
	switch {
	case s.group != "" || s.port == 0 || s.mark != 0:
		if r.method == "dr" || r.method == "tun" {
			r.port = 0 // each packet keeps its port
		}
	case (r.method == "dr" || r.method == "tun") && r.port != s.port:
		c.report(n.Pos, "real_server %s %d: %s cannot change the port (%d): not supported; the service's port instead", r.addr, r.port, strings.ToUpper(r.method), s.port)
		r.port = s.port
	}
	if slices.ContainsFunc(s.reals, func(x real) bool { return x.addr == r.addr && x.port == r.port }) {
		c.report(n.Pos, "real_server %s: listed twice: not supported; ignored", netip.AddrPortFrom(r.addr, r.port))
		return
	}
	s.reals = append(s.reals, r)
	c.realCheck(s, &r, checks, &def)
}

// family reports whether s is IPv4 (true) or IPv6.
func (c *converter) family(s *service) bool {
	if s.vip.IsValid() {
		return s.vip.Is4()
	}
	if len(s.matches) > 0 {
		return s.matches[0].vip.Is4()
	}
	if g, ok := c.groups[s.group]; ok {
		for _, e := range g.Children {
			if addrs, err := addressRange(e.Key); err == nil {
				return addrs[0].Is4()
			}
		}
	}
	return true
}

// realCheck turns a real server's checkers into the service's check: xvs
// checks every real server of a service alike, so the first one decides and
// any that differs is reported.
func (c *converter) realCheck(s *service, r *real, checks []*node, def *vsDefaults) {
	var chk *check
	for _, k := range checks {
		ch := c.checker(k, def, r)
		switch {
		case ch == nil:
		case chk != nil:
			c.report(k.Pos, "%s: a second checker of one real server: not supported (xvs runs one check per service); ignored", k.Key)
		default:
			chk = ch
		}
	}
	switch {
	case chk == nil && s.health != nil:
		c.report(r.pos, "real_server %s: no check xvs can run, while the service's others have one: not supported (xvs checks every real server of a service alike); checked as the real server at %s", r.addr, s.healthFrom)
	case chk == nil:
	case s.health == nil && len(s.reals) > 1:
		c.report(chk.pos, "%s: the service's real servers before this one have no check xvs can run: not supported (xvs checks every real server of a service alike); they are checked as this one", strings.Join(checkNames(checks), ", "))
		s.health, s.healthFrom = chk, chk.pos
	case s.health == nil:
		s.health, s.healthFrom = chk, chk.pos
	case !s.health.same(chk):
		c.report(chk.pos, "a check unlike that of the real server at %s: not supported (xvs checks every real server of a service alike); checked as that one", s.healthFrom)
	}
}

func checkNames(ns []*node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Key)
	}
	return out
}

// checker converts one checker block; nil when xvs has no equivalent.
func (c *converter) checker(k *node, def *vsDefaults, r *real) *check {
	ch := &check{pos: k.Pos, interval: def.delayLoop, timeout: def.connectTimeout, rise: 1, host: def.host}
	retry, retrySet := def.retry, def.retrySet
	delay, delaySet := def.delayBeforeRetry, def.delaySet
	if def.alpha {
		ch.initial = config.InitialDown
	}
	switch k.Key {
	case "TCP_CHECK":
		ch.kind = config.HealthTCP
	case "HTTP_GET":
		ch.kind = config.HealthHTTP
	case "SSL_GET":
		ch.kind = config.HealthHTTPS
	case "DNS_CHECK":
		ch.kind = config.HealthUDP
	case "UDP_CHECK":
		ch.kind = config.HealthUDP
	case "MISC_CHECK":
		c.unsupported(k, "xvs runs no check scripts")
		return nil
	case "SMTP_CHECK":
		c.unsupported(k, "xvs has no SMTP dialogue check")
		return nil
	case "PING_CHECK":
		c.unsupported(k, "xvs has no ICMP echo check")
		return nil
	default:
		c.unsupported(k, "xvs has no such check")
		return nil
	}
	if !retrySet {
		retry = kaRetry
		if k.Key == "DNS_CHECK" {
			retry = kaDNSRetry
		}
	}
	var dnsType, dnsName string = "SOA", "."
	var payload string
	requireReply, replySet := "", false
	urls := 0
	for _, o := range k.Children {
		switch o.Key {
		case "connect_port":
			ch.port = uint16(min(max(c.integer(o, 0), 0), math.MaxUint16))
		case "connect_ip":
			if len(o.Args) == 1 && o.Args[0] != r.addr.String() {
				c.unsupported(o, "xvs checks the real server's own address")
			}
		case "connect_timeout":
			ch.timeout = c.timer(o, ch.timeout)
		case "retry", "nb_get_retry":
			retry, retrySet = c.integer(o, retry), true
		case "delay_before_retry":
			delay, delaySet = c.timer(o, 0), true
		case "delay_loop":
			ch.interval = c.timer(o, ch.interval)
		case "alpha":
			if boolArg(o) {
				ch.initial = config.InitialDown
			} else {
				ch.initial = ""
			}
		case "virtualhost":
			if len(o.Args) == 1 && (ch.kind == config.HealthHTTP || ch.kind == config.HealthHTTPS) {
				ch.host = o.Args[0]
			}
		case "url":
			urls++
			if urls > 1 {
				c.report(o.Pos, "url: a second URL: not supported (xvs's check GETs one page); ignored")
				continue
			}
			c.url(ch, o)
		case "http_protocol":
			if len(o.Args) == 1 && o.Args[0] == "1.0" {
				c.unsupported(o, "xvs's check speaks HTTP/1.1 with Connection: close, as 1.0C does")
			}
		case "enable_sni":
			// xvs's https check sends the host (virtualhost) as SNI.
		case "type":
			if k.Key == "DNS_CHECK" && len(o.Args) == 1 {
				dnsType = strings.ToUpper(o.Args[0])
			}
		case "name":
			if k.Key == "DNS_CHECK" && len(o.Args) == 1 {
				dnsName = o.Args[0]
			}
		case "payload":
			payload = strings.Join(o.Args, "")
		case "require_reply":
			requireReply, replySet = strings.Join(o.Args, ""), true
		default:
			c.unsupported(o, "a "+k.Key+" option xvs's checks have no equivalent for")
		}
	}
	switch k.Key {
	case "DNS_CHECK":
		q, question, err := dnsQuery(dnsName, dnsType)
		if err != nil {
			c.report(k.Pos, "DNS_CHECK %s %s: %v: not supported; no check", dnsType, dnsName, err)
			return nil
		}
		ch.send, ch.expect = q, question
	case "UDP_CHECK":
		if !replySet {
			c.unsupported(k, "without require_reply keepalived takes silence as success; xvs's udp check wants a reply")
			return nil
		}
		send, err1 := hexText(payload)
		expect, err2 := hexText(requireReply)
		if err1 != nil || err2 != nil {
			c.unsupported(k, "its payload or reply has bytes a configuration file's string cannot carry")
			return nil
		}
		if send == "" {
			send = config.DefaultHealthSend
		}
		ch.send, ch.expect = send, expect
	}
	if ch.host != "" && strings.ContainsFunc(ch.host, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' }) {
		c.report(k.Pos, "virtualhost %q: not a host name xvs's check can send: not supported; the real server's address instead", ch.host)
		ch.host = ""
	}
	if (ch.kind == config.HealthHTTP || ch.kind == config.HealthHTTPS) && urls == 0 {
		ch.path, ch.status = config.DefaultHealthPath, config.DefaultHealthExpectStatus
	}
	ch.fall = retry + 1
	ch.interval = min(max(ch.interval, 100*time.Millisecond), time.Hour)
	if ch.timeout >= ch.interval {
		c.report(k.Pos, "connect_timeout %v not shorter than delay_loop %v: not supported (xvs's probes end before the next starts); timeout %v instead", ch.timeout, ch.interval, ch.interval/2)
		ch.timeout = ch.interval / 2
	}
	ch.timeout = max(ch.timeout, 10*time.Millisecond)
	ch.rise = max(ch.rise, 1)
	ch.fall = min(max(ch.fall, 1), 100)
	if delaySet && delay != ch.interval {
		c.report(k.Pos, "delay_before_retry %v: not supported (xvs probes every interval, %v, retries as the rest: a server goes down after %d failed probes in a row)", delay, ch.interval, ch.fall)
	}
	return ch
}

// url reads an HTTP checker's url block.
func (c *converter) url(ch *check, u *node) {
	ch.path = config.DefaultHealthPath
	for _, o := range u.Children {
		switch o.Key {
		case "path":
			if len(o.Args) == 1 && sendablePath(o.Args[0]) {
				ch.path = o.Args[0]
			} else {
				c.report(o.Pos, "path %s: not an absolute path that xvs's check sends as it is (no //, blanks or #): not supported; / instead", strings.Join(o.Args, " "))
			}
		case "status_code":
			if len(o.Args) == 1 {
				if n, err := strconv.Atoi(o.Args[0]); err == nil && n >= 100 && n <= 599 {
					ch.status = n
					continue
				}
			}
			c.report(o.Pos, "status_code %s: not supported (xvs wants one exact status); %d instead", strings.Join(o.Args, " "), firstStatus(o.Args))
			ch.status = firstStatus(o.Args)
		case "digest":
			c.unsupported(o, "xvs compares the status and a text of the body, not an MD5 of the page; the status alone is checked")
		case "regex":
			if len(o.Args) == 1 && literal(o.Args[0]) {
				ch.body = o.Args[0] // a regex without metacharacters is a text to find
			} else {
				c.unsupported(o, "xvs finds a text in the body, not a regular expression")
			}
		case "virtualhost":
			if len(o.Args) == 1 {
				ch.host = o.Args[0]
			}
		default:
			c.unsupported(o, "a url option xvs's http check has no equivalent for")
		}
	}
	if ch.status == 0 {
		ch.status = config.DefaultHealthExpectStatus // keepalived takes 200-299; xvs one status
	}
}

// sendablePath applies the configuration's rule for a check's path.
func sendablePath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.Contains(p, "#") &&
		!strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// firstStatus is the first status a status_code list names (200 when
// none), the one xvs checks.
func firstStatus(args []string) int {
	for _, a := range args {
		lo, _, _ := strings.Cut(a, "-")
		if n, err := strconv.Atoi(lo); err == nil && n >= 100 && n <= 599 {
			return n
		}
	}
	return config.DefaultHealthExpectStatus
}

func literal(s string) bool { return s != "" && !strings.ContainsAny(s, `\^$.|?*+()[]{}`) }

// hexText decodes keepalived's hex payloads into a string a configuration
// file can hold: bytes below 0x80 only, which stay themselves in UTF-8.
func hexText(h string) (string, error) {
	b, err := hex.DecodeString(h)
	if err != nil {
		return "", err
	}
	for _, x := range b {
		if x >= 0x80 {
			return "", errors.New("a byte of 0x80 or more")
		}
	}
	return string(b), nil
}

func boolArg(n *node) bool {
	if len(n.Args) == 0 {
		return true
	}
	switch strings.ToLower(n.Args[0]) {
	case "false", "no", "off", "0":
		return false
	}
	return true
}

// timer reads a keepalived timer: seconds, possibly fractional.
func (c *converter) timer(n *node, def time.Duration) time.Duration {
	if len(n.Args) != 1 {
		c.report(n.Pos, "%s: want one number of seconds: not supported; the default instead", n.Key)
		return def
	}
	f, err := strconv.ParseFloat(n.Args[0], 64)
	if err != nil || f < 0 || f > 1e6 {
		c.report(n.Pos, "%s %s: not a number of seconds: not supported; the default instead", n.Key, n.Args[0])
		return def
	}
	return time.Duration(f * float64(time.Second)).Round(time.Millisecond)
}

func (c *converter) integer(n *node, def int) int {
	if len(n.Args) != 1 {
		c.report(n.Pos, "%s: want one number: not supported; the default instead", n.Key)
		return def
	}
	v, err := strconv.Atoi(n.Args[0])
	if err != nil {
		c.report(n.Pos, "%s %s: not a number: not supported; the default instead", n.Key, n.Args[0])
		return def
	}
	return v
}

// ---- VRRP

type failoverOut struct {
	pos       Pos
	listen    netip.Addr
	peer      netip.Addr
	priority  int
	interval  time.Duration
	key       string
	addresses []floating
}

type floating struct {
	prefix netip.Prefix
	ifname string
}

func (c *converter) vrrpInstance(n *node) {
	first := c.failover == nil
	if first {
		c.failover = &failoverOut{pos: n.Pos, priority: kaPriority, interval: kaAdvertInt}
	}
	f := c.failover
	ifname := ""
	priority, interval := kaPriority, kaAdvertInt
	var peers []netip.Addr
	var src netip.Addr
	pass := ""
	var addrNodes []*node
	for _, k := range n.Children {
		switch k.Key {
		case "interface":
			if len(k.Args) == 1 {
				ifname = k.Args[0]
			}
		case "priority":
			priority = min(max(c.integer(k, kaPriority), 1), 255)
		case "advert_int":
			interval = c.timer(k, kaAdvertInt)
		case "state", "virtual_router_id":
			// The initial state: priorities decide in xvs as they do once
			// keepalived runs; the router id: a pair is named by its
			// unicast peer and key instead.
		case "authentication":
			for _, a := range k.Children {
				if a.Key == "auth_pass" && len(a.Args) == 1 {
					pass = a.Args[0]
				}
			}
		case "unicast_src_ip":
			if len(k.Args) == 1 {
				if a, err := netip.ParseAddr(k.Args[0]); err == nil {
					src = a.Unmap()
				}
			}
		case "unicast_peer":
			for _, p := range k.Children {
				if a, err := netip.ParseAddr(p.Key); err == nil {
					peers = append(peers, a.Unmap())
				}
			}
		case "virtual_ipaddress", "virtual_ipaddress_excluded":
			addrNodes = append(addrNodes, k.Children...)
		case "nopreempt", "preempt_delay":
			c.unsupported(k, "xvs's director with the higher priority always takes the addresses")
		case "lvs_sync_daemon_interface":
			c.unsupported(k, "IPVS's multicast sync daemon: xvs's [sync] syncs over unicast to configured peers (or xvsadm --start-daemon with [sync] in the file)")
		case "track_script", "track_interface", "track_process", "track_file", "track_bfd":
			c.unsupported(k, "xvs's failover follows the peer's heartbeats only")
		case "notify", "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify_deleted":
			c.unsupported(k, "xvs runs no scripts; it logs every transition")
		case "virtual_routes", "virtual_rules":
			c.unsupported(k, "xvs moves addresses, not routes or rules")
		default:
			c.unsupported(k, "a vrrp_instance keyword without an equivalent in xvs's failover")
		}
	}
	if !c.addInterface(n.Pos, ifname) {
		ifname = ""
	}
	for _, a := range addrNodes {
		c.floating(f, a, ifname)
	}
	if first {
		f.priority, f.interval = priority, interval
	} else {
		if priority != f.priority {
			c.report(n.Pos, "vrrp_instance %s: priority %d unlike the first instance's %d: not supported (xvs's [failover] moves every address with one priority); %d", strings.Join(n.Args, " "), priority, f.priority, f.priority)
		}
		if interval != f.interval {
			c.report(n.Pos, "vrrp_instance %s: advert_int %v unlike the first instance's %v: not supported; %v", strings.Join(n.Args, " "), interval, f.interval, f.interval)
		}
	}
	if !f.listen.IsValid() && src.IsValid() {
		f.listen = src
	}
	if len(peers) > 0 && !f.peer.IsValid() {
		f.peer = peers[0]
		if len(peers) > 1 {
			c.report(n.Pos, "unicast_peer: %d peers: not supported (xvs's failover is a pair); %s only", len(peers), peers[0])
		}
	}
	if f.key == "" && pass != "" {
		// auth_pass is at most 8 bytes; both directors' files name the
		// same, so both get the same key.
		sum := sha256.Sum256([]byte("xvs failover key from keepalived auth_pass " + pass))
		f.key = hex.EncodeToString(sum[:16])
	}
}

// floating reads one line of virtual_ipaddress.
func (c *converter) floating(f *failoverOut, a *node, ifname string) {
	p, err := netip.ParsePrefix(a.Key)
	if err != nil {
		ad, err2 := netip.ParseAddr(a.Key)
		if err2 != nil {
			c.report(a.Pos, "%s: not an address: not supported; ignored", a.Key)
			return
		}
		ad = ad.Unmap()
		p = netip.PrefixFrom(ad, ad.BitLen())
	}
	for i := 0; i < len(a.Args); i++ {
		switch a.Args[i] {
		case "dev":
			if i+1 < len(a.Args) {
				ifname = a.Args[i+1]
				i++
			}
		case "label", "brd", "broadcast", "scope", "metric", "preferred_lft", "valid_lft":
			c.report(a.Pos, "%s %s: not supported (xvs puts the address on its interface as it is); ignored", a.Args[i], strings.Join(a.Args[min(i+1, len(a.Args)):min(i+2, len(a.Args))], ""))
			i++
		default:
			c.report(a.Pos, "%s: not supported for a floating address; ignored", a.Args[i])
		}
	}
	if ifname == "" {
		c.report(a.Pos, "%s: no interface named (neither dev nor the instance's interface): not supported; ignored", p)
		return
	}
	if !c.addInterface(a.Pos, ifname) {
		return
	}
	if slices.ContainsFunc(f.addresses, func(x floating) bool { return x.prefix.Addr() == p.Addr() }) {
		return // the same address again (with a label, say): once is enough
	}
	f.addresses = append(f.addresses, floating{prefix: p, ifname: ifname})
}
