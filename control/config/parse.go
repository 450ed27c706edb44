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

	"github.com/xvs-lb/xvs/dataplane/xsk"
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

type decoder struct {
	file  string
	lines lineIndex
	errs  Errors
}

// errorf records a problem at path, a key path with array indexes.
func (d *decoder) errorf(path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: d.lines.lineOf(path), Msg: fmt.Sprintf(format, args...)})
}

// table is one TOML table being decoded, with the keys its schema allows.
type table struct {
	d     *decoder
	path  string // with indexes: service[1].real[0]
	name  string // as written in the file: [[service.real]]
	m     map[string]any
	known []string // in schema order, for messages
}

func (d *decoder) table(path, name string, m map[string]any, known ...string) *table {
	return &table{d: d, path: path, name: name, m: m, known: known}
}

func (t *table) keyPath(key string) string { return joinKey(t.path, key) }

// errorf records a problem with key, or with the table itself when key is "".
func (t *table) errorf(key, format string, args ...any) {
	path := t.path
	if key != "" {
		path = t.keyPath(key)
		format = "%s: " + format
		args = append([]any{displayKey(path)}, args...)
	}
	t.d.errorf(path, format, args...)
}

// displayKey drops the array indexes: users write service.real.port.
func displayKey(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		if path[i] == '[' {
			for i < len(path) && path[i] != ']' {
				i++
			}
			continue
		}
		b.WriteByte(path[i])
	}
	return b.String()
}

func (t *table) has(key string) bool {
	_, ok := t.m[key]
	return ok
}

func (t *table) require(key string) {
	if !t.has(key) {
		t.errorf("", "%s is missing %s", t.name, key)
	}
}

// done reports the keys the schema does not know.
func (t *table) done() {
	var unknown []string
	for k := range t.m {
		if !slices.Contains(t.known, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		t.d.errorf(t.keyPath(k), "unknown key %q in %s (known keys: %s)", k, t.name, strings.Join(t.known, ", "))
	}
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case []map[string]any:
		return "an array of tables"
	case map[string]any:
		return "a table"
	}
	return "a date-time"
}

func (t *table) str(key string) (string, bool) {
	v, ok := t.m[key]
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		t.errorf(key, "want a string, got %s", typeName(v))
	}
	return s, ok
}

// enum reads a string that must be one of allowed.
func (t *table) enum(key string, allowed ...string) (string, bool) {
	s, ok := t.str(key)
	if ok && !slices.Contains(allowed, s) {
		t.errorf(key, "%q is not one of %s", s, strings.Join(allowed, ", "))
		return "", false
	}
	return s, ok
}

func checkInt(v any, lo, hi int64) (int64, string) {
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Sprintf("want an integer, got %s", typeName(v))
	}
	if n < lo || n > hi {
		return 0, fmt.Sprintf("%d is out of range %d..%d", n, lo, hi)
	}
	return n, ""
}

func (t *table) integer(key string, lo, hi int64) (int64, bool) {
	v, ok := t.m[key]
	if !ok {
		return 0, false
	}
	n, msg := checkInt(v, lo, hi)
	if msg != "" {
		t.errorf(key, "%s", msg)
		return 0, false
	}
	return n, true
}

// array reads an array, calling elem for each element; elem returns a
// problem with it, or "".
func (t *table) array(key string, elem func(i int, v any) string) bool {
	v, ok := t.m[key]
	if !ok {
		return false
	}
	a, ok := v.([]any)
	if !ok {
		t.errorf(key, "want an array, got %s", typeName(v))
		return false
	}
	good := true
	for i, e := range a {
		if msg := elem(i, e); msg != "" {
			path := indexKey(t.keyPath(key), i)
			t.d.errorf(path, "%s: %s", displayKey(path), msg)
			good = false
		}
	}
	return good
}

// Timeouts are in whole seconds in IPVS (struct ip_vs_timeout_user holds
// ints); the bounds keep them positive and within that.
const (
	minTimeout = time.Second
	maxTimeout = math.MaxInt32 * time.Second
)

