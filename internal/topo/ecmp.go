package topo

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// The scale-out test bed: a client network, a router, and a segment with
// several directors and the real servers. The router runs BIRD, peers with
// every director over BGP and spreads flows to the VIP over them by ECMP
// with an L4 hash.
var (
	ECMPVIP      = netip.MustParseAddr("198.18.2.100")
	ECMPClient   = netip.MustParseAddr("198.18.1.1")
	ECMPRouterC  = netip.MustParseAddr("198.18.1.254") // the router on the client network
	ECMPRouter   = netip.MustParseAddr("198.18.0.254") // the router on the directors' segment
	ECMPRouterAS = 65000
	ECMPLocalAS  = 65001
)

// ECMPDirector returns director i's address on the segment.
func ECMPDirector(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(2 + i)}) }

// ECMP is the test bed.
type ECMP struct {
	*LVS
	Router    string   // namespace
	Directors []string // namespaces, one per director
	DirIfs    []string // each director's interface
	bird      *Proc
	birdSock  string
}

// NewECMP builds the bed with n directors and two real servers (DR) on
// the directors' segment.
func NewECMP(log io.Writer, n int) (*ECMP, error) {
	lab, err := NewLab(log)
	if err != nil {
		return nil, err
	}
	e := &ECMP{LVS: &LVS{Lab: lab, RealIPs: DRReals, Mode: "dr"}}
	if err := e.build(n); err != nil {
		return nil, errors.Join(err, e.Close())
	}
	return e, nil
}

func (e *ECMP) build(n int) error {
	var err error
	if e.Client, err = e.AddNS("c"); err != nil {
		return err
	}
	if e.Router, err = e.AddNS("rt"); err != nil {
		return err
	}
	cIf, rcIf := e.Name("c0"), e.Name("rc")
	if err := e.Veth(e.Client, cIf, e.Router, rcIf); err != nil {
		return err
	}
	if err := e.addAddr(e.Client, cIf, ECMPClient, 24); err != nil {
		return err
	}
	if err := e.In(e.Client, "ip", "route", "add", "default", "via", ECMPRouterC.String()); err != nil {
		return err
	}
	if err := e.addAddr(e.Router, rcIf, ECMPRouterC, 24); err != nil {
		return err
	}
	for _, kv := range [][2]string{{"net.ipv4.ip_forward", "1"}, {"net.ipv4.fib_multipath_hash_policy", "1"}} {
		if err := e.Sysctl(e.Router, kv[0], kv[1]); err != nil {
			return err
		}
	}
	br, err := e.AddNS("br")
	if err != nil {
		return err
	}
	brDev := e.Name("br")
	if err := e.In(br, "ip", "link", "add", brDev, "type", "bridge"); err != nil {
		return err
	}
	if err := e.In(br, "ip", "link", "set", brDev, "up"); err != nil {
		return err
	}
	e.bridgeIsWire(br)
	attach := func(ns, ifname, port string, addr netip.Addr) error {
		if err := e.Veth(ns, ifname, br, port); err != nil {
			return err
		}
		if err := e.In(br, "ip", "link", "set", port, "master", brDev); err != nil {
			return err
		}
		return e.addAddr(ns, ifname, addr, 24)
	}
	rbIf := e.Name("rb")
	if err := attach(e.Router, rbIf, e.Name("brt"), ECMPRouter); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		role := fmt.Sprintf("d%d", i+1)
		ns, err := e.AddNS(role)
		if err != nil {
			return err
		}
		ifname := e.Name(role + "0")
		if err := attach(ns, ifname, e.Name("b"+role), ECMPDirector(i)); err != nil {
			return err
		}
		e.Directors = append(e.Directors, ns)
		e.DirIfs = append(e.DirIfs, ifname)
	}
	e.Director, e.DirectorIfs = e.Directors[0], e.DirIfs[:1]
	for i, rip := range DRReals {
		role := fmt.Sprintf("r%d", i+1)
		ns, err := e.AddNS(role)
		if err != nil {
			return err
		}
		ifname := e.Name(role + "0")
		if err := attach(ns, ifname, e.Name("b"+role), rip); err != nil {
			return err
		}
		if err := e.In(ns, "ip", "route", "add", "default", "via", ECMPRouter.String()); err != nil {
			return err
		}
		e.Reals = append(e.Reals, ns)
		e.RealIfs = append(e.RealIfs, ifname)
	}
	return nil
}

// SetupRealServers puts the test bed's VIP on the real servers (DR).
func (e *ECMP) SetupRealServers(bin Binaries) error {
	for i, ns := range e.Reals {
		if err := e.In(ns, bin.Xvsadm, "realserver", "dr", "--vip", ECMPVIP.String(), "--interface", e.RealIfs[i],
			"--state", e.StatePath(fmt.Sprintf("rs%d", i+1))); err != nil {
			return err
		}
	}
	e.setUp = true
	return nil
}

// StartRouter starts BIRD in the router's namespace, peering with every
// director with the given hold time (seconds), exporting what it learns to
// the kernel as multipath routes.
func (e *ECMP) StartRouter(dir string, hold int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "router id %s;\nlog stderr all;\nprotocol device { }\n", ECMPRouter)
	b.WriteString("protocol kernel { ipv4 { import none; export all; }; merge paths on; }\n")
	fmt.Fprintf(&b, "template bgp director { local %s as %d; ipv4 { import all; export none; }; hold time %d; keepalive time 1; connect retry time 1; error wait time 1, 2; }\n",
		ECMPRouter, ECMPRouterAS, hold)
	for i := range e.Directors {
		fmt.Fprintf(&b, "protocol bgp d%d from director { neighbor %s as %d; }\n", i+1, ECMPDirector(i), ECMPLocalAS)
	}
	conf := filepath.Join(dir, e.Name("-bird.conf"))
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return err
	}
	e.birdSock = filepath.Join(dir, e.Name("-bird.ctl"))
	p, err := e.Start(e.Router, "bird", "-f", "-c", conf, "-s", e.birdSock, "-P", filepath.Join(dir, e.Name("-bird.pid")))
	if err != nil {
		return err
	}
	e.bird = p
	return nil
}

// Birdc runs a BIRD client command against the router.
func (e *ECMP) Birdc(args ...string) (string, error) {
	return e.Output(e.Router, append([]string{"birdc", "-s", e.birdSock}, args...)...)
}

// NextHops returns the router's kernel next hops for the VIP.
func (e *ECMP) NextHops() ([]string, error) {
	out, err := e.Output(e.Router, "ip", "route", "show", ECMPVIP.String()+"/32")
	if err != nil {
		return nil, err
	}
	var hops []string
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "via" {
			hops = append(hops, f[i+1])
		}
	}
	return hops, nil
}
