package control

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/control/ipvsadm"
	"github.com/xvs-lb/xvs/dataplane"
)

// Handle serves one xvsadm request (api.Handler). Changes go through the
// same path as a reload: the running configuration is changed, written out
// and parsed again with the file's rules, then applied; so what xvsadm -S
// and save-config write is exactly what runs, and anything the file would
// refuse is refused here too.
func (d *Director) Handle(ctx context.Context, req *api.Request) *api.Response {
	switch req.Op {
	case api.OpList:
		services := d.list(req.Filter)
		if req.Filter != nil && len(services) == 0 {
			return &api.Response{Error: "No such service"}
		}
		return &api.Response{Services: services, Capacity: d.eng.Conntrack().Capacity()}
	case api.OpRules:
		return &api.Response{Text: ipvsadm.Rules(d.list(nil))}
	case api.OpConns:
		return &api.Response{Conns: d.conns(req.Filter)}
	case api.OpStatus:
		return &api.Response{Status: d.status()}
	case api.OpGetTimeouts:
		d.mu.Lock()
		defer d.mu.Unlock()
		t := d.cfg.Timeouts
		return &api.Response{Timeouts: &api.Timeouts{TCP: t.TCP, TCPFin: t.TCPFin, UDP: t.UDP}}
	case api.OpReload:
		return errResponse(d.Reload())
	case api.OpSaveConfig:
		return errResponse(d.SaveConfig(req.Path))
	case api.OpZero:
		d.eng.ZeroCounters()
		return &api.Response{}
	case api.OpHealth:
		return &api.Response{Health: d.healthState()}
	case api.OpRestore:
		return errResponse(d.restore(req.Text))
	case api.OpDrain:
		d.Drain(req.Text != "off")
		return &api.Response{}
	}
	return errResponse(d.change(func(cfg *config.Config) error { return edit(cfg, req) }))
}

func errResponse(err error) *api.Response {
	if err != nil {
		return &api.Response{Error: err.Error()}
	}
	return &api.Response{}
}

// change applies edit to a copy of the running configuration, validates the
// result as the file loader would, and applies it. On any error nothing
// changes.
func (d *Director) change(edit func(*config.Config) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	next := cloneConfig(d.cfg)
	if err := edit(next); err != nil {
		return err
	}
	return d.applyLocked(next, "runtime change")
}

// applyLocked validates cfg by writing and re-reading it, then applies it.
func (d *Director) applyLocked(cfg *config.Config, why string) error {
	parsed, err := config.Parse("(running configuration)", config.Marshal(cfg))
	if err != nil {
		return err
	}
	parsed.Source = d.cfg.Source
	if err := d.eng.Apply(d.specs(parsed)); err != nil {
		return err
	}
	d.eng.Conntrack().SetTimeouts(timeouts(parsed.Timeouts))
	d.cfg = parsed
	d.updateHealth()
	d.announce()
	d.log.Info("configuration applied", zap.String("by", why), zap.Int("services", len(parsed.Services)))
	return nil
}

// SaveConfig writes the running configuration to path (the configuration
// file when path is empty).
func (d *Director) SaveConfig(path string) error {
	d.mu.Lock()
	data := config.Marshal(d.cfg)
	d.mu.Unlock()
	if path == "" {
		path = d.path
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("save configuration: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save configuration: %w", err)
	}
	d.log.Info("configuration saved", zap.String("path", path))
	return nil
}

func cloneConfig(c *config.Config) *config.Config {
	n := *c
	n.Director.Interfaces = slices.Clone(c.Director.Interfaces)
	n.Director.CPUs = slices.Clone(c.Director.CPUs)
	n.Services = slices.Clone(c.Services)
	for i := range n.Services {
		s := &n.Services[i]
		s.Reals = slices.Clone(s.Reals)
		s.Matches = slices.Clone(s.Matches)
		s.Flags = slices.Clone(s.Flags)
		s.LocalAddrs = slices.Clone(s.LocalAddrs)
	}
	return &n
}

func findService(cfg *config.Config, id api.ServiceID) int {
	for i, s := range cfg.Services {
		if id.Mark != 0 {
			if s.IsGroup() && s.Mark == id.Mark {
				return i
			}
			continue
		}
		if !s.IsGroup() && s.VIP == id.VIP.Unmap() && s.Port == id.Port && s.Protocol.String() == strings.ToLower(id.Protocol) {
			return i
		}
	}
	return -1
}

func idName(id api.ServiceID) string {
	if id.Mark != 0 {
		return fmt.Sprintf("FWM %d", id.Mark)
	}
	return fmt.Sprintf("%s %s", strings.ToUpper(id.Protocol), netip.AddrPortFrom(id.VIP, id.Port))
}

