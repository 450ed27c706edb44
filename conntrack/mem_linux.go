//go:build linux

package conntrack

import (
	"fmt"
	"syscall"
)

const (
	pageSize     = 4 << 10
	hugePageSize = 2 << 20
)

// mapMemory maps size bytes of zeroed memory outside the Go heap: the garbage collector never sees it, and
// it does not count towards the heap size that paces collections (a table in the heap would let GOGC=100
// grow the heap to twice its size before the next cycle). The table is read at random, so it asks for
// transparent huge pages (a best effort: THP may be disabled) to spare lookups most TLB misses. Every page
// is touched here, so memory is committed when the table is made and no packet waits for a page fault.
func mapMemory(size int) ([]byte, error) {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", size, err)
	}
	if size >= hugePageSize {
		_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE)
	}
	for i := 0; i < len(b); i += pageSize {
		b[i] = 0
	}
	return b, nil
}

func unmapMemory(b []byte) error {
	if err := syscall.Munmap(b); err != nil {
		return fmt.Errorf("munmap %d bytes: %w", len(b), err)
	}
	return nil
}
