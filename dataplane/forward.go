package dataplane

import (
	"net/netip"
	"time"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/dataplane/packet"
	"github.com/xvs-lb/xvs/sched"
)

// Port is a director interface as the forwarder sees it: a slot number and
// the MAC address frames leave it with.
type Port struct {
	Name    string
	Ifindex int
	MAC     [6]byte
}

// forwarder is the per-frame logic of a worker, apart from any I/O: it
// decodes a frame, finds or creates its connection, and rewrites the frame in
// place for the port it must leave on. One per worker; it owns scratch space
// so that nothing is allocated per frame.
type forwarder struct {
	ports   []Port
	ct      *conntrack.Table
	persist *persistTable
	loads   sched.Loads
	stats   *WorkerStats
	parser  *packet.Parser

	meta packet.Meta
	key  conntrack.Key
	rkey conntrack.Key
	conn conntrack.Conn
	flow sched.Flow
	val  conntrack.Value
}

// ctLoads lets schedulers read the connection table's per-real-server counts.
type ctLoads struct{ t *conntrack.Table }

func (l ctLoads) Conns(id uint32) (active, inactive int64) { return l.t.DestConns(id) }

func newForwarder(ports []Port, ct *conntrack.Table, persist *persistTable, stats *WorkerStats) *forwarder {
	return &forwarder{ports: ports, ct: ct, persist: persist, loads: ctLoads{ct}, stats: stats, parser: packet.NewParser()}
}

const (
	protoTCP = 6
	protoUDP = 17
)

// forward handles one frame that arrived on port in. It returns the port to
// transmit the rewritten frame on, or -1 when the frame is dropped (the
// reason is counted).
func (f *forwarder) forward(t *Table, frame []byte, in int, now int64) int {
	m := &f.meta
	if err := f.parser.Decode(frame, m); err != nil {
		f.stats.drop(dropReasonOf(err))
		return -1
	}
	if m.Proto != protoTCP && m.Proto != protoUDP {
		f.stats.drop(DropUnsupported)
		return -1
	}
	f.key = conntrack.MakeKey(m.Proto, m.Src, m.SrcPort, m.Dst, m.DstPort)
	c := &f.conn
	hit := f.ct.Lookup(&f.key, c)
	if hit && m.Proto == protoTCP && isSYN(m.TCPFlags) && c.Dir == conntrack.DirOriginal &&
		(c.State == conntrack.TimeWait || c.State == conntrack.Close) {
		// The client reuses the port of a finished connection: schedule it
		// afresh, as IPVS does with conn_reuse_mode=1.
		f.ct.Delete(c.Ref)
		hit = false
	}
	if !hit {
		if !f.schedule(t, frame, in, now) {
			return -1
		}
	} else {
		f.ct.Touch(c.Ref, m.TCPFlags, packetDir(c), now)
		if svc := t.serviceByID(c.Value.Service); svc != nil && svc.persist > 0 {
			f.keepTemplate(svc, c, now)
		}
	}
	d := t.dest(c.Value.Dest)
	if d == nil {
		f.stats.drop(DropNoDest)
		return -1
	}
	if c.Dir == conntrack.DirOriginal {
		mac, out, ok := d.hop.load()
		if !ok || out >= len(f.ports) {
			f.stats.drop(DropNoNextHop)
			return -1
		}
		if d.Method == MethodNAT {
			port := d.Port
			if port == 0 {
				port = m.DstPort // a group's real server keeps the packet's port
			}
			if err := packet.DNAT(frame, m, d.Addr, port); err != nil {
				f.stats.drop(dropReasonOf(err))
				return -1
			}
		}
		packet.SetMACs(frame, f.ports[out].MAC, mac)
		f.stats.dest(d.ID).in(m.Length)
		return out
	}
	// A reply through the director (NAT): back to the VIP and to the client's
	// next hop, which is where the connection's first frame came from.
	vip := netip.AddrFrom16(c.Orig.DstAddr).Unmap()
	if err := packet.SNAT(frame, m, vip, c.Orig.DstPort); err != nil {
		f.stats.drop(dropReasonOf(err))
		return -1
	}
	out := int(c.Value.InPort)
	if out >= len(f.ports) {
		f.stats.drop(DropNoNextHop)
		return -1
	}
	packet.SetMACs(frame, f.ports[out].MAC, c.Value.PeerMAC)
	f.stats.dest(d.ID).out(m.Length)
	return out
}

