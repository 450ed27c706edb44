package xdpprog

import (
	"github.com/cilium/ebpf/link"

	"github.com/xvs-lb/xvs/internal/xvs"
)

// Mode selects how the program is attached to an interface: xvs.XDPMode,
// whose names the configuration and xvsadm parse.
type Mode = xvs.XDPMode

const (
	// ModeAuto attaches in driver mode and falls back to generic mode when
	// the driver has no native XDP support.
	ModeAuto = xvs.XDPAuto
	// ModeDriver attaches in the driver's receive path (native XDP).
	ModeDriver = xvs.XDPDriver
	// ModeGeneric attaches after the kernel has built an skb (SKB mode): it
	// works on every interface, at a fraction of the speed.
	ModeGeneric = xvs.XDPGeneric
)

// attachFlags are the kernel's flags for attaching in mode m; ModeAuto
// tries driver mode first.
func attachFlags(m Mode) link.XDPAttachFlags {
	if m == ModeGeneric {
		return link.XDPGenericMode
	}
	return link.XDPDriverMode
}
