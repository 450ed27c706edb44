package packet

import (
	"encoding/binary"
	"net/netip"
)

// Header sizes and field values the data path needs.
const (
	EthernetHeaderLen = 14
	VLANTagLen        = 4
	IPv4MinHeaderLen  = 20
	IPv4MaxHeaderLen  = 60
	IPv6HeaderLen     = 40
	TCPMinHeaderLen   = 20
	UDPHeaderLen      = 8
	ICMPHeaderLen     = 8 // type, code, checksum and the 4-byte rest (echo id/seq)

	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeVLAN = 0x8100 // IEEE 802.1Q C-tag
	EtherTypeQinQ = 0x88a8 // IEEE 802.1ad S-tag
	EtherTypeIPv6 = 0x86dd

	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// TCP flags as they appear in byte 13 of the TCP header.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
	FlagURG = 0x20
	FlagECE = 0x40
	FlagCWR = 0x80
)

// Ethernet is a view of an Ethernet II header. It must be at least
// EthernetHeaderLen bytes long; the accessors do not check.
type Ethernet []byte

// Destination returns the destination MAC address.
func (b Ethernet) Destination() [6]byte { return [6]byte(b[0:6]) }

// Source returns the source MAC address.
func (b Ethernet) Source() [6]byte { return [6]byte(b[6:12]) }

// Type returns the ethertype field that follows the addresses (the outer
// one, 0x8100 or 0x88a8, on a tagged frame).
func (b Ethernet) Type() uint16 { return binary.BigEndian.Uint16(b[12:14]) }

// SetDestination sets the destination MAC address.
func (b Ethernet) SetDestination(a [6]byte) { copy(b[0:6], a[:]) }

// SetSource sets the source MAC address.
func (b Ethernet) SetSource(a [6]byte) { copy(b[6:12], a[:]) }

// SetType sets the ethertype field that follows the addresses.
func (b Ethernet) SetType(t uint16) { binary.BigEndian.PutUint16(b[12:14], t) }

// IPv4 is a view of an IPv4 header (with its options, and the packet that
// follows where the slice extends that far). It must be at least
// IPv4MinHeaderLen bytes long; the accessors do not check.
type IPv4 []byte

// Version returns the IP version field (4 for a valid header).
func (b IPv4) Version() uint8 { return b[0] >> 4 }

// HeaderLength returns the header length in bytes (IHL*4).
func (b IPv4) HeaderLength() int { return int(b[0]&0x0f) * 4 }

// TOS returns the type-of-service (DSCP and ECN) byte.
func (b IPv4) TOS() uint8 { return b[1] }

// TotalLength returns the total length field: header plus payload.
func (b IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// ID returns the identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[4:6]) }

// Flags returns the three flag bits (0x2 DF, 0x1 MF).
func (b IPv4) Flags() uint8 { return b[6] >> 5 }

// DontFragment reports whether DF is set.
func (b IPv4) DontFragment() bool { return b[6]&0x40 != 0 }

// MoreFragments reports whether MF is set.
func (b IPv4) MoreFragments() bool { return b[6]&0x20 != 0 }

// FragmentOffset returns the fragment offset in bytes.
func (b IPv4) FragmentOffset() uint16 { return binary.BigEndian.Uint16(b[6:8]) & 0x1fff << 3 }

// TTL returns the time-to-live field.
func (b IPv4) TTL() uint8 { return b[8] }

// Protocol returns the protocol of the payload.
func (b IPv4) Protocol() uint8 { return b[9] }

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[10:12]) }

// SourceAddress returns the source address.
func (b IPv4) SourceAddress() netip.Addr { return netip.AddrFrom4([4]byte(b[12:16])) }

// DestinationAddress returns the destination address.
func (b IPv4) DestinationAddress() netip.Addr { return netip.AddrFrom4([4]byte(b[16:20])) }

// SetTotalLength sets the total length field; the checksum is not updated.
func (b IPv4) SetTotalLength(n uint16) { binary.BigEndian.PutUint16(b[2:4], n) }

// SetTTL sets the time-to-live field; the checksum is not updated.
func (b IPv4) SetTTL(ttl uint8) { b[8] = ttl }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[10:12], c) }

