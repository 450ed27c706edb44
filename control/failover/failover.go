// Package failover moves a director's floating addresses (the VIPs, and in
// NAT the real servers' gateway) between two directors without a router to
// peer with, as keepalived's VRRP does in the seed's failover setup: each
// director sends a heartbeat with its priority to the other; the one with
// the higher priority that hears no better peer owns the addresses, puts
// them on its interfaces and announces them with gratuitous ARP, so that
// clients and real servers send to it at once. With connection sync on, the
// new owner already has the connections, and they carry on.
package failover

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Address is a floating address and the interface it lives on.
type Address struct {
	Prefix    netip.Prefix
	Interface string
}

// Config configures one director of a pair.
type Config struct {
	Listen    netip.AddrPort // where heartbeats arrive (UDP)
	Peer      netip.AddrPort // the other director's Listen
	Priority  uint8          // higher wins; equal: the higher Listen address wins
	Interval  time.Duration  // heartbeat period; default 200ms
	DeadAfter int            // missed heartbeats before the peer counts as gone; default 3
	Key       []byte         // shared secret: heartbeats carry an HMAC
	Addresses []Address
}

// State is a director's role.
type State int

const (
	Backup State = iota
	Master
)

func (s State) String() string {
	if s == Master {
		return "master"
	}
	return "backup"
}

// Pair runs the protocol for one director.
type Pair struct {
	cfg  Config
	log  *zap.Logger
	conn *net.UDPConn
	wg   sync.WaitGroup

	mu        sync.Mutex
	state     State
	peerPrio  uint8
	peerSeen  time.Time
	onChange  func(State)
	cancel    context.CancelFunc
	addresses []Address
}

const heartbeatLen = 4 + 1 + 8 + 32 // magic, priority, timestamp, HMAC

var magic = [4]byte{'x', 'v', 's', 'f'}

// Start begins heartbeating. onChange (may be nil) is called on every role
// change, after the addresses moved.
func Start(ctx context.Context, cfg Config, log *zap.Logger, onChange func(State)) (*Pair, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = 200 * time.Millisecond
	}
	if cfg.DeadAfter <= 0 {
		cfg.DeadAfter = 3
	}
	if len(cfg.Key) < 16 {
		return nil, errors.New("failover: key must be at least 16 bytes")
	}
	if !cfg.Peer.IsValid() || !cfg.Listen.IsValid() {
		return nil, errors.New("failover: listen and peer addresses are required")
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(cfg.Listen))
	if err != nil {
		return nil, fmt.Errorf("failover: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &Pair{cfg: cfg, log: log, conn: conn, onChange: onChange, cancel: cancel, addresses: cfg.Addresses}
	// Start as backup and drop any address left from an earlier run: the
	// peer may own them now.
	p.release()
	p.wg.Add(2)
	go func() { defer p.wg.Done(); p.receive() }()
	go func() { defer p.wg.Done(); p.run(ctx) }()
	return p, nil
}

// State returns the current role.
func (p *Pair) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

func (p *Pair) sign(b []byte) []byte {
	m := hmac.New(sha256.New, p.cfg.Key)
	m.Write(b)
	return m.Sum(nil)
}

func (p *Pair) receive() {
	buf := make([]byte, 128)
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if n != heartbeatLen || [4]byte(buf[:4]) != magic || !hmac.Equal(buf[13:n], p.sign(buf[:13])) {
			p.log.Warn("failover: bad heartbeat", zap.Stringer("from", from))
			continue
		}
		ts := time.Unix(0, int64(binary.BigEndian.Uint64(buf[5:13])))
		if d := time.Since(ts); d > 30*time.Second || d < -30*time.Second {
			continue // replayed or a clock far off
		}
		p.mu.Lock()
		p.peerPrio, p.peerSeen = buf[4], time.Now()
		p.mu.Unlock()
	}
}

func (p *Pair) beat() {
	b := make([]byte, 13, heartbeatLen)
	copy(b, magic[:])
	b[4] = p.cfg.Priority
	binary.BigEndian.PutUint64(b[5:], uint64(time.Now().UnixNano()))
	b = append(b, p.sign(b)...)
	_, _ = p.conn.WriteToUDPAddrPort(b, p.cfg.Peer)
}

// wins reports whether this director should own the addresses given what
// it last heard.
func (p *Pair) wins(now time.Time) bool {
	dead := p.peerSeen.IsZero() || now.Sub(p.peerSeen) > time.Duration(p.cfg.DeadAfter)*p.cfg.Interval
	if dead {
		return true
	}
	if p.cfg.Priority != p.peerPrio {
		return p.cfg.Priority > p.peerPrio
	}
	return p.cfg.Listen.Addr().Compare(p.cfg.Peer.Addr()) > 0
}

func (p *Pair) run(ctx context.Context) {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	// Listen for a while before claiming anything, so a restarted director
	// does not steal the addresses from a live peer.
	startup := time.Now().Add(time.Duration(p.cfg.DeadAfter) * p.cfg.Interval)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p.beat()
			if now.Before(startup) {
				continue
			}
			p.mu.Lock()
			want := Backup
			if p.wins(now) {
				want = Master
			}
			changed := want != p.state
			p.state = want
			p.mu.Unlock()
			if !changed {
				if want == Master {
					p.announce() // keep caches fresh, as keepalived's garp repeats
				}
				continue
			}
			if want == Master {
				p.claim()
			} else {
				p.release()
			}
			p.log.Info("failover: role changed", zap.Stringer("state", want))
			if p.onChange != nil {
				p.onChange(want)
			}
		}
	}
}

