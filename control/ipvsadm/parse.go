package ipvsadm

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/internal/xvs"
	"github.com/xvs-lb/xvs/sched"
)

// The commands, in ipvsadm's order; cmdNames are ipvsadm's names for them.
type cmdID int

const (
	cmdNone cmdID = iota
	cmdAdd
	cmdEdit
	cmdDel
	cmdFlush
	cmdList
	cmdAddDest
	cmdDelDest
	cmdEditDest
	cmdTimeout
	cmdRestore
	cmdSave
	cmdZero
	cmdHelp
	cmdVersion
	cmdStartDaemon
	cmdStopDaemon
	// xvs's own
	cmdStatus
	cmdReload
	cmdSaveConfig
	cmdHealth
)

func (c cmdID) String() string {
	return [...]string{"none", "add-service", "edit-service", "delete-service", "flush", "list",
		"add-server", "delete-server", "edit-server", "set", "restore", "save", "zero", "help", "version",
		"start-daemon", "stop-daemon", "status", "reload", "save-config", "health"}[c]
}

// The options that commands take, with ipvsadm's names.
type optID int

const (
	optNumeric optID = iota
	optConnection
	optService
	optScheduler
	optPersistent
	optNetmask
	optServer
	optForward
	optWeight
	optUThreshold
	optLThreshold
	optTimeout
	optDaemon
	optStats
	optRate
	optThresholds
	optPersistentConn
	optNoSort
	optExact
	optSchedFlags
	optIPv6
	optJSON
	optMcastInterface
	optSyncID
	optTunType
	// xvs's own (long options only)
	optLAddr
	optLocalPorts
	optTOA
	optNoFastPath
	optSynProxy
	optName
	optMatch
	optHealth
	numOpts
)

func (o optID) String() string {
	return [...]string{"numeric", "connection", "service-address", "scheduler", "persistent", "netmask",
		"real-server", "forwarding-method", "weight", "u-threshold", "l-threshold", "timeout", "daemon",
		"stats", "rate", "thresholds", "persistent-conn", "nosort", "exact", "sched-flags", "ipv6", "json",
		"mcast-interface", "syncid",
		"tun-type", "laddr", "local-ports", "toa", "no-fast-path", "syn-proxy", "name", "match", "health"}[o]
}

type optSet uint64 // a bit per optID: numOpts must stay <= 64

func (s optSet) has(o optID) bool { return s&(1<<o) != 0 }

func opts(os ...optID) optSet {
	var s optSet
	for _, o := range os {
		s |= 1 << o
	}
	return s
}

// commandRule is a row of ipvsadm's commands_v_options table: the options
// a command needs, those it allows, and those of which it takes one only.
type commandRule struct {
	need, allow optSet
	exclusive   []optSet // sets of options of which one only may be given
}

func ruleFor(c cmdID) commandRule {
	svc := opts(optService)
	switch c {
	case cmdAdd, cmdEdit:
		return commandRule{need: svc, allow: opts(optScheduler, optPersistent, optNetmask, optSchedFlags, optIPv6,
			optLAddr, optLocalPorts, optTOA, optNoFastPath, optSynProxy, optName, optMatch, optHealth)}
	case cmdDel:
		return commandRule{need: svc, allow: opts(optIPv6)}
	case cmdAddDest, cmdEditDest:
		return commandRule{need: opts(optService, optServer), allow: opts(optForward, optWeight, optUThreshold, optLThreshold, optIPv6, optTunType)}
	case cmdDelDest:
		return commandRule{need: opts(optService, optServer), allow: opts(optIPv6)}
	case cmdList:
		return commandRule{
			allow: opts(optNumeric, optConnection, optService, optTimeout, optDaemon, optStats, optRate,
				optThresholds, optPersistentConn, optNoSort, optExact, optIPv6, optJSON),
			// ipvsadm also makes -c and a service exclusive; xvs lists
			// one service's connections (api.Request.Filter).
			exclusive: []optSet{
				opts(optConnection, optTimeout, optDaemon),
				opts(optService, optTimeout, optDaemon),
			},
		}
	case cmdSave:
		return commandRule{allow: opts(optNumeric, optNoSort, optJSON)}
	case cmdZero:
		return commandRule{allow: opts(optService, optIPv6)}
	case cmdStatus, cmdHealth:
		return commandRule{allow: opts(optJSON)}
	case cmdStartDaemon:
		return commandRule{allow: opts(optMcastInterface, optSyncID)}
	}
	return commandRule{}
}

