package dataplane

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/dataplane/syncookie"
	"github.com/xvs-lb/xvs/dataplane/xdpprog"
	"github.com/xvs-lb/xvs/dataplane/xsk"
)

// Config says which interfaces an Engine drives and how.
type Config struct {
	Interfaces []string
	XDPMode    xdpprog.Mode
	ZeroCopy   xsk.ZeroCopyMode
	// CPUs pins worker i to CPUs[i % len(CPUs)]; empty leaves them unpinned.
	CPUs []int
	// SloppyTCP schedules any TCP packet without a connection, not only
	// SYNs (IPVS's sloppy_tcp), so that connections moved here from
	// another director (ECMP, failover) carry on.
	SloppyTCP bool
	// SyncEvents queues every new connection (and every one that becomes
	// established) for DrainConnEvents: connection sync.
	SyncEvents bool
	// Batch is how many frames a worker receives at once (default
	// DefaultBatch).
	Batch int
	// IdleSpins is how many empty polls of its rings a worker makes before
	// it sleeps in poll(2) (default DefaultIdleSpins); negative: it never
	// sleeps (busy poll, a core per worker).
	IdleSpins int
	// FastPath says where established connections are forwarded by XDP
	// itself (see FastPath); FastFlows bounds its flow table (flow
	// directions; default xdpprog.DefaultFlows).
	FastPath  FastPath
	FastFlows int
	// BusyPoll, when positive, has the workers run their queues' NAPI
	// themselves (SO_PREFER_BUSY_POLL, SO_BUSY_POLL for this long, the
	// batch as budget) whenever their rings are empty. The interfaces'
	// interrupt deferral (napi_defer_hard_irqs, gro_flush_timeout) is the
	// operator's: it helps a NIC with interrupts and hurts veth, whose
	// NAPI then waits out the timer (see README).
	BusyPoll time.Duration
	// VerifyChecksums checks every frame's checksums as it arrives and as
	// it leaves, counting and logging (sampled) frames sent with a
	// checksum their receiver will reject: a debugging aid that costs a
	// pass over every frame.
	VerifyChecksums bool
	// CookieSecret keys the SYN proxy's cookies (syncookie.SecretLen
	// bytes): directors that share it accept each other's cookies. Nil: a
	// random one.
	CookieSecret []byte
	Conntrack    conntrack.Config
	UMEM         xsk.UMEMConfig
	Socket       xsk.SocketConfig
	Logger       *zap.Logger
}

