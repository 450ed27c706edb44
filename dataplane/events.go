package dataplane

import (
	"net/netip"
	"sync/atomic"

	"github.com/xvs-lb/xvs/conntrack"
)

// ConnEvent is a connection as the data plane saw it being created or
// changing state: what connection sync sends to the other directors.
type ConnEvent struct {
	Orig  conntrack.Key
	Value conntrack.Value
	State conntrack.State
}

// eventRing carries ConnEvents from one worker (the only producer) to the
// sync goroutine (the only consumer) without a lock or an allocation; when
// it is full the event is dropped and counted, the worker never waits.
type eventRing struct {
	buf     []ConnEvent
	mask    uint64
	head    atomic.Uint64 // next to read (consumer)
	tail    atomic.Uint64 // next to write (producer)
	dropped atomic.Uint64
}

func newEventRing(size int) *eventRing {
	n := 1
	for n < size {
		n <<= 1
	}
	return &eventRing{buf: make([]ConnEvent, n), mask: uint64(n - 1)}
}

func (r *eventRing) push(c *conntrack.Conn, state conntrack.State) {
	t := r.tail.Load()
	if t-r.head.Load() > r.mask {
		r.dropped.Add(1)
		return
	}
	e := &r.buf[t&r.mask]
	e.Orig, e.Value, e.State = c.Orig, c.Value, state
	r.tail.Store(t + 1)
}

func (r *eventRing) drain(fn func(*ConnEvent)) int {
	h, t := r.head.Load(), r.tail.Load()
	for i := h; i < t; i++ {
		fn(&r.buf[i&r.mask])
	}
	r.head.Store(t)
	return int(t - h)
}

// syncRingSize bounds each worker's backlog of unsent connection events.
const syncRingSize = 1 << 14

// DrainConnEvents hands every queued connection event to fn (one goroutine
// at a time may call it) and returns how many there were. Nothing is
// queued unless Config.SyncEvents is set.
func (e *Engine) DrainConnEvents(fn func(*ConnEvent)) int {
	n := 0
	for _, w := range e.workers {
		if r := w.fwd.events; r != nil {
			n += r.drain(fn)
		}
	}
	return n
}

// SyncedConn is a connection another director created, described by value.
type SyncedConn struct {
	Proto   uint8
	Client  netip.AddrPort
	Virtual netip.AddrPort
	Real    netip.AddrPort
	Local   netip.AddrPort // FullNAT
	Method  Method
	State   conntrack.State
	InPort  int     // the port its client side is reached through
	PeerMAC [6]byte // the client side's next hop
}

// Describe turns an event into a SyncedConn against the published table;
// ok is false when its real server is gone.
func (e *Engine) Describe(ev *ConnEvent) (SyncedConn, bool) {
	t := e.table.Load()
	d := t.dest(ev.Value.Dest)
	if d == nil {
		return SyncedConn{}, false
	}
	sc := SyncedConn{
		Proto: ev.Orig.Proto, Client: ev.Orig.Src(), Virtual: ev.Orig.Dst(), Method: Method(ev.Value.Flags & methodMask),
		State: ev.State, InPort: int(ev.Value.InPort), PeerMAC: ev.Value.PeerMAC,
	}
	port := d.Port
	if port == 0 {
		port = ev.Orig.DstPort
	}
	sc.Real = netip.AddrPortFrom(d.Addr, port)
	if sc.Method == MethodFullNAT {
		lip, lport := t.serviceByID(ev.Value.Service).localAddr(ev.Value.Flags)
		sc.Local = netip.AddrPortFrom(lip, lport)
	}
	return sc, true
}

// Import inserts a connection another director created, so that its
// packets, should they come here (ECMP change, failover), go to the same
// real server with the same translation. Unknown services or real servers
// are skipped; an existing entry is left as it is.
func (e *Engine) Import(sc SyncedConn) bool {
	t := e.table.Load()
	svc := t.service(sc.Virtual.Addr(), sc.Virtual.Port(), sc.Proto)
	if svc == nil {
		return false
	}
	var d *Dest
	for _, x := range svc.Dests {
		port := x.Port
		if port == 0 {
			port = sc.Virtual.Port()
		}
		if x.Addr == sc.Real.Addr().Unmap() && port == sc.Real.Port() && x.Method == sc.Method {
			d = x
		}
	}
	if d == nil {
		return false
	}
	fwd := conntrack.MakeKey(sc.Proto, sc.Client.Addr(), sc.Client.Port(), sc.Virtual.Addr(), sc.Virtual.Port())
	v := conntrack.Value{Service: svc.ID, Dest: d.ID, Flags: uint32(d.Method), InPort: uint16(sc.InPort), PeerMAC: sc.PeerMAC}
	var rev *conntrack.Key
	dir := conntrack.InputOnly
	switch d.Method {
	case MethodNAT:
		k := conntrack.MakeKey(sc.Proto, sc.Real.Addr(), sc.Real.Port(), sc.Client.Addr(), sc.Client.Port())
		rev, dir = &k, conntrack.Input
	case MethodFullNAT:
		li := -1
		for i, l := range svc.lips {
			if l == sc.Local.Addr().Unmap() {
				li = i
			}
		}
		if li < 0 {
			return false
		}
		v.Flags |= uint32(li)<<8 | uint32(sc.Local.Port())<<16
		k := conntrack.MakeKey(sc.Proto, sc.Real.Addr(), sc.Real.Port(), sc.Local.Addr(), sc.Local.Port())
		rev, dir = &k, conntrack.Input
	}
	// A SYN makes an embryonic entry; established connections are
	// inserted as an ACK would leave them.
	flags := uint8(0x02)
	if sc.State == conntrack.Established {
		flags = 0x10
	}
	var c conntrack.Conn
	now := e.now()
	if err := e.ct.Insert(&fwd, rev, &v, sc.Proto, flags, dir, now, &c); err != nil && err != conntrack.ErrExists {
		return false
	}
	// Inserted, or already here (an update of a connection sent before):
	// bring it up to the state the other director reports.
	if sc.Proto == protoTCP && sc.State == conntrack.Established && c.State != conntrack.Established {
		e.ct.Touch(c.Ref, 0x10, dir, now)
	}
	return true
}

// SyncDropped returns the events dropped because a worker's ring was full.
func (e *Engine) SyncDropped() uint64 {
	var n uint64
	for _, w := range e.workers {
		if r := w.fwd.events; r != nil {
			n += r.dropped.Load()
		}
	}
	return n
}
