package packet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// frameKinds is IPv4/IPv6 × TCP/UDP × untagged/VLAN/QinQ.
func frameKinds() []frameSpec {
	var specs []frameSpec
	for _, v6 := range []bool{false, true} {
		for _, proto := range []uint8{ProtoTCP, ProtoUDP} {
			for tags := range 3 {
				specs = append(specs, frameSpec{v6: v6, proto: proto, tags: tags, sport: 40000, dport: 80, flags: FlagSYN | FlagECE | FlagCWR})
			}
		}
	}
	return specs
}

func (s frameSpec) String() string {
	fam := "ipv4"
	if s.v6 {
		fam = "ipv6"
	}
	return fmt.Sprintf("%s/proto%d/tags%d/len%d/trailer%d", fam, s.proto, s.tags, len(s.payload), s.trailer)
}

func TestDecode(t *testing.T) {
	var specs []frameSpec
	for _, s := range frameKinds() {
		for _, n := range []int{0, 1, 7, 200, 1401} {
			s.payload = payloadOf(n)
			specs = append(specs, s)
		}
		s.trailer = 9
		specs = append(specs, s)
	}
	specs = append(specs,
		frameSpec{proto: ProtoICMP, icmpID: 0xbeef},
		frameSpec{proto: ProtoICMP, icmpID: 0xbeef, icmpType: layers.ICMPv4TypeEchoReply, tags: 1},
		frameSpec{proto: ProtoICMP, icmpID: 0xbeef, icmpType: layers.ICMPv4TypeDestinationUnreachable, payload: payloadOf(28)},
		frameSpec{v6: true, proto: ProtoICMPv6, icmpID: 0xcafe},
		frameSpec{v6: true, proto: ProtoICMPv6, icmpID: 0xcafe, icmpType: layers.ICMPv6TypeEchoReply, tags: 2},
		frameSpec{v6: true, proto: ProtoICMPv6, icmpType: layers.ICMPv6TypePacketTooBig, payload: payloadOf(48)},
		frameSpec{proto: ProtoTCP, sport: 1, dport: 65535, flags: FlagFIN | FlagPSH | FlagACK | FlagURG | FlagRST,
			tcpOpts: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}, {OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop}}},
	)
	p := NewParser()
	for _, s := range specs {
		t.Run(s.String(), func(t *testing.T) {
			s = s.withDefaults()
			frame := buildFrame(t, s)
			var m Meta
			if err := p.Decode(frame, &m); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := Meta{
				L3Off:  l3Offset(s),
				VLANID: map[int]uint16{0: 0, 1: outerVLAN, 2: outerVLAN}[s.tags],
				Tagged: s.tags > 0,
				IPv6:   s.v6,
				Proto:  s.proto,
				Src:    s.src,
				Dst:    s.dst,
			}
			want.L4Off = l4Offset(s)
			switch s.proto {
			case ProtoTCP:
				want.SrcPort, want.DstPort, want.TCPFlags = s.sport, s.dport, s.flags
			case ProtoUDP:
				want.SrcPort, want.DstPort = s.sport, s.dport
			case ProtoICMP:
				if s.icmpType == 0 || s.icmpType == layers.ICMPv4TypeEchoReply {
					want.SrcPort, want.DstPort = s.icmpID, s.icmpID
				}
			case ProtoICMPv6:
				if s.icmpType == 0 || s.icmpType == layers.ICMPv6TypeEchoReply {
					want.SrcPort, want.DstPort = s.icmpID, s.icmpID
				}
			}
			want.Length = want.L4Off + l4Length(s)
			if m != want {
				t.Errorf("Meta mismatch\n got %+v\nwant %+v", m, want)
			}
			if m.Length > len(frame) {
				t.Errorf("Length %d > len(frame) %d", m.Length, len(frame))
			}
		})
	}
}

// l4Length is the size of the L4 segment buildFrame produces for s.
func l4Length(s frameSpec) int {
	hdr := map[uint8]int{ProtoTCP: 20, ProtoUDP: 8, ProtoICMP: 8, ProtoICMPv6: 8}[s.proto]
	var opts int
	for _, o := range s.tcpOpts {
		opts += max(int(o.OptionLength), 1)
	}
	return hdr + (opts+3)/4*4 + len(s.payload) // gopacket pads options to 32 bits
}

func payloadOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