// check is ipvsadm's generic_opt_check.
func (r commandRule) check(c cmdID, set optSet) error {
	for o := range numOpts {
		if !set.has(o) {
			if r.need.has(o) {
				return errorf("You need to supply the '%s' option for the '%s' command", o, c)
			}
			continue
		}
		if !r.need.has(o) && !r.allow.has(o) {
			return errorf("Illegal '%s' option with the '%s' command", o, c)
		}
	}
	for _, ex := range r.exclusive {
		first := optID(-1)
		for o := range numOpts {
			if !set.has(o) || !ex.has(o) {
				continue
			}
			if first >= 0 {
				return errorf("The option '%s' conflicts with the '%s' option in the '%s' command", o, first, c)
			}
			first = o
		}
	}
	return nil
}

// against each other.
type parsed struct {
	cmd    cmdID
	set    optSet
	svc    api.ServiceID
	svcHas bool // the service address had a port
	svcArg string
	sched  string
	pers   time.Duration
	mask   string
	real   netip.AddrPort
	rHas   bool        // the real server address had a port
	fwd    *xvs.Method // -g, -m, -i; nil: not given
	weight *int
	upper  int
	lower  int
	flags  []string
	list   ListOptions
	json   bool
	daemon api.SyncDaemon // --start-daemon, --stop-daemon
	maskV6 bool           // -M came after -6 (ipvsadm reads the mask by the family known then)
	ext    serviceExt
}

// serviceExt are the service options of xvs's own.
type serviceExt struct {
	laddrs     []netip.Addr
	lports     [2]uint16
	toa        bool
	noFastPath bool
	synProxy   bool
	name       string
	matches    []api.Match
	health     string
}

func (p *parsed) setCommand(c cmdID) error {
	if p.cmd != cmdNone && p.cmd != c {
		return errorf("multiple commands specified")
	}
	p.cmd = c
	return nil
}

func (p *parsed) setOption(o optID) error {
	if p.set.has(o) {
		return errorf("multiple '%s' options specified", o)
	}
	p.set |= 1 << o
	return nil
}

// Parse parses an ipvsadm command line, without the program name: for
// example "-A", "-t", "198.18.0.100:80", "-s", "rr". No arguments lists the
// table, as ipvsadm does. The first argument may also be one of xvs's own
// commands: "status", "reload", "save-config FILE", "health", "drain",
// "undrain".
func Parse(args []string) (*Command, error) {
	if len(args) > 0 && slices.ContainsFunc(Commands(), func(c CommandDoc) bool { return c.Name == args[0] }) {
		return parseXVS(args)
	}
	occ, pos, err := tokenize(args)
	if err != nil {
		return nil, err
	}
	// ipvsadm takes the command from the first option only.
	if len(occ) > 0 && !isCommand(occ[0].opt) {
		return nil, &Error{TryHelp: true, Msg: fmt.Sprintf("the command (-A, -a, -L, ...) must come first, as in ipvsadm: `%s' is not a command", occ[0].name)}
	}
	var p parsed
	for _, oc := range occ {
		if err := p.apply(oc); err != nil {
			return nil, err
		}
	}
	switch p.cmd {
	case cmdHelp:
		return &Command{Layout: LayoutHelp}, nil
	case cmdVersion:
		return &Command{Layout: LayoutVersion}, nil
	case cmdNone:
		if len(args) > 0 {
			return nil, errorf("no command specified (try `%s -h')", programName)
		}
		p.cmd = cmdList
	}
	if err := ruleFor(p.cmd).check(p.cmd, p.set); err != nil {
		return nil, err
	}
	return p.command(pos)
}

