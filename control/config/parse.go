package config

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/internal/xvs"
	"github.com/xvs-lb/xvs/sched"
)

// Load reads and parses the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates a configuration; name is the file it came from,
// for messages and Config.Source. It fills in every default. On failure the
// error is an Errors listing every problem found, each with its line.
func Parse(name string, data []byte) (*Config, error) {
	// Decoding into a generic map rather than into structs lets the
	// decoder below name the exact array element at fault, report every
	// problem instead of the first, and read integer timeouts as seconds
	// (the toml package reads them as nanoseconds).
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, Errors{{File: name, Line: pe.Position.Line, Msg: pe.Message}}
		}
		return nil, Errors{{File: name, Msg: err.Error()}}
	}
	d := &decoder{file: name, lines: indexLines(data)}
	cfg := d.config(doc)
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
		return nil, d.errs
	}
	cfg.Source = name
	return cfg, nil
}

// Timeouts are in whole seconds in IPVS (struct ip_vs_timeout_user holds
// ints); the bounds keep them positive and within that.
const (
	minTimeout = time.Second
	maxTimeout = math.MaxInt32 * time.Second
)

// duration reads a Go duration string or an integer number of seconds,
// within IPVS's timeout bounds.
func (t *tomlTable) duration(key string) (time.Duration, bool) {
	return t.span(key, minTimeout, maxTimeout)
}

func (d *decoder) config(doc map[string]any) *Config {
	root := d.newTable("", "the top level", doc, keysOf("")...)
	cfg := &Config{}
	if t, ok := root.sub("director", keysOf("director")...); ok {
		cfg.Director = d.director(t)
	} else if !root.has("director") {
		d.errorf("", "missing [director] table (it must list the interfaces)")
	}
	cfg.Timeouts = Timeouts{TCP: DefaultTCPTimeout, TCPFin: DefaultTCPFinTimeout, UDP: DefaultUDPTimeout}
	if t, ok := root.sub("timeouts", keysOf("timeouts")...); ok {
		d.timeouts(t, &cfg.Timeouts)
	}
	if ts, ok := root.list("service", keysOf("service")...); ok {
		cfg.Services = d.services(ts)
		d.healthChecks(ts, cfg.Services)
	}
	if ts, ok := root.list("group", keysOf("group")...); ok {
		groups := d.groups(ts, cfg.Services)
		d.healthChecks(ts, groups)
		cfg.Services = append(cfg.Services, groups...)
	}
	if t, ok := root.sub("bgp", keysOf("bgp")...); ok {
		cfg.BGP = d.bgp(t)
	}
	if t, ok := root.sub("sync", keysOf("sync")...); ok {
		cfg.Sync = d.sync(t)
	}
	if t, ok := root.sub("failover", keysOf("failover")...); ok {
		cfg.Failover = d.failover(t)
	}
	root.done()
	return cfg
}

func (d *decoder) director(t *tomlTable) Director {
	dir := Director{XDPMode: xvs.XDPAuto, ZeroCopy: xvs.ZeroCopyAuto, LogLevel: DefaultLogLevel, FastPath: xvs.FastPathAuto, WhenFull: conntrack.Refuse}
	t.require("interfaces")
	seen := make(map[string]bool)
	t.array("interfaces", func(_ int, v any) string {
		name, ok := v.(string)
		if !ok {
			return fmt.Sprintf("want an interface name, got %s", typeName(v))
		}
		if msg := checkIfName(name); msg != "" {
			return fmt.Sprintf("interface name %q %s", name, msg)
		}
		if seen[name] {
			return fmt.Sprintf("interface %q is listed twice", name)
		}
		seen[name] = true
		dir.Interfaces = append(dir.Interfaces, name)
		return ""
	})
	if v, ok := t.m["interfaces"].([]any); ok && len(v) == 0 {
		t.errorf("interfaces", "empty: name at least one interface")
	}
	if m, ok := enumOf(t, "xdp_mode", xvs.XDPModes(), xvs.XDPMode.String); ok {
		dir.XDPMode = m
	}
	if z, ok := enumOf(t, "zerocopy", xvs.ZeroCopies(), xvs.ZeroCopy.String); ok {
		dir.ZeroCopy = z
	}
	cpus := make(map[int64]bool)
	t.array("cpus", func(_ int, v any) string {
		n, msg := checkInt(v, 0, maxCPU)
		if msg != "" {
			return msg
		}
		if cpus[n] {
			return fmt.Sprintf("CPU %d is listed twice", n)
		}
		cpus[n] = true
		dir.CPUs = append(dir.CPUs, int(n))
		return ""
	})
	if s, ok := t.enum("log_level", "debug", "info", "warn", "error"); ok {
		dir.LogLevel = s
	}
	if b, ok := t.boolean("sloppy_tcp"); ok {
		dir.SloppyTCP = b
	}
	dir.Connections = DefaultConnections
	if n, ok := t.integer("connections", 1024, 1<<27); ok {
		dir.Connections = int(n)
	}
	if f, ok := enumOf(t, "fast_path", xvs.FastPaths(), xvs.FastPath.String); ok {
		dir.FastPath = f
	}
	if p, ok := enumOf(t, "when_full", []conntrack.FullPolicy{conntrack.Refuse, conntrack.EvictOldestIdle}, whenFullName); ok {
		dir.WhenFull = p
	}
	d.tuning(t, &dir)
	t.done()
	return dir
}

