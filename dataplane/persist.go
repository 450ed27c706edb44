package dataplane

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"time"
)

// Template is a live persistence template (ipvsadm -L -c lists them among
// the connections): a client, under its service's netmask, keeps Dest
// until Expires from now.
type Template struct {
	Service uint32 // the service's ID
	Dest    uint32 // the real server's ID
	Client  netip.Addr
	Expires time.Duration
}

// Templates calls fn for every live persistence template, in no order,
// until fn returns false. It walks the whole template table. A template
// whose real server is no longer its service's (a template outlives the
// service it was made for) is left out.
func (e *Engine) Templates(fn func(Template) bool) {
	now := e.now()
	t := e.Table()
	e.persist.rangeLive(now, func(svc, dest uint32, hi, lo uint64, deadline int64) bool {
		if d := t.dest(dest); d == nil || d.Service != svc {
			return true
		}
		var a [16]byte
		binary.BigEndian.PutUint64(a[:8], hi)
		binary.BigEndian.PutUint64(a[8:], lo)
		return fn(Template{Service: svc, Dest: dest, Client: netip.AddrFrom16(a).Unmap(), Expires: time.Duration(deadline - now)})
	})
}

// PersistConns counts the live persistence templates per real server ID
// (ipvsadm's PersistConn). It walks the whole template table.
func (e *Engine) PersistConns() map[uint32]int64 {
	out := map[uint32]int64{}
	e.Templates(func(tp Template) bool {
		out[tp.Dest]++
		return true
	})
	return out
}

// persistTable holds IPVS's persistent templates: (service, client address
// under the service's netmask) -> real server, until a deadline. It is a
// fixed array probed a few slots from the key's hash, read lock-free under a
// per-slot sequence counter and written by whichever worker schedules, so
// the packet path neither allocates nor locks. When every probed slot is
// live, the one closest to expiry is replaced: the table bounds memory, not
// the number of persistent clients, and a client that loses its template is
// simply scheduled afresh.
type persistTable struct {
	slots []persistSlot
	mask  uint64
}

type persistSlot struct {
	seq      atomic.Uint64 // odd while a writer owns the slot
	addrHi   atomic.Uint64
	addrLo   atomic.Uint64
	svcDest  atomic.Uint64 // service ID << 32 | dest ID; 0 = empty (service IDs are stored +1)
	deadline atomic.Int64
}

const persistProbe = 8

func newPersistTable(size int) *persistTable {
	n := 1
	for n < size {
		n <<= 1
	}
	return &persistTable{slots: make([]persistSlot, n), mask: uint64(n - 1)}
}

// persistKey is the client's address under prefix bits (ipvsadm -M), in
// 16-byte form.
func persistKey(client [16]byte, v4 bool, prefix int) (hi, lo uint64) {
	bits := prefix
	if bits <= 0 {
		bits = 128
	} else if v4 {
		bits += 96
	}
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(client[i])
		lo = lo<<8 | uint64(client[8+i])
	}
	switch {
	case bits >= 128:
	case bits > 64:
		lo &= ^uint64(0) << (128 - bits)
	default:
		lo = 0
		hi &= ^uint64(0) << (64 - bits)
	}
	return hi, lo
}

func persistHash(svc uint32, hi, lo uint64) uint64 {
	h := hi*0x9e3779b97f4a7c15 ^ lo*0xc2b2ae3d27d4eb4f ^ uint64(svc)*0x165667b19e3779f9
	return h ^ h>>29
}

// lookup returns the real server a live template assigns, and its deadline.
func (p *persistTable) lookup(svc uint32, hi, lo uint64, now int64) (dest uint32, deadline int64, ok bool) {
	h := persistHash(svc, hi, lo)
	want := uint64(svc+1) << 32
	for i := uint64(0); i < persistProbe; i++ {
		s := &p.slots[(h+i)&p.mask]
		for tries := 0; tries < 4; tries++ {
			seq := s.seq.Load()
			if seq&1 != 0 {
				continue
			}
			a, b, sd, dl := s.addrHi.Load(), s.addrLo.Load(), s.svcDest.Load(), s.deadline.Load()
			if s.seq.Load() != seq {
				continue
			}
			if a == hi && b == lo && sd&^0xffffffff == want && dl > now {
				return uint32(sd), dl, true
			}
			break
		}
	}
	return 0, 0, false
}

// store creates or refreshes the template for (svc, client) -> dest.
func (p *persistTable) store(svc uint32, hi, lo uint64, dest uint32, deadline, now int64) {
	h := persistHash(svc, hi, lo)
	want := uint64(svc+1) << 32
	var victim *persistSlot
	victimDL := int64(1<<63 - 1)
	for i := uint64(0); i < persistProbe; i++ {
		s := &p.slots[(h+i)&p.mask]
		sd, dl := s.svcDest.Load(), s.deadline.Load()
		if sd&^0xffffffff == want && s.addrHi.Load() == hi && s.addrLo.Load() == lo {
			victim = s
			break
		}
		if sd == 0 || dl <= now {
			if victimDL > -1 {
				victim, victimDL = s, -1
			}
			continue
		}
		if dl < victimDL {
			victim, victimDL = s, dl
		}
	}
	seq := victim.seq.Load()
	if seq&1 != 0 || !victim.seq.CompareAndSwap(seq, seq+1) {
		// Another worker is writing this slot right now: the template is
		// a cache, so losing this write only means rescheduling later.
		return
	}
	victim.addrHi.Store(hi)
	victim.addrLo.Store(lo)
	victim.svcDest.Store(want | uint64(dest))
	victim.deadline.Store(deadline)
	victim.seq.Store(seq + 2)
}

// count returns the live templates (for listings; walks the table).
func (p *persistTable) count(now int64) int {
	n := 0
	for i := range p.slots {
		if p.slots[i].svcDest.Load() != 0 && p.slots[i].deadline.Load() > now {
			n++
		}
	}
	return n
}

// rangeLive calls fn for every live template, with its fields read under
// the slot's sequence counter; fn returns false to stop.
func (p *persistTable) rangeLive(now int64, fn func(svc, dest uint32, hi, lo uint64, deadline int64) bool) {
	for i := range p.slots {
		s := &p.slots[i]
		for tries := 0; tries < 4; tries++ {
			seq := s.seq.Load()
			if seq&1 != 0 {
				continue
			}
			a, b, sd, dl := s.addrHi.Load(), s.addrLo.Load(), s.svcDest.Load(), s.deadline.Load()
			if s.seq.Load() != seq {
				continue
			}
			if sd != 0 && dl > now && !fn(uint32(sd>>32)-1, uint32(sd), a, b, dl) {
				return
			}
			break
		}
	}
}
