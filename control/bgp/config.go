package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

const (
	// DefaultHoldTime is short on purpose: when a director dies without
	// saying goodbye, its routes must leave the routers within seconds, not
	// the 90 s (or 180 s) most BGP implementations default to.
	DefaultHoldTime = 9 * time.Second

	// DefaultPort is the BGP port, used for listening and for peers.
	DefaultPort = 179

	// connectRetry bounds how long an active session waits between dial
	// attempts; gobgp's own default (120 s) would keep a rebooted router
	// without the VIPs for two minutes.
	connectRetry = 5 * time.Second

	// maxMD5KeyLen is TCP_MD5SIG_MAXKEYLEN in Linux.
	maxMD5KeyLen = 80
)

// Config is a Speaker's configuration. The zero values of optional fields
// select the documented defaults.
type Config struct {
	// LocalAS is the director's autonomous system number (4-octet ASNs are
	// fine).
	LocalAS uint32
	// RouterID is the BGP identifier; it must be an IPv4 address.
	RouterID netip.Addr
	// ListenPort is the TCP port to accept sessions on: 0 means 179, -1 means
	// do not listen at all (every peer must then be active).
	ListenPort int32
	// ListenAddrs restricts the listening sockets to these addresses; empty
	// means the wildcard address of both families.
	ListenAddrs []netip.Addr
	// NextHop is the next hop announced with IPv4 VIPs, the director's
	// address on the peering interface. Default: RouterID.
	NextHop netip.Addr
	// NextHop6 is the next hop announced with IPv6 VIPs. It may be left
	// unset only when every peer is IPv6: the session's local address is
	// then the next hop. SetVIPs refuses IPv6 VIPs otherwise.
	NextHop6 netip.Addr
	// Peers are the routers to announce the VIPs to. At least one.
	Peers []Peer
	// Communities are attached to every announced route, each "ASN:value"
	// (both 16-bit decimal) or one of the well-known names "no-export",
	// "no-advertise", "no-export-subconfed".
	Communities []string
	// HoldTime is proposed to every peer, in whole seconds, 0 (default 9 s)
	// or at least 3 s. The keepalive interval is a third of it.
	HoldTime time.Duration
}

// Peer is one BGP neighbour.
type Peer struct {
	Address netip.Addr
	AS      uint32
	// Port is the peer's BGP port for outgoing connections; 0 means 179.
	Port uint16
	// Passive peers are never dialled; they must connect to ListenPort.
	Passive bool
	// Password enables TCP MD5 signatures (RFC 2385) on the session.
	Password string
}

// settings is a validated Config in the form the rest of the package uses.
type settings struct {
	Config
	communities []uint32
	holdSecs    uint64
}

