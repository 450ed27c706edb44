package realserver

import (
	"fmt"
	"os"
	"strings"
)

// procSys is where sysctls are read and written. The net/ subtree belongs
// to the network namespace of the thread that opens the file.
const procSys = "/proc/sys/"

// sysctlName turns a path under /proc/sys into sysctl(8)'s dotted name;
// dots inside an element (VLAN interfaces) become slashes, as sysctl shows
// them.
func sysctlName(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, ".", "/")
	}
	return strings.Join(parts, ".")
}

// confPath returns the path of an IPv4 per-interface sysctl, dev being an
// interface name, "all" or "default".
func confPath(dev, key string) string { return "net/ipv4/conf/" + dev + "/" + key }

func readSysctl(path string) (string, error) {
	b, err := os.ReadFile(procSys + path)
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", sysctlName(path), err)
	}
	return strings.TrimSpace(string(b)), nil
}

func writeSysctl(path, value string) error {
	f, err := os.OpenFile(procSys+path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("write sysctl %s: %w", sysctlName(path), err)
	}
	_, err = f.WriteString(value + "\n")
	if errClose := f.Close(); err == nil {
		err = errClose
	}
	if err != nil {
		return fmt.Errorf("write sysctl %s = %s: %w", sysctlName(path), value, err)
	}
	return nil
}
