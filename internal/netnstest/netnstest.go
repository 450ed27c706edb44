// Package netnstest is what the tests that need root share to work in
// network namespaces of their own: a namespace per test, deleted with
// everything in it when the test ends, a veth pair in it, and code run on a
// thread switched into it. Only tests import it.
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NeedRoot skips the test unless it runs as root; why says what for.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + why)
	}
}

// Suffix returns 6 random hex digits, for names of namespaces and
// interfaces that no other test run uses ("xvs" + suffix + a role fits an
// interface name's 15 bytes).
func Suffix(t testing.TB) string {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random suffix: %v", err)
	}
	return hex.EncodeToString(b[:])
}

// Add creates the network namespace name and deletes it, with everything
// in it, when the test ends.
func Add(t testing.TB, name string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
}

// In runs fn on a thread switched into namespace name, then switches the
// thread back. Interface indexes, netlink, sockets, /proc/sys/net and XDP
// attachment all resolve in the calling thread's namespace, and what fn
// creates stays in name.
func In(t testing.TB, name string, fn func()) {
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

// AddVeth creates a veth pair a, b inside namespace ns and sets both ends
// and ns's lo up.
func AddVeth(t testing.TB, ns, a, b string) {
	t.Helper()
	In(t, ns, func() {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a}, PeerName: b}); err != nil {
			t.Fatalf("add veth %s/%s: %v", a, b, err)
		}
		for _, name := range []string{a, b, "lo"} {
			l, err := netlink.LinkByName(name)
			if err != nil {
				t.Fatalf("link %s: %v", name, err)
			}
			if err := netlink.LinkSetUp(l); err != nil {
				t.Fatalf("set %s up: %v", name, err)
			}
		}
	})
}