// tuning reads [director]'s data path knobs.
func (d *decoder) tuning(t *tomlTable, dir *Director) {
	if n, ok := t.integer("batch_size", 1, maxBatch); ok {
		dir.BatchSize = int(n)
	}
	if n, ok := t.integer("ring_size", minRing, maxRing); ok {
		if n&(n-1) != 0 {
			t.errorf("ring_size", "%d is not a power of two", n)
		} else {
			dir.RingSize = int(n)
		}
	}
	if n, ok := t.integer("umem_frames", minRing, maxUMEMFrames); ok {
		dir.UMEMFrames = int(n)
		ring := dir.RingSize
		if ring == 0 {
			ring = xvs.DefaultRingSize
		}
		// The data path's own rule, applied here too so that the error
		// names the line.
		if need := xvs.MinFrames(ring, len(dir.Interfaces)); int(n) < need {
			t.errorf("umem_frames", "%d frames cannot fill %d ring(s) of %d and keep as many in flight: want at least %d", n, max(len(dir.Interfaces), 1), ring, need)
		}
	}
	if n, ok := t.integer("idle_spins", -1, maxIdleSpins); ok {
		if n == 0 {
			t.errorf("idle_spins", "0 is not a count: 1 sleeps after one empty poll, -1 never sleeps")
		} else {
			dir.IdleSpins = int(n)
		}
	}
	if t.has("busy_poll") {
		dir.BusyPoll = busyPoll(t)
	}
	if b, ok := t.boolean("need_wakeup"); ok {
		dir.NoNeedWakeup = !b
	}
	if b, ok := t.boolean("verify_checksums"); ok {
		dir.VerifyChecksums = b
	}
}

// busyPoll reads busy_poll: true (DPDK's AF_XDP default, 20 µs), false, or
// how long one busy poll may run, as SO_BUSY_POLL takes it (1 µs to 10 ms).
func busyPoll(t *tomlTable) time.Duration {
	switch v := t.m["busy_poll"].(type) {
	case bool:
		if v {
			return DefaultBusyPoll
		}
		return 0
	case string:
		d, err := time.ParseDuration(v)
		if err == nil && d >= time.Microsecond && d <= maxBusyPoll {
			return d
		}
		t.errorf("busy_poll", "%q: want a duration from 1us to %v", v, maxBusyPoll)
	default:
		t.errorf("busy_poll", "want true, false or a duration such as \"50us\", got %s", typeName(v))
	}
	return 0
}

// Bounds of the data path knobs.
const (
	maxBatch      = 4096
	minRing       = 64
	maxRing       = 1 << 16
	maxUMEMFrames = 1 << 22
	maxIdleSpins  = 1 << 24
	maxBusyPoll   = 10 * time.Millisecond
)

// maxCPU bounds CPU numbers well above any kernel's NR_CPUS; whether a CPU
// exists is the director's question, not the file's.
const maxCPU = 65535

// checkIfName applies the kernel's dev_valid_name.
func checkIfName(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > 15:
		return "is longer than 15 bytes"
	case name == "." || name == "..":
		return "is not allowed"
	case strings.ContainsAny(name, "/: \t\n\v\f\r"):
		return "contains '/', ':' or white space"
	}
	return ""
}

func (d *decoder) timeouts(t *tomlTable, to *Timeouts) {
	if v, ok := t.duration("tcp"); ok {
		to.TCP = v
	}
	if v, ok := t.duration("tcpfin"); ok {
		to.TCPFin = v
	}
	if v, ok := t.duration("udp"); ok {
		to.UDP = v
	}
	t.done()
}

