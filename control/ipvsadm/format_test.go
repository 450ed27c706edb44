package ipvsadm

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/internal/version"
)

var (
	ip = netip.MustParseAddr
	ap = netip.MustParseAddrPort
)

func tcp(vip string, port uint16) api.ServiceID {
	return api.ServiceID{Protocol: "tcp", VIP: ip(vip), Port: port}
}

func real(addr string, port uint16, method string, weight int) api.RealState {
	return api.RealState{Real: api.Real{Addr: ip(addr), Port: port, Method: method}, Weight: weight}
}

// fixture is a table in no particular order: the layouts sort it. The
// goldens in testdata were printed from the same data with the printf
// formats of ipvsadm.c (print_title, print_service_entry, print_largenum,
// list_conn, list_timeout), so they are ipvsadm's layouts to the byte.
func fixture() *api.Response {
	r11 := real("198.18.0.11", 80, "dr", 2)
	r11.ActiveConn, r11.InActConn = 3, 10
	r11.Stats = api.Counters{Conns: 100, InPkts: 2000, OutPkts: 1999, InBytes: 200_000, OutBytes: 50_000_000_000_000}
	r11.Rates = api.Rates{CPS: 1, InPPS: 2.2, OutPPS: 2.5, InBPS: 99_999_999, OutBPS: 100_000_000}
	r13 := real("198.18.0.13", 80, "dr", 0)
	r13.ActiveConn, r13.InActConn, r13.Draining = 1, 4, true
	r13.Stats = api.Counters{Conns: 7, InPkts: 8, OutPkts: 9, InBytes: 10, OutBytes: 11}
	web := api.ServiceState{
		Service: api.Service{ServiceID: tcp("198.18.0.100", 80), Scheduler: "rr", Name: "web"},
		Reals:   []api.RealState{real("198.18.0.12", 80, "dr", 1), r13, r11},
		Stats:   api.Counters{Conns: 123, InPkts: 123_456_789, OutPkts: 99_999_999, InBytes: 5_000_000_000, OutBytes: 123_456_789_012_345},
		Rates:   api.Rates{CPS: 12.4, InPPS: 1500.6, OutPPS: 1499.4, InBPS: 150_000_000, OutBPS: 3_000_000_000},
	}
	dns := api.ServiceState{
		Service: api.Service{ServiceID: api.ServiceID{Protocol: "udp", VIP: ip("198.18.0.100"), Port: 53},
			Scheduler: "wlc", Persistence: 600 * time.Second, PersistPrefix: 24},
		Reals: []api.RealState{real("198.18.0.21", 53, "nat", 1)},
	}
	dns.Reals[0].InActConn = 5
	v6 := api.ServiceState{
		Service: api.Service{ServiceID: tcp("2001:db8::100", 443), Scheduler: "wrr", Persistence: time.Minute, PersistPrefix: 64},
		Reals:   []api.RealState{real("2001:db8::11", 443, "tun", 65535)},
		Stats:   api.Counters{Conns: 1, InPkts: 2, OutPkts: 3, InBytes: 4, OutBytes: 5},
	}
	v6.Reals[0].ActiveConn = 2
	v6.Reals[0].Stats = v6.Stats
	r21 := real("198.18.0.21", 8080, "nat", 5)
	r21.ActiveConn, r21.InActConn, r21.UpperThreshold, r21.LowerThreshold, r21.PersistConn = 1, 2, 100, 50, 7
	group := api.ServiceState{
		Service: api.Service{ServiceID: api.ServiceID{Mark: 1}, Scheduler: "sh", Flags: []string{"sh-port", "sh-fallback"},
			Persistence: 300 * time.Second,
			Matches:     []api.Match{{Protocol: "tcp", VIP: ip("198.18.0.200"), FromPort: 1000, ToPort: 2000}}},
		Reals: []api.RealState{real("198.18.0.22", 0, "dr", 0), r21},
	}
	return &api.Response{
		Capacity: 4096,
		Services: []api.ServiceState{group, v6, dns, web},
		Conns: []api.Conn{
			{Protocol: "tcp", Client: ap("203.0.113.5:40000"), Virtual: ap("198.18.0.100:80"), Real: ap("198.18.0.11:80"),
				State: "ESTABLISHED", ExpiresIn: 899*time.Second + 999*time.Millisecond},
			{Protocol: "tcp", Client: ap("203.0.113.250:65535"), Virtual: ap("198.18.0.100:80"), Real: ap("198.18.0.12:80"),
				State: "FIN_WAIT", ExpiresIn: 100 * time.Minute},
			{Protocol: "udp", Client: ap("[2001:db8::5]:5353"), Virtual: ap("[2001:db8::100]:53"), Real: ap("[2001:db8::11]:53"),
				State: "UDP", ExpiresIn: -time.Second},
			// Persistence templates, as IPVS lists them: a service's, and
			// a group's (protocol IP, its mark as the virtual address).
			{Protocol: "udp", Client: ap("203.0.113.0:0"), Virtual: ap("198.18.0.100:53"), Real: ap("198.18.0.21:53"),
				State: "NONE", ExpiresIn: 599 * time.Second, Template: true},
			{Protocol: "ip", Client: ap("203.0.113.5:0"), Virtual: ap("0.0.0.1:0"), Real: ap("198.18.0.21:8080"),
				State: "NONE", ExpiresIn: 300 * time.Second, Template: true},
		},
		Timeouts: &api.Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second},
	}
}

