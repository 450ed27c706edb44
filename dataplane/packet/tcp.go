package packet

import (
	"encoding/binary"
	"net/netip"
)

// SYNOptions are the TCP options of a SYN that outlive it: what a SYN
// proxy keeps in its cookie and offers in the SYN-ACK and the SYN it
// sends on.
type SYNOptions struct {
	MSS      uint16 // 0: no MSS option
	WScale   int8   // the window shift; -1: no window scale option
	SACKPerm bool
}

// TCP option kinds (RFC 9293, RFC 7323, RFC 2018).
const (
	tcpOptEnd      = 0
	tcpOptNOP      = 1
	tcpOptMSS      = 2
	tcpOptWScale   = 3
	tcpOptSACKPerm = 4
	tcpOptSACK     = 5
)

// ParseSYNOptions returns the MSS, window scale and SACK-permitted options
// in opts (a TCP header's options); a malformed option ends the walk, and
// what was found before it counts.
func ParseSYNOptions(opts []byte) SYNOptions {
	o := SYNOptions{WScale: -1}
	for i, kind, n := 0, byte(0), 0; ; i += n {
		var ok bool
		if kind, n, ok = nextTCPOption(opts, i); !ok {
			break
		}
		switch {
		case kind == tcpOptMSS && n == 4:
			o.MSS = binary.BigEndian.Uint16(opts[i+2:])
		case kind == tcpOptWScale && n == 3:
			o.WScale = int8(min(opts[i+2], 14))
		case kind == tcpOptSACKPerm && n == 2:
			o.SACKPerm = true
		}
	}
	return o
}

// nextTCPOption returns the kind and length of the option at opts[i] (1
// for a NOP), or false at the end of the options, at an end-of-options
// option or at one that is malformed: what was before it counts.
func nextTCPOption(opts []byte, i int) (kind byte, n int, ok bool) {
	if i >= len(opts) || opts[i] == tcpOptEnd {
		return 0, 0, false
	}
	if opts[i] == tcpOptNOP {
		return tcpOptNOP, 1, true
	}
	if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
		return 0, 0, false
	}
	return opts[i], int(opts[i+1]), true
}

// Segment is a TCP segment without payload for WriteTCP to build.
type Segment struct {
	Src, Dst         netip.Addr // both IPv4 or both IPv6
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            uint8
	Window           uint16
	// Opts, for a SYN or SYN-ACK: the options written (MSS, then window
	// scale and SACK-permitted where set), 4-byte aligned with NOPs.
	Opts *SYNOptions
}

// maxSegmentLen is the most WriteTCP writes after the link-layer header.
const maxSegmentLen = IPv6HeaderLen + TCPMinHeaderLen + 12

// WriteTCP writes seg as a complete IP packet at frame[l3:], over whatever
// was there (the link-layer header before l3 is kept, its EtherType set),
// with both checksums computed in full, and returns the frame's new
// length. frame's capacity must have room (l3 + 72 bytes at most).
func WriteTCP(frame []byte, l3 int, seg *Segment) (int, error) {
	v6 := seg.Src.Is6()
	ipLen := IPv4MinHeaderLen
	if v6 {
		ipLen = IPv6HeaderLen
	}
	if l3 < 2 || cap(frame) < l3+maxSegmentLen || seg.Dst.Is6() != v6 {
		return 0, ErrMalformed
	}
	frame = frame[:cap(frame)]
	var optBuf [12]byte
	opts := optBuf[:0]
	if o := seg.Opts; o != nil {
		if o.MSS != 0 {
			opts = append(opts, tcpOptMSS, 4, byte(o.MSS>>8), byte(o.MSS))
		}
		if o.WScale >= 0 {
			opts = append(opts, tcpOptNOP, tcpOptWScale, 3, byte(o.WScale))
		}
		if o.SACKPerm {
			opts = append(opts, tcpOptNOP, tcpOptNOP, tcpOptSACKPerm, 2)
		}
	}
	tcpLen := TCPMinHeaderLen + len(opts)
	ip := frame[l3:]
	if v6 {
		binary.BigEndian.PutUint16(frame[l3-2:], EtherTypeIPv6)
		binary.BigEndian.PutUint32(ip[0:], 6<<28)
		h := IPv6(ip)
		h.SetPayloadLength(uint16(tcpLen))
		h.SetNextHeader(ProtoTCP)
		h.SetHopLimit(64)
		h.SetSourceAddress(seg.Src)
		h.SetDestinationAddress(seg.Dst)
	} else {
		binary.BigEndian.PutUint16(frame[l3-2:], EtherTypeIPv4)
		h := IPv4(ip)
		ip[0], ip[1] = 0x45, 0
		h.SetTotalLength(uint16(ipLen + tcpLen))
		binary.BigEndian.PutUint32(ip[4:], 0x4000) // ID 0, don't fragment
		h.SetTTL(64)
		ip[9] = ProtoTCP
		h.SetSourceAddress(seg.Src)
		h.SetDestinationAddress(seg.Dst)
		h.SetChecksum(0)
		h.SetChecksum(h.CalculateChecksum())
	}
	t := TCP(ip[ipLen : ipLen+tcpLen])
	t.SetSourcePort(seg.SrcPort)
	t.SetDestinationPort(seg.DstPort)
	binary.BigEndian.PutUint32(t[4:], seg.Seq)
	binary.BigEndian.PutUint32(t[8:], seg.Ack)
	t[12] = byte(tcpLen/4) << 4
	t.SetFlags(seg.Flags)
	binary.BigEndian.PutUint16(t[14:], seg.Window)
	t.SetChecksum(0)
	binary.BigEndian.PutUint16(t[18:], 0)
	copy(t[TCPMinHeaderLen:], opts)
	t.SetChecksum(^Fold(Checksum(t, PseudoHeaderChecksum(ProtoTCP, seg.Src, seg.Dst, uint32(tcpLen)))))
	return l3 + ipLen + tcpLen, nil
}

