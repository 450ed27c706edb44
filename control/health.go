package control

import (
	"cmp"
	"fmt"
	"net/netip"
	"sync"

	"go.uber.org/zap"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/control/health"
	"github.com/xvs-lb/xvs/control/ipvsadm"
	"github.com/xvs-lb/xvs/dataplane"
)

// healthState connects health checks to the director: a real server whose
// checks fail runs at weight 0 (quiescent: no new connections) until they
// pass again; with on_failure = "reset" its connections are dropped too, as
// IPVS's expire_nodest_conn does.
type healthState struct {
	d   *Director
	mon *health.Monitor

	mu      sync.Mutex
	down    map[string]bool
	targets map[string]healthTarget
	// moves counts transitions per target for xvs_health_transitions_total,
	// kept when a target goes, as counters are.
	moves map[string]*healthMoves
}

// healthMoves counts one real server's health transitions.
type healthMoves struct {
	svc      api.ServiceID
	real     netip.AddrPort
	up, down uint64
}

type healthTarget struct {
	svc  api.ServiceID
	real netip.AddrPort // the real server as configured (port 0 in groups)
	addr netip.AddrPort // where probes go
	kind string
	// reset: drop the server's connections when it goes down.
	reset bool
}

func newHealthState(d *Director) *healthState {
	h := &healthState{d: d, down: map[string]bool{}, targets: map[string]healthTarget{}, moves: map[string]*healthMoves{}}
	h.mon = health.NewMonitor(d.log, h.changed)
	return h
}

func (h *healthState) close() { h.mon.Close() }

func healthKey(svc api.ServiceID, real netip.AddrPort) string {
	return fmt.Sprintf("%s/%s", svc, real)
}

// changed is the monitor's callback: a real server went up or down.
func (h *healthState) changed(ev health.Event) {
	h.mu.Lock()
	t, ok := h.targets[ev.Key]
	if !ok {
		h.mu.Unlock()
		return // removed by a reload meanwhile
	}
	h.down[ev.Key] = !ev.Up
	h.count(ev.Key, t, ev.Up)
	h.mu.Unlock()

	d := h.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.eng.Apply(d.specs(d.cfg)); err != nil {
		d.log.Error("apply health change", zap.String("real", ev.Key), zap.Error(err))
		return
	}
	d.announce()
	if !ev.Up && t.reset {
		n := d.eng.FlushDest(d.findDest(t.svc, t.real))
		d.log.Info("connections of a failed real server dropped", zap.String("real", ev.Key), zap.Int("connections", n))
	}
}

// count records a transition of target t (key) to up or down. Called with
// h.mu held.
func (h *healthState) count(key string, t healthTarget, up bool) {
	m := h.moves[key]
	if m == nil {
		m = &healthMoves{svc: t.svc, real: t.real}
		h.moves[key] = m
	}
	if up {
		m.up++
	} else {
		m.down++
	}
}

// transitions returns the transitions counted for the real servers checked
// now.
func (h *healthState) transitions() []healthMoves {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]healthMoves, 0, len(h.moves))
	for _, m := range h.moves {
		out = append(out, *m)
	}
	return out
}

// findDest finds a real server's ID in the running table; -1 if none.
func (d *Director) findDest(svc api.ServiceID, real netip.AddrPort) int64 {
	t := d.eng.Table()
	for _, s := range t.Services() {
		if serviceID(s) != svc {
			continue
		}
		for _, dst := range s.Dests {
			if dst.Addr == real.Addr() && dst.Port == real.Port() {
				return int64(dst.ID)
			}
		}
	}
	return -1
}

// specs is Specs with the real servers that health checks took out at
// weight 0.
func (d *Director) specs(cfg *config.Config) []dataplane.ServiceSpec {
	specs := Specs(cfg)
	h := d.health
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range cfg.Services {
		id := ipvsadm.ServiceID(&cfg.Services[i])
		for j := range specs[i].Reals {
			r := &specs[i].Reals[j]
			if h.down[healthKey(id, netip.AddrPortFrom(r.Addr, r.Port))] {
				r.Weight = 0
			}
		}
	}
	return specs
}

// updateHealth makes the checks follow d.cfg: new real servers start being
// checked, removed ones stop. Called with d.mu held.
func (d *Director) updateHealth() {
	h := d.health
	var targets []health.Target
	next := map[string]healthTarget{}
	initialDown := false
	for i := range d.cfg.Services {
		s := &d.cfg.Services[i]
		hc := s.Health
		if hc == nil {
			continue
		}
		id := ipvsadm.ServiceID(s)
		for _, r := range s.Reals {
			real := netip.AddrPortFrom(r.Address, r.Port)
			key := healthKey(id, real)
			t := healthTarget{svc: id, real: real, addr: netip.AddrPortFrom(r.Address, cmp.Or(hc.Port, r.Port)), kind: hc.Check, reset: hc.OnFailure == config.OnFailureReset}
			next[key] = t
			targets = append(targets, health.Target{Key: key, Addr: t.addr, Spec: health.Spec{
				Kind: hc.Check, Interval: hc.Interval, Timeout: hc.Timeout, Rise: hc.Rise, Fall: hc.Fall,
				Path: hc.Path, Host: hc.Host, ExpectBody: hc.ExpectBody, ExpectStatus: hc.ExpectStatus, Insecure: hc.Insecure,
				Send: []byte(hc.Send), Expect: []byte(hc.Expect), StartDown: hc.Initial == config.InitialDown,
			}})
		}
	}
	h.mu.Lock()
	for key := range h.targets {
		if _, ok := next[key]; !ok {
			delete(h.down, key)
		}
	}
	for key := range next {
		if _, ok := h.targets[key]; !ok {
			s := targets[0].Spec // find its spec
			for _, t := range targets {
				if t.Key == key {
					s = t.Spec
				}
			}
			if s.StartDown {
				h.down[key] = true
				initialDown = true
			}
		}
	}
	h.targets = next
	h.mu.Unlock()
	h.mon.Update(targets)
	if initialDown {
		if err := d.eng.Apply(d.specs(d.cfg)); err != nil {
			d.log.Error("apply initial health state", zap.Error(err))
		}
	}
}

func (d *Director) healthState() []api.HealthState {
	h := d.health
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []api.HealthState
	for _, st := range h.mon.State() {
		t, ok := h.targets[st.Key]
		if !ok {
			continue
		}
		out = append(out, api.HealthState{Service: t.svc, Real: t.real, Check: t.kind, Healthy: st.Up, Since: st.Since, Last: st.LastError})
	}
	return out
}

func (d *Director) destHealthy(s *dataplane.Service, dst *dataplane.Dest) (up, known bool) {
	h := d.health
	key := healthKey(serviceID(s), netip.AddrPortFrom(dst.Addr, dst.Port))
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.targets[key]; !ok {
		return false, false
	}
	return !h.down[key], true
}
