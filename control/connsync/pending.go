package connsync

import "net/netip"

// flowKey identifies a connection as its client sees it; a later entry for the same key replaces an
// earlier one still waiting to be sent.
type flowKey struct {
	proto   uint8
	client  netip.AddrPort
	virtual netip.AddrPort
}

type pendingConn struct {
	c    Conn
	at   int64 // when the sender took it from the queue, nanoseconds on the Syncer's clock
	size int
}

// pending holds the entries the sender has taken from the queue but not yet sent, in arrival order,
// with at most one entry per flow. It is a fixed ring, so it allocates nothing after creation.
type pending struct {
	ring       []pendingConn
	head, tail uint64 // ring[head%len : tail%len] are waiting
	index      map[flowKey]uint64
	bytes      int // sum of sizes
}

func newPending(capacity int) *pending {
	return &pending{ring: make([]pendingConn, capacity), index: make(map[flowKey]uint64, capacity)}
}

func keyOf(c *Conn) flowKey { return flowKey{c.Proto, c.Client, c.Virtual} }

func (p *pending) len() int { return int(p.tail - p.head) }

func (p *pending) at(i int) *pendingConn { return &p.ring[(p.head+uint64(i))%uint64(len(p.ring))] }

// add queues c, or replaces the waiting entry of the same flow. It reports whether c replaced one, and
// false, false when the ring is full.
func (p *pending) add(c *Conn, at int64) (added, coalesced bool) {
	k := keyOf(c)
	size := entrySize(c)
	if i, ok := p.index[k]; ok {
		e := &p.ring[i%uint64(len(p.ring))]
		p.bytes += size - e.size
		*e = pendingConn{c: *c, at: at, size: size}
		return true, true
	}
	if p.len() == len(p.ring) {
		return false, false
	}
	p.ring[p.tail%uint64(len(p.ring))] = pendingConn{c: *c, at: at, size: size}
	p.index[k] = p.tail
	p.tail++
	p.bytes += size
	return true, false
}

// pop removes the n oldest entries.
func (p *pending) pop(n int) {
	for range n {
		e := &p.ring[p.head%uint64(len(p.ring))]
		delete(p.index, keyOf(&e.c))
		p.bytes -= e.size
		*e = pendingConn{}
		p.head++
	}
}
