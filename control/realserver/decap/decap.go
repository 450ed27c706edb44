package decap

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/xvs-lb/xvs/internal/xvs"
)

var errClosed = errors.New("decap: closed")

// Decap is one loaded decapsulator whose VIPs and local addresses live in
// BPF maps, for one interface. Its methods are safe for concurrent use.
type Decap struct {
	objs objects

	mu     sync.Mutex
	closed bool
	link   link.Link
	ifname string
	vips   map[netip.Addr]struct{}
	locals map[netip.Addr]struct{}
}

// objects receives the loaded collection; the tags name the spec's entries.
type objects struct {
	Prog   *ebpf.Program `ebpf:"xvs_decap"`
	VIPs   *ebpf.Map     `ebpf:"xvs_dc_vips"`
	Locals *ebpf.Map     `ebpf:"xvs_dc_locals"`
	Config *ebpf.Map     `ebpf:"xvs_dc_config"`
	Stats  *ebpf.Map     `ebpf:"xvs_dc_stats"`
}

func (o *objects) close() error {
	var errs []error
	for _, c := range []interface{ Close() error }{o.Prog, o.VIPs, o.Locals, o.Config, o.Stats} {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stats are the decapsulator's counters summed over CPUs. Every frame is
// counted exactly once.
type Stats struct {
	Decapsulated uint64 // outer header stripped, inner packet passed to the kernel
	NotForUs     uint64 // tunnelled, but the outer destination is not local or the inner one not a VIP
	Malformed    uint64 // tunnelled, but malformed or unsupported: passed untouched
	Passed       uint64 // not tunnelled: passed untouched
}

// Load creates the decapsulator's maps and loads it and them into the
// kernel. It starts with no VIP (nothing is decapsulated) and no local
// address (any outer destination is accepted). It is not attached anywhere
// until Attach.
func Load() (*Decap, error) {
	d := &Decap{
		vips:   make(map[netip.Addr]struct{}),
		locals: make(map[netip.Addr]struct{}),
	}
	spec, err := collectionSpec()
	if err != nil {
		return nil, fmt.Errorf("load decapsulator: %w", err)
	}
	if err := spec.LoadAndAssign(&d.objs, nil); err != nil {
		return nil, fmt.Errorf("load decapsulator: %w", err)
	}
	return d, nil
}

// Attach attaches the decapsulator to the interface through a BPF link, so
// the attachment ends with the link: on Close, or when the process dies. It
// returns the mode actually in use: XDPAuto tries driver mode first, then
// generic mode. A Decap attaches to one interface.
func (d *Decap) Attach(ifindex int, mode xvs.XDPMode) (xvs.XDPMode, error) {
	name := interfaceName(ifindex)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return mode, fmt.Errorf("attach decapsulator to %s: %w", name, errClosed)
	}
	if d.link != nil {
		return mode, fmt.Errorf("attach decapsulator to %s: already attached to %s", name, d.ifname)
	}
	return attachModes(name, mode, func(m xvs.XDPMode) error {
		flags := link.XDPDriverMode
		if m == xvs.XDPGeneric {
			flags = link.XDPGenericMode
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: d.objs.Prog, Interface: ifindex, Flags: flags})
		if err != nil {
			return fmt.Errorf("attach decapsulator to %s in %s mode: %w", name, m, err)
		}
		d.link, d.ifname = l, name
		return nil
	})
}

// attachModes runs attach in mode, or for XDPAuto in driver mode and then
// generic mode, and returns the mode that worked.
func attachModes(name string, mode xvs.XDPMode, attach func(xvs.XDPMode) error) (xvs.XDPMode, error) {
	switch mode {
	case xvs.XDPDriver, xvs.XDPGeneric:
		return mode, attach(mode)
	case xvs.XDPAuto:
		errDriver := attach(xvs.XDPDriver)
		if errDriver == nil {
			return xvs.XDPDriver, nil
		}
		if err := attach(xvs.XDPGeneric); err != nil {
			return mode, errors.Join(errDriver, err)
		}
		return xvs.XDPGeneric, nil
	default:
		return mode, fmt.Errorf("attach decapsulator to %s: invalid mode %v", name, mode)
	}
}

// interfaceName names ifindex for messages.
func interfaceName(ifindex int) string {
	if ifi, err := net.InterfaceByIndex(ifindex); err == nil {
		return ifi.Name
	}
	return fmt.Sprintf("ifindex %d", ifindex)
}

