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
#include "include/siphash.h"

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
/* Set by userspace at run time: whether to look frames up in xvs_flows,
 * and to answer SYN-proxied services' SYNs: whether frames XDP sends from
 * this interface arrive. */
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
	STAT_SYN_COOKIE,   /* a SYN-proxied service's SYN answered with a cookie */
	STAT_SYN_NO_PORT,  /* ... but the interface is not in xvs_ports: dropped */
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
static __noinline int fast_forward(struct xdp_md *ctx, __u32 l2len, int v6, __u8 proto, __u32 l3len)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct flow_key k;
	__u16 *csum;
	void *l4;
	__u32 l4len;

	/* Its own function, as syn_cookie: each has a stack of its own
	 * after xvs_steer's, rather than all three sharing one. */
	if (l2len > MAX_L2_LEN)
		return -1;
	void *l3 = data + l2len;
	if (!NEED(l3, v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr), end))
		return -1;

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
	__u32 frame_len = l2len + l3len;
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

/* The SYN proxy: SYNs to a syn_proxy service are answered here, with the
 * SYN-ACK the userspace worker would send (dataplane/synproxy.go), byte for
 * byte and with the same cookie, so that a SYN flood costs one XDP_TX per
 * SYN and never reaches the workers' rings. The client's ACK, and all that
 * follows, is the worker's: it checks the cookie and opens the connection. */

/* The flags of an xvs_vips value. */
enum {
	VIP_SYN_PROXY = 1, /* the service answers SYNs with cookies */
};

/* A minute's cookie key (syncookie.Jar's), in the slot of the minute
 * modulo 4. Userspace writes this minute's and the next's ahead of time; a
 * SYN in a minute whose key is not there is left to the worker. */
struct cookie_key {
	__u64 minute; /* of the Unix clock */
	__u64 k0, k1;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct cookie_key);
} xvs_cookie_keys SEC(".maps");

/* Set by the loader: the largest MSS the interface's MTU carries over IPv4
 * and IPv6, what the worker caps a client's MSS at (0: SYNs are the
 * worker's). */
const volatile __u16 syn_mss4 = 0;
const volatile __u16 syn_mss6 = 0;
/* Set by userspace: what turns bpf_ktime_get_ns() into the Unix time in
 * nanoseconds that cookie minutes count (0: not yet known). */
volatile __u64 cookie_clock = 0;

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOPT_WSCALE 3
#define TCPOPT_SACK_PERM 4
#define MAX_TCP_OPTIONS 40
#define WSCALE_NONE 15   /* the cookie's window scale when the client sent none */
#define PROXY_WSCALE 7   /* the shift the proxy offers (synproxy.go's proxyWScale) */
#define DEFAULT_MSS 536  /* RFC 9293's, for a SYN without one */
#define NS_PER_MINUTE 60000000000ULL

struct syn_opts {
	__u16 mss;    /* 0: none */
	__u8 wscale;  /* WSCALE_NONE: none */
	__u8 sack;
};

/* struct opt_walk is parse_syn_opts's state: the options, copied out of
 * the packet, and what was read of them so far. */
struct opt_walk {
	__u8 buf[MAX_TCP_OPTIONS];
	__u32 len;
	__u32 i; /* the next option's offset */
	struct syn_opts o;
};

/* opt_step reads the option at w->i: bpf_loop's callback, so that the
 * verifier checks one step rather than every path through forty. It
 * returns 1 at the end of the options. */
static long opt_step(__u64 n, void *ctx)
{
	struct opt_walk *w = ctx;
	__u32 i = w->i, len = w->len;
	if (i >= len || i >= MAX_TCP_OPTIONS)
		return 1;
	__u8 kind = w->buf[i];
	if (kind == TCPOPT_EOL)
		return 1;
	if (kind == TCPOPT_NOP) {
		w->i = i + 1;
		return 0;
	}
	if (i + 1 >= len || i + 1 >= MAX_TCP_OPTIONS)
		return 1;
	__u8 olen = w->buf[i + 1];
	if (olen < 2 || i + olen > len)
		return 1;
	if (kind == TCPOPT_MSS && olen == 4 && i + 3 < MAX_TCP_OPTIONS) {
		w->o.mss = (__u16)w->buf[i + 2] << 8 | w->buf[i + 3];
	} else if (kind == TCPOPT_WSCALE && olen == 3 && i + 2 < MAX_TCP_OPTIONS) {
		__u8 ws = w->buf[i + 2];
		w->o.wscale = ws < 14 ? ws : 14;
	} else if (kind == TCPOPT_SACK_PERM && olen == 2) {
		w->o.sack = 1;
	}
	w->i = i + olen;
	return 0;
}

