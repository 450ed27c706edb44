package packet

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// makePartial turns a frame with a complete TCP/UDP checksum into what a
// Linux sender hands its NIC with CHECKSUM_PARTIAL: the checksum field holds
// the folded pseudo-header sum, not complemented (the kernel's
// ~csum_tcpudp_magic). It uses the naive sums, apart from the code under
// test, and returns the field it wrote.
func makePartial(tb testing.TB, frame []byte, m *Meta) uint16 {
	tb.Helper()
	var pseudo uint64
	if m.IPv6 {
		pseudo = naiveSum(frame[m.L3Off+8:m.L3Off+40], 0)
	} else {
		pseudo = naiveSum(frame[m.L3Off+12:m.L3Off+20], 0)
	}
	n := m.Length - m.L4Off
	off := tcpChecksumOff
	if m.Proto == ProtoUDP {
		off = udpChecksumOff
		n = int(binary.BigEndian.Uint16(frame[m.L4Off+4:]))
	}
	pseudo += uint64(m.Proto) + uint64(n)
	p := naiveFold(pseudo)
	binary.BigEndian.PutUint16(frame[m.L4Off+off:], p)
	return p
}

func l4ChecksumOf(frame []byte, m *Meta) uint16 {
	off := tcpChecksumOff
	if m.Proto == ProtoUDP {
		off = udpChecksumOff
	}
	return binary.BigEndian.Uint16(frame[m.L4Off+off:])
}

// TestCompletePartialChecksum: a partial checksum is completed to exactly
// what gopacket computes from scratch; a complete one, a corrupt one and a
// UDP datagram without a checksum are left byte for byte as they came.
func TestCompletePartialChecksum(t *testing.T) {
	p := NewParser()
	for _, s := range frameKinds() {
		for _, n := range []int{0, 1, 7, 200, 1401} {
			s.payload = payloadOf(n)
			want := buildFrame(t, s)
			var m Meta
			if err := p.Decode(want, &m); err != nil {
				t.Fatalf("%v: %v", s, err)
			}

			frame := bytes.Clone(want)
			makePartial(t, frame, &m)
			if !IsPartialChecksum(frame, &m) {
				t.Errorf("%v: a partial checksum not recognised", s)
			}
			if L4ChecksumValid(frame, &m) {
				t.Errorf("%v: a partial checksum verifies", s)
			}
			if !CompletePartialChecksum(frame, &m) {
				t.Errorf("%v: partial checksum not completed", s)
			}
			if !bytes.Equal(frame, want) {
				t.Errorf("%v: completed checksum %#04x, gopacket computes %#04x", s, l4ChecksumOf(frame, &m), l4ChecksumOf(want, &m))
			}
			if !L4ChecksumValid(frame, &m) || !verifyChecksums(t, frame).l4OK {
				t.Errorf("%v: completed checksum does not verify", s)
			}

			// Complete already: nothing to do, nothing changed.
			frame = bytes.Clone(want)
			if IsPartialChecksum(frame, &m) || CompletePartialChecksum(frame, &m) || !bytes.Equal(frame, want) {
				t.Errorf("%v: a complete checksum was taken for a partial one", s)
			}

			// Corrupt: preserved, not laundered.
			frame = bytes.Clone(want)
			off := m.L4Off + tcpChecksumOff
			if m.Proto == ProtoUDP {
				off = m.L4Off + udpChecksumOff
			}
			frame[off] ^= 0x5a
			bad := bytes.Clone(frame)
			if CompletePartialChecksum(frame, &m) || !bytes.Equal(frame, bad) || L4ChecksumValid(frame, &m) {
				t.Errorf("%v: a corrupt checksum was changed or verifies", s)
			}
		}
	}
}

func TestCompletePartialChecksumUDPEdges(t *testing.T) {
	p := NewParser()
	for _, v6 := range []bool{false, true} {
		s := frameSpec{v6: v6, proto: ProtoUDP, sport: 40000, dport: 9999, payload: payloadOf(20), zeroUDP: true}
		frame := buildFrame(t, s)
		var m Meta
		if err := p.Decode(frame, &m); err != nil {
			t.Fatal(err)
		}
		// No checksum (RFC 768): never partial, never filled in.
		orig := bytes.Clone(frame)
		if IsPartialChecksum(frame, &m) || CompletePartialChecksum(frame, &m) || !bytes.Equal(frame, orig) {
			t.Errorf("v6=%v: a UDP datagram without checksum was changed", v6)
		}
		if got := L4ChecksumValid(frame, &m); got != !v6 {
			t.Errorf("v6=%v: zero UDP checksum valid = %v, want %v", v6, got, !v6)
		}

		// A datagram whose complete checksum computes to 0 stores 0xffff.
		// Search two payload bytes for one.
		found := false
		for x := 0; x < 1<<16 && !found; x++ {
			binary.BigEndian.PutUint16(frame[m.L4Off+UDPHeaderLen:], uint16(x))
			makePartial(t, frame, &m)
			if !CompletePartialChecksum(frame, &m) {
				t.Fatalf("v6=%v: partial not completed", v6)
			}
			if r := verifyChecksums(t, frame); r.l4Want == 0xffff {
				found = true
				if got := l4ChecksumOf(frame, &m); got != 0xffff || !r.l4OK {
					t.Errorf("v6=%v: checksum computing to 0 stored as %#04x, want 0xffff", v6, got)
				}
			}
		}
		if !found {
			t.Fatalf("v6=%v: no payload gives checksum 0", v6)
		}
	}
}

