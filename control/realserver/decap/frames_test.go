package decap

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Addresses from 198.18.0.0/15 and fd00::/8, as the project's test
// topologies use.
var (
	dirMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	rsMAC  = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}

	dir4    = netip.MustParseAddr("198.18.0.1")
	rs4     = netip.MustParseAddr("198.18.0.2")
	other4  = netip.MustParseAddr("198.18.0.3")
	vip4    = netip.MustParseAddr("198.18.0.10")
	novip4  = netip.MustParseAddr("198.18.0.11")
	client4 = netip.MustParseAddr("198.19.0.100")

	dir6    = netip.MustParseAddr("fd00::1")
	rs6     = netip.MustParseAddr("fd00::2")
	other6  = netip.MustParseAddr("fd00::3")
	vip6    = netip.MustParseAddr("fd00::10")
	novip6  = netip.MustParseAddr("fd00::11")
	client6 = netip.MustParseAddr("fd00:1::100")
)

// l2 describes the link-layer header of a test frame: tags are VLAN IDs,
// outermost first.
type l2 struct{ tags []uint16 }

// layers returns the Ethernet header and tags in front of a payload of
// ethertype typ.
func (h l2) layers(typ layers.EthernetType) []gopacket.SerializableLayer {
	first := typ
	if len(h.tags) > 0 {
		first = layers.EthernetTypeDot1Q
	}
	ls := []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: dirMAC, DstMAC: rsMAC, EthernetType: first}}
	for i, vid := range h.tags {
		next := typ
		if i < len(h.tags)-1 {
			next = layers.EthernetTypeDot1Q
		}
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: vid, Type: next})
	}
	return ls
}

// serialize builds a frame from ls, fixing lengths and checksums. A TCP or
// UDP checksum covers the network layer just before it.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	for i, l := range ls {
		var nl gopacket.NetworkLayer
		if i > 0 {
			nl, _ = ls[i-1].(gopacket.NetworkLayer)
		}
		var err error
		switch l := l.(type) {
		case *layers.TCP:
			err = l.SetNetworkLayerForChecksum(nl)
		case *layers.UDP:
			err = l.SetNetworkLayerForChecksum(nl)
		}
		if err != nil {
			t.Fatalf("checksum layer: %v", err)
		}
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize frame: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ipLayer returns an IPv4 or IPv6 header from src to dst carrying proto.
func ipLayer(src, dst netip.Addr, proto layers.IPProtocol) gopacket.SerializableLayer {
	if src.Is4() {
		return &layers.IPv4{Version: 4, TTL: 64, Id: 0x4242, Flags: layers.IPv4DontFragment, Protocol: proto,
			SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	}
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
}

func etherType(a netip.Addr) layers.EthernetType {
	if a.Is4() {
		return layers.EthernetTypeIPv4
	}
	return layers.EthernetTypeIPv6
}

func tunnelProto(inner netip.Addr) layers.IPProtocol {
	if inner.Is4() {
		return layers.IPProtocolIPv4
	}
	return layers.IPProtocolIPv6
}

func payload(n int) gopacket.Payload {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// innerPayload makes every test frame longer than Ethernet's 60-byte
// minimum, so that gopacket adds no padding to the expected inner frames.
const innerPayload = 32

// innerLayers is a UDP datagram from the client to dst:9000.
func innerLayers(dst netip.Addr, n int) []gopacket.SerializableLayer {
	src := client4
	if dst.Is6() {
		src = client6
	}
	return []gopacket.SerializableLayer{
		ipLayer(src, dst, layers.IPProtocolUDP),
		&layers.UDP{SrcPort: 40000, DstPort: 9000},
		payload(n),
	}
}

// tunnelFrame is the inner datagram to innerDst, encapsulated from the
// director to outerDst, behind h.
func tunnelFrame(t testing.TB, h l2, outerDst, innerDst netip.Addr) []byte {
	outerSrc := dir4
	if outerDst.Is6() {
		outerSrc = dir6
	}
	ls := h.layers(etherType(outerDst))
	ls = append(ls, ipLayer(outerSrc, outerDst, tunnelProto(innerDst)))
	ls = append(ls, innerLayers(innerDst, innerPayload)...)
	return serialize(t, ls...)
}

// innerFrame is what decapsulating tunnelFrame(h, _, innerDst) must yield.
func innerFrame(t testing.TB, h l2, innerDst netip.Addr) []byte {
	return serialize(t, append(h.layers(etherType(innerDst)), innerLayers(innerDst, innerPayload)...)...)
}

// plainFrame is the inner datagram sent directly, without a tunnel.
func plainFrame(t testing.TB, dst netip.Addr) []byte { return innerFrame(t, l2{}, dst) }

func arpFrame(t testing.TB) []byte {
	return serialize(t,
		&layers.Ethernet{SrcMAC: dirMAC, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
			SourceHwAddress: dirMAC, SourceProtAddress: dir4.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: rs4.AsSlice(),
		})
}

// mutate returns a copy of frame with fn applied to it.
func mutate(frame []byte, fn func(f []byte)) []byte {
	f := append([]byte(nil), frame...)
	fn(f)
	return f
}

// fixIPv4Checksum recomputes the checksum of the IPv4 header at off.
func fixIPv4Checksum(f []byte, off int) {
	f[off+10], f[off+11] = 0, 0
	ihl := int(f[off]&0x0f) * 4
	var sum uint32
	for i := 0; i < ihl; i += 2 {
		sum += uint32(f[off+i])<<8 | uint32(f[off+i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	c := ^uint16(sum)
	f[off+10], f[off+11] = byte(c>>8), byte(c)
}

// withOuterOptions is tunnelFrame(l2{}, rs4, vip4) with a 4-byte NOP option
// in the outer header.
func withOuterOptions(t testing.TB) []byte {
	outer := ipLayer(dir4, rs4, layers.IPProtocolIPv4).(*layers.IPv4)
	for range 4 {
		outer.Options = append(outer.Options, layers.IPv4Option{OptionType: 1, OptionLength: 1})
	}
	ls := append(l2{}.layers(layers.EthernetTypeIPv4), outer)
	return serialize(t, append(ls, innerLayers(vip4, innerPayload)...)...)
}

// withDestOpts is tunnelFrame(l2{}, rs6, vip6) with a destination options
// header (the tunnel encapsulation limit ip6_tunnel adds) after the outer
// header.
func withDestOpts(t testing.TB) []byte {
	ls := l2{}.layers(layers.EthernetTypeIPv6)
	ls = append(ls, ipLayer(dir6, rs6, layers.IPProtocolIPv6Destination),
		gopacket.Payload{byte(layers.IPProtocolIPv6), 0, 4, 1, 4, 1, 1, 0})
	inner := serialize(t, innerLayers(vip6, innerPayload)...)
	return serialize(t, append(ls, gopacket.Payload(inner))...)
}
