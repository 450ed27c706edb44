package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// sendResult is send's summary; its JSON names are what the benchmark
// harness reads.
type sendResult struct {
	Cmd         string   `json:"cmd"`
	Engine      string   `json:"engine"`
	Proto       string   `json:"proto"`
	Size        int      `json:"size"`
	Flows       uint64   `json:"flows"`
	Sent        uint64   `json:"sent"`
	DurationS   float64  `json:"duration_s"`
	OfferedPPS  float64  `json:"offered_pps"`
	Returned    *uint64  `json:"returned,omitempty"`
	ReturnedPPS *float64 `json:"returned_pps,omitempty"`
}

// recvResult is the summary of sink and reflect. DurationS runs from the
// first frame to the last, so that idle time around the traffic does not
// dilute the rate.
type recvResult struct {
	Cmd       string    `json:"cmd"`
	Mode      string    `json:"mode"`
	Received  uint64    `json:"received"`
	Reflected *uint64   `json:"reflected,omitempty"`
	Bytes     uint64    `json:"bytes"`
	DurationS float64   `json:"duration_s"`
	PPS       float64   `json:"pps"`
	BPS       float64   `json:"bps"`
	PerSecond []float64 `json:"per_second"`
}

func rate(n uint64, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return float64(n) / seconds
}

func writeSend(w io.Writer, r *sendResult, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	_, err := fmt.Fprintf(w, "sent %d frames (%d B, %s, %d flows, %s engine) in %.3fs: %.3f Mpps offered\n",
		r.Sent, r.Size, r.Proto, r.Flows, r.Engine, r.DurationS, r.OfferedPPS/1e6)
	if err == nil && r.Returned != nil {
		_, err = fmt.Fprintf(w, "returned %d frames: %.3f Mpps\n", *r.Returned, *r.ReturnedPPS/1e6)
	}
	return err
}

func writeRecv(w io.Writer, r *recvResult, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	_, err := fmt.Fprintf(w, "%s (%s): received %d frames, %d bytes in %.3fs: %.3f Mpps, %.3f Gbps\n",
		r.Cmd, r.Mode, r.Received, r.Bytes, r.DurationS, r.PPS/1e6, r.BPS/1e9)
	if err == nil && r.Reflected != nil {
		_, err = fmt.Fprintf(w, "reflected %d frames\n", *r.Reflected)
	}
	return err
}

// meter samples cumulative counters once a second, prints a progress line
// when asked to, and keeps the per-second packet counts.
type meter struct {
	out   io.Writer // nil: no progress lines
	verb  string    // "sent" or "recv"
	start time.Time
	read  func() (packets, bytes uint64)

	last      uint64
	lastBytes uint64
	perSecond []float64
}

// begin starts sampling in the background; the returned function stops it
// and waits, after which perSecond is the caller's.
func (m *meter) begin() (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		m.run(done)
	}()
	return func() {
		close(done)
		<-finished
	}
}

// run samples until done is closed, then returns.
func (m *meter) run(done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			m.sample(now)
		}
	}
}

func (m *meter) sample(now time.Time) {
	p, b := m.read()
	dp, db := p-m.last, b-m.lastBytes
	m.last, m.lastBytes = p, b
	m.perSecond = append(m.perSecond, float64(dp))
	if m.out == nil {
		return
	}
	t := int(now.Sub(m.start).Round(time.Second) / time.Second)
	switch m.verb {
	case "sent":
		fmt.Fprintf(m.out, "t=%ds sent %.2f Mpps (%.1fM total)\n", t, float64(dp)/1e6, float64(p)/1e6)
	default:
		fmt.Fprintf(m.out, "t=%ds %s %.2f Mpps %.2f Gbps\n", t, m.verb, float64(dp)/1e6, float64(db)*8/1e9)
	}
}

// trimIdle drops the seconds without traffic before the first and after the
// last second with some, and returns a non-nil slice.
func trimIdle(s []float64) []float64 {
	for len(s) > 0 && s[0] == 0 {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] == 0 {
		s = s[:len(s)-1]
	}
	if s == nil {
		return []float64{}
	}
	return s
}
