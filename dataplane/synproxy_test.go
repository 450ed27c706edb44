package dataplane

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xvs-lb/xvs/dataplane/packet"
	"github.com/xvs-lb/xvs/dataplane/syncookie"
)

// seg is a TCP segment for tcpFrame.
type seg struct {
	src, dst       netip.AddrPort
	seq, ack       uint32
	flags          uint8
	window         uint16
	opts           []layers.TCPOption
	payload        []byte
	srcMAC, dstMAC [6]byte
}

// tcpFrame builds s as an Ethernet frame with complete checksums.
func tcpFrame(t testing.TB, s seg) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(s.srcMAC[:]), DstMAC: net.HardwareAddr(s.dstMAC[:]), EthernetType: layers.EthernetTypeIPv4}
	var ip interface {
		gopacket.SerializableLayer
		gopacket.NetworkLayer
	}
	if s.src.Addr().Is4() {
		ip = &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: s.src.Addr().AsSlice(), DstIP: s.dst.Addr().AsSlice()}
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: s.src.Addr().AsSlice(), DstIP: s.dst.Addr().AsSlice()}
	}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(s.src.Port()), DstPort: layers.TCPPort(s.dst.Port()), Seq: s.seq, Ack: s.ack, Window: s.window,
		SYN: s.flags&packet.FlagSYN != 0, ACK: s.flags&packet.FlagACK != 0, RST: s.flags&packet.FlagRST != 0, PSH: s.flags&packet.FlagPSH != 0,
		FIN: s.flags&packet.FlagFIN != 0, Options: s.opts}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(s.payload)); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// decodeTCP checks a frame the forwarder sent (checksums its receiver
// accepts) and returns its IP addresses and TCP layer.
func decodeTCP(t *testing.T, what string, f []byte) (src, dst netip.AddrPort, tcp *layers.TCP) {
	t.Helper()
	if !wireValid(t, f, false) {
		t.Fatalf("%s: checksums do not verify: %x", what, f)
	}
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	tcp, _ = p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if tcp == nil || p.NetworkLayer() == nil {
		t.Fatalf("%s: no TCP in %v", what, p)
	}
	s, _ := netip.AddrFromSlice(p.NetworkLayer().NetworkFlow().Src().Raw())
	d, _ := netip.AddrFromSlice(p.NetworkLayer().NetworkFlow().Dst().Raw())
	return netip.AddrPortFrom(s, uint16(tcp.SrcPort)), netip.AddrPortFrom(d, uint16(tcp.DstPort)), tcp
}

func synOpts(mss uint16, ws uint8, sack bool) []layers.TCPOption {
	o := []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{byte(mss >> 8), byte(mss)}},
		{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{ws}}}
	if sack {
		o = append(o, layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2})
	}
	return o
}

func optsOf(tcp *layers.TCP) packet.SYNOptions {
	return packet.ParseSYNOptions(tcp.Contents[20 : tcp.DataOffset*4])
}

// TestSynProxyHandshake walks a proxied connection through the forwarder
// in NAT and FullNAT, both families: the SYN is answered with a cookie and
// no entry, a forged ACK is dropped, the good ACK opens the connection to
// the real server with the client's options, the real server's SYN-ACK is
// acknowledged and its window passed to the client, and then sequence
// numbers, SACK blocks and windows are translated both ways.
func TestSynProxyHandshake(t *testing.T) {
	for _, method := range []Method{MethodNAT, MethodFullNAT} {
		for _, a := range []famAddrs{fam4, fam6} {
			t.Run(method.String()+"/"+map[bool]string{true: "v4", false: "v6"}[a.vip.Is4()], func(t *testing.T) {
				testSynProxyHandshake(t, method, a)
			})
		}
	}
}

