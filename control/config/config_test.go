package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/internal/xvs"
	"github.com/xvs-lb/xvs/sched"
)

// doc builds a file from lines, so that tests can name line numbers.
func doc(lines ...string) []byte { return []byte(strings.Join(lines, "\n") + "\n") }

var director = []string{"[director]", `interfaces = ["eth0"]`}

func defaultTimeouts() Timeouts {
	return Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}
}

func defaultDirector() Director {
	return Director{Interfaces: []string{"eth0"}, XDPMode: xvs.XDPAuto, ZeroCopy: xvs.ZeroCopyAuto, LogLevel: "info", Connections: DefaultConnections, WhenFull: conntrack.Refuse, FastPath: xvs.FastPathAuto}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestParseGood(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want Config
	}{
		{
			name: "minimal",
			data: doc(director...),
			want: Config{Director: defaultDirector(), Timeouts: defaultTimeouts()},
		},
		{
			name: "defaults",
			data: doc(append(director,
				"[[service]]", // 3
				`vip = "198.18.0.100"`,
				"port = 80",
				`protocol = "tcp"`,
				"  [[service.real]]", // 7
				`  address = "198.18.0.11"`,
			)...),
			want: Config{
				Director: defaultDirector(),
				Timeouts: defaultTimeouts(),
				Services: []Service{{
					VIP: addr("198.18.0.100"), Port: 80, Protocol: xvs.ProtoTCP, Scheduler: "wlc", Line: 3,
					Reals: []Real{{Address: addr("198.18.0.11"), Port: 80, Weight: 1, Method: xvs.MethodDR, Line: 7}},
				}},
			},
		},
		{
			name: "everything set",
			data: doc(
				"# comment",
				"[director]",
				`interfaces = ["xvsc0", "xvsr0"]`,
				`xdp_mode = "generic"`,
				`zerocopy = "off"`,
				"cpus = [3, 1]",
				`log_level = "debug"`,
				"[timeouts]",
				`tcp = "15m"`,
				"tcpfin = 60",
				`udp = "1m30s"`,
				"[[service]]", // 12
				`name = "web"`,
				`vip = "2001:db8::100"`,
				"port = 443",
				`protocol = "tcp"`,
				`scheduler = "wrr"`,
				"[[service.real]]", // 18
				`address = "2001:db8::11"`,
				"port = 8443",
				"weight = 0",
				`method = "masquerade"`,
				"[[service.real]]", // 23
				`address = "2001:db8::12"`,
				"weight = 65535",
				`method = "gate"`,
				"[[service]]", // 27: same vip and port, other protocol
				`vip = "2001:db8::100"`,
				"port = 443",
				`protocol = "udp"`,
				`scheduler = "rr"`,
			),
			want: Config{
				Director: Director{Interfaces: []string{"xvsc0", "xvsr0"}, XDPMode: xvs.XDPGeneric, ZeroCopy: xvs.ZeroCopyOff, CPUs: []int{3, 1}, LogLevel: "debug", Connections: DefaultConnections, WhenFull: conntrack.Refuse, FastPath: xvs.FastPathAuto},
				Timeouts: Timeouts{TCP: 15 * time.Minute, TCPFin: 60 * time.Second, UDP: 90 * time.Second},
				Services: []Service{
					{
						Name: "web", VIP: addr("2001:db8::100"), Port: 443, Protocol: xvs.ProtoTCP, Scheduler: "wrr", Line: 12,
						Reals: []Real{
							{Address: addr("2001:db8::11"), Port: 8443, Weight: 0, Method: xvs.MethodNAT, Line: 18},
							{Address: addr("2001:db8::12"), Port: 443, Weight: 65535, Method: xvs.MethodDR, Line: 23},
						},
					},
					{VIP: addr("2001:db8::100"), Port: 443, Protocol: xvs.ProtoUDP, Scheduler: "rr", Line: 27},
				},
			},
		},
		{
			name: "inline tables, dotted and quoted keys, multi-line values",
			data: doc(
				`director.interfaces = [`,
				`  "eth0", # the only one`,
				`]`,
				`timeouts = { udp = 10 }`,
				`service = [`,
				`  { vip = "198.18.0.100", port = 80, protocol = "tcp", real = [`, // 6
				`      { address = "198.18.0.11" },`,                              // 7
				`      { address = "198.18.0.12", "method" = 'm', port = 81 },`,   // 8
				`  ] },`,
				`  { "vip" = "198.18.0.100", name = """`, // 10
				`[[service]]`,
				`port = 1""", port = 81, protocol = "udp" },`,
				`]`,
			),
			want: Config{
				Director: defaultDirector(),
				Timeouts: Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 10 * time.Second},
				Services: []Service{
					{
						VIP: addr("198.18.0.100"), Port: 80, Protocol: xvs.ProtoTCP, Scheduler: "wlc", Line: 6,
						Reals: []Real{
							{Address: addr("198.18.0.11"), Port: 80, Weight: 1, Method: xvs.MethodDR, Line: 7},
							{Address: addr("198.18.0.12"), Port: 81, Weight: 1, Method: xvs.MethodNAT, Line: 8},
						},
					},
					{Name: "[[service]]\nport = 1", VIP: addr("198.18.0.100"), Port: 81, Protocol: xvs.ProtoUDP, Scheduler: "wlc", Line: 10},
				},
			},
		},
		{
			name: "data path tuning",
			data: doc(append(director, "batch_size = 128", "ring_size = 4096", "umem_frames = 16384", "idle_spins = -1", `busy_poll = "50us"`, "need_wakeup = false", "verify_checksums = true", `fast_path = "xdp"`)...),
			want: Config{
				Director: func() Director {
					d := defaultDirector()
					d.BatchSize, d.RingSize, d.UMEMFrames, d.IdleSpins, d.NoNeedWakeup = 128, 4096, 16384, -1, true
					d.VerifyChecksums = true
					d.BusyPoll = 50 * time.Microsecond
					d.FastPath = xvs.FastPathXDP
					return d
				}(),
				Timeouts: defaultTimeouts(),
			},
		},
		{
			name: "busy_poll true is DPDK's default",
			data: doc(append(director, "busy_poll = true")...),
			want: Config{
				Director: func() Director {
					d := defaultDirector()
					d.BusyPoll = DefaultBusyPoll
					return d
				}(),
				Timeouts: defaultTimeouts(),
			},
		},
		{
			name: "byte order mark and CRLF",
			data: []byte("\xef\xbb\xbf[director]\r\ninterfaces = [\"eth0\"]\r\n\r\n[[service]]\r\nvip = \"198.18.0.1\"\r\nport = 80\r\nprotocol = \"udp\"\r\n"),
			want: Config{
				Director: defaultDirector(),
				Timeouts: defaultTimeouts(),
				Services: []Service{{VIP: addr("198.18.0.1"), Port: 80, Protocol: xvs.ProtoUDP, Scheduler: "wlc", Line: 4}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("test.toml", tt.data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.want.Source = "test.toml"
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("Parse =\n%+v\nwant\n%+v", *got, tt.want)
			}
		})
	}
}

