/* SipHash-2-4 (Aumasson and Bernstein, 2012) over whole 64-bit words, for
 * the SYN cookies steer.c makes: the same function as internal/siphash's
 * Sum24, for messages the caller has already cut into little-endian words.
 *
 * SPDX-License-Identifier: (MIT OR GPL-2.0-only)
 */
#ifndef XVS_SIPHASH_H
#define XVS_SIPHASH_H

#include "xvs.h"

struct siphash {
	__u64 v0, v1, v2, v3;
};

XVS_INLINE __u64 rotl64(__u64 x, int b)
{
	return (x << b) | (x >> (64 - b));
}

XVS_INLINE void sipround(struct siphash *s)
{
	s->v0 += s->v1;
	s->v1 = rotl64(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = rotl64(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = rotl64(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = rotl64(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = rotl64(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = rotl64(s->v2, 32);
}

XVS_INLINE void siphash_init(struct siphash *s, __u64 k0, __u64 k1)
{
	s->v0 = k0 ^ 0x736f6d6570736575ULL;
	s->v1 = k1 ^ 0x646f72616e646f6dULL;
	s->v2 = k0 ^ 0x6c7967656e657261ULL;
	s->v3 = k1 ^ 0x7465646279746573ULL;
}

/* siphash_word compresses one 8-byte word of the message. */
XVS_INLINE void siphash_word(struct siphash *s, __u64 m)
{
	s->v3 ^= m;
	sipround(s);
	sipround(s);
	s->v0 ^= m;
}

/* siphash_final compresses the last word (the message's tail bytes, its
 * length in the top byte) and finalises. */
XVS_INLINE __u64 siphash_final(struct siphash *s, __u64 last)
{
	siphash_word(s, last);
	s->v2 ^= 0xff;
	sipround(s);
	sipround(s);
	sipround(s);
	sipround(s);
	return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

#endif /* XVS_SIPHASH_H */
