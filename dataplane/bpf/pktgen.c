//go:build ignore

/* xvs-pktgen's XDP programs (cmd/xvs-pktgen loads them):
 *
 *   - pktgen_gen, the live-frames generator: run with BPF_PROG_RUN and
 *     BPF_F_TEST_XDP_LIVE_FRAMES, it rewrites each frame for the next flow
 *     and transmits it (XDP_TX);
 *   - pktgen_count and pktgen_refl, the sink and the reflector: they count
 *     frames and bytes per CPU, then drop the frame, or swap its MAC
 *     addresses and send it back;
 *   - pktgen_steer, which redirects every unicast frame to the AF_XDP socket
 *     of its RX queue.
 *
 * What describes the traffic (the template frame, its partial checksums, the
 * flow space) is in a const volatile global, cfg, that the loader sets before
 * loading: the verifier sees it as constants and drops the branches they
 * rule out.
 *
 * SPDX-License-Identifier: (MIT OR GPL-2.0-only)
 */
#include "include/xvs.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Offsets in the generated frames (Ethernet II, IPv4 without options); the
 * Go side's template.go has the same constants. */
#define IP_OFF ETH_HLEN
#define IP_CSUM_OFF (IP_OFF + 10)
#define IP_SRC_OFF (IP_OFF + 12)
#define SPORT_OFF (IP_OFF + 20)
#define UDP_CSUM_OFF (SPORT_OFF + 6)
#define TCP_CSUM_OFF (SPORT_OFF + 16)

/* The bytes of the template the generator writes each time: the largest
 * headers it builds, Ethernet, IPv4 and TCP (54 bytes), and the payload up
 * to the shortest frame's end (64 bytes less the FCS): all of a 64-byte
 * frame, whatever a device on the other side of a veth left in its page
 * (a SYN proxy's SYN-ACK options, past the SYN's headers). */
#define TEMPLATE_LEN 60

/* The sink and the reflector time the first frame and every STAMP_EVERY-th
 * (a power of two): bpf_ktime_get_ns costs twice the rest of the program. */
#define STAMP_EVERY 64

/* The AF_XDP sockets' map size: the RX queues a socket can be steered to. */
#define MAX_QUEUES 256

/* The generator's traffic, set by the loader (genSpec in
 * cmd/xvs-pktgen/bpf.go) before loading: the verifier then knows every field
 * and drops the branches they rule out. One structure, so that the program
 * reaches all of it from one address. */
struct gen_config {
	__u32 ifindex;     /* the device sent on; frames from others pass */
	__u32 frame_len;   /* bytes of the frame, at least TEMPLATE_LEN */
	__u32 udp;         /* UDP, not TCP */
	__u32 flows;       /* flows cycled through */
	__u32 addrs;       /* source addresses in the range */
	__u32 base_addr;   /* the first source address */
	__u32 base_port;   /* the first source port */
	/* The folded sums of the IPv4 header without source address and
	 * checksum, and of the pseudo-header and segment without source
	 * address, source port and checksum (template.partialSums); and the
	 * sum of base_addr's halves, the address's share of both when there is
	 * one. */
	__u32 ip_sum;
	__u32 l4_sum;
	__u32 base_addr_sum;
	__u8 tmpl[TEMPLATE_LEN]; /* the first bytes of the frame of flow 0 */
};

const volatile struct gen_config cfg = {};

/* The generator's state: frames generated, and the flow cursor of the next
 * frame (flowCursor on the Go side): its flow, address and port indexes. */
struct gen_state {
	__u64 sent;
	__u32 flow;
	__u32 addr;
	__u32 port;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_state);
} pktgen_state SEC(".maps");

/* A counting program's per-CPU value. first is the bpf_ktime_get_ns
 * (CLOCK_MONOTONIC) of the first frame counted on that CPU, last that of
 * frame number stamped, the latest timed one. */
struct count_value {
	__u64 packets;
	__u64 bytes;
	__u64 first;
	__u64 last;
	__u64 stamped;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct count_value);
} pktgen_cnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} pktgen_xsks SEC(".maps");

/* copy_headers writes the template at data: the headers, and the first
 * bytes of the payload, which are the same in every frame. A constant size
 * makes it seven loads and stores, without a branch. */
XVS_INLINE void copy_headers(void *data)
{
#pragma unroll
	for (int off = 0; off + 8 <= TEMPLATE_LEN; off += 8)
		*(__u64 *)(data + off) = *(const volatile __u64 *)(cfg.tmpl + off);
	*(__u32 *)(data + TEMPLATE_LEN - 4) = *(const volatile __u32 *)(cfg.tmpl + TEMPLATE_LEN - 4);
}

/* csum16 returns the checksum of a one's complement sum below 2^32 (of
 * 16-bit words in network order, as host values): the sum folded to 16 bits
 * with end-around carry, complemented. */
