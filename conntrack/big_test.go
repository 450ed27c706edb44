package conntrack

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test10M fills a table with ten million NAT flows (forward and reverse keys) and reports what the issue
// asks of it: the memory the process uses (at most 1.5 GiB), the garbage collector's pauses with the table
// full, and lookups per second on the full table from one and two goroutines. It takes tens of seconds
// and 1.5 GiB, so it runs only when asked:
//
//	XVS_CT_10M=1 go test -run Test10M -v ./conntrack/
func Test10M(t *testing.T) {
	if os.Getenv("XVS_CT_10M") != "1" || testing.Short() {
		t.Skip("set XVS_CT_10M=1 (and leave out -short) to fill a table with ten million flows")
	}
	const (
		n        = 10_000_000
		maxBytes = 3 << 29 // 1.5 GiB
	)
	runtime.GC()
	before := memSnapshot(t)

	start := time.Now()
	tab, err := New(Config{Capacity: n})
	if err != nil {
		t.Fatal(err)
	}
	defer tab.unmap()
	made := time.Since(start)
	start = time.Now()
	fillXVS(t, tab, 0, n)
	filled := time.Since(start)
	if tab.Len() != n {
		t.Fatalf("Len %d after filling", tab.Len())
	}
	// A full table refuses more.
	f, r := flowKey(n, false), flowKey(n, true)
	if err := tab.Insert(&f, &r, &Value{}, protoTCP, fSYN, Input, 0, nil); err != ErrFull {
		t.Fatalf("insert into the full table: %v", err)
	}
	runtime.GC()
	after := memSnapshot(t)
	tableBytes := len(tab.mem[0]) + len(tab.mem[1])
	t.Logf("New: %v; filled %d flows (%d keys) in %v: %.2f M inserts/s",
		made.Round(time.Millisecond), n, 2*n, filled.Round(time.Millisecond), n/filled.Seconds()/1e6)
	t.Logf("table: %d MiB mapped outside the Go heap (%d B per flow: entries %d MiB, index %d MiB)",
		tableBytes>>20, tableBytes/n, len(tab.mem[0])>>20, len(tab.mem[1])>>20)
	t.Logf("process: VmRSS %d MiB (%d MiB before New), of it AnonHugePages %d MiB; VmHWM %d MiB",
		after.rss>>20, before.rss>>20, after.hugePages>>20, after.hwm>>20)
	t.Logf("Go heap: HeapAlloc %.1f MiB, HeapSys %.1f MiB, Sys %.1f MiB (before New: %.1f, %.1f, %.1f)",
		mib(after.ms.HeapAlloc), mib(after.ms.HeapSys), mib(after.ms.Sys),
		mib(before.ms.HeapAlloc), mib(before.ms.HeapSys), mib(before.ms.Sys))
	ovf, away, longest := probeStats(tab)
	t.Logf("index: %.1f%% of buckets overflowed, %.1f%% of keys not in their home bucket, longest probe %d buckets",
		100*ovf, 100*away, longest)
	if after.rss > maxBytes || after.hwm > maxBytes {
		t.Errorf("the process takes %d MiB (peak %d MiB) with ten million flows, more than 1.5 GiB", after.rss>>20, after.hwm>>20)
	}

	// GC with the table full: the pause (stop-the-world time per cycle) and the cycle's wall time.
	var gs debug.GCStats
	debug.ReadGCStats(&gs)
	cycles := gs.NumGC
	var walls []time.Duration
	for range 5 {
		start := time.Now()
		runtime.GC()
		walls = append(walls, time.Since(start))
	}
	debug.ReadGCStats(&gs)
	if gs.NumGC-cycles < 5 {
		t.Fatalf("%d GC cycles ran, want 5", gs.NumGC-cycles)
	}
	pauses := gs.Pause[:5] // most recent first
	var maxPause time.Duration
	for _, p := range pauses {
		maxPause = max(maxPause, p)
	}
	t.Logf("runtime.GC() x5 with the table full: pauses (STW) %v, max %v; whole cycles %v", pauses, maxPause, walls)

	// Lookups on the full table: half hits, half misses, random flows and directions.
	for _, g := range []int{1, 2} {
		rate, hits, total := lookupRate(t, tab, n, g, time.Second)
		t.Logf("lookups, %d goroutine(s): %.2f M/s (%.0f ns each per goroutine), %d hits of %d",
			g, rate/1e6, 1e9*float64(g)/rate, hits, total)
	}

	// Sweep over a full table in which nothing is due: its cost per call is its budget's.
	const budget = 4096
	start = time.Now()
	calls := 0
	for ; time.Since(start) < 200*time.Millisecond; calls++ {
		if tab.Sweep(0, budget) != 0 {
			t.Fatal("a live flow expired")
		}
	}
	per := time.Since(start) / time.Duration(calls)
	t.Logf("Sweep(budget %d) on the full table, nothing due: %v per call, %.1f ns per slot", budget, per,
		float64(per)/budget)
}

