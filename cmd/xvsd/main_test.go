package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xvs-lb/xvs/control"
	"github.com/xvs-lb/xvs/internal/version"
)

// TestVersion: -version names xvs's version.
func TestVersion(t *testing.T) {
	var b bytes.Buffer
	writeVersion(&b)
	if want := "xvsd " + version.String() + " (xvs " + version.String() + ")\n"; b.String() != want || version.String() == "" {
		t.Errorf("-version printed %q, want %q", b.String(), want)
	}
}

// TestCheck: -check validates the file as a start would, and starts
// nothing.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, file, err string
	}{
		{"good.toml", "[director]\ninterfaces = [\"eth0\"]\n", ""},
		{"bad.toml", "[director]\ninterfaces = [\"eth0\"]\nxdp_mode = \"fast\"\n", `bad.toml:3: director.xdp_mode: "fast" is not one of auto, driver, generic`},
		{"missing.toml", "", "no such file"},
	} {
		path := filepath.Join(dir, tt.name)
		if tt.file != "" {
			if err := os.WriteFile(path, []byte(tt.file), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		err := run(path, true, "auto", control.Options{SocketGroup: -1})
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: %v, want %q", tt.name, err, tt.err)
		}
	}
}