/* parse_syn_opts reads the MSS, window scale and SACK-permitted options
 * of the optlen bytes at offset off of the frame as packet.ParseSYNOptions
 * does: up to an end-of-options option or one that is malformed, the last
 * of a kind counting. */
XVS_INLINE void parse_syn_opts(struct xdp_md *ctx, __u32 off, __u32 optlen, struct syn_opts *o)
{
	struct opt_walk w;
	__builtin_memset(&w, 0, sizeof(w));
	w.o = *o;
	if (optlen == 0 || optlen > MAX_TCP_OPTIONS)
		return;
	if (bpf_xdp_load_bytes(ctx, off, w.buf, optlen))
		return;
	w.len = optlen;
	/* Every option but a NOP takes two bytes or more, a NOP one. */
	bpf_loop(MAX_TCP_OPTIONS, opt_step, &w, 0);
	*o = w.o;
}

/* mss_index is the cookie's MSS index: the largest of syncookie's table
 * values (mssTable4, mssTable6) not above mss, else the first. */
XVS_INLINE __u32 mss_index(__u16 mss, int v6, __u16 *table_mss)
{
	__u16 t0 = v6 ? 1220 : 536, t1 = v6 ? 1280 : 1300, t2 = v6 ? 1420 : 1440, t3 = v6 ? 1440 : 1460;
	if (mss >= t3) {
		*table_mss = t3;
		return 3;
	}
	if (mss >= t2) {
		*table_mss = t2;
		return 2;
	}
	if (mss >= t1) {
		*table_mss = t1;
		return 1;
	}
	*table_mss = t0;
	return 0;
}

/* tx_back sends a frame back out of the interface it came in on. */
XVS_INLINE int tx_back(struct xdp_md *ctx, __u32 no_port_stat)
{
	if (!tx_by_redirect)
		return XDP_TX;
	long act = bpf_redirect_map(&xvs_ports, ctx->ingress_ifindex, XDP_DROP);
	if (act != XDP_REDIRECT) {
		count(&xvs_stats, no_port_stat);
		return XDP_DROP;
	}
	return XDP_REDIRECT;
}

/* syn_cookie answers the SYN after the l2len bytes of link-layer header
 * with a SYN-ACK whose sequence number is its cookie (syncookie.Jar.Make), and returns the XDP action;
 * -1 leaves it to the worker, untouched: a SYN the worker would refuse
 * (a length that lies, a bad IPv4 header checksum or data offset, IPv4
 * options, which the caller checks), or one in a minute without a key. */