// lookupRate runs goroutines doing lookups for d, and returns how many they did per second, and in all,
// and how many hit.
func lookupRate(t *testing.T, tab *Table, n, goroutines int, d time.Duration) (perSecond float64, hits, total int64) {
	var wg sync.WaitGroup
	counts := make([][2]int64, goroutines)
	start := time.Now()
	stop := start.Add(d)
	for g := range goroutines {
		wg.Go(func() {
			r := xorshift(0x9e3779b97f4a7c15 * uint64(g+1))
			var c Conn
			var total, hit int64 // counted here: counts[0] and counts[1] share a cache line
			defer func() { counts[g] = [2]int64{total, hit} }()
			for time.Now().Before(stop) {
				for range 1024 {
					miss := r.next()&1 != 0
					off := 0
					if miss {
						off = n
					}
					k := r.flow(off, n)
					if tab.Lookup(&k, &c) == miss {
						t.Errorf("lookup %v: found %v", k, !miss)
						return
					}
					if !miss {
						hit++
					}
				}
				total += 1024
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, c := range counts {
		total += c[0]
		hits += c[1]
	}
	return float64(total) / elapsed.Seconds(), hits, total
}

// probeStats returns the share of buckets with keys overflowed past them, the share of keys not in their
// home bucket, and the most buckets a probe for a present key reads.
func probeStats(tab *Table) (overflowed, away float64, longest int) {
	var ovf, keys, notHome int
	for b := range uint64(len(tab.buckets)) {
		if tab.buckets[b][0].Load()>>slotOvfShift != 0 {
			ovf++
		}
		for i := range bucketSlots {
			w := tab.buckets[b][i].Load()
			if uint32(w) == 0 {
				continue
			}
			keys++
			kw := loadKey(tab.nodeKey(uint32(w) - 1))
			start, home := tab.home(kw.hash(tab.seed))
			if home != b {
				notHome++
			}
			longest = max(longest, int((b-start+tab.perShard-(home-start))%tab.perShard)+1)
		}
	}
	return float64(ovf) / float64(len(tab.buckets)), float64(notHome) / float64(keys), longest
}

type memStats struct {
	ms                  runtime.MemStats
	rss, hwm, hugePages int
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func memSnapshot(t *testing.T) memStats {
	t.Helper()
	var s memStats
	runtime.ReadMemStats(&s.ms)
	status := procFields(t, "/proc/self/status")
	s.rss, s.hwm = status["VmRSS"], status["VmHWM"]
	s.hugePages = procFields(t, "/proc/self/smaps_rollup")["AnonHugePages"]
	return s
}

// procFields reads the "Name: value kB" lines of a /proc file, in bytes.
func procFields(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("memory figures: %v", err)
	}
	defer f.Close()
	m := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(rest)
		if !ok || len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		v, err := strconv.Atoi(fields[0])
		if err != nil {
			t.Fatal(fmt.Errorf("%s: %s: %w", path, name, err))
		}
		m[name] = v << 10
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return m
}

// TestMemoryReleased drops tables without unmapping them: the cleanup New registers must give their
// memory back once they are collected.
func TestMemoryReleased(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the table maps its own memory only on Linux")
	}
	const tables = 16 // of 5 MiB each
	start := memSnapshot(t).rss
	for range tables {
		tab, err := New(Config{Capacity: 1 << 15})
		if err != nil {
			t.Fatal(err)
		}
		if tab.Capacity() != 1<<15 {
			t.Fatal("wrong capacity")
		}
	}
	var grew int
	for range 50 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // cleanups run on their own goroutine
		if grew = memSnapshot(t).rss - start; grew < tables*5<<20/2 {
			return
		}
	}
	t.Errorf("RSS grew by %d MiB after %d tables of 5 MiB were dropped", grew>>20, tables)
}
