package topo

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Bench is the throughput benchmark's topology: three namespaces in a line,
//
//	generator (198.18.0.1) ── director (198.18.0.2, VIP | 198.19.0.1, .32-.63) ── real servers (198.19.0.11, .12)
//
// The generator namespace is also the latency client. The real-server
// namespace holds both real servers' addresses on one interface, so that a
// single sink counts what every real server receives; it also holds the VIP
// on lo without answering ARP for it, which makes the same wiring serve LVS-DR
// (real servers one L2 hop from the director), LVS-NAT (their default route
// is the director), LVS-TUN (any routable real server), FullNAT (the
// director's local addresses 198.19.0.32 to .63) and the kernel's nftables
// DNAT as well.
//
// Neighbour entries are static everywhere: a sink that drops every frame
// with XDP also drops ARP replies, and a benchmark should not measure ARP.
type Bench struct {
	*Lab
	Gen, Director, Real string // namespaces

	// GenIf faces DirGenIf; DirRealIf faces RealIf.
	GenIf, DirGenIf, DirRealIf, RealIf string
	// MACs of the four interfaces.
	GenMAC, DirGenMAC, DirRealMAC, RealMAC net.HardwareAddr

	GenIP   netip.Addr   // the generator's and latency client's address
	RealIPs []netip.Addr // both real servers, in the real-server namespace
	// LocalIPs are the director's addresses on the real servers' network
	// that FullNAT connections leave from (its local addresses).
	LocalIPs []netip.Addr
	// Queues is the number of queues of every veth (NewBenchQueues).
	Queues int
}

// BenchMTU is the MTU of the director's link to the real servers: room for
// a 1500-byte packet and a tunnel header (LVS-TUN), as on a real tunnel
// path. The generator's link keeps 1500.
const BenchMTU = 1600

// benchLocalIPs returns FullNAT's local addresses, 198.19.0.32 to .63: each
// gives a real-server port some 64 000 connections, and a SYN flood at full
// rate needs millions.
func benchLocalIPs() []netip.Addr {
	ips := make([]netip.Addr, 0, 32)
	for i := 32; i < 64; i++ {
		ips = append(ips, netip.AddrFrom4([4]byte{198, 19, 0, byte(i)}))
	}
	return ips
}

// NewBench builds the benchmark topology. Close removes it.
func NewBench(log io.Writer) (*Bench, error) { return NewBenchQueues(log, 1) }

// NewBenchQueues is NewBench with queues RX and TX queues on every veth, a
// director worker per queue, as a multi-queue NIC gives. A frame the
// generator sends arrives on the director's queue numbered after the CPU it
// was sent from (veth's ndo_xdp_xmit picks the peer's queue so), so one
// generator per CPU feeds one queue each.
func NewBenchQueues(log io.Writer, queues int) (*Bench, error) {
	lab, err := NewLab(log)
	if err != nil {
		return nil, err
	}
	b := &Bench{Lab: lab, GenIP: ClientIP, RealIPs: NATReals, LocalIPs: benchLocalIPs(), Queues: max(queues, 1)}
	if err := b.build(); err != nil {
		return nil, errors.Join(err, b.Close())
	}
	return b, nil
}

