package xdpprog

import (
	"errors"
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
)

// mapEndpoints returns the keys of a vips, reals or vipaddrs map as
// endpoints, read back from the kernel.
func mapEndpoints(t *testing.T, m *ebpf.Map) map[Endpoint]bool {
	t.Helper()
	got := make(map[Endpoint]bool)
	var k mapKey
	var v uint32
	it := m.Iterate()
	for it.Next(&k, &v) {
		got[k.endpoint()] = true
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterate map: %v", err)
	}
	return got
}

func setOf(es ...Endpoint) map[Endpoint]bool {
	s := make(map[Endpoint]bool, len(es))
	for _, e := range es {
		s[e] = true
	}
	return s
}

func checkMap(t *testing.T, name string, m *ebpf.Map, want map[Endpoint]bool) {
	t.Helper()
	got := mapEndpoints(t, m)
	if !maps.Equal(got, want) {
		t.Errorf("%s map = %v, want %v", name, slices.Collect(maps.Keys(got)), slices.Collect(maps.Keys(want)))
	}
}

func TestSyncVIPs(t *testing.T) {
	p := loadProgram(t)
	var (
		a  = Endpoint{Addr: vip4, Port: 80, Proto: protoTCP}
		b  = Endpoint{Addr: vip4, Port: 443, Proto: protoTCP}
		c  = Endpoint{Addr: vip6, Port: 53, Proto: protoUDP}
		d  = Endpoint{Addr: netip.MustParseAddr("198.18.0.11"), Port: 80, Proto: protoTCP}
		a4 = Endpoint{Addr: vip4, Port: 0, Proto: protoTCP} // vipaddrs keys
		c6 = Endpoint{Addr: vip6, Port: 0, Proto: protoUDP}
		d4 = Endpoint{Addr: d.Addr, Port: 0, Proto: protoTCP}
	)
	steps := []struct {
		name      string
		set       []Endpoint
		wantVIPs  map[Endpoint]bool
		wantAddrs map[Endpoint]bool
	}{
		{"initial", []Endpoint{a, b}, setOf(a, b), setOf(a4)},
		{"same again", []Endpoint{b, a, a}, setOf(a, b), setOf(a4)},
		{"replace one", []Endpoint{b, c}, setOf(b, c), setOf(a4, c6)},
		{"drop last port of an address", []Endpoint{c, d}, setOf(c, d), setOf(c6, d4)},
		{"empty", nil, setOf(), setOf()},
		{"refill", []Endpoint{a, d}, setOf(a, d), setOf(a4, d4)},
	}
	for _, s := range steps {
		if err := p.SyncVIPs(s.set); err != nil {
			t.Fatalf("%s: SyncVIPs: %v", s.name, err)
		}
		checkMap(t, s.name+": vips", p.objs.VIPs, s.wantVIPs)
		checkMap(t, s.name+": vipaddrs", p.objs.VIPAddrs, s.wantAddrs)
	}

	// The program follows the maps: a is steered, b no longer is.
	checkRun(t, p, tcp4Frame(t, client4, 40000, vip4, 80), steered, false, false)
	checkRun(t, p, tcp4Frame(t, client4, 40000, vip4, 443), passed, false, false)

	// An invalid endpoint changes nothing.
	bad := Endpoint{Addr: vip4, Port: 80, Proto: 1}
	if err := p.SyncVIPs([]Endpoint{b, bad}); err == nil {
		t.Error("SyncVIPs with an ICMP endpoint succeeded")
	}
	checkMap(t, "after invalid sync: vips", p.objs.VIPs, setOf(a, d))
}

func TestAddDeleteVIP(t *testing.T) {
	p := loadProgram(t)
	// Two ports on one address share the vipaddrs entry until both go.
	for _, port := range []uint16{80, 443, 80} {
		if err := p.AddVIP(vip4, port, protoTCP); err != nil {
			t.Fatalf("AddVIP port %d: %v", port, err)
		}
	}
	checkMap(t, "vips", p.objs.VIPs, setOf(Endpoint{Addr: vip4, Port: 80, Proto: protoTCP}, Endpoint{Addr: vip4, Port: 443, Proto: protoTCP}))
	checkMap(t, "vipaddrs", p.objs.VIPAddrs, setOf(Endpoint{Addr: vip4, Port: 0, Proto: protoTCP}))

	if err := p.DeleteVIP(vip4, 80, protoTCP); err != nil {
		t.Fatalf("DeleteVIP: %v", err)
	}
	checkMap(t, "vipaddrs after first delete", p.objs.VIPAddrs, setOf(Endpoint{Addr: vip4, Port: 0, Proto: protoTCP}))
	checkRun(t, p, fragment4Frame(t, vip4, 6, true, 0), steered, true, false)

	if err := p.DeleteVIP(vip4, 443, protoTCP); err != nil {
		t.Fatalf("DeleteVIP: %v", err)
	}
	checkMap(t, "vipaddrs after last delete", p.objs.VIPAddrs, setOf())
	checkRun(t, p, fragment4Frame(t, vip4, 6, true, 0), passed, false, false)

	if err := p.DeleteVIP(vip4, 443, protoTCP); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("DeleteVIP of an absent VIP: %v, want ErrKeyNotExist", err)
	}
	// An IPv4-mapped address is the IPv4 address.
	if err := p.AddVIP(netip.MustParseAddr("::ffff:198.18.0.10"), 80, protoTCP); err != nil {
		t.Fatalf("AddVIP mapped: %v", err)
	}
	checkRun(t, p, tcp4Frame(t, client4, 40000, vip4, 80), steered, false, false)
	if err := p.DeleteVIP(vip4, 80, protoTCP); err != nil {
		t.Errorf("DeleteVIP of a VIP added as IPv4-mapped: %v", err)
	}
}

