package xsk

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/internal/xvs"
)

// ZeroCopyMode selects how Bind asks for zero-copy: ZeroCopyAuto tries
// XDP_ZEROCOPY and falls back to XDP_COPY when the driver cannot do it
// (veth, for one); ZeroCopyOn fails unless zero-copy works; ZeroCopyOff
// forces copy mode. The modes are internal/xvs's, which the configuration
// parses.
type ZeroCopyMode = xvs.ZeroCopy

const (
	ZeroCopyAuto = xvs.ZeroCopyAuto
	ZeroCopyOn   = xvs.ZeroCopyOn
	ZeroCopyOff  = xvs.ZeroCopyOff
)

// SocketConfig configures one socket. Zero fields take the defaults.
type SocketConfig struct {
	// Ring sizes in entries, powers of two. Default DefaultRingSize each.
	RxSize, TxSize, FillSize, CompSize int
	// ZeroCopy applies to the socket that registers the UMEM; sockets
	// sharing it inherit its mode and fail if this asks for the other one.
	ZeroCopy ZeroCopyMode
	// DisableNeedWakeup binds without XDP_USE_NEED_WAKEUP. By default the
	// flag is set, so the kernel says through NeedsWakeup when it needs a
	// poll instead of being busy-polled. Like ZeroCopy it is decided by the
	// socket that registers the UMEM.
	DisableNeedWakeup bool
	// BusyPoll, when positive, has the socket's own receive and send
	// calls run the driver's NAPI (SO_PREFER_BUSY_POLL, SO_BUSY_POLL for
	// this long, SO_BUSY_POLL_BUDGET packets a turn, BusyPollBudget or 64)
	// instead of leaving it to softirq on whatever CPU: see BusyPoll.
	BusyPoll       time.Duration
	BusyPollBudget int
}

func (c SocketConfig) withDefaults() (SocketConfig, error) {
	for _, f := range []struct {
		name string
		v    *int
	}{{"rx", &c.RxSize}, {"tx", &c.TxSize}, {"fill", &c.FillSize}, {"completion", &c.CompSize}} {
		if *f.v == 0 {
			*f.v = DefaultRingSize
		}
		if *f.v < 0 || *f.v > 1<<30 || *f.v&(*f.v-1) != 0 {
			return c, fmt.Errorf("%s ring size %d: want a power of two", f.name, *f.v)
		}
	}
	switch c.ZeroCopy {
	case ZeroCopyAuto, ZeroCopyOn, ZeroCopyOff:
	default:
		return c, fmt.Errorf("invalid zero-copy mode %v", c.ZeroCopy)
	}
	return c, nil
}

// Stats are the kernel's XDP_STATISTICS counters of a socket.
type Stats struct {
	RxDropped            uint64 // dropped for other reasons, such as a frame too large for the chunk
	RxInvalidDescs       uint64 // invalid descriptors on the fill ring
	TxInvalidDescs       uint64 // invalid descriptors on the TX ring; their frames never complete
	RxRingFull           uint64 // dropped because the RX ring was full
	RxFillRingEmptyDescs uint64 // times the fill ring was empty when a frame arrived
	TxRingEmptyDescs     uint64 // times the kernel found the TX ring empty
}

// Socket is an AF_XDP socket bound to one queue of one interface, with its
// own RX, TX, fill and completion rings over its UMEM's frames.
type Socket struct {
	umem    *UMEM
	fd      int
	slot    int
	owner   uint8 // ownerKernel + slot
	ifindex int
	queue   int

	zeroCopy   bool
	needWakeup bool
	alwaysKick bool
	closed     bool

	outstanding int // frames on the TX ring or in transmission, not completed yet

	rx   descRing
	tx   descRing
	fill addrRing
	comp addrRing
}

// FD returns the socket's file descriptor, for the XSKMAP and poll.
func (s *Socket) FD() int { return s.fd }

// ZeroCopy reports whether the socket ended up in zero-copy mode.
func (s *Socket) ZeroCopy() bool { return s.zeroCopy }

// NeedWakeup reports whether the socket was bound with XDP_USE_NEED_WAKEUP
// (asked for, and accepted by the kernel).
func (s *Socket) NeedWakeup() bool { return s.needWakeup }

// Ifindex returns the interface index the socket is bound to.
func (s *Socket) Ifindex() int { return s.ifindex }

// Queue returns the queue the socket is bound to.
func (s *Socket) Queue() int { return s.queue }

// Outstanding returns how many transmitted frames have not come back
// through Complete yet. While it is not zero the worker keeps calling Kick
// (one kick transmits at most one kernel budget, and a full device queue
// leaves frames on the ring); in copy mode Kick makes no system call once
// the kernel has taken every frame.
func (s *Socket) Outstanding() int { return s.outstanding }

