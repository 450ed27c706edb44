package e2e

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/internal/topo"
)

// rawSendRole is how the test binary, started again inside the client's
// namespace, sends hand-made frames: XVS_E2E_RAWSEND=IFACE:FILE, one hex
// frame per line.
const rawSendRole = "XVS_E2E_RAWSEND"

func rawSend(spec string) error {
	ifname, file, _ := strings.Cut(spec, ":")
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6}
	for _, line := range strings.Fields(string(data)) {
		frame, err := hex.DecodeString(line)
		if err != nil {
			return err
		}
		copy(sa.Addr[:], frame[:6])
		if err := unix.Sendto(fd, frame, 0, sa); err != nil {
			return fmt.Errorf("send %d bytes: %w", len(frame), err)
		}
	}
	return nil
}

// hostileFrames builds frames no well-behaved client sends, addressed to
// the director's MAC and the VIP's service port.
func hostileFrames(t *testing.T, src, dst net.HardwareAddr) map[string][]byte {
	t.Helper()
	vip, cip := net.IP(topo.VIP.AsSlice()), net.IP(topo.ClientIP.AsSlice())
	build := func(ls ...gopacket.SerializableLayer) []byte {
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
			t.Fatal(err)
		}
		return append([]byte(nil), buf.Bytes()...)
	}
	eth := func(typ layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: typ}
	}
	ip4 := func() *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: cip, DstIP: vip}
	}
	tcp := func(ip *layers.IPv4, sport int, syn, fin, ack bool) *layers.TCP {
		l := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: 80, Seq: 1, Window: 1024, SYN: syn, FIN: fin, ACK: ack}
		_ = l.SetNetworkLayerForChecksum(ip)
		return l
	}
	syn := func(sport int) []byte {
		ip := ip4()
		return build(eth(layers.EthernetTypeIPv4), ip, tcp(ip, sport, true, false, false))
	}
	fr := map[string][]byte{}
	fr["truncated"] = syn(50001)[:14+20+6]
	bl := syn(50002)
	binary.BigEndian.PutUint16(bl[14+2:], 1400) // total length past the frame
	fixIPv4(bl)
	fr["bad total length"] = bl
	bc := syn(50003)
	bc[14+10] ^= 0x5a
	fr["bad IP checksum"] = bc
	ihl := syn(50004)
	ihl[14] = 0x44
	fixIPv4(ihl)
	fr["IHL 4"] = ihl
	for i, ttl := range []uint8{0, 1} {
		ip := ip4()
		ip.TTL = ttl
		fr[fmt.Sprintf("TTL %d", ttl)] = build(eth(layers.EthernetTypeIPv4), ip, tcp(ip, 50010+i, true, false, false))
	}
	ipo := ip4()
	ipo.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
	fr["IP options"] = build(eth(layers.EthernetTypeIPv4), ipo, tcp(ipo, 50020, true, false, false))
	for i, frag := range []struct {
		flags  layers.IPv4Flag
		offset uint16
		size   int
	}{{layers.IPv4MoreFragments, 0, 8}, {layers.IPv4MoreFragments, 1, 8}, {0, 1, 16}, {layers.IPv4MoreFragments, 0, 1}} {
		ip := ip4()
		ip.Id, ip.Flags, ip.FragOffset = 777, frag.flags, frag.offset
		fr[fmt.Sprintf("fragment %d", i)] = build(eth(layers.EthernetTypeIPv4), ip, gopacket.Payload(make([]byte, frag.size)))
	}
	ip := ip4()
	fr["SYN+FIN"] = build(eth(layers.EthernetTypeIPv4), ip, tcp(ip, 50030, true, true, false))
	ip = ip4()
	fr["no flags"] = build(eth(layers.EthernetTypeIPv4), ip, tcp(ip, 50031, false, false, false))
	ip = ip4()
	fr["ACK without connection"] = build(eth(layers.EthernetTypeIPv4), ip, tcp(ip, 50032, false, false, true))
	ip = ip4()
	fr["VLAN"] = build(eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv4}, ip, tcp(ip, 50040, true, false, false))
	ip = ip4()
	fr["QinQ"] = build(eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeDot1Q}, &layers.Dot1Q{VLANIdentifier: 8, Type: layers.EthernetTypeIPv4}, ip, tcp(ip, 50041, true, false, false))
	ip = ip4()
	other := tcp(ip, 50050, true, false, false)
	other.DstPort = 8081
	fr["port without a service"] = build(eth(layers.EthernetTypeIPv4), ip, other)
	ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6HopByHop, SrcIP: net.IP(topo.ClientIP6.AsSlice()), DstIP: net.IP(topo.VIP6.AsSlice())}
	// Hop-by-hop, then destination options (each one PadN option), then a
	// TCP SYN header, written by hand.
	chain := []byte{60, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0,
		0xc4, 0x7c, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 4, 0, 0, 0, 0, 0}
	fr["IPv6 extension header chain"] = build(eth(layers.EthernetTypeIPv6), ip6, gopacket.Payload(chain))
	return fr
}

