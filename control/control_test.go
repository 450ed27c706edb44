package control

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/control/connsync"
	"github.com/xvs-lb/xvs/dataplane"
	"github.com/xvs-lb/xvs/dataplane/xdpprog"
	"github.com/xvs-lb/xvs/dataplane/xsk"
	"github.com/xvs-lb/xvs/internal/xvs"
)

func parse(t *testing.T, lines ...string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

var director = []string{"[director]", `interfaces = ["eth0", "eth1"]`}

func TestEngineConfig(t *testing.T) {
	for _, tt := range []struct {
		name  string
		lines []string
		check func(dataplane.Config) bool
	}{
		{"defaults", nil, func(c dataplane.Config) bool {
			return c.XDPMode == xdpprog.ModeAuto && c.ZeroCopy == xsk.ZeroCopyAuto && c.FastPath == dataplane.FastPathAuto &&
				c.Conntrack.FullPolicy == conntrack.Refuse && c.Conntrack.Capacity == config.DefaultConnections &&
				c.Conntrack.Timeouts == conntrack.DefaultTimeouts() && !c.Socket.DisableNeedWakeup && !c.SyncEvents &&
				reflect.DeepEqual(c.Interfaces, []string{"eth0", "eth1"})
		}},
		{"modes", []string{`xdp_mode = "generic"`, `zerocopy = "off"`, `fast_path = "xdp"`, `when_full = "evict"`}, func(c dataplane.Config) bool {
			return c.XDPMode == xdpprog.ModeGeneric && c.ZeroCopy == xsk.ZeroCopyOff && c.FastPath == dataplane.FastPathXDP &&
				c.Conntrack.FullPolicy == conntrack.EvictOldestIdle
		}},
		{"other modes", []string{`xdp_mode = "driver"`, `zerocopy = "on"`, `fast_path = "off"`}, func(c dataplane.Config) bool {
			return c.XDPMode == xdpprog.ModeDriver && c.ZeroCopy == xsk.ZeroCopyOn && c.FastPath == dataplane.FastPathOff
		}},
		{"knobs", []string{"batch_size = 64", "ring_size = 512", "umem_frames = 4096", "idle_spins = -1", "need_wakeup = false",
			"cpus = [1, 0]", "sloppy_tcp = true", "verify_checksums = true", "connections = 4096"}, func(c dataplane.Config) bool {
			s := c.Socket
			return c.Batch == 64 && s.RxSize == 512 && s.TxSize == 512 && s.FillSize == 512 && s.CompSize == 512 &&
				c.UMEM.NumFrames == 4096 && c.IdleSpins == -1 && s.DisableNeedWakeup && reflect.DeepEqual(c.CPUs, []int{1, 0}) &&
				c.SloppyTCP && c.VerifyChecksums && c.Conntrack.Capacity == 4096
		}},
		{"timeouts and sync", []string{"[timeouts]", `tcp = "100s"`, "udp = 30", "[sync]", `listen = "198.18.0.2:8848"`,
			`peers = ["198.18.0.3:8848"]`, `key = "0123456789abcdef"`, "node_id = 1"}, func(c dataplane.Config) bool {
			ct := c.Conntrack.Timeouts
			return ct.TCP == 100*time.Second && ct.TCPFin == config.DefaultTCPFinTimeout && ct.UDP == 30*time.Second &&
				ct.ICMP == conntrack.DefaultTimeouts().ICMP && c.SyncEvents
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := EngineConfig(parse(t, append(append([]string(nil), director...), tt.lines...)...))
			if !tt.check(c) {
				t.Errorf("EngineConfig: %+v", c)
			}
		})
	}
}

func TestSpecs(t *testing.T) {
	cfg := parse(t, append(append([]string(nil), director...),
		"[[service]]", `vip = "198.18.0.100"`, "port = 80", `protocol = "tcp"`, `scheduler = "rr"`, `local_addresses = ["198.19.0.2"]`,
		`local_ports = "2000-2999"`, "toa = true", `fast_path = "off"`,
		"  [[service.real]]", `  address = "198.18.0.11"`, `  method = "fullnat"`, "  port = 8080", "  weight = 3", "  upper_threshold = 10",
		"  [[service.real]]", `  address = "198.18.0.12"`, `  method = "tun"`,
		"[[group]]", `name = "g"`, "mark = 7", `persistence = "60s"`, `netmask = "255.255.255.0"`,
		`match = [ { vip = "198.18.0.200", ports = "1000-2000", protocol = "udp" } ]`,
		"  [[group.real]]", `  address = "198.18.0.21"`, `  method = "nat"`)...)
	want := []dataplane.ServiceSpec{
		{VIP: netip.MustParseAddr("198.18.0.100"), Port: 80, Proto: 6, Scheduler: "rr",
			LocalAddrs: []netip.Addr{netip.MustParseAddr("198.19.0.2")}, TOA: true, LocalPortMin: 2000, LocalPortMax: 2999, NoFastPath: true,
			Reals: []dataplane.RealSpec{
				{Addr: netip.MustParseAddr("198.18.0.11"), Port: 8080, Weight: 3, Method: dataplane.MethodFullNAT, UpperThreshold: 10},
				{Addr: netip.MustParseAddr("198.18.0.12"), Port: 80, Weight: 1, Method: dataplane.MethodTUN},
			}},
		{Name: "g", VIP: netip.MustParseAddr("198.18.0.200"), Mark: 7, Scheduler: "wlc", Persistence: time.Minute, PersistPrefix: 24,
			Matches: []dataplane.Match{{VIP: netip.MustParseAddr("198.18.0.200"), FromPort: 1000, ToPort: 2000, Proto: 17}},
			Reals:   []dataplane.RealSpec{{Addr: netip.MustParseAddr("198.18.0.21"), Weight: 1, Method: dataplane.MethodNAT}}},
	}
	if got := Specs(cfg); !reflect.DeepEqual(got, want) {
		t.Errorf("Specs:\n%+v\nwant\n%+v", got, want)
	}
}

// TestSpecsHealth: a real server its checks took out runs at weight 0;
// the configuration keeps its weight.
func TestSpecsHealth(t *testing.T) {
	cfg := parse(t, append(append([]string(nil), director...),
		"[[service]]", `vip = "198.18.0.100"`, "port = 80", `protocol = "tcp"`,
		"  [[service.real]]", `  address = "198.18.0.11"`, "  weight = 5",
		"  [[service.real]]", `  address = "198.18.0.12"`, "  weight = 5")...)
	d := &Director{health: &healthState{down: map[string]bool{
		healthKey(api.ServiceID{Protocol: "tcp", VIP: netip.MustParseAddr("198.18.0.100"), Port: 80}, netip.MustParseAddrPort("198.18.0.12:80")): true,
	}}}
	specs := d.specs(cfg)
	if w0, w1 := specs[0].Reals[0].Weight, specs[0].Reals[1].Weight; w0 != 5 || w1 != 0 {
		t.Errorf("weights %d, %d; want 5 and 0 (down)", w0, w1)
	}
	if cfg.Services[0].Reals[1].Weight != 5 {
		t.Error("specs changed the configuration")
	}
}

func TestRestartFree(t *testing.T) {
	cur := parse(t, director...).Director
	for _, tt := range []struct {
		line string
		free bool
	}{
		{"", true},
		{`fast_path = "off"`, true},
		{`fast_path = "xdp"`, true},
		{`xdp_mode = "generic"`, false},
		{`log_level = "debug"`, false},
		{"batch_size = 32", false},
		{"cpus = [1]", false},
		{`when_full = "evict"`, false},
	} {
		next := parse(t, append(append([]string(nil), director...), tt.line)...).Director
		if got := restartFree(cur, next); got != tt.free {
			t.Errorf("%q: restartFree = %v, want %v", tt.line, got, tt.free)
		}
	}
	other := parse(t, "[director]", `interfaces = ["eth1", "eth0"]`).Director
	if restartFree(cur, other) {
		t.Error("reordered interfaces need no restart")
	}
}

func TestServiceID(t *testing.T) {
	vip := netip.MustParseAddr("198.18.0.100")
	for _, tt := range []struct {
		s    dataplane.Service
		want api.ServiceID
		name string
	}{
		{dataplane.Service{VIP: vip, Port: 80, Proto: 6}, api.ServiceID{Protocol: "tcp", VIP: vip, Port: 80}, "TCP 198.18.0.100:80"},
		{dataplane.Service{VIP: vip, Port: 53, Proto: 17}, api.ServiceID{Protocol: "udp", VIP: vip, Port: 53}, "UDP 198.18.0.100:53"},
		// Not a protocol a service has: said as it is, never "tcp".
		{dataplane.Service{VIP: vip, Port: 1, Proto: 132}, api.ServiceID{Protocol: "proto(132)", VIP: vip, Port: 1}, "PROTO(132) 198.18.0.100:1"},
		{dataplane.Service{VIP: vip, Port: 80, Proto: 6, Mark: 3}, api.ServiceID{Mark: 3}, "FWM 3"},
	} {
		got := serviceID(&tt.s)
		if got != tt.want || got.String() != tt.name {
			t.Errorf("serviceID(%+v) = %+v (%s), want %+v (%s)", tt.s, got, got, tt.want, tt.name)
		}
	}
}

func TestTimeouts(t *testing.T) {
	got := timeouts(config.Timeouts{TCP: time.Second, TCPFin: 2 * time.Second, UDP: 3 * time.Second})
	want := conntrack.DefaultTimeouts()
	want.TCP, want.TCPFin, want.UDP = time.Second, 2*time.Second, 3*time.Second
	if got != want {
		t.Errorf("timeouts = %+v, want %+v", got, want)
	}
}

func TestEWMA(t *testing.T) {
	for _, tt := range []struct{ old, now, want float64 }{
		{0, 100, 25},
		{100, 100, 100},
		{100, 0, 75},
		{40, 80, 50},
	} {
		if got := ewma(tt.old, tt.now); got != tt.want {
			t.Errorf("ewma(%v, %v) = %v, want %v", tt.old, tt.now, got, tt.want)
		}
	}
}

func TestWire(t *testing.T) {
	sc := dataplane.SyncedConn{
		Proto: 6, Client: netip.MustParseAddrPort("203.0.113.5:40000"), Virtual: netip.MustParseAddrPort("198.18.0.100:80"),
		Real: netip.MustParseAddrPort("198.19.0.11:8080"), Local: netip.MustParseAddrPort("198.19.0.2:2001"),
		Method: dataplane.MethodFullNAT, State: conntrack.Established, InPort: 1, PeerMAC: [6]byte{2, 0, 0, 0, 0, 1},
	}
	w := toWire(sc, time.Minute)
	if w.Expires != time.Minute || w.Method != uint8(xvs.MethodFullNAT) {
		t.Errorf("toWire: %+v", w)
	}
	if back := fromWire(w); back != sc {
		t.Errorf("fromWire(toWire(c)) = %+v, want %+v", back, sc)
	}
	var zero connsync.Conn
	if got := fromWire(zero); got.Method != dataplane.MethodDR {
		t.Errorf("a zero wire method is %v, want dr", got.Method)
	}
}

func TestMetricsDescribe(t *testing.T) {
	m := newMetrics(nil)
	ch := make(chan *prometheus.Desc, 64)
	m.Describe(ch)
	close(ch)
	seen := map[string]bool{}
	for d := range ch {
		s := d.String()
		if seen[s] {
			t.Errorf("described twice: %s", s)
		}
		seen[s] = true
	}
	// Every Desc the collector holds, and nothing else.
	var fields int
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		if v.Field(i).Type() == reflect.TypeFor[*prometheus.Desc]() {
			fields++
		}
	}
	if len(seen) != fields {
		t.Errorf("%d metrics described, the collector holds %d", len(seen), fields)
	}
}

// TestMetricLabels: a service's and a real server's labels are one thing
// each, as node_exporter's IPVS metrics are.
func TestMetricLabels(t *testing.T) {
	web := api.ServiceID{Protocol: "tcp", VIP: netip.MustParseAddr("2001:db8::100"), Port: 443}
	if got, want := realLabels(web, "2001:db8::11", 8443), []string{"2001:db8::100", "443", "tcp", "", "2001:db8::11", "8443"}; !reflect.DeepEqual(got, want) {
		t.Errorf("realLabels = %q, want %q", got, want)
	}
	if got, want := serviceLabels(api.ServiceID{Mark: 7}), []string{"", "", "", "7"}; !reflect.DeepEqual(got, want) {
		t.Errorf("a group's serviceLabels = %q, want %q", got, want)
	}
	if len(serviceLabels(web)) != len(serviceLabelNames) || len(realLabels(web, "x", 1)) != len(realLabelNames) {
		t.Error("label values and names differ in number")
	}
}
