package conntrack

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by Insert.
var (
	ErrFull    = errors.New("conntrack: table full")
	ErrExists  = errors.New("conntrack: key already present")
	ErrBadDest = errors.New("conntrack: real-server id out of range")
)

// Config sizes a Table. Zero fields take their defaults.
type Config struct {
	Capacity int // most entries (connections) at once, each with up to two keys; default 1<<16
	Shards   int // writer lock domains, a power of two; default 64
	MaxDests int // real-server ids are < MaxDests; default 4096
	Timeouts Timeouts
	// Clock returns monotonic nanoseconds on the same scale as the now arguments of Insert, Touch and
	// Sweep. Only Range uses it. Default: nanoseconds since New (see Table.Now).
	Clock func() int64
}

const (
	defaultCapacity = 1 << 16
	defaultShards   = 64
	defaultMaxDests = 4096
	maxCapacity     = 1 << 30 // node indexes (2 per entry, plus 1) must fit in uint32
)

// Value is what the data plane stores with a connection. It is written once at Insert and is opaque to the
// table except Dest, which indexes the per-real-server counters.
type Value struct {
	Service uint32  // service slot of the data plane
	Dest    uint32  // real-server id, < Config.MaxDests
	Flags   uint32  // opaque (forwarding method, ...)
	InPort  uint16  // opaque: interface slot the flow arrived on
	PeerMAC [6]byte // opaque: L2 source of the flow's first packet (next hop for replies)
}

// Ref is a handle to one incarnation of an entry. Once the entry is removed the handle goes stale, and
// Touch and Delete ignore it even after the slot is reused. The zero Ref is never valid.
type Ref struct {
	idx uint32 // entry index + 1
	gen uint32 // low 32 bits of the entry's sequence counter at the time the handle was made
}

// Valid reports whether r was filled in by the table (it may still be stale).
func (r Ref) Valid() bool { return r.idx != 0 }

// Conn is a snapshot of an entry, filled in by Lookup, Insert and Range without allocating.
type Conn struct {
	Ref   Ref // handle for Touch and Delete
	Dir   Dir // which key matched
	Orig  Key // the forward key (client -> VIP) of the entry
	Value Value
	State State
}

// Layout of entry.st, the word that Touch updates with one compare-and-swap: state, flags, incarnation and
// deadline change together, so a transition, its timer and its counter move are never torn apart.
const (
	stStateMask = 0xf
	stNoOutput  = 1 << 4 // IPVS's IP_VS_CONN_F_NOOUTPUT: no reply seen yet from a DR/TUN-created entry
	stHasRev    = 1 << 5 // the reverse node is linked
	stLive      = 1 << 6
	stGenShift  = 7
	stGenBits   = 17
	stGenMask   = (1<<stGenBits - 1) << stGenShift
	stExpShift  = stGenShift + stGenBits
	stExpMax    = 1<<(64-stExpShift) - 1 // deadline in ms: 40 bits, 34 years of the caller's clock
	stExpMask   = stExpMax << stExpShift
)

// entry is one connection: 128 bytes, two cache lines, so that any lookup touches at most two lines and
// ten million entries fit in 1.2 GiB. Every field is an atomic word so that lock-free readers never make a
// plain read that races with a writer; the type holds no Go pointers, so a []entry is never scanned by the
// GC. Key k of entry i is node 2i+k of the hash chains.
type entry struct {
	seq  atomic.Uint64       // seqlock: odd while Insert writes the entry; +2 per incarnation
	st   atomic.Uint64       // see stStateMask ...
	next [2]atomic.Uint32    // chain links of the two nodes: next node index + 1
	val  [3]atomic.Uint64    // Value, packed
	key  [2][5]atomic.Uint64 // forward, reverse
}

// shard is one writer lock domain and its counters, padded so that shards do not share cache lines.
type shard struct {
	mu        sync.Mutex
	live      atomic.Int64
	inserts   atomic.Uint64
	deletes   atomic.Uint64
	expired   atomic.Uint64
	fullDrops atomic.Uint64
	exists    atomic.Uint64
	_         [128 - 56]byte
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
	entries  []entry
	freeNext []atomic.Uint32 // free-stack links, entry index + 1
	heads    []atomic.Uint32 // bucket heads, node index + 1; bucket b belongs to shard b >> shardShift
	shards   []shard
	dests    []destCounters
	timeouts [numStates]atomic.Int64 // nanoseconds, by state

	seed       uint64
	bucketMask uint64
	shardShift uint
	clock      func() int64

	free   paddedUint64 // Treiber stack head: ABA tag << 32 | entry index + 1
	cursor paddedUint64 // next entry index Sweep looks at
}

