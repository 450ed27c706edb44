package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/internal/topo"
)

const faultsConfig = `
[director]
interfaces = ["{{IF0}}"]

[[service]]
vip = "198.18.0.100"
port = 80
protocol = "tcp"
scheduler = "rr"
  [service.health]
  check = "http"
  interval = "200ms"
  timeout = "150ms"
  rise = 2
  fall = 2
  [[service.real]]
  address = "198.18.0.11"
  [[service.real]]
  address = "198.18.0.12"
`

// holdReport is what `xvs-echo client -mode hold` prints.
type holdReport struct {
	topo.Report
	Requests int `json:"requests"`
	Moved    int `json:"moved"`
}

// holdWhile holds n connections to VIP:80 for d, running fault part way
// through, and returns what happened to them.
func holdWhile(t *testing.T, lvs *topo.LVS, n int, d time.Duration, fault func()) holdReport {
	t.Helper()
	return holdOn(t, lvs, topo.VIP.String()+":80", n, d, fault)
}

// holdOn is holdWhile for the service at addr.
func holdOn(t *testing.T, lvs *topo.LVS, addr string, n int, d time.Duration, fault func()) holdReport {
	t.Helper()
	p, err := lvs.Start(lvs.Client, bin.Echo, "client", "-mode", "hold", "-addr", addr,
		"-conns", fmt.Sprint(n), "-duration", d.String(), "-interval", "200ms", "-timeout", "10s")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	fault()
	if err := topo.WaitOutput(p, "}", d+20*time.Second); err != nil {
		t.Fatal(err)
	}
	out := strings.TrimSpace(p.Output.String())
	var r holdReport
	if err := json.Unmarshal([]byte(out[strings.LastIndex(out, "\n")+1:]), &r); err != nil {
		t.Fatalf("hold client: %q: %v", out, err)
	}
	return r
}

// TestFaults breaks things around a live director and states what is lost:
// each case checks that nothing else is.
func TestFaults(t *testing.T) {
	lvs, dir, path := startLab(t, topo.NewDR, faultsConfig, 80)
	vip := topo.VIP.String() + ":80"
	fresh := func(n int) topo.Report {
		t.Helper()
		r, err := lvs.RunClient(bin, "-mode", "http", "-addr", vip, "-n", fmt.Sprint(n), "-timeout", "2s")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("configuration replaced by garbage", func(t *testing.T) {
		// Lost: nothing. The file watch refuses it and says why.
		good, _ := os.ReadFile(path)
		before := len(dir.Output.String())
		if err := os.WriteFile(path, []byte("[director\ninterfaces = 7\n\x00\xff garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := waitLog(dir, before, "reload refused", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if r := fresh(20); r.OK != 20 || r.Servers["rs1"] != 10 {
			t.Errorf("after a garbage file: %+v", r)
		}
		if err := os.WriteFile(path, good, 0o644); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("real server link down and up", func(t *testing.T) {
		// Lost: nothing. TCP retransmits across a 1.5 s outage; the health
		// check takes rs1 out meanwhile, which leaves its connections be.
		ifname := lvs.RealIfs[0]
		r := holdWhile(t, lvs, 40, 6*time.Second, func() {
			if err := lvs.In(lvs.Reals[0], "ip", "link", "set", ifname, "down"); err != nil {
				t.Error(err)
			}
			time.Sleep(1500 * time.Millisecond)
			if err := lvs.In(lvs.Reals[0], "ip", "link", "set", ifname, "up"); err != nil {
				t.Error(err)
			}
		})
		if r.OK != 40 || r.Failed != 0 || r.Moved != 0 {
			t.Errorf("held connections across rs1's link flap: %+v", r)
		}
	})

	t.Run("director interface down and up", func(t *testing.T) {
		// Lost: nothing; the workers carry on without a restart.
		ifname := lvs.DirectorIfs[0]
		r := holdWhile(t, lvs, 40, 6*time.Second, func() {
			if err := lvs.In(lvs.Director, "ip", "link", "set", ifname, "down"); err != nil {
				t.Error(err)
			}
			time.Sleep(time.Second)
			if err := lvs.In(lvs.Director, "ip", "link", "set", ifname, "up"); err != nil {
				t.Error(err)
			}
		})
		if r.OK != 40 || r.Failed != 0 || r.Moved != 0 {
			t.Errorf("held connections across the director's link flap: %+v", r)
		}
		if r := fresh(20); r.OK != 20 {
			t.Errorf("new connections after the flap: %+v", r)
		}
	})

	t.Run("real server dies mid-connection", func(t *testing.T) {
		// Lost: the connections rs1 held (its process is gone). Those on
		// rs2 carry on, and new connections go to rs2 once the health check
		// sees rs1 down.
		r := holdWhile(t, lvs, 20, 4*time.Second, func() {
			_ = lvs.RealProcs[0].Cmd.Process.Kill()
		})
		if r.Servers["rs2"] != 10 || r.OK != 10 || r.Failed != 10 || r.Moved != 0 {
			t.Errorf("held connections when rs1 died: %+v; want rs1's 10 lost, rs2's 10 intact", r)
		}
		if r := fresh(20); r.OK != 20 || r.Servers["rs2"] != 20 {
			t.Errorf("new connections with rs1 dead: %+v, want all on rs2", r)
		}
		p, err := lvs.StartRealServer(0, bin.Echo, "serve", "-name", "rs1", "-http", ":80", "-udp", ":5353")
		if err != nil {
			t.Fatal(err)
		}
		lvs.RealProcs[0] = p
	})

	t.Run("xvsd killed with SIGKILL", func(t *testing.T) {
		// Lost: every connection through the director while it is gone.
		// The XDP program goes with the process; the kernel owns the VIP
		// again; a restarted xvsd serves at once.
		if err := dir.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			out, _ := lvs.Output(lvs.Director, "ip", "link", "show", lvs.DirectorIfs[0])
			if !strings.Contains(out, "xdp") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("XDP still attached after SIGKILL:\n%s", out)
			}
			time.Sleep(50 * time.Millisecond)
		}
		r := fresh(1)
		if r.OK != 0 || len(r.Errors) == 0 || !strings.Contains(r.Errors[0], "refused") {
			t.Errorf("with xvsd dead: %+v, want connection refused by the director's kernel", r)
		}
		config, _ := os.ReadFile(path)
		dir2, _, err := lvs.StartDirector(bin, t.TempDir(), string(config))
		if err != nil {
			t.Fatal(err)
		}
		dir = dir2
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("restarted xvsd output:\n%s", dir2.Output.String())
			}
		})
		if err := lvs.WaitService(bin, vip, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if r := fresh(20); r.OK != 20 {
			t.Errorf("after restart: %+v", r)
		}
	})
}
