package ipvsadm

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/sched"
)

// running is what a director runs with its file's group, before any
// command: [[group]] mark 1 (groups are written in the file only).
func running(t fataler) *config.Config {
	t.Helper()
	cfg, err := config.Parse("xvs.toml", []byte(`[director]
interfaces = ["eth0"]

[[group]]
name = "web"
mark = 1
scheduler = "sh"
persistence = 300
match = [ { vip = "198.18.0.200", ports = "1000-2000", protocol = "tcp" } ]
`))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return cfg
}

func TestEdit(t *testing.T) {
	steps := []struct {
		line    string
		wantErr string
	}{
		{"-a -t 198.18.0.100:80 -r 198.18.0.11", "Service not defined"},
		{"-e -t 198.18.0.100:80 -r 198.18.0.11", "Service not defined"},
		{"-d -t 198.18.0.100:80 -r 198.18.0.11", "Service not defined"},
		{"-E -t 198.18.0.100:80 -s rr", "No such service"},
		{"-D -t 198.18.0.100:80", "No such service"},
		{"-Z -t 198.18.0.100:80", "No such service"},
		{"-A -t 198.18.0.100:80 -s rr", ""},
		{"-A -t 198.18.0.100:80 -s wrr", "Service already exists"},
		{"-A -u 198.18.0.100:80", ""},
		{"-A -f 1 -s sh -p", "Service already exists"},
		{"-A -f 2 -s sh -p", "xvs has no firewall marks: give the group's matches with --match"},
		{"-A -f 2 -s rr --match tcp:198.18.0.200:1500", "overlaps the service or match"},
		{"-A -f 2 -s rr --match tcp:198.18.0.201:80,udp:198.18.0.201:53 --name dns", ""},
		{"-A -f 3 -s rr --match tcp:198.18.0.202:80 --name dns", "duplicate name \"dns\""},
		{"-E -f 2 -s wrr -p 10 --match tcp:198.18.0.201:81", ""},
		{"-a -f 2 -r 198.18.0.31 -g", ""},
		{"-e -f 2 -r 198.18.0.31 -w 4", ""},
		{"-d -f 2 -r 198.18.0.31", ""},
		{"-D -f 2", ""},
		{"-E -f 2 -s rr", "No such service"},
		{"-A -f 4 -s sh -b flag-1,flag-2,flag-3 --match tcp:198.18.0.204:80 --name four", ""},
		{"-D -f 4", ""},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11", ""},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -w 3", "Destination already exists"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.12 -m -w 4 -x 10", ""},
		{"-e -t 198.18.0.100:80 -r 198.18.0.13 -w 3", "No such destination"},
		{"-d -t 198.18.0.100:80 -r 198.18.0.13", "No such destination"},
		{"-e -t 198.18.0.100:80 -r 198.18.0.11 -w 7", ""},
		{"-E -t 198.18.0.100:80 -p 60", ""},
		{"-a -f 1 -r 198.18.0.21:8080 -m", ""},
		{"-d -t 198.18.0.100:80 -r 198.18.0.12", ""},
		{"-d -u 198.18.0.100:80 -r 198.18.0.12", "No such destination"},
		// What the file would refuse is refused here too, with the
		// file's message.
		{"-a -t 198.18.0.100:80 -r 198.18.0.100", "(running configuration):"},
		{"-e -t 198.18.0.100:80 -r 198.18.0.11 -x 10 -y 20", "lower_threshold: 20 is above upper_threshold 10"},
		{"-Z -t 198.18.0.100:80", ""},
		{"-Z", ""},
		{"--set 1 2 0", ""},
	}
	cfg := running(t)
	for _, s := range steps {
		c := mustParse(t, s.line)
		before := string(config.Marshal(cfg))
		next, err := Edit(cfg, &c.Request)
		switch {
		case s.wantErr == "" && err != nil:
			t.Fatalf("%s: %v", s.line, err)
		case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)):
			t.Fatalf("%s: error %v, want %q", s.line, err, s.wantErr)
		case err == nil:
			cfg = next
		}
		if string(config.Marshal(cfg)) != before && err != nil {
			t.Fatalf("%s: a failed change changed the configuration", s.line)
		}
	}
	want := "-A -t 198.18.0.100:80 -s rr -p 60\n" +
		"-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 7\n" +
		"-A -u 198.18.0.100:80 -s wlc\n" +
		"-A -f 1 -s sh -p 300 --name web --match tcp:198.18.0.200:1000-2000\n" +
		"-a -f 1 -r 198.18.0.21:8080 -m -w 1\n"
	if got := Rules(Services(cfg)); got != want {
		t.Errorf("table:\n%s\nwant\n%s", got, want)
	}
	if got := cfg.Timeouts; got.TCP != time.Second || got.TCPFin != 2*time.Second || got.UDP != config.DefaultUDPTimeout {
		t.Errorf("--set 1 2 0 (0 keeps udp): %+v", got)
	}
	if cfg.Source != "xvs.toml" {
		t.Errorf("Source %q: an edit forgot the file", cfg.Source)
	}

	// Edit leaves its input alone.
	snapshot := string(config.Marshal(cfg))
	if _, err := Edit(cfg, &mustParse(t, "-e -t 198.18.0.100:80 -r 198.18.0.11 -w 9 -x 5").Request); err != nil {
		t.Fatal(err)
	}
	if _, err := Edit(cfg, &mustParse(t, "-E -t 198.18.0.100:80 -b mh-port").Request); err == nil {
		t.Error("-b mh-port with rr accepted")
	}
	if got := string(config.Marshal(cfg)); got != snapshot {
		t.Errorf("Edit changed its input:\n%s\nwas\n%s", got, snapshot)
	}
	if cleared, err := Edit(cfg, &api.Request{Op: api.OpClear}); err != nil || len(cleared.Services) != 0 {
		t.Errorf("-C: %v, %v", cleared, err)
	}

	if _, err := Edit(cfg, &mustParse(t, "-D -f 9").Request); !errors.Is(err, ErrNoService) {
		t.Errorf("error %v is not ErrNoService", err)
	}
	for _, req := range []*api.Request{{Op: api.OpList}, {Op: api.OpAddService}, {Op: api.OpAddReal, Service: &api.Service{ServiceID: ServiceID(&cfg.Services[0])}}, {Op: api.OpSetTimeouts}} {
		if _, err := Edit(cfg, req); err == nil {
			t.Errorf("Edit(%+v) succeeded", req)
		}
	}
}

