package packet

import (
	"encoding/binary"
	"net/netip"
)

// Offsets of rewritten fields within their headers.
const (
	ipv4ChecksumOff = 10
	ipv4SrcOff      = 12
	ipv4DstOff      = 16
	ipv6SrcOff      = 8
	ipv6DstOff      = 24
	tcpChecksumOff  = 16
	udpChecksumOff  = 6
)

// SetMACs rewrites the Ethernet source and destination addresses, which is
// all DR forwarding changes. frame must hold an Ethernet header.
func SetMACs(frame []byte, src, dst [6]byte) {
	e := Ethernet(frame[:EthernetHeaderLen])
	e.SetDestination(dst)
	e.SetSource(src)
}

// DNAT rewrites the destination address and port of the TCP or UDP packet
// that m describes (as Parser.Decode filled it for frame), fixes the IPv4
// header checksum and the L4 checksum incrementally, and updates m.Dst and
// m.DstPort. It returns ErrAddressFamily when addr is not of the packet's IP
// version (an IPv4-mapped IPv6 address counts as IPv6), ErrUnsupported for
// protocols without ports, and ErrMalformed when m does not fit frame.
func DNAT(frame []byte, m *Meta, addr netip.Addr, port uint16) error {
	if err := rewrite(frame, m, addr, port, true); err != nil {
		return err
	}
	m.Dst, m.DstPort = addr, port
	return nil
}

// SNAT is DNAT for the source address and port (m.Src and m.SrcPort).
func SNAT(frame []byte, m *Meta, addr netip.Addr, port uint16) error {
	if err := rewrite(frame, m, addr, port, false); err != nil {
		return err
	}
	m.Src, m.SrcPort = addr, port
	return nil
}

func rewrite(frame []byte, m *Meta, addr netip.Addr, port uint16, dst bool) error {
	var csumOff int
	switch m.Proto {
	case ProtoTCP:
		csumOff = tcpChecksumOff
	case ProtoUDP:
		csumOff = udpChecksumOff
	default:
		return ErrUnsupported
	}
	// Cheap checks that m describes frame, so that a stale or hand-made
	// Meta is an error rather than a panic or a write past the headers.
	ipHdr, l4Hdr := IPv4MinHeaderLen, TCPMinHeaderLen
	if m.IPv6 {
		ipHdr = IPv6HeaderLen
	}
	if m.Proto == ProtoUDP {
		l4Hdr = UDPHeaderLen
	}
	if m.L3Off < EthernetHeaderLen || m.L4Off < m.L3Off+ipHdr || m.L4Off+l4Hdr > len(frame) {
		return ErrMalformed
	}

	// delta accumulates ~old + new over every 16-bit word the rewrite
	// changes in the L4 checksum's coverage (pseudo-header included).
	var delta uint32
	if m.IPv6 {
		if !addr.Is6() {
			return ErrAddressFamily
		}
		off := m.L3Off + ipv6SrcOff
		if dst {
			off = m.L3Off + ipv6DstOff
		}
		a := addr.As16()
		old := frame[off : off+16]
		if [16]byte(old) != a {
			delta = replaceDelta(old, a[:])
			copy(old, a[:])
		}
	} else {
		if !addr.Is4() {
			return ErrAddressFamily
		}
		off := m.L3Off + ipv4SrcOff
		if dst {
			off = m.L3Off + ipv4DstOff
		}
		a := addr.As4()
		old := frame[off : off+4]
		if [4]byte(old) != a {
			delta = replaceDelta(old, a[:])
			copy(old, a[:])
			ck := frame[m.L3Off+ipv4ChecksumOff:]
			binary.BigEndian.PutUint16(ck, applyDelta(binary.BigEndian.Uint16(ck), delta))
		}
	}

	portOff := m.L4Off
	if dst {
		portOff += 2
	}
	if old := binary.BigEndian.Uint16(frame[portOff:]); old != port {
		delta += uint32(^old) + uint32(port)
		binary.BigEndian.PutUint16(frame[portOff:], port)
	}

	if delta == 0 {
		// Nothing changed; leave the checksum's bytes as they were.
		return nil
	}
	ck := frame[m.L4Off+csumOff:]
	csum := binary.BigEndian.Uint16(ck)
	if m.Proto == ProtoUDP {
		if csum == 0 {
			// The sender computed no checksum (RFC 768), or, for IPv6,
			// relies on RFC 6936's zero-checksum exception: keep none.
			return nil
		}
		csum = applyDelta(csum, delta)
		if csum == 0 {
			csum = 0xffff // 0 would mean "no checksum"; same value in one's complement
		}
	} else {
		csum = applyDelta(csum, delta)
	}
	binary.BigEndian.PutUint16(ck, csum)
	return nil
}

// applyDelta returns checksum csum updated by delta, a sum of ~old + new
// words (RFC 1624 equation 3).
func applyDelta(csum uint16, delta uint32) uint16 {
	return ^Fold(uint32(^csum) + uint32(Fold(delta)))
}

// DecrementTTL decrements the IPv4 TTL (fixing the header checksum
// incrementally) or the IPv6 hop limit of the packet that m describes, as a
// router forwarding it must. It reports false, changing nothing, when the
// packet must not be forwarded because the TTL or hop limit is already 0 or
// 1, and when m does not fit frame.
func DecrementTTL(frame []byte, m *Meta) bool {
	if m.L3Off < 0 || m.L3Off+IPv4MinHeaderLen > len(frame) {
		return false
	}
	if m.IPv6 {
		if m.L3Off+IPv6HeaderLen > len(frame) {
			return false
		}
		ip := IPv6(frame[m.L3Off:])
		if ip.HopLimit() <= 1 {
			return false
		}
		ip.SetHopLimit(ip.HopLimit() - 1)
		return true
	}
	ip := IPv4(frame[m.L3Off:])
	ttl := ip.TTL()
	if ttl <= 1 {
		return false
	}
	// TTL shares its 16-bit word with the protocol byte.
	old := binary.BigEndian.Uint16(ip[8:10])
	ip.SetTTL(ttl - 1)
	ip.SetChecksum(UpdateChecksum16(ip.Checksum(), old, binary.BigEndian.Uint16(ip[8:10])))
	return true
}
