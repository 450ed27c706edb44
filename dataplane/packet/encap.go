package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Sentinel errors of the functions that grow a frame in place.
var (
	// ErrNoHeadroom: the bytes free before the frame cannot hold what an
	// encapsulation or option insertion adds. The frame is unchanged.
	ErrNoHeadroom = errors.New("packet: not enough headroom")
	// ErrTooBig: the packet would exceed the MTU, or an IP length field,
	// once grown. The frame is unchanged.
	ErrTooBig = errors.New("packet: packet would exceed the MTU")
)

// IP protocol numbers of the encapsulations.
const (
	ProtoIPIP = 4  // IPv4 in IP (RFC 2003)
	ProtoIPv6 = 41 // IPv6 in IP (RFC 2473, RFC 4213)
)

// Family is an IP version: FamilyIPv4 or FamilyIPv6.
type Family uint8

// The IP families, numbered after their versions.
const (
	FamilyIPv4 Family = 4
	FamilyIPv6 Family = 6
)

// AddrFamily returns the family of a: FamilyIPv4 for a 4-byte address,
// FamilyIPv6 for any other (an IPv4-mapped IPv6 address is IPv6, as
// everywhere in this package).
func AddrFamily(a netip.Addr) Family {
	if a.Is4() {
		return FamilyIPv4
	}
	return FamilyIPv6
}

// Family returns the family of the packet m describes.
func (m *Meta) Family() Family {
	if m.IPv6 {
		return FamilyIPv6
	}
	return FamilyIPv4
}

// headerLen returns the length of the fixed IP header of family f.
func (f Family) headerLen() int {
	if f == FamilyIPv6 {
		return IPv6HeaderLen
	}
	return IPv4MinHeaderLen
}

// encapProto returns the outer header's protocol for an inner packet of
// family f.
func (f Family) encapProto() uint8 {
	if f == FamilyIPv6 {
		return ProtoIPv6
	}
	return ProtoIPIP
}

func (f Family) etherType() uint16 {
	if f == FamilyIPv6 {
		return EtherTypeIPv6
	}
	return EtherTypeIPv4
}

// EncapOverhead returns the bytes EncapIPIP adds to a packet of family
// inner tunnelled over outer: the outer header, 20 bytes for IPv4 and 40
// for IPv6. The inner family does not change it today (IPVS adds no RFC
// 2473 encapsulation limit option); it is a parameter so that callers need
// not change if that ever differs.
func EncapOverhead(inner, outer Family) int {
	_ = inner
	return outer.headerLen()
}

// EncapMTU returns the largest inner packet that fits a link of linkMTU
// after encapsulation: the MTU a director reports in ICMP "fragmentation
// needed" or "packet too big" when a packet does not fit, as IPVS does
// (route MTU minus the outer header). The result may be below what the
// inner family allows (68 for IPv4, 1280 for IPv6); IPVS drops such
// packets instead of reporting, and BuildFragNeeded refuses that MTU.
func EncapMTU(linkMTU int, inner, outer Family) int {
	return linkMTU - EncapOverhead(inner, outer)
}

// EncapTooBig reports whether the packet m describes (as Parser.Decode
// filled it for frame) cannot be sent encapsulated over a link of linkMTU:
// its IP length plus the outer header exceeds linkMTU and it must not be
// fragmented, because it is IPv6 (only its source may fragment it) or an
// IPv4 packet with DF. The data path then answers with BuildFragNeeded,
// reporting EncapMTU, as IPVS's ensure_mtu_is_adequate does. An IPv4 packet
// without DF reports false even when it is too big: IPVS would send it in
// outer fragments, which xvs does not make, so the caller drops it (or
// sends it, if it knows the link takes it).
func EncapTooBig(frame []byte, m *Meta, outer Family, linkMTU int) bool {
	if m.Length-m.L3Off+EncapOverhead(m.Family(), outer) <= linkMTU {
		return false
	}
	if m.IPv6 {
		return true
	}
	if m.L3Off < 0 || m.L3Off+IPv4MinHeaderLen > len(frame) {
		return false
	}
	return IPv4(frame[m.L3Off:]).DontFragment()
}

