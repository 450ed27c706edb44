package realserver

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/control/realserver/decap"
	"github.com/xvs-lb/xvs/dataplane/xdpprog"
	"github.com/xvs-lb/xvs/internal/netnstest"
)

// hostSysctls are sysctls of the test's own namespace that Apply changes
// when it runs in the wrong namespace.
var hostSysctls = []string{
	"net/ipv4/conf/all/arp_ignore", "net/ipv4/conf/all/arp_announce", "net/ipv4/conf/all/rp_filter",
	"net/ipv4/conf/lo/arp_ignore", "net/ipv4/conf/lo/arp_announce", "net/ipv4/conf/lo/rp_filter",
}

// TestMain checks that the tests leave the host's own sysctls alone: every
// change must happen inside the namespaces the tests create.
func TestMain(m *testing.M) {
	before := make(map[string]string)
	for _, p := range hostSysctls {
		before[p], _ = readSysctl(p)
	}
	code := m.Run()
	for _, p := range hostSysctls {
		if now, _ := readSysctl(p); now != before[p] {
			fmt.Fprintf(os.Stderr, "host sysctl %s changed from %s to %s; restoring\n", sysctlName(p), before[p], now)
			_ = writeSysctl(p, before[p])
			code = 1
		}
	}
	os.Exit(code)
}

var (
	vip4     = netip.MustParseAddr("198.18.0.10")
	vip4b    = netip.MustParseAddr("198.18.0.11")
	vip6     = netip.MustParseAddr("fd00::10")
	dir4     = netip.MustParseAddr("198.18.0.1")
	dir6     = netip.MustParseAddr("fd00::1")
	rs4      = netip.MustParseAddr("198.18.0.2")
	oldGW4   = netip.MustParseAddr("198.18.0.254")
	otherGW4 = netip.MustParseAddr("198.18.0.253")
)

// env is a namespace named xvs<random> holding a veth pair: ifname (the
// real server's interface toward the director, 198.18.0.2/24 and
// fd00::2/64) and peer, both up.
type env struct {
	ns, ifname, peer string
	stateFile        string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	netnstest.NeedRoot(t, "network namespaces")
	sfx := netnstest.Suffix(t)
	e := &env{
		ns:        "xvs" + sfx,
		ifname:    "xvs" + sfx + "a",
		peer:      "xvs" + sfx + "b",
		stateFile: filepath.Join(t.TempDir(), "realserver.json"),
	}
	netnstest.Add(t, e.ns)
	netnstest.AddVeth(t, e.ns, e.ifname, e.peer)
	e.in(t, func() {
		e.addAddr(t, e.ifname, "198.18.0.2/24")
		e.addAddr(t, e.ifname, "fd00::2/64")
	})
	return e
}

// in runs fn on a thread switched into e's namespace.
func (e *env) in(t *testing.T, fn func()) {
	t.Helper()
	netnstest.In(t, e.ns, fn)
}

func (e *env) link(t *testing.T, name string) netlink.Link {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return l
}

func (e *env) addAddr(t *testing.T, dev, prefix string) {
	t.Helper()
	a, err := netlink.ParseAddr(prefix)
	if err != nil {
		t.Fatal(err)
	}
	a.Flags = unix.IFA_F_NODAD
	if err := netlink.AddrAdd(e.link(t, dev), a); err != nil {
		t.Fatalf("add %s to %s: %v", prefix, dev, err)
	}
}

func (e *env) setSysctl(t *testing.T, path, value string) {
	t.Helper()
	if err := writeSysctl(path, value); err != nil {
		t.Fatal(err)
	}
}

func (e *env) addDefault(t *testing.T, gw netip.Addr, metric int) {
	t.Helper()
	r := &netlink.Route{Gw: gw.AsSlice(), Priority: metric, LinkIndex: e.link(t, e.ifname).Attrs().Index}
	if err := netlink.RouteAdd(r); err != nil {
		t.Fatalf("add default via %v metric %d: %v", gw, metric, err)
	}
}

