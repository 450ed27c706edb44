package sched

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
)

// sipHashRef is SipHash-c-d straight from the paper, for any message, to
// check hsiphash32 against.
func sipHashRef(c, d int, k0, k1 uint64, msg []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13) ^ v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16) ^ v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21) ^ v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17) ^ v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	var last [8]byte
	n := len(msg) - len(msg)%8
	copy(last[:], msg[n:])
	last[7] = byte(len(msg))
	blocks := append(slices.Clone(msg[:n]), last[:]...)
	for i := 0; i < len(blocks); i += 8 {
		m := binary.LittleEndian.Uint64(blocks[i:])
		v3 ^= m
		for range c {
			round()
		}
		v0 ^= m
	}
	v2 ^= 0xff
	for range d {
		round()
	}
	return v0 ^ v1 ^ v2 ^ v3
}

func TestSipHashRef(t *testing.T) {
	// The SipHash paper's test vectors (key 00..0f).
	k0, k1 := uint64(0x0706050403020100), uint64(0x0f0e0d0c0b0a0908)
	msg := make([]byte, 15)
	for i := range msg {
		msg[i] = byte(i)
	}
	if got := sipHashRef(2, 4, k0, k1, msg); got != 0xa129ca6149be45e5 {
		t.Errorf("SipHash-2-4(00..0e) = %#x, want 0xa129ca6149be45e5", got)
	}
	if got := sipHashRef(2, 4, k0, k1, nil); got != 0x726fdb47dd0e0e31 {
		t.Errorf("SipHash-2-4(empty) = %#x, want 0x726fdb47dd0e0e31", got)
	}
}

// TestHSipHash checks hsiphash32 against SipHash-1-3 of the four
// little-endian bytes of v, truncated: the kernel's hsiphash on 64-bit.
func TestHSipHash(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	keys := []sipKey{{mhIPVSKey1, mhIPVSKey1}, {mhIPVSKey2, mhIPVSKey2}, {rng.Uint64(), rng.Uint64()}}
	for _, k := range keys {
		for range 1000 {
			v := rng.Uint32()
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], v)
			if got, want := hsiphash32(v, &k), uint32(sipHashRef(1, 3, k.k0, k.k1, b[:])); got != want {
				t.Fatalf("hsiphash32(%#x, %x) = %#x, want %#x", v, k, got, want)
			}
		}
	}
}

func TestHash32(t *testing.T) {
	// hash_32(v, 8) is the top byte of v * 0x61C88647.
	for _, tt := range []struct{ v, want uint32 }{{0, 0}, {1, 0x61}, {2, 0xc3}, {0x0a000001, uint32(0x0a000001*0x61C88647%(1<<32)) >> 24}} {
		if got := hash32(tt.v, 8); got != tt.want {
			t.Errorf("hash32(%#x, 8) = %#x, want %#x", tt.v, got, tt.want)
		}
	}
}

func TestFold(t *testing.T) {
	v6 := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	tests := []struct {
		addr [16]byte
		want uint32
	}{
		{v4(10, 0, 0, 1), 0x0a000001},
		{v4(0, 0, 0, 0), 0},
		{v6, 0x20010db8 ^ 1},
		{[16]byte{10: 0xff, 11: 0xfe, 15: 1}, 0x0000fffe ^ 1}, // not IPv4-mapped
	}
	for _, tt := range tests {
		if got := fold(&tt.addr); got != tt.want {
			t.Errorf("fold(%x) = %#x, want %#x", tt.addr, got, tt.want)
		}
	}
}

func TestDHTable(t *testing.T) {
	s := mustNew(t, "dh", dests(5, 0, 1)).(*dh)
	for i, d := range s.table {
		if int(d) != i%3 {
			t.Fatalf("bucket %d = %d, want %d (dealt in turn, weight aside)", i, d, i%3)
		}
	}
}

func TestSHTable(t *testing.T) {
	tests := []struct {
		weights []int
		head    []int32 // first buckets
		counts  []int   // buckets per dest
	}{
		{[]int{2, 0, 3}, []int32{0, 0, 1, 2, 2, 2, 0, 0, 1}, []int{86, 43, 127}}, // 256 = 42*6 + 4: 0,0,1,2 more
		{[]int{1, 1}, []int32{0, 1, 0, 1}, []int{128, 128}},
		{[]int{300, 1}, []int32{0, 0, 0}, []int{256, 0}},
		{[]int{200, 100}, []int32{0, 0}, []int{200, 56}},
	}
	for _, tt := range tests {
		s := mustNew(t, "sh", dests(tt.weights...)).(*sh)
		if !slices.Equal(s.table[:len(tt.head)], tt.head) {
			t.Errorf("weights %v: table starts %v, want %v", tt.weights, s.table[:len(tt.head)], tt.head)
		}
		counts := make([]int, len(tt.weights))
		for _, d := range s.table {
			counts[d]++
		}
		if !slices.Equal(counts, tt.counts) {
			t.Errorf("weights %v: buckets per dest %v, want %v", tt.weights, counts, tt.counts)
		}
	}
}

