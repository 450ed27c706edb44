package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	tunSrc4, tunDst4 = netip.MustParseAddr("198.18.5.1"), netip.MustParseAddr("198.18.6.2")
	tunSrc6, tunDst6 = netip.MustParseAddr("fd00::5:1"), netip.MustParseAddr("fd00::6:2")
)

func tunnelFor(outer Family, ttl uint8) Tunnel {
	if outer == FamilyIPv6 {
		return Tunnel{Src: tunSrc6, Dst: tunDst6, TTL: ttl, ID: 0x1234}
	}
	return Tunnel{Src: tunSrc4, Dst: tunDst4, TTL: ttl, ID: 0x1234}
}

// inUMEM returns a buffer holding frame at offset headroom, the headroom
// filled with a pattern (it must not leak into a result) and tail bytes of
// the pattern after the frame.
func inUMEM(frame []byte, headroom, tail int) []byte {
	buf := bytes.Repeat([]byte{0xa5}, headroom+len(frame)+tail)
	copy(buf[headroom:], frame)
	return buf
}

// setIPv4DSAndDF sets the TOS byte and DF of the IPv4 packet at l3 and
// fixes its header checksum with the naive implementation.
func setIPv4DSAndDF(frame []byte, l3 int, tos uint8, df bool) {
	ip := IPv4(frame[l3:])
	ip[1] = tos
	if df {
		ip[6] |= 0x40
	} else {
		ip[6] &^= 0x40
	}
	ip.SetChecksum(0)
	ip.SetChecksum(^naiveFold(naiveSum(ip[:ip.HeaderLength()], 0)))
}

// wantEncap builds with gopacket the frame EncapIPIP must produce from
// orig (its packet orig[l3:end]): orig's link-layer header with the outer
// family's ethertype, then the outer header gopacket serializes, then the
// inner packet unchanged.
func wantEncap(tb testing.TB, orig []byte, l3, end int, t Tunnel, tos, ttl uint8, df bool) []byte {
	tb.Helper()
	inner := orig[l3:end]
	innerProto := layers.IPProtocolIPv4
	if inner[0]>>4 == 6 {
		innerProto = layers.IPProtocolIPv6
	}
	var outer gopacket.SerializableLayer
	etype := uint16(EtherTypeIPv4)
	if t.Src.Is4() {
		ip := &layers.IPv4{Version: 4, TOS: tos, Id: t.ID, TTL: ttl, Protocol: innerProto,
			SrcIP: t.Src.AsSlice(), DstIP: t.Dst.AsSlice()}
		if df {
			ip.Flags = layers.IPv4DontFragment
		}
		outer = ip
	} else {
		etype = EtherTypeIPv6
		outer = &layers.IPv6{Version: 6, TrafficClass: tos, HopLimit: ttl, NextHeader: innerProto,
			SrcIP: t.Src.AsSlice(), DstIP: t.Dst.AsSlice()}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		outer, gopacket.Payload(inner)); err != nil {
		tb.Fatalf("serialize outer: %v", err)
	}
	want := append([]byte(nil), orig[:l3]...)
	binary.BigEndian.PutUint16(want[l3-2:], etype)
	return append(want, buf.Bytes()...)
}

