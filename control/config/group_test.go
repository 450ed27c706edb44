package config

import (
	"strings"
	"testing"
	"time"
)

func TestPersistenceThresholdsFlags(t *testing.T) {
	cfg, err := Parse("p.toml", doc(append(director,
		"[[service]]", // 3
		`vip = "198.18.0.100"`,
		"port = 80",
		`protocol = "tcp"`,
		`scheduler = "sh"`,
		`sched_flags = ["sh-port", "sh-fallback"]`,
		`persistence = "600s"`,
		`netmask = "255.255.255.0"`,
		"  [[service.real]]", // 11
		`  address = "198.18.0.11"`,
		"  upper_threshold = 100",
		"  lower_threshold = 50",
	)...))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Services[0]
	if s.Persistence != 600*time.Second || s.PersistPrefix != 24 || strings.Join(s.Flags, ",") != "sh-port,sh-fallback" {
		t.Errorf("service = %+v", s)
	}
	if r := s.Reals[0]; r.UpperThreshold != 100 || r.LowerThreshold != 50 {
		t.Errorf("real = %+v", r)
	}
}

func TestGroup(t *testing.T) {
	cfg, err := Parse("g.toml", doc(append(director,
		"[[service]]", // 3
		`vip = "198.18.0.100"`,
		"port = 8080",
		`protocol = "tcp"`,
		"[[group]]", // 7
		`name = "web"`,
		"mark = 7",
		`persistence = 300`,
		`match = [ { vip = "198.18.0.100", ports = "80-81", protocol = "tcp" },`,
		`          { vip = "198.18.0.100", ports = 443, protocol = "tcp" } ]`,
		"  [[group.real]]", // 13
		`  address = "198.18.0.11"`,
		"  [[group.real]]", // 15
		`  address = "198.18.0.12"`,
		`  method = "nat"`,
		"  port = 8443",
	)...))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Services) != 2 {
		t.Fatalf("%d services, want 2", len(cfg.Services))
	}
	g := cfg.Services[1]
	if !g.IsGroup() || g.Name != "web" || g.Mark != 7 || g.Persistence != 300*time.Second || g.Line != 7 || g.String() != "FWM 7" {
		t.Errorf("group = %+v", g)
	}
	if len(g.Matches) != 2 || g.Matches[0].FromPort != 80 || g.Matches[0].ToPort != 81 || g.Matches[1].FromPort != 443 || g.Matches[1].ToPort != 443 {
		t.Errorf("matches = %+v", g.Matches)
	}
	if len(g.Reals) != 2 || g.Reals[0].Port != 0 || g.Reals[1].Port != 8443 || g.Reals[0].Line != 13 {
		t.Errorf("reals = %+v", g.Reals)
	}
}

func TestGroupAndPolicyErrors(t *testing.T) {
	group := func(lines ...string) []byte {
		return doc(append(append([]string{}, director...), append([]string{
			"[[service]]", // 3
			`vip = "198.18.0.100"`,
			"port = 80",
			`protocol = "tcp"`,
			"[[group]]", // 7
			`name = "g"`,
		}, lines...)...)...)
	}
	svc := func(lines ...string) []byte {
		return doc(append(append([]string{}, director...), append([]string{
			"[[service]]", // 3
			`vip = "198.18.0.100"`,
			"port = 80",
			`protocol = "tcp"`,
		}, lines...)...)...)
	}
	for _, tc := range []struct {
		name string
		data []byte
		line int
		msg  string
	}{
		{"flag for another scheduler", svc(`scheduler = "rr"`, `sched_flags = ["sh-port"]`), 8, "scheduler rr takes no flags"},
		{"unknown flag", svc(`scheduler = "sh"`, `sched_flags = ["sh-bogus"]`), 8, `unknown flag "sh-bogus" for scheduler sh`},
		{"netmask without persistence", svc(`netmask = 24`), 7, "only makes sense with persistence"},
		{"non-contiguous netmask", svc(`persistence = 60`, `netmask = "255.0.255.0"`), 8, "not a contiguous netmask"},
		{"prefix too long", svc(`persistence = 60`, `netmask = 33`), 8, "out of range 1..32"},
		{"lower above upper", svc("[[service.real]]", `address = "198.18.0.11"`, "upper_threshold = 10", "lower_threshold = 20"), 10, "above upper_threshold"},
		{"lower without upper", svc("[[service.real]]", `address = "198.18.0.11"`, "lower_threshold = 20"), 9, "without upper_threshold"},
		{"group without match", group(), 7, "[[group]] is missing match"},
		{"overlap with service", group(`match = [{ vip = "198.18.0.100", ports = "79-81", protocol = "tcp" }]`), 9, "overlaps the service or match at line 3"},
		{"overlapping matches", group(`match = [{ vip = "198.18.0.100", ports = "90-99", protocol = "tcp" },`, `{ vip = "198.18.0.100", ports = 95, protocol = "tcp" }]`), 10, "overlaps"},
		{"bad range", group(`match = [{ vip = "198.18.0.100", ports = "99-90", protocol = "tcp" }]`), 9, "ends before it starts"},
		{"dr port in group", group(`match = [{ vip = "198.18.0.100", ports = 90, protocol = "tcp" }]`, "[[group.real]]", `address = "198.18.0.11"`, "port = 90"), 12, "leave port out"},
		{"duplicate name", group(`name = "g"`), 9, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.toml", tc.data)
			if err == nil {
				t.Fatal("parsed, want an error")
			}
			es, ok := err.(Errors)
			if !ok || len(es) == 0 {
				t.Fatalf("error %T %v", err, err)
			}
			found := false
			for _, e := range es {
				if e.Line == tc.line && strings.Contains(e.Msg, tc.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("got %v, want line %d: %q", err, tc.line, tc.msg)
			}
		})
	}
}
