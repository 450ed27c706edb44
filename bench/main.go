// Command bench is `make bench`: it measures xvs's forwarding rate and
// latency against the machine's ceilings and the kernel's own load balancer,
// all in one run on one topology, and writes the figures to bench/results.
//
// It builds xvsd, xvs-pktgen and xvs-echo, lays out generator ── director ──
// real servers in network namespaces (internal/topo.NewBench), and for each
// case starts a consumer (a sink that counts on the real-server side, or a
// reflector on the director), drives traffic with xvs-pktgen, and records
// what arrived. Every case runs BENCH_RUNS times.
//
// Settings come from the environment:
//
//	BENCH_RUNS=3          runs per case (1 with BENCH_QUICK)
//	BENCH_QUICK=1         1 run of 2 s per case, and fewer combinations
//	BENCH_DURATION=5s     generator time per run (2s with BENCH_QUICK)
//	BENCH_GEN_CPU=0       CPU of the generator (and so of the softirq work it causes)
//	BENCH_WORKER_CPU=1    CPU of xvsd's worker and of every consumer under test
//	BENCH_LATENCY_N=2000  timed request/responses per latency run
//	BENCH_NICE=-20        priority of the measured processes (generator, consumers, xvsd,
//	                      NAPI kthreads), so that other work takes less from them; 0 leaves it
//	BENCH_QUIET_WAIT=10s  before each run, wait up to this long (3s with BENCH_QUICK) for
//	                      other work on the machine to stop (CPUs under 15 % busy); runs
//	                      that had to start anyway are flagged in the notes
//	BENCH_ONLY=regexp     only the cases whose ID matches ("latency" for the latency cases);
//	                      latest.* are then left alone
//	BENCH_TUNE=1          instead of the usual cases, turn each of the data path's knobs
//	                      (batch size, ring sizes, idle spins, need_wakeup, worker CPU)
//	                      alone against the defaults, in DR; writes tuning.md and tuning.png
//	BENCH_OUT=dir         where results go (bench/results)
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xvs-lb/xvs/internal/topo"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == latencyCmd {
		if err := latencyMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	// A signal ends the current step early; run then tears everything
	// down. Under nohup, SIGHUP stays ignored.
	sigs := []os.Signal{syscall.SIGINT, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		if sig, ok := <-ch; ok {
			fmt.Fprintf(os.Stderr, "bench: %v: stopping\n", sig)
			cancel()
		}
	}()
	err := run(ctx)
	signal.Stop(ch)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// settingsFromEnv reads the BENCH_* variables through getenv.
func settingsFromEnv(getenv func(string) string) (Settings, time.Duration, string, error) {
	s := Settings{Runs: 3, GenCPU: 0, WorkerCPU: 1, LatencyN: 2000, QuietWaitS: 10, Nice: -20}
	dur := 5 * time.Second
	if v := getenv("BENCH_QUICK"); v != "" && v != "0" {
		s.Quick, s.Runs, s.QuietWaitS, dur = true, 1, 3, 2*time.Second
	}
	ints := []struct {
		name     string
		dst      *int
		min, max int
	}{
		{"BENCH_RUNS", &s.Runs, 1, 100},
		{"BENCH_GEN_CPU", &s.GenCPU, 0, 4095},
		{"BENCH_WORKER_CPU", &s.WorkerCPU, 0, 4095},
		{"BENCH_LATENCY_N", &s.LatencyN, 1, 1_000_000},
		{"BENCH_NICE", &s.Nice, -20, 19},
	}
	for _, x := range ints {
		v := getenv(x.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < x.min || n > x.max {
			return s, 0, "", fmt.Errorf("%s=%q: want an integer in %d..%d", x.name, v, x.min, x.max)
		}
		*x.dst = n
	}
	if v := getenv("BENCH_QUIET_WAIT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > time.Hour {
			return s, 0, "", fmt.Errorf("BENCH_QUIET_WAIT=%q: want a duration from 0 to 1h", v)
		}
		s.QuietWaitS = d.Seconds()
	}
	if v := getenv("BENCH_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 500*time.Millisecond || d > 10*time.Minute {
			return s, 0, "", fmt.Errorf("BENCH_DURATION=%q: want a duration from 500ms to 10m", v)
		}
		dur = d
	}
	if s.GenCPU == s.WorkerCPU {
		return s, 0, "", fmt.Errorf("BENCH_GEN_CPU and BENCH_WORKER_CPU are both %d: the generator and the consumer need a CPU each", s.GenCPU)
	}
	s.Tune = getenv("BENCH_TUNE") != "" && getenv("BENCH_TUNE") != "0"
	s.Only = getenv("BENCH_ONLY")
	if s.Only != "" {
		if _, err := regexp.Compile(s.Only); err != nil {
			return s, 0, "", fmt.Errorf("BENCH_ONLY: %w", err)
		}
	}
	s.DurationS = dur.Seconds()
	return s, dur, getenv("BENCH_OUT"), nil
}

