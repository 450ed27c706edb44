package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/xvs-lb/xvs/internal/topo"
)

// Ports of the benchmark's services.
const (
	udpPort = 5353 // UDP service; xvs-echo listens on it for the latency cases
	tcpPort = 80   // TCP service, for the SYN cases
)

// synSources are the source addresses of SYN traffic: the upper half of
// 198.18.0.0/16, a flow space of 32768 addresses x 60000 ports that no run
// exhausts. Established traffic comes from the generator's own address, its
// flows differing in source port, so that the kernel's reverse-path check
// sees a host it can route back to.
const synSources = "198.18.128.0-198.18.255.255"

type binaries struct {
	topo.Binaries
	Pktgen string
}

// build compiles the programs the benchmark runs into dir.
func build(dir string) (binaries, error) {
	b, err := topo.Build(dir)
	if err != nil {
		return binaries{}, err
	}
	bin := binaries{Binaries: b, Pktgen: filepath.Join(dir, "xvs-pktgen")}
	root, err := moduleRoot()
	if err != nil {
		return binaries{}, err
	}
	if err := command(root, "go", "build", "-o", bin.Pktgen, "./cmd/xvs-pktgen"); err != nil {
		return binaries{}, err
	}
	return bin, nil
}

// runner measures cases on one topology.
type runner struct {
	ctx      context.Context
	set      Settings
	duration time.Duration
	t        *topo.Bench
	// multi is the two-queue topology of the two-worker cases, built
	// when the first of them runs; main closes it.
	multi    *topo.Bench
	logf     io.Writer
	bin      binaries
	dir      string    // scratch: configurations
	progress io.Writer // a line per run
}

// consumer is what counts (and perhaps reflects) the generator's frames.
type consumer struct {
	ns, ifname string
	cmd        string // sink or reflect
	mode       string // xdp or xsk
	cpu        int
	// returns: delivered frames are those that came back to the
	// generator's interface, not those the consumer saw.
	returns bool
}

// runCase runs c Settings.Runs times.
func (r *runner) runCase(c Case) CaseResult {
	res := CaseResult{Case: c, ID: c.ID(), Group: c.Target.Group(), Title: c.Title(), Setup: r.setup(c)}
	if q := c.Target.Queues(); q > 1 {
		if r.multi == nil {
			t, err := topo.NewBenchQueues(r.logf, q)
			if err != nil {
				res.Runs = append(res.Runs, Run{Error: fmt.Sprintf("%d-queue topology: %v", q, err)})
				summarizeCase(&res)
				return res
			}
			r.multi = t
		}
		one := r.t
		r.t = r.multi
		defer func() { r.t = one }()
	}
	for i := 0; i < r.set.Runs && r.ctx.Err() == nil; i++ {
		busy := r.quiet()
		run, err := r.once(c)
		run.BusyPct = busy
		if err != nil {
			run.Error = err.Error()
			fmt.Fprintf(r.progress, "  %-34s run %d/%d: FAILED: %v\n", res.ID, i+1, r.set.Runs, err)
		} else {
			fmt.Fprintf(r.progress, "  %-34s run %d/%d: %7.3f Mpps delivered, %6.3f offered\n",
				res.ID, i+1, r.set.Runs, run.DeliveredMpps, run.OfferedMpps)
		}
		res.Runs = append(res.Runs, run)
	}
	summarizeCase(&res)
	return res
}

// start starts a measured program in namespace ns at the benchmark's
// priority (Settings.Nice), so that other work on the machine takes as
// little as possible from it.
func (r *runner) start(ns string, args ...string) (*topo.Proc, error) {
	return r.t.Start(ns, r.niced(args)...)
}

func (r *runner) niced(args []string) []string {
	if r.set.Nice == 0 {
		return args
	}
	return append([]string{"nice", "-n", strconv.Itoa(r.set.Nice)}, args...)
}

