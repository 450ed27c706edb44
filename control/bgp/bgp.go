// Package bgp announces the director's healthy VIPs to routers over BGP.
//
// A Speaker embeds a gobgp server and advertises each VIP as a host route
// (/32 or /128) with the director's own address as next hop, so that routers
// send VIP traffic to this director, and, with several directors announcing
// the same VIPs, spread it across them by ECMP. When a VIP must stop
// receiving traffic (its service has no healthy real server, the director
// drains or stops), the caller drops it from the set and the route is
// withdrawn. A director that dies silently loses its routes after the hold
// time, which is short (9 s) by default.
//
// The Speaker only originates routes; it never installs what it learns.
package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"go.uber.org/zap"
)

// ErrClosed is returned by methods of a closed Speaker.
var ErrClosed = errors.New("bgp: speaker closed")

// Speaker is a running BGP speaker. Its methods are safe for concurrent use.
type Speaker struct {
	cfg settings
	log *zap.Logger
	srv *server.BgpServer

	mu        sync.Mutex
	closed    bool
	announced map[netip.Addr]bool
}

// PeerState is a snapshot of one session.
type PeerState struct {
	Address netip.Addr
	AS      uint32
	// State is the FSM state in lower case: "idle", "connect", "active",
	// "opensent", "openconfirm" or "established".
	State string
	// Admin is "up", "down" or "pfx_ct" (stopped by a prefix limit).
	Admin string
	// Uptime is how long the session has been established; 0 when it is
	// not.
	Uptime time.Duration
	// Received and Accepted count prefixes learnt from the peer, Advertised
	// the prefixes sent to it, over all address families.
	Received, Accepted, Advertised uint64
}

// Route is a route learnt from a peer (see Speaker.Received).
type Route struct {
	Prefix      netip.Prefix
	NextHop     netip.Addr
	Communities []string // "ASN:value", in the order received
	ASPath      []uint32
	Peer        netip.Addr // the neighbour it came from
	Best        bool
}

// apiFamily returns IPv4 or IPv6 unicast, the only families a Speaker
// deals in. Each call makes a new message: protobuf messages carry internal
// state and are not to be shared.
func apiFamily(ipv6 bool) *api.Family {
	if ipv6 {
		return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
}

// Start validates cfg, starts the BGP server and configures the peers. The
// sessions come up in the background; Peers reports their state. ctx bounds
// only the start-up: the Speaker runs until Close. log may be nil.
//
// gobgp's server goroutine (BgpServer.Serve) has no way to be stopped, so
// each Speaker leaves that one goroutine (idle, blocked in select) behind
// after Close. Create one Speaker per process, not one per reload.
func Start(ctx context.Context, cfg Config, log *zap.Logger) (*Speaker, error) {
	st, err := validate(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkMD5Listen(st, mptcpListen()); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("bgp")
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bgp: start: %w", err)
	}

	srv := server.NewBgpServer(server.LoggerOption(newZapLogger(log)))
	go srv.Serve()
	s := &Speaker{cfg: st, log: log, srv: srv, announced: make(map[netip.Addr]bool)}

	global := &api.Global{
		Asn:        st.LocalAS,
		RouterId:   st.RouterID.String(),
		ListenPort: st.ListenPort,
	}
	for _, a := range st.ListenAddrs {
		global.ListenAddresses = append(global.ListenAddresses, a.String())
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: global}); err != nil {
		srv.Stop()
		return nil, fmt.Errorf("bgp: start AS %d router id %s port %d: %w", st.LocalAS, st.RouterID, st.ListenPort, err)
	}
	for _, p := range st.Peers {
		if err := ctx.Err(); err != nil {
			srv.Stop()
			return nil, fmt.Errorf("bgp: start: %w", err)
		}
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.apiPeer(p)}); err != nil {
			srv.Stop()
			return nil, fmt.Errorf("bgp: add peer %s AS %d: %w", p.Address, p.AS, err)
		}
	}
	log.Info("speaker started",
		zap.Uint32("as", st.LocalAS), zap.Stringer("router_id", st.RouterID),
		zap.Int32("listen_port", st.ListenPort), zap.Int("peers", len(st.Peers)),
		zap.Duration("hold_time", st.HoldTime))
	return s, nil
}

