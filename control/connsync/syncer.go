package connsync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Conn is one connection entry, described by value so that any director can install it.
type Conn struct {
	Proto   uint8          // 6, 17
	Client  netip.AddrPort // original source
	Virtual netip.AddrPort // VIP:port (for groups: the packet's VIP:port)
	Real    netip.AddrPort // real server address and port actually used
	Local   netip.AddrPort // FullNAT: LIP:lport; zero otherwise
	Method  uint8          // 0 DR, 1 NAT, 2 TUN, 3 FullNAT (the data plane's numbering)
	State   uint8          // the connection table's TCP state number (opaque here)
	Expires time.Duration  // remaining lifetime at send time
	// The client side, for directors that carry replies (NAT, FullNAT):
	// the interface slot and next hop's MAC replies to the client leave by.
	// Zero MAC: not sent.
	InPort  uint8
	PeerMAC [6]byte
}

// Config configures a Syncer.
type Config struct {
	// Listen is the UDP address to receive on; datagrams are sent from it too, so peers see it as
	// the source address.
	Listen netip.AddrPort
	// Peers are where entries go, each datagram to each peer. A multicast address is joined on
	// Listen's socket (which must then be bound to the group's port on an address that receives it,
	// such as 0.0.0.0) and sent to with a TTL of 1.
	Peers []netip.AddrPort
	// Key is the shared secret, at least 16 bytes, that authenticates every datagram.
	Key []byte
	// NodeID identifies this director among its peers; it must be non-zero and unique.
	NodeID uint32
	// MaxBytesPerSecond bounds the UDP payload sent, counting a datagram once per peer
	// (default 10 MB/s). Live entries that exceed it are coalesced or dropped; snapshots are paced.
	MaxBytesPerSecond int
	// BatchDelay is how long an entry may wait for others to share its datagram (default 10 ms).
	BatchDelay time.Duration
	// QueueSize bounds the entries published but not yet taken by the sender (default 16384).
	QueueSize int
	// Interface is the interface sync datagrams use (ipvsadm's --mcast-interface): multicast peers
	// are joined and sent to through it, and the socket is bound to it (SO_BINDTODEVICE), so that
	// unicast datagrams too leave and arrive by it only. Empty lets the kernel choose by route.
	Interface string
	// Roles are IPVS's sync daemon roles this Syncer plays: a Master sends the entries published to
	// it and serves snapshots, a Backup asks for a snapshot at Start and hands what its peers send to
	// the Sink. Zero is both, as every director was before the roles.
	Roles Role
	// SyncID is IPVS's syncid: a Master stamps it on every entry it sends, and a Backup with a
	// non-zero SyncID hands the Sink only entries stamped with the same id (others are counted in
	// Stats.WrongSyncID). 0..255.
	SyncID uint8
}

// Role is a set of IPVS sync daemon roles.
type Role uint8

// The roles.
const (
	Master Role = 1 << iota // sends
	Backup                  // receives
)

// roles are the roles c asks for, zero being both.
func (c *Config) roles() Role {
	if c.Roles == 0 {
		return Master | Backup
	}
	return c.Roles
}

// Has reports whether r includes o.
func (r Role) Has(o Role) bool { return r&o != 0 }

// Source lists every current entry, for a peer that asks for a snapshot. yield may block to pace the
// snapshot to the bandwidth limit, and returns false when the Syncer is closing.
type Source interface{ Snapshot(yield func(Conn) bool) }

// Sink installs entries received from peers. Apply is called from the receive goroutine, one call per
// datagram; conns is reused after Apply returns.
type Sink interface{ Apply(conns []Conn) }

