package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/xvs-lb/xvs/control/realserver"
	"github.com/xvs-lb/xvs/internal/xvs"
)

const realserverUsage = `usage: xvsadm realserver dr|tun|nat --vip ADDR[,ADDR...] [--interface IF] [--director ADDR] [--undo] [--dry-run]

Sets a real server up as the seed's lvs*_realserver_setup.sh scripts do:
  dr   the VIPs on lo; ARP for them neither answered nor announced (arp_ignore=1, arp_announce=2)
  tun  as dr, plus rp_filter off and xvs's XDP decapsulator on --interface (no ipip module needed)
  nat  default route through the director (--director)
--undo puts back what an earlier run changed; --dry-run says what it would do.`

type realserverOpts struct {
	vips, ifname, director, state, xdpMode *string
	undo, dry                              *bool
}

// realserverFlags are xvsadm realserver's options, also listed by xvsadm(8).
func realserverFlags(stderr io.Writer) (*flag.FlagSet, realserverOpts) {
	fs := flag.NewFlagSet("realserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, realserverUsage) }
	return fs, realserverOpts{
		vips:     fs.String("vip", "", "virtual IP addresses, comma-separated"),
		ifname:   fs.String("interface", "", "the interface towards the director (tun: where the decapsulator goes)"),
		director: fs.String("director", "", "nat: the director's address, the new default gateway"),
		undo:     fs.Bool("undo", false, "restore what an earlier run changed"),
		dry:      fs.Bool("dry-run", false, "report what would be done, change nothing"),
		state:    fs.String("state", "", "where to record changes for --undo (default /run/xvs/realserver-IF.json)"),
		xdpMode:  fs.String("xdp-mode", "auto", "tun: auto, driver or generic"),
	}
}

// realserverMain runs on the real server itself, not against xvsd.
func realserverMain(args []string, stdout, stderr io.Writer) int {
	fs, f := realserverFlags(stderr)
	vips, ifname, director, undo, dry, state, xdpMode := f.vips, f.ifname, f.director, f.undo, f.dry, f.state, f.xdpMode
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, realserverUsage)
		return exitUsage
	}
	mode, err := realserver.ParseMode(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "xvsadm realserver: %v\n", err)
		return exitUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	opts := realserver.Options{Mode: mode, Interface: *ifname, Undo: *undo, DryRun: *dry, StateFile: *state}
	if opts.XDPMode, err = xvs.ParseXDPMode(*xdpMode); err != nil {
		fmt.Fprintf(stderr, "xvsadm realserver: %v\n", err)
		return exitUsage
	}
	for _, v := range strings.Split(*vips, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			fmt.Fprintf(stderr, "xvsadm realserver: --vip %q is not an address\n", v)
			return exitUsage
		}
		opts.VIPs = append(opts.VIPs, a)
	}
	if *director != "" {
		if opts.Director, err = netip.ParseAddr(*director); err != nil {
			fmt.Fprintf(stderr, "xvsadm realserver: --director %q is not an address\n", *director)
			return exitUsage
		}
	}
	actions, err := realserver.Apply(opts)
	for _, a := range actions {
		fmt.Fprintln(stdout, a)
	}
	if err != nil {
		fmt.Fprintf(stderr, "xvsadm realserver: %v\n", err)
		return exitFailed
	}
	return exitOK
}