XVS_INLINE __u64 csum16(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

/* pktgen_gen counts the frame and rewrites its headers for the next flow of
 * the cursor kept in the state map, then returns XDP_TX, which BPF_PROG_RUN
 * turns into a transmission on the ingress device.
 *
 * The kernel recycles live-frame pages without copying the input again, and
 * a page comes back however its last user left it: rewritten by this program
 * for another flow, MAC-swapped by a reflector, NATed by the kernel on the
 * other side of a veth. So the program writes the whole header every time,
 * and every value it writes is absolute, computed from the flow indexes and
 * constants: the checksums are the complements of partial sums of the
 * unchanging fields (the RFC 1624 incremental update with the template's old
 * values folded into the constant), plus the flow's address and port.
 *
 * Frames whose ingress device is not ifindex pass untouched: the program is
 * also attached to the loopback device, to keep it in the kernel's XDP
 * dispatcher (see liveSender), and must leave loopback traffic alone.
 *
 * The length too: a device that shortened a frame in place (a SYN proxy
 * turning a SYN into its SYN-ACK) leaves the page's xdp_frame with the
 * shorter length, which the kernel keeps as long as the program leaves the
 * context as it found it. liveSender's input has a byte to spare, which
 * the program cuts every time: the context changed, the kernel makes the
 * frame anew from it, at frame_len. */
SEC("xdp")
int pktgen_gen(struct xdp_md *ctx)
{
	if (ctx->ingress_ifindex != cfg.ifindex)
		return XDP_PASS;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 len = end - data;
	if (len != cfg.frame_len) {
		if (bpf_xdp_adjust_tail(ctx, (int)cfg.frame_len - (int)len))
			return XDP_ABORTED;
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
	}
	if (!NEED(data, cfg.frame_len, end))
		return XDP_ABORTED;
	__u32 key = 0;
	struct gen_state *st = bpf_map_lookup_elem(&pktgen_state, &key);
	if (!st)
		return XDP_ABORTED;
	/* One runner at a time (BPF_PROG_RUN on one thread), so a plain
	 * increment suffices; user space only reads. */
	st->sent++;
	copy_headers(data);
	if (cfg.flows <= 1)
		return XDP_TX;

	/* 64-bit arithmetic throughout: the values are below 2^32 and the
	 * sums below 2^18, and nothing needs truncating to 32 bits. */
	__u64 a = st->addr, p = st->port;
	__u64 port = cfg.base_port + p;
	*(__be16 *)(data + SPORT_OFF) = bpf_htons(port);
	__u64 sum = cfg.l4_sum + port;
	if (cfg.addrs > 1) {
		__u64 addr = cfg.base_addr + a;
		*(__be32 *)(data + IP_SRC_OFF) = bpf_htonl(addr);
		__u64 halves = (addr >> 16) + (addr & 0xffff);
		sum += halves;
		*(__be16 *)(data + IP_CSUM_OFF) = bpf_htons(csum16(cfg.ip_sum + halves));
	} else {
		/* One address, the template's, already in place. */
		sum += cfg.base_addr_sum;
	}
	if (cfg.udp) {
		/* Zero means no checksum: UDP sends 0xffff, the other zero. */
		__u64 csum = csum16(sum);
		*(__be16 *)(data + UDP_CSUM_OFF) = bpf_htons(csum ? csum : 0xffff);
	} else {
		*(__be16 *)(data + TCP_CSUM_OFF) = bpf_htons(csum16(sum));
	}

	/* Step the cursor as flowCursor.next does. */
	__u64 f = st->flow + 1ULL;
	if (f == cfg.flows) {
		st->flow = 0;
		st->addr = 0;
		st->port = 0;
		return XDP_TX;
	}
	st->flow = f;
	if (++a == cfg.addrs) {
		st->addr = 0;
		st->port = p + 1;
	} else {
		st->addr = a;
	}
	return XDP_TX;
}

/* unicast reports whether the frame at data holds an Ethernet header with
 * a unicast destination. Multicast and broadcast frames (the kernel's own
 * IPv6 neighbour discovery, ARP) go to the kernel uncounted: they are not
 * the traffic measured, and one stray router solicitation before the
 * traffic would stretch the first-to-last span a rate is computed over. */
XVS_INLINE int unicast(void *data, void *end)
{
	return NEED(data, ETH_HLEN, end) && !(*(__u8 *)data & 1);
}

/* count_frame counts a unicast frame and its bytes, with the times of the
 * first and the latest, and returns action; after swapping the MAC
 * addresses when swap is set. */
XVS_INLINE int count_frame(struct xdp_md *ctx, int swap, int action)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (!unicast(data, end))
		return XDP_PASS;
	if (swap) {
		__u32 d0 = *(__u32 *)data, s0 = *(__u32 *)(data + 6);
		__u16 d1 = *(__u16 *)(data + 4), s1 = *(__u16 *)(data + 10);
		*(__u32 *)data = s0;
		*(__u16 *)(data + 4) = s1;
		*(__u32 *)(data + 6) = d0;
		*(__u16 *)(data + 10) = d1;
	}
	__u32 key = 0;
	struct count_value *v = bpf_map_lookup_elem(&pktgen_cnt, &key);
	if (!v)
		return action;
	/* Per-CPU value, and XDP runs with migration off: no atomics. */
	__u64 n = v->packets + 1;
	v->packets = n;
	v->bytes += end - data;
	if (n == 1 || !(n & (STAMP_EVERY - 1))) {
		__u64 now = bpf_ktime_get_ns();
		if (n == 1)
			v->first = now;
		v->last = now;
		v->stamped = n;
	}
	return action;
}

/* pktgen_count is the sink. */
SEC("xdp")
int pktgen_count(struct xdp_md *ctx)
{
	return count_frame(ctx, 0, XDP_DROP);
}

/* pktgen_refl is the reflector. */
SEC("xdp")
int pktgen_refl(struct xdp_md *ctx)
{
	return count_frame(ctx, 1, XDP_TX);
}

/* pktgen_steer redirects every unicast frame to the AF_XDP socket of its RX
 * queue, and hands it to the kernel when that queue has none. Multicast and
 * broadcast go to the kernel, as in count_frame. */
SEC("xdp")
int pktgen_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (!unicast(data, end))
		return XDP_PASS;
	return bpf_redirect_map(&pktgen_xsks, ctx->rx_queue_index, XDP_PASS);
}
