package xsk

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/internal/netnstest"
)

// Helpers for the tests that need root: network namespaces joined by veth
// pairs, a minimal XDP redirect program, and frame parsing.

func needRoot(t testing.TB) {
	t.Helper()
	netnstest.NeedRoot(t, "network namespaces and AF_XDP")
}

func ipCmd(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// addNetns creates a namespace deleted when the test ends, IPv6 off so no
// router solicitations or DAD show up on the sockets.
func addNetns(t testing.TB, name string) {
	t.Helper()
	netnstest.Add(t, name)
	out, err := exec.Command("ip", "netns", "exec", name, "sysctl", "-qw",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1").CombinedOutput()
	if err != nil {
		t.Fatalf("disable IPv6 in %s: %v: %s", name, err, out)
	}
}

// vethPair is one veth pair: the director end in dirNS, the peer end in peerNS.
type vethPair struct {
	dirNS, peerNS   string
	dirIf, peerIf   string
	dirIndex        int
	peerIndex       int
	dirMAC, peerMAC net.HardwareAddr
	dirIP, peerIP   netip.Addr
}

// addVeth creates a veth pair with fixed MACs (02:00:00:00:n:1 and :2),
// addresses dirIP/24 and peerIP/24, and a permanent neighbour entry for
// dirIP in the peer, so the peer never needs ARP answered.
func addVeth(t testing.TB, n byte, dirNS, dirIf, dirIP, peerNS, peerIf, peerIP string) *vethPair {
	t.Helper()
	p := &vethPair{
		dirNS: dirNS, peerNS: peerNS, dirIf: dirIf, peerIf: peerIf,
		dirMAC:  net.HardwareAddr{2, 0, 0, 0, n, 1},
		peerMAC: net.HardwareAddr{2, 0, 0, 0, n, 2},
		dirIP:   netip.MustParseAddr(dirIP),
		peerIP:  netip.MustParseAddr(peerIP),
	}
	ipCmd(t, "-n", dirNS, "link", "add", dirIf, "address", p.dirMAC.String(), "type", "veth",
		"peer", "name", peerIf, "address", p.peerMAC.String(), "netns", peerNS)
	ipCmd(t, "-n", dirNS, "addr", "add", dirIP+"/24", "dev", dirIf)
	ipCmd(t, "-n", peerNS, "addr", "add", peerIP+"/24", "dev", peerIf)
	ipCmd(t, "-n", dirNS, "link", "set", dirIf, "up")
	ipCmd(t, "-n", peerNS, "link", "set", peerIf, "up")
	ipCmd(t, "-n", peerNS, "neigh", "replace", dirIP, "lladdr", p.dirMAC.String(), "dev", peerIf, "nud", "permanent")
	// The peer stands for a host behind a real NIC, whose frames arrive
	// with complete checksums: these tests check the socket layer, which
	// copies frames verbatim, and veth's default (checksums left partial
	// for a NIC, CHECKSUM_PARTIAL) would fail the reflected copies at the
	// receiver. The director's own completion of partial checksums is
	// tested in dataplane and e2e.
	ipCmd(t, "netns", "exec", peerNS, "ethtool", "-K", peerIf, "tx", "off")
	netnstest.In(t, dirNS, func() { p.dirIndex = ifindex(t, dirIf) })
	netnstest.In(t, peerNS, func() { p.peerIndex = ifindex(t, peerIf) })
	return p
}

func ifindex(t testing.TB, name string) int {
	t.Helper()
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return ifi.Index
}

// redirectProg builds r0 = bpf_redirect_map(&xsks, ctx->rx_queue_index,
// XDP_PASS) over a fresh XSKMAP.
func redirectProg(t testing.TB) (*ebpf.Program, *ebpf.Map) {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 64})
	if err != nil {
		t.Fatalf("XSKMAP: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.XDP,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, 16, asm.Word), // xdp_md.rx_queue_index
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Imm(asm.R3, 2), // XDP_PASS when the slot is empty
			asm.FnRedirectMap.Call(),
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatalf("redirect program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog, m
}

func passProg(t testing.TB) *ebpf.Program {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.XDP,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()},
	})
	if err != nil {
		t.Fatalf("pass program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}

// attachXDP attaches prog to ifindex in ns, in driver mode if the device
// allows, else generic. Driver mode on the receiving veth is also what gives
// it the NAPI that frames sent by AF_XDP need.
func attachXDP(t testing.TB, ns string, ifidx int, prog *ebpf.Program) {
	t.Helper()
	netnstest.In(t, ns, func() {
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifidx, Flags: link.XDPDriverMode})
		if err != nil {
			l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifidx, Flags: link.XDPGenericMode})
		}
		if err != nil {
			t.Fatalf("attach XDP to ifindex %d in %s: %v", ifidx, ns, err)
		}
		t.Cleanup(func() { l.Close() })
	})
}

