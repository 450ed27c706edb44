/* One's complement checksum helpers (RFC 1071, RFC 1624) for xvs's BPF
 * programs. Sums are kept unfolded in 32 or 64 bits and folded at the end.
 *
 * SPDX-License-Identifier: (MIT OR GPL-2.0-only)
 */
#ifndef XVS_CSUM_H
#define XVS_CSUM_H

#include "xvs.h"

/* csum_fold folds a 32-bit one's complement sum to 16 bits with
 * end-around carry (not complemented). */
XVS_INLINE __u16 csum_fold32(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* csum_fold64 folds a 64-bit sum of 16-bit words. */
XVS_INLINE __u16 csum_fold64(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	return csum_fold32((__u32)sum);
}

/* csum_replace returns checksum csum (as stored: complemented, network
 * order) after 16-bit words summing to old were replaced by words summing
 * to new, by RFC 1624 equation 3: HC' = ~(~HC + ~m + m'). old and new are
 * unfolded sums of network-order words. */
XVS_INLINE __sum16 csum_replace(__sum16 csum, __u32 old, __u32 new)
{
	__u32 s = (__u16)~csum;
	s += (__u16)~csum_fold32(old);
	s += csum_fold32(new);
	return (__sum16)~csum_fold32(s);
}

/* csum_words sums the n 16-bit words at p, which the caller has checked
 * lie in the packet or on the stack. n must be a compile-time constant. */
#define csum_words(p, n)                                                       \
	({                                                                     \
		__u32 __s = 0;                                                 \
		const __u16 *__w = (const void *)(p);                          \
		_Pragma("unroll") for (int __i = 0; __i < (n); __i++) __s += __w[__i]; \
		__s;                                                           \
	})

/* ipv4_csum_ok reports whether the 20-byte IPv4 header at ip, without
 * options, carries a checksum that verifies. */
XVS_INLINE int ipv4_csum_ok(struct iphdr *ip)
{
	return csum_fold32(csum_words(ip, 10)) == 0xffff;
}

/* ipv4_csum returns the checksum of a 20-byte IPv4 header whose checksum
 * field is zero. */
XVS_INLINE __sum16 ipv4_csum(struct iphdr *ip)
{
	return (__sum16)~csum_fold32(csum_words(ip, 10));
}

#endif /* XVS_CSUM_H */
