package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/internal/topo"
)

func ecmpConfig(i int, scheduler string) string {
	return fmt.Sprintf(`
[director]
interfaces = ["{{IF0}}"]
sloppy_tcp = true

[bgp]
local_as = %d
router_id = %q
hold_time = "3s"
  [[bgp.peer]]
  address = %q
  as = %d

[[service]]
vip = %q
port = 80
protocol = "tcp"
scheduler = %q
  [[service.real]]
  address = "198.18.0.11"
  [[service.real]]
  address = "198.18.0.12"
`, topo.ECMPLocalAS, topo.ECMPDirector(i), topo.ECMPRouter, topo.ECMPRouterAS, topo.ECMPVIP, scheduler)
}

// TestECMP runs two directors behind a router (BIRD) that learns the VIP
// from both over BGP and spreads flows over them by ECMP with an L4 hash.
// One director is killed while connections are held open: BGP withdraws its
// route, new connections keep succeeding, and with mh (the same Maglev
// table on both directors, sloppy TCP) every established DR connection
// survives on the other director; with wlc, the share that survives is
// reported.
func TestECMP(t *testing.T) {
	e, err := topo.NewECMP(nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	if err := e.SetupRealServers(bin); err != nil {
		t.Fatal(err)
	}
	if err := e.StartRealServers(bin, 80, 5353); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	if err := e.StartRouter(tmp, 3); err != nil {
		t.Fatal(err)
	}
	vip := topo.ECMPVIP.String() + ":80"
	dirs := make([]*topo.Proc, 2)
	start := func(i int, scheduler string) {
		t.Helper()
		p, _, socket, err := e.StartDirectorIn(bin, tmp, ecmpConfig(i, scheduler), e.Directors[i], e.DirIfs[i:i+1])
		if err != nil {
			t.Fatal(err)
		}
		dirs[i] = p
		if i == 0 {
			e.Director, e.Socket = e.Directors[0], socket
		}
	}
	waitHops := func(n int, within time.Duration) time.Duration {
		t.Helper()
		begin := time.Now()
		for {
			hops, err := e.NextHops()
			if err != nil {
				t.Fatal(err)
			}
			if len(hops) == n {
				return time.Since(begin)
			}
			if time.Since(begin) > within {
				routes, _ := e.Birdc("show", "protocols")
				t.Fatalf("router has next hops %v for the VIP, want %d, after %v\n%s", hops, n, within, routes)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	defer func() {
		if t.Failed() {
			for i, d := range dirs {
				if d != nil {
					t.Logf("director %d:\n%s", i+1, d.Output.String())
				}
			}
		}
	}()

	for _, scheduler := range []string{"mh", "wlc"} {
		t.Run(scheduler, func(t *testing.T) {
			for i := range dirs {
				if dirs[i] != nil {
					_ = dirs[i].Stop(5 * time.Second)
				}
				start(i, scheduler)
			}
			waitHops(2, 20*time.Second)
			if err := e.WaitService(bin, vip, 15*time.Second); err != nil {
				t.Fatal(err)
			}
			const held = 60
			holder, err := e.Start(e.Client, bin.Echo, "client", "-mode", "hold", "-addr", vip,
				"-conns", fmt.Sprint(held), "-duration", "8s", "-interval", "200ms", "-timeout", "10s")
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second)
			if err := dirs[1].Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			took := waitHops(1, 10*time.Second)
			t.Logf("router withdrew the dead director's route after %v", took.Round(10*time.Millisecond))
			if took > 4*time.Second {
				t.Errorf("route withdrawn after %v, want within the 3 s hold time", took)
			}
			if r, err := e.RunClient(bin, "-mode", "http", "-addr", vip, "-n", "20"); err != nil || r.OK != 20 {
				t.Errorf("new connections with one director left: %+v %v", r, err)
			}
			if err := topo.WaitOutput(holder, "}", 30*time.Second); err != nil {
				t.Fatal(err)
			}
			out := strings.TrimSpace(holder.Output.String())
			var r holdReport
			if err := json.Unmarshal([]byte(out[strings.LastIndex(out, "\n")+1:]), &r); err != nil {
				t.Fatalf("hold client: %q: %v", out, err)
			}
			share := float64(r.OK) / held
			t.Logf("%s: %d of %d established connections survived the loss of a director (%.0f%%), %d moved to another real server",
				scheduler, r.OK, held, 100*share, r.Moved)
			if scheduler == "mh" && (r.OK != held || r.Moved != 0) {
				t.Errorf("with mh every DR connection must survive: %+v", r)
			}
			dirs[1] = nil
		})
	}

	t.Run("drain and unhealthy services withdraw the VIP", func(t *testing.T) {
		start(1, "mh")
		waitHops(2, 20*time.Second)
		if _, err := e.Xvsadm(bin, "", "drain"); err != nil {
			t.Fatal(err)
		}
		waitHops(1, 5*time.Second)
		if _, err := e.Xvsadm(bin, "", "undrain"); err != nil {
			t.Fatal(err)
		}
		waitHops(2, 10*time.Second)
		// Every real server at weight 0 on director 1: nothing to offer.
		for _, rs := range []string{"198.18.0.11:80", "198.18.0.12:80"} {
			if _, err := e.Xvsadm(bin, "", "-e", "-t", vip, "-r", rs, "-g", "-w", "0"); err != nil {
				t.Fatal(err)
			}
		}
		waitHops(1, 5*time.Second)
	})
}
