package ipvsadm

import (
	"errors"
	"fmt"
	"io"
	"slices"
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
// --set). Errors carry the line number.
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

// IPVSError is one of the failures of IPVS's that Apply reports, with
// ipvsadm's message for it.
type IPVSError string

func (e IPVSError) Error() string { return string(e) }

// Apply's errors.
const (
	ErrServiceExists     IPVSError = "Service already exists"
	ErrNoService         IPVSError = "No such service"
	ErrServiceNotDefined IPVSError = "Service not defined"
	ErrDestExists        IPVSError = "Destination already exists"
	ErrNoDest            IPVSError = "No such destination"
)

// Apply returns services changed as req asks, with IPVS's semantics and
// error messages ("Service already exists", "No such destination", ...);
// services itself is left alone. It is the reference model of the change
// requests: xvsd can use it to validate a whole restore before applying any
// of it, and tests use it as a fake server.
//
// An edited service keeps its scheduler when req's is empty; an edited real
// server keeps its weight when req's is nil and its method when req's is
// empty. Real servers marked Draining count as gone.
func Apply(services []api.ServiceState, req *api.Request) ([]api.ServiceState, error) {
	out := cloneServices(services)
	find := func() (int, error) {
		if req.Service == nil {
			return -1, fmt.Errorf("%s: no service given", req.Op)
		}
		for i := range out {
			if out[i].ServiceID == req.Service.ServiceID {
				return i, nil
			}
		}
		return -1, nil
	}
	findReal := func(s *api.ServiceState) (int, error) {
		if req.Real == nil {
			return -1, fmt.Errorf("%s: no real server given", req.Op)
		}
		for i, r := range s.Reals {
			if !r.Draining && r.Addr == req.Real.Addr && r.Port == req.Real.Port {
				return i, nil
			}
		}
		return -1, nil
	}
	switch req.Op {
	case api.OpClear:
		return nil, nil
	case api.OpSetTimeouts:
		return out, nil
	case api.OpZero:
		if req.Service == nil {
			for i := range out {
				zero(&out[i])
			}
			return out, nil
		}
		i, err := find()
		if err != nil {
			return nil, err
		}
		if i < 0 {
			return nil, ErrNoService
		}
		zero(&out[i])
		return out, nil
	case api.OpAddService:
		i, err := find()
		if err != nil {
			return nil, err
		}
		if i >= 0 {
			return nil, ErrServiceExists
		}
		s := api.ServiceState{Service: *req.Service}
		s.Flags = slices.Clone(s.Flags)
		s.Matches = slices.Clone(s.Matches)
		if s.Scheduler == "" {
			s.Scheduler = DefaultScheduler
		}
		return append(out, s), nil
	case api.OpEditService, api.OpDelService:
		i, err := find()
		if err != nil {
			return nil, err
		}
		if i < 0 {
			return nil, ErrNoService
		}
		if req.Op == api.OpDelService {
			return slices.Delete(out, i, i+1), nil
		}
		s := &out[i]
		if req.Service.Scheduler != "" {
			s.Scheduler = req.Service.Scheduler
		}
		s.Flags = slices.Clone(req.Service.Flags)
		s.Persistence = req.Service.Persistence
		s.PersistPrefix = req.Service.PersistPrefix
		return out, nil
	case api.OpAddReal, api.OpEditReal, api.OpDelReal:
		i, err := find()
		if err != nil {
			return nil, err
		}
		if i < 0 {
			return nil, ErrServiceNotDefined
		}
		s := &out[i]
		j, err := findReal(s)
		if err != nil {
			return nil, err
		}
		switch {
		case req.Op == api.OpAddReal && j >= 0:
			return nil, ErrDestExists
		case req.Op == api.OpAddReal:
			// A draining twin comes back as the new one.
			s.Reals = slices.DeleteFunc(s.Reals, func(r api.RealState) bool {
				return r.Addr == req.Real.Addr && r.Port == req.Real.Port
			})
			r := api.RealState{Real: *req.Real, Weight: 1}
			if req.Real.Weight != nil {
				r.Weight = *req.Real.Weight
			}
			r.Real.Weight = nil
			if r.Method == "" {
				r.Method = MethodDR
			}
			s.Reals = append(s.Reals, r)
			return out, nil
		case j < 0:
			return nil, ErrNoDest
		case req.Op == api.OpDelReal:
			s.Reals = slices.Delete(s.Reals, j, j+1)
			return out, nil
		}
		r := &s.Reals[j]
		if req.Real.Weight != nil {
			r.Weight = *req.Real.Weight
		}
		if req.Real.Method != "" {
			r.Method = req.Real.Method
		}
		r.UpperThreshold, r.LowerThreshold = req.Real.UpperThreshold, req.Real.LowerThreshold
		return out, nil
	}
	return nil, fmt.Errorf("%q changes nothing in the table", req.Op)
}

func zero(s *api.ServiceState) {
	s.Stats, s.Rates = api.Counters{}, api.Rates{}
	for i := range s.Reals {
		s.Reals[i].Stats, s.Reals[i].Rates = api.Counters{}, api.Rates{}
	}
}

func cloneServices(ss []api.ServiceState) []api.ServiceState {
	if ss == nil {
		return nil
	}
	out := slices.Clone(ss)
	for i := range out {
		out[i].Reals = slices.Clone(out[i].Reals)
	}
	return out
}