func mustParse(t *testing.T, line string) *Command {
	t.Helper()
	c, err := Parse(strings.Fields(line))
	if err != nil {
		t.Fatalf("Parse(%q): %v", line, err)
	}
	return c
}

func TestLayoutsGolden(t *testing.T) {
	tests := []struct {
		args, golden string
	}{
		{"-L -n", "list"},
		{"", "list"},
		{"-Ln --sort", "list"},
		{"-L -n -t 198.18.0.100:80", "list-one"},
		{"-L -n --stats", "stats"},
		{"-L -n --stats --exact", "exact"},
		{"-L -n --rate", "rate"},
		{"-L -n --thresholds", "thresholds"},
		{"-L -n --persistent-conn", "persistent-conn"},
		{"-S -n", "rules"},
		{"--save", "rules"},
		{"-L -n -c", "conns"},
		{"-L -c --persistent-conn", "conns-pc"},
		{"-L --timeout", "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			c := mustParse(t, tt.args)
			resp := fixture()
			if c.Request.Filter != nil {
				// The server sends the one service asked for.
				for _, s := range resp.Services {
					if s.ServiceID == *c.Request.Filter {
						resp.Services = []api.ServiceState{s}
					}
				}
			}
			var got bytes.Buffer
			if err := c.Print(&got, resp); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", tt.golden+".golden"))
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != string(want) {
				t.Errorf("%s: got\n%s\nwant\n%s", tt.args, got.String(), want)
				gl, wl := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
				for i := range min(len(gl), len(wl)) {
					if gl[i] != wl[i] {
						t.Errorf("first difference, line %d:\n got %q\nwant %q", i+1, gl[i], wl[i])
						break
					}
				}
			}
		})
	}
}

func TestLargeNum(t *testing.T) {
	tests := []struct {
		n     uint64
		exact bool
		want  string
	}{
		{0, false, "        0"},
		{99_999_999, false, " 99999999"},
		{100_000_000, false, "  100000K"},
		{999_999_999, false, "  999999K"},
		{1_000_000_000, false, "    1000M"},
		{99_999_999_999, false, "   99999M"},
		{100_000_000_000, false, "     100G"},
		{99_999_999_999_999, false, "   99999G"},
		{100_000_000_000_000, false, "     100T"},
		{^uint64(0), false, "18446744T"}, // ipvsadm runs into the previous column too,
		{12, true, "       12"},
		{12345678, true, " 12345678"},
		{123456789, true, " 123456789"},
		{^uint64(0), true, " 18446744073709551615"},
	}
	for _, tt := range tests {
		if got := largeNum(tt.n, tt.exact); got != tt.want {
			t.Errorf("largeNum(%d, %v) = %q, want %q", tt.n, tt.exact, got, tt.want)
		}
	}
}

