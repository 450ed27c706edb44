package sched

import (
	"fmt"
	"math/bits"
)

// mhTabSize is IPVS's default Maglev table size, primes[CONFIG_IP_VS_MH_TAB_INDEX
// - 8] with the default index 12; mhTabBits, half the index, bounds the
// turns a real server takes per round (ip_vs_mh_shift_weight).
const (
	mhTabSize = 65521
	mhTabBits = 6
)

// mhIPVSKey1 and mhIPVSKey2 make the fixed keys of IPVS's
// generate_hash_secret: hash1 places real servers and flows, hash2 gives
// each real server its skip.
const (
	mhIPVSKey1 = 2654435761
	mhIPVSKey2 = 2654446892
)

// mh is Maglev hashing, as ip_vs_mh.c. Each real server with a weight gets
// a permutation of the table's slots from the hash of its address and port
// (ip_vs_mh_permutate), and the real servers take turns claiming their next
// free slot, weight/gcd turns per round shifted down to at most 2^6
// (ip_vs_mh_populate), until the table is full. A flow goes to the real
// server of the slot its source address (and port, with mh-port) hashes
// to. When that one is unavailable (weight 0 or overloaded): -1, or with
// mh-fallback the first available one along IPVS's probe sequence.
//
// IPVS populates from last_weight, the last non-zero weight, so that a
// real server quiesced to weight 0 keeps its slots. A scheduler here is
// built afresh for each configuration, so it uses the weight it is given:
// a real server of weight 0 has no slots, as in a service that IPVS built
// with it at weight 0.
type mh struct {
	pool
	flags uint
	key   sipKey // hash1
	table []int32
}

func newMH(dests []Dest, o *options) (Scheduler, error) {
	if len(dests) > mhTabSize {
		return nil, fmt.Errorf("%d real servers do not fit a Maglev table of %d slots", len(dests), mhTabSize)
	}
	keys := mhKeys(o.seed)
	s := &mh{pool: newPool(dests), flags: o.flags, key: keys[0]}
	if setup := mhPermutate(dests, &keys); setup != nil {
		s.table = mhPopulate(setup, mhTabSize)
	}
	return s, nil
}

// mhPermutate is ip_vs_mh_permutate with ip_vs_mh_gcd_weight and
// ip_vs_mh_shift_weight: each real server's permutation and turns per
// round, weight/gcd shifted right until the largest fits in mhTabBits bits
// (at least 1 for a weight above 0). Nil when no real server has a weight:
// the table stays empty (ip_vs_mh_reset).
func mhPermutate(dests []Dest, keys *[2]sipKey) []mhSetup {
	g, maxW := 0, 0
	for _, d := range dests {
		if d.Weight > 0 {
			g = int(gcd(int32(d.Weight), int32(g)))
		}
		maxW = max(maxW, d.Weight)
	}
	if g < 1 {
		return nil
	}
	rshift := max(bits.Len(uint(maxW/g))-mhTabBits, 0)
	setup := make([]mhSetup, len(dests))
	for i, d := range dests {
		v := fold(&d.Addr) + uint32(d.Port)
		setup[i] = mhSetup{
			offset: hsiphash32(v, &keys[0]) % mhTabSize,
			skip:   hsiphash32(v, &keys[1])%(mhTabSize-1) + 1,
			turns:  (d.Weight / g) >> rshift,
		}
		if setup[i].turns == 0 && d.Weight != 0 {
			setup[i].turns = 1
		}
	}
	return setup
}

// mhKeys returns IPVS's keys for seed 0 and keys derived from seed
// otherwise, the same on every director.
func mhKeys(seed uint64) [2]sipKey {
	if seed == 0 {
		return [2]sipKey{{mhIPVSKey1, mhIPVSKey1}, {mhIPVSKey2, mhIPVSKey2}}
	}
	var k [4]uint64
	for i := range k {
		k[i] = splitmix64(seed + uint64(i+1)*golden)
	}
	return [2]sipKey{{k[0], k[1]}, {k[2], k[3]}}
}

// mhSetup is ip_vs_mh_dest_setup: where a real server's permutation starts,
// its stride, and how many slots it claims per round.
type mhSetup struct {
	offset, skip uint32
	turns        int
}

// mhPopulate is ip_vs_mh_populate over a table of size slots: round after
// round, each real server with turns claims its next turns free slots along
// its permutation offset, offset+skip, ... (mod size). It needs some real
// server with turns, and size prime so that every permutation covers the
// table.
func mhPopulate(setup []mhSetup, size uint32) []int32 {
	table := make([]int32, size)
	taken := make([]uint64, (size+63)/64)
	perm := make([]uint32, len(setup))
	for i := range setup {
		perm[i] = setup[i].offset
	}
	n := uint32(0)
	for {
		for i := range setup {
			for t := 0; t < setup[i].turns; t++ {
				c := perm[i]
				for taken[c/64]&(1<<(c%64)) != 0 {
					c += setup[i].skip
					if c >= size {
						c -= size
					}
				}
				perm[i] = c
				taken[c/64] |= 1 << (c % 64)
				table[c] = int32(i)
				if n++; n == size {
					return table
				}
			}
		}
	}
}

func (*mh) Name() string { return "mh" }

func (s *mh) Pick(f *Flow, loads Loads) int {
	if s.table == nil {
		return -1
	}
	var port uint32
	if s.flags&flagPort != 0 {
		port = flowPort(f)
	}
	v := port + fold(&f.SrcAddr)
	ih := hsiphash32(v, &s.key) % mhTabSize
	d := int(s.table[ih])
	if s.avail(d, loads) {
		return s.bind(d, loads)
	}
	// Without an available real server IPVS's probe loop below runs
	// through all 65521 offsets to find nothing; the answer is the same.
	if s.flags&flagFallback == 0 || !s.anyAvail(loads) {
		return -1
	}
	// ip_vs_mh_get_fallback: for offset = 0, 1, ... the slot of the flow
	// hashed with (offset + ihash) mod size added in.
	for off := range uint32(mhTabSize) {
		roff := (off + ih) % mhTabSize
		if d := int(s.table[hsiphash32(roff+v, &s.key)%mhTabSize]); s.avail(d, loads) {
			return s.bind(d, loads)
		}
	}
	return -1
}
