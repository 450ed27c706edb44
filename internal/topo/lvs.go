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
	// FullNAT: the director's local address on the real-server network.
	LocalIP = netip.MustParseAddr("198.19.0.2")

	// The same setups over IPv6, from fd00::/8.
	VIP6        = netip.MustParseAddr("fd00:18::100")
	ClientIP6   = netip.MustParseAddr("fd00:18::1")
	DirectorIP6 = netip.MustParseAddr("fd00:18::2")
	DRReals6    = []netip.Addr{netip.MustParseAddr("fd00:18::11"), netip.MustParseAddr("fd00:18::12")}
	NATGateway6 = netip.MustParseAddr("fd00:19::1")
	NATReals6   = []netip.Addr{netip.MustParseAddr("fd00:19::11"), netip.MustParseAddr("fd00:19::12")}
	LocalIP6    = netip.MustParseAddr("fd00:19::2")
)

// addAddr puts addr/bits on ifname in ns; IPv6 addresses skip duplicate
// address detection, so they are usable at once.
func (l *Lab) addAddr(ns, ifname string, addr netip.Addr, bits int) error {
	args := []string{"ip", "addr", "add", netip.PrefixFrom(addr, bits).String(), "dev", ifname}
	if addr.Is6() {
		args = append(args, "nodad")
	}
	return l.In(ns, args...)
}

// LVS is one of the seed's setups: a client, a director and two real servers.
type LVS struct {
	*Lab
	Client, Director string   // namespaces
	Reals            []string // namespaces of rs1, rs2
	RealIPs          []netip.Addr
	// DirectorIfs are the director's interfaces: one for DR, client side
	// then real-server side for NAT.
	DirectorIfs []string
	// Socket is the control socket of the director StartDirector started.
	Socket string
	// RealProcs are the servers StartRealServers started, rs1 first.
	RealProcs []*Proc
	// Mode is the forwarding method the real servers are set up for
	// ("dr", "tun", "nat", "fullnat"), and RealIfs their interfaces.
	Mode    string
	RealIfs []string
	nics    bool // BehindRealNICs and PeersWithNAPI done for FastPathRun
	// ClientIfs are the client's interfaces.
	ClientIfs []string
	// DirectorPeers are the far ends of the director's veths: namespace
	// and interface.
	DirectorPeers [][2]string
	setUp         bool
}

// NewDR builds LVS-DR (seed section 4.1): client, director, rs1 and rs2
// on one L2 segment (a bridge in its own namespace). The VIP is on the
// director's interface; the real servers hold it on lo and neither answer nor
// announce ARP for it (arp_ignore=1, arp_announce=2).
func NewDR(log io.Writer) (*LVS, error) { return newL2(log, "dr") }

// NewTUN builds LVS-TUN on NewDR's segment: the director reaches the real
// servers by IPIP (IPv6-in-IPv6), and they decapsulate with xvs's XDP
// decapsulator (this kernel has no ipip module), hold the VIP on lo and
// answer the client directly.
func NewTUN(log io.Writer) (*LVS, error) { return newL2(log, "tun") }

func newL2(log io.Writer, mode string) (*LVS, error) {
	lab, err := NewLab(log)
	if err != nil {
		return nil, err
	}
	t := &LVS{Lab: lab, RealIPs: DRReals, Mode: mode}
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
	t.bridgeIsWire(br)
	// attach makes namespace role with one interface on the bridge.
	attach := func(role string, addr, addr6 netip.Addr) (ns, ifname string, err error) {
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
		if err = t.addAddr(ns, ifname, addr, 24); err != nil {
			return
		}
		err = t.addAddr(ns, ifname, addr6, 64)
		return
	}
	var ifname string
	if t.Client, ifname, err = attach("c", ClientIP, ClientIP6); err != nil {
		return err
	}
	t.ClientIfs = []string{ifname}
	if t.Director, ifname, err = attach("d", DirectorIP, DirectorIP6); err != nil {
		return err
	}
	t.DirectorIfs = []string{ifname}
	t.DirectorPeers = [][2]string{{br, t.Name("bd")}}
	if err := t.addAddr(t.Director, ifname, VIP, 32); err != nil {
		return err
	}
	if err := t.addAddr(t.Director, ifname, VIP6, 128); err != nil {
		return err
	}
	for i, rip := range DRReals {
		ns, ifname, err := attach(fmt.Sprintf("r%d", i+1), rip, DRReals6[i])
		if err != nil {
			return err
		}
		t.Reals = append(t.Reals, ns)
		t.RealIfs = append(t.RealIfs, ifname)
	}
	return nil
}

