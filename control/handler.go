package control

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/control/ipvsadm"
	"github.com/xvs-lb/xvs/dataplane"
	"github.com/xvs-lb/xvs/internal/xvs"
)

// Handle serves one xvsadm request (api.Handler). Changes are
// ipvsadm.Edit's: it returns the running configuration changed and checked
// with the file's rules, which is then applied as a reload would apply it.
func (d *Director) Handle(ctx context.Context, req *api.Request) *api.Response {
	switch req.Op {
	case api.OpList:
		resp := d.listing(req.Filter)
		if req.Filter != nil && len(resp.Services) == 0 {
			return errResponse(ipvsadm.ErrNoService)
		}
		return resp
	case api.OpRules:
		return &api.Response{Text: ipvsadm.Rules(d.list(nil))}
	case api.OpConns:
		conns, total := d.conns(req.Filter)
		return &api.Response{Conns: conns, ConnsTotal: total}
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
		// Edit refuses a service that does not exist and changes nothing
		// else; the counters are the data plane's.
		d.mu.Lock()
		defer d.mu.Unlock()
		if _, err := ipvsadm.Edit(d.cfg, req); err != nil {
			return errResponse(err)
		}
		d.zero(req.Service)
		return &api.Response{}
	case api.OpHealth:
		return &api.Response{Health: d.healthState()}
	case api.OpDrain:
		d.Drain(req.Text != "off")
		return &api.Response{}
	case api.OpDaemons:
		return &api.Response{Daemons: d.daemons()}
	case api.OpStartDaemon, api.OpStopDaemon:
		return errResponse(d.changeSync(req))
	}
	return errResponse(d.change(req))
}

// zero zeroes the counters of svc, or of every service when svc is nil
// (ipvsadm -Z). Called with d.mu held.
func (d *Director) zero(svc *api.Service) {
	if svc == nil {
		d.eng.ZeroCounters()
		return
	}
	for _, s := range d.eng.Table().Services() {
		if serviceID(s) == ipvsadm.NormalID(svc.ServiceID) {
			d.eng.ZeroServiceCounters(s)
		}
	}
}

func errResponse(err error) *api.Response {
	if err != nil {
		return &api.Response{Error: err.Error()}
	}
	return &api.Response{}
}

// change applies req to the running configuration (ipvsadm.Edit) and the
// result to the data plane. On any error nothing changes.
func (d *Director) change(req *api.Request) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	next, err := ipvsadm.Edit(d.cfg, req)
	if err != nil {
		return err
	}
	if err := d.eng.Apply(d.specs(next)); err != nil {
		return fmt.Errorf("apply %s: %w", req.Op, err)
	}
	if req.Op == api.OpRestore {
		// -Z lines of the rules zero what they name, in order, after
		// the table they come with is running.
		cmds, _ := ipvsadm.ParseRules(req.Text)
		for _, c := range cmds {
			if c.Request.Op == api.OpZero {
				d.zero(c.Request.Service)
			}
		}
	}
	d.eng.Conntrack().SetTimeouts(timeouts(next.Timeouts))
	d.cfg = next
	d.updateHealth()
	d.announce()
	d.log.Info("configuration applied", zap.String("by", string(req.Op)), zap.Int("services", len(next.Services)))
	return nil
}

// changeSync starts or stops a sync role (ipvsadm.Edit changes [sync]'s
// roles in the running configuration) and restarts the syncer with the
// result. On any error nothing changes.
func (d *Director) changeSync(req *api.Request) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	next, err := ipvsadm.Edit(d.cfg, req)
	if err != nil {
		return err
	}
	if !d.syncEvents {
		// Only a file with [sync] gets this far (Edit refuses without
		// one); the data plane queues events for a file that had it at
		// start.
		return fmt.Errorf("%s: [sync] was added after xvsd started; restart it", req.Op)
	}
	if err := d.setSync(next.Sync); err != nil {
		return fmt.Errorf("%s: %w", req.Op, err)
	}
	d.cfg = next
	d.log.Info("configuration applied", zap.String("by", string(req.Op)), zap.String("role", req.Daemon.Role))
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
	// The file may hold secrets (sync, failover and BGP keys written
	// inline): readable by its owner only, also while it is written.
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("save configuration: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("save configuration %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("save configuration %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save configuration: %w", err)
	}
	d.log.Info("configuration saved", zap.String("path", path))
	return nil
}

