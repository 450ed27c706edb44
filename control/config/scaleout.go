package config

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// secretLine writes a secret as it was given: the file it came from, or
// inline.
func secretLine(key, secret, file string) string {
	if file != "" {
		return key + "_file = " + strconv.Quote(file)
	}
	return key + " = " + strconv.Quote(secret)
}

// Sync is connection sync between directors (IPVS's sync daemon, between
// all peers): connections one director makes are sent to the others, so
// that NAT and FullNAT flows and non-Maglev schedulers survive a director
// failure. Directors of one sync group list their interfaces in the same
// order.
//
//	[sync]
//	listen = "198.18.0.2:8848"
//	peers = ["198.18.0.3:8848"]
//	key = "a shared secret of 16 bytes or more"
//	node_id = 1
//	master = true        # ipvsadm --start-daemon master: send
//	backup = true        # ipvsadm --start-daemon backup: receive
//	sync_id = 0          # ipvsadm --syncid
//	interface = "eth0"   # ipvsadm --mcast-interface
//
// The roles are IPVS's sync daemons: xvsadm --start-daemon and --stop-daemon
// change them at run time, as they change the running configuration.
type Sync struct {
	Listen netip.AddrPort
	Peers  []netip.AddrPort
	// Key is the shared secret, written inline (key) or read from KeyFile
	// (key_file, an absolute path then; see secretFile).
	Key               string
	KeyFile           string
	NodeID            uint32
	MaxBytesPerSecond int
	// Master and Backup are the roles that run: a master sends this
	// director's connections, a backup installs its peers'. Neither:
	// nothing is synced, but the peers and key are kept for
	// --start-daemon.
	Master, Backup bool
	// SyncID is stamped by the master on what it sends; a backup with a
	// non-zero one installs only what carries the same (IPVS's syncid).
	// The roles share it, as they share one socket.
	SyncID uint8
	// Interface binds the sync socket to one interface (ipvsadm's
	// --mcast-interface); "" lets routes decide.
	Interface string
	Line      int
}

// Failover is active/standby between two directors without a router:
// heartbeats, floating addresses, gratuitous ARP (keepalived's VRRP pattern).
//
//	[failover]
//	listen = "198.18.0.2:8849"
//	peer = "198.18.0.3:8849"
//	priority = 200
//	key = "a shared secret of 16 bytes or more"
//	  [[failover.address]]
//	  address = "198.18.0.100/32"
//	  interface = "eth0"
type Failover struct {
	Listen    netip.AddrPort
	Peer      netip.AddrPort
	Priority  int
	Interval  time.Duration
	Key       string // inline (key), or read from KeyFile (key_file)
	KeyFile   string
	Addresses []FloatingAddress
	Line      int
}

// FloatingAddress is an address the active director holds.
type FloatingAddress struct {
	Prefix    netip.Prefix
	Interface string
}

// secret reads a shared secret: inline under key, or from the file named
// by key+"_file", one of the two (see secretFile). It returns the secret
// and the file's absolute path ("" when inline).
func (t *tomlTable) secret(key string, required bool) (secret, file string) {
	fileKey := key + "_file"
	switch {
	case t.has(key) && t.has(fileKey):
		t.errorf(fileKey, "set together with %s: give the secret inline or in a file, not both", key)
		return "", ""
	case t.has(fileKey):
		path, ok := t.str(fileKey)
		if !ok {
			return "", ""
		}
		s, abs, msg := secretFile(t.d.file, path)
		if msg != "" {
			t.errorf(fileKey, "%q %s", path, msg)
			return "", abs
		}
		if len(s) < 16 {
			t.errorf(fileKey, "%q: the secret is too short: at least 16 bytes", path)
		}
		return s, abs
	case required:
		t.require(key)
	}
	s, ok := t.str(key)
	if ok && len(s) < 16 {
		t.errorf(key, "too short: at least 16 bytes")
	}
	return s, ""
}

// secretFile reads a secret from path, relative to the configuration
// file's directory (source), without its trailing newline. The file must be
// a regular file that neither group nor others may read. It returns the
// secret and path made absolute, or why not.
func secretFile(source, path string) (secret, abs, msg string) {
	if path == "" {
		return "", "", "is empty"
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(source), path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", path, err.Error()
	}
	fi, err := os.Stat(abs)
	switch {
	case err != nil:
		return "", abs, fmt.Sprintf("cannot be read: %v", err)
	case !fi.Mode().IsRegular():
		return "", abs, "is not a regular file"
	case fi.Mode().Perm()&0o077 != 0:
		return "", abs, fmt.Sprintf("may be read by others than its owner (mode %04o): chmod 600 it", fi.Mode().Perm())
	}
	b, err := os.ReadFile(abs)
	if err != nil {
		return "", abs, fmt.Sprintf("cannot be read: %v", err)
	}
	return strings.TrimRight(string(b), "\r\n"), abs, ""
}

