package e2e

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/internal/topo"
)

// TestSYNFlood floods a live director with SYNs from 64 000 sources and
// ports at the generator's full rate for 3 s while established connections
// carry traffic: the connection table stays within its bound (and
// makes room by evicting the flood's embryonic entries), the director's
// memory stays flat, the established connections lose nothing, and new
// clients still get in. Their request rate during the flood is
// reported next to the rate before it.
func TestSYNFlood(t *testing.T) {
	// A table of 64k connections that, when full, evicts the idle entry
	// closest to expiry: the flood's embryonic entries, never an
	// established one.
	config := strings.Replace(drConfig, "[director]\n", "[director]\nconnections = 65536\nwhen_full = \"evict\"\n", 1)
	lvs, dir, _ := startLab(t, topo.NewDR, config, 80)
	rss := func() int {
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", dir.Cmd.Process.Pid))
		m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(status)
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	mac := func(ns, ifname string) string {
		out, err := lvs.Output(ns, "cat", "/sys/class/net/"+ifname+"/address")
		if err != nil {
			t.Fatal(err)
		}
		hw, err := net.ParseMAC(strings.TrimSpace(out))
		if err != nil {
			t.Fatal(err)
		}
		return hw.String()
	}
	clientIf := lvs.Name("c0")
	// The generator's frames arrive at the bridge by XDP_TX, which a veth
	// only receives with NAPI on: GRO gives it that.
	if err := lvs.In(lvs.Name("br"), "ethtool", "-K", lvs.Name("bc"), "gro", "on"); err != nil {
		t.Fatal(err)
	}
	before := holdWhile(t, lvs, 20, 3*time.Second, func() {})
	memBefore := rss()
	var flood string
	newcomers := make(chan topo.Report, 1)
	during := holdWhile(t, lvs, 20, 5*time.Second, func() {
		go func() {
			// New clients while the table is full of the flood's SYNs.
			time.Sleep(1500 * time.Millisecond)
			r, _ := lvs.RunClient(bin, "-mode", "http", "-addr", topo.VIP.String()+":80", "-n", "20", "-timeout", "10s")
			newcomers <- r
		}()
		out, err := lvs.Output(lvs.Client, bin.Pktgen, "send", "-i", clientIf, "-engine", "live",
			"-src-mac", mac(lvs.Client, clientIf), "-dst-mac", mac(lvs.Director, lvs.DirectorIfs[0]),
			"-src-ip", "198.18.100.1-198.18.100.250", "-dst-ip", topo.VIP.String(), "-dport", "80",
			"-proto", "syn", "-flows", "1000000", "-duration", "3s", "-json", "-quiet")
		if err != nil {
			t.Errorf("generator: %v", err)
		}
		flood = strings.TrimSpace(out)
	})
	memAfter := rss()
	status, err := lvs.Xvsadm(bin, "", "status")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("flood: %s", flood)
	t.Logf("director after the flood:\n%s", status)
	t.Logf("established connections: %d requests in 3 s before, %d in 5 s during the flood; xvsd RSS %d kB -> %d kB",
		before.Requests, during.Requests, memBefore, memAfter)
	if during.OK != 20 || during.Failed != 0 || during.Moved != 0 {
		t.Errorf("established connections during the flood: %+v", during)
	}
	m := regexp.MustCompile(`connections (\d+) \(capacity (\d+)\)`).FindStringSubmatch(status)
	if m == nil {
		t.Fatalf("no connection count in status:\n%s", status)
	}
	conns, _ := strconv.Atoi(m[1])
	capacity, _ := strconv.Atoi(m[2])
	if conns > capacity || conns < capacity/2 {
		t.Errorf("%d connections in a table of %d after the flood: want it filled, within its bound", conns, capacity)
	}
	// The table makes room by eviction; what can still lose a new client's
	// SYNs (and their retransmissions) is the flood overrunning the AF_XDP
	// ring itself, which the kernel counts as rx_ring_full.
	if r := <-newcomers; r.OK < 18 {
		t.Errorf("new clients during the flood: %+v, want at least 18 of 20 in (eviction makes room)", r)
	}
	if memAfter > memBefore+64*1024 {
		t.Errorf("xvsd grew from %d kB to %d kB during the flood", memBefore, memAfter)
	}
}
