package sched

// sed is shortest expected delay, as ip_vs_sed.c: the available real server
// with the least (active+1)/weight, the first one on ties. Unlike wlc it
// counts the connection being scheduled and ignores inactive ones.
type sed struct{ pool }

func newSED(dests []Dest) Scheduler { return &sed{newPool(dests)} }

func (*sed) Name() string { return "sed" }

func (s *sed) Pick(_ *Flow, loads Loads) int { return s.bind(s.leastWeighted(loads, true), loads) }

// nq is never queue, as ip_vs_nq.c: the first available real server with no
// active connection, or else sed's choice.
type nq struct{ pool }

func newNQ(dests []Dest) Scheduler { return &nq{newPool(dests)} }

func (*nq) Name() string { return "nq" }

func (s *nq) Pick(_ *Flow, loads Loads) int { return s.bind(s.pick(loads), loads) }

func (s *nq) pick(loads Loads) int {
	least := -1
	var loh, lw int64
	for i := range s.dests {
		dw := int64(s.w[i])
		if dw == 0 {
			continue
		}
		a, _, over := s.load(i, loads)
		if over {
			continue
		}
		if a == 0 {
			return i
		}
		if doh := a + 1; least < 0 || loh*dw > doh*lw {
			least, loh, lw = i, doh, dw
		}
	}
	return least
}