// Engine owns the director's data path: the XDP steering program on each
// interface, one AF_XDP socket per (interface, queue), one worker goroutine
// per queue index, the connection table, and the published service table.
type Engine struct {
	log     *zap.Logger
	ports   []Port
	progs   []*xdpprog.Program
	modes   []xdpprog.Mode
	workers []*worker
	umems   []*xsk.UMEM
	ct      *conntrack.Table
	persist *persistTable
	cookies *syncookie.Jar
	tuning  Tuning // as New settled it; NeedWakeup is read from the sockets
	// warnings are settings of the interfaces known to break forwarding,
	// found by New, for operators.
	warnings []string
	verify   bool

	// zeroBase is what ipvsadm -Z last zeroed, per real server: the
	// counters' owners only ever add, so a reset is a baseline.
	zeroMu   sync.Mutex
	zeroBase []Counters

	// The XDP fast path: the flow table, and which ports forward with it
	// (read by the workers when they offload; fastNote says why a port
	// does not).
	fast      *fastPath
	fastMode  FastPath
	fastPorts []atomic.Bool
	// offloadWake is the workers' doorbell for fastLoop (see offloadRing).
	offloadWake chan struct{}
	fastNote    []string
	fastErrs    []uint64 // per port: veth XDP transmit errors and successes at the last look
	fastSent    []uint64
	// fastTxDrops counts fast-path frames a veth peer did not take.
	fastTxDrops atomic.Uint64

	table atomic.Pointer[Table]

	mu     sync.Mutex // serialises Apply and the housekeeping that republishes
	reg    *registry
	specs  []ServiceSpec
	routes map[netip.Addr]route // next-hop cache of the resolver, under mu
	// resolveKick asks the resolver to look again soon: a new real
	// server waits for its next hop.
	resolveKick chan struct{}

	runCancel context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New sets up the data path on cfg.Interfaces: loads the steering program,
// binds the sockets and puts them in the program's socket map, then attaches
// the program. Nothing is forwarded until Run starts the workers and Apply
// publishes services.
func New(cfg Config) (_ *Engine, err error) {
	if len(cfg.Interfaces) == 0 {
		return nil, errors.New("dataplane: no interfaces")
	}
	if len(cfg.Interfaces) > 255 {
		return nil, errors.New("dataplane: too many interfaces")
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.Conntrack.MaxDests == 0 {
		cfg.Conntrack.MaxDests = 4096
	}
	ct, err := conntrack.New(cfg.Conntrack)
	if err != nil {
		return nil, fmt.Errorf("dataplane: connection table: %w", err)
	}
	e := &Engine{
		log:     log,
		ct:      ct,
		persist: newPersistTable(persistSlots),
		reg:     newRegistry(cfg.Conntrack.MaxDests),

		zeroBase: make([]Counters, cfg.Conntrack.MaxDests),

		resolveKick: make(chan struct{}, 1),
	}
	if e.cookies, err = syncookie.New(cfg.CookieSecret, ct.Now()); err != nil {
		return nil, fmt.Errorf("dataplane: SYN cookies: %w", err)
	}
	e.cookies.Prime(ct.Now())
	e.table.Store(&Table{services: map[serviceKey]*Service{}})
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Close())
		}
	}()

	queues := make([]int, len(cfg.Interfaces))
	nworkers := 0
	for i, name := range cfg.Interfaces {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("dataplane: interface %s: %w", name, err)
		}
		p := Port{Name: name, Ifindex: ifc.Index, MTU: ifc.MTU}
		copy(p.MAC[:], ifc.HardwareAddr)
		p.Addr4, p.Addr6 = interfaceAddrs(ifc)
		e.ports = append(e.ports, p)
		if queues[i], err = xsk.Queues(name); err != nil {
			return nil, fmt.Errorf("dataplane: %w", err)
		}
		nworkers = max(nworkers, queues[i])
	}
	// A frame must fit the data room of one UMEM chunk (after the
	// kernel's and the engine's headroom): an interface with a larger MTU
	// gets the largest chunk aligned mode allows.
	if cfg.UMEM.FrameSize == 0 {
		for _, p := range e.ports {
			if p.MTU+maxL2Header > cfg.UMEM.DataRoom() {
				cfg.UMEM.FrameSize = xsk.MaxFrameSize
			}
		}
	}
	frameRoom := cfg.UMEM.DataRoom()
	if e.fast, err = newFastPath(cmp.Or(cfg.FastFlows, xdpprog.DefaultFlows), cfg.Conntrack.MaxDests); err != nil {
		return nil, fmt.Errorf("dataplane: %w", err)
	}
	e.fastMode = cfg.FastPath
	for _, p := range e.ports {
		prog, err := xdpprog.Load(xdpprog.Config{MaxEntries: maxLookups, FrameRoom: frameRoom, Flows: e.fast.flows,
			TxByRedirect: driverName(p.Name) == "veth", MTU: p.MTU})
		if err != nil {
			return nil, fmt.Errorf("dataplane: load steering program for %s: %w", p.Name, err)
		}
		e.progs = append(e.progs, prog)
		if err := e.fast.flows.AddPort(p.Ifindex); err != nil {
			return nil, fmt.Errorf("dataplane: %w", err)
		}
	}
	if err := e.pushCookieKeys(); err != nil {
		return nil, fmt.Errorf("dataplane: %w", err)
	}
	e.fastPorts = make([]atomic.Bool, len(e.ports))
	e.offloadWake = make(chan struct{}, 1)
	e.fastNote = make([]string, len(e.ports))
	e.fastErrs = make([]uint64, len(e.ports))
	e.fastSent = make([]uint64, len(e.ports))
	// Every socket of a worker fills its fill ring from the worker's UMEM.
	fillRing := cfg.Socket.FillSize
	if fillRing == 0 {
		fillRing = xsk.DefaultRingSize
	}
	need := xsk.MinFrames(fillRing, len(e.ports))
	switch {
	case cfg.UMEM.NumFrames == 0:
		cfg.UMEM.NumFrames = max(xsk.DefaultNumFrames, need)
	case cfg.UMEM.NumFrames < need:
		return nil, fmt.Errorf("dataplane: %d UMEM frames cannot fill %d ring(s) of %d and keep as many in flight: want at least %d",
			cfg.UMEM.NumFrames, len(e.ports), fillRing, need)
	}
	batch := cfg.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	idleSpins := cfg.IdleSpins
	if idleSpins == 0 {
		idleSpins = DefaultIdleSpins
	}
	e.tuning = Tuning{Batch: batch, RingSize: fillRing, UMEMFrames: cfg.UMEM.NumFrames, IdleSpins: idleSpins, BusyPoll: cfg.BusyPoll}
	for q := 0; q < nworkers; q++ {
		umem, err := xsk.NewUMEM(cfg.UMEM)
		if err != nil {
			return nil, fmt.Errorf("dataplane: queue %d: %w", q, err)
		}
		e.umems = append(e.umems, umem)
		stats := newWorkerStats(cfg.Conntrack.MaxDests)
		w := &worker{
			queue: q, cpu: -1, umem: umem, stats: stats,
			socks: make([]*xsk.Socket, len(e.ports)),
			fwd:   newForwarder(e.ports, ct, e.persist, stats),
			table: e.table.Load,
			clock: e.now,
			rx:    make([]xsk.Desc, batch),
			prep:  make([]prepared, batch),
			tx:    make([][]xsk.Desc, len(e.ports)),

			idleSpins: idleSpins,
			busyPoll:  cfg.BusyPoll > 0,
		}
		if len(cfg.CPUs) > 0 {
			w.cpu = cfg.CPUs[q%len(cfg.CPUs)]
		}
		w.fwd.sloppyTCP = cfg.SloppyTCP
		w.fwd.offload, w.fwd.fastPorts = newOffloadRing(offloadRingSize, e.offloadWake), e.fastPorts
		w.fwd.verify = cfg.VerifyChecksums
		w.fwd.cookies = e.cookies
		if cfg.SyncEvents {
			w.fwd.events = newEventRing(syncRingSize)
		}
		for p := range e.ports {
			w.tx[p] = make([]xsk.Desc, 0, batch*len(e.ports))
			if q >= queues[p] {
				continue
			}
			sockCfg := cfg.Socket
			sockCfg.ZeroCopy = cfg.ZeroCopy
			sockCfg.BusyPoll, sockCfg.BusyPollBudget = cfg.BusyPoll, batch
			s, err := umem.Bind(e.ports[p].Ifindex, q, sockCfg)
			if err != nil {
				return nil, fmt.Errorf("dataplane: %s queue %d: %w", e.ports[p].Name, q, err)
			}
			w.socks[p] = s
			if err := e.progs[p].SetSocket(q, s.FD()); err != nil {
				return nil, fmt.Errorf("dataplane: %s queue %d: %w", e.ports[p].Name, q, err)
			}
			log.Info("socket bound", zap.String("interface", e.ports[p].Name), zap.Int("queue", q), zap.Bool("zerocopy", s.ZeroCopy()))
		}
		e.workers = append(e.workers, w)
	}
	for p, prog := range e.progs {
		mode, err := prog.Attach(e.ports[p].Ifindex, cfg.XDPMode)
		if err != nil {
			return nil, fmt.Errorf("dataplane: %w", err)
		}
		e.modes = append(e.modes, mode)
		log.Info("steering program attached", zap.String("interface", e.ports[p].Name), zap.Stringer("mode", mode), zap.Int("queues", queues[p]))
		e.checkPort(p, mode, prog.Fallback(), frameRoom)
	}
	if err := e.setFastPath(cfg.FastPath); err != nil {
		return nil, fmt.Errorf("dataplane: %w", err)
	}
	e.verify = cfg.VerifyChecksums
	for _, w := range e.warnings {
		log.Warn(w)
	}
	return e, nil
}

