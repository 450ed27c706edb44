package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/xvs-lb/xvs/internal/topo"
)

// latencyCmd is the hidden subcommand the harness runs in the client's
// namespace (by re-executing itself under `ip netns exec`): sequential UDP
// request/response with xvs-echo, one request in flight, timing each round
// trip. It prints a LatencyRun as JSON.
const latencyCmd = "__latency"

// maxLost bounds a broken path's run: past this many lost requests the
// client gives up rather than wait out every timeout.
const maxLost = 100

func latencyMain(args []string) error {
	fs := flag.NewFlagSet(latencyCmd, flag.ContinueOnError)
	addr := fs.String("addr", "", "HOST:PORT of the service")
	n := fs.Int("n", 2000, "timed requests")
	warmup := fs.Int("warmup", 50, "untimed requests first (connection set-up, caches)")
	timeout := fs.Duration("timeout", 200*time.Millisecond, "per-request timeout; a request without a reply in time is lost")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > 1_000_000 || *warmup < 0 || *warmup > 1_000_000 {
		return errors.New("latency: -n must be in 1..1000000, -warmup in 0..1000000")
	}
	run, err := measureLatency(*addr, *n, *warmup, *timeout)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(run)
}

// measureLatency does warmup+n sequential round trips to addr, each bounded
// by timeout.
func measureLatency(addr string, n, warmup int, timeout time.Duration) (LatencyRun, error) {
	run := LatencyRun{Requests: n, Servers: map[string]int{}}
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return run, fmt.Errorf("latency: dial %s: %w", addr, err)
	}
	defer conn.Close()
	buf := make([]byte, 2048)
	msg := make([]byte, 0, 64)
	rtts := make([]float64, 0, n)
	for i := 0; i < warmup+n; i++ {
		msg = strconv.AppendInt(append(msg[:0], "xvs-bench "...), int64(i), 10)
		start := time.Now()
		if err := conn.SetDeadline(start.Add(timeout)); err != nil {
			return run, err
		}
		if _, err := conn.Write(msg); err != nil {
			return run, fmt.Errorf("latency: send: %w", err)
		}
		name, ok := "", false
		for !ok {
			k, err := conn.Read(buf)
			if err != nil {
				break // timed out: lost
			}
			// xvs-echo answers "NAME:" + request. A late reply to an
			// earlier request is skipped.
			if j := bytes.IndexByte(buf[:k], ':'); j > 0 && bytes.Equal(buf[j+1:k], msg) {
				name, ok = string(buf[:j]), true
			}
		}
		rtt := time.Since(start)
		if i < warmup {
			continue
		}
		if !ok {
			run.Lost++
			if run.Lost >= maxLost {
				run.Error = fmt.Sprintf("%d requests lost; gave up", run.Lost)
				break
			}
			continue
		}
		run.OK++
		run.Servers[name]++
		rtts = append(rtts, float64(rtt.Nanoseconds())/1e3)
	}
	fillLatency(&run, rtts)
	return run, nil
}

// fillLatency sets run's statistics from round-trip times in microseconds.
func fillLatency(run *LatencyRun, rtts []float64) {
	if len(rtts) == 0 {
		return
	}
	s := slices.Clone(rtts)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	run.P50, run.P90, run.P99 = percentile(s, 50), percentile(s, 90), percentile(s, 99)
	run.Min, run.Max, run.Mean = s[0], s[len(s)-1], sum/float64(len(s))
}

