package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// ErrOptionSpace: the TCP header has no room left for an option (its
// options would pass 40 bytes). The frame is unchanged.
var ErrOptionSpace = errors.New("packet: no room for the TCP option")

// TOA, "TCP option address", carries a FullNAT client's address to the
// real server, where a kernel module (Alibaba's toa, DPVS's kmod/toa) hands
// it to getpeername. The layout is DPVS's: kind 254, then the length, the
// client's port and its address, all in network byte order; the length
// tells the families apart.
const (
	TCPOptTOA  = 254
	TOALenIPv4 = 8  // kind, length, port, 4-byte address
	TOALenIPv6 = 20 // kind, length, port, 16-byte address
)

// tcpMaxHeaderLen is the largest TCP header: data offset 15.
const tcpMaxHeaderLen = 60

// TOALen returns the length of the TOA option for a client address: 8
// for IPv4, 20 for IPv6 (an IPv4-mapped address is IPv6).
func TOALen(client netip.Addr) int {
	if client.Is4() {
		return TOALenIPv4
	}
	return TOALenIPv6
}

// InsertTOA inserts a TOA option carrying client and port into the TCP
// segment m describes, in place, for FullNAT. DPVS inserts it into the
// client's SYN and into the client's first ACK after the handshake (the
// segment that acknowledges the server's SYN): the kernel toa module reads
// it from the ACK that completes the handshake, when the accepted socket
// is made, so the caller must at least insert it there; other readers look
// at the SYN. Options take no sequence space, so nothing else changes.
//
// buf holds the frame starting at buf[headroom], as in a UMEM chunk whose
// first headroom bytes are free, and m describes that frame as
// Parser.Decode filled it. The option goes first among the options, right
// after the fixed TCP header: the link-layer, IP and fixed TCP headers move
// TOALen(client) bytes towards the start of buf, into the headroom, and
// the existing options and the payload stay where they are. The frame
// returned is buf[headroom-TOALen(client) : headroom+m.Length] (Ethernet
// padding cut), and on success m describes it (only Length grows).
//
// It updates the data offset, the IPv4 total length and header checksum or
// the IPv6 payload length, and the TCP checksum, all incrementally (a
// segment that arrived with a bad checksum still fails at the receiver).
//
// On error nothing changes: ErrOptionSpace when the TCP header would pass
// 60 bytes; ErrTooBig when the IP packet would pass mtu (mtu <= 0 skips that
// check) or its length field; ErrNoHeadroom when headroom is shorter than
// the option; ErrUnsupported for a packet other than TCP; ErrAddressFamily
// for an invalid client; ErrMalformed when m does not describe the frame.
// A worker forwards the segment without the option then, as DPVS does.
func InsertTOA(buf []byte, headroom int, m *Meta, client netip.Addr, port uint16, mtu int) ([]byte, error) {
	if m.Proto != ProtoTCP {
		return nil, ErrUnsupported
	}
	if !client.IsValid() {
		return nil, ErrAddressFamily
	}
	if !metaFits(buf, headroom, m) || m.L4Off+TCPMinHeaderLen > m.Length {
		return nil, ErrMalformed
	}
	frame := buf[headroom : headroom+m.Length]
	doff := TCP(frame[m.L4Off:]).DataOffset()
	if doff < TCPMinHeaderLen || m.L4Off+doff > m.Length {
		return nil, ErrMalformed
	}
	n := TOALen(client)
	if doff+n > tcpMaxHeaderLen {
		return nil, ErrOptionSpace
	}
	ipLen := m.Length - m.L3Off + n
	if mtu > 0 && ipLen > mtu || m.IPv6 && ipLen-IPv6HeaderLen > 0xffff || !m.IPv6 && ipLen > 0xffff {
		return nil, ErrTooBig
	}
	if headroom < n {
		return nil, ErrNoHeadroom
	}

	fixed := m.L4Off + TCPMinHeaderLen
	start := headroom - n
	copy(buf[start:start+fixed], frame[:fixed])
	frame = buf[start : headroom+m.Length]

	opt := frame[fixed : fixed+n]
	opt[0], opt[1] = TCPOptTOA, byte(n)
	binary.BigEndian.PutUint16(opt[2:4], port)
	if n == TOALenIPv4 {
		a := client.As4()
		copy(opt[4:], a[:])
	} else {
		a := client.As16()
		copy(opt[4:], a[:])
	}

	// The TCP checksum gains the option's words, the new data offset and
	// the pseudo-header's new length. The options and payload after the
	// new option moved by an even number of bytes, so their words sum as
	// before.
	tcp := TCP(frame[m.L4Off:])
	oldW := binary.BigEndian.Uint16(tcp[12:14])
	tcp[12] = byte((doff+n)/4)<<4 | tcp[12]&0x0f
	newW := binary.BigEndian.Uint16(tcp[12:14])
	oldLen := uint16(m.Length - m.L4Off)
	newLen := oldLen + uint16(n)
	delta := uint32(^oldW) + uint32(newW) + uint32(^oldLen) + uint32(newLen) + uint32(Fold(Checksum(opt, 0)))
	tcp.SetChecksum(applyDelta(tcp.Checksum(), delta))

	if m.IPv6 {
		ip := IPv6(frame[m.L3Off:])
		ip.SetPayloadLength(ip.PayloadLength() + uint16(n))
	} else {
		ip := IPv4(frame[m.L3Off:])
		old := ip.TotalLength()
		ip.SetTotalLength(old + uint16(n))
		ip.SetChecksum(UpdateChecksum16(ip.Checksum(), old, old+uint16(n)))
	}
	m.Length += n
	return frame, nil
}

// ParseTOA returns the client address and port of the first TOA option in
// tcpHeader, a TCP header with its options (a longer slice is read up to
// the data offset), and whether there was one. Options of other lengths
// with kind 254 (RFC 6994's shared experimental kind) are skipped, and a
// malformed option list ends the search.
func ParseTOA(tcpHeader []byte) (netip.AddrPort, bool) {
	if len(tcpHeader) < TCPMinHeaderLen {
		return netip.AddrPort{}, false
	}
	doff := TCP(tcpHeader).DataOffset()
	if doff < TCPMinHeaderLen || doff > len(tcpHeader) {
		return netip.AddrPort{}, false
	}
	opts := tcpHeader[TCPMinHeaderLen:doff]
	for len(opts) > 0 {
		switch opts[0] {
		case 0: // end of option list
			return netip.AddrPort{}, false
		case 1: // no-operation
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			return netip.AddrPort{}, false
		}
		o := opts[:opts[1]]
		if o[0] == TCPOptTOA {
			switch len(o) {
			case TOALenIPv4:
				return netip.AddrPortFrom(netip.AddrFrom4([4]byte(o[4:8])), binary.BigEndian.Uint16(o[2:4])), true
			case TOALenIPv6:
				return netip.AddrPortFrom(netip.AddrFrom16([16]byte(o[4:20])), binary.BigEndian.Uint16(o[2:4])), true
			}
		}
		opts = opts[len(o):]
	}
	return netip.AddrPort{}, false
}
