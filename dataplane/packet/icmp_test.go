package packet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// icmpSpec describes an ICMP error frame for gopacket to build.
type icmpSpec struct {
	v6        bool
	tags      int
	src, dst  netip.Addr // the error message's addresses
	typ, code uint8
	rest      uint32 // the 4 bytes after the checksum (unused, MTU, pointer)
	quote     []byte // the quoted packet
}

func buildICMPError(tb testing.TB, s icmpSpec) []byte {
	tb.Helper()
	ipType := layers.EthernetTypeIPv4
	if s.v6 {
		ipType = layers.EthernetTypeIPv6
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(testSrcMAC[:]), DstMAC: net.HardwareAddr(testDstMAC[:]), EthernetType: ipType}
	ls := []gopacket.SerializableLayer{eth}
	switch s.tags {
	case 1:
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: outerVLAN, Type: ipType})
	case 2:
		eth.EthernetType = layers.EthernetTypeQinQ
		ls = append(ls,
			&layers.Dot1Q{VLANIdentifier: outerVLAN, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: innerVLAN, Type: ipType})
	}
	if s.v6 {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6, SrcIP: s.src.AsSlice(), DstIP: s.dst.AsSlice()}
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(s.typ, s.code)}
		if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
			tb.Fatal(err)
		}
		body := binary.BigEndian.AppendUint32(nil, s.rest)
		ls = append(ls, ip, icmp, gopacket.Payload(append(body, s.quote...)))
	} else {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: s.src.AsSlice(), DstIP: s.dst.AsSlice()}
		icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(s.typ, s.code), Id: uint16(s.rest >> 16), Seq: uint16(s.rest)}
		ls = append(ls, ip, icmp, gopacket.Payload(s.quote))
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		tb.Fatalf("serialize ICMP error: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ipPacket returns the IP packet of a frame buildFrame made.
func ipPacket(tb testing.TB, frame []byte) []byte {
	tb.Helper()
	var m Meta
	if err := NewParser().Decode(frame, &m); err != nil {
		tb.Fatalf("Decode: %v", err)
	}
	return frame[m.L3Off:m.Length]
}

// icmpChecksumOK verifies an ICMP or ICMPv6 checksum with the naive
// implementation.
func icmpChecksumOK(frame []byte, m *Meta) bool {
	icmp := frame[m.L4Off:m.Length]
	var sum uint64
	if m.IPv6 {
		sum = naiveSum(frame[m.L3Off+8:m.L3Off+40], 0) + uint64(len(icmp)) + ProtoICMPv6
	}
	return naiveFold(naiveSum(icmp, sum)) == 0xffff
}

func TestBuildFragNeeded(t *testing.T) {
	type tc struct {
		spec frameSpec
		opts bool // IPv4 options in the original
		mtu  int
	}
	var tests []tc
	for _, v6 := range []bool{false, true} {
		for tags := range 3 {
			for _, proto := range []uint8{ProtoTCP, ProtoUDP} {
				for _, n := range []int{0, 3, 1400} {
					mtu := 1480
					if v6 {
						mtu = 1280
					}
					tests = append(tests, tc{spec: frameSpec{v6: v6, tags: tags, proto: proto, sport: 40000, dport: 443, payload: payloadOf(n)}, mtu: mtu})
				}
			}
		}
		tests = append(tests, tc{spec: frameSpec{v6: v6, proto: map[bool]uint8{false: ProtoICMP, true: ProtoICMPv6}[v6], icmpID: 5, payload: payloadOf(1300)}, mtu: 1300})
	}
	tests = append(tests, tc{opts: true, mtu: 68}, tc{spec: frameSpec{proto: ProtoUDP}, mtu: 65535})

	p := NewParser()
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/opts=%v/mtu%d", tt.spec, tt.opts, tt.mtu), func(t *testing.T) {
			s := tt.spec.withDefaults()
			orig := buildFrame(t, s)
			if tt.opts {
				orig = ipv4WithOptions(t, []byte{1, 1, 7, 3, 4, 0, 0, 0})
			}
			var m Meta
			if err := p.Decode(orig, &m); err != nil {
				t.Fatal(err)
			}
			savedOrig := append([]byte(nil), orig...)
			out := bytes.Repeat([]byte{0xcc}, 2048)
			from := m.Dst // the VIP
			n, err := BuildFragNeeded(out, orig, &m, from, tt.mtu)
			if err != nil {
				t.Fatalf("BuildFragNeeded: %v", err)
			}
			if !bytes.Equal(orig, savedOrig) {
				t.Fatalf("BuildFragNeeded changed the original")
			}
			if !bytes.Equal(out[n:], bytes.Repeat([]byte{0xcc}, len(out)-n)) {
				t.Fatalf("BuildFragNeeded wrote past the %d bytes it reported", n)
			}
			msg := out[:n]
			l3 := m.L3Off
			ipLen := m.Length - l3
			if !bytes.Equal(msg[0:6], orig[6:12]) || !bytes.Equal(msg[6:12], orig[0:6]) || !bytes.Equal(msg[12:l3], orig[12:l3]) {
				t.Fatalf("link-layer header %x, want MACs swapped and tags of %x", msg[:l3], orig[:l3])
			}

			pkt := gopacket.NewPacket(msg, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
			if el := pkt.ErrorLayer(); el != nil {
				t.Fatalf("gopacket cannot decode the message: %v", el.Error())
			}
			if s.tags > 0 {
				d := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
				if d.VLANIdentifier != outerVLAN {
					t.Fatalf("VLAN %d, want %d", d.VLANIdentifier, outerVLAN)
				}
			}
			var quote []byte
			if !m.IPv6 {
				ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				wantTOS := IPv4(orig[l3:]).TOS()&0x1e | 0xc0
				if ip.Version != 4 || ip.IHL != 5 || ip.TOS != wantTOS || ip.TTL != 64 || ip.Protocol != layers.IPProtocolICMPv4 ||
					ip.Flags != layers.IPv4DontFragment || ip.FragOffset != 0 || ip.Id != 0 ||
					!ip.SrcIP.Equal(from.AsSlice()) || !ip.DstIP.Equal(m.Src.AsSlice()) || int(ip.Length) != n-l3 {
					t.Fatalf("IPv4 header %+v", ip)
				}
				if naiveFold(naiveSum(ip.Contents, 0)) != 0xffff {
					t.Fatalf("IPv4 header checksum does not verify")
				}
				icmp := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
				if icmp.TypeCode != layers.CreateICMPv4TypeCode(3, 4) || icmp.Id != 0 || int(icmp.Seq) != tt.mtu {
					t.Fatalf("ICMP %v id %d next-hop MTU %d, want 3/4 MTU %d", icmp.TypeCode, icmp.Id, icmp.Seq, tt.mtu)
				}
				if naiveFold(naiveSum(msg[l3+20:], 0)) != 0xffff {
					t.Fatalf("ICMP checksum does not verify")
				}
				quote = icmp.Payload
				hl := IPv4(orig[l3:]).HeaderLength()
				if want := orig[l3 : l3+min(ipLen, hl+8)]; !bytes.Equal(quote, want) {
					t.Fatalf("quote %x, want header + 8 bytes %x", quote, want)
				}
			} else {
				ip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
				if ip.HopLimit != 64 || ip.NextHeader != layers.IPProtocolICMPv6 || ip.TrafficClass != 0 || ip.FlowLabel != 0 ||
					!ip.SrcIP.Equal(from.AsSlice()) || !ip.DstIP.Equal(m.Src.AsSlice()) || int(ip.Length) != n-l3-40 {
					t.Fatalf("IPv6 header %+v", ip)
				}
				if n-l3 > 1280 {
					t.Fatalf("ICMPv6 error packet of %d bytes exceeds 1280", n-l3)
				}
				icmp := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
				if icmp.TypeCode != layers.CreateICMPv6TypeCode(2, 0) {
					t.Fatalf("ICMPv6 %v, want packet too big", icmp.TypeCode)
				}
				pseudo := naiveSum(from.AsSlice(), 0)
				pseudo = naiveSum(m.Src.AsSlice(), pseudo) + uint64(n-l3-40) + 58
				if naiveFold(naiveSum(msg[l3+40:], pseudo)) != 0xffff {
					t.Fatalf("ICMPv6 checksum does not verify")
				}
				if got := binary.BigEndian.Uint32(icmp.Payload[0:4]); int(got) != tt.mtu {
					t.Fatalf("MTU %d, want %d", got, tt.mtu)
				}
				quote = icmp.Payload[4:]
				if want := orig[l3 : l3+min(ipLen, 1280-48)]; !bytes.Equal(quote, want) {
					t.Fatalf("quote of %d bytes, want the first %d of the original", len(quote), len(want))
				}
			}

			// The message parses back to the original flow.
			var mm Meta
			if err := p.Decode(msg, &mm); err != nil {
				t.Fatalf("Decode of the message: %v", err)
			}
			if mm.Src != from || mm.Dst != m.Src || !icmpChecksumOK(msg, &mm) {
				t.Fatalf("decoded message %+v", mm)
			}
			emb, err := ParseICMPError(msg, &mm)
			if err != nil {
				t.Fatalf("ParseICMPError of the message: %v", err)
			}
			if emb.Src != m.Src || emb.Dst != m.Dst || emb.Proto != m.Proto || emb.SrcPort != m.SrcPort ||
				emb.DstPort != m.DstPort || int(emb.MTU) != tt.mtu || emb.IPv6 != m.IPv6 {
				t.Fatalf("quoted flow %+v, want that of %+v", emb, m)
			}
		})
	}
}