// maxL2Header is the most link-layer header a frame carries here: Ethernet
// and two VLAN tags.
const maxL2Header = 14 + 2*4

// checkPort notes for operators (xvsadm status, the log) what is known to
// break forwarding on port p, running XDP in mode. (What generic mode
// would otherwise suffer from, GRO and LRO merging frames before the
// program sees them, the kernel turns off itself when it attaches a
// generic program.)
func (e *Engine) checkPort(p int, mode xdpprog.Mode, fallback error, frameRoom int) {
	port := e.ports[p]
	if fallback != nil {
		e.warnings = append(e.warnings, fmt.Sprintf("%s: XDP runs in generic mode: driver mode was refused (%v)", port.Name, fallback))
	}
	if port.MTU+maxL2Header > frameRoom {
		e.warnings = append(e.warnings, fmt.Sprintf("%s: MTU %d: frames above %d bytes do not fit an AF_XDP frame and are dropped by the kernel (rx_dropped)",
			port.Name, port.MTU, frameRoom))
	}
	if mode == xdpprog.ModeGeneric && driverName(port.Name) == "veth" {
		e.warnings = append(e.warnings, fmt.Sprintf("%s: generic XDP on veth: the peer's TSO/GSO super-frames (up to 64 KB) reach the program whole "+
			"and do not fit an AF_XDP frame (rx_dropped, transfers crawl); in driver mode (MTU <= 3500) veth turns the peer's segmentation offload off", port.Name))
	}
}

