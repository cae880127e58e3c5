/* Unit tests for a site's privacy policy (src/privacy/): local/privacy.json loaded (good files,
 * every whole-file error and every per-scope problem with its message), a job's scope resolved
 * (default, undefined, invalid, no policy), and the result filters on small exact cases:
 * ExcludeVars by list and by expression (and through FedAvg), PercentilePrivacy, SVTPrivacy,
 * GaussianPrivacy (clipping alone with noise_multiplier 0, and the noise's measured spread over
 * 10^6 entries), weights and differences giving the same filtered difference, and the provisioning
 * sample. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "msg_fixture.h"

#include "cfl/model.h"
#include "cfl/privacy.h"

#include <math.h>

/* --- helpers ------------------------------------------------------------------------------- */

static struct cfl_privacy *load_ok(const char *text)
{
	struct cfl_privacy *p = NULL;
	struct cfl_err e = {0};

	if (cfl_privacy_load_mem(text, strlen(text), "privacy.json", &p, &e) != 0)
		fail_msg("load failed: %s", e.msg);
	assert_non_null(p);
	return p;
}

/* A policy with one scope "s" (the default) whose result filters are `filters`. */
static struct cfl_privacy *one_scope(const char *filters)
{
	char text[4096];

	snprintf(text, sizeof(text),
	         "{\"scopes\": [{\"name\": \"s\", \"task_result_filters\": [%s]}], "
	         "\"default_scope\": \"s\"}",
	         filters);
	return load_ok(text);
}

static struct cfl_privacy_scope *scope_of(const struct cfl_privacy *p, const char *name)
{
	struct cfl_privacy_scope *s = NULL;
	char why[256];

	if (cfl_privacy_scope(p, name, &s, why, sizeof(why)) != 0)
		fail_msg("scope '%s' refused: %s", name != NULL ? name : "(default)", why);
	assert_non_null(s);
	return s;
}

/* A model of 1-D tensors: names[i] has counts[i] values, taken in turn from `v` (NULL: 0). */
static struct cfl_model *model_of(size_t n, const char *const *names, const size_t *counts,
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

static void assert_floats(const float *got, const float *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
			fail_msg("value %zu: got %.9g, want %.9g", i, got[i], want[i]);
	}
}

/* Filters a one-tensor difference `d` with the scope's filters, in place. */
static int filter_diff(const char *filters, float *d, size_t n, struct cfl_err *e)
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

/* --- loading ------------------------------------------------------------------------------- */

static const char flare_file[] =
        "{\n"
        "  \"scopes\": [\n"
        "    {\"name\": \"public\", \"properties\": {\"train_dataset\": \"/data/pub\"},\n"
        "     \"task_result_filters\": [\n"
        "       {\"name\": \"PercentilePrivacy\", \"args\": {\"percentile\": 10, \"gamma\": "
        "0.02}}\n"
        "     ], \"task_data_filters\": []},\n"
        "    {\"name\": \"private\", \"task_result_filters\": [\n"
        "       {\"path\": \"nvflare.app_common.filters.exclude_vars.ExcludeVars\",\n"
        "        \"args\": {\"exclude_vars\": [\"fc.w\", \"fc.b\"]}},\n"
        "       {\"path\": \"nvflare.app_common.filters.svt_privacy.SVTPrivacy\",\n"
        "        \"args\": {\"fraction\": 0.2, \"replace\": false,\n"
        "                 \"data_kinds\": [\"WEIGHT_DIFF\", \"WEIGHTS\"]}},\n"
        "       {\"name\": \"GaussianPrivacy\", \"args\": {\"clip_norm\": 1, \"noise_multiplier\": "
        "0.5}}\n"
        "     ]},\n"
        "    {\"name\": \"open\"}\n"
        "  ],\n"
        "  \"default_scope\": \"public\"\n"
        "}\n";

