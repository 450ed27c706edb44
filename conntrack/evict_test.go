package conntrack

import (
	"errors"
	"testing"
	"time"
)

// establish inserts flow id as a NAT entry and completes its handshake.
func establish(tb testing.TB, tab *Table, id int, now int64) Ref {
	tb.Helper()
	f, r := testKey(id), testRevKey(id)
	v := testValue(id)
	var c Conn
	if err := tab.Insert(&f, &r, &v, protoTCP, fSYN, Input, now, &c); err != nil {
		tb.Fatalf("insert flow %d: %v", id, err)
	}
	if st := tab.Touch(c.Ref, fACK, Input, now); st != Established {
		tb.Fatalf("flow %d: %v after ACK", id, st)
	}
	return c.Ref
}

func TestFullTable(t *testing.T) {
	const (
		sec      = int64(time.Second)
		capacity = 64
	)
	udp := func(i int) Key {
		k := testKey(i)
		k.Proto = protoUDP
		return k
	}
	tests := []struct {
		policy FullPolicy
		// whether the 65th insert gets in, into a table of UDP flows and into one of ESTABLISHED flows
		// (before and after they expire)
		udpIn, estIn, expiredIn bool
	}{
		{Refuse, false, false, false},
		{EvictOldestIdle, true, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			tab := newTestTable(t, Config{Capacity: capacity, Shards: 4, MaxDests: 8, FullPolicy: tt.policy})
			for i := range capacity {
				k := udp(i)
				if err := tab.Insert(&k, nil, &Value{Dest: 1}, protoUDP, 0, Input, int64(i)*sec, nil); err != nil {
					t.Fatal(err)
				}
			}
			k := udp(capacity)
			err := tab.Insert(&k, nil, &Value{Dest: 2}, protoUDP, 0, Input, 100*sec, nil)
			if (err == nil) != tt.udpIn || (err != nil && !errors.Is(err, ErrFull)) {
				t.Fatalf("insert into a table of UDP flows: %v", err)
			}
			st := tab.Stats()
			if tt.udpIn && (st.Evicted != 1 || st.FullDrops != 0) || !tt.udpIn && (st.Evicted != 0 || st.FullDrops != 1) {
				t.Errorf("stats %+v", st)
			}
			if tab.Len() != capacity {
				t.Errorf("Len %d", tab.Len())
			}
			checkIndex(t, tab)

			// Now a table of ESTABLISHED connections only: none is evicted while it is within its timeout.
			if n := sweepAll(tab, 1e6*sec, capacity); n != capacity || tab.Len() != 0 {
				t.Fatalf("swept %d, Len %d after expiring everything", n, tab.Len())
			}
			refs := make([]Ref, capacity)
			for i := range capacity {
				refs[i] = establish(t, tab, 1000+i, 0)
			}
			for i, now := range []int64{0, 899 * sec} {
				f := testKey(5000 + i)
				if err := tab.Insert(&f, nil, &Value{}, protoTCP, fSYN, Input, now, nil); !errors.Is(err, ErrFull) {
					t.Fatalf("SYN at %v into a table of ESTABLISHED flows: %v", time.Duration(now), err)
				}
			}
			// Once they have expired (not yet swept), they may go.
			f := testKey(6000)
			err = tab.Insert(&f, nil, &Value{}, protoTCP, fSYN, Input, 900*sec, nil)
			if (err == nil) != tt.expiredIn {
				t.Fatalf("SYN into a table of expired ESTABLISHED flows: %v", err)
			}
			gone := 0
			for i, r := range refs {
				if tab.Touch(r, fACK, Input, 900*sec) == None {
					gone++
					k := testKey(1000 + i)
					var c Conn
					if tab.Lookup(&k, &c) {
						t.Errorf("evicted flow %d still found", i)
					}
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tt.expiredIn]; gone != want {
				t.Errorf("%d ESTABLISHED flows gone, want %d", gone, want)
			}
			checkIndex(t, tab)
		})
	}
}

// TestSYNFlood fills half a table with ESTABLISHED connections and floods it with SYNs from new clients.
// Under EvictOldestIdle the flood evicts its own embryonic entries and no ESTABLISHED one, and a new
// legitimate client still gets in; under Refuse the flood is dropped once the table is full, and so is the
// new client.
func TestSYNFlood(t *testing.T) {
	const (
		capacity    = 4096
		established = capacity / 2
		flood       = 40_000
		ms          = int64(time.Millisecond)
	)
	for _, policy := range []FullPolicy{Refuse, EvictOldestIdle} {
		t.Run(policy.String(), func(t *testing.T) {
			tab := newTestTable(t, Config{Capacity: capacity, FullPolicy: policy})
			refs := make([]Ref, established)
			for i := range refs {
				refs[i] = establish(t, tab, i, 0)
			}
			var dropped int
			now := int64(0)
			for i := range flood {
				now = int64(i) * ms // 40 s: the flood's SYN_RECV entries (60 s) do not expire meanwhile
				f, r := testKey(100_000+i), testRevKey(100_000+i)
				switch err := tab.Insert(&f, &r, &Value{Dest: 3}, protoTCP, fSYN, Input, now, nil); {
				case errors.Is(err, ErrFull):
					dropped++
				case err != nil:
					t.Fatal(err)
				}
			}
			for i, r := range refs {
				k := testRevKey(i)
				var c Conn
				if !tab.Lookup(&k, &c) || c.Ref != r || c.State != Established || c.Value != testValue(i) {
					t.Fatalf("ESTABLISHED flow %d lost in the flood: %+v", i, c)
				}
			}
			if tab.Len() != capacity {
				t.Errorf("Len %d, want a full table", tab.Len())
			}
			st := tab.Stats()
			t.Logf("%v: %d of %d flood SYNs dropped; %+v", policy, dropped, flood, st)
			if st.FullDrops != uint64(dropped) || st.Inserts+st.FullDrops != established+flood {
				t.Errorf("stats %+v, %d drops seen", st, dropped)
			}
			var act, inact int64
			for d := range uint32(8) {
				a, i := tab.DestConns(d)
				act, inact = act+a, inact+i
			}
			if act != established || inact != capacity-established {
				t.Errorf("dest counters: %d active, %d inactive", act, inact)
			}
			legit := testKey(50_000)
			err := tab.Insert(&legit, nil, &Value{}, protoTCP, fSYN, Input, now, nil)
			switch policy {
			case Refuse:
				if dropped != flood-(capacity-established) || st.Evicted != 0 || !errors.Is(err, ErrFull) {
					t.Errorf("refuse: %d dropped, %d evicted, new client: %v", dropped, st.Evicted, err)
				}
			case EvictOldestIdle:
				// All 16 samples are ESTABLISHED for one insert in 65536.
				if dropped > flood/1000 || st.Evicted != uint64(flood-(capacity-established)-dropped) || err != nil {
					t.Errorf("evict: %d dropped, %d evicted, new client: %v", dropped, st.Evicted, err)
				}
			}
			checkIndex(t, tab)
		})
	}
}

func TestFullPolicyString(t *testing.T) {
	for p, want := range map[FullPolicy]string{Refuse: "refuse", EvictOldestIdle: "evict-oldest-idle", 7: "FullPolicy(7)"} {
		if got := p.String(); got != want {
			t.Errorf("%d: %q, want %q", uint8(p), got, want)
		}
	}
}
