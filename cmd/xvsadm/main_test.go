package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/control/ipvsadm"
	"github.com/xvs-lb/xvs/internal/version"
)

// With runMainEnv set, the test binary is xvsadm: the tests run it as a
// separate process, with its own arguments, standard input and exit status.
const runMainEnv = "XVSADM_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if args := os.Getenv(runMainEnv); args != "" {
		os.Args = os.Args[:1]
		if err := json.Unmarshal([]byte(args), &os.Args); err != nil {
			panic(err)
		}
		main()
	}
	os.Exit(m.Run())
}

// fakeXVSD is xvsd's API over a running configuration changed with
// ipvsadm.Edit, the function xvsd's own handler changes it with, and listed
// with ipvsadm.Services as xvsd lists it (plus made-up counters).
type fakeXVSD struct {
	mu    sync.Mutex
	cfg   *config.Config
	ops   []api.Op
	saved string
}

// fakeConfig is what the fake starts with: a group from the file.
const fakeConfig = `[director]
interfaces = ["xvs0"]

[[group]]
name = "web"
mark = 1
scheduler = "sh"
sched_flags = ["sh-port"]
persistence = 300
match = [ { vip = "198.18.0.200", ports = "1000-2000", protocol = "tcp" } ]
`

func newFake(t *testing.T) *fakeXVSD { return newFakeWith(t, fakeConfig) }

func newFakeWith(t *testing.T, text string) *fakeXVSD {
	t.Helper()
	cfg, err := config.Parse("fake.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return &fakeXVSD{cfg: cfg}
}

func (f *fakeXVSD) Handle(ctx context.Context, req *api.Request) *api.Response {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, req.Op)
	fail := func(err error) *api.Response { return &api.Response{Error: err.Error()} }
	switch req.Op {
	case api.OpList:
		out := []api.ServiceState{}
		for _, s := range ipvsadm.Services(f.cfg) {
			if req.Filter == nil || s.ServiceID == *req.Filter {
				// Counters, so that --stats has something to show.
				s.Stats = api.Counters{Conns: 7, InPkts: 150_000_000, OutPkts: 10, InBytes: 2_000_000_000, OutBytes: 99}
				out = append(out, s)
			}
		}
		if req.Filter != nil && len(out) == 0 {
			return fail(ipvsadm.ErrNoService)
		}
		return &api.Response{Services: out, Capacity: 4096}
	case api.OpConns:
		// A table larger than one answer carries: cut, and said so.
		return &api.Response{ConnsTotal: 150_000, Conns: []api.Conn{
			{Protocol: "tcp", Client: netip.MustParseAddrPort("203.0.113.5:40000"), Virtual: netip.MustParseAddrPort("198.18.0.100:80"),
				Real: netip.MustParseAddrPort("198.18.0.11:80"), State: "ESTABLISHED", ExpiresIn: time.Minute},
			{Protocol: "tcp", Client: netip.MustParseAddrPort("203.0.113.0:0"), Virtual: netip.MustParseAddrPort("198.18.0.100:80"),
				Real: netip.MustParseAddrPort("198.18.0.11:80"), State: "NONE", ExpiresIn: time.Minute, Template: true},
		}}
	case api.OpGetTimeouts:
		t := f.cfg.Timeouts
		return &api.Response{Timeouts: &api.Timeouts{TCP: t.TCP, TCPFin: t.TCPFin, UDP: t.UDP}}
	case api.OpStatus:
		return &api.Response{Status: &api.Status{Workers: 2, Connections: 1, Capacity: 4096, RxFrames: 10, TxFrames: 9,
			Drops:      map[string]uint64{"no_service": 3},
			Interfaces: []api.Interface{{Name: "xvs0", XDPMode: "native", Queues: 2, ZeroCopy: true}}}}
	case api.OpHealth:
		return &api.Response{Health: []api.HealthState{{Service: ipvsadm.ServiceID(&f.cfg.Services[0]),
			Real: netip.MustParseAddrPort("198.18.0.11:80"), Check: "tcp", Healthy: true}}}
	case api.OpReload:
		return &api.Response{}
	case api.OpSaveConfig:
		f.saved = req.Path
		return &api.Response{}
	case api.OpDaemons:
		var ds []api.SyncDaemonState
		if s := f.cfg.Sync; s != nil {
			for _, r := range []struct {
				on   bool
				role string
			}{{s.Master, api.RoleMaster}, {s.Backup, api.RoleBackup}} {
				if r.on {
					ds = append(ds, api.SyncDaemonState{Role: r.role, Interface: s.Interface, SyncID: int(s.SyncID)})
				}
			}
		}
		return &api.Response{Daemons: ds}
	}
	next, err := ipvsadm.Edit(f.cfg, req)
	if err != nil {
		return fail(err)
	}
	f.cfg = next
	return &api.Response{}
}