func TestEditRestore(t *testing.T) {
	cfg := running(t)
	rules := "# saved\n-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 2\n-Z\n--set 100 0 0\n"
	next, err := Edit(cfg, &api.Request{Op: api.OpRestore, Text: rules})
	if err != nil {
		t.Fatal(err)
	}
	if got := Rules(Services(next)); got != "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 2\n-A -f 1 -s sh -p 300 --name web --match tcp:198.18.0.200:1000-2000\n" {
		t.Errorf("restored:\n%s", got)
	}
	if next.Timeouts.TCP != 100*time.Second {
		t.Errorf("--set in rules: %+v", next.Timeouts)
	}
	// All or nothing, and the refusal names the rule's line.
	for _, tt := range []struct{ text, err string }{
		{"-A -t 198.18.0.101:80\n\n-A -t 198.18.0.102:80\n-A -t 198.18.0.100:80\n", "line 4: Service already exists"},
		{"-A -t 198.18.0.101:80\n-a -t 198.18.0.102:80 -r 198.18.0.11\n", "line 2: Service not defined"},
		{"-A -t 198.18.0.101:80\n-L -n\n", "line 2: `-L -n' does not change the table; not allowed in rules"},
		{"-A -t 198.18.0.101:80\n-a -t 198.18.0.101:80 -r 198.18.0.101\n", "is the service's vip"},
	} {
		got, err := Edit(next, &api.Request{Op: api.OpRestore, Text: tt.text})
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("restore %q: %v, %v; want %q", tt.text, got, err, tt.err)
		}
	}
}

