/* Unit tests for a site's privacy result filters (src/privacy/) on small exact cases:
 * ExcludeVars by list and by expression (and through FedAvg), PercentilePrivacy, SVTPrivacy,
 * GaussianPrivacy (clipping alone with noise_multiplier 0, and the noise's measured spread over
 * 10^6 entries), weights and differences giving the same filtered difference, and models the
 * filters refuse. The fixture is in privacy_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "privacy_fixture.h"

/* --- ExcludeVars --------------------------------------------------------------------------- */

static const char *const names3[] = {"conv.w", "conv.b", "fc.w"};
static const size_t counts3[] = {3, 2, 2};

static void check_exclude(const char *filters, const int *gone)
{
	/* The global model has a -0.0: "bit for bit" must keep its sign. */
	const float gv[] = {1, 2, 3, -0.0f, 5, 6, 7};
	const float rv[] = {1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f, 7.5f};
	struct cfl_privacy *p = one_scope(filters);
	struct cfl_privacy_scope *s = scope_of(p, NULL);
	struct cfl_model *g = model_of(3, names3, counts3, gv),
	                 *r = model_of(3, names3, counts3, rv);
	struct cfl_model *d =
	        model_of(3, names3, counts3, (const float[]){.5f, .5f, .5f, 4.5f, .5f, .5f, .5f});
	struct cfl_err e = {0};

	assert_int_equal(cfl_privacy_filter_result(s, g, r, 0, &e), 0);
	assert_int_equal(cfl_privacy_filter_result(s, g, d, 1, &e), 0);
	for (size_t i = 0, k = 0; i < 3; i++) {
		for (size_t j = 0; j < counts3[i]; j++, k++) {
			if (gone[i]) {
				assert_memory_equal(&r->t[i].data[j], &g->t[i].data[j],
				                    sizeof(float));
				assert_true(d->t[i].data[j] == 0.0f && !signbit(d->t[i].data[j]));
			} else {
				assert_true(r->t[i].data[j] == rv[k]);
				assert_true(d->t[i].data[j] != 0.0f);
			}
		}
	}
	cfl_model_free(g);
	cfl_model_free(r);
	cfl_model_free(d);
	cfl_privacy_scope_free(s);
	cfl_privacy_free(p);
}

