//go:build !linux

package conntrack

// mapMemory falls back to the Go heap where the table does not map its own memory. The arrays hold no
// pointers, so the garbage collector still never scans them.
func mapMemory(size int) ([]byte, error) { return make([]byte, size), nil }

func unmapMemory([]byte) error { return nil }
