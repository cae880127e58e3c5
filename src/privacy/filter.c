/* Running a scope's result filters: the difference from the global model, ExcludeVars,
 * PercentilePrivacy and GaussianPrivacy (SVTPrivacy is in svt.c), and the way back.
 *
 * result (weights or diff) → checked against global → difference, in place → filters, in
 * order → result in the form it came (excluded tensors copied from global, bit for bit). */
#include "privacy/privacy_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- ExcludeVars ----------------------------------------------------------------------------- */

static int excluded_by(const struct priv_exclude *f, const char *name)
{
	if (f->has_re)
		return regexec(&f->re, name, 0, NULL, 0) == 0;
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->names[i], name) == 0)
			return 1;
	}
	return 0;
}

/* FLARE drops the tensor from the result and its server averages each tensor over the sites
 * that sent it. cfl's FedAvg takes whole models, so "not sent" is a zero difference: the site
 * reports the global model's values for it. When every site excludes a tensor it stays as the
 * global model had it, bit for bit; when only some do, they pull its average towards the old
 * value (docs/privacy.md). */
void cfl__priv_exclude(const struct priv_exclude *f, struct priv_work *w)
{
	for (size_t i = 0; i < w->n; i++) {
		struct priv_tensor *t = &w->t[i];

		if (t->excluded || !excluded_by(f, t->name))
			continue;
		t->excluded = 1;
		w->values -= t->count;
		if (t->count > 0)
			memset(t->d, 0, t->count * sizeof(*t->d));
	}
}

/* --- PercentilePrivacy ----------------------------------------------------------------------- */

/* The q-th percentile of n values with linear interpolation between the closest ranks (numpy's
 * default, which FLARE uses). Reorders a. */
static double percentile_of(double *a, size_t n, double q)
{
	double h = (double)(n - 1) * q / 100.0, lo_v, hi_v;
	size_t lo = (size_t)h;

	if (lo >= n - 1)
		return cfl__priv_select(a, n, n - 1);
	lo_v = cfl__priv_select(a, n, lo);
	/* After the selection everything past lo is >= a[lo]: the next rank is their minimum. */
	hi_v = a[lo + 1];
	for (size_t i = lo + 2; i < n; i++)
		hi_v = a[i] < hi_v ? a[i] : hi_v;
	return lo_v + (hi_v - lo_v) * (h - (double)lo);
}

/* Shokri & Shmatikov (CCS 2015), as FLARE's PercentilePrivacy: entries whose absolute value is
 * below the percentile of all absolute values are not shared (set to 0), the rest are clipped
 * to [-gamma, gamma]. */
int cfl__priv_percentile(const struct priv_percentile *f, struct priv_work *w, struct cfl_err *e)
{
	double *abs_d, cutoff, g = f->gamma;
	size_t k = 0;

	if (w->values == 0)
		return 0;
	abs_d = malloc(w->values * sizeof(*abs_d));
	if (abs_d == NULL)
		return cfl_err_set(e, CFL_ENOMEM,
		                   "percentile privacy: out of memory for %zu values", w->values);
	for (size_t i = 0; i < w->n; i++) {
		for (size_t j = 0; !w->t[i].excluded && j < w->t[i].count; j++)
			abs_d[k++] = fabs((double)w->t[i].d[j]);
	}
	cutoff = percentile_of(abs_d, k, f->percentile); /* k == w->values */
	free(abs_d);
	for (size_t i = 0; i < w->n; i++) {
		for (size_t j = 0; !w->t[i].excluded && j < w->t[i].count; j++) {
			double v = w->t[i].d[j];

			v = fabs(v) < cutoff ? 0.0 : v > g ? g : v < -g ? -g : v;
			w->t[i].d[j] = (float)v;
		}
	}
	return 0;
}

/* --- GaussianPrivacy ------------------------------------------------------------------------- */

/* The Gaussian mechanism on a clipped update (as in DP-FedAvg, McMahan et al., ICLR 2018):
 * scale the difference so that its L2 norm over all tensors is at most C, then add
 * N(0, (z·C)²) to every entry. With z = 0 only the clipping is done and no noise is drawn. */
void cfl__priv_gaussian(const struct priv_gaussian *f, struct priv_work *w, struct priv_rng *r)
{
	double sum = 0, norm, scale = 1, sigma = f->noise_multiplier * f->clip_norm;

	for (size_t i = 0; i < w->n; i++) {
		for (size_t j = 0; !w->t[i].excluded && j < w->t[i].count; j++)
			sum += (double)w->t[i].d[j] * w->t[i].d[j];
	}
	norm = sqrt(sum);
	if (norm > f->clip_norm)
		scale = f->clip_norm / norm;
	for (size_t i = 0; i < w->n; i++) {
		for (size_t j = 0; !w->t[i].excluded && j < w->t[i].count; j++) {
			double v = w->t[i].d[j];

			if (scale != 1)
				v *= scale;
			if (sigma > 0)
				v += sigma * cfl__priv_gauss(r);
			w->t[i].d[j] = (float)v;
		}
	}
}

/* --- the pipeline ---------------------------------------------------------------------------- */