// Bounds of the lock-free lookup: a chain walk longer than maxSteps (only possible while nodes are reused
// under the reader) restarts, and after maxRestarts the lookup takes the shard lock.
const (
	maxSteps    = 1 << 12
	maxRestarts = 4
)

// New allocates a table with all its memory up front.
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
	case cfg.Shards < 0 || cfg.Shards&(cfg.Shards-1) != 0:
		return nil, fmt.Errorf("conntrack: shards %d is not a power of two", cfg.Shards)
	case cfg.MaxDests < 0 || uint64(cfg.MaxDests) > 1<<32:
		return nil, fmt.Errorf("conntrack: max dests %d out of range", cfg.MaxDests)
	}

	// One bucket per entry: with forward and reverse keys the chains average at most two nodes.
	return newTable(cfg, max(1<<bits.Len(uint(cfg.Capacity-1)), cfg.Shards)), nil
}

// newTable builds a table of a validated config with nb buckets, a power of two >= cfg.Shards.
func newTable(cfg Config, nb int) *Table {
	t := &Table{
		entries:    make([]entry, cfg.Capacity),
		freeNext:   make([]atomic.Uint32, cfg.Capacity),
		heads:      make([]atomic.Uint32, nb),
		shards:     make([]shard, cfg.Shards),
		dests:      make([]destCounters, cfg.MaxDests),
		seed:       rand.Uint64(),
		bucketMask: uint64(nb - 1),
		shardShift: uint(bits.Len(uint(nb/cfg.Shards)) - 1),
		clock:      cfg.Clock,
	}
	if t.clock == nil {
		start := time.Now()
		t.clock = func() int64 { return int64(time.Since(start)) }
	}
	for s, d := range defaultStateTimeouts() {
		t.timeouts[s].Store(int64(d))
	}
	t.SetTimeouts(cfg.Timeouts)
	for i := range t.freeNext[:len(t.freeNext)-1] {
		t.freeNext[i].Store(uint32(i + 2))
	}
	t.free.Store(1)
	return t
}

// Now returns the default Clock: monotonic nanoseconds since New.
func (t *Table) Now() int64 { return t.clock() }

// Capacity returns the most entries the table holds.
func (t *Table) Capacity() int { return len(t.entries) }

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

func (t *Table) bucket(kw *keyWords) uint32 { return uint32(kw.hash(t.seed) & t.bucketMask) }

func (t *Table) shardOf(b uint32) *shard { return &t.shards[b>>t.shardShift] }

func (t *Table) node(n uint32) (e *entry, which uint32) { return &t.entries[n>>1], n & 1 }

// lockPair locks the shards of two buckets in index order, so that two writers locking the same pair
// cannot deadlock. second is nil when both buckets are in one shard.
func (t *Table) lockPair(b1, b2 uint32) (first, second *shard) {
	i, j := b1>>t.shardShift, b2>>t.shardShift
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
	w2 = uint64(v.PeerMAC[2]) | uint64(v.PeerMAC[3])<<8 | uint64(v.PeerMAC[4])<<16 | uint64(v.PeerMAC[5])<<24
	return w0, w1, w2
}

func unpackValue(v *Value, w0, w1, w2 uint64) {
	v.Service = uint32(w0)
	v.Dest = uint32(w0 >> 32)
	v.Flags = uint32(w1)
	v.InPort = uint16(w1 >> 32)
	v.PeerMAC = [6]byte{byte(w1 >> 48), byte(w1 >> 56), byte(w2), byte(w2 >> 8), byte(w2 >> 16), byte(w2 >> 24)}
}

func loadKey(k *[5]atomic.Uint64) keyWords {
	return keyWords{k[0].Load(), k[1].Load(), k[2].Load(), k[3].Load(), k[4].Load()}
}

// equal compares word by word: comparing the arrays with != calls memequal.
func (w *keyWords) equal(o *keyWords) bool {
	return w[4] == o[4] && w[0] == o[0] && w[1] == o[1] && w[2] == o[2] && w[3] == o[3]
}

