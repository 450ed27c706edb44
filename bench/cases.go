package main

import (
	"fmt"
	"strings"
)

// Target is what a case measures.
type Target string

// The targets, in report order: the machine's ceilings, the kernel's load
// balancer, then xvs.
const (
	XDPDrop    Target = "xdp-drop"      // XDP program counting and dropping, on the director's veth
	XDPTX      Target = "xdp-tx"        // XDP MAC swap + XDP_TX, back to the generator
	XSKRX      Target = "afxdp-rx"      // AF_XDP receive through dataplane/xsk, nothing else
	XSKReflect Target = "afxdp-reflect" // AF_XDP receive + transmit back, no LB logic
	NFT        Target = "nft-dnat"      // the kernel: nftables DNAT, numgen inc mod 2
	XVSDR      Target = "xvs-dr"
	XVSNAT     Target = "xvs-nat"
	XVSTUN     Target = "xvs-tun"
	XVSFNAT    Target = "xvs-fullnat"
	// The same with the XDP fast path forced on: established connections
	// forwarded by the steering program itself.
	XVSDRFast   Target = "xvs-dr-fast"
	XVSNATFast  Target = "xvs-nat-fast"
	XVSTUNFast  Target = "xvs-tun-fast"
	XVSFNATFast Target = "xvs-fullnat-fast"
	// Two workers: every veth has two queues, a generator on each CPU
	// feeds one queue each, and xvsd runs a worker per queue, one on each
	// CPU, sharing the connection table.
	XVSDR2Q  Target = "xvs-dr-2q"
	XVSNAT2Q Target = "xvs-nat-2q"
	// The SYN proxy (syn_proxy = true on the TCP service): the director
	// answers each SYN with a SYN cookie itself, back to the generator,
	// and forwards nothing until a client's ACK; the row counts the
	// SYN-ACKs that come back.
	XVSNATSynProxy  Target = "xvs-nat-syn-proxy"
	XVSFNATSynProxy Target = "xvs-fullnat-syn-proxy"
	// The same with the fast path forced on, as on a NIC whose frames sent
	// by XDP arrive: the steering program answers the SYNs itself, and the
	// workers see none.
	XVSNATSynProxyFast  Target = "xvs-nat-syn-proxy-fast"
	XVSFNATSynProxyFast Target = "xvs-fullnat-syn-proxy-fast"
	// The kernel's own SYN proxy: nftables' synproxy statement on the
	// director's namespace (untracked SYNs answered with cookies).
	NFTSynProxy Target = "nft-synproxy"
)

// xvsModes are xvs's forwarding modes, each a target, in report order;
// fastModes the same with the fast path.
var (
	xvsModes  = []Target{XVSDR, XVSNAT, XVSTUN, XVSFNAT}
	fastModes = []Target{XVSDRFast, XVSNATFast, XVSTUNFast, XVSFNATFast}
	// synProxies are the SYN-proxy targets, in report order.
	synProxies = []Target{XVSNATSynProxy, XVSFNATSynProxy, XVSNATSynProxyFast, XVSFNATSynProxyFast, NFTSynProxy}
)

// Method is the configuration's method of an xvs target ("" for others).
func (t Target) Method() string {
	switch t {
	case XVSDR, XVSDRFast, XVSDR2Q:
		return "dr"
	case XVSNAT, XVSNATFast, XVSNAT2Q, XVSNATSynProxy, XVSNATSynProxyFast:
		return "nat"
	case XVSTUN, XVSTUNFast:
		return "tun"
	case XVSFNAT, XVSFNATFast, XVSFNATSynProxy, XVSFNATSynProxyFast:
		return "fullnat"
	}
	return ""
}

// Queues is the number of queues, and of xvsd workers and generators, the
// target runs with.
func (t Target) Queues() int {
	if strings.HasSuffix(string(t), "-2q") {
		return 2
	}
	return 1
}

// SynProxy reports whether the target answers SYNs with SYN cookies (xvs
// with syn_proxy on, or nftables' synproxy): its delivered frames are the
// SYN-ACKs back at the generator.
func (t Target) SynProxy() bool {
	return strings.Contains(string(t), "-syn-proxy") || t == NFTSynProxy
}

// FastPath reports whether the target runs xvs with the fast path forced on.
func (t Target) FastPath() bool { return strings.HasSuffix(string(t), "-fast") }

// Userspace is the target's userspace-only twin (itself when it has none).
func (t Target) Userspace() Target { return Target(strings.TrimSuffix(string(t), "-fast")) }

