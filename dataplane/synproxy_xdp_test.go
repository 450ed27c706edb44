package dataplane

import (
	"bytes"
	"net/netip"
	"os"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/dataplane/packet"
	"github.com/xvs-lb/xvs/dataplane/syncookie"
	"github.com/xvs-lb/xvs/dataplane/xdpprog"
)

// XDP_PASS (linux/bpf.h; fastpath_test.go has the others).
const xdpPass = 2

// synRig is a SYN-proxied NAT service in a worker and in a steering
// program (not attached) that shares the worker's cookie keys.
type synRig struct {
	*rig
	jar  *syncookie.Jar
	prog *xdpprog.Program
}

// now is the clock reading the tests forward at.
const synRigNow = 1

func newSynRig(t testing.TB, a famAddrs, keys bool) *synRig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for BPF")
	}
	r := famRigWith(t, a, MethodNAT, 8080, func(s *ServiceSpec) { s.SynProxy = true })
	jar, err := syncookie.New(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	r.fwd.cookies = jar
	prog, err := xdpprog.Load(xdpprog.Config{MaxEntries: 16, MTU: r.fwd.ports[0].MTU})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	// The program answers SYNs where frames it sends arrive: where the
	// engine turns its fast path on.
	if err := prog.SetFastPath(true); err != nil {
		t.Fatal(err)
	}
	vips, _ := steering(r.table, r.table)
	// And a TCP service without the proxy on the same address.
	vips = append(vips, xdpprog.Endpoint{Addr: a.vip, Port: 81, Proto: protoTCP})
	if err := prog.SyncVIPs(vips); err != nil {
		t.Fatal(err)
	}
	s := &synRig{rig: r, jar: jar, prog: prog}
	if keys {
		s.pushKeys(t)
	}
	return s
}

// pushKeys gives the program the jar's keys, as Engine.pushCookieKeys
// does, for the worker's clock at synRigNow.
func (s *synRig) pushKeys(t testing.TB) {
	t.Helper()
	var keys []xdpprog.CookieKey
	for _, k := range s.jar.Keys(synRigNow) {
		keys = append(keys, xdpprog.CookieKey{Minute: uint64(k.Minute), K0: k.K0, K1: k.K1})
	}
	if err := s.prog.SetCookieKeys(keys, s.jar.UnixNano(synRigNow)-int64(monotonicNs(unix.CLOCK_MONOTONIC))); err != nil {
		t.Fatal(err)
	}
}

// xdp runs the program on f and returns its action, the frame as it left
// it, and how many SYNs it answered itself.
func (s *synRig) xdp(t testing.TB, f []byte) (action uint32, out []byte, answered uint64) {
	t.Helper()
	before, err := s.prog.Stats()
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, len(f)+256)
	action, n, err := s.prog.Run(append([]byte(nil), f...), dst)
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.prog.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return action, dst[:n], after.SynCookies - before.SynCookies
}

// worker forwards f in the worker and returns what it sent (nil: dropped).
func (s *synRig) worker(f []byte) []byte {
	buf := withHeadroom(f, 128)
	out, off, n := s.fwd.forward(s.table, buf, 128, len(f), 0, synRigNow)
	if out < 0 {
		return nil
	}
	return append([]byte(nil), buf[off:off+n]...)
}

// withVLAN inserts an 802.1Q tag (VLAN 7) after f's MAC addresses.
func withVLAN(f []byte) []byte {
	out := append([]byte(nil), f[:12]...)
	out = append(out, 0x81, 0x00, 0x00, 0x07)
	return append(out, f[12:]...)
}

