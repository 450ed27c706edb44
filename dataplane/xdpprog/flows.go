package xdpprog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/dataplane/bpf"
)

// FlowKey is the fast path's key: one direction of a connection, as the
// frames of that direction carry it (steer.c's struct flow_key). Addresses
// are 16 bytes, IPv4 IPv4-mapped, as conntrack keys them; ports are in
// network byte order (SetPorts).
type FlowKey = bpf.SteerFlowKey

// Flow is what the steering program does with the frames of one FlowKey
// and what it counts for them (steer.c's struct flow). Userspace fills the
// first part; Packets, Bytes and LastNs are the program's.
type Flow = bpf.SteerFlow

// Flow.Flags.
const (
	FlowSNAT  = 1 << iota // rewrite the source to (Saddr, Sport)
	FlowDNAT              // rewrite the destination to (Daddr, Dport)
	FlowTUN               // encapsulate from Tsrc to Tdst (TunFamily 4 or 6)
	FlowReply             // a real server's reply: counted as outgoing
)

// DefaultFlows is the fast path's capacity unless told otherwise: flow
// directions (a NAT connection takes two), about 180 bytes each in the
// kernel, preallocated.
const DefaultFlows = 1 << 18

// Net16 returns the uint16 whose memory holds port in network byte order:
// what a __be16 field of a generated type holds.
func Net16(port uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], port)
	return binary.NativeEndian.Uint16(b[:])
}

// Host16 is the inverse of Net16.
func Host16(v uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], v)
	return binary.BigEndian.Uint16(b[:])
}

// Flows is the fast path's flow table and the set of interfaces its frames
// may be redirected to, shared by the steering programs of every director
// interface (Config.Flows). It is a cache of the userspace connection
// table: userspace inserts an entry when it offloads a connection and
// deletes it when the connection ends or moves; the programs only count.
// Its methods are safe for concurrent use.
type Flows struct {
	flows, ports *ebpf.Map
	capacity     int

	mu     sync.Mutex
	closed bool
}

// NewFlows creates a flow table of capacity entries and an empty port map.
func NewFlows(capacity int) (*Flows, error) {
	if capacity <= 0 || capacity > math.MaxUint32 {
		return nil, fmt.Errorf("flow table: capacity %d out of range", capacity)
	}
	spec, err := bpf.LoadSteer()
	if err != nil {
		return nil, fmt.Errorf("flow table: %w", err)
	}
	fs := spec.Maps[bpf.SteerMapXvsFlows].Copy()
	fs.MaxEntries = uint32(capacity)
	flows, err := ebpf.NewMap(fs)
	if err != nil {
		return nil, fmt.Errorf("flow table: %w", err)
	}
	ports, err := ebpf.NewMap(spec.Maps[bpf.SteerMapXvsPorts])
	if err != nil {
		flows.Close()
		return nil, fmt.Errorf("flow table port map: %w", err)
	}
	return &Flows{flows: flows, ports: ports, capacity: capacity}, nil
}

// Capacity returns how many flow directions the table holds at most.
func (f *Flows) Capacity() int { return f.capacity }

// AddPort lets fast-path frames leave by redirect on the interface
// ifindex.
func (f *Flows) AddPort(ifindex int) error {
	if ifindex <= 0 || ifindex > math.MaxUint32 {
		return fmt.Errorf("flow table: add port: ifindex %d out of range", ifindex)
	}
	if err := f.ports.Put(uint32(ifindex), uint32(ifindex)); err != nil {
		return fmt.Errorf("flow table: add port %d: %w", ifindex, err)
	}
	return nil
}

// ErrFlowsFull is returned by Put when the table has no room left.
var ErrFlowsFull = errors.New("flow table full")

// Put inserts or replaces the entries keys[i] -> flows[i], in one system
// call, and returns how many it stored: the first n. An entry that does
// not fit ends the batch with ErrFlowsFull.
func (f *Flows) Put(keys []FlowKey, flows []Flow) (int, error) {
	if len(keys) != len(flows) {
		return 0, fmt.Errorf("flow table: %d keys for %d flows", len(keys), len(flows))
	}
	if len(keys) == 0 {
		return 0, nil
	}
	n, err := f.flows.BatchUpdate(keys, flows, nil)
	if errors.Is(err, unix.E2BIG) { // a hash map with no free element left
		return n, ErrFlowsFull
	}
	if err != nil {
		return n, fmt.Errorf("flow table: put: %w", err)
	}
	return n, nil
}

// Delete removes the entries of keys; absent ones are no error. It
// returns how many it removed.
func (f *Flows) Delete(keys []FlowKey) (int, error) {
	n := 0
	for i := range keys {
		err := f.flows.Delete(&keys[i])
		switch {
		case err == nil:
			n++
		case errors.Is(err, ebpf.ErrKeyNotExist):
		default:
			return n, fmt.Errorf("flow table: delete: %w", err)
		}
	}
	return n, nil
}

// Lookup fills v with the entry of k and reports whether there is one.
func (f *Flows) Lookup(k *FlowKey, v *Flow) (bool, error) {
	err := f.flows.Lookup(k, v)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("flow table: lookup: %w", err)
	}
	return true, nil
}

// Range calls fn for every entry, reading them batch by batch into keys
// and flows (whose common length sets the batch size), until fn returns
// false. Entries inserted or deleted meanwhile may or may not be seen.
func (f *Flows) Range(keys []FlowKey, flows []Flow, fn func(k *FlowKey, v *Flow) bool) error {
	if len(keys) == 0 || len(keys) != len(flows) {
		return fmt.Errorf("flow table: range: %d keys for %d flows", len(keys), len(flows))
	}
	var cursor ebpf.MapBatchCursor
	for {
		n, err := f.flows.BatchLookup(&cursor, keys, flows, nil)
		for i := range n {
			if !fn(&keys[i], &flows[i]) {
				return nil
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("flow table: range: %w", err)
		}
	}
}

// Count returns how many entries the table holds now.
func (f *Flows) Count() int {
	n := 0
	_ = f.Range(make([]FlowKey, 256), make([]Flow, 256), func(*FlowKey, *Flow) bool { n++; return true })
	return n
}

// Clear removes every entry.
func (f *Flows) Clear() error {
	keys, flows := make([]FlowKey, 256), make([]Flow, 256)
	var all []FlowKey
	if err := f.Range(keys, flows, func(k *FlowKey, _ *Flow) bool {
		all = append(all, *k)
		return true
	}); err != nil {
		return err
	}
	_, err := f.Delete(all)
	return err
}

// Close releases the maps. Programs that use them keep their own
// references.
func (f *Flows) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	return errors.Join(f.flows.Close(), f.ports.Close())
}
