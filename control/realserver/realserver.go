// Package realserver prepares a host to serve as a real server behind an xvs
// director, as `xvsadm realserver` does: the library form of the seed's
// lvsDR_realserver_setup.sh, lvsTUN_realserver_setup.sh and
// lvsNAT_realserver_setup.sh.
//
//   - DR: each VIP on lo as a host prefix (/32, /128), and
//     net.ipv4.conf.{all,lo,<iface>}.arp_ignore=1 and arp_announce=2, so the
//     real server accepts packets to the VIP without answering ARP for it.
//   - TUN: the same, plus rp_filter=0 on all, <iface> and lo, and, in place
//     of the seed's tunl0 (this kernel has no ipip module), the XDP
//     decapsulator of package decap attached persistently to <iface> with
//     the VIPs compiled in. It accepts tunnelled packets to any outer
//     destination: the interface only hands it frames sent to its MAC.
//   - NAT: the default route via the director, replacing the existing
//     default routes of the director's family, and nothing else.
//
// Sysctls are changed before the VIPs are added, so that no ARP reply for a
// VIP can leave in between; the decapsulator comes last, once the VIPs it
// delivers to are in place.
//
// Apply records what it changed, and only that, in a JSON state file; Undo
// reads it back, restores the previous values and removes what was added.
// Running Apply again is harmless: what is already in place is reported and
// left alone, the VIP set may change (VIPs dropped since the last run are
// removed from lo, the decapsulator is replaced), and the recorded previous
// values are kept from the first run.
//
// Everything happens in the network namespace of the calling thread.
// IPv6 default routes learnt from router advertisements come back with the
// next advertisement; NAT mode does not disable them.
package realserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/control/realserver/decap"
	"github.com/xvs-lb/xvs/internal/xvs"
)

// Mode is the forwarding method the real server is prepared for.
type Mode int

const (
	DR  Mode = iota + 1 // direct routing (ipvsadm -g)
	TUN                 // IP tunnelling (ipvsadm -i)
	NAT                 // masquerading (ipvsadm -m)
)

// String returns "dr", "tun" or "nat".
func (m Mode) String() string {
	switch m {
	case DR:
		return "dr"
	case TUN:
		return "tun"
	case NAT:
		return "nat"
	default:
		return fmt.Sprintf("Mode(%d)", int(m))
	}
}

// ParseMode parses "dr", "tun" or "nat", case-insensitively, and ipvsadm's
// names for them: "route"/"direct", "tunnel"/"ipip", "masq"/"masquerade".
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "dr", "route", "direct", "gatewaying":
		return DR, nil
	case "tun", "tunnel", "ipip":
		return TUN, nil
	case "nat", "masq", "masquerade", "masquerading":
		return NAT, nil
	default:
		return 0, fmt.Errorf("unknown real server mode %q (want dr, tun or nat)", s)
	}
}

// Options says what Apply does.
type Options struct {
	Mode Mode
	// VIPs are the virtual addresses the real server serves. DR and TUN
	// need at least one; NAT needs none, and checks that those given
	// are of the director's family.
	VIPs []netip.Addr
	// Interface is the real server's interface toward the director: where
	// the decapsulator goes (TUN) and whose ARP sysctls are set (DR,
	// TUN). NAT may name it to pin the default route to it.
	Interface string
	// Director is the director's address on the real servers' network:
	// the default gateway in NAT mode. Other modes refuse it.
	Director netip.Addr
	// Undo reverts what earlier runs recorded in the state file.
	Undo bool
	// DryRun reports what would be done, changing nothing.
	DryRun bool
	// StateFile overrides DefaultStateFile(Interface).
	StateFile string
	// XDPMode selects how the TUN decapsulator attaches; the zero value,
	// XDPAuto, tries driver mode and falls back to generic mode.
	XDPMode xvs.XDPMode
}

// Action is one step Apply took, or would take in a dry run.
type Action struct {
	What string // the change, or the state found when nothing needed changing
	Done bool   // the change was made
	Err  error  // the change failed
}

