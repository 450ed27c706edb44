package e2e

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/internal/topo"
)

// TestSyncDaemon runs ipvsadm's sync daemon verbs against a live pair of
// directors whose [sync] starts with no role: the active one is started as
// master and the standby as backup, and the connections made through the
// active one appear in the standby's table; while the master is stopped
// none are sent (nor later: a master sends what is made while it runs); and
// a master with another sync id is filtered by the backup, which counts it.
func TestSyncDaemon(t *testing.T) {
	p, err := topo.NewPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	if err := p.SetupRealServers(bin); err != nil {
		t.Fatal(err)
	}
	if err := p.StartRealServers(bin, 8080, 5353); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	var dirs [2]*topo.Proc
	var sockets, files [2]string
	for i := range dirs {
		// No role runs until xvsadm starts one.
		cfg := strings.Replace(pairConfig(i), "node_id = ", "master = false\nbackup = false\nnode_id = ", 1)
		d, path, socket, err := p.StartDirectorIn(bin, tmp, cfg, p.Directors[i], p.Ifs[i][:])
		if err != nil {
			t.Fatal(err)
		}
		dirs[i], sockets[i], files[i] = d, socket, path
	}
	defer func() {
		if t.Failed() {
			for i, d := range dirs {
				t.Logf("director %d:\n%s", i+1, d.Output.String())
			}
		}
	}()
	adm := func(i int, args ...string) string {
		t.Helper()
		out, err := p.Output(p.Directors[i], append([]string{bin.Xvsadm, "--socket", sockets[i]}, args...)...)
		if err != nil {
			t.Fatalf("director %d: xvsadm %s: %v", i+1, strings.Join(args, " "), err)
		}
		return out
	}
	vip := topo.VIP.String() + ":80"
	if err := p.WaitService(bin, vip, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range dirs {
		if got := adm(i, "-L", "--daemon"); got != "" {
			t.Fatalf("director %d runs sync daemons before any was started:\n%s", i+1, got)
		}
	}
	// The backup first: its snapshot request finds no master, so the
	// standby's table starts empty.
	adm(1, "--start-daemon", "backup", "--syncid", "5", "--mcast-interface", p.Ifs[1][0])
	adm(0, "--start-daemon", "master", "--syncid", "5")
	for i, want := range []string{
		"master sync daemon (mcast=" + p.Ifs[0][0] + ", syncid=5)\n", // the interface that holds [sync]'s listen address
		"backup sync daemon (mcast=" + p.Ifs[1][0] + ", syncid=5)\n",
	} {
		if got := adm(i, "-L", "--daemon"); got != want {
			t.Errorf("director %d: -L --daemon:\n%s\nwant\n%s", i+1, got, want)
		}
	}
	standby := func() int { return strings.Count(adm(1, "-L", "-n", "-c"), " "+vip+" ") }
	waitStandby := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for standby() < want && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if got := standby(); got != want {
			t.Fatalf("the standby has %d connections, want %d:\n%s", got, want, adm(1, "-L", "-n", "-c"))
		}
	}
	connect := func(n int) {
		t.Helper()
		if r, err := p.RunClient(bin, "-mode", "http", "-addr", vip, "-n", strconv.Itoa(n)); err != nil || r.OK != n {
			t.Fatalf("%d connections: %+v %v", n, r, err)
		}
	}
	connect(5)
	waitStandby(5)

	// Stopped, the master sends nothing; started again, only what is made
	// from then on.
	adm(0, "--stop-daemon", "master")
	if got := adm(0, "-L", "--daemon"); got != "" {
		t.Fatalf("-L --daemon after --stop-daemon master: %q", got)
	}
	connect(7)
	adm(0, "--start-daemon", "master", "--syncid", "5")
	connect(3)
	waitStandby(8)

	// Another sync id: the backup takes none of it, and counts it.
	adm(0, "--stop-daemon", "master")
	adm(0, "--start-daemon", "master", "--syncid", "6")
	connect(4)
	deadline := time.Now().Add(10 * time.Second)
	var backup api.SyncDaemonState
	for backup.WrongSyncID == 0 && time.Now().Before(deadline) {
		var resp api.Response
		if err := json.Unmarshal([]byte(adm(1, "-L", "--daemon", "--json")), &resp); err != nil || len(resp.Daemons) != 1 {
			t.Fatalf("-L --daemon --json: %+v %v", resp, err)
		}
		backup = resp.Daemons[0]
		time.Sleep(50 * time.Millisecond)
	}
	if backup.WrongSyncID == 0 {
		t.Fatalf("the backup filtered nothing from a master with syncid 6: %+v", backup)
	}
	// The metrics count it too.
	if out, err := p.Output(p.Directors[1], "curl", "-sf", "http://127.0.0.1:9469/metrics"); err != nil {
		t.Errorf("the backup's metrics: %v", err)
	} else if m := regexp.MustCompile(`(?m)^xvs_sync_ignored_entries_total\{reason="wrong_syncid"\} ([0-9]+)$`).FindStringSubmatch(out); m == nil || m[1] == "0" {
		t.Errorf("the backup's metrics do not count the entries of another sync id: %q", m)
	}
	if got := standby(); got != 8 {
		t.Errorf("the standby installed connections of another sync id: %d, want 8", got)
	}

	// The roles are kept in the configuration save-config writes.
	adm(1, "save-config", files[1]+".saved")
	saved, err := os.ReadFile(files[1] + ".saved")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"master = false\n", "backup = true\n", "sync_id = 5\n", "interface = \"" + p.Ifs[1][0] + "\"\n"} {
		if !strings.Contains(string(saved), want) {
			t.Errorf("save-config lost %q:\n%s", want, saved)
		}
	}
}