// interfaceAddrs returns an interface's first global IPv4 and IPv6
// addresses: where tunnels to real servers start.
func interfaceAddrs(ifc *net.Interface) (v4, v6 netip.Addr) {
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil || !pfx.Addr().IsGlobalUnicast() {
			continue
		}
		ip := pfx.Addr().Unmap()
		if ip.Is4() && !v4.IsValid() && pfx.Bits() < 32 {
			v4 = ip
		} else if ip.Is6() && !v6.IsValid() && pfx.Bits() < 128 {
			v6 = ip
		}
	}
	return v4, v6
}

// persistSlots sizes the persistent-template table (about 48 bytes each).
const persistSlots = 1 << 18

// now is the data path's clock, the connection table's own, so that the
// expiry it reports matches the times workers stamp.
func (e *Engine) now() int64 { return e.ct.Now() }

// Run starts the workers and the background jobs (next-hop resolution,
// connection expiry, draining) and returns at once; Close stops them.
func (e *Engine) Run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	e.runCancel = cancel
	for _, w := range e.workers {
		e.wg.Add(1)
		go func() { defer e.wg.Done(); w.run(ctx) }()
	}
	e.wg.Add(3)
	go func() { defer e.wg.Done(); e.resolveLoop(ctx) }()
	go func() { defer e.wg.Done(); e.housekeeping(ctx) }()
	go func() { defer e.wg.Done(); e.fastLoop(ctx) }()
}

// Apply validates specs and publishes them as the new service table. On error
// nothing changes. Established connections keep their real server; real
// servers that are gone drain.
func (e *Engine) Apply(specs []ServiceSpec) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.applyLocked(specs)
}

func (e *Engine) applyLocked(specs []ServiceSpec) error {
	prev := e.table.Load()
	reg, t, err := e.reg.build(specs, prev, e.destConns)
	if err != nil {
		return err
	}
	// A real server that is new to its ID must not inherit the previous
	// holder's next hop.
	for _, d := range t.dests {
		if d == nil {
			continue
		}
		if old := prev.dest(d.ID); old == nil || old.Addr != d.Addr {
			d.hop.clear()
			// Nor its counters: they start from here.
			e.zeroMu.Lock()
			e.zeroBase[d.ID] = e.rawDestCounters(d.ID)
			e.zeroMu.Unlock()
		}
	}
	vips, reals := steering(t, prev)
	// Steer new real servers' replies before any connection can reach them,
	// publish, then stop steering what is gone.
	for _, prog := range e.progs {
		if err := prog.SyncReals(reals); err != nil {
			return fmt.Errorf("dataplane: steer replies: %w", err)
		}
	}
	e.reg, e.specs = reg, specs
	e.table.Store(t)
	// Offloaded connections of real servers that are gone, drained,
	// quiesced or changed go back to the workers, which apply the rules
	// for them (and may offload them again).
	e.dropDestFlows(changedDests(prev, t))
	if e.resolveAll(t) {
		select {
		case e.resolveKick <- struct{}{}:
		default:
		}
	}
	for _, prog := range e.progs {
		if err := prog.SyncVIPs(vips); err != nil {
			return fmt.Errorf("dataplane: steer VIPs: %w", err)
		}
	}
	return nil
}

