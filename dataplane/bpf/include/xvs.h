/* Common definitions of xvs's BPF programs: types, byte order, the bounds
 * check every packet access needs, and per-CPU counters.
 *
 * SPDX-License-Identifier: (MIT OR GPL-2.0-only)
 */
#ifndef XVS_H
#define XVS_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define XVS_INLINE static __always_inline

/* ICMP and ICMPv6 (linux/icmp.h pulls in libc headers). */
struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest;
};
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3
#define ICMPV6_PARAMPROB 4

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

#define VLAN_HLEN 4
/* Ethernet and at most two VLAN tags (802.1ad outer, 802.1Q inner). */
#define MAX_VLAN_TAGS 2
#define MAX_L2_LEN (ETH_HLEN + MAX_VLAN_TAGS * VLAN_HLEN)

#define IPV4_FRAG_MASK 0x3fff   /* MF and the fragment offset */
#define IPV4_OFFSET_MASK 0x1fff /* the fragment offset alone */

/* NEED is true when n bytes from p lie inside the frame. Every packet
 * access must be dominated by such a check on the same path: the verifier
 * rejects the program otherwise. */
#define NEED(p, n, end) ((void *)(p) + (n) <= (void *)(end))

/* A per-CPU array of __u64 counters. XDP runs with migration disabled, so a
 * plain add is exact. */
#define XVS_COUNTERS(name, n)                                                  \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                       \
		__uint(max_entries, n);                                        \
		__type(key, __u32);                                            \
		__type(value, __u64);                                          \
	} name SEC(".maps")

XVS_INLINE void count(void *counters, __u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(counters, &idx);
	if (c)
		*c += 1;
}

XVS_INLINE void count_n(void *counters, __u32 idx, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(counters, &idx);
	if (c)
		*c += n;
}

#endif /* XVS_H */
