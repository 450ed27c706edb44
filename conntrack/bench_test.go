package conntrack

// Benchmarks of the table next to Go's map and sync.Map doing the same work in the same run:
//
//	go test -run '^$' -bench . ./conntrack/                      # 1k and 1M flows
//	XVS_CT_10M=1 go test -run '^$' -bench . -timeout 1h ./conntrack/  # and 10M
//
// A flow is a NAT connection: a forward and a reverse key. The table holds each flow once under both keys;
// the map and sync.Map hold both keys, each with the value and a state word (the state and deadline the
// table keeps). Sub-benchmarks are named impl-size: xvs, map or syncmap, and the number of flows.
// Lookups pick flows and directions at random (hits among the flows present, misses among others). The
// Parallel variants run two goroutines (GOMAXPROCS 2); the map is then read as is, but written under a
// mutex, as it must be.

import (
	"math"
	"math/bits"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

type benchSize struct {
	name string
	n    int
}

// benchSizes are the table sizes, in flows; 10M only with XVS_CT_10M=1, since the three structures take
// several GiB and tens of seconds to fill at that size.
func benchSizes() []benchSize {
	s := []benchSize{{"1k", 1 << 10}, {"1M", 1 << 20}}
	if os.Getenv("XVS_CT_10M") == "1" {
		s = append(s, benchSize{"10M", 10_000_000})
	}
	return s
}

// flowKey is the forward or reverse key of flow i < 2^28: client 10.x.y.z:sport -> VIP:80, and RIP:8080
// -> client.
func flowKey(i uint32, reply bool) Key {
	client := [16]byte{10: 0xff, 11: 0xff, 12: 10, 13: byte(i >> 20), 14: byte(i >> 12), 15: byte(i >> 4)}
	sport := 1024 + uint16(i&15)
	if reply {
		rip := [16]byte{10: 0xff, 11: 0xff, 12: 198, 13: 19, 14: 1, 15: byte(i)}
		return Key{Proto: protoTCP, SrcAddr: rip, DstAddr: client, SrcPort: 8080, DstPort: sport}
	}
	vip := [16]byte{10: 0xff, 11: 0xff, 12: 198, 13: 19, 14: 0, 15: 1}
	return Key{Proto: protoTCP, SrcAddr: client, DstAddr: vip, SrcPort: sport, DstPort: 80}
}

func flowValue(i uint32) Value { return Value{Service: 1, Dest: i & 63, Flags: 2, InPort: 1} }

// mapVal is what the map and sync.Map keep per key: the value, and the state and deadline of the flow.
type mapVal struct {
	v  Value
	st uint64
}

// xorshift is a per-goroutine random number generator cheap enough not to weigh on a lookup.
type xorshift uint64

func (r *xorshift) next() uint64 {
	x := uint64(*r)
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	*r = xorshift(x)
	return x
}

// flow picks one of n flows from off on, and a direction.
func (r *xorshift) flow(off, n int) Key {
	x := r.next()
	i, _ := bits.Mul64(x, uint64(n))
	return flowKey(uint32(off)+uint32(i), x&1 != 0)
}

func fillXVS(tb testing.TB, tab *Table, from, n int) {
	tb.Helper()
	for i := range uint32(n) {
		f, r := flowKey(uint32(from)+i, false), flowKey(uint32(from)+i, true)
		v := flowValue(i)
		if err := tab.Insert(&f, &r, &v, protoTCP, fSYN, Input, 0, nil); err != nil {
			tb.Fatalf("insert flow %d: %v", from+int(i), err)
		}
	}
}

func newXVS(tb testing.TB, n int) *Table {
	tb.Helper()
	tab, err := New(Config{Capacity: n})
	if err != nil {
		tb.Fatal(err)
	}
	return tab
}

func fillMap(m map[Key]mapVal, n int) {
	for i := range uint32(n) {
		v := mapVal{flowValue(i), 1}
		m[flowKey(i, false)] = v
		m[flowKey(i, true)] = v
	}
}

func fillSyncMap(m *sync.Map, n int) {
	for i := range uint32(n) {
		v := mapVal{flowValue(i), 1}
		m.Store(flowKey(i, false), v)
		m.Store(flowKey(i, true), v)
	}
}

// parallel2 runs body in two goroutines, each with its own index (0 or 1) and random seed.
func parallel2(b *testing.B, body func(pb *testing.PB, g int, r xorshift)) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	b.SetParallelism(1)
	var next atomic.Int32
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := int(next.Add(1) - 1)
		body(pb, g, xorshift(0x9e3779b97f4a7c15*uint64(g+1)))
	})
}

