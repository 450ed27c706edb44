package e2e

import (
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/internal/topo"
)

// fastConfig is drConfig's services in any method, with the fast path
// forced on.
func fastConfig(ifs []string, method string, reals4, reals6 []string, local4, local6 string) string {
	var b strings.Builder
	b.WriteString("[director]\ninterfaces = [" + quoted(ifs) + "]\nfast_path = \"xdp\"\n")
	for _, svc := range []struct {
		vip, proto string
		port       int
		reals      []string
		local      string
	}{
		{"198.18.0.100", "tcp", 80, reals4, local4}, {"198.18.0.100", "udp", 5353, reals4, local4},
		{"fd00:18::100", "tcp", 80, reals6, local6}, {"fd00:18::100", "udp", 5353, reals6, local6},
	} {
		b.WriteString("\n[[service]]\nvip = \"" + svc.vip + "\"\nport = " + strconv.Itoa(svc.port) + "\nprotocol = \"" + svc.proto + "\"\nscheduler = \"rr\"\n")
		if method == "fullnat" {
			b.WriteString("local_addresses = [\"" + svc.local + "\"]\n")
		}
		for _, r := range svc.reals {
			b.WriteString("  [[service.real]]\n  address = \"" + r + "\"\n  method = \"" + method + "\"\n")
		}
	}
	return b.String()
}

// fastStatus is what xvsadm status says of the fast path, and the
// frames the workers received.
type fastStatus struct {
	flows, frames, workerRx int
}

func readFastStatus(t *testing.T, lvs *topo.LVS) (fastStatus, string) {
	t.Helper()
	out, err := lvs.Xvsadm(bin, "", "status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`fast path \w+: (\d+) of \d+ flows offloaded, (\d+) frames forwarded by XDP`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no fast path line in xvsadm status:\n%s", out)
	}
	rx := regexp.MustCompile(`, rx (\d+) frames`).FindStringSubmatch(out)
	if rx == nil {
		t.Fatalf("no worker rx count in xvsadm status:\n%s", out)
	}
	var s fastStatus
	s.flows, _ = strconv.Atoi(m[1])
	s.frames, _ = strconv.Atoi(m[2])
	s.workerRx, _ = strconv.Atoi(rx[1])
	return s, out
}

// TestFastPath runs every mode with the XDP fast path on, on a topology
// that stands for physical NICs (complete checksums, NAPI on the
// director's peers, see BehindRealNICs and PeersWithNAPI): new connections
// and 20 MB transfers go through, IPv4 and IPv6, and the programs forward
// most of their frames themselves.
func TestFastPath(t *testing.T) {
	for _, tc := range []struct {
		name   string
		build  func(io.Writer) (*topo.LVS, error)
		method string
		upload bool
	}{
		{"DR", topo.NewDR, "dr", false},
		{"NAT", topo.NewNAT, "nat", true},
		{"TUN", topo.NewTUN, "tun", false},
		{"FullNAT", topo.NewFullNAT, "fullnat", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lvs, _ := fastLab(t, tc.build, tc.method)
			// Frames of the transfers forwarded by XDP and by the workers.
			var xdp, worker int
			for _, vip := range []string{topo.VIP.String(), "[" + topo.VIP6.String() + "]"} {
				addr := vip + ":80"
				if err := lvs.WaitService(bin, addr, 15*time.Second); err != nil {
					t.Fatal(err)
				}
				r, err := lvs.RunClient(bin, "-mode", "http", "-addr", addr, "-n", "100")
				if err != nil {
					t.Fatal(err)
				}
				if r.OK != 100 || r.Servers["rs1"] != 50 || r.Servers["rs2"] != 50 {
					t.Errorf("%s: %d of 100 connections, split %v: %v", addr, r.OK, r.Servers, r.Errors)
				}
				modes := []string{"download"}
				if tc.upload {
					modes = append(modes, "upload")
				}
				before, _ := readFastStatus(t, lvs)
				for _, mode := range modes {
					r, err := lvs.RunClient(bin, "-mode", mode, "-addr", addr, "-size", strconv.Itoa(blobSize), "-n", "1", "-timeout", "60s")
					if err != nil {
						t.Fatal(err)
					}
					if r.OK != 1 || r.Bytes != blobSize {
						t.Errorf("%s: 20 MB %s: %d intact bytes: %v", addr, mode, r.Bytes, r.Errors)
					}
					t.Logf("%s %s %s with the fast path: %.0f MB/s", tc.name, addr, mode, r.MBps)
				}
				after, _ := readFastStatus(t, lvs)
				xdp += after.frames - before.frames
				worker += after.workerRx - before.workerRx
			}
			_, status := readFastStatus(t, lvs)
			// Nearly all of the transfers' frames, counted against what
			// the workers received meanwhile rather than as a number:
			// where the real servers answer the client directly (DR,
			// TUN) the director carries only the client's ACKs of the
			// downloads, which GRO on the client stretches, the fewer
			// the faster the run (280 for 2 x 20 MB on one CI run). A
			// transfer is over in tens of milliseconds: only a flow
			// offloaded as soon as it is established (the workers ring
			// fastLoop's doorbell) leaves the workers its handshake alone.
			if xdp < 9*worker || xdp < 100 {
				t.Errorf("the fast path forwarded %d of the transfers' frames, the workers %d; want 9 in 10 or more:\n%s", xdp, worker, status)
			}
			if !strings.Contains(status, "fast path: xdp") {
				t.Errorf("no interface on the fast path:\n%s", status)
			}
			t.Logf("%s: the transfers' frames: %d forwarded by XDP, %d by the workers\n%s", tc.name, xdp, worker, status)
		})
	}
}