// apply runs Apply in e's namespace with e's state file.
func (e *env) apply(t *testing.T, opts Options) ([]Action, error) {
	t.Helper()
	if opts.StateFile == "" {
		opts.StateFile = e.stateFile
	}
	var actions []Action
	var err error
	e.in(t, func() { actions, err = Apply(opts) })
	for _, a := range actions {
		t.Logf("%v", a)
	}
	return actions, err
}

func (e *env) mustApply(t *testing.T, opts Options) []Action {
	t.Helper()
	actions, err := e.apply(t, opts)
	if err != nil {
		t.Fatalf("Apply(%+v): %v", opts, err)
	}
	for _, a := range actions {
		if a.Err != nil {
			t.Errorf("action %q failed without an error from Apply: %v", a.What, a.Err)
		}
	}
	return actions
}

// snapshot is the part of a namespace's configuration Apply touches.
type snapshot struct {
	LoAddrs  []string
	Sysctls  map[string]string
	Defaults []string
	XDP      string
}

func (e *env) snapshot(t *testing.T) snapshot {
	t.Helper()
	var s snapshot
	e.in(t, func() {
		addrs, err := netlink.AddrList(e.link(t, "lo"), netlink.FAMILY_ALL)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			s.LoAddrs = append(s.LoAddrs, a.IPNet.String())
		}
		slices.Sort(s.LoAddrs)
		s.Sysctls = make(map[string]string)
		for _, dev := range []string{"all", "lo", e.ifname, "default"} {
			for _, key := range []string{"arp_ignore", "arp_announce", "rp_filter"} {
				v, err := readSysctl(confPath(dev, key))
				if err != nil {
					t.Fatal(err)
				}
				s.Sysctls[dev+"."+key] = v
			}
		}
		for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			defs, err := defaultRoutes(family)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range defs {
				rec, err := toRecord(d, family)
				if err != nil {
					t.Fatal(err)
				}
				s.Defaults = append(s.Defaults, fmt.Sprintf("%v proto %d", rec, rec.Protocol))
			}
		}
		st, err := decap.Inspect(e.link(t, e.ifname).Attrs().Index)
		if err != nil {
			t.Fatal(err)
		}
		if st.Attached {
			s.XDP = fmt.Sprintf("%s %s", st.Name, st.Mode)
		}
	})
	return s
}

func checkSame(t *testing.T, what string, got, want snapshot) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// done counts the changes made.
func done(actions []Action) int {
	n := 0
	for _, a := range actions {
		if a.Done {
			n++
		}
	}
	return n
}

// checkNoChange checks that a second run changed nothing and reported so.
func checkNoChange(t *testing.T, actions []Action) {
	t.Helper()
	if len(actions) == 0 {
		t.Error("second run reported nothing")
	}
	for _, a := range actions {
		if a.Done || a.Err != nil {
			t.Errorf("second run: %v", a)
		}
	}
}

func (e *env) stateBytes(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(e.stateFile)
	if err != nil {
		t.Fatalf("state file: %v", err)
	}
	return b
}

func (e *env) checkNoState(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(e.stateFile); !os.IsNotExist(err) {
		t.Errorf("state file %s: %v, want it absent", e.stateFile, err)
	}
}

// undo runs Undo and checks the namespace is back to before, and that a
// second Undo has nothing to do.
func (e *env) undo(t *testing.T, before snapshot) {
	t.Helper()
	actions := e.mustApply(t, Options{Undo: true, Interface: e.ifname})
	if done(actions) == 0 {
		t.Error("Undo changed nothing")
	}
	checkSame(t, "after Undo", e.snapshot(t), before)
	e.checkNoState(t)
	actions = e.mustApply(t, Options{Undo: true, Interface: e.ifname})
	if len(actions) != 1 || actions[0].Done || !strings.Contains(actions[0].What, "nothing to undo") {
		t.Errorf("second Undo: %v", actions)
	}
}

