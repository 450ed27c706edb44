package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// The test binary doubles as an API client run under other credentials:
// with childEnv set it calls the socket named there and prints the outcome.
const childEnv = "XVS_API_TEST_CHILD_SOCKET"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(childMain(path))
	}
	goleak.VerifyTestMain(m)
}

func childMain(path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := Call(ctx, path, &Request{Op: OpStatus})
	var re *RemoteError
	switch {
	case errors.As(err, &re):
		fmt.Printf("remote error: %s\n", re.Msg)
	case err != nil:
		fmt.Printf("error: %v\n", err)
	default:
		fmt.Printf("ok: %d workers\n", resp.Status.Workers)
	}
	return 0
}

// fakeHandler answers OpStatus with 3 workers, echoes a request's Text and
// fails OpDelService, recording the requests it saw.
type fakeHandler struct {
	seen chan *Request
}

func (f *fakeHandler) Handle(ctx context.Context, req *Request) *Response {
	if f.seen != nil {
		f.seen <- req
	}
	switch req.Op {
	case OpStatus:
		return &Response{Status: &Status{Workers: 3, Drops: map[string]uint64{"no_service": 7}}}
	case OpDelService:
		return &Response{Error: "No such service"}
	case OpRules:
		return &Response{Text: req.Text}
	}
	return &Response{}
}

// sockDir returns a directory that every user can traverse, for a socket.
func sockDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "xvs-api-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func listen(t *testing.T, path string, gid int, h Handler, log *zap.Logger) *Server {
	t.Helper()
	s, err := Listen(path, gid, h, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(sockDir(t), "run", "xvs", "xvsd.sock")
	h := &fakeHandler{seen: make(chan *Request, 4)}
	s := listen(t, path, -1, h, nil)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o755 {
		t.Errorf("socket directory mode %v, want 0755", di.Mode().Perm())
	}

	ctx := context.Background()
	w := 5
	req := &Request{
		Op:      OpAddReal,
		Service: &Service{ServiceID: ServiceID{Protocol: "tcp", VIP: netip.MustParseAddr("198.18.0.100"), Port: 80}, Scheduler: "rr"},
		Real:    &Real{Addr: netip.MustParseAddr("198.18.0.11"), Port: 80, Method: "dr", Weight: &w},
		Text:    strings.Repeat("x", 100_000),
	}
	if _, err := Call(ctx, path, req); err != nil {
		t.Fatal(err)
	}
	if got := <-h.seen; !reflect.DeepEqual(got, req) {
		t.Errorf("handler saw %+v, want %+v", got, req)
	}

	resp, err := Call(ctx, path, &Request{Op: OpStatus})
	if err != nil {
		t.Fatal(err)
	}
	<-h.seen
	if resp.Status == nil || resp.Status.Workers != 3 || resp.Status.Drops["no_service"] != 7 {
		t.Errorf("status response %+v", resp.Status)
	}

	resp, err = Call(ctx, path, &Request{Op: OpDelService})
	<-h.seen
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != "No such service" || re.Op != OpDelService {
		t.Fatalf("Call error %v, want a RemoteError \"No such service\"", err)
	}
	if resp == nil || resp.Error != "No such service" {
		t.Errorf("a failed call returns its response too; got %+v", resp)
	}
	if err.Error() != "No such service" {
		t.Errorf("RemoteError text %q", err.Error())
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after Close: %v", err)
	}
	if _, err := Call(ctx, path, &Request{Op: OpStatus}); err == nil || errors.As(err, &re) {
		t.Errorf("Call after Close: %v, want a connection error", err)
	}
}

// rawCall sends b as is and returns the decoded response.
func rawCall(t *testing.T, path string, b []byte) *Response {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		c.Write(b)
		c.(*net.UnixConn).CloseWrite()
	}()
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return &resp
}

