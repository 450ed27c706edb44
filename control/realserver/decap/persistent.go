package decap

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/internal/xvs"
)

// Values of IFLA_XDP_ATTACHED, as netlink reports them in LinkXdp.AttachMode.
const (
	xdpAttachedNone  = 0
	xdpAttachedDrv   = 1
	xdpAttachedSKB   = 2
	xdpAttachedHW    = 3
	xdpAttachedMulti = 4
)

// Config holds the address sets of a persistent decapsulator, loaded into
// its maps before it is attached.
type Config struct {
	// VIPs are the inner destinations to decapsulate: the VIPs the real
	// server holds on lo. At most MaxVIPs.
	VIPs []netip.Addr
	// LocalAddrs are the outer destinations accepted: this host's
	// addresses. Empty accepts any outer destination. At most
	// MaxLocalAddrs.
	LocalAddrs []netip.Addr
}

// normalize validates, unmaps, sorts and deduplicates the address sets.
func (c Config) normalize() (Config, error) {
	clean := func(what string, in []netip.Addr, limit int) ([]netip.Addr, error) {
		out := make([]netip.Addr, 0, len(in))
		for _, a := range in {
			a, err := checkAddr(a)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			out = append(out, a)
		}
		slices.SortFunc(out, netip.Addr.Compare)
		out = slices.Compact(out)
		if len(out) > limit {
			return nil, fmt.Errorf("%d %s, at most %d", len(out), what, limit)
		}
		return out, nil
	}
	var err error
	if c.VIPs, err = clean("VIPs", c.VIPs, MaxVIPs); err != nil {
		return c, err
	}
	if c.LocalAddrs, err = clean("local addresses", c.LocalAddrs, MaxLocalAddrs); err != nil {
		return c, err
	}
	return c, nil
}

// Status describes the XDP program attached to an interface.
type Status struct {
	Attached  bool        // an XDP program is attached
	Ours      bool        // it is a decapsulator (named xvs_decap)
	Name      string      // the attached program's name
	ProgramID uint32      // the attached program's ID
	Mode      xvs.XDPMode // XDPDriver or XDPGeneric
	Stats     Stats       // the decapsulator's counters, when Ours
}

// AttachPersistent loads a decapsulator, fills its maps with cfg's addresses
// and attaches it to the interface with the legacy netlink call, so that it
// stays attached after this process exits, until Detach: the program holds
// references to its maps, so they live as long as it does. A decapsulator
// already attached there is replaced atomically when the mode allows (in
// XDPAuto the mode it runs in is kept); any other XDP program is left alone
// and an error returned. It returns the mode in use.
func AttachPersistent(ifindex int, mode xvs.XDPMode, cfg Config) (xvs.XDPMode, error) {
	name := interfaceName(ifindex)
	cfg, err := cfg.normalize()
	if err != nil {
		return mode, fmt.Errorf("attach decapsulator to %s: %w", name, err)
	}
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return mode, fmt.Errorf("attach decapsulator to %s: %w", name, err)
	}
	cur, err := inspect(l)
	if err != nil {
		return mode, fmt.Errorf("attach decapsulator to %s: %w", name, err)
	}
	if cur.Attached && !cur.Ours {
		return mode, fmt.Errorf("attach decapsulator to %s: XDP program %q (id %d) is attached there; not replacing it",
			name, cur.Name, cur.ProgramID)
	}

	d, err := loadConfig(cfg)
	if err != nil {
		return mode, fmt.Errorf("attach decapsulator to %s: %w", name, err)
	}
	// The attachment holds its own reference to the program, and the
	// program to its maps: closing this process's descriptors leaves
	// them to the interface.
	defer d.Close()

	if cur.Attached {
		switch {
		case mode == xvs.XDPAuto:
			mode = cur.Mode
		case mode != cur.Mode:
			// The kernel runs one XDP mode per interface: the old
			// program must go before the new one comes, leaving a
			// moment without decapsulation.
			if err := setXDP(l, -1, cur.Mode); err != nil {
				return mode, fmt.Errorf("detach decapsulator from %s (%s mode) to attach it in %s mode: %w",
					name, cur.Mode, mode, err)
			}
		}
	}
	return attachModes(name, mode, func(m xvs.XDPMode) error {
		if err := setXDP(l, d.objs.Prog.FD(), m); err != nil {
			return fmt.Errorf("attach decapsulator to %s in %s mode: %w", name, m, err)
		}
		return nil
	})
}

