package packet

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Checksum returns the one's complement sum (RFC 1071) of b added to
// initial, folded to 32 bits but not to 16: chain calls by passing the result
// as the next initial, and finish with ^Fold(sum) to get the value stored in
// a header. Every chunk but the last must have an even length, since an odd
// final byte is summed as the high byte of a zero-padded word.
func Checksum(b []byte, initial uint32) uint32 {
	// Summing 64-bit big-endian words with end-around carry is congruent
	// modulo 0xffff to summing 16-bit words, because 2^16 ≡ 1 (mod 0xffff),
	// and it yields zero only for all-zero input, as the 16-bit sum does.
	sum := uint64(initial)
	var carry uint64
	for len(b) >= 32 {
		sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(b[0:8]), carry)
		sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(b[8:16]), carry)
		sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(b[16:24]), carry)
		sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(b[24:32]), carry)
		b = b[32:]
	}
	for len(b) >= 8 {
		sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(b), carry)
		b = b[8:]
	}
	if len(b) >= 4 {
		sum, carry = bits.Add64(sum, uint64(binary.BigEndian.Uint32(b)), carry)
		b = b[4:]
	}
	if len(b) >= 2 {
		sum, carry = bits.Add64(sum, uint64(binary.BigEndian.Uint16(b)), carry)
		b = b[2:]
	}
	if len(b) == 1 {
		sum, carry = bits.Add64(sum, uint64(b[0])<<8, carry)
	}
	sum, carry = bits.Add64(sum, 0, carry)
	sum += carry // cannot overflow: a carry out of the last add left sum == 0

	s, c := bits.Add32(uint32(sum>>32), uint32(sum), 0)
	return s + c // again cannot overflow
}

// Fold folds a 32-bit one's complement sum to 16 bits with end-around carry.
// A header checksum is ^Fold(sum).
func Fold(sum uint32) uint16 {
	sum = sum>>16 + sum&0xffff
	sum = sum>>16 + sum&0xffff
	return uint16(sum)
}

// UpdateChecksum16 returns checksum csum after a 16-bit word of the covered
// data changed from old to new, by RFC 1624 equation 3:
// HC' = ~(~HC + ~m + m').
func UpdateChecksum16(csum, old, new uint16) uint16 {
	return ^Fold(uint32(^csum) + uint32(^old) + uint32(new))
}

// UpdateChecksumAddr returns checksum csum after the bytes old of the
// covered data were replaced by new. old and new must have the same even
// length (4 for IPv4 addresses, 16 for IPv6) and start at an even offset of
// the covered data, as addresses do in IP headers and pseudo-headers.
func UpdateChecksumAddr(csum uint16, old, new []byte) uint16 {
	return ^Fold(uint32(^csum) + uint32(Fold(replaceDelta(old, new))))
}

// replaceDelta returns the one's complement sum of ~old[i] + new[i] over the
// 16-bit words of old and new: what replacing old by new adds to a sum.
func replaceDelta(old, new []byte) uint32 {
	var d uint32
	new = new[:len(old)]
	for i := 0; i+1 < len(old); i += 2 {
		d += uint32(^binary.BigEndian.Uint16(old[i:])) + uint32(binary.BigEndian.Uint16(new[i:]))
	}
	return d
}

// PseudoHeaderChecksum returns the unfolded one's complement sum of the
// TCP/UDP pseudo-header (RFC 793/768 for IPv4, RFC 8200 section 8.1 for
// IPv6) for a segment of length bytes. Finish a segment's checksum with
// ^Fold(Checksum(segment, PseudoHeaderChecksum(...))). src and dst must both
// be IPv4 or both IPv6.
func PseudoHeaderChecksum(proto uint8, src, dst netip.Addr, length uint32) uint32 {
	var sum uint32
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		sum = Checksum(s[:], 0)
		sum = Checksum(d[:], sum)
	} else {
		s, d := src.As16(), dst.As16()
		sum = Checksum(s[:], 0)
		sum = Checksum(d[:], sum)
	}
	// Both layouts end in a protocol byte and a length; the IPv6 length is
	// 32 bits, and summing its two halves covers the IPv4 16-bit case too.
	return uint32(Fold(uint32(Fold(sum)) + uint32(proto) + length>>16 + length&0xffff))
}
