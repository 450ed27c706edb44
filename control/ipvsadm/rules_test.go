package ipvsadm

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/sched"
)

// fataler is what the helpers need of testing.TB and rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// collect puts rules' -A and -a lines back together as a listing, with
// nothing of IPVS's semantics: each real server goes to the service its
// line names. It checks what rules say, not what xvsd does with them
// (TestEdit does that).
func collect(t fataler, cmds []*Command) []api.ServiceState {
	t.Helper()
	var out []api.ServiceState
	for _, c := range cmds {
		req := c.Request
		switch req.Op {
		case api.OpAddService:
			out = append(out, api.ServiceState{Service: *req.Service})
		case api.OpAddReal:
			i := slices.IndexFunc(out, func(s api.ServiceState) bool { return s.ServiceID == req.Service.ServiceID })
			if i < 0 {
				t.Fatalf("line %d: real server of a service not added before", c.Line)
			}
			r := api.RealState{Real: *req.Real, Weight: 1}
			if r.Real.Weight != nil {
				r.Weight = *r.Real.Weight
			}
			r.Real.Weight = nil
			out[i].Reals = append(out[i].Reals, r)
		default:
			t.Fatalf("line %d: %s in rules that -S wrote", c.Line, req.Op)
		}
	}
	return out
}

func TestRulesGoldenRoundTrip(t *testing.T) {
	text := Rules(fixture().Services)
	cmds, err := ParseRules(text)
	if err != nil {
		t.Fatal(err)
	}
	if got := Rules(collect(t, cmds)); got != text {
		t.Errorf("rules do not read back:\n%s\nread back as\n%s", text, got)
	}
}

// genState generates a valid table: what a director could be running.
func genState(t *rapid.T) []api.ServiceState {
	v4 := []string{"198.18.0.100", "198.18.0.101", "10.0.0.1", "255.255.255.255", "0.0.0.0"}
	v6 := []string{"2001:db8::100", "2001:db8::1:100", "::1", "fe80::1", "::ffff:198.18.0.1"}
	addr := func(label string, is6 bool) netip.Addr {
		if is6 {
			return ip(rapid.SampledFrom(v6).Draw(t, label))
		}
		return ip(rapid.SampledFrom(v4).Draw(t, label))
	}
	port := func(label string) uint16 {
		return rapid.OneOf(rapid.SampledFrom([]uint16{0, 80, 443, 53}), rapid.Uint16()).Draw(t, label)
	}
	var out []api.ServiceState
	for i := range rapid.IntRange(0, 6).Draw(t, "services") {
		var s api.ServiceState
		svcIs6 := rapid.Bool().Draw(t, "v6")
		switch kind := rapid.SampledFrom([]string{"tcp", "udp", "mark"}).Draw(t, "kind"); kind {
		case "mark":
			s.Mark = rapid.Uint32Range(1, 1<<32-1).Draw(t, "mark")
			svcIs6 = false // a mark's family comes from its matches; these have none
		default:
			s.Protocol, s.VIP, s.Port = kind, addr("vip", svcIs6), port("port")
		}
		if slices.ContainsFunc(out, func(o api.ServiceState) bool { return o.ServiceID == s.ServiceID }) {
			continue
		}
		s.Scheduler = rapid.SampledFrom(sched.Names()).Draw(t, "scheduler")
		for _, f := range sched.FlagsFor(s.Scheduler) {
			if rapid.Bool().Draw(t, "flag") {
				s.Flags = append(s.Flags, f)
			}
		}
		if s.Port == 0 && s.Mark == 0 || rapid.Bool().Draw(t, "persistent") {
			s.Persistence = time.Duration(rapid.IntRange(1, int(MaxTimeout/time.Second)).Draw(t, "persistence")) * time.Second
			maxBits := 32
			if svcIs6 {
				maxBits = 128
			}
			s.PersistPrefix = rapid.IntRange(0, maxBits).Draw(t, "prefix")
		}
		s.Name = fmt.Sprintf("svc%d", i)
		for range rapid.IntRange(0, 5).Draw(t, "reals") {
			method := rapid.SampledFrom([]string{"dr", "nat", "tun"}).Draw(t, "method")
			is6 := svcIs6
			if method == "tun" || s.Mark != 0 {
				is6 = rapid.Bool().Draw(t, "real v6")
			}
			r := api.RealState{Real: api.Real{Addr: addr("rip", is6), Method: method}}
			r.Port = s.Port
			if method == "nat" || s.Mark != 0 {
				r.Port = port("rport")
			}
			if slices.ContainsFunc(s.Reals, func(o api.RealState) bool { return o.Addr == r.Addr && o.Port == r.Port }) {
				continue
			}
			r.Weight = rapid.IntRange(0, MaxWeight).Draw(t, "weight")
			r.UpperThreshold = rapid.OneOf(rapid.Just(0), rapid.IntRange(0, MaxThreshold)).Draw(t, "upper")
			r.LowerThreshold = rapid.OneOf(rapid.Just(0), rapid.IntRange(0, MaxThreshold)).Draw(t, "lower")
			r.Draining = rapid.IntRange(0, 5).Draw(t, "draining") == 0
			r.ActiveConn = rapid.Int64Range(0, 10).Draw(t, "active")
			s.Reals = append(s.Reals, r)
		}
		out = append(out, s)
	}
	return out
}

