// Package control is the director's control plane: it turns a validated
// configuration into the data plane's service table, reloads it live, and
// reports state in ipvsadm's layouts. Nothing below it knows about TOML.
package control

import (
	"context"
	"crypto/sha256"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/control/bgp"
	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/control/connsync"
	"github.com/xvs-lb/xvs/control/failover"
	"github.com/xvs-lb/xvs/dataplane"
	"github.com/xvs-lb/xvs/dataplane/xsk"
)

// Director is a running director: a data plane, the configuration it runs
// (the file's, plus what xvsadm changed), health checks and the control
// socket.
type Director struct {
	log   *zap.Logger
	path  string
	eng   *dataplane.Engine
	rates *rateEstimator
	srv   *api.Server
	stop  context.CancelFunc

	mu       sync.Mutex
	cfg      *config.Config
	health   *healthState
	bgp      *bgp.Speaker
	failover *failover.Pair
	draining bool

	// syncer runs [sync]'s roles (nil: none); replaced under mu and
	// publishMu, read by the publish loop under publishMu. syncCtx is the
	// director's, which syncers run under; syncEvents: the data plane
	// queues connection events (the file had [sync] at start).
	syncer     atomic.Pointer[connsync.Syncer]
	publishMu  sync.Mutex
	syncCtx    context.Context
	syncEvents bool

	// Reloads of the file, by result (xvs_reloads_total).
	reloadsOK, reloadsFailed atomic.Uint64
}

// Options are the director's settings that are not in the configuration
// file.
type Options struct {
	// Socket is the control socket's path; empty: none.
	Socket string
	// SocketGroup admits members of this group besides root; -1: root only.
	SocketGroup int
	// Watch reloads the configuration when its file changes.
	Watch bool
	// Metrics is where Prometheus metrics are served; empty: nowhere.
	Metrics string
}

// Start sets up the data plane for cfg, as config.Load read it, and starts
// forwarding. Reloads read cfg.Source again.
func Start(ctx context.Context, cfg *config.Config, log *zap.Logger) (*Director, error) {
	return StartWith(ctx, cfg, log, Options{SocketGroup: -1})
}

// StartWith is Start with options.
func StartWith(ctx context.Context, cfg *config.Config, log *zap.Logger, opts Options) (*Director, error) {
	path := cfg.Source
	ecfg := EngineConfig(cfg)
	ecfg.Logger = log
	eng, err := dataplane.New(ecfg)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(ctx)
	d := &Director{log: log, path: path, eng: eng, cfg: cfg, rates: newRateEstimator(eng), stop: stop, syncEvents: ecfg.SyncEvents}
	d.health = newHealthState(d)
	if err := eng.Apply(d.specs(cfg)); err != nil {
		stop()
		return nil, fmt.Errorf("%s: %w", path, joinClose(err, eng))
	}
	eng.Run(ctx)
	go d.rates.run(ctx)
	d.mu.Lock()
	d.updateHealth()
	d.mu.Unlock()
	if err := d.startBGP(ctx, cfg.BGP); err != nil {
		d.Close()
		return nil, fmt.Errorf("bgp: %w", err)
	}
	if err := d.startSync(ctx, cfg.Sync); err != nil {
		d.Close()
		return nil, fmt.Errorf("sync: %w", err)
	}
	if err := d.startFailover(ctx, cfg.Failover); err != nil {
		d.Close()
		return nil, fmt.Errorf("failover: %w", err)
	}
	d.mu.Lock()
	d.announce()
	d.mu.Unlock()
	if !eng.WaitResolved(2 * time.Second) {
		log.Warn("some real servers' next hops are not resolved yet; their first packets will be dropped (no_next_hop)")
	}
	if opts.Metrics != "" {
		if err := d.serveMetrics(ctx, opts.Metrics); err != nil {
			d.Close()
			return nil, fmt.Errorf("metrics on %s: %w", opts.Metrics, err)
		}
	}
	if opts.Watch {
		if err := d.watch(ctx); err != nil {
			log.Warn("not watching the configuration file; reload with SIGHUP or xvsadm reload", zap.Error(err))
		}
	}
	if opts.Socket != "" {
		srv, err := api.Listen(opts.Socket, opts.SocketGroup, d, log)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.srv = srv
	}
	log.Info("director started", zap.String("config", path), zap.Int("services", len(cfg.Services)), zap.String("socket", opts.Socket))
	return d, nil
}

