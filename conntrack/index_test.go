package conntrack

import (
	"errors"
	"fmt"
	"testing"
)

// newSmallTable builds a table with perShard buckets in each shard, fewer than New would give it, so that
// buckets overflow; its memory is unmapped when the test ends.
func newSmallTable(tb testing.TB, cfg Config, perShard int) *Table {
	tb.Helper()
	tab, err := newTable(cfg, perShard)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(tab.unmap)
	return tab
}

// checkIndex fails tb if tab, which nothing may change meanwhile, breaks an invariant.
func checkIndex(tb testing.TB, tab *Table) {
	tb.Helper()
	if err := indexError(tab); err != nil {
		tb.Fatal(err)
	}
}

// indexError checks the invariants of a quiescent table: every live key in exactly one slot on its probe,
// overflow counts exact, free lists holding exactly the other entries, counters matching the entries.
func indexError(tab *Table) error {
	var errs []error
	ps := tab.perShard
	wantOvf := make([]uint64, len(tab.buckets))
	seen := make(map[uint32]bool)
	for b := range uint64(len(tab.buckets)) {
		for i := range bucketSlots {
			w := tab.buckets[b][i].Load()
			if i != 0 && w&slotOvfMask != 0 {
				errs = append(errs, fmt.Errorf("bucket %d slot %d: overflow bits in %#x", b, i, w))
			}
			n := uint32(w)
			if n == 0 {
				if w&slotTagMask != 0 {
					errs = append(errs, fmt.Errorf("bucket %d slot %d: empty with a tag %#x", b, i, w))
				}
				continue
			}
			ni := n - 1
			if seen[ni] {
				errs = append(errs, fmt.Errorf("node %d in two slots", ni))
			}
			seen[ni] = true
			e := &tab.entries[ni>>1]
			st := e.st.Load()
			if st&stLive == 0 || (ni&1 == 1 && st&stHasRev == 0) {
				errs = append(errs, fmt.Errorf("bucket %d slot %d: node %d of a dead entry or absent key (st %#x)", b, i, ni, st))
				continue
			}
			kw := loadKey(e.key(ni & 1))
			h := kw.hash(tab.seed)
			start, home := tab.home(h)
			if b < start || b >= start+ps {
				errs = append(errs, fmt.Errorf("node %d in bucket %d, outside its shard [%d, %d)", ni, b, start, start+ps))
				continue
			}
			if w&slotTagMask != slotTag(h) {
				errs = append(errs, fmt.Errorf("node %d: tag %#x, want %#x", ni, w&slotTagMask, slotTag(h)))
			}
			for x := home; x != b; {
				wantOvf[x]++
				if x++; x == start+ps {
					x = start
				}
			}
		}
	}
	for b, want := range wantOvf {
		if got := tab.buckets[b][0].Load() >> slotOvfShift; got != ovfSaturated && got != want {
			errs = append(errs, fmt.Errorf("bucket %d: overflow count %d, want %d", b, got, want))
		}
	}
	free := make(map[uint32]bool)
	for s := range tab.shards {
		n := uint32(tab.shards[s].free.Load())
		for steps := 0; n != 0; steps++ {
			if free[n-1] || steps > len(tab.entries) {
				errs = append(errs, fmt.Errorf("shard %d: entry %d twice on the free lists", s, n-1))
				break
			}
			free[n-1] = true
			n = tab.entries[n-1].free.Load()
		}
	}
	live := 0
	dests := make([][2]int64, len(tab.dests))
	for ei := range uint32(len(tab.entries)) {
		e := &tab.entries[ei]
		st := e.st.Load()
		if st&stLive == 0 {
			if !free[ei] {
				errs = append(errs, fmt.Errorf("entry %d neither live nor free", ei))
			}
			continue
		}
		live++
		if free[ei] {
			errs = append(errs, fmt.Errorf("entry %d live and free", ei))
		}
		if e.seq.Load()&1 != 0 || genField(e.seq.Load()) != st&stGenMask {
			errs = append(errs, fmt.Errorf("entry %d: seq %d, st %#x", ei, e.seq.Load(), st))
		}
		if !seen[ei<<1] || (st&stHasRev != 0) != seen[ei<<1+1] {
			errs = append(errs, fmt.Errorf("entry %d: forward key indexed %v, reverse %v (st %#x)", ei, seen[ei<<1], seen[ei<<1+1], st))
		}
		d := e.val0.Load() >> 32
		if State(st & stStateMask).Active() {
			dests[d][0]++
		} else {
			dests[d][1]++
		}
	}
	if l := tab.Len(); l != live {
		errs = append(errs, fmt.Errorf("Len %d, %d entries live", l, live))
	}
	for d := range dests {
		if a, i := tab.DestConns(uint32(d)); a != dests[d][0] || i != dests[d][1] {
			errs = append(errs, fmt.Errorf("dest %d: counters %d/%d, entries %d/%d", d, a, i, dests[d][0], dests[d][1]))
		}
	}
	return errors.Join(errs...)
}
