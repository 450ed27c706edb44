package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/internal/topo"
)

const (
	macA = "02:78:76:73:00:0a"
	macB = "02:78:76:73:00:0b"
)

// pair is two namespaces joined by a veth: the sender in a, the sink or
// reflector in b.
type pair struct {
	lab      *topo.Lab
	bin      string
	nsA, nsB string
	ifA, ifB string
}

func newPair(t *testing.T, bin string) *pair {
	t.Helper()
	lab, err := topo.NewLab(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	p := &pair{lab: lab, bin: bin, ifA: lab.Name("a0"), ifB: lab.Name("b0")}
	if p.nsA, err = lab.AddNS("a"); err != nil {
		t.Fatal(err)
	}
	if p.nsB, err = lab.AddNS("b"); err != nil {
		t.Fatal(err)
	}
	if err := lab.Veth(p.nsA, p.ifA, p.nsB, p.ifB); err != nil {
		t.Fatal(err)
	}
	for _, s := range [][3]string{{p.nsA, p.ifA, macA}, {p.nsB, p.ifB, macB}} {
		if err := lab.In(s[0], "ip", "link", "set", s[1], "address", s[2]); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// start starts "xvs-pktgen args..." in b and waits until it is ready.
func (p *pair) start(t *testing.T, args ...string) *topo.Proc {
	t.Helper()
	proc, err := p.lab.Start(p.nsB, append([]string{p.bin}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.WaitOutput(proc, "ready on", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return proc
}

// stop stops a receiver with SIGTERM, as a user would, and returns its
// summary. Frames still in flight get a moment to land first.
func (p *pair) stop(t *testing.T, proc *topo.Proc) recvResult {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	if err := proc.Stop(5 * time.Second); err != nil {
		t.Fatalf("receiver: %v\n%s", err, proc.Output)
	}
	var r recvResult
	mustJSON(t, lastJSON(t, proc.Output.String()), &r, "cmd", "mode", "received", "bytes", "duration_s", "pps", "bps", "per_second")
	return r
}

// send runs "xvs-pktgen send" in a toward b with the given extra arguments
// and returns its summary.
func (p *pair) send(t *testing.T, args ...string) sendResult {
	t.Helper()
	full := append([]string{p.bin, "send", "-i", p.ifA, "-src-mac", macA, "-dst-mac", macB,
		"-src-ip", "198.18.0.1", "-dst-ip", "198.18.0.2", "-json"}, args...)
	out, err := p.lab.Output(p.nsA, full...)
	if err != nil {
		t.Fatalf("send: %v\n%s", err, out)
	}
	var r sendResult
	mustJSON(t, lastJSON(t, out), &r, "cmd", "engine", "proto", "size", "flows", "sent", "duration_s", "offered_pps")
	return r
}

// noXDP checks that nothing is left attached in either namespace.
func (p *pair) noXDP(t *testing.T) {
	t.Helper()
	for _, ns := range []string{p.nsA, p.nsB} {
		out, err := p.lab.Output(ns, "ip", "link", "show")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "xdp") {
			t.Errorf("XDP program left attached in %s:\n%s", ns, out)
		}
	}
}

func lastJSON(t *testing.T, out string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "{") {
			return lines[i]
		}
	}
	t.Fatalf("no JSON summary in:\n%s", out)
	return ""
}

// mustJSON decodes line into v and checks that every key is present.
func mustJSON(t *testing.T, line string, v any, keys ...string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("summary %q: %v", line, err)
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("summary %s lacks %q", line, k)
		}
	}
	if err := json.Unmarshal([]byte(line), v); err != nil {
		t.Fatalf("summary %q: %v", line, err)
	}
}

func within(got, want, frac float64) bool { return got >= want*(1-frac) && got <= want*(1+frac) }

// TestNetns runs the built command in network namespaces, as a user would.
func TestNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	bin := filepath.Join(t.TempDir(), "xvs-pktgen")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("live into xdp sink", func(t *testing.T) {
		p := newPair(t, bin)
		sink := p.start(t, "sink", "-i", p.ifB, "-mode", "xdp", "-json")
		// Rate-limited: flat out, a sink on a machine busy with other
		// tests drops a few percent on its full receive queue, which says
		// nothing about its counting.
		s := p.send(t, "-count", "1000000", "-rate", "500000", "-duration", "20s")
		r := p.stop(t, sink)
		if s.Cmd != "send" || s.Engine != "live" || s.Proto != "udp" || s.Size != 64 || s.Flows != 1 || s.Sent != 1000000 {
			t.Errorf("send summary %+v", s)
		}
		if r.Cmd != "sink" || r.Mode != "xdp" || r.Received < s.Sent*99/100 || r.Received > s.Sent {
			t.Errorf("sink received %d of %d (%+v)", r.Received, s.Sent, r)
		}
		if r.Bytes != r.Received*60 || r.DurationS <= 0 || !within(r.PPS, float64(r.Received)/r.DurationS, 1e-9) {
			t.Errorf("sink summary %+v", r)
		}
		t.Logf("live: offered %.2f Mpps, sink %.2f Mpps", s.OfferedPPS/1e6, r.PPS/1e6)
		p.noXDP(t)
	})

	for _, engine := range []string{"live", "xsk"} {
		t.Run("syn flows and checksums/"+engine, func(t *testing.T) {
			p := newPair(t, bin)
			// GRO gives the veth the NAPI that frames sent by XDP need, and
			// lets them through to the capture.
			if err := p.lab.In(p.nsB, "ethtool", "-K", p.ifB, "gro", "on"); err != nil {
				t.Fatal(err)
			}
			fd := packetSocket(t, p.nsB, p.ifB)
			s := p.send(t, "-engine", engine, "-proto", "syn", "-flows", "1000", "-count", "10000",
				"-rate", "200000", "-dport", "443")
			if s.Sent != 10000 || s.Flows != 1000 || s.Proto != "syn" {
				t.Fatalf("send summary %+v", s)
			}
			ports := make(map[uint16]int)
			n := capture(t, fd, 10000, func(frame []byte) {
				d := decodeFrame(t, frame) // fails on a bad checksum
				if !d.isTCP || !d.tcp.SYN || d.tcp.ACK || d.tcp.DstPort != 443 || d.ip.SrcIP.String() != "198.18.0.1" {
					t.Fatalf("captured %+v %+v", d.ip, d.tcp)
				}
				ports[uint16(d.tcp.SrcPort)]++
			})
			if n < 9000 {
				t.Errorf("captured %d of 10000 SYNs", n)
			}
			if len(ports) != 1000 {
				t.Errorf("%d distinct source ports, want 1000", len(ports))
			}
			for port := range ports {
				if port < 1024 || port >= 2024 {
					t.Errorf("source port %d outside 1024..2023", port)
				}
			}
			p.noXDP(t)
		})
	}

	t.Run("xsk into xdp sink", func(t *testing.T) {
		p := newPair(t, bin)
		sink := p.start(t, "sink", "-i", p.ifB, "-json")
		s := p.send(t, "-engine", "xsk", "-count", "100000", "-size", "128")
		r := p.stop(t, sink)
		if s.Engine != "xsk" || s.Sent != 100000 {
			t.Errorf("send summary %+v", s)
		}
		if r.Received < s.Sent*99/100 || r.Received > s.Sent || r.Bytes != r.Received*124 {
			t.Errorf("sink received %d of %d (%+v)", r.Received, s.Sent, r)
		}
		t.Logf("xsk: offered %.2f Mpps, sink %.2f Mpps", s.OfferedPPS/1e6, r.PPS/1e6)
		p.noXDP(t)
	})

	for _, mode := range []string{"xdp", "xsk"} {
		t.Run("reflect "+mode, func(t *testing.T) {
			p := newPair(t, bin)
			refl := p.start(t, "reflect", "-i", p.ifB, "-mode", mode, "-json")
			s := p.send(t, "-rate", "100000", "-duration", "2s", "-count-returns", "-flows", "100")
			r := p.stop(t, refl)
			if s.Returned == nil || s.ReturnedPPS == nil {
				t.Fatalf("send summary without returns: %+v", s)
			}
			if !within(float64(s.Sent), 200000, 0.1) {
				t.Errorf("sent %d at 100000 pps for 2s", s.Sent)
			}
			if *s.Returned == 0 || *s.Returned < s.Sent*9/10 || *s.Returned > s.Sent {
				t.Errorf("%d of %d frames returned", *s.Returned, s.Sent)
			}
			if !within(*s.ReturnedPPS, 100000, 0.15) {
				t.Errorf("returned at %.0f pps, sent at 100000", *s.ReturnedPPS)
			}
			if r.Cmd != "reflect" || r.Reflected == nil || *r.Reflected != r.Received || r.Received < *s.Returned {
				t.Errorf("reflect summary %+v, returned %d", r, *s.Returned)
			}
			p.noXDP(t)
		})
	}

	t.Run("threaded NAPI", func(t *testing.T) {
		p := newPair(t, bin)
		threaded := func() string {
			out, err := p.lab.Output(p.nsB, "cat", "/sys/class/net/"+p.ifB+"/threaded")
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(out)
		}
		if got := threaded(); got != "0" {
			t.Fatalf("fresh veth: threaded %q", got)
		}
		cpu := fmt.Sprint(runtime.NumCPU() - 1)
		sink := p.start(t, "sink", "-i", p.ifB, "-napi-cpu", cpu, "-json")
		if !strings.Contains(sink.Output.String(), "threaded NAPI thread(s) on CPU "+cpu) {
			t.Errorf("ready line: %s", sink.Output)
		}
		if got := threaded(); got != "1" {
			t.Errorf("while the sink runs: threaded %q", got)
		}
		s := p.send(t, "-rate", "100000", "-duration", "300ms")
		r := p.stop(t, sink)
		if r.Received == 0 || r.Received > s.Sent {
			t.Errorf("sink received %d of %d", r.Received, s.Sent)
		}
		if got := threaded(); got != "0" {
			t.Errorf("after the sink: threaded %q, want it restored", got)
		}
		p.noXDP(t)
	})

	t.Run("rate limit", func(t *testing.T) {
		p := newPair(t, bin)
		sink := p.start(t, "sink", "-i", p.ifB, "-mode", "xsk", "-json")
		s := p.send(t, "-rate", "50000", "-duration", "2s")
		r := p.stop(t, sink)
		if !within(float64(s.Sent), 100000, 0.1) || !within(s.DurationS, 2, 0.1) || !within(s.OfferedPPS, 50000, 0.1) {
			t.Errorf("send summary %+v, want 100000 frames in 2s", s)
		}
		if !within(float64(r.Received), 100000, 0.1) || !within(r.PPS, 50000, 0.1) {
			t.Errorf("sink summary %+v, want 100000 frames at 50000 pps", r)
		}
		if len(r.PerSecond) < 2 {
			t.Errorf("per_second %v", r.PerSecond)
		}
		p.noXDP(t)
	})
}

