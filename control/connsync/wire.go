package connsync

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"math"
	"net/netip"
	"time"
)

// Wire format, version 1. All integers are big-endian.
//
//	 0  magic    "XVSC"
//	 4  version  uint8 (1)
//	 5  type     uint8 (msgEntries, msgSnapshotRequest, msgSnapshotChunk, msgSnapshotEnd)
//	 6  count    uint16 number of entries that follow
//	 8  node     uint32 sender's NodeID
//	12  target   uint32 snapshot chunk and end: the requester's NodeID; 0 otherwise
//	16  request  uint32 snapshot request, chunk and end: the requester's request id; 0 otherwise
//	20  aux      uint32 snapshot end: entries the snapshot held (mod 2^32); otherwise the sender's
//	                    sync id, 0..255 (IPVS's syncid: backups filter on it; 0 before sync ids)
//	24  seq      uint64 per-sender sequence number
//	32  time     int64  sender's clock, Unix nanoseconds
//	40  entries  count × entry
//	    mac      first 16 bytes of HMAC-SHA256(macKey, everything before it)
//
// An entry:
//
//	0  flags    bit 0: client and virtual are IPv6; bit 1: real and local are IPv6; bit 2: local present;
//	            bit 3: client side present
//	1  proto    uint8
//	2  method   uint8
//	3  state    uint8
//	4  expires  uint32 milliseconds
//	8  client addr (4 or 16) and port (2), virtual addr and port, real addr and port,
//	   then local addr and port if present,
//	   then the client side if present: the port (interface slot, 1 byte) and the next hop's MAC (6)
//	   that replies to the client leave by (NAT, FullNAT; directors of a group list their
//	   interfaces in the same order)
//
// The client and the VIP are one packet's addresses and share a family, as do the real server and the
// local address; the two sides may differ (a FullNAT director may translate between families).
const (
	version    = 1
	headerLen  = 40
	macLen     = 16
	entryFixed = 8

	// MaxDatagram bounds every datagram sent (UDP payload), so that it fits a 1500-byte MTU with
	// IPv6 and a tunnel header to spare.
	MaxDatagram = 1400

	maxBody = MaxDatagram - headerLen - macLen
	// maxEntries is the most entries one datagram can carry: all IPv4, no local address.
	maxEntries = maxBody / (entryFixed + 3*(4+2))
)

// maxSyncID bounds a sync id, a byte as in IPVS.
const maxSyncID = 255

const (
	msgEntries         = 1
	msgSnapshotRequest = 2
	msgSnapshotChunk   = 3
	msgSnapshotEnd     = 4
)

const (
	flagFront6 = 1 << 0
	flagBack6  = 1 << 1
	flagLocal  = 1 << 2
	flagPeer   = 1 << 3
	flagsKnown = flagFront6 | flagBack6 | flagLocal | flagPeer
	peerLen    = 7
)

var magic = [4]byte{'X', 'V', 'S', 'C'}

// macLabel separates the MAC key from other uses of the same shared secret.
const macLabel = "xvs connsync v1 mac"

var (
	errTruncated = errors.New("truncated datagram")
	errMagic     = errors.New("bad magic")
	errVersion   = errors.New("unknown version")
	errMAC       = errors.New("bad MAC")
	errMalformed = errors.New("malformed datagram")
	errOversize  = errors.New("datagram over size limit")
)

type header struct {
	typ     uint8
	count   uint16
	node    uint32
	target  uint32
	request uint32
	aux     uint32
	seq     uint64
	time    int64
}

func putHeader(b []byte, h *header) {
	_ = b[headerLen-1]
	copy(b[0:4], magic[:])
	b[4] = version
	b[5] = h.typ
	binary.BigEndian.PutUint16(b[6:], h.count)
	binary.BigEndian.PutUint32(b[8:], h.node)
	binary.BigEndian.PutUint32(b[12:], h.target)
	binary.BigEndian.PutUint32(b[16:], h.request)
	binary.BigEndian.PutUint32(b[20:], h.aux)
	binary.BigEndian.PutUint64(b[24:], h.seq)
	binary.BigEndian.PutUint64(b[32:], uint64(h.time))
}

