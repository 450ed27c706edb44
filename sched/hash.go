package sched

import (
	"encoding/binary"

	"github.com/xvs-lb/xvs/internal/siphash"
)

// isV4 reports whether a is IPv4-mapped (::ffff:a.b.c.d).
func isV4(a *[16]byte) bool {
	return binary.BigEndian.Uint64(a[0:8]) == 0 && binary.BigEndian.Uint32(a[8:12]) == 0xffff
}

// fold is IPVS's addr_fold in host order, ntohl(addr_fold): an IPv4
// address as is, an IPv6 one as the xor of its four 32-bit words.
func fold(a *[16]byte) uint32 {
	if isV4(a) {
		return binary.BigEndian.Uint32(a[12:16])
	}
	return binary.BigEndian.Uint32(a[0:4]) ^ binary.BigEndian.Uint32(a[4:8]) ^
		binary.BigEndian.Uint32(a[8:12]) ^ binary.BigEndian.Uint32(a[12:16])
}

// hash32 is the kernel's hash_32: multiply by the 32-bit golden ratio and
// keep the top bits.
func hash32(v uint32, nbits uint) uint32 { return (v * 0x61C88647) >> (32 - nbits) }

// flowPort is the port that sh-port and mh-port hash (ip_vs_sh_get_port):
// the source port for TCP, UDP and SCTP, 0 for anything else.
func flowPort(f *Flow) uint32 {
	switch f.Proto {
	case 6, 17, 132:
		return uint32(f.SrcPort)
	}
	return 0
}

// sipKey is an hsiphash_key_t on a 64-bit kernel.
type sipKey struct{ k0, k1 uint64 }

// hsiphash32 is the kernel's hsiphash(&v, sizeof(v), key) on 64-bit
// machines, where it is SipHash-1-3 truncated to 32 bits (lib/siphash.c:
// HPREAMBLE, the 4-byte tail in b, HPOSTAMBLE).
func hsiphash32(v uint32, k *sipKey) uint32 {
	v0 := uint64(0x736f6d6570736575) ^ k.k0
	v1 := uint64(0x646f72616e646f6d) ^ k.k1
	v2 := uint64(0x6c7967656e657261) ^ k.k0
	v3 := uint64(0x7465646279746573) ^ k.k1
	b := uint64(4)<<56 | uint64(v)
	v3 ^= b
	v0, v1, v2, v3 = siphash.Round(v0, v1, v2, v3)
	v0 ^= b
	v2 ^= 0xff
	v0, v1, v2, v3 = siphash.Round(v0, v1, v2, v3)
	v0, v1, v2, v3 = siphash.Round(v0, v1, v2, v3)
	v0, v1, v2, v3 = siphash.Round(v0, v1, v2, v3)
	return uint32((v0 ^ v1) ^ (v2 ^ v3))
}

// splitmix64 is SplitMix64's output function: a bijective mixer, here the
// core of seeded key derivation and of twos' counter-based generator.
func splitmix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// golden is 2^64 divided by the golden ratio, SplitMix64's increment.
const golden = 0x9e3779b97f4a7c15
