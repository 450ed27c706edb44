package conntrack

import (
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
)

// bucket is one cache line of the hash index: eight slots, each a node index + 1 in its low 32 bits (0:
// empty) and a 24-bit tag from the key's hash above it, so that a lookup compares the tags of eight keys in
// the one line it loads and visits only the entries whose tag matches (another key's tag matches one time
// in 2^23, and costs a needless entry read). The top byte of slot 0 is the bucket's overflow count: how many keys whose probe passed this
// bucket, because it was full, sit in a later one. A lookup stops at the first bucket whose count is 0.
// The count saturates: at 255 it stays, and lookups through the bucket probe a little further than needed.
type bucket [bucketSlots]atomic.Uint64

const (
	bucketSlots  = 8
	slotTagShift = 32
	slotTagBits  = 24
	slotTagMask  = (1<<slotTagBits - 1) << slotTagShift
	slotOvfShift = slotTagShift + slotTagBits
	slotOvfMask  = 0xff << slotOvfShift
	ovfSaturated = 0xff
)

// Sizing of the index: one bucket per keysPerBucket keys of a full table with forward and reverse keys,
// so that slots are at most 62.5% used, about 7% of buckets overflow and 98% of keys sit in their home
// bucket; that is 25.6 bytes per entry. A shard's keys are a binomial draw from the table's, so a shard
// that expects few of them (a small table) also gets room for eight standard deviations above its mean
// (or for every key of the table, if that is less), so that not once in the life of a director does it
// refuse an insert for want of a slot while entries are free.
const keysPerBucket = 5

func bucketsPerShard(capacity, shards int) int {
	keys := 2 * float64(capacity)
	mean := keys / float64(shards)
	slots := min(mean+8*math.Sqrt(mean)+8, keys)
	return max(int(math.Ceil(mean/keysPerBucket)), int(math.Ceil(slots/bucketSlots)), 1)
}

// A key's hash picks its shard with its top bits, its home bucket in the shard with the bits below them
// and its tag with its low bits, so that keys of one bucket have independent tags. A probe that reaches the
// end of the shard wraps to its first bucket: a shard's lock covers every slot its keys can take.

// shardIndex is h's top shardBits bits (none with one shard: Go shifts by 64 to zero).
func (t *Table) shardIndex(h uint64) uint32 { return uint32(h >> (64 - t.shardBits)) }

// home returns the first bucket of h's shard and h's home bucket.
func (t *Table) home(h uint64) (start, b uint64) {
	start = uint64(t.shardIndex(h)) * t.perShard
	local, _ := bits.Mul64(h<<t.shardBits, t.perShard)
	return start, start + local
}

// slotTag is the tag of a key with hash h, in place in a slot word. Its top bit is set, so that an empty
// slot never matches.
func slotTag(h uint64) uint64 {
	return (h&(1<<(slotTagBits-1)-1) | 1<<(slotTagBits-1)) << slotTagShift
}

// slotRef is a slot: bucket index << 3 | slot index.
type slotRef uint64

const noSlot = ^slotRef(0)

func (t *Table) nodeKey(ni uint32) *[5]atomic.Uint64 { return t.entries[ni>>1].key(ni & 1) }

// findLocked returns the node index + 1 of key kw with hash h, or 0. The caller holds the key's shard
// lock, so the slots of the shard hold exactly its live keys, none of which can be removed or reused.
func (t *Table) findLocked(kw *keyWords, h uint64) uint32 {
	start, b := t.home(h)
	tag := slotTag(h)
	for range t.perShard {
		bk := &t.buckets[b]
		for i := range bucketSlots {
			if w := bk[i].Load(); w&slotTagMask == tag && keyEqual(t.nodeKey(uint32(w)-1), kw) {
				return uint32(w)
			}
		}
		if bk[0].Load()>>slotOvfShift == 0 {
			return 0
		}
		if b++; b == start+t.perShard {
			b = start
		}
	}
	return 0
}

// freeSlot returns the first empty slot on the probe of hash h other than except. The caller holds the
// shard lock.
func (t *Table) freeSlot(h uint64, except slotRef) (slotRef, bool) {
	start, b := t.home(h)
	for range t.perShard {
		bk := &t.buckets[b]
		for i := range bucketSlots {
			if uint32(bk[i].Load()) == 0 && slotRef(b<<3|uint64(i)) != except {
				return slotRef(b<<3 | uint64(i)), true
			}
		}
		if b++; b == start+t.perShard {
			b = start
		}
	}
	return noSlot, false
}

// publish puts node ni, of a key with hash h, in slot sl, which freeSlot found on the key's probe. The
// buckets the probe passed count the key first, so a lookup that sees the slot never stops short of it.
func (t *Table) publish(h uint64, sl slotRef, ni uint32) {
	start, b := t.home(h)
	for target := uint64(sl >> 3); b != target; {
		bk := &t.buckets[b]
		if w := bk[0].Load(); w>>slotOvfShift != ovfSaturated {
			bk[0].Store(w + 1<<slotOvfShift)
		}
		if b++; b == start+t.perShard {
			b = start
		}
	}
	s := &t.buckets[sl>>3][sl&7]
	s.Store(s.Load()&slotOvfMask | slotTag(h) | uint64(ni+1))
}

// unpublish takes node ni, of a key with hash h, out of the index, then uncounts it from the buckets its
// probe passed. The caller holds the shard lock.
func (t *Table) unpublish(h uint64, ni uint32) {
	start, b := t.home(h)
	for range t.perShard {
		bk := &t.buckets[b]
		for i := range bucketSlots {
			if w := bk[i].Load(); uint32(w) == ni+1 {
				bk[i].Store(w & slotOvfMask)
				t.uncount(h, b)
				return
			}
		}
		if b++; b == start+t.perShard {
			b = start
		}
	}
	panic(fmt.Sprintf("conntrack: node %d missing from the index", ni))
}

// uncount decrements the overflow counts of the buckets from h's home up to (not including) bucket to.
func (t *Table) uncount(h uint64, to uint64) {
	start, b := t.home(h)
	for b != to {
		bk := &t.buckets[b]
		switch w := bk[0].Load(); w >> slotOvfShift {
		case 0:
			panic(fmt.Sprintf("conntrack: overflow count of bucket %d below zero", b))
		case ovfSaturated:
		default:
			bk[0].Store(w - 1<<slotOvfShift)
		}
		if b++; b == start+t.perShard {
			b = start
		}
	}
}
