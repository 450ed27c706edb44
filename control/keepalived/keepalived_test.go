package keepalived

import (
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/xvs-lb/xvs/control/config"
)

// notSupported is what every message about a sample must look like: its
// file and line, and the words "not supported".
func checkMessages(t *testing.T, path string, msgs []Message) {
	t.Helper()
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:[1-9][0-9]*: .*not supported`)
	for _, m := range msgs {
		if !re.MatchString(m.String()) {
			t.Errorf("message without a line or without \"not supported\": %s", m)
		}
	}
}

// convertSample converts path and checks that the result is a
// configuration xvsd -check accepts and that its messages are all
// line-numbered "not supported" ones.
func convertSample(t *testing.T, path string, opts Options) (*config.Config, *Result) {
	t.Helper()
	r, err := Convert(path, opts)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	cfg, err := config.Parse("converted.toml", r.TOML)
	if err != nil {
		t.Fatalf("%s: the converted configuration does not validate: %v\n%s", path, err, r.TOML)
	}
	checkMessages(t, path, r.Messages)
	return cfg, r
}

func messages(r *Result) string {
	var b strings.Builder
	for _, m := range r.Messages {
		b.WriteString(m.String() + "\n")
	}
	return b.String()
}

// TestSamples converts keepalived's own sample configurations (copied
// from Debian's keepalived package into testdata/samples) and checks what
// each carries over and what it reports.
func TestSamples(t *testing.T) {
	type want struct {
		services, groups int
		toml             []string // fragments of the configuration written
		msgs             []string // fragments of the messages
	}
	for _, tt := range []struct {
		file string
		opts Options
		want want
	}{
		{"keepalived.conf.sample", Options{}, want{services: 1,
			toml: []string{`vip = "10.10.10.2"`, "port = 1358", `scheduler = "rr"`, `persistence = "50s"`, `check = "http"`, `path = "/testurl3/test.jsp"`,
				`interval = "6s"`, `timeout = "3s"`, "rise = 1", "fall = 4", `address = "192.168.200.2"`, `method = "nat"`,
				"# [failover]", `#   address = "192.168.200.11/32"`, `#   interface = "eth0"`, `interfaces = ["eth0"]`},
			msgs: []string{":3: global_defs { ... }: not supported", ":16: nopreempt: not supported", ":33: sorry_server: not supported",
				":40: digest: not supported", ":37: delay_before_retry 3s: not supported", ":13: multicast VRRP advertisements: not supported"}}},
		{"keepalived.conf.virtual_server_group", Options{}, want{groups: 1,
			toml: []string{`name = "VSG_1"`, `{ vip = "192.168.200.3", ports = "80", protocol = "tcp" }`, `{ vip = "192.168.200.10", ports = "80", protocol = "tcp" }`,
				`{ vip = "10.0.0.1", ports = "8080", protocol = "tcp" }`, "[[group.real]]"},
			msgs: []string{":18: fwmark 1 in a virtual_server_group: not supported", ":19: fwmark 2 in a virtual_server_group: not supported"}}},
		{"keepalived.conf.fwmark", Options{Interfaces: []string{"bond0"}}, want{
			toml: []string{"# [[group]]", "# mark = 1", `#   address = "192.168.201.100"`, `interfaces = ["bond0"]`},
			msgs: []string{":7: virtual_server fwmark 1: not supported as it stands"}}},
		{"keepalived.conf.quorum", Options{}, want{services: 1,
			toml: []string{`scheduler = "wrr"`, `check = "tcp"`, "  port = 80", `initial = "down"`, `address = "10.0.0.10"`, "port = 8080"},
			msgs: []string{":31: quorum: not supported", ":33: quorum_up: not supported", ":30: omega: not supported"}}},
		{"keepalived.conf.SSL_GET", Options{}, want{services: 2,
			toml: []string{`check = "https"`, `check = "http"`, "port = 443"},
			msgs: []string{":44: url: a second URL: not supported"}}},
		{"keepalived.conf.status_code", Options{}, want{services: 1,
			toml: []string{`check = "https"`, "expect_status = 200"},
			msgs: []string{":26: status_code 200-299 400-499 503 505: not supported"}}},
		{"keepalived.conf.inhibit", Options{}, want{services: 1, toml: []string{`check = "http"`}}},
		{"keepalived.conf.IPv6", Options{}, want{services: 1,
			toml: []string{`vip = "ae00::1"`, `address = "ae00::10"`, "port = 25"},
			msgs: []string{":24: SMTP_CHECK { ... }: not supported"}}},
		{"keepalived.conf.UDP_CHECK", Options{}, want{services: 1,
			toml: []string{`protocol = "udp"`},
			msgs: []string{":23: UDP_CHECK { ... }: not supported (without require_reply"}}},
		{"keepalived.conf.misc_check", Options{}, want{services: 1, msgs: []string{":23: MISC_CHECK { ... }: not supported"}}},
		{"keepalived.conf.vrrp", Options{}, want{
			toml: []string{`interfaces = ["eth0", "eth1"]`, `#   address = "192.168.201.18/32"`, "# priority = 100"},
			msgs: []string{":32: label eth0:1: not supported", ":36: vrrp_instance VI_2: priority 50 unlike the first instance's 100: not supported"}}},
		{"keepalived.conf.vrrp.lvs_syncd", Options{}, want{services: 1,
			msgs: []string{":11: lvs_sync_daemon_interface: not supported (IPVS's multicast sync daemon", ":3: vrrp_sync_group { ... }: not supported"}}},
		{"keepalived.conf.track_interface", Options{}, want{
			toml: []string{`interfaces = ["eth0.1", "eth1", "eth2"]`, `#   interface = "eth2"`},
			msgs: []string{":17: track_interface { ... }: not supported", ":7: static_routes { ... }: not supported"}}},
		{"keepalived.conf.conditional_conf", Options{}, want{
			msgs: []string{":7: @high: a line of configuration id \"high\" (keepalived -i high): not supported", ":24: track_script { ... }: not supported"}}},
		{"keepalived.conf.conditional_conf", Options{ConfigID: "high"}, want{toml: []string{"# priority = 170", `#   address = "10.1.0.254/32"`}}},
	} {
		t.Run(tt.file+"/"+tt.opts.ConfigID, func(t *testing.T) {
			path := filepath.Join("testdata", "samples", tt.file)
			cfg, r := convertSample(t, path, tt.opts)
			var svcs, groups int
			for _, s := range cfg.Services {
				if s.IsGroup() {
					groups++
				} else {
					svcs++
				}
			}
			if svcs != tt.want.services || groups != tt.want.groups {
				t.Errorf("%d services and %d groups, want %d and %d", svcs, groups, tt.want.services, tt.want.groups)
			}
			for _, f := range tt.want.toml {
				if !strings.Contains(string(r.TOML), f) {
					t.Errorf("the configuration lacks %q:\n%s", f, r.TOML)
				}
			}
			for _, f := range tt.want.msgs {
				if !strings.Contains(messages(r), f) {
					t.Errorf("no message %q in:\n%s", f, messages(r))
				}
			}
			if tt.opts.ConfigID == "high" && strings.Contains(messages(r), "@high") {
				t.Errorf("-config-id high still skips @high lines:\n%s", messages(r))
			}
		})
	}
}

