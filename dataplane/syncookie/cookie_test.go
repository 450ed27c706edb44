package syncookie

import (
	"net/netip"
	"testing"
	"time"
)

func newJar(t testing.TB, secret []byte) *Jar {
	t.Helper()
	j, err := New(secret, 0)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

var (
	flow4 = Flow{Src: netip.MustParseAddr("198.51.100.7"), Dst: netip.MustParseAddr("203.0.113.10"), SrcPort: 40000, DstPort: 80, ISN: 0x12345678}
	flow6 = Flow{Src: netip.MustParseAddr("2001:db8::7"), Dst: netip.MustParseAddr("2001:db8:1::10"), SrcPort: 40000, DstPort: 443, ISN: 0xfffffffe}
)

func TestRoundTrip(t *testing.T) {
	j := newJar(t, nil)
	for _, tc := range []struct {
		name string
		flow Flow
		opts Options
		want Options
	}{
		{"v4 full", flow4, Options{MSS: 1460, WScale: 7, SACKPerm: true}, Options{MSS: 1460, WScale: 7, SACKPerm: true}},
		{"v4 rounded down", flow4, Options{MSS: 1400, WScale: 0}, Options{MSS: 1300, WScale: 0}},
		{"v4 jumbo", flow4, Options{MSS: 8960, WScale: 14, SACKPerm: true}, Options{MSS: 1460, WScale: 14, SACKPerm: true}},
		{"v4 no options", flow4, Options{WScale: -1}, Options{MSS: 536, WScale: -1}},
		{"v4 scale above 14", flow4, Options{MSS: 1460, WScale: 15}, Options{MSS: 1460, WScale: 14}},
		{"v6", flow6, Options{MSS: 1440, WScale: 9, SACKPerm: true}, Options{MSS: 1440, WScale: 9, SACKPerm: true}},
		{"v6 small", flow6, Options{MSS: 1240, WScale: -1}, Options{MSS: 1220, WScale: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := int64(5 * time.Second)
			c, kept := j.Make(&tc.flow, tc.opts, now)
			if kept != tc.want {
				t.Fatalf("Make kept %+v, want %+v", kept, tc.want)
			}
			got, ok := j.Check(&tc.flow, c, now+int64(time.Second))
			if !ok || got != tc.want {
				t.Fatalf("Check(%#x) = %+v %v, want %+v true", c, got, ok, tc.want)
			}
		})
	}
}

// A cookie is good in its minute and the next, never later.
func TestExpiry(t *testing.T) {
	j := newJar(t, nil)
	// Start at the beginning of a wall-clock minute.
	start := int64(time.Minute) - (j.wallBase % int64(time.Minute))
	c, _ := j.Make(&flow4, Options{MSS: 1460, WScale: 7}, start)
	for _, tc := range []struct {
		after time.Duration
		ok    bool
	}{{0, true}, {59 * time.Second, true}, {60 * time.Second, true}, {119 * time.Second, true}, {120 * time.Second, false}, {180 * time.Second, false}, {10 * time.Minute, false}} {
		if _, ok := j.Check(&flow4, c, start+int64(tc.after)); ok != tc.ok {
			t.Errorf("check %v after: %v, want %v", tc.after, ok, tc.ok)
		}
	}
}

// Any change to the cookie, the 4-tuple or the client's ISN fails the check.
func TestTampering(t *testing.T) {
	j := newJar(t, nil)
	now := int64(time.Second)
	c, _ := j.Make(&flow4, Options{MSS: 1460, WScale: 7, SACKPerm: true}, now)
	for bit := range 32 {
		if _, ok := j.Check(&flow4, c^1<<bit, now); ok {
			t.Errorf("cookie with bit %d flipped passes", bit)
		}
	}
	for name, f := range map[string]Flow{
		"source":      {Src: netip.MustParseAddr("198.51.100.8"), Dst: flow4.Dst, SrcPort: flow4.SrcPort, DstPort: flow4.DstPort, ISN: flow4.ISN},
		"destination": {Src: flow4.Src, Dst: netip.MustParseAddr("203.0.113.11"), SrcPort: flow4.SrcPort, DstPort: flow4.DstPort, ISN: flow4.ISN},
		"source port": {Src: flow4.Src, Dst: flow4.Dst, SrcPort: flow4.SrcPort + 1, DstPort: flow4.DstPort, ISN: flow4.ISN},
		"dest port":   {Src: flow4.Src, Dst: flow4.Dst, SrcPort: flow4.SrcPort, DstPort: 81, ISN: flow4.ISN},
		"isn":         {Src: flow4.Src, Dst: flow4.Dst, SrcPort: flow4.SrcPort, DstPort: flow4.DstPort, ISN: flow4.ISN + 1},
	} {
		if _, ok := j.Check(&f, c, now); ok {
			t.Errorf("cookie passes for another %s", name)
		}
	}
	// Another director's secret: not accepted.
	if _, ok := newJar(t, nil).Check(&flow4, c, now); ok {
		t.Error("cookie passes under another random secret")
	}
}

// Directors that share the secret accept each other's cookies.
func TestSharedSecret(t *testing.T) {
	secret := make([]byte, SecretLen)
	for i := range secret {
		secret[i] = byte(i * 7)
	}
	a, b := newJar(t, secret), newJar(t, secret)
	c, _ := a.Make(&flow6, Options{MSS: 1440, WScale: 7}, 0)
	if _, ok := b.Check(&flow6, c, 0); !ok {
		t.Fatal("a director sharing the secret rejects the cookie")
	}
	if _, err := New(secret[:16], 0); err == nil {
		t.Fatal("a 16-byte secret is accepted")
	}
}

// Forged ACKs pass about one time in 2^24.
func TestForgeryRate(t *testing.T) {
	j := newJar(t, nil)
	const tries = 1 << 20
	pass := 0
	f := flow4
	for i := range tries {
		f.SrcPort = uint16(i)
		f.ISN = uint32(i) * 2654435761
		if _, ok := j.Check(&f, uint32(i)*0x9e3779b9, int64(time.Second)); ok {
			pass++
		}
	}
	if pass > 4 { // expect 1/16 here
		t.Fatalf("%d of %d random cookies pass", pass, tries)
	}
}

func TestZeroAllocs(t *testing.T) {
	j := newJar(t, nil)
	now := int64(time.Second)
	j.Prime(now)
	var c uint32
	allocs := testing.AllocsPerRun(1000, func() {
		c, _ = j.Make(&flow6, Options{MSS: 1440, WScale: 7, SACKPerm: true}, now)
		if _, ok := j.Check(&flow6, c, now); !ok {
			t.Fatal("check failed")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per make and check, want 0", allocs)
	}
}

// BenchmarkCookie measures Make and Check (sub-benchmarks make/v4 ...
// check/v6): the per-SYN and per-ACK cost of the SYN proxy's cookies.
func BenchmarkCookie(b *testing.B) {
	opts := Options{MSS: 1460, WScale: 7, SACKPerm: true}
	for _, tc := range []struct {
		name string
		flow Flow
	}{{"v4", flow4}, {"v6", flow6}} {
		j := newJar(b, nil)
		j.Prime(0)
		b.Run("make/"+tc.name, func(b *testing.B) {
			f := tc.flow
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				f.ISN = uint32(i)
				j.Make(&f, opts, 0)
			}
		})
		b.Run("check/"+tc.name, func(b *testing.B) {
			f := tc.flow
			c, _ := j.Make(&f, opts, 0)
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := j.Check(&f, c, 0); !ok {
					b.Fatal("check failed")
				}
			}
		})
	}
}