// NewNAT builds LVS-NAT (seed section 4.2): the client on one director
// interface, the real servers on a second segment behind the other, with
// their default route through the director.
func NewNAT(log io.Writer) (*LVS, error) { return newNAT(log, false, 1) }

// NewNATQueues is NewNAT with queues RX and TX queues on both of the
// director's veths (and their peers), one worker per queue: what a
// multi-queue NIC gives a director. Which queue a frame arrives on is the
// queue its sender transmitted it on (PinQueue steers that).
func NewNATQueues(log io.Writer, queues int) (*LVS, error) { return newNAT(log, false, queues) }

// NewFullNAT builds DPVS's FullNAT setup: NAT's two networks, but the real
// servers have no route to the client network at all; the director holds
// local addresses (LocalIP, LocalIP6) on the real-server network, and
// connections reach the real servers from those.
func NewFullNAT(log io.Writer) (*LVS, error) { return newNAT(log, true, 1) }

func newNAT(log io.Writer, fullnat bool, queues int) (*LVS, error) {
	lab, err := NewLab(log)
	if err != nil {
		return nil, err
	}
	t := &LVS{Lab: lab, RealIPs: NATReals, Mode: "nat"}
	if fullnat {
		t.Mode = "fullnat"
	}
	if err := t.buildNAT(fullnat, queues); err != nil {
		return nil, errors.Join(err, t.Close())
	}
	return t, nil
}

func (t *LVS) buildNAT(fullnat bool, queues int) error {
	var err error
	if t.Client, err = t.AddNS("c"); err != nil {
		return err
	}
	if t.Director, err = t.AddNS("d"); err != nil {
		return err
	}
	clientIf, dirClientIf := t.Name("c0"), t.Name("dc")
	if err := t.VethQueues(t.Client, clientIf, t.Director, dirClientIf, queues); err != nil {
		return err
	}
	t.ClientIfs = []string{clientIf}
	for _, a := range []struct {
		ns, ifname string
		addr       netip.Addr
		bits       int
	}{
		{t.Client, clientIf, ClientIP, 24}, {t.Client, clientIf, ClientIP6, 64},
		{t.Director, dirClientIf, DirectorIP, 24}, {t.Director, dirClientIf, DirectorIP6, 64},
		{t.Director, dirClientIf, VIP, 32}, {t.Director, dirClientIf, VIP6, 128},
	} {
		if err := t.addAddr(a.ns, a.ifname, a.addr, a.bits); err != nil {
			return err
		}
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
	t.bridgeIsWire(br)
	dirRealIf := t.Name("dr")
	if err := t.VethQueues(t.Director, dirRealIf, br, t.Name("bd"), queues); err != nil {
		return err
	}
	if err := t.In(br, "ip", "link", "set", t.Name("bd"), "master", brDev); err != nil {
		return err
	}
	if err := t.addAddr(t.Director, dirRealIf, NATGateway, 24); err != nil {
		return err
	}
	if err := t.addAddr(t.Director, dirRealIf, NATGateway6, 64); err != nil {
		return err
	}
	if fullnat {
		if err := t.addAddr(t.Director, dirRealIf, LocalIP, 32); err != nil {
			return err
		}
		if err := t.addAddr(t.Director, dirRealIf, LocalIP6, 128); err != nil {
			return err
		}
	}
	t.DirectorIfs = []string{dirClientIf, dirRealIf}
	t.DirectorPeers = [][2]string{{t.Client, clientIf}, {br, t.Name("bd")}}
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
		if err := t.addAddr(ns, ifname, rip, 24); err != nil {
			return err
		}
		if err := t.addAddr(ns, ifname, NATReals6[i], 64); err != nil {
			return err
		}
		t.RealIfs = append(t.RealIfs, ifname)
	}
	return nil
}

