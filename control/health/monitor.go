package health

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Target is one thing to check: a real server of a service.
type Target struct {
	// Key names the target in events and queries; the caller chooses it,
	// unique per (service, real server).
	Key  string
	Addr netip.AddrPort // where probes go: the real server, at the check's port
	Spec Spec
}

// Event is a change of a target's state.
type Event struct {
	Key    string
	Addr   netip.AddrPort
	Up     bool
	Reason string
	At     time.Time
}

// Status is a target's state, for listings.
type Status struct {
	Key       string
	Addr      netip.AddrPort
	Kind      string
	Up        bool
	Since     time.Time // of the last change, or of the target's addition
	LastError string    // of the latest probe; "" when it succeeded
	Checks    uint64    // probes run since the target was added
	Failures  uint64    // of which failed
}

// Monitor checks a set of targets, each from its own goroutine.
//
// New targets start up (unless their Spec says StartDown) and no event
// reports that initial state: the caller applies it when it adds them.
// Every later change is logged and passed to the callback.
type Monitor struct {
	log      *zap.Logger
	onChange func(Event)
	wg       sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	checkers map[string]*checker
	// tails holds, per key, the done channel of the newest goroutine
	// started for it, until that goroutine exits. A goroutine started for
	// a key waits for its predecessor, so that one key's callbacks never
	// overlap even across restarts, without Update having to wait.
	tails map[string]chan struct{}
}

type checker struct {
	target Target // defaulted and valid
	cancel context.CancelFunc
	st     *state // carried over when the target restarts
}

// state is a target's observable state, guarded by Monitor.mu.
type state struct {
	up       bool
	since    time.Time
	lastErr  string
	checks   uint64
	failures uint64
}

// NewMonitor returns a Monitor with no targets. onChange, which may be nil,
// is called on every change of a target's state, from that target's
// goroutine: never concurrently for one key, but concurrently for different
// keys, and it should return promptly (the target is not probed meanwhile).
// It may call Update (which never waits for checks) but not Close (which
// does).
func NewMonitor(log *zap.Logger, onChange func(Event)) *Monitor {
	if log == nil {
		log = zap.NewNop()
	}
	if onChange == nil {
		onChange = func(Event) {}
	}
	return &Monitor{
		log:      log,
		onChange: onChange,
		checkers: make(map[string]*checker),
		tails:    make(map[string]chan struct{}),
	}
}

// Update replaces the set of targets. Targets with new keys start checking
// and targets whose keys are gone stop; a target whose Addr or Spec changed
// restarts, keeping its state (a down server stays down until it passes
// Rise new probes) but not its run of results. Update does not wait for
// stopped checks to end, so one event already on its way may still arrive
// for a target Update has just removed.
//
// A target with an invalid Spec or Addr, or a key already given, is
// logged and left out.
func (m *Monitor) Update(targets []Target) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	want := make(map[string]Target, len(targets))
	for _, t := range targets {
		if _, dup := want[t.Key]; dup {
			m.log.Error("health check target given twice, keeping the first", zap.String("key", t.Key))
			continue
		}
		t.Spec = t.Spec.withDefaults()
		err := t.Spec.Validate()
		if err == nil && (!t.Addr.IsValid() || t.Addr.Port() == 0) {
			err = fmt.Errorf("address %s has no IP address or port", t.Addr)
		}
		if err != nil {
			m.log.Error("invalid health check, not checking", zap.String("key", t.Key), zap.Stringer("addr", t.Addr), zap.Error(err))
			continue
		}
		want[t.Key] = t
	}
	for key, c := range m.checkers {
		t, keep := want[key]
		switch {
		case !keep:
			c.cancel()
			delete(m.checkers, key)
		case t.Addr != c.target.Addr || !t.Spec.equal(c.target.Spec):
			c.cancel()
			m.start(t, c.st)
		}
		delete(want, key)
	}
	now := time.Now()
	for _, t := range want {
		m.start(t, &state{up: !t.Spec.StartDown, since: now})
	}
}

