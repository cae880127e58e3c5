/* The deterministic test stream: bytes from a seed, for checking large transfers end to end
 * without storing them (both sides generate or hash the same bytes). Not cryptographic. */
#ifndef CFL_UTIL_TESTSTREAM_H
#define CFL_UTIL_TESTSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct cfl__tstream {
	uint64_t state;
	uint64_t left; /* bytes still to produce */
};

static inline void cfl__tstream_init(struct cfl__tstream *s, uint64_t seed, uint64_t len)
{
	s->state = seed ^ 0x9e3779b97f4a7c15ull;
	s->left = len;
}

/* splitmix64: fast, and every 8-byte word differs, so a shifted or repeated chunk shows. */
static inline uint64_t cfl__tstream_next(struct cfl__tstream *s)
{
	uint64_t z = (s->state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Fills buf with the next min(len, left) bytes; returns how many. Lengths that are not a
 * multiple of 8 are only allowed for the final piece. */
static inline size_t cfl__tstream_fill(struct cfl__tstream *s, uint8_t *buf, size_t len)
{
	size_t n = len < s->left ? len : (size_t)s->left, i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w = cfl__tstream_next(s);

		memcpy(buf + i, &w, 8);
	}
	if (i < n) {
		uint64_t w = cfl__tstream_next(s);

		memcpy(buf + i, &w, n - i);
	}
	s->left -= n;
	return n;
}

#endif
