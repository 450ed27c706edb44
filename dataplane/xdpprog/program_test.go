package xdpprog

import (
	"encoding/binary"
	"github.com/xvs-lb/xvs/dataplane/bpf"
	"os"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
)

// loadProgram loads a Program for the test and closes it afterwards.
func loadProgram(t *testing.T) *Program {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root")
	}
	p, err := Load(Config{MaxEntries: 64})
	if err != nil {
		t.Fatalf("Load: %+v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// xskSocket opens an AF_XDP socket to put in the XSKMAP. The map accepts a
// socket that is not bound yet, and BPF_PROG_TEST_RUN only reports the
// redirect without delivering, so no UMEM or rings are needed.
func xskSocket(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("AF_XDP socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func (s Stats) sub(o Stats) Stats {
	return Stats{
		Passed:      s.Passed - o.Passed,
		Redirected:  s.Redirected - o.Redirected,
		ParseErrors: s.ParseErrors - o.ParseErrors,
		NoSocket:    s.NoSocket - o.NoSocket,
		Fragments:   s.Fragments - o.Fragments,
		ICMPSteered: s.ICMPSteered - o.ICMPSteered,
	}
}

// run runs the program once over frame and returns its action and how the
// counters moved.
func run(t *testing.T, p *Program, frame []byte) (uint32, Stats) {
	t.Helper()
	before, err := p.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	action, err := p.objs.Prog.Run(&ebpf.RunOptions{Data: frame, Repeat: 1})
	if err != nil {
		t.Fatalf("run program over %d-byte frame: %v", len(frame), err)
	}
	after, err := p.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return action, after.sub(before)
}

type outcome int

const (
	steered     outcome = iota
	icmpSteered         // an ICMP error about a load-balanced connection
	passed
	malformed
)

func (o outcome) String() string {
	return [...]string{"steered", "ICMP steered", "passed", "malformed"}[o]
}

// expect returns the action and counter movement of a frame with outcome o.
func expect(o outcome, fragment, socket bool) (uint32, Stats) {
	var s Stats
	action := uint32(xdpPass)
	switch o {
	case steered, icmpSteered:
		if socket {
			action = xdpRedirect
			s.Redirected = 1
		} else {
			s.NoSocket = 1
		}
		if fragment {
			s.Fragments = 1
		}
		if o == icmpSteered {
			s.ICMPSteered = 1
		}
	case passed:
		s.Passed = 1
	case malformed:
		s.ParseErrors = 1
	}
	return action, s
}

func checkRun(t *testing.T, p *Program, frame []byte, o outcome, fragment, socket bool) {
	t.Helper()
	gotAction, gotStats := run(t, p, frame)
	wantAction, wantStats := expect(o, fragment, socket)
	if gotAction != wantAction || gotStats != wantStats {
		t.Errorf("%d-byte frame, want %v (socket %t): got action %d, counters %+v; want action %d, counters %+v",
			len(frame), o, socket, gotAction, gotStats, wantAction, wantStats)
	}
}

// setupServices installs the test's VIPs and NAT real servers.
func setupServices(t *testing.T, p *Program) {
	t.Helper()
	vips := []Endpoint{
		{Addr: vip4, Port: 80, Proto: protoTCP},
		{Addr: vip4, Port: 53, Proto: protoUDP},
		{Addr: vip6, Port: 443, Proto: protoTCP},
		{Addr: vip6, Port: 53, Proto: protoUDP},
	}
	reals := []Endpoint{
		{Addr: real4, Port: 8080, Proto: protoTCP},
		{Addr: real4, Port: 5353, Proto: protoUDP},
		{Addr: real6, Port: 8080, Proto: protoTCP},
	}
	if err := p.SyncVIPs(vips); err != nil {
		t.Fatalf("SyncVIPs: %v", err)
	}
	if err := p.SyncReals(reals); err != nil {
		t.Fatalf("SyncReals: %v", err)
	}
}

type frameCase struct {
	name     string
	frame    []byte
	want     outcome
	fragment bool
	// minLen is the length of the shortest prefix of frame that the
	// program classifies as want: the bytes it must see to decide, up to
	// and including the (quoted) ports for a steered frame. Shorter
	// prefixes are parse errors. Zero: not checked, which only a
	// fragment or a frame that is not steered may leave.
	minLen int
}

func frameCases(t *testing.T) []frameCase {
	const (
		l2   = ethHdrLen
		tg   = vlanHdrLen
		ipv4 = ipv4MinLen
		ipv6 = ipv6HdrLen
		pts  = 4 // source and destination port
	)
	withIHL := func(b []byte, ihl byte) []byte {
		b[l2] = b[l2]&0xf0 | ihl
		return b
	}
	withVersion := func(b []byte, off int, v byte) []byte {
		b[off] = b[off]&0x0f | v<<4
		return b
	}
	cases := []frameCase{
		{name: "tcp4 to VIP", frame: tcp4Frame(t, client4, 40000, vip4, 80), want: steered, minLen: l2 + ipv4 + pts},
		{name: "udp4 to VIP", frame: udp4Frame(t, client4, 40000, vip4, 53), want: steered, minLen: l2 + ipv4 + pts},
		{name: "tcp6 to VIP", frame: tcp6Frame(t, client6, 40000, vip6, 443), want: steered, minLen: l2 + ipv6 + pts},
		{name: "udp6 to VIP", frame: udp6Frame(t, client6, 40000, vip6, 53), want: steered, minLen: l2 + ipv6 + pts},
		{name: "tcp4 to VIP other port", frame: tcp4Frame(t, client4, 40000, vip4, 81), want: passed},
		{name: "udp4 to TCP-only VIP port", frame: udp4Frame(t, client4, 40000, vip4, 80), want: passed},
		{name: "tcp4 to VIP port as source", frame: tcp4Frame(t, client4, 80, vip4, 40000), want: passed},
		{name: "tcp6 to VIP other port", frame: tcp6Frame(t, client6, 40000, vip6, 80), want: passed},
		{name: "ssh to director", frame: tcp4Frame(t, client4, 40000, dip4, 22), want: passed},
		{name: "ssh to VIP address", frame: tcp4Frame(t, client4, 40000, vip4, 22), want: passed},
		{name: "arp for VIP", frame: arpFrame(t, vip4), want: passed},
		{name: "icmp echo to VIP", frame: icmp4EchoFrame(t, vip4, false), want: passed, minLen: l2 + ipv4 + 1},
		{name: "icmpv6 echo to VIP", frame: icmp6EchoFrame(t, vip6, false), want: passed, minLen: l2 + ipv6 + 1},
		{name: "lldp", frame: serialize(t, eth(layers.EthernetTypeLinkLayerDiscovery), payload(46)), want: passed},
		{
			name:  "802.1Q tcp4 to VIP",
			frame: serialize(t, eth(layers.EthernetTypeDot1Q), tag(7, layers.EthernetTypeIPv4), ip4(client4, vip4, layers.IPProtocolTCP), tcp(40000, 80)),
			want:  steered, minLen: l2 + tg + ipv4 + pts,
		},
		{
			name: "802.1ad QinQ tcp4 to VIP",
			frame: serialize(t, eth(layers.EthernetTypeQinQ), tag(100, layers.EthernetTypeDot1Q), tag(7, layers.EthernetTypeIPv4),
				ip4(client4, vip4, layers.IPProtocolTCP), tcp(40000, 80)),
			want: steered, minLen: l2 + 2*tg + ipv4 + pts,
		},
		{
			name: "double 802.1Q udp6 to VIP",
			frame: serialize(t, eth(layers.EthernetTypeDot1Q), tag(100, layers.EthernetTypeDot1Q), tag(7, layers.EthernetTypeIPv6),
				ip6(client6, vip6, layers.IPProtocolUDP), udp(40000, 53)),
			want: steered, minLen: l2 + 2*tg + ipv6 + pts,
		},
		{
			name: "three tags",
			frame: serialize(t, eth(layers.EthernetTypeQinQ), tag(100, layers.EthernetTypeDot1Q), tag(7, layers.EthernetTypeDot1Q),
				tag(8, layers.EthernetTypeIPv4), ip4(client4, vip4, layers.IPProtocolTCP), tcp(40000, 80)),
			want: passed,
		},
		{name: "802.1Q arp", frame: serialize(t, eth(layers.EthernetTypeDot1Q), tag(7, layers.EthernetTypeARP), payload(28)), want: passed},
		{name: "tcp4 reply from NAT real", frame: tcp4Frame(t, real4, 8080, client4, 40000), want: steered, minLen: l2 + ipv4 + pts},
		{name: "tcp6 reply from NAT real", frame: tcp6Frame(t, real6, 8080, client6, 40000), want: steered, minLen: l2 + ipv6 + pts},
		{name: "udp4 from NAT real TCP port", frame: udp4Frame(t, real4, 8080, client4, 40000), want: passed},
		{name: "tcp4 from NAT real other port", frame: tcp4Frame(t, real4, 22, client4, 40000), want: passed},
		{name: "tcp4 to NAT real", frame: tcp4Frame(t, client4, 40000, real4, 8080), want: passed},
		{name: "ipv4 options ihl 6 to VIP", frame: ip4OptionsFrame(t, vip4, 80, 4), want: steered, minLen: l2 + 24 + pts},
		{name: "ipv4 options ihl 15 to VIP", frame: ip4OptionsFrame(t, vip4, 80, 40), want: steered, minLen: l2 + 60 + pts},
		{name: "ipv4 options ihl 15 other port", frame: ip4OptionsFrame(t, vip4, 81, 40), want: passed},
		{name: "ipv4 first fragment to VIP", frame: fragment4Frame(t, vip4, layers.IPProtocolUDP, true, 0), want: steered, fragment: true},
		{name: "ipv4 later fragment to VIP", frame: fragment4Frame(t, vip4, layers.IPProtocolUDP, true, 9), want: steered, fragment: true},
		{name: "ipv4 last fragment to VIP", frame: fragment4Frame(t, vip4, layers.IPProtocolTCP, false, 9), want: steered, fragment: true},
		{name: "ipv4 icmp fragment to VIP", frame: fragment4Frame(t, vip4, layers.IPProtocolICMPv4, true, 0), want: passed},
		{name: "ipv4 fragment to director", frame: fragment4Frame(t, dip4, layers.IPProtocolUDP, true, 0), want: passed},
		{
			name:  "ipv6 hop-by-hop to VIP",
			frame: serialize(t, eth(layers.EthernetTypeIPv6), ip6(client6, vip6, layers.IPProtocolIPv6HopByHop), payload(64)),
			want:  passed,
		},
		{name: "ipv4 ihl 4", frame: withIHL(tcp4Frame(t, client4, 40000, vip4, 80), 4), want: malformed},
		{name: "ipv4 ihl 15 without options", frame: withIHL(udp4Frame(t, client4, 40000, vip4, 53), 15), want: malformed},
		{name: "ipv4 ethertype, version 6", frame: withVersion(tcp4Frame(t, client4, 40000, vip4, 80), l2, 6), want: malformed},
		{name: "ipv6 ethertype, version 4", frame: withVersion(tcp6Frame(t, client6, 40000, vip6, 443), l2, 4), want: malformed},
		{name: "ethernet header only", frame: serialize(t, eth(layers.EthernetTypeIPv4)), want: malformed},
	}
	return append(cases, icmpFrameCases(t)...)
}

func TestSteering(t *testing.T) {
	p := loadProgram(t)
	setupServices(t, p)
	cases := frameCases(t)

	t.Run("no socket", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				checkRun(t, p, tc.frame, tc.want, tc.fragment, false)
			})
		}
	})

	if err := p.SetSocket(0, xskSocket(t)); err != nil {
		t.Fatalf("SetSocket: %v", err)
	}
	t.Run("socket", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				checkRun(t, p, tc.frame, tc.want, tc.fragment, true)
			})
		}
	})

	if err := p.ClearSocket(0); err != nil {
		t.Fatalf("ClearSocket: %v", err)
	}
	checkRun(t, p, tcp4Frame(t, client4, 40000, vip4, 80), steered, false, false)
	if err := p.ClearSocket(0); err != nil {
		t.Errorf("ClearSocket of an empty queue: %v", err)
	}
}

