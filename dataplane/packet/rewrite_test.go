package packet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// rewriteOp is one rewrite under test, described both as a function on a
// decoded frame and as the spec of the frame it must produce.
type rewriteOp struct {
	name  string
	apply func(frame []byte, m *Meta) error
	want  func(s frameSpec) frameSpec
}

func dnatOp(addr netip.Addr, port uint16) rewriteOp {
	return rewriteOp{
		name:  fmt.Sprintf("DNAT %v:%d", addr, port),
		apply: func(f []byte, m *Meta) error { return DNAT(f, m, addr, port) },
		want:  func(s frameSpec) frameSpec { s.dst, s.dport = addr, port; return s },
	}
}

func snatOp(addr netip.Addr, port uint16) rewriteOp {
	return rewriteOp{
		name:  fmt.Sprintf("SNAT %v:%d", addr, port),
		apply: func(f []byte, m *Meta) error { return SNAT(f, m, addr, port) },
		want:  func(s frameSpec) frameSpec { s.src, s.sport = addr, port; return s },
	}
}

// TestRewrite applies each rewrite to each frame kind and compares the
// result byte for byte with the frame gopacket builds from scratch with the
// rewritten fields (its checksums computed in full), then verifies the
// checksums again with the independent naive implementation.
func TestRewrite(t *testing.T) {
	rs4, rs6 := netip.MustParseAddr("198.18.2.7"), netip.MustParseAddr("fd00::2:7")
	lip4, lip6 := netip.MustParseAddr("198.18.3.1"), netip.MustParseAddr("fd00::3:1")
	for _, base := range frameKinds() {
		for _, n := range []int{0, 1, 13, 512} {
			base.payload = payloadOf(n)
			base = base.withDefaults()
			rs, lip := rs4, lip4
			if base.v6 {
				rs, lip = rs6, lip6
			}
			ops := []rewriteOp{
				dnatOp(rs, 8080),
				dnatOp(rs, base.dport),       // port unchanged
				dnatOp(base.dst, 9090),       // address unchanged
				dnatOp(base.dst, base.dport), // nothing changes
				snatOp(lip, 61000),           // FullNAT source
				snatOp(base.src, base.sport), // nothing changes
				snatOp(lip, base.sport),      // port unchanged
				{
					name: "DNAT then SNAT (FullNAT)",
					apply: func(f []byte, m *Meta) error {
						if err := DNAT(f, m, rs, 8080); err != nil {
							return err
						}
						return SNAT(f, m, lip, 61000)
					},
					want: func(s frameSpec) frameSpec {
						s.dst, s.dport, s.src, s.sport = rs, 8080, lip, 61000
						return s
					},
				},
				{
					name:  "SetMACs",
					apply: func(f []byte, m *Meta) error { SetMACs(f, testDstMAC, testSrcMAC); return nil },
					want:  func(s frameSpec) frameSpec { return s }, // MACs checked below
				},
			}
			if base.proto == ProtoUDP {
				zero := base
				zero.zeroUDP = true
				runRewrites(t, zero, ops)
			}
			runRewrites(t, base, ops)
		}
	}
}

func runRewrites(t *testing.T, base frameSpec, ops []rewriteOp) {
	p := NewParser()
	for _, op := range ops {
		name := fmt.Sprintf("%v/zeroUDP=%v/%s", base, base.zeroUDP, op.name)
		t.Run(name, func(t *testing.T) {
			frame := buildFrame(t, base)
			var m Meta
			if err := p.Decode(frame, &m); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if err := op.apply(frame, &m); err != nil {
				t.Fatalf("rewrite: %v", err)
			}
			wantSpec := op.want(base)
			want := buildFrame(t, wantSpec)
			if op.name == "SetMACs" {
				copy(want[0:6], testSrcMAC[:])
				copy(want[6:12], testDstMAC[:])
			}
			if !bytes.Equal(frame, want) {
				t.Fatalf("rewritten frame differs from one built from scratch\n got %x\nwant %x", frame, want)
			}
			r := verifyChecksums(t, frame)
			if !r.ipv4OK || !r.l4OK {
				t.Fatalf("checksums do not verify: %+v", r)
			}
			if r.udpNone != base.zeroUDP {
				t.Fatalf("UDP checksum none = %v, want %v", r.udpNone, base.zeroUDP)
			}
			// The Meta follows the rewrite, and agrees with a fresh decode.
			var again Meta
			if err := p.Decode(frame, &again); err != nil {
				t.Fatalf("re-Decode: %v", err)
			}
			if again != m {
				t.Fatalf("Meta after rewrite %+v, fresh decode %+v", m, again)
			}
		})
	}
}

