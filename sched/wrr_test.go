package sched

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// ipvsWRR transliterates ip_vs_wrr_schedule and ip_vs_wrr_init_svc
// (Linux 6.x), goto structure included, as an oracle. Dest index -1 stands
// for the list head; over holds the overload flags.
type ipvsWRR struct {
	weights    []int
	over       []bool
	cl         int
	cw, mw, di int
}

func newIPVSWRR(weights []int) *ipvsWRR {
	g, maxW := 0, 0
	for _, w := range weights {
		if w > 0 {
			if g > 0 {
				g = int(gcd(int32(w), int32(g)))
			} else {
				g = w
			}
		}
		maxW = max(maxW, w)
	}
	if g == 0 {
		g = 1
	}
	m := &ipvsWRR{weights: weights, over: make([]bool, len(weights)), cl: -1, di: g, mw: maxW - (g - 1)}
	m.cw = m.mw
	return m
}

func (m *ipvsWRR) schedule() int {
	dest := m.cl
	if m.mw == 0 {
		return -1 // err_noavail
	}
	last := dest
	lastPass, restarted := false, false
	stop := -2 // NULL
	for {
		for dest = dest + 1; dest < len(m.weights); dest++ {
			if !m.over[dest] && m.weights[dest] >= m.cw {
				m.cl = dest // found
				return dest
			}
			if dest == stop {
				m.cl = dest
				return -1 // err_over
			}
		}
		dest = -1
		m.cw -= m.di
		if m.cw <= 0 {
			m.cw = m.mw
			if lastPass || last == -1 {
				m.cl = dest
				return -1 // err_over
			}
			restarted = true
		}
		lastPass = m.cw <= m.di
		if lastPass && restarted && last != -1 {
			stop = last
		}
	}
}

func TestWRRSequence(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		cycle   []int // one full cycle
	}{
		{"4,3,2", []int{4, 3, 2}, []int{0, 0, 1, 0, 1, 2, 0, 1, 2}},
		{"equal", []int{1, 1, 1}, []int{0, 1, 2}},
		{"equal gcd 2", []int{2, 2, 2}, []int{0, 1, 2}},
		{"4,2 gcd 2", []int{4, 2}, []int{0, 0, 1}},
		{"6,4 gcd 2", []int{6, 4}, []int{0, 0, 1, 0, 1}},
		{"3,6,9 gcd 3", []int{3, 6, 9}, []int{2, 1, 2, 0, 1, 2}},
		{"1,2", []int{1, 2}, []int{1, 0, 1}},
		{"zeros skipped", []int{0, 3, 0, 1}, []int{1, 1, 1, 3}},
		{"single", []int{5, 0}, []int{0}},
		{"all zero", []int{0, 0}, []int{-1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := slices.Concat(tt.cycle, tt.cycle, tt.cycle)
			for _, im := range []impl{{"wrr", mustNew(t, "wrr", dests(tt.weights...))}, {"wrr-step", newWRR(dests(tt.weights...), 0)}} {
				if got := picks(im.s, len(want), nil); !slices.Equal(got, want) {
					t.Errorf("%s: picks = %v, want %v", im.name, got, want)
				}
			}
			m := newIPVSWRR(tt.weights)
			got := make([]int, len(want))
			for i := range got {
				got[i] = m.schedule()
			}
			if !slices.Equal(got, want) {
				t.Errorf("IPVS oracle disagrees with the table: %v, want %v", got, want)
			}
		})
	}
}