// quietBusy is the CPU use (%, all CPUs) below which the machine counts as
// quiet: a run then has it to itself.
const quietBusy = 15

// quiet waits, up to Settings.QuietWaitS, until the CPUs are quiet, and
// returns how busy they were at the last look. The benchmark itself is idle
// at that point, so whatever it sees is other work.
func (r *runner) quiet() float64 {
	deadline := time.Now().Add(time.Duration(r.set.QuietWaitS * float64(time.Second)))
	for {
		busy, err := cpuBusy(300 * time.Millisecond)
		if err != nil {
			return 0
		}
		if busy < quietBusy || r.ctx.Err() != nil || !time.Now().Before(deadline) {
			return finite(busy)
		}
		time.Sleep(time.Second)
	}
}

// setup says where the work of c runs.
func (r *runner) setup(c Case) string {
	g, w := r.set.GenCPU, r.set.WorkerCPU
	switch c.Target {
	case XDPDrop, XDPTX:
		return fmt.Sprintf("generator CPU %d; XDP program in threaded NAPI pinned to CPU %d", g, w)
	case XSKRX, XSKReflect:
		return fmt.Sprintf("generator and XDP redirect (softirq) CPU %d; AF_XDP socket loop CPU %d", g, w)
	case NFT:
		return fmt.Sprintf("generator CPU %d; kernel forwarding (director veth, threaded NAPI) pinned to CPU %d; conntrack flushed", g, w)
	}
	if c.Target == NFTSynProxy {
		return fmt.Sprintf("generator CPU %d; kernel synproxy (director veth, threaded NAPI) pinned to CPU %d; SYN-ACKs counted back at the generator's interface", g, w)
	}
	if c.Target.SynProxy() {
		return fmt.Sprintf("generator and XDP steering (softirq) CPU %d; xvsd worker CPU %d; SYN-ACKs counted back at the generator's interface", g, w)
	}
	if c.Target.FastPath() && c.Traffic == UDP {
		return fmt.Sprintf("generator CPU %d; XDP steering and fast path in threaded NAPI pinned to CPU %d, with the xvsd worker", g, w)
	}
	if q := c.Target.Queues(); q > 1 {
		return fmt.Sprintf("%d queues: a generator, the XDP steering of its queue (softirq) and an xvsd worker on each of CPUs %d and %d", q, g, w)
	}
	switch c.Tune {
	case "cpus = []":
		return fmt.Sprintf("generator and XDP steering (softirq) CPU %d; xvsd worker unpinned", g)
	case "cpus = [" + CPUGenerator + "]":
		return fmt.Sprintf("generator, XDP steering (softirq) and xvsd worker CPU %d", g)
	}
	return fmt.Sprintf("generator and XDP steering (softirq) CPU %d; xvsd worker CPU %d", g, w)
}

