package packet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

var (
	toaClient4 = netip.MustParseAddr("203.0.113.77")
	toaClient6 = netip.MustParseAddr("2001:db8::77")
)

func nops(n int) []layers.TCPOption {
	o := make([]layers.TCPOption, n)
	for i := range o {
		o[i] = layers.TCPOption{OptionType: layers.TCPOptionKindNop}
	}
	return o
}

// linuxSYNOptions is what Linux puts in a SYN: MSS, SACK permitted,
// timestamps, NOP, window scale (20 bytes).
func linuxSYNOptions() []layers.TCPOption {
	return []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
		{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{1, 2, 3, 4, 0, 0, 0, 0}},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
	}
}

func toaOption(client netip.Addr, port uint16) layers.TCPOption {
	data := binary.BigEndian.AppendUint16(nil, port)
	data = append(data, client.AsSlice()...)
	return layers.TCPOption{OptionType: 254, OptionLength: uint8(2 + len(data)), OptionData: data}
}

func TestInsertTOA(t *testing.T) {
	optSets := []struct {
		name string
		opts []layers.TCPOption
		len  int
	}{
		{"none", nil, 0},
		{"MSS", linuxSYNOptions()[:1], 4},
		{"linux SYN", linuxSYNOptions(), 20},
		{"32 bytes", append(linuxSYNOptions(), nops(12)...), 32},
		{"36 bytes", append(linuxSYNOptions(), nops(16)...), 36},
		{"40 bytes", append(linuxSYNOptions(), nops(20)...), 40},
	}
	p := NewParser()
	for _, v6 := range []bool{false, true} {
		for tags := range 3 {
			for _, client := range []netip.Addr{toaClient4, toaClient6} {
				for _, os := range optSets {
					for _, seg := range []struct {
						flags   uint8
						payload int
					}{{FlagSYN, 0}, {FlagACK, 0}, {FlagACK | FlagPSH, 100}} {
						s := frameSpec{v6: v6, tags: tags, proto: ProtoTCP, sport: 61000, dport: 8080,
							flags: seg.flags, tcpOpts: os.opts, payload: payloadOf(seg.payload)}.withDefaults()
						n := TOALen(client)
						fits := os.len+n <= 40
						t.Run(fmt.Sprintf("%v/client%v/%s/flags%#x", s, client, os.name, seg.flags), func(t *testing.T) {
							orig := buildFrame(t, s)
							var m Meta
							if err := p.Decode(orig, &m); err != nil {
								t.Fatal(err)
							}
							const headroom = 32
							buf := inUMEM(orig, headroom, 8)
							saved := append([]byte(nil), buf...)
							before := m
							frame, err := InsertTOA(buf, headroom, &m, client, 40123, 1500)
							if !fits {
								if err != ErrOptionSpace || frame != nil {
									t.Fatalf("InsertTOA = %v, want ErrOptionSpace", err)
								}
								if !bytes.Equal(buf, saved) || m != before {
									t.Fatalf("failed InsertTOA changed something")
								}
								return
							}
							if err != nil {
								t.Fatalf("InsertTOA: %v", err)
							}
							if &frame[0] != &buf[headroom-n] || len(frame) != before.Length+n {
								t.Fatalf("frame is buf[%d:+%d], want buf[%d:+%d]", cap(buf)-cap(frame), len(frame), headroom-n, before.Length+n)
							}
							ws := s
							ws.tcpOpts = append([]layers.TCPOption{toaOption(client, 40123)}, s.tcpOpts...)
							want := buildFrame(t, ws)
							if !bytes.Equal(frame, want[:len(frame)]) {
								t.Fatalf("frame differs from gopacket's\n got %x\nwant %x", frame, want)
							}
							if !bytes.Equal(buf[headroom+before.Length:], saved[headroom+before.Length:]) {
								t.Fatalf("InsertTOA wrote past the packet")
							}
							if r := verifyChecksums(t, frame); !r.ipv4OK || !r.l4OK {
								t.Fatalf("checksums do not verify: %+v", r)
							}
							var again Meta
							if err := p.Decode(frame, &again); err != nil || again != m {
								t.Fatalf("re-Decode %v %+v, Meta after InsertTOA %+v", err, again, m)
							}
							wantMeta := before
							wantMeta.Length += n
							if m != wantMeta {
								t.Fatalf("Meta %+v, want %+v", m, wantMeta)
							}
							got, ok := ParseTOA(frame[m.L4Off:m.Length])
							if !ok || got != netip.AddrPortFrom(client, 40123) {
								t.Fatalf("ParseTOA = %v, %v", got, ok)
							}
						})
					}
				}
			}
		}
	}
}