// SetSourceAddress sets the source address, which must be an IPv4 address;
// no checksum is updated (see SNAT for that).
func (b IPv4) SetSourceAddress(a netip.Addr) { a4 := a.As4(); copy(b[12:16], a4[:]) }

// SetDestinationAddress sets the destination address, which must be an IPv4
// address; no checksum is updated (see DNAT for that).
func (b IPv4) SetDestinationAddress(a netip.Addr) { a4 := a.As4(); copy(b[16:20], a4[:]) }

// CalculateChecksum returns the header checksum computed from scratch, with
// the checksum field counted as zero.
func (b IPv4) CalculateChecksum() uint16 {
	h := b[:b.HeaderLength()]
	sum := Checksum(h[:10], 0)
	return ^Fold(Checksum(h[12:], sum))
}

// IsChecksumValid reports whether the header checksum verifies.
func (b IPv4) IsChecksumValid() bool {
	if b.HeaderLength() == IPv4MinHeaderLen {
		// Nearly every header: five words summed without a loop.
		return fold64(sum20(b)) == 0xffff
	}
	return Fold(Checksum(b[:b.HeaderLength()], 0)) == 0xffff
}

// sum20 is the one's complement sum of b's first 20 bytes, unfolded.
func sum20(b []byte) uint64 {
	_ = b[19]
	return uint64(binary.BigEndian.Uint32(b[0:])) + uint64(binary.BigEndian.Uint32(b[4:])) +
		uint64(binary.BigEndian.Uint32(b[8:])) + uint64(binary.BigEndian.Uint32(b[12:])) +
		uint64(binary.BigEndian.Uint32(b[16:]))
}

// fold64 folds a sum of 32-bit words to 16 bits with end-around carry.
func fold64(s uint64) uint16 {
	s = s>>32 + s&0xffffffff
	s = s>>32 + s&0xffffffff
	return Fold(uint32(s))
}

// Payload returns the bytes after the header up to the total length. The
// view must extend over the whole packet.
func (b IPv4) Payload() []byte { return b[b.HeaderLength():b.TotalLength()] }

// IPv6 is a view of an IPv6 fixed header (and the packet that follows where
// the slice extends that far). It must be at least IPv6HeaderLen bytes long;
// the accessors do not check.
type IPv6 []byte

// Version returns the IP version field (6 for a valid header).
func (b IPv6) Version() uint8 { return b[0] >> 4 }

// TrafficClass returns the traffic class (DSCP and ECN).
func (b IPv6) TrafficClass() uint8 { return uint8(binary.BigEndian.Uint16(b[0:2]) >> 4) }

// FlowLabel returns the 20-bit flow label.
func (b IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(b[0:4]) & 0xfffff }

// PayloadLength returns the payload length field (everything after the
// fixed header, extension headers included).
func (b IPv6) PayloadLength() uint16 { return binary.BigEndian.Uint16(b[4:6]) }

// NextHeader returns the next header field.
func (b IPv6) NextHeader() uint8 { return b[6] }

// HopLimit returns the hop limit field.
func (b IPv6) HopLimit() uint8 { return b[7] }

// SourceAddress returns the source address.
func (b IPv6) SourceAddress() netip.Addr { return netip.AddrFrom16([16]byte(b[8:24])) }

// DestinationAddress returns the destination address.
func (b IPv6) DestinationAddress() netip.Addr { return netip.AddrFrom16([16]byte(b[24:40])) }

// SetPayloadLength sets the payload length field.
func (b IPv6) SetPayloadLength(n uint16) { binary.BigEndian.PutUint16(b[4:6], n) }

// SetNextHeader sets the next header field.
func (b IPv6) SetNextHeader(nh uint8) { b[6] = nh }

// SetHopLimit sets the hop limit field.
func (b IPv6) SetHopLimit(h uint8) { b[7] = h }

// SetSourceAddress sets the source address (As16 of a); no checksum is
// updated (see SNAT for that).
func (b IPv6) SetSourceAddress(a netip.Addr) { a16 := a.As16(); copy(b[8:24], a16[:]) }