// validate checks cfg and fills in defaults. Every error names the field.
func validate(cfg Config) (settings, error) {
	st := settings{Config: cfg}
	// Copies, so that the caller mutating its slices later cannot change a
	// running Speaker.
	st.ListenAddrs = append([]netip.Addr(nil), cfg.ListenAddrs...)
	st.Peers = append([]Peer(nil), cfg.Peers...)
	st.Communities = append([]string(nil), cfg.Communities...)

	if err := checkAS(cfg.LocalAS); err != nil {
		return settings{}, fmt.Errorf("bgp: local AS: %w", err)
	}
	if !cfg.RouterID.Is4() {
		return settings{}, fmt.Errorf("bgp: router id %q: must be an IPv4 address", addrString(cfg.RouterID))
	}
	if cfg.RouterID.IsUnspecified() || cfg.RouterID.IsMulticast() || cfg.RouterID == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return settings{}, fmt.Errorf("bgp: router id %s: must be a unicast address", cfg.RouterID)
	}
	if cfg.ListenPort < -1 || cfg.ListenPort > 65535 {
		return settings{}, fmt.Errorf("bgp: listen port %d: must be -1 (no listening), 0 (179) or 1-65535", cfg.ListenPort)
	}
	if cfg.ListenPort == 0 {
		st.ListenPort = DefaultPort
	}
	if cfg.ListenPort == -1 && len(cfg.ListenAddrs) > 0 {
		return settings{}, errors.New("bgp: listen addresses given with listen port -1 (no listening)")
	}
	listen4, listen6 := cfg.ListenPort != -1, cfg.ListenPort != -1
	if len(cfg.ListenAddrs) > 0 {
		listen4, listen6 = false, false
	}
	seen := make(map[netip.Addr]bool, len(cfg.ListenAddrs))
	for _, a := range cfg.ListenAddrs {
		if err := checkUnicast(a); err != nil && !a.IsUnspecified() {
			return settings{}, fmt.Errorf("bgp: listen address %q: %w", addrString(a), err)
		}
		if seen[a] {
			return settings{}, fmt.Errorf("bgp: listen address %s: listed twice", a)
		}
		seen[a] = true
		listen4 = listen4 || a.Is4()
		listen6 = listen6 || a.Is6()
	}

	switch {
	case !cfg.NextHop.IsValid():
		st.NextHop = cfg.RouterID
	case !cfg.NextHop.Is4():
		return settings{}, fmt.Errorf("bgp: next hop %s: must be an IPv4 address (IPv6 goes in NextHop6)", cfg.NextHop)
	default:
		if err := checkUnicast(cfg.NextHop); err != nil {
			return settings{}, fmt.Errorf("bgp: next hop %s: %w", cfg.NextHop, err)
		}
	}
	if cfg.NextHop6.IsValid() {
		if !cfg.NextHop6.Is6() || cfg.NextHop6.Is4In6() {
			return settings{}, fmt.Errorf("bgp: next hop6 %s: must be an IPv6 address", cfg.NextHop6)
		}
		if err := checkUnicast(cfg.NextHop6); err != nil {
			return settings{}, fmt.Errorf("bgp: next hop6 %s: %w", cfg.NextHop6, err)
		}
		if cfg.NextHop6.IsLinkLocalUnicast() {
			// RFC 2545 wants a global address, optionally followed by a
			// link-local one; a lone link-local next hop is unusable.
			return settings{}, fmt.Errorf("bgp: next hop6 %s: must be a global address, not link-local", cfg.NextHop6)
		}
	}

	if len(cfg.Peers) == 0 {
		return settings{}, errors.New("bgp: no peers")
	}
	peers := make(map[netip.Addr]bool, len(cfg.Peers))
	for i, p := range cfg.Peers {
		if err := checkUnicast(p.Address); err != nil {
			return settings{}, fmt.Errorf("bgp: peer %d address %q: %w", i, addrString(p.Address), err)
		}
		if p.Address.IsLinkLocalUnicast() {
			return settings{}, fmt.Errorf("bgp: peer %s: link-local peers are not supported", p.Address)
		}
		if peers[p.Address] {
			// gobgp keys neighbours by address alone.
			return settings{}, fmt.Errorf("bgp: peer %s: listed twice", p.Address)
		}
		peers[p.Address] = true
		if err := checkAS(p.AS); err != nil {
			return settings{}, fmt.Errorf("bgp: peer %s AS: %w", p.Address, err)
		}
		if len(p.Password) > maxMD5KeyLen {
			return settings{}, fmt.Errorf("bgp: peer %s password: %d bytes, TCP MD5 allows at most %d", p.Address, len(p.Password), maxMD5KeyLen)
		}
		if p.Passive {
			if cfg.ListenPort == -1 {
				return settings{}, fmt.Errorf("bgp: peer %s is passive but listen port is -1: the session could never come up", p.Address)
			}
			if (p.Address.Is4() && !listen4) || (p.Address.Is6() && !listen6) {
				return settings{}, fmt.Errorf("bgp: peer %s is passive but no listen address is of its address family", p.Address)
			}
		}
		if p.Port == 0 {
			st.Peers[i].Port = DefaultPort
		}
	}

	for _, c := range cfg.Communities {
		v, err := parseCommunity(c)
		if err != nil {
			return settings{}, fmt.Errorf("bgp: community %q: %w", c, err)
		}
		st.communities = append(st.communities, v)
	}

	switch h := cfg.HoldTime; {
	case h == 0:
		st.HoldTime = DefaultHoldTime
	case h%time.Second != 0:
		return settings{}, fmt.Errorf("bgp: hold time %v: must be whole seconds", h)
	case h < 3*time.Second || h > 65535*time.Second:
		return settings{}, fmt.Errorf("bgp: hold time %v: must be between 3s and 65535s (RFC 4271)", h)
	}
	st.holdSecs = uint64(st.HoldTime / time.Second)
	return st, nil
}

// checkAS rejects AS numbers that must not appear in a session: 0 (RFC
// 7607), AS_TRANS (RFC 6793) and the last 16- and 32-bit ASNs (RFC 7300).
func checkAS(as uint32) error {
	switch as {
	case 0:
		return errors.New("0 is not a valid AS number")
	case 23456:
		return errors.New("23456 is AS_TRANS, reserved")
	case 65535, 4294967295:
		return fmt.Errorf("%d is reserved", as)
	}
	return nil
}

func checkUnicast(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return errors.New("not set")
	case a.Zone() != "":
		return errors.New("zoned addresses are not supported")
	case a.Is4In6():
		return errors.New("IPv4-mapped IPv6 address: use the IPv4 form")
	case a.IsUnspecified():
		return errors.New("unspecified address")
	case a.IsMulticast():
		return errors.New("multicast address")
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return errors.New("broadcast address")
	}
	return nil
}

// addrString prints the zero Addr as empty rather than "invalid IP".
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// parseCommunity parses an RFC 1997 community written "ASN:value".
func parseCommunity(s string) (uint32, error) {
	switch strings.ToLower(s) { // RFC 1997 well-known communities
	case "no-export":
		return 0xFFFFFF01, nil
	case "no-advertise":
		return 0xFFFFFF02, nil
	case "no-export-subconfed":
		return 0xFFFFFF03, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		return 0, errors.New(`want "ASN:value" or a well-known name`)
	}
	h, err := strconv.ParseUint(hi, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("ASN part %q: want 0-65535", hi)
	}
	l, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("value part %q: want 0-65535", lo)
	}
	return uint32(h)<<16 | uint32(l), nil
}

// formatCommunity is the inverse of parseCommunity for numeric communities;
// well-known ones are printed numerically too, so that values compare
// simply.
func formatCommunity(c uint32) string {
	return strconv.FormatUint(uint64(c>>16), 10) + ":" + strconv.FormatUint(uint64(c&0xffff), 10)
}
