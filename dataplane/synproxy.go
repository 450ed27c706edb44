package dataplane

import (
	"net/netip"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/dataplane/packet"
	"github.com/xvs-lb/xvs/dataplane/syncookie"
)

// The SYN proxy (ServiceSpec.SynProxy), as DPVS's synproxy: the director
// answers a client's SYN itself, with a SYN-ACK whose sequence number is a
// SYN cookie, and keeps nothing. Only the client's ACK, whose cookie
// proves that the client received the SYN-ACK at its address, creates the
// connection: the ACK becomes the SYN sent on to the real server, with the
// client's initial sequence number and options. When the real server's
// SYN-ACK comes back the director acknowledges it itself, tells the client
// the real server's window, and from then on adds the difference between
// its cookie and the real server's initial sequence number to what the
// real server sends and takes it off what the client acknowledges.
//
// The SYN-ACK offers a zero window, so that a client sends nothing before
// the real server can take it (a client that does sends it again: it was
// never acknowledged); the window update after the real server's SYN-ACK
// opens it. Timestamps are not offered (the cookie keeps the window scale
// and SACK instead), so neither half uses them.

// The Ext word of a proxied connection (conntrack.Value.Ext).
const (
	extProxied = 1 << 0 // the connection was opened by the SYN proxy
	extReady   = 1 << 1 // the real server answered; Aux holds the delta
	// The window shifts, each 15 when not negotiated: the real server's,
	// and the one the proxy offered the client.
	extServerWSShift = 4
	extClientWSShift = 8
	wsNone           = 15
	// The client's window in its ACK, as sent, for the ACK the proxy sends
	// the real server.
	extWindowShift = 16
)

// proxyWScale is the window shift the proxy offers clients that scale
// windows: Linux's for today's buffers. The real server's own is
// translated to it.
const proxyWScale = 7

// synProxyMiss handles a TCP frame of a SYN-proxied service that has no
// connection. A SYN is answered with a cookie (out is the port it came
// in on); an ACK whose cookie checks is turned into the SYN to send on,
// and proceed says to schedule it as one; anything else is dropped.
func (f *forwarder) synProxyMiss(buf []byte, off int, frame []byte, in int, now int64) (out, newOff, newN int, proceed bool) {
	m := f.m
	tcp := packet.TCP(frame[m.L4Off:])
	switch {
	case isSYN(m.TCPFlags):
		opts := packet.ParseSYNOptions(tcp.Options())
		// Offer what the port carries, and no more than the client takes.
		mss := opts.MSS
		if mss == 0 {
			mss = 536
		}
		hdr := 40
		if m.IPv6 {
			hdr = 60
		}
		opts.MSS = uint16(min(int(mss), f.ports[in].MTU-hdr))
		fl := syncookie.Flow{Src: m.Src, Dst: m.Dst, SrcPort: m.SrcPort, DstPort: m.DstPort, ISN: tcp.SequenceNumber()}
		cookie, kept := f.cookies.Make(&fl, opts, now)
		if kept.WScale >= 0 {
			kept.WScale = proxyWScale
		}
		seg := packet.Segment{
			Src: m.Dst, Dst: m.Src, SrcPort: m.DstPort, DstPort: m.SrcPort,
			Seq: cookie, Ack: fl.ISN + 1, Flags: packet.FlagSYN | packet.FlagACK, Opts: &kept,
		}
		peer := packet.Ethernet(frame).Source()
		n, err := packet.WriteTCP(frame, m.L3Off, &seg)
		if err != nil {
			f.stats.drop(DropMalformed)
			return -1, 0, 0, false
		}
		packet.SetMACs(frame, f.ports[in].MAC, peer)
		bump(&f.stats.SynProxySynAcks, 1)
		return in, off, n, false
	case isACK(m.TCPFlags):
		isn, cookie, opts, ok := f.checkCookie(tcp, now)
		if !ok {
			f.stats.drop(DropBadCookie)
			return -1, 0, 0, false
		}
		window := tcp.WindowSize()
		// A SYN's window is never scaled: the client's, in bytes.
		synWindow := uint32(window)
		if opts.WScale >= 0 {
			synWindow = min(synWindow<<opts.WScale, 0xffff)
		}
		seg := packet.Segment{
			Src: m.Src, Dst: m.Dst, SrcPort: m.SrcPort, DstPort: m.DstPort,
			Seq: isn, Flags: packet.FlagSYN, Window: uint16(synWindow), Opts: &opts,
		}
		n, err := packet.WriteTCP(frame, m.L3Off, &seg)
		if err != nil {
			f.stats.drop(DropMalformed)
			return -1, 0, 0, false
		}
		// The frame is now the client's SYN, to schedule as any other.
		m.L4Off = m.L3Off + packet.IPv4MinHeaderLen
		if m.IPv6 {
			m.L4Off = m.L3Off + packet.IPv6HeaderLen
		}
		m.TCPFlags, m.Length = packet.FlagSYN, n
		cws := uint32(wsNone)
		if opts.WScale >= 0 {
			cws = proxyWScale
		}
		f.proxyAux = cookie
		f.proxyExt = extProxied | wsNone<<extServerWSShift | cws<<extClientWSShift | uint32(window)<<extWindowShift
		bump(&f.stats.SynProxyOpened, 1)
		return 0, off, n, true
	}
	f.stats.drop(DropNoConn)
	return -1, 0, 0, false
}

