package decap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"

	"github.com/xvs-lb/xvs/internal/netnstest"
)

// Kernel ABI values the tests use.
const (
	xdpPass   = 2 // XDP_PASS
	ethHdrLen = 14
)

func needRoot(t *testing.T) {
	t.Helper()
	netnstest.NeedRoot(t, "loading BPF programs")
}

// loadDecap loads a Decap for the test and closes it afterwards.
func loadDecap(t *testing.T) *Decap {
	t.Helper()
	needRoot(t)
	d, err := Load()
	if err != nil {
		t.Fatalf("Load: %+v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// loadPersistent loads the decapsulator as AttachPersistent does, with its
// maps filled from cfg, without attaching it; it is closed afterwards.
func loadPersistent(t *testing.T, cfg Config) variant {
	t.Helper()
	needRoot(t)
	cfg, err := cfg.normalize()
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	d, err := loadConfig(cfg)
	if err != nil {
		t.Fatalf("load persistent decapsulator: %+v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return variant{"persistent", d.objs.Prog, d.objs.Stats}
}

// variant is one way of running the decapsulator over a frame.
type variant struct {
	name  string
	prog  *ebpf.Program
	stats *ebpf.Map
}

func (s Stats) sub(o Stats) Stats {
	return Stats{
		Decapsulated: s.Decapsulated - o.Decapsulated,
		NotForUs:     s.NotForUs - o.NotForUs,
		Malformed:    s.Malformed - o.Malformed,
		Passed:       s.Passed - o.Passed,
	}
}

// run runs v's program once over frame and returns its action, the frame it
// left and how the counters moved.
func (v variant) run(t *testing.T, frame []byte) (uint32, []byte, Stats) {
	t.Helper()
	before, err := readStats(v.stats)
	if err != nil {
		t.Fatal(err)
	}
	opts := &ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256), Repeat: 1}
	action, err := v.prog.Run(opts)
	if err != nil {
		t.Fatalf("%s: run over %d-byte frame: %v", v.name, len(frame), err)
	}
	after, err := readStats(v.stats)
	if err != nil {
		t.Fatal(err)
	}
	// Run shortens DataOut to the frame the program left.
	return action, opts.DataOut, after.sub(before)
}

// variants returns the decapsulator set up both ways, with the same VIPs and
// local addresses (nil locals: any): through a Decap's methods, and from a
// Config as AttachPersistent does.
func variants(t *testing.T, vips, locals []netip.Addr) []variant {
	d := loadDecap(t)
	if err := d.SyncVIPs(vips); err != nil {
		t.Fatalf("SyncVIPs: %v", err)
	}
	if err := d.SetLocalAddrs(locals); err != nil {
		t.Fatalf("SetLocalAddrs: %v", err)
	}
	return []variant{
		{"maps", d.objs.Prog, d.objs.Stats},
		loadPersistent(t, Config{VIPs: vips, LocalAddrs: locals}),
	}
}

type outcome int

const (
	decapsulated outcome = iota
	notForUs
	malformed
	passed
)

func (o outcome) String() string {
	return [...]string{"decapsulated", "not for us", "malformed", "passed"}[o]
}

func (o outcome) stats() Stats {
	var s Stats
	switch o {
	case decapsulated:
		s.Decapsulated = 1
	case notForUs:
		s.NotForUs = 1
	case malformed:
		s.Malformed = 1
	case passed:
		s.Passed = 1
	}
	return s
}

type frameCase struct {
	name  string
	frame []byte
	want  outcome
	out   []byte // the frame after decapsulation; nil: the input, untouched
}

func frameCases(t *testing.T) []frameCase {
	var (
		none   = l2{}
		vlan   = l2{tags: []uint16{100}}
		qinq   = l2{tags: []uint16{100, 200}}
		triple = l2{tags: []uint16{100, 200, 300}}
	)
	var cases []frameCase
	for _, h := range []struct {
		name string
		l2   l2
	}{{"", none}, {"vlan/", vlan}, {"qinq/", qinq}} {
		for _, tc := range []struct {
			name            string
			outer, innerDst netip.Addr
		}{
			{"ipip", rs4, vip4},
			{"ip6-in-ip4", rs4, vip6},
			{"ip4-in-ip6", rs6, vip4},
			{"ip6ip6", rs6, vip6},
		} {
			cases = append(cases, frameCase{
				name:  h.name + tc.name,
				frame: tunnelFrame(t, h.l2, tc.outer, tc.innerDst),
				want:  decapsulated,
				out:   innerFrame(t, h.l2, tc.innerDst),
			})
		}
	}
	ipip := tunnelFrame(t, none, rs4, vip4)
	const outerIP = ethHdrLen // offset of the outer IPv4 header in ipip
	// Ethernet padding after the outer packet stays after the inner one,
	// where the kernel trims it by the inner length.
	pad := make([]byte, 6)
	cases = append(cases, frameCase{
		name:  "ipip with trailing padding",
		frame: append(append([]byte(nil), ipip...), pad...),
		want:  decapsulated,
		out:   append(innerFrame(t, none, vip4), pad...),
	})

	cases = append(cases,
		frameCase{name: "ipip to another inner address", frame: tunnelFrame(t, none, rs4, novip4), want: notForUs},
		frameCase{name: "ip6ip6 to another inner address", frame: tunnelFrame(t, none, rs6, novip6), want: notForUs},
		frameCase{name: "ip4-in-ip6 to a v6 address not a VIP", frame: tunnelFrame(t, vlan, rs6, novip4), want: notForUs},
		frameCase{name: "plain udp to the VIP", frame: plainFrame(t, vip4), want: passed},
		frameCase{name: "plain udp6 to the VIP", frame: plainFrame(t, vip6), want: passed},
		frameCase{name: "plain tcp", frame: serialize(t, append(none.layers(layers.EthernetTypeIPv4),
			ipLayer(client4, rs4, layers.IPProtocolTCP), &layers.TCP{SrcPort: 1, DstPort: 80, SYN: true})...), want: passed},
		frameCase{name: "arp", frame: arpFrame(t), want: passed},
		frameCase{name: "three tags", frame: tunnelFrame(t, triple, rs4, vip4), want: passed},
		frameCase{name: "ip6 destination options", frame: withDestOpts(t), want: passed},
		frameCase{name: "outer ipv4 options", frame: withOuterOptions(t), want: malformed},
		frameCase{name: "outer fragment", frame: mutate(ipip, func(f []byte) {
			f[outerIP+6] |= 0x20 // MF
			fixIPv4Checksum(f, outerIP)
		}), want: malformed},
		frameCase{name: "outer checksum", frame: mutate(ipip, func(f []byte) { f[outerIP+10] ^= 1 }), want: malformed},
		frameCase{name: "outer length past the frame", frame: mutate(ipip, func(f []byte) {
			binary.BigEndian.PutUint16(f[outerIP+2:], uint16(len(f)-outerIP+1))
			fixIPv4Checksum(f, outerIP)
		}), want: malformed},
		frameCase{name: "outer length without inner header", frame: mutate(ipip, func(f []byte) {
			binary.BigEndian.PutUint16(f[outerIP+2:], 20+19)
			fixIPv4Checksum(f, outerIP)
		}), want: malformed},
		frameCase{name: "outer version", frame: mutate(ipip, func(f []byte) {
			f[outerIP] = 0x55
			fixIPv4Checksum(f, outerIP)
		}), want: malformed},
		frameCase{name: "inner not ipv4", frame: mutate(ipip, func(f []byte) { f[outerIP+20] = 0x65 }), want: malformed},
		frameCase{name: "ip6 payload length past the frame", frame: mutate(tunnelFrame(t, none, rs6, vip6), func(f []byte) {
			binary.BigEndian.PutUint16(f[ethHdrLen+4:], uint16(len(f)-ethHdrLen-40+1))
		}), want: malformed},
		frameCase{name: "ip6-in-ip4 too short for ipv6", frame: mutate(tunnelFrame(t, none, rs4, vip6), func(f []byte) {
			binary.BigEndian.PutUint16(f[outerIP+2:], 20+39)
			fixIPv4Checksum(f, outerIP)
		}), want: malformed},
	)
	return cases
}

func checkCase(t *testing.T, v variant, tc frameCase) {
	t.Helper()
	action, out, stats := v.run(t, tc.frame)
	if action != xdpPass {
		t.Errorf("%s: action %d, want XDP_PASS", v.name, action)
	}
	if want := tc.want.stats(); stats != want {
		t.Errorf("%s: counters moved %+v, want %+v (%v)", v.name, stats, want, tc.want)
	}
	want := tc.out
	if want == nil {
		want = tc.frame
	}
	if !bytes.Equal(out, want) {
		t.Errorf("%s: output frame\n%x\nwant\n%x", v.name, out, want)
	}
}

func TestFrames(t *testing.T) {
	vs := variants(t, []netip.Addr{vip4, vip6}, nil)
	for _, tc := range frameCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range vs {
				checkCase(t, v, tc)
			}
		})
	}
}

