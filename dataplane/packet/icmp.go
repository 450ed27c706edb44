package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Sentinel errors of the ICMP functions.
var (
	// ErrNotICMPError: the frame is not an ICMP or ICMPv6 error message of
	// a type that quotes a packet (destination unreachable, packet too
	// big, time exceeded, parameter problem, source quench).
	ErrNotICMPError = errors.New("packet: not an ICMP error message")
	// ErrBadChecksum: the ICMP message's checksum does not verify.
	ErrBadChecksum = errors.New("packet: bad checksum")
	// ErrNoICMP: no ICMP error may be sent about the packet (RFC 1122
	// 3.2.2, RFC 4443 2.4): it is itself an ICMP error, or its source
	// cannot be answered (unspecified, multicast, broadcast, loopback), or
	// it was sent to a multicast or broadcast IPv4 address.
	ErrNoICMP = errors.New("packet: no ICMP error may be sent about this packet")
	// ErrShortBuffer: the output buffer cannot hold the message.
	ErrShortBuffer = errors.New("packet: output buffer too short")
	// ErrBadMTU: an MTU outside what the message can report (68 to 65535
	// for IPv4, at least 1280 for IPv6).
	ErrBadMTU = errors.New("packet: MTU out of range")
)

// ICMP and ICMPv6 error types and the codes the data path uses.
const (
	ICMPv4DestUnreachable = 3
	ICMPv4SourceQuench    = 4 // deprecated (RFC 6633), still relayed by IPVS
	ICMPv4TimeExceeded    = 11
	ICMPv4ParamProblem    = 12
	ICMPv4CodeFragNeeded  = 4 // with ICMPv4DestUnreachable

	ICMPv6DestUnreachable = 1
	ICMPv6PacketTooBig    = 2
	ICMPv6TimeExceeded    = 3
	ICMPv6ParamProblem    = 4
)

// Sizes and defaults of the ICMP messages built here.
const (
	// ipv6MinMTU bounds an ICMPv6 error packet (RFC 4443 2.4(c)).
	ipv6MinMTU = 1280
	ipv4MinMTU = 68
	// icmpTTL is the TTL or hop limit of generated messages, Linux's
	// default for both families.
	icmpTTL = 64
	// tosInternetControl is IP precedence 6, which Linux gives ICMP errors.
	tosInternetControl = 0xc0
)

