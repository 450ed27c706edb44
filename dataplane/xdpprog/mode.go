package xdpprog

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf/link"
)

// Mode selects how the program is attached to an interface.
type Mode int

const (
	// ModeAuto attaches in driver mode and falls back to generic mode when
	// the driver has no native XDP support.
	ModeAuto Mode = iota
	// ModeDriver attaches in the driver's receive path (native XDP).
	ModeDriver
	// ModeGeneric attaches after the kernel has built an skb (SKB mode): it
	// works on every interface, at a fraction of the speed.
	ModeGeneric
)

// String returns the name ParseMode accepts for m.
func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeDriver:
		return "driver"
	case ModeGeneric:
		return "generic"
	default:
		return fmt.Sprintf("Mode(%d)", int(m))
	}
}

// ParseMode parses "auto", "driver" or "generic", case-insensitively. The
// kernel's and iproute2's names "native" and "skb" are accepted as well.
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		return ModeAuto, nil
	case "driver", "native", "drv":
		return ModeDriver, nil
	case "generic", "skb":
		return ModeGeneric, nil
	default:
		return 0, fmt.Errorf("unknown XDP mode %q (want auto, driver or generic)", s)
	}
}

func (m Mode) flags() link.XDPAttachFlags {
	if m == ModeGeneric {
		return link.XDPGenericMode
	}
	return link.XDPDriverMode
}