// parseHeader checks what can be checked before the MAC: size, magic and version. The version is
// checked first among the fields so that a peer speaking a later version is counted as such rather than
// as an authentication failure.
func parseHeader(b []byte) (header, error) {
	if len(b) > MaxDatagram {
		return header{}, errOversize
	}
	if len(b) < headerLen+macLen {
		return header{}, errTruncated
	}
	if [4]byte(b[0:4]) != magic {
		return header{}, errMagic
	}
	if b[4] != version {
		return header{}, errVersion
	}
	return header{
		typ:     b[5],
		count:   binary.BigEndian.Uint16(b[6:]),
		node:    binary.BigEndian.Uint32(b[8:]),
		target:  binary.BigEndian.Uint32(b[12:]),
		request: binary.BigEndian.Uint32(b[16:]),
		aux:     binary.BigEndian.Uint32(b[20:]),
		seq:     binary.BigEndian.Uint64(b[24:]),
		time:    int64(binary.BigEndian.Uint64(b[32:])),
	}, nil
}

// checkHeader applies the per-type rules that a datagram passing its MAC must still satisfy.
func checkHeader(h *header, bodyLen int) error {
	switch h.typ {
	case msgEntries:
		if h.target != 0 || h.request != 0 || h.aux > maxSyncID || h.count == 0 {
			return errMalformed
		}
	case msgSnapshotChunk:
		if h.aux > maxSyncID || h.count == 0 {
			return errMalformed
		}
	case msgSnapshotRequest:
		if h.target != 0 || h.aux > maxSyncID || h.count != 0 || bodyLen != 0 {
			return errMalformed
		}
	case msgSnapshotEnd:
		if h.count != 0 || bodyLen != 0 {
			return errMalformed
		}
	default:
		return errMalformed
	}
	return nil
}

// newMAC returns the datagram authenticator for a shared secret.
func newMAC(key []byte) hash.Hash {
	kdf := hmac.New(sha256.New, key)
	kdf.Write([]byte(macLabel))
	return hmac.New(sha256.New, kdf.Sum(nil))
}

// sign appends the MAC of b to b; b must have room for it (capacity len(b)+sha256.Size).
func sign(mac hash.Hash, b []byte) []byte {
	mac.Reset()
	mac.Write(b)
	n := len(b)
	return mac.Sum(b)[:n+macLen]
}

// verify reports whether the datagram b ends with a valid MAC of the rest. scratch must have
// capacity for sha256.Size bytes.
func verify(mac hash.Hash, b []byte, scratch []byte) bool {
	body := b[:len(b)-macLen]
	mac.Reset()
	mac.Write(body)
	sum := mac.Sum(scratch[:0])
	return hmac.Equal(sum[:macLen], b[len(body):])
}

// validConn reports whether c can be encoded: the three mandatory addresses are set, and each side's
// addresses share a family.
func validConn(c *Conn) bool {
	if !c.Client.Addr().IsValid() || !c.Virtual.Addr().IsValid() || !c.Real.Addr().IsValid() {
		return false
	}
	if c.Client.Addr().Is4() != c.Virtual.Addr().Is4() {
		return false
	}
	if c.Local.Addr().IsValid() && c.Local.Addr().Is4() != c.Real.Addr().Is4() {
		return false
	}
	return true
}

func addrLen(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 16
}

// entrySize is the encoded size of a valid Conn.
func entrySize(c *Conn) int {
	n := entryFixed + 2*(addrLen(c.Client.Addr())+2) + addrLen(c.Real.Addr()) + 2
	if c.Local.Addr().IsValid() {
		n += addrLen(c.Local.Addr()) + 2
	}
	if c.PeerMAC != ([6]byte{}) {
		n += peerLen
	}
	return n
}

// expiresMs converts a remaining lifetime to the wire's milliseconds, clamped to what fits.
func expiresMs(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	ms := d.Milliseconds()
	if ms > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(ms)
}

// appendEntry appends a valid Conn's encoding to b.
func appendEntry(b []byte, c *Conn, expires uint32) []byte {
	var flags byte
	if !c.Client.Addr().Is4() {
		flags |= flagFront6
	}
	if !c.Real.Addr().Is4() {
		flags |= flagBack6
	}
	if c.Local.Addr().IsValid() {
		flags |= flagLocal
	}
	if c.PeerMAC != ([6]byte{}) {
		flags |= flagPeer
	}
	b = append(b, flags, c.Proto, c.Method, c.State)
	b = binary.BigEndian.AppendUint32(b, expires)
	b = appendAddrPort(b, c.Client)
	b = appendAddrPort(b, c.Virtual)
	b = appendAddrPort(b, c.Real)
	if flags&flagLocal != 0 {
		b = appendAddrPort(b, c.Local)
	}
	if flags&flagPeer != 0 {
		b = append(b, c.InPort)
		b = append(b, c.PeerMAC[:]...)
	}
	return b
}

