package sched

import "sync/atomic"

// wrrMaxTable bounds the precomputed wrr sequence (entries). Weights up to
// MaxWeight over many real servers can make a cycle millions of picks long;
// past this bound the scheduler steps IPVS's state machine instead.
const wrrMaxTable = 1 << 15

// wrrState is IPVS's wrr mark: the current weight cw, stepping down by the
// gcd of the weights from mw to 1 and back, and the last real server picked
// (-1 for the list head, where IPVS starts).
type wrrState struct {
	cw   int32
	last int32
}

// wrrWeights holds what ip_vs_wrr_init_svc computes from the weights.
type wrrWeights struct {
	weights []int32
	di      int32 // gcd of the positive weights
	mw      int32 // max weight - (di - 1): the first cw of a cycle
}

func newWRRWeights(dests []Dest) wrrWeights {
	w := wrrWeights{weights: make([]int32, len(dests))}
	var g, maxW int32
	for i, d := range dests {
		wt := int32(d.Weight)
		w.weights[i] = wt
		if wt > 0 {
			g = gcd(wt, g)
		}
		if wt > maxW {
			maxW = wt
		}
	}
	if g == 0 {
		g = 1
	}
	w.di = g
	if maxW > 0 {
		w.mw = maxW - (g - 1)
	}
	return w
}

func gcd(a, b int32) int32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// start is the state ip_vs_wrr_init_svc leaves: at the head, cw = mw.
func (w *wrrWeights) start() wrrState { return wrrState{cw: w.mw, last: -1} }

// step is ip_vs_wrr_schedule without overload flags: continue after the last
// pick to the next real server whose weight is at least cw; at the end of the
// list lower cw by the gcd, wrapping to mw. It needs mw > 0, and then ends
// within two passes: at cw = mw the heaviest real server always qualifies.
func (w *wrrWeights) step(s wrrState) (wrrState, int) {
	cw := s.cw
	j := int(s.last) + 1
	for {
		for ; j < len(w.weights); j++ {
			if w.weights[j] >= cw {
				return wrrState{cw: cw, last: int32(j)}, j
			}
		}
		j = 0
		cw -= w.di
		if cw <= 0 {
			cw = w.mw
		}
	}
}

// stepOver is ip_vs_wrr_schedule in full, for real servers that may be
// overloaded: step, passing over overloaded real servers, and giving up
// (-1) once every real server has been checked at cw = 1, leaving the mark
// where IPVS's err_over leaves it. It needs mw > 0.
func (w *wrrWeights) stepOver(s wrrState, p *pool, loads Loads) (wrrState, int) {
	cw, last := s.cw, int(s.last)
	lastPass, restarted := false, false
	stop := -2 // none
	j := last + 1
	for {
		for ; j < len(w.weights); j++ {
			if w.weights[j] >= cw && !p.overloaded(j, loads) {
				return wrrState{cw: cw, last: int32(j)}, j
			}
			if j == stop {
				return wrrState{cw: cw, last: int32(j)}, -1
			}
		}
		j = 0
		cw -= w.di
		if cw <= 0 {
			cw = w.mw
			// Every dest was checked at cw = 1: in the last pass, or
			// in the first and only one when it started at the head.
			if lastPass || last == -1 {
				return wrrState{cw: cw, last: -1}, -1
			}
			restarted = true
		}
		lastPass = cw <= w.di
		if lastPass && restarted && last != -1 {
			// The first pass at cw = 1 only covered the dests after
			// last; this one covers those up to it.
			stop = last
		}
	}
}

// cycleLen is the number of picks after which the sequence repeats: each
// real server is picked weight/gcd times per cycle.
func (w *wrrWeights) cycleLen() int {
	n := 0
	for _, wt := range w.weights {
		n += int(wt / w.di)
	}
	return n
}

// newWRR picks the table form when the cycle has at most maxTable picks and
// no real server has a threshold, and the stepping form otherwise. Both give
// IPVS's sequence.
func newWRR(dests []Dest, maxTable int) Scheduler {
	w := newWRRWeights(dests)
	if w.mw == 0 {
		return &wrrTable{}
	}
	p := newPool(dests)
	if n := w.cycleLen(); n <= maxTable && p.marks == nil {
		t := &wrrTable{seq: make([]int32, n)}
		s := w.start()
		for i := range t.seq {
			var j int
			s, j = w.step(s)
			t.seq[i] = int32(j)
		}
		return t
	}
	st := &wrrStep{w: w, pool: p}
	st.state.Store(packWRR(w.start()))
	return st
}

// wrrTable replays one precomputed cycle with a shared counter: one atomic
// add per pick and exact ratios however many workers pick at once.
type wrrTable struct {
	seq []int32
	cur cursor
}

func (*wrrTable) Name() string { return "wrr" }

func (t *wrrTable) Pick(*Flow, Loads) int {
	n := uint64(len(t.seq))
	if n == 0 {
		return -1
	}
	return int(t.seq[t.cur.next()%n])
}

// wrrStep runs IPVS's state machine with the state packed in one word and
// advanced by compare-and-swap, instead of IPVS's spinlock: a pick that
// loses a race recomputes from the winner's state, so every successful
// swap is one element of the sequence and none is repeated or skipped.
//
// With thresholds, it runs the state machine with IPVS's overload checks
// (stepOver), so that an overloaded real server's turns are passed over
// exactly as IPVS passes over them.
type wrrStep struct {
	w     wrrWeights
	pool  pool
	_     [cacheLine]byte
	state atomic.Uint64
	_     [cacheLine - 8]byte
}

func packWRR(s wrrState) uint64 {
	return uint64(uint32(s.cw))<<32 | uint64(uint32(s.last+1))
}

func unpackWRR(v uint64) wrrState {
	return wrrState{cw: int32(uint32(v >> 32)), last: int32(uint32(v)) - 1}
}

func (*wrrStep) Name() string { return "wrr" }

func (st *wrrStep) Pick(_ *Flow, loads Loads) int {
	for {
		old := st.state.Load()
		var s wrrState
		var j int
		if st.pool.marks == nil {
			s, j = st.w.step(unpackWRR(old))
		} else {
			s, j = st.w.stepOver(unpackWRR(old), &st.pool, loads)
		}
		if st.state.CompareAndSwap(old, packWRR(s)) {
			return st.pool.bind(j, loads)
		}
	}
}
