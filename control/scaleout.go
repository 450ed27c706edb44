package control

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/control/api"
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

// startSync runs [sync]'s roles and the loop that hands the workers'
// connection events to the master. The loop runs whenever the file had
// [sync] at start (the data plane queues events then), whether or not a role
// runs: xvsadm --start-daemon may start one later.
func (d *Director) startSync(ctx context.Context, s *config.Sync) error {
	if s == nil {
		return nil
	}
	d.syncCtx = ctx
	if err := d.setSync(s); err != nil {
		return err
	}
	go d.publishLoop(ctx)
	return nil
}

// publishLoop collects the workers' connection events every syncEvery and
// publishes them with the running syncer; with no master they are dropped,
// as IPVS syncs only what is made while its master daemon runs.
func (d *Director) publishLoop(ctx context.Context) {
	t := time.NewTicker(syncEvery)
	defer t.Stop()
	expires := d.eng.Conntrack().Timeouts()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.publishMu.Lock()
		syncer := d.syncer.Load()
		d.eng.DrainConnEvents(func(ev *dataplane.ConnEvent) {
			if syncer == nil {
				return
			}
			if sc, ok := d.eng.Describe(ev); ok {
				e := expires.TCP
				if ev.Orig.Proto != 6 {
					e = expires.UDP
				}
				syncer.Publish(toWire(sc, e))
			}
		})
		d.publishMu.Unlock()
	}
}

// setSync runs the roles s names, in place of those that run: the syncer
// is restarted on every change of [sync], since its socket, roles and sync id
// are fixed at its start. On failure the roles that ran are restored where
// they can be. Callers hold d.mu (or are Start).
func (d *Director) setSync(s *config.Sync) error {
	d.publishMu.Lock()
	defer d.publishMu.Unlock()
	old := d.syncer.Swap(nil)
	if old != nil {
		_ = old.Close() // frees the port for the next
	}
	// Events of connections made before a master starts are not its to
	// send: drop them, so that it sends only what is made while it runs.
	d.eng.DrainConnEvents(func(*dataplane.ConnEvent) {})
	if s == nil || !s.Master && !s.Backup {
		if old != nil {
			d.log.Info("connection sync stopped")
		}
		return nil
	}
	syncer, err := connsync.Start(d.syncCtx, syncConfig(s), syncSource{d}, syncSink{d}, d.log)
	if err != nil {
		if old != nil && d.cfg != nil && d.cfg.Sync != nil && d.cfg.Sync != s {
			if back, berr := connsync.Start(d.syncCtx, syncConfig(d.cfg.Sync), syncSource{d}, syncSink{d}, d.log); berr == nil {
				d.syncer.Store(back)
			} else {
				err = fmt.Errorf("%w (and the roles that ran did not start again: %v)", err, berr)
			}
		}
		return err
	}
	d.syncer.Store(syncer)
	d.log.Info("connection sync started", zap.Stringer("listen", s.Listen), zap.Int("peers", len(s.Peers)),
		zap.Bool("master", s.Master), zap.Bool("backup", s.Backup), zap.Uint8("sync_id", s.SyncID), zap.String("interface", s.Interface))
	return nil
}

func syncConfig(s *config.Sync) connsync.Config {
	var roles connsync.Role
	if s.Master {
		roles |= connsync.Master
	}
	if s.Backup {
		roles |= connsync.Backup
	}
	return connsync.Config{
		Listen: s.Listen, Peers: s.Peers, Key: []byte(s.Key), NodeID: s.NodeID, MaxBytesPerSecond: s.MaxBytesPerSecond,
		Roles: roles, SyncID: s.SyncID, Interface: s.Interface,
	}
}

// daemons lists the sync roles that run, as -L --daemon shows them.
func (d *Director) daemons() []api.SyncDaemonState {
	d.mu.Lock()
	s := d.cfg.Sync
	d.mu.Unlock()
	syncer := d.syncer.Load()
	if s == nil || syncer == nil {
		return nil
	}
	st := syncer.Stats()
	ifname := s.Interface
	if ifname == "" {
		ifname = interfaceOf(s.Listen.Addr())
	}
	var out []api.SyncDaemonState
	if s.Master {
		out = append(out, api.SyncDaemonState{Role: api.RoleMaster, Interface: ifname, SyncID: int(s.SyncID), Sent: st.SentEntries})
	}
	if s.Backup {
		out = append(out, api.SyncDaemonState{Role: api.RoleBackup, Interface: ifname, SyncID: int(s.SyncID),
			Received: st.RecvEntries - st.WrongSyncID, WrongSyncID: st.WrongSyncID})
	}
	return out
}

// interfaceOf names the interface that holds a, or "-" when none does
// (an unspecified listen address: the routes choose).
func interfaceOf(a netip.Addr) string {
	ifs, err := net.Interfaces()
	if err != nil {
		return "-"
	}
	for _, ifi := range ifs {
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			if p, err := netip.ParsePrefix(ad.String()); err == nil && p.Addr().Unmap() == a.Unmap() {
				return ifi.Name
			}
		}
	}
	return "-"
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
