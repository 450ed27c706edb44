package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/xvs-lb/xvs/dataplane/packet"
)

// testConfig is a send configuration for templates, with the given protocol,
// size and source range.
func testConfig(t testing.TB, p proto, size int, src string, flows uint64) *sendConfig {
	t.Helper()
	args := []string{"-i", "x", "-src-mac", "02:00:00:00:00:01", "-dst-mac", "02:00:00:00:00:02",
		"-src-ip", src, "-dst-ip", "198.19.255.254", "-sport", "1024", "-dport", "8080",
		"-proto", p.String(), "-size", fmt.Sprint(size)}
	if flows > 0 {
		args = append(args, "-flows", fmt.Sprint(flows))
	}
	c, err := parseSend(args, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testTemplate(t testing.TB, p proto, size int, src string, flows uint64) *template {
	t.Helper()
	c := testConfig(t, p, size, src, flows)
	space, _ := newFlowSpace(c.src.count, c.sport, c.flows, c.proto)
	tp, err := newTemplate(c, space)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// decoded is a frame as gopacket sees it.
type decoded struct {
	eth     layers.Ethernet
	ip      layers.IPv4
	udp     layers.UDP
	tcp     layers.TCP
	payload gopacket.Payload
	isTCP   bool
}

// decodeFrame decodes frame with gopacket and checks, independently of the
// code under test, that its IPv4 and L4 checksums are valid: gopacket
// serializes the decoded layers again computing both, and they must come out
// the same; and the one's complement sums over the received bytes must fold
// to all ones.
func decodeFrame(t testing.TB, frame []byte) *decoded {
	t.Helper()
	var d decoded
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &d.eth, &d.ip, &d.udp, &d.tcp)
	// Some ports make gopacket look for an application layer it has no
	// decoder for here; the payload is taken from the L4 layer instead.
	parser.IgnoreUnsupported = true
	var types []gopacket.LayerType
	if err := parser.DecodeLayers(frame, &types); err != nil {
		t.Fatalf("decode: %v (layers %v)", err, types)
	}
	if len(types) != 3 {
		t.Fatalf("decoded layers %v, want Ethernet, IPv4, L4", types)
	}
	d.isTCP = types[2] == layers.LayerTypeTCP
	if d.isTCP {
		d.payload = d.tcp.Payload
	} else {
		d.payload = d.udp.Payload
	}

	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	ip := d.ip
	var l4 gopacket.SerializableLayer
	var gotL4 uint16
	if d.isTCP {
		tcp := d.tcp
		tcp.SetNetworkLayerForChecksum(&ip)
		l4, gotL4 = &tcp, d.tcp.Checksum
	} else {
		udp := d.udp
		udp.SetNetworkLayerForChecksum(&ip)
		l4, gotL4 = &udp, d.udp.Checksum
	}
	if err := gopacket.SerializeLayers(buf, opts, &ip, l4, d.payload); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	again := buf.Bytes()
	if ip.Checksum != d.ip.Checksum {
		t.Errorf("IPv4 checksum %#04x, gopacket computes %#04x", d.ip.Checksum, ip.Checksum)
	}
	wantL4 := binary.BigEndian.Uint16(again[ipLen+(tcpCsumOff-l4Off):])
	if !d.isTCP {
		wantL4 = binary.BigEndian.Uint16(again[ipLen+(udpCsumOff-l4Off):])
	}
	if gotL4 != wantL4 {
		t.Errorf("L4 checksum %#04x, gopacket computes %#04x", gotL4, wantL4)
	}

	ipv4 := packet.IPv4(frame[ipOff:])
	if sum := packet.Fold(packet.Checksum(frame[ipOff:ipOff+ipLen], 0)); sum != 0xffff {
		t.Errorf("IPv4 header sums to %#04x, want 0xffff", sum)
	}
	seg := frame[l4Off : ipOff+int(ipv4.TotalLength())]
	pseudo := packet.PseudoHeaderChecksum(ipv4.Protocol(), ipv4.SourceAddress(), ipv4.DestinationAddress(), uint32(len(seg)))
	if sum := packet.Fold(packet.Checksum(seg, pseudo)); sum != 0xffff {
		t.Errorf("L4 segment sums to %#04x, want 0xffff", sum)
	}
	return &d
}

// TestTemplateSizes builds every size from 64 to 1518 for every protocol and
// checks the frame's length, headers and checksums.
func TestTemplateSizes(t *testing.T) {
	for _, p := range []proto{protoUDP, protoSYN, protoACK} {
		for size := minSize; size <= maxSize; size++ {
			tp := testTemplate(t, p, size, "198.18.0.1", 0)
			if len(tp.frame) != size-fcsLen {
				t.Fatalf("%v size %d: frame is %d bytes, want %d", p, size, len(tp.frame), size-fcsLen)
			}
			d := decodeFrame(t, tp.frame)
			if int(d.ip.Length) != size-fcsLen-ethLen {
				t.Fatalf("%v size %d: IP length %d, want %d (no Ethernet padding)", p, size, d.ip.Length, size-fcsLen-ethLen)
			}
			if d.ip.TTL != ipTTL || d.ip.Flags != layers.IPv4DontFragment || d.ip.SrcIP.String() != "198.18.0.1" ||
				d.ip.DstIP.String() != "198.19.255.254" {
				t.Fatalf("%v size %d: IPv4 header %+v", p, size, d.ip)
			}
			switch p {
			case protoUDP:
				if d.isTCP || d.udp.SrcPort != 1024 || d.udp.DstPort != 8080 {
					t.Fatalf("size %d: UDP header %+v", size, d.udp)
				}
			case protoSYN:
				if !d.isTCP || !d.tcp.SYN || d.tcp.ACK || d.tcp.SrcPort != 1024 || d.tcp.DstPort != 8080 {
					t.Fatalf("size %d: SYN header %+v", size, d.tcp)
				}
			case protoACK:
				if !d.isTCP || d.tcp.SYN || !d.tcp.ACK || len(d.payload) == 0 {
					t.Fatalf("size %d: ACK header %+v, %d bytes payload", size, d.tcp, len(d.payload))
				}
			}
			if t.Failed() {
				t.FailNow()
			}
		}
	}
}

// TestWriteFlow rewrites one frame again and again, as the xsk engine does,
// and checks each result against the flow it should be.
func TestWriteFlow(t *testing.T) {
	for _, tc := range []struct {
		p     proto
		size  int
		src   string
		flows uint64
	}{
		{protoUDP, 64, "198.18.0.1", 3000},
		{protoSYN, 64, "198.18.0.10-198.18.0.19", 50000},
		{protoACK, 1518, "198.18.255.250-198.19.0.5", 1000}, // carries into the third octet
		{protoUDP, 300, "198.18.0.1-9", 900},
	} {
		t.Run(fmt.Sprintf("%v/%d/%s", tc.p, tc.size, tc.src), func(t *testing.T) {
			tp := testTemplate(t, tc.p, tc.size, tc.src, tc.flows)
			frame := bytes.Clone(tp.frame)
			r, err := parseAddrRange(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			first := r.first
			for i := uint64(0); i < uint64(tp.space.flows)+3; i += 7 {
				a, p := tp.space.flow(i)
				tp.writeFlow(frame, a, p)
				d := decodeFrame(t, frame)
				wantAddr := netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, addr4(first)+a)))
				wantPort := 1024 + uint16(p)
				gotPort := uint16(d.udp.SrcPort)
				if d.isTCP {
					gotPort = uint16(d.tcp.SrcPort)
				}
				if d.ip.SrcIP.String() != wantAddr.String() || gotPort != wantPort {
					t.Fatalf("flow %d: %v:%d, want %v:%d", i, d.ip.SrcIP, gotPort, wantAddr, wantPort)
				}
				if t.Failed() {
					t.FailNow()
				}
			}
		})
	}
}

