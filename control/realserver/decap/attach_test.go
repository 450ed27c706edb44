package decap

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/dataplane/xdpprog"
	"github.com/xvs-lb/xvs/internal/netnstest"
)

// newNetns creates a namespace named xvs<suffix><tag> for the test.
func newNetns(t *testing.T, suffix, tag string) string {
	t.Helper()
	name := "xvs" + suffix + tag
	netnstest.Add(t, name)
	return name
}

func mustLink(t *testing.T, name string) netlink.Link {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return l
}

func writeSysctl(t *testing.T, path, value string) {
	t.Helper()
	if err := os.WriteFile("/proc/sys/"+path, []byte(value), 0o644); err != nil {
		t.Fatalf("sysctl %s=%s: %v", path, value, err)
	}
}

// topology is a director namespace and a real-server namespace joined by a
// veth pair. The real server holds vip4 and vip6 on lo and accepts packets
// from any source (rp_filter off), as an LVS-TUN real server does.
type topology struct {
	dirNS, rsNS     string
	dirIf, rsIf     string
	dirMAC, rsMAC   net.HardwareAddr
	rsIndex, rsLoIx int
}

func newTopology(t *testing.T) *topology {
	t.Helper()
	needRoot(t)
	sfx := netnstest.Suffix(t)
	top := &topology{
		dirNS: newNetns(t, sfx, "d"),
		rsNS:  newNetns(t, sfx, "r"),
		dirIf: "xvs" + sfx + "d",
		rsIf:  "xvs" + sfx + "r",
	}
	dirNS, err := os.Open("/run/netns/" + top.dirNS)
	if err != nil {
		t.Fatalf("open netns: %v", err)
	}
	defer dirNS.Close()
	netnstest.In(t, top.rsNS, func() {
		err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: top.rsIf}, PeerName: top.dirIf})
		if err != nil {
			t.Fatalf("add veth: %v", err)
		}
		if err := netlink.LinkSetNsFd(mustLink(t, top.dirIf), int(dirNS.Fd())); err != nil {
			t.Fatalf("move %s: %v", top.dirIf, err)
		}
		rs, lo := mustLink(t, top.rsIf), mustLink(t, "lo")
		for _, a := range []struct {
			l      netlink.Link
			prefix string
		}{
			{rs, "198.18.0.2/24"}, {rs, "fd00::2/64"},
			{lo, "198.18.0.10/32"}, {lo, "fd00::10/128"},
		} {
			addr, err := netlink.ParseAddr(a.prefix)
			if err != nil {
				t.Fatal(err)
			}
			addr.Flags = unix.IFA_F_NODAD
			if err := netlink.AddrAdd(a.l, addr); err != nil {
				t.Fatalf("add %s: %v", a.prefix, err)
			}
		}
		for _, l := range []netlink.Link{rs, lo} {
			if err := netlink.LinkSetUp(l); err != nil {
				t.Fatalf("set %s up: %v", l.Attrs().Name, err)
			}
		}
		for _, dev := range []string{"all", "default", top.rsIf, "lo"} {
			writeSysctl(t, "net/ipv4/conf/"+dev+"/rp_filter", "0")
		}
		rs = mustLink(t, top.rsIf)
		top.rsMAC, top.rsIndex, top.rsLoIx = rs.Attrs().HardwareAddr, rs.Attrs().Index, lo.Attrs().Index
	})
	netnstest.In(t, top.dirNS, func() {
		d := mustLink(t, top.dirIf)
		if err := netlink.LinkSetUp(d); err != nil {
			t.Fatalf("set %s up: %v", top.dirIf, err)
		}
		top.dirMAC = d.Attrs().HardwareAddr
	})
	return top
}

