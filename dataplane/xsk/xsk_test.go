package xsk

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/internal/netnstest"
)

// bindIn creates a UMEM and binds its first socket inside namespace ns.
func bindIn(t testing.TB, ns string, ucfg UMEMConfig, ifidx, queue int, scfg SocketConfig) (*UMEM, *Socket) {
	t.Helper()
	var u *UMEM
	var s *Socket
	netnstest.In(t, ns, func() {
		var err error
		if u, err = NewUMEM(ucfg); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := u.Close(); err != nil {
				t.Errorf("UMEM close: %v", err)
			}
		})
		if s, err = u.Bind(ifidx, queue, scfg); err != nil {
			t.Fatal(err)
		}
	})
	return u, s
}

// rebind binds another socket of u inside namespace ns.
func rebind(t testing.TB, ns string, u *UMEM, ifidx, queue int, scfg SocketConfig) *Socket {
	t.Helper()
	var s *Socket
	netnstest.In(t, ns, func() {
		var err error
		if s, err = u.Bind(ifidx, queue, scfg); err != nil {
			t.Fatal(err)
		}
	})
	return s
}

func modeName(s *Socket) string {
	if s.ZeroCopy() {
		return "zero-copy"
	}
	return "copy"
}

// heldFrames counts the frames the application holds.
func heldFrames(u *UMEM) int {
	n := 0
	for _, o := range u.owner {
		if o == ownerApp {
			n++
		}
	}
	return n
}

type workerStats struct {
	received, sent, dropped, completed int
}

// worker is a minimal forwarding loop, bounded in time: frames received on
// in go through fn, which rewrites them in place and says whether to send
// them out of out; the rest are freed. On stop it waits (bounded) for out's
// transmissions to complete.
func worker(u *UMEM, in, out *Socket, fn func(frame []byte) bool, stop <-chan struct{}, limit time.Duration) workerStats {
	var st workerStats
	descs := make([]Desc, 64)
	batch := make([]Desc, 0, 64)
	socks := []*Socket{in}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-stop:
			for i := 0; out.Outstanding() > 0 && i < 100; i++ {
				out.Kick()
				time.Sleep(time.Millisecond)
				st.completed += out.Complete()
			}
			return st
		default:
		}
		n := in.Receive(descs)
		st.received += n
		batch = batch[:0]
		for _, d := range descs[:n] {
			if fn(u.Frame(d)) {
				batch = append(batch, d)
			} else {
				u.Free(d.Addr)
				st.dropped++
			}
		}
		q := out.Transmit(batch)
		st.sent += q
		for _, d := range batch[q:] {
			u.Free(d.Addr)
			st.dropped++
		}
		st.completed += out.Complete()
		if out.Outstanding() > 0 {
			out.Kick()
		}
		if n == 0 && out.Outstanding() == 0 {
			_, _ = Poll(socks, 2*time.Millisecond)
		}
	}
	return st
}

func startWorker(u *UMEM, in, out *Socket, fn func([]byte) bool) (stop func() workerStats) {
	stopc := make(chan struct{})
	done := make(chan workerStats)
	go func() { done <- worker(u, in, out, fn, stopc, 10*time.Second) }()
	return func() workerStats {
		close(stopc)
		return <-done
	}
}

// setupSingle sets up director namespace D and peer namespace P joined by
// one veth pair, the redirect program on the director end and XDP_PASS on
// the peer end, and a UMEM with one socket on queue 0 of the director end.
// The returned function puts a new socket in the XSKMAP.
func setupSingle(t testing.TB, ucfg UMEMConfig, scfg SocketConfig) (*vethPair, *UMEM, *Socket, func(*Socket)) {
	t.Helper()
	return setupSingleWith(t, ucfg, scfg, nil)
}

// setupSingleWith is setupSingle with peerProg, if not nil, on the peer end
// instead of XDP_PASS.
func setupSingleWith(t testing.TB, ucfg UMEMConfig, scfg SocketConfig, peerProg *ebpf.Program) (*vethPair, *UMEM, *Socket, func(*Socket)) {
	t.Helper()
	needRoot(t)
	sfx := netnstest.Suffix(t)
	d, p := "xvsd"+sfx, "xvsp"+sfx
	addNetns(t, d)
	addNetns(t, p)
	v := addVeth(t, 1, d, "xvsa"+sfx, "198.18.0.1", p, "xvsb"+sfx, "198.18.0.2")
	prog, xsks := redirectProg(t)
	attachXDP(t, d, v.dirIndex, prog)
	if peerProg == nil {
		peerProg = passProg(t)
	}
	attachXDP(t, p, v.peerIndex, peerProg)
	u, s := bindIn(t, d, ucfg, v.dirIndex, 0, scfg)
	putXSK(t, xsks, s)
	return v, u, s, func(s *Socket) { putXSK(t, xsks, s) }
}