// schedule creates the connection for a frame that has none, filling f.conn.
func (f *forwarder) schedule(t *Table, frame []byte, in int, now int64) bool {
	m := &f.meta
	svc := t.service(m.Dst, m.DstPort, m.Proto)
	if svc == nil {
		f.stats.drop(DropNoService)
		return false
	}
	if m.Proto == protoTCP && !isSYN(m.TCPFlags) {
		// Mid-stream TCP for a connection we do not know (expired, or the
		// director restarted): IPVS drops it too rather than guess.
		f.stats.drop(DropNoConn)
		return false
	}
	d := f.pick(t, svc, now)
	if d == nil {
		f.stats.drop(DropNoDest)
		return false
	}
	f.val = conntrack.Value{Service: svc.ID, Dest: d.ID, Flags: uint32(d.Method), InPort: uint16(in)}
	copy(f.val.PeerMAC[:], frame[6:12])
	var rev *conntrack.Key
	dir := conntrack.InputOnly
	if d.Method == MethodNAT {
		port := d.Port
		if port == 0 {
			port = m.DstPort
		}
		f.rkey = conntrack.MakeKey(m.Proto, d.Addr, port, m.Src, m.SrcPort)
		rev = &f.rkey
		dir = conntrack.Input
	}
	switch err := f.ct.Insert(&f.key, rev, &f.val, m.Proto, m.TCPFlags, dir, now, &f.conn); err {
	case nil:
		f.stats.dest(d.ID).conns.Add(1)
	case conntrack.ErrExists:
		// Another worker created it first; f.conn holds its entry.
		f.ct.Touch(f.conn.Ref, m.TCPFlags, packetDir(&f.conn), now)
	case conntrack.ErrFull:
		f.stats.drop(DropTableFull)
		return false
	default:
		f.stats.drop(DropNoDest)
		return false
	}
	return true
}

// pick chooses the real server for a new connection: the one a live
// persistent template names, else the scheduler's choice (recorded in a
// template when the service is persistent).
func (f *forwarder) pick(t *Table, svc *Service, now int64) *Dest {
	m := &f.meta
	var hi, lo uint64
	if svc.persist > 0 {
		hi, lo = persistKey(f.key.SrcAddr, m.Src.Is4(), svc.persistPrefix)
		if id, _, ok := f.persist.lookup(svc.ID, hi, lo, now); ok {
			// As IPVS: a template's real server is used while it is
			// configured, even at weight 0 (expire_quiescent_template=0).
			if d := t.dest(id); d != nil && d.Service == svc.ID && !d.Draining {
				f.persist.store(svc.ID, hi, lo, id, now+svc.persist, now)
				return d
			}
		}
	}
	f.flow = sched.Flow{Proto: m.Proto, SrcAddr: f.key.SrcAddr, SrcPort: m.SrcPort, DstAddr: f.key.DstAddr, DstPort: m.DstPort}
	i := svc.sched.Pick(&f.flow, f.loads)
	if i < 0 || i >= len(svc.Dests) {
		return nil
	}
	d := svc.Dests[i]
	if svc.persist > 0 {
		f.persist.store(svc.ID, hi, lo, d.ID, now+svc.persist, now)
	}
	return d
}

// keepTemplate keeps a persistent client's template alive while its
// connections carry traffic, as IPVS keeps a template that still controls
// connections. It rewrites the template at most about once a second.
func (f *forwarder) keepTemplate(svc *Service, c *conntrack.Conn, now int64) {
	hi, lo := persistKey(c.Orig.SrcAddr, f.meta.Src.Is4(), svc.persistPrefix)
	id, deadline, ok := f.persist.lookup(svc.ID, hi, lo, now)
	if ok && id != c.Value.Dest {
		return // the client has moved on to another server's template
	}
	if !ok || deadline-now < svc.persist-int64(time.Second) {
		f.persist.store(svc.ID, hi, lo, c.Value.Dest, now+svc.persist, now)
	}
}

func isSYN(flags uint8) bool {
	return flags&(packet.FlagSYN|packet.FlagACK|packet.FlagRST|packet.FlagFIN) == packet.FlagSYN
}

// packetDir tells the state machine what the director sees of a connection:
// both directions in NAT, only the client's in DR.
func packetDir(c *conntrack.Conn) conntrack.PacketDir {
	if Method(c.Value.Flags) != MethodNAT {
		return conntrack.InputOnly
	}
	if c.Dir == conntrack.DirReply {
		return conntrack.Output
	}
	return conntrack.Input
}
