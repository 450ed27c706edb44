// Package control is the director's control plane: it turns a validated
// configuration into the data plane's service table, reloads it live, and
// reports state in ipvsadm's layouts. Nothing below it knows about TOML.
package control

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/dataplane"
	"github.com/xvs-lb/xvs/dataplane/xdpprog"
	"github.com/xvs-lb/xvs/dataplane/xsk"
)

// Director is a running director: a data plane and the configuration it was
// built from.
type Director struct {
	log  *zap.Logger
	path string
	eng  *dataplane.Engine

	mu  sync.Mutex
	cfg *config.Config
}

// Start loads the configuration at path, sets up the data plane and starts
// forwarding. A configuration that does not validate starts nothing.
func Start(ctx context.Context, path string, log *zap.Logger) (*Director, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	ecfg, err := EngineConfig(cfg)
	if err != nil {
		return nil, err
	}
	ecfg.Logger = log
	eng, err := dataplane.New(ecfg)
	if err != nil {
		return nil, err
	}
	d := &Director{log: log, path: path, eng: eng, cfg: cfg}
	if err := eng.Apply(Specs(cfg)); err != nil {
		return nil, fmt.Errorf("%s: %w", path, joinClose(err, eng))
	}
	eng.Run(ctx)
	if !eng.WaitResolved(2 * time.Second) {
		log.Warn("some real servers' next hops are not resolved yet; their first packets will be dropped (no_next_hop)")
	}
	log.Info("director started", zap.String("config", path), zap.Int("services", len(cfg.Services)))
	return d, nil
}

func joinClose(err error, eng *dataplane.Engine) error {
	if cerr := eng.Close(); cerr != nil {
		return fmt.Errorf("%w (and on close: %v)", err, cerr)
	}
	return err
}

// EngineConfig derives the data plane's settings from a configuration.
func EngineConfig(cfg *config.Config) (dataplane.Config, error) {
	mode, err := xdpprog.ParseMode(cfg.Director.XDPMode)
	if err != nil {
		return dataplane.Config{}, err
	}
	zc := xsk.ZeroCopyAuto
	switch cfg.Director.ZeroCopy {
	case config.ZeroCopyOn:
		zc = xsk.ZeroCopyOn
	case config.ZeroCopyOff:
		zc = xsk.ZeroCopyOff
	}
	return dataplane.Config{
		Interfaces: cfg.Director.Interfaces,
		XDPMode:    mode,
		ZeroCopy:   zc,
		CPUs:       cfg.Director.CPUs,
		Conntrack: conntrack.Config{
			Timeouts: timeouts(cfg.Timeouts),
		},
	}, nil
}

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
			LocalAddrs: s.LocalAddrs, TOA: s.TOA,
		}
		for _, m := range s.Matches {
			spec.Matches = append(spec.Matches, dataplane.Match{VIP: m.VIP, FromPort: m.FromPort, ToPort: m.ToPort, Proto: uint8(m.Protocol)})
		}
		for _, r := range s.Reals {
			m := map[config.Method]dataplane.Method{
				config.MethodDR: dataplane.MethodDR, config.MethodNAT: dataplane.MethodNAT,
				config.MethodTUN: dataplane.MethodTUN, config.MethodFullNAT: dataplane.MethodFullNAT,
			}[r.Method]
			spec.Reals = append(spec.Reals, dataplane.RealSpec{
				Addr: r.Address, Port: r.Port, Weight: r.Weight, Method: m,
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
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg, err := config.Load(d.path)
	if err != nil {
		return err
	}
	if fmt.Sprint(cfg.Director) != fmt.Sprint(d.cfg.Director) {
		return fmt.Errorf("%s: [director] settings changed; they take effect on restart only", d.path)
	}
	if err := d.eng.Apply(Specs(cfg)); err != nil {
		return fmt.Errorf("%s: %w", d.path, err)
	}
	d.eng.Conntrack().SetTimeouts(timeouts(cfg.Timeouts))
	d.cfg = cfg
	d.log.Info("configuration reloaded", zap.String("config", d.path), zap.Int("services", len(cfg.Services)))
	return nil
}

// Engine returns the data plane.
func (d *Director) Engine() *dataplane.Engine { return d.eng }

// Close stops forwarding and detaches from the interfaces.
func (d *Director) Close() error { return d.eng.Close() }
