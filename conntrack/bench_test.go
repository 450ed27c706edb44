package conntrack

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

const benchFlows = 1 << 18

// benchTable fills a table with flows NAT entries and returns their forward and reverse keys.
func benchTable(b *testing.B, flows int) (*Table, []Key) {
	b.Helper()
	tab := newTestTable(b, Config{Capacity: flows * 2})
	keys := make([]Key, 0, 2*flows)
	for i := range flows {
		f, r := benchKey(i), benchKey(i).Reverse()
		v := testValue(i)
		if err := tab.Insert(&f, &r, &v, protoTCP, fSYN, Input, 0, nil); err != nil {
			b.Fatal(err)
		}
		keys = append(keys, f, r)
	}
	return tab, keys
}

func benchKey(i int) Key {
	return MakeKey(protoTCP, testClient(i>>6), uint16(1024+i&63), testVIP, 80)
}

// BenchmarkLookupHit looks up keys in a random order, in a table that fits in the CPU caches and in one
// that does not.
func BenchmarkLookupHit(b *testing.B) {
	for _, flows := range []int{1 << 10, benchFlows} {
		b.Run(fmt.Sprintf("flows=%d", flows), func(b *testing.B) {
			tab, keys := benchTable(b, flows)
			rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			var c Conn
			for i := 0; b.Loop(); i++ {
				if !tab.Lookup(&keys[i&(len(keys)-1)], &c) {
					b.Fatal("miss")
				}
			}
		})
	}
}

func BenchmarkLookupParallel(b *testing.B) {
	tab, keys := benchTable(b, benchFlows)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var c Conn
		for i := 0; pb.Next(); i += 7 {
			if !tab.Lookup(&keys[i&(len(keys)-1)], &c) {
				b.Error("miss")
				return
			}
		}
	})
}

func BenchmarkLookupTouch(b *testing.B) {
	tab, keys := benchTable(b, benchFlows)
	var c Conn
	for i := 0; b.Loop(); i++ {
		if !tab.Lookup(&keys[i&(len(keys)-1)], &c) {
			b.Fatal("miss")
		}
		tab.Touch(c.Ref, fACK, Input, int64(i)<<10)
	}
}

func BenchmarkInsertDelete(b *testing.B) {
	tab, _ := benchTable(b, benchFlows)
	keys := make([]Key, 1024)
	for i := range keys {
		keys[i] = benchKey(benchFlows + i)
	}
	v := testValue(1)
	var c Conn
	for i := 0; b.Loop(); i++ {
		k := &keys[i&(len(keys)-1)]
		r := k.Reverse()
		if err := tab.Insert(k, &r, &v, protoTCP, fSYN, Input, 0, &c); err != nil {
			b.Fatal(err)
		}
		if !tab.Delete(c.Ref) {
			b.Fatal("delete failed")
		}
	}
}