type serviceKey struct {
	vip   netip.Addr
	port  uint16
	proto xvs.Protocol
}

func (d *decoder) services(ts []*tomlTable) []Service {
	services := make([]Service, 0, len(ts))
	byKey := make(map[serviceKey]int) // -> line of the first
	byName := make(map[string]int)    // -> line of the first
	for _, t := range ts {
		s, complete := d.service(t)
		if complete {
			k := serviceKey{s.VIP, s.Port, s.Protocol}
			if line, dup := byKey[k]; dup {
				t.errorf("", "duplicate service %s (first at line %d)", s, line)
			} else {
				byKey[k] = s.Line
			}
		}
		if s.Name != "" {
			if line, dup := byName[s.Name]; dup {
				t.errorf("name", "duplicate service name %q (first at line %d)", s.Name, line)
			} else {
				byName[s.Name] = s.Line
			}
		}
		services = append(services, s)
	}
	return services
}

// String names a service as ipvsadm does: "TCP 198.18.0.100:80", or
// "FWM 1" for a group.
func (s Service) String() string {
	if s.IsGroup() {
		return fmt.Sprintf("FWM %d", s.Mark)
	}
	return strings.ToUpper(s.Protocol.String()) + " " + netip.AddrPortFrom(s.VIP, s.Port).String()
}

// service decodes one [[service]]; complete reports whether its identity
// (vip, port, protocol) is valid, so that duplicates can be looked for.
func (d *decoder) service(t *tomlTable) (s Service, complete bool) {
	s = Service{Scheduler: DefaultScheduler, Line: d.lines.lineOf(t.path)}
	if name, ok := t.str("name"); ok {
		s.Name = name
	}
	t.require("vip")
	vipOK := false
	if str, ok := t.str("vip"); ok {
		if a, msg := checkAddr(str); msg != "" {
			t.errorf("vip", "%q %s", str, msg)
		} else {
			s.VIP, vipOK = a, true
		}
	}
	t.require("port")
	port, portOK := t.integer("port", 1, math.MaxUint16)
	s.Port = uint16(port)
	t.require("protocol")
	protoOK := false
	if str, ok := t.str("protocol"); ok {
		if p, err := xvs.ParseProtocol(str); err != nil {
			t.errorf("protocol", "%v", err)
		} else {
			s.Protocol, protoOK = p, true
		}
	}
	d.policy(t, &s, vipOK)
	d.reals(t, &s, vipOK, portOK)
	d.fullnat(t, &s)
	t.done()
	return s, vipOK && portOK && protoOK
}

// fullnat decodes FullNAT's local addresses and TOA, and the SYN proxy
// (which needs the replies that NAT and FullNAT bring back), checks that every
// fullnat real server has a local address of its family, and that the
// methods that cannot change ports (dr, tun) do not.
func (d *decoder) fullnat(t *tomlTable, s *Service) {
	t.array("local_addresses", func(_ int, v any) string {
		str, ok := v.(string)
		if !ok {
			return fmt.Sprintf("want an address, got %s", typeName(v))
		}
		a, msg := checkAddr(str)
		if msg != "" {
			return fmt.Sprintf("%q %s", str, msg)
		}
		if slices.Contains(s.LocalAddrs, a) {
			return fmt.Sprintf("%s is listed twice", a)
		}
		s.LocalAddrs = append(s.LocalAddrs, a)
		return ""
	})
	if len(s.LocalAddrs) > 256 {
		t.errorf("local_addresses", "more than 256 addresses")
	}
	if b, ok := t.boolean("toa"); ok {
		s.TOA = b
	}
	// Per service, fast_path only opts out; auto is the director's.
	if v, ok := enumOf(t, "fast_path", []xvs.FastPath{xvs.FastPathXDP, xvs.FastPathOff}, xvs.FastPath.String); ok {
		s.NoFastPath = v == xvs.FastPathOff
	}
	if v, ok := t.m["local_ports"]; ok {
		str, isStr := v.(string)
		lo, hi, err := parsePortRange(str)
		switch {
		case !isStr:
			t.errorf("local_ports", "want a range of ports as a string (\"20000-29999\"), got %s", typeName(v))
		case err != nil:
			t.errorf("local_ports", "%q: %v", str, err)
		case len(s.LocalAddrs) == 0:
			t.errorf("local_ports", "FullNAT's local ports need local_addresses")
		default:
			s.LocalPortMin, s.LocalPortMax = lo, hi
		}
	}
	if b, ok := t.boolean("syn_proxy"); ok && b {
		s.SynProxy = true
		udp := s.Protocol == xvs.ProtoUDP && len(s.Matches) == 0
		for _, m := range s.Matches {
			udp = udp || m.Protocol == xvs.ProtoUDP
		}
		if udp {
			t.errorf("syn_proxy", "a SYN proxy is for TCP; this is UDP")
		}
		for _, r := range s.Reals {
			if r.Method != xvs.MethodNAT && r.Method != xvs.MethodFullNAT {
				d.errs = append(d.errs, &Error{File: d.file, Line: r.Line, Msg: fmt.Sprintf(
					"real server %s uses %s, but the service has syn_proxy, which needs nat or fullnat: %s replies bypass the director, which must translate their sequence numbers",
					r.Address, r.Method, r.Method)})
			}
		}
	}
	for _, r := range s.Reals {
		if r.Method != xvs.MethodFullNAT {
			continue
		}
		found := false
		for _, l := range s.LocalAddrs {
			found = found || l.Is4() == r.Address.Is4()
		}
		if !found {
			d.errs = append(d.errs, &Error{File: d.file, Line: r.Line, Msg: fmt.Sprintf("real server %s uses fullnat, but the service has no %s local_addresses", r.Address, family(r.Address))})
		}
	}
}

