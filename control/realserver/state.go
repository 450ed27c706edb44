package realserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// StateDir is where state files go by default.
const StateDir = "/run/xvs"

// DefaultStateFile returns the state file used for iface when
// Options.StateFile is empty: /run/xvs/realserver-<iface>.json, or
// /run/xvs/realserver.json without an interface (NAT).
func DefaultStateFile(iface string) string {
	if iface == "" {
		return filepath.Join(StateDir, "realserver.json")
	}
	return filepath.Join(StateDir, "realserver-"+iface+".json")
}

// stateVersion is written into every state file; a file with another
// version is refused rather than misread.
const stateVersion = 1

// state is what Apply changed, so that Undo can put it back. It records only
// changes: a VIP or a sysctl value that was already in place is not in it,
// and Undo leaves it alone.
type state struct {
	Version   int    `json:"version"`
	Mode      string `json:"mode"`
	Interface string `json:"interface,omitempty"`

	// Addrs are the prefixes added to lo, such as "198.18.0.10/32".
	Addrs []string `json:"addrs,omitempty"`
	// Sysctls holds the previous value of each sysctl changed, in the
	// order they were first changed.
	Sysctls []sysctlRecord `json:"sysctls,omitempty"`
	// Decap is set when the decapsulator was attached to Interface.
	Decap *decapRecord `json:"decap,omitempty"`
	// Route is set when the default route was replaced.
	Route *routeChange `json:"route,omitempty"`
}

type sysctlRecord struct {
	Path string `json:"path"` // under /proc/sys, such as "net/ipv4/conf/all/arp_ignore"
	Old  string `json:"old"`
}

type decapRecord struct {
	VIPs      []string `json:"vips"`
	ProgramID uint32   `json:"programId"`
	Mode      string   `json:"mode"`
}

type routeChange struct {
	Added   routeRecord   `json:"added"`
	Removed []routeRecord `json:"removed,omitempty"`
}

func (s *state) empty() bool {
	return len(s.Addrs) == 0 && len(s.Sysctls) == 0 && s.Decap == nil && s.Route == nil
}

func (s *state) sysctlRecorded(path string) bool {
	for _, r := range s.Sysctls {
		if r.Path == path {
			return true
		}
	}
	return false
}

func (s *state) addrRecorded(prefix string) bool {
	for _, a := range s.Addrs {
		if a == prefix {
			return true
		}
	}
	return false
}

// readState reads the state file at path; a missing file is a nil state.
func readState(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", path, err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read state %s: %w", path, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("read state %s: version %d, this xvs understands %d", path, s.Version, stateVersion)
	}
	return &s, nil
}

// writeState replaces the state file at path atomically, or removes it when
// s records nothing.
func writeState(path string, s *state) error {
	if s.empty() {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove state %s: %w", path, err)
		}
		return nil
	}
	s.Version = stateVersion
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("write state %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write state %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write state %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	_, err = tmp.Write(append(b, '\n'))
	if errClose := tmp.Close(); err == nil {
		err = errClose
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write state %s: %w", path, err)
	}
	return nil
}
