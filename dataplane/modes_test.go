package dataplane

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/dataplane/packet"
)

var (
	lip      = netip.MustParseAddr("198.19.0.2")
	dirAddr0 = netip.MustParseAddr("198.18.0.2")
	dirAddr1 = netip.MustParseAddr("198.19.0.1")
)

// rigFor builds a forwarder over one TCP service VIP:80 with two real
// servers using method, FullNAT's local address and TOA as given.
func rigFor(t testing.TB, method Method, rport uint16, toa bool) *rig {
	t.Helper()
	ct, err := conntrack.New(conntrack.Config{Capacity: 1024, MaxDests: 64, Timeouts: conntrack.DefaultTimeouts()})
	if err != nil {
		t.Fatal(err)
	}
	spec := ServiceSpec{VIP: vip, Port: 80, Proto: protoTCP, Scheduler: "rr", TOA: toa,
		Reals: []RealSpec{{Addr: rip1, Port: rport, Weight: 1, Method: method}, {Addr: rip2, Port: rport, Weight: 1, Method: method}}}
	if method == MethodFullNAT {
		spec.LocalAddrs = []netip.Addr{lip}
	}
	_, tbl, err := newRegistry(64).build([]ServiceSpec{spec}, nil, func(uint32) int64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range tbl.ordered[0].Dests {
		mac := rsMAC
		if d.Addr == rip2 {
			mac = rs2MAC
		}
		d.hop.store(mac, 1)
	}
	stats := newWorkerStats(64)
	ports := []Port{{Name: "p0", MAC: portMAC0, Addr4: dirAddr0, MTU: 1500}, {Name: "p1", MAC: portMAC1, Addr4: dirAddr1, MTU: 1500}}
	return &rig{fwd: newForwarder(ports, ct, newPersistTable(64), stats), table: tbl, ct: ct, stats: stats}
}

// withHeadroom places f after hr free bytes, as a UMEM frame has them.
func withHeadroom(f []byte, hr int) []byte {
	buf := make([]byte, hr+len(f), hr+len(f)+64)
	copy(buf[hr:], f)
	return buf
}

func TestForwardTUN(t *testing.T) {
	r := rigFor(t, MethodTUN, 80, false)
	f := frame(t, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, packet.FlagSYN, []byte("x"))
	buf := withHeadroom(f, 128)
	out, off, n := r.fwd.forward(r.table, buf, 128, len(f), 0, 1)
	if out != 1 {
		t.Fatalf("out = %d, drops %v", out, r.stats.Drops())
	}
	got := buf[off : off+n]
	p := gopacket.NewPacket(got, layers.LayerTypeEthernet, gopacket.Default)
	outer, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if outer == nil || outer.Protocol != layers.IPProtocolIPv4 || outer.SrcIP.String() != dirAddr1.String() || outer.DstIP.String() != rip1.String() {
		t.Fatalf("outer header %+v, want IPIP %s -> %s", outer, dirAddr1, rip1)
	}
	if [6]byte(got[0:6]) != rsMAC || [6]byte(got[6:12]) != portMAC1 {
		t.Errorf("MACs %x -> %x", got[6:12], got[0:6])
	}
	// The inner packet is the client's, untouched.
	if string(got[34:n]) != string(f[14:14+41]) { // the IP packet, without Ethernet padding
		t.Errorf("inner packet changed:\n got  %x\n want %x", got[34:], f[14:])
	}
	if outer.Checksum != packet.IPv4(got[14:34]).CalculateChecksum() {
		t.Error("outer IPv4 checksum wrong")
	}
}

func TestForwardTUNTooBig(t *testing.T) {
	r := rigFor(t, MethodTUN, 80, false)
	f := frame(t, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, packet.FlagSYN, make([]byte, 1500-40))
	out, _, _ := r.fwd.forward(r.table, withHeadroom(f, 128), 128, len(f), 0, 1)
	if out != -1 || r.stats.Drops()["too_big"] != 1 {
		t.Fatalf("out %d drops %v, want a too_big drop", out, r.stats.Drops())
	}
	if r.fwd.replyLen == 0 || r.fwd.replyPort != 0 {
		t.Fatalf("no ICMP error to send back (len %d port %d)", r.fwd.replyLen, r.fwd.replyPort)
	}
	p := gopacket.NewPacket(r.fwd.replyBuf[:r.fwd.replyLen], layers.LayerTypeEthernet, gopacket.Default)
	icmp, _ := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if icmp == nil || icmp.TypeCode.Type() != 3 || icmp.TypeCode.Code() != 4 || ip.DstIP.String() != cip.String() {
		t.Fatalf("reply is not frag-needed to the client: %v", p)
	}
	if mtu := int(icmp.Seq); mtu != 1480 {
		t.Errorf("next-hop MTU %d, want 1480", mtu)
	}
}

func TestForwardFullNAT(t *testing.T) {
	for _, toa := range []bool{false, true} {
		r := rigFor(t, MethodFullNAT, 8080, toa)
		f := frame(t, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, packet.FlagSYN, nil)
		buf := withHeadroom(f, 128)
		out, off, n := r.fwd.forward(r.table, buf, 128, len(f), 0, 1)
		if out != 1 {
			t.Fatalf("toa=%v: out %d drops %v", toa, out, r.stats.Drops())
		}
		got := append([]byte(nil), buf[off:off+n]...)
		_, ip, p := checkFrame(t, got)
		tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip.SrcIP.String() != lip.String() || ip.DstIP.String() != rip1.String() || tcp.DstPort != 8080 || tcp.SrcPort < DefaultLocalPortMin {
			t.Fatalf("FullNAT forward %s:%d -> %s:%d, want %s:* -> %s:8080", ip.SrcIP, tcp.SrcPort, ip.DstIP, tcp.DstPort, lip, rip1)
		}
		client, ok := packet.ParseTOA(got[34:])
		if ok != toa || (toa && client != netip.AddrPortFrom(cip, 40000)) {
			t.Errorf("toa=%v: TOA in SYN = %v %v", toa, client, ok)
		}
		// The real server answers the local address; the client gets it
		// from the VIP.
		reply := frame(t, rsMAC, portMAC1, rip1, lip, 8080, uint16(tcp.SrcPort), protoTCP, packet.FlagSYN|packet.FlagACK, nil)
		if out := r.fwd.forwardFrame(r.table, reply, 1, 2); out != 0 {
			t.Fatalf("reply out %d drops %v", out, r.stats.Drops())
		}
		eth, ip, p := checkFrame(t, reply)
		tcp = p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip.SrcIP.String() != vip.String() || tcp.SrcPort != 80 || ip.DstIP.String() != cip.String() || tcp.DstPort != 40000 || [6]byte(eth.DstMAC) != clientMAC {
			t.Errorf("FullNAT reply %s:%d -> %s:%d, want VIP:80 -> client:40000", ip.SrcIP, tcp.SrcPort, ip.DstIP, tcp.DstPort)
		}
	}
}

// TestFullNATPortsRunOut: a pool without free ports drops new flows, counted,
// and keeps carrying the ones it has.
func TestFullNATPortsRunOut(t *testing.T) {
	r := rigFor(t, MethodFullNAT, 8080, false)
	svc := r.table.ordered[0]
	svc.lportMin, svc.lportMax = 5000, 5001 // two ports per real server
	syn := func(sport uint16) int {
		return r.fwd.forwardFrame(r.table, frame(t, clientMAC, portMAC0, cip, vip, sport, 80, protoTCP, packet.FlagSYN, nil), 0, 1)
	}
	ok := 0
	for sport := uint16(1); sport <= 8; sport++ {
		if syn(sport) == 1 {
			ok++
		}
	}
	if ok != 4 || r.stats.Drops()["no_local_port"] != 4 {
		t.Fatalf("%d connections made, drops %v; want 4 (2 real servers x 2 ports) and 4 no_local_port", ok, r.stats.Drops())
	}
	for sport := uint16(1); sport <= 8; sport++ {
		ack := frame(t, clientMAC, portMAC0, cip, vip, sport, 80, protoTCP, packet.FlagACK, nil)
		k := conntrack.MakeKey(protoTCP, cip, sport, vip, 80)
		var c conntrack.Conn
		if r.ct.Lookup(&k, &c) && r.fwd.forwardFrame(r.table, ack, 0, 2) != 1 {
			t.Errorf("established connection from port %d lost: %v", sport, r.stats.Drops())
		}
	}
}

// icmpFrame builds an ICMPv4 error from src to dst quoting the first 28
// bytes of the UDP packet qsrc -> qdst.
func icmpFrame(t *testing.T, srcMAC, dstMAC [6]byte, src, dst netip.Addr, typ, code uint8, qsrc, qdst netip.AddrPort) []byte {
	t.Helper()
	qip := &layers.IPv4{Version: 4, TTL: 63, Protocol: layers.IPProtocolUDP, SrcIP: qsrc.Addr().AsSlice(), DstIP: qdst.Addr().AsSlice()}
	qudp := &layers.UDP{SrcPort: layers.UDPPort(qsrc.Port()), DstPort: layers.UDPPort(qdst.Port())}
	_ = qudp.SetNetworkLayerForChecksum(qip)
	qb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(qb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, qip, qudp, gopacket.Payload("hello")); err != nil {
		t.Fatal(err)
	}
	eth := &layers.Ethernet{SrcMAC: srcMAC[:], DstMAC: dstMAC[:], EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code)}
	b := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(b, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, icmp, gopacket.Payload(qb.Bytes()[:28])); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), b.Bytes()...)
}