// start runs t's checks from a new goroutine; m.mu is held.
func (m *Monitor) start(t Target, st *state) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checker{target: t, cancel: cancel, st: st}
	m.checkers[t.Key] = c
	prev := m.tails[t.Key]
	done := make(chan struct{})
	m.tails[t.Key] = done
	m.wg.Add(1)
	go m.run(ctx, c, prev, done)
}

func (m *Monitor) run(ctx context.Context, c *checker, prev, done chan struct{}) {
	defer m.wg.Done()
	defer func() {
		m.mu.Lock()
		if m.tails[c.target.Key] == done {
			delete(m.tails, c.target.Key)
		}
		m.mu.Unlock()
		close(done)
	}()
	if prev != nil {
		// prev has been cancelled: this waits for one probe at most, and
		// for the callback it may be in.
		<-prev
	}
	t := c.target
	p, err := newProber(t.Addr, t.Spec)
	if err != nil {
		// Validate has passed, so this is a bug, not a bad target.
		m.log.Error("cannot start health check", zap.String("key", t.Key), zap.Error(err))
		return
	}
	defer p.close()
	m.mu.Lock()
	cnt := counter{up: c.st.up}
	m.mu.Unlock()

	// The first probe comes at a random point of the first interval, so
	// that targets added together are not probed together from then on.
	timer := time.NewTimer(rand.N(t.Spec.Interval))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, t.Spec.Timeout)
		err := p.probe(pctx)
		cancel()
		if ctx.Err() != nil {
			// Stopped mid-probe: the result says nothing of the target.
			return
		}
		if ev, changed := m.record(c, &cnt, err); changed {
			m.log.Info("real server "+upDown(ev.Up),
				zap.String("key", ev.Key), zap.Stringer("addr", ev.Addr),
				zap.String("check", t.Spec.Kind), zap.String("reason", ev.Reason))
			m.onChange(ev)
		} else if err != nil {
			m.log.Debug("health check failed", zap.String("key", t.Key), zap.Stringer("addr", t.Addr), zap.Error(err))
		}
		timer.Reset(jitter(t.Spec.Interval) - time.Since(start))
	}
}

// jitter spreads probes by up to a tenth of the interval either way, so
// that targets do not fall into step.
func jitter(d time.Duration) time.Duration {
	spread := d / 10
	if spread <= 0 {
		return d
	}
	return d - spread + rand.N(2*spread+1)
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// record applies one probe's result to c's state.
func (m *Monitor) record(c *checker, cnt *counter, err error) (Event, bool) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := c.st
	st.checks++
	st.lastErr = ""
	if err != nil {
		st.failures++
		st.lastErr = err.Error()
	}
	s := c.target.Spec
	if !cnt.observe(err == nil, s.Rise, s.Fall) {
		return Event{}, false
	}
	st.up, st.since = cnt.up, now
	ev := Event{Key: c.target.Key, Addr: c.target.Addr, Up: cnt.up, At: now}
	if cnt.up {
		ev.Reason = fmt.Sprintf("%d consecutive %s checks succeeded", s.Rise, s.Kind)
	} else {
		ev.Reason = fmt.Sprintf("%d consecutive %s checks failed, last: %v", s.Fall, s.Kind, err)
	}
	return ev, true
}

// State returns every target's state, by key.
func (m *Monitor) State() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.checkers))
	for _, c := range m.checkers {
		out = append(out, Status{
			Key:       c.target.Key,
			Addr:      c.target.Addr,
			Kind:      c.target.Spec.Kind,
			Up:        c.st.up,
			Since:     c.st.since,
			LastError: c.st.lastErr,
			Checks:    c.st.checks,
			Failures:  c.st.failures,
		})
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Up reports whether the target with key is up; known is false when there
// is no such target.
func (m *Monitor) Up(key string) (up, known bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.checkers[key]
	if !ok {
		return false, false
	}
	return c.st.up, true
}

// Close stops every check and waits for their goroutines, callbacks
// included, to end. Update after Close does nothing.
func (m *Monitor) Close() {
	m.mu.Lock()
	m.closed = true
	for key, c := range m.checkers {
		c.cancel()
		delete(m.checkers, key)
	}
	m.mu.Unlock()
	m.wg.Wait()
}
