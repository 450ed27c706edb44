package packet

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestChecksumRFC1071Example(t *testing.T) {
	// RFC 1071 section 3: the sum of these bytes folds to 0xddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Fold(Checksum(b, 0)); got != 0xddf2 {
		t.Fatalf("Fold(Checksum) = %#04x, want 0xddf2", got)
	}
	if got := ^Fold(Checksum(b, 0)); got != 0x220d {
		t.Fatalf("checksum = %#04x, want 0x220d", got)
	}
}

func TestChecksumMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(b []byte, mode int) {
		for i := range b {
			switch mode {
			case 0:
				b[i] = byte(rng.Uint32())
			case 1:
				b[i] = 0xff // every add carries
			case 2:
				b[i] = 0
			}
		}
	}
	for n := 0; n <= 300; n++ {
		for mode := range 3 {
			b := make([]byte, n)
			fill(b, mode)
			for _, initial := range []uint32{0, 1, 0xffff, 0x1234_5678, 0xffff_ffff} {
				got := Fold(Checksum(b, initial))
				want := naiveFold(naiveSum(b, uint64(initial)))
				if got != want {
					t.Fatalf("len %d mode %d initial %#x: Fold(Checksum) = %#04x, naive %#04x", n, mode, initial, got, want)
				}
			}
		}
	}
	// A maximal IP packet of 0xff bytes stresses the carries.
	big := make([]byte, 65535)
	fill(big, 1)
	if got, want := Fold(Checksum(big, 0)), naiveFold(naiveSum(big, 0)); got != want {
		t.Fatalf("64 KiB of 0xff: %#04x, naive %#04x", got, want)
	}
}

func TestChecksumChaining(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		b := make([]byte, rng.IntN(200))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		cut := rng.IntN(len(b)+1) &^ 1 // chunks before the last must be even
		got := Fold(Checksum(b[cut:], Checksum(b[:cut], 0)))
		if want := Fold(Checksum(b, 0)); got != want {
			t.Fatalf("len %d cut %d: chained %#04x, whole %#04x", len(b), cut, got, want)
		}
	}
}

func TestFold(t *testing.T) {
	for _, tt := range []struct {
		in   uint32
		want uint16
	}{
		{0, 0},
		{1, 1},
		{0xffff, 0xffff},
		{0x10000, 1},
		{0x1fffe, 0xffff},
		{0xffff_ffff, 0xffff},
		{0x0001_fffe, 0xffff},
		{0x8000_8000, 1},
	} {
		if got := Fold(tt.in); got != tt.want {
			t.Errorf("Fold(%#x) = %#x, want %#x", tt.in, got, tt.want)
		}
	}
}

func TestUpdateChecksum16RFC1624(t *testing.T) {
	// RFC 1624 section 4: equation 2 gives 0xffff here, equation 3 (and a
	// full recomputation) gives 0x0000.
	if got := UpdateChecksum16(0xdd2f, 0x5555, 0x3285); got != 0x0000 {
		t.Fatalf("UpdateChecksum16 = %#04x, want 0x0000", got)
	}
}

// fullChecksum is the value a header stores for data: the reference the
// incremental updates must reproduce exactly.
func fullChecksum(b []byte) uint16 { return ^naiveFold(naiveSum(b, 0)) }

func TestUpdateChecksum16MatchesFull(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		b := make([]byte, 2*(1+rng.IntN(30)))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		csum := fullChecksum(b)
		at := 2 * rng.IntN(len(b)/2)
		old := binary.BigEndian.Uint16(b[at:])
		var new uint16
		switch rng.IntN(4) {
		case 0:
			new = 0
		case 1:
			new = 0xffff
		default:
			new = uint16(rng.Uint32())
		}
		binary.BigEndian.PutUint16(b[at:], new)
		got, want := UpdateChecksum16(csum, old, new), fullChecksum(b)
		if naiveSum(b, 0) == 0 {
			// All-zero data, the one case where one's complement's two
			// zeros differ: a full sum stores 0xffff, an update 0x0000.
			// Never seen on the wire: pseudo-headers carry a protocol.
			if got != 0 && got != 0xffff {
				t.Fatalf("all-zero data: incremental %#04x", got)
			}
			continue
		}
		if got != want {
			t.Fatalf("%x: word %d %#04x->%#04x: incremental %#04x, full %#04x", b, at/2, old, new, got, want)
		}
	}
}

func TestUpdateChecksumAddrMatchesFull(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		n := []int{4, 16}[rng.IntN(2)]
		b := make([]byte, 40+n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		at := 2 * rng.IntN(20)
		csum := fullChecksum(b)
		old := append([]byte(nil), b[at:at+n]...)
		for i := at; i < at+n; i++ {
			b[i] = byte(rng.Uint32())
		}
		if got, want := UpdateChecksumAddr(csum, old, b[at:at+n]), fullChecksum(b); got != want {
			t.Fatalf("%d-byte change at %d: incremental %#04x, full %#04x", n, at, got, want)
		}
	}
}

func TestPseudoHeaderChecksum(t *testing.T) {
	tests := []struct {
		src, dst string
		proto    uint8
		length   uint32
	}{
		{"198.18.0.1", "198.18.1.100", ProtoTCP, 20},
		{"255.255.255.255", "255.255.255.255", ProtoUDP, 65535},
		{"0.0.0.0", "0.0.0.0", ProtoUDP, 8},
		{"fd00::1", "fd00::100", ProtoTCP, 1440},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ProtoUDP, 0x1_0004},
	}
	for _, tt := range tests {
		src, dst := netip.MustParseAddr(tt.src), netip.MustParseAddr(tt.dst)
		var ph []byte
		ph = append(ph, src.AsSlice()...)
		ph = append(ph, dst.AsSlice()...)
		if src.Is4() {
			ph = append(ph, 0, tt.proto, byte(tt.length>>8), byte(tt.length))
		} else {
			ph = binary.BigEndian.AppendUint32(ph, tt.length)
			ph = append(ph, 0, 0, 0, tt.proto)
		}
		got := Fold(PseudoHeaderChecksum(tt.proto, src, dst, tt.length))
		if want := naiveFold(naiveSum(ph, 0)); got != want {
			t.Errorf("%v > %v proto %d len %d: %#04x, want %#04x", src, dst, tt.proto, tt.length, got, want)
		}
	}
}

// TestPseudoHeaderChecksumVerifiesFrames finishes the L4 checksum of
// gopacket-built frames with the package's own functions.
func TestPseudoHeaderChecksumVerifiesFrames(t *testing.T) {
	p := NewParser()
	for _, s := range frameKinds() {
		s.payload = payloadOf(77)
		frame := buildFrame(t, s)
		var m Meta
		if err := p.Decode(frame, &m); err != nil {
			t.Fatal(err)
		}
		seg := frame[m.L4Off:m.Length]
		sum := Checksum(seg, PseudoHeaderChecksum(m.Proto, m.Src, m.Dst, uint32(len(seg))))
		if Fold(sum) != 0xffff {
			t.Errorf("%v: segment does not verify: %#04x", s, Fold(sum))
		}
	}
}
