package sched

// lc is least connection, as ip_vs_lc.c: the available real server with the
// least overhead, whatever its weight (above 0); the first one on ties.
type lc struct{ pool }

func newLC(dests []Dest) Scheduler { return &lc{newPool(dests)} }

func (*lc) Name() string { return "lc" }

func (s *lc) Pick(_ *Flow, loads Loads) int { return s.bind(s.pick(loads), loads) }

func (s *lc) pick(loads Loads) int {
	least := -1
	var loh int64
	for i := range s.dests {
		if s.w[i] == 0 {
			continue
		}
		a, in, over := s.load(i, loads)
		if over {
			continue
		}
		if doh := overhead(a, in); least < 0 || doh < loh {
			least, loh = i, doh
		}
	}
	return least
}
