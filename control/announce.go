package control

import (
	"context"
	"net/netip"
	"slices"

	"go.uber.org/zap"

	"github.com/xvs-lb/xvs/control/bgp"
	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/dataplane"
)

// startBGP starts the BGP speaker when the configuration has [bgp].
func (d *Director) startBGP(ctx context.Context, b *config.BGP) error {
	if b == nil {
		return nil
	}
	cfg := bgp.Config{
		LocalAS: b.LocalAS, RouterID: b.RouterID, ListenPort: int32(b.ListenPort),
		NextHop: b.NextHop, NextHop6: b.NextHop6, Communities: b.Communities, HoldTime: b.HoldTime,
	}
	for _, p := range b.Peers {
		cfg.Peers = append(cfg.Peers, bgp.Peer{Address: p.Address, AS: p.AS, Port: p.Port, Passive: p.Passive, Password: p.Password})
	}
	s, err := bgp.Start(ctx, cfg, d.log)
	if err != nil {
		return err
	}
	d.bgp = s
	return nil
}

// healthyVIPs are the VIPs worth announcing: those with at least one real
// server that takes new connections. None while draining.
func (d *Director) healthyVIPs() []netip.Addr {
	if d.draining {
		return nil
	}
	set := map[netip.Addr]bool{}
	for _, s := range d.eng.Table().Services() {
		up := slices.ContainsFunc(s.Dests, func(x *dataplane.Dest) bool { return x.Weight > 0 && !x.Draining })
		if !up {
			continue
		}
		for _, m := range s.MatchesOrSelf() {
			set[m.VIP] = true
		}
	}
	out := make([]netip.Addr, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// announce makes the announced VIPs follow the running state. Called with
// d.mu held, after every change.
func (d *Director) announce() {
	if d.bgp == nil {
		return
	}
	vips := d.healthyVIPs()
	if err := d.bgp.SetVIPs(vips); err != nil {
		d.log.Error("announce VIPs", zap.Error(err))
		return
	}
	d.log.Debug("VIPs announced", zap.Int("count", len(vips)))
}

// Drain withdraws every VIP (xvsadm drain), so routers send new flows to
// the other directors, while this one keeps forwarding what still comes.
func (d *Director) Drain(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.draining = on
	d.log.Info("drain", zap.Bool("on", on))
	d.announce()
}
