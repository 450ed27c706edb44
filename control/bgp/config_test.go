package bgp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ip := netip.MustParseAddr
	good := func() Config {
		return Config{
			LocalAS:  65001,
			RouterID: ip("192.0.2.1"),
			Peers:    []Peer{{Address: ip("192.0.2.254"), AS: 65000}},
		}
	}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // substring; "" means valid
	}{
		{"minimal", func(*Config) {}, ""},
		{"4-octet AS", func(c *Config) { c.LocalAS = 4200000000 }, ""},
		{"AS 0", func(c *Config) { c.LocalAS = 0 }, "local AS: 0 is not a valid AS"},
		{"AS_TRANS", func(c *Config) { c.LocalAS = 23456 }, "AS_TRANS"},
		{"AS 65535", func(c *Config) { c.LocalAS = 65535 }, "65535 is reserved"},
		{"AS max", func(c *Config) { c.LocalAS = 4294967295 }, "4294967295 is reserved"},
		{"no router id", func(c *Config) { c.RouterID = netip.Addr{} }, `router id "": must be an IPv4 address`},
		{"router id IPv6", func(c *Config) { c.RouterID = ip("2001:db8::1") }, "router id \"2001:db8::1\": must be an IPv4"},
		{"router id 4in6", func(c *Config) { c.RouterID = ip("::ffff:192.0.2.1") }, "must be an IPv4"},
		{"router id zero", func(c *Config) { c.RouterID = ip("0.0.0.0") }, "must be a unicast"},
		{"router id bcast", func(c *Config) { c.RouterID = ip("255.255.255.255") }, "must be a unicast"},
		{"listen -1", func(c *Config) { c.ListenPort = -1 }, ""},
		{"listen -2", func(c *Config) { c.ListenPort = -2 }, "listen port -2"},
		{"listen 65536", func(c *Config) { c.ListenPort = 65536 }, "listen port 65536"},
		{"listen addrs with -1", func(c *Config) {
			c.ListenPort = -1
			c.ListenAddrs = []netip.Addr{ip("192.0.2.1")}
		}, "listen port -1"},
		{"listen addr wildcard", func(c *Config) { c.ListenAddrs = []netip.Addr{ip("::")} }, ""},
		{"listen addr multicast", func(c *Config) { c.ListenAddrs = []netip.Addr{ip("224.0.0.5")} }, "listen address \"224.0.0.5\": multicast"},
		{"listen addr zero value", func(c *Config) { c.ListenAddrs = []netip.Addr{{}} }, "listen address \"\": not set"},
		{"listen addr twice", func(c *Config) { c.ListenAddrs = []netip.Addr{ip("192.0.2.1"), ip("192.0.2.1")} }, "listed twice"},
		{"next hop v6 in v4 field", func(c *Config) { c.NextHop = ip("2001:db8::1") }, "next hop 2001:db8::1: must be an IPv4"},
		{"next hop unspecified", func(c *Config) { c.NextHop = ip("0.0.0.0") }, "unspecified"},
		{"next hop6 v4", func(c *Config) { c.NextHop6 = ip("192.0.2.1") }, "next hop6 192.0.2.1: must be an IPv6"},
		{"next hop6 4in6", func(c *Config) { c.NextHop6 = ip("::ffff:192.0.2.1") }, "must be an IPv6"},
		{"next hop6 link-local", func(c *Config) { c.NextHop6 = ip("fe80::1") }, "not link-local"},
		{"next hop6 multicast", func(c *Config) { c.NextHop6 = ip("ff02::1") }, "multicast"},
		{"next hop6 ok", func(c *Config) { c.NextHop6 = ip("2001:db8::1") }, ""},
		{"no peers", func(c *Config) { c.Peers = nil }, "no peers"},
		{"peer no address", func(c *Config) { c.Peers[0].Address = netip.Addr{} }, `peer 0 address "": not set`},
		{"peer unspecified", func(c *Config) { c.Peers[0].Address = ip("::") }, "unspecified"},
		{"peer 4in6", func(c *Config) { c.Peers[0].Address = ip("::ffff:192.0.2.254") }, "use the IPv4 form"},
		{"peer zoned", func(c *Config) { c.Peers[0].Address = ip("2001:db8::1%eth0") }, "zoned"},
		{"peer link-local", func(c *Config) { c.Peers[0].Address = ip("fe80::1") }, "link-local peers"},
		{"peer IPv6", func(c *Config) { c.Peers[0].Address = ip("2001:db8::fe") }, ""},
		{"peer twice", func(c *Config) { c.Peers = append(c.Peers, Peer{Address: ip("192.0.2.254"), AS: 65002}) }, "listed twice"},
		{"peer AS 0", func(c *Config) { c.Peers[0].AS = 0 }, "peer 192.0.2.254 AS: 0 is not"},
		{"iBGP", func(c *Config) { c.Peers[0].AS = c.LocalAS }, ""},
		{"password too long", func(c *Config) { c.Peers[0].Password = strings.Repeat("x", 81) }, "at most 80"},
		{"password 80", func(c *Config) { c.Peers[0].Password = strings.Repeat("x", 80) }, ""},
		{"passive without listening", func(c *Config) {
			c.ListenPort = -1
			c.Peers[0].Passive = true
		}, "passive but listen port is -1"},
		{"passive IPv6 peer, IPv4 listener", func(c *Config) {
			c.ListenAddrs = []netip.Addr{ip("192.0.2.1")}
			c.Peers[0] = Peer{Address: ip("2001:db8::fe"), AS: 65000, Passive: true}
		}, "no listen address is of its address family"},
		{"passive IPv4 peer, IPv4 listener", func(c *Config) {
			c.ListenAddrs = []netip.Addr{ip("192.0.2.1")}
			c.Peers[0].Passive = true
		}, ""},
		{"community", func(c *Config) { c.Communities = []string{"65000:100", "no-export"} }, ""},
		{"community bad", func(c *Config) { c.Communities = []string{"65000"} }, `community "65000"`},
		{"community big", func(c *Config) { c.Communities = []string{"65536:1"} }, "ASN part"},
		{"hold 3s", func(c *Config) { c.HoldTime = 3 * time.Second }, ""},
		{"hold 2s", func(c *Config) { c.HoldTime = 2 * time.Second }, "hold time 2s"},
		{"hold fraction", func(c *Config) { c.HoldTime = 3500 * time.Millisecond }, "whole seconds"},
		{"hold huge", func(c *Config) { c.HoldTime = 65536 * time.Second }, "between 3s and 65535s"},
		{"hold negative", func(c *Config) { c.HoldTime = -3 * time.Second }, "between"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.mod(&c)
			_, err := validate(c)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("validate: unexpected error %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("validate: no error, want one containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("validate: error %q, want it to contain %q", err, tt.wantErr)
			case err != nil && !strings.HasPrefix(err.Error(), "bgp: "):
				t.Fatalf("validate: error %q lacks the package prefix", err)
			}
		})
	}
}

