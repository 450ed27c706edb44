//go:build ignore

/* xvs_steer: the director's XDP program. It sends a frame to the AF_XDP
 * socket of its RX queue when the frame is xvs's traffic, and everything
 * else to the kernel (see dataplane/xdpprog's documentation for the rules).
 *
 * SPDX-License-Identifier: (MIT OR GPL-2.0-only)
 */
#include "include/xvs.h"
#include "include/parse.h"
#include "include/csum.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* struct key is an endpoint: (address, port, protocol, family). IPv4
 * addresses take the first 4 bytes, the rest zero. The Go side writes the
 * same 20 bytes (xdpprog.mapKey). */
struct key {
	__u8 addr[16];
	__be16 port;
	__u8 proto;
	__u8 family; /* 4 or 6 */
};

#define MAX_QUEUES 64

/* Virtual services (daddr, dport, proto); NAT real servers (saddr, sport,
 * proto) whose replies come back through the director; and the VIP
 * addresses (port 0) that IPv4 fragments are matched on. The loader sizes
 * them. */
#define ENDPOINT_MAP(name)                                                     \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_HASH);                               \
		__uint(max_entries, 1024);                                     \
		__type(key, struct key);                                       \
		__type(value, __u32);                                          \
	} name SEC(".maps")

ENDPOINT_MAP(xvs_vips);
ENDPOINT_MAP(xvs_reals);
ENDPOINT_MAP(xvs_vipaddrs);

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xvs_xsks SEC(".maps");

/* The fast path: established connections the userspace workers have
 * offloaded, by the key of the direction a frame travels (conntrack's
 * Key: IPv4 addresses IPv4-mapped). The map is a cache of the userspace
 * connection table, shared by the programs of all director interfaces:
 * userspace inserts and deletes, the program only counts. */
struct flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 _pad[3];
};

enum {
	FLOW_SNAT = 1,  /* rewrite the source to (saddr, sport) */
	FLOW_DNAT = 2,  /* rewrite the destination to (daddr, dport) */
	FLOW_TUN = 4,   /* encapsulate (IPIP / IPv6-in-IP) from tsrc to tdst */
	FLOW_REPLY = 8, /* a real server's reply (counted as outgoing) */
};

struct flow {
	/* Written by userspace. */
	__u64 ref;       /* the conntrack entry this caches */
	__u32 dest;      /* its real server */
	__u32 ifindex;   /* egress interface: the ingress one means XDP_TX */
	__u16 flags;     /* FLOW_* */
	__u16 mtu;       /* FLOW_TUN: largest outer packet; bigger ones go to userspace */
	__u8 smac[6];
	__u8 dmac[6];
	__u8 tun_family; /* FLOW_TUN: 4 or 6 */
	__u8 _pad0;
	__u8 saddr[16];  /* IPv4: the first 4 bytes */
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 tsrc[16];
	__u8 tdst[16];
	__u8 _pad1[10];
	/* Written by the program, folded into the connection by userspace. */
	__u64 packets;
	__u64 bytes;
	__u64 last_ns; /* bpf_ktime_get_coarse_ns() of the latest frame */
};

/* Not preallocated: only userspace inserts, and a director that never
 * offloads pays nothing for it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow);
} xvs_flows SEC(".maps");

/* The director's interfaces a fast-path frame may leave on by redirect. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} xvs_ports SEC(".maps");

/* Outer IPv4 identifications of the tunnel headers this CPU writes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} xvs_ipid SEC(".maps");

/* Set by the loader: the most bytes an AF_XDP frame of this interface's
 * sockets holds (0: unchecked); whether a fast-path frame leaving on the
 * interface it arrived on is redirected to it rather than sent with
 * XDP_TX. veth needs that: it hands XDP_TX frames to its peer without
 * waking the peer's NAPI unless the peer runs an XDP program itself, so
 * with only GRO there they wait in its ring; a redirect flushes. */
const volatile __u32 frame_room = 0;
const volatile __u8 tx_by_redirect = 0;
/* Set by userspace at run time: whether to look frames up in xvs_flows. */
volatile __u8 fast_path = 0;

