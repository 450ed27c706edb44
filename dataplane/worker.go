package dataplane

import (
	"context"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/dataplane/xsk"
)

// worker serves one queue index on every director interface: socks[p] is the
// AF_XDP socket of port p's queue (nil where that port has fewer queues). All
// of them share one UMEM, so a frame received on one port is transmitted on
// another without a copy.
type worker struct {
	queue int
	cpu   int // -1: not pinned
	umem  *xsk.UMEM
	socks []*xsk.Socket
	fwd   *forwarder
	stats *WorkerStats
	table func() *Table
	clock func() int64

	rx   []xsk.Desc
	prep []prepared   // the batch's frames, decoded ahead
	tx   [][]xsk.Desc // per port
	// idleSpins is how many empty polls of the rings the worker makes
	// before it sleeps in poll(2); negative: it never sleeps (busy poll).
	idleSpins int
	// busyPoll: the sockets busy-poll (SO_PREFER_BUSY_POLL); an empty
	// round runs their NAPI with a non-blocking recvfrom.
	busyPoll bool
}

const (
	// DefaultBatch is how many frames a worker takes from an RX ring at
	// once: the per-batch work (table load, TX kick, completions) spread
	// thin. BENCH_TUNE=1 measured 256 at 1.05-1.14 times 64's rate and 16
	// at 0.87-0.93 on this project's VM; a batch only fills under load,
	// so it costs no latency when the director is quiet.
	DefaultBatch = 256
	// DefaultIdleSpins is enough empty polls to ride out gaps between
	// packets under load, few enough that an idle director does not burn
	// a core.
	DefaultIdleSpins = 256
	pollWait         = 50 * time.Millisecond
)

func (w *worker) run(ctx context.Context) {
	// A worker owns its rings; keeping it on one thread (and one CPU when
	// configured) keeps their cache lines where they are.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if w.cpu >= 0 {
		var set unix.CPUSet
		set.Set(w.cpu)
		_ = unix.SchedSetaffinity(0, &set)
	}
	var socks []*xsk.Socket
	for _, s := range w.socks {
		if s != nil {
			socks = append(socks, s)
		}
	}
	spins, wait := w.idleSpins, pollWait
	if spins < 0 {
		// Busy polling still needs the non-blocking poll now and then: it
		// wakes a socket whose kernel side asked for a wakeup.
		spins, wait = DefaultIdleSpins, 0
	}
	idle := 0
	for ctx.Err() == nil {
		n := w.poll()
		if n > 0 {
			idle = 0
			continue
		}
		if w.busyPoll {
			// Run the queues' NAPI here rather than wait for softirq
			// to fill the rings (Config.BusyPoll).
			for _, s := range socks {
				s.BusyPoll()
			}
		}
		if idle++; idle >= spins {
			idle = 0
			_, _ = xsk.Poll(socks, wait)
		}
	}
}

// poll runs one batch over every port: receive, forward, transmit, and
// reclaim completed transmissions. It returns the frames received.
func (w *worker) poll() int {
	t := w.table()
	now := w.clock()
	total := 0
	for p, s := range w.socks {
		if s == nil {
			continue
		}
		n := s.Receive(w.rx)
		total += n
		bump(&w.stats.RxFrames, uint64(n))
		// Decode the whole batch and touch its connections' buckets
		// first: their cache misses overlap rather than follow one
		// another, frame after frame.
		for i, d := range w.rx[:n] {
			w.fwd.prepare(w.umem.Frame(d), &w.prep[i])
		}
		for i := range w.rx[:n] {
			w.fwd.prefetchBucket(&w.prep[i])
		}
		for i := range w.rx[:n] {
			w.fwd.prefetchEntry(&w.prep[i])
		}
		for i, d := range w.rx[:n] {
			// The frame's chunk, headroom included: encapsulation and
			// TOA grow the frame towards the chunk's start.
			hr := w.umem.Headroom(d)
			start := d.Addr - uint64(hr)
			buf := w.umem.Frame(xsk.Desc{Addr: start, Len: d.Len + uint32(hr)})
			out, off, length := w.fwd.forwardPrepared(t, buf, hr, int(d.Len), p, now, &w.prep[i])
			if out >= 0 {
				if w.fwd.verify {
					w.fwd.verifySent(buf[off : off+length])
				}
				w.fwd.considerOffload()
			}
			if w.fwd.replyLen > 0 {
				w.queueReply()
			}
			if out < 0 || w.socks[out] == nil {
				if out >= 0 {
					w.stats.drop(DropNoNextHop)
				}
				w.umem.Free(d.Addr)
				continue
			}
			w.tx[out] = append(w.tx[out], xsk.Desc{Addr: start + uint64(off), Len: uint32(length)})
		}
	}
	for p, q := range w.tx {
		if len(q) == 0 {
			continue
		}
		sent := w.socks[p].Transmit(q)
		bump(&w.stats.TxFrames, uint64(sent))
		for _, d := range q[sent:] {
			w.stats.drop(DropTxFull)
			w.umem.Free(d.Addr)
		}
		w.tx[p] = q[:0]
	}
	for _, s := range w.socks {
		if s != nil {
			s.Complete()
			// A kick that met EAGAIN/EBUSY leaves frames on the TX ring;
			// kick again rather than let them wait for the next batch.
			if s.Outstanding() > 0 {
				s.Kick()
			}
		}
	}
	return total
}

// queueReply sends the ICMP error the forwarder built (fragmentation needed)
// from a fresh frame; when none is free the error is simply not sent.
func (w *worker) queueReply() {
	p := w.fwd.replyPort
	if p >= len(w.socks) || w.socks[p] == nil {
		return
	}
	d, ok := w.umem.Alloc()
	if !ok {
		return
	}
	d.Len = uint32(copy(w.umem.Frame(xsk.Desc{Addr: d.Addr, Len: uint32(w.fwd.replyLen)}), w.fwd.replyBuf[:w.fwd.replyLen]))
	w.tx[p] = append(w.tx[p], d)
}
