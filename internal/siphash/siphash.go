// Package siphash is SipHash (Aumasson and Bernstein, 2012), the keyed
// hash for short inputs that the schedulers (the kernel's hsiphash) and the
// SYN cookies use.
package siphash

import (
	"encoding/binary"
	"math/bits"
)

// Sum24 is SipHash-2-4 of msg under the 128-bit key (k0, k1). It
// allocates nothing.
func Sum24(k0, k1 uint64, msg []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	n := len(msg)
	for len(msg) >= 8 {
		m := binary.LittleEndian.Uint64(msg)
		v3 ^= m
		v0, v1, v2, v3 = Round(v0, v1, v2, v3)
		v0, v1, v2, v3 = Round(v0, v1, v2, v3)
		v0 ^= m
		msg = msg[8:]
	}
	last := uint64(n) << 56
	for i, b := range msg {
		last |= uint64(b) << (8 * i)
	}
	v3 ^= last
	v0, v1, v2, v3 = Round(v0, v1, v2, v3)
	v0, v1, v2, v3 = Round(v0, v1, v2, v3)
	v0 ^= last
	v2 ^= 0xff
	for range 4 {
		v0, v1, v2, v3 = Round(v0, v1, v2, v3)
	}
	return v0 ^ v1 ^ v2 ^ v3
}

// Round is SipHash's SIPROUND.
func Round(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}
