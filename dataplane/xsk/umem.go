package xsk

import (
	"cmp"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/internal/xvs"
)

// Defaults for the zero values of UMEMConfig and SocketConfig.
const (
	DefaultFrameSize = 2048
	DefaultNumFrames = 4096
	DefaultHeadroom  = 256
	DefaultRingSize  = xvs.DefaultRingSize
)

// MinFrames is the smallest UMEM for sockets fill rings of fillRing entries
// each (xvs.MinFrames, the rule the configuration checks too).
func MinFrames(fillRing, sockets int) int { return xvs.MinFrames(fillRing, sockets) }

// MaxFrameSize is the largest chunk aligned mode takes with 4 KiB pages.
const MaxFrameSize = 4096

const (
	minFrameSize = 2048    // XDP_UMEM_MIN_CHUNK_SIZE
	maxNumFrames = 1 << 24 // frame indexes are uint32; 32 GiB of 2 KiB frames is plenty
)

// ErrClosed is returned when a closed UMEM is used.
var ErrClosed = errors.New("xsk: UMEM closed")

// UMEMConfig sizes a UMEM. Zero fields take the defaults.
type UMEMConfig struct {
	// FrameSize is the size of one chunk: a power of two of at least 2048
	// (aligned mode; the kernel also caps it, at the page size on most
	// kernels). Default 2048.
	FrameSize int
	// NumFrames is the number of chunks. It should cover every fill ring of
	// the sockets sharing the UMEM plus the frames in flight between RX and
	// TX completion. Default 4096.
	NumFrames int
	// Headroom is the XDP_UMEM_REG headroom: bytes the kernel leaves free
	// at the start of every chunk before received data (on top of its own
	// XDP_PACKET_HEADROOM), and the offset Alloc places data at. Room for
	// encapsulation headers. Default 256; a negative value means none.
	Headroom int
}

// DataRoom returns how many bytes of a received frame one chunk of c holds:
// the chunk less the kernel's XDP_PACKET_HEADROOM and c's Headroom (the
// defaults filled in). The kernel drops longer frames (rx_dropped).
func (c UMEMConfig) DataRoom() int {
	d, err := c.withDefaults()
	if err != nil {
		return 0
	}
	return d.FrameSize - unix.XDP_PACKET_HEADROOM - d.Headroom
}

func (c UMEMConfig) withDefaults() (UMEMConfig, error) {
	if c.FrameSize == 0 {
		c.FrameSize = DefaultFrameSize
	}
	if c.NumFrames == 0 {
		c.NumFrames = DefaultNumFrames
	}
	switch {
	case c.Headroom == 0:
		c.Headroom = DefaultHeadroom
	case c.Headroom < 0:
		c.Headroom = 0
	}
	if c.FrameSize < minFrameSize || c.FrameSize&(c.FrameSize-1) != 0 {
		return c, fmt.Errorf("frame size %d: want a power of two >= %d", c.FrameSize, minFrameSize)
	}
	if c.NumFrames < 1 || c.NumFrames > maxNumFrames {
		return c, fmt.Errorf("frame count %d: want 1 to %d", c.NumFrames, maxNumFrames)
	}
	// The kernel rejects a headroom that leaves no room after its own
	// XDP_PACKET_HEADROOM; demand room for at least a minimal frame.
	if room := c.FrameSize - unix.XDP_PACKET_HEADROOM - c.Headroom; room < 64 {
		return c, fmt.Errorf("headroom %d: leaves %d bytes for data in a %d-byte frame", c.Headroom, room, c.FrameSize)
	}
	return c, nil
}

// Desc is a frame in the UMEM: Addr is the UMEM offset of the first packet
// byte, which may lie past the start of its chunk (headroom), and Len the
// packet length.
type Desc struct {
	Addr uint64
	Len  uint32
}