static void test_load_good(void **state)
{
	struct cfl_privacy *p = load_ok(flare_file);
	struct cfl_err e = {0};

	(void)state;
	assert_int_equal(cfl_privacy_scope_count(p), 3);
	assert_string_equal(cfl_privacy_default_scope(p), "public");
	assert_string_equal(cfl_privacy_scope_name(cfl_privacy_scope_at(p, 1)), "private");
	assert_int_equal(cfl_privacy_scope_filters(cfl_privacy_scope_at(p, 0)), 1);
	assert_int_equal(cfl_privacy_scope_filters(cfl_privacy_scope_at(p, 1)), 3);
	assert_int_equal(cfl_privacy_scope_filters(cfl_privacy_scope_at(p, 2)), 0);
	assert_null(cfl_privacy_scope_at(p, 3));
	for (size_t i = 0; i < 3; i++)
		assert_null(cfl_privacy_scope_problem(cfl_privacy_scope_at(p, i)));
	assert_int_equal(cfl_privacy_validate(p, &e), 0);
	cfl_privacy_free(p);

	/* No default scope, no scopes at all, cfl's own format_version: all fine. */
	p = load_ok("{\"scopes\": [], \"format_version\": 1}");
	assert_null(cfl_privacy_default_scope(p));
	assert_int_equal(cfl_privacy_scope_count(p), 0);
	cfl_privacy_free(p);
	assert_int_equal(cfl_privacy_validate(NULL, &e), 0);
}

static void test_load_syntax(void **state)
{
	static const char text[] = "{\n  \"scopes\": [\n    {\"name\": \"a\",}\n  ]\n}\n";
	static const char dup[] = "{\"scopes\": [],\n\"scopes\": []}";
	struct cfl_privacy *p = (struct cfl_privacy *)&p;
	struct cfl_err e = {0};

	(void)state;
	assert_int_equal(cfl_privacy_load_mem(text, strlen(text), "local/privacy.json", &p, &e),
	                 CFL_ECONFIG);
	assert_null(p);
	assert_non_null(strstr(e.msg, "cannot read 'local/privacy.json': line 3, column "));
	assert_int_equal(cfl_privacy_load_mem("", 0, "local/privacy.json", &p, &e), CFL_ECONFIG);
	assert_non_null(strstr(e.msg, "cannot read 'local/privacy.json': line 1"));
	/* Duplicate keys are a JSON error too (JSON_REJECT_DUPLICATES), with their line. */
	assert_int_equal(cfl_privacy_load_mem(dup, strlen(dup), "x", &p, &e), CFL_ECONFIG);
	assert_non_null(strstr(e.msg, "cannot read 'x': line 2"));
	assert_non_null(strstr(e.msg, "duplicate"));
}

/* Errors that make the whole file unusable: the site does not start. */
static void test_load_file_errors(void **state)
{
	static const struct {
		const char *text, *msg;
	} cases[] = {
	        {"[]", "'privacy.json': not a JSON object"},
	        {"{\"scopes\": [], \"components\": []}",
	         "'privacy.json': unknown key 'components'"},
	        {"{}", "'privacy.json': 'scopes' must be a list of scopes"},
	        {"{\"scopes\": {}}", "'privacy.json': 'scopes' must be a list of scopes"},
	        {"{\"scopes\": [1]}", "'privacy.json': scopes[0] must be an object"},
	        {"{\"scopes\": [{\"name\": \"a\"}, {}]}",
	         "'privacy.json': scopes[1] needs a 'name' of 1 to 127 printable bytes"},
	        {"{\"scopes\": [{\"name\": \"\"}]}", "scopes[0] needs a 'name'"},
	        {"{\"scopes\": [{\"name\": 3}]}", "scopes[0] needs a 'name'"},
	        {"{\"scopes\": [{\"name\": \"a\\nb\"}]}", "scopes[0] needs a 'name'"},
	        {"{\"scopes\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}",
	         "'privacy.json': scope 'a' is defined twice"},
	        {"{\"scopes\": [{\"name\": \"a\"}], \"default_scope\": \"b\"}",
	         "'privacy.json': default_scope 'b' is not a defined scope"},
	        {"{\"scopes\": [{\"name\": \"a\"}], \"default_scope\": [\"a\"]}",
	         "'privacy.json': 'default_scope' must be a string"},
	};
	struct cfl_privacy *p = NULL;
	struct cfl_err e = {0};
	char *big;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = cfl_privacy_load_mem(cases[i].text, strlen(cases[i].text), "privacy.json",
		                              &p, &e);

		if (rc != CFL_ECONFIG || strstr(e.msg, cases[i].msg) == NULL)
			fail_msg("case %zu: rc %d, message '%s', want '%s'", i, rc, e.msg,
			         cases[i].msg);
		assert_null(p);
	}
	/* The size bound is checked before parsing. */
	big = malloc(CFL_PRIVACY_MAX_BYTES + 1);
	assert_non_null(big);
	memset(big, ' ', CFL_PRIVACY_MAX_BYTES + 1);
	assert_int_equal(
	        cfl_privacy_load_mem(big, CFL_PRIVACY_MAX_BYTES + 1, "privacy.json", &p, &e),
	        CFL_ETOOBIG);
	free(big);
}

