package conntrack

import (
	"net/netip"
	"testing"
	"time"
)

// ipvsTimeouts are IPVS's default timeouts per state (ip_vs_proto_tcp.c tcp_timeouts, udp 300 s), written
// out independently of the package's table.
var ipvsTimeouts = map[State]time.Duration{
	Established: 900 * time.Second,
	SynSent:     120 * time.Second,
	SynRecv:     60 * time.Second,
	FinWait:     120 * time.Second,
	TimeWait:    120 * time.Second,
	Close:       10 * time.Second,
	CloseWait:   60 * time.Second,
	LastAck:     30 * time.Second,
	Listen:      120 * time.Second,
	SynAck:      120 * time.Second,
	Normal:      300 * time.Second,
	NormalICMP:  60 * time.Second,
}

const (
	fSYN    = FlagSYN
	fSYNACK = FlagSYN | FlagACK
	fACK    = FlagACK
	fFINACK = FlagFIN | FlagACK
	fRST    = FlagRST
	fRSTACK = FlagRST | FlagACK
	fPSHACK = FlagACK | 0x08
)

type pkt struct {
	flags uint8
	dir   PacketDir
	want  State
}

func TestStateMachine(t *testing.T) {
	tests := []struct {
		name  string
		proto uint8
		pkts  []pkt // the first one creates the entry
	}{
		{"nat client closes", protoTCP, []pkt{
			{fSYN, Input, SynRecv},
			{fSYNACK, Output, SynRecv},
			{fACK, Input, Established},
			{fPSHACK, Output, Established},
			{fFINACK, Input, CloseWait},
			{fACK, Output, CloseWait},
			{fFINACK, Output, TimeWait},
			{fACK, Input, TimeWait},
		}},
		{"nat server closes", protoTCP, []pkt{
			{fSYN, Input, SynRecv},
			{fSYNACK, Output, SynRecv},
			{fACK, Input, Established},
			{fFINACK, Output, FinWait},
			{fACK, Input, FinWait},
			{fFINACK, Input, TimeWait},
			{fACK, Output, TimeWait},
		}},
		{"nat client reset", protoTCP, []pkt{
			{fSYN, Input, SynRecv},
			{fSYNACK, Output, SynRecv},
			{fACK, Input, Established},
			{fRSTACK, Input, Close},
		}},
		{"nat server reset", protoTCP, []pkt{
			{fSYN, Input, SynRecv},
			{fSYNACK, Output, SynRecv},
			{fACK, Input, Established},
			{fRST, Output, Close},
		}},
		{"nat server refuses", protoTCP, []pkt{
			{fSYN, Input, SynRecv},
			{fRSTACK, Output, Close},
			{fSYN, Input, SynRecv}, // retransmitted SYN reopens it
		}},
		{"reset in syn_recv keeps it", protoTCP, []pkt{
			{fSYN, Input, SynRecv},
			{fRST, Input, SynRecv},
		}},
		{"rst beats syn and fin", protoTCP, []pkt{
			{fSYN, Input, SynRecv},
			{fACK, Input, Established},
			{FlagRST | FlagSYN | FlagFIN, Input, Close},
		}},
		{"syn beats fin", protoTCP, []pkt{
			{fSYN, Input, SynRecv},
			{fACK, Input, Established},
			{FlagSYN | FlagFIN, Input, Established},
		}},
		{"no flags closes", protoTCP, []pkt{
			{fSYN, Input, SynRecv},
			{fACK, Input, Established},
			{0x08, Input, Close},
		}},
		{"port reuse from time_wait", protoTCP, []pkt{
			{fSYN, Input, SynRecv},
			{fACK, Input, Established},
			{fFINACK, Output, FinWait},
			{fFINACK, Input, TimeWait},
			{fSYN, Input, SynRecv},
		}},
		{"picked up mid-stream", protoTCP, []pkt{
			{fACK, Input, Established},
		}},
		{"dr handshake and client close", protoTCP, []pkt{
			{fSYN, InputOnly, SynRecv},
			{fACK, Input, Established}, // Input on an entry created InputOnly uses the INPUT_ONLY rows
			{fPSHACK, Input, Established},
			{fFINACK, Input, FinWait}, // INPUT would give CLOSE_WAIT
			{fACK, Input, FinWait},
		}},
		{"dr reset", protoTCP, []pkt{
			{fSYN, InputOnly, SynRecv},
			{fACK, InputOnly, Established},
			{fRST, InputOnly, Close},
		}},
		{"dr fin before established", protoTCP, []pkt{
			{fSYN, InputOnly, SynRecv},
			{fFINACK, InputOnly, TimeWait},
		}},
		{"dr ack in close stays", protoTCP, []pkt{
			{fSYN, InputOnly, SynRecv},
			{fACK, InputOnly, Established},
			{fRST, InputOnly, Close},
			{fACK, InputOnly, Close},
		}},
		{"output clears input-only", protoTCP, []pkt{
			{fSYN, InputOnly, SynRecv},
			{fSYNACK, Output, SynRecv},
			{fACK, Input, Established},
			{fFINACK, Input, CloseWait}, // INPUT rows again: a reply was seen
		}},
		{"udp", protoUDP, []pkt{
			{0, Input, Normal},
			{0, Output, Normal},
			{fRST, Input, Normal}, // flags mean nothing to UDP
		}},
		{"icmp", protoICMP, []pkt{
			{0, Input, NormalICMP},
			{0, Input, NormalICMP},
		}},
		{"icmpv6", protoICMPv6, []pkt{
			{0, InputOnly, NormalICMP},
		}},
		{"other protocol", 132, []pkt{
			{0, Input, Normal},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var now int64
			tab := newTestTable(t, Config{Capacity: 4, Shards: 1, MaxDests: 2, Clock: func() int64 { return now }})
			fwd, rev := testKey(1), testRevKey(1)
			rev.Proto, fwd.Proto = tt.proto, tt.proto
			var c Conn
			for i, p := range tt.pkts {
				now = int64(i+1) * int64(time.Second)
				var got State
				if i == 0 {
					if err := tab.Insert(&fwd, &rev, &Value{Dest: 1}, tt.proto, p.flags, p.dir, now, &c); err != nil {
						t.Fatalf("insert: %v", err)
					}
					got = c.State
				} else {
					got = tab.Touch(c.Ref, p.flags, p.dir, now)
				}
				if got != p.want {
					t.Fatalf("packet %d (flags %#x %v): state %v, want %v", i, p.flags, p.dir, got, p.want)
				}
				var lc Conn
				if !tab.Lookup(&rev, &lc) || lc.State != p.want {
					t.Fatalf("packet %d: lookup state %v, want %v", i, lc.State, p.want)
				}
				n := 0
				tab.Range(func(c *Conn, expiresIn time.Duration) bool {
					n++
					if want := ipvsTimeouts[p.want]; expiresIn != want {
						t.Errorf("packet %d: %v expires in %v, want %v", i, p.want, expiresIn, want)
					}
					return true
				})
				if n != 1 {
					t.Fatalf("range saw %d entries, want 1", n)
				}
				active, inactive := tab.DestConns(1)
				wantActive := int64(0)
				if p.want == Established {
					wantActive = 1
				}
				if active != wantActive || inactive != 1-wantActive {
					t.Fatalf("packet %d: dest conns %d/%d, want %d/%d", i, active, inactive, wantActive, 1-wantActive)
				}
			}
		})
	}
}

