package health

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fast is a spec that decides within a few tens of milliseconds.
func fast(kind string) Spec {
	return Spec{Kind: kind, Interval: 30 * time.Millisecond, Timeout: 25 * time.Millisecond, Rise: 2, Fall: 3}
}

// recorder collects events and fails the test if two callbacks for one key
// overlap.
type recorder struct {
	t        *testing.T
	hold     time.Duration // how long each callback takes
	inflight sync.Map      // key -> *atomic.Int32

	mu     sync.Mutex
	events []Event
}

func (r *recorder) onChange(ev Event) {
	v, _ := r.inflight.LoadOrStore(ev.Key, new(atomic.Int32))
	n := v.(*atomic.Int32)
	if n.Add(1) != 1 {
		r.t.Errorf("concurrent callbacks for %s", ev.Key)
	}
	time.Sleep(r.hold)
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	n.Add(-1)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// of returns the events for key, in order.
func (r *recorder) of(key string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, ev := range r.events {
		if ev.Key == key {
			out = append(out, ev)
		}
	}
	return out
}

// wait returns key's nth event (1-based), waiting for it.
func (r *recorder) wait(t *testing.T, key string, n int) Event {
	t.Helper()
	var ev Event
	// Roomy, as waitChecks: tests that care how soon an event came compare
	// its timestamp, not how long this waited.
	waitFor(t, 12*time.Second, fmt.Sprintf("event %d for %s", n, key), func() bool {
		evs := r.of(key)
		if len(evs) < n {
			return false
		}
		ev = evs[n-1]
		return true
	})
	return ev
}

func newMonitor(t *testing.T) (*Monitor, *recorder, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	rec := &recorder{t: t}
	m := NewMonitor(zap.New(core), rec.onChange)
	t.Cleanup(m.Close)
	return m, rec, logs
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func status(t *testing.T, m *Monitor, key string) Status {
	t.Helper()
	for _, s := range m.State() {
		if s.Key == key {
			return s
		}
	}
	t.Fatalf("no status for %s", key)
	return Status{}
}

func waitChecks(t *testing.T, m *Monitor, key string, n uint64) {
	t.Helper()
	// Roomy: the HTTPS test's checks are 3 s apart and a loaded machine
	// under the race detector can add seconds more.
	waitFor(t, 12*time.Second, fmt.Sprintf("%d checks of %s", n, key), func() bool {
		for _, s := range m.State() {
			if s.Key == key {
				return s.Checks >= n
			}
		}
		return false
	})
}

// tcpServer accepts and closes connections on addr ("127.0.0.1:0" for any
// port) until stopped.
type tcpServer struct {
	addr    netip.AddrPort
	accepts atomic.Int64
	ln      net.Listener
	done    chan struct{}
	once    sync.Once
}

func serveTCP(t *testing.T, addr string) *tcpServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpServer{addr: netip.MustParseAddrPort(ln.Addr().String()), ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *tcpServer) stop() {
	s.once.Do(func() {
		s.ln.Close()
		<-s.done
	})
}

// closedPort returns a loopback address where nothing listens for network
// ("tcp" or "udp").
func closedPort(t *testing.T, network string) netip.AddrPort {
	t.Helper()
	var a string
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a = c.LocalAddr().String()
		c.Close()
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a = ln.Addr().String()
		ln.Close()
	}
	return netip.MustParseAddrPort(a)
}

func addrOf(t *testing.T, rawURL string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(strings.TrimPrefix(strings.TrimPrefix(rawURL, "http://"), "https://"))
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

func TestTCPDownAndUp(t *testing.T) {
	m, rec, logs := newMonitor(t)
	srv := serveTCP(t, "127.0.0.1:0")
	spec := fast(KindTCP)
	m.Update([]Target{{Key: "web/r1", Addr: srv.addr, Spec: spec}})
	if up, known := m.Up("web/r1"); !up || !known {
		t.Fatalf("Up = %v, %v before any check; want a new target up", up, known)
	}
	waitChecks(t, m, "web/r1", 3)
	if n := rec.count(); n != 0 {
		t.Fatalf("%d events while the server answers", n)
	}
	if s := status(t, m, "web/r1"); s.Failures != 0 || s.LastError != "" || !s.Up || s.Kind != KindTCP || s.Addr != srv.addr {
		t.Fatalf("status %+v", s)
	}
	if srv.accepts.Load() == 0 {
		t.Fatal("the server saw no connection")
	}

	srv.stop()
	stopped := time.Now()
	down := rec.wait(t, "web/r1", 1)
	// Three failures take at least two intervals (less the jitter) after
	// the first.
	if elapsed := down.At.Sub(stopped); elapsed < 2*spec.Interval*9/10 {
		t.Errorf("down %v after the listener closed, want at least two intervals", elapsed)
	}
	if down.Up || down.Addr != srv.addr || !strings.Contains(down.Reason, "3 consecutive tcp checks failed") || !strings.Contains(down.Reason, "connection refused") {
		t.Errorf("down event %+v", down)
	}
	if up, known := m.Up("web/r1"); up || !known {
		t.Errorf("Up = %v, %v after the down event", up, known)
	}
	if s := status(t, m, "web/r1"); s.Up || !s.Since.Equal(down.At) || s.Failures < 3 || !strings.Contains(s.LastError, "refused") {
		t.Errorf("status after down %+v", s)
	}

	srv2 := serveTCP(t, srv.addr.String())
	up := rec.wait(t, "web/r1", 2)
	if !up.Up || !strings.Contains(up.Reason, "2 consecutive tcp checks succeeded") {
		t.Errorf("up event %+v", up)
	}
	if srv2.accepts.Load() < 2 {
		t.Errorf("up after %d connections, want rise = 2", srv2.accepts.Load())
	}

	entries := logs.FilterMessage("real server down").AllUntimed()
	if len(entries) != 1 {
		t.Fatalf("%d 'real server down' log entries, want 1", len(entries))
	}
	f := entries[0].ContextMap()
	if entries[0].Level != zapcore.InfoLevel || f["key"] != "web/r1" || f["addr"] != srv.addr.String() || f["reason"] != down.Reason {
		t.Errorf("down log entry %v %v", entries[0].Level, f)
	}
	if n := logs.FilterMessage("real server up").Len(); n != 1 {
		t.Errorf("%d 'real server up' log entries, want 1", n)
	}
}

// TestRiseFallExact scripts an HTTP server's answers and checks after which
// probe each change comes. The handler notes how many events there were
// when each probe arrived: a target's callback returns before its next
// probe starts, so that count covers exactly the probes before.
func TestRiseFallExact(t *testing.T) {
	tests := []struct {
		name      string
		startDown bool
		script    string // + answers 200, - answers 500+step; then + forever
		flips     []int  // steps after which the state flips
	}{
		{"start up", false, "+--+---+-++", []int{6, 10}},
		{"start down", true, "+-++--+---", []int{3, 9}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, rec, _ := newMonitor(t)
			var (
				mu     sync.Mutex
				before []int // events seen when each probe arrived
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				i := len(before)
				before = append(before, rec.count())
				mu.Unlock()
				if i < len(tc.script) && tc.script[i] == '-' {
					w.WriteHeader(500 + i)
					return
				}
				io.WriteString(w, "ok")
			}))
			defer srv.Close()
			// A generous timeout: a probe that timed out would count as a
			// failure the script did not ask for.
			spec := Spec{Kind: KindHTTP, Interval: 50 * time.Millisecond, Timeout: 45 * time.Millisecond, Rise: 2, Fall: 3, StartDown: tc.startDown}
			m.Update([]Target{{Key: "k", Addr: addrOf(t, srv.URL), Spec: spec}})
			if up, _ := m.Up("k"); up == tc.startDown {
				t.Fatalf("Up = %v at the start, want %v", up, !tc.startDown)
			}
			waitFor(t, 5*time.Second, "the script to run", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(before) > len(tc.script)
			})
			s := status(t, m, "k")
			m.Close()
			if s.Failures != uint64(strings.Count(tc.script, "-")) {
				t.Errorf("%d failures, want %d", s.Failures, strings.Count(tc.script, "-"))
			}
			mu.Lock()
			defer mu.Unlock()
			for step := range tc.script {
				want := 0
				for _, f := range tc.flips {
					if f <= step {
						want++
					}
				}
				if before[step+1] != want {
					t.Errorf("after step %d (%c): %d events, want %d (events before each probe: %v)", step, tc.script[step], before[step+1], want, before)
					break
				}
			}
			evs := rec.of("k")
			if len(evs) != len(tc.flips) {
				t.Fatalf("events %+v, want %d", evs, len(tc.flips))
			}
			for i, ev := range evs {
				if wantUp := (i%2 == 0) == tc.startDown; ev.Up != wantUp {
					t.Errorf("event %d: up = %v, want %v", i, ev.Up, wantUp)
				}
				if !ev.Up {
					if code := fmt.Sprintf("status %d, want 200", 500+tc.flips[i]); !strings.Contains(ev.Reason, code) {
						t.Errorf("down reason %q does not name the last failure (%s)", ev.Reason, code)
					}
				}
			}
		})
	}
}