// isCommand reports whether o names a command.
func isCommand(o option) bool {
	switch o.long {
	case "add-service", "edit-service", "delete-service", "clear", "list", "zero", "add-server", "edit-server",
		"delete-server", "set", "help", "version", "restore", "save", "start-daemon", "stop-daemon":
		return true
	}
	return o.short == 'l'
}

// apply records one option.
func (p *parsed) apply(oc occurrence) error {
	o := oc.opt
	if o.unsupported != "" {
		return errorf("option `%s': %s", oc.name, o.unsupported)
	}
	key := o.long
	if key == "" {
		key = string(o.short)
	}
	switch key {
	case "add-service":
		return p.setCommand(cmdAdd)
	case "edit-service":
		return p.setCommand(cmdEdit)
	case "delete-service":
		return p.setCommand(cmdDel)
	case "clear":
		return p.setCommand(cmdFlush)
	case "list", "l":
		return p.setCommand(cmdList)
	case "zero":
		return p.setCommand(cmdZero)
	case "add-server":
		return p.setCommand(cmdAddDest)
	case "edit-server":
		return p.setCommand(cmdEditDest)
	case "delete-server":
		return p.setCommand(cmdDelDest)
	case "set":
		return p.setCommand(cmdTimeout)
	case "help":
		return p.setCommand(cmdHelp)
	case "version":
		return p.setCommand(cmdVersion)
	case "restore":
		return p.setCommand(cmdRestore)
	case "save":
		return p.setCommand(cmdSave)
	case "start-daemon", "stop-daemon":
		c := cmdStartDaemon
		if key == "stop-daemon" {
			c = cmdStopDaemon
		}
		if err := p.setCommand(c); err != nil {
			return err
		}
		if oc.value != api.RoleMaster && oc.value != api.RoleBackup {
			if c == cmdStopDaemon {
				return errorf("illegal start_daemon specified") // sic: ipvsadm's
			}
			return errorf("illegal start-daemon parameter specified")
		}
		p.daemon.Role = oc.value
	case "mcast-interface":
		if err := p.setOption(optMcastInterface); err != nil {
			return err
		}
		// IP_VS_IFNAME_MAXLEN is 16 with the NUL.
		if oc.value == "" || len(oc.value) > 15 || strings.ContainsAny(oc.value, "/: \t\n") {
			return errorf("illegal multicast interface name specified")
		}
		p.daemon.Interface = oc.value
	case "syncid":
		if err := p.setOption(optSyncID); err != nil {
			return err
		}
		id, err := parseInt(oc.value, 0, 255)
		if err != nil {
			return errorf("illegal syncid specified")
		}
		p.daemon.SyncID = &id
	case "tcp-service", "udp-service":
		if err := p.setOption(optService); err != nil {
			return err
		}
		a, port, hasPort, err := parseAddrPort(oc.value)
		if err != nil {
			return errorf("illegal virtual server address[:port] specified: %v", err)
		}
		p.svc = api.ServiceID{Protocol: strings.TrimSuffix(key, "-service"), VIP: a, Port: port}
		p.svcHas, p.svcArg = hasPort, oc.value
	case "fwmark-service":
		if err := p.setOption(optService); err != nil {
			return err
		}
		m, err := strconv.ParseUint(oc.value, 10, 32)
		if err != nil || m == 0 {
			return errorf("invalid fwmark value `%s' specified", oc.value)
		}
		p.svc = api.ServiceID{Mark: uint32(m)}
		p.svcArg = oc.value
	case "scheduler":
		if err := p.setOption(optScheduler); err != nil {
			return err
		}
		if !slices.Contains(sched.Names(), oc.value) {
			return errorf("scheduler `%s' not found (known: %s)", oc.value, strings.Join(sched.Names(), ", "))
		}
		p.sched = oc.value
	case "persistent":
		if err := p.setOption(optPersistent); err != nil {
			return err
		}
		p.pers = DefaultPersistence
		if oc.hasVal {
			d, err := parseSeconds(oc.value, 1)
			if err != nil {
				return err
			}
			p.pers = d
		}
	case "netmask":
		if err := p.setOption(optNetmask); err != nil {
			return err
		}
		p.mask, p.maskV6 = oc.value, p.set.has(optIPv6)
	case "real-server":
		if err := p.setOption(optServer); err != nil {
			return err
		}
		a, port, hasPort, err := parseAddrPort(oc.value)
		if err != nil {
			return errorf("illegal real server address[:port] specified: %v", err)
		}
		p.real, p.rHas = netip.AddrPortFrom(a, port), hasPort
	case "gatewaying", "masquerading", "ipip", "fullnat":
		if err := p.setOption(optForward); err != nil {
			return err
		}
		// ParseMethod knows ipvsadm's option letters.
		name := string(o.short)
		if key == "fullnat" {
			name = key
		}
		m, err := xvs.ParseMethod(name)
		if err != nil {
			return err
		}
		p.fwd = &m
	case "tun-type":
		if err := p.setOption(optTunType); err != nil {
			return err
		}
		switch oc.value {
		case "ipip":
		case "gue", "gre":
			return errorf("tunnel type `%s' is not supported by xvs: -i is ipip (IPv6-in-IPv6 for IPv6) only", oc.value)
		default:
			return errorf("illegal tunnel type specified")
		}
	case "weight":
		w, err := p.number(oc, optWeight, MaxWeight, "weight")
		if err != nil {
			return err
		}
		p.weight = &w
	case "u-threshold":
		v, err := p.number(oc, optUThreshold, MaxThreshold, "u_threshold")
		if err != nil {
			return err
		}
		p.upper = v
	case "l-threshold":
		v, err := p.number(oc, optLThreshold, MaxThreshold, "l_threshold")
		if err != nil {
			return err
		}
		p.lower = v
	case "connection":
		return p.setOption(optConnection)
	case "timeout":
		return p.setOption(optTimeout)
	case "daemon":
		return p.setOption(optDaemon)
	case "numeric", "stats", "rate", "thresholds", "persistent-conn", "nosort", "exact":
		o, flag := p.listFlag(key)
		*flag = true
		return p.setOption(o)
	case "sort":
		// The default; accepted for compatibility, as ipvsadm does.
	case "ipv6":
		// ipvsadm: -6 applies to the -f given before it.
		if p.svc.Mark == 0 {
			return errorf("-6 used before -f")
		}
		return p.setOption(optIPv6)
	case "sched-flags":
		if err := p.setOption(optSchedFlags); err != nil {
			return err
		}
		for f := range strings.SplitSeq(oc.value, ",") {
			if f == "" {
				return errorf("invalid scheduler flag `%s'", oc.value)
			}
			if !slices.Contains(p.flags, f) {
				p.flags = append(p.flags, f)
			}
		}
	case "json":
		p.json = true
		return p.setOption(optJSON)
	case "laddr", "local-ports", "toa", "no-fast-path", "syn-proxy", "name", "match", "health":
		return p.extension(key, oc.value)
	default:
		return errorf("invalid option `%s'", oc.name)
	}
	return nil
}

