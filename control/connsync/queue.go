package connsync

import "sync/atomic"

// queue is a bounded lock-free queue of entries for many producers and one consumer (D. Vyukov's
// bounded MPMC queue, with a plain consumer index). Each slot's sequence number says whose turn it is:
// pos when free for the producer that claims position pos, pos+1 once that producer has filled it.
// A producer never waits for the consumer: a full queue fails the push.
type queue struct {
	slots []queueSlot
	mask  uint64
	_     [64]byte
	tail  atomic.Uint64 // next position to claim, shared by producers
	_     [64]byte
	head  uint64 // next position to take; the consumer's alone
}

type queueSlot struct {
	seq atomic.Uint64
	c   Conn
}

// newQueue returns a queue of at least n slots (a power of two).
func newQueue(n int) *queue {
	size := 1
	for size < n {
		size <<= 1
	}
	q := &queue{slots: make([]queueSlot, size), mask: uint64(size - 1)}
	for i := range q.slots {
		q.slots[i].seq.Store(uint64(i))
	}
	return q
}

// push adds c, or reports false if the queue is full. Safe for concurrent use.
func (q *queue) push(c *Conn) bool {
	pos := q.tail.Load()
	for {
		s := &q.slots[pos&q.mask]
		switch d := int64(s.seq.Load() - pos); {
		case d == 0:
			if q.tail.CompareAndSwap(pos, pos+1) {
				s.c = *c
				s.seq.Store(pos + 1)
				return true
			}
			pos = q.tail.Load()
		case d < 0:
			// The slot still holds the entry from one lap ago: full.
			return false
		default:
			// Another producer claimed pos meanwhile.
			pos = q.tail.Load()
		}
	}
}

// pop takes the oldest entry into c, or reports false if there is none ready. Consumer only.
func (q *queue) pop(c *Conn) bool {
	s := &q.slots[q.head&q.mask]
	if s.seq.Load() != q.head+1 {
		return false
	}
	*c = s.c
	s.seq.Store(q.head + q.mask + 1)
	q.head++
	return true
}

// ready reports whether pop would succeed. Consumer only.
func (q *queue) ready() bool {
	return q.slots[q.head&q.mask].seq.Load() == q.head+1
}
