package sched

import (
	"math/big"
	"math/rand/v2"
	"testing"
)

// loadsFor maps loads by dest index onto d's ids.
func loadsFor(d []Dest, byIndex map[int][2]int64) fakeLoads {
	l := make(fakeLoads)
	for i, c := range byIndex {
		l[d[i].ID] = c
	}
	return l
}

// TestFormulas checks lc, sed, nq, fo and ovf on hand-built states (wlc has
// its own TestWLC), ties included: every one of them lets the first of
// equals win.
func TestFormulas(t *testing.T) {
	type state = map[int][2]int64 // index: active, inactive
	tests := []struct {
		sched   string
		name    string
		weights []int
		loads   state
		want    int
	}{
		// lc: least active*256+inactive, weight aside.
		{"lc", "idle picks first", []int{1, 1, 1}, nil, 0},
		{"lc", "skips weight 0", []int{0, 1}, nil, 1},
		{"lc", "weight does not count", []int{100, 1}, state{0: {1, 0}, 1: {0, 0}}, 1},
		{"lc", "weight does not count either way", []int{1, 100}, state{0: {1, 0}, 1: {2, 0}}, 0},
		{"lc", "active costs 256 inactive", []int{1, 1}, state{0: {1, 0}, 1: {0, 255}}, 1},
		{"lc", "256 inactive tie one active: first", []int{1, 1}, state{0: {1, 0}, 1: {0, 256}}, 0},
		{"lc", "tie: first", []int{1, 1, 1}, state{0: {2, 0}, 1: {1, 1}, 2: {1, 1}}, 1},
		{"lc", "all zero", []int{0, 0}, nil, -1},

		// sed: least (active+1)/weight; inactive ignored.
		{"sed", "idle: heaviest", []int{1, 3, 2}, nil, 1},
		{"sed", "idle equal weights: first", []int{2, 2}, nil, 0},
		{"sed", "inactive ignored", []int{1, 1}, state{0: {0, 1000}, 1: {1, 0}}, 0},
		{"sed", "counts the new connection", []int{1, 10}, state{0: {0, 0}, 1: {1, 0}}, 1}, // 1/1 > 2/10; wlc would take the idle one
		{"sed", "(a+1)/w", []int{1, 3}, state{0: {0, 0}, 1: {3, 0}}, 0},                    // 1/1 < 4/3
		{"sed", "tie (a+1)/w: first", []int{2, 4}, state{0: {1, 0}, 1: {3, 0}}, 0},         // 2/2 = 4/4
		{"sed", "skips weight 0", []int{0, 1}, nil, 1},

		// nq: first idle (no active), else sed.
		{"nq", "first idle", []int{1, 5, 1}, state{0: {1, 0}, 1: {0, 0}, 2: {0, 0}}, 1},
		{"nq", "idle beats better ratio", []int{1, 100}, state{0: {0, 50}, 1: {1, 0}}, 0},
		{"nq", "none idle: sed", []int{1, 3}, state{0: {1, 0}, 1: {3, 0}}, 1}, // 2/1 > 4/3
		{"nq", "none idle: tie first", []int{2, 4}, state{0: {1, 0}, 1: {3, 0}}, 0},
		{"nq", "idle weight 0 skipped", []int{0, 1}, state{1: {5, 0}}, 1},

		// fo: highest weight, first on ties, load aside.
		{"fo", "highest", []int{1, 3, 2}, nil, 1},
		{"fo", "tie: first", []int{3, 1, 3}, nil, 0},
		{"fo", "load does not count", []int{1, 3}, state{1: {1000, 1000}}, 1},
		{"fo", "all zero", []int{0, 0}, nil, -1},

		// ovf: highest weight with active <= weight, first on ties.
		{"ovf", "highest", []int{1, 3, 2}, nil, 1},
		{"ovf", "active equal to weight still takes", []int{1, 3}, state{1: {3, 0}}, 1},
		{"ovf", "active above weight overflows", []int{1, 3, 2}, state{1: {4, 0}}, 2},
		{"ovf", "inactive ignored", []int{1, 3}, state{1: {0, 1000}}, 1},
		{"ovf", "tie: first", []int{2, 2}, nil, 0},
		{"ovf", "tie, first overflowed", []int{2, 2}, state{0: {3, 0}}, 1},
		{"ovf", "all overflowed", []int{1, 1}, state{0: {2, 0}, 1: {2, 0}}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.sched+"/"+tt.name, func(t *testing.T) {
			d := dests(tt.weights...)
			s := mustNew(t, tt.sched, d)
			for range 3 { // stateless: same answer every time
				if got := s.Pick(&Flow{}, loadsFor(d, tt.loads)); got != tt.want {
					t.Fatalf("Pick = %d, want %d", got, tt.want)
				}
			}
		})
	}
}

// formulaOracle computes what each least-connection scheduler must pick,
// with exact rationals and the first of equals winning.
func formulaOracle(sched string, d []Dest, l fakeLoads) int {
	best := -1
	var bestR *big.Rat
	var bestW int
	for i, x := range d {
		if x.Weight == 0 {
			continue
		}
		a, in := l.Conns(x.ID)
		var r *big.Rat
		switch sched {
		case "lc":
			r = big.NewRat(a*256+in, 1)
		case "wlc":
			r = big.NewRat(a*256+in, int64(x.Weight))
		case "sed":
			r = big.NewRat(a+1, int64(x.Weight))
		case "nq":
			if a == 0 {
				return i
			}
			r = big.NewRat(a+1, int64(x.Weight))
		case "fo":
			if x.Weight > bestW {
				best, bestW = i, x.Weight
			}
			continue
		case "ovf":
			if a <= int64(x.Weight) && x.Weight > bestW {
				best, bestW = i, x.Weight
			}
			continue
		}
		if bestR == nil || r.Cmp(bestR) < 0 {
			best, bestR = i, r
		}
	}
	return best
}

func TestFormulasMatchOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for _, name := range []string{"lc", "wlc", "sed", "nq", "fo", "ovf"} {
		for iter := range 1000 {
			n := 1 + rng.IntN(6)
			d := make([]Dest, n)
			l := make(fakeLoads)
			for i := range d {
				// Few distinct values, so that ties are common.
				d[i] = Dest{ID: uint32(i), Weight: rng.IntN(4) * (1 + rng.IntN(3))}
				l[d[i].ID] = [2]int64{rng.Int64N(5), rng.Int64N(3) * 128}
			}
			want := formulaOracle(name, d, l)
			if got := mustNew(t, name, d).Pick(nil, l); got != want {
				t.Fatalf("%s iter %d: dests %v loads %v: Pick = %d, want %d", name, iter, d, l, got, want)
			}
		}
	}
}
