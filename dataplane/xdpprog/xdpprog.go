package xdpprog

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/xvs-lb/xvs/dataplane/bpf"
)

var errClosed = errors.New("xdpprog: program closed")

// Program is one loaded instance of the steering program with its own maps,
// for one director interface. Its methods are safe for concurrent use.
type Program struct {
	objs objects

	mu       sync.RWMutex
	closed   bool
	link     link.Link
	ifname   string
	fallback error             // why driver mode was refused when ModeAuto fell back to generic
	vipSet   map[mapKey]uint32 // with its flags
	realSet  map[mapKey]struct{}
	addrRefs map[mapKey]int // VIPs per vipaddrs key
	ownFlows *Flows         // the flow table Load made when Config had none
}

// objects receives the loaded collection; the tags name the spec's entries.
type objects struct {
	Prog     *ebpf.Program  `ebpf:"xvs_steer"`
	VIPs     *ebpf.Map      `ebpf:"xvs_vips"`
	Reals    *ebpf.Map      `ebpf:"xvs_reals"`
	VIPAddrs *ebpf.Map      `ebpf:"xvs_vipaddrs"`
	XSKs     *ebpf.Map      `ebpf:"xvs_xsks"`
	Stats    *ebpf.Map      `ebpf:"xvs_stats"`
	IPID     *ebpf.Map      `ebpf:"xvs_ipid"`
	FastPath *ebpf.Variable `ebpf:"fast_path"`
	// The SYN proxy's: minute keys and the clock that counts minutes.
	CookieKeys  *ebpf.Map      `ebpf:"xvs_cookie_keys"`
	CookieClock *ebpf.Variable `ebpf:"cookie_clock"`
}

