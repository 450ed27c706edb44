package topo

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Binaries are the programs a lab runs: the director and the echo
// server/client.
type Binaries struct {
	Xvsd, Echo, Xvsadm, Pktgen string
}

// Build compiles xvsd, xvsadm, xvs-echo and xvs-pktgen into dir.
func Build(dir string) (Binaries, error) {
	root, err := moduleRoot()
	if err != nil {
		return Binaries{}, err
	}
	b := Binaries{Xvsd: filepath.Join(dir, "xvsd"), Echo: filepath.Join(dir, "xvs-echo"), Xvsadm: filepath.Join(dir, "xvsadm"), Pktgen: filepath.Join(dir, "xvs-pktgen")}
	for out, pkg := range map[string]string{b.Xvsd: "./cmd/xvsd", b.Echo: "./cmd/xvs-echo", b.Xvsadm: "./cmd/xvsadm", b.Pktgen: "./cmd/xvs-pktgen"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = root
		// Pure Go: xvsd drops capabilities on every thread, which needs a
		// binary without cgo.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return Binaries{}, fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
		}
	}
	return b, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the xvs module")
	}
	return filepath.Dir(mod), nil
}

// StartRealServers sets the real servers up (SetupRealServers) and starts
// xvs-echo in every real server's namespace, named
// rs1, rs2, ..., serving HTTP on httpPort and UDP on udpPort (both address
// families), with extra arguments to `xvs-echo serve` (e.g. -toa).
func (t *LVS) StartRealServers(bin Binaries, httpPort, udpPort int, extra ...string) error {
	if err := t.SetupRealServers(bin); err != nil {
		return err
	}
	for i := range t.Reals {
		name := fmt.Sprintf("rs%d", i+1)
		args := append([]string{bin.Echo, "serve", "-name", name,
			"-http", fmt.Sprintf(":%d", httpPort), "-udp", fmt.Sprintf(":%d", udpPort)}, extra...)
		p, err := t.StartRealServer(i, args...)
		if err != nil {
			return err
		}
		t.RealProcs = append(t.RealProcs, p)
	}
	return nil
}

// StartRealServer starts `args` (an xvs-echo serve command line) in real
// server i's namespace and waits until it serves.
func (t *LVS) StartRealServer(i int, args ...string) (*Proc, error) {
	p, err := t.Start(t.Reals[i], args...)
	if err != nil {
		return nil, err
	}
	if err := WaitOutput(p, "serving", 5*time.Second); err != nil {
		return nil, fmt.Errorf("rs%d: %w", i+1, err)
	}
	return p, nil
}

// StartDirector writes config (with "{{IF0}}", "{{IF1}}" replaced by the
// director's interfaces) to a file in dir and starts xvsd on it in the
// director's namespace. It returns once xvsd says it is ready.
func (t *LVS) StartDirector(bin Binaries, dir, config string) (*Proc, string, error) {
	if FastPathRun() {
		// The suite's second pass: the same tests with the XDP fast path
		// forced on, on hosts that stand for physical NICs, so that it
		// carries their connections.
		if !t.nics {
			t.nics = true
			if err := t.BehindRealNICs(); err != nil {
				return nil, "", err
			}
			if err := t.PeersWithNAPI(); err != nil {
				return nil, "", err
			}
		}
		config = withFastPath(config)
	}
	p, path, socket, err := t.StartDirectorIn(bin, dir, config, t.Director, t.DirectorIfs)
	if err == nil {
		t.Socket = socket
	}
	return p, path, err
}

// StartDirectorIn is StartDirector for a director in namespace ns with
// interfaces ifs (scale-out test beds have several). It returns the
// process, the configuration file and the control socket.
func (t *LVS) StartDirectorIn(bin Binaries, dir, config, ns string, ifs []string) (*Proc, string, string, error) {
	for i, ifname := range ifs {
		config = strings.ReplaceAll(config, fmt.Sprintf("{{IF%d}}", i), ifname)
	}
	path := filepath.Join(dir, ns+".toml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		return nil, "", "", err
	}
	socket := filepath.Join(dir, ns+".sock")
	p, err := t.Start(ns, bin.Xvsd, "-config", path, "-socket", socket)
	if err != nil {
		return nil, "", "", err
	}
	if err := WaitOutput(p, "xvsd: ready", 10*time.Second); err != nil {
		return nil, "", "", err
	}
	return p, path, socket, nil
}

// WaitOutput waits until p has printed want, or has exited, or timeout.
func WaitOutput(p *Proc, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Output.String(), want) {
			return nil
		}
		if done, err := p.Exited(); done {
			return fmt.Errorf("exited (%v) before printing %q:\n%s", err, want, p.Output.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no %q within %v:\n%s", want, timeout, p.Output.String())
}

// Report is what `xvs-echo client` prints.
type Report struct {
	Mode     string         `json:"mode"`
	OK       int            `json:"ok"`
	Failed   int            `json:"failed"`
	Servers  map[string]int `json:"servers"`
	Reused   int            `json:"reused"`
	Peers    map[string]int `json:"peers"`
	TOA      map[string]int `json:"toa"`
	Errors   []string       `json:"errors"`
	Duration string         `json:"duration"`
	Bytes    int64          `json:"bytes"` // download, upload: bytes that arrived intact
	MBps     float64        `json:"mbps"`  // download, upload: the best transfer's rate
}

// RunClient runs `xvs-echo client` in the client's namespace and returns its
// report.
func (t *LVS) RunClient(bin Binaries, args ...string) (Report, error) {
	var r Report
	out, err := t.Output(t.Client, append([]string{bin.Echo, "client"}, args...)...)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil {
		return r, fmt.Errorf("client output %q: %w", out, err)
	}
	return r, nil
}

// WaitService makes requests until one succeeds (the director resolves real
// servers' MACs in the background, and a client's first SYN may beat it).
func (t *LVS) WaitService(bin Binaries, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last Report
	for time.Now().Before(deadline) {
		r, err := t.RunClient(bin, "-mode", "http", "-addr", addr, "-n", "1", "-timeout", "500ms")
		if err == nil && r.OK == 1 {
			return nil
		}
		last = r
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("service %s not answering within %v: %v", addr, timeout, last.Errors)
}

// Xvsadm runs xvsadm against the lab's director (in the director's
// namespace) and returns its standard output, with stdin as its input.
func (t *LVS) Xvsadm(bin Binaries, stdin string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", t.Director, bin.Xvsadm, "--socket", t.Socket}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	fmt.Fprintf(t.Log, "+ xvsadm %s\n", strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("xvsadm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// FastPathRun reports whether the end-to-end suite runs with the XDP fast
// path forced on (XVS_E2E_FAST_PATH=1, make test's second pass).
func FastPathRun() bool { return os.Getenv("XVS_E2E_FAST_PATH") != "" }

// withFastPath adds fast_path = "xdp" to config's [director] table unless it
// says otherwise.
func withFastPath(config string) string {
	if strings.Contains(config, "fast_path") {
		return config
	}
	return strings.Replace(config, "[director]\n", "[director]\nfast_path = \"xdp\"\n", 1)
}
