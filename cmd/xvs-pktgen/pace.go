package main

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// pacer schedules a run: frame i is due at start + i/rate, and the sender
// may run up to burst frames ahead of the schedule. It sends a burst once
// one is due, and after a late wakeup all that is due: the total stays
// rate × duration however coarse the sleeps are.
type pacer struct {
	rate  uint64 // frames per second; 0 is unlimited
	burst uint64 // frames granted at once when on schedule
	limit uint64 // frames in the whole run; 0 is unlimited
	start time.Time
	end   time.Time // nothing is granted at or after end
	done  time.Time // when finish was called and slept: the end of sending
	now   func() time.Time
	sleep func(time.Duration)
}

// newPacer returns a pacer for frames at rate per second (0: flat out) from
// now until duration passes or count frames (0: no count) are granted.
func newPacer(rate, burst, count uint64, duration time.Duration) *pacer {
	return newPacerClock(rate, burst, count, duration, time.Now, time.Sleep)
}

func newPacerClock(rate, burst, count uint64, duration time.Duration, now func() time.Time, sleep func(time.Duration)) *pacer {
	start := now()
	p := &pacer{rate: rate, burst: max(burst, 1), limit: count, start: start, end: start.Add(duration), now: now, sleep: sleep}
	if rate > 0 {
		// What the rate allows in the whole duration: the last burst
		// must not run past it.
		byRate := max(uint64(float64(rate)*duration.Seconds()), 1)
		if p.limit == 0 || byRate < p.limit {
			p.limit = byRate
		}
	}
	return p
}

// grant returns how many frames, from 1 to most, the sender may send now,
// having sent sent so far; it sleeps until at least a burst is due. 0 means
// the run is over. It allocates nothing.
func (p *pacer) grant(sent, most uint64) uint64 {
	now := p.now()
	if !now.Before(p.end) {
		return 0
	}
	if p.limit > 0 {
		if sent >= p.limit {
			return 0
		}
		most = min(most, p.limit-sent)
	}
	if p.rate == 0 {
		return most
	}
	need := min(p.burst, most)
	// Frame sent+need-1 may go burst frames early.
	at := p.due(sent + need - min(sent+need, p.burst))
	if d := at.Sub(now); d > 0 {
		if !at.Before(p.end) {
			return 0
		}
		p.sleep(d)
		now = at
	}
	due := float64(p.rate)*now.Sub(p.start).Seconds() + float64(p.burst) - float64(sent)
	return max(need, min(most, uint64(max(due, 0))))
}

// due returns when frame i is due.
func (p *pacer) due(i uint64) time.Time {
	return p.start.Add(time.Duration(float64(i) / float64(p.rate) * float64(time.Second)))
}

// finish ends the run and returns its duration. A paced run first sleeps
// until the last frame sent is due, so that it lasts sent/rate (within its
// duration) rather than ending right after its last burst.
func (p *pacer) finish(sent uint64) time.Duration {
	if p.rate > 0 && sent > 0 {
		at := p.due(sent)
		if at.After(p.end) {
			at = p.end
		}
		if d := at.Sub(p.now()); d > 0 {
			p.sleep(d)
		}
	}
	p.done = p.now()
	return p.done.Sub(p.start)
}

// pinThread locks the calling goroutine to its OS thread and, if cpu is not
// negative, that thread to cpu. The goroutine should not unlock: when it
// ends still locked, the runtime retires the pinned thread with it.
func pinThread(cpu int) error {
	runtime.LockOSThread()
	if cpu < 0 {
		return nil
	}
	var set unix.CPUSet
	set.Set(cpu)
	return unix.SchedSetaffinity(0, &set)
}
