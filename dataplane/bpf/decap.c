//go:build ignore

/* xvs_decap: the real server's LVS-TUN decapsulator. It strips the outer
 * IPv4 or IPv6 header of a tunnelled packet whose outer destination is
 * local and whose inner destination is a VIP, and hands the inner packet
 * to the kernel behind the same L2 header; every other frame goes to the
 * kernel untouched (see control/realserver/decap's documentation for the rules).
 * Every frame is counted exactly once.
 *
 * SPDX-License-Identifier: (MIT OR GPL-2.0-only)
 */
#include "include/xvs.h"
#include "include/parse.h"
#include "include/csum.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* struct addr is a key of the address maps: 16 bytes, IPv4 in its
 * IPv4-mapped IPv6 form (::ffff:a.b.c.d). The Go side writes the same
 * bytes (decap.addrKey). Aligned, so that the compiler copies addresses
 * into it in words rather than byte by byte. */
struct addr {
	__u8 b[16];
} __attribute__((aligned(8)));

/* The sizes are decap.MaxVIPs and decap.MaxLocalAddrs; the loader checks
 * them. */
#define ADDR_MAP(name, n)                                                      \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_HASH);                               \
		__uint(max_entries, n);                                        \
		__type(key, struct addr);                                      \
		__type(value, __u32); /* reserved, 0 */                        \
	} name SEC(".maps")

/* Inner destinations to decapsulate. */
ADDR_MAP(xvs_dc_vips, 1024);
/* Outer destinations accepted (this host's addresses), when the filter is
 * on. */
ADDR_MAP(xvs_dc_locals, 256);

/* Element 0 switches the local address filter on (non-zero) or off (zero:
 * any outer destination is accepted). A separate switch rather than "an
 * empty map means any": the loader turns it off before emptying the set
 * and on once it is filled, so no packet meets a half-built filter. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} xvs_dc_config SEC(".maps");

/* Counters; the indexes are decap's stat* constants. */
enum {
	STAT_DECAPSULATED, /* outer header stripped, inner packet passed */
	STAT_NOT_FOR_US,   /* tunnelled, but the outer or inner destination is not configured */
	STAT_MALFORMED,    /* tunnelled, but malformed or unsupported */
	STAT_PASSED,       /* not tunnelled */
	NUM_STATS,
};

XVS_COUNTERS(xvs_dc_stats, NUM_STATS);

/* done counts the frame under stat and hands it to the kernel: every path
 * ends here, whatever became of the frame. */
XVS_INLINE int done(__u32 stat)
{
	count(&xvs_dc_stats, stat);
	return XDP_PASS;
}

/* key4 and key6 write the key of an IPv4 or IPv6 address. */
XVS_INLINE void key4(struct addr *k, __be32 a)
{
	__builtin_memset(k->b, 0, 10);
	k->b[10] = 0xff;
	k->b[11] = 0xff;
	__builtin_memcpy(&k->b[12], &a, 4);
}

XVS_INLINE void key6(struct addr *k, struct in6_addr *a)
{
	__builtin_memcpy(k->b, a, 16);
}

/* local reports whether the outer destination k is this host's: it is in
 * the locals map, or the filter is off. */
XVS_INLINE int local(struct addr *k)
{
	__u32 zero = 0;
	__u32 *on = bpf_map_lookup_elem(&xvs_dc_config, &zero);
	/* An array always has element 0; without it, accept as when off. */
	if (!on || !*on)
		return 1;
	return bpf_map_lookup_elem(&xvs_dc_locals, k) != NULL;
}

/* len16 returns the 16-bit length field v in host order. The mask is kept
 * in the instructions (the barrier stops the compiler from dropping it as
 * redundant): verifiers that lose a register's range over a byte swap would
 * otherwise see an unbounded offset added to a packet pointer, and reject
 * the program. */
XVS_INLINE __u32 len16(__be16 v)
{
	__u32 n = bpf_ntohs(v);
	barrier_var(n);
	return n & 0xffff;
}

/* inner_min is the shortest inner header the tunnel protocol allows. */
XVS_INLINE __u32 inner_min(__u8 proto)
{
	return proto == IPPROTO_IPV6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
}

/* The L2 header but its last ethertype, as words: the MACs (3), then up to
 * two tags (TPID and TCI). */
#define L2_WORDS ((MAX_L2_LEN - 2) / 4)

/* save_l2 copies the first L2_WORDS words of the frame, which the caller
 * has checked it holds. */
XVS_INLINE void save_l2(void *data, __u32 *saved)
{
	__u32 *w = data;
#pragma unroll
	for (int i = 0; i < L2_WORDS; i++)
		saved[i] = w[i];
}

/* restore_l2 writes the saved L2 header of len bytes (MACs, then the tags)
 * back at the start of the frame, with the inner packet's ethertype last.
 * The offsets are constants per header length, so that the verifier checks
 * each store against the 22 bytes the caller made sure of. */
