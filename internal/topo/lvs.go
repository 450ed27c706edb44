package topo

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Addresses of the LVS setups, from 198.18.0.0/15 (reserved for
// benchmarking): the client network is 198.18.0.0/24, the NAT real-server
// network 198.19.0.0/24.
var (
	VIP        = netip.MustParseAddr("198.18.0.100")
	ClientIP   = netip.MustParseAddr("198.18.0.1")
	DirectorIP = netip.MustParseAddr("198.18.0.2")
	// DR: the real servers sit on the client segment.
	DRReals = []netip.Addr{netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("198.18.0.12")}
	// NAT: the real servers sit behind the director.
	NATGateway = netip.MustParseAddr("198.19.0.1")
	NATReals   = []netip.Addr{netip.MustParseAddr("198.19.0.11"), netip.MustParseAddr("198.19.0.12")}
)

// LVS is one of the seed's setups: a client, a director and two real servers.
type LVS struct {
	*Lab
	Client, Director string   // namespaces
	Reals            []string // namespaces of rs1, rs2
	RealIPs          []netip.Addr
	// DirectorIfs are the director's interfaces: one for DR, client side
	// then real-server side for NAT.
	DirectorIfs []string
}

// NewDR builds LVS-DR (seed section 4.1): client, director, rs1 and rs2
// on one L2 segment (a bridge in its own namespace). The VIP is on the
// director's interface; the real servers hold it on lo and neither answer nor
// announce ARP for it (arp_ignore=1, arp_announce=2).
func NewDR(log io.Writer) (*LVS, error) {
	lab, err := NewLab(log)
	if err != nil {
		return nil, err
	}
	t := &LVS{Lab: lab, RealIPs: DRReals}
	if err := t.buildDR(); err != nil {
		return nil, errors.Join(err, t.Close())
	}
	return t, nil
}

func (t *LVS) buildDR() error {
	br, err := t.AddNS("br")
	if err != nil {
		return err
	}
	brDev := t.Name("br")
	if err := t.In(br, "ip", "link", "add", brDev, "type", "bridge"); err != nil {
		return err
	}
	if err := t.In(br, "ip", "link", "set", brDev, "up"); err != nil {
		return err
	}
	// attach makes namespace role with one interface on the bridge.
	attach := func(role string, addr netip.Addr) (ns, ifname string, err error) {
		if ns, err = t.AddNS(role); err != nil {
			return
		}
		ifname, port := t.Name(role+"0"), t.Name("b"+role)
		if err = t.Veth(ns, ifname, br, port); err != nil {
			return
		}
		if err = t.In(br, "ip", "link", "set", port, "master", brDev); err != nil {
			return
		}
		err = t.In(ns, "ip", "addr", "add", addr.String()+"/24", "dev", ifname)
		return
	}
	var ifname string
	if t.Client, ifname, err = attach("c", ClientIP); err != nil {
		return err
	}
	if err := t.NoTxChecksum(t.Client, ifname); err != nil {
		return err
	}
	if t.Director, ifname, err = attach("d", DirectorIP); err != nil {
		return err
	}
	t.DirectorIfs = []string{ifname}
	if err := t.In(t.Director, "ip", "addr", "add", VIP.String()+"/32", "dev", ifname); err != nil {
		return err
	}
	for i, rip := range DRReals {
		ns, ifname, err := attach(fmt.Sprintf("r%d", i+1), rip)
		if err != nil {
			return err
		}
		t.Reals = append(t.Reals, ns)
		if err := t.NoTxChecksum(ns, ifname); err != nil {
			return err
		}
		if err := t.realServerDR(ns); err != nil {
			return err
		}
	}
	return nil
}

// realServerDR is the seed's lvsDR_realserver_setup.sh: the VIP on lo, and
// ARP for it neither answered nor announced.
func (t *LVS) realServerDR(ns string) error {
	for _, kv := range [][2]string{
		{"net.ipv4.conf.all.arp_ignore", "1"},
		{"net.ipv4.conf.all.arp_announce", "2"},
		{"net.ipv4.conf.lo.arp_ignore", "1"},
		{"net.ipv4.conf.lo.arp_announce", "2"},
	} {
		if err := t.Sysctl(ns, kv[0], kv[1]); err != nil {
			return err
		}
	}
	return t.In(ns, "ip", "addr", "add", VIP.String()+"/32", "dev", "lo")
}

// NewNAT builds LVS-NAT (seed section 4.2): the client on one director
// interface, the real servers on a second segment behind the other, with
// their default route through the director.
func NewNAT(log io.Writer) (*LVS, error) {
	lab, err := NewLab(log)
	if err != nil {
		return nil, err
	}
	t := &LVS{Lab: lab, RealIPs: NATReals}
	if err := t.buildNAT(); err != nil {
		return nil, errors.Join(err, t.Close())
	}
	return t, nil
}

func (t *LVS) buildNAT() error {
	var err error
	if t.Client, err = t.AddNS("c"); err != nil {
		return err
	}
	if t.Director, err = t.AddNS("d"); err != nil {
		return err
	}
	clientIf, dirClientIf := t.Name("c0"), t.Name("dc")
	if err := t.Veth(t.Client, clientIf, t.Director, dirClientIf); err != nil {
		return err
	}
	if err := t.NoTxChecksum(t.Client, clientIf); err != nil {
		return err
	}
	if err := t.In(t.Client, "ip", "addr", "add", ClientIP.String()+"/24", "dev", clientIf); err != nil {
		return err
	}
	if err := t.In(t.Director, "ip", "addr", "add", DirectorIP.String()+"/24", "dev", dirClientIf); err != nil {
		return err
	}
	if err := t.In(t.Director, "ip", "addr", "add", VIP.String()+"/32", "dev", dirClientIf); err != nil {
		return err
	}

	br, err := t.AddNS("br")
	if err != nil {
		return err
	}
	brDev := t.Name("br")
	if err := t.In(br, "ip", "link", "add", brDev, "type", "bridge"); err != nil {
		return err
	}
	if err := t.In(br, "ip", "link", "set", brDev, "up"); err != nil {
		return err
	}
	dirRealIf := t.Name("dr")
	if err := t.Veth(t.Director, dirRealIf, br, t.Name("bd")); err != nil {
		return err
	}
	if err := t.In(br, "ip", "link", "set", t.Name("bd"), "master", brDev); err != nil {
		return err
	}
	if err := t.In(t.Director, "ip", "addr", "add", NATGateway.String()+"/24", "dev", dirRealIf); err != nil {
		return err
	}
	t.DirectorIfs = []string{dirClientIf, dirRealIf}
	for i, rip := range NATReals {
		role := fmt.Sprintf("r%d", i+1)
		ns, err := t.AddNS(role)
		if err != nil {
			return err
		}
		t.Reals = append(t.Reals, ns)
		ifname, port := t.Name(role+"0"), t.Name("b"+role)
		if err := t.Veth(ns, ifname, br, port); err != nil {
			return err
		}
		if err := t.In(br, "ip", "link", "set", port, "master", brDev); err != nil {
			return err
		}
		if err := t.NoTxChecksum(ns, ifname); err != nil {
			return err
		}
		if err := t.In(ns, "ip", "addr", "add", rip.String()+"/24", "dev", ifname); err != nil {
			return err
		}
		// lvsNAT_realserver_setup.sh: the director is the default gateway.
		if err := t.In(ns, "ip", "route", "add", "default", "via", NATGateway.String()); err != nil {
			return err
		}
	}
	return nil
}