// changedDests returns the ids of prev's real servers whose connections
// must leave the fast path under t: removed, draining, at weight 0, moved
// to another address, port or method, or of a service that no longer
// offloads.
func changedDests(prev, t *Table) map[uint32]bool {
	ids := map[uint32]bool{}
	for _, old := range prev.dests {
		if old == nil {
			continue
		}
		d := t.dest(old.ID)
		if d == nil || d.Draining || d.Weight == 0 || d.Addr != old.Addr || d.Port != old.Port || d.Method != old.Method {
			ids[old.ID] = true
			continue
		}
		if s := t.serviceByID(d.Service); s == nil || s.noFastPath {
			ids[old.ID] = true
		}
	}
	return ids
}

// steering lists what the XDP programs must send to the workers: every
// (VIP, port, protocol) of t's services, and for NAT the (real server, port,
// protocol) its replies come from. A NAT real server of a group with port 0
// answers from every port of the group's matches.
func steering(t, prev *Table) (vips, reals []xdpprog.Endpoint) {
	for k, s := range t.services {
		vips = append(vips, xdpprog.Endpoint{Addr: netip.AddrFrom16(k.addr).Unmap(), Port: k.port, Proto: k.proto, SynProxy: s.synProxy})
	}
	for _, d := range t.dests {
		if d == nil || (d.Method != MethodNAT && d.Method != MethodFullNAT) {
			continue
		}
		svc := t.serviceByID(d.Service)
		if svc == nil {
			svc = prev.serviceByID(d.Service)
		}
		if svc == nil {
			continue
		}
		for _, m := range svc.matchesOrSelf() {
			if d.Port != 0 {
				reals = append(reals, xdpprog.Endpoint{Addr: d.Addr, Port: d.Port, Proto: m.Proto})
				continue
			}
			for p := int(m.FromPort); p <= int(m.ToPort); p++ {
				reals = append(reals, xdpprog.Endpoint{Addr: d.Addr, Port: uint16(p), Proto: m.Proto})
			}
		}
	}
	return vips, dedupe(reals)
}

