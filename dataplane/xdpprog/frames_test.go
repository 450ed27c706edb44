package xdpprog

import (
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

func icmp4EchoFrame(t testing.TB, dst netip.Addr) []byte {
	return serialize(t, eth(layers.EthernetTypeIPv4), ip4(client4, dst, layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 1, Seq: 1},
		payload(32))
}

func icmp6EchoFrame(t testing.TB, dst netip.Addr) []byte {
	ip := ip6(client6, dst, layers.IPProtocolICMPv6)
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatalf("icmpv6 checksum layer: %v", err)
	}
	return serialize(t, eth(layers.EthernetTypeIPv6), ip, icmp,
		&layers.ICMPv6Echo{Identifier: 1, SeqNumber: 1}, payload(32))
}
