package packet

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

func TestParseSYNOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []byte
		want SYNOptions
	}{
		{"none", nil, SYNOptions{WScale: -1}},
		{"linux", []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}, SYNOptions{MSS: 1460, WScale: 7, SACKPerm: true}},
		{"scale above 14", []byte{1, 3, 3, 15}, SYNOptions{WScale: 14}},
		{"end of options stops", []byte{2, 4, 5, 0xb4, 0, 3, 3, 7}, SYNOptions{MSS: 1460, WScale: -1}},
		{"bad length stops", []byte{2, 4, 5, 0xb4, 3, 1, 7}, SYNOptions{MSS: 1460, WScale: -1}},
		{"overrun stops", []byte{4, 2, 3, 9, 7}, SYNOptions{WScale: -1, SACKPerm: true}},
		{"wrong-size MSS ignored", []byte{2, 3, 5, 3, 3, 2}, SYNOptions{WScale: 2}},
	} {
		if got := ParseSYNOptions(tc.opts); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// WriteTCP builds segments whose checksums verify from scratch, with the
// options it was given, in both families.
func TestWriteTCP(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		f := buildFrame(t, frameSpec{v6: v6, proto: ProtoTCP, flags: FlagACK, payload: []byte("data to drop")})
		f = append(f, make([]byte, 64)...)[:len(f)]
		s := frameSpec{v6: v6}.withDefaults()
		seg := Segment{Src: s.dst, Dst: s.src, SrcPort: 80, DstPort: 40000, Seq: 7, Ack: 9, Flags: FlagSYN | FlagACK, Window: 0,
			Opts: &SYNOptions{MSS: 1440, WScale: 7, SACKPerm: true}}
		n, err := WriteTCP(f, EthernetHeaderLen, &seg)
		if err != nil {
			t.Fatal(err)
		}
		if r := verifyChecksums(t, f[:n]); !r.ipv4OK || !r.l4OK {
			t.Fatalf("v6 %v: checksums %+v", v6, r)
		}
		var m Meta
		if err := NewParser().Decode(f[:n], &m); err != nil || m.Src != s.dst || m.DstPort != 40000 || m.TCPFlags != FlagSYN|FlagACK {
			t.Fatalf("v6 %v: decoded %+v, %v", v6, m, err)
		}
		if o := ParseSYNOptions(TCP(f[m.L4Off:n]).Options()); o != *seg.Opts {
			t.Errorf("v6 %v: options %+v", v6, o)
		}
	}
	if _, err := WriteTCP(make([]byte, 20), EthernetHeaderLen, &Segment{Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2")}); err == nil {
		t.Error("WriteTCP wrote into a buffer without room")
	}
}

// SubAck and AddSeq keep the checksum right, SACK edges at even and odd
// offsets included.
func TestSeqTranslation(t *testing.T) {
	sack := func(align int) []layers.TCPOption {
		data := make([]byte, 16)
		for i := range 4 {
			binary.BigEndian.PutUint32(data[4*i:], 0xfffffff0+uint32(i)*100)
		}
		o := []layers.TCPOption{{OptionType: layers.TCPOptionKindSACK, OptionLength: 18, OptionData: data}}
		for range align {
			o = append([]layers.TCPOption{{OptionType: layers.TCPOptionKindNop}}, o...)
		}
		return o
	}
	for _, tc := range []struct {
		name  string
		v6    bool
		align int // NOPs before the SACK option: 2 puts its edges at even offsets, 1 at odd ones
	}{{"v4 even", false, 2}, {"v4 odd", false, 1}, {"v6 even", true, 2}, {"v6 odd", true, 1}} {
		f := buildFrame(t, frameSpec{v6: tc.v6, proto: ProtoTCP, flags: FlagACK, tcpOpts: sack(tc.align), payload: []byte("x")})
		var m Meta
		if err := NewParser().Decode(f, &m); err != nil {
			t.Fatal(err)
		}
		tcp := TCP(f[m.L4Off:])
		ack := tcp.AckNumber()
		const delta = 0x12345678
		if err := SubAck(f, &m, delta); err != nil {
			t.Fatal(err)
		}
		if r := verifyChecksums(t, f); !r.l4OK {
			t.Fatalf("%s: SubAck broke the checksum: %+v", tc.name, r)
		}
		if tcp.AckNumber() != ack-delta {
			t.Errorf("%s: ack %d, want %d", tc.name, tcp.AckNumber(), ack-delta)
		}
		edges := tcp.Options()[tc.align+2:]
		for i := range 4 {
			if got, want := binary.BigEndian.Uint32(edges[4*i:]), 0xfffffff0+uint32(i)*100-delta; got != want {
				t.Errorf("%s: edge %d = %#x, want %#x", tc.name, i, got, want)
			}
		}
		seq := tcp.SequenceNumber()
		for _, shift := range []int{2, -3, 0} {
			win := tcp.WindowSize()
			if err := AddSeq(f, &m, delta, shift); err != nil {
				t.Fatal(err)
			}
			if r := verifyChecksums(t, f); !r.l4OK {
				t.Fatalf("%s: AddSeq(shift %d) broke the checksum: %+v", tc.name, shift, r)
			}
			want := uint32(win)
			if shift > 0 {
				want = min(want<<shift, 0xffff)
			} else {
				want >>= -shift
			}
			if seq += delta; tcp.SequenceNumber() != seq || uint32(tcp.WindowSize()) != want {
				t.Errorf("%s: shift %d: seq %d window %d, want %d %d", tc.name, shift, tcp.SequenceNumber(), tcp.WindowSize(), seq, want)
			}
		}
	}
}

// SubQuotedSeq moves the quoted sequence number and keeps the ICMP
// checksum right; a quote that stops before it is refused.
func TestSubQuotedSeq(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		s := frameSpec{v6: v6}.withDefaults()
		quoted := ipPacket(t, buildFrame(t, frameSpec{v6: v6, proto: ProtoTCP, flags: FlagACK, payload: []byte("data")}))
		typ := uint8(3) // destination unreachable, fragmentation needed
		code := uint8(4)
		if v6 {
			typ, code = 2, 0 // packet too big
		}
		ipHdr := IPv4MinHeaderLen
		if v6 {
			ipHdr = IPv6HeaderLen
		}
		for _, cut := range []int{len(quoted), ipHdr + 6} { // all of it; the ports and no sequence number
			f := buildICMPError(t, icmpSpec{v6: v6, src: s.dst, dst: s.src, typ: typ, code: code, rest: 1400, quote: quoted[:cut]})
			var m Meta
			if err := NewParser().Decode(f, &m); err != nil {
				t.Fatal(err)
			}
			emb, err := ParseICMPError(f, &m)
			if err != nil {
				t.Fatal(err)
			}
			seqAt := emb.L4Off + 4
			err = SubQuotedSeq(f, &m, &emb, 1000)
			if cut < len(quoted) {
				if err == nil {
					t.Errorf("v6 %v: a quote of %d bytes, without the whole sequence number, was translated", v6, cut)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := binary.BigEndian.Uint32(f[seqAt:]), binary.BigEndian.Uint32(quoted[seqAt-emb.L3Off:])-1000; got != want {
				t.Errorf("v6 %v: quoted seq %d, want %d", v6, got, want)
			}
			if !icmpChecksumOK(f, &m) {
				t.Errorf("v6 %v: ICMP checksum broken", v6)
			}
		}
	}
}
