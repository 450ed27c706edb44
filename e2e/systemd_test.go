package e2e

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/internal/topo"
)

// oneInterface is a lab namespace with a veth pair and a configuration
// file for a director on one end, with no service.
func oneInterface(t *testing.T) (*topo.Lab, string, string, string) {
	t.Helper()
	lab, err := topo.NewLab(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	ns, err := lab.AddNS("d")
	if err != nil {
		t.Fatal(err)
	}
	ifname := lab.Name("a")
	if err := lab.Veth(ns, ifname, ns, lab.Name("b")); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "xvs.toml")
	if err := os.WriteFile(cfg, []byte("[director]\ninterfaces = [\""+ifname+"\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return lab, ns, ifname, cfg
}

// TestSystemdNotify runs xvsd as systemd runs a Type=notify service, with
// $NOTIFY_SOCKET and $JOURNAL_STREAM: READY=1 comes once the XDP program is
// attached, RELOADING=1 and READY=1 around SIGHUP, STOPPING=1 on SIGTERM;
// and its log lines carry no timestamp, which the journal adds.
func TestSystemdNotify(t *testing.T) {
	lab, ns, ifname, cfg := oneInterface(t)
	sock := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	next := func(want string) string {
		t.Helper()
		if err := c.SetReadDeadline(time.Now().Add(15 * time.Second)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		if got := string(buf[:n]); !strings.HasPrefix(got, want) {
			t.Fatalf("xvsd told systemd %q, want %q first", got, want)
		}
		return string(buf[:n])
	}
	d, err := lab.Start(ns, "env", "NOTIFY_SOCKET="+sock, "JOURNAL_STREAM=8:4242", bin.Xvsd, "-config", cfg, "-socket=", "-metrics=", "-watch=false")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("xvsd:\n%s", d.Output.String())
		}
	}()
	next("READY=1\nSTATUS=forwarding: 0 services\n")
	// Ready means attached: the steering program is on the interface.
	if out, err := lab.Output(ns, "ip", "link", "show", ifname); err != nil || !strings.Contains(out, "xdp") {
		t.Errorf("READY=1 before the XDP program was attached: %s %v", out, err)
	}
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if r := next("RELOADING=1\nMONOTONIC_USEC="); !regexp.MustCompile(`MONOTONIC_USEC=\d+\n$`).MatchString(r) {
		t.Errorf("reloading: %q", r)
	}
	next("READY=1\nSTATUS=reloaded")
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	next("STOPPING=1\n")
	if err := d.Stop(10 * time.Second); err != nil {
		t.Errorf("xvsd stopped with %v", err)
	}
	stamped := regexp.MustCompile(`^\d{4}-\d\d-\d\dT`)
	logs := 0
	sc := bufio.NewScanner(strings.NewReader(d.Output.String()))
	for sc.Scan() {
		if stamped.MatchString(sc.Text()) {
			t.Errorf("a timestamped line under the journal: %q", sc.Text())
		}
		if strings.HasPrefix(sc.Text(), "info\t") {
			logs++
		}
	}
	if logs == 0 {
		t.Errorf("no console log lines without timestamps:\n%s", d.Output.String())
	}
}

// unitSetting reads one setting of the xvsd.service the package installs.
func unitSetting(t *testing.T, key string) string {
	t.Helper()
	data, err := os.ReadFile("../internal/pkg/xvsd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return v
		}
	}
	t.Fatalf("xvsd.service has no %s", key)
	return ""
}

// TestUnitCapabilities starts xvsd with the capabilities xvsd.service
// grants (its bounding set) and a small locked-memory limit, as a unit
// without LimitMEMLOCK would have: it attaches and forwards. Without any
// one of them it cannot attach: the unit grants what is needed, and nothing
// more (CAP_SYS_ADMIN in particular is not).
func TestUnitCapabilities(t *testing.T) {
	for _, tool := range []string{"setpriv", "prlimit"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s (util-linux) missing: make test installs it", tool)
		}
	}
	caps := strings.Fields(unitSetting(t, "CapabilityBoundingSet"))
	if strings.Contains(unitSetting(t, "CapabilityBoundingSet"), "CAP_SYS_ADMIN") {
		t.Errorf("xvsd.service grants CAP_SYS_ADMIN")
	}
	if unitSetting(t, "LimitMEMLOCK") != "infinity" {
		t.Errorf("xvsd.service: LimitMEMLOCK=%s, want infinity", unitSetting(t, "LimitMEMLOCK"))
	}
	lab, ns, _, cfg := oneInterface(t)
	start := func(keep []string) (bool, string) {
		t.Helper()
		set := "-all"
		for _, c := range keep {
			set += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
		}
		// 64 KiB: systemd's locked-memory limit before v253, far below a
		// UMEM; CAP_IPC_LOCK lifts it.
		d, err := lab.Start(ns, "prlimit", "--memlock=65536:65536", "setpriv", "--bounding-set="+set, "--",
			bin.Xvsd, "-config", cfg, "-socket=", "-metrics=", "-watch=false")
		if err != nil {
			t.Fatal(err)
		}
		err = topo.WaitOutput(d, "xvsd: ready", 10*time.Second)
		_ = d.Stop(5 * time.Second)
		return err == nil, d.Output.String()
	}
	if ok, out := start(caps); !ok {
		t.Fatalf("xvsd does not start with xvsd.service's capabilities %v:\n%s", caps, out)
	}
	for i, c := range caps {
		without := append(append([]string{}, caps[:i]...), caps[i+1:]...)
		if ok, _ := start(without); ok {
			t.Errorf("xvsd starts without %s: xvsd.service need not grant it", c)
		}
	}
}