// extension records one of xvs's own service options.
func (p *parsed) extension(key, v string) error {
	o := map[string]optID{"laddr": optLAddr, "local-ports": optLocalPorts, "toa": optTOA, "no-fast-path": optNoFastPath,
		"syn-proxy": optSynProxy, "name": optName, "match": optMatch, "health": optHealth}[key]
	if err := p.setOption(o); err != nil {
		return err
	}
	e := &p.ext
	switch key {
	case "laddr":
		for a := range strings.SplitSeq(v, ",") {
			addr, err := netip.ParseAddr(a)
			if err != nil || addr.Zone() != "" {
				return errorf("illegal local address `%s' specified in --laddr", a)
			}
			e.laddrs = append(e.laddrs, addr)
		}
	case "local-ports":
		lo, hi, ok := parsePorts(v)
		if !ok || lo == 0 {
			return errorf("illegal local port range `%s' specified (want lo-hi)", v)
		}
		e.lports = [2]uint16{lo, hi}
	case "toa":
		e.toa = true
	case "no-fast-path":
		e.noFastPath = true
	case "syn-proxy":
		e.synProxy = true
	case "name":
		if v == "" {
			return errorf("empty --name")
		}
		e.name = v
	case "match":
		ms, err := ParseMatches(v)
		if err != nil {
			return err
		}
		e.matches = ms
	case "health":
		if v == "" {
			return errorf("empty --health")
		}
		e.health = v
	}
	return nil
}