// edit applies one ipvsadm-style change to cfg.
func edit(cfg *config.Config, req *api.Request) error {
	switch req.Op {
	case api.OpClear:
		cfg.Services = nil
		return nil
	case api.OpSetTimeouts:
		if req.Timeouts == nil {
			return fmt.Errorf("set-timeouts: no timeouts")
		}
		// As ipvsadm --set: 0 leaves a timeout as it is.
		for _, p := range []struct {
			dst *time.Duration
			v   time.Duration
		}{{&cfg.Timeouts.TCP, req.Timeouts.TCP}, {&cfg.Timeouts.TCPFin, req.Timeouts.TCPFin}, {&cfg.Timeouts.UDP, req.Timeouts.UDP}} {
			if p.v > 0 {
				*p.dst = p.v
			}
		}
		return nil
	}
	if req.Service == nil {
		return fmt.Errorf("%s: no service given", req.Op)
	}
	id := req.Service.ServiceID
	i := findService(cfg, id)
	switch req.Op {
	case api.OpAddService:
		if i >= 0 {
			return fmt.Errorf("service %s already exists", idName(id))
		}
		if id.Mark != 0 {
			return fmt.Errorf("groups (fwmark services) are defined in the configuration file")
		}
		proto, err := config.ParseProtocol(strings.ToLower(id.Protocol))
		if err != nil {
			return err
		}
		s := config.Service{Name: req.Service.Name, VIP: id.VIP.Unmap(), Port: id.Port, Protocol: proto, Scheduler: config.DefaultScheduler}
		setPolicy(&s, req.Service)
		cfg.Services = append(cfg.Services, s)
		return nil
	}
	if i < 0 {
		return fmt.Errorf("no service %s", idName(id))
	}
	s := &cfg.Services[i]
	switch req.Op {
	case api.OpEditService:
		setPolicy(s, req.Service)
		return nil
	case api.OpDelService:
		cfg.Services = slices.Delete(cfg.Services, i, i+1)
		return nil
	}
	if req.Real == nil {
		return fmt.Errorf("%s: no real server given", req.Op)
	}
	r := req.Real
	j := slices.IndexFunc(s.Reals, func(x config.Real) bool {
		return x.Address == r.Addr.Unmap() && (x.Port == r.Port || r.Port == 0 && x.Port == s.Port)
	})
	switch req.Op {
	case api.OpAddReal:
		if j >= 0 {
			return fmt.Errorf("real server %s already in service %s", netip.AddrPortFrom(r.Addr, r.Port), idName(id))
		}
		nr := config.Real{Address: r.Addr.Unmap(), Port: r.Port, Weight: config.DefaultWeight, Method: config.MethodDR}
		if nr.Port == 0 && !s.IsGroup() {
			nr.Port = s.Port
		}
		if err := setReal(&nr, r); err != nil {
			return err
		}
		s.Reals = append(s.Reals, nr)
	case api.OpEditReal:
		if j < 0 {
			return fmt.Errorf("no real server %s in service %s", netip.AddrPortFrom(r.Addr, r.Port), idName(id))
		}
		return setReal(&s.Reals[j], r)
	case api.OpDelReal:
		if j < 0 {
			return fmt.Errorf("no real server %s in service %s", netip.AddrPortFrom(r.Addr, r.Port), idName(id))
		}
		s.Reals = slices.Delete(s.Reals, j, j+1)
	default:
		return fmt.Errorf("unknown operation %q", req.Op)
	}
	return nil
}

func setPolicy(s *config.Service, a *api.Service) {
	if a.Scheduler != "" {
		s.Scheduler = a.Scheduler
	}
	s.Flags = slices.Clone(a.Flags)
	s.Persistence = a.Persistence
	s.PersistPrefix = a.PersistPrefix
	if a.Name != "" {
		s.Name = a.Name
	}
}

func setReal(r *config.Real, a *api.Real) error {
	if a.Weight != nil {
		r.Weight = *a.Weight
	}
	if a.Method != "" {
		m, err := config.ParseMethod(a.Method)
		if err != nil {
			return err
		}
		r.Method = m
	}
	r.UpperThreshold, r.LowerThreshold = a.UpperThreshold, a.LowerThreshold
	return nil
}

func protoString(p uint8) string {
	if p == 17 {
		return "udp"
	}
	return "tcp"
}

func methodString(m dataplane.Method) string {
	return map[dataplane.Method]string{dataplane.MethodDR: "dr", dataplane.MethodNAT: "nat", dataplane.MethodTUN: "tun", dataplane.MethodFullNAT: "fullnat"}[m]
}

func serviceID(s *dataplane.Service) api.ServiceID {
	if s.Mark != 0 {
		return api.ServiceID{Mark: s.Mark}
	}
	return api.ServiceID{Protocol: protoString(s.Proto), VIP: s.VIP, Port: s.Port}
}

