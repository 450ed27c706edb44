// Package syncookie makes and checks the SYN cookies of the director's SYN
// proxy: the initial sequence number of a SYN-ACK that carries, instead of
// a connection entry, what the director must remember of the client's SYN
// until its ACK comes back (RFC 4987, section 3.6).
//
// A cookie is 32 bits:
//
//	bit  31     the minute it was made in, modulo 2
//	bits 30-29  the MSS, as an index into a table of common values
//	bits 28-25  the client's window scale (0-14), 15 when it sent none
//	bit  24     the client permits SACK
//	bits 23-0   a keyed hash (SipHash-2-4) of the 4-tuple, the client's
//	            initial sequence number and bits 31-24, under the minute's key
//
// so that the client's window scale and SACK survive the handshake without
// timestamps (Linux hides them in the timestamp option instead, which then
// has to be kept for the whole connection). A cookie is good in the minute
// it was made and the next; the minute's bit says which key to check it
// with, so a check costs one hash. A forged ACK passes one time in 2^24.
//
// Minute keys derive from one 32-byte secret: directors that share it (the
// [sync] key) accept each other's cookies, so an ACK that ECMP sends to
// another director than its SYN still opens the connection, as long as
// their clocks agree to within the cookie's minute.
package syncookie

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/xvs-lb/xvs/dataplane/packet"
	"github.com/xvs-lb/xvs/internal/siphash"
)

// SecretLen is the size of a Jar's secret.
const SecretLen = 32

// Options are what a cookie keeps of a client's SYN: the MSS (rounded
// down to a table value), the window scale (-1: none) and SACK-permitted.
type Options = packet.SYNOptions

// mssTable4 and mssTable6 are the MSS values a cookie can say, as
// Linux's msstab: the common ones, so that rounding down to one costs
// little. The first is what a client that sends no MSS option gets (RFC
// 9293's default for IPv4; IPv6's minimum MTU less 60).
var (
	mssTable4 = [4]uint16{536, 1300, 1440, 1460}
	mssTable6 = [4]uint16{1220, 1280, 1420, 1440}
)

// Jar holds the keys cookies are made and checked with. Make and Check
// are safe for concurrent use and allocate nothing; a worker holds a
// pointer to the one Jar of its engine.
type Jar struct {
	k0, k1 uint64 // the secret's SipHash key, from which minute keys derive
	// wallBase turns the caller's clock into Unix nanoseconds: minutes are
	// the wall clock's, so that directors sharing the secret agree on them.
	wallBase int64
	keys     [4]atomic.Pointer[minuteKey] // by minute modulo 4: the last, this and the next (Prime)
}

type minuteKey struct {
	minute int64
	k0, k1 uint64
}

// ErrSecretLen says a secret is not SecretLen bytes.
var ErrSecretLen = errors.New("syncookie: secret must be 32 bytes")

// New returns a Jar keyed with secret (SecretLen bytes), or with a random
// secret if secret is nil. clockNow is the caller's clock's reading now, in
// nanoseconds; Make and Check take readings of the same clock.
func New(secret []byte, clockNow int64) (*Jar, error) {
	var s [SecretLen]byte
	switch {
	case secret == nil:
		if _, err := rand.Read(s[:]); err != nil {
			return nil, err
		}
	case len(secret) != SecretLen:
		return nil, ErrSecretLen
	default:
		copy(s[:], secret)
	}
	// The SipHash key is 16 bytes: fold the secret's two halves into it.
	j := &Jar{
		k0:       binary.LittleEndian.Uint64(s[0:]) ^ binary.LittleEndian.Uint64(s[16:]),
		k1:       binary.LittleEndian.Uint64(s[8:]) ^ binary.LittleEndian.Uint64(s[24:]),
		wallBase: time.Now().UnixNano() - clockNow,
	}
	return j, nil
}

// minute returns the wall-clock minute of clock reading now.
func (j *Jar) minute(now int64) int64 { return j.UnixNano(now) / int64(time.Minute) }

// key returns the key of minute m, deriving it the first time the minute
// is asked for (once a minute per Jar, by Prime ahead of time: the
// derivation allocates a minuteKey).
func (j *Jar) key(m int64) (k0, k1 uint64) {
	slot := &j.keys[m&3]
	if k := slot.Load(); k != nil && k.minute == m {
		return k.k0, k.k1
	}
	var b [16]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(m))
	copy(b[8:], "xvs-syn\x00")
	k := &minuteKey{minute: m, k0: siphash.Sum24(j.k0, j.k1, b[:])}
	b[15] = 1
	k.k1 = siphash.Sum24(j.k0, j.k1, b[:])
	slot.Store(k)
	return k.k0, k.k1
}

