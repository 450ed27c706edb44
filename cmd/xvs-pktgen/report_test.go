package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestJSONNames pins the summary's JSON: the benchmark harness reads these
// names.
func TestJSONNames(t *testing.T) {
	var b bytes.Buffer
	send := &sendResult{Cmd: "send", Engine: "live", Proto: "udp", Size: 64, Flows: 1, Sent: 10, DurationS: 2, OfferedPPS: 5}
	if err := writeSend(&b, send, true); err != nil {
		t.Fatal(err)
	}
	n, pps := uint64(4), 2.0
	send.Returned, send.ReturnedPPS = &n, &pps
	if err := writeSend(&b, send, true); err != nil {
		t.Fatal(err)
	}
	r := &recvResult{Cmd: "sink", Mode: "xdp", Received: 3, Bytes: 180, DurationS: 1.5, PPS: 2, BPS: 960, PerSecond: trimIdle(nil)}
	if err := writeRecv(&b, r, true); err != nil {
		t.Fatal(err)
	}
	r.Cmd, r.Reflected, r.PerSecond = "reflect", &n, []float64{1, 2}
	if err := writeRecv(&b, r, true); err != nil {
		t.Fatal(err)
	}
	want := `{"cmd":"send","engine":"live","proto":"udp","size":64,"flows":1,"sent":10,"duration_s":2,"offered_pps":5}
{"cmd":"send","engine":"live","proto":"udp","size":64,"flows":1,"sent":10,"duration_s":2,"offered_pps":5,"returned":4,"returned_pps":2}
{"cmd":"sink","mode":"xdp","received":3,"bytes":180,"duration_s":1.5,"pps":2,"bps":960,"per_second":[]}
{"cmd":"reflect","mode":"xdp","received":3,"reflected":4,"bytes":180,"duration_s":1.5,"pps":2,"bps":960,"per_second":[1,2]}
`
	if b.String() != want {
		t.Errorf("JSON:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestTrimIdle(t *testing.T) {
	for _, tc := range []struct{ in, want []float64 }{
		{nil, []float64{}},
		{[]float64{0, 0}, []float64{}},
		{[]float64{0, 5, 0, 7, 0, 0}, []float64{5, 0, 7}},
		{[]float64{1}, []float64{1}},
	} {
		if got := trimIdle(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("trimIdle(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestMeterLines(t *testing.T) {
	var out bytes.Buffer
	var p, b uint64
	start := time.Unix(100, 0)
	m := &meter{out: &out, verb: "sent", start: start, read: func() (uint64, uint64) { return p, b }}
	p, b = 7_410_000, 7_410_000*60
	m.sample(start.Add(time.Second))
	p, b = 22_200_000, 22_200_000*60
	m.sample(start.Add(3 * time.Second))
	m.verb = "recv"
	p, b = p+810_000, b+810_000*60
	m.sample(start.Add(4 * time.Second))
	want := "t=1s sent 7.41 Mpps (7.4M total)\nt=3s sent 14.79 Mpps (22.2M total)\nt=4s recv 0.81 Mpps 0.39 Gbps\n"
	if out.String() != want {
		t.Errorf("progress:\n%s\nwant:\n%s", out.String(), want)
	}
	if !reflect.DeepEqual(m.perSecond, []float64{7_410_000, 14_790_000, 810_000}) {
		t.Errorf("perSecond %v", m.perSecond)
	}
	var text bytes.Buffer
	if err := writeRecv(&text, &recvResult{Cmd: "sink", Mode: "xsk", Received: 5}, false); err != nil ||
		!strings.HasPrefix(text.String(), "sink (xsk): received 5 frames") {
		t.Errorf("text summary %q, %v", text.String(), err)
	}
}

// TestCountsSpan checks the first-to-last span, whose end is extrapolated
// from the latest timed frame.
func TestCountsSpan(t *testing.T) {
	for _, tc := range []struct {
		c    counts
		want float64
	}{
		{counts{}, 0},
		{counts{packets: 1, first: 5, last: 5, stamped: 1}, 0},
		{counts{packets: 63, first: 1e9, last: 1e9, stamped: 1}, 0}, // nothing timed after the first
		{counts{packets: 129, first: 1e9, last: 2e9, stamped: 129}, 1},
		{counts{packets: 161, first: 1e9, last: 2e9, stamped: 129}, 1.25},
	} {
		if got := tc.c.span(); got != tc.want {
			t.Errorf("%+v.span() = %v, want %v", tc.c, got, tc.want)
		}
	}
}
