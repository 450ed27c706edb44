package conntrack

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// checkConn verifies that c is one untorn incarnation of flow id(c.Orig), found by key q.
func checkConn(c *Conn, q *Key) error {
	id := int(c.Orig.SrcAddr[14])<<8 | int(c.Orig.SrcAddr[15])
	if c.Orig != testKey(id) {
		return fmt.Errorf("orig %v is not a test key", c.Orig)
	}
	if c.Value != testValue(id) {
		return fmt.Errorf("flow %d: value %+v, want %+v", id, c.Value, testValue(id))
	}
	want := c.Orig
	if c.Dir == DirReply {
		want = testRevKey(id)
	}
	if *q != want {
		return fmt.Errorf("flow %d: looked up %v, entry's %v key is %v", id, *q, c.Dir, want)
	}
	if c.State >= numStates || c.State == None {
		return fmt.Errorf("flow %d: state %v", id, c.State)
	}
	return nil
}

// TestConcurrent runs writers (insert, touch, delete, sweep) against lock-free readers on a table with
// few buckets, so that buckets overflow and entries are reused under the readers all the time. Readers
// must never see a torn entry and must always find the entries that are never removed: under
// EvictOldestIdle too, where inserts into the full table evict all the time, since those entries are
// ESTABLISHED.
func TestConcurrent(t *testing.T) {
	for _, p := range []FullPolicy{Refuse, EvictOldestIdle} {
		t.Run(p.String(), func(t *testing.T) { testConcurrent(t, p) })
	}
}