// isACK reports a bare ACK (perhaps with data): what a handshake's last
// segment is.
func isACK(flags uint8) bool {
	return flags&(packet.FlagSYN|packet.FlagRST|packet.FlagFIN|packet.FlagACK) == packet.FlagACK
}

// checkCookie checks the cookie of a client's ACK of the frame f.m
// describes: the client's ISN, the cookie and the options it kept, and
// whether it checked.
func (f *forwarder) checkCookie(tcp packet.TCP, now int64) (isn, cookie uint32, opts syncookie.Options, ok bool) {
	m := f.m
	isn, cookie = tcp.SequenceNumber()-1, tcp.AckNumber()-1
	fl := syncookie.Flow{Src: m.Src, Dst: m.Dst, SrcPort: m.SrcPort, DstPort: m.DstPort, ISN: isn}
	if opts, ok = f.cookies.Check(&fl, cookie, now); ok {
		return isn, cookie, opts, true
	}
	// A client whose handshake ACK was lost sits on the zero window and
	// probes it with a segment one below its next sequence number
	// (Linux's tcp_xmit_probe_skb): its ISN itself. That opens the
	// connection as well.
	fl.ISN++
	opts, ok = f.cookies.Check(&fl, cookie, now)
	return fl.ISN, cookie, opts, ok
}

// reopens reports whether a client's ACK that found connection c, which
// is closing, is the handshake ACK of a new connection from the same
// port: one whose SYN the XDP program answered with a cookie, so that no
// worker saw it take the port over (the SYN that would have, above).
func (f *forwarder) reopens(t *Table, c *conntrack.Conn, frame []byte, now int64) bool {
	m := f.m
	if f.cookies == nil || c.Dir != conntrack.DirOriginal || !isACK(m.TCPFlags) || !reusable(t, c) {
		return false
	}
	if svc := t.service(m.Dst, m.DstPort, m.Proto); svc == nil || !svc.synProxy {
		return false
	}
	_, _, _, ok := f.checkCookie(packet.TCP(frame[m.L4Off:]), now)
	return ok
}

// proxyIn translates a client's frame of a proxied connection for the real
// server: false when it is dropped (the real server has not answered yet).
func (f *forwarder) proxyIn(c *conntrack.Conn, frame []byte) bool {
	if c.Value.Ext&extReady == 0 {
		f.stats.drop(DropProxyPending)
		return false
	}
	if err := packet.SubAck(frame, f.m, c.Value.Aux); err != nil {
		f.stats.drop(DropMalformed)
		return false
	}
	return true
}