// TestUDPZeroChecksum: a UDP checksum that computes to zero is sent as
// 0xffff, since zero means "no checksum".
func TestUDPZeroChecksum(t *testing.T) {
	tp := testTemplate(t, protoUDP, 64, "198.18.0.1", 100)
	// Pick the partial sum that makes flow 0's sum all ones.
	hi, lo := tp.baseAddr>>16, tp.baseAddr&0xffff
	tp.l4Sum = ^packet.Fold(uint32(tp.basePort) + hi + lo)
	if _, c := tp.checksums(tp.baseAddr, tp.basePort); c != 0xffff {
		t.Errorf("UDP checksum %#04x, want 0xffff", c)
	}
	tp.udp = false
	if _, c := tp.checksums(tp.baseAddr, tp.basePort); c != 0 {
		t.Errorf("TCP checksum %#04x, want 0", c)
	}
}

func TestHotPathAllocs(t *testing.T) {
	tp := testTemplate(t, protoSYN, 64, "198.18.0.1-198.18.0.200", 0)
	frame := bytes.Clone(tp.frame)
	var c flowCursor
	p := newPacerClock(1e6, 100, 0, time.Hour, time.Now, func(time.Duration) {})
	if n := testing.AllocsPerRun(1000, func() {
		tp.writeFlow(frame, c.addr, c.port)
		c.next(tp.space)
		p.grant(0, 64)
		swapMACs(frame)
	}); n != 0 {
		t.Errorf("hot path allocates %v times per frame", n)
	}
}
