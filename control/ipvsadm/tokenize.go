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
	// value names the option's argument in help and manual pages.
	value string
	// doc says what the option does, for xvsadm(8).
	doc string
	// unsupported, when set, is why xvs refuses the option.
	unsupported string
}

func options() []option {
	const mcast = "xvs syncs over unicast UDP to the peers [sync] names in the configuration file, authenticated with its key: there is no multicast group, port, TTL or message size to set"
	const tun = "tunnel options are not supported by xvs (-i is ipip)"
	return []option{
		{long: "add-service", short: 'A', doc: "Add a virtual service."},
		{long: "edit-service", short: 'E', doc: "Edit a virtual service: its scheduler, persistence and flags."},
		{long: "delete-service", short: 'D', doc: "Delete a virtual service and its real servers."},
		{long: "clear", short: 'C', doc: "Clear the whole table."},
		{long: "list", short: 'L', doc: "List the table, one service, the connections (-c), the timeouts (--timeout) or the sync daemons (--daemon)."},
		{short: 'l', doc: "The same as -L."},
		{long: "zero", short: 'Z', doc: "Zero the counters of one service, or of all."},
		{long: "add-server", short: 'a', doc: "Add a real server to a service."},
		{long: "edit-server", short: 'e', doc: "Edit a real server: its weight, forwarding method and thresholds."},
		{long: "delete-server", short: 'd', doc: "Delete a real server from a service; its connections drain."},
		{long: "set", value: "tcp tcpfin udp", doc: "Set the idle timeouts of TCP, TCP after FIN and UDP connections, in seconds; 0 keeps one."},
		{long: "help", short: 'h', doc: "Print the usage."},
		{long: "version", short: 'v', doc: "Print xvs's version, stamped at build time (as xvsd -version prints it), and whose syntax and layouts xvsadm speaks."},
		{long: "restore", short: 'R', doc: "Apply rules, as -S writes them, from standard input: all of them or none."},
		{long: "save", short: 'S', doc: "Write the table as rules that -R reads back."},
		{long: "start-daemon", arg: argRequired, value: "master|backup", doc: "Start a connection sync role: a master sends this director's connections to the peers of [sync], a backup installs theirs. The transport is [sync]'s unicast, HMAC-authenticated UDP; the peers and the key come from the configuration file."},
		{long: "stop-daemon", arg: argRequired, value: "master|backup", doc: "Stop a connection sync role."},
		{long: "tcp-service", short: 't', arg: argRequired, value: "host[:port]", doc: "A TCP virtual service."},
		{long: "udp-service", short: 'u', arg: argRequired, value: "host[:port]", doc: "A UDP virtual service."},
		{long: "sctp-service", arg: argRequired, value: "host[:port]", unsupported: "SCTP services are not supported by xvs"},
		{long: "fwmark-service", short: 'f', arg: argRequired, value: "fwmark", doc: "A group of the configuration file, by its mark."},
		{long: "scheduler", short: 's', arg: argRequired, value: "scheduler", doc: "The service's scheduler (default wlc)."},
		{long: "persistent", short: 'p', arg: argOptional, value: "timeout", doc: "Make the service persistent: a client keeps its real server for timeout seconds (default 300) after its last connection."},
		{long: "netmask", short: 'M', arg: argRequired, value: "netmask", doc: "Persistence granularity: clients in one network of this mask share a real server."},
		{long: "real-server", short: 'r', arg: argRequired, value: "host[:port]", doc: "The real server."},
		{long: "masquerading", short: 'm', doc: "Forward by NAT."},
		{long: "ipip", short: 'i', doc: "Forward by IPIP tunnel."},
		{long: "gatewaying", short: 'g', doc: "Forward by direct routing (the default)."},
		{long: "weight", short: 'w', arg: argRequired, value: "weight", doc: "The real server's weight, 0..65535 (default 1)."},
		{long: "u-threshold", short: 'x', arg: argRequired, value: "uthreshold", doc: "Upper threshold of connections: above it the server takes no new ones."},
		{long: "l-threshold", short: 'y', arg: argRequired, value: "lthreshold", doc: "Lower threshold of connections: below it the server takes new ones again."},
		{long: "numeric", short: 'n', doc: "Numeric output (xvsadm resolves no names: always)."},
		{long: "connection", short: 'c', doc: "List the connections."},
		{long: "mcast-interface", arg: argRequired, value: "interface", doc: "With --start-daemon: the interface sync datagrams leave and arrive by (default the route's)."},
		{long: "syncid", arg: argRequired, value: "sid", doc: "With --start-daemon: the sync id, 0..255, a master stamps on what it sends and a backup installs only (0, the default: a backup installs any)."},
		{long: "timeout", doc: "List the timeouts."},
		{long: "daemon", doc: "List the sync daemons that run."},
		{long: "stats", doc: "List the counters."},
		{long: "rate", doc: "List the rates."},
		{long: "thresholds", doc: "List the thresholds."},
		{long: "persistent-conn", doc: "List the persistence templates per real server."},
		{long: "nosort", doc: "Do not sort the listing."},
		{long: "sort", doc: "Sort the listing (the default)."},
		{long: "exact", short: 'X', doc: "Exact numbers, without K, M, G."},
		{long: "ipv6", short: '6', doc: "With -f: the group is IPv6."},
		{long: "ops", short: 'o', unsupported: "one-packet scheduling is not supported by xvs"},
		{long: "pe", arg: argRequired, value: "engine", unsupported: "persistence engines are not supported by xvs"},
		{long: "sched-flags", short: 'b', arg: argRequired, value: "flags", doc: "Scheduler flags, comma-separated: sh-fallback, sh-port, mh-fallback, mh-port, or ipvsadm's generic flag-1, flag-2, flag-3 (flag-1 and flag-2 are sh's and mh's -fallback and -port; other schedulers read none)."},
		{long: "mcast-group", arg: argRequired, value: "address", unsupported: mcast},
		{long: "mcast-port", arg: argRequired, value: "port", unsupported: mcast},
		{long: "mcast-ttl", arg: argRequired, value: "ttl", unsupported: mcast},
		{long: "sync-maxlen", arg: argRequired, value: "length", unsupported: mcast},
		{long: "tun-info", unsupported: tun},
		{long: "tun-type", arg: argRequired, value: "type", doc: "With -a/-e and -i: the tunnel type; ipip only (IPv6-in-IPv6 for IPv6), as ipvsadm 1.31's -S writes it; gue and gre are refused."},
		{long: "tun-port", arg: argRequired, value: "port", unsupported: tun},
		{long: "tun-nocsum", unsupported: tun},
		{long: "tun-csum", unsupported: tun},
		{long: "tun-remcsum", unsupported: tun},
		{long: "json", doc: "Print the answer as JSON."},
		// xvs's own, which ipvsadm lacks: long options only, so that
		// ipvsadm -R refuses them rather than misreads them. The first
		// two are DPVS's ipvsadm's.
		{long: "fullnat", doc: "xvs's (DPVS's): with -a/-e, forward by FullNAT: connections reach the real server from one of the service's local addresses (--laddr)."},
		{long: "laddr", arg: argRequired, value: "address[,address...]", doc: "xvs's (DPVS's): with -A/-E, FullNAT's local addresses (LIPs), required when a real server uses --fullnat."},
		{long: "local-ports", arg: argRequired, value: "lo-hi", doc: "xvs's: with -A/-E, the local ports FullNAT takes from each local address (default 1024-65535)."},
		{long: "syn-proxy", doc: "xvs's: with -A/-E, the director answers the service's SYNs with SYN cookies and opens a connection to a real server only when the client's ACK proves its address (TCP; NAT and FullNAT real servers)."},
		{long: "toa", doc: "xvs's: with -A/-E, FullNAT passes the client's address and port to the real servers in a TCP option on the SYN (DPVS's TOA)."},
		{long: "no-fast-path", doc: "xvs's: with -A/-E, keep the service's connections off the XDP fast path."},
		{long: "name", arg: argRequired, value: "name", doc: "xvs's: with -A/-E, the service's or group's name, unique."},
		{long: "match", arg: argRequired, value: "proto:vip:ports[,...]", doc: "xvs's: with -A/-E -f, what the group catches: tcp or udp, a VIP (an IPv6 one in brackets) and a port or a range lo-hi, comma-separated (\"tcp:198.18.0.100:443,udp:[2001:db8::100]:8000-8010\"); required to add a group."},
		{long: "health", arg: argRequired, value: "check", doc: "xvs's: with -A/-E, the health check, a [service.health] table's keys as a TOML inline table's contents ('check = \"tcp\", interval = \"2s\"'), as -S writes it; check = \"none\" removes it."},
	}
}

// OptionDoc is one of xvsadm's ipvsadm options, for its manual page and
// completion.
type OptionDoc struct {
	Long  string // without "--"; "" when it has a short form only
	Short string // without "-"; "" when it has none
	Value string // its argument's name; "" when it takes none
	// Optional is set when the argument may be left out (-p).
	Optional bool
	Doc      string
	// Unsupported says why xvs refuses it; Doc is empty then.
	Unsupported string
}

// Options returns the option table that the command line is parsed with,
// documented.
func Options() []OptionDoc {
	var out []OptionDoc
	for _, o := range options() {
		d := OptionDoc{Long: o.long, Doc: o.doc, Unsupported: o.unsupported, Optional: o.arg == argOptional}
		if o.short != 0 {
			d.Short = string(o.short)
		}
		if o.arg != argNone || o.long == "set" {
			d.Value = o.value
		}
		out = append(out, d)
	}
	return out
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