func joinClose(err error, eng *dataplane.Engine) error {
	if cerr := eng.Close(); cerr != nil {
		return fmt.Errorf("%w (and on close: %v)", err, cerr)
	}
	return err
}

// CookieSecret is the SYN proxy's cookie secret: derived from the [sync]
// key, so that the directors that sync connections also accept each
// other's cookies (an ACK that ECMP moves to another director still opens
// its connection), and not the key itself, which authenticates sync
// datagrams. Nil (a random secret) without [sync].
func CookieSecret(cfg *config.Config) []byte {
	if cfg.Sync == nil || cfg.Sync.Key == "" {
		return nil
	}
	sum := sha256.Sum256([]byte("xvs syn cookies\x00" + cfg.Sync.Key))
	return sum[:]
}

// EngineConfig derives the data plane's settings from a configuration.
func EngineConfig(cfg *config.Config) dataplane.Config {
	return dataplane.Config{
		Interfaces:      cfg.Director.Interfaces,
		XDPMode:         cfg.Director.XDPMode,
		ZeroCopy:        cfg.Director.ZeroCopy,
		CPUs:            cfg.Director.CPUs,
		SloppyTCP:       cfg.Director.SloppyTCP,
		SyncEvents:      cfg.Sync != nil,
		Batch:           cfg.Director.BatchSize,
		IdleSpins:       cfg.Director.IdleSpins,
		BusyPoll:        cfg.Director.BusyPoll,
		VerifyChecksums: cfg.Director.VerifyChecksums,
		CookieSecret:    CookieSecret(cfg),
		FastPath:        cfg.Director.FastPath,
		UMEM:            xsk.UMEMConfig{NumFrames: cfg.Director.UMEMFrames},
		Socket: xsk.SocketConfig{
			RxSize: cfg.Director.RingSize, TxSize: cfg.Director.RingSize,
			FillSize: cfg.Director.RingSize, CompSize: cfg.Director.RingSize,
			DisableNeedWakeup: cfg.Director.NoNeedWakeup,
		},
		Conntrack: conntrack.Config{
			Capacity:   cfg.Director.Connections,
			FullPolicy: cfg.Director.WhenFull,
			Timeouts:   timeouts(cfg.Timeouts),
		},
	}
}

// zeroCopy and fastPath turn the configuration's modes into the data
// plane's own types, which have the same values in the same order
// (TestModeConversions holds them to it) until they are the same types.

func timeouts(t config.Timeouts) conntrack.Timeouts {
	ct := conntrack.DefaultTimeouts()
	ct.TCP, ct.TCPFin, ct.UDP = t.TCP, t.TCPFin, t.UDP
	return ct
}

// Specs converts the configuration's services to the data plane's.
func Specs(cfg *config.Config) []dataplane.ServiceSpec {
	specs := make([]dataplane.ServiceSpec, 0, len(cfg.Services))
	for _, s := range cfg.Services {
		spec := dataplane.ServiceSpec{
			Name: s.Name, VIP: s.VIP, Port: s.Port, Proto: uint8(s.Protocol), Mark: s.Mark,
			Scheduler: s.Scheduler, Flags: s.Flags, Persistence: s.Persistence, PersistPrefix: s.PersistPrefix,
			LocalAddrs: s.LocalAddrs, TOA: s.TOA, LocalPortMin: s.LocalPortMin, LocalPortMax: s.LocalPortMax,
			NoFastPath: s.NoFastPath, SynProxy: s.SynProxy,
		}
		for _, m := range s.Matches {
			spec.Matches = append(spec.Matches, dataplane.Match{VIP: m.VIP, FromPort: m.FromPort, ToPort: m.ToPort, Proto: uint8(m.Protocol)})
		}
		for _, r := range s.Reals {
			spec.Reals = append(spec.Reals, dataplane.RealSpec{
				Addr: r.Address, Port: r.Port, Weight: r.Weight, Method: r.Method,
				UpperThreshold: r.UpperThreshold, LowerThreshold: r.LowerThreshold,
			})
		}
		specs = append(specs, spec)
	}
	return specs
}