static int all_finite(const struct cfl_model *m, const char *which, struct cfl_err *e)
{
	for (size_t i = 0; i < m->n; i++) {
		for (size_t j = 0; j < m->t[i].count; j++) {
			if (!isfinite(m->t[i].data[j]))
				return cfl_err_set(
				        e, CFL_EINVAL,
				        "%s tensor '%s' holds a value that is not finite", which,
				        m->t[i].name);
		}
	}
	return 0;
}

/* The global tensor of each result tensor, by name, into g[]. Same order is the usual case. */
static int pair(const struct cfl_model *global, const struct cfl_model *result,
                const struct cfl_tensor **g, struct cfl_err *e)
{
	if (result->n != global->n)
		return cfl_err_set(e, CFL_EINVAL,
		                   "the result has %zu tensors, the global model %zu", result->n,
		                   global->n);
	for (size_t i = 0; i < result->n; i++) {
		const struct cfl_tensor *t = &result->t[i];

		g[i] = strcmp(global->t[i].name, t->name) == 0 ? &global->t[i]
		                                               : cfl_model_find(global, t->name);
		if (g[i] == NULL)
			return cfl_err_set(e, CFL_EINVAL,
			                   "result tensor '%s' is not in the global model",
			                   t->name);
		if (g[i]->count != t->count)
			return cfl_err_set(
			        e, CFL_EINVAL,
			        "tensor '%s' has %zu values in the result, %zu in the global "
			        "model",
			        t->name, t->count, g[i]->count);
	}
	return 0;
}

static int run_filters(const struct cfl_privacy_scope *s, struct priv_work *w, struct cfl_err *e)
{
	struct priv_rng rng;
	int rc = 0;

	cfl__priv_rng_init(&rng);
	for (size_t i = 0; i < s->n && rc == 0; i++) {
		const struct priv_filter *f = &s->f[i];

		switch (f->kind) {
		case PRIV_EXCLUDE:
			cfl__priv_exclude(&f->u.ex, w);
			break;
		case PRIV_PERCENTILE:
			rc = cfl__priv_percentile(&f->u.pct, w, e);
			break;
		case PRIV_SVT:
			rc = cfl__priv_svt(&f->u.svt, w, &rng, e);
			break;
		case PRIV_GAUSSIAN:
			cfl__priv_gaussian(&f->u.gauss, w, &rng);
			break;
		default:
			rc = cfl_err_set(e, CFL_EINVAL, "unknown filter kind %d", (int)f->kind);
			break;
		}
	}
	if (rc == 0 && rng.err != 0)
		rc = cfl_err_set(e, CFL_ECRYPTO, "no random numbers for the privacy noise");
	cfl__priv_rng_release(&rng);
	return rc;
}

/* Back to the form the result came in; a value that overflows (a weight near FLT_MAX plus
 * noise) fails the result rather than send an infinity. */
static int restore(const struct cfl_model *result, const struct cfl_tensor **g,
                   const struct priv_work *w, int result_is_diff, struct cfl_err *e)
{
	for (size_t i = 0; i < result->n; i++) {
		const struct cfl_tensor *t = &result->t[i];

		if (!result_is_diff && w->t[i].excluded && t->count > 0)
			memcpy(t->data, g[i]->data, t->count * sizeof(*t->data));
		for (size_t j = 0; !w->t[i].excluded && j < t->count; j++) {
			if (!result_is_diff)
				t->data[j] = g[i]->data[j] + t->data[j];
			if (!isfinite(t->data[j]))
				return cfl_err_set(e, CFL_EINVAL,
				                   "filtered tensor '%s' overflows the float range",
				                   t->name);
		}
	}
	return 0;
}

int cfl_privacy_filter_result(const struct cfl_privacy_scope *s, const struct cfl_model *global,
                              struct cfl_model *result, int result_is_diff, struct cfl_err *e)
{
	const struct cfl_tensor **g = NULL;
	struct priv_work w = {NULL, 0, 0};
	int rc;

	if (s == NULL || (s->n == 0 && s->problem == NULL))
		return 0;
	if (s->problem != NULL)
		return cfl_err_set(e, CFL_EPERM, "scope '%s' is invalid: %s", s->name, s->problem);
	g = calloc(result->n + 1, sizeof(*g));
	w.t = calloc(result->n + 1, sizeof(*w.t));
	if (g == NULL || w.t == NULL) {
		rc = cfl_err_set(e, CFL_ENOMEM, "privacy filters: out of memory");
		goto out;
	}
	if ((rc = pair(global, result, g, e)) != 0 || (rc = all_finite(global, "global", e)) != 0 ||
	    (rc = all_finite(result, "result", e)) != 0)
		goto out;
	w.n = result->n;
	for (size_t i = 0; i < result->n; i++) {
		struct cfl_tensor *t = &result->t[i];

		w.t[i] = (struct priv_tensor){t->name, t->data, t->count, 0};
		w.values += t->count;
		for (size_t j = 0; !result_is_diff && j < t->count; j++) {
			t->data[j] -= g[i]->data[j];
			/* Two finite weights can still be an infinite difference (3e38 - -3e38). */
			if (!isfinite(t->data[j])) {
				rc = cfl_err_set(
				        e, CFL_EINVAL,
				        "tensor '%s' differs from the global model by more "
				        "than the float range",
				        t->name);
				goto out;
			}
		}
	}
	if ((rc = run_filters(s, &w, e)) != 0)
		goto out;
	rc = restore(result, g, &w, result_is_diff, e);
out:
	free(g);
	free(w.t);
	return rc;
}
