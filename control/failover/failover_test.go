package failover

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"
)

func waitState(t *testing.T, p *Pair, want State, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for p.State() != want {
		if time.Since(start) > within {
			t.Fatalf("state %v after %v, want %v", p.State(), within, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func TestPairElectsAndFailsOver(t *testing.T) {
	key := []byte("0123456789abcdef0123")
	a := netip.MustParseAddrPort("127.0.0.1:47311")
	b := netip.MustParseAddrPort("127.0.0.1:47312")
	ctx := context.Background()
	hi, err := Start(ctx, Config{Listen: a, Peer: b, Priority: 200, Interval: 50 * time.Millisecond, Key: key}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan State, 4)
	lo, err := Start(ctx, Config{Listen: b, Peer: a, Priority: 100, Interval: 50 * time.Millisecond, Key: key}, zap.NewNop(), func(s State) { changes <- s })
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close()
	waitState(t, hi, Master, time.Second)
	time.Sleep(300 * time.Millisecond)
	if lo.State() != Backup {
		t.Fatal("the lower priority director became master beside a live higher one")
	}
	hi.Close()
	took := waitState(t, lo, Master, time.Second)
	if took > 400*time.Millisecond {
		t.Errorf("takeover after %v, want within about 3 intervals (150ms)", took)
	}
	if s := <-changes; s != Master {
		t.Errorf("onChange got %v", s)
	}
	// A peer with the wrong key is not heard: it stays master itself too,
	// and the other is not displaced.
	bad, err := Start(ctx, Config{Listen: a, Peer: b, Priority: 250, Interval: 50 * time.Millisecond, Key: []byte("another key of 16+ bytes")}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	time.Sleep(300 * time.Millisecond)
	if lo.State() != Master {
		t.Error("a heartbeat with the wrong key displaced the master")
	}
}
