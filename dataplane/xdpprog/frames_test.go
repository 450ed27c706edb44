package xdpprog

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Addresses of the test service set: 198.18.0.0/15 and fd00::/8, as the
// project's test topologies use.
var (
	clientMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	dirMAC    = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}

	client4 = netip.MustParseAddr("198.18.0.100")
	client6 = netip.MustParseAddr("fd00::100")
	vip4    = netip.MustParseAddr("198.18.0.10")
	vip6    = netip.MustParseAddr("fd00::10")
	dip4    = netip.MustParseAddr("198.18.0.1") // the director's own address
	real4   = netip.MustParseAddr("198.18.1.2")
	real6   = netip.MustParseAddr("fd00:1::2")
	// A router on the path to a client or a real server, which reports
	// ICMP errors about the packets it cannot forward.
	router4 = netip.MustParseAddr("198.18.2.1")
	router6 = netip.MustParseAddr("fd00:2::1")
)

// serialize builds a frame from ls, fixing lengths and checksums.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	for _, l := range ls {
		// TCP and UDP checksums need the network layer.
		var nl gopacket.NetworkLayer
		for _, m := range ls {
			if n, ok := m.(gopacket.NetworkLayer); ok {
				nl = n
			}
		}
		switch l := l.(type) {
		case *layers.TCP:
			if err := l.SetNetworkLayerForChecksum(nl); err != nil {
				t.Fatalf("tcp checksum layer: %v", err)
			}
		case *layers.UDP:
			if err := l.SetNetworkLayerForChecksum(nl); err != nil {
				t.Fatalf("udp checksum layer: %v", err)
			}
		case *layers.ICMPv6:
			if err := l.SetNetworkLayerForChecksum(nl); err != nil {
				t.Fatalf("icmpv6 checksum layer: %v", err)
			}
		}
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize frame: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func eth(typ layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: clientMAC, DstMAC: dirMAC, EthernetType: typ}
}

func tag(vid uint16, next layers.EthernetType) *layers.Dot1Q {
	return &layers.Dot1Q{VLANIdentifier: vid, Type: next}
}

func ip4(src, dst netip.Addr, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{
		Version:  4,
		TTL:      64,
		Protocol: proto,
		SrcIP:    src.AsSlice(),
		DstIP:    dst.AsSlice(),
	}
}

func ip6(src, dst netip.Addr, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{
		Version:    6,
		HopLimit:   64,
		NextHeader: next,
		SrcIP:      src.AsSlice(),
		DstIP:      dst.AsSlice(),
	}
}

func tcp(sport, dport uint16) *layers.TCP {
	return &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Window: 65535}
}

func udp(sport, dport uint16) *layers.UDP {
	return &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
}

