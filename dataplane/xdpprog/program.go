package xdpprog

import (
	"encoding/binary"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Names of the program and its maps in the collection spec (and, truncated
// to 15 bytes, in the kernel, where bpftool shows them).
const (
	progName       = "xvs_steer"
	mapVIPs        = "xvs_vips"
	mapReals       = "xvs_reals"
	mapVIPAddrs    = "xvs_vipaddrs"
	mapXSKs        = "xvs_xsks"
	mapStats       = "xvs_stats"
	programLicense = "Dual MIT/GPL"
)

// Map element sizes.
const (
	keySize   = 20 // struct key
	valueSize = 4  // __u32 flags, reserved
	statSize  = 8  // __u64 counter
)

// MaxQueues is the number of RX queues the XSKMAP can hold sockets for.
// Frames arriving on a higher queue always fall back to the kernel.
const MaxQueues = 64

// Indexes of the per-CPU counters in the stats map.
const (
	statPassed      = iota // not for xvs: handed to the kernel
	statRedirected         // steered and redirected to the queue's socket
	statParseErrors        // too short or malformed: handed to the kernel
	statNoSocket           // steered, but the queue has no socket: handed to the kernel
	statFragments          // IPv4 fragments to a VIP address (also counted as redirected or no-socket)
	numStats
)

// XDP actions and other kernel ABI values the program uses.
const (
	xdpPass     = 2
	xdpRedirect = 4

	// struct xdp_md field offsets.
	xdpMDData         = 0
	xdpMDDataEnd      = 4
	xdpMDRxQueueIndex = 16

	ethHdrLen  = 14
	vlanHdrLen = 4
	ipv4MinLen = 20
	ipv6HdrLen = 40

	ethPIPv4   = 0x0800
	ethPIPv6   = 0x86dd
	ethP8021Q  = 0x8100
	ethP8021AD = 0x88a8

	protoTCP = 6
	protoUDP = 17

	ipv4FragMask = 0x3fff // MF flag and fragment offset
)

// Stack layout of the program. Both keys follow struct key (see the package
// documentation); the stat slot holds the counter index for the stats lookup.
const (
	vkeyOff = -24 // (daddr, dport, proto, family): vips and vipaddrs lookups
	rkeyOff = -48 // (saddr, sport, proto, family): reals lookup
	statOff = -52 // __u32 index into the stats map

	keyPortOff   = 16
	keyProtoOff  = 18
	keyFamilyOff = 19
)

// Register roles. R6-R9 survive helper calls; R1-R5 do not.
const (
	rCtx    = asm.R6 // struct xdp_md *
	rAction = asm.R7 // XDP action to return, set before counting
	rEnd    = asm.R8 // data_end
	rHdr    = asm.R9 // cursor: start of the header being parsed
)

// be16 returns the value a 16-bit load yields on this host for a packet field
// that holds v in network byte order, so the program compares without
// swapping bytes.
func be16(v uint16) int32 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return int32(binary.NativeEndian.Uint16(b[:]))
}

// collectionSpec describes the steering program and its maps.
// maxEntries sizes the vips, reals and vipaddrs maps.
func collectionSpec(maxEntries uint32) *ebpf.CollectionSpec {
	hash := func(name string) *ebpf.MapSpec {
		return &ebpf.MapSpec{
			Name:       name,
			Type:       ebpf.Hash,
			KeySize:    keySize,
			ValueSize:  valueSize,
			MaxEntries: maxEntries,
		}
	}
	return &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			mapVIPs:     hash(mapVIPs),
			mapReals:    hash(mapReals),
			mapVIPAddrs: hash(mapVIPAddrs),
			mapXSKs: {
				Name:       mapXSKs,
				Type:       ebpf.XSKMap,
				KeySize:    4,
				ValueSize:  4,
				MaxEntries: MaxQueues,
			},
			mapStats: {
				Name:       mapStats,
				Type:       ebpf.PerCPUArray,
				KeySize:    4,
				ValueSize:  statSize,
				MaxEntries: numStats,
			},
		},
		Programs: map[string]*ebpf.ProgramSpec{
			progName: {
				Name:         progName,
				Type:         ebpf.XDP,
				AttachType:   ebpf.AttachXDP,
				License:      programLicense,
				Instructions: steeringProgram(),
			},
		},
	}
}

