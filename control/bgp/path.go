package bgp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// hostRoute builds the path announcing vip/32 or vip/128 via nextHop, with
// origin IGP and the given communities. The same path, passed to
// DeletePath, withdraws it.
func hostRoute(vip, nextHop netip.Addr, communities []uint32) (*api.Path, error) {
	attrs := []bgppkt.PathAttributeInterface{bgppkt.NewPathAttributeOrigin(bgppkt.BGP_ORIGIN_ATTR_TYPE_IGP)}
	var nlri bgppkt.AddrPrefixInterface
	if vip.Is4() {
		nlri = bgppkt.NewIPAddrPrefix(32, vip.String())
		attrs = append(attrs, bgppkt.NewPathAttributeNextHop(nextHop.String()))
	} else {
		nlri = bgppkt.NewIPv6AddrPrefix(128, vip.String())
		attrs = append(attrs, bgppkt.NewPathAttributeMpReachNLRI(nextHop.String(), []bgppkt.AddrPrefixInterface{nlri}))
	}
	if len(communities) > 0 {
		attrs = append(attrs, bgppkt.NewPathAttributeCommunities(communities))
	}
	return apiutil.NewPath(nlri, false, attrs, time.Now())
}

// learntRoute converts a path from the RIB into a Route; ok is false for
// paths this speaker originated itself.
func learntRoute(p *api.Path) (r Route, ok bool, err error) {
	peer, perr := netip.ParseAddr(p.GetNeighborIp())
	if perr != nil || peer.IsUnspecified() {
		// Local paths have no neighbour ("<nil>" or "0.0.0.0").
		return Route{}, false, nil
	}
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		return Route{}, false, err
	}
	pfx, err := netip.ParsePrefix(nlri.String())
	if err != nil {
		return Route{}, false, fmt.Errorf("prefix %q: %w", nlri.String(), err)
	}
	attrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		return Route{}, false, err
	}
	r = Route{Prefix: pfx, Peer: peer.Unmap(), Best: p.GetBest()}
	for _, a := range attrs {
		switch a := a.(type) {
		case *bgppkt.PathAttributeNextHop:
			r.NextHop = ipToAddr(a.Value)
		case *bgppkt.PathAttributeMpReachNLRI:
			r.NextHop = ipToAddr(a.Nexthop)
		case *bgppkt.PathAttributeCommunities:
			for _, c := range a.Value {
				r.Communities = append(r.Communities, formatCommunity(c))
			}
		case *bgppkt.PathAttributeAsPath:
			for _, seg := range a.Value {
				r.ASPath = append(r.ASPath, seg.GetAS()...)
			}
		}
	}
	if !r.NextHop.IsValid() {
		return Route{}, false, errors.New("no next hop")
	}
	return r, true, nil
}

func ipToAddr(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}