func TestHTTP(t *testing.T) {
	var requests, conns, followed atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "example.org" || r.URL.RawQuery != "full=1" || r.Method != http.MethodGet {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		io.WriteString(w, "status: all ready\n")
	})
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/starting", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "status: starting\n") })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/target", http.StatusFound) })
	mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		mux.ServeHTTP(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	addr := addrOf(t, srv.URL)

	m, rec, _ := newMonitor(t)
	good := fast(KindHTTP)
	good.Path, good.Host, good.ExpectBody = "/healthz?full=1", "example.org", "all ready"
	bad := func(path, body string, status int) Spec {
		s := fast(KindHTTP)
		s.Path, s.ExpectBody, s.ExpectStatus = path, body, status
		return s
	}
	m.Update([]Target{
		{Key: "good", Addr: addr, Spec: good},
		{Key: "status", Addr: addr, Spec: bad("/missing", "", 0)},
		{Key: "body", Addr: addr, Spec: bad("/starting", "ready", 0)},
		{Key: "redirect", Addr: addr, Spec: bad("/moved", "", 200)},
		{Key: "host", Addr: addr, Spec: bad("/healthz?full=1", "", 0)}, // no Host header: 400
		{Key: "timeout", Addr: addr, Spec: bad("/slow", "", 0)},
		{Key: "refused", Addr: closedPort(t, "tcp"), Spec: fast(KindHTTP)},
	})
	reasons := map[string]string{
		"status":   "status 404, want 200",
		"body":     `does not contain "ready"`,
		"redirect": "status 302, want 200",
		"host":     "status 400, want 200",
		"timeout":  "deadline exceeded",
		"refused":  "connection refused",
	}
	for key, reason := range reasons {
		ev := rec.wait(t, key, 1)
		if ev.Up || !strings.Contains(ev.Reason, reason) {
			t.Errorf("%s: event %+v, want down for %q", key, ev, reason)
		}
	}
	waitChecks(t, m, "good", 3)
	if s := status(t, m, "good"); !s.Up || s.Failures != 0 {
		t.Errorf("good: %+v", s)
	}
	if evs := rec.of("good"); len(evs) != 0 {
		t.Errorf("good: events %+v", evs)
	}
	m.Close()
	if n := followed.Load(); n != 0 {
		t.Errorf("a redirect was followed %d times", n)
	}
	// Every probe makes a connection of its own, as keepalived's do.
	if c, r := conns.Load(), requests.Load(); c < r {
		t.Errorf("%d connections for %d requests: keep-alive in use", c, r)
	}
}

func TestHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes
	srv.StartTLS()
	defer srv.Close()
	addr := addrOf(t, srv.URL)
	m, rec, _ := newMonitor(t)
	// TLS handshakes under the race detector are slow: a roomy timeout
	// keeps them from failing for the wrong reason.
	slow := Spec{Kind: KindHTTPS, Interval: 3 * time.Second, Timeout: 2900 * time.Millisecond, Rise: 1, Fall: 1}
	insecure := slow
	insecure.Insecure, insecure.ExpectBody = true, "ok"
	verify := slow
	m.Update([]Target{{Key: "insecure", Addr: addr, Spec: insecure}, {Key: "verify", Addr: addr, Spec: verify}})
	ev := rec.wait(t, "verify", 1)
	if ev.Up || !strings.Contains(ev.Reason, "certificate") {
		t.Errorf("verify: event %+v, want down for the self-signed certificate", ev)
	}
	waitChecks(t, m, "insecure", 2)
	if s := status(t, m, "insecure"); !s.Up || s.Failures != 0 {
		t.Errorf("insecure: %+v", s)
	}
	if evs := rec.of("insecure"); len(evs) != 0 {
		t.Errorf("insecure: events %+v", evs)
	}
}

// udpServer answers "pong " and the request, stays silent, or answers
// something else, as mode says.
type udpServer struct {
	addr netip.AddrPort
	mode atomic.Int32 // udpReply, udpSilent, udpWrong
	stop func()
}

