/* Shared fixture of the privacy policy tests (test_privacy_load.c, test_privacy_filters.c;
 * src/privacy/): policies loaded from text (or failing the test), a scope by its name, small
 * models built from names and counts, exact float comparisons, and a filtered difference.
 *
 * Everything is static inline so that each test program takes what it uses. */
#ifndef CFL_TEST_PRIVACY_FIXTURE_H
#define CFL_TEST_PRIVACY_FIXTURE_H

#include "msg_fixture.h"

#include "cfl/model.h"
#include "cfl/privacy.h"

#include <math.h>

/* --- helpers ------------------------------------------------------------------------------- */

static inline struct cfl_privacy *load_ok(const char *text)
{
	struct cfl_privacy *p = NULL;
	struct cfl_err e = {0};

	if (cfl_privacy_load_mem(text, strlen(text), "privacy.json", &p, &e) != 0)
		fail_msg("load failed: %s", e.msg);
	assert_non_null(p);
	return p;
}

/* A policy with one scope "s" (the default) whose result filters are `filters`. */
static inline struct cfl_privacy *one_scope(const char *filters)
{
	char text[4096];

	snprintf(text, sizeof(text),
	         "{\"scopes\": [{\"name\": \"s\", \"task_result_filters\": [%s]}], "
	         "\"default_scope\": \"s\"}",
	         filters);
	return load_ok(text);
}

static inline struct cfl_privacy_scope *scope_of(const struct cfl_privacy *p, const char *name)
{
	struct cfl_privacy_scope *s = NULL;
	char why[256];

	if (cfl_privacy_scope(p, name, &s, why, sizeof(why)) != 0)
		fail_msg("scope '%s' refused: %s", name != NULL ? name : "(default)", why);
	assert_non_null(s);
	return s;
}

/* A model of 1-D tensors: names[i] has counts[i] values, taken in turn from `v` (NULL: 0). */
static inline struct cfl_model *model_of(size_t n, const char *const *names, const size_t *counts,
                                         const float *v)
{
	struct cfl_model *m = NULL;

	assert_int_equal(cfl_model_new(&m), 0);
	for (size_t i = 0; i < n; i++) {
		int64_t shape = (int64_t)counts[i];

		assert_int_equal(cfl_model_add(m, names[i], &shape, 1, v), 0);
		if (v != NULL)
			v += counts[i];
	}
	return m;
}

static inline void assert_floats(const float *got, const float *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
			fail_msg("value %zu: got %.9g, want %.9g", i, got[i], want[i]);
	}
}

/* Filters a one-tensor difference `d` with the scope's filters, in place. */
static inline int filter_diff(const char *filters, float *d, size_t n, struct cfl_err *e)
{
	const char *name = "w";
	struct cfl_privacy *p = one_scope(filters);
	struct cfl_privacy_scope *s = scope_of(p, NULL);
	struct cfl_model *g = model_of(1, &name, &n, NULL), *r = model_of(1, &name, &n, d);
	int rc = cfl_privacy_filter_result(s, g, r, 1, e);

	memcpy(d, r->t[0].data, n * sizeof(*d));
	cfl_model_free(g);
	cfl_model_free(r);
	cfl_privacy_scope_free(s);
	cfl_privacy_free(p);
	return rc;
}

#endif
