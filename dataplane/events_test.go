package dataplane

import (
	"testing"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/dataplane/packet"
)

func engineFor(r *rig) *Engine {
	e := &Engine{ct: r.ct, workers: []*worker{{fwd: r.fwd, stats: r.stats}}}
	e.table.Store(r.table)
	return e
}

// TestSyncEventsAndImport: a connection created on one director, described
// and imported on another, is forwarded there with the same real server and
// translation, both ways.
func TestSyncEventsAndImport(t *testing.T) {
	for _, method := range []Method{MethodNAT, MethodFullNAT, MethodDR} {
		rport := uint16(8080)
		if method == MethodDR {
			rport = 80
		}
		a, b := rigFor(t, method, rport, false), rigFor(t, method, rport, false)
		a.fwd.events = newEventRing(16)
		ea, eb := engineFor(a), engineFor(b)
		// Make the two tables give the other real server first, so that
		// scheduling on b would pick differently from the import.
		b.fwd.forwardFrame(b.table, frame(t, clientMAC, portMAC0, cip, vip, 1, 80, protoTCP, packet.FlagSYN, nil), 0, 1)

		syn := frame(t, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, packet.FlagSYN, nil)
		if a.fwd.forwardFrame(a.table, withHeadroom(syn, 0), 0, 1) != 1 {
			t.Fatalf("%v: SYN dropped: %v", method, a.stats.Drops())
		}
		ack := frame(t, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, packet.FlagACK, nil)
		a.fwd.forwardFrame(a.table, ack, 0, 2)
		var events []SyncedConn
		ea.DrainConnEvents(func(ev *ConnEvent) {
			if sc, ok := ea.Describe(ev); ok {
				events = append(events, sc)
			}
		})
		if len(events) == 0 {
			t.Fatalf("%v: no events", method)
		}
		for _, sc := range events {
			if !eb.Import(sc) {
				t.Fatalf("%v: import of %+v failed", method, sc)
			}
		}
		// A client packet of that connection reaching b goes where a sent it.
		next := frame(t, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, packet.FlagACK, []byte("more"))
		if out := b.fwd.forwardFrame(b.table, next, 0, 3); out != 1 || [6]byte(next[0:6]) != rsMAC {
			t.Errorf("%v: on the second director the connection went to port %d MAC %x, want rs1", method, out, next[0:6])
		}
		var c conntrack.Conn
		k := conntrack.MakeKey(protoTCP, cip, 40000, vip, 80)
		if !b.ct.Lookup(&k, &c) {
			t.Fatalf("%v: imported connection not found", method)
		}
		if method == MethodFullNAT {
			var ca conntrack.Conn
			a.ct.Lookup(&k, &ca)
			if ca.Value.Flags != c.Value.Flags {
				t.Errorf("FullNAT local address/port differ: %x vs %x", ca.Value.Flags, c.Value.Flags)
			}
		}
	}
}

// TestZeroServiceCounters: -Z -t zeroes the one service's real servers and
// leaves the others' counters alone.
func TestZeroServiceCounters(t *testing.T) {
	r := newRig(t, MethodDR, 80)
	e := engineFor(r)
	e.zeroBase = make([]Counters, 64)
	r.fwd.forwardFrame(r.table, frame(t, clientMAC, portMAC0, cip, vip, 40000, 80, protoTCP, packet.FlagSYN, nil), 0, 1)
	r.fwd.forwardFrame(r.table, frame(t, clientMAC, portMAC0, cip, vip, 40001, 53, protoUDP, 0, nil), 0, 1)
	var web, dns *Service
	for _, s := range r.table.Services() {
		if s.Port == 80 {
			web = s
		} else {
			dns = s
		}
	}
	if e.ServiceCounters(web).InPkts != 1 || e.ServiceCounters(dns).InPkts != 1 {
		t.Fatalf("before: web %+v, dns %+v", e.ServiceCounters(web), e.ServiceCounters(dns))
	}
	e.ZeroServiceCounters(dns)
	if w, d := e.ServiceCounters(web), e.ServiceCounters(dns); w.InPkts != 1 || w.Conns != 1 || d != (Counters{}) {
		t.Errorf("after -Z of dns: web %+v, dns %+v", w, d)
	}
}