func TestForwardICMPErrorsNAT(t *testing.T) {
	r := newRig(t, MethodNAT, 8080)
	// A UDP flow client:40000 -> VIP:53, forwarded to rs1:53.
	if out := r.fwd.forwardFrame(r.table, frame(t, clientMAC, portMAC0, cip, vip, 40000, 53, protoUDP, 0, []byte("q")), 0, 1); out != 1 {
		t.Fatalf("flow not created: %v", r.stats.Drops())
	}
	router := netip.MustParseAddr("198.18.0.254")
	// The client's side says the reply VIP:53 -> client was undeliverable:
	// the real server must hear it about its own packet rs1:53 -> client.
	f := icmpFrame(t, clientMAC, portMAC0, router, vip, 3, 3, netip.AddrPortFrom(vip, 53), netip.AddrPortFrom(cip, 40000))
	if out := r.fwd.forwardFrame(r.table, f, 0, 2); out != 1 {
		t.Fatalf("client-side error: out %d drops %v", out, r.stats.Drops())
	}
	var m packet.Meta
	if err := packet.NewParser().Decode(f, &m); err != nil {
		t.Fatal(err)
	}
	emb, err := packet.ParseICMPError(f, &m)
	if err != nil {
		t.Fatalf("translated error does not parse (checksums?): %v", err)
	}
	if m.Dst != rip1 || emb.Src != rip1 || emb.SrcPort != 53 || emb.Dst != cip || [6]byte(f[0:6]) != rsMAC {
		t.Errorf("to the real server: outer dst %s, quoted %s:%d -> %s; want rs1, rs1:53 -> client", m.Dst, emb.Src, emb.SrcPort, emb.Dst)
	}
	// The real server's side says client -> rs1:53 was undeliverable: the
	// client must hear it about its own packet client -> VIP:53.
	f = icmpFrame(t, rsMAC, portMAC1, rip1, cip, 3, 3, netip.AddrPortFrom(cip, 40000), netip.AddrPortFrom(rip1, 53))
	if out := r.fwd.forwardFrame(r.table, f, 1, 3); out != 0 {
		t.Fatalf("server-side error: out %d drops %v", out, r.stats.Drops())
	}
	if err := packet.NewParser().Decode(f, &m); err != nil {
		t.Fatal(err)
	}
	if emb, err = packet.ParseICMPError(f, &m); err != nil {
		t.Fatal(err)
	}
	if m.Src != vip || emb.Dst != vip || emb.DstPort != 53 || [6]byte(f[0:6]) != clientMAC {
		t.Errorf("to the client: outer src %s, quoted dst %s:%d; want the VIP", m.Src, emb.Dst, emb.DstPort)
	}
	// An error about no connection of ours is dropped and counted.
	f = icmpFrame(t, clientMAC, portMAC0, router, vip, 3, 3, netip.AddrPortFrom(vip, 53), netip.AddrPortFrom(cip, 1))
	if out := r.fwd.forwardFrame(r.table, f, 0, 4); out != -1 || r.stats.Drops()["no_conn"] != 1 {
		t.Errorf("unrelated error: out %d drops %v", out, r.stats.Drops())
	}
}

