package ipvsadm

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/xvs-lb/xvs/control/api"
)

// WriteRules writes services as ipvsadm -S -n does: an -A line per service,
// each followed by an -a line per real server, sorted as ipvsadm sorts them
// unless o.NoSort. Real servers being drained are gone from the
// configuration and left out. Tunnel servers carry 1.31's --tun-type ipip.
//
// So that -R restores everything, two things are added. The thresholds
// (-x, -y) are written when set, as ipvsadm reads but never writes them.
// And what xvs has that ipvsadm lacks is written after ipvsadm's options,
// as long options of xvs's own, which a real ipvsadm -R refuses loudly
// ("invalid option") rather than misreads: --fullnat (a FullNAT real
// server, in -g's place) and, on -A, --name, --match (a group's matches),
// --laddr and --local-ports (FullNAT's local addresses and ports), --toa,
// --no-fast-path and --health (the health check).
func WriteRules(w io.Writer, services []api.ServiceState, o ListOptions) {
	for _, s := range sortedServices(services, o.NoSort) {
		name := ruleName(&s.ServiceID, markIs6(&s.Service))
		var b strings.Builder
		b.WriteString("-A " + name)
		if s.Scheduler != "" {
			b.WriteString(" -s " + s.Scheduler)
		}
		if s.Persistence > 0 {
			fmt.Fprintf(&b, " -p %d", seconds(s.Persistence))
			if m := mask(&s.Service); m != "" {
				b.WriteString(" -M " + m)
			}
		}
		if len(s.Flags) > 0 {
			b.WriteString(" -b " + strings.Join(s.Flags, ","))
		}
		writeExtensions(&b, &s.Service)
		fmt.Fprintln(w, b.String())
		for _, r := range sortedReals(s.Reals, o.NoSort, false) {
			b.Reset()
			weight := r.Weight
			if r.Real.Weight != nil {
				weight = *r.Real.Weight // the configured one, not the one in effect
			}
			fmt.Fprintf(&b, "-a %s -r %s %s -w %d", name, addrPort(r.Addr, r.Port), forwardSwitch(r.Method), weight)
			if forwardSwitch(r.Method) == "-i" {
				b.WriteString(" --tun-type ipip")
			}
			if r.UpperThreshold > 0 {
				fmt.Fprintf(&b, " -x %d", r.UpperThreshold)
			}
			if r.LowerThreshold > 0 {
				fmt.Fprintf(&b, " -y %d", r.LowerThreshold)
			}
			fmt.Fprintln(w, b.String())
		}
	}
}

// writeExtensions writes a service's settings that ipvsadm has no option
// for, as xvsadm's own long options.
func writeExtensions(b *strings.Builder, s *api.Service) {
	if s.Name != "" {
		b.WriteString(" --name " + quoteWord(s.Name))
	}
	if len(s.Matches) > 0 {
		b.WriteString(" --match " + FormatMatches(s.Matches))
	}
	if len(s.LocalAddrs) > 0 {
		as := make([]string, len(s.LocalAddrs))
		for i, a := range s.LocalAddrs {
			as[i] = a.String()
		}
		b.WriteString(" --laddr " + strings.Join(as, ","))
	}
	if p := s.LocalPorts; p != [2]uint16{} {
		fmt.Fprintf(b, " --local-ports %d-%d", p[0], p[1])
	}
	if s.TOA {
		b.WriteString(" --toa")
	}
	if s.NoFastPath {
		b.WriteString(" --no-fast-path")
	}
	if s.SynProxy {
		b.WriteString(" --syn-proxy")
	}
	if s.Health != "" {
		b.WriteString(" --health " + quoteWord(s.Health))
	}
}

// quoteWord quotes s, when it needs it, so that splitLine reads it back as
// one word.
func quoteWord(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\r'\"\\#") {
		return s
	}
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// Rules returns WriteRules' text, sorted.
func Rules(services []api.ServiceState) string {
	var b strings.Builder
	WriteRules(&b, services, ListOptions{})
	return b.String()
}

// ruleName is a service as an option: "-t 198.18.0.100:80", "-f 1".
func ruleName(id *api.ServiceID, v6 bool) string {
	switch {
	case id.Mark != 0 && v6:
		return fmt.Sprintf("-f %d -6", id.Mark)
	case id.Mark != 0:
		return fmt.Sprintf("-f %d", id.Mark)
	case id.Protocol == "udp":
		return "-u " + addrPort(id.VIP, id.Port)
	}
	return "-t " + addrPort(id.VIP, id.Port)
}

// ParseRules parses rules as ipvsadm -R reads them (what -S writes): one
// command line per line, without the program name. Blank lines and lines
// starting with # are skipped; a leading "ipvsadm" or "xvsadm" is allowed.
// Only commands that change the table are accepted (-A -E -D -a -e -d -C -Z
// --set). Errors, and the commands, carry their line numbers.
func ParseRules(text string) ([]*Command, error) {
	var cmds []*Command
	for n, line := range strings.Split(text, "\n") {
		lineErr := func(err error) error {
			var e *Error
			if errors.As(err, &e) {
				return &Error{Line: n + 1, Msg: e.Msg}
			}
			return &Error{Line: n + 1, Msg: err.Error()}
		}
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		args, err := splitLine(line)
		if err != nil {
			return nil, lineErr(err)
		}
		if len(args) > 0 && (args[0] == "ipvsadm" || args[0] == programName) {
			args = args[1:]
		}
		if len(args) == 0 {
			continue
		}
		c, err := Parse(args)
		if err != nil {
			return nil, lineErr(err)
		}
		c.Line = n + 1
		switch c.Request.Op {
		case api.OpAddService, api.OpEditService, api.OpDelService, api.OpAddReal, api.OpEditReal,
			api.OpDelReal, api.OpClear, api.OpZero, api.OpSetTimeouts:
		default:
			return nil, lineErr(errorf("`%s' does not change the table; not allowed in rules", line))
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}
