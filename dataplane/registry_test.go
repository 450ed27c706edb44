package dataplane

import (
	"net/netip"
	"strings"
	"testing"
)

func spec(sched string, reals ...RealSpec) []ServiceSpec {
	return []ServiceSpec{{VIP: vip, Port: 80, Proto: protoTCP, Scheduler: sched, Reals: reals}}
}

func rs(addr string, w int) RealSpec {
	return RealSpec{Addr: netip.MustParseAddr(addr), Port: 80, Weight: w, Method: MethodDR}
}

func TestRegistryStableIDsAndDraining(t *testing.T) {
	conns := map[uint32]int64{}
	count := func(id uint32) int64 { return conns[id] }
	reg := newRegistry(8)
	reg, t1, err := reg.build(spec("rr", rs("198.18.0.11", 1), rs("198.18.0.12", 1)), nil, count)
	if err != nil {
		t.Fatal(err)
	}
	id1, id2 := t1.ordered[0].Dests[0].ID, t1.ordered[0].Dests[1].ID
	if id1 == id2 {
		t.Fatal("two real servers share an ID")
	}
	// Re-weighting and reordering keep IDs; rs2 leaves while it still has
	// a connection, so it drains.
	conns[id2] = 1
	reg, t2, err := reg.build(spec("wrr", rs("198.18.0.13", 1), rs("198.18.0.11", 5)), t1, count)
	if err != nil {
		t.Fatal(err)
	}
	if got := t2.ordered[0].Dests[1]; got.ID != id1 || got.Weight != 5 {
		t.Errorf("rs1 after reload: id %d weight %d, want id %d weight 5", got.ID, got.Weight, id1)
	}
	d := t2.dest(id2)
	if d == nil || !d.Draining || d.Weight != 0 {
		t.Fatalf("removed real server with a connection: %+v, want it draining", d)
	}
	if len(t2.Draining()) != 1 {
		t.Errorf("Draining() = %v", t2.Draining())
	}
	// Once idle it is forgotten and its ID can be reused.
	conns[id2] = 0
	reg, t3, err := reg.build(spec("wrr", rs("198.18.0.13", 1), rs("198.18.0.11", 5)), t2, count)
	if err != nil {
		t.Fatal(err)
	}
	if t3.dest(id2) != nil {
		t.Error("idle removed real server still in the table")
	}
	_, t4, err := reg.build(spec("wrr", rs("198.18.0.13", 1), rs("198.18.0.11", 5), rs("198.18.0.14", 1)), t3, count)
	if err != nil {
		t.Fatal(err)
	}
	if got := t4.ordered[0].Dests[2].ID; got != id2 {
		t.Errorf("new real server got id %d, want the freed %d", got, id2)
	}
}

func TestRegistryErrorsChangeNothing(t *testing.T) {
	reg := newRegistry(2)
	for _, tc := range []struct {
		name  string
		specs []ServiceSpec
		want  string
	}{
		{"unknown scheduler", spec("nosuch", rs("198.18.0.11", 1)), "nosuch"},
		{"duplicate real", spec("rr", rs("198.18.0.11", 1), rs("198.18.0.11", 1)), "twice"},
		{"family", spec("rr", RealSpec{Addr: netip.MustParseAddr("fd00::1"), Port: 80, Weight: 1}), "family"},
		{"DR port remap", spec("rr", RealSpec{Addr: netip.MustParseAddr("198.18.0.11"), Port: 8080, Weight: 1}), "port"},
		{"too many", spec("rr", rs("198.18.0.11", 1), rs("198.18.0.12", 1), rs("198.18.0.13", 1)), "more than"},
		{"weight", spec("rr", rs("198.18.0.11", -1)), "weight"},
		{"local ports backwards", func() []ServiceSpec {
			s := spec("rr", rs("198.18.0.11", 1))
			s[0].LocalAddrs, s[0].LocalPortMin, s[0].LocalPortMax = []netip.Addr{lip}, 2000, 1000
			return s
		}(), "local ports"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := reg.build(tc.specs, nil, func(uint32) int64 { return 0 })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
			if len(reg.destIDs) != 0 || reg.nextDest != 0 {
				t.Error("a failed build changed the registry")
			}
		})
	}
}

// TestFullNATPool: a service keeps the local addresses of its own family
// (a connection cannot leave from the other one) and its port range.
func TestFullNATPool(t *testing.T) {
	s := spec("rr", rs("198.18.0.11", 1))
	s[0].LocalAddrs = []netip.Addr{netip.MustParseAddr("fd00:19::2"), lip, netip.MustParseAddr("::ffff:198.19.0.3")}
	_, tbl, err := newRegistry(4).build(s, nil, func(uint32) int64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	svc := tbl.ordered[0]
	want := []netip.Addr{lip, netip.MustParseAddr("198.19.0.3")}
	if got := svc.LocalAddrs(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("local addresses %v, want %v", got, want)
	}
	if svc.lportMin != DefaultLocalPortMin || svc.lportMax != DefaultLocalPortMax {
		t.Errorf("default local ports %d-%d", svc.lportMin, svc.lportMax)
	}
	s[0].LocalPortMin, s[0].LocalPortMax = 20000, 20003
	_, tbl, err = newRegistry(4).build(s, nil, func(uint32) int64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	if svc := tbl.ordered[0]; svc.lportMin != 20000 || svc.lportMax != 20003 {
		t.Errorf("local ports %d-%d, want 20000-20003", svc.lportMin, svc.lportMax)
	}
}

// TestRegistryServiceIDWhileDraining: a removed service's ID is not given
// to another service while real servers still drain from it (their
// connections would be listed, and counted, as the other's); once they
// are idle it is.
func TestRegistryServiceIDWhileDraining(t *testing.T) {
	conns := map[uint32]int64{}
	count := func(id uint32) int64 { return conns[id] }
	svc := func(port uint16, real string) []ServiceSpec {
		return []ServiceSpec{{VIP: vip, Port: port, Proto: protoUDP, Scheduler: "rr",
			Reals: []RealSpec{{Addr: netip.MustParseAddr(real), Port: port, Weight: 1}}}}
	}
	reg, t1, err := newRegistry(8).build(svc(53, "198.19.0.11"), nil, count)
	if err != nil {
		t.Fatal(err)
	}
	old := t1.ordered[0]
	conns[old.Dests[0].ID] = 1
	// ipvsadm -C, then -A of another service.
	reg, t2, err := reg.build(nil, t1, count)
	if err != nil {
		t.Fatal(err)
	}
	reg, t2, err = reg.build(svc(80, "198.19.0.12"), t2, count)
	if err != nil {
		t.Fatal(err)
	}
	if got := t2.ordered[0].ID; got == old.ID {
		t.Fatalf("a new service took the ID %d of a removed one whose real server still drains", got)
	}
	if d := t2.Draining(); len(d) != 1 || d[0].Service != old.ID {
		t.Fatalf("draining %+v", d)
	}
	conns[old.Dests[0].ID] = 0
	reg, _, err = reg.build(svc(80, "198.19.0.12"), t2, count)
	if err != nil {
		t.Fatal(err)
	}
	_, t4, err := reg.build(append(svc(80, "198.19.0.12"), svc(81, "198.19.0.13")...), t2, count)
	if err != nil {
		t.Fatal(err)
	}
	if got := t4.ordered[1].ID; got != old.ID {
		t.Errorf("once drained, the ID %d should be free again; a new service got %d", old.ID, got)
	}
}