func testConcurrent(t *testing.T, policy FullPolicy) {
	const (
		permanent = 24
		pool      = 160
		capacity  = 96
	)
	// 4 shards of 8 buckets: up to 48 keys for 64 slots in a shard.
	// ESTABLISHED (the permanent entries) never times out during the run; the other states do.
	tab := newSmallTable(t, Config{Capacity: capacity, Shards: 4, MaxDests: 8, FullPolicy: policy}, 8)
	tab.SetTimeouts(Timeouts{TCP: 1e6 * time.Second})
	var clock atomic.Int64
	for i := range permanent {
		f, r := testKey(i), testRevKey(i)
		v := testValue(i)
		var c Conn
		if err := tab.Insert(&f, &r, &v, protoTCP, fSYN, Input, 0, &c); err != nil {
			t.Fatal(err)
		}
		tab.Touch(c.Ref, fACK, Input, 0)
	}

	stop := time.Now().Add(700 * time.Millisecond)
	var wg sync.WaitGroup
	var lookups, hits atomic.Int64
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
	}
	for w := range 3 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; i < 1_000_000 && time.Now().Before(stop); i++ {
				id := permanent + rng.IntN(pool)
				f, r := testKey(id), testRevKey(id)
				now := clock.Load()
				var c Conn
				switch op := rng.IntN(20); {
				case op < 8:
					v := testValue(id)
					rev := &r
					if id%3 == 0 {
						rev = nil
					}
					err := tab.Insert(&f, rev, &v, protoTCP, fSYN, Input, now, &c)
					switch {
					case err == nil, errors.Is(err, ErrFull):
					case errors.Is(err, ErrExists):
						if err := checkConn(&c, &f); err != nil {
							fail("insert exists: %v", err)
						}
					default:
						fail("insert: %v", err)
					}
				case op < 19:
					if tab.Lookup(&f, &c) {
						if err := checkConn(&c, &f); err != nil {
							fail("writer lookup: %v", err)
						}
						flags := []uint8{fACK, fFINACK, fRST, fSYN}[rng.IntN(4)]
						tab.Touch(c.Ref, flags, PacketDir(rng.IntN(3)), now)
					}
				default:
					k := &f
					if id%3 != 0 {
						k = &r
					}
					if tab.Lookup(k, &c) {
						tab.Delete(c.Ref)
					}
				}
			}
		})
	}
	wg.Go(func() {
		for time.Now().Before(stop) {
			tab.Sweep(clock.Add(int64(10*time.Second)), 16)
			time.Sleep(50 * time.Microsecond)
		}
	})
	for range 2 {
		wg.Go(func() {
			var c Conn
			for i := 0; time.Now().Before(stop); i++ {
				id := i % (permanent + pool)
				f, r := testKey(id), testRevKey(id)
				for _, k := range []*Key{&f, &r} {
					found := tab.Lookup(k, &c)
					lookups.Add(1)
					if found {
						hits.Add(1)
						if err := checkConn(&c, k); err != nil {
							fail("reader: %v", err)
							return
						}
					} else if id < permanent {
						fail("reader: permanent flow %d not found by %v", id, *k)
						return
					}
				}
				if id < permanent {
					if st := tab.Touch(c.Ref, fACK, Input, clock.Load()); st != Established {
						fail("permanent flow %d: touch gave %v", id, st)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d lookups, %d hits; stats %+v", lookups.Load(), hits.Load(), tab.Stats())
	st := tab.Stats()
	if st.Expired == 0 || st.Deletes == 0 || (policy == Refuse && st.FullDrops == 0) || (policy == EvictOldestIdle && st.Evicted == 0) {
		t.Errorf("the run did not exercise expiry, deletion and a full table: %+v", st)
	}
	checkIndex(t, tab)

	// Quiescent: the counters must be exact.
	var want [8][2]int64
	n := 0
	var refs []Ref
	tab.Range(func(c *Conn, _ time.Duration) bool {
		n++
		refs = append(refs, c.Ref)
		if c.State == Established {
			want[c.Value.Dest][0]++
		} else {
			want[c.Value.Dest][1]++
		}
		return true
	})
	st = tab.Stats()
	if n != tab.Len() || st.Entries != n || st.Inserts-st.Deletes-st.Expired-st.Evicted != uint64(n) {
		t.Fatalf("range saw %d, Len %d, stats %+v", n, tab.Len(), st)
	}
	for d := range uint32(8) {
		if a, i := tab.DestConns(d); a != want[d][0] || i != want[d][1] {
			t.Errorf("dest %d: %d/%d, want %d/%d", d, a, i, want[d][0], want[d][1])
		}
	}
	// Empty it and fill it again: no entry slot may have been lost or duplicated by the free list.
	for _, r := range refs {
		if !tab.Delete(r) {
			t.Fatal("delete of a ranged entry failed")
		}
	}
	for d := range uint32(8) {
		if a, i := tab.DestConns(d); a != 0 || i != 0 {
			t.Errorf("dest %d after emptying: %d/%d", d, a, i)
		}
	}
	checkIndex(t, tab)
	for i := range capacity {
		f := testKey(1000 + i)
		if err := tab.Insert(&f, nil, &Value{}, protoUDP, 0, Input, 0, nil); err != nil {
			t.Fatalf("refill insert %d: %v", i, err)
		}
	}
	// One more: refused, or let in by evicting one of the (idle, UDP) refill entries.
	evicted := tab.Stats().Evicted
	f := testKey(1000 + capacity)
	err := tab.Insert(&f, nil, &Value{}, protoUDP, 0, Input, 0, nil)
	if policy == Refuse && !errors.Is(err, ErrFull) || policy == EvictOldestIdle && (err != nil || tab.Stats().Evicted != evicted+1) {
		t.Fatalf("insert into the refilled table under %v: %v, stats %+v", policy, err, tab.Stats())
	}
	checkIndex(t, tab)
}

// TestTornReads reuses one entry slot as fast as possible for two flows with different values while
// readers look both up: a reader that mixed the key of one incarnation with the value of the next would
// report the wrong value.
func TestTornReads(t *testing.T) {
	tab := newSmallTable(t, Config{Capacity: 1, Shards: 1, MaxDests: 8}, 1)
	keys := [2]Key{testKey(1), testKey(2)}
	revs := [2]Key{testRevKey(1), testRevKey(2)}
	// Run for 300 ms, longer (up to 3 s) if the readers, on a busy machine, have not found entries often.
	var hits atomic.Int64
	start := time.Now()
	running := func() bool {
		d := time.Since(start)
		return d < 300*time.Millisecond || (d < 3*time.Second && hits.Load() < 1000)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		var c Conn
		for i := 0; running(); i++ {
			v := testValue(1 + i&1)
			if err := tab.Insert(&keys[i&1], &revs[i&1], &v, protoTCP, fSYN, Input, 0, &c); err != nil {
				t.Errorf("insert: %v", err)
				return
			}
			tab.Delete(c.Ref)
		}
	})
	for range 2 {
		wg.Go(func() {
			var c Conn
			for i := 0; running(); i++ {
				k := &keys[i&1]
				if i&2 != 0 {
					k = &revs[i&1]
				}
				if tab.Lookup(k, &c) {
					hits.Add(1)
					if err := checkConn(&c, k); err != nil {
						t.Errorf("torn read: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if hits.Load() == 0 {
		t.Error("readers never found an entry")
	}
}

// TestChurnAtCapacity keeps a table exactly full while two goroutines each delete one of their flows and
// insert a new one, over and over: an insert always follows its own goroutine's delete, so it must never
// find the table full, however the free entries move between the shards' lists meanwhile.
func TestChurnAtCapacity(t *testing.T) {
	const capacity = 256
	tab := newTestTable(t, Config{Capacity: capacity})
	refs := make([]Ref, capacity)
	for i := range refs {
		refs[i] = establish(t, tab, i, 0)
	}
	stop := time.Now().Add(300 * time.Millisecond)
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			var c Conn
			for k := 0; k < 1_000_000 && time.Now().Before(stop); k++ {
				j := (g + 2*k) % capacity
				if !tab.Delete(refs[j]) {
					t.Errorf("delete of slot %d failed", j)
					return
				}
				id := capacity + g + 2*k
				f, r := testKey(id), testRevKey(id)
				v := testValue(id)
				if err := tab.Insert(&f, &r, &v, protoTCP, fSYN, Input, 0, &c); err != nil {
					t.Errorf("goroutine %d, op %d: %v (Len %d)", g, k, err, tab.Len())
					return
				}
				refs[j] = c.Ref
			}
		})
	}
	wg.Wait()
	checkIndex(t, tab)
	if tab.Len() != capacity {
		t.Errorf("Len %d", tab.Len())
	}
}
