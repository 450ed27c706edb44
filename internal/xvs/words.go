package xvs

import (
	"fmt"
	"strings"
)

// names are an enumeration's names, indexed by value: the one place each
// is spelled.
type names []string

func (n names) name(v uint8, kind string) string {
	if int(v) < len(n) {
		return n[v]
	}
	return fmt.Sprintf("%s(%d)", kind, v)
}

func (n names) index(s string) (uint8, bool) {
	for i, x := range n {
		if x == s {
			return uint8(i), true
		}
	}
	return 0, false
}

// Method is how the director forwards to a real server. The zero Method is
// DR, as -g is ipvsadm's default. The data plane stores it in a
// connection's flags, so its values are part of the connection table's
// (and the sync protocol's) format: append, never renumber.
type Method uint8

// The forwarding methods.
const (
	MethodDR      Method = iota // direct routing: rewrite MACs only (ipvsadm -g)
	MethodNAT                   // masquerading: DNAT in, SNAT replies (ipvsadm -m)
	MethodTUN                   // tunnelling: IPIP or IPv6-in-IPv6 to the real server (ipvsadm -i)
	MethodFullNAT               // DPVS's FullNAT: also SNAT to a local address; replies come back to it
)

var (
	methodNames   = names{"dr", "nat", "tun", "fullnat"}
	methodForward = names{"Route", "Masq", "Tunnel", "FullNat"}
	// What else ParseMethod reads: ipvsadm's option letters and long
	// names, and DPVS's.
	methodAliases = map[string]Method{
		"g": MethodDR, "gate": MethodDR, "route": MethodDR,
		"m": MethodNAT, "masq": MethodNAT, "masquerade": MethodNAT,
		"i": MethodTUN, "ipip": MethodTUN, "tunnel": MethodTUN,
		"fnat": MethodFullNAT,
	}
)

// Methods returns every method, in order.
func Methods() []Method { return []Method{MethodDR, MethodNAT, MethodTUN, MethodFullNAT} }

// String returns the method's name in the configuration file and the
// control API: dr, nat, tun or fullnat.
func (m Method) String() string { return methodNames.name(uint8(m), "Method") }

// Forward returns the name ipvsadm -L shows in its Forward column (DPVS's
// for FullNAT).
func (m Method) Forward() string { return methodForward.name(uint8(m), "Method") }

// ParseMethod reads a method as the configuration names it (dr, nat, tun,
// fullnat) or as ipvsadm's options do (g, gate, route; m, masq,
// masquerade; i, ipip, tunnel) or DPVS's (fnat).
func ParseMethod(s string) (Method, error) {
	if i, ok := methodNames.index(s); ok {
		return Method(i), nil
	}
	if m, ok := methodAliases[s]; ok {
		return m, nil
	}
	return 0, fmt.Errorf("unknown method %q (want dr, nat, tun or fullnat, or ipvsadm's g, m, i)", s)
}

// Protocol is an IP protocol number. Services are TCP or UDP; the data
// plane carries others (ICMP) only as errors about those.
type Protocol uint8

// The protocols a service can have.
const (
	ProtoTCP Protocol = 6
	ProtoUDP Protocol = 17
)

// String returns "tcp" or "udp", or "proto(N)" for any other protocol:
// never a service's name for something that is not one.
func (p Protocol) String() string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// ParseProtocol reads "tcp" or "udp".
func ParseProtocol(s string) (Protocol, error) {
	switch s {
	case "tcp":
		return ProtoTCP, nil
	case "udp":
		return ProtoUDP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q (want tcp or udp)", s)
}

// XDPMode is how an XDP program is attached to an interface.
type XDPMode uint8

// The attach modes.
const (
	// XDPAuto attaches in driver mode and falls back to generic mode
	// when the driver has no native XDP.
	XDPAuto XDPMode = iota
	// XDPDriver attaches in the driver's receive path (native XDP).
	XDPDriver
	// XDPGeneric attaches after the kernel has built an skb (SKB mode):
	// it works on every interface, at a fraction of the speed.
	XDPGeneric
)

var xdpModeNames = names{"auto", "driver", "generic"}

// XDPModes returns every attach mode, in order.
func XDPModes() []XDPMode { return []XDPMode{XDPAuto, XDPDriver, XDPGeneric} }

// String returns the mode's name: auto, driver or generic.
func (m XDPMode) String() string { return xdpModeNames.name(uint8(m), "XDPMode") }

// ParseXDPMode reads a mode's name, case-insensitively and with the
// kernel's and iproute2's names (native, drv, skb) as well: what a command
// line accepts. The configuration file takes the names only.
func ParseXDPMode(s string) (XDPMode, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "native", "drv":
		return XDPDriver, nil
	case "skb":
		return XDPGeneric, nil
	}
	if i, ok := xdpModeNames.index(s); ok {
		return XDPMode(i), nil
	}
	return 0, fmt.Errorf("unknown XDP mode %q (want auto, driver or generic)", s)
}

// ZeroCopy is whether AF_XDP sockets bind in zero-copy mode.
type ZeroCopy uint8

// The zero-copy modes.
const (
	ZeroCopyAuto ZeroCopy = iota // zero-copy where the driver offers it, else copy
	ZeroCopyOn                   // zero-copy or fail
	ZeroCopyOff                  // copy mode always
)

var zeroCopyNames = names{"auto", "on", "off"}

// ZeroCopies returns every zero-copy mode, in order.
func ZeroCopies() []ZeroCopy { return []ZeroCopy{ZeroCopyAuto, ZeroCopyOn, ZeroCopyOff} }

// String returns the mode's name: auto, on or off.
func (z ZeroCopy) String() string { return zeroCopyNames.name(uint8(z), "ZeroCopy") }

// FastPath is where established connections are forwarded by the XDP
// steering program itself rather than by a worker.
type FastPath uint8

// The fast path's modes.
const (
	// FastPathAuto offloads on interfaces in driver mode, except veth
	// (whose peer drops XDP's frames unless it runs NAPI, a setting the
	// director can neither see nor change).
	FastPathAuto FastPath = iota
	// FastPathXDP offloads on every interface in driver mode, veth
	// included.
	FastPathXDP
	// FastPathOff forwards everything in userspace.
	FastPathOff
)

var fastPathNames = names{"auto", "xdp", "off"}

// FastPaths returns every fast path mode, in order.
func FastPaths() []FastPath { return []FastPath{FastPathAuto, FastPathXDP, FastPathOff} }

// String returns the mode's name: auto, xdp or off.
func (f FastPath) String() string { return fastPathNames.name(uint8(f), "FastPath") }

// DefaultRingSize is the entries of each AF_XDP ring (RX, TX, fill and
// completion) when the configuration sets none.
const DefaultRingSize = 2048

// MinFrames is the smallest UMEM that sockets fill rings of fillRing
// entries each can share: every fill ring full, and as many frames again in
// flight between receive and transmit completion. A worker's UMEM serves one
// socket per interface.
func MinFrames(fillRing, sockets int) int {
	return 2 * fillRing * max(sockets, 1)
}