func TestBuildFragNeededShortOut(t *testing.T) {
	p := NewParser()
	orig := buildFrame(t, frameSpec{v6: true, proto: ProtoTCP, payload: payloadOf(1400)})
	var m Meta
	if err := p.Decode(orig, &m); err != nil {
		t.Fatal(err)
	}
	from := m.Dst
	// Room for the headers and 100 bytes of quote: the quote shrinks.
	out := make([]byte, 14+40+8+100)
	n, err := BuildFragNeeded(out, orig, &m, from, 1280)
	if err != nil || n != len(out) {
		t.Fatalf("BuildFragNeeded = %d, %v; want %d, nil", n, err, len(out))
	}
	var mm Meta
	if err := p.Decode(out[:n], &mm); err != nil || !icmpChecksumOK(out, &mm) {
		t.Fatalf("short message: %v, checksum ok %v", err, icmpChecksumOK(out, &mm))
	}
	if !bytes.Equal(out[14+48:], orig[14:14+100]) {
		t.Fatalf("quote is not the start of the original")
	}
	// Less than the IPv6 header and 8 bytes: refused.
	for _, size := range []int{14 + 48 + 47, 10, 0} {
		if _, err := BuildFragNeeded(make([]byte, size), orig, &m, from, 1280); err != ErrShortBuffer {
			t.Errorf("out of %d bytes: %v, want ErrShortBuffer", size, err)
		}
	}
	orig4 := buildFrame(t, frameSpec{proto: ProtoTCP, payload: payloadOf(100)})
	if err := p.Decode(orig4, &m); err != nil {
		t.Fatal(err)
	}
	if n, err := BuildFragNeeded(make([]byte, 14+28+28), orig4, &m, m.Dst, 1400); err != nil || n != 70 {
		t.Errorf("exact IPv4 out: %d, %v", n, err)
	}
	if _, err := BuildFragNeeded(make([]byte, 14+28+27), orig4, &m, m.Dst, 1400); err != ErrShortBuffer {
		t.Errorf("IPv4 out one short: %v, want ErrShortBuffer", err)
	}
}