// TestInstalledSamples converts every sample configuration Debian's
// keepalived package installed, gzipped or not: each converts to a
// configuration xvsd -check accepts, with line-numbered "not supported"
// messages only.
func TestInstalledSamples(t *testing.T) {
	// Installed, or unpacked from the package by make test (.ci/deps).
	var files []string
	dirs := []string{"/usr/share/doc/keepalived/samples", "../../bin/keepalived/usr/share/doc/keepalived/samples"}
	for _, dir := range dirs {
		if files, _ = filepath.Glob(filepath.Join(dir, "keepalived.conf*")); len(files) > 0 {
			break
		}
	}
	if len(files) == 0 {
		t.Skipf("no keepalived samples in %s (make test unpacks them; or apt-get install keepalived); testdata's copies are converted by TestSamples", strings.Join(dirs, " or "))
	}
	tmp := t.TempDir()
	for _, f := range files {
		path := f
		if strings.HasSuffix(f, ".gz") {
			path = filepath.Join(tmp, strings.TrimSuffix(filepath.Base(f), ".gz"))
			if err := gunzip(f, path); err != nil {
				t.Fatal(err)
			}
		}
		t.Run(filepath.Base(path), func(t *testing.T) { convertSample(t, path, Options{}) })
	}
}

func gunzip(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	z, err := gzip.NewReader(in)
	if err != nil {
		return err
	}
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, z); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// writeFiles lays files out under a temporary directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSyntax: keepalived's syntax as keepalived reads it: blocks on one
// line or many, comments with # and ! anywhere outside quotes, quotes,
// includes with globs relative to the including file, definitions, and the
// errors keepalived would refuse the file for.
func TestSyntax(t *testing.T) {
	for _, tt := range []struct {
		name    string
		files   map[string]string
		toml    []string
		msgs    []string
		syntax  string // the SyntaxError's text
		options Options
	}{
		{name: "one line", files: map[string]string{"k.conf": "virtual_server 10.0.0.1 80 { lb_kind DR; real_server 10.0.1.1 80 { weight 3 } }\n"},
			syntax: "k.conf:1: "}, // "DR;" is no method, but braces pair: the error is the importer's? see below
		{name: "nested blocks on one line", files: map[string]string{"k.conf": "virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 { weight 3 }\n}\n"},
			toml: []string{`address = "10.0.1.1"`, "weight = 3"}},
		{name: "braces against words", files: map[string]string{"k.conf": "virtual_server 10.0.0.1 80{\nreal_server 10.0.1.1 80{\nweight 2}}\n"},
			toml: []string{"weight = 2"}},
		{name: "comments", files: map[string]string{"k.conf": "# a comment\n! another\nvirtual_server 10.0.0.1 80 { # trailing\n  lb_algo wrr ! here too\n  real_server 10.0.1.1 80 {\n    weight 4 # four\n  }\n}\n"},
			toml: []string{`scheduler = "wrr"`, "weight = 4"}},
		{name: "quotes keep # and !", files: map[string]string{"k.conf": "virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n  HTTP_GET {\n   url {\n    path \"/a!b\"\n    regex 'x # y'\n   }\n  }\n }\n}\n"},
			toml: []string{`path = "/a!b"`, `expect_body = "x # y"`}},
		{name: "a path xvs cannot send", files: map[string]string{"k.conf": "virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n  HTTP_GET {\n   url {\n    path \"/a#b\"\n   }\n  }\n }\n}\n"},
			toml: []string{`path = "/"`}, msgs: []string{"k.conf:5: path /a#b: not"}},
		{name: "include glob relative to the file", files: map[string]string{
			"etc/keepalived.conf":     "include conf.d/*.conf\n",
			"etc/conf.d/a.conf":       "virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n }\n}\n",
			"etc/conf.d/b.conf":       "include ../more/c.inc\n",
			"etc/more/c.inc":          "virtual_server 10.0.0.2 80 {\n real_server 10.0.1.2 80 {\n  weight 9\n }\n}\n",
			"etc/conf.d/notincluded":  "garbage {\n",
			"etc/conf.d/z.conf.saved": "garbage {\n",
		}, toml: []string{`vip = "10.0.0.1"`, `vip = "10.0.0.2"`, "weight = 9"}},
		{name: "include that matches nothing", files: map[string]string{"k.conf": "include nothing/*.conf\nvirtual_server 10.0.0.1 80 {\n}\n"},
			msgs: []string{"k.conf:1: include nothing/*.conf: no file matches"}, toml: []string{`vip = "10.0.0.1"`}},
		{name: "definitions", files: map[string]string{"k.conf": "$VIP=10.0.0.7\n$RS=real_server 10.0.1.7 80 { \\\n weight 5 \\\n}\nvirtual_server $VIP 80 {\n ${RS}\n}\n"},
			toml: []string{`vip = "10.0.0.7"`, `address = "10.0.1.7"`, "weight = 5"}},
		{name: "unclosed brace", files: map[string]string{"k.conf": "virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n}\n"},
			syntax: "k.conf:1: the { of virtual_server is never closed"},
		{name: "brace too many", files: map[string]string{"k.conf": "virtual_server 10.0.0.1 80 {\n}\n}\n"},
			syntax: "k.conf:3: } without a { to close"},
		{name: "unterminated quote", files: map[string]string{"k.conf": "global_defs {\n router_id \"x\n}\n"},
			syntax: "k.conf:2: unterminated \" quote"},
		{name: "include loop", files: map[string]string{"k.conf": "include k.conf\n"},
			syntax: "includes nested more than 32 deep"},
		{name: "unknown keyword", files: map[string]string{"k.conf": "frobnicate 1\n"},
			msgs: []string{"k.conf:1: frobnicate: not supported (a keyword the importer does not know)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			main := filepath.Join(dir, "k.conf")
			if _, ok := tt.files["etc/keepalived.conf"]; ok {
				main = filepath.Join(dir, "etc/keepalived.conf")
			}
			r, err := Convert(main, tt.options)
			if tt.syntax != "" {
				var se *SyntaxError
				if tt.name == "one line" {
					// keepalived's lines end at newlines: "lb_kind DR;"
					// is a method it does not know, nothing worse.
					if err != nil {
						t.Fatal(err)
					}
					if !strings.Contains(messages(r), "lb_kind DR;: not supported") {
						t.Errorf("messages:\n%s", messages(r))
					}
					return
				}
				if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.syntax) {
					t.Fatalf("error %v, want a syntax error %q", err, tt.syntax)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range tt.toml {
				if !strings.Contains(string(r.TOML), f) {
					t.Errorf("the configuration lacks %q:\n%s", f, r.TOML)
				}
			}
			for _, f := range tt.msgs {
				if !strings.Contains(messages(r), f) {
					t.Errorf("no message %q in:\n%s", f, messages(r))
				}
			}
		})
	}
}

// TestMapping: what each keepalived setting becomes.
func TestMapping(t *testing.T) {
	vs := func(body string) string { return "virtual_server 198.18.0.100 80 {\n" + body + "\n}\n" }
	pair := func(pass string) string {
		return `vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.5
    unicast_src_ip 198.18.0.2
    unicast_peer {
        198.18.0.3
    }
    authentication {
        auth_type PASS
        auth_pass ` + pass + `
    }
    virtual_ipaddress {
        198.18.0.100/32 dev eth0
        198.19.0.1/24 dev eth1
    }
}
`
	}
	for _, tt := range []struct {
		name  string
		conf  string
		opts  Options
		toml  []string
		not   []string
		msgs  []string
		quiet bool // no message at all
	}{
		{name: "DR keeps the port", conf: vs("lb_kind DR\nreal_server 198.18.0.11 8080 {\n}"),
			toml: []string{`method = "dr"`, "port = 80\n"}, not: []string{"port = 8080"},
			msgs: []string{"real_server 198.18.0.11 8080: DR cannot change the port (80): not supported"}},
		{name: "TUN, weights, thresholds, inhibit_on_failure", conf: vs("lvs_method TUN\nlvs_sched wlc\ninhibit_on_failure\nreal_server 198.18.0.11 80 {\nweight 7\nuthreshold 100\nlthreshold 50\n}"),
			toml: []string{`method = "tun"`, "weight = 7", "upper_threshold = 100", "lower_threshold = 50", `scheduler = "wlc"`}, quiet: true},
		{name: "NAT remaps, persistence with granularity", conf: vs("lb_kind NAT\nprotocol UDP\npersistence_timeout\npersistence_granularity 255.255.255.0\nreal_server 198.19.0.11 5353 {\n}"),
			toml: []string{`method = "nat"`, "port = 5353", `protocol = "udp"`, `persistence = "360s"`, `netmask = "255.255.255.0"`}, quiet: true},
		{name: "scheduler flags", conf: vs("lb_algo sh\nsh-port\nmh-port\nreal_server 198.18.0.11 80 {\n}"),
			toml: []string{`scheduler = "sh"`, `sched_flags = ["sh-port"]`}, msgs: []string{"mh-port: a flag scheduler sh does not take: not supported"}},
		{name: "unknown scheduler", conf: vs("lb_algo bogus\nreal_server 198.18.0.11 80 {\n}"),
			toml: []string{`scheduler = "wlc"`}, msgs: []string{"lb_algo bogus: not a scheduler xvs has: not supported"}},
		{name: "TCP_CHECK timers: delay_loop, connect_timeout, retry, alpha", conf: vs("delay_loop 10\nalpha\nreal_server 198.18.0.11 80 {\nTCP_CHECK {\nconnect_port 81\nconnect_timeout 2\nretry 4\n}\n}"),
			toml: []string{`check = "tcp"`, `interval = "10s"`, `timeout = "2s"`, "rise = 1", "fall = 5", "port = 81", `initial = "down"`}, quiet: true},
		{name: "HTTP_GET: virtualhost, status, literal regex", conf: vs("virtualhost www.example.org\nreal_server 198.18.0.11 80 {\nHTTP_GET {\nurl {\npath /health?full=1\nstatus_code 204\nregex \"all good\"\n}\n}\n}"),
			toml: []string{`check = "http"`, `path = "/health?full=1"`, "expect_status = 204", `expect_body = "all good"`, `host = "www.example.org"`, "fall = 2"}, quiet: true},
		{name: "SSL_GET", conf: vs("real_server 198.18.0.11 443 {\nSSL_GET {\nenable_sni\n}\n}"),
			toml: []string{`check = "https"`, `path = "/"`, "expect_status = 200"}, quiet: true},
		{name: "DNS_CHECK", conf: vs("protocol UDP\nreal_server 198.18.0.11 53 {\nDNS_CHECK {\ntype A\nname example.org\n}\n}"),
			toml: []string{`check = "udp"`, `send = "XV\u0001\u0000\u0000\u0001\u0000\u0000\u0000\u0000\u0000\u0000\u0007example\u0003org\u0000\u0000\u0001\u0000\u0001"`,
				`expect = "\u0007example\u0003org\u0000\u0000\u0001\u0000\u0001"`, "fall = 4"}, quiet: true},
		{name: "UDP_CHECK with a reply", conf: vs("protocol UDP\nreal_server 198.18.0.11 80 {\nUDP_CHECK {\npayload 70696e67\nrequire_reply 706f6e67\n}\n}"),
			toml: []string{`check = "udp"`, `send = "ping"`, `expect = "pong"`}, quiet: true},
		{name: "checks that differ between real servers", conf: vs("real_server 198.18.0.11 80 {\nTCP_CHECK {\n}\n}\nreal_server 198.18.0.12 80 {\nTCP_CHECK {\nconnect_port 81\n}\n}\nreal_server 198.18.0.13 80 {\n}"),
			toml: []string{`check = "tcp"`}, not: []string{"port = 81"},
			msgs: []string{":7: a check unlike that of the real server at", ":11: real_server 198.18.0.13: no check xvs can run"}},
		{name: "scripts", conf: vs("real_server 198.18.0.11 80 {\nnotify_up /bin/up\nnotify_down \"/bin/down now\"\nMISC_CHECK {\nmisc_path /bin/check\n}\n}\nsorry_server 198.18.0.99 80"),
			msgs: []string{":3: notify_up: not supported", ":4: notify_down: not supported", ":5: MISC_CHECK { ... }: not supported", ":9: sorry_server: not supported"}},
		{name: "a service on every port", conf: "virtual_server 198.18.0.100 {\npersistence_timeout 600\nlb_kind DR\nreal_server 198.18.0.11 {\n}\n}\n",
			toml: []string{"[[group]]", `{ vip = "198.18.0.100", ports = "1-65535", protocol = "tcp" }`, `persistence = "600s"`}, quiet: true},
		{name: "group ranges", conf: "virtual_server_group G {\n198.18.0.100-102 80\n198.18.1.0/30 443\n198.18.2.1-198.18.2.2\nfd00::1-3 80\n}\nvirtual_server group G {\nlb_kind DR\nreal_server 198.18.0.11 {\n}\n}\n",
			toml: []string{`name = "G"`, `{ vip = "198.18.0.102", ports = "80", protocol = "tcp" }`, `{ vip = "198.18.1.3", ports = "443", protocol = "tcp" }`, `{ vip = "198.18.2.2", ports = "1-65535", protocol = "tcp" }`},
			not:  []string{"198.18.0.103", "fd00::"}, msgs: []string{":5: fd00::1: an address of the other family"}},
		{name: "the same service twice", conf: vs("") + vs(""), msgs: []string{":4: virtual_server tcp 198.18.0.100:80: not supported: the same service as at"}},
		{name: "unicast VRRP pair", conf: pair("secret"),
			toml: []string{"[failover]", `listen = "198.18.0.2:8849"`, `peer = "198.18.0.3:8849"`, "priority = 150", `interval = "500ms"`,
				`key = "` + derivedKey("secret") + `"`, `address = "198.18.0.100/32"`, `interface = "eth1"`, `interfaces = ["eth0", "eth1"]`},
			not: []string{"# [failover]"}, quiet: true},
		{name: "unicast VRRP pair with a key of its own", conf: pair("secret"), opts: Options{Key: "a key of our own, long enough"},
			toml: []string{`key = "a key of our own, long enough"`}},
		{name: "interfaces from the command line", conf: pair("secret"), opts: Options{Interfaces: []string{"ens1f0", "ens1f1"}},
			toml: []string{`interfaces = ["ens1f0", "ens1f1"]`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"keepalived.conf": tt.conf})
			path := filepath.Join(dir, "keepalived.conf")
			if len(tt.opts.Interfaces) == 0 && !strings.Contains(tt.conf, "vrrp_instance") {
				tt.opts.Interfaces = []string{"eth0"}
			}
			_, r := convertSample(t, path, tt.opts)
			for _, f := range tt.toml {
				if !strings.Contains(string(r.TOML), f) {
					t.Errorf("the configuration lacks %q:\n%s", f, r.TOML)
				}
			}
			for _, f := range tt.not {
				if strings.Contains(string(r.TOML), f) {
					t.Errorf("the configuration has %q:\n%s", f, r.TOML)
				}
			}
			for _, f := range tt.msgs {
				if !strings.Contains(messages(r), f) {
					t.Errorf("no message %q in:\n%s", f, messages(r))
				}
			}
			if tt.quiet && len(r.Messages) > 0 {
				t.Errorf("messages for what converts:\n%s", messages(r))
			}
		})
	}
}

// derivedKey is the key both directors' converted files get from the same
// auth_pass.
func derivedKey(pass string) string {
	c := &converter{}
	c.failover = &failoverOut{}
	n := &node{Key: "vrrp_instance", Children: []*node{{Key: "authentication", Block: true, Children: []*node{{Key: "auth_pass", Args: []string{pass}}}}}}
	c.failover = nil
	c.vrrpInstance(n)
	return c.failover.key
}