func testSynProxyHandshake(t *testing.T, method Method, a famAddrs) {
	r := famRigWith(t, a, method, 8080, func(s *ServiceSpec) { s.SynProxy, s.TOA = true, method == MethodFullNAT })
	jar, err := syncookie.New(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	r.fwd.cookies = jar
	client := netip.AddrPortFrom(a.client, 40000)
	virtual := netip.AddrPortFrom(a.vip, 80)
	server := netip.AddrPortFrom(a.rip, 8080)
	send := func(f []byte, in int) (out int, got []byte) {
		t.Helper()
		buf := withHeadroom(f, 128) // its tailroom is a SYN-ACK's room, as a UMEM chunk's
		out, off, n := r.fwd.forward(r.table, buf, 128, len(f), in, 1)
		if out < 0 {
			return out, nil
		}
		return out, buf[off : off+n]
	}

	// The SYN: answered from the VIP with a cookie, a zero window and the
	// options the cookie keeps; nothing is created.
	out, got := send(tcpFrame(t, seg{src: client, dst: virtual, seq: 1000, flags: packet.FlagSYN, window: 64240,
		opts: synOpts(1460, 6, true), srcMAC: clientMAC, dstMAC: portMAC0}), 0)
	if out != 0 {
		t.Fatalf("SYN: out %d, drops %v", out, r.stats.Drops())
	}
	src, dst, synack := decodeTCP(t, "SYN-ACK", got)
	if src != virtual || dst != client || !synack.SYN || !synack.ACK || synack.Ack != 1001 || synack.Window != 0 {
		t.Fatalf("SYN-ACK %s -> %s SYN %v ACK %v ack %d window %d", src, dst, synack.SYN, synack.ACK, synack.Ack, synack.Window)
	}
	wantMSS := uint16(1460)
	if a.vip.Is6() {
		wantMSS = 1440
	}
	if o := optsOf(synack); o != (packet.SYNOptions{MSS: wantMSS, WScale: proxyWScale, SACKPerm: true}) {
		t.Errorf("SYN-ACK options %+v", o)
	}
	if [6]byte(got[0:6]) != clientMAC || [6]byte(got[6:12]) != portMAC0 {
		t.Errorf("SYN-ACK MACs %x -> %x", got[6:12], got[0:6])
	}
	if n := r.ct.Len(); n != 0 {
		t.Fatalf("%d connections after a SYN, want 0", n)
	}
	cookie := synack.Seq

	// A forged ACK (another cookie) is dropped and counted.
	if out, _ := send(tcpFrame(t, seg{src: client, dst: virtual, seq: 1001, ack: cookie + 2, flags: packet.FlagACK, window: 502,
		srcMAC: clientMAC, dstMAC: portMAC0}), 0); out != -1 || r.stats.Drops()["bad_cookie"] != 1 {
		t.Fatalf("forged ACK: out %d, drops %v", out, r.stats.Drops())
	}

	// The good ACK: the connection opens with a SYN to the real server.
	out, got = send(tcpFrame(t, seg{src: client, dst: virtual, seq: 1001, ack: cookie + 1, flags: packet.FlagACK, window: 502,
		srcMAC: clientMAC, dstMAC: portMAC0}), 0)
	if out != 1 {
		t.Fatalf("ACK: out %d, drops %v", out, r.stats.Drops())
	}
	src, dst, syn := decodeTCP(t, "SYN to the real server", got)
	wantSrc := client
	if method == MethodFullNAT {
		wantSrc = netip.AddrPortFrom(a.lip, src.Port())
	}
	if src != wantSrc || dst != server || !syn.SYN || syn.ACK || syn.Seq != 1000 {
		t.Fatalf("SYN %s -> %s SYN %v ACK %v seq %d", src, dst, syn.SYN, syn.ACK, syn.Seq)
	}
	if syn.Window != 502<<6 { // the ACK's window, scaled by the client's shift (6): a SYN's is not
		t.Errorf("SYN window %d, want %d", syn.Window, 502<<6)
	}
	if o := optsOf(syn); o != (packet.SYNOptions{MSS: wantMSS, WScale: 6, SACKPerm: true}) {
		t.Errorf("SYN options %+v", o)
	}
	if method == MethodFullNAT {
		// TOA, on the SYN that is longer than the ACK it was.
		toa := false
		for _, o := range syn.Options {
			toa = toa || o.OptionType == packet.TCPOptTOA
		}
		if !toa || r.stats.Drops()["no_toa_room"] != 0 {
			t.Errorf("SYN without TOA (options %v, drops %v)", syn.Options, r.stats.Drops())
		}
	}
	if r.ct.Len() != 1 || r.stats.SynProxyOpened.Load() != 1 {
		t.Fatalf("%d connections, %d opened after the ACK", r.ct.Len(), r.stats.SynProxyOpened.Load())
	}
	local := src // where the real server answers

	// Client data before the real server answered: dropped (sent again).
	if out, _ := send(tcpFrame(t, seg{src: client, dst: virtual, seq: 1001, ack: cookie + 1, flags: packet.FlagACK | packet.FlagPSH,
		window: 502, payload: []byte("early"), srcMAC: clientMAC, dstMAC: portMAC0}), 0); out != -1 || r.stats.Drops()["proxy_pending"] != 1 {
		t.Fatalf("early data: out %d, drops %v", out, r.stats.Drops())
	}

	// The real server's SYN-ACK: acknowledged to it, and its window told
	// to the client.
	var serverISN uint32 = 0xfffffff0 // wraps: the delta is modular
	out, got = send(tcpFrame(t, seg{src: server, dst: local, seq: serverISN, ack: 1001, flags: packet.FlagSYN | packet.FlagACK, window: 29200,
		opts: synOpts(1460, 9, true), srcMAC: rsMAC, dstMAC: portMAC1}), 1)
	if out != 1 {
		t.Fatalf("server SYN-ACK: out %d, drops %v", out, r.stats.Drops())
	}
	src, dst, ack := decodeTCP(t, "ACK to the real server", got)
	if src != local || dst != server || ack.SYN || !ack.ACK || ack.Seq != 1001 || ack.Ack != serverISN+1 || ack.Window != 502 {
		t.Fatalf("ACK %s -> %s seq %d ack %d window %d", src, dst, ack.Seq, ack.Ack, ack.Window)
	}
	if [6]byte(got[0:6]) != rsMAC {
		t.Errorf("ACK to %x, want the real server's MAC", got[0:6])
	}
	if r.fwd.replyLen == 0 || r.fwd.replyPort != 0 {
		t.Fatalf("no window update for the client (len %d port %d)", r.fwd.replyLen, r.fwd.replyPort)
	}
	src, dst, upd := decodeTCP(t, "window update", r.fwd.replyBuf[:r.fwd.replyLen])
	if src != virtual || dst != client || upd.SYN || !upd.ACK || upd.Seq != cookie+1 || upd.Ack != 1001 || upd.Window != 29200>>proxyWScale {
		t.Fatalf("window update %s -> %s seq %d ack %d window %d", src, dst, upd.Seq, upd.Ack, upd.Window)
	}
	if [6]byte(r.fwd.replyBuf[0:6]) != clientMAC {
		t.Errorf("window update to %x, want the client's MAC", r.fwd.replyBuf[0:6])
	}

	// Client data with a SACK block: acknowledgment and block in the real
	// server's numbering.
	sack := make([]byte, 8)
	binary.BigEndian.PutUint32(sack, cookie+101)
	binary.BigEndian.PutUint32(sack[4:], cookie+201)
	out, got = send(tcpFrame(t, seg{src: client, dst: virtual, seq: 1001, ack: cookie + 1, flags: packet.FlagACK | packet.FlagPSH, window: 502,
		opts: []layers.TCPOption{{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindSACK, OptionLength: 10, OptionData: sack}},
		payload: []byte("GET / HTTP/1.0\r\n\r\n"), srcMAC: clientMAC, dstMAC: portMAC0}), 0)
	if out != 1 {
		t.Fatalf("client data: out %d, drops %v", out, r.stats.Drops())
	}
	src, dst, data := decodeTCP(t, "client data", got)
	if src != local || dst != server || data.Seq != 1001 || data.Ack != serverISN+1 {
		t.Fatalf("client data %s -> %s seq %d ack %d", src, dst, data.Seq, data.Ack)
	}
	var blocks []uint32
	for _, o := range data.Options {
		if o.OptionType == layers.TCPOptionKindSACK {
			blocks = append(blocks, binary.BigEndian.Uint32(o.OptionData), binary.BigEndian.Uint32(o.OptionData[4:]))
		}
	}
	if len(blocks) != 2 || blocks[0] != serverISN+101 || blocks[1] != serverISN+201 {
		t.Errorf("SACK block %v, want [%d %d]", blocks, serverISN+101, serverISN+201)
	}

	// The real server's reply: in the proxy's numbering, its window
	// rescaled from its shift (9) to the one the client was offered (7).
	out, got = send(tcpFrame(t, seg{src: server, dst: local, seq: serverISN + 1, ack: 1019, flags: packet.FlagACK | packet.FlagPSH, window: 100,
		payload: []byte("HTTP/1.0 200 OK\r\n\r\n"), srcMAC: rsMAC, dstMAC: portMAC1}), 1)
	if out != 0 {
		t.Fatalf("server data: out %d, drops %v", out, r.stats.Drops())
	}
	src, dst, reply := decodeTCP(t, "server data", got)
	if src != virtual || dst != client || reply.Seq != cookie+1 || reply.Ack != 1019 || reply.Window != 100<<(9-proxyWScale) {
		t.Fatalf("server data %s -> %s seq %d ack %d window %d", src, dst, reply.Seq, reply.Ack, reply.Window)
	}
	if string(reply.Payload) != "HTTP/1.0 200 OK\r\n\r\n" {
		t.Errorf("payload %q", reply.Payload)
	}
	// Never offered to the XDP fast path.
	if f := r.fwd.cand; f.ok {
		t.Error("a proxied connection is a fast-path candidate")
	}
}

// TestSynProxyOff: a service without syn_proxy forwards SYNs as before.
func TestSynProxyOff(t *testing.T) {
	r := famRig(t, fam4, MethodNAT, 8080, false)
	jar, _ := syncookie.New(nil, 0)
	r.fwd.cookies = jar
	f := tcpFrame(t, seg{src: netip.AddrPortFrom(fam4.client, 40000), dst: netip.AddrPortFrom(fam4.vip, 80), seq: 1, flags: packet.FlagSYN,
		srcMAC: clientMAC, dstMAC: portMAC0})
	if out := r.fwd.forwardFrame(r.table, f, 0, 1); out != 1 || r.stats.SynProxySynAcks.Load() != 0 || r.ct.Len() != 1 {
		t.Fatalf("out %d, syn-acks %d, connections %d", out, r.stats.SynProxySynAcks.Load(), r.ct.Len())
	}
}

// TestSynProxyRefused: syn_proxy is refused where it cannot work.
func TestSynProxyRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		proto  uint8
		method Method
		group  bool
	}{{"dr", protoTCP, MethodDR, false}, {"tun", protoTCP, MethodTUN, false}, {"udp", protoUDP, MethodNAT, false}, {"udp group", protoUDP, MethodNAT, true}} {
		spec := ServiceSpec{VIP: vip, Port: 80, Proto: tc.proto, Scheduler: "rr", SynProxy: true,
			Reals: []RealSpec{{Addr: rip1, Port: 80, Weight: 1, Method: tc.method}}}
		if tc.group {
			spec.Mark, spec.Matches = 1, []Match{{VIP: vip, FromPort: 80, ToPort: 80, Proto: protoTCP}, {VIP: vip, FromPort: 53, ToPort: 53, Proto: tc.proto}}
		}
		if _, _, err := newRegistry(64).build([]ServiceSpec{spec}, nil, func(uint32) int64 { return 0 }); err == nil {
			t.Errorf("%s: syn_proxy accepted", tc.name)
		}
	}
}

