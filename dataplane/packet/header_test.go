package packet

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestViewsMatchGopacket reads every field through the views and compares
// it with gopacket's decoding of the same frame.
func TestViewsMatchGopacket(t *testing.T) {
	for _, s := range frameKinds() {
		s.payload = payloadOf(30)
		s = s.withDefaults()
		frame := buildFrame(t, s)
		pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		e := Ethernet(frame)
		if d, s := e.Destination(), e.Source(); !bytes.Equal(d[:], eth.DstMAC) || !bytes.Equal(s[:], eth.SrcMAC) || e.Type() != uint16(eth.EthernetType) {
			t.Errorf("Ethernet view %x %x %#x, gopacket %v %v %v", d, s, e.Type(), eth.DstMAC, eth.SrcMAC, eth.EthernetType)
		}
		l3, l4 := l3Offset(s), l4Offset(s)
		if s.v6 {
			g := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			ip := IPv6(frame[l3:])
			if ip.Version() != 6 || ip.TrafficClass() != g.TrafficClass || ip.FlowLabel() != g.FlowLabel ||
				ip.PayloadLength() != g.Length || ip.NextHeader() != uint8(g.NextHeader) || ip.HopLimit() != g.HopLimit ||
				ip.SourceAddress() != s.src || ip.DestinationAddress() != s.dst || !bytes.Equal(ip.Payload(), g.Payload) {
				t.Errorf("%v: IPv6 view disagrees with gopacket %+v", s, g)
			}
		} else {
			g := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			ip := IPv4(frame[l3:])
			if ip.Version() != 4 || ip.HeaderLength() != int(g.IHL)*4 || ip.TOS() != g.TOS || ip.TotalLength() != g.Length ||
				ip.ID() != g.Id || ip.Flags() != uint8(g.Flags) || ip.FragmentOffset() != g.FragOffset*8 ||
				ip.DontFragment() != (g.Flags&layers.IPv4DontFragment != 0) || ip.MoreFragments() ||
				ip.TTL() != g.TTL || ip.Protocol() != uint8(g.Protocol) || ip.Checksum() != g.Checksum ||
				ip.SourceAddress() != s.src || ip.DestinationAddress() != s.dst || !bytes.Equal(ip.Payload(), g.Payload) {
				t.Errorf("%v: IPv4 view disagrees with gopacket %+v", s, g)
			}
			if !ip.IsChecksumValid() || ip.CalculateChecksum() != ip.Checksum() {
				t.Errorf("%v: header checksum %#x, calculated %#x", s, ip.Checksum(), ip.CalculateChecksum())
			}
		}
		switch s.proto {
		case ProtoTCP:
			g := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
			h := TCP(frame[l4:])
			if h.SourcePort() != uint16(g.SrcPort) || h.DestinationPort() != uint16(g.DstPort) || h.SequenceNumber() != g.Seq ||
				h.AckNumber() != g.Ack || h.DataOffset() != int(g.DataOffset)*4 || h.Flags() != s.flags ||
				h.WindowSize() != g.Window || h.Checksum() != g.Checksum || h.UrgentPointer() != g.Urgent ||
				len(h.Options()) != 0 || !bytes.Equal(h.Payload()[:len(g.Payload)], g.Payload) {
				t.Errorf("%v: TCP view disagrees with gopacket %+v", s, g)
			}
		case ProtoUDP:
			g := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
			h := UDP(frame[l4:])
			if h.SourcePort() != uint16(g.SrcPort) || h.DestinationPort() != uint16(g.DstPort) || h.Length() != g.Length ||
				h.Checksum() != g.Checksum || !bytes.Equal(h.Payload(), g.Payload) {
				t.Errorf("%v: UDP view disagrees with gopacket %+v", s, g)
			}
		}
	}
}