// Reload re-reads the configuration file and applies the difference. A file
// that does not validate, or that changes what needs a restart (the
// interfaces), changes nothing and the error says why.
func (d *Director) Reload() error {
	err := d.reload()
	if err != nil {
		d.reloadsFailed.Add(1)
	} else {
		d.reloadsOK.Add(1)
	}
	return err
}

func (d *Director) reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg, err := config.Load(d.path)
	if err != nil {
		return err
	}
	// fast_path may change on a reload; the rest of [director] needs a
	// restart.
	if !restartFree(d.cfg.Director, cfg.Director) {
		return fmt.Errorf("%s: [director] settings changed; they take effect on restart only", d.path)
	}
	if cfg.Director.FastPath != d.cfg.Director.FastPath {
		if err := d.eng.SetFastPath(cfg.Director.FastPath); err != nil {
			return fmt.Errorf("%s: fast_path: %w", d.path, err)
		}
		d.log.Info("fast path switched", zap.Stringer("fast_path", cfg.Director.FastPath))
	}
	if !sameSync(cfg.Sync, d.cfg.Sync) {
		if cfg.Sync != nil && !d.syncEvents {
			return fmt.Errorf("%s: [sync] added; it takes effect on restart only", d.path)
		}
		if err := d.setSync(cfg.Sync); err != nil {
			return fmt.Errorf("%s: sync: %w", d.path, err)
		}
	}
	if string(config.Marshal(cfg)) == string(config.Marshal(d.cfg)) {
		// A touch, or the same change seen twice (file watch and SIGHUP):
		// nothing to do, and schedulers keep their place.
		d.log.Info("configuration reloaded; nothing changed", zap.String("config", d.path))
		return nil
	}
	if err := d.eng.Apply(d.specs(cfg)); err != nil {
		if !sameSync(cfg.Sync, d.cfg.Sync) {
			_ = d.setSync(d.cfg.Sync) // the roles that ran, as the rest
		}
		return fmt.Errorf("%s: %w", d.path, err)
	}
	d.eng.Conntrack().SetTimeouts(timeouts(cfg.Timeouts))
	d.cfg = cfg
	d.updateHealth()
	d.announce()
	d.log.Info("configuration reloaded", zap.String("config", d.path), zap.Int("services", len(cfg.Services)))
	return nil
}

// sameSync reports whether a and b run the same sync, wherever in their
// files they were written.
func sameSync(a, b *config.Sync) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.Line, y.Line = 0, 0
	return reflect.DeepEqual(x, y)
}

// restartFree reports whether [director] may go from cur to next on a
// reload: only fast_path may change without a restart.
func restartFree(cur, next config.Director) bool {
	next.FastPath = cur.FastPath
	return reflect.DeepEqual(cur, next)
}

// Engine returns the data plane.
func (d *Director) Engine() *dataplane.Engine { return d.eng }

// Close stops the control socket and the health checks, then forwarding,
// and detaches from the interfaces.
func (d *Director) Close() error {
	if d.srv != nil {
		_ = d.srv.Close()
	}
	if d.bgp != nil {
		// Withdraw first, so routers stop sending before forwarding stops.
		_ = d.bgp.Close()
	}
	if d.failover != nil {
		_ = d.failover.Close() // hand the addresses to the peer now
	}
	if s := d.syncer.Swap(nil); s != nil {
		_ = s.Close()
	}
	d.health.close()
	d.stop()
	return d.eng.Close()
}
