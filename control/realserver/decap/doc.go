// Package decap is the real-server side of LVS-TUN without the kernel's ipip
// module: a small XDP program that strips the outer IP header of tunnelled
// packets addressed to a VIP and hands the inner packet to the kernel's
// stack as if it had arrived directly. With the VIP on lo, the kernel then
// delivers it to the local socket, exactly as it would after tunl0.
//
// It runs on the real servers, not on the director, so it lives with the
// real-server setup that attaches it (control/realserver, xvsadm
// realserver tun) rather than in the director's data plane. The program is
// dataplane/bpf/decap.c, compiled by cilium/ebpf's bpf2go into an object
// embedded in the binary (dataplane/bpf), so that building xvs needs no C
// compiler.
//
// # What is decapsulated
//
// A frame is decapsulated when all of these hold:
//
//   - it is Ethernet, with at most two 802.1Q/802.1ad tags, carrying IPv4
//     with protocol 4 (IPIP) or 41 (IPv6 in IPv4), or IPv6 whose next header
//     is 4 (IPv4 in IPv6) or 41 (IPv6 in IPv6), with no extension header;
//   - an outer IPv4 header has no options (IHL 5), is not a fragment and has
//     a correct checksum; the outer length field does not run past the frame;
//   - the outer destination is one of the configured local addresses, or no
//     local address is configured (any outer destination is accepted);
//   - the inner header is complete and its destination is a configured VIP.
//
// Decapsulation saves the L2 header (MACs and tags), moves the packet start
// past the outer header with bpf_xdp_adjust_head, writes the L2 header back
// in front of the inner header with the ethertype of the inner family, and
// returns XDP_PASS. The inner packet is not modified: no TTL change, and,
// unlike the kernel's ip_tunnel, no ECN propagation from the outer header.
//
// Every other frame gets XDP_PASS untouched. Tunnelled frames that are not
// for this host (outer or inner destination not configured) and malformed or
// unsupported ones (IPv4 options or fragments on the outer header) reach the
// kernel as they are, which has no tunnel handler for them and drops them.
// So do tunnelled IPv6 frames with an extension header before the tunnel
// (such as the Tunnel Encapsulation Limit option ip6_tunnel adds; IPVS and
// xvs send none): the program does not walk extension headers.
//
// Every frame is counted exactly once, per CPU: Decapsulated, NotForUs,
// Malformed, or Passed (not recognised as tunnelled).
//
// # Two ways to run it
//
// [Load] returns a [Decap] whose VIPs and local addresses live in BPF hash
// maps and can be changed while it runs; [Decap.Attach] attaches it through a
// BPF link, so the attachment ends when the Decap is closed or the process
// dies. This suits a daemon.
//
// [AttachPersistent] is for one-shot commands such as xvsadm realserver: it
// loads the same program, fills its maps from a [Config], and attaches it
// with the legacy netlink call (IFLA_XDP), which leaves the program attached
// after the process exits; the program holds references to its maps, so
// they stay with it. Nothing needs pinning, so no bpffs is required (this
// kernel has none mounted); the price is that the address sets are not
// edited in place: no process keeps the maps open, so changing them loads a
// new program with new maps and atomically replaces the old one on the
// interface (its counters restart from zero). [Detach] removes it, and
// [Inspect] reports whether it is attached and reads its counters through
// the program's map IDs.
package decap