func TestInsertTOAWithIPv4Options(t *testing.T) {
	orig := ipv4WithOptions(t, []byte{1, 1, 7, 3, 4, 0, 0, 0})
	var m Meta
	if err := NewParser().Decode(orig, &m); err != nil {
		t.Fatal(err)
	}
	buf := inUMEM(orig, 8, 0)
	frame, err := InsertTOA(buf, 8, &m, toaClient4, 9, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r := verifyChecksums(t, frame); !r.ipv4OK || !r.l4OK {
		t.Fatalf("checksums do not verify: %+v", r)
	}
	if !bytes.Equal(frame[14:14+28], func() []byte {
		h := append([]byte(nil), orig[14:14+28]...)
		IPv4(h).SetTotalLength(IPv4(h).TotalLength() + 8)
		IPv4(h).SetChecksum(0)
		IPv4(h).SetChecksum(^naiveFold(naiveSum(h, 0)))
		return h
	}()) {
		t.Fatalf("IPv4 header with options not carried over")
	}
	if got, ok := ParseTOA(frame[m.L4Off:]); !ok || got != netip.AddrPortFrom(toaClient4, 9) {
		t.Fatalf("ParseTOA = %v, %v", got, ok)
	}
}

func TestInsertTOAErrors(t *testing.T) {
	p := NewParser()
	syn := buildFrame(t, frameSpec{proto: ProtoTCP, flags: FlagSYN, tcpOpts: linuxSYNOptions(), tags: 1})
	syn6 := buildFrame(t, frameSpec{v6: true, proto: ProtoTCP, flags: FlagSYN, tcpOpts: linuxSYNOptions()})
	data := buildFrame(t, frameSpec{proto: ProtoTCP, flags: FlagACK, payload: payloadOf(1400)})
	ipLen := 20 + 20 + 1400
	tests := []struct {
		name     string
		frame    []byte
		headroom int
		client   netip.Addr
		mtu      int
		meta     func(*Meta)
		want     error
	}{
		{"headroom one short", syn, 7, toaClient4, 1500, nil, ErrNoHeadroom},
		{"no headroom", syn, 0, toaClient4, 1500, nil, ErrNoHeadroom},
		{"IPv6 client, headroom for IPv4", syn6, 19, toaClient6, 1500, nil, ErrNoHeadroom},
		{"MTU one short", data, 64, toaClient4, ipLen + 7, nil, ErrTooBig},
		{"IPv6 client past MTU", data, 64, toaClient6, ipLen + 19, nil, ErrTooBig},
		{"invalid client", syn, 64, netip.Addr{}, 1500, nil, ErrAddressFamily},
		{"UDP", buildFrame(t, frameSpec{proto: ProtoUDP}), 64, toaClient4, 1500, nil, ErrUnsupported},
		{"ICMP", buildFrame(t, frameSpec{proto: ProtoICMP}), 64, toaClient4, 1500, nil, ErrUnsupported},
		{"Meta past the frame", syn, 64, toaClient4, 1500, func(m *Meta) { m.Length += 100 }, ErrMalformed},
		{"data offset past the packet", syn, 64, toaClient4, 1500, func(m *Meta) { m.Length = m.L4Off + 24 }, ErrMalformed},
		{"L4 offset inside IP", syn, 64, toaClient4, 1500, func(m *Meta) { m.L4Off = m.L3Off + 2 }, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Meta
			if err := p.Decode(tt.frame, &m); err != nil {
				t.Fatal(err)
			}
			if tt.meta != nil {
				tt.meta(&m)
			}
			buf := inUMEM(tt.frame, tt.headroom, 0)
			saved := append([]byte(nil), buf...)
			before := m
			if f, err := InsertTOA(buf, tt.headroom, &m, tt.client, 1, tt.mtu); err != tt.want || f != nil {
				t.Fatalf("InsertTOA = %v, want %v", err, tt.want)
			}
			if !bytes.Equal(buf, saved) || m != before {
				t.Fatalf("failed InsertTOA changed something")
			}
		})
	}
	// Exactly at the MTU, and with the check off.
	for _, mtu := range []int{ipLen + 8, 0, -1} {
		var m Meta
		if err := p.Decode(data, &m); err != nil {
			t.Fatal(err)
		}
		if _, err := InsertTOA(inUMEM(data, 8, 0), 8, &m, toaClient4, 1, mtu); err != nil {
			t.Errorf("mtu %d: %v", mtu, err)
		}
	}
}

