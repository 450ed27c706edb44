// Package xdpprog builds, loads and attaches the XDP program that steers a
// director interface's traffic into xvs's AF_XDP sockets, and manages the BPF
// maps that tell it which traffic is xvs's.
//
// The program is written in C (dataplane/bpf/steer.c) and compiled by
// cilium/ebpf's bpf2go into an object committed with the source; this
// package loads it, sets its per-interface constants and keeps its maps in
// step with the configuration.
//
// # What is steered
//
// For every frame the program parses Ethernet, up to two 802.1Q/802.1ad tags,
// IPv4 (honouring IHL) or IPv6 (fixed header only; the next header must be
// TCP, UDP or ICMPv6), and the TCP or UDP ports. It then redirects the frame
// with bpf_redirect_map to the AF_XDP socket registered for the frame's RX
// queue when
//
//   - (daddr, dport, proto) is a virtual service (the vips map): client
//     traffic to a VIP;
//   - (saddr, sport, proto) is a NAT real server (the reals map): replies
//     that must be translated back on their way to the client;
//   - the frame is an IPv4 fragment (MF set or a non-zero offset) whose
//     (daddr, proto) carries a virtual service (the vipaddrs map).
//     Non-first fragments carry no ports, so they cannot be matched against
//     vips; the data plane counts and drops them instead of letting the
//     kernel answer for a service it does not run;
//   - the frame is an ICMP error about a packet of a load-balanced
//     connection, which the data plane relays or translates as IPVS's
//     ip_vs_in_icmp and ip_vs_out_icmp do.
//
// An ICMP error is an ICMP destination unreachable (fragmentation needed
// included), source quench, time exceeded or parameter problem, or an ICMPv6
// destination unreachable, packet too big, time exceeded or parameter
// problem. After its 8-byte header it quotes the IP header and at least the
// first 8 bytes of the packet it is about (RFC 792, RFC 4443): the program
// parses that IPv4 header (honouring its IHL) or fixed IPv6 header, which
// must be directly followed by TCP or UDP, and the quoted ports. The quoted
// packet went the other way, so the maps are looked up the other way round
// from a received packet:
//
//   - quoted (saddr, sport, proto) is a virtual service: an error about a
//     reply sent from a VIP to a client (by the director for NAT and
//     FullNAT, by the real server for DR and TUN), reported from the
//     client's side to the VIP;
//   - quoted (daddr, dport, proto) is a NAT real server: an error about a
//     packet the director forwarded to it, reported by the real server or a
//     router on its side.
//
// A quoted non-first IPv4 fragment carries no ports and is passed, as is an
// ICMP error that is itself fragmented.
//
// The redirect passes XDP_PASS as the fallback action, so a queue with no
// socket bound hands its frames to the kernel instead of dropping them.
//
// # What is passed, and why
//
// Everything else gets XDP_PASS: ARP and IPv6 neighbour discovery, every ICMP
// and ICMPv6 message that is not one of the errors above (ping to the VIP is
// answered by the kernel), errors about other packets (the director's own
// connections; packets tunnelled to TUN real servers, whose quote is IPIP
// rather than TCP or UDP), IPv6 extension headers, SSH to the director,
// health checks the director makes to its real servers, and the control
// plane's own traffic. The kernel keeps doing what it is good at and
// the director stays reachable and manageable even with no xvs worker
// running. Frames too short or malformed to parse are passed as well (and
// counted): the kernel is the right place to drop them. A frame is too short
// when it ends before what the program needs to decide: the ports, for TCP
// and UDP; the type, for ICMP; for an ICMP error, the quoted IP header and,
// for TCP and UDP, the quoted ports. A quoted IP header of the wrong version
// or with an IHL below 5 is malformed.
//
// # Counters
//
// Every frame is counted exactly once as passed, redirected, parse error or
// no socket (steered, but no socket on its queue). Fragments and ICMP errors
// that are steered are counted a second time, as fragments or ICMP steered,
// so those two break the steered frames down rather than add to the total
// (see [Stats]).
//
// # Map layout
//
// The vips, reals and vipaddrs maps are hash maps sharing one 20-byte key,
// which the Go side (mapKey) and the program agree on:
//
//	struct key {
//		__u8  addr[16]; // IPv4 in addr[0..3], addr[4..15] zero; IPv6 in full
//		__be16 port;    // network byte order, as in the packet; 0 in vipaddrs
//		__u8  proto;    // IPPROTO_TCP or IPPROTO_UDP
//		__u8  family;   // 4 or 6
//	};
//	value: __u32 flags; // vips: 1 = the service's SYNs are answered with SYN cookies; else 0
//
// vipaddrs is keyed by (addr, proto) with port zero rather than by the
// address alone, so that a fragmented ping to a VIP address still reaches the
// kernel.
//
// The xsks map is an XSKMAP indexed by RX queue. The stats map is a per-CPU
// array of __u64 counters indexed by the stat* constants; [Program.Stats]
// sums it over CPUs.
//
// Each director interface gets its own [Program]: its own program instance
// and its own maps, except the fast path's flow table and port map
// ([Flows]), which all of them share.
//
// # The fast path
//
// With [Program.SetFastPath] on, a TCP or UDP frame that is not a fragment,
// has no IPv4 options and carries neither SYN, FIN nor RST is first looked
// up in the flow table, by (source, destination, ports, protocol) as it
// arrives. A hit is a connection the userspace workers have offloaded: the
// program rewrites the frame as the flow says (MACs; DNAT and SNAT with
// incremental checksums; IPIP or IPv6-in-IP encapsulation) and sends it
// itself, with XDP_TX when it leaves on the interface it came in on (a
// redirect on veth, see Config.TxByRedirect) and with a redirect through
// the port map otherwise, counting packets, bytes and a last-seen stamp in
// the flow. What the userspace decoder would refuse (a lying length, a bad
// IPv4 header checksum, a bad TCP data offset or UDP length), a checksum
// left to complete, and a tunnel packet too big for the egress MTU go to
// the socket as without the fast path, so userspace counts, completes or
// answers them. The flow table is userspace's: it inserts when it offloads
// and deletes when a connection ends or moves.
//
// # The SYN proxy
//
// A VIP synced with [Endpoint.SynProxy] has its SYNs answered by the
// program itself where its fast path is on ([Program.SetFastPath]: the
// engine's word that frames XDP sends from the interface arrive): a TCP
// segment with SYN and none of ACK, RST or FIN, no
// IPv4 options, lengths, header checksum and data offset that the
// userspace decoder would accept, in a minute whose key the program holds
// ([Program.SetCookieKeys]), is rewritten in place into the SYN-ACK the
// worker would send (dataplane/synproxy.go: from the VIP, a zero window,
// the sequence number syncookie.Jar.Make gives, MSS capped at what
// Config.MTU carries, window scale and SACK-permitted when the client
// offered them) and sent back with XDP_TX, or a redirect to the same
// interface where TxByRedirect says so. It is counted in
// [Stats.SynCookies], not steered: a flood of SYNs never reaches the
// sockets' rings. Every other segment of the service, the client's ACK
// included, is steered as before; the worker checks the ACK's cookie
// with the same keys and opens the connection. The TCP options are
// walked with bpf_loop, one option a step, as packet.ParseSYNOptions
// walks them.
package xdpprog