func TestBuildFragNeededRefusals(t *testing.T) {
	v4, v6 := netip.MustParseAddr("198.18.1.100"), netip.MustParseAddr("fd00::100")
	tests := []struct {
		name  string
		frame []byte
		from  netip.Addr
		mtu   int
		meta  func(*Meta)
		want  error
	}{
		{"about an ICMP error", buildFrame(t, frameSpec{proto: ProtoICMP, icmpType: layers.ICMPv4TypeDestinationUnreachable, payload: payloadOf(28)}), v4, 1400, nil, ErrNoICMP},
		{"about a time exceeded", buildFrame(t, frameSpec{proto: ProtoICMP, icmpType: layers.ICMPv4TypeTimeExceeded, payload: payloadOf(28)}), v4, 1400, nil, ErrNoICMP},
		{"about an ICMPv6 error", buildFrame(t, frameSpec{v6: true, proto: ProtoICMPv6, icmpType: layers.ICMPv6TypePacketTooBig, payload: payloadOf(48)}), v6, 1280, nil, ErrNoICMP},
		{"about an ICMPv6 redirect", buildFrame(t, frameSpec{v6: true, proto: ProtoICMPv6, icmpType: layers.ICMPv6TypeRedirect, payload: payloadOf(48)}), v6, 1280, nil, ErrNoICMP},
		{"multicast source", buildFrame(t, frameSpec{proto: ProtoUDP, src: netip.MustParseAddr("224.0.0.9"), dst: v4}), v4, 1400, nil, ErrNoICMP},
		{"unspecified source", buildFrame(t, frameSpec{v6: true, proto: ProtoUDP, src: netip.IPv6Unspecified(), dst: v6}), v6, 1280, nil, ErrNoICMP},
		{"loopback source", buildFrame(t, frameSpec{proto: ProtoUDP, src: netip.MustParseAddr("127.0.0.1"), dst: v4}), v4, 1400, nil, ErrNoICMP},
		{"broadcast destination", buildFrame(t, frameSpec{proto: ProtoUDP, src: netip.MustParseAddr("198.18.0.1"), dst: netip.MustParseAddr("255.255.255.255")}), v4, 1400, nil, ErrNoICMP},
		{"multicast destination", buildFrame(t, frameSpec{proto: ProtoUDP, src: netip.MustParseAddr("198.18.0.1"), dst: netip.MustParseAddr("239.1.1.1")}), v4, 1400, nil, ErrNoICMP},
		{"IPv4 MTU too small", buildFrame(t, frameSpec{proto: ProtoTCP}), v4, 67, nil, ErrBadMTU},
		{"IPv4 MTU too large", buildFrame(t, frameSpec{proto: ProtoTCP}), v4, 65536, nil, ErrBadMTU},
		{"IPv6 MTU below 1280", buildFrame(t, frameSpec{v6: true, proto: ProtoTCP}), v6, 1279, nil, ErrBadMTU},
		{"IPv6 source for IPv4", buildFrame(t, frameSpec{proto: ProtoTCP}), v6, 1400, nil, ErrAddressFamily},
		{"IPv4 source for IPv6", buildFrame(t, frameSpec{v6: true, proto: ProtoTCP}), v4, 1400, nil, ErrAddressFamily},
		{"no source", buildFrame(t, frameSpec{proto: ProtoTCP}), netip.Addr{}, 1400, nil, ErrAddressFamily},
		{"Meta past the frame", buildFrame(t, frameSpec{proto: ProtoTCP}), v4, 1400, func(m *Meta) { m.Length = 9999 }, ErrMalformed},
	}
	p := NewParser()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Meta
			if err := p.Decode(tt.frame, &m); err != nil {
				t.Fatal(err)
			}
			if tt.meta != nil {
				tt.meta(&m)
			}
			out := bytes.Repeat([]byte{0xcc}, 256)
			n, err := BuildFragNeeded(out, tt.frame, &m, tt.from, tt.mtu)
			if err != tt.want || n != 0 {
				t.Fatalf("BuildFragNeeded = %d, %v; want %v", n, err, tt.want)
			}
			if !bytes.Equal(out, bytes.Repeat([]byte{0xcc}, 256)) {
				t.Fatalf("failed BuildFragNeeded wrote to out")
			}
		})
	}
	// Echo requests are queries, not errors: they may be answered.
	for _, s := range []frameSpec{{proto: ProtoICMP, payload: payloadOf(1400)}, {v6: true, proto: ProtoICMPv6, payload: payloadOf(1400)}} {
		f := buildFrame(t, s)
		var m Meta
		if err := p.Decode(f, &m); err != nil {
			t.Fatal(err)
		}
		if _, err := BuildFragNeeded(make([]byte, 2048), f, &m, m.Dst, 1280); err != nil {
			t.Errorf("%v: %v", s, err)
		}
	}
}