// TestInsertTOAPreservesBadChecksum: a segment that arrived corrupt must
// still fail at the real server.
func TestInsertTOAPreservesBadChecksum(t *testing.T) {
	p := NewParser()
	for _, v6 := range []bool{false, true} {
		orig := buildFrame(t, frameSpec{v6: v6, proto: ProtoTCP, flags: FlagSYN, tcpOpts: linuxSYNOptions()})
		var m Meta
		if err := p.Decode(orig, &m); err != nil {
			t.Fatal(err)
		}
		orig[m.L4Off+tcpChecksumOff] ^= 0x10
		frame, err := InsertTOA(inUMEM(orig, 32, 0), 32, &m, toaClient4, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if r := verifyChecksums(t, frame); r.l4OK {
			t.Fatalf("v6=%v: a bad TCP checksum became good", v6)
		}
	}
}

func TestParseTOA(t *testing.T) {
	hdr := func(opts ...byte) []byte {
		h := make([]byte, 20, 20+len(opts))
		h = append(h, opts...)
		h[12] = byte(len(h)/4) << 4
		return h
	}
	v4 := []byte{254, 8, 0x1f, 0x90, 203, 0, 113, 77}
	v6 := append([]byte{254, 20, 0x1f, 0x90}, toaClient6.AsSlice()...)
	want4 := netip.AddrPortFrom(toaClient4, 8080)
	want6 := netip.AddrPortFrom(toaClient6, 8080)
	tests := []struct {
		name string
		h    []byte
		want netip.AddrPort
		ok   bool
	}{
		{"IPv4", hdr(v4...), want4, true},
		{"IPv6", hdr(v6...), want6, true},
		{"after NOPs and MSS", hdr(append([]byte{1, 1, 2, 4, 5, 0xb4, 1, 1}, v4...)...), want4, true},
		{"after an RFC 6994 experiment on 254", hdr(append([]byte{254, 4, 0xab, 0xcd}, v4...)...), want4, true},
		{"first of two", hdr(append(append([]byte(nil), v6...), v4...)...), want6, true},
		{"with payload after the header", append(hdr(v4...), 1, 2, 3), want4, true},
		{"none", hdr(2, 4, 5, 0xb4), netip.AddrPort{}, false},
		{"no options", hdr(), netip.AddrPort{}, false},
		{"after end of list", hdr(append([]byte{0, 0, 0, 0}, v4...)...), netip.AddrPort{}, false},
		{"zero length option before", hdr(append([]byte{3, 0, 0, 0}, v4...)...), netip.AddrPort{}, false},
		{"option past the header", hdr(2, 8, 0, 0), netip.AddrPort{}, false},
		{"TOA cut by data offset", func() []byte { h := hdr(v6...); h[12] = 6 << 4; return h }(), netip.AddrPort{}, false},
		{"data offset past slice", func() []byte { h := hdr(v4...); h[12] = 15 << 4; return h }(), netip.AddrPort{}, false},
		{"data offset below 5", func() []byte { h := hdr(v4...); h[12] = 4 << 4; return h }(), netip.AddrPort{}, false},
		{"short", make([]byte, 19), netip.AddrPort{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseTOA(tt.h)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: ParseTOA = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestTOAAllocatesNothing(t *testing.T) {
	p := NewParser()
	for _, client := range []netip.Addr{toaClient4, toaClient6} {
		orig := buildFrame(t, frameSpec{proto: ProtoTCP, flags: FlagSYN, tcpOpts: linuxSYNOptions(), tags: 1})
		const headroom = 64
		buf := inUMEM(orig, headroom, 0)
		var m Meta
		var err error
		var ok bool
		allocs := testing.AllocsPerRun(200, func() {
			copy(buf[headroom:], orig)
			if err = p.Decode(buf[headroom:], &m); err != nil {
				return
			}
			var f []byte
			if f, err = InsertTOA(buf, headroom, &m, client, 1234, 1500); err != nil {
				return
			}
			_, ok = ParseTOA(f[m.L4Off:m.Length])
		})
		if err != nil || !ok {
			t.Fatal(err, ok)
		}
		if allocs != 0 {
			t.Errorf("client %v: %v allocations per InsertTOA + ParseTOA, want 0", client, allocs)
		}
	}
}

func BenchmarkInsertTOA(b *testing.B) {
	for _, k := range []struct {
		name   string
		spec   frameSpec
		client netip.Addr
	}{
		{"ipv4-syn", frameSpec{proto: ProtoTCP, flags: FlagSYN, tcpOpts: linuxSYNOptions()}, toaClient4},
		{"ipv6-syn", frameSpec{v6: true, proto: ProtoTCP, flags: FlagSYN, tcpOpts: linuxSYNOptions()}, toaClient6},
	} {
		b.Run(k.name, func(b *testing.B) {
			orig := buildFrame(b, k.spec)
			const headroom = 256
			buf := inUMEM(orig, headroom, 0)
			var m0 Meta
			if err := NewParser().Decode(buf[headroom:], &m0); err != nil {
				b.Fatal(err)
			}
			fixed := m0.L4Off + TCPMinHeaderLen
			b.ReportAllocs()
			for b.Loop() {
				m := m0
				if _, err := InsertTOA(buf, headroom, &m, k.client, 1234, 1500); err != nil {
					b.Fatal(err)
				}
				// Put back the headers the insertion moved and rewrote.
				copy(buf[headroom:headroom+fixed], orig[:fixed])
			}
		})
	}
}

// FuzzTOA inserts a TOA option into whatever decodes as TCP: never a
// panic; on failure nothing changes; on success the option parses back,
// the Meta matches a fresh decode, and the checksums are exactly as valid
// as before.
func FuzzTOA(f *testing.F) {
	f.Add(buildFrame(f, frameSpec{proto: ProtoTCP, flags: FlagSYN, tcpOpts: linuxSYNOptions()}), false, uint16(1500))
	f.Add(buildFrame(f, frameSpec{v6: true, proto: ProtoTCP, flags: FlagACK, tags: 2, payload: payloadOf(20)}), true, uint16(0))
	f.Add(buildFrame(f, frameSpec{proto: ProtoTCP, tcpOpts: append(linuxSYNOptions(), nops(20)...)}), false, uint16(1500))
	f.Fuzz(func(t *testing.T, data []byte, v6Client bool, mtu uint16) {
		if len(data) >= TCPMinHeaderLen {
			_, _ = ParseTOA(data) // any bytes as a TCP header
		}
		p := NewParser()
		var m Meta
		if err := p.Decode(data, &m); err != nil || m.Proto != ProtoTCP {
			return
		}
		client := toaClient4
		if v6Client {
			client = toaClient6
		}
		const headroom = 24
		buf := inUMEM(data, headroom, 0)
		saved := append([]byte(nil), buf...)
		before := m
		validBefore := checksumsValid(data, &m)
		frame, err := InsertTOA(buf, headroom, &m, client, 4321, int(mtu))
		if err != nil {
			switch err {
			case ErrOptionSpace, ErrTooBig:
			default:
				t.Fatalf("InsertTOA: %v", err)
			}
			if !bytes.Equal(buf, saved) || m != before {
				t.Fatalf("failed InsertTOA changed something")
			}
			return
		}
		if got, ok := ParseTOA(frame[m.L4Off:m.Length]); !ok || got != netip.AddrPortFrom(client, 4321) {
			t.Fatalf("ParseTOA after InsertTOA = %v, %v", got, ok)
		}
		var again Meta
		if err := p.Decode(frame, &again); err != nil || again != m {
			t.Fatalf("re-Decode: %v %+v, want %+v", err, again, m)
		}
		if after := checksumsValid(frame, &m); after != validBefore {
			t.Fatalf("checksums valid before %v, after %v", validBefore, after)
		}
		if !bytes.Equal(frame[m.L4Off+TCPMinHeaderLen+TOALen(client):], data[before.L4Off+TCPMinHeaderLen:before.Length]) {
			t.Fatalf("options or payload changed")
		}
	})
}