// TestSloppyTCPWithMaglev: two directors with the same real servers and
// mh; a connection begun on one and moved mid-stream to the other (an
// ECMP change) keeps its real server when the second is sloppy.
func TestSloppyTCPWithMaglev(t *testing.T) {
	director := func(sloppy bool) *rig {
		ct, err := conntrack.New(conntrack.Config{Capacity: 4096, MaxDests: 64, Timeouts: conntrack.DefaultTimeouts()})
		if err != nil {
			t.Fatal(err)
		}
		spec := ServiceSpec{VIP: vip, Port: 80, Proto: protoTCP, Scheduler: "mh"}
		for i := 0; i < 5; i++ {
			spec.Reals = append(spec.Reals, RealSpec{Addr: netip.AddrFrom4([4]byte{198, 19, 0, byte(11 + i)}), Port: 80, Weight: 1})
		}
		_, tbl, err := newRegistry(64).build([]ServiceSpec{spec}, nil, func(uint32) int64 { return 0 })
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range tbl.ordered[0].Dests {
			d.hop.store([6]byte{2, 0, 0, 0, 1, byte(i)}, 0)
		}
		stats := newWorkerStats(64)
		fwd := newForwarder([]Port{{Name: "p0", MAC: portMAC0}}, ct, newPersistTable(64), stats)
		fwd.sloppyTCP = sloppy
		return &rig{fwd: fwd, table: tbl, ct: ct, stats: stats}
	}
	a, b, strict := director(false), director(true), director(false)
	for sport := uint16(1000); sport < 1200; sport++ {
		syn := frame(t, clientMAC, portMAC0, cip, vip, sport, 80, protoTCP, packet.FlagSYN, nil)
		if a.fwd.forwardFrame(a.table, syn, 0, 1) != 0 {
			t.Fatalf("SYN dropped: %v", a.stats.Drops())
		}
		first := [6]byte(syn[0:6])
		ack := frame(t, clientMAC, portMAC0, cip, vip, sport, 80, protoTCP, packet.FlagACK, []byte("data"))
		if b.fwd.forwardFrame(b.table, ack, 0, 2) != 0 || [6]byte(ack[0:6]) != first {
			t.Fatalf("flow %d moved to another director went to %x, want %x", sport, ack[0:6], first)
		}
		ack2 := frame(t, clientMAC, portMAC0, cip, vip, sport, 80, protoTCP, packet.FlagACK, []byte("data"))
		if strict.fwd.forwardFrame(strict.table, ack2, 0, 2) != -1 {
			t.Fatal("a director that is not sloppy scheduled a mid-stream packet")
		}
	}
	rst := frame(t, clientMAC, portMAC0, cip, vip, 5000, 80, protoTCP, packet.FlagRST, nil)
	if b.fwd.forwardFrame(b.table, rst, 0, 3) != -1 {
		t.Error("a sloppy director scheduled a RST for an unknown connection")
	}
}