func TestSyncReals(t *testing.T) {
	p := loadProgram(t)
	r1 := Endpoint{Addr: real4, Port: 8080, Proto: protoTCP}
	r2 := Endpoint{Addr: real6, Port: 8080, Proto: protoTCP}
	r3 := Endpoint{Addr: real4, Port: 53, Proto: protoUDP}
	for _, s := range []struct {
		set  []Endpoint
		want map[Endpoint]bool
	}{
		{[]Endpoint{r1, r2}, setOf(r1, r2)},
		{[]Endpoint{r2, r3}, setOf(r2, r3)},
		{nil, setOf()},
	} {
		if err := p.SyncReals(s.set); err != nil {
			t.Fatalf("SyncReals(%v): %v", s.set, err)
		}
		checkMap(t, "reals", p.objs.Reals, s.want)
	}
	if err := p.AddReal(real4, 8080, protoTCP); err != nil {
		t.Fatalf("AddReal: %v", err)
	}
	checkRun(t, p, tcp4Frame(t, real4, 8080, client4, 40000), steered, false, false)
	if err := p.DeleteReal(real4, 8080, protoTCP); err != nil {
		t.Fatalf("DeleteReal: %v", err)
	}
	checkRun(t, p, tcp4Frame(t, real4, 8080, client4, 40000), passed, false, false)
	if err := p.DeleteReal(real4, 8080, protoTCP); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("DeleteReal of an absent real: %v, want ErrKeyNotExist", err)
	}
	// Reals are not VIPs: their addresses take no fragments.
	checkMap(t, "vipaddrs", p.objs.VIPAddrs, setOf())
}

func TestMapFull(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a map")
	}
	p := loadProgram(t) // 64 entries
	set := make([]Endpoint, 0, 65)
	for i := range 65 {
		set = append(set, Endpoint{Addr: vip4, Port: uint16(1000 + i), Proto: protoTCP})
	}
	if err := p.SyncVIPs(set); err == nil {
		t.Fatal("SyncVIPs of 65 VIPs into a 64-entry map succeeded")
	}
	// Shrinking to what fits succeeds and leaves exactly that.
	if err := p.SyncVIPs(set[:64]); err != nil {
		t.Fatalf("SyncVIPs of 64 VIPs: %v", err)
	}
	if got := len(mapEndpoints(t, p.objs.VIPs)); got != 64 {
		t.Errorf("vips holds %d entries, want 64", got)
	}
}

// TestSyncVIPsSynProxy: a VIP's SYN proxy is its value in the vips map,
// switched in place by a sync; a UDP VIP never has it.
func TestSyncVIPsSynProxy(t *testing.T) {
	p := loadProgram(t)
	value := func(e Endpoint) uint32 {
		t.Helper()
		k, err := e.key()
		if err != nil {
			t.Fatal(err)
		}
		var v uint32
		if err := p.objs.VIPs.Lookup(k, &v); err != nil {
			t.Fatalf("lookup %v: %v", e, err)
		}
		return v
	}
	tcp := Endpoint{Addr: vip4, Port: 80, Proto: protoTCP, SynProxy: true}
	udp := Endpoint{Addr: vip4, Port: 53, Proto: protoUDP, SynProxy: true}
	for _, step := range []struct {
		proxy bool
		want  uint32
	}{{true, vipSynProxy}, {false, 0}, {true, vipSynProxy}} {
		tcp.SynProxy = step.proxy
		if err := p.SyncVIPs([]Endpoint{tcp, udp}); err != nil {
			t.Fatal(err)
		}
		if got := value(tcp); got != step.want {
			t.Errorf("syn proxy %t: TCP VIP's value %d, want %d", step.proxy, got, step.want)
		}
		if got := value(udp); got != 0 {
			t.Errorf("UDP VIP's value %d, want 0", got)
		}
	}
	checkMap(t, "vipaddrs", p.objs.VIPAddrs, setOf(Endpoint{Addr: vip4, Port: 0, Proto: protoTCP}, Endpoint{Addr: vip4, Port: 0, Proto: protoUDP}))
}
