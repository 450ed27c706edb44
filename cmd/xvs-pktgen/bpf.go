package main

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/xvs-lb/xvs/dataplane/bpf"
)

// XDP actions (kernel ABI).
const (
	xdpAborted = 0
	xdpDrop    = 1
	xdpPass    = 2
	xdpTX      = 3
)

// xdpMD is struct xdp_md, the context BPF_PROG_RUN takes for XDP programs.
type xdpMD struct {
	Data           uint32
	DataEnd        uint32
	DataMeta       uint32
	IngressIfindex uint32
	RxQueueIndex   uint32
	EgressIfindex  uint32
}

// genState is the generator's state map value (struct gen_state in
// dataplane/bpf/pktgen.c): frames generated, and the flow cursor of the next
// frame (see flowCursor).
type genState struct {
	Sent uint64
	Flow uint32
	Addr uint32
	Port uint32
	_    uint32
}

// countValue is a counting program's per-CPU map value (struct count_value).
// First is the bpf_ktime_get_ns (CLOCK_MONOTONIC) of the first frame counted
// on that CPU, Last that of frame number Stamped, the latest timed one.
type countValue struct {
	Packets uint64
	Bytes   uint64
	First   uint64
	Last    uint64
	Stamped uint64
}

// stampEvery is STAMP_EVERY in pktgen.c: the counting programs time the
// first frame and every stampEvery-th.
const stampEvery = 64

// Names of programs and maps, as bpftool shows them. The programs, all in
// bpf.LoadPktgen's object, are the generator (genSpec sets it up), the sink
// (counts, XDP_DROP), the reflector (counts, swaps the MAC addresses,
// XDP_TX) and the AF_XDP steering program; loadProg loads one of them.
const (
	genProgName   = bpf.PktgenProgPktgenGen
	genMapName    = bpf.PktgenMapPktgenState
	countProgName = bpf.PktgenProgPktgenCount
	reflProgName  = bpf.PktgenProgPktgenRefl
	countMapName  = bpf.PktgenMapPktgenCnt
	steerProgName = bpf.PktgenProgPktgenSteer
	xskMapName    = bpf.PktgenMapPktgenXsks

	maxQueues = 256 // MAX_QUEUES, the XSKMAP size: RX queues a socket can be steered to
)

// tmplLen is TEMPLATE_LEN in pktgen.c: the bytes of the template the
// generator writes each time, the largest headers (TCP's) and the payload
// up to the shortest frame's end: all of a 64-byte frame.
const tmplLen = 60

// genSpec is the generator program for t sending on ifindex: the template
// and what it takes to rewrite it for any flow (see template) go into the
// program's constants (struct gen_config), which the verifier then knows.
func genSpec(t *template, ifindex int) (*ebpf.CollectionSpec, error) {
	// The program has the offsets of IPv4 without options, and of the L4
	// checksum for UDP and for TCP, built in.
	csOff := tcpCsumOff
	if t.udp {
		csOff = udpCsumOff
	}
	if t.hdrLen > tmplLen || len(t.frame) < tmplLen || t.csOff != csOff {
		return nil, fmt.Errorf("generator: %d bytes of headers in a %d-byte frame, L4 checksum at %d; want at most %d in at least %d, at %d",
			t.hdrLen, len(t.frame), t.csOff, tmplLen, tmplLen, csOff)
	}
	spec, err := bpf.LoadPktgen()
	if err != nil {
		return nil, err
	}
	cfg := bpf.PktgenGenConfig{
		Ifindex:     uint32(ifindex),
		FrameLen:    uint32(len(t.frame)),
		Flows:       t.space.flows,
		Addrs:       t.space.addrs,
		BaseAddr:    t.baseAddr,
		BasePort:    uint32(t.basePort),
		IpSum:       uint32(t.ipSum),
		L4Sum:       uint32(t.l4Sum),
		BaseAddrSum: t.baseAddr>>16 + t.baseAddr&0xffff,
	}
	if t.udp {
		cfg.Udp = 1
	}
	copy(cfg.Tmpl[:], t.frame)
	vs := spec.Variables[bpf.PktgenVarCfg]
	if vs == nil {
		return nil, fmt.Errorf("generator: no variable %s in pktgen.c", bpf.PktgenVarCfg)
	}
	if err := vs.Set(cfg); err != nil {
		return nil, fmt.Errorf("generator: set %s: %w", bpf.PktgenVarCfg, err)
	}
	return spec, nil
}