// Stats are a Syncer's counters since Start. Datagrams, entries and bytes sent count once per
// destination.
type Stats struct {
	SentDatagrams uint64
	SentEntries   uint64
	SentBytes     uint64 // UDP payload
	RecvDatagrams uint64 // accepted
	RecvEntries   uint64 // handed to the Sink, snapshots included

	// Received datagrams rejected, by reason.
	Truncated    uint64 // shorter than a header and MAC
	BadVersion   uint64
	AuthFailures uint64 // bad MAC (wrong key, mangled or cut short)
	Replays      uint64 // sequence number seen before or too old
	ClockSkew    uint64 // timestamp more than MaxClockSkew from ours
	Malformed    uint64 // bad magic, oversize, or authenticated but inconsistent
	Misdirected  uint64 // snapshot data for another node
	Own          uint64 // our own datagrams (multicast loopback); ignored
	WrongSyncID  uint64 // entries and snapshot chunks stamped with a sync id a Backup does not take
	NotBackup    uint64 // entries and snapshot chunks that arrived at a Syncer that is no Backup
	NotMaster    uint64 // snapshot requests that arrived at a Syncer that is no Master
	RecvErrors   uint64 // socket read errors

	// Coalesced counts entries that replaced an unsent entry of the same connection.
	Coalesced uint64
	Drops     Drops

	SnapshotRequests        uint64 // requests sent
	SnapshotsServed         uint64 // snapshots sent in full to a requester
	SnapshotsRefused        uint64 // requests dropped because too many were waiting
	SnapshotsReceived       uint64 // snapshots whose end arrived with every entry
	SnapshotsIncomplete     uint64 // snapshots whose end arrived with entries missing
	SnapshotEntriesSent     uint64
	SnapshotEntriesReceived uint64
}

// Drops counts entries not sent, by reason.
type Drops struct {
	QueueFull   uint64 // Publish found the queue full
	RateLimited uint64 // over the bandwidth limit with no unsent entry of the same connection to replace
	Invalid     uint64 // missing address, or client and VIP (or real server and local) of different families
	SendErrors  uint64 // datagrams whose write to a peer failed
}

// MaxClockSkew is how far a datagram's timestamp may be from the receiver's clock.
const MaxClockSkew = 30 * time.Second

const (
	defaultRate       = 10_000_000
	defaultBatchDelay = 10 * time.Millisecond
	defaultQueueSize  = 16384
	minKeyLen         = 16
	// drainMax bounds the entries the sender takes from the queue between two flushes.
	drainMax = 1024
	// serveQueue bounds the snapshot requests waiting to be served.
	serveQueue = 8
)

type counters struct {
	sentDatagrams, sentEntries, sentBytes     atomic.Uint64
	recvDatagrams, recvEntries                atomic.Uint64
	truncated, badVersion, authFailures       atomic.Uint64
	replays, clockSkew, malformed             atomic.Uint64
	misdirected, own, recvErrors              atomic.Uint64
	wrongSyncID, notBackup, notMaster         atomic.Uint64
	coalesced                                 atomic.Uint64
	queueFull, rateLimited, invalid, sendErrs atomic.Uint64
	snapRequests, snapServed, snapRefused     atomic.Uint64
	snapReceived, snapIncomplete              atomic.Uint64
	snapEntriesSent, snapEntriesReceived      atomic.Uint64
}

type snapshotRequest struct {
	node, id uint32
	to       netip.AddrPort
}

// Syncer exchanges connection entries with peer directors over authenticated UDP.
type Syncer struct {
	cfg   Config
	peers []netip.AddrPort
	log   *zap.Logger
	conn  *net.UDPConn
	src   Source
	sink  Sink
	start time.Time

	queue    *queue
	idle     atomic.Bool   // the sender is about to sleep or asleep, and wants a wake
	wake     chan struct{} // capacity 1
	snapReq  chan struct{}
	serveReq chan snapshotRequest
	bucket   *bucket
	seq      atomic.Uint64
	reqID    atomic.Uint32

	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	mu        sync.Mutex
	stopCtx   func() bool // unregisters the AfterFunc that closes the Syncer with its context; under mu
	wg        sync.WaitGroup
	stats     counters
}