func serviceID(s *dataplane.Service) api.ServiceID {
	if s.Mark != 0 {
		return api.ServiceID{Mark: s.Mark}
	}
	return api.ServiceID{Protocol: xvs.Protocol(s.Proto).String(), VIP: s.VIP, Port: s.Port}
}

func counters(c dataplane.Counters) api.Counters {
	return api.Counters{Conns: c.Conns, InPkts: c.InPkts, OutPkts: c.OutPkts, InBytes: c.InBytes, OutBytes: c.OutBytes}
}

// list describes the running services: their settings as the running
// configuration has them (ipvsadm.Services, what xvsadm's tests list too),
// and what only the data plane knows (counters, rates, connection counts,
// health, real servers still draining) from the table published for it.
func (d *Director) list(filter *api.ServiceID) []api.ServiceState {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.eng.Table()
	running := map[api.ServiceID]*dataplane.Service{}
	for _, s := range t.Services() {
		running[serviceID(s)] = s
	}
	persist := d.eng.PersistConns()
	var out []api.ServiceState
	for _, st := range ipvsadm.Services(d.cfg) {
		s := running[st.ServiceID]
		if s == nil || filter != nil && *filter != st.ServiceID {
			continue
		}
		st.Stats, st.Rates = counters(d.eng.ServiceCounters(s)), d.rates.service(s)
		for i := range st.Reals {
			r := &st.Reals[i]
			if dst := findDest(s.Dests, r.Addr, r.Port); dst != nil {
				d.runtime(s, dst, r, persist)
			}
		}
		for _, dst := range t.Draining() {
			if dst.Service != s.ID {
				continue
			}
			r := ipvsadm.RealState(dst.Addr, dst.Port, dst.Method, dst.Weight, dst.UpperThreshold, dst.LowerThreshold)
			r.Draining = true
			d.runtime(s, dst, &r, persist)
			st.Reals = append(st.Reals, r)
		}
		out = append(out, st)
	}
	return out
}

// runtime fills in what the data plane knows of real server r: its weight
// in effect (0 while its health checks fail, or while it drains), its
// connections and persistence templates (persist, per real server ID), its
// counters and health.
func (d *Director) runtime(s *dataplane.Service, dst *dataplane.Dest, r *api.RealState, persist map[uint32]int64) {
	r.Weight = dst.Weight
	if dst.Draining {
		r.Weight = 0
	}
	r.PersistConn = persist[dst.ID]
	r.ActiveConn, r.InActConn = d.eng.DestConns(dst)
	r.Stats, r.Rates = counters(d.eng.DestCounters(dst)), d.rates.dest(dst.ID)
	if up, known := d.destHealthy(s, dst); known {
		r.Healthy = &up
	}
}

func findDest(ds []*dataplane.Dest, addr netip.Addr, port uint16) *dataplane.Dest {
	for _, d := range ds {
		if d.Addr == addr && d.Port == port {
			return d
		}
	}
	return nil
}

