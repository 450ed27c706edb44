package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/dataplane/packet"
	"github.com/xvs-lb/xvs/dataplane/xdpprog"
	"github.com/xvs-lb/xvs/internal/xvs"
)

// FastPath says where the XDP fast path forwards established connections.
//
// The userspace workers make every decision (scheduling, persistence, FullNAT
// ports, TCP state, ICMP). Once a connection is established (TCP) or
// created (UDP), a worker offloads it: it asks for its forwarding decision
// to be written into the steering programs' flow table, and from then on
// the programs forward its frames themselves, with XDP_TX or a redirect to
// another director interface, counting them per flow. Frames that open or
// close a connection, ICMP errors, fragments, packets with IP options or a
// checksum left to complete, and tunnel packets too big for the MTU still
// go to the workers. The flow table is a cache of the connection table:
// the engine folds its counters and last-seen stamps into the connections
// every FoldEvery, and removes what no longer matches a live connection.
//
// The modes are internal/xvs's, which the configuration parses: auto
// offloads on interfaces that run XDP in driver mode, except veth (a veth
// drops the frames XDP sends unless its peer runs NAPI, a setting of the
// peer the director can neither see nor change); xdp offloads on every
// interface in driver mode, veth included, and takes an interface whose XDP
// transmissions fail off the fast path with a warning; off forwards
// everything in userspace.
type FastPath = xvs.FastPath

const (
	FastPathAuto = xvs.FastPathAuto
	FastPathXDP  = xvs.FastPathXDP
	FastPathOff  = xvs.FastPathOff
)

// offloadReq is a worker's request to the fast path: insert (or, with del,
// delete) the flow directions of one connection.
type offloadReq struct {
	del   bool
	n     int // directions: 1 (DR, TUN) or 2 (NAT, FullNAT)
	keys  [2]xdpprog.FlowKey
	flows [2]xdpprog.Flow
}

// offloadRing carries offload requests from one worker (the only producer)
// to the fast path's goroutine (the only consumer), lock-free; a full ring
// drops the request (the connection stays in userspace) and counts it.
type offloadRing struct {
	buf     []offloadReq
	mask    uint64
	head    atomic.Uint64
	tail    atomic.Uint64
	dropped atomic.Uint64
	// wake, when set, is the consumer's doorbell (one slot, shared by
	// every worker's ring): a request published wakes it at once rather
	// than at its next poll, so that a short transfer (a 20 MB download
	// is over in tens of milliseconds) is offloaded for most of its
	// frames.
	wake chan struct{}
}

func newOffloadRing(size int, wake chan struct{}) *offloadRing {
	n := 1
	for n < size {
		n <<= 1
	}
	return &offloadRing{buf: make([]offloadReq, n), mask: uint64(n - 1), wake: wake}
}

// next returns the slot to fill, or nil when the ring is full; publish
// makes it visible.
func (r *offloadRing) next() *offloadReq {
	t := r.tail.Load()
	if t-r.head.Load() > r.mask {
		r.dropped.Add(1)
		return nil
	}
	return &r.buf[t&r.mask]
}

func (r *offloadRing) publish() {
	r.tail.Store(r.tail.Load() + 1)
	select {
	case r.wake <- struct{}{}:
	default: // already rung, or no doorbell
	}
}

func (r *offloadRing) drain(fn func(*offloadReq)) int {
	h, t := r.head.Load(), r.tail.Load()
	for i := h; i < t; i++ {
		fn(&r.buf[i&r.mask])
	}
	r.head.Store(t)
	return int(t - h)
}

// offloadRingSize bounds each worker's backlog of offload requests.
const offloadRingSize = 4096

// FoldEvery is how often the fast path's counters and last-seen stamps are
// folded into the connections, and stale flows removed.
const FoldEvery = time.Second

// flowKey writes k as the fast path keys it.
func flowKey(dst *xdpprog.FlowKey, k *conntrack.Key) {
	*dst = xdpprog.FlowKey{Saddr: k.SrcAddr, Daddr: k.DstAddr, Sport: xdpprog.Net16(k.SrcPort), Dport: xdpprog.Net16(k.DstPort), Proto: k.Proto}
}

// connKey is the inverse of flowKey.
func connKey(k *xdpprog.FlowKey) conntrack.Key {
	return conntrack.Key{Proto: k.Proto, SrcAddr: k.Saddr, DstAddr: k.Daddr, SrcPort: xdpprog.Host16(k.Sport), DstPort: xdpprog.Host16(k.Dport)}
}

