package keepalived

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/xvs-lb/xvs/control/config"
)

// write writes the configuration file: every table with a comment naming
// the keepalived line it came from.
func (c *converter) write() []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	src := filepath.Base(c.file)
	w("# Converted by xvsadm import-keepalived from\n#   %s\n", c.file)
	w("# What keepalived's configuration has and xvs's has not was reported on\n")
	w("# standard error, with its file and line; a comment after each table names\n")
	w("# the line it comes from. `xvsd -check FILE` validates this file.\n\n")

	w("[director]\n")
	w("interfaces = %s\n", quoteList(c.directorInterfaces()))
	for _, s := range c.services {
		if s.group == "" && s.mark == 0 {
			c.writeService(w, s, src)
		}
	}
	for _, s := range c.services {
		if s.group != "" || s.mark != 0 {
			c.writeGroup(w, s, src)
		}
	}
	if c.failover != nil {
		c.writeFailover(w, src)
	}
	return []byte(b.String())
}

// directorInterfaces are the options', else those VRRP names, else eth0.
func (c *converter) directorInterfaces() []string {
	if len(c.opts.Interfaces) > 0 {
		return c.opts.Interfaces
	}
	if len(c.interfaces) > 0 {
		return c.interfaces
	}
	pos := Pos{File: c.file, Line: 1}
	if c.firstVS != nil {
		pos = *c.firstVS
	}
	c.report(pos, "the interfaces IPVS receives on are not in keepalived's configuration, which xvs's [director] needs: not supported; eth0 assumed (import-keepalived -interface names them)")
	return []string{"eth0"}
}

func (c *converter) writeService(w func(string, ...any), s *service, src string) {
	w("\n[[service]]  # %s:%d\n", src, s.pos.Line)
	w("vip = %s\nport = %d\nprotocol = %s\n", quote(s.vip.String()), s.port, quote(s.proto))
	c.writePolicy(w, s, "service", "")
}

func (c *converter) writeGroup(w func(string, ...any), s *service, src string) {
	p := ""
	if s.mark != 0 {
		p = "# "
		w("\n# virtual_server fwmark %d (%s:%d): fill in the VIPs, ports and protocol\n# the mark stands for, then remove the leading '# '.\n", s.mark, src, s.pos.Line)
		w("# [[group]]\n# name = %s\n# mark = %d\n# match = [ { vip = \"VIP\", ports = \"PORT\", protocol = %s } ]\n",
			quote(fmt.Sprintf("fwmark-%d", s.mark)), s.mark, quote(s.proto))
	} else {
		w("\n[[group]]  # %s:%d\nname = %s\n", src, s.pos.Line, quote(s.group))
		var ms []string
		for _, m := range s.matches {
			ports := strconv.Itoa(int(m.from))
			if m.to != m.from {
				ports = fmt.Sprintf("%d-%d", m.from, m.to)
			}
			ms = append(ms, fmt.Sprintf("{ vip = %s, ports = %s, protocol = %s }", quote(m.vip.String()), quote(ports), quote(s.proto)))
		}
		w("match = [\n  %s,\n]\n", strings.Join(ms, ",\n  "))
	}
	c.writePolicy(w, s, "group", p)
}

// writePolicy writes what services and groups share: the scheduler,
// persistence, health check and real servers; p prefixes every line (a
// comment mark for a group written commented out).
func (c *converter) writePolicy(w func(string, ...any), s *service, table, p string) {
	w("%sscheduler = %s\n", p, quote(s.scheduler))
	if len(s.flags) > 0 {
		w("%ssched_flags = %s\n", p, quoteList(s.flags))
	}
	if s.persist >= time.Second {
		w("%spersistence = %s\n", p, quote(durString(s.persist)))
		if m, ok := c.netmask(s); ok {
			w("%snetmask = %s\n", p, m)
		}
	}
	if h := c.health(s); h != nil {
		w("%s  [%s.health]  # %s:%d\n", p, table, filepath.Base(h.pos.File), h.pos.Line)
		w("%s  check = %s\n%s  interval = %s\n%s  timeout = %s\n%s  rise = %d\n%s  fall = %d\n",
			p, quote(h.kind), p, quote(durString(h.interval)), p, quote(durString(h.timeout)), p, h.rise, p, h.fall)
		if h.port != 0 {
			w("%s  port = %d\n", p, h.port)
		}
		if h.kind == config.HealthHTTP || h.kind == config.HealthHTTPS {
			w("%s  path = %s\n", p, quote(h.path))
			if h.status != 0 {
				w("%s  expect_status = %d\n", p, h.status)
			}
			if h.body != "" {
				w("%s  expect_body = %s\n", p, quote(h.body))
			}
			if h.host != "" {
				w("%s  host = %s\n", p, quote(h.host))
			}
		}
		if h.kind == config.HealthUDP {
			w("%s  send = %s\n", p, quote(h.send))
			if h.expect != "" {
				w("%s  expect = %s\n", p, quote(h.expect))
			}
		}
		if h.initial != "" {
			w("%s  initial = %s\n", p, quote(h.initial))
		}
	}
	for _, r := range s.reals {
		w("%s  [[%s.real]]  # %s:%d\n", p, table, filepath.Base(r.pos.File), r.pos.Line)
		w("%s  address = %s\n", p, quote(r.addr.String()))
		if r.port != 0 {
			w("%s  port = %d\n", p, r.port)
		}
		w("%s  weight = %d\n%s  method = %s\n", p, r.weight, p, quote(r.method))
		if r.upper > 0 {
			w("%s  upper_threshold = %d\n", p, r.upper)
		}
		if r.lower > 0 {
			w("%s  lower_threshold = %d\n", p, r.lower)
		}
	}
}

