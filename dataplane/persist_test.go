package dataplane

import (
	"net/netip"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/dataplane/packet"
)

func TestPersistKeyMask(t *testing.T) {
	key := func(a string, prefix int) [2]uint64 {
		addr := netip.MustParseAddr(a)
		hi, lo := persistKey(addr.As16(), addr.Is4(), prefix)
		return [2]uint64{hi, lo}
	}
	for _, tc := range []struct {
		a, b   string
		prefix int
		same   bool
	}{
		{"198.18.0.1", "198.18.0.1", 0, true},
		{"198.18.0.1", "198.18.0.2", 0, false},
		{"198.18.0.1", "198.18.0.200", 24, true},
		{"198.18.0.1", "198.18.1.1", 24, false},
		{"198.18.0.1", "198.19.255.255", 15, true},
		{"fd00::1", "fd00::ffff", 64, true},
		{"fd00::1", "fd00:0:0:1::1", 64, false},
		{"fd00::1", "fd00:0:0:1::1", 48, true},
		{"fd00::1", "fc00::1", 7, true},
		{"fd00::1", "fe00::1", 7, false},
	} {
		if got := key(tc.a, tc.prefix) == key(tc.b, tc.prefix); got != tc.same {
			t.Errorf("%s and %s under /%d: same key %v, want %v", tc.a, tc.b, tc.prefix, got, tc.same)
		}
	}
}

func TestPersistTable(t *testing.T) {
	p := newPersistTable(64)
	p.store(1, 10, 20, 7, 100, 0)
	if d, _, ok := p.lookup(1, 10, 20, 50); !ok || d != 7 {
		t.Fatalf("lookup = %d %v, want 7", d, ok)
	}
	if _, _, ok := p.lookup(2, 10, 20, 50); ok {
		t.Error("template found under another service")
	}
	if _, _, ok := p.lookup(1, 10, 20, 100); ok {
		t.Error("template alive at its deadline")
	}
	// Refreshing keeps one slot; filling past the probe window replaces
	// the template closest to expiry, never blocks.
	p.store(1, 10, 20, 8, 200, 50)
	if d, _, _ := p.lookup(1, 10, 20, 150); d != 8 {
		t.Errorf("refreshed template names %d, want 8", d)
	}
	if p.count(0) != 1 {
		t.Errorf("count = %d after refresh, want 1", p.count(0))
	}
	for i := uint64(0); i < 1000; i++ {
		p.store(1, i, i, uint32(i), 1000+int64(i), 0)
	}
	if n := p.count(0); n > len(p.slots) || n < len(p.slots)/2 {
		t.Errorf("count = %d of %d slots", n, len(p.slots))
	}
	if d, _, ok := p.lookup(1, 999, 999, 0); !ok || d != 999 {
		t.Error("the newest template was not kept")
	}
}

func TestForwardPersistence(t *testing.T) {
	r := newRig(t, MethodDR, 80)
	svc := r.table.ordered[0]
	svc.persist = int64(300 * time.Second)
	svc.persistPrefix = 24
	now := int64(time.Second)
	dest := func(client string, sport uint16) [6]byte {
		t.Helper()
		f := frame(t, clientMAC, portMAC0, netip.MustParseAddr(client), vip, sport, 80, protoTCP, packet.FlagSYN, nil)
		if out := r.fwd.forwardFrame(r.table, f, 0, now); out != 0 {
			t.Fatalf("SYN from %s dropped: %v", client, r.stats.Drops())
		}
		return [6]byte(f[0:6])
	}
	first := dest("198.18.0.1", 1000)
	for p := uint16(1001); p < 1020; p++ {
		if got := dest("198.18.0.1", p); got != first {
			t.Fatalf("connection %d of a persistent client went to %x, want %x", p, got, first)
		}
	}
	// Same /24: same real server. Another /24: scheduled (rr moves on).
	if got := dest("198.18.0.77", 2000); got != first {
		t.Errorf("client in the same /24 went to %x, want %x", got, first)
	}
	if got := dest("198.18.5.1", 2000); got == first {
		t.Errorf("client of another /24 went to the persistent server too; rr should pick the other")
	}
	// After the template expires the client is scheduled again.
	now += int64(301 * time.Second)
	seen := map[[6]byte]bool{}
	for p := uint16(3000); p < 3004; p++ {
		now += int64(301 * time.Second) // each connection outlives the template
		seen[dest("198.18.0.1", p)] = true
	}
	if len(seen) != 2 {
		t.Errorf("after templates expire a client reached %d servers, want rr over 2", len(seen))
	}
}

