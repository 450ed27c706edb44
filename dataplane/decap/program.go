package decap

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Names of the program and its maps (bpftool shows them). Detach and Inspect
// recognise the program by its name.
const (
	progName       = "xvs_decap"
	mapVIPs        = "xvs_dc_vips"
	mapLocals      = "xvs_dc_locals"
	mapConfig      = "xvs_dc_config"
	mapStats       = "xvs_dc_stats"
	programLicense = "Dual MIT/GPL"
)

// Size limits of the address sets.
const (
	// MaxVIPs bounds the VIPs of a Decap or of a persistent program.
	MaxVIPs = 1024
	// MaxLocalAddrs bounds the local (outer destination) addresses.
	MaxLocalAddrs = 256
)

// Map element sizes. Addresses are keyed as 16 bytes, IPv4 in its
// IPv4-mapped IPv6 form (::ffff:a.b.c.d), which the program builds on its
// stack from the packet.
const (
	keySize   = 16
	valueSize = 4 // __u32, reserved, 0
	statSize  = 8 // __u64 counter
)

// Indexes of the per-CPU counters in the stats map.
const (
	statDecapsulated = iota // outer header stripped, inner packet passed
	statNotForUs            // tunnelled, but the outer or inner destination is not configured
	statMalformed           // tunnelled, but malformed or unsupported
	statPassed              // not tunnelled
	numStats
)

// Kernel ABI values the program uses.
const (
	xdpPass = 2

	// struct xdp_md field offsets.
	xdpMDData    = 0
	xdpMDDataEnd = 4

	ethHdrLen  = 14
	vlanHdrLen = 4
	maxL2Len   = ethHdrLen + 2*vlanHdrLen
	ipv4HdrLen = 20 // no options
	ipv6HdrLen = 40

	ethPIPv4   = 0x0800
	ethPIPv6   = 0x86dd
	ethP8021Q  = 0x8100
	ethP8021AD = 0x88a8

	protoIPIP = 4  // IPv4 inside
	protoIPv6 = 41 // IPv6 inside

	ipv4FragMask = 0x3fff // MF flag and fragment offset
)

// Stack layout. Slots are aligned to their size, as the verifier demands.
const (
	keyOff   = -16 // 16-byte map key
	statOff  = -20 // __u32 stats index
	hdrOff   = -24 // __u32 outer header length to strip
	etOff    = -26 // __be16 ethertype of the inner packet
	protoOff = -28 // __u8 tunnel protocol: 4 or 41
	cfgOff   = -32 // __u32 key 0 of the config map
	l2Off    = -56 // saved L2 header: 20 bytes (MACs, up to two tags)
)

// Register roles. R6-R9 survive helper calls; R1-R5 do not.
const (
	rCtx = asm.R6 // struct xdp_md *
	rL2  = asm.R7 // L2 header length: 14, 18 or 22
	rEnd = asm.R8 // data_end
	rHdr = asm.R9 // cursor: start of the header being parsed
)

// be16 returns the value a 16-bit load yields on this host for a packet field
// that holds v in network byte order, so the program compares without
// swapping bytes.
func be16(v uint16) int32 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return int32(binary.NativeEndian.Uint16(b[:]))
}

// addrKey returns a's key in the vips and locals maps.
func addrKey(a netip.Addr) [keySize]byte { return a.As16() }