// mapRings sizes and maps the four rings. The order follows what the
// kernel accepts: sizes first, then XDP_MMAP_OFFSETS, then mmap.
func (s *Socket) mapRings(cfg SocketConfig) error {
	for _, o := range []struct {
		opt, size int
		name      string
	}{
		{unix.XDP_RX_RING, cfg.RxSize, "XDP_RX_RING"},
		{unix.XDP_TX_RING, cfg.TxSize, "XDP_TX_RING"},
		{unix.XDP_UMEM_FILL_RING, cfg.FillSize, "XDP_UMEM_FILL_RING"},
		{unix.XDP_UMEM_COMPLETION_RING, cfg.CompSize, "XDP_UMEM_COMPLETION_RING"},
	} {
		if err := unix.SetsockoptInt(s.fd, unix.SOL_XDP, o.opt, o.size); err != nil {
			return fmt.Errorf("%s %d: %w", o.name, o.size, err)
		}
	}
	// Let one sendto drain a whole TX ring in copy mode instead of 32
	// frames (Linux 6.17+; older kernels say ENOPROTOOPT and keep 32).
	if cfg.TxSize >= 32 {
		_ = unix.SetsockoptInt(s.fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, cfg.TxSize)
	}
	off, err := mmapOffsets(s.fd)
	if err != nil {
		return fmt.Errorf("XDP_MMAP_OFFSETS: %w", err)
	}
	rx, err := mapRing(s.fd, unix.XDP_PGOFF_RX_RING, off.Rx, uint32(cfg.RxSize), descSize)
	if err != nil {
		return err
	}
	initDescRing(&s.rx, rx, off.Rx, uint32(cfg.RxSize), false)
	s.rx.mem = rx
	tx, err := mapRing(s.fd, unix.XDP_PGOFF_TX_RING, off.Tx, uint32(cfg.TxSize), descSize)
	if err != nil {
		return err
	}
	initDescRing(&s.tx, tx, off.Tx, uint32(cfg.TxSize), true)
	s.tx.mem = tx
	fill, err := mapRing(s.fd, unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, uint32(cfg.FillSize), addrSize)
	if err != nil {
		return err
	}
	initAddrRing(&s.fill, fill, off.Fr, uint32(cfg.FillSize), true)
	s.fill.mem = fill
	comp, err := mapRing(s.fd, unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, uint32(cfg.CompSize), addrSize)
	if err != nil {
		return err
	}
	initAddrRing(&s.comp, comp, off.Cr, uint32(cfg.CompSize), false)
	s.comp.mem = comp
	return nil
}

// bindOwner binds the socket holding the UMEM registration, settling the
// copy mode and need_wakeup for every socket that will share it.
func (s *Socket) bindOwner(cfg SocketConfig) error {
	var modes []uint16
	switch cfg.ZeroCopy {
	case ZeroCopyAuto:
		modes = []uint16{unix.XDP_ZEROCOPY, unix.XDP_COPY}
	case ZeroCopyOn:
		modes = []uint16{unix.XDP_ZEROCOPY}
	case ZeroCopyOff:
		modes = []uint16{unix.XDP_COPY}
	}
	var zcErr, err error
	for _, mode := range modes {
		wake := !cfg.DisableNeedWakeup
		err = s.bindFlags(mode, wake)
		if errors.Is(err, unix.EINVAL) && wake {
			// Kernels that predate need_wakeup reject the flag.
			wake = false
			err = s.bindFlags(mode, wake)
		}
		if err == nil {
			s.needWakeup = wake
			break
		}
		if mode == unix.XDP_ZEROCOPY {
			zcErr = err
		}
	}
	if err != nil {
		if zcErr != nil && zcErr != err {
			return fmt.Errorf("bind: %w (zero-copy: %v)", err, zcErr)
		}
		return fmt.Errorf("bind: %w", err)
	}
	// Ask the kernel rather than trusting the flags: it is the authority on
	// the mode the pool ended up in.
	var opts struct{ flags uint32 }
	if _, err := getsockopt(s.fd, unix.SOL_XDP, unix.XDP_OPTIONS, unsafe.Pointer(&opts), unsafe.Sizeof(opts)); err != nil {
		return fmt.Errorf("XDP_OPTIONS: %w", err)
	}
	s.zeroCopy = opts.flags&unix.XDP_OPTIONS_ZEROCOPY != 0
	return nil
}

func (s *Socket) bindFlags(mode uint16, wake bool) error {
	flags := mode
	if wake {
		flags |= unix.XDP_USE_NEED_WAKEUP
	}
	return s.umem.bindAddr(s.fd, &unix.SockaddrXDP{Flags: flags, Ifindex: uint32(s.ifindex), QueueID: uint32(s.queue)})
}

