/* The seeded PRNG of the data splits and the trainer: SplitMix64 (Steele, Lea, Flood,
 * "Fast splittable pseudorandom number generators", OOPSLA 2014). One 64-bit state, full
 * period 2^64, good enough statistically for shuffles and weight initialisation, and the same
 * stream on every machine, which is what makes splits and training reproducible by seed.
 * Not for anything secret. Plain values on the caller's stack; static inline. */
#ifndef CFL_FL_RNG_H
#define CFL_FL_RNG_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

struct cfl__rng {
	uint64_t s;
};

/* SplitMix64's output function: a bijective 64-bit mixer. */
static inline uint64_t cfl__rng_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* Seeds `r` from `seed` and a `stream` number, so that one user seed yields independent
 * streams for distinct purposes (a class, an epoch). Both are hashed: SplitMix64 states that
 * differ by a multiple of its increment would give the same stream shifted, which related
 * seeds (1, 2, 3...) must not. */
static inline void cfl__rng_seed(struct cfl__rng *r, uint64_t seed, uint64_t stream)
{
	r->s = cfl__rng_mix(seed ^ cfl__rng_mix(stream + 0x9e3779b97f4a7c15u));
}

static inline uint64_t cfl__rng_next(struct cfl__rng *r)
{
	return cfl__rng_mix(r->s += 0x9e3779b97f4a7c15u);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double cfl__rng_double(struct cfl__rng *r)
{
	return (double)(cfl__rng_next(r) >> 11) * 0x1p-53;
}

/* Uniform in (0, 1]: safe to take the logarithm of. */
static inline double cfl__rng_double_pos(struct cfl__rng *r)
{
	return ((double)(cfl__rng_next(r) >> 11) + 1.0) * 0x1p-53;
}

/* Uniform in [0, k) for 0 < k <= 2^32; the modulo bias (k / 2^64) is negligible here. */
static inline size_t cfl__rng_below(struct cfl__rng *r, size_t k)
{
	return (size_t)(cfl__rng_next(r) % (uint64_t)k);
}

/* Standard normal by the Box-Muller transform (one of the pair; the other is dropped so that
 * the stream has no hidden state). */
static inline double cfl__rng_normal(struct cfl__rng *r)
{
	double u = cfl__rng_double_pos(r), v = cfl__rng_double(r);

	return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Fisher-Yates shuffle of idx[0..n). */
static inline void cfl__rng_shuffle(struct cfl__rng *r, size_t *idx, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = cfl__rng_below(r, i), t = idx[i - 1];

		idx[i - 1] = idx[j];
		idx[j] = t;
	}
}

#endif
