// Package config is the director's configuration: the TOML schema, its Go
// model and its validation. A file that does not validate must never start
// or change a director, so Parse is strict: unknown keys, bad values and
// inconsistencies are all errors, each reported with its file and line.
//
// The schema is documented by the example files in configs/. Values are
// parsed once, here, to the types their users take (xvs.XDPMode,
// conntrack.FullPolicy, ...): nothing downstream reads a setting's string.
//
// toml.go reads TOML tables key by key with lines for every problem, and
// knows no schema; parse.go (with bgp.go, group.go, health.go and
// scaleout.go) is xvs's schema; marshal.go writes a Config back as a file.
package config

import (
	"net/netip"
	"time"

	"github.com/xvs-lb/xvs/conntrack"
	"github.com/xvs-lb/xvs/internal/xvs"
)

// Defaults for what a file may leave out. The timeouts are IPVS's.
const (
	DefaultTCPTimeout    = 900 * time.Second
	DefaultTCPFinTimeout = 120 * time.Second
	DefaultUDPTimeout    = 300 * time.Second
	DefaultScheduler     = "wlc" // ipvsadm's default
	DefaultWeight        = 1
	DefaultLogLevel      = "info"
	DefaultConnections   = 1 << 20
	DefaultBusyPoll      = 20 * time.Microsecond // DPDK's AF_XDP busy_poll timeout
)

// Config is a validated configuration with every default filled in.
type Config struct {
	Director Director
	Timeouts Timeouts
	Services []Service
	BGP      *BGP      // nil: no BGP
	Sync     *Sync     // nil: no connection sync
	Failover *Failover // nil: no active/standby
	Source   string    // the file it was read from
}

// Director holds the director-wide settings.
type Director struct {
	Interfaces []string     // at least one
	XDPMode    xvs.XDPMode  // how the steering program attaches (default auto)
	ZeroCopy   xvs.ZeroCopy // whether AF_XDP binds zero-copy (default auto)
	CPUs       []int        // CPUs to pin workers to, in order; nil leaves it to the director
	LogLevel   string       // debug, info, warn or error
	// SloppyTCP schedules TCP packets of connections the director has no
	// entry for, not only SYNs (IPVS's sloppy_tcp): with mh across several
	// directors, a connection that moves to another director keeps its
	// real server.
	SloppyTCP bool
	// Connections is the connection table's capacity (each connection
	// with both of its keys; about 153 bytes each).
	Connections int
	// WhenFull is what a full table does with a new connection: refuse it
	// (counted as table_full), or evict the idle entry closest to expiry
	// (never an established one that has not expired): what keeps a SYN
	// flood from locking new clients out. The file names them "refuse"
	// and "evict".
	WhenFull conntrack.FullPolicy

	// Data path tuning (make bench's BENCH_TUNE=1 measures each knob); a
	// zero value leaves the data path's default.
	BatchSize  int // frames a worker takes from an RX ring at once
	RingSize   int // entries in each AF_XDP ring (RX, TX, fill, completion)
	UMEMFrames int // frames in each worker's UMEM
	// IdleSpins is how many empty polls of its rings a worker makes before
	// it sleeps in poll(2); -1: it never sleeps (busy poll).
	IdleSpins int
	// BusyPoll, when positive, has the workers run their queues' NAPI
	// themselves (SO_PREFER_BUSY_POLL, SO_BUSY_POLL of this long), with
	// the interfaces' interrupts deferred while they do; the file's
	// busy_poll (true is DefaultBusyPoll).
	BusyPoll time.Duration
	// NoNeedWakeup binds the sockets without XDP_USE_NEED_WAKEUP, so the
	// kernel is kicked after every batch whether it asked or not.
	NoNeedWakeup bool
	// FastPath is where established connections are forwarded by XDP
	// itself (default auto). It may change on reload.
	FastPath xvs.FastPath
	// VerifyChecksums (debug) checks every frame's checksums on the way
	// in and out and counts and logs frames sent with one their receiver
	// will reject.
	VerifyChecksums bool
}

// Timeouts are the connection idle timeouts, as ipvsadm --set tcp tcpfin udp.
type Timeouts struct {
	TCP    time.Duration // established TCP
	TCPFin time.Duration // TCP after a FIN
	UDP    time.Duration
}

// Service is a virtual service: what clients connect to. A [[group]] (the
// firewall-mark service of ipvsadm -f) is a Service too: it has Matches
// instead of one VIP, port and protocol.
type Service struct {
	Name      string // optional label; required for groups
	VIP       netip.Addr
	Port      uint16 // never 0
	Protocol  xvs.Protocol
	Scheduler string   // one of sched.Names()
	Flags     []string // scheduler flags (ipvsadm -b): sh-fallback, sh-port, mh-fallback, mh-port
	// Persistence is ipvsadm -p: a client keeps its real server across
	// connections until this long after its last connection. 0 = none.
	Persistence time.Duration
	// PersistPrefix is ipvsadm -M as a prefix length: clients whose
	// addresses share it share a real server. 0 = the whole address.
	PersistPrefix int
	// LocalAddrs are FullNAT's local addresses (required when a real
	// server uses fullnat); TOA passes the client's address to real
	// servers in a TCP option.
	LocalAddrs []netip.Addr
	TOA        bool
	// NoFastPath keeps the service's connections off the XDP fast path
	// (fast_path = "off").
	NoFastPath bool
	// SynProxy answers SYNs with SYN cookies and opens connections to
	// real servers only for clients whose ACK proves their address.
	SynProxy bool
	// LocalPortMin..LocalPortMax is FullNAT's local port range; 0, 0: the
	// data path's default (1024-65535). A small range caps the connections
	// to each real server at addresses x ports.
	LocalPortMin, LocalPortMax uint16
	// Mark and Matches are set for groups only.
	Mark    uint32
	Matches []Match
	Reals   []Real
	// Health is how the real servers are checked; nil = not at all.
	Health *HealthCheck
	Line   int // line of the service's table in Config.Source
}

// IsGroup reports whether s is a [[group]] of matches.
func (s *Service) IsGroup() bool { return len(s.Matches) > 0 }

// Match is one (VIP, port range, protocol) a group catches.
type Match struct {
	VIP              netip.Addr
	FromPort, ToPort uint16
	Protocol         xvs.Protocol
	Line             int
}

// Real is a real server of a service. In a group, Port 0 keeps each
// packet's destination port.
type Real struct {
	Address netip.Addr // same family as the service's VIP
	Port    uint16     // equal to the service port for MethodDR
	Weight  int        // 0..65535; 0 takes no new connections
	Method  xvs.Method
	// Connection thresholds (ipvsadm -x, -y): over Upper active+inactive
	// connections the server takes no new ones until it is below Lower
	// (or 3/4 of Upper when Lower is 0). 0 = no limit.
	UpperThreshold, LowerThreshold int
	Line                           int // line of the real server's table in Config.Source
}
