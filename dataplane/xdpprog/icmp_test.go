package xdpprog

import (
	"slices"
	"strconv"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/xvs-lb/xvs/dataplane/packet"
)

// icmpFrameCases are the ICMP and ICMPv6 frames of frameCases: errors about
// packets the director sent from a VIP (reported on the client side) or to a
// NAT real server (reported on the real server's side) are steered; every
// other error, and every other ICMP message, is passed.
func icmpFrameCases(t *testing.T) []frameCase {
	const (
		l2   = ethHdrLen
		tg   = vlanHdrLen
		ipv4 = ipv4MinLen
		ipv6 = ipv6HdrLen
		icmp = icmpHdrLen
		pts  = 4 // source and destination port
		// Where the quoted ports end in an untagged frame.
		q4End = l2 + ipv4 + icmp + ipv4 + pts
		q6End = l2 + ipv6 + icmp + ipv6 + pts
	)
	const (
		ipTCP = layers.IPProtocolTCP
		ipUDP = layers.IPProtocolUDP
		// ICMP types and codes.
		unreach4    = layers.ICMPv4TypeDestinationUnreachable
		fragNeeded  = layers.ICMPv4CodeFragmentationNeeded
		portUnreach = layers.ICMPv4CodePort
		unreach6    = layers.ICMPv6TypeDestinationUnreachable
		tooBig      = layers.ICMPv6TypePacketTooBig
		exceeded6   = layers.ICMPv6TypeTimeExceeded
	)
	// Errors about the packet the VIP sent to a client.
	fromVIP4 := func(sport uint16, proto layers.IPProtocol) gopacket.Payload {
		return quote4(t, vip4, sport, client4, 40000, proto)
	}
	fromVIP6 := func(sport uint16, proto layers.IPProtocol) gopacket.Payload {
		return quote6(t, vip6, sport, client6, 40000, proto)
	}
	withVersion := func(q gopacket.Payload, v byte) gopacket.Payload {
		q[0] = q[0]&0x0f | v<<4
		return q
	}
	withIHL := func(q gopacket.Payload, ihl byte) gopacket.Payload {
		q[0] = q[0]&0xf0 | ihl
		return q
	}
	// A quoted IPv4 header with 40 bytes of NOP options.
	optionsQuote := func() gopacket.Payload {
		ip := ip4(vip4, client4, ipTCP)
		for range 40 {
			ip.Options = append(ip.Options, layers.IPv4Option{OptionType: 1, OptionLength: 1})
		}
		return quote(t, 8, ip, tcp(80, 40000), payload(8))
	}
	// A quoted IPv4 fragment from VIP:80. A later fragment's first bytes
	// are data, here made to look like the ports of the VIP, so that only
	// the fragment offset tells it from a first fragment.
	fragmentQuote := func(offset uint16) gopacket.Payload {
		ip := ip4(vip4, client4, ipTCP)
		ip.Flags = layers.IPv4MoreFragments
		ip.FragOffset = offset
		if offset == 0 {
			return quote(t, 8, ip, tcp(80, 40000), payload(8))
		}
		return quote(t, 8, ip, gopacket.Payload{0, 80, 0x9c, 0x40, 0, 0, 0, 0})
	}
	outerOptions := func() []byte {
		ip := ip4(router4, vip4, layers.IPProtocolICMPv4)
		ip.Options = []layers.IPv4Option{{OptionType: 1, OptionLength: 1}, {OptionType: 1, OptionLength: 1},
			{OptionType: 1, OptionLength: 1}, {OptionType: 0, OptionLength: 1}}
		return serialize(t, eth(layers.EthernetTypeIPv4), ip, icmp4(unreach4, fragNeeded, 1400), fromVIP4(80, ipTCP))
	}
	fragmentedError := func() []byte {
		ip := ip4(router4, vip4, layers.IPProtocolICMPv4)
		ip.Flags = layers.IPv4MoreFragments
		return serialize(t, eth(layers.EthernetTypeIPv4), ip, icmp4(unreach4, fragNeeded, 1400), fromVIP4(80, ipTCP))
	}
	// An ICMPv6 error quoting a packet with a hop-by-hop options header
	// (next header 0): the program parses no quoted extension headers.
	hopByHopQuote := func() gopacket.Payload {
		q := quote6(t, vip6, 443, client6, 40000, ipTCP)
		q[6] = byte(layers.IPProtocolIPv6HopByHop)
		return q
	}

	return []frameCase{
		// Client side: errors about the director's packets from a VIP.
		{
			name:  "icmp4 frag needed from VIP:80",
			frame: icmp4ErrorFrame(t, router4, vip4, unreach4, fragNeeded, fromVIP4(80, ipTCP)),
			want:  icmpSteered, minLen: q4End,
		},
		{
			name:  "icmp4 frag needed from VIP other port",
			frame: icmp4ErrorFrame(t, router4, vip4, unreach4, fragNeeded, fromVIP4(81, ipTCP)),
			want:  passed, minLen: q4End,
		},
		{
			name:  "icmp4 frag needed from VIP, UDP on a TCP-only port",
			frame: icmp4ErrorFrame(t, router4, vip4, unreach4, fragNeeded, fromVIP4(80, ipUDP)),
			want:  passed, minLen: q4End,
		},
		{
			name:  "icmp4 time exceeded from udp VIP",
			frame: icmp4ErrorFrame(t, router4, vip4, layers.ICMPv4TypeTimeExceeded, 0, fromVIP4(53, ipUDP)),
			want:  icmpSteered, minLen: q4End,
		},
		{
			name:  "icmp4 source quench from VIP",
			frame: icmp4ErrorFrame(t, router4, vip4, layers.ICMPv4TypeSourceQuench, 0, fromVIP4(80, ipTCP)),
			want:  icmpSteered, minLen: q4End,
		},
		{
			name:  "icmp4 parameter problem from VIP",
			frame: icmp4ErrorFrame(t, router4, vip4, layers.ICMPv4TypeParameterProblem, 0, fromVIP4(80, ipTCP)),
			want:  icmpSteered, minLen: q4End,
		},
		{
			name:  "icmp4 redirect quoting VIP",
			frame: icmp4ErrorFrame(t, router4, vip4, layers.ICMPv4TypeRedirect, 1, fromVIP4(80, ipTCP)),
			want:  passed, minLen: l2 + ipv4 + 1,
		},
		{
			// A packet to a VIP comes from a client: its errors go to the
			// client, not to the director.
			name:  "icmp4 error about a packet to VIP",
			frame: icmp4ErrorFrame(t, router4, client4, unreach4, fragNeeded, quote4(t, client4, 40000, vip4, 80, ipTCP)),
			want:  passed, minLen: q4End,
		},
		{
			name:  "icmp4 error with outer options",
			frame: outerOptions(),
			want:  icmpSteered, minLen: q4End + 4,
		},
		{
			name:  "icmp4 error quoting ihl 15",
			frame: icmp4ErrorFrame(t, router4, vip4, unreach4, fragNeeded, optionsQuote()),
			want:  icmpSteered, minLen: q4End + 40,
		},
		{
			name:  "icmp4 error quoting a first fragment",
			frame: icmp4ErrorFrame(t, router4, vip4, unreach4, fragNeeded, fragmentQuote(0)),
			want:  icmpSteered, minLen: q4End,
		},
		{
			name:  "icmp4 error quoting a later fragment",
			frame: icmp4ErrorFrame(t, router4, vip4, unreach4, fragNeeded, fragmentQuote(9)),
			want:  passed, minLen: q4End - pts,
		},
		{
			name: "icmp4 error quoting an echo reply from VIP",
			frame: icmp4ErrorFrame(t, router4, vip4, unreach4, 1,
				quote(t, 8, ip4(vip4, client4, layers.IPProtocolICMPv4), icmp4(layers.ICMPv4TypeEchoReply, 0, 1), payload(8))),
			want: passed, minLen: q4End - pts,
		},
		{
			// The error is passed whole, as is every fragment of it.
			name:  "fragmented icmp4 error from VIP",
			frame: fragmentedError(),
			want:  passed, minLen: l2 + ipv4,
		},
		{
			name:  "icmp4 error quoting version 6",
			frame: icmp4ErrorFrame(t, router4, vip4, unreach4, fragNeeded, withVersion(fromVIP4(80, ipTCP), 6)),
			want:  malformed,
		},
		{
			name:  "icmp4 error quoting ihl 4",
			frame: icmp4ErrorFrame(t, router4, vip4, unreach4, fragNeeded, withIHL(fromVIP4(80, ipTCP), 4)),
			want:  malformed,
		},
		{
			name:  "icmp6 packet too big from VIP6:443",
			frame: icmp6ErrorFrame(t, router6, vip6, tooBig, 0, fromVIP6(443, ipTCP)),
			want:  icmpSteered, minLen: q6End,
		},
		{
			name:  "icmp6 packet too big from VIP6 other port",
			frame: icmp6ErrorFrame(t, router6, vip6, tooBig, 0, fromVIP6(80, ipTCP)),
			want:  passed, minLen: q6End,
		},
		{
			name:  "icmp6 port unreachable from udp VIP6",
			frame: icmp6ErrorFrame(t, router6, vip6, unreach6, 4, fromVIP6(53, ipUDP)),
			want:  icmpSteered, minLen: q6End,
		},
		{
			name:  "icmp6 error about a packet to VIP6",
			frame: icmp6ErrorFrame(t, router6, client6, tooBig, 0, quote6(t, client6, 40000, vip6, 443, ipTCP)),
			want:  passed, minLen: q6End,
		},
		{
			name:  "icmp6 error quoting hop-by-hop",
			frame: icmp6ErrorFrame(t, router6, vip6, tooBig, 0, hopByHopQuote()),
			want:  passed, minLen: q6End - pts,
		},
		{
			name:  "icmp6 error quoting version 4",
			frame: icmp6ErrorFrame(t, router6, vip6, tooBig, 0, withVersion(fromVIP6(443, ipTCP), 4)),
			want:  malformed,
		},

		// Real-server side: errors about the director's packets to a NAT
		// real server, addressed to the client (NAT) or to the director's
		// local address (FullNAT).
		{
			name:  "icmp4 port unreachable to NAT real",
			frame: icmp4ErrorFrame(t, real4, client4, unreach4, portUnreach, quote4(t, client4, 40000, real4, 5353, ipUDP)),
			want:  icmpSteered, minLen: q4End,
		},
		{
			name:  "icmp4 port unreachable to NAT real other port",
			frame: icmp4ErrorFrame(t, real4, client4, unreach4, portUnreach, quote4(t, client4, 40000, real4, 5354, ipUDP)),
			want:  passed, minLen: q4End,
		},
		{
			name:  "icmp4 port unreachable to a non-real",
			frame: icmp4ErrorFrame(t, router4, client4, unreach4, portUnreach, quote4(t, client4, 40000, router4, 5353, ipUDP)),
			want:  passed, minLen: q4End,
		},
		{
			name: "icmp4 frag needed to NAT real from the director",
			frame: icmp4ErrorFrame(t, router4, dip4, unreach4, fragNeeded,
				quote4(t, dip4, 40000, real4, 8080, ipTCP)),
			want: icmpSteered, minLen: q4End,
		},
		{
			// A packet from a real server goes to a client: its errors go
			// to the real server.
			name:  "icmp4 error about a packet from NAT real",
			frame: icmp4ErrorFrame(t, router4, real4, unreach4, fragNeeded, quote4(t, real4, 8080, client4, 40000, ipTCP)),
			want:  passed, minLen: q4End,
		},
		{
			name:  "icmp6 time exceeded to NAT real6:8080",
			frame: icmp6ErrorFrame(t, router6, client6, exceeded6, 0, quote6(t, client6, 40000, real6, 8080, ipTCP)),
			want:  icmpSteered, minLen: q6End,
		},
		{
			name:  "icmp6 parameter problem to NAT real6:8080",
			frame: icmp6ErrorFrame(t, real6, client6, layers.ICMPv6TypeParameterProblem, 0, quote6(t, client6, 40000, real6, 8080, ipTCP)),
			want:  icmpSteered, minLen: q6End,
		},
		{
			name:  "icmp6 time exceeded to NAT real6 other port",
			frame: icmp6ErrorFrame(t, router6, client6, exceeded6, 0, quote6(t, client6, 40000, real6, 8081, ipTCP)),
			want:  passed, minLen: q6End,
		},

		// The kernel's ICMP.
		{name: "icmp echo reply to VIP", frame: icmp4EchoFrame(t, vip4, true), want: passed, minLen: l2 + ipv4 + 1},
		{name: "icmp echo reply to director", frame: icmp4EchoFrame(t, dip4, true), want: passed, minLen: l2 + ipv4 + 1},
		{name: "icmpv6 echo reply to VIP", frame: icmp6EchoFrame(t, vip6, true), want: passed, minLen: l2 + ipv6 + 1},
		{name: "ndp solicitation for VIP6", frame: ndpFrame(t, vip6, false), want: passed, minLen: l2 + ipv6 + 1},
		{name: "ndp advertisement for VIP6", frame: ndpFrame(t, vip6, true), want: passed, minLen: l2 + ipv6 + 1},

		// VLANs.
		{
			name: "802.1Q icmp4 frag needed from VIP:80",
			frame: serialize(t, eth(layers.EthernetTypeDot1Q), tag(7, layers.EthernetTypeIPv4),
				ip4(router4, vip4, layers.IPProtocolICMPv4), icmp4(unreach4, fragNeeded, 1400), fromVIP4(80, ipTCP)),
			want: icmpSteered, minLen: q4End + tg,
		},
		{
			name: "802.1ad QinQ icmp6 time exceeded to NAT real6",
			frame: serialize(t, eth(layers.EthernetTypeQinQ), tag(100, layers.EthernetTypeDot1Q), tag(7, layers.EthernetTypeIPv6),
				ip6(router6, client6, layers.IPProtocolICMPv6), icmp6(exceeded6, 0),
				icmp6Body(0, quote6(t, client6, 40000, real6, 8080, ipTCP))),
			want: icmpSteered, minLen: q6End + 2*tg,
		},
		{
			name: "802.1Q ndp solicitation for VIP6",
			frame: serialize(t, eth(layers.EthernetTypeDot1Q), tag(7, layers.EthernetTypeIPv6), ndpIP6(vip6),
				icmp6(layers.ICMPv6TypeNeighborSolicitation, 0), &layers.ICMPv6NeighborSolicitation{TargetAddress: vip6.AsSlice()}),
			want: passed, minLen: l2 + tg + ipv6 + 1,
		},
	}
}

