package sched

// fo is weighted fail over, as ip_vs_fo.c: the available real server with
// the highest weight, the first one on ties.
type fo struct{ pool }

func newFO(dests []Dest) Scheduler { return &fo{newPool(dests)} }

func (*fo) Name() string { return "fo" }

func (s *fo) Pick(_ *Flow, loads Loads) int { return s.bind(s.pick(loads), loads) }

func (s *fo) pick(loads Loads) int {
	best, hw := -1, 0
	for i := range s.dests {
		if w := int(s.w[i]); w > hw && !s.overloaded(i, loads) {
			best, hw = i, w
		}
	}
	return best
}

// ovf is overflow, as ip_vs_ovf.c: the available real server with the
// highest weight among those with no more active connections than their
// weight, the first one on ties. It ignores inactive connections, so it
// suits TCP better than UDP.
type ovf struct{ pool }

func newOVF(dests []Dest) Scheduler { return &ovf{newPool(dests)} }

func (*ovf) Name() string { return "ovf" }

func (s *ovf) Pick(_ *Flow, loads Loads) int { return s.bind(s.pick(loads), loads) }

func (s *ovf) pick(loads Loads) int {
	best, hw := -1, 0
	for i := range s.dests {
		w := int(s.w[i])
		if w == 0 || (best >= 0 && w <= hw) {
			continue
		}
		a, _, over := s.load(i, loads)
		if over || a > int64(w) {
			continue
		}
		best, hw = i, w
	}
	return best
}