// TestTruncated runs every prefix of every frame whose minLen is known: a
// prefix that ends before what the program needs to decide must be passed as
// a parse error, one that holds it must get the whole frame's outcome. The
// kernel refuses test input shorter than an Ethernet header.
func TestTruncated(t *testing.T) {
	p := loadProgram(t)
	setupServices(t, p)
	for _, tc := range frameCases(t) {
		if tc.minLen == 0 {
			if (tc.want == steered || tc.want == icmpSteered) && !tc.fragment {
				t.Fatalf("%s: steered frame without minLen", tc.name)
			}
			continue
		}
		if tc.minLen < ethHdrLen || tc.minLen > len(tc.frame) {
			t.Fatalf("%s: bad minLen %d for a %d-byte frame", tc.name, tc.minLen, len(tc.frame))
		}
		t.Run(tc.name, func(t *testing.T) {
			for n := ethHdrLen; n <= len(tc.frame); n++ {
				want := malformed
				if n >= tc.minLen {
					want = tc.want
				}
				checkRun(t, p, tc.frame[:n], want, tc.fragment, false)
			}
		})
	}
}

func TestSetSocketErrors(t *testing.T) {
	p := loadProgram(t)
	for _, q := range []int{-1, MaxQueues} {
		if err := p.SetSocket(q, xskSocket(t)); err == nil {
			t.Errorf("SetSocket(%d) succeeded, want out-of-range error", q)
		}
		if err := p.ClearSocket(q); err == nil {
			t.Errorf("ClearSocket(%d) succeeded, want out-of-range error", q)
		}
	}
	// An XSKMAP holds only AF_XDP sockets.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("udp socket: %v", err)
	}
	defer unix.Close(fd)
	if err := p.SetSocket(0, fd); err == nil {
		t.Error("SetSocket with a UDP socket succeeded")
	}
	if err := p.SetSocket(MaxQueues-1, xskSocket(t)); err != nil {
		t.Errorf("SetSocket(%d): %v", MaxQueues-1, err)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, n := range []int{0, -1} {
		if p, err := Load(Config{MaxEntries: n}); err == nil {
			p.Close()
			t.Errorf("Load(%d) succeeded", n)
		}
	}
}

