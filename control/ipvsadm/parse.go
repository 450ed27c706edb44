// Package ipvsadm speaks ipvsadm's language for xvs: it parses ipvsadm(8)
// command lines and rule files (-S output, -R input) into API requests, and
// prints API responses in ipvsadm's exact layouts, so that scripts and habits
// written for the kernel's IPVS carry over to xvsadm.
//
// Two things differ on purpose. Nothing is resolved: addresses and ports must
// be numeric, and listings are always numeric, as with -n. And options that
// configure what xvs does not have (connection sync daemons, one-packet
// scheduling, persistence engines, tunnel types other than ipip) are refused
// with an error naming them.
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
	"github.com/xvs-lb/xvs/sched"
)

// Defaults and limits as in ipvsadm.
const (
	DefaultScheduler   = "wlc"               // -A without -s
	DefaultPersistence = 300 * time.Second   // -p without a timeout
	MaxTimeout         = 31 * 24 * time.Hour // -p and --set
	MaxWeight          = sched.MaxWeight     // -w
	MaxThreshold       = math.MaxInt32       // -x, -y
)

// Forwarding methods (api.Real.Method).
const (
	MethodDR     = "dr"  // -g, the default
	MethodNAT    = "nat" // -m
	MethodTunnel = "tun" // -i
)

const (
	programName    = "xvsadm"
	ipvsVersion    = "1.2.1"         // the IPVS version that listings claim
	compatibleWith = "ipvsadm v1.31" // whose syntax and layouts these are
)

// Layout is what a command prints on success.
type Layout int

const (
	LayoutNone     Layout = iota // nothing (changes)
	LayoutServices               // -L: the service table
	LayoutConns                  // -L -c: the connection table
	LayoutTimeouts               // -L --timeout
	LayoutDaemon                 // -L --daemon: xvs runs no sync daemon, so nothing
	LayoutRules                  // -S: rules that -R reads back
	LayoutStatus                 // status: the data path
	LayoutHealth                 // health: health checks
	LayoutHelp                   // -h
	LayoutVersion                // -v
)

// ListOptions are the listing options of -L and -S.
type ListOptions struct {
	Numeric        bool // -n (listings are always numeric; kept for fidelity)
	Stats          bool // --stats
	Rate           bool // --rate
	Thresholds     bool // --thresholds
	PersistentConn bool // --persistent-conn
	NoSort         bool // --nosort
	Exact          bool // --exact: numbers without K/M/G units
}

// Command is a parsed command line: the request to send to xvsd and how to
// print its answer.
type Command struct {
	// Request is what to send. Its Op is empty for commands answered
	// without xvsd (LayoutHelp, LayoutVersion, LayoutDaemon). For -R, the
	// caller fills Request.Text with the rules (see ParseRules).
	Request api.Request
	Layout  Layout
	List    ListOptions
	JSON    bool // --json: print the response as JSON instead
}

// Local reports whether c is answered without asking xvsd.
func (c *Command) Local() bool { return c.Request.Op == "" }

