package main

import (
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseAddrRange(t *testing.T) {
	tests := []struct {
		in        string
		wantFirst string
		wantCount uint32
		wantErr   bool
	}{
		{"198.18.0.1", "198.18.0.1", 1, false},
		{"198.18.0.1-198.18.0.254", "198.18.0.1", 254, false},
		{"198.18.0.1-254", "198.18.0.1", 254, false},
		{"198.18.0.255-198.18.1.1", "198.18.0.255", 3, false},
		{"198.18.0.0-198.18.255.255", "198.18.0.0", 1 << 16, false},
		{"198.18.0.0-198.19.0.0", "", 0, true}, // too many
		{"198.18.0.9-198.18.0.1", "", 0, true},
		{"198.18.0.9-3", "", 0, true},
		{"198.18.0.1-300", "", 0, true},
		{"fd00::1", "", 0, true},
		{"198.18.0.1-fd00::1", "", 0, true},
		{"", "", 0, true},
	}
	for _, tc := range tests {
		r, err := parseAddrRange(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("parseAddrRange(%q) = %+v, want an error", tc.in, r)
			}
			continue
		}
		if err != nil || r.first != netip.MustParseAddr(tc.wantFirst) || r.count != tc.wantCount {
			t.Errorf("parseAddrRange(%q) = %+v, %v; want %s x%d", tc.in, r, err, tc.wantFirst, tc.wantCount)
		}
	}
}

func TestParseSend(t *testing.T) {
	base := "-i veth0 -src-mac 02:00:00:00:00:01 -dst-mac 02:00:00:00:00:02 -src-ip 198.18.0.1 -dst-ip 198.18.0.2"
	good, err := parseSend(strings.Fields(base), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if good.engine != "live" || good.proto != protoUDP || good.size != 64 || good.duration != 5*time.Second ||
		good.sport != 1024 || good.dport != 80 || good.cpu != -1 || good.flows != 0 || good.rate != 0 || good.count != 0 {
		t.Errorf("defaults: %+v", good)
	}
	full, err := parseSend(strings.Fields(base+" -engine xsk -proto ack -size 1518 -flows 7 -rate 1000 -count 9"+
		" -duration 10m -cpu 1 -sport 2000 -dport 53 -count-returns -json -quiet"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if full.engine != "xsk" || full.proto != protoACK || full.size != 1518 || full.flows != 7 || full.rate != 1000 ||
		full.count != 9 || full.duration != 10*time.Minute || full.cpu != 1 || full.sport != 2000 || full.dport != 53 ||
		!full.countReturns || !full.json || !full.quiet || full.progress() {
		t.Errorf("all flags: %+v", full)
	}
	for _, bad := range []string{
		"-size 63", "-size 1519", "-duration 11m", "-duration 0s", "-proto icmp", "-engine dpdk",
		"-flows 0", "-sport 0", "-dport 65536", "-src-mac 02:00", "-dst-ip fd00::1", "-cpu -2", "extra",
	} {
		if c, err := parseSend(strings.Fields(base+" "+bad), io.Discard); err == nil {
			t.Errorf("%s: accepted (%+v)", bad, c)
		}
	}
	for _, missing := range []string{"-i", "-src-mac", "-dst-mac", "-src-ip", "-dst-ip"} {
		f := strings.Fields(base)
		for i := range f {
			if f[i] == missing {
				f = append(f[:i], f[i+2:]...)
				break
			}
		}
		if _, err := parseSend(f, io.Discard); err == nil {
			t.Errorf("accepted without %s", missing)
		}
	}
}

func TestParseRecv(t *testing.T) {
	c, err := parseRecv("reflect", strings.Fields("-i veth0"), io.Discard)
	if err != nil || c.mode != "xdp" || c.duration != maxDuration || c.cmd != "reflect" || !c.progress() {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	if c.napiCPU != -1 || c.cpu != -1 {
		t.Errorf("defaults pin: %+v", c)
	}
	c, err = parseRecv("sink", strings.Fields("-i veth0 -mode xsk -duration 3s -cpu 1 -napi-cpu 0 -quiet"), io.Discard)
	if err != nil || c.mode != "xsk" || c.duration != 3*time.Second || c.cpu != 1 || c.napiCPU != 0 || c.progress() {
		t.Errorf("flags: %+v, %v", c, err)
	}
	for _, bad := range []string{"-mode af_packet", "-duration 1h", "", "-i veth0 -duration -1s", "-napi-cpu -3"} {
		args := strings.Fields(bad)
		if !strings.Contains(bad, "-i ") {
			args = append(args, "-i", "veth0")
		}
		if bad == "" {
			args = nil
		}
		if c, err := parseRecv("sink", args, io.Discard); err == nil {
			t.Errorf("%q: accepted (%+v)", bad, c)
		}
	}
}
