/* Unit tests for a site's privacy policy (src/privacy/): local/privacy.json loaded (good files,
 * every whole-file error and every per-scope problem with its message), a job's scope resolved
 * (default, undefined, invalid, no policy), and the provisioning sample. The fixture is in
 * privacy_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "privacy_fixture.h"

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
	        cmocka_unit_test(test_provisioned_sample),
	};

	cfl_log_set_level(CFL_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