func (p *Pair) claim() {
	for _, a := range p.addresses {
		link, err := netlink.LinkByName(a.Interface)
		if err != nil {
			p.log.Error("failover: interface", zap.String("interface", a.Interface), zap.Error(err))
			continue
		}
		addr := &netlink.Addr{IPNet: prefixNet(a.Prefix)}
		if a.Prefix.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrReplace(link, addr); err != nil {
			p.log.Error("failover: add address", zap.Stringer("address", a.Prefix), zap.Error(err))
		}
	}
	p.announce()
}

func (p *Pair) release() {
	for _, a := range p.addresses {
		link, err := netlink.LinkByName(a.Interface)
		if err != nil {
			continue
		}
		_ = netlink.AddrDel(link, &netlink.Addr{IPNet: prefixNet(a.Prefix)})
	}
}

func prefixNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

// announce sends a gratuitous ARP for every IPv4 floating address and an
// unsolicited Neighbour Advertisement (RFC 4861 7.2.6, Override set) for
// every IPv6 one, so that neighbours replace the old owner's MAC at once.
func (p *Pair) announce() {
	for _, a := range p.addresses {
		kind, frame := "gratuitous ARP", arpFrame
		if a.Prefix.Addr().Is6() {
			kind, frame = "unsolicited neighbour advertisement", naFrame
		}
		if err := sendFrame(a.Interface, a.Prefix.Addr(), frame); err != nil {
			p.log.Debug("failover: "+kind, zap.Stringer("address", a.Prefix), zap.Error(err))
		}
	}
}

// sendFrame sends frame(the interface's MAC, ip) out of interface ifname.
func sendFrame(ifname string, ip netip.Addr, frame func(net.HardwareAddr, netip.Addr) []byte) error {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	if len(ifc.HardwareAddr) != 6 {
		return fmt.Errorf("interface %s has no Ethernet address", ifname)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	f := frame(ifc.HardwareAddr, ip)
	sa := &unix.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6, Protocol: htons(binary.BigEndian.Uint16(f[12:14]))}
	copy(sa.Addr[:], f[0:6])
	if err := unix.Sendto(fd, f, 0, sa); err != nil {
		return fmt.Errorf("send on %s: %w", ifname, err)
	}
	return nil
}

// arpFrame is a gratuitous ARP request for ip from mac, broadcast.
func arpFrame(mac net.HardwareAddr, ip netip.Addr) []byte {
	f := make([]byte, 42)
	for i := 0; i < 6; i++ {
		f[i] = 0xff
	}
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_ARP)
	binary.BigEndian.PutUint16(f[14:], 1)      // Ethernet
	binary.BigEndian.PutUint16(f[16:], 0x0800) // IPv4
	f[18], f[19] = 6, 4
	binary.BigEndian.PutUint16(f[20:], 1) // request: updates every cache that has the address
	copy(f[22:28], mac)
	a := ip.As4()
	copy(f[28:32], a[:])
	copy(f[38:42], a[:])
	return f
}

// naFrame is an unsolicited Neighbour Advertisement of ip at mac, from ip
// to all nodes (ff02::1), with the Override flag and the target's
// link-layer address, hop limit 255, as the kernel sends one for a new
// address (ndisc_send_unsol_na).
func naFrame(mac net.HardwareAddr, ip netip.Addr) []byte {
	const icmpLen = 4 + 4 + 16 + 8 // header, flags, target, target link-layer address option
	f := make([]byte, 14+40+icmpLen)
	allNodes := netip.MustParseAddr("ff02::1")
	copy(f[0:6], []byte{0x33, 0x33, 0, 0, 0, 1}) // ff02::1's multicast MAC
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_IPV6)
	ip6 := f[14:54]
	ip6[0] = 6 << 4
	binary.BigEndian.PutUint16(ip6[4:], icmpLen)
	ip6[6], ip6[7] = unix.IPPROTO_ICMPV6, 255
	src, dst := ip.As16(), allNodes.As16()
	copy(ip6[8:24], src[:])
	copy(ip6[24:40], dst[:])
	na := f[54:]
	na[0] = 136                               // Neighbor Advertisement
	binary.BigEndian.PutUint32(na[4:], 1<<29) // Override; not Router, not Solicited
	copy(na[8:24], src[:])
	na[24], na[25] = 2, 1 // Target Link-Layer Address, 8 bytes
	copy(na[26:32], mac)
	binary.BigEndian.PutUint16(na[2:], icmp6Checksum(src, dst, na))
	return f
}

// icmp6Checksum is the ICMPv6 checksum of msg (its checksum field zero)
// from src to dst (RFC 4443 2.3).
func icmp6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	var tail [8]byte
	binary.BigEndian.PutUint32(tail[0:], uint32(len(msg)))
	tail[7] = unix.IPPROTO_ICMPV6
	add(tail[:])
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Close stops heartbeating and gives up the addresses, so the peer takes
// over without waiting for heartbeats to time out.
func (p *Pair) Close() error {
	p.cancel()
	err := p.conn.Close()
	p.wg.Wait()
	p.release()
	return err
}