func TestDecodeMatchesGopacket(t *testing.T) {
	// Cross-check with gopacket's full decoder on the same frames.
	p := NewParser()
	for _, s := range frameKinds() {
		s.payload = payloadOf(33)
		frame := buildFrame(t, s)
		var m Meta
		if err := p.Decode(frame, &m); err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		nl := pkt.NetworkLayer()
		tl := pkt.TransportLayer()
		if got := len(frame) - len(nl.LayerContents()) - len(nl.LayerPayload()); got != m.L3Off {
			t.Errorf("%v: L3Off %d, gopacket %d", s, m.L3Off, got)
		}
		if got := m.L4Off + len(tl.LayerContents()) + len(tl.LayerPayload()); got != m.Length {
			t.Errorf("%v: Length %d, gopacket L4 ends at %d", s, m.Length, got)
		}
		src, dst := nl.NetworkFlow().Endpoints()
		if src.String() != m.Src.String() || dst.String() != m.Dst.String() {
			t.Errorf("%v: addrs %v>%v, gopacket %v>%v", s, m.Src, m.Dst, src, dst)
		}
		sp, dp := tl.TransportFlow().Endpoints()
		if binary.BigEndian.Uint16(sp.Raw()) != m.SrcPort || binary.BigEndian.Uint16(dp.Raw()) != m.DstPort {
			t.Errorf("%v: ports %d>%d, gopacket %v>%v", s, m.SrcPort, m.DstPort, sp, dp)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	v4tcp := buildFrame(t, frameSpec{proto: ProtoTCP, sport: 1, dport: 2, payload: payloadOf(40)})
	v4udp := buildFrame(t, frameSpec{proto: ProtoUDP, sport: 1, dport: 2, payload: payloadOf(40), tags: 1})
	v6tcp := buildFrame(t, frameSpec{v6: true, proto: ProtoTCP, sport: 1, dport: 2, payload: payloadOf(40), tags: 2})

	// edit returns a copy of f changed by fn, with its IPv4 header
	// checksum fixed, so that each case tests what it changed.
	edit := func(f []byte, fn func(b []byte)) []byte {
		b := append([]byte(nil), f...)
		fn(b)
		if binary.BigEndian.Uint16(b[12:]) == EtherTypeIPv4 && b[14]>>4 == 4 {
			if hl := int(b[14]&0xf) * 4; hl >= 20 && len(b) >= 14+hl {
				ip := IPv4(b[14 : 14+hl])
				ip.SetChecksum(0)
				ip.SetChecksum(ip.CalculateChecksum())
			}
		}
		return b
	}
	const l3 = 14
	const l4 = l3 + 20
	arp := buildARP(t)
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, ErrTruncated},
		{"13 bytes", make([]byte, 13), ErrTruncated},
		{"ARP", arp, ErrUnsupported},
		{"unknown ethertype", edit(v4tcp, func(b []byte) { binary.BigEndian.PutUint16(b[12:], 0x88b5) }), ErrUnsupported},
		{"802.3 length", edit(v4tcp, func(b []byte) { binary.BigEndian.PutUint16(b[12:], 100) }), ErrUnsupported},
		{"three VLAN tags", threeTags(v4udp), ErrUnsupported},
		{"VLAN tag truncated", v4udp[:16], ErrTruncated},
		{"IHL 4", edit(v4tcp, func(b []byte) { b[l3] = 0x44 }), ErrMalformed},
		{"IHL 0", edit(v4tcp, func(b []byte) { b[l3] = 0x40 }), ErrMalformed},
		{"IHL past frame", edit(v4tcp[:l3+24], func(b []byte) { b[l3] = 0x47 }), ErrTruncated},
		{"IPv4 version 6", edit(v4tcp, func(b []byte) { b[l3] = 0x65 }), ErrMalformed},
		{"IPv6 version 4", edit(v6tcp, func(b []byte) { b[22] = 0x45 }), ErrMalformed},
		{"total length > frame", edit(v4tcp, func(b []byte) { binary.BigEndian.PutUint16(b[l3+2:], uint16(len(b)-l3+1)) }), ErrBadLength},
		{"total length < IHL", edit(v4tcp, func(b []byte) { binary.BigEndian.PutUint16(b[l3+2:], 19) }), ErrBadLength},
		{"total length 0", edit(v4tcp, func(b []byte) { binary.BigEndian.PutUint16(b[l3+2:], 0) }), ErrBadLength},
		{"total length cuts TCP header", edit(v4tcp, func(b []byte) { binary.BigEndian.PutUint16(b[l3+2:], 20+19) }), ErrTruncated},
		{"IPv6 payload length > frame", edit(v6tcp, func(b []byte) { binary.BigEndian.PutUint16(b[22+4:], 1000) }), ErrBadLength},
		{"IPv6 payload length 0", edit(v6tcp, func(b []byte) { binary.BigEndian.PutUint16(b[22+4:], 0) }), ErrBadLength},
		{"IPv6 jumbogram", edit(v6tcp, func(b []byte) { binary.BigEndian.PutUint16(b[22+4:], 0); b[22+6] = 0 }), ErrUnsupported},
		{"TCP data offset 4", edit(v4tcp, func(b []byte) { b[l4+12] = 0x40 }), ErrMalformed},
		{"TCP data offset 0", edit(v4tcp, func(b []byte) { b[l4+12] = 0x00 }), ErrMalformed},
		{"TCP data offset past packet", edit(v4tcp, func(b []byte) { b[l4+12] = 0xf0; binary.BigEndian.PutUint16(b[l3+2:], 20+40) }), ErrTruncated},
		{"UDP length 7", edit(v4udp, func(b []byte) { binary.BigEndian.PutUint16(b[18+20+4:], 7) }), ErrBadLength},
		{"UDP length > IP payload", edit(v4udp, func(b []byte) { binary.BigEndian.PutUint16(b[18+20+4:], 8+41) }), ErrBadLength},
		{"IPv4 MF", edit(v4tcp, func(b []byte) { b[l3+6] |= 0x20 }), ErrFragment},
		{"IPv4 offset", edit(v4tcp, func(b []byte) { b[l3+6], b[l3+7] = 0, 185 }), ErrFragment},
		{"IPv4 fragment built by gopacket", buildV4Fragment(t), ErrFragment},
		{"IPv6 fragment header", buildV6Fragment(t, false), ErrFragment},
		{"IPv6 fragment behind hop-by-hop", buildV6Fragment(t, true), ErrFragment},
		{"IPv6 hop-by-hop then TCP", edit(v6tcp, func(b []byte) {
			// Turn the TCP header's first 8 bytes into an empty HBH header.
			b[22+6] = ipv6HopByHop
			b[22+40], b[22+41] = ProtoTCP, 0
		}), ErrUnsupported},
		{"IPv6 routing header truncated", edit(v6tcp, func(b []byte) {
			b[22+6] = ipv6Routing
			b[22+40], b[22+41] = ProtoTCP, 200
		}), ErrTruncated},
		{"IPv4 GRE", edit(v4tcp, func(b []byte) { b[l3+9] = 47 }), ErrUnsupported},
		{"IPv4 carrying IPv6 ext header number", edit(v4tcp, func(b []byte) { b[l3+9] = ipv6Fragment }), ErrUnsupported},
		{"IPv6 ESP", edit(v6tcp, func(b []byte) { b[22+6] = 50 }), ErrUnsupported},
		{"IPv4 option length 1", ipv4WithOptions(t, []byte{7, 1, 0, 0}), ErrMalformed},
		{"IPv4 option past header", ipv4WithOptions(t, []byte{1, 7, 9, 0}), ErrMalformed},
		{"IPv4 header checksum", append(append([]byte(nil), v4tcp[:l3+10]...), append([]byte{v4tcp[l3+10] ^ 0xff, v4tcp[l3+11]}, v4tcp[l3+12:]...)...), ErrBadChecksum},
		{"ICMP truncated", edit(buildFrame(t, frameSpec{proto: ProtoICMP}), func(b []byte) { binary.BigEndian.PutUint16(b[l3+2:], 20+7) }), ErrTruncated},
	}
	p := NewParser()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Meta
			err := p.Decode(tt.frame, &m)
			if err != tt.want {
				t.Fatalf("Decode = %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("valid options", func(t *testing.T) {
		var m Meta
		f := ipv4WithOptions(t, []byte{1, 1, 7, 3, 4, 0, 0, 0}) // NOP NOP RR(len 3) EOL
		if err := p.Decode(f, &m); err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if m.L4Off != l3+28 {
			t.Errorf("L4Off = %d, want %d", m.L4Off, l3+28)
		}
	})
}

