package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/internal/topo"
)

func pairConfig(i int) string {
	me, peer := topo.PairDirectors[i][0], topo.PairDirectors[1-i][0]
	return fmt.Sprintf(`
[director]
interfaces = ["{{IF0}}", "{{IF1}}"]

[sync]
listen = "%s:8848"
peers = ["%s:8848"]
key = "the pair's shared secret"
node_id = %d

[failover]
listen = "%s:8849"
peer = "%s:8849"
priority = %d
interval = "200ms"
key = "the pair's shared secret"
  [[failover.address]]
  address = "198.18.0.100/32"
  interface = "{{IF0}}"
  [[failover.address]]
  address = "198.19.0.1/24"
  interface = "{{IF1}}"
  [[failover.address]]
  address = "%s/128"
  interface = "{{IF0}}"

[[service]]
vip = "198.18.0.100"
port = 80
protocol = "tcp"
scheduler = "wlc"
  [[service.real]]
  address = "198.19.0.11"
  port = 8080
  method = "nat"
  [[service.real]]
  address = "198.19.0.12"
  port = 8080
  method = "nat"
`, me, peer, i+1, me, peer, 200-100*i, topo.VIP6)
}

// TestFailover runs two directors as active and standby (no router): the
// active one holds the VIP (and an IPv6 one) and the real servers' gateway;
// connections are synced to the standby. The active director's host fails
// (xvsd killed, its links down): the standby takes the addresses over with
// gratuitous ARP and, for the IPv6 address, unsolicited Neighbour
// Advertisements, and established NAT connections carry on through it.
func TestFailover(t *testing.T) {
	p, err := topo.NewPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	if err := p.SetupRealServers(bin); err != nil {
		t.Fatal(err)
	}
	if err := p.StartRealServers(bin, 8080, 5353); err != nil {
		t.Fatal(err)
	}
	// IPv6 on the client network: the client and each director's client
	// side get an address of its /64, so that the floating IPv6 address
	// (a /128) is on link for both.
	v6 := []struct{ ns, ifname, addr string }{
		{p.Client, p.Name("c0"), topo.ClientIP6.String() + "/64"},
		{p.Directors[0], p.Ifs[0][0], "fd00:18::2/64"},
		{p.Directors[1], p.Ifs[1][0], "fd00:18::3/64"},
	}
	for _, a := range v6 {
		if err := p.In(a.ns, "ip", "-6", "addr", "add", a.addr, "dev", a.ifname, "nodad"); err != nil {
			t.Fatal(err)
		}
	}
	var macs [2]string
	for i := range macs {
		out, err := p.Output(p.Directors[i], "cat", "/sys/class/net/"+p.Ifs[i][0]+"/address")
		if err != nil {
			t.Fatal(err)
		}
		macs[i] = strings.TrimSpace(out)
	}
	// clientSees is the MAC the client's neighbour cache has for the
	// floating IPv6 address.
	clientSees := func() string {
		out, _ := p.Output(p.Client, "ip", "-6", "neigh", "show", topo.VIP6.String(), "dev", p.Name("c0"))
		if f := strings.Fields(out); len(f) >= 3 && f[1] == "lladdr" {
			return f[2]
		}
		return out
	}
	tmp := t.TempDir()
	var dirs [2]*topo.Proc
	for i := range dirs {
		d, _, _, err := p.StartDirectorIn(bin, tmp, pairConfig(i), p.Directors[i], p.Ifs[i][:])
		if err != nil {
			t.Fatal(err)
		}
		dirs[i] = d
	}
	defer func() {
		if t.Failed() {
			for i, d := range dirs {
				t.Logf("director %d:\n%s", i+1, d.Output.String())
			}
		}
	}()
	holds := func(i int) bool {
		out, _ := p.Output(p.Directors[i], "ip", "addr", "show", p.Ifs[i][0])
		return strings.Contains(out, topo.VIP.String()+"/32")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !holds(0) {
		if time.Now().After(deadline) {
			t.Fatal("the higher-priority director never took the VIP")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if holds(1) {
		t.Fatal("both directors hold the VIP")
	}
	vip := topo.VIP.String() + ":80"
	if err := p.WaitService(bin, vip, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	// The client reaches the IPv6 address at the active director.
	if err := p.In(p.Client, "ping", "-6", "-c", "1", "-W", "2", topo.VIP6.String()); err != nil {
		t.Fatal(err)
	}
	if got := clientSees(); got != macs[0] {
		t.Fatalf("the client's neighbour entry for %s: %q, want the active director's %s", topo.VIP6, got, macs[0])
	}
	const held = 40
	var took time.Duration
	r := holdWhile(t, p.LVS, held, 8*time.Second, func() {
		time.Sleep(500 * time.Millisecond) // let sync carry the established states
		_ = dirs[0].Signal(syscall.SIGKILL)
		for _, ifname := range p.Ifs[0] {
			_ = p.In(p.Directors[0], "ip", "link", "set", ifname, "down")
		}
		start := time.Now()
		for !holds(1) {
			if time.Since(start) > 5*time.Second {
				t.Error("the standby did not take the VIP over")
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		took = time.Since(start)
	})
	t.Logf("standby took over after %v; held connections: %d intact, %d failed, %d moved", took.Round(10*time.Millisecond), r.OK, r.Failed, r.Moved)
	if r.OK != held || r.Failed != 0 || r.Moved != 0 {
		t.Errorf("established NAT connections across the takeover: %+v", r)
	}
	// Without the client sending anything to it, its neighbour entry for
	// the IPv6 address moved to the standby's MAC: the standby advertised
	// it (unsolicited NA, Override).
	deadline = time.Now().Add(3 * time.Second)
	for clientSees() != macs[1] && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := clientSees(); got != macs[1] {
		t.Errorf("after the takeover the client's neighbour entry for %s is %q, want the standby's %s", topo.VIP6, got, macs[1])
	}
	if r, err := p.RunClient(bin, "-mode", "http", "-addr", vip, "-n", "20"); err != nil || r.OK != 20 {
		t.Errorf("new connections after the takeover: %+v %v", r, err)
	}
}