// flowAddr writes a as a flow's address field holds it: IPv4 in the first
// four bytes.
func flowAddr(dst *[16]byte, a netip.Addr) {
	*dst = [16]byte{}
	if a.Is4() {
		a4 := a.As4()
		copy(dst[:], a4[:])
		return
	}
	*dst = a.As16()
}

// offloadCandidate is what forward leaves for considerOffload about the
// frame it just forwarded in userspace.
type offloadCandidate struct {
	ok      bool // a TCP/UDP frame of a connection, forwarded
	created bool // the frame opened the connection
	state   conntrack.State
	svc     *Service
	dest    *Dest
	// clean: the frame is one the fast path could have forwarded itself
	// (complete checksum, no IP options): its sender's frames will be too.
	clean bool
}

// considerOffload offloads the connection of the frame forward just sent,
// when the fast path can carry it: established TCP or UDP, both its ports
// on the fast path, not offloaded yet. It runs on the worker: it queues a
// request and marks the connection, no system call.
func (f *forwarder) considerOffload() {
	cand := &f.cand
	if !cand.ok || f.offload == nil || f.conn.Cached || !cand.clean {
		return
	}
	c := &f.conn
	// TCP once established; UDP from its second frame on: a datagram
	// that opens a flow may be its only one (DNS), and offloading what
	// never sends again would only cost.
	if c.Orig.Proto == protoTCP && cand.state != conntrack.Established || c.Orig.Proto == protoUDP && cand.created {
		return
	}
	svc, d := cand.svc, cand.dest
	if svc == nil || d == nil || svc.noFastPath || d.Draining || d.Weight == 0 {
		return
	}
	mac, out, ok := d.hop.load()
	in := int(c.Value.InPort)
	if !ok || out >= len(f.ports) || in >= len(f.ports) || !f.fastPorts[out].Load() || !f.fastPorts[in].Load() {
		return
	}
	method := Method(c.Value.Flags & methodMask)
	req := f.offload.next()
	if req == nil {
		return
	}
	*req = offloadReq{n: 1}
	ref := c.Ref.Uint64()
	port, back := &f.ports[out], &f.ports[in]
	client := c.Orig.Src()
	virtual := c.Orig.Dst()
	rport := destPort(d, &packet.Meta{DstPort: virtual.Port()})

	fw := &req.flows[0]
	flowKey(&req.keys[0], &c.Orig)
	fw.Ref, fw.Dest, fw.Ifindex = ref, d.ID, uint32(port.Ifindex)
	fw.Smac, fw.Dmac = port.MAC, mac
	switch method {
	case MethodTUN:
		src := port.Addr4
		if d.Addr.Is6() {
			src = port.Addr6
		}
		if !src.IsValid() {
			return
		}
		fw.Flags = xdpprog.FlowTUN
		fw.TunFamily = 4
		if d.Addr.Is6() {
			fw.TunFamily = 6
		}
		fw.Mtu = uint16(min(port.MTU, 0xffff))
		flowAddr(&fw.Tsrc, src)
		flowAddr(&fw.Tdst, d.Addr)
	case MethodNAT, MethodFullNAT:
		fw.Flags = xdpprog.FlowDNAT
		flowAddr(&fw.Daddr, d.Addr)
		fw.Dport = xdpprog.Net16(rport)
		local := client
		if method == MethodFullNAT {
			lip, lport := svc.localAddr(c.Value.Flags)
			if !lip.IsValid() {
				return
			}
			local = netip.AddrPortFrom(lip, lport)
			fw.Flags |= xdpprog.FlowSNAT
			flowAddr(&fw.Saddr, lip)
			fw.Sport = xdpprog.Net16(lport)
		}
		// The reply: from the real server to the client (or local
		// address), back out the port the client came in on.
		rk := conntrack.MakeKey(c.Orig.Proto, d.Addr, rport, local.Addr(), local.Port())
		rv := &req.flows[1]
		flowKey(&req.keys[1], &rk)
		rv.Ref, rv.Dest, rv.Ifindex = ref, d.ID, uint32(back.Ifindex)
		rv.Smac, rv.Dmac = back.MAC, c.Value.PeerMAC
		rv.Flags = xdpprog.FlowSNAT | xdpprog.FlowReply
		flowAddr(&rv.Saddr, virtual.Addr())
		rv.Sport = xdpprog.Net16(virtual.Port())
		if method == MethodFullNAT {
			rv.Flags |= xdpprog.FlowDNAT
			flowAddr(&rv.Daddr, client.Addr())
			rv.Dport = xdpprog.Net16(client.Port())
		}
		req.n = 2
	}
	f.offload.publish()
	f.ct.SetCached(c.Ref, true)
	f.conn.Cached = true
}

