package dataplane

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// The director learns where to send each real server's frames from the
// kernel: the route says which interface and which next hop, the neighbour
// table says that hop's MAC. Workers never wait for this: until a real
// server's MAC is known its frames are dropped and counted (no_next_hop).

const (
	resolveEvery = 250 * time.Millisecond
	// resolvePending is how soon the resolver looks again while a real
	// server has no next hop: the kernel answers a solicitation within a
	// round trip, and every frame for that server is dropped meanwhile.
	resolvePending = 10 * time.Millisecond
	routeTTL       = 5 * time.Second
)

// resolveLoop keeps real servers' next hops fresh: every resolveEvery, and
// from resolvePending on, backing off, while one is unresolved (a new real
// server, after Apply kicks it; or one that does not answer).
func (e *Engine) resolveLoop(ctx context.Context) {
	wait := resolvePending
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.resolveKick:
			wait = resolvePending
			timer.Reset(wait)
		case <-timer.C:
			e.mu.Lock()
			pending := e.resolveAll(e.table.Load())
			e.mu.Unlock()
			if pending {
				timer.Reset(wait)
				wait = min(2*wait, resolveEvery)
			} else {
				wait = resolvePending
				timer.Reset(resolveEvery)
			}
		}
	}
}

// resolveAll refreshes the next hop of every real server of t, and reports
// whether some are still unresolved. Called with e.mu held.
func (e *Engine) resolveAll(t *Table) (pending bool) {
	neighs := map[netip.Addr][6]byte{}
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		list, err := netlink.NeighList(0, family)
		if err != nil {
			e.log.Warn("list neighbours", zap.Error(err))
			continue
		}
		for _, n := range list {
			if n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE|netlink.NUD_PERMANENT|netlink.NUD_NOARP) == 0 || len(n.HardwareAddr) != 6 {
				continue
			}
			if a, ok := netip.AddrFromSlice(n.IP); ok {
				var mac [6]byte
				copy(mac[:], n.HardwareAddr)
				neighs[a.Unmap()] = mac
			}
		}
	}
	if e.routes == nil {
		e.routes = map[netip.Addr]route{}
	}
	now := time.Now()
	moved := map[uint32]bool{}
	defer func() { e.dropDestFlows(moved) }() // offloaded flows carry the old next hop
	for _, d := range t.dests {
		if d == nil {
			continue
		}
		r, ok := e.routes[d.Addr]
		if !ok || now.Sub(r.at) > routeTTL {
			r = e.lookupRoute(d.Addr)
			r.at = now
			e.routes[d.Addr] = r
		}
		oldMAC, oldPort, had := d.hop.load()
		if r.port < 0 {
			d.hop.clear()
			if had {
				moved[d.ID] = true
			}
			continue
		}
		if mac, ok := neighs[r.via]; ok {
			d.hop.store(mac, r.port)
			if had && (mac != oldMAC || r.port != oldPort) {
				moved[d.ID] = true
			}
			continue
		}
		// Keep a MAC we had while the kernel re-resolves it; ask the
		// kernel to resolve it either way.
		e.solicit(r)
		if _, _, ok := d.hop.load(); !ok {
			pending = true
		}
	}
	return pending
}

type route struct {
	port    int        // director port slot, -1 if not through a director interface
	ifindex int        // kernel interface index
	via     netip.Addr // the real server itself, or the gateway towards it
	at      time.Time
}

func (e *Engine) lookupRoute(addr netip.Addr) route {
	r := route{port: -1}
	routes, err := netlink.RouteGet(net.IP(addr.AsSlice()))
	if err != nil || len(routes) == 0 {
		e.log.Warn("no route to real server", zap.Stringer("addr", addr), zap.Error(err))
		return r
	}
	r.ifindex = routes[0].LinkIndex
	r.via = addr
	if gw, ok := netip.AddrFromSlice(routes[0].Gw); ok && routes[0].Gw != nil {
		r.via = gw.Unmap()
	}
	for i, p := range e.ports {
		if p.Ifindex == r.ifindex {
			r.port = i
		}
	}
	if r.port < 0 {
		e.log.Warn("real server is not reachable through a director interface", zap.Stringer("addr", addr), zap.Int("ifindex", r.ifindex))
	}
	return r
}

// solicit asks the kernel to resolve r.via (NTF_USE: as if a packet were
// waiting for it). If the kernel refuses that, a datagram to the discard port
// makes it resolve the address all the same.
func (e *Engine) solicit(r route) {
	family := netlink.FAMILY_V4
	if r.via.Is6() {
		family = netlink.FAMILY_V6
	}
	err := netlink.NeighSet(&netlink.Neigh{
		LinkIndex: r.ifindex,
		Family:    family,
		State:     netlink.NUD_INCOMPLETE,
		Flags:     netlink.NTF_USE,
		IP:        net.IP(r.via.AsSlice()),
	})
	if err == nil {
		return
	}
	c, err2 := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(r.via, 9)))
	if err2 != nil {
		e.log.Debug("solicit neighbour", zap.Stringer("addr", r.via), zap.Error(err), zap.NamedError("fallback", err2))
		return
	}
	_, _ = c.Write(nil)
	_ = c.Close()
}

// WaitResolved waits until every configured real server has a next hop, or
// timeout passes; it reports whether all were resolved. A director that
// starts forwarding before that drops the first packets of early
// connections (counted as no_next_hop), which clients then retransmit.
func (e *Engine) WaitResolved(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		all := true
		for _, d := range e.table.Load().dests {
			if d != nil && !d.Draining {
				if _, _, ok := d.hop.load(); !ok {
					all = false
					break
				}
			}
		}
		if all {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
		e.mu.Lock()
		e.resolveAll(e.table.Load())
		e.mu.Unlock()
	}
}