/* Counters; the indexes are xdpprog's stat* constants. */
enum {
	STAT_PASSED,       /* not xvs's: handed to the kernel */
	STAT_REDIRECTED,   /* steered to the queue's socket */
	STAT_PARSE_ERRORS, /* too short or malformed: handed to the kernel */
	STAT_NO_SOCKET,    /* steered, but the queue has no socket: kernel */
	STAT_FRAGMENTS,    /* IPv4 fragments to a VIP address (also steered) */
	STAT_ICMP_STEERED, /* ICMP errors about xvs's packets (also steered) */
	STAT_OVERSIZE,     /* steered, but longer than an AF_XDP frame: dropped */
	STAT_FAST,         /* forwarded by the fast path (XDP_TX or redirect) */
	STAT_FAST_PARTIAL, /* fast-path flow, checksum left to complete: steered */
	STAT_FAST_TOO_BIG, /* fast-path tunnel flow, too big for the MTU: steered */
	STAT_FAST_NO_PORT, /* fast-path flow whose egress is not in xvs_ports: dropped */
	NUM_STATS,
};

XVS_COUNTERS(xvs_stats, NUM_STATS);

XVS_INLINE int pass(void)
{
	count(&xvs_stats, STAT_PASSED);
	return XDP_PASS;
}

XVS_INLINE int short_frame(void)
{
	count(&xvs_stats, STAT_PARSE_ERRORS);
	return XDP_PASS;
}

XVS_INLINE int steer(struct xdp_md *ctx)
{
	if (frame_room) {
		__u32 len = ctx->data_end - ctx->data;
		if (len > frame_room) {
			/* The kernel would drop it at the socket (rx_dropped):
			 * drop it here, where it is counted by reason. */
			count(&xvs_stats, STAT_OVERSIZE);
			return XDP_DROP;
		}
	}
	/* XDP_PASS as the fallback: a queue without a socket hands its
	 * frames to the kernel rather than dropping them. */
	int action = bpf_redirect_map(&xvs_xsks, ctx->rx_queue_index, XDP_PASS);
	count(&xvs_stats, action == XDP_REDIRECT ? STAT_REDIRECTED : STAT_NO_SOCKET);
	return action;
}

XVS_INLINE void keys4(struct iphdr *ip, struct key *dkey, struct key *skey, __u8 proto)
{
	__builtin_memcpy(dkey->addr, &ip->daddr, 4);
	__builtin_memcpy(skey->addr, &ip->saddr, 4);
	dkey->proto = skey->proto = proto;
	dkey->family = skey->family = 4;
}

XVS_INLINE void keys6(struct ipv6hdr *ip6, struct key *dkey, struct key *skey, __u8 proto)
{
	__builtin_memcpy(dkey->addr, &ip6->daddr, 16);
	__builtin_memcpy(skey->addr, &ip6->saddr, 16);
	dkey->proto = skey->proto = proto;
	dkey->family = skey->family = 6;
}

/* ports copies the ports at l4 into the keys: the source port into skey. */
XVS_INLINE void ports(__be16 *l4, struct key *dkey, struct key *skey)
{
	skey->port = l4[0];
	dkey->port = l4[1];
}

/* icmp4_error and icmp6_error tell the ICMP error types whose quote the
 * program inspects: the ones IPVS relays, and parameter problem. */
XVS_INLINE int icmp4_error(__u8 type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH ||
	       type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETERPROB;
}

XVS_INLINE int icmp6_error(__u8 type)
{
	return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG ||
	       type == ICMPV6_TIME_EXCEED || type == ICMPV6_PARAMPROB;
}

#define ICMP_HLEN 8 /* type, code, checksum, 4 bytes; then the quote */

/* icmp_quote steers an ICMP error whose quoted packet's L4 header starts at
 * l4. The quoted packet went the other way, so the maps are looked up the
 * other way round: its source may be a VIP (a reply to a client), its
 * destination a NAT real server. */
XVS_INLINE int icmp_quote(struct xdp_md *ctx, void *l4, void *end, struct key *dkey, struct key *skey)
{
	if (!NEED(l4, 4, end))
		return short_frame();
	ports(l4, dkey, skey);
	if (bpf_map_lookup_elem(&xvs_vips, skey) || bpf_map_lookup_elem(&xvs_reals, dkey)) {
		count(&xvs_stats, STAT_ICMP_STEERED);
		return steer(ctx);
	}
	return pass();
}