// unoffload takes the connection of the frame just seen off the fast path:
// it is closing (FIN or RST seen), so userspace must see its frames.
func (f *forwarder) unoffload() {
	c := &f.conn
	if f.offload == nil || !c.Cached {
		return
	}
	req := f.offload.next()
	if req == nil {
		return // the fold removes it once the connection is gone
	}
	*req = offloadReq{del: true, n: 1}
	flowKey(&req.keys[0], &c.Orig)
	if d := f.cand.dest; d != nil && c.Value.Flags&methodMask != uint32(MethodDR) && c.Value.Flags&methodMask != uint32(MethodTUN) {
		rport := destPort(d, &packet.Meta{DstPort: c.Orig.DstPort})
		local := c.Orig.Src()
		if Method(c.Value.Flags&methodMask) == MethodFullNAT {
			lip, lport := f.cand.svc.localAddr(c.Value.Flags)
			local = netip.AddrPortFrom(lip, lport)
		}
		rk := conntrack.MakeKey(c.Orig.Proto, d.Addr, rport, local.Addr(), local.Port())
		flowKey(&req.keys[1], &rk)
		req.n = 2
	}
	f.offload.publish()
	f.ct.SetCached(c.Ref, false)
	c.Cached = false
}

// fastPath is the engine's side of the fast path: the shared flow table,
// what it has counted so far for each flow, and the counters folded from it
// per real server.
type fastPath struct {
	mu    sync.Mutex // one fold at a time: snaps, keys, vals
	flows *xdpprog.Flows
	stats *WorkerStats // per real server: what the fast path forwarded
	snaps map[xdpprog.FlowKey]flowSnap

	// Counters for operators.
	offloaded, full, stale atomic.Uint64

	keys  []xdpprog.FlowKey
	vals  []xdpprog.Flow
	batch []xdpprog.FlowKey
	bvals []xdpprog.Flow
}

// flowSnap is a flow's counters at the previous fold.
type flowSnap struct {
	ref            uint64
	packets, bytes uint64
	seen           bool // by the fold under way
}

func newFastPath(capacity, maxDests int) (*fastPath, error) {
	flows, err := xdpprog.NewFlows(capacity)
	if err != nil {
		return nil, err
	}
	return &fastPath{
		flows: flows, stats: newWorkerStats(maxDests), snaps: map[xdpprog.FlowKey]flowSnap{},
		keys: make([]xdpprog.FlowKey, 512), vals: make([]xdpprog.Flow, 512),
	}, nil
}

// fastLoop applies the workers' offload requests and folds the flow table
// into the connection table until ctx ends.
func (e *Engine) fastLoop(ctx context.Context) {
	const busy, idle = 2 * time.Millisecond, 20 * time.Millisecond
	tick := time.NewTimer(busy)
	defer tick.Stop()
	fold := time.NewTicker(FoldEvery)
	defer fold.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-fold.C:
			e.fold()
			e.checkFastPorts()
		case <-e.offloadWake:
			e.applyOffloads()
			tick.Reset(busy) // no stale tick since Go 1.23

		case <-tick.C:
			if e.applyOffloads() > 0 {
				tick.Reset(busy)
			} else {
				tick.Reset(idle)
			}
		}
	}
}

// applyOffloads drains every worker's requests into the flow table and
// returns how many there were.
func (e *Engine) applyOffloads() int {
	fp := e.fast
	fp.batch, fp.bvals = fp.batch[:0], fp.bvals[:0]
	n := 0
	for _, w := range e.workers {
		if w.fwd.offload == nil {
			continue
		}
		n += w.fwd.offload.drain(func(r *offloadReq) {
			if r.del {
				// In order: a connection offloaded and closed within
				// one drain must end up deleted.
				e.putFlows()
				if _, err := e.deleteFlows(r.keys[:r.n]); err != nil {
					e.log.Warn("fast path: delete flows", zap.Error(err))
				}
				return
			}
			fp.batch = append(fp.batch, r.keys[:r.n]...)
			fp.bvals = append(fp.bvals, r.flows[:r.n]...)
		})
	}
	e.putFlows()
	return n
}

