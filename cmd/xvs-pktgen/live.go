package main

import (
	"bytes"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

const (
	// liveBatch frames are run and then flushed to the device together.
	// The kernel allows up to 256; the receiving veth's ring holds 256
	// frames, so a smaller batch leaves it room.
	liveBatch = 64
	// liveChunk is the most frames one call sends: about 10 ms flat out,
	// which bounds how far a run overshoots its duration and how long a
	// signal waits.
	liveChunk = 1 << 16
	// liveSlowChunk replaces liveChunk when every call pays the XDP
	// dispatcher update (see liveSender): a call then costs tens of
	// milliseconds, which a million frames amortize.
	liveSlowChunk = 1 << 20
	// livePace is the interval a paced live sender's bursts aim at.
	livePace = 100 * time.Microsecond
)

// liveSender runs the generator program with BPF_PROG_RUN in live-frames
// mode: every repetition transmits the frame, rewritten for its flow, on the
// interface given as the ingress device (XDP_TX).
//
// A BPF_PROG_RUN call of an XDP program with more than one repetition adds
// the program to the kernel's XDP dispatcher and removes it again at the
// end, and each change rewrites the dispatcher's trampoline: about 15 ms
// each here, 30 ms a call, whatever the number of frames. A program attached
// to a device stays in the dispatcher, and then the calls change nothing. So
// the generator is also attached to the namespace's loopback device in
// generic mode, where it passes every frame (it only touches frames whose
// ingress device is the sending interface); that brings a call down to about
// 15 µs, and makes small paced bursts and prompt stops possible. Where
// loopback cannot take it, calls just stay slow and large.
type liveSender struct {
	gen     *xdpProg
	state   *ebpf.Map
	t       *template
	ifindex int
	chunk   uint64
	note    string // how the dispatcher question was settled
}

func newLiveSender(t *template, ifindex int) (*liveSender, error) {
	spec, err := genSpec(t, ifindex)
	if err != nil {
		return nil, err
	}
	gen, err := loadProg(spec, genProgName)
	if err != nil {
		return nil, err
	}
	l := &liveSender{gen: gen, state: gen.coll.Maps[genMapName], t: t, ifindex: ifindex, chunk: liveChunk}
	lo, err := net.InterfaceByName("lo")
	if err == nil {
		err = gen.attach(lo.Index)
	}
	if err != nil {
		l.chunk = liveSlowChunk
		l.note = fmt.Sprintf("slow calls: generator not attached to lo: %v", err)
	} else {
		l.note = "generator kept in the XDP dispatcher through lo"
	}
	return l, nil
}

// sent reads the frames generated so far from the program's state map. The
// program counts every run, so the count is right even when a call was
// interrupted by a signal and repeated.
func (l *liveSender) sent() (uint64, error) {
	var st genState
	if err := l.state.Lookup(uint32(0), &st); err != nil {
		return 0, fmt.Errorf("read %s: %w", genMapName, err)
	}
	return st.Sent, nil
}

// burst is the pacer's burst at rate: livePace's worth of frames, at most
// one call.
func (l *liveSender) burst(rate uint64) uint64 {
	return min(l.chunk, max(1, uint64(float64(rate)*livePace.Seconds())))
}

// run sends what p grants until p ends the run or stop is set. The calling
// goroutine should be locked to its thread (and pinned).
func (l *liveSender) run(p *pacer, stop *atomic.Bool) error {
	// A byte to spare, which the program cuts from every frame: see
	// pktgen_gen.
	in := append(bytes.Clone(l.t.frame), 0)
	opts := ebpf.RunOptions{
		Data:      in,
		Flags:     unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		BatchSize: liveBatch,
		Context: xdpMD{
			DataEnd:        uint32(len(in)),
			IngressIfindex: uint32(l.ifindex),
		},
	}
	var sent uint64
	for !stop.Load() {
		n := p.grant(sent, l.chunk)
		if n == 0 {
			break
		}
		opts.Repeat = uint32(n)
		if _, err := l.gen.prog.Run(&opts); err != nil {
			return fmt.Errorf("BPF_PROG_RUN live frames on ifindex %d: %w", l.ifindex, err)
		}
		s, err := l.sent()
		if err != nil {
			return err
		}
		sent = s
	}
	p.finish(sent)
	return nil
}

func (l *liveSender) describe() string { return l.note }

func (l *liveSender) Close() error { return l.gen.Close() }
