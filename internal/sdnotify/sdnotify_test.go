package sdnotify

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// listen makes a socket as systemd's, at a path or in the abstract
// namespace ("@name"), and returns what $NOTIFY_SOCKET would say.
func listen(t *testing.T, abstract bool) (string, *net.UnixConn) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	env := name
	if abstract {
		env = "@xvs-sdnotify-test-" + filepath.Base(t.TempDir())
		name = "\x00" + env[1:]
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return env, c
}

func TestNotify(t *testing.T) {
	for _, tt := range []struct {
		name     string
		abstract bool
		send     []string
		want     string
	}{
		{"ready", false, []string{Ready, Status("forwarding on eth0")}, "READY=1\nSTATUS=forwarding on eth0\n"},
		{"stopping, abstract socket", true, []string{Stopping}, "STOPPING=1\n"},
		{"reloading", false, ReloadingNow(), "RELOADING=1\nMONOTONIC_USEC="},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env, c := listen(t, tt.abstract)
			t.Setenv(Socket, env)
			n := FromEnv()
			if !n.Enabled() {
				t.Fatal("not enabled with $NOTIFY_SOCKET set")
			}
			if err := n.Notify(tt.send...); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4096)
			k, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(buf[:k]); !strings.HasPrefix(got, tt.want) {
				t.Errorf("sent %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNotifyWithoutSystemd(t *testing.T) {
	t.Setenv(Socket, "")
	if n := FromEnv(); n.Enabled() || n.Notify(Ready) != nil {
		t.Error("a Notifier without a socket should send nothing, without error")
	}
	t.Setenv(Socket, "relative/path")
	if err := FromEnv().Notify(Ready); err == nil {
		t.Error("a relative socket path was accepted")
	}
	if err := (Notifier{addr: "/x"}).Notify("READY=1\nSTOPPING=1"); err == nil {
		t.Error("an assignment with a newline was accepted")
	}
}
