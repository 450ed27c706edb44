package conntrack

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Errors returned by Insert.
var (
	ErrFull    = errors.New("conntrack: table full")
	ErrExists  = errors.New("conntrack: key already present")
	ErrBadDest = errors.New("conntrack: real-server id out of range")
)

// FullPolicy says what Insert does when every entry is taken.
type FullPolicy uint8

const (
	// Refuse fails the insert with ErrFull (counted in Stats.FullDrops); the table never drops an entry
	// before it expires or is deleted.
	Refuse FullPolicy = iota
	// EvictOldestIdle makes room by evicting the entry that is cheapest to lose, chosen from a random
	// sample (see Table.Insert): never an ESTABLISHED connection that is still within its timeout. Evictions
	// are counted in Stats.Evicted; an insert that finds nothing to evict fails with ErrFull.
	EvictOldestIdle
)

func (p FullPolicy) String() string {
	switch p {
	case Refuse:
		return "refuse"
	case EvictOldestIdle:
		return "evict-oldest-idle"
	}
	return fmt.Sprintf("FullPolicy(%d)", uint8(p))
}

// Config sizes a Table. Zero fields take their defaults.
type Config struct {
	Capacity   int // most entries (connections) at once, each with up to two keys; default 1<<16
	Shards     int // writer lock domains, a power of two; default 64
	MaxDests   int // real-server ids are < MaxDests; default 4096
	Timeouts   Timeouts
	FullPolicy FullPolicy // default Refuse
	// Clock returns monotonic nanoseconds on the same scale as the now arguments of Insert, Touch and
	// Sweep. Only Range uses it. Default: nanoseconds since New (see Table.Now).
	Clock func() int64
}

const (
	defaultCapacity = 1 << 16
	defaultShards   = 64
	defaultMaxDests = 4096
	maxCapacity     = 1 << 30 // node indexes (2 per entry, plus 1) must fit in 32 bits
	maxShards       = 1 << 16
)

// Value is what the data plane stores with a connection. It is written once at Insert and is opaque to the
// table except Dest, which indexes the per-real-server counters.
type Value struct {
	Service uint32  // service slot of the data plane
	Dest    uint32  // real-server id, < Config.MaxDests
	Flags   uint32  // opaque (forwarding method, ...)
	InPort  uint16  // opaque: interface slot the flow arrived on
	PeerMAC [6]byte // opaque: L2 source of the flow's first packet (next hop for replies)
	// Aux and Ext are opaque words of the data path's own (a SYN-proxied
	// connection's sequence delta and option state); SetAux changes them
	// on a live entry.
	Aux, Ext uint32
}

// Ref is a handle to one incarnation of an entry. Once the entry is removed the handle goes stale, and
// Touch and Delete ignore it even after the slot is reused. The zero Ref is never valid.
type Ref struct {
	idx uint32 // entry index + 1
	gen uint32 // low 32 bits of the entry's sequence counter at the time the handle was made
}

// Valid reports whether r was filled in by the table (it may still be stale).
func (r Ref) Valid() bool { return r.idx != 0 }

// Uint64 packs r into a word, for a cache that keeps it next to a copy of
// the entry (RefFromUint64 unpacks it).
func (r Ref) Uint64() uint64 { return uint64(r.idx)<<32 | uint64(r.gen) }

// RefFromUint64 is the inverse of Ref.Uint64.
func RefFromUint64(v uint64) Ref { return Ref{idx: uint32(v >> 32), gen: uint32(v)} }

// Conn is a snapshot of an entry, filled in by Lookup, Insert and Range without allocating.
type Conn struct {
	Ref   Ref // handle for Touch and Delete
	Dir   Dir // which key matched
	Orig  Key // the forward key (client -> VIP) of the entry
	Value Value
	State State
	// Cached reports the mark SetCached sets: a copy of the entry lives
	// in a cache that the entry's owner must update when it changes.
	Cached bool
}

// Layout of entry.st, the word that Touch updates with one compare-and-swap: state, flags, incarnation and
// deadline change together, so a transition, its timer and its counter move are never torn apart.
const (
	stStateMask = 0xf
	stNoOutput  = 1 << 4 // IPVS's IP_VS_CONN_F_NOOUTPUT: no reply seen yet from a DR/TUN-created entry
	stHasRev    = 1 << 5 // the reverse key is in the table
	stLive      = 1 << 6
	stCached    = 1 << 7 // a copy of the entry lives in a cache (SetCached); kept by Touch
	stGenShift  = 8
	stGenBits   = 17
	stGenMask   = (1<<stGenBits - 1) << stGenShift
	stExpShift  = stGenShift + stGenBits
	stExpMax    = 1<<(64-stExpShift) - 1 // deadline in ms: 39 bits, 17 years of the caller's clock
	stExpMask   = stExpMax << stExpShift
)

