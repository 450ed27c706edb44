package conntrack

import (
	"net/netip"
	"testing"
	"time"
)

// TestCachedAndRefresh: the cached mark survives Touch and Lookup shows it;
// Refresh moves the deadline later, never earlier; both refuse a stale Ref.
func TestCachedAndRefresh(t *testing.T) {
	tab := newTestTable(t, Config{Capacity: 64, Timeouts: DefaultTimeouts()})
	fwd := MakeKey(protoUDP, netip.MustParseAddr("198.18.0.1"), 40000, testVIP, 53)
	rev := MakeKey(protoUDP, testRIP, 53, netip.MustParseAddr("198.18.0.1"), 40000)
	var c Conn
	if err := tab.Insert(&fwd, &rev, &Value{Dest: 1}, protoUDP, 0, Input, 0, &c); err != nil {
		t.Fatal(err)
	}
	ref := c.Ref
	if c.Cached {
		t.Fatal("a new entry is marked cached")
	}
	if !tab.SetCached(ref, true) {
		t.Fatal("SetCached refused a live ref")
	}
	for _, k := range []*Key{&fwd, &rev} {
		if !tab.Lookup(k, &c) || !c.Cached {
			t.Errorf("Lookup(%v): cached %v", k, c.Cached)
		}
	}
	tab.Touch(ref, 0, Input, int64(time.Second))
	if !tab.Lookup(&fwd, &c) || !c.Cached {
		t.Error("Touch cleared the cached mark")
	}
	expires := func() time.Duration {
		var d time.Duration
		tab.Range(func(c *Conn, in time.Duration) bool { d = in; return false })
		return d
	}
	udp := DefaultTimeouts().UDP
	base := expires()
	if !tab.Refresh(ref, int64(time.Minute)) {
		t.Fatal("Refresh refused a live ref")
	}
	// The Touch above put the deadline at 1s + udp; a minute on: 59s later.
	const later = time.Minute - time.Second
	if got := expires() - base; got < later-time.Second || got > later+time.Second {
		t.Errorf("Refresh one minute on moved the deadline by %v, want %v", got, later)
	}
	tab.Refresh(ref, 0) // older than what the entry has: no change
	if got := expires() - base; got < later-time.Second {
		t.Errorf("an older Refresh moved the deadline back: %v of %v later than insert", got, udp)
	}
	if !tab.SetCached(ref, false) || !tab.Lookup(&fwd, &c) || c.Cached {
		t.Error("SetCached(false) did not clear the mark")
	}
	if !tab.Delete(ref) {
		t.Fatal("Delete failed")
	}
	if tab.SetCached(ref, true) || tab.Refresh(ref, int64(time.Hour)) {
		t.Error("SetCached or Refresh accepted a stale ref")
	}
	if RefFromUint64(ref.Uint64()) != ref {
		t.Error("Ref does not survive Uint64 and back")
	}
}

// TestProbe: a probe built from a packet's address bytes is the key's,
// and finds the same entry Lookup finds.
func TestProbe(t *testing.T) {
	tab := newTestTable(t, Config{Capacity: 64, Timeouts: DefaultTimeouts()})
	for _, tc := range []struct{ src, dst string }{{"198.18.0.1", "198.19.0.1"}, {"fd00::1", "fd00::100"}} {
		src, dst := netip.MustParseAddr(tc.src), netip.MustParseAddr(tc.dst)
		k := MakeKey(protoUDP, src, 40000, dst, 53)
		var c Conn
		if err := tab.Insert(&k, nil, &Value{Dest: 2}, protoUDP, 0, Input, 0, &c); err != nil {
			t.Fatal(err)
		}
		var p Probe
		if src.Is4() {
			s4, d4 := src.As4(), dst.As4()
			p = tab.Probe4(protoUDP, s4[:], d4[:], 40000, 53)
		} else {
			s16, d16 := src.As16(), dst.As16()
			p = tab.Probe16(protoUDP, s16[:], d16[:], 40000, 53)
		}
		if p.Key() != k || p != tab.ProbeKey(&k) {
			t.Errorf("%v: probe key %v, want %v", tc, p.Key(), k)
		}
		tab.PrefetchBucket(&p)
		tab.PrefetchEntry(&p)
		var got Conn
		if !tab.LookupProbe(&p, &got) || got.Ref != c.Ref || got.Orig != k || got.Value.Dest != 2 {
			t.Errorf("%v: LookupProbe %+v, want the entry %+v", tc, got, c)
		}
		miss := tab.Probe4(protoUDP, []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8}, 1, 2)
		if tab.LookupProbe(&miss, &got) {
			t.Errorf("a missing key was found")
		}
	}
}
