package connsync

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// enterNetns moves the calling goroutine, for the rest of its life, into a new network namespace with
// only lo, up and multicast-capable. The namespace is anonymous: the kernel removes it when the thread
// (which Go ends with the locked goroutine) and the sockets made in it are gone.
func enterNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	runtime.LockOSThread() // never unlocked, so the thread is not reused outside the namespace
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	// Everything after this, commands included, changes the namespace: make sure it is ours.
	if ns, err := os.Readlink("/proc/thread-self/ns/net"); err != nil || ns == host {
		t.Fatalf("thread still in the host's network namespace (%s, %v)", ns, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		t.Fatalf("get lo flags: %v", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_MULTICAST)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		t.Fatalf("set lo flags: %v", err)
	}
}

// run runs a command in the calling goroutine's namespace (it forks from the locked thread).
func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v: %s", args, err, out)
	}
}

func TestMulticast(t *testing.T) {
	for _, tc := range []struct{ name, group, a, b string }{
		{"IPv4", "239.1.2.3:7000", "0.0.0.0:7001", "0.0.0.0:7000"},
		{"IPv6", "[ff02::1:2:3]:7000", "[::]:7001", "[::]:7000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enterNetns(t)
			group := ap(tc.group)
			aIf, bIf := "lo", "lo"
			if group.Addr().Is6() {
				// Linux loops no IPv6 multicast through lo: use a veth pair, without duplicate address
				// detection so that its link-local addresses are usable at once.
				if _, err := exec.LookPath("ip"); err != nil {
					t.Skip("no ip command")
				}
				aIf = fmt.Sprintf("xvs%06xa", rand.IntN(1<<24))
				bIf = aIf[:len(aIf)-1] + "b"
				run(t, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
				run(t, "ip", "link", "add", aIf, "type", "veth", "peer", "name", bIf)
				run(t, "ip", "link", "set", aIf, "up")
				run(t, "ip", "link", "set", bIf, "up")
				// Until the pair is running with its addresses, multicast sent on it is lost.
				for _, name := range []string{aIf, bIf} {
					eventually(t, 2*time.Second, name+" running", func() bool {
						ifi, err := net.InterfaceByName(name)
						if err != nil || ifi.Flags&net.FlagRunning == 0 {
							return false
						}
						addrs, err := ifi.Addrs()
						return err == nil && len(addrs) > 0
					})
				}
			}
			var bSink memSink
			// A sends to the group; B, on the group's port, has joined it. B's own snapshot request to
			// the group comes back to it and is ignored. (On the veth pair the kernel may deliver a
			// datagram twice, by loopback and through the peer; the replay window drops the copy.)
			a := start(t, Config{Listen: ap(tc.a), Peers: []netip.AddrPort{group}, NodeID: 1, Interface: aIf}, sliceSource(testConns[:2]), nil)
			b := start(t, Config{Listen: ap(tc.b), Peers: []netip.AddrPort{group}, NodeID: 2, Interface: bIf}, nil, &bSink)
			eventually(t, 2*time.Second, "B's own request looped back", func() bool { return b.Stats().Own >= 1 })
			for _, c := range testConns {
				a.Publish(c)
			}
			eventually(t, 2*time.Second, "entries at B", func() bool { return bSink.len() >= len(testConns) })
			for i, c := range bSink.get()[:len(testConns)] {
				if !sameConn(c, testConns[i], time.Second) {
					t.Fatalf("entry %d: got %+v, want %+v", i, c, testConns[i])
				}
			}
			if s := a.Stats(); s.SnapshotsServed != 0 {
				t.Fatalf("A served %d snapshots to a request it cannot have received", s.SnapshotsServed)
			}
		})
	}
}

// TestBindInterface: Interface binds the socket to that interface
// (ipvsadm's --mcast-interface for unicast peers): one that does not exist
// fails Start, lo carries sync between two syncers on loopback.
func TestBindInterface(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SO_BINDTODEVICE needs CAP_NET_RAW")
	}
	if _, err := Start(t.Context(), Config{Listen: freeAddr(t), NodeID: 1, Key: testKey, Interface: "xvsnosuch0"}, nil, nil, nil); err == nil {
		t.Fatal("Start bound to an interface that does not exist")
	}
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	var bSink memSink
	a := start(t, Config{Listen: aAddr, Peers: []netip.AddrPort{bAddr}, NodeID: 1, Interface: "lo"}, nil, nil)
	start(t, Config{Listen: bAddr, NodeID: 2, Interface: "lo"}, nil, &bSink)
	a.Publish(testConns[0])
	eventually(t, 2*time.Second, "the entry over lo", func() bool { return bSink.len() == 1 })
}