func dedupe(eps []xdpprog.Endpoint) []xdpprog.Endpoint {
	seen := make(map[xdpprog.Endpoint]bool, len(eps))
	out := eps[:0]
	for _, e := range eps {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}

func (e *Engine) destConns(id uint32) int64 {
	a, i := e.ct.DestConns(id)
	return a + i
}

// Table returns the published service table.
func (e *Engine) Table() *Table { return e.table.Load() }

// Conntrack returns the connection table.
func (e *Engine) Conntrack() *conntrack.Table { return e.ct }

// DestConns returns a real server's active and inactive connections.
func (e *Engine) DestConns(d *Dest) (active, inactive int64) { return e.ct.DestConns(d.ID) }

// DestCounters sums a real server's counters over all workers.
func (e *Engine) DestCounters(d *Dest) Counters {
	c := e.rawDestCounters(d.ID)
	e.zeroMu.Lock()
	c.sub(e.zeroBase[d.ID])
	e.zeroMu.Unlock()
	return c
}

// rawDestCounters sums real server id's counters as counted since start.
func (e *Engine) rawDestCounters(id uint32) Counters {
	var c Counters
	for _, w := range e.workers {
		c.add(w.stats.dest(id))
	}
	if e.fast != nil {
		c.add(e.fast.stats.dest(id))
	}
	return c
}

// ZeroCounters resets every service's and real server's counters
// (ipvsadm -Z). Workers keep adding while it runs; a packet counted in
// between may survive the reset, as with IPVS.
func (e *Engine) ZeroCounters() {
	e.zeroMu.Lock()
	defer e.zeroMu.Unlock()
	for id := range e.zeroBase {
		e.zeroBase[id] = e.rawDestCounters(uint32(id))
	}
}

// ZeroServiceCounters resets the counters of service s's real servers,
// those draining from it too (ipvsadm -Z -t ...), as ZeroCounters does for
// every service.
func (e *Engine) ZeroServiceCounters(s *Service) {
	e.zeroMu.Lock()
	defer e.zeroMu.Unlock()
	for _, d := range s.Dests {
		e.zeroBase[d.ID] = e.rawDestCounters(d.ID)
	}
	for _, d := range e.Table().Draining() {
		if d.Service == s.ID {
			e.zeroBase[d.ID] = e.rawDestCounters(d.ID)
		}
	}
}

// ServiceCounters sums the counters of a service's real servers.
func (e *Engine) ServiceCounters(s *Service) Counters {
	var c Counters
	for _, d := range s.Dests {
		dc := e.DestCounters(d)
		c.Conns += dc.Conns
		c.InPkts += dc.InPkts
		c.OutPkts += dc.OutPkts
		c.InBytes += dc.InBytes
		c.OutBytes += dc.OutBytes
	}
	return c
}

// Status is the data path's state for operators.
type Status struct {
	Ports  []PortStatus
	Tuning Tuning
	// Workers is the number of worker goroutines (queue indexes).
	Workers            int
	RxFrames, TxFrames uint64
	// CsumCompleted counts frames whose partial checksum a worker
	// completed (see WorkerStats.CsumCompleted).
	CsumCompleted uint64
	// SynProxySynAcks and SynProxyOpened: see WorkerStats;
	// SynProxySynAcks includes SynProxyXDP, the SYN-ACKs the XDP programs
	// sent (PortStatus.SynCookies).
	SynProxySynAcks, SynProxyOpened, SynProxyXDP uint64
	// With VerifyChecksums: frames that arrived with a bad TCP/UDP
	// checksum, and frames sent with one that the director did not
	// receive that way.
	VerifyChecksums       bool
	BadCsumIn, BadCsumOut uint64
	Drops                 map[string]uint64
	// Warnings are settings known to break forwarding (see checkPort).
	Warnings    []string
	FastPath    FastPathStatus
	Connections int
}

// Tuning is the data path's knobs as in effect (Config's, defaults filled
// in).
type Tuning struct {
	Batch, RingSize, UMEMFrames int
	IdleSpins                   int  // negative: busy poll
	NeedWakeup                  bool // every socket bound with XDP_USE_NEED_WAKEUP
	BusyPoll                    time.Duration
}

// FastPathStatus is the XDP fast path's state.
type FastPathStatus struct {
	Mode            string // auto, xdp or off
	Flows, Capacity int    // flow directions in the table now, and at most
	// Offloaded counts flow directions inserted; Full those that found the
	// table full (their connections stay in userspace); Stale those the
	// fold removed because their connection had ended or changed.
	Offloaded, Full, Stale uint64
	// The steering programs' counters, summed over interfaces: frames the
	// fast path forwarded, and frames of offloaded connections it left to
	// the workers (checksum to complete, too big to tunnel) or dropped
	// (egress not in the port map).
	Frames, Partial, TooBig, NoPort uint64
	// TxDrops counts fast-path frames a veth's peer did not take (its
	// receive ring full; or no NAPI, which turns the port's fast path off).
	TxDrops uint64
}

// PortStatus describes one director interface.
type PortStatus struct {
	Name     string
	XDPMode  string
	Queues   int
	ZeroCopy bool
	// FastPath is "xdp" when the interface forwards on the fast path, else
	// "off" and why.
	FastPath string
	// Oversize counts frames longer than an AF_XDP frame, dropped by the
	// steering program.
	Oversize uint64
	// SynCookies counts SYNs of SYN-proxied services the steering program
	// answered itself; SynNoPort those it dropped because it could not
	// send the answer (xdpprog.Stats).
	SynCookies, SynNoPort uint64
	// Kernel sums the AF_XDP sockets' XDP_STATISTICS (non-zero ones).
	Kernel map[string]uint64
}

// Status returns counters summed over workers.
func (e *Engine) Status() Status {
	e.mu.Lock()
	st := Status{Workers: len(e.workers), Drops: map[string]uint64{}, Connections: e.ct.Len(), Tuning: e.tuning,
		VerifyChecksums: e.verify, Warnings: append([]string(nil), e.warnings...)}
	notes := append([]string(nil), e.fastNote...)
	var noBusy []string // ports whose sockets report no NAPI to busy-poll
	st.FastPath.Mode = e.fastMode.String()
	e.mu.Unlock()
	if fp := e.fast; fp != nil {
		st.FastPath.Capacity = fp.flows.Capacity()
		st.FastPath.Flows = fp.flows.Count()
		st.FastPath.Offloaded, st.FastPath.Full, st.FastPath.Stale = fp.offloaded.Load(), fp.full.Load(), fp.stale.Load()
		st.FastPath.TxDrops = e.fastTxDrops.Load()
	}
	st.Tuning.NeedWakeup = len(e.workers) > 0
	for p, port := range e.ports {
		ps := PortStatus{Name: port.Name}
		if p < len(e.modes) {
			ps.XDPMode = e.modes[p].String()
		}
		if p < len(notes) {
			ps.FastPath = notes[p]
		}
		if p < len(e.progs) {
			if xs, err := e.progs[p].Stats(); err == nil {
				ps.Oversize = xs.Oversize
				ps.SynCookies, ps.SynNoPort = xs.SynCookies, xs.SynNoPort
				st.SynProxyXDP += xs.SynCookies
				st.FastPath.Frames += xs.Fast
				st.FastPath.Partial += xs.FastPartial
				st.FastPath.TooBig += xs.FastTooBig
				st.FastPath.NoPort += xs.FastNoPort
			}
		}
		ps.Kernel = map[string]uint64{}
		noNAPI := 0
		for _, w := range e.workers {
			if s := w.socks[p]; s != nil {
				if e.tuning.BusyPoll > 0 && s.NAPIID() == 0 {
					noNAPI++
				}
				ps.Queues++
				ps.ZeroCopy = s.ZeroCopy()
				st.Tuning.NeedWakeup = st.Tuning.NeedWakeup && s.NeedWakeup()
				if st, err := s.Stats(); err == nil {
					for name, v := range map[string]uint64{
						"rx_dropped": st.RxDropped, "rx_invalid": st.RxInvalidDescs, "tx_invalid": st.TxInvalidDescs,
						"rx_ring_full": st.RxRingFull, "fill_ring_empty": st.RxFillRingEmptyDescs, "tx_ring_empty": st.TxRingEmptyDescs,
					} {
						if v > 0 {
							ps.Kernel[name] += v
						}
					}
				}
			}
		}
		st.Ports = append(st.Ports, ps)
		if noNAPI > 0 {
			noBusy = append(noBusy, port.Name)
		}
	}
	for _, w := range e.workers {
		st.RxFrames += w.stats.RxFrames.Load()
		st.TxFrames += w.stats.TxFrames.Load()
		st.CsumCompleted += w.stats.CsumCompleted.Load()
		st.SynProxySynAcks += w.stats.SynProxySynAcks.Load()
		st.SynProxyOpened += w.stats.SynProxyOpened.Load()
		st.BadCsumIn += w.stats.BadCsumIn.Load()
		st.BadCsumOut += w.stats.BadCsumOut.Load()
		for r, n := range w.stats.Drops() {
			st.Drops[r] += n
		}
	}
	st.SynProxySynAcks += st.SynProxyXDP
	if len(noBusy) > 0 && st.RxFrames > 0 {
		// SO_INCOMING_NAPI_ID is set by the first frame a queue
		// delivers; still 0 after traffic, the queue has no NAPI that
		// busy polling could run (veth here, generic XDP).
		st.Warnings = append(st.Warnings, fmt.Sprintf("busy_poll: %s: no NAPI ID on the queues' sockets, so busy polling runs nothing there (veth, generic XDP); it only keeps the workers awake longer",
			strings.Join(noBusy, ", ")))
	}
	return st
}

// housekeeping expires connections a slice at a time, so no worker ever
// waits for a sweep, and forgets draining real servers once they are idle.
func (e *Engine) housekeeping(ctx context.Context) {
	sweep := time.NewTicker(100 * time.Millisecond)
	defer sweep.Stop()
	drain := time.NewTicker(time.Second)
	defer drain.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			// A tenth of the table a second: every entry is looked at
			// within ten seconds of expiring, at about 10 ms of CPU a
			// second for ten million entries.
			e.ct.Sweep(e.now(), max(4096, e.ct.Capacity()/100))
		case <-drain.C:
			e.reapDrained()
			e.logBadChecksums()
			// This minute's and the next's cookie keys, ahead of the
			// workers' and the XDP programs' first SYN in them.
			e.cookies.Prime(e.now())
			if err := e.pushCookieKeys(); err != nil {
				e.log.Warn("SYN proxy: cookie keys for XDP", zap.Error(err))
			}
		}
	}
}