// Start opens the socket, asks the peers for a snapshot, and runs the Syncer until Close or until ctx
// is done. src and sink may be nil: a nil Source serves empty snapshots, a nil Sink discards what
// arrives.
func Start(ctx context.Context, cfg Config, src Source, sink Sink, log *zap.Logger) (*Syncer, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	peers := make([]netip.AddrPort, len(cfg.Peers))
	for i, p := range cfg.Peers {
		peers[i] = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(cfg.Listen))
	if err != nil {
		return nil, fmt.Errorf("connsync listen %s: %w", cfg.Listen, err)
	}
	if err := bindInterface(conn, cfg.Interface); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connsync listen %s: %w", cfg.Listen, err)
	}
	if err := joinGroups(conn, peers, cfg.Interface); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connsync listen %s: %w", cfg.Listen, err)
	}
	now := time.Now()
	s := &Syncer{
		cfg:      cfg,
		peers:    peers,
		log:      log,
		conn:     conn,
		src:      src,
		sink:     sink,
		start:    now,
		queue:    newQueue(cfg.QueueSize),
		wake:     make(chan struct{}, 1),
		snapReq:  make(chan struct{}, 1),
		serveReq: make(chan snapshotRequest, serveQueue),
		bucket:   newBucket(cfg.MaxBytesPerSecond, max(cfg.MaxBytesPerSecond/20, MaxDatagram*max(1, len(peers))), now),
		done:     make(chan struct{}),
	}
	// Sequence numbers start at the clock so that a restarted director's exceed those it sent
	// before, which its peers remember.
	s.seq.Store(uint64(now.UnixNano()))
	if cfg.roles().Has(Backup) {
		s.snapReq <- struct{}{}
	}
	s.wg.Add(3)
	go s.sendLoop()
	go s.recvLoop()
	go s.serveLoop()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	s.mu.Lock()
	s.stopCtx = stop
	s.mu.Unlock()
	return s, nil
}

func (c *Config) setDefaults() error {
	if !c.Listen.IsValid() {
		return errors.New("connsync: no listen address")
	}
	if len(c.Key) < minKeyLen {
		return fmt.Errorf("connsync: key of %d bytes, need at least %d", len(c.Key), minKeyLen)
	}
	if c.NodeID == 0 {
		return errors.New("connsync: node id 0 is reserved")
	}
	for _, p := range c.Peers {
		if !p.IsValid() || p.Port() == 0 {
			return fmt.Errorf("connsync: invalid peer address %s", p)
		}
	}
	if c.MaxBytesPerSecond < 0 || c.BatchDelay < 0 || c.QueueSize < 0 {
		return errors.New("connsync: negative rate, batch delay or queue size")
	}
	if c.MaxBytesPerSecond == 0 {
		c.MaxBytesPerSecond = defaultRate
	}
	if c.BatchDelay == 0 {
		c.BatchDelay = defaultBatchDelay
	}
	if c.QueueSize == 0 {
		c.QueueSize = defaultQueueSize
	}
	c.Key = append([]byte(nil), c.Key...)
	return nil
}

