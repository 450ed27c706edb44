package dataplane

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/xvs-lb/xvs/internal/xvs"
	"github.com/xvs-lb/xvs/sched"
)

// Method is a real server's forwarding method: xvs.Method, named here for
// the data plane's code. Its value is stored in a connection's
// Value.Flags.
type Method = xvs.Method

// The forwarding methods.
const (
	MethodDR      = xvs.MethodDR      // direct routing: rewrite MACs only
	MethodNAT     = xvs.MethodNAT     // masquerading: DNAT forward, SNAT replies
	MethodTUN     = xvs.MethodTUN     // tunnelling: IPIP (or IPv6-in-IPv6) to the real server
	MethodFullNAT = xvs.MethodFullNAT // DPVS's FNAT: SNAT to a local address too; replies come back to it
)

// methodMask selects the method in a connection's Value.Flags; FullNAT keeps
// its local address index and port above it.
const methodMask = 0xff

// ServiceSpec is a virtual service as the control plane asks for it: one
// (VIP, port, protocol), or, for a group (ipvsadm -f), a set of Matches that
// share the scheduler, the real servers and the persistence templates.
type ServiceSpec struct {
	Name      string
	VIP       netip.Addr
	Port      uint16
	Proto     uint8 // 6 TCP, 17 UDP
	Mark      uint32
	Matches   []Match // non-empty for a group; VIP, Port, Proto are then unused
	Scheduler string
	Flags     []string // scheduler flags (sh-port, mh-fallback, ...)
	// Persistence (ipvsadm -p) and its netmask as a prefix length (-M;
	// 0 = the whole address).
	Persistence   time.Duration
	PersistPrefix int
	// LocalAddrs are FullNAT's local addresses (LIPs): real servers see
	// connections come from them. TOA carries the client's address to the
	// real server in a TCP option on the SYN.
	LocalAddrs []netip.Addr
	TOA        bool
	// LocalPortMin..LocalPortMax is FullNAT's local port range (0, 0:
	// DefaultLocalPortMin..DefaultLocalPortMax). Each local address offers
	// every port of it to each real server.
	LocalPortMin, LocalPortMax uint16
	// NoFastPath keeps the service's connections off the XDP fast path.
	NoFastPath bool
	// SynProxy has the director answer the service's SYNs itself with SYN
	// cookies and open a connection to a real server only once the
	// client's ACK proves its address (see synproxy.go). TCP, with NAT or
	// FullNAT real servers: the proxy translates the real server's
	// sequence numbers, so it must see its replies.
	SynProxy bool
	Reals    []RealSpec
}

// Match is a (VIP, port range, protocol) a group catches.
type Match struct {
	VIP              netip.Addr
	FromPort, ToPort uint16
	Proto            uint8
}

// RealSpec is one real server of a service. Port 0 (groups only) keeps each
// packet's destination port.
type RealSpec struct {
	Addr   netip.Addr
	Port   uint16
	Weight int
	Method Method
	// Connection thresholds (ipvsadm -x, -y); 0 = none.
	UpperThreshold, LowerThreshold int
}

// matches returns the (VIP, port range, protocol) triples the spec catches.
func (s *ServiceSpec) matches() []Match {
	if len(s.Matches) > 0 {
		return s.Matches
	}
	return []Match{{VIP: s.VIP, FromPort: s.Port, ToPort: s.Port, Proto: s.Proto}}
}

// serviceKey identifies a virtual service; it is also the data plane's lookup
// key for new flows, so it holds no pointers.
type serviceKey struct {
	addr  [16]byte
	port  uint16
	proto uint8
	mark  uint32 // groups are identified by mark alone
}

func makeServiceKey(addr netip.Addr, port uint16, proto uint8) serviceKey {
	return serviceKey{addr: addr.As16(), port: port, proto: proto}
}

type destKey struct {
	svc  serviceKey
	addr [16]byte
	port uint16
}

// Service is a virtual service in a published Table. Immutable.
type Service struct {
	ID      uint32
	Name    string
	VIP     netip.Addr // for a group: its first match's
	Port    uint16
	Proto   uint8
	Mark    uint32  // non-zero for a group
	Matches []Match // for a group
	Flags   []string
	// persist is the persistence timeout in nanoseconds (0 = none) and
	// persistPrefix the netmask's prefix length.
	persist       int64
	persistPrefix int
	lips          []netip.Addr // of the service's family
	toa           bool
	noFastPath    bool // its connections are never offloaded
	synProxy      bool // SYNs are answered with cookies (ServiceSpec.SynProxy)
	// FullNAT's local port range.
	lportMin, lportMax uint32
	sched              sched.Scheduler
	// Dests are in the order given to the scheduler: Pick's index.
	Dests []*Dest
}

