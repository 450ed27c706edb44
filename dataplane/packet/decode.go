package packet

import (
	"encoding/binary"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Meta describes one decoded frame. Offsets index into the frame.
type Meta struct {
	L3Off, L4Off int        // offsets of the IP and L4 headers
	VLANID       uint16     // outermost VLAN id when Tagged
	Tagged       bool       // the frame carries one or two VLAN tags
	IPv6         bool       // the packet is IPv6 (else IPv4)
	Proto        uint8      // IP protocol number (ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6)
	Src, Dst     netip.Addr // 4-byte addresses for IPv4, 16-byte for IPv6
	SrcPort      uint16     // TCP/UDP ports; the identifier for ICMP echo; else 0
	DstPort      uint16
	TCPFlags     uint8 // byte 13 of the TCP header (FlagFIN ...)
	Length       int   // frame bytes that belong to the packet (L2 + IP total length)
}

// maxVLANTags is how many stacked 802.1Q/802.1ad tags Decode accepts.
const maxVLANTags = 2

// maxIPv6ExtHeaders bounds the walk over extension headers looking for a
// Fragment header.
const maxIPv6ExtHeaders = 8

// IPv6 extension header numbers walked over to find a Fragment header.
const (
	ipv6HopByHop = 0
	ipv6Routing  = 43
	ipv6Fragment = 44
	ipv6DestOpts = 60
)

// Parser decodes frames into Meta without allocating. It wraps a
// gopacket.DecodingLayerParser whose layers it owns; one Parser per worker,
// since it is not safe for concurrent use.
type Parser struct {
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     tcpHeaderLayer
	udp     udpLayer
	icmp4   layers.ICMPv4
	icmp6   layers.ICMPv6
	echo6   layers.ICMPv6Echo
	payload gopacket.Payload

	dlp     *gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
}

// NewParser returns a Parser ready to decode Ethernet frames.
func NewParser() *Parser {
	p := &Parser{decoded: make([]gopacket.LayerType, 0, 8)}
	// gopacket allocates the options slice on the first packet with
	// options and grows it past 4; 40 one-byte options fill any header.
	p.ip4.Options = make([]layers.IPv4Option, 0, IPv4MaxHeaderLen-IPv4MinHeaderLen)

	// The sparse container indexes decoders by layer type: no map lookup.
	var dlc gopacket.DecodingLayerContainer = gopacket.DecodingLayerSparse(nil)
	for _, l := range []gopacket.DecodingLayer{
		&p.eth, &p.dot1q, &p.ip4, &p.ip6, &p.tcp, &p.udp,
		&p.icmp4, &p.icmp6, &p.echo6, &p.payload,
	} {
		dlc = dlc.Put(l)
	}
	p.dlp = gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet)
	p.dlp.SetDecodingLayerContainer(dlc)
	// Application layers chosen by port (DNS, VXLAN, ...) are not ours to
	// decode: stop there without an error.
	p.dlp.IgnoreUnsupported = true
	return p
}

// Decode decodes the Ethernet frame into m. It returns one of the package's
// sentinel errors (ErrTruncated, ErrMalformed, ErrBadLength, ErrFragment,
// ErrUnsupported) for a frame the data path cannot handle, and never panics.
// On error the contents of m are unspecified.
//
// Lengths are validated here before gopacket sees the frame, so that bad
// input ends in a sentinel instead of in gopacket's error paths, which
// format (and allocate) an error per frame. A TCP or UDP packet, what a
// director forwards by the million, is then read straight from the header
// views that validation has already proven sound: gopacket's
// DecodingLayerParser (a deferred recover and a container dispatch per
// layer, about 60 ns a frame) decodes everything else, ICMP above all.
// DecodeLayers decodes every frame with gopacket; FuzzDecodeFastPath
// proves the two agree.
func (p *Parser) Decode(frame []byte, m *Meta) error {
	*m = Meta{}
	if err := validate(frame, m); err != nil {
		return err
	}
	if m.Proto == ProtoTCP || m.Proto == ProtoUDP {
		fillTransport(frame, m)
		return nil
	}
	return p.decodeLayers(frame, m)
}

// DecodeLayers is Decode with gopacket's layers decoding every frame, TCP
// and UDP included: the reference Decode's fast path is checked against.
func (p *Parser) DecodeLayers(frame []byte, m *Meta) error {
	*m = Meta{}
	if err := validate(frame, m); err != nil {
		return err
	}
	return p.decodeLayers(frame, m)
}

// fillTransport fills in the addresses, ports and TCP flags of a TCP or UDP
// packet that validate accepted (so every offset is inside frame).
func fillTransport(frame []byte, m *Meta) {
	l3, l4 := m.L3Off, m.L4Off
	if m.IPv6 {
		m.Src = netip.AddrFrom16([16]byte(frame[l3+ipv6SrcOff : l3+ipv6SrcOff+16]))
		m.Dst = netip.AddrFrom16([16]byte(frame[l3+ipv6DstOff : l3+ipv6DstOff+16]))
	} else {
		m.Src = netip.AddrFrom4([4]byte(frame[l3+ipv4SrcOff : l3+ipv4SrcOff+4]))
		m.Dst = netip.AddrFrom4([4]byte(frame[l3+ipv4DstOff : l3+ipv4DstOff+4]))
	}
	m.SrcPort = binary.BigEndian.Uint16(frame[l4:])
	m.DstPort = binary.BigEndian.Uint16(frame[l4+2:])
	if m.Proto == ProtoTCP {
		m.TCPFlags = frame[l4+13]
	}
}