const (
	udpReply = iota
	udpSilent
	udpWrong
)

func serveUDP(t *testing.T) *udpServer {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &udpServer{addr: netip.MustParseAddrPort(c.LocalAddr().String())}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			switch s.mode.Load() {
			case udpReply:
				c.WriteTo(append([]byte("pong "), buf[:n]...), from)
			case udpWrong:
				c.WriteTo([]byte("who?"), from)
			}
		}
	}()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			c.Close()
			<-done
		})
	}
	t.Cleanup(s.stop)
	return s
}

func TestUDP(t *testing.T) {
	srv := serveUDP(t)
	m, rec, _ := newMonitor(t)
	echo := fast(KindUDP)
	echo.Send, echo.Expect = []byte("ping"), []byte("pong ping")
	anyReply := fast(KindUDP)
	wrong := fast(KindUDP)
	wrong.Expect = []byte("nope")
	m.Update([]Target{
		{Key: "echo", Addr: srv.addr, Spec: echo},
		{Key: "any", Addr: srv.addr, Spec: anyReply},
		{Key: "wrong", Addr: srv.addr, Spec: wrong},
		{Key: "closed", Addr: closedPort(t, "udp"), Spec: echo},
	})
	for key, reason := range map[string]string{"wrong": `does not contain "nope"`, "closed": "connection refused"} {
		if ev := rec.wait(t, key, 1); ev.Up || !strings.Contains(ev.Reason, reason) {
			t.Errorf("%s: event %+v, want down for %q", key, ev, reason)
		}
	}
	waitChecks(t, m, "echo", 3)
	for _, key := range []string{"echo", "any"} {
		if s := status(t, m, key); !s.Up || s.Failures != 0 {
			t.Errorf("%s: %+v", key, s)
		}
	}

	srv.mode.Store(udpSilent)
	if ev := rec.wait(t, "echo", 1); ev.Up || !strings.Contains(ev.Reason, "timeout") {
		t.Errorf("silent server: event %+v, want down for a timeout", ev)
	}
	srv.mode.Store(udpReply)
	if ev := rec.wait(t, "echo", 2); !ev.Up {
		t.Errorf("answering again: event %+v, want up", ev)
	}
}

func TestUpdate(t *testing.T) {
	m, rec, logs := newMonitor(t)
	a, b := serveTCP(t, "127.0.0.1:0"), serveTCP(t, "127.0.0.1:0")
	spec := fast(KindTCP)
	m.Update([]Target{{Key: "b", Addr: b.addr, Spec: spec}, {Key: "a", Addr: a.addr, Spec: spec}})
	st := m.State()
	if len(st) != 2 || st[0].Key != "a" || st[1].Key != "b" || st[0].Addr != a.addr || !st[0].Up || !st[1].Up {
		t.Fatalf("State() = %+v", st)
	}
	waitChecks(t, m, "b", 2)

	// Removing b stops its checks.
	m.Update([]Target{{Key: "a", Addr: a.addr, Spec: spec}})
	if _, known := m.Up("b"); known {
		t.Error("b is still known after its removal")
	}
	time.Sleep(2 * spec.Interval) // a probe in flight may still land
	seen := b.accepts.Load()
	time.Sleep(5 * spec.Interval)
	if n := b.accepts.Load(); n != seen {
		t.Errorf("b was probed %d more times after its removal", n-seen)
	}

	// Moving a to a dead address keeps its state, then takes it down.
	dead := closedPort(t, "tcp")
	m.Update([]Target{{Key: "a", Addr: dead, Spec: spec}})
	if up, known := m.Up("a"); !up || !known {
		t.Errorf("Up(a) = %v, %v right after a restart, want its state kept", up, known)
	}
	if ev := rec.wait(t, "a", 1); ev.Up || ev.Addr != dead {
		t.Errorf("event %+v, want a down at %s", ev, dead)
	}
	if s := status(t, m, "a"); s.Addr != dead {
		t.Errorf("status %+v", s)
	}

	// Changing the spec back to a live address keeps it down until it has
	// passed the new rise.
	spec1 := spec
	spec1.Rise = 1
	m.Update([]Target{{Key: "a", Addr: a.addr, Spec: spec1}})
	if up, known := m.Up("a"); up || !known {
		t.Errorf("Up(a) = %v, %v right after a restart, want still down", up, known)
	}
	if ev := rec.wait(t, "a", 2); !ev.Up || !strings.Contains(ev.Reason, "1 consecutive") {
		t.Errorf("event %+v, want up after one check", ev)
	}

	// An unchanged target is not restarted: its counters go on.
	before := status(t, m, "a").Checks
	m.Update([]Target{{Key: "a", Addr: a.addr, Spec: spec1}})
	if after := status(t, m, "a").Checks; after < before {
		t.Errorf("checks went from %d to %d on a no-op Update", before, after)
	}

	// A returning key starts afresh, here down; bad and duplicate targets
	// are left out.
	startDown := spec
	startDown.StartDown = true
	badSpec := spec
	badSpec.Timeout = spec.Interval
	m.Update([]Target{
		{Key: "a", Addr: a.addr, Spec: spec1},
		{Key: "b", Addr: b.addr, Spec: startDown},
		{Key: "b", Addr: a.addr, Spec: spec},
		{Key: "bad", Addr: a.addr, Spec: badSpec},
		{Key: "noaddr", Spec: spec},
	})
	if up, known := m.Up("b"); up || !known {
		t.Errorf("Up(b) = %v, %v, want a returning StartDown target down", up, known)
	}
	for _, key := range []string{"bad", "noaddr"} {
		if _, known := m.Up(key); known {
			t.Errorf("invalid target %s is checked", key)
		}
	}
	if n := logs.FilterMessage("invalid health check, not checking").Len(); n != 2 {
		t.Errorf("%d invalid targets logged, want 2", n)
	}
	if n := logs.FilterMessage("health check target given twice, keeping the first").Len(); n != 1 {
		t.Errorf("%d duplicates logged, want 1", n)
	}
	if ev := rec.wait(t, "b", 1); !ev.Up || ev.Addr != b.addr {
		t.Errorf("b: event %+v, want up at %s", ev, b.addr)
	}
}

