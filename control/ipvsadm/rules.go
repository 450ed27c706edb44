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
// configuration and left out. Unlike ipvsadm, the thresholds (-x, -y) are
// written when set, so that -R restores them.
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
		fmt.Fprintln(w, b.String())
		for _, r := range sortedReals(s.Reals, o.NoSort, false) {
			b.Reset()
			fmt.Fprintf(&b, "-a %s -r %s %s -w %d", name, addrPort(r.Addr, r.Port), forwardSwitch(r.Method), r.Weight)
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