// BuildFragNeeded builds into out a complete Ethernet frame carrying an
// ICMP "fragmentation needed and DF set" (type 3 code 4, RFC 792 and RFC
// 1191) or, for IPv6, an ICMPv6 "packet too big" (type 2, RFC 4443) about
// orig, the frame m describes (as Parser.Decode filled it), reporting mtu as
// the next-hop MTU. It returns the frame's length: the message is out[:n].
//
// The frame goes back the way orig came: MACs swapped, the same VLAN tags,
// IP source from (the VIP, which is what IPVS's icmp_send uses for a packet
// addressed to a local address) and destination orig's source. The message
// quotes orig's IP header and the first 8 bytes of its payload for IPv4
// (RFC 792), and as much of orig as keeps the IPv6 packet within 1280 bytes
// for IPv6 (RFC 4443 2.4(c)), less if out is shorter. The IPv4 header has
// DF set and ID 0 (RFC 6864 atomic datagram: at most 96 bytes, nothing to
// fragment), TTL 64 and precedence "internet control", as Linux does; the
// IPv6 header hop limit 64. Every checksum is computed in full.
//
// out must not overlap orig. On error nothing is written: ErrNoICMP when
// RFC 1122 or RFC 4443 forbids the message, ErrBadMTU for an mtu the message
// cannot carry (below the family's minimum MTU, or above 65535 for IPv4),
// ErrShortBuffer when out cannot hold the headers and the least quote,
// ErrAddressFamily when from is not of orig's family, ErrMalformed when m
// does not describe orig.
func BuildFragNeeded(out, orig []byte, m *Meta, from netip.Addr, mtu int) (int, error) {
	if !from.IsValid() || from.Is4() == m.IPv6 {
		return 0, ErrAddressFamily
	}
	if !metaFits(orig, 0, m) {
		return 0, ErrMalformed
	}
	if m.IPv6 && (mtu < ipv6MinMTU || uint64(mtu) > 0xffffffff) || !m.IPv6 && (mtu < ipv4MinMTU || mtu > 0xffff) {
		return 0, ErrBadMTU
	}
	if !mayAnswer(orig, m) {
		return 0, ErrNoICMP
	}
	l3 := m.L3Off
	ipLen := m.Length - l3
	var hdrs, quote int
	if m.IPv6 {
		hdrs = l3 + IPv6HeaderLen + ICMPHeaderLen
		quote = min(ipLen, ipv6MinMTU-IPv6HeaderLen-ICMPHeaderLen, len(out)-hdrs)
		if quote < min(ipLen, IPv6HeaderLen+8) {
			return 0, ErrShortBuffer
		}
	} else {
		hdrs = l3 + IPv4MinHeaderLen + ICMPHeaderLen
		quote = min(ipLen, m.L4Off-l3+8)
		if len(out) < hdrs+quote {
			return 0, ErrShortBuffer
		}
	}
	n := hdrs + quote

	copy(out[:l3], orig[:l3])
	copy(out[0:6], orig[6:12])
	copy(out[6:12], orig[0:6])
	copy(out[hdrs:n], orig[l3:l3+quote])
	icmp := out[hdrs-ICMPHeaderLen : n]
	if m.IPv6 {
		ip := IPv6(out[l3:])
		binary.BigEndian.PutUint32(ip[0:4], 6<<28)
		ip.SetPayloadLength(uint16(len(icmp)))
		ip.SetNextHeader(ProtoICMPv6)
		ip.SetHopLimit(icmpTTL)
		ip.SetSourceAddress(from)
		ip.SetDestinationAddress(m.Src)
		icmp[0], icmp[1] = ICMPv6PacketTooBig, 0
		binary.BigEndian.PutUint16(icmp[2:4], 0)
		binary.BigEndian.PutUint32(icmp[4:8], uint32(mtu))
		sum := PseudoHeaderChecksum(ProtoICMPv6, from, m.Src, uint32(len(icmp)))
		binary.BigEndian.PutUint16(icmp[2:4], ^Fold(Checksum(icmp, sum)))
		return n, nil
	}
	ip := IPv4(out[l3:])
	ip[0] = 4<<4 | IPv4MinHeaderLen/4
	ip[1] = IPv4(orig[l3:]).TOS()&0x1e | tosInternetControl
	ip.SetTotalLength(uint16(IPv4MinHeaderLen + len(icmp)))
	binary.BigEndian.PutUint32(ip[4:8], 0x4000) // ID 0, DF
	ip.SetTTL(icmpTTL)
	ip[9] = ProtoICMP
	ip.SetSourceAddress(from)
	ip.SetDestinationAddress(m.Src)
	ip.SetChecksum(0)
	ip.SetChecksum(^Fold(Checksum(ip[:IPv4MinHeaderLen], 0)))
	icmp[0], icmp[1] = ICMPv4DestUnreachable, ICMPv4CodeFragNeeded
	binary.BigEndian.PutUint32(icmp[2:6], 0)
	binary.BigEndian.PutUint16(icmp[6:8], uint16(mtu))
	binary.BigEndian.PutUint16(icmp[2:4], ^Fold(Checksum(icmp, 0)))
	return n, nil
}

// mayAnswer applies the rules of RFC 1122 3.2.2 and RFC 4443 2.4(e) that
// bear on a packet a director drops for its size.
func mayAnswer(orig []byte, m *Meta) bool {
	src := m.Src
	if !src.IsValid() || src.IsUnspecified() || src.IsMulticast() || src.IsLoopback() {
		return false
	}
	if !m.IPv6 {
		if src == netip.AddrFrom4([4]byte{255, 255, 255, 255}) ||
			m.Dst.IsMulticast() || m.Dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			return false
		}
	}
	if m.Proto != ProtoICMP && m.Proto != ProtoICMPv6 {
		return true
	}
	if m.L4Off >= m.Length {
		return false
	}
	typ := orig[m.L4Off]
	if m.IPv6 {
		// Types below 128 are errors; a redirect is never answered either.
		return typ >= 128 && typ != 137
	}
	switch typ {
	case 0, 8, 9, 10, 13, 14, 15, 16, 17, 18: // query and informational messages
		return true
	}
	return false // errors, and types this side of RFC 792 does not know
}

