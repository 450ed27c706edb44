// Command xvs-pktgen is xvs's traffic generator, sink and reflector for
// benchmarks, in the spirit of the kernel's pktgen (which this kernel lacks):
//
//	xvs-pktgen send    -i IFACE [-engine live|xsk] -src-mac MAC -dst-mac MAC -src-ip A[-B] -dst-ip A
//	                   [-sport P] [-dport P] [-proto udp|syn|ack] [-size N] [-flows N]
//	                   [-rate PPS] [-duration D] [-count N] [-cpu N] [-count-returns] [-json] [-quiet]
//	xvs-pktgen sink    -i IFACE [-mode xdp|xsk] [-duration D] [-cpu N] [-napi-cpu N] [-json] [-quiet]
//	xvs-pktgen reflect -i IFACE [-mode xdp|xsk] [-duration D] [-cpu N] [-napi-cpu N] [-json] [-quiet]
//
// send's live engine runs an XDP program with BPF_PROG_RUN in live-frames
// mode: the kernel transmits each repetition (XDP_TX on the given ingress
// device) and the program rewrites the headers for the next flow, with valid
// IPv4 and L4 checksums. The xsk engine transmits through xvs's AF_XDP
// socket. sink counts and drops (XDP program, or AF_XDP sockets), reflect
// swaps the MAC addresses and sends every frame back (XDP_TX, or AF_XDP
// RX+TX). Together they measure the ceilings xvs's figures are compared to.
// sink and reflect count unicast frames only: the kernel's own multicast
// (IPv6 neighbour discovery, ARP broadcasts) passes to the stack uncounted.
//
// -cpu pins the thread that does the work in user space: the sender, or the
// AF_XDP loop (in -mode xdp that thread only waits). The in-kernel work of a
// veth receiver runs in its NAPI poll, by default a softirq on the CPU that
// transmitted into the pair, in lockstep with the sender; -napi-cpu N moves
// it to threaded NAPI pinned to CPU N instead (and restores the setting at
// exit).
//
// Run it inside a network namespace (ip netns exec NS xvs-pktgen ...). Each
// command prints one line on stderr once its programs are attached and it is
// ready, progress once a second unless -quiet or -json, and a summary on
// stdout: text, or with -json exactly one JSON object. Every XDP program is
// attached through a BPF link and detached at exit, SIGINT and SIGTERM
// included.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usageText = `usage:
  xvs-pktgen send    -i IFACE [-engine live|xsk] -src-mac MAC -dst-mac MAC -src-ip A[-B] -dst-ip A
                     [-sport P] [-dport P] [-proto udp|syn|ack] [-size N] [-flows N]
                     [-rate PPS] [-duration D] [-count N] [-cpu N] [-count-returns] [-json] [-quiet]
  xvs-pktgen sink    -i IFACE [-mode xdp|xsk] [-duration D] [-cpu N] [-napi-cpu N] [-json] [-quiet]
  xvs-pktgen reflect -i IFACE [-mode xdp|xsk] [-duration D] [-cpu N] [-napi-cpu N] [-json] [-quiet]
