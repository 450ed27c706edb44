package config

import (
	"strings"
	"testing"
	"time"
)

func TestBGP(t *testing.T) {
	cfg, err := Parse("b.toml", doc(append(director,
		"[bgp]", "local_as = 65001", `router_id = "198.18.0.2"`, `hold_time = "3s"`,
		"[[bgp.peer]]", `address = "198.18.0.254"`, "as = 65000",
	)...))
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.BGP
	if b == nil || b.LocalAS != 65001 || b.RouterID.String() != "198.18.0.2" || b.HoldTime != 3*time.Second || b.ListenPort != 179 ||
		len(b.Peers) != 1 || b.Peers[0].AS != 65000 || b.Peers[0].Port != 179 {
		t.Errorf("bgp = %+v", b)
	}
	for _, tc := range []struct {
		lines []string
		line  int
		msg   string
	}{
		{[]string{"[bgp]", `router_id = "198.18.0.2"`, "[[bgp.peer]]", `address = "198.18.0.254"`, "as = 1"}, 3, "missing local_as"},
		{[]string{"[bgp]", "local_as = 1", `router_id = "fd00::1"`, "[[bgp.peer]]", `address = "198.18.0.254"`, "as = 1"}, 5, "not an IPv4 address"},
		{[]string{"[bgp]", "local_as = 1", `router_id = "1.2.3.4"`, `hold_time = "1s"`, "[[bgp.peer]]", `address = "198.18.0.254"`, "as = 1"}, 6, "minimum"},
		{[]string{"[bgp]", "local_as = 1", `router_id = "1.2.3.4"`, `communities = ["x"]`, "[[bgp.peer]]", `address = "198.18.0.254"`, "as = 1"}, 6, "not a community"},
		{[]string{"[bgp]", "local_as = 1", `router_id = "1.2.3.4"`}, 3, "missing peer"},
		{[]string{"[bgp]", "local_as = 1", `router_id = "1.2.3.4"`, "[[bgp.peer]]", "as = 1"}, 6, "missing address"},
	} {
		_, err := Parse("bad.toml", doc(append(append([]string{}, director...), tc.lines...)...))
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "bad.toml:") {
			t.Errorf("%v: error %v, want %q", tc.lines, err, tc.msg)
			continue
		}
		if es, ok := err.(Errors); !ok || es[0].Line != tc.line {
			t.Errorf("%v: error %v, want line %d", tc.lines, err, tc.line)
		}
	}
}
