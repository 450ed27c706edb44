package sched

import (
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
)

// The locality table of lblc and lblcr maps a destination address to a
// real server (lblc) or to a small set of them (lblcr).
//
// IPVS keeps these in a hash table of 1024 chains that grows without bound;
// a timer collects entries idle for 6 minutes once there are more than
// 16384 of them, and every 30 minutes those idle for a day. Here the table
// is a fixed array of locEntries entries in sets of locWays, allocated when
// the scheduler is built and free of pointers, so the garbage collector
// never scans it and Pick never allocates:
//
//   - an entry idle for locExpire (IPVS's lblc_expiration and
//     lblcr_expiration, 24 hours) is gone: lookups skip it and inserts
//     reuse it, with no timer;
//   - an insert into a full set replaces its least recently used entry,
//     where IPVS would grow and later collect the entries idle for 6
//     minutes.
//
// Readers run lock-free under a per-set sequence counter (a seqlock: every
// field is an atomic, so the race detector agrees); writers take the
// counter as a spinlock for the few stores of an update, never across a
// call out of the table.
const (
	locWays    = 4
	locEntries = 16384 // IPVS's max_size: IP_VS_LBLC_TAB_SIZE * 16
	locSets    = locEntries / locWays
	locExpire  = 24 * 60 * 60 // seconds

	// lblcrMaxSet bounds an lblcr entry's set of real servers, which IPVS
	// lets grow to every real server of the service. A set grows only
	// when its least loaded member is busy; a full one makes room by
	// dropping its most loaded member.
	lblcrMaxSet = 8
)

// locEntry is one entry's key and times. Times are seconds since the
// table's epoch plus 1, so that 0 can mean an empty entry.
type locEntry struct {
	a0, a1 atomic.Uint64 // the destination address
	used   atomic.Uint32 // IPVS's lastuse; 0 = empty
	mod    atomic.Uint32 // lblcr: the set's lastmod
}

type locTable struct {
	k       int             // member slots per entry: 1 for lblc
	seq     []atomic.Uint32 // per set; odd while a writer holds it
	entries []locEntry      // set s at s*locWays
	members []atomic.Uint32 // entry e's at e*k: dest index + 1, newest first, 0 after the last
	key     uint64          // per-table hash key
	clock   func() int64
	epoch   int64
}

func newLocTable(k int, o *options) locTable {
	key := o.seed
	if key == 0 {
		key = rand.Uint64()
	}
	return locTable{
		k:       k,
		seq:     make([]atomic.Uint32, locSets),
		entries: make([]locEntry, locEntries),
		members: make([]atomic.Uint32, locEntries*k),
		key:     key,
		clock:   o.clock,
		epoch:   o.clock(),
	}
}

// now returns the current time in the table's seconds.
func (t *locTable) now() uint32 {
	d := max(t.clock()-t.epoch, 0)
	return uint32(d/1e9) + 1
}

// since returns the seconds from then to now, 0 if then is later (another
// worker may have stored a newer time than this one read).
func since(now, then uint32) uint32 {
	if then >= now {
		return 0
	}
	return now - then
}

// live reports whether an entry last used at used is still there at now.
func live(used, now uint32) bool { return used != 0 && since(now, used) < locExpire }

// locKey is an address as the table stores it.
type locKey struct{ a0, a1 uint64 }

func keyOf(a *[16]byte) locKey {
	return locKey{binary.LittleEndian.Uint64(a[0:8]), binary.LittleEndian.Uint64(a[8:16])}
}

func (t *locTable) setOf(k locKey) int {
	return int(splitmix64(splitmix64(k.a0^t.key)^k.a1) % locSets)
}

// locSnap is what a lookup copies out of an entry.
type locSnap struct {
	mod     uint32
	n       int
	members [lblcrMaxSet]int32 // dest indexes, newest first
}

// spin backs off a waiter on a set's counter: a writer holds it for a few
// stores, but may be preempted meanwhile.
func spin(n *int) {
	if *n++; *n > 32 {
		runtime.Gosched()
	}
}

// lookup copies the live entry for k into snap and marks it used now
// (IPVS's en->lastuse = jiffies). It reports whether there was one.
func (t *locTable) lookup(k locKey, now uint32, snap *locSnap) bool {
	set := t.setOf(k)
	sq := &t.seq[set]
	for n := 0; ; spin(&n) {
		s := sq.Load()
		if s&1 != 0 {
			continue
		}
		e, used := -1, uint32(0)
		for w := range locWays {
			i := set*locWays + w
			en := &t.entries[i]
			if u := en.used.Load(); live(u, now) && en.a0.Load() == k.a0 && en.a1.Load() == k.a1 {
				e, used = i, u
				break
			}
		}
		if e >= 0 {
			snap.mod = t.entries[e].mod.Load()
			snap.n = 0
			ms := t.members[e*t.k : (e+1)*t.k]
			for i := range ms {
				v := ms[i].Load()
				if v == 0 {
					break
				}
				snap.members[snap.n] = int32(v - 1)
				snap.n++
			}
		}
		if sq.Load() != s {
			continue
		}
		if e >= 0 && used < now {
			// Lost to a writer or another toucher: either way the
			// entry is fresh.
			t.entries[e].used.CompareAndSwap(used, now)
		}
		return e >= 0
	}
}