// IsXVS reports whether the target runs xvsd.
func (t Target) IsXVS() bool { return t.Method() != "" }

// Group is a target's family, which the plot colours and the report orders by.
func (t Target) Group() string {
	switch t {
	case XDPDrop, XDPTX, XSKRX, XSKReflect:
		return "ceiling"
	case NFT, NFTSynProxy:
		return "kernel"
	}
	if t.FastPath() {
		return "xvs-fast"
	}
	return "xvs"
}

// Title is the target for people.
func (t Target) Title() string {
	switch t {
	case XDPDrop:
		return "XDP drop"
	case XDPTX:
		return "XDP_TX reflect"
	case XSKRX:
		return "AF_XDP rx"
	case XSKReflect:
		return "AF_XDP rx+tx reflect"
	case NFT:
		return "nftables DNAT"
	case NFTSynProxy:
		return "nftables synproxy"
	case XVSDR:
		return "xvs DR"
	case XVSNAT:
		return "xvs NAT"
	case XVSTUN:
		return "xvs TUN"
	case XVSFNAT:
		return "xvs FullNAT"
	}
	if t.FastPath() && t.SynProxy() {
		return t.Userspace().Title() + " in XDP"
	}
	if t.FastPath() {
		return t.Userspace().Title() + ", fast path"
	}
	if t.SynProxy() {
		return Target(strings.TrimSuffix(string(t), "-syn-proxy")).Title() + ", SYN proxy"
	}
	if t.Queues() > 1 {
		return fmt.Sprintf("%s, %d workers", Target(strings.TrimSuffix(string(t), "-2q")).Title(), t.Queues())
	}
	return string(t)
}

// Traffic kinds.
const (
	UDP = "udp" // established: the first datagram of a flow makes its connection, the rest hit it
	SYN = "syn" // new connections: every frame a TCP SYN of a flow not seen before
	// Mixed: every UDP flow sends two datagrams, one pass over the flows
	// after the other: half the frames open a connection, half belong to
	// one opened a pass before.
	Mixed = "mixed"
)

// MixedFlows is the flow space of the mixed case.
const MixedFlows = 100_000

// Frame sizes as xvs-pktgen counts them, with the 4-byte FCS.
const (
	Small = 64   // 60-byte frames
	Large = 1518 // 1500-byte IP packets
)

// Flow counts.
const (
	OneFlow   = 1
	ManyFlows = 10_000
	// SYNFlows is the flow space of the new-connection cases: large enough
	// that no (source, port) pair repeats within a run at any rate here, so
	// every SYN opens a connection.
	SYNFlows = 16_000_000
)

// Case is one row of the report.
type Case struct {
	Target  Target `json:"target"`
	Traffic string `json:"traffic"`
	Size    int    `json:"size"`
	Flows   int    `json:"flows"`
	// Tune is a [director] setting that differs from xvsd's defaults
	// (BENCH_TUNE=1), as a TOML line; "" for the defaults.
	Tune string `json:"tune,omitempty"`
}

// ID names the case uniquely and stably: ratios and the plot refer to it.
func (c Case) ID() string {
	id := fmt.Sprintf("%s/%s/%d/%s", c.Target, c.Traffic, c.Size, flowsShort(c.Flows))
	if c.Tune != "" {
		id += "/" + strings.ReplaceAll(c.Tune, " ", "")
	}
	return id
}

// Title is the case's target for people, with its tuning.
func (c Case) Title() string {
	if c.Tune == "" {
		return c.Target.Title()
	}
	return fmt.Sprintf("%s, %s", c.Target.Title(), c.Tune)
}

