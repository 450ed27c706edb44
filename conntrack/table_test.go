package conntrack

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"
	"unsafe"
)

func TestMakeKey(t *testing.T) {
	k := MakeKey(protoUDP, netip.MustParseAddr("198.18.0.7"), 5353, netip.MustParseAddr("fd00::1"), 53)
	want := [16]byte{10: 0xff, 11: 0xff, 12: 198, 13: 18, 14: 0, 15: 7}
	if k.SrcAddr != want {
		t.Errorf("v4 source stored as %x, want IPv4-mapped %x", k.SrcAddr, want)
	}
	if got := k.Src(); got != netip.MustParseAddrPort("198.18.0.7:5353") {
		t.Errorf("Src() = %v", got)
	}
	if got := k.Dst(); got != netip.MustParseAddrPort("[fd00::1]:53") {
		t.Errorf("Dst() = %v", got)
	}
	mapped := MakeKey(protoUDP, netip.MustParseAddr("::ffff:198.18.0.7"), 5353, netip.MustParseAddr("fd00::1"), 53)
	if mapped != k {
		t.Errorf("mapped and plain v4 give different keys")
	}
	r := k.Reverse()
	if r.Src() != k.Dst() || r.Dst() != k.Src() || r.Proto != k.Proto {
		t.Errorf("Reverse() = %v, of %v", r, k)
	}
	if s := k.String(); s != "UDP 198.18.0.7:5353->[fd00::1]:53" {
		t.Errorf("String() = %q", s)
	}
	var kw keyWords = packKey(&k)
	var back Key
	kw.unpack(&back)
	if back != k {
		t.Errorf("pack/unpack round trip: %v != %v", back, k)
	}
}

func TestNewConfig(t *testing.T) {
	tab := newTestTable(t, Config{})
	if tab.Capacity() != defaultCapacity || len(tab.shards) != defaultShards || len(tab.dests) != defaultMaxDests {
		t.Errorf("defaults: capacity %d shards %d dests %d", tab.Capacity(), len(tab.shards), len(tab.dests))
	}
	if tab.Timeouts() != DefaultTimeouts() || tab.FullPolicy() != Refuse {
		t.Errorf("default timeouts %+v, policy %v", tab.Timeouts(), tab.FullPolicy())
	}
	for _, bad := range []Config{{Shards: 3}, {Shards: 2 * maxShards}, {Capacity: -1}, {Capacity: maxCapacity + 1},
		{MaxDests: -2}, {FullPolicy: EvictOldestIdle + 1}} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) succeeded", bad)
		}
	}
	for _, x := range []struct {
		v    any
		size uintptr
	}{{shard{}, 128}, {entry{}, 128}, {bucket{}, 64}} {
		if s := reflect.TypeOf(x.v).Size(); s != x.size {
			t.Errorf("%T is %d bytes, want %d", x.v, s, x.size)
		}
	}
	if off := unsafe.Offsetof(entry{}.key1); off != 64 {
		t.Errorf("reverse key at offset %d, want the second cache line", off)
	}
}

func TestBucketsPerShard(t *testing.T) {
	tests := []struct {
		capacity, shards, want int
	}{
		{1, 1, 1},               // 2 keys fit in one bucket
		{6, 1, 3},               // 12 keys at 5 a bucket
		{6, 2, 2},               // each shard has room for all of them
		{1000, 64, 11},          // 31 keys + 8 sd: 84 slots
		{1 << 16, 64, 410},      // 2*65536/5/64, rounded up
		{10_000_000, 64, 62500}, // 4M buckets, 256 MB
		{10_000_000, 1, 4_000_000},
	}
	for _, tt := range tests {
		got := bucketsPerShard(tt.capacity, tt.shards)
		if got != tt.want {
			t.Errorf("bucketsPerShard(%d, %d) = %d, want %d", tt.capacity, tt.shards, got, tt.want)
		}
		if slots := got * tt.shards * bucketSlots; slots < 2*tt.capacity {
			t.Errorf("capacity %d in %d shards: %d slots for %d keys", tt.capacity, tt.shards, slots, 2*tt.capacity)
		}
	}
	// Keys spread over every shard and every bucket of a shard.
	tab := newTestTable(t, Config{Capacity: 4096, Shards: 8})
	perShard := make([]int, len(tab.shards))
	perBucket := make([]int, tab.perShard)
	for i := range 8192 {
		k := testKey(i)
		kw := packKey(&k)
		h := kw.hash(tab.seed)
		start, b := tab.home(h)
		if s := tab.shardIndex(h); start != uint64(s)*tab.perShard || b < start || b >= start+tab.perShard {
			t.Fatalf("key %d: shard %d, home %d outside [%d, +%d)", i, s, b, start, tab.perShard)
		}
		perShard[tab.shardIndex(h)]++
		perBucket[b-start]++
	}
	for s, n := range perShard {
		if n < 8192/8/2 || n > 8192/8*2 {
			t.Errorf("shard %d got %d of 8192 keys", s, n)
		}
	}
	for b, n := range perBucket {
		if n == 0 {
			t.Errorf("bucket %d of a shard never a home", b)
		}
	}
}

