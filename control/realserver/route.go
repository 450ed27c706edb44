package realserver

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeRecord is a default route as the state file keeps it. Interfaces are
// kept by name, which survives a re-creation of the interface where its
// index does not. Attributes not listed (metrics other than the MTU,
// encapsulations, nexthop objects) are not restored.
type routeRecord struct {
	Family   int             `json:"family"` // 4 or 6
	Gateway  string          `json:"gateway,omitempty"`
	Dev      string          `json:"dev,omitempty"`
	Metric   int             `json:"metric,omitempty"`
	Protocol int             `json:"protocol,omitempty"`
	Scope    int             `json:"scope,omitempty"`
	Flags    int             `json:"flags,omitempty"`
	Src      string          `json:"src,omitempty"`
	MTU      int             `json:"mtu,omitempty"`
	NextHops []nextHopRecord `json:"nexthops,omitempty"`
}

type nextHopRecord struct {
	Gateway string `json:"gateway,omitempty"`
	Dev     string `json:"dev,omitempty"`
	Weight  int    `json:"weight"`
	Flags   int    `json:"flags,omitempty"`
}

func (r routeRecord) String() string {
	var b strings.Builder
	b.WriteString("default")
	if r.Gateway != "" {
		b.WriteString(" via " + r.Gateway)
	}
	if r.Dev != "" {
		b.WriteString(" dev " + r.Dev)
	}
	for _, nh := range r.NextHops {
		fmt.Fprintf(&b, " nexthop via %s dev %s weight %d", nh.Gateway, nh.Dev, nh.Weight)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	return b.String()
}

func routeStrings(rs []routeRecord) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}

func familyOf(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func recordFamily(family int) int {
	if family == netlink.FAMILY_V4 {
		return 4
	}
	return 6
}

func linkName(index int) (string, error) {
	if index == 0 {
		return "", nil
	}
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return "", fmt.Errorf("interface %d: %w", index, err)
	}
	return l.Attrs().Name, nil
}

func linkIndex(name string) (int, error) {
	if name == "" {
		return 0, nil
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	return l.Attrs().Index, nil
}

func ipString(ip net.IP) string {
	if ip == nil {
		return ""
	}
	return ip.String()
}

func toRecord(r netlink.Route, family int) (routeRecord, error) {
	dev, err := linkName(r.LinkIndex)
	if err != nil {
		return routeRecord{}, err
	}
	rec := routeRecord{
		Family:   recordFamily(family),
		Gateway:  ipString(r.Gw),
		Dev:      dev,
		Metric:   r.Priority,
		Protocol: int(r.Protocol),
		Scope:    int(r.Scope),
		Flags:    r.Flags,
		Src:      ipString(r.Src),
		MTU:      r.MTU,
	}
	for _, nh := range r.MultiPath {
		dev, err := linkName(nh.LinkIndex)
		if err != nil {
			return routeRecord{}, err
		}
		rec.NextHops = append(rec.NextHops, nextHopRecord{
			Gateway: ipString(nh.Gw), Dev: dev, Weight: nh.Hops + 1, Flags: nh.Flags,
		})
	}
	return rec, nil
}

func parseIP(s string) (net.IP, error) {
	if s == "" {
		return nil, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return nil, err
	}
	return a.AsSlice(), nil
}

func (r routeRecord) route() (*netlink.Route, error) {
	family := netlink.FAMILY_V4
	if r.Family == 6 {
		family = netlink.FAMILY_V6
	}
	gw, err := parseIP(r.Gateway)
	if err != nil {
		return nil, fmt.Errorf("route %v: %w", r, err)
	}
	src, err := parseIP(r.Src)
	if err != nil {
		return nil, fmt.Errorf("route %v: %w", r, err)
	}
	idx, err := linkIndex(r.Dev)
	if err != nil {
		return nil, fmt.Errorf("route %v: %w", r, err)
	}
	rt := &netlink.Route{
		Family:    family,
		Dst:       zeroNet(family),
		Gw:        gw,
		LinkIndex: idx,
		Priority:  r.Metric,
		Protocol:  netlink.RouteProtocol(r.Protocol),
		Scope:     netlink.Scope(r.Scope),
		Flags:     r.Flags,
		Src:       src,
		MTU:       r.MTU,
		Table:     unix.RT_TABLE_MAIN,
	}
	for _, nh := range r.NextHops {
		gw, err := parseIP(nh.Gateway)
		if err != nil {
			return nil, fmt.Errorf("route %v: %w", r, err)
		}
		idx, err := linkIndex(nh.Dev)
		if err != nil {
			return nil, fmt.Errorf("route %v: %w", r, err)
		}
		rt.MultiPath = append(rt.MultiPath, &netlink.NexthopInfo{Gw: gw, LinkIndex: idx, Hops: nh.Weight - 1, Flags: nh.Flags})
	}
	return rt, nil
}

func zeroNet(family int) *net.IPNet {
	if family == netlink.FAMILY_V4 {
		return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	}
	return &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
}

// defaultRoutes lists the unicast default routes of family in the main
// table, lowest metric first.
func defaultRoutes(family int) ([]netlink.Route, error) {
	all, err := netlink.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var defs []netlink.Route
	for _, r := range all {
		if r.Type != unix.RTN_UNICAST {
			continue
		}
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		defs = append(defs, r)
	}
	slices.SortStableFunc(defs, func(a, b netlink.Route) int { return cmp.Compare(a.Priority, b.Priority) })
	return defs, nil
}

// isVia reports whether r is a single-path route through gw (and dev, when
// not zero).
func isVia(r netlink.Route, gw netip.Addr, dev int) bool {
	a, ok := netip.AddrFromSlice(r.Gw)
	return ok && a.Unmap() == gw && len(r.MultiPath) == 0 && (dev == 0 || r.LinkIndex == dev)
}

// sameRoute reports whether the installed route r is the recorded route rec.
func sameRoute(r netlink.Route, family int, rec routeRecord) bool {
	got, err := toRecord(r, family)
	return err == nil && got.Gateway == rec.Gateway && got.Metric == rec.Metric &&
		(rec.Dev == "" || got.Dev == rec.Dev) && len(got.NextHops) == len(rec.NextHops)
}

// ignoreExist treats "the route is already there" as success.
func ignoreExist(err error) error {
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}
