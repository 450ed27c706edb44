package sched

import "sync/atomic"

// pool is what every scheduler keeps of its real servers: the dests and
// their overload marks.
//
// IPVS keeps IP_VS_DEST_F_OVERLOAD in each dest and updates it when a
// connection binds to or leaves the dest (ip_vs_bind_dest,
// ip_vs_unbind_dest); every scheduler skips marked dests. Here the
// connection table is not ours to hook, so the mark is updated from Loads
// whenever a Pick looks at a dest with an upper threshold, by the same
// rules:
//
//   - active+inactive >= upper: mark (bind sets it once the count reaches
//     the threshold, so a dest holds at most upper connections);
//   - marked and active+inactive < lower, or < 3/4 upper when lower is 0:
//     clear;
//   - otherwise the mark stays as it is, the hysteresis between the two.
//
// The marks are atomics, written only when they change, so that workers
// share them without locks and without bouncing cache lines.
type pool struct {
	dests []Dest
	w     []int32       // weights, packed for the scans over all dests
	id    []uint32      // ids, likewise
	marks []atomic.Bool // by dest index; nil when no dest has a threshold
}

func newPool(dests []Dest) pool {
	p := pool{dests: dests, w: make([]int32, len(dests)), id: make([]uint32, len(dests))}
	for i, d := range dests {
		p.w[i], p.id[i] = int32(d.Weight), d.ID
		if d.UpperThreshold > 0 && p.marks == nil {
			p.marks = make([]atomic.Bool, len(dests))
		}
	}
	return p
}

// limited reports whether dest i has an upper threshold.
func (p *pool) limited(i int) bool { return p.marks != nil && p.dests[i].UpperThreshold > 0 }

// conns returns dest i's connection counts; none with nil loads.
func (p *pool) conns(loads Loads, i int) (active, inactive int64) {
	if loads == nil {
		return 0, 0
	}
	return loads.Conns(p.id[i])
}

// overloadedBy updates dest i's mark from its connection count and reports
// it. Only for dests with an upper threshold.
func (p *pool) overloadedBy(i int, total int64) bool {
	d := &p.dests[i]
	m := &p.marks[i]
	if total >= int64(d.UpperThreshold) {
		if !m.Load() {
			m.Store(true)
		}
		return true
	}
	if !m.Load() {
		return false
	}
	var below bool
	if d.LowerThreshold != 0 {
		below = total < int64(d.LowerThreshold)
	} else {
		below = total*4 < int64(d.UpperThreshold)*3
	}
	if below {
		m.Store(false)
		return false
	}
	return true
}

// bind does for a picked dest what ip_vs_bind_dest does when the new
// connection binds to it: mark it once the connection brings it to its
// upper threshold. Without this, a dest that no Pick looks at again until
// its count has fallen back between the thresholds would miss the mark IPVS
// gives it. It returns i, which may be -1.
func (p *pool) bind(i int, loads Loads) int {
	if i >= 0 && p.limited(i) {
		a, in := p.conns(loads, i)
		if a+in+1 >= int64(p.dests[i].UpperThreshold) && !p.marks[i].Load() {
			p.marks[i].Store(true)
		}
	}
	return i
}

// overloaded updates and reports dest i's mark, reading its counts only
// when it has a threshold.
func (p *pool) overloaded(i int, loads Loads) bool {
	return p.marks != nil && p.check(i, loads) // inlined: no call without thresholds
}

func (p *pool) check(i int, loads Loads) bool {
	if p.dests[i].UpperThreshold == 0 {
		return false
	}
	a, in := p.conns(loads, i)
	return p.overloadedBy(i, a+in)
}

// marked reports dest i's mark as the last look left it, without reading
// its counts.
func (p *pool) marked(i int) bool { return p.limited(i) && p.marks[i].Load() }

// avail reports whether dest i may take a new connection: weight above 0
// and not overloaded.
func (p *pool) avail(i int, loads Loads) bool {
	return p.w[i] > 0 && !p.overloaded(i, loads)
}

// anyAvail reports whether some dest may take a new connection.
func (p *pool) anyAvail(loads Loads) bool {
	for i := range p.dests {
		if p.avail(i, loads) {
			return true
		}
	}
	return false
}

// load returns dest i's counts and whether it is overloaded, reading the
// counts once for both.
func (p *pool) load(i int, loads Loads) (active, inactive int64, over bool) {
	active, inactive = p.conns(loads, i)
	if p.limited(i) {
		over = p.overloadedBy(i, active+inactive)
	}
	return active, inactive, over
}

// overhead is ip_vs_dest_conn_overhead: an active connection costs as much
// as 256 inactive ones (IPVS's estimate of their relative cost).
func overhead(active, inactive int64) int64 { return active<<8 + inactive }

// leastWeighted returns the available dest minimising cost/weight, where
// cost is overhead, or active+1 for sed; the first of equals wins. It is
// the loop of ip_vs_wlc_schedule, ip_vs_sed_schedule and the lblc and lblcr
// fallbacks. Like IPVS it compares by cross-multiplication, loh*dw >
// doh*lw, which needs no division; overheads stay below 2^47 (2^39 active
// connections), so the products, with weights below 2^16, do not overflow.
func (p *pool) leastWeighted(loads Loads, sed bool) int {
	least := -1
	var loh, lw int64
	for i := range p.dests {
		dw := int64(p.w[i])
		if dw == 0 {
			continue
		}
		a, in, over := p.load(i, loads)
		if over {
			continue
		}
		doh := overhead(a, in)
		if sed {
			doh = a + 1
		}
		if least < 0 || loh*dw > doh*lw {
			least, loh, lw = i, doh, dw
		}
	}
	return least
}
