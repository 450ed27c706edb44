package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/internal/topo"
)

// reloadConfig is DR with wrr over rs1, rs2 at the given weights (-1 leaves
// the server out), and optionally a second service.
func reloadConfig(w1, w2 int, extra bool) string {
	var b strings.Builder
	b.WriteString("[director]\ninterfaces = [\"{{IF0}}\"]\n\n[[service]]\nvip = \"198.18.0.100\"\nport = 80\nprotocol = \"tcp\"\nscheduler = \"wrr\"\n")
	for i, w := range []int{w1, w2} {
		if w >= 0 {
			fmt.Fprintf(&b, "  [[service.real]]\n  address = \"198.18.0.1%d\"\n  weight = %d\n", i+1, w)
		}
	}
	if extra {
		b.WriteString("\n[[service]]\nvip = \"198.18.0.100\"\nport = 8081\nprotocol = \"tcp\"\n  [[service.real]]\n  address = \"198.18.0.11\"\n")
		b.WriteString("\n[[service]]\nvip = \"198.18.0.100\"\nport = 5353\nprotocol = \"udp\"\n  [[service.real]]\n  address = \"198.18.0.12\"\n")
	}
	return b.String()
}

// TestReloadWithoutDrops holds 500 established TCP connections open through
// the director while it applies 20 reloads that add, remove and re-weight
// real servers and services: no held connection breaks or moves, and new
// connections follow each new set of weights.
func TestReloadWithoutDrops(t *testing.T) {
	lvs, dir, path := startLab(t, topo.NewDR, reloadConfig(1, 1, false), 80)
	vip := topo.VIP.String() + ":80"
	const held = 500
	holder, err := lvs.Start(lvs.Client, bin.Echo, "client", "-mode", "hold", "-addr", vip,
		"-conns", fmt.Sprint(held), "-duration", "14s", "-interval", "500ms", "-timeout", "10s")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // let every held connection open

	steps := []struct {
		w1, w2 int
		extra  bool
		want   [2]int // new connections out of 8 to rs1, rs2
	}{
		{1, 1, false, [2]int{4, 4}},
		{3, 1, false, [2]int{6, 2}},
		{1, -1, false, [2]int{8, 0}}, // rs2 removed: its connections drain
		{0, 1, false, [2]int{0, 8}},  // rs1 quiescent
		{1, 1, true, [2]int{4, 4}},   // services added
	}
	for i := 0; i < 20; i++ {
		st := steps[(i+1)%len(steps)]
		content := strings.ReplaceAll(reloadConfig(st.w1, st.w2, st.extra), "{{IF0}}", lvs.DirectorIfs[0])
		if err := writeFile(path, content); err != nil {
			t.Fatal(err)
		}
		before := len(dir.Output.String())
		if err := dir.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if err := waitLog(dir, before, "configuration reloaded", 3*time.Second); err != nil {
			t.Fatal(err)
		}
		r, err := lvs.RunClient(bin, "-mode", "http", "-addr", vip, "-n", "8")
		if err != nil {
			t.Fatal(err)
		}
		if r.OK != 8 || r.Servers["rs1"] != st.want[0] || r.Servers["rs2"] != st.want[1] {
			t.Errorf("reload %d (weights %d/%d): new connections went %v (ok %d), want rs1=%d rs2=%d: %v",
				i+1, st.w1, st.w2, r.Servers, r.OK, st.want[0], st.want[1], r.Errors)
		}
		time.Sleep(400 * time.Millisecond)
	}
	if err := topo.WaitOutput(holder, "}", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	var rep topo.Report
	var hr struct {
		topo.Report
		Requests int `json:"requests"`
		Moved    int `json:"moved"`
	}
	out := strings.TrimSpace(holder.Output.String())
	if err := json.Unmarshal([]byte(out[strings.LastIndex(out, "\n")+1:]), &hr); err != nil {
		t.Fatalf("hold client output %q: %v", out, err)
	}
	rep = hr.Report
	t.Logf("held %d connections, %d requests over them, servers %v", rep.OK, hr.Requests, rep.Servers)
	if rep.OK != held || rep.Failed != 0 || hr.Moved != 0 {
		st, _ := lvs.Xvsadm(bin, "", "status")
		t.Logf("director status:\n%s", st)
		t.Errorf("held connections: %d intact, %d failed, %d moved; want all %d intact: %v", rep.OK, rep.Failed, hr.Moved, held, rep.Errors)
	}
	if hr.Requests < held*20 {
		t.Errorf("only %d requests over the held connections, want about %d", hr.Requests, held*28)
	}
}
