// Package version is xvs's own version, as the programs print it (xvsadm
// -v, xvsd -version). The Makefile stamps it at build time from git
// describe:
//
//	go build -ldflags "-X github.com/xvs-lb/xvs/internal/version.stamp=v1.2.3" ./cmd/...
//
// A build without the Makefile falls back on what the Go toolchain recorded
// (debug.ReadBuildInfo): the module's version when built with go install
// MODULE@VERSION, else the VCS revision, else "devel".
package version

import (
	"runtime/debug"
)

// stamp is set by the linker (-X); it is never written at run time.
var stamp string

// String returns xvs's version.
func String() string {
	info, ok := debug.ReadBuildInfo()
	return resolve(stamp, info, ok)
}

// resolve is String's rule: the stamp, else the module version, else the
// VCS revision (with "-dirty" for a modified tree), else "devel".
func resolve(stamp string, info *debug.BuildInfo, ok bool) string {
	if stamp != "" {
		return stamp
	}
	if !ok || info == nil {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return "devel-" + rev + dirty
	}
	return "devel"
}