/* Problems inside a scope: the file loads, that scope refuses its jobs with the reason, the
 * validation reports it, and the other scopes still work. */
static void test_scope_problems(void **state)
{
	static const struct {
		const char *filter, *msg;
	} cases[] = {
	        {"{\"name\": \"exclude_vars\", \"args\": {\"pattern\": \"^x\"}}",
	         "task_result_filters[0] 'exclude_vars': unknown filter"},
	        {"{\"name\": \"nvflare.app_common.filters.Nope\"}",
	         "'nvflare.app_common.filters.Nope': unknown filter"},
	        {"{\"name\": \"ExcludeVarsX\", \"args\": {}}", "unknown filter"},
	        {"3", "task_result_filters[0] must be an object"},
	        {"{\"args\": {}}", "task_result_filters[0] needs a 'name' or a 'path' (a string)"},
	        {"{\"name\": \"SVTPrivacy\", \"path\": \"SVTPrivacy\"}",
	         "needs a 'name' or a 'path'"},
	        {"{\"name\": 7}", "needs a 'name' or a 'path'"},
	        {"{\"name\": \"SVTPrivacy\", \"id\": \"x\"}", "'SVTPrivacy': unknown key 'id'"},
	        {"{\"name\": \"SVTPrivacy\", \"args\": []}",
	         "'SVTPrivacy': 'args' must be an object"},
	        {"{\"name\": \"PercentilePrivacy\", \"args\": {\"gama\": 1}}",
	         "task_result_filters[0] 'PercentilePrivacy': unknown argument 'gama'"},
	        {"{\"name\": \"PercentilePrivacy\", \"args\": {\"percentile\": 101}}",
	         "'percentile' must be a number from 0 to 100"},
	        {"{\"name\": \"PercentilePrivacy\", \"args\": {\"percentile\": -0.5}}",
	         "'percentile' must be a number from 0 to 100"},
	        {"{\"name\": \"PercentilePrivacy\", \"args\": {\"percentile\": \"10\"}}",
	         "'percentile' must be a number from 0 to 100"},
	        {"{\"name\": \"PercentilePrivacy\", \"args\": {\"gamma\": 0}}",
	         "'gamma' must be a number > 0"},
	        {"{\"name\": \"PercentilePrivacy\", \"args\": {\"gamma\": null}}",
	         "'gamma' must be a number > 0"},
	        {"{\"name\": \"SVTPrivacy\", \"args\": {\"fraction\": 1.5}}",
	         "'SVTPrivacy': 'fraction' must be a number from 0 to 1"},
	        {"{\"name\": \"SVTPrivacy\", \"args\": {\"epsilon\": 0}}",
	         "'epsilon' must be a number > 0"},
	        {"{\"name\": \"SVTPrivacy\", \"args\": {\"noise_var\": -1}}",
	         "'noise_var' must be a number > 0"},
	        {"{\"name\": \"SVTPrivacy\", \"args\": {\"gamma\": true}}",
	         "'gamma' must be a number > 0"},
	        {"{\"name\": \"SVTPrivacy\", \"args\": {\"tau\": -1e-6}}",
	         "'tau' must be a number >= 0"},
	        {"{\"name\": \"SVTPrivacy\", \"args\": {\"replace\": \"yes\"}}",
	         "'replace' must be true or false"},
	        {"{\"name\": \"SVTPrivacy\", \"args\": {\"data_kinds\": [\"METRICS\"]}}",
	         "'data_kinds' must be a list of \"WEIGHTS\" and \"WEIGHT_DIFF\""},
	        {"{\"name\": \"GaussianPrivacy\", \"args\": {\"noise_multiplier\": 1}}",
	         "'GaussianPrivacy': 'clip_norm' is required (a number > 0)"},
	        {"{\"name\": \"GaussianPrivacy\", \"args\": {\"clip_norm\": 1}}",
	         "'noise_multiplier' is required (a number >= 0)"},
	        {"{\"name\": \"GaussianPrivacy\"}", "'clip_norm' is required"},
	        {"{\"name\": \"GaussianPrivacy\", \"args\": {\"clip_norm\": 0, "
	         "\"noise_multiplier\": 1}}",
	         "'clip_norm' must be a number > 0"},
	        {"{\"name\": \"GaussianPrivacy\", \"args\": {\"clip_norm\": 1, "
	         "\"noise_multiplier\": -1}}",
	         "'noise_multiplier' must be a number >= 0"},
	        {"{\"name\": \"ExcludeVars\"}",
	         "'ExcludeVars': 'exclude_vars' must be a list of tensor names or a regular "
	         "expression"},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": 5}}",
	         "'exclude_vars' must be a list"},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": [\"a\", 1]}}",
	         "'exclude_vars[1]' must be a tensor name"},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"\"}}",
	         "the 'exclude_vars' expression must be 1 to 511 bytes"},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"(a\"}}",
	         "'exclude_vars' is not a POSIX extended regular expression: "},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"layer\\\\d+\"}}",
	         "'exclude_vars' expression: '\\d' is Python syntax: use [0-9]"},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"(a)\\\\1\"}}",
	         "back-references are not allowed"},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"\\\\Aconv\"}}",
	         "an escape other than \\w \\W \\s \\S \\b \\B or of a punctuation mark"},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"x\\\\\"}}",
	         "'exclude_vars' expression: it ends with a backslash"},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"layer[\\\\w]\"}}",
	         "a backslash in a bracket expression"},
	        /* What made glibc's regcomp ask for 1.2 GB under fuzz_privacy, and its kin. */
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"c++++++++++++++\"}}",
	         "'exclude_vars' expression: a repetition of a repetition (such as a** or a+?)"},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"^conv.*?$\"}}",
	         "a repetition of a repetition"},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"a{2}{3}\"}}",
	         "a repetition of a repetition"},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"(a{60}){60}\"}}",
	         "'exclude_vars' expression: it repeats too much (nested or large repetitions)"},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"(a{100}){100}\"}}",
	         "it repeats too much"},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": "
	         "\"((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+\"}}",
	         "it repeats too much"},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"((((((((((((((((("
	         "(((((((((((((((a)))))))))))))))))))))))))))))))\"}}",
	         "groups nest too deep"},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": [], \"x\": 1}}",
	         "'ExcludeVars': unknown argument 'x'"},
	        {"{\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": [], \"data_kinds\": 1}}",
	         "'data_kinds' must be a list"},
	};
	struct cfl_privacy_scope *s = NULL;
	struct cfl_err e = {0};
	char text[4096], why[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cfl_privacy *p;
		const char *problem;

		snprintf(text, sizeof(text),
		         "{\"scopes\": [{\"name\": \"ok\"}, {\"name\": \"bad\", "
		         "\"task_result_filters\": [%s, {\"name\": \"x\"}]}]}",
		         cases[i].filter);
		p = load_ok(text);
		problem = cfl_privacy_scope_problem(cfl_privacy_scope_at(p, 1));
		if (problem == NULL || strstr(problem, cases[i].msg) == NULL)
			fail_msg("case %zu: problem '%s', want '%s'", i,
			         problem ? problem : "(none)", cases[i].msg);
		assert_int_equal(cfl_privacy_scope(p, "bad", &s, why, sizeof(why)), CFL_EPERM);
		assert_null(s);
		assert_non_null(strstr(why, "scope 'bad' of this site is invalid: "));
		assert_non_null(strstr(why, cases[i].msg));
		assert_int_equal(cfl_privacy_validate(p, &e), CFL_ECONFIG);
		assert_non_null(strstr(e.msg, "scope 'bad' refuses every job: "));
		/* The other scope is unaffected. */
		cfl_privacy_scope_free(scope_of(p, "ok"));
		cfl_privacy_free(p);
	}
}

