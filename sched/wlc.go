package sched

// wlc is weighted least connection, as ip_vs_wlc.c: the available real
// server with the least overhead/weight, the first one on ties.
type wlc struct{ pool }

func newWLC(dests []Dest) Scheduler { return &wlc{newPool(dests)} }

func (*wlc) Name() string { return "wlc" }

func (s *wlc) Pick(_ *Flow, loads Loads) int { return s.bind(s.leastWeighted(loads, false), loads) }