func TestEncapIPIP(t *testing.T) {
	type variant struct {
		name string
		tos  uint8 // inner IPv4 TOS; 0 keeps buildFrame's
		noDF bool
	}
	var specs []frameSpec
	for _, s := range frameKinds() {
		for _, n := range []int{0, 1, 300} {
			s.payload = payloadOf(n)
			specs = append(specs, s)
		}
	}
	specs = append(specs,
		frameSpec{proto: ProtoICMP, icmpID: 9, tags: 1},
		frameSpec{v6: true, proto: ProtoICMPv6, icmpID: 9, tags: 2},
		frameSpec{proto: ProtoUDP, trailer: 7}, // padding is cut
	)
	variants := []variant{
		{name: "plain"},
		{name: "CE", tos: 0xb8 | 0x03},
		{name: "ECT1", tos: 0x01},
		{name: "noDF", noDF: true},
	}
	p := NewParser()
	for _, s := range specs {
		s = s.withDefaults()
		for _, v := range variants {
			if s.v6 && (v.tos != 0 || v.noDF) {
				continue
			}
			for _, outer := range []Family{FamilyIPv4, FamilyIPv6} {
				for _, ttl := range []uint8{0, 17} {
					name := fmt.Sprintf("%v/%s/outer%d/ttl%d", s, v.name, outer, ttl)
					t.Run(name, func(t *testing.T) {
						orig := buildFrame(t, s)
						l3 := l3Offset(s)
						if !s.v6 {
							tos := IPv4(orig[l3:]).TOS()
							if v.tos != 0 {
								tos = v.tos
							}
							setIPv4DSAndDF(orig, l3, tos, !v.noDF)
						}
						var m Meta
						if err := p.Decode(orig, &m); err != nil {
							t.Fatal(err)
						}
						tun := tunnelFor(outer, ttl)
						n := EncapOverhead(m.Family(), outer)
						const headroom = 64
						buf := inUMEM(orig, headroom, 16)
						before := m

						frame, err := EncapIPIP(buf, headroom, &m, tun)
						if err != nil {
							t.Fatalf("EncapIPIP: %v", err)
						}
						if &frame[0] != &buf[headroom-n] || len(frame) != before.Length+n {
							t.Fatalf("frame is buf[%d:+%d], want buf[%d:+%d]",
								cap(buf)-cap(frame), len(frame), headroom-n, before.Length+n)
						}

						// The expected outer fields, stated apart from the code.
						var innerDS, innerTTL uint8
						df := false
						if s.v6 {
							innerDS, innerTTL = 0x20, 64
						} else {
							ip := IPv4(orig[l3:])
							innerDS, innerTTL, df = ip.TOS(), ip.TTL(), !v.noDF
						}
						wantDS := innerDS
						if innerDS&3 == 3 {
							wantDS = innerDS&^3 | 2
						}
						wantTTL := innerTTL
						if ttl != 0 {
							wantTTL = ttl
						}
						if outer == FamilyIPv6 {
							df = false
						}
						want := wantEncap(t, orig, l3, before.Length, tun, wantDS, wantTTL, df)
						if !bytes.Equal(frame, want) {
							t.Fatalf("encapsulated frame differs from gopacket's\n got %x\nwant %x", frame, want)
						}
						if !bytes.Equal(buf[headroom+before.Length:], inUMEM(orig, 0, 16)[before.Length:]) {
							t.Fatalf("EncapIPIP wrote past the packet")
						}
						verifyOuter(t, frame, l3)

						wantMeta := Meta{L3Off: l3, L4Off: l3 + n, VLANID: before.VLANID, Tagged: before.Tagged,
							IPv6: outer == FamilyIPv6, Proto: ProtoIPIP, Src: tun.Src, Dst: tun.Dst, Length: before.Length + n}
						if s.v6 {
							wantMeta.Proto = ProtoIPv6
						}
						if m != wantMeta {
							t.Fatalf("Meta after encap %+v, want %+v", m, wantMeta)
						}

						// Decapsulation gives the original frame back in place.
						dec, err := DecapIPIP(frame)
						if err != nil {
							t.Fatalf("DecapIPIP: %v", err)
						}
						if &dec[0] != &buf[headroom] || !bytes.Equal(dec, orig[:before.Length]) {
							t.Fatalf("decap does not restore the frame\n got %x\nwant %x", dec, orig[:before.Length])
						}
						var again Meta
						if err := p.Decode(dec, &again); err != nil || again != before {
							t.Fatalf("Decode after decap: %v %+v, want %+v", err, again, before)
						}
					})
				}
			}
		}
	}
}

