package connsync

import (
	"bytes"
	"errors"
	"math"
	"net/netip"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// testConns covers both families on each side, with and without a local address, and every field.
var testConns = []Conn{
	{Proto: 6, Client: ap("198.18.0.10:40000"), Virtual: ap("198.18.1.1:80"), Real: ap("198.18.2.5:8080"),
		Method: 1, State: 3, Expires: 900 * time.Second},
	{Proto: 17, Client: ap("[fd00::10]:5353"), Virtual: ap("[fd00:1::1]:53"), Real: ap("[fd00:2::5]:53"),
		Method: 0, State: 0, Expires: 300 * time.Second},
	{Proto: 6, Client: ap("198.18.0.11:1"), Virtual: ap("198.18.1.1:443"), Real: ap("198.18.2.6:443"),
		Local: ap("198.18.3.1:61000"), Method: 3, State: 7, Expires: 2 * time.Second},
	{Proto: 6, Client: ap("[fd00::11]:65535"), Virtual: ap("[fd00:1::1]:443"), Real: ap("[fd00:2::6]:443"),
		Local: ap("[fd00:3::1]:1024"), Method: 3, State: 1, Expires: 60 * time.Second},
	{Proto: 6, Client: ap("198.18.0.12:2000"), Virtual: ap("198.18.1.2:80"), Real: ap("[fd00:2::7]:80"),
		Local: ap("[fd00:3::2]:2000"), Method: 3, State: 2, Expires: time.Millisecond},
	{Proto: 17, Client: ap("[::ffff:198.18.0.13]:9"), Virtual: ap("[::ffff:198.18.1.3]:9"),
		Real: ap("198.18.2.8:0"), Method: 2, State: 255, Expires: 0},
}

func encodeOne(t testing.TB, typ uint8, target, request, aux uint32, seq uint64, ts int64, conns []Conn) []byte {
	t.Helper()
	e := newEncoder(testKey)
	e.begin(typ, target, request)
	for i := range conns {
		c := &conns[i]
		if !e.fits(entrySize(c)) {
			t.Fatalf("entry %d does not fit", i)
		}
		e.add(c, expiresMs(c.Expires))
	}
	return bytes.Clone(e.finish(7, seq, ts, aux))
}

func TestWireRoundTrip(t *testing.T) {
	b := encodeOne(t, msgEntries, 0, 0, 0, 42, 1e18, testConns)
	if len(b) > MaxDatagram {
		t.Fatalf("datagram of %d bytes", len(b))
	}
	want := headerLen + macLen
	for i := range testConns {
		want += entrySize(&testConns[i])
	}
	if len(b) != want {
		t.Fatalf("datagram of %d bytes, want %d", len(b), want)
	}
	d := newDecoder(testKey)
	h, got, err := d.decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if h != (header{typ: msgEntries, count: uint16(len(testConns)), node: 7, seq: 42, time: 1e18}) {
		t.Fatalf("header %+v", h)
	}
	if len(got) != len(testConns) {
		t.Fatalf("%d entries, want %d", len(got), len(testConns))
	}
	for i := range got {
		if got[i] != testConns[i] {
			t.Errorf("entry %d: got %+v, want %+v", i, got[i], testConns[i])
		}
	}
}

func TestEntrySizes(t *testing.T) {
	if n := entrySize(&testConns[0]); n != entrySize4 {
		t.Fatalf("IPv4 entry of %d bytes, want %d", n, entrySize4)
	}
	if n := entrySize(&testConns[3]); n != entryFixed+4*18 {
		t.Fatalf("IPv6 FullNAT entry of %d bytes", n)
	}
	e := newEncoder(testKey)
	e.begin(msgEntries, 0, 0)
	for e.fits(entrySize4) {
		e.add(&testConns[0], 0)
	}
	if e.count() != maxEntries {
		t.Fatalf("%d IPv4 entries fit, maxEntries is %d", e.count(), maxEntries)
	}
	if n := len(e.finish(1, 1, 1, 0)); n > MaxDatagram {
		t.Fatalf("full datagram of %d bytes", n)
	}
}

func TestExpiresMs(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want uint32
	}{
		{-time.Second, 0},
		{0, 0},
		{999 * time.Microsecond, 0},
		{1500 * time.Millisecond, 1500},
		{time.Duration(math.MaxUint32) * time.Millisecond, math.MaxUint32},
		{time.Duration(math.MaxInt64), math.MaxUint32},
	} {
		if got := expiresMs(tc.in); got != tc.want {
			t.Errorf("expiresMs(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestValidConn(t *testing.T) {
	good := testConns[0]
	for _, tc := range []struct {
		name string
		mod  func(*Conn)
		want bool
	}{
		{"ok", func(*Conn) {}, true},
		{"no client", func(c *Conn) { c.Client = netip.AddrPort{} }, false},
		{"no virtual", func(c *Conn) { c.Virtual = netip.AddrPort{} }, false},
		{"no real", func(c *Conn) { c.Real = netip.AddrPort{} }, false},
		{"mixed front", func(c *Conn) { c.Virtual = ap("[fd00::1]:80") }, false},
		{"mixed back", func(c *Conn) { c.Local = ap("[fd00::1]:80") }, false},
		{"v6 back", func(c *Conn) { c.Real, c.Local = ap("[fd00::1]:80"), ap("[fd00::2]:1") }, true},
	} {
		c := good
		tc.mod(&c)
		if got := validConn(&c); got != tc.want {
			t.Errorf("%s: validConn = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// resign replaces b's MAC with a valid one, so that a test can reach the checks behind it.
func resign(b []byte) []byte {
	out := append(make([]byte, 0, len(b)+32), b[:len(b)-macLen]...)
	return sign(newMAC(testKey), out)
}

func TestDecodeRejects(t *testing.T) {
	good := encodeOne(t, msgEntries, 0, 0, 0, 1, 1, testConns[:2])
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, errTruncated},
		{"header only", good[:headerLen], errTruncated},
		{"oversize", make([]byte, MaxDatagram+1), errOversize},
		{"magic", mod(func(b []byte) []byte { b[0] = 'Y'; return b }), errMagic},
		{"version", mod(func(b []byte) []byte { b[4] = 2; return b }), errVersion},
		{"flipped bit", mod(func(b []byte) []byte { b[headerLen+3] ^= 1; return b }), errMAC},
		{"flipped mac", mod(func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }), errMAC},
		{"cut", good[:len(good)-1], errMAC},
		{"other key", func() []byte {
			b := bytes.Clone(good[:len(good)-macLen])
			return sign(newMAC([]byte("another key of sixteen+ bytes")), append(make([]byte, 0, len(b)+32), b...))
		}(), errMAC},
		// Authenticated, but inconsistent.
		{"count high", resign(mod(func(b []byte) []byte { b[7]++; return b })), errMalformed},
		{"count low", resign(mod(func(b []byte) []byte { b[7]--; return b })), errMalformed},
		{"count zero", resign(mod(func(b []byte) []byte { b[7] = 0; return b })), errMalformed},
		{"unknown flag", resign(mod(func(b []byte) []byte { b[headerLen] |= 0x80; return b })), errMalformed},
		{"family flip", resign(mod(func(b []byte) []byte { b[headerLen] |= flagFront6; return b })), errMalformed},
		{"unknown type", resign(mod(func(b []byte) []byte { b[5] = 9; return b })), errMalformed},
		{"entries with target", resign(mod(func(b []byte) []byte { b[15] = 1; return b })), errMalformed},
		{"request with body", resign(mod(func(b []byte) []byte { b[5], b[7] = msgSnapshotRequest, 0; return b })), errMalformed},
		{"end with aux and body", resign(mod(func(b []byte) []byte { b[5] = msgSnapshotEnd; return b })), errMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, conns, err := newDecoder(testKey).decode(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("decode: %v, want %v", err, tc.want)
			}
			if conns != nil {
				t.Fatalf("decode returned %d entries with an error", len(conns))
			}
		})
	}
}

func TestReplayWindow(t *testing.T) {
	const base = 1 << 40
	var w replayWindow
	for i, tc := range []struct {
		seq  uint64
		want bool
	}{
		{base, true},
		{base, false},
		{base + 2, true},
		{base + 1, true}, // reordered
		{base + 1, false},
		{base + 2, false},
		{base - 1, true}, // within the window
		{base + 2 + windowSize, true},
		{base + 1, false}, // now behind the window
		{base + 2, false}, // exactly windowSize behind: inside the window, and seen
		{base + 2 + windowSize, false},
		{base + 100000, true}, // a jump clears the ring
		{base + 100000 - 1, true},
		{base + 100000 - windowSize, true},
		{base + 100000 - windowSize - 1, false},
		{base + 2 + windowSize, false},
	} {
		if got := w.accept(tc.seq); got != tc.want {
			t.Fatalf("step %d: accept(base%+d) = %v, want %v", i, int64(tc.seq-base), got, tc.want)
		}
	}
}

func TestPending(t *testing.T) {
	p := newPending(4)
	c := testConns[0]
	add := func(c Conn) (bool, bool) { return p.add(&c, 0) }
	if a, co := add(c); !a || co {
		t.Fatalf("first add: %v %v", a, co)
	}
	c2 := c
	c2.State, c2.Real = 9, ap("[fd00::9]:1") // size changes too
	if a, co := add(c2); !a || !co {
		t.Fatalf("same flow: %v %v", a, co)
	}
	if p.len() != 1 || p.at(0).c != c2 || p.bytes != entrySize(&c2) {
		t.Fatalf("after coalescing: len %d, head %+v, bytes %d", p.len(), p.at(0).c, p.bytes)
	}
	for i := range 3 {
		c3 := c
		c3.Client = netip.AddrPortFrom(c.Client.Addr(), uint16(i+1))
		if a, _ := add(c3); !a {
			t.Fatalf("add %d refused", i)
		}
	}
	c4 := c
	c4.Client = netip.AddrPortFrom(c.Client.Addr(), 999)
	if a, _ := add(c4); a {
		t.Fatal("full ring accepted a new flow")
	}
	if a, co := add(c); !a || !co {
		t.Fatal("full ring refused to coalesce")
	}
	p.pop(2)
	if p.len() != 2 || p.at(0).c.Client.Port() != 2 {
		t.Fatalf("after pop: len %d, head %+v", p.len(), p.at(0).c)
	}
	// The popped flow is gone from the index: adding it again queues it at the tail.
	if a, co := add(c); !a || co || p.at(2).c != c {
		t.Fatalf("re-add after pop: %v %v", a, co)
	}
	p.pop(3)
	if p.len() != 0 || p.bytes != 0 || len(p.index) != 0 {
		t.Fatalf("empty: len %d bytes %d index %d", p.len(), p.bytes, len(p.index))
	}
}

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBucket(1000, 500, t0)
	if w := b.take(t0, 400); w != 0 {
		t.Fatalf("take within burst waits %v", w)
	}
	if w := b.take(t0, 200); w != 100*time.Millisecond {
		t.Fatalf("take over balance waits %v, want 100ms", w)
	}
	if w := b.take(t0.Add(100*time.Millisecond), 200); w != 0 {
		t.Fatalf("take after refill waits %v", w)
	}
	// Refill stops at the burst.
	t1 := t0.Add(time.Hour)
	if w := b.take(t1, 500); w != 0 {
		t.Fatalf("take of the burst waits %v", w)
	}
	if w := b.take(t1, 1); w == 0 {
		t.Fatal("bucket held more than its burst")
	}
	b.charge(t1, 1000)
	if w := b.take(t1, 100); w != 1100*time.Millisecond {
		t.Fatalf("after a charge into debt, wait %v, want 1.1s", w)
	}
}

func TestWireAllocs(t *testing.T) {
	e := newEncoder(testKey)
	d := newDecoder(testKey)
	var b []byte
	if n := testing.AllocsPerRun(100, func() {
		e.begin(msgEntries, 0, 0)
		for i := range testConns {
			e.add(&testConns[i], 1)
		}
		b = e.finish(1, 2, 3, 0)
	}); n != 0 {
		t.Errorf("encoding allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, _, err := d.decode(b); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("decoding allocates %v times", n)
	}
}

// FuzzDecode checks that no input makes the decoder panic, and that what it accepts re-encodes to the
// same bytes (the format has one encoding per message). Inputs are signed before decoding, so the
// fuzzer reaches the parser behind the MAC.
func FuzzDecode(f *testing.F) {
	f.Add(encodeOne(f, msgEntries, 0, 0, 0, 1, 1, testConns)[:0])
	for _, c := range testConns {
		b := encodeOne(f, msgEntries, 0, 0, 0, 1, 1, []Conn{c})
		f.Add(b[:len(b)-macLen])
	}
	b := encodeOne(f, msgSnapshotRequest, 0, 5, 0, 1, 1, nil)
	f.Add(b[:len(b)-macLen])
	b = encodeOne(f, msgSnapshotEnd, 3, 5, 77, 1, 1, nil)
	f.Add(b[:len(b)-macLen])
	d := newDecoder(testKey)
	mac := newMAC(testKey)
	f.Fuzz(func(t *testing.T, body []byte) {
		// Unsigned, as an attacker would send it.
		d.decode(body)
		signed := sign(mac, append(make([]byte, 0, len(body)+32), body...))
		h, conns, err := d.decode(signed)
		if err != nil {
			return
		}
		e := newEncoder(testKey)
		e.begin(h.typ, h.target, h.request)
		for i := range conns {
			c := &conns[i]
			if !validConn(c) || !e.fits(entrySize(c)) {
				t.Fatalf("decoded entry %d %+v cannot be re-encoded", i, *c)
			}
			e.add(c, expiresMs(c.Expires))
		}
		if got := e.finish(h.node, h.seq, h.time, h.aux); !bytes.Equal(got, signed) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, signed)
		}
	})
}

// TestEntryClientSide: the client side (interface slot and next hop's MAC)
// travels when set and takes no room when not.
func TestEntryClientSide(t *testing.T) {
	for _, c := range []Conn{
		{Proto: 6, Client: netip.MustParseAddrPort("198.18.0.1:40000"), Virtual: netip.MustParseAddrPort("198.18.0.100:80"),
			Real: netip.MustParseAddrPort("198.19.0.11:8080"), Method: 1, State: 1, InPort: 2, PeerMAC: [6]byte{2, 0, 0, 0, 0, 9}},
		{Proto: 17, Client: netip.MustParseAddrPort("[fd00::1]:1"), Virtual: netip.MustParseAddrPort("[fd00::100]:53"),
			Real: netip.MustParseAddrPort("[fd00::11]:53"), Method: 0},
	} {
		b := appendEntry(nil, &c, 1000)
		if len(b) != entrySize(&c) {
			t.Errorf("entry of %d bytes, entrySize says %d", len(b), entrySize(&c))
		}
		got, err := parseEntries(b, 1, nil)
		if err != nil || len(got) != 1 {
			t.Fatalf("parse: %v", err)
		}
		want := c
		want.Expires = time.Second
		if got[0] != want {
			t.Errorf("round trip: %+v, want %+v", got[0], want)
		}
	}
}