// dropLarge releases what the previous sub-benchmark left behind before the next one fills its own.
func dropLarge() { runtime.GC() }

func BenchmarkLookupHit(b *testing.B)          { benchLookup(b, false, false) }
func BenchmarkLookupMiss(b *testing.B)         { benchLookup(b, true, false) }
func BenchmarkLookupHitParallel(b *testing.B)  { benchLookup(b, false, true) }
func BenchmarkLookupMissParallel(b *testing.B) { benchLookup(b, true, true) }

func benchLookup(b *testing.B, miss, parallel bool) {
	for _, sz := range benchSizes() {
		n, off := sz.n, 0
		if miss {
			off = n // flows n..2n-1 are never inserted
		}
		b.Run("xvs-"+sz.name, func(b *testing.B) {
			tab := newXVS(b, n)
			defer tab.unmap()
			fillXVS(b, tab, 0, n)
			b.ReportAllocs()
			if !parallel {
				r := xorshift(1)
				var c Conn
				for b.Loop() {
					k := r.flow(off, n)
					if tab.Lookup(&k, &c) == miss {
						b.Fatalf("lookup %v: wrong result", k)
					}
				}
				return
			}
			parallel2(b, func(pb *testing.PB, _ int, r xorshift) {
				var c Conn
				for pb.Next() {
					k := r.flow(off, n)
					if tab.Lookup(&k, &c) == miss {
						b.Errorf("lookup %v: wrong result", k)
						return
					}
				}
			})
		})
		dropLarge()
		b.Run("map-"+sz.name, func(b *testing.B) {
			m := make(map[Key]mapVal, 2*n)
			fillMap(m, n)
			b.ReportAllocs()
			if !parallel {
				r := xorshift(1)
				for b.Loop() {
					k := r.flow(off, n)
					if _, ok := m[k]; ok == miss {
						b.Fatalf("lookup %v: wrong result", k)
					}
				}
				return
			}
			parallel2(b, func(pb *testing.PB, _ int, r xorshift) {
				for pb.Next() {
					k := r.flow(off, n)
					if _, ok := m[k]; ok == miss {
						b.Errorf("lookup %v: wrong result", k)
						return
					}
				}
			})
		})
		dropLarge()
		b.Run("syncmap-"+sz.name, func(b *testing.B) {
			var m sync.Map
			fillSyncMap(&m, n)
			b.ReportAllocs()
			if !parallel {
				r := xorshift(1)
				for b.Loop() {
					k := r.flow(off, n)
					if _, ok := m.Load(k); ok == miss {
						b.Fatalf("lookup %v: wrong result", k)
					}
				}
				return
			}
			parallel2(b, func(pb *testing.PB, _ int, r xorshift) {
				for pb.Next() {
					k := r.flow(off, n)
					if _, ok := m.Load(k); ok == miss {
						b.Errorf("lookup %v: wrong result", k)
						return
					}
				}
			})
		})
		dropLarge()
	}
}

