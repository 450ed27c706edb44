package dataplane

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// driverName returns the name of ifname's driver ("veth", "mlx5_core",
// ...), or "" when the kernel does not say.
func driverName(ifname string) string {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	info, err := unix.IoctlGetEthtoolDrvinfo(fd, ifname)
	if err != nil {
		return ""
	}
	return unix.ByteSliceToString(info.Driver[:])
}

// ethtool ioctls that read a driver's statistics (linux/ethtool.h).
const (
	ethtoolGSSetInfo = 0x37 // ETHTOOL_GSSET_INFO
	ethtoolGStrings  = 0x1b // ETHTOOL_GSTRINGS
	ethtoolGStats    = 0x1d // ETHTOOL_GSTATS
	ethSSStats       = 1    // ETH_SS_STATS
	ethGStringLen    = 32
)

// ifreqData is struct ifreq with ifr_data: a name and a pointer, padded to
// the union's 24 bytes.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

func ethtoolIoctl(fd int, ifname string, data unsafe.Pointer) error {
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], ifname)
	ifr.data = data
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return errno
	}
	return nil
}

// driverStats returns ifname's driver statistics (ethtool -S) by name.
func driverStats(ifname string) (map[string]uint64, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	// struct ethtool_sset_info with room for one count.
	info := struct {
		cmd, reserved uint32
		mask          uint64
		count         uint32
	}{cmd: ethtoolGSSetInfo, mask: 1 << ethSSStats}
	if err := ethtoolIoctl(fd, ifname, unsafe.Pointer(&info)); err != nil {
		return nil, fmt.Errorf("ethtool stats of %s: %w", ifname, err)
	}
	n := int(info.count)
	if info.mask&(1<<ethSSStats) == 0 || n == 0 {
		return map[string]uint64{}, nil
	}
	if n > 1<<16 {
		return nil, fmt.Errorf("ethtool stats of %s: %d of them", ifname, n)
	}
	strs := make([]byte, 12+n*ethGStringLen) // struct ethtool_gstrings
	binary.NativeEndian.PutUint32(strs[0:], ethtoolGStrings)
	binary.NativeEndian.PutUint32(strs[4:], ethSSStats)
	binary.NativeEndian.PutUint32(strs[8:], uint32(n))
	if err := ethtoolIoctl(fd, ifname, unsafe.Pointer(&strs[0])); err != nil {
		return nil, fmt.Errorf("ethtool stat names of %s: %w", ifname, err)
	}
	vals := make([]byte, 8+n*8) // struct ethtool_stats
	binary.NativeEndian.PutUint32(vals[0:], ethtoolGStats)
	binary.NativeEndian.PutUint32(vals[4:], uint32(n))
	if err := ethtoolIoctl(fd, ifname, unsafe.Pointer(&vals[0])); err != nil {
		return nil, fmt.Errorf("ethtool stat values of %s: %w", ifname, err)
	}
	out := make(map[string]uint64, n)
	for i := range n {
		name := unix.ByteSliceToString(strs[12+i*ethGStringLen : 12+(i+1)*ethGStringLen])
		out[name] += binary.NativeEndian.Uint64(vals[8+i*8:])
	}
	return out, nil
}

// xdpTxCounts sums a veth's counters of frames sent by XDP (XDP_TX from its
// receive side, redirects into it): those its peer did not take, what
// happens when the peer runs no NAPI, and those it took.
func xdpTxCounts(stats map[string]uint64) (errs, sent uint64) {
	for name, v := range stats {
		switch {
		case strings.HasSuffix(name, "xdp_tx_errors"), strings.HasSuffix(name, "xdp_xmit_errors"):
			errs += v
		case strings.HasSuffix(name, "_xdp_tx"), strings.HasSuffix(name, "_xdp_xmit"):
			sent += v
		}
	}
	return errs, sent
}