func TestValidateDefaults(t *testing.T) {
	ip := netip.MustParseAddr
	cfg := Config{
		LocalAS:     65001,
		RouterID:    ip("192.0.2.1"),
		Peers:       []Peer{{Address: ip("192.0.2.254"), AS: 65000}, {Address: ip("192.0.2.253"), AS: 65000, Port: 1179}},
		Communities: []string{"65001:100", "NO-EXPORT"},
	}
	st, err := validate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st.ListenPort != 179 {
		t.Errorf("ListenPort = %d, want 179", st.ListenPort)
	}
	if st.NextHop != cfg.RouterID {
		t.Errorf("NextHop = %v, want the router id %v", st.NextHop, cfg.RouterID)
	}
	if st.NextHop6.IsValid() {
		t.Errorf("NextHop6 = %v, want unset", st.NextHop6)
	}
	if st.HoldTime != 9*time.Second || st.holdSecs != 9 {
		t.Errorf("HoldTime = %v (%d s), want 9s", st.HoldTime, st.holdSecs)
	}
	if st.Peers[0].Port != 179 || st.Peers[1].Port != 1179 {
		t.Errorf("peer ports = %d, %d; want 179, 1179", st.Peers[0].Port, st.Peers[1].Port)
	}
	if want := []uint32{65001<<16 | 100, 0xFFFFFF01}; len(st.communities) != 2 || st.communities[0] != want[0] || st.communities[1] != want[1] {
		t.Errorf("communities = %#x, want %#x", st.communities, want)
	}
	// The validated settings must not alias the caller's slices.
	cfg.Peers[0].Address = ip("198.51.100.1")
	if st.Peers[0].Address != ip("192.0.2.254") {
		t.Errorf("settings alias Config.Peers")
	}
}

func TestCommunity(t *testing.T) {
	tests := []struct {
		in      string
		want    uint32
		wantErr bool
	}{
		{"0:0", 0, false},
		{"65000:100", 65000<<16 | 100, false},
		{"65535:65535", 0xFFFFFFFF, false},
		{"no-export", 0xFFFFFF01, false},
		{"no-advertise", 0xFFFFFF02, false},
		{"no-export-subconfed", 0xFFFFFF03, false},
		{"", 0, true},
		{"65000", 0, true},
		{"65000:", 0, true},
		{":1", 0, true},
		{"65536:1", 0, true},
		{"1:65536", 0, true},
		{"-1:1", 0, true},
		{"a:b", 0, true},
		{"1:2:3", 0, true},
	}
	for _, tt := range tests {
		got, err := parseCommunity(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseCommunity(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got != tt.want {
			t.Errorf("parseCommunity(%q) = %#x, want %#x", tt.in, got, tt.want)
		}
		if !strings.Contains(tt.in, ":") {
			continue
		}
		if s := formatCommunity(got); s != tt.in {
			t.Errorf("formatCommunity(%#x) = %q, want %q", got, s, tt.in)
		}
	}
}