// String formats a as a report line: "+ " for a change made, "= " for
// nothing to do or a dry run, "! " for a failure.
func (a Action) String() string {
	switch {
	case a.Err != nil:
		return "! " + a.What + ": " + a.Err.Error()
	case a.Done:
		return "+ " + a.What
	default:
		return "= " + a.What
	}
}

// Apply prepares this host (the calling thread's network namespace) as opts
// says, or with opts.Undo reverts it, and returns the steps it took. It
// checks everything it can before changing anything; after a failed change
// it stops, records what was done for Undo, and returns the steps so far
// with the error.
func Apply(opts Options) ([]Action, error) {
	return applier{euid: os.Geteuid}.apply(opts)
}

// applier carries what tests substitute.
type applier struct {
	euid func() int
}

func (a applier) apply(opts Options) ([]Action, error) {
	if !opts.DryRun && a.euid() != 0 {
		return nil, errors.New("realserver: must run as root (CAP_NET_ADMIN for addresses, routes and sysctls, CAP_BPF and CAP_SYS_ADMIN for the decapsulator)")
	}
	if opts.Undo {
		return undo(opts)
	}
	p, err := prepare(opts)
	if err != nil {
		return nil, fmt.Errorf("realserver %s: %w", opts.Mode, err)
	}
	r := &runner{dry: opts.DryRun, st: p.st}
	switch opts.Mode {
	case DR:
		err = r.dr(p)
	case TUN:
		err = r.tun(p)
	case NAT:
		err = r.nat(p)
	}
	if r.changed {
		if errState := r.saveState(p.stateFile); errState != nil {
			err = errors.Join(err, errState)
		}
	}
	if err != nil {
		return r.actions, fmt.Errorf("realserver %s: %w", opts.Mode, err)
	}
	return r.actions, nil
}

// plan is Options checked against the host.
type plan struct {
	opts      Options
	vips      []netip.Addr // unmapped, sorted, unique
	lo        netlink.Link
	link      netlink.Link // Interface; nil in NAT without one
	stateFile string
	st        *state
}

func (p *plan) ifname() string { return p.opts.Interface }

func prepare(opts Options) (*plan, error) {
	p := &plan{opts: opts, stateFile: opts.StateFile}
	if p.stateFile == "" {
		p.stateFile = DefaultStateFile(opts.Interface)
	}
	switch opts.Mode {
	case DR, TUN, NAT:
	default:
		return nil, fmt.Errorf("invalid mode %v (want DR, TUN or NAT)", opts.Mode)
	}

	// The interface.
	switch {
	case opts.Interface == "" && opts.Mode != NAT:
		return nil, errors.New("no interface: name the real server's interface toward the director")
	case opts.Interface == "lo" && opts.Mode != NAT:
		return nil, errors.New("the interface toward the director cannot be lo: lo is where the VIPs go")
	case opts.Interface != "":
		l, err := netlink.LinkByName(opts.Interface)
		if err != nil {
			return nil, fmt.Errorf("interface %q: %w", opts.Interface, err)
		}
		p.link = l
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, fmt.Errorf("interface lo: %w", err)
	}
	p.lo = lo

	// The VIPs.
	for _, v := range opts.VIPs {
		if !v.IsValid() {
			return nil, errors.New("a VIP is empty")
		}
		v = v.Unmap()
		if v.IsUnspecified() || v.IsMulticast() || v.IsLoopback() || v.IsLinkLocalUnicast() {
			return nil, fmt.Errorf("VIP %v cannot be a service address", v)
		}
		p.vips = append(p.vips, v)
	}
	slices.SortFunc(p.vips, netip.Addr.Compare)
	p.vips = slices.Compact(p.vips)
	if opts.Mode != NAT && len(p.vips) == 0 {
		return nil, errors.New("no VIP: name the virtual addresses this real server serves")
	}
	if opts.Mode == TUN && len(p.vips) > decap.MaxVIPs {
		return nil, fmt.Errorf("%d VIPs, the decapsulator takes at most %d", len(p.vips), decap.MaxVIPs)
	}

	// The director.
	dir := opts.Director.Unmap()
	if opts.Mode != NAT && dir.IsValid() {
		return nil, fmt.Errorf("a director address is for NAT only (the default gateway); %v real servers answer clients directly", opts.Mode)
	}
	if opts.Mode == NAT {
		if err := checkDirector(p, dir); err != nil {
			return nil, err
		}
	}

	// A DR or TUN VIP must live on lo alone: on another interface the
	// real server would answer ARP or neighbour solicitations for it and
	// steal the director's traffic.
	if opts.Mode != NAT {
		addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("list addresses: %w", err)
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok || a.LinkIndex == lo.Attrs().Index || !slices.Contains(p.vips, ip.Unmap()) {
				continue
			}
			dev, _ := linkName(a.LinkIndex)
			return nil, fmt.Errorf("VIP %v is configured on %s (%s): a %v real server must hold it on lo only, or it answers ARP and ND for it; remove it from %s first",
				ip.Unmap(), dev, a.IPNet, opts.Mode, dev)
		}
	}

	// The decapsulator shares the interface with no other XDP program.
	if opts.Mode == TUN {
		st, err := decap.Inspect(p.link.Attrs().Index)
		if err != nil {
			return nil, err
		}
		if st.Attached && !st.Ours {
			return nil, fmt.Errorf("interface %s runs XDP program %q (id %d): the decapsulator cannot share it",
				opts.Interface, st.Name, st.ProgramID)
		}
	}

	// What earlier runs did.
	st, err := readState(p.stateFile)
	if err != nil {
		return nil, err
	}
	if st == nil {
		st = &state{Mode: opts.Mode.String(), Interface: opts.Interface}
	}
	if st.Mode != opts.Mode.String() || st.Interface != opts.Interface {
		return nil, fmt.Errorf("%s records a %s setup of interface %q; undo it first", p.stateFile, st.Mode, st.Interface)
	}
	p.st = st
	return p, nil
}