static void test_scope_level_problems(void **state)
{
	static const struct {
		const char *scope, *msg;
	} cases[] = {
	        {"\"task_data_filters\": [{\"name\": \"ExcludeVars\"}]",
	         "task_data_filters are not supported (cfl filters results only)"},
	        {"\"task_data_filters\": {}", "task_data_filters are not supported"},
	        {"\"task_result_filters\": {}", "'task_result_filters' must be a list"},
	        {"\"properties\": []", "'properties' must be an object"},
	        {"\"filters\": []", "unknown key 'filters'"},
	};
	struct cfl_err e = {0};
	char text[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cfl_privacy *p;
		const char *problem;

		snprintf(text, sizeof(text),
		         "{\"scopes\": [{\"name\": \"a\", %s}, {\"name\": \"b\", %s}]}",
		         cases[i].scope, cases[i].scope);
		p = load_ok(text);
		problem = cfl_privacy_scope_problem(cfl_privacy_scope_at(p, 0));
		if (problem == NULL || strstr(problem, cases[i].msg) == NULL)
			fail_msg("case %zu: problem '%s', want '%s'", i,
			         problem ? problem : "(none)", cases[i].msg);
		assert_int_equal(cfl_privacy_validate(p, &e), CFL_ECONFIG);
		assert_non_null(strstr(e.msg, "scope 'a' refuses every job: "));
		assert_non_null(strstr(e.msg, "(and 1 more scopes)"));
		cfl_privacy_free(p);
	}
}

