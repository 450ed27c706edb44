package e2e

import (
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/internal/topo"
)

// blobSize is what the seed setups download and upload through the
// director: enough segments that a director losing or corrupting any share
// of them cannot hide.
const blobSize = 20_000_000

// fullnatSeedConfig is the FullNAT service in TOML: ipvsadm has no FullNAT
// method to replay.
const fullnatSeedConfig = `
[director]
interfaces = ["{{IF0}}", "{{IF1}}"]

[[service]]
vip = "198.18.0.100"
port = 80
protocol = "tcp"
scheduler = "rr"
local_addresses = ["198.19.0.2"]
  [[service.real]]
  address = "198.19.0.11"
  method = "fullnat"
  [[service.real]]
  address = "198.19.0.12"
  method = "fullnat"

[[service]]
vip = "fd00:18::100"
port = 80
protocol = "tcp"
scheduler = "rr"
local_addresses = ["fd00:19::2"]
  [[service.real]]
  address = "fd00:19::11"
  method = "fullnat"
  [[service.real]]
  address = "fd00:19::12"
  method = "fullnat"
`

// TestSeedSetups is what a new user does first: the seed's LVS setups
// (sections 4.1 DR, 4.2 NAT, 4.3 TUN) in network namespaces with the
// kernel's default veth settings, which leave TCP and UDP checksums for a
// NIC to complete, xvsd started with nothing but its interfaces, and the
// seed's own ipvsadm lines replayed through xvsadm (FullNAT, which ipvsadm
// cannot express, from TOML). Every mode, IPv4 and IPv6, must carry 100 new
// connections split rr and a 20 MB download byte for byte, NAT and FullNAT
// a 20 MB upload too; the director counts the checksums it completed.
//
// One variant stands for hosts behind physical NICs, whose frames arrive
// with complete checksums: nothing is completed there, and everything
// works the same.
func TestSeedSetups(t *testing.T) {
	type family struct {
		vip   netip.Addr
		reals []netip.Addr
	}
	v4dr, v6dr := family{topo.VIP, topo.DRReals}, family{topo.VIP6, topo.DRReals6}
	v4nat, v6nat := family{topo.VIP, topo.NATReals}, family{topo.VIP6, topo.NATReals6}
	for _, tc := range []struct {
		name     string
		build    func(io.Writer) (*topo.LVS, error)
		method   string // ipvsadm's forwarding option; "" for FullNAT
		fams     []family
		upload   bool
		realNICs bool
	}{
		{"DR", topo.NewDR, "-g", []family{v4dr, v6dr}, false, false},
		{"NAT", topo.NewNAT, "-m", []family{v4nat, v6nat}, true, false},
		{"TUN", topo.NewTUN, "-i", []family{v4dr, v6dr}, false, false},
		{"FullNAT", topo.NewFullNAT, "", []family{v4nat, v6nat}, true, false},
		{"NAT behind real NICs", topo.NewNAT, "-m", []family{v4nat, v6nat}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lvs, err := tc.build(nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := lvs.Close(); err != nil {
					t.Errorf("teardown: %v", err)
				}
			})
			if tc.realNICs {
				if err := lvs.BehindRealNICs(); err != nil {
					t.Fatal(err)
				}
			}
			if err := lvs.StartRealServers(bin, 80, 5353); err != nil {
				t.Fatal(err)
			}
			config := "[director]\ninterfaces = [" + quoted(lvs.DirectorIfs) + "]\n"
			if tc.method == "" {
				config = fullnatSeedConfig
			}
			dir, _, err := lvs.StartDirector(bin, t.TempDir(), config)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("xvsd output:\n%s", dir.Output.String())
				}
			})
			adm := func(args ...string) {
				t.Helper()
				if _, err := lvs.Xvsadm(bin, "", args...); err != nil {
					t.Fatal(err)
				}
			}
			if tc.method != "" {
				// The seed's lvs*_director_setup.sh, per family.
				adm("-C")
				for _, f := range tc.fams {
					vip := hostPort(f.vip, 80)
					adm("-A", "-t", vip, "-s", "rr")
					for _, r := range f.reals {
						adm("-a", "-t", vip, "-r", hostPort(r, 80), tc.method, "-w", "1")
					}
				}
			}
			retransBefore := tcpRetransmits(t, lvs)
			for _, f := range tc.fams {
				vip := hostPort(f.vip, 80)
				if err := lvs.WaitService(bin, vip, 15*time.Second); err != nil {
					t.Fatal(err)
				}
				r, err := lvs.RunClient(bin, "-mode", "http", "-addr", vip, "-n", "100")
				if err != nil {
					t.Fatal(err)
				}
				if r.OK != 100 || r.Servers["rs1"] != 50 || r.Servers["rs2"] != 50 {
					t.Errorf("%s: %d of 100 connections, split %v, want 100 split 50/50: %v", vip, r.OK, r.Servers, r.Errors)
				}
				modes := []string{"download"}
				if tc.upload {
					modes = append(modes, "upload")
				}
				for _, mode := range modes {
					r, err := lvs.RunClient(bin, "-mode", mode, "-addr", vip, "-size", strconv.Itoa(blobSize), "-n", "1", "-timeout", "60s")
					if err != nil {
						t.Fatal(err)
					}
					if r.OK != 1 || r.Bytes != blobSize {
						t.Errorf("%s: 20 MB %s: %d intact bytes of %d: %v", vip, mode, r.Bytes, blobSize, r.Errors)
					}
					t.Logf("%s %s %s: %d bytes intact at %.0f MB/s", tc.name, vip, mode, r.Bytes, r.MBps)
				}
			}
			status, err := lvs.Xvsadm(bin, "", "status")
			if err != nil {
				t.Fatal(err)
			}
			completed := counterIn(t, status, `csum_completed: (\d+)`)
			switch {
			case topo.FastPathRun():
				// Every host stands for one behind a physical NIC.
			case tc.realNICs && completed != 0:
				t.Errorf("behind real NICs the director completed %d checksums, want 0:\n%s", completed, status)
			case !tc.realNICs && completed == 0:
				t.Errorf("with the kernel's default veth settings the director completed no checksums:\n%s", status)
			}
			retrans := tcpRetransmits(t, lvs) - retransBefore
			t.Logf("%s: csum_completed %d, TCP retransmissions %d (client and real servers); status:\n%s", tc.name, completed, retrans, status)
		})
	}
}