// Error is a command line or rule that is not valid: the message names the
// offending option as ipvsadm's do.
type Error struct {
	Line int // of the rules text (ParseRules); 0 for a command line
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

func errorf(format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

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
	// xvs's own
	cmdStatus
	cmdReload
	cmdSaveConfig
	cmdHealth
)

func (c cmdID) String() string {
	return [...]string{"none", "add-service", "edit-service", "delete-service", "flush", "list",
		"add-server", "delete-server", "edit-server", "set", "restore", "save", "zero", "help", "version",
		"status", "reload", "save-config", "health"}[c]
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
	numOpts
)

func (o optID) String() string {
	return [...]string{"numeric", "connection", "service-address", "scheduler", "persistent", "netmask",
		"real-server", "forwarding-method", "weight", "u-threshold", "l-threshold", "timeout", "daemon",
		"stats", "rate", "thresholds", "persistent-conn", "nosort", "exact", "sched-flags", "ipv6", "json"}[o]
}

type optSet uint32

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
		return commandRule{need: svc, allow: opts(optScheduler, optPersistent, optNetmask, optSchedFlags, optIPv6)}
	case cmdDel:
		return commandRule{need: svc, allow: opts(optIPv6)}
	case cmdAddDest, cmdEditDest:
		return commandRule{need: opts(optService, optServer), allow: opts(optForward, optWeight, optUThreshold, optLThreshold, optIPv6)}
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

type argKind int

const (
	argNone argKind = iota
	argRequired
	argOptional // -p [timeout]
)

// option is one of the command line's options.
type option struct {
	long  string
	short byte
	arg   argKind
	// unsupported, when set, is why xvs refuses the option.
	unsupported string
}

func options() []option {
	const sync = "connection synchronisation is not supported by xvs"
	const tun = "tunnel types and options are not supported by xvs (-i is ipip)"
	return []option{
		{long: "add-service", short: 'A'},
		{long: "edit-service", short: 'E'},
		{long: "delete-service", short: 'D'},
		{long: "clear", short: 'C'},
		{long: "list", short: 'L'},
		{short: 'l'},
		{long: "zero", short: 'Z'},
		{long: "add-server", short: 'a'},
		{long: "edit-server", short: 'e'},
		{long: "delete-server", short: 'd'},
		{long: "set"},
		{long: "help", short: 'h'},
		{long: "version", short: 'v'},
		{long: "restore", short: 'R'},
		{long: "save", short: 'S'},
		{long: "start-daemon", arg: argRequired, unsupported: sync},
		{long: "stop-daemon", arg: argRequired, unsupported: sync},
		{long: "tcp-service", short: 't', arg: argRequired},
		{long: "udp-service", short: 'u', arg: argRequired},
		{long: "sctp-service", arg: argRequired, unsupported: "SCTP services are not supported by xvs"},
		{long: "fwmark-service", short: 'f', arg: argRequired},
		{long: "scheduler", short: 's', arg: argRequired},
		{long: "persistent", short: 'p', arg: argOptional},
		{long: "netmask", short: 'M', arg: argRequired},
		{long: "real-server", short: 'r', arg: argRequired},
		{long: "masquerading", short: 'm'},
		{long: "ipip", short: 'i'},
		{long: "gatewaying", short: 'g'},
		{long: "weight", short: 'w', arg: argRequired},
		{long: "u-threshold", short: 'x', arg: argRequired},
		{long: "l-threshold", short: 'y', arg: argRequired},
		{long: "numeric", short: 'n'},
		{long: "connection", short: 'c'},
		{long: "mcast-interface", arg: argRequired, unsupported: sync},
		{long: "syncid", arg: argRequired, unsupported: sync},
		{long: "timeout"},
		{long: "daemon"},
		{long: "stats"},
		{long: "rate"},
		{long: "thresholds"},
		{long: "persistent-conn"},
		{long: "nosort"},
		{long: "sort"},
		{long: "exact", short: 'X'},
		{long: "ipv6", short: '6'},
		{long: "ops", short: 'o', unsupported: "one-packet scheduling is not supported by xvs"},
		{long: "pe", arg: argRequired, unsupported: "persistence engines are not supported by xvs"},
		{long: "sched-flags", short: 'b', arg: argRequired},
		{long: "mcast-group", arg: argRequired, unsupported: sync},
		{long: "mcast-port", arg: argRequired, unsupported: sync},
		{long: "mcast-ttl", arg: argRequired, unsupported: sync},
		{long: "sync-maxlen", arg: argRequired, unsupported: sync},
		{long: "tun-info", unsupported: tun},
		{long: "tun-type", arg: argRequired, unsupported: tun},
		{long: "tun-port", arg: argRequired, unsupported: tun},
		{long: "tun-nocsum", unsupported: tun},
		{long: "tun-csum", unsupported: tun},
		{long: "tun-remcsum", unsupported: tun},
		{long: "json"},
	}
}

// occurrence is one option as found on the command line.
type occurrence struct {
	opt    option
	name   string // as written, for messages: "-w", "--weight"
	value  string
	hasVal bool
}

// tokenize splits args into options and positional arguments the way popt
// does for ipvsadm: bundled short options (-Ln), attached values (-w3,
// --weight=3), -p's optional value, and "--" ending the options.
func tokenize(args []string) ([]occurrence, []string, error) {
	table := options()
	byLong := map[string]option{}
	byShort := map[byte]option{}
	for _, o := range table {
		if o.long != "" {
			byLong[o.long] = o
		}
		if o.short != 0 {
			byShort[o.short] = o
		}
	}
	var occ []occurrence
	var pos []string
	// value takes an option's value: attached, or the next argument.
	value := func(o option, name, attached string, hasAttached bool, i *int) (occurrence, error) {
		oc := occurrence{opt: o, name: name}
		switch {
		case o.arg == argNone && hasAttached:
			return oc, errorf("option `%s' does not take a value", name)
		case o.arg == argNone:
		case hasAttached:
			oc.value, oc.hasVal = attached, true
		case o.arg == argRequired:
			if *i+1 >= len(args) {
				return oc, errorf("option `%s' requires an argument", name)
			}
			*i++
			oc.value, oc.hasVal = args[*i], true
		case o.arg == argOptional:
			if *i+1 < len(args) && !strings.HasPrefix(args[*i+1], "-") {
				*i++
				oc.value, oc.hasVal = args[*i], true
			}
		}
		return oc, nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			return occ, pos, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			o, ok := byLong[name]
			if !ok {
				return nil, nil, errorf("invalid option `--%s'", name)
			}
			oc, err := value(o, "--"+name, val, hasVal, &i)
			if err != nil {
				return nil, nil, err
			}
			occ = append(occ, oc)
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				o, ok := byShort[a[j]]
				if !ok {
					return nil, nil, errorf("invalid option `-%c'", a[j])
				}
				name := "-" + string(a[j])
				if o.arg == argNone {
					occ = append(occ, occurrence{opt: o, name: name})
					continue
				}
				rest := a[j+1:]
				oc, err := value(o, name, rest, rest != "", &i)
				if err != nil {
					return nil, nil, err
				}
				occ = append(occ, oc)
				break
			}
		default:
			pos = append(pos, a)
		}
	}
	return occ, pos, nil
}

