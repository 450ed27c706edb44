package netnstest

import (
	"net"
	"os"
	"os/exec"
	"testing"
)

func netnsID(t *testing.T) string {
	t.Helper()
	id, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSuffix(t *testing.T) {
	a, b := Suffix(t), Suffix(t)
	if len(a) != 6 || len(b) != 6 || a == b {
		t.Errorf("suffixes %q, %q", a, b)
	}
}

func TestNamespace(t *testing.T) {
	NeedRoot(t, "network namespaces")
	name := "xvs" + Suffix(t)
	var inside string
	t.Run("in", func(t *testing.T) {
		Add(t, name+"x") // deleted when this subtest ends
		Add(t, name)
		AddVeth(t, name, name+"a", name+"b")
		outside := netnsID(t)
		In(t, name, func() {
			inside = netnsID(t)
			for _, ifname := range []string{name + "a", name + "b", "lo"} {
				ifi, err := net.InterfaceByName(ifname)
				if err != nil || ifi.Flags&net.FlagUp == 0 {
					t.Errorf("%s in %s: %+v, %v", ifname, name, ifi, err)
				}
			}
		})
		if inside == outside || inside == "" {
			t.Errorf("In ran in %q, outside is %q", inside, outside)
		}
		if _, err := net.InterfaceByName(name + "a"); err == nil {
			t.Errorf("%sa is outside the namespace", name)
		}
	})
	for _, ns := range []string{name, name + "x"} {
		if err := exec.Command("ip", "netns", "pids", ns).Run(); err == nil {
			t.Errorf("namespace %s outlived its test", ns)
		}
	}
}