// entry is one connection: 128 bytes, two cache lines, so that ten million entries take 1.2 GiB and a
// lookup touches the two lines of one entry, which it loads in parallel. The forward key sits in the first
// line with the sequence and state words, the reverse key in the second with most of the value. Every
// field is an atomic word so that lock-free readers never make a plain read that races with a writer; the
// type holds no Go pointers. Key k of entry i is node 2i+k of the hash index.
type entry struct {
	seq  atomic.Uint64    // seqlock: odd while Insert writes the entry; +2 per incarnation
	st   atomic.Uint64    // see stStateMask ...
	key0 [5]atomic.Uint64 // forward key
	val0 atomic.Uint64    // Value, packed: Service, Dest
	key1 [5]atomic.Uint64 // reverse key
	val1 atomic.Uint64    // Flags, InPort, PeerMAC[0:2]
	val2 atomic.Uint64    // PeerMAC[2:6], Aux
	free atomic.Uint32    // free-list link while the entry is free: next entry index + 1
	ext  atomic.Uint32    // Ext
}

func (e *entry) key(which uint32) *[5]atomic.Uint64 {
	if which == 0 {
		return &e.key0
	}
	return &e.key1
}

// shard is one writer lock domain: a range of buckets, a free list and counters, on two cache lines of
// their own.
type shard struct {
	mu        sync.Mutex
	free      atomic.Uint64 // free-list head: ABA tag << 32 | entry index + 1
	live      atomic.Int64
	inserts   atomic.Uint64
	deletes   atomic.Uint64
	expired   atomic.Uint64
	evicted   atomic.Uint64
	fullDrops atomic.Uint64
	exists    atomic.Uint64
	_         [128 - 72]byte
}

type destCounters struct {
	active   atomic.Int64
	inactive atomic.Int64
}

// paddedUint64 keeps a contended word away from the read-mostly fields around it.
type paddedUint64 struct {
	_ [64]byte
	atomic.Uint64
	_ [56]byte
}

// Table is the connection table. All methods are safe for concurrent use.
type Table struct {
	entries  []entry  // in mem[0]
	buckets  []bucket // in mem[1]
	shards   []shard
	dests    []destCounters
	timeouts [numStates]atomic.Int64 // nanoseconds, by state

	seed      uint64
	perShard  uint64 // buckets per shard
	shardBits uint   // log2(len(shards))
	policy    FullPolicy
	clock     func() int64
	mem       [2][]byte
	cleanup   runtime.Cleanup

	cursor paddedUint64 // next entry index Sweep looks at
}

// New allocates a table with all its memory up front.
//
// The entries and the hash index are mapped outside the Go heap (on Linux) and released when the Table is
// garbage collected.
func New(cfg Config) (*Table, error) {
	if cfg.Capacity == 0 {
		cfg.Capacity = defaultCapacity
	}
	if cfg.Shards == 0 {
		cfg.Shards = defaultShards
	}
	if cfg.MaxDests == 0 {
		cfg.MaxDests = defaultMaxDests
	}
	switch {
	case cfg.Capacity < 0 || cfg.Capacity > maxCapacity:
		return nil, fmt.Errorf("conntrack: capacity %d out of range [1, %d]", cfg.Capacity, maxCapacity)
	case cfg.Shards < 0 || cfg.Shards > maxShards || cfg.Shards&(cfg.Shards-1) != 0:
		return nil, fmt.Errorf("conntrack: shards %d is not a power of two <= %d", cfg.Shards, maxShards)
	case cfg.MaxDests < 0 || uint64(cfg.MaxDests) > 1<<32:
		return nil, fmt.Errorf("conntrack: max dests %d out of range", cfg.MaxDests)
	case cfg.FullPolicy > EvictOldestIdle:
		return nil, fmt.Errorf("conntrack: unknown full policy %d", cfg.FullPolicy)
	}
	return newTable(cfg, bucketsPerShard(cfg.Capacity, cfg.Shards))
}

// newTable builds a table of a validated config with perShard buckets in each shard.
func newTable(cfg Config, perShard int) (*Table, error) {
	nb := perShard * cfg.Shards
	t := &Table{
		shards:    make([]shard, cfg.Shards),
		dests:     make([]destCounters, cfg.MaxDests),
		seed:      rand.Uint64(),
		perShard:  uint64(perShard),
		shardBits: uint(bits.TrailingZeros(uint(cfg.Shards))),
		policy:    cfg.FullPolicy,
		clock:     cfg.Clock,
	}
	var err error
	if t.mem[0], err = mapMemory(cfg.Capacity * int(unsafe.Sizeof(entry{}))); err != nil {
		return nil, fmt.Errorf("conntrack: %d entries: %w", cfg.Capacity, err)
	}
	if t.mem[1], err = mapMemory(nb * int(unsafe.Sizeof(bucket{}))); err != nil {
		_ = unmapMemory(t.mem[0])
		return nil, fmt.Errorf("conntrack: %d buckets: %w", nb, err)
	}
	t.entries = unsafe.Slice((*entry)(unsafe.Pointer(unsafe.SliceData(t.mem[0]))), cfg.Capacity)
	t.buckets = unsafe.Slice((*bucket)(unsafe.Pointer(unsafe.SliceData(t.mem[1]))), nb)
	// Every method that touches the mapped arrays keeps t alive until it is done with them.
	t.cleanup = runtime.AddCleanup(t, func(mem [2][]byte) {
		for _, m := range mem {
			_ = unmapMemory(m)
		}
	}, t.mem)

	if t.clock == nil {
		start := time.Now()
		t.clock = func() int64 { return int64(time.Since(start)) }
	}
	for s, d := range defaultStateTimeouts() {
		t.timeouts[s].Store(int64(d))
	}
	t.SetTimeouts(cfg.Timeouts)
	// Each shard's free list starts with an equal share of the entries, lowest index on top.
	for s := range t.shards {
		lo, hi := s*cfg.Capacity/cfg.Shards, (s+1)*cfg.Capacity/cfg.Shards
		for i := lo; i < hi-1; i++ {
			t.entries[i].free.Store(uint32(i + 2))
		}
		if lo < hi {
			t.shards[s].free.Store(uint64(lo + 1))
		}
	}
	return t, nil
}