static __noinline int syn_cookie(struct xdp_md *ctx, __u32 l2len, int v6)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	/* Its own function, with its own stack (see fast_forward); and as
	 * little of it as may be: the SYN-ACK is written in place, where the
	 * SYN's addresses and MACs stay while the tail is cut. */
	if (l2len > MAX_L2_LEN)
		return -1;
	void *l3 = data + l2len;
	if (!NEED(l3, sizeof(struct ipv6hdr), end))
		return -1;
	__u16 mss_cap = v6 ? syn_mss6 : syn_mss4;
	__u64 clock = cookie_clock;
	if (!mss_cap || !clock)
		return -1;
	struct tcphdr *th;
	__u32 l4len;
	if (v6) {
		struct ipv6hdr *ip6 = l3;
		th = (void *)(ip6 + 1);
		l4len = bpf_ntohs(ip6->payload_len);
		if ((void *)th + l4len > end)
			return -1;
	} else {
		struct iphdr *ip = l3;
		__u32 tot = bpf_ntohs(ip->tot_len);
		if (tot < sizeof(*ip) || l3 + tot > end || !ipv4_csum_ok(ip))
			return -1;
		l4len = tot - sizeof(*ip);
		th = (void *)ip + sizeof(*ip);
	}
	if (!NEED(th, sizeof(*th), end))
		return -1;
	if (!th->syn || th->ack || th->rst || th->fin)
		return -1;
	if (th->doff < 5 || th->doff * 4 > l4len)
		return -1;
	__be16 sport = th->source, dport = th->dest;
	__u32 isn = bpf_ntohl(th->seq);
	__u32 opts_off = (void *)(th + 1) - data, opts_len = th->doff * 4 - sizeof(*th);

	__u64 minute = (bpf_ktime_get_ns() + clock) / NS_PER_MINUTE;
	__u32 slot = minute & 3;
	struct cookie_key *key = bpf_map_lookup_elem(&xvs_cookie_keys, &slot);
	if (!key || key->minute != minute)
		return -1;

	struct syn_opts o = {.wscale = WSCALE_NONE};
	parse_syn_opts(ctx, opts_off, opts_len, &o);
	__u16 mss = o.mss ? o.mss : DEFAULT_MSS;
	if (mss > mss_cap)
		mss = mss_cap;
	__u16 table_mss;
	__u32 idx = mss_index(mss, v6, &table_mss);
	__u32 info = (__u32)(minute & 1) << 31 | idx << 29 | (__u32)o.wscale << 25 | (__u32)o.sack << 24;

	/* The hash of syncookie.Jar.hash: the addresses (as they lie in the
	 * packet), then the ports and the client's ISN as little-endian
	 * host-order numbers, then info. */
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	l3 = data + l2len;
	struct siphash s;
	siphash_init(&s, key->k0, key->k1);
	__u64 tail;
	if (v6) {
		__u64 *a = (void *)&((struct ipv6hdr *)l3)->saddr;
		if (!NEED(a, 32, end))
			return -1;
		siphash_word(&s, a[0]);
		siphash_word(&s, a[1]);
		siphash_word(&s, a[2]);
		siphash_word(&s, a[3]);
		tail = 44ULL << 56;
	} else {
		__u64 *a = (void *)&((struct iphdr *)l3)->saddr;
		if (!NEED(a, 8, end))
			return -1;
		siphash_word(&s, a[0]);
		tail = 20ULL << 56;
	}
	siphash_word(&s, (__u64)bpf_ntohs(sport) | (__u64)bpf_ntohs(dport) << 16 | (__u64)isn << 32);
	__u32 cookie = info | ((__u32)siphash_final(&s, tail | info) & 0xffffff);

	/* The SYN-ACK, as packet.WriteTCP writes it: options MSS, then
	 * window scale, then SACK-permitted, each padded to 4 bytes. */
	__u32 ws = o.wscale != WSCALE_NONE, sack = o.sack;
	__u32 optlen = 4 + 4 * ws + 4 * sack;
	__u32 tcplen = sizeof(struct tcphdr) + optlen;
	__u32 iplen = v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	int delta = (int)(l2len + iplen + tcplen) - (int)(end - data);
	if (delta && bpf_xdp_adjust_tail(ctx, delta))
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	l3 = data + l2len;
	if (!NEED(l3, iplen + sizeof(struct tcphdr) + 4, end))
		return XDP_DROP;

	/* Back where it came from: MACs and addresses swapped. */
	struct ethhdr *eth = data;
	__u32 m0 = *(__u32 *)eth->h_dest;
	__u16 m1 = *(__u16 *)(eth->h_dest + 4);
	__builtin_memcpy(eth->h_dest, eth->h_source, 6);
	*(__u32 *)eth->h_source = m0;
	*(__u16 *)(eth->h_source + 4) = m1;
	__u32 sum = bpf_htons(IPPROTO_TCP) + bpf_htons((__u16)tcplen);
	struct tcphdr *t;
	if (v6) {
		struct ipv6hdr *ip6 = l3;
		__u64 *a = (void *)&ip6->saddr;
		__u64 s0 = a[0], s1 = a[1];
		a[0] = a[2];
		a[1] = a[3];
		a[2] = s0;
		a[3] = s1;
		*(__be32 *)ip6 = bpf_htonl(6 << 28);
		ip6->payload_len = bpf_htons(tcplen);
		ip6->nexthdr = IPPROTO_TCP;
		ip6->hop_limit = 64;
		sum += csum_words(a, 16);
		t = (void *)(ip6 + 1);
	} else {
		struct iphdr *ip = l3;
		__be32 src = ip->saddr;
		*(__u8 *)ip = 0x45;
		ip->tos = 0;
		ip->tot_len = bpf_htons(sizeof(*ip) + tcplen);
		ip->id = 0;
		ip->frag_off = bpf_htons(0x4000);
		ip->ttl = 64;
		ip->protocol = IPPROTO_TCP;
		ip->check = 0;
		ip->saddr = ip->daddr;
		ip->daddr = src;
		ip->check = ipv4_csum(ip);
		sum += csum_words(&ip->saddr, 4);
		t = (void *)ip + sizeof(*ip);
	}
	if (!NEED(t, sizeof(*t) + 4, end))
		return XDP_DROP;
	t->source = dport;
	t->dest = sport;
	t->seq = bpf_htonl(cookie);
	t->ack_seq = bpf_htonl(isn + 1);
	/* Data offset, then the flags: SYN and ACK. */
	*((__u8 *)t + 12) = tcplen / 4 << 4;
	*((__u8 *)t + 13) = 0x12;
	t->window = 0;
	t->check = 0;
	t->urg_ptr = 0;
	__u8 *op = (void *)(t + 1);
	op[0] = TCPOPT_MSS;
	op[1] = 4;
	op[2] = table_mss >> 8;
	op[3] = table_mss & 0xff;
	sum += csum_words(t, 12);
	if (optlen >= 8) {
		if (!NEED(op, 8, end))
			return XDP_DROP;
		if (ws) {
			op[4] = TCPOPT_NOP;
			op[5] = TCPOPT_WSCALE;
			op[6] = 3;
			op[7] = PROXY_WSCALE;
		} else {
			op[4] = TCPOPT_NOP;
			op[5] = TCPOPT_NOP;
			op[6] = TCPOPT_SACK_PERM;
			op[7] = 2;
		}
		sum += csum_words(op + 4, 2);
	}
	if (optlen >= 12) {
		if (!NEED(op, 12, end))
			return XDP_DROP;
		op[8] = TCPOPT_NOP;
		op[9] = TCPOPT_NOP;
		op[10] = TCPOPT_SACK_PERM;
		op[11] = 2;
		sum += csum_words(op + 8, 2);
	}
	t->check = ~csum_fold32(sum);
	count(&xvs_stats, STAT_SYN_COOKIE);
	return tx_back(ctx, STAT_SYN_NO_PORT);
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
	/* v6: the frame is IPv6; syn_ok: a TCP segment the SYN proxy may
	 * answer (no IPv4 options). */
	int v6 = 0, syn_ok = 0;
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
		syn_ok = proto == IPPROTO_TCP && hlen == sizeof(*ip);
		/* A packet with IP options is userspace's. */
		if (fast_path && hlen == sizeof(*ip)) {
			int act = fast_forward(ctx, l2.len, 0, proto, bpf_ntohs(ip->tot_len));
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
		v6 = 1;
		syn_ok = nh == IPPROTO_TCP;
		if (fast_path && ip6->payload_len) {
			int act = fast_forward(ctx, l2.len, 1, nh, sizeof(*ip6) + bpf_ntohs(ip6->payload_len));
			if (act >= 0)
				return act;
		}
		keys6(ip6, &dkey, &skey, nh);
	}

	if (!NEED(l4, 4, end))
		return short_frame();
	ports(l4, &dkey, &skey);
	__u32 *vip = bpf_map_lookup_elem(&xvs_vips, &dkey);
	if (vip) {
		/* Where the fast path is on, frames XDP sends arrive (see
		 * fast_path): there the SYN proxy answers in XDP too. */
		if (fast_path && (*vip & VIP_SYN_PROXY) && syn_ok) {
			int act = syn_cookie(ctx, l2.len, v6);
			if (act >= 0)
				return act;
		}
		return steer(ctx);
	}
	if (bpf_map_lookup_elem(&xvs_reals, &skey))
		return steer(ctx);
	return pass();
}