func TestParseICMPError(t *testing.T) {
	router4, client4 := netip.MustParseAddr("198.18.9.1"), netip.MustParseAddr("198.18.0.1")
	router6, client6 := netip.MustParseAddr("fd00::9:1"), netip.MustParseAddr("fd00::1")
	tcp4 := ipPacket(t, buildFrame(t, frameSpec{proto: ProtoTCP, sport: 40000, dport: 80, payload: payloadOf(50)}))
	udp4 := ipPacket(t, buildFrame(t, frameSpec{proto: ProtoUDP, sport: 5353, dport: 53, payload: payloadOf(50)}))
	echo4 := ipPacket(t, buildFrame(t, frameSpec{proto: ProtoICMP, icmpID: 0x77}))
	tcp6 := ipPacket(t, buildFrame(t, frameSpec{v6: true, proto: ProtoTCP, sport: 40000, dport: 80, payload: payloadOf(50)}))
	udp6 := ipPacket(t, buildFrame(t, frameSpec{v6: true, proto: ProtoUDP, sport: 5353, dport: 53, payload: payloadOf(50)}))
	echo6 := ipPacket(t, buildFrame(t, frameSpec{v6: true, proto: ProtoICMPv6, icmpID: 0x66}))
	opts4 := ipPacket(t, ipv4WithOptions(t, []byte{1, 1, 7, 3, 4, 0, 0, 0}))
	frag4 := func() []byte { // a non-first fragment's header
		q := append([]byte(nil), tcp4...)
		binary.BigEndian.PutUint16(q[6:8], 0x0010)
		return q
	}()
	mf4 := func() []byte { // a first fragment: offset 0, MF
		q := append([]byte(nil), tcp4...)
		binary.BigEndian.PutUint16(q[6:8], 0x2000)
		return q
	}()
	hbh6 := func() []byte {
		q := append([]byte(nil), tcp6...)
		q[6] = 0
		return q
	}()

	type want struct {
		proto      uint8
		sport, dst uint16
		mtu        uint32
	}
	tests := []struct {
		name    string
		spec    icmpSpec
		want    want
		wantErr error
	}{
		{"port unreachable, 8 bytes", icmpSpec{typ: 3, code: 3, quote: udp4[:28]}, want{ProtoUDP, 5353, 53, 0}, nil},
		{"frag needed, 8 bytes", icmpSpec{typ: 3, code: 4, rest: 1400, quote: tcp4[:28]}, want{ProtoTCP, 40000, 80, 1400}, nil},
		{"frag needed, whole", icmpSpec{typ: 3, code: 4, rest: 576, quote: tcp4}, want{ProtoTCP, 40000, 80, 576}, nil},
		{"time exceeded", icmpSpec{typ: 11, quote: tcp4[:40]}, want{ProtoTCP, 40000, 80, 0}, nil},
		{"time exceeded about echo", icmpSpec{typ: 11, quote: echo4}, want{ProtoICMP, 0x77, 0x77, 0}, nil},
		{"parameter problem", icmpSpec{typ: 12, rest: 0x08000000, quote: udp4}, want{ProtoUDP, 5353, 53, 0}, nil},
		{"source quench", icmpSpec{typ: 4, quote: udp4[:28]}, want{ProtoUDP, 5353, 53, 0}, nil},
		{"quoted IPv4 options", icmpSpec{typ: 3, code: 1, quote: opts4[:28+8]}, want{ProtoTCP, 1, 2, 0}, nil},
		{"quoted first fragment", icmpSpec{typ: 3, code: 3, quote: mf4[:28]}, want{ProtoTCP, 40000, 80, 0}, nil},
		{"ports only", icmpSpec{typ: 3, code: 3, quote: udp4[:24]}, want{ProtoUDP, 5353, 53, 0}, nil},
		{"ports cut", icmpSpec{typ: 3, code: 3, quote: udp4[:23]}, want{}, ErrTruncated},
		{"header cut", icmpSpec{typ: 3, code: 3, quote: udp4[:19]}, want{}, ErrTruncated},
		{"options cut", icmpSpec{typ: 3, code: 3, quote: opts4[:24]}, want{}, ErrTruncated},
		{"no quote", icmpSpec{typ: 3, code: 3}, want{}, ErrTruncated},
		{"quoted fragment", icmpSpec{typ: 3, code: 3, quote: frag4[:28]}, want{}, ErrFragment},
		{"quoted IPv6 in ICMPv4", icmpSpec{typ: 3, code: 3, quote: tcp6[:48]}, want{}, ErrMalformed},
		{"echo request", icmpSpec{typ: 8, quote: udp4}, want{}, ErrNotICMPError},
		{"redirect", icmpSpec{typ: 5, quote: udp4}, want{}, ErrNotICMPError},

		{"v6 unreachable", icmpSpec{v6: true, typ: 1, code: 4, quote: udp6}, want{ProtoUDP, 5353, 53, 0}, nil},
		{"v6 packet too big", icmpSpec{v6: true, typ: 2, rest: 1280, quote: tcp6}, want{ProtoTCP, 40000, 80, 1280}, nil},
		{"v6 time exceeded", icmpSpec{v6: true, typ: 3, quote: tcp6[:48]}, want{ProtoTCP, 40000, 80, 0}, nil},
		{"v6 parameter problem", icmpSpec{v6: true, typ: 4, rest: 6, quote: udp6}, want{ProtoUDP, 5353, 53, 0}, nil},
		{"v6 time exceeded about echo", icmpSpec{v6: true, typ: 3, quote: echo6}, want{ProtoICMPv6, 0x66, 0x66, 0}, nil},
		{"v6 header cut", icmpSpec{v6: true, typ: 1, quote: tcp6[:39]}, want{}, ErrTruncated},
		{"v6 extension header", icmpSpec{v6: true, typ: 1, quote: hbh6}, want{}, ErrUnsupported},
		{"v6 quoted IPv4", icmpSpec{v6: true, typ: 1, quote: tcp4}, want{}, ErrMalformed},
		{"v6 echo reply", icmpSpec{v6: true, typ: 129, quote: udp6}, want{}, ErrNotICMPError},
		{"v6 neighbour solicitation", icmpSpec{v6: true, typ: 135, quote: udp6}, want{}, ErrNotICMPError},
	}
	p := NewParser()
	for _, tt := range tests {
		for tags := range 3 {
			t.Run(fmt.Sprintf("%s/tags%d", tt.name, tags), func(t *testing.T) {
				s := tt.spec
				s.tags = tags
				s.src, s.dst = router4, client4
				qsrc, qdst := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.1.100")
				if s.v6 {
					s.src, s.dst = router6, client6
					qsrc, qdst = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::100")
				}
				frame := buildICMPError(t, s)
				var m Meta
				if err := p.Decode(frame, &m); err != nil {
					t.Fatalf("Decode: %v", err)
				}
				saved := append([]byte(nil), frame...)
				emb, err := ParseICMPError(frame, &m)
				if !bytes.Equal(frame, saved) {
					t.Fatalf("ParseICMPError changed the frame")
				}
				if err != tt.wantErr {
					t.Fatalf("ParseICMPError = %v, want %v", err, tt.wantErr)
				}
				if err != nil {
					return
				}
				l3 := 14 + 4*tags
				ipHdr := 20
				if s.v6 {
					ipHdr = 40
				}
				wantEmb := Embedded{IPv6: s.v6, Proto: tt.want.proto, Src: qsrc, Dst: qdst, SrcPort: tt.want.sport,
					DstPort: tt.want.dst, Type: s.typ, Code: s.code, MTU: tt.want.mtu,
					L3Off: l3 + ipHdr + 8, End: len(frame)}
				if tt.name == "quoted IPv4 options" {
					wantEmb.L4Off = wantEmb.L3Off + 28
				} else {
					wantEmb.L4Off = wantEmb.L3Off + ipHdr
				}
				if emb != wantEmb {
					t.Fatalf("Embedded\n got %+v\nwant %+v", emb, wantEmb)
				}
			})
		}
	}

	t.Run("bad checksum", func(t *testing.T) {
		for _, v6 := range []bool{false, true} {
			s := icmpSpec{v6: v6, typ: 3, code: 3, src: router4, dst: client4, quote: udp4}
			if v6 {
				s = icmpSpec{v6: v6, typ: 1, src: router6, dst: client6, quote: udp6}
			}
			frame := buildICMPError(t, s)
			var m Meta
			if err := p.Decode(frame, &m); err != nil {
				t.Fatal(err)
			}
			frame[len(frame)-1] ^= 0x40
			if _, err := ParseICMPError(frame, &m); err != ErrBadChecksum {
				t.Errorf("v6=%v: %v, want ErrBadChecksum", v6, err)
			}
		}
	})
	t.Run("not ICMP", func(t *testing.T) {
		frame := buildFrame(t, frameSpec{proto: ProtoTCP})
		var m Meta
		if err := p.Decode(frame, &m); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseICMPError(frame, &m); err != ErrNotICMPError {
			t.Errorf("TCP: %v, want ErrNotICMPError", err)
		}
		m.Proto = ProtoICMPv6 // on an IPv4 Meta
		if _, err := ParseICMPError(frame, &m); err != ErrNotICMPError {
			t.Errorf("ICMPv6 in IPv4: %v, want ErrNotICMPError", err)
		}
	})
}

