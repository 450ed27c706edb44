package main

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// XDP actions and struct xdp_md offsets (kernel ABI).
const (
	xdpAborted = 0
	xdpDrop    = 1
	xdpPass    = 2
	xdpTX      = 3

	mdData           = 0
	mdDataEnd        = 4
	mdIngressIfindex = 12
	mdRxQueueIndex   = 16

	license = "Dual MIT/GPL"
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

// genState is the generator's state map value: frames generated, and the
// flow cursor of the next frame (see flowCursor).
type genState struct {
	Sent uint64
	Flow uint32
	Addr uint32
	Port uint32
	_    uint32
}

// Offsets of genState's fields, for the program.
const (
	stSent = 0
	stFlow = 8
	stAddr = 12
	stPort = 16
	stSize = 24
)

// countValue is a counting program's per-CPU map value. First is the
// bpf_ktime_get_ns (CLOCK_MONOTONIC) of the first frame counted on that CPU,
// Last that of frame number Stamped, the latest timed one.
type countValue struct {
	Packets uint64
	Bytes   uint64
	First   uint64
	Last    uint64
	Stamped uint64
}

const (
	cvPackets = 0
	cvBytes   = 8
	cvFirst   = 16
	cvLast    = 24
	cvStamped = 32
	cvSize    = 40

	stampEvery = 64 // power of two
)

// Names of programs and maps, as bpftool shows them.
const (
	genProgName   = "pktgen_gen"
	genMapName    = "pktgen_state"
	countProgName = "pktgen_count"
	reflProgName  = "pktgen_refl"
	countMapName  = "pktgen_cnt"
	steerProgName = "pktgen_steer"
	xskMapName    = "pktgen_xsks"

	maxQueues = 256 // XSKMAP size: RX queues a socket can be steered to
)

// native returns the value a size-byte load from b yields on this host, so
// that the program stores the template's bytes in packet order.
func native(b []byte) int64 {
	switch len(b) {
	case 8:
		return int64(binary.NativeEndian.Uint64(b))
	case 4:
		return int64(int32(binary.NativeEndian.Uint32(b)))
	case 2:
		return int64(int16(binary.NativeEndian.Uint16(b)))
	}
	panic("native: bad size")
}

// storeBytes emits stores that write b at offset off of the packet pointed
// to by base, 8 bytes at a time.
func storeBytes(base asm.Register, off int, b []byte) asm.Instructions {
	var insns asm.Instructions
	for len(b) > 0 {
		switch {
		case len(b) >= 8:
			insns = append(insns,
				asm.LoadImm(asm.R0, native(b[:8]), asm.DWord),
				asm.StoreMem(base, int16(off), asm.R0, asm.DWord))
			off, b = off+8, b[8:]
		case len(b) >= 4:
			insns = append(insns, asm.StoreImm(base, int16(off), native(b[:4]), asm.Word))
			off, b = off+4, b[4:]
		case len(b) >= 2:
			insns = append(insns, asm.StoreImm(base, int16(off), native(b[:2]), asm.Half))
			off, b = off+2, b[2:]
		default:
			insns = append(insns, asm.StoreImm(base, int16(off), int64(b[0]), asm.Byte))
			off, b = off+1, b[1:]
		}
	}
	return insns
}

// fold16 emits the end-around-carry fold of the sum in r to 16 bits
// (twice: the sums here are below 2^18) and its complement: a checksum.
func fold16(r, tmp asm.Register) asm.Instructions {
	var insns asm.Instructions
	for range 2 {
		insns = append(insns,
			asm.Mov.Reg(tmp, r),
			asm.RSh.Imm(tmp, 16),
			asm.And.Imm(r, 0xffff),
			asm.Add.Reg(r, tmp))
	}
	return append(insns, asm.Xor.Imm(r, 0xffff))
}

// genProgram is the live-frames generator. Each run counts the frame and
// rewrites its headers for the next flow of the cursor kept in the state
// map, then returns XDP_TX, which BPF_PROG_RUN turns into a transmission on
// the ingress device.
//
// The kernel recycles live-frame pages without copying the input again, and
// a page comes back however its last user left it: rewritten by this program
// for another flow, MAC-swapped by a reflector, NATed by the kernel on the
// other side of a veth. So the program writes the whole header every time,
// and every value it writes is absolute, computed from the flow indexes and
// constants: the checksums are the complements of partial sums of the
// unchanging fields (the RFC 1624 incremental update with the template's old
// values folded into the constant), plus the flow's address and port.
//
// Frames whose ingress device is not ifindex pass untouched: the program is
// also attached to the loopback device, to keep it in the kernel's XDP
// dispatcher (see liveSender), and must leave loopback traffic alone.
func genProgram(t *template, ifindex int) asm.Instructions {
	const (
		rData  = asm.R7
		rState = asm.R8
		rAddr  = asm.R6
		rPort  = asm.R9
	)
	s := t.space
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, mdIngressIfindex, asm.Word).WithSymbol(genProgName),
		asm.JNE.Imm(asm.R2, int32(ifindex), "pass"),
		asm.LoadMem(asm.R2, asm.R1, mdData, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, mdDataEnd, asm.Word),
		asm.Mov.Reg(rData, asm.R2),
		asm.Add.Imm(asm.R2, int32(len(t.frame))),
		asm.JGT.Reg(asm.R2, asm.R3, "abort"),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference(genMapName),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "abort"),
		asm.Mov.Reg(rState, asm.R0),
		// One runner at a time (BPF_PROG_RUN on one thread), so a plain
		// increment suffices; user space only reads.
		asm.LoadMem(asm.R1, rState, stSent, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(rState, stSent, asm.R1, asm.DWord),
	}
	insns = append(insns, storeBytes(rData, 0, t.frame[:t.hdrLen])...)
	if s.flows > 1 {
		insns = append(insns,
			asm.LoadMem(rAddr, rState, stAddr, asm.Word),
			asm.LoadMem(rPort, rState, stPort, asm.Word),
			asm.Mov.Reg(asm.R1, rPort),
			asm.Add.Imm(asm.R1, int32(t.basePort)),
			asm.Mov.Reg(asm.R4, asm.R1), // port, for the L4 sum
			asm.HostTo(asm.BE, asm.R1, asm.Half),
			asm.StoreMem(rData, sportOff, asm.R1, asm.Half),
		)
		if s.addrs > 1 {
			// R5 = address; R4 += its halves; the IP checksum covers them too.
			insns = append(insns,
				asm.LoadImm(asm.R5, int64(t.baseAddr), asm.DWord),
				asm.Add.Reg(asm.R5, rAddr),
				asm.Mov.Reg(asm.R1, asm.R5),
				asm.HostTo(asm.BE, asm.R1, asm.Word),
				asm.StoreMem(rData, ipSrcOff, asm.R1, asm.Word),
				asm.Mov.Reg(asm.R2, asm.R5),
				asm.RSh.Imm(asm.R2, 16),
				asm.And.Imm(asm.R5, 0xffff),
				asm.Add.Reg(asm.R2, asm.R5), // address halves
				asm.Add.Reg(asm.R4, asm.R2),
				asm.Add.Imm(asm.R4, int32(t.l4Sum)),
				asm.Mov.Reg(asm.R1, asm.R2),
				asm.Add.Imm(asm.R1, int32(t.ipSum)),
			)
			insns = append(insns, fold16(asm.R1, asm.R3)...)
			insns = append(insns,
				asm.HostTo(asm.BE, asm.R1, asm.Half),
				asm.StoreMem(rData, ipCsumOff, asm.R1, asm.Half),
			)
		} else {
			// One address: its halves are constant, part of the sum.
			hi, lo := t.baseAddr>>16, t.baseAddr&0xffff
			k := int32(uint32(t.l4Sum) + hi + lo)
			insns = append(insns, asm.Add.Imm(asm.R4, k))
		}
		insns = append(insns, fold16(asm.R4, asm.R3)...)
		if t.udp {
			insns = append(insns,
				asm.JNE.Imm(asm.R4, 0, "csum"),
				asm.Mov.Imm(asm.R4, 0xffff),
			)
		}
		insns = append(insns,
			asm.HostTo(asm.BE, asm.R4, asm.Half).WithSymbol("csum"),
			asm.StoreMem(rData, int16(t.csOff), asm.R4, asm.Half),
			// Step the cursor as flowCursor.next does.
			asm.LoadMem(asm.R1, rState, stFlow, asm.Word),
			asm.Add.Imm(asm.R1, 1),
			asm.Add.Imm(rAddr, 1),
			asm.JNE.Imm(rAddr, int32(s.addrs), "wrap"),
			asm.Mov.Imm(rAddr, 0),
			asm.Add.Imm(rPort, 1),
			asm.LoadImm(asm.R2, int64(s.flows), asm.DWord).WithSymbol("wrap"),
			asm.JNE.Reg(asm.R1, asm.R2, "store"),
			asm.Mov.Imm(asm.R1, 0),
			asm.Mov.Imm(rAddr, 0),
			asm.Mov.Imm(rPort, 0),
			asm.StoreMem(rState, stFlow, asm.R1, asm.Word).WithSymbol("store"),
			asm.StoreMem(rState, stAddr, rAddr, asm.Word),
			asm.StoreMem(rState, stPort, rPort, asm.Word),
		)
	}
	return append(insns,
		asm.Mov.Imm(asm.R0, xdpTX),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpAborted).WithSymbol("abort"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	)
}