// SetupRealServers makes each real server what its mode needs, with
// `xvsadm realserver` as an operator would (the seed's setup scripts):
// DR and TUN: the VIPs on lo without ARP for them (TUN: plus the
// decapsulator and rp_filter off); NAT: default routes through the
// director; FullNAT: nothing. Each change is recorded under the lab, and
// undone with the namespaces.
func (t *LVS) SetupRealServers(bin Binaries) error {
	if t.setUp {
		return nil
	}
	t.setUp = true
	for i, ns := range t.Reals {
		state := func(tag string) string { return t.StatePath(fmt.Sprintf("rs%d-%s", i+1, tag)) }
		var runs [][]string
		switch t.Mode {
		case "dr", "tun":
			runs = append(runs, []string{t.Mode, "--vip", VIP.String() + "," + VIP6.String(), "--interface", t.RealIfs[i], "--state", state("vip")})
		case "nat":
			runs = append(runs,
				[]string{"nat", "--director", NATGateway.String(), "--interface", t.RealIfs[i], "--state", state("v4")},
				[]string{"nat", "--director", NATGateway6.String(), "--interface", t.RealIfs[i], "--state", state("v6")})
		}
		for _, args := range runs {
			if err := t.In(ns, append([]string{bin.Xvsadm, "realserver"}, args...)...); err != nil {
				return err
			}
		}
	}
	return nil
}

// bridgeIsWire makes the bridge forward frames as a switch would: with
// br_netfilter loaded, the kernel otherwise validates (and drops) IP
// headers it bridges, which hides from the director what a wire would carry.
func (t *LVS) bridgeIsWire(ns string) {
	for _, k := range []string{"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables", "net.bridge.bridge-nf-call-arptables"} {
		_ = t.Sysctl(ns, k, "0") // absent without br_netfilter: nothing to turn off
	}
}

// BehindRealNICs makes the client and the real servers send what hosts
// behind physical NICs put on the wire: frames whose TCP and UDP checksums
// are complete (CompleteChecksums). The kernel's defaults, kept everywhere
// else, leave them partial, as every namespace and container does.
func (t *LVS) BehindRealNICs() error {
	for i, ns := range append([]string{t.Client}, t.Reals...) {
		ifs := t.ClientIfs
		if i > 0 {
			ifs = t.RealIfs[i-1 : i]
		}
		for _, ifname := range ifs {
			if err := t.CompleteChecksums(ns, ifname); err != nil {
				return err
			}
		}
	}
	return nil
}

// PeersWithNAPI gives the far ends of the director's veths the NAPI that
// frames sent by XDP (XDP_TX, redirects: the fast path) need to arrive: a
// veth without it drops them. GRO turns it on. This stands for a physical
// NIC, whose receive side always runs NAPI.
func (t *LVS) PeersWithNAPI() error {
	for _, p := range t.DirectorPeers {
		if err := t.In(p[0], "ethtool", "-K", p[1], "gro", "on"); err != nil {
			return err
		}
	}
	return nil
}

// PinQueue makes frames that ifname in ns sends from a process or softirq
// on cpu leave on TX queue queue (XPS): with veth, the queue they arrive on
// at the peer. It stands for a NIC's RSS steering a flow to a queue.
func (t *LVS) PinQueue(ns, ifname string, queue, cpu int) error {
	return t.In(ns, "sh", "-c", fmt.Sprintf("echo %x > /sys/class/net/%s/queues/tx-%d/xps_cpus", 1<<cpu, ifname, queue))
}