// AddSeq adds delta to the sequence number of the TCP segment m describes,
// and rescales its window by shift (left for a positive shift, saturating
// at 65535; right for a negative one), updating the checksum (RFC 1624):
// a SYN proxy's translation of what the real server sends to what the
// client agreed with the proxy.
func AddSeq(frame []byte, m *Meta, delta uint32, shift int) error {
	if m.Proto != ProtoTCP || m.L4Off+TCPMinHeaderLen > len(frame) {
		return ErrMalformed
	}
	t := TCP(frame[m.L4Off:])
	csum := t.Checksum()
	csum = updateChecksum32(csum, t[4:8], t.SequenceNumber()+delta)
	if shift != 0 {
		old := t.WindowSize()
		w := uint32(old)
		if shift > 0 {
			w = min(w<<shift, 0xffff)
		} else {
			w >>= -shift
		}
		binary.BigEndian.PutUint16(t[14:], uint16(w))
		csum = UpdateChecksum16(csum, old, uint16(w))
	}
	t.SetChecksum(csum)
	return nil
}

// SubAck subtracts delta from the acknowledgment number of the TCP segment
// m describes and from the edges of its SACK blocks, updating the
// checksum: a SYN proxy's translation of what the client acknowledges
// into the real server's sequence space.
func SubAck(frame []byte, m *Meta, delta uint32) error {
	if m.Proto != ProtoTCP || m.L4Off+TCPMinHeaderLen > len(frame) {
		return ErrMalformed
	}
	t := TCP(frame[m.L4Off:])
	doff := t.DataOffset()
	if doff < TCPMinHeaderLen || m.L4Off+doff > len(frame) {
		return ErrMalformed
	}
	csum := t.Checksum()
	if t.Flags()&FlagACK != 0 {
		csum = updateChecksum32(csum, t[8:12], t.AckNumber()-delta)
	}
	opts := t[TCPMinHeaderLen:doff]
	for i, kind, n := 0, byte(0), 0; ; i += n {
		var ok bool
		if kind, n, ok = nextTCPOption(opts, i); !ok {
			break
		}
		if kind == tcpOptSACK {
			// Edges at 2 + 4k into the option, which senders align
			// with NOPs (an even offset) but need not.
			for e := i + 2; e+4 <= i+n; e += 4 {
				edge := opts[e : e+4]
				v := binary.BigEndian.Uint32(edge) - delta
				if (TCPMinHeaderLen+e)%2 == 0 {
					csum = updateChecksum32(csum, edge, v)
				} else {
					csum = updateOdd(csum, edge, v)
				}
			}
		}
	}
	t.SetChecksum(csum)
	return nil
}

// SubQuotedSeq subtracts delta from the sequence number of the TCP header
// that the ICMP error in frame quotes (emb, from ParseICMPError), updating
// the ICMP checksum: a SYN proxy's translation of an error about a segment
// the client was sent into the real server's numbering. ErrTruncated when
// the quote stops before the sequence number.
func SubQuotedSeq(frame []byte, m *Meta, emb *Embedded, delta uint32) error {
	at := emb.L4Off + 4
	if emb.Proto != ProtoTCP || at+4 > emb.End || m.L4Off+4 > len(frame) {
		return ErrTruncated
	}
	seq := frame[at : at+4]
	v := binary.BigEndian.Uint32(seq) - delta
	csum := binary.BigEndian.Uint16(frame[m.L4Off+2:])
	if (at-m.L4Off)%2 == 0 {
		csum = updateChecksum32(csum, seq, v)
	} else {
		csum = updateOdd(csum, seq, v)
	}
	binary.BigEndian.PutUint16(frame[m.L4Off+2:], csum)
	return nil
}

// updateChecksum32 writes v over the 4 bytes at b (at an even offset of
// the checksum's coverage) and returns the checksum updated for it.
func updateChecksum32(csum uint16, b []byte, v uint32) uint16 {
	var nb [4]byte
	binary.BigEndian.PutUint32(nb[:], v)
	csum = UpdateChecksumAddr(csum, b[:4], nb[:])
	copy(b, nb[:])
	return csum
}

// updateOdd writes v over the 4 bytes at b, which start at an odd offset
// of the checksum's coverage, and returns the checksum updated for it:
// there the bytes are the low, high, low and high halves of the words they
// fall in.
func updateOdd(csum uint16, b []byte, v uint32) uint16 {
	sum := func(b []byte) uint32 {
		return uint32(b[0]) + uint32(b[1])<<8 + uint32(b[2]) + uint32(b[3])<<8
	}
	old := Fold(sum(b))
	binary.BigEndian.PutUint32(b, v)
	return ^Fold(uint32(^csum) + uint32(^old) + uint32(Fold(sum(b))))
}