// TestICMPTypes sends every ICMP and ICMPv6 type with an error's layout,
// quoting a packet from a VIP: only the error types are steered, so neither
// echo nor neighbour discovery nor any future type is taken from the kernel.
func TestICMPTypes(t *testing.T) {
	p := loadProgram(t)
	setupServices(t, p)
	errors4 := []uint8{icmpv4DestUnreach, icmpv4SourceQuench, icmpv4TimeExceeded, icmpv4ParamProblem}
	errors6 := []uint8{icmpv6DestUnreach, icmpv6PacketTooBig, icmpv6TimeExceeded, icmpv6ParamProblem}
	q4 := quote4(t, vip4, 80, client4, 40000, layers.IPProtocolTCP)
	q6 := quote6(t, vip6, 443, client6, 40000, layers.IPProtocolTCP)
	for typ := range 256 {
		typ := uint8(typ)
		t.Run("icmp4/"+strconv.Itoa(int(typ)), func(t *testing.T) {
			want := passed
			if slices.Contains(errors4, typ) {
				want = icmpSteered
			}
			checkRun(t, p, icmp4ErrorFrame(t, router4, vip4, typ, 0, q4), want, false, false)
		})
		t.Run("icmp6/"+strconv.Itoa(int(typ)), func(t *testing.T) {
			want := passed
			if slices.Contains(errors6, typ) {
				want = icmpSteered
			}
			checkRun(t, p, icmp6ErrorFrame(t, router6, vip6, typ, 0, q6), want, false, false)
		})
	}
}

// TestICMPCasesParse checks the test's ICMP errors against the data plane's
// own parser: every error the program steers must be one the worker accepts
// (a whole message with a valid checksum), or the program steers what the
// worker then drops.
func TestICMPCasesParse(t *testing.T) {
	pr := packet.NewParser()
	for _, tc := range icmpFrameCases(t) {
		if tc.want != icmpSteered {
			continue
		}
		var m packet.Meta
		if err := pr.Decode(tc.frame, &m); err != nil {
			t.Errorf("%s: decode: %v", tc.name, err)
			continue
		}
		if _, err := packet.ParseICMPError(tc.frame, &m); err != nil {
			t.Errorf("%s: parse ICMP error: %v", tc.name, err)
		}
	}
}
