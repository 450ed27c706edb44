package conntrack

import (
	"errors"
	"testing"
	"time"

	"pgregory.net/rapid"
)

type modelEntry struct {
	fwd, rev int // key ids; rev -1 when none
	v        Value
	state    State
	noOutput bool
	deadline int64
	ref      Ref
}

// TestModel checks the table against a map model under random sequences of inserts, lookups, touches,
// deletes, time steps and sweeps, with few buckets and a small capacity so that overflow, reuse and a full
// table are common, under both full policies. The capacity is below evictSamples, so an eviction looks at
// every entry and the model can tell which entries it may have chosen.
func TestModel(t *testing.T) {
	const (
		capacity = 10
		numKeys  = 40
		numDests = 3
	)
	rapid.Check(t, func(rt *rapid.T) {
		// Every layout has room in each shard for all 20 keys, so only a full table refuses an insert; with
		// three buckets in a shard, most of them overflow.
		layout := rapid.SampledFrom([][2]int{{1, 3}, {2, 3}, {1, 8}}).Draw(rt, "shards, buckets per shard")
		policy := rapid.SampledFrom([]FullPolicy{Refuse, EvictOldestIdle}).Draw(rt, "policy")
		var now int64
		tab, err := newTable(Config{Capacity: capacity, Shards: layout[0], MaxDests: numDests, FullPolicy: policy,
			Clock: func() int64 { return now }}, layout[1])
		if err != nil {
			rt.Fatal(err)
		}
		defer tab.unmap()
		var stats Stats                // what the model expects the table's counters to be
		owner := map[int]*modelEntry{} // key id -> entry
		live := map[Ref]*modelEntry{}
		var stale []Ref
		keyOf := func(i int) Key { return testKey(i) }
		timeout := func(s State) int64 { return int64(ipvsTimeouts[s]) }
		kill := func(e *modelEntry) {
			delete(live, e.ref)
			delete(owner, e.fwd)
			if e.rev >= 0 {
				delete(owner, e.rev)
			}
			stale = append(stale, e.ref)
		}
		pickLive := func(rt *rapid.T) *modelEntry {
			refs := make([]Ref, 0, len(live))
			for r := range live {
				refs = append(refs, r)
			}
			// Map order is random; sort so that rapid can shrink deterministically.
			for i := range refs {
				for j := i + 1; j < len(refs); j++ {
					if refs[j].idx < refs[i].idx {
						refs[i], refs[j] = refs[j], refs[i]
					}
				}
			}
			return live[rapid.SampledFrom(refs).Draw(rt, "entry")]
		}
		flagsGen := rapid.SampledFrom([]uint8{fSYN, fSYNACK, fACK, fFINACK, fRST, fRSTACK, 0})
		dirGen := rapid.SampledFrom([]PacketDir{Input, Output, InputOnly})

		insert := func(rt *rapid.T) {
			a := rapid.IntRange(0, numKeys-1).Draw(rt, "fwd")
			b := rapid.IntRange(-1, numKeys-1).Draw(rt, "rev")
			proto := rapid.SampledFrom([]uint8{protoTCP, protoUDP, protoICMP}).Draw(rt, "proto")
			flags := flagsGen.Draw(rt, "flags")
			dir := dirGen.Draw(rt, "dir")
			v := Value{Service: uint32(a), Dest: uint32(rapid.IntRange(0, numDests-1).Draw(rt, "dest")), Flags: uint32(b)}
			fwd := keyOf(a)
			var rev *Key
			if b >= 0 {
				r := keyOf(b)
				rev = &r
			}
			if b == a {
				b = -1
			}
			var c Conn
			err := tab.Insert(&fwd, rev, &v, proto, flags, dir, now, &c)
			if e := owner[a]; e != nil || (b >= 0 && owner[b] != nil) {
				if e == nil {
					e = owner[b]
				}
				if !errors.Is(err, ErrExists) || c.Ref != e.ref || c.Value != e.v {
					rt.Fatalf("insert over existing key: err %v, conn %+v, want entry %+v", err, c, *e)
				}
				stats.Exists++
				return
			}
			if len(live) == capacity {
				// Evictable: any entry but an ESTABLISHED one within its timeout. The victim is one
				// of those with the earliest deadline, and the new entry takes its slot.
				var victim *modelEntry
				first := int64(-1)
				for _, e := range live {
					if e.state == Established && e.deadline > now {
						continue
					}
					if first < 0 || e.deadline < first {
						first = e.deadline
					}
					if e.ref.idx == c.Ref.idx {
						victim = e
					}
				}
				if policy == Refuse || first < 0 {
					if !errors.Is(err, ErrFull) {
						rt.Fatalf("insert into full table (policy %v, evictable %v): %v", policy, first >= 0, err)
					}
					stats.FullDrops++
					return
				}
				if err != nil || victim == nil || victim.deadline != first {
					rt.Fatalf("insert into full table evicting: err %v, conn %+v, victim %+v, earliest deadline %v",
						err, c, victim, time.Duration(first))
				}
				kill(victim)
				stats.Evicted++
			}
			if err != nil {
				rt.Fatalf("insert: %v", err)
			}
			stats.Inserts++
			e := &modelEntry{fwd: a, rev: b, v: v, ref: c.Ref}
			switch proto {
			case protoTCP:
				e.state, e.noOutput = nextTCPState(None, dir == InputOnly, flags, dir)
			case protoICMP:
				e.state = NormalICMP
			default:
				e.state = Normal
			}
			e.deadline = now + timeout(e.state)
			if c.State != e.state {
				rt.Fatalf("new entry in %v, want %v", c.State, e.state)
			}
			live[e.ref] = e
			owner[a] = e
			if b >= 0 {
				owner[b] = e
			}
		}
		actions := map[string]func(*rapid.T){
			// Inserts weigh three times as much as each other action, so that the table fills.
			"insert":  insert,
			"insert2": insert,
			"insert3": insert,
			"lookup": func(rt *rapid.T) {
				k := rapid.IntRange(0, numKeys-1).Draw(rt, "key")
				key := keyOf(k)
				var c Conn
				found := tab.Lookup(&key, &c)
				e := owner[k]
				if found != (e != nil) {
					rt.Fatalf("lookup %d: found %v, model has %+v", k, found, e)
				}
				if e == nil {
					return
				}
				wantDir := DirOriginal
				if k != e.fwd {
					wantDir = DirReply
				}
				if c.Ref != e.ref || c.Dir != wantDir || c.Orig != keyOf(e.fwd) || c.Value != e.v || c.State != e.state {
					rt.Fatalf("lookup %d: %+v, model %+v", k, c, *e)
				}
			},
			"touch": func(rt *rapid.T) {
				flags, dir := flagsGen.Draw(rt, "flags"), dirGen.Draw(rt, "dir")
				if len(stale) > 0 && (len(live) == 0 || rapid.Bool().Draw(rt, "stale")) {
					if st := tab.Touch(rapid.SampledFrom(stale).Draw(rt, "ref"), flags, dir, now); st != None {
						rt.Fatalf("stale touch gave %v", st)
					}
					return
				}
				if len(live) == 0 {
					rt.Skip("nothing to touch")
				}
				e := pickLive(rt)
				if e.state < numTCPStates {
					e.state, e.noOutput = nextTCPState(e.state, e.noOutput, flags, dir)
				}
				e.deadline = now + timeout(e.state)
				if st := tab.Touch(e.ref, flags, dir, now); st != e.state {
					rt.Fatalf("touch gave %v, want %v", st, e.state)
				}
			},
			"delete": func(rt *rapid.T) {
				if len(stale) > 0 && (len(live) == 0 || rapid.Bool().Draw(rt, "stale")) {
					if tab.Delete(rapid.SampledFrom(stale).Draw(rt, "ref")) {
						rt.Fatal("stale delete succeeded")
					}
					return
				}
				if len(live) == 0 {
					rt.Skip("nothing to delete")
				}
				e := pickLive(rt)
				if !tab.Delete(e.ref) {
					rt.Fatal("delete failed")
				}
				kill(e)
				stats.Deletes++
			},
			"advance": func(rt *rapid.T) {
				now += int64(rapid.SampledFrom([]time.Duration{0, time.Second, 9 * time.Second, 10 * time.Second,
					50 * time.Second, 60 * time.Second, 120 * time.Second, 300 * time.Second, 900 * time.Second}).Draw(rt, "step"))
			},
			"sweep": func(rt *rapid.T) {
				budget := rapid.IntRange(1, capacity).Draw(rt, "budget")
				removed := tab.Sweep(now, budget)
				gone := 0
				for _, e := range live {
					key := keyOf(e.fwd)
					var c Conn
					if tab.Lookup(&key, &c) {
						if budget == capacity && e.deadline <= now {
							rt.Fatalf("full sweep left an expired entry %+v", *e)
						}
						continue
					}
					if e.deadline > now {
						rt.Fatalf("sweep removed %+v before its deadline (now %v)", *e, time.Duration(now))
					}
					kill(e)
					gone++
				}
				if gone != removed {
					rt.Fatalf("sweep returned %d, %d entries went", removed, gone)
				}
				stats.Expired += uint64(gone)
			},
			"": func(rt *rapid.T) {
				if tab.Len() != len(live) {
					rt.Fatalf("Len %d, model %d", tab.Len(), len(live))
				}
				stats.Entries = len(live)
				if got := tab.Stats(); got != stats {
					rt.Fatalf("stats %+v, model %+v", got, stats)
				}
				if err := indexError(tab); err != nil {
					rt.Fatal(err)
				}
				var want [numDests][2]int64
				for _, e := range live {
					if e.state == Established {
						want[e.v.Dest][0]++
					} else {
						want[e.v.Dest][1]++
					}
				}
				for d := range uint32(numDests) {
					if a, i := tab.DestConns(d); a != want[d][0] || i != want[d][1] {
						rt.Fatalf("dest %d: %d/%d, model %d/%d", d, a, i, want[d][0], want[d][1])
					}
				}
			},
		}
		// Repeat runs -rapid.steps (30) actions; more are needed to fill the table and reuse its slots.
		for range 12 {
			rt.Repeat(actions)
		}
	})
}