// proxyHandshake opens a proxied connection from client:40000 to the
// rig's VIP:80 through fwd, the real server answering, for benchmarks of
// its established frames.
func proxyHandshake(b *testing.B, r *rig, fwd *forwarder, client netip.Addr) {
	b.Helper()
	send := func(f []byte, in int) []byte {
		buf := make([]byte, 128+len(f), 256+len(f))
		copy(buf[128:], f)
		out, off, n := fwd.forward(r.table, buf, 128, len(f), in, 1)
		if out < 0 {
			b.Fatalf("handshake: dropped: %v", fwd.stats.Drops())
		}
		return buf[off : off+n]
	}
	c, v := netip.AddrPortFrom(client, 40000), netip.AddrPortFrom(vip, 80)
	synack := send(tcpFrame(b, seg{src: c, dst: v, seq: 999, flags: packet.FlagSYN, window: 65535, opts: synOpts(1460, 7, true),
		srcMAC: clientMAC, dstMAC: portMAC0}), 0)
	var m packet.Meta
	if err := packet.NewParser().Decode(synack, &m); err != nil {
		b.Fatal(err)
	}
	cookie := packet.TCP(synack[m.L4Off:]).SequenceNumber()
	syn := send(tcpFrame(b, seg{src: c, dst: v, seq: 1000, ack: cookie + 1, flags: packet.FlagACK, window: 502,
		srcMAC: clientMAC, dstMAC: portMAC0}), 0)
	if err := packet.NewParser().Decode(syn, &m); err != nil {
		b.Fatal(err)
	}
	send(tcpFrame(b, seg{src: netip.AddrPortFrom(m.Dst, m.DstPort), dst: netip.AddrPortFrom(m.Src, m.SrcPort), seq: 5000, ack: 1000,
		flags: packet.FlagSYN | packet.FlagACK, window: 29200, opts: synOpts(1460, 7, true), srcMAC: rsMAC, dstMAC: portMAC1}), 1)
}