// putFlows inserts the flows applyOffloads has gathered.
func (e *Engine) putFlows() {
	fp := e.fast
	defer func() { fp.batch, fp.bvals = fp.batch[:0], fp.bvals[:0] }()
	if len(fp.batch) > 0 {
		put, err := fp.flows.Put(fp.batch, fp.bvals)
		fp.offloaded.Add(uint64(put))
		if err != nil {
			if errors.Is(err, xdpprog.ErrFlowsFull) {
				// What did not fit stays in userspace; its connections
				// keep their mark, so they are not asked for again.
				fp.full.Add(uint64(len(fp.batch) - put))
			} else {
				e.log.Warn("fast path: insert flows", zap.Error(err))
			}
		}
	}
}

// monotonicNs reads one of the kernel's monotonic clocks, as BPF programs
// see them: CLOCK_MONOTONIC is bpf_ktime_get_ns's, CLOCK_MONOTONIC_COARSE
// bpf_ktime_get_coarse_ns's.
func monotonicNs(clock int32) uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		return 0
	}
	return uint64(ts.Nano())
}

// fold adds what the fast path forwarded since the last fold to the real
// servers' counters, moves each connection's deadline to its flows'
// last-seen stamp, and removes flows whose connection is gone or is
// another one now (expired, evicted, deleted, replaced).
func (e *Engine) fold() {
	fp := e.fast
	fp.mu.Lock()
	defer fp.mu.Unlock()
	now, kNow := e.ct.Now(), monotonicNs(unix.CLOCK_MONOTONIC_COARSE)
	var stale []xdpprog.FlowKey
	var c conntrack.Conn
	err := fp.flows.Range(fp.keys, fp.vals, func(k *xdpprog.FlowKey, v *xdpprog.Flow) bool {
		ck := connKey(k)
		if !e.ct.Lookup(&ck, &c) || c.Ref.Uint64() != v.Ref {
			fp.count(k, v)
			stale = append(stale, *k)
			return true
		}
		s, dp := fp.count(k, v)
		if dp > 0 {
			seen := now
			if kNow > v.LastNs {
				seen -= int64(kNow - v.LastNs)
			}
			e.ct.Refresh(c.Ref, seen)
		}
		s.seen = true
		fp.snaps[*k] = s
		return true
	})
	if err != nil {
		e.log.Warn("fast path: fold", zap.Error(err))
		return
	}
	for k, s := range fp.snaps {
		if !s.seen {
			delete(fp.snaps, k)
			continue
		}
		s.seen = false
		fp.snaps[k] = s
	}
	if len(stale) > 0 {
		n, err := fp.deleteCounted(stale)
		fp.stale.Add(uint64(n))
		if err != nil {
			e.log.Warn("fast path: delete stale flows", zap.Error(err))
		}
	}
}

// count adds what flow k forwarded since its last snapshot to its real
// server's counters, and returns the snapshot brought up to date (not
// stored) and the packets added. fp.mu is held.
func (fp *fastPath) count(k *xdpprog.FlowKey, v *xdpprog.Flow) (flowSnap, uint64) {
	s := fp.snaps[*k]
	if s.ref != v.Ref || v.Packets < s.packets {
		s = flowSnap{ref: v.Ref}
	}
	dp := v.Packets - s.packets
	if dp > 0 {
		db := v.Bytes - s.bytes
		dc := fp.stats.dest(v.Dest)
		if v.Flags&xdpprog.FlowReply != 0 {
			bump(&dc.outPkts, dp)
			bump(&dc.outBytes, db)
		} else {
			bump(&dc.inPkts, dp)
			bump(&dc.inBytes, db)
		}
	}
	s.packets, s.bytes = v.Packets, v.Bytes
	return s, dp
}

// deleteFlows removes flows from the fast path with what they forwarded
// since the last fold counted first: a connection offloaded and closed
// between two folds (a short HTTP request) would otherwise take its XDP
// packets out of ipvsadm's counters with it. Frames XDP forwards between
// the count and the delete (a closing connection's last, at most) go
// uncounted.
func (e *Engine) deleteFlows(keys []xdpprog.FlowKey) (int, error) {
	fp := e.fast
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.deleteCounted(keys)
}

// deleteCounted is deleteFlows with fp.mu held.
func (fp *fastPath) deleteCounted(keys []xdpprog.FlowKey) (int, error) {
	var v xdpprog.Flow
	for i := range keys {
		if ok, err := fp.flows.Lookup(&keys[i], &v); err == nil && ok {
			fp.count(&keys[i], &v)
		}
		delete(fp.snaps, keys[i])
	}
	return fp.flows.Delete(keys)
}