// Publish queues c for the next batch. It is safe for concurrent use, never blocks, takes no lock and
// allocates nothing: when the queue is full, c is dropped and counted. A Syncer that is no Master
// sends nothing: c is dropped.
func (s *Syncer) Publish(c Conn) {
	if !s.cfg.roles().Has(Master) {
		return
	}
	if !validConn(&c) {
		s.stats.invalid.Add(1)
		return
	}
	if !s.queue.push(&c) {
		s.stats.queueFull.Add(1)
		return
	}
	// The sender stores idle before it checks the queue a last time, and we load it after pushing:
	// either it sees c, or we see it idle and wake it.
	if s.idle.Load() && s.idle.CompareAndSwap(true, false) {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// RequestSnapshot asks every peer for all its entries. Start does so once for a Backup; a Syncer
// that is no Backup asks for nothing.
func (s *Syncer) RequestSnapshot() {
	if !s.cfg.roles().Has(Backup) {
		return
	}
	select {
	case s.snapReq <- struct{}{}:
	default: // one is already on its way
	}
}

// LocalAddr is the address the Syncer receives on (useful when Listen's port is 0).
func (s *Syncer) LocalAddr() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Stats returns the counters.
func (s *Syncer) Stats() Stats {
	c := &s.stats
	return Stats{
		SentDatagrams: c.sentDatagrams.Load(),
		SentEntries:   c.sentEntries.Load(),
		SentBytes:     c.sentBytes.Load(),
		RecvDatagrams: c.recvDatagrams.Load(),
		RecvEntries:   c.recvEntries.Load(),
		Truncated:     c.truncated.Load(),
		BadVersion:    c.badVersion.Load(),
		AuthFailures:  c.authFailures.Load(),
		Replays:       c.replays.Load(),
		ClockSkew:     c.clockSkew.Load(),
		Malformed:     c.malformed.Load(),
		Misdirected:   c.misdirected.Load(),
		Own:           c.own.Load(),
		WrongSyncID:   c.wrongSyncID.Load(),
		NotBackup:     c.notBackup.Load(),
		NotMaster:     c.notMaster.Load(),
		RecvErrors:    c.recvErrors.Load(),
		Coalesced:     c.coalesced.Load(),
		Drops: Drops{
			QueueFull:   c.queueFull.Load(),
			RateLimited: c.rateLimited.Load(),
			Invalid:     c.invalid.Load(),
			SendErrors:  c.sendErrs.Load(),
		},
		SnapshotRequests:        c.snapRequests.Load(),
		SnapshotsServed:         c.snapServed.Load(),
		SnapshotsRefused:        c.snapRefused.Load(),
		SnapshotsReceived:       c.snapReceived.Load(),
		SnapshotsIncomplete:     c.snapIncomplete.Load(),
		SnapshotEntriesSent:     c.snapEntriesSent.Load(),
		SnapshotEntriesReceived: c.snapEntriesReceived.Load(),
	}
}

// Close stops the Syncer and waits for its goroutines. Entries not yet sent are discarded.
func (s *Syncer) Close() error {
	s.closeOnce.Do(func() {
		// Nil when ctx was done before Start registered the stop: then the AfterFunc is what runs.
		s.mu.Lock()
		if s.stopCtx != nil {
			s.stopCtx()
		}
		s.mu.Unlock()
		close(s.done)
		s.closeErr = s.conn.Close()
		s.wg.Wait()
	})
	return s.closeErr
}

// now is the Syncer's monotonic clock, in nanoseconds since Start.
func (s *Syncer) now(t time.Time) int64 { return int64(t.Sub(s.start)) }

// write sends a datagram of n entries to each address.
func (s *Syncer) write(b []byte, n int, to ...netip.AddrPort) {
	for _, a := range to {
		if _, err := s.conn.WriteToUDPAddrPort(b, a); err != nil {
			s.stats.sendErrs.Add(1)
			s.log.Debug("connsync send", zap.Stringer("peer", a), zap.Error(err))
			continue
		}
		s.stats.sentDatagrams.Add(1)
		s.stats.sentEntries.Add(uint64(n))
		s.stats.sentBytes.Add(uint64(len(b)))
	}
}

// sendLoop batches published entries into datagrams, within the bandwidth limit.
func (s *Syncer) sendLoop() {
	defer s.wg.Done()
	enc := newEncoder(s.cfg.Key)
	// Hold about 50 ms of the bandwidth's worth of small entries while waiting for tokens.
	capacity := min(max(s.cfg.MaxBytesPerSecond/20/entrySize4, 4*maxEntries), 1<<16)
	p := newPending(capacity)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var deadline time.Time // when the oldest waiting entry's batch must go; zero when none waits
	for {
		select {
		case <-s.snapReq:
			s.sendSnapshotRequest(enc)
		default:
		}
		now := time.Now()
		took := s.drain(p, s.now(now))
		var wait time.Duration
		if p.len() > 0 {
			if deadline.IsZero() {
				deadline = now.Add(s.cfg.BatchDelay)
			}
			wait = s.flush(enc, p, now, !now.Before(deadline))
		}
		if p.len() == 0 {
			deadline = time.Time{}
		}
		if took == drainMax {
			continue // more may be queued
		}
		if !deadline.IsZero() {
			next := deadline.Sub(now)
			if wait > 0 && (next <= 0 || wait < next) {
				next = wait
			}
			timer.Reset(max(next, 0))
		}
		s.idle.Store(true)
		if s.queue.ready() {
			s.idle.Store(false)
			continue
		}
		select {
		case <-s.done:
			timer.Stop()
			return
		case <-s.wake:
		case <-timer.C:
		case <-s.snapReq:
			s.sendSnapshotRequest(enc)
		}
		s.idle.Store(false)
		timer.Stop()
	}
}

// drain moves up to drainMax entries from the queue to p and returns how many it moved.
func (s *Syncer) drain(p *pending, at int64) int {
	var c Conn
	n := 0
	for n < drainMax && s.queue.pop(&c) {
		s.enqueue(p, &c, at)
		n++
	}
	return n
}

// entrySize4 is the size of an IPv4 entry without a local address, the smallest.
const entrySize4 = entryFixed + 3*(4+2)

func (s *Syncer) enqueue(p *pending, c *Conn, at int64) {
	added, coalesced := p.add(c, at)
	switch {
	case coalesced:
		s.stats.coalesced.Add(1)
	case !added:
		s.stats.rateLimited.Add(1)
	}
}

// flush sends full datagrams from p, and the last partial one too if all is set. It returns how long
// until the bandwidth allows the next datagram, or 0 if it sent everything it was asked to.
func (s *Syncer) flush(enc *encoder, p *pending, now time.Time, all bool) time.Duration {
	at := s.now(now)
	for p.len() > 0 {
		if !all && p.bytes < maxBody {
			return 0
		}
		enc.begin(msgEntries, 0, 0)
		n := 0
		for ; n < p.len(); n++ {
			e := p.at(n)
			if !enc.fits(e.size) {
				break
			}
			enc.add(&e.c, expiresMs(e.c.Expires-time.Duration(at-e.at)))
		}
		if len(s.peers) > 0 {
			if wait := s.bucket.take(now, (len(enc.buf)+macLen)*len(s.peers)); wait > 0 {
				return wait
			}
			b := enc.finish(s.cfg.NodeID, s.seq.Add(1), now.UnixNano(), uint32(s.cfg.SyncID))
			s.write(b, n, s.peers...)
		}
		p.pop(n)
	}
	return 0
}

func (s *Syncer) sendSnapshotRequest(enc *encoder) {
	if len(s.peers) == 0 {
		return
	}
	enc.begin(msgSnapshotRequest, 0, s.reqID.Add(1))
	now := time.Now()
	b := enc.finish(s.cfg.NodeID, s.seq.Add(1), now.UnixNano(), 0)
	// A request is tiny and rare: it always goes, and its cost is taken from later sends.
	s.bucket.charge(now, len(b)*len(s.peers))
	s.stats.snapRequests.Add(1)
	s.write(b, 0, s.peers...)
}

// peerState is what the receiver remembers of one sender.
type peerState struct {
	window replayWindow
	// The snapshot this node is sending us, and how many of its entries arrived; filtered: some of
	// its chunks were not ours to take (sync id, role), so its count says nothing of losses.
	snapRequest uint32
	snapEntries uint32
	filtered    bool
}

// recvLoop receives, authenticates and applies datagrams.
func (s *Syncer) recvLoop() {
	defer s.wg.Done()
	r := receiver{s: s, dec: newDecoder(s.cfg.Key), peers: make(map[uint32]*peerState)}
	buf := make([]byte, MaxDatagram+1) // one more, to see oversize datagrams
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.stats.recvErrors.Add(1)
			s.log.Debug("connsync receive", zap.Error(err))
			continue
		}
		r.handle(buf[:n], from, time.Now())
	}
}