// decodeLayers runs gopacket's layers over a frame validate accepted.
func (p *Parser) decodeLayers(frame []byte, m *Meta) error {
	// The frame is cut at the end of the IP packet so that no layer sees
	// the Ethernet padding.
	if err := p.dlp.DecodeLayers(frame[:m.Length], &p.decoded); err != nil {
		return ErrMalformed
	}
	var l4 bool
	for _, t := range p.decoded {
		switch t {
		case layers.LayerTypeIPv4:
			m.Src = netip.AddrFrom4([4]byte(p.ip4.SrcIP))
			m.Dst = netip.AddrFrom4([4]byte(p.ip4.DstIP))
		case layers.LayerTypeIPv6:
			m.Src = netip.AddrFrom16([16]byte(p.ip6.SrcIP))
			m.Dst = netip.AddrFrom16([16]byte(p.ip6.DstIP))
		case layers.LayerTypeTCP:
			m.SrcPort, m.DstPort = uint16(p.tcp.SrcPort), uint16(p.tcp.DstPort)
			m.TCPFlags = p.tcp.flags
			l4 = true
		case layers.LayerTypeUDP:
			m.SrcPort, m.DstPort = uint16(p.udp.SrcPort), uint16(p.udp.DstPort)
			l4 = true
		case layers.LayerTypeICMPv4:
			switch p.icmp4.TypeCode.Type() {
			case layers.ICMPv4TypeEchoRequest, layers.ICMPv4TypeEchoReply:
				m.SrcPort, m.DstPort = p.icmp4.Id, p.icmp4.Id
			}
			l4 = true
		case layers.LayerTypeICMPv6:
			l4 = true
		case layers.LayerTypeICMPv6Echo:
			m.SrcPort, m.DstPort = p.echo6.Identifier, p.echo6.Identifier
		}
	}
	if !l4 {
		// validate accepted an L4 header that gopacket did not reach: the
		// two disagree about the frame, so trust neither.
		return ErrMalformed
	}
	return nil
}

// validate walks the frame's headers and checks every length that gopacket
// would otherwise reject with an allocated error, filling in m's offsets,
// VLAN, family, protocol and length.
func validate(frame []byte, m *Meta) error {
	if err := validateL2(frame, m); err != nil {
		return err
	}
	if m.IPv6 {
		return validateIPv6(frame, m)
	}
	return validateIPv4(frame, m)
}

func validateIPv4(frame []byte, m *Meta) error {
	l3 := m.L3Off
	if len(frame) < l3+IPv4MinHeaderLen {
		return ErrTruncated
	}
	ip := IPv4(frame[l3:])
	if ip.Version() != 4 {
		return ErrMalformed
	}
	hlen := ip.HeaderLength()
	if hlen < IPv4MinHeaderLen {
		return ErrMalformed
	}
	if len(frame) < l3+hlen {
		return ErrTruncated
	}
	total := int(ip.TotalLength())
	if total < hlen || len(frame) < l3+total {
		// A zero total length (TSO on the sender's side) lands here too:
		// the director sees wire frames, never super-packets.
		return ErrBadLength
	}
	if !validIPv4Options(frame[l3+IPv4MinHeaderLen : l3+hlen]) {
		return ErrMalformed
	}
	// The kernel's ip_rcv drops these before IPVS sees them; a director
	// that forwarded one would only have the real server drop it.
	if !IPv4(frame[l3 : l3+hlen]).IsChecksumValid() {
		return ErrBadChecksum
	}
	if ip.MoreFragments() || ip.FragmentOffset() != 0 {
		return ErrFragment
	}
	m.Length = l3 + total
	m.L4Off = l3 + hlen
	m.Proto = ip.Protocol()
	switch m.Proto {
	case ProtoTCP, ProtoUDP, ProtoICMP:
		return validateL4(frame[m.L4Off:m.Length], m.Proto)
	default:
		return ErrUnsupported
	}
}

// validIPv4Options applies gopacket's rules for IPv4 options: every option
// but End and No-op has a length of at least 2 that stays in the header.
func validIPv4Options(opts []byte) bool {
	for len(opts) > 0 {
		switch opts[0] {
		case 0: // End of option list
			return true
		case 1: // No operation
			opts = opts[1:]
		default:
			if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
				return false
			}
			opts = opts[opts[1]:]
		}
	}
	return true
}