// Tunnel is the outer header EncapIPIP writes.
type Tunnel struct {
	// Src and Dst are the outer addresses: the director's own address
	// (DIP) and the real server's (RIP). Their family, which must be the
	// same, chooses the outer header: IPv4 (protocol 4 or 41) or IPv6
	// (next header 4 or 41).
	Src, Dst netip.Addr
	// TTL is the outer TTL or hop limit; 0 copies the inner packet's, as
	// IPVS does.
	TTL uint8
	// ID is the outer IPv4 identification, written as given: a worker
	// passes a counter of its own, so that outer packets without DF, which
	// routers may fragment, carry distinct IDs. Unused for IPv6.
	ID uint16
}

// EncapIPIP encapsulates in place the packet m describes for LVS-TUN
// (ipvsadm -i): IPv4 in IPv4 (protocol 4), IPv6 in IPv6 (next header 41),
// and the mixed cases (IPv6 in IPv4 is protocol 41, IPv4 in IPv6 next
// header 4).
//
// buf holds the frame starting at buf[headroom], as in a UMEM chunk whose
// first headroom bytes are free, and m describes that frame
// (buf[headroom:], as Parser.Decode filled it). The outer header goes
// between the link-layer header and the inner IP packet: the Ethernet header
// and its VLAN tags move EncapOverhead bytes towards the start of buf, into
// the headroom, and no byte of the inner packet moves or changes. The frame
// returned is buf[headroom-EncapOverhead(...) : headroom+L], L being
// m.Length on entry: it starts EncapOverhead bytes earlier (a UMEM
// descriptor's address moves back by as much), and Ethernet padding after
// the inner packet is cut.
//
// The outer header follows ip_vs_tunnel_xmit: DSCP copied from the inner
// packet and ECN too, except that CE becomes ECT(0) (RFC 3168's
// full-functionality option, as Linux's INET_ECN_encapsulate); DF copied
// from an IPv4 inner packet, cleared for IPv6; IPv4 identification t.ID;
// flow label 0; TTL or hop limit t.TTL or the inner one. The ethertype
// becomes the outer family's. The MACs are left as they were: set them with
// SetMACs.
//
// On success m describes the new frame: an IPIP packet (Proto ProtoIPIP
// for an IPv4 inner packet, ProtoIPv6 for IPv6; IPv6 set for an IPv6 outer
// header; Src and Dst the tunnel's addresses; no ports or flags) whose L4Off
// is the inner IP header. Copy m first if the inner flow is still needed. On error nothing
// changes: ErrNoHeadroom when headroom is shorter than the outer header,
// ErrTooBig when the outer length field would overflow, ErrAddressFamily
// when t's addresses are invalid or of different families, ErrMalformed
// when m does not describe buf[headroom:].
func EncapIPIP(buf []byte, headroom int, m *Meta, t Tunnel) ([]byte, error) {
	if !t.Src.IsValid() || !t.Dst.IsValid() || t.Src.Is4() != t.Dst.Is4() {
		return nil, ErrAddressFamily
	}
	if !metaFits(buf, headroom, m) {
		return nil, ErrMalformed
	}
	inner, outer := m.Family(), AddrFamily(t.Src)
	n := EncapOverhead(inner, outer)
	if headroom < n {
		return nil, ErrNoHeadroom
	}
	ipLen := m.Length - m.L3Off
	if outer == FamilyIPv4 && ipLen+n > 0xffff || ipLen > 0xffff {
		return nil, ErrTooBig
	}

	in := buf[headroom+m.L3Off:]
	var dsfield, ttl uint8
	var df bool
	if inner == FamilyIPv6 {
		dsfield, ttl = IPv6(in).TrafficClass(), IPv6(in).HopLimit()
	} else {
		dsfield, ttl, df = IPv4(in).TOS(), IPv4(in).TTL(), IPv4(in).DontFragment()
	}
	if t.TTL != 0 {
		ttl = t.TTL
	}
	dsfield = ecnEncapsulate(dsfield)

	start, end := headroom-n, headroom+m.Length
	// copy is memmove: the overlap of old and new L2 places is fine.
	copy(buf[start:start+m.L3Off], buf[headroom:headroom+m.L3Off])
	binary.BigEndian.PutUint16(buf[start+m.L3Off-2:], outer.etherType())
	hdr := buf[start+m.L3Off : headroom+m.L3Off]
	if outer == FamilyIPv6 {
		h := IPv6(hdr)
		binary.BigEndian.PutUint32(h[0:4], 6<<28|uint32(dsfield)<<20)
		h.SetPayloadLength(uint16(ipLen))
		h.SetNextHeader(inner.encapProto())
		h.SetHopLimit(ttl)
		h.SetSourceAddress(t.Src)
		h.SetDestinationAddress(t.Dst)
	} else {
		h := IPv4(hdr)
		h[0] = 4<<4 | IPv4MinHeaderLen/4
		h[1] = dsfield
		h.SetTotalLength(uint16(ipLen + n))
		binary.BigEndian.PutUint16(h[4:6], t.ID)
		var frag uint16
		if df {
			frag = 0x4000
		}
		binary.BigEndian.PutUint16(h[6:8], frag)
		h.SetTTL(ttl)
		h[9] = inner.encapProto()
		h.SetSourceAddress(t.Src)
		h.SetDestinationAddress(t.Dst)
		h.SetChecksum(0)
		h.SetChecksum(^Fold(Checksum(h[:IPv4MinHeaderLen], 0)))
	}

	*m = Meta{
		L3Off:  m.L3Off,
		L4Off:  m.L3Off + n,
		VLANID: m.VLANID,
		Tagged: m.Tagged,
		IPv6:   outer == FamilyIPv6,
		Proto:  inner.encapProto(),
		Src:    t.Src,
		Dst:    t.Dst,
		Length: m.Length + n,
	}
	return buf[start:end], nil
}