// unmap releases the table's memory now rather than when it is collected; the table must not be used
// again. Tests that build many big tables in a row use it.
func (t *Table) unmap() {
	t.cleanup.Stop()
	for _, m := range t.mem {
		_ = unmapMemory(m)
	}
	t.entries, t.buckets, t.mem = nil, nil, [2][]byte{}
}

// Now returns the default Clock: monotonic nanoseconds since New.
func (t *Table) Now() int64 { return t.clock() }

// Capacity returns the most entries the table holds.
func (t *Table) Capacity() int { return len(t.entries) }

// FullPolicy returns the policy Insert follows when the table is full.
func (t *Table) FullPolicy() FullPolicy { return t.policy }

// SetTimeouts changes the settable timeouts, like ipvsadm --set: a zero (or negative) field leaves that
// timeout as it is. New timeouts apply from each entry's next transition or refresh on.
func (t *Table) SetTimeouts(to Timeouts) {
	set := [...]struct {
		s State
		d time.Duration
	}{{Established, to.TCP}, {FinWait, to.TCPFin}, {Normal, to.UDP}, {NormalICMP, to.ICMP}}
	for _, x := range set {
		if x.d > 0 {
			t.timeouts[x.s].Store(int64(x.d))
		}
	}
}

// Timeouts returns the current settable timeouts.
func (t *Table) Timeouts() Timeouts {
	return Timeouts{
		TCP:    time.Duration(t.timeouts[Established].Load()),
		TCPFin: time.Duration(t.timeouts[FinWait].Load()),
		UDP:    time.Duration(t.timeouts[Normal].Load()),
		ICMP:   time.Duration(t.timeouts[NormalICMP].Load()),
	}
}

// StateTimeout returns the current timeout of state s.
func (t *Table) StateTimeout(s State) time.Duration {
	if s >= numStates {
		return 0
	}
	return time.Duration(t.timeouts[s].Load())
}

// lockPair locks shards i and j in index order, so that two writers locking the same pair cannot
// deadlock. second is nil when i == j.
func (t *Table) lockPair(i, j uint32) (first, second *shard) {
	if i > j {
		i, j = j, i
	}
	first = &t.shards[i]
	first.mu.Lock()
	if j != i {
		second = &t.shards[j]
		second.mu.Lock()
	}
	return first, second
}

func unlockPair(first, second *shard) {
	if second != nil {
		second.mu.Unlock()
	}
	first.mu.Unlock()
}

func genField(seq uint64) uint64 { return (seq >> 1 << stGenShift) & stGenMask }

// deadlineMs rounds up, so an entry never expires before its timeout has fully passed (at most 1 ms late).
func deadlineMs(now, timeout int64) uint64 {
	d := now + timeout
	if d <= 0 {
		return 0
	}
	return min((uint64(d)+999_999)/1_000_000, stExpMax)
}

func nowMs(now int64) uint64 {
	if now <= 0 {
		return 0
	}
	return min(uint64(now)/1_000_000, stExpMax)
}

func packValue(v *Value) (w0, w1, w2 uint64) {
	w0 = uint64(v.Service) | uint64(v.Dest)<<32
	w1 = uint64(v.Flags) | uint64(v.InPort)<<32 | uint64(v.PeerMAC[0])<<48 | uint64(v.PeerMAC[1])<<56
	w2 = uint64(v.PeerMAC[2]) | uint64(v.PeerMAC[3])<<8 | uint64(v.PeerMAC[4])<<16 | uint64(v.PeerMAC[5])<<24 |
		uint64(v.Aux)<<32
	return w0, w1, w2
}

func unpackValue(v *Value, w0, w1, w2 uint64, ext uint32) {
	v.Aux = uint32(w2 >> 32)
	v.Ext = ext
	v.Service = uint32(w0)
	v.Dest = uint32(w0 >> 32)
	v.Flags = uint32(w1)
	v.InPort = uint16(w1 >> 32)
	v.PeerMAC = [6]byte{byte(w1 >> 48), byte(w1 >> 56), byte(w2), byte(w2 >> 8), byte(w2 >> 16), byte(w2 >> 24)}
}

func loadKey(k *[5]atomic.Uint64) keyWords {
	return keyWords{k[0].Load(), k[1].Load(), k[2].Load(), k[3].Load(), k[4].Load()}
}

func keyEqual(k *[5]atomic.Uint64, kw *keyWords) bool {
	// The word with the ports differs most often between flows: compare it first.
	return k[4].Load() == kw[4] && k[0].Load() == kw[0] && k[1].Load() == kw[1] && k[2].Load() == kw[2] &&
		k[3].Load() == kw[3]
}