// steeringProgram assembles the XDP program. Every packet access is preceded
// by a bounds check against data_end on the same path; the verifier rejects
// the program otherwise.
func steeringProgram() asm.Instructions {
	var insns asm.Instructions
	emit := func(in ...asm.Instruction) { insns = append(insns, in...) }

	// dispatchIP jumps on the ethertype in R3 to the IP parsers and falls
	// through otherwise.
	dispatchIP := func() {
		emit(
			asm.JEq.Imm(asm.R3, be16(ethPIPv4), "ipv4"),
			asm.JEq.Imm(asm.R3, be16(ethPIPv6), "ipv6"),
		)
	}
	// bump increments stats[idx] on this CPU and continues at next.
	// label names its first instruction when not empty. Per-CPU values need
	// no atomic add: XDP runs with migration disabled. Clobbers R0-R5.
	bump := func(label string, idx int32, next string) {
		first := asm.StoreImm(asm.RFP, statOff, int64(idx), asm.Word)
		if label != "" {
			first = first.WithSymbol(label)
		}
		emit(
			first,
			asm.LoadMapPtr(asm.R1, 0).WithReference(mapStats),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, statOff),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, next),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
			asm.Add.Imm(asm.R1, 1),
			asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
			asm.Ja.Label(next),
		)
	}
	// lookup jumps to label when the key on the stack at keyOff is in m.
	lookup := func(m string, keyOff int32, label string) {
		emit(
			asm.LoadMapPtr(asm.R1, 0).WithReference(m),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, keyOff),
			asm.FnMapLookupElem.Call(),
			asm.JNE.Imm(asm.R0, 0, label),
		)
	}
	// setProtoFamily writes proto (in R4) and family into both keys.
	setProtoFamily := func(family int64) {
		emit(
			asm.StoreMem(asm.RFP, vkeyOff+keyProtoOff, asm.R4, asm.Byte),
			asm.StoreImm(asm.RFP, vkeyOff+keyFamilyOff, family, asm.Byte),
			asm.StoreMem(asm.RFP, rkeyOff+keyProtoOff, asm.R4, asm.Byte),
			asm.StoreImm(asm.RFP, rkeyOff+keyFamilyOff, family, asm.Byte),
		)
	}

	// Prologue: load the packet bounds and zero both keys, so that their
	// unused address bytes and padding are zero as the Go side writes them.
	emit(
		asm.Mov.Reg(rCtx, asm.R1).WithSymbol(progName),
		asm.LoadMem(asm.R2, rCtx, xdpMDData, asm.Word),
		asm.LoadMem(rEnd, rCtx, xdpMDDataEnd, asm.Word),
		asm.Mov.Imm(asm.R3, 0), // StoreImm has no 64-bit form
		asm.StoreMem(asm.RFP, vkeyOff, asm.R3, asm.DWord),
		asm.StoreMem(asm.RFP, vkeyOff+8, asm.R3, asm.DWord),
		asm.StoreMem(asm.RFP, vkeyOff+16, asm.R3, asm.DWord),
		asm.StoreMem(asm.RFP, rkeyOff, asm.R3, asm.DWord),
		asm.StoreMem(asm.RFP, rkeyOff+8, asm.R3, asm.DWord),
		asm.StoreMem(asm.RFP, rkeyOff+16, asm.R3, asm.DWord),
	)

	// Ethernet: rHdr is left at the end of the MAC header (the last
	// ethertype is at rHdr-2) as each tag is consumed.
	emit(
		asm.Mov.Reg(rHdr, asm.R2),
		asm.Mov.Reg(asm.R1, asm.R2),
		asm.Add.Imm(asm.R1, ethHdrLen),
		asm.JGT.Reg(asm.R1, rEnd, "short"),
		asm.LoadMem(asm.R3, rHdr, ethHdrLen-2, asm.Half),
		asm.Add.Imm(rHdr, ethHdrLen),
	)
	for i := range 2 {
		label := "vlan" + strconv.Itoa(i)
		dispatchIP()
		emit(
			asm.JEq.Imm(asm.R3, be16(ethP8021Q), label),
			asm.JEq.Imm(asm.R3, be16(ethP8021AD), label),
			asm.Ja.Label("pass"),
		)
		// A tag is TCI (2 bytes) then the encapsulated ethertype.
		insns = append(insns, asm.Mov.Reg(asm.R1, rHdr).WithSymbol(label))
		emit(
			asm.Add.Imm(asm.R1, vlanHdrLen),
			asm.JGT.Reg(asm.R1, rEnd, "short"),
			asm.LoadMem(asm.R3, rHdr, 2, asm.Half),
			asm.Add.Imm(rHdr, vlanHdrLen),
		)
	}
	// After two tags only IP is acceptable; a third tag is passed.
	dispatchIP()
	emit(asm.Ja.Label("pass"))

	// IPv4.
	insns = append(insns, asm.Mov.Reg(asm.R1, rHdr).WithSymbol("ipv4"))
	emit(
		asm.Add.Imm(asm.R1, ipv4MinLen),
		asm.JGT.Reg(asm.R1, rEnd, "short"),
		asm.LoadMem(asm.R2, rHdr, 0, asm.Byte), // version and IHL
		asm.Mov.Reg(asm.R3, asm.R2),
		asm.And.Imm(asm.R3, 0xf0),
		asm.JNE.Imm(asm.R3, 0x40, "short"),
		asm.And.Imm(asm.R2, 0x0f),
		asm.JLT.Imm(asm.R2, 5, "short"),
		asm.LSh.Imm(asm.R2, 2),                  // header length in bytes: 20..60
		asm.LoadMem(asm.R4, rHdr, 9, asm.Byte),  // protocol
		asm.LoadMem(asm.R3, rHdr, 16, asm.Word), // daddr
		asm.StoreMem(asm.RFP, vkeyOff, asm.R3, asm.Word),
		asm.LoadMem(asm.R3, rHdr, 12, asm.Word), // saddr
		asm.StoreMem(asm.RFP, rkeyOff, asm.R3, asm.Word),
	)
	setProtoFamily(4)
	emit(
		asm.LoadMem(asm.R3, rHdr, 6, asm.Half), // flags and fragment offset
		asm.And.Imm(asm.R3, be16(ipv4FragMask)),
		asm.JNE.Imm(asm.R3, 0, "frag4"),
		asm.JEq.Imm(asm.R4, protoTCP, "ipv4_l4"),
		asm.JEq.Imm(asm.R4, protoUDP, "ipv4_l4"),
		asm.Ja.Label("pass"),
	)
	insns = append(insns, asm.Add.Reg(rHdr, asm.R2).WithSymbol("ipv4_l4"))
	emit(asm.Ja.Label("l4"))

	// IPv6: only a fixed header directly followed by TCP or UDP is parsed;
	// extension headers (fragments included) go to the kernel.
	insns = append(insns, asm.Mov.Reg(asm.R1, rHdr).WithSymbol("ipv6"))
	emit(
		asm.Add.Imm(asm.R1, ipv6HdrLen),
		asm.JGT.Reg(asm.R1, rEnd, "short"),
		asm.LoadMem(asm.R2, rHdr, 0, asm.Byte),
		asm.And.Imm(asm.R2, 0xf0),
		asm.JNE.Imm(asm.R2, 0x60, "short"),
		asm.LoadMem(asm.R4, rHdr, 6, asm.Byte), // next header
		asm.JEq.Imm(asm.R4, protoTCP, "ipv6_l4"),
		asm.JEq.Imm(asm.R4, protoUDP, "ipv6_l4"),
		asm.Ja.Label("pass"),
	)
	insns = append(insns, asm.LoadMem(asm.R3, rHdr, 24, asm.DWord).WithSymbol("ipv6_l4")) // daddr
	emit(
		asm.StoreMem(asm.RFP, vkeyOff, asm.R3, asm.DWord),
		asm.LoadMem(asm.R3, rHdr, 32, asm.DWord),
		asm.StoreMem(asm.RFP, vkeyOff+8, asm.R3, asm.DWord),
		asm.LoadMem(asm.R3, rHdr, 8, asm.DWord), // saddr
		asm.StoreMem(asm.RFP, rkeyOff, asm.R3, asm.DWord),
		asm.LoadMem(asm.R3, rHdr, 16, asm.DWord),
		asm.StoreMem(asm.RFP, rkeyOff+8, asm.R3, asm.DWord),
	)
	setProtoFamily(6)
	emit(asm.Add.Imm(rHdr, ipv6HdrLen))

	// TCP or UDP: only the ports are needed.
	insns = append(insns, asm.Mov.Reg(asm.R1, rHdr).WithSymbol("l4"))
	emit(
		asm.Add.Imm(asm.R1, 4),
		asm.JGT.Reg(asm.R1, rEnd, "short"),
		asm.LoadMem(asm.R3, rHdr, 0, asm.Half), // sport
		asm.StoreMem(asm.RFP, rkeyOff+keyPortOff, asm.R3, asm.Half),
		asm.LoadMem(asm.R3, rHdr, 2, asm.Half), // dport
		asm.StoreMem(asm.RFP, vkeyOff+keyPortOff, asm.R3, asm.Half),
	)
	lookup(mapVIPs, vkeyOff, "steer")
	lookup(mapReals, rkeyOff, "steer")
	emit(asm.Ja.Label("pass"))

	// IPv4 fragment: the vips key still has port zero, which is how
	// vipaddrs is keyed.
	insns = append(insns, asm.LoadMapPtr(asm.R1, 0).WithReference(mapVIPAddrs).WithSymbol("frag4"))
	emit(
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, vkeyOff),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
	)
	bump("", statFragments, "steer")

	// Steer: redirect to the socket of this RX queue, falling back to
	// XDP_PASS when the queue has none.
	insns = append(insns, asm.LoadMapPtr(asm.R1, 0).WithReference(mapXSKs).WithSymbol("steer"))
	emit(
		asm.LoadMem(asm.R2, rCtx, xdpMDRxQueueIndex, asm.Word),
		asm.Mov.Imm(asm.R3, xdpPass),
		asm.FnRedirectMap.Call(),
		asm.Mov.Reg(rAction, asm.R0),
		asm.JEq.Imm(rAction, xdpRedirect, "redirected"),
	)
	bump("", statNoSocket, "out")
	bump("redirected", statRedirected, "out")

	insns = append(insns, asm.Mov.Imm(rAction, xdpPass).WithSymbol("pass"))
	bump("", statPassed, "out")

	insns = append(insns, asm.Mov.Imm(rAction, xdpPass).WithSymbol("short"))
	bump("", statParseErrors, "out")

	insns = append(insns, asm.Mov.Reg(asm.R0, rAction).WithSymbol("out"))
	emit(asm.Return())
	return insns
}