type wantErr struct {
	line int
	msg  string // a substring of the message
}

func TestParseBad(t *testing.T) {
	svc := func(lines ...string) []byte {
		return doc(append(append([]string{}, director...), append([]string{
			"[[service]]", // 3
			`vip = "198.18.0.100"`,
			"port = 80",
			`protocol = "tcp"`,
		}, lines...)...)...)
	}
	real := func(lines ...string) []byte {
		return svc(append([]string{
			"[[service.real]]", // 7
			`address = "198.18.0.11"`,
			"[[service.real]]", // 9
		}, lines...)...)
	}
	tests := []struct {
		name string
		data []byte
		want []wantErr
	}{
		// Syntax.
		{"syntax", doc("[director]", "interfaces = [", `"a"`, "xdp_mode = 1"), []wantErr{{4, "expected a comma"}}},
		{"key defined twice", doc("[director]", `interfaces = ["a"]`, `interfaces = ["b"]`), []wantErr{{3, "already been defined"}}},
		{"unterminated string", doc("[director]", `interfaces = ["a]`), []wantErr{{2, ""}}},

		// Sync daemon roles.
		{"sync id out of range", doc(append(director, "[sync]", `listen = "198.18.0.2:8848"`, `peers = ["198.18.0.3:8848"]`, `key = "0123456789abcdef"`, "node_id = 1", "sync_id = 256")...), []wantErr{{8, "sync.sync_id: 256 is out of range 0..255"}}},
		{"sync interface", doc(append(director, "[sync]", `listen = "198.18.0.2:8848"`, `peers = ["198.18.0.3:8848"]`, `key = "0123456789abcdef"`, "node_id = 1", `interface = "a b"`)...), []wantErr{{8, `sync.interface: "a b" contains`}}},
		{"sync master not a boolean", doc(append(director, "[sync]", `listen = "198.18.0.2:8848"`, `peers = ["198.18.0.3:8848"]`, `key = "0123456789abcdef"`, "node_id = 1", `master = "yes"`)...), []wantErr{{8, "sync.master: want a boolean"}}},

		// Unknown keys.
		{"unknown top-level key", doc(append([]string{"verbose = true"}, director...)...), []wantErr{{1, `unknown key "verbose" in the top level (known keys: director, timeouts, service, group, bgp, sync, failover)`}}},
		{"unknown table", doc(append(director, "", "[health]", "interval = 3")...), []wantErr{{4, `unknown key "health"`}}},
		{"unknown director key", doc("[director]", `interfaces = ["a"]`, `xdpmode = "auto"`), []wantErr{{3, `unknown key "xdpmode" in [director]`}}},
		{"unknown timeout", doc(append(director, "[timeouts]", "tcp_fin = 3")...), []wantErr{{4, `unknown key "tcp_fin" in [timeouts] (known keys: tcp, tcpfin, udp)`}}},
		{"unknown service key", svc("persistent = 300"), []wantErr{{7, `unknown key "persistent" in [[service]]`}}},
		{"unknown key in second real", real(`address = "198.18.0.12"`, "wieght = 2"), []wantErr{{11, `unknown key "wieght" in [[service.real]] (known keys: address, port, weight, method, upper_threshold, lower_threshold)`}}},

		// Director.
		{"no director", doc("[timeouts]", "tcp = 5"), []wantErr{{0, "missing [director] table"}}},
		{"director array", doc("[[director]]", `interfaces = ["a"]`), []wantErr{{1, "write [director], a single table, not [[director]]"}}},
		{"no interfaces", doc("[director]", `xdp_mode = "auto"`), []wantErr{{1, "[director] is missing interfaces"}}},
		{"empty interfaces", doc("[director]", "interfaces = []"), []wantErr{{2, "director.interfaces: empty"}}},
		{"interfaces not array", doc("[director]", `interfaces = "eth0"`), []wantErr{{2, "director.interfaces: want an array, got a string"}}},
		{"interface name too long", doc("[director]", `interfaces = ["eth0", "abcdefghijklmnop"]`), []wantErr{{2, `"abcdefghijklmnop" is longer than 15 bytes`}}},
		{"interface name slash", doc("[director]", "interfaces = [", `"eth0",`, `"a/b",`, "]"), []wantErr{{4, `director.interfaces: interface name "a/b" contains`}}},
		{"interface not string", doc("[director]", "interfaces = [1]"), []wantErr{{2, "want an interface name, got an integer"}}},
		{"duplicate interface", doc("[director]", `interfaces = ["a", "a"]`), []wantErr{{2, `interface "a" is listed twice`}}},
		{"xdp_mode", doc(append(director, `xdp_mode = "native"`)...), []wantErr{{3, `director.xdp_mode: "native" is not one of auto, driver, generic`}}},
		{"zerocopy bool", doc(append(director, "zerocopy = true")...), []wantErr{{3, "director.zerocopy: want a string, got a boolean"}}},
		{"zerocopy", doc(append(director, `zerocopy = "yes"`)...), []wantErr{{3, `"yes" is not one of auto, on, off`}}},
		{"log_level", doc(append(director, `log_level = "trace"`)...), []wantErr{{3, `director.log_level: "trace" is not one of debug, info, warn, error`}}},
		{"negative cpu", doc(append(director, "cpus = [0, -1]")...), []wantErr{{3, "director.cpus: -1 is out of range 0..65535"}}},
		{"duplicate cpu", doc(append(director, "cpus = [1, 1]")...), []wantErr{{3, "CPU 1 is listed twice"}}},
		{"local_ports without local addresses", svc(`local_ports = "20000-20003"`), []wantErr{{7, "service.local_ports: FullNAT's local ports need local_addresses"}}},
		{"local_ports backwards", svc(`local_addresses = ["198.19.0.2"]`, `local_ports = "20003-20000"`), []wantErr{{8, `service.local_ports: "20003-20000": range ends before it starts`}}},
		{"local_ports integer", svc(`local_addresses = ["198.19.0.2"]`, "local_ports = 20000"), []wantErr{{8, "want a range of ports as a string"}}},
		{"batch_size 0", doc(append(director, "batch_size = 0")...), []wantErr{{3, "director.batch_size: 0 is out of range 1..4096"}}},
		{"ring_size not a power of two", doc(append(director, "ring_size = 1000")...), []wantErr{{3, "director.ring_size: 1000 is not a power of two"}}},
		{"ring_size too small", doc(append(director, "ring_size = 8")...), []wantErr{{3, "director.ring_size: 8 is out of range 64.."}}},
		{"umem smaller than its rings", doc(append(director, "ring_size = 4096", "umem_frames = 4096")...), []wantErr{{4, "director.umem_frames: 4096 frames cannot fill 1 ring(s) of 4096 and keep as many in flight: want at least 8192"}}},
		{"idle_spins 0", doc(append(director, "idle_spins = 0")...), []wantErr{{3, "director.idle_spins: 0 is not a count"}}},
		{"idle_spins below -1", doc(append(director, "idle_spins = -2")...), []wantErr{{3, "director.idle_spins: -2 is out of range -1.."}}},
		{"busy_poll integer", doc(append(director, "busy_poll = 50")...), []wantErr{{3, `director.busy_poll: want true, false or a duration such as "50us", got an integer`}}},
		{"busy_poll too long", doc(append(director, `busy_poll = "1s"`)...), []wantErr{{3, `director.busy_poll: "1s": want a duration from 1us to 10ms`}}},
		{"need_wakeup string", doc(append(director, `need_wakeup = "no"`)...), []wantErr{{3, "director.need_wakeup: want a boolean, got a string"}}},
		{"fast_path unknown", doc(append(director, `fast_path = "dpdk"`)...), []wantErr{{3, "director.fast_path"}}},

		// Timeouts.
		{"bad duration", doc(append(director, "[timeouts]", `tcp = "15 minutes"`)...), []wantErr{{4, `timeouts.tcp: "15 minutes" is not a duration`}}},
		{"zero timeout", doc(append(director, "[timeouts]", "udp = 0")...), []wantErr{{4, "timeouts.udp: 0 seconds is out of range 1s.."}}},
		{"negative timeout", doc(append(director, "[timeouts]", `tcpfin = "-5s"`)...), []wantErr{{4, "timeouts.tcpfin: -5s is out of range"}}},
		{"sub-second timeout", doc(append(director, "[timeouts]", `tcp = "500ms"`)...), []wantErr{{4, "500ms is out of range"}}},
		{"huge timeout", doc(append(director, "[timeouts]", "tcp = 9223372036854775807")...), []wantErr{{4, "9223372036854775807 seconds is out of range"}}},
		{"float timeout", doc(append(director, "[timeouts]", "tcp = 1.5")...), []wantErr{{4, "want a duration string or integer seconds, got a float"}}},

		// Services.
		{"service table", doc(append(director, "[service]", `vip = "198.18.0.1"`)...), []wantErr{{3, "write [[service]], an array of tables, not [service]"}}},
		{"missing vip port protocol", doc(append(director, "[[service]]", `name = "x"`)...), []wantErr{
			{3, "[[service]] is missing vip"}, {3, "[[service]] is missing port"}, {3, "[[service]] is missing protocol"},
		}},
		{"bad vip", doc(append(director, "[[service]]", `vip = "198.18.0"`, "port = 80", `protocol = "tcp"`)...), []wantErr{{4, `service.vip: "198.18.0" is not an IP address`}}},
		{"vip with port", doc(append(director, "[[service]]", `vip = "198.18.0.1:80"`, "port = 80", `protocol = "tcp"`)...), []wantErr{{4, "is not an IP address"}}},
		{"loopback vip", doc(append(director, "[[service]]", `vip = "127.0.0.1"`, "port = 80", `protocol = "tcp"`)...), []wantErr{{4, "is a loopback address"}}},
		{"unspecified vip", doc(append(director, "[[service]]", `vip = "::"`, "port = 80", `protocol = "tcp"`)...), []wantErr{{4, "is unspecified"}}},
		{"multicast vip", doc(append(director, "[[service]]", `vip = "224.0.0.1"`, "port = 80", `protocol = "tcp"`)...), []wantErr{{4, "is a multicast address"}}},
		{"vip with zone", doc(append(director, "[[service]]", `vip = "fe80::1%eth0"`, "port = 80", `protocol = "tcp"`)...), []wantErr{{4, "has a zone"}}},
		{"mapped vip", doc(append(director, "[[service]]", `vip = "::ffff:198.18.0.1"`, "port = 80", `protocol = "tcp"`)...), []wantErr{{4, "is IPv4-mapped: write 198.18.0.1"}}},
		{"port 0", doc(append(director, "[[service]]", `vip = "198.18.0.1"`, "port = 0", `protocol = "tcp"`)...), []wantErr{{5, "service.port: 0 is out of range 1..65535"}}},
		{"port too big", doc(append(director, "[[service]]", `vip = "198.18.0.1"`, "port = 65536", `protocol = "tcp"`)...), []wantErr{{5, "65536 is out of range 1..65535"}}},
		{"port string", doc(append(director, "[[service]]", `vip = "198.18.0.1"`, `port = "80"`, `protocol = "tcp"`)...), []wantErr{{5, "service.port: want an integer, got a string"}}},
		{"protocol", doc(append(director, "[[service]]", `vip = "198.18.0.1"`, "port = 80", `protocol = "sctp"`)...), []wantErr{{6, `service.protocol: unknown protocol "sctp" (want tcp or udp)`}}},
		{"scheduler", svc(`scheduler = "lbxyz"`), []wantErr{{7, `service.scheduler: unknown scheduler "lbxyz" (known: rr, wrr, lc, wlc`}}},
		{"duplicate service", svc(`name = "a"`, "[[service]]", `name = "b"`, `vip = "198.18.0.100"`, "port = 80", `protocol = "tcp"`),
			[]wantErr{{8, "duplicate service TCP 198.18.0.100:80 (first at line 3)"}}},
		{"duplicate service name", svc(`name = "a"`, "[[service]]", `name = "a"`, `vip = "198.18.0.100"`, "port = 80", `protocol = "udp"`),
			[]wantErr{{9, `service.name: duplicate service name "a" (first at line 3)`}}},
		{"duplicate IPv6 service", doc(append(director,
			"[[service]]", `vip = "2001:db8::1"`, "port = 80", `protocol = "udp"`,
			"[[service]]", `vip = "2001:DB8:0::1"`, "port = 80", `protocol = "udp"`)...),
			[]wantErr{{7, "duplicate service UDP [2001:db8::1]:80 (first at line 3)"}}},

		// Real servers.
		{"real table", svc("[service.real]", `address = "198.18.0.11"`), []wantErr{{7, "write [[service.real]], an array of tables, not [service.real]"}}},
		{"real not table", svc("real = [1]"), []wantErr{{7, "service.real: want a table, got an integer"}}},
		{"missing address", real("weight = 2"), []wantErr{{9, "[[service.real]] is missing address"}}},
		{"bad address", real(`address = "198.18.0.256"`), []wantErr{{10, `service.real.address: "198.18.0.256" is not an IP address`}}},
		{"address family", real(`address = "2001:db8::11"`), []wantErr{{10, "2001:db8::11 is IPv6 but the service's vip 198.18.0.100 is IPv4"}}},
		{"address is vip", real(`address = "198.18.0.100"`), []wantErr{{10, "198.18.0.100 is the service's vip"}}},
		{"real port 0", real(`address = "198.18.0.12"`, "port = 0"), []wantErr{{11, "service.real.port: 0 is out of range 1..65535"}}},
		{"weight negative", real(`address = "198.18.0.12"`, "weight = -1"), []wantErr{{11, "service.real.weight: -1 is out of range 0..65535"}}},
		{"weight too big", real(`address = "198.18.0.12"`, "weight = 65536"), []wantErr{{11, "65536 is out of range 0..65535"}}},
		{"method", real(`address = "198.18.0.12"`, `method = "direct"`), []wantErr{{11, `service.real.method: unknown method "direct"`}}},
		{"method fullnat without local addresses", real(`address = "198.18.0.12"`, `method = "fullnat"`), []wantErr{{9, `uses fullnat, but the service has no IPv4 local_addresses`}}},
		{"method tun remaps port", real(`address = "198.18.0.12"`, `method = "tun"`, "port = 81"), []wantErr{{12, `method tun cannot change ports`}}},
		{"duplicate real", real(`address = "198.18.0.11"`), []wantErr{{9, "duplicate real server 198.18.0.11:80 (first at line 7)"}}},
		{"duplicate real, explicit port", real(`address = "198.18.0.11"`, "port = 80", `method = "nat"`), []wantErr{{9, "duplicate real server 198.18.0.11:80"}}},
		{"dr port remap", real(`address = "198.18.0.12"`, "port = 8080"), []wantErr{{11, "service.real.port: 8080 differs from the service port 80, but method dr cannot change ports"}}},
		{"dr alias port remap", real(`address = "198.18.0.12"`, "port = 8080", `method = "route"`), []wantErr{{11, "method dr cannot change ports"}}},

		// Everything at once, in line order.
		{"many", doc(
			"[director]",
			`interfaces = []`, // 2
			`xdp_mode = "x"`,  // 3
			"[[service]]",     // 4
			`vip = "198.18.0.1"`,
			"port = 80",
			`protocol = "tcp"`,
			"[[service.real]]", // 8
			`address = "2001:db8::1"`,
			"weight = 1.5", // 10
			"[[service]]",  // 11
			`vip = "198.18.0.1"`,
			"port = 80",
			`protocol = "tcp"`,
			"bogus = 1", // 15
		), []wantErr{
			{2, "empty"}, {3, "xdp_mode"}, {9, "IPv6"}, {10, "want an integer, got a float"},
			{11, "duplicate service"}, {15, `unknown key "bogus"`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("bad.toml", tt.data)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with its error")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, w := range tt.want {
				e := errs[i]
				if e.File != "bad.toml" || e.Line != w.line || !strings.Contains(e.Msg, w.msg) {
					t.Errorf("error %d = %q (file %q line %d), want line %d containing %q", i, e.Msg, e.File, e.Line, w.line, w.msg)
				}
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	_, err := Parse("x/y.toml", doc("[director]", `interfaces = []`, `log_level = "loud"`))
	want := "x/y.toml:2: director.interfaces: empty: name at least one interface\n" +
		`x/y.toml:3: director.log_level: "loud" is not one of debug, info, warn, error`
	if err == nil || err.Error() != want {
		t.Fatalf("error =\n%v\nwant\n%s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Line != 2 {
		t.Fatalf("errors.As(*Error) = %v", e)
	}
	if got := (&Error{File: "f", Msg: "m"}).Error(); got != "f: m" {
		t.Errorf("line-less error = %q, want %q", got, "f: m")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "xvs.toml")
	if err := os.WriteFile(path, doc(director...), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Source != path {
		t.Errorf("Source = %q, want %q", cfg.Source, path)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want ErrNotExist", err)
	}
	if err := os.WriteFile(path, doc("[director]"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), path+":1: ") {
		t.Errorf("Load of a bad file: %v, want an error at %s:1", err, path)
	}
}

// TestExamples parses the example files shipped in configs/.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]func(t *testing.T, c *Config){
		"dr.toml": func(t *testing.T, c *Config) {
			checkServices(t, c, []string{
				"TCP 198.18.0.100:80 rr -> 198.18.0.11:80 Route 1, 198.18.0.12:80 Route 1",
				"UDP 198.18.0.100:53 wlc -> 198.18.0.11:53 Route 1, 198.18.0.12:53 Route 1",
			})
			if !reflect.DeepEqual(c.Director.Interfaces, []string{"xvsd0"}) {
				t.Errorf("interfaces %v", c.Director.Interfaces)
			}
		},
		"nat.toml": func(t *testing.T, c *Config) {
			checkServices(t, c, []string{
				"TCP 198.18.0.100:80 wlc -> 198.19.0.11:8080 Masq 1, 198.19.0.12:8080 Masq 2",
				"UDP 198.18.0.100:53 wrr -> 198.19.0.11:5353 Masq 1, 198.19.0.12:5353 Masq 1",
			})
			if !reflect.DeepEqual(c.Director.Interfaces, []string{"xvsc0", "xvsr0"}) {
				t.Errorf("interfaces %v", c.Director.Interfaces)
			}
			if c.Timeouts != defaultTimeouts() {
				t.Errorf("timeouts %+v", c.Timeouts)
			}
		},
		"demo.toml": func(t *testing.T, c *Config) {
			checkServices(t, c, []string{
				"TCP 198.18.0.100:80 rr -> 198.18.0.11:80 Route 1, 198.18.0.12:80 Route 1",
				"UDP 198.18.0.100:5353 rr -> 198.18.0.11:5353 Route 1, 198.18.0.12:5353 Route 1",
			})
			// The demo harness swaps the interface name with a plain
			// substitution of this line.
			data, err := os.ReadFile(c.Source)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), "\ninterfaces = [\"xvsd0\"]\n") {
				t.Error(`demo.toml lacks the line interfaces = ["xvsd0"]`)
			}
		},
	}
	seen := 0
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			// What validates must also build: every service gets its scheduler.
			for _, s := range cfg.Services {
				dests := make([]sched.Dest, len(s.Reals))
				for i, r := range s.Reals {
					dests[i] = sched.Dest{ID: uint32(i), Weight: r.Weight}
				}
				if _, err := sched.New(s.Scheduler, dests); err != nil {
					t.Errorf("%s: %v", s, err)
				}
			}
			if check := want[filepath.Base(f)]; check != nil {
				seen++
				check(t, cfg)
			}
		})
	}
	if seen != len(want) {
		t.Errorf("found %d of the %d example files in %v", seen, len(want), files)
	}
}