func TestBadRequests(t *testing.T) {
	path := filepath.Join(sockDir(t), "xvsd.sock")
	listen(t, path, -1, &fakeHandler{}, nil)

	big := append([]byte(`{"op":"restore","text":"`), bytes.Repeat([]byte("a"), MaxRequestSize)...)
	big = append(big, `"}`...)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"too large", big, "request larger than 1048576 bytes"},
		{"not json", []byte("hello\n"), "malformed request"},
		{"truncated", []byte(`{"op":"list"`), "malformed request"},
		{"no op", []byte(`{}`), "malformed request: no op"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := rawCall(t, path, tt.in)
			if !strings.Contains(resp.Error, tt.want) {
				t.Errorf("error %q, want it to contain %q", resp.Error, tt.want)
			}
		})
	}

	// The client refuses to send what the server would refuse.
	_, err := Call(context.Background(), path, &Request{Op: OpRestore, Text: string(bytes.Repeat([]byte("a"), MaxRequestSize))})
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized Call: %v", err)
	}
}

func TestStaleSocket(t *testing.T) {
	dir := sockDir(t)
	path := filepath.Join(dir, "xvsd.sock")

	// A socket file that nobody listens on, as a killed xvsd leaves it.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	s := listen(t, path, -1, &fakeHandler{}, nil)
	if _, err := Call(context.Background(), path, &Request{Op: OpStatus}); err != nil {
		t.Fatalf("over the new socket: %v", err)
	}

	// A live socket is not stale.
	if s2, err := Listen(path, -1, &fakeHandler{}, nil); err == nil {
		s2.Close()
		t.Fatal("Listen took over a socket in use")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Errorf("error %v, want \"in use\"", err)
	}
	if _, err := Call(context.Background(), path, &Request{Op: OpStatus}); err != nil {
		t.Fatalf("the first server was disturbed: %v", err)
	}
	s.Close()

	// Nor is a regular file, which is left alone.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s3, err := Listen(file, -1, &fakeHandler{}, nil); err == nil {
		s3.Close()
		t.Fatal("Listen replaced a regular file")
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep" {
		t.Errorf("regular file damaged: %q, %v", b, err)
	}
}

// blockingHandler holds every request until release is closed.
type blockingHandler struct {
	started chan struct{}
	release chan struct{}
}

func (b *blockingHandler) Handle(ctx context.Context, req *Request) *Response {
	b.started <- struct{}{}
	select {
	case <-b.release:
		return &Response{Text: "done"}
	case <-ctx.Done():
		return &Response{Error: ctx.Err().Error()}
	}
}

func TestCloseWaitsForInFlight(t *testing.T) {
	defer goleak.VerifyNone(t)
	path := filepath.Join(sockDir(t), "xvsd.sock")
	h := &blockingHandler{started: make(chan struct{}, 8), release: make(chan struct{})}
	s, err := Listen(path, -1, h, nil)
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		resp *Response
		err  error
	}
	results := make(chan result, 3)
	for range 3 {
		go func() {
			resp, err := Call(context.Background(), path, &Request{Op: OpReload})
			results <- result{resp, err}
		}()
	}
	for range 3 {
		<-h.started
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with requests in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	// No new connections once closing.
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there while closing: %v", err)
	}
	close(h.release)
	for range 3 {
		r := <-results
		if r.err != nil || r.resp.Text != "done" {
			t.Errorf("in-flight request: %+v, %v", r.resp, r.err)
		}
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCallContext(t *testing.T) {
	path := filepath.Join(sockDir(t), "xvsd.sock")
	h := &blockingHandler{started: make(chan struct{}, 1), release: make(chan struct{})}
	listen(t, path, -1, h, nil)
	defer close(h.release)

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-h.started
		cancel()
	}()
	start := time.Now()
	_, err := Call(ctx, path, &Request{Op: OpList})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Call error %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancellation took %v", d)
	}
}