func (r *runner) once(c Case) (Run, error) {
	if err := r.ctx.Err(); err != nil {
		return Run{}, err
	}
	t := r.t
	sink := consumer{ns: t.Real, ifname: t.RealIf, cmd: "sink", mode: "xdp", cpu: r.set.GenCPU}
	switch c.Target {
	case XDPDrop, XDPTX, XSKRX, XSKReflect:
		threaded := c.Target == XDPDrop || c.Target == XDPTX
		if err := t.ThreadedNAPI(t.Director, t.DirGenIf, threaded, r.set.WorkerCPU, r.set.Nice); err != nil {
			return Run{}, err
		}
		k := consumer{ns: t.Director, ifname: t.DirGenIf, cpu: r.set.WorkerCPU}
		k.cmd, k.mode = "sink", "xdp"
		switch c.Target {
		case XDPTX:
			k.cmd, k.returns = "reflect", true
		case XSKRX:
			k.mode = "xsk"
		case XSKReflect:
			k.cmd, k.mode, k.returns = "reflect", "xsk", true
		}
		return r.measure(c, k)
	case NFT:
		undo, err := r.kernelLB(true)
		if err != nil {
			return Run{}, errors.Join(err, undo())
		}
		run, err := r.measure(c, sink)
		if n, cerr := r.conntrackCount(); cerr == nil && run.Sink != nil {
			run.Director = &DirectorStats{Connections: n}
		}
		return run, errors.Join(err, undo())
	case NFTSynProxy:
		undo, err := r.kernelSynProxy()
		if err != nil {
			return Run{}, errors.Join(err, undo())
		}
		sink.returns = true
		run, err := r.measure(c, sink)
		if n, cerr := r.conntrackCount(); cerr == nil && run.Sink != nil {
			run.Director = &DirectorStats{Connections: n}
		}
		return run, errors.Join(err, undo())
	case XVSDR, XVSNAT, XVSTUN, XVSFNAT, XVSDRFast, XVSNATFast, XVSTUNFast, XVSFNATFast, XVSDR2Q, XVSNAT2Q, XVSNATSynProxy, XVSFNATSynProxy,
		XVSNATSynProxyFast, XVSFNATSynProxyFast:
		// Established traffic on the fast path is forwarded by the
		// steering program alone: it runs where the XDP ceilings' programs
		// run (threaded NAPI on the worker's CPU, which it then hardly
		// uses), not in the generator's softirq, where the generator's
		// own share of CPU 0 would bound it.
		// So are the SYNs of the SYN proxy on the fast path.
		xdpOnWorkerCPU := c.Target.FastPath() && (c.Traffic == UDP || c.Target.SynProxy())
		if err := t.ThreadedNAPI(t.Director, t.DirGenIf, xdpOnWorkerCPU, r.set.WorkerCPU, r.set.Nice); err != nil {
			return Run{}, err
		}
		connections := 0 // xvsd's default
		if c.Traffic == SYN && !c.Target.SynProxy() {
			connections = synTable(r.duration)
		}
		if c.Target.SynProxy() {
			// What counts is what comes back: the SYN-ACKs. The sink
			// on the real servers' side says what got through (nothing).
			sink.returns = true
		}
		d, err := r.startDirector(c.Target, connections, c.Tune)
		if err != nil {
			return Run{}, err
		}
		run, err := r.measure(c, sink)
		stats, serr := stopDirector(d)
		run.Director = stats
		if q := c.Target.Queues(); serr == nil && stats.Workers != q {
			serr = fmt.Errorf("xvsd ran %d workers, want %d (one per queue)", stats.Workers, q)
		}
		return run, errors.Join(err, serr)
	}
	return Run{}, fmt.Errorf("unknown target %q", c.Target)
}

// measure runs the consumer k, sends c's traffic for the run's duration, and
// collects both sides' counts.
func (r *runner) measure(c Case, k consumer) (Run, error) {
	var run Run
	p, err := r.start(k.ns, r.bin.Pktgen, k.cmd, "-i", k.ifname, "-mode", k.mode,
		"-cpu", strconv.Itoa(k.cpu), "-json", "-quiet")
	if err != nil {
		return run, err
	}
	defer p.Stop(5 * time.Second)
	if err := r.waitReady(p); err != nil {
		return run, fmt.Errorf("%s -mode %s: %w", k.cmd, k.mode, err)
	}
	send, err := r.send(c, k.returns)
	if err != nil {
		return run, err
	}
	run.Send = &send
	// Frames still in rings and queues arrive within a few milliseconds.
	time.Sleep(200 * time.Millisecond)
	_ = p.Stop(5 * time.Second)
	var recv SinkResult
	if err := lastJSON(p.Output.String(), &recv); err != nil {
		return run, fmt.Errorf("%s -mode %s: %w", k.cmd, k.mode, err)
	}
	run.Sink = &recv
	run.OfferedMpps = send.OfferedPPS / 1e6
	// Both over the generator's sending time: a consumer that stopped
	// receiving early (a full table dropping every new flow) must not look
	// fast for the short time it did receive, and its own first-to-last
	// window would stretch over any stray frame before the traffic.
	n := recv.Received
	if k.returns {
		n = send.Returned
	}
	run.DeliveredMpps = rate(n, send.DurationS)
	return run, nil
}