func keyEqual(k *[5]atomic.Uint64, kw *keyWords) bool {
	// The word with the ports differs most often between flows of one chain: compare it first.
	return k[4].Load() == kw[4] && k[0].Load() == kw[0] && k[1].Load() == kw[1] && k[2].Load() == kw[2] &&
		k[3].Load() == kw[3]
}

const (
	lookupMiss = iota
	lookupHit
	lookupRetry
)

// Lookup finds the entry that k is the forward or reverse key of and fills c; c is left alone on a miss.
// It does not allocate, and takes no lock unless writers reused the nodes under it several times in a row.
func (t *Table) Lookup(k *Key, c *Conn) bool {
	kw := packKey(k)
	b := t.bucket(&kw)
	// A hit is a hit even if the walk strayed into another chain, so the first walk does not check where
	// it is; only a miss needs a walk that does.
	if t.walk(t.heads[b].Load(), &kw, k, b, c, false) == lookupHit {
		return true
	}
	for range maxRestarts {
		switch t.walk(t.heads[b].Load(), &kw, k, b, c, true) {
		case lookupHit:
			return true
		case lookupMiss:
			return false
		}
	}
	return t.lookupLocked(&kw, b, c)
}

func (t *Table) lookupLocked(kw *keyWords, b uint32, c *Conn) bool {
	sh := t.shardOf(b)
	sh.mu.Lock()
	n := t.findLocked(kw, b)
	if n != 0 {
		t.fillLocked(c, n-1)
	}
	sh.mu.Unlock()
	return n != 0
}

// walk looks for kw in bucket b without locks, from node index+1 n on. A node it reaches may have been
// unlinked, or freed and reused, since the walk read the link that led to it. An unlinked node still links
// to its successor at the time it was unlinked, so the walk loses nothing by going on through it. A reused
// node sits at the head of its new bucket: if that is another bucket, its key no longer hashes to b and the
// walk restarts; if it is this bucket, it links to the whole current chain. A reverse node that the new
// incarnation left unlinked keeps its old key and link, which are as good as an unlinked node's. A node's
// words are read under its entry's seqlock, so a key, its link, the value and the state are only used when
// they all belong to one incarnation, and reported only if that incarnation has the node linked. Without
// checkBucket the walk does not notice that it strayed, and its misses mean nothing.
func (t *Table) walk(n uint32, kw *keyWords, k *Key, b uint32, c *Conn, checkBucket bool) int {
	for steps := 0; n != 0; steps++ {
		if steps == maxSteps {
			return lookupRetry
		}
		ni := n - 1
		e, which := t.node(ni)
		s := e.seq.Load()
		if s&1 != 0 {
			return lookupRetry
		}
		nk := loadKey(&e.key[which])
		next := e.next[which].Load()
		if !nk.equal(kw) {
			if e.seq.Load() != s {
				return lookupRetry
			}
			if checkBucket && t.bucket(&nk) != b {
				return lookupRetry
			}
			n = next
			continue
		}
		w := e.st.Load()
		v0, v1, v2 := e.val[0].Load(), e.val[1].Load(), e.val[2].Load()
		var orig keyWords
		if which == 1 {
			orig = loadKey(&e.key[0])
		}
		if e.seq.Load() != s {
			return lookupRetry
		}
		if w&stLive != 0 && (which == 0 || w&stHasRev != 0) {
			c.Ref = Ref{idx: ni>>1 + 1, gen: uint32(s)}
			c.Dir = Dir(which)
			if which == 1 {
				orig.unpack(&c.Orig)
			} else {
				c.Orig = *k
			}
			unpackValue(&c.Value, v0, v1, v2)
			c.State = State(w & stStateMask)
			return lookupHit
		}
		n = next
	}
	return lookupMiss
}

// findLocked returns the index+1 of the node with key kw in bucket b, or 0. The caller holds the bucket's
// shard lock, so the chain holds exactly the live nodes of the bucket and none of them can be reused.
func (t *Table) findLocked(kw *keyWords, b uint32) uint32 {
	for n := t.heads[b].Load(); n != 0; {
		e, which := t.node(n - 1)
		if keyEqual(&e.key[which], kw) {
			return n
		}
		n = e.next[which].Load()
	}
	return 0
}

// fillLocked fills c from node ni, which the caller's shard lock keeps from being removed.
func (t *Table) fillLocked(c *Conn, ni uint32) {
	e := &t.entries[ni>>1]
	c.Ref = Ref{idx: ni>>1 + 1, gen: uint32(e.seq.Load())}
	c.Dir = Dir(ni & 1)
	orig := loadKey(&e.key[0])
	orig.unpack(&c.Orig)
	unpackValue(&c.Value, e.val[0].Load(), e.val[1].Load(), e.val[2].Load())
	c.State = State(e.st.Load() & stStateMask)
}