func TestRX(t *testing.T) {
	v, u, s, _ := setupSingle(t, UMEMConfig{}, SocketConfig{})
	t.Logf("socket on veth bound in %s mode", modeName(s))
	if s.Ifindex() != v.dirIndex || s.Queue() != 0 || s.FD() < 0 {
		t.Fatalf("socket reports ifindex %d queue %d fd %d", s.Ifindex(), s.Queue(), s.FD())
	}
	peer := listenUDP(t, v.peerNS, netip.AddrPortFrom(v.peerIP, 7000))
	const n = 32
	sendUDP(t, peer, netip.AddrPortFrom(v.dirIP, 9000), "rx", n)

	got := map[string]bool{}
	descs := make([]Desc, 16)
	deadline := time.Now().Add(3 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		if _, err := Poll([]*Socket{s}, 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		k := s.Receive(descs)
		for _, d := range descs[:k] {
			f, ok := parseUDP(u.Frame(d))
			if ok && f.dport == 9000 {
				if !bytes.Equal(f.dst, v.dirMAC) || !bytes.Equal(f.src, v.peerMAC) ||
					f.ipSrc != v.peerIP || f.ipDst != v.dirIP || f.sport != 7000 {
					t.Errorf("frame %s:%d > %s:%d, %s > %s; want from the peer", f.ipSrc, f.sport, f.ipDst, f.dport, f.src, f.dst)
				}
				if got[string(f.payload)] {
					t.Errorf("payload %q received twice", f.payload)
				}
				got[string(f.payload)] = true
				if h := u.Headroom(d); h < DefaultHeadroom {
					t.Errorf("received frame has headroom %d, want at least %d", h, DefaultHeadroom)
				} else if len(got) == 1 {
					t.Logf("received data starts %d bytes into its chunk", h)
				}
			}
			u.Free(d.Addr)
		}
	}
	for i := range n {
		if p := fmt.Sprintf("rx-%d", i); !got[p] {
			t.Errorf("payload %q not received", p)
		}
	}
	if len(got) != n {
		t.Fatalf("received %d distinct datagrams, want %d", len(got), n)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.RxInvalidDescs != 0 || st.RxDropped != 0 {
		t.Errorf("stats %+v: want no invalid descriptors or drops", st)
	}
	if heldFrames(u) != 0 {
		t.Errorf("%d frames still held after freeing all", heldFrames(u))
	}
	checkAccounting(t, u)
}

func TestReflect(t *testing.T) {
	v, u, s, _ := setupSingle(t, UMEMConfig{}, SocketConfig{})
	t.Logf("socket on veth bound in %s mode", modeName(s))
	peer := listenUDP(t, v.peerNS, netip.AddrPortFrom(v.peerIP, 7000))
	dst := netip.AddrPortFrom(v.dirIP, 9000)

	stop := startWorker(u, s, s, func(b []byte) bool {
		f, ok := parseUDP(b)
		if !ok || f.dport != 9000 {
			return false
		}
		swapInPlace(b, f)
		return true
	})
	const n = 200
	sendUDP(t, peer, dst, "rf", n)
	got, err := readUDP(peer, n, 5*time.Second)
	st := stop()
	t.Logf("worker: %+v", st)
	if err != nil {
		t.Errorf("peer read: %v", err)
	}
	for i := range n {
		p := fmt.Sprintf("rf-%d", i)
		from, ok := got[p]
		if !ok {
			t.Errorf("reply %q not received", p)
			continue
		}
		if from != dst {
			t.Errorf("reply %q from %v, want %v", p, from, dst)
		}
	}
	if len(got) != n {
		t.Fatalf("peer got %d replies, want %d", len(got), n)
	}
	if st.sent < n || st.completed != st.sent {
		t.Errorf("worker sent %d and completed %d, want both at least %d", st.sent, st.completed, n)
	}
	if s.Outstanding() != 0 || heldFrames(u) != 0 {
		t.Errorf("after the run: %d outstanding, %d held; want none", s.Outstanding(), heldFrames(u))
	}
	checkAccounting(t, u)
}

// TestSharedUMEM receives on socket A (veth pair 1) and sends the same
// descriptor out of socket B (veth pair 2), both on one UMEM.
func TestSharedUMEM(t *testing.T) {
	needRoot(t)
	sfx := netnstest.Suffix(t)
	d, p1, p2 := "xvsd"+sfx, "xvsp"+sfx, "xvsq"+sfx
	addNetns(t, d)
	addNetns(t, p1)
	addNetns(t, p2)
	v1 := addVeth(t, 1, d, "xvsa"+sfx, "198.18.0.1", p1, "xvsb"+sfx, "198.18.0.2")
	// P2 owns the address the client talks to, so frames forwarded with
	// only their MACs rewritten are delivered to its UDP socket.
	v2 := addVeth(t, 2, d, "xvsc"+sfx, "198.18.1.1", p2, "xvse"+sfx, "198.18.0.1")
	prog, xsks := redirectProg(t)
	attachXDP(t, d, v1.dirIndex, prog)
	attachXDP(t, p2, v2.peerIndex, passProg(t))

	const numFrames = 4096
	u, a := bindIn(t, d, UMEMConfig{NumFrames: numFrames}, v1.dirIndex, 0, SocketConfig{FillSize: 1024})
	putXSK(t, xsks, a)
	b := rebind(t, d, u, v2.dirIndex, 0, SocketConfig{FillSize: 1024})
	t.Logf("A bound in %s mode, B (shared) in %s mode", modeName(a), modeName(b))
	if a.ZeroCopy() != b.ZeroCopy() {
		t.Errorf("shared socket mode %v differs from the UMEM's %v", b.ZeroCopy(), a.ZeroCopy())
	}
	if a.FD() == b.FD() {
		t.Fatal("both sockets share one fd")
	}

	client := listenUDP(t, p1, netip.AddrPortFrom(v1.peerIP, 7000))
	server := listenUDP(t, p2, netip.AddrPortFrom(v2.peerIP, 9000))
	vip := netip.AddrPortFrom(v1.dirIP, 9000)
	forward := func(frame []byte) bool {
		f, ok := parseUDP(frame)
		if !ok || f.dport != 9000 {
			return false
		}
		copy(frame[0:6], v2.peerMAC)
		copy(frame[6:12], v2.dirMAC)
		return true
	}

	for round, tag := range []string{"sh1", "sh2"} {
		if round == 1 {
			// Close the socket that registered the UMEM while B keeps it
			// alive, and bind A again: it now shares through B.
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			a = rebind(t, d, u, v1.dirIndex, 0, SocketConfig{FillSize: 1024})
			putXSK(t, xsks, a)
		}
		stop := startWorker(u, a, b, forward)
		const n = 100
		sendUDP(t, client, vip, tag, n)
		got, err := readUDP(server, n, 5*time.Second)
		st := stop()
		t.Logf("round %d worker: %+v", round, st)
		if err != nil {
			t.Errorf("round %d server read: %v", round, err)
		}
		for i := range n {
			p := fmt.Sprintf("%s-%d", tag, i)
			if from, ok := got[p]; !ok {
				t.Errorf("%q not forwarded", p)
			} else if from != netip.AddrPortFrom(v1.peerIP, 7000) {
				t.Errorf("%q arrived from %v", p, from)
			}
		}
		if len(got) != n {
			t.Fatalf("round %d: server got %d datagrams, want %d", round, len(got), n)
		}
		if st.completed != st.sent || a.Outstanding() != 0 || b.Outstanding() != 0 {
			t.Errorf("round %d: sent %d, completed %d on B; outstanding A %d B %d",
				round, st.sent, st.completed, a.Outstanding(), b.Outstanding())
		}
		if sa, err := b.Stats(); err != nil || sa.TxInvalidDescs != 0 {
			t.Errorf("B stats %+v, %v: want no invalid TX descriptors", sa, err)
		}
		checkAccounting(t, u)
	}

	for _, s := range []*Socket{a, b} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(u.free) != numFrames {
		t.Fatalf("%d of %d frames free after closing every socket", len(u.free), numFrames)
	}
}

func TestCloseRebind(t *testing.T) {
	const numFrames = 4096
	v, u, s, put := setupSingle(t, UMEMConfig{NumFrames: numFrames}, SocketConfig{})
	peer := listenUDP(t, v.peerNS, netip.AddrPortFrom(v.peerIP, 7000))
	dst := netip.AddrPortFrom(v.dirIP, 9000)

	// A second socket on an open (ifindex, queue) is refused.
	netnstest.In(t, v.dirNS, func() {
		if _, err := u.Bind(v.dirIndex, 0, SocketConfig{}); !errors.Is(err, unix.EBUSY) {
			t.Errorf("Bind on an occupied queue: %v, want EBUSY", err)
		}
	})

	descs := make([]Desc, 8)
	for round := range 4 {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if s.Receive(descs) != 0 || s.Transmit([]Desc{{Addr: 0, Len: 1}}) != 0 || s.NeedsWakeup() {
			t.Fatal("closed socket still does I/O")
		}
		if len(u.free) != numFrames {
			t.Fatalf("round %d: %d of %d frames free after closing the only socket", round, len(u.free), numFrames)
		}
		// Bind right away on the same queue: the kernel may still be
		// releasing the old socket and answer EBUSY.
		s = rebind(t, v.dirNS, u, v.dirIndex, 0, SocketConfig{})
		put(s)
		tag := fmt.Sprintf("rb%d", round)
		sendUDP(t, peer, dst, tag, 1)
		found := false
		deadline := time.Now().Add(2 * time.Second)
		for !found && time.Now().Before(deadline) {
			_, _ = Poll([]*Socket{s}, 20*time.Millisecond)
			k := s.Receive(descs)
			for _, d := range descs[:k] {
				if f, ok := parseUDP(u.Frame(d)); ok && string(f.payload) == tag+"-0" {
					found = true
				}
				u.Free(d.Addr)
			}
		}
		if !found {
			t.Fatalf("round %d: nothing received after rebinding", round)
		}
	}
	t.Logf("EBUSY retries over 4 rebinds: %d", u.busyWaits)
	checkAccounting(t, u)

	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatalf("second UMEM Close: %v", err)
	}
	if _, err := u.Bind(v.dirIndex, 0, SocketConfig{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Bind on a closed UMEM: %v, want ErrClosed", err)
	}
	if _, ok := u.Alloc(); ok {
		t.Fatal("Alloc on a closed UMEM succeeded")
	}
}

func TestBindModes(t *testing.T) {
	v, u, s, put := setupSingle(t, UMEMConfig{}, SocketConfig{ZeroCopy: ZeroCopyOff})
	if s.ZeroCopy() {
		t.Fatal("ZeroCopyOff socket reports zero-copy")
	}
	if !s.needWakeup {
		t.Error("need_wakeup not in use by default")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	netnstest.In(t, v.dirNS, func() {
		// veth has no zero-copy: On must fail, and the failure must leave
		// the UMEM usable.
		if zs, err := u.Bind(v.dirIndex, 0, SocketConfig{ZeroCopy: ZeroCopyOn}); err == nil {
			t.Logf("veth bound in zero-copy mode (zero-copy %v)", zs.ZeroCopy())
			if err := zs.Close(); err != nil {
				t.Fatal(err)
			}
		} else {
			t.Logf("ZeroCopyOn on veth: %v", err)
		}
		if len(u.free) != len(u.owner) {
			t.Errorf("%d of %d frames free after a failed bind", len(u.free), len(u.owner))
		}
		var err error
		s, err = u.Bind(v.dirIndex, 0, SocketConfig{DisableNeedWakeup: true})
		if err != nil {
			t.Fatal(err)
		}
	})
	put(s)
	if s.needWakeup || s.NeedsWakeup() || !s.alwaysKick {
		t.Errorf("DisableNeedWakeup socket: needWakeup %v, alwaysKick %v", s.needWakeup, s.alwaysKick)
	}
	t.Logf("Auto mode on veth ended in %s mode", modeName(s))
}

// TestAllocs proves the hot path allocates nothing, idle and busy.
func TestAllocs(t *testing.T) {
	v, u, s, _ := setupSingle(t, UMEMConfig{}, SocketConfig{})
	descs := make([]Desc, 64)
	socks := []*Socket{s}

	idle := testing.AllocsPerRun(200, func() {
		n := s.Receive(descs)
		for _, d := range descs[:n] {
			u.Free(d.Addr)
		}
		s.Transmit(descs[:0])
		s.Complete()
		_ = s.NeedsWakeup()
		_, _ = Poll(socks, 0)
	})
	if idle != 0 {
		t.Errorf("idle loop allocates %v per run", idle)
	}

	// Busy: the peer has queued datagrams; reflect them.
	peer := listenUDP(t, v.peerNS, netip.AddrPortFrom(v.peerIP, 7000))
	sendUDP(t, peer, netip.AddrPortFrom(v.dirIP, 9000), "al", 400)
	time.Sleep(100 * time.Millisecond)
	received, sent := 0, 0
	busy := testing.AllocsPerRun(20, func() {
		n := s.Receive(descs)
		received += n
		for _, d := range descs[:n] {
			f, ok := parseUDPNoAlloc(u.Frame(d))
			if ok {
				swapUDP(u.Frame(d), f)
			}
		}
		q := s.Transmit(descs[:n])
		sent += q
		for _, d := range descs[q:n] {
			u.Free(d.Addr)
		}
		s.Complete()
		if s.Outstanding() > 0 {
			s.Kick()
		}
	})
	if received == 0 || sent == 0 {
		t.Fatalf("busy run received %d and sent %d: not busy", received, sent)
	}
	if busy != 0 {
		t.Errorf("busy loop allocates %v per run (received %d, sent %d)", busy, received, sent)
	}

	// Generator: frames from Alloc.
	one := make([]Desc, 1)
	gen := testing.AllocsPerRun(100, func() {
		d, ok := u.Alloc()
		if !ok {
			s.Complete()
			return
		}
		d.Len = 60
		copy(u.Frame(d), v.peerMAC)
		one[0] = d
		if s.Transmit(one) == 0 {
			u.Free(d.Addr)
		}
		s.Complete()
	})
	if gen != 0 {
		t.Errorf("generator loop allocates %v per run", gen)
	}
	t.Logf("busy run: received %d, sent %d", received, sent)
}

// parseUDPNoAlloc returns the L4 offset of an IPv4/UDP frame.
func parseUDPNoAlloc(b []byte) (int, bool) {
	if len(b) < 42 || b[12] != 0x08 || b[13] != 0 || b[23] != unix.IPPROTO_UDP {
		return 0, false
	}
	return 14 + int(b[14]&0x0f)*4, true
}

func swapUDP(b []byte, l4 int) {
	for i := range 6 {
		b[i], b[6+i] = b[6+i], b[i]
	}
	for i := range 4 {
		b[26+i], b[30+i] = b[30+i], b[26+i]
	}
	b[l4], b[l4+1], b[l4+2], b[l4+3] = b[l4+2], b[l4+3], b[l4], b[l4+1]
}

// TestBusyPoll binds a socket with SocketConfig.BusyPoll: the options are
// set as asked, and frames arrive with the socket's own BusyPoll calls
// (no poll(2) at all), reporting the NAPI instance they came through.
func TestBusyPoll(t *testing.T) {
	v, u, s, _ := setupSingle(t, UMEMConfig{}, SocketConfig{BusyPoll: 30 * time.Microsecond, BusyPollBudget: 16})
	for _, o := range []struct {
		name      string
		opt, want int
	}{
		{"SO_PREFER_BUSY_POLL", unix.SO_PREFER_BUSY_POLL, 1},
		{"SO_BUSY_POLL", unix.SO_BUSY_POLL, 30},
		// SO_BUSY_POLL_BUDGET cannot be read back.
	} {
		if got, err := unix.GetsockoptInt(s.FD(), unix.SOL_SOCKET, o.opt); err != nil || got != o.want {
			t.Errorf("%s = %d (%v), want %d", o.name, got, err, o.want)
		}
	}
	peer := listenUDP(t, v.peerNS, netip.AddrPortFrom(v.peerIP, 7000))
	const n = 16
	sendUDP(t, peer, netip.AddrPortFrom(v.dirIP, 9000), "busy", n)
	descs := make([]Desc, 16)
	got := 0
	for deadline := time.Now().Add(3 * time.Second); got < n && time.Now().Before(deadline); {
		s.BusyPoll()
		k := s.Receive(descs)
		for _, d := range descs[:k] {
			if f, ok := parseUDP(u.Frame(d)); ok && f.dport == 9000 {
				got++
			}
			u.Free(d.Addr)
		}
	}
	if got != n {
		t.Fatalf("received %d of %d datagrams", got, n)
	}
	t.Logf("%s mode; frames came through NAPI %d", modeName(s), s.NAPIID())
}
