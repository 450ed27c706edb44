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
`, me, peer, i+1, me, peer, 200-100*i)
}

// TestFailover runs two directors as active and standby (no router): the
// active one holds the VIP and the real servers' gateway; connections are
// synced to the standby. The active director's host fails (xvsd killed, its
// links down): the standby takes the addresses over with gratuitous ARP,
// and established NAT connections carry on through it.
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
	if r, err := p.RunClient(bin, "-mode", "http", "-addr", vip, "-n", "20"); err != nil || r.OK != 20 {
		t.Errorf("new connections after the takeover: %+v %v", r, err)
	}
}
