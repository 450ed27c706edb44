package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/control/ipvsadm"
	"github.com/xvs-lb/xvs/internal/manpage"
	"github.com/xvs-lb/xvs/sched"
)

// localCommand is a command xvsadm runs itself, without xvsd.
type localCommand struct {
	name, args, doc string
	run             func(args []string, stdout, stderr io.Writer) int
	flags           func(stderr io.Writer) *flag.FlagSet // nil: none
}

// localCommands are xvsadm's commands beside ipvsadm's and xvsd's: the
// dispatch table run reads, and what xvsadm(8) and the completion list.
func localCommands() []localCommand {
	return []localCommand{
		{name: "realserver", args: "dr|tun|nat --vip VIP[,VIP...] [options]",
			doc: "Run on a real server: set it up as a classic LVS setup does by hand (DR: the VIPs on lo, arp_ignore=1, arp_announce=2; TUN: that, rp_filter off and xvs's XDP decapsulator; NAT: the default route through the director), recording what changed for --undo.",
			run: realserverMain, flags: func(w io.Writer) *flag.FlagSet { fs, _ := realserverFlags(w); return fs }},
		{name: "import-keepalived", args: "[-o FILE] [-interface IF,...] [-key KEY] [-config-id ID] KEEPALIVED.CONF",
			doc: "Write the xvs configuration equivalent to a keepalived configuration: virtual servers and groups, real servers, their TCP_CHECK, HTTP_GET, SSL_GET and DNS_CHECK checkers, VRRP instances as [failover]. What has no equivalent is reported on standard error with its file and line and \"not supported\"; the exit status is non-zero only for a syntax error.",
			run: importMain, flags: func(w io.Writer) *flag.FlagSet { fs, _, _, _, _ := importFlags(w); return fs }},
		{name: "manpage", doc: "Write this manual page (roff) to standard output.", run: manpageMain},
		{name: "completion", args: "bash", doc: "Write bash completion for xvsadm to standard output: commands, options, schedulers, and the running director's services (from xvsadm -S -n).", run: completionMain},
	}
}

func lookupLocal(name string) (localCommand, bool) {
	i := slices.IndexFunc(localCommands(), func(c localCommand) bool { return c.name == name })
	if i < 0 {
		return localCommand{}, false
	}
	return localCommands()[i], true
}

func manpageMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: xvsadm manpage")
		return exitUsage
	}
	p := xvsadmPage()
	if err := p.Write(stdout); err != nil {
		fmt.Fprintf(stderr, "xvsadm manpage: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// optionTag writes an ipvsadm option as xvsadm(8) lists it.
func optionTag(o ipvsadm.OptionDoc) string {
	var names []string
	if o.Long != "" {
		names = append(names, "--"+o.Long)
	}
	if o.Short != "" {
		names = append(names, "-"+o.Short)
	}
	tag := strings.Join(names, ", ")
	switch {
	case o.Value != "" && o.Optional:
		tag += " [" + o.Value + "]"
	case o.Value != "":
		tag += " " + o.Value
	}
	return tag
}

func xvsadmPage() manpage.Page {
	var opts, refused, cmds []manpage.Item
	for _, o := range ipvsadm.Options() {
		if o.Unsupported != "" {
			refused = append(refused, manpage.Item{Tag: optionTag(o), Text: "Refused: " + o.Unsupported + "."})
			continue
		}
		opts = append(opts, manpage.Item{Tag: optionTag(o), Text: o.Doc})
	}
	opts = append(opts, manpage.Item{Tag: "--socket PATH", Text: "xvsd's control socket (default $" + SocketEnv + ", else " + api.DefaultSocket + "). ipvsadm's -S is --save, so the socket has a long option only."})
	for _, c := range ipvsadm.Commands() {
		cmds = append(cmds, manpage.Item{Tag: strings.TrimSpace(c.Name + " " + c.Args), Text: c.Doc})
	}
	var sections []manpage.Section
	for _, c := range localCommands() {
		cmds = append(cmds, manpage.Item{Tag: strings.TrimSpace(c.name + " " + c.args), Text: c.doc})
		if c.flags != nil {
			sections = append(sections, manpage.Section{Heading: c.name + " options", Items: manpage.Flags(c.flags(io.Discard), "-")})
		}
	}
	p := manpage.Page{
		Name: "xvsadm", Section: "8", Summary: "administer the xvs director with ipvsadm's commands",
		Synopsis: []string{
			"xvsadm -A|-E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags] [--name name] [--match proto:vip:ports,...] [--laddr address,...] [--local-ports lo-hi] [--toa] [--no-fast-path] [--health check]",
			"xvsadm -D virtual-service", "xvsadm -C", "xvsadm -R", "xvsadm -S [-n]",
			"xvsadm -a|-e virtual-service -r server-address [-g|-i [--tun-type ipip]|-m|--fullnat] [-w weight] [-x upper] [-y lower]",
			"xvsadm -d virtual-service -r server-address",
			"xvsadm -L|-l [virtual-service] [options] [--json]", "xvsadm -Z [virtual-service]", "xvsadm --set tcp tcpfin udp",
			"xvsadm --start-daemon master|backup [--mcast-interface interface] [--syncid sid]", "xvsadm --stop-daemon master|backup",
			"xvsadm status|health [--json] | reload | save-config FILE | drain | undrain",
			"xvsadm import-keepalived [-o FILE] KEEPALIVED.CONF", "xvsadm realserver dr|tun|nat --vip VIP ...", "xvsadm -v|-h",
		},
		Sections: []manpage.Section{
			{Heading: "Description", Text: []string{
				"xvsadm administers xvsd(8) as ipvsadm(8) administers the kernel's IPVS: the same commands, options, messages and output layouts, sent to xvsd over its control socket. Changes take effect at once and are kept in xvsd's running configuration: xvsadm -S writes them as rules, xvsadm save-config as a configuration file; a reload from the file replaces them.",
				"The command comes first, as ipvsadm takes it: the first option must be one (-A, -a, -L, --start-daemon, ...).",
				"Addresses and ports are numeric: xvsadm resolves no names. xvs has no firewall marks: a group (-f, [[group]] in xvs.toml(5)) is added with -A -f MARK --match, its matches saying which packets it takes, and -6 after -f makes it IPv6.",
				"What xvs has and ipvsadm lacks is set with long options of xvs's own (--fullnat, --laddr, --local-ports, --toa, --no-fast-path, --name, --match, --health), which -S writes after ipvsadm's options so that -S, -C and -R lose nothing; a real ipvsadm -R refuses them (invalid option) rather than misreads them. Tunnel servers are written with --tun-type ipip, as ipvsadm 1.31 writes them.",
				"Connection synchronisation: --start-daemon and --stop-daemon start and stop the roles of [sync] in xvsd's configuration file (xvs.toml(5)), which names the peers and the shared key; xvs keeps its unicast, HMAC-authenticated transport, so there is no multicast group, port or TTL to set. -L --daemon lists the roles that run in ipvsadm's layout.",
			}},
			{Heading: "Options", Items: opts},
			{Heading: "Commands of xvs", Items: cmds},
		},
	}
	p.Sections = append(p.Sections, sections...)
	p.Sections = append(p.Sections,
		manpage.Section{Heading: "Refused options", Text: []string{"ipvsadm options for what xvs does not have; xvsadm names them in its error."}, Items: refused},
		manpage.Section{Heading: "Exit status", Text: []string{"As ipvsadm's, whose messages xvsadm prints alone: 0 on success; 255 when xvsd refused the command (\"No such service\", \"Daemon has already run\"), and for a command line whose first option is not a command (after ipvsadm's \"Try\" line); 2 for any other command line that is not valid, and when xvsd cannot be reached; 1 when a command of xvsadm's own (realserver, import-keepalived, manpage, completion) fails."}},
		manpage.Section{Heading: "Environment", Items: []manpage.Item{{Tag: SocketEnv, Text: "xvsd's control socket."}}},
		manpage.Section{Heading: "See also", Text: []string{"xvsd(8), xvs.toml(5), ipvsadm(8), keepalived.conf(5)"}},
	)
	return p
}

func completionMain(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "bash" {
		fmt.Fprintln(stderr, "usage: xvsadm completion bash")
		return exitUsage
	}
	if _, err := io.WriteString(stdout, bashCompletion()); err != nil {
		fmt.Fprintf(stderr, "xvsadm completion: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// bashCompletion is the completion script, made from the same tables the
// command line is parsed with.
func bashCompletion() string {
	var options []string
	for _, o := range ipvsadm.Options() {
		if o.Unsupported != "" {
			continue
		}
		if o.Long != "" {
			options = append(options, "--"+o.Long)
		}
		if o.Short != "" {
			options = append(options, "-"+o.Short)
		}
	}
	options = append(options, "--socket")
	var commands []string
	for _, c := range ipvsadm.Commands() {
		commands = append(commands, c.Name)
	}
	var local strings.Builder
	for _, c := range localCommands() {
		commands = append(commands, c.name)
		var flags []string
		if c.flags != nil {
			c.flags(io.Discard).VisitAll(func(f *flag.Flag) { flags = append(flags, "-"+f.Name) })
		}
		switch c.name {
		case "realserver":
			fmt.Fprintf(&local, "        realserver)\n            if [[ $COMP_CWORD -eq 2 ]]; then COMPREPLY=($(compgen -W \"dr tun nat\" -- \"$cur\")); else COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")); fi\n            return ;;\n", strings.Join(flags, " "))
		case "import-keepalived":
			fmt.Fprintf(&local, "        import-keepalived)\n            case \"$prev\" in -o) COMPREPLY=($(compgen -f -- \"$cur\")); return ;; -interface) COMPREPLY=($(compgen -W \"$(ls /sys/class/net 2>/dev/null)\" -- \"$cur\")); return ;; -key|-config-id) return ;; esac\n            if [[ \"$cur\" == -* ]]; then COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")); else COMPREPLY=($(compgen -f -- \"$cur\")); fi\n            return ;;\n", strings.Join(flags, " "))
		case "completion":
			local.WriteString("        completion) COMPREPLY=($(compgen -W \"bash\" -- \"$cur\")); return ;;\n")
		}
	}
	var flagNames []string
	for _, s := range sched.Names() {
		flagNames = append(flagNames, sched.FlagsFor(s)...)
	}
	flagNames = append(flagNames, "flag-1", "flag-2", "flag-3") // ipvsadm's generic ones
	slices.Sort(flagNames)
	flagNames = slices.Compact(flagNames)
	return fmt.Sprintf(`# bash completion for xvsadm(8), written by "xvsadm completion bash".

# _xvsadm_services lists the running director's services as xvsadm -S -n
# writes them ("-A -t 198.18.0.100:80 -s rr"), for option $1 (-t, -u, -f).
_xvsadm_services() {
    "${COMP_WORDS[0]}" -S -n 2>/dev/null | while read -r cmd opt svc rest; do
        [[ "$cmd" == -A && "$opt" == "$1" ]] && printf '%%s\n' "$svc"
    done
}

_xvsadm() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    local commands="%s"
    local options="%s"
    COMPREPLY=()
    if [[ $COMP_CWORD -gt 1 ]]; then
        case "${COMP_WORDS[1]}" in
%s        save-config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        status|health) COMPREPLY=($(compgen -W "--json" -- "$cur")); return ;;
        reload|drain|undrain|manpage) return ;;
        esac
    fi
    case "$prev" in
        -t|--tcp-service) COMPREPLY=($(compgen -W "$(_xvsadm_services -t)" -- "$cur")); return ;;
        -u|--udp-service) COMPREPLY=($(compgen -W "$(_xvsadm_services -u)" -- "$cur")); return ;;
        -f|--fwmark-service) COMPREPLY=($(compgen -W "$(_xvsadm_services -f)" -- "$cur")); return ;;
        -s|--scheduler) COMPREPLY=($(compgen -W "%s" -- "$cur")); return ;;
        -b|--sched-flags) COMPREPLY=($(compgen -W "%s" -- "$cur")); return ;;
        --tun-type) COMPREPLY=($(compgen -W "ipip" -- "$cur")); return ;;
        --start-daemon|--stop-daemon) COMPREPLY=($(compgen -W "master backup" -- "$cur")); return ;;
        --mcast-interface) COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur")); return ;;
        --socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        -r|--real-server|-w|--weight|-x|--u-threshold|-y|--l-threshold|-M|--netmask|-p|--persistent|--syncid) return ;;
        --laddr|--local-ports|--name|--match|--health) return ;;
    esac
    if [[ $COMP_CWORD -eq 1 && "$cur" != -* ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
    fi
}
complete -F _xvsadm xvsadm
`, strings.Join(commands, " "), strings.Join(options, " "), local.String(), strings.Join(sched.Names(), " "), strings.Join(flagNames, " "))
}