func TestNoSort(t *testing.T) {
	c := mustParse(t, "-L -n --nosort")
	var b bytes.Buffer
	if err := c.Print(&b, fixture()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	// As given: the group first, its real servers in their order.
	if lines[3] != "FWM  1 sh (sh-port,sh-fallback) persistent 300" || !strings.HasPrefix(lines[4], "  -> 198.18.0.22:0 ") {
		t.Errorf("--nosort reordered:\n%s", b.String())
	}
	b.Reset()
	WriteRules(&b, fixture().Services, ListOptions{NoSort: true})
	if !strings.HasPrefix(b.String(), "-A -f 1 -s sh -p 300 -b sh-port,sh-fallback --match tcp:198.18.0.200:1000-2000\n-a -f 1 -r 198.18.0.22:0 -g -w 0\n") {
		t.Errorf("-S --nosort reordered:\n%s", b.String())
	}
}

func TestMarkIPv6(t *testing.T) {
	s := api.ServiceState{Service: api.Service{ServiceID: api.ServiceID{Mark: 9}, Scheduler: "rr",
		Persistence: time.Minute, PersistPrefix: 48,
		Matches: []api.Match{{Protocol: "tcp", VIP: ip("2001:db8::1"), FromPort: 80, ToPort: 80}}}}
	var b bytes.Buffer
	WriteServices(&b, []api.ServiceState{s}, ListOptions{})
	if !strings.Contains(b.String(), "\nFWM  9 IPv6 rr persistent 60 mask 48\n") {
		t.Errorf("IPv6 mark service:\n%s", b.String())
	}
	rules := Rules([]api.ServiceState{s})
	if rules != "-A -f 9 -6 -s rr -p 60 -M 48 --match tcp:[2001:db8::1]:80\n" {
		t.Errorf("IPv6 mark rule %q", rules)
	}
	cmds, err := ParseRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	if got := cmds[0].Request.Service; got.Mark != 9 || got.PersistPrefix != 48 || len(got.Matches) != 1 {
		t.Errorf("read back as %+v", got)
	}
}

func TestJSON(t *testing.T) {
	for _, args := range []string{"-L -n --json", "-L -c --json", "-S --json", "status --json", "health --json"} {
		c := mustParse(t, args)
		if !c.JSON {
			t.Fatalf("%s: JSON not set", args)
		}
		want := fixture()
		var b bytes.Buffer
		if err := c.Print(&b, want); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(b.String(), "{\n  \"services\": [") {
			t.Errorf("%s: not indented JSON: %.40q", args, b.String())
		}
		var got api.Response
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&got, want) {
			t.Errorf("%s: JSON does not round-trip", args)
		}
	}
}

func TestStatusAndHealth(t *testing.T) {
	var b bytes.Buffer
	WriteStatus(&b, &api.Status{
		Workers: 2, Connections: 5, Capacity: 4096, RxFrames: 100, TxFrames: 90, CsumCompleted: 77,
		VerifyChecksums: true, BadCsumIn: 4, BadCsumOut: 1, Warnings: []string{"eth1: XDP runs in generic mode: driver mode was refused (too big)"},
		Drops:      map[string]uint64{"no_service": 3, "bad_checksum": 1},
		Interfaces: []api.Interface{{Name: "eth0", XDPMode: "native", Queues: 2, ZeroCopy: true}, {Name: "eth1", XDPMode: "generic", Queues: 1}},
		DataPath:   api.DataPath{Batch: 256, RingSize: 2048, UMEMFrames: 8192, IdleSpins: -1, NeedWakeup: true, BusyPollUS: 20},
		Config:     "/etc/xvs/xvs.toml",
	})
	want := "workers 2, connections 5 (capacity 4096), rx 100 frames, tx 90 frames\n" +
		"  interface eth0             xdp native   queues 2  zero-copy\n" +
		"  interface eth1             xdp generic  queues 1  copy\n" +
		"  drops: bad_checksum=1 no_service=3\n" +
		"  csum_completed: 77 (partial TCP/UDP checksums, left to a NIC by their sender, completed)\n" +
		"  verify_checksums: 1 sent with a checksum their receiver rejects, 4 arrived with one (forwarded as they came)\n" +
		"  warning: eth1: XDP runs in generic mode: driver mode was refused (too big)\n" +
		"  data path: batch 256, rings 2048, 8192 UMEM frames per worker, never sleeps, busy_poll 20 µs, need_wakeup on\n" +
		"  config: /etc/xvs/xvs.toml\n"
	if b.String() != want {
		t.Errorf("status:\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	WriteStatus(&b, &api.Status{Workers: 1})
	if !strings.Contains(b.String(), "  drops: none\n") {
		t.Errorf("status without drops:\n%s", b.String())
	}

	b.Reset()
	since := time.Date(2025, 11, 25, 16, 0, 0, 0, time.UTC)
	WriteHealth(&b, []api.HealthState{
		{Service: tcp("198.18.0.100", 80), Real: ap("198.18.0.12:80"), Check: "http", Healthy: false, Since: since, Last: "status 503"},
		{Service: tcp("198.18.0.100", 80), Real: ap("198.18.0.11:80"), Check: "tcp", Healthy: true, Since: since},
		{Service: api.ServiceID{Mark: 1}, Real: ap("198.18.0.21:0"), Check: "tcp", Healthy: true},
	})
	want = "Prot LocalAddress:Port            RemoteAddress:Port           Check  State Since                Last failure\n" +
		"TCP  198.18.0.100:80              198.18.0.11:80               tcp    up    2025-11-25T16:00:00Z\n" +
		"TCP  198.18.0.100:80              198.18.0.12:80               http   down  2025-11-25T16:00:00Z status 503\n" +
		"FWM  1                            198.18.0.21:0                tcp    up    -\n"
	if b.String() != want {
		t.Errorf("health:\n%s\nwant\n%s", b.String(), want)
	}
}

func TestLocalCommands(t *testing.T) {
	for _, tt := range []struct {
		args, want string
	}{
		{"-h", "Usage:\n  xvsadm -A|E virtual-service"},
		{"--help", "  --add-service     -A        add virtual service with options\n"},
		{"-v", "xvsadm " + version.String() + " (xvs " + version.String() + "; ipvsadm v1.31 syntax and layouts, IPVS v1.2.1)\n"},
	} {
		c := mustParse(t, tt.args)
		if !c.Local() {
			t.Errorf("%s: not local", tt.args)
		}
		var b bytes.Buffer
		if err := c.Print(&b, nil); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), tt.want) || (tt.want == "" && b.Len() != 0) {
			t.Errorf("%s printed\n%s\nwant it to contain %q", tt.args, b.String(), tt.want)
		}
	}
	// Usage lines are no wider than ipvsadm's.
	var b bytes.Buffer
	WriteUsage(&b)
	for line := range strings.Lines(b.String()) {
		if len(line) > 100 {
			t.Errorf("usage line too long: %q", line)
		}
	}
}