type receiver struct {
	s     *Syncer
	dec   *decoder
	peers map[uint32]*peerState
}

// handle processes one datagram; it is the receive path's only per-datagram work.
func (r *receiver) handle(b []byte, from netip.AddrPort, now time.Time) {
	s := r.s
	h, conns, err := r.dec.decode(b)
	if err != nil {
		switch err {
		case errTruncated:
			s.stats.truncated.Add(1)
		case errVersion:
			s.stats.badVersion.Add(1)
		case errMAC:
			s.stats.authFailures.Add(1)
		default:
			s.stats.malformed.Add(1)
		}
		return
	}
	if h.node == s.cfg.NodeID {
		s.stats.own.Add(1)
		return
	}
	if skew := time.Duration(now.UnixNano() - h.time); skew > MaxClockSkew || skew < -MaxClockSkew {
		s.stats.clockSkew.Add(1)
		return
	}
	ps := r.peers[h.node]
	if ps == nil {
		ps = new(peerState)
		r.peers[h.node] = ps
	}
	if !ps.window.accept(h.seq) {
		s.stats.replays.Add(1)
		return
	}
	if (h.typ == msgSnapshotChunk || h.typ == msgSnapshotEnd) && h.target != s.cfg.NodeID {
		s.stats.misdirected.Add(1)
		return
	}
	s.stats.recvDatagrams.Add(1)
	switch h.typ {
	case msgEntries:
		if r.take(h) {
			r.apply(conns)
		}
	case msgSnapshotChunk:
		if ps.snapRequest != h.request {
			ps.snapRequest, ps.snapEntries, ps.filtered = h.request, 0, false
		}
		if !r.take(h) {
			ps.filtered = true
			return
		}
		ps.snapEntries += uint32(len(conns))
		s.stats.snapEntriesReceived.Add(uint64(len(conns)))
		r.apply(conns)
	case msgSnapshotEnd:
		var got uint32
		if ps.snapRequest == h.request {
			got = ps.snapEntries
			if ps.filtered {
				got = h.aux // what we did not take was not lost
			}
		}
		if got == h.aux {
			s.stats.snapReceived.Add(1)
		} else {
			s.stats.snapIncomplete.Add(1)
			s.log.Info("connsync snapshot incomplete", zap.Uint32("peer", h.node),
				zap.Uint32("entries", h.aux), zap.Uint32("received", got))
		}
		ps.snapRequest, ps.snapEntries, ps.filtered = 0, 0, false
	case msgSnapshotRequest:
		if !s.cfg.roles().Has(Master) {
			s.stats.notMaster.Add(1)
			return
		}
		select {
		case s.serveReq <- snapshotRequest{node: h.node, id: h.request, to: s.replyAddr(from)}:
		default:
			s.stats.snapRefused.Add(1)
		}
	}
}