// TestViewSetters writes every settable field and reads it back through
// gopacket.
func TestViewSetters(t *testing.T) {
	mac1, mac2 := [6]byte{1, 2, 3, 4, 5, 6}, [6]byte{0xa, 0xb, 0xc, 0xd, 0xe, 0xf}
	t.Run("ipv4/tcp", func(t *testing.T) {
		frame := buildFrame(t, frameSpec{proto: ProtoTCP, payload: payloadOf(10)})
		e := Ethernet(frame)
		e.SetDestination(mac1)
		e.SetSource(mac2)
		ip := IPv4(frame[14:])
		src, dst := netip.MustParseAddr("198.18.7.7"), netip.MustParseAddr("198.18.8.8")
		ip.SetSourceAddress(src)
		ip.SetDestinationAddress(dst)
		ip.SetTTL(3)
		ip.SetChecksum(ip.CalculateChecksum())
		h := TCP(frame[34:])
		h.SetSourcePort(1111)
		h.SetDestinationPort(2222)
		h.SetFlags(FlagRST | FlagACK)
		h.SetChecksum(0xabcd)
		pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		g := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		gt := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		ge := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if !bytes.Equal(ge.DstMAC, mac1[:]) || !bytes.Equal(ge.SrcMAC, mac2[:]) {
			t.Errorf("MACs %v %v", ge.DstMAC, ge.SrcMAC)
		}
		if !g.SrcIP.Equal(src.AsSlice()) || !g.DstIP.Equal(dst.AsSlice()) || g.TTL != 3 || !ip.IsChecksumValid() {
			t.Errorf("IPv4 %+v", g)
		}
		if gt.SrcPort != 1111 || gt.DstPort != 2222 || !gt.RST || !gt.ACK || gt.SYN || gt.Checksum != 0xabcd {
			t.Errorf("TCP %+v", gt)
		}
		ip.SetTotalLength(99)
		if ip.TotalLength() != 99 {
			t.Errorf("TotalLength %d", ip.TotalLength())
		}
		e.SetType(EtherTypeARP)
		if e.Type() != EtherTypeARP {
			t.Errorf("Type %#x", e.Type())
		}
	})
	t.Run("ipv6/udp", func(t *testing.T) {
		frame := buildFrame(t, frameSpec{v6: true, proto: ProtoUDP, payload: payloadOf(10)})
		ip := IPv6(frame[14:])
		src, dst := netip.MustParseAddr("fd00::7:7"), netip.MustParseAddr("fd00::8:8")
		ip.SetSourceAddress(src)
		ip.SetDestinationAddress(dst)
		ip.SetHopLimit(9)
		h := UDP(frame[54:])
		h.SetSourcePort(3333)
		h.SetDestinationPort(4444)
		h.SetChecksum(0x1234)
		pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		g := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		gu := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !g.SrcIP.Equal(src.AsSlice()) || !g.DstIP.Equal(dst.AsSlice()) || g.HopLimit != 9 {
			t.Errorf("IPv6 %+v", g)
		}
		if gu.SrcPort != 3333 || gu.DstPort != 4444 || gu.Checksum != 0x1234 {
			t.Errorf("UDP %+v", gu)
		}
		h.SetLength(8)
		ip.SetPayloadLength(8)
		ip.SetNextHeader(ProtoTCP)
		if h.Length() != 8 || len(h.Payload()) != 0 || len(ip.Payload()) != 8 || ip.NextHeader() != ProtoTCP {
			t.Errorf("lengths: UDP %d IPv6 %d next %d", h.Length(), ip.PayloadLength(), ip.NextHeader())
		}
	})
	t.Run("fragment offset", func(t *testing.T) {
		frame := buildFrame(t, frameSpec{proto: ProtoUDP})
		ip := IPv4(frame[14:])
		ip[6], ip[7] = 0x20|0x01, 0x02 // MF, offset 0x102 units
		if !ip.MoreFragments() || ip.DontFragment() || ip.FragmentOffset() != 0x102*8 || ip.Flags() != 1 {
			t.Errorf("MF %v DF %v offset %d flags %d", ip.MoreFragments(), ip.DontFragment(), ip.FragmentOffset(), ip.Flags())
		}
	})
}