static void test_load_dir(void **state)
{
	char local[PATH_MAX], file[PATH_MAX];
	struct cfl_privacy *p = (struct cfl_privacy *)&p;
	struct cfl_privacy_scope *s = (struct cfl_privacy_scope *)&s;
	struct cfl_err e = {0};
	char why[128] = "x";

	(void)state;
	assert_int_equal(tmp_make("test-privacy"), 0);
	snprintf(local, sizeof(local), "%s", tmp_dir);
	/* No file: no policy; every job is accepted, nothing filtered. */
	assert_int_equal(cfl_privacy_load(local, &p, &e), 0);
	assert_null(p);
	assert_int_equal(cfl_privacy_scope(NULL, "anything", &s, why, sizeof(why)), 0);
	assert_null(s);
	assert_string_equal(why, "");
	assert_int_equal(cfl_privacy_filter_result(NULL, NULL, NULL, 0, &e), 0);

	write_text(path_join(file, sizeof(file), local, "privacy.json"), flare_file);
	assert_int_equal(cfl_privacy_load(local, &p, &e), 0);
	assert_non_null(p);
	assert_int_equal(cfl_privacy_scope_count(p), 3);
	cfl_privacy_free(p);

	write_text(file, "{\"scopes\": [\n  oops]}");
	assert_int_equal(cfl_privacy_load(local, &p, &e), CFL_ECONFIG);
	assert_null(p);
	assert_non_null(strstr(e.msg, "cannot read '"));
	assert_non_null(strstr(e.msg, "/privacy.json': line 2, column "));
	tmp_remove();
}

