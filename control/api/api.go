// Package api is the protocol between xvsd and xvsadm: JSON requests and
// responses, one of each per connection, over a unix socket (default
// /run/xvs/xvsd.sock, mode 0600). The server checks the peer's credentials
// (SO_PEERCRED): root, or a member of the configured group.
//
// The model is ipvsadm's: services (virtual services, or groups of matches
// like ipvsadm -f), real servers, timeouts, and the connection table.
package api

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// DefaultSocket is where xvsd listens unless configured otherwise.
const DefaultSocket = "/run/xvs/xvsd.sock"

// Op is what a request asks for.
type Op string

const (
	OpList        Op = "list"         // services, real servers, counters (ipvsadm -L)
	OpConns       Op = "conns"        // the connection table (ipvsadm -L -c)
	OpStatus      Op = "status"       // the data path: workers, queues, XDP mode, drops
	OpAddService  Op = "add-service"  // -A
	OpEditService Op = "edit-service" // -E
	OpDelService  Op = "del-service"  // -D
	OpAddReal     Op = "add-real"     // -a
	OpEditReal    Op = "edit-real"    // -e
	OpDelReal     Op = "del-real"     // -d
	OpClear       Op = "clear"        // -C
	OpZero        Op = "zero"         // -Z (Service nil: all)
	OpSetTimeouts Op = "set-timeouts" // --set tcp tcpfin udp
	OpGetTimeouts Op = "get-timeouts" // -L --timeout
	OpReload      Op = "reload"       // re-read the configuration file
	OpSaveConfig  Op = "save-config"  // write the running state as TOML to Path
	OpRules       Op = "rules"        // the running state as ipvsadm -S rules (Text)
	OpRestore     Op = "restore"      // apply ipvsadm -R rules from Text
	OpDrain       Op = "drain"        // reserved for scale-out
	OpHealth      Op = "health"       // health-check state of every real server
	OpStartDaemon Op = "start-daemon" // --start-daemon master|backup: a connection sync role
	OpStopDaemon  Op = "stop-daemon"  // --stop-daemon master|backup
	OpDaemons     Op = "daemons"      // -L --daemon: the sync roles that run
)

// Sync daemon roles, as ipvsadm names them.
const (
	RoleMaster = "master" // sends this director's connections
	RoleBackup = "backup" // installs the peers' connections
)

// SyncDaemon is a connection sync role as ipvsadm --start-daemon and
// --stop-daemon name it.
type SyncDaemon struct {
	Role string `json:"role"` // RoleMaster or RoleBackup
	// Interface is --mcast-interface; "": as the other role has it, or
	// the route's.
	Interface string `json:"interface,omitempty"`
	// SyncID is --syncid, 0..255; nil: as the other role has it, or 0.
	SyncID *int `json:"sync_id,omitempty"`
}

// SyncDaemonState is a sync role that runs (-L --daemon).
type SyncDaemonState struct {
	Role string `json:"role"`
	// Interface is the one sync datagrams use: the configured one, or the
	// one that holds the listen address ("" when none does).
	Interface string `json:"interface"`
	SyncID    int    `json:"sync_id"`
	// Entries sent (master) and installed (backup); received entries a
	// backup did not take because of their sync id.
	Sent        uint64 `json:"sent"`
	Received    uint64 `json:"received"`
	WrongSyncID uint64 `json:"wrong_sync_id"`
}

// ServiceID names a service as ipvsadm does: protocol + VIP + port, or a
// group's mark (-f).
type ServiceID struct {
	Protocol string     `json:"protocol,omitempty"` // "tcp" | "udp"; empty with Mark
	VIP      netip.Addr `json:"vip,omitzero"`
	Port     uint16     `json:"port,omitempty"`
	Mark     uint32     `json:"mark,omitempty"`
}