// Lookup finds the entry that k is the forward or reverse key of and fills c; c is left alone on a miss.
// It takes no lock, does not allocate and never retries: it reads one bucket (a cache line) and the
// entries whose tags match there, and goes on to the next bucket only if keys have overflowed past this
// one.
func (t *Table) Lookup(k *Key, c *Conn) bool {
	kw := packKey(k)
	h := kw.hash(t.seed)
	ok := t.lookup(&kw, h, k, c)
	runtime.KeepAlive(t)
	return ok
}

// LookupProbe is Lookup for a prepared key.
func (t *Table) LookupProbe(p *Probe, c *Conn) bool {
	ok := t.lookup(&p.kw, p.h, nil, c)
	runtime.KeepAlive(t)
	return ok
}

// lookup is Lookup once the key is hashed. A key that is in the table for the whole lookup is found: its
// slot word does not change, and every bucket its probe passed counts it in its overflow count. A slot
// read here may be stale, and its entry removed or reused since; the entry's words are only used when its
// sequence counter shows they belong to one incarnation, which has the key and is live.
func (t *Table) lookup(kw *keyWords, h uint64, k *Key, c *Conn) bool {
	start, b := t.home(h)
	tag := slotTag(h)
	for range t.perShard {
		bk := &t.buckets[b]
		w0 := bk[0].Load()
		if w0&slotTagMask == tag && t.match(uint32(w0)-1, kw, k, c) {
			return true
		}
		for i := 1; i < bucketSlots; i++ {
			if w := bk[i].Load(); w&slotTagMask == tag && t.match(uint32(w)-1, kw, k, c) {
				return true
			}
		}
		if w0>>slotOvfShift == 0 {
			return false
		}
		if b++; b == start+t.perShard {
			b = start
		}
	}
	return false
}

// match reports whether node ni holds kw in a live incarnation, and fills c from that incarnation if so.
func (t *Table) match(ni uint32, kw *keyWords, k *Key, c *Conn) bool {
	e, which := &t.entries[ni>>1], ni&1
	s := e.seq.Load()
	if s&1 != 0 || !keyEqual(e.key(which), kw) {
		return false
	}
	w := e.st.Load()
	// Ext before Aux (in v2): see setAux.
	ext := e.ext.Load()
	v0, v1, v2 := e.val0.Load(), e.val1.Load(), e.val2.Load()
	var orig keyWords
	if which == 1 {
		orig = loadKey(&e.key0)
	}
	// A reverse key is only the entry's if this incarnation has one: a reused entry keeps the words of
	// its previous incarnation's reverse key.
	if e.seq.Load() != s || w&stLive == 0 || (which == 1 && w&stHasRev == 0) {
		return false
	}
	c.Ref = Ref{idx: ni>>1 + 1, gen: uint32(s)}
	c.Dir = Dir(which)
	switch {
	case which == 1:
		orig.unpack(&c.Orig)
	case k != nil:
		c.Orig = *k
	default:
		kw.unpack(&c.Orig)
	}
	unpackValue(&c.Value, v0, v1, v2, ext)
	c.State = State(w & stStateMask)
	c.Cached = w&stCached != 0
	return true
}

// fillLocked fills c from node ni, which the caller's shard lock keeps from being removed.
func (t *Table) fillLocked(c *Conn, ni uint32) {
	e := &t.entries[ni>>1]
	c.Ref = Ref{idx: ni>>1 + 1, gen: uint32(e.seq.Load())}
	c.Dir = Dir(ni & 1)
	orig := loadKey(&e.key0)
	orig.unpack(&c.Orig)
	ext := e.ext.Load()
	unpackValue(&c.Value, e.val0.Load(), e.val1.Load(), e.val2.Load(), ext)
	w := e.st.Load()
	c.State = State(w & stStateMask)
	c.Cached = w&stCached != 0
}

// allocRounds bounds how many times alloc looks again when entries were freed or taken while it looked.
// A round fails only if another writer moved entries in the microsecond it took, so with a few writers
// at full capacity a spurious ErrFull takes many rounds in a row.
const allocRounds = 16

// alloc pops a free entry, from shard s's free list if it has one and from the other shards' otherwise.
// It reports the table full only if every list was empty at one moment: a pass that finds them all empty
// is followed by a second that must find every head as the first left it (each push and pop changes a
// head's tag, upwards), or an entry freed into a list the first pass had already looked at would be
// missed.
func (t *Table) alloc(s uint32) (uint32, bool) {
	n := uint32(len(t.shards))
	for range allocRounds {
		var tags uint64
		for pass := range 2 {
			for i := range n {
				ei, ok, head := t.pop(&t.shards[(s+i)&(n-1)])
				if ok {
					return ei, true
				}
				if pass == 0 {
					tags += head >> 32
				} else {
					tags -= head >> 32
				}
			}
		}
		if tags == 0 {
			return 0, false
		}
	}
	return 0, false
}

