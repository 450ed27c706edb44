package dataplane

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/dataplane/packet"
)

// addresses of one family for the partial-checksum rig.
type famAddrs struct {
	vip, client, rip, lip, dir0, dir1 netip.Addr
}

var (
	fam4 = famAddrs{vip, cip, rip1, lip, dirAddr0, dirAddr1}
	fam6 = famAddrs{netip.MustParseAddr("fd00:18::100"), netip.MustParseAddr("fd00:18::1"), netip.MustParseAddr("fd00:19::11"),
		netip.MustParseAddr("fd00:19::2"), netip.MustParseAddr("fd00:18::2"), netip.MustParseAddr("fd00:19::1")}
)

// famRig is a forwarder with a TCP (port 80 to rport) and a UDP (port 53)
// service on a's VIP, each with one real server using method.
func famRig(t testing.TB, a famAddrs, method Method, rport uint16, toa bool) *rig {
	t.Helper()
	return famRigWith(t, a, method, rport, func(s *ServiceSpec) { s.TOA = toa })
}

// famRigWith is famRig with each service spec passed through edit first.
func famRigWith(t testing.TB, a famAddrs, method Method, rport uint16, edit func(*ServiceSpec)) *rig {
	t.Helper()
	ct, err := conntrack.New(conntrack.Config{Capacity: 1024, MaxDests: 64, Timeouts: conntrack.DefaultTimeouts()})
	if err != nil {
		t.Fatal(err)
	}
	if method == MethodDR || method == MethodTUN {
		rport = 80
	}
	specs := []ServiceSpec{
		{VIP: a.vip, Port: 80, Proto: protoTCP, Scheduler: "rr", Reals: []RealSpec{{Addr: a.rip, Port: rport, Weight: 1, Method: method}}},
		{VIP: a.vip, Port: 53, Proto: protoUDP, Scheduler: "rr", Reals: []RealSpec{{Addr: a.rip, Port: 53, Weight: 1, Method: method}}},
	}
	if method == MethodFullNAT {
		for i := range specs {
			specs[i].LocalAddrs = []netip.Addr{a.lip}
		}
	}
	edit(&specs[0])
	_, tbl, err := newRegistry(64).build(specs, nil, func(uint32) int64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range tbl.ordered {
		for _, d := range s.Dests {
			d.hop.store(rsMAC, 1)
		}
	}
	stats := newWorkerStats(64)
	ports := []Port{{Name: "p0", MAC: portMAC0, MTU: 1500}, {Name: "p1", MAC: portMAC1, MTU: 1500}}
	if a.vip.Is4() {
		ports[0].Addr4, ports[1].Addr4 = a.dir0, a.dir1
	} else {
		ports[0].Addr6, ports[1].Addr6 = a.dir0, a.dir1
	}
	return &rig{fwd: newForwarder(ports, ct, newPersistTable(64), stats), table: tbl, ct: ct, stats: stats}
}

// famFrame builds an Ethernet frame of src's family with complete checksums.
func famFrame(t testing.TB, srcMAC, dstMAC [6]byte, src, dst netip.Addr, sport, dport uint16, proto, flags uint8, payload []byte) []byte {
	t.Helper()
	if src.Is4() {
		return frame(t, srcMAC, dstMAC, src, dst, sport, dport, proto, flags, payload)
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(srcMAC[:]), DstMAC: net.HardwareAddr(dstMAC[:]), EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocol(proto), SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	var l4 gopacket.SerializableLayer
	if proto == protoTCP {
		tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1000, Window: 65535,
			SYN: flags&packet.FlagSYN != 0, ACK: flags&packet.FlagACK != 0}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		l4 = tcp
	} else {
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

// partialize writes into f's TCP/UDP checksum what a sender that leaves it
// to the NIC writes: the folded pseudo-header sum (Linux's
// ~csum_tcpudp_magic), computed here word by word.
func partialize(t testing.TB, f []byte) {
	t.Helper()
	var m packet.Meta
	if err := packet.NewParser().Decode(f, &m); err != nil {
		t.Fatal(err)
	}
	addrs := f[m.L3Off+12 : m.L3Off+20]
	if m.IPv6 {
		addrs = f[m.L3Off+8 : m.L3Off+40]
	}
	n, off := m.Length-m.L4Off, 16
	if m.Proto == protoUDP {
		n, off = int(binary.BigEndian.Uint16(f[m.L4Off+4:])), 6
	}
	sum := uint32(m.Proto) + uint32(n)
	for i := 0; i < len(addrs); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(addrs[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(f[m.L4Off+off:], uint16(sum))
}

// wireValid decodes a forwarded frame as its receiver would, after taking
// off a tunnel, and reports whether its IPv4 header and TCP/UDP checksums
// verify.
func wireValid(t testing.TB, f []byte, tunnelled bool) bool {
	t.Helper()
	if tunnelled {
		inner, err := packet.DecapIPIP(append([]byte(nil), f...))
		if err != nil {
			t.Fatalf("decapsulate: %v", err)
		}
		f = inner
	}
	var m packet.Meta
	if err := packet.NewParser().Decode(f, &m); err != nil {
		return false // Decode verifies the IPv4 header checksum
	}
	return packet.L4ChecksumValid(f, &m)
}

// TestForwardPartialChecksums: in every mode, both families, TCP and UDP,
// what a namespace or container sends (checksums left to the NIC) leaves
// the director with a checksum its receiver accepts, in both directions
// where the director carries both, and each completion is counted.
func TestForwardPartialChecksums(t *testing.T) {
	type mode struct {
		name   string
		method Method
		toa    bool
	}
	modes := []mode{{"dr", MethodDR, false}, {"nat", MethodNAT, false}, {"tun", MethodTUN, false},
		{"fullnat", MethodFullNAT, false}, {"fullnat+toa", MethodFullNAT, true}}
	for _, md := range modes {
		for _, a := range []famAddrs{fam4, fam6} {
			for _, proto := range []uint8{protoTCP, protoUDP} {
				name := fmt.Sprintf("%s/v6=%v/proto%d", md.name, a.vip.Is6(), proto)
				t.Run(name, func(t *testing.T) {
					r := famRig(t, a, md.method, 8080, md.toa)
					dport, flags := uint16(80), uint8(packet.FlagSYN)
					if proto == protoUDP {
						dport, flags = 53, 0
					}
					payload := make([]byte, 300)
					for i := range payload {
						payload[i] = byte(i * 13)
					}
					f := famFrame(t, clientMAC, portMAC0, a.client, a.vip, 40000, dport, proto, flags, payload)
					partialize(t, f)
					if wireValid(t, f, false) {
						t.Fatal("test bug: the partial frame verifies as it is")
					}
					buf := withHeadroom(f, 128)
					out, off, n := r.fwd.forward(r.table, buf, 128, len(f), 0, 1)
					if out != 1 {
						t.Fatalf("forwarded to port %d, drops %v", out, r.stats.Drops())
					}
					if !wireValid(t, buf[off:off+n], md.method == MethodTUN) {
						t.Errorf("forwarded frame's checksums do not verify")
					}
					if got := r.stats.CsumCompleted.Load(); got != 1 {
						t.Errorf("csum_completed %d, want 1", got)
					}
					if md.method != MethodNAT && md.method != MethodFullNAT {
						return
					}
					// The reply, as the real server's stack leaves it.
					var m packet.Meta
					if err := packet.NewParser().Decode(buf[off:off+n], &m); err != nil {
						t.Fatal(err)
					}
					rflags := uint8(0)
					if proto == protoTCP {
						rflags = packet.FlagSYN | packet.FlagACK
					}
					reply := famFrame(t, rsMAC, portMAC1, m.Dst, m.Src, m.DstPort, m.SrcPort, proto, rflags, payload[:77])
					partialize(t, reply)
					if out := r.fwd.forwardFrame(r.table, reply, 1, 2); out != 0 {
						t.Fatalf("reply forwarded to port %d, drops %v", out, r.stats.Drops())
					}
					if !wireValid(t, reply, false) {
						t.Errorf("reply's checksums do not verify")
					}
					if got := r.stats.CsumCompleted.Load(); got != 2 {
						t.Errorf("csum_completed %d after the reply, want 2", got)
					}
				})
			}
		}
	}
}

// TestForwardCompleteChecksumsUntouched: frames whose checksums are
// complete are not counted, and a corrupt TCP checksum still fails at the
// real server after NAT: the director does not launder it.
func TestForwardCompleteChecksumsUntouched(t *testing.T) {
	for _, a := range []famAddrs{fam4, fam6} {
		r := famRig(t, a, MethodNAT, 8080, false)
		f := famFrame(t, clientMAC, portMAC0, a.client, a.vip, 40000, 80, protoTCP, packet.FlagSYN, []byte("payload"))
		if out := r.fwd.forwardFrame(r.table, f, 0, 1); out != 1 || !wireValid(t, f, false) {
			t.Fatalf("v6=%v: complete frame: out %d, valid %v", a.vip.Is6(), out, wireValid(t, f, false))
		}
		bad := famFrame(t, clientMAC, portMAC0, a.client, a.vip, 40001, 80, protoTCP, packet.FlagSYN, []byte("payload"))
		var m packet.Meta
		if err := packet.NewParser().Decode(bad, &m); err != nil {
			t.Fatal(err)
		}
		bad[m.L4Off+16] ^= 0x40
		if out := r.fwd.forwardFrame(r.table, bad, 0, 1); out != 1 {
			t.Fatalf("v6=%v: corrupt frame dropped: %v", a.vip.Is6(), r.stats.Drops())
		}
		if wireValid(t, bad, false) {
			t.Errorf("v6=%v: a corrupt checksum was laundered into a valid one", a.vip.Is6())
		}
		if got := r.stats.CsumCompleted.Load(); got != 0 {
			t.Errorf("v6=%v: csum_completed %d for complete frames, want 0", a.vip.Is6(), got)
		}
	}
}

// TestForwardPartialTooBig: the ICMP error a tunnel's path MTU makes the
// director send quotes the client's packet as completed, so the quote
// reads as a packet its receiver would have accepted (ICMPv6 quotes the
// packet's start, the UDP header with its checksum included).
func TestForwardPartialTooBig(t *testing.T) {
	r := famRig(t, fam6, MethodTUN, 80, false)
	f := famFrame(t, clientMAC, portMAC0, fam6.client, fam6.vip, 40000, 53, protoUDP, 0, make([]byte, 1500-40-8))
	partialize(t, f)
	buf := withHeadroom(f, 128)
	if out, _, _ := r.fwd.forward(r.table, buf, 128, len(f), 0, 1); out != -1 || r.fwd.replyLen == 0 {
		t.Fatalf("out %d reply %d, want a packet-too-big", out, r.fwd.replyLen)
	}
	completed := buf[128:]
	var m packet.Meta
	if err := packet.NewParser().Decode(completed, &m); err != nil {
		t.Fatal(err)
	}
	if !packet.L4ChecksumValid(completed, &m) {
		t.Fatalf("the client's packet was not completed before it was quoted")
	}
	quote := r.fwd.replyBuf[14+40+8 : r.fwd.replyLen]
	if got, want := binary.BigEndian.Uint16(quote[40+6:]), binary.BigEndian.Uint16(completed[m.L4Off+6:]); got != want {
		t.Errorf("quoted UDP checksum %#04x, want the completed %#04x", got, want)
	}
}

// TestVerifyChecksums: with verify on, a frame that arrives corrupt is
// counted as such and not blamed on the director; a frame the director
// would send broken is counted and sampled for the log; good frames,
// partial ones included, count nothing.
func TestVerifyChecksums(t *testing.T) {
	r := famRig(t, fam4, MethodNAT, 8080, false)
	r.fwd.verify = true
	send := func(f []byte) int {
		t.Helper()
		out, off, n := r.fwd.forward(r.table, f, 0, len(f), 0, 1)
		if out >= 0 {
			r.fwd.verifySent(f[off : off+n])
		}
		return out
	}
	good := famFrame(t, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, packet.FlagSYN, []byte("payload"))
	partialize(t, good)
	if send(good) != 1 {
		t.Fatalf("not forwarded: %v", r.stats.Drops())
	}
	bad := famFrame(t, clientMAC, portMAC0, cip, vip, 40001, 80, protoTCP, packet.FlagSYN, []byte("payload"))
	bad[len(bad)-1] ^= 0xff
	if send(bad) != 1 {
		t.Fatalf("not forwarded: %v", r.stats.Drops())
	}
	if in, out := r.stats.BadCsumIn.Load(), r.stats.BadCsumOut.Load(); in != 1 || out != 0 {
		t.Errorf("bad in %d out %d, want 1 and 0", in, out)
	}
	// What a bug in a rewrite would send.
	broken := famFrame(t, portMAC1, rsMAC, cip, rip1, 40002, 8080, protoTCP, packet.FlagACK, []byte("payload"))
	broken[len(broken)-2] ^= 0x01
	r.fwd.badIn = false
	r.fwd.verifySent(broken)
	if got := r.stats.BadCsumOut.Load(); got != 1 {
		t.Errorf("bad out %d, want 1", got)
	}
	select {
	case s := <-r.stats.badSent:
		if s.len != len(broken) || s.head[0] != broken[0] {
			t.Errorf("sample %d bytes, want the broken frame's %d", s.len, len(broken))
		}
	default:
		t.Error("no sample of the broken frame for the log")
	}
}