func (t *locTable) lock(set int) {
	sq := &t.seq[set]
	for n := 0; ; spin(&n) {
		if s := sq.Load(); s&1 == 0 && sq.CompareAndSwap(s, s+1) {
			return
		}
	}
}

func (t *locTable) unlock(set int) { t.seq[set].Add(1) }

// find returns the entry holding k in set, live or not, or -1. The caller
// holds the set.
func (t *locTable) find(set int, k locKey) int {
	for w := range locWays {
		i := set*locWays + w
		en := &t.entries[i]
		if en.used.Load() != 0 && en.a0.Load() == k.a0 && en.a1.Load() == k.a1 {
			return i
		}
	}
	return -1
}

// victim returns the entry of set to overwrite: an empty one, else an
// expired one, else the least recently used. The caller holds the set.
func (t *locTable) victim(set int, now uint32) int {
	best, bestUsed := -1, uint32(0)
	for w := range locWays {
		i := set*locWays + w
		u := t.entries[i].used.Load()
		if !live(u, now) {
			return i
		}
		if best < 0 || u < bestUsed {
			best, bestUsed = i, u
		}
	}
	return best
}

// claim makes entry e hold k with the single member d, used and modified
// now. The caller holds its set.
func (t *locTable) claim(e int, k locKey, d int, now uint32) {
	en := &t.entries[e]
	en.a0.Store(k.a0)
	en.a1.Store(k.a1)
	en.mod.Store(now)
	ms := t.members[e*t.k : (e+1)*t.k]
	ms[0].Store(uint32(d) + 1)
	for i := 1; i < len(ms); i++ {
		ms[i].Store(0)
	}
	en.used.Store(now)
}

// set is ip_vs_lblc_new: k maps to d alone from now on.
func (t *locTable) set(k locKey, d int, now uint32) {
	set := t.setOf(k)
	t.lock(set)
	defer t.unlock(set)
	e := t.find(set, k)
	if e >= 0 && live(t.entries[e].used.Load(), now) && t.members[e*t.k].Load() == uint32(d)+1 {
		return
	}
	if e < 0 {
		e = t.victim(set, now)
	}
	t.claim(e, k, d, now)
}

// add is ip_vs_lblcr_new and ip_vs_dest_set_insert: a new entry for k with
// the set {d}, or d added to k's set, in front, unless it is there
// already. A full set first drops evict when it holds it, else its oldest
// member.
func (t *locTable) add(k locKey, d, evict int, now uint32) {
	set := t.setOf(k)
	t.lock(set)
	defer t.unlock(set)
	e := t.find(set, k)
	if e < 0 || !live(t.entries[e].used.Load(), now) {
		if e < 0 {
			e = t.victim(set, now)
		}
		t.claim(e, k, d, now)
		return
	}
	ms := t.members[e*t.k : (e+1)*t.k]
	n := 0
	for ; n < len(ms); n++ {
		v := ms[n].Load()
		if v == 0 {
			break
		}
		if v == uint32(d)+1 {
			return
		}
	}
	if n == len(ms) {
		drop := n - 1
		for i := range ms {
			if ms[i].Load() == uint32(evict)+1 {
				drop = i
			}
		}
		for i := drop; i+1 < n; i++ {
			ms[i].Store(ms[i+1].Load())
		}
		n--
	}
	for i := n; i > 0; i-- {
		ms[i].Store(ms[i-1].Load())
	}
	ms[0].Store(uint32(d) + 1)
	t.entries[e].mod.Store(now)
}

// trim is lblcr's clean-up under the lock: when k's set still has more than
// one member and has not changed for locExpire, drop m from it.
func (t *locTable) trim(k locKey, m int, now uint32) {
	set := t.setOf(k)
	t.lock(set)
	defer t.unlock(set)
	e := t.find(set, k)
	if e < 0 || !live(t.entries[e].used.Load(), now) || !stale(t.entries[e].mod.Load(), now) {
		return
	}
	ms := t.members[e*t.k : (e+1)*t.k]
	if ms[1].Load() == 0 {
		return // one member
	}
	for i := range ms {
		if ms[i].Load() != uint32(m)+1 {
			continue
		}
		for ; i+1 < len(ms); i++ {
			ms[i].Store(ms[i+1].Load())
		}
		ms[len(ms)-1].Store(0)
		t.entries[e].mod.Store(now)
		return
	}
}

// stale reports whether a set last modified at mod is due for lblcr's
// clean-up: time_after(jiffies, lastmod + lblcr_expiration).
func stale(mod, now uint32) bool { return since(now, mod) > locExpire }