func (s *Speaker) apiPeer(p Peer) *api.Peer {
	afs := []*api.AfiSafi{
		{Config: &api.AfiSafiConfig{Family: apiFamily(false), Enabled: true}},
		{Config: &api.AfiSafiConfig{Family: apiFamily(true), Enabled: true}},
	}
	return &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.AS,
			AuthPassword:    p.Password,
		},
		Transport: &api.Transport{
			PassiveMode: p.Passive,
			RemotePort:  uint32(p.Port),
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          s.cfg.holdSecs,
			KeepaliveInterval: max(s.cfg.holdSecs/3, 1),
			ConnectRetry:      uint64(connectRetry / time.Second),
		}},
		AfiSafis: afs,
	}
}

// SetVIPs makes the announced set exactly vips: routes for new VIPs are
// announced, routes for VIPs no longer listed are withdrawn, and the rest is
// left alone, so calling it often with an unchanged set costs nothing on the
// wire. Duplicates are ignored. The whole list is checked before anything
// changes; an error from the server part way leaves Announced reporting
// what actually is announced.
func (s *Speaker) SetVIPs(vips []netip.Addr) error {
	want := make(map[netip.Addr]bool, len(vips))
	for _, v := range vips {
		if err := s.checkVIP(v); err != nil {
			return err
		}
		want[v] = true
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	ctx := context.Background()
	var errs []error
	for _, v := range sortedKeys(s.announced) {
		if want[v] {
			continue
		}
		if err := s.withdraw(ctx, v); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(s.announced, v)
		s.log.Info("withdrew VIP", zap.Stringer("vip", v))
	}
	for _, v := range sortedKeys(want) {
		if s.announced[v] {
			continue
		}
		if err := s.announce(ctx, v); err != nil {
			errs = append(errs, err)
			continue
		}
		s.announced[v] = true
		s.log.Info("announced VIP", zap.Stringer("vip", v), zap.Stringer("next_hop", s.nextHop(v)))
	}
	return errors.Join(errs...)
}

func (s *Speaker) checkVIP(v netip.Addr) error {
	if err := checkUnicast(v); err != nil {
		return fmt.Errorf("bgp: VIP %q: %w", addrString(v), err)
	}
	// Without NextHop6, gobgp takes each session's local address as the
	// next hop, which for an IPv4 session is no IPv6 address at all.
	if v.Is6() && !s.cfg.NextHop6.IsValid() && slices.ContainsFunc(s.cfg.Peers, func(p Peer) bool { return p.Address.Is4() }) {
		return fmt.Errorf("bgp: VIP %s: no IPv6 next hop for IPv4 peers (set NextHop6)", v)
	}
	return nil
}

// nextHop returns the next hop announced with v; the unspecified address
// lets gobgp substitute each session's local address.
func (s *Speaker) nextHop(v netip.Addr) netip.Addr {
	if v.Is4() {
		return s.cfg.NextHop
	}
	if s.cfg.NextHop6.IsValid() {
		return s.cfg.NextHop6
	}
	return netip.IPv6Unspecified()
}

func (s *Speaker) announce(ctx context.Context, v netip.Addr) error {
	p, err := hostRoute(v, s.nextHop(v), s.cfg.communities)
	if err != nil {
		return fmt.Errorf("bgp: announce %s: %w", v, err)
	}
	if _, err := s.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p}); err != nil {
		return fmt.Errorf("bgp: announce %s: %w", v, err)
	}
	return nil
}