// TestLocalAddrs checks the outer destination filter.
func TestLocalAddrs(t *testing.T) {
	vs := variants(t, []netip.Addr{vip4, vip6}, []netip.Addr{rs4, rs6})
	cases := []frameCase{
		{name: "ipip to a local address", frame: tunnelFrame(t, l2{}, rs4, vip4), want: decapsulated, out: innerFrame(t, l2{}, vip4)},
		{name: "ip6ip6 to a local address", frame: tunnelFrame(t, l2{}, rs6, vip6), want: decapsulated, out: innerFrame(t, l2{}, vip6)},
		{name: "ipip to another host", frame: tunnelFrame(t, l2{}, other4, vip4), want: notForUs},
		{name: "ip6ip6 to another host", frame: tunnelFrame(t, l2{}, other6, vip6), want: notForUs},
	}
	for _, tc := range cases {
		for _, v := range vs {
			checkCase(t, v, tc)
		}
	}

	// Only IPv4 local addresses: every IPv6 outer destination is foreign.
	v4only := loadPersistent(t, Config{VIPs: []netip.Addr{vip4, vip6}, LocalAddrs: []netip.Addr{rs4}})
	v4only.name += ", v4 locals"
	checkCase(t, v4only, frameCase{
		name: "ip6ip6", frame: tunnelFrame(t, l2{}, rs6, vip6), want: notForUs,
	})

	// Emptying the map variant's set accepts any outer destination again.
	d := loadDecap(t)
	if err := d.SyncVIPs([]netip.Addr{vip4}); err != nil {
		t.Fatal(err)
	}
	v := variant{"maps", d.objs.Prog, d.objs.Stats}
	if err := d.SetLocalAddrs([]netip.Addr{rs4}); err != nil {
		t.Fatal(err)
	}
	checkCase(t, v, frameCase{frame: tunnelFrame(t, l2{}, other4, vip4), want: notForUs})
	if err := d.SetLocalAddrs(nil); err != nil {
		t.Fatal(err)
	}
	checkCase(t, v, frameCase{frame: tunnelFrame(t, l2{}, other4, vip4), want: decapsulated, out: innerFrame(t, l2{}, vip4)})
}