// TestRewriteUDPChecksumBecomesZero builds a UDP packet whose checksum after
// DNAT computes to 0, which must go on the wire as 0xffff (RFC 768).
func TestRewriteUDPChecksumBecomesZero(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		s := frameSpec{v6: v6, proto: ProtoUDP, sport: 5000, dport: 53, payload: payloadOf(10)}.withDefaults()
		rs := netip.MustParseAddr("198.18.9.9")
		if v6 {
			rs = netip.MustParseAddr("fd00::9:9")
		}
		after := s
		after.dst, after.dport = rs, 5353
		// Pick the first payload word so the rewritten packet's one's
		// complement sum is 0xffff, i.e. its checksum computes to 0.
		binary.BigEndian.PutUint16(after.payload, 0)
		f := buildFrame(t, after)
		var m Meta
		if err := NewParser().Decode(f, &m); err != nil {
			t.Fatal(err)
		}
		ck := binary.BigEndian.Uint16(f[m.L4Off+6:])
		// ck = ^S, S being the sum with the word at 0; adding w = ck makes it 0xffff.
		binary.BigEndian.PutUint16(after.payload, ck)
		s.payload = after.payload

		frame := buildFrame(t, s)
		p := NewParser()
		if err := p.Decode(frame, &m); err != nil {
			t.Fatal(err)
		}
		if err := DNAT(frame, &m, rs, 5353); err != nil {
			t.Fatal(err)
		}
		if got := UDP(frame[m.L4Off:]).Checksum(); got != 0xffff {
			t.Fatalf("v6=%v: UDP checksum %#04x, want 0xffff", v6, got)
		}
		if r := verifyChecksums(t, frame); !r.l4OK || r.l4Want != 0xffff {
			t.Fatalf("v6=%v: %+v", v6, r)
		}
		if want := buildFrame(t, after); !bytes.Equal(frame, want) {
			t.Fatalf("v6=%v: frame differs from gopacket's\n got %x\nwant %x", v6, frame, want)
		}
	}
}

// TestRewriteRandom compares incremental rewrites with full recomputation
// over many random addresses, ports and payload lengths.
func TestRewriteRandom(t *testing.T) {
	seed := uint64(0x5eed)
	rng := rand.New(rand.NewPCG(seed, seed))
	p := NewParser()
	randAddr := func(v6 bool) netip.Addr {
		if v6 {
			var a [16]byte
			for i := range a {
				a[i] = byte(rng.UintN(256))
			}
			return netip.AddrFrom16(a)
		}
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], rng.Uint32())
		return netip.AddrFrom4(a)
	}
	iters := 3000
	if testing.Short() {
		iters = 300
	}
	for i := range iters {
		s := frameSpec{
			v6:    rng.IntN(2) == 1,
			proto: []uint8{ProtoTCP, ProtoUDP}[rng.IntN(2)],
			tags:  rng.IntN(3),
			sport: uint16(rng.Uint32()), dport: uint16(rng.Uint32()),
			flags:   uint8(rng.Uint32()),
			payload: make([]byte, rng.IntN(1400)),
			trailer: rng.IntN(3),
		}
		for j := range s.payload {
			s.payload[j] = byte(rng.Uint32())
		}
		s.src, s.dst = randAddr(s.v6), randAddr(s.v6)
		s.zeroUDP = s.proto == ProtoUDP && rng.IntN(8) == 0
		frame := buildFrame(t, s)
		var m Meta
		if err := p.Decode(frame, &m); err != nil {
			t.Fatalf("iter %d (seed %#x) %v: Decode: %v", i, seed, s, err)
		}
		want := s
		for range 1 + rng.IntN(3) {
			addr, port := randAddr(s.v6), uint16(rng.Uint32())
			if rng.IntN(4) == 0 {
				port = want.dport // exercise "address only"
			}
			var err error
			if rng.IntN(2) == 0 {
				err = DNAT(frame, &m, addr, port)
				want.dst, want.dport = addr, port
			} else {
				err = SNAT(frame, &m, addr, port)
				want.src, want.sport = addr, port
			}
			if err != nil {
				t.Fatalf("iter %d: rewrite: %v", i, err)
			}
		}
		wantFrame := buildFrame(t, want)
		if !bytes.Equal(frame, wantFrame) {
			t.Fatalf("iter %d (seed %#x) %v: incremental result differs from full recomputation\n got %x\nwant %x", i, seed, s, frame, wantFrame)
		}
		if r := verifyChecksums(t, frame); !r.ipv4OK || !r.l4OK || r.udpNone != s.zeroUDP {
			t.Fatalf("iter %d: checksums: %+v", i, r)
		}
	}
}