// checkDirector checks that dir can be the default gateway: an address of
// the right family on a directly connected network.
func checkDirector(p *plan, dir netip.Addr) error {
	if !dir.IsValid() {
		return errors.New("no director: NAT needs the director's address as the default gateway")
	}
	if dir.IsUnspecified() || dir.IsMulticast() || dir.IsLoopback() {
		return fmt.Errorf("director %v cannot be a gateway", dir)
	}
	for _, v := range p.vips {
		if v.Is4() != dir.Is4() {
			return fmt.Errorf("VIP family mismatch: VIP %v and director %v: replies to the VIP would not go back through the director", v, dir)
		}
	}
	routes, err := netlink.RouteGet(dir.AsSlice())
	if err != nil || len(routes) == 0 {
		return fmt.Errorf("no route to director %v: %w", dir, err)
	}
	r := routes[0]
	if r.Type == unix.RTN_LOCAL {
		return fmt.Errorf("director %v is an address of this host", dir)
	}
	if r.Gw != nil {
		return fmt.Errorf("director %v is not on a directly connected network (the kernel routes it via %v): the gateway must be", dir, r.Gw)
	}
	if p.link != nil && r.LinkIndex != p.link.Attrs().Index {
		dev, _ := linkName(r.LinkIndex)
		return fmt.Errorf("director %v is reached through %s, not %s", dir, dev, p.opts.Interface)
	}
	return nil
}

// runner takes the steps and keeps the report.
type runner struct {
	dry     bool
	st      *state
	changed bool
	actions []Action
}