// latencyCases measures round trips through xvs (NAT: replies come back
// through the director) and through the kernel's nftables DNAT, with
// xvs-echo answering on the real servers.
func (r *runner) latencyCases() []LatencyResult {
	t := r.t
	fail := func(id, title string, err error) []LatencyResult {
		return []LatencyResult{{ID: id, Title: title, Runs: []LatencyRun{{Error: err.Error()}}}}
	}
	// One server answers on both real servers' addresses: they share the
	// namespace, and a single flow only ever reaches one of them.
	p, err := t.Start(t.Real, r.bin.Echo, "serve", "-name", "rs", "-http", "", "-udp", fmt.Sprintf(":%d", udpPort))
	if err != nil {
		return fail("latency", "echo server", err)
	}
	defer p.Stop(5 * time.Second)
	if err := topo.WaitOutput(p, "serving", 5*time.Second); err != nil {
		return fail("latency", "echo server", err)
	}
	var out []LatencyResult

	if err := t.ThreadedNAPI(t.Director, t.DirGenIf, false, -1, 0); err != nil {
		return fail("latency/xvs-nat", XVSNAT.Title(), err)
	}
	// xvsd as it comes (its worker sleeps in poll() when idle, so every
	// request wakes it), and busy-polling, which trades a core for that
	// wake-up.
	for _, v := range []struct{ id, tune, how string }{
		{"latency/xvs-nat", "", "sleeps in poll() when idle"},
		{"latency/xvs-nat-busy", "idle_spins = -1", "spins on its rings (idle_spins = -1)"},
		// busy_poll: the worker's own recvfrom/poll runs the interface's
		// NAPI (SO_PREFER_BUSY_POLL), with the interrupts deferred.
		{"latency/xvs-nat-busypoll", "busy_poll = true", "busy-polls the queue's NAPI (busy_poll = true), then sleeps in poll()"},
		{"latency/xvs-nat-busypoll-spin", "busy_poll = true; idle_spins = -1", "busy-polls the queue's NAPI and never sleeps (busy_poll = true, idle_spins = -1)"},
		{"latency/xvs-nat-fast", `fast_path = "xdp"`, "sleeps in poll() when idle; the XDP fast path forwards the flow after its first datagram"},
	} {
		xvs := LatencyResult{ID: v.id, Title: Case{Target: XVSNAT, Tune: v.tune}.Title(),
			Setup: fmt.Sprintf("xvsd NAT, worker on CPU %d %s; replies back through the director", r.set.WorkerCPU, v.how)}
		d, err := r.startDirector(XVSNAT, 0, v.tune)
		if err != nil {
			out = append(out, fail(xvs.ID, xvs.Title, err)...)
			continue
		}
		r.latencyRuns(&xvs)
		if _, err := stopDirector(d); err != nil {
			xvs.Runs = append(xvs.Runs, LatencyRun{Error: err.Error()})
		}
		summarizeLatency(&xvs)
		out = append(out, xvs)
	}

	// The kernel's receive path as it comes: NAPI in softirq, not threaded,
	// which is its lowest-latency arrangement.
	kern := LatencyResult{ID: "latency/nft-dnat", Title: NFT.Title(),
		Setup: "nftables DNAT numgen inc mod 2, conntrack flushed, forwarding in softirq"}
	undo, err := r.kernelLB(false)
	if err != nil {
		return append(out, fail(kern.ID, kern.Title, errors.Join(err, undo()))...)
	}
	r.latencyRuns(&kern)
	if err := undo(); err != nil {
		kern.Runs = append(kern.Runs, LatencyRun{Error: err.Error()})
	}
	summarizeLatency(&kern)
	return append(out, kern)
}

// latencyRuns runs the latency client Settings.Runs times in the
// generator's namespace, by re-executing this program there.
func (r *runner) latencyRuns(l *LatencyResult) {
	exe, err := os.Executable()
	if err != nil {
		l.Runs = append(l.Runs, LatencyRun{Error: err.Error()})
		return
	}
	addr := netip.AddrPortFrom(topo.VIP, udpPort).String()
	for i := 0; i < r.set.Runs && r.ctx.Err() == nil; i++ {
		busy := r.quiet()
		var run LatencyRun
		out, err := r.t.Output(r.t.Gen, r.niced([]string{exe, latencyCmd, "-addr", addr, "-n", strconv.Itoa(r.set.LatencyN)})...)
		if err == nil {
			err = lastJSON(out, &run)
		}
		run.BusyPct = busy
		if err != nil {
			run.Error = err.Error()
			fmt.Fprintf(r.progress, "  %-34s run %d/%d: FAILED: %v\n", l.ID, i+1, r.set.Runs, err)
		} else {
			fmt.Fprintf(r.progress, "  %-34s run %d/%d: p50 %.0f µs, p99 %.0f µs, %d lost %v\n",
				l.ID, i+1, r.set.Runs, run.P50, run.P99, run.Lost, run.Servers)
		}
		l.Runs = append(l.Runs, run)
	}
}