// countProgram counts unicast frames and bytes per CPU with the times of
// the first and latest frame, and returns action: XDP_DROP for a sink,
// XDP_TX after swapping the MAC addresses for a reflector. Multicast and
// broadcast frames (the kernel's own IPv6 neighbour discovery, ARP) go to
// the kernel uncounted: they are not the traffic measured, and one stray
// router solicitation before the traffic would stretch the first-to-last
// span a rate is computed over.
func countProgram(name string, swapMACs bool, action int32) asm.Instructions {
	const (
		rCtx   = asm.R6
		rValue = asm.R7
		rOld   = asm.R8
	)
	insns := asm.Instructions{
		asm.Mov.Reg(rCtx, asm.R1).WithSymbol(name),
		asm.LoadMem(asm.R2, rCtx, mdData, asm.Word),
		asm.LoadMem(asm.R3, rCtx, mdDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, ethLen),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R0, asm.R2, 0, asm.Byte),
		asm.And.Imm(asm.R0, 1), // group bit of the destination
		asm.JNE.Imm(asm.R0, 0, "pass"),
	}
	if swapMACs {
		insns = append(insns,
			asm.LoadMem(asm.R0, asm.R2, 0, asm.Word),
			asm.LoadMem(asm.R1, asm.R2, 4, asm.Half),
			asm.LoadMem(asm.R4, asm.R2, 6, asm.Word),
			asm.LoadMem(asm.R5, asm.R2, 10, asm.Half),
			asm.StoreMem(asm.R2, 0, asm.R4, asm.Word),
			asm.StoreMem(asm.R2, 4, asm.R5, asm.Half),
			asm.StoreMem(asm.R2, 6, asm.R0, asm.Word),
			asm.StoreMem(asm.R2, 10, asm.R1, asm.Half),
		)
	}
	return append(insns,
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference(countMapName),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Reg(rValue, asm.R0),
		// Per-CPU value, and XDP runs with migration off: no atomics.
		asm.LoadMem(rOld, rValue, cvPackets, asm.DWord),
		asm.Mov.Reg(asm.R1, rOld),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(rValue, cvPackets, asm.R1, asm.DWord),
		asm.LoadMem(asm.R2, rCtx, mdDataEnd, asm.Word),
		asm.LoadMem(asm.R3, rCtx, mdData, asm.Word),
		asm.Sub.Reg(asm.R2, asm.R3),
		asm.LoadMem(asm.R1, rValue, cvBytes, asm.DWord),
		asm.Add.Reg(asm.R1, asm.R2),
		asm.StoreMem(rValue, cvBytes, asm.R1, asm.DWord),
		// bpf_ktime_get_ns costs twice the rest of the program here, so
		// only the first frame and every stampEvery-th are timed.
		asm.Add.Imm(rOld, 1),
		asm.Mov.Reg(asm.R1, rOld),
		asm.And.Imm(asm.R1, stampEvery-1),
		asm.JEq.Imm(rOld, 1, "stamp"),
		asm.JNE.Imm(asm.R1, 0, "out"),
		asm.FnKtimeGetNs.Call().WithSymbol("stamp"),
		asm.JNE.Imm(rOld, 1, "last"),
		asm.StoreMem(rValue, cvFirst, asm.R0, asm.DWord),
		asm.StoreMem(rValue, cvLast, asm.R0, asm.DWord).WithSymbol("last"),
		asm.StoreMem(rValue, cvStamped, rOld, asm.DWord),
		asm.Mov.Imm(asm.R0, action).WithSymbol("out"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	)
}