// TestDecodeTruncatedEverywhere cuts valid frames at every length and checks
// the error names the header that no longer fits.
func TestDecodeTruncatedEverywhere(t *testing.T) {
	p := NewParser()
	specs := frameKinds()
	specs = append(specs, frameSpec{proto: ProtoICMP}, frameSpec{v6: true, proto: ProtoICMPv6, tags: 1})
	for _, s := range specs {
		s.payload = payloadOf(64) // past the 60-byte minimum: no padding
		frame := buildFrame(t, s)
		l3, l4 := l3Offset(s), l4Offset(s)
		for n := range len(frame) {
			var want error
			switch {
			case n < l3:
				want = ErrTruncated // Ethernet or VLAN tag
			case n < l4:
				want = ErrTruncated // IP header
			default:
				want = ErrBadLength // the IP length claims more than is there
			}
			var m Meta
			if err := p.Decode(frame[:n], &m); err != want {
				t.Fatalf("%v cut at %d: Decode = %v, want %v", s, n, err, want)
			}
		}
		var m Meta
		if err := p.Decode(frame, &m); err != nil {
			t.Fatalf("%v uncut: %v", s, err)
		}
	}
}

// TestDecodeNeverPanicsOnMutations flips bytes of valid frames and checks
// that Decode returns nil or a sentinel, with a Meta that fits the frame.
func TestDecodeNeverPanicsOnMutations(t *testing.T) {
	p := NewParser()
	for _, s := range frameKinds() {
		s.payload = payloadOf(20)
		frame := buildFrame(t, s)
		for i := range len(frame) {
			for _, v := range []byte{0x00, 0xff, 0x45, 0x60, 0x05, 0x81} {
				b := append([]byte(nil), frame...)
				b[i] = v
				var m Meta
				err := p.Decode(b, &m)
				checkDecodeResult(t, b, &m, err)
			}
		}
	}
}

