// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)) without libsystemd: a datagram of newline-separated
// VARIABLE=value assignments to the unix socket $NOTIFY_SOCKET names. A
// service of Type=notify tells systemd with it that it is ready
// (READY=1), reloading (RELOADING=1) or stopping (STOPPING=1).
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Socket is the environment variable systemd passes the socket in.
const Socket = "NOTIFY_SOCKET"

// The states xvsd reports.
const (
	Ready     = "READY=1"
	Reloading = "RELOADING=1"
	Stopping  = "STOPPING=1"
)

// Notifier sends notifications to one socket; the zero Notifier (no
// socket: not run by systemd) sends nothing.
type Notifier struct {
	addr string // "" when not under systemd; "@..." for an abstract socket
}

// FromEnv returns the Notifier for $NOTIFY_SOCKET.
func FromEnv() Notifier { return Notifier{addr: os.Getenv(Socket)} }

// Enabled reports whether a service manager listens.
func (n Notifier) Enabled() bool { return n.addr != "" }

// Notify sends the assignments, one per line, in one datagram. It does
// nothing when no service manager listens.
func (n Notifier) Notify(assignments ...string) error {
	if n.addr == "" {
		return nil
	}
	for _, a := range assignments {
		if !strings.Contains(a, "=") || strings.Contains(a, "\n") {
			return fmt.Errorf("sd_notify: %q is not one VARIABLE=value", a)
		}
	}
	name := n.addr
	if strings.HasPrefix(name, "@") {
		name = "\x00" + name[1:] // abstract namespace
	} else if !strings.HasPrefix(name, "/") {
		return fmt.Errorf("sd_notify: %s=%q is neither a path nor an abstract socket", Socket, n.addr)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(assignments, "\n") + "\n")); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// ReloadingNow is what a service sends before it reloads: RELOADING=1 with
// the monotonic clock, which Type=notify-reload requires and Type=notify
// accepts.
func ReloadingNow() []string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return []string{Reloading}
	}
	return []string{Reloading, "MONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/1000, 10)}
}

// Status is a STATUS= line for systemctl status.
func Status(s string) string { return "STATUS=" + strings.ReplaceAll(s, "\n", " ") }
