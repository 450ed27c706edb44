//go:build !linux

package connsync

import (
	"errors"
	"net"
	"net/netip"
)

func bindInterface(_ *net.UDPConn, ifname string) error {
	if ifname != "" {
		return errors.New("binding to an interface is supported on Linux only")
	}
	return nil
}

func joinGroups(conn *net.UDPConn, peers []netip.AddrPort, ifname string) error {
	for _, p := range peers {
		if p.Addr().IsMulticast() {
			return errors.New("multicast peers are supported on Linux only")
		}
	}
	return nil
}