func (f *fakeXVSD) takeOps() []api.Op {
	f.mu.Lock()
	defer f.mu.Unlock()
	ops := f.ops
	f.ops = nil
	return ops
}

// xvsadm runs the command line args against the socket; stdin may be "".
func xvsadm(t *testing.T, socket, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	argv, err := json.Marshal(append([]string{"xvsadm"}, args...))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), runMainEnv+"="+string(argv), SocketEnv+"="+socket, "GORACE=atexit_sleep_ms=0")
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("xvsadm %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// ok runs a command that must succeed and returns its output.
func ok(t *testing.T, socket, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := xvsadm(t, socket, stdin, args...)
	if code != 0 || errOut != "" {
		t.Fatalf("xvsadm %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "xvsd.sock")
	fake := newFake(t)
	srv, err := api.Listen(socket, -1, fake, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	for _, args := range [][]string{
		{"-A", "-t", "198.18.0.100:80", "-s", "rr"},
		{"-a", "-t", "198.18.0.100:80", "-r", "198.18.0.12:80", "-g", "-w", "1"},
		{"-a", "-t", "198.18.0.100:80", "-r", "198.18.0.11", "-w", "2"},
		{"-a", "-f", "1", "-r", "198.18.0.21:8080", "-m", "-x", "100"},
		{"--set", "1000", "100", "200"},
	} {
		if out := ok(t, socket, "", args...); out != "" {
			t.Errorf("%v printed %q", args, out)
		}
	}
	if ops := fake.takeOps(); len(ops) != 5 || ops[0] != api.OpAddService || ops[4] != api.OpSetTimeouts {
		t.Errorf("xvsd saw %v", ops)
	}

	list := "IP Virtual Server version 1.2.1 (size=4096)\n" +
		"Prot LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
		"TCP  198.18.0.100:80 rr\n" +
		"  -> 198.18.0.11:80               Route   2      0          0         \n" +
		"  -> 198.18.0.12:80               Route   1      0          0         \n" +
		"FWM  1 sh (sh-port) persistent 300\n" +
		"  -> 198.18.0.21:8080             Masq    1      0          0         \n"
	if got := ok(t, socket, "", "-L", "-n"); got != list {
		t.Errorf("-L -n:\n%s\nwant\n%s", got, list)
	}
	if got := ok(t, socket, ""); got != list {
		t.Errorf("no arguments:\n%s\nwant\n%s", got, list)
	}

	stats := "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n" +
		"  -> RemoteAddress:Port\n" +
		"FWM  1                                   7  150000K       10    2000M       99\n" +
		"  -> 198.18.0.21:8080                    0        0        0        0        0\n"
	if got := ok(t, socket, "", "-Ln", "-f", "1", "--stats"); got != stats {
		t.Errorf("-L -n --stats for one service:\n%s\nwant\n%s", got, stats)
	}
	if got := ok(t, socket, "", "-L", "--timeout"); got != "Timeout (tcp tcpfin udp): 1000 100 200\n" {
		t.Errorf("-L --timeout: %q", got)
	}

	rules := "-A -t 198.18.0.100:80 -s rr\n" +
		"-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 2\n" +
		"-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n" +
		"-A -f 1 -s sh -p 300 -b sh-port --name web --match tcp:198.18.0.200:1000-2000\n" +
		"-a -f 1 -r 198.18.0.21:8080 -m -w 1 -x 100\n"
	if got := ok(t, socket, "", "-S", "-n"); got != rules {
		t.Errorf("-S -n:\n%s\nwant\n%s", got, rules)
	}

	// JSON carries the same table.
	var resp api.Response
	if err := json.Unmarshal([]byte(ok(t, socket, "", "-L", "-n", "--json")), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Services) != 2 || resp.Capacity != 4096 || ipvsadm.Rules(resp.Services) != rules {
		t.Errorf("--json: %+v", resp)
	}

	// -C, then -R from standard input in one request: -C takes the group
	// too, as ipvsadm -C takes fwmark services, and -R brings it back.
	ok(t, socket, "", "-C")
	if got := ok(t, socket, "", "-S"); got != "" {
		t.Errorf("-S after -C: %q", got)
	}
	fake.takeOps()
	ok(t, socket, "# from -S\n"+rules, "-R")
	if ops := fake.takeOps(); len(ops) != 1 || ops[0] != api.OpRestore {
		t.Errorf("-R sent %v, want one restore", ops)
	}
	if got := ok(t, socket, "", "--save"); got != rules {
		t.Errorf("-S after -R:\n%s\nwant\n%s", got, rules)
	}
	tcpRules := rules
	// A bad rules file is refused before xvsd sees it.
	fake.takeOps()
	_, errOut, code := xvsadm(t, socket, "-A -t 198.18.0.101:80\n-a -t 198.18.0.101:80 -r db1\n", "-R")
	if code != 2 || errOut != "line 2: illegal real server address[:port] specified: `db1' is not a numeric address (xvsadm resolves no host names)\n" {
		t.Errorf("-R with a bad line: exit %d, %q", code, errOut)
	}
	if ops := fake.takeOps(); len(ops) != 0 {
		t.Errorf("a bad rules file reached xvsd: %v", ops)
	}
	// One that xvsd refuses changes nothing.
	_, errOut, code = xvsadm(t, socket, "-A -t 198.18.0.101:80\n-A -t 198.18.0.100:80\n", "-R")
	if code != 255 || errOut != "line 2: Service already exists\n" {
		t.Errorf("-R refused by xvsd: exit %d, %q", code, errOut)
	}
	if got := ok(t, socket, "", "-S"); got != tcpRules {
		t.Errorf("a refused restore changed the table:\n%s", got)
	}

	// Errors and exit statuses.
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		// As ipvsadm: libipvs's words alone and 255 for a refused
		// change, ipvsadm's words alone and 2 for a bad command line.
		{[]string{"-a", "-t", "198.18.0.100:80", "-r", "198.18.0.11"}, 255, "Destination already exists\n"},
		{[]string{"-A", "-t", "198.18.0.100:80"}, 255, "Service already exists\n"},
		{[]string{"-D", "-t", "198.18.0.200:80"}, 255, "No such service\n"},
		{[]string{"-Z", "-t", "198.18.0.200:80"}, 255, "No such service\n"},
		{[]string{"-e", "-t", "198.18.0.100:80", "-r", "198.18.0.99"}, 255, "No such destination\n"},
		{[]string{"-a", "-t", "198.18.0.201:80", "-r", "198.18.0.99"}, 255, "Service not defined\n"},
		{[]string{"-A", "-t", "host:80"}, 2, "illegal virtual server address[:port] specified: `host' is not a numeric address (xvsadm resolves no host names)\n"},
		{[]string{"-A"}, 2, "You need to supply the 'service-address' option for the 'add-service' command\n"},
		{[]string{"--bogus"}, 2, "invalid option `--bogus'\n"},
		{[]string{"-A", "-6", "-f", "1"}, 2, "-6 used before -f\n"},
		{[]string{"-n", "-L"}, 255, "the command (-A, -a, -L, ...) must come first, as in ipvsadm: `-n' is not a command\nTry `xvsadm -h' or 'xvsadm --help' for more information.\n"},
		{[]string{"--socket"}, 2, "xvsadm: option `--socket' requires an argument\n"},
	} {
		out, errOut, code := xvsadm(t, socket, "", tt.args...)
		if code != tt.code || errOut != tt.stderr || out != "" {
			t.Errorf("xvsadm %v: exit %d, stdout %q, stderr %q; want exit %d, %q", tt.args, code, out, errOut, tt.code, tt.stderr)
		}
	}

	// A cut connection listing says so, on standard error, and the
	// listing itself stays ipvsadm's.
	out, errOut, code := xvsadm(t, socket, "", "-L", "-n", "-c")
	if code != 0 || out != "IPVS connection entries\npro expire state       source             virtual            destination\n"+
		"TCP 01:00  ESTABLISHED 203.0.113.5:40000  198.18.0.100:80    198.18.0.11:80\n"+
		"TCP 01:00  NONE        203.0.113.0:0      198.18.0.100:80    198.18.0.11:80\n" ||
		errOut != "xvsadm: listing cut: 2 of 150000 connection entries shown (xvsd sends at most 100000; name a service to narrow it)\n" {
		t.Errorf("-L -n -c of a cut table: exit %d\n%s\nstderr %q", code, out, errOut)
	}

	// xvs's own commands.
	status := "workers 2, connections 1 (capacity 4096), rx 10 frames, tx 9 frames\n" +
		"  interface xvs0             xdp native   queues 2  zero-copy\n" +
		"  drops: no_service=3\n" +
		"  csum_completed: 0 (partial TCP/UDP checksums, left to a NIC by their sender, completed)\n"
	if got := ok(t, socket, "", "status"); got != status {
		t.Errorf("status:\n%s\nwant\n%s", got, status)
	}
	if got := ok(t, socket, "", "status", "--json"); !strings.Contains(got, `"zerocopy": true`) {
		t.Errorf("status --json:\n%s", got)
	}
	if got := ok(t, socket, "", "health"); !strings.Contains(got, "TCP  198.18.0.100:80              198.18.0.11:80               tcp    up") {
		t.Errorf("health:\n%s", got)
	}
	ok(t, socket, "", "reload")
	ok(t, socket, "", "save-config", "saved.toml")
	cwd, _ := os.Getwd()
	if want := filepath.Join(cwd, "saved.toml"); fake.saved != want {
		t.Errorf("save-config sent %q, want the absolute %q", fake.saved, want)
	}
	if got := ok(t, socket, "", "-h"); !strings.HasPrefix(got, "xvsadm ") || !strings.Contains(got, "Usage:\n") {
		t.Errorf("-h:\n%s", got)
	}
	// -v names xvs's own version as well as whose syntax this is.
	want := fmt.Sprintf("xvsadm %s (xvs %[1]s; ipvsadm v1.31 syntax and layouts, IPVS v1.2.1)\n", version.String())
	for _, v := range []string{"-v", "--version"} {
		if got := ok(t, socket, "", v); got != want {
			t.Errorf("%s: %q, want %q", v, got, want)
		}
	}

	// --socket wins over the environment.
	if got := ok(t, filepath.Join(dir, "nothing.sock"), "", "--socket", socket, "-S"); got != tcpRules {
		t.Errorf("--socket: %q", got)
	}
	if got := ok(t, filepath.Join(dir, "nothing.sock"), "", "-S", "--socket="+socket); got != tcpRules {
		t.Errorf("--socket=: %q", got)
	}
	// No xvsd.
	_, errOut, code = xvsadm(t, filepath.Join(dir, "nothing.sock"), "", "-L", "-n")
	if code != 2 || !strings.HasPrefix(errOut, "xvsadm: connecting to xvsd at ") {
		t.Errorf("without xvsd: exit %d, %q", code, errOut)
	}
}

func TestSocketArg(t *testing.T) {
	t.Setenv(SocketEnv, "")
	tests := []struct {
		args   []string
		socket string
		rest   []string
	}{
		{nil, api.DefaultSocket, []string{}},
		{[]string{"-L", "-n"}, api.DefaultSocket, []string{"-L", "-n"}},
		{[]string{"--socket", "/s", "-L"}, "/s", []string{"-L"}},
		{[]string{"-L", "--socket=/s"}, "/s", []string{"-L"}},
		{[]string{"-L", "--", "--socket=/s"}, api.DefaultSocket, []string{"-L", "--", "--socket=/s"}},
	}
	for _, tt := range tests {
		socket, rest, err := socketArg(tt.args)
		if err != nil || socket != tt.socket || strings.Join(rest, " ") != strings.Join(tt.rest, " ") {
			t.Errorf("socketArg(%q) = %q, %q, %v", tt.args, socket, rest, err)
		}
	}
	t.Setenv(SocketEnv, "/env.sock")
	if socket, _, _ := socketArg([]string{"-L"}); socket != "/env.sock" {
		t.Errorf("$%s ignored: %q", SocketEnv, socket)
	}
	if _, _, err := socketArg([]string{"--socket="}); err == nil {
		t.Error("empty --socket= accepted")
	}
}

func TestReadRules(t *testing.T) {
	big := strings.Repeat("#\n", api.MaxRequestSize/2)
	if _, err := readRules(strings.NewReader(big)); err == nil {
		t.Error("rules larger than a request accepted")
	}
	if got, err := readRules(strings.NewReader("-C\n")); err != nil || got != "-C\n" {
		t.Errorf("readRules: %q, %v", got, err)
	}
}

// TestSyncDaemons: ipvsadm's sync daemon verbs start and stop [sync]'s
// roles (through ipvsadm.Edit, as in xvsd) and -L --daemon lists them in
// ipvsadm's layout; as ipvsadm, refusals print libipvs's words alone and
// exit 255, a bad command line ipvsadm's words alone and exit 2.
func TestSyncDaemons(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "xvsd.sock")
	fake := newFakeWith(t, `[director]
interfaces = ["eth0", "eth1"]
[sync]
listen = "198.18.0.2:8848"
peers = ["198.18.0.3:8848"]
key = "0123456789abcdef"
node_id = 1
master = false
backup = false
`)
	srv, err := api.Listen(socket, -1, fake, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if got := ok(t, socket, "", "-L", "--daemon"); got != "" {
		t.Errorf("no daemon: -L --daemon printed %q", got)
	}
	ok(t, socket, "", "--start-daemon", "master", "--mcast-interface", "eth1", "--syncid", "3")
	ok(t, socket, "", "--start-daemon", "backup")
	want := "master sync daemon (mcast=eth1, syncid=3)\nbackup sync daemon (mcast=eth1, syncid=3)\n"
	if got := ok(t, socket, "", "-L", "--daemon"); got != want {
		t.Errorf("-L --daemon:\n%s\nwant\n%s", got, want)
	}
	if _, errOut, code := xvsadm(t, socket, "", "--start-daemon", "master"); code != exitRefused || errOut != "Daemon has already run\n" {
		t.Errorf("second master: exit %d, %q", code, errOut)
	}
	ok(t, socket, "", "--stop-daemon", "master")
	if got := ok(t, socket, "", "-L", "--daemon"); got != "backup sync daemon (mcast=eth1, syncid=3)\n" {
		t.Errorf("after --stop-daemon master: %q", got)
	}
	if _, errOut, code := xvsadm(t, socket, "", "--stop-daemon", "master"); code != exitRefused || errOut != "No daemon is running\n" {
		t.Errorf("stopping a stopped master: exit %d, %q", code, errOut)
	}
	if _, errOut, code := xvsadm(t, socket, "", "--start-daemon", "primary"); code != exitUsage || errOut != "illegal start-daemon parameter specified\n" {
		t.Errorf("--start-daemon primary: exit %d, %q", code, errOut)
	}
	if _, errOut, code := xvsadm(t, socket, "", "--syncid", "3", "--start-daemon", "master"); code != exitRefused ||
		errOut != "the command (-A, -a, -L, ...) must come first, as in ipvsadm: `--syncid' is not a command\nTry `xvsadm -h' or 'xvsadm --help' for more information.\n" {
		t.Errorf("--syncid before --start-daemon: exit %d, %q", code, errOut)
	}
}

// TestImportKeepalived: import-keepalived writes the configuration to
// standard output or -o, reports what has no equivalent on standard error
// with its line, and exits non-zero only for a syntax error.
func TestImportKeepalived(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(good, []byte("virtual_server 198.18.0.100 80 {\n  lb_kind DR\n  sorry_server 198.18.0.99 80\n  real_server 198.18.0.11 80 {\n    weight 2\n  }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := xvsadm(t, "/nonexistent", "", "import-keepalived", "-interface", "eth3", good)
	if code != exitOK || !strings.Contains(out, `vip = "198.18.0.100"`) || !strings.Contains(out, `interfaces = ["eth3"]`) ||
		errOut != good+":3: sorry_server: not supported (xvs has no sorry server: a service whose real servers are all down takes no connections); ignored\n" {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	saved := filepath.Join(dir, "xvs.toml")
	if out, _, code := xvsadm(t, "/nonexistent", "", "import-keepalived", "-o", saved, good); code != exitOK || out != "" {
		t.Errorf("-o: exit %d, stdout %q", code, out)
	}
	if _, err := config.Load(saved); err != nil {
		t.Errorf("-o wrote a configuration xvsd refuses: %v", err)
	}
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("virtual_server 198.18.0.100 80 {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := xvsadm(t, "/nonexistent", "", "import-keepalived", bad); code != exitUsage || !strings.Contains(errOut, "bad.conf:1: the { of virtual_server is never closed") {
		t.Errorf("syntax error: exit %d, %q", code, errOut)
	}
	if _, _, code := xvsadm(t, "/nonexistent", "", "import-keepalived"); code != exitUsage {
		t.Errorf("no file: exit %d", code)
	}
}

// TestManual: xvsadm(8) documents every option of the option table the
// command line is parsed with, every command of xvs's, and every flag of
// the local commands; an undocumented one fails.
func TestManual(t *testing.T) {
	var page bytes.Buffer
	if code := manpageMain(nil, &page, io.Discard); code != exitOK {
		t.Fatalf("manpage: exit %d", code)
	}
	roff := func(s string) string { return strings.ReplaceAll(s, "-", `\-`) }
	for _, o := range ipvsadm.Options() {
		if !strings.Contains(page.String(), ".B "+roff(optionTag(o))+"\n") {
			t.Errorf("xvsadm.8 does not document %s", optionTag(o))
		}
	}
	for _, c := range ipvsadm.Commands() {
		if c.Doc == "" || !strings.Contains(page.String(), ".B "+roff(c.Name)) {
			t.Errorf("xvsadm.8 does not document the command %s", c.Name)
		}
	}
	for _, c := range localCommands() {
		if c.doc == "" || !strings.Contains(page.String(), ".B "+roff(c.name)) {
			t.Errorf("xvsadm.8 does not document the command %s", c.name)
		}
		if c.flags == nil {
			continue
		}
		c.flags(io.Discard).VisitAll(func(f *flag.Flag) {
			if strings.TrimSpace(f.Usage) == "" || !strings.Contains(page.String(), ".B "+roff("-"+f.Name)) {
				t.Errorf("xvsadm.8 does not document %s -%s", c.name, f.Name)
			}
		})
	}
}

// TestCompletion runs the bash completion against a stand-in xvsadm that
// lists two services: commands, options, daemon roles and the running
// services complete.
func TestCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	var script bytes.Buffer
	if code := completionMain([]string{"bash"}, &script, io.Discard); code != exitOK {
		t.Fatalf("completion: exit %d", code)
	}
	for _, o := range ipvsadm.Options() {
		if o.Unsupported == "" && o.Long != "" && !strings.Contains(script.String()+" ", "--"+o.Long+" ") {
			t.Errorf("the completion lacks --%s", o.Long)
		}
	}
	comp := filepath.Join(dir, "xvsadm.bash")
	fake := filepath.Join(dir, "fake-xvsadm")
	if err := os.WriteFile(comp, script.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nprintf '%s\\n' '-A -t 198.18.0.100:80 -s rr' '-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1' '-A -u 198.18.0.100:53 -s wlc'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		words []string
		want  string
	}{
		{[]string{"st"}, "status"},
		{[]string{"imp"}, "import-keepalived"},
		{[]string{"-a", "-t", ""}, "198.18.0.100:80"},
		{[]string{"-L", "-u", ""}, "198.18.0.100:53"},
		{[]string{"--start-daemon", ""}, "master backup"},
		{[]string{"-A", "-t", "198.18.0.100:80", "-s", "w"}, "wrr wlc"},
		{[]string{"--sta"}, "--start-daemon --stats"},
		{[]string{"realserver", ""}, "dr tun nat"},
		{[]string{"import-keepalived", "-con"}, "-config-id"},
	} {
		words := append([]string{fake}, tt.words...)
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+w+"'")
		}
		cmd := exec.Command(bash, "--norc", "-c", fmt.Sprintf(". %s; COMP_WORDS=(%s); COMP_CWORD=%d; _xvsadm; echo \"${COMPREPLY[*]}\"", comp, strings.Join(quoted, " "), len(words)-1))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", tt.words, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tt.want {
			t.Errorf("completing %q: %q, want %q", tt.words, got, tt.want)
		}
	}
}
