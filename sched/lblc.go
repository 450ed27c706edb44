package sched

// lblc is locality-based least connection, as ip_vs_lblc.c: a flow goes to
// the real server its destination address went to last time, unless that
// one has weight 0, is overloaded by its threshold, or is busy by lblc's
// own rule (busy below); then, and for a new address, to wlc's choice,
// which the address keeps from then on. IPVS meant it for cache clusters,
// where the destination addresses vary; behind one VIP it is wlc with a
// memory.
//
// IPVS's cache hit checks weight and busyness but not the threshold flag;
// here an overloaded real server is passed over there too, so that a
// threshold holds for every scheduler.
type lblc struct {
	pool
	tab locTable
}

func newLBLC(dests []Dest, o *options) Scheduler {
	return &lblc{pool: newPool(dests), tab: newLocTable(1, o)}
}

func (*lblc) Name() string { return "lblc" }

func (s *lblc) Pick(f *Flow, loads Loads) int {
	now := s.tab.now()
	k := keyOf(&f.DstAddr)
	var snap locSnap
	if s.tab.lookup(k, now, &snap) && snap.n > 0 {
		if d := int(snap.members[0]); s.avail(d, loads) && !s.busy(d, loads) {
			return s.bind(d, loads)
		}
	}
	d := s.leastWeighted(loads, false)
	if d < 0 {
		return -1
	}
	s.tab.set(k, d, now)
	return s.bind(d, loads)
}

// busy is is_overloaded of ip_vs_lblc.c and ip_vs_lblcr.c: d has more
// active connections than its weight while some real server has fewer
// than half its weight.
func (p *pool) busy(d int, loads Loads) bool {
	if a, _ := p.conns(loads, d); a <= int64(p.w[d]) {
		return false
	}
	for i := range p.dests {
		if a, _ := p.conns(loads, i); a*2 < int64(p.w[i]) {
			return true
		}
	}
	return false
}

// lblcr is locality-based least connection with replication, as
// ip_vs_lblcr.c: a destination address maps to a set of real servers and a
// flow goes to the set's least loaded one (by overhead/weight, passing over
// overloaded ones) unless that one is busy (see lblc); then wlc's choice
// joins the set and takes the flow. A set with more than one member that
// has not changed for a day loses its most loaded member.
type lblcr struct {
	pool
	tab locTable
}

func newLBLCR(dests []Dest, o *options) Scheduler {
	return &lblcr{pool: newPool(dests), tab: newLocTable(lblcrMaxSet, o)}
}

func (*lblcr) Name() string { return "lblcr" }

func (s *lblcr) Pick(f *Flow, loads Loads) int {
	now := s.tab.now()
	k := keyOf(&f.DstAddr)
	var snap locSnap
	if !s.tab.lookup(k, now, &snap) {
		d := s.leastWeighted(loads, false)
		if d < 0 {
			return -1
		}
		s.tab.add(k, d, -1, now)
		return s.bind(d, loads)
	}
	d := s.setMin(&snap, loads)
	if snap.n > 1 && stale(snap.mod, now) {
		if m := s.setMax(&snap, loads); m >= 0 {
			s.tab.trim(k, m, now)
		}
	}
	if d >= 0 && !s.busy(d, loads) {
		return s.bind(d, loads)
	}
	d = s.leastWeighted(loads, false)
	if d < 0 {
		return -1
	}
	evict := -1
	if snap.n == lblcrMaxSet {
		evict = s.setMax(&snap, loads)
	}
	s.tab.add(k, d, evict, now)
	return s.bind(d, loads)
}

// setMin is ip_vs_dest_set_min: the member with the least overhead/weight,
// passing over overloaded members and starting from the first one with a
// weight; the first of equals (the newest) wins.
func (s *lblcr) setMin(snap *locSnap, loads Loads) int {
	least := -1
	var loh, lw int64
	for _, m := range snap.members[:snap.n] {
		d := int(m)
		dw := int64(s.w[d])
		if dw == 0 {
			continue
		}
		a, in, over := s.load(d, loads)
		if over {
			continue
		}
		if doh := overhead(a, in); least < 0 || loh*dw > doh*lw {
			least, loh, lw = d, doh, dw
		}
	}
	return least
}

// setMax is ip_vs_dest_set_max: the member with a weight and the most
// overhead/weight, overloaded or not; the first of equals wins.
func (s *lblcr) setMax(snap *locSnap, loads Loads) int {
	most := -1
	var moh, mw int64
	for _, m := range snap.members[:snap.n] {
		d := int(m)
		dw := int64(s.w[d])
		if dw == 0 {
			continue
		}
		if doh := overhead(s.conns(loads, d)); most < 0 || moh*dw < doh*mw {
			most, moh, mw = d, doh, dw
		}
	}
	return most
}
