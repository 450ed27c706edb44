package packet

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// TestHotPathAllocatesNothing runs what a worker does per frame: decode,
// NAT both ways, MAC rewrite, TTL. None of it may allocate.
func TestHotPathAllocatesNothing(t *testing.T) {
	mptcp := []layers.TCPOption{
		// MP_CAPABLE (version 1, 8-byte key) and DSS with a 4-byte data
		// ACK: gopacket's own TCP layer allocates for both.
		{OptionType: layers.TCPOptionKindMultipathTCP, OptionLength: 12, OptionData: []byte{0x01, 0x81, 1, 2, 3, 4, 5, 6, 7, 8}},
		{OptionType: layers.TCPOptionKindMultipathTCP, OptionLength: 8, OptionData: []byte{0x20, 0x01, 9, 9, 9, 9}},
	}
	manyOpts := make([]layers.TCPOption, 12)
	for i := range manyOpts {
		manyOpts[i] = layers.TCPOption{OptionType: layers.TCPOptionKindNop}
	}
	specs := frameKinds()
	specs = append(specs,
		frameSpec{proto: ProtoTCP, flags: FlagSYN, tcpOpts: mptcp},
		frameSpec{v6: true, proto: ProtoTCP, flags: FlagACK, tcpOpts: manyOpts},
		frameSpec{proto: ProtoUDP, zeroUDP: true, tags: 2},
	)
	p := NewParser()
	for _, s := range specs {
		s.payload = payloadOf(100)
		orig := buildFrame(t, s)
		frame := make([]byte, len(orig))
		rs, lip := netip.MustParseAddr("198.18.2.2"), netip.MustParseAddr("198.18.3.3")
		if s.v6 {
			rs, lip = netip.MustParseAddr("fd00::2:2"), netip.MustParseAddr("fd00::3:3")
		}
		var m Meta
		var err error
		allocs := testing.AllocsPerRun(200, func() {
			copy(frame, orig)
			if err = p.Decode(frame, &m); err != nil {
				return
			}
			if err = DNAT(frame, &m, rs, 8080); err != nil {
				return
			}
			if err = SNAT(frame, &m, lip, 50000); err != nil {
				return
			}
			SetMACs(frame, testSrcMAC, testDstMAC)
			DecrementTTL(frame, &m)
		})
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		if allocs != 0 {
			t.Errorf("%v: %v allocations per frame, want 0", s, allocs)
		}
	}
}

func TestDecodeICMPAndErrorsAllocateNothing(t *testing.T) {
	frames := map[string][]byte{
		"icmp":      buildFrame(t, frameSpec{proto: ProtoICMP, icmpID: 3}),
		"icmpv6":    buildFrame(t, frameSpec{v6: true, proto: ProtoICMPv6, icmpID: 3}),
		"options":   ipv4WithOptions(t, []byte{1, 1, 7, 3, 4, 0, 0, 0}),
		"arp":       buildARP(t),
		"truncated": buildFrame(t, frameSpec{proto: ProtoTCP})[:40],
		"fragment":  buildV6Fragment(t, true),
	}
	p := NewParser()
	for name, f := range frames {
		var m Meta
		if allocs := testing.AllocsPerRun(200, func() { _ = p.Decode(f, &m) }); allocs != 0 {
			t.Errorf("%s: %v allocations per Decode, want 0", name, allocs)
		}
	}
}