// TestCallbacksPerKey flaps a target while restarting it over and over:
// its callbacks must never overlap, and its state must carry over each
// restart, so that its events alternate down and up.
func TestCallbacksPerKey(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	m, rec, _ := newMonitor(t)
	rec.hold = 15 * time.Millisecond
	addr := addrOf(t, srv.URL)
	spec := Spec{Kind: KindHTTP, Interval: 10 * time.Millisecond, Timeout: 8 * time.Millisecond, Rise: 1, Fall: 1}
	for i := range 40 {
		s := spec
		if i%2 == 1 {
			s.Path = "/other"
		}
		m.Update([]Target{{Key: "k", Addr: addr, Spec: s}, {Key: "steady", Addr: addr, Spec: spec}})
		time.Sleep(7 * time.Millisecond)
	}
	waitFor(t, 3*time.Second, "events", func() bool { return len(rec.of("k")) >= 4 })
	m.Close()
	evs := rec.of("k")
	for i, ev := range evs {
		if want := i%2 == 1; ev.Up != want {
			t.Fatalf("event %d of %d is up = %v, want %v: state lost across a restart", i, len(evs), ev.Up, want)
		}
	}
}

func TestClose(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	tcp := serveTCP(t, "127.0.0.1:0")
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	silent := serveUDP(t)
	silent.mode.Store(udpSilent)

	m := NewMonitor(nil, nil)
	slow := Spec{Kind: KindUDP, Interval: 2 * time.Second, Timeout: time.Second, Rise: 1, Fall: 1}
	var targets []Target
	for i := range 10 {
		targets = append(targets,
			Target{Key: fmt.Sprint("tcp", i), Addr: tcp.addr, Spec: fast(KindTCP)},
			Target{Key: fmt.Sprint("http", i), Addr: addrOf(t, web.URL), Spec: fast(KindHTTP)},
			Target{Key: fmt.Sprint("udp", i), Addr: silent.addr, Spec: slow})
	}
	m.Update(targets)
	waitChecks(t, m, "http0", 2)
	start := time.Now()
	m.Close()
	// The UDP probes wait a second for replies that never come: Close
	// must cut them short.
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Close took %v", d)
	}
	m.Update(targets)
	if st := m.State(); len(st) != 0 {
		t.Errorf("State() after Close = %+v", st)
	}
	m.Close()
	web.Close()
	tcp.stop()
	silent.stop()
	goleak.VerifyNone(t, ignore)
}
