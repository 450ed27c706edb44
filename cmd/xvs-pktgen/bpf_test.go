package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/dataplane/bpf"
	"github.com/xvs-lb/xvs/dataplane/packet"
)

const loIndex = 1 // the loopback device's ifindex in every namespace

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root")
	}
}

// mustSpec returns a function that fails t on a spec's error, or returns
// the spec.
func mustSpec(t *testing.T) func(*ebpf.CollectionSpec, error) *ebpf.CollectionSpec {
	return func(spec *ebpf.CollectionSpec, err error) *ebpf.CollectionSpec {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return spec
	}
}

// runXDP runs prog once (or repeat times) over in with plain BPF_PROG_RUN
// (no live frames) and returns its action and output frame.
func runXDP(t *testing.T, prog *ebpf.Program, in []byte, ifindex int, repeat uint32) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(in)+256)
	opts := ebpf.RunOptions{
		Data:    in,
		DataOut: out,
		Repeat:  repeat,
		Context: xdpMD{DataEnd: uint32(len(in)), IngressIfindex: uint32(ifindex)},
	}
	ret, err := prog.Run(&opts)
	if err != nil {
		t.Fatalf("BPF_PROG_RUN: %v", err)
	}
	return ret, opts.DataOut
}

// TestGeneratorProgram runs the live generator without live frames and
// checks every output frame byte for byte against the template rewritten in
// Go, and with gopacket for valid checksums. Each input has its headers
// scrambled first, as a recycled live-frame page may have: the program must
// write absolute values, not adjust what it finds.
func TestGeneratorProgram(t *testing.T) {
	needRoot(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name  string
		p     proto
		size  int
		src   string
		flows uint64
	}{
		{"udp one flow", protoUDP, 64, "198.18.0.1", 0},
		{"syn 1000 flows", protoSYN, 64, "198.18.0.1", 1000},
		{"udp 1000 flows", protoUDP, 64, "198.18.0.1", 1000},
		{"ack over a range", protoACK, 128, "198.18.0.250-198.18.1.9", 40},
		{"udp range 1518", protoUDP, 1518, "198.18.0.1-198.18.0.3", 10},
		{"syn whole space", protoSYN, 64, "198.18.0.1-4", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := testTemplate(t, tc.p, tc.size, tc.src, tc.flows)
			gen, err := loadProg(mustSpec(t)(genSpec(tp, loIndex)), genProgName)
			if err != nil {
				t.Fatal(err)
			}
			defer gen.Close()
			want := bytes.Clone(tp.frame)
			runs := uint64(0)
			check := func(i uint64, ret uint32, out []byte) {
				t.Helper()
				a, p := tp.space.flow(i)
				copy(want, tp.frame)
				tp.writeFlow(want, a, p)
				if ret != xdpTX {
					t.Fatalf("frame %d: action %d, want XDP_TX", i, ret)
				}
				if !bytes.Equal(out, want) {
					t.Fatalf("frame %d (flow %d/%d):\n got %x\nwant %x", i, a, p, out[:tp.hdrLen], want[:tp.hdrLen])
				}
				decodeFrame(t, out)
			}
			for i := range uint64(150) {
				in := bytes.Clone(tp.frame)
				for j := range tp.hdrLen {
					in[j] = byte(rng.Uint32())
				}
				ret, out := runXDP(t, gen.prog, in, loIndex, 1)
				runs++
				check(i, ret, out)
			}
			// Repeated runs over one buffer, as recycled pages are.
			ret, out := runXDP(t, gen.prog, tp.frame, loIndex, 7)
			runs += 7
			check(runs-1, ret, out)

			var st genState
			if err := gen.coll.Maps[genMapName].Lookup(uint32(0), &st); err != nil {
				t.Fatal(err)
			}
			if st.Sent != runs {
				t.Errorf("state counts %d frames, want %d", st.Sent, runs)
			}
		})
	}
}

