package e2e

import (
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/internal/topo"
)

// trimRight drops trailing spaces of every line: ipvsadm pads its columns,
// and the comparison is about the layout, not the padding at line ends.
func trimRight(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// TestXvsadm drives xvsadm through ipvsadm's verbs against a running xvsd,
// with traffic in between, and compares the listings with ipvsadm's layout.
func TestXvsadm(t *testing.T) {
	lvs, err := topo.NewDR(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lvs.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	if err := lvs.StartRealServers(bin, 80, 5353); err != nil {
		t.Fatal(err)
	}
	dir, path, err := lvs.StartDirector(bin, t.TempDir(), "[director]\ninterfaces = [\"{{IF0}}\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("xvsd output:\n%s", dir.Output.String())
		}
	}()
	adm := func(args ...string) string {
		t.Helper()
		out, err := lvs.Xvsadm(bin, "", args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	configured := regexp.MustCompile(`(?m)^.* draining\n`)
	expect := func(got, want string) {
		t.Helper()
		got, want = configured.ReplaceAllString(got, ""), configured.ReplaceAllString(want, "")
		if trimRight(got) != trimRight(want) {
			t.Errorf("got:\n%s\nwant:\n%s", got, want)
		}
	}
	vip := "198.18.0.100:80"
	adm("-A", "-t", vip, "-s", "wrr")
	adm("-a", "-t", vip, "-r", "198.18.0.11:80", "-g", "-w", "1")
	adm("-a", "-t", vip, "-r", "198.18.0.12:80", "-g", "-w", "2")
	adm("-A", "-u", "198.18.0.100:5353", "-s", "rr", "-p", "60")
	adm("-a", "-u", "198.18.0.100:5353", "-r", "198.18.0.11:5353", "-g")
	expect(adm("-L", "-n"), `IP Virtual Server version 1.2.1 (size=1048576)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.18.0.100:80 wrr
  -> 198.18.0.11:80               Route   1      0          0
  -> 198.18.0.12:80               Route   2      0          0
UDP  198.18.0.100:5353 rr persistent 60
  -> 198.18.0.11:5353             Route   1      0          0
`)

	// Traffic through what xvsadm built: wrr 1:2.
	if err := lvs.WaitService(bin, vip, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	adm("-Z")
	adm("-E", "-t", vip, "-s", "wrr") // a fresh scheduler: the 30 below start a cycle
	r, err := lvs.RunClient(bin, "-mode", "http", "-addr", vip, "-n", "30")
	if err != nil || r.OK != 30 || r.Servers["rs1"] != 10 || r.Servers["rs2"] != 20 {
		t.Fatalf("30 connections over wrr 1:2: %+v %v", r, err)
	}
	stats := adm("-L", "-n", "--stats", "--exact")
	if !regexp.MustCompile(`(?m)^TCP  198\.18\.0\.100:80 +30 +\d+ +0 +\d+ +0$`).MatchString(stats) ||
		!regexp.MustCompile(`(?m)^  -> 198\.18\.0\.12:80 +20 `).MatchString(stats) {
		t.Errorf("--stats:\n%s", stats)
	}
	if !strings.HasPrefix(stats, "IP Virtual Server version 1.2.1 (size=1048576)\nProt LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n") {
		t.Errorf("--stats header:\n%s", stats)
	}
	conns := adm("-L", "-n", "-c")
	if !strings.HasPrefix(conns, "IPVS connection entries\npro expire state       source             virtual            destination\n") ||
		!regexp.MustCompile(`(?m)^TCP \d\d:\d\d  \S+ +198\.18\.0\.1:\d+ +198\.18\.0\.100:80 +198\.18\.0\.1[12]:80$`).MatchString(conns) {
		t.Errorf("-L -c:\n%s", conns)
	}
	if !strings.Contains(adm("-L", "-n", "--rate"), "CPS") {
		t.Error("--rate has no CPS column")
	}
	checkReport(t, dir, func() string { return adm("-L", "-n", "--stats") })

	// Persistence: the UDP service's client gets a template, counted as
	// rs1's PersistConn and listed among the connections as IPVS lists it.
	if r, err := lvs.RunClient(bin, "-mode", "udp", "-addr", "198.18.0.100:5353", "-n", "3"); err != nil || r.OK != 3 {
		t.Fatalf("3 UDP requests to the persistent service: %+v %v", r, err)
	}
	if pc := adm("-L", "-n", "--persistent-conn"); !regexp.MustCompile(`(?m)^  -> 198\.18\.0\.11:5353 +1 +1 +0 +1 +$`).MatchString(pc) {
		t.Errorf("--persistent-conn: rs1 should have PersistConn 1:\n%s", pc)
	}
	if c := adm("-L", "-n", "-c"); !regexp.MustCompile(`(?m)^UDP 0[01]:\d\d  NONE        198\.18\.0\.1:0 +198\.18\.0\.100:5353  198\.18\.0\.11:5353$`).MatchString(c) {
		t.Errorf("-L -c lists no persistence template:\n%s", c)
	}
	// -Z -u zeroes the UDP service alone; -Z of one that does not exist is
	// refused with ipvsadm's words and exit status.
	adm("-Z", "-u", "198.18.0.100:5353")
	stats = adm("-L", "-n", "--stats", "--exact")
	if !regexp.MustCompile(`(?m)^TCP  198\.18\.0\.100:80 +30 `).MatchString(stats) ||
		!regexp.MustCompile(`(?m)^UDP  198\.18\.0\.100:5353 +0 +0 +0 +0 +0$`).MatchString(stats) {
		t.Errorf("after -Z -u 198.18.0.100:5353 only UDP should be zero:\n%s", stats)
	}
	if _, err := lvs.Xvsadm(bin, "", "-Z", "-t", "198.18.0.100:81"); err == nil || !strings.Contains(err.Error(), "exit status 255: No such service") {
		t.Errorf("-Z of a missing service: %v", err)
	}
	// -Z in restored rules zeroes too.
	if _, err := lvs.Xvsadm(bin, "-Z -t 198.18.0.100:80\n", "-R"); err != nil {
		t.Fatal(err)
	}
	if stats = adm("-L", "-n", "--stats", "--exact"); !regexp.MustCompile(`(?m)^TCP  198\.18\.0\.100:80 +0 +0 +0 +0 +0$`).MatchString(stats) {
		t.Errorf("after -R of -Z -t 198.18.0.100:80:\n%s", stats)
	}

	adm("-e", "-t", vip, "-r", "198.18.0.12:80", "-g", "-w", "5", "-x", "1000", "-y", "500")
	adm("-d", "-u", "198.18.0.100:5353", "-r", "198.18.0.11:5353")
	adm("--set", "100", "60", "30")
	expect(adm("-L", "--timeout"), "Timeout (tcp tcpfin udp): 100 60 30\n")
	th := adm("-L", "-n", "--thresholds")
	if !regexp.MustCompile(`(?m)^  -> 198\.18\.0\.12:80 +1000 +500 `).MatchString(th) {
		t.Errorf("--thresholds:\n%s", th)
	}

	// -S | -R: clear everything, restore, and the table is the same.
	saved := adm("-S", "-n")
	if !strings.Contains(saved, "-A -t 198.18.0.100:80 -s wrr\n") || !strings.Contains(saved, "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 5 -x 1000 -y 500\n") {
		t.Errorf("-S:\n%s", saved)
	}
	// rs1, deleted from the UDP service, still carries the connection of
	// the UDP requests above: listed, marked as draining. It is no longer
	// configured, so -S leaves it out. (The comparisons below leave such
	// lines out: how long it drains is the connection's timeout.)
	before := adm("-L", "-n", "--thresholds")
	if !regexp.MustCompile(`(?m)^  -> 198\.18\.0\.11:5353 +0 +0 +0 +1 +draining$`).MatchString(before) {
		t.Errorf("a deleted real server with a connection is not listed as draining:\n%s", before)
	}
	adm("-C")
	if got := adm("-L", "-n"); strings.Contains(got, "TCP") {
		t.Errorf("after -C:\n%s", got)
	}
	if _, err := lvs.Xvsadm(bin, saved, "-R"); err != nil {
		t.Fatal(err)
	}
	expect(adm("-L", "-n", "--thresholds"), before)
	if again := adm("-S", "-n"); again != saved {
		t.Errorf("-S after -R differs:\n%s\nwant:\n%s", again, saved)
	}
	// A bad rules file changes nothing.
	if _, err := lvs.Xvsadm(bin, "-A -t 198.18.0.100:81 -s nosuch\n", "-R"); err == nil {
		t.Error("-R accepted an unknown scheduler")
	}
	expect(adm("-L", "-n", "--thresholds"), before)

	// The runtime state saved as TOML reads back, and a reload from it
	// keeps it.
	adm("save-config", path)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("save-config wrote %v, %v: want mode 0600", fi.Mode(), err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("save-config wrote an invalid file: %v", err)
	}
	if len(cfg.Services) != 2 || cfg.Timeouts.TCP != 100*time.Second {
		t.Errorf("saved configuration: %+v", cfg)
	}
	adm("reload")
	expect(adm("-L", "-n", "--thresholds"), before)

	st := adm("status")
	if !strings.Contains(st, lvs.DirectorIfs[0]) || !strings.Contains(st, "driver") {
		t.Errorf("status:\n%s", st)
	}
	if out := adm("-L", "-n", "--json"); !strings.Contains(out, `"scheduler": "wrr"`) {
		t.Errorf("--json:\n%s", out)
	}
	adm("-D", "-t", vip)
	if got := adm("-L", "-n"); strings.Contains(got, "198.18.0.100:80") {
		t.Errorf("after -D:\n%s", got)
	}
	if _, err := lvs.Xvsadm(bin, "", "-D", "-t", vip); err == nil || !strings.Contains(err.Error(), "exit status 255: No such service") {
		t.Errorf("deleting a missing service: %v", err)
	}

	// Every mode, groups of both families, persistence, thresholds,
	// FullNAT's local addresses and ports, TOA, the fast path opt-out and
	// a health check: -S | -C | -R gives the same rules, byte for byte,
	// from the live director.
	every, err := os.ReadFile("../control/ipvsadm/testdata/every-mode.rules")
	if err != nil {
		t.Fatal(err)
	}
	adm("-C")
	if _, err := lvs.Xvsadm(bin, string(every), "-R"); err != nil {
		t.Fatal(err)
	}
	saved = adm("-S", "-n")
	if saved != string(every) {
		t.Errorf("-S after -R of every mode:\n%s\nwant\n%s", saved, every)
	}
	adm("-C")
	if got := adm("-S", "-n"); got != "" {
		t.Errorf("-S after -C (groups go too, as fwmark services with ipvsadm -C):\n%s", got)
	}
	if _, err := lvs.Xvsadm(bin, saved, "-R"); err != nil {
		t.Fatal(err)
	}
	if again := adm("-S", "-n"); again != saved {
		t.Errorf("-S | -C | -R:\n%s\nwant\n%s", again, saved)
	}
	if l := adm("-L", "-n"); !strings.Contains(l, "\nFWM  1 sh (sh-port) persistent 300\n") || !strings.Contains(l, "\nFWM  2 IPv6 rr persistent 60 mask 48\n") ||
		!strings.Contains(l, "  -> 198.19.0.11:8080             FullNat 1      ") {
		t.Errorf("-L -n of every mode:\n%s", l)
	}
	_ = os.Remove(path + ".tmp")
}

// checkReport checks that what xvsd prints on SIGUSR1 begins with the same
// bytes as xvsadm -L -n --stats (stats) for the same state. The state is the
// same once the last packets of earlier connections have been counted, so
// it tries a few times.
func checkReport(t *testing.T, dir *topo.Proc, stats func() string) {
	t.Helper()
	var want, report string
	for range 3 {
		want = stats()
		mark := len(dir.Output.String())
		if err := dir.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for report = ""; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			out := dir.Output.String()[mark:]
			if i := strings.Index(out, "IP Virtual Server version"); i >= 0 && strings.Contains(out[i:], "\n  config: ") {
				report = out[i:]
				break
			}
		}
		if report == "" {
			t.Fatalf("no report after SIGUSR1; xvsd printed:\n%s", dir.Output.String()[mark:])
		}
		if strings.HasPrefix(report, want) && strings.HasPrefix(report[len(want):], "workers ") {
			return
		}
	}
	t.Errorf("SIGUSR1's report:\n%s\ndoes not begin with xvsadm -L -n --stats:\n%s", report, want)
}
