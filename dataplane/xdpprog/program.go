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
	statICMPSteered        // ICMP errors about xvs's packets (also counted as redirected or no-socket)
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

	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58

	ipv4FragMask   = 0x3fff // MF flag and fragment offset
	ipv4OffsetMask = 0x1fff // fragment offset: non-zero for all but the first fragment

	icmpHdrLen = 8 // type, code, checksum and 4 type-specific bytes, then the quote
)

// ICMP and ICMPv6 error types whose quoted packet the program inspects: the
// ones IPVS relays (ip_vs_in_icmp, ip_vs_out_icmp), and parameter problem.
// Source quench is deprecated (RFC 6633), but IPVS and the data plane still
// relay it. Every other type, echo and neighbour discovery included, is the
// kernel's.
const (
	icmpv4DestUnreach  = 3 // fragmentation needed (code 4) included
	icmpv4SourceQuench = 4
	icmpv4TimeExceeded = 11
	icmpv4ParamProblem = 12

	icmpv6DestUnreach  = 1
	icmpv6PacketTooBig = 2
	icmpv6TimeExceeded = 3
	icmpv6ParamProblem = 4
)

// Stack layout of the program. Both keys follow struct key (see the package
// documentation) and are named after the header fields they are filled from.
// For a TCP or UDP packet the destination key is looked up in vips (and, with
// port zero, in vipaddrs) and the source key in reals. The packet an ICMP
// error quotes went the other way, so for it the roles swap: its source key
// is looked up in vips and its destination key in reals. The stat slot holds
// the counter index for the stats lookup.
const (
	dkeyOff = -24 // (daddr, dport, proto, family)
	skeyOff = -48 // (saddr, sport, proto, family)
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
	// at emits in with label naming its first instruction.
	at := func(label string, in ...asm.Instruction) {
		in[0] = in[0].WithSymbol(label)
		emit(in...)
	}

	// dispatchIP jumps on the ethertype in R3 to the IP parsers and falls
	// through otherwise.
	dispatchIP := func() {
		emit(
			asm.JEq.Imm(asm.R3, be16(ethPIPv4), "ipv4"),
			asm.JEq.Imm(asm.R3, be16(ethPIPv6), "ipv6"),
		)
	}
	// need jumps to short unless n bytes from the cursor are in the frame.
	// Clobbers R1.
	need := func(n int32) []asm.Instruction {
		return []asm.Instruction{
			asm.Mov.Reg(asm.R1, rHdr),
			asm.Add.Imm(asm.R1, n),
			asm.JGT.Reg(asm.R1, rEnd, "short"),
		}
	}
	// bump increments stats[idx] on this CPU and continues at next.
	// Per-CPU values need no atomic add: XDP runs with migration disabled.
	// Clobbers R0-R5.
	bump := func(idx int32, next string) []asm.Instruction {
		return []asm.Instruction{
			asm.StoreImm(asm.RFP, statOff, int64(idx), asm.Word),
			asm.LoadMapPtr(asm.R1, 0).WithReference(mapStats),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, statOff),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, next),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
			asm.Add.Imm(asm.R1, 1),
			asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
			asm.Ja.Label(next),
		}
	}
	// lookup jumps to label when the key on the stack at keyOff is in m.
	// Clobbers R0-R5.
	lookup := func(m string, keyOff int32, label string) []asm.Instruction {
		return []asm.Instruction{
			asm.LoadMapPtr(asm.R1, 0).WithReference(m),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, keyOff),
			asm.FnMapLookupElem.Call(),
			asm.JNE.Imm(asm.R0, 0, label),
		}
	}
	// jumpIn jumps to label when r holds one of values.
	jumpIn := func(r asm.Register, label string, values ...int32) []asm.Instruction {
		var in []asm.Instruction
		for _, v := range values {
			in = append(in, asm.JEq.Imm(r, v, label))
		}
		return in
	}
	// setProtoFamily writes proto (in R4) and family into both keys.
	setProtoFamily := func(family int64) []asm.Instruction {
		return []asm.Instruction{
			asm.StoreMem(asm.RFP, dkeyOff+keyProtoOff, asm.R4, asm.Byte),
			asm.StoreImm(asm.RFP, dkeyOff+keyFamilyOff, family, asm.Byte),
			asm.StoreMem(asm.RFP, skeyOff+keyProtoOff, asm.R4, asm.Byte),
			asm.StoreImm(asm.RFP, skeyOff+keyFamilyOff, family, asm.Byte),
		}
	}
	// storeAddrs4 and storeAddrs6 copy the addresses of the IP header at
	// off from the cursor into the keys; storePorts copies the ports at the
	// cursor. Clobber R3.
	storeAddrs4 := func(off int16) []asm.Instruction {
		return []asm.Instruction{
			asm.LoadMem(asm.R3, rHdr, off+16, asm.Word), // daddr
			asm.StoreMem(asm.RFP, dkeyOff, asm.R3, asm.Word),
			asm.LoadMem(asm.R3, rHdr, off+12, asm.Word), // saddr
			asm.StoreMem(asm.RFP, skeyOff, asm.R3, asm.Word),
		}
	}
	storeAddrs6 := func(off int16) []asm.Instruction {
		return []asm.Instruction{
			asm.LoadMem(asm.R3, rHdr, off+24, asm.DWord), // daddr
			asm.StoreMem(asm.RFP, dkeyOff, asm.R3, asm.DWord),
			asm.LoadMem(asm.R3, rHdr, off+32, asm.DWord),
			asm.StoreMem(asm.RFP, dkeyOff+8, asm.R3, asm.DWord),
			asm.LoadMem(asm.R3, rHdr, off+8, asm.DWord), // saddr
			asm.StoreMem(asm.RFP, skeyOff, asm.R3, asm.DWord),
			asm.LoadMem(asm.R3, rHdr, off+16, asm.DWord),
			asm.StoreMem(asm.RFP, skeyOff+8, asm.R3, asm.DWord),
		}
	}
	storePorts := func() []asm.Instruction {
		return []asm.Instruction{
			asm.LoadMem(asm.R3, rHdr, 0, asm.Half), // sport
			asm.StoreMem(asm.RFP, skeyOff+keyPortOff, asm.R3, asm.Half),
			asm.LoadMem(asm.R3, rHdr, 2, asm.Half), // dport
			asm.StoreMem(asm.RFP, dkeyOff+keyPortOff, asm.R3, asm.Half),
		}
	}

	// Prologue: load the packet bounds and zero both keys, so that their
	// unused address bytes and padding are zero as the Go side writes them.
	at(progName,
		asm.Mov.Reg(rCtx, asm.R1),
		asm.LoadMem(asm.R2, rCtx, xdpMDData, asm.Word),
		asm.LoadMem(rEnd, rCtx, xdpMDDataEnd, asm.Word),
		asm.Mov.Imm(asm.R3, 0), // StoreImm has no 64-bit form
		asm.StoreMem(asm.RFP, dkeyOff, asm.R3, asm.DWord),
		asm.StoreMem(asm.RFP, dkeyOff+8, asm.R3, asm.DWord),
		asm.StoreMem(asm.RFP, dkeyOff+16, asm.R3, asm.DWord),
		asm.StoreMem(asm.RFP, skeyOff, asm.R3, asm.DWord),
		asm.StoreMem(asm.RFP, skeyOff+8, asm.R3, asm.DWord),
		asm.StoreMem(asm.RFP, skeyOff+16, asm.R3, asm.DWord),
	)

	// Ethernet: rHdr is left at the end of the MAC header (the last
	// ethertype is at rHdr-2) as each tag is consumed.
	emit(asm.Mov.Reg(rHdr, asm.R2))
	emit(need(ethHdrLen)...)
	emit(
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
		at(label, need(vlanHdrLen)...)
		emit(
			asm.LoadMem(asm.R3, rHdr, 2, asm.Half),
			asm.Add.Imm(rHdr, vlanHdrLen),
		)
	}
	// After two tags only IP is acceptable; a third tag is passed.
	dispatchIP()
	emit(asm.Ja.Label("pass"))

	// IPv4. R2 is left holding the header length for the next header's
	// parser.
	at("ipv4", need(ipv4MinLen)...)
	emit(
		asm.LoadMem(asm.R2, rHdr, 0, asm.Byte), // version and IHL
		asm.Mov.Reg(asm.R3, asm.R2),
		asm.And.Imm(asm.R3, 0xf0),
		asm.JNE.Imm(asm.R3, 0x40, "short"),
		asm.And.Imm(asm.R2, 0x0f),
		asm.JLT.Imm(asm.R2, 5, "short"),
		asm.LSh.Imm(asm.R2, 2),                 // header length in bytes: 20..60
		asm.LoadMem(asm.R4, rHdr, 9, asm.Byte), // protocol
	)
	emit(storeAddrs4(0)...)
	emit(setProtoFamily(4)...)
	emit(
		asm.LoadMem(asm.R3, rHdr, 6, asm.Half), // flags and fragment offset
		asm.And.Imm(asm.R3, be16(ipv4FragMask)),
		asm.JNE.Imm(asm.R3, 0, "frag4"),
		asm.JEq.Imm(asm.R4, protoTCP, "ipv4_l4"),
		asm.JEq.Imm(asm.R4, protoUDP, "ipv4_l4"),
		asm.JEq.Imm(asm.R4, protoICMP, "icmp4"),
		asm.Ja.Label("pass"),
	)
	at("ipv4_l4",
		asm.Add.Reg(rHdr, asm.R2),
		asm.Ja.Label("l4"),
	)

	// IPv6: only a fixed header directly followed by TCP, UDP or ICMPv6 is
	// parsed; extension headers (fragments included) go to the kernel.
	at("ipv6", need(ipv6HdrLen)...)
	emit(
		asm.LoadMem(asm.R2, rHdr, 0, asm.Byte),
		asm.And.Imm(asm.R2, 0xf0),
		asm.JNE.Imm(asm.R2, 0x60, "short"),
		asm.LoadMem(asm.R4, rHdr, 6, asm.Byte), // next header
		asm.JEq.Imm(asm.R4, protoTCP, "ipv6_l4"),
		asm.JEq.Imm(asm.R4, protoUDP, "ipv6_l4"),
		asm.JEq.Imm(asm.R4, protoICMPv6, "icmp6"),
		asm.Ja.Label("pass"),
	)
	at("ipv6_l4", storeAddrs6(0)...)
	emit(setProtoFamily(6)...)
	emit(asm.Add.Imm(rHdr, ipv6HdrLen))

	// TCP or UDP: only the ports are needed.
	at("l4", need(4)...)
	emit(storePorts()...)
	emit(lookup(mapVIPs, dkeyOff, "steer")...)
	emit(lookup(mapReals, skeyOff, "steer")...)
	emit(asm.Ja.Label("pass"))

	// ICMP error (IPVS's ip_vs_in_icmp and ip_vs_out_icmp): the ICMP
	// header, then the IP header and at least 8 bytes of the packet it is
	// about (RFC 792; RFC 4443 quotes as much as fits). Only the type is
	// needed to pass any other ICMP message.
	at("icmp4", asm.Add.Reg(rHdr, asm.R2))
	emit(need(1)...)
	emit(asm.LoadMem(asm.R3, rHdr, 0, asm.Byte)) // type
	emit(jumpIn(asm.R3, "icmp4_err", icmpv4DestUnreach, icmpv4SourceQuench, icmpv4TimeExceeded, icmpv4ParamProblem)...)
	emit(asm.Ja.Label("pass"))
	at("icmp4_err", need(icmpHdrLen+ipv4MinLen)...)
	emit(
		asm.LoadMem(asm.R2, rHdr, icmpHdrLen, asm.Byte), // quoted version and IHL
		asm.Mov.Reg(asm.R3, asm.R2),
		asm.And.Imm(asm.R3, 0xf0),
		asm.JNE.Imm(asm.R3, 0x40, "short"),
		asm.And.Imm(asm.R2, 0x0f),
		asm.JLT.Imm(asm.R2, 5, "short"),
		asm.LSh.Imm(asm.R2, 2),
		asm.LoadMem(asm.R4, rHdr, icmpHdrLen+9, asm.Byte), // quoted protocol
		// A quoted non-first fragment carries no ports; a first one
		// (MF set, offset zero) does.
		asm.LoadMem(asm.R3, rHdr, icmpHdrLen+6, asm.Half),
		asm.And.Imm(asm.R3, be16(ipv4OffsetMask)),
		asm.JNE.Imm(asm.R3, 0, "pass"),
		asm.JEq.Imm(asm.R4, protoTCP, "icmp4_l4"),
		asm.JEq.Imm(asm.R4, protoUDP, "icmp4_l4"),
		asm.Ja.Label("pass"),
	)
	at("icmp4_l4", storeAddrs4(icmpHdrLen)...)
	emit(setProtoFamily(4)...)
	emit(
		asm.Add.Imm(rHdr, icmpHdrLen),
		asm.Add.Reg(rHdr, asm.R2),
		asm.Ja.Label("icmp_l4"),
	)

	// ICMPv6 error: as ICMP, with a fixed quoted header directly followed
	// by TCP or UDP. Neighbour discovery (types 133-137) and echo are never
	// error types, so they always reach the kernel.
	at("icmp6", asm.Add.Imm(rHdr, ipv6HdrLen))
	emit(need(1)...)
	emit(asm.LoadMem(asm.R3, rHdr, 0, asm.Byte)) // type
	emit(jumpIn(asm.R3, "icmp6_err", icmpv6DestUnreach, icmpv6PacketTooBig, icmpv6TimeExceeded, icmpv6ParamProblem)...)
	emit(asm.Ja.Label("pass"))
	at("icmp6_err", need(icmpHdrLen+ipv6HdrLen)...)
	emit(
		asm.LoadMem(asm.R2, rHdr, icmpHdrLen, asm.Byte), // quoted version
		asm.And.Imm(asm.R2, 0xf0),
		asm.JNE.Imm(asm.R2, 0x60, "short"),
		asm.LoadMem(asm.R4, rHdr, icmpHdrLen+6, asm.Byte), // quoted next header
		asm.JEq.Imm(asm.R4, protoTCP, "icmp6_l4"),
		asm.JEq.Imm(asm.R4, protoUDP, "icmp6_l4"),
		asm.Ja.Label("pass"),
	)
	at("icmp6_l4", storeAddrs6(icmpHdrLen)...)
	emit(setProtoFamily(6)...)
	emit(asm.Add.Imm(rHdr, icmpHdrLen+ipv6HdrLen))

	// The quoted ports. The quoted packet was sent, not received, so the
	// maps are looked up the other way round: its source may be a VIP (a
	// reply to a client), its destination a NAT real server.
	at("icmp_l4", need(4)...)
	emit(storePorts()...)
	emit(lookup(mapVIPs, skeyOff, "icmp_steer")...)
	emit(lookup(mapReals, dkeyOff, "icmp_steer")...)
	emit(asm.Ja.Label("pass"))
	at("icmp_steer", bump(statICMPSteered, "steer")...)

	// IPv4 fragment: the destination key still has port zero, which is how
	// vipaddrs is keyed.
	at("frag4", lookup(mapVIPAddrs, dkeyOff, "frag4_steer")...)
	emit(asm.Ja.Label("pass"))
	at("frag4_steer", bump(statFragments, "steer")...)

	// Steer: redirect to the socket of this RX queue, falling back to
	// XDP_PASS when the queue has none.
	at("steer",
		asm.LoadMapPtr(asm.R1, 0).WithReference(mapXSKs),
		asm.LoadMem(asm.R2, rCtx, xdpMDRxQueueIndex, asm.Word),
		asm.Mov.Imm(asm.R3, xdpPass),
		asm.FnRedirectMap.Call(),
		asm.Mov.Reg(rAction, asm.R0),
		asm.JEq.Imm(rAction, xdpRedirect, "redirected"),
	)
	emit(bump(statNoSocket, "out")...)
	at("redirected", bump(statRedirected, "out")...)

	at("pass", asm.Mov.Imm(rAction, xdpPass))
	emit(bump(statPassed, "out")...)

	at("short", asm.Mov.Imm(rAction, xdpPass))
	emit(bump(statParseErrors, "out")...)

	at("out",
		asm.Mov.Reg(asm.R0, rAction),
		asm.Return(),
	)
	return insns
}
