package config

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/xvs-lb/xvs/internal/xvs"
)

// A [[group]] is what ipvsadm -f expresses with a firewall mark: several
// (VIP, port range, protocol) matches that share one scheduler, one set of
// real servers and one persistence table, so that, say, a client's HTTP and
// HTTPS connections stick to the same real server.
//
//	[[group]]
//	name = "web"
//	persistence = "300s"
//	match = [ { vip = "198.18.0.100", ports = "80", protocol = "tcp" },
//	          { vip = "198.18.0.100", ports = "443", protocol = "tcp" } ]
//	  [[group.real]]
//	  address = "198.18.0.11"    # port left out: each packet keeps its port

// groups decodes the [[group]] tables; services are the [[service]]s
// already decoded, which no match may overlap.
func (d *decoder) groups(ts []*tomlTable, services []Service) []Service {
	var out []Service
	names := map[string]int{}
	marks := map[uint32]int{}
	for _, s := range services {
		if s.Name != "" {
			names[s.Name] = s.Line
		}
	}
	taken := portMap{}
	for _, s := range services {
		if s.VIP.IsValid() && s.Port != 0 {
			taken.add(s.VIP, s.Protocol, s.Port, s.Port, s.Line)
		}
	}
	for i, t := range ts {
		g := Service{Scheduler: DefaultScheduler, Line: d.lines.lineOf(t.path), Mark: uint32(i + 1)}
		t.require("name")
		if name, ok := t.str("name"); ok {
			if line, dup := names[name]; dup {
				t.errorf("name", "duplicate name %q (first at line %d)", name, line)
			}
			names[name] = g.Line
			g.Name = name
		}
		if n, ok := t.integer("mark", 1, math.MaxUint32); ok {
			g.Mark = uint32(n)
		}
		if line, dup := marks[g.Mark]; dup {
			t.errorf("mark", "mark %d is used twice (first at line %d)", g.Mark, line)
		}
		marks[g.Mark] = g.Line
		t.require("match")
		if ms, ok := t.list("match", keysOf("group.match")...); ok {
			for _, mt := range ms {
				if m, ok := d.match(mt); ok {
					if len(g.Matches) > 0 && m.VIP.Is4() != g.Matches[0].VIP.Is4() {
						mt.errorf("vip", "%s is %s but the group's first match is %s", m.VIP, family(m.VIP), family(g.Matches[0].VIP))
						continue
					}
					if line, clash := taken.overlaps(m.VIP, m.Protocol, m.FromPort, m.ToPort); clash {
						mt.errorf("ports", "%s %s:%s overlaps the service or match at line %d", strings.ToUpper(m.Protocol.String()), m.VIP, portRange(m.FromPort, m.ToPort), line)
						continue
					}
					taken.add(m.VIP, m.Protocol, m.FromPort, m.ToPort, m.Line)
					g.Matches = append(g.Matches, m)
				}
			}
			if v, ok := t.m["match"].([]any); ok && len(v) == 0 {
				t.errorf("match", "empty: a group needs at least one match")
			}
		}
		vipOK := len(g.Matches) > 0
		if vipOK {
			g.VIP = g.Matches[0].VIP
		}
		d.policy(t, &g, vipOK)
		d.reals(t, &g, vipOK, true)
		d.fullnat(t, &g)
		t.done()
		out = append(out, g)
	}
	return out
}

func (d *decoder) match(t *tomlTable) (m Match, ok bool) {
	m.Line = d.lines.lineOf(t.path)
	t.require("vip")
	t.require("ports")
	t.require("protocol")
	vipOK, portsOK, protoOK := false, false, false
	if str, ok := t.str("vip"); ok {
		if a, msg := checkAddr(str); msg != "" {
			t.errorf("vip", "%q %s", str, msg)
		} else {
			m.VIP, vipOK = a, true
		}
	}
	switch v := t.m["ports"].(type) {
	case nil:
	case int64:
		if v < 1 || v > math.MaxUint16 {
			t.errorf("ports", "%d is out of range 1..65535", v)
		} else {
			m.FromPort, m.ToPort, portsOK = uint16(v), uint16(v), true
		}
	case string:
		lo, hi, err := parsePortRange(v)
		if err != nil {
			t.errorf("ports", "%q: %v", v, err)
		} else {
			m.FromPort, m.ToPort, portsOK = lo, hi, true
		}
	default:
		t.errorf("ports", "want a port or a range \"lo-hi\", got %s", typeName(v))
	}
	if str, ok := t.str("protocol"); ok {
		if p, err := xvs.ParseProtocol(str); err != nil {
			t.errorf("protocol", "%v", err)
		} else {
			m.Protocol, protoOK = p, true
		}
	}
	t.done()
	return m, vipOK && portsOK && protoOK
}

func parsePortRange(s string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(s, "-")
	l, err := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	if err != nil || l == 0 {
		return 0, 0, fmt.Errorf("not a port or a range lo-hi of ports 1..65535")
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(strings.TrimSpace(b), 10, 16); err != nil || h == 0 {
			return 0, 0, fmt.Errorf("not a port or a range lo-hi of ports 1..65535")
		}
	}
	if h < l {
		return 0, 0, fmt.Errorf("range ends before it starts")
	}
	return uint16(l), uint16(h), nil
}

func portRange(lo, hi uint16) string {
	if lo == hi {
		return strconv.Itoa(int(lo))
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}

// portMap records the port ranges taken per (VIP, protocol), so that every
// packet maps to one service at most.
type portMap map[portMapKey][]portSpan

type portMapKey struct {
	vip   netip.Addr
	proto xvs.Protocol
}

type portSpan struct {
	lo, hi uint16
	line   int
}

func (pm portMap) add(vip netip.Addr, proto xvs.Protocol, lo, hi uint16, line int) {
	k := portMapKey{vip, proto}
	pm[k] = append(pm[k], portSpan{lo, hi, line})
}

func (pm portMap) overlaps(vip netip.Addr, proto xvs.Protocol, lo, hi uint16) (int, bool) {
	for _, s := range pm[portMapKey{vip, proto}] {
		if lo <= s.hi && s.lo <= hi {
			return s.line, true
		}
	}
	return 0, false
}