// fastLab builds a topology standing for physical NICs, starts real
// servers and a director with the fast path forced on for method.
func fastLab(t *testing.T, build func(io.Writer) (*topo.LVS, error), method string) (*topo.LVS, string) {
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
	if err := lvs.BehindRealNICs(); err != nil {
		t.Fatal(err)
	}
	if err := lvs.PeersWithNAPI(); err != nil {
		t.Fatal(err)
	}
	if err := lvs.StartRealServers(bin, 80, 5353); err != nil {
		t.Fatal(err)
	}
	reals4, reals6 := []string{"198.18.0.11", "198.18.0.12"}, []string{"fd00:18::11", "fd00:18::12"}
	if method == "nat" || method == "fullnat" {
		reals4, reals6 = []string{"198.19.0.11", "198.19.0.12"}, []string{"fd00:19::11", "fd00:19::12"}
	}
	dir, path, err := lvs.StartDirector(bin, t.TempDir(), fastConfig(lvs.DirectorIfs, method, reals4, reals6, "198.19.0.2", "fd00:19::2"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("xvsd output:\n%s", dir.Output.String())
		}
	})
	return lvs, path
}

// udpStats returns the UDP service's packet counters from xvsadm --stats.
func udpStats(t *testing.T, lvs *topo.LVS) (in, out int) {
	t.Helper()
	stats, err := lvs.Xvsadm(bin, "", "-L", "-n", "--stats", "--exact")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^UDP\s+198\.18\.0\.100:5353\s+\d+\s+(\d+)\s+(\d+)`).FindStringSubmatch(stats)
	if m == nil {
		t.Fatalf("no UDP service in:\n%s", stats)
	}
	in, _ = strconv.Atoi(m[1])
	out, _ = strconv.Atoi(m[2])
	return in, out
}

// udpExpiry returns the seconds left of the client's newest UDP connection
// (the one that expires last) in xvsadm -L -c.
func udpExpiry(t *testing.T, lvs *topo.LVS) int {
	t.Helper()
	out, err := lvs.Xvsadm(bin, "", "-L", "-n", "-c")
	if err != nil {
		t.Fatal(err)
	}
	ms := regexp.MustCompile(`(?m)^UDP\s+(\d+):(\d+)\s+UDP\s+198\.18\.0\.1:\d+\s+198\.18\.0\.100:5353`).FindAllStringSubmatch(out, -1)
	if ms == nil {
		t.Fatalf("no UDP connection in:\n%s", out)
	}
	best := 0
	for _, m := range ms {
		mins, _ := strconv.Atoi(m[1])
		secs, _ := strconv.Atoi(m[2])
		best = max(best, mins*60+secs)
	}
	return best
}

// TestFastPathAccounting: a connection's counters, idle timer and -c entry
// read the same whichever path carried its frames; xvsadm -d of a real
// server takes its offloaded connections off the fast path at once, and a
// reload switches the fast path off and on without losing a connection.
func TestFastPathAccounting(t *testing.T) {
	lvs, path := fastLab(t, topo.NewNAT, "nat")
	if err := lvs.WaitService(bin, topo.VIP.String()+":80", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	const n = 200
	// flow sends n datagrams over three seconds and returns what the
	// director counted, and how much longer than its idle timeout (300 s)
	// after its last datagram the connection will live (0: exactly; it
	// is negative when the timer started earlier, as from the first).
	flow := func() (in, out, expiryLag int, frames int) {
		t.Helper()
		before, _ := readFastStatus(t, lvs)
		in0, out0 := udpStats(t, lvs)
		// The flow is offloaded after its first datagram, within
		// milliseconds; its timer must follow its last.
		r, err := lvs.RunClient(bin, "-mode", "udp", "-addr", topo.VIP.String()+":5353", "-n", strconv.Itoa(n), "-interval", "15ms")
		if err != nil || r.OK != n {
			t.Fatalf("udp flow: %+v %v", r, err)
		}
		last := time.Now()
		time.Sleep(2 * time.Second) // past a fold
		after, _ := readFastStatus(t, lvs)
		in1, out1 := udpStats(t, lvs)
		exp := udpExpiry(t, lvs)
		return in1 - in0, out1 - out0, exp + int(time.Since(last).Round(time.Second).Seconds()) - 300, after.frames - before.frames
	}
	inFast, outFast, expFast, framesFast := flow()
	if framesFast < 2*n-10 {
		t.Errorf("the fast path carried %d of the flow's %d frames", framesFast, 2*n)
	}
	if inFast != n || outFast != n {
		t.Errorf("with the fast path: counted %d in, %d out, want %d each", inFast, outFast, n)
	}
	// The flow's last datagram was forwarded by XDP: its idle timer
	// follows it, not the first datagram's (three seconds earlier).
	if expFast < -1 || expFast > 1 {
		t.Errorf("with the fast path the connection expires %d s off its last datagram's timeout, want 0 (±1)", expFast)
	}
	t.Logf("fast path: %d frames by XDP, counted %d in / %d out, expiry %+d s off the last datagram's", framesFast, inFast, outFast, expFast)

	// The same flow with the fast path off, switched by a reload.
	reload(t, lvs, path, func(s string) string { return strings.Replace(s, `fast_path = "xdp"`, `fast_path = "off"`, 1) })
	if st, out := readFastStatus(t, lvs); st.flows != 0 {
		t.Errorf("fast path off, but %d flows offloaded:\n%s", st.flows, out)
	}
	inUser, outUser, expUser, framesUser := flow()
	if framesUser != 0 {
		t.Errorf("fast path off, but it forwarded %d frames", framesUser)
	}
	if inUser != inFast || outUser != outFast || expUser < expFast-1 || expUser > expFast+1 {
		t.Errorf("userspace counted %d/%d, expiry %+d s; the fast path %d/%d, %+d s: want the same", inUser, outUser, expUser, inFast, outFast, expFast)
	}
	reload(t, lvs, path, func(s string) string { return strings.Replace(s, `fast_path = "off"`, `fast_path = "xdp"`, 1) })

	// A long-lived connection on the fast path; -d of its real server
	// takes it off at once, and it carries on (drained) through
	// userspace.
	held := make(chan topo.Report, 1)
	go func() {
		r, _ := lvs.RunClient(bin, "-mode", "hold", "-addr", topo.VIP.String()+":80", "-conns", "4", "-duration", "4s", "-interval", "100ms", "-timeout", "5s")
		held <- r
	}()
	deadline := time.Now().Add(3 * time.Second)
	for {
		if st, _ := readFastStatus(t, lvs); st.flows >= 8 {
			break
		}
		if time.Now().After(deadline) {
			_, out := readFastStatus(t, lvs)
			t.Fatalf("the held connections were not offloaded:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, rs := range []string{"198.19.0.11:80", "198.19.0.12:80"} {
		if _, err := lvs.Xvsadm(bin, "", "-d", "-t", topo.VIP.String()+":80", "-r", rs); err != nil {
			t.Fatal(err)
		}
	}
	if st, out := readFastStatus(t, lvs); st.flows != 0 {
		t.Errorf("after -d of both real servers %d flows are still offloaded:\n%s", st.flows, out)
	}
	r := <-held
	if r.OK != 4 || r.Failed != 0 {
		t.Errorf("held connections across -d: %+v", r)
	}
}

// reload rewrites the director's configuration file with edit and has
// xvsd reload it.
func reload(t *testing.T, lvs *topo.LVS, path string, edit func(string) string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	next := edit(string(b))
	if next == string(b) {
		t.Fatal("test bug: the edit changed nothing")
	}
	if err := os.WriteFile(path, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := lvs.Xvsadm(bin, "", "reload"); err != nil {
		t.Fatal(err)
	}
}
