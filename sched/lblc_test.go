package sched

import (
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable Options.Clock.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newLoc(t *testing.T, name string, d []Dest) (Scheduler, *fakeClock) {
	t.Helper()
	c := &fakeClock{}
	return mustNewOpts(t, name, d, Options{Clock: c.now, Seed: 3}), c
}

func dst(i byte) *Flow {
	return &Flow{Proto: 6, SrcAddr: v4(1, 1, 1, i), DstAddr: v4(10, 9, 0, i), DstPort: 80}
}

// TestLocality: the same destination address keeps its real server while
// that one is not busy, whatever wlc would say now; other addresses get
// wlc's choice; the source does not matter.
func TestLocality(t *testing.T) {
	for _, name := range []string{"lblc", "lblcr"} {
		t.Run(name, func(t *testing.T) {
			d := dests(2, 2, 2)
			s, _ := newLoc(t, name, d)
			if got := s.Pick(dst(1), fakeLoads{}); got != 0 {
				t.Fatalf("first pick = %d, want wlc's 0", got)
			}
			// dest 0 now the busiest by wlc, but not busy by lblc's rule
			// (active <= weight).
			l := loadsFor(d, map[int][2]int64{0: {2, 50}, 1: {1, 0}})
			for i := range 5 {
				f := dst(1)
				f.SrcAddr = v4(7, 7, 7, byte(i))
				if got := s.Pick(f, l); got != 0 {
					t.Fatalf("pick %d for the same destination = %d, want 0", i, got)
				}
			}
			if got := s.Pick(dst(2), l); got != 2 {
				t.Fatalf("new destination = %d, want wlc's 2", got)
			}
		})
	}
}

// TestLBLCSpill: lblc moves an address off its real server when that one
// has more active connections than its weight while another has fewer than
// half its weight (is_overloaded), and the address stays moved.
func TestLBLCSpill(t *testing.T) {
	d := dests(2, 2, 4)
	s, _ := newLoc(t, "lblc", d)
	if got := s.Pick(dst(1), nil); got != 0 {
		t.Fatalf("first pick = %d", got)
	}
	tests := []struct {
		name  string
		loads map[int][2]int64
		want  int
	}{
		{"at weight: stays", map[int][2]int64{0: {2, 0}}, 0},
		{"over weight, nobody under half: stays", map[int][2]int64{0: {3, 0}, 1: {1, 0}, 2: {2, 0}}, 0},
		{"over weight, dest 1 under half: moves to wlc's choice", map[int][2]int64{0: {3, 0}, 1: {0, 9}, 2: {2, 0}}, 1},
		{"and stays there", map[int][2]int64{0: {0, 0}, 1: {1, 0}, 2: {0, 0}}, 1},
	}
	for _, tt := range tests {
		if got := s.Pick(dst(1), loadsFor(d, tt.loads)); got != tt.want {
			t.Fatalf("%s: Pick = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestLocalityThreshold: an entry's real server over its threshold is
// passed over like any busy one.
func TestLocalityThreshold(t *testing.T) {
	for _, name := range []string{"lblc", "lblcr"} {
		d := dests(5, 5)
		d[0].UpperThreshold = 3
		s, _ := newLoc(t, name, d)
		if got := s.Pick(dst(1), nil); got != 0 {
			t.Fatalf("%s: first pick = %d", name, got)
		}
		if got := s.Pick(dst(1), loadsFor(d, map[int][2]int64{0: {3, 0}, 1: {4, 0}})); got != 1 {
			t.Fatalf("%s: cached real server overloaded: Pick = %d, want 1", name, got)
		}
	}
}

// TestLocalityExpiry: an entry lives for 24 hours after its last use.
func TestLocalityExpiry(t *testing.T) {
	for _, name := range []string{"lblc", "lblcr"} {
		t.Run(name, func(t *testing.T) {
			d := dests(1, 1)
			s, clk := newLoc(t, name, d)
			s.Pick(dst(1), nil) // -> 0
			l := loadsFor(d, map[int][2]int64{0: {1, 0}})
			clk.advance(24*time.Hour - time.Second)
			if got := s.Pick(dst(1), l); got != 0 {
				t.Fatalf("used a second short of a day ago: Pick = %d, want the entry's 0", got)
			}
			clk.advance(24*time.Hour - time.Second)
			if got := s.Pick(dst(1), l); got != 0 {
				t.Fatalf("the last use refreshed it: Pick = %d, want 0", got)
			}
			clk.advance(24 * time.Hour)
			if got := s.Pick(dst(1), l); got != 1 {
				t.Fatalf("idle for a day: Pick = %d, want wlc's 1", got)
			}
		})
	}
}

// sameSet returns n destination flows whose keys fall in one set of tab.
func sameSet(tab *locTable, n int) []*Flow {
	var out []*Flow
	want := -1
	for i := 0; len(out) < n; i++ {
		f := &Flow{DstAddr: v4(10, byte(i>>16), byte(i>>8), byte(i))}
		set := tab.setOf(keyOf(&f.DstAddr))
		if want < 0 {
			want = set
		}
		if set == want {
			out = append(out, f)
		}
	}
	return out
}

// TestLocTableEviction: a full set drops its least recently used entry,
// and a lookup counts as a use.
func TestLocTableEviction(t *testing.T) {
	d := dests(1, 1, 1, 1, 1, 1)
	s, clk := newLoc(t, "lblc", d)
	tab := &s.(*lblc).tab
	fs := sameSet(tab, locWays+2)
	has := func(f *Flow) bool {
		var snap locSnap
		return tab.lookup(keyOf(&f.DstAddr), tab.now(), &snap)
	}
	for _, f := range fs[:locWays] {
		s.Pick(f, nil)
		clk.advance(time.Second)
	}
	s.Pick(fs[0], nil) // fs[1] is now the least recently used
	clk.advance(time.Second)
	s.Pick(fs[locWays], nil)
	if has(fs[1]) {
		t.Error("the least recently used entry survived an insert into its full set")
	}
	for _, f := range append(fs[2:locWays+1:locWays+1], fs[0]) {
		if !has(f) {
			t.Errorf("entry %x evicted instead", f.DstAddr)
		}
	}
	// An expired entry goes first, LRU or not.
	clk.advance(24 * time.Hour)
	s.Pick(fs[2], nil) // fresh again; all others expired
	s.Pick(fs[locWays+1], nil)
	if !has(fs[2]) || !has(fs[locWays+1]) {
		t.Error("an expired entry was kept over a live one")
	}
}

// TestLocTableBounded fills far more addresses than the table holds; it
// keeps serving them and no more entries than its size stay live.
func TestLocTableBounded(t *testing.T) {
	s, _ := newLoc(t, "lblcr", dests(1, 2, 3))
	for i := range 2 * locEntries {
		f := &Flow{DstAddr: v4(10, byte(i>>16), byte(i>>8), byte(i))}
		if got := s.Pick(f, nil); got < 0 {
			t.Fatalf("pick %d = %d", i, got)
		}
	}
	tab := &s.(*lblcr).tab
	if len(tab.entries) != locEntries || len(tab.members) != locEntries*lblcrMaxSet {
		t.Fatalf("table grew: %d entries, %d member slots", len(tab.entries), len(tab.members))
	}
}

func lblcrSet(t *testing.T, s Scheduler, f *Flow) []int32 {
	t.Helper()
	tab := &s.(*lblcr).tab
	var snap locSnap
	if !tab.lookup(keyOf(&f.DstAddr), tab.now(), &snap) {
		return nil
	}
	return append([]int32(nil), snap.members[:snap.n]...)
}

// TestLBLCRReplication: a busy set grows by wlc's choice, the least loaded
// member takes the flows, and a set unchanged for a day loses its most
// loaded member.
func TestLBLCRReplication(t *testing.T) {
	d := dests(2, 2, 2, 2)
	s, clk := newLoc(t, "lblcr", d)
	f := dst(1)
	if got := s.Pick(f, nil); got != 0 {
		t.Fatalf("first pick = %d", got)
	}
	// 0 over its weight, 3 under half its weight: busy; wlc picks 3.
	busy := loadsFor(d, map[int][2]int64{0: {3, 0}, 1: {2, 0}, 2: {2, 0}})
	if got := s.Pick(f, busy); got != 3 {
		t.Fatalf("busy: Pick = %d, want wlc's 3", got)
	}
	if set := lblcrSet(t, s, f); len(set) != 2 || set[0] != 3 || set[1] != 0 {
		t.Fatalf("set %v, want [3 0] (newest first)", set)
	}
	// The set's least loaded member serves, not wlc's overall choice.
	l := loadsFor(d, map[int][2]int64{0: {1, 0}, 1: {0, 0}, 2: {0, 0}, 3: {2, 0}})
	if got := s.Pick(f, l); got != 0 {
		t.Fatalf("set {3, 0}: Pick = %d, want its least loaded 0", got)
	}
	// Equal load: the newest member (first in IPVS's list) wins.
	if got := s.Pick(f, nil); got != 3 {
		t.Fatalf("set {3, 0} idle: Pick = %d, want the newest, 3", got)
	}
	// A day unchanged (but used): the most loaded member goes.
	clk.advance(12 * time.Hour)
	s.Pick(f, l)
	clk.advance(12*time.Hour + time.Second)
	if got := s.Pick(f, l); got != 0 {
		t.Fatalf("trim: Pick = %d, want 0", got)
	}
	if set := lblcrSet(t, s, f); len(set) != 1 || set[0] != 0 {
		t.Fatalf("after a day unchanged: set %v, want [0] (3 was the most loaded)", set)
	}
	// One member left: no more trimming, however old the set.
	clk.advance(23 * time.Hour)
	s.Pick(f, l)
	clk.advance(23 * time.Hour)
	s.Pick(f, l)
	if set := lblcrSet(t, s, f); len(set) != 1 {
		t.Fatalf("single-member set trimmed: %v", set)
	}
}

// TestLBLCRSetBound: a set stops at lblcrMaxSet members and makes room by
// dropping its most loaded one.
func TestLBLCRSetBound(t *testing.T) {
	n := lblcrMaxSet + 3
	d := dests(make([]int, n)...)
	for i := range d {
		d[i].Weight = 2
	}
	s, _ := newLoc(t, "lblcr", d)
	f := dst(1)
	s.Pick(f, nil)
	// Each round: every member busy (3 active > weight 2), the others idle
	// (0*2 < 2): the set grows by wlc's choice, the first idle one.
	l := make(fakeLoads)
	for range n - 1 {
		for _, m := range lblcrSet(t, s, f) {
			l[d[m].ID] = [2]int64{3, int64(m)} // the higher the index, the more loaded
		}
		s.Pick(f, l)
	}
	set := lblcrSet(t, s, f)
	if len(set) != lblcrMaxSet {
		t.Fatalf("set %v: %d members, want %d", set, len(set), lblcrMaxSet)
	}
	seen := make(map[int32]bool)
	for _, m := range set {
		if seen[m] {
			t.Fatalf("set %v holds %d twice", set, m)
		}
		seen[m] = true
	}
	if !seen[int32(n-1)] {
		t.Errorf("set %v lacks the newest member %d", set, n-1)
	}
	if !seen[0] || !seen[1] {
		t.Errorf("set %v dropped a least loaded member", set)
	}
}
