package sched

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// MaxWeight is the largest weight a real server can have, as in ipvsadm.
const MaxWeight = 65535

// Dest is a real server as a scheduler sees it. The order of the dests given
// to New stands for the order of IPVS's destination list: it decides ties,
// the round-robin order and how the hashing tables are filled.
type Dest struct {
	ID     uint32 // stable real-server id; the key for Loads
	Weight int    // 0 = quiescent: never picked for new connections

	// Addr (IPv4 as IPv4-mapped IPv6) and Port identify the real server.
	// Only mh uses them: ip_vs_mh_permutate derives each real server's
	// place in the Maglev table from its address and port, which is what
	// keeps the table stable when other real servers come and go. Give
	// every real server of an mh service its own Addr and Port.
	Addr [16]byte
	Port uint16

	// UpperThreshold and LowerThreshold are ipvsadm's -x and -y: a real
	// server with UpperThreshold or more connections (active + inactive) is
	// overloaded and gets no new connections until it is back below
	// LowerThreshold, or below 3/4 of UpperThreshold when LowerThreshold is
	// 0. UpperThreshold 0 means no limit.
	UpperThreshold, LowerThreshold int
}

// Flow identifies the connection being scheduled. The hashing and locality
// schedulers (sh, mh: the source; dh, lblc, lblcr: the destination) choose
// by it; the others ignore it. Addresses are IPv6 or IPv4-mapped IPv6.
type Flow struct {
	Proto   uint8
	SrcAddr [16]byte
	SrcPort uint16
	DstAddr [16]byte
	DstPort uint16
}

// Loads reports the connection counts of real servers, for the
// least-connection schedulers and the thresholds.
type Loads interface {
	Conns(id uint32) (active, inactive int64)
}

// Scheduler picks a real server for a new connection.
type Scheduler interface {
	// Name is the scheduler's ipvsadm name.
	Name() string
	// Pick returns the index into the dests given to New of the real server
	// for a new connection, or -1 when none is available (all weights 0,
	// all overloaded, or what the scheduler's IPVS counterpart refuses).
	// It is safe for concurrent use and never allocates.
	// loads may be nil; a nil loads counts as no connections anywhere.
	Pick(f *Flow, loads Loads) int
}

// Options are the settings of a scheduler beyond its real servers.
type Options struct {
	// Flags are ipvsadm's scheduler flags (-b): "sh-fallback", "sh-port",
	// "mh-fallback", "mh-port", or the generic "flag-1" and "flag-2" for the
	// fallback and port flags of sh and mh. FlagsFor lists what a scheduler
	// accepts; anything else is an error.
	Flags []string

	// Seed seeds what a scheduler hashes or draws. mh: directors with the
	// same Seed and the same real servers build the same table, so that
	// they agree on every flow; Seed 0 uses IPVS's fixed hash keys. twos:
	// the seed of the instance's random choices; 0 picks one at random.
	Seed uint64

	// Clock returns monotonic nanoseconds; lblc and lblcr age their entries
	// by it. Nil means the runtime's monotonic clock.
	Clock func() int64
}

// Flag bits, as IPVS's IP_VS_SVC_F_SCHED1 and IP_VS_SVC_F_SCHED2.
const (
	flagFallback = 1 << iota // sh-fallback, mh-fallback (flag-1)
	flagPort                 // sh-port, mh-port (flag-2)
)

// options is Options checked and resolved for a factory.
type options struct {
	flags uint
	seed  uint64
	clock func() int64
}

// factory builds a scheduler over dests, which NewWithOptions has already
// copied and checked; a scheduler may keep the slice.
type factory struct {
	name  string
	flags []flagName
	build func(dests []Dest, o *options) (Scheduler, error)
}

type flagName struct {
	name string
	bit  uint
}

// hashFlags are the flags of sh and mh, under their own prefix, with
// ipvsadm's generic aliases.
func hashFlags(prefix string) []flagName {
	return []flagName{
		{prefix + "-fallback", flagFallback},
		{prefix + "-port", flagPort},
		{"flag-1", flagFallback},
		{"flag-2", flagPort},
	}
}

