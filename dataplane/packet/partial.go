package packet

import "encoding/binary"

// Partial checksums.
//
// A sender that leaves its TCP or UDP checksum to the NIC (Linux's
// CHECKSUM_PARTIAL: every veth, every namespace and container, virtio with
// offload) writes into the checksum field the folded sum of the
// pseudo-header only, not complemented, and expects the device to add the
// segment's own words and store the complement. veth hands such frames on
// as they are; AF_XDP copies them verbatim and drops the "partial" flag with
// the skb, so a director that forwards one unchanged forwards a checksum
// that no receiver accepts. A director must finish what the NIC would have.
//
// Such a field is recognised by its value: it equals the folded
// pseudo-header sum of the packet's own addresses, protocol and length. A
// complete checksum takes that value by chance once in 65 535 segments; the
// sum over the segment then shows it verifies, and it is left alone. A
// corrupt checksum is left as it is unless it happens to equal the
// pseudo-header sum, which the receiver could not tell from a partial one
// either.

// l4Coverage returns the number of bytes a TCP or UDP checksum covers in the
// frame m describes (the pseudo-header's length), the offset of the checksum
// field, and false for other protocols or a Meta that does not fit frame.
func l4Coverage(frame []byte, m *Meta) (n, csumOff int, ok bool) {
	switch m.Proto {
	case ProtoTCP:
		n, csumOff = m.Length-m.L4Off, tcpChecksumOff
		if n < TCPMinHeaderLen {
			return 0, 0, false
		}
	case ProtoUDP:
		if m.L4Off+UDPHeaderLen > m.Length {
			return 0, 0, false
		}
		n, csumOff = int(UDP(frame[m.L4Off:]).Length()), udpChecksumOff
		if n < UDPHeaderLen || m.L4Off+n > m.Length {
			return 0, 0, false
		}
	default:
		return 0, 0, false
	}
	if m.L4Off < m.L3Off || m.Length > len(frame) {
		return 0, 0, false
	}
	return n, csumOff, true
}

// pseudoSum is PseudoHeaderChecksum read straight from the IP header in
// frame: the addresses are contiguous in both families, so it is one
// Checksum call over 8 or 32 bytes.
func pseudoSum(frame []byte, l3 int, v6 bool, proto uint8, length int) uint32 {
	if !v6 {
		// Every frame pays this: two words, no loop.
		a := frame[l3+ipv4SrcOff : l3+ipv4DstOff+4]
		s := uint64(binary.BigEndian.Uint32(a[0:])) + uint64(binary.BigEndian.Uint32(a[4:])) + uint64(proto) + uint64(length)
		return uint32(fold64(s))
	}
	return Checksum(frame[l3+ipv6SrcOff:l3+ipv6DstOff+16], uint32(proto)+uint32(length))
}

// samePartial reports whether csum is the folded pseudo-header sum
// pseudo, allowing either representation of one's complement zero.
func samePartial(csum uint16, pseudo uint32) bool {
	p := Fold(pseudo)
	return csum == p || csum == 0 && p == 0xffff
}

// IsPartialChecksum reports whether the TCP or UDP checksum of the packet m
// describes holds only the pseudo-header sum, as a sender that left the
// checksum to its NIC wrote it. A UDP datagram without a checksum (zero) is
// never partial.
func IsPartialChecksum(frame []byte, m *Meta) bool {
	n, off, ok := l4Coverage(frame, m)
	if !ok {
		return false
	}
	csum := binary.BigEndian.Uint16(frame[m.L4Off+off:])
	if csum == 0 && m.Proto == ProtoUDP {
		return false
	}
	return samePartial(csum, pseudoSum(frame, m.L3Off, m.IPv6, m.Proto, n))
}

// CompletePartialChecksum finishes, in place, the TCP or UDP checksum of a
// packet whose checksum field holds only the pseudo-header sum (see
// IsPartialChecksum), as the sender's NIC would have: the one's complement
// of the sum of the segment, that field included. It reports whether it
// changed the field; any other packet is left untouched, so that a checksum
// that arrived wrong still fails at the receiver, and so is a complete one
// that happens to equal its pseudo-header sum. It costs one pseudo-header
// sum for a complete packet and a pass over the segment for a partial one.
func CompletePartialChecksum(frame []byte, m *Meta) bool {
	n, off, ok := l4Coverage(frame, m)
	if !ok {
		return false
	}
	ck := frame[m.L4Off+off:]
	csum := binary.BigEndian.Uint16(ck)
	if csum == 0 && m.Proto == ProtoUDP {
		return false
	}
	if !samePartial(csum, pseudoSum(frame, m.L3Off, m.IPv6, m.Proto, n)) {
		return false
	}
	// The field holds P = the pseudo-header sum, so the segment's sum is
	// the rest's plus P: its complement is the complete checksum.
	c := ^Fold(Checksum(frame[m.L4Off:m.L4Off+n], 0))
	if c == 0 && m.Proto == ProtoUDP {
		c = 0xffff // 0 would mean "no checksum" (RFC 768)
	}
	if c == csum {
		return false // complete already: it equals its own pseudo-header sum
	}
	binary.BigEndian.PutUint16(ck, c)
	return true
}

// L4ChecksumValid reports whether the TCP or UDP checksum of the packet m
// describes verifies, as the receiver's stack will check it. A UDP datagram
// without a checksum is valid over IPv4 and, as Linux accepts by default
// only for tunnels, invalid over IPv6. Other protocols report true.
func L4ChecksumValid(frame []byte, m *Meta) bool {
	n, off, ok := l4Coverage(frame, m)
	if !ok {
		return m.Proto != ProtoTCP && m.Proto != ProtoUDP
	}
	if m.Proto == ProtoUDP && binary.BigEndian.Uint16(frame[m.L4Off+off:]) == 0 {
		return !m.IPv6
	}
	sum := pseudoSum(frame, m.L3Off, m.IPv6, m.Proto, n)
	return Fold(Checksum(frame[m.L4Off:m.L4Off+n], sum)) == 0xffff
}

// VerifyChecksums reports whether every checksum the receiver of frame will
// check verifies: the IPv4 header's and the TCP or UDP checksum, of the
// packet inside when frame is an IPIP or IPv6-in-IP tunnel packet (whose
// outer IPv4 header is checked too). It is the director's debug check of
// what it sends (verify_checksums), not part of the forwarding path.
func VerifyChecksums(frame []byte) bool {
	var m Meta
	err := validate(frame, &m)
	if err == ErrUnsupported && m.L4Off > 0 && (m.Proto == ProtoIPIP || m.Proto == ProtoIPv6) {
		inner := Meta{L3Off: m.L4Off, IPv6: m.Proto == ProtoIPv6}
		if inner.IPv6 {
			err = validateIPv6(frame[:m.Length], &inner)
		} else {
			err = validateIPv4(frame[:m.Length], &inner)
		}
		m = inner
	}
	return err == nil && L4ChecksumValid(frame, &m)
}