// pushCookieKeys gives the XDP programs this minute's and the next's
// cookie keys and the Unix clock, so that they answer SYN-proxied
// services' SYNs with the workers' cookies.
func (e *Engine) pushCookieKeys() error {
	now := e.now()
	var keys []xdpprog.CookieKey
	for _, k := range e.cookies.Keys(now) {
		keys = append(keys, xdpprog.CookieKey{Minute: uint64(k.Minute), K0: k.K0, K1: k.K1})
	}
	offset := e.cookies.UnixNano(now) - int64(monotonicNs(unix.CLOCK_MONOTONIC))
	for _, p := range e.progs {
		if err := p.SetCookieKeys(keys, offset); err != nil {
			return err
		}
	}
	return nil
}

// logBadChecksums logs, at most once a second per worker, a frame a worker
// sent with a checksum its receiver will reject (VerifyChecksums).
func (e *Engine) logBadChecksums() {
	for i, w := range e.workers {
		select {
		case s := <-w.stats.badSent:
			e.log.Error("frame sent with a checksum its receiver will reject",
				zap.Int("worker", i), zap.Uint64("so_far", w.stats.BadCsumOut.Load()),
				zap.Int("length", s.len), zap.String("head", hex.EncodeToString(s.head[:min(s.len, len(s.head))])))
		default:
		}
	}
}