func (s *Speaker) withdraw(ctx context.Context, v netip.Addr) error {
	p, err := hostRoute(v, s.nextHop(v), s.cfg.communities)
	if err != nil {
		return fmt.Errorf("bgp: withdraw %s: %w", v, err)
	}
	if err := s.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: p.Family, Path: p}); err != nil {
		return fmt.Errorf("bgp: withdraw %s: %w", v, err)
	}
	return nil
}

// Announced returns the VIPs currently announced, sorted.
func (s *Speaker) Announced() []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedKeys(s.announced)
}

// Peers returns the state of every configured session, sorted by address.
// It returns nil once the Speaker is closed.
func (s *Speaker) Peers() []PeerState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	var out []PeerState
	// ListPeer's errors are only for a nil request.
	_ = s.srv.ListPeer(context.Background(), &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		out = append(out, peerState(p))
	})
	slices.SortFunc(out, func(a, b PeerState) int { return a.Address.Compare(b.Address) })
	return out
}

func peerState(p *api.Peer) PeerState {
	var ps PeerState
	if c := p.GetConf(); c != nil {
		ps.Address, _ = netip.ParseAddr(c.NeighborAddress)
		ps.AS = c.PeerAsn
	}
	if st := p.GetState(); st != nil {
		ps.State = strings.ToLower(st.SessionState.String())
		ps.Admin = strings.ToLower(st.AdminState.String())
		if st.PeerAsn != 0 {
			ps.AS = st.PeerAsn
		}
	}
	if up := p.GetTimers().GetState().GetUptime(); up != nil && p.GetState().GetSessionState() == api.PeerState_ESTABLISHED {
		ps.Uptime = max(time.Since(up.AsTime()), 0)
	}
	for _, af := range p.GetAfiSafis() {
		st := af.GetState()
		ps.Received += st.GetReceived()
		ps.Accepted += st.GetAccepted()
		ps.Advertised += st.GetAdvertised()
	}
	return ps
}

// Received returns the routes learnt from peers (IPv4 and IPv6 unicast),
// sorted by prefix. xvs never installs them; they are there to let an
// operator, or a test, see what the routers offer.
func (s *Speaker) Received() ([]Route, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	var out []Route
	var errs []error
	for _, ipv6 := range []bool{false, true} {
		f := apiFamily(ipv6)
		req := &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: f, EnableOnlyBinary: true}
		err := s.srv.ListPath(context.Background(), req, func(d *api.Destination) {
			for _, p := range d.GetPaths() {
				r, ok, err := learntRoute(p)
				if err != nil {
					errs = append(errs, fmt.Errorf("bgp: decode path for %s: %w", d.GetPrefix(), err))
					continue
				}
				if ok {
					out = append(out, r)
				}
			}
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("bgp: list %s paths: %w", f.GetAfi(), err))
		}
	}
	slices.SortFunc(out, func(a, b Route) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		if c := a.Prefix.Bits() - b.Prefix.Bits(); c != 0 {
			return c
		}
		return a.Peer.Compare(b.Peer)
	})
	return out, errors.Join(errs...)
}

// Close withdraws every VIP, ends each session with a NOTIFICATION (Cease,
// peer de-configured), closes the listeners and waits for the sessions'
// goroutines to finish. It is safe to call more than once.
func (s *Speaker) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true

	var err error
	if len(s.announced) > 0 {
		// Explicit withdrawals let peers drop the routes even where the
		// NOTIFICATION that follows is lost.
		if e := s.srv.DeletePath(context.Background(), &api.DeletePathRequest{TableType: api.TableType_GLOBAL}); e != nil {
			err = fmt.Errorf("bgp: withdraw all: %w", e)
		}
		s.log.Info("withdrew all VIPs", zap.Int("count", len(s.announced)))
		clear(s.announced)
	}
	// StopBgp deconfigures every neighbour (which sends the Cease) and
	// returns once their FSM goroutines have exited.
	s.srv.Stop()
	s.log.Info("speaker stopped")
	return err
}

func sortedKeys(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