// pop takes the top of a shard's free list, or returns the empty head it found. The head carries a tag
// that every push and pop changes, so a pop that read a head which has since been popped and pushed back
// fails its compare-and-swap (no ABA). A pop may come from another shard than the one whose lock its
// caller holds, hence the CAS.
func (t *Table) pop(sh *shard) (ei uint32, ok bool, head uint64) {
	for {
		old := sh.free.Load()
		top := uint32(old)
		if top == 0 {
			return 0, false, old
		}
		next := t.entries[top-1].free.Load()
		if sh.free.CompareAndSwap(old, (old>>32+1)<<32|uint64(next)) {
			return top - 1, true, 0
		}
	}
}

// release pushes entry ei on shard s's free list.
func (t *Table) release(ei uint32, s uint32) {
	sh := &t.shards[s]
	for {
		old := sh.free.Load()
		t.entries[ei].free.Store(uint32(old))
		if sh.free.CompareAndSwap(old, (old>>32+1)<<32|uint64(ei+1)) {
			return
		}
	}
}

func (t *Table) countDest(dest uint32, s State, delta int64) {
	d := &t.dests[dest]
	if s.Active() {
		d.active.Add(delta)
	} else {
		d.inactive.Add(delta)
	}
}

// Insert adds an entry with forward key fwd and, for NAT and FullNAT, reverse key rev (nil for DR/TUN),
// and runs the state machine for the packet that opens it: a TCP SYN from the client gives SYN_RECV, as in
// IPVS; an entry created with dir InputOnly stays on IPVS's INPUT_ONLY table until a reply (Output) is seen.
// now is monotonic nanoseconds from the caller's clock. On success c (if not nil) describes the new entry.
//
// When every entry is taken, the table's FullPolicy decides. Refuse fails the insert. EvictOldestIdle
// samples a few entries at random (an approximate LRU, as Redis evicts) and evicts, of those that may be
// evicted, the one whose deadline comes first: for entries in one state that is the one idle longest. An
// entry that has expired may always be evicted; an ESTABLISHED one that has not may never be, so a flood
// of new flows (a SYN flood) displaces embryonic, closing and UDP entries but no live connection. The work
// is bounded: one sample and one eviction per insert.
//
// Errors: ErrFull when the table is full and nothing is evicted (counted in Stats.FullDrops); ErrExists
// when fwd or rev is already present, with c filled from the entry that holds it (two workers racing on
// one SYN is normal); ErrBadDest when v.Dest >= Config.MaxDests. A rev equal to fwd is ignored.
func (t *Table) Insert(fwd *Key, rev *Key, v *Value, proto uint8, tcpFlags uint8, dir PacketDir, now int64, c *Conn) error {
	err := t.insert(fwd, rev, v, proto, tcpFlags, dir, now, c)
	runtime.KeepAlive(t)
	return err
}

func (t *Table) insert(fwd *Key, rev *Key, v *Value, proto uint8, tcpFlags uint8, dir PacketDir, now int64, c *Conn) error {
	if uint64(v.Dest) >= uint64(len(t.dests)) {
		return fmt.Errorf("insert %v: dest %d >= %d: %w", *fwd, v.Dest, len(t.dests), ErrBadDest)
	}
	fw := packKey(fwd)
	fh := fw.hash(t.seed)
	hasRev := rev != nil && *rev != *fwd
	var rw keyWords
	rh := fh
	if hasRev {
		rw = packKey(rev)
		rh = rw.hash(t.seed)
	}
	fs, rs := t.shardIndex(fh), t.shardIndex(rh)
	fsh := &t.shards[fs]

	first, second := t.lockPair(fs, rs)
	if t.existsLocked(&fw, fh, &rw, rh, hasRev, c) {
		unlockPair(first, second)
		fsh.exists.Add(1)
		return ErrExists
	}
	ei, ok := t.alloc(fs)
	if !ok && t.policy == EvictOldestIdle {
		// The victim's shards may be any: take their locks with none of ours held, then start over.
		unlockPair(first, second)
		if ei, ok = t.evict(now); !ok {
			fsh.fullDrops.Add(1)
			return ErrFull
		}
		first, second = t.lockPair(fs, rs)
		if t.existsLocked(&fw, fh, &rw, rh, hasRev, c) {
			unlockPair(first, second)
			t.release(ei, fs)
			fsh.exists.Add(1)
			return ErrExists
		}
	}
	if !ok {
		unlockPair(first, second)
		fsh.fullDrops.Add(1)
		return ErrFull
	}
	fslot, ok := t.freeSlot(fh, noSlot)
	rslot := noSlot
	if ok && hasRev {
		rslot, ok = t.freeSlot(rh, fslot)
	}
	if !ok {
		// Every slot the key may take is used: only possible if the shard holds far more keys than its
		// share, which a keyed hash does not let clients arrange.
		unlockPair(first, second)
		t.release(ei, fs)
		fsh.fullDrops.Add(1)
		return ErrFull
	}

	state := initialState(proto)
	noOutput := dir == InputOnly
	if state == None {
		state, noOutput = nextTCPState(None, noOutput, tcpFlags, dir)
	} else {
		noOutput = false
	}
	e := &t.entries[ei]
	seq := e.seq.Load() + 2
	w := uint64(state) | stLive | genField(seq) | deadlineMs(now, t.timeouts[state].Load())<<stExpShift
	if noOutput {
		w |= stNoOutput
	}
	if hasRev {
		w |= stHasRev
	}
	e.seq.Store(seq - 1)
	e.st.Store(w)
	w0, w1, w2 := packValue(v)
	e.val0.Store(w0)
	e.val1.Store(w1)
	e.val2.Store(w2)
	e.ext.Store(v.Ext)
	for i, x := range fw {
		e.key0[i].Store(x)
	}
	if hasRev {
		for i, x := range rw {
			e.key1[i].Store(x)
		}
	}
	e.seq.Store(seq)

	// Count before publishing: a Touch on the new entry may move its counter right after.
	t.countDest(v.Dest, state, 1)
	fsh.live.Add(1)
	fsh.inserts.Add(1)
	if hasRev {
		t.publish(rh, rslot, ei<<1+1)
	}
	t.publish(fh, fslot, ei<<1)
	unlockPair(first, second)

	if c != nil {
		c.Ref = Ref{idx: ei + 1, gen: uint32(seq)}
		c.Dir = DirOriginal
		c.Orig = *fwd
		c.Value = *v
		c.State = state
	}
	return nil
}