// bindShared binds with XDP_SHARED_UMEM to owner. The kernel forbids any
// mode flag here (EINVAL): the mode comes from the UMEM's first socket.
func (s *Socket) bindShared(owner *Socket) error {
	err := s.umem.bindAddr(s.fd, &unix.SockaddrXDP{
		Flags:        unix.XDP_SHARED_UMEM,
		Ifindex:      uint32(s.ifindex),
		QueueID:      uint32(s.queue),
		SharedUmemFD: uint32(owner.fd),
	})
	if err != nil {
		return fmt.Errorf("bind with XDP_SHARED_UMEM to fd %d: %w", owner.fd, err)
	}
	return nil
}

// Receive moves up to len(descs) received frames into descs and returns how
// many. The application owns them until it transmits or frees them. Before
// that it refills the fill ring from the UMEM's free stack.
func (s *Socket) Receive(descs []Desc) int {
	if s.closed {
		return 0
	}
	s.refill()
	idx, n := s.rx.peek(uint32(min(len(descs), math.MaxUint32)))
	if n == 0 {
		return 0
	}
	u := s.umem
	for i := range n {
		d := &s.rx.descs[(idx+i)&s.rx.mask]
		descs[i] = Desc{Addr: d.Addr, Len: d.Len}
		u.owner[d.Addr>>u.frameShift] = ownerApp
	}
	s.rx.release()
	return int(n)
}

// refill moves as many free frames onto the fill ring as fit.
func (s *Socket) refill() {
	u := s.umem
	top := len(u.free)
	if top == 0 {
		return
	}
	idx, n := s.fill.reserve(uint32(min(top, int(s.fill.size))))
	if n == 0 {
		return
	}
	for i := range n {
		f := u.free[top-1-int(i)]
		u.owner[f] = s.owner
		s.fill.addrs[(idx+i)&s.fill.mask] = uint64(f) << u.frameShift
	}
	u.free = u.free[:top-int(n)]
	s.fill.submit()
}

// Transmit queues descs on the TX ring and wakes the kernel if it needs
// it. It returns how many were queued; the caller still owns (and frees or
// retries) the rest. It stops early at a full ring or at a descriptor that
// is not a frame the application holds or that does not fit its chunk
// (the kernel would drop such a frame without completing it).
func (s *Socket) Transmit(descs []Desc) int {
	if s.closed || len(descs) == 0 {
		return 0
	}
	u := s.umem
	idx, n := s.tx.reserve(uint32(min(len(descs), math.MaxUint32)))
	for i := range n {
		d := descs[i]
		f := d.Addr >> u.frameShift
		if f >= uint64(len(u.owner)) || u.owner[f] != ownerApp ||
			d.Len == 0 || d.Addr&u.frameMask+uint64(d.Len) > u.frameMask+1 {
			s.tx.cachedProd -= n - i // unreserve the slots left
			n = i
			break
		}
		e := &s.tx.descs[(idx+i)&s.tx.mask]
		e.Addr, e.Len, e.Options = d.Addr, d.Len, 0
		u.owner[f] = s.owner
	}
	if n > 0 {
		s.tx.submit()
		s.outstanding += int(n)
	}
	// Kick for new frames, and for old ones a full ring kept back.
	if (n > 0 || s.tx.pending() > 0) && (s.alwaysKick || s.tx.needWakeup()) {
		sendtoKick(s.fd)
	}
	return int(n)
}

// Complete moves the frames the kernel has finished transmitting from the
// completion ring to the UMEM's free stack and returns how many.
func (s *Socket) Complete() int {
	if s.closed {
		return 0
	}
	idx, n := s.comp.peek(s.comp.size)
	if n == 0 {
		return 0
	}
	u := s.umem
	for i := range n {
		f := s.comp.addrs[(idx+i)&s.comp.mask] >> u.frameShift
		if f < uint64(len(u.owner)) && u.owner[f] == s.owner {
			u.push(uint32(f))
		}
	}
	s.comp.release()
	s.outstanding -= int(n)
	return int(n)
}

// Kick makes the kernel process the TX ring (sendto with MSG_DONTWAIT), for
// frames a previous kick left there (a kick sends at most one budget; the
// device queue may have been full). In copy mode it skips the system call
// when the kernel has taken every queued frame: completions then need no
// wakeup. In zero-copy mode it always kicks, as some drivers reap
// completions only when woken.
func (s *Socket) Kick() {
	if s.closed || (!s.zeroCopy && s.tx.pending() == 0) {
		return
	}
	sendtoKick(s.fd)
}