func payload(n int) gopacket.Payload {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// tcp4Frame is a TCP SYN over IPv4 with a little payload.
func tcp4Frame(t testing.TB, src netip.Addr, sport uint16, dst netip.Addr, dport uint16) []byte {
	return serialize(t, eth(layers.EthernetTypeIPv4), ip4(src, dst, layers.IPProtocolTCP), tcp(sport, dport), payload(8))
}

func udp4Frame(t testing.TB, src netip.Addr, sport uint16, dst netip.Addr, dport uint16) []byte {
	return serialize(t, eth(layers.EthernetTypeIPv4), ip4(src, dst, layers.IPProtocolUDP), udp(sport, dport), payload(8))
}

func tcp6Frame(t testing.TB, src netip.Addr, sport uint16, dst netip.Addr, dport uint16) []byte {
	return serialize(t, eth(layers.EthernetTypeIPv6), ip6(src, dst, layers.IPProtocolTCP), tcp(sport, dport), payload(8))
}

func udp6Frame(t testing.TB, src netip.Addr, sport uint16, dst netip.Addr, dport uint16) []byte {
	return serialize(t, eth(layers.EthernetTypeIPv6), ip6(src, dst, layers.IPProtocolUDP), udp(sport, dport), payload(8))
}

// ip4OptionsFrame is a TCP frame to dst:dport whose IPv4 header carries
// optLen bytes of NOP options.
func ip4OptionsFrame(t testing.TB, dst netip.Addr, dport uint16, optLen int) []byte {
	ip := ip4(client4, dst, layers.IPProtocolTCP)
	for range optLen {
		ip.Options = append(ip.Options, layers.IPv4Option{OptionType: 1, OptionLength: 1})
	}
	return serialize(t, eth(layers.EthernetTypeIPv4), ip, tcp(40000, dport), payload(8))
}

// fragment4Frame is an IPv4 fragment to dst. A first fragment (offset 0)
// carries a UDP header; a later one carries only data.
func fragment4Frame(t testing.TB, dst netip.Addr, proto layers.IPProtocol, more bool, offset uint16) []byte {
	ip := ip4(client4, dst, proto)
	ip.Id = 0x1234
	ip.FragOffset = offset
	if more {
		ip.Flags = layers.IPv4MoreFragments
	}
	if offset == 0 && proto == layers.IPProtocolUDP {
		return serialize(t, eth(layers.EthernetTypeIPv4), ip, udp(40000, 53), payload(64))
	}
	return serialize(t, eth(layers.EthernetTypeIPv4), ip, payload(64))
}

func arpFrame(t testing.TB, target netip.Addr) []byte {
	return serialize(t,
		&layers.Ethernet{SrcMAC: clientMAC, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{
			AddrType:          layers.LinkTypeEthernet,
			Protocol:          layers.EthernetTypeIPv4,
			HwAddressSize:     6,
			ProtAddressSize:   4,
			Operation:         layers.ARPRequest,
			SourceHwAddress:   clientMAC,
			SourceProtAddress: client4.AsSlice(),
			DstHwAddress:      make([]byte, 6),
			DstProtAddress:    target.AsSlice(),
		})
}

// icmp4EchoFrame is an ICMP echo request (or, with reply, an echo reply)
// from client4 to dst.
func icmp4EchoFrame(t testing.TB, dst netip.Addr, reply bool) []byte {
	typ := uint8(layers.ICMPv4TypeEchoRequest)
	if reply {
		typ = layers.ICMPv4TypeEchoReply
	}
	return serialize(t, eth(layers.EthernetTypeIPv4), ip4(client4, dst, layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: 1, Seq: 1},
		payload(32))
}

func icmp6EchoFrame(t testing.TB, dst netip.Addr, reply bool) []byte {
	typ := uint8(layers.ICMPv6TypeEchoRequest)
	if reply {
		typ = layers.ICMPv6TypeEchoReply
	}
	return serialize(t, eth(layers.EthernetTypeIPv6), ip6(client6, dst, layers.IPProtocolICMPv6), icmp6(typ, 0),
		&layers.ICMPv6Echo{Identifier: 1, SeqNumber: 1}, payload(32))
}

// ndpFrame is a neighbour solicitation (or, with advert, an unsolicited
// neighbour advertisement) from client6 for target.
func ndpFrame(t testing.TB, target netip.Addr, advert bool) []byte {
	if advert {
		return serialize(t, eth(layers.EthernetTypeIPv6), ndpIP6(netip.IPv6LinkLocalAllNodes()),
			icmp6(layers.ICMPv6TypeNeighborAdvertisement, 0),
			&layers.ICMPv6NeighborAdvertisement{
				Flags:         0x20, // override
				TargetAddress: target.AsSlice(),
				Options:       layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: clientMAC}},
			})
	}
	// The solicited-node multicast address of target.
	sn := netip.MustParseAddr("ff02::1:ff00:0").As16()
	ta := target.As16()
	copy(sn[13:], ta[13:])
	return serialize(t, eth(layers.EthernetTypeIPv6), ndpIP6(netip.AddrFrom16(sn)),
		icmp6(layers.ICMPv6TypeNeighborSolicitation, 0),
		&layers.ICMPv6NeighborSolicitation{
			TargetAddress: target.AsSlice(),
			Options:       layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: clientMAC}},
		})
}

