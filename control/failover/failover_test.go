package failover

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"go.uber.org/zap"
)

func waitState(t *testing.T, p *Pair, want State, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for p.State() != want {
		if time.Since(start) > within {
			t.Fatalf("state %v after %v, want %v", p.State(), within, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func TestPairElectsAndFailsOver(t *testing.T) {
	key := []byte("0123456789abcdef0123")
	a := netip.MustParseAddrPort("127.0.0.1:47311")
	b := netip.MustParseAddrPort("127.0.0.1:47312")
	ctx := context.Background()
	hi, err := Start(ctx, Config{Listen: a, Peer: b, Priority: 200, Interval: 50 * time.Millisecond, Key: key}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan State, 4)
	lo, err := Start(ctx, Config{Listen: b, Peer: a, Priority: 100, Interval: 50 * time.Millisecond, Key: key}, zap.NewNop(), func(s State) { changes <- s })
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close()
	waitState(t, hi, Master, time.Second)
	time.Sleep(300 * time.Millisecond)
	if lo.State() != Backup {
		t.Fatal("the lower priority director became master beside a live higher one")
	}
	hi.Close()
	took := waitState(t, lo, Master, time.Second)
	if took > 400*time.Millisecond {
		t.Errorf("takeover after %v, want within about 3 intervals (150ms)", took)
	}
	if s := <-changes; s != Master {
		t.Errorf("onChange got %v", s)
	}
	// A peer with the wrong key is not heard: it stays master itself too,
	// and the other is not displaced.
	bad, err := Start(ctx, Config{Listen: a, Peer: b, Priority: 250, Interval: 50 * time.Millisecond, Key: []byte("another key of 16+ bytes")}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	time.Sleep(300 * time.Millisecond)
	if lo.State() != Master {
		t.Error("a heartbeat with the wrong key displaced the master")
	}
}

// TestNAFrame: the unsolicited Neighbour Advertisement decodes as one, to
// all nodes at hop limit 255, with Override, the target and its link-layer
// address, and a checksum that verifies.
func TestNAFrame(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x42}
	ip := netip.MustParseAddr("fd00:18::100")
	f := naFrame(mac, ip)
	pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if err := pkt.ErrorLayer(); err != nil {
		t.Fatalf("does not decode: %v", err.Error())
	}
	eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip6 := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	icmp := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	na, ok := pkt.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if !ok {
		t.Fatalf("no neighbour advertisement in\n%s", pkt.Dump())
	}
	if eth.DstMAC.String() != "33:33:00:00:00:01" || eth.SrcMAC.String() != mac.String() ||
		ip6.HopLimit != 255 || ip6.SrcIP.String() != ip.String() || ip6.DstIP.String() != "ff02::1" ||
		icmp.TypeCode.Type() != layers.ICMPv6TypeNeighborAdvertisement || !na.Override() || na.Solicited() || na.Router() ||
		na.TargetAddress.String() != ip.String() || len(na.Options) != 1 ||
		na.Options[0].Type != layers.ICMPv6OptTargetAddress || net.HardwareAddr(na.Options[0].Data).String() != mac.String() {
		t.Errorf("not the advertisement wanted:\n%s", pkt.Dump())
	}
	// Recompute the checksum as gopacket serializes it.
	icmp.SetNetworkLayerForChecksum(ip6)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, icmp, gopacket.Payload(icmp.Payload)); err != nil {
		t.Fatal(err)
	}
	if want := buf.Bytes()[2:4]; f[56] != want[0] || f[57] != want[1] {
		t.Errorf("checksum %x, want %x", f[56:58], want)
	}
}