// Embedded describes the packet quoted in an ICMP or ICMPv6 error message:
// a packet the director (or a host behind it) sent, which travelled the
// other way to the error. Its addresses and ports are those the packet
// carried, so the connection it belongs to is found with the reverse of
// the key a packet of the error's direction would use.
type Embedded struct {
	IPv6     bool       // the quoted packet is IPv6 (as is the error)
	Proto    uint8      // its IP protocol
	Src, Dst netip.Addr // its addresses
	SrcPort  uint16     // its TCP/UDP ports; the identifier of a quoted echo
	DstPort  uint16
	Type     uint8  // the error message's type
	Code     uint8  // the error message's code
	MTU      uint32 // the next-hop MTU of "fragmentation needed" or "packet too big"; else 0
	L3Off    int    // offset in the frame of the quoted IP header
	L4Off    int    // offset of the quoted L4 header (it may be cut short)
	End      int    // end of the quote: the end of the error message
}

// ParseICMPError parses the ICMP or ICMPv6 error message in frame, which m
// describes as Parser.Decode filled it (Proto ProtoICMP or ProtoICMPv6; the
// decoder accepts error messages and leaves the quote to this function),
// and returns the quoted packet, so that the data path can find the
// connection the error is about (IPVS's ip_vs_in_icmp and ip_vs_out_icmp).
//
// It accepts destination unreachable (with fragmentation needed), source
// quench, time exceeded and parameter problem, and ICMPv6's destination
// unreachable, packet too big, time exceeded and parameter problem; any
// other message is ErrNotICMPError. It verifies the message's checksum
// (ErrBadChecksum), as IPVS does before translating an error. The quote
// must hold the whole quoted IP header and, for TCP and UDP, the ports
// (ErrTruncated); a quoted non-first IPv4 fragment, which carries no ports,
// is ErrFragment; quoted IPv6 extension headers are ErrUnsupported, as in
// Decode. Ports are filled in for TCP and UDP, and the identifier for a
// quoted echo request or reply.
//
// An error about a tunnelled packet quotes its outer header (Proto
// ProtoIPIP or ProtoIPv6): Embedded.Inner parses the packet inside.
func ParseICMPError(frame []byte, m *Meta) (Embedded, error) {
	if m.Proto != ProtoICMP && m.Proto != ProtoICMPv6 || m.IPv6 != (m.Proto == ProtoICMPv6) {
		return Embedded{}, ErrNotICMPError
	}
	if !metaFits(frame, 0, m) {
		return Embedded{}, ErrMalformed
	}
	if m.Length-m.L4Off < ICMPHeaderLen {
		return Embedded{}, ErrTruncated
	}
	icmp := frame[m.L4Off:m.Length]
	typ, code := icmp[0], icmp[1]
	var mtu uint32
	if m.IPv6 {
		switch typ {
		case ICMPv6PacketTooBig:
			mtu = binary.BigEndian.Uint32(icmp[4:8])
		case ICMPv6DestUnreachable, ICMPv6TimeExceeded, ICMPv6ParamProblem:
		default:
			return Embedded{}, ErrNotICMPError
		}
		sum := PseudoHeaderChecksum(ProtoICMPv6, m.Src, m.Dst, uint32(len(icmp)))
		if Fold(Checksum(icmp, sum)) != 0xffff {
			return Embedded{}, ErrBadChecksum
		}
	} else {
		switch typ {
		case ICMPv4DestUnreachable:
			if code == ICMPv4CodeFragNeeded {
				mtu = uint32(binary.BigEndian.Uint16(icmp[6:8]))
			}
		case ICMPv4SourceQuench, ICMPv4TimeExceeded, ICMPv4ParamProblem:
		default:
			return Embedded{}, ErrNotICMPError
		}
		if Fold(Checksum(icmp, 0)) != 0xffff {
			return Embedded{}, ErrBadChecksum
		}
	}
	e, err := parseQuote(frame, m.L4Off+ICMPHeaderLen, m.Length, m.IPv6)
	if err != nil {
		return Embedded{}, err
	}
	e.Type, e.Code, e.MTU = typ, code, mtu
	return e, nil
}

