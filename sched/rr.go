package sched

// rr is round robin, as ip_vs_rr.c: the real servers with weight > 0 in
// turn. With an immutable list, IPVS's "continue after the last one picked"
// is a counter modulo the live list; an overloaded real server is passed
// over as IPVS's loop passes over it, its turn consumed.
type rr struct {
	pool
	live []int32 // indexes of dests with weight > 0, in order
	cur  cursor
}

func newRR(dests []Dest) Scheduler {
	s := &rr{pool: newPool(dests)}
	for i, d := range dests {
		if d.Weight > 0 {
			s.live = append(s.live, int32(i))
		}
	}
	return s
}

func (*rr) Name() string { return "rr" }

func (s *rr) Pick(_ *Flow, loads Loads) int {
	n := uint64(len(s.live))
	if n == 0 {
		return -1
	}
	if s.marks == nil {
		return int(s.live[s.cur.next()%n])
	}
	for range n {
		if i := int(s.live[s.cur.next()%n]); !s.overloaded(i, loads) {
			return s.bind(i, loads)
		}
	}
	return -1
}