// TestTemplates: the live templates are listed with the client's address
// under the service's netmask, their real server and time left, and
// counted per real server; expired ones, and ones whose real server is not
// their service's, are not.
func TestTemplates(t *testing.T) {
	ct, err := conntrack.New(conntrack.Config{Capacity: 1024, MaxDests: 64, Timeouts: conntrack.DefaultTimeouts()})
	if err != nil {
		t.Fatal(err)
	}
	v6vip, v6rip := netip.MustParseAddr("2001:db8::100"), netip.MustParseAddr("2001:db8::11")
	_, tbl, err := newRegistry(64).build([]ServiceSpec{
		{VIP: vip, Port: 443, Proto: protoTCP, Scheduler: "rr", Persistence: 300 * time.Second, PersistPrefix: 24,
			Reals: []RealSpec{{Addr: rip1, Port: 443, Weight: 1}, {Addr: rip2, Port: 443, Weight: 1}}},
		{VIP: v6vip, Port: 443, Proto: protoTCP, Scheduler: "rr", Persistence: time.Minute, PersistPrefix: 64,
			Reals: []RealSpec{{Addr: v6rip, Port: 443, Weight: 1}}},
	}, nil, func(uint32) int64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{ct: ct, persist: newPersistTable(64)}
	e.table.Store(tbl)
	s4, s6 := tbl.Services()[0], tbl.Services()[1]
	d1, d6 := s4.Dests[0].ID, s6.Dests[0].ID
	now := e.now()
	store := func(s *Service, client string, v4 bool, dest uint32, ttl time.Duration) {
		hi, lo := persistKey(netip.MustParseAddr(client).As16(), v4, s.persistPrefix)
		e.persist.store(s.ID, hi, lo, dest, now+int64(ttl), now)
	}
	store(s4, "203.0.113.77", true, d1, 300*time.Second)
	store(s6, "2001:db8::1:2:3", false, d6, time.Minute)
	store(s4, "203.0.114.1", true, d1, 100*time.Second)
	store(s4, "203.0.115.1", true, d6, 100*time.Second) // not s4's real server
	store(s4, "203.0.116.1", true, d1, -time.Second)    // expired
	got := map[netip.Addr]Template{}
	e.Templates(func(tp Template) bool {
		got[tp.Client] = tp
		return true
	})
	want := map[netip.Addr]Template{
		netip.MustParseAddr("203.0.113.0"): {Service: s4.ID, Dest: d1},
		netip.MustParseAddr("2001:db8::"):  {Service: s6.ID, Dest: d6},
		netip.MustParseAddr("203.0.114.0"): {Service: s4.ID, Dest: d1},
	}
	if len(got) != len(want) {
		t.Fatalf("templates %+v, want %+v", got, want)
	}
	for a, w := range want {
		g := got[a]
		if g.Service != w.Service || g.Dest != w.Dest || g.Expires <= 0 || g.Expires > 300*time.Second {
			t.Errorf("template of %s: %+v, want %+v", a, g, w)
		}
	}
	if n := e.PersistConns(); n[d1] != 2 || n[d6] != 1 || len(n) != 2 {
		t.Errorf("PersistConns = %v, want %d:2 %d:1", n, d1, d6)
	}
}