// Inner parses the packet inside a quoted IPIP packet (Proto ProtoIPIP or
// ProtoIPv6): what an error about a packet the director tunnelled (LVS-TUN)
// is really about. Routers that quote only 8 bytes after the outer header
// (RFC 792) leave too little of it: that is ErrTruncated. Type, Code and
// MTU are e's. Any other quoted protocol is ErrUnsupported.
func (e *Embedded) Inner(frame []byte) (Embedded, error) {
	if e.Proto != ProtoIPIP && e.Proto != ProtoIPv6 {
		return Embedded{}, ErrUnsupported
	}
	if e.L4Off < 0 || e.L4Off > e.End || e.End > len(frame) {
		return Embedded{}, ErrMalformed
	}
	in, err := parseQuote(frame, e.L4Off, e.End, e.Proto == ProtoIPv6)
	if err != nil {
		return Embedded{}, err
	}
	in.Type, in.Code, in.MTU = e.Type, e.Code, e.MTU
	return in, nil
}

// parseQuote parses the quoted packet frame[off:end] of family v6.
func parseQuote(frame []byte, off, end int, v6 bool) (Embedded, error) {
	e := Embedded{IPv6: v6, L3Off: off, End: end}
	q := frame[off:end]
	if v6 {
		if len(q) < IPv6HeaderLen {
			return Embedded{}, ErrTruncated
		}
		ip := IPv6(q)
		if ip.Version() != 6 {
			return Embedded{}, ErrMalformed
		}
		switch ip.NextHeader() {
		case ipv6HopByHop, ipv6Routing, ipv6DestOpts, ipv6Fragment:
			return Embedded{}, ErrUnsupported
		}
		e.Proto, e.Src, e.Dst = ip.NextHeader(), ip.SourceAddress(), ip.DestinationAddress()
		e.L4Off = off + IPv6HeaderLen
	} else {
		if len(q) < IPv4MinHeaderLen {
			return Embedded{}, ErrTruncated
		}
		ip := IPv4(q)
		if ip.Version() != 4 || ip.HeaderLength() < IPv4MinHeaderLen {
			return Embedded{}, ErrMalformed
		}
		if ip.HeaderLength() > len(q) {
			return Embedded{}, ErrTruncated
		}
		if ip.FragmentOffset() != 0 {
			return Embedded{}, ErrFragment
		}
		e.Proto, e.Src, e.Dst = ip.Protocol(), ip.SourceAddress(), ip.DestinationAddress()
		e.L4Off = off + ip.HeaderLength()
	}
	l4 := frame[e.L4Off:end]
	switch e.Proto {
	case ProtoTCP, ProtoUDP:
		if len(l4) < 4 {
			return Embedded{}, ErrTruncated
		}
		e.SrcPort, e.DstPort = binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4])
	case ProtoICMP, ProtoICMPv6:
		if len(l4) >= ICMPHeaderLen && isEcho(l4[0], v6) {
			id := binary.BigEndian.Uint16(l4[4:6])
			e.SrcPort, e.DstPort = id, id
		}
	}
	return e, nil
}

func isEcho(typ uint8, v6 bool) bool {
	if v6 {
		return typ == 128 || typ == 129
	}
	return typ == 0 || typ == 8
}

// ICMPRewrite says what TranslateICMPError changes. A zero (invalid)
// address or AddrPort leaves its field as it is.
type ICMPRewrite struct {
	// OuterSrc and OuterDst replace the error message's IP addresses.
	OuterSrc, OuterDst netip.Addr
	// EmbSrc and EmbDst replace the quoted packet's source and destination
	// address and port. The port is written only when the quoted packet is
	// TCP or UDP.
	EmbSrc, EmbDst netip.AddrPort
}