// ParseMatches parses --match's list of a group's matches:
// PROTO:VIP:PORTS[,...], PORTS a port or a range lo-hi, an IPv6 VIP in
// brackets ("tcp:198.18.0.100:443", "udp:[2001:db8::100]:8000-8010").
func ParseMatches(s string) ([]api.Match, error) {
	var out []api.Match
	for item := range strings.SplitSeq(s, ",") {
		proto, rest, _ := strings.Cut(item, ":")
		bad := errorf("illegal group match `%s' specified (want tcp|udp:VIP:PORT[-PORT])", item)
		if proto != "tcp" && proto != "udp" {
			return nil, bad
		}
		var host, ports string
		if strings.HasPrefix(rest, "[") {
			end := strings.Index(rest, "]:")
			if end < 0 {
				return nil, bad
			}
			host, ports = rest[1:end], rest[end+2:]
		} else {
			i := strings.LastIndexByte(rest, ':')
			if i < 0 {
				return nil, bad
			}
			host, ports = rest[:i], rest[i+1:]
		}
		vip, err := netip.ParseAddr(host)
		lo, hi, ok := parsePorts(ports)
		if err != nil || vip.Zone() != "" || vip.Is6() != strings.HasPrefix(rest, "[") || !ok || lo == 0 {
			return nil, bad
		}
		out = append(out, api.Match{Protocol: proto, VIP: vip, FromPort: lo, ToPort: hi})
	}
	return out, nil
}

// FormatMatches writes matches as ParseMatches reads them.
func FormatMatches(ms []api.Match) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		ports := strconv.Itoa(int(m.FromPort))
		if m.ToPort != m.FromPort {
			ports += "-" + strconv.Itoa(int(m.ToPort))
		}
		host := m.VIP.String()
		if m.VIP.Is6() {
			host = "[" + host + "]"
		}
		parts = append(parts, m.Protocol+":"+host+":"+ports)
	}
	return strings.Join(parts, ",")
}

// parsePorts parses a port or a range lo-hi.
func parsePorts(s string) (lo, hi uint16, ok bool) {
	a, b, isRange := strings.Cut(s, "-")
	l, err := parseInt(a, 0, math.MaxUint16)
	if err != nil {
		return 0, 0, false
	}
	h := l
	if isRange {
		if h, err = parseInt(b, l, math.MaxUint16); err != nil {
			return 0, 0, false
		}
	}
	return uint16(l), uint16(h), true
}

// number records option o, whose value must be a number in 0..max; what
// names it in ipvsadm's message.
func (p *parsed) number(oc occurrence, o optID, max int, what string) (int, error) {
	if err := p.setOption(o); err != nil {
		return 0, err
	}
	v, err := parseInt(oc.value, 0, max)
	if err != nil {
		return 0, errorf("illegal %s specified", what)
	}
	return v, nil
}

// listFlag is the listing option key's optID and the ListOptions field it
// sets.
func (p *parsed) listFlag(key string) (optID, *bool) {
	l := &p.list
	switch key {
	case "numeric":
		return optNumeric, &l.Numeric
	case "stats":
		return optStats, &l.Stats
	case "rate":
		return optRate, &l.Rate
	case "thresholds":
		return optThresholds, &l.Thresholds
	case "persistent-conn":
		return optPersistentConn, &l.PersistentConn
	case "nosort":
		return optNoSort, &l.NoSort
	case "exact":
		return optExact, &l.Exact
	}
	return 0, nil // not a listing option
}