// existsLocked looks for fwd and rev under their shards' locks and fills c (if not nil) from the entry
// that holds either.
func (t *Table) existsLocked(fw *keyWords, fh uint64, rw *keyWords, rh uint64, hasRev bool, c *Conn) bool {
	n := t.findLocked(fw, fh)
	if n == 0 && hasRev {
		n = t.findLocked(rw, rh)
	}
	if n != 0 && c != nil {
		t.fillLocked(c, n-1)
	}
	return n != 0
}

// Touch runs the state machine for one packet of the connection (its TCP flags and direction) and re-arms
// the entry's timer with the new state's timeout, as IPVS does on every packet. It takes no lock and does
// not allocate. It returns the new state, or None if ref is stale (no transition ever leads to None).
func (t *Table) Touch(ref Ref, tcpFlags uint8, dir PacketDir, now int64) State {
	st := t.touch(ref, tcpFlags, dir, now)
	runtime.KeepAlive(t)
	return st
}

func (t *Table) touch(ref Ref, tcpFlags uint8, dir PacketDir, now int64) State {
	ei := ref.idx - 1
	if ei >= uint32(len(t.entries)) {
		return None
	}
	e := &t.entries[ei]
	if uint32(e.seq.Load()) != ref.gen {
		return None
	}
	// Read before the CAS: if the slot is reused in between, the CAS fails on the generation.
	dest := uint32(e.val0.Load() >> 32)
	gen := genField(uint64(ref.gen))
	for {
		w := e.st.Load()
		if w&stLive == 0 || w&stGenMask != gen {
			return None
		}
		cur := State(w & stStateMask)
		next, noOutput := cur, w&stNoOutput != 0
		if cur < numTCPStates {
			next, noOutput = nextTCPState(cur, noOutput, tcpFlags, dir)
		}
		nw := w&^(stStateMask|stNoOutput|stExpMask) | uint64(next) |
			deadlineMs(now, t.timeouts[next].Load())<<stExpShift
		if noOutput {
			nw |= stNoOutput
		}
		if nw == w {
			return next
		}
		if e.st.CompareAndSwap(w, nw) {
			if cur.Active() != next.Active() {
				t.countDest(dest, next, 1)
				t.countDest(dest, cur, -1)
			}
			return next
		}
	}
}

// SetCached sets or clears the entry's cached mark (Conn.Cached), which
// Touch keeps: its owner's note that a copy of the entry lives elsewhere
// (the data path's XDP fast path). It returns false if ref is stale.
func (t *Table) SetCached(ref Ref, on bool) bool {
	ok := t.update(ref, func(w uint64) uint64 {
		if on {
			return w | stCached
		}
		return w &^ stCached
	})
	runtime.KeepAlive(t)
	return ok
}

// Refresh moves the entry's deadline to its state's timeout after now, as
// Touch does for a packet seen at now, without a state transition; a
// deadline already later stays. It is how activity seen elsewhere (the
// XDP fast path's last-seen stamps) keeps an entry alive. It returns false
// if ref is stale.
func (t *Table) Refresh(ref Ref, now int64) bool {
	ok := t.update(ref, func(w uint64) uint64 {
		d := deadlineMs(now, t.timeouts[State(w&stStateMask)].Load())
		if d <= w>>stExpShift {
			return w
		}
		return w&^stExpMask | d<<stExpShift
	})
	runtime.KeepAlive(t)
	return ok
}

// update applies fn to the live incarnation ref names, with a
// compare-and-swap; fn must keep the state, liveness and generation.
func (t *Table) update(ref Ref, fn func(w uint64) uint64) bool {
	ei := ref.idx - 1
	if ei >= uint32(len(t.entries)) {
		return false
	}
	e := &t.entries[ei]
	if uint32(e.seq.Load()) != ref.gen {
		return false
	}
	gen := genField(uint64(ref.gen))
	for {
		w := e.st.Load()
		if w&stLive == 0 || w&stGenMask != gen {
			return false
		}
		nw := fn(w)
		if nw == w || e.st.CompareAndSwap(w, nw) {
			return true
		}
	}
}

