/* Noise for the privacy filters: uniform, Gaussian and Laplace numbers from OpenSSL's CSPRNG
 * (cfl_random), and the order statistic the percentile and SVT filters need.
 *
 * The noise of a filter is as secret as the update it hides: whoever learns it can subtract it.
 * So it comes from the CSPRNG, never from a seeded generator, and the block it was drawn from
 * is wiped when the filter is done. */
#include "privacy/privacy_int.h"

#include "cfl/digest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void cfl__priv_rng_init(struct priv_rng *r)
{
	memset(r, 0, sizeof(*r));
	r->pos = sizeof(r->buf);
}

void cfl__priv_rng_release(struct priv_rng *r)
{
	cfl_wipe(r, sizeof(*r));
}

static uint64_t next_u64(struct priv_rng *r)
{
	uint64_t v;

	if (r->pos + sizeof(v) > sizeof(r->buf)) {
		if (cfl_random(r->buf, sizeof(r->buf)) != 0) {
			memset(r->buf, 0, sizeof(r->buf));
			r->err = CFL_ECRYPTO;
		}
		r->pos = 0;
	}
	memcpy(&v, r->buf + r->pos, sizeof(v));
	r->pos += sizeof(v);
	return v;
}

/* 53 random bits, plus one so that 0 never comes out: log() of it is always finite. */
double cfl__priv_uniform(struct priv_rng *r)
{
	return (double)((next_u64(r) >> 11) + 1) * 0x1p-53;
}

/* Rejection keeps every value equally likely (a plain modulo favours the small ones). */
uint64_t cfl__priv_below(struct priv_rng *r, uint64_t n)
{
	uint64_t limit = UINT64_MAX - UINT64_MAX % n, v;

	do
		v = next_u64(r);
	while (v >= limit && r->err == 0);
	return v % n;
}

/* Box–Muller: two independent N(0, 1) from two uniforms; the second is kept for next time. */
double cfl__priv_gauss(struct priv_rng *r)
{
	const double two_pi = 6.283185307179586476925286766559;
	double u1, u2, rad;

	if (r->has_spare) {
		r->has_spare = 0;
		return r->spare;
	}
	u1 = cfl__priv_uniform(r);
	u2 = cfl__priv_uniform(r);
	rad = sqrt(-2.0 * log(u1));
	r->spare = rad * sin(two_pi * u2);
	r->has_spare = 1;
	return rad * cos(two_pi * u2);
}

/* The difference of two Exp(1) variables is Laplace(0, 1). */
double cfl__priv_laplace(struct priv_rng *r, double b)
{
	double e1 = -log(cfl__priv_uniform(r));
	double e2 = -log(cfl__priv_uniform(r));

	return b * (e1 - e2);
}

static int cmp_double(const void *pa, const void *pb)
{
	double a = *(const double *)pa, b = *(const double *)pb;

	return (a > b) - (a < b);
}

static void swap(double *a, size_t i, size_t j)
{
	double t = a[i];

	a[i] = a[j];
	a[j] = t;
}

/* Quickselect with a median-of-three pivot, linear on average. The values are a site's own
 * training result, not an adversary's, but a fuzzer or bad luck can still find the quadratic
 * case: past 2·log2(n) rounds the rest is sorted instead (introselect), so n log n at worst. */
double cfl__priv_select(double *a, size_t n, size_t k)
{
	size_t lo = 0, hi = n - 1, budget = 2;

	for (size_t m = n; m > 1; m >>= 1)
		budget += 2;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2, i, store;
		double pivot;

		if (budget-- == 0) {
			qsort(a + lo, hi - lo + 1, sizeof(*a), cmp_double);
			break;
		}
		if (a[mid] < a[lo])
			swap(a, mid, lo);
		if (a[hi] < a[lo])
			swap(a, hi, lo);
		if (a[hi] < a[mid])
			swap(a, hi, mid);
		pivot = a[mid];
		swap(a, mid, hi);
		/* Equal keys split both ways, or runs of one value would make each round remove
		 * a single element. */
		store = lo;
		for (i = lo; i < hi; i++) {
			if (a[i] < pivot || (a[i] == pivot && (i & 1) != 0))
				swap(a, i, store++);
		}
		swap(a, store, hi);
		if (k == store)
			return a[k];
		if (k < store)
			hi = store - 1;
		else
			lo = store + 1;
	}
	return a[k];
}
