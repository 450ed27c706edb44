package xsk

import (
	"math"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fakeRingOffsets lays a ring out like the kernel does: indexes and flags
// on their own cache lines, then the entries.
var fakeRingOffsets = unix.XDPRingOffset{Producer: 0, Consumer: 64, Flags: 128, Desc: 192}

// fakeRingMem returns 8-byte aligned Go memory for a ring of size entries.
func fakeRingMem(size uint32, entry uintptr) []byte {
	n := int(fakeRingOffsets.Desc) + int(size)*int(entry)
	words := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
}

func fakeAddrRing(size uint32, start uint32, producerSide bool) *addrRing {
	mem := fakeRingMem(size, addrSize)
	base := unsafe.Pointer(&mem[0])
	*(*uint32)(unsafe.Add(base, fakeRingOffsets.Producer)) = start
	*(*uint32)(unsafe.Add(base, fakeRingOffsets.Consumer)) = start
	r := new(addrRing)
	initAddrRing(r, mem, fakeRingOffsets, size, producerSide)
	return r
}

func fakeDescRing(size uint32, start uint32, producerSide bool) *descRing {
	mem := fakeRingMem(size, descSize)
	base := unsafe.Pointer(&mem[0])
	*(*uint32)(unsafe.Add(base, fakeRingOffsets.Producer)) = start
	*(*uint32)(unsafe.Add(base, fakeRingOffsets.Consumer)) = start
	r := new(descRing)
	initDescRing(r, mem, fakeRingOffsets, size, producerSide)
	return r
}

func TestRingProduce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  uint32
		start uint32
	}{
		{"small", 4, 0},
		{"wraps index", 8, math.MaxUint32 - 5},
		{"larger", 64, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := fakeAddrRing(tc.size, tc.start, true)
			next := uint64(0) // value of the next entry produced
			seen := uint64(0) // value of the next entry the "kernel" expects
			for round := 0; round < 10; round++ {
				// Ask for more than fits: only the free room is granted.
				idx, n := r.reserve(tc.size + 3)
				inKernel := r.cachedProd - n - atomic.LoadUint32(r.consumer)
				if want := tc.size - inKernel; n != want {
					t.Fatalf("round %d: reserve granted %d, want %d", round, n, want)
				}
				for i := range n {
					r.addrs[(idx+i)&r.mask] = next
					next++
				}
				// Nothing is visible before submit.
				if p := atomic.LoadUint32(r.producer); p != idx {
					t.Fatalf("producer moved to %d before submit, want %d", p, idx)
				}
				r.submit()
				if got, want := r.pending(), tc.size; got != want {
					t.Fatalf("pending = %d, want %d", got, want)
				}
				if _, n := r.reserve(1); n != 0 {
					t.Fatalf("reserve on a full ring granted %d", n)
				}
				// The kernel consumes a varying part of the ring.
				take := uint32(round%int(tc.size)) + 1
				cons := atomic.LoadUint32(r.consumer)
				for i := range take {
					if v := r.addrs[(cons+i)&r.mask]; v != seen {
						t.Fatalf("kernel read %d, want %d", v, seen)
					}
					seen++
				}
				atomic.StoreUint32(r.consumer, cons+take)
			}
		})
	}
}

func TestRingConsume(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  uint32
		start uint32
	}{
		{"small", 4, 0},
		{"wraps index", 8, math.MaxUint32 - 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := fakeDescRing(tc.size, tc.start, false)
			if _, n := r.peek(10); n != 0 {
				t.Fatalf("peek on an empty ring got %d", n)
			}
			produced, consumed := uint64(0), uint64(0)
			for round := 0; round < 12; round++ {
				// The kernel fills whatever room there is.
				prod := atomic.LoadUint32(r.producer)
				room := tc.size - (prod - atomic.LoadUint32(r.consumer))
				for i := range room {
					r.descs[(prod+i)&r.mask] = unix.XDPDesc{Addr: produced, Len: uint32(produced)}
					produced++
				}
				atomic.StoreUint32(r.producer, prod+room)

				want := uint32(round%3) + 1
				idx, n := r.peek(want)
				if n != min(want, uint32(produced-consumed)) {
					t.Fatalf("round %d: peek got %d, want %d", round, n, want)
				}
				for i := range n {
					d := r.descs[(idx+i)&r.mask]
					if d.Addr != consumed || d.Len != uint32(consumed) {
						t.Fatalf("read %+v, want addr %d", d, consumed)
					}
					consumed++
				}
				if c := atomic.LoadUint32(r.consumer); c != idx {
					t.Fatalf("consumer moved to %d before release, want %d", c, idx)
				}
				r.release()
				if c := atomic.LoadUint32(r.consumer); c != idx+n {
					t.Fatalf("consumer = %d after release, want %d", c, idx+n)
				}
			}
		})
	}
}

func TestRingNeedWakeup(t *testing.T) {
	r := fakeAddrRing(4, 0, true)
	if r.needWakeup() {
		t.Fatal("needWakeup set on a fresh ring")
	}
	atomic.StoreUint32(r.flags, unix.XDP_RING_NEED_WAKEUP)
	if !r.needWakeup() {
		t.Fatal("needWakeup not seen")
	}
}
