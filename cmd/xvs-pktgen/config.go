package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Limits on what the command accepts.
const (
	minSize     = 64   // smallest Ethernet frame, FCS included
	maxSize     = 1518 // 1500-byte IP packet, FCS included
	fcsLen      = 4    // counted by -size, never built: the NIC appends it
	maxDuration = 10 * time.Minute
	maxAddrs    = 1 << 16 // source addresses in a -src-ip range
)

// proto is the kind of traffic send builds.
type proto uint8

const (
	protoUDP proto = iota // UDP datagrams
	protoSYN              // TCP SYNs: connection attempts
	protoACK              // TCP ACKs with payload: established flows
)

func (p proto) String() string {
	switch p {
	case protoUDP:
		return "udp"
	case protoSYN:
		return "syn"
	case protoACK:
		return "ack"
	}
	return "proto(" + strconv.Itoa(int(p)) + ")"
}

func parseProto(s string) (proto, error) {
	for _, p := range []proto{protoUDP, protoSYN, protoACK} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown protocol %q: want udp, syn or ack", s)
}

// addrRange is an inclusive range of IPv4 addresses, first to first+count-1.
type addrRange struct {
	first netip.Addr
	count uint32
}

// parseAddrRange parses "A" or "A-B", where B is a full address or, as a
// shorthand, the last octet of one ("198.18.0.1-254").
func parseAddrRange(s string) (addrRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	first, err := netip.ParseAddr(lo)
	if err != nil || !first.Is4() {
		return addrRange{}, fmt.Errorf("address %q: want an IPv4 address or range A-B", s)
	}
	if !isRange {
		return addrRange{first: first, count: 1}, nil
	}
	last, err := netip.ParseAddr(hi)
	if err != nil {
		octet, oerr := strconv.ParseUint(hi, 10, 8)
		if oerr != nil {
			return addrRange{}, fmt.Errorf("address range %q: bad end %q", s, hi)
		}
		b := first.As4()
		b[3] = byte(octet)
		last = netip.AddrFrom4(b)
	}
	if !last.Is4() {
		return addrRange{}, fmt.Errorf("address range %q: end is not IPv4", s)
	}
	a, b := addr4(first), addr4(last)
	if b < a {
		return addrRange{}, fmt.Errorf("address range %q: end before start", s)
	}
	if n := uint64(b) - uint64(a) + 1; n > maxAddrs {
		return addrRange{}, fmt.Errorf("address range %q: %d addresses, at most %d", s, n, maxAddrs)
	}
	return addrRange{first: first, count: b - a + 1}, nil
}

func addr4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func parseMAC(s string) ([6]byte, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return [6]byte{}, fmt.Errorf("MAC address %q: want six colon-separated bytes", s)
	}
	return [6]byte(hw), nil
}

// common are the options every subcommand takes.
type common struct {
	iface    string
	duration time.Duration
	cpu      int // -1: not pinned
	json     bool
	quiet    bool
}

func (c *common) register(fs *flag.FlagSet, defDuration time.Duration) {
	fs.StringVar(&c.iface, "i", "", "interface (required)")
	fs.DurationVar(&c.duration, "duration", defDuration, "stop after this long (at most 10m)")
	fs.IntVar(&c.cpu, "cpu", -1, "pin the sending or AF_XDP thread to this CPU")
	fs.BoolVar(&c.json, "json", false, "print the summary as one JSON object on stdout")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress lines")
}

func (c *common) validate() error {
	if c.iface == "" {
		return errors.New("-i IFACE is required")
	}
	if c.duration <= 0 || c.duration > maxDuration {
		return fmt.Errorf("-duration %v: want more than 0 and at most %v", c.duration, maxDuration)
	}
	if c.cpu < -1 {
		return fmt.Errorf("-cpu %d: want a CPU number", c.cpu)
	}
	return nil
}

// progress reports whether per-second lines go to stderr.
func (c *common) progress() bool { return !c.quiet && !c.json }

// sendConfig is the parsed command line of send.
type sendConfig struct {
	common
	engine       string
	srcMAC       [6]byte
	dstMAC       [6]byte
	src          addrRange
	dst          netip.Addr
	sport, dport uint16
	proto        proto
	size         int
	flows        uint64 // 0: the default for proto and source range
	rate         uint64 // packets per second; 0 is flat out
	count        uint64 // 0: no limit but the duration
	countReturns bool
}

