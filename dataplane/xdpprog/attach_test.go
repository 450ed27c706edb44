package xdpprog

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// newNetns creates a network namespace named xvs<random> for the test and
// deletes it, with everything in it, when the test ends.
func newNetns(t *testing.T) (name, suffix string) {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random suffix: %v", err)
	}
	suffix = hex.EncodeToString(b[:])
	name = "xvs" + suffix
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name, suffix
}

// inNetns runs fn on a thread switched into the named namespace. Interface
// indexes, netlink and XDP attachment all resolve in the calling thread's
// namespace.
func inNetns(t *testing.T, name string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open own netns: %v", err)
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + name)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open netns %s: %v", name, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("enter netns %s: %v", name, err)
	}
	defer func() {
		// A thread that cannot return stays locked, so the runtime
		// discards it instead of reusing it in the wrong namespace.
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			t.Errorf("leave netns %s: %v", name, err)
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

// newVethNetns creates a namespace holding a veth pair, both ends and lo up.
func newVethNetns(t *testing.T) (ns, veth, peer string) {
	t.Helper()
	ns, sfx := newNetns(t)
	veth, peer = "xvs"+sfx+"a", "xvs"+sfx+"b"
	inNetns(t, ns, func() {
		err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: veth}, PeerName: peer})
		if err != nil {
			t.Fatalf("add veth: %v", err)
		}
		for _, name := range []string{veth, peer, "lo"} {
			l, err := netlink.LinkByName(name)
			if err != nil {
				t.Fatalf("link %s: %v", name, err)
			}
			if err := netlink.LinkSetUp(l); err != nil {
				t.Fatalf("set %s up: %v", name, err)
			}
		}
	})
	return ns, veth, peer
}

func TestAttach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("attaching XDP programs needs root")
	}
	ns, vethName, _ := newVethNetns(t)

	// Subtests run on goroutines of their own, so each enters the
	// namespace itself.
	for _, tc := range []struct {
		ifname   string
		mode     Mode
		want     Mode
		wantAttr uint32 // IFLA_XDP_ATTACHED
	}{
		{vethName, ModeDriver, ModeDriver, xdpAttachedDrv},
		{vethName, ModeGeneric, ModeGeneric, xdpAttachedSKB},
		{vethName, ModeAuto, ModeDriver, xdpAttachedDrv},
		// Loopback has no native XDP: auto falls back to generic.
		{"lo", ModeAuto, ModeGeneric, xdpAttachedSKB},
	} {
		kind := "veth"
		if tc.ifname == "lo" {
			kind = "lo"
		}
		t.Run(kind+"/"+tc.mode.String(), func(t *testing.T) {
			inNetns(t, ns, func() { checkAttach(t, tc.ifname, tc.mode, tc.want, tc.wantAttr) })
		})
	}

	t.Run("lo/driver fails", func(t *testing.T) {
		p := loadProgram(t)
		inNetns(t, ns, func() {
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				t.Fatalf("link lo: %v", err)
			}
			_, err = p.Attach(lo.Attrs().Index, ModeDriver)
			if err == nil {
				t.Fatal("driver-mode attach to lo succeeded")
			}
			t.Logf("driver-mode attach to lo: %v", err)
			if !strings.Contains(err.Error(), " lo ") {
				t.Errorf("error %q does not name the interface", err)
			}
		})
	})
}

// Values of IFLA_XDP_ATTACHED.
const (
	xdpAttachedDrv = 1
	xdpAttachedSKB = 2
)