// health is s's check, or nil when it has none or none that fits: a
// group's real servers that keep each packet's port need a check port.
func (c *converter) health(s *service) *check {
	h := s.health
	if h == nil || h.port != 0 {
		return h
	}
	for _, r := range s.reals {
		if r.port != 0 {
			continue
		}
		if len(s.matches) > 0 && s.matches[0].from == s.matches[0].to {
			hc := *h
			hc.port = s.matches[0].from
			return &hc
		}
		c.report(h.pos, "the check of real servers that keep each packet's port needs connect_port: not supported; no check")
		return nil
	}
	return h
}

// netmask is persistence_granularity as the file writes it.
func (c *converter) netmask(s *service) (string, bool) {
	if s.netmask == "" {
		return "", false
	}
	if c.family(s) {
		a, err := netip.ParseAddr(s.netmask)
		if _, ok := config.MaskBits(a); err != nil || !ok {
			c.report(s.pos, "persistence_granularity %s: not a contiguous IPv4 netmask: not supported; ignored", s.netmask)
			return "", false
		}
		return quote(s.netmask), true
	}
	n, err := strconv.Atoi(strings.TrimPrefix(s.netmask, "/"))
	if err != nil || n < 1 || n > 128 {
		c.report(s.pos, "persistence_granularity %s: not an IPv6 prefix length: not supported; ignored", s.netmask)
		return "", false
	}
	return strconv.Itoa(n), true
}

func (c *converter) writeFailover(w func(string, ...any), src string) {
	f := c.failover
	key := c.opts.Key
	if key == "" {
		key = f.key
	}
	var missing []string
	if !f.listen.IsValid() || !f.peer.IsValid() {
		missing = append(missing, "listen and peer (keepalived's unicast_src_ip and unicast_peer)")
		c.report(f.pos, "multicast VRRP advertisements: not supported (xvs's failover is unicast between two directors); [failover] is written commented out, for listen and peer to be filled in (or give keepalived unicast_src_ip and unicast_peer)")
	}
	if len(key) < 16 {
		missing = append(missing, "key")
		c.report(f.pos, "VRRP without authentication: not supported (xvs's failover needs a shared key); [failover] is written commented out (import-keepalived -key gives one)")
	}
	if len(f.addresses) == 0 {
		missing = append(missing, "addresses")
		c.report(f.pos, "no virtual_ipaddress: not supported (xvs's failover needs an address to move); [failover] is written commented out")
	}
	p := ""
	if len(missing) > 0 {
		p = "# "
		w("\n# vrrp_instance (%s:%d): fill in %s, then remove the leading '# '.\n", src, f.pos.Line, strings.Join(missing, ", "))
	}
	listen, peer := "ADDRESS:8849", "PEER:8849"
	if f.listen.IsValid() {
		listen = netip.AddrPortFrom(f.listen, failoverPort).String()
	}
	if f.peer.IsValid() {
		peer = netip.AddrPortFrom(f.peer, failoverPort).String()
	}
	if key == "" {
		key = "A SHARED SECRET OF 16 BYTES OR MORE"
	}
	w("\n%s[failover]  # %s:%d\n", p, src, f.pos.Line)
	w("%slisten = %s\n%speer = %s\n", p, quote(listen), p, quote(peer))
	w("%spriority = %d\n%sinterval = %s\n%skey = %s\n", p, f.priority, p, quote(durString(min(max(f.interval, 10*time.Millisecond), 10*time.Second))), p, quote(key))
	for _, a := range f.addresses {
		w("%s  [[failover.address]]\n%s  address = %s\n%s  interface = %s\n", p, p, quote(a.prefix.String()), p, quote(a.ifname))
	}
}

// durString writes a duration in whole seconds when it is one.
func durString(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

// quote writes a TOML basic string: quotes, backslashes and control
// characters escaped as TOML escapes them (Go's %q would write \x escapes,
// which TOML has not).
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
