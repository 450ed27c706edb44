package packet

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// FuzzDecode decodes arbitrary bytes. Decode must not panic and must
// return a sentinel or a Meta that fits the frame; for TCP and UDP, DNAT
// must keep valid checksums valid.
func FuzzDecode(f *testing.F) {
	for _, s := range frameKinds() {
		s.payload = payloadOf(11)
		f.Add(buildFrame(f, s))
	}
	f.Add(buildFrame(f, frameSpec{proto: ProtoUDP, zeroUDP: true}))
	f.Add(buildFrame(f, frameSpec{proto: ProtoICMP}))
	f.Add(buildFrame(f, frameSpec{v6: true, proto: ProtoICMPv6, tags: 1}))
	f.Add(buildV6Fragment(f, true))
	f.Add(buildV4Fragment(f))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		p := NewParser()
		var m Meta
		err := p.Decode(data, &m)
		checkDecodeResult(t, data, &m, err)
		if err != nil || (m.Proto != ProtoTCP && m.Proto != ProtoUDP) {
			return
		}

		// Whatever checksums the input carried: valid before means valid
		// after, invalid before means invalid after.
		frame := append([]byte(nil), data...)
		before := checksumsValid(frame, &m)
		dst, port := fuzzTarget(&m, data)
		mm := m
		if err := DNAT(frame, &mm, dst, port); err != nil {
			t.Fatalf("DNAT on decoded frame: %v", err)
		}
		if after := checksumsValid(frame, &mm); after != before {
			t.Fatalf("checksums valid before DNAT %v, after %v", before, after)
		}

		// With checksums made valid first, DNAT must leave them valid and
		// equal to a from-scratch computation.
		frame = append(frame[:0], data...)
		mm = m
		fixChecksums(frame, &mm)
		if !checksumsValid(frame, &mm) {
			t.Fatalf("fixChecksums left invalid checksums")
		}
		if err := DNAT(frame, &mm, dst, port); err != nil {
			t.Fatalf("DNAT: %v", err)
		}
		if !checksumsValid(frame, &mm) {
			t.Fatalf("checksums invalid after DNAT to %v:%d", dst, port)
		}
		fixed := append([]byte(nil), frame...)
		fixChecksums(fixed, &mm)
		if !bytes.Equal(fixed, frame) {
			t.Fatalf("incremental checksums differ from full recomputation\n got %x\nwant %x", frame, fixed)
		}
		var again Meta
		if err := p.Decode(frame, &again); err != nil || again != mm {
			t.Fatalf("re-Decode after DNAT: %v, %+v, want %+v", err, again, mm)
		}
	})
}

// fuzzTarget derives a DNAT target of the packet's family from the input.
func fuzzTarget(m *Meta, data []byte) (netip.Addr, uint16) {
	var a [16]byte
	copy(a[:], data[len(data)-min(len(data), 16):])
	port := binary.BigEndian.Uint16(a[0:2]) ^ 0x5a5a
	if m.IPv6 {
		return netip.AddrFrom16(a), port
	}
	return netip.AddrFrom4([4]byte(a[4:8])), port
}

// checksumsValid verifies the IPv4 header checksum and the L4 checksum of
// a decoded TCP/UDP frame from scratch with the naive implementation.
func checksumsValid(frame []byte, m *Meta) bool {
	var pseudo uint64
	var l4 []byte
	if m.IPv6 {
		ip := IPv6(frame[m.L3Off:m.Length])
		l4 = ip.Payload()
		pseudo = naiveSum(frame[m.L3Off+8:m.L3Off+40], 0)
	} else {
		ip := IPv4(frame[m.L3Off:m.Length])
		if naiveFold(naiveSum(ip[:ip.HeaderLength()], 0)) != 0xffff {
			return false
		}
		l4 = ip.Payload()
		pseudo = naiveSum(frame[m.L3Off+12:m.L3Off+20], 0)
	}
	if m.Proto == ProtoUDP && UDP(l4).Checksum() == 0 {
		return true
	}
	pseudo += uint64(m.Proto) + uint64(len(l4))
	return naiveFold(naiveSum(l4, pseudo)) == 0xffff
}

// FuzzDecodeFastPath: Decode's fast path for TCP and UDP and gopacket's
// layers (DecodeLayers) agree on every input: the same Meta, or the same
// error.
func FuzzDecodeFastPath(f *testing.F) {
	for _, s := range frameKinds() {
		for _, n := range []int{0, 1, 11, 300} {
			s.payload = payloadOf(n)
			fr := buildFrame(f, s)
			f.Add(fr)
			f.Add(fr[:len(fr)-1])
			s.tcpOpts = nil
		}
	}
	f.Add(buildFrame(f, frameSpec{proto: ProtoUDP, zeroUDP: true}))
	f.Add(buildFrame(f, frameSpec{proto: ProtoICMP}))
	f.Add(buildFrame(f, frameSpec{v6: true, proto: ProtoICMPv6, tags: 1}))
	f.Add(buildV6Fragment(f, true))
	f.Add(buildV4Fragment(f))
	f.Add([]byte{})
	fast, slow := NewParser(), NewParser()
	f.Fuzz(func(t *testing.T, data []byte) {
		var a, b Meta
		errA, errB := fast.Decode(data, &a), slow.DecodeLayers(data, &b)
		if errA != errB {
			t.Fatalf("Decode: %v, DecodeLayers: %v", errA, errB)
		}
		if errA == nil && a != b {
			t.Fatalf("Decode %+v\nDecodeLayers %+v", a, b)
		}
	})
}
