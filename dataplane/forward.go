package dataplane

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/dataplane/packet"
	"github.com/xvs-lb/xvs/dataplane/syncookie"
	"github.com/xvs-lb/xvs/sched"
)

// Port is a director interface as the forwarder sees it: its slot number,
// the MAC address frames leave it with, the addresses tunnels start from and
// the MTU encapsulated frames must fit.
type Port struct {
	Name         string
	Ifindex      int
	MAC          [6]byte
	Addr4, Addr6 netip.Addr
	MTU          int
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

	m         *packet.Meta // the frame being forwarded (its prepared decoding)
	one       prepared     // forward's, for one frame at a time
	key       conntrack.Key
	rkey      conntrack.Key
	conn      conntrack.Conn
	scratch   conntrack.Conn
	flow      sched.Flow
	val       conntrack.Value
	seq       uint32     // varies FullNAT's local port choice
	sloppyTCP bool       // schedule mid-connection TCP too (IPVS's sloppy_tcp)
	verify    bool       // check checksums in and out (Config.VerifyChecksums)
	badIn     bool       // with verify: the frame being forwarded arrived with a bad checksum
	events    *eventRing // new and established connections, for sync; nil: off
	// offload queues connections for the XDP fast path (nil: off), for
	// egress and ingress on the ports fastPorts marks.
	offload   *offloadRing
	fastPorts []atomic.Bool
	cand      offloadCandidate // the frame just forwarded, for considerOffload
	// prefetched sums what Prefetch loaded, so that the loads are not
	// optimised away; it means nothing.
	prefetched uint64
	ipid       uint16 // IPv4 ID of the tunnel headers this worker writes
	// cookies makes and checks the SYN proxy's cookies; proxyAux and
	// proxyExt are the Value words of the connection the proxy is about to
	// open (zero otherwise).
	cookies            *syncookie.Jar
	proxyAux, proxyExt uint32

	// reply is an ICMP error forward left to send back out replyPort.
	replyBuf  [1600]byte
	replyLen  int
	replyPort int
}

// ctLoads lets schedulers read the connection table's per-real-server counts.
type ctLoads struct{ t *conntrack.Table }

func (l ctLoads) Conns(id uint32) (active, inactive int64) { return l.t.DestConns(id) }

func newForwarder(ports []Port, ct *conntrack.Table, persist *persistTable, stats *WorkerStats) *forwarder {
	return &forwarder{
		ports: ports, ct: ct, persist: persist, loads: ctLoads{ct}, stats: stats, parser: packet.NewParser(),
	}
}

const (
	protoTCP = 6
	protoUDP = 17
)

// forwardFrame is forward for a frame with no headroom (tests, and callers
// that never encapsulate).
func (f *forwarder) forwardFrame(t *Table, frame []byte, in int, now int64) int {
	out, _, _ := f.forward(t, frame, 0, len(frame), in, now)
	return out
}

// forward handles one frame that arrived on port in: buf[off:off+n] is the
// frame and buf[:off] free headroom, which encapsulation and TOA grow into.
// It returns the port to transmit on and the frame's new bounds in buf, or
// out = -1 when the frame is dropped (the reason is counted). An ICMP error
// to send back (fragmentation needed) is left in f.reply.
func (f *forwarder) forward(t *Table, buf []byte, off, n, in int, now int64) (out, newOff, newN int) {
	p := &f.one
	f.prepare(buf[off:off+n], p)
	return f.forwardPrepared(t, buf, off, n, in, now, p)
}

// prepared is a frame decoded and its connection key hashed, ahead of the
// rest of its forwarding: a worker prepares a whole batch first, so that
// the connection table's cache misses for its frames overlap.
type prepared struct {
	meta  packet.Meta
	probe conntrack.Probe
	keyed bool // probe is set: a TCP or UDP frame
	err   error
}

// prepare decodes frame into p and, for TCP and UDP, prepares its
// connection key. A worker prepares a whole batch, then touches every
// frame's bucket (prefetchBucket), then every frame's entry
// (prefetchEntry), each in a loop of its own: tight loops of independent
// loads are what keeps many cache misses in flight at once.
func (f *forwarder) prepare(frame []byte, p *prepared) {
	m := &p.meta
	p.keyed = false
	if p.err = f.parser.Decode(frame, m); p.err != nil || (m.Proto != protoTCP && m.Proto != protoUDP) {
		return
	}
	l3 := m.L3Off
	if m.IPv6 {
		p.probe = f.ct.Probe16(m.Proto, frame[l3+8:l3+24], frame[l3+24:l3+40], m.SrcPort, m.DstPort)
	} else {
		p.probe = f.ct.Probe4(m.Proto, frame[l3+12:l3+16], frame[l3+16:l3+20], m.SrcPort, m.DstPort)
	}
	p.keyed = true
}

