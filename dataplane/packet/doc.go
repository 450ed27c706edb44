// Package packet is the packet layer of the xvs data path: zero-copy header
// views over frames in UMEM, a non-allocating decoder built on gopacket's
// DecodingLayerParser, and in-place rewrites (MAC rewrite for DR, DNAT/SNAT
// for NAT and FullNAT, IPIP encapsulation for TUN, the TOA option for
// FullNAT), and the ICMP errors that go with them.
//
// The header views (Ethernet, IPv4, IPv6, TCP, UDP) are byte slices with
// named accessors in the style of gVisor's pkg/tcpip/header: they read and
// write the frame where it lies and never copy it. Parser.Decode validates a
// frame's lengths itself before gopacket sees it, so that every malformed
// frame ends in one of the package's sentinel errors (which a worker can
// count by reason without allocating) and valid frames decode without any
// allocation.
//
// Rewrites fix the IPv4 header checksum and the TCP/UDP checksum
// incrementally (RFC 1624, HC' = ~(~HC + ~m + m')) instead of summing the
// whole segment again. A NAT rewrite changes at most an address and a port,
// so the update costs a few additions whatever the payload size, and it
// never touches the payload's cache lines. It also preserves an error: a
// segment that arrived with a bad checksum still fails verification at the
// receiver after the rewrite, as it would have without the director, instead
// of being laundered into a valid one by a full recomputation.
//
// Functions that make a packet longer work in the frame's headroom, the
// free bytes before it in its UMEM chunk, and never move the payload.
// EncapIPIP (LVS-TUN) writes an outer IPv4 or IPv6 header between the
// link-layer header and the inner packet by moving the Ethernet header and
// its VLAN tags back by the outer header's length; InsertTOA (FullNAT)
// moves the link-layer, IP and fixed TCP headers back to open room for the
// option right after the fixed TCP header. Both return the frame, which now
// starts earlier in the buffer, and fail with a sentinel (ErrNoHeadroom,
// ErrTooBig, ErrOptionSpace), leaving the frame untouched, when it cannot
// grow. DecapIPIP is the reverse of EncapIPIP, for real-server tooling and
// tests. The outer header copies what IPVS's ip_vs_tunnel_xmit copies: DF,
// DSCP, ECN (CE as ECT(0)) and TTL.
//
// ICMP support follows IPVS. When a packet with DF does not fit a tunnel
// (EncapTooBig), BuildFragNeeded builds the ICMP "fragmentation needed" or
// ICMPv6 "packet too big" for the client in a separate buffer, reporting
// EncapMTU. ParseICMPError finds the packet an ICMP error quotes, which
// identifies the connection it is about (Embedded.Inner looks inside a
// quoted tunnel packet), and TranslateICMPError rewrites the error and its
// quote for NAT and FullNAT as ip_vs_nat_icmp does, so that the far side
// sees an error about the packet it actually sent. ICMP errors are rare, so
// their checksums are recomputed in full, after verifying the one that
// arrived.
package packet