// parseSend parses send's arguments. Errors name the offending flag.
func parseSend(args []string, stderr io.Writer) (*sendConfig, error) {
	c := &sendConfig{}
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.common.register(fs, 5*time.Second)
	var srcMAC, dstMAC, src, dst, protoName string
	var sport, dport uint
	fs.StringVar(&c.engine, "engine", "live", "live (BPF_PROG_RUN live frames) or xsk (AF_XDP TX)")
	fs.StringVar(&srcMAC, "src-mac", "", "source MAC address (required)")
	fs.StringVar(&dstMAC, "dst-mac", "", "destination MAC address (required)")
	fs.StringVar(&src, "src-ip", "", "source IPv4 address or range A-B (required)")
	fs.StringVar(&dst, "dst-ip", "", "destination IPv4 address (required)")
	fs.UintVar(&sport, "sport", 1024, "first source port")
	fs.UintVar(&dport, "dport", 80, "destination port")
	fs.StringVar(&protoName, "proto", "udp", "udp, syn (TCP SYN) or ack (TCP ACK with payload)")
	fs.IntVar(&c.size, "size", minSize, "Ethernet frame size including the 4-byte FCS, 64 to 1518")
	fs.Uint64Var(&c.flows, "flows", 0, "distinct flows to cycle through (default 1, the source range for a range, every flow for syn)")
	fs.Uint64Var(&c.rate, "rate", 0, "packets per second; 0 sends flat out")
	fs.Uint64Var(&c.count, "count", 0, "stop after this many packets; 0 for no limit")
	fs.BoolVar(&c.countReturns, "count-returns", false, "count frames coming back on the interface (XDP program)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := c.common.validate(); err != nil {
		return nil, err
	}
	if c.engine != "live" && c.engine != "xsk" {
		return nil, fmt.Errorf("-engine %q: want live or xsk", c.engine)
	}
	var err error
	if srcMAC == "" || dstMAC == "" || src == "" || dst == "" {
		return nil, errors.New("-src-mac, -dst-mac, -src-ip and -dst-ip are required")
	}
	if c.srcMAC, err = parseMAC(srcMAC); err != nil {
		return nil, fmt.Errorf("-src-mac: %w", err)
	}
	if c.dstMAC, err = parseMAC(dstMAC); err != nil {
		return nil, fmt.Errorf("-dst-mac: %w", err)
	}
	if c.src, err = parseAddrRange(src); err != nil {
		return nil, fmt.Errorf("-src-ip: %w", err)
	}
	if c.dst, err = netip.ParseAddr(dst); err != nil || !c.dst.Is4() {
		return nil, fmt.Errorf("-dst-ip %q: want an IPv4 address", dst)
	}
	if sport == 0 || sport > 65535 || dport == 0 || dport > 65535 {
		return nil, fmt.Errorf("-sport %d, -dport %d: want ports 1 to 65535", sport, dport)
	}
	c.sport, c.dport = uint16(sport), uint16(dport)
	if c.proto, err = parseProto(protoName); err != nil {
		return nil, fmt.Errorf("-proto: %w", err)
	}
	if c.size < minSize || c.size > maxSize {
		return nil, fmt.Errorf("-size %d: want %d to %d (FCS included)", c.size, minSize, maxSize)
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "flows" })
	if explicit && c.flows == 0 {
		return nil, errors.New("-flows 0: want at least one flow")
	}
	return c, nil
}

// recvConfig is the parsed command line of sink and reflect.
type recvConfig struct {
	common
	cmd     string // "sink" or "reflect"
	mode    string // "xdp" or "xsk"
	napiCPU int    // -1: leave the device's NAPI as it is
}

func parseRecv(cmd string, args []string, stderr io.Writer) (*recvConfig, error) {
	c := &recvConfig{cmd: cmd}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.common.register(fs, maxDuration)
	fs.StringVar(&c.mode, "mode", "xdp", "xdp (in-kernel program) or xsk (AF_XDP socket per RX queue)")
	fs.IntVar(&c.napiCPU, "napi-cpu", -1, "switch the interface to threaded NAPI and pin its NAPI threads to this CPU")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := c.common.validate(); err != nil {
		return nil, err
	}
	if c.mode != "xdp" && c.mode != "xsk" {
		return nil, fmt.Errorf("-mode %q: want xdp or xsk", c.mode)
	}
	if c.napiCPU < -1 {
		return nil, fmt.Errorf("-napi-cpu %d: want a CPU number", c.napiCPU)
	}
	return c, nil
}