func counters(c dataplane.Counters) api.Counters {
	return api.Counters{Conns: c.Conns, InPkts: c.InPkts, OutPkts: c.OutPkts, InBytes: c.InBytes, OutBytes: c.OutBytes}
}

// list describes the running services as the data plane has them.
func (d *Director) list(filter *api.ServiceID) []api.ServiceState {
	t := d.eng.Table()
	var out []api.ServiceState
	for _, s := range t.Services() {
		id := serviceID(s)
		if filter != nil && *filter != id {
			continue
		}
		p, prefix := s.Persistence()
		st := api.ServiceState{
			Service: api.Service{ServiceID: id, Name: s.Name, Scheduler: s.SchedulerName(), Flags: s.Flags, Persistence: p, PersistPrefix: prefix},
			Stats:   counters(d.eng.ServiceCounters(s)),
			Rates:   d.rates.service(s),
		}
		for _, m := range s.Matches {
			st.Matches = append(st.Matches, api.Match{Protocol: protoString(m.Proto), VIP: m.VIP, FromPort: m.FromPort, ToPort: m.ToPort})
		}
		for _, dst := range dests(t, s) {
			a, i := d.eng.DestConns(dst)
			w := dst.Weight
			rs := api.RealState{
				Real: api.Real{Addr: dst.Addr, Port: dst.Port, Method: methodString(dst.Method), Weight: &w,
					UpperThreshold: dst.UpperThreshold, LowerThreshold: dst.LowerThreshold},
				Weight: dst.Weight, ActiveConn: a, InActConn: i, Draining: dst.Draining,
				Stats: counters(d.eng.DestCounters(dst)), Rates: d.rates.dest(dst.ID),
			}
			if up, known := d.destHealthy(s, dst); known {
				rs.Healthy = &up
				// A server the checks took out runs at weight 0; show the
				// configured weight, as keepalived users expect.
				rs.Weight = d.configuredWeight(s, dst)
				rs.Real.Weight = &rs.Weight
			}
			st.Reals = append(st.Reals, rs)
		}
		out = append(out, st)
	}
	return out
}

// maxListedConns bounds what one ipvsadm -L -c returns.
const maxListedConns = 100_000

func (d *Director) conns(filter *api.ServiceID) []api.Conn {
	t := d.eng.Table()
	var out []api.Conn
	d.eng.Conntrack().Range(func(c *conntrack.Conn, expires time.Duration) bool {
		if filter != nil {
			if s := t.ServiceByID(c.Value.Service); s == nil || serviceID(s) != *filter {
				return true
			}
		}
		conn := api.Conn{Protocol: protoString(c.Orig.Proto), Client: c.Orig.Src(), Virtual: c.Orig.Dst(), State: c.State.String(), ExpiresIn: expires}
		if dst := t.Dest(c.Value.Dest); dst != nil {
			port := dst.Port
			if port == 0 {
				port = c.Orig.DstPort
			}
			conn.Real = netip.AddrPortFrom(dst.Addr, port)
		}
		out = append(out, conn)
		return len(out) < maxListedConns
	})
	return out
}

func (d *Director) status() *api.Status {
	st := d.eng.Status()
	s := &api.Status{
		Workers: st.Workers, Connections: st.Connections, Capacity: d.eng.Conntrack().Capacity(),
		RxFrames: st.RxFrames, TxFrames: st.TxFrames, CsumCompleted: st.CsumCompleted, Drops: st.Drops, Config: d.path,
		VerifyChecksums: st.VerifyChecksums, BadCsumIn: st.BadCsumIn, BadCsumOut: st.BadCsumOut, Warnings: st.Warnings,
		FastPath: api.FastPath(st.FastPath),
		DataPath: api.DataPath{Batch: st.Tuning.Batch, RingSize: st.Tuning.RingSize, UMEMFrames: st.Tuning.UMEMFrames,
			IdleSpins: st.Tuning.IdleSpins, NeedWakeup: st.Tuning.NeedWakeup},
	}
	for _, p := range st.Ports {
		s.Interfaces = append(s.Interfaces, api.Interface{Name: p.Name, XDPMode: p.XDPMode, Queues: p.Queues, ZeroCopy: p.ZeroCopy, Kernel: p.Kernel,
			FastPath: p.FastPath, Oversize: p.Oversize})
	}
	return s
}

// restore applies ipvsadm -R rules: all of them, or none when one fails.
func (d *Director) restore(text string) error {
	cmds, err := ipvsadm.ParseRules(text)
	if err != nil {
		return err
	}
	return d.change(func(cfg *config.Config) error {
		for i, c := range cmds {
			if err := edit(cfg, &c.Request); err != nil {
				return fmt.Errorf("rule %d: %w", i+1, err)
			}
		}
		return nil
	})
}