func checkAttach(t *testing.T, ifname string, mode, want Mode, wantAttr uint32) {
	p := loadProgram(t)
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		t.Fatalf("link %s: %v", ifname, err)
	}
	ifindex := link.Attrs().Index
	got, err := p.Attach(ifindex, mode)
	if err != nil {
		t.Fatalf("Attach(%s, %v): %v", ifname, mode, err)
	}
	if got != want {
		t.Errorf("Attach(%s, %v) used %v, want %v", ifname, mode, got, want)
	}
	info, err := p.objs.Prog.Info()
	if err != nil {
		t.Fatalf("program info: %v", err)
	}
	id, ok := info.ID()
	if !ok {
		t.Fatal("program has no ID")
	}

	link, err = netlink.LinkByIndex(ifindex)
	if err != nil {
		t.Fatalf("link %s: %v", ifname, err)
	}
	xdp := link.Attrs().Xdp
	if xdp == nil || !xdp.Attached {
		t.Fatalf("%s shows no XDP program after Attach", ifname)
	}
	if xdp.ProgId != uint32(id) {
		t.Errorf("%s runs program %d, want %d", ifname, xdp.ProgId, id)
	}
	if xdp.AttachMode != wantAttr {
		t.Errorf("%s attach mode %d, want %d", ifname, xdp.AttachMode, wantAttr)
	}

	if _, err := p.Attach(ifindex, mode); err == nil {
		t.Error("second Attach succeeded")
	}
	// The interface holds one XDP program per mode: a second Program
	// cannot take it over while the first is attached.
	other := loadProgram(t)
	if _, err := other.Attach(ifindex, want); err == nil {
		t.Error("a second program attached over the first")
	}

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	link, err = netlink.LinkByIndex(ifindex)
	if err != nil {
		t.Fatalf("link %s: %v", ifname, err)
	}
	if xdp := link.Attrs().Xdp; xdp != nil && xdp.Attached {
		t.Errorf("%s still runs program %d after Close", ifname, xdp.ProgId)
	}
}

// TestAttachedTraffic sends frames into an attached program through the
// veth peer and checks that the program, not just the test runner, steers
// them: the VIP frame is steered (and falls back to the kernel, as no socket
// is bound) and the rest is passed.
func TestAttachedTraffic(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("attaching XDP programs needs root")
	}
	ns, veth, peer := newVethNetns(t)
	for _, mode := range []Mode{ModeDriver, ModeGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			p := loadProgram(t)
			setupServices(t, p)
			inNetns(t, ns, func() {
				l, err := netlink.LinkByName(veth)
				if err != nil {
					t.Fatalf("link %s: %v", veth, err)
				}
				if _, err := p.Attach(l.Attrs().Index, mode); err != nil {
					t.Fatalf("Attach: %v", err)
				}
				send := []struct {
					frame []byte
					n     int
				}{
					{tcp4Frame(t, client4, 40000, vip4, 80), 3},
					{udp6Frame(t, client6, 40000, vip6, 53), 2},
					{icmp4ErrorFrame(t, router4, vip4, icmpv4DestUnreach, 4, quote4(t, vip4, 80, client4, 40000, layers.IPProtocolTCP)), 2},
					{tcp4Frame(t, client4, 40000, dip4, 22), 4},
					{arpFrame(t, vip4), 1},
				}
				for _, s := range send {
					for range s.n {
						injectFrame(t, peer, s.frame)
					}
				}
			})
			want := Stats{NoSocket: 7, Passed: 5, ICMPSteered: 2}
			var got Stats
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				var err error
				if got, err = p.Stats(); err != nil {
					t.Fatalf("Stats: %v", err)
				}
				// IPv6 autoconfiguration on the peer may add frames of
				// its own (passed); wait for at least what was sent.
				if got.NoSocket >= want.NoSocket && got.Passed >= want.Passed {
					break
				}
			}
			if got.NoSocket != want.NoSocket || got.ICMPSteered != want.ICMPSteered || got.Passed < want.Passed ||
				got.Redirected != 0 || got.ParseErrors != 0 || got.Fragments != 0 {
				t.Errorf("counters %+v, want %+v (Passed at least)", got, want)
			}
		})
	}
}

// injectFrame transmits frame on ifname through a packet socket, so that it
// arrives on the veth peer's receive path.
func injectFrame(t *testing.T, ifname string, frame []byte) {
	t.Helper()
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatalf("interface %s: %v", ifname, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("packet socket: %v", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
		t.Fatalf("send on %s: %v", ifname, err)
	}
}