// dropFlows removes the flows for which drop reports true (called with
// their connection, when it is still there) and clears their connections'
// marks, so that the workers may offload them again. It returns how many
// flows went.
func (e *Engine) dropFlows(drop func(v *xdpprog.Flow) bool) int {
	if e.fast == nil {
		return 0
	}
	fp := e.fast
	var keys []xdpprog.FlowKey
	var c conntrack.Conn
	if err := fp.flows.Range(make([]xdpprog.FlowKey, 256), make([]xdpprog.Flow, 256), func(k *xdpprog.FlowKey, v *xdpprog.Flow) bool {
		if drop(v) {
			keys = append(keys, *k)
			ck := connKey(k)
			if e.ct.Lookup(&ck, &c) && c.Ref.Uint64() == v.Ref {
				e.ct.SetCached(c.Ref, false)
			}
		}
		return true
	}); err != nil {
		e.log.Warn("fast path: scan flows", zap.Error(err))
	}
	n, err := e.deleteFlows(keys)
	if err != nil {
		e.log.Warn("fast path: delete flows", zap.Error(err))
	}
	return n
}

// dropDestFlows takes the real servers ids' connections off the fast path:
// they are removed, drained, quiesced, failing, or their next hop moved.
func (e *Engine) dropDestFlows(ids map[uint32]bool) int {
	if len(ids) == 0 {
		return 0
	}
	return e.dropFlows(func(v *xdpprog.Flow) bool { return ids[v.Dest] })
}

// SetFastPath switches the fast path to mode (on a reload): off, every
// offloaded connection goes back to the workers, its counters folded first;
// on, established connections are offloaded at their next packet.
func (e *Engine) SetFastPath(mode FastPath) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.setFastPath(mode)
}

func (e *Engine) setFastPath(mode FastPath) error {
	e.fastMode = mode
	var errs []error
	any := false
	for p := range e.ports {
		on, note := e.fastCapable(p, mode)
		if on && e.fastPorts[p].Load() {
			any = true
			continue
		}
		if e.fastPorts[p].Load() && !on {
			e.fastPorts[p].Store(false)
		}
		e.fastNote[p] = note
		if on {
			if st, err := driverStats(e.ports[p].Name); err == nil {
				e.fastErrs[p], e.fastSent[p] = xdpTxCounts(st)
			}
			e.fastPorts[p].Store(true)
			any = true
		}
		if err := e.progs[p].SetFastPath(on); err != nil {
			errs = append(errs, err)
		}
	}
	if !any {
		e.fold()
		e.dropFlows(func(*xdpprog.Flow) bool { return true })
	}
	return errors.Join(errs...)
}

// fastCapable says whether port p forwards on the fast path under mode,
// and if not, why.
func (e *Engine) fastCapable(p int, mode FastPath) (bool, string) {
	switch {
	case mode == FastPathOff:
		return false, "off"
	case p >= len(e.modes) || e.modes[p] != xdpprog.ModeDriver:
		return false, "off (XDP in generic mode)"
	case mode == FastPathAuto && driverName(e.ports[p].Name) == "veth":
		return false, "off (auto: on veth, XDP transmits need NAPI on the peer; fast_path = \"xdp\" turns it on)"
	}
	return true, "xdp"
}

// checkFastPorts takes a veth off the fast path when frames XDP sent there
// did not arrive: its peer runs no NAPI (neither GRO nor an XDP program of
// its own), and the kernel dropped them. The connections go back to the
// workers; the loss is what the counters show, a few frames.
func (e *Engine) checkFastPorts() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for p := range e.ports {
		if !e.fastPorts[p].Load() {
			continue
		}
		st, err := driverStats(e.ports[p].Name)
		if err != nil {
			continue
		}
		errs, sent := xdpTxCounts(st)
		dErr, dSent := errs-e.fastErrs[p], sent-e.fastSent[p]
		e.fastErrs[p], e.fastSent[p] = errs, sent
		e.fastTxDrops.Add(dErr)
		// A peer without NAPI takes none; a busy one, whose receive ring
		// was full for a moment, most (a loss TCP recovers from, counted).
		if dErr == 0 || dErr < dSent {
			continue
		}
		n := dErr
		e.fastPorts[p].Store(false)
		_ = e.progs[p].SetFastPath(false)
		ifindex := uint32(e.ports[p].Ifindex)
		e.dropFlows(func(v *xdpprog.Flow) bool { return v.Ifindex == ifindex })
		e.fastNote[p] = fmt.Sprintf("off (%d frames sent by XDP were dropped: the peer runs no NAPI; turn GRO on there, or attach an XDP program)", n)
		msg := e.ports[p].Name + ": fast path " + e.fastNote[p]
		e.warnings = append(e.warnings, msg)
		e.log.Warn(msg)
	}
}