func testValue(i int) Value {
	return Value{
		Service: uint32(i)*7 + 1,
		Dest:    uint32(i % 8),
		Flags:   uint32(i) ^ 0xa5a5,
		InPort:  uint16(i % 3),
		PeerMAC: [6]byte{2, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 0xee},
	}
}

func TestForwardAndReverse(t *testing.T) {
	tab := newTestTable(t, Config{Capacity: 16, Shards: 4})
	fwd, rev := testKey(3), testRevKey(3)
	v := testValue(3)
	var ins Conn
	if err := tab.Insert(&fwd, &rev, &v, protoTCP, fSYN, Input, 0, &ins); err != nil {
		t.Fatal(err)
	}
	if !ins.Ref.Valid() || ins.Dir != DirOriginal || ins.Orig != fwd || ins.Value != v || ins.State != SynRecv {
		t.Fatalf("insert filled %+v", ins)
	}
	var cf, cr Conn
	if !tab.Lookup(&fwd, &cf) {
		t.Fatal("forward key not found")
	}
	if !tab.Lookup(&rev, &cr) {
		t.Fatal("reverse key not found")
	}
	if cf.Dir != DirOriginal || cr.Dir != DirReply {
		t.Errorf("dirs %v, %v", cf.Dir, cr.Dir)
	}
	for _, c := range []Conn{cf, cr} {
		if c.Ref != ins.Ref || c.Orig != fwd || c.Value != v || c.State != SynRecv {
			t.Errorf("lookup filled %+v, want the inserted entry", c)
		}
	}
	if tab.Len() != 1 {
		t.Errorf("Len() = %d, want 1", tab.Len())
	}
	if st := tab.Touch(cr.Ref, fACK, Input, 0); st != Established {
		t.Errorf("touch through reverse ref: %v", st)
	}
	if !tab.Delete(cr.Ref) {
		t.Fatal("delete failed")
	}
	if tab.Lookup(&fwd, &cf) || tab.Lookup(&rev, &cr) {
		t.Error("a key of the deleted entry is still found")
	}
	if tab.Delete(ins.Ref) {
		t.Error("second delete succeeded")
	}
	if a, i := tab.DestConns(v.Dest); a != 0 || i != 0 {
		t.Errorf("dest conns after delete %d/%d", a, i)
	}
	st := tab.Stats()
	if st.Inserts != 1 || st.Deletes != 1 || st.Entries != 0 || tab.Len() != 0 {
		t.Errorf("stats %+v", st)
	}
	// The keys can be inserted again, and a reverse key equal to the forward key is ignored.
	if err := tab.Insert(&fwd, &fwd, &v, protoTCP, fSYN, Input, 0, &ins); err != nil {
		t.Fatal(err)
	}
	if !tab.Lookup(&fwd, &cf) || cf.Dir != DirOriginal || tab.Lookup(&rev, &cr) {
		t.Errorf("after reinsert without reverse: %+v", cf)
	}
}

// keysHomedAt returns n test keys (flows from first on) whose home bucket in tab is b.
func keysHomedAt(tab *Table, b uint64, first, n int) []int {
	var ids []int
	for i := first; len(ids) < n; i++ {
		k := testKey(i)
		kw := packKey(&k)
		if _, home := tab.home(kw.hash(tab.seed)); home == b {
			ids = append(ids, i)
		}
	}
	return ids
}

