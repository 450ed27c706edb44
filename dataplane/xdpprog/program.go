package xdpprog

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/xvs-lb/xvs/dataplane/bpf"
)

// MaxQueues is the number of RX queues the XSKMAP can hold sockets for
// (MAX_QUEUES in steer.c). Frames arriving on a higher queue always fall
// back to the kernel.
const MaxQueues = 64

// Indexes of the per-CPU counters in the stats map (steer.c's STAT_*).
const (
	statPassed      = iota // not for xvs: handed to the kernel
	statRedirected         // steered and redirected to the queue's socket
	statParseErrors        // too short or malformed: handed to the kernel
	statNoSocket           // steered, but the queue has no socket: handed to the kernel
	statFragments          // IPv4 fragments to a VIP address (also counted as redirected or no-socket)
	statICMPSteered        // ICMP errors about xvs's packets (also counted as redirected or no-socket)
	statOversize           // steered but longer than an AF_XDP frame: dropped
	statFast               // forwarded by the fast path
	statFastPartial        // fast-path flow with a checksum to complete: steered
	statFastTooBig         // fast-path tunnel flow too big for the MTU: steered
	statFastNoPort         // fast-path flow whose egress is not in the port map: dropped
	statSynCookie          // a SYN-proxied service's SYN answered with a cookie
	statSynNoPort          // ... but the interface is not in the port map: dropped
	numStats
)

// The flags of a vips map value (steer.c's VIP_*).
const vipSynProxy = 1

const (
	protoTCP = 6
	protoUDP = 17
)

// collectionSpec is the steering program of steer.c, with the vips, reals
// and vipaddrs maps sized to maxEntries.
func collectionSpec(maxEntries uint32) (*ebpf.CollectionSpec, error) {
	spec, err := bpf.LoadSteer()
	if err != nil {
		return nil, err
	}
	for _, name := range []string{bpf.SteerMapXvsVips, bpf.SteerMapXvsReals, bpf.SteerMapXvsVipaddrs} {
		m, ok := spec.Maps[name]
		if !ok {
			return nil, fmt.Errorf("steering program has no map %s", name)
		}
		m.MaxEntries = maxEntries
	}
	if got := spec.Maps[bpf.SteerMapXvsXsks].MaxEntries; got != MaxQueues {
		return nil, fmt.Errorf("steering program's socket map holds %d queues, want %d", got, MaxQueues)
	}
	if got := spec.Maps[bpf.SteerMapXvsStats].MaxEntries; got != numStats {
		return nil, fmt.Errorf("steering program has %d counters, want %d", got, numStats)
	}
	return spec, nil
}