func flowsShort(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// Label is the case for a plot axis.
func (c Case) Label() string {
	var b strings.Builder
	b.WriteString(c.Title())
	if c.Traffic == SYN {
		b.WriteString(" SYN")
	}
	fmt.Fprintf(&b, " %dB", c.Size)
	if c.Target.Group() != "ceiling" {
		fmt.Fprintf(&b, " %s fl", flowsShort(c.Flows))
	}
	return b.String()
}

// Matrix returns the cases of a run. The quick matrix keeps every kind of
// row (each ceiling, the kernel, each forwarding mode, both frame sizes, both
// flow counts, both kinds of traffic) but not every combination.
func Matrix(quick bool) []Case {
	var cs []Case
	ceilSizes := []int{Small, Large}
	if quick {
		ceilSizes = []int{Small}
	}
	for _, t := range []Target{XDPDrop, XDPTX, XSKRX, XSKReflect} {
		for _, s := range ceilSizes {
			cs = append(cs, Case{t, UDP, s, OneFlow, ""})
		}
	}
	type sf struct{ size, flows int }
	est := []sf{{Small, OneFlow}, {Small, ManyFlows}, {Large, OneFlow}, {Large, ManyFlows}}
	kernel := est
	if quick {
		est = []sf{{Small, OneFlow}, {Small, ManyFlows}, {Large, ManyFlows}}
		kernel = []sf{{Small, ManyFlows}, {Large, ManyFlows}}
	}
	for _, x := range kernel {
		cs = append(cs, Case{NFT, UDP, x.size, x.flows, ""})
	}
	for _, t := range xvsModes {
		flows := est
		if quick && t != XVSDR && t != XVSNAT {
			flows = []sf{{Small, ManyFlows}}
		}
		for _, x := range flows {
			cs = append(cs, Case{t, UDP, x.size, x.flows, ""})
		}
		// SYNs are small in real life; a 1500-byte SYN says nothing more.
		cs = append(cs, Case{t, SYN, Small, SYNFlows, ""})
	}
	for _, t := range fastModes {
		flows := []sf{{Small, OneFlow}, {Small, ManyFlows}, {Large, ManyFlows}}
		if quick && t != XVSDRFast && t != XVSNATFast {
			flows = []sf{{Small, ManyFlows}}
		}
		for _, x := range flows {
			cs = append(cs, Case{t, UDP, x.size, x.flows, ""})
		}
		if t == XVSDRFast || t == XVSNATFast {
			// The fast path must not slow new connections down.
			cs = append(cs, Case{t, SYN, Small, SYNFlows, ""})
		}
	}
	cs = append(cs, Case{XVSNAT, Mixed, Small, MixedFlows, ""}, Case{XVSNATFast, Mixed, Small, MixedFlows, ""})
	cs = append(cs, Case{XVSDR2Q, UDP, Small, ManyFlows, ""}, Case{XVSNAT2Q, UDP, Small, ManyFlows, ""})
	// SYN proxies: the director answers each SYN itself (one frame out per
	// frame in, as established forwarding), next to established
	// forwarding of the same mode above and the kernel's synproxy.
	for _, t := range synProxies {
		cs = append(cs, Case{t, SYN, Small, SYNFlows, ""})
	}
	return cs
}

// ratioSpecs are the ratios the report prints, by case ID. A ratio whose
// cases are not in the run is left out.
func ratioSpecs() []RatioSpec {
	id := func(t Target, traffic string, size, flows int) string { return Case{t, traffic, size, flows, ""}.ID() }
	reflect64 := id(XSKReflect, UDP, Small, OneFlow)
	var specs []RatioSpec
	for _, t := range xvsModes {
		specs = append(specs, RatioSpec{
			Name: fmt.Sprintf("%s ÷ AF_XDP reflect ceiling (64 B, 10k flows)", t.Title()),
			Num:  id(t, UDP, Small, ManyFlows), Den: reflect64,
			Why: "how much of what any AF_XDP forwarder achieves here xvs achieves; 1.0: the LB logic costs nothing",
		})
	}
	for _, t := range xvsModes {
		specs = append(specs, RatioSpec{
			Name: fmt.Sprintf("%s ÷ nftables DNAT (64 B, 10k flows)", t.Title()),
			Num:  id(t, UDP, Small, ManyFlows), Den: id(NFT, UDP, Small, ManyFlows),
			Why: "xvs against the kernel's load balancer without IPVS; above 1.0 xvs forwards more",
		})
	}
	for _, x := range []struct{ size, flows int }{{Small, OneFlow}, {Large, ManyFlows}, {Large, OneFlow}} {
		for _, t := range []Target{XVSDR, XVSNAT} {
			specs = append(specs, RatioSpec{
				Name: fmt.Sprintf("%s ÷ nftables DNAT (%d B, %s flows)", t.Title(), x.size, flowsShort(x.flows)),
				Num:  id(t, UDP, x.size, x.flows), Den: id(NFT, UDP, x.size, x.flows),
				Why: "xvs against the kernel's load balancer without IPVS; above 1.0 xvs forwards more",
			})
		}
	}
	for _, s := range []int{Small, Large} {
		for _, t := range xvsModes[1:] {
			specs = append(specs, RatioSpec{
				Name: fmt.Sprintf("%s ÷ DR (%d B, 10k flows)", strings.TrimPrefix(t.Title(), "xvs "), s),
				Num:  id(t, UDP, s, ManyFlows), Den: id(XVSDR, UDP, s, ManyFlows),
				Why: "the price of the mode's rewriting (addresses, ports, checksums, tunnel header) over DR's MACs only",
			})
		}
	}
	xdptx64 := id(XDPTX, UDP, Small, OneFlow)
	for _, t := range fastModes {
		specs = append(specs,
			RatioSpec{
				Name: fmt.Sprintf("%s ÷ XDP_TX reflect ceiling (64 B, 10k flows)", t.Title()),
				Num:  id(t, UDP, Small, ManyFlows), Den: xdptx64,
				Why: "the fast path against the most an XDP program forwards here; 1.0: the lookup and rewrite cost nothing",
			},
			RatioSpec{
				Name: fmt.Sprintf("%s ÷ nftables DNAT (64 B, 10k flows)", t.Title()),
				Num:  id(t, UDP, Small, ManyFlows), Den: id(NFT, UDP, Small, ManyFlows),
				Why: "the fast path against the kernel's load balancer",
			},
			RatioSpec{
				Name: fmt.Sprintf("%s ÷ userspace (64 B, 10k flows)", t.Title()),
				Num:  id(t, UDP, Small, ManyFlows), Den: id(t.Userspace(), UDP, Small, ManyFlows),
				Why: "what the fast path gains over forwarding in userspace (copy-mode AF_XDP here)",
			},
			RatioSpec{
				Name: fmt.Sprintf("%s ÷ userspace (1518 B, 10k flows)", t.Title()),
				Num:  id(t, UDP, Large, ManyFlows), Den: id(t.Userspace(), UDP, Large, ManyFlows),
				Why: "the same with full-sized frames",
			},
		)
		if t == XVSDRFast || t == XVSNATFast {
			specs = append(specs, RatioSpec{
				Name: fmt.Sprintf("%s SYN ÷ userspace SYN (64 B)", t.Title()),
				Num:  id(t, SYN, Small, SYNFlows), Den: id(t.Userspace(), SYN, Small, SYNFlows),
				Why: "new connections with the fast path on against off: 1.0 means offloading costs them nothing",
			})
		}
	}
	specs = append(specs, RatioSpec{
		Name: "xvs NAT, fast path ÷ userspace, mixed (50 % new UDP flows)",
		Num:  id(XVSNATFast, Mixed, Small, MixedFlows), Den: id(XVSNAT, Mixed, Small, MixedFlows),
		Why: "half the frames open a connection (userspace), half are offloaded by then",
	})
	for _, t := range []Target{XVSDR2Q, XVSNAT2Q} {
		specs = append(specs, RatioSpec{
			Name: fmt.Sprintf("%s on 2 queues ÷ 1 worker (64 B, 10k flows)", t.Title()),
			Num:  id(t, UDP, Small, ManyFlows), Den: id(Target(strings.TrimSuffix(string(t), "-2q")), UDP, Small, ManyFlows),
			Why: "two workers, each on its own CPU with its own generator, against one worker beside one generator: on a 2-CPU machine the CPUs are already both busy with one, so this shows what sharing them costs, not scaling",
		})
	}
	for _, t := range xvsModes {
		specs = append(specs, RatioSpec{
			Name: fmt.Sprintf("%s SYN ÷ established (64 B)", t.Title()),
			Num:  id(t, SYN, Small, SYNFlows), Den: id(t, UDP, Small, ManyFlows),
			Why: "new connections sustained over a run against established traffic: the price of scheduling and inserting a connection per frame, and of the table's bound once it is full",
		})
	}
	for _, t := range []Target{XVSNATSynProxyFast, XVSFNATSynProxyFast} {
		user := t.Userspace()
		mode := Target(strings.TrimSuffix(string(user), "-syn-proxy"))
		specs = append(specs,
			RatioSpec{
				Name: fmt.Sprintf("%s: SYN-ACKs ÷ established forwarding (64 B)", t.Title()),
				Num:  id(t, SYN, Small, SYNFlows), Den: id(mode, UDP, Small, ManyFlows),
				Why: "SYNs the steering program answers with a cookie per second against frames of established connections the workers forward; the target is >= 0.8",
			},
			RatioSpec{
				Name: fmt.Sprintf("%s: SYN-ACKs ÷ established forwarding on the fast path (64 B)", t.Title()),
				Num:  id(t, SYN, Small, SYNFlows), Den: id(mode+"-fast", UDP, Small, ManyFlows),
				Why: "both in XDP: a SYN answered (options parsed, SipHash, the SYN-ACK written) against an offloaded frame forwarded",
			},
			RatioSpec{
				Name: fmt.Sprintf("%s ÷ the workers' SYN proxy (64 B SYNs)", t.Title()),
				Num:  id(t, SYN, Small, SYNFlows), Den: id(user, SYN, Small, SYNFlows),
				Why: "the same flood answered in XDP against answered by a worker, as on veth without NAPI on the peer",
			},
			RatioSpec{
				Name: fmt.Sprintf("%s ÷ nftables synproxy (64 B SYNs)", t.Title()),
				Num:  id(t, SYN, Small, SYNFlows), Den: id(NFTSynProxy, SYN, Small, SYNFlows),
				Why: "SYN cookies from xvs's XDP program against the kernel's own SYN proxy on the same veth",
			})
	}
	for _, t := range []Target{XVSNATSynProxy, XVSFNATSynProxy} {
		mode := Target(strings.TrimSuffix(string(t), "-syn-proxy"))
		specs = append(specs,
			RatioSpec{
				Name: fmt.Sprintf("%s: SYN-ACKs ÷ established forwarding (64 B)", t.Title()),
				Num:  id(t, SYN, Small, SYNFlows), Den: id(mode, UDP, Small, ManyFlows),
				Why: "SYNs the director answers with a cookie per second against frames of established connections it forwards (one frame out per frame in either way); the target is >= 0.8",
			},
			RatioSpec{
				Name: fmt.Sprintf("%s: SYN-ACKs ÷ SYNs forwarded without it (64 B)", t.Title()),
				Num:  id(t, SYN, Small, SYNFlows), Den: id(mode, SYN, Small, SYNFlows),
				Why: "a flood answered by the proxy (no entry, nothing forwarded) against the same flood scheduled, inserted and forwarded",
			},
			RatioSpec{
				Name: fmt.Sprintf("%s ÷ nftables synproxy (64 B SYNs)", t.Title()),
				Num:  id(t, SYN, Small, SYNFlows), Den: id(NFTSynProxy, SYN, Small, SYNFlows),
				Why: "SYN cookies from xvs against the kernel's own SYN proxy on the same veth; above 1.0 xvs answers more",
			})
	}
	return specs
}

// Tunings are the data path's knobs that BENCH_TUNE=1 turns, one at a time,
// each a [director] line against xvsd's defaults (batch 256, rings of 2048,
// 256 idle spins before poll(), need_wakeup on, the worker pinned to its own
// CPU). CPUGenerator stands for the generator's CPU.
var Tunings = []string{
	"batch_size = 16",
	"batch_size = 64",
	"batch_size = 1024",
	"ring_size = 512",
	"ring_size = 8192",
	"idle_spins = 1",
	"idle_spins = -1",
	"busy_poll = true",
	"need_wakeup = false",
	"cpus = []",
	"cpus = [" + CPUGenerator + "]",
}

// CPUGenerator in a tuning is replaced by the generator's CPU.
const CPUGenerator = "GEN"

// TuneMatrix returns BENCH_TUNE=1's cases: the defaults, then each tuning,
// each on established traffic (64 B, 10 000 flows) and on new connections,
// in DR (the mode with the least work of its own, where the knobs show most).
func TuneMatrix() []Case {
	var cs []Case
	for _, tune := range append([]string{""}, Tunings...) {
		cs = append(cs, Case{XVSDR, UDP, Small, ManyFlows, tune}, Case{XVSDR, SYN, Small, SYNFlows, tune})
	}
	return cs
}

// tuneRatioSpecs are BENCH_TUNE=1's ratios: each tuning over the defaults.
func tuneRatioSpecs() []RatioSpec {
	var specs []RatioSpec
	for _, tune := range Tunings {
		for _, traffic := range []struct{ kind, name string }{{UDP, "established"}, {SYN, "SYN"}} {
			flows := ManyFlows
			if traffic.kind == SYN {
				flows = SYNFlows
			}
			specs = append(specs, RatioSpec{
				Name: fmt.Sprintf("%s ÷ defaults (DR, 64 B, %s)", tune, traffic.name),
				Num:  Case{XVSDR, traffic.kind, Small, flows, tune}.ID(), Den: Case{XVSDR, traffic.kind, Small, flows, ""}.ID(),
				Why: "what turning this knob alone does; above 1.0 it helps",
			})
		}
	}
	return specs
}