// verifyOuter decodes an encapsulated frame with plain gopacket and checks
// the outer IPv4 header checksum and lengths from scratch, and that the
// inner packet's own checksums still verify.
func verifyOuter(tb testing.TB, frame []byte, l3 int) {
	tb.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
	if el := pkt.ErrorLayer(); el != nil {
		tb.Fatalf("gopacket cannot decode the encapsulated frame: %v", el.Error())
	}
	var ips []gopacket.Layer
	for _, l := range pkt.Layers() {
		if l.LayerType() == layers.LayerTypeIPv4 || l.LayerType() == layers.LayerTypeIPv6 {
			ips = append(ips, l)
		}
	}
	if len(ips) != 2 {
		tb.Fatalf("gopacket sees %d IP layers, want 2", len(ips))
	}
	switch o := ips[0].(type) {
	case *layers.IPv4:
		if naiveFold(naiveSum(o.Contents, 0)) != 0xffff {
			tb.Fatalf("outer IPv4 checksum does not verify")
		}
		if int(o.Length) != len(frame)-l3 {
			tb.Fatalf("outer total length %d, want %d", o.Length, len(frame)-l3)
		}
	case *layers.IPv6:
		if int(o.Length) != len(frame)-l3-IPv6HeaderLen || o.FlowLabel != 0 {
			tb.Fatalf("outer IPv6 payload length %d flow label %#x", o.Length, o.FlowLabel)
		}
	}
	// The inner packet as a frame of its own keeps valid checksums.
	innerFrame := append([]byte(nil), frame[:l3]...)
	et := uint16(EtherTypeIPv4)
	if _, ok := ips[1].(*layers.IPv6); ok {
		et = EtherTypeIPv6
	}
	binary.BigEndian.PutUint16(innerFrame[l3-2:], et)
	off := l3 + IPv4MinHeaderLen
	if _, ok := ips[0].(*layers.IPv6); ok {
		off = l3 + IPv6HeaderLen
	}
	innerFrame = append(innerFrame, frame[off:]...)
	if r := verifyChecksums(tb, innerFrame); !r.ipv4OK || !r.l4OK {
		tb.Fatalf("inner checksums do not verify: %+v", r)
	}
}

func TestEncapIPIPErrors(t *testing.T) {
	p := NewParser()
	for _, s := range []frameSpec{{proto: ProtoTCP, tags: 1}, {v6: true, proto: ProtoUDP}} {
		for _, outer := range []Family{FamilyIPv4, FamilyIPv6} {
			orig := buildFrame(t, s)
			var m Meta
			if err := p.Decode(orig, &m); err != nil {
				t.Fatal(err)
			}
			n := EncapOverhead(m.Family(), outer)
			tun := tunnelFor(outer, 0)
			tests := []struct {
				name     string
				headroom int
				tun      Tunnel
				meta     func(*Meta)
				want     error
			}{
				{"headroom one short", n - 1, tun, nil, ErrNoHeadroom},
				{"no headroom", 0, tun, nil, ErrNoHeadroom},
				{"invalid source", n, Tunnel{Dst: tun.Dst}, nil, ErrAddressFamily},
				{"mixed tunnel families", n, Tunnel{Src: tunSrc4, Dst: tunDst6}, nil, ErrAddressFamily},
				{"mapped and IPv4", n, Tunnel{Src: netip.MustParseAddr("::ffff:198.18.0.1"), Dst: tunDst4}, nil, ErrAddressFamily},
				{"Meta past the frame", n, tun, func(m *Meta) { m.Length += 100 }, ErrMalformed},
				{"Meta without L2", n, tun, func(m *Meta) { m.L3Off = 0 }, ErrMalformed},
				{"L4 inside IP header", n, tun, func(m *Meta) { m.L4Off = m.L3Off + 4 }, ErrMalformed},
			}
			for _, tt := range tests {
				t.Run(fmt.Sprintf("%v/outer%d/%s", s, outer, tt.name), func(t *testing.T) {
					buf := inUMEM(orig, tt.headroom, 8)
					saved := append([]byte(nil), buf...)
					mm := m
					if tt.meta != nil {
						tt.meta(&mm)
					}
					before := mm
					frame, err := EncapIPIP(buf, tt.headroom, &mm, tt.tun)
					if err != tt.want || frame != nil {
						t.Fatalf("EncapIPIP = %v (frame %d bytes), want %v", err, len(frame), tt.want)
					}
					if !bytes.Equal(buf, saved) || mm != before {
						t.Fatalf("failed EncapIPIP changed the buffer or the Meta")
					}
				})
			}
		}
	}
}