// TestTCPStatesTable spot-checks cells of the port against IPVS's tcp_states, including states that a
// connection created by the table cannot reach.
func TestTCPStatesTable(t *testing.T) {
	tests := []struct {
		cur   State
		flags uint8
		dir   PacketDir
		want  State
	}{
		{None, fSYN, Input, SynRecv},
		{None, fSYN, Output, SynSent},
		{None, fFINACK, Output, TimeWait},
		{None, fACK, Output, Established},
		{None, fRST, InputOnly, Close},
		{SynSent, fACK, Input, SynSent},
		{SynSent, fSYN, Input, Established},
		{SynSent, fRST, Output, SynSent},
		{LastAck, fACK, Input, Close},
		{LastAck, fACK, Output, LastAck},
		{LastAck, fRST, Input, LastAck},
		{Listen, fACK, Output, Established},
		{Listen, fSYN, Input, SynRecv},
		{Listen, fRST, Input, Listen},
		{SynAck, fRST, Input, SynRecv},
		{SynAck, fRST, InputOnly, Close},
		{SynAck, fSYN, Output, SynRecv},
		{SynAck, fACK, InputOnly, Established},
		{TimeWait, fRST, Output, TimeWait},
		{CloseWait, fFINACK, Output, TimeWait},
		{CloseWait, fFINACK, InputOnly, CloseWait},
		{Established, fFINACK, InputOnly, FinWait},
	}
	for _, tt := range tests {
		got, _ := nextTCPState(tt.cur, false, tt.flags, tt.dir)
		if got != tt.want {
			t.Errorf("%v + %#x %v = %v, want %v", tt.cur, tt.flags, tt.dir, got, tt.want)
		}
	}
	// Every cell names a TCP state; None is never a next state, which Touch relies on to signal a stale Ref.
	for d := range tcpStates {
		for c := range tcpStates[d] {
			for s, n := range tcpStates[d][c] {
				if n == None || n >= numTCPStates {
					t.Errorf("tcpStates[%d][%d][%v] = %v", d, c, State(s), n)
				}
			}
		}
	}
}