// Frame owners, one byte per frame. Every frame has exactly one owner; the
// table is what lets a closing socket take back the frames the kernel held
// for it, and what keeps a double Free from putting a frame on two rings.
const (
	ownerFree   uint8 = iota // on the free stack
	ownerApp                 // received, allocated, or otherwise held by the application
	ownerKernel              // ownerKernel+slot: on socket slot's fill or TX ring, or in the kernel
)

const maxSockets = 256 - int(ownerKernel)

// Bind retries EBUSY, which the kernel returns while a socket closed on the
// same queue is still being released (RCU and a work queue).
const (
	busyRetries   = 10
	busyBackoff   = time.Millisecond
	busyBackoffMx = 200 * time.Millisecond
)

// UMEM is an AF_XDP packet buffer area shared by the sockets of one worker,
// with the stack of free frames that feeds their fill rings.
//
// A UMEM and its sockets are not safe for concurrent use: the worker that
// owns them is the only goroutine that may call their methods.
type UMEM struct {
	area       []byte
	frameShift uint
	frameMask  uint64
	headroom   uint64

	free  []uint32 // stack of free frame indexes; capacity is the frame count
	owner []uint8  // owner of each frame, see ownerFree

	// regFD is a socket holding an XDP_UMEM_REG registration of area that
	// is not bound yet; -1 if there is none. The first socket bound takes it
	// over; once every socket is closed the registration is gone with them
	// and the next Bind registers again.
	regFD int
	// zeroCopy and needWakeup are the modes of the registration's first
	// socket, which every XDP_SHARED_UMEM socket inherits from the kernel.
	zeroCopy   bool
	needWakeup bool

	socks []*Socket // open sockets by slot; nil where free

	closed bool

	busyWaits int // EBUSY retries taken by Bind, for tests
}

// NewUMEM maps the packet area and registers it with a new AF_XDP socket,
// which the first Bind uses. The socket is created in the network namespace
// of the calling thread, as are the sockets of later Binds.
func NewUMEM(cfg UMEMConfig) (*UMEM, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("new UMEM: %w", err)
	}
	size := cfg.FrameSize * cfg.NumFrames
	area, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("new UMEM: mmap %d bytes: %w", size, err)
	}
	u := newUMEM(cfg, area)
	if u.regFD, err = u.register(); err != nil {
		_ = unix.Munmap(area)
		return nil, fmt.Errorf("new UMEM: %w", err)
	}
	return u, nil
}

// newUMEM sets up the bookkeeping for area without touching the kernel.
func newUMEM(cfg UMEMConfig, area []byte) *UMEM {
	u := &UMEM{
		area:      area,
		frameMask: uint64(cfg.FrameSize - 1),
		headroom:  uint64(cfg.Headroom),
		free:      make([]uint32, cfg.NumFrames),
		owner:     make([]uint8, cfg.NumFrames),
		regFD:     -1,
	}
	for cfg.FrameSize>>u.frameShift > 1 {
		u.frameShift++
	}
	// Highest index on top, so allocation starts at the front of the area.
	for i := range u.free {
		u.free[i] = uint32(cfg.NumFrames - 1 - i)
	}
	return u
}

// register opens an AF_XDP socket and registers the area with it.
func (u *UMEM) register() (int, error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket(AF_XDP): %w", err)
	}
	reg := unix.XDPUmemReg{
		Addr:     uint64(uintptr(unsafe.Pointer(unsafe.SliceData(u.area)))),
		Len:      uint64(len(u.area)),
		Size:     uint32(u.frameMask + 1),
		Headroom: uint32(u.headroom),
	}
	if err := setsockopt(fd, unix.SOL_XDP, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("XDP_UMEM_REG (%d frames of %d bytes, headroom %d): %w",
			len(u.owner), reg.Size, reg.Headroom, err)
	}
	return fd, nil
}

// FrameSize returns the size of one chunk.
func (u *UMEM) FrameSize() int { return int(u.frameMask + 1) }

