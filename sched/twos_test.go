package sched

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// twosSample is the oracle's draw: the first available dest whose
// cumulative weight reaches r.
func twosSample(d []Dest, r int64) int {
	var cum int64
	for i, x := range d {
		if x.Weight == 0 {
			continue
		}
		if cum += int64(x.Weight); cum >= r {
			return i
		}
	}
	return -1
}

// TestTwosChoice checks choose against the oracle on random states and
// draws: the pick is one of the two sampled, and the second one only when
// its overhead/weight is strictly lower.
func TestTwosChoice(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for iter := range 3000 {
		n := 1 + rng.IntN(6)
		d := make([]Dest, n)
		l := make(fakeLoads)
		var total int64
		for i := range d {
			d[i] = Dest{ID: uint32(i), Weight: rng.IntN(3) * (1 + rng.IntN(4))}
			l[d[i].ID] = [2]int64{rng.Int64N(4), rng.Int64N(2) * 256}
			total += int64(d[i].Weight)
		}
		s := newTwos(d, 1).(*twos)
		r1, r2 := rng.Uint64(), rng.Uint64()
		got := s.choose(l, r1, r2)
		if total == 0 {
			if got != -1 {
				t.Fatalf("iter %d: no weights, Pick = %d", iter, got)
			}
			continue
		}
		c1 := twosSample(d, int64(r1%uint64(total+1)))
		c2 := twosSample(d, int64(r2%uint64(total+1)))
		want := c1
		a1, i1 := l.Conns(d[c1].ID)
		a2, i2 := l.Conns(d[c2].ID)
		if int64(d[c2].Weight)*overhead(a1, i1) > int64(d[c1].Weight)*overhead(a2, i2) {
			want = c2
		}
		if got != want || (got != c1 && got != c2) {
			t.Fatalf("iter %d: dests %v loads %v sampled %d, %d: Pick = %d, want %d", iter, d, l, c1, c2, got, want)
		}
	}
}

// TestTwosDistribution: with no load anywhere the first sample always
// wins, so picks follow the weights (the first real server has one chance
// in total+1 more); with one real server loaded it gets a pick only when
// both samples fall on it.
func TestTwosDistribution(t *testing.T) {
	const picks = 200000
	d := dests(1, 2, 3, 4)
	s := mustNewOpts(t, "twos", d, Options{Seed: 99})
	counts := make([]int, len(d))
	for range picks {
		counts[s.Pick(nil, nil)]++
	}
	for i, c := range counts {
		want := float64(d[i].Weight) / 11
		if i == 0 {
			want = 2.0 / 11
		}
		if got := float64(c) / picks; math.Abs(got-want) > 0.01 {
			t.Errorf("idle: dest %d share %.4f, want %.4f", i, got, want)
		}
	}

	d = dests(1, 1)
	s = mustNewOpts(t, "twos", d, Options{Seed: 5})
	l := loadsFor(d, map[int][2]int64{0: {10, 0}})
	busy := 0
	for range picks {
		if s.Pick(nil, l) == 0 {
			busy++
		}
	}
	// Each sample is dest 0 with probability 2/3 (0..2 drawn, 0 and 1 land
	// on it): both are with 4/9.
	if got := float64(busy) / picks; math.Abs(got-4.0/9) > 0.01 {
		t.Errorf("loaded dest share %.4f, want %.4f", got, 4.0/9)
	}
}

func TestTwosSeed(t *testing.T) {
	d := dests(1, 1, 1, 1, 1)
	run := func(seed uint64) []int {
		return picks(mustNewOpts(t, "twos", d, Options{Seed: seed}), 200, nil)
	}
	if a, b := run(7), run(7); !slices.Equal(a, b) {
		t.Error("the same seed gave different sequences")
	}
	if a, b := run(7), run(8); slices.Equal(a, b) {
		t.Error("seeds 7 and 8 gave the same sequence")
	}
}
