package sched

// twos is power of two choices, as ip_vs_twos.c: draw two available real
// servers at random, each with probability (weight)/(sum of weights + 1)
// (the first one gets one chance more: IPVS draws from 0 to the sum
// inclusive), and take the second one only when its overhead/weight is
// strictly below the first one's.
//
// The random numbers come from a counter run through SplitMix64: one
// atomic add per pick, no lock, and a sequence fixed by the seed.
type twos struct {
	pool
	seed uint64
	ctr  cursor
}

func newTwos(dests []Dest, seed uint64) Scheduler {
	return &twos{pool: newPool(dests), seed: seed}
}

func (*twos) Name() string { return "twos" }

func (s *twos) Pick(_ *Flow, loads Loads) int {
	c := s.ctr.next()
	return s.bind(s.choose(loads, splitmix64(s.seed+2*c*golden), splitmix64(s.seed+(2*c+1)*golden)), loads)
}

// choose is ip_vs_twos_schedule with the two random numbers given.
func (s *twos) choose(loads Loads, rand1, rand2 uint64) int {
	var total int64
	last := -1
	for i := range s.dests {
		if s.avail(i, loads) {
			total += int64(s.w[i])
			last = i
		}
	}
	if last < 0 {
		return -1
	}
	total++
	r1, r2 := int64(rand1%uint64(total)), int64(rand2%uint64(total))
	c1, c2 := -1, -1
	for i := range s.dests {
		// The marks as the first pass left them: the second pass sees
		// the same real servers unless another worker moved a mark.
		w := int64(s.w[i])
		if w <= 0 || s.marked(i) {
			continue
		}
		r1 -= w
		r2 -= w
		if r1 <= 0 && c1 < 0 {
			c1 = i
		}
		if r2 <= 0 && c2 < 0 {
			c2 = i
		}
		if c1 >= 0 && c2 >= 0 {
			break
		}
	}
	if c1 < 0 { // marks moved under us
		c1 = last
	}
	if c2 < 0 || c2 == c1 {
		return c1
	}
	w1, w2 := int64(s.w[c1]), int64(s.w[c2])
	o1, o2 := overhead(s.conns(loads, c1)), overhead(s.conns(loads, c2))
	if w2*o1 > w1*o2 {
		return c2
	}
	return c1
}