// factories lists the schedulers in the order Names reports them. A new
// scheduler slots in by adding a line here.
func factories() []factory {
	simple := func(f func([]Dest) Scheduler) func([]Dest, *options) (Scheduler, error) {
		return func(d []Dest, _ *options) (Scheduler, error) { return f(d), nil }
	}
	return []factory{
		{"rr", nil, simple(newRR)},
		{"wrr", nil, simple(func(d []Dest) Scheduler { return newWRR(d, wrrMaxTable) })},
		{"lc", nil, simple(newLC)},
		{"wlc", nil, simple(newWLC)},
		{"lblc", nil, func(d []Dest, o *options) (Scheduler, error) { return newLBLC(d, o), nil }},
		{"lblcr", nil, func(d []Dest, o *options) (Scheduler, error) { return newLBLCR(d, o), nil }},
		{"dh", nil, simple(newDH)},
		{"sh", hashFlags("sh"), func(d []Dest, o *options) (Scheduler, error) { return newSH(d, o.flags), nil }},
		{"sed", nil, simple(newSED)},
		{"nq", nil, simple(newNQ)},
		{"fo", nil, simple(newFO)},
		{"ovf", nil, simple(newOVF)},
		{"mh", hashFlags("mh"), newMH},
		{"twos", nil, func(d []Dest, o *options) (Scheduler, error) { return newTwos(d, o.seed), nil }},
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

// FlagsFor returns the scheduler flags that the scheduler called name
// accepts, canonical names first, then ipvsadm's generic aliases; none for
// an unknown scheduler.
func FlagsFor(name string) []string {
	for _, f := range factories() {
		if f.name == name {
			var out []string
			for _, fl := range f.flags {
				out = append(out, fl.name)
			}
			return out
		}
	}
	return nil
}

// New builds the scheduler called name over a copy of dests, with default
// Options.
func New(name string, dests []Dest) (Scheduler, error) {
	return NewWithOptions(name, dests, Options{})
}

// NewWithOptions builds the scheduler called name over a copy of dests.
func NewWithOptions(name string, dests []Dest, opts Options) (Scheduler, error) {
	i := slices.IndexFunc(factories(), func(f factory) bool { return f.name == name })
	if i < 0 {
		return nil, fmt.Errorf("unknown scheduler %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	f := factories()[i]
	if len(dests) > math.MaxInt32 {
		return nil, fmt.Errorf("scheduler %s: %d real servers is too many", name, len(dests))
	}
	for i, d := range dests {
		if d.Weight < 0 || d.Weight > MaxWeight {
			return nil, fmt.Errorf("scheduler %s: real server %d (id %d): weight %d out of range 0..%d",
				name, i, d.ID, d.Weight, MaxWeight)
		}
		if d.UpperThreshold < 0 || d.LowerThreshold < 0 || d.UpperThreshold > math.MaxUint32 {
			return nil, fmt.Errorf("scheduler %s: real server %d (id %d): thresholds %d/%d out of range 0..%d",
				name, i, d.ID, d.UpperThreshold, d.LowerThreshold, uint32(math.MaxUint32))
		}
		// ip_vs_add_dest and ip_vs_edit_dest refuse this with ERANGE.
		if d.LowerThreshold > d.UpperThreshold {
			return nil, fmt.Errorf("scheduler %s: real server %d (id %d): lower threshold %d above upper threshold %d",
				name, i, d.ID, d.LowerThreshold, d.UpperThreshold)
		}
	}
	o := &options{seed: opts.Seed, clock: opts.Clock}
	for _, fl := range opts.Flags {
		j := slices.IndexFunc(f.flags, func(n flagName) bool { return n.name == fl })
		if j < 0 {
			if !knownFlag(fl) {
				return nil, fmt.Errorf("scheduler %s: unknown scheduler flag %q", name, fl)
			}
			if len(f.flags) == 0 {
				return nil, fmt.Errorf("scheduler %s: flag %q does not apply: %s takes no flags", name, fl, name)
			}
			return nil, fmt.Errorf("scheduler %s: flag %q does not apply (accepted: %s)",
				name, fl, strings.Join(FlagsFor(name), ", "))
		}
		o.flags |= f.flags[j].bit
	}
	if o.clock == nil {
		base := time.Now()
		o.clock = func() int64 { return int64(time.Since(base)) }
	}
	if name == "twos" && o.seed == 0 {
		o.seed = rand.Uint64() | 1
	}
	s, err := f.build(slices.Clone(dests), o)
	if err != nil {
		return nil, fmt.Errorf("scheduler %s: %w", name, err)
	}
	return s, nil
}

// knownFlag reports whether fl is a flag of some scheduler, or one of
// ipvsadm's generic flags.
func knownFlag(fl string) bool {
	if fl == "flag-3" {
		return true
	}
	for _, f := range factories() {
		for _, n := range f.flags {
			if n.name == fl {
				return true
			}
		}
	}
	return false
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
