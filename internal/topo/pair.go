package topo

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// The active/standby test bed (the seed's failover setup, without a
// router): two directors on the client network and on the real servers'
// network. The VIP and the real servers' gateway (NATGateway) float: the
// active director holds them.
var PairDirectors = [2][2]netip.Addr{
	{netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.19.0.3")},
	{netip.MustParseAddr("198.18.0.3"), netip.MustParseAddr("198.19.0.4")},
}

// Pair is the test bed.
type Pair struct {
	*LVS
	Directors [2]string    // namespaces
	Ifs       [2][2]string // per director: client side, real-server side
}

// NewPair builds it, real servers set up for NAT through the floating
// gateway.
func NewPair(log io.Writer) (*Pair, error) {
	lab, err := NewLab(log)
	if err != nil {
		return nil, err
	}
	p := &Pair{LVS: &LVS{Lab: lab, RealIPs: NATReals, Mode: "nat"}}
	if err := p.build(); err != nil {
		return nil, errors.Join(err, p.Close())
	}
	return p, nil
}

func (p *Pair) bridge(role string) (ns, dev string, err error) {
	if ns, err = p.AddNS(role); err != nil {
		return
	}
	dev = p.Name(role)
	if err = p.In(ns, "ip", "link", "add", dev, "type", "bridge"); err != nil {
		return
	}
	if err = p.In(ns, "ip", "link", "set", dev, "up"); err != nil {
		return
	}
	p.bridgeIsWire(ns)
	return
}

func (p *Pair) build() error {
	brc, brcDev, err := p.bridge("bc")
	if err != nil {
		return err
	}
	brr, brrDev, err := p.bridge("bs")
	if err != nil {
		return err
	}
	attach := func(ns, ifname, br, brDev, port string, addr netip.Addr) error {
		if err := p.Veth(ns, ifname, br, port); err != nil {
			return err
		}
		if err := p.In(br, "ip", "link", "set", port, "master", brDev); err != nil {
			return err
		}
		return p.addAddr(ns, ifname, addr, 24)
	}
	if p.Client, err = p.AddNS("c"); err != nil {
		return err
	}
	if err := attach(p.Client, p.Name("c0"), brc, brcDev, p.Name("pc"), ClientIP); err != nil {
		return err
	}
	for i := range p.Directors {
		role := fmt.Sprintf("d%d", i+1)
		ns, err := p.AddNS(role)
		if err != nil {
			return err
		}
		p.Directors[i] = ns
		p.Ifs[i] = [2]string{p.Name(role + "c"), p.Name(role + "r")}
		if err := attach(ns, p.Ifs[i][0], brc, brcDev, p.Name("p"+role+"c"), PairDirectors[i][0]); err != nil {
			return err
		}
		if err := attach(ns, p.Ifs[i][1], brr, brrDev, p.Name("p"+role+"r"), PairDirectors[i][1]); err != nil {
			return err
		}
	}
	p.Director, p.DirectorIfs = p.Directors[0], p.Ifs[0][:]
	for i, rip := range NATReals {
		role := fmt.Sprintf("r%d", i+1)
		ns, err := p.AddNS(role)
		if err != nil {
			return err
		}
		ifname := p.Name(role + "0")
		if err := attach(ns, ifname, brr, brrDev, p.Name("p"+role), rip); err != nil {
			return err
		}
		p.Reals = append(p.Reals, ns)
		p.RealIfs = append(p.RealIfs, ifname)
	}
	return nil
}

// SetupRealServers points the real servers' default route at the
// floating gateway.
func (p *Pair) SetupRealServers(bin Binaries) error {
	for i, ns := range p.Reals {
		if err := p.In(ns, bin.Xvsadm, "realserver", "nat", "--director", NATGateway.String(), "--interface", p.RealIfs[i],
			"--state", p.StatePath(fmt.Sprintf("rs%d", i+1))); err != nil {
			return err
		}
	}
	p.setUp = true
	return nil
}
