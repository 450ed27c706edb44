package ipvsadm

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/internal/xvs"
	"github.com/xvs-lb/xvs/sched"
)

// IPVSError is one of IPVS's refusals, with ipvsadm's message for it (as
// libipvs's ipvs_strerror words them).
type IPVSError string

func (e IPVSError) Error() string { return string(e) }

// Edit's refusals of a command that names what does not exist, or exists
// already.
const (
	ErrServiceExists     IPVSError = "Service already exists"     // -A
	ErrNoService         IPVSError = "No such service"            // -E, -D, -Z
	ErrServiceNotDefined IPVSError = "Service not defined"        // -a, -e, -d
	ErrDestExists        IPVSError = "Destination already exists" // -a
	ErrNoDest            IPVSError = "No such destination"        // -e, -d
	ErrDaemonRuns        IPVSError = "Daemon has already run"     // --start-daemon
	ErrNoDaemon          IPVSError = "No daemon is running"       // --stop-daemon
)

// errNoSync refuses --start-daemon without [sync]: xvs's transport needs
// the peers and the key, which only the file gives.
var errNoSync = errors.New("no [sync] in the configuration file: xvs syncs connections over unicast UDP to the peers it names, authenticated with its key; add [sync] and reload")

// errNoMatch refuses -A -f without --match: xvs has no firewall marks, so
// a group's matches say which packets it takes.
var errNoMatch = errors.New("xvs has no firewall marks: give the group's matches with --match PROTO:VIP:PORTS[,...]")

// runningName names the configuration that Edit checks: the running one,
// not a file.
const runningName = "(running configuration)"

// Edit returns the running configuration cfg changed as req asks, with
// IPVS's semantics and ipvsadm's messages; cfg itself is left alone. It is
// the one definition of what ipvsadm's commands do to the table: xvsd applies
// what it returns, and xvsadm's tests serve their fake xvsd with it.
//
// The changes are -A -E -D (OpAddService, OpEditService, OpDelService), -a
// -e -d (OpAddReal, OpEditReal, OpDelReal), -C (OpClear), --set
// (OpSetTimeouts: 0 keeps a timeout), -Z (OpZero: the configuration stays as
// it is, but a named service must exist; the counters are the caller's) and
// -R (OpRestore: every rule of req.Text in order, or, when one fails, none,
// the error naming its line), --start-daemon and --stop-daemon
// (OpStartDaemon, OpStopDaemon: a role of [sync]; see startDaemon). An edited service keeps its scheduler when
// req's is empty; an edited real server keeps its weight when req's is nil
// and its method when req's is empty.
//
// The result is written out and read back with the file's rules
// (config.Marshal, config.Parse), so that anything a file would refuse is
// refused here too, and what xvsadm -S and save-config write is exactly what
// runs.
func Edit(cfg *config.Config, req *api.Request) (*config.Config, error) {
	next := clone(cfg)
	if err := edit(next, req); err != nil {
		return nil, err
	}
	parsed, err := config.Parse(runningName, config.Marshal(next))
	if err != nil {
		return nil, err
	}
	parsed.Source = cfg.Source
	return parsed, nil
}