// parsed collects a command line's options before they are checked
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
	rHas   bool // the real server address had a port
	fwd    string
	weight *int
	upper  int
	lower  int
	flags  []string
	list   ListOptions
	json   bool
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
	if len(args) > 0 {
		switch args[0] {
		case "status", "reload", "save-config", "health", "drain", "undrain":
			return parseXVS(args)
		}
	}
	occ, pos, err := tokenize(args)
	if err != nil {
		return nil, err
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
		p.mask = oc.value
	case "real-server":
		if err := p.setOption(optServer); err != nil {
			return err
		}
		a, port, hasPort, err := parseAddrPort(oc.value)
		if err != nil {
			return errorf("illegal real server address[:port] specified: %v", err)
		}
		p.real, p.rHas = netip.AddrPortFrom(a, port), hasPort
	case "gatewaying", "masquerading", "ipip":
		if err := p.setOption(optForward); err != nil {
			return err
		}
		p.fwd = map[string]string{"gatewaying": MethodDR, "masquerading": MethodNAT, "ipip": MethodTunnel}[key]
	case "weight":
		if err := p.setOption(optWeight); err != nil {
			return err
		}
		w, err := parseInt(oc.value, 0, MaxWeight)
		if err != nil {
			return errorf("illegal weight specified")
		}
		p.weight = &w
	case "u-threshold":
		if err := p.setOption(optUThreshold); err != nil {
			return err
		}
		v, err := parseInt(oc.value, 0, MaxThreshold)
		if err != nil {
			return errorf("illegal u_threshold specified")
		}
		p.upper = v
	case "l-threshold":
		if err := p.setOption(optLThreshold); err != nil {
			return err
		}
		v, err := parseInt(oc.value, 0, MaxThreshold)
		if err != nil {
			return errorf("illegal l_threshold specified")
		}
		p.lower = v
	case "numeric":
		p.list.Numeric = true
		return p.setOption(optNumeric)
	case "connection":
		return p.setOption(optConnection)
	case "timeout":
		return p.setOption(optTimeout)
	case "daemon":
		return p.setOption(optDaemon)
	case "stats":
		p.list.Stats = true
		return p.setOption(optStats)
	case "rate":
		p.list.Rate = true
		return p.setOption(optRate)
	case "thresholds":
		p.list.Thresholds = true
		return p.setOption(optThresholds)
	case "persistent-conn":
		p.list.PersistentConn = true
		return p.setOption(optPersistentConn)
	case "nosort":
		p.list.NoSort = true
		return p.setOption(optNoSort)
	case "sort":
		// The default; accepted for compatibility, as ipvsadm does.
	case "exact":
		p.list.Exact = true
		return p.setOption(optExact)
	case "ipv6":
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
	default:
		return errorf("invalid option `%s'", oc.name)
	}
	return nil
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
	if p.set.has(optIPv6) && p.svc.Mark == 0 {
		return nil, errorf("-6 used without -f")
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
			c.Layout, c.Request = LayoutDaemon, api.Request{}
		}
		if p.set.has(optService) {
			id := p.svc
			c.Request.Filter = &id
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
	s := &api.Service{ServiceID: p.svc, Scheduler: p.sched, Persistence: p.pers, Flags: p.flags}
	if p.svc.Mark == 0 && p.svc.Port == 0 && p.pers == 0 {
		return nil, errorf("Zero port specified for non-persistent service")
	}
	// ipvsadm resets an edited service's scheduler to wlc when -s is
	// missing; xvs keeps it (the server reads an empty one as unchanged).
	if p.cmd == cmdAdd && s.Scheduler == "" {
		s.Scheduler = DefaultScheduler
	}
	if p.mask != "" {
		v6 := p.svc.VIP.Is6() || (p.svc.Mark != 0 && p.set.has(optIPv6))
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
	if p.cmd == cmdAddDest && method == "" {
		method = MethodDR
	}
	if p.cmd != cmdDelDest && p.svc.Mark == 0 {
		// Direct routing and tunnelling cannot change the port.
		if method == MethodDR || method == MethodTunnel {
			port = p.svc.Port
		}
		if addr.Is4() != p.svc.VIP.Is4() && method != MethodTunnel {
			return nil, errorf("Different address family is allowed only for tunneling servers")
		}
	}
	r := &api.Real{Addr: addr, Port: port}
	if p.cmd != cmdDelDest {
		r.Method, r.Weight, r.UpperThreshold, r.LowerThreshold = method, p.weight, p.upper, p.lower
	}
	return r, nil
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
	b := a.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := 0
	for m&(1<<31) != 0 {
		ones++
		m <<= 1
	}
	if m != 0 || ones == 0 {
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
