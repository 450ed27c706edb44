package main

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xvs-lb/xvs/dataplane/bpf"
	"github.com/xvs-lb/xvs/dataplane/xsk"
)

// AF_XDP receive sizing, per RX queue: a fill ring's worth of frames waiting
// for packets and as many again between RX and TX completion (reflect).
const (
	rxRing      = 2048
	maxRxFrames = 1 << 16 // 128 MiB of UMEM, however many queues share it
	rxBatch     = 64
	idleSpins   = 1024                  // empty polls before checking the clock
	idleAfter   = 2 * time.Millisecond  // quiet this long: sleep in poll()
	idlePoll    = 20 * time.Millisecond // poll() timeout while quiet
)

// receiver is a sink or reflector. Its counters may be read from any
// goroutine while it runs.
type receiver interface {
	// counts returns the frames and bytes received so far.
	counts() (packets, bytes uint64, err error)
	// run receives until stop is set.
	run(stop *atomic.Bool) error
	// result fills in the summary once run has returned.
	result(r *recvResult) error
	Close() error
}

// xdpReceiver is a counting XDP program: XDP_DROP for a sink, MAC swap and
// XDP_TX for a reflector. All the work is the kernel's; run only waits.
type xdpReceiver struct {
	prog    *xdpProg
	counter *ebpf.Map
	buf     []countValue
	reflect bool
}

func newXDPReceiver(reflect bool, ifindex int) (*xdpReceiver, error) {
	spec, err := bpf.LoadPktgen()
	if err != nil {
		return nil, err
	}
	name := countProgName
	if reflect {
		name = reflProgName
	}
	prog, err := loadProg(spec, name)
	if err != nil {
		return nil, err
	}
	if err := prog.attach(ifindex); err != nil {
		prog.Close()
		return nil, err
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		prog.Close()
		return nil, err
	}
	return &xdpReceiver{prog: prog, counter: prog.coll.Maps[countMapName], buf: make([]countValue, ncpu), reflect: reflect}, nil
}

func (x *xdpReceiver) counts() (uint64, uint64, error) {
	c, err := readCounts(x.counter, make([]countValue, len(x.buf)))
	return c.packets, c.bytes, err
}

