package config

import (
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"time"
)

// BGP announces the director's VIPs as host routes to routers, so that
// several directors behind a router share traffic by ECMP (scale-out), and
// a director that fails or drains loses its share.
//
//	[bgp]
//	local_as = 65001
//	router_id = "198.18.0.2"
//	hold_time = "3s"              # default 9s
//	communities = ["65000:100"]
//	  [[bgp.peer]]
//	  address = "198.18.0.254"
//	  as = 65000
type BGP struct {
	LocalAS     uint32
	RouterID    netip.Addr // IPv4
	NextHop     netip.Addr // for IPv4 VIPs; default the router id
	NextHop6    netip.Addr // for IPv6 VIPs
	ListenPort  int        // 179 by default; -1: connect out only
	HoldTime    time.Duration
	Communities []string
	Peers       []BGPPeer
	Line        int
}

// BGPPeer is a router the director peers with.
type BGPPeer struct {
	Address  netip.Addr
	AS       uint32
	Port     uint16 // default 179
	Passive  bool
	Password string // TCP MD5: inline (password), or read from PasswordFile (password_file)
	// PasswordFile is the absolute path Password was read from; "" when
	// inline.
	PasswordFile string
	Line         int
}

// DefaultBGPHoldTime is short, so that a dead director's routes go fast.
const DefaultBGPHoldTime = 9 * time.Second

var communityRE = regexp.MustCompile(`^\d{1,5}:\d{1,5}$`)

func (d *decoder) bgp(t *tomlTable) *BGP {
	b := &BGP{HoldTime: DefaultBGPHoldTime, ListenPort: 179, Line: d.lines.lineOf(t.path)}
	t.require("local_as")
	if n, ok := t.integer("local_as", 1, math.MaxUint32); ok {
		b.LocalAS = uint32(n)
	}
	t.require("router_id")
	if s, ok := t.str("router_id"); ok {
		if a, err := netip.ParseAddr(s); err != nil || !a.Is4() {
			t.errorf("router_id", "%q is not an IPv4 address", s)
		} else {
			b.RouterID = a
		}
	}
	for _, k := range []struct {
		key string
		dst *netip.Addr
		v4  bool
	}{{"next_hop", &b.NextHop, true}, {"next_hop6", &b.NextHop6, false}} {
		if s, ok := t.str(k.key); ok {
			if a, err := netip.ParseAddr(s); err != nil || a.Is4() != k.v4 {
				t.errorf(k.key, "%q is not an %s address", s, map[bool]string{true: "IPv4", false: "IPv6"}[k.v4])
			} else {
				*k.dst = a
			}
		}
	}
	if n, ok := t.integer("listen_port", -1, math.MaxUint16); ok {
		b.ListenPort = int(n)
	}
	if v, ok := t.duration("hold_time"); ok {
		if v < 3*time.Second {
			t.errorf("hold_time", "%v is below BGP's minimum of 3s", v)
		}
		b.HoldTime = v
	}
	t.array("communities", func(_ int, v any) string {
		s, ok := v.(string)
		if !ok || !communityRE.MatchString(s) {
			return fmt.Sprintf("%v is not a community \"AS:value\"", v)
		}
		b.Communities = append(b.Communities, s)
		return ""
	})
	t.require("peer")
	if ps, ok := t.list("peer", keysOf("bgp.peer")...); ok {
		for _, pt := range ps {
			p := BGPPeer{Port: 179, Line: d.lines.lineOf(pt.path)}
			pt.require("address")
			if s, ok := pt.str("address"); ok {
				if a, err := netip.ParseAddr(s); err != nil {
					pt.errorf("address", "%q is not an IP address", s)
				} else {
					p.Address = a
				}
			}
			pt.require("as")
			if n, ok := pt.integer("as", 1, math.MaxUint32); ok {
				p.AS = uint32(n)
			}
			if n, ok := pt.integer("port", 1, math.MaxUint16); ok {
				p.Port = uint16(n)
			}
			if b, ok := pt.boolean("passive"); ok {
				p.Passive = b
			}
			if pt.has("password_file") || pt.has("password") {
				p.Password, p.PasswordFile = pt.password()
			}
			pt.done()
			b.Peers = append(b.Peers, p)
		}
	}
	t.done()
	return b
}

// password reads a peer's TCP MD5 password, inline or from
// password_file (any length: it is the router's).
func (t *tomlTable) password() (string, string) {
	if t.has("password") && t.has("password_file") {
		t.errorf("password_file", "set together with password: give the password inline or in a file, not both")
		return "", ""
	}
	if path, ok := t.str("password_file"); ok {
		s, abs, msg := secretFile(t.d.file, path)
		if msg != "" {
			t.errorf("password_file", "%q %s", path, msg)
		}
		return s, abs
	}
	s, _ := t.str("password")
	return s, ""
}

func writeBGP(w func(string, ...any), b *BGP) {
	if b == nil {
		return
	}
	w("\n[bgp]\nlocal_as = %d\nrouter_id = %q\n", b.LocalAS, b.RouterID.String())
	if b.NextHop.IsValid() {
		w("next_hop = %q\n", b.NextHop.String())
	}
	if b.NextHop6.IsValid() {
		w("next_hop6 = %q\n", b.NextHop6.String())
	}
	w("listen_port = %d\nhold_time = %q\n", b.ListenPort, dur(b.HoldTime))
	if len(b.Communities) > 0 {
		w("communities = %s\n", strList(b.Communities))
	}
	for _, p := range b.Peers {
		w("  [[bgp.peer]]\n  address = %q\n  as = %d\n  port = %d\n", p.Address.String(), p.AS, p.Port)
		if p.Passive {
			w("  passive = true\n")
		}
		if p.Password != "" {
			w("  %s\n", secretLine("password", p.Password, p.PasswordFile))
		}
	}
}
