package sched

// rr is round robin, as ip_vs_rr.c: the real servers with weight > 0 in
// turn. With an immutable list, IPVS's "continue after the last one picked"
// is a counter modulo the live list.
type rr struct {
	live []int32 // indexes of dests with weight > 0, in order
	cur  cursor
}

func newRR(dests []Dest) Scheduler {
	s := &rr{}
	for i, d := range dests {
		if d.Weight > 0 {
			s.live = append(s.live, int32(i))
		}
	}
	return s
}

func (*rr) Name() string { return "rr" }

func (s *rr) Pick(*Flow, Loads) int {
	n := uint64(len(s.live))
	if n == 0 {
		return -1
	}
	return int(s.live[s.cur.next()%n])
}