// ecnEncapsulate returns the outer DS field for an inner one: DSCP and ECN
// copied, except that CE becomes ECT(0), as Linux's INET_ECN_encapsulate,
// so that a congestion mark the inner packet carries is not taken for one
// set on the tunnel's path when the outer header is stripped.
func ecnEncapsulate(ds uint8) uint8 {
	const ecnMask, ce, ect0 = 0x03, 0x03, 0x02
	if ds&ecnMask == ce {
		return ds&^ecnMask | ect0
	}
	return ds
}

// metaFits reports whether m can describe the frame at buf[headroom:]: the
// cheap checks that keep a stale or hand-made Meta from causing a panic or
// a write past the packet.
func metaFits(buf []byte, headroom int, m *Meta) bool {
	hdr := IPv4MinHeaderLen
	if m.IPv6 {
		hdr = IPv6HeaderLen
	}
	return headroom >= 0 && headroom <= len(buf) &&
		m.L3Off >= EthernetHeaderLen && m.L4Off >= m.L3Off+hdr &&
		m.Length >= m.L4Off && m.Length <= len(buf)-headroom
}

// DecapIPIP strips in place the outer IPv4 or IPv6 header of an IPIP frame
// (protocol or next header 4 or 41, as EncapIPIP writes), the reverse of
// EncapIPIP: the Ethernet header and its VLAN tags move forward over the
// outer header, their ethertype becomes the inner family's, and the inner
// packet stays where it is. It returns the decapsulated frame, a subslice
// of frame that starts as many bytes later as the outer header was long
// (its options included) and ends where the outer packet ended.
//
// Following RFC 6040, a CE mark on the outer header is copied to an inner
// packet that is ECN-capable (fixing the inner IPv4 checksum
// incrementally); otherwise the inner packet is left as it arrived, so that
// EncapIPIP followed by DecapIPIP gives back the original frame.
//
// It returns ErrUnsupported when the frame is not an IPIP packet (or has
// IPv6 extension headers or more than two VLAN tags), ErrFragment for an
// outer fragment, ErrBadChecksum when the outer IPv4 header's checksum does
// not verify, and ErrTruncated, ErrMalformed or ErrBadLength when the
// headers do not fit; frame is unchanged then.
func DecapIPIP(frame []byte) ([]byte, error) {
	var m Meta
	if err := validateL2(frame, &m); err != nil {
		return nil, err
	}
	l3 := m.L3Off
	var hl, end int
	var proto, outerDS uint8
	if m.IPv6 {
		if len(frame) < l3+IPv6HeaderLen {
			return nil, ErrTruncated
		}
		ip := IPv6(frame[l3:])
		if ip.Version() != 6 {
			return nil, ErrMalformed
		}
		hl, proto, outerDS = IPv6HeaderLen, ip.NextHeader(), ip.TrafficClass()
		end = l3 + IPv6HeaderLen + int(ip.PayloadLength())
	} else {
		if len(frame) < l3+IPv4MinHeaderLen {
			return nil, ErrTruncated
		}
		ip := IPv4(frame[l3:])
		if ip.Version() != 4 {
			return nil, ErrMalformed
		}
		hl, proto, outerDS = ip.HeaderLength(), ip.Protocol(), ip.TOS()
		if hl < IPv4MinHeaderLen {
			return nil, ErrMalformed
		}
		if int(ip.TotalLength()) < hl {
			return nil, ErrBadLength
		}
		if len(frame) >= l3+hl && Fold(Checksum(frame[l3:l3+hl], 0)) != 0xffff {
			// A router would have dropped it; so does a decapsulator.
			return nil, ErrBadChecksum
		}
		end = l3 + int(ip.TotalLength())
	}
	if proto != ProtoIPIP && proto != ProtoIPv6 {
		return nil, ErrUnsupported
	}
	if end > len(frame) {
		return nil, ErrBadLength
	}
	if !m.IPv6 && (IPv4(frame[l3:]).MoreFragments() || IPv4(frame[l3:]).FragmentOffset() != 0) {
		return nil, ErrFragment
	}
	innerLen := IPv4MinHeaderLen
	innerVersion := uint8(4)
	if proto == ProtoIPv6 {
		innerLen, innerVersion = IPv6HeaderLen, 6
	}
	if end < l3+hl+innerLen {
		return nil, ErrTruncated
	}
	in := frame[l3+hl : end]
	if in[0]>>4 != innerVersion {
		return nil, ErrMalformed
	}

	ecnDecapsulate(in, innerVersion == 6, outerDS)
	copy(frame[hl:hl+l3], frame[:l3])
	out := frame[hl:end]
	inner := FamilyIPv4
	if innerVersion == 6 {
		inner = FamilyIPv6
	}
	binary.BigEndian.PutUint16(out[l3-2:], inner.etherType())
	return out, nil
}

