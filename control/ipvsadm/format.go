package ipvsadm

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/internal/xvs"
)

// Print writes resp in the layout c asks for (or as JSON with --json).
func (c *Command) Print(w io.Writer, resp *api.Response) error {
	bw := bufio.NewWriter(w)
	switch {
	case c.Layout == LayoutHelp:
		WriteUsage(bw)
	case c.Layout == LayoutVersion:
		WriteVersion(bw)
	case c.Layout == LayoutNone:
	case c.JSON:
		if err := WriteJSON(bw, resp); err != nil {
			return err
		}
	case c.Layout == LayoutServices:
		// Listing one service, ipvsadm prints no version header.
		if c.Request.Filter == nil {
			WriteHeader(bw, resp.Capacity)
		}
		WriteServices(bw, resp.Services, c.List)
	case c.Layout == LayoutConns:
		WriteConns(bw, resp.Conns, c.List)
	case c.Layout == LayoutTimeouts:
		if resp.Timeouts == nil {
			return fmt.Errorf("xvsd sent no timeouts")
		}
		WriteTimeouts(bw, *resp.Timeouts)
	case c.Layout == LayoutRules:
		WriteRules(bw, resp.Services, c.List)
	case c.Layout == LayoutStatus:
		if resp.Status == nil {
			return fmt.Errorf("xvsd sent no status")
		}
		WriteStatus(bw, resp.Status)
	case c.Layout == LayoutHealth:
		WriteHealth(bw, resp.Health)
	case c.Layout == LayoutDaemon:
		WriteDaemons(bw, resp.Daemons)
	}
	return bw.Flush()
}

// ReportArgs is the listing that WriteReport begins with.
var ReportArgs = []string{"-L", "-n", "--stats"}

// WriteReport writes what xvsd prints on SIGUSR1 and when it stops: first
// resp's service table exactly as xvsadm -L -n --stats prints it (the same
// Command prints both), then resp.Status as xvsadm status prints it.
func WriteReport(w io.Writer, resp *api.Response) error {
	c, err := Parse(ReportArgs)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := c.Print(w, resp); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if resp.Status != nil {
		bw := bufio.NewWriter(w)
		WriteStatus(bw, resp.Status)
		return bw.Flush()
	}
	return nil
}