// packetSocket opens an AF_PACKET socket on ifname inside namespace ns.
func packetSocket(t *testing.T, ns, ifname string) int {
	t.Helper()
	// setns changes only this thread; lock it, and if it cannot be moved
	// back, let it die with the goroutine (t.Fatal exits it still locked).
	runtime.LockOSThread()
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer home.Close()
	target, err := os.Open(filepath.Join("/var/run/netns", ns))
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	fd, ferr := func() (int, error) {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return -1, err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return -1, err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return -1, err
		}
		return fd, nil
	}()
	if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	runtime.UnlockOSThread()
	if ferr != nil {
		t.Fatal(ferr)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval(int64(300 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd
}

// capture reads IPv4 frames to 198.18.0.2 from fd until want arrived or the
// socket stayed quiet, calls fn on each and returns how many there were.
func capture(t *testing.T, fd int, want int, fn func([]byte)) int {
	t.Helper()
	buf := make([]byte, 2048)
	n := 0
	for deadline := time.Now().Add(10 * time.Second); n < want && time.Now().Before(deadline); {
		m, from, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EAGAIN || err == unix.EINTR {
			if err == unix.EAGAIN {
				break // quiet for the receive timeout
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		frame := buf[:m]
		if m < l4Off || binary.BigEndian.Uint16(frame[12:]) != 0x0800 || net.IP(frame[ipOff+16:ipOff+20]).String() != "198.18.0.2" {
			continue
		}
		fn(frame)
		n++
	}
	return n
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