// duration reads a Go duration string or an integer number of seconds,
// within IPVS's timeout bounds.
func (t *table) duration(key string) (time.Duration, bool) {
	return t.span(key, minTimeout, maxTimeout)
}

// sub reads a table written [key].
func (t *table) sub(key string, known ...string) (*table, bool) {
	v, ok := t.m[key]
	if !ok {
		return nil, false
	}
	name := "[" + displayKey(t.keyPath(key)) + "]"
	switch v := v.(type) {
	case map[string]any:
		return t.d.table(t.keyPath(key), name, v, known...), true
	case []map[string]any:
		t.errorf(key, "write %s, a single table, not [%s]", name, name)
	default:
		t.errorf(key, "want a table %s, got %s", name, typeName(v))
	}
	return nil, false
}

// list reads an array of tables, written [[key]] or as an array of inline
// tables.
func (t *table) list(key string, known ...string) ([]*table, bool) {
	v, ok := t.m[key]
	if !ok {
		return nil, false
	}
	path := t.keyPath(key)
	name := "[[" + displayKey(path) + "]]"
	var out []*table
	switch v := v.(type) {
	case []map[string]any:
		for i, m := range v {
			out = append(out, t.d.table(indexKey(path, i), name, m, known...))
		}
	case []any:
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				t.d.errorf(indexKey(path, i), "%s: want a table, got %s", displayKey(path), typeName(e))
				continue
			}
			out = append(out, t.d.table(indexKey(path, i), name, m, known...))
		}
	case map[string]any:
		t.errorf(key, "write %s, an array of tables, not [%s]", name, displayKey(path))
		return nil, false
	default:
		t.errorf(key, "want an array of tables %s, got %s", name, typeName(v))
		return nil, false
	}
	return out, true
}

func (d *decoder) config(doc map[string]any) *Config {
	root := d.table("", "the top level", doc, "director", "timeouts", "service", "group", "bgp", "sync", "failover")
	cfg := &Config{}
	if t, ok := root.sub("director", "interfaces", "xdp_mode", "zerocopy", "cpus", "log_level", "sloppy_tcp", "connections", "when_full",
		"batch_size", "ring_size", "umem_frames", "idle_spins", "need_wakeup", "verify_checksums", "fast_path"); ok {
		cfg.Director = d.director(t)
	} else if !root.has("director") {
		d.errorf("", "missing [director] table (it must list the interfaces)")
	}
	cfg.Timeouts = Timeouts{TCP: DefaultTCPTimeout, TCPFin: DefaultTCPFinTimeout, UDP: DefaultUDPTimeout}
	if t, ok := root.sub("timeouts", "tcp", "tcpfin", "udp"); ok {
		d.timeouts(t, &cfg.Timeouts)
	}
	if ts, ok := root.list("service", "name", "vip", "port", "protocol", "scheduler", "sched_flags", "persistence", "netmask", "local_addresses", "toa", "local_ports", "fast_path", "real", "health"); ok {
		cfg.Services = d.services(ts)
		d.healthChecks(ts, cfg.Services)
	}
	if ts, ok := root.list("group", "name", "mark", "match", "scheduler", "sched_flags", "persistence", "netmask", "local_addresses", "toa", "local_ports", "fast_path", "real", "health"); ok {
		groups := d.groups(ts, cfg.Services)
		d.healthChecks(ts, groups)
		cfg.Services = append(cfg.Services, groups...)
	}
	if t, ok := root.sub("bgp", "local_as", "router_id", "next_hop", "next_hop6", "listen_port", "hold_time", "communities", "peer"); ok {
		cfg.BGP = d.bgp(t)
	}
	if t, ok := root.sub("sync", "listen", "peers", "key", "node_id", "max_bytes_per_second"); ok {
		cfg.Sync = d.sync(t)
	}
	if t, ok := root.sub("failover", "listen", "peer", "priority", "interval", "key", "address"); ok {
		cfg.Failover = d.failover(t)
	}
	root.done()
	return cfg
}