// TranslateICMPError rewrites in place an ICMP error that ParseICMPError
// parsed into emb, for a connection the director translates (NAT or
// FullNAT), as IPVS's ip_vs_nat_icmp and ip_vs_nat_icmp_v6 do. For an error
// from the real server's side about a packet of the client's, IPVS sets
// OuterSrc to the VIP and EmbDst to VIP:vport; for an error from the
// client's side about a reply, OuterDst to the RIP and EmbSrc to RIP:rport.
// FullNAT changes both addresses of each header.
//
// Checksums: the outer IPv4 header's incrementally; the quoted IPv4
// header's in full (IPVS's ip_send_check: the quote must verify wherever
// it ends up); the ICMP message's in full over the whole message, with the
// pseudo-header for ICMPv6 (the message verified when parsed, so nothing
// is laundered). IPVS leaves the quoted TCP/UDP checksum as it was; here it
// is updated incrementally when the quote reaches it (always for UDP, for
// TCP when 18 bytes of the header are quoted), so that the quoted packet
// reads exactly as its sender sent it before the director translated it.
// A zero UDP checksum stays zero. A quoted partial checksum (the sender
// left it to its NIC, and a router quoted the packet as it forwarded it)
// stays partial: it takes the new addresses' pseudo-header sum. A quoted
// ICMPv6 echo's checksum, which covers the addresses, is updated too.
//
// On success m's and emb's addresses and ports follow the rewrite. On
// error nothing changes: ErrAddressFamily when an address is not of the
// message's family, ErrMalformed when m or emb does not describe frame.
func TranslateICMPError(frame []byte, m *Meta, emb *Embedded, r ICMPRewrite) error {
	if m.Proto != ProtoICMP && m.Proto != ProtoICMPv6 || m.IPv6 != (m.Proto == ProtoICMPv6) {
		return ErrNotICMPError
	}
	ipHdr := IPv4MinHeaderLen
	if m.IPv6 {
		ipHdr = IPv6HeaderLen
	}
	if !metaFits(frame, 0, m) || emb.IPv6 != m.IPv6 || emb.L3Off != m.L4Off+ICMPHeaderLen ||
		emb.End != m.Length || emb.L4Off < emb.L3Off+ipHdr || emb.L4Off > emb.End {
		return ErrMalformed
	}
	for _, a := range [...]netip.Addr{r.OuterSrc, r.OuterDst, r.EmbSrc.Addr(), r.EmbDst.Addr()} {
		if a.IsValid() && a.Is4() == m.IPv6 {
			return ErrAddressFamily
		}
	}
	if !emb.IPv6 {
		if hl := IPv4(frame[emb.L3Off:]).HeaderLength(); hl < IPv4MinHeaderLen || emb.L3Off+hl != emb.L4Off {
			return ErrMalformed
		}
	}
	ports := emb.Proto == ProtoTCP || emb.Proto == ProtoUDP
	if ports && emb.L4Off+4 > emb.End {
		return ErrMalformed
	}

	// The error message's own header.
	outer := frame[m.L3Off:]
	if r.OuterSrc.IsValid() {
		setAddr(outer, m.IPv6, false, r.OuterSrc, !m.IPv6)
		m.Src = r.OuterSrc
	}
	if r.OuterDst.IsValid() {
		setAddr(outer, m.IPv6, true, r.OuterDst, !m.IPv6)
		m.Dst = r.OuterDst
	}

	// The quoted packet: addresses, then ports, gathering what they add
	// to the quoted L4 checksum. A quote of a packet its sender left to
	// the NIC to checksum (a router quotes what it forwarded) holds only
	// the pseudo-header sum: that follows the addresses alone, forwards.
	q := frame[emb.L3Off:emb.End]
	partial := quotedPartial(frame, emb)
	var delta uint32
	if a := r.EmbSrc.Addr(); a.IsValid() {
		delta += setAddr(q, emb.IPv6, false, a, false)
		emb.Src = a
	}
	if a := r.EmbDst.Addr(); a.IsValid() {
		delta += setAddr(q, emb.IPv6, true, a, false)
		emb.Dst = a
	}
	if !emb.IPv6 && delta != 0 {
		IPv4(q).SetChecksum(IPv4(q).CalculateChecksum())
	}
	l4 := frame[emb.L4Off:emb.End]
	addrDelta := delta
	if ports {
		if r.EmbSrc.IsValid() {
			delta += setPort(l4[0:2], r.EmbSrc.Port())
			emb.SrcPort = r.EmbSrc.Port()
		}
		if r.EmbDst.IsValid() {
			delta += setPort(l4[2:4], r.EmbDst.Port())
			emb.DstPort = r.EmbDst.Port()
		}
	}
	if partial {
		off := tcpChecksumOff
		if emb.Proto == ProtoUDP {
			off = udpChecksumOff
		}
		ck := l4[off:]
		binary.BigEndian.PutUint16(ck, Fold(uint32(binary.BigEndian.Uint16(ck))+uint32(Fold(addrDelta))))
	} else if delta != 0 {
		switch {
		case emb.Proto == ProtoTCP && len(l4) >= tcpChecksumOff+2:
			ck := l4[tcpChecksumOff:]
			binary.BigEndian.PutUint16(ck, applyDelta(binary.BigEndian.Uint16(ck), delta))
		case emb.Proto == ProtoUDP && len(l4) >= udpChecksumOff+2:
			ck := l4[udpChecksumOff:]
			if c := binary.BigEndian.Uint16(ck); c != 0 {
				if c = applyDelta(c, delta); c == 0 {
					c = 0xffff
				}
				binary.BigEndian.PutUint16(ck, c)
			}
		case emb.Proto == ProtoICMPv6 && emb.IPv6 && len(l4) >= 4:
			// Only the pseudo-header's addresses changed: the echo
			// identifier is not a port here.
			ck := l4[2:]
			binary.BigEndian.PutUint16(ck, applyDelta(binary.BigEndian.Uint16(ck), delta))
		}
	}

	// The ICMP checksum, in full.
	icmp := frame[m.L4Off:m.Length]
	icmp[2], icmp[3] = 0, 0
	var sum uint32
	if m.IPv6 {
		sum = PseudoHeaderChecksum(ProtoICMPv6, m.Src, m.Dst, uint32(len(icmp)))
	}
	binary.BigEndian.PutUint16(icmp[2:4], ^Fold(Checksum(icmp, sum)))
	return nil
}