func (o *objects) close() error {
	var errs []error
	for _, c := range []interface{ Close() error }{o.Prog, o.VIPs, o.Reals, o.VIPAddrs, o.XSKs, o.Stats, o.IPID, o.CookieKeys} {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stats are the program's counters summed over CPUs. Every frame the program
// sees is counted exactly once in Passed, Redirected, ParseErrors or
// NoSocket. Fragments and ICMPSteered break the steered frames down further:
// each of their frames is also in Redirected or NoSocket, so they are not
// added to the total.
type Stats struct {
	Passed      uint64 // not xvs traffic: handed to the kernel
	Redirected  uint64 // steered and redirected to the RX queue's socket
	ParseErrors uint64 // too short or malformed to parse: handed to the kernel
	NoSocket    uint64 // steered, but no socket on the RX queue: handed to the kernel
	Fragments   uint64 // IPv4 fragments to a VIP address (also in Redirected or NoSocket)
	ICMPSteered uint64 // ICMP errors quoting a packet from a VIP or to a NAT real server (also in Redirected or NoSocket)
	// Oversize counts steered frames longer than an AF_XDP frame holds
	// (Config.FrameRoom), dropped: GSO super-frames in generic mode, an
	// MTU above what the UMEM's frames take.
	Oversize uint64
	// The fast path: frames of offloaded connections forwarded by the
	// program itself (XDP_TX or redirect to another director interface);
	// frames of offloaded connections sent to userspace instead because
	// their checksum was left to complete (Partial) or they are too big to
	// tunnel (TooBig, userspace answers with ICMP); frames dropped because
	// their egress interface is not in the port map (NoPort).
	Fast, FastPartial, FastTooBig, FastNoPort uint64
	// The SYN proxy: SYNs to SYN-proxied services answered by the
	// program with a SYN cookie (sent back with XDP_TX or a redirect,
	// never steered), and those dropped because the interface is not in
	// the port map (veth's redirect).
	SynCookies, SynNoPort uint64
}

// Config says how to load a steering program.
type Config struct {
	// MaxEntries bounds each of the vips, reals and vipaddrs maps.
	MaxEntries int
	// FrameRoom is the most bytes an AF_XDP frame of the interface's
	// sockets holds: longer frames are counted (Stats.Oversize) and
	// dropped. 0: unchecked.
	FrameRoom int
	// TxByRedirect sends fast-path frames that leave on the interface they
	// arrived on by a redirect to it instead of XDP_TX: what veth needs,
	// since it does not wake a peer without an XDP program of its own for
	// XDP_TX frames.
	TxByRedirect bool
	// Flows is the fast path's flow table, shared by the programs of all
	// director interfaces. Nil: the program gets a small one of its own.
	Flows *Flows
	// MTU is the interface's: the SYN-ACKs the program answers SYN-proxied
	// services' SYNs with offer no larger MSS than it carries, as the
	// workers do. 0: the program leaves those SYNs to the workers.
	MTU int
}

// ownFlows sizes the flow table of a program loaded without one.
const ownFlows = 1024

// minMTU is the smallest MTU Config takes: IPv4's minimum (RFC 791).
const minMTU = 68

// Load creates the program's maps and loads them and the program into the
// kernel. The program is not attached anywhere until Attach, and its fast
// path is off until SetFastPath.
func Load(cfg Config) (*Program, error) {
	if cfg.MaxEntries <= 0 || cfg.MaxEntries > math.MaxUint32 {
		return nil, fmt.Errorf("load xdp program: max entries %d out of range", cfg.MaxEntries)
	}
	if cfg.MTU != 0 && (cfg.MTU < minMTU || cfg.MTU > math.MaxUint16) {
		return nil, fmt.Errorf("load xdp program: MTU %d out of range", cfg.MTU)
	}
	if cfg.FrameRoom < 0 || cfg.FrameRoom > math.MaxUint32 {
		return nil, fmt.Errorf("load xdp program: frame room %d out of range", cfg.FrameRoom)
	}
	p := &Program{
		vipSet:   make(map[mapKey]uint32),
		realSet:  make(map[mapKey]struct{}),
		addrRefs: make(map[mapKey]int),
	}
	spec, err := collectionSpec(uint32(cfg.MaxEntries))
	if err != nil {
		return nil, fmt.Errorf("load xdp program: %w", err)
	}
	if err := spec.Variables[bpf.SteerVarFrameRoom].Set(uint32(cfg.FrameRoom)); err != nil {
		return nil, fmt.Errorf("load xdp program: %w", err)
	}
	if cfg.MTU != 0 {
		// The MSS is what a packet of the MTU carries after the IP and
		// TCP headers (synproxy.go's cap).
		for name, mss := range map[string]uint16{bpf.SteerVarSynMss4: uint16(cfg.MTU - 40), bpf.SteerVarSynMss6: uint16(cfg.MTU - 60)} {
			if err := spec.Variables[name].Set(mss); err != nil {
				return nil, fmt.Errorf("load xdp program: %w", err)
			}
		}
	}
	if cfg.TxByRedirect {
		if err := spec.Variables[bpf.SteerVarTxByRedirect].Set(uint8(1)); err != nil {
			return nil, fmt.Errorf("load xdp program: %w", err)
		}
	}
	flows := cfg.Flows
	if flows == nil {
		if flows, err = NewFlows(ownFlows); err != nil {
			return nil, fmt.Errorf("load xdp program: %w", err)
		}
		p.ownFlows = flows
	}
	spec.Maps[bpf.SteerMapXvsFlows].MaxEntries = uint32(flows.capacity)
	opts := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{
		bpf.SteerMapXvsFlows: flows.flows,
		bpf.SteerMapXvsPorts: flows.ports,
	}}
	if err := spec.LoadAndAssign(&p.objs, opts); err != nil {
		if p.ownFlows != nil {
			p.ownFlows.Close()
		}
		return nil, fmt.Errorf("load xdp program: %w", err)
	}
	return p, nil
}

// SetFastPath switches the program's fast path on or off: whether it
// looks frames up in the flow table and forwards those of offloaded
// connections itself. Off, every frame is steered as without one.
func (p *Program) SetFastPath(on bool) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return fmt.Errorf("set fast path: %w", errClosed)
	}
	var v uint8
	if on {
		v = 1
	}
	if err := p.objs.FastPath.Set(v); err != nil {
		return fmt.Errorf("set fast path: %w", err)
	}
	return nil
}

// Run runs the program once on frame with BPF_PROG_RUN, without attaching
// it anywhere: what it would do with that frame arriving on an interface.
// It returns the XDP action and the frame as the program left it, written
// to out (which needs room for the headers the program may add).
// Redirects are not carried out.
func (p *Program) Run(frame, out []byte) (action uint32, n int, err error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return 0, 0, fmt.Errorf("run xdp program: %w", errClosed)
	}
	opts := &ebpf.RunOptions{Data: frame, DataOut: out, Repeat: 1}
	ret, err := p.objs.Prog.Run(opts)
	if err != nil {
		return 0, 0, fmt.Errorf("run xdp program: %w", err)
	}
	return ret, len(opts.DataOut), nil
}