func TestClosed(t *testing.T) {
	p := loadProgram(t)
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := p.AddVIP(vip4, 80, protoTCP); err == nil {
		t.Error("AddVIP after Close succeeded")
	}
	if err := p.SetSocket(0, 0); err == nil {
		t.Error("SetSocket after Close succeeded")
	}
	if _, err := p.Stats(); err == nil {
		t.Error("Stats after Close succeeded")
	}
	if _, err := p.Attach(1, ModeGeneric); err == nil {
		t.Error("Attach after Close succeeded")
	}
}

// TestKeyLayout pins the Go key's memory image to steer.c's struct key,
// as bpf2go read it from the object's BTF.
func TestKeyLayout(t *testing.T) {
	spec, err := collectionSpec(64)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{bpf.SteerMapXvsVips, bpf.SteerMapXvsReals, bpf.SteerMapXvsVipaddrs} {
		if got := spec.Maps[name].KeySize; got != uint32(unsafe.Sizeof(mapKey{})) {
			t.Errorf("%s: key size %d, sizeof(mapKey) %d", name, got, unsafe.Sizeof(mapKey{}))
		}
	}
	if got := binary.Size(mapKey{}); got != int(unsafe.Sizeof(bpf.SteerKey{})) {
		t.Fatalf("binary.Size(mapKey) = %d, struct key is %d", got, unsafe.Sizeof(bpf.SteerKey{}))
	}
	for _, c := range []struct {
		name      string
		off, want uintptr
	}{
		{"Port", unsafe.Offsetof(mapKey{}.Port), unsafe.Offsetof(bpf.SteerKey{}.Port)},
		{"Proto", unsafe.Offsetof(mapKey{}.Proto), unsafe.Offsetof(bpf.SteerKey{}.Proto)},
		{"Family", unsafe.Offsetof(mapKey{}.Family), unsafe.Offsetof(bpf.SteerKey{}.Family)},
	} {
		if c.off != c.want {
			t.Errorf("offset of %s = %d, struct key has it at %d", c.name, c.off, c.want)
		}
	}
}