// TestWRRMatchesIPVS compares both forms with the IPVS oracle on random
// weight sets, over three cycles, and checks one cycle's exact shares.
func TestWRRMatchesIPVS(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 500 {
		n := 1 + rng.IntN(8)
		weights := make([]int, n)
		mult := 1 + rng.IntN(4) // make gcd > 1 common
		for i := range weights {
			if rng.IntN(5) > 0 {
				weights[i] = mult * rng.IntN(20)
			}
		}
		w := newWRRWeights(dests(weights...))
		cycle := w.cycleLen()
		if w.mw == 0 {
			cycle = 1
		}
		table := newWRR(dests(weights...), wrrMaxTable)
		step := newWRR(dests(weights...), 0)
		oracle := newIPVSWRR(weights)
		counts := make([]int, n)
		for i := range 3 * cycle {
			want := oracle.schedule()
			if got := table.Pick(nil, nil); got != want {
				t.Fatalf("iter %d weights %v pick %d: table %d, IPVS %d", iter, weights, i, got, want)
			}
			if got := step.Pick(nil, nil); got != want {
				t.Fatalf("iter %d weights %v pick %d: step %d, IPVS %d", iter, weights, i, got, want)
			}
			if want >= 0 && i < cycle {
				counts[want]++
			}
		}
		if w.mw == 0 {
			continue
		}
		for i, c := range counts {
			if c != weights[i]/int(w.di) {
				t.Fatalf("weights %v: dest %d picked %d times in a cycle, want %d", weights, i, c, weights[i]/int(w.di))
			}
		}
	}
}

// TestWRRRatios runs many cycles of large, coprime weights, which New
// serves with the stepping form.
func TestWRRRatios(t *testing.T) {
	weights := []int{65535, 65534, 1, 300}
	s := mustNew(t, "wrr", dests(weights...))
	if _, ok := s.(*wrrStep); !ok {
		t.Fatalf("got %T for a %d-pick cycle, want *wrrStep", s, 131370)
	}
	const cycles = 3
	counts := make([]int, len(weights))
	for range cycles * 131370 {
		counts[s.Pick(nil, nil)]++
	}
	for i, w := range weights {
		if counts[i] != cycles*w {
			t.Errorf("dest %d: %d picks, want %d", i, counts[i], cycles*w)
		}
	}
}

func TestWRRStatePacking(t *testing.T) {
	for _, s := range []wrrState{{1, -1}, {65535, 0}, {7, 1<<31 - 2}} {
		if got := unpackWRR(packWRR(s)); got != s {
			t.Errorf("unpack(pack(%v)) = %v", s, got)
		}
	}
}

// TestWRROverloadMatchesIPVS drives wrr with thresholds, which runs IPVS's
// state machine with its overload checks, against the oracle, with overload
// flags that change between picks; err_over and where it leaves the mark
// included.
func TestWRROverloadMatchesIPVS(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for iter := range 300 {
		n := 1 + rng.IntN(7)
		weights := make([]int, n)
		mult := 1 + rng.IntN(3)
		for i := range weights {
			if rng.IntN(4) > 0 {
				weights[i] = mult * (1 + rng.IntN(6))
			}
		}
		d := dests(weights...)
		// Upper 1, lower 0: one connection overloads, none clears.
		for i := range d {
			d[i].UpperThreshold = 1
		}
		s := mustNew(t, "wrr", d)
		if _, ok := s.(*wrrStep); !ok && slices.Max(weights) > 0 {
			t.Fatalf("weights %v with thresholds: got %T, want *wrrStep", weights, s)
		}
		oracle := newIPVSWRR(weights)
		loads := make(fakeLoads)
		for i := range 60 {
			busy := rng.IntN(3) // 0: none, 1: some, 2: all overloaded
			for j := range d {
				over := busy == 2 || (busy == 1 && rng.IntN(2) == 0)
				oracle.over[j] = over
				loads[d[j].ID] = [2]int64{0, 0}
				if over {
					loads[d[j].ID] = [2]int64{1, 0}
				}
			}
			want := oracle.schedule()
			if got := s.Pick(nil, loads); got != want {
				t.Fatalf("iter %d weights %v over %v pick %d: got %d, IPVS %d", iter, weights, oracle.over, i, got, want)
			}
		}
	}
}