// edit applies req to cfg in place; on error cfg may be half changed.
func edit(cfg *config.Config, req *api.Request) error {
	switch req.Op {
	case api.OpClear:
		cfg.Services = nil
		return nil
	case api.OpSetTimeouts:
		if req.Timeouts == nil {
			return fmt.Errorf("%s: no timeouts given", req.Op)
		}
		for _, p := range []struct {
			dst *time.Duration
			v   time.Duration
		}{{&cfg.Timeouts.TCP, req.Timeouts.TCP}, {&cfg.Timeouts.TCPFin, req.Timeouts.TCPFin}, {&cfg.Timeouts.UDP, req.Timeouts.UDP}} {
			if p.v > 0 {
				*p.dst = p.v
			}
		}
		return nil
	case api.OpRestore:
		cmds, err := ParseRules(req.Text)
		if err != nil {
			return err
		}
		for _, c := range cmds {
			if err := edit(cfg, &c.Request); err != nil {
				return &Error{Line: c.Line, Msg: err.Error()}
			}
		}
		return nil
	case api.OpZero:
		if req.Service == nil {
			return nil // every counter
		}
	case api.OpStartDaemon, api.OpStopDaemon:
		return editDaemon(cfg, req.Op, req.Daemon)
	case api.OpAddService, api.OpEditService, api.OpDelService, api.OpAddReal, api.OpEditReal, api.OpDelReal:
	default:
		return fmt.Errorf("%q does not change the table", req.Op)
	}
	if req.Service == nil {
		return fmt.Errorf("%s: no service given", req.Op)
	}
	id := normalID(req.Service.ServiceID)
	i := slices.IndexFunc(cfg.Services, func(s config.Service) bool { return ServiceID(&s) == id })
	switch req.Op {
	case api.OpAddService:
		if i >= 0 {
			return ErrServiceExists
		}
		s := config.Service{Scheduler: config.DefaultScheduler}
		if id.Mark != 0 {
			if len(req.Service.Matches) == 0 {
				return errNoMatch
			}
			s.Mark, s.Name = id.Mark, fmt.Sprintf("fwm%d", id.Mark)
		} else {
			proto, err := xvs.ParseProtocol(id.Protocol)
			if err != nil {
				return err
			}
			s.VIP, s.Port, s.Protocol = id.VIP, id.Port, proto
		}
		if err := setPolicy(&s, req.Service); err != nil {
			return err
		}
		cfg.Services = append(cfg.Services, s)
		return nil
	case api.OpEditService, api.OpDelService, api.OpZero:
		switch {
		case i < 0:
			return ErrNoService
		case req.Op == api.OpEditService:
			return setPolicy(&cfg.Services[i], req.Service)
		case req.Op == api.OpDelService:
			cfg.Services = slices.Delete(cfg.Services, i, i+1)
		}
		return nil
	}
	if i < 0 {
		return ErrServiceNotDefined
	}
	if req.Real == nil {
		return fmt.Errorf("%s: no real server given", req.Op)
	}
	return editReal(&cfg.Services[i], req.Op, req.Real)
}

// editReal applies -a, -e or -d to service s.
func editReal(s *config.Service, op api.Op, r *api.Real) error {
	addr := r.Addr.Unmap()
	j := slices.IndexFunc(s.Reals, func(x config.Real) bool {
		// ipvsadm gives a real server without a port the service's.
		return x.Address == addr && (x.Port == r.Port || r.Port == 0 && x.Port == s.Port)
	})
	switch {
	case op == api.OpAddReal && j >= 0:
		return ErrDestExists
	case op == api.OpAddReal:
		nr := config.Real{Address: addr, Port: r.Port, Weight: config.DefaultWeight, Method: xvs.MethodDR}
		if nr.Port == 0 && !s.IsGroup() {
			nr.Port = s.Port
		}
		if err := setReal(&nr, r); err != nil {
			return err
		}
		s.Reals = append(s.Reals, nr)
		return nil
	case j < 0:
		return ErrNoDest
	case op == api.OpDelReal:
		s.Reals = slices.Delete(s.Reals, j, j+1)
		return nil
	}
	return setReal(&s.Reals[j], r)
}