// WriteJSON writes resp as indented JSON.
func WriteJSON(w io.Writer, resp *api.Response) error {
	b, err := json.MarshalIndent(resp, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteHeader writes the first line of ipvsadm -L; size is the connection
// table's size.
func WriteHeader(w io.Writer, size int) {
	fmt.Fprintf(w, "IP Virtual Server version %s (size=%d)\n", ipvsVersion, size)
}

// WriteServices writes the service table as ipvsadm -L -n does with the
// given options (--stats, --rate, --thresholds, --persistent-conn),
// without the version header. Services and real servers are sorted as
// ipvsadm sorts them unless o.NoSort. Real servers being drained are listed.
func WriteServices(w io.Writer, services []api.ServiceState, o ListOptions) {
	const prot = "Prot LocalAddress:Port"
	switch {
	case o.Stats:
		fmt.Fprintf(w, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n", prot, "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case o.Rate:
		fmt.Fprintf(w, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n", prot, "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	case o.Thresholds:
		fmt.Fprintf(w, "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n", prot, "Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
	case o.PersistentConn:
		fmt.Fprintf(w, "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n", prot, "Weight", "PersistConn", "ActiveConn", "InActConn")
	default:
		fmt.Fprintf(w, "%s Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n", prot)
	}
	for _, s := range sortedServices(services, o.NoSort) {
		name := serviceName(&s)
		switch {
		case o.Stats:
			fmt.Fprintf(w, "%-33s%s\n", name, counters(s.Stats, o.Exact))
		case o.Rate:
			r := s.Rates
			fmt.Fprintf(w, "%-33s%s%s%s%s%s\n", name, largeNum(rate(r.CPS), o.Exact), largeNum(rate(r.InPPS), o.Exact),
				largeNum(rate(r.OutPPS), o.Exact), largeNum(rate(r.InBPS), o.Exact), largeNum(rate(r.OutBPS), o.Exact))
		default:
			fmt.Fprintf(w, "%s %s%s\n", name, s.Scheduler, serviceFlags(&s))
		}
		for _, r := range sortedReals(s.Reals, o.NoSort, true) {
			dest := addrPort(r.Addr, r.Port)
			var line string
			switch {
			case o.Stats:
				line = fmt.Sprintf("  -> %-28s%s", dest, counters(r.Stats, o.Exact))
			case o.Rate:
				line = fmt.Sprintf("  -> %-28s %8d %8d %8d%s%s", dest, rate(r.Rates.CPS), rate(r.Rates.InPPS), rate(r.Rates.OutPPS),
					largeNum(rate(r.Rates.InBPS), o.Exact), largeNum(rate(r.Rates.OutBPS), o.Exact))
			case o.Thresholds:
				line = fmt.Sprintf("  -> %-28s %-10d %-10d %-10d %-10d", dest, r.UpperThreshold, r.LowerThreshold, r.ActiveConn, r.InActConn)
			case o.PersistentConn:
				line = fmt.Sprintf("  -> %-28s %-9d %-11d %-10d %-10d", dest, r.Weight, r.PersistConn, r.ActiveConn, r.InActConn)
			default:
				line = fmt.Sprintf("  -> %-28s %-7s %-6d %-10d %-10d", dest, forwardName(r.Method), r.Weight, r.ActiveConn, r.InActConn)
			}
			// A removed server still carrying connections (IPVS keeps
			// such a destination out of -L; xvs lists it, marked).
			if r.Draining {
				line += " draining"
			}
			fmt.Fprintln(w, line)
		}
	}
}

// counters formats --stats' five columns.
func counters(c api.Counters, exact bool) string {
	return largeNum(c.Conns, exact) + largeNum(c.InPkts, exact) + largeNum(c.OutPkts, exact) +
		largeNum(c.InBytes, exact) + largeNum(c.OutBytes, exact)
}

// rate rounds a per-second rate to the integer the kernel would report.
func rate(v float64) uint64 {
	if !(v > 0) { // also NaN
		return 0
	}
	if v >= math.MaxUint64 {
		return math.MaxUint64
	}
	return uint64(math.Round(v))
}

// largeNum is ipvsadm's print_largenum: a space and 8 columns, in K, M, G or
// T from 100 million on, unless exact.
func largeNum(n uint64, exact bool) string {
	switch {
	case exact:
		s := fmt.Sprint(n)
		return fmt.Sprintf("%*s", max(len(s)+1, 9), s)
	case n < 100_000_000:
		return fmt.Sprintf("%9d", n)
	case n < 1_000_000_000:
		return fmt.Sprintf("%8dK", n/1_000)
	case n < 100_000_000_000:
		return fmt.Sprintf("%8dM", n/1_000_000)
	case n < 100_000_000_000_000:
		return fmt.Sprintf("%8dG", n/1_000_000_000)
	}
	return fmt.Sprintf("%8dT", n/1_000_000_000_000)
}

// serviceName is the first column: "TCP  198.18.0.100:80", "FWM  1".
func serviceName(s *api.ServiceState) string {
	if s.Mark != 0 {
		if markIs6(&s.Service) {
			return fmt.Sprintf("FWM  %d IPv6", s.Mark)
		}
		return fmt.Sprintf("FWM  %d", s.Mark)
	}
	return fmt.Sprintf("%-4s %s", strings.ToUpper(s.Protocol), addrPort(s.VIP, s.Port))
}

// serviceFlags is what follows the scheduler: " (flags) persistent N mask M".
func serviceFlags(s *api.ServiceState) string {
	var b strings.Builder
	if len(s.Flags) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(s.Flags, ","))
	}
	if s.Persistence > 0 {
		fmt.Fprintf(&b, " persistent %d", seconds(s.Persistence))
		if m := mask(&s.Service); m != "" {
			b.WriteString(" mask " + m)
		}
	}
	return b.String()
}

// mask is the persistence netmask as ipvsadm prints it, or "" for a host
// mask (the default).
func mask(s *api.Service) string {
	bits := s.PersistPrefix
	v6 := s.VIP.Is6() || (s.Mark != 0 && markIs6(s))
	switch {
	case bits <= 0, v6 && bits >= 128, !v6 && bits >= 32:
		return ""
	case v6:
		return fmt.Sprint(bits)
	}
	return net.IP(net.CIDRMask(bits, 32)).String()
}

// markIs6 reports whether a mark service is IPv6 (ipvsadm -f -6): all its
// matches are.
func markIs6(s *api.Service) bool {
	if len(s.Matches) == 0 {
		return false
	}
	for _, m := range s.Matches {
		if !m.VIP.Is6() {
			return false
		}
	}
	return true
}

func seconds(d time.Duration) int64 { return int64(d / time.Second) }

// addrPort formats as ipvsadm -n does: "1.2.3.4:80", "[2001:db8::1]:80".
func addrPort(a netip.Addr, port uint16) string {
	return netip.AddrPortFrom(a, port).String()
}

// forwardName is the Forward column of an api.Real.Method (FullNAT's is
// DPVS's ipvsadm's, FullNat).
func forwardName(method string) string {
	if method == "" {
		return xvs.MethodDR.Forward()
	}
	if m, err := xvs.ParseMethod(method); err == nil {
		return m.Forward()
	}
	return method
}

// forwardSwitch is the rule option for an api.Real.Method: ipvsadm's -g,
// -m, -i, or xvs's --fullnat (DPVS's ipvsadm's name for it).
func forwardSwitch(method string) string {
	m, err := xvs.ParseMethod(method)
	if err != nil {
		return "-g"
	}
	switch m {
	case xvs.MethodNAT:
		return "-m"
	case xvs.MethodTUN:
		return "-i"
	case xvs.MethodFullNAT:
		return "--fullnat"
	}
	return "-g"
}

func protoNumber(p string) int {
	switch p {
	case "tcp":
		return 6
	case "udp":
		return 17
	}
	return 0
}

// compareServices orders services as ipvsadm's ipvs_cmp_services: mark,
// family, protocol, address, port.
func compareServices(a, b *api.ServiceID) int {
	return cmp.Or(
		cmp.Compare(a.Mark, b.Mark),
		cmp.Compare(family(a.VIP), family(b.VIP)),
		cmp.Compare(protoNumber(a.Protocol), protoNumber(b.Protocol)),
		a.VIP.Compare(b.VIP),
		cmp.Compare(a.Port, b.Port),
	)
}

func family(a netip.Addr) int {
	if a.Is6() {
		return 6
	}
	return 4
}

func sortedServices(ss []api.ServiceState, noSort bool) []api.ServiceState {
	if noSort {
		return ss
	}
	out := slices.Clone(ss)
	slices.SortStableFunc(out, func(a, b api.ServiceState) int { return compareServices(&a.ServiceID, &b.ServiceID) })
	return out
}

// sortedReals orders real servers by address and port, as ipvs_cmp_dests.
func sortedReals(rs []api.RealState, noSort, draining bool) []api.RealState {
	out := make([]api.RealState, 0, len(rs))
	for _, r := range rs {
		if draining || !r.Draining {
			out = append(out, r)
		}
	}
	if !noSort {
		slices.SortStableFunc(out, func(a, b api.RealState) int {
			return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
		})
	}
	return out
}

// WriteConns writes the connection table as ipvsadm -L -c -n does, in the
// order given.
func WriteConns(w io.Writer, conns []api.Conn, o ListOptions) {
	fmt.Fprintln(w, "IPVS connection entries")
	if o.PersistentConn {
		fmt.Fprintf(w, "pro expire %-11s %-18s %-18s %-18s %-16s %s\n", "state", "source", "virtual", "destination", "pe name", "pe_data")
	} else {
		fmt.Fprintf(w, "pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination")
	}
	for _, c := range conns {
		exp := max(seconds(c.ExpiresIn), 0)
		fmt.Fprintf(w, "%-3s %-6s %-11s %-18s %-18s %s\n", strings.ToUpper(c.Protocol),
			fmt.Sprintf("%02d:%02d", exp/60, exp%60), strings.ToUpper(c.State), c.Client, c.Virtual, c.Real)
	}
}

// WriteDaemons writes ipvsadm -L --daemon's lines: the master's, then the
// backup's, for those that run.
func WriteDaemons(w io.Writer, ds []api.SyncDaemonState) {
	for _, role := range []string{api.RoleMaster, api.RoleBackup} {
		for _, d := range ds {
			if d.Role == role {
				fmt.Fprintf(w, "%s sync daemon (mcast=%s, syncid=%d)\n", d.Role, d.Interface, d.SyncID)
			}
		}
	}
}

// WriteTimeouts writes ipvsadm -L --timeout's line.
func WriteTimeouts(w io.Writer, t api.Timeouts) {
	fmt.Fprintf(w, "Timeout (tcp tcpfin udp): %d %d %d\n", seconds(t.TCP), seconds(t.TCPFin), seconds(t.UDP))
}

// WriteStatus writes what ipvsadm cannot show: the data path itself.
func WriteStatus(w io.Writer, st *api.Status) {
	fmt.Fprintf(w, "workers %d, connections %d (capacity %d), rx %d frames, tx %d frames\n",
		st.Workers, st.Connections, st.Capacity, st.RxFrames, st.TxFrames)
	for _, i := range st.Interfaces {
		mode := "copy"
		if i.ZeroCopy {
			mode = "zero-copy"
		}
		fmt.Fprintf(w, "  interface %-16s xdp %-8s queues %d  %s\n", i.Name, i.XDPMode, i.Queues, mode)
		if i.FastPath != "" {
			fmt.Fprintf(w, "    fast path: %s\n", i.FastPath)
		}
		if i.Oversize > 0 {
			fmt.Fprintf(w, "    oversize: %d frames longer than an AF_XDP frame dropped\n", i.Oversize)
		}
		if i.SynCookies > 0 || i.SynNoPort > 0 {
			fmt.Fprintf(w, "    syn_proxy: %d SYNs answered by XDP, %d dropped for want of a port to send on\n", i.SynCookies, i.SynNoPort)
		}
		if k := i.Kernel; len(k) > 0 {
			names := make([]string, 0, len(k))
			for n := range k {
				names = append(names, n)
			}
			slices.Sort(names)
			var kv []string
			for _, n := range names {
				kv = append(kv, fmt.Sprintf("%s=%d", n, k[n]))
			}
			fmt.Fprintf(w, "    kernel: %s\n", strings.Join(kv, " "))
		}
	}
	reasons := make([]string, 0, len(st.Drops))
	for r := range st.Drops {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	parts := make([]string, 0, len(reasons))
	for _, r := range reasons {
		parts = append(parts, fmt.Sprintf("%s=%d", r, st.Drops[r]))
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	fmt.Fprintf(w, "  drops: %s\n", strings.Join(parts, " "))
	fmt.Fprintf(w, "  csum_completed: %d (partial TCP/UDP checksums, left to a NIC by their sender, completed)\n", st.CsumCompleted)
	if st.SynProxySynAcks > 0 || st.SynProxyOpened > 0 {
		fmt.Fprintf(w, "  syn_proxy: %d syn-acks sent (%d by XDP), %d connections opened\n", st.SynProxySynAcks, st.SynProxyXDP, st.SynProxyOpened)
	}
	if fp := st.FastPath; fp.Mode != "" {
		fmt.Fprintf(w, "  fast path %s: %d of %d flows offloaded, %d frames forwarded by XDP; to userspace: %d partial checksum, %d too big; offloads %d, table full %d, stale %d, no port %d, peer drops %d\n",
			fp.Mode, fp.Flows, fp.Capacity, fp.Frames, fp.Partial, fp.TooBig, fp.Offloaded, fp.Full, fp.Stale, fp.NoPort, fp.TxDrops)
	}
	if st.VerifyChecksums {
		fmt.Fprintf(w, "  verify_checksums: %d sent with a checksum their receiver rejects, %d arrived with one (forwarded as they came)\n",
			st.BadCsumOut, st.BadCsumIn)
	}
	for _, warn := range st.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	if dp := st.DataPath; dp.Batch > 0 {
		spins := fmt.Sprintf("idle spins %d", dp.IdleSpins)
		if dp.IdleSpins < 0 {
			spins = "never sleeps"
		}
		if dp.BusyPollUS > 0 {
			spins += fmt.Sprintf(", busy_poll %d µs", dp.BusyPollUS)
		}
		wake := "off"
		if dp.NeedWakeup {
			wake = "on"
		}
		fmt.Fprintf(w, "  data path: batch %d, rings %d, %d UMEM frames per worker, %s, need_wakeup %s\n",
			dp.Batch, dp.RingSize, dp.UMEMFrames, spins, wake)
	}
	if st.Config != "" {
		fmt.Fprintf(w, "  config: %s\n", st.Config)
	}
}

// WriteHealth writes the health-check state of every real server, sorted
// by service and real server.
func WriteHealth(w io.Writer, hs []api.HealthState) {
	fmt.Fprintf(w, "%-33s %-28s %-6s %-5s %-20s %s\n", "Prot LocalAddress:Port", "RemoteAddress:Port", "Check", "State", "Since", "Last failure")
	hs = slices.Clone(hs)
	slices.SortStableFunc(hs, func(a, b api.HealthState) int {
		return cmp.Or(compareServices(&a.Service, &b.Service), a.Real.Compare(b.Real))
	})
	for _, h := range hs {
		state := "down"
		if h.Healthy {
			state = "up"
		}
		since := "-"
		if !h.Since.IsZero() {
			since = h.Since.Format(time.RFC3339)
		}
		svc := api.ServiceState{Service: api.Service{ServiceID: h.Service}}
		line := fmt.Sprintf("%-33s %-28s %-6s %-5s %-20s %s", serviceName(&svc), h.Real, h.Check, state, since, h.Last)
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}
