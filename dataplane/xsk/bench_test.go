package xsk

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"
)

// udpTemplate builds a 60-byte Ethernet/IPv4/UDP frame with a valid IPv4
// checksum and no UDP checksum.
func udpTemplate(dstMAC, srcMAC net.HardwareAddr, src, dst netip.AddrPort) []byte {
	b := make([]byte, 60)
	copy(b[0:6], dstMAC)
	copy(b[6:12], srcMAC)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 46)
	ip[8], ip[9] = 64, 17
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := b[34:]
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], 26)
	return b
}

// BenchmarkReflect measures round trips through a reflecting socket: a
// generator socket on the peer end of the veth sends 60-byte UDP frames with
// a bounded window in flight, the director socket swaps and returns them,
// and the generator receives them. One op is one frame there and back, so
// both directions pay copy-mode TX. Both UMEMs are driven from this
// goroutine.
func BenchmarkReflect(b *testing.B) {
	needRoot(b)
	gprog, gxsks := redirectProg(b)
	v, u, s, _ := setupSingleWith(b, UMEMConfig{}, SocketConfig{}, gprog)
	gu, gs := bindIn(b, v.peerNS, UMEMConfig{}, v.peerIndex, 0, SocketConfig{})
	putXSK(b, gxsks, gs)
	tmpl := udpTemplate(v.dirMAC, v.peerMAC, netip.AddrPortFrom(v.peerIP, 7000), netip.AddrPortFrom(v.dirIP, 9000))

	const window = 512
	descs := make([]Desc, 64)
	gdescs := make([]Desc, 64)
	inflight, sent, got, lost := 0, 0, 0, 0
	last := time.Now()
	b.ResetTimer()
	start := time.Now()
	for got < b.N {
		// Generator: top the window up.
		k := 0
		for ; k < len(gdescs) && inflight+k < window && sent+k < b.N+lost; k++ {
			d, ok := gu.Alloc()
			if !ok {
				break
			}
			d.Len = uint32(copy(gu.Frame(Desc{Addr: d.Addr, Len: uint32(len(tmpl))}), tmpl))
			gdescs[k] = d
		}
		q := gs.Transmit(gdescs[:k])
		for _, d := range gdescs[q:k] {
			gu.Free(d.Addr)
		}
		sent += q
		inflight += q
		gs.Complete()
		gs.Kick()

		// Director: reflect.
		n := s.Receive(descs)
		for _, d := range descs[:n] {
			if l4, ok := parseUDPNoAlloc(u.Frame(d)); ok {
				swapUDP(u.Frame(d), l4)
			}
		}
		q = s.Transmit(descs[:n])
		for _, d := range descs[q:n] {
			u.Free(d.Addr)
		}
		s.Complete()
		s.Kick()

		// Generator: take replies.
		m := gs.Receive(gdescs)
		for _, d := range gdescs[:m] {
			gu.Free(d.Addr)
		}
		got += m
		inflight -= m
		if m > 0 || n > 0 {
			last = time.Now()
		} else if time.Since(last) > 200*time.Millisecond {
			// Frames lost on the way: stop waiting for them.
			lost += inflight
			inflight = 0
			last = time.Now()
			if lost > b.N {
				b.Fatalf("lost %d of %d frames", lost, sent)
			}
		}
	}
	el := time.Since(start)
	b.ReportMetric(float64(got)/el.Seconds(), "pps")
	b.ReportMetric(float64(lost), "lost")
}