// Prime derives the keys of the minute of now and the next, so that the
// first SYN of a minute does not pay for it; the engine calls it from
// its housekeeping.
func (j *Jar) Prime(now int64) {
	m := j.minute(now)
	j.key(m)
	j.key(m + 1)
}

// MinuteKey is the key cookies of one minute are hashed with: what a
// cookie maker outside the Jar (the XDP program) needs to make the Jar's
// cookies.
type MinuteKey struct {
	Minute int64 // of the Unix clock
	K0, K1 uint64
}

// Keys returns the keys of the minute of clock reading now and of the
// next.
func (j *Jar) Keys(now int64) [2]MinuteKey {
	m := j.minute(now)
	var ks [2]MinuteKey
	for i := range ks {
		ks[i].Minute = m + int64(i)
		ks[i].K0, ks[i].K1 = j.key(m + int64(i))
	}
	return ks
}

// UnixNano is clock reading now in the clock minutes count: Unix
// nanoseconds.
func (j *Jar) UnixNano(now int64) int64 { return now + j.wallBase }

// Flow is the connection a cookie is bound to, as the client sent its SYN.
type Flow struct {
	Src, Dst         netip.Addr // both IPv4 or both IPv6
	SrcPort, DstPort uint16
	ISN              uint32 // the client's initial sequence number
}

const (
	hashBits  = 24
	hashMask  = 1<<hashBits - 1
	sackBit   = 1 << 24
	wsShift   = 25
	wsNone    = 15
	mssShift  = 29
	timeShift = 31
)

// Make returns the cookie for a SYN of f whose options were opts, at
// clock reading now, and the options the cookie keeps (the MSS rounded
// down to what it can say): those the SYN-ACK must offer.
func (j *Jar) Make(f *Flow, opts Options, now int64) (uint32, Options) {
	m := j.minute(now)
	table := &mssTable4
	if f.Src.Is6() {
		table = &mssTable6
	}
	idx := 0
	for i := len(table) - 1; i > 0; i-- {
		if opts.MSS >= table[i] {
			idx = i
			break
		}
	}
	ws := uint32(wsNone)
	kept := Options{MSS: table[idx], WScale: -1, SACKPerm: opts.SACKPerm}
	if opts.WScale >= 0 {
		kept.WScale = min(opts.WScale, 14)
		ws = uint32(kept.WScale)
	}
	info := uint32(m&1)<<timeShift | uint32(idx)<<mssShift | ws<<wsShift
	if opts.SACKPerm {
		info |= sackBit
	}
	k0, k1 := j.key(m)
	return info | j.hash(k0, k1, f, info), kept
}

// Check reports whether cookie is one Make gave for f (f.ISN being the
// client's initial sequence number: its ACK's sequence number less one)
// in the minute of now or the one before, and if so the options it kept.
func (j *Jar) Check(f *Flow, cookie uint32, now int64) (Options, bool) {
	m := j.minute(now)
	if int64(cookie>>timeShift) != m&1 {
		m-- // made in the previous minute, or forged
	}
	info := cookie &^ hashMask
	k0, k1 := j.key(m)
	if j.hash(k0, k1, f, info) != cookie&hashMask {
		return Options{}, false
	}
	table := &mssTable4
	if f.Src.Is6() {
		table = &mssTable6
	}
	opts := Options{MSS: table[cookie>>mssShift&3], WScale: -1, SACKPerm: cookie&sackBit != 0}
	if ws := cookie >> wsShift & 15; ws != wsNone {
		if ws > 14 {
			return Options{}, false
		}
		opts.WScale = int8(ws)
	}
	return opts, true
}

// hash is the cookie's keyed hash of the flow and the cookie's info bits.
func (j *Jar) hash(k0, k1 uint64, f *Flow, info uint32) uint32 {
	var b [44]byte
	n := 0
	if f.Src.Is4() {
		s, d := f.Src.As4(), f.Dst.As4()
		n += copy(b[n:], s[:])
		n += copy(b[n:], d[:])
	} else {
		s, d := f.Src.As16(), f.Dst.As16()
		n += copy(b[n:], s[:])
		n += copy(b[n:], d[:])
	}
	binary.LittleEndian.PutUint16(b[n:], f.SrcPort)
	binary.LittleEndian.PutUint16(b[n+2:], f.DstPort)
	binary.LittleEndian.PutUint32(b[n+4:], f.ISN)
	binary.LittleEndian.PutUint32(b[n+8:], info)
	return uint32(siphash.Sum24(k0, k1, b[:n+12])) & hashMask
}