// genConfigState generates a table xvs accepts: what a director could be
// running after xvsadm commands, with every forwarding method, groups and
// xvs's own settings (FullNAT's local addresses and ports, TOA, the fast
// path opt-out, names, health checks).
func genConfigState(t *rapid.T) []api.ServiceState {
	v4 := []string{"198.18.0.100", "198.18.0.101", "198.18.0.11", "10.0.0.1"}
	v6 := []string{"2001:db8::100", "2001:db8::1:100", "2001:db8::11", "fe80::1"}
	addr := func(label string, is6 bool) netip.Addr {
		if is6 {
			return ip(rapid.SampledFrom(v6).Draw(t, label))
		}
		return ip(rapid.SampledFrom(v4).Draw(t, label))
	}
	port := func(label string) uint16 {
		return rapid.OneOf(rapid.SampledFrom([]uint16{80, 443, 53}), rapid.Uint16Range(1, 65535)).Draw(t, label)
	}
	var out []api.ServiceState
	for range rapid.IntRange(0, 6).Draw(t, "services") {
		is6 := rapid.Bool().Draw(t, "v6")
		s := api.ServiceState{Service: api.Service{ServiceID: api.ServiceID{
			Protocol: rapid.SampledFrom([]string{"tcp", "udp"}).Draw(t, "proto"), VIP: addr("vip", is6), Port: port("port"),
		}}}
		if slices.ContainsFunc(out, func(o api.ServiceState) bool { return o.ServiceID == s.ServiceID }) {
			continue
		}
		if rapid.Bool().Draw(t, "group") {
			// A group of its own VIP and ports, none of which another
			// service takes.
			s.ServiceID = api.ServiceID{Mark: uint32(len(out) + 1)}
			s.Name = fmt.Sprintf("g%d", len(out)+1)
			vip := ip(fmt.Sprintf("198.18.1.%d", len(out)+1))
			if is6 {
				vip = ip(fmt.Sprintf("2001:db8:1::%d", len(out)+1))
			}
			for i := range rapid.IntRange(1, 3).Draw(t, "matches") {
				lo := uint16(1000 * (i + 1))
				s.Matches = append(s.Matches, api.Match{Protocol: rapid.SampledFrom([]string{"tcp", "udp"}).Draw(t, "mproto"),
					VIP: vip, FromPort: lo, ToPort: lo + rapid.Uint16Range(0, 999).Draw(t, "mports")})
			}
		} else if rapid.Bool().Draw(t, "named") {
			s.Name = fmt.Sprintf("s%d", len(out)+1)
		}
		s.Scheduler = rapid.SampledFrom(sched.Names()).Draw(t, "scheduler")
		for _, f := range sched.FlagsFor(s.Scheduler) {
			// ipvsadm's generic flag-N are read as the scheduler's own.
			if !strings.HasPrefix(f, "flag-") && rapid.Bool().Draw(t, "flag") {
				s.Flags = append(s.Flags, f)
			}
		}
		fullnat := rapid.Bool().Draw(t, "fullnat")
		if fullnat {
			for i := range rapid.IntRange(1, 3).Draw(t, "laddrs") {
				a := ip(fmt.Sprintf("198.19.0.%d", i+2))
				if is6 {
					a = ip(fmt.Sprintf("2001:db8:2::%d", i+2))
				}
				s.LocalAddrs = append(s.LocalAddrs, a)
			}
			if rapid.Bool().Draw(t, "lports") {
				lo := rapid.Uint16Range(1024, 60000).Draw(t, "lport")
				s.LocalPorts = [2]uint16{lo, lo + rapid.Uint16Range(0, 5000).Draw(t, "lportspan")}
			}
			s.TOA = rapid.Bool().Draw(t, "toa")
		}
		s.NoFastPath = rapid.Bool().Draw(t, "nofastpath")
		if rapid.Bool().Draw(t, "health") {
			s.Health = rapid.SampledFrom([]string{
				`check = "tcp", interval = "2s", timeout = "1s", rise = 2, fall = 3, on_failure = "quiesce", initial = "up"`,
				`check = "http", interval = "1s", timeout = "500ms", rise = 1, fall = 5, port = 8080, path = "/healthz", expect_status = 204, expect_body = "it's ok", host = "example.org", on_failure = "reset", initial = "down"`,
				`check = "udp", interval = "3s", timeout = "1s", rise = 2, fall = 3, port = 53, send = "ping", expect = "pong", on_failure = "quiesce", initial = "up"`,
			}).Draw(t, "check")
		}
		if rapid.Bool().Draw(t, "persistent") {
			s.Persistence = time.Duration(rapid.IntRange(1, int(MaxTimeout/time.Second)).Draw(t, "persistence")) * time.Second
			bits := 32
			if is6 {
				bits = 128
			}
			s.PersistPrefix = rapid.IntRange(1, bits).Draw(t, "prefix")
		}
		for range rapid.IntRange(0, 5).Draw(t, "reals") {
			methods := []string{"dr", "nat", "tun"}
			if fullnat {
				methods = append(methods, "fullnat")
			}
			r := api.RealState{Real: api.Real{Addr: addr("rip", is6), Port: s.Port,
				Method: rapid.SampledFrom(methods).Draw(t, "method")}}
			if r.Method == "nat" || r.Method == "fullnat" {
				r.Port = port("rport")
			}
			if s.Mark != 0 && (r.Method == "dr" || r.Method == "tun" || rapid.Bool().Draw(t, "keepport")) {
				r.Port = 0 // each packet keeps its port
			}
			if s.Health != "" && r.Port == 0 && !strings.Contains(s.Health, "port =") {
				continue // a check needs a port
			}
			if r.Addr == s.VIP || slices.ContainsFunc(s.Reals, func(o api.RealState) bool { return o.Addr == r.Addr && o.Port == r.Port }) {
				continue
			}
			r.Weight = rapid.IntRange(0, MaxWeight).Draw(t, "weight")
			if rapid.Bool().Draw(t, "thresholds") {
				r.UpperThreshold = rapid.IntRange(1, MaxThreshold).Draw(t, "upper")
				r.LowerThreshold = rapid.IntRange(0, r.UpperThreshold).Draw(t, "lower")
			}
			s.Reals = append(s.Reals, r)
		}
		out = append(out, s)
	}
	return out
}