// TestNoVIPs checks that an empty VIP set decapsulates nothing.
func TestNoVIPs(t *testing.T) {
	for _, v := range variants(t, nil, nil) {
		checkCase(t, v, frameCase{frame: tunnelFrame(t, l2{}, rs4, vip4), want: notForUs})
		checkCase(t, v, frameCase{frame: tunnelFrame(t, l2{}, rs6, vip6), want: notForUs})
	}
}

// TestTruncated runs every prefix of every test frame: the program must
// pass each one, counted once, and decapsulate none but the full frame.
func TestTruncated(t *testing.T) {
	vs := variants(t, []netip.Addr{vip4, vip6}, nil)
	for _, tc := range frameCases(t) {
		for _, v := range vs {
			// The kernel refuses test frames shorter than an Ethernet
			// header.
			for n := ethHdrLen; n < len(tc.frame); n++ {
				frame := tc.frame[:n]
				action, out, stats := v.run(t, frame)
				total := stats.Decapsulated + stats.NotForUs + stats.Malformed + stats.Passed
				if action != xdpPass || total != 1 || stats.Decapsulated != 0 || !bytes.Equal(out, frame) {
					// Only the padded frame may lose its padding.
					if tc.want == decapsulated && stats.Decapsulated == 1 && n >= len(tc.frame)-6 &&
						bytes.Equal(out, tc.out[:len(out)]) {
						continue
					}
					t.Errorf("%s %s: %d of %d bytes: action %d, counters %+v, output changed %t",
						v.name, tc.name, n, len(tc.frame), action, stats, !bytes.Equal(out, frame))
				}
			}
		}
	}
}

