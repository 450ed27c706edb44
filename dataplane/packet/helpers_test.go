package packet

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// frameSpec describes a frame for gopacket to build.
type frameSpec struct {
	v6       bool
	proto    uint8 // ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6
	tags     int   // 0, 1 (802.1Q) or 2 (802.1ad outer + 802.1Q inner)
	src, dst netip.Addr
	sport    uint16
	dport    uint16
	flags    uint8 // TCP flags
	icmpType uint8 // echo request when zero
	icmpID   uint16
	payload  []byte
	tcpOpts  []layers.TCPOption
	zeroUDP  bool // clear the UDP checksum after serializing (IPv4: "none")
	trailer  int  // extra bytes after the packet, beyond gopacket's padding
}

const (
	outerVLAN = 100
	innerVLAN = 200
)

var (
	testSrcMAC = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	testDstMAC = [6]byte{0x02, 0, 0, 0, 0, 0x02}
)

func (s frameSpec) withDefaults() frameSpec {
	if !s.src.IsValid() {
		if s.v6 {
			s.src, s.dst = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::100")
		} else {
			s.src, s.dst = netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.1.100")
		}
	}
	return s
}

// buildFrame serializes s with gopacket, computing lengths and checksums.
func buildFrame(tb testing.TB, s frameSpec) []byte {
	tb.Helper()
	s = s.withDefaults()
	var ls []gopacket.SerializableLayer
	ipType := layers.EthernetTypeIPv4
	if s.v6 {
		ipType = layers.EthernetTypeIPv6
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(testSrcMAC[:]), DstMAC: net.HardwareAddr(testDstMAC[:]), EthernetType: ipType}
	ls = append(ls, eth)
	switch s.tags {
	case 1:
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: outerVLAN, Priority: 3, Type: ipType})
	case 2:
		eth.EthernetType = layers.EthernetTypeQinQ
		ls = append(ls,
			&layers.Dot1Q{VLANIdentifier: outerVLAN, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: innerVLAN, Type: ipType})
	}
	var nl gopacket.NetworkLayer
	if s.v6 {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocol(s.proto),
			SrcIP: s.src.AsSlice(), DstIP: s.dst.AsSlice(), FlowLabel: 0x12345, TrafficClass: 0x20}
		nl = ip
		ls = append(ls, ip)
	} else {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocol(s.proto), Id: 0x4242,
			Flags: layers.IPv4DontFragment, SrcIP: s.src.AsSlice(), DstIP: s.dst.AsSlice(), TOS: 0x10}
		nl = ip
		ls = append(ls, ip)
	}
	switch s.proto {
	case ProtoTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(s.sport), DstPort: layers.TCPPort(s.dport),
			Seq: 0x01020304, Ack: 0x0a0b0c0d, Window: 65535, Options: s.tcpOpts,
			FIN: s.flags&FlagFIN != 0, SYN: s.flags&FlagSYN != 0, RST: s.flags&FlagRST != 0,
			PSH: s.flags&FlagPSH != 0, ACK: s.flags&FlagACK != 0, URG: s.flags&FlagURG != 0,
			ECE: s.flags&FlagECE != 0, CWR: s.flags&FlagCWR != 0}
		if err := tcp.SetNetworkLayerForChecksum(nl); err != nil {
			tb.Fatal(err)
		}
		ls = append(ls, tcp)
	case ProtoUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(s.sport), DstPort: layers.UDPPort(s.dport)}
		if err := udp.SetNetworkLayerForChecksum(nl); err != nil {
			tb.Fatal(err)
		}
		ls = append(ls, udp)
	case ProtoICMP:
		typ := s.icmpType
		if typ == 0 {
			typ = layers.ICMPv4TypeEchoRequest
		}
		ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: s.icmpID, Seq: 7})
	case ProtoICMPv6:
		typ := s.icmpType
		if typ == 0 {
			typ = layers.ICMPv6TypeEchoRequest
		}
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)}
		if err := icmp.SetNetworkLayerForChecksum(nl); err != nil {
			tb.Fatal(err)
		}
		ls = append(ls, icmp)
		if typ == layers.ICMPv6TypeEchoRequest || typ == layers.ICMPv6TypeEchoReply {
			ls = append(ls, &layers.ICMPv6Echo{Identifier: s.icmpID, SeqNumber: 7})
		} else {
			ls = append(ls, gopacket.Payload(make([]byte, 4)))
		}
	}
	ls = append(ls, gopacket.Payload(s.payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	frame := append([]byte(nil), buf.Bytes()...)
	if s.zeroUDP {
		l4 := l4Offset(s) // gopacket wrote no options, so the offset is fixed
		binary.BigEndian.PutUint16(frame[l4+udpChecksumOff:], 0)
	}
	for i := 0; i < s.trailer; i++ {
		frame = append(frame, 0xee)
	}
	return frame
}

// l3Offset and l4Offset give the offsets buildFrame produces, computed
// apart from the code under test.
func l3Offset(s frameSpec) int { return 14 + 4*s.tags }

func l4Offset(s frameSpec) int {
	if s.v6 {
		return l3Offset(s) + 40
	}
	return l3Offset(s) + 20
}

// naiveSum is RFC 1071 word by word, kept apart from Checksum so that the
// tests check one implementation against another.
func naiveSum(b []byte, sum uint64) uint64 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint64(b[len(b)-1]) << 8
	}
	return sum
}

