package bgp

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCheckMD5Listen(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name    string
		port    int32
		peer    Peer
		mptcp   bool
		wantErr bool
	}{
		{"passive password mptcp", 179, Peer{Address: lo, Passive: true, Password: "k"}, true, true},
		{"passive password tcp", 179, Peer{Address: lo, Passive: true, Password: "k"}, false, false},
		{"passive no password mptcp", 179, Peer{Address: lo, Passive: true}, true, false},
		// gobgp also keys the listener for active peers, but their own
		// dials, which are not MPTCP, still bring the session up.
		{"active password mptcp", 179, Peer{Address: lo, Password: "k"}, true, false},
		{"not listening", -1, Peer{Address: lo, Password: "k"}, true, false},
	}
	for _, tt := range tests {
		st := settings{Config: Config{ListenPort: tt.port, Peers: []Peer{tt.peer}}}
		err := checkMD5Listen(st, tt.mptcp)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: checkMD5Listen = %v, wantErr %v", tt.name, err, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "multipathtcp=0") {
			t.Errorf("%s: error %q does not say how to fix it", tt.name, err)
		}
	}
	// This test binary turns MPTCP listening off (//go:debug in bgp_test.go).
	if mptcpListen() {
		t.Errorf("mptcpListen() = true despite //go:debug multipathtcp=0")
	}
}