// SetAux sets the Aux and Ext words of the live incarnation ref names
// (Value.Aux, Value.Ext), under the locks of its keys' shards so that an
// incarnation that replaced it is never written. A lookup sees both new
// words once SetAux returns; one racing with it that sees the new Ext sees
// the new Aux too, so that Ext can say when Aux is ready. The data path
// writes them once per connection (a SYN proxy's handshake with the real
// server). It returns false if ref is stale.
func (t *Table) SetAux(ref Ref, aux, ext uint32) bool {
	ok := t.setAux(ref, aux, ext)
	runtime.KeepAlive(t)
	return ok
}

func (t *Table) setAux(ref Ref, aux, ext uint32) bool {
	ei := ref.idx - 1
	if ei >= uint32(len(t.entries)) {
		return false
	}
	l, ok := t.lockIncarnation(ei, ref.gen)
	if !ok {
		return false
	}
	defer unlockPair(l.first, l.second)
	e := l.e
	if e.st.Load()&stLive == 0 {
		return false
	}
	// Aux, then Ext, which readers load first: a reader that sees the
	// new Ext sees the new Aux.
	e.val2.Store(e.val2.Load()&0xffffffff | uint64(aux)<<32)
	e.ext.Store(ext)
	return true
}

// lockedEntry is an entry whose keys' shard locks are held, with its keys'
// hashes.
type lockedEntry struct {
	e             *entry
	fh, rh        uint64 // rh == fh without a reverse key
	first, second *shard // for unlockPair
}

// lockIncarnation takes the shard locks of both keys of incarnation gen of
// entry ei, if that incarnation is live: under them it cannot be removed or
// replaced. If the entry is reused before the locks are taken its keys may
// be another incarnation's; the sequence check under the locks then fails,
// and nothing is held.
func (t *Table) lockIncarnation(ei, gen uint32) (lockedEntry, bool) {
	e := &t.entries[ei]
	s := e.seq.Load()
	if uint32(s) != gen || s&1 != 0 {
		return lockedEntry{}, false
	}
	w := e.st.Load()
	if w&stLive == 0 || w&stGenMask != genField(s) {
		return lockedEntry{}, false
	}
	fk := loadKey(&e.key0)
	l := lockedEntry{e: e, fh: fk.hash(t.seed)}
	l.rh = l.fh
	if w&stHasRev != 0 {
		rk := loadKey(&e.key1)
		l.rh = rk.hash(t.seed)
	}
	l.first, l.second = t.lockPair(t.shardIndex(l.fh), t.shardIndex(l.rh))
	if e.seq.Load() != s {
		unlockPair(l.first, l.second)
		return lockedEntry{}, false
	}
	return l, true
}

// Delete removes the entry ref points to, both of its keys. It returns false if ref is stale.
func (t *Table) Delete(ref Ref) bool {
	ei := ref.idx - 1
	ok := ei < uint32(len(t.entries)) && t.remove(ei, ref.gen, removeDelete, 0, 0)
	runtime.KeepAlive(t)
	return ok
}

// Why remove takes an entry out.
const (
	removeDelete = iota
	removeExpire // only if it has expired at now
	removeEvict  // only if its state word is still the one the victim was chosen by; keep the entry
)

// remove takes out incarnation gen of entry ei, for the reason why. The removal happens at the CAS that
// clears stLive, under the shard locks of both keys: a Touch racing with it either lands before (and the
// CAS retries, or for an eviction gives up) or finds the entry dead. An evicted entry is not freed: the
// caller reuses it.
func (t *Table) remove(ei uint32, gen uint32, why int, now int64, want uint64) bool {
	l, ok := t.lockIncarnation(ei, gen)
	if !ok {
		return false
	}
	e, fh, rh, first, second := l.e, l.fh, l.rh, l.first, l.second
	fs := t.shardIndex(fh)
	var w uint64
	nm := nowMs(now)
	for {
		w = e.st.Load()
		if w&stLive == 0 || (why == removeExpire && w>>stExpShift > nm) || (why == removeEvict && w != want) {
			unlockPair(first, second)
			return false
		}
		if e.st.CompareAndSwap(w, w&^stLive) {
			break
		}
	}
	dest := uint32(e.val0.Load() >> 32)
	t.countDest(dest, State(w&stStateMask), -1)
	t.unpublish(fh, ei<<1)
	if w&stHasRev != 0 {
		t.unpublish(rh, ei<<1+1)
	}
	fsh := &t.shards[fs]
	fsh.live.Add(-1)
	switch why {
	case removeDelete:
		fsh.deletes.Add(1)
	case removeExpire:
		fsh.expired.Add(1)
	case removeEvict:
		fsh.evicted.Add(1)
	}
	unlockPair(first, second)
	if why != removeEvict {
		t.release(ei, fs)
	}
	return true
}

// evictSamples is how many entries an eviction looks at. With half the table ESTABLISHED, all sixteen are
// ESTABLISHED (and the insert is refused) once in 65536 inserts.
const evictSamples = 16