// quotedPartial reports whether the TCP or UDP packet quoted in an ICMP
// error carries a partial checksum (see IsPartialChecksum), judged against
// the quoted header's own addresses and the length its IP header states.
func quotedPartial(frame []byte, emb *Embedded) bool {
	q, l4 := frame[emb.L3Off:emb.End], frame[emb.L4Off:emb.End]
	var n, off int
	if emb.IPv6 {
		n = int(IPv6(q).PayloadLength())
	} else {
		n = int(IPv4(q).TotalLength()) - IPv4(q).HeaderLength()
	}
	switch emb.Proto {
	case ProtoTCP:
		off = tcpChecksumOff
	case ProtoUDP:
		off = udpChecksumOff
		if len(l4) >= UDPHeaderLen {
			n = int(UDP(l4).Length())
		}
	default:
		return false
	}
	if len(l4) < off+2 || n <= 0 {
		return false
	}
	csum := binary.BigEndian.Uint16(l4[off:])
	if csum == 0 && emb.Proto == ProtoUDP {
		return false
	}
	return samePartial(csum, pseudoSum(frame, emb.L3Off, emb.IPv6, emb.Proto, n))
}

// setAddr writes a into the IP header ip (the source, or the destination
// when dst), updates the IPv4 header checksum incrementally when fixV4, and
// returns what the change adds to a checksum covering the address (a sum
// of ~old + new words), 0 when a was already there.
func setAddr(ip []byte, v6, dst bool, a netip.Addr, fixV4 bool) uint32 {
	if v6 {
		off := ipv6SrcOff
		if dst {
			off = ipv6DstOff
		}
		a16 := a.As16()
		old := ip[off : off+16]
		if [16]byte(old) == a16 {
			return 0
		}
		d := replaceDelta(old, a16[:])
		copy(old, a16[:])
		return d
	}
	off := ipv4SrcOff
	if dst {
		off = ipv4DstOff
	}
	a4 := a.As4()
	old := ip[off : off+4]
	if [4]byte(old) == a4 {
		return 0
	}
	d := replaceDelta(old, a4[:])
	copy(old, a4[:])
	if fixV4 {
		ck := ip[ipv4ChecksumOff:]
		binary.BigEndian.PutUint16(ck, applyDelta(binary.BigEndian.Uint16(ck), d))
	}
	return d
}

// setPort writes port into b[0:2] and returns what the change adds to a
// checksum covering it, 0 when port was already there.
func setPort(b []byte, port uint16) uint32 {
	old := binary.BigEndian.Uint16(b)
	if old == port {
		return 0
	}
	binary.BigEndian.PutUint16(b, port)
	return uint32(^old) + uint32(port)
}