// listen opens a UDP socket on addr:9000 in the real server's namespace.
func (top *topology) listen(t *testing.T, addr netip.Addr) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	netnstest.In(t, top.rsNS, func() {
		var err error
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 9000)))
		if err != nil {
			t.Fatalf("listen on %v: %v", addr, err)
		}
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// send transmits a tunnelled datagram from the director's side: outer
// destination rs4 or rs6 (by the inner family), inner destination dst:9000.
func (top *topology) send(t *testing.T, dst netip.Addr) {
	t.Helper()
	outer := rs4
	if dst.Is6() {
		outer = rs6
	}
	frame := tunnelFrame(t, l2{}, outer, dst)
	copy(frame[0:6], top.rsMAC)
	copy(frame[6:12], top.dirMAC)
	netnstest.In(t, top.dirNS, func() {
		ifi, err := net.InterfaceByName(top.dirIf)
		if err != nil {
			t.Fatalf("interface %s: %v", top.dirIf, err)
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("packet socket: %v", err)
		}
		defer unix.Close(fd)
		if err := unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
			t.Fatalf("send on %s: %v", top.dirIf, err)
		}
	})
}

// receive waits up to wait for a datagram on c and checks that it is the
// test payload from the client.
func receive(t *testing.T, c *net.UDPConn, wait time.Duration) bool {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	want := payload(innerPayload)
	if !bytes.Equal(buf[:n], want) {
		t.Errorf("received %x, want %x", buf[:n], want)
	}
	client := client4
	if from.Addr().Unmap().Is6() {
		client = client6
	}
	if from.Addr().Unmap() != client || from.Port() != 40000 {
		t.Errorf("datagram from %v, want %v", from, netip.AddrPortFrom(client, 40000))
	}
	return true
}

// attacher attaches a decapsulator for vip4 and vip6 to the real server's
// interface one way or the other, and returns its counters and a detach
// function.
type attacher struct {
	name   string
	mode   xdpprog.Mode
	attach func(t *testing.T, top *topology, mode xdpprog.Mode) (stats func() Stats, detach func())
}