func TestRewriteErrors(t *testing.T) {
	v4 := netip.MustParseAddr("198.18.0.9")
	v6 := netip.MustParseAddr("fd00::9")
	mapped := netip.MustParseAddr("::ffff:198.18.0.9")
	tests := []struct {
		name string
		spec frameSpec
		addr netip.Addr
		want error
	}{
		{"IPv4 packet, IPv6 address", frameSpec{proto: ProtoTCP}, v6, ErrAddressFamily},
		{"IPv4 packet, mapped address", frameSpec{proto: ProtoUDP}, mapped, ErrAddressFamily},
		{"IPv4 packet, zero Addr", frameSpec{proto: ProtoUDP}, netip.Addr{}, ErrAddressFamily},
		{"IPv6 packet, IPv4 address", frameSpec{v6: true, proto: ProtoTCP}, v4, ErrAddressFamily},
		{"ICMP", frameSpec{proto: ProtoICMP}, v4, ErrUnsupported},
		{"ICMPv6", frameSpec{v6: true, proto: ProtoICMPv6}, v6, ErrUnsupported},
	}
	p := NewParser()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := buildFrame(t, tt.spec)
			orig := append([]byte(nil), frame...)
			var m Meta
			if err := p.Decode(frame, &m); err != nil {
				t.Fatal(err)
			}
			before := m
			for _, f := range []func([]byte, *Meta, netip.Addr, uint16) error{DNAT, SNAT} {
				if err := f(frame, &m, tt.addr, 1234); err != tt.want {
					t.Errorf("got %v, want %v", err, tt.want)
				}
			}
			if !bytes.Equal(frame, orig) || m != before {
				t.Errorf("failed rewrite changed the frame or the Meta")
			}
		})
	}

	t.Run("Meta that does not fit the frame", func(t *testing.T) {
		frame := buildFrame(t, frameSpec{proto: ProtoTCP})
		orig := append([]byte(nil), frame...)
		var m Meta
		if err := p.Decode(frame, &m); err != nil {
			t.Fatal(err)
		}
		for name, bad := range map[string]func(m *Meta){
			"L4 header past frame": func(m *Meta) { m.L4Off = len(frame) - 10 },
			"L4 inside IP header":  func(m *Meta) { m.L4Off = m.L3Off + 10 },
			"negative L3Off":       func(m *Meta) { m.L3Off = -1 },
			"IPv6 flag on IPv4":    func(m *Meta) { m.IPv6 = true },
		} {
			mm := m
			bad(&mm)
			addr := v4
			if mm.IPv6 {
				addr = v6
			}
			if err := DNAT(frame, &mm, addr, 1); err != ErrMalformed {
				t.Errorf("%s: DNAT = %v, want ErrMalformed", name, err)
			}
		}
		if err := SNAT(frame[:40], &m, v4, 1); err != ErrMalformed {
			t.Errorf("SNAT on a cut frame = %v, want ErrMalformed", err)
		}
		if !bytes.Equal(frame, orig) {
			t.Errorf("failed rewrites changed the frame")
		}
	})
}

// TestRewritePreservesBadChecksum: an incoming segment with a wrong checksum
// must still fail verification after NAT.
func TestRewritePreservesBadChecksum(t *testing.T) {
	for _, s := range frameKinds() {
		frame := buildFrame(t, s)
		var m Meta
		if err := NewParser().Decode(frame, &m); err != nil {
			t.Fatal(err)
		}
		off := m.L4Off + tcpChecksumOff
		if m.Proto == ProtoUDP {
			off = m.L4Off + udpChecksumOff
		}
		frame[off] ^= 0x5a
		rs := netip.MustParseAddr("198.18.4.4")
		if m.IPv6 {
			rs = netip.MustParseAddr("fd00::4:4")
		}
		if err := DNAT(frame, &m, rs, 4444); err != nil {
			t.Fatal(err)
		}
		if r := verifyChecksums(t, frame); r.l4OK {
			t.Errorf("%v: corrupted checksum verifies after DNAT", s)
		}
	}
}

func TestDecrementTTL(t *testing.T) {
	p := NewParser()
	for _, s := range frameKinds() {
		frame := buildFrame(t, s)
		var m Meta
		if err := p.Decode(frame, &m); err != nil {
			t.Fatal(err)
		}
		for want := 63; want >= 1; want-- {
			if !DecrementTTL(frame, &m) {
				t.Fatalf("%v: DecrementTTL refused at %d", s, want+1)
			}
			var got int
			if m.IPv6 {
				got = int(IPv6(frame[m.L3Off:]).HopLimit())
			} else {
				ip := IPv4(frame[m.L3Off:])
				got = int(ip.TTL())
				if !ip.IsChecksumValid() || ip.Checksum() != ip.CalculateChecksum() {
					t.Fatalf("%v: header checksum %#04x, want %#04x", s, ip.Checksum(), ip.CalculateChecksum())
				}
			}
			if got != want {
				t.Fatalf("%v: TTL %d, want %d", s, got, want)
			}
		}
		orig := append([]byte(nil), frame...)
		if DecrementTTL(frame, &m) {
			t.Fatalf("%v: DecrementTTL accepted TTL 1", s)
		}
		if !bytes.Equal(orig, frame) {
			t.Fatalf("%v: refused DecrementTTL changed the frame", s)
		}
	}
}