func TestHandlerPanic(t *testing.T) {
	path := filepath.Join(sockDir(t), "xvsd.sock")
	core, logs := observer.New(zap.ErrorLevel)
	listen(t, path, -1, HandlerFunc(func(ctx context.Context, req *Request) *Response {
		if req.Op == OpHealth {
			panic("boom")
		}
		return nil // an empty success
	}), zap.New(core))

	_, err := Call(context.Background(), path, &Request{Op: OpHealth})
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Msg, "internal error") {
		t.Errorf("after a panic: %v", err)
	}
	if logs.FilterMessage("api: handler panicked").Len() != 1 {
		t.Errorf("panic not logged: %v", logs.All())
	}
	if _, err := Call(context.Background(), path, &Request{Op: OpList}); err != nil {
		t.Errorf("server dead after a panic: %v", err)
	}
}

func TestParseGroups(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 27 1000 \nNSpid:\t1\n", []int{4, 24, 27, 1000}, false},
		{"Groups:\t\n", nil, false},
		{"Groups:\t4 x\n", nil, true},
		{"Name:\tx\n", nil, true},
	}
	for _, tt := range tests {
		got, err := parseGroups([]byte(tt.in))
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseGroups(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	// Our own process, as the server reads it.
	groups, err := procGroups(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	own, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != len(own) {
		t.Errorf("procGroups = %v, os.Getgroups = %v", groups, own)
	}
}

// runChild runs this test binary as a client under cred and returns what it
// printed. The binary is copied where the unprivileged user can execute it.
func runChild(t *testing.T, bin, path string, cred *syscall.Credential) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	// The race detector otherwise lingers a second at exit.
	cmd.Env = append(os.Environ(), childEnv+"="+path, "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %+v: %v\n%s", cred, err, out)
	}
	return strings.TrimSpace(string(out))
}

func childBinary(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(dir, "api-client.test")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

const nobody = 65534

func TestPeerCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run clients under other credentials")
	}
	const group = 64999 // need not exist: only the number matters
	dir := sockDir(t)
	bin := childBinary(t, dir)

	t.Run("root only", func(t *testing.T) {
		path := filepath.Join(dir, "root.sock")
		core, logs := observer.New(zap.InfoLevel)
		listen(t, path, -1, &fakeHandler{}, zap.New(core))

		if got := runChild(t, bin, path, &syscall.Credential{Uid: 0, Gid: 0}); got != "ok: 3 workers" {
			t.Errorf("root: %q", got)
		}
		// The file mode keeps others out ...
		if got := runChild(t, bin, path, &syscall.Credential{Uid: nobody, Gid: nobody}); !strings.Contains(got, "permission denied") || strings.HasPrefix(got, "remote") {
			t.Errorf("nobody through a 0600 socket: %q, want a connect error", got)
		}
		// ... and SO_PEERCRED does too, should the mode be loosened.
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
		got := runChild(t, bin, path, &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{group}})
		if got != "remote error: permission denied: uid 65534 is not root" {
			t.Errorf("nobody: %q", got)
		}
		refused := logs.FilterMessage("api: request refused").All()
		if len(refused) != 1 || refused[0].ContextMap()["uid"] != uint32(nobody) {
			t.Errorf("refusal not logged with the uid: %v", logs.All())
		}
	})

	t.Run("group", func(t *testing.T) {
		path := filepath.Join(dir, "group.sock")
		listen(t, path, group, &fakeHandler{}, nil)
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		if st.Gid != group || st.Mode&0o777 != 0o660 {
			t.Errorf("socket group %d mode %o, want %d 0660", st.Gid, st.Mode&0o777, group)
		}
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			cred *syscall.Credential
			want string
		}{
			{"primary group", &syscall.Credential{Uid: nobody, Gid: group}, "ok: 3 workers"},
			{"supplementary group", &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{100, group}}, "ok: 3 workers"},
			{"other groups", &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{100}},
				"remote error: permission denied: uid 65534 is neither root nor in group " + strconv.Itoa(group)},
			{"root", &syscall.Credential{Uid: 0, Gid: 0}, "ok: 3 workers"},
		}
		for _, tt := range tests {
			if got := runChild(t, bin, path, tt.cred); got != tt.want {
				t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
			}
		}
	})
}
