// Package e2e runs the director end to end: real xvsd, real HTTP and UDP
// servers and a real client, each a process in its own network namespace,
// wired as the seed document's LVS-DR and LVS-NAT setups.
package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/internal/topo"
)

var bin topo.Binaries

func TestMain(m *testing.M) {
	if spec := os.Getenv(rawSendRole); spec != "" {
		if err := rawSend(spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		fmt.Println("e2e: skipped, needs root for network namespaces and XDP")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "xvs-e2e")
	if err != nil {
		panic(err)
	}
	bin, err = topo.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const drConfig = `
[director]
interfaces = ["{{IF0}}"]

[[service]]
vip = "198.18.0.100"
port = 80
protocol = "tcp"
scheduler = "rr"
  [[service.real]]
  address = "198.18.0.11"
  method = "dr"
  [[service.real]]
  address = "198.18.0.12"
  method = "dr"

[[service]]
vip = "198.18.0.100"
port = 5353
protocol = "udp"
scheduler = "rr"
  [[service.real]]
  address = "198.18.0.11"
  [[service.real]]
  address = "198.18.0.12"

[[service]]
vip = "fd00:18::100"
port = 80
protocol = "tcp"
scheduler = "rr"
  [[service.real]]
  address = "fd00:18::11"
  [[service.real]]
  address = "fd00:18::12"

[[service]]
vip = "fd00:18::100"
port = 5353
protocol = "udp"
scheduler = "rr"
  [[service.real]]
  address = "fd00:18::11"
  [[service.real]]
  address = "fd00:18::12"
`

const natConfig = `
[director]
interfaces = ["{{IF0}}", "{{IF1}}"]
# Not the defaults (DR, TUN and FullNAT run those): every data path knob
# turned, which the NAT run must not notice, and every frame's checksums
# verified on the way in and out.
batch_size = 16
ring_size = 512
idle_spins = 1
need_wakeup = false
verify_checksums = true

[[service]]
vip = "198.18.0.100"
port = 80
protocol = "tcp"
scheduler = "rr"
  [[service.real]]
  address = "198.19.0.11"
  port = 8080
  method = "nat"
  [[service.real]]
  address = "198.19.0.12"
  port = 8080
  method = "nat"

[[service]]
vip = "198.18.0.100"
port = 5353
protocol = "udp"
scheduler = "rr"
  [[service.real]]
  address = "198.19.0.11"
  method = "nat"
  [[service.real]]
  address = "198.19.0.12"
  method = "nat"

[[service]]
vip = "fd00:18::100"
port = 80
protocol = "tcp"
scheduler = "rr"
  [[service.real]]
  address = "fd00:19::11"
  port = 8080
  method = "nat"
  [[service.real]]
  address = "fd00:19::12"
  port = 8080
  method = "nat"

[[service]]
vip = "fd00:18::100"
port = 5353
protocol = "udp"
scheduler = "rr"
  [[service.real]]
  address = "fd00:19::11"
  method = "nat"
  [[service.real]]
  address = "fd00:19::12"
  method = "nat"
`

// tunConfig is drConfig with every real server tunnelled.
var tunConfig = regexp.MustCompile(`(address = "[^"]+"\n)`).ReplaceAllString(
	strings.ReplaceAll(drConfig, "  method = \"dr\"\n", ""), "${1}  method = \"tun\"\n")

// natICMPService is a UDP service whose real servers listen on nothing:
// they answer with ICMP port unreachable, which the director must carry
// back to the client.
const natICMPService = `
[[service]]
vip = "198.18.0.100"
port = 5354
protocol = "udp"
scheduler = "rr"
  [[service.real]]
  address = "198.19.0.11"
  method = "nat"
`

const fullnatConfig = `
[director]
interfaces = ["{{IF0}}", "{{IF1}}"]

[[service]]
vip = "198.18.0.100"
port = 80
protocol = "tcp"
scheduler = "rr"
local_addresses = ["198.19.0.2"]
toa = true
  [[service.real]]
  address = "198.19.0.11"
  port = 8080
  method = "fullnat"
  [[service.real]]
  address = "198.19.0.12"
  port = 8080
  method = "fullnat"

# A pool of four local ports on one local address towards one real server:
# room for four connections at a time.
[[service]]
vip = "198.18.0.100"
port = 81
protocol = "tcp"
local_addresses = ["198.19.0.2"]
local_ports = "20000-20003"
  [[service.real]]
  address = "198.19.0.11"
  port = 8080
  method = "fullnat"

[[service]]
vip = "198.18.0.100"
port = 5353
protocol = "udp"
scheduler = "rr"
local_addresses = ["198.19.0.2"]
  [[service.real]]
  address = "198.19.0.11"
  method = "fullnat"
  [[service.real]]
  address = "198.19.0.12"
  method = "fullnat"

[[service]]
vip = "fd00:18::100"
port = 80
protocol = "tcp"
scheduler = "rr"
local_addresses = ["fd00:19::2"]
toa = true
  [[service.real]]
  address = "fd00:19::11"
  port = 8080
  method = "fullnat"
  [[service.real]]
  address = "fd00:19::12"
  port = 8080
  method = "fullnat"
`

func TestDR(t *testing.T) {
	lvs, err := topo.NewDR(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir, path := runLVS(t, lvs, drConfig, 80)
	t.Run("SIGHUP reload", func(t *testing.T) { testReload(t, lvs, dir, path) })
	t.Run("health checks", func(t *testing.T) { testHealth(t, lvs, dir, path) })
	t.Run("metrics", func(t *testing.T) {
		out, err := lvs.Output(lvs.Director, "curl", "-sf", "http://127.0.0.1:9469/metrics")
		if err != nil {
			t.Fatal(err)
		}
		// Labels one thing each, as node_exporter's node_ipvs_backend_*.
		m := regexp.MustCompile(`(?m)^xvs_real_connections_total\{mark="",port="80",protocol="tcp",real="198\.18\.0\.11",real_port="80",vip="198\.18\.0\.100"\} (\d+)$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no connection counter for rs1 in the metrics:\n%s", out)
		}
		if n, _ := strconv.Atoi(m[1]); n < 100 {
			t.Errorf("metrics count %d connections for rs1, want > 100", n)
		}
		svc := `{mark="",port="80",protocol="tcp",vip="198.18.0.100"}`
		rs1 := `{mark="",port="80",protocol="tcp",real="198.18.0.11",real_port="80",vip="198.18.0.100"}`
		for _, want := range []string{"xvs_worker_rx_frames_total{worker=\"0\"}", "xvs_conntrack_entries ", "xvs_real_weight{", "xvs_real_active_connections{",
			"xvs_service_connections_total" + svc, `xvs_service_packets_total{direction="in",mark=""`, `xvs_service_bytes_total{direction="out",mark=""`,
			`xvs_real_packets_total{direction="in",mark=""`, "xvs_real_persistent_connections" + rs1,
			"xvs_service_connections_per_second" + svc, "xvs_build_info{goversion=", `xvs_reloads_total{result="ok"}`, `xvs_reloads_total{result="failed"}`,
			// the health checks above took rs1 down and up again
			`xvs_health_transitions_total{mark="",port="80",protocol="tcp",real="198.18.0.11",real_port="80",to="down",vip="198.18.0.100"} 1`,
			`xvs_health_transitions_total{mark="",port="80",protocol="tcp",real="198.18.0.11",real_port="80",to="up",vip="198.18.0.100"} 1`,
			"process_resident_memory_bytes ", "go_goroutines "} {
			if !strings.Contains(out, want) {
				t.Errorf("metrics lack %s; they have:\n%s", want, strings.Join(regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(want[:strings.IndexAny(want, "{ ")])+`.*$`).FindAllString(out, -1), "\n"))
			}
		}
		// Loopback only by default: not reachable on the director's address.
		if _, err := lvs.Output(lvs.Client, "curl", "-sf", "--max-time", "1", "http://"+topo.DirectorIP.String()+":9469/metrics"); err == nil {
			t.Error("metrics answer on the director's network address; they must listen on loopback only")
		}
	})
	t.Run("security", func(t *testing.T) {
		// After setup xvsd keeps only CAP_NET_ADMIN, CAP_NET_RAW and
		// CAP_BPF (and every test above ran with just those).
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", dir.Cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^CapEff:\s+([0-9a-f]+)$`).FindSubmatch(status)
		const want = 1<<12 | 1<<13 | 1<<39
		if got, _ := strconv.ParseUint(string(m[1]), 16, 64); m == nil || got != want {
			t.Errorf("xvsd's effective capabilities %s, want %x (net_admin, net_raw, bpf)", m[1], want)
		}
		// The XDP program passes what is not for a VIP: an unrelated TCP
		// service on the director answers as if xvsd were not there.
		if _, err := lvs.Start(lvs.Director, bin.Echo, "serve", "-name", "director", "-http", topo.DirectorIP.String()+":8082"); err != nil {
			t.Fatal(err)
		}
		var r topo.Report
		for i := 0; i < 20; i++ {
			if r, err = lvs.RunClient(bin, "-mode", "http", "-addr", topo.DirectorIP.String()+":8082", "-n", "5"); err == nil && r.OK == 5 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if r.OK != 5 || r.Servers["director"] != 5 {
			t.Errorf("a TCP service on the director's own address: %+v %v", r, err)
		}
	})
	t.Run("SIGTERM detaches", func(t *testing.T) {
		ifname := lvs.DirectorIfs[0]
		if out, _ := lvs.Output(lvs.Director, "ip", "link", "show", ifname); !strings.Contains(out, "xdp") {
			t.Fatalf("no XDP program on %s while xvsd runs:\n%s", ifname, out)
		}
		if err := dir.Stop(5 * time.Second); err != nil {
			t.Fatalf("xvsd did not exit cleanly: %v\n%s", err, dir.Output.String())
		}
		if out, _ := lvs.Output(lvs.Director, "ip", "link", "show", ifname); strings.Contains(out, "xdp") {
			t.Errorf("XDP program still attached after xvsd stopped:\n%s", out)
		}
		// With the director gone the kernel owns the VIP again: no service
		// on port 80 there, so the client's connection is refused.
		r, err := lvs.RunClient(bin, "-mode", "http", "-addr", topo.VIP.String()+":80", "-n", "1", "-timeout", "1s")
		if err != nil || r.OK != 0 || len(r.Errors) == 0 || !strings.Contains(r.Errors[0], "refused") {
			t.Errorf("after xvsd stopped: %+v %v, want connection refused by the director's kernel", r, err)
		}
	})
}

func TestNAT(t *testing.T) {
	lvs, err := topo.NewNAT(nil)
	if err != nil {
		t.Fatal(err)
	}
	runLVS(t, lvs, natConfig+natICMPService, 8080)
	t.Run("data path knobs in effect", func(t *testing.T) {
		status, err := lvs.Xvsadm(bin, "", "status")
		if err != nil {
			t.Fatal(err)
		}
		// Rings of 512 on two interfaces need 2048 frames; the UMEM keeps
		// its floor of 4096.
		if want := "data path: batch 16, rings 512, 4096 UMEM frames per worker, idle spins 1, need_wakeup off"; !strings.Contains(status, want) {
			t.Errorf("xvsadm status lacks %q:\n%s", want, status)
		}
	})
	t.Run("ICMP errors reach the client", func(t *testing.T) {
		// The real server's port unreachable quotes client -> rs1:5354;
		// translated, the client's socket sees its own datagram to the
		// VIP refused, instead of waiting for a timeout.
		r, err := lvs.RunClient(bin, "-mode", "udp", "-addr", topo.VIP.String()+":5354", "-n", "1", "-timeout", "2s")
		if err != nil {
			t.Fatal(err)
		}
		if r.OK != 0 || len(r.Errors) != 1 || !strings.Contains(r.Errors[0], "refused") {
			t.Errorf("UDP to a closed port behind NAT: %+v, want connection refused from the ICMP error", r)
		}
	})
	t.Run("every frame sent verifies", func(t *testing.T) {
		// Everything above (connections both ways, UDP, IPv6, the ICMP
		// error), its checksums checked as the receivers check them.
		status, err := lvs.Xvsadm(bin, "", "status")
		if err != nil {
			t.Fatal(err)
		}
		if want := "verify_checksums: 0 sent with a checksum their receiver rejects, 0 arrived with one"; !strings.Contains(status, want) {
			t.Errorf("xvsadm status lacks %q:\n%s", want, status)
		}
	})
}

// TestTUN: the real servers, set up by `xvsadm realserver tun`, take
// IPIP (IPv6-in-IPv6) from the director with xvs's decapsulator and answer
// the client directly; a request too big to tunnel gets through after the
// director's ICMP fragmentation-needed lowers the client's path MTU.
func TestTUN(t *testing.T) {
	lvs, err := topo.NewTUN(nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(tunConfig, `method = "tun"`) != 8 {
		t.Fatalf("test bug: tunConfig has %d tunnelled real servers:\n%s", strings.Count(tunConfig, `method = "tun"`), tunConfig)
	}
	dir, _ := runLVS(t, lvs, tunConfig, 80)
	t.Run("path MTU", func(t *testing.T) {
		// 8000 bytes in full-sized segments: each is 20 bytes too big for
		// the tunnel, so only the ICMP gets them through.
		r, err := lvs.RunClient(bin, "-mode", "http", "-addr", topo.VIP.String()+":80", "-n", "3", "-size", "8000", "-timeout", "5s")
		if err != nil {
			t.Fatal(err)
		}
		if r.OK != 3 {
			t.Errorf("large requests through TUN: %+v", r)
		}
		if err := dir.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		if err := topo.WaitOutput(dir, "too_big=", 3*time.Second); err != nil {
			t.Errorf("the director counted no too_big frames: %v", err)
		}
	})
}

// TestFullNAT: the real servers have no route to the client; they see
// connections from the director's local address, and learn the client's
// address from the TOA option.
func TestFullNAT(t *testing.T) {
	lvs, _, _ := startLab(t, topo.NewFullNAT, fullnatConfig, 8080, "-toa")
	for _, tc := range []struct{ vip, local, client string }{
		{topo.VIP.String(), topo.LocalIP.String(), topo.ClientIP.String()},
		{"[" + topo.VIP6.String() + "]", topo.LocalIP6.String(), topo.ClientIP6.String()},
	} {
		if err := lvs.WaitService(bin, tc.vip+":80", 15*time.Second); err != nil {
			t.Fatal(err)
		}
		r, err := lvs.RunClient(bin, "-mode", "http", "-addr", tc.vip+":80", "-n", "100")
		if err != nil {
			t.Fatal(err)
		}
		if r.OK != 100 || r.Servers["rs1"] != 50 || r.Servers["rs2"] != 50 {
			t.Errorf("%s: ok %d split %v, want 100 split 50/50: %v", tc.vip, r.OK, r.Servers, r.Errors)
		}
		if r.Peers[tc.local] != 100 || len(r.Peers) != 1 {
			t.Errorf("%s: real servers saw connections from %v, want all from the local address %s", tc.vip, r.Peers, tc.local)
		}
		if r.TOA[tc.client] != 100 || len(r.TOA) != 1 {
			t.Errorf("%s: TOA told the real servers %v, want the client %s every time", tc.vip, r.TOA, tc.client)
		}
	}
	r, err := lvs.RunClient(bin, "-mode", "udp", "-addr", topo.VIP.String()+":5353", "-n", "5")
	if err != nil || r.OK != 5 {
		t.Errorf("UDP through FullNAT: %+v %v", r, err)
	}

	t.Run("local port pool runs out", func(t *testing.T) {
		vip := topo.VIP.String() + ":81"
		const pool = 4
		var extra topo.Report
		var drops int
		held := holdOn(t, lvs, vip, pool, 5*time.Second, func() {
			// The pool is full: a fifth connection's SYNs are dropped
			// and counted.
			var err error
			if extra, err = lvs.RunClient(bin, "-mode", "http", "-addr", vip, "-n", "2", "-timeout", "1s"); err != nil {
				t.Error(err)
			}
			status, err := lvs.Xvsadm(bin, "", "status")
			if err != nil {
				t.Error(err)
			}
			if m := regexp.MustCompile(`no_local_port=(\d+)`).FindStringSubmatch(status); m != nil {
				drops, _ = strconv.Atoi(m[1])
			}
		})
		if extra.OK != 0 {
			t.Errorf("%d new connections got through a full pool of %d local ports", extra.OK, pool)
		}
		if drops == 0 {
			t.Errorf("no no_local_port drops counted for the refused connections")
		}
		t.Logf("pool of %d ports: %d held connections intact (%d requests), %d new ones refused, no_local_port=%d",
			pool, held.OK, held.Requests, extra.Failed, drops)
		if held.OK != pool || held.Failed != 0 || held.Requests < pool*8 {
			t.Errorf("held connections: %d intact, %d failed, %d requests; want all %d intact throughout: %v",
				held.OK, held.Failed, held.Requests, pool, held.Errors)
		}
	})
}

// runLVS starts real servers and a director on lvs and checks, from the
// client, what a director must do.
func runLVS(t *testing.T, lvs *topo.LVS, config string, realPort int) (*topo.Proc, string) {
	t.Cleanup(func() {
		if err := lvs.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	if err := lvs.StartRealServers(bin, realPort, 5353); err != nil {
		t.Fatal(err)
	}
	dir, path, err := lvs.StartDirector(bin, t.TempDir(), config)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("xvsd output:\n%s", dir.Output.String())
		}
	}()
	vip := topo.VIP.String()
	if err := lvs.WaitService(bin, vip+":80", 15*time.Second); err != nil {
		t.Fatal(err)
	}

	t.Run("200 connections split by rr", func(t *testing.T) {
		r, err := lvs.RunClient(bin, "-mode", "http", "-addr", vip+":80", "-n", "200")
		if err != nil {
			t.Fatal(err)
		}
		if r.OK != 200 || r.Failed != 0 {
			t.Fatalf("ok %d, failed %d, want 200 intact responses: %v", r.OK, r.Failed, r.Errors)
		}
		a, b := r.Servers["rs1"], r.Servers["rs2"]
		if a+b != 200 || a-b > 1 || b-a > 1 {
			t.Errorf("rr split rs1=%d rs2=%d, want 100±1 each", a, b)
		}
	})

	t.Run("long-lived connection stays on its real server", func(t *testing.T) {
		r, err := lvs.RunClient(bin, "-mode", "keepalive", "-addr", vip+":80", "-n", "40", "-interval", "25ms")
		if err != nil {
			t.Fatal(err)
		}
		if r.OK != 40 || r.Reused != 39 || len(r.Servers) != 1 {
			t.Errorf("keep-alive: ok %d reused %d servers %v, want 40 on one connection to one server: %v", r.OK, r.Reused, r.Servers, r.Errors)
		}
	})

	t.Run("UDP service answers", func(t *testing.T) {
		seen := map[string]int{}
		for i := 0; i < 4; i++ {
			// Each run is a new socket, so a new flow for the scheduler;
			// within a run every datagram belongs to one flow.
			r, err := lvs.RunClient(bin, "-mode", "udp", "-addr", vip+":5353", "-n", "5")
			if err != nil {
				t.Fatal(err)
			}
			if r.OK != 5 || len(r.Servers) != 1 {
				t.Fatalf("udp: ok %d servers %v, want 5 answers from one server: %v", r.OK, r.Servers, r.Errors)
			}
			for name, n := range r.Servers {
				seen[name] += n
			}
		}
		if seen["rs1"] == 0 || seen["rs2"] == 0 {
			t.Errorf("udp flows went to %v, want both real servers", seen)
		}
	})

	t.Run("IPv6", func(t *testing.T) {
		vip6 := "[" + topo.VIP6.String() + "]"
		if err := lvs.WaitService(bin, vip6+":80", 15*time.Second); err != nil {
			t.Fatal(err)
		}
		r, err := lvs.RunClient(bin, "-mode", "http", "-addr", vip6+":80", "-n", "50")
		if err != nil {
			t.Fatal(err)
		}
		if a, b := r.Servers["rs1"], r.Servers["rs2"]; r.OK != 50 || a+b != 50 || a-b > 1 || b-a > 1 {
			t.Errorf("IPv6: ok %d split %v, want 50 split evenly: %v", r.OK, r.Servers, r.Errors)
		}
		seen := map[string]int{}
		for i := 0; i < 4; i++ {
			r, err := lvs.RunClient(bin, "-mode", "udp", "-addr", vip6+":5353", "-n", "3")
			if err != nil || r.OK != 3 || len(r.Servers) != 1 {
				t.Fatalf("IPv6 UDP: %+v %v", r, err)
			}
			for k, v := range r.Servers {
				seen[k] += v
			}
		}
		if len(seen) != 2 {
			t.Errorf("IPv6 UDP flows went to %v, want both real servers", seen)
		}
	})

	t.Run("director counted the connections", func(t *testing.T) {
		before := len(dir.Output.String())
		if err := dir.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		var stats string
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if out := dir.Output.String()[before:]; strings.Contains(out, "drops:") {
				stats = out
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		m := regexp.MustCompile(`TCP\s+198\.18\.0\.100:80\s+(\d+)\s+(\d+)`).FindStringSubmatch(stats)
		if m == nil {
			t.Fatalf("no stats for the TCP service in:\n%s", stats)
		}
		conns, _ := strconv.Atoi(m[1])
		pkts, _ := strconv.Atoi(m[2])
		// 200 + keep-alive + warm-up connections, several packets each.
		if conns < 201 || pkts < 5*conns {
			t.Errorf("director counted %d connections and %d packets, want > 200 and > 5 per connection:\n%s", conns, pkts, stats)
		}
		t.Logf("director stats:\n%s", stats)
	})
	return dir, path
}

// testReload rewrites the director's configuration and sends SIGHUP: an
// invalid file changes nothing; a valid one takes effect for new
// connections.
func testReload(t *testing.T, lvs *topo.LVS, dir *topo.Proc, path string) {
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	reload := func(content string, wantLog string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		before := len(dir.Output.String())
		if err := dir.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for !strings.Contains(dir.Output.String()[before:], wantLog) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in xvsd's log after SIGHUP:\n%s", wantLog, dir.Output.String()[before:])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	split := func() map[string]int {
		t.Helper()
		r, err := lvs.RunClient(bin, "-mode", "http", "-addr", topo.VIP.String()+":80", "-n", "20")
		if err != nil || r.OK != 20 {
			t.Fatalf("20 connections after reload: %+v %v\nxvsd:\n%s", r, err, dir.Output.String())
		}
		return r.Servers
	}

	// A broken file: refused with its line, nothing changes.
	reload(strings.Replace(string(good), `scheduler = "rr"`, `scheduler = "nosuch"`, 1), "reload refused")
	if !strings.Contains(dir.Output.String(), ".toml:") {
		t.Errorf("the refusal does not name file and line:\n%s", dir.Output.String())
	}
	if s := split(); s["rs1"] != 10 || s["rs2"] != 10 {
		t.Errorf("after a refused reload the split is %v, want rr unchanged", s)
	}

	// rs2 to weight 0: quiescent, new connections all go to rs1.
	quiesced := strings.Replace(string(good), "address = \"198.18.0.12\"\n  method = \"dr\"", "address = \"198.18.0.12\"\n  method = \"dr\"\n  weight = 0", 1)
	if quiesced == string(good) {
		t.Fatal("test bug: could not set rs2's weight")
	}
	reload(quiesced, "configuration reloaded")
	if s := split(); s["rs1"] != 20 {
		t.Errorf("with rs2 at weight 0 the split is %v, want all on rs1", s)
	}

	reload(string(good), "configuration reloaded")
	if s := split(); s["rs1"] == 0 || s["rs2"] == 0 {
		t.Errorf("after restoring rs2 the split is %v, want both", s)
	}

	// A persistent group (ipvsadm -f with -p): HTTP and UDP from one
	// client stick to one real server across connections and protocols.
	group := strings.Split(string(good), "[[service]]")[0] + groupConfig
	reload(group, "configuration reloaded")
	s := split()
	if len(s) != 1 {
		t.Fatalf("persistent group: 20 connections went to %v, want one real server", s)
	}
	var sticky string
	for name := range s {
		sticky = name
	}
	for i := 0; i < 3; i++ {
		r, err := lvs.RunClient(bin, "-mode", "udp", "-addr", topo.VIP.String()+":5353", "-n", "2")
		if err != nil || r.OK != 2 || r.Servers[sticky] != 2 {
			t.Errorf("UDP flow %d of the persistent client: %+v %v, want %s", i, r, err, sticky)
		}
	}
	reload(string(good), "configuration reloaded")
}

const groupConfig = `
[[group]]
name = "web"
persistence = "300s"
scheduler = "rr"
match = [ { vip = "198.18.0.100", ports = 80, protocol = "tcp" },
          { vip = "198.18.0.100", ports = 5353, protocol = "udp" } ]
  [[group.real]]
  address = "198.18.0.11"
  [[group.real]]
  address = "198.18.0.12"
`

// testHealth: with an HTTP health check, a real server whose service stops
// gets no new connections within interval x fall, and comes back once it
// answers again for rise checks.
func testHealth(t *testing.T, lvs *topo.LVS, dir *topo.Proc, path string) {
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = os.WriteFile(path, good, 0o644)
		_ = dir.Signal(syscall.SIGHUP)
	}()
	checked := strings.Replace(string(good), "scheduler = \"rr\"\n", "scheduler = \"rr\"\n  [service.health]\n  check = \"http\"\n  interval = \"200ms\"\n  timeout = \"100ms\"\n  rise = 2\n  fall = 2\n", 1)
	if checked == string(good) {
		t.Fatal("test bug: no scheduler line to add the health table to")
	}
	if err := os.WriteFile(path, []byte(checked), 0o644); err != nil {
		t.Fatal(err)
	}
	before := len(dir.Output.String())
	if err := dir.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := topo.WaitOutput(dir, "configuration reloaded", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	split := func() map[string]int {
		t.Helper()
		r, err := lvs.RunClient(bin, "-mode", "http", "-addr", topo.VIP.String()+":80", "-n", "20", "-timeout", "1s")
		if err != nil {
			t.Fatal(err)
		}
		return r.Servers
	}
	if s := split(); s["rs1"] == 0 || s["rs2"] == 0 {
		t.Fatalf("with both servers healthy the split is %v", s)
	}

	// rs1's server stops: within interval x fall (+ a probe's timeout and
	// jitter) it is taken out, and every new connection goes to rs2.
	if err := lvs.RealProcs[0].Stop(3 * time.Second); err != nil {
		t.Logf("rs1 stopped: %v", err)
	}
	stopped := time.Now()
	if err := waitLog(dir, before, "real server down", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(stopped); took > time.Second {
		t.Errorf("rs1 taken out after %v, want within interval x fall (0.4s) plus a probe", took)
	}
	if s := split(); s["rs2"] != 20 {
		t.Errorf("with rs1 down the split is %v, want all 20 on rs2", s)
	}
	// Listed with the weight in effect, 0, as IPVS lists a server that
	// keepalived's inhibit_on_failure took out; --json keeps the
	// configured one too.
	vip := topo.VIP.String() + ":80"
	if list, err := lvs.Xvsadm(bin, "", "-L", "-n", "-t", vip); err != nil || !regexp.MustCompile(`(?m)^  -> 198\.18\.0\.11:80 +Route +0 `).MatchString(list) {
		t.Errorf("-L -n with rs1 down: %v\n%s", err, list)
	}
	js, err := lvs.Xvsadm(bin, "", "-L", "-n", "-t", vip, "--json")
	var resp api.Response
	if err == nil {
		err = json.Unmarshal([]byte(js), &resp)
	}
	if err != nil || len(resp.Services) != 1 {
		t.Fatalf("-L --json: %v\n%s", err, js)
	}
	for _, r := range resp.Services[0].Reals {
		if down := r.Addr.String() == "198.18.0.11"; (down && r.Weight != 0) || r.ConfiguredWeight != 1 || (!down && r.Weight != 1) {
			t.Errorf("--json with rs1 down: %s weight %d, configured %d", r.Addr, r.Weight, r.ConfiguredWeight)
		}
	}

	// rs1 comes back: after rise good checks it takes connections again.
	p, err := lvs.StartRealServer(0, bin.Echo, "serve", "-name", "rs1", "-http", ":80", "-udp", ":5353")
	if err != nil {
		t.Fatal(err)
	}
	lvs.RealProcs[0] = p
	if err := waitLog(dir, before, "real server up", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if s := split(); s["rs1"] == 0 || s["rs2"] == 0 {
		t.Errorf("after rs1 recovered the split is %v, want both", s)
	}
}

// waitLog waits for want in p's output after offset from.
func waitLog(p *topo.Proc, from int, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Output.String()[from:], want) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no %q in xvsd's log within %v:\n%s", want, timeout, p.Output.String()[from:])
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

// startLab builds a topology with build, sets its real servers up and
// starts them (HTTP on realPort, UDP on 5353, extra arguments to xvs-echo),
// then a director on config, and waits until the VIP's port 80 answers.
// Everything is torn down when the test ends; if it failed, xvsd's output
// is logged first.
func startLab(t *testing.T, build func(io.Writer) (*topo.LVS, error), config string, realPort int, extra ...string) (*topo.LVS, *topo.Proc, string) {
	t.Helper()
	lvs, err := build(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lvs.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	if err := lvs.StartRealServers(bin, realPort, 5353, extra...); err != nil {
		t.Fatal(err)
	}
	dir, path, err := lvs.StartDirector(bin, t.TempDir(), config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("xvsd output:\n%s", dir.Output.String())
			// And what its counters say, while it runs.
			if st, err := lvs.Xvsadm(bin, "", "status"); err == nil {
				t.Logf("xvsadm status:\n%s", st)
			}
		}
	})
	if err := lvs.WaitService(bin, topo.VIP.String()+":80", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	return lvs, dir, path
}