func fixIPv4(b []byte) {
	hl := int(b[14]&0xf) * 4
	if hl < 20 {
		hl = 20
	}
	b[24], b[25] = 0, 0
	var sum uint32
	for i := 14; i < 14+hl; i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[24:], ^uint16(sum))
}

// TestHostileFrames sends a live director frames that are truncated, lie
// about their lengths, carry options, bad checksums, TTL 0 and 1,
// fragments, odd TCP flags, VLAN tags and IPv6 extension headers, while
// established connections carry traffic alongside: the director keeps
// running, counts each drop by reason, and the connections lose nothing.
func TestHostileFrames(t *testing.T) {
	lvs, dir, _ := startLab(t, topo.NewDR, drConfig, 80)
	vip := topo.VIP.String() + ":80"
	mac := func(ns, ifname string) net.HardwareAddr {
		out, err := lvs.Output(ns, "cat", "/sys/class/net/"+ifname+"/address")
		if err != nil {
			t.Fatal(err)
		}
		hw, err := net.ParseMAC(strings.TrimSpace(out))
		if err != nil {
			t.Fatal(err)
		}
		return hw
	}
	clientIf := lvs.Name("c0")
	frames := hostileFrames(t, mac(lvs.Client, clientIf), mac(lvs.Director, lvs.DirectorIfs[0]))
	var lines []string
	for i := 0; i < 50; i++ {
		for _, f := range frames {
			lines = append(lines, hex.EncodeToString(f))
		}
	}
	file := t.TempDir() + "/frames.hex"
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r := holdWhile(t, lvs, 20, 5*time.Second, func() {
		if err := lvs.In(lvs.Client, "env", rawSendRole+"="+clientIf+":"+file, self); err != nil {
			t.Errorf("sending hostile frames: %v", err)
		}
	})
	if r.OK != 20 || r.Failed != 0 || r.Moved != 0 {
		t.Errorf("established connections alongside the hostile frames: %+v", r)
	}
	if done, err := dir.Exited(); done {
		t.Fatalf("xvsd exited: %v", err)
	}
	if got, err := lvs.RunClient(bin, "-mode", "http", "-addr", vip, "-n", "10"); err != nil || got.OK != 10 {
		t.Errorf("new connections after the hostile frames: %+v %v", got, err)
	}
	status, err := lvs.Xvsadm(bin, "", "status")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("xvsadm status:\n%s", status)
	// Truncated frames whose IP header still claims the full length count
	// as malformed; the XDP program leaves frames cut inside their headers
	// to the kernel.
	for _, reason := range []string{"malformed=", "bad_checksum=", "fragment=", "no_conn="} {
		if !strings.Contains(status, reason) {
			t.Errorf("no %s drops counted after hostile frames", strings.TrimSuffix(reason, "="))
		}
	}
}
