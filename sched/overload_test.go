package sched

import (
	"fmt"
	"testing"
)

// TestThresholds walks one real server's connection count up and down and
// checks, for every scheduler, that it is picked exactly while IPVS's
// IP_VS_DEST_F_OVERLOAD would be clear: set once a connection brings the
// count to the upper threshold, cleared only below the lower threshold (or
// 3/4 of the upper one when the lower is 0).
func TestThresholds(t *testing.T) {
	type step struct {
		active, inactive int64
		picked           bool
	}
	tests := []struct {
		name         string
		upper, lower int
		steps        []step
	}{
		{"upper 10 lower 5", 10, 5, []step{
			{0, 0, true},
			{8, 0, true},
			{9, 0, true},  // this connection makes 10: marked
			{9, 0, false}, // and stays marked above the lower threshold
			{10, 0, false},
			{7, 0, false},
			{5, 0, false},
			{4, 0, true}, // below 5: cleared
			{8, 0, true},
			{12, 0, false},
			{0, 0, true},
			{3, 7, false}, // active and inactive both count
			{0, 4, true},
			{2, 2, true},
		}},
		{"upper 8 lower 0: 3/4 of upper", 8, 0, []step{
			{8, 0, false},
			{6, 0, false}, // 6*4 = 24, not below 8*3
			{5, 0, true},
			{7, 0, true}, // makes 8: marked
			{7, 0, false},
			{0, 0, true},
		}},
		{"upper 1", 1, 0, []step{
			{0, 0, true}, // makes 1: marked
			{0, 0, true}, // but 0*4 < 3 clears it at once
			{1, 0, false},
			{0, 1, false},
			{0, 0, true},
		}},
		{"lower equal to upper: no hysteresis", 4, 4, []step{
			{4, 0, false},
			{3, 0, true},
			{3, 0, true}, // the last pick made 4, but 3 is below the lower threshold
			{5, 0, false},
			{3, 0, true},
		}},
	}
	for _, tt := range tests {
		d := dests(1000)
		d[0].UpperThreshold, d[0].LowerThreshold = tt.upper, tt.lower
		for _, im := range allImpls(t, d) {
			t.Run(tt.name+"/"+im.name, func(t *testing.T) {
				flows := testFlows(len(tt.steps))
				for i, st := range tt.steps {
					want := -1
					if st.picked {
						want = 0
					}
					l := fakeLoads{d[0].ID: {st.active, st.inactive}}
					if got := im.s.Pick(&flows[i], l); got != want {
						t.Fatalf("step %d (%d active, %d inactive): Pick = %d, want %d", i, st.active, st.inactive, got, want)
					}
				}
			})
		}
	}
}

// hashers are the implementations that can refuse a flow whose hashed real
// server is unavailable, though another one is available.
var hashers = map[string]bool{"sh": true, "dh": true, "mh": true}

// TestThresholdsSpill overloads one of two real servers: no scheduler picks
// it, the hashing ones without fallback refuse the flows that hash to it,
// and everything else goes to the other one.
func TestThresholdsSpill(t *testing.T) {
	d := dests(1, 1)
	d[0].UpperThreshold = 2
	l := fakeLoads{d[0].ID: {2, 0}}
	flows := testFlows(200)
	for _, im := range allImpls(t, d) {
		t.Run(im.name, func(t *testing.T) {
			refused := 0
			for i := range flows {
				switch got := im.s.Pick(&flows[i], l); got {
				case 1:
				case -1:
					refused++
				default:
					t.Fatalf("flow %d: Pick = %d, want 1 (0 is overloaded)", i, got)
				}
			}
			if hashers[im.name] {
				if refused == 0 || refused == len(flows) {
					t.Errorf("%d of %d flows refused; want those hashing to the overloaded one", refused, len(flows))
				}
			} else if refused > 0 {
				t.Errorf("%d of %d flows refused with a real server available", refused, len(flows))
			}
		})
	}
}

func TestThresholdsAllOverloaded(t *testing.T) {
	d := dests(1, 2, 3)
	l := make(fakeLoads)
	for i := range d {
		d[i].UpperThreshold, d[i].LowerThreshold = 3+i, 1
		l[d[i].ID] = [2]int64{1, int64(2 + i)}
	}
	flows := testFlows(50)
	for _, im := range allImpls(t, d) {
		for i := range flows {
			if got := im.s.Pick(&flows[i], l); got != -1 {
				t.Fatalf("%s flow %d: Pick = %d with every real server overloaded", im.name, i, got)
			}
		}
	}
}

// TestThresholdMarksPerInstance checks that marks live in the scheduler
// instance: a new scheduler (a new configuration) starts with none, as
// IPVS clears the flag when a threshold is raised or removed.
func TestThresholdMarksPerInstance(t *testing.T) {
	d := dests(5)
	d[0].UpperThreshold, d[0].LowerThreshold = 10, 2
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			a := mustNew(t, name, d)
			if got := a.Pick(&Flow{}, fakeLoads{100: {10, 0}}); got != -1 {
				t.Fatalf("at the threshold: Pick = %d", got)
			}
			if got := a.Pick(&Flow{}, fakeLoads{100: {5, 0}}); got != -1 {
				t.Fatalf("between the thresholds: Pick = %d, want still overloaded", got)
			}
			b := mustNew(t, name, d)
			if got := b.Pick(&Flow{}, fakeLoads{100: {5, 0}}); got != 0 {
				t.Fatalf("fresh instance between the thresholds: Pick = %d, want 0", got)
			}
		})
	}
}

func ExampleNewWithOptions() {
	d := []Dest{
		{ID: 1, Weight: 1, UpperThreshold: 100},
		{ID: 2, Weight: 1},
	}
	s, err := NewWithOptions("sh", d, Options{Flags: []string{"sh-fallback", "sh-port"}})
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Name(), s.Pick(&Flow{Proto: 6, SrcPort: 40000}, nil) >= 0)
	// Output: sh true
}
