package xsk

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Queues returns the number of RX queues of interface ifname, counted in
// sysfs: one socket per queue sees all its traffic, since the kernel
// redirects a frame only to the socket bound to the queue it arrived on.
// sysfs shows the interfaces of the network namespace it was mounted in.
func Queues(ifname string) (int, error) {
	return queuesIn("/sys/class/net", ifname)
}

func queuesIn(root, ifname string) (int, error) {
	if ifname == "" || ifname == "." || ifname == ".." || strings.ContainsAny(ifname, "/\x00") {
		return 0, fmt.Errorf("rx queues of %q: invalid interface name", ifname)
	}
	ents, err := os.ReadDir(filepath.Join(root, ifname, "queues"))
	if err != nil {
		return 0, fmt.Errorf("rx queues of %s: %w", ifname, err)
	}
	n := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "rx-") {
			n++
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("rx queues of %s: none listed", ifname)
	}
	return n, nil
}
