package xdpprog

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/internal/netnstest"
)

// newVethNetns creates a namespace holding a veth pair, both ends and lo up.
func newVethNetns(t *testing.T) (ns, veth, peer string) {
	t.Helper()
	sfx := netnstest.Suffix(t)
	ns, veth, peer = "xvs"+sfx, "xvs"+sfx+"a", "xvs"+sfx+"b"
	netnstest.Add(t, ns)
	netnstest.AddVeth(t, ns, veth, peer)
	return ns, veth, peer
}

func TestAttach(t *testing.T) {
	netnstest.NeedRoot(t, "attaching XDP programs")
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
			netnstest.In(t, ns, func() { checkAttach(t, tc.ifname, tc.mode, tc.want, tc.wantAttr) })
		})
	}

	t.Run("lo/driver fails", func(t *testing.T) {
		p := loadProgram(t)
		netnstest.In(t, ns, func() {
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
	netnstest.NeedRoot(t, "attaching XDP programs")
	ns, veth, peer := newVethNetns(t)
	for _, mode := range []Mode{ModeDriver, ModeGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			p := loadProgram(t)
			setupServices(t, p)
			netnstest.In(t, ns, func() {
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