// String names the service as ipvsadm's messages do: "TCP
// 198.18.0.100:80", "FWM 1".
func (id ServiceID) String() string {
	if id.Mark != 0 {
		return fmt.Sprintf("FWM %d", id.Mark)
	}
	return strings.ToUpper(id.Protocol) + " " + netip.AddrPortFrom(id.VIP, id.Port).String()
}

// Service is a virtual service's settings (what -A/-E take).
type Service struct {
	ServiceID
	Name          string        `json:"name,omitempty"`
	Scheduler     string        `json:"scheduler,omitempty"`   // -s
	Flags         []string      `json:"flags,omitempty"`       // -b
	Persistence   time.Duration `json:"persistence,omitempty"` // -p
	PersistPrefix int           `json:"persist_prefix,omitempty"`
	// Matches of a group (mark services, -f): which packets it takes.
	Matches []Match `json:"matches,omitempty"`
	// What xvs has and ipvsadm lacks (xvsadm's long options --laddr,
	// --local-ports, --toa, --no-fast-path, --health): FullNAT's local
	// addresses and port range (0, 0: the default), TOA, the XDP fast
	// path opt-out, and the health check as a TOML inline table's
	// contents (`check = "tcp", interval = "2s"`, see
	// config.ParseHealth); "" for none. An edit (-E) changes only those
	// it is given.
	LocalAddrs []netip.Addr `json:"local_addresses,omitempty"`
	LocalPorts [2]uint16    `json:"local_ports,omitzero"`
	TOA        bool         `json:"toa,omitempty"`
	NoFastPath bool         `json:"no_fast_path,omitempty"`
	SynProxy   bool         `json:"syn_proxy,omitempty"`
	Health     string       `json:"health,omitempty"`
}

// Match is one (VIP, port range, protocol) of a group.
type Match struct {
	Protocol string     `json:"protocol"`
	VIP      netip.Addr `json:"vip"`
	FromPort uint16     `json:"from_port"`
	ToPort   uint16     `json:"to_port"`
}

// Real is a real server's settings (what -a/-e take).
type Real struct {
	Addr           netip.Addr `json:"addr"`
	Port           uint16     `json:"port"`
	Method         string     `json:"method,omitempty"` // xvs.Method's name: "dr" (-g), "nat" (-m), "tun" (-i), "fullnat"
	Weight         *int       `json:"weight,omitempty"` // -w; nil: default 1 / unchanged
	UpperThreshold int        `json:"upper_threshold,omitempty"`
	LowerThreshold int        `json:"lower_threshold,omitempty"`
}