func run(ctx context.Context) error {
	began := time.Now()
	if os.Geteuid() != 0 {
		return errors.New("needs root: network namespaces, XDP and AF_XDP")
	}
	set, dur, outDir, err := settingsFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	if n := runtime.NumCPU(); set.GenCPU >= n || set.WorkerCPU >= n {
		return fmt.Errorf("CPUs %d and %d: this machine has %d", set.GenCPU, set.WorkerCPU, n)
	}
	for _, tool := range []string{"ip", "ethtool", "nft", "conntrack", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is missing (make bench installs nftables and conntrack): %w", tool, err)
		}
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if outDir == "" {
		outDir = filepath.Join(root, "bench", "results")
	}
	cases, specs, latest := Matrix(set.Quick), ratioSpecs(), "latest"
	if set.Tune {
		cases, specs, latest = TuneMatrix(), tuneRatioSpecs(), "tuning"
	}
	if set.Only != "" {
		re := regexp.MustCompile(set.Only)
		var keep []Case
		for _, c := range cases {
			if re.MatchString(c.ID()) {
				keep = append(keep, c)
			}
		}
		cases = keep
	}

	dir, err := os.MkdirTemp("", "xvs-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logf, err := os.Create(filepath.Join(os.TempDir(), "xvs-bench.log"))
	if err != nil {
		return err
	}
	defer logf.Close()

	fmt.Fprintf(os.Stderr, "bench: building xvsd, xvs-pktgen, xvs-echo\n")
	bin, err := build(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: %d cases x %d run(s) of %v, latency; commands logged to %s\n", len(cases), set.Runs, dur, logf.Name())
	t, err := topo.NewBench(logf)
	if err != nil {
		return err
	}
	// Namespaces and processes go whatever happens next; a signal cancels
	// ctx, which ends the current step early and brings us here.
	defer func() {
		if cerr := t.Close(); cerr != nil {
			fmt.Fprintln(os.Stderr, "bench: teardown:", cerr)
		}
	}()

	r := &runner{ctx: ctx, set: set, duration: dur, t: t, logf: logf, bin: bin, dir: dir, progress: os.Stderr}
	defer func() {
		if r.multi != nil {
			if cerr := r.multi.Close(); cerr != nil {
				fmt.Fprintln(os.Stderr, "bench: teardown:", cerr)
			}
		}
	}()
	rep := &Report{Started: began.UTC(), Machine: machineInfo(root), Settings: set}
	if busy, err := cpuBusy(time.Second); err == nil {
		rep.Machine.BusyBeforePct = busy
		if busy > 10 {
			fmt.Fprintf(os.Stderr, "bench: WARNING: the CPUs were %.0f%% busy before the run started; other work skews the figures\n", busy)
		}
	}
	for i, c := range cases {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(os.Stderr, "[%2d/%d] %s\n", i+1, len(cases), c.ID())
		rep.Cases = append(rep.Cases, r.runCase(c))
	}
	if ctx.Err() == nil && !set.Tune && (set.Only == "" || regexp.MustCompile(set.Only).MatchString("latency")) {
		fmt.Fprintf(os.Stderr, "latency\n")
		rep.Latency = r.latencyCases()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	rep.Ratios = ratios(rep.Cases, specs)
	rep.ElapsedS = time.Since(began).Seconds()
	rep.Machine.LoadEnd = loadAvg()
	if set.Only != "" {
		latest = ""
	}
	if err := writeResults(rep, outDir, latest); err != nil {
		return err
	}
	fmt.Println()
	if err := rep.WriteMarkdown(os.Stdout); err != nil {
		return err
	}
	fmt.Println()
	rep.WriteRatios(os.Stdout)
	fmt.Printf("\nbench: %s in %.0f s\n", outDir, rep.ElapsedS)
	return nil
}

// writeResults writes <timestamp>.json, .md and .png to dir, and copies the
// table and the plot to <latest>.md and <latest>.png unless latest is "".
func writeResults(rep *Report, dir, latest string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(dir, rep.Started.Format("20060102T150405Z"))
	if rep.Settings.Tune {
		base += "-tune"
	}
	js, err := marshalReport(rep)
	if err != nil {
		return err
	}
	var md strings.Builder
	if err := rep.WriteMarkdown(&md); err != nil {
		return err
	}
	files := map[string]string{base + ".json": string(js), base + ".md": md.String()}
	var png strings.Builder
	switch err := rep.WritePNG(&png); {
	case err == nil:
		files[base+".png"] = png.String()
	case !errors.Is(err, errNoCases):
		return fmt.Errorf("plot: %w", err)
	}
	if latest != "" {
		files[filepath.Join(dir, latest+".md")] = md.String()
		if png.Len() > 0 {
			files[filepath.Join(dir, latest+".png")] = png.String()
		}
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// machineInfo describes this machine; what cannot be read stays empty.
func machineInfo(root string) Machine {
	m := Machine{NProc: runtime.NumCPU(), GoVersion: runtime.Version()}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.Kernel = utsString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU = cpuModel(string(b))
	}
	if out, err := commandOutput(root, "git", "describe", "--always", "--dirty"); err == nil {
		m.Commit = strings.TrimSpace(out)
	}
	m.LoadStart = loadAvg()
	return m
}

// cpuBusy samples /proc/stat over d and returns the share of CPU time
// (all CPUs) spent on anything but idle and iowait, in percent.
func cpuBusy(d time.Duration) (float64, error) {
	read := func() (busy, total uint64, err error) {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0, err
		}
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		if len(f) < 6 || f[0] != "cpu" {
			return 0, 0, fmt.Errorf("/proc/stat: unexpected %q", line)
		}
		// user nice system idle iowait irq softirq steal; guest time is
		// already in user and nice.
		for i, x := range f[1:min(len(f), 9)] {
			n, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("/proc/stat: %w", err)
			}
			total += n
			if i != 3 && i != 4 { // idle, iowait
				busy += n
			}
		}
		return busy, total, nil
	}
	b0, t0, err := read()
	if err != nil {
		return 0, err
	}
	time.Sleep(d)
	b1, t1, err := read()
	if err != nil {
		return 0, err
	}
	if t1 <= t0 {
		return 0, nil
	}
	return 100 * float64(b1-b0) / float64(t1-t0), nil
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func utsString(b []int8) string {
	s := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel(cpuinfo string) string {
	for _, line := range strings.Split(cpuinfo, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func command(dir, name string, args ...string) error {
	_, err := commandOutput(dir, name, args...)
	return err
}

func commandOutput(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
