package topo

import (
	"os"
	"strings"
	"testing"
)

func TestTopologies(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	for _, tc := range []struct {
		name  string
		build func() (*LVS, error)
		// the client reaches these before any director runs
		reach []string
	}{
		{"DR", func() (*LVS, error) { return NewDR(nil) }, []string{DirectorIP.String(), DRReals[0].String(), DRReals[1].String()}},
		{"NAT", func() (*LVS, error) { return NewNAT(nil) }, []string{DirectorIP.String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lvs, err := tc.build()
			if err != nil {
				t.Fatal(err)
			}
			nss := []string{lvs.Client, lvs.Director}
			defer func() {
				if err := lvs.Close(); err != nil {
					t.Error(err)
				}
				out, _ := lvs.output(execIP("netns", "list"))
				for _, ns := range nss {
					if strings.Contains(out, ns) {
						t.Errorf("namespace %s left behind", ns)
					}
				}
			}()
			for _, addr := range tc.reach {
				if err := lvs.In(lvs.Client, "ping", "-c1", "-W2", addr); err != nil {
					t.Errorf("client cannot reach %s: %v", addr, err)
				}
			}
			if tc.name == "NAT" {
				// Real servers route through the director's gateway address.
				for _, rs := range lvs.Reals {
					if err := lvs.In(rs, "ping", "-c1", "-W2", NATGateway.String()); err != nil {
						t.Errorf("%s cannot reach the gateway: %v", rs, err)
					}
				}
			}
			// Only the director answers ARP for the VIP: DR real servers
			// hold it on lo but keep quiet about it.
			if err := lvs.In(lvs.Client, "ping", "-c1", "-W2", VIP.String()); err != nil {
				t.Fatalf("client cannot reach the VIP on the director: %v", err)
			}
			neigh, err := lvs.Output(lvs.Client, "ip", "neigh", "show", VIP.String())
			if err != nil {
				t.Fatal(err)
			}
			link, err := lvs.Output(lvs.Director, "cat", "/sys/class/net/"+lvs.DirectorIfs[0]+"/address")
			if err != nil {
				t.Fatal(err)
			}
			if mac := strings.TrimSpace(link); !strings.Contains(neigh, mac) {
				t.Errorf("VIP resolves to %q, want the director's %s", neigh, mac)
			}
		})
	}
}