XVS_INLINE void restore_l2(void *data, const __u32 *saved, __u16 len, __be16 proto)
{
	__u32 *w = data;
	w[0] = saved[0];
	w[1] = saved[1];
	w[2] = saved[2];
	switch (len) {
	case ETH_HLEN:
		*(__be16 *)(data + ETH_HLEN - 2) = proto;
		break;
	case ETH_HLEN + VLAN_HLEN:
		w[3] = saved[3];
		*(__be16 *)(data + ETH_HLEN + VLAN_HLEN - 2) = proto;
		break;
	default:
		w[3] = saved[3];
		w[4] = saved[4];
		*(__be16 *)(data + MAX_L2_LEN - 2) = proto;
		break;
	}
}

SEC("xdp")
int xvs_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	struct l2 l2;
	if (parse_l2(data, end, &l2) != PARSE_OK)
		return done(STAT_PASSED);

	struct addr key;
	__u32 outer_len; /* bytes to strip */
	__u8 proto;      /* tunnel protocol: IPPROTO_IPIP or IPPROTO_IPV6 */
	if (l2.proto == bpf_htons(ETH_P_IP)) {
		/* Outer IPv4: IHL 5, not a fragment, correct checksum, length
		 * within the frame. */
		struct iphdr *ip = l2.l3;
		if (!NEED(ip, sizeof(*ip), end))
			return done(STAT_PASSED);
		proto = ip->protocol;
		if (proto != IPPROTO_IPIP && proto != IPPROTO_IPV6)
			return done(STAT_PASSED);
		/* ipv4_hlen checks the version too. */
		if (ipv4_hlen(ip) != sizeof(*ip) || (ip->frag_off & bpf_htons(IPV4_FRAG_MASK)) ||
		    !ipv4_csum_ok(ip))
			return done(STAT_MALFORMED);
		/* The total length counts the inner header, which must fit
		 * in it. */
		__u32 tot = len16(ip->tot_len);
		if ((void *)ip + tot > end || tot < sizeof(*ip) + inner_min(proto))
			return done(STAT_MALFORMED);
		key4(&key, ip->daddr);
		outer_len = sizeof(*ip);
	} else {
		/* Outer IPv6: the tunnel header must follow the fixed header
		 * directly. */
		struct ipv6hdr *ip6 = l2.l3;
		if (!NEED(ip6, sizeof(*ip6), end))
			return done(STAT_PASSED);
		proto = ip6->nexthdr;
		if (proto != IPPROTO_IPIP && proto != IPPROTO_IPV6)
			return done(STAT_PASSED);
		if (!ipv6_version_ok(ip6))
			return done(STAT_MALFORMED);
		__u32 plen = len16(ip6->payload_len);
		if ((void *)(ip6 + 1) + plen > end || plen < inner_min(proto))
			return done(STAT_MALFORMED);
		key6(&key, &ip6->daddr);
		outer_len = sizeof(*ip6);
	}
	if (!local(&key))
		return done(STAT_NOT_FOR_US);

	/* Inner header: complete, of the announced version, to a VIP. */
	void *inner = l2.l3 + outer_len;
	__be16 inner_proto;
	if (proto == IPPROTO_IPIP) {
		struct iphdr *ip = inner;
		if (!NEED(ip, sizeof(*ip), end) || (*(__u8 *)ip & 0xf0) != 0x40)
			return done(STAT_MALFORMED);
		key4(&key, ip->daddr);
		inner_proto = bpf_htons(ETH_P_IP);
	} else {
		struct ipv6hdr *ip6 = inner;
		if (!NEED(ip6, sizeof(*ip6), end) || !ipv6_version_ok(ip6))
			return done(STAT_MALFORMED);
		key6(&key, &ip6->daddr);
		inner_proto = bpf_htons(ETH_P_IPV6);
	}
	if (!bpf_map_lookup_elem(&xvs_dc_vips, &key))
		return done(STAT_NOT_FOR_US);

	/* Decapsulate: save the L2 header but its ethertype, drop the outer
	 * header, write the L2 header back in front of the inner one. Any
	 * frame that got here holds at least 14 + 20 + 20 bytes, so the
	 * 22-byte checks never fail; the verifier needs them all the same. */
	__u32 saved[L2_WORDS];
	if (!NEED(data, MAX_L2_LEN, end))
		return done(STAT_MALFORMED);
	save_l2(data, saved);
	/* On failure the frame is unchanged. */
	if (bpf_xdp_adjust_head(ctx, outer_len))
		return done(STAT_MALFORMED);
	/* The helper invalidated every packet pointer. */
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (!NEED(data, MAX_L2_LEN, end))
		return done(STAT_MALFORMED);
	restore_l2(data, saved, l2.len, inner_proto);
	return done(STAT_DECAPSULATED);
}