func TestStateString(t *testing.T) {
	want := map[State]string{
		None: "NONE", Established: "ESTABLISHED", SynSent: "SYN_SENT", SynRecv: "SYN_RECV", FinWait: "FIN_WAIT",
		TimeWait: "TIME_WAIT", Close: "CLOSE", CloseWait: "CLOSE_WAIT", LastAck: "LAST_ACK", Listen: "LISTEN",
		SynAck: "SYNACK", Normal: "UDP", NormalICMP: "ICMP", State(99): "State(99)",
	}
	for s, w := range want {
		if s.String() != w {
			t.Errorf("State(%d).String() = %q, want %q", uint8(s), s.String(), w)
		}
	}
}

func TestDefaultTimeouts(t *testing.T) {
	tab := newTestTable(t, Config{Capacity: 1})
	for s, want := range ipvsTimeouts {
		if got := tab.StateTimeout(s); got != want {
			t.Errorf("timeout of %v = %v, want %v", s, got, want)
		}
	}
	if got, want := tab.Timeouts(), (Timeouts{900 * time.Second, 120 * time.Second, 300 * time.Second, 60 * time.Second}); got != want {
		t.Errorf("Timeouts() = %+v, want %+v", got, want)
	}
}

func TestSetTimeouts(t *testing.T) {
	var now int64
	tab := newTestTable(t, Config{Capacity: 4, Timeouts: Timeouts{UDP: 30 * time.Second}, Clock: func() int64 { return now }})
	if got := tab.Timeouts().UDP; got != 30*time.Second {
		t.Fatalf("config UDP timeout = %v, want 30s", got)
	}
	// ipvsadm --set 10 0 5: zero keeps tcpfin as it is.
	tab.SetTimeouts(Timeouts{TCP: 10 * time.Second, UDP: 5 * time.Second})
	if got, want := tab.Timeouts(), (Timeouts{10 * time.Second, 120 * time.Second, 5 * time.Second, 60 * time.Second}); got != want {
		t.Fatalf("Timeouts() = %+v, want %+v", got, want)
	}
	fwd := testKey(1)
	var c Conn
	if err := tab.Insert(&fwd, nil, &Value{}, protoTCP, fSYN, InputOnly, 0, &c); err != nil {
		t.Fatal(err)
	}
	tab.Touch(c.Ref, fACK, Input, 0)
	udp := testKey(2)
	udp.Proto = protoUDP
	if err := tab.Insert(&udp, nil, &Value{}, protoUDP, 0, Input, 0, nil); err != nil {
		t.Fatal(err)
	}
	if n := tab.Sweep(int64(5*time.Second)-1, 4); n != 0 {
		t.Fatalf("swept %d before any timeout", n)
	}
	if n := tab.Sweep(int64(5*time.Second), 4); n != 1 || tab.Lookup(&udp, &c) {
		t.Fatalf("swept %d at 5s, want the UDP entry", n)
	}
	if n := tab.Sweep(int64(10*time.Second), 4); n != 1 || tab.Len() != 0 {
		t.Fatalf("swept %d at 10s, want the established entry", n)
	}
}

func newTestTable(tb testing.TB, cfg Config) *Table {
	tb.Helper()
	tab, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return tab
}

var (
	testVIP = netip.MustParseAddr("198.19.0.1")
	testRIP = netip.MustParseAddr("198.19.1.1")
)

func testClient(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
}

// testKey is the forward key of flow i: client i -> VIP:80.
func testKey(i int) Key {
	return MakeKey(protoTCP, testClient(i), uint16(1024+i%60000), testVIP, 80)
}

// testRevKey is the reverse key of flow i as NAT sees replies: RIP:8080 -> client i.
func testRevKey(i int) Key {
	return MakeKey(protoTCP, testRIP, 8080, testClient(i), uint16(1024+i%60000))
}