static void test_exclude_vars(void **state)
{
	(void)state;
	check_exclude("{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": [\"conv.b\"]}}",
	              (const int[]){0, 1, 0});
	check_exclude(
	        "{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": [\"conv\", \"x\"]}}",
	        (const int[]){0, 0, 0});
	/* An expression matches anywhere in the name (Python's re.search), unless anchored. */
	check_exclude("{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"^conv\\\\.\"}}",
	              (const int[]){1, 1, 0});
	check_exclude("{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"w\"}}",
	              (const int[]){1, 0, 1});
	check_exclude("{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": "
	              "\"^(conv|fc)\\\\.[bw]$\"}}",
	              (const int[]){1, 1, 1});
	check_exclude("{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": "
	              "\"^(conv|fc)\\\\.[[:alpha:]]{1,2}$\"}}",
	              (const int[]){1, 1, 1});
	check_exclude("{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"^w\"}}",
	              (const int[]){0, 0, 0});
}

/* What the choice is for: three sites exclude "conv.b" and add noise to the rest; FedAvg of
 * their results (as the server does it, weighted) keeps "conv.b" of the global model bit for
 * bit, while the other tensors move. (Not a -0.0: the aggregator's mean starts at +0.0, and
 * +0.0 + -0.0 is +0.0, so a -0.0 comes back as a +0.0, equal but not the same bits.) */
static void test_exclude_through_fedavg(void **state)
{
	const float gv[] = {0.1f, -0.2f, 0.3f, 1.17549435e-38f, -3.4e38f, 5, 6};
	struct cfl_privacy *p =
	        one_scope("{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"\\\\.b$\"}},"
	                  "{\"name\": \"GaussianPrivacy\", \"args\": {\"clip_norm\": 1, "
	                  "\"noise_multiplier\": "
	                  "0.5}}");
	struct cfl_privacy_scope *s = scope_of(p, NULL);
	struct cfl_model *g = model_of(3, names3, counts3, gv), *avg = NULL;
	struct cfl_agg *agg = NULL;
	struct cfl_err e = {0};

	(void)state;
	assert_int_equal(cfl_agg_new(g, &agg, &e), 0);
	for (int site = 0; site < 3; site++) {
		struct cfl_model *r = NULL;

		assert_int_equal(cfl_model_clone(g, &r), 0);
		for (size_t i = 0; i < 3; i++) {
			for (size_t j = 0; j < counts3[i]; j++)
				r->t[i].data[j] += 0.01f * (float)(site + 1) * (float)(j + 1);
		}
		assert_int_equal(cfl_privacy_filter_result(s, g, r, 0, &e), 0);
		assert_int_equal(cfl_agg_add_model(agg, r, 10.0 * (site + 1), &e), 0);
		cfl_model_free(r);
	}
	assert_int_equal(cfl_agg_result(agg, &avg, &e), 0);
	assert_memory_equal(cfl_model_find(avg, "conv.b")->data, cfl_model_find(g, "conv.b")->data,
	                    2 * sizeof(float));
	assert_true(memcmp(cfl_model_find(avg, "conv.w")->data, cfl_model_find(g, "conv.w")->data,
	                   3 * sizeof(float)) != 0);
	assert_true(memcmp(cfl_model_find(avg, "fc.w")->data, cfl_model_find(g, "fc.w")->data,
	                   2 * sizeof(float)) != 0);
	cfl_model_free(avg);
	cfl_agg_free(agg);
	cfl_model_free(g);
	cfl_privacy_scope_free(s);
	cfl_privacy_free(p);
}

/* Excluded tensors are out of every later filter: no noise on them, and not in the norm. */
static void test_exclude_then_others(void **state)
{
	const char *names[] = {"secret", "open"};
	const size_t counts[] = {2, 2};
	const float gv[] = {0.25f, -1, 0, 0}, dv[] = {100, -100, 0.375f, 0.5f};
	struct cfl_privacy *p =
	        one_scope("{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": [\"secret\"]}},"
	                  "{\"name\": \"GaussianPrivacy\", \"args\": {\"clip_norm\": 1, "
	                  "\"noise_multiplier\": "
	                  "0}},"
	                  "{\"name\": \"GaussianPrivacy\", \"args\": {\"clip_norm\": 100, "
	                  "\"noise_multiplier\": 1}}");
	struct cfl_privacy_scope *s = scope_of(p, NULL);
	struct cfl_model *g = model_of(2, names, counts, gv), *r = model_of(2, names, counts, NULL);
	struct cfl_err e = {0};

	(void)state;
	for (size_t i = 0; i < 4; i++)
		r->t[i / 2].data[i % 2] = gv[i] + dv[i];
	assert_int_equal(cfl_privacy_filter_result(s, g, r, 0, &e), 0);
	assert_memory_equal(r->t[0].data, g->t[0].data, 2 * sizeof(float));
	/* The open tensor got noise of sd 100: it moved, by more than its 0.625 norm allows. */
	assert_true(r->t[1].data[0] != 0.375f || r->t[1].data[1] != 0.5f);
	cfl_model_free(g);
	cfl_model_free(r);
	cfl_privacy_scope_free(s);
	cfl_privacy_free(p);

	/* Without the noise: "open" has norm 0.625 < 1 and is not clipped, though with "secret"
	 * the difference would have norm 141. */
	p = one_scope("{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": [\"secret\"]}},"
	              "{\"name\": \"GaussianPrivacy\", \"args\": {\"clip_norm\": 1, "
	              "\"noise_multiplier\": 0}}");
	s = scope_of(p, NULL);
	g = model_of(2, names, counts, gv);
	r = model_of(2, names, counts, dv);
	assert_int_equal(cfl_privacy_filter_result(s, g, r, 1, &e), 0);
	assert_floats(r->t[0].data, (const float[]){0, 0}, 2);
	assert_floats(r->t[1].data, (const float[]){0.375f, 0.5f}, 2);
	cfl_model_free(g);
	cfl_model_free(r);
	cfl_privacy_scope_free(s);
	cfl_privacy_free(p);
}

/* --- PercentilePrivacy --------------------------------------------------------------------- */

static void test_percentile(void **state)
{
	float d[] = {0.001f,  -0.002f, 0.003f, -0.004f, 0.005f, 0.006f,
	             -0.007f, 0.008f,  0.009f, -0.010f, 0.02f};
	const float want[] = {0,       -0.002f, 0.003f, -0.004f, 0.005f, 0.005f,
	                      -0.005f, 0.005f,  0.005f, -0.005f, 0.005f};
	float v[5];
	struct cfl_err e = {0};

	(void)state;
	/* 11 values, 10th percentile: rank (11-1)·0.1 = 1, the 2nd smallest |d|, 0.002. Below it
	 * 0; the rest clipped to ±0.005. */
	assert_int_equal(
	        filter_diff("{\"name\": \"PercentilePrivacy\", \"args\": {\"gamma\": 0.005}}", d,
	                    11, &e),
	        0);
	assert_floats(d, want, 11);

	/* Linear interpolation: the 30th percentile of 1..5 is 2 + 0.2·(3 - 2) = 2.2. */
	memcpy(v, (const float[]){5, -1, 3, 2, -4}, sizeof(v));
	assert_int_equal(
	        filter_diff("{\"name\": \"PercentilePrivacy\", \"args\": {\"percentile\": 30, "
	                    "\"gamma\": 10}}",
	                    v, 5, &e),
	        0);
	assert_floats(v, (const float[]){5, 0, 3, 0, -4}, 5);
	/* Percentile 0: the cutoff is the smallest |d|, and only values below it go: none. */
	memcpy(v, (const float[]){5, -1, 3, 2, -4}, sizeof(v));
	assert_int_equal(
	        filter_diff("{\"name\": \"PercentilePrivacy\", \"args\": {\"percentile\": 0, "
	                    "\"gamma\": 3}}",
	                    v, 5, &e),
	        0);
	assert_floats(v, (const float[]){3, -1, 3, 2, -3}, 5);
	/* Percentile 100: only the largest stays. Ties at the cutoff stay too. */
	memcpy(v, (const float[]){5, -1, -5, 2, -4}, sizeof(v));
	assert_int_equal(filter_diff("{\"name\": \"PercentilePrivacy\", \"args\": {\"percentile\": "
	                             "100, \"gamma\": 10}}",
	                             v, 5, &e),
	                 0);
	assert_floats(v, (const float[]){5, 0, -5, 0, 0}, 5);
	/* FLARE's defaults: percentile 10, gamma 0.01. */
	memcpy(v, (const float[]){0.5f, -0.001f, 0.003f, 0.002f, -0.02f}, sizeof(v));
	assert_int_equal(filter_diff("{\"name\": \"PercentilePrivacy\"}", v, 5, &e), 0);
	/* rank 0.4 between 0.001 and 0.002: cutoff 0.0014 */
	assert_floats(v, (const float[]){0.01f, 0, 0.003f, 0.002f, -0.01f}, 5);
}

/* The selection behind the percentile, on many values with many ties, against a sort. */
static void test_percentile_many(void **state)
{
	enum { N = 10007 };
	float *d = malloc(N * sizeof(*d)), *sorted = malloc(N * sizeof(*d));
	struct cfl_err e = {0};
	size_t zeros = 0;

	(void)state;
	assert_non_null(d);
	assert_non_null(sorted);
	for (size_t i = 0; i < N; i++)
		d[i] = (float)((i * 7919) % 101) * ((i & 1) ? 1 : -1);
	for (size_t i = 0; i < N; i++)
		sorted[i] = fabsf(d[i]);
	/* The 37th percentile by a plain count: rank 0.37·10006 = 3702.22 in sorted order. */
	for (size_t i = 1; i < N; i++) {
		float x = sorted[i];
		size_t j = i;

		for (; j > 0 && sorted[j - 1] > x; j--)
			sorted[j] = sorted[j - 1];
		sorted[j] = x;
	}
	double h = 0.37 * (N - 1), cut = sorted[3702] + (sorted[3703] - sorted[3702]) * (h - 3702);
	size_t want = 0;
	for (size_t i = 0; i < N; i++)
		want += fabsf(d[i]) < cut;
	assert_int_equal(filter_diff("{\"name\": \"PercentilePrivacy\", \"args\": {\"percentile\": "
	                             "37, \"gamma\": 1000}}",
	                             d, N, &e),
	                 0);
	for (size_t i = 0; i < N; i++)
		zeros += d[i] == 0;
	assert_int_equal(zeros, want);
	free(d);
	free(sorted);
}

/* --- SVTPrivacy ---------------------------------------------------------------------------- */

static void test_svt(void **state)
{
	enum { N = 10 };
	float d[N], big[1000];
	struct cfl_err e = {0};
	size_t nonzero = 0;

	(void)state;
	/* Everything shared (fraction 1, no replacement), with negligible noise: the difference
	 * clipped to ±gamma. */
	for (size_t i = 0; i < N; i++)
		d[i] = (float)i * 0.25f - 1.0f;
	assert_int_equal(
	        filter_diff("{\"name\": \"SVTPrivacy\", \"args\": {\"fraction\": 1, "
	                    "\"replace\": false, \"gamma\": 0.5, \"tau\": 0, \"epsilon\": 1e9, "
	                    "\"noise_var\": 1e12}}",
	                    d, N, &e),
	        0);
	for (size_t i = 0; i < N; i++) {
		float x = (float)i * 0.25f - 1.0f, want = x > 0.5f ? 0.5f : x < -0.5f ? -0.5f : x;

		assert_true(fabsf(d[i] - want) < 1e-9f);
	}

	/* The largest entries are the ones shared: with a sharp threshold (epsilon large) at tau
	 * 0.5, the three entries of 0.75 clear it and the small ones never do. */
	for (size_t i = 0; i < N; i++)
		d[i] = (i == 2 || i == 5 || i == 9) ? 0.75f : 0.01f;
	assert_int_equal(
	        filter_diff("{\"name\": \"SVTPrivacy\", \"args\": {\"fraction\": 0.3, "
	                    "\"replace\": false, \"gamma\": 1, \"tau\": 0.5, \"epsilon\": 1e9, "
	                    "\"noise_var\": 1e12}}",
	                    d, N, &e),
	        0);
	for (size_t i = 0; i < N; i++) {
		if (i == 2 || i == 5 || i == 9)
			assert_true(fabsf(d[i] - 0.75f) < 1e-9f);
		else
			assert_true(d[i] == 0.0f);
	}

	/* fraction 0: nothing shared. */
	for (size_t i = 0; i < N; i++)
		d[i] = 1;
	assert_int_equal(
	        filter_diff("{\"name\": \"SVTPrivacy\", \"args\": {\"fraction\": 0}}", d, N, &e),
	        0);
	for (size_t i = 0; i < N; i++)
		assert_true(d[i] == 0.0f);

	/* A threshold no value can reach: FLARE's loop would never end; here it fails. */
	assert_int_equal(
	        filter_diff("{\"name\": \"SVTPrivacy\", \"args\": {\"tau\": 1e6, \"gamma\": "
	                    "1, \"epsilon\": 1e9}}",
	                    d, N, &e),
	        CFL_EINVAL);
	assert_non_null(strstr(e.msg, "svt privacy: the threshold tau 1e+06 is out of reach: fewer "
	                              "than 1 of 10 values can ever pass it"));

	/* With replacement (FLARE's default) k draws from k accepted entries repeat some: about
	 * 1 - 1/e of them are distinct. */
	for (size_t i = 0; i < 1000; i++)
		big[i] = 0.5f;
	assert_int_equal(filter_diff("{\"name\": \"SVTPrivacy\", \"args\": {\"fraction\": 1, "
	                             "\"gamma\": 1, \"noise_var\": 1e12}}",
	                             big, 1000, &e),
	                 0);
	for (size_t i = 0; i < 1000; i++) {
		nonzero += big[i] != 0;
		assert_true(big[i] == 0 || fabsf(big[i] - 0.5f) < 1e-9f);
	}
	print_message("svt, fraction 1 with replacement: %zu of 1000 distinct\n", nonzero);
	assert_true(nonzero > 560 && nonzero < 700);

	/* FLARE's defaults on small updates: at most 10 % shared, all within ±gamma. */
	for (size_t i = 0; i < 1000; i++)
		big[i] = (float)((int)(i % 21) - 10) * 1e-6f;
	assert_int_equal(filter_diff("{\"name\": \"SVTPrivacy\"}", big, 1000, &e), 0);
	nonzero = 0;
	for (size_t i = 0; i < 1000; i++) {
		nonzero += big[i] != 0;
		assert_true(fabsf(big[i]) <= 1e-5f);
	}
	assert_true(nonzero <= 100);
}

/* --- GaussianPrivacy ----------------------------------------------------------------------- */

static void test_gaussian_clip(void **state)
{
	enum { N = 1000 };
	float d[2] = {3, 4}, *v = malloc(N * sizeof(*v)), *want = malloc(N * sizeof(*v));
	struct cfl_err e = {0};
	double sum = 0, norm;

	(void)state;
	assert_non_null(v);
	assert_non_null(want);
	/* Norm 5 clipped to 1: (0.6, 0.8). */
	assert_int_equal(filter_diff("{\"name\": \"GaussianPrivacy\", \"args\": {\"clip_norm\": 1, "
	                             "\"noise_multiplier\": 0}}",
	                             d, 2, &e),
	                 0);
	assert_floats(d, (const float[]){(float)(3.0 * 0.2), (float)(4.0 * 0.2)}, 2);

	/* noise_multiplier 0 is clipping alone, bit for bit: against the clipping done here. */
	for (size_t i = 0; i < N; i++) {
		v[i] = (float)sin((double)i) * 0.1f;
		sum += (double)v[i] * v[i];
	}
	norm = sqrt(sum);
	for (size_t i = 0; i < N; i++)
		want[i] = (float)((double)v[i] * (0.5 / norm));
	assert_int_equal(
	        filter_diff("{\"name\": \"GaussianPrivacy\", \"args\": {\"clip_norm\": 0.5, "
	                    "\"noise_multiplier\": 0}}",
	                    v, N, &e),
	        0);
	assert_floats(v, want, N);
	/* An update already inside the ball is untouched. */
	memcpy(want, v, N * sizeof(*v));
	assert_int_equal(
	        filter_diff("{\"name\": \"GaussianPrivacy\", \"args\": {\"clip_norm\": 0.6, "
	                    "\"noise_multiplier\": 0}}",
	                    v, N, &e),
	        0);
	assert_floats(v, want, N);
	free(v);
	free(want);
}

/* The noise of GaussianPrivacy over 10^6 entries: sd z·C within 5 %, mean near 0. The site sends
 * weights here, so the noise is what the result moved from the global model. */
static void test_gaussian_noise(void **state)
{
	enum { N = 1000000 };
	const double c = 2.0, z = 0.75, sigma = c * z;
	const char *name = "w";
	size_t n = N, within = 0;
	struct cfl_privacy *p =
	        one_scope("{\"name\": \"GaussianPrivacy\", \"args\": {\"clip_norm\": 2, "
	                  "\"noise_multiplier\": 0.75}}");
	struct cfl_privacy_scope *s = scope_of(p, NULL);
	struct cfl_model *g = model_of(1, &name, &n, NULL), *r = model_of(1, &name, &n, NULL);
	struct cfl_err e = {0};
	double sum = 0, sq = 0, mean, sd;

	(void)state;
	for (size_t i = 0; i < N; i++)
		g->t[0].data[i] = r->t[0].data[i] = (float)(i % 1000) * 0.001f;
	assert_int_equal(cfl_privacy_filter_result(s, g, r, 0, &e), 0);
	for (size_t i = 0; i < N; i++) {
		double x = (double)r->t[0].data[i] - g->t[0].data[i];

		sum += x;
		sq += x * x;
		within += fabs(x) <= sigma;
	}
	mean = sum / N;
	sd = sqrt(sq / N - mean * mean);
	print_message("gaussian noise over %d entries: sd %.5f (want %.5f, %+.3f %%), mean %+.6f, "
	              "within 1 sd %.4f\n",
	              N, sd, sigma, 100 * (sd / sigma - 1), mean, (double)within / N);
	assert_true(fabs(sd / sigma - 1) < 0.05);
	assert_true(fabs(mean) < 5 * sigma / sqrt(N));
	/* A normal distribution has 68.27 % within one sd: the shape, not only the spread. */
	assert_true(fabs((double)within / N - 0.6827) < 0.005);

	/* Two runs draw different noise (a CSPRNG, not a fixed seed). */
	float first = r->t[0].data[0];
	memcpy(r->t[0].data, g->t[0].data, N * sizeof(float));
	assert_int_equal(cfl_privacy_filter_result(s, g, r, 0, &e), 0);
	assert_true(r->t[0].data[0] != first);
	cfl_model_free(g);
	cfl_model_free(r);
	cfl_privacy_scope_free(s);
	cfl_privacy_free(p);
}

/* --- weights or differences ---------------------------------------------------------------- */

/* The same filters on the same update, sent as weights and as a difference, give the same
 * filtered difference. Values are multiples of 1/64, so every sum here is exact. */
static void test_weights_vs_diff(void **state)
{
	const float gv[] = {1, -2, 0.5f, 3, -0.25f, 8, 1.5f};
	const float dv[] = {0.015625f, -0.5f, 0.25f, -0.125f, 0.0625f, 1, -0.03125f};
	struct cfl_privacy *p =
	        one_scope("{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": [\"conv.b\"]}},"
	                  "{\"name\": \"PercentilePrivacy\", \"args\": {\"percentile\": 25, "
	                  "\"gamma\": 0.25}}");
	struct cfl_privacy_scope *s = scope_of(p, NULL);
	struct cfl_model *g = model_of(3, names3, counts3, gv),
	                 *w = model_of(3, names3, counts3, NULL);
	struct cfl_model *d = model_of(3, names3, counts3, dv);
	const float want[] = {0, -0.25f, 0.25f, 0, 0, 0.25f, -0.03125f};
	struct cfl_err e = {0};
	float got_w[7], got_d[7];

	(void)state;
	for (size_t i = 0, k = 0; i < 3; i++) {
		for (size_t j = 0; j < counts3[i]; j++, k++)
			w->t[i].data[j] = gv[k] + dv[k];
	}
	assert_int_equal(cfl_privacy_filter_result(s, g, w, 0, &e), 0);
	assert_int_equal(cfl_privacy_filter_result(s, g, d, 1, &e), 0);
	for (size_t i = 0, k = 0; i < 3; i++) {
		for (size_t j = 0; j < counts3[i]; j++, k++) {
			got_w[k] = w->t[i].data[j] - g->t[i].data[j];
			got_d[k] = d->t[i].data[j];
		}
	}
	/* Percentile 25 of the 5 values left (|d| 0.015625, 0.0625, 1, 0.03125, 0.5 → rank 1):
	 * 0.03125; below it 0, the rest clipped to ±0.25; the cutoff itself stays. */
	assert_floats(got_w, want, 7);
	assert_floats(got_d, want, 7);
	cfl_model_free(g);
	cfl_model_free(w);
	cfl_model_free(d);
	cfl_privacy_scope_free(s);
	cfl_privacy_free(p);
}

/* --- bad models ---------------------------------------------------------------------------- */

static void test_bad_models(void **state)
{
	const char *ab[] = {"a", "b"}, *ac[] = {"a", "c"};
	const size_t c22[] = {2, 2}, c23[] = {2, 3}, c2[] = {2};
	struct cfl_privacy *p = one_scope("{\"name\": \"PercentilePrivacy\"}");
	struct cfl_privacy_scope *s = scope_of(p, NULL);
	struct cfl_model *g = model_of(2, ab, c22, NULL), *r;
	struct cfl_err e = {0};

	(void)state;
	r = model_of(1, ab, c2, NULL);
	assert_int_equal(cfl_privacy_filter_result(s, g, r, 0, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "the result has 1 tensors, the global model 2");
	cfl_model_free(r);
	r = model_of(2, ac, c22, NULL);
	assert_int_equal(cfl_privacy_filter_result(s, g, r, 0, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "result tensor 'c' is not in the global model");
	cfl_model_free(r);
	r = model_of(2, ab, c23, NULL);
	assert_int_equal(cfl_privacy_filter_result(s, g, r, 0, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "tensor 'b' has 3 values in the result, 2 in the global model");
	cfl_model_free(r);
	/* Tensors in another order are matched by name. */
	r = model_of(2, (const char *[]){"b", "a"}, c22, (const float[]){1, 2, 3, 4});
	assert_int_equal(cfl_privacy_filter_result(s, g, r, 1, &e), 0);
	r->t[1].data[0] = NAN;
	assert_int_equal(cfl_privacy_filter_result(s, g, r, 1, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "result tensor 'a' holds a value that is not finite");
	r->t[1].data[0] = 0;
	g->t[1].data[1] = INFINITY;
	assert_int_equal(cfl_privacy_filter_result(s, g, r, 1, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "global tensor 'b' holds a value that is not finite");
	g->t[1].data[1] = -3e38f;
	r->t[0].data[1] = 3e38f;
	assert_int_equal(cfl_privacy_filter_result(s, g, r, 0, &e), CFL_EINVAL);
	assert_string_equal(e.msg,
	                    "tensor 'b' differs from the global model by more than the float "
	                    "range");
	cfl_model_free(r);
	cfl_model_free(g);
	cfl_privacy_scope_free(s);
	cfl_privacy_free(p);

	/* An invalid scope reached through scope_at filters nothing and says why. */
	p = one_scope("{\"name\": \"Nope\"}");
	g = model_of(1, ab, c2, NULL);
	r = model_of(1, ab, c2, NULL);
	assert_int_equal(cfl_privacy_filter_result(cfl_privacy_scope_at(p, 0), g, r, 0, &e),
	                 CFL_EPERM);
	assert_non_null(strstr(e.msg, "scope 's' is invalid: task_result_filters[0] 'Nope'"));
	cfl_model_free(g);
	cfl_model_free(r);
	cfl_privacy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_exclude_vars),
	        cmocka_unit_test(test_exclude_then_others),
	        cmocka_unit_test(test_exclude_through_fedavg),
	        cmocka_unit_test(test_percentile),
	        cmocka_unit_test(test_percentile_many),
	        cmocka_unit_test(test_svt),
	        cmocka_unit_test(test_gaussian_clip),
	        cmocka_unit_test(test_gaussian_noise),
	        cmocka_unit_test(test_weights_vs_diff),
	        cmocka_unit_test(test_bad_models),
	};

	cfl_log_set_level(CFL_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