// TestDaemons: -L --daemon prints ipvsadm's lines, master first, for the
// roles that run, and nothing when none does.
func TestDaemons(t *testing.T) {
	for _, tt := range []struct {
		name string
		ds   []api.SyncDaemonState
		want string
	}{
		{"none", nil, ""},
		{"both", []api.SyncDaemonState{{Role: "backup", Interface: "eth1", SyncID: 3}, {Role: "master", Interface: "eth1", SyncID: 3}},
			"master sync daemon (mcast=eth1, syncid=3)\nbackup sync daemon (mcast=eth1, syncid=3)\n"},
		{"backup", []api.SyncDaemonState{{Role: "backup", Interface: "eth0"}}, "backup sync daemon (mcast=eth0, syncid=0)\n"},
	} {
		var b bytes.Buffer
		if err := mustParse(t, "-L --daemon").Print(&b, &api.Response{Daemons: tt.ds}); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tt.name, b.String(), tt.want)
		}
	}
}

func TestPrintMissingParts(t *testing.T) {
	for _, args := range []string{"-L --timeout", "status"} {
		if err := mustParse(t, args).Print(new(bytes.Buffer), &api.Response{}); err == nil {
			t.Errorf("%s: printed an empty response without complaint", args)
		}
	}
}

// TestReport: what xvsd prints on SIGUSR1 is, byte for byte, the stats
// golden (what xvsadm -L -n --stats prints for the same state), then the
// status lines.
func TestReport(t *testing.T) {
	resp := fixture()
	resp.Status = &api.Status{Workers: 1, Capacity: 4096, Drops: map[string]uint64{"no_conn": 2}}
	var report bytes.Buffer
	if err := WriteReport(&report, resp); err != nil {
		t.Fatal(err)
	}
	stats, err := os.ReadFile(filepath.Join("testdata", "stats.golden"))
	if err != nil {
		t.Fatal(err)
	}
	var status bytes.Buffer
	WriteStatus(&status, resp.Status)
	if want := string(stats) + status.String(); report.String() != want {
		t.Errorf("report:\n%s\nwant\n%s", report.String(), want)
	}
	if strings.Join(ReportArgs, " ") != "-L -n --stats" {
		t.Errorf("the report lists as %q", ReportArgs)
	}
}
