package sched

import (
	"fmt"
	"math"
	"strings"
	"sync/atomic"
)

// MaxWeight is the largest weight a real server can have, as in ipvsadm.
const MaxWeight = 65535

// Dest is a real server as a scheduler sees it.
type Dest struct {
	ID     uint32 // stable real-server id; the key for Loads
	Weight int    // 0 = quiescent: never picked for new connections
}

// Flow identifies the connection being scheduled. The hashing schedulers
// (sh, dh, mh) choose by it; the others ignore it.
type Flow struct {
	Proto   uint8
	SrcAddr [16]byte
	SrcPort uint16
	DstAddr [16]byte
	DstPort uint16
}

// Loads reports the connection counts of real servers, for the
// least-connection schedulers.
type Loads interface {
	Conns(id uint32) (active, inactive int64)
}

// Scheduler picks a real server for a new connection.
type Scheduler interface {
	// Name is the scheduler's ipvsadm name.
	Name() string
	// Pick returns the index into the dests given to New of the real server
	// for a new connection, or -1 when none is available (all weights 0).
	// It is safe for concurrent use, never blocks and never allocates.
	// loads may be nil for schedulers that do not use it; a nil loads counts
	// as no connections anywhere.
	Pick(f *Flow, loads Loads) int
}

// factory builds a scheduler over dests, which New has already copied and
// checked; a scheduler may keep the slice.
type factory struct {
	name  string
	build func(dests []Dest) Scheduler
}

// factories lists the schedulers in the order Names reports them. A new
// scheduler slots in by adding a line here.
func factories() []factory {
	return []factory{
		{"rr", newRR},
		{"wrr", func(d []Dest) Scheduler { return newWRR(d, wrrMaxTable) }},
		{"wlc", newWLC},
	}
}

// Names returns the names of the known schedulers.
func Names() []string {
	fs := factories()
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return names
}

// New builds the scheduler called name over a copy of dests.
func New(name string, dests []Dest) (Scheduler, error) {
	if len(dests) > math.MaxInt32 {
		return nil, fmt.Errorf("scheduler %s: %d real servers is too many", name, len(dests))
	}
	for i, d := range dests {
		if d.Weight < 0 || d.Weight > MaxWeight {
			return nil, fmt.Errorf("scheduler %s: real server %d (id %d): weight %d out of range 0..%d",
				name, i, d.ID, d.Weight, MaxWeight)
		}
	}
	for _, f := range factories() {
		if f.name == name {
			return f.build(append([]Dest(nil), dests...)), nil
		}
	}
	return nil, fmt.Errorf("unknown scheduler %q (known: %s)", name, strings.Join(Names(), ", "))
}

// cacheLine is a conservative cache-line size for padding.
const cacheLine = 64

// cursor is a shared pick counter. Every worker bumps it on each new
// connection, so it is padded onto a cache line of its own: otherwise each
// bump would evict the read-only fields next to it from every other core.
type cursor struct {
	_ [cacheLine]byte
	n atomic.Uint64
	_ [cacheLine - 8]byte
}

// next returns the counter's value before this call's increment, so that
// concurrent callers each get a distinct value and none is skipped.
func (c *cursor) next() uint64 { return c.n.Add(1) - 1 }