// prefetchBucket and prefetchEntry touch the connection table's memory for
// a prepared TCP or UDP frame (see prepare).
func (f *forwarder) prefetchBucket(p *prepared) {
	if p.keyed {
		f.prefetched += f.ct.PrefetchBucket(&p.probe)
	}
}

func (f *forwarder) prefetchEntry(p *prepared) {
	if p.keyed {
		f.prefetched += f.ct.PrefetchEntry(&p.probe)
	}
}

// forwardPrepared is forward for a frame prepare has decoded into p.
func (f *forwarder) forwardPrepared(t *Table, buf []byte, off, n, in int, now int64, p *prepared) (out, newOff, newN int) {
	f.replyLen, f.badIn = 0, false
	f.cand = offloadCandidate{}
	frame := buf[off : off+n]
	if p.err != nil {
		f.stats.drop(dropReasonOf(p.err))
		return -1, 0, 0
	}
	f.m = &p.meta
	m := f.m
	if m.Proto == packet.ProtoICMP || m.Proto == packet.ProtoICMPv6 {
		return f.icmpError(t, buf, off, frame)
	}
	if m.Proto != protoTCP && m.Proto != protoUDP {
		f.stats.drop(DropUnsupported)
		return -1, 0, 0
	}
	// A sender that left its checksum to the NIC (veth, containers,
	// virtual NICs) hands over a frame that no receiver accepts as it is:
	// finish it, so that every rewrite below starts from a complete one.
	// A frame the fast path could carry (complete checksum, no IPv4
	// options) says its sender's frames can be offloaded.
	clean := !m.IPv6 && m.L4Off-m.L3Off == packet.IPv4MinHeaderLen || m.IPv6
	if packet.CompletePartialChecksum(frame, m) {
		bump(&f.stats.CsumCompleted, 1)
		clean = false
	}
	if f.verify && !packet.L4ChecksumValid(frame, m) {
		f.badIn = true
		bump(&f.stats.BadCsumIn, 1)
	}
	c := &f.conn
	hit := f.ct.LookupProbe(&p.probe, c)
	if hit && m.Proto == protoTCP && isSYN(m.TCPFlags) && c.Dir == conntrack.DirOriginal && reusable(t, c) {
		// The client opens a new connection from the port of one that is
		// closing, or whose real server no longer takes connections:
		// schedule it afresh (IPVS's conn_reuse_mode 3 with
		// expire_nodest_conn).
		f.ct.Delete(c.Ref)
		hit = false
	}
	if hit && m.Proto == protoTCP && f.reopens(t, c, frame, now) {
		f.ct.Delete(c.Ref)
		hit = false
	}
	var svc *Service
	if !hit {
		f.key = p.probe.Key()
		if svc = t.service(m.Dst, m.DstPort, m.Proto); svc == nil {
			f.stats.drop(DropNoService)
			return -1, 0, 0
		}
		if svc.synProxy && m.Proto == protoTCP && f.cookies != nil {
			out, newOff, newN, proceed := f.synProxyMiss(buf, off, frame, in, now)
			if !proceed {
				return out, newOff, newN
			}
			// The SYN may be longer than the ACK it was (its
			// options): what follows (TOA) must see all of it.
			buf = buf[:max(len(buf), off+newN)]
			frame = buf[off : off+newN]
		}
		ok := f.schedule(t, svc, frame, in, now)
		f.proxyAux, f.proxyExt = 0, 0 // synProxyMiss's, for this connection only
		if !ok {
			return -1, 0, 0
		}
	} else {
		st := f.ct.Touch(c.Ref, m.TCPFlags, packetDir(c), now)
		if st != c.State && f.events != nil && st == conntrack.Established {
			f.events.push(c, st)
		}
		c.State = st
		if svc = t.serviceByID(c.Value.Service); svc != nil && svc.persist > 0 {
			f.keepTemplate(svc, c, now)
		}
	}
	d := t.dest(c.Value.Dest)
	if d == nil {
		f.stats.drop(DropNoDest)
		return -1, 0, 0
	}
	proxied := m.Proto == protoTCP && c.Value.Ext&extProxied != 0
	// A proxied connection's frames need their sequence numbers
	// translated, which XDP does not do: never offloaded.
	f.cand = offloadCandidate{ok: !proxied, created: !hit, state: c.State, svc: svc, dest: d, clean: clean}
	if c.Cached && m.Proto == protoTCP && m.TCPFlags&(packet.FlagFIN|packet.FlagRST) != 0 {
		// Closing: its frames must come here, where the state machine is.
		f.unoffload()
	}
	if c.Dir == conntrack.DirReply {
		if proxied {
			out, n, done := f.proxyOut(c, frame, in, now)
			if done {
				if out >= 0 {
					f.stats.dest(d.ID).in(m.Length)
				}
				return out, off, n
			}
		}
		return f.reply(d, c, buf, off, frame)
	}
	if proxied && hit && !f.proxyIn(c, frame) {
		return -1, 0, 0
	}
	mac, out, ok := d.hop.load()
	if !ok || out >= len(f.ports) {
		f.stats.drop(DropNoNextHop)
		return -1, 0, 0
	}
	port := &f.ports[out]
	switch d.Method {
	case MethodNAT:
		if err := packet.DNAT(frame, m, d.Addr, destPort(d, m)); err != nil {
			f.stats.drop(dropReasonOf(err))
			return -1, 0, 0
		}
	case MethodFullNAT:
		lip, lport := svc.localAddr(c.Value.Flags)
		if !lip.IsValid() {
			f.stats.drop(DropNoLocalPort)
			return -1, 0, 0
		}
		client, cport := m.Src, m.SrcPort
		if err := packet.SNAT(frame, m, lip, lport); err != nil {
			f.stats.drop(dropReasonOf(err))
			return -1, 0, 0
		}
		if err := packet.DNAT(frame, m, d.Addr, destPort(d, m)); err != nil {
			f.stats.drop(dropReasonOf(err))
			return -1, 0, 0
		}
		if svc != nil && svc.toa && m.Proto == protoTCP && m.TCPFlags&packet.FlagSYN != 0 {
			// The real server learns the client's address from the TCP
			// option (DPVS's TOA); without room for it the SYN goes as is.
			if nf, err := packet.InsertTOA(buf, off, m, client, cport, port.MTU); err == nil {
				off = cap(buf) - cap(nf) // nf is a slice of buf
				frame = nf
			} else {
				f.stats.drop(DropNoTOARoom) // counted only; the frame is still sent
			}
		}
	case MethodTUN:
		src := port.Addr4
		if d.Addr.Is6() {
			src = port.Addr6
		}
		outer := packet.AddrFamily(d.Addr)
		if packet.EncapTooBig(frame, m, outer, port.MTU) {
			// As IPVS: tell the client the path MTU the tunnel leaves.
			mtu := packet.EncapMTU(port.MTU, m.Family(), outer)
			if n, err := packet.BuildFragNeeded(f.replyBuf[:], frame, m, m.Dst, mtu); err == nil {
				f.replyLen, f.replyPort = n, in
			}
			f.stats.drop(DropTooBig)
			return -1, 0, 0
		}
		if !src.IsValid() {
			f.stats.drop(DropNoNextHop)
			return -1, 0, 0
		}
		length := m.Length
		f.ipid++
		nf, err := packet.EncapIPIP(buf, off, m, packet.Tunnel{Src: src, Dst: d.Addr, ID: f.ipid})
		if err != nil {
			f.stats.drop(DropTooBig)
			return -1, 0, 0
		}
		off = cap(buf) - cap(nf) // nf is a slice of buf
		frame = nf
		packet.SetMACs(frame, port.MAC, mac)
		f.stats.dest(d.ID).in(length)
		return out, off, len(frame)
	}
	packet.SetMACs(frame, port.MAC, mac)
	f.stats.dest(d.ID).in(m.Length)
	return out, off, len(frame)
}