// command checks the options against each other, as ipvsadm's
// process_options does, and builds the Command.
func (p *parsed) command(pos []string) (*Command, error) {
	c := &Command{List: p.list, JSON: p.json}
	if p.cmd == cmdTimeout {
		if len(pos) < 3 {
			return nil, errorf("--set option requires 3 timeout values")
		}
		var t [3]time.Duration
		for i := range t {
			d, err := parseSeconds(pos[i], 0)
			if err != nil {
				return nil, err
			}
			t[i] = d
		}
		c.Request = api.Request{Op: api.OpSetTimeouts, Timeouts: &api.Timeouts{TCP: t[0], TCPFin: t[1], UDP: t[2]}}
		pos = pos[3:]
	}
	if len(pos) > 0 {
		return nil, errorf("unexpected argument %s", pos[0])
	}

	switch p.cmd {
	case cmdAdd, cmdEdit:
		svc, err := p.service()
		if err != nil {
			return nil, err
		}
		c.Request = api.Request{Op: api.OpAddService, Service: svc}
		if p.cmd == cmdEdit {
			c.Request.Op = api.OpEditService
		}
	case cmdDel:
		c.Request = api.Request{Op: api.OpDelService, Service: &api.Service{ServiceID: p.svc}}
	case cmdFlush:
		c.Request = api.Request{Op: api.OpClear}
	case cmdAddDest, cmdEditDest, cmdDelDest:
		r, err := p.realServer()
		if err != nil {
			return nil, err
		}
		op := map[cmdID]api.Op{cmdAddDest: api.OpAddReal, cmdEditDest: api.OpEditReal, cmdDelDest: api.OpDelReal}[p.cmd]
		c.Request = api.Request{Op: op, Service: &api.Service{ServiceID: p.svc}, Real: r}
	case cmdList:
		c.Layout = LayoutServices
		c.Request = api.Request{Op: api.OpList, Exact: p.list.Exact}
		if p.set.has(optConnection) || p.set.has(optTimeout) || p.set.has(optDaemon) {
			if p.set.has(optStats) || p.set.has(optRate) || p.set.has(optThresholds) ||
				(p.set.has(optPersistentConn) && !p.set.has(optConnection)) {
				return nil, errorf("options conflicts in the list command")
			}
		}
		switch {
		case p.set.has(optConnection):
			c.Layout, c.Request.Op = LayoutConns, api.OpConns
		case p.set.has(optTimeout):
			c.Layout, c.Request.Op = LayoutTimeouts, api.OpGetTimeouts
		case p.set.has(optDaemon):
			c.Layout, c.Request = LayoutDaemon, api.Request{Op: api.OpDaemons}
		}
		if p.set.has(optService) {
			id := p.svc
			c.Request.Filter = &id
		}
	case cmdStartDaemon, cmdStopDaemon:
		d := p.daemon
		c.Request = api.Request{Op: api.OpStartDaemon, Daemon: &d}
		if p.cmd == cmdStopDaemon {
			c.Request.Op = api.OpStopDaemon
		}
	case cmdRestore:
		c.Request = api.Request{Op: api.OpRestore}
	case cmdSave:
		c.Layout = LayoutRules
		c.Request = api.Request{Op: api.OpList}
	case cmdZero:
		c.Request = api.Request{Op: api.OpZero}
		if p.set.has(optService) {
			c.Request.Service = &api.Service{ServiceID: p.svc}
		}
	}
	return c, nil
}

// service builds -A and -E's service.
func (p *parsed) service() (*api.Service, error) {
	e := &p.ext
	s := &api.Service{ServiceID: p.svc, Scheduler: p.sched, Persistence: p.pers, Flags: p.flags,
		Name: e.name, Matches: e.matches, LocalAddrs: e.laddrs, LocalPorts: e.lports, TOA: e.toa,
		NoFastPath: e.noFastPath, SynProxy: e.synProxy, Health: e.health}
	if p.svc.Mark == 0 && p.svc.Port == 0 && p.pers == 0 {
		return nil, errorf("Zero port specified for non-persistent service")
	}
	// ipvsadm resets an edited service's scheduler to wlc when -s is
	// missing; xvs keeps it (the server reads an empty one as unchanged).
	if p.cmd == cmdAdd && s.Scheduler == "" {
		s.Scheduler = DefaultScheduler
	}
	if p.svc.Mark == 0 && len(e.matches) > 0 {
		return nil, errorf("--match is for groups (-f) only")
	}
	if p.mask != "" {
		v6 := p.svc.VIP.Is6() || (p.svc.Mark != 0 && p.maskV6)
		bits, err := parseNetmask(p.mask, v6)
		if err != nil {
			return nil, err
		}
		s.PersistPrefix = bits
	}
	if err := checkFlags(s.Scheduler, s.Flags); err != nil {
		return nil, err
	}
	return s, nil
}