/* Fast path. */

/* delta_words sums ~old + new over n 16-bit words: what replacing old by
 * new adds to a one's complement sum. */
XVS_INLINE __u32 delta_words(const void *old, const void *new, int n)
{
	const __u16 *o = old, *w = new;
	__u32 d = 0;
#pragma unroll
	for (int i = 0; i < 8; i++) {
		if (i < n)
			d += (__u16)~o[i] + w[i];
	}
	return d;
}

XVS_INLINE __u16 apply_delta(__u16 csum, __u32 delta)
{
	return ~csum_fold32((__u16)~csum + csum_fold32(delta));
}

/* l4_partial reports whether the TCP/UDP checksum holds only the
 * pseudo-header sum (the sender left it to a NIC): such a frame goes to
 * userspace, which completes it. addrs are the n address words. */
XVS_INLINE int l4_partial(__u16 csum, const void *addrs, int words, __u8 proto, __u32 l4len)
{
	/* The words are summed as loaded (network order); so must the
	 * pseudo-header's protocol and length be. */
	__u32 sum = bpf_htons((__u16)proto) + bpf_htons((__u16)l4len);
	const __u16 *a = addrs;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (i < words)
			sum += a[i];
	}
	__u16 p = csum_fold32(sum);
	return csum == p || (csum == 0 && p == 0xffff);
}

/* fast_key fills k for the frame's direction: addresses IPv4-mapped, as
 * conntrack keys them. */
XVS_INLINE void fast_key4(struct flow_key *k, struct iphdr *ip, __be16 *l4, __u8 proto)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->saddr[10] = k->saddr[11] = 0xff;
	k->daddr[10] = k->daddr[11] = 0xff;
	__builtin_memcpy(&k->saddr[12], &ip->saddr, 4);
	__builtin_memcpy(&k->daddr[12], &ip->daddr, 4);
	k->sport = l4[0];
	k->dport = l4[1];
	k->proto = proto;
}

XVS_INLINE void fast_key6(struct flow_key *k, struct ipv6hdr *ip6, __be16 *l4, __u8 proto)
{
	__builtin_memset(k, 0, sizeof(*k));
	__builtin_memcpy(k->saddr, &ip6->saddr, 16);
	__builtin_memcpy(k->daddr, &ip6->daddr, 16);
	k->sport = l4[0];
	k->dport = l4[1];
	k->proto = proto;
}

/* ecn_encap is the outer DS field for an inner one: CE becomes ECT(0), as
 * Linux's INET_ECN_encapsulate and the userspace forwarder do. */
XVS_INLINE __u8 ecn_encap(__u8 ds)
{
	return (ds & 3) == 3 ? (ds & ~3) | 2 : ds;
}

/* fast_path forwards a frame of an offloaded connection the way the
 * userspace forwarder would, and returns the XDP action; -1 sends it on to
 * the steering (userspace) instead. l3len is the IP packet's length. */