// conns lists the connection table, then the persistence templates, of
// every service or of filter's, as ipvsadm -L -c does: at most
// api.MaxListedConns entries, and how many there were.
func (d *Director) conns(filter *api.ServiceID) ([]api.Conn, int) {
	t := d.eng.Table()
	var out []api.Conn
	total := 0
	keep := func(svc uint32) bool {
		if filter == nil {
			return true
		}
		s := t.ServiceByID(svc)
		return s != nil && serviceID(s) == *filter
	}
	d.eng.Conntrack().Range(func(c *conntrack.Conn, expires time.Duration) bool {
		if !keep(c.Value.Service) {
			return true
		}
		total++
		if len(out) >= api.MaxListedConns {
			return true // count the rest
		}
		conn := api.Conn{Protocol: xvs.Protocol(c.Orig.Proto).String(), Client: c.Orig.Src(), Virtual: c.Orig.Dst(), State: c.State.String(), ExpiresIn: expires}
		if dst := t.Dest(c.Value.Dest); dst != nil {
			port := dst.Port
			if port == 0 {
				port = c.Orig.DstPort
			}
			conn.Real = netip.AddrPortFrom(dst.Addr, port)
		}
		out = append(out, conn)
		return true
	})
	d.eng.Templates(func(tp dataplane.Template) bool {
		s := t.ServiceByID(tp.Service)
		if s == nil || !keep(tp.Service) {
			return true
		}
		total++
		if len(out) < api.MaxListedConns {
			out = append(out, templateConn(s, t.Dest(tp.Dest), tp))
		}
		return true
	})
	return out, total
}

// templateConn lists a persistence template as IPVS does: the service's
// protocol, the client under the netmask with port 0, the service's VIP
// and port (a group's mark as an address, port 0, protocol IP), the real
// server's address and port, state NONE.
func templateConn(s *dataplane.Service, dst *dataplane.Dest, tp dataplane.Template) api.Conn {
	c := api.Conn{Protocol: xvs.Protocol(s.Proto).String(), Client: netip.AddrPortFrom(tp.Client, 0),
		Virtual: netip.AddrPortFrom(s.VIP, s.Port), State: "NONE", ExpiresIn: tp.Expires, Template: true}
	if s.Mark != 0 {
		c.Protocol = "ip"
		var a [16]byte
		binary.BigEndian.PutUint32(a[12:], s.Mark)
		mark := netip.AddrFrom16(a)
		if tp.Client.Is4() {
			mark = netip.AddrFrom4([4]byte(a[12:]))
		}
		c.Virtual = netip.AddrPortFrom(mark, 0)
	}
	if dst != nil {
		c.Real = netip.AddrPortFrom(dst.Addr, dst.Port)
	}
	return c
}

func (d *Director) status() *api.Status {
	st := d.eng.Status()
	s := &api.Status{
		Workers: st.Workers, Connections: st.Connections, Capacity: d.eng.Conntrack().Capacity(),
		RxFrames: st.RxFrames, TxFrames: st.TxFrames, CsumCompleted: st.CsumCompleted,
		SynProxySynAcks: st.SynProxySynAcks, SynProxyXDP: st.SynProxyXDP, SynProxyOpened: st.SynProxyOpened, Drops: st.Drops, Config: d.path,
		VerifyChecksums: st.VerifyChecksums, BadCsumIn: st.BadCsumIn, BadCsumOut: st.BadCsumOut, Warnings: st.Warnings,
		FastPath: api.FastPath(st.FastPath),
		DataPath: api.DataPath{Batch: st.Tuning.Batch, RingSize: st.Tuning.RingSize, UMEMFrames: st.Tuning.UMEMFrames,
			IdleSpins: st.Tuning.IdleSpins, NeedWakeup: st.Tuning.NeedWakeup, BusyPollUS: st.Tuning.BusyPoll.Microseconds()},
	}
	for _, p := range st.Ports {
		s.Interfaces = append(s.Interfaces, api.Interface{Name: p.Name, XDPMode: p.XDPMode, Queues: p.Queues, ZeroCopy: p.ZeroCopy, Kernel: p.Kernel,
			FastPath: p.FastPath, Oversize: p.Oversize, SynCookies: p.SynCookies, SynNoPort: p.SynNoPort})
	}
	return s
}