// proxyOut handles a real server's frame of a proxied connection before it
// is translated for the client. Its SYN-ACK completes the proxy's
// handshake: the frame becomes the proxy's ACK to the real server
// (reflected: done is set and out is its port), and the window update to
// the client is left in f.reply. Any other frame has its sequence number
// and window translated.
func (f *forwarder) proxyOut(c *conntrack.Conn, frame []byte, in int, now int64) (out, n int, done bool) {
	m := f.m
	tcp := packet.TCP(frame[m.L4Off:])
	ext := c.Value.Ext
	if m.TCPFlags&(packet.FlagSYN|packet.FlagACK) == packet.FlagSYN|packet.FlagACK {
		isn := tcp.SequenceNumber()
		// Aux holds the cookie until the real server answers, the delta
		// after (for a retransmitted SYN-ACK).
		cookie := c.Value.Aux
		if ext&extReady != 0 {
			cookie += isn
		}
		delta := cookie - isn
		sws := uint32(wsNone)
		if o := packet.ParseSYNOptions(tcp.Options()); o.WScale >= 0 {
			sws = uint32(o.WScale)
		}
		if ext&extReady == 0 {
			ext = ext&^(0xf<<extServerWSShift) | sws<<extServerWSShift | extReady
			f.ct.SetAux(c.Ref, delta, ext)
			f.ct.Touch(c.Ref, packet.FlagACK, conntrack.Input, now)
		}
		// The window update to the client, from the VIP.
		win := uint32(tcp.WindowSize()) // unscaled in a SYN-ACK
		if cws := ext >> extClientWSShift & 0xf; cws != wsNone {
			win >>= cws
		}
		client := netip.AddrFrom16(c.Orig.SrcAddr).Unmap()
		vip := netip.AddrFrom16(c.Orig.DstAddr).Unmap()
		upd := packet.Segment{
			Src: vip, Dst: client, SrcPort: c.Orig.DstPort, DstPort: c.Orig.SrcPort,
			Seq: cookie + 1, Ack: tcp.AckNumber(), Flags: packet.FlagACK, Window: uint16(min(win, 0xffff)),
		}
		copy(f.replyBuf[:m.L3Off], frame[:m.L3Off])
		if rn, err := packet.WriteTCP(f.replyBuf[:m.L3Off], m.L3Off, &upd); err == nil && int(c.Value.InPort) < len(f.ports) {
			packet.SetMACs(f.replyBuf[:rn], f.ports[c.Value.InPort].MAC, c.Value.PeerMAC)
			f.replyLen, f.replyPort = rn, int(c.Value.InPort)
		}
		// The ACK to the real server, from where it sent its SYN-ACK to.
		ack := packet.Segment{
			Src: m.Dst, Dst: m.Src, SrcPort: m.DstPort, DstPort: m.SrcPort,
			Seq: tcp.AckNumber(), Ack: isn + 1, Flags: packet.FlagACK, Window: uint16(ext >> extWindowShift),
		}
		peer := packet.Ethernet(frame).Source()
		an, err := packet.WriteTCP(frame, m.L3Off, &ack)
		if err != nil {
			f.stats.drop(DropMalformed)
			return -1, 0, true
		}
		packet.SetMACs(frame, f.ports[in].MAC, peer)
		return in, an, true
	}
	delta := c.Value.Aux
	if ext&extReady == 0 {
		// Before its SYN-ACK, only a reset is worth passing on: it must
		// carry the sequence number the client expects, the cookie's next.
		if m.TCPFlags&packet.FlagRST == 0 {
			f.stats.drop(DropProxyPending)
			return -1, 0, true
		}
		delta = c.Value.Aux + 1 - tcp.SequenceNumber()
	}
	shift := 0
	sws, cws := int(ext>>extServerWSShift&0xf), int(ext>>extClientWSShift&0xf)
	if sws != wsNone && cws != wsNone {
		shift = sws - cws
	}
	if err := packet.AddSeq(frame, m, delta, shift); err != nil {
		f.stats.drop(DropMalformed)
		return -1, 0, true
	}
	return 0, 0, false
}

// proxyICMPQuote translates the sequence number an ICMP error quotes from
// a packet the client was sent (the proxy's numbering) into the real
// server's, so that the real server acts on it (path MTU discovery checks
// it against what it sent).
func proxyICMPQuote(frame []byte, m *packet.Meta, emb *packet.Embedded, c *conntrack.Conn) {
	if c.Value.Ext&extReady != 0 && emb.Proto == protoTCP {
		_ = packet.SubQuotedSeq(frame, m, emb, c.Value.Aux) // a quote too short to hold it is left as it is
	}
}
