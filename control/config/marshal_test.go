package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func stripLines(c *Config) {
	c.Source = ""
	if c.Sync != nil {
		c.Sync.Line = 0
	}
	if c.Failover != nil {
		c.Failover.Line = 0
	}
	if c.BGP != nil {
		c.BGP.Line = 0
		for i := range c.BGP.Peers {
			c.BGP.Peers[i].Line = 0
		}
	}
	for i := range c.Services {
		s := &c.Services[i]
		s.Line = 0
		for j := range s.Reals {
			s.Reals[j].Line = 0
		}
		for j := range s.Matches {
			s.Matches[j].Line = 0
		}
		if s.Health != nil {
			h := *s.Health
			h.Line = 0
			s.Health = &h
		}
	}
}

// TestMarshalRoundTrip: what save-config writes reads back as the same
// configuration, for every example file and a file using every feature.
func TestMarshalRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("../../configs/*.toml")
	inputs := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs[f] = data
	}
	inputs["everything"] = doc(
		"[director]", `interfaces = ["a", "b"]`, "cpus = [1]", `xdp_mode = "generic"`,
		"batch_size = 32", "ring_size = 1024", "umem_frames = 8192", "idle_spins = 1", "need_wakeup = false", "verify_checksums = true", `fast_path = "off"`,
		"[timeouts]", "tcp = 60", `udp = "1500ms"`,
		"[[service]]", `name = "web"`, `vip = "198.18.0.100"`, "port = 80", `protocol = "tcp"`,
		`scheduler = "mh"`, `sched_flags = ["mh-port"]`, `persistence = "10m"`, `netmask = "255.255.0.0"`,
		`local_addresses = ["198.19.0.2", "198.19.0.3"]`, "toa = true", `local_ports = "20000-20999"`, `fast_path = "off"`,
		"[[service.real]]", `address = "198.19.0.11"`, "port = 8080", `method = "fullnat"`, "weight = 3", "upper_threshold = 10", "lower_threshold = 5",
		"[[service.real]]", `address = "198.19.0.12"`, `method = "tun"`, "port = 80",
		"[service.health]", `check = "http"`, `path = "/healthz"`, `expect_body = "ok"`, `host = "h"`, `interval = "3s"`, "fall = 5", `on_failure = "reset"`,
		"[[service]]", `vip = "fd00::100"`, "port = 53", `protocol = "udp"`, `persistence = 30`, "netmask = 64",
		"[[service.real]]", `address = "fd00::11"`, `method = "nat"`, "port = 5353",
		"[[group]]", `name = "g"`, "mark = 9",
		`match = [{ vip = "198.18.0.100", ports = "443-445", protocol = "tcp" }, { vip = "198.18.0.100", ports = 53, protocol = "udp" }]`,
		"[[group.real]]", `address = "198.18.0.11"`,
		"[group.health]", `check = "udp"`, "port = 53", `send = "ping"`, `expect = "pong"`, `initial = "down"`,
		"[bgp]", "local_as = 65001", `router_id = "198.18.0.2"`, `hold_time = "3s"`, `communities = ["65000:1"]`, `next_hop6 = "fd00::2"`,
		"[[bgp.peer]]", `address = "198.18.0.254"`, "as = 65000", "passive = true",
		"[sync]", `listen = "198.18.0.2:8848"`, `peers = ["198.18.0.3:8848"]`, `key = "0123456789abcdef"`, "node_id = 2",
		"master = false", "sync_id = 7", `interface = "b"`,
		"[failover]", `listen = "198.18.0.2:8849"`, `peer = "198.18.0.3:8849"`, "priority = 200", `key = "0123456789abcdef"`,
		"[[failover.address]]", `address = "198.18.0.100/32"`, `interface = "a"`,
	)
	for name, data := range inputs {
		t.Run(filepath.Base(name), func(t *testing.T) {
			a, err := Parse("in.toml", data)
			if err != nil {
				t.Fatal(err)
			}
			out := Marshal(a)
			b, err := Parse("out.toml", out)
			if err != nil {
				t.Fatalf("Marshal wrote a file Parse refuses: %v\n%s", err, out)
			}
			stripLines(a)
			stripLines(b)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("round trip changed the configuration:\n got  %+v\n want %+v\n%s", b, a, out)
			}
		})
	}
}