// Time runs the program on frame repeat times in the kernel
// (BPF_PROG_RUN, as Run) and returns its last action and the mean time the
// kernel measured per run, for benchmarks: each run starts from frame as
// given.
func (p *Program) Time(frame []byte, repeat int) (action uint32, perRun time.Duration, err error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return 0, 0, fmt.Errorf("time xdp program: %w", errClosed)
	}
	// The kernel repeats a run on the frame the previous one left (a SYN
	// answered becomes a SYN-ACK): one call per run, each timed by the
	// kernel around the program alone.
	var total time.Duration
	for range max(repeat, 1) {
		a, d, err := p.objs.Prog.Benchmark(frame, 1, nil)
		if err != nil {
			return 0, 0, fmt.Errorf("time xdp program: %w", err)
		}
		action, total = a, total+d
	}
	return action, total / time.Duration(max(repeat, 1)), nil
}

// Attach attaches the program to the interface through a BPF link, so the
// attachment ends with the link: on Close, or when the process dies. It
// returns the mode actually in use. A Program attaches to one interface.
func (p *Program) Attach(ifindex int, mode Mode) (Mode, error) {
	name := interfaceName(ifindex)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return mode, fmt.Errorf("attach xdp to %s: %w", name, errClosed)
	}
	if p.link != nil {
		return mode, fmt.Errorf("attach xdp to %s: already attached to %s", name, p.ifname)
	}
	attach := func(m Mode) error {
		l, err := link.AttachXDP(link.XDPOptions{
			Program:   p.objs.Prog,
			Interface: ifindex,
			Flags:     attachFlags(m),
		})
		if err != nil {
			return fmt.Errorf("attach xdp to %s in %s mode: %w", name, m, err)
		}
		p.link, p.ifname = l, name
		return nil
	}
	switch mode {
	case ModeDriver, ModeGeneric:
		return mode, attach(mode)
	case ModeAuto:
		errDriver := attach(ModeDriver)
		if errDriver == nil {
			return ModeDriver, nil
		}
		if err := attach(ModeGeneric); err != nil {
			return mode, errors.Join(errDriver, err)
		}
		p.fallback = errDriver
		return ModeGeneric, nil
	default:
		return mode, fmt.Errorf("attach xdp to %s: invalid mode %v", name, mode)
	}
}

// Fallback returns why the kernel refused driver mode when Attach in
// ModeAuto fell back to generic mode, and nil otherwise.
func (p *Program) Fallback() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.fallback
}

// interfaceName names ifindex for error messages.
func interfaceName(ifindex int) string {
	if ifi, err := net.InterfaceByIndex(ifindex); err == nil {
		return ifi.Name
	}
	return fmt.Sprintf("ifindex %d", ifindex)
}

// SetSocket directs frames steered on RX queue queue to the AF_XDP socket fd,
// which must be bound to that queue of the interface.
func (p *Program) SetSocket(queue int, fd int) error {
	if queue < 0 || queue >= MaxQueues {
		return fmt.Errorf("set socket for queue %d: queue out of range [0, %d)", queue, MaxQueues)
	}
	if fd < 0 {
		return fmt.Errorf("set socket for queue %d: invalid fd %d", queue, fd)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return fmt.Errorf("set socket for queue %d: %w", queue, errClosed)
	}
	if err := p.objs.XSKs.Put(uint32(queue), uint32(fd)); err != nil {
		return fmt.Errorf("set socket for queue %d: %w", queue, err)
	}
	return nil
}

// ClearSocket removes the socket of RX queue queue, if any: its steered
// frames go to the kernel from then on.
func (p *Program) ClearSocket(queue int) error {
	if queue < 0 || queue >= MaxQueues {
		return fmt.Errorf("clear socket for queue %d: queue out of range [0, %d)", queue, MaxQueues)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return fmt.Errorf("clear socket for queue %d: %w", queue, errClosed)
	}
	if err := p.objs.XSKs.Delete(uint32(queue)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("clear socket for queue %d: %w", queue, err)
	}
	return nil
}

