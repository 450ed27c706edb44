package sched

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMHPopulatePaper runs the example of the Maglev paper (NSDI '16,
// table 1): table size 7, B0 offset 3 skip 4, B1 offset 0 skip 2, B2
// offset 3 skip 1; then without B1.
func TestMHPopulatePaper(t *testing.T) {
	b0, b1, b2 := mhSetup{3, 4, 1}, mhSetup{0, 2, 1}, mhSetup{3, 1, 1}
	if got, want := mhPopulate([]mhSetup{b0, b1, b2}, 7), []int32{1, 0, 1, 0, 2, 2, 0}; !slices.Equal(got, want) {
		t.Errorf("before: %v, want %v", got, want)
	}
	if got, want := mhPopulate([]mhSetup{b0, b2}, 7), []int32{0, 0, 0, 0, 1, 1, 1}; !slices.Equal(got, want) {
		t.Errorf("after B1 left: %v, want %v", got, want)
	}
	// Turns: B0 claims two slots per round.
	b0.turns = 2
	if got, want := mhPopulate([]mhSetup{b0, b1}, 7), []int32{0, 0, 1, 0, 0, 0, 1}; !slices.Equal(got, want) {
		t.Errorf("B0 with 2 turns: %v, want %v", got, want)
	}
}

func TestMHTurns(t *testing.T) {
	tests := []struct {
		weights []int
		turns   []int
	}{
		{[]int{1, 2, 3}, []int{1, 2, 3}},
		{[]int{4, 8, 0, 12}, []int{1, 2, 0, 3}},    // gcd 4
		{[]int{63, 1}, []int{63, 1}},               // 63 fits 6 bits: no shift
		{[]int{64, 1}, []int{32, 1}},               // fls(64) = 7: shift 1
		{[]int{65535, 32768, 1}, []int{63, 32, 1}}, // shift 10; 1 >> 10 is 0, raised to 1
		{[]int{0, 0}, nil},
	}
	keys := mhKeys(0)
	for _, tt := range tests {
		setup := mhPermutate(dests(tt.weights...), &keys)
		var turns []int
		for _, s := range setup {
			turns = append(turns, s.turns)
		}
		if !slices.Equal(turns, tt.turns) {
			t.Errorf("weights %v: turns %v, want %v", tt.weights, turns, tt.turns)
		}
	}
}

// mhSlots returns how many table slots each dest holds.
func mhSlots(t *testing.T, s Scheduler, n int) []int {
	t.Helper()
	c := make([]int, n)
	for _, d := range s.(*mh).table {
		c[d]++
	}
	return c
}

// TestMHDisruption removes one of N real servers (the first, a middle and
// the last one in turn), N = 2..20, and measures the share of keys that move: the leaving one's 1/N, and
// little more (Maglev trades a little disruption for its even spread).
func TestMHDisruption(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	keys := make([]Flow, 20000)
	for i := range keys {
		var a [16]byte
		for j := range a {
			a[j] = byte(rng.Uint32())
		}
		keys[i] = Flow{Proto: 6, SrcAddr: a}
	}
	worstExcess := 0.0
	step := 1
	if raceEnabled {
		step = 6
	}
	for n := 2; n <= 20; n += step {
		all := dests(slices.Repeat([]int{1}, n)...)
		before := mustNew(t, "mh", all).(*mh)
		var sumSlots, sumKeys float64
		// The first, a middle and the last one leaving.
		leaving := slices.Compact([]int{0, n / 2, n - 1})
		for _, k := range leaving {
			rest := slices.Delete(slices.Clone(all), k, k+1)
			after := mustNew(t, "mh", rest).(*mh)
			orig := func(j int32) int32 { // index in rest -> index in all
				if int(j) >= k {
					return j + 1
				}
				return j
			}
			moved := 0
			for i, d := range before.table {
				if orig(after.table[i]) != d {
					moved++
				}
			}
			fs := float64(moved) / mhTabSize
			movedKeys := 0
			for i := range keys {
				if b, a := before.Pick(&keys[i], nil), after.Pick(&keys[i], nil); int32(b) != orig(int32(a)) {
					movedKeys++
				}
			}
			fk := float64(movedKeys) / float64(len(keys))
			sumSlots += fs
			sumKeys += fk
			// Table slots are exact; keys sample them, with noise of
			// about sqrt(p/20000) < 0.4%.
			if limit := 1/float64(n) + 0.01; fs > limit || fk > limit+0.01 {
				t.Errorf("N=%d, server %d leaves: %.4f of slots and %.4f of keys moved, want <= %.4f", n, k, fs, fk, limit)
			}
			worstExcess = max(worstExcess, fs-1/float64(n))
		}
		t.Logf("N=%2d: one leaves, moved %.4f of slots, %.4f of keys (1/N = %.4f)", n, sumSlots/float64(len(leaving)), sumKeys/float64(len(leaving)), 1/float64(n))
	}
	t.Logf("worst excess over 1/N: %.4f", worstExcess)
}

// TestMHDistribution: equal weights share the table to within one slot, and
// random keys to within a few percent; weights share it in proportion.
func TestMHDistribution(t *testing.T) {
	for _, n := range []int{3, 7, 16} {
		s := mustNew(t, "mh", dests(slices.Repeat([]int{5}, n)...))
		slots := mhSlots(t, s, n)
		if slices.Max(slots)-slices.Min(slots) > 1 {
			t.Errorf("N=%d equal weights: slots %v differ by more than one", n, slots)
		}
		counts := make([]int, n)
		rng := rand.New(rand.NewPCG(uint64(n), 3))
		const keys = 100000
		for range keys {
			f := Flow{SrcAddr: v4(byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()))}
			f.SrcAddr[0] = byte(rng.Uint32()) // IPv6 too
			counts[s.Pick(&f, nil)]++
		}
		mean := float64(keys) / float64(n)
		for i, c := range counts {
			if dev := math.Abs(float64(c)-mean) / mean; dev > 0.05 {
				t.Errorf("N=%d: dest %d got %d keys, %.1f%% off the mean %.0f", n, i, c, 100*dev, mean)
			}
		}
		t.Logf("N=%d: slots %v, keys %v", n, slots, counts)
	}

	for _, weights := range [][]int{{1, 2, 3, 4}, {10, 30, 0, 60}, {65535, 32768, 1}} {
		s := mustNew(t, "mh", dests(weights...))
		keys := mhKeys(0)
		setup := mhPermutate(dests(weights...), &keys)
		total := 0
		for _, x := range setup {
			total += x.turns
		}
		slots := mhSlots(t, s, len(weights))
		for i, x := range setup {
			want := float64(mhTabSize) * float64(x.turns) / float64(total)
			if math.Abs(float64(slots[i])-want) > float64(x.turns)+1 {
				t.Errorf("weights %v: dest %d (turns %d) holds %d slots, want %.0f", weights, i, x.turns, slots[i], want)
			}
		}
		t.Logf("weights %v: slots %v", weights, slots)
	}
}

