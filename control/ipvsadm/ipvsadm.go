// Package ipvsadm speaks ipvsadm's language for xvs: it parses ipvsadm(8)
// command lines and rule files (-S output, -R input) into API requests,
// applies those requests to a configuration with IPVS's semantics and
// ipvsadm's messages (Edit, the one definition xvsd and the tests share), and
// prints API responses in ipvsadm's exact layouts, so that scripts and habits
// written for the kernel's IPVS carry over to xvsadm.
//
// The files: tokenize.go splits command lines and rule lines into options
// (ipvsadm's option table), parse.go builds a Command from them (ipvsadm's
// commands_v_options rules), rules.go reads and writes -S/-R rules, edit.go
// changes a configuration, format.go and usage.go print.
//
// Two things differ on purpose. Nothing is resolved: addresses and ports must
// be numeric, and listings are always numeric, as with -n. And options that
// configure what xvs does not have (one-packet scheduling, persistence
// engines, tunnel types other than ipip, the sync daemon's multicast group,
// port, TTL and message size) are refused with an error naming them. The
// sync daemons themselves (--start-daemon, --stop-daemon) are xvs's [sync]
// roles: its unicast transport, peers and key come from the configuration
// file.
package ipvsadm

import (
	"fmt"
	"math"
	"time"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/sched"
)

// Defaults and limits as in ipvsadm.
const (
	DefaultScheduler   = config.DefaultScheduler // -A without -s
	DefaultPersistence = 300 * time.Second       // -p without a timeout
	MaxTimeout         = 31 * 24 * time.Hour     // -p and --set
	MaxWeight          = sched.MaxWeight         // -w
	MaxThreshold       = math.MaxInt32           // -x, -y
)

const (
	programName    = "xvsadm"
	ipvsVersion    = "1.2.1"         // the IPVS version that listings claim
	compatibleWith = "ipvsadm v1.31" // whose syntax and layouts these are
)

// Layout is what a command prints on success.
type Layout int

const (
	LayoutNone     Layout = iota // nothing (changes)
	LayoutServices               // -L: the service table
	LayoutConns                  // -L -c: the connection table
	LayoutTimeouts               // -L --timeout
	LayoutDaemon                 // -L --daemon: the sync daemons that run
	LayoutRules                  // -S: rules that -R reads back
	LayoutStatus                 // status: the data path
	LayoutHealth                 // health: health checks
	LayoutHelp                   // -h
	LayoutVersion                // -v
)

// ListOptions are the listing options of -L and -S.
type ListOptions struct {
	Numeric        bool // -n (listings are always numeric; kept for fidelity)
	Stats          bool // --stats
	Rate           bool // --rate
	Thresholds     bool // --thresholds
	PersistentConn bool // --persistent-conn
	NoSort         bool // --nosort
	Exact          bool // --exact: numbers without K/M/G units
}

// Command is a parsed command line: the request to send to xvsd and how to
// print its answer.
type Command struct {
	// Request is what to send. Its Op is empty for commands answered
	// without xvsd (LayoutHelp, LayoutVersion). For -R, the
	// caller fills Request.Text with the rules (see ParseRules).
	Request api.Request
	Layout  Layout
	List    ListOptions
	JSON    bool // --json: print the response as JSON instead
	Line    int  // of the rules text it was read from (ParseRules); 0 for a command line
}

// Local reports whether c is answered without asking xvsd.
func (c *Command) Local() bool { return c.Request.Op == "" }

// Error is a command line or rule that is not valid: the message names the
// offending option as ipvsadm's do.
type Error struct {
	Line int // of the rules text (ParseRules); 0 for a command line
	Msg  string
	// TryHelp: ipvsadm answers this with its "Try `ipvsadm -h'" line
	// and exit status 255 rather than 2.
	TryHelp bool
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

func errorf(format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}