// Frame returns the bytes of d in the UMEM, without copying. Its capacity
// reaches the end of d's chunk, so a packet may grow in place up to there.
// d must describe a frame of this UMEM; a descriptor past its chunk panics.
func (u *UMEM) Frame(d Desc) []byte {
	end := (d.Addr | u.frameMask) + 1
	return u.area[d.Addr : d.Addr+uint64(d.Len) : end]
}

// Headroom returns how many bytes of d's chunk precede d.Addr: room to
// prepend headers with Desc{Addr: d.Addr - n, Len: d.Len + n}.
func (u *UMEM) Headroom(d Desc) int { return int(d.Addr & u.frameMask) }

// Alloc takes a frame off the free stack, for a packet the application
// builds itself. Its Addr is the chunk start plus the configured headroom
// and its Len 0. It reports false when no frame is free.
func (u *UMEM) Alloc() (Desc, bool) {
	n := len(u.free)
	if n == 0 || u.closed {
		return Desc{}, false
	}
	f := u.free[n-1]
	u.free = u.free[:n-1]
	u.owner[f] = ownerApp
	return Desc{Addr: uint64(f)<<u.frameShift + u.headroom}, true
}

// Free returns the frame holding addr (any address inside its chunk) to the
// free stack. Frames the application does not hold, such as frames already
// free or queued to the kernel, are ignored, so a double free cannot put
// one frame on two rings.
func (u *UMEM) Free(addr uint64) {
	f := addr >> u.frameShift
	if f < uint64(len(u.owner)) && u.owner[f] == ownerApp && !u.closed {
		u.push(uint32(f))
	}
}

func (u *UMEM) push(f uint32) {
	u.owner[f] = ownerFree
	u.free = append(u.free, f) // never grows: a frame is pushed only once
}

// reclaim returns to the free stack every frame owned by the kernel on
// behalf of socket slot, once the kernel has let go of them.
func (u *UMEM) reclaim(slot int) {
	o := ownerKernel + uint8(slot)
	for f, fo := range u.owner {
		if fo == o {
			u.push(uint32(f))
		}
	}
}

// Bind opens a socket on queue of interface ifindex over this UMEM. The
// first socket (and the first after all were closed) holds the UMEM
// registration and decides copy or zero-copy mode and need_wakeup; later
// ones bind with XDP_SHARED_UMEM to it, with their own fill and completion
// rings, and inherit its modes. Each socket needs a distinct (ifindex,
// queue). Bind retries EBUSY from a socket closed there just before.
func (u *UMEM) Bind(ifindex, queue int, cfg SocketConfig) (*Socket, error) {
	s, err := u.bind(ifindex, queue, cfg)
	if err != nil {
		return nil, fmt.Errorf("bind ifindex %d queue %d: %w", ifindex, queue, err)
	}
	return s, nil
}