// verifySent is the debug check of a frame about to be sent: one whose
// checksums do not verify will be dropped by its receiver, so unless it
// arrived that way it is counted and sampled for the log.
func (f *forwarder) verifySent(frame []byte) {
	if f.badIn || packet.VerifyChecksums(frame) {
		return
	}
	bump(&f.stats.BadCsumOut, 1)
	f.stats.sampleBadSent(frame)
}

// reply handles a packet from a real server back through the director (NAT,
// FullNAT): back to the VIP, and to the client's next hop, which is where the
// connection's first frame came from.
func (f *forwarder) reply(d *Dest, c *conntrack.Conn, buf []byte, off int, frame []byte) (int, int, int) {
	m := f.m
	vip := netip.AddrFrom16(c.Orig.DstAddr).Unmap()
	if err := packet.SNAT(frame, m, vip, c.Orig.DstPort); err != nil {
		f.stats.drop(dropReasonOf(err))
		return -1, 0, 0
	}
	if Method(c.Value.Flags&methodMask) == MethodFullNAT {
		client := netip.AddrFrom16(c.Orig.SrcAddr).Unmap()
		if err := packet.DNAT(frame, m, client, c.Orig.SrcPort); err != nil {
			f.stats.drop(dropReasonOf(err))
			return -1, 0, 0
		}
	}
	return f.toClient(d, c, off, frame)
}

