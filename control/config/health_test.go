package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// healthSvc is a service with one real server and a health table from
// line 9 on.
func healthSvc(lines ...string) []byte {
	return doc(append(append([]string{}, director...), append([]string{
		"[[service]]", // 3
		`vip = "198.18.0.100"`,
		"port = 80",
		`protocol = "tcp"`,
		"  [[service.real]]", // 7
		`  address = "198.18.0.11"`,
		"  [service.health]", // 9
	}, lines...)...)...)
}

// healthGroup is a group whose real server keeps each packet's port, with
// a health table from line 10 on.
func healthGroup(lines ...string) []byte {
	return doc(append(append([]string{}, director...), append([]string{
		"[[group]]", // 3
		`name = "web"`,
		`match = [ { vip = "198.18.0.100", ports = "80", protocol = "tcp" },`,
		`          { vip = "198.18.0.100", ports = "443", protocol = "tcp" } ]`,
		"  [[group.real]]", // 7
		`  address = "198.18.0.11"`,
		"",                 // 9
		"  [group.health]", // 10
	}, lines...)...)...)
}

func TestHealthGood(t *testing.T) {
	base := func(check string) HealthCheck {
		return HealthCheck{
			Check: check, Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3,
			OnFailure: "quiesce", Initial: "up", Line: 9,
		}
	}
	with := func(h HealthCheck, f func(*HealthCheck)) *HealthCheck {
		f(&h)
		return &h
	}
	tests := []struct {
		name string
		data []byte
		want *HealthCheck
	}{
		{"tcp defaults", healthSvc(`check = "tcp"`), with(base("tcp"), func(*HealthCheck) {})},
		{"http defaults", healthSvc(`check = "http"`), with(base("http"), func(h *HealthCheck) {
			h.Path, h.ExpectStatus = "/", 200
		})},
		{"https defaults to insecure", healthSvc(`check = "https"`), with(base("https"), func(h *HealthCheck) {
			h.Path, h.ExpectStatus, h.Insecure = "/", 200, true
		})},
		{"https verifying", healthSvc(`check = "https"`, "insecure = false"), with(base("https"), func(h *HealthCheck) {
			h.Path, h.ExpectStatus = "/", 200
		})},
		{"udp defaults", healthSvc(`check = "udp"`), with(base("udp"), func(h *HealthCheck) {
			h.Send = "xvs-health"
		})},
		{"http everything", healthSvc(
			`check = "http"`,
			`interval = "5s"`,
			`timeout = "1500ms"`,
			"rise = 1",
			"fall = 10",
			"port = 8080",
			`path = "/healthz?full=1"`,
			"expect_status = 204",
			`expect_body = "ok"`,
			`host = "example.org:8080"`,
			`on_failure = "reset"`,
			`initial = "down"`,
		), &HealthCheck{
			Check: "http", Interval: 5 * time.Second, Timeout: 1500 * time.Millisecond, Rise: 1, Fall: 10,
			Port: 8080, Path: "/healthz?full=1", ExpectStatus: 204, ExpectBody: "ok", Host: "example.org:8080",
			OnFailure: "reset", Initial: "down", Line: 9,
		}},
		{"udp everything", healthSvc(`check = "udp"`, `send = "ping"`, `expect = "pong"`, "interval = 10", "timeout = 3"),
			with(base("udp"), func(h *HealthCheck) {
				h.Send, h.Expect, h.Interval, h.Timeout = "ping", "pong", 10*time.Second, 3*time.Second
			})},
		{"short interval halves the timeout", healthSvc(`check = "tcp"`, `interval = "300ms"`), with(base("tcp"), func(h *HealthCheck) {
			h.Interval, h.Timeout = 300*time.Millisecond, 150*time.Millisecond
		})},
		{"none", healthSvc(`check = "none"`, `path = "/x"`, "rise = 4"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("h.toml", tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Services[0].Health; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Health =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestHealthPlacement(t *testing.T) {
	// No table: no checks.
	cfg, err := Parse("h.toml", doc(append(director, "[[service]]", `vip = "198.18.0.100"`, "port = 80", `protocol = "tcp"`)...))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Services[0].Health != nil {
		t.Errorf("Health = %+v without a health table", cfg.Services[0].Health)
	}

	// Each service's table is its own, as an inline table too, and a
	// group's table may give the port its real servers lack.
	cfg, err = Parse("h.toml", doc(append(director,
		"[[service]]", // 3
		`vip = "198.18.0.100"`,
		"port = 80",
		`protocol = "tcp"`,
		`health = { check = "tcp", interval = 5 }`, // 7
		"[[service]]", // 8
		`vip = "198.18.0.100"`,
		"port = 53",
		`protocol = "udp"`,
		"  [[service.real]]",
		`  address = "198.18.0.11"`,
		"  [service.health]", // 14
		`  check = "udp"`,
		"[[group]]", // 16
		`name = "web"`,
		`match = [ { vip = "198.18.0.100", ports = "443", protocol = "tcp" } ]`,
		"  [group.health]", // 19
		`  check = "https"`,
		"  port = 8443",
		"  [[group.real]]",
		`  address = "198.18.0.11"`,
	)...))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		check    string
		line     int
		interval time.Duration
		port     uint16
	}{{"tcp", 7, 5 * time.Second, 0}, {"udp", 14, 2 * time.Second, 0}, {"https", 19, 2 * time.Second, 8443}} {
		h := cfg.Services[i].Health
		if h == nil || h.Check != want.check || h.Line != want.line || h.Interval != want.interval || h.Port != want.port {
			t.Errorf("service %d: Health = %+v, want check %s at line %d, interval %v, port %d", i, h, want.check, want.line, want.interval, want.port)
		}
	}
	if g := cfg.Services[2]; !g.IsGroup() || g.Reals[0].Port != 0 {
		t.Errorf("group %+v", g)
	}
}

func TestHealthBad(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want []wantErr // every error, in order
	}{
		{"missing check", healthSvc("rise = 3"), []wantErr{{9, "[service.health] is missing check"}}},
		{"unknown check", healthSvc(`check = "icmp"`), []wantErr{{10, `service.health.check: "icmp" is not one of tcp, http, https, udp, none`}}},
		{"unknown key", healthSvc(`check = "tcp"`, "retries = 3"), []wantErr{{11, `unknown key "retries" in [service.health] (known keys: check, interval, timeout, rise, fall, port, path, expect_status, expect_body, host, insecure, send, expect, on_failure, initial)`}}},
		{"health array", doc(append(director, "[[service]]", `vip = "198.18.0.100"`, "port = 80", `protocol = "tcp"`, "[[service.health]]", `check = "tcp"`)...),
			[]wantErr{{7, "write [service.health], a single table, not [[service.health]]"}}},
		{"health not a table", doc(append(director, "[[service]]", `vip = "198.18.0.100"`, "port = 80", `protocol = "tcp"`, "health = true")...),
			[]wantErr{{7, "service.health: want a table [service.health], got a boolean"}}},

		// Keys for another kind of check.
		{"path for tcp", healthSvc(`check = "tcp"`, `path = "/"`), []wantErr{{11, "service.health.path: applies to check http and https only, not tcp"}}},
		{"insecure for http", healthSvc(`check = "http"`, "insecure = true"), []wantErr{{11, "service.health.insecure: applies to check https only, not http"}}},
		{"send for tcp", healthSvc(`check = "tcp"`, `send = "x"`), []wantErr{{11, "applies to check udp only, not tcp"}}},
		{"http keys for udp", healthSvc(`check = "udp"`, "expect_status = 200", `host = "a"`, `expect_body = "b"`), []wantErr{
			{11, "expect_status: applies to check http and https only"}, {12, "host: applies"}, {13, "expect_body: applies"},
		}},

		// Timing.
		{"timeout not below interval", healthSvc(`check = "tcp"`, `interval = "2s"`, `timeout = "2s"`), []wantErr{{12, "service.health.timeout: 2s is not shorter than the interval, 2s"}}},
		{"timeout over the default interval", healthSvc(`check = "tcp"`, "timeout = 3"), []wantErr{{11, "3s is not shorter than the interval, 2s"}}},
		{"bad interval leaves timeout alone", healthSvc(`check = "tcp"`, `interval = "1x"`, `timeout = "5s"`), []wantErr{{11, `service.health.interval: "1x" is not a duration`}}},
		{"interval too short", healthSvc(`check = "tcp"`, `interval = "50ms"`), []wantErr{{11, "50ms is out of range 100ms..1h0m0s"}}},
		{"interval zero", healthSvc(`check = "tcp"`, "interval = 0"), []wantErr{{11, "0 seconds is out of range 100ms..1h0m0s"}}},
		{"interval too long", healthSvc(`check = "tcp"`, "interval = 3601"), []wantErr{{11, "3601 seconds is out of range"}}},
		{"interval float", healthSvc(`check = "tcp"`, "interval = 1.5"), []wantErr{{11, "want a duration string or integer seconds, got a float"}}},
		{"timeout too short", healthSvc(`check = "tcp"`, `timeout = "1ms"`), []wantErr{{11, "1ms is out of range 10ms..1h0m0s"}}},
		{"rise zero", healthSvc(`check = "tcp"`, "rise = 0"), []wantErr{{11, "service.health.rise: 0 is out of range 1..100"}}},
		{"fall too big", healthSvc(`check = "tcp"`, "fall = 101"), []wantErr{{11, "service.health.fall: 101 is out of range 1..100"}}},

		// Values.
		{"port zero", healthSvc(`check = "tcp"`, "port = 0"), []wantErr{{11, "service.health.port: 0 is out of range 1..65535"}}},
		{"relative path", healthSvc(`check = "http"`, `path = "healthz"`), []wantErr{{11, `service.health.path: "healthz" does not start with /`}}},
		{"path naming a host", healthSvc(`check = "http"`, `path = "//evil/"`), []wantErr{{11, "starts with //"}}},
		{"path with a space", healthSvc(`check = "http"`, `path = "/a b"`), []wantErr{{11, "white space"}}},
		{"path with a fragment", healthSvc(`check = "http"`, `path = "/a#b"`), []wantErr{{11, "fragment"}}},
		{"status", healthSvc(`check = "https"`, "expect_status = 99"), []wantErr{{11, "expect_status: 99 is out of range 100..599"}}},
		{"empty body", healthSvc(`check = "http"`, `expect_body = ""`), []wantErr{{11, "expect_body: empty: leave it out instead"}}},
		{"host", healthSvc(`check = "http"`, `host = "a b"`), []wantErr{{11, `service.health.host: "a b" contains white space`}}},
		{"empty host", healthSvc(`check = "http"`, `host = ""`), []wantErr{{11, "host: empty"}}},
		{"insecure string", healthSvc(`check = "https"`, `insecure = "yes"`), []wantErr{{11, "service.health.insecure: want a boolean, got a string"}}},
		{"empty send", healthSvc(`check = "udp"`, `send = ""`), []wantErr{{11, "send: empty"}}},
		{"huge send", healthSvc(`check = "udp"`, `send = "`+strings.Repeat("x", 65508)+`"`), []wantErr{{11, "65508 bytes do not fit in a datagram"}}},
		{"empty expect", healthSvc(`check = "udp"`, `expect = ""`), []wantErr{{11, "expect: empty"}}},
		{"on_failure", healthSvc(`check = "tcp"`, `on_failure = "drop"`), []wantErr{{11, `"drop" is not one of quiesce, reset`}}},
		{"initial", healthSvc(`check = "tcp"`, `initial = "maybe"`), []wantErr{{11, `"maybe" is not one of up, down`}}},
		{"none still validates", healthSvc(`check = "none"`, "rise = 0"), []wantErr{{11, "rise: 0 is out of range"}}},

		// Groups.
		{"group real without port", healthGroup(`check = "tcp"`), []wantErr{{10, "[group.health] is missing port: the real server at line 7 has none"}}},
		{"group, inapplicable key", healthGroup(`check = "udp"`, "port = 53", `path = "/"`), []wantErr{{13, "group.health.path: applies to check http and https only, not udp"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("bad.toml", tt.data)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", cfg)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, w := range tt.want {
				if e := errs[i]; e.Line != w.line || !strings.Contains(e.Msg, w.msg) {
					t.Errorf("error %d = %q at line %d, want line %d containing %q", i, e.Msg, e.Line, w.line, w.msg)
				}
			}
		})
	}
}

// TestHealthInline: a health check written as an inline table's contents
// (how xvsadm -S carries it) reads back the same, with the table's checks.
func TestHealthInline(t *testing.T) {
	for _, tt := range []struct {
		in, want, err string
	}{
		{in: `check = "tcp"`, want: `check = "tcp", interval = "2s", timeout = "1s", rise = 2, fall = 3, on_failure = "quiesce", initial = "up"`},
		{in: `check = "https", path = "/x?y=1", host = "example.org", insecure = false, port = 8443`,
			want: `check = "https", interval = "2s", timeout = "1s", rise = 2, fall = 3, port = 8443, path = "/x?y=1", expect_status = 200, host = "example.org", insecure = false, on_failure = "quiesce", initial = "up"`},
		{in: `check = "udp", send = "it's \"quoted\"", interval = "500ms"`,
			want: `check = "udp", interval = "500ms", timeout = "250ms", rise = 2, fall = 3, send = "it's \"quoted\"", on_failure = "quiesce", initial = "up"`},
		{in: `check = "none"`, want: ""},
		{in: `check = "tcp", path = "/"`, err: "applies to check http and https only"},
		{in: `check = "ftp"`, err: "check"},
		{in: `check = "tcp", bogus = 1`, err: "bogus"},
		{in: `check = `, err: "not a TOML inline table's contents"},
	} {
		h, err := ParseHealth(tt.in)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseHealth(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		case err != nil:
			t.Errorf("ParseHealth(%q): %v", tt.in, err)
			continue
		}
		got := HealthInline(h)
		if got != tt.want {
			t.Errorf("HealthInline(ParseHealth(%q)) =\n %s\nwant\n %s", tt.in, got, tt.want)
		}
		if again, err := ParseHealth(got); h != nil && (err != nil || HealthInline(again) != got) {
			t.Errorf("%q does not read back: %v", got, err)
		}
	}
}