func naiveFold(sum uint64) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// checksumReport is the outcome of verifying a frame's checksums from
// scratch.
type checksumReport struct {
	ipv4OK   bool // IPv4 header checksum verifies (true for IPv6)
	l4OK     bool // TCP/UDP checksum verifies (or UDP carries none)
	udpNone  bool // UDP checksum field is 0
	l4Stored uint16
	l4Want   uint16 // the value a from-scratch computation stores
}

// verifyChecksums decodes frame with plain gopacket (no Parser) and
// recomputes the IPv4 header checksum and the TCP/UDP checksum over
// pseudo-header and segment, bounded by the IP lengths, not len(frame).
func verifyChecksums(tb testing.TB, frame []byte) checksumReport {
	tb.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
	if el := pkt.ErrorLayer(); el != nil {
		tb.Fatalf("gopacket cannot decode the frame: %v", el.Error())
	}
	var r checksumReport
	var pseudo uint64
	var segment []byte
	var proto uint8
	switch ip := pkt.NetworkLayer().(type) {
	case *layers.IPv4:
		hdr := ip.Contents
		r.ipv4OK = naiveFold(naiveSum(hdr, 0)) == 0xffff
		proto = uint8(ip.Protocol)
		segment = ip.Payload // gopacket cut it at the total length
		pseudo = naiveSum(ip.SrcIP.To4(), 0)
		pseudo = naiveSum(ip.DstIP.To4(), pseudo)
		pseudo += uint64(proto) + uint64(len(segment))
	case *layers.IPv6:
		r.ipv4OK = true
		proto = uint8(ip.NextHeader)
		segment = ip.Payload
		pseudo = naiveSum(ip.SrcIP, 0)
		pseudo = naiveSum(ip.DstIP, pseudo)
		pseudo += uint64(proto) + uint64(len(segment))
	default:
		tb.Fatalf("no IP layer in frame")
	}
	off := tcpChecksumOff
	if proto == ProtoUDP {
		off = udpChecksumOff
	}
	if proto != ProtoTCP && proto != ProtoUDP {
		r.l4OK = true
		return r
	}
	r.l4Stored = binary.BigEndian.Uint16(segment[off:])
	zeroed := append([]byte(nil), segment...)
	zeroed[off], zeroed[off+1] = 0, 0
	r.l4Want = ^naiveFold(naiveSum(zeroed, pseudo))
	if proto == ProtoUDP && r.l4Want == 0 {
		r.l4Want = 0xffff
	}
	r.udpNone = proto == ProtoUDP && r.l4Stored == 0
	r.l4OK = r.udpNone || naiveFold(naiveSum(segment, pseudo)) == 0xffff
	return r
}

// fixChecksums writes from-scratch checksums into a decoded TCP/UDP frame,
// using the naive implementation. UDP checksums of 0 stay 0.
func fixChecksums(frame []byte, m *Meta) {
	var pseudo uint64
	var l4 []byte
	if m.IPv6 {
		ip := IPv6(frame[m.L3Off:m.Length])
		l4 = ip.Payload()
		pseudo = naiveSum(frame[m.L3Off+8:m.L3Off+40], 0)
	} else {
		ip := IPv4(frame[m.L3Off:m.Length])
		ip.SetChecksum(0)
		ip.SetChecksum(^naiveFold(naiveSum(ip[:ip.HeaderLength()], 0)))
		l4 = ip.Payload()
		pseudo = naiveSum(frame[m.L3Off+12:m.L3Off+20], 0)
	}
	pseudo += uint64(m.Proto) + uint64(len(l4))
	off := tcpChecksumOff
	if m.Proto == ProtoUDP {
		off = udpChecksumOff
		if binary.BigEndian.Uint16(l4[off:]) == 0 {
			return
		}
	}
	l4[off], l4[off+1] = 0, 0
	c := ^naiveFold(naiveSum(l4, pseudo))
	if m.Proto == ProtoUDP && c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[off:], c)
}