// checkFlags checks -b's flags against the scheduler, or against every
// scheduler when it is not known (-E without -s).
func checkFlags(scheduler string, flags []string) error {
	var any []string
	for _, name := range sched.Names() {
		any = append(any, sched.FlagsFor(name)...)
	}
	for _, f := range flags {
		if f == "flag-1" || f == "flag-2" || f == "flag-3" {
			continue // ipvsadm's generic flags, for any scheduler (see schedFlags)
		}
		if !slices.Contains(any, f) {
			return errorf("invalid scheduler flag `%s'", f)
		}
		if scheduler != "" && !slices.Contains(sched.FlagsFor(scheduler), f) {
			return errorf("incompatible scheduler flag `%s' (scheduler %s)", f, scheduler)
		}
	}
	return nil
}

// realServer builds -a, -e and -d's real server.
func (p *parsed) realServer() (*api.Real, error) {
	addr, port := p.real.Addr(), p.real.Port()
	if !p.rHas {
		port = p.svc.Port // ipvsadm copies the service's port
	}
	method := p.fwd
	if p.set.has(optTunType) && (method == nil || *method != xvs.MethodTUN) {
		return nil, errorf("Tunnel options conflict with forward method")
	}
	if p.cmd == cmdAddDest && method == nil {
		dr := xvs.MethodDR // ipvsadm's default
		method = &dr
	}
	if p.cmd != cmdDelDest && p.svc.Mark == 0 {
		// Direct routing and tunnelling cannot change the port.
		if method != nil && (*method == xvs.MethodDR || *method == xvs.MethodTUN) {
			port = p.svc.Port
		}
		if addr.Is4() != p.svc.VIP.Is4() && (method == nil || *method != xvs.MethodTUN) {
			return nil, errorf("Different address family is allowed only for tunneling servers")
		}
	}
	r := &api.Real{Addr: addr, Port: port}
	if p.cmd != cmdDelDest {
		r.Weight, r.UpperThreshold, r.LowerThreshold = p.weight, p.upper, p.lower
		if method != nil {
			r.Method = method.String()
		}
	}
	return r, nil
}

// CommandDoc is one of xvs's own commands, which ipvsadm has not.
type CommandDoc struct {
	Name, Args, Doc string
}

// Commands lists xvs's own commands that Parse reads, documented for
// xvsadm(8) and completion.
func Commands() []CommandDoc {
	return []CommandDoc{
		{"status", "[--json]", "Show the data path: workers, queues, XDP mode, copy or zero-copy, drops by reason, the fast path and the data path's knobs in effect."},
		{"health", "[--json]", "Show the health checks of the real servers: state, since when, the last failure."},
		{"reload", "", "Make xvsd read its configuration file again (as SIGHUP)."},
		{"save-config", "FILE", "Write the running configuration, changes made with xvsadm included, as a configuration file."},
		{"drain", "", "Withdraw this director's VIPs from its BGP peers (scale-out), keeping the connections it carries."},
		{"undrain", "", "Announce the VIPs again."},
	}
}