// xdpProg is a loaded program with its maps, attached or not.
type xdpProg struct {
	coll *ebpf.Collection
	prog *ebpf.Program
	link link.Link
	mode string // "driver" or "generic" once attached
}

// loadProg loads program name of spec with the maps it refers to (and their
// variables), and nothing else of the object: a sink needs neither the
// generator's constants nor the XSKMAP.
func loadProg(spec *ebpf.CollectionSpec, name string) (*xdpProg, error) {
	ps := spec.Programs[name]
	if ps == nil {
		return nil, fmt.Errorf("load %s: no such program", name)
	}
	uses := make(map[string]bool)
	for _, ins := range ps.Instructions {
		if ins.IsLoadFromMap() && ins.Reference() != "" {
			uses[ins.Reference()] = true
		}
	}
	one := &ebpf.CollectionSpec{
		Maps:      make(map[string]*ebpf.MapSpec),
		Programs:  map[string]*ebpf.ProgramSpec{name: ps},
		Variables: make(map[string]*ebpf.VariableSpec),
		Types:     spec.Types,
		ByteOrder: spec.ByteOrder,
	}
	for m := range uses {
		if spec.Maps[m] == nil {
			return nil, fmt.Errorf("load %s: no map %s", name, m)
		}
		one.Maps[m] = spec.Maps[m]
	}
	for n, v := range spec.Variables {
		if uses[v.SectionName] {
			one.Variables[n] = v
		}
	}
	coll, err := ebpf.NewCollection(one)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load %s: %+v", name, ve)
		}
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	return &xdpProg{coll: coll, prog: coll.Programs[name]}, nil
}

// attach links the program to ifindex in driver mode, or in generic mode
// where the driver has no XDP support.
func (p *xdpProg) attach(ifindex int) error {
	l, err := link.AttachXDP(link.XDPOptions{Program: p.prog, Interface: ifindex, Flags: link.XDPDriverMode})
	if err == nil {
		p.link, p.mode = l, "driver"
		return nil
	}
	l, gerr := link.AttachXDP(link.XDPOptions{Program: p.prog, Interface: ifindex, Flags: link.XDPGenericMode})
	if gerr != nil {
		return fmt.Errorf("attach XDP to ifindex %d: driver mode: %v; generic mode: %w", ifindex, err, gerr)
	}
	p.link, p.mode = l, "generic"
	return nil
}

// Close detaches the program and releases it and its maps.
func (p *xdpProg) Close() error {
	var errs []error
	if p.link != nil {
		if err := p.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach %s: %w", p.prog, err))
		}
		p.link = nil
	}
	p.coll.Close()
	return errors.Join(errs...)
}

// counts is the sum of a counting program's per-CPU values.
type counts struct {
	packets, bytes uint64
	first, last    uint64 // ns, CLOCK_MONOTONIC; 0 when nothing was counted
	stamped        uint64 // frames counted up to the one timed at last
}

// readCounts sums the per-CPU values of a counting program's map.
func readCounts(m *ebpf.Map, buf []countValue) (counts, error) {
	var c counts
	if err := m.Lookup(uint32(0), buf); err != nil {
		return c, fmt.Errorf("read %s: %w", countMapName, err)
	}
	for _, v := range buf {
		if v.Packets == 0 {
			continue
		}
		c.packets += v.Packets
		c.bytes += v.Bytes
		if c.first == 0 || v.First < c.first {
			c.first = v.First
		}
		c.last = max(c.last, v.Last)
		c.stamped += v.Stamped
	}
	return c, nil
}

// span returns the seconds from the first to the last frame. Only every
// stampEvery-th frame is timed, so the time of the last is extrapolated
// from the rate between the first and the latest timed frame: at most
// stampEvery-1 frames' worth of time.
func (c counts) span() float64 {
	if c.packets < 2 || c.stamped < 2 || c.last <= c.first {
		return 0
	}
	timed := float64(c.last - c.first)
	return timed * float64(c.packets-1) / float64(c.stamped-1) / 1e9
}
