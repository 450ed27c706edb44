package dataplane

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/dataplane/packet"
	"github.com/xvs-lb/xvs/dataplane/syncookie"
)

var (
	clientMAC = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	portMAC0  = [6]byte{0x02, 0, 0, 0, 0, 0xd0}
	portMAC1  = [6]byte{0x02, 0, 0, 0, 0, 0xd1}
	rsMAC     = [6]byte{0x02, 0, 0, 0, 0, 0x11}
	rs2MAC    = [6]byte{0x02, 0, 0, 0, 0, 0x12}
	vip       = netip.MustParseAddr("198.18.0.100")
	cip       = netip.MustParseAddr("198.18.0.1")
	rip1      = netip.MustParseAddr("198.19.0.11")
	rip2      = netip.MustParseAddr("198.19.0.12")
)

// frame builds an Ethernet/IPv4 frame with valid checksums.
func frame(t testing.TB, srcMAC, dstMAC [6]byte, src, dst netip.Addr, sport, dport uint16, proto uint8, tcpFlags uint8, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(srcMAC[:]), DstMAC: net.HardwareAddr(dstMAC[:]), EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocol(proto), SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Flags: layers.IPv4DontFragment}
	var l4 gopacket.SerializableLayer
	switch proto {
	case protoTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1000, Window: 65535,
			SYN: tcpFlags&packet.FlagSYN != 0, ACK: tcpFlags&packet.FlagACK != 0, FIN: tcpFlags&packet.FlagFIN != 0, RST: tcpFlags&packet.FlagRST != 0}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		l4 = tcp
	case protoUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		_ = udp.SetNetworkLayerForChecksum(ip)
		l4 = udp
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, l4, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// checkFrame decodes f from scratch with gopacket, recomputes every checksum
// and compares, and returns the decoded layers for further checks.
func checkFrame(t *testing.T, f []byte) (*layers.Ethernet, *layers.IPv4, gopacket.Packet) {
	t.Helper()
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if eth == nil || ip == nil {
		t.Fatalf("rewritten frame does not decode: %v", p.ErrorLayer())
	}
	var l4 gopacket.SerializableLayer
	if tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
		_ = tcp.SetNetworkLayerForChecksum(ip)
		l4 = tcp
	} else if udp, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
		_ = udp.SetNetworkLayerForChecksum(ip)
		l4 = udp
	}
	var payload []byte
	if tl := p.TransportLayer(); tl != nil {
		payload = tl.LayerPayload()
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, eth, ip, l4, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), f) {
		t.Fatalf("checksums do not verify:\n got  %x\n want %x", f, buf.Bytes())
	}
	return eth, ip, p
}

type rig struct {
	fwd   *forwarder
	table *Table
	ct    *conntrack.Table
	stats *WorkerStats
}