func appendAddrPort(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr()
	if a.Is4() {
		v := a.As4()
		b = append(b, v[:]...)
	} else {
		v := a.As16()
		b = append(b, v[:]...)
	}
	return binary.BigEndian.AppendUint16(b, ap.Port())
}

// parseEntries decodes exactly count entries that must fill body, appending them to out.
func parseEntries(body []byte, count int, out []Conn) ([]Conn, error) {
	for range count {
		if len(body) < entryFixed {
			return out, errMalformed
		}
		flags := body[0]
		if flags&^flagsKnown != 0 {
			return out, errMalformed
		}
		c := Conn{
			Proto:   body[1],
			Method:  body[2],
			State:   body[3],
			Expires: time.Duration(binary.BigEndian.Uint32(body[4:])) * time.Millisecond,
		}
		body = body[entryFixed:]
		var ok bool
		front, back := flags&flagFront6 != 0, flags&flagBack6 != 0
		if c.Client, body, ok = parseAddrPort(body, front); !ok {
			return out, errMalformed
		}
		if c.Virtual, body, ok = parseAddrPort(body, front); !ok {
			return out, errMalformed
		}
		if c.Real, body, ok = parseAddrPort(body, back); !ok {
			return out, errMalformed
		}
		if flags&flagLocal != 0 {
			if c.Local, body, ok = parseAddrPort(body, back); !ok {
				return out, errMalformed
			}
		}
		if flags&flagPeer != 0 {
			if len(body) < peerLen {
				return out, errMalformed
			}
			c.InPort = body[0]
			copy(c.PeerMAC[:], body[1:peerLen])
			body = body[peerLen:]
		}
		out = append(out, c)
	}
	if len(body) != 0 {
		return out, errMalformed
	}
	return out, nil
}

func parseAddrPort(b []byte, v6 bool) (netip.AddrPort, []byte, bool) {
	if v6 {
		if len(b) < 18 {
			return netip.AddrPort{}, b, false
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[:16])), binary.BigEndian.Uint16(b[16:])), b[18:], true
	}
	if len(b) < 6 {
		return netip.AddrPort{}, b, false
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), binary.BigEndian.Uint16(b[4:])), b[6:], true
}

// encoder builds one datagram at a time. It is owned by one goroutine.
type encoder struct {
	mac hash.Hash
	buf []byte // capacity MaxDatagram - macLen + sha256.Size, for sign
	hdr header
}

func newEncoder(key []byte) *encoder {
	return &encoder{mac: newMAC(key), buf: make([]byte, 0, MaxDatagram-macLen+sha256.Size)}
}

// begin starts a datagram of the given type.
func (e *encoder) begin(typ uint8, target, request uint32) {
	e.hdr = header{typ: typ, target: target, request: request}
	e.buf = e.buf[:headerLen]
}

// fits reports whether an entry of n bytes still fits the datagram.
func (e *encoder) fits(n int) bool { return len(e.buf)+n <= MaxDatagram-macLen }

// add appends a valid Conn; the caller has checked fits.
func (e *encoder) add(c *Conn, expires uint32) {
	e.buf = appendEntry(e.buf, c, expires)
	e.hdr.count++
}

func (e *encoder) count() int { return int(e.hdr.count) }

// finish writes the header and MAC and returns the datagram, valid until the next begin.
func (e *encoder) finish(node uint32, seq uint64, now int64, aux uint32) []byte {
	e.hdr.node, e.hdr.seq, e.hdr.time, e.hdr.aux = node, seq, now, aux
	putHeader(e.buf, &e.hdr)
	return sign(e.mac, e.buf)
}

// decoder authenticates and parses datagrams. It is owned by one goroutine.
type decoder struct {
	mac     hash.Hash
	scratch []byte
	conns   []Conn
}

func newDecoder(key []byte) *decoder {
	return &decoder{mac: newMAC(key), scratch: make([]byte, 0, sha256.Size), conns: make([]Conn, 0, maxEntries)}
}

// decode authenticates and parses b. The returned entries are valid until the next call.
func (d *decoder) decode(b []byte) (header, []Conn, error) {
	h, err := parseHeader(b)
	if err != nil {
		return h, nil, err
	}
	if !verify(d.mac, b, d.scratch) {
		return h, nil, errMAC
	}
	body := b[headerLen : len(b)-macLen]
	if err := checkHeader(&h, len(body)); err != nil {
		return h, nil, err
	}
	if int(h.count) > maxEntries {
		return h, nil, errMalformed
	}
	conns, err := parseEntries(body, int(h.count), d.conns[:0])
	if err != nil {
		return h, nil, err
	}
	return h, conns, nil
}
