package main

import "testing"

func TestNewFlowSpace(t *testing.T) {
	tests := []struct {
		name        string
		addrs       uint32
		sport       uint16
		want        uint64
		proto       proto
		wantSpace   flowSpace
		wantClamped bool
	}{
		{"default one flow", 1, 1024, 0, protoUDP, flowSpace{1, 60000, 1}, false},
		{"default one per address", 10, 1024, 0, protoACK, flowSpace{10, 60000, 10}, false},
		{"syn default is the whole space", 4, 1024, 0, protoSYN, flowSpace{4, 60000, 240000}, false},
		{"explicit", 1, 1024, 1000, protoSYN, flowSpace{1, 60000, 1000}, false},
		{"ports end at 65535", 1, 65000, 0, protoSYN, flowSpace{1, 536, 536}, false},
		{"last port", 1, 65535, 5, protoUDP, flowSpace{1, 1, 1}, true},
		{"clamped to one address", 1, 1024, 1000000, protoSYN, flowSpace{1, 60000, 60000}, true},
		{"a million over a range", 20, 1024, 1000000, protoSYN, flowSpace{20, 60000, 1000000}, false},
		{"largest range", maxAddrs, 1, 0, protoSYN, flowSpace{maxAddrs, 60000, maxAddrs * 60000}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, clamped := newFlowSpace(tc.addrs, tc.sport, tc.want, tc.proto)
			if s != tc.wantSpace || clamped != tc.wantClamped {
				t.Errorf("newFlowSpace(%d, %d, %d, %v) = %+v, %v; want %+v, %v",
					tc.addrs, tc.sport, tc.want, tc.proto, s, clamped, tc.wantSpace, tc.wantClamped)
			}
		})
	}
}

// TestFlowCursor checks that the cursor the generator program mirrors walks
// the same flows as the closed form, and that a cycle covers flows distinct
// (address, port) pairs within the space.
func TestFlowCursor(t *testing.T) {
	for _, s := range []flowSpace{
		{addrs: 1, ports: 60000, flows: 1},
		{addrs: 1, ports: 60000, flows: 1000},
		{addrs: 7, ports: 100, flows: 700},
		{addrs: 7, ports: 100, flows: 33}, // not a multiple of addrs
		{addrs: 256, ports: 10, flows: 2000},
	} {
		var c flowCursor
		seen := make(map[[2]uint32]bool)
		for i := range uint64(3*s.flows + 5) {
			a, p := s.flow(i)
			if c.addr != a || c.port != p || uint64(c.f) != i%uint64(s.flows) {
				t.Fatalf("%+v frame %d: cursor %+v, flow() = (%d, %d)", s, i, c, a, p)
			}
			if a >= s.addrs || p >= s.ports {
				t.Fatalf("%+v frame %d: (%d, %d) outside the space", s, i, a, p)
			}
			if i < uint64(s.flows) {
				seen[[2]uint32{a, p}] = true
			}
			c.next(s)
		}
		if len(seen) != int(s.flows) {
			t.Errorf("%+v: %d distinct flows in a cycle, want %d", s, len(seen), s.flows)
		}
	}
}
