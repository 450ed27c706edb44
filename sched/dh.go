package sched

// shTabBits sizes the dh and sh tables as IPVS's default
// CONFIG_IP_VS_DH_TAB_BITS and CONFIG_IP_VS_SH_TAB_BITS: 256 buckets.
const (
	shTabBits = 8
	shTabSize = 1 << shTabBits
	shTabMask = shTabSize - 1
)

// dh is destination hashing, as ip_vs_dh.c: a static table of 256 buckets,
// dealt to the real servers in turn whatever their weights, indexed by the
// hash of the flow's destination address. When the bucket's real server is
// unavailable (weight 0 or overloaded) there is no fallback: -1.
type dh struct {
	pool
	table [shTabSize]int32
}

func newDH(dests []Dest) Scheduler {
	s := &dh{pool: newPool(dests)}
	for i := range s.table {
		s.table[i] = -1
		if len(dests) > 0 {
			s.table[i] = int32(i % len(dests))
		}
	}
	return s
}

func (*dh) Name() string { return "dh" }

func (s *dh) Pick(f *Flow, loads Loads) int {
	d := int(s.table[hash32(fold(&f.DstAddr), shTabBits)])
	if d < 0 || !s.avail(d, loads) {
		return -1
	}
	return s.bind(d, loads)
}

// sh is source hashing, as ip_vs_sh.c: a static table of 256 buckets, each
// real server in turn taking as many consecutive buckets as its weight (at
// least one: a real server of weight 0 keeps a bucket, where it is
// unavailable), indexed by the hash of the flow's source address, and of
// its source port with sh-port. An unavailable real server (weight 0 or
// overloaded) means -1, or with sh-fallback the first available one of
// IPVS's probe sequence through the table.
type sh struct {
	pool
	flags uint
	table [shTabSize]int32
}

func newSH(dests []Dest, flags uint) Scheduler {
	s := &sh{pool: newPool(dests), flags: flags}
	// ip_vs_sh_reassign.
	j, count := 0, 0
	for i := range s.table {
		s.table[i] = -1
		if len(dests) == 0 {
			continue
		}
		s.table[i] = int32(j)
		if count++; count >= dests[j].Weight {
			j, count = (j+1)%len(dests), 0
		}
	}
	return s
}

func (*sh) Name() string { return "sh" }

func (s *sh) Pick(f *Flow, loads Loads) int {
	var port uint32
	if s.flags&flagPort != 0 {
		port = flowPort(f)
	}
	h := hash32(port+fold(&f.SrcAddr), shTabBits)
	d := int(s.table[h])
	if d < 0 {
		return -1
	}
	if s.avail(d, loads) {
		return s.bind(d, loads)
	}
	if s.flags&flagFallback == 0 {
		return -1
	}
	// ip_vs_sh_get_fallback: bucket (offset + ihash + hash) & mask, where
	// ihash and hash are both h, for each offset in turn.
	for off := range uint32(shTabSize) {
		if d := int(s.table[(off+2*h)&shTabMask]); s.avail(d, loads) {
			return s.bind(d, loads)
		}
	}
	return -1
}