func TestSyncVIPs(t *testing.T) {
	d := loadDecap(t)
	keys := func() map[netip.Addr]bool {
		got := make(map[netip.Addr]bool)
		var k [keySize]byte
		var v uint32
		it := d.objs.VIPs.Iterate()
		for it.Next(&k, &v) {
			got[netip.AddrFrom16(k).Unmap()] = true
		}
		if err := it.Err(); err != nil {
			t.Fatalf("iterate: %v", err)
		}
		return got
	}
	check := func(want ...netip.Addr) {
		t.Helper()
		got := keys()
		if len(got) != len(want) {
			t.Errorf("vips map %v, want %v", got, want)
		}
		for _, a := range want {
			if !got[a] {
				t.Errorf("vips map %v lacks %v", got, a)
			}
		}
	}
	if err := d.SyncVIPs([]netip.Addr{vip4, vip6, netip.MustParseAddr("::ffff:198.18.0.10")}); err != nil {
		t.Fatal(err)
	}
	check(vip4, vip6)
	if err := d.SyncVIPs([]netip.Addr{vip6, novip4}); err != nil {
		t.Fatal(err)
	}
	check(vip6, novip4)
	if err := d.AddVIP(vip4); err != nil {
		t.Fatal(err)
	}
	if err := d.AddVIP(vip4); err != nil {
		t.Fatalf("adding a present VIP: %v", err)
	}
	check(vip6, novip4, vip4)
	if err := d.DeleteVIP(novip4); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteVIP(novip4); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("deleting an absent VIP: %v, want ErrKeyNotExist", err)
	}
	check(vip6, vip4)
	for _, bad := range []netip.Addr{{}, netip.IPv4Unspecified(), netip.MustParseAddr("ff02::1")} {
		if err := d.SyncVIPs([]netip.Addr{vip4, bad}); err == nil {
			t.Errorf("SyncVIPs with %v succeeded", bad)
		}
		if err := d.AddVIP(bad); err == nil {
			t.Errorf("AddVIP(%v) succeeded", bad)
		}
	}
	check(vip6, vip4)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.AddVIP(vip4); !errors.Is(err, errClosed) {
		t.Errorf("AddVIP after Close: %v", err)
	}
	if _, err := d.Stats(); !errors.Is(err, errClosed) {
		t.Errorf("Stats after Close: %v", err)
	}
}

func TestConfigLimits(t *testing.T) {
	many := make([]netip.Addr, MaxVIPs+1)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
	}
	if _, err := (Config{VIPs: many}).normalize(); err == nil {
		t.Error("normalize accepted more than MaxVIPs")
	}
	cfg, err := (Config{VIPs: many[:MaxVIPs]}).normalize()
	if err != nil || len(cfg.VIPs) != MaxVIPs {
		t.Fatalf("normalize MaxVIPs: %d, %v", len(cfg.VIPs), err)
	}
	// The maps hold MaxVIPs VIPs and MaxLocalAddrs local addresses, and
	// the last of each still matches.
	v6 := make([]netip.Addr, MaxVIPs)
	for i := range v6 {
		v6[i] = netip.AddrFrom16([16]byte{0: 0xfd, 14: byte(i >> 8), 15: byte(i)})
	}
	locals := make([]netip.Addr, MaxLocalAddrs)
	for i := range locals {
		locals[i] = netip.AddrFrom16([16]byte{0: 0xfd, 1: 1, 14: byte(i >> 8), 15: byte(i)})
	}
	locals[len(locals)-1] = rs6
	if _, err := (Config{LocalAddrs: append(locals, other6)}).normalize(); err == nil {
		t.Error("normalize accepted more than MaxLocalAddrs")
	}
	full := loadPersistent(t, Config{VIPs: v6, LocalAddrs: locals})
	full.name += ", full maps"
	last := v6[len(v6)-1]
	checkCase(t, full, frameCase{
		frame: tunnelFrame(t, l2{}, rs6, last), want: decapsulated, out: innerFrame(t, l2{}, last),
	})
	checkCase(t, full, frameCase{frame: tunnelFrame(t, l2{}, other6, last), want: notForUs})
}
