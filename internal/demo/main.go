// Command demo is `make demo`: it builds the seed document's LVS-DR setup in
// network namespaces, starts real servers and the xvs director, sends real
// requests from a client, and shows what the director did.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/xvs-lb/xvs/internal/topo"
)

func main() {
	config := flag.String("config", "configs/demo.toml", "director configuration (its interface is replaced by the demo's)")
	requests := flag.Int("n", 20, "HTTP requests to send")
	flag.Parse()
	if err := run(*config, *requests); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("\n==> "+format+"\n", args...) }

func run(configPath string, requests int) error {
	raw, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "xvs-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	step("Building xvsd and the demo's real server / client (xvs-echo)")
	bin, err := topo.Build(tmp)
	if err != nil {
		return err
	}

	step("Building LVS-DR in network namespaces (seed section 4.1)")
	lvs, err := topo.NewDR(nil)
	if err != nil {
		return err
	}
	// Tear down on every exit path, Ctrl-C included.
	defer lvs.Close()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() { <-sigs; lvs.Close(); os.Exit(130) }()

	fmt.Printf(`    client   %-14s namespace %s
    director %-14s namespace %s  (VIP %s on %s)
    rs1      %-14s namespace %s  (VIP on lo, arp_ignore=1, arp_announce=2)
    rs2      %-14s namespace %s  (same)
    all four on one L2 segment: a bridge in namespace %s
`, topo.ClientIP, lvs.Client, topo.DirectorIP, lvs.Director, topo.VIP, lvs.DirectorIfs[0],
		topo.DRReals[0], lvs.Reals[0], topo.DRReals[1], lvs.Reals[1], lvs.Name("br"))

	step("Setting the real servers up (xvsadm realserver dr) and starting them: HTTP on :80 and UDP on :5353, each answering with its name")
	if err := lvs.StartRealServers(bin, 80, 5353); err != nil {
		return err
	}

	step("Starting the director: xvsd -config %s", configPath)
	cfg := strings.ReplaceAll(string(raw), `"xvsd0"`, `"{{IF0}}"`)
	dir, _, err := lvs.StartDirector(bin, tmp, cfg)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(dir.Output.String()), "\n") {
		fmt.Println("    " + line)
	}
	fmt.Println(`    An XDP program on the director's interface now steers frames for the VIP's
    service ports into AF_XDP sockets; everything else (ARP, ping) still goes to
    the kernel. For each new connection xvsd picks a real server (rr), records
    the connection, rewrites the destination MAC and sends the frame on. The
    real server answers the client directly: in DR, replies bypass the director.`)
	if err := lvs.WaitService(bin, topo.VIP.String()+":80", 15*time.Second); err != nil {
		return err
	}

	step("Client: %d HTTP requests to http://%s/, a new TCP connection each", requests, topo.VIP)
	r, err := lvs.RunClient(bin, "-mode", "http", "-addr", topo.VIP.String()+":80", "-n", fmt.Sprint(requests))
	if err != nil {
		return err
	}
	printReport(r)

	step("Client: one keep-alive connection, 10 requests: a connection stays on its real server")
	r, err = lvs.RunClient(bin, "-mode", "keepalive", "-addr", topo.VIP.String()+":80", "-n", "10", "-interval", "20ms")
	if err != nil {
		return err
	}
	printReport(r)

	step("Client: UDP to %s:5353 from 4 sockets (4 flows), 3 datagrams each", topo.VIP)
	udp := map[string]int{}
	for i := 0; i < 4; i++ {
		r, err := lvs.RunClient(bin, "-mode", "udp", "-addr", topo.VIP.String()+":5353", "-n", "3")
		if err != nil {
			return err
		}
		for k, v := range r.Servers {
			udp[k] += v
		}
	}
	printServers(udp)

	step("The director's counters: xvsadm -L -n --stats (ipvsadm's layout)")
	out, err := lvs.Xvsadm(bin, "", "-L", "-n", "--stats")
	if err != nil {
		return err
	}
	fmt.Print(indent(out))
	fmt.Println(`    InPkts are client->server packets the director forwarded; OutPkts stay 0 in
    DR because replies go from the real servers straight to the client.`)

	step("xvsadm -L -n: real servers, weights, active and inactive connections")
	if out, err = lvs.Xvsadm(bin, "", "-L", "-n"); err != nil {
		return err
	}
	fmt.Print(indent(out))

	step("xvsadm status: the data path")
	if out, err = lvs.Xvsadm(bin, "", "status"); err != nil {
		return err
	}
	fmt.Print(indent(out))
	fmt.Print(indent("The namespaces keep the kernel's default veth settings, so the client and the\n" +
		"real servers leave their TCP/UDP checksums for a NIC to finish (as containers and\n" +
		"VMs do): csum_completed counts the frames the director finished before forwarding.\n"))

	step("Prometheus metrics (curl http://127.0.0.1:9469/metrics in the director's namespace), a few lines")
	if out, err = lvs.Output(lvs.Director, "curl", "-sf", "http://127.0.0.1:9469/metrics"); err != nil {
		return err
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "xvs_real_connections_total") || strings.HasPrefix(line, "xvs_worker_rx_frames_total") ||
			strings.HasPrefix(line, "xvs_conntrack_entries") || strings.HasPrefix(line, "xvs_real_active_connections") {
			fmt.Println("    " + line)
		}
	}

	step("Tearing down: stopping xvsd (it detaches from the interface) and deleting the namespaces")
	if err := dir.Stop(5 * time.Second); err != nil {
		return fmt.Errorf("xvsd: %w", err)
	}
	if err := lvs.Close(); err != nil {
		return err
	}
	fmt.Println("    done")
	return nil
}

func printReport(r topo.Report) {
	fmt.Printf("    %d ok, %d failed", r.OK, r.Failed)
	if r.Mode == "keepalive" {
		fmt.Printf(", %d requests reused the connection", r.Reused)
	}
	fmt.Println()
	printServers(r.Servers)
	for _, e := range r.Errors {
		fmt.Println("    error:", e)
	}
}

func printServers(m map[string]int) {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("    %-4s answered %3d  %s\n", n, m[n], strings.Repeat("#", m[n]))
	}
}

func indent(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	return b.String()
}
