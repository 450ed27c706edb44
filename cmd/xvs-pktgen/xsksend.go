package main

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/xvs-lb/xvs/dataplane/xsk"
)

// AF_XDP transmit sizing: the TX and completion rings hold txRing frames
// each, and the UMEM has room for both to be full.
const (
	txRing    = 2048
	txFrames  = 2 * txRing
	txBatch   = 64
	drainWait = time.Second // for the kernel to complete the last frames
)

// xskSender transmits through an AF_XDP socket on queue 0. Every UMEM frame
// holds a copy of the template from the start; before a frame goes out again
// only its flow fields are rewritten, since nothing else writes to frames
// this socket only sends.
type xskSender struct {
	umem  *xsk.UMEM
	sock  *xsk.Socket
	t     *template
	count atomic.Uint64 // frames queued, for the meter

	pending []xsk.Desc // built but not queued yet: the TX ring was full
	cursor  flowCursor
}

func newXSKSender(t *template, ifindex int) (*xskSender, error) {
	umem, err := xsk.NewUMEM(xsk.UMEMConfig{NumFrames: txFrames})
	if err != nil {
		return nil, err
	}
	// Hold every frame while binding, so that bind's fill-ring prefill
	// takes none: no frame comes back through RX on a send-only socket
	// (no XDP program redirects to it).
	held := make([]xsk.Desc, 0, txFrames)
	for {
		d, ok := umem.Alloc()
		if !ok {
			break
		}
		d.Len = uint32(len(t.frame))
		copy(umem.Frame(d), t.frame)
		held = append(held, d)
	}
	sock, err := umem.Bind(ifindex, 0, xsk.SocketConfig{RxSize: 64, FillSize: 64, TxSize: txRing, CompSize: txRing})
	if err != nil {
		umem.Close()
		return nil, err
	}
	for _, d := range held {
		umem.Free(d.Addr)
	}
	return &xskSender{umem: umem, sock: sock, t: t, pending: make([]xsk.Desc, 0, txBatch)}, nil
}

func (x *xskSender) sent() (uint64, error) { return x.count.Load(), nil }

// burst is the pacer's burst at rate: 100 µs worth, at most a batch.
func (x *xskSender) burst(rate uint64) uint64 {
	return min(txBatch, max(1, rate/10000))
}

func (x *xskSender) describe() string {
	if x.sock.ZeroCopy() {
		return "AF_XDP zero-copy on queue 0"
	}
	return "AF_XDP copy mode on queue 0"
}

// fill tops pending up to n frames from the free stack, each rewritten for
// the next flow. It allocates nothing.
func (x *xskSender) fill(n int) {
	frameLen := uint32(len(x.t.frame))
	vary := x.t.space.flows > 1
	for len(x.pending) < n {
		d, ok := x.umem.Alloc()
		if !ok {
			return
		}
		d.Len = frameLen
		if vary {
			x.t.writeFlow(x.umem.Frame(d), x.cursor.addr, x.cursor.port)
			x.cursor.next(x.t.space)
		}
		x.pending = append(x.pending, d)
	}
}

// run sends what p grants until p ends the run or stop is set, then waits a
// moment for the kernel to complete what it has.
func (x *xskSender) run(p *pacer, stop *atomic.Bool) error {
	var sent, granted uint64
	for !stop.Load() {
		x.sock.Complete()
		if granted == sent {
			n := p.grant(sent, txRing)
			if n == 0 {
				break
			}
			granted = sent + n
		}
		x.fill(int(min(granted-sent, txBatch)))
		q := x.sock.Transmit(x.pending)
		if q == 0 {
			// Ring full or no free frame: let the kernel work.
			x.sock.Kick()
			continue
		}
		x.pending = x.pending[:copy(x.pending, x.pending[q:])]
		sent += uint64(q)
		x.count.Store(sent)
	}
	for _, d := range x.pending {
		x.umem.Free(d.Addr)
	}
	x.pending = x.pending[:0]
	p.finish(sent)
	deadline := time.Now().Add(drainWait)
	for x.sock.Outstanding() > 0 && time.Now().Before(deadline) {
		x.sock.Kick()
		if x.sock.Complete() == 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	// Frames the kernel never completed were not sent.
	sent -= uint64(x.sock.Outstanding())
	x.count.Store(sent)
	return nil
}

func (x *xskSender) Close() error {
	var errs []error
	if err := x.sock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close xsk: %w", err))
	}
	if err := x.umem.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close UMEM: %w", err))
	}
	return errors.Join(errs...)
}