// TestPortReuse: a SYN from the port of a closing connection, or of one
// whose real server was taken out, is scheduled afresh; a retransmitted SYN
// of a connection being set up is not.
func TestPortReuse(t *testing.T) {
	r := newRig(t, MethodDR, 80)
	send := func(sport uint16, flags uint8) [6]byte {
		f := frame(t, clientMAC, portMAC0, cip, vip, sport, 80, protoTCP, flags, nil)
		if r.fwd.forwardFrame(r.table, f, 0, 1) != 0 {
			t.Fatalf("dropped: %v", r.stats.Drops())
		}
		return [6]byte(f[0:6])
	}
	first := send(1000, packet.FlagSYN)
	if again := send(1000, packet.FlagSYN); again != first {
		t.Error("a retransmitted SYN moved to another real server")
	}
	send(1000, packet.FlagACK)
	send(1000, packet.FlagFIN|packet.FlagACK) // the client closes: FIN_WAIT
	if next := send(1000, packet.FlagSYN); next == first {
		t.Error("a new connection from a closing connection's port was not scheduled afresh (rr would move it)")
	}
	// Established on rs1, then rs1 goes to weight 0: a new SYN from that
	// port goes elsewhere.
	r2 := newRig(t, MethodDR, 80)
	r = r2
	first = send(2000, packet.FlagSYN)
	send(2000, packet.FlagACK)
	for _, d := range r.table.ordered[0].Dests {
		if d.hop.word.Load()&0xff == uint64(first[5]) {
			d.Weight = 0
		}
	}
	if next := send(2000, packet.FlagSYN); next == first {
		t.Error("a new connection stayed on a quiescent real server")
	}
}