XVS_INLINE int fast_forward(struct xdp_md *ctx, struct l2 *l2, int v6, __u8 proto, __u32 l3len)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct flow_key k;
	__u16 *csum;
	void *l3 = l2->l3, *l4;
	__u32 l4len;

	if (v6) {
		struct ipv6hdr *ip6 = l3;
		l4 = ip6 + 1;
		if (!NEED(l4, 8, end))
			return -1;
		fast_key6(&k, ip6, l4, proto);
	} else {
		struct iphdr *ip = l3;
		l4 = (void *)ip + sizeof(*ip);
		if (!NEED(l4, 8, end))
			return -1;
		fast_key4(&k, ip, l4, proto);
	}
	/* What the userspace decoder would refuse, it refuses: a length that
	 * lies, a bad IPv4 header checksum, a bad TCP data offset or UDP
	 * length go to userspace, which counts them. */
	if (l3 + l3len > end)
		return -1;
	l4len = l3len - (v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr));
	if (!v6 && !ipv4_csum_ok(l3))
		return -1;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if (!NEED(th, sizeof(*th), end))
			return -1;
		/* Opening and closing are userspace's: its state machine
		 * sees them, and takes the flow back. */
		if (th->syn || th->fin || th->rst)
			return -1;
		if (th->doff < 5 || th->doff * 4 > l4len)
			return -1;
		csum = &th->check;
	} else {
		struct udphdr *uh = l4;
		csum = &uh->check;
		__u32 ulen = bpf_ntohs(uh->len);
		if (ulen < sizeof(*uh) || ulen > l4len)
			return -1;
		l4len = ulen;
	}

	struct flow *f = bpf_map_lookup_elem(&xvs_flows, &k);
	if (!f)
		return -1;
	if (*csum != 0 || proto == IPPROTO_TCP) {
		void *addrs = v6 ? (void *)&((struct ipv6hdr *)l3)->saddr : (void *)&((struct iphdr *)l3)->saddr;
		if (!NEED(addrs, v6 ? 32 : 8, end))
			return -1;
		if (l4_partial(*csum, addrs, v6 ? 16 : 4, proto, l4len)) {
			count(&xvs_stats, STAT_FAST_PARTIAL);
			return -1;
		}
	}
	__u32 frame_len = l2->len + l3len;
	__u16 flags = f->flags;
	int tun_hlen = 0;
	if (flags & FLOW_TUN) {
		tun_hlen = f->tun_family == 6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
		if (l3len + tun_hlen > f->mtu) {
			/* Userspace answers with the path MTU (ICMP). */
			count(&xvs_stats, STAT_FAST_TOO_BIG);
			return -1;
		}
	}

	/* NAT rewrites, checksums updated incrementally. */
	__u32 l4delta = 0;
	if (v6) {
		struct ipv6hdr *ip6 = l3;
		if (flags & FLOW_SNAT) {
			l4delta += delta_words(&ip6->saddr, f->saddr, 8);
			__builtin_memcpy(&ip6->saddr, f->saddr, 16);
		}
		if (flags & FLOW_DNAT) {
			l4delta += delta_words(&ip6->daddr, f->daddr, 8);
			__builtin_memcpy(&ip6->daddr, f->daddr, 16);
		}
	} else {
		struct iphdr *ip = l3;
		__u32 ipdelta = 0;
		if (flags & FLOW_SNAT) {
			ipdelta += delta_words(&ip->saddr, f->saddr, 2);
			__builtin_memcpy(&ip->saddr, f->saddr, 4);
		}
		if (flags & FLOW_DNAT) {
			ipdelta += delta_words(&ip->daddr, f->daddr, 2);
			__builtin_memcpy(&ip->daddr, f->daddr, 4);
		}
		if (ipdelta)
			ip->check = apply_delta(ip->check, ipdelta);
		l4delta = ipdelta;
	}
	__be16 *ports = l4;
	if ((flags & FLOW_SNAT) && ports[0] != f->sport) {
		l4delta += (__u16)~ports[0] + f->sport;
		ports[0] = f->sport;
	}
	if ((flags & FLOW_DNAT) && ports[1] != f->dport) {
		l4delta += (__u16)~ports[1] + f->dport;
		ports[1] = f->dport;
	}
	if (l4delta) {
		if (proto == IPPROTO_UDP) {
			if (*csum) {
				__u16 c = apply_delta(*csum, l4delta);
				*csum = c ? c : 0xffff;
			}
		} else {
			*csum = apply_delta(*csum, l4delta);
		}
	}

	__sync_fetch_and_add(&f->packets, 1);
	__sync_fetch_and_add(&f->bytes, frame_len);
	f->last_ns = bpf_ktime_get_coarse_ns();

	__u8 smac[6], dmac[6];
	__builtin_memcpy(smac, f->smac, 6);
	__builtin_memcpy(dmac, f->dmac, 6);
	__u32 ifindex = f->ifindex;

	if (flags & FLOW_TUN) {
		/* What the tunnel header copies from the inner one. */
		__u8 ds, ttl, df = 0;
		if (v6) {
			struct ipv6hdr *ip6 = l3;
			ds = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
			ttl = ip6->hop_limit;
		} else {
			struct iphdr *ip = l3;
			ds = ip->tos;
			ttl = ip->ttl;
			df = (ip->frag_off & bpf_htons(0x4000)) != 0;
		}
		ds = ecn_encap(ds);
		__u8 tsrc[16], tdst[16];
		__builtin_memcpy(tsrc, f->tsrc, 16);
		__builtin_memcpy(tdst, f->tdst, 16);
		int tun6 = f->tun_family == 6;

		/* Ethernet padding after the packet goes, as userspace cuts it. */
		__u32 len = ctx->data_end - ctx->data;
		if (len > frame_len && bpf_xdp_adjust_tail(ctx, (int)frame_len - (int)len))
			return XDP_DROP;
		/* Save the L2 header, grow the head, put it back in front. */
		__u8 l2hdr[MAX_L2_LEN];
		__u16 l2len = l2->len;
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		if (!NEED(data, MAX_L2_LEN, end))
			return XDP_DROP;
		__builtin_memcpy(l2hdr, data, MAX_L2_LEN);
		if (bpf_xdp_adjust_head(ctx, -tun_hlen))
			return XDP_DROP;
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		if (!NEED(data, MAX_L2_LEN + sizeof(struct ipv6hdr), end))
			return XDP_DROP;
		__builtin_memcpy(data, l2hdr, MAX_L2_LEN);
		__be16 etype = tun6 ? bpf_htons(ETH_P_IPV6) : bpf_htons(ETH_P_IP);
		void *outer;
		if (l2len == ETH_HLEN) {
			*(__be16 *)(data + ETH_HLEN - 2) = etype;
			outer = data + ETH_HLEN;
		} else if (l2len == ETH_HLEN + VLAN_HLEN) {
			*(__be16 *)(data + ETH_HLEN + VLAN_HLEN - 2) = etype;
			outer = data + ETH_HLEN + VLAN_HLEN;
		} else {
			*(__be16 *)(data + MAX_L2_LEN - 2) = etype;
			outer = data + MAX_L2_LEN;
		}
		if (!NEED(outer, sizeof(struct ipv6hdr), end))
			return XDP_DROP;
		__u8 inner_proto = v6 ? IPPROTO_IPV6 : IPPROTO_IPIP;
		if (tun6) {
			struct ipv6hdr *o6 = outer;
			*(__be32 *)o6 = bpf_htonl(6 << 28 | (__u32)ds << 20);
			o6->payload_len = bpf_htons(l3len);
			o6->nexthdr = inner_proto;
			o6->hop_limit = ttl;
			__builtin_memcpy(&o6->saddr, tsrc, 16);
			__builtin_memcpy(&o6->daddr, tdst, 16);
		} else {
			struct iphdr *o4 = outer;
			__u32 zero = 0;
			__u32 *id = bpf_map_lookup_elem(&xvs_ipid, &zero);
			__u16 ipid = 0;
			if (id) {
				*id += 1;
				ipid = *id;
			}
			*(__u8 *)o4 = 0x45;
			o4->tos = ds;
			o4->tot_len = bpf_htons(l3len + sizeof(struct iphdr));
			o4->id = bpf_htons(ipid);
			o4->frag_off = df ? bpf_htons(0x4000) : 0;
			o4->ttl = ttl;
			o4->protocol = inner_proto;
			o4->check = 0;
			__builtin_memcpy(&o4->saddr, tsrc, 4);
			__builtin_memcpy(&o4->daddr, tdst, 4);
			o4->check = ipv4_csum(o4);
		}
	} else {
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
	}
	if (!NEED(data, ETH_HLEN, end))
		return XDP_DROP;
	struct ethhdr *eth = data;
	__builtin_memcpy(eth->h_dest, dmac, 6);
	__builtin_memcpy(eth->h_source, smac, 6);

	count(&xvs_stats, STAT_FAST);
	if (ifindex == ctx->ingress_ifindex && !tx_by_redirect)
		return XDP_TX;
	long act = bpf_redirect_map(&xvs_ports, ifindex, XDP_DROP);
	if (act != XDP_REDIRECT) {
		count(&xvs_stats, STAT_FAST_NO_PORT);
		return XDP_DROP;
	}
	return XDP_REDIRECT;
}