func TestEncapTooLong(t *testing.T) {
	// A Meta claiming an IP packet of 65530 bytes: the outer IPv4 total
	// length would overflow.
	buf := make([]byte, 64+14+65530)
	m := Meta{L3Off: 14, L4Off: 34, Proto: ProtoUDP, Length: 14 + 65530}
	frame := buf[64:]
	frame[14] = 0x45
	if _, err := EncapIPIP(buf, 64, &m, tunnelFor(FamilyIPv4, 0)); err != ErrTooBig {
		t.Fatalf("EncapIPIP = %v, want ErrTooBig", err)
	}
	if _, err := EncapIPIP(buf, 64, &m, tunnelFor(FamilyIPv6, 0)); err != nil {
		t.Fatalf("EncapIPIP over IPv6 = %v, want success (payload length 65530)", err)
	}
}

func TestEncapMTU(t *testing.T) {
	if got := EncapOverhead(FamilyIPv4, FamilyIPv4); got != 20 {
		t.Errorf("EncapOverhead(4, 4) = %d", got)
	}
	if got := EncapOverhead(FamilyIPv4, FamilyIPv6); got != 40 {
		t.Errorf("EncapOverhead(4, 6) = %d", got)
	}
	if got := EncapOverhead(FamilyIPv6, FamilyIPv6); got != 40 {
		t.Errorf("EncapOverhead(6, 6) = %d", got)
	}
	if got := EncapMTU(1500, FamilyIPv4, FamilyIPv4); got != 1480 {
		t.Errorf("EncapMTU(1500, 4, 4) = %d", got)
	}
	if got := EncapMTU(1500, FamilyIPv6, FamilyIPv6); got != 1460 {
		t.Errorf("EncapMTU(1500, 6, 6) = %d", got)
	}

	p := NewParser()
	tests := []struct {
		v6    bool
		ipLen int // IP packet length
		noDF  bool
		outer Family
		mtu   int
		want  bool
	}{
		{ipLen: 1480, outer: FamilyIPv4, mtu: 1500, want: false},
		{ipLen: 1481, outer: FamilyIPv4, mtu: 1500, want: true},
		{ipLen: 1481, noDF: true, outer: FamilyIPv4, mtu: 1500, want: false},
		{ipLen: 1460, outer: FamilyIPv6, mtu: 1500, want: false},
		{ipLen: 1461, outer: FamilyIPv6, mtu: 1500, want: true},
		{v6: true, ipLen: 1460, outer: FamilyIPv6, mtu: 1500, want: false},
		{v6: true, ipLen: 1461, outer: FamilyIPv6, mtu: 1500, want: true},
		{v6: true, ipLen: 1481, outer: FamilyIPv4, mtu: 1500, want: true},
		{v6: true, ipLen: 1480, outer: FamilyIPv4, mtu: 1500, want: false},
	}
	for _, tt := range tests {
		s := frameSpec{v6: tt.v6, proto: ProtoUDP}
		hdr := 20 + 8
		if tt.v6 {
			hdr = 40 + 8
		}
		s.payload = payloadOf(tt.ipLen - hdr)
		frame := buildFrame(t, s)
		if !tt.v6 {
			setIPv4DSAndDF(frame, 14, 0, !tt.noDF)
		}
		var m Meta
		if err := p.Decode(frame, &m); err != nil {
			t.Fatal(err)
		}
		if got := EncapTooBig(frame, &m, tt.outer, tt.mtu); got != tt.want {
			t.Errorf("v6=%v len=%d noDF=%v outer=%d mtu=%d: EncapTooBig = %v, want %v",
				tt.v6, tt.ipLen, tt.noDF, tt.outer, tt.mtu, got, tt.want)
		}
	}
}