func (b *Bench) build() error {
	var err error
	if b.Gen, err = b.AddNS("g"); err != nil {
		return err
	}
	if b.Director, err = b.AddNS("d"); err != nil {
		return err
	}
	if b.Real, err = b.AddNS("r"); err != nil {
		return err
	}
	// IPv6 is off: router and neighbour solicitations would reach the
	// sinks as stray frames, and nothing here uses it.
	for _, ns := range []string{b.Gen, b.Director, b.Real} {
		if err := b.Sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1"); err != nil {
			return err
		}
		if err := b.Sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1"); err != nil {
			return err
		}
	}
	b.GenIf, b.DirGenIf = b.Name("g0"), b.Name("dg")
	b.DirRealIf, b.RealIf = b.Name("dr"), b.Name("r0")
	if err := b.VethQueues(b.Gen, b.GenIf, b.Director, b.DirGenIf, b.Queues); err != nil {
		return err
	}
	if err := b.VethQueues(b.Director, b.DirRealIf, b.Real, b.RealIf, b.Queues); err != nil {
		return err
	}
	for _, ifc := range []struct {
		ns, name string
		mac      *net.HardwareAddr
	}{
		{b.Gen, b.GenIf, &b.GenMAC},
		{b.Director, b.DirGenIf, &b.DirGenMAC},
		{b.Director, b.DirRealIf, &b.DirRealMAC},
		{b.Real, b.RealIf, &b.RealMAC},
	} {
		if *ifc.mac, err = b.MAC(ifc.ns, ifc.name); err != nil {
			return err
		}
		// Frames sent with XDP_TX, redirect or live frames vanish on a
		// veth whose receiving side has no NAPI; GRO gives it one even
		// when no XDP program is attached (the kernel baseline). This
		// stands for a real NIC, whose receive side always runs NAPI.
		if err := b.In(ifc.ns, "ethtool", "-K", ifc.name, "gro", "on"); err != nil {
			return err
		}
	}
	// The generator's and the real servers' hosts stand for hosts behind
	// physical NICs too: their frames (the latency client's, the echo
	// server's) carry complete checksums, as the generator's own do, so
	// that the fast path can carry them.
	for _, h := range [][2]string{{b.Gen, b.GenIf}, {b.Real, b.RealIf}} {
		if err := b.CompleteChecksums(h[0], h[1]); err != nil {
			return err
		}
	}

	cmds := []struct {
		ns   string
		args []string
	}{
		{b.Gen, []string{"ip", "addr", "add", ClientIP.String() + "/24", "dev", b.GenIf}},
		{b.Gen, []string{"ip", "route", "add", "198.19.0.0/24", "via", DirectorIP.String()}},
		{b.Director, []string{"ip", "addr", "add", DirectorIP.String() + "/24", "dev", b.DirGenIf}},
		{b.Director, []string{"ip", "addr", "add", VIP.String() + "/32", "dev", b.DirGenIf}},
		{b.Director, []string{"ip", "addr", "add", NATGateway.String() + "/24", "dev", b.DirRealIf}},
		{b.Director, []string{"ip", "link", "set", b.DirRealIf, "mtu", strconv.Itoa(BenchMTU)}},
		{b.Real, []string{"ip", "link", "set", b.RealIf, "mtu", strconv.Itoa(BenchMTU)}},
	}
	for _, lip := range b.LocalIPs {
		cmds = append(cmds, struct {
			ns   string
			args []string
		}{b.Director, []string{"ip", "addr", "add", lip.String() + "/24", "dev", b.DirRealIf}})
	}
	for _, rip := range b.RealIPs {
		cmds = append(cmds, struct {
			ns   string
			args []string
		}{b.Real, []string{"ip", "addr", "add", rip.String() + "/24", "dev", b.RealIf}})
	}
	// LVS-NAT: the director is the real servers' default gateway.
	cmds = append(cmds, struct {
		ns   string
		args []string
	}{b.Real, []string{"ip", "route", "add", "default", "via", NATGateway.String(), "dev", b.RealIf}})
	for _, c := range cmds {
		if err := b.In(c.ns, c.args...); err != nil {
			return err
		}
	}
	// The real servers hold the VIP as LVS-DR wants it (lo, no ARP).
	for _, kv := range [][2]string{
		{"net.ipv4.conf.all.arp_ignore", "1"},
		{"net.ipv4.conf.all.arp_announce", "2"},
		{"net.ipv4.conf.lo.arp_ignore", "1"},
		{"net.ipv4.conf.lo.arp_announce", "2"},
	} {
		if err := b.Sysctl(b.Real, kv[0], kv[1]); err != nil {
			return err
		}
	}
	if err := b.In(b.Real, "ip", "addr", "add", VIP.String()+"/32", "dev", "lo"); err != nil {
		return err
	}

	// Static neighbours, both ways on both links.
	neigh := func(ns, ifname string, addr netip.Addr, mac net.HardwareAddr) error {
		return b.In(ns, "ip", "neigh", "replace", addr.String(), "lladdr", mac.String(), "dev", ifname, "nud", "permanent")
	}
	if err := neigh(b.Gen, b.GenIf, DirectorIP, b.DirGenMAC); err != nil {
		return err
	}
	if err := neigh(b.Gen, b.GenIf, VIP, b.DirGenMAC); err != nil {
		return err
	}
	if err := neigh(b.Director, b.DirGenIf, ClientIP, b.GenMAC); err != nil {
		return err
	}
	for _, a := range append([]netip.Addr{NATGateway}, b.LocalIPs...) {
		if err := neigh(b.Real, b.RealIf, a, b.DirRealMAC); err != nil {
			return err
		}
	}
	for _, rip := range b.RealIPs {
		if err := neigh(b.Director, b.DirRealIf, rip, b.RealMAC); err != nil {
			return err
		}
	}
	return nil
}

// MAC returns the hardware address of ifname in namespace ns.
func (b *Bench) MAC(ns, ifname string) (net.HardwareAddr, error) {
	out, err := b.Output(ns, "cat", filepath.Join("/sys/class/net", ifname, "address"))
	if err != nil {
		return nil, err
	}
	mac, err := net.ParseMAC(strings.TrimSpace(out))
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", ifname, ns, err)
	}
	return mac, nil
}

// Forwarding turns IPv4 forwarding on or off in the director's namespace:
// on for the kernel baseline, off while xvs owns the data path so that a
// frame the director misses cannot slip through the kernel instead.
func (b *Bench) Forwarding(on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	return b.Sysctl(b.Director, "net.ipv4.ip_forward", v)
}

// ThreadedNAPI switches ifname in namespace ns to threaded NAPI and, when on
// and cpu >= 0, pins the NAPI kthread to cpu and gives it priority nice (as
// nice(1); 0 leaves it). That moves the receive processing of the interface
// (XDP programs, the kernel's forwarding path) off the CPU that sent the
// frames, so that a baseline gets a core of its own as an xvs worker does.
func (b *Bench) ThreadedNAPI(ns, ifname string, on bool, cpu, nice int) error {
	v := "0"
	if on {
		v = "1"
	}
	if err := b.In(ns, "sh", "-c", fmt.Sprintf("echo %s > /sys/class/net/%s/threaded", v, ifname)); err != nil {
		return err
	}
	if !on || cpu < 0 {
		return nil
	}
	pids, err := napiThreads(ifname)
	if err != nil {
		return err
	}
	if len(pids) == 0 {
		return fmt.Errorf("threaded NAPI on %s: no napi kthread found", ifname)
	}
	for _, pid := range pids {
		if err := b.Host("taskset", "-pc", strconv.Itoa(cpu), strconv.Itoa(pid)); err != nil {
			return err
		}
		if nice != 0 {
			if err := b.Host("renice", "-n", strconv.Itoa(nice), "-p", strconv.Itoa(pid)); err != nil {
				return err
			}
		}
	}
	return nil
}

// napiThreads returns the PIDs of the NAPI kthreads of ifname. Their names
// are "napi/<ifname>-<id>", cut to the kernel's 15 bytes of comm.
func napiThreads(ifname string) ([]int, error) {
	prefix := "napi/" + ifname + "-"
	if len(prefix) > 15 {
		prefix = prefix[:15]
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", d.Name(), "comm"))
		if err != nil {
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(string(comm)), prefix) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
