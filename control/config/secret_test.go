package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretFiles: the sync and failover keys and BGP passwords come
// inline or from a file (owner-only, relative to the configuration's
// directory), never both; a saved configuration keeps the file's name and
// not the secret.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("sync.key", "a sync secret of 16 bytes or more\n", 0o600)
	write("failover.key", "a failover secret, long enough", 0o400)
	write("bgp.pw", "md5-pw\n", 0o600)
	write("short.key", "short\n", 0o600)
	write("open.key", "a secret anyone on the host reads\n", 0o644)
	const base = "[director]\ninterfaces = [\"eth0\"]\n"
	sync := func(key string) string {
		return base + "[sync]\nlisten = \"198.18.0.2:8848\"\npeers = [\"198.18.0.3:8848\"]\nnode_id = 1\n" + key + "\n"
	}
	failover := base + "[failover]\nlisten = \"198.18.0.2:8849\"\npeer = \"198.18.0.3:8849\"\nkey_file = \"failover.key\"\n" +
		"  [[failover.address]]\n  address = \"198.18.0.100/32\"\n  interface = \"eth0\"\n"
	bgp := func(pw string) string {
		return base + "[bgp]\nlocal_as = 65001\nrouter_id = \"198.18.0.2\"\n  [[bgp.peer]]\n  address = \"198.18.0.254\"\n  as = 65000\n  " + pw + "\n"
	}
	for _, tt := range []struct {
		name, doc, err string
	}{
		{"sync key_file", sync(`key_file = "sync.key"`), ""},
		{"sync key_file absolute", sync(`key_file = "` + filepath.Join(dir, "sync.key") + `"`), ""},
		{"sync inline", sync(`key = "an inline secret, long enough"`), ""},
		{"sync both", sync(`key = "an inline secret, long enough"` + "\nkey_file = \"sync.key\""), "key_file: set together with key"},
		{"sync none", sync(""), "missing key"},
		{"sync short file", sync(`key_file = "short.key"`), "the secret is too short"},
		{"sync open file", sync(`key_file = "open.key"`), "may be read by others than its owner (mode 0644): chmod 600 it"},
		{"sync missing file", sync(`key_file = "nothing.key"`), "cannot be read"},
		{"failover key_file", failover, ""},
		{"bgp password_file", bgp(`password_file = "bgp.pw"`), ""},
		{"bgp both", bgp(`password = "x"` + "\n  password_file = \"bgp.pw\""), "set together with password"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(filepath.Join(dir, "xvs.toml"), []byte(tt.doc))
			switch {
			case tt.err == "" && err != nil:
				t.Fatal(err)
			case tt.err != "":
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			saved := string(Marshal(cfg))
			for _, secret := range []string{"a sync secret", "a failover secret", "md5-pw"} {
				if strings.Contains(saved, secret) {
					t.Errorf("the saved configuration holds the secret %q:\n%s", secret, saved)
				}
			}
			again, err := Parse("elsewhere/saved.toml", []byte(saved))
			if err != nil {
				t.Fatalf("saved configuration refused: %v\n%s", err, saved)
			}
			if string(Marshal(again)) != saved {
				t.Errorf("saved twice differs:\n%s\nthen\n%s", Marshal(again), saved)
			}
			switch {
			case cfg.Sync != nil && cfg.Sync.KeyFile != "":
				if cfg.Sync.Key != "a sync secret of 16 bytes or more" || cfg.Sync.KeyFile != filepath.Join(dir, "sync.key") {
					t.Errorf("sync key %q from %q", cfg.Sync.Key, cfg.Sync.KeyFile)
				}
			case cfg.Failover != nil:
				if cfg.Failover.Key != "a failover secret, long enough" {
					t.Errorf("failover key %q", cfg.Failover.Key)
				}
			case cfg.BGP != nil:
				if p := cfg.BGP.Peers[0]; p.Password != "md5-pw" || !strings.Contains(saved, `password_file = "`+filepath.Join(dir, "bgp.pw")+`"`) {
					t.Errorf("bgp password %q from %q:\n%s", p.Password, p.PasswordFile, saved)
				}
			}
		})
	}
}