// TestEditRoundTrip: the rules -S writes of any table xvs accepts, restored
// with Edit after -C, give the same table, and -S writes the same rules.
func TestEditRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		state := genConfigState(t)
		text := Rules(state)
		cleared, err := Edit(running(t), &api.Request{Op: api.OpClear})
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := Edit(cleared, &api.Request{Op: api.OpRestore, Text: text})
		if err != nil {
			t.Fatalf("rules\n%s\nrefused: %v", text, err)
		}
		got := Services(cfg)
		if again := Rules(got); again != text {
			t.Fatalf("rules\n%s\nrestored as\n%s", text, again)
		}
		if g, w := normalize(got), normalize(state); !reflect.DeepEqual(g, w) {
			t.Fatalf("table\n%+v\nrestored as\n%+v", w, g)
		}
	})
}

// TestServices: a configuration as the API lists it.
func TestServices(t *testing.T) {
	cfg := running(t)
	next, err := Edit(cfg, &api.Request{Op: api.OpRestore, Text: "-A -u [2001:db8::100]:53 -s rr -p 60 -M 64\n" +
		"-a -u [2001:db8::100]:53 -r [2001:db8::11]:5353 -m -w 0 -x 10 -y 5\n-a -f 1 -r 198.18.0.22 -i\n"})
	if err != nil {
		t.Fatal(err)
	}
	zero, w1 := 0, 1
	want := []api.ServiceState{
		{Service: api.Service{ServiceID: api.ServiceID{Protocol: "udp", VIP: ip("2001:db8::100"), Port: 53}, Scheduler: "rr",
			Persistence: time.Minute, PersistPrefix: 64},
			Reals: []api.RealState{{Real: api.Real{Addr: ip("2001:db8::11"), Port: 5353, Method: "nat", Weight: &zero,
				UpperThreshold: 10, LowerThreshold: 5}}}},
		{Service: api.Service{ServiceID: api.ServiceID{Mark: 1}, Name: "web", Scheduler: "sh", Persistence: 300 * time.Second,
			Matches: []api.Match{{Protocol: "tcp", VIP: ip("198.18.0.200"), FromPort: 1000, ToPort: 2000}}},
			Reals: []api.RealState{{Real: api.Real{Addr: ip("198.18.0.22"), Method: "tun", Weight: &w1}, Weight: 1, ConfiguredWeight: 1}}},
	}
	if got := Services(next); !reflect.DeepEqual(got, want) {
		t.Errorf("Services:\n%s\nwant\n%s", fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want))
	}
	if got := ServiceID(&next.Services[0]); got != want[0].ServiceID {
		t.Errorf("ServiceID = %+v", got)
	}
}

