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

// Probe is a key made ready for lookups: packed into the words an entry
// stores and hashed, once. A data path builds it straight from a frame's
// address bytes (Probe4, Probe16), which skips building a Key, and can
// Prefetch the buckets of a whole batch before looking any up.
type Probe struct {
	kw keyWords
	h  uint64
}

// Probe4 prepares the key (proto, src:sport -> dst:dport) of an IPv4
// packet; src and dst are the 4 address bytes as the packet carries them.
func (t *Table) Probe4(proto uint8, src, dst []byte, sport, dport uint16) Probe {
	// The IPv4-mapped form: 10 zero bytes, 0xffff, the address; packed
	// little-endian as packKey does.
	const mapped = 0xffff << 16
	p := Probe{kw: keyWords{
		0, mapped | uint64(binary.LittleEndian.Uint32(src))<<32,
		0, mapped | uint64(binary.LittleEndian.Uint32(dst))<<32,
		uint64(proto)<<32 | uint64(sport)<<16 | uint64(dport),
	}}
	p.h = p.kw.hash(t.seed)
	return p
}

// Probe16 prepares the key of an IPv6 packet; src and dst are the 16
// address bytes as the packet carries them.
func (t *Table) Probe16(proto uint8, src, dst []byte, sport, dport uint16) Probe {
	p := Probe{kw: keyWords{
		binary.LittleEndian.Uint64(src[0:8]), binary.LittleEndian.Uint64(src[8:16]),
		binary.LittleEndian.Uint64(dst[0:8]), binary.LittleEndian.Uint64(dst[8:16]),
		uint64(proto)<<32 | uint64(sport)<<16 | uint64(dport),
	}}
	p.h = p.kw.hash(t.seed)
	return p
}

// ProbeKey prepares k.
func (t *Table) ProbeKey(k *Key) Probe {
	p := Probe{kw: packKey(k)}
	p.h = p.kw.hash(t.seed)
	return p
}

// Key returns the key p was prepared from.
func (p *Probe) Key() Key {
	var k Key
	p.kw.unpack(&k)
	return k
}

// PrefetchBucket and PrefetchEntry bring a lookup's memory into the cache
// ahead of the lookup, so that the misses of a batch of lookups overlap
// instead of following one another, as DPDK's bulk lookups do: call
// PrefetchBucket for every probe of the batch, then PrefetchEntry for
// every probe (its bucket is in the cache by then), then look them up. Go
// has no prefetch instruction; these are loads whose values the caller
// sums and drops, so that nothing waits on them but the sum.
func (t *Table) PrefetchBucket(p *Probe) uint64 {
	_, b := t.home(p.h)
	return t.buckets[b][0].Load()
}

// PrefetchEntry loads the cache lines of the entry p's home bucket points
// to with p's tag, if any (see PrefetchBucket).
func (t *Table) PrefetchEntry(p *Probe) uint64 {
	_, b := t.home(p.h)
	bk := &t.buckets[b]
	tag := slotTag(p.h)
	for i := range bucketSlots {
		if w := bk[i].Load(); w&slotTagMask == tag {
			// The entry's two cache lines: the key, sequence and state
			// words, and the rest of the value.
			e := &t.entries[(uint32(w)-1)>>1]
			return e.seq.Load() + e.val1.Load()
		}
	}
	return 0
}
