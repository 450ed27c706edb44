package packet

import "errors"

// Sentinel errors returned by Parser.Decode and the rewrite functions. They
// are fixed values, so a worker can compare them with == (or errors.Is) and
// count drops by reason without allocating.
var (
	// ErrTruncated: a header the frame announces does not fit in it (or an
	// L4 header does not fit in the IP packet).
	ErrTruncated = errors.New("packet: truncated")
	// ErrMalformed: a header field has an impossible value (IP version
	// mismatch, IPv4 IHL < 5, TCP data offset < 5, bad IPv4 options), or a
	// Meta does not describe the frame handed to a rewrite.
	ErrMalformed = errors.New("packet: malformed header")
	// ErrBadLength: a length field disagrees with the frame or with another
	// length field (IP total length larger than the frame or smaller than
	// the IP header, UDP length outside the IP payload).
	ErrBadLength = errors.New("packet: bad length field")
	// ErrFragment: an IPv4 fragment (MF set or offset != 0) or an IPv6
	// packet with a Fragment extension header.
	ErrFragment = errors.New("packet: IP fragment")
	// ErrUnsupported: a non-IP ethertype, more than two VLAN tags, an L4
	// protocol other than TCP, UDP, ICMP and ICMPv6, IPv6 extension headers,
	// or a rewrite the packet's protocol does not allow (ports of ICMP).
	ErrUnsupported = errors.New("packet: unsupported protocol")
	// ErrAddressFamily: a rewrite was given an address of the other IP
	// version than the packet's.
	ErrAddressFamily = errors.New("packet: address family does not match packet")
)