func attachLink(t *testing.T, top *topology, mode xdpprog.Mode) (func() Stats, func()) {
	d := loadDecap(t)
	if err := d.SyncVIPs([]netip.Addr{vip4, vip6}); err != nil {
		t.Fatal(err)
	}
	netnstest.In(t, top.rsNS, func() {
		got, err := d.Attach(top.rsIndex, mode)
		if err != nil {
			t.Fatalf("Attach: %v", err)
		}
		if got != mode {
			t.Errorf("Attach used %v, want %v", got, mode)
		}
		if _, err := d.Attach(top.rsIndex, mode); err == nil {
			t.Error("second Attach succeeded")
		}
	})
	stats := func() Stats {
		s, err := d.Stats()
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		return s
	}
	detach := func() {
		if err := d.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	return stats, detach
}

func attachPersistent(t *testing.T, top *topology, mode xdpprog.Mode) (func() Stats, func()) {
	netnstest.In(t, top.rsNS, func() {
		got, err := AttachPersistent(top.rsIndex, mode, Config{VIPs: []netip.Addr{vip4, vip6}, LocalAddrs: []netip.Addr{rs4, rs6}})
		if err != nil {
			t.Fatalf("AttachPersistent: %v", err)
		}
		if got != mode {
			t.Errorf("AttachPersistent used %v, want %v", got, mode)
		}
	})
	// Nothing in this process holds the program any more: only the
	// interface does, as after xvsadm exits.
	runtime.GC()
	stats := func() Stats {
		var st Status
		netnstest.In(t, top.rsNS, func() {
			var err error
			if st, err = Inspect(top.rsIndex); err != nil {
				t.Fatalf("Inspect: %v", err)
			}
		})
		if !st.Attached || !st.Ours || st.Name != progName || st.Mode != mode {
			t.Errorf("Inspect = %+v, want xvs_decap attached in %v mode", st, mode)
		}
		return st.Stats
	}
	detach := func() {
		netnstest.In(t, top.rsNS, func() {
			if ok, err := Detach(top.rsIndex); !ok || err != nil {
				t.Fatalf("Detach = %t, %v; want true, nil", ok, err)
			}
			if ok, err := Detach(top.rsIndex); ok || err != nil {
				t.Errorf("second Detach = %t, %v; want false, nil", ok, err)
			}
		})
	}
	return stats, detach
}

// TestLive sends tunnelled datagrams through a veth pair to a real server
// whose interface runs the decapsulator, and checks that sockets bound to
// the VIPs receive them, and stop receiving them once it is detached.
func TestLive(t *testing.T) {
	needRoot(t)
	top := newTopology(t)
	c4, c6 := top.listen(t, vip4), top.listen(t, vip6)
	for _, a := range []attacher{
		{"link", xdpprog.ModeDriver, attachLink},
		{"link", xdpprog.ModeGeneric, attachLink},
		{"persistent", xdpprog.ModeDriver, attachPersistent},
		{"persistent", xdpprog.ModeGeneric, attachPersistent},
	} {
		t.Run(a.name+"/"+a.mode.String(), func(t *testing.T) {
			stats, detach := a.attach(t, top, a.mode)
			for i := range 2 {
				top.send(t, vip4)
				top.send(t, vip6)
				if !receive(t, c4, 2*time.Second) {
					t.Fatalf("datagram %d to %v not received", i, vip4)
				}
				if !receive(t, c6, 2*time.Second) {
					t.Fatalf("datagram %d to %v not received", i, vip6)
				}
			}
			if s := stats(); s.Decapsulated != 4 {
				t.Errorf("counters %+v, want 4 decapsulated", s)
			}
			detach()
			// Without the decapsulator the kernel has no tunnel
			// handler: the datagrams never reach the sockets.
			top.send(t, vip4)
			top.send(t, vip6)
			if receive(t, c4, 200*time.Millisecond) || receive(t, c6, 50*time.Millisecond) {
				t.Error("datagram received without the decapsulator")
			}
		})
	}
}

// TestPersistentReplace checks that attaching again replaces the program
// (new VIP set, mode kept in ModeAuto, mode changed on request), and that
// another XDP program is never replaced or detached.
func TestPersistentReplace(t *testing.T) {
	needRoot(t)
	top := newTopology(t)
	c4 := top.listen(t, vip4)
	inspect := func() Status {
		t.Helper()
		var st Status
		netnstest.In(t, top.rsNS, func() {
			var err error
			if st, err = Inspect(top.rsIndex); err != nil {
				t.Fatalf("Inspect: %v", err)
			}
		})
		return st
	}
	attach := func(mode xdpprog.Mode, vips ...netip.Addr) (xdpprog.Mode, error) {
		var got xdpprog.Mode
		var err error
		netnstest.In(t, top.rsNS, func() { got, err = AttachPersistent(top.rsIndex, mode, Config{VIPs: vips}) })
		return got, err
	}

	if st := inspect(); st.Attached {
		t.Fatalf("Inspect before attaching = %+v", st)
	}
	if got, err := attach(xdpprog.ModeGeneric, vip4); err != nil || got != xdpprog.ModeGeneric {
		t.Fatalf("attach generic = %v, %v", got, err)
	}
	first := inspect()
	top.send(t, vip4)
	if !receive(t, c4, 2*time.Second) {
		t.Fatal("datagram not received")
	}

	// A new VIP set in ModeAuto: replaced in place, still generic.
	if got, err := attach(xdpprog.ModeAuto, novip4); err != nil || got != xdpprog.ModeGeneric {
		t.Fatalf("re-attach auto = %v, %v; want generic", got, err)
	}
	second := inspect()
	if second.ProgramID == first.ProgramID || second.Mode != xdpprog.ModeGeneric || !second.Ours {
		t.Errorf("after re-attach %+v, before %+v", second, first)
	}
	top.send(t, vip4)
	if receive(t, c4, 200*time.Millisecond) {
		t.Error("datagram to a VIP no longer configured was received")
	}
	if st := inspect(); st.Stats.NotForUs != 1 || st.Stats.Decapsulated != 0 {
		t.Errorf("counters of the new program %+v, want 1 not for us", st.Stats)
	}

	// An explicit other mode moves the program.
	if got, err := attach(xdpprog.ModeDriver, vip4); err != nil || got != xdpprog.ModeDriver {
		t.Fatalf("re-attach driver = %v, %v", got, err)
	}
	if st := inspect(); st.Mode != xdpprog.ModeDriver || !st.Ours {
		t.Errorf("after moving to driver mode: %+v", st)
	}
	top.send(t, vip4)
	if !receive(t, c4, 2*time.Second) {
		t.Fatal("datagram not received in driver mode")
	}

	// A link-attached decapsulator cannot be replaced from outside.
	netnstest.In(t, top.rsNS, func() {
		if ok, err := Detach(top.rsIndex); !ok || err != nil {
			t.Fatalf("Detach = %t, %v", ok, err)
		}
	})
	d := loadDecap(t)
	netnstest.In(t, top.rsNS, func() {
		if _, err := d.Attach(top.rsIndex, xdpprog.ModeDriver); err != nil {
			t.Fatalf("Attach: %v", err)
		}
		_, err := AttachPersistent(top.rsIndex, xdpprog.ModeAuto, Config{VIPs: []netip.Addr{vip4}})
		if err == nil || !strings.Contains(err.Error(), "BPF link") {
			t.Errorf("AttachPersistent over a link = %v, want a BPF link error", err)
		}
		if _, err := Detach(top.rsIndex); err == nil {
			t.Error("Detach of a link-attached decapsulator succeeded")
		}
	})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// Another program is left alone.
	steer, err := xdpprog.Load(xdpprog.Config{MaxEntries: 16})
	if err != nil {
		t.Fatalf("load xdpprog: %v", err)
	}
	t.Cleanup(func() { steer.Close() })
	netnstest.In(t, top.rsNS, func() {
		if _, err := steer.Attach(top.rsIndex, xdpprog.ModeGeneric); err != nil {
			t.Fatalf("attach xdpprog: %v", err)
		}
		if _, err := AttachPersistent(top.rsIndex, xdpprog.ModeAuto, Config{VIPs: []netip.Addr{vip4}}); err == nil ||
			!strings.Contains(err.Error(), "xvs_steer") {
			t.Errorf("AttachPersistent over another program = %v, want a refusal naming it", err)
		}
		if ok, err := Detach(top.rsIndex); ok || err == nil {
			t.Errorf("Detach of another program = %t, %v; want a refusal", ok, err)
		}
		st, err := Inspect(top.rsIndex)
		if err != nil || !st.Attached || st.Ours || st.Name != "xvs_steer" {
			t.Errorf("Inspect = %+v, %v; want xvs_steer, not ours", st, err)
		}
	})
}

// TestPersistentAutoOnLoopback checks the generic fallback: lo has no
// native XDP.
func TestPersistentAutoOnLoopback(t *testing.T) {
	needRoot(t)
	top := newTopology(t)
	netnstest.In(t, top.rsNS, func() {
		got, err := AttachPersistent(top.rsLoIx, xdpprog.ModeAuto, Config{VIPs: []netip.Addr{vip4}})
		if err != nil || got != xdpprog.ModeGeneric {
			t.Fatalf("AttachPersistent(lo, auto) = %v, %v; want generic", got, err)
		}
		if ok, err := Detach(top.rsLoIx); !ok || err != nil {
			t.Errorf("Detach = %t, %v", ok, err)
		}
		if _, err := AttachPersistent(top.rsLoIx, xdpprog.ModeAuto, Config{VIPs: []netip.Addr{{}}}); err == nil {
			t.Error("AttachPersistent with an invalid VIP succeeded")
		}
		if _, err := AttachPersistent(1<<30, xdpprog.ModeAuto, Config{}); err == nil {
			t.Error("AttachPersistent on a missing interface succeeded")
		}
	})
}
