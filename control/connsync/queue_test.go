package connsync

import (
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestQueueFull(t *testing.T) {
	q := newQueue(5) // rounds up to 8
	if len(q.slots) != 8 {
		t.Fatalf("%d slots", len(q.slots))
	}
	var c Conn
	if q.pop(&c) || q.ready() {
		t.Fatal("empty queue popped")
	}
	for lap := range 3 {
		for i := range 8 {
			c := testConns[0]
			c.State = uint8(lap*8 + i)
			if !q.push(&c) {
				t.Fatalf("lap %d: push %d refused", lap, i)
			}
		}
		if q.push(&testConns[0]) {
			t.Fatalf("lap %d: full queue accepted a push", lap)
		}
		for i := range 8 {
			if !q.pop(&c) || c.State != uint8(lap*8+i) {
				t.Fatalf("lap %d: pop %d gave %v, state %d", lap, i, q.ready(), c.State)
			}
		}
		if q.pop(&c) {
			t.Fatalf("lap %d: drained queue popped", lap)
		}
	}
}

// TestQueueConcurrent has producers race each other and the consumer through a small queue that is
// often full: every entry pushed comes out exactly once, and each producer's in its order.
func TestQueueConcurrent(t *testing.T) {
	const producers, each = 4, 10000
	q := newQueue(256)
	var wg sync.WaitGroup
	pushed := make([]int, producers)
	for p := range producers {
		wg.Go(func() {
			c := testConns[0]
			c.Proto = uint8(p)
			for i := range each {
				c.Client = netip.AddrPortFrom(c.Client.Addr(), uint16(i))
				for !q.push(&c) {
					runtime.Gosched()
				}
				pushed[p]++
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	next := make([]int, producers) // lowest sequence still possible from each producer
	got := make([]int, producers)
	deadline := time.After(10 * time.Second)
	var c Conn
	for finished := false; ; {
		if q.pop(&c) {
			p, i := int(c.Proto), int(c.Client.Port())
			if i < next[p] {
				t.Fatalf("producer %d: entry %d after %d", p, i, next[p]-1)
			}
			next[p] = i + 1
			got[p]++
			continue
		}
		if finished {
			break
		}
		select {
		case <-done:
			finished = true // one more pass empties what was pushed before the end
		case <-deadline:
			t.Fatal("timed out")
		default:
			runtime.Gosched()
		}
	}
	for p := range producers {
		if got[p] != each || pushed[p] != each {
			t.Errorf("producer %d: pushed %d, popped %d", p, pushed[p], got[p])
		}
	}
}

func BenchmarkPublish(b *testing.B) {
	s := &Syncer{queue: newQueue(1 << 16), wake: make(chan struct{}, 1)}
	c := testConns[3]
	var sink Conn
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Publish(c)
		if i&0xff == 0xff {
			for s.queue.pop(&sink) {
			}
		}
	}
}
