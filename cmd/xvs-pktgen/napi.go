package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// threadedNAPI moves the receive work of an interface to threads pinned to
// one CPU (-napi-cpu). An XDP sink or reflector does all its work in the
// device's NAPI poll, which on a veth otherwise runs as a softirq on the CPU
// of whoever transmitted into the pair: the generator's, in lockstep with
// it. In threaded mode each NAPI instance has a kernel thread, named
// "napi/IFNAME-ID", which can be pinned like any other. Whether that helps
// depends on the work: a sink on its own CPU no longer slows the generator,
// but a reflector then pays for waking threads and for returning pages
// across CPUs, and the veth's 256-frame ring overflows when the generator
// outruns the thread.
type threadedNAPI struct {
	path string // /sys/class/net/IFNAME/threaded
	was  []byte // its value before, restored by Close
	pids []int  // the NAPI threads pinned
}

// pinNAPI switches ifname to threaded NAPI and pins its NAPI threads to cpu.
// The device must have NAPI instances already: a veth gets them with an XDP
// program attached.
func pinNAPI(ifname string, cpu int) (*threadedNAPI, error) {
	n := &threadedNAPI{path: filepath.Join("/sys/class/net", ifname, "threaded")}
	was, err := os.ReadFile(n.path)
	if err != nil {
		return nil, fmt.Errorf("threaded NAPI on %s: %w", ifname, err)
	}
	n.was = bytes.TrimSpace(was)
	if err := os.WriteFile(n.path, []byte("1"), 0); err != nil {
		return nil, fmt.Errorf("threaded NAPI on %s: %w", ifname, err)
	}
	pids, err := napiThreads(ifname)
	if err == nil && len(pids) == 0 {
		err = fmt.Errorf("no napi/%s-* thread found", ifname)
	}
	if err != nil {
		n.Close()
		return nil, err
	}
	var set unix.CPUSet
	set.Set(cpu)
	for _, pid := range pids {
		if err := unix.SchedSetaffinity(pid, &set); err != nil {
			n.Close()
			return nil, fmt.Errorf("pin NAPI thread %d to CPU %d: %w", pid, cpu, err)
		}
	}
	n.pids = pids
	return n, nil
}

// napiThreads returns the PIDs of ifname's NAPI threads. Kernels that cut
// thread names at 15 bytes hide long interface names; those threads are not
// found.
func napiThreads(ifname string) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	prefix := "napi/" + ifname + "-"
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue // gone meanwhile
		}
		id, ok := strings.CutPrefix(strings.TrimSpace(string(comm)), prefix)
		if _, err := strconv.Atoi(id); ok && err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Close restores the device's threaded setting. It must run while the
// device still has NAPI instances (before the XDP program is detached):
// without them the kernel refuses the write.
func (n *threadedNAPI) Close() error {
	if n == nil || string(n.was) == "1" {
		return nil
	}
	if err := os.WriteFile(n.path, n.was, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore %s: %w", n.path, err)
	}
	return nil
}