// checkAddr refuses the addresses that cannot be a packet's destination.
func checkAddr(a netip.Addr) (netip.Addr, error) {
	if !a.IsValid() {
		return a, fmt.Errorf("no address")
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsMulticast() {
		return a, fmt.Errorf("%v cannot be a destination", a)
	}
	return a, nil
}

// addrMatcher emits code that jumps to label when the address of the given
// family (4 or 6) at rHdr+off belongs to a set, and falls through otherwise.
// The code may clobber R0-R5 and the key slot.
type addrMatcher interface {
	match(g *gen, family int, off int16, label string)
}

// anyAddr matches every address.
type anyAddr struct{}

func (anyAddr) match(g *gen, _ int, _ int16, label string) {
	// A conditional jump, though always taken: the verifier rejects
	// instructions its control-flow check cannot reach, such as those
	// following an unconditional one, and drops dead code itself.
	g.emit(
		asm.Mov.Imm(asm.R1, 0),
		asm.JEq.Imm(asm.R1, 0, label),
	)
}

// mapAddrs matches the addresses in a hash map keyed by addrKey. When gate
// names an array map, its element 0 switches the set on: zero matches every
// address.
type mapAddrs struct {
	name string
	gate string
}

// v4MappedWord is bytes 8-11 of an IPv4-mapped key (00 00 ff ff), as a
// 32-bit store writes them on this host.
var v4MappedWord = int64(int32(binary.NativeEndian.Uint32([]byte{0, 0, 0xff, 0xff})))

func (m mapAddrs) match(g *gen, family int, off int16, label string) {
	if m.gate != "" {
		g.emit(
			asm.StoreImm(asm.RFP, cfgOff, 0, asm.Word),
			asm.LoadMapPtr(asm.R1, 0).WithReference(m.gate),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, cfgOff),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, label), // cannot happen in an array
			asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
			asm.JEq.Imm(asm.R1, 0, label),
		)
	}
	if family == 4 {
		g.emit(
			asm.Mov.Imm(asm.R1, 0),
			asm.StoreMem(asm.RFP, keyOff, asm.R1, asm.DWord),
			asm.StoreImm(asm.RFP, keyOff+8, v4MappedWord, asm.Word),
			asm.LoadMem(asm.R1, rHdr, off, asm.Word),
			asm.StoreMem(asm.RFP, keyOff+12, asm.R1, asm.Word),
		)
	} else {
		g.emit(
			asm.LoadMem(asm.R1, rHdr, off, asm.DWord),
			asm.StoreMem(asm.RFP, keyOff, asm.R1, asm.DWord),
			asm.LoadMem(asm.R1, rHdr, off+8, asm.DWord),
			asm.StoreMem(asm.RFP, keyOff+8, asm.R1, asm.DWord),
		)
	}
	g.emit(
		asm.LoadMapPtr(asm.R1, 0).WithReference(m.name),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, keyOff),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, label),
	)
}

// constAddrs matches the addresses compiled into the instructions.
type constAddrs []netip.Addr