func quoted(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

func hostPort(a netip.Addr, port uint16) string { return netip.AddrPortFrom(a, port).String() }

// counterIn returns the number re's group matches in s, failing the test
// when there is none.
func counterIn(t *testing.T, s, re string) int {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s in:\n%s", re, s)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// tcpRetransmits sums the TCP segments the client and the real servers
// retransmitted: what a transfer lost on the way, whoever lost it.
func tcpRetransmits(t *testing.T, lvs *topo.LVS) int {
	t.Helper()
	total := 0
	for _, ns := range append([]string{lvs.Client}, lvs.Reals...) {
		out, err := lvs.Output(ns, "cat", "/proc/net/snmp")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, line := range strings.Split(out, "\n") {
			fields := strings.Fields(line)
			if len(fields) == 0 || fields[0] != "Tcp:" {
				continue
			}
			if names == nil {
				names = fields
				continue
			}
			for i, f := range fields {
				if i < len(names) && names[i] == "RetransSegs" {
					n, _ := strconv.Atoi(f)
					total += n
				}
			}
		}
	}
	return total
}

// TestGenericXDP: on a NIC without native XDP the director runs the
// steering program in generic mode, after the kernel's receive path has
// built an skb for every frame. 20 MB transfers must go through both ways,
// and xvsadm status must say what generic mode on veth risks.
//
// The topology stands for physical NICs: the hosts' veths segment what
// they send (TSO and GSO off: wire-sized frames, as a wire carries), and
// the director's veths would merge what they receive (GRO on, as a
// physical NIC's driver does by default; the kernel turns it off for a
// generic XDP program).
func TestGenericXDP(t *testing.T) {
	lvs, err := topo.NewNAT(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lvs.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	hosts := [][2]string{{lvs.Client, lvs.ClientIfs[0]}}
	for i, ns := range lvs.Reals {
		hosts = append(hosts, [2]string{ns, lvs.RealIfs[i]})
	}
	for _, h := range hosts {
		if err := lvs.In(h[0], "ethtool", "-K", h[1], "tso", "off", "gso", "off"); err != nil {
			t.Fatal(err)
		}
	}
	for _, ifname := range lvs.DirectorIfs {
		if err := lvs.In(lvs.Director, "ethtool", "-K", ifname, "gro", "on"); err != nil {
			t.Fatal(err)
		}
	}
	if err := lvs.StartRealServers(bin, 80, 5353); err != nil {
		t.Fatal(err)
	}
	config := "[director]\ninterfaces = [" + quoted(lvs.DirectorIfs) + "]\nxdp_mode = \"generic\"\n"
	dir, _, err := lvs.StartDirector(bin, t.TempDir(), config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("xvsd output:\n%s", dir.Output.String())
		}
	})
	for _, args := range [][]string{{"-A", "-t", "198.18.0.100:80", "-s", "rr"},
		{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11:80", "-m"}, {"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.12:80", "-m"}} {
		if _, err := lvs.Xvsadm(bin, "", args...); err != nil {
			t.Fatal(err)
		}
	}
	vip := "198.18.0.100:80"
	if err := lvs.WaitService(bin, vip, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"download", "upload"} {
		r, err := lvs.RunClient(bin, "-mode", mode, "-addr", vip, "-size", strconv.Itoa(blobSize), "-n", "1", "-timeout", "60s")
		if err != nil {
			t.Fatal(err)
		}
		if r.OK != 1 || r.Bytes != blobSize {
			t.Errorf("20 MB %s in generic mode: %d intact bytes: %v", mode, r.Bytes, r.Errors)
		}
		t.Logf("generic XDP %s: %d bytes at %.0f MB/s", mode, r.Bytes, r.MBps)
	}
	status, err := lvs.Xvsadm(bin, "", "status")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(status, "warning: "+lvs.DirectorIfs[0]+": generic XDP on veth") {
		t.Errorf("xvsadm status does not warn about generic XDP on veth:\n%s", status)
	}
}
