package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Limits of the server. A request is a small JSON object (the largest is a
// restore's rule text), so 1 MiB bounds what a peer can make xvsd buffer.
const (
	MaxRequestSize = 1 << 20
	MaxConns       = 64               // connections served at once; more wait in the backlog
	ReadTimeout    = 10 * time.Second // to receive the whole request
	HandleTimeout  = 60 * time.Second // the handler's context deadline
	WriteTimeout   = 30 * time.Second // to send the whole response
)

// Handler answers requests. It is called from several goroutines at once.
type Handler interface {
	Handle(ctx context.Context, req *Request) *Response
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) *Response

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, req *Request) *Response { return f(ctx, req) }

// Server serves the API on a unix socket.
type Server struct {
	path string
	gid  int
	h    Handler
	log  *zap.Logger
	ln   *net.UnixListener

	slots chan struct{} // a token per connection being served
	done  chan struct{} // closed by Close
	wg    sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Listen creates the unix socket at path and serves h on it until Close.
//
// The socket's directory is created (0755) if missing; a stale socket left by
// a previous xvsd is removed, but a socket some process still accepts on is
// not. The socket is 0600 (root only) when gid < 0, or 0660 and owned by
// group gid otherwise. File modes are only the first gate: every connection's
// peer is checked with SO_PEERCRED and must be root, or (gid >= 0) a process
// whose group or supplementary groups include gid.
func Listen(path string, gid int, h Handler, log *zap.Logger) (*Server, error) {
	if h == nil {
		return nil, errors.New("api: nil handler")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("api socket %s: %w", path, err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("api socket: %w", err)
	}
	mode := os.FileMode(0o600)
	if gid >= 0 {
		mode = 0o660
		if err := os.Chown(path, -1, gid); err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("api socket %s: group %d: %w", path, gid, err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("api socket %s: %w", path, err)
	}
	s := &Server{
		path:  path,
		gid:   gid,
		h:     h,
		log:   log,
		ln:    ln,
		slots: make(chan struct{}, MaxConns),
		done:  make(chan struct{}),
	}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// removeStale removes a socket at path that nobody accepts on. Anything else
// at path (a live socket, a regular file) is an error: it is not ours.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("api socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("api socket %s: exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("api socket %s: in use by another process (is xvsd already running?)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("api socket %s: probing the old socket: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("api socket %s: removing the stale socket: %w", path, err)
	}
	return nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops accepting connections, waits for the requests in flight to be
// answered, and removes the socket.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		// The listener unlinks the socket file on Close.
		s.closeErr = s.ln.Close()
		s.wg.Wait()
	})
	return s.closeErr
}

func (s *Server) serve() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		// Take a slot before accepting so that a flood waits in the
		// kernel's backlog instead of in goroutines.
		select {
		case s.slots <- struct{}{}:
		case <-s.done:
			return
		}
		c, err := s.ln.AcceptUnix()
		if err != nil {
			<-s.slots
			select {
			case <-s.done:
				return
			default:
			}
			// EMFILE and the like: log, back off, keep serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("api: accept failed", zap.Error(err), zap.Duration("retry_in", backoff))
			select {
			case <-time.After(backoff):
			case <-s.done:
				return
			}
			continue
		}
		backoff = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.slots }()
			s.serveConn(c)
		}()
	}
}

func (s *Server) serveConn(c *net.UnixConn) {
	defer c.Close()
	cred, err := peerCred(c)
	if err != nil {
		s.log.Warn("api: cannot read the peer's credentials; refused", zap.Error(err))
		s.reply(c, &Response{Error: "permission denied: cannot identify the caller"})
		return
	}
	if reason := s.admit(cred); reason != "" {
		s.log.Warn("api: request refused",
			zap.Int32("pid", cred.Pid), zap.Uint32("uid", cred.Uid), zap.Uint32("gid", cred.Gid), zap.String("reason", reason))
		s.reply(c, &Response{Error: "permission denied: " + reason})
		return
	}

	_ = c.SetReadDeadline(time.Now().Add(ReadTimeout))
	req, err := readRequest(c)
	if err != nil {
		s.log.Info("api: bad request", zap.Int32("pid", cred.Pid), zap.Uint32("uid", cred.Uid), zap.Error(err))
		s.reply(c, &Response{Error: err.Error()})
		return
	}
	s.log.Debug("api: request", zap.String("op", string(req.Op)), zap.Int32("pid", cred.Pid), zap.Uint32("uid", cred.Uid))

	ctx, cancel := context.WithTimeout(context.Background(), HandleTimeout)
	resp := s.handle(ctx, req)
	cancel()
	s.reply(c, resp)
}

// handle calls the handler, turning a panic into an error response so that
// one bad request does not take the daemon down.
func (s *Server) handle(ctx context.Context, req *Request) (resp *Response) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("api: handler panicked", zap.String("op", string(req.Op)), zap.Any("panic", p), zap.Stack("stack"))
			resp = &Response{Error: fmt.Sprintf("internal error handling %q", req.Op)}
		}
	}()
	resp = s.h.Handle(ctx, req)
	if resp == nil {
		resp = &Response{}
	}
	return resp
}

func (s *Server) reply(c *net.UnixConn, resp *Response) {
	_ = c.SetWriteDeadline(time.Now().Add(WriteTimeout))
	w := bufio.NewWriterSize(c, 64<<10)
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		s.log.Info("api: writing the response", zap.Error(err))
		return
	}
	if err := w.Flush(); err != nil {
		s.log.Info("api: writing the response", zap.Error(err))
	}
}

// readRequest reads one JSON request of at most MaxRequestSize bytes.
func readRequest(r io.Reader) (*Request, error) {
	lr := &io.LimitedReader{R: r, N: MaxRequestSize + 1}
	dec := json.NewDecoder(lr)
	var req Request
	if err := dec.Decode(&req); err != nil {
		if lr.N <= 0 {
			return nil, fmt.Errorf("request larger than %d bytes", MaxRequestSize)
		}
		return nil, fmt.Errorf("malformed request: %w", err)
	}
	if req.Op == "" {
		return nil, errors.New("malformed request: no op")
	}
	return &req, nil
}

func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, fmt.Errorf("SO_PEERCRED: %w", cerr)
	}
	return cred, nil
}

// admit returns why the peer may not use the API, or "" if it may.
func (s *Server) admit(cred *unix.Ucred) string {
	if cred.Uid == 0 {
		return ""
	}
	if s.gid < 0 {
		return fmt.Sprintf("uid %d is not root", cred.Uid)
	}
	if int64(cred.Gid) == int64(s.gid) {
		return ""
	}
	groups, err := procGroups(int(cred.Pid))
	if err != nil {
		return fmt.Sprintf("uid %d: cannot read its groups: %v", cred.Uid, err)
	}
	if slices.Contains(groups, s.gid) {
		return ""
	}
	return fmt.Sprintf("uid %d is neither root nor in group %d", cred.Uid, s.gid)
}

// procGroups reads the supplementary groups of process pid. SO_PEERCRED
// carries only the primary group.
func procGroups(pid int) ([]int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	return parseGroups(b)
}

// parseGroups finds the Groups: line of a /proc/PID/status file.
func parseGroups(status []byte) ([]int, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("Groups:"))
		if !ok {
			continue
		}
		var groups []int
		for _, f := range strings.Fields(string(rest)) {
			g, err := strconv.Atoi(f)
			if err != nil {
				return nil, fmt.Errorf("bad Groups: line %q", strings.TrimSpace(string(line)))
			}
			groups = append(groups, g)
		}
		return groups, nil
	}
	return nil, errors.New("no Groups: line")
}
