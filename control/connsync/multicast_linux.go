package connsync

import (
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// bindInterface binds conn's socket to the interface ifname (none when empty), so that datagrams
// leave and arrive by it only, whatever the routes say: ipvsadm's --mcast-interface for unicast peers.
func bindInterface(conn *net.UDPConn, ifname string) error {
	if ifname == "" {
		return nil
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("bind to interface %s: %w", ifname, err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), ifname) }); err != nil {
		return fmt.Errorf("bind to interface %s: %w", ifname, err)
	}
	if serr != nil {
		return fmt.Errorf("bind to interface %s: %w", ifname, serr)
	}
	return nil
}

// joinGroups joins the multicast groups among peers on conn's socket and sends multicast through
// ifname (the kernel's choice when empty).
func joinGroups(conn *net.UDPConn, peers []netip.AddrPort, ifname string) error {
	var index int
	if ifname != "" {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return fmt.Errorf("multicast interface: %w", err)
		}
		index = ifi.Index
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("multicast: %w", err)
	}
	for _, p := range peers {
		a := p.Addr()
		if !a.IsMulticast() {
			continue
		}
		var serr error
		err := rc.Control(func(fd uintptr) {
			if a.Is4() {
				mreq := &unix.IPMreqn{Multiaddr: a.As4(), Ifindex: int32(index)}
				if serr = unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq); serr != nil {
					return
				}
				if index != 0 {
					serr = unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_IF, mreq)
				}
				return
			}
			mreq := &unix.IPv6Mreq{Multiaddr: a.As16(), Interface: uint32(index)}
			if serr = unix.SetsockoptIPv6Mreq(int(fd), unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq); serr != nil {
				return
			}
			if index != 0 {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, index)
			}
		})
		if err == nil {
			err = serr
		}
		if err != nil {
			return fmt.Errorf("join multicast group %s: %w", a, err)
		}
	}
	return nil
}