func validateIPv6(frame []byte, m *Meta) error {
	l3 := m.L3Off
	if len(frame) < l3+IPv6HeaderLen {
		return ErrTruncated
	}
	ip := IPv6(frame[l3:])
	if ip.Version() != 6 {
		return ErrMalformed
	}
	nh := ip.NextHeader()
	plen := int(ip.PayloadLength())
	if plen == 0 {
		if nh == ipv6HopByHop {
			return ErrUnsupported // a jumbogram, or so it claims
		}
		return ErrBadLength
	}
	if len(frame) < l3+IPv6HeaderLen+plen {
		return ErrBadLength
	}
	m.Length = l3 + IPv6HeaderLen + plen
	m.L4Off = l3 + IPv6HeaderLen
	m.Proto = nh
	switch nh {
	case ProtoTCP, ProtoUDP, ProtoICMPv6:
		return validateL4(frame[m.L4Off:m.Length], nh)
	case ipv6Fragment:
		return ErrFragment
	case ipv6HopByHop, ipv6Routing, ipv6DestOpts:
		return findIPv6Fragment(frame[m.L4Off:m.Length], nh)
	default:
		return ErrUnsupported
	}
}

// findIPv6Fragment walks the extension headers that share the generic
// (next header, length in 8-byte units) layout, so that a fragment behind
// them is counted as a fragment. Decoding past extension headers is not
// supported: it returns ErrFragment or ErrUnsupported, or ErrTruncated when
// the chain runs past the packet.
func findIPv6Fragment(b []byte, nh uint8) error {
	for range maxIPv6ExtHeaders {
		switch nh {
		case ipv6HopByHop, ipv6Routing, ipv6DestOpts:
		case ipv6Fragment:
			return ErrFragment
		default:
			return ErrUnsupported
		}
		if len(b) < 8 {
			return ErrTruncated
		}
		n := (int(b[1]) + 1) * 8
		if len(b) < n {
			return ErrTruncated
		}
		nh, b = b[0], b[n:]
	}
	if nh == ipv6Fragment {
		return ErrFragment
	}
	return ErrUnsupported
}

// validateL4 checks the L4 header against l4, the IP payload.
func validateL4(l4 []byte, proto uint8) error {
	switch proto {
	case ProtoTCP:
		if len(l4) < TCPMinHeaderLen {
			return ErrTruncated
		}
		doff := TCP(l4).DataOffset()
		if doff < TCPMinHeaderLen {
			return ErrMalformed
		}
		if doff > len(l4) {
			return ErrTruncated
		}
	case ProtoUDP:
		if len(l4) < UDPHeaderLen {
			return ErrTruncated
		}
		if n := int(UDP(l4).Length()); n < UDPHeaderLen || n > len(l4) {
			return ErrBadLength
		}
	case ProtoICMP, ProtoICMPv6:
		// Every ICMPv6 message defined carries at least 4 bytes after the
		// type, code and checksum, as ICMPv4 ones do; echo needs them.
		if len(l4) < ICMPHeaderLen {
			return ErrTruncated
		}
	}
	return nil
}

// tcpHeaderLayer decodes only TCP's fixed header. layers.TCP parses
// options too, and its MPTCP option decoding allocates per segment, which
// would make every packet of an MPTCP connection allocate. The director
// never reads TCP options.
type tcpHeaderLayer struct {
	layers.TCP
	flags uint8
}

// DecodeFromBytes implements gopacket.DecodingLayer. Lengths were checked by
// validate; the checks here keep the layer safe on its own.
func (t *tcpHeaderLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < TCPMinHeaderLen {
		df.SetTruncated()
		return ErrTruncated
	}
	h := TCP(data)
	doff := h.DataOffset()
	if doff < TCPMinHeaderLen {
		return ErrMalformed
	}
	if doff > len(data) {
		df.SetTruncated()
		return ErrTruncated
	}
	t.SrcPort = layers.TCPPort(h.SourcePort())
	t.DstPort = layers.TCPPort(h.DestinationPort())
	t.Seq = h.SequenceNumber()
	t.Ack = h.AckNumber()
	t.DataOffset = data[12] >> 4
	t.flags = h.Flags()
	t.FIN = t.flags&FlagFIN != 0
	t.SYN = t.flags&FlagSYN != 0
	t.RST = t.flags&FlagRST != 0
	t.PSH = t.flags&FlagPSH != 0
	t.ACK = t.flags&FlagACK != 0
	t.URG = t.flags&FlagURG != 0
	t.ECE = t.flags&FlagECE != 0
	t.CWR = t.flags&FlagCWR != 0
	t.NS = data[12]&0x01 != 0
	t.Window = h.WindowSize()
	t.Checksum = h.Checksum()
	t.Urgent = h.UrgentPointer()
	t.Options = t.Options[:0]
	t.Padding = nil
	t.Contents = data[:doff]
	t.Payload = data[doff:]
	return nil
}

// NextLayerType implements gopacket.DecodingLayer: the payload is opaque to
// the director, whatever the port suggests.
func (t *tcpHeaderLayer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

// udpLayer is layers.UDP without the port-based choice of the next layer
// (DNS, VXLAN, ...), which costs a lookup per datagram for layers the
// director never decodes.
type udpLayer struct{ layers.UDP }

// NextLayerType implements gopacket.DecodingLayer.
func (u *udpLayer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypePayload }
