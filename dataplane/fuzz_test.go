package dataplane

import (
	"bytes"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xvs-lb/xvs/dataplane/packet"
)

// checksumsValid reports whether every IPv4/TCP/UDP checksum in f verifies,
// by re-serialising the decoded layers with fresh checksums.
func checksumsValid(f []byte) bool {
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	var ls []gopacket.SerializableLayer
	var ip gopacket.NetworkLayer
	for _, l := range p.Layers() {
		switch l := l.(type) {
		case *layers.Ethernet, *layers.Dot1Q:
			ls = append(ls, l.(gopacket.SerializableLayer))
		case *layers.IPv4:
			ip = l
			ls = append(ls, l)
		case *layers.IPv6:
			ip = l
			ls = append(ls, l)
		case *layers.TCP:
			if ip == nil || l.SetNetworkLayerForChecksum(ip) != nil {
				return false
			}
			ls = append(ls, l, gopacket.Payload(l.LayerPayload()))
		case *layers.UDP:
			if ip == nil || l.SetNetworkLayerForChecksum(ip) != nil {
				return false
			}
			ls = append(ls, l, gopacket.Payload(l.LayerPayload()))
		}
	}
	if len(ls) < 3 || p.ErrorLayer() != nil {
		return false
	}
	buf := gopacket.NewSerializeBuffer()
	if gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ls...) != nil {
		return false
	}
	// gopacket pads short Ethernet frames to 60 bytes with zeros: compare
	// what both have, and require the rest of the longer to be padding.
	a := buf.Bytes()
	n := min(len(a), len(f))
	return bytes.Equal(a[:n], f[:n]) && allZero(a[n:])
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// FuzzForward sends arbitrary frames through the whole per-frame path of
// every method: it must never panic, and a frame it forwards must still
// decode, with valid checksums whenever the frame it got had them.
func FuzzForward(f *testing.F) {
	f.Add(frame(f, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, packet.FlagSYN, []byte("GET /")), uint8(0), uint8(0))
	f.Add(frame(f, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, packet.FlagACK, []byte("x")), uint8(1), uint8(0))
	f.Add(frame(f, rsMAC, portMAC1, rip1, cip, 8080, 40000, protoTCP, packet.FlagACK, []byte("y")), uint8(1), uint8(1))
	f.Add(frame(f, clientMAC, portMAC0, cip, vip, 40000, 80, protoUDP, 0, []byte("q")), uint8(3), uint8(0))
	f.Add(frame(f, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, packet.FlagSYN, nil), uint8(2), uint8(0))
	f.Add([]byte{0, 1, 2}, uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, method uint8, in uint8) {
		m := Method(method % 4)
		rport := uint16(80)
		if m == MethodNAT || m == MethodFullNAT {
			rport = 8080
		}
		r := rigFor(t, m, rport, true)
		valid := checksumsValid(data)
		// A SYN first, so that non-SYN inputs can hit a connection.
		syn := frame(t, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, packet.FlagSYN, nil)
		r.fwd.forward(r.table, withHeadroom(syn, 128), 128, len(syn), 0, 1)
		buf := withHeadroom(data, 128)
		out, off, n := r.fwd.forward(r.table, buf, 128, len(data), int(in%2), 2)
		if out < 0 {
			return
		}
		if off < 0 || off+n > len(buf) || out >= 2 {
			t.Fatalf("forward returned out %d, bounds %d+%d of %d", out, off, n, len(buf))
		}
		got := append([]byte(nil), buf[off:off+n]...)
		if m == MethodTUN {
			// What the real server's decapsulator will see.
			inner, err := packet.DecapIPIP(got)
			if err != nil {
				t.Fatalf("tunnelled frame does not decapsulate: %v\n%x", err, got)
			}
			got = inner
		}
		var meta packet.Meta
		if err := packet.NewParser().Decode(got, &meta); err != nil {
			t.Fatalf("forwarded frame does not decode: %v\n%x", err, got)
		}
		if valid && !checksumsValid(got) {
			t.Fatalf("checksums broken by the rewrite:\n in  %x\n out %x", data, got)
		}
	})
}
