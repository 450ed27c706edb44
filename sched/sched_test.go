package sched

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

func dests(weights ...int) []Dest {
	d := make([]Dest, len(weights))
	for i, w := range weights {
		d[i] = Dest{ID: uint32(100 + i), Weight: w}
	}
	return d
}

// picks returns the next n picks of s.
func picks(s Scheduler, n int, loads Loads) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = s.Pick(&Flow{}, loads)
	}
	return out
}

func mustNew(t testing.TB, name string, d []Dest) Scheduler {
	t.Helper()
	s, err := New(name, d)
	if err != nil {
		t.Fatalf("New(%q): %v", name, err)
	}
	return s
}

func TestNames(t *testing.T) {
	want := []string{"rr", "wrr", "wlc"}
	got := Names()
	if !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	got[0] = "mangled"
	if Names()[0] != "rr" {
		t.Fatal("Names returns shared state")
	}
	for _, name := range want {
		s := mustNew(t, name, dests(1))
		if s.Name() != name {
			t.Errorf("New(%q).Name() = %q", name, s.Name())
		}
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name    string
		sched   string
		dests   []Dest
		wantErr string
	}{
		{"unknown", "lblc", dests(1), `unknown scheduler "lblc" (known: rr, wrr, wlc)`},
		{"empty name", "", dests(1), `unknown scheduler ""`},
		{"negative weight", "rr", dests(1, -1), "weight -1 out of range 0..65535"},
		{"weight too big", "wlc", dests(65536), "weight 65536 out of range 0..65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.sched, tt.dests)
			if err == nil {
				t.Fatalf("New succeeded: %v", s.Name())
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

// New must copy dests: the control plane reuses its slices.
func TestNewCopiesDests(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			d := dests(1, 1)
			s := mustNew(t, name, d)
			d[0].Weight, d[1].Weight = 0, 0
			if got := s.Pick(&Flow{}, nil); got == -1 {
				t.Fatal("changing the caller's slice changed the scheduler")
			}
		})
	}
}

func TestNoDests(t *testing.T) {
	for _, name := range Names() {
		for _, d := range [][]Dest{nil, dests(0), dests(0, 0, 0)} {
			s := mustNew(t, name, d)
			for i := range 3 {
				if got := s.Pick(&Flow{}, fakeLoads{}); got != -1 {
					t.Errorf("%s over %v: pick %d = %d, want -1", name, d, i, got)
				}
			}
		}
	}
}

// allSchedulers covers every implementation, including wrr's stepping form,
// which New picks only for very long cycles.
func allSchedulers(t testing.TB, d []Dest) []Scheduler {
	var out []Scheduler
	for _, name := range Names() {
		out = append(out, mustNew(t, name, d))
	}
	return append(out, newWRR(slices.Clone(d), 0))
}

func implName(s Scheduler) string {
	if _, ok := s.(*wrrStep); ok {
		return "wrr-step"
	}
	return s.Name()
}

func TestPickAllocs(t *testing.T) {
	loads := fakeLoads{100: {3, 10}, 101: {1, 0}}
	for _, s := range allSchedulers(t, dests(4, 3, 0, 2)) {
		f := &Flow{Proto: 6, SrcPort: 1234, DstPort: 80}
		if n := testing.AllocsPerRun(1000, func() { s.Pick(f, loads) }); n != 0 {
			t.Errorf("%s: Pick allocates %v times", implName(s), n)
		}
	}
}

// TestConcurrentExact checks that picks racing from many goroutines still
// add up to exact shares: the cursors lose and repeat nothing.
func TestConcurrentExact(t *testing.T) {
	const (
		goroutines = 16
		cycles     = 64 * goroutines
	)
	weights := []int{5, 0, 3, 2, 1}
	tests := []struct {
		name  string
		s     Scheduler
		cycle int   // picks per cycle
		share []int // picks per cycle of each dest
	}{
		{"rr", mustNew(t, "rr", dests(weights...)), 4, []int{1, 0, 1, 1, 1}},
		{"wrr", mustNew(t, "wrr", dests(weights...)), 11, []int{5, 0, 3, 2, 1}},
		{"wrr-step", newWRR(dests(weights...), 0), 11, []int{5, 0, 3, 2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			total := cycles * tt.cycle
			counts := make([][]int, goroutines)
			var wg sync.WaitGroup
			for g := range goroutines {
				counts[g] = make([]int, len(weights))
				wg.Go(func() {
					f := &Flow{}
					for range total / goroutines {
						counts[g][tt.s.Pick(f, nil)]++
					}
				})
			}
			wg.Wait()
			for i, want := range tt.share {
				got := 0
				for g := range goroutines {
					got += counts[g][i]
				}
				if got != want*cycles {
					t.Errorf("dest %d picked %d times, want %d", i, got, want*cycles)
				}
			}
		})
	}
}

// sliceLoads is a Loads indexed by id-100, as cheap as the connection
// table's per-real-server counters, so that benchmarks time the scheduler.
type sliceLoads [][2]int64

func (l sliceLoads) Conns(id uint32) (active, inactive int64) {
	c := l[id-100]
	return c[0], c[1]
}

func BenchmarkPick(b *testing.B) {
	for _, n := range []int{2, 16, 128} {
		w := make([]int, n)
		counts := make(sliceLoads, n)
		for i := range w {
			w[i] = 1 + i%5
			counts[i] = [2]int64{int64(i * 7 % 13), int64(i % 3)}
		}
		var loads Loads = counts // converted once: boxing a slice allocates
		for _, s := range allSchedulers(b, dests(w...)) {
			b.Run(fmt.Sprintf("%s/dests=%d", implName(s), n), func(b *testing.B) {
				f := &Flow{}
				b.ReportAllocs()
				for b.Loop() {
					s.Pick(f, loads)
				}
			})
			b.Run(fmt.Sprintf("%s/dests=%d/parallel", implName(s), n), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					f := &Flow{}
					for pb.Next() {
						s.Pick(f, loads)
					}
				})
			})
		}
	}
}
