package decap

import (
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/xvs-lb/xvs/dataplane/bpf"
)

// Names of the program and its maps (bpftool shows them), as decap.c names
// them. Detach and Inspect recognise the program by its name.
const (
	progName  = bpf.DecapProgXvsDecap   // xvs_decap
	mapVIPs   = bpf.DecapMapXvsDcVips   // xvs_dc_vips
	mapLocals = bpf.DecapMapXvsDcLocals // xvs_dc_locals
	mapConfig = bpf.DecapMapXvsDcConfig // xvs_dc_config
	mapStats  = bpf.DecapMapXvsDcStats  // xvs_dc_stats
)

// Size limits of the address sets (the sizes of decap.c's maps).
const (
	// MaxVIPs bounds the VIPs of a Decap or of a persistent program.
	MaxVIPs = 1024
	// MaxLocalAddrs bounds the local (outer destination) addresses.
	MaxLocalAddrs = 256
)

// Map element sizes. Addresses are keyed as 16 bytes, IPv4 in its
// IPv4-mapped IPv6 form (::ffff:a.b.c.d), which the program builds on its
// stack from the packet (decap.c's struct addr).
const (
	keySize   = 16
	valueSize = 4 // __u32, reserved, 0
	statSize  = 8 // __u64 counter
)

// Indexes of the per-CPU counters in the stats map (decap.c's STAT_*).
const (
	statDecapsulated = iota // outer header stripped, inner packet passed
	statNotForUs            // tunnelled, but the outer or inner destination is not configured
	statMalformed           // tunnelled, but malformed or unsupported
	statPassed              // not tunnelled
	numStats
)

// addrKey returns a's key in the vips and locals maps.
func addrKey(a netip.Addr) [keySize]byte { return a.As16() }

// checkAddr refuses the addresses that cannot be a packet's destination.
func checkAddr(a netip.Addr) (netip.Addr, error) {
	if !a.IsValid() {
		return a, fmt.Errorf("no address")
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsMulticast() {
		return a, fmt.Errorf("%v cannot be a destination", a)
	}
	return a, nil
}

// collectionSpec is the decapsulator of decap.c, checked against the map
// layout this package reads and writes, so that the C and Go sides cannot
// drift apart unnoticed.
func collectionSpec() (*ebpf.CollectionSpec, error) {
	spec, err := bpf.LoadDecap()
	if err != nil {
		return nil, err
	}
	if _, ok := spec.Programs[progName]; !ok {
		return nil, fmt.Errorf("decapsulator object has no program %s", progName)
	}
	for _, want := range []struct {
		name                         string
		typ                          ebpf.MapType
		keySize, valueSize, capacity uint32
	}{
		{mapVIPs, ebpf.Hash, keySize, valueSize, MaxVIPs},
		{mapLocals, ebpf.Hash, keySize, valueSize, MaxLocalAddrs},
		{mapConfig, ebpf.Array, 4, 4, 1},
		{mapStats, ebpf.PerCPUArray, 4, statSize, numStats},
	} {
		m, ok := spec.Maps[want.name]
		if !ok {
			return nil, fmt.Errorf("decapsulator object has no map %s", want.name)
		}
		if m.Type != want.typ || m.KeySize != want.keySize || m.ValueSize != want.valueSize || m.MaxEntries != want.capacity {
			return nil, fmt.Errorf("decapsulator map %s is a %v of %d entries, %d-byte keys, %d-byte values; want a %v of %d, %d, %d",
				want.name, m.Type, m.MaxEntries, m.KeySize, m.ValueSize, want.typ, want.capacity, want.keySize, want.valueSize)
		}
	}
	return spec, nil
}
