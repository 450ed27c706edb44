package sched

// wlc is weighted least connection, as ip_vs_wlc.c.
type wlc struct {
	dests []Dest
}

func newWLC(dests []Dest) Scheduler { return &wlc{dests: dests} }

func (*wlc) Name() string { return "wlc" }

// overhead is ip_vs_dest_conn_overhead: an active connection costs as much
// as 256 inactive ones (IPVS's estimate of their relative cost).
func overhead(loads Loads, id uint32) int64 {
	if loads == nil {
		return 0
	}
	active, inactive := loads.Conns(id)
	return active<<8 + inactive
}

// Pick returns the real server minimising overhead/weight. Like IPVS it
// compares by cross-multiplication, loh*dw > doh*lw, which needs no division
// and lets the first of equal candidates win. Overheads stay below 2^47
// (2^39 active connections), so the products, with weights below 2^16, do
// not overflow.
func (s *wlc) Pick(_ *Flow, loads Loads) int {
	least := -1
	var loh, lw int64
	for i := range s.dests {
		dw := int64(s.dests[i].Weight)
		if dw == 0 {
			continue
		}
		doh := overhead(loads, s.dests[i].ID)
		if least < 0 || loh*dw > doh*lw {
			least, loh, lw = i, doh, dw
		}
	}
	return least
}
