package sched

import (
	"math/big"
	"math/rand/v2"
	"testing"
)

// fakeLoads maps a real-server id to its (active, inactive) counts.
type fakeLoads map[uint32][2]int64

func (l fakeLoads) Conns(id uint32) (active, inactive int64) {
	c := l[id]
	return c[0], c[1]
}

func TestWLC(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		loads   map[int][2]int64 // by dest index
		want    int
	}{
		{"idle picks first", []int{1, 1, 1}, nil, 0},
		{"skips weight 0", []int{0, 1}, nil, 1},
		{"weight 0 even when idle", []int{0, 1}, map[int][2]int64{1: {10, 0}}, 1},
		{"all zero", []int{0, 0}, nil, -1},
		{"inactive cheaper than one active", []int{1, 1}, map[int][2]int64{0: {1, 0}, 1: {0, 255}}, 1},
		{"256 inactive equal one active, first wins", []int{1, 1}, map[int][2]int64{0: {1, 0}, 1: {0, 256}}, 0},
		{"257 inactive worse than one active", []int{1, 1}, map[int][2]int64{0: {1, 0}, 1: {0, 257}}, 0},
		{"weight scales: tie", []int{2, 1}, map[int][2]int64{0: {2, 0}, 1: {1, 0}}, 0},
		{"weight scales: heavier less loaded", []int{2, 1}, map[int][2]int64{0: {3, 0}, 1: {1, 0}}, 1},
		{"weight scales: heavier wins", []int{3, 1}, map[int][2]int64{0: {2, 0}, 1: {1, 0}}, 0},
		{"least in the middle", []int{1, 1, 1}, map[int][2]int64{0: {5, 5}, 1: {4, 9}, 2: {5, 0}}, 1},
		{"first minimum wins", []int{1, 4, 2}, map[int][2]int64{0: {1, 0}, 1: {4, 0}, 2: {2, 0}}, 0},
		{"large weight vs idle", []int{65535, 1}, map[int][2]int64{0: {1000, 0}, 1: {0, 0}}, 1},
		{"large weight", []int{65535, 1}, map[int][2]int64{0: {1000, 0}, 1: {1, 0}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dests(tt.weights...)
			loads := make(fakeLoads)
			for i, c := range tt.loads {
				loads[d[i].ID] = c
			}
			s := mustNew(t, "wlc", d)
			for range 3 { // stateless: same answer every time
				if got := s.Pick(&Flow{}, loads); got != tt.want {
					t.Fatalf("Pick = %d, want %d", got, tt.want)
				}
			}
		})
	}
}

// TestWLCMatchesRatio checks wlc against exact rational arithmetic on random
// loads: the pick has the least overhead/weight and no earlier dest ties it.
func TestWLCMatchesRatio(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := range 2000 {
		n := 1 + rng.IntN(6)
		d := make([]Dest, n)
		loads := make(fakeLoads)
		for i := range d {
			d[i] = Dest{ID: rng.Uint32(), Weight: rng.IntN(4) * rng.IntN(100)}
			loads[d[i].ID] = [2]int64{rng.Int64N(50), rng.Int64N(3000)}
		}
		want := -1
		var best *big.Rat
		for i, x := range d {
			if x.Weight == 0 {
				continue
			}
			a, in := loads.Conns(x.ID)
			r := big.NewRat(a*256+in, int64(x.Weight))
			if best == nil || r.Cmp(best) < 0 {
				want, best = i, r
			}
		}
		if got := mustNew(t, "wlc", d).Pick(nil, loads); got != want {
			t.Fatalf("iter %d: dests %v loads %v: Pick = %d, want %d", iter, d, loads, got, want)
		}
	}
}

func TestWLCNilLoads(t *testing.T) {
	if got := mustNew(t, "wlc", dests(0, 2, 1)).Pick(nil, nil); got != 1 {
		t.Fatalf("Pick with nil loads = %d, want 1", got)
	}
}