func newRig(t testing.TB, method Method, rport uint16) *rig {
	t.Helper()
	ct, err := conntrack.New(conntrack.Config{Capacity: 1024, MaxDests: 64, Timeouts: conntrack.DefaultTimeouts()})
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(64)
	specs := []ServiceSpec{
		{VIP: vip, Port: 80, Proto: protoTCP, Scheduler: "rr", Reals: []RealSpec{{Addr: rip1, Port: rport, Weight: 1, Method: method}, {Addr: rip2, Port: rport, Weight: 1, Method: method}}},
		{VIP: vip, Port: 53, Proto: protoUDP, Scheduler: "rr", Reals: []RealSpec{{Addr: rip1, Port: 53, Weight: 1, Method: method}}},
	}
	_, tbl, err := reg.build(specs, nil, func(uint32) int64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	out := 0
	if method == MethodNAT {
		out = 1 // real servers behind the second port
	}
	for _, s := range tbl.ordered {
		for _, d := range s.Dests {
			mac := rsMAC
			if d.Addr == rip2 {
				mac = rs2MAC
			}
			d.hop.store(mac, out)
		}
	}
	stats := newWorkerStats(64)
	ports := []Port{{Name: "p0", MAC: portMAC0}, {Name: "p1", MAC: portMAC1}}
	return &rig{fwd: newForwarder(ports, ct, newPersistTable(1024), stats), table: tbl, ct: ct, stats: stats}
}

func TestForwardDR(t *testing.T) {
	r := newRig(t, MethodDR, 80)
	f := frame(t, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, packet.FlagSYN, nil)
	orig := append([]byte(nil), f...)
	if out := r.fwd.forwardFrame(r.table, f, 0, 1); out != 0 {
		t.Fatalf("SYN went to port %d, want 0 (drops %v)", out, r.stats.Drops())
	}
	eth, ip, _ := checkFrame(t, f)
	if [6]byte(eth.DstMAC) != rsMAC || [6]byte(eth.SrcMAC) != portMAC0 {
		t.Errorf("MACs %s -> %s, want director -> rs1", eth.SrcMAC, eth.DstMAC)
	}
	if !bytes.Equal(f[14:], orig[14:]) || ip.DstIP.String() != vip.String() {
		t.Error("DR changed the IP packet; it must rewrite MACs only")
	}
	// Later packets of the connection follow it; a new connection goes to rs2.
	f = frame(t, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, packet.FlagACK, []byte("GET /"))
	if out := r.fwd.forwardFrame(r.table, f, 0, 2); out != 0 || [6]byte(f[0:6]) != rsMAC {
		t.Errorf("established packet: port %d MAC %x, want rs1", out, f[0:6])
	}
	f = frame(t, clientMAC, portMAC0, cip, vip, 40001, 80, protoTCP, packet.FlagSYN, nil)
	if out := r.fwd.forwardFrame(r.table, f, 0, 3); out != 0 || [6]byte(f[0:6]) != rs2MAC {
		t.Errorf("second connection: port %d MAC %x, want rs2", out, f[0:6])
	}
	var c conntrack.Conn
	k := conntrack.MakeKey(protoTCP, cip, 40000, vip, 80)
	if !r.ct.Lookup(&k, &c) || c.State != conntrack.Established {
		t.Errorf("connection state %v, want ESTABLISHED after SYN, ACK (director sees only the client)", c.State)
	}
}

func TestForwardNAT(t *testing.T) {
	r := newRig(t, MethodNAT, 8080)
	for _, tc := range []struct {
		name  string
		proto uint8
		dport uint16
		rport uint16
		flags uint8
	}{
		{"tcp", protoTCP, 80, 8080, packet.FlagSYN},
		{"udp", protoUDP, 53, 53, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := frame(t, clientMAC, portMAC0, cip, vip, 40000, tc.dport, tc.proto, tc.flags, []byte("hello"))
			if out := r.fwd.forwardFrame(r.table, f, 0, 1); out != 1 {
				t.Fatalf("forward went to port %d, want 1 (drops %v)", out, r.stats.Drops())
			}
			eth, ip, p := checkFrame(t, f)
			if ip.DstIP.String() != rip1.String() || ip.SrcIP.String() != cip.String() {
				t.Errorf("DNAT: %s -> %s, want client -> rs1", ip.SrcIP, ip.DstIP)
			}
			if dport := p.TransportLayer().TransportFlow().Dst().String(); dport != itoa(tc.rport) {
				t.Errorf("DNAT port %s, want %d", dport, tc.rport)
			}
			if [6]byte(eth.DstMAC) != rsMAC || [6]byte(eth.SrcMAC) != portMAC1 {
				t.Errorf("MACs %s -> %s, want port1 -> rs1", eth.SrcMAC, eth.DstMAC)
			}
			// The reply comes back from the real server, to the client.
			flags := uint8(0)
			if tc.proto == protoTCP {
				flags = packet.FlagSYN | packet.FlagACK
			}
			f = frame(t, rsMAC, portMAC1, rip1, cip, tc.rport, 40000, tc.proto, flags, []byte("world!"))
			if out := r.fwd.forwardFrame(r.table, f, 1, 2); out != 0 {
				t.Fatalf("reply went to port %d, want 0 (drops %v)", out, r.stats.Drops())
			}
			eth, ip, p = checkFrame(t, f)
			if ip.SrcIP.String() != vip.String() || ip.DstIP.String() != cip.String() {
				t.Errorf("SNAT: %s -> %s, want VIP -> client", ip.SrcIP, ip.DstIP)
			}
			if sport := p.TransportLayer().TransportFlow().Src().String(); sport != itoa(tc.dport) {
				t.Errorf("SNAT port %s, want %d", sport, tc.dport)
			}
			if [6]byte(eth.DstMAC) != clientMAC || [6]byte(eth.SrcMAC) != portMAC0 {
				t.Errorf("reply MACs %s -> %s, want port0 -> client", eth.SrcMAC, eth.DstMAC)
			}
		})
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

func TestForwardDrops(t *testing.T) {
	r := newRig(t, MethodDR, 80)
	for _, tc := range []struct {
		name   string
		frame  []byte
		reason DropReason
	}{
		{"ACK without connection", frame(t, clientMAC, portMAC0, cip, vip, 1, 80, protoTCP, packet.FlagACK, nil), DropNoConn},
		{"SYN+FIN", frame(t, clientMAC, portMAC0, cip, vip, 2, 80, protoTCP, packet.FlagSYN|packet.FlagFIN, nil), DropNoConn},
		{"no such service", frame(t, clientMAC, portMAC0, cip, vip, 3, 81, protoTCP, packet.FlagSYN, nil), DropNoService},
		{"truncated", frame(t, clientMAC, portMAC0, cip, vip, 4, 80, protoTCP, packet.FlagSYN, nil)[:30], DropTruncated},
		{"not IP", append(make([]byte, 12), 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1), DropUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := r.stats.drops[tc.reason].Load()
			if out := r.fwd.forwardFrame(r.table, tc.frame, 0, 1); out != -1 {
				t.Fatalf("forwarded to port %d, want a drop", out)
			}
			if r.stats.drops[tc.reason].Load() != before+1 {
				t.Errorf("drop not counted as %s: %v", tc.reason, r.stats.Drops())
			}
		})
	}
	// A real server whose MAC is unknown: counted, not blocked.
	for _, s := range r.table.ordered {
		for _, d := range s.Dests {
			d.hop.clear()
		}
	}
	if out := r.fwd.forwardFrame(r.table, frame(t, clientMAC, portMAC0, cip, vip, 5, 80, protoTCP, packet.FlagSYN, nil), 0, 1); out != -1 || r.stats.drops[DropNoNextHop].Load() != 1 {
		t.Errorf("unresolved next hop: port %d, drops %v", out, r.stats.Drops())
	}
}

// TestForwardAllocs proves the per-frame path (decode, connection lookup,
// state update, rewrite) allocates nothing, for new and established
// connections, forward and reply.
func TestForwardAllocs(t *testing.T) {
	r := newRig(t, MethodNAT, 8080)
	syn := frame(t, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, packet.FlagSYN, nil)
	ack := frame(t, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, packet.FlagACK, []byte("data"))
	reply := frame(t, rsMAC, portMAC1, rip1, cip, 8080, 40000, protoTCP, packet.FlagACK, []byte("data"))
	work := make([]byte, 128)
	run := func(f []byte, in int) int {
		n := copy(work, f)
		return r.fwd.forwardFrame(r.table, work[:n], in, 1)
	}
	if run(syn, 0) != 1 {
		t.Fatal("SYN not forwarded")
	}
	// Every measured frame must really be forwarded, translated: a frame
	// dropped early would allocate nothing too.
	for name, tc := range map[string]struct {
		f       []byte
		in, out int
		off     int // where the translated address lands
		want    [4]byte
	}{
		"established forward": {ack, 0, 1, 14 + 16, rip1.As4()},
		"established reply":   {reply, 1, 0, 14 + 12, vip.As4()},
	} {
		bad := 0
		if n := testing.AllocsPerRun(1000, func() {
			if run(tc.f, tc.in) != tc.out || [4]byte(work[tc.off:tc.off+4]) != tc.want {
				bad++
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per frame", name, n)
		}
		if bad > 0 {
			t.Errorf("%s: %d measured frames not forwarded as they should be (drops %v)", name, bad, r.stats.Drops())
		}
	}
	port, bad := uint16(1000), 0
	newConn := func() {
		port++
		n := copy(work, syn)
		binaryPutPort(work[34:], port)
		if r.fwd.forwardFrame(r.table, work[:n], 0, 1) != 1 || [4]byte(work[14+16:14+20]) == vip.As4() {
			bad++
		}
	}
	if n := testing.AllocsPerRun(500, newConn); n != 0 {
		t.Errorf("new connection: %v allocations per frame", n)
	}
	if bad > 0 {
		t.Errorf("new connection: %d measured SYNs not forwarded (drops %v)", bad, r.stats.Drops())
	}
	// The batch path: prepare, touch, forward.
	var p prepared
	bad = 0
	if n := testing.AllocsPerRun(1000, func() {
		k := copy(work, ack)
		r.fwd.prepare(work[:k], &p)
		r.fwd.prefetchBucket(&p)
		r.fwd.prefetchEntry(&p)
		if out, _, _ := r.fwd.forwardPrepared(r.table, work, 0, k, 0, 1, &p); out != 1 {
			bad++
		}
	}); n != 0 || bad > 0 {
		t.Errorf("batch path: %v allocations per frame, %d frames not forwarded", n, bad)
	}
}

// binaryPutPort changes a TCP source port without fixing the checksum: the
// forwarder does not verify L4 checksums, and this keeps the test cheap.
func binaryPutPort(tcp []byte, port uint16) { tcp[0], tcp[1] = byte(port>>8), byte(port) }

// BenchmarkForward measures the whole per-frame path (decode, connection
// lookup, scheduling on a miss, rewrite) per forwarding method, for
// established traffic and for new connections (a SYN from a new source port
// each time, so every frame schedules and inserts), with one worker and with
// two (and, where the machine has the CPUs, four and eight) in parallel
// sharing the connection table.
//
// FullNAT's new connections are bounded by its local port pool (about 64k
// per local address and real server), so only its established traffic is
// measured here.
func BenchmarkForward(b *testing.B) {
	names := map[Method]string{MethodDR: "dr", MethodNAT: "nat", MethodTUN: "tun", MethodFullNAT: "fullnat"}
	for _, method := range []Method{MethodDR, MethodNAT, MethodTUN, MethodFullNAT} {
		// established-partial: the same frames as a sender that leaves
		// its checksum to the NIC sends them, which the director
		// completes (one pass over the 26-byte segment here).
		// syn-proxy: SYNs of a syn_proxy service, answered with a cookie;
		// established-proxied: a proxied connection's frames, whose
		// acknowledgments are translated.
		for _, kind := range []string{"established", "established-partial", "syn", "syn-proxy", "established-proxied"} {
			proxy := kind == "syn-proxy" || kind == "established-proxied"
			if kind == "syn" && method == MethodFullNAT || proxy && method != MethodNAT && method != MethodFullNAT {
				continue
			}
			for _, workers := range []int{1, 2, 4, 8} {
				// More workers than CPUs would measure the
				// Go scheduler, not the forwarder.
				if workers > 2 && workers > runtime.NumCPU() {
					continue
				}
				name := fmt.Sprintf("%s/%s/workers=%d", names[method], kind, workers)
				b.Run(name, func(b *testing.B) {
					benchForward(b, method, kind == "syn" || kind == "syn-proxy", kind == "established-partial", proxy, workers)
				})
			}
		}
	}
}

func benchForward(b *testing.B, method Method, syn, partial, proxy bool, workers int) {
	rport := uint16(80)
	if method == MethodNAT || method == MethodFullNAT {
		rport = 8080
	}
	r := rigFor(b, method, rport, false)
	var jar *syncookie.Jar
	if proxy {
		r.table.ordered[0].synProxy = true
		var err error
		if jar, err = syncookie.New(nil, 0); err != nil {
			b.Fatal(err)
		}
		jar.Prime(2)
	}
	// Large enough that SYN runs do not fill it within a benchmark.
	ct, err := conntrack.New(conntrack.Config{Capacity: 1 << 22, MaxDests: 64, Timeouts: conntrack.DefaultTimeouts()})
	if err != nil {
		b.Fatal(err)
	}
	flags := uint8(packet.FlagACK)
	if syn {
		flags = packet.FlagSYN
	}
	tmpl := frame(b, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, flags, make([]byte, 6))
	var next atomic.Uint32
	b.ReportAllocs()
	const headroom = 128 // as a UMEM frame has, for TUN's outer header
	run := func(fwd *forwarder, pb func() bool) {
		// Tailroom, as a UMEM frame has: a SYN-ACK is longer than the SYN.
		buf := make([]byte, headroom+len(tmpl), headroom+len(tmpl)+128)
		work := buf[headroom:]
		base := next.Add(1) << 24
		fwd.cookies = jar
		if proxy && !syn {
			proxyHandshake(b, r, fwd, netip.AddrFrom4([4]byte{byte(base >> 24), byte(base >> 16), byte(base >> 8), byte(base)}))
		} else if !syn {
			// Establish this worker's flow through the forwarder itself,
			// so that every method gets its own kind of entry.
			copy(work, tmpl)
			work[14+20+13] = packet.FlagSYN
			binaryPutSrc(work[14:], base)
			if out, _, _ := fwd.forward(r.table, buf, headroom, len(tmpl), 0, 1); out < 0 {
				b.Fatalf("SYN dropped: %v", fwd.stats.Drops())
			}
		}
		// This worker's frame with a partial checksum for its source.
		own := append([]byte(nil), tmpl...)
		binaryPutSrc(own[14:], base)
		partialize(b, own)
		i := uint32(0)
		for pb() {
			switch {
			case partial:
				copy(work, own)
			case syn:
				copy(work, tmpl)
				i++
				binaryPutSrc(work[14:], base|i)
			default:
				copy(work, tmpl)
				binaryPutSrc(work[14:], base)
			}
			if out, _, _ := fwd.forward(r.table, buf, headroom, len(tmpl), 0, 2); out < 0 || proxy && syn != (out == 0) {
				b.Fatalf("out %d, drops %v", out, fwd.stats.Drops())
			}
		}
	}
	if workers == 1 {
		fwd := newForwarder(r.fwd.ports, ct, newPersistTable(1024), newWorkerStats(64))
		b.ResetTimer()
		n := 0
		run(fwd, func() bool { n++; return n <= b.N })
		return
	}
	b.SetParallelism(1)
	procs := runtime.GOMAXPROCS(workers)
	defer runtime.GOMAXPROCS(procs)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		fwd := newForwarder(r.fwd.ports, ct, newPersistTable(1024), newWorkerStats(64))
		run(fwd, pb.Next)
	})
}

// binaryPutSrc sets the IPv4 source address of the IP header ip and fixes
// its header checksum (the forwarder checks that one; L4 checksums it does
// not, so those are left).
func binaryPutSrc(ip []byte, a uint32) {
	old := [4]byte(ip[12:16])
	ip[12], ip[13], ip[14], ip[15] = byte(a>>24), byte(a>>16), byte(a>>8), byte(a)
	csum := packet.UpdateChecksumAddr(uint16(ip[10])<<8|uint16(ip[11]), old[:], ip[12:16])
	ip[10], ip[11] = byte(csum>>8), byte(csum)
}

// BenchmarkForwardBatch forwards batches of 256 established NAT frames
// spread over flows connections, as a worker does: each batch decoded and
// its buckets touched first (batched), or each frame forwarded whole before
// the next (one by one). With a large table the lookups miss the caches,
// and the batched form overlaps the misses.
func BenchmarkForwardBatch(b *testing.B) {
	for _, flows := range []int{1_000, 100_000, 1_000_000} {
		for _, batched := range []bool{false, true} {
			name := fmt.Sprintf("flows=%d/batched=%v", flows, batched)
			b.Run(name, func(b *testing.B) { benchForwardBatch(b, flows, batched) })
		}
	}
}

func benchForwardBatch(b *testing.B, flows int, batched bool) {
	const batch = 256
	r := newRig(b, MethodNAT, 8080)
	ct, err := conntrack.New(conntrack.Config{Capacity: 2 * flows, MaxDests: 64, Timeouts: conntrack.DefaultTimeouts()})
	if err != nil {
		b.Fatal(err)
	}
	fwd := newForwarder(r.fwd.ports, ct, newPersistTable(1024), newWorkerStats(64))
	tmpl := frame(b, clientMAC, portMAC0, cip, vip, 40000, 53, protoUDP, 0, make([]byte, 6))
	// Flow i comes from 10.0.0.0 + i. UDP makes the connection on the
	// first frame.
	for i := range flows {
		f := append([]byte(nil), tmpl...)
		binaryPutSrc(f[14:], 0x0a000000|uint32(i))
		if out := fwd.forwardFrame(r.table, f, 0, 1); out < 0 {
			b.Fatalf("flow %d: dropped %v", i, fwd.stats.Drops())
		}
	}
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, len(tmpl))
	}
	prep := make([]prepared, batch)
	order := rand.Perm(flows)
	b.ReportAllocs()
	b.ResetTimer()
	next := 0
	for done := 0; done < b.N; done += batch {
		// The frames are made, not fetched from a table of their own:
		// that would add a cache miss per frame that is not the
		// forwarder's.
		for i := range bufs {
			copy(bufs[i], tmpl)
			binaryPutSrc(bufs[i][14:], 0x0a000000|uint32(order[next]))
			if next++; next == flows {
				next = 0
			}
		}
		if batched {
			for i := range bufs {
				fwd.prepare(bufs[i], &prep[i])
			}
			for i := range bufs {
				fwd.prefetchBucket(&prep[i])
			}
			for i := range bufs {
				fwd.prefetchEntry(&prep[i])
			}
			for i := range bufs {
				if out, _, _ := fwd.forwardPrepared(r.table, bufs[i], 0, len(bufs[i]), 0, 2, &prep[i]); out != 1 {
					b.Fatalf("dropped: %v", fwd.stats.Drops())
				}
			}
			continue
		}
		for i := range bufs {
			if out := fwd.forwardFrame(r.table, bufs[i], 0, 2); out != 1 {
				b.Fatalf("dropped: %v", fwd.stats.Drops())
			}
		}
	}
}