// TestGeneratorRestoresFrame: a page comes back as the device on the other
// side of a veth left it: a SYN proxy cuts a 64-byte SYN to its 58-byte
// SYN-ACK and writes its MSS option where the SYN's payload began. The
// program sends the template's frame again, all of it, at its length,
// from an input with the spare byte liveSender gives it.
func TestGeneratorRestoresFrame(t *testing.T) {
	needRoot(t)
	tp := testTemplate(t, protoSYN, 64, "198.18.0.1-4", 100)
	gen, err := loadProg(mustSpec(t)(genSpec(tp, loIndex)), genProgName)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	want := bytes.Clone(tp.frame)
	tp.writeFlow(want, 0, 0)
	in := append(bytes.Clone(tp.frame), 0)
	copy(in[tp.hdrLen:], []byte{2, 4, 2, 0x18, 0xee, 0xee})
	ret, out := runXDP(t, gen.prog, in, loIndex, 1)
	if ret != xdpTX || !bytes.Equal(out, want) {
		t.Fatalf("action %d, %d bytes, want XDP_TX, %d:\n got %x\nwant %x", ret, len(out), len(want), out, want)
	}
	decodeFrame(t, out)
}

// TestGeneratorUDPZeroChecksum: a UDP checksum that computes to zero is sent
// as 0xffff by the program too.
func TestGeneratorUDPZeroChecksum(t *testing.T) {
	needRoot(t)
	tp := testTemplate(t, protoUDP, 64, "198.18.0.1", 100)
	// Pick the partial sum that makes flow 1's sum all ones.
	hi, lo := tp.baseAddr>>16, tp.baseAddr&0xffff
	tp.l4Sum = ^packet.Fold(uint32(tp.basePort+1) + hi + lo)
	gen, err := loadProg(mustSpec(t)(genSpec(tp, loIndex)), genProgName)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	want := bytes.Clone(tp.frame)
	for i := range uint32(2) {
		ret, out := runXDP(t, gen.prog, tp.frame, loIndex, 1)
		tp.writeFlow(want, 0, i)
		if ret != xdpTX || !bytes.Equal(out, want) {
			t.Fatalf("frame %d: action %d\n got %x\nwant %x", i, ret, out[:tp.hdrLen], want[:tp.hdrLen])
		}
	}
	if c := binary.BigEndian.Uint16(want[udpCsumOff:]); c != 0xffff {
		t.Errorf("flow 1's UDP checksum %#04x, want 0xffff", c)
	}
}

// TestGeneratorLeavesOtherDevices: frames from any device but the sending
// one (loopback traffic, where the program is attached too) pass untouched.
func TestGeneratorLeavesOtherDevices(t *testing.T) {
	needRoot(t)
	tp := testTemplate(t, protoSYN, 64, "198.18.0.1", 100)
	gen, err := loadProg(mustSpec(t)(genSpec(tp, 1<<20)), genProgName)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	in := bytes.Repeat([]byte{0xaa}, 80)
	ret, out := runXDP(t, gen.prog, in, loIndex, 1)
	if ret != xdpPass || !bytes.Equal(out, in) {
		t.Errorf("action %d, frame changed %v; want XDP_PASS, unchanged", ret, !bytes.Equal(out, in))
	}
}

// onOneCPU keeps the test on one CPU until it ends, so that per-CPU
// counters of the programs it runs add up as on one CPU.
func onOneCPU(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	var was, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &was); err != nil {
		t.Fatal(err)
	}
	for cpu := range 1024 {
		if was.IsSet(cpu) {
			one.Set(cpu)
			break
		}
	}
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.SchedSetaffinity(0, &was); err == nil {
			runtime.UnlockOSThread()
		}
	})
}