// AddVIP decapsulates tunnelled packets whose inner destination is vip.
// Adding a present VIP is a no-op.
func (d *Decap) AddVIP(vip netip.Addr) error {
	a, err := checkAddr(vip)
	if err != nil {
		return fmt.Errorf("add VIP: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.addLocked(d.objs.VIPs, d.vips, a, MaxVIPs); err != nil {
		return fmt.Errorf("add VIP %v: %w", a, err)
	}
	return nil
}

// DeleteVIP stops decapsulating packets to vip. Deleting an absent VIP
// returns an error wrapping ebpf.ErrKeyNotExist.
func (d *Decap) DeleteVIP(vip netip.Addr) error {
	a, err := checkAddr(vip)
	if err != nil {
		return fmt.Errorf("delete VIP: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.deleteLocked(d.objs.VIPs, d.vips, a); err != nil {
		return fmt.Errorf("delete VIP %v: %w", a, err)
	}
	return nil
}

// SyncVIPs makes the set of VIPs equal to set. VIPs in both keep being
// decapsulated throughout. If an address is invalid or the set is too large
// nothing changes; otherwise a failing update does not stop the others, and
// the errors are returned joined.
func (d *Decap) SyncVIPs(set []netip.Addr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.syncLocked(d.objs.VIPs, d.vips, set, MaxVIPs); err != nil {
		return fmt.Errorf("sync VIPs: %w", err)
	}
	return nil
}

// SetLocalAddrs restricts decapsulation to packets whose outer destination
// is in addrs, this host's addresses. An empty set accepts any outer
// destination, which is the default.
func (d *Decap) SetLocalAddrs(addrs []netip.Addr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("set local addresses: %w", errClosed)
	}
	// The filter goes off before the set empties and on only once it is
	// filled, so that no packet meets an empty filter.
	if len(addrs) == 0 {
		if err := d.objs.Config.Put(uint32(0), uint32(0)); err != nil {
			return fmt.Errorf("set local addresses: switch the filter off: %w", err)
		}
	}
	if err := d.syncLocked(d.objs.Locals, d.locals, addrs, MaxLocalAddrs); err != nil {
		return fmt.Errorf("set local addresses: %w", err)
	}
	if len(d.locals) > 0 {
		if err := d.objs.Config.Put(uint32(0), uint32(1)); err != nil {
			return fmt.Errorf("set local addresses: switch the filter on: %w", err)
		}
	}
	return nil
}

func (d *Decap) syncLocked(m *ebpf.Map, current map[netip.Addr]struct{}, set []netip.Addr, limit int) error {
	if d.closed {
		return errClosed
	}
	want := make(map[netip.Addr]struct{}, len(set))
	for _, a := range set {
		a, err := checkAddr(a)
		if err != nil {
			return err
		}
		want[a] = struct{}{}
	}
	if len(want) > limit {
		return fmt.Errorf("%d addresses, at most %d", len(want), limit)
	}
	var errs []error
	// Delete first, so a full map has room for the additions.
	for a := range current {
		if _, ok := want[a]; ok {
			continue
		}
		if err := d.deleteLocked(m, current, a); err != nil {
			errs = append(errs, fmt.Errorf("delete %v: %w", a, err))
		}
	}
	for a := range want {
		if err := d.addLocked(m, current, a, limit); err != nil {
			errs = append(errs, fmt.Errorf("add %v: %w", a, err))
		}
	}
	return errors.Join(errs...)
}

func (d *Decap) addLocked(m *ebpf.Map, set map[netip.Addr]struct{}, a netip.Addr, limit int) error {
	if d.closed {
		return errClosed
	}
	if _, ok := set[a]; ok {
		return nil
	}
	if len(set) >= limit {
		return fmt.Errorf("set full (%d addresses)", limit)
	}
	if err := m.Put(addrKey(a), uint32(0)); err != nil {
		return err
	}
	set[a] = struct{}{}
	return nil
}

func (d *Decap) deleteLocked(m *ebpf.Map, set map[netip.Addr]struct{}, a netip.Addr) error {
	if d.closed {
		return errClosed
	}
	if err := m.Delete(addrKey(a)); err != nil {
		return err
	}
	delete(set, a)
	return nil
}

// Stats returns the counters summed over CPUs.
func (d *Decap) Stats() (Stats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return Stats{}, fmt.Errorf("read decapsulator stats: %w", errClosed)
	}
	return readStats(d.objs.Stats)
}

// readStats sums the per-CPU counters of a stats map.
func readStats(m *ebpf.Map) (Stats, error) {
	var sums [numStats]uint64
	var perCPU []uint64
	for i := range sums {
		if err := m.Lookup(uint32(i), &perCPU); err != nil {
			return Stats{}, fmt.Errorf("read decapsulator stats %d: %w", i, err)
		}
		for _, v := range perCPU {
			sums[i] += v
		}
	}
	return Stats{
		Decapsulated: sums[statDecapsulated],
		NotForUs:     sums[statNotForUs],
		Malformed:    sums[statMalformed],
		Passed:       sums[statPassed],
	}, nil
}

// Close detaches the decapsulator and releases it and its maps. Closing a
// closed Decap does nothing.
func (d *Decap) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	if d.link != nil {
		if err := d.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach decapsulator from %s: %w", d.ifname, err))
		}
		d.link = nil
	}
	if err := d.objs.close(); err != nil {
		errs = append(errs, fmt.Errorf("close decapsulator: %w", err))
	}
	return errors.Join(errs...)
}
