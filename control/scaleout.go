package control

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/control/connsync"
	"github.com/xvs-lb/xvs/control/failover"
	"github.com/xvs-lb/xvs/dataplane"
)

// syncEvery is how often connection events are collected from the workers
// and handed to the syncer (which batches them into datagrams).
const syncEvery = 10 * time.Millisecond

func toWire(sc dataplane.SyncedConn, expires time.Duration) connsync.Conn {
	return connsync.Conn{
		Proto: sc.Proto, Client: sc.Client, Virtual: sc.Virtual, Real: sc.Real, Local: sc.Local,
		Method: uint8(sc.Method), State: uint8(sc.State), Expires: expires,
		PeerMAC: sc.PeerMAC, InPort: uint8(sc.InPort),
	}
}

func fromWire(c connsync.Conn) dataplane.SyncedConn {
	return dataplane.SyncedConn{
		Proto: c.Proto, Client: c.Client, Virtual: c.Virtual, Real: c.Real, Local: c.Local,
		Method: dataplane.Method(c.Method), State: conntrack.State(c.State),
		PeerMAC: c.PeerMAC, InPort: int(c.InPort),
	}
}

// syncSource serves a joining director's snapshot from the connection
// table.
type syncSource struct{ d *Director }

func (s syncSource) Snapshot(yield func(connsync.Conn) bool) {
	eng := s.d.eng
	eng.Conntrack().Range(func(c *conntrack.Conn, expires time.Duration) bool {
		ev := dataplane.ConnEvent{Orig: c.Orig, Value: c.Value, State: c.State}
		if sc, ok := eng.Describe(&ev); ok {
			return yield(toWire(sc, expires))
		}
		return true
	})
}

// syncSink puts other directors' connections in the table.
type syncSink struct{ d *Director }

func (s syncSink) Apply(conns []connsync.Conn) {
	for _, c := range conns {
		s.d.eng.Import(fromWire(c))
	}
}

func (d *Director) startSync(ctx context.Context, s *config.Sync) error {
	if s == nil {
		return nil
	}
	syncer, err := connsync.Start(ctx, connsync.Config{
		Listen: s.Listen, Peers: s.Peers, Key: []byte(s.Key), NodeID: s.NodeID, MaxBytesPerSecond: s.MaxBytesPerSecond,
	}, syncSource{d}, syncSink{d}, d.log)
	if err != nil {
		return err
	}
	d.syncer = syncer
	go func() {
		t := time.NewTicker(syncEvery)
		defer t.Stop()
		expires := d.eng.Conntrack().Timeouts()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				d.eng.DrainConnEvents(func(ev *dataplane.ConnEvent) {
					if sc, ok := d.eng.Describe(ev); ok {
						e := expires.TCP
						if ev.Orig.Proto != 6 {
							e = expires.UDP
						}
						syncer.Publish(toWire(sc, e))
					}
				})
			}
		}
	}()
	d.log.Info("connection sync started", zap.Stringer("listen", s.Listen), zap.Int("peers", len(s.Peers)))
	return nil
}

func (d *Director) startFailover(ctx context.Context, f *config.Failover) error {
	if f == nil {
		return nil
	}
	cfg := failover.Config{Listen: f.Listen, Peer: f.Peer, Priority: uint8(f.Priority), Interval: f.Interval, Key: []byte(f.Key)}
	for _, a := range f.Addresses {
		cfg.Addresses = append(cfg.Addresses, failover.Address{Prefix: a.Prefix, Interface: a.Interface})
	}
	p, err := failover.Start(ctx, cfg, d.log, func(s failover.State) {
		d.log.Info("failover", zap.Stringer("role", s))
	})
	if err != nil {
		return err
	}
	d.failover = p
	return nil
}
