package xsk

import (
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

func TestUMEMConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   UMEMConfig
		want UMEMConfig
		err  string
	}{
		{name: "defaults", want: UMEMConfig{FrameSize: 2048, NumFrames: 4096, Headroom: 256}},
		{name: "explicit", in: UMEMConfig{FrameSize: 4096, NumFrames: 10, Headroom: 64},
			want: UMEMConfig{FrameSize: 4096, NumFrames: 10, Headroom: 64}},
		{name: "no headroom", in: UMEMConfig{Headroom: -1}, want: UMEMConfig{FrameSize: 2048, NumFrames: 4096}},
		{name: "not power of two", in: UMEMConfig{FrameSize: 3000}, err: "power of two"},
		{name: "too small", in: UMEMConfig{FrameSize: 1024}, err: "power of two"},
		{name: "negative frames", in: UMEMConfig{NumFrames: -1}, err: "frame count"},
		{name: "too many frames", in: UMEMConfig{NumFrames: maxNumFrames + 1}, err: "frame count"},
		{name: "headroom fills frame", in: UMEMConfig{Headroom: 2048 - 256 - 10}, err: "headroom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.withDefaults()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSocketConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   SocketConfig
		want SocketConfig
		err  string
	}{
		{name: "defaults", want: SocketConfig{RxSize: 2048, TxSize: 2048, FillSize: 2048, CompSize: 2048}},
		{name: "explicit", in: SocketConfig{RxSize: 64, TxSize: 128, FillSize: 4096, CompSize: 256, ZeroCopy: ZeroCopyOff},
			want: SocketConfig{RxSize: 64, TxSize: 128, FillSize: 4096, CompSize: 256, ZeroCopy: ZeroCopyOff}},
		{name: "rx not power of two", in: SocketConfig{RxSize: 100}, err: "rx ring size"},
		{name: "fill negative", in: SocketConfig{FillSize: -2}, err: "fill ring size"},
		{name: "bad mode", in: SocketConfig{ZeroCopy: 7}, err: "zero-copy mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.withDefaults()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func testUMEM(t *testing.T, cfg UMEMConfig) *UMEM {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return newUMEM(cfg, make([]byte, cfg.FrameSize*cfg.NumFrames))
}

// checkAccounting verifies that every frame has one owner and that the free
// stack holds exactly the free frames.
func checkAccounting(t *testing.T, u *UMEM) {
	t.Helper()
	onStack := make(map[uint32]bool, len(u.free))
	for _, f := range u.free {
		if onStack[f] {
			t.Fatalf("frame %d twice on the free stack", f)
		}
		onStack[f] = true
		if u.owner[f] != ownerFree {
			t.Fatalf("frame %d on the free stack has owner %d", f, u.owner[f])
		}
	}
	for f, o := range u.owner {
		if o == ownerFree && !onStack[uint32(f)] {
			t.Fatalf("free frame %d missing from the free stack", f)
		}
	}
}

func TestUMEMAllocFree(t *testing.T) {
	u := testUMEM(t, UMEMConfig{NumFrames: 8, Headroom: 100})
	if got := u.FrameSize(); got != 2048 {
		t.Fatalf("FrameSize = %d", got)
	}
	var descs []Desc
	seen := map[uint64]bool{}
	for {
		d, ok := u.Alloc()
		if !ok {
			break
		}
		if d.Len != 0 || d.Addr%2048 != 100 || d.Addr >= 8*2048 {
			t.Fatalf("Alloc gave %+v, want Len 0 and Addr at a chunk start + 100", d)
		}
		if seen[d.Addr] {
			t.Fatalf("Alloc gave %#x twice", d.Addr)
		}
		seen[d.Addr] = true
		if got := u.Headroom(d); got != 100 {
			t.Fatalf("Headroom = %d, want 100", got)
		}
		descs = append(descs, d)
	}
	if len(descs) != 8 {
		t.Fatalf("allocated %d frames, want 8", len(descs))
	}
	checkAccounting(t, u)

	// Any address inside the chunk frees it, once.
	u.Free(descs[0].Addr + 500)
	u.Free(descs[0].Addr)
	u.Free(descs[0].Addr - 100)
	u.Free(1 << 40) // outside the UMEM
	if len(u.free) != 1 {
		t.Fatalf("free stack has %d frames after freeing one frame thrice, want 1", len(u.free))
	}
	checkAccounting(t, u)
	d, ok := u.Alloc()
	if !ok || d.Addr != descs[0].Addr {
		t.Fatalf("Alloc after Free = %+v %v, want %#x", d, ok, descs[0].Addr)
	}
	for _, d := range descs {
		u.Free(d.Addr)
	}
	if len(u.free) != 8 {
		t.Fatalf("free stack has %d frames, want 8", len(u.free))
	}
	checkAccounting(t, u)
}

func TestUMEMFrame(t *testing.T) {
	u := testUMEM(t, UMEMConfig{NumFrames: 4})
	d := Desc{Addr: 2*2048 + 300, Len: 60}
	b := u.Frame(d)
	if len(b) != 60 || cap(b) != 2048-300 {
		t.Fatalf("Frame: len %d cap %d, want 60 and %d", len(b), cap(b), 2048-300)
	}
	b[0], b[59] = 0xaa, 0xbb
	if u.area[2*2048+300] != 0xaa || u.area[2*2048+359] != 0xbb {
		t.Fatal("Frame does not alias the UMEM")
	}
	// Encapsulation: grow into the headroom.
	e := Desc{Addr: d.Addr - 20, Len: d.Len + 20}
	if got := u.Frame(e); got[20] != 0xaa {
		t.Fatal("headroom view does not line up")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Frame of a descriptor crossing its chunk did not panic")
		}
	}()
	u.Frame(Desc{Addr: 2048 - 10, Len: 20})
}

// fakeKernel stands in for the kernel side of a socket's rings.
type fakeKernel struct {
	s *Socket
}

func newFakeSocket(t *testing.T, u *UMEM, size uint32) (*Socket, *fakeKernel) {
	t.Helper()
	slot := len(u.socks)
	s := &Socket{umem: u, fd: -1, slot: slot, owner: ownerKernel + uint8(slot)}
	s.rx = *fakeDescRing(size, 0, false)
	s.tx = *fakeDescRing(size, 0, true)
	s.fill = *fakeAddrRing(size, 0, true)
	s.comp = *fakeAddrRing(size, 0, false)
	u.socks = append(u.socks, s)
	return s, &fakeKernel{s: s}
}

// receive takes up to n frames from the fill ring and posts them on the RX
// ring with a payload of their index, as the kernel does with an offset of
// off into the chunk.
func (k *fakeKernel) receive(t *testing.T, n int, off uint64) int {
	t.Helper()
	s, u := k.s, k.s.umem
	fc := atomic.LoadUint32(s.fill.consumer)
	avail := int(atomic.LoadUint32(s.fill.producer) - fc)
	rp := atomic.LoadUint32(s.rx.producer)
	room := int(s.rx.size - (rp - atomic.LoadUint32(s.rx.consumer)))
	n = min(n, avail, room)
	for i := range uint32(n) {
		addr := s.fill.addrs[(fc+i)&s.fill.mask]
		if addr&u.frameMask != 0 {
			t.Fatalf("fill ring entry %#x is not a chunk start", addr)
		}
		u.area[addr+off] = byte(rp + i)
		s.rx.descs[(rp+i)&s.rx.mask] = unix.XDPDesc{Addr: addr + off, Len: 64}
	}
	atomic.StoreUint32(s.fill.consumer, fc+uint32(n))
	atomic.StoreUint32(s.rx.producer, rp+uint32(n))
	return n
}

// send consumes the TX ring and posts every frame on the completion ring.
func (k *fakeKernel) send() []unix.XDPDesc {
	s := k.s
	tc := atomic.LoadUint32(s.tx.consumer)
	n := atomic.LoadUint32(s.tx.producer) - tc
	cp := atomic.LoadUint32(s.comp.producer)
	var sent []unix.XDPDesc
	for i := range n {
		d := s.tx.descs[(tc+i)&s.tx.mask]
		sent = append(sent, d)
		s.comp.addrs[(cp+i)&s.comp.mask] = d.Addr
	}
	atomic.StoreUint32(s.tx.consumer, tc+n)
	atomic.StoreUint32(s.comp.producer, cp+n)
	return sent
}

func TestFrameLifecycle(t *testing.T) {
	u := testUMEM(t, UMEMConfig{NumFrames: 16})
	a, ka := newFakeSocket(t, u, 8)
	b, kb := newFakeSocket(t, u, 8)

	// Receive refills A's fill ring first: 8 frames leave the free stack.
	descs := make([]Desc, 4)
	if n := a.Receive(descs); n != 0 {
		t.Fatalf("Receive on an idle ring = %d", n)
	}
	if len(u.free) != 8 || a.fill.pending() != 8 {
		t.Fatalf("after refill: %d free, %d on the fill ring; want 8 and 8", len(u.free), a.fill.pending())
	}
	checkAccounting(t, u)

	if got := ka.receive(t, 6, 512); got != 6 {
		t.Fatalf("fake kernel received %d, want 6", got)
	}
	n := a.Receive(descs)
	if n != 4 {
		t.Fatalf("Receive = %d, want 4", n)
	}
	for i, d := range descs[:n] {
		if d.Len != 64 || d.Addr&u.frameMask != 512 || u.Frame(d)[0] != byte(i) {
			t.Fatalf("desc %d = %+v payload %d", i, d, u.Frame(d)[0])
		}
		if u.owner[d.Addr>>u.frameShift] != ownerApp {
			t.Fatalf("received frame not owned by the application")
		}
	}
	// The second Receive topped A's fill ring up by the 6 consumed frames.
	if len(u.free) != 2 || a.fill.pending() != 8 {
		t.Fatalf("after second refill: %d free, %d on the fill ring; want 2 and 8", len(u.free), a.fill.pending())
	}

	// Forward two frames out of B, drop one, keep one.
	if q := b.Transmit(descs[:2]); q != 2 {
		t.Fatalf("Transmit = %d, want 2", q)
	}
	if b.Outstanding() != 2 {
		t.Fatalf("Outstanding = %d, want 2", b.Outstanding())
	}
	// Frames already queued cannot be queued again, and the caller keeps
	// the rest.
	if q := b.Transmit(descs[1:3]); q != 0 {
		t.Fatalf("Transmit of a queued frame = %d, want 0", q)
	}
	u.Free(descs[2].Addr)
	checkAccounting(t, u)

	sent := kb.send()
	if len(sent) != 2 || sent[0].Addr != descs[0].Addr || sent[1].Len != 64 {
		t.Fatalf("kernel sent %+v", sent)
	}
	if c := b.Complete(); c != 2 {
		t.Fatalf("Complete = %d, want 2", c)
	}
	if b.Outstanding() != 0 || len(u.free) != 5 {
		t.Fatalf("after Complete: outstanding %d, %d free; want 0 and 5", b.Outstanding(), len(u.free))
	}
	checkAccounting(t, u)

	// Closing A gives back its fill ring's frames and the two still on its
	// RX ring; the frame the application holds stays held.
	u.reclaim(a.slot)
	if len(u.free) != 15 || u.owner[descs[3].Addr>>u.frameShift] != ownerApp {
		t.Fatalf("after reclaim: %d free, want 15 and descs[3] held", len(u.free))
	}
	u.Free(descs[3].Addr)
	if len(u.free) != 16 {
		t.Fatalf("%d free at the end, want 16", len(u.free))
	}
	checkAccounting(t, u)
}

func TestTransmitRejects(t *testing.T) {
	u := testUMEM(t, UMEMConfig{NumFrames: 8})
	s, k := newFakeSocket(t, u, 4)
	good, _ := u.Alloc()
	good.Len = 60
	free := Desc{Addr: 5 * 2048, Len: 60} // never allocated
	long, _ := u.Alloc()
	long.Len = 2048 // from chunk start + headroom, runs past the chunk
	empty, _ := u.Alloc()
	for _, tc := range []struct {
		name  string
		descs []Desc
		want  int
	}{
		{"free frame", []Desc{free, good}, 0},
		{"past the chunk", []Desc{long}, 0},
		{"empty", []Desc{empty}, 0},
		{"outside the UMEM", []Desc{{Addr: 1 << 30, Len: 10}}, 0},
		{"good then bad", []Desc{good, long}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.Transmit(tc.descs); got != tc.want {
				t.Fatalf("Transmit = %d, want %d", got, tc.want)
			}
			if p := s.tx.cachedProd; p != atomic.LoadUint32(s.tx.producer) {
				t.Fatalf("reserved slots leaked: cached %d, published %d", p, atomic.LoadUint32(s.tx.producer))
			}
		})
	}
	if sent := k.send(); len(sent) != 1 || sent[0].Addr != good.Addr {
		t.Fatalf("kernel saw %+v, want only the good frame", sent)
	}
	// A full ring queues what fits.
	var batch []Desc
	for range 5 {
		d, ok := u.Alloc()
		if !ok {
			break
		}
		d.Len = 60
		batch = append(batch, d)
	}
	if got, want := s.Transmit(batch), min(len(batch), 4); got != want {
		t.Fatalf("Transmit of %d on a ring of 4 = %d, want %d", len(batch), got, want)
	}
}

func TestQueuesIn(t *testing.T) {
	root := t.TempDir()
	mk := func(dir string) {
		if err := os.MkdirAll(root+"/"+dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mk("eth0/queues/rx-0")
	mk("eth0/queues/rx-1")
	mk("eth0/queues/rx-2")
	mk("eth0/queues/tx-0")
	mk("noq/queues/tx-0")
	for _, tc := range []struct {
		name string
		want int
		err  bool
	}{
		{"eth0", 3, false},
		{"noq", 0, true},
		{"missing", 0, true},
		{"../eth0", 0, true},
		{"", 0, true},
		{"..", 0, true},
	} {
		got, err := queuesIn(root, tc.name)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("queuesIn(%q) = %d, %v; want %d, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestQueuesLoopback(t *testing.T) {
	n, err := Queues("lo")
	if err != nil {
		t.Skipf("no sysfs: %v", err)
	}
	if n < 1 {
		t.Fatalf("Queues(lo) = %d", n)
	}
}