// change makes one change (unless in a dry run) and reports it. fn returns
// detail to append to what, such as the mode an attachment used.
func (r *runner) change(what string, fn func() (string, error)) error {
	if r.dry {
		r.actions = append(r.actions, Action{What: what})
		return nil
	}
	detail, err := fn()
	if detail != "" {
		what += " " + detail
	}
	r.actions = append(r.actions, Action{What: what, Done: err == nil, Err: err})
	if err == nil {
		r.changed = true
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// note reports something already in place.
func (r *runner) note(what string) { r.actions = append(r.actions, Action{What: what}) }

func (r *runner) saveState(path string) error {
	if r.st.empty() {
		return writeState(path, r.st)
	}
	err := writeState(path, r.st)
	r.actions = append(r.actions, Action{What: "record the changes in " + path, Done: err == nil, Err: err})
	return err
}

// arpSysctls are the seed's ARP settings for DR and TUN.
func arpSysctls(iface string) [][2]string {
	var s [][2]string
	for _, dev := range []string{"all", "lo", iface} {
		s = append(s, [2]string{confPath(dev, "arp_ignore"), "1"}, [2]string{confPath(dev, "arp_announce"), "2"})
	}
	return s
}

func (r *runner) dr(p *plan) error {
	if err := r.sysctls(arpSysctls(p.ifname())); err != nil {
		return err
	}
	return r.vips(p)
}

func (r *runner) tun(p *plan) error {
	s := arpSysctls(p.ifname())
	for _, dev := range []string{"all", p.ifname(), "lo"} {
		s = append(s, [2]string{confPath(dev, "rp_filter"), "0"})
	}
	if err := r.sysctls(s); err != nil {
		return err
	}
	if err := r.vips(p); err != nil {
		return err
	}
	return r.decap(p)
}

func (r *runner) sysctls(s [][2]string) error {
	for _, kv := range s {
		if err := r.sysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) sysctl(path, want string) error {
	cur, err := readSysctl(path)
	if err != nil {
		return err
	}
	name := sysctlName(path)
	if cur == want {
		r.note(fmt.Sprintf("%s = %s: already", name, want))
		return nil
	}
	return r.change(fmt.Sprintf("set %s = %s (was %s)", name, want, cur), func() (string, error) {
		if err := writeSysctl(path, want); err != nil {
			return "", err
		}
		if !r.st.sysctlRecorded(path) {
			r.st.Sysctls = append(r.st.Sysctls, sysctlRecord{Path: path, Old: cur})
		}
		return "", nil
	})
}

func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// vips puts each VIP on lo and takes off those an earlier run added that
// are VIPs no more.
func (r *runner) vips(p *plan) error {
	addrs, err := netlink.AddrList(p.lo, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of lo: %w", err)
	}
	onLo := make(map[netip.Addr]bool)
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			onLo[ip.Unmap()] = true
		}
	}
	for _, v := range p.vips {
		prefix := hostPrefix(v).String()
		if onLo[v] {
			r.note(fmt.Sprintf("VIP %v on lo: already", v))
			continue
		}
		err := r.change(fmt.Sprintf("add VIP %s to lo", prefix), func() (string, error) {
			if err := netlink.AddrAdd(p.lo, &netlink.Addr{IPNet: ipNet(hostPrefix(v))}); err != nil {
				return "", err
			}
			if !r.st.addrRecorded(prefix) {
				r.st.Addrs = append(r.st.Addrs, prefix)
			}
			return "", nil
		})
		if err != nil {
			return err
		}
	}
	for _, s := range slices.Clone(r.st.Addrs) {
		pfx, err := netip.ParsePrefix(s)
		if err != nil || slices.Contains(p.vips, pfx.Addr()) {
			continue
		}
		err = r.change(fmt.Sprintf("remove %s from lo (added by an earlier run, no longer a VIP)", s), func() (string, error) {
			if err := delAddr(p.lo, pfx); err != nil {
				return "", err
			}
			r.st.Addrs = slices.DeleteFunc(r.st.Addrs, func(a string) bool { return a == s })
			return "", nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// delAddr removes prefix from l; an address already gone is no error.
func delAddr(l netlink.Link, prefix netip.Prefix) error {
	err := netlink.AddrDel(l, &netlink.Addr{IPNet: ipNet(prefix)})
	if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return nil
	}
	return err
}

func addrStrings(as []netip.Addr) []string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return s
}

func (r *runner) decap(p *plan) error {
	ifindex := p.link.Attrs().Index
	vips := addrStrings(p.vips)
	cur, err := decap.Inspect(ifindex)
	if err != nil {
		return err
	}
	if rec := r.st.Decap; rec != nil && cur.Ours && cur.ProgramID == rec.ProgramID && slices.Equal(rec.VIPs, vips) &&
		(p.opts.XDPMode == xvs.XDPAuto || p.opts.XDPMode == cur.Mode) {
		r.note(fmt.Sprintf("decapsulator on %s for %s: already (%s mode, program %d)", p.ifname(), strings.Join(vips, ", "), cur.Mode, cur.ProgramID))
		return nil
	}
	verb := "attach"
	if cur.Ours {
		verb = "replace"
	}
	return r.change(fmt.Sprintf("%s decapsulator on %s for %s", verb, p.ifname(), strings.Join(vips, ", ")), func() (string, error) {
		mode, err := decap.AttachPersistent(ifindex, p.opts.XDPMode, decap.Config{VIPs: p.vips})
		if err != nil {
			return "", err
		}
		rec := &decapRecord{VIPs: vips, Mode: mode.String()}
		r.st.Decap = rec
		if st, err := decap.Inspect(ifindex); err == nil {
			rec.ProgramID = st.ProgramID
		}
		return fmt.Sprintf("(%s mode, program %d)", mode, rec.ProgramID), nil
	})
}

func (r *runner) nat(p *plan) error {
	dir := p.opts.Director.Unmap()
	family := familyOf(dir)
	dev := 0
	if p.link != nil {
		dev = p.link.Attrs().Index
	}
	defs, err := defaultRoutes(family)
	if err != nil {
		return err
	}
	if len(defs) == 1 && isVia(defs[0], dir, dev) {
		r.note(fmt.Sprintf("default route via %v: already", dir))
		return nil
	}
	old := make([]routeRecord, len(defs))
	for i, d := range defs {
		if old[i], err = toRecord(d, family); err != nil {
			return err
		}
	}
	ours := &netlink.Route{
		Family:    family,
		Dst:       zeroNet(family),
		Gw:        dir.AsSlice(),
		LinkIndex: dev,
		Table:     unix.RT_TABLE_MAIN,
		Protocol:  unix.RTPROT_BOOT, // what route(8) and ip-route(8) use
	}
	what := fmt.Sprintf("add default route via %v", dir)
	if len(defs) > 0 {
		// Taking the lowest metric lets the kernel swap the routes in
		// one step: there is always a default route.
		ours.Priority = defs[0].Priority
		what = fmt.Sprintf("replace default route %s with default via %v", routeStrings(old), dir)
	}
	if p.link != nil {
		what += " dev " + p.ifname()
	}
	return r.change(what, func() (string, error) {
		if len(defs) > 0 {
			err = netlink.RouteReplace(ours)
		} else {
			err = netlink.RouteAdd(ours)
		}
		if err != nil {
			return "", err
		}
		// Record the route as the kernel completed it (IPv6 metric
		// 1024, the interface it chose), so that Undo finds it.
		added, err := installedVia(family, dir, dev)
		if err != nil {
			return "", err
		}
		if r.st.Route == nil {
			r.st.Route = &routeChange{}
		}
		ch := r.st.Route
		ch.Added = added
		// Keep what the first run removed; add default routes that
		// appeared since, but never one of ours.
		for _, o := range old {
			if o.Gateway == dir.String() && len(o.NextHops) == 0 {
				continue
			}
			if !slices.ContainsFunc(ch.Removed, func(x routeRecord) bool { return x.String() == o.String() }) {
				ch.Removed = append(ch.Removed, o)
			}
		}
		var errs []error
		for i := 1; i < len(defs); i++ {
			if err := netlink.RouteDel(&defs[i]); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("delete %v: %w", old[i], err))
			}
		}
		return "", errors.Join(errs...)
	})
}

// installedVia returns the record of the installed default route via gw.
func installedVia(family int, gw netip.Addr, dev int) (routeRecord, error) {
	defs, err := defaultRoutes(family)
	if err != nil {
		return routeRecord{}, err
	}
	for _, d := range defs {
		if isVia(d, gw, dev) {
			return toRecord(d, family)
		}
	}
	return routeRecord{}, fmt.Errorf("default route via %v not found after adding it", gw)
}