// TestRulesRoundTrip: what -S writes, -R reads back to the same table.
func TestRulesRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		state := genState(t)
		text := Rules(state)
		cmds, err := ParseRules(text)
		if err != nil {
			t.Fatalf("rules\n%s\ndo not parse: %v", text, err)
		}
		if got := Rules(collect(t, cmds)); got != text {
			t.Fatalf("rules\n%s\nread back as\n%s", text, got)
		}
		// Nothing that rules can say was lost on the way.
		if got, want := normalize(collect(t, cmds)), normalize(state); !reflect.DeepEqual(got, want) {
			t.Fatalf("table\n%+v\nread back as\n%+v", want, got)
		}
		// Every service and every live real server made it.
		lines := strings.Count(text, "\n")
		want := len(state)
		for _, s := range state {
			for _, r := range s.Reals {
				if !r.Draining {
					want++
				}
			}
		}
		if lines != want || len(cmds) != want {
			t.Fatalf("%d lines, %d commands for %d services and live real servers", lines, len(cmds), want)
		}
	})
}

// normalize keeps what rules carry, in ipvsadm's order: not names, group
// matches, counters, draining real servers, nor a netmask without
// persistence or a host netmask.
func normalize(ss []api.ServiceState) []api.ServiceState {
	var out []api.ServiceState
	for _, s := range sortedServices(ss, false) {
		n := api.ServiceState{Service: api.Service{ServiceID: s.ServiceID, Scheduler: s.Scheduler,
			Flags: s.Flags, Persistence: s.Persistence, Name: s.Name, Matches: s.Matches, LocalAddrs: s.LocalAddrs,
			LocalPorts: s.LocalPorts, TOA: s.TOA, NoFastPath: s.NoFastPath, Health: s.Health}}
		if s.Persistence > 0 && mask(&s.Service) != "" {
			n.PersistPrefix = s.PersistPrefix
		}
		for _, r := range sortedReals(s.Reals, false, false) {
			n.Reals = append(n.Reals, api.RealState{Real: api.Real{Addr: r.Addr, Port: r.Port, Method: r.Method,
				UpperThreshold: r.UpperThreshold, LowerThreshold: r.LowerThreshold}, Weight: r.Weight})
		}
		out = append(out, n)
	}
	return out
}

func TestParseRules(t *testing.T) {
	text := "# saved by ipvsadm -S\n" +
		"\n" +
		"-A -t 198.18.0.100:80 -s rr\r\n" +
		"ipvsadm -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1\n" +
		"  xvsadm   -a  -t 198.18.0.100:80\t-r '198.18.0.12:80' -w \"2\"  \n" +
		"--set 900 120 300\n" +
		"-Z\n" +
		"-C"
	cmds, err := ParseRules(text)
	if err != nil {
		t.Fatal(err)
	}
	var ops []api.Op
	for _, c := range cmds {
		ops = append(ops, c.Request.Op)
	}
	wantOps := []api.Op{api.OpAddService, api.OpAddReal, api.OpAddReal, api.OpSetTimeouts, api.OpZero, api.OpClear}
	if !reflect.DeepEqual(ops, wantOps) {
		t.Fatalf("ops %v, want %v", ops, wantOps)
	}
	if r := cmds[2].Request.Real; r.Addr != ip("198.18.0.12") || *r.Weight != 2 {
		t.Errorf("quoted words: %+v", r)
	}

	errs := []struct {
		text string
		line int
		msg  string
	}{
		{"-A -t 198.18.0.100:80\n-a -t 198.18.0.100:80 -r 198.18.0.11 -s rr\n", 2, "Illegal 'scheduler' option with the 'add-server' command"},
		{"\n\n# c\n-A -t host:80\n", 4, "`host' is not a numeric address"},
		{"-L -n\n", 1, "`-L -n' does not change the table; not allowed in rules"},
		{"-S\n", 1, "not allowed in rules"},
		{"-R\n", 1, "not allowed in rules"},
		{"-A -t 198.18.0.100:80\nstatus\n", 2, "not allowed in rules"},
		{"-A -t 198.18.0.100:80 -s 'rr\n", 1, "unterminated quote or escape"},
		{"-A -t 198.18.0.100:80 -s rr\\", 1, "unterminated quote or escape"},
	}
	for _, tt := range errs {
		_, err := ParseRules(tt.text)
		var e *Error
		if !errors.As(err, &e) || e.Line != tt.line || !strings.Contains(e.Msg, tt.msg) {
			t.Errorf("ParseRules(%q) = %v, want line %d: %q", tt.text, err, tt.line, tt.msg)
		}
		if err != nil && !strings.HasPrefix(err.Error(), fmt.Sprintf("line %d: ", tt.line)) {
			t.Errorf("error %q does not start with its line", err)
		}
	}
	if cmds, err := ParseRules(""); err != nil || len(cmds) != 0 {
		t.Errorf("empty rules: %v, %v", cmds, err)
	}
}

func TestSplitLine(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  a  b\tc ", []string{"a", "b", "c"}},
		{`'a b' "c d" e\ f`, []string{"a b", "c d", "e f"}},
		{`'' x`, []string{"", "x"}},
		{`"a\"b" 'a\b'`, []string{`a"b`, `a\b`}},
	}
	for _, tt := range tests {
		got, err := splitLine(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitLine(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