func (d *decoder) director(t *table) Director {
	dir := Director{XDPMode: DefaultXDPMode, ZeroCopy: DefaultZeroCopy, LogLevel: DefaultLogLevel}
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
	if s, ok := t.enum("xdp_mode", XDPModeAuto, XDPModeDriver, XDPModeGeneric); ok {
		dir.XDPMode = s
	}
	if s, ok := t.enum("zerocopy", ZeroCopyAuto, ZeroCopyOn, ZeroCopyOff); ok {
		dir.ZeroCopy = s
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
	dir.FastPath = FastPathAuto
	if s, ok := t.enum("fast_path", FastPathAuto, FastPathXDP, FastPathOff); ok {
		dir.FastPath = s
	}
	dir.WhenFull = WhenFullRefuse
	if s, ok := t.enum("when_full", WhenFullRefuse, WhenFullEvict); ok {
		dir.WhenFull = s
	}
	d.tuning(t, &dir)
	t.done()
	return dir
}

// tuning reads [director]'s data path knobs.
func (d *decoder) tuning(t *table, dir *Director) {
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
			ring = xsk.DefaultRingSize
		}
		// The data path's own rule, checked here too so that the error
		// names the line.
		if need := xsk.MinFrames(ring, len(dir.Interfaces)); int(n) < need {
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
	if b, ok := t.boolean("need_wakeup"); ok {
		dir.NoNeedWakeup = !b
	}
	if b, ok := t.boolean("verify_checksums"); ok {
		dir.VerifyChecksums = b
	}
}

// Bounds of the data path knobs.
const (
	maxBatch      = 4096
	minRing       = 64
	maxRing       = 1 << 16
	maxUMEMFrames = 1 << 22
	maxIdleSpins  = 1 << 24
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

func (d *decoder) timeouts(t *table, to *Timeouts) {
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
	proto Protocol
}

func (d *decoder) services(ts []*table) []Service {
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
func (d *decoder) service(t *table) (s Service, complete bool) {
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
		if p, err := ParseProtocol(str); err != nil {
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

// fullnat decodes FullNAT's local addresses and TOA, and checks that every
// fullnat real server has a local address of its family, and that the
// methods that cannot change ports (dr, tun) do not.
func (d *decoder) fullnat(t *table, s *Service) {
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
	if v, ok := t.enum("fast_path", FastPathXDP, FastPathOff); ok {
		s.NoFastPath = v == FastPathOff
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
	for _, r := range s.Reals {
		if r.Method != MethodFullNAT {
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
func (d *decoder) policy(t *table, s *Service, vipOK bool) {
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
		b := a.As4()
		m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		ones := 0
		for m&0x80000000 != 0 {
			ones++
			m <<= 1
		}
		if m != 0 || ones == 0 {
			return 0, fmt.Sprintf("%q is not a contiguous netmask", v)
		}
		return ones, ""
	}
	return 0, fmt.Sprintf("want a netmask string or a prefix length, got %s", typeName(v))
}

// reals decodes the [[...real]] tables of s.
func (d *decoder) reals(t *table, s *Service, vipOK, portOK bool) {
	rs, ok := t.list("real", "address", "port", "weight", "method", "upper_threshold", "lower_threshold")
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
func (d *decoder) real(t *table, s *Service, vipOK, portOK bool) (r Real, ok bool) {
	r = Real{Port: s.Port, Weight: DefaultWeight, Method: MethodDR, Line: d.lines.lineOf(t.path)}
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
		if m, err := ParseMethod(str); err != nil {
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
	if s.IsGroup() && (r.Method == MethodDR || r.Method == MethodTUN) && portSet && r.Port != 0 {
		t.errorf("port", "method dr or tun keeps each packet's port: leave port out (or 0) in a group")
		realPortOK = false
	}
	if !s.IsGroup() && (r.Method == MethodDR || r.Method == MethodTUN) && portSet && realPortOK && portOK && r.Port != s.Port {
		t.errorf("port", "%d differs from the service port %d, but method %s cannot change ports (use method nat to remap)", r.Port, s.Port, methodName(r.Method))
		realPortOK = false
	}
	t.done()
	return r, addrOK && realPortOK
}

func methodName(m Method) string {
	return map[Method]string{MethodDR: "dr", MethodNAT: "nat", MethodTUN: "tun", MethodFullNAT: "fullnat"}[m]
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