func TestDecapIPIPErrors(t *testing.T) {
	p := NewParser()
	encap := func(s frameSpec, outer Family) []byte {
		orig := buildFrame(t, s)
		var m Meta
		if err := p.Decode(orig, &m); err != nil {
			t.Fatal(err)
		}
		f, err := EncapIPIP(inUMEM(orig, 64, 0), 64, &m, tunnelFor(outer, 0))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	v4in4 := encap(frameSpec{proto: ProtoTCP}, FamilyIPv4)
	v6in6 := encap(frameSpec{v6: true, proto: ProtoTCP}, FamilyIPv6)
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"plain TCP", buildFrame(t, frameSpec{proto: ProtoTCP}), ErrUnsupported},
		{"plain IPv6 UDP", buildFrame(t, frameSpec{v6: true, proto: ProtoUDP}), ErrUnsupported},
		{"ARP", buildARP(t), ErrUnsupported},
		{"short", v4in4[:13], ErrTruncated},
		{"outer cut", v4in4[:30], ErrTruncated},
		{"outer IPv6 cut", v6in6[:50], ErrTruncated},
		{"outer length past frame", v4in4[:len(v4in4)-1], ErrBadLength},
		{"outer IPv6 length past frame", v6in6[:len(v6in6)-1], ErrBadLength},
		{"inner cut", func() []byte {
			f := append([]byte(nil), v4in4[:14+20+10]...)
			IPv4(f[14:]).SetTotalLength(30)
			setIPv4DSAndDF(f, 14, f[15], false)
			return f
		}(), ErrTruncated},
		{"outer fragment", func() []byte {
			f := append([]byte(nil), v4in4...)
			f[14+6] |= 0x20
			setIPv4DSAndDF(f, 14, f[15], false)
			return f
		}(), ErrFragment},
		{"inner version mismatch", func() []byte {
			f := append([]byte(nil), v4in4...)
			f[14+9] = ProtoIPv6
			setIPv4DSAndDF(f, 14, f[15], false)
			return f
		}(), ErrMalformed},
		{"outer version", func() []byte {
			f := append([]byte(nil), v4in4...)
			f[14] = 0x55
			return f
		}(), ErrMalformed},
		{"outer IHL", func() []byte {
			f := append([]byte(nil), v4in4...)
			f[14] = 0x44
			return f
		}(), ErrMalformed},
		{"outer checksum", func() []byte {
			f := append([]byte(nil), v4in4...)
			f[14+8]-- // TTL
			return f
		}(), ErrBadChecksum},
		{"three VLAN tags", threeTags(encap(frameSpec{proto: ProtoUDP, tags: 1}, FamilyIPv4)), ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saved := append([]byte(nil), tt.frame...)
			if out, err := DecapIPIP(tt.frame); err != tt.want || out != nil {
				t.Fatalf("DecapIPIP = %v, want %v", err, tt.want)
			}
			if !bytes.Equal(saved, tt.frame) {
				t.Fatalf("failed DecapIPIP changed the frame")
			}
		})
	}
}