// AddVIP steers traffic to the virtual service addr:port/proto (port in host
// byte order), without the SYN proxy (SyncVIPs sets it). Adding a present
// VIP is a no-op, but for switching its SYN proxy off.
func (p *Program) AddVIP(addr netip.Addr, port uint16, proto uint8) error {
	e := Endpoint{Addr: addr, Port: port, Proto: proto}
	k, err := e.key()
	if err != nil {
		return fmt.Errorf("add VIP: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.addVIPLocked(k, e); err != nil {
		return fmt.Errorf("add VIP %v: %w", e, err)
	}
	return nil
}

// DeleteVIP stops steering traffic to addr:port/proto. Deleting an absent
// VIP returns an error wrapping ebpf.ErrKeyNotExist.
func (p *Program) DeleteVIP(addr netip.Addr, port uint16, proto uint8) error {
	e := Endpoint{Addr: addr, Port: port, Proto: proto}
	k, err := e.key()
	if err != nil {
		return fmt.Errorf("delete VIP: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.deleteVIPLocked(k); err != nil {
		return fmt.Errorf("delete VIP %v: %w", e, err)
	}
	return nil
}

// AddReal steers traffic from the NAT real server addr:port/proto (port in
// host byte order): its replies, which the director must translate back.
// Adding a present real server is a no-op.
func (p *Program) AddReal(addr netip.Addr, port uint16, proto uint8) error {
	e := Endpoint{Addr: addr, Port: port, Proto: proto}
	k, err := e.key()
	if err != nil {
		return fmt.Errorf("add real server: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.addRealLocked(k); err != nil {
		return fmt.Errorf("add real server %v: %w", e, err)
	}
	return nil
}

// DeleteReal stops steering traffic from addr:port/proto. Deleting an absent
// real server returns an error wrapping ebpf.ErrKeyNotExist.
func (p *Program) DeleteReal(addr netip.Addr, port uint16, proto uint8) error {
	e := Endpoint{Addr: addr, Port: port, Proto: proto}
	k, err := e.key()
	if err != nil {
		return fmt.Errorf("delete real server: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.deleteRealLocked(k); err != nil {
		return fmt.Errorf("delete real server %v: %w", e, err)
	}
	return nil
}

// SyncVIPs makes the set of VIPs equal to set: it deletes the VIPs not in set
// and adds the missing ones. VIPs in both keep steering throughout. If any
// endpoint is invalid nothing changes; otherwise a failing update does not
// stop the others, and the errors are returned joined.
func (p *Program) SyncVIPs(set []Endpoint) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.syncLocked(set, keysOf(p.vipSet), p.addVIPLocked, p.deleteVIPLocked); err != nil {
		return fmt.Errorf("sync VIPs: %w", err)
	}
	return nil
}

// SyncReals makes the set of NAT real servers equal to set, like SyncVIPs.
func (p *Program) SyncReals(set []Endpoint) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.syncLocked(set, p.realSet, func(k mapKey, _ Endpoint) error { return p.addRealLocked(k) }, p.deleteRealLocked); err != nil {
		return fmt.Errorf("sync real servers: %w", err)
	}
	return nil
}

// keysOf is the set of m's keys.
func keysOf[V any](m map[mapKey]V) map[mapKey]struct{} {
	s := make(map[mapKey]struct{}, len(m))
	for k := range m {
		s[k] = struct{}{}
	}
	return s
}

func (p *Program) syncLocked(set []Endpoint, current map[mapKey]struct{}, add func(mapKey, Endpoint) error, del func(mapKey) error) error {
	want := make(map[mapKey]Endpoint, len(set))
	for _, e := range set {
		k, err := e.key()
		if err != nil {
			return err
		}
		want[k] = e
	}
	var errs []error
	// Delete first, so a full map has room for the additions.
	for k := range current {
		if _, ok := want[k]; ok {
			continue
		}
		if err := del(k); err != nil {
			errs = append(errs, fmt.Errorf("delete %v: %w", k.endpoint(), err))
		}
	}
	for k, e := range want {
		if err := add(k, e); err != nil {
			errs = append(errs, fmt.Errorf("add %v: %w", e, err))
		}
	}
	return errors.Join(errs...)
}

func (p *Program) addVIPLocked(k mapKey, e Endpoint) error {
	if p.closed {
		return errClosed
	}
	flags := e.vipFlags()
	if old, ok := p.vipSet[k]; ok {
		if old == flags {
			return nil
		}
		// The same VIP, SYN proxy switched: its value changes in place.
		if err := p.objs.VIPs.Put(k, flags); err != nil {
			return err
		}
		p.vipSet[k] = flags
		return nil
	}
	if err := p.objs.VIPs.Put(k, flags); err != nil {
		return err
	}
	ak := k.addrKey()
	if p.addrRefs[ak] == 0 {
		if err := p.objs.VIPAddrs.Put(ak, uint32(0)); err != nil {
			// Without its address entry the VIP's fragments would reach
			// the kernel: undo rather than steer half of it.
			if errDel := p.objs.VIPs.Delete(k); errDel != nil {
				return errors.Join(err, errDel)
			}
			return err
		}
	}
	p.addrRefs[ak]++
	p.vipSet[k] = flags
	return nil
}

func (p *Program) deleteVIPLocked(k mapKey) error {
	if p.closed {
		return errClosed
	}
	if err := p.objs.VIPs.Delete(k); err != nil {
		return err
	}
	if _, ok := p.vipSet[k]; !ok {
		return nil
	}
	delete(p.vipSet, k)
	ak := k.addrKey()
	if p.addrRefs[ak]--; p.addrRefs[ak] > 0 {
		return nil
	}
	delete(p.addrRefs, ak)
	return p.objs.VIPAddrs.Delete(ak)
}

func (p *Program) addRealLocked(k mapKey) error {
	if p.closed {
		return errClosed
	}
	if _, ok := p.realSet[k]; ok {
		return nil
	}
	if err := p.objs.Reals.Put(k, uint32(0)); err != nil {
		return err
	}
	p.realSet[k] = struct{}{}
	return nil
}

func (p *Program) deleteRealLocked(k mapKey) error {
	if p.closed {
		return errClosed
	}
	if err := p.objs.Reals.Delete(k); err != nil {
		return err
	}
	delete(p.realSet, k)
	return nil
}

// CookieKey is the key of one minute of the SYN proxy's cookies
// (syncookie.Jar's): the minute of the Unix clock, and SipHash's two key
// words.
type CookieKey struct {
	Minute uint64
	K0, K1 uint64
}

// SetCookieKeys gives the program the keys it makes SYN cookies with, and
// wallOffset, what turns the kernel's CLOCK_MONOTONIC (bpf_ktime_get_ns)
// into the Unix time in nanoseconds that minutes count. A key goes into the
// slot of its minute modulo 4, where the program looks for the minute it
// runs in: this minute's and the next's, written ahead of time, keep a SYN
// at the turn of a minute in XDP. A SYN in a minute whose key the slot does
// not hold is left to the workers.
func (p *Program) SetCookieKeys(keys []CookieKey, wallOffset int64) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return fmt.Errorf("set cookie keys: %w", errClosed)
	}
	for _, k := range keys {
		if err := p.objs.CookieKeys.Put(uint32(k.Minute&3), k); err != nil {
			return fmt.Errorf("set cookie key of minute %d: %w", k.Minute, err)
		}
	}
	if err := p.objs.CookieClock.Set(uint64(wallOffset)); err != nil {
		return fmt.Errorf("set cookie clock: %w", err)
	}
	return nil
}

