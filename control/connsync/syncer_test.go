package connsync

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memSink records what it is given.
type memSink struct {
	mu    sync.Mutex
	conns []Conn
	calls int
}

func (s *memSink) Apply(conns []Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = append(s.conns, conns...)
	s.calls++
}

func (s *memSink) get() []Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Conn(nil), s.conns...)
}

func (s *memSink) applied() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *memSink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

type sliceSource []Conn

func (s sliceSource) Snapshot(yield func(Conn) bool) {
	for _, c := range s {
		if !yield(c) {
			return
		}
	}
}

// freeAddr returns a loopback UDP address that was free a moment ago.
func freeAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func start(t *testing.T, cfg Config, src Source, sink Sink) *Syncer {
	t.Helper()
	if cfg.Key == nil {
		cfg.Key = testKey
	}
	s, err := Start(context.Background(), cfg, src, sink, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// eventually polls cond every millisecond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// manyConns returns n distinct entries, alternating families.
func manyConns(n int) []Conn {
	out := make([]Conn, n)
	for i := range out {
		c := testConns[i%len(testConns)]
		c.Client = netip.AddrPortFrom(c.Client.Addr(), uint16(i))
		if c.Client.Addr().Is4() {
			a := c.Client.Addr().As4()
			a[2] = byte(i >> 16)
			c.Client = netip.AddrPortFrom(netip.AddrFrom4(a), uint16(i))
		} else {
			a := c.Client.Addr().As16()
			a[13] = byte(i >> 16)
			c.Client = netip.AddrPortFrom(netip.AddrFrom16(a), uint16(i))
		}
		c.State = uint8(i)
		out[i] = c
	}
	return out
}

// sameConn compares everything but Expires, which may have shrunk by the time spent waiting.
func sameConn(got, want Conn, slack time.Duration) bool {
	e := got.Expires
	got.Expires = want.Expires
	return got == want && e <= want.Expires && e >= want.Expires-slack
}

func TestSyncTwoPeers(t *testing.T) {
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	var aSink, bSink memSink
	a := start(t, Config{Listen: aAddr, Peers: []netip.AddrPort{bAddr}, NodeID: 1}, nil, &aSink)
	b := start(t, Config{Listen: bAddr, Peers: []netip.AddrPort{aAddr}, NodeID: 2}, nil, &bSink)

	want := manyConns(300)
	for _, c := range want {
		a.Publish(c)
	}
	eventually(t, 2*time.Second, "entries at B", func() bool { return bSink.len() >= len(want) })
	got := bSink.get()
	if len(got) != len(want) {
		t.Fatalf("B got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if !sameConn(got[i], want[i], time.Second) {
			t.Fatalf("entry %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	as, bs := a.Stats(), b.Stats()
	if as.SentEntries != uint64(len(want)) || bs.RecvEntries != uint64(len(want)) {
		t.Fatalf("sent %d, received %d entries", as.SentEntries, bs.RecvEntries)
	}
	// 300 entries of 26 to 80 bytes fill about 12 datagrams.
	if bSink.applied() >= len(want)/10 {
		t.Fatalf("%d entries in %d datagrams", len(want), bSink.applied())
	}
	if as.SentBytes/as.SentDatagrams > MaxDatagram {
		t.Fatalf("%d bytes in %d datagrams", as.SentBytes, as.SentDatagrams)
	}
	// Each asks the other for a snapshot at Start, from its own goroutine;
	// A's may have gone before B listened.
	eventually(t, 2*time.Second, "both snapshot requests and A's snapshot", func() bool {
		as, bs = a.Stats(), b.Stats()
		return as.SnapshotRequests >= 1 && bs.SnapshotRequests >= 1 && as.SnapshotsServed >= 1
	})
	if as.SnapshotRequests != 1 || bs.SnapshotRequests != 1 || as.SnapshotsServed != 1 {
		t.Fatalf("snapshot requests %d, %d; A served %d", as.SnapshotRequests, bs.SnapshotRequests, as.SnapshotsServed)
	}
	eventually(t, time.Second, "B's empty snapshot", func() bool { return b.Stats().SnapshotsReceived == 1 })
	if aSink.len() != 0 {
		t.Fatalf("A received %d entries", aSink.len())
	}
	if bs.AuthFailures+bs.Replays+bs.Malformed+bs.ClockSkew != 0 {
		t.Fatalf("B rejected datagrams: %+v", bs)
	}
}

func TestBatchDelay(t *testing.T) {
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	var bSink memSink
	a := start(t, Config{Listen: aAddr, Peers: []netip.AddrPort{bAddr}, NodeID: 1, BatchDelay: 100 * time.Millisecond}, nil, nil)
	start(t, Config{Listen: bAddr, NodeID: 2}, nil, &bSink)
	t0 := time.Now()
	a.Publish(testConns[0])
	a.Publish(testConns[1])
	eventually(t, time.Second, "entries at B", func() bool { return bSink.len() == 2 })
	if d := time.Since(t0); d < 90*time.Millisecond {
		t.Fatalf("a partial batch went after %v, before BatchDelay", d)
	}
	if bSink.applied() != 1 {
		t.Fatalf("2 entries in %d datagrams", bSink.applied())
	}
}

func TestSnapshotJoin(t *testing.T) {
	aAddr, cAddr := freeAddr(t), freeAddr(t)
	src := sliceSource(manyConns(2000))
	a := start(t, Config{Listen: aAddr, Peers: []netip.AddrPort{cAddr}, NodeID: 1}, src, nil)
	var cSink memSink
	c := start(t, Config{Listen: cAddr, Peers: []netip.AddrPort{aAddr}, NodeID: 3}, nil, &cSink)
	eventually(t, 3*time.Second, "snapshot at C", func() bool { return c.Stats().SnapshotsReceived == 1 })
	got := cSink.get()
	if len(got) != len(src) {
		t.Fatalf("C got %d entries, want %d", len(got), len(src))
	}
	for i := range src {
		if got[i] != src[i] {
			t.Fatalf("entry %d: got %+v, want %+v", i, got[i], src[i])
		}
	}
	as, cs := a.Stats(), c.Stats()
	if as.SnapshotsServed != 1 || as.SnapshotEntriesSent != uint64(len(src)) || cs.SnapshotEntriesReceived != uint64(len(src)) {
		t.Fatalf("A served %d snapshots of %d entries; C received %d", as.SnapshotsServed, as.SnapshotEntriesSent, cs.SnapshotEntriesReceived)
	}
	if cs.SnapshotsIncomplete != 0 {
		t.Fatalf("incomplete snapshots: %d", cs.SnapshotsIncomplete)
	}

	// A second request gets everything again.
	c.RequestSnapshot()
	eventually(t, 3*time.Second, "second snapshot", func() bool { return c.Stats().SnapshotsReceived == 2 })
	if n := cSink.len(); n != 2*len(src) {
		t.Fatalf("after two snapshots C has %d entries, want %d", n, 2*len(src))
	}
}

func TestSnapshotPaced(t *testing.T) {
	aAddr, cAddr := freeAddr(t), freeAddr(t)
	src := sliceSource(manyConns(1000)) // about 50 kB
	const rate = 100_000
	start(t, Config{Listen: aAddr, Peers: []netip.AddrPort{cAddr}, NodeID: 1, MaxBytesPerSecond: rate}, src, nil)
	var cSink memSink
	t0 := time.Now()
	c := start(t, Config{Listen: cAddr, Peers: []netip.AddrPort{aAddr}, NodeID: 3}, nil, &cSink)
	eventually(t, 3*time.Second, "snapshot at C", func() bool { return c.Stats().SnapshotsReceived == 1 })
	d := time.Since(t0)
	bytes := c.Stats().SnapshotEntriesReceived // a lower bound of the bytes: at least 26 per entry
	if min := time.Duration(float64(bytes*entrySize4-rate/20) / rate * float64(time.Second)); d < min {
		t.Fatalf("snapshot of %d entries took %v, less than the %v the limit allows", bytes, d, min)
	}
}

func TestWrongKey(t *testing.T) {
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	var aSink, bSink memSink
	b := start(t, Config{Listen: bAddr, Peers: []netip.AddrPort{aAddr}, NodeID: 2, Key: []byte("not the key, but long enough")}, sliceSource(testConns), &bSink)
	a := start(t, Config{Listen: aAddr, Peers: []netip.AddrPort{bAddr}, NodeID: 1}, nil, &aSink)
	for _, c := range testConns {
		a.Publish(c)
	}
	eventually(t, 2*time.Second, "rejections at B", func() bool { return b.Stats().AuthFailures >= 2 })
	time.Sleep(20 * time.Millisecond)
	as, bs := a.Stats(), b.Stats()
	// A's snapshot request and its entries.
	if bs.AuthFailures != as.SentDatagrams || bs.RecvDatagrams != 0 || bs.SnapshotsServed != 0 || bSink.len() != 0 {
		t.Fatalf("B: %d auth failures for %d datagrams sent, %d accepted, %d served, %d entries",
			bs.AuthFailures, as.SentDatagrams, bs.RecvDatagrams, bs.SnapshotsServed, bSink.len())
	}
	if as.RecvDatagrams != 0 || aSink.len() != 0 {
		t.Fatalf("A accepted %d datagrams from B", as.RecvDatagrams)
	}
}

// capture starts a plain UDP socket and returns it and a function that reads the next datagram.
func capture(t *testing.T) (*net.UDPConn, func() []byte) {
	t.Helper()
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, func() []byte {
		t.Helper()
		buf := make([]byte, 2048)
		l.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := l.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("capture: %v", err)
		}
		return buf[:n]
	}
}

func TestRejects(t *testing.T) {
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	l, next := capture(t)
	var bSink memSink
	a := start(t, Config{Listen: aAddr, Peers: []netip.AddrPort{bAddr, l.LocalAddr().(*net.UDPAddr).AddrPort()}, NodeID: 1}, nil, nil)
	b := start(t, Config{Listen: bAddr, NodeID: 2}, nil, &bSink)

	if d := next(); d[5] != msgSnapshotRequest {
		t.Fatalf("first datagram of type %d, want a snapshot request", d[5])
	}
	a.Publish(testConns[0])
	dgram := next()
	eventually(t, time.Second, "the entry at B", func() bool { return bSink.len() == 1 })

	send := func(b []byte) {
		t.Helper()
		if _, err := l.WriteToUDPAddrPort(b, bAddr); err != nil {
			t.Fatal(err)
		}
	}
	mangle := func(f func([]byte)) []byte { b := bytes.Clone(dgram); f(b); return b }
	signed := func(typ uint8, target, request, aux uint32, seq uint64, ts time.Time, conns []Conn) []byte {
		return encodeOne(t, typ, target, request, aux, seq, ts.UnixNano(), conns)
	}
	base := uint64(time.Now().UnixNano())
	for _, tc := range []struct {
		name  string
		b     []byte
		count func(Stats) uint64
	}{
		{"replay", dgram, func(s Stats) uint64 { return s.Replays }},
		{"replay again", dgram, func(s Stats) uint64 { return s.Replays }},
		{"flipped bit", mangle(func(b []byte) { b[headerLen+5] ^= 4 }), func(s Stats) uint64 { return s.AuthFailures }},
		{"new sequence, old MAC", mangle(func(b []byte) { b[31]++ }), func(s Stats) uint64 { return s.AuthFailures }},
		{"cut by one", dgram[:len(dgram)-1], func(s Stats) uint64 { return s.AuthFailures }},
		{"cut to header", dgram[:headerLen], func(s Stats) uint64 { return s.Truncated }},
		{"empty", nil, func(s Stats) uint64 { return s.Truncated }},
		{"version 2", mangle(func(b []byte) { b[4] = 2 }), func(s Stats) uint64 { return s.BadVersion }},
		{"bad magic", mangle(func(b []byte) { b[1] = 0 }), func(s Stats) uint64 { return s.Malformed }},
		{"oversize", make([]byte, MaxDatagram+100), func(s Stats) uint64 { return s.Malformed }},
		{"signed but inconsistent", resign(mangle(func(b []byte) { b[7] = 3 })), func(s Stats) uint64 { return s.Malformed }},
		{"31 s old", signed(msgEntries, 0, 0, 0, base+1, time.Now().Add(-31*time.Second), testConns[:1]), func(s Stats) uint64 { return s.ClockSkew }},
		{"31 s ahead", signed(msgEntries, 0, 0, 0, base+2, time.Now().Add(31*time.Second), testConns[:1]), func(s Stats) uint64 { return s.ClockSkew }},
		{"own node id", func() []byte {
			e := newEncoder(testKey)
			e.begin(msgEntries, 0, 0)
			e.add(&testConns[0], 0)
			return bytes.Clone(e.finish(2, base+3, time.Now().UnixNano(), 0))
		}(), func(s Stats) uint64 { return s.Own }},
		{"chunk for another node", signed(msgSnapshotChunk, 9, 1, 0, base+4, time.Now(), testConns[:1]), func(s Stats) uint64 { return s.Misdirected }},
		{"sequence far behind", signed(msgEntries, 0, 0, 0, base-1e9, time.Now(), testConns[:1]), func(s Stats) uint64 { return s.Replays }},
	} {
		before := b.Stats()
		send(tc.b)
		eventually(t, time.Second, tc.name+" counted", func() bool { return tc.count(b.Stats()) == tc.count(before)+1 })
		if after := b.Stats(); after.RecvDatagrams != before.RecvDatagrams {
			t.Fatalf("%s: accepted", tc.name)
		}
	}
	if n := bSink.len(); n != 1 {
		t.Fatalf("B applied %d entries, want 1", n)
	}

	// Within the skew tolerance, from another node, a fresh datagram is accepted.
	send(signed(msgEntries, 0, 0, 0, base+5, time.Now().Add(-25*time.Second), testConns[1:2]))
	eventually(t, time.Second, "a good datagram", func() bool { return bSink.len() == 2 })
	if got := bSink.get()[1]; got != testConns[1] {
		t.Fatalf("got %+v, want %+v", got, testConns[1])
	}
}

func TestSnapshotIncomplete(t *testing.T) {
	bAddr := freeAddr(t)
	l, _ := capture(t)
	var bSink memSink
	b := start(t, Config{Listen: bAddr, NodeID: 2}, nil, &bSink)
	base := uint64(time.Now().UnixNano())
	send := func(typ uint8, request, aux uint32, seq uint64, conns []Conn) {
		if _, err := l.WriteToUDPAddrPort(encodeOne(t, typ, 2, request, aux, seq, time.Now().UnixNano(), conns), bAddr); err != nil {
			t.Fatal(err)
		}
	}
	send(msgSnapshotChunk, 5, 0, base+1, testConns[:3])
	send(msgSnapshotChunk, 5, 0, base+2, testConns[3:])
	send(msgSnapshotEnd, 5, uint32(len(testConns)), base+3, nil)
	eventually(t, time.Second, "a complete snapshot", func() bool { return b.Stats().SnapshotsReceived == 1 })
	send(msgSnapshotChunk, 6, 0, base+4, testConns[:3])
	send(msgSnapshotEnd, 6, uint32(len(testConns)), base+6, nil)
	eventually(t, time.Second, "an incomplete snapshot", func() bool { return b.Stats().SnapshotsIncomplete == 1 })
	if n := bSink.len(); n != len(testConns)+3 {
		t.Fatalf("B applied %d entries", n)
	}
}

func TestBandwidthLimit(t *testing.T) {
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	const rate = 200_000
	a := start(t, Config{Listen: aAddr, Peers: []netip.AddrPort{bAddr}, NodeID: 1, MaxBytesPerSecond: rate}, nil, nil)
	b := start(t, Config{Listen: bAddr, NodeID: 2}, nil, nil)
	conns := manyConns(1 << 16)
	t0 := time.Now()
	published := 0
	// About 100 entries a millisecond, twenty times the limit, all distinct flows so that few coalesce.
	for time.Since(t0) < time.Second {
		for range 100 {
			a.Publish(conns[published%len(conns)])
			published++
		}
		time.Sleep(time.Millisecond)
	}
	s := a.Stats()
	elapsed := time.Since(t0)
	want := float64(rate) * elapsed.Seconds()
	if got := float64(s.SentBytes); got < 0.8*want || got > 1.2*want {
		t.Fatalf("sent %.0f bytes in %v, want %.0f ± 20%%", got, elapsed, want)
	}
	dropped := s.Drops.QueueFull + s.Drops.RateLimited
	if dropped == 0 || s.SentEntries+dropped+s.Coalesced > uint64(published) {
		t.Fatalf("published %d, sent %d, dropped %d, coalesced %d", published, s.SentEntries, dropped, s.Coalesced)
	}
	if float64(s.SentEntries+dropped+s.Coalesced) < 0.8*float64(published) {
		t.Fatalf("published %d, accounted for %d", published, s.SentEntries+dropped+s.Coalesced)
	}
	t.Logf("published %d in %v: sent %d entries (%d bytes), dropped %d queue full + %d rate, coalesced %d",
		published, elapsed, s.SentEntries, s.SentBytes, s.Drops.QueueFull, s.Drops.RateLimited, s.Coalesced)
	eventually(t, time.Second, "B to receive what A sent", func() bool { return b.Stats().RecvEntries >= s.SentEntries })
}

func TestCoalesce(t *testing.T) {
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	var bSink memSink
	// The bucket's burst (one datagram) is spent on the first datagram, so the rest wait and coalesce.
	a := start(t, Config{Listen: aAddr, Peers: []netip.AddrPort{bAddr}, NodeID: 1, MaxBytesPerSecond: 5000, BatchDelay: time.Millisecond}, nil, nil)
	start(t, Config{Listen: bAddr, NodeID: 2}, nil, &bSink)
	c := testConns[0]
	for i := range 200 {
		c.State = uint8(i)
		a.Publish(c)
		if i%50 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	eventually(t, 2*time.Second, "the last state at B", func() bool {
		got := bSink.get()
		return len(got) > 0 && got[len(got)-1].State == 199
	})
	s := a.Stats()
	if s.Coalesced == 0 || s.SentEntries+s.Coalesced != 200 {
		t.Fatalf("200 updates of one flow: %d sent, %d coalesced", s.SentEntries, s.Coalesced)
	}
}

func TestPublishNonBlocking(t *testing.T) {
	aAddr := freeAddr(t)
	a := start(t, Config{Listen: aAddr, Peers: []netip.AddrPort{freeAddr(t)}, NodeID: 1, MaxBytesPerSecond: 1000}, nil, nil)
	conns := manyConns(1000)
	t0 := time.Now()
	for i := range 100_000 {
		a.Publish(conns[i%len(conns)])
	}
	d := time.Since(t0)
	t.Logf("1e5 Publish calls in %v", d)
	if d > raceSlowdown*100*time.Millisecond {
		t.Fatalf("1e5 Publish calls took %v", d)
	}
	if s := a.Stats(); s.Drops.QueueFull+s.Drops.RateLimited == 0 {
		t.Fatalf("no overflow counted: %+v", s.Drops)
	}
	invalid := testConns[0]
	invalid.Real = netip.AddrPort{}
	a.Publish(invalid)
	if n := a.Stats().Drops.Invalid; n != 1 {
		t.Fatalf("invalid entries counted: %d", n)
	}
}

func TestPublishAllocs(t *testing.T) {
	a := start(t, Config{Listen: freeAddr(t), NodeID: 1, QueueSize: 4}, nil, nil)
	c := testConns[3]
	if n := testing.AllocsPerRun(1000, func() { a.Publish(c) }); n != 0 {
		t.Fatalf("Publish allocates %v times", n)
	}
}

type countSink struct{ n int }

func (s *countSink) Apply(conns []Conn) { s.n += len(conns) }

func TestReceiveAllocs(t *testing.T) {
	var sink countSink
	s := &Syncer{cfg: Config{NodeID: 2}, sink: &sink, log: zaptest.NewLogger(t), serveReq: make(chan snapshotRequest, 1)}
	r := receiver{s: s, dec: newDecoder(testKey), peers: map[uint32]*peerState{}}
	now := time.Now()
	seq := uint64(now.UnixNano())
	dgrams := make([][]byte, 102)
	for i := range dgrams {
		dgrams[i] = encodeOne(t, msgEntries, 0, 0, 0, seq+uint64(i), now.UnixNano(), testConns)
	}
	r.handle(dgrams[0], aAddrForTest, now)
	i := 0
	if n := testing.AllocsPerRun(100, func() {
		i++
		r.handle(dgrams[i], aAddrForTest, now)
	}); n != 0 {
		t.Fatalf("receiving allocates %v times", n)
	}
	if sink.n != len(dgrams)*len(testConns) {
		t.Fatalf("applied %d entries, want %d", sink.n, len(dgrams)*len(testConns))
	}
}

var aAddrForTest = netip.MustParseAddrPort("127.0.0.1:1")

func TestSendAllocs(t *testing.T) {
	bAddr := freeAddr(t)
	s := &Syncer{
		cfg:    Config{NodeID: 1, Key: testKey},
		peers:  []netip.AddrPort{bAddr},
		log:    zaptest.NewLogger(t),
		bucket: newBucket(1e12, 1e9, time.Now()),
		start:  time.Now(),
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s.conn = conn
	enc := newEncoder(testKey)
	p := newPending(1024)
	conns := manyConns(100)
	if n := testing.AllocsPerRun(100, func() {
		for i := range conns {
			s.enqueue(p, &conns[i], 0)
		}
		s.flush(enc, p, time.Now(), true)
	}); n != 0 {
		t.Fatalf("batching and sending allocate %v times", n)
	}
	if st := s.Stats(); st.SentEntries != 101*uint64(len(conns)) {
		t.Fatalf("sent %d entries", st.SentEntries)
	}
}

func TestContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, Config{Listen: freeAddr(t), Peers: []netip.AddrPort{freeAddr(t)}, Key: testKey, NodeID: 1}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	eventually(t, time.Second, "goroutines to stop", func() bool { return goleak.Find() == nil })
	if err := s.Close(); err != nil {
		t.Fatalf("close after cancel: %v", err)
	}
	s.Publish(testConns[0]) // after Close: neither blocks nor panics
}

func TestStartErrors(t *testing.T) {
	good := Config{Listen: ap("127.0.0.1:0"), Key: testKey, NodeID: 1}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"no listen", func(c *Config) { c.Listen = netip.AddrPort{} }},
		{"short key", func(c *Config) { c.Key = []byte("short") }},
		{"node 0", func(c *Config) { c.NodeID = 0 }},
		{"bad peer", func(c *Config) { c.Peers = []netip.AddrPort{{}} }},
		{"peer port 0", func(c *Config) { c.Peers = []netip.AddrPort{ap("127.0.0.1:0")} }},
		{"negative rate", func(c *Config) { c.MaxBytesPerSecond = -1 }},
		{"negative delay", func(c *Config) { c.BatchDelay = -1 }},
		{"address in use", func(c *Config) { c.Listen = aInUse(t) }},
		{"no such interface", func(c *Config) {
			c.Peers = []netip.AddrPort{ap("239.1.2.3:7000")}
			c.Interface = "xvsnonexist0"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.mod(&cfg)
			s, err := Start(context.Background(), cfg, nil, nil, nil)
			if err == nil {
				s.Close()
				t.Fatal("Start succeeded")
			}
			t.Log(err)
		})
	}
	s, err := Start(context.Background(), good, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := s.LocalAddr(); p.Port() == 0 || p.Addr() != good.Listen.Addr() {
		t.Fatalf("LocalAddr %v", p)
	}
	s.Close()
}

func aInUse(t *testing.T) netip.AddrPort {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func ExampleStart() {
	// Two directors on one host: B receives, A sends to B.
	key := []byte("a shared secret of 16+ bytes")
	var got memSink
	b, err := Start(context.Background(), Config{Listen: netip.MustParseAddrPort("127.0.0.1:0"), Key: key, NodeID: 2}, nil, &got, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	a, err := Start(context.Background(), Config{
		Listen: netip.MustParseAddrPort("127.0.0.1:0"),
		Peers:  []netip.AddrPort{b.LocalAddr()},
		Key:    key,
		NodeID: 1,
	}, nil, nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	a.Publish(Conn{Proto: 6, Client: netip.MustParseAddrPort("198.18.0.1:40000"),
		Virtual: netip.MustParseAddrPort("198.18.1.1:80"), Real: netip.MustParseAddrPort("198.18.2.1:80"),
		Method: 1, State: 1, Expires: time.Minute})
	for range 1000 {
		if got.len() > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	c := got.get()[0]
	fmt.Println(c.Client, "->", c.Real)
	// Output: 198.18.0.1:40000 -> 198.18.2.1:80
}

func TestStartCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := Start(ctx, Config{Listen: freeAddr(t), Key: testKey, NodeID: 1}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "goroutines to stop", func() bool { return goleak.Find() == nil })
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// blockingSource yields entries until told to stop, as a huge table would.
type blockingSource struct{ yielded chan int }

func (b blockingSource) Snapshot(yield func(Conn) bool) {
	for i := 0; ; i++ {
		c := testConns[0]
		c.Client = netip.AddrPortFrom(c.Client.Addr(), uint16(i))
		if !yield(c) {
			b.yielded <- i
			return
		}
	}
}

func TestCloseStopsSnapshot(t *testing.T) {
	aAddr, cAddr := freeAddr(t), freeAddr(t)
	src := blockingSource{yielded: make(chan int, 1)}
	a, err := Start(context.Background(), Config{Listen: aAddr, Peers: []netip.AddrPort{cAddr}, Key: testKey, NodeID: 1, MaxBytesPerSecond: 50_000}, src, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := start(t, Config{Listen: cAddr, Peers: []netip.AddrPort{aAddr}, NodeID: 3}, nil, nil)
	eventually(t, 2*time.Second, "the snapshot to start", func() bool { return c.Stats().SnapshotEntriesReceived > 0 })
	t0 := time.Now()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 100*time.Millisecond {
		t.Fatalf("Close took %v while serving a snapshot", d)
	}
	select {
	case n := <-src.yielded:
		t.Logf("snapshot stopped after %d entries", n)
	default:
		t.Fatal("Source still iterating after Close")
	}
	if s := a.Stats(); s.SnapshotsServed != 0 {
		t.Fatalf("an interrupted snapshot counted as served")
	}
}

// TestRoles: IPVS's sync daemon roles and syncid. A master stamps its sync
// id on what it sends; a backup installs entries with its own id (any, when
// it has 0) and counts the others; a syncer that is no backup installs
// nothing, and one that is no master sends nothing and serves no snapshot.
func TestRoles(t *testing.T) {
	for _, tt := range []struct {
		name           string
		sender, recv   Role
		sendID, recvID uint8
		// what the receiver does with the sender's entries
		installed, wrongID, notBackup bool
	}{
		{name: "same id", sender: Master, recv: Backup, sendID: 1, recvID: 1, installed: true},
		{name: "backup takes any id with 0", sender: Master, recv: Backup, sendID: 7, recvID: 0, installed: true},
		{name: "wrong id", sender: Master, recv: Backup, sendID: 1, recvID: 2, wrongID: true},
		{name: "id 0 is not id 2", sender: Master, recv: Backup, sendID: 0, recvID: 2, wrongID: true},
		{name: "both roles", sender: Master | Backup, recv: Master | Backup, installed: true},
		{name: "receiver is no backup", sender: Master, recv: Master, notBackup: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			aAddr, bAddr := freeAddr(t), freeAddr(t)
			var aSink, bSink memSink
			a := start(t, Config{Listen: aAddr, Peers: []netip.AddrPort{bAddr}, NodeID: 1, Roles: tt.sender, SyncID: tt.sendID}, nil, &aSink)
			b := start(t, Config{Listen: bAddr, Peers: []netip.AddrPort{aAddr}, NodeID: 2, Roles: tt.recv, SyncID: tt.recvID}, nil, &bSink)
			want := manyConns(5)
			for _, c := range want {
				a.Publish(c)
			}
			var bs Stats
			eventually(t, 2*time.Second, "B to see A's entries", func() bool {
				bs = b.Stats()
				return bs.RecvEntries >= uint64(len(want)) || bs.WrongSyncID > 0 || bs.NotBackup > 0
			})
			if got := bSink.len() == len(want); got != tt.installed {
				t.Errorf("installed %d of %d entries (want all: %v)", bSink.len(), len(want), tt.installed)
			}
			if (bs.WrongSyncID > 0) != tt.wrongID || (bs.NotBackup > 0) != tt.notBackup {
				t.Errorf("wrong sync id %d, not backup %d", bs.WrongSyncID, bs.NotBackup)
			}
			if as := a.Stats(); as.SnapshotRequests > 0 != tt.sender.Has(Backup) {
				t.Errorf("A (roles %d) asked for %d snapshots", tt.sender, as.SnapshotRequests)
			}
		})
	}
}

// TestNoMasterNoSnapshot: a backup's snapshot request to a syncer that is
// no master is refused (counted), and a backup's own entries go nowhere.
func TestNoMasterNoSnapshot(t *testing.T) {
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	var aSink memSink
	a := start(t, Config{Listen: aAddr, Peers: []netip.AddrPort{bAddr}, NodeID: 1, Roles: Backup}, sliceSource(manyConns(3)), &aSink)
	b := start(t, Config{Listen: bAddr, Peers: []netip.AddrPort{aAddr}, NodeID: 2, Roles: Backup}, sliceSource(manyConns(3)), nil)
	// A listens before B starts, so B's request reaches it (A's may have
	// gone before B listened).
	eventually(t, 2*time.Second, "B's request refused", func() bool { return a.Stats().NotMaster >= 1 })
	b.Publish(testConns[0])
	if s := b.Stats(); s.SentEntries != 0 || s.SnapshotsServed != 0 || aSink.len() != 0 {
		t.Fatalf("a backup sent %d entries, served %d snapshots; A installed %d", s.SentEntries, s.SnapshotsServed, aSink.len())
	}
}
