package xsk

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// x/sys has the AF_XDP types and constants but no typed accessors for the
// struct-valued socket options, so these wrap the raw system calls.

func setsockopt(fd, level, opt int, val unsafe.Pointer, size uintptr) error {
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(val), size, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func getsockopt(fd, level, opt int, val unsafe.Pointer, size uintptr) (uintptr, error) {
	n := uint32(size)
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(val), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return 0, errno
	}
	return uintptr(n), nil
}

func mmapOffsets(fd int) (unix.XDPMmapOffsets, error) {
	var off unix.XDPMmapOffsets
	n, err := getsockopt(fd, unix.SOL_XDP, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off))
	if err != nil {
		return off, err
	}
	// Kernels before 5.4 answer with the layout lacking the flags field,
	// which would leave need_wakeup unusable and the offsets misread.
	if n != unsafe.Sizeof(off) {
		return off, unix.EPROTONOSUPPORT
	}
	return off, nil
}

// sendtoKick asks the kernel to process the TX ring. Errors are expected
// (EAGAIN, ENOBUFS, EBUSY while the device queue is full or the ring had
// more than one budget of frames) and leave the frames on the ring for the
// next kick, so the caller only sees the raw errno.
func sendtoKick(fd int) unix.Errno {
	_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return errno
}