// policy decodes how a service or group picks real servers: scheduler,
// its flags, persistence and the persistence netmask.
func (d *decoder) policy(t *tomlTable, s *Service, vipOK bool) {
	if str, ok := t.str("scheduler"); ok {
		if known := sched.Names(); !slices.Contains(known, str) {
			t.errorf("scheduler", "unknown scheduler %q (known: %s)", str, strings.Join(known, ", "))
		} else {
			s.Scheduler = str
		}
	}
	t.array("sched_flags", func(_ int, v any) string {
		flag, ok := v.(string)
		if !ok {
			return fmt.Sprintf("want a flag name, got %s", typeName(v))
		}
		allowed := sched.FlagsFor(s.Scheduler)
		if !slices.Contains(allowed, flag) {
			if len(allowed) == 0 {
				return fmt.Sprintf("scheduler %s takes no flags", s.Scheduler)
			}
			return fmt.Sprintf("unknown flag %q for scheduler %s (known: %s)", flag, s.Scheduler, strings.Join(allowed, ", "))
		}
		if slices.Contains(s.Flags, flag) {
			return fmt.Sprintf("flag %q is listed twice", flag)
		}
		s.Flags = append(s.Flags, flag)
		return ""
	})
	if v, ok := t.duration("persistence"); ok {
		s.Persistence = v
	}
	if t.has("netmask") {
		if !t.has("persistence") {
			t.errorf("netmask", "only makes sense with persistence")
		}
		v4 := !vipOK || s.VIP.Is4()
		if len(s.Matches) > 0 {
			v4 = s.Matches[0].VIP.Is4()
		}
		if bits, msg := checkNetmask(t.m["netmask"], v4); msg != "" {
			t.errorf("netmask", "%s", msg)
		} else {
			s.PersistPrefix = bits
		}
	}
}

// checkNetmask reads ipvsadm -M: a dotted IPv4 mask or a prefix length.
func checkNetmask(v any, v4 bool) (int, string) {
	max := int64(128)
	if v4 {
		max = 32
	}
	switch v := v.(type) {
	case int64:
		if v < 1 || v > max {
			return 0, fmt.Sprintf("prefix length %d is out of range 1..%d", v, max)
		}
		return int(v), ""
	case string:
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() || !v4 {
			return 0, fmt.Sprintf("%q is not an IPv4 netmask (IPv6 services take a prefix length)", v)
		}
		ones, ok := MaskBits(a)
		if !ok {
			return 0, fmt.Sprintf("%q is not a contiguous netmask", v)
		}
		return ones, ""
	}
	return 0, fmt.Sprintf("want a netmask string or a prefix length, got %s", typeName(v))
}

// MaskBits returns the prefix length of a dotted IPv4 netmask (ipvsadm
// -M's form), or false when mask is not one: not IPv4, not contiguous, or
// 0.0.0.0.
func MaskBits(mask netip.Addr) (int, bool) {
	if !mask.Is4() {
		return 0, false
	}
	b := mask.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := 0
	for m&(1<<31) != 0 {
		ones++
		m <<= 1
	}
	return ones, m == 0 && ones > 0
}

