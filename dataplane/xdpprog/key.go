package xdpprog

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Endpoint is one (address, port, protocol) triple: a virtual service for
// the vips map, a NAT real server for the reals map.
type Endpoint struct {
	Addr  netip.Addr
	Port  uint16 // host byte order
	Proto uint8  // IPPROTO_TCP (6) or IPPROTO_UDP (17)
	// SynProxy (vips only, TCP): the program answers the service's SYNs
	// with SYN cookies itself (see [Program.SetCookieKeys]).
	SynProxy bool
}

// vipFlags is e's value in the vips map (steer.c's VIP_* flags).
func (e Endpoint) vipFlags() uint32 {
	if e.SynProxy && e.Proto == protoTCP {
		return vipSynProxy
	}
	return 0
}

// String formats e as "tcp 198.18.0.1:80" or "udp [fd00::1]:53".
func (e Endpoint) String() string {
	var proto string
	switch e.Proto {
	case protoTCP:
		proto = "tcp"
	case protoUDP:
		proto = "udp"
	default:
		proto = fmt.Sprintf("proto %d", e.Proto)
	}
	return proto + " " + netip.AddrPortFrom(e.Addr, e.Port).String()
}

// mapKey is struct key of the program's hash maps (see the package
// documentation); its fields are laid out without padding, so its memory
// image is the 20 bytes the program builds on its stack.
type mapKey struct {
	Addr   [16]byte
	Port   [2]byte // network byte order, as in the packet
	Proto  uint8
	Family uint8
}

// key returns e's key in the vips and reals maps.
func (e Endpoint) key() (mapKey, error) {
	if !e.Addr.IsValid() {
		return mapKey{}, fmt.Errorf("endpoint %v: no address", e)
	}
	if e.Proto != protoTCP && e.Proto != protoUDP {
		return mapKey{}, fmt.Errorf("endpoint %v: protocol %d is neither TCP nor UDP", e, e.Proto)
	}
	var k mapKey
	// An IPv4-mapped IPv6 address means the IPv4 address on the wire.
	if a := e.Addr.Unmap(); a.Is4() {
		v4 := a.As4()
		copy(k.Addr[:], v4[:])
		k.Family = 4
	} else {
		k.Addr = a.As16()
		k.Family = 6
	}
	binary.BigEndian.PutUint16(k.Port[:], e.Port)
	k.Proto = e.Proto
	return k, nil
}

// addrKey returns k's key in the vipaddrs map: the same key with port zero,
// which is what the program looks up for a fragment.
func (k mapKey) addrKey() mapKey {
	k.Port = [2]byte{}
	return k
}

// endpoint returns the Endpoint k was made from, for messages.
func (k mapKey) endpoint() Endpoint {
	e := Endpoint{Port: binary.BigEndian.Uint16(k.Port[:]), Proto: k.Proto}
	if k.Family == 4 {
		e.Addr = netip.AddrFrom4([4]byte(k.Addr[:4]))
	} else {
		e.Addr = netip.AddrFrom16(k.Addr)
	}
	return e
}
