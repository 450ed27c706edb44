package main

import (
	"testing"
	"time"
)

// fakeClock is a clock whose sleeps advance it, each by the time asked plus
// a fixed oversleep.
type fakeClock struct {
	t         time.Time
	oversleep time.Duration
	sleeps    int
}

func (c *fakeClock) now() time.Time { return c.t }

func (c *fakeClock) sleep(d time.Duration) {
	c.sleeps++
	c.t = c.t.Add(d + c.oversleep)
}

// drive runs a sender against p that asks for most frames per call and
// takes cost per call to send them, and returns what it sent and how long
// the run took, finish included.
func drive(p *pacer, c *fakeClock, most uint64, cost time.Duration) (sent uint64, took time.Duration) {
	start := c.t
	for range 10_000_000 {
		n := p.grant(sent, most)
		if n == 0 {
			break
		}
		if n > most {
			panic("grant above most")
		}
		sent += n
		c.t = c.t.Add(cost)
	}
	took = p.finish(sent)
	if took != c.t.Sub(start) {
		panic("finish returned the wrong duration")
	}
	return sent, took
}

func TestPacer(t *testing.T) {
	tests := []struct {
		name      string
		rate      uint64
		burst     uint64
		count     uint64
		duration  time.Duration
		most      uint64
		cost      time.Duration
		oversleep time.Duration
		wantSent  uint64
		slack     uint64 // frames the result may fall short
		wantTook  time.Duration
	}{
		{"flat out, count first", 0, 1, 1000, time.Second, 64, time.Microsecond, 0, 1000, 0, 16 * time.Microsecond},
		{"flat out, duration first", 0, 1, 0, time.Millisecond, 100, 10 * time.Microsecond, 0, 10000, 0, time.Millisecond},
		{"paced by duration", 50000, 5, 0, 2 * time.Second, 1 << 16, time.Microsecond, 0, 100000, 5, 2 * time.Second},
		{"paced, coarse sleeps catch up", 50000, 5, 0, 2 * time.Second, 1 << 16, time.Microsecond, 900 * time.Microsecond, 100000, 100, 2 * time.Second},
		{"paced, slow calls catch up", 100000, 10, 0, time.Second, 1 << 16, 3 * time.Millisecond, 0, 100000, 400, time.Second},
		{"paced by count", 1000, 1, 500, 10 * time.Second, 64, 0, 0, 500, 0, 500 * time.Millisecond},
		{"rate below one per duration", 1, 1, 0, time.Millisecond, 64, 0, 0, 1, 0, time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeClock{t: time.Unix(1000, 0), oversleep: tc.oversleep}
			p := newPacerClock(tc.rate, tc.burst, tc.count, tc.duration, c.now, c.sleep)
			sent, took := drive(p, c, tc.most, tc.cost)
			if sent > tc.wantSent || sent+tc.slack < tc.wantSent {
				t.Errorf("sent %d, want %d (-%d)", sent, tc.wantSent, tc.slack)
			}
			if d := took - tc.wantTook; d < -tc.cost-tc.oversleep || d > tc.cost+tc.oversleep {
				t.Errorf("run took %v, want %v", took, tc.wantTook)
			}
		})
	}
}

// TestPacerBursts checks that a paced sender on schedule gets its bursts
// evenly spread, not all at once.
func TestPacerBursts(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := newPacerClock(10000, 10, 0, time.Second, c.now, c.sleep)
	var sent uint64
	last := c.t
	for i := range 20 {
		n := p.grant(sent, 1<<16)
		if n != 10 {
			t.Fatalf("grant %d: %d frames, want a burst of 10", i, n)
		}
		if i > 0 {
			if gap := c.t.Sub(last); gap != time.Millisecond {
				t.Fatalf("grant %d: %v after the previous one, want 1ms", i, gap)
			}
		}
		last = c.t
		sent += n
	}
}