func (u *UMEM) bind(ifindex, queue int, cfg SocketConfig) (*Socket, error) {
	if u.closed {
		return nil, ErrClosed
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if ifindex <= 0 || queue < 0 || uint64(queue) > uint64(^uint32(0)) {
		return nil, fmt.Errorf("invalid ifindex %d or queue %d", ifindex, queue)
	}
	var owner *Socket
	for _, o := range u.socks {
		if o == nil {
			continue
		}
		if o.ifindex == ifindex && o.queue == queue {
			return nil, fmt.Errorf("socket already open there: %w", unix.EBUSY)
		}
		if owner == nil {
			owner = o
		}
	}
	if owner != nil {
		switch {
		case cfg.ZeroCopy == ZeroCopyOn && !u.zeroCopy:
			return nil, fmt.Errorf("zero-copy requested but the shared UMEM is in copy mode: %w", unix.EOPNOTSUPP)
		case cfg.ZeroCopy == ZeroCopyOff && u.zeroCopy:
			return nil, fmt.Errorf("copy mode requested but the shared UMEM is in zero-copy mode: %w", unix.EINVAL)
		}
	}
	slot := -1
	for i, o := range u.socks {
		if o == nil {
			slot = i
			break
		}
	}
	if slot < 0 {
		if len(u.socks) == maxSockets {
			return nil, fmt.Errorf("UMEM already has %d sockets", maxSockets)
		}
		slot = len(u.socks)
		u.socks = append(u.socks, nil)
	}

	var fd int
	if owner == nil {
		if u.regFD < 0 {
			if u.regFD, err = u.register(); err != nil {
				return nil, err
			}
		}
		// The registration socket becomes this socket, whatever happens:
		// after a failed bind its ring sizes are set and cannot be changed.
		fd, u.regFD = u.regFD, -1
	} else {
		fd, err = unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("socket(AF_XDP): %w", err)
		}
	}
	s := &Socket{umem: u, fd: fd, slot: slot, owner: ownerKernel + uint8(slot), ifindex: ifindex, queue: queue}
	if err := s.mapRings(cfg); err != nil {
		s.teardown()
		return nil, err
	}
	if err := setBusyPoll(fd, cfg); err != nil {
		s.teardown()
		return nil, err
	}
	// The kernel wants frames on the fill ring before packets arrive; a
	// socket that finds the free stack empty is filled by Receive later.
	s.refill()
	if owner == nil {
		err = s.bindOwner(cfg)
	} else {
		err = s.bindShared(owner)
	}
	if err != nil {
		s.teardown()
		u.reclaim(slot)
		return nil, err
	}
	if owner == nil {
		u.zeroCopy, u.needWakeup = s.zeroCopy, s.needWakeup
	} else {
		s.zeroCopy, s.needWakeup = u.zeroCopy, u.needWakeup
	}
	// Copy-mode TX happens only inside sendto, and so does TX without
	// need_wakeup, whose flag the kernel then never clears.
	s.alwaysKick = !s.zeroCopy || !s.needWakeup
	u.socks[slot] = s
	return s, nil
}

// setBusyPoll sets the busy-polling options of SocketConfig.BusyPoll.
func setBusyPoll(fd int, cfg SocketConfig) error {
	if cfg.BusyPoll <= 0 {
		return nil
	}
	budget := cmp.Or(cfg.BusyPollBudget, defaultBusyPollBudget)
	for _, o := range []struct {
		name string
		opt  int
		v    int
	}{
		{"SO_PREFER_BUSY_POLL", unix.SO_PREFER_BUSY_POLL, 1},
		{"SO_BUSY_POLL", unix.SO_BUSY_POLL, int(max(cfg.BusyPoll.Microseconds(), 1))},
		{"SO_BUSY_POLL_BUDGET", unix.SO_BUSY_POLL_BUDGET, budget},
	} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o.opt, o.v); err != nil {
			return fmt.Errorf("busy poll: %s=%d: %w", o.name, o.v, err)
		}
	}
	return nil
}

// defaultBusyPollBudget is what DPDK's AF_XDP driver uses.
const defaultBusyPollBudget = 64

// bindAddr binds fd, retrying while the queue is still held by a socket
// being released.
func (u *UMEM) bindAddr(fd int, sa *unix.SockaddrXDP) error {
	delay := busyBackoff
	for i := 0; ; i++ {
		err := unix.Bind(fd, sa)
		if err != unix.EBUSY || i == busyRetries {
			return err
		}
		u.busyWaits++
		time.Sleep(delay)
		delay = min(2*delay, busyBackoffMx)
	}
}

// Close closes the sockets not closed yet and unmaps the area.
func (u *UMEM) Close() error {
	if u.closed {
		return nil
	}
	var errs []error
	for _, s := range u.socks {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if u.regFD >= 0 {
		errs = append(errs, unix.Close(u.regFD))
		u.regFD = -1
	}
	// Unmapping while the kernel still finishes releasing sockets is safe:
	// the registration pinned the pages and the kernel reaches them through
	// its own mapping.
	if u.area != nil {
		if err := unix.Munmap(u.area); err != nil {
			errs = append(errs, fmt.Errorf("munmap UMEM: %w", err))
		}
	}
	u.area = nil
	u.free = u.free[:0]
	u.closed = true
	return errors.Join(errs...)
}