// alloc pops a free entry. The stack head carries a tag that every push and pop changes, so a pop that
// read a head which has since been popped and pushed back fails its compare-and-swap (no ABA).
func (t *Table) alloc() (uint32, bool) {
	for {
		old := t.free.Load()
		top := uint32(old)
		if top == 0 {
			return 0, false
		}
		next := t.freeNext[top-1].Load()
		if t.free.CompareAndSwap(old, (old>>32+1)<<32|uint64(next)) {
			return top - 1, true
		}
	}
}

func (t *Table) release(ei uint32) {
	for {
		old := t.free.Load()
		t.freeNext[ei].Store(uint32(old))
		if t.free.CompareAndSwap(old, (old>>32+1)<<32|uint64(ei+1)) {
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
// Errors: ErrFull when the table is at capacity (counted in Stats.FullDrops); ErrExists when fwd or rev is
// already present, with c filled from the entry that holds it (two workers racing on one SYN is normal);
// ErrBadDest when v.Dest >= Config.MaxDests. A rev equal to fwd is ignored.
func (t *Table) Insert(fwd *Key, rev *Key, v *Value, proto uint8, tcpFlags uint8, dir PacketDir, now int64, c *Conn) error {
	if uint64(v.Dest) >= uint64(len(t.dests)) {
		return fmt.Errorf("insert %v: dest %d >= %d: %w", *fwd, v.Dest, len(t.dests), ErrBadDest)
	}
	fw := packKey(fwd)
	fb := t.bucket(&fw)
	hasRev := rev != nil && *rev != *fwd
	var rw keyWords
	rb := fb
	if hasRev {
		rw = packKey(rev)
		rb = t.bucket(&rw)
	}
	first, second := t.lockPair(fb, rb)
	fsh := t.shardOf(fb)

	n := t.findLocked(&fw, fb)
	if n == 0 && hasRev {
		n = t.findLocked(&rw, rb)
	}
	if n != 0 {
		if c != nil {
			t.fillLocked(c, n-1)
		}
		unlockPair(first, second)
		fsh.exists.Add(1)
		return ErrExists
	}
	ei, ok := t.alloc()
	if !ok {
		unlockPair(first, second)
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
	fnode, rnode := ei<<1+1, ei<<1+2 // index + 1

	e.seq.Store(seq - 1)
	e.st.Store(w)
	w0, w1, w2 := packValue(v)
	e.val[0].Store(w0)
	e.val[1].Store(w1)
	e.val[2].Store(w2)
	for i, x := range fw {
		e.key[0][i].Store(x)
	}
	fnext := t.heads[fb].Load()
	if hasRev {
		for i, x := range rw {
			e.key[1][i].Store(x)
		}
		e.next[1].Store(t.heads[rb].Load())
		if rb == fb {
			fnext = rnode
		}
	}
	e.next[0].Store(fnext)
	e.seq.Store(seq)

	// Count before publishing: a Touch on the new entry may move its counter right after.
	t.countDest(v.Dest, state, 1)
	fsh.live.Add(1)
	fsh.inserts.Add(1)
	if hasRev {
		t.heads[rb].Store(rnode)
	}
	t.heads[fb].Store(fnode)
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

// Touch runs the state machine for one packet of the connection (its TCP flags and direction) and re-arms
// the entry's timer with the new state's timeout, as IPVS does on every packet. It takes no lock and does
// not allocate. It returns the new state, or None if ref is stale (no transition ever leads to None).
func (t *Table) Touch(ref Ref, tcpFlags uint8, dir PacketDir, now int64) State {
	ei := ref.idx - 1
	if ei >= uint32(len(t.entries)) {
		return None
	}
	e := &t.entries[ei]
	if uint32(e.seq.Load()) != ref.gen {
		return None
	}
	// Read before the CAS: if the slot is reused in between, the CAS fails on the generation.
	dest := uint32(e.val[0].Load() >> 32)
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

// Delete removes the entry ref points to, both of its keys. It returns false if ref is stale.
func (t *Table) Delete(ref Ref) bool {
	ei := ref.idx - 1
	if ei >= uint32(len(t.entries)) {
		return false
	}
	return t.remove(ei, ref.gen, false, 0)
}

// remove takes out incarnation gen of entry ei; with expire set, only if it has expired at now. The removal
// happens at the CAS that clears stLive, under the shard locks of both keys: a Touch racing with it either
// lands before (and the CAS retries) or finds the entry dead.
func (t *Table) remove(ei uint32, gen uint32, expire bool, now int64) bool {
	e := &t.entries[ei]
	s := e.seq.Load()
	if uint32(s) != gen || s&1 != 0 {
		return false
	}
	w := e.st.Load()
	if w&stLive == 0 || w&stGenMask != genField(s) {
		return false
	}
	// If the entry is reused before the locks are taken these buckets may be wrong; the checks under the
	// locks then fail.
	fk := loadKey(&e.key[0])
	fb := t.bucket(&fk)
	rb := fb
	if w&stHasRev != 0 {
		rk := loadKey(&e.key[1])
		rb = t.bucket(&rk)
	}
	first, second := t.lockPair(fb, rb)
	if e.seq.Load() != s {
		unlockPair(first, second)
		return false
	}
	nm := nowMs(now)
	for {
		w = e.st.Load()
		if w&stLive == 0 || (expire && w>>stExpShift > nm) {
			unlockPair(first, second)
			return false
		}
		if e.st.CompareAndSwap(w, w&^stLive) {
			break
		}
	}
	dest := uint32(e.val[0].Load() >> 32)
	t.countDest(dest, State(w&stStateMask), -1)
	t.unlink(ei<<1, fb)
	if w&stHasRev != 0 {
		t.unlink(ei<<1+1, rb)
	}
	fsh := t.shardOf(fb)
	fsh.live.Add(-1)
	if expire {
		fsh.expired.Add(1)
	} else {
		fsh.deletes.Add(1)
	}
	unlockPair(first, second)
	t.release(ei)
	return true
}

// unlink takes node ni out of bucket b; the caller holds the bucket's shard lock. The node keeps its link,
// so lock-free readers standing on it go on along the chain.
func (t *Table) unlink(ni uint32, b uint32) {
	target := ni + 1
	e, which := t.node(ni)
	next := e.next[which].Load()
	if t.heads[b].Load() == target {
		t.heads[b].Store(next)
		return
	}
	for n := t.heads[b].Load(); n != 0; {
		pe, pw := t.node(n - 1)
		pn := pe.next[pw].Load()
		if pn == target {
			pe.next[pw].Store(next)
			return
		}
		n = pn
	}
	panic(fmt.Sprintf("conntrack: node %d missing from bucket %d", ni, b))
}

// Sweep looks at the next budget entry slots after where the previous sweep stopped and removes those
// whose deadline has passed at now; it returns how many it removed. Sweeps from several goroutines claim
// disjoint slots. Calling it with a small budget per worker batch keeps expiry incremental.
func (t *Table) Sweep(now int64, budget int) int {
	n := uint64(len(t.entries))
	if budget <= 0 {
		return 0
	}
	budget = int(min(uint64(budget), n))
	start := (t.cursor.Add(uint64(budget)) - uint64(budget)) % n
	nm := nowMs(now)
	removed := 0
	for i, ei := 0, start; i < budget; i++ {
		e := &t.entries[ei]
		if w := e.st.Load(); w&stLive != 0 && w>>stExpShift <= nm {
			if s := e.seq.Load(); s&1 == 0 && genField(s) == w&stGenMask && t.remove(uint32(ei), uint32(s), true, now) {
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
	var c Conn
	now := t.clock()
	for ei := range t.entries {
		e := &t.entries[ei]
		for range maxRestarts {
			s := e.seq.Load()
			if s&1 != 0 {
				continue
			}
			w := e.st.Load()
			if w&stLive == 0 {
				break
			}
			orig := loadKey(&e.key[0])
			v0, v1, v2 := e.val[0].Load(), e.val[1].Load(), e.val[2].Load()
			if e.seq.Load() != s {
				continue
			}
			c = Conn{Ref: Ref{idx: uint32(ei) + 1, gen: uint32(s)}, Dir: DirOriginal, State: State(w & stStateMask)}
			orig.unpack(&c.Orig)
			unpackValue(&c.Value, v0, v1, v2)
			if !fn(&c, time.Duration(int64(w>>stExpShift)*1_000_000-now)) {
				return
			}
			break
		}
	}
}
