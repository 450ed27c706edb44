package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/xvs-lb/xvs/internal/xvs"
)

// Marshal writes cfg as a configuration file that Parse reads back to the
// same Config (Lines and Source aside). It is how the running state, changed
// at run time with xvsadm, is saved: the file stays the one source of truth.
func Marshal(cfg *Config) []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Written by xvs (xvsadm save-config); a reload from this file restores this state.\n\n")
	w("[director]\n")
	w("interfaces = %s\n", strList(cfg.Director.Interfaces))
	w("xdp_mode = %q\n", cfg.Director.XDPMode.String())
	w("zerocopy = %q\n", cfg.Director.ZeroCopy.String())
	if len(cfg.Director.CPUs) > 0 {
		var cpus []string
		for _, c := range cfg.Director.CPUs {
			cpus = append(cpus, strconv.Itoa(c))
		}
		w("cpus = [%s]\n", strings.Join(cpus, ", "))
	}
	w("log_level = %q\n", cfg.Director.LogLevel)
	if cfg.Director.SloppyTCP {
		w("sloppy_tcp = true\n")
	}
	w("connections = %d\nwhen_full = %q\n", cfg.Director.Connections, whenFullName(cfg.Director.WhenFull))
	if cfg.Director.FastPath != xvs.FastPathAuto {
		w("fast_path = %q\n", cfg.Director.FastPath.String())
	}
	for _, k := range []struct {
		key string
		v   int
	}{{"batch_size", cfg.Director.BatchSize}, {"ring_size", cfg.Director.RingSize}, {"umem_frames", cfg.Director.UMEMFrames}, {"idle_spins", cfg.Director.IdleSpins}} {
		if k.v != 0 {
			w("%s = %d\n", k.key, k.v)
		}
	}
	if cfg.Director.BusyPoll > 0 {
		w("busy_poll = %q\n", dur(cfg.Director.BusyPoll))
	}
	if cfg.Director.NoNeedWakeup {
		w("need_wakeup = false\n")
	}
	if cfg.Director.VerifyChecksums {
		w("verify_checksums = true\n")
	}
	w("\n[timeouts]\ntcp = %q\ntcpfin = %q\nudp = %q\n", dur(cfg.Timeouts.TCP), dur(cfg.Timeouts.TCPFin), dur(cfg.Timeouts.UDP))
	for _, s := range cfg.Services {
		if s.IsGroup() {
			continue
		}
		w("\n[[service]]\n")
		if s.Name != "" {
			w("name = %q\n", s.Name)
		}
		w("vip = %q\nport = %d\nprotocol = %q\n", s.VIP.String(), s.Port, s.Protocol.String())
		writePolicy(&b, &s, "service")
	}
	for _, s := range cfg.Services {
		if !s.IsGroup() {
			continue
		}
		w("\n[[group]]\nname = %q\nmark = %d\n", s.Name, s.Mark)
		var ms []string
		for _, m := range s.Matches {
			ports := strconv.Itoa(int(m.FromPort))
			if m.ToPort != m.FromPort {
				ports = fmt.Sprintf("%d-%d", m.FromPort, m.ToPort)
			}
			ms = append(ms, fmt.Sprintf("{ vip = %q, ports = %q, protocol = %q }", m.VIP.String(), ports, m.Protocol.String()))
		}
		w("match = [\n  %s,\n]\n", strings.Join(ms, ",\n  "))
		writePolicy(&b, &s, "group")
	}
	writeBGP(w, cfg.BGP)
	writeScaleOut(w, cfg)
	return []byte(b.String())
}

func writePolicy(b *strings.Builder, s *Service, table string) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("scheduler = %q\n", s.Scheduler)
	if len(s.Flags) > 0 {
		w("sched_flags = %s\n", strList(s.Flags))
	}
	if s.Persistence > 0 {
		w("persistence = %q\n", dur(s.Persistence))
		if s.PersistPrefix > 0 {
			if s.VIP.Is4() {
				w("netmask = %q\n", net.IP(net.CIDRMask(s.PersistPrefix, 32)).String())
			} else {
				w("netmask = %d\n", s.PersistPrefix)
			}
		}
	}
	if len(s.LocalAddrs) > 0 {
		var as []string
		for _, a := range s.LocalAddrs {
			as = append(as, a.String())
		}
		w("local_addresses = %s\n", strList(as))
	}
	if s.TOA {
		w("toa = true\n")
	}
	if s.NoFastPath {
		w("fast_path = \"off\"\n")
	}
	if s.SynProxy {
		w("syn_proxy = true\n")
	}
	if s.LocalPortMin != 0 {
		w("local_ports = \"%d-%d\"\n", s.LocalPortMin, s.LocalPortMax)
	}
	writeHealth(b, s, table)
	for _, r := range s.Reals {
		w("  [[%s.real]]\n  address = %q\n", table, r.Address.String())
		if r.Port != 0 {
			w("  port = %d\n", r.Port)
		}
		w("  weight = %d\n  method = %q\n", r.Weight, r.Method.String())
		if r.UpperThreshold > 0 {
			w("  upper_threshold = %d\n", r.UpperThreshold)
		}
		if r.LowerThreshold > 0 {
			w("  lower_threshold = %d\n", r.LowerThreshold)
		}
	}
}

func strList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// dur writes a duration in whole seconds when it is one, as ipvsadm shows
// timeouts.
func dur(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}