// toClient sends a translated frame back where its connection's first frame
// came from (the port and peer MAC the connection recorded), counted as out
// of real server d.
func (f *forwarder) toClient(d *Dest, c *conntrack.Conn, off int, frame []byte) (int, int, int) {
	out := int(c.Value.InPort)
	if out >= len(f.ports) {
		f.stats.drop(DropNoNextHop)
		return -1, 0, 0
	}
	packet.SetMACs(frame, f.ports[out].MAC, c.Value.PeerMAC)
	f.stats.dest(d.ID).out(f.m.Length)
	return out, off, len(frame)
}

// icmpError forwards an ICMP error about a packet of a tracked connection
// to the party that sent that packet, translating what the director
// translated, as IPVS's ip_vs_in_icmp and ip_vs_out_icmp do: an error from
// the client's side about a reply goes to the real server; one from the
// real server's side about a forwarded packet goes to the client.
func (f *forwarder) icmpError(t *Table, buf []byte, off int, frame []byte) (int, int, int) {
	m := f.m
	emb, err := packet.ParseICMPError(frame, m)
	if err != nil || (emb.Proto != protoTCP && emb.Proto != protoUDP) {
		f.stats.drop(DropUnsupported)
		return -1, 0, 0
	}
	// The quoted packet went the other way: its reverse is the key.
	f.key = conntrack.MakeKey(emb.Proto, emb.Dst, emb.DstPort, emb.Src, emb.SrcPort)
	c := &f.conn
	if !f.ct.Lookup(&f.key, c) {
		f.stats.drop(DropNoConn)
		return -1, 0, 0
	}
	d := t.dest(c.Value.Dest)
	if d == nil {
		f.stats.drop(DropNoDest)
		return -1, 0, 0
	}
	method := Method(c.Value.Flags & methodMask)
	client := netip.AddrPortFrom(netip.AddrFrom16(c.Orig.SrcAddr).Unmap(), c.Orig.SrcPort)
	virtual := netip.AddrPortFrom(netip.AddrFrom16(c.Orig.DstAddr).Unmap(), c.Orig.DstPort)
	server := netip.AddrPortFrom(d.Addr, c.Orig.DstPort)
	if method == MethodNAT || method == MethodFullNAT {
		server = netip.AddrPortFrom(d.Addr, destPort(d, &packet.Meta{DstPort: c.Orig.DstPort}))
	}
	var local netip.AddrPort
	if method == MethodFullNAT {
		lip, lport := t.serviceByID(c.Value.Service).localAddr(c.Value.Flags)
		if !lip.IsValid() {
			f.stats.drop(DropNoLocalPort)
			return -1, 0, 0
		}
		local = netip.AddrPortFrom(lip, lport)
	}
	if c.Dir == conntrack.DirReply {
		// About a packet the real server was sent: tell the client, as if
		// it were about the packet the client sent to the VIP.
		r := packet.ICMPRewrite{OuterSrc: virtual.Addr(), EmbDst: virtual}
		if method == MethodFullNAT {
			r.OuterDst, r.EmbSrc = client.Addr(), client
		}
		if err := packet.TranslateICMPError(frame, m, &emb, r); err != nil {
			f.stats.drop(dropReasonOf(err))
			return -1, 0, 0
		}
		return f.toClient(d, c, off, frame)
	}
	// About a reply the client was sent: tell the real server.
	mac, out, ok := d.hop.load()
	if !ok || out >= len(f.ports) {
		f.stats.drop(DropNoNextHop)
		return -1, 0, 0
	}
	if c.Value.Ext&extProxied != 0 {
		proxyICMPQuote(frame, m, &emb, c)
	}
	switch method {
	case MethodNAT:
		r := packet.ICMPRewrite{OuterDst: server.Addr(), EmbSrc: server}
		if err := packet.TranslateICMPError(frame, m, &emb, r); err != nil {
			f.stats.drop(dropReasonOf(err))
			return -1, 0, 0
		}
	case MethodFullNAT:
		r := packet.ICMPRewrite{OuterSrc: local.Addr(), OuterDst: server.Addr(), EmbSrc: server, EmbDst: local}
		if err := packet.TranslateICMPError(frame, m, &emb, r); err != nil {
			f.stats.drop(dropReasonOf(err))
			return -1, 0, 0
		}
	case MethodTUN:
		port := &f.ports[out]
		src := port.Addr4
		if d.Addr.Is6() {
			src = port.Addr6
		}
		f.ipid++
		nf, err := packet.EncapIPIP(buf, off, m, packet.Tunnel{Src: src, Dst: d.Addr, ID: f.ipid})
		if err != nil || !src.IsValid() {
			f.stats.drop(DropTooBig)
			return -1, 0, 0
		}
		off, frame = cap(buf)-cap(nf), nf
	}
	packet.SetMACs(frame, f.ports[out].MAC, mac)
	f.stats.dest(d.ID).in(m.Length)
	return out, off, len(frame)
}