// TestHashStable checks that sh, dh and mh answer the same for the same key
// whatever else varies, and differently for different keys.
func TestHashStable(t *testing.T) {
	d := dests(1, 1, 1, 1, 1)
	tests := []struct {
		sched string
		flags []string
		vary  func(f *Flow, i int) // what must not matter
		key   func(f *Flow, i int) // what must matter
	}{
		{"sh", nil, func(f *Flow, i int) { f.DstAddr = v4(9, 9, 9, byte(i)); f.SrcPort = uint16(i) }, func(f *Flow, i int) { f.SrcAddr = v4(1, 2, byte(i>>8), byte(i)) }},
		{"sh", []string{"sh-port"}, func(f *Flow, i int) { f.DstAddr = v4(9, 9, 9, byte(i)); f.DstPort = uint16(i) }, func(f *Flow, i int) { f.SrcPort = uint16(1000 + i) }},
		{"mh", nil, func(f *Flow, i int) { f.DstAddr = v4(9, 9, 9, byte(i)); f.SrcPort = uint16(i) }, func(f *Flow, i int) { f.SrcAddr = v4(1, 2, byte(i>>8), byte(i)) }},
		{"mh", []string{"mh-port"}, func(f *Flow, i int) { f.DstAddr = v4(9, 9, 9, byte(i)); f.DstPort = uint16(i) }, func(f *Flow, i int) { f.SrcPort = uint16(1000 + i) }},
		{"dh", nil, func(f *Flow, i int) { f.SrcAddr = v4(9, 9, 9, byte(i)); f.SrcPort = uint16(i) }, func(f *Flow, i int) { f.DstAddr = v4(1, 2, byte(i>>8), byte(i)) }},
	}
	for _, tt := range tests {
		s := mustNewOpts(t, tt.sched, d, Options{Flags: tt.flags})
		base := Flow{Proto: 6, SrcAddr: v4(1, 2, 3, 4), SrcPort: 5000, DstAddr: v4(5, 6, 7, 8), DstPort: 80}
		first := s.Pick(&base, nil)
		for i := range 100 {
			f := base
			tt.vary(&f, i)
			if got := s.Pick(&f, nil); got != first {
				t.Fatalf("%s %v: changing what it does not hash moved the flow: %d, then %d", tt.sched, tt.flags, first, got)
			}
		}
		seen := make(map[int]bool)
		for i := range 200 {
			f := base
			tt.key(&f, i)
			seen[s.Pick(&f, nil)] = true
		}
		if len(seen) != len(d) {
			t.Errorf("%s %v: 200 keys went to %d of %d real servers", tt.sched, tt.flags, len(seen), len(d))
		}
	}
}

// TestHashPortOnlyForPortProtocols: sh-port and mh-port hash the source
// port of TCP, UDP and SCTP only, as ip_vs_sh_get_port.
func TestHashPortOnlyForPortProtocols(t *testing.T) {
	d := dests(1, 1, 1, 1)
	for _, name := range []string{"sh", "mh"} {
		s := mustNewOpts(t, name, d, Options{Flags: []string{name + "-port"}})
		for _, proto := range []uint8{1, 58} {
			f := Flow{Proto: proto, SrcAddr: v4(1, 2, 3, 4)}
			first := s.Pick(&f, nil)
			for p := range 100 {
				f.SrcPort = uint16(p)
				if got := s.Pick(&f, nil); got != first {
					t.Fatalf("%s proto %d: the port moved the flow", name, proto)
				}
			}
		}
		for _, proto := range []uint8{6, 17, 132} {
			seen := make(map[int]bool)
			for p := range 100 {
				seen[s.Pick(&Flow{Proto: proto, SrcAddr: v4(1, 2, 3, 4), SrcPort: uint16(p)}, nil)] = true
			}
			if len(seen) < 2 {
				t.Errorf("%s proto %d: 100 source ports all went to one real server", name, proto)
			}
		}
	}
}

// shFallbackOracle transliterates ip_vs_sh_get_fallback over s's table
// with avail telling which dests are available.
func shFallbackOracle(s *sh, f *Flow, avail func(int) bool) int {
	var port uint32
	if s.flags&flagPort != 0 {
		port = flowPort(f)
	}
	hashkey := func(offset uint32) uint32 {
		return (offset + hash32(port+fold(&f.SrcAddr), shTabBits)) & shTabMask
	}
	ihash := hashkey(0)
	if d := int(s.table[ihash]); avail(d) {
		return d
	}
	for offset := uint32(0); offset < shTabSize; offset++ {
		roffset := (offset + ihash) % shTabSize
		if d := int(s.table[hashkey(roffset)]); avail(d) {
			return d
		}
	}
	return -1
}

// TestSHFallback: the hashed real server at weight 0 or overloaded; without
// sh-fallback that is -1, with it IPVS's probe finds another.
func TestSHFallback(t *testing.T) {
	d := dests(1, 0, 1, 1)
	d[2].UpperThreshold = 1
	l := fakeLoads{d[2].ID: {1, 0}}
	avail := func(i int) bool { return i == 0 || i == 3 }
	plain := mustNew(t, "sh", d)
	fb := mustNewOpts(t, "sh", d, Options{Flags: []string{"flag-1"}}).(*sh)
	flows := testFlows(300)
	var refused, moved int
	for i := range flows {
		f := &flows[i]
		h := int(fb.table[hash32(fold(&f.SrcAddr), shTabBits)])
		want := shFallbackOracle(fb, f, avail)
		got := fb.Pick(f, l)
		if got != want || got < 0 {
			t.Fatalf("flow %d: sh-fallback Pick = %d, want %d", i, got, want)
		}
		p := plain.Pick(f, l)
		switch {
		case avail(h):
			if p != h || got != h {
				t.Fatalf("flow %d: hashed real server %d available, picks %d and %d", i, h, p, got)
			}
		default:
			if p != -1 {
				t.Fatalf("flow %d: hashed real server %d unavailable, sh without fallback picked %d", i, h, p)
			}
			refused++
			if h == 1 {
				moved++
			}
		}
	}
	if refused == 0 || moved == 0 {
		t.Errorf("no flow hashed to an unavailable real server (%d, %d of them weight 0): test proves nothing", refused, moved)
	}
}