func TestDR(t *testing.T) {
	e := newEnv(t)
	// A non-default value, to see Undo restore it rather than reset it.
	e.in(t, func() { e.setSysctl(t, confPath(e.ifname, "arp_announce"), "1") })
	before := e.snapshot(t)

	opts := Options{Mode: DR, VIPs: []netip.Addr{vip4, vip6}, Interface: e.ifname}
	actions := e.mustApply(t, opts)
	// Six sysctls (arp_ignore and arp_announce on all, lo, the interface),
	// two VIPs, the state file.
	if n := done(actions); n != 9 {
		t.Errorf("%d changes, want 9", n)
	}
	after := e.snapshot(t)
	want := before
	want.LoAddrs = append(slices.Clone(before.LoAddrs), "198.18.0.10/32", "fd00::10/128")
	slices.Sort(want.LoAddrs)
	want.Sysctls = make(map[string]string)
	for k, v := range before.Sysctls {
		want.Sysctls[k] = v
	}
	for _, dev := range []string{"all", "lo", e.ifname} {
		want.Sysctls[dev+".arp_ignore"] = "1"
		want.Sysctls[dev+".arp_announce"] = "2"
	}
	checkSame(t, "after DR", after, want)

	// Idempotent: nothing changes, and the recorded previous values stay
	// those from before the first run.
	state := e.stateBytes(t)
	checkNoChange(t, e.mustApply(t, opts))
	checkSame(t, "after a second DR run", e.snapshot(t), want)
	if !bytes.Equal(e.stateBytes(t), state) {
		t.Errorf("second run rewrote the state:\n%s\nwas\n%s", e.stateBytes(t), state)
	}

	// A new VIP set: the dropped VIP leaves lo, the new one arrives.
	e.mustApply(t, Options{Mode: DR, VIPs: []netip.Addr{vip4, vip4b}, Interface: e.ifname})
	got := e.snapshot(t)
	if !slices.Contains(got.LoAddrs, "198.18.0.11/32") || slices.Contains(got.LoAddrs, "fd00::10/128") {
		t.Errorf("lo after changing the VIPs: %v", got.LoAddrs)
	}

	e.undo(t, before)
}

// TestDRKeepsForeignVIP checks that a VIP already on lo before the first run
// is neither added twice nor removed by Undo.
func TestDRKeepsForeignVIP(t *testing.T) {
	e := newEnv(t)
	e.in(t, func() { e.addAddr(t, "lo", "198.18.0.10/32") })
	before := e.snapshot(t)
	actions := e.mustApply(t, Options{Mode: DR, VIPs: []netip.Addr{vip4}, Interface: e.ifname})
	for _, a := range actions {
		if a.Done && strings.HasPrefix(a.What, "add VIP") {
			t.Errorf("VIP already on lo was added: %v", a)
		}
	}
	e.undo(t, before)
}

func TestTUN(t *testing.T) {
	e := newEnv(t)
	e.in(t, func() {
		e.setSysctl(t, confPath("all", "rp_filter"), "1")
		e.setSysctl(t, confPath(e.ifname, "rp_filter"), "2")
	})
	before := e.snapshot(t)

	opts := Options{Mode: TUN, VIPs: []netip.Addr{vip4, vip6}, Interface: e.ifname, XDPMode: xdpprog.ModeGeneric}
	e.mustApply(t, opts)
	after := e.snapshot(t)
	if after.XDP != "xvs_decap generic" {
		t.Errorf("XDP on %s: %q, want xvs_decap in generic mode", e.ifname, after.XDP)
	}
	for _, dev := range []string{"all", "lo", e.ifname} {
		if v := after.Sysctls[dev+".rp_filter"]; v != "0" {
			t.Errorf("%s.rp_filter = %s, want 0", dev, v)
		}
		if v := after.Sysctls[dev+".arp_ignore"]; v != "1" {
			t.Errorf("%s.arp_ignore = %s, want 1", dev, v)
		}
		if v := after.Sysctls[dev+".arp_announce"]; v != "2" {
			t.Errorf("%s.arp_announce = %s, want 2", dev, v)
		}
	}
	if !slices.Contains(after.LoAddrs, "198.18.0.10/32") || !slices.Contains(after.LoAddrs, "fd00::10/128") {
		t.Errorf("lo addresses %v lack the VIPs", after.LoAddrs)
	}
	// The real server now takes tunnelled traffic to its VIP from a
	// client it has no route to, which rp_filter 1 or 2 would drop.
	e.checkTunnel(t, true)

	var progID uint32
	e.in(t, func() {
		st, err := decap.Inspect(e.link(t, e.ifname).Attrs().Index)
		if err != nil {
			t.Fatal(err)
		}
		progID = st.ProgramID
	})

	checkNoChange(t, e.mustApply(t, opts))
	// ModeAuto accepts the program where it runs.
	opts.XDPMode = xdpprog.ModeAuto
	checkNoChange(t, e.mustApply(t, opts))
	checkSame(t, "after a second TUN run", e.snapshot(t), after)
	e.in(t, func() {
		st, err := decap.Inspect(e.link(t, e.ifname).Attrs().Index)
		if err != nil || st.ProgramID != progID {
			t.Errorf("decapsulator after a second run: %+v, %v; want program %d still", st, err, progID)
		}
	})

	// A new VIP set replaces the program.
	e.mustApply(t, Options{Mode: TUN, VIPs: []netip.Addr{vip4}, Interface: e.ifname})
	e.in(t, func() {
		st, err := decap.Inspect(e.link(t, e.ifname).Attrs().Index)
		if err != nil || !st.Ours || st.ProgramID == progID {
			t.Errorf("decapsulator after a VIP change: %+v, %v; want a new program", st, err)
		}
	})

	e.undo(t, before)
	e.checkTunnel(t, false)
}

// checkTunnel sends an IPIP datagram from the client to vip4:9000 into the
// real server's interface (through its veth peer), and checks that a socket
// on the VIP receives it, or not.
func (e *env) checkTunnel(t *testing.T, want bool) {
	t.Helper()
	var conn *net.UDPConn
	var frame []byte
	e.in(t, func() {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero, Port: 9000})
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		conn = c
		frame = ipipFrame(t, e.link(t, e.ifname).Attrs().HardwareAddr, e.link(t, e.peer).Attrs().HardwareAddr)
		ifi, err := net.InterfaceByName(e.peer)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("packet socket: %v", err)
		}
		defer unix.Close(fd)
		if err := unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
			t.Fatalf("send: %v", err)
		}
	})
	defer conn.Close()
	wait := 2 * time.Second
	if !want {
		wait = 200 * time.Millisecond
	}
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, from, err := conn.ReadFromUDPAddrPort(buf)
	switch {
	case err != nil && want:
		t.Errorf("tunnelled datagram not received: %v", err)
	case err == nil && !want:
		t.Errorf("tunnelled datagram received from %v without the TUN setup", from)
	case err == nil && (string(buf[:n]) != "xvs" || from.Addr().Unmap() != client4):
		t.Errorf("received %q from %v, want \"xvs\" from %v", buf[:n], from, client4)
	}
}

var client4 = netip.MustParseAddr("198.19.0.100")

