package control

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/dataplane"
)

// TestSaveConfigMode: save-config writes a file only its owner may read
// (it can hold the sync, failover and BGP secrets), also over a file that
// was readable by all.
func TestSaveConfigMode(t *testing.T) {
	cfg := parse(t, append(append([]string(nil), director...), "[sync]", `listen = "198.18.0.2:8848"`,
		`peers = ["198.18.0.3:8848"]`, `key = "0123456789abcdef"`, "node_id = 1")...)
	path := filepath.Join(t.TempDir(), "saved.toml")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &Director{cfg: cfg, log: zap.NewNop(), path: path}
	if err := d.SaveConfig(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("saved with mode %04o, want 0600", m)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
}

// TestTemplateConn: a persistence template is listed as IPVS lists it.
func TestTemplateConn(t *testing.T) {
	ip := netip.MustParseAddr
	svc := &dataplane.Service{VIP: ip("198.18.0.100"), Port: 443, Proto: 6}
	group := &dataplane.Service{VIP: ip("198.18.0.200"), Mark: 258, Proto: 6}
	dst := &dataplane.Dest{Addr: ip("198.18.0.11"), Port: 443}
	tp := dataplane.Template{Client: ip("203.0.113.0"), Expires: time.Minute}
	for _, tt := range []struct {
		s    *dataplane.Service
		tp   dataplane.Template
		want api.Conn
	}{
		{svc, tp, api.Conn{Protocol: "tcp", Client: netip.MustParseAddrPort("203.0.113.0:0"), Virtual: netip.MustParseAddrPort("198.18.0.100:443"),
			Real: netip.MustParseAddrPort("198.18.0.11:443"), State: "NONE", ExpiresIn: time.Minute, Template: true}},
		{group, tp, api.Conn{Protocol: "ip", Client: netip.MustParseAddrPort("203.0.113.0:0"), Virtual: netip.MustParseAddrPort("0.0.1.2:0"),
			Real: netip.MustParseAddrPort("198.18.0.11:443"), State: "NONE", ExpiresIn: time.Minute, Template: true}},
		{group, dataplane.Template{Client: ip("2001:db8::"), Expires: time.Minute}, api.Conn{Protocol: "ip", Client: netip.MustParseAddrPort("[2001:db8::]:0"),
			Virtual: netip.MustParseAddrPort("[::102]:0"), Real: netip.MustParseAddrPort("198.18.0.11:443"), State: "NONE", ExpiresIn: time.Minute, Template: true}},
	} {
		if got := templateConn(tt.s, dst, tt.tp); got != tt.want {
			t.Errorf("templateConn = %+v, want %+v", got, tt.want)
		}
	}
}