// editDaemon starts or stops a sync role of cfg's [sync]. The roles share
// one socket, so one interface and one sync id: a role started without
// --mcast-interface or --syncid takes the other running role's, else the
// route's interface and id 0 (ipvsadm's default); one started with values
// the other running role does not have is refused.
func editDaemon(cfg *config.Config, op api.Op, d *api.SyncDaemon) error {
	if d == nil {
		return fmt.Errorf("%s: no daemon given", op)
	}
	if cfg.Sync == nil {
		return errNoSync
	}
	s := *cfg.Sync
	this, other, otherName := &s.Master, s.Backup, api.RoleBackup
	switch d.Role {
	case api.RoleMaster:
	case api.RoleBackup:
		this, other, otherName = &s.Backup, s.Master, api.RoleMaster
	default:
		return fmt.Errorf("%s: %q is not master or backup", op, d.Role)
	}
	if op == api.OpStopDaemon {
		if !*this {
			return ErrNoDaemon
		}
		*this = false
		cfg.Sync = &s
		return nil
	}
	if *this {
		return ErrDaemonRuns
	}
	id, ifname := 0, d.Interface
	if d.SyncID != nil {
		id = *d.SyncID
	}
	if other {
		if d.SyncID != nil && id != int(s.SyncID) {
			return fmt.Errorf("the %s sync daemon runs with syncid %d, and xvs's sync daemons share one: start with --syncid %d, or stop the %s first", otherName, s.SyncID, s.SyncID, otherName)
		}
		if ifname != "" && ifname != s.Interface {
			return fmt.Errorf("the %s sync daemon runs on %s, and xvs's sync daemons share one socket: start without --mcast-interface, or stop the %s first", otherName, interfaceName(s.Interface), otherName)
		}
		id, ifname = int(s.SyncID), s.Interface
	}
	if id < 0 || id > 255 {
		return errorf("illegal syncid specified")
	}
	*this, s.SyncID, s.Interface = true, uint8(id), ifname
	cfg.Sync = &s
	return nil
}

func interfaceName(s string) string {
	if s == "" {
		return "the route's interface"
	}
	return s
}

// setPolicy applies -A and -E's options. As with ipvsadm -E, the
// scheduler's flags and persistence are what the command says (none when
// it says nothing); xvs's own options (--laddr, --local-ports, --toa,
// --no-fast-path, --name, --match, --health) change only what they name.
func setPolicy(s *config.Service, a *api.Service) error {
	if a.Scheduler != "" {
		s.Scheduler = a.Scheduler
	}
	s.Flags = schedFlags(s.Scheduler, a.Flags)
	s.Persistence = a.Persistence
	s.PersistPrefix = a.PersistPrefix
	if a.Name != "" {
		s.Name = a.Name
	}
	if len(a.Matches) > 0 {
		if s.Mark == 0 {
			return errors.New("--match is for groups (-f) only")
		}
		s.Matches = s.Matches[:0:0]
		for _, m := range a.Matches {
			p, err := xvs.ParseProtocol(m.Protocol)
			if err != nil {
				return fmt.Errorf("--match: %w", err)
			}
			s.Matches = append(s.Matches, config.Match{VIP: m.VIP.Unmap(), FromPort: m.FromPort, ToPort: m.ToPort, Protocol: p})
		}
	}
	if len(a.LocalAddrs) > 0 {
		s.LocalAddrs = slices.Clone(a.LocalAddrs)
	}
	if a.LocalPorts != [2]uint16{} {
		s.LocalPortMin, s.LocalPortMax = a.LocalPorts[0], a.LocalPorts[1]
	}
	s.TOA = s.TOA || a.TOA
	s.NoFastPath = s.NoFastPath || a.NoFastPath
	s.SynProxy = s.SynProxy || a.SynProxy
	if a.Health != "" {
		h, err := config.ParseHealth(a.Health)
		if err != nil {
			return fmt.Errorf("--health: %w", err)
		}
		s.Health = h
	}
	return nil
}

