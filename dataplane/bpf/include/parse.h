/* Header walks shared by xvs's BPF programs.
 *
 * SPDX-License-Identifier: (MIT OR GPL-2.0-only)
 */
#ifndef XVS_PARSE_H
#define XVS_PARSE_H

#include "xvs.h"

/* struct l2 is what parse_l2 learns of a frame's link-layer header. */
struct l2 {
	void *l3;      /* the network header */
	__be16 proto;  /* its EtherType */
	__u16 len;     /* bytes of link-layer header: 14, 18 or 22 */
};

enum parse_result {
	PARSE_OK = 0,
	PARSE_SHORT,   /* the frame ends inside a header */
	PARSE_OTHER,   /* not IPv4 or IPv6 (ARP, a third VLAN tag, ...) */
};

/* parse_l2 walks Ethernet and up to two 802.1Q/802.1ad tags to an IPv4 or
 * IPv6 header. */
XVS_INLINE int parse_l2(void *data, void *end, struct l2 *l2)
{
	struct ethhdr *eth = data;
	if (!NEED(eth, ETH_HLEN, end))
		return PARSE_SHORT;
	void *cur = data + ETH_HLEN;
	__be16 proto = eth->h_proto;
	__u16 len = ETH_HLEN;
#pragma unroll
	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		/* A tag is its TCI, then the EtherType it encapsulates. */
		if (!NEED(cur, VLAN_HLEN, end))
			return PARSE_SHORT;
		proto = *(__be16 *)(cur + 2);
		cur += VLAN_HLEN;
		len += VLAN_HLEN;
	}
	if (proto != bpf_htons(ETH_P_IP) && proto != bpf_htons(ETH_P_IPV6))
		return PARSE_OTHER;
	l2->l3 = cur;
	l2->proto = proto;
	l2->len = len;
	return PARSE_OK;
}

/* ipv4_hlen returns the length of the IPv4 header at ip (which must hold
 * its first byte), or 0 when the version is not 4 or the IHL below 5. */
XVS_INLINE __u32 ipv4_hlen(struct iphdr *ip)
{
	__u8 vihl = *(__u8 *)ip;
	if ((vihl & 0xf0) != 0x40 || (vihl & 0x0f) < 5)
		return 0;
	return (vihl & 0x0f) * 4;
}

XVS_INLINE int ipv6_version_ok(struct ipv6hdr *ip6)
{
	return (*(__u8 *)ip6 & 0xf0) == 0x60;
}

#endif /* XVS_PARSE_H */