// take reports whether a datagram's entries are this Syncer's to install: it is a Backup, and the
// entries carry its sync id (any, when that is 0, as IPVS's backup takes any syncid then).
func (r *receiver) take(h header) bool {
	s := r.s
	switch {
	case !s.cfg.roles().Has(Backup):
		s.stats.notBackup.Add(1)
		return false
	case s.cfg.SyncID != 0 && h.aux != uint32(s.cfg.SyncID):
		s.stats.wrongSyncID.Add(1)
		return false
	}
	return true
}

func (r *receiver) apply(conns []Conn) {
	r.s.stats.recvEntries.Add(uint64(len(conns)))
	if r.s.sink != nil {
		r.s.sink.Apply(conns)
	}
}

// replyAddr is where a snapshot for the sender of a request from addr goes: the configured peer address
// it matches, or else the address it came from (the requester's own socket: it may have a peer
// address we do not know, or be configured as a multicast group).
func (s *Syncer) replyAddr(from netip.AddrPort) netip.AddrPort {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	for _, p := range s.peers {
		if p == from {
			return p
		}
	}
	return from
}

// serveLoop sends snapshots to the peers that ask, one at a time.
func (s *Syncer) serveLoop() {
	defer s.wg.Done()
	enc := newEncoder(s.cfg.Key)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-s.done:
			return
		case r := <-s.serveReq:
			s.serve(enc, timer, r)
		}
	}
}

func (s *Syncer) serve(enc *encoder, timer *time.Timer, r snapshotRequest) {
	s.log.Debug("connsync serving snapshot", zap.Uint32("peer", r.node), zap.Stringer("addr", r.to))
	var total uint32
	ok := true
	enc.begin(msgSnapshotChunk, r.node, r.id)
	if s.src != nil {
		s.src.Snapshot(func(c Conn) bool {
			if !validConn(&c) {
				s.stats.invalid.Add(1)
				return true
			}
			if size := entrySize(&c); !enc.fits(size) {
				if ok = s.sendPaced(enc, timer, r.to, uint32(s.cfg.SyncID)); !ok {
					return false
				}
				enc.begin(msgSnapshotChunk, r.node, r.id)
			}
			enc.add(&c, expiresMs(c.Expires))
			total++
			return true
		})
	}
	if ok && enc.count() > 0 {
		ok = s.sendPaced(enc, timer, r.to, uint32(s.cfg.SyncID))
	}
	if !ok {
		return
	}
	enc.begin(msgSnapshotEnd, r.node, r.id)
	if s.sendPaced(enc, timer, r.to, total) {
		s.stats.snapServed.Add(1)
	}
}

// sendPaced waits for the bandwidth to allow enc's datagram, then sends it to to. It returns false if
// the Syncer closed meanwhile.
func (s *Syncer) sendPaced(enc *encoder, timer *time.Timer, to netip.AddrPort, aux uint32) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	cost := len(enc.buf) + macLen
	for {
		wait := s.bucket.take(time.Now(), cost)
		if wait == 0 {
			break
		}
		timer.Reset(wait)
		select {
		case <-s.done:
			timer.Stop()
			return false
		case <-timer.C:
		}
	}
	n := enc.count()
	b := enc.finish(s.cfg.NodeID, s.seq.Add(1), time.Now().UnixNano(), aux)
	s.write(b, n, to)
	s.stats.snapEntriesSent.Add(uint64(n))
	return true
}