func destPort(d *Dest, m *packet.Meta) uint16 {
	if d.Port == 0 {
		return m.DstPort // a group's real server keeps the packet's port
	}
	return d.Port
}

// schedule creates the connection of service svc for a frame that has
// none, filling f.conn; false when the frame is dropped (counted).
func (f *forwarder) schedule(t *Table, svc *Service, frame []byte, in int, now int64) bool {
	m := f.m
	if m.Proto == protoTCP && !isSYN(m.TCPFlags) && (!f.sloppyTCP || m.TCPFlags&(packet.FlagSYN|packet.FlagRST) != 0) {
		// Mid-stream TCP for a connection we do not know (expired, or the
		// director restarted): IPVS drops it too rather than guess, unless
		// sloppy: then a consistent scheduler (mh) picks the real server
		// the connection already has.
		f.stats.drop(DropNoConn)
		return false
	}
	d := f.pick(t, svc, now)
	if d == nil {
		f.stats.drop(DropNoDest)
		return false
	}
	f.val = conntrack.Value{Service: svc.ID, Dest: d.ID, Flags: uint32(d.Method), InPort: uint16(in), Aux: f.proxyAux, Ext: f.proxyExt}
	copy(f.val.PeerMAC[:], frame[6:12])
	var rev *conntrack.Key
	dir := conntrack.InputOnly
	switch d.Method {
	case MethodNAT:
		f.rkey = conntrack.MakeKey(m.Proto, d.Addr, destPort(d, m), m.Src, m.SrcPort)
		rev, dir = &f.rkey, conntrack.Input
	case MethodFullNAT:
		return f.insertFullNAT(svc, d, now)
	}
	return f.insert(rev, dir, d, now)
}