// schedFlags turns -b's flags into the scheduler's: ipvsadm's generic
// flag-1 and flag-2 are the same bits as sh's and mh's -fallback and -port
// (IP_VS_SVC_F_SCHED1, _SCHED2), and no other IPVS scheduler reads any of
// flag-1..3, so those are dropped, as the kernel ignores them. The result
// is in ipvsadm's order, -fallback before -port.
func schedFlags(scheduler string, flags []string) []string {
	var out []string
	for _, f := range flags {
		switch f {
		case "flag-1", "flag-2", "flag-3":
			suffix := map[string]string{"flag-1": "-fallback", "flag-2": "-port"}[f]
			i := slices.IndexFunc(sched.FlagsFor(scheduler), func(n string) bool { return suffix != "" && strings.HasSuffix(n, suffix) })
			if i < 0 {
				continue
			}
			f = sched.FlagsFor(scheduler)[i]
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	// In ipvsadm's order (its flag bits'): the scheduler's own order.
	known := sched.FlagsFor(scheduler)
	slices.SortStableFunc(out, func(a, b string) int {
		ia, ib := slices.Index(known, a), slices.Index(known, b)
		if ia < 0 {
			ia = len(known)
		}
		if ib < 0 {
			ib = len(known)
		}
		return ia - ib
	})
	return out
}

// setReal applies -a and -e's options.
func setReal(r *config.Real, a *api.Real) error {
	if a.Weight != nil {
		r.Weight = *a.Weight
	}
	if a.Method != "" {
		m, err := xvs.ParseMethod(a.Method)
		if err != nil {
			return err
		}
		r.Method = m
	}
	r.UpperThreshold, r.LowerThreshold = a.UpperThreshold, a.LowerThreshold
	return nil
}

// NormalID is id as ServiceID names a configured service (see normalID).
func NormalID(id api.ServiceID) api.ServiceID { return normalID(id) }

// normalID is id as ServiceID names a configured service: protocol in
// lower case, an IPv4-mapped VIP as IPv4.
func normalID(id api.ServiceID) api.ServiceID {
	if id.Mark != 0 {
		return api.ServiceID{Mark: id.Mark}
	}
	return api.ServiceID{Protocol: strings.ToLower(id.Protocol), VIP: id.VIP.Unmap(), Port: id.Port}
}

// clone copies what edit changes.
func clone(c *config.Config) *config.Config {
	n := *c
	n.Services = slices.Clone(c.Services)
	for i := range n.Services {
		s := &n.Services[i]
		s.Reals = slices.Clone(s.Reals)
		s.Flags = slices.Clone(s.Flags)
		s.Matches = slices.Clone(s.Matches)
		s.LocalAddrs = slices.Clone(s.LocalAddrs)
	}
	return &n
}

// ServiceID names a configured service as the control API does.
func ServiceID(s *config.Service) api.ServiceID {
	if s.IsGroup() {
		return api.ServiceID{Mark: s.Mark}
	}
	return api.ServiceID{Protocol: s.Protocol.String(), VIP: s.VIP, Port: s.Port}
}

// Services lists cfg's services as the control API describes them, in
// cfg's order, without what only the data plane knows (counters, rates,
// connection counts, health, real servers still draining): what -L and -S
// show of a configuration.
func Services(cfg *config.Config) []api.ServiceState {
	out := make([]api.ServiceState, 0, len(cfg.Services))
	for i := range cfg.Services {
		s := &cfg.Services[i]
		st := api.ServiceState{Service: api.Service{
			ServiceID: ServiceID(s), Name: s.Name, Scheduler: s.Scheduler, Flags: slices.Clone(s.Flags),
			Persistence: s.Persistence, PersistPrefix: s.PersistPrefix,
			LocalAddrs: slices.Clone(s.LocalAddrs), LocalPorts: [2]uint16{s.LocalPortMin, s.LocalPortMax},
			TOA: s.TOA, NoFastPath: s.NoFastPath, SynProxy: s.SynProxy, Health: config.HealthInline(s.Health),
		}}
		for _, m := range s.Matches {
			st.Matches = append(st.Matches, api.Match{Protocol: m.Protocol.String(), VIP: m.VIP, FromPort: m.FromPort, ToPort: m.ToPort})
		}
		st.Reals = make([]api.RealState, 0, len(s.Reals))
		for _, r := range s.Reals {
			st.Reals = append(st.Reals, RealState(r.Address, r.Port, r.Method, r.Weight, r.UpperThreshold, r.LowerThreshold))
		}
		out = append(out, st)
	}
	return out
}

// RealState is a real server's settings as the control API lists them:
// its weight in effect is the configured one until the data plane says
// otherwise (a failed health check, draining).
func RealState(addr netip.Addr, port uint16, m xvs.Method, weight, upper, lower int) api.RealState {
	w := weight
	return api.RealState{Real: api.Real{Addr: addr, Port: port, Method: m.String(), Weight: &w, UpperThreshold: upper, LowerThreshold: lower},
		Weight: weight, ConfiguredWeight: weight}
}
