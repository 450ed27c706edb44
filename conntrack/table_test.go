package conntrack

import (
	"errors"
	"net/netip"
	"reflect"
	"sync/atomic"
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
	if tab.Timeouts() != DefaultTimeouts() {
		t.Errorf("default timeouts %+v", tab.Timeouts())
	}
	// More shards than buckets: every shard still owns at least one bucket.
	small := newTestTable(t, Config{Capacity: 3, Shards: 16})
	for i := range small.heads {
		if s := uint32(i) >> small.shardShift; s >= 16 {
			t.Fatalf("bucket %d maps to shard %d", i, s)
		}
	}
	for _, bad := range []Config{{Shards: 3}, {Capacity: -1}, {Capacity: maxCapacity + 1}, {MaxDests: -2}} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) succeeded", bad)
		}
	}
	if s := unsafe.Sizeof(shard{}); s != 128 {
		t.Errorf("shard is %d bytes, want 128 (two cache lines)", s)
	}
	if s := unsafe.Sizeof(entry{}); s != 128 {
		t.Errorf("entry is %d bytes, want 128 (two cache lines)", s)
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

func TestSameBucketKeys(t *testing.T) {
	// One bucket: every key collides, so chains, unlinking from the middle and both nodes of one entry in
	// one chain are all exercised.
	tab := newTable(Config{Capacity: 8, Shards: 1, MaxDests: 8}, 1)
	refs := make([]Ref, 8)
	for i := range 8 {
		fwd, rev := testKey(i), testRevKey(i)
		v := testValue(i)
		var c Conn
		if err := tab.Insert(&fwd, &rev, &v, protoTCP, fSYN, Input, 0, &c); err != nil {
			t.Fatal(err)
		}
		refs[i] = c.Ref
	}
	for _, del := range []int{3, 0, 7, 5} {
		if !tab.Delete(refs[del]) {
			t.Fatalf("delete %d failed", del)
		}
	}
	for i := range 8 {
		fwd, rev := testKey(i), testRevKey(i)
		var c Conn
		wantFound := i != 3 && i != 0 && i != 7 && i != 5
		if tab.Lookup(&fwd, &c) != wantFound || tab.Lookup(&rev, &c) != wantFound {
			t.Errorf("flow %d: found != %v", i, wantFound)
		}
		if wantFound && (c.Value != testValue(i) || c.Dir != DirReply) {
			t.Errorf("flow %d: %+v", i, c)
		}
		var lc Conn
		kw := packKey(&fwd)
		if tab.lookupLocked(&kw, 0, &lc) != wantFound || (wantFound && lc.Ref != refs[i]) {
			t.Errorf("flow %d: locked lookup disagrees", i)
		}
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
}

// TestWalkThroughRemovedNodes plays a lock-free reader that read a link to a node and stalled while the
// node was removed and its slot reused.
func TestWalkThroughRemovedNodes(t *testing.T) {
	insert := func(tab *Table, f, r *Key, v Value) Ref {
		t.Helper()
		var c Conn
		if err := tab.Insert(f, r, &v, protoTCP, fSYN, Input, 0, &c); err != nil {
			t.Fatal(err)
		}
		return c.Ref
	}
	walk := func(tab *Table, from uint32, k *Key) (int, Conn) {
		kw := packKey(k)
		var c Conn
		return tab.walk(from, &kw, k, tab.bucket(&kw), &c, true), c
	}
	fwdNode := func(r Ref) uint32 { return (r.idx-1)<<1 + 1 }
	revNode := func(r Ref) uint32 { return (r.idx-1)<<1 + 2 }

	t.Run("removed node leads on", func(t *testing.T) {
		tab := newTable(Config{Capacity: 4, Shards: 1, MaxDests: 8}, 1)
		a, b, c := testKey(1), testKey(2), testKey(3)
		insert(tab, &a, nil, testValue(1))
		rb := insert(tab, &b, nil, testValue(2))
		insert(tab, &c, nil, testValue(3)) // chain: c, b, a
		tab.Delete(rb)
		if res, got := walk(tab, fwdNode(rb), &a); res != lookupHit || got.Value != testValue(1) {
			t.Errorf("walk from removed node: %d %+v", res, got)
		}
	})
	t.Run("reused without reverse key", func(t *testing.T) {
		tab := newTable(Config{Capacity: 4, Shards: 1, MaxDests: 8}, 1)
		e, er, f := testKey(1), testRevKey(1), testKey(2)
		re := insert(tab, &e, &er, testValue(1))
		tab.Delete(re)
		rf := insert(tab, &f, nil, testValue(2))
		if rf.idx != re.idx {
			t.Fatal("slot not reused")
		}
		// The unused reverse node still holds er's words; they must not be taken for the new entry.
		if res, got := walk(tab, revNode(re), &er); res != lookupMiss {
			t.Errorf("old reverse key found through the reused entry: %d %+v", res, got)
		}
	})
	t.Run("reused in another bucket", func(t *testing.T) {
		tab := newTable(Config{Capacity: 4, Shards: 2, MaxDests: 8}, 2)
		var keys [2][]Key // by bucket
		for i := 0; len(keys[0]) < 2 || len(keys[1]) < 1; i++ {
			k := testKey(i)
			kw := packKey(&k)
			b := tab.bucket(&kw)
			keys[b] = append(keys[b], k)
		}
		a, x, y := keys[0][0], keys[0][1], keys[1][0]
		insert(tab, &a, nil, testValue(1))
		rx := insert(tab, &x, nil, testValue(2)) // bucket 0: x, a
		tab.Delete(rx)
		if ry := insert(tab, &y, nil, testValue(3)); ry.idx != rx.idx {
			t.Fatal("slot not reused")
		}
		if res, _ := walk(tab, fwdNode(rx), &a); res != lookupRetry {
			t.Errorf("walk into another bucket's chain gave %d, want a restart", res)
		}
		var c Conn
		if !tab.Lookup(&a, &c) || c.Value != testValue(1) {
			t.Error("lookup after restart failed")
		}
	})
}

// TestPointerFree guards the property the GC cost depends on: the table's big arrays hold no pointers.
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
	for _, v := range []any{entry{}, shard{}, destCounters{}, atomic.Uint32{}} {
		if ty := reflect.TypeOf(v); hasPointers(ty) {
			t.Errorf("%v contains pointers", ty)
		}
	}
	// The size target of the later scaling work: ten million entries in 1.5 GiB.
	tab := newTable(Config{Capacity: 1 << 10, Shards: 64, MaxDests: 4096}, 1<<10)
	perEntry := unsafe.Sizeof(entry{}) + unsafe.Sizeof(atomic.Uint32{}) + // entry, free-stack link
		uintptr(len(tab.heads))*unsafe.Sizeof(atomic.Uint32{})/uintptr(tab.Capacity()) // bucket heads
	if total := perEntry * 10_000_000; total > 3<<29 {
		t.Errorf("%d bytes per entry: 10M entries take %d MiB", perEntry, total>>20)
	}
}