func (e *Engine) reapDrained() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, d := range e.table.Load().Draining() {
		if e.destConns(d.ID) == 0 {
			if err := e.applyLocked(e.specs); err != nil {
				e.log.Warn("republish after draining", zap.Error(err))
			}
			return
		}
	}
}

// Close stops the workers, detaches the steering programs and releases the
// sockets. Safe to call more than once.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		if e.runCancel != nil {
			e.runCancel()
		}
		e.wg.Wait()
		var errs []error
		// Detach first so the kernel stops steering into sockets that are
		// about to go.
		for _, p := range e.progs {
			errs = append(errs, p.Close())
		}
		for _, u := range e.umems {
			errs = append(errs, u.Close())
		}
		if e.fast != nil {
			errs = append(errs, e.fast.flows.Close())
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

// FlushDest drops every connection of real server id (from a health check
// with on_failure = "reset"); a negative id does nothing. It returns how
// many were dropped.
func (e *Engine) FlushDest(id int64) int {
	if id < 0 {
		return 0
	}
	var refs []conntrack.Ref
	e.ct.Range(func(c *conntrack.Conn, _ time.Duration) bool {
		if int64(c.Value.Dest) == id {
			refs = append(refs, c.Ref)
		}
		return true
	})
	n := 0
	for _, r := range refs {
		if e.ct.Delete(r) {
			n++
		}
	}
	e.dropDestFlows(map[uint32]bool{uint32(id): true})
	return n
}

// VerifiesChecksums reports whether the workers check every frame's
// checksums (Config.VerifyChecksums).
func (e *Engine) VerifiesChecksums() bool { return e.verify }

// WorkerStats returns each worker's counters, for metrics.
// SynCookiesByPort returns, by interface, the SYNs of SYN-proxied services
// that the interface's steering program answered itself (Status's
// PortStatus.SynCookies, without the rest of Status).
func (e *Engine) SynCookiesByPort() map[string]uint64 {
	out := make(map[string]uint64, len(e.progs))
	for p, prog := range e.progs {
		if xs, err := prog.Stats(); err == nil && p < len(e.ports) {
			out[e.ports[p].Name] = xs.SynCookies
		}
	}
	return out
}

func (e *Engine) WorkerStats() []*WorkerStats {
	out := make([]*WorkerStats, len(e.workers))
	for i, w := range e.workers {
		out[i] = w.stats
	}
	return out
}
