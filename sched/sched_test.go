package sched

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// dests returns real servers with ids 100, 101, ..., the given weights,
// and addresses 172.16.0.1, .2, ... port 80.
func dests(weights ...int) []Dest {
	d := make([]Dest, len(weights))
	for i, w := range weights {
		d[i] = Dest{ID: uint32(100 + i), Weight: w, Addr: v4(172, 16, byte(i>>8), byte(i+1)), Port: 80}
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
	want := []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}
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
	thresholds := func(u, l int) []Dest {
		d := dests(1, 1)
		d[1].UpperThreshold, d[1].LowerThreshold = u, l
		return d
	}
	tests := []struct {
		name    string
		sched   string
		dests   []Dest
		flags   []string
		wantErr string
	}{
		{"unknown", "lbl", dests(1), nil, `unknown scheduler "lbl" (known: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos)`},
		{"empty name", "", dests(1), nil, `unknown scheduler ""`},
		{"negative weight", "rr", dests(1, -1), nil, "weight -1 out of range 0..65535"},
		{"weight too big", "wlc", dests(65536), nil, "weight 65536 out of range 0..65535"},
		{"lower above upper", "lc", thresholds(5, 6), nil, "lower threshold 6 above upper threshold 5"},
		{"lower without upper", "lc", thresholds(0, 1), nil, "lower threshold 1 above upper threshold 0"},
		{"negative threshold", "lc", thresholds(-1, 0), nil, "thresholds -1/0 out of range"},
		{"unknown flag", "sh", dests(1), []string{"sh-port", "sh-bogus"}, `unknown scheduler flag "sh-bogus"`},
		{"flag of another scheduler", "sh", dests(1), []string{"mh-port"}, `flag "mh-port" does not apply (accepted: sh-fallback, sh-port, flag-1, flag-2)`},
		{"generic flag without a meaning", "mh", dests(1), []string{"flag-3"}, `flag "flag-3" does not apply`},
		{"flag for a scheduler without flags", "rr", dests(1), []string{"flag-1"}, `flag "flag-1" does not apply: rr takes no flags`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewWithOptions(tt.sched, tt.dests, Options{Flags: tt.flags})
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

// impl is one scheduler implementation under test.
type impl struct {
	name string
	s    Scheduler
}

// allImpls covers every scheduler, and the forms New picks only for some
// inputs or options: wrr's stepping form, sh and mh with their flags.
func allImpls(t testing.TB, d []Dest) []impl {
	var out []impl
	for _, name := range Names() {
		out = append(out, impl{name, mustNewOpts(t, name, d, Options{Seed: 7})})
	}
	return append(out,
		impl{"wrr-step", newWRR(slices.Clone(d), 0)},
		impl{"sh-fallback-port", mustNewOpts(t, "sh", d, Options{Flags: []string{"sh-fallback", "sh-port"}})},
		impl{"mh-fallback-port", mustNewOpts(t, "mh", d, Options{Flags: []string{"mh-fallback", "mh-port"}})},
	)
}

func mustNewOpts(t testing.TB, name string, d []Dest, o Options) Scheduler {
	t.Helper()
	s, err := NewWithOptions(name, d, o)
	if err != nil {
		t.Fatalf("NewWithOptions(%q, %+v): %v", name, o, err)
	}
	return s
}

// testFlows returns n distinct flows: sources, source ports and
// destinations all vary.
func testFlows(n int) []Flow {
	fs := make([]Flow, n)
	for i := range fs {
		fs[i] = Flow{
			Proto:   6,
			SrcAddr: v4(192, 168, byte(i>>8), byte(i)),
			SrcPort: uint16(1024 + i*7),
			DstAddr: v4(10, 1, byte(i>>6), byte(i)),
			DstPort: 80,
		}
	}
	return fs
}

func v4(a, b, c, d byte) [16]byte {
	return [16]byte{10: 0xff, 11: 0xff, 12: a, 13: b, 14: c, 15: d}
}

func TestFlagsFor(t *testing.T) {
	for _, name := range Names() {
		var want []string
		switch name {
		case "sh", "mh":
			want = []string{name + "-fallback", name + "-port", "flag-1", "flag-2"}
		}
		got := FlagsFor(name)
		if !slices.Equal(got, want) {
			t.Errorf("FlagsFor(%q) = %q, want %q", name, got, want)
		}
		for _, fl := range got {
			if _, err := NewWithOptions(name, dests(1), Options{Flags: []string{fl}}); err != nil {
				t.Errorf("%s: flag %q from FlagsFor refused: %v", name, fl, err)
			}
		}
	}
	if got := FlagsFor("nope"); got != nil {
		t.Errorf("FlagsFor(unknown) = %q", got)
	}
}

func TestPickAllocs(t *testing.T) {
	d := dests(4, 3, 0, 2, 1)
	d[0].UpperThreshold, d[0].LowerThreshold = 5, 2
	d[3].UpperThreshold = 100
	loads := fakeLoads{100: {3, 10}, 101: {1, 0}, 103: {40, 2}}
	flows := testFlows(64)
	for _, im := range allImpls(t, d) {
		i := 0
		if n := testing.AllocsPerRun(1000, func() { im.s.Pick(&flows[i%len(flows)], loads); i++ }); n != 0 {
			t.Errorf("%s: Pick allocates %v times", im.name, n)
		}
		if n := testing.AllocsPerRun(100, func() { im.s.Pick(&flows[0], nil) }); n != 0 {
			t.Errorf("%s: Pick with nil loads allocates %v times", im.name, n)
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

// atomicLoads is a Loads that a test goroutine changes under the pickers.
type atomicLoads []struct{ active, inactive atomic.Int64 }

func (l atomicLoads) Conns(id uint32) (active, inactive int64) {
	c := &l[id-100]
	return c.active.Load(), c.inactive.Load()
}

// TestConcurrentAll runs every scheduler from many goroutines while the
// loads change under them (run it with -race): every pick is -1 or a real
// server with a weight, and one that is over its threshold at the time, for
// good, is never picked.
func TestConcurrentAll(t *testing.T) {
	const (
		goroutines = 8
		perG       = 3000
	)
	d := dests(3, 0, 1, 2, 5, 1)
	d[2].UpperThreshold, d[2].LowerThreshold = 6, 3
	d[3].UpperThreshold = 4
	d[5].UpperThreshold = 1   // always over: its count never drops below 1
	flows := testFlows(40000) // more destinations than lblc's table holds
	for _, im := range allImpls(t, d) {
		t.Run(im.name, func(t *testing.T) {
			loads := make(atomicLoads, len(d))
			loads[5].active.Store(1)
			stop := make(chan struct{})
			var mut sync.WaitGroup
			mut.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					c := &loads[i%5]
					c.active.Store(int64(i * 7 % 9))
					c.inactive.Store(int64(i * 3 % 5))
					runtime.Gosched()
				}
			})
			var wg sync.WaitGroup
			errs := make(chan string, goroutines)
			for g := range goroutines {
				wg.Go(func() {
					for i := range perG {
						f := &flows[(g*perG+i*31)%len(flows)]
						p := im.s.Pick(f, loads)
						if p == -1 {
							continue
						}
						if p < 0 || p >= len(d) || d[p].Weight == 0 || p == 5 {
							errs <- fmt.Sprintf("pick %d = %d", i, p)
							return
						}
					}
				})
			}
			wg.Wait()
			close(stop)
			mut.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
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

// BenchmarkPick times every scheduler, over flows that vary (1024 sources
// and destinations, so that lblc and lblcr find and keep entries).
func BenchmarkPick(b *testing.B) {
	flows := testFlows(1024)
	for _, n := range []int{2, 16, 128} {
		w := make([]int, n)
		counts := make(sliceLoads, n)
		for i := range w {
			w[i] = 1 + i%5
			counts[i] = [2]int64{int64(i * 7 % 13), int64(i % 3)}
		}
		var loads Loads = counts // converted once: boxing a slice allocates
		for _, im := range allImpls(b, dests(w...)) {
			b.Run(fmt.Sprintf("%s/dests=%d", im.name, n), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					im.s.Pick(&flows[i&1023], loads)
					i++
				}
			})
			b.Run(fmt.Sprintf("%s/dests=%d/parallel", im.name, n), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						im.s.Pick(&flows[i&1023], loads)
						i++
					}
				})
			})
		}
	}
}