// ecnDecapsulate copies a CE mark of the outer DS field to the inner IP
// header in when the inner packet is ECN-capable (RFC 6040 section 4.2).
func ecnDecapsulate(in []byte, v6 bool, outerDS uint8) {
	const ecnMask, ce = 0x03, 0x03
	if outerDS&ecnMask != ce {
		return
	}
	if v6 {
		tc := IPv6(in).TrafficClass()
		if tc&ecnMask == 0 || tc&ecnMask == ce {
			return
		}
		w := binary.BigEndian.Uint32(in[0:4])
		binary.BigEndian.PutUint32(in[0:4], w|uint32(ce)<<20)
		return
	}
	ip := IPv4(in)
	tos := ip.TOS()
	if tos&ecnMask == 0 || tos&ecnMask == ce {
		return
	}
	old := binary.BigEndian.Uint16(in[0:2])
	in[1] = tos | ce
	ip.SetChecksum(UpdateChecksum16(ip.Checksum(), old, binary.BigEndian.Uint16(in[0:2])))
}

// validateL2 walks the Ethernet header and up to two VLAN tags, setting
// m.L3Off, m.Tagged, m.VLANID and m.IPv6 from the inner ethertype.
func validateL2(frame []byte, m *Meta) error {
	if len(frame) < EthernetHeaderLen {
		return ErrTruncated
	}
	off := EthernetHeaderLen
	etype := binary.BigEndian.Uint16(frame[12:14])
	for tags := 0; etype == EtherTypeVLAN || etype == EtherTypeQinQ; tags++ {
		if tags == maxVLANTags {
			return ErrUnsupported
		}
		if len(frame) < off+VLANTagLen {
			return ErrTruncated
		}
		if tags == 0 {
			m.Tagged = true
			m.VLANID = binary.BigEndian.Uint16(frame[off:]) & 0x0fff
		}
		etype = binary.BigEndian.Uint16(frame[off+2:])
		off += VLANTagLen
	}
	m.L3Off = off
	switch etype {
	case EtherTypeIPv4:
	case EtherTypeIPv6:
		m.IPv6 = true
	default:
		return ErrUnsupported
	}
	return nil
}