Run "xvs-pktgen CMD -h" for a command's flags.
`

// run is main without the exit: 0 done, 1 failed, 2 bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	var err error
	switch cmd := args[0]; cmd {
	case "send":
		c, perr := parseSend(args[1:], stderr)
		if perr != nil {
			return usageError(stderr, perr)
		}
		err = runSend(ctx, c, stdout, stderr)
	case "sink", "reflect":
		c, perr := parseRecv(cmd, args[1:], stderr)
		if perr != nil {
			return usageError(stderr, perr)
		}
		err = runRecv(ctx, c, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return 0
	default:
		fmt.Fprintf(stderr, "xvs-pktgen: unknown command %q\n%s", cmd, usageText)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "xvs-pktgen:", err)
		return 1
	}
	return 0
}

func usageError(stderr io.Writer, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "xvs-pktgen:", err)
	return 2
}

// sender is a transmit engine.
type sender interface {
	// sent returns the frames sent so far; safe from any goroutine.
	sent() (uint64, error)
	// burst is how many frames the engine wants per burst at rate.
	burst(rate uint64) uint64
	// run sends what p grants until it ends the run or stop is set, and
	// calls p.finish when it stops sending.
	run(p *pacer, stop *atomic.Bool) error
	// describe says how the engine sends, for the ready line.
	describe() string
	Close() error
}

// settleWait bounds how long send waits, after its last frame, for frames
// still on their way back (-count-returns).
const (
	settleWait  = time.Second
	settlePoll  = 20 * time.Millisecond
	settleQuiet = 3 // unchanged polls that count as settled
)

func runSend(ctx context.Context, c *sendConfig, stdout, stderr io.Writer) (err error) {
	ifi, err := net.InterfaceByName(c.iface)
	if err != nil {
		return err
	}
	space, clamped := newFlowSpace(c.src.count, c.sport, c.flows, c.proto)
	if clamped {
		fmt.Fprintf(stderr, "xvs-pktgen: %d flows do not fit %d source addresses x %d ports from %d; sending %d\n",
			c.flows, space.addrs, space.ports, c.sport, space.flows)
	}
	t, err := newTemplate(c, space)
	if err != nil {
		return err
	}
	var s sender
	switch c.engine {
	case "live":
		s, err = newLiveSender(t, ifi.Index)
	case "xsk":
		s, err = newXSKSender(t, ifi.Index)
	}
	if err != nil {
		return fmt.Errorf("%s engine on %s: %w", c.engine, c.iface, err)
	}
	defer func() { err = errors.Join(err, s.Close()) }()
	var returns *xdpReceiver
	if c.countReturns {
		if returns, err = newXDPReceiver(false, ifi.Index); err != nil {
			return fmt.Errorf("-count-returns on %s: %w", c.iface, err)
		}
		defer func() { err = errors.Join(err, returns.Close()) }()
		fmt.Fprintf(stderr, "xvs-pktgen: counting returns on %s (%s mode)\n", c.iface, returns.prog.mode)
	}
	fmt.Fprintf(stderr, "xvs-pktgen: send ready on %s (%s engine, %s, %d B, %d flows; %s)\n",
		c.iface, c.engine, c.proto, c.size, space.flows, s.describe())

	var stop atomic.Bool
	defer context.AfterFunc(ctx, func() { stop.Store(true) })()
	m := &meter{verb: "sent", read: func() (uint64, uint64) {
		n, _ := s.sent()
		return n, n * uint64(len(t.frame))
	}}
	if c.progress() {
		m.out = stderr
	}
	type outcome struct {
		p   *pacer
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		if err := pinThread(c.cpu); err != nil {
			done <- outcome{err: fmt.Errorf("pin sender to CPU %d: %w", c.cpu, err)}
			return
		}
		p := newPacer(c.rate, s.burst(c.rate), c.count, c.duration)
		done <- outcome{p, s.run(p, &stop)}
	}()
	m.start = time.Now()
	stopMeter := m.begin()
	o := <-done
	stopMeter()
	if o.err != nil {
		return o.err
	}
	sent, err := s.sent()
	if err != nil {
		return err
	}
	res := &sendResult{
		Cmd:       "send",
		Engine:    c.engine,
		Proto:     c.proto.String(),
		Size:      c.size,
		Flows:     uint64(space.flows),
		Sent:      sent,
		DurationS: o.p.done.Sub(o.p.start).Seconds(),
	}
	res.OfferedPPS = rate(sent, res.DurationS)
	if returns != nil {
		got, err := settle(returns, &stop)
		if err != nil {
			return err
		}
		pps := rate(got.packets, got.span())
		res.Returned, res.ReturnedPPS = &got.packets, &pps
	}
	return writeSend(stdout, res, c.json)
}

// settle waits until the returned-frame count stops growing (frames still
// in flight after the last one sent), for at most settleWait.
func settle(r *xdpReceiver, stop *atomic.Bool) (counts, error) {
	var last counts
	quiet := 0
	for deadline := time.Now().Add(settleWait); time.Now().Before(deadline) && quiet < settleQuiet; {
		c, err := readCounts(r.counter, r.buf)
		if err != nil {
			return c, err
		}
		if c.packets == last.packets {
			quiet++
		} else {
			quiet = 0
		}
		last = c
		if stop.Load() {
			break
		}
		time.Sleep(settlePoll)
	}
	return last, nil
}

func runRecv(ctx context.Context, c *recvConfig, stdout, stderr io.Writer) (err error) {
	ifi, err := net.InterfaceByName(c.iface)
	if err != nil {
		return err
	}
	reflect := c.cmd == "reflect"
	var r receiver
	var how string
	switch c.mode {
	case "xdp":
		x, xerr := newXDPReceiver(reflect, ifi.Index)
		if xerr == nil {
			how = fmt.Sprintf("XDP program in %s mode", x.prog.mode)
		}
		r, err = x, xerr
	case "xsk":
		x, xerr := newXSKReceiver(reflect, c.iface, ifi.Index)
		if xerr == nil {
			copyMode := "copy"
			if x.socks[0].ZeroCopy() {
				copyMode = "zero-copy"
			}
			how = fmt.Sprintf("%d AF_XDP sockets in %s mode, steering program in %s mode",
				len(x.socks), copyMode, x.steer.mode)
		}
		r, err = x, xerr
	}
	if err != nil {
		return fmt.Errorf("%s -mode %s on %s: %w", c.cmd, c.mode, c.iface, err)
	}
	defer func() { err = errors.Join(err, r.Close()) }()
	if c.napiCPU >= 0 {
		// Only now does the veth have NAPI instances: the program gave
		// them. Deferred after r.Close, so it runs before the detach.
		n, nerr := pinNAPI(c.iface, c.napiCPU)
		if nerr != nil {
			return nerr
		}
		defer func() { err = errors.Join(err, n.Close()) }()
		how += fmt.Sprintf(", %d threaded NAPI thread(s) on CPU %d", len(n.pids), c.napiCPU)
	}
	fmt.Fprintf(stderr, "xvs-pktgen: %s ready on %s (%s)\n", c.cmd, c.iface, how)

	var stop atomic.Bool
	defer context.AfterFunc(ctx, func() { stop.Store(true) })()
	timer := time.AfterFunc(c.duration, func() { stop.Store(true) })
	defer timer.Stop()
	m := &meter{verb: "recv", read: func() (uint64, uint64) {
		p, b, _ := r.counts()
		return p, b
	}}
	if c.progress() {
		m.out = stderr
	}
	done := make(chan error, 1)
	go func() {
		if err := pinThread(c.cpu); err != nil {
			done <- fmt.Errorf("pin %s to CPU %d: %w", c.cmd, c.cpu, err)
			return
		}
		done <- r.run(&stop)
	}()
	m.start = time.Now()
	stopMeter := m.begin()
	err = <-done
	stopMeter()
	if err != nil {
		return err
	}
	res := &recvResult{Cmd: c.cmd, Mode: c.mode, PerSecond: trimIdle(m.perSecond)}
	if err := r.result(res); err != nil {
		return err
	}
	res.PPS = rate(res.Received, res.DurationS)
	res.BPS = rate(res.Bytes*8, res.DurationS)
	if x, ok := r.(*xskReceiver); ok && !c.quiet {
		if st, err := x.lost(); err == nil {
			fmt.Fprintf(stderr, "xvs-pktgen: kernel side: %d frames dropped with the RX ring full, %d other drops, fill ring found empty %d times\n",
				st.RxRingFull, st.RxDropped, st.RxFillRingEmptyDescs)
		}
	}
	return writeRecv(stdout, res, c.json)
}
