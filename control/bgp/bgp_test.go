// gobgp cannot set TCP MD5 keys (nor the GTSM TTL) on the MPTCP listening
// sockets Go opens by default; see mptcp.go. xvsd needs the same line.
//
//go:debug multipathtcp=0

package bgp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"
)

// gobgp's BgpServer.Serve loops forever: v3 has no way to stop it, so every
// Speaker leaves that goroutine behind (see Start). Everything else must go.
var ignoreServe = goleak.IgnoreAnyFunction("github.com/osrg/gobgp/v3/pkg/server.(*BgpServer).Serve")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, ignoreServe)
}

var ip = netip.MustParseAddr

// verifyNoLeaks checks, once t and its cleanups (registered later, so run
// earlier) are done, that no goroutine outlives it but gobgp's Serve.
func verifyNoLeaks(t *testing.T) {
	t.Helper()
	opts := []goleak.Option{goleak.IgnoreCurrent(), ignoreServe}
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for deadline := start.Add(d); ; {
		if cond() {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startSpeaker(t *testing.T, cfg Config) *Speaker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Start(ctx, cfg, zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func established(s *Speaker, peer netip.Addr) bool {
	for _, p := range s.Peers() {
		if p.Address == peer && p.State == "established" {
			return true
		}
	}
	return false
}

func routesByPrefix(t *testing.T, s *Speaker) map[netip.Prefix]Route {
	t.Helper()
	rs, err := s.Received()
	if err != nil {
		t.Fatalf("Received: %v", err)
	}
	m := make(map[netip.Prefix]Route, len(rs))
	for _, r := range rs {
		m[r.Prefix] = r
	}
	return m
}

// TestAnnounceWithdraw runs two speakers against each other over loopback:
// the director (AS 65001, dials out, does not listen) and a "router" (AS
// 65002, passive).
func TestAnnounceWithdraw(t *testing.T) {
	verifyNoLeaks(t)
	lo := ip("127.0.0.1")
	routerPort := freePort(t)

	// The router starts first: gobgp's StartBgp writes package globals of
	// its table package, and this order (with the Peers calls below) keeps
	// the two servers' accesses ordered for the race detector.
	router := startSpeaker(t, Config{
		LocalAS:     65002,
		RouterID:    ip("192.0.2.2"),
		ListenPort:  routerPort,
		ListenAddrs: []netip.Addr{lo},
		Peers:       []Peer{{Address: lo, AS: 65001, Passive: true}},
	})
	director := startSpeaker(t, Config{
		LocalAS:     65001,
		RouterID:    ip("192.0.2.1"),
		ListenPort:  -1,
		NextHop:     ip("198.18.0.1"),
		NextHop6:    ip("fd00:18::1"),
		Peers:       []Peer{{Address: lo, AS: 65002, Port: uint16(routerPort)}},
		Communities: []string{"65001:100", "65001:200"},
	})
	_ = router.Peers()

	// Announce before the session is up: the routes must follow once it is.
	vip4, vip6 := ip("198.18.0.100"), ip("fd00:18::100")
	if err := director.SetVIPs([]netip.Addr{vip6, vip4, vip4}); err != nil {
		t.Fatalf("SetVIPs: %v", err)
	}
	if got, want := director.Announced(), []netip.Addr{vip4, vip6}; !slices.Equal(got, want) {
		t.Fatalf("Announced = %v, want %v", got, want)
	}

	took := waitFor(t, 10*time.Second, "sessions established", func() bool {
		return established(director, lo) && established(router, lo)
	})
	t.Logf("session up after %v", took)

	pfx4, pfx6 := netip.PrefixFrom(vip4, 32), netip.PrefixFrom(vip6, 128)
	waitFor(t, 3*time.Second, "router learns both VIPs", func() bool {
		m := routesByPrefix(t, router)
		_, ok4 := m[pfx4]
		_, ok6 := m[pfx6]
		return ok4 && ok6
	})
	m := routesByPrefix(t, router)
	if len(m) != 2 {
		t.Errorf("router learnt %d routes, want 2: %v", len(m), m)
	}
	wantComm := []string{"65001:100", "65001:200"}
	for pfx, nh := range map[netip.Prefix]netip.Addr{pfx4: ip("198.18.0.1"), pfx6: ip("fd00:18::1")} {
		r := m[pfx]
		if r.NextHop != nh {
			t.Errorf("%v: next hop %v, want %v", pfx, r.NextHop, nh)
		}
		if !slices.Equal(r.Communities, wantComm) {
			t.Errorf("%v: communities %v, want %v", pfx, r.Communities, wantComm)
		}
		if !slices.Equal(r.ASPath, []uint32{65001}) {
			t.Errorf("%v: AS path %v, want [65001]", pfx, r.ASPath)
		}
		if r.Peer != lo || !r.Best {
			t.Errorf("%v: peer %v best %v, want %v true", pfx, r.Peer, r.Best, lo)
		}
	}
	// The director originates, it learns nothing.
	if rs, err := director.Received(); err != nil || len(rs) != 0 {
		t.Errorf("director Received = %v, %v; want none", rs, err)
	}

	dp, rp := director.Peers(), router.Peers()
	if len(dp) != 1 || dp[0].AS != 65002 || dp[0].Advertised != 2 || dp[0].Uptime <= 0 || dp[0].Admin != "up" {
		t.Errorf("director Peers = %+v, want AS 65002, 2 advertised, uptime > 0, admin up", dp)
	}
	if len(rp) != 1 || rp[0].AS != 65001 || rp[0].Received != 2 || rp[0].Accepted != 2 {
		t.Errorf("router Peers = %+v, want AS 65001, 2 received and accepted", rp)
	}

	// Idempotent: the same set again changes nothing.
	if err := director.SetVIPs([]netip.Addr{vip4, vip6}); err != nil {
		t.Fatalf("SetVIPs (same set): %v", err)
	}

	// Drop the IPv6 VIP: the router must lose it within a second.
	if err := director.SetVIPs([]netip.Addr{vip4}); err != nil {
		t.Fatalf("SetVIPs (withdraw): %v", err)
	}
	if got := director.Announced(); !slices.Equal(got, []netip.Addr{vip4}) {
		t.Fatalf("Announced = %v, want [%v]", got, vip4)
	}
	took = waitFor(t, time.Second, "router drops the withdrawn VIP", func() bool {
		m := routesByPrefix(t, router)
		_, ok4 := m[pfx4]
		_, ok6 := m[pfx6]
		return ok4 && !ok6
	})
	t.Logf("withdrawal seen after %v", took)

	// Swap: the IPv4 VIP goes, the IPv6 one comes back.
	if err := director.SetVIPs([]netip.Addr{vip6}); err != nil {
		t.Fatalf("SetVIPs (swap): %v", err)
	}
	waitFor(t, time.Second, "router follows the swap", func() bool {
		m := routesByPrefix(t, router)
		_, ok4 := m[pfx4]
		r6, ok6 := m[pfx6]
		return !ok4 && ok6 && r6.NextHop == ip("fd00:18::1")
	})

	// Close: NOTIFICATION, so the router must not wait for the 9 s hold
	// time to drop the session and the route.
	if err := director.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	took = waitFor(t, 3*time.Second, "router sees the session go down and the routes go", func() bool {
		return !established(router, lo) && len(routesByPrefix(t, router)) == 0
	})
	t.Logf("session down and routes gone after %v", took)

	if err := director.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := director.SetVIPs([]netip.Addr{vip4}); !errors.Is(err, ErrClosed) {
		t.Errorf("SetVIPs after Close = %v, want ErrClosed", err)
	}
	if _, err := director.Received(); !errors.Is(err, ErrClosed) {
		t.Errorf("Received after Close = %v, want ErrClosed", err)
	}
	if p := director.Peers(); p != nil {
		t.Errorf("Peers after Close = %v, want nil", p)
	}
	if got := director.Announced(); len(got) != 0 {
		t.Errorf("Announced after Close = %v, want none", got)
	}
	if err := router.Close(); err != nil {
		t.Fatalf("router Close: %v", err)
	}
}

func TestSetVIPsRejects(t *testing.T) {
	verifyNoLeaks(t)
	// A peer on a port nobody listens on: the session never comes up, which
	// does not matter to the local RIB.
	s := startSpeaker(t, Config{
		LocalAS:    65001,
		RouterID:   ip("192.0.2.1"),
		ListenPort: -1,
		Peers:      []Peer{{Address: ip("127.0.0.1"), AS: 65002, Port: uint16(freePort(t))}},
	})
	vip := ip("198.18.0.100")
	if err := s.SetVIPs([]netip.Addr{vip}); err != nil {
		t.Fatalf("SetVIPs: %v", err)
	}
	for _, tt := range []struct {
		vips []netip.Addr
		want string
	}{
		{[]netip.Addr{{}}, "not set"},
		{[]netip.Addr{ip("0.0.0.0")}, "unspecified"},
		{[]netip.Addr{ip("239.1.1.1")}, "multicast"},
		{[]netip.Addr{ip("::ffff:198.18.0.1")}, "IPv4 form"},
		{[]netip.Addr{ip("fe80::1%eth0")}, "zoned"},
		// No NextHop6 and an IPv4 peer: no next hop to announce it with.
		{[]netip.Addr{ip("198.18.0.101"), ip("fd00:18::100")}, "no IPv6 next hop for IPv4 peers"},
	} {
		err := s.SetVIPs(tt.vips)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("SetVIPs(%v) = %v, want error containing %q", tt.vips, err, tt.want)
		}
		// A rejected list changes nothing.
		if got := s.Announced(); !slices.Equal(got, []netip.Addr{vip}) {
			t.Fatalf("after SetVIPs(%v): Announced = %v, want [%v]", tt.vips, got, vip)
		}
	}
	ps := s.Peers()
	if len(ps) != 1 || ps[0].State == "established" || ps[0].Uptime != 0 || ps[0].Address != ip("127.0.0.1") {
		t.Errorf("Peers = %+v, want one peer 127.0.0.1, not established", ps)
	}
	if err := s.SetVIPs(nil); err != nil {
		t.Fatalf("SetVIPs(nil): %v", err)
	}
	if got := s.Announced(); len(got) != 0 {
		t.Errorf("Announced = %v, want none", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStartErrors(t *testing.T) {
	verifyNoLeaks(t)
	lo := ip("127.0.0.1")
	base := Config{LocalAS: 65001, RouterID: ip("192.0.2.1"), Peers: []Peer{{Address: lo, AS: 65002, Passive: true}}}

	if _, err := Start(context.Background(), Config{}, nil); err == nil || !strings.Contains(err.Error(), "local AS") {
		t.Errorf("Start(zero Config) = %v, want a local AS error", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Start(ctx, base, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Start(cancelled ctx) = %v, want context.Canceled", err)
	}

	// A port already taken must fail Start, not leave a deaf speaker.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := base
	cfg.ListenPort = int32(l.Addr().(*net.TCPAddr).Port)
	cfg.ListenAddrs = []netip.Addr{lo}
	if s, err := Start(context.Background(), cfg, nil); err == nil {
		s.Close()
		t.Errorf("Start on a busy port succeeded")
	} else if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Start on a busy port = %v, want address already in use", err)
	}
}

func TestZapLogger(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := newZapLogger(zap.New(core))

	l.Debug("hidden", nil)
	l.Info("peer up", gobgplog.Fields{"Topic": "Peer", "Key": "192.0.2.254"})
	l.Warn("warn", nil)
	l.Error("error", gobgplog.Fields{"Error": errors.New("boom")})
	if l.GetLevel() != gobgplog.InfoLevel {
		t.Errorf("GetLevel = %v, want InfoLevel", l.GetLevel())
	}
	l.SetLevel(gobgplog.DebugLevel)
	l.Debug("shown", nil)
	l.SetLevel(gobgplog.ErrorLevel)
	l.Info("hidden too", nil)

	var msgs []string
	for _, e := range logs.All() {
		msgs = append(msgs, e.Message)
	}
	if want := []string{"peer up", "warn", "error", "shown"}; !slices.Equal(msgs, want) {
		t.Errorf("logged %q, want %q", msgs, want)
	}
	if e := logs.All()[0]; e.Level != zapcore.InfoLevel || e.ContextMap()["Key"] != "192.0.2.254" || e.ContextMap()["Topic"] != "Peer" {
		t.Errorf("first entry = %+v, want info with Topic and Key fields", e)
	}

	for _, f := range []func(){
		func() { l.Panic("logic bug", nil) },
		func() { l.Fatal("fatal", nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Panic/Fatal returned")
				}
			}()
			f()
		}()
	}
	if n := logs.Len(); n != 6 {
		t.Errorf("%d entries after Panic and Fatal, want 6 (both logged)", n)
	}
}

// md5Supported reports whether the kernel accepts TCP MD5 keys.
func md5Supported() bool {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	sig := unix.TCPMD5Sig{Keylen: 3}
	copy(sig.Key[:], "xvs")
	sig.Addr.Family = unix.AF_INET
	copy(sig.Addr.Data[2:], []byte{127, 0, 0, 1})
	return unix.SetsockoptTCPMD5Sig(fd, unix.IPPROTO_TCP, unix.TCP_MD5SIG, &sig) == nil
}

// TestPassword checks that Peer.Password reaches the socket: the session
// comes up with equal keys and stays down with different ones.
func TestPassword(t *testing.T) {
	if !md5Supported() {
		t.Skip("kernel without TCP MD5 signatures")
	}
	verifyNoLeaks(t)
	lo := ip("127.0.0.1")
	for _, tt := range []struct {
		name             string
		director, router string
		wantUp           bool
	}{
		{"same key", "xvs-secret", "xvs-secret", true},
		{"different keys", "xvs-secret", "other", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			port := freePort(t)
			router := startSpeaker(t, Config{
				LocalAS: 65002, RouterID: ip("192.0.2.2"), ListenPort: port, ListenAddrs: []netip.Addr{lo},
				Peers: []Peer{{Address: lo, AS: 65001, Passive: true, Password: tt.router}},
			})
			director := startSpeaker(t, Config{
				LocalAS: 65001, RouterID: ip("192.0.2.1"), ListenPort: -1,
				Peers: []Peer{{Address: lo, AS: 65002, Port: uint16(port), Password: tt.director}},
			})
			_ = router.Peers()
			up := func() bool { return established(director, lo) && established(router, lo) }
			if tt.wantUp {
				waitFor(t, 10*time.Second, "session established", up)
				return
			}
			// The first dial comes 1-2 s after start; give it time to fail.
			for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if up() {
					t.Fatal("session came up with different MD5 keys")
				}
			}
		})
	}
}