// TestMHSeed: the same seed and real servers give the same table and the
// same answer for every key, on any director; another seed another table.
func TestMHSeed(t *testing.T) {
	d := dests(3, 1, 4, 1, 5)
	for _, seed := range []uint64{0, 1, 0xfeedface} {
		a := mustNewOpts(t, "mh", d, Options{Seed: seed}).(*mh)
		b := mustNewOpts(t, "mh", slices.Clone(d), Options{Seed: seed}).(*mh)
		if !slices.Equal(a.table, b.table) {
			t.Fatalf("seed %d: two instances built different tables", seed)
		}
		for i, f := range testFlows(5000) {
			if x, y := a.Pick(&f, nil), b.Pick(&f, nil); x != y {
				t.Fatalf("seed %d flow %d: %d and %d", seed, i, x, y)
			}
		}
	}
	a := mustNewOpts(t, "mh", d, Options{Seed: 1}).(*mh)
	b := mustNewOpts(t, "mh", d, Options{Seed: 2}).(*mh)
	if slices.Equal(a.table, b.table) {
		t.Error("seeds 1 and 2 built the same table")
	}
	if k := mhKeys(0); k != [2]sipKey{{2654435761, 2654435761}, {2654446892, 2654446892}} {
		t.Errorf("seed 0 keys %x, want IPVS's", k)
	}
}

// mhFallbackOracle transliterates ip_vs_mh_get_fallback.
func mhFallbackOracle(s *mh, f *Flow, avail func(int) bool) int {
	var port uint32
	if s.flags&flagPort != 0 {
		port = flowPort(f)
	}
	hashkey := func(offset uint32) uint32 {
		return hsiphash32(offset+port+fold(&f.SrcAddr), &s.key)
	}
	ihash := hashkey(0) % mhTabSize
	if d := int(s.table[ihash]); avail(d) {
		return d
	}
	for offset := uint32(0); offset < mhTabSize; offset++ {
		roffset := (offset + ihash) % mhTabSize
		if d := int(s.table[hashkey(roffset)%mhTabSize]); avail(d) {
			return d
		}
	}
	return -1
}

// TestMHFallback: when the hashed real server is overloaded, mh gives -1
// and mh-fallback IPVS's next choice; a weight-0 real server has no slots
// (see the mh type), so only overload makes one unavailable.
func TestMHFallback(t *testing.T) {
	d := dests(1, 0, 1, 1)
	d[2].UpperThreshold = 3
	l := fakeLoads{d[2].ID: {2, 1}}
	avail := func(i int) bool { return i != 2 }
	plain := mustNew(t, "mh", d).(*mh)
	fb := mustNewOpts(t, "mh", d, Options{Flags: []string{"mh-fallback", "mh-port"}}).(*mh)
	if slots := mhSlots(t, plain, len(d)); slots[1] != 0 {
		t.Fatalf("weight 0 holds %d slots", slots[1])
	}
	flows := testFlows(300)
	refused := 0
	for i := range flows {
		f := &flows[i]
		want := mhFallbackOracle(fb, f, avail)
		if got := fb.Pick(f, l); got != want || got < 0 || got == 2 {
			t.Fatalf("flow %d: mh-fallback Pick = %d, want %d", i, got, want)
		}
		h := int(plain.table[hsiphash32(fold(&f.SrcAddr), &plain.key)%mhTabSize])
		p := plain.Pick(f, l)
		if h == 2 {
			refused++
			if p != -1 {
				t.Fatalf("flow %d: hashed to the overloaded real server, mh picked %d", i, p)
			}
		} else if p != h {
			t.Fatalf("flow %d: Pick = %d, want the hashed %d", i, p, h)
		}
	}
	if refused == 0 {
		t.Error("no flow hashed to the overloaded real server: test proves nothing")
	}
	// Every real server unavailable: -1 with or without fallback.
	all := fakeLoads{}
	for i := range d {
		d[i].UpperThreshold = 1
		all[d[i].ID] = [2]int64{1, 0}
	}
	fb = mustNewOpts(t, "mh", d, Options{Flags: []string{"mh-fallback"}}).(*mh)
	if got := fb.Pick(&flows[0], all); got != -1 {
		t.Errorf("all overloaded: mh-fallback Pick = %d", got)
	}
}

func TestMHTooManyDests(t *testing.T) {
	if _, err := New("mh", make([]Dest, mhTabSize+1)); err == nil {
		t.Fatal("mh accepted more real servers than table slots")
	}
}