// parseXVS parses xvs's own commands.
func parseXVS(args []string) (*Command, error) {
	name, rest := args[0], args[1:]
	c := &Command{}
	var pos []string
	for _, a := range rest {
		switch {
		case a == "--json" && (name == "status" || name == "health"):
			if c.JSON {
				return nil, errorf("multiple 'json' options specified")
			}
			c.JSON = true
		case a == "-h" || a == "--help":
			return &Command{Layout: LayoutHelp}, nil
		case strings.HasPrefix(a, "-") && a != "-":
			return nil, errorf("invalid option `%s' for the '%s' command", a, name)
		default:
			pos = append(pos, a)
		}
	}
	switch name {
	case "status":
		c.Request.Op, c.Layout = api.OpStatus, LayoutStatus
	case "health":
		c.Request.Op, c.Layout = api.OpHealth, LayoutHealth
	case "reload":
		c.Request.Op = api.OpReload
	case "drain", "undrain":
		// Withdraw (or announce again) this director's VIPs over BGP.
		c.Request.Op = api.OpDrain
		if name == "undrain" {
			c.Request.Text = "off"
		}
	case "save-config":
		if len(pos) == 0 {
			return nil, errorf("save-config needs a file name")
		}
		c.Request.Op, c.Request.Path = api.OpSaveConfig, pos[0]
		pos = pos[1:]
	}
	if len(pos) > 0 {
		return nil, errorf("unexpected argument %s", pos[0])
	}
	return c, nil
}

// parseAddrPort parses host[:port] as ipvsadm does, without resolving
// names: "198.18.0.100", "198.18.0.100:80", "2001:db8::1", "[2001:db8::1]:80".
func parseAddrPort(s string) (netip.Addr, uint16, bool, error) {
	var zero netip.Addr
	if s == "" {
		return zero, 0, false, fmt.Errorf("empty address")
	}
	if strings.Trim(s, "0123456789") == "" {
		return zero, 0, false, fmt.Errorf("`%s' is a number, not an address", s)
	}
	host, port, hasPort := s, "", false
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 || !strings.HasPrefix(s[end+1:], ":") {
			return zero, 0, false, fmt.Errorf("`%s': want [IPv6]:port", s)
		}
		host, port, hasPort = s[1:end], s[end+2:], true
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return zero, 0, false, fmt.Errorf("`%s' is not an IPv6 address", host)
		}
	} else if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
		if a.Zone() != "" {
			return zero, 0, false, fmt.Errorf("`%s': zones are not supported", s)
		}
		return a, 0, false, nil
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port, hasPort = s[:i], s[i+1:], true
	}
	a, err := netip.ParseAddr(host)
	switch {
	case err != nil:
		return zero, 0, false, fmt.Errorf("`%s' is not a numeric address (%s resolves no host names)", host, programName)
	case a.Zone() != "":
		return zero, 0, false, fmt.Errorf("`%s': zones are not supported", host)
	case a.Is6() && s[0] != '[':
		return zero, 0, false, fmt.Errorf("`%s': write an IPv6 address with a port as [address]:port", s)
	}
	var p int
	if hasPort {
		p, err = parseInt(port, 0, math.MaxUint16)
		if err != nil {
			return zero, 0, false, fmt.Errorf("`%s' is not a numeric port (%s resolves no service names)", port, programName)
		}
	}
	return a, uint16(p), hasPort, nil
}

// parseNetmask parses -M: a dotted contiguous IPv4 mask, or an IPv6 prefix
// length; the result is the prefix length.
func parseNetmask(s string, v6 bool) (int, error) {
	if v6 {
		n, err := parseInt(s, 1, 128)
		if err != nil {
			return 0, errorf("illegal ipv6 netmask specified")
		}
		return n, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, errorf("illegal virtual server persistent mask specified: `%s' is not a dotted IPv4 netmask", s)
	}
	ones, ok := config.MaskBits(a)
	if !ok {
		return 0, errorf("illegal virtual server persistent mask specified: `%s' is not a contiguous netmask", s)
	}
	return ones, nil
}

// parseSeconds parses a timeout in seconds, min..MaxTimeout.
func parseSeconds(s string, min int) (time.Duration, error) {
	n, err := parseInt(s, min, int(MaxTimeout/time.Second))
	if err != nil {
		return 0, errorf("invalid timeout value `%s' specified", s)
	}
	return time.Duration(n) * time.Second, nil
}

// parseInt parses a decimal number in min..max, as ipvsadm's
// string_to_number.
func parseInt(s string, min, max int) (int, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < int64(min) || n > int64(max) {
		return 0, fmt.Errorf("%q is not a number in %d..%d", s, min, max)
	}
	return int(n), nil
}
