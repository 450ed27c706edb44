//go:build tools

// Package xvs pins the modules the project builds on, so that helpers
// working on separate packages share one go.mod.
package xvs

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/cilium/ebpf"
	_ "github.com/gopacket/gopacket"
	_ "github.com/vishvananda/netlink"
	_ "go.uber.org/goleak"
	_ "go.uber.org/zap"
	_ "golang.org/x/sys/unix"
	_ "pgregory.net/rapid"
)
