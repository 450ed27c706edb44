package main

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// keptCapabilities are what a running director still needs once its
// sockets are bound and its programs attached: CAP_NET_ADMIN to ask the
// kernel to resolve neighbours, CAP_NET_RAW for the AF_XDP sockets, CAP_BPF
// for the steering program's maps. Everything else (CAP_SYS_ADMIN above
// all) goes, so a compromised director can do far less.
var keptCapabilities = []int{unix.CAP_NET_ADMIN, unix.CAP_NET_RAW, unix.CAP_BPF}

// dropCapabilities reduces every thread's effective, permitted and
// inheritable sets to keep. Capabilities are per thread in Linux, so this
// uses AllThreadsSyscall, which needs a binary without cgo (xvsd is built
// with CGO_ENABLED=0); otherwise it reports that it could not.
func dropCapabilities(keep []int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for _, c := range keep {
		data[c/32].Effective |= 1 << (c % 32)
		data[c/32].Permitted |= 1 << (c % 32)
	}
	_, _, errno := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	if errno != 0 {
		return fmt.Errorf("capset: %w", errno)
	}
	return nil
}