// TestSynProxyXDPMatchesWorker: the steering program answers a SYN-proxied
// service's SYNs with the SYN-ACK the worker would send, byte for byte and
// so with the same cookie, for the options clients send (and malformed
// ones), MSS values above the interface's, VLAN tags, and both families;
// the worker then opens the connection from the client's ACK.
func TestSynProxyXDPMatchesWorker(t *testing.T) {
	nop := layers.TCPOption{OptionType: layers.TCPOptionKindNop}
	ts := layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)}
	sackPerm := layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2}
	mss := func(v uint16) layers.TCPOption {
		return layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{byte(v >> 8), byte(v)}}
	}
	ws := func(v uint8) layers.TCPOption {
		return layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{v}}
	}
	cases := []struct {
		name    string
		opts    []layers.TCPOption
		payload []byte
		vlan    bool
	}{
		{name: "linux", opts: []layers.TCPOption{mss(1460), sackPerm, ts, nop, ws(7)}},
		{name: "none"},
		{name: "mss only", opts: []layers.TCPOption{mss(1300)}},
		{name: "jumbo mss", opts: []layers.TCPOption{mss(8960), ws(9)}},
		{name: "mss 0", opts: []layers.TCPOption{mss(0), sackPerm}},
		{name: "small mss", opts: []layers.TCPOption{mss(600)}},
		{name: "sack without wscale", opts: []layers.TCPOption{nop, nop, sackPerm, mss(1440)}},
		{name: "wscale above 14", opts: []layers.TCPOption{ws(20), mss(1460)}},
		{name: "last mss counts", opts: []layers.TCPOption{mss(1300), mss(1460)}},
		{name: "malformed after mss", opts: []layers.TCPOption{mss(1440), {OptionType: 30, OptionLength: 30, OptionData: make([]byte, 2)}}},
		{name: "end of options", opts: []layers.TCPOption{mss(1440), {OptionType: layers.TCPOptionKindEndList}, nop, nop, ws(3)}},
		{name: "data on the SYN", opts: []layers.TCPOption{mss(1460), ws(7)}, payload: []byte("GET / HTTP/1.1\r\n\r\n")},
		{name: "vlan", opts: []layers.TCPOption{mss(1460), sackPerm, ts, nop, ws(7)}, vlan: true},
	}
	for _, a := range []famAddrs{fam4, fam6} {
		fam := map[bool]string{true: "v4", false: "v6"}[a.vip.Is4()]
		for i, tc := range cases {
			t.Run(fam+"/"+tc.name, func(t *testing.T) {
				s := newSynRig(t, a, true)
				client := netip.AddrPortFrom(a.client, uint16(40000+i))
				isn := uint32(0xfffff000 + i*7919)
				f := tcpFrame(t, seg{src: client, dst: netip.AddrPortFrom(a.vip, 80), seq: isn, flags: packet.FlagSYN, window: 64240,
					opts: tc.opts, payload: tc.payload, srcMAC: clientMAC, dstMAC: portMAC0})
				if tc.vlan {
					f = withVLAN(f)
				}
				var want, got []byte
				var action uint32
				var answered uint64
				// Both in one minute: again if it turned in between.
				for range 2 {
					want = s.worker(f)
					action, got, answered = s.xdp(t, f)
					if want == nil || len(got) < 4 || bytes.Equal(got, want) {
						break
					}
				}
				if want == nil {
					t.Fatalf("the worker dropped the SYN: %v", s.stats.Drops())
				}
				if action != xdpTX || answered != 1 {
					t.Fatalf("action %d, %d answered; want XDP_TX, 1", action, answered)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("XDP's SYN-ACK differs from the worker's:\n xdp    %x\n worker %x", got, want)
				}
				if s.ct.Len() != 0 {
					t.Fatalf("%d connections after the SYN", s.ct.Len())
				}
				// The client's ACK of it opens the connection in the worker.
				if tc.vlan {
					got = append(got[:12:12], got[16:]...)
				}
				_, _, synack := decodeTCP(t, "XDP's SYN-ACK", got)
				ack := tcpFrame(t, seg{src: client, dst: netip.AddrPortFrom(a.vip, 80), seq: isn + 1, ack: synack.Seq + 1, flags: packet.FlagACK,
					window: 502, srcMAC: clientMAC, dstMAC: portMAC0})
				syn := s.worker(ack)
				if syn == nil || s.stats.SynProxyOpened.Load() != 1 {
					t.Fatalf("the worker did not open the connection from the ACK: drops %v", s.stats.Drops())
				}
				if _, _, tcp := decodeTCP(t, "SYN to the real server", syn); !tcp.SYN || tcp.ACK || tcp.Seq != isn {
					t.Errorf("to the real server: SYN %v ACK %v seq %d, want a SYN with seq %d", tcp.SYN, tcp.ACK, tcp.Seq, isn)
				}
			})
		}
	}
}