func TestCountProgram(t *testing.T) {
	needRoot(t)
	unicast := testTemplate(t, protoUDP, 64, "198.18.0.1", 0).frame
	multicast := bytes.Clone(unicast)
	copy(multicast, []byte{0x33, 0x33, 0, 0, 0, 1})
	swapped := bytes.Clone(unicast)
	swapMACs(swapped)
	if bytes.Equal(swapped, unicast) || !bytes.Equal(swapped[:6], unicast[6:12]) || !bytes.Equal(swapped[6:12], unicast[:6]) {
		t.Fatalf("swapMACs: %x from %x", swapped[:12], unicast[:12])
	}
	for _, tc := range []struct {
		name    string
		prog    string
		action  uint32
		wantOut []byte
	}{
		{"sink", countProgName, xdpDrop, unicast},
		{"reflect", reflProgName, xdpTX, swapped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			onOneCPU(t)
			p, err := loadProg(mustSpec(t)(bpf.LoadPktgen()), tc.prog)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ncpu, err := ebpf.PossibleCPU()
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]countValue, ncpu)
			if ret, out := runXDP(t, p.prog, multicast, loIndex, 1); ret != xdpPass || !bytes.Equal(out, multicast) {
				t.Errorf("multicast: action %d, want XDP_PASS untouched", ret)
			}
			c, err := readCounts(p.coll.Maps[countMapName], buf)
			if err != nil || c.packets != 0 {
				t.Fatalf("counted %+v (%v) before any unicast frame", c, err)
			}
			ret, out := runXDP(t, p.prog, unicast, loIndex, 1)
			if ret != tc.action || !bytes.Equal(out, tc.wantOut) {
				t.Errorf("unicast: action %d, frame %x; want %d, %x", ret, out[:12], tc.action, tc.wantOut[:12])
			}
			if c, err = readCounts(p.coll.Maps[countMapName], buf); err != nil {
				t.Fatal(err)
			}
			if c.packets != 1 || c.bytes != uint64(len(unicast)) || c.first == 0 || c.last != c.first || c.stamped != 1 {
				t.Errorf("after one frame: %+v", c)
			}
			runXDP(t, p.prog, unicast, loIndex, 199)
			if c, err = readCounts(p.coll.Maps[countMapName], buf); err != nil {
				t.Fatal(err)
			}
			if c.packets != 200 || c.bytes != 200*uint64(len(unicast)) || c.stamped != 192 || c.last <= c.first {
				t.Errorf("after 200 frames: %+v, want 200 frames, stamped at 192", c)
			}
		})
	}
}

func TestSteerProgram(t *testing.T) {
	needRoot(t)
	p, err := loadProg(mustSpec(t)(bpf.LoadPktgen()), steerProgName)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	frame := testTemplate(t, protoUDP, 64, "198.18.0.1", 0).frame
	// No socket in the map: the redirect falls back to the kernel.
	if ret, _ := runXDP(t, p.prog, frame, loIndex, 1); ret != xdpPass {
		t.Errorf("action %d without a socket, want XDP_PASS", ret)
	}
}