/* --- scope resolution ---------------------------------------------------------------------- */

static void test_scope_resolution(void **state)
{
	struct cfl_privacy *p = load_ok(flare_file);
	struct cfl_privacy_scope *s = NULL;
	char why[256];

	(void)state;
	s = scope_of(p, NULL); /* no scope in meta.json: the default */
	assert_string_equal(cfl_privacy_scope_name(s), "public");
	cfl_privacy_scope_free(s);
	s = scope_of(p, "private");
	assert_string_equal(cfl_privacy_scope_name(s), "private");
	cfl_privacy_scope_free(s);

	assert_int_equal(cfl_privacy_scope(p, "x", &s, why, sizeof(why)), CFL_EPERM);
	assert_null(s);
	assert_string_equal(why, "scope 'x' is not defined by this site");
	assert_int_equal(cfl_privacy_scope(p, "", &s, why, sizeof(why)), CFL_EPERM);
	assert_string_equal(why, "scope '' is not defined by this site");
	/* The job's words are shown printable and short. */
	assert_int_equal(cfl_privacy_scope(p, "a\nb\033[31m", &s, why, sizeof(why)), CFL_EPERM);
	assert_string_equal(why, "scope 'a?b?[31m' is not defined by this site");
	char longname[200];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(cfl_privacy_scope(p, longname, &s, why, sizeof(why)), CFL_EPERM);
	assert_non_null(strstr(why, "nnn...' is not defined by this site"));
	assert_int_equal(cfl_privacy_scope(p, "x", &s, why, 8), CFL_EPERM);
	assert_string_equal(why, "scope '");

	/* A resolved scope outlives its policy: a reload does not pull it from a running job. */
	s = scope_of(p, "private");
	cfl_privacy_free(p);
	assert_string_equal(cfl_privacy_scope_name(s), "private");
	assert_int_equal(cfl_privacy_scope_filters(s), 3);
	cfl_privacy_scope_free(s);

	/* Without a default scope, a job without a scope runs unfiltered. */
	p = load_ok("{\"scopes\": [{\"name\": \"a\"}]}");
	assert_int_equal(cfl_privacy_scope(p, NULL, &s, why, sizeof(why)), 0);
	assert_null(s);
	cfl_privacy_free(p);
}

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

/* --- the provisioning sample --------------------------------------------------------------- */

static void test_provisioned_sample(void **state)
{
	static const char yml[] = "api_version: 3\n"
	                          "name: privp\n"
	                          "participants:\n"
	                          "  - {name: server1, type: server, org: test}\n"
	                          "  - {name: site-1, type: client, org: test}\n";
	char prod[PATH_MAX], file[PATH_MAX + 64];
	struct cfl_privacy *p = NULL;
	struct cfl_err e = {0};
	char *text = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(tmp_make("test-privacy"), 0);
	assert_int_equal(provision("privp", yml, prod, sizeof(prod)), 0);
	snprintf(file, sizeof(file), "%s/site-1/local/privacy.json.sample", prod);
	assert_int_equal(cfl__fs_read_file(file, 1 << 20, &text, &len, &e), 0);
	assert_int_equal(cfl_privacy_load_mem(text, len, file, &p, &e), 0);
	if (cfl_privacy_validate(p, &e) != 0)
		fail_msg("the sample is not a valid policy: %s", e.msg);
	assert_true(cfl_privacy_scope_count(p) >= 1);
	cfl_privacy_free(p);
	free(text);
	tmp_remove();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_load_good),
	        cmocka_unit_test(test_load_syntax),
	        cmocka_unit_test(test_load_file_errors),
	        cmocka_unit_test(test_scope_problems),
	        cmocka_unit_test(test_scope_level_problems),
	        cmocka_unit_test(test_load_dir),
	        cmocka_unit_test(test_scope_resolution),
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
	        cmocka_unit_test(test_provisioned_sample),
	};

	cfl_log_set_level(CFL_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