// insert adds f.key (and rev) with f.val; on a race with another worker
// creating the same connection, f.conn is that worker's entry.
func (f *forwarder) insert(rev *conntrack.Key, dir conntrack.PacketDir, d *Dest, now int64) bool {
	m := f.m
	switch err := f.ct.Insert(&f.key, rev, &f.val, m.Proto, m.TCPFlags, dir, now, &f.conn); err {
	case nil:
		bump(&f.stats.dest(d.ID).conns, 1)
		if f.events != nil {
			f.events.push(&f.conn, f.conn.State)
		}
	case conntrack.ErrExists:
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

// localPortTries bounds the search for a free local port per new FullNAT
// connection; a pool so full that this many ports in a row, from a random
// one on, are taken drops the new flow (counted), never an existing one. A
// pool no larger than this is searched whole.
const localPortTries = 16

// insertFullNAT picks (local address, local port) for a new FullNAT
// connection so that its reverse key is unique, and inserts it. The
// connection table is the allocator: a port is free when no entry holds the
// reverse key it would make. False when the frame is dropped (counted).
func (f *forwarder) insertFullNAT(svc *Service, d *Dest, now int64) bool {
	m := f.m
	if len(svc.lips) == 0 {
		f.stats.drop(DropNoLocalPort)
		return false
	}
	rport := destPort(d, m)
	// The pool is (local address, port) slots; the search starts at a
	// random one and walks on, so that a small pool is searched whole.
	ports := svc.lportMax - svc.lportMin + 1
	slots := uint64(len(svc.lips)) * uint64(ports)
	f.seq++
	start := uint64(mix32(uint32(m.SrcPort)*0x9e3779b1^uint32(f.key.SrcAddr[15])<<16^uint32(f.key.SrcAddr[14])<<24^f.seq)) % slots
	for try := uint64(0); try < min(slots, localPortTries); try++ {
		slot := (start + try) % slots
		li := int(slot / uint64(ports))
		lport := uint16(svc.lportMin + uint32(slot%uint64(ports)))
		f.rkey = conntrack.MakeKey(m.Proto, d.Addr, rport, svc.lips[li], lport)
		if f.ct.Lookup(&f.rkey, &f.scratch) {
			continue
		}
		f.val.Flags = uint32(MethodFullNAT) | uint32(li)<<8 | uint32(lport)<<16
		err := f.ct.Insert(&f.key, &f.rkey, &f.val, m.Proto, m.TCPFlags, conntrack.Input, now, &f.conn)
		switch {
		case err == nil:
			bump(&f.stats.dest(d.ID).conns, 1)
			if f.events != nil {
				f.events.push(&f.conn, f.conn.State)
			}
			return true
		case err == conntrack.ErrExists && f.conn.Orig == f.key:
			// Another worker created this very connection first.
			f.ct.Touch(f.conn.Ref, m.TCPFlags, packetDir(&f.conn), now)
			return true
		case err == conntrack.ErrFull:
			f.stats.drop(DropTableFull)
			return false
		}
		// The reverse key was taken in between: try another port.
	}
	f.stats.drop(DropNoLocalPort)
	return false
}

// mix32 is murmur3's finaliser: every input bit moves every output bit.
func mix32(x uint32) uint32 {
	x ^= x >> 16
	x *= 0x85ebca6b
	x ^= x >> 13
	x *= 0xc2b2ae35
	return x ^ x>>16
}

// FullNAT's default local ports: out of the well-known range.
const (
	DefaultLocalPortMin = 1024
	DefaultLocalPortMax = 65535
)

// pick chooses the real server for a new connection: the one a live
// persistent template names, else the scheduler's choice (recorded in a
// template when the service is persistent).
func (f *forwarder) pick(t *Table, svc *Service, now int64) *Dest {
	m := f.m
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
	hi, lo := persistKey(c.Orig.SrcAddr, f.m.Src.Is4(), svc.persistPrefix)
	id, deadline, ok := f.persist.lookup(svc.ID, hi, lo, now)
	if ok && id != c.Value.Dest {
		return // the client has moved on to another server's template
	}
	if !ok || deadline-now < svc.persist-int64(time.Second) {
		f.persist.store(svc.ID, hi, lo, c.Value.Dest, now+svc.persist, now)
	}
}

// reusable reports whether a pure SYN that hits connection c starts a new
// connection rather than retransmitting c's: c is closing, or its real
// server is gone, quiescent or failing its checks.
func reusable(t *Table, c *conntrack.Conn) bool {
	switch c.State {
	case conntrack.TimeWait, conntrack.Close, conntrack.FinWait, conntrack.CloseWait, conntrack.LastAck:
		return true
	}
	d := t.dest(c.Value.Dest)
	return d == nil || d.Draining || d.Weight == 0
}

func isSYN(flags uint8) bool {
	return flags&(packet.FlagSYN|packet.FlagACK|packet.FlagRST|packet.FlagFIN) == packet.FlagSYN
}

// packetDir tells the state machine what the director sees of a connection:
// both directions in NAT, only the client's in DR.
func packetDir(c *conntrack.Conn) conntrack.PacketDir {
	if m := Method(c.Value.Flags & methodMask); m != MethodNAT && m != MethodFullNAT {
		return conntrack.InputOnly
	}
	if c.Dir == conntrack.DirReply {
		return conntrack.Output
	}
	return conntrack.Input
}