// TestSynProxyLostACK: a client whose handshake ACK was lost probes the
// zero window with a segment one below its next sequence number (its ISN);
// that opens the connection with the right ISN.
func TestSynProxyLostACK(t *testing.T) {
	r := famRigWith(t, fam4, MethodNAT, 8080, func(s *ServiceSpec) { s.SynProxy = true })
	jar, _ := syncookie.New(nil, 0)
	r.fwd.cookies = jar
	client, virtual := netip.AddrPortFrom(fam4.client, 40000), netip.AddrPortFrom(fam4.vip, 80)
	f := tcpFrame(t, seg{src: client, dst: virtual, seq: 1000, flags: packet.FlagSYN, opts: synOpts(1460, 7, true), srcMAC: clientMAC, dstMAC: portMAC0})
	f = append(f, make([]byte, 64)...)[:len(f)]
	out, off, n := r.fwd.forward(r.table, f, 0, len(f), 0, 1)
	if out != 0 {
		t.Fatalf("SYN: out %d", out)
	}
	_, _, synack := decodeTCP(t, "SYN-ACK", f[off:off+n])
	probe := tcpFrame(t, seg{src: client, dst: virtual, seq: 1000, ack: synack.Seq + 1, flags: packet.FlagACK, window: 502, srcMAC: clientMAC, dstMAC: portMAC0})
	probe = append(probe, make([]byte, 64)...)[:len(probe)]
	out, off, n = r.fwd.forward(r.table, probe, 0, len(probe), 0, 1)
	if out != 1 {
		t.Fatalf("probe: out %d, drops %v", out, r.stats.Drops())
	}
	if _, _, syn := decodeTCP(t, "SYN", probe[off:off+n]); !syn.SYN || syn.Seq != 1000 {
		t.Fatalf("SYN to the real server: SYN %v seq %d, want the client's ISN 1000", syn.SYN, syn.Seq)
	}
}