// Counters are ipvsadm --stats' counters; Rates are --rate's per second.
type Counters struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"in_pkts"`
	OutPkts  uint64 `json:"out_pkts"`
	InBytes  uint64 `json:"in_bytes"`
	OutBytes uint64 `json:"out_bytes"`
}

// Rates are per-second rates over the last estimation interval.
type Rates struct {
	CPS    float64 `json:"cps"`
	InPPS  float64 `json:"in_pps"`
	OutPPS float64 `json:"out_pps"`
	InBPS  float64 `json:"in_bps"`
	OutBPS float64 `json:"out_bps"`
}

// RealState is a real server as listed.
type RealState struct {
	Real
	// Weight is the weight in effect, what the scheduler uses: 0 while
	// the server fails its health checks (keepalived's
	// inhibit_on_failure) or drains; ConfiguredWeight is the
	// configuration's (-w).
	Weight           int   `json:"weight"`
	ConfiguredWeight int   `json:"configured_weight"`
	ActiveConn       int64 `json:"active_conn"`
	InActConn        int64 `json:"inact_conn"`
	// PersistConn counts the persistence templates that point at this
	// real server (ipvsadm -L --persistent-conn).
	PersistConn int64    `json:"persist_conn,omitempty"`
	Draining    bool     `json:"draining,omitempty"` // removed, still carrying connections
	Healthy     *bool    `json:"healthy,omitempty"`  // nil: not checked
	Stats       Counters `json:"stats"`
	Rates       Rates    `json:"rates"`
}

// ServiceState is a service as listed.
type ServiceState struct {
	Service
	Reals []RealState `json:"reals"`
	Stats Counters    `json:"stats"`
	Rates Rates       `json:"rates"`
}

// MaxListedConns bounds the entries one OpConns answer carries;
// Response.ConnsTotal says how many there were.
const MaxListedConns = 100_000

// Conn is one entry of the connection table (ipvsadm -L -c): a
// connection, or a persistence template (Template: IPVS lists them among
// the connections, with state NONE, the client's address under the
// service's netmask and port 0, a group's virtual address as its mark and
// protocol IP).
type Conn struct {
	Protocol  string         `json:"protocol"`
	Client    netip.AddrPort `json:"client"`
	Virtual   netip.AddrPort `json:"virtual"`
	Real      netip.AddrPort `json:"real"`
	State     string         `json:"state"`
	ExpiresIn time.Duration  `json:"expires_in"`
	Template  bool           `json:"template,omitempty"`
}

// Timeouts are ipvsadm --set's.
type Timeouts struct {
	TCP    time.Duration `json:"tcp"`
	TCPFin time.Duration `json:"tcpfin"`
	UDP    time.Duration `json:"udp"`
}

// Status is the data path's state.
type Status struct {
	Workers     int    `json:"workers"`
	Connections int    `json:"connections"`
	Capacity    int    `json:"capacity"`
	RxFrames    uint64 `json:"rx_frames"`
	TxFrames    uint64 `json:"tx_frames"`
	// CsumCompleted counts frames that arrived with a partial TCP/UDP
	// checksum (left to a NIC by a sender in a VM, container or
	// namespace) and that xvs completed before forwarding.
	CsumCompleted uint64 `json:"csum_completed"`
	// SynProxySynAcks counts SYNs of syn_proxy services answered with a
	// cookie; SynProxyOpened the ACKs whose cookie checked (connections
	// opened to a real server).
	// SynProxyXDP is how many of SynProxySynAcks the XDP programs sent
	// (the workers' answer SYNs the programs leave to them).
	SynProxySynAcks uint64 `json:"syn_proxy_syn_acks"`
	SynProxyXDP     uint64 `json:"syn_proxy_xdp_syn_acks"`
	SynProxyOpened  uint64 `json:"syn_proxy_opened"`
	// With verify_checksums: TCP/UDP frames that arrived with a bad
	// checksum (forwarded as they came), and frames sent with a checksum
	// their receiver will reject that did not arrive that way.
	VerifyChecksums bool   `json:"verify_checksums,omitempty"`
	BadCsumIn       uint64 `json:"bad_csum_in,omitempty"`
	BadCsumOut      uint64 `json:"bad_csum_out,omitempty"`
	// Warnings are the director's interfaces' settings known to break
	// forwarding.
	Warnings   []string          `json:"warnings,omitempty"`
	FastPath   FastPath          `json:"fast_path"`
	Drops      map[string]uint64 `json:"drops"`
	Interfaces []Interface       `json:"interfaces"`
	DataPath   DataPath          `json:"data_path"`
	Config     string            `json:"config"` // the configuration file
}

// DataPath is the data path's tuning as in effect ([director]'s knobs with
// the defaults filled in).
type DataPath struct {
	Batch      int  `json:"batch_size"`
	RingSize   int  `json:"ring_size"`
	UMEMFrames int  `json:"umem_frames"`
	IdleSpins  int  `json:"idle_spins"` // negative: never sleeps
	NeedWakeup bool `json:"need_wakeup"`
	// BusyPollUS is busy_poll's SO_BUSY_POLL in microseconds; 0: off.
	BusyPollUS int64 `json:"busy_poll_us"`
}

// FastPath is the XDP fast path's state: established connections whose
// frames the steering programs forward themselves.
type FastPath struct {
	Mode     string `json:"mode"`     // auto, xdp or off
	Flows    int    `json:"flows"`    // flow directions offloaded now
	Capacity int    `json:"capacity"` // at most
	// Offloaded, Full, Stale: flow directions inserted, refused by a full
	// table (their connections stay in userspace), removed by the fold
	// when their connection had ended.
	Offloaded uint64 `json:"offloaded"`
	Full      uint64 `json:"full"`
	Stale     uint64 `json:"stale"`
	// Frames the fast path forwarded; frames of offloaded connections it
	// left to userspace (Partial: a checksum to complete; TooBig: too big
	// to tunnel) or dropped (NoPort).
	Frames  uint64 `json:"frames"`
	Partial uint64 `json:"partial"`
	TooBig  uint64 `json:"too_big"`
	NoPort  uint64 `json:"no_port"`
	// TxDrops: fast-path frames a veth's peer did not take.
	TxDrops uint64 `json:"tx_drops"`
}

// Interface is one director interface.
type Interface struct {
	Name     string `json:"name"`
	XDPMode  string `json:"xdp_mode"`
	Queues   int    `json:"queues"`
	ZeroCopy bool   `json:"zerocopy"`
	// FastPath is "xdp" when the interface forwards on the fast path,
	// else "off" and why.
	FastPath string `json:"fast_path"`
	// Oversize counts frames longer than an AF_XDP frame, dropped.
	Oversize uint64 `json:"oversize,omitempty"`
	// SynCookies counts SYNs of syn_proxy services that the interface's
	// XDP program answered itself (in Status.SynProxySynAcks too);
	// SynNoPort those it dropped because it could not send the answer.
	SynCookies uint64 `json:"syn_cookies,omitempty"`
	SynNoPort  uint64 `json:"syn_no_port,omitempty"`
	// Kernel holds the AF_XDP sockets' own counters (XDP_STATISTICS),
	// summed over queues, where any is non-zero: frames the kernel could
	// not hand to xvs (rx_dropped, rx_ring_full, fill_ring_empty, ...).
	Kernel map[string]uint64 `json:"kernel,omitempty"`
}

// HealthState is one real server's health-check state.
type HealthState struct {
	Service ServiceID      `json:"service"`
	Real    netip.AddrPort `json:"real"`
	Check   string         `json:"check"` // "tcp", "http", ...
	Healthy bool           `json:"healthy"`
	Since   time.Time      `json:"since"`
	Last    string         `json:"last,omitempty"` // last failure
}

// Request is one call.
type Request struct {
	Op       Op          `json:"op"`
	Service  *Service    `json:"service,omitempty"`
	Real     *Real       `json:"real,omitempty"`
	Timeouts *Timeouts   `json:"timeouts,omitempty"`
	Text     string      `json:"text,omitempty"` // rules for OpRestore
	Path     string      `json:"path,omitempty"` // file for OpSaveConfig
	Exact    bool        `json:"exact,omitempty"`
	Filter   *ServiceID  `json:"filter,omitempty"` // OpList/OpConns: one service only
	Daemon   *SyncDaemon `json:"daemon,omitempty"` // OpStartDaemon, OpStopDaemon
}

// Response is the answer to one Request. Error is set when it failed; the
// running state is unchanged then.
type Response struct {
	Error    string         `json:"error,omitempty"`
	Services []ServiceState `json:"services,omitempty"`
	Conns    []Conn         `json:"conns,omitempty"`
	// ConnsTotal is how many entries the table had when Conns were
	// listed: more than len(Conns) when the answer was cut at
	// MaxListedConns.
	ConnsTotal int               `json:"conns_total,omitempty"`
	Status     *Status           `json:"status,omitempty"`
	Timeouts   *Timeouts         `json:"timeouts,omitempty"`
	Health     []HealthState     `json:"health,omitempty"`
	Daemons    []SyncDaemonState `json:"daemons,omitempty"` // OpDaemons
	Text       string            `json:"text,omitempty"`    // OpRules
	Capacity   int               `json:"capacity,omitempty"`
}