// rate is n frames over seconds, in Mpps.
func rate(n uint64, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return finite(float64(n) / seconds / 1e6)
}

func (r *runner) sendArgs(c Case, returns bool) []string {
	t := r.t
	src, dport, proto := topo.ClientIP.String(), udpPort, "udp"
	if c.Traffic == SYN {
		src, dport, proto = synSources, tcpPort, "syn"
	}
	var count []string
	if c.Traffic == Mixed {
		count = []string{"-count", strconv.Itoa(2 * c.Flows)}
	}
	args := []string{r.bin.Pktgen, "send", "-i", t.GenIf, "-engine", "live",
		"-src-mac", t.GenMAC.String(), "-dst-mac", t.DirGenMAC.String(),
		"-src-ip", src, "-dst-ip", topo.VIP.String(),
		"-sport", "1024", "-dport", strconv.Itoa(dport), "-proto", proto,
		"-size", strconv.Itoa(c.Size), "-flows", strconv.Itoa(c.Flows),
		"-duration", r.duration.String(), "-cpu", strconv.Itoa(r.set.GenCPU), "-json", "-quiet"}
	args = append(args, count...)
	if returns {
		args = append(args, "-count-returns")
	}
	return args
}

// send runs the generator to completion: one, or for a target with
// several queues one per queue, each on its own CPU (so on its own queue)
// with its share of the flows, summed.
func (r *runner) send(c Case, returns bool) (SendResult, error) {
	var res SendResult
	q := c.Target.Queues()
	if q == 1 {
		return r.sendOne(r.sendArgs(c, returns))
	}
	cpus := []int{r.set.GenCPU, r.set.WorkerCPU}
	type out struct {
		res SendResult
		err error
	}
	done := make(chan out, q)
	for i := range q {
		share := c
		share.Flows = c.Flows / q
		args := r.sendArgs(share, returns)
		args = setArg(args, "-cpu", strconv.Itoa(cpus[i%len(cpus)]))
		args = setArg(args, "-sport", strconv.Itoa(1024+i*share.Flows))
		go func() {
			res, err := r.sendOne(args)
			done <- out{res, err}
		}()
	}
	var errs []error
	for range q {
		o := <-done
		errs = append(errs, o.err)
		res.Cmd, res.Engine = o.res.Cmd, o.res.Engine
		res.Sent += o.res.Sent
		res.Returned += o.res.Returned
		res.OfferedPPS += o.res.OfferedPPS
		res.ReturnedPPS += o.res.ReturnedPPS
		res.DurationS = max(res.DurationS, o.res.DurationS)
	}
	return res, errors.Join(errs...)
}

func (r *runner) sendOne(args []string) (SendResult, error) {
	var res SendResult
	p, err := r.start(r.t.Gen, args...)
	if err != nil {
		return res, err
	}
	if err := r.wait(p, r.duration+30*time.Second); err != nil {
		return res, fmt.Errorf("send: %w\n%s", err, tail(p.Output.String()))
	}
	if err := lastJSON(p.Output.String(), &res); err != nil {
		return res, fmt.Errorf("send: %w", err)
	}
	return res, nil
}

// setArg sets flag's value in args, or adds the flag.
func setArg(args []string, flag, value string) []string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			args[i+1] = value
			return args
		}
	}
	return append(args, flag, value)
}