func checkServices(t *testing.T, c *Config, want []string) {
	t.Helper()
	var got []string
	for _, s := range c.Services {
		var reals []string
		for _, r := range s.Reals {
			reals = append(reals, netip.AddrPortFrom(r.Address, r.Port).String()+" "+r.Method.Forward()+" "+strconv.Itoa(r.Weight))
			if r.Line == 0 {
				t.Errorf("%s real %s has no line", s, r.Address)
			}
		}
		got = append(got, s.String()+" "+s.Scheduler+" -> "+strings.Join(reals, ", "))
		if s.Line == 0 {
			t.Errorf("%s has no line", s)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("services:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestMaskBits(t *testing.T) {
	for _, tt := range []struct {
		mask string
		bits int
		ok   bool
	}{
		{"255.255.255.0", 24, true},
		{"255.255.255.255", 32, true},
		{"128.0.0.0", 1, true},
		{"0.0.0.0", 0, false},
		{"255.0.255.0", 0, false},
		{"ffff::", 0, false},
	} {
		bits, ok := MaskBits(netip.MustParseAddr(tt.mask))
		if ok != tt.ok || ok && bits != tt.bits {
			t.Errorf("MaskBits(%s) = %d, %v; want %d, %v", tt.mask, bits, ok, tt.bits, tt.ok)
		}
	}
}

// TestDirectorModes: the modes are parsed once, to the types the data plane
// takes, and written back as the file names them.
func TestDirectorModes(t *testing.T) {
	for _, tt := range []struct {
		lines []string
		want  Director
	}{
		{nil, Director{XDPMode: xvs.XDPAuto, ZeroCopy: xvs.ZeroCopyAuto, FastPath: xvs.FastPathAuto, WhenFull: conntrack.Refuse}},
		{[]string{`xdp_mode = "driver"`, `zerocopy = "on"`, `fast_path = "off"`, `when_full = "evict"`},
			Director{XDPMode: xvs.XDPDriver, ZeroCopy: xvs.ZeroCopyOn, FastPath: xvs.FastPathOff, WhenFull: conntrack.EvictOldestIdle}},
		{[]string{`xdp_mode = "generic"`, `zerocopy = "off"`, `fast_path = "xdp"`, `when_full = "refuse"`},
			Director{XDPMode: xvs.XDPGeneric, ZeroCopy: xvs.ZeroCopyOff, FastPath: xvs.FastPathXDP, WhenFull: conntrack.Refuse}},
	} {
		cfg, err := Parse("t.toml", doc(append(append([]string(nil), director...), tt.lines...)...))
		if err != nil {
			t.Fatal(err)
		}
		d := cfg.Director
		got := Director{XDPMode: d.XDPMode, ZeroCopy: d.ZeroCopy, FastPath: d.FastPath, WhenFull: d.WhenFull}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %+v, want %+v", tt.lines, got, tt.want)
		}
		back, err := Parse("marshalled", Marshal(cfg))
		if err != nil || !reflect.DeepEqual(back.Director, cfg.Director) {
			t.Errorf("%q: written back as\n%s\nread as %+v, %v", tt.lines, Marshal(cfg), back, err)
		}
		for _, line := range tt.lines {
			if !strings.Contains(string(Marshal(cfg)), line) {
				t.Errorf("Marshal does not write %s", line)
			}
		}
	}
	_, err := Parse("t.toml", doc(append(append([]string(nil), director...), `when_full = "evict-oldest-idle"`)...))
	if err == nil || !strings.Contains(err.Error(), `"evict-oldest-idle" is not one of refuse, evict`) {
		t.Errorf("when_full named as conntrack names it: %v", err)
	}
}