func TestOverflow(t *testing.T) {
	// One shard of four buckets and twenty keys that all start at bucket 1: they fill it and overflow into
	// buckets 2 and 3. Deleting keys from the middle of that run must keep the others found, and the
	// overflow counts must come back to zero.
	tab := newSmallTable(t, Config{Capacity: 32, Shards: 1, MaxDests: 8}, 4)
	ids := keysHomedAt(tab, 1, 0, 20)
	refs := map[int]Ref{}
	for _, id := range ids {
		k := testKey(id)
		v := testValue(id)
		var c Conn
		if err := tab.Insert(&k, nil, &v, protoTCP, fSYN, Input, 0, &c); err != nil {
			t.Fatal(err)
		}
		refs[id] = c.Ref
	}
	if got := tab.buckets[1][0].Load() >> slotOvfShift; got != 12 {
		t.Errorf("bucket 1 overflow count %d, want 12", got)
	}
	if got := tab.buckets[2][0].Load() >> slotOvfShift; got != 4 {
		t.Errorf("bucket 2 overflow count %d, want 4", got)
	}
	checkIndex(t, tab)
	deleted := map[int]bool{}
	for _, i := range []int{0, 5, 9, 19, 12} {
		if !tab.Delete(refs[ids[i]]) {
			t.Fatalf("delete %d failed", ids[i])
		}
		deleted[ids[i]] = true
		checkIndex(t, tab)
		for _, id := range ids {
			k := testKey(id)
			var c Conn
			if found := tab.Lookup(&k, &c); found == deleted[id] || (found && c.Value != testValue(id)) {
				t.Fatalf("after deleting %d: key %d found %v, %+v", ids[i], id, found, c)
			}
		}
	}
	// New keys of the same home fill the holes, in bucket 1 first.
	more := keysHomedAt(tab, 1, ids[len(ids)-1]+1, 5)
	for _, id := range more {
		k := testKey(id)
		if err := tab.Insert(&k, nil, &Value{}, protoUDP, 0, Input, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	checkIndex(t, tab)
	var all []Ref
	tab.Range(func(c *Conn, _ time.Duration) bool { all = append(all, c.Ref); return true })
	for _, r := range all {
		tab.Delete(r)
	}
	for b := range tab.buckets {
		for i := range bucketSlots {
			if w := tab.buckets[b][i].Load(); w != 0 {
				t.Errorf("empty table: bucket %d slot %d is %#x", b, i, w)
			}
		}
	}
	checkIndex(t, tab)
}

func TestShardWraps(t *testing.T) {
	// Keys homed at the last bucket of a shard overflow into its first bucket, not into the next shard.
	tab := newSmallTable(t, Config{Capacity: 32, Shards: 2, MaxDests: 8}, 2)
	var ids []int
	for i := 0; len(ids) < 12; i++ {
		k := testKey(i)
		kw := packKey(&k)
		h := kw.hash(tab.seed)
		if start, b := tab.home(h); tab.shardIndex(h) == 0 && b == start+1 {
			ids = append(ids, i)
		}
	}
	for _, id := range ids {
		k := testKey(id)
		if err := tab.Insert(&k, nil, &Value{}, protoUDP, 0, Input, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := tab.buckets[1][0].Load() >> slotOvfShift; got != 4 {
		t.Errorf("last bucket of shard 0 overflow count %d, want 4", got)
	}
	for b := 2; b < 4; b++ {
		for i := range bucketSlots {
			if tab.buckets[b][i].Load() != 0 {
				t.Errorf("a key of shard 0 went to bucket %d of shard 1", b)
			}
		}
	}
	checkIndex(t, tab)
	for _, id := range ids {
		k := testKey(id)
		var c Conn
		if !tab.Lookup(&k, &c) {
			t.Errorf("key %d not found", id)
		}
	}
}

func TestSaturatedOverflowCount(t *testing.T) {
	// A saturated count stays saturated: lookups probe on, and nothing is lost.
	tab := newSmallTable(t, Config{Capacity: 16, Shards: 1, MaxDests: 8}, 4)
	ids := keysHomedAt(tab, 0, 0, 12)
	tab.buckets[0][0].Store(ovfSaturated << slotOvfShift)
	var refs []Ref
	for _, id := range ids {
		k := testKey(id)
		var c Conn
		if err := tab.Insert(&k, nil, &Value{}, protoUDP, 0, Input, 0, &c); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, c.Ref)
	}
	for _, r := range refs {
		if !tab.Delete(r) {
			t.Fatal("delete failed")
		}
	}
	if got := tab.buckets[0][0].Load() >> slotOvfShift; got != ovfSaturated {
		t.Errorf("saturated count became %d", got)
	}
	k := testKey(ids[0])
	var c Conn
	if tab.Lookup(&k, &c) {
		t.Error("deleted key found")
	}
}

func TestStaleRef(t *testing.T) {
	tab := newTestTable(t, Config{Capacity: 1, Shards: 1})
	var zero Ref
	if zero.Valid() || tab.Touch(zero, fACK, Input, 0) != None || tab.Delete(zero) {
		t.Error("zero Ref accepted")
	}
	a, b := testKey(1), testKey(2)
	var ca, cb Conn
	if err := tab.Insert(&a, nil, &Value{Dest: 1}, protoTCP, fSYN, Input, 0, &ca); err != nil {
		t.Fatal(err)
	}
	if !tab.Delete(ca.Ref) {
		t.Fatal("delete failed")
	}
	if err := tab.Insert(&b, nil, &Value{Dest: 2}, protoTCP, fSYN, Input, 0, &cb); err != nil {
		t.Fatal(err)
	}
	if ca.Ref.idx != cb.Ref.idx {
		t.Fatal("slot was not reused; the test needs it to be")
	}
	if st := tab.Touch(ca.Ref, fACK, Input, 0); st != None {
		t.Errorf("stale touch returned %v", st)
	}
	if tab.Delete(ca.Ref) {
		t.Error("stale delete succeeded")
	}
	var c Conn
	if !tab.Lookup(&b, &c) || c.State != SynRecv || c.Ref != cb.Ref {
		t.Errorf("reused entry changed by stale ref: %+v", c)
	}
	if act, inact := tab.DestConns(2); act != 0 || inact != 1 {
		t.Errorf("dest 2: %d/%d", act, inact)
	}
	if act, inact := tab.DestConns(1); act != 0 || inact != 0 {
		t.Errorf("dest 1: %d/%d", act, inact)
	}
	bad := Ref{idx: 99, gen: 2}
	if tab.Touch(bad, fACK, Input, 0) != None || tab.Delete(bad) {
		t.Error("out-of-range Ref accepted")
	}
}

func TestInsertExists(t *testing.T) {
	tab := newTestTable(t, Config{Capacity: 8, Shards: 2, MaxDests: 8})
	f1, r1 := testKey(1), testRevKey(1)
	f2, r2 := testKey(2), testRevKey(2)
	v1, v2 := testValue(1), testValue(2)
	var c1 Conn
	if err := tab.Insert(&f1, &r1, &v1, protoTCP, fSYN, Input, 0, &c1); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		fwd, rev *Key
		wantDir  Dir
	}{
		{"same forward", &f1, &r2, DirOriginal},
		{"same forward, no reverse", &f1, nil, DirOriginal},
		{"reverse taken", &f2, &r1, DirReply},
		{"reverse is another's forward", &f2, &f1, DirOriginal},
		{"forward is another's reverse", &r1, &r2, DirReply},
	}
	for i, tt := range tests {
		var c Conn
		err := tab.Insert(tt.fwd, tt.rev, &v2, protoTCP, fSYN, Input, 0, &c)
		if !errors.Is(err, ErrExists) {
			t.Fatalf("%s: err %v, want ErrExists", tt.name, err)
		}
		if c.Ref != c1.Ref || c.Orig != f1 || c.Value != v1 || c.Dir != tt.wantDir {
			t.Errorf("%s: filled %+v, want the existing entry", tt.name, c)
		}
		if got := tab.Stats().Exists; got != uint64(i+1) {
			t.Errorf("%s: Exists = %d", tt.name, got)
		}
	}
	if tab.Len() != 1 || tab.Lookup(&f2, &c1) || tab.Lookup(&r2, &c1) {
		t.Error("a failed insert left something behind")
	}
	if err := tab.Insert(&f2, &r2, &Value{Dest: 8}, protoTCP, fSYN, Input, 0, nil); !errors.Is(err, ErrBadDest) {
		t.Errorf("dest 8 of 8: err %v", err)
	}
}

func TestExpiry(t *testing.T) {
	const sec = int64(time.Second)
	tab := newTestTable(t, Config{Capacity: 16, Shards: 4, MaxDests: 4})
	type flow struct {
		key    Key
		proto  uint8
		flags  []uint8 // first creates
		expiry int64
	}
	udp := testKey(3)
	udp.Proto = protoUDP
	icmp := testKey(4)
	icmp.Proto = protoICMP
	flows := []flow{
		{testKey(1), protoTCP, []uint8{fSYN}, 60 * sec},
		{testKey(2), protoTCP, []uint8{fSYN, fACK}, 900 * sec},
		{udp, protoUDP, []uint8{0}, 300 * sec},
		{icmp, protoICMP, []uint8{0}, 60 * sec},
		{testKey(5), protoTCP, []uint8{fSYN, fACK, fRST}, 10 * sec},
		{testKey(6), protoTCP, []uint8{fSYN, fACK, fFINACK}, 60 * sec}, // CLOSE_WAIT
	}
	for i, f := range flows {
		var c Conn
		rev := testRevKey(i)
		if err := tab.Insert(&f.key, &rev, &Value{Dest: uint32(i % 4)}, f.proto, f.flags[0], Input, 0, &c); err != nil {
			t.Fatal(err)
		}
		for _, fl := range f.flags[1:] {
			tab.Touch(c.Ref, fl, Input, 0)
		}
	}
	// Sweep at every deadline and just before it, in small budgets.
	left := len(flows)
	for _, at := range []int64{10, 60, 300, 900} {
		if n := sweepAll(tab, at*sec-1, 3); n != 0 {
			t.Fatalf("swept %d entries 1ns before %ds", n, at)
		}
		n := sweepAll(tab, at*sec, 3)
		want := 0
		for _, f := range flows {
			if f.expiry == at*sec {
				want++
				var c Conn
				if tab.Lookup(&f.key, &c) {
					t.Errorf("%v still present at its deadline", f.key)
				}
			}
		}
		if n != want {
			t.Fatalf("swept %d at %ds, want %d", n, at, want)
		}
		left -= n
		if tab.Len() != left {
			t.Fatalf("Len() = %d, want %d", tab.Len(), left)
		}
	}
	for d := range uint32(4) {
		if a, i := tab.DestConns(d); a != 0 || i != 0 {
			t.Errorf("dest %d: %d/%d after expiry", d, a, i)
		}
	}
	if st := tab.Stats(); st.Expired != uint64(len(flows)) || st.Entries != 0 {
		t.Errorf("stats %+v", st)
	}
}

// sweepAll sweeps every slot once in calls of budget.
func sweepAll(tab *Table, now int64, budget int) int {
	n := 0
	for done := 0; done < tab.Capacity(); done += budget {
		n += tab.Sweep(now, budget)
	}
	return n
}

func TestTouchRefreshes(t *testing.T) {
	const sec = int64(time.Second)
	tab := newTestTable(t, Config{Capacity: 4, Shards: 1})
	k := testKey(1)
	k.Proto = protoUDP
	var c Conn
	if err := tab.Insert(&k, nil, &Value{}, protoUDP, 0, Input, 0, &c); err != nil {
		t.Fatal(err)
	}
	if st := tab.Touch(c.Ref, 0, Output, 200*sec); st != Normal {
		t.Fatalf("udp touch: %v", st)
	}
	if n := tab.Sweep(499*sec, 4); n != 0 {
		t.Fatal("refreshed entry expired at its old deadline + 199s")
	}
	if n := tab.Sweep(500*sec, 4); n != 1 {
		t.Fatal("entry not expired at refreshed deadline")
	}
}

func TestCapacity(t *testing.T) {
	const sec = int64(time.Second)
	tab := newTestTable(t, Config{Capacity: 8, Shards: 2, MaxDests: 2})
	for i := range 8 {
		k := testKey(i)
		if err := tab.Insert(&k, nil, &Value{Dest: 1}, protoTCP, fSYN, Input, 0, nil); err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
	}
	for i := 8; i < 11; i++ {
		k := testKey(i)
		if err := tab.Insert(&k, nil, &Value{}, protoTCP, fSYN, Input, 0, nil); !errors.Is(err, ErrFull) {
			t.Fatalf("insert %d beyond capacity: %v", i, err)
		}
	}
	if st := tab.Stats(); st.FullDrops != 3 || st.Entries != 8 {
		t.Fatalf("stats %+v", st)
	}
	if n := tab.Sweep(60*sec, 8); n != 8 {
		t.Fatalf("swept %d, want 8", n)
	}
	for i := 8; i < 16; i++ {
		k := testKey(i)
		if err := tab.Insert(&k, nil, &Value{}, protoTCP, fSYN, Input, 60*sec, nil); err != nil {
			t.Fatalf("insert %d after expiry: %v", i, err)
		}
	}
	if a, i := tab.DestConns(1); a != 0 || i != 0 {
		t.Errorf("dest 1 after expiry: %d/%d", a, i)
	}
	if a, i := tab.DestConns(0); a != 0 || i != 8 {
		t.Errorf("dest 0: %d/%d", a, i)
	}
}

func TestDestConns(t *testing.T) {
	tab := newTestTable(t, Config{Capacity: 64, Shards: 4, MaxDests: 3})
	type conn struct {
		ref   Ref
		dest  uint32
		state State
	}
	var conns []conn
	steps := [][]pkt{
		{{fSYN, Input, SynRecv}},
		{{fSYN, Input, SynRecv}, {fACK, Input, Established}},
		{{fSYN, Input, SynRecv}, {fACK, Input, Established}, {fFINACK, Input, CloseWait}},
		{{fSYN, Input, SynRecv}, {fACK, Input, Established}, {fRST, Output, Close}, {fSYN, Input, SynRecv}, {fACK, Input, Established}},
		{{fSYN, InputOnly, SynRecv}, {fACK, Input, Established}, {fPSHACK, Input, Established}},
		{{fACK, Input, Established}},
	}
	for i := range 30 {
		seq := steps[i%len(steps)]
		k := testKey(i)
		var c Conn
		dest := uint32(i % 3)
		if err := tab.Insert(&k, nil, &Value{Dest: dest}, protoTCP, seq[0].flags, seq[0].dir, 0, &c); err != nil {
			t.Fatal(err)
		}
		st := c.State
		for _, p := range seq[1:] {
			st = tab.Touch(c.Ref, p.flags, p.dir, 0)
		}
		if st != seq[len(seq)-1].want {
			t.Fatalf("flow %d ended in %v", i, st)
		}
		conns = append(conns, conn{c.Ref, dest, st})
	}
	udp := testKey(100)
	udp.Proto = protoUDP
	if err := tab.Insert(&udp, nil, &Value{Dest: 2}, protoUDP, 0, Input, 0, nil); err != nil {
		t.Fatal(err)
	}
	check := func(when string, extraInactive2 int64) {
		t.Helper()
		var want [3][2]int64
		for _, c := range conns {
			if c.state == Established {
				want[c.dest][0]++
			} else {
				want[c.dest][1]++
			}
		}
		want[2][1] += extraInactive2
		for d := range uint32(3) {
			if a, i := tab.DestConns(d); a != want[d][0] || i != want[d][1] {
				t.Errorf("%s: dest %d: %d/%d, want %d/%d", when, d, a, i, want[d][0], want[d][1])
			}
		}
	}
	check("after transitions", 1)
	// Close half of them, delete a few, and check again.
	for i := range conns {
		switch i % 4 {
		case 0:
			conns[i].state = tab.Touch(conns[i].ref, fRST, Input, 0)
		case 1:
			if !tab.Delete(conns[i].ref) {
				t.Fatal("delete failed")
			}
		}
	}
	kept := conns[:0]
	for i, c := range conns {
		if i%4 != 1 {
			kept = append(kept, c)
		}
	}
	conns = kept
	check("after resets and deletes", 1)
	if a, i := tab.DestConns(1 << 20); a != 0 || i != 0 {
		t.Error("out-of-range dest has counts")
	}
}

func TestRange(t *testing.T) {
	var now int64 = 5 * int64(time.Second)
	tab := newTestTable(t, Config{Capacity: 32, Shards: 4, Clock: func() int64 { return now }})
	want := map[Key]Value{}
	for i := range 10 {
		k, r := testKey(i), testRevKey(i)
		v := testValue(i)
		want[k] = v
		if err := tab.Insert(&k, &r, &v, protoTCP, fSYN, Input, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[Key]bool{}
	tab.Range(func(c *Conn, in time.Duration) bool {
		if v, ok := want[c.Orig]; !ok || v != c.Value || c.Dir != DirOriginal || c.State != SynRecv {
			t.Errorf("range gave %+v", c)
		}
		if in != 55*time.Second {
			t.Errorf("expires in %v, want 55s", in)
		}
		seen[c.Orig] = true
		return true
	})
	if len(seen) != len(want) {
		t.Errorf("range saw %d of %d", len(seen), len(want))
	}
	n := 0
	tab.Range(func(*Conn, time.Duration) bool { n++; return n < 3 })
	if n != 3 {
		t.Errorf("range went on after false: %d calls", n)
	}
}

func TestHotPathAllocs(t *testing.T) {
	tab := newTestTable(t, Config{Capacity: 1024})
	k, r := testKey(1), testRevKey(1)
	v := testValue(1)
	var c Conn
	if err := tab.Insert(&k, &r, &v, protoTCP, fSYN, Input, 0, &c); err != nil {
		t.Fatal(err)
	}
	var now int64
	allocs := testing.AllocsPerRun(1000, func() {
		var lc Conn
		if !tab.Lookup(&r, &lc) {
			panic("miss")
		}
		now += 1_000_000
		tab.Touch(lc.Ref, fACK, Output, now)
		miss := testKey(2)
		tab.Lookup(&miss, &lc)
	})
	if allocs != 0 {
		t.Errorf("Lookup+Touch allocate %v per run", allocs)
	}

	// Writers too: insert, delete, expire, and insert into a full table under each policy.
	for _, p := range []FullPolicy{Refuse, EvictOldestIdle} {
		tab := newTestTable(t, Config{Capacity: 64, FullPolicy: p})
		for i := range 64 {
			k := testKey(100 + i)
			if err := tab.Insert(&k, nil, &v, protoUDP, 0, Input, 0, nil); err != nil {
				t.Fatal(err)
			}
		}
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			i++
			k, r := testKey(1000+i), testRevKey(1000+i)
			err := tab.Insert(&k, &r, &v, protoTCP, fSYN, Input, int64(i), &c)
			if (err == nil) != (p == EvictOldestIdle) {
				panic(err)
			}
			if err == nil && !tab.Delete(c.Ref) {
				panic("delete failed")
			}
			if err == nil {
				k := testKey(5000 + i)
				if err := tab.Insert(&k, nil, &v, protoUDP, 0, Input, 0, nil); err != nil {
					panic(err)
				}
			}
			tab.Sweep(0, 16)
		})
		if allocs != 0 {
			t.Errorf("%v: Insert+Delete+Sweep allocate %v per run", p, allocs)
		}
	}
}

// TestStaleSlot plays a lock-free reader that read a slot and stalled while its entry was removed and
// reused.
func TestStaleSlot(t *testing.T) {
	insert := func(tab *Table, f, r *Key, v Value) Ref {
		t.Helper()
		var c Conn
		if err := tab.Insert(f, r, &v, protoTCP, fSYN, Input, 0, &c); err != nil {
			t.Fatal(err)
		}
		return c.Ref
	}
	match := func(tab *Table, node uint32, k *Key) (bool, Conn) {
		kw := packKey(k)
		var c Conn
		return tab.match(node, &kw, k, &c), c
	}
	fwdNode := func(r Ref) uint32 { return (r.idx - 1) << 1 }
	revNode := func(r Ref) uint32 { return (r.idx-1)<<1 + 1 }

	t.Run("removed", func(t *testing.T) {
		tab := newSmallTable(t, Config{Capacity: 4, Shards: 1, MaxDests: 8}, 1)
		a, ar := testKey(1), testRevKey(1)
		ra := insert(tab, &a, &ar, testValue(1))
		if ok, c := match(tab, revNode(ra), &ar); !ok || c.Dir != DirReply || c.Orig != a {
			t.Fatalf("live entry: %v %+v", ok, c)
		}
		tab.Delete(ra)
		if ok, _ := match(tab, fwdNode(ra), &a); ok {
			t.Error("removed entry matched")
		}
	})
	t.Run("reused for another key", func(t *testing.T) {
		tab := newSmallTable(t, Config{Capacity: 1, Shards: 1, MaxDests: 8}, 1)
		a, b := testKey(1), testKey(2)
		ra := insert(tab, &a, nil, testValue(1))
		tab.Delete(ra)
		rb := insert(tab, &b, nil, testValue(2))
		if rb.idx != ra.idx {
			t.Fatal("slot not reused")
		}
		if ok, _ := match(tab, fwdNode(ra), &a); ok {
			t.Error("old key matched the reused entry")
		}
		if ok, c := match(tab, fwdNode(ra), &b); !ok || c.Value != testValue(2) || c.Ref != rb {
			t.Errorf("new incarnation: %v %+v", ok, c)
		}
	})
	t.Run("reused without reverse key", func(t *testing.T) {
		tab := newSmallTable(t, Config{Capacity: 1, Shards: 1, MaxDests: 8}, 1)
		e, er, f := testKey(1), testRevKey(1), testKey(2)
		re := insert(tab, &e, &er, testValue(1))
		tab.Delete(re)
		rf := insert(tab, &f, nil, testValue(2))
		if rf.idx != re.idx {
			t.Fatal("slot not reused")
		}
		// The reverse key words still hold er; they must not be taken for the new entry's.
		if ok, c := match(tab, revNode(re), &er); ok {
			t.Errorf("old reverse key found through the reused entry: %+v", c)
		}
		var c Conn
		if tab.Lookup(&er, &c) {
			t.Error("lookup found the old reverse key")
		}
	})
	t.Run("being written", func(t *testing.T) {
		tab := newSmallTable(t, Config{Capacity: 1, Shards: 1, MaxDests: 8}, 1)
		a := testKey(1)
		ra := insert(tab, &a, nil, testValue(1))
		e := &tab.entries[ra.idx-1]
		e.seq.Add(1) // as Insert leaves it while it writes a new incarnation
		if ok, _ := match(tab, fwdNode(ra), &a); ok {
			t.Error("entry matched while being written")
		}
		e.seq.Add(^uint64(0))
	})
}

// TestPointerFree guards the property the GC cost depends on: the table's big arrays hold no pointers,
// and ten million NAT entries fit in 1.5 GiB.
func TestPointerFree(t *testing.T) {
	var hasPointers func(reflect.Type) bool
	hasPointers = func(ty reflect.Type) bool {
		switch ty.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.String, reflect.Interface, reflect.Chan,
			reflect.Func, reflect.UnsafePointer:
			return true
		case reflect.Array:
			return hasPointers(ty.Elem())
		case reflect.Struct:
			for i := range ty.NumField() {
				if hasPointers(ty.Field(i).Type) {
					return true
				}
			}
		}
		return false
	}
	for _, v := range []any{entry{}, bucket{}, shard{}, destCounters{}} {
		if ty := reflect.TypeOf(v); hasPointers(ty) {
			t.Errorf("%v contains pointers", ty)
		}
	}
	const n = 10_000_000
	total := n*unsafe.Sizeof(entry{}) + uintptr(bucketsPerShard(n, defaultShards)*defaultShards)*unsafe.Sizeof(bucket{})
	if total > 3<<29 {
		t.Errorf("10M entries take %d MiB", total>>20)
	}
}

// TestHashSpread hashes families of keys that differ in few bits (the client address, the client port, the
// flow number) under many seeds: no shard may get twice its share. A multiplier derived from the seed once
// sent up to ten times its share of port-only keys to one shard.
func TestHashSpread(t *testing.T) {
	families := map[string]func(i int) Key{
		"clients": testKey,
		"replies": testRevKey,
		"ports": func(i int) Key {
			return MakeKey(protoTCP, testClient(1), uint16(i), testVIP, 443)
		},
		"flows": func(i int) Key { return flowKey(uint32(i), i&1 != 0) },
	}
	const (
		keys   = 2048
		shards = 64
		seeds  = 64
	)
	for name, key := range families {
		worst := 0
		for s := range uint64(seeds) {
			seed := 0x9e3779b97f4a7c15 * (s + 1)
			var n [shards]int
			for i := range keys {
				k := key(i)
				kw := packKey(&k)
				n[kw.hash(seed)>>(64-6)]++
			}
			worst = max(worst, slices.Max(n[:]))
		}
		if worst > 2*keys/shards {
			t.Errorf("%s: up to %d of %d keys in one of %d shards", name, worst, keys, shards)
		}
	}
}

// SetAux changes the Aux and Ext words of a live entry, seen through both
// keys and Range, keeps the rest of the value, and refuses a stale handle.
func TestSetAux(t *testing.T) {
	tab := newTestTable(t, Config{Capacity: 8, Shards: 2, MaxDests: 8})
	f, r := testKey(1), testRevKey(1)
	v := testValue(1)
	v.Aux, v.Ext = 0xdeadbeef, 0x1234
	var c Conn
	if err := tab.Insert(&f, &r, &v, protoTCP, fSYN, Input, 0, &c); err != nil {
		t.Fatal(err)
	}
	var got Conn
	if !tab.Lookup(&f, &got) || got.Value != v {
		t.Fatalf("inserted value %+v, want %+v", got.Value, v)
	}
	if !tab.SetAux(c.Ref, 0xfffffffe, 0xffffffff) {
		t.Fatal("SetAux refused a live entry")
	}
	want := v
	want.Aux, want.Ext = 0xfffffffe, 0xffffffff
	for _, k := range []*Key{&f, &r} {
		if !tab.Lookup(k, &got) || got.Value != want {
			t.Errorf("after SetAux, lookup by %v: %+v, want %+v", *k, got.Value, want)
		}
	}
	tab.Range(func(c *Conn, _ time.Duration) bool {
		if c.Value != want {
			t.Errorf("Range: %+v, want %+v", c.Value, want)
		}
		return true
	})
	tab.Delete(c.Ref)
	if tab.SetAux(c.Ref, 1, 1) {
		t.Error("SetAux took a stale handle")
	}
}
