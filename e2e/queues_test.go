package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/internal/topo"
)

// TestMultiQueue: the director's interfaces have two queues, and xvsd runs
// a worker per queue sharing one connection table. The client's frames are
// steered to queue 0 (XPS on its veth, as RSS would hash its flows to one
// queue) and what the real servers send to queue 1, so that NAT replies
// reach the other worker than their connection's first packet: every
// connection must still work, both ways, and both workers carry traffic.
func TestMultiQueue(t *testing.T) {
	lvs, err := topo.NewNATQueues(nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lvs.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	// The client sends from CPU 0 on queue 0; the bridge port facing the
	// director sends on queue 1 whatever it forwards on CPU 1, where the
	// real servers run.
	if err := lvs.PinQueue(lvs.Client, lvs.ClientIfs[0], 0, 0); err != nil {
		t.Fatal(err)
	}
	peer := lvs.DirectorPeers[1]
	for cpu := range 2 {
		if err := lvs.PinQueue(peer[0], peer[1], 1, cpu); err != nil {
			t.Fatal(err)
		}
	}
	if err := lvs.SetupRealServers(bin); err != nil {
		t.Fatal(err)
	}
	for i := range lvs.Reals {
		p, err := lvs.StartRealServer(i, "taskset", "-c", "1", bin.Echo, "serve", "-name", fmt.Sprintf("rs%d", i+1), "-http", ":80", "-udp", ":5353")
		if err != nil {
			t.Fatal(err)
		}
		lvs.RealProcs = append(lvs.RealProcs, p)
	}
	// The appliance's setting: a worker per queue, each on its own CPU,
	// busy-polling its queues.
	config := strings.Replace(natConfig, "batch_size = 16\n", "cpus = [0, 1]\nbusy_poll = \"50us\"\nbatch_size = 16\n", 1)
	config = strings.ReplaceAll(config, "port = 8080\n", "")
	dir, _, err := lvs.StartDirector(bin, t.TempDir(), config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("xvsd output:\n%s", dir.Output.String())
		}
	})
	status, err := lvs.Xvsadm(bin, "", "status")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(status, "workers 2,") || strings.Count(status, "queues 2") != 2 || !strings.Contains(status, "busy_poll 50 µs") {
		t.Fatalf("want two workers on two queues of both interfaces, busy-polling:\n%s", status)
	}
	client := func(args ...string) topo.Report {
		t.Helper()
		out, err := lvs.Output(lvs.Client, append([]string{"taskset", "-c", "0", bin.Echo, "client"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var r topo.Report
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil {
			t.Fatalf("client output %q: %v", out, err)
		}
		return r
	}
	vip := topo.VIP.String()
	deadline := time.Now().Add(15 * time.Second)
	for r := client("-mode", "http", "-addr", vip+":80", "-n", "1", "-timeout", "1s"); r.OK != 1; r = client("-mode", "http", "-addr", vip+":80", "-n", "1", "-timeout", "1s") {
		if time.Now().After(deadline) {
			t.Fatalf("service not answering: %+v", r)
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"100 connections", []string{"-mode", "http", "-addr", vip + ":80", "-n", "100"}, 100},
		{"IPv6 connections", []string{"-mode", "http", "-addr", "[" + topo.VIP6.String() + "]:80", "-n", "50"}, 50},
		{"UDP", []string{"-mode", "udp", "-addr", vip + ":5353", "-n", "50"}, 50},
		{"20 MB download", []string{"-mode", "download", "-addr", vip + ":80", "-size", strconv.Itoa(blobSize), "-n", "1", "-timeout", "60s"}, 1},
		{"20 MB upload", []string{"-mode", "upload", "-addr", vip + ":80", "-size", strconv.Itoa(blobSize), "-n", "1", "-timeout", "60s"}, 1},
	} {
		if r := client(tc.args...); r.OK != tc.want || r.Failed != 0 {
			t.Errorf("%s: %d of %d: %v", tc.name, r.OK, tc.want, r.Errors)
		}
	}
	metrics, err := lvs.Output(lvs.Director, "curl", "-sf", "http://127.0.0.1:9469/metrics")
	if err != nil {
		t.Fatal(err)
	}
	rx := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^xvs_worker_rx_frames_total\{worker="(\d)"\} (\d+)$`).FindAllStringSubmatch(metrics, -1) {
		rx[m[1]], _ = strconv.Atoi(m[2])
	}
	// Worker 1 serves queue 1 only, where the client never sends: what it
	// received are the real servers' replies to connections worker 0
	// opened.
	// With the fast path on, XDP carries most of an established
	// connection's frames and the workers see the rest.
	least := 1000
	if topo.FastPathRun() {
		least = 100
	}
	if rx["0"] < least || rx["1"] < least {
		t.Errorf("frames received per worker %v: want both to carry the transfers (replies on worker 1)", rx)
	}
	stats, err := lvs.Xvsadm(bin, "", "-L", "-n", "--stats", "--exact")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TCP\s+198\.18\.0\.100:80\s+(\d+)\s+(\d+)\s+(\d+)`).FindStringSubmatch(stats)
	if m == nil {
		t.Fatalf("no TCP service in:\n%s", stats)
	}
	if in, _ := strconv.Atoi(m[2]); in < least {
		t.Errorf("TCP service counted %s packets in", m[2])
	}
	if out, _ := strconv.Atoi(m[3]); out < least {
		t.Errorf("TCP service counted %s packets out: the replies the other worker carried", m[3])
	}
	t.Logf("frames per worker %v; TCP service conns %s, in %s, out %s", rx, m[1], m[2], m[3])
	if status, err = lvs.Xvsadm(bin, "", "status"); err == nil {
		// veth's queues report no NAPI ID on this kernel, which status
		// says once traffic has run.
		for _, l := range strings.Split(status, "\n") {
			if strings.Contains(l, "busy_poll") {
				t.Logf("status: %s", strings.TrimSpace(l))
			}
		}
	}
}