// ipipFrame is a UDP datagram from client4 to vip4:9000 in an IPIP packet
// from the director to the real server.
func ipipFrame(t *testing.T, dst, src net.HardwareAddr) []byte {
	t.Helper()
	inner := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: client4.AsSlice(), DstIP: vip4.AsSlice()}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 9000}
	if err := udp.SetNetworkLayerForChecksum(inner); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolIPv4, SrcIP: dir4.AsSlice(), DstIP: rs4.AsSlice()},
		inner, udp, gopacket.Payload("xvs"))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestNAT(t *testing.T) {
	e := newEnv(t)
	e.in(t, func() {
		e.addDefault(t, oldGW4, 100)
		e.addDefault(t, otherGW4, 200)
	})
	before := e.snapshot(t)

	opts := Options{Mode: NAT, Director: dir4, Interface: e.ifname, VIPs: []netip.Addr{vip4}}
	e.mustApply(t, opts)
	after := e.snapshot(t)
	want := before
	want.Defaults = []string{fmt.Sprintf("default via %v dev %s metric 100 proto %d", dir4, e.ifname, unix.RTPROT_BOOT)}
	checkSame(t, "after NAT", after, want)

	state := e.stateBytes(t)
	checkNoChange(t, e.mustApply(t, opts))
	checkSame(t, "after a second NAT run", e.snapshot(t), want)
	if !bytes.Equal(e.stateBytes(t), state) {
		t.Errorf("second run rewrote the state")
	}

	// A default route that turns up later (DHCP) is taken away too, and
	// comes back with the others on Undo.
	e.in(t, func() { e.addDefault(t, netip.MustParseAddr("198.18.0.252"), 50) })
	before.Defaults = append([]string{fmt.Sprintf("default via 198.18.0.252 dev %s metric 50 proto %d", e.ifname, unix.RTPROT_BOOT)}, before.Defaults...)
	e.mustApply(t, opts)
	if got := e.snapshot(t).Defaults; len(got) != 1 || !strings.HasPrefix(got[0], "default via "+dir4.String()) {
		t.Errorf("default routes after a third run: %v", got)
	}
	e.undo(t, before)
}

// TestNATNoDefault covers a host without a default route, over IPv6, with
// the kernel choosing the interface.
func TestNATNoDefault(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot(t)
	e.mustApply(t, Options{Mode: NAT, Director: dir6, StateFile: e.stateFile})
	got := e.snapshot(t)
	if len(got.Defaults) != 1 || !strings.HasPrefix(got.Defaults[0], "default via fd00::1 dev "+e.ifname) {
		t.Errorf("default routes: %v", got.Defaults)
	}
	checkNoChange(t, e.mustApply(t, Options{Mode: NAT, Director: dir6}))
	actions := e.mustApply(t, Options{Undo: true})
	if done(actions) == 0 {
		t.Error("Undo changed nothing")
	}
	checkSame(t, "after Undo", e.snapshot(t), before)
	e.checkNoState(t)
}

func TestDryRun(t *testing.T) {
	e := newEnv(t)
	e.in(t, func() { e.addDefault(t, oldGW4, 0) })
	before := e.snapshot(t)
	for _, opts := range []Options{
		{Mode: DR, VIPs: []netip.Addr{vip4, vip6}, Interface: e.ifname},
		{Mode: TUN, VIPs: []netip.Addr{vip4}, Interface: e.ifname},
		{Mode: NAT, Director: dir4, Interface: e.ifname},
	} {
		opts.DryRun = true
		actions := e.mustApply(t, opts)
		if len(actions) == 0 {
			t.Errorf("%v dry run reported nothing", opts.Mode)
		}
		for _, a := range actions {
			if a.Done || a.Err != nil {
				t.Errorf("%v dry run: %v", opts.Mode, a)
			}
		}
		checkSame(t, fmt.Sprintf("after a %v dry run", opts.Mode), e.snapshot(t), before)
		e.checkNoState(t)
	}

	// A dry Undo reports the reversal and keeps everything.
	e.mustApply(t, Options{Mode: DR, VIPs: []netip.Addr{vip4}, Interface: e.ifname})
	applied := e.snapshot(t)
	state := e.stateBytes(t)
	actions := e.mustApply(t, Options{Undo: true, DryRun: true, Interface: e.ifname})
	if len(actions) == 0 || done(actions) != 0 {
		t.Errorf("dry Undo: %v", actions)
	}
	checkSame(t, "after a dry Undo", e.snapshot(t), applied)
	if !bytes.Equal(e.stateBytes(t), state) {
		t.Error("dry Undo changed the state file")
	}
	e.undo(t, before)
}