// TestDecapIPIPFromGopacket strips outer headers gopacket built (IPv4
// options included) and propagates CE as RFC 6040 says.
func TestDecapIPIPFromGopacket(t *testing.T) {
	tests := []struct {
		name      string
		v6Inner   bool
		v6Outer   bool
		outerDS   uint8
		innerDS   uint8
		wantDS    uint8
		outerOpts bool
	}{
		{name: "4in4", innerDS: 0x10, outerDS: 0x10, wantDS: 0x10},
		{name: "4in4 options", innerDS: 0x10, outerDS: 0x10, wantDS: 0x10, outerOpts: true},
		{name: "4in4 CE to ECT0", innerDS: 0x02, outerDS: 0x03, wantDS: 0x03},
		{name: "4in4 CE to ECT1", innerDS: 0x01, outerDS: 0x03, wantDS: 0x03},
		{name: "4in4 CE to not-ECT", innerDS: 0x00, outerDS: 0x03, wantDS: 0x00},
		{name: "6in6 CE to ECT0", v6Inner: true, v6Outer: true, innerDS: 0x22, outerDS: 0x03, wantDS: 0x23},
		{name: "6in4", v6Inner: true, innerDS: 0x20, outerDS: 0x20, wantDS: 0x20},
		{name: "4in6 CE", v6Outer: true, innerDS: 0x12, outerDS: 0x03, wantDS: 0x13},
	}
	p := NewParser()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := frameSpec{v6: tt.v6Inner, proto: ProtoTCP, tags: 1, payload: payloadOf(33)}.withDefaults()
			inner := buildFrame(t, s)
			l3 := l3Offset(s)
			if tt.v6Inner {
				w := binary.BigEndian.Uint32(inner[l3:])
				binary.BigEndian.PutUint32(inner[l3:], w&^(0xff<<20)|uint32(tt.innerDS)<<20)
			} else {
				setIPv4DSAndDF(inner, l3, tt.innerDS, true)
			}
			var m Meta
			if err := p.Decode(inner, &m); err != nil {
				t.Fatal(err)
			}
			proto := layers.IPProtocolIPv4
			if tt.v6Inner {
				proto = layers.IPProtocolIPv6
			}
			var outer gopacket.SerializableLayer
			etype := uint16(EtherTypeIPv4)
			if tt.v6Outer {
				etype = EtherTypeIPv6
				outer = &layers.IPv6{Version: 6, TrafficClass: tt.outerDS, HopLimit: 9, NextHeader: proto,
					SrcIP: tunSrc6.AsSlice(), DstIP: tunDst6.AsSlice()}
			} else {
				ip := &layers.IPv4{Version: 4, TOS: tt.outerDS, TTL: 9, Protocol: proto,
					SrcIP: tunSrc4.AsSlice(), DstIP: tunDst4.AsSlice()}
				if tt.outerOpts {
					ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
				}
				outer = ip
			}
			sb := gopacket.NewSerializeBuffer()
			if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
				outer, gopacket.Payload(inner[l3:m.Length])); err != nil {
				t.Fatal(err)
			}
			frame := append(append([]byte(nil), inner[:l3]...), sb.Bytes()...)
			binary.BigEndian.PutUint16(frame[l3-2:], etype)

			dec, err := DecapIPIP(frame)
			if err != nil {
				t.Fatalf("DecapIPIP: %v", err)
			}
			var got Meta
			if err := p.Decode(dec, &got); err != nil {
				t.Fatalf("Decode after decap: %v", err)
			}
			if r := verifyChecksums(t, dec); !r.ipv4OK || !r.l4OK {
				t.Fatalf("checksums after decap: %+v", r)
			}
			ds := IPv4(dec[l3:]).TOS()
			if tt.v6Inner {
				ds = IPv6(dec[l3:]).TrafficClass()
			}
			if ds != tt.wantDS {
				t.Fatalf("inner DS field %#x, want %#x", ds, tt.wantDS)
			}
			// Apart from the DS field (and its checksum), the frame is the
			// inner one.
			want := append([]byte(nil), inner[:m.Length]...)
			if tt.v6Inner {
				w := binary.BigEndian.Uint32(want[l3:])
				binary.BigEndian.PutUint32(want[l3:], w&^(0xff<<20)|uint32(tt.wantDS)<<20)
			} else {
				setIPv4DSAndDF(want, l3, tt.wantDS, true)
			}
			if !bytes.Equal(dec, want) {
				t.Fatalf("decapsulated frame\n got %x\nwant %x", dec, want)
			}
		})
	}
}

func TestEncapAllocatesNothing(t *testing.T) {
	p := NewParser()
	for _, s := range []frameSpec{
		{proto: ProtoTCP, flags: FlagACK, tags: 1},
		{v6: true, proto: ProtoUDP},
	} {
		for _, outer := range []Family{FamilyIPv4, FamilyIPv6} {
			orig := buildFrame(t, s)
			const headroom = 256
			buf := inUMEM(orig, headroom, 0)
			tun := tunnelFor(outer, 0)
			var m Meta
			var err error
			allocs := testing.AllocsPerRun(200, func() {
				if err = p.Decode(buf[headroom:], &m); err != nil {
					return
				}
				var f []byte
				if f, err = EncapIPIP(buf, headroom, &m, tun); err != nil {
					return
				}
				if EncapTooBig(f, &m, outer, 1500) {
					err = errors.New("too big")
					return
				}
				_, err = DecapIPIP(f)
			})
			if err != nil {
				t.Fatal(err)
			}
			if allocs != 0 {
				t.Errorf("%v outer %d: %v allocations per encap+decap, want 0", s, outer, allocs)
			}
		}
	}
}