// BenchmarkInsert inserts flows (both keys) one per op into an empty structure sized for n of them, until
// it holds n; then, with the timer stopped, empties it and goes on.
func BenchmarkInsert(b *testing.B) {
	for _, sz := range benchSizes() {
		n := sz.n
		b.Run("xvs-"+sz.name, func(b *testing.B) {
			tab := newXVS(b, n)
			defer tab.unmap()
			b.ReportAllocs()
			i := uint32(0)
			for b.Loop() {
				if i == uint32(n) {
					b.StopTimer()
					if got := tab.Sweep(math.MaxInt64, n); got != n {
						b.Fatalf("emptying: swept %d of %d", got, n)
					}
					i = 0
					b.StartTimer()
				}
				f, r := flowKey(i, false), flowKey(i, true)
				v := flowValue(i)
				if err := tab.Insert(&f, &r, &v, protoTCP, fSYN, Input, 0, nil); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		dropLarge()
		b.Run("map-"+sz.name, func(b *testing.B) {
			m := make(map[Key]mapVal, 2*n)
			b.ReportAllocs()
			i := uint32(0)
			for b.Loop() {
				if i == uint32(n) {
					b.StopTimer()
					clear(m)
					i = 0
					b.StartTimer()
				}
				v := mapVal{flowValue(i), 1}
				m[flowKey(i, false)] = v
				m[flowKey(i, true)] = v
				i++
			}
		})
		dropLarge()
		b.Run("syncmap-"+sz.name, func(b *testing.B) {
			var m sync.Map
			b.ReportAllocs()
			i := uint32(0)
			for b.Loop() {
				if i == uint32(n) {
					b.StopTimer()
					m.Clear()
					i = 0
					b.StartTimer()
				}
				v := mapVal{flowValue(i), 1}
				m.Store(flowKey(i, false), v)
				m.Store(flowKey(i, true), v)
				i++
			}
		})
		dropLarge()
	}
}

// BenchmarkChurn is the steady state of a busy director: n flows present, and each op removes the oldest
// and adds a new one (both keys of each).
func BenchmarkChurn(b *testing.B)         { benchChurn(b, false) }
func BenchmarkChurnParallel(b *testing.B) { benchChurn(b, true) }

func benchChurn(b *testing.B, parallel bool) {
	for _, sz := range benchSizes() {
		n := sz.n
		b.Run("xvs-"+sz.name, func(b *testing.B) {
			tab := newXVS(b, n)
			defer tab.unmap()
			// ring[j] is the flow in slot j of the window and its Ref; goroutine g owns slots j%2 == g.
			ring := make([]struct {
				id  uint32
				ref Ref
			}, n)
			for i := range uint32(n) {
				f, r := flowKey(i, false), flowKey(i, true)
				v := flowValue(i)
				var c Conn
				if err := tab.Insert(&f, &r, &v, protoTCP, fSYN, Input, 0, &c); err != nil {
					b.Fatal(err)
				}
				ring[i].id, ring[i].ref = i, c.Ref
			}
			op := func(j int, id uint32, c *Conn) error {
				if !tab.Delete(ring[j].ref) {
					b.Fatalf("delete flow %d failed", ring[j].id)
				}
				f, r := flowKey(id, false), flowKey(id, true)
				v := flowValue(id)
				err := tab.Insert(&f, &r, &v, protoTCP, fSYN, Input, 0, c)
				ring[j].id, ring[j].ref = id, c.Ref
				return err
			}
			b.ReportAllocs()
			if !parallel {
				var c Conn
				for k := 0; b.Loop(); k++ {
					if err := op(k%n, uint32(n+k), &c); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			parallel2(b, func(pb *testing.PB, g int, _ xorshift) {
				var c Conn
				for k := 0; pb.Next(); k++ {
					if err := op((g+2*k)%n, uint32(n+g+2*k), &c); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		dropLarge()
		b.Run("map-"+sz.name, func(b *testing.B) {
			m := make(map[Key]mapVal, 2*n)
			fillMap(m, n)
			ring := make([]uint32, n)
			for i := range ring {
				ring[i] = uint32(i)
			}
			var mu sync.Mutex
			op := func(j int, id uint32) {
				old := ring[j]
				v := mapVal{flowValue(id), 1}
				f, r := flowKey(id, false), flowKey(id, true)
				mu.Lock()
				delete(m, flowKey(old, false))
				delete(m, flowKey(old, true))
				m[f] = v
				m[r] = v
				mu.Unlock()
				ring[j] = id
			}
			b.ReportAllocs()
			if !parallel {
				for k := 0; b.Loop(); k++ {
					op(k%n, uint32(n+k))
				}
				return
			}
			parallel2(b, func(pb *testing.PB, g int, _ xorshift) {
				for k := 0; pb.Next(); k++ {
					op((g+2*k)%n, uint32(n+g+2*k))
				}
			})
		})
		dropLarge()
		b.Run("syncmap-"+sz.name, func(b *testing.B) {
			var m sync.Map
			fillSyncMap(&m, n)
			ring := make([]uint32, n)
			for i := range ring {
				ring[i] = uint32(i)
			}
			op := func(j int, id uint32) {
				old := ring[j]
				m.Delete(flowKey(old, false))
				m.Delete(flowKey(old, true))
				v := mapVal{flowValue(id), 1}
				m.Store(flowKey(id, false), v)
				m.Store(flowKey(id, true), v)
				ring[j] = id
			}
			b.ReportAllocs()
			if !parallel {
				for k := 0; b.Loop(); k++ {
					op(k%n, uint32(n+k))
				}
				return
			}
			parallel2(b, func(pb *testing.PB, g int, _ xorshift) {
				for k := 0; pb.Next(); k++ {
					op((g+2*k)%n, uint32(n+g+2*k))
				}
			})
		})
		dropLarge()
	}
}

// BenchmarkExpire removes expired flows: one op is one flow found expired and removed (xvs: by Sweep, in
// calls of up to 256 slots; map and sync.Map: by ranging over them and deleting both keys as they come).
// When the structure is empty it is refilled with the timer stopped.
func BenchmarkExpire(b *testing.B) {
	const now = math.MaxInt64
	for _, sz := range benchSizes() {
		n := sz.n
		var tab *Table // made once: b.N grows over several calls
		b.Run("xvs-"+sz.name, func(b *testing.B) {
			if tab == nil {
				tab = newXVS(b, n)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for removed := 0; removed < b.N; {
				if tab.Len() == 0 {
					b.StopTimer()
					fillXVS(b, tab, 0, n)
					b.StartTimer()
				}
				removed += tab.Sweep(now, min(256, b.N-removed))
			}
		})
		if tab != nil {
			tab.unmap()
		}
		dropLarge()
		b.Run("map-"+sz.name, func(b *testing.B) {
			m := make(map[Key]mapVal, 2*n)
			b.ReportAllocs()
			b.ResetTimer()
			for removed := 0; removed < b.N; {
				if len(m) == 0 {
					b.StopTimer()
					fillMap(m, n)
					b.StartTimer()
				}
				for k, v := range m {
					// Only the forward key's pass counts, so that an op is a flow, as for the others.
					if v.st <= now && k.DstPort == 80 {
						delete(m, k)
						delete(m, flowRevOf(k))
						if removed++; removed == b.N {
							break
						}
					}
				}
			}
		})
		dropLarge()
		b.Run("syncmap-"+sz.name, func(b *testing.B) {
			var m sync.Map
			b.ReportAllocs()
			left := 0
			for removed := 0; removed < b.N; {
				if left == 0 {
					b.StopTimer()
					fillSyncMap(&m, n)
					left = n
					b.StartTimer()
				}
				m.Range(func(k, v any) bool {
					if key := k.(Key); v.(mapVal).st <= now && key.DstPort == 80 {
						m.Delete(key)
						m.Delete(flowRevOf(key))
						removed++
						left--
					}
					return removed < b.N
				})
			}
		})
		dropLarge()
	}
}

// flowRevOf returns the reverse key of flowKey's forward key k.
func flowRevOf(k Key) Key {
	rip := [16]byte{10: 0xff, 11: 0xff, 12: 198, 13: 19, 14: 1}
	i := uint32(k.SrcAddr[13])<<20 | uint32(k.SrcAddr[14])<<12 | uint32(k.SrcAddr[15])<<4 | uint32(k.SrcPort-1024)
	rip[15] = byte(i)
	return Key{Proto: k.Proto, SrcAddr: rip, DstAddr: k.SrcAddr, SrcPort: 8080, DstPort: k.SrcPort}
}

// BenchmarkSweepLive is the cost of looking at one flow that has not expired: what expiry costs per op
// when nothing is due, the common case of a full table. xvs: Sweep in calls of 4096 slots; map and
// sync.Map: a range over the forward keys. Each structure is filled once, not for every b.N.
func BenchmarkSweepLive(b *testing.B) {
	for _, sz := range benchSizes() {
		n := sz.n
		var tab *Table
		b.Run("xvs-"+sz.name, func(b *testing.B) {
			if tab == nil {
				tab = newXVS(b, n)
				fillXVS(b, tab, 0, n)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for seen := 0; seen < b.N; {
				budget := min(4096, n, b.N-seen)
				if tab.Sweep(0, budget) != 0 {
					b.Fatal("a live flow expired")
				}
				seen += budget
			}
		})
		if tab != nil {
			tab.unmap()
		}
		dropLarge()
		var m map[Key]mapVal
		b.Run("map-"+sz.name, func(b *testing.B) {
			if m == nil {
				m = make(map[Key]mapVal, 2*n)
				fillMap(m, n)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for seen := 0; seen < b.N; {
				for k, v := range m {
					if k.DstPort != 80 {
						continue
					}
					if v.st == 0 {
						b.Fatal("a live flow expired")
					}
					if seen++; seen == b.N {
						break
					}
				}
			}
		})
		m = nil
		dropLarge()
		var sm *sync.Map
		b.Run("syncmap-"+sz.name, func(b *testing.B) {
			if sm == nil {
				sm = new(sync.Map)
				fillSyncMap(sm, n)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for seen := 0; seen < b.N; {
				sm.Range(func(k, v any) bool {
					if k.(Key).DstPort != 80 {
						return true
					}
					if v.(mapVal).st == 0 {
						b.Fatal("a live flow expired")
					}
					seen++
					return seen < b.N
				})
			}
		})
		sm = nil
		dropLarge()
	}
}
