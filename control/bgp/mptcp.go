package bgp

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// Since Go 1.24 net.Listen opens MPTCP sockets by default where the kernel
// has MPTCP, and gobgp listens through a plain net.ListenConfig. An MPTCP
// listening socket refuses TCP_MD5SIG (ENOPROTOOPT), so a passive session
// with a password could never come up: the router's signed SYNs would be
// dropped. gobgp only logs that; Start turns it into an error.

// mptcpListen reports whether listening sockets opened now would be MPTCP.
func mptcpListen() bool {
	var lc net.ListenConfig
	if !lc.MultipathTCP() {
		return false
	}
	// Go falls back to TCP when the kernel refuses an MPTCP socket.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_MPTCP)
	if err != nil {
		return false
	}
	_ = unix.Close(fd)
	return true
}

// checkMD5Listen fails when a passive peer needs a TCP MD5 key on a
// listening socket that cannot hold one.
func checkMD5Listen(st settings, mptcp bool) error {
	if !mptcp || st.ListenPort == -1 {
		return nil
	}
	for _, p := range st.Peers {
		if p.Passive && p.Password != "" {
			return fmt.Errorf("bgp: peer %s: passive with a password, but listening sockets are MPTCP, which cannot carry TCP MD5: "+
				"add //go:debug multipathtcp=0 to the main package or run with GODEBUG=multipathtcp=0", p.Address)
		}
	}
	return nil
}
