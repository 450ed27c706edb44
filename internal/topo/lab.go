// Package topo builds the seed document's LVS setups out of network
// namespaces and veth pairs, and starts processes inside them. The demo, the
// end-to-end tests and the benchmarks share it, so that all three run the same
// topology.
//
// Every namespace and interface is named "xvs" plus a per-run suffix, and
// Close removes them and stops every process the Lab started (by PID), also
// when a test failed half way.
package topo

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Lab owns a set of namespaces and the processes started in them.
type Lab struct {
	// Suffix is the per-run part of every name.
	Suffix string
	// Log receives every command run, for debugging failed tests.
	Log io.Writer

	mu         sync.Mutex
	namespaces []string
	procs      []*Proc
	files      []string
}

// StatePath returns a lab-unique file path for state a command keeps
// (removed by Close).
func (l *Lab) StatePath(tag string) string {
	p := filepath.Join(os.TempDir(), l.Name("-"+tag)+".json")
	l.mu.Lock()
	l.files = append(l.files, p)
	l.mu.Unlock()
	return p
}

// Proc is a process started inside a namespace.
type Proc struct {
	Cmd    *exec.Cmd
	Output *SyncBuffer
	done   chan struct{}
	err    error
}

// NewLab returns an empty lab with a fresh random suffix.
func NewLab(log io.Writer) (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("topo: network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("topo: iproute2 missing: %w", err)
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	if log == nil {
		log = io.Discard
	}
	return &Lab{Suffix: hex.EncodeToString(b[:]), Log: log}, nil
}

// Name returns a lab-unique name for role: "xvs" + suffix + role. Interface
// names must stay within 15 bytes, so roles are short.
func (l *Lab) Name(role string) string { return "xvs" + l.Suffix + role }

// AddNS creates the namespace for role, with loopback up, and returns its name.
func (l *Lab) AddNS(role string) (string, error) {
	ns := l.Name(role)
	if err := l.Host("ip", "netns", "add", ns); err != nil {
		return "", err
	}
	l.mu.Lock()
	l.namespaces = append(l.namespaces, ns)
	l.mu.Unlock()
	return ns, l.In(ns, "ip", "link", "set", "lo", "up")
}

// Veth creates a veth pair with one end in each namespace, both up.
func (l *Lab) Veth(nsA, ifA, nsB, ifB string) error {
	if err := l.Host("ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB); err != nil {
		return err
	}
	if err := l.In(nsA, "ip", "link", "set", ifA, "up"); err != nil {
		return err
	}
	return l.In(nsB, "ip", "link", "set", ifB, "up")
}

// VethQueues is Veth with queues RX and TX queues at each end.
func (l *Lab) VethQueues(nsA, ifA, nsB, ifB string, queues int) error {
	if queues <= 1 {
		return l.Veth(nsA, ifA, nsB, ifB)
	}
	q := strconv.Itoa(queues)
	if err := l.Host("ip", "link", "add", ifA, "netns", nsA, "numtxqueues", q, "numrxqueues", q, "type", "veth",
		"peer", "name", ifB, "netns", nsB, "numtxqueues", q, "numrxqueues", q); err != nil {
		return err
	}
	if err := l.In(nsA, "ip", "link", "set", ifA, "up"); err != nil {
		return err
	}
	return l.In(nsB, "ip", "link", "set", ifB, "up")
}

// Host runs a command in the current namespace.
func (l *Lab) Host(name string, args ...string) error {
	_, err := l.output(exec.Command(name, args...))
	return err
}

// In runs a command inside namespace ns and waits for it.
func (l *Lab) In(ns string, args ...string) error {
	_, err := l.Output(ns, args...)
	return err
}

// Output runs a command inside namespace ns and returns its standard output.
func (l *Lab) Output(ns string, args ...string) (string, error) {
	return l.output(exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...))
}

func (l *Lab) output(cmd *exec.Cmd) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	fmt.Fprintf(l.Log, "+ %s\n", strings.Join(cmd.Args, " "))
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Sysctl sets key=value inside namespace ns.
func (l *Lab) Sysctl(ns, key, value string) error {
	return l.In(ns, "sysctl", "-q", "-w", key+"="+value)
}

// CompleteChecksums makes ifname send frames whose checksums are complete,
// as frames arrive from a physical NIC on a wire: it turns veth's transmit
// checksum offload off. The kernel's default, which every namespace,
// container and same-host VM keeps, leaves TCP and UDP checksums partial
// for a NIC to finish, and the director must complete them itself; only a
// test that stands for hosts behind real NICs calls this.
func (l *Lab) CompleteChecksums(ns, ifname string) error {
	return l.In(ns, "ethtool", "-K", ifname, "tx", "off")
}

// Start starts a long-running command inside namespace ns. Its combined output
// is kept in the returned Proc; Close stops it.
func (l *Lab) Start(ns string, args ...string) (*Proc, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	out := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group, so that a test's Ctrl-C reaches us first and we stop
	// the child by PID.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	fmt.Fprintf(l.Log, "+ %s &\n", strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", strings.Join(args, " "), err)
	}
	p := &Proc{Cmd: cmd, Output: out, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p, nil
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error { return p.Cmd.Process.Signal(sig) }

// Exited reports whether the process has ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM, waits up to timeout, then SIGKILLs. It returns the
// process's exit error, if it had one before SIGKILL was needed.
func (p *Proc) Stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %v; killed", p.Cmd.Args[3], timeout)
	}
}

// Close stops every process and deletes every namespace of the lab.
func (l *Lab) Close() error {
	l.mu.Lock()
	procs, nss, files := l.procs, l.namespaces, l.files
	l.procs, l.namespaces, l.files = nil, nil, nil
	l.mu.Unlock()
	for _, f := range files {
		_ = os.Remove(f)
	}
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		_ = procs[i].Stop(5 * time.Second)
	}
	for i := len(nss) - 1; i >= 0; i-- {
		if err := l.Host("ip", "netns", "del", nss[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SyncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func execIP(args ...string) *exec.Cmd { return exec.Command("ip", args...) }