// loadConfig loads a decapsulator whose maps hold cfg's addresses, not
// attached anywhere. No local address leaves the filter off: any outer
// destination is accepted.
func loadConfig(cfg Config) (*Decap, error) {
	d, err := Load()
	if err != nil {
		return nil, err
	}
	if err := d.SyncVIPs(cfg.VIPs); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.SetLocalAddrs(cfg.LocalAddrs); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// setXDP attaches the program fd (or detaches, fd -1) in mode. Without
// XDP_FLAGS_UPDATE_IF_NOEXIST the kernel replaces a program attached in the
// same mode.
func setXDP(l netlink.Link, fd int, mode xvs.XDPMode) error {
	flags := unix.XDP_FLAGS_DRV_MODE
	if mode == xvs.XDPGeneric {
		flags = unix.XDP_FLAGS_SKB_MODE
	}
	err := netlink.LinkSetXdpFdWithFlags(l, fd, flags)
	if errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("%w (the program is attached through a BPF link: the process that owns it must release it)", err)
	}
	return err
}

// Detach removes a decapsulator attached to the interface by
// AttachPersistent. It reports whether one was there; any other XDP
// program is left alone and an error returned.
func Detach(ifindex int) (bool, error) {
	name := interfaceName(ifindex)
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return false, fmt.Errorf("detach decapsulator from %s: %w", name, err)
	}
	cur, err := inspect(l)
	if err != nil {
		return false, fmt.Errorf("detach decapsulator from %s: %w", name, err)
	}
	if !cur.Attached {
		return false, nil
	}
	if !cur.Ours {
		return false, fmt.Errorf("detach decapsulator from %s: XDP program %q (id %d) is attached there, not %s; leaving it",
			name, cur.Name, cur.ProgramID, progName)
	}
	if err := setXDP(l, -1, cur.Mode); err != nil {
		return false, fmt.Errorf("detach decapsulator from %s (%s mode): %w", name, cur.Mode, err)
	}
	return true, nil
}

// Inspect reports the XDP program attached to the interface and, when it is
// a decapsulator (persistent or not), its counters.
func Inspect(ifindex int) (Status, error) {
	name := interfaceName(ifindex)
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return Status{}, fmt.Errorf("inspect XDP on %s: %w", name, err)
	}
	st, err := inspect(l)
	if err != nil {
		return st, fmt.Errorf("inspect XDP on %s: %w", name, err)
	}
	return st, nil
}

func inspect(l netlink.Link) (Status, error) {
	x := l.Attrs().Xdp
	if x == nil || !x.Attached || x.AttachMode == xdpAttachedNone {
		return Status{}, nil
	}
	st := Status{Attached: true, ProgramID: x.ProgId}
	switch x.AttachMode {
	case xdpAttachedDrv:
		st.Mode = xvs.XDPDriver
	case xdpAttachedSKB:
		st.Mode = xvs.XDPGeneric
	case xdpAttachedHW, xdpAttachedMulti:
		return st, fmt.Errorf("offloaded or several XDP programs attached (IFLA_XDP_ATTACHED %d): not handled", x.AttachMode)
	default:
		return st, fmt.Errorf("unknown IFLA_XDP_ATTACHED %d", x.AttachMode)
	}
	prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(x.ProgId))
	if err != nil {
		return st, fmt.Errorf("open XDP program %d: %w", x.ProgId, err)
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return st, fmt.Errorf("XDP program %d info: %w", x.ProgId, err)
	}
	st.Name = info.Name
	if st.Name != progName {
		return st, nil
	}
	st.Ours = true
	ids, _ := info.MapIDs()
	for _, id := range ids {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			return st, fmt.Errorf("open map %d of XDP program %d: %w", id, x.ProgId, err)
		}
		mi, err := m.Info()
		if err == nil && mi.Name == mapStats {
			st.Stats, err = readStats(m)
		}
		m.Close()
		if err != nil {
			return st, fmt.Errorf("map %d of XDP program %d: %w", id, x.ProgId, err)
		}
	}
	return st, nil
}