// TestPartialThroughRewrite: a partial frame completed and then NATed
// verifies at the receiver, while NATing it without completing does not
// (what every real server saw before the director completed checksums).
func TestPartialThroughRewrite(t *testing.T) {
	p := NewParser()
	for _, s := range frameKinds() {
		s.payload = payloadOf(100)
		frame := buildFrame(t, s)
		var m Meta
		if err := p.Decode(frame, &m); err != nil {
			t.Fatal(err)
		}
		makePartial(t, frame, &m)
		rs := netip.MustParseAddr("198.18.2.7")
		if m.IPv6 {
			rs = netip.MustParseAddr("fd00::2:7")
		}
		blind := bytes.Clone(frame)
		mb := m
		if err := DNAT(blind, &mb, rs, 8080); err != nil {
			t.Fatal(err)
		}
		if verifyChecksums(t, blind).l4OK {
			t.Errorf("%v: a partial frame NATed without completing verifies: the test cannot tell", s)
		}
		if !CompletePartialChecksum(frame, &m) {
			t.Fatalf("%v: not completed", s)
		}
		if err := DNAT(frame, &m, rs, 8080); err != nil {
			t.Fatal(err)
		}
		if r := verifyChecksums(t, frame); !r.l4OK || !r.ipv4OK {
			t.Errorf("%v: completed and NATed frame does not verify: %+v", s, r)
		}
	}
}

func TestCompletePartialChecksumAllocs(t *testing.T) {
	frame := buildFrame(t, frameSpec{proto: ProtoTCP, sport: 1, dport: 80, payload: payloadOf(64)})
	var m Meta
	if err := NewParser().Decode(frame, &m); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		makePartialFast(frame, &m)
		CompletePartialChecksum(frame, &m)
	}); n != 0 {
		t.Errorf("%v allocations per completion", n)
	}
}

// makePartialFast is makePartial without testing.TB, for the allocation
// and benchmark loops.
func makePartialFast(frame []byte, m *Meta) {
	n := m.Length - m.L4Off
	off := tcpChecksumOff
	if m.Proto == ProtoUDP {
		off, n = udpChecksumOff, int(binary.BigEndian.Uint16(frame[m.L4Off+4:]))
	}
	binary.BigEndian.PutUint16(frame[m.L4Off+off:], Fold(pseudoSum(frame, m.L3Off, m.IPv6, m.Proto, n)))
}

// TestCompleteChecksumEqualToPseudo: once in 65 535 segments a complete
// checksum equals the pseudo-header sum. It verifies as it is, so it is
// neither changed nor counted as completed.
func TestCompleteChecksumEqualToPseudo(t *testing.T) {
	p := NewParser()
	for _, v6 := range []bool{false, true} {
		frame := buildFrame(t, frameSpec{v6: v6, proto: ProtoTCP, sport: 40000, dport: 80, flags: FlagACK, payload: payloadOf(20)})
		var m Meta
		if err := p.Decode(frame, &m); err != nil {
			t.Fatal(err)
		}
		found := false
		for x := 0; x < 1<<16 && !found; x++ {
			binary.BigEndian.PutUint16(frame[m.L4Off+TCPMinHeaderLen:], uint16(x))
			fixChecksums(frame, &m)
			if !IsPartialChecksum(frame, &m) {
				continue
			}
			found = true
			orig := bytes.Clone(frame)
			if !L4ChecksumValid(frame, &m) {
				t.Fatalf("v6=%v: test bug: the checksum does not verify", v6)
			}
			if CompletePartialChecksum(frame, &m) || !bytes.Equal(frame, orig) {
				t.Errorf("v6=%v: a complete checksum equal to its pseudo-header sum was rewritten or counted", v6)
			}
		}
		if !found {
			t.Fatalf("v6=%v: no payload gives a checksum equal to the pseudo-header sum", v6)
		}
	}
}

func TestVerifyChecksums(t *testing.T) {
	p := NewParser()
	for _, s := range frameKinds() {
		s.payload = payloadOf(33)
		f := buildFrame(t, s)
		if !VerifyChecksums(f) {
			t.Errorf("%v: a valid frame does not verify", s)
		}
		var m Meta
		if err := p.Decode(f, &m); err != nil {
			t.Fatal(err)
		}
		for _, outer := range []Family{FamilyIPv4, FamilyIPv6} {
			buf := make([]byte, 64+len(f))
			copy(buf[64:], f)
			tun, err := EncapIPIP(buf, 64, &m, Tunnel{Src: pick(outer, "198.18.0.2", "fd00::2"), Dst: pick(outer, "198.18.0.11", "fd00::11"), ID: 7})
			if err != nil {
				t.Fatal(err)
			}
			if !VerifyChecksums(tun) {
				t.Errorf("%v in %v: a valid tunnel packet does not verify", s, outer)
			}
			tun[len(tun)-1] ^= 1
			if VerifyChecksums(tun) {
				t.Errorf("%v in %v: a corrupt inner packet verifies", s, outer)
			}
			if err := p.Decode(f, &m); err != nil { // EncapIPIP moved m's offsets
				t.Fatal(err)
			}
		}
		f[len(f)-1] ^= 1
		if VerifyChecksums(f) {
			t.Errorf("%v: a corrupt payload verifies", s)
		}
	}
}

func pick(f Family, v4, v6 string) netip.Addr {
	if f == FamilyIPv4 {
		return netip.MustParseAddr(v4)
	}
	return netip.MustParseAddr(v6)
}
