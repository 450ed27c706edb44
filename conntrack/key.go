package conntrack

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
)

// Key identifies one direction of a connection: the forward key is (proto, client, VIP) and the reverse key
// is what the real server's replies carry (proto, RIP, client or local address).
type Key struct {
	Proto   uint8
	SrcAddr [16]byte // IPv4 stored as IPv4-mapped IPv6 (::ffff:a.b.c.d)
	DstAddr [16]byte
	SrcPort uint16
	DstPort uint16
}

// MakeKey builds a Key from netip addresses. IPv4 addresses are stored IPv4-mapped, so a v4 address and its
// mapped v6 form give the same key; zones are dropped.
func MakeKey(proto uint8, src netip.Addr, sport uint16, dst netip.Addr, dport uint16) Key {
	return Key{Proto: proto, SrcAddr: src.As16(), DstAddr: dst.As16(), SrcPort: sport, DstPort: dport}
}

// Src returns the source address and port, with IPv4-mapped addresses unmapped.
func (k *Key) Src() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(k.SrcAddr).Unmap(), k.SrcPort)
}

// Dst returns the destination address and port, with IPv4-mapped addresses unmapped.
func (k *Key) Dst() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(k.DstAddr).Unmap(), k.DstPort)
}

// Reverse returns the key of a packet travelling the other way between the same endpoints.
func (k Key) Reverse() Key {
	k.SrcAddr, k.DstAddr = k.DstAddr, k.SrcAddr
	k.SrcPort, k.DstPort = k.DstPort, k.SrcPort
	return k
}

func (k Key) String() string {
	return fmt.Sprintf("%s %s->%s", protoName(k.Proto), k.Src(), k.Dst())
}

func protoName(p uint8) string {
	switch p {
	case protoTCP:
		return "TCP"
	case protoUDP:
		return "UDP"
	case protoICMP:
		return "ICMP"
	case protoICMPv6:
		return "ICMPv6"
	}
	return fmt.Sprintf("proto-%d", p)
}

// keyWords is a Key packed into the words an entry stores it in, so that readers can load it with atomics
// and compare it word by word.
type keyWords [5]uint64

func packKey(k *Key) keyWords {
	return keyWords{
		binary.LittleEndian.Uint64(k.SrcAddr[0:8]),
		binary.LittleEndian.Uint64(k.SrcAddr[8:16]),
		binary.LittleEndian.Uint64(k.DstAddr[0:8]),
		binary.LittleEndian.Uint64(k.DstAddr[8:16]),
		uint64(k.Proto)<<32 | uint64(k.SrcPort)<<16 | uint64(k.DstPort),
	}
}

func (w *keyWords) unpack(k *Key) {
	binary.LittleEndian.PutUint64(k.SrcAddr[0:8], w[0])
	binary.LittleEndian.PutUint64(k.SrcAddr[8:16], w[1])
	binary.LittleEndian.PutUint64(k.DstAddr[0:8], w[2])
	binary.LittleEndian.PutUint64(k.DstAddr[8:16], w[3])
	k.Proto = uint8(w[4] >> 32)
	k.SrcPort = uint16(w[4] >> 16)
	k.DstPort = uint16(w[4])
}

// Constants of wyhash; any odd constants with well-mixed bits would do.
const (
	hashP0 = 0xa0761d6478bd642f
	hashP1 = 0xe7037ed1a0b428db
	hashP2 = 0x8ebc6af09c88c6e3
	hashP3 = 0x589965cc75374cc3
)

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hash is keyed with a per-table random seed so that clients cannot aim their flows at one bucket. The seed
// goes into a key word, never into a multiplier: a multiplier with few significant bits (some seeds make
// one) would leave the top bits, which pick the shard, barely mixed, and keys that differ only in their
// ports could then crowd into one shard.
func (w *keyWords) hash(seed uint64) uint64 {
	h := mix(w[0]^hashP0, w[1]^seed^hashP1)
	h = mix(h^w[2]^hashP2, w[3]^hashP3)
	return mix(h^w[4]^hashP1, hashP0)
}