// TestParseICMPErrorTunneled: a router between director and real server
// reports that an encapsulated packet is too big; Inner finds the client's
// flow in the quote.
func TestParseICMPErrorTunneled(t *testing.T) {
	p := NewParser()
	for _, tc := range []struct {
		inner frameSpec
		outer Family
	}{
		{frameSpec{proto: ProtoTCP, sport: 40000, dport: 80, payload: payloadOf(1400)}, FamilyIPv4},
		{frameSpec{v6: true, proto: ProtoUDP, sport: 40000, dport: 53, payload: payloadOf(1400)}, FamilyIPv6},
		{frameSpec{v6: true, proto: ProtoTCP, sport: 40000, dport: 80, payload: payloadOf(100)}, FamilyIPv4},
	} {
		s := tc.inner.withDefaults()
		orig := buildFrame(t, s)
		var m Meta
		if err := p.Decode(orig, &m); err != nil {
			t.Fatal(err)
		}
		enc, err := EncapIPIP(inUMEM(orig, 64, 0), 64, &m, tunnelFor(tc.outer, 0))
		if err != nil {
			t.Fatal(err)
		}
		// The router quotes what it can: 576 bytes of IPv4 error, the
		// 1280 of IPv6.
		var spec icmpSpec
		tunneled := enc[m.L3Off:m.Length]
		if tc.outer == FamilyIPv4 {
			spec = icmpSpec{typ: 3, code: 4, rest: 1400, src: netip.MustParseAddr("198.18.7.1"), dst: tunSrc4, quote: tunneled[:min(len(tunneled), 576-28)]}
		} else {
			spec = icmpSpec{v6: true, typ: 2, rest: 1400, src: netip.MustParseAddr("fd00::7:1"), dst: tunSrc6, quote: tunneled[:min(len(tunneled), 1280-48)]}
		}
		frame := buildICMPError(t, spec)
		var em Meta
		if err := p.Decode(frame, &em); err != nil {
			t.Fatal(err)
		}
		outerEmb, err := ParseICMPError(frame, &em)
		if err != nil {
			t.Fatalf("ParseICMPError: %v", err)
		}
		if outerEmb.Proto != m.Proto || outerEmb.Src != m.Src || outerEmb.Dst != m.Dst {
			t.Fatalf("outer quote %+v, want the tunnel's %+v", outerEmb, m)
		}
		inner, err := outerEmb.Inner(frame)
		if err != nil {
			t.Fatalf("Inner: %v", err)
		}
		if inner.Src != s.src || inner.Dst != s.dst || inner.SrcPort != s.sport || inner.DstPort != s.dport ||
			inner.Proto != s.proto || inner.MTU != 1400 || inner.IPv6 != s.v6 {
			t.Fatalf("inner quote %+v, want the client's flow %+v", inner, s)
		}
		if _, err := inner.Inner(frame); err != ErrUnsupported {
			t.Fatalf("Inner of a non-tunnel quote: %v, want ErrUnsupported", err)
		}
		// An RFC 792 router quotes 8 bytes after the outer header: too
		// little to know the flow.
		spec.quote = tunneled[:EncapOverhead(0, tc.outer)+8]
		frame = buildICMPError(t, spec)
		if err := p.Decode(frame, &em); err != nil {
			t.Fatal(err)
		}
		if outerEmb, err = ParseICMPError(frame, &em); err != nil {
			t.Fatal(err)
		}
		if _, err := outerEmb.Inner(frame); err != ErrTruncated {
			t.Fatalf("Inner of an 8-byte quote: %v, want ErrTruncated", err)
		}
	}
}