// BusyPoll asks the kernel, with a non-blocking recvfrom, to run the NAPI
// of the socket's queue now, in this thread: with SocketConfig.BusyPoll set
// that is how received frames reach the RX ring without a softirq (and the
// wake-up and CPU hop that come with one). It returns at once either way.
func (s *Socket) BusyPoll() {
	if s.closed {
		return
	}
	_, _, _ = unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
}

// NAPIID returns the NAPI instance the socket's frames last came from
// (SO_INCOMING_NAPI_ID): what busy polling runs. 0 until a frame arrived,
// or when the driver has none.
func (s *Socket) NAPIID() int {
	v, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_INCOMING_NAPI_ID)
	if err != nil {
		return 0
	}
	return v
}

// NeedsWakeup reports the fill ring's need_wakeup flag: the kernel will not
// receive into this socket until it is woken, so the worker should Poll
// rather than spin. Always false without need_wakeup.
func (s *Socket) NeedsWakeup() bool {
	return !s.closed && s.needWakeup && s.fill.needWakeup()
}

// Stats returns the kernel's counters for the socket.
func (s *Socket) Stats() (Stats, error) {
	if s.closed {
		return Stats{}, fmt.Errorf("xsk stats: %w", unix.EBADF)
	}
	var st unix.XDPStatistics
	n, err := getsockopt(s.fd, unix.SOL_XDP, unix.XDP_STATISTICS, unsafe.Pointer(&st), unsafe.Sizeof(st))
	if err != nil {
		return Stats{}, fmt.Errorf("xsk stats ifindex %d queue %d: %w", s.ifindex, s.queue, err)
	}
	if n < unsafe.Sizeof(st) {
		// Before Linux 5.9 only the first three counters exist, with
		// rx_ring_full folded into rx_dropped.
		st.Rx_ring_full, st.Rx_fill_ring_empty_descs, st.Tx_ring_empty_descs = 0, 0, 0
	}
	return Stats{
		RxDropped:            st.Rx_dropped,
		RxInvalidDescs:       st.Rx_invalid_descs,
		TxInvalidDescs:       st.Tx_invalid_descs,
		RxRingFull:           st.Rx_ring_full,
		RxFillRingEmptyDescs: st.Rx_fill_ring_empty_descs,
		TxRingEmptyDescs:     st.Tx_ring_empty_descs,
	}, nil
}

// Close gives the kernel a moment to finish outstanding transmissions,
// unmaps the rings, closes the socket and returns to the free stack every
// frame the kernel held for it. Frames the application holds stay its own.
// Closing twice is a no-op.
func (s *Socket) Close() error {
	if s.closed {
		return nil
	}
	for i := 0; s.outstanding > 0 && i < 20; i++ {
		sendtoKick(s.fd)
		time.Sleep(500 * time.Microsecond)
		s.Complete()
	}
	err := s.teardown()
	u := s.umem
	u.socks[s.slot] = nil
	// Closing the last reference released the socket: the device no longer
	// receives into its fill ring's frames, and copy-mode TX copied its own.
	u.reclaim(s.slot)
	return err
}

// teardown unmaps the rings and closes the descriptor.
func (s *Socket) teardown() error {
	var errs []error
	for _, r := range []*ring{&s.rx.ring, &s.tx.ring, &s.fill.ring, &s.comp.ring} {
		if err := r.unmap(); err != nil {
			errs = append(errs, fmt.Errorf("munmap ring: %w", err))
		}
	}
	s.rx.descs, s.tx.descs, s.fill.addrs, s.comp.addrs = nil, nil, nil, nil
	if err := unix.Close(s.fd); err != nil {
		errs = append(errs, fmt.Errorf("close xsk: %w", err))
	}
	s.closed = true
	return errors.Join(errs...)
}

// Poll waits until one of socks has received frames or timeout passes and
// returns how many are readable. A negative timeout waits forever. Closed
// sockets are skipped. Being polled also wakes a socket whose kernel side
// needs a wakeup (NeedsWakeup), so a zero timeout is a non-blocking wakeup.
func Poll(socks []*Socket, timeout time.Duration) (int, error) {
	var buf [16]unix.PollFd
	fds := buf[:0]
	if len(socks) > len(buf) {
		fds = make([]unix.PollFd, 0, len(socks))
	}
	for _, s := range socks {
		fd := int32(-1) // ignored by poll
		if !s.closed {
			fd = int32(s.fd)
		}
		fds = append(fds, unix.PollFd{Fd: fd, Events: unix.POLLIN})
	}
	var ts *unix.Timespec
	var t unix.Timespec
	if timeout >= 0 {
		t = unix.NsecToTimespec(int64(timeout))
		ts = &t
	}
	n, err := unix.Ppoll(fds, ts, nil)
	if err == unix.EINTR {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("poll xsk: %w", err)
	}
	return n, nil
}
