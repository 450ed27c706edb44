package xvs

import (
	"fmt"
	"testing"
)

func TestMethod(t *testing.T) {
	for _, tt := range []struct {
		m             Method
		name, forward string
		aliases       []string
	}{
		{MethodDR, "dr", "Route", []string{"g", "gate", "route"}},
		{MethodNAT, "nat", "Masq", []string{"m", "masq", "masquerade"}},
		{MethodTUN, "tun", "Tunnel", []string{"i", "ipip", "tunnel"}},
		{MethodFullNAT, "fullnat", "FullNat", []string{"fnat"}},
	} {
		if tt.m.String() != tt.name || tt.m.Forward() != tt.forward {
			t.Errorf("%d: %q, %q; want %q, %q", tt.m, tt.m.String(), tt.m.Forward(), tt.name, tt.forward)
		}
		for _, s := range append([]string{tt.name}, tt.aliases...) {
			if m, err := ParseMethod(s); err != nil || m != tt.m {
				t.Errorf("ParseMethod(%q) = %v, %v; want %v", s, m, err, tt.m)
			}
		}
	}
	if got := fmt.Sprint(Methods()); got != "[dr nat tun fullnat]" {
		t.Errorf("Methods() = %s", got)
	}
	// The connection table stores methods by value: DR is the zero value.
	if MethodDR != 0 || MethodFullNAT != 3 {
		t.Errorf("methods renumbered: dr %d, fullnat %d", MethodDR, MethodFullNAT)
	}
	for _, s := range []string{"", "DR", "local", "gatewaying"} {
		if m, err := ParseMethod(s); err == nil {
			t.Errorf("ParseMethod(%q) = %v, want an error", s, m)
		}
	}
	if got := Method(9).String() + " " + Method(9).Forward(); got != "Method(9) Method(9)" {
		t.Errorf("an unknown method is %q", got)
	}
}

func TestProtocol(t *testing.T) {
	for _, tt := range []struct {
		p    Protocol
		name string
	}{{ProtoTCP, "tcp"}, {ProtoUDP, "udp"}, {1, "proto(1)"}, {132, "proto(132)"}} {
		if got := tt.p.String(); got != tt.name {
			t.Errorf("Protocol(%d) = %q, want %q", tt.p, got, tt.name)
		}
	}
	if ProtoTCP != 6 || ProtoUDP != 17 {
		t.Error("protocol numbers")
	}
	for _, s := range []string{"tcp", "udp"} {
		if p, err := ParseProtocol(s); err != nil || p.String() != s {
			t.Errorf("ParseProtocol(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParseProtocol("sctp"); err == nil {
		t.Error("ParseProtocol(sctp) succeeded")
	}
}

func TestParseXDPMode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    XDPMode
		wantErr bool
	}{
		{in: "auto", want: XDPAuto},
		{in: "driver", want: XDPDriver},
		{in: "native", want: XDPDriver},
		{in: "drv", want: XDPDriver},
		{in: "generic", want: XDPGeneric},
		{in: "SKB", want: XDPGeneric},
		{in: " Generic ", want: XDPGeneric},
		{in: "", wantErr: true},
		{in: "offload", wantErr: true},
	} {
		got, err := ParseXDPMode(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseXDPMode(%q) = %v, want error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseXDPMode(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, m := range XDPModes() {
		if got, err := ParseXDPMode(m.String()); err != nil || got != m {
			t.Errorf("ParseXDPMode(%q) = %v, %v; want %v", m.String(), got, err, m)
		}
	}
	if got := XDPMode(7).String(); got != "XDPMode(7)" {
		t.Errorf("XDPMode(7).String() = %q", got)
	}
}

func TestModeNames(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{fmt.Sprint(XDPModes()), "[auto driver generic]"},
		{fmt.Sprint(ZeroCopies()), "[auto on off]"},
		{fmt.Sprint(FastPaths()), "[auto xdp off]"},
		{ZeroCopy(5).String() + " " + FastPath(5).String(), "ZeroCopy(5) FastPath(5)"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s, want %s", tt.got, tt.want)
		}
	}
	// Each list starts at the zero value, the default.
	if XDPModes()[0] != 0 || ZeroCopies()[0] != 0 || FastPaths()[0] != 0 {
		t.Error("a default is not the zero value")
	}
}

func TestMinFrames(t *testing.T) {
	for _, tt := range []struct{ ring, sockets, want int }{
		{2048, 1, 4096},
		{2048, 0, 4096}, // no interface yet: one socket's worth
		{512, 3, 3072},
	} {
		if got := MinFrames(tt.ring, tt.sockets); got != tt.want {
			t.Errorf("MinFrames(%d, %d) = %d, want %d", tt.ring, tt.sockets, got, tt.want)
		}
	}
}
