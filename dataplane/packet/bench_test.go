package packet

import (
	"net/netip"
	"testing"
)

var benchKinds = []struct {
	name string
	spec frameSpec
}{
	{"ipv4-tcp", frameSpec{proto: ProtoTCP, flags: FlagACK}},
	{"ipv4-udp-vlan", frameSpec{proto: ProtoUDP, tags: 1}},
	{"ipv6-tcp", frameSpec{v6: true, proto: ProtoTCP, flags: FlagACK}},
	{"ipv6-udp-qinq", frameSpec{v6: true, proto: ProtoUDP, tags: 2}},
}

func BenchmarkDecode(b *testing.B) {
	for _, k := range benchKinds {
		b.Run(k.name, func(b *testing.B) {
			frame := buildFrame(b, k.spec)
			p := NewParser()
			var m Meta
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				if err := p.Decode(frame, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDNAT(b *testing.B) {
	for _, k := range benchKinds {
		b.Run(k.name, func(b *testing.B) {
			frame := buildFrame(b, k.spec)
			var m Meta
			if err := NewParser().Decode(frame, &m); err != nil {
				b.Fatal(err)
			}
			// Alternate between two real servers so every call rewrites.
			rs := [2]netip.Addr{netip.MustParseAddr("198.18.2.1"), netip.MustParseAddr("198.18.2.2")}
			if k.spec.v6 {
				rs = [2]netip.Addr{netip.MustParseAddr("fd00::2:1"), netip.MustParseAddr("fd00::2:2")}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := DNAT(frame, &m, rs[i&1], uint16(8080+i&1)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkChecksum1500(b *testing.B) {
	buf := payloadOf(1500)
	b.SetBytes(int64(len(buf)))
	var sink uint32
	for b.Loop() {
		sink += Checksum(buf, 0)
	}
	_ = sink
}