// SchedulerName is the scheduler's name (rr, wrr, wlc, ...).
func (s *Service) SchedulerName() string { return s.sched.Name() }

// LocalAddrs returns FullNAT's local addresses.
func (s *Service) LocalAddrs() []netip.Addr { return s.lips }

// localAddr decodes the (local address, port) a FullNAT connection's flags
// hold; invalid when the service no longer has that address.
func (s *Service) localAddr(flags uint32) (netip.Addr, uint16) {
	i := int(flags>>8) & 0xff
	if s == nil || i >= len(s.lips) {
		return netip.Addr{}, 0
	}
	return s.lips[i], uint16(flags >> 16)
}

// MatchesOrSelf returns the (VIP, ports, protocol) the service catches.
func (s *Service) MatchesOrSelf() []Match { return s.matchesOrSelf() }

func (s *Service) matchesOrSelf() []Match {
	if len(s.Matches) > 0 {
		return s.Matches
	}
	return []Match{{VIP: s.VIP, FromPort: s.Port, ToPort: s.Port, Proto: s.Proto}}
}

// Persistence returns the persistence timeout (0 = none) and netmask prefix.
func (s *Service) Persistence() (time.Duration, int) {
	return time.Duration(s.persist), s.persistPrefix
}

// Dest is a real server in a published Table. Its fields are immutable; the
// next hop is resolved in the background and read atomically.
type Dest struct {
	ID       uint32
	Service  uint32 // the ID of the service it belongs (or belonged) to
	Addr     netip.Addr
	Port     uint16
	Weight   int
	Method   Method
	Draining bool // removed from the config but still carrying connections
	// Thresholds (ipvsadm -x, -y).
	UpperThreshold, LowerThreshold int
	hop                            *nextHop
}

// nextHop is where frames for a real server go: the egress port and the
// neighbour's MAC, packed into one word so a worker reads it with one atomic
// load. Bit 63 says the entry is valid, bits 48..55 hold the port slot.
type nextHop struct{ word atomic.Uint64 }

const hopValid = 1 << 63

func (h *nextHop) store(mac [6]byte, port int) {
	var w uint64
	for _, b := range mac {
		w = w<<8 | uint64(b)
	}
	h.word.Store(hopValid | uint64(port)<<48 | w)
}

func (h *nextHop) clear() { h.word.Store(0) }

func (h *nextHop) load() (mac [6]byte, port int, ok bool) {
	w := h.word.Load()
	if w&hopValid == 0 {
		return mac, 0, false
	}
	for i := 5; i >= 0; i-- {
		mac[i] = byte(w)
		w >>= 8
	}
	return mac, int(w & 0xff), true
}

// Table is one published generation of the service configuration. Workers
// load it once per batch through an atomic pointer and never see it change.
type Table struct {
	services map[serviceKey]*Service
	// dests is indexed by Dest.ID, so an established connection finds its
	// real server without a map lookup; byID likewise for services.
	dests []*Dest
	byID  []*Service
	// byKey holds each service under its identity (its first match, or
	// its mark for a group).
	byKey map[serviceKey]*Service
	// Services in configuration order, for listings.
	ordered []*Service
}

func (t *Table) service(addr netip.Addr, port uint16, proto uint8) *Service {
	return t.services[makeServiceKey(addr, port, proto)]
}

func (t *Table) serviceByID(id uint32) *Service {
	if t != nil && int(id) < len(t.byID) {
		return t.byID[id]
	}
	return nil
}

func (t *Table) dest(id uint32) *Dest {
	if int(id) < len(t.dests) {
		return t.dests[id]
	}
	return nil
}

// ServiceByID returns the service with the given ID, or nil.
func (t *Table) ServiceByID(id uint32) *Service { return t.serviceByID(id) }

// Dest returns the real server with the given ID, or nil.
func (t *Table) Dest(id uint32) *Dest { return t.dest(id) }

// Services returns the services in configuration order.
func (t *Table) Services() []*Service { return t.ordered }

// Draining returns real servers removed from the configuration that still
// carry connections.
func (t *Table) Draining() []*Dest {
	var out []*Dest
	for _, d := range t.dests {
		if d != nil && d.Draining {
			out = append(out, d)
		}
	}
	return out
}