// steerProgram redirects every unicast frame to the AF_XDP socket of its RX
// queue, and hands it to the kernel when that queue has none. Multicast and
// broadcast go to the kernel, as in countProgram.
func steerProgram() asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, mdData, asm.Word).WithSymbol(steerProgName),
		asm.LoadMem(asm.R3, asm.R1, mdDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, ethLen),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R0, asm.R2, 0, asm.Byte),
		asm.And.Imm(asm.R0, 1),
		asm.JNE.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R2, asm.R1, mdRxQueueIndex, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference(xskMapName),
		asm.Mov.Imm(asm.R3, xdpPass),
		asm.FnRedirectMap.Call(),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	}
}

func genSpec(t *template, ifindex int) *ebpf.CollectionSpec {
	return &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			genMapName: {Name: genMapName, Type: ebpf.Array, KeySize: 4, ValueSize: stSize, MaxEntries: 1},
		},
		Programs: map[string]*ebpf.ProgramSpec{
			genProgName: {Name: genProgName, Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: license,
				Instructions: genProgram(t, ifindex)},
		},
	}
}

// countSpec is a sink's (action XDP_DROP) or a reflector's (swapMACs,
// XDP_TX) program.
func countSpec(name string, swapMACs bool, action int32) *ebpf.CollectionSpec {
	return &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			countMapName: {Name: countMapName, Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: cvSize, MaxEntries: 1},
		},
		Programs: map[string]*ebpf.ProgramSpec{
			name: {Name: name, Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: license,
				Instructions: countProgram(name, swapMACs, action)},
		},
	}
}

func steerSpec() *ebpf.CollectionSpec {
	return &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			xskMapName: {Name: xskMapName, Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: maxQueues},
		},
		Programs: map[string]*ebpf.ProgramSpec{
			steerProgName: {Name: steerProgName, Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: license,
				Instructions: steerProgram()},
		},
	}
}

// xdpProg is a loaded program with its maps, attached or not.
type xdpProg struct {
	coll *ebpf.Collection
	prog *ebpf.Program
	link link.Link
	mode string // "driver" or "generic" once attached
}

func loadProg(spec *ebpf.CollectionSpec, name string) (*xdpProg, error) {
	coll, err := ebpf.NewCollection(spec)
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