func ndpIP6(dst netip.Addr) *layers.IPv6 {
	ip := ip6(client6, dst, layers.IPProtocolICMPv6)
	ip.HopLimit = 255 // RFC 4861 7.1.1
	return ip
}

// icmp4 is an ICMP header; rest is its 4 type-specific bytes (the next-hop
// MTU of fragmentation needed in the low 16 bits, else unused).
func icmp4(typ, code uint8, rest uint32) *layers.ICMPv4 {
	return &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code), Id: uint16(rest >> 16), Seq: uint16(rest)}
}

// icmp6 is the first 4 bytes of an ICMPv6 header: gopacket leaves the
// type-specific rest to the message layer or, for errors, to icmp6Body.
func icmp6(typ, code uint8) *layers.ICMPv6 {
	return &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}
}

// icmp6Body is an ICMPv6 error's body: the 4 type-specific bytes (the MTU
// of packet too big, else unused) and the quote.
func icmp6Body(rest uint32, q gopacket.Payload) gopacket.Payload {
	return append(binary.BigEndian.AppendUint32(nil, rest), q...)
}

// quote returns what an ICMP error about the IP packet ls carries: the IP
// header and the first n bytes after it, or all of them when n < 0.
func quote(t testing.TB, n int, ls ...gopacket.SerializableLayer) gopacket.Payload {
	t.Helper()
	b := serialize(t, ls...)
	hl := ipv6HdrLen
	if b[0]>>4 == 4 {
		hl = int(b[0]&0x0f) * 4
	}
	if n < 0 {
		return b
	}
	if hl+n > len(b) {
		t.Fatalf("quote %d bytes of a %d-byte packet with a %d-byte header", n, len(b), hl)
	}
	return b[:hl+n]
}

// quote4 is what an RFC 792 router quotes of a TCP or UDP packet over IPv4:
// the header and 8 bytes, the ports among them.
func quote4(t testing.TB, src netip.Addr, sport uint16, dst netip.Addr, dport uint16, proto layers.IPProtocol) gopacket.Payload {
	t.Helper()
	if proto == layers.IPProtocolTCP {
		return quote(t, 8, ip4(src, dst, proto), tcp(sport, dport), payload(8))
	}
	return quote(t, 8, ip4(src, dst, proto), udp(sport, dport), payload(8))
}

// quote6 is what an ICMPv6 error quotes of a short TCP or UDP packet over
// IPv6: all of it (RFC 4443 2.4(c)).
func quote6(t testing.TB, src netip.Addr, sport uint16, dst netip.Addr, dport uint16, proto layers.IPProtocol) gopacket.Payload {
	t.Helper()
	if proto == layers.IPProtocolTCP {
		return quote(t, -1, ip6(src, dst, proto), tcp(sport, dport), payload(8))
	}
	return quote(t, -1, ip6(src, dst, proto), udp(sport, dport), payload(8))
}

// icmp4ErrorFrame is an ICMP error of type typ and code from src to dst
// quoting q. Fragmentation needed reports an MTU of 1400.
func icmp4ErrorFrame(t testing.TB, src, dst netip.Addr, typ, code uint8, q gopacket.Payload) []byte {
	var rest uint32
	if typ == layers.ICMPv4TypeDestinationUnreachable && code == layers.ICMPv4CodeFragmentationNeeded {
		rest = 1400
	}
	return serialize(t, eth(layers.EthernetTypeIPv4), ip4(src, dst, layers.IPProtocolICMPv4), icmp4(typ, code, rest), q)
}

// icmp6ErrorFrame is an ICMPv6 error of type typ and code from src to dst
// quoting q. Packet too big reports an MTU of 1280.
func icmp6ErrorFrame(t testing.TB, src, dst netip.Addr, typ, code uint8, q gopacket.Payload) []byte {
	var rest uint32
	if typ == layers.ICMPv6TypePacketTooBig {
		rest = 1280
	}
	return serialize(t, eth(layers.EthernetTypeIPv6), ip6(src, dst, layers.IPProtocolICMPv6), icmp6(typ, code), icmp6Body(rest, q))
}
