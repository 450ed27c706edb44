package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xvs-lb/xvs/dataplane/packet"
)

// Offsets in the frames send builds (Ethernet II, IPv4 without options).
const (
	ethLen      = packet.EthernetHeaderLen
	ipOff       = ethLen
	ipLen       = 20
	ipCsumOff   = ipOff + 10
	ipSrcOff    = ipOff + 12
	l4Off       = ipOff + ipLen
	udpLen      = 8
	tcpLen      = 20
	udpCsumOff  = l4Off + 6
	tcpCsumOff  = l4Off + 16
	sportOff    = l4Off
	payloadFill = "xvs-pktgen "
)

// Fixed TCP fields: a SYN opens at a fixed ISN, an ACK carries data in an
// established flow.
const (
	synSeq    = 0x78767300
	ackSeq    = 0x78767301
	ackAck    = 0x00000001
	tcpWindow = 64240
	ipTTL     = 64
)

// template is the frame of flow 0 and what it takes to turn it into any
// other flow of its flow space by writing absolute values: the new source
// port and address, and checksums computed from partial sums of every other
// byte they cover. Nothing is read back from the frame being rewritten.
type template struct {
	frame  []byte // flow 0, size-4 bytes
	hdrLen int    // Ethernet, IP and L4 headers: what the generator rewrites
	csOff  int    // offset of the L4 checksum
	udp    bool   // a zero UDP checksum means "none" and is sent as 0xffff
	space  flowSpace

	baseAddr uint32 // first source address
	basePort uint16 // first source port
	// ipSum is the folded one's complement sum of the IPv4 header without
	// its source address and checksum; l4Sum the same for the pseudo-header
	// and segment without source address, source port and checksum.
	ipSum, l4Sum uint16
}

// newTemplate builds the flow 0 frame for c with gopacket and precomputes
// the partial checksums.
func newTemplate(c *sendConfig, space flowSpace) (*template, error) {
	frameLen := c.size - fcsLen
	eth := &layers.Ethernet{
		SrcMAC:       net.HardwareAddr(c.srcMAC[:]),
		DstMAC:       net.HardwareAddr(c.dstMAC[:]),
		EthernetType: layers.EthernetTypeIPv4,
	}
	ip := &layers.IPv4{
		Version:  4,
		IHL:      5,
		Flags:    layers.IPv4DontFragment,
		TTL:      ipTTL,
		SrcIP:    net.IP(c.src.first.AsSlice()),
		DstIP:    net.IP(c.dst.AsSlice()),
		Protocol: layers.IPProtocolUDP,
	}
	var l4 gopacket.SerializableLayer
	hdrLen := l4Off + udpLen
	csOff := udpCsumOff
	switch c.proto {
	case protoUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(c.sport), DstPort: layers.UDPPort(c.dport)}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			return nil, err
		}
		l4 = udp
	case protoSYN, protoACK:
		ip.Protocol = layers.IPProtocolTCP
		tcp := &layers.TCP{
			SrcPort: layers.TCPPort(c.sport),
			DstPort: layers.TCPPort(c.dport),
			Window:  tcpWindow,
		}
		if c.proto == protoSYN {
			tcp.SYN, tcp.Seq = true, synSeq
		} else {
			tcp.ACK, tcp.PSH, tcp.Seq, tcp.Ack = true, true, ackSeq, ackAck
		}
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			return nil, err
		}
		l4 = tcp
		hdrLen, csOff = l4Off+tcpLen, tcpCsumOff
	default:
		return nil, fmt.Errorf("template: unknown protocol %v", c.proto)
	}
	if frameLen < hdrLen {
		return nil, fmt.Errorf("template: %d-byte frame cannot hold %d bytes of headers", frameLen, hdrLen)
	}
	// Every frame carries payload up to the requested size, SYNs included
	// (legal, if unusual), so that the IP length, not Ethernet padding,
	// makes the size: a device or a NAT on the way sees the real length.
	payload := make([]byte, frameLen-hdrLen)
	for i := range payload {
		payload[i] = payloadFill[i%len(payloadFill)]
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, l4, gopacket.Payload(payload)); err != nil {
		return nil, fmt.Errorf("template: serialize: %w", err)
	}
	frame := buf.Bytes()
	if len(frame) != frameLen {
		return nil, fmt.Errorf("template: built %d bytes, want %d", len(frame), frameLen)
	}
	t := &template{
		frame:    frame,
		hdrLen:   hdrLen,
		csOff:    csOff,
		udp:      c.proto == protoUDP,
		space:    space,
		baseAddr: addr4(c.src.first),
		basePort: c.sport,
	}
	t.ipSum, t.l4Sum = partialSums(frame, csOff)
	return t, nil
}

// partialSums returns the folded sums of the IPv4 header and of the L4
// pseudo-header and segment with the varying fields taken out (zeroed).
func partialSums(frame []byte, csOff int) (ipSum, l4Sum uint16) {
	f := append([]byte(nil), frame...)
	clear(f[ipSrcOff : ipSrcOff+4])
	clear(f[ipCsumOff : ipCsumOff+2])
	clear(f[sportOff : sportOff+2])
	clear(f[csOff : csOff+2])
	ip := packet.IPv4(f[ipOff:])
	ipSum = packet.Fold(packet.Checksum(f[ipOff:ipOff+ipLen], 0))
	seg := f[l4Off : ipOff+int(ip.TotalLength())]
	pseudo := packet.PseudoHeaderChecksum(ip.Protocol(), netip.IPv4Unspecified(), ip.DestinationAddress(), uint32(len(seg)))
	l4Sum = packet.Fold(packet.Checksum(seg, pseudo))
	return ipSum, l4Sum
}

// checksums returns the IPv4 header and L4 checksums of the flow with source
// address addr and source port port.
func (t *template) checksums(addr uint32, port uint16) (ipCsum, l4Csum uint16) {
	hi, lo := addr>>16, addr&0xffff
	ipCsum = ^packet.Fold(uint32(t.ipSum) + hi + lo)
	l4Csum = ^packet.Fold(uint32(t.l4Sum) + uint32(port) + hi + lo)
	if l4Csum == 0 && t.udp {
		l4Csum = 0xffff
	}
	return ipCsum, l4Csum
}

// writeFlow turns frame, a copy of t.frame rewritten for any flow since,
// into the frame of the given flow indexes: it writes the flow's source
// address and port and both checksums, as absolute values. It allocates
// nothing. (The generator program does the same in the kernel, and rewrites
// the rest of the header too: see pktgen_gen in dataplane/bpf/pktgen.c.)
func (t *template) writeFlow(frame []byte, addrIdx, portIdx uint32) {
	addr := t.baseAddr + addrIdx
	port := t.basePort + uint16(portIdx)
	ipCsum, l4Csum := t.checksums(addr, port)
	binary.BigEndian.PutUint32(frame[ipSrcOff:], addr)
	binary.BigEndian.PutUint16(frame[ipCsumOff:], ipCsum)
	binary.BigEndian.PutUint16(frame[sportOff:], port)
	binary.BigEndian.PutUint16(frame[t.csOff:], l4Csum)
}