func (d *decoder) sync(t *tomlTable) *Sync {
	s := &Sync{Line: d.lines.lineOf(t.path), MaxBytesPerSecond: 10 << 20}
	t.require("listen")
	s.Listen, _ = t.addrPort("listen")
	t.require("peers")
	t.array("peers", func(_ int, v any) string {
		str, _ := v.(string)
		ap, err := netip.ParseAddrPort(str)
		if err != nil || ap.Port() == 0 {
			return fmt.Sprintf("%v is not an address:port", v)
		}
		s.Peers = append(s.Peers, ap)
		return ""
	})
	s.Key, s.KeyFile = t.secret("key", true)
	t.require("node_id")
	if n, ok := t.integer("node_id", 1, math.MaxUint32); ok {
		s.NodeID = uint32(n)
	}
	if n, ok := t.integer("max_bytes_per_second", 1000, math.MaxInt32); ok {
		s.MaxBytesPerSecond = int(n)
	}
	s.Master, s.Backup = true, true
	if b, ok := t.boolean("master"); ok {
		s.Master = b
	}
	if b, ok := t.boolean("backup"); ok {
		s.Backup = b
	}
	if n, ok := t.integer("sync_id", 0, math.MaxUint8); ok {
		s.SyncID = uint8(n)
	}
	if str, ok := t.str("interface"); ok {
		if msg := checkIfName(str); msg != "" {
			t.errorf("interface", "%q %s", str, msg)
		}
		s.Interface = str
	}
	t.done()
	return s
}

func (d *decoder) failover(t *tomlTable) *Failover {
	f := &Failover{Line: d.lines.lineOf(t.path), Priority: 100, Interval: 200 * time.Millisecond}
	t.require("listen")
	f.Listen, _ = t.addrPort("listen")
	t.require("peer")
	f.Peer, _ = t.addrPort("peer")
	if n, ok := t.integer("priority", 1, 255); ok {
		f.Priority = int(n)
	}
	if v, ok := t.m["interval"]; ok {
		s, _ := v.(string)
		if dur, err := time.ParseDuration(s); err != nil || dur < 10*time.Millisecond || dur > 10*time.Second {
			t.errorf("interval", "%v is not a duration in 10ms..10s", v)
		} else {
			f.Interval = dur
		}
	}
	f.Key, f.KeyFile = t.secret("key", true)
	t.require("address")
	if as, ok := t.list("address", keysOf("failover.address")...); ok {
		for _, at := range as {
			var fa FloatingAddress
			at.require("address")
			if s, ok := at.str("address"); ok {
				p, err := netip.ParsePrefix(s)
				if err != nil {
					if a, err2 := netip.ParseAddr(s); err2 == nil {
						p = netip.PrefixFrom(a, a.BitLen())
					} else {
						at.errorf("address", "%q is not an address or prefix", s)
					}
				}
				fa.Prefix = p
			}
			at.require("interface")
			if s, ok := at.str("interface"); ok {
				if msg := checkIfName(s); msg != "" {
					at.errorf("interface", "%q %s", s, msg)
				}
				fa.Interface = s
			}
			at.done()
			f.Addresses = append(f.Addresses, fa)
		}
	}
	t.done()
	return f
}

func writeScaleOut(w func(string, ...any), c *Config) {
	if s := c.Sync; s != nil {
		var peers []string
		for _, p := range s.Peers {
			peers = append(peers, p.String())
		}
		w("\n[sync]\nlisten = %q\npeers = %s\n%s\nnode_id = %d\nmax_bytes_per_second = %d\n",
			s.Listen.String(), strList(peers), secretLine("key", s.Key, s.KeyFile), s.NodeID, s.MaxBytesPerSecond)
		w("master = %t\nbackup = %t\n", s.Master, s.Backup)
		if s.SyncID != 0 {
			w("sync_id = %d\n", s.SyncID)
		}
		if s.Interface != "" {
			w("interface = %q\n", s.Interface)
		}
	}
	if f := c.Failover; f != nil {
		w("\n[failover]\nlisten = %q\npeer = %q\npriority = %d\ninterval = %q\n%s\n",
			f.Listen.String(), f.Peer.String(), f.Priority, f.Interval.String(), secretLine("key", f.Key, f.KeyFile))
		for _, a := range f.Addresses {
			w("  [[failover.address]]\n  address = %q\n  interface = %q\n", a.Prefix.String(), a.Interface)
		}
	}
}
