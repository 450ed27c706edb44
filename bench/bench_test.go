package main

import (
	"bytes"
	"image/png"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/internal/topo"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"one", []float64{2.5}, Summary{N: 1, Min: 2.5, Median: 2.5, Max: 2.5}},
		{"odd unsorted", []float64{3, 1, 2}, Summary{N: 3, Min: 1, Median: 2, Max: 3}},
		{"even: mean of the middle two", []float64{4, 1, 3, 2}, Summary{N: 4, Min: 1, Median: 2.5, Max: 4}},
		{"NaN left out", []float64{math.NaN(), 5, 7, math.NaN()}, Summary{N: 2, Min: 5, Median: 6, Max: 7}},
		{"all NaN", []float64{math.NaN()}, Summary{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			if got := summarize(in); got != tc.want {
				t.Errorf("summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
			}
			for i := range in {
				if !(in[i] == tc.in[i] || math.IsNaN(in[i]) && math.IsNaN(tc.in[i])) {
					t.Fatalf("summarize reordered its input: %v", in)
				}
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	s := make([]float64, 100)
	for i := range s {
		s[i] = float64(i + 1) // 1..100
	}
	for _, tc := range []struct {
		p    float64
		want float64
	}{{50, 50}, {99, 99}, {100, 100}, {1, 1}, {0.1, 1}, {99.5, 100}} {
		if got := percentile(s, tc.p); got != tc.want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile([]float64{7}, 99); got != 7 {
		t.Errorf("percentile of one sample = %v, want 7", got)
	}
	if got := percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("percentile of nothing = %v, want NaN", got)
	}
}

func TestFillLatency(t *testing.T) {
	var run LatencyRun
	fillLatency(&run, []float64{30, 10, 20, 40})
	want := LatencyRun{P50: 20, P90: 40, P99: 40, Min: 10, Max: 40, Mean: 25}
	if !reflect.DeepEqual(run, want) {
		t.Errorf("fillLatency = %+v, want %+v", run, want)
	}
	empty := LatencyRun{Lost: 3}
	fillLatency(&empty, nil)
	if !reflect.DeepEqual(empty, LatencyRun{Lost: 3}) {
		t.Errorf("fillLatency without samples = %+v", empty)
	}
}

func caseResult(c Case, mpps ...float64) CaseResult {
	r := CaseResult{Case: c, ID: c.ID(), Group: c.Target.Group(), Title: c.Target.Title()}
	for _, x := range mpps {
		r.Runs = append(r.Runs, Run{DeliveredMpps: x, OfferedMpps: 2 * x})
	}
	summarizeCase(&r)
	return r
}

func TestSummarizeCaseSkipsFailedRuns(t *testing.T) {
	r := caseResult(Case{XVSNAT, UDP, Small, ManyFlows, ""}, 1, 3)
	r.Runs = append(r.Runs, Run{DeliveredMpps: 100, Error: "sink: no JSON"})
	summarizeCase(&r)
	if want := (Summary{N: 2, Min: 1, Median: 2, Max: 3}); r.Delivered != want {
		t.Errorf("delivered = %+v, want %+v", r.Delivered, want)
	}
	if want := (Summary{N: 2, Min: 2, Median: 4, Max: 6}); r.Offered != want {
		t.Errorf("offered = %+v, want %+v", r.Offered, want)
	}
}

func TestRatios(t *testing.T) {
	nat := Case{XVSNAT, UDP, Small, ManyFlows, ""}
	dr := Case{XVSDR, UDP, Small, ManyFlows, ""}
	nft := Case{NFT, UDP, Small, ManyFlows, ""}
	failed := Case{XVSNAT, SYN, Small, SYNFlows, ""}
	cases := []CaseResult{
		caseResult(nat, 0.5, 0.75, 1), // median 0.75
		caseResult(dr, 1.5),
		caseResult(nft, 0.25),
		{Case: failed, ID: failed.ID()}, // no successful run: median 0
	}
	specs := []RatioSpec{
		{Name: "nat/dr", Num: nat.ID(), Den: dr.ID(), Why: "w"},
		{Name: "nat/nft", Num: nat.ID(), Den: nft.ID()},
		{Name: "missing", Num: nat.ID(), Den: "no/such/case"},
		{Name: "zero numerator", Num: failed.ID(), Den: nat.ID()},
		{Name: "zero denominator", Num: nat.ID(), Den: failed.ID()},
	}
	got := ratios(cases, specs)
	want := []Ratio{
		{Name: "nat/dr", Num: nat.ID(), Den: dr.ID(), Value: 0.5, Why: "w"},
		{Name: "nat/nft", Num: nat.ID(), Den: nft.ID(), Value: 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ratios = %+v, want %+v", got, want)
	}
}

// TestRatioSpecsMatchMatrix checks that every ratio the report promises can
// be computed from the full matrix, and the headline ones from the quick one.
func TestRatioSpecsMatchMatrix(t *testing.T) {
	ids := func(quick bool) map[string]bool {
		m := map[string]bool{}
		for _, c := range Matrix(quick) {
			if m[c.ID()] {
				t.Errorf("duplicate case %s (quick=%v)", c.ID(), quick)
			}
			m[c.ID()] = true
		}
		return m
	}
	full, quick := ids(false), ids(true)
	for id := range quick {
		if !full[id] {
			t.Errorf("quick case %s is not in the full matrix", id)
		}
	}
	inQuick := 0
	for _, s := range ratioSpecs() {
		if !full[s.Num] || !full[s.Den] {
			t.Errorf("ratio %q refers to a case not in the full matrix: %s ÷ %s", s.Name, s.Num, s.Den)
		}
		if quick[s.Num] && quick[s.Den] {
			inQuick++
		}
	}
	if inQuick < 6 {
		t.Errorf("only %d ratios computable in the quick matrix, want every kind (>= 6)", inQuick)
	}
	// Every kind of row is in the quick matrix.
	kinds := map[string]bool{}
	for _, c := range Matrix(true) {
		kinds[string(c.Target)] = true
		kinds[c.Traffic] = true
		kinds[flowsShort(c.Flows)] = true
		kinds[map[int]string{Small: "small", Large: "large"}[c.Size]] = true
	}
	for _, k := range []string{"xdp-drop", "xdp-tx", "afxdp-rx", "afxdp-reflect", "nft-dnat", "xvs-dr", "xvs-nat", "xvs-tun", "xvs-fullnat", "udp", "syn", "1", "10k", "small", "large"} {
		if !kinds[k] {
			t.Errorf("quick matrix has no %s row", k)
		}
	}
}

func sampleReport() *Report {
	rep := &Report{
		Started:  time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC),
		ElapsedS: 123.5,
		Machine:  Machine{Kernel: "6.18.44", CPU: "AMD EPYC", NProc: 2, GoVersion: "go1.26", Commit: "ed76ce4", BusyBeforePct: 2.6},
		Settings: Settings{Runs: 3, DurationS: 5, GenCPU: 0, WorkerCPU: 1, LatencyN: 2000},
		Cases: []CaseResult{
			caseResult(Case{XSKReflect, UDP, Small, OneFlow, ""}, 0.70, 0.72, 0.75),
			caseResult(Case{NFT, UDP, Small, ManyFlows, ""}, 0.80, 0.82, 0.83),
			caseResult(Case{XVSNAT, UDP, Small, ManyFlows, ""}, 0.61, 0.65, 0.66),
			caseResult(Case{XVSDR, SYN, Small, SYNFlows, ""}),
		},
		Latency: []LatencyResult{{
			ID: "latency/xvs-nat", Title: "xvs NAT",
			Runs: []LatencyRun{{Requests: 2000, OK: 1999, Lost: 1, P50: 75, P90: 100, P99: 160, Min: 40, Max: 900, Mean: 80, Servers: map[string]int{"rs1": 1999}}},
		}},
	}
	rep.Cases[0].Runs[0].Send = &SendResult{Cmd: "send", Engine: "live", Sent: 35_000_000, DurationS: 5, OfferedPPS: 7e6, Returned: 3_500_000, ReturnedPPS: 7e5}
	rep.Cases[0].Runs[0].Sink = &SinkResult{Cmd: "reflect", Mode: "xsk", Received: 3_600_000, Reflected: 3_550_000, DurationS: 5, PPS: 720000, PerSecond: []float64{720000, 719000}}
	rep.Cases[2].Runs[0].Director = &DirectorStats{RxFrames: 10, TxFrames: 9, Connections: 10000, Drops: map[string]uint64{"tx_full": 1}}
	rep.Cases[3].Runs = []Run{{Error: "sink: no JSON summary\nsome output"}}
	summarizeLatency(&rep.Latency[0])
	rep.Ratios = ratios(rep.Cases, ratioSpecs())
	return rep
}

func TestReportJSONRoundTrip(t *testing.T) {
	rep := sampleReport()
	b, err := marshalReport(rep)
	if err != nil {
		t.Fatal(err)
	}
	back, err := unmarshalReport(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep, back) {
		t.Errorf("round trip changed the report:\n got %+v\nwant %+v", back, rep)
	}
	// The raw numbers are there under stable names.
	for _, key := range []string{`"delivered_mpps"`, `"offered_pps": 7000000`, `"kernel": "6.18.44"`, `"nproc": 2`, `"cpu": "AMD EPYC"`, `"p99_us"`, `"tx_full": 1`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	if _, err := unmarshalReport([]byte(`{"cases": 3}`)); err == nil {
		t.Error("unmarshalReport accepted a malformed report")
	}
}

func TestMarkdown(t *testing.T) {
	rep := sampleReport()
	var b strings.Builder
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"Linux 6.18.44, AMD EPYC, 2 CPUs (generator and softirq on CPU 0, consumer on CPU 1); 3 runs of 5 s per case; xvs ed76ce4; CPUs 3 % busy with other work just before.",
		"| ceiling | AF_XDP rx+tx reflect | 64 B | – | UDP (established) | 0.700 / **0.720** / 0.750 | 1.44 | 50 % |  |",
		"| kernel | nftables DNAT | 64 B | 10 000 | UDP (established) | 0.800 / **0.820** / 0.830 | 1.64 | 50 % |  |",
		"| xvs | xvs NAT | 64 B | 10 000 | UDP (established) | 0.610 / **0.650** / 0.660 | 1.30 | 50 % | xvsd drops/run: tx_full 1 |",
		"| xvs | xvs DR | 64 B | 16 M | TCP SYN (new) | failed | – | – | 1/1 runs failed: sink: no JSON summary |",
		"| xvs NAT | 2000 | **75** | **160** | 1 |",
		"| xvs NAT ÷ AF_XDP reflect ceiling (64 B, 10k flows) | 0.90 |",
		"| xvs NAT ÷ nftables DNAT (64 B, 10k flows) | 0.79 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// Every table row has as many cells as its header.
	for _, block := range strings.Split(md, "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		if !strings.HasPrefix(lines[0], "|") {
			continue
		}
		cols := strings.Count(lines[0], "|")
		for _, l := range lines[1:] {
			if strings.Count(l, "|") != cols {
				t.Errorf("row %q has %d bars, header %d", l, strings.Count(l, "|"), cols)
			}
		}
	}
}

func TestPNG(t *testing.T) {
	rep := sampleReport()
	var b bytes.Buffer
	if err := rep.WritePNG(&b); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if r := img.Bounds(); r.Dx() < 500 || r.Dy() < 100 {
		t.Errorf("plot is %v, too small", r)
	}
	if err := (&Report{}).WritePNG(&b); err != errNoCases {
		t.Errorf("empty report: err = %v, want errNoCases", err)
	}
}

func TestNotes(t *testing.T) {
	syn := caseResult(Case{XVSNAT, SYN, Small, SYNFlows, ""}, 0.03, 0.02)
	syn.Runs[0].Send = &SendResult{DurationS: 2}
	syn.Runs[1].Send = &SendResult{DurationS: 4}
	syn.Runs[0].Director = &DirectorStats{RxFrames: 4_000_000, Drops: map[string]uint64{"table_full": 4_000_000, "no_next_hop": 3, "tx_full": 20_000}}
	syn.Runs[1].Director = &DirectorStats{RxFrames: 6_000_000, Drops: map[string]uint64{"table_full": 2_000_000, "tx_full": 10_000}}
	syn.Runs = append(syn.Runs, Run{Error: "xvsd: exited | badly", BusyPct: 99})
	syn.Runs[1].BusyPct = 40
	summarizeCase(&syn)
	want := "1/3 runs started with the CPUs up to 40 % busy with other work; " +
		"1/3 runs failed: xvsd: exited / badly; xvsd received 1.75 Mpps; " +
		"xvsd drops/run: table_full 3.00 M, tx_full 15.0 k"
	if got := notes(syn); got != want {
		t.Errorf("notes =\n %q\nwant\n %q", got, want)
	}
	// Frames in, frames out: nothing to add.
	est := caseResult(Case{XVSDR, UDP, Small, ManyFlows, ""}, 0.6)
	est.Runs[0].Send = &SendResult{DurationS: 1}
	est.Runs[0].Director = &DirectorStats{RxFrames: 600_000, TxFrames: 600_000}
	if got := notes(est); got != "" {
		t.Errorf("notes = %q, want none", got)
	}
	// Kernel and ceiling rows carry no xvsd counters.
	k := caseResult(Case{NFT, UDP, Small, ManyFlows, ""}, 0.5)
	k.Runs[0].Director = &DirectorStats{Connections: 10000}
	if got := notes(k); got != "" {
		t.Errorf("kernel notes = %q, want none", got)
	}
}

func TestParseDirectorStats(t *testing.T) {
	out := `xvsd: ready
IP Virtual Server version 1.2.1 (size=65536) [xvs]
workers 1, connections 10000 (capacity 1048576), rx 3500000 frames, tx 3400000 frames
  interface xvs1g              xdp driver   queues 1  copy
  drops: no_next_hop=3 tx_full=99
  fast path xdp: 20000 of 262144 flows offloaded, 7000000 frames forwarded by XDP; to userspace: 0 partial checksum
  syn_proxy: 1200000 syn-acks sent (1100000 by XDP), 7 connections opened
`
	got, err := parseDirectorStats(out)
	if err != nil {
		t.Fatal(err)
	}
	want := &DirectorStats{Workers: 1, RxFrames: 3500000, TxFrames: 3400000, Connections: 10000, Drops: map[string]uint64{"no_next_hop": 3, "tx_full": 99}, FastFrames: 7000000,
		SynProxySynAcks: 1200000, SynProxyXDP: 1100000, SynProxyOpened: 7}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	none, err := parseDirectorStats("workers 1, connections 0 (capacity 4096), rx 0 frames, tx 0 frames\n  drops: none\n")
	if err != nil || none.Drops != nil {
		t.Errorf("drops: none = %+v, %v", none, err)
	}
	if _, err := parseDirectorStats("xvsd: ready\n"); err == nil {
		t.Error("no status line accepted")
	}
}

func TestLastJSON(t *testing.T) {
	var s SinkResult
	out := "progress 1\n{\"cmd\":\"sink\",\"received\":5}\nnot json {\n"
	if err := lastJSON(out, &s); err != nil || s.Received != 5 || s.Cmd != "sink" {
		t.Errorf("lastJSON = %+v, %v", s, err)
	}
	if err := lastJSON("no summary\n", &s); err == nil {
		t.Error("lastJSON found JSON in none")
	}
}

func TestSettingsFromEnv(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	s, d, _, err := settingsFromEnv(env())
	if err != nil || s.Runs != 3 || d != 5*time.Second || s.GenCPU != 0 || s.WorkerCPU != 1 || s.Quick || s.Tune {
		t.Errorf("defaults: %+v %v %v", s, d, err)
	}
	s, d, _, err = settingsFromEnv(env("BENCH_QUICK", "1"))
	if err != nil || s.Runs != 1 || d != 2*time.Second || !s.Quick {
		t.Errorf("quick: %+v %v %v", s, d, err)
	}
	s, _, out, err := settingsFromEnv(env("BENCH_QUICK", "1", "BENCH_RUNS", "2", "BENCH_GEN_CPU", "1", "BENCH_WORKER_CPU", "0", "BENCH_OUT", "/x", "BENCH_TUNE", "1"))
	if err != nil || s.Runs != 2 || s.GenCPU != 1 || s.WorkerCPU != 0 || out != "/x" || !s.Tune {
		t.Errorf("overrides: %+v %v %v", s, out, err)
	}
	for _, bad := range [][]string{
		{"BENCH_RUNS", "0"}, {"BENCH_RUNS", "x"}, {"BENCH_GEN_CPU", "1"}, {"BENCH_DURATION", "1ms"}, {"BENCH_ONLY", "("},
	} {
		if _, _, _, err := settingsFromEnv(env(bad...)); err == nil {
			t.Errorf("%s=%s accepted", bad[0], bad[1])
		}
	}
}

func TestXVSConfigAndRules(t *testing.T) {
	// Only the names and addresses matter here; no namespaces are made.
	b := benchTopoForText()
	cfg := xvsConfig(b, "nat", false, 1, 0, "")
	for _, want := range []string{`interfaces = ["xvsXdg", "xvsXdr"]`, "cpus = [1]", `address = "198.19.0.12"`, `method = "nat"`, "port = 5353", `protocol = "tcp"`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "local_addresses") {
		t.Errorf("NAT config has local addresses:\n%s", cfg)
	}
	if strings.Contains(cfg, "connections") {
		t.Errorf("config sets the table size though asked for the default:\n%s", cfg)
	}
	if strings.Contains(cfg, "fast_path") {
		t.Errorf("config sets fast_path though asked for the default:\n%s", cfg)
	}
	if fast := xvsConfig(b, "nat", true, 1, 0, ""); !strings.Contains(fast, "fast_path = \"xdp\"\n") {
		t.Errorf("fast path config:\n%s", fast)
	}
	fnat := xvsConfig(b, "fullnat", false, 1, 5_000_000, "")
	if !strings.Contains(fnat, `local_addresses = ["198.19.0.2", "198.19.0.3"]`) || !strings.Contains(fnat, `method = "fullnat"`) ||
		!strings.Contains(fnat, "connections = 5000000\n") {
		t.Errorf("FullNAT config:\n%s", fnat)
	}
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{time.Second, 1 << 20}, {5 * time.Second, 5_000_000}, {10 * time.Minute, 1 << 27}} {
		if got := synTable(tc.d); got != tc.want {
			t.Errorf("synTable(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
	for _, tg := range xvsModes {
		if tg.Method() == "" || tg.Group() != "xvs" {
			t.Errorf("%s: method %q group %q", tg, tg.Method(), tg.Group())
		}
	}
	if NFT.Method() != "" {
		t.Errorf("nft has a method")
	}
	rules := nftRules(b)
	if !strings.Contains(rules, "ip daddr 198.18.0.100 udp dport 5353 dnat to numgen inc mod 2 map { 0 : 198.19.0.11, 1 : 198.19.0.12 }") {
		t.Errorf("rules:\n%s", rules)
	}
}

// TestTuneConfigs: every tuning makes a configuration xvsd accepts, with
// the knob set once (a replaced default, not a second key).
func TestTuneConfigs(t *testing.T) {
	b := benchTopoForText()
	for _, tune := range Tunings {
		tune = strings.ReplaceAll(tune, CPUGenerator, "0")
		cfg := xvsConfig(b, "dr", false, 1, 0, tune)
		if !strings.Contains(cfg, "\n"+tune+"\n") {
			t.Errorf("%s: not in the config:\n%s", tune, cfg)
		}
		key, _, _ := strings.Cut(tune, " ")
		if n := strings.Count(cfg, "\n"+key+" "); n != 1 {
			t.Errorf("%s: %d lines set %s:\n%s", tune, n, key, cfg)
		}
		c, err := config.Parse("bench.toml", []byte(cfg))
		if err != nil {
			t.Errorf("%s: xvsd would refuse it: %v", tune, err)
			continue
		}
		d := c.Director
		if d.BatchSize+d.RingSize+d.IdleSpins == 0 && d.BusyPoll == 0 && !d.NoNeedWakeup && len(d.CPUs) == 1 && d.CPUs[0] == 1 {
			t.Errorf("%s: the parsed configuration has xvsd's defaults: %+v", tune, d)
		}
	}
}

func TestTuneMatrix(t *testing.T) {
	ids := map[string]bool{}
	for _, c := range TuneMatrix() {
		if ids[c.ID()] {
			t.Errorf("duplicate case %s", c.ID())
		}
		ids[c.ID()] = true
	}
	if len(ids) != 2*(len(Tunings)+1) {
		t.Errorf("%d cases for %d tunings", len(ids), len(Tunings))
	}
	specs := tuneRatioSpecs()
	if len(specs) != 2*len(Tunings) {
		t.Errorf("%d ratios for %d tunings", len(specs), len(Tunings))
	}
	for _, s := range specs {
		if !ids[s.Num] || !ids[s.Den] || s.Num == s.Den {
			t.Errorf("ratio %q: %s ÷ %s", s.Name, s.Num, s.Den)
		}
	}
	c := Case{XVSDR, UDP, Small, ManyFlows, "batch_size = 16"}
	if c.ID() != "xvs-dr/udp/64/10k/batch_size=16" || c.Title() != "xvs DR, batch_size = 16" {
		t.Errorf("ID %q, Title %q", c.ID(), c.Title())
	}
}

func benchTopoForText() *topo.Bench {
	return &topo.Bench{DirGenIf: "xvsXdg", DirRealIf: "xvsXdr", RealIPs: topo.NATReals,
		LocalIPs: []netip.Addr{netip.MustParseAddr("198.19.0.2"), netip.MustParseAddr("198.19.0.3")}}
}

// TestBenchTopology builds the benchmark's namespaces and checks the
// wiring the cases rely on, then that Close leaves nothing behind.
func TestBenchTopology(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	b, err := topo.NewBench(nil)
	if err != nil {
		t.Fatal(err)
	}
	nss := []string{b.Gen, b.Director, b.Real}
	defer func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
		out, _ := exec.Command("ip", "netns", "list").Output()
		for _, ns := range nss {
			if strings.Contains(string(out), ns) {
				t.Errorf("namespace %s left behind", ns)
			}
		}
	}()
	for _, mac := range []net.HardwareAddr{b.GenMAC, b.DirGenMAC, b.DirRealMAC, b.RealMAC} {
		if len(mac) != 6 {
			t.Fatalf("interface MAC %v", mac)
		}
	}
	if err := b.In(b.Gen, "ping", "-c1", "-W2", topo.DirectorIP.String()); err != nil {
		t.Errorf("generator cannot reach the director: %v", err)
	}
	// The real servers' link carries a tunnel header on top of 1500 bytes.
	for _, x := range []struct{ ns, ifname string }{{b.Director, b.DirRealIf}, {b.Real, b.RealIf}} {
		if out, err := b.Output(x.ns, "cat", "/sys/class/net/"+x.ifname+"/mtu"); err != nil || strings.TrimSpace(out) != "1600" {
			t.Errorf("%s mtu = %q, %v; want 1600", x.ifname, out, err)
		}
	}
	if len(b.LocalIPs) != 32 {
		t.Errorf("%d local addresses, want 32", len(b.LocalIPs))
	}
	for _, lip := range []netip.Addr{b.LocalIPs[0], b.LocalIPs[len(b.LocalIPs)-1]} {
		if err := b.In(b.Real, "ping", "-c1", "-W2", lip.String()); err != nil {
			t.Errorf("real servers cannot reach local address %s: %v", lip, err)
		}
	}
	for _, a := range b.RealIPs {
		if err := b.In(b.Real, "ping", "-c1", "-W2", "-I", a.String(), topo.NATGateway.String()); err != nil {
			t.Errorf("real server %s cannot reach its gateway: %v", a, err)
		}
	}
	// The director knows the real servers without asking: the sink would
	// drop ARP replies.
	neigh, err := b.Output(b.Director, "ip", "neigh", "show", "dev", b.DirRealIf)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range b.RealIPs {
		if !strings.Contains(neigh, a.String()+" lladdr "+b.RealMAC.String()+" PERMANENT") {
			t.Errorf("no permanent neighbour for %s:\n%s", a, neigh)
		}
	}
	// Forwarding through the kernel works once switched on (the nftables
	// baseline depends on it) and the NAPI switch takes.
	if err := b.Forwarding(true); err != nil {
		t.Fatal(err)
	}
	if err := b.In(b.Gen, "ping", "-c1", "-W2", b.RealIPs[1].String()); err != nil {
		t.Errorf("generator cannot reach a real server through the kernel: %v", err)
	}
	if err := b.ThreadedNAPI(b.Director, b.DirGenIf, true, 1%runtime.NumCPU(), -5); err != nil {
		t.Errorf("threaded NAPI: %v", err)
	}
	if out, err := b.Output(b.Director, "cat", "/sys/class/net/"+b.DirGenIf+"/threaded"); err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("threaded = %q, %v", out, err)
	}
	// Its kthread ("napi/IFNAME-ID", cut to 15 bytes) runs at the priority asked for.
	out, err := exec.Command("ps", "-eo", "ni=,comm=").Output()
	if err != nil {
		t.Fatal(err)
	}
	comm := ("napi/" + b.DirGenIf)[:15]
	found := false
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 && strings.HasPrefix(f[1], comm) {
			found = true
			if f[0] != "-5" {
				t.Errorf("NAPI kthread %s has nice %s, want -5", f[1], f[0])
			}
		}
	}
	if !found {
		t.Errorf("no NAPI kthread %s*", comm)
	}
}

func TestCPUBusy(t *testing.T) {
	busy, err := cpuBusy(50 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if busy < 0 || busy > 100 {
		t.Errorf("cpuBusy = %v, want a percentage", busy)
	}
}

// TestSynProxyRows: the SYN-proxy rows run xvs with syn_proxy on its TCP
// service only (or the kernel's synproxy), count what comes back, and say
// in their notes what reached the real servers.
func TestSynProxyRows(t *testing.T) {
	for _, tc := range []struct {
		t             Target
		method, group string
		title         string
	}{
		{XVSNATSynProxy, "nat", "xvs", "xvs NAT, SYN proxy"},
		{XVSFNATSynProxy, "fullnat", "xvs", "xvs FullNAT, SYN proxy"},
		{NFTSynProxy, "", "kernel", "nftables synproxy"},
		{XVSNATSynProxyFast, "nat", "xvs-fast", "xvs NAT, SYN proxy in XDP"},
		{XVSFNATSynProxyFast, "fullnat", "xvs-fast", "xvs FullNAT, SYN proxy in XDP"},
	} {
		fast := strings.HasSuffix(tc.title, "in XDP")
		if !tc.t.SynProxy() || tc.t.Method() != tc.method || tc.t.Group() != tc.group || tc.t.Title() != tc.title || tc.t.FastPath() != fast || tc.t.Queues() != 1 {
			t.Errorf("%s: proxy %v method %q group %q title %q", tc.t, tc.t.SynProxy(), tc.t.Method(), tc.t.Group(), tc.t.Title())
		}
	}
	for _, tg := range append(append([]Target{NFT, XDPTX}, xvsModes...), fastModes...) {
		if tg.SynProxy() {
			t.Errorf("%s counts as a SYN proxy", tg)
		}
	}
	b := benchTopoForText()
	cfg := withSynProxy(xvsConfig(b, "nat", false, 1, 0, ""))
	if strings.Count(cfg, "syn_proxy = true\n") != 1 || !strings.Contains(cfg, "protocol = \"tcp\"\nsyn_proxy = true\n") {
		t.Errorf("syn_proxy on the TCP service only:\n%s", cfg)
	}
	if rules := nftSynProxyRules(); !strings.Contains(rules, "tcp dport 80 tcp flags syn notrack") ||
		!strings.Contains(rules, "ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm") {
		t.Errorf("synproxy rules:\n%s", rules)
	}
	c := caseResult(Case{XVSNATSynProxy, SYN, Small, SYNFlows, ""}, 0.6)
	c.Runs[0].Send = &SendResult{DurationS: 2, Returned: 1_200_000}
	c.Runs[0].Sink = &SinkResult{Received: 0}
	c.Runs[0].Director = &DirectorStats{RxFrames: 1_200_000, TxFrames: 1_200_000, SynProxySynAcks: 1_200_000, SynProxyXDP: 1_000_000}
	want := "real servers received 0 frames/run; xvsd counted 1.20 M SYN-ACKs/run (1.00 M by XDP); 0 connections in xvsd's table at the end"
	if got := notes(c); got != want {
		t.Errorf("notes =\n %q\nwant\n %q", got, want)
	}
	var md strings.Builder
	rep := &Report{Cases: []CaseResult{c}}
	if err := rep.WriteMarkdown(&md); err != nil || !strings.Contains(md.String(), "| TCP SYN (new), SYN-ACKs back |") {
		t.Errorf("markdown (%v):\n%s", err, md.String())
	}
}