// Stats returns the program's counters summed over CPUs.
func (p *Program) Stats() (Stats, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return Stats{}, fmt.Errorf("read xdp stats: %w", errClosed)
	}
	var sums [numStats]uint64
	var perCPU []uint64
	for i := range sums {
		if err := p.objs.Stats.Lookup(uint32(i), &perCPU); err != nil {
			return Stats{}, fmt.Errorf("read xdp stats %d: %w", i, err)
		}
		for _, v := range perCPU {
			sums[i] += v
		}
	}
	return Stats{
		Passed:      sums[statPassed],
		Redirected:  sums[statRedirected],
		ParseErrors: sums[statParseErrors],
		NoSocket:    sums[statNoSocket],
		Fragments:   sums[statFragments],
		ICMPSteered: sums[statICMPSteered],
		Oversize:    sums[statOversize],
		Fast:        sums[statFast],
		FastPartial: sums[statFastPartial],
		FastTooBig:  sums[statFastTooBig],
		FastNoPort:  sums[statFastNoPort],
		SynCookies:  sums[statSynCookie],
		SynNoPort:   sums[statSynNoPort],
	}, nil
}

// Close detaches the program and releases it and its maps. Closing a closed
// Program does nothing.
func (p *Program) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	if p.link != nil {
		if err := p.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach xdp from %s: %w", p.ifname, err))
		}
		p.link = nil
	}
	if err := p.objs.close(); err != nil {
		errs = append(errs, fmt.Errorf("close xdp program: %w", err))
	}
	if p.ownFlows != nil {
		errs = append(errs, p.ownFlows.Close())
	}
	return errors.Join(errs...)
}