func putXSK(t testing.TB, m *ebpf.Map, s *Socket) {
	t.Helper()
	if err := m.Put(uint32(s.Queue()), uint32(s.FD())); err != nil {
		t.Fatalf("XSKMAP put queue %d: %v", s.Queue(), err)
	}
}

func listenUDP(t testing.TB, ns string, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	netnstest.In(t, ns, func() {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// udpFrame is a parsed Ethernet/IPv4/UDP frame; offsets index the frame.
type udpFrame struct {
	dst, src net.HardwareAddr
	ipSrc    netip.Addr
	ipDst    netip.Addr
	sport    uint16
	dport    uint16
	payload  []byte
	ipOff    int
	l4Off    int
}

func parseUDP(b []byte) (udpFrame, bool) {
	var f udpFrame
	if len(b) < 14+20+8 || binary.BigEndian.Uint16(b[12:]) != 0x0800 {
		return f, false
	}
	ihl := int(b[14]&0x0f) * 4
	if b[14]>>4 != 4 || ihl < 20 || b[14+9] != unix.IPPROTO_UDP || len(b) < 14+ihl+8 {
		return f, false
	}
	f.dst, f.src = net.HardwareAddr(b[0:6]), net.HardwareAddr(b[6:12])
	f.ipOff, f.l4Off = 14, 14+ihl
	f.ipSrc = netip.AddrFrom4([4]byte(b[26:30]))
	f.ipDst = netip.AddrFrom4([4]byte(b[30:34]))
	f.sport = binary.BigEndian.Uint16(b[f.l4Off:])
	f.dport = binary.BigEndian.Uint16(b[f.l4Off+2:])
	ulen := int(binary.BigEndian.Uint16(b[f.l4Off+4:]))
	if ulen < 8 || f.l4Off+ulen > len(b) {
		return f, false
	}
	f.payload = b[f.l4Off+8 : f.l4Off+ulen]
	return f, true
}

// swapInPlace turns a UDP frame into its reply: MACs, addresses and ports
// swapped. Both checksums stay valid, as every swapped pair is summed alike.
func swapInPlace(b []byte, f udpFrame) {
	var t [6]byte
	copy(t[:], b[0:6])
	copy(b[0:6], b[6:12])
	copy(b[6:12], t[:])
	var a [4]byte
	copy(a[:], b[26:30])
	copy(b[26:30], b[30:34])
	copy(b[30:34], a[:])
	var p [2]byte
	copy(p[:], b[f.l4Off:f.l4Off+2])
	copy(b[f.l4Off:f.l4Off+2], b[f.l4Off+2:f.l4Off+4])
	copy(b[f.l4Off+2:f.l4Off+4], p[:])
}

// sendUDP sends n datagrams "<tag>-<i>" from c to dst.
func sendUDP(t testing.TB, c *net.UDPConn, dst netip.AddrPort, tag string, n int) {
	t.Helper()
	for i := range n {
		if _, err := c.WriteToUDPAddrPort(fmt.Appendf(nil, "%s-%d", tag, i), dst); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
}

// readUDP collects datagrams on c until want distinct payloads arrived or
// the deadline passes, and returns them with their sources.
func readUDP(c *net.UDPConn, want int, timeout time.Duration) (map[string]netip.AddrPort, error) {
	got := make(map[string]netip.AddrPort, want)
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return got, err
	}
	buf := make([]byte, 2048)
	for len(got) < want {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return got, err
		}
		got[string(buf[:n])] = from
	}
	return got, nil
}