// TestSynProxyXDPLeaves: what the program does not answer goes to the
// workers as before, untouched: SYNs of services without the proxy, other
// segments, SYNs with IPv4 options or a bad header checksum, a length that
// lies, SYNs in a minute whose key the program has not been given, and
// SYNs on an interface where frames XDP sends do not arrive.
func TestSynProxyXDPLeaves(t *testing.T) {
	s := newSynRig(t, fam4, true)
	client, vip80 := netip.AddrPortFrom(fam4.client, 40000), netip.AddrPortFrom(fam4.vip, 80)
	syn := func() []byte {
		return tcpFrame(t, seg{src: client, dst: vip80, seq: 1, flags: packet.FlagSYN, window: 64240, opts: synOpts(1460, 7, true),
			srcMAC: clientMAC, dstMAC: portMAC0})
	}
	withIPOption := func() []byte {
		// A router alert option: IHL 6.
		f := syn()
		opt := []byte{0x94, 4, 0, 0}
		out := append(append(append([]byte(nil), f[:34]...), opt...), f[34:]...)
		out[14] = 0x46
		totalLen := int(out[16])<<8 | int(out[17]) + 4
		out[16], out[17] = byte(totalLen>>8), byte(totalLen)
		out[24], out[25] = 0, 0
		var sum uint32
		for i := 14; i < 14+24; i += 2 {
			sum += uint32(out[i])<<8 | uint32(out[i+1])
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		out[24], out[25] = ^byte(sum>>8), ^byte(sum)
		return out
	}
	cases := []struct {
		name  string
		frame func() []byte
	}{
		{"service without the proxy", func() []byte {
			return tcpFrame(t, seg{src: client, dst: netip.AddrPortFrom(fam4.vip, 81), seq: 1, flags: packet.FlagSYN, srcMAC: clientMAC, dstMAC: portMAC0})
		}},
		{"ACK", func() []byte {
			return tcpFrame(t, seg{src: client, dst: vip80, seq: 2, ack: 7, flags: packet.FlagACK, srcMAC: clientMAC, dstMAC: portMAC0})
		}},
		{"SYN-ACK", func() []byte {
			return tcpFrame(t, seg{src: client, dst: vip80, seq: 2, ack: 7, flags: packet.FlagSYN | packet.FlagACK, srcMAC: clientMAC, dstMAC: portMAC0})
		}},
		{"IPv4 options", withIPOption},
		{"bad IPv4 header checksum", func() []byte { f := syn(); f[24] ^= 0xff; return f }},
		{"total length beyond the frame", func() []byte { f := syn(); f[17] += 8; f[25] -= 8; return f }},
		{"data offset beyond the segment", func() []byte { f := syn(); f[14+20+12] = 15 << 4; return f }},
	}
	for _, tc := range cases {
		f := tc.frame()
		action, out, answered := s.xdp(t, f)
		if action != xdpPass || answered != 0 || !bytes.Equal(out, f) {
			t.Errorf("%s: action %d, %d answered, frame changed %t; want it steered (no socket: XDP_PASS) as it came", tc.name, action, answered, !bytes.Equal(out, f))
		}
	}

	// No key for the minute: the worker's.
	cold := newSynRig(t, fam4, false)
	if action, _, answered := cold.xdp(t, syn()); action != xdpPass || answered != 0 {
		t.Errorf("without keys: action %d, %d answered; want it steered", action, answered)
	}
	// Keys of another minute only.
	var stale []xdpprog.CookieKey
	for _, k := range cold.jar.Keys(synRigNow) {
		stale = append(stale, xdpprog.CookieKey{Minute: uint64(k.Minute) - 4, K0: k.K0, K1: k.K1})
	}
	if err := cold.prog.SetCookieKeys(stale, cold.jar.UnixNano(synRigNow)-int64(monotonicNs(unix.CLOCK_MONOTONIC))); err != nil {
		t.Fatal(err)
	}
	if action, _, answered := cold.xdp(t, syn()); action != xdpPass || answered != 0 {
		t.Errorf("with stale keys: action %d, %d answered; want it steered", action, answered)
	}
	// Where XDP transmits do not arrive (the fast path off): steered.
	if err := s.prog.SetFastPath(false); err != nil {
		t.Fatal(err)
	}
	if action, _, answered := s.xdp(t, syn()); action != xdpPass || answered != 0 {
		t.Errorf("fast path off: action %d, %d answered; want it steered", action, answered)
	}
	if err := s.prog.SetFastPath(true); err != nil {
		t.Fatal(err)
	}
	// Switched off by a reload: steered again.
	if err := s.prog.SyncVIPs([]xdpprog.Endpoint{{Addr: fam4.vip, Port: 80, Proto: protoTCP}}); err != nil {
		t.Fatal(err)
	}
	if action, _, answered := s.xdp(t, syn()); action != xdpPass || answered != 0 {
		t.Errorf("proxy off: action %d, %d answered; want it steered", action, answered)
	}
}

// TestSynProxyReopen: a client that opens a new connection from the port
// of one that is closing sends a SYN the XDP program answers, so the
// worker first sees its ACK, which finds the old entry: with a good cookie
// that ACK opens the new connection (the old entry goes), any other ACK
// belongs to the old one.
func TestSynProxyReopen(t *testing.T) {
	r := famRigWith(t, fam4, MethodNAT, 8080, func(s *ServiceSpec) { s.SynProxy = true })
	jar, _ := syncookie.New(nil, 0)
	r.fwd.cookies = jar
	client, virtual := netip.AddrPortFrom(fam4.client, 40000), netip.AddrPortFrom(fam4.vip, 80)
	server := netip.AddrPortFrom(fam4.rip, 8080)
	send := func(f []byte, in int) []byte {
		t.Helper()
		buf := withHeadroom(f, 128)
		out, off, n := r.fwd.forward(r.table, buf, 128, len(f), in, synRigNow)
		if out < 0 {
			return nil
		}
		return append([]byte(nil), buf[off:off+n]...)
	}
	cookieFor := func(isn uint32) uint32 {
		c, _ := jar.Make(&syncookie.Flow{Src: client.Addr(), Dst: virtual.Addr(), SrcPort: client.Port(), DstPort: virtual.Port(), ISN: isn},
			packet.SYNOptions{MSS: 1460, WScale: 7, SACKPerm: true}, synRigNow)
		return c
	}
	// The old connection: opened, answered, then closed by the client.
	cookie := cookieFor(1000)
	if send(tcpFrame(t, seg{src: client, dst: virtual, seq: 1001, ack: cookie + 1, flags: packet.FlagACK, window: 502, srcMAC: clientMAC, dstMAC: portMAC0}), 0) == nil {
		t.Fatalf("old connection not opened: %v", r.stats.Drops())
	}
	if send(tcpFrame(t, seg{src: server, dst: client, seq: 7000, ack: 1001, flags: packet.FlagSYN | packet.FlagACK, window: 29200,
		opts: synOpts(1460, 7, true), srcMAC: rsMAC, dstMAC: portMAC1}), 1) == nil {
		t.Fatalf("real server's SYN-ACK dropped: %v", r.stats.Drops())
	}
	if send(tcpFrame(t, seg{src: client, dst: virtual, seq: 1001, ack: cookie + 1, flags: packet.FlagFIN | packet.FlagACK, window: 502,
		srcMAC: clientMAC, dstMAC: portMAC0}), 0) == nil {
		t.Fatalf("client FIN dropped: %v", r.stats.Drops())
	}
	var c = r.fwd.conn
	if !reusable(r.table, &c) {
		t.Fatalf("old connection in state %v, not one a new connection takes over", c.State)
	}
	// An ACK of the old connection stays the old connection's.
	if got := send(tcpFrame(t, seg{src: client, dst: virtual, seq: 1002, ack: cookie + 1, flags: packet.FlagACK, window: 502,
		srcMAC: clientMAC, dstMAC: portMAC0}), 0); got == nil {
		t.Fatalf("old connection's ACK dropped: %v", r.stats.Drops())
	} else if _, _, tcp := decodeTCP(t, "old ACK", got); tcp.SYN || tcp.Seq != 1002 {
		t.Fatalf("old connection's ACK sent as SYN %v seq %d", tcp.SYN, tcp.Seq)
	}
	// The new connection's handshake ACK, for a SYN-ACK the worker never sent.
	newCookie := cookieFor(5000)
	got := send(tcpFrame(t, seg{src: client, dst: virtual, seq: 5001, ack: newCookie + 1, flags: packet.FlagACK, window: 502,
		srcMAC: clientMAC, dstMAC: portMAC0}), 0)
	if got == nil {
		t.Fatalf("new connection's ACK dropped: %v", r.stats.Drops())
	}
	if _, dst, tcp := decodeTCP(t, "new SYN", got); !tcp.SYN || tcp.ACK || tcp.Seq != 5000 || dst != server {
		t.Fatalf("new connection: SYN %v ACK %v seq %d to %s; want a SYN with seq 5000 to %s", tcp.SYN, tcp.ACK, tcp.Seq, dst, server)
	}
	if r.ct.Len() != 1 || r.stats.SynProxyOpened.Load() != 2 {
		t.Errorf("%d connections, %d opened; want the new one alone, 2 opened", r.ct.Len(), r.stats.SynProxyOpened.Load())
	}
}

// BenchmarkXDPSynCookie times the steering program in the kernel
// (BPF_PROG_RUN) on a SYN to a SYN-proxied service, answered with a cookie
// (syn-cookie), against the same SYN to a service without the proxy, only
// steered (steer). ns/frame is the kernel's time of the program alone;
// ns/op adds a BPF_PROG_RUN system call per frame.
func BenchmarkXDPSynCookie(b *testing.B) {
	for _, a := range []famAddrs{fam4, fam6} {
		for _, port := range []uint16{80, 81} {
			name := map[bool]string{true: "v4", false: "v6"}[a.vip.Is4()] + "/" + map[uint16]string{80: "syn-cookie", 81: "steer"}[port]
			b.Run(name, func(b *testing.B) {
				s := newSynRig(b, a, true)
				f := tcpFrame(b, seg{src: netip.AddrPortFrom(a.client, 40000), dst: netip.AddrPortFrom(a.vip, port), seq: 1, flags: packet.FlagSYN,
					window: 64240, opts: synOpts(1460, 7, true), srcMAC: clientMAC, dstMAC: portMAC0})
				want := uint32(xdpTX)
				if port != 80 {
					want = xdpPass
				}
				action, per, err := s.prog.Time(f, b.N)
				if err != nil {
					b.Fatal(err)
				}
				if action != want {
					b.Fatalf("action %d, want %d", action, want)
				}
				b.ReportMetric(float64(per.Nanoseconds()), "ns/frame")
			})
		}
	}
}
