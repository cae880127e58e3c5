/* SVTPrivacy: the sparse vector technique on the difference, with FLARE's arguments, defaults
 * and steps (nvflare.app_common.filters.svt_privacy; Lyu, Su & Li, VLDB 2017 for the technique).
 *
 * With d the difference (n entries), fraction f, epsilon ε, noise_var ε3, gamma γ, tau τ:
 *   k  = min(ceil(n·f), n)                 entries to share
 *   T  = τ + Lap(2γ/ε)                     a noisy threshold, drawn once
 *   λ  = 4γ·k / (ε·(2k)^(2/3))             the noise of each comparison
 *   passes: every entry not yet accepted is accepted when min(|d_i|, γ) + Lap(λ) >= T, with
 *           fresh noise each pass, until at least k are accepted
 *   k entries are drawn from the accepted ones (with replacement unless replace is false),
 *   each drawn entry becomes clip(d_i + Lap(2γ/ε3), -γ, γ), every other entry 0.
 *
 * The passes are not run one by one. Given T, entry i clears a pass with a probability p_i it
 * keeps every pass (its noise is fresh, its value fixed), so the pass on which it is accepted
 * is geometric: G_i = ceil(ln U / ln(1 - p_i)). The passes stop at K, the k-th smallest G_i,
 * and the accepted entries are those with G_i <= K: the same distribution as FLARE's loop, in
 * one pass over the values whatever the arguments, where the loop can run for ever when T is
 * out of reach (this fails instead). */
#include "privacy/privacy_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* P(c + Lap(b) >= T) for a value c: the Laplace tail beyond x = T - c. */
static double clear_prob(double x, double b)
{
	if (x == 0)
		return 0.5;
	return x < 0 ? 1.0 - 0.5 * exp(x / b) : 0.5 * exp(-x / b);
}

/* The pass on which an entry that clears each pass with probability p is accepted. */
static double pass_of(struct priv_rng *r, double p)
{
	double g;

	if (p >= 1)
		return 1;
	if (!(p > 0))
		return HUGE_VAL;
	g = ceil(log(cfl__priv_uniform(r)) / log1p(-p));
	return g < 1 ? 1 : g;
}

static void zero_all(struct priv_work *w)
{
	for (size_t i = 0; i < w->n; i++) {
		if (!w->t[i].excluded && w->t[i].count > 0)
			memset(w->t[i].d, 0, w->t[i].count * sizeof(*w->t[i].d));
	}
}

/* pass[i] of every value, by its clipped magnitude. */
static void draw_passes(const struct priv_svt *f, const struct priv_work *w, double threshold,
                        double b, struct priv_rng *r, double *pass)
{
	size_t k = 0;

	for (size_t i = 0; i < w->n; i++) {
		for (size_t j = 0; !w->t[i].excluded && j < w->t[i].count; j++) {
			double c = fmin(fabs((double)w->t[i].d[j]), f->gamma);

			pass[k++] = pass_of(r, clear_prob(threshold - c, b));
		}
	}
}

/* Marks the k drawn entries among the accepted ones (pass <= last) by setting their pass to 0
 * (a real pass is >= 1). Returns 0 or CFL_ENOMEM. */
static int draw_shared(const struct priv_svt *f, double *pass, size_t n, double last, size_t k,
                       struct priv_rng *r)
{
	size_t *acc = malloc(n * sizeof(*acc)), m = 0;

	if (acc == NULL)
		return CFL_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (pass[i] <= last)
			acc[m++] = i;
	}
	for (size_t t = 0; t < k; t++) {
		if (f->replace) {
			pass[acc[cfl__priv_below(r, m)]] = 0;
		} else {
			/* A partial Fisher–Yates shuffle: k distinct entries. */
			size_t j = t + (size_t)cfl__priv_below(r, m - t), tmp = acc[t];

			acc[t] = acc[j];
			acc[j] = tmp;
			pass[acc[t]] = 0;
		}
	}
	free(acc);
	return 0;
}

static void release(const struct priv_svt *f, struct priv_work *w, const double *pass, double b,
                    struct priv_rng *r)
{
	size_t k = 0;

	for (size_t i = 0; i < w->n; i++) {
		for (size_t j = 0; !w->t[i].excluded && j < w->t[i].count; j++) {
			double v = 0;

			if (pass[k++] == 0) {
				v = w->t[i].d[j] + cfl__priv_laplace(r, b);
				v = v > f->gamma ? f->gamma : v < -f->gamma ? -f->gamma : v;
			}
			w->t[i].d[j] = (float)v;
		}
	}
}

int cfl__priv_svt(const struct priv_svt *f, struct priv_work *w, struct priv_rng *r,
                  struct cfl_err *e)
{
	size_t n = w->values, k;
	double *pass = NULL, *sel = NULL, threshold, lambda, noise, last;
	int rc = 0;

	if (n == 0)
		return 0;
	k = (size_t)fmin(ceil((double)n * f->fraction), (double)n);
	if (k == 0) {
		zero_all(w);
		return 0;
	}
	threshold = f->tau + cfl__priv_laplace(r, f->gamma * 2.0 / f->epsilon);
	lambda = f->gamma * 4.0 * (double)k / (f->epsilon * pow(2.0 * (double)k, 2.0 / 3.0));
	noise = f->gamma * 2.0 / f->noise_var;
	if (!isfinite(threshold) || !isfinite(lambda) || !isfinite(noise))
		return cfl_err_set(
		        e, CFL_EINVAL,
		        "svt privacy: gamma %g is too large for epsilon %g and noise_var "
		        "%g (the noise is not finite)",
		        f->gamma, f->epsilon, f->noise_var);
	pass = malloc(n * sizeof(*pass));
	sel = malloc(n * sizeof(*sel));
	if (pass == NULL || sel == NULL) {
		rc = cfl_err_set(e, CFL_ENOMEM, "svt privacy: out of memory for %zu values", n);
		goto out;
	}
	draw_passes(f, w, threshold, lambda, r, pass);
	memcpy(sel, pass, n * sizeof(*sel));
	last = cfl__priv_select(sel, n, k - 1);
	free(sel);
	sel = NULL;
	if (!isfinite(last)) {
		rc = cfl_err_set(
		        e, CFL_EINVAL,
		        "svt privacy: the threshold tau %g is out of reach: fewer than %zu of "
		        "%zu values can ever pass it with gamma %g",
		        f->tau, k, n, f->gamma);
		goto out;
	}
	if (draw_shared(f, pass, n, last, k, r) != 0) {
		rc = cfl_err_set(e, CFL_ENOMEM, "svt privacy: out of memory for %zu values", n);
		goto out;
	}
	release(f, w, pass, noise, r);
out:
	free(pass);
	free(sel);
	return rc;
}