// TestLayouts: the map values the Go side reads and the constants it
// mirrors are what pktgen.c declares (bpf2go's types come from its BTF).
func TestLayouts(t *testing.T) {
	type field struct {
		name      string
		got, want uintptr
	}
	var gs genState
	var bgs bpf.PktgenGenState
	var cv countValue
	var bcv bpf.PktgenCountValue
	for _, f := range []field{
		{"sizeof(struct gen_state)", unsafe.Sizeof(gs), unsafe.Sizeof(bgs)},
		{"gen_state.sent", unsafe.Offsetof(gs.Sent), unsafe.Offsetof(bgs.Sent)},
		{"gen_state.flow", unsafe.Offsetof(gs.Flow), unsafe.Offsetof(bgs.Flow)},
		{"gen_state.addr", unsafe.Offsetof(gs.Addr), unsafe.Offsetof(bgs.Addr)},
		{"gen_state.port", unsafe.Offsetof(gs.Port), unsafe.Offsetof(bgs.Port)},
		{"binary.Size(genState)", uintptr(binary.Size(gs)), unsafe.Sizeof(bgs)},
		{"sizeof(struct count_value)", unsafe.Sizeof(cv), unsafe.Sizeof(bcv)},
		{"count_value.packets", unsafe.Offsetof(cv.Packets), unsafe.Offsetof(bcv.Packets)},
		{"count_value.bytes", unsafe.Offsetof(cv.Bytes), unsafe.Offsetof(bcv.Bytes)},
		{"count_value.first", unsafe.Offsetof(cv.First), unsafe.Offsetof(bcv.First)},
		{"count_value.last", unsafe.Offsetof(cv.Last), unsafe.Offsetof(bcv.Last)},
		{"count_value.stamped", unsafe.Offsetof(cv.Stamped), unsafe.Offsetof(bcv.Stamped)},
		{"binary.Size(countValue)", uintptr(binary.Size(cv)), unsafe.Sizeof(bcv)},
	} {
		if f.got != f.want {
			t.Errorf("%s: Go %d, pktgen.c %d", f.name, f.got, f.want)
		}
	}

	spec, err := bpf.LoadPktgen()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		name              string
		value, maxEntries uint32
	}{
		{genMapName, uint32(unsafe.Sizeof(gs)), 1},
		{countMapName, uint32(unsafe.Sizeof(cv)), 1},
		{xskMapName, 4, maxQueues},
	} {
		ms := spec.Maps[m.name]
		if ms == nil {
			t.Errorf("no map %s", m.name)
			continue
		}
		if ms.ValueSize != m.value || ms.MaxEntries != m.maxEntries {
			t.Errorf("map %s: value size %d, %d entries; want %d, %d", m.name, ms.ValueSize, ms.MaxEntries, m.value, m.maxEntries)
		}
	}
	if n := len(bpf.PktgenGenConfig{}.Tmpl); n != tmplLen {
		t.Errorf("template of %d bytes, want %d", n, tmplLen)
	}
	for _, name := range []string{genProgName, countProgName, reflProgName, steerProgName} {
		if spec.Programs[name] == nil {
			t.Errorf("no program %s", name)
		}
	}
}

// TestLoadOnlyWhatIsUsed: a counting program comes without the generator's
// constants and the other programs' maps.
func TestLoadOnlyWhatIsUsed(t *testing.T) {
	needRoot(t)
	tp := testTemplate(t, protoUDP, 64, "198.18.0.1", 0)
	for _, tc := range []struct {
		spec *ebpf.CollectionSpec
		prog string
		maps []string
	}{
		{mustSpec(t)(genSpec(tp, loIndex)), genProgName, []string{genMapName, ".rodata"}},
		{mustSpec(t)(bpf.LoadPktgen()), countProgName, []string{countMapName}},
		{mustSpec(t)(bpf.LoadPktgen()), reflProgName, []string{countMapName}},
		{mustSpec(t)(bpf.LoadPktgen()), steerProgName, []string{xskMapName}},
	} {
		p, err := loadProg(tc.spec, tc.prog)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for name := range p.coll.Maps {
			got = append(got, name)
		}
		slices.Sort(got)
		slices.Sort(tc.maps)
		if len(p.coll.Programs) != 1 || !slices.Equal(got, tc.maps) {
			t.Errorf("%s: %d programs, maps %v; want 1, %v", tc.prog, len(p.coll.Programs), got, tc.maps)
		}
		p.Close()
	}
}

// TestStampEvery keeps stampEvery, which the rate's extrapolation names,
// equal to pktgen.c's STAMP_EVERY, which the programs count with.
func TestStampEvery(t *testing.T) {
	src, err := os.ReadFile("../../dataplane/bpf/pktgen.c")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("#define STAMP_EVERY %d\n", stampEvery)
	if !strings.Contains(string(src), want) {
		t.Errorf("pktgen.c has no %q", strings.TrimSpace(want))
	}
}
