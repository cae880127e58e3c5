/* libFuzzer target for a site's privacy policy (src/privacy/): local/privacy.json read by
 * cfl_privacy_load_mem, a job's scope resolved, and that scope's result filters run on a small
 * model.
 *
 * Input: the file's text; optionally a NUL, then a settings byte (bit 0: the result is a
 * difference, not weights; the rest picks the job's scope: none, one of the file's, or one it
 * does not define), then the values of the global model and of the result as raw float32 (11
 * each; missing ones follow a fixed pattern). The model: conv.w [2,3], conv.b [2],
 * private_emb [2], fc [] (a scalar).
 *
 * Loading, resolving and filtering must never crash, leak or hang, and must keep the header's
 * promises: a failed load names the file and returns no policy; validation fails exactly when
 * a scope has a problem; a refused job gets a reason and no scope; a filtered result keeps its
 * tensors and, when the scope has filters, holds only finite values; after a PercentilePrivacy or
 * SVTPrivacy last, every difference is within ±gamma, and after a GaussianPrivacy without noise
 * last, its norm is at most clip_norm (both checked on differences, where no rounding of the
 * weights blurs them). Any broken promise aborts, which libFuzzer reports as a crash. */
#include "cfl/err.h"
#include "cfl/log.h"
#include "cfl/model.h"
#include "cfl/privacy.h"
#include "privacy/privacy_int.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NAME   "privacy.json"
#define VALUES 11

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static struct cfl_model *model_from(const uint8_t *raw, size_t len, float bias)
{
	static const char *const names[] = {"conv.w", "conv.b", "private_emb", "fc"};
	static const int64_t shapes[][2] = {{2, 3}, {2, 0}, {2, 0}, {0, 0}};
	static const int ndims[] = {2, 1, 1, 0};
	float v[VALUES];
	struct cfl_model *m = NULL;

	for (size_t i = 0; i < VALUES; i++) {
		if ((i + 1) * sizeof(float) <= len)
			memcpy(&v[i], raw + i * sizeof(float), sizeof(float));
		else
			v[i] = bias + (float)((int)(i % 5) - 2) * 0.125f;
	}
	check(cfl_model_new(&m) == 0);
	for (size_t i = 0, k = 0; i < 4; i++) {
		check(cfl_model_add(m, names[i], shapes[i], ndims[i], v + k) == 0);
		k += m->t[i].count;
	}
	return m;
}

/* The job's scope: none, the i-th of the file's, or one the file does not define. */
static const char *job_scope(const struct cfl_privacy *p, unsigned pick)
{
	size_t n = cfl_privacy_scope_count(p);

	pick %= (unsigned)n + 2;
	if (pick == 0)
		return NULL;
	if (pick == n + 1)
		return "not-a-scope-of-this-site";
	return cfl_privacy_scope_name(cfl_privacy_scope_at(p, pick - 1));
}

static void check_last_filter(const struct cfl_privacy_scope *s, const struct cfl_model *r)
{
	const struct priv_filter *f = &s->f[s->n - 1];
	double gamma = 0, sum = 0;

	if (f->kind == PRIV_PERCENTILE || f->kind == PRIV_SVT)
		gamma = f->kind == PRIV_PERCENTILE ? f->u.pct.gamma : f->u.svt.gamma;
	for (size_t i = 0; i < r->n; i++) {
		for (size_t j = 0; j < r->t[i].count; j++) {
			float d = r->t[i].data[j];

			check(gamma == 0 || fabsf(d) <= (float)gamma);
			sum += (double)d * d;
		}
	}
	if (f->kind == PRIV_GAUSSIAN && f->u.gauss.noise_multiplier == 0)
		check(sqrt(sum) <= f->u.gauss.clip_norm * (1 + 1e-6));
}

static void filter(const struct cfl_privacy_scope *s, const uint8_t *raw, size_t len, int is_diff)
{
	struct cfl_model *g = model_from(raw, len, 1.0f);
	struct cfl_model *r =
	        model_from(len > VALUES * sizeof(float) ? raw + VALUES * sizeof(float) : NULL,
	                   len > VALUES * sizeof(float) ? len - VALUES * sizeof(float) : 0,
	                   is_diff ? 0.5f : 1.5f);
	struct cfl_err e = {0};
	int rc = cfl_privacy_filter_result(s, g, r, is_diff, &e);

	check(r->n == 4 && r->t[0].count == 6 && r->t[3].count == 1);
	/* A scope without filters leaves the result as it is, not finite values included. */
	if (rc == 0 && s != NULL && s->n > 0) {
		for (size_t i = 0; i < r->n; i++) {
			for (size_t j = 0; j < r->t[i].count; j++)
				check(isfinite(r->t[i].data[j]));
		}
		if (is_diff)
			check_last_filter(s, r);
	} else if (rc != 0) {
		check((rc == CFL_EINVAL || rc == CFL_ENOMEM || rc == CFL_ECRYPTO) && e.code == rc &&
		      e.msg[0] != '\0');
	}
	cfl_model_free(g);
	cfl_model_free(r);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cfl_log_set_level(CFL_LOG_ERROR);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t text_len = nul != NULL ? (size_t)(nul - data) : size;
	const uint8_t *rest = nul != NULL ? nul + 1 : data + size;
	size_t rest_len = size - (size_t)(rest - data), bad = 0;
	struct cfl_privacy *p = (struct cfl_privacy *)&p;
	struct cfl_privacy_scope *s = (struct cfl_privacy_scope *)&s;
	struct cfl_err e = {0};
	unsigned settings = rest_len > 0 ? rest[0] : 0;
	char why[256];
	int rc;

	rc = cfl_privacy_load_mem((const char *)data, text_len, NAME, &p, &e);
	if (rc != 0) {
		check(rc < 0 && e.code == rc && p == NULL && strstr(e.msg, "'" NAME "'") != NULL);
		return 0;
	}
	check(p != NULL);
	for (size_t i = 0; i < cfl_privacy_scope_count(p); i++)
		bad += cfl_privacy_scope_problem(cfl_privacy_scope_at(p, i)) != NULL;
	check((cfl_privacy_validate(p, &e) == 0) == (bad == 0));

	rc = cfl_privacy_scope(p, job_scope(p, settings >> 1), &s, why, sizeof(why));
	if (rc != 0) {
		check(rc == CFL_EPERM && s == NULL && why[0] != '\0');
	} else {
		check(s == NULL || cfl_privacy_scope_problem(s) == NULL);
		filter(s, rest_len > 0 ? rest + 1 : rest, rest_len > 0 ? rest_len - 1 : 0,
		       (int)(settings & 1));
	}
	/* The scope outlives the policy. */
	cfl_privacy_free(p);
	cfl_privacy_scope_free(s);
	return 0;
}