var sentinels = []error{ErrTruncated, ErrMalformed, ErrBadLength, ErrFragment, ErrUnsupported, ErrBadChecksum}

func checkDecodeResult(t *testing.T, frame []byte, m *Meta, err error) {
	t.Helper()
	if err != nil {
		for _, s := range sentinels {
			if err == s {
				return
			}
		}
		t.Fatalf("Decode returned non-sentinel error %v", err)
	}
	if m.L3Off < EthernetHeaderLen || m.L4Off <= m.L3Off || m.Length > len(frame) || m.L4Off >= m.Length {
		t.Fatalf("Meta does not fit a %d-byte frame: %+v", len(frame), *m)
	}
	if m.IPv6 != m.Src.Is6() || m.IPv6 != m.Dst.Is6() || !m.Src.IsValid() {
		t.Fatalf("Meta addresses do not match its family: %+v", *m)
	}
}

func buildARP(t testing.TB) []byte {
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
		&layers.Ethernet{SrcMAC: testSrcMAC[:], DstMAC: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: testSrcMAC[:], SourceProtAddress: []byte{198, 18, 0, 1},
			DstHwAddress: make([]byte, 6), DstProtAddress: []byte{198, 18, 0, 2}})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// threeTags inserts a third tag after the one v4udp carries.
func threeTags(oneTag []byte) []byte {
	b := append([]byte(nil), oneTag[:12]...)
	// S-tag VLAN 7, C-tag VLAN 5, then oneTag's own tag and packet.
	b = append(b, 0x88, 0xa8, 0x00, 0x07, 0x81, 0x00, 0x00, 0x05, 0x81, 0x00)
	return append(b, oneTag[14:]...)
}

func buildV4Fragment(t testing.TB) []byte {
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: testSrcMAC[:], DstMAC: testDstMAC[:], EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, Flags: layers.IPv4MoreFragments,
			SrcIP: []byte{198, 18, 0, 1}, DstIP: []byte{198, 18, 0, 2}},
		gopacket.Payload(payloadOf(64)))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func buildV6Fragment(t testing.TB, hopByHop bool) []byte {
	src, dst := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6Fragment, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	ls := []gopacket.SerializableLayer{
		&layers.Ethernet{SrcMAC: testSrcMAC[:], DstMAC: testDstMAC[:], EthernetType: layers.EthernetTypeIPv6}, ip,
	}
	if hopByHop {
		// gopacket serializes a HopByHop header given in the IPv6 layer.
		ip.NextHeader = layers.IPProtocolIPv6HopByHop
		ip.HopByHop = &layers.IPv6HopByHop{}
		ip.HopByHop.NextHeader = layers.IPProtocolIPv6Fragment
		ip.HopByHop.Options = []*layers.IPv6HopByHopOption{{OptionType: 1, OptionLength: 4, OptionData: make([]byte, 4)}}
	}
	ls = append(ls,
		&layers.IPv6Fragment{NextHeader: layers.IPProtocolUDP, FragmentOffset: 0, MoreFragments: true, Identification: 9},
		gopacket.Payload(payloadOf(64)))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ipv4WithOptions builds an IPv4/TCP frame whose header carries opts (a
// multiple of 4 bytes) and fixes IHL and total length by hand.
func ipv4WithOptions(t testing.TB, opts []byte) []byte {
	base := buildFrame(t, frameSpec{proto: ProtoTCP, sport: 1, dport: 2, payload: payloadOf(40)})
	const l3 = 14
	b := append([]byte(nil), base[:l3+20]...)
	b = append(b, opts...)
	b = append(b, base[l3+20:]...)
	ip := IPv4(b[l3:])
	b[l3] = 0x40 | byte((20+len(opts))/4)
	ip.SetTotalLength(ip.TotalLength() + uint16(len(opts)))
	ip.SetChecksum(ip.CalculateChecksum())
	return b
}

func TestErrorsAreDistinct(t *testing.T) {
	all := append(sentinels, ErrAddressFamily)
	for i, a := range all {
		for j, b := range all {
			if (i == j) != errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = %v", a, b, errors.Is(a, b))
			}
		}
	}
}