func BenchmarkEncapIPIP(b *testing.B) {
	for _, k := range []struct {
		name  string
		spec  frameSpec
		outer Family
	}{
		{"ipv4-in-ipv4", frameSpec{proto: ProtoTCP, flags: FlagACK}, FamilyIPv4},
		{"ipv4-vlan-in-ipv4", frameSpec{proto: ProtoUDP, tags: 1}, FamilyIPv4},
		{"ipv6-in-ipv6", frameSpec{v6: true, proto: ProtoTCP, flags: FlagACK}, FamilyIPv6},
	} {
		b.Run(k.name, func(b *testing.B) {
			orig := buildFrame(b, k.spec)
			const headroom = 256
			buf := inUMEM(orig, headroom, 0)
			var m0 Meta
			if err := NewParser().Decode(buf[headroom:], &m0); err != nil {
				b.Fatal(err)
			}
			tun := tunnelFor(k.outer, 0)
			l3 := m0.L3Off
			b.ReportAllocs()
			for b.Loop() {
				m := m0
				f, err := EncapIPIP(buf, headroom, &m, tun)
				if err != nil {
					b.Fatal(err)
				}
				// Undo what the encapsulation moved: the link-layer
				// header and the bytes of the old one.
				copy(buf[headroom:headroom+l3], f[:l3])
			}
		})
	}
}

// FuzzEncap encapsulates whatever decodes, over both outer families and
// with any headroom, and decapsulates the result: never a panic, a failure
// changes nothing, and a success round-trips to the original packet with a
// valid outer header.
func FuzzEncap(f *testing.F) {
	for _, s := range frameKinds() {
		s.payload = payloadOf(5)
		f.Add(buildFrame(f, s), uint8(64), false, uint8(0))
		f.Add(buildFrame(f, s), uint8(20), true, uint8(3))
	}
	f.Add(buildFrame(f, frameSpec{proto: ProtoICMP}), uint8(19), false, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, headroom uint8, outer6 bool, ttl uint8) {
		// Whatever the bytes, decapsulation must not panic.
		raw := append([]byte(nil), data...)
		if dec, err := DecapIPIP(raw); err == nil && len(dec) < EthernetHeaderLen {
			t.Fatalf("DecapIPIP returned a %d-byte frame", len(dec))
		}

		var m Meta
		if err := NewParser().Decode(data, &m); err != nil {
			return
		}
		outer := FamilyIPv4
		if outer6 {
			outer = FamilyIPv6
		}
		hr := int(headroom % 64)
		buf := inUMEM(data, hr, 3)
		saved := append([]byte(nil), buf...)
		before := m
		frame, err := EncapIPIP(buf, hr, &m, tunnelFor(outer, ttl))
		if err != nil {
			if err != ErrNoHeadroom || hr >= EncapOverhead(before.Family(), outer) {
				t.Fatalf("EncapIPIP: %v (headroom %d)", err, hr)
			}
			if !bytes.Equal(buf, saved) || m != before {
				t.Fatalf("failed EncapIPIP changed something")
			}
			return
		}
		if outer == FamilyIPv4 && naiveFold(naiveSum(frame[m.L3Off:m.L3Off+20], 0)) != 0xffff {
			t.Fatalf("outer IPv4 checksum does not verify")
		}
		dec, err := DecapIPIP(frame)
		if err != nil {
			t.Fatalf("DecapIPIP after EncapIPIP: %v", err)
		}
		if !bytes.Equal(dec, data[:before.Length]) {
			t.Fatalf("round trip differs\n got %x\nwant %x", dec, data[:before.Length])
		}
	})
}

func TestNewErrorsAreDistinct(t *testing.T) {
	all := append(append([]error(nil), sentinels...), ErrAddressFamily, ErrNoHeadroom, ErrTooBig, ErrOptionSpace,
		ErrNotICMPError, ErrNoICMP, ErrShortBuffer, ErrBadMTU) // ErrBadChecksum is among sentinels
	for i, a := range all {
		for j, b := range all {
			if (i == j) != errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = %v", a, b, errors.Is(a, b))
			}
		}
	}
}
