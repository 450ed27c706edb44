package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// Report is everything one `make bench` measured; it is written as JSON.
type Report struct {
	Started  time.Time `json:"started"`
	ElapsedS float64   `json:"elapsed_s"`
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`

	Cases   []CaseResult    `json:"cases"`
	Latency []LatencyResult `json:"latency"`
	Ratios  []Ratio         `json:"ratios"`
}

// Machine describes where the figures were taken.
type Machine struct {
	Kernel    string `json:"kernel"` // uname -r
	CPU       string `json:"cpu"`    // model name from /proc/cpuinfo
	NProc     int    `json:"nproc"`
	GoVersion string `json:"go_version"`
	Commit    string `json:"commit,omitempty"` // git describe of the tree measured
	// Load averages (/proc/loadavg) before and after: anything else busy on
	// the machine shows here, and in the figures.
	LoadStart string `json:"load_start,omitempty"`
	LoadEnd   string `json:"load_end,omitempty"`
	// BusyBeforePct is how busy the CPUs were (all of them, %) in the
	// second before the benchmark started: other work competes with it.
	BusyBeforePct float64 `json:"busy_before_pct"`
}

// Settings are the knobs of the run (from BENCH_* variables).
type Settings struct {
	Runs      int     `json:"runs"`
	Quick     bool    `json:"quick"`
	DurationS float64 `json:"duration_s"` // generator time per run
	GenCPU    int     `json:"gen_cpu"`
	WorkerCPU int     `json:"worker_cpu"`
	LatencyN  int     `json:"latency_n"`
	// QuietWaitS is how long a run waits for other work on the machine
	// to stop (CPUs under quietBusy %) before it starts anyway.
	QuietWaitS float64 `json:"quiet_wait_s"`
	// Nice is the scheduling priority of every measured process and of
	// the NAPI kthreads the baselines use (0: left alone).
	Nice int    `json:"nice"`
	Only string `json:"only,omitempty"`
	// Tune measures the data path's knobs (Tunings) instead of the usual
	// matrix.
	Tune bool `json:"tune,omitempty"`
}

// CaseResult is a case with its runs. Rates are in Mpps.
type CaseResult struct {
	Case
	ID    string `json:"id"`
	Group string `json:"group"`
	Title string `json:"title"`
	// Delivered summarises the runs' delivered rates: frames counted at the
	// far end (the real-server side's sink; for the reflect ceilings, the
	// generator's interface).
	Delivered Summary `json:"delivered_mpps"`
	Offered   Summary `json:"offered_mpps"`
	Runs      []Run   `json:"runs"`
	// Setup says where each part ran (NAPI, CPUs).
	Setup string `json:"setup"`
}

// Run is one measurement.
type Run struct {
	DeliveredMpps float64        `json:"delivered_mpps"`
	OfferedMpps   float64        `json:"offered_mpps"`
	Send          *SendResult    `json:"send,omitempty"`
	Sink          *SinkResult    `json:"sink,omitempty"`
	Director      *DirectorStats `json:"director,omitempty"`
	// BusyPct is how busy the CPUs were just before the run, while
	// nothing of the benchmark ran: other work on the machine.
	BusyPct float64 `json:"busy_pct"`
	Error   string  `json:"error,omitempty"`
}

// SendResult is `xvs-pktgen send -json`.
type SendResult struct {
	Cmd         string  `json:"cmd"`
	Engine      string  `json:"engine"`
	Sent        uint64  `json:"sent"`
	DurationS   float64 `json:"duration_s"`
	OfferedPPS  float64 `json:"offered_pps"`
	Returned    uint64  `json:"returned"`
	ReturnedPPS float64 `json:"returned_pps"`
}

// SinkResult is `xvs-pktgen sink|reflect -json`.
type SinkResult struct {
	Cmd       string    `json:"cmd"`
	Mode      string    `json:"mode"`
	Received  uint64    `json:"received"`
	Reflected uint64    `json:"reflected,omitempty"`
	Bytes     uint64    `json:"bytes"`
	DurationS float64   `json:"duration_s"`
	PPS       float64   `json:"pps"`
	BPS       float64   `json:"bps"`
	PerSecond []float64 `json:"per_second,omitempty"`
}

// DirectorStats is what xvsd reported when it stopped.
type DirectorStats struct {
	Workers     int               `json:"workers"`
	RxFrames    uint64            `json:"rx_frames"`
	TxFrames    uint64            `json:"tx_frames"`
	Connections uint64            `json:"connections"`
	Drops       map[string]uint64 `json:"drops,omitempty"`
	// FastFrames counts the frames the XDP fast path forwarded itself.
	FastFrames uint64 `json:"fast_frames,omitempty"`
	// The SYN proxy's counters: SYN-ACKs sent with a cookie, and
	// connections opened on a client's valid ACK.
	SynProxySynAcks uint64 `json:"syn_proxy_syn_acks,omitempty"`
	SynProxyXDP     uint64 `json:"syn_proxy_xdp_syn_acks,omitempty"` // of SynProxySynAcks, sent by the XDP program
	SynProxyOpened  uint64 `json:"syn_proxy_opened,omitempty"`
}

// LatencyResult is a latency case: sequential UDP request/response through
// one path. Times are in microseconds.
type LatencyResult struct {
	ID    string       `json:"id"`
	Title string       `json:"title"`
	P50   Summary      `json:"p50_us"`
	P99   Summary      `json:"p99_us"`
	Runs  []LatencyRun `json:"runs"`
	Setup string       `json:"setup"`
}

// LatencyRun is what the latency client measured in one run.
type LatencyRun struct {
	Requests int            `json:"requests"`
	OK       int            `json:"ok"`
	Lost     int            `json:"lost"`
	P50      float64        `json:"p50_us"`
	P90      float64        `json:"p90_us"`
	P99      float64        `json:"p99_us"`
	Min      float64        `json:"min_us"`
	Max      float64        `json:"max_us"`
	Mean     float64        `json:"mean_us"`
	Servers  map[string]int `json:"servers,omitempty"`
	BusyPct  float64        `json:"busy_pct"` // as Run.BusyPct
	Error    string         `json:"error,omitempty"`
}

// summarizeCase fills a case's summaries from its successful runs.
func summarizeCase(c *CaseResult) {
	var d, o []float64
	for _, r := range c.Runs {
		if r.Error == "" {
			d = append(d, r.DeliveredMpps)
			o = append(o, r.OfferedMpps)
		}
	}
	c.Delivered, c.Offered = summarize(d), summarize(o)
}

func summarizeLatency(l *LatencyResult) {
	var p50, p99 []float64
	for _, r := range l.Runs {
		if r.Error == "" && r.OK > 0 {
			p50 = append(p50, r.P50)
			p99 = append(p99, r.P99)
		}
	}
	l.P50, l.P99 = summarize(p50), summarize(p99)
}

func fmtMpps(s Summary) string {
	if s.N == 0 {
		return "failed"
	}
	if s.N == 1 {
		return fmt.Sprintf("**%.3f**", s.Median)
	}
	return fmt.Sprintf("%.3f / **%.3f** / %.3f", s.Min, s.Median, s.Max)
}

func fmtUs(s Summary) string {
	if s.N == 0 {
		return "failed"
	}
	if s.N == 1 {
		return fmt.Sprintf("**%.0f**", s.Median)
	}
	return fmt.Sprintf("%.0f / **%.0f** / %.0f", s.Min, s.Median, s.Max)
}

func fmtFlows(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%d M", n/1_000_000)
	case n >= 1000:
		return fmt.Sprintf("%d %03d", n/1000, n%1000)
	}
	return fmt.Sprint(n)
}

// caseTraffic is the traffic column of c's row.
func caseTraffic(c CaseResult) string {
	if c.Target.SynProxy() {
		return "TCP SYN (new), SYN-ACKs back"
	}
	return trafficTitle(c.Traffic)
}

func trafficTitle(t string) string {
	switch t {
	case SYN:
		return "TCP SYN (new)"
	case Mixed:
		return "UDP (50 % new)"
	}
	return "UDP (established)"
}

// WriteMarkdown renders the report's tables.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	m, s := r.Machine, r.Settings
	fmt.Fprintf(&b, "Taken %s on Linux %s, %s, %d CPUs (generator and softirq on CPU %d, consumer on CPU %d); ",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), m.Kernel, m.CPU, m.NProc, s.GenCPU, s.WorkerCPU)
	runs := fmt.Sprintf("%d runs of %.0f s per case", s.Runs, s.DurationS)
	if s.Runs == 1 {
		runs = fmt.Sprintf("1 run of %.0f s per case", s.DurationS)
	}
	fmt.Fprintf(&b, "%s", runs)
	if s.Quick {
		b.WriteString(" (BENCH_QUICK)")
	}
	if m.Commit != "" {
		fmt.Fprintf(&b, "; xvs %s", m.Commit)
	}
	fmt.Fprintf(&b, "; CPUs %.0f %% busy with other work just before", m.BusyBeforePct)
	b.WriteString(".\n\n")

	b.WriteString("| | case | frame | flows | traffic | delivered Mpps (min / **median** / max) | offered Mpps | delivered ÷ offered | notes |\n")
	b.WriteString("|---|---|--:|--:|---|--:|--:|--:|---|\n")
	for _, c := range r.Cases {
		flows := fmtFlows(c.Flows)
		if c.Group == "ceiling" {
			flows = "–"
		}
		share := "–"
		if c.Offered.Median > 0 && c.Delivered.N > 0 {
			share = fmt.Sprintf("%.0f %%", 100*c.Delivered.Median/c.Offered.Median)
		}
		offered := "–"
		if c.Offered.N > 0 {
			offered = fmt.Sprintf("%.2f", c.Offered.Median)
		}
		fmt.Fprintf(&b, "| %s | %s | %d B | %s | %s | %s | %s | %s | %s |\n",
			c.Group, c.Title, c.Size, flows, caseTraffic(c), fmtMpps(c.Delivered), offered, share, notes(c))
	}

	if len(r.Latency) > 0 {
		b.WriteString("\nUDP request/response round trip, one request at a time, from the generator's namespace to `xvs-echo` on the real servers:\n\n")
		b.WriteString("| path | requests per run | p50 µs (min / **median** / max) | p99 µs (min / **median** / max) | lost |\n")
		b.WriteString("|---|--:|--:|--:|--:|\n")
		for _, l := range r.Latency {
			req, lost := 0, 0
			for _, run := range l.Runs {
				req = max(req, run.Requests)
				lost += run.Lost
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %d |\n", l.Title, req, fmtUs(l.P50), fmtUs(l.P99), lost)
		}
	}

	if len(r.Ratios) > 0 {
		b.WriteString("\nRatios of medians:\n\n")
		b.WriteString("| ratio | value |\n|---|--:|\n")
		for _, x := range r.Ratios {
			fmt.Fprintf(&b, "| %s | %.2f |\n", x.Name, x.Value)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// notes says what the rates alone do not: failed runs, and where xvsd
// dropped frames (per run, largest first).
func notes(c CaseResult) string {
	var parts []string
	failed, firstErr := 0, ""
	drops := map[string]uint64{}
	withStats := 0
	var rxRates []float64
	for _, r := range c.Runs {
		if r.Error != "" {
			if failed++; firstErr == "" {
				firstErr, _, _ = strings.Cut(r.Error, "\n")
			}
			continue
		}
		if (c.Group == "xvs" || c.Group == "xvs-fast") && r.Director != nil {
			withStats++
			if r.Send != nil {
				rxRates = append(rxRates, rate(r.Director.RxFrames, r.Send.DurationS))
			}
			for k, v := range r.Director.Drops {
				drops[k] += v
			}
		}
	}
	busy, maxBusy := 0, 0.0
	for _, r := range c.Runs {
		if r.Error == "" && r.BusyPct >= quietBusy {
			busy++
			maxBusy = max(maxBusy, r.BusyPct)
		}
	}
	if busy > 0 {
		parts = append(parts, fmt.Sprintf("%d/%d runs started with the CPUs up to %.0f %% busy with other work", busy, len(c.Runs), maxBusy))
	}
	if failed > 0 {
		if len(firstErr) > 80 {
			firstErr = firstErr[:77] + "..."
		}
		parts = append(parts, fmt.Sprintf("%d/%d runs failed: %s", failed, len(c.Runs), strings.ReplaceAll(firstErr, "|", "/")))
	}
	// What xvsd took in, against what it delivered: far more means it
	// dropped frames itself (a full connection table), rather than the
	// kernel dropping them on a full receive ring before xvsd saw them.
	if rx := summarize(rxRates).Median; rx > 1.1*c.Delivered.Median && c.Delivered.N > 0 {
		parts = append(parts, fmt.Sprintf("xvsd received %.2f Mpps", rx))
	}
	if c.Target.SynProxy() {
		parts = append(parts, synProxyNotes(c)...)
	}
	if withStats > 0 {
		reasons := make([]string, 0, len(drops))
		for k, v := range drops {
			if v > 0 {
				reasons = append(reasons, k)
			}
		}
		sort.Slice(reasons, func(i, j int) bool {
			if drops[reasons[i]] != drops[reasons[j]] {
				return drops[reasons[i]] > drops[reasons[j]]
			}
			return reasons[i] < reasons[j]
		})
		var ds []string
		for _, k := range reasons[:min(len(reasons), 2)] {
			ds = append(ds, fmt.Sprintf("%s %s", k, fmtCount(drops[k]/uint64(withStats))))
		}
		if len(ds) > 0 {
			parts = append(parts, "xvsd drops/run: "+strings.Join(ds, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// synProxyNotes says, per successful run of a SYN-proxy row, what reached
// the real servers (nothing, when the proxy works), what the director
// counted itself, and what its table held at the end.
func synProxyNotes(c CaseResult) []string {
	var runs, atReals, synAcks, byXDP, conns uint64
	xvs := c.Target.IsXVS()
	for _, r := range c.Runs {
		if r.Error != "" || r.Sink == nil {
			continue
		}
		runs++
		atReals += r.Sink.Received
		if r.Director != nil {
			synAcks += r.Director.SynProxySynAcks
			byXDP += r.Director.SynProxyXDP
			conns += r.Director.Connections
		}
	}
	if runs == 0 {
		return nil
	}
	parts := []string{fmt.Sprintf("real servers received %s frames/run", fmtCount(atReals/runs))}
	if xvs {
		parts = append(parts, fmt.Sprintf("xvsd counted %s SYN-ACKs/run (%s by XDP)", fmtCount(synAcks/runs), fmtCount(byXDP/runs)))
	}
	what := "connections in xvsd's table"
	if !xvs {
		what = "conntrack entries"
	}
	return append(parts, fmt.Sprintf("%s %s at the end", fmtCount(conns/runs), what))
}

// fmtCount writes n with a k or M suffix.
func fmtCount(n uint64) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.2f M", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.1f k", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// WriteRatios prints the ratios with what each means.
func (r *Report) WriteRatios(w io.Writer) {
	for _, x := range r.Ratios {
		fmt.Fprintf(w, "%-52s %6.2f   (%s)\n", x.Name, x.Value, x.Why)
	}
}

// finite replaces NaN and infinities, which JSON cannot carry, by 0.
func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

// marshalReport encodes r as indented JSON.
func marshalReport(r *Report) ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return append(b, '\n'), nil
}

// unmarshalReport decodes what marshalReport wrote.
func unmarshalReport(b []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode report: %w", err)
	}
	return &r, nil
}