// TestTranslateICMPError plays the four cases of a NAT and a FullNAT
// director: the original packet crosses the director (which translates it
// with DNAT/SNAT), an ICMP error about it comes back, and the translated
// error must equal the one the far side would have got without the
// director: built from scratch by gopacket quoting the untranslated packet.
func TestTranslateICMPError(t *testing.T) {
	type addrs struct{ client, vip, rip, lip, router netip.Addr }
	fam := map[bool]addrs{
		false: {netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.1.100"), netip.MustParseAddr("198.18.2.7"),
			netip.MustParseAddr("198.18.3.1"), netip.MustParseAddr("198.18.9.9")},
		true: {netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::100"), netip.MustParseAddr("fd00::2:7"),
			netip.MustParseAddr("fd00::3:1"), netip.MustParseAddr("fd00::9:9")},
	}
	const cport, vport, rport, lport = 40000, 80, 8080, 61000
	type scenario struct {
		name string
		// the packet as its sender sent it, and as the director forwarded it
		sent func(a addrs) (src, dst netip.AddrPort)
		fwd  func(a addrs) (src, dst netip.AddrPort)
		// the error as it reaches the director, and as it must leave
		errIn  func(a addrs) (src, dst netip.Addr)
		errOut func(a addrs) (src, dst netip.Addr)
		rw     func(a addrs) ICMPRewrite
	}
	ap := netip.AddrPortFrom
	scenarios := []scenario{
		{
			name:   "NAT, error from the real server's side",
			sent:   func(a addrs) (netip.AddrPort, netip.AddrPort) { return ap(a.client, cport), ap(a.vip, vport) },
			fwd:    func(a addrs) (netip.AddrPort, netip.AddrPort) { return ap(a.client, cport), ap(a.rip, rport) },
			errIn:  func(a addrs) (netip.Addr, netip.Addr) { return a.router, a.client },
			errOut: func(a addrs) (netip.Addr, netip.Addr) { return a.vip, a.client },
			rw:     func(a addrs) ICMPRewrite { return ICMPRewrite{OuterSrc: a.vip, EmbDst: ap(a.vip, vport)} },
		},
		{
			name:   "NAT, error from the client's side",
			sent:   func(a addrs) (netip.AddrPort, netip.AddrPort) { return ap(a.rip, rport), ap(a.client, cport) },
			fwd:    func(a addrs) (netip.AddrPort, netip.AddrPort) { return ap(a.vip, vport), ap(a.client, cport) },
			errIn:  func(a addrs) (netip.Addr, netip.Addr) { return a.router, a.vip },
			errOut: func(a addrs) (netip.Addr, netip.Addr) { return a.router, a.rip },
			rw:     func(a addrs) ICMPRewrite { return ICMPRewrite{OuterDst: a.rip, EmbSrc: ap(a.rip, rport)} },
		},
		{
			name:   "FullNAT, error from the real server's side",
			sent:   func(a addrs) (netip.AddrPort, netip.AddrPort) { return ap(a.client, cport), ap(a.vip, vport) },
			fwd:    func(a addrs) (netip.AddrPort, netip.AddrPort) { return ap(a.lip, lport), ap(a.rip, rport) },
			errIn:  func(a addrs) (netip.Addr, netip.Addr) { return a.router, a.lip },
			errOut: func(a addrs) (netip.Addr, netip.Addr) { return a.vip, a.client },
			rw: func(a addrs) ICMPRewrite {
				return ICMPRewrite{OuterSrc: a.vip, OuterDst: a.client, EmbSrc: ap(a.client, cport), EmbDst: ap(a.vip, vport)}
			},
		},
		{
			name:   "FullNAT, error from the client's side",
			sent:   func(a addrs) (netip.AddrPort, netip.AddrPort) { return ap(a.rip, rport), ap(a.lip, lport) },
			fwd:    func(a addrs) (netip.AddrPort, netip.AddrPort) { return ap(a.vip, vport), ap(a.client, cport) },
			errIn:  func(a addrs) (netip.Addr, netip.Addr) { return a.router, a.vip },
			errOut: func(a addrs) (netip.Addr, netip.Addr) { return a.lip, a.rip },
			rw: func(a addrs) ICMPRewrite {
				return ICMPRewrite{OuterSrc: a.lip, OuterDst: a.rip, EmbSrc: ap(a.rip, rport), EmbDst: ap(a.lip, lport)}
			},
		},
	}
	p := NewParser()
	for _, sc := range scenarios {
		for _, v6 := range []bool{false, true} {
			for _, proto := range []uint8{ProtoTCP, ProtoUDP} {
				for _, variant := range []string{"", "zeroUDP", "partial"} {
					zeroUDP, partial := variant == "zeroUDP", variant == "partial"
					if zeroUDP && (proto != ProtoUDP || v6) {
						continue
					}
					// How much of the packet the error quotes: 8 bytes of L4
					// (RFC 792), the TCP checksum and a little payload, all.
					for _, quoteL4 := range []int{8, 20, -1} {
						name := fmt.Sprintf("%s/v6=%v/proto%d/%s/quote%d", sc.name, v6, proto, variant, quoteL4)
						t.Run(name, func(t *testing.T) {
							a := fam[v6]
							src, dst := sc.sent(a)
							spec := frameSpec{v6: v6, proto: proto, src: src.Addr(), dst: dst.Addr(), sport: src.Port(),
								dport: dst.Port(), flags: FlagACK, payload: payloadOf(40), zeroUDP: zeroUDP}
							sent := buildFrame(t, spec)
							var m Meta
							if err := p.Decode(sent, &m); err != nil {
								t.Fatal(err)
							}
							complete := bytes.Clone(sent)
							if partial {
								// Its sender left the checksum to the NIC.
								makePartial(t, sent, &m)
							}
							sentIP := append([]byte(nil), sent[m.L3Off:m.Length]...)
							// The director forwards it translated.
							sent = complete
							fsrc, fdst := sc.fwd(a)
							if err := DNAT(sent, &m, fdst.Addr(), fdst.Port()); err != nil {
								t.Fatal(err)
							}
							if err := SNAT(sent, &m, fsrc.Addr(), fsrc.Port()); err != nil {
								t.Fatal(err)
							}
							if partial {
								// A router quotes it as it forwarded it: still
								// partial, for the addresses it then had.
								makePartial(t, sent, &m)
							}
							fwdIP := sent[m.L3Off:m.Length]
							qlen := len(fwdIP)
							if quoteL4 >= 0 {
								qlen = m.L4Off - m.L3Off + quoteL4
							}
							typ, code, rest := uint8(3), uint8(4), uint32(1400)
							if v6 {
								typ, code, rest = 2, 0, 1280
							}
							eSrc, eDst := sc.errIn(a)
							frame := buildICMPError(t, icmpSpec{v6: v6, tags: 1, src: eSrc, dst: eDst, typ: typ, code: code, rest: rest, quote: fwdIP[:qlen]})
							oSrc, oDst := sc.errOut(a)
							want := buildICMPError(t, icmpSpec{v6: v6, tags: 1, src: oSrc, dst: oDst, typ: typ, code: code, rest: rest, quote: sentIP[:qlen]})

							var em Meta
							if err := p.Decode(frame, &em); err != nil {
								t.Fatal(err)
							}
							emb, err := ParseICMPError(frame, &em)
							if err != nil {
								t.Fatalf("ParseICMPError: %v", err)
							}
							if emb.Src != fsrc.Addr() || emb.Dst != fdst.Addr() || emb.SrcPort != fsrc.Port() || emb.DstPort != fdst.Port() {
								t.Fatalf("quoted flow %+v, want %v -> %v", emb, fsrc, fdst)
							}
							if err := TranslateICMPError(frame, &em, &emb, sc.rw(a)); err != nil {
								t.Fatalf("TranslateICMPError: %v", err)
							}
							if !bytes.Equal(frame, want) {
								t.Fatalf("translated error differs from one built from scratch\n got %x\nwant %x", frame, want)
							}
							if em.Src != oSrc || em.Dst != oDst || emb.Src != src.Addr() || emb.Dst != dst.Addr() ||
								emb.SrcPort != src.Port() || emb.DstPort != dst.Port() {
								t.Fatalf("Meta %+v / Embedded %+v do not follow the rewrite", em, emb)
							}
							// Independent checks: checksums from scratch, and a fresh
							// parse agrees with the updated values.
							if !icmpChecksumOK(frame, &em) {
								t.Fatalf("ICMP checksum does not verify")
							}
							if !v6 && naiveFold(naiveSum(frame[em.L3Off:em.L3Off+20], 0)) != 0xffff {
								t.Fatalf("outer IPv4 checksum does not verify")
							}
							if !v6 && naiveFold(naiveSum(frame[emb.L3Off:emb.L4Off], 0)) != 0xffff {
								t.Fatalf("quoted IPv4 checksum does not verify")
							}
							var again Meta
							if err := p.Decode(frame, &again); err != nil || again != em {
								t.Fatalf("re-Decode: %v %+v, want %+v", err, again, em)
							}
							emb2, err := ParseICMPError(frame, &again)
							if err != nil || emb2 != emb {
								t.Fatalf("re-parse: %v %+v, want %+v", err, emb2, emb)
							}
						})
					}
				}
			}
		}
	}
}

