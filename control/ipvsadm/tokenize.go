package ipvsadm

import (
	"strings"
)

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
	const tun = "tunnel options are not supported by xvs (-i is ipip)"
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
		{long: "tun-type", arg: argRequired},
		{long: "tun-port", arg: argRequired, unsupported: tun},
		{long: "tun-nocsum", unsupported: tun},
		{long: "tun-csum", unsupported: tun},
		{long: "tun-remcsum", unsupported: tun},
		{long: "json"},
		// xvs's own, which ipvsadm lacks: long options only, so that
		// ipvsadm -R refuses them rather than misreads them. The first
		// two are DPVS's ipvsadm's.
		{long: "fullnat"},                       // -a/-e: FullNAT forwarding
		{long: "laddr", arg: argRequired},       // -A/-E: FullNAT's local addresses
		{long: "local-ports", arg: argRequired}, // -A/-E: FullNAT's local port range
		{long: "toa"},                           // -A/-E: FullNAT: the client's address in a TCP option
		{long: "no-fast-path"},                  // -A/-E: keep off the XDP fast path
		{long: "name", arg: argRequired},        // -A/-E: the service's or group's name
		{long: "match", arg: argRequired},       // -A/-E -f: a group's matches
		{long: "health", arg: argRequired},      // -A/-E: the health check
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

// splitLine splits a rule line into words: blanks separate them, single or
// double quotes group them, and a backslash escapes the next character.
func splitLine(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range line {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 || escaped {
		return nil, errorf("unterminated quote or escape")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