// TestEditDaemons: --start-daemon and --stop-daemon change [sync]'s roles,
// with ipvsadm's refusals; the roles share one sync id and interface.
func TestEditDaemons(t *testing.T) {
	withSync := func(t *testing.T) *config.Config {
		cfg, err := config.Parse("xvs.toml", []byte(`[director]
interfaces = ["eth0", "eth1"]
[sync]
listen = "198.18.0.2:8848"
peers = ["198.18.0.3:8848"]
key = "0123456789abcdef"
node_id = 1
master = false
backup = false
`))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	type roles struct {
		master, backup bool
		id             uint8
		ifname         string
	}
	steps := []struct {
		line    string
		wantErr string
		want    roles
	}{
		{"--stop-daemon master", "No daemon is running", roles{}},
		{"--start-daemon master --syncid 5 --mcast-interface eth1", "", roles{master: true, id: 5, ifname: "eth1"}},
		{"--start-daemon master", "Daemon has already run", roles{master: true, id: 5, ifname: "eth1"}},
		{"--start-daemon backup --syncid 6", "the master sync daemon runs with syncid 5", roles{master: true, id: 5, ifname: "eth1"}},
		{"--start-daemon backup --mcast-interface eth0", "the master sync daemon runs on eth1", roles{master: true, id: 5, ifname: "eth1"}},
		{"--start-daemon backup", "", roles{master: true, backup: true, id: 5, ifname: "eth1"}},
		{"--stop-daemon master", "", roles{backup: true, id: 5, ifname: "eth1"}},
		{"--stop-daemon backup", "", roles{id: 5, ifname: "eth1"}},
		{"--stop-daemon backup", "No daemon is running", roles{id: 5, ifname: "eth1"}},
		// With no role running, ipvsadm's defaults: syncid 0, the route's interface.
		{"--start-daemon backup", "", roles{backup: true}},
		{"--start-daemon master --mcast-interface no/slash", "illegal multicast interface name specified", roles{backup: true}},
	}
	cfg := withSync(t)
	for _, st := range steps {
		c, err := Parse(strings.Fields(st.line))
		if err == nil {
			var next *config.Config
			if next, err = Edit(cfg, &c.Request); err == nil {
				cfg = next
			}
		}
		if st.wantErr == "" && err != nil || st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)) {
			t.Fatalf("%s: %v, want %q", st.line, err, st.wantErr)
		}
		s := cfg.Sync
		if got := (roles{s.Master, s.Backup, s.SyncID, s.Interface}); got != st.want {
			t.Fatalf("%s: roles %+v, want %+v", st.line, got, st.want)
		}
	}
	// What runs is kept in the configuration that save-config writes.
	again, err := config.Parse("saved.toml", config.Marshal(cfg))
	if err != nil || !again.Sync.Backup || again.Sync.Master {
		t.Fatalf("saved roles: %+v %v", again.Sync, err)
	}
	// Without [sync] there are no peers or key to sync with.
	c, _ := Parse([]string{"--start-daemon", "master"})
	if _, err := Edit(running(t), &c.Request); err == nil || !strings.Contains(err.Error(), "no [sync] in the configuration file") {
		t.Fatalf("--start-daemon without [sync]: %v", err)
	}
}

// TestSchedFlags: -b's flags as xvs keeps them: ipvsadm's generic flag-N
// as the scheduler's own names where it has them, else dropped; ipvsadm's
// order.
func TestSchedFlags(t *testing.T) {
	for _, tt := range []struct {
		scheduler string
		in, want  []string
	}{
		{"sh", []string{"flag-1"}, []string{"sh-fallback"}},
		{"sh", []string{"flag-2", "flag-1", "flag-3"}, []string{"sh-fallback", "sh-port"}},
		{"mh", []string{"flag-2", "mh-port"}, []string{"mh-port"}},
		{"sh", []string{"sh-port", "sh-fallback"}, []string{"sh-fallback", "sh-port"}},
		{"rr", []string{"flag-1", "flag-2", "flag-3"}, nil},
		{"wlc", nil, nil},
	} {
		if got := schedFlags(tt.scheduler, tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("schedFlags(%s, %q) = %q, want %q", tt.scheduler, tt.in, got, tt.want)
		}
	}
}