func (x *xdpReceiver) run(stop *atomic.Bool) error {
	for !stop.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

func (x *xdpReceiver) result(r *recvResult) error {
	c, err := readCounts(x.counter, x.buf)
	if err != nil {
		return err
	}
	r.Received, r.Bytes, r.DurationS = c.packets, c.bytes, c.span()
	if x.reflect {
		// XDP_TX of a frame the driver could not queue is lost without a
		// trace here; every frame the program saw was reflected by it.
		n := c.packets
		r.Reflected = &n
	}
	return nil
}

func (x *xdpReceiver) Close() error { return x.prog.Close() }

// xskReceiver is one AF_XDP socket per RX queue on one shared UMEM, fed by a
// steering program that redirects every frame to its queue's socket. A
// reflector swaps the MAC addresses in place and transmits the frame back
// out of the socket it came in on.
type xskReceiver struct {
	steer   *xdpProg
	umem    *xsk.UMEM
	socks   []*xsk.Socket
	reflect bool

	received, bytes, reflected atomic.Uint64
	// first and last are the times of the first and latest batch, in
	// nanoseconds since start; written by run only.
	start       time.Time
	first, last int64
}

func newXSKReceiver(reflect bool, ifname string, ifindex int) (_ *xskReceiver, err error) {
	nq, err := xsk.Queues(ifname)
	if err != nil {
		return nil, err
	}
	if nq > maxQueues {
		return nil, fmt.Errorf("%s has %d RX queues; at most %d supported", ifname, nq, maxQueues)
	}
	x := &xskReceiver{reflect: reflect}
	defer func() {
		if err != nil {
			x.Close()
		}
	}()
	spec, err := bpf.LoadPktgen()
	if err != nil {
		return nil, err
	}
	if x.steer, err = loadProg(spec, steerProgName); err != nil {
		return nil, err
	}
	if x.umem, err = xsk.NewUMEM(xsk.UMEMConfig{NumFrames: min(nq*2*rxRing, maxRxFrames)}); err != nil {
		return nil, err
	}
	cfg := xsk.SocketConfig{RxSize: rxRing, FillSize: rxRing, TxSize: rxRing, CompSize: rxRing}
	xsks := x.steer.coll.Maps[xskMapName]
	for q := range nq {
		s, err := x.umem.Bind(ifindex, q, cfg)
		if err != nil {
			return nil, err
		}
		x.socks = append(x.socks, s)
		if err := xsks.Put(uint32(q), uint32(s.FD())); err != nil {
			return nil, fmt.Errorf("%s[%d] = xsk fd %d: %w", xskMapName, q, s.FD(), err)
		}
	}
	if err := x.steer.attach(ifindex); err != nil {
		return nil, err
	}
	return x, nil
}

func (x *xskReceiver) counts() (uint64, uint64, error) {
	return x.received.Load(), x.bytes.Load(), nil
}

// run busy-polls the sockets while traffic flows and sleeps in poll() once
// it has been quiet for a while, so that an idle receiver costs nothing. The
// calling goroutine should be locked to its thread (and pinned).
func (x *xskReceiver) run(stop *atomic.Bool) error {
	descs := make([]xsk.Desc, rxBatch)
	x.start = time.Now()
	spins := 0
	for !stop.Load() {
		got := 0
		for _, s := range x.socks {
			got += x.serve(s, descs)
		}
		if got > 0 {
			spins = 0
			continue
		}
		if spins++; spins < idleSpins {
			continue
		}
		spins = 0
		if quiet := time.Since(x.start) - time.Duration(x.last); quiet > idleAfter && x.outstanding() == 0 {
			if _, err := xsk.Poll(x.socks, idlePoll); err != nil {
				return err
			}
		}
	}
	return nil
}

// serve handles one batch of socket s and returns how many frames it got.
func (x *xskReceiver) serve(s *xsk.Socket, descs []xsk.Desc) int {
	if x.reflect {
		s.Complete()
		if s.Outstanding() > 0 {
			s.Kick()
		}
	}
	n := s.Receive(descs)
	if n == 0 {
		return 0
	}
	now := int64(time.Since(x.start))
	if x.first == 0 {
		x.first = now
	}
	x.last = now
	var bytes uint64
	for _, d := range descs[:n] {
		bytes += uint64(d.Len)
	}
	if x.reflect {
		for _, d := range descs[:n] {
			swapMACs(x.umem.Frame(d))
		}
		q := s.Transmit(descs[:n])
		for _, d := range descs[q:n] {
			x.umem.Free(d.Addr)
		}
		x.reflected.Add(uint64(q))
	} else {
		for _, d := range descs[:n] {
			x.umem.Free(d.Addr)
		}
	}
	x.received.Add(uint64(n))
	x.bytes.Add(bytes)
	return n
}

func (x *xskReceiver) outstanding() int {
	n := 0
	for _, s := range x.socks {
		n += s.Outstanding()
	}
	return n
}

// swapMACs exchanges the Ethernet destination and source addresses of frame
// in place.
func swapMACs(frame []byte) {
	if len(frame) < 12 {
		return
	}
	var dst [6]byte
	copy(dst[:], frame[0:6])
	copy(frame[0:6], frame[6:12])
	copy(frame[6:12], dst[:])
}

func (x *xskReceiver) result(r *recvResult) error {
	r.Received, r.Bytes = x.received.Load(), x.bytes.Load()
	if r.Received > 1 && x.last > x.first {
		r.DurationS = float64(x.last-x.first) / 1e9
	}
	if x.reflect {
		n := x.reflected.Load()
		r.Reflected = &n
	}
	return nil
}

func (x *xskReceiver) Close() error {
	var errs []error
	if x.steer != nil {
		errs = append(errs, x.steer.Close())
	}
	if x.umem != nil {
		errs = append(errs, x.umem.Close())
	}
	return errors.Join(errs...)
}

// lost sums the kernel's counters of frames the sockets missed: what to
// look at when an AF_XDP receiver falls behind its sender.
func (x *xskReceiver) lost() (xsk.Stats, error) {
	var sum xsk.Stats
	for _, s := range x.socks {
		st, err := s.Stats()
		if err != nil {
			return sum, err
		}
		sum.RxDropped += st.RxDropped
		sum.RxInvalidDescs += st.RxInvalidDescs
		sum.TxInvalidDescs += st.TxInvalidDescs
		sum.RxRingFull += st.RxRingFull
		sum.RxFillRingEmptyDescs += st.RxFillRingEmptyDescs
		sum.TxRingEmptyDescs += st.TxRingEmptyDescs
	}
	return sum, nil
}