// evict picks a victim among evictSamples random entries (all of them in a table that small) and removes
// it, keeping the entry for the caller. The victim is the evictable sample with the earliest deadline;
// an ESTABLISHED entry is evictable only once it has expired. It fails if no sample is evictable or the
// victim changed before it could be taken (it was touched: it is not idle).
func (t *Table) evict(now int64) (uint32, bool) {
	nm := nowMs(now)
	n := uint32(len(t.entries))
	best, bestW, bestSeq := uint32(0), uint64(0), uint64(0)
	bestExp := uint64(stExpMax) + 1
	consider := func(ei uint32) {
		e := &t.entries[ei]
		s := e.seq.Load()
		w := e.st.Load()
		exp := w >> stExpShift
		if s&1 != 0 || w&stLive == 0 || w&stGenMask != genField(s) ||
			(State(w&stStateMask) == Established && exp > nm) || exp >= bestExp {
			return
		}
		best, bestW, bestSeq, bestExp = ei, w, s, exp
	}
	if n <= evictSamples {
		for ei := range n {
			consider(ei)
		}
	} else {
		for range evictSamples {
			consider(rand.Uint32N(n))
		}
	}
	if bestExp > stExpMax || !t.remove(best, uint32(bestSeq), removeEvict, now, bestW) {
		return 0, false
	}
	return best, true
}

// Sweep looks at the next budget entry slots after where the previous sweep stopped and removes those
// whose deadline has passed at now; it returns how many it removed. Sweeps from several goroutines claim
// disjoint slots. Its cost is bounded by budget whatever the table holds: one word of each slot it looks at
// (the slots are consecutive, so the hardware prefetches them), and a removal for each expired one.
// Calling it with a small budget per worker batch keeps expiry incremental.
func (t *Table) Sweep(now int64, budget int) int {
	n := t.sweep(now, budget)
	runtime.KeepAlive(t)
	return n
}

func (t *Table) sweep(now int64, budget int) int {
	n := uint64(len(t.entries))
	if budget <= 0 || n == 0 {
		return 0
	}
	budget = int(min(uint64(budget), n))
	start := (t.cursor.Add(uint64(budget)) - uint64(budget)) % n
	nm := nowMs(now)
	removed := 0
	for i, ei := 0, start; i < budget; i++ {
		e := &t.entries[ei]
		if w := e.st.Load(); w&stLive != 0 && w>>stExpShift <= nm {
			if s := e.seq.Load(); s&1 == 0 && genField(s) == w&stGenMask && t.remove(uint32(ei), uint32(s), removeExpire, now, 0) {
				removed++
			}
		}
		if ei++; ei == n {
			ei = 0
		}
	}
	return removed
}

// DestConns returns the active (ESTABLISHED) and inactive (every other state, UDP included) connections
// of real server dest. The counts are exact once concurrent transitions have finished; while one is in
// flight a count may be off by one for a moment.
func (t *Table) DestConns(dest uint32) (active, inactive int64) {
	if uint64(dest) >= uint64(len(t.dests)) {
		return 0, 0
	}
	d := &t.dests[dest]
	return d.active.Load(), d.inactive.Load()
}

// Len returns the number of entries.
func (t *Table) Len() int {
	var n int64
	for i := range t.shards {
		n += t.shards[i].live.Load()
	}
	return int(n)
}

// Stats are the table's counters since New.
type Stats struct {
	Inserts, Deletes, Expired, FullDrops, Exists uint64
	Evicted                                      uint64 // entries removed by EvictOldestIdle to make room
	Entries                                      int
}

// Stats sums the per-shard counters.
func (t *Table) Stats() Stats {
	var st Stats
	var live int64
	for i := range t.shards {
		sh := &t.shards[i]
		st.Inserts += sh.inserts.Load()
		st.Deletes += sh.deletes.Load()
		st.Expired += sh.expired.Load()
		st.Evicted += sh.evicted.Load()
		st.FullDrops += sh.fullDrops.Load()
		st.Exists += sh.exists.Load()
		live += sh.live.Load()
	}
	st.Entries = int(live)
	return st
}

// Range calls fn for every live entry with the time left until it expires (by Config.Clock; negative for
// an expired entry not yet swept), until fn returns false. c is reused between calls. It takes no locks; an
// entry inserted or removed during the walk may or may not be seen. Not for the packet path.
func (t *Table) Range(fn func(c *Conn, expiresIn time.Duration) bool) {
	t.rangeEntries(fn)
	runtime.KeepAlive(t)
}

func (t *Table) rangeEntries(fn func(c *Conn, expiresIn time.Duration) bool) {
	var c Conn
	now := t.clock()
	for ei := range t.entries {
		e := &t.entries[ei]
		for range 4 {
			s := e.seq.Load()
			if s&1 != 0 {
				continue
			}
			w := e.st.Load()
			if w&stLive == 0 {
				break
			}
			orig := loadKey(&e.key0)
			ext := e.ext.Load()
			v0, v1, v2 := e.val0.Load(), e.val1.Load(), e.val2.Load()
			if e.seq.Load() != s {
				continue
			}
			c = Conn{Ref: Ref{idx: uint32(ei) + 1, gen: uint32(s)}, Dir: DirOriginal, State: State(w & stStateMask), Cached: w&stCached != 0}
			orig.unpack(&c.Orig)
			unpackValue(&c.Value, v0, v1, v2, ext)
			if !fn(&c, time.Duration(int64(w>>stExpShift)*1_000_000-now)) {
				return
			}
			break
		}
	}
}