func TestTranslateICMPErrorRefusals(t *testing.T) {
	p := NewParser()
	udp4 := ipPacket(t, buildFrame(t, frameSpec{proto: ProtoUDP, sport: 1, dport: 2}))
	frame := buildICMPError(t, icmpSpec{typ: 3, code: 3, src: netip.MustParseAddr("198.18.9.1"), dst: netip.MustParseAddr("198.18.0.1"), quote: udp4})
	var m Meta
	if err := p.Decode(frame, &m); err != nil {
		t.Fatal(err)
	}
	emb, err := ParseICMPError(frame, &m)
	if err != nil {
		t.Fatal(err)
	}
	v4, v6 := netip.MustParseAddr("198.18.4.4"), netip.MustParseAddr("fd00::4")
	tests := []struct {
		name string
		rw   ICMPRewrite
		emb  func(*Embedded)
		meta func(*Meta)
		want error
	}{
		{"IPv6 outer source", ICMPRewrite{OuterSrc: v6}, nil, nil, ErrAddressFamily},
		{"IPv6 quoted destination", ICMPRewrite{OuterSrc: v4, EmbDst: netip.AddrPortFrom(v6, 1)}, nil, nil, ErrAddressFamily},
		{"mapped quoted source", ICMPRewrite{EmbSrc: netip.AddrPortFrom(netip.MustParseAddr("::ffff:1.2.3.4"), 1)}, nil, nil, ErrAddressFamily},
		{"Embedded of another frame", ICMPRewrite{OuterSrc: v4}, func(e *Embedded) { e.L3Off += 4 }, nil, ErrMalformed},
		{"Embedded past the frame", ICMPRewrite{OuterSrc: v4}, func(e *Embedded) { e.End += 4 }, nil, ErrMalformed},
		{"Embedded L4 offset wrong", ICMPRewrite{OuterSrc: v4}, func(e *Embedded) { e.L4Off += 4 }, nil, ErrMalformed},
		{"Embedded family wrong", ICMPRewrite{OuterSrc: v4}, func(e *Embedded) { e.IPv6 = true }, nil, ErrMalformed},
		{"not ICMP", ICMPRewrite{OuterSrc: v4}, nil, func(m *Meta) { m.Proto = ProtoTCP }, ErrNotICMPError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := append([]byte(nil), frame...)
			mm, e := m, emb
			if tt.emb != nil {
				tt.emb(&e)
			}
			if tt.meta != nil {
				tt.meta(&mm)
			}
			m0, e0 := mm, e
			if err := TranslateICMPError(f, &mm, &e, tt.rw); err != tt.want {
				t.Fatalf("TranslateICMPError = %v, want %v", err, tt.want)
			}
			if !bytes.Equal(f, frame) || mm != m0 || e != e0 {
				t.Fatalf("failed TranslateICMPError changed something")
			}
		})
	}
	// A rewrite to the same values changes no byte.
	f := append([]byte(nil), frame...)
	mm, e := m, emb
	rw := ICMPRewrite{OuterSrc: m.Src, OuterDst: m.Dst, EmbSrc: netip.AddrPortFrom(emb.Src, emb.SrcPort), EmbDst: netip.AddrPortFrom(emb.Dst, emb.DstPort)}
	if err := TranslateICMPError(f, &mm, &e, rw); err != nil || !bytes.Equal(f, frame) {
		t.Fatalf("identity rewrite: %v, frame changed %v", err, !bytes.Equal(f, frame))
	}
}

func TestICMPAllocatesNothing(t *testing.T) {
	p := NewParser()
	for _, v6 := range []bool{false, true} {
		orig := buildFrame(t, frameSpec{v6: v6, proto: ProtoTCP, flags: FlagACK, tags: 1, payload: payloadOf(1400)})
		out := make([]byte, 2048)
		from, rip := netip.MustParseAddr("198.18.1.100"), netip.AddrPortFrom(netip.MustParseAddr("198.18.2.2"), 8080)
		if v6 {
			from, rip = netip.MustParseAddr("fd00::100"), netip.AddrPortFrom(netip.MustParseAddr("fd00::2:2"), 8080)
		}
		var m, em Meta
		var err error
		allocs := testing.AllocsPerRun(200, func() {
			if err = p.Decode(orig, &m); err != nil {
				return
			}
			var n int
			if n, err = BuildFragNeeded(out, orig, &m, from, 1280); err != nil {
				return
			}
			if err = p.Decode(out[:n], &em); err != nil {
				return
			}
			var emb Embedded
			if emb, err = ParseICMPError(out[:n], &em); err != nil {
				return
			}
			err = TranslateICMPError(out[:n], &em, &emb, ICMPRewrite{OuterDst: rip.Addr(), EmbSrc: rip})
		})
		if err != nil {
			t.Fatal(err)
		}
		if allocs != 0 {
			t.Errorf("v6=%v: %v allocations per frag-needed + parse + translate, want 0", v6, allocs)
		}
	}
}

