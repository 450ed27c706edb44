package ipvsadm

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/control/config"
)

// restored is what a director started with nothing but its interfaces runs
// after xvsadm -R of rules.
func restored(t *testing.T, rules string) *config.Config {
	t.Helper()
	empty, err := config.Parse("xvs.toml", []byte("[director]\ninterfaces = [\"eth0\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Edit(empty, &api.Request{Op: api.OpRestore, Text: rules})
	if err != nil {
		t.Fatalf("restore:\n%s\nrefused: %v", rules, err)
	}
	return cfg
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// listing prints what xvsadm prints for args over cfg's services, with
// persist's templates counted per real server address:port, and conns as
// the connection table.
func listing(t *testing.T, cfg *config.Config, args string, persist map[string]int64, conns []api.Conn) string {
	t.Helper()
	resp := &api.Response{Services: Services(cfg), Capacity: 4096, Conns: conns}
	for i := range resp.Services {
		for j := range resp.Services[i].Reals {
			r := &resp.Services[i].Reals[j]
			r.PersistConn = persist[addrPort(r.Addr, r.Port)]
		}
	}
	var b bytes.Buffer
	if err := mustParse(t, args).Print(&b, resp); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestIPVSADM131Dump: a dump in ipvsadm 1.31's exact -S -n format (every
// forwarding method, tunnels with 1.31's --tun-type ipip, persistence with
// IPv4 and IPv6 netmasks, sh's and mh's flags) is imported as it is, and
// xvsadm then writes it back, and lists it, byte for byte as ipvsadm 1.31
// does (testdata/ipvsadm-1.31: the listings are ipvsadm.c's printf formats
// applied to the same state). Thresholds, which ipvsadm -S never writes but
// -R reads, are restored from rules in ipvsadm's syntax.
func TestIPVSADM131Dump(t *testing.T) {
	dump := readTestdata(t, "ipvsadm-1.31/save.rules")
	cfg := restored(t, dump)
	if got := Rules(Services(cfg)); got != dump {
		t.Errorf("-S -n of the imported dump:\n%s\nwant ipvsadm's:\n%s", got, dump)
	}
	templates := map[string]int64{"198.18.0.21:443": 2, "198.18.0.11:53": 1}
	conns := []api.Conn{
		{Protocol: "tcp", Client: ap("203.0.113.0:0"), Virtual: ap("198.18.0.100:443"), Real: ap("198.18.0.21:443"), State: "NONE", ExpiresIn: 299 * time.Second, Template: true},
		{Protocol: "tcp", Client: ap("203.0.114.0:0"), Virtual: ap("198.18.0.100:443"), Real: ap("198.18.0.21:443"), State: "NONE", ExpiresIn: 200 * time.Second, Template: true},
		{Protocol: "udp", Client: ap("203.0.113.5:0"), Virtual: ap("198.18.0.100:53"), Real: ap("198.18.0.11:53"), State: "NONE", ExpiresIn: 59 * time.Second, Template: true},
	}
	for _, tt := range []struct{ args, golden string }{
		{"-L -n", "list.txt"},
		{"-L -n --persistent-conn", "persistent-conn.txt"},
		{"-L -n -c", "conns.txt"},
	} {
		if got, want := listing(t, cfg, tt.args, templates, conns), readTestdata(t, "ipvsadm-1.31/"+tt.golden); got != want {
			t.Errorf("%s:\n%s\nwant ipvsadm's:\n%s", tt.args, got, want)
		}
	}
	th := restored(t, readTestdata(t, "ipvsadm-1.31/thresholds.rules"))
	if got, want := listing(t, th, "-L -n --thresholds", nil, nil), readTestdata(t, "ipvsadm-1.31/thresholds.txt"); got != want {
		t.Errorf("--thresholds:\n%s\nwant ipvsadm's:\n%s", got, want)
	}

	// ipvsadm's generic flags are read as the scheduler's own, and
	// dropped by a scheduler that reads none (as the kernel ignores them).
	flags := restored(t, "-A -t 198.18.0.100:80 -s sh -b flag-2,flag-1,flag-3\n-A -t 198.18.0.100:81 -s rr -b flag-1\n")
	if got, want := Rules(Services(flags)), "-A -t 198.18.0.100:80 -s sh -b sh-fallback,sh-port\n-A -t 198.18.0.100:81 -s rr\n"; got != want {
		t.Errorf("-b flag-N:\n%s\nwant\n%s", got, want)
	}
	// A fwmark service of ipvsadm's cannot come without its matches.
	empty := restored(t, "")
	if _, err := Edit(empty, &api.Request{Op: api.OpRestore, Text: "-A -f 1 -s rr\n"}); err == nil || !strings.Contains(err.Error(), "line 1: xvs has no firewall marks") {
		t.Errorf("-A -f without --match: %v", err)
	}
}

// TestEveryModeRoundTrip: rules with every mode, a group of each family,
// persistence, thresholds, FullNAT's local addresses and ports, TOA, the
// fast path opt-out and a health check: -R then -S gives them back byte
// for byte, and so do -C, -R and -S again; the configuration file written
// from it reads back the same.
func TestEveryModeRoundTrip(t *testing.T) {
	rules := readTestdata(t, "every-mode.rules")
	cfg := restored(t, rules)
	if got := Rules(Services(cfg)); got != rules {
		t.Fatalf("-S after -R:\n%s\nwant\n%s", got, rules)
	}
	cleared, err := Edit(cfg, &api.Request{Op: api.OpClear})
	if err != nil || len(cleared.Services) != 0 {
		t.Fatalf("-C: %v, %d services left", err, len(cleared.Services))
	}
	again, err := Edit(cleared, &api.Request{Op: api.OpRestore, Text: Rules(Services(cfg))})
	if err != nil {
		t.Fatal(err)
	}
	if got := Rules(Services(again)); got != rules {
		t.Errorf("-S | -C | -R:\n%s\nwant\n%s", got, rules)
	}
	file, err := config.Parse("saved.toml", config.Marshal(again))
	if err != nil {
		t.Fatal(err)
	}
	if got := Rules(Services(file)); got != rules {
		t.Errorf("save-config then load:\n%s\nwant\n%s", got, rules)
	}
	s := file.Services[2]
	if s.Reals[0].Method.String() != "fullnat" || len(s.LocalAddrs) != 2 || !s.TOA || !s.NoFastPath || s.LocalPortMin != 20000 {
		t.Errorf("FullNAT service: %+v", s)
	}
}