// reals decodes the [[...real]] tables of s.
func (d *decoder) reals(t *tomlTable, s *Service, vipOK, portOK bool) {
	rs, ok := t.list("real", keysOf("service.real")...)
	if !ok {
		return
	}
	byAddr := make(map[netip.AddrPort]int) // -> line of the first
	for _, rt := range rs {
		r, ok := d.real(rt, s, vipOK, portOK)
		if !ok {
			continue
		}
		ap := netip.AddrPortFrom(r.Address, r.Port)
		if line, dup := byAddr[ap]; dup {
			rt.errorf("", "duplicate real server %s (first at line %d)", ap, line)
		} else {
			byAddr[ap] = r.Line
		}
		s.Reals = append(s.Reals, r)
	}
}

// real decodes one [[service.real]] of s; vipOK and portOK say whether s's
// VIP and port can be checked against. ok reports whether the address and
// port are valid.
func (d *decoder) real(t *tomlTable, s *Service, vipOK, portOK bool) (r Real, ok bool) {
	r = Real{Port: s.Port, Weight: DefaultWeight, Method: xvs.MethodDR, Line: d.lines.lineOf(t.path)}
	t.require("address")
	addrOK := false
	if str, ok := t.str("address"); ok {
		a, msg := checkAddr(str)
		switch {
		case msg != "":
			t.errorf("address", "%q %s", str, msg)
		case vipOK && a.Is4() != s.VIP.Is4():
			t.errorf("address", "%s is %s but the service's vip %s is %s", a, family(a), s.VIP, family(s.VIP))
		case vipOK && a == s.VIP:
			t.errorf("address", "%s is the service's vip", a)
		default:
			r.Address, addrOK = a, true
		}
	}
	portSet := t.has("port")
	realPortOK := portOK
	if portSet {
		lo := int64(1)
		if s.IsGroup() {
			lo = 0
		}
		var p int64
		p, realPortOK = t.integer("port", lo, math.MaxUint16)
		r.Port = uint16(p)
	}
	if w, ok := t.integer("weight", 0, sched.MaxWeight); ok {
		r.Weight = int(w)
	}
	if str, ok := t.str("method"); ok {
		if m, err := xvs.ParseMethod(str); err != nil {
			t.errorf("method", "%v", err)
		} else {
			r.Method = m
		}
	}
	if n, ok := t.integer("upper_threshold", 0, math.MaxInt32); ok {
		r.UpperThreshold = int(n)
	}
	if n, ok := t.integer("lower_threshold", 0, math.MaxInt32); ok {
		r.LowerThreshold = int(n)
		if r.UpperThreshold == 0 && n > 0 {
			t.errorf("lower_threshold", "set without upper_threshold")
		} else if int(n) > r.UpperThreshold {
			t.errorf("lower_threshold", "%d is above upper_threshold %d", n, r.UpperThreshold)
		}
	}
	// DR rewrites only MAC addresses, so the real server sees the packet
	// exactly as the client sent it, destination port included.
	if s.IsGroup() && (r.Method == xvs.MethodDR || r.Method == xvs.MethodTUN) && portSet && r.Port != 0 {
		t.errorf("port", "method dr or tun keeps each packet's port: leave port out (or 0) in a group")
		realPortOK = false
	}
	if !s.IsGroup() && (r.Method == xvs.MethodDR || r.Method == xvs.MethodTUN) && portSet && realPortOK && portOK && r.Port != s.Port {
		t.errorf("port", "%d differs from the service port %d, but method %s cannot change ports (use method nat to remap)", r.Port, s.Port, r.Method)
		realPortOK = false
	}
	t.done()
	return r, addrOK && realPortOK
}

// whenFullName is when_full's name for a policy.
func whenFullName(p conntrack.FullPolicy) string {
	if p == conntrack.EvictOldestIdle {
		return "evict"
	}
	return "refuse"
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// checkAddr parses an address that can be a VIP or a real server: a unicast
// address of one family, reachable beyond this host.
func checkAddr(s string) (netip.Addr, string) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return a, "is not an IP address"
	case a.Zone() != "":
		return a, "has a zone, which is not supported"
	case a.Is4In6():
		return a, fmt.Sprintf("is IPv4-mapped: write %s", a.Unmap())
	case a.IsUnspecified():
		return a, "is unspecified"
	case a.IsLoopback():
		return a, "is a loopback address"
	case a.IsMulticast():
		return a, "is a multicast address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return a, "is the broadcast address"
	}
	return a, ""
}