// SetDestinationAddress sets the destination address (As16 of a); no
// checksum is updated (see DNAT for that).
func (b IPv6) SetDestinationAddress(a netip.Addr) { a16 := a.As16(); copy(b[24:40], a16[:]) }

// Payload returns the bytes after the fixed header up to the payload
// length. The view must extend over the whole packet.
func (b IPv6) Payload() []byte { return b[IPv6HeaderLen : IPv6HeaderLen+int(b.PayloadLength())] }

// TCP is a view of a TCP header (and the segment's payload where the slice
// extends that far). It must be at least TCPMinHeaderLen bytes long; the
// accessors do not check.
type TCP []byte

// SourcePort returns the source port.
func (b TCP) SourcePort() uint16 { return binary.BigEndian.Uint16(b[0:2]) }

// DestinationPort returns the destination port.
func (b TCP) DestinationPort() uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// SequenceNumber returns the sequence number.
func (b TCP) SequenceNumber() uint32 { return binary.BigEndian.Uint32(b[4:8]) }

// AckNumber returns the acknowledgment number.
func (b TCP) AckNumber() uint32 { return binary.BigEndian.Uint32(b[8:12]) }

// DataOffset returns the header length in bytes (data offset * 4).
func (b TCP) DataOffset() int { return int(b[12]>>4) * 4 }

// Flags returns the flag byte (FlagFIN ... FlagCWR).
func (b TCP) Flags() uint8 { return b[13] }

// WindowSize returns the window field.
func (b TCP) WindowSize() uint16 { return binary.BigEndian.Uint16(b[14:16]) }

// Checksum returns the checksum field.
func (b TCP) Checksum() uint16 { return binary.BigEndian.Uint16(b[16:18]) }

// UrgentPointer returns the urgent pointer.
func (b TCP) UrgentPointer() uint16 { return binary.BigEndian.Uint16(b[18:20]) }

// Options returns the options: the header bytes after the fixed 20.
func (b TCP) Options() []byte { return b[TCPMinHeaderLen:b.DataOffset()] }

// Payload returns the bytes after the header.
func (b TCP) Payload() []byte { return b[b.DataOffset():] }

// SetSourcePort sets the source port; the checksum is not updated.
func (b TCP) SetSourcePort(p uint16) { binary.BigEndian.PutUint16(b[0:2], p) }

// SetDestinationPort sets the destination port; the checksum is not updated.
func (b TCP) SetDestinationPort(p uint16) { binary.BigEndian.PutUint16(b[2:4], p) }

// SetFlags sets the flag byte; the checksum is not updated.
func (b TCP) SetFlags(f uint8) { b[13] = f }

// SetChecksum sets the checksum field.
func (b TCP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[16:18], c) }

// UDP is a view of a UDP header (and its payload where the slice extends
// that far). It must be at least UDPHeaderLen bytes long; the accessors do
// not check.
type UDP []byte

// SourcePort returns the source port.
func (b UDP) SourcePort() uint16 { return binary.BigEndian.Uint16(b[0:2]) }

// DestinationPort returns the destination port.
func (b UDP) DestinationPort() uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// Length returns the length field (header plus payload).
func (b UDP) Length() uint16 { return binary.BigEndian.Uint16(b[4:6]) }

// Checksum returns the checksum field (0: none was computed, IPv4 only).
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[6:8]) }

// Payload returns the bytes after the header up to the length field.
func (b UDP) Payload() []byte { return b[UDPHeaderLen:b.Length()] }

// SetSourcePort sets the source port; the checksum is not updated.
func (b UDP) SetSourcePort(p uint16) { binary.BigEndian.PutUint16(b[0:2], p) }

// SetDestinationPort sets the destination port; the checksum is not updated.
func (b UDP) SetDestinationPort(p uint16) { binary.BigEndian.PutUint16(b[2:4], p) }

// SetLength sets the length field; the checksum is not updated.
func (b UDP) SetLength(n uint16) { binary.BigEndian.PutUint16(b[4:6], n) }

// SetChecksum sets the checksum field.
func (b UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[6:8], c) }