func (c constAddrs) match(g *gen, family int, off int16, label string) {
	var v4, v6 []netip.Addr
	for _, a := range c {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	switch {
	case family == 4 && len(v4) == 0, family == 6 && len(v6) == 0:
		// Never taken, but it keeps label's block reachable for the
		// verifier's control-flow check.
		g.emit(
			asm.Mov.Imm(asm.R1, 0),
			asm.JNE.Imm(asm.R1, 0, label),
		)
	case family == 4:
		g.emit(asm.LoadMem(asm.R1, rHdr, off, asm.Word))
		for _, a := range v4 {
			b := a.As4()
			// A 32-bit comparison: a 64-bit one would sign-extend the
			// constant.
			g.emit(asm.JEq.Imm32(asm.R1, int32(binary.NativeEndian.Uint32(b[:])), label))
		}
	default:
		g.emit(
			asm.LoadMem(asm.R1, rHdr, off, asm.DWord),
			asm.LoadMem(asm.R2, rHdr, off+8, asm.DWord),
		)
		for _, a := range v6 {
			b := a.As16()
			// (hi ^ HI) | (lo ^ LO) is zero only on a match: no
			// intermediate labels, so the code falls through cleanly.
			g.emit(
				asm.LoadImm(asm.R3, int64(binary.NativeEndian.Uint64(b[:8])), asm.DWord),
				asm.Xor.Reg(asm.R3, asm.R1),
				asm.LoadImm(asm.R4, int64(binary.NativeEndian.Uint64(b[8:])), asm.DWord),
				asm.Xor.Reg(asm.R4, asm.R2),
				asm.Or.Reg(asm.R3, asm.R4),
				asm.JEq.Imm(asm.R3, 0, label),
			)
		}
	}
}

// gen accumulates instructions. A label set with mark names the next
// instruction emitted.
type gen struct {
	insns   asm.Instructions
	pending string
}

func (g *gen) emit(in ...asm.Instruction) {
	for _, i := range in {
		if g.pending != "" {
			i = i.WithSymbol(g.pending)
			g.pending = ""
		}
		g.insns = append(g.insns, i)
	}
}

func (g *gen) mark(label string) {
	if g.pending != "" {
		panic("decap: two labels on one instruction: " + g.pending + ", " + label)
	}
	g.pending = label
}

// bump increments stats[idx] on this CPU and continues at next. Per-CPU
// values need no atomic add: XDP runs with migration disabled.
func (g *gen) bump(idx int32, next string) {
	g.emit(
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
	)
}

// program assembles the decapsulator. locals decides which outer
// destinations are this host's, vips which inner destinations are served.
// Every packet access is preceded by a bounds check against data_end on the
// same path; the verifier rejects the program otherwise.
func program(locals, vips addrMatcher) asm.Instructions {
	g := &gen{}

	// Prologue and Ethernet. rHdr ends at the end of the MAC header, rL2
	// holds its length, R3 the last ethertype.
	g.mark(progName)
	g.emit(
		asm.Mov.Reg(rCtx, asm.R1),
		asm.LoadMem(asm.R2, rCtx, xdpMDData, asm.Word),
		asm.LoadMem(rEnd, rCtx, xdpMDDataEnd, asm.Word),
		asm.Mov.Reg(rHdr, asm.R2),
		asm.Mov.Reg(asm.R1, asm.R2),
		asm.Add.Imm(asm.R1, ethHdrLen),
		asm.JGT.Reg(asm.R1, rEnd, "pass"),
		asm.LoadMem(asm.R3, rHdr, ethHdrLen-2, asm.Half),
		asm.Add.Imm(rHdr, ethHdrLen),
		asm.Mov.Imm(rL2, ethHdrLen),
	)
	dispatch := func() {
		g.emit(
			asm.JEq.Imm(asm.R3, be16(ethPIPv4), "outer4"),
			asm.JEq.Imm(asm.R3, be16(ethPIPv6), "outer6"),
		)
	}
	for i := range 2 {
		label := "vlan" + strconv.Itoa(i)
		dispatch()
		g.emit(
			asm.JEq.Imm(asm.R3, be16(ethP8021Q), label),
			asm.JEq.Imm(asm.R3, be16(ethP8021AD), label),
			asm.Ja.Label("pass"),
		)
		// A tag is TCI (2 bytes) then the encapsulated ethertype.
		g.mark(label)
		g.emit(
			asm.Mov.Reg(asm.R1, rHdr),
			asm.Add.Imm(asm.R1, vlanHdrLen),
			asm.JGT.Reg(asm.R1, rEnd, "pass"),
			asm.LoadMem(asm.R3, rHdr, 2, asm.Half),
			asm.Add.Imm(rHdr, vlanHdrLen),
			asm.Add.Imm(rL2, vlanHdrLen),
		)
	}
	dispatch()
	g.emit(asm.Ja.Label("pass"))

	// minInner jumps to malformed when the outer length in R3 (host order),
	// which counts outer bytes before the inner header, is too short for an
	// inner header of the protocol in R4.
	minInner := func(outer int32, ok string) {
		g.emit(
			asm.JLT.Imm(asm.R3, outer+ipv4HdrLen, "malformed"),
			asm.JNE.Imm(asm.R4, protoIPv6, ok),
			asm.JLT.Imm(asm.R3, outer+ipv6HdrLen, "malformed"),
		)
		g.mark(ok)
	}

	// Outer IPv4: IHL 5, not a fragment, correct checksum, length within
	// the frame.
	g.mark("outer4")
	g.emit(
		asm.Mov.Reg(asm.R1, rHdr),
		asm.Add.Imm(asm.R1, ipv4HdrLen),
		asm.JGT.Reg(asm.R1, rEnd, "pass"),
		asm.LoadMem(asm.R4, rHdr, 9, asm.Byte), // protocol
		asm.JEq.Imm(asm.R4, protoIPIP, "outer4_tunnel"),
		asm.JEq.Imm(asm.R4, protoIPv6, "outer4_tunnel"),
		asm.Ja.Label("pass"),
	)
	g.mark("outer4_tunnel")
	g.emit(
		asm.LoadMem(asm.R2, rHdr, 0, asm.Byte),
		asm.JNE.Imm(asm.R2, 0x45, "malformed"),
		asm.LoadMem(asm.R3, rHdr, 6, asm.Half),
		asm.And.Imm(asm.R3, be16(ipv4FragMask)),
		asm.JNE.Imm(asm.R3, 0, "malformed"),
		asm.Mov.Imm(asm.R1, 0),
	)
	for i := range int16(ipv4HdrLen / 2) {
		g.emit(
			asm.LoadMem(asm.R3, rHdr, 2*i, asm.Half),
			asm.Add.Reg(asm.R1, asm.R3),
		)
	}
	for range 2 { // fold the carries: ten halves need two rounds
		g.emit(
			asm.Mov.Reg(asm.R3, asm.R1),
			asm.RSh.Imm(asm.R3, 16),
			asm.And.Imm(asm.R1, 0xffff),
			asm.Add.Reg(asm.R1, asm.R3),
		)
	}
	g.emit(
		asm.JNE.Imm(asm.R1, 0xffff, "malformed"),
		asm.LoadMem(asm.R3, rHdr, 2, asm.Half), // total length
		asm.HostTo(asm.BE, asm.R3, asm.Half),
		// The verifier loses the range over a byte swap; the mask
		// restores it, so the sum below is a bounded pointer.
		asm.And.Imm(asm.R3, 0xffff),
		asm.Mov.Reg(asm.R1, rHdr),
		asm.Add.Reg(asm.R1, asm.R3),
		asm.JGT.Reg(asm.R1, rEnd, "malformed"),
	)
	minInner(ipv4HdrLen, "outer4_len_ok")
	// The protocol outlives the helper calls of the address match there.
	g.emit(asm.StoreMem(asm.RFP, protoOff, asm.R4, asm.Byte))
	locals.match(g, 4, 16, "outer4_local")
	g.emit(asm.Ja.Label("notforus"))
	g.mark("outer4_local")
	g.emit(
		asm.LoadMem(asm.R4, asm.RFP, protoOff, asm.Byte),
		asm.StoreImm(asm.RFP, hdrOff, ipv4HdrLen, asm.Word),
		asm.Add.Imm(rHdr, ipv4HdrLen),
		asm.JEq.Imm(asm.R4, protoIPIP, "inner4"),
		asm.Ja.Label("inner6"),
	)

	// Outer IPv6: the tunnel header must follow the fixed header directly.
	g.mark("outer6")
	g.emit(
		asm.Mov.Reg(asm.R1, rHdr),
		asm.Add.Imm(asm.R1, ipv6HdrLen),
		asm.JGT.Reg(asm.R1, rEnd, "pass"),
		asm.LoadMem(asm.R4, rHdr, 6, asm.Byte), // next header
		asm.JEq.Imm(asm.R4, protoIPIP, "outer6_tunnel"),
		asm.JEq.Imm(asm.R4, protoIPv6, "outer6_tunnel"),
		asm.Ja.Label("pass"),
	)
	g.mark("outer6_tunnel")
	g.emit(
		asm.LoadMem(asm.R2, rHdr, 0, asm.Byte),
		asm.And.Imm(asm.R2, 0xf0),
		asm.JNE.Imm(asm.R2, 0x60, "malformed"),
		asm.LoadMem(asm.R3, rHdr, 4, asm.Half), // payload length
		asm.HostTo(asm.BE, asm.R3, asm.Half),
		asm.And.Imm(asm.R3, 0xffff),
		asm.Mov.Reg(asm.R1, rHdr),
		asm.Add.Imm(asm.R1, ipv6HdrLen),
		asm.Add.Reg(asm.R1, asm.R3),
		asm.JGT.Reg(asm.R1, rEnd, "malformed"),
	)
	minInner(0, "outer6_len_ok")
	// The protocol outlives the helper calls of the address match there.
	g.emit(asm.StoreMem(asm.RFP, protoOff, asm.R4, asm.Byte))
	locals.match(g, 6, 24, "outer6_local")
	g.emit(asm.Ja.Label("notforus"))
	g.mark("outer6_local")
	g.emit(
		asm.LoadMem(asm.R4, asm.RFP, protoOff, asm.Byte),
		asm.StoreImm(asm.RFP, hdrOff, ipv6HdrLen, asm.Word),
		asm.Add.Imm(rHdr, ipv6HdrLen),
		asm.JEq.Imm(asm.R4, protoIPIP, "inner4"),
		asm.Ja.Label("inner6"),
	)

	// Inner headers: complete, of the announced version, to a VIP.
	g.mark("inner4")
	g.emit(
		asm.Mov.Reg(asm.R1, rHdr),
		asm.Add.Imm(asm.R1, ipv4HdrLen),
		asm.JGT.Reg(asm.R1, rEnd, "malformed"),
		asm.LoadMem(asm.R2, rHdr, 0, asm.Byte),
		asm.And.Imm(asm.R2, 0xf0),
		asm.JNE.Imm(asm.R2, 0x40, "malformed"),
	)
	vips.match(g, 4, 16, "inner4_vip")
	g.emit(asm.Ja.Label("notforus"))
	g.mark("inner4_vip")
	g.emit(
		asm.StoreImm(asm.RFP, etOff, int64(be16(ethPIPv4)), asm.Half),
		asm.Ja.Label("decap"),
	)

	g.mark("inner6")
	g.emit(
		asm.Mov.Reg(asm.R1, rHdr),
		asm.Add.Imm(asm.R1, ipv6HdrLen),
		asm.JGT.Reg(asm.R1, rEnd, "malformed"),
		asm.LoadMem(asm.R2, rHdr, 0, asm.Byte),
		asm.And.Imm(asm.R2, 0xf0),
		asm.JNE.Imm(asm.R2, 0x60, "malformed"),
	)
	vips.match(g, 6, 24, "inner6_vip")
	g.emit(asm.Ja.Label("notforus"))
	g.mark("inner6_vip")
	g.emit(asm.StoreImm(asm.RFP, etOff, int64(be16(ethPIPv6)), asm.Half))

	// Decapsulate: save the L2 header, drop the outer header, write the L2
	// header back in front of the inner one. Any frame that got here holds
	// at least 14 + 20 + 20 bytes, so the 22-byte checks never fail; the
	// verifier needs them all the same.
	g.mark("decap")
	g.emit(
		asm.LoadMem(asm.R2, rCtx, xdpMDData, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R2),
		asm.Add.Imm(asm.R1, maxL2Len),
		asm.JGT.Reg(asm.R1, rEnd, "malformed"),
		asm.LoadMem(asm.R3, asm.R2, 0, asm.DWord),
		asm.StoreMem(asm.RFP, l2Off, asm.R3, asm.DWord),
		asm.LoadMem(asm.R3, asm.R2, 8, asm.Word),
		asm.StoreMem(asm.RFP, l2Off+8, asm.R3, asm.Word),
		asm.LoadMem(asm.R3, asm.R2, 12, asm.Word),
		asm.StoreMem(asm.RFP, l2Off+12, asm.R3, asm.Word),
		asm.LoadMem(asm.R3, asm.R2, 16, asm.Word),
		asm.StoreMem(asm.RFP, l2Off+16, asm.R3, asm.Word),
		asm.Mov.Reg(asm.R1, rCtx),
		asm.LoadMem(asm.R2, asm.RFP, hdrOff, asm.Word),
		asm.FnXdpAdjustHead.Call(),
		// On failure the frame is unchanged.
		asm.JNE.Imm(asm.R0, 0, "malformed"),
		// The helper invalidated every packet pointer.
		asm.LoadMem(asm.R2, rCtx, xdpMDData, asm.Word),
		asm.LoadMem(rEnd, rCtx, xdpMDDataEnd, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R2),
		asm.Add.Imm(asm.R1, maxL2Len),
		asm.JGT.Reg(asm.R1, rEnd, "malformed"),
		asm.LoadMem(asm.R3, asm.RFP, l2Off, asm.DWord),
		asm.StoreMem(asm.R2, 0, asm.R3, asm.DWord),
		asm.LoadMem(asm.R3, asm.RFP, l2Off+8, asm.Word),
		asm.StoreMem(asm.R2, 8, asm.R3, asm.Word),
		asm.LoadMem(asm.R3, asm.RFP, etOff, asm.Half),
		asm.JEq.Imm(rL2, ethHdrLen, "et0"),
		asm.LoadMem(asm.R1, asm.RFP, l2Off+12, asm.Word),
		asm.StoreMem(asm.R2, 12, asm.R1, asm.Word),
		asm.JEq.Imm(rL2, ethHdrLen+vlanHdrLen, "et1"),
		asm.LoadMem(asm.R1, asm.RFP, l2Off+16, asm.Word),
		asm.StoreMem(asm.R2, 16, asm.R1, asm.Word),
		asm.StoreMem(asm.R2, maxL2Len-2, asm.R3, asm.Half),
		asm.Ja.Label("decapsulated"),
	)
	g.mark("et1")
	g.emit(
		asm.StoreMem(asm.R2, ethHdrLen+vlanHdrLen-2, asm.R3, asm.Half),
		asm.Ja.Label("decapsulated"),
	)
	g.mark("et0")
	g.emit(asm.StoreMem(asm.R2, ethHdrLen-2, asm.R3, asm.Half))

	g.mark("decapsulated")
	g.bump(statDecapsulated, "out")
	g.mark("notforus")
	g.bump(statNotForUs, "out")
	g.mark("malformed")
	g.bump(statMalformed, "out")
	g.mark("pass")
	g.bump(statPassed, "out")

	g.mark("out")
	g.emit(
		asm.Mov.Imm(asm.R0, xdpPass),
		asm.Return(),
	)
	return g.insns
}

// statsMapSpec is the per-CPU counter array both variants carry.
func statsMapSpec() *ebpf.MapSpec {
	return &ebpf.MapSpec{
		Name:       mapStats,
		Type:       ebpf.PerCPUArray,
		KeySize:    4,
		ValueSize:  statSize,
		MaxEntries: numStats,
	}
}

func programSpec(insns asm.Instructions) *ebpf.ProgramSpec {
	return &ebpf.ProgramSpec{
		Name:         progName,
		Type:         ebpf.XDP,
		AttachType:   ebpf.AttachXDP,
		License:      programLicense,
		Instructions: insns,
	}
}

// mapCollectionSpec describes the variant whose address sets live in maps.
func mapCollectionSpec() *ebpf.CollectionSpec {
	hash := func(name string, n uint32) *ebpf.MapSpec {
		return &ebpf.MapSpec{Name: name, Type: ebpf.Hash, KeySize: keySize, ValueSize: valueSize, MaxEntries: n}
	}
	return &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			mapVIPs:   hash(mapVIPs, MaxVIPs),
			mapLocals: hash(mapLocals, MaxLocalAddrs),
			mapConfig: {Name: mapConfig, Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1},
			mapStats:  statsMapSpec(),
		},
		Programs: map[string]*ebpf.ProgramSpec{
			progName: programSpec(program(mapAddrs{name: mapLocals, gate: mapConfig}, mapAddrs{name: mapVIPs})),
		},
	}
}

// constCollectionSpec describes the variant with the address sets compiled
// in; no local addresses means any outer destination.
func constCollectionSpec(vips, locals []netip.Addr) *ebpf.CollectionSpec {
	var lm addrMatcher = anyAddr{}
	if len(locals) > 0 {
		lm = constAddrs(locals)
	}
	return &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{mapStats: statsMapSpec()},
		Programs: map[string]*ebpf.ProgramSpec{
			progName: programSpec(program(lm, constAddrs(vips))),
		},
	}
}
