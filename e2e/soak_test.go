package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/internal/topo"
)

// TestSoak (make soak) runs mixed TCP and UDP load through every forwarding
// mode for XVS_SOAK (a duration, at most 2h; unset: skipped), a quarter of
// it per mode, and reports connections made and failed and the director's
// memory over time. Every real server stays healthy, so no connection may
// fail.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("XVS_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set XVS_SOAK=10m (make soak) to run")
	}
	if d > 2*time.Hour {
		t.Fatalf("XVS_SOAK=%v: at most 2h", d)
	}
	modes := []struct {
		name   string
		build  func() (*topo.LVS, error)
		config string
		port   int
	}{
		{"DR", func() (*topo.LVS, error) { return topo.NewDR(nil) }, drConfig, 80},
		{"NAT", func() (*topo.LVS, error) { return topo.NewNAT(nil) }, natConfig, 8080},
		{"TUN", func() (*topo.LVS, error) { return topo.NewTUN(nil) }, tunConfig, 80},
		{"FullNAT", func() (*topo.LVS, error) { return topo.NewFullNAT(nil) }, fullnatConfig, 8080},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { soak(t, m.build, m.config, m.port, d/time.Duration(len(modes))) })
	}
}

func soak(t *testing.T, build func() (*topo.LVS, error), config string, port int, d time.Duration) {
	lvs, err := build()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lvs.Close() })
	if err := lvs.StartRealServers(bin, port, 5353); err != nil {
		t.Fatal(err)
	}
	dir, _, err := lvs.StartDirector(bin, t.TempDir(), config)
	if err != nil {
		t.Fatal(err)
	}
	vip := topo.VIP.String()
	if err := lvs.WaitService(bin, vip+":80", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	rss := func() int {
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", dir.Cmd.Process.Pid))
		m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(status)
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	holder, err := lvs.Start(lvs.Client, bin.Echo, "client", "-mode", "hold", "-addr", vip+":80",
		"-conns", "100", "-duration", d.String(), "-interval", "1s", "-timeout", "5s")
	if err != nil {
		t.Fatal(err)
	}
	var made, failed, udp, udpFailed int
	var memory []string
	start := time.Now()
	next := start
	for time.Since(start) < d {
		r, err := lvs.RunClient(bin, "-mode", "http", "-addr", vip+":80", "-n", "200", "-timeout", "3s")
		if err != nil {
			t.Fatal(err)
		}
		made += r.OK
		failed += r.Failed
		for _, e := range r.Errors {
			t.Logf("failed connection: %s", e)
		}
		{
			u, err := lvs.RunClient(bin, "-mode", "udp", "-addr", vip+":5353", "-n", "20", "-timeout", "2s")
			if err != nil {
				t.Fatal(err)
			}
			udp += u.OK
			udpFailed += u.Failed
		}
		if time.Now().After(next) {
			memory = append(memory, fmt.Sprintf("%s:%dkB", time.Since(start).Round(time.Second), rss()))
			next = next.Add(d / 10)
		}
	}
	if err := topo.WaitOutput(holder, "}", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("%v: %d TCP connections made, %d failed; %d UDP exchanges, %d failed; held: %s; xvsd RSS over time: %s",
		d, made, failed, udp, udpFailed, strings.TrimSpace(holder.Output.String()), strings.Join(memory, " "))
	if failed != 0 || udpFailed != 0 || !strings.Contains(holder.Output.String(), `"failed":0`) {
		t.Errorf("connections to healthy real servers failed")
	}
}