// wait waits for p to exit, at most timeout and no longer than the run.
func (r *runner) wait(p *topo.Proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if done, err := p.Exited(); done {
			return err
		}
		if r.ctx.Err() != nil || time.Now().After(deadline) {
			_ = p.Stop(2 * time.Second)
			if r.ctx.Err() != nil {
				return r.ctx.Err()
			}
			return fmt.Errorf("still running after %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitReady waits until the consumer p says it is ready (its programs are
// attached and its sockets bound), or exits.
func (r *runner) waitReady(p *topo.Proc) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && r.ctx.Err() == nil {
		if done, err := p.Exited(); done {
			return fmt.Errorf("exited (%v):\n%s", err, tail(p.Output.String()))
		}
		if strings.Contains(p.Output.String(), " ready on ") {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("not ready within 10s:\n%s", tail(p.Output.String()))
}

// kernelLB sets up (on) the kernel's load balancer in the director's
// namespace: forwarding, nftables DNAT over both real servers, an empty
// conntrack table, and receive processing in threaded NAPI on the worker
// CPU. The returned function undoes it.
func (r *runner) kernelLB(threaded bool) (undo func() error, err error) {
	t := r.t
	loaded := false
	undo = func() error {
		var errs []error
		if loaded {
			errs = append(errs, t.In(t.Director, "nft", "delete", "table", "ip", "xvsbench"))
		}
		errs = append(errs, t.ThreadedNAPI(t.Director, t.DirGenIf, false, -1, 0), t.Forwarding(false))
		return errors.Join(errs...)
	}
	if err := t.ThreadedNAPI(t.Director, t.DirGenIf, threaded, r.set.WorkerCPU, r.set.Nice); err != nil {
		return undo, err
	}
	if err := t.Forwarding(true); err != nil {
		return undo, err
	}
	// Flows the kernel saw before the DNAT rule would never be translated.
	return undo, r.loadNft("nft.conf", nftRules(t), &loaded)
}

// loadNft loads rules into the director's nftables from a file named name
// in the run's directory, sets *loaded, and empties conntrack, so that the
// rules apply to every flow from here on.
func (r *runner) loadNft(name, rules string, loaded *bool) error {
	t := r.t
	path := filepath.Join(r.dir, name)
	if err := os.WriteFile(path, []byte(rules), 0o644); err != nil {
		return err
	}
	if err := t.In(t.Director, "nft", "-f", path); err != nil {
		return err
	}
	*loaded = true
	return t.In(t.Director, "conntrack", "-F")
}

// nftRules is the kernel baseline: what people run without IPVS.
func nftRules(t *topo.Bench) string {
	m := make([]string, len(t.RealIPs))
	for i, a := range t.RealIPs {
		m[i] = fmt.Sprintf("%d : %s", i, a)
	}
	return fmt.Sprintf(`table ip xvsbench {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr %[1]s udp dport %[2]d dnat to numgen inc mod %[4]d map { %[5]s }
		ip daddr %[1]s tcp dport %[3]d dnat to numgen inc mod %[4]d map { %[5]s }
	}
}
`, topo.VIP, udpPort, tcpPort, len(t.RealIPs), strings.Join(m, ", "))
}

// kernelSynProxy sets up the kernel's SYN proxy in the director's
// namespace, as its documentation has it for a local service: SYNs to the
// VIP's TCP port are left untracked (raw prerouting) and answered by the
// synproxy statement with a cookie (input); receive processing runs in
// threaded NAPI on the worker CPU, as for the DNAT baseline. A route to the
// SYN sources lets the kernel send the SYN-ACKs (to the generator, as the
// next hop). The returned function undoes it.
func (r *runner) kernelSynProxy() (undo func() error, err error) {
	t := r.t
	loaded, routed := false, false
	undo = func() error {
		var errs []error
		if loaded {
			errs = append(errs, t.In(t.Director, "nft", "delete", "table", "ip", "xvsbenchsyn"))
		}
		if routed {
			errs = append(errs, t.In(t.Director, "ip", "route", "del", synSourcesNet))
		}
		errs = append(errs, t.ThreadedNAPI(t.Director, t.DirGenIf, false, -1, 0))
		return errors.Join(errs...)
	}
	if err := t.ThreadedNAPI(t.Director, t.DirGenIf, true, r.set.WorkerCPU, r.set.Nice); err != nil {
		return undo, err
	}
	if err := t.In(t.Director, "ip", "route", "add", synSourcesNet, "via", t.GenIP.String(), "dev", t.DirGenIf); err != nil {
		return undo, err
	}
	routed = true
	return undo, r.loadNft("nft-synproxy.conf", nftSynProxyRules(), &loaded)
}

// synSourcesNet is synSources as a prefix.
const synSourcesNet = "198.18.128.0/17"

// nftSynProxyRules is the kernel's SYN proxy for the VIP's TCP service.
func nftSynProxyRules() string {
	return fmt.Sprintf(`table ip xvsbenchsyn {
	chain prerouting {
		type filter hook prerouting priority raw; policy accept;
		ip daddr %[1]s tcp dport %[2]d tcp flags syn notrack
	}
	chain input {
		type filter hook input priority filter; policy accept;
		ip daddr %[1]s tcp dport %[2]d ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm
		ip daddr %[1]s tcp dport %[2]d ct state invalid drop
	}
}
`, topo.VIP, tcpPort)
}

func (r *runner) conntrackCount() (uint64, error) {
	out, err := r.t.Output(r.t.Director, "conntrack", "-C")
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(out), 10, 64)
}

// xvsConfig is the director's configuration for one forwarding mode: a UDP
// service and a TCP service on the VIP, both real servers, round robin;
// FullNAT connections leave from the director's local addresses. tune,
// [director] lines joined by "; ", replaces the settings of the same keys
// or is added.
func xvsConfig(t *topo.Bench, method string, fast bool, workerCPU, connections int, tune string) string {
	var lips []string
	for _, a := range t.LocalIPs {
		lips = append(lips, strconv.Quote(a.String()))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by bench: one director, two interfaces (clients, real servers).
[director]
interfaces = [%q, %q]
xdp_mode = "auto"
zerocopy = "auto"
cpus = [%d]
log_level = "warn"
`, t.DirGenIf, t.DirRealIf, workerCPU)
	if connections > 0 {
		fmt.Fprintf(&b, "connections = %d\n", connections)
	}
	if fast {
		b.WriteString("fast_path = \"xdp\"\n")
	}
	for line := range strings.SplitSeq(tune, "; ") {
		if line == "" {
			continue
		}
		key, _, _ := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		lines := strings.Split(b.String(), "\n")
		b.Reset()
		for _, l := range lines[:len(lines)-1] {
			if k, _, ok := strings.Cut(l, "="); !ok || strings.TrimSpace(k) != key {
				b.WriteString(l + "\n")
			}
		}
		b.WriteString(line + "\n")
	}
	for _, svc := range []struct {
		proto string
		port  int
	}{{"udp", udpPort}, {"tcp", tcpPort}} {
		fmt.Fprintf(&b, "\n[[service]]\nvip = %q\nport = %d\nprotocol = %q\nscheduler = \"rr\"\n", topo.VIP, svc.port, svc.proto)
		if method == "fullnat" {
			fmt.Fprintf(&b, "local_addresses = [%s]\n", strings.Join(lips, ", "))
		}
		for _, a := range t.RealIPs {
			fmt.Fprintf(&b, "  [[service.real]]\n  address = %q\n  port = %d\n  method = %q\n", a, svc.port, method)
		}
	}
	return b.String()
}

// withSynProxy turns the SYN proxy on for cfg's TCP services.
func withSynProxy(cfg string) string {
	return strings.ReplaceAll(cfg, "protocol = \"tcp\"\n", "protocol = \"tcp\"\nsyn_proxy = true\n")
}

// synTable sizes the connection table of a SYN run: every frame is a new
// connection, so it takes the whole run's worth at up to 1 Mpps. The row
// then measures creating connections, not refusing them once a table is
// full (what a flood longer than the table does: table_full, or eviction
// with when_full = "evict").
func synTable(d time.Duration) int {
	return min(max(int(d.Seconds()*1e6), 1<<20), 1<<27)
}

func (r *runner) startDirector(target Target, connections int, tune string) (*topo.Proc, error) {
	method := target.Method()
	path := filepath.Join(r.dir, "xvs-"+method+".toml")
	if target.Queues() > 1 {
		// A worker on each CPU, beside the generator feeding its queue.
		tune = strings.TrimPrefix(tune+fmt.Sprintf("; cpus = [%d, %d]", r.set.GenCPU, r.set.WorkerCPU), "; ")
	}
	tune = strings.ReplaceAll(tune, CPUGenerator, strconv.Itoa(r.set.GenCPU))
	cfg := xvsConfig(r.t, method, target.FastPath(), r.set.WorkerCPU, connections, tune)
	if target.SynProxy() {
		cfg = withSynProxy(cfg)
	}
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	p, err := r.start(r.t.Director, r.bin.Xvsd, "-config", path)
	if err != nil {
		return nil, err
	}
	if err := topo.WaitOutput(p, "xvsd: ready", 15*time.Second); err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, fmt.Errorf("xvsd: %w", err)
	}
	return p, nil
}

// stopDirector stops xvsd and parses the status it prints on the way out.
func stopDirector(p *topo.Proc) (*DirectorStats, error) {
	if err := p.Stop(10 * time.Second); err != nil {
		return nil, fmt.Errorf("xvsd: %w\n%s", err, tail(p.Output.String()))
	}
	return parseDirectorStats(p.Output.String())
}

// parseDirectorStats reads the status xvsd prints when it stops (xvsadm
// status's layout):
//
//	workers 1, connections 10000 (capacity 1048576), rx 123 frames, tx 120 frames
//	  drops: no_next_hop=3 tx_full=0
//	  fast path xdp: 2 of 262144 flows offloaded, 98 frames forwarded by XDP; ...
func parseDirectorStats(out string) (*DirectorStats, error) {
	var s DirectorStats
	found := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		var capacity int
		if n, _ := fmt.Sscanf(line, "workers %d, connections %d (capacity %d), rx %d frames, tx %d frames",
			&s.Workers, &s.Connections, &capacity, &s.RxFrames, &s.TxFrames); n == 5 {
			found = true
			s.Drops = nil
			continue
		}
		var mode string
		var flows, fcap int
		if n, _ := fmt.Sscanf(line, "fast path %s %d of %d flows offloaded, %d frames forwarded by XDP;",
			&mode, &flows, &fcap, &s.FastFrames); n == 4 && found {
			continue
		}
		if n, _ := fmt.Sscanf(line, "syn_proxy: %d syn-acks sent (%d by XDP), %d connections opened",
			&s.SynProxySynAcks, &s.SynProxyXDP, &s.SynProxyOpened); n == 3 && found {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "drops: "); ok && found {
			for _, kv := range strings.Fields(rest) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					continue
				}
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					continue
				}
				if s.Drops == nil {
					s.Drops = map[string]uint64{}
				}
				s.Drops[k] = n
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("xvsd printed no status:\n%s", tail(out))
	}
	return &s, nil
}

// lastJSON decodes the last line of out that holds a JSON object into v.
func lastJSON(out string, v any) error {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), v) == nil {
			return nil
		}
	}
	return fmt.Errorf("no JSON summary in output:\n%s", tail(out))
}

// tail returns the last lines of a process's output, for error messages.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

func moduleRoot() (string, error) {
	out, err := commandOutput("", "go", "env", "GOMOD")
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(out)
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the xvs module: run from the repository")
	}
	return filepath.Dir(mod), nil
}
