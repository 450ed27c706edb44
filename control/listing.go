package control

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"sort"
	"strings"

	"github.com/xvs-lb/xvs/dataplane"
)

func protoName(p uint8) string {
	switch p {
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	}
	return fmt.Sprintf("%d", p)
}

func hostPort(a netip.Addr, port uint16) string {
	return netip.AddrPortFrom(a, port).String()
}

func header(w io.Writer, eng *dataplane.Engine) {
	fmt.Fprintf(w, "IP Virtual Server version 1.2.1 (size=%d) [xvs]\n", eng.Conntrack().Capacity())
}

// dests returns a service's real servers plus those draining from it.
func dests(t *dataplane.Table, s *dataplane.Service) []*dataplane.Dest {
	out := append([]*dataplane.Dest(nil), s.Dests...)
	for _, d := range t.Draining() {
		if d.Service == s.ID {
			out = append(out, d)
		}
	}
	return out
}

// serviceName is the first column of ipvsadm's listings: "TCP  vip:port"
// or "FWM  mark".
func serviceName(s *dataplane.Service) string {
	if s.Mark != 0 {
		return fmt.Sprintf("%-4s %d", "FWM", s.Mark)
	}
	return fmt.Sprintf("%-4s %s", protoName(s.Proto), hostPort(s.VIP, s.Port))
}

// serviceFlags is what ipvsadm prints after the scheduler: its flags, then
// "persistent N" and "mask M".
func serviceFlags(s *dataplane.Service) string {
	var parts []string
	if len(s.Flags) > 0 {
		parts = append(parts, "("+strings.Join(s.Flags, ",")+")")
	}
	if p, prefix := s.Persistence(); p > 0 {
		parts = append(parts, fmt.Sprintf("persistent %d", int(p.Seconds())))
		if prefix > 0 {
			if s.VIP.Is4() {
				parts = append(parts, "mask "+net.IP(net.CIDRMask(prefix, 32)).String())
			} else {
				parts = append(parts, fmt.Sprintf("mask %d", prefix))
			}
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}

// WriteList writes the service table in the layout of `ipvsadm -L -n`.
func WriteList(w io.Writer, eng *dataplane.Engine) {
	t := eng.Table()
	header(w, eng)
	fmt.Fprintln(w, "Prot LocalAddress:Port Scheduler Flags")
	fmt.Fprintln(w, "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn")
	for _, s := range t.Services() {
		fmt.Fprintf(w, "%s %s%s\n", serviceName(s), s.SchedulerName(), serviceFlags(s))
		for _, d := range dests(t, s) {
			a, i := eng.DestConns(d)
			fmt.Fprintf(w, "  -> %-28s %-7s %-6d %-10d %-10d\n", hostPort(d.Addr, d.Port), d.Method, d.Weight, a, i)
		}
	}
}

// WriteStats writes the service table in the layout of
// `ipvsadm -L -n --stats`.
func WriteStats(w io.Writer, eng *dataplane.Engine) {
	t := eng.Table()
	header(w, eng)
	fmt.Fprintln(w, "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes")
	fmt.Fprintln(w, "  -> RemoteAddress:Port")
	row := func(c dataplane.Counters) string {
		return fmt.Sprintf("%8d %8d %8d %8s %8s", c.Conns, c.InPkts, c.OutPkts, units(c.InBytes), units(c.OutBytes))
	}
	for _, s := range t.Services() {
		fmt.Fprintf(w, "%-33s %s\n", serviceName(s), row(eng.ServiceCounters(s)))
		for _, d := range dests(t, s) {
			fmt.Fprintf(w, "  -> %-28s %s\n", hostPort(d.Addr, d.Port), row(eng.DestCounters(d)))
		}
	}
}

// units formats a byte count as ipvsadm does: K, M, G above 100000.
func units(n uint64) string {
	switch {
	case n >= 100_000_000_000:
		return fmt.Sprintf("%dG", n/1_000_000_000)
	case n >= 100_000_000:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 100_000:
		return fmt.Sprintf("%dK", n/1_000)
	}
	return fmt.Sprint(n)
}

// WriteStatus writes what ipvsadm cannot show: the data path itself.
func WriteStatus(w io.Writer, eng *dataplane.Engine) {
	st := eng.Status()
	fmt.Fprintf(w, "workers %d, connections %d, rx %d frames, tx %d frames\n", st.Workers, st.Connections, st.RxFrames, st.TxFrames)
	for _, p := range st.Ports {
		mode := "copy"
		if p.ZeroCopy {
			mode = "zero-copy"
		}
		fmt.Fprintf(w, "  interface %-16s xdp %-8s queues %d  %s\n", p.Name, p.XDPMode, p.Queues, mode)
	}
	var reasons []string
	for r := range st.Drops {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	var parts []string
	for _, r := range reasons {
		parts = append(parts, fmt.Sprintf("%s=%d", r, st.Drops[r]))
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	fmt.Fprintf(w, "  drops: %s\n", strings.Join(parts, " "))
}
