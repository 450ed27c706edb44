// Package packet is the packet layer of the xvs data path: zero-copy header
// views over frames in UMEM, a non-allocating decoder built on gopacket's
// DecodingLayerParser, and in-place rewrites (MAC rewrite for DR, DNAT/SNAT
// for NAT and FullNAT).
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
package packet
