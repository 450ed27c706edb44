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