// FuzzICMPError parses whatever decodes as an ICMP error, translates it
// with addresses from the input and checks that the result parses again to
// the translated values with valid checksums; and it builds a frag-needed
// about whatever decodes, which must parse back to the original flow.
func FuzzICMPError(f *testing.F) {
	udp4 := ipPacket(f, buildFrame(f, frameSpec{proto: ProtoUDP, sport: 1, dport: 2, payload: payloadOf(9)}))
	tcp6 := ipPacket(f, buildFrame(f, frameSpec{v6: true, proto: ProtoTCP, sport: 1, dport: 2, payload: payloadOf(9)}))
	f.Add(buildICMPError(f, icmpSpec{typ: 3, code: 4, rest: 1400, src: netip.MustParseAddr("198.18.9.1"), dst: netip.MustParseAddr("198.18.0.1"), quote: udp4}))
	f.Add(buildICMPError(f, icmpSpec{typ: 11, src: netip.MustParseAddr("198.18.9.1"), dst: netip.MustParseAddr("198.18.0.1"), quote: udp4[:28]}))
	f.Add(buildICMPError(f, icmpSpec{v6: true, tags: 1, typ: 2, rest: 1280, src: netip.MustParseAddr("fd00::9"), dst: netip.MustParseAddr("fd00::1"), quote: tcp6}))
	f.Add(buildFrame(f, frameSpec{proto: ProtoTCP, payload: payloadOf(30)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := NewParser()
		var m Meta
		if err := p.Decode(data, &m); err != nil {
			return
		}

		out := make([]byte, 1600)
		from := m.Dst
		mtu := 1280
		if n, err := BuildFragNeeded(out, data, &m, from, mtu); err == nil {
			var om Meta
			if err := p.Decode(out[:n], &om); err != nil {
				t.Fatalf("Decode of a built frag-needed: %v", err)
			}
			if !icmpChecksumOK(out, &om) {
				t.Fatalf("built frag-needed has a bad checksum")
			}
			emb, err := ParseICMPError(out[:n], &om)
			if err == nil && (emb.Src != m.Src || emb.Dst != m.Dst || emb.Proto != m.Proto) {
				t.Fatalf("frag-needed quotes %+v, want the flow of %+v", emb, m)
			}
			if err == nil && (m.Proto == ProtoTCP || m.Proto == ProtoUDP) && (emb.SrcPort != m.SrcPort || emb.DstPort != m.DstPort) {
				t.Fatalf("frag-needed quotes ports %d->%d, want %d->%d", emb.SrcPort, emb.DstPort, m.SrcPort, m.DstPort)
			}
		}

		// Make the ICMP checksum valid, so that the fuzzer explores the
		// message rather than the checksum.
		frame := append([]byte(nil), data...)
		if m.Proto == ProtoICMP || m.Proto == ProtoICMPv6 {
			icmp := frame[m.L4Off:m.Length]
			icmp[2], icmp[3] = 0, 0
			var sum uint64
			if m.IPv6 {
				sum = naiveSum(frame[m.L3Off+8:m.L3Off+40], 0) + uint64(len(icmp)) + ProtoICMPv6
			}
			binary.BigEndian.PutUint16(icmp[2:], ^naiveFold(naiveSum(icmp, sum)))
		}
		orig := append([]byte(nil), frame...)
		emb, err := ParseICMPError(frame, &m)
		if err != nil {
			return
		}
		_, _ = emb.Inner(frame)
		a, b := fuzzTarget(&m, data)
		rw := ICMPRewrite{OuterSrc: a, EmbDst: netip.AddrPortFrom(a, b)}
		if len(data)%2 == 0 {
			rw = ICMPRewrite{OuterDst: a, EmbSrc: netip.AddrPortFrom(a, b)}
		}
		if err := TranslateICMPError(frame, &m, &emb, rw); err != nil {
			t.Fatalf("TranslateICMPError on a parsed error: %v", err)
		}
		var again Meta
		if err := p.Decode(frame, &again); err != nil || again != m {
			t.Fatalf("re-Decode: %v %+v, want %+v", err, again, m)
		}
		emb2, err := ParseICMPError(frame, &again)
		if err != nil || emb2 != emb {
			t.Fatalf("re-parse: %v %+v, want %+v", err, emb2, emb)
		}
		if !icmpChecksumOK(frame, &again) {
			t.Fatalf("ICMP checksum does not verify after TranslateICMPError")
		}
		if !emb.IPv6 && naiveFold(naiveSum(frame[emb.L3Off:emb.L4Off], 0)) != 0xffff && !bytes.Equal(frame[emb.L3Off:emb.L4Off], orig[emb.L3Off:emb.L4Off]) {
			t.Fatalf("quoted IPv4 header changed without a valid checksum")
		}
	})
}

// TestTranslateICMPErrorQuotedEcho6: a quoted ICMPv6 echo's checksum
// covers the addresses, so translating them updates it too.
func TestTranslateICMPErrorQuotedEcho6(t *testing.T) {
	client, vip, rip := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::100"), netip.MustParseAddr("fd00::2:7")
	router := netip.MustParseAddr("fd00::9:9")
	sent := ipPacket(t, buildFrame(t, frameSpec{v6: true, proto: ProtoICMPv6, icmpID: 0x42, src: client, dst: vip, payload: payloadOf(20)}))
	fwd := ipPacket(t, buildFrame(t, frameSpec{v6: true, proto: ProtoICMPv6, icmpID: 0x42, src: client, dst: rip, payload: payloadOf(20)}))
	if bytes.Equal(sent[42:44], fwd[42:44]) {
		t.Fatal("test needs echo checksums that differ")
	}
	p := NewParser()
	frame := buildICMPError(t, icmpSpec{v6: true, typ: 3, src: router, dst: client, quote: fwd})
	want := buildICMPError(t, icmpSpec{v6: true, typ: 3, src: vip, dst: client, quote: sent})
	var m Meta
	if err := p.Decode(frame, &m); err != nil {
		t.Fatal(err)
	}
	emb, err := ParseICMPError(frame, &m)
	if err != nil {
		t.Fatal(err)
	}
	if emb.Proto != ProtoICMPv6 || emb.SrcPort != 0x42 {
		t.Fatalf("quoted echo %+v", emb)
	}
	if err := TranslateICMPError(frame, &m, &emb, ICMPRewrite{OuterSrc: vip, EmbDst: netip.AddrPortFrom(vip, 9)}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(frame, want) {
		t.Fatalf("translated error\n got %x\nwant %x", frame, want)
	}
	if emb.Dst != vip || emb.DstPort != 0x42 {
		t.Fatalf("Embedded %+v: the echo identifier is no port to rewrite", emb)
	}
}
