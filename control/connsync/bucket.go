package connsync

import (
	"sync"
	"time"
)

// bucket is a token bucket of bytes shared by the live sender and the snapshot server.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate, burst int, now time.Time) *bucket {
	return &bucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst), last: now}
}

// take takes n bytes if the bucket holds them and returns 0; otherwise it takes nothing and returns how
// long until it will hold them. n must not exceed the burst.
func (b *bucket) take(now time.Time, n int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens >= float64(n) {
		b.tokens -= float64(n)
		return 0
	}
	wait := time.Duration((float64(n) - b.tokens) / b.rate * float64(time.Second))
	return max(wait, time.Microsecond)
}

// charge takes n bytes even if the bucket does not hold them, leaving it in debt.
func (b *bucket) charge(now time.Time, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt.Seconds()*b.rate)
		b.last = now
	}
	b.tokens -= float64(n)
}