func TestRefusals(t *testing.T) {
	e := newEnv(t)
	e.in(t, func() {
		e.addAddr(t, e.peer, "198.18.0.20/24")
		e.addDefault(t, oldGW4, 0)
	})
	before := e.snapshot(t)
	missing := "xvsmissing0"
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no mode", Options{VIPs: []netip.Addr{vip4}, Interface: e.ifname}, "invalid mode"},
		{"no interface", Options{Mode: DR, VIPs: []netip.Addr{vip4}}, "no interface"},
		{"missing interface", Options{Mode: TUN, VIPs: []netip.Addr{vip4}, Interface: missing}, missing},
		{"lo", Options{Mode: DR, VIPs: []netip.Addr{vip4}, Interface: "lo"}, "cannot be lo"},
		{"no VIP", Options{Mode: DR, Interface: e.ifname}, "no VIP"},
		{"empty VIP", Options{Mode: DR, VIPs: []netip.Addr{{}}, Interface: e.ifname}, "empty"},
		{"multicast VIP", Options{Mode: TUN, VIPs: []netip.Addr{netip.MustParseAddr("224.0.0.1")}, Interface: e.ifname}, "cannot be a service address"},
		{"VIP on another interface", Options{Mode: DR, VIPs: []netip.Addr{netip.MustParseAddr("198.18.0.20")}, Interface: e.ifname}, "lo only"},
		{"director in DR", Options{Mode: DR, VIPs: []netip.Addr{vip4}, Interface: e.ifname, Director: dir4}, "NAT only"},
		{"NAT without director", Options{Mode: NAT, Interface: e.ifname}, "no director"},
		{"NAT family mismatch", Options{Mode: NAT, Director: dir4, VIPs: []netip.Addr{vip6}}, "family mismatch"},
		{"NAT director not connected", Options{Mode: NAT, Director: netip.MustParseAddr("198.19.0.1")}, "not on a directly connected network"},
		{"NAT director is local", Options{Mode: NAT, Director: rs4}, "address of this host"},
		{"NAT director on another interface", Options{Mode: NAT, Director: dir4, Interface: "lo"}, "reached through"},
		{"NAT missing interface", Options{Mode: NAT, Director: dir4, Interface: missing}, missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			actions, err := e.apply(t, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Apply = %v, want an error containing %q", err, tc.want)
			}
			if len(actions) != 0 {
				t.Errorf("refused Apply reported actions %v", actions)
			}
			checkSame(t, "after a refusal", e.snapshot(t), before)
			e.checkNoState(t)
		})
	}

	t.Run("not root", func(t *testing.T) {
		opts := Options{Mode: DR, VIPs: []netip.Addr{vip4}, Interface: e.ifname, StateFile: e.stateFile}
		var err error
		e.in(t, func() { _, err = applier{euid: func() int { return 1000 }}.apply(opts) })
		if err == nil || !strings.Contains(err.Error(), "root") {
			t.Errorf("Apply as a user = %v, want a refusal naming root", err)
		}
		// A dry run needs no privilege.
		opts.DryRun = true
		e.in(t, func() { _, err = applier{euid: func() int { return 1000 }}.apply(opts) })
		if err != nil {
			t.Errorf("dry run as a user: %v", err)
		}
		checkSame(t, "after a refusal", e.snapshot(t), before)
	})

	t.Run("another XDP program", func(t *testing.T) {
		steer, err := xdpprog.Load(xdpprog.Config{MaxEntries: 16})
		if err != nil {
			t.Fatal(err)
		}
		defer steer.Close()
		e.in(t, func() {
			if _, err := steer.Attach(e.link(t, e.ifname).Attrs().Index, xdpprog.ModeGeneric); err != nil {
				t.Fatal(err)
			}
		})
		_, err = e.apply(t, Options{Mode: TUN, VIPs: []netip.Addr{vip4}, Interface: e.ifname})
		if err == nil || !strings.Contains(err.Error(), "xvs_steer") {
			t.Errorf("Apply over another XDP program = %v, want a refusal naming it", err)
		}
		e.checkNoState(t)
	})

	t.Run("mode change", func(t *testing.T) {
		e.mustApply(t, Options{Mode: DR, VIPs: []netip.Addr{vip4}, Interface: e.ifname})
		_, err := e.apply(t, Options{Mode: TUN, VIPs: []netip.Addr{vip4}, Interface: e.ifname})
		if err == nil || !strings.Contains(err.Error(), "undo it first") {
			t.Errorf("TUN over DR = %v, want a refusal", err)
		}
		if _, err := e.apply(t, Options{Mode: NAT, Undo: true, Interface: e.ifname}); err == nil {
			t.Error("NAT Undo of a DR setup succeeded")
		}
		e.undo(t, before)
	})
}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mode
	}{
		{"dr", DR}, {"DR", DR}, {"route", DR}, {" tun ", TUN}, {"ipip", TUN}, {"nat", NAT}, {"masq", NAT},
	} {
		if got, err := ParseMode(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "fullnat", "d r"} {
		if got, err := ParseMode(in); err == nil {
			t.Errorf("ParseMode(%q) = %v, want an error", in, got)
		}
	}
	for _, m := range []Mode{DR, TUN, NAT} {
		if got, err := ParseMode(m.String()); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
}

func TestActionString(t *testing.T) {
	for _, tc := range []struct {
		a    Action
		want string
	}{
		{Action{What: "add VIP 198.18.0.10/32 to lo", Done: true}, "+ add VIP 198.18.0.10/32 to lo"},
		{Action{What: "VIP 198.18.0.10 on lo: already"}, "= VIP 198.18.0.10 on lo: already"},
		{Action{What: "add VIP", Err: unix.EPERM}, "! add VIP: operation not permitted"},
	} {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestSysctlName(t *testing.T) {
	for in, want := range map[string]string{
		"net/ipv4/conf/all/arp_ignore":        "net.ipv4.conf.all.arp_ignore",
		"net/ipv4/conf/eth0.100/arp_announce": "net.ipv4.conf.eth0/100.arp_announce",
	} {
		if got := sysctlName(in); got != want {
			t.Errorf("sysctlName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDefaultStateFile(t *testing.T) {
	if got := DefaultStateFile("eth0"); got != "/run/xvs/realserver-eth0.json" {
		t.Errorf("DefaultStateFile(eth0) = %q", got)
	}
	if got := DefaultStateFile(""); got != "/run/xvs/realserver.json" {
		t.Errorf("DefaultStateFile() = %q", got)
	}
}

func TestState(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "state.json")
	if st, err := readState(path); st != nil || err != nil {
		t.Errorf("readState(missing) = %v, %v; want nil, nil", st, err)
	}
	want := &state{
		Mode: "nat", Interface: "eth0",
		Addrs:   []string{"198.18.0.10/32"},
		Sysctls: []sysctlRecord{{Path: "net/ipv4/conf/all/arp_ignore", Old: "0"}},
		Decap:   &decapRecord{VIPs: []string{"198.18.0.10"}, ProgramID: 7, Mode: "driver"},
		Route: &routeChange{
			Added:   routeRecord{Family: 4, Gateway: "198.18.0.1", Dev: "eth0", Metric: 100},
			Removed: []routeRecord{{Family: 4, NextHops: []nextHopRecord{{Gateway: "198.18.0.254", Dev: "eth0", Weight: 1}}}},
		},
	}
	if err := writeState(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := readState(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("readState after writeState = %+v, %v; want %+v", got, err, want)
	}
	if err := writeState(path, &state{Mode: "nat"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("empty state left a file: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 0 {
		t.Errorf("temporary files left: %v", entries)
	}
	for name, content := range map[string]string{
		"corrupt":     "{",
		"new version": `{"version": 2, "mode": "dr"}`,
	} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readState(path); err == nil {
			t.Errorf("readState(%s) succeeded", name)
		}
	}
}
