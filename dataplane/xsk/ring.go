package xsk

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring is user space's view of one single-producer, single-consumer AF_XDP
// ring shared with the kernel. The producer and consumer indexes run freely
// and wrap at 2^32; an entry's slot is index & mask.
//
// Like libbpf's xsk_ring_prod/xsk_ring_cons, the side user space owns is kept
// in a cached copy and published once per batch, and the kernel's side is
// re-read only when the cached copy cannot satisfy the request, so a batch
// costs one atomic load and one atomic store per ring instead of one per
// frame. The atomics are what order descriptor accesses against the kernel's
// smp_load_acquire/smp_store_release on the same words.
type ring struct {
	producer *uint32
	consumer *uint32
	flags    *uint32
	mask     uint32
	size     uint32

	// For a ring user space produces into (fill, TX), cachedCons is the
	// kernel's consumer index plus size, so cachedCons-cachedProd is the free
	// room. For a ring user space consumes (RX, completion), cachedProd is
	// the last producer index read.
	cachedProd uint32
	cachedCons uint32

	mem []byte // the mapping, for munmap; nil for rings over Go memory in tests
}

// Entry sizes, for the length of a ring mapping.
const (
	addrSize = unsafe.Sizeof(uint64(0))
	descSize = unsafe.Sizeof(unix.XDPDesc{})
)

// initRing points r at a ring laid out in mem by off.
func initRing(r *ring, mem []byte, off unix.XDPRingOffset, size uint32, producerSide bool) {
	base := unsafe.Pointer(unsafe.SliceData(mem))
	r.producer = (*uint32)(unsafe.Add(base, off.Producer))
	r.consumer = (*uint32)(unsafe.Add(base, off.Consumer))
	r.flags = (*uint32)(unsafe.Add(base, off.Flags))
	r.mask = size - 1
	r.size = size
	r.cachedProd = atomic.LoadUint32(r.producer)
	r.cachedCons = atomic.LoadUint32(r.consumer)
	if producerSide {
		r.cachedCons += size
	}
}

// reserve claims up to n free slots for producing and returns the first
// index and how many were claimed. Nothing is visible to the kernel until
// submit.
func (r *ring) reserve(n uint32) (idx, got uint32) {
	free := r.cachedCons - r.cachedProd
	if free < n {
		r.cachedCons = atomic.LoadUint32(r.consumer) + r.size
		free = r.cachedCons - r.cachedProd
	}
	n = min(n, free)
	idx = r.cachedProd
	r.cachedProd += n
	return idx, n
}

// submit publishes every reserved slot to the kernel.
func (r *ring) submit() {
	atomic.StoreUint32(r.producer, r.cachedProd)
}

// peek claims up to n filled slots for consuming and returns the first
// index and how many were claimed. The kernel may not reuse them until
// release.
func (r *ring) peek(n uint32) (idx, got uint32) {
	avail := r.cachedProd - r.cachedCons
	if avail < n {
		r.cachedProd = atomic.LoadUint32(r.producer)
		avail = r.cachedProd - r.cachedCons
	}
	n = min(n, avail)
	idx = r.cachedCons
	r.cachedCons += n
	return idx, n
}

// release hands every peeked slot back to the kernel.
func (r *ring) release() {
	atomic.StoreUint32(r.consumer, r.cachedCons)
}

// pending is how many produced entries the kernel has not consumed yet.
func (r *ring) pending() uint32 {
	return r.cachedProd - atomic.LoadUint32(r.consumer)
}

func (r *ring) needWakeup() bool {
	return atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0
}

// addrRing is a fill or completion ring: entries are UMEM offsets.
type addrRing struct {
	ring
	addrs []uint64
}

// descRing is an RX or TX ring: entries are descriptors.
type descRing struct {
	ring
	descs []unix.XDPDesc
}

func initAddrRing(r *addrRing, mem []byte, off unix.XDPRingOffset, size uint32, producerSide bool) {
	initRing(&r.ring, mem, off, size, producerSide)
	r.addrs = unsafe.Slice((*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(mem)), off.Desc)), size)
}

func initDescRing(r *descRing, mem []byte, off unix.XDPRingOffset, size uint32, producerSide bool) {
	initRing(&r.ring, mem, off, size, producerSide)
	r.descs = unsafe.Slice((*unix.XDPDesc)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(mem)), off.Desc)), size)
}

// mapRing maps the ring at pgoff of socket fd, large enough for size
// entries of entrySize bytes after the descriptor offset.
func mapRing(fd int, pgoff int64, off unix.XDPRingOffset, size uint32, entrySize uintptr) ([]byte, error) {
	length := off.Desc + uint64(size)*uint64(entrySize)
	mem, err := unix.Mmap(fd, pgoff, int(length), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap ring at page offset %#x: %w", pgoff, err)
	}
	return mem, nil
}

func (r *ring) unmap() error {
	if r.mem == nil {
		return nil
	}
	err := unix.Munmap(r.mem)
	*r = ring{}
	return err
}