SEC("xdp")
int xvs_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct key dkey, skey;
	__builtin_memset(&dkey, 0, sizeof(dkey));
	__builtin_memset(&skey, 0, sizeof(skey));

	struct l2 l2;
	switch (parse_l2(data, end, &l2)) {
	case PARSE_SHORT:
		return short_frame();
	case PARSE_OTHER:
		return pass();
	}

	void *l4;
	if (l2.proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l2.l3;
		if (!NEED(ip, sizeof(*ip), end))
			return short_frame();
		__u32 hlen = ipv4_hlen(ip);
		if (!hlen)
			return short_frame();
		__u8 proto = ip->protocol;
		keys4(ip, &dkey, &skey, proto);
		if (ip->frag_off & bpf_htons(IPV4_FRAG_MASK)) {
			/* Non-first fragments carry no ports: a fragment is
			 * matched on (daddr, proto), port 0 in dkey. */
			if (bpf_map_lookup_elem(&xvs_vipaddrs, &dkey)) {
				count(&xvs_stats, STAT_FRAGMENTS);
				return steer(ctx);
			}
			return pass();
		}
		l4 = (void *)ip + hlen;
		if (proto == IPPROTO_ICMP) {
			struct icmphdr *icmp = l4;
			if (!NEED(icmp, 1, end))
				return short_frame();
			if (!icmp4_error(icmp->type))
				return pass();
			struct iphdr *q = l4 + ICMP_HLEN;
			if (!NEED(q, sizeof(*q), end))
				return short_frame();
			__u32 qhlen = ipv4_hlen(q);
			if (!qhlen)
				return short_frame();
			/* A quoted non-first fragment carries no ports. */
			if (q->frag_off & bpf_htons(IPV4_OFFSET_MASK))
				return pass();
			if (q->protocol != IPPROTO_TCP && q->protocol != IPPROTO_UDP)
				return pass();
			keys4(q, &dkey, &skey, q->protocol);
			return icmp_quote(ctx, (void *)q + qhlen, end, &dkey, &skey);
		}
		if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
			return pass();
		/* A packet with IP options is userspace's. */
		if (fast_path && hlen == sizeof(*ip)) {
			int act = fast_forward(ctx, &l2, 0, proto, bpf_ntohs(ip->tot_len));
			if (act >= 0)
				return act;
		}
	} else {
		/* IPv6: only a fixed header directly followed by TCP, UDP or
		 * ICMPv6 is parsed; extension headers go to the kernel. */
		struct ipv6hdr *ip6 = l2.l3;
		if (!NEED(ip6, sizeof(*ip6), end))
			return short_frame();
		if (!ipv6_version_ok(ip6))
			return short_frame();
		__u8 nh = ip6->nexthdr;
		l4 = (void *)(ip6 + 1);
		if (nh == IPPROTO_ICMPV6) {
			struct icmphdr *icmp6 = l4;
			if (!NEED(icmp6, 1, end))
				return short_frame();
			if (!icmp6_error(icmp6->type))
				return pass();
			struct ipv6hdr *q = l4 + ICMP_HLEN;
			if (!NEED(q, sizeof(*q), end))
				return short_frame();
			if (!ipv6_version_ok(q))
				return short_frame();
			if (q->nexthdr != IPPROTO_TCP && q->nexthdr != IPPROTO_UDP)
				return pass();
			keys6(q, &dkey, &skey, q->nexthdr);
			return icmp_quote(ctx, (void *)(q + 1), end, &dkey, &skey);
		}
		if (nh != IPPROTO_TCP && nh != IPPROTO_UDP)
			return pass();
		if (fast_path && ip6->payload_len) {
			int act = fast_forward(ctx, &l2, 1, nh, sizeof(*ip6) + bpf_ntohs(ip6->payload_len));
			if (act >= 0)
				return act;
		}
		keys6(ip6, &dkey, &skey, nh);
	}

	if (!NEED(l4, 4, end))
		return short_frame();
	ports(l4, &dkey, &skey);
	if (bpf_map_lookup_elem(&xvs_vips, &dkey) || bpf_map_lookup_elem(&xvs_reals, &skey))
		return steer(ctx);
	return pass();
}
