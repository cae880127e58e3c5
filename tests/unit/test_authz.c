/* Unit tests for federated authorization (src/authz): NVFlare's default policy, every role and
 * right under every condition it can meet (the admin in or out of the site's org, the job's
 * submitter or not, of the submitter's org or not, no job at all); the provisioned
 * authorization.json.default equal to it; shorthand rules; rights not listed and roles not in
 * the file denied; empty names and orgs matching nothing; the reasons given; the file lookup
 * (authorization.json before its .default, neither, unreadable); and malformed files refused
 * with their exact messages. */
#define _DEFAULT_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "msg_fixture.h"

#include "cfl/authz.h"
#include "cfl/project.h"
#include "provision/internal.h"

#include <sys/stat.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const roles[] = {"project_admin", "org_admin", "lead", "member"};

/* SPEC §10, NVFlare's default, written out here independently of src/authz: per role, the
 * condition of each right in enum order (NULL: not listed, denied). */
static const char *const spec_default[4][CFL_RIGHT_COUNT] = {
        {"any", "any", "any", "any", "any", "any", "any", "any"},
        {"none", "none", "o:submitter", "o:submitter", "any", "o:site", "o:site", "none"},
        {"any", "n:submitter", "n:submitter", "n:submitter", "any", "o:site", "o:site", "any"},
        {NULL, NULL, NULL, NULL, "any", NULL, NULL, NULL},
};

/* The situations a check can meet: site A's org is "a.org"; the admin is x@a.org or y@b.org;
 * the job (when there is one) was submitted by x@a.org, or by z@a.org, or by w@b.org. */
struct scene {
	const char *what;
	const char *admin_name, *admin_org;
	const char *sub_name, *sub_org; /* NULL: no job */
	int in_site_org, is_submitter, in_submitter_org;
};

static const struct scene scenes[] = {
        {"own job, own org", "x@a.org", "a.org", "x@a.org", "a.org", 1, 1, 1},
        {"org mate's job", "x@a.org", "a.org", "z@a.org", "a.org", 1, 0, 1},
        {"other org's job", "x@a.org", "a.org", "w@b.org", "b.org", 1, 0, 0},
        {"no job, site's org", "x@a.org", "a.org", NULL, NULL, 1, 0, 0},
        {"outsider, own job", "y@b.org", "b.org", "y@b.org", "b.org", 0, 1, 1},
        {"outsider, site org's job", "y@b.org", "b.org", "x@a.org", "a.org", 0, 0, 0},
        {"outsider, no job", "y@b.org", "b.org", NULL, NULL, 0, 0, 0},
};

/* What the SPEC says condition `c` means in scene `s`. */
static int spec_holds(const char *c, const struct scene *s)
{
	if (c == NULL || strcmp(c, "none") == 0)
		return 0;
	if (strcmp(c, "any") == 0)
		return 1;
	if (strcmp(c, "o:site") == 0)
		return s->in_site_org;
	if (strcmp(c, "n:submitter") == 0)
		return s->is_submitter;
	if (strcmp(c, "o:submitter") == 0)
		return s->in_submitter_org;
	fail_msg("unknown condition '%s' in the test's table", c);
	return 0;
}

static struct cfl_authz *load(const char *text)
{
	struct cfl_authz *a = NULL;
	struct cfl_err e = {0};

	if (cfl_authz_load_mem(text, strlen(text), "authorization.json", &a, &e) != 0)
		fail_msg("policy refused: %s", e.msg);
	return a;
}

/* The check's verdict, asserting that the reason agrees with it. */
static int granted(const struct cfl_authz *a, enum cfl_right r, const char *role,
                   const struct scene *s)
{
	struct cfl_authz_who admin = {s->admin_name, s->admin_org, role};
	struct cfl_authz_who sub = {s->sub_name, s->sub_org, "lead"};
	char why[256];
	int rc =
	        cfl_authz_check(a, r, &admin, s->sub_name ? &sub : NULL, "a.org", why, sizeof(why));

	assert_true(rc == 0 || rc == CFL_EPERM);
	assert_true((strstr(why, " not granted to ") == NULL) == (rc == 0));
	return rc == 0;
}

/* Every rule of `a` equals `want` (role by right), and every check follows the SPEC. */
static void assert_policy(const struct cfl_authz *a, const char *const want[4][CFL_RIGHT_COUNT])
{
	for (size_t i = 0; i < N_OF(roles); i++) {
		for (int r = 0; r < CFL_RIGHT_COUNT; r++) {
			const char *got = cfl_authz_rule(a, roles[i], (enum cfl_right)r);

			if ((got == NULL) != (want[i][r] == NULL) ||
			    (got != NULL && strcmp(got, want[i][r]) != 0))
				fail_msg("%s %s: rule '%s', want '%s'", roles[i],
				         cfl_authz_right_name((enum cfl_right)r),
				         got ? got : "(none)", want[i][r] ? want[i][r] : "(none)");
			for (size_t k = 0; k < N_OF(scenes); k++) {
				int g = granted(a, (enum cfl_right)r, roles[i], &scenes[k]);

				if (g != spec_holds(want[i][r], &scenes[k]))
					fail_msg("%s %s, %s: %s", roles[i],
					         cfl_authz_right_name((enum cfl_right)r),
					         scenes[k].what, g ? "granted" : "refused");
			}
		}
	}
}

static void test_default_policy(void **state)
{
	struct cfl_authz *a = NULL;

	(void)state;
	assert_int_equal(cfl_authz_default(&a), 0);
	assert_string_equal(cfl_authz_source(a), "default");
	assert_policy(a, spec_default);
	cfl_authz_free(a);
	cfl_authz_free(NULL);
}

/* A handful of verdicts spelt out, with the reasons an admin reads. */
static void test_default_reasons(void **state)
{
	struct cfl_authz_who lead_a = {"lead@a.org", "a.org", "lead"};
	struct cfl_authz_who lead_b = {"lead@b.org", "b.org", "lead"};
	struct cfl_authz_who member = {"member@a.org", "a.org", "member"};
	struct cfl_authz_who orga = {"boss@a.org", "a.org", "org_admin"};
	struct cfl_authz *a = NULL;
	char why[256];

	(void)state;
	assert_int_equal(cfl_authz_default(&a), 0);
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_MANAGE_JOB, &lead_b, &lead_a, "a.org", why,
	                                 sizeof(why)),
	                 CFL_EPERM);
	assert_string_equal(why, "manage_job not granted to lead@b.org (lead: n:submitter)");
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_MANAGE_JOB, &lead_a, &lead_a, "a.org", why,
	                                 sizeof(why)),
	                 0);
	assert_string_equal(why, "manage_job granted to lead@a.org (lead: n:submitter)");
	assert_int_equal(
	        cfl_authz_check(a, CFL_RIGHT_SUBMIT_JOB, &member, NULL, "a.org", why, sizeof(why)),
	        CFL_EPERM);
	assert_string_equal(why, "submit_job not granted to member@a.org (member: not listed)");
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_BYOC, &orga, NULL, "a.org", why, sizeof(why)),
	                 CFL_EPERM);
	assert_string_equal(why, "byoc not granted to boss@a.org (org_admin: none)");
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_DOWNLOAD_JOB, &orga, &lead_a, "b.org", why,
	                                 sizeof(why)),
	                 0);
	assert_int_equal(
	        cfl_authz_check(a, CFL_RIGHT_OPERATE, &lead_b, NULL, "a.org", why, sizeof(why)),
	        CFL_EPERM);
	assert_string_equal(why, "operate not granted to lead@b.org (lead: o:site)");
	/* why may be NULL or tiny: the verdict does not depend on it. */
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_VIEW, &member, NULL, "a.org", NULL, 0), 0);
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_OPERATE, &lead_a, NULL, "a.org", why, 4), 0);
	assert_string_equal(why, "ope");
	cfl_authz_free(a);
}

/* The provisioned local/authorization.json.default is NVFlare's default, read by the loader. */
static void test_provisioned_template(void **state)
{
	char local[PATH_MAX], path[PATH_MAX];
	struct cfl_participant pt = {.name = "server", .type = CFL_PT_SERVER, .org = "a.org"};
	struct cfl_authz *a = NULL, *dflt = NULL;
	struct cfl_err e = {0};

	(void)state;
	assert_int_equal(tmp_make("authz"), 0);
	path_join(local, sizeof(local), tmp_dir, "local");
	assert_int_equal(cfl__fs_mkdirs(local, 0755, &e), 0);
	assert_int_equal(cfl_authz_load(local, &a, &e), CFL_ENOENT);
	assert_null(a);
	assert_true(strstr(e.msg, "no authorization policy in '") == e.msg);
	assert_int_equal(cfl__kit_write_local(local, &pt, &e), 0);
	assert_int_equal(cfl_authz_load(local, &a, &e), 0);
	assert_string_equal(cfl_authz_source(a),
	                    path_join(path, sizeof(path), local, "authorization.json.default"));
	assert_int_equal(cfl_authz_default(&dflt), 0);
	assert_policy(a, spec_default);
	for (size_t i = 0; i < N_OF(roles); i++) {
		for (int r = 0; r < CFL_RIGHT_COUNT; r++) {
			const char *x = cfl_authz_rule(a, roles[i], (enum cfl_right)r);
			const char *y = cfl_authz_rule(dflt, roles[i], (enum cfl_right)r);

			assert_true(x == y); /* static names: equal rules, equal pointers */
		}
	}
	cfl_authz_free(a);
	cfl_authz_free(dflt);

	/* The site's own authorization.json wins over the default. */
	write_text(path_join(path, sizeof(path), local, "authorization.json"),
	           "{\"format_version\": \"1.0\", \"permissions\": {\"member\": \"any\"}}");
	assert_int_equal(cfl_authz_load(local, &a, &e), 0);
	assert_string_equal(cfl_authz_source(a), path);
	assert_string_equal(cfl_authz_rule(a, "member", CFL_RIGHT_BYOC), "any");
	assert_null(cfl_authz_rule(a, "lead", CFL_RIGHT_VIEW));
	cfl_authz_free(a);

	/* A malformed authorization.json stops there: never the default instead. */
	write_text(path, "{\"format_version\": \"1.0\",\n \"permissions\": {\"lead\": \"all\"}}");
	assert_int_equal(cfl_authz_load(local, &a, &e), CFL_ECONFIG);
	assert_null(a);
	assert_true(strstr(e.msg, path) == e.msg);
	assert_string_equal(e.msg + strlen(path),
	                    ": line 2: permissions.lead: unknown condition 'all' (any, none, "
	                    "o:site, n:submitter, o:submitter)");
	/* So does one that cannot be read. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_not_equal(cfl_authz_load(local, &a, &e), 0);
	assert_null(a);
	assert_int_equal(rmdir(path), 0);
	tmp_remove();
}

/* A rule given as one condition holds for every right. */
static void test_shorthand(void **state)
{
	static const char *const want[4][CFL_RIGHT_COUNT] = {
	        {"none", "none", "none", "none", "none", "none", "none", "none"},
	        {"o:submitter", "o:submitter", "o:submitter", "o:submitter", "o:submitter",
	         "o:submitter", "o:submitter", "o:submitter"},
	        {"n:submitter", "n:submitter", "n:submitter", "n:submitter", "n:submitter",
	         "n:submitter", "n:submitter", "n:submitter"},
	        {"o:site", "o:site", "o:site", "o:site", "o:site", "o:site", "o:site", "o:site"},
	};
	struct cfl_authz *a = load("{\"format_version\": \"1.0\", \"permissions\": {"
	                           "\"project_admin\": \"none\", \"org_admin\": \"o:submitter\", "
	                           "\"lead\": \"n:submitter\", \"member\": \"o:site\"}}");
	struct cfl_authz_who pa = {"root@a.org", "a.org", "project_admin"};
	char why[256];

	(void)state;
	assert_policy(a, want);
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_VIEW, &pa, NULL, "a.org", why, sizeof(why)),
	                 CFL_EPERM);
	assert_string_equal(why, "view not granted to root@a.org (project_admin: none)");
	cfl_authz_free(a);
}

/* A right the role's object does not name is denied; a role the file does not name has no
 * right; a role no policy knows has none either. */
static void test_missing_rights(void **state)
{
	static const char *const want[4][CFL_RIGHT_COUNT] = {
	        {NULL},
	        {NULL},
	        {NULL, NULL, NULL, "o:submitter", "any", NULL, NULL, NULL},
	        {NULL},
	};
	struct cfl_authz *a = load("{\"format_version\": \"1.0\", \"permissions\": {"
	                           "\"lead\": {\"view\": \"any\", \"download_job\": "
	                           "\"o:submitter\"}, \"org_admin\": {}}}");
	struct cfl_authz_who lead = {"lead@a.org", "a.org", "lead"};
	struct cfl_authz_who pa = {"root@a.org", "a.org", "project_admin"};
	struct cfl_authz_who odd = {"odd@a.org", "a.org", "researcher"};
	struct cfl_authz_who none = {"nobody@a.org", "a.org", NULL};
	char why[256];

	(void)state;
	assert_policy(a, want);
	assert_int_equal(
	        cfl_authz_check(a, CFL_RIGHT_SUBMIT_JOB, &lead, NULL, "a.org", why, sizeof(why)),
	        CFL_EPERM);
	assert_string_equal(why, "submit_job not granted to lead@a.org (lead: not listed)");
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_VIEW, &pa, NULL, "a.org", why, sizeof(why)),
	                 CFL_EPERM);
	assert_string_equal(why, "view not granted to root@a.org (project_admin: no rule in the "
	                         "policy)");
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_VIEW, &odd, NULL, "a.org", why, sizeof(why)),
	                 CFL_EPERM);
	assert_string_equal(why, "view not granted to odd@a.org (role 'researcher' is not one the "
	                         "policy knows)");
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_VIEW, &none, NULL, "a.org", why, sizeof(why)),
	                 CFL_EPERM);
	assert_string_equal(
	        why, "view not granted to nobody@a.org (role '-' is not one the policy knows)");
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_VIEW, NULL, NULL, "a.org", why, sizeof(why)),
	                 CFL_EPERM);
	assert_int_equal(
	        cfl_authz_check(NULL, CFL_RIGHT_VIEW, &lead, NULL, "a.org", why, sizeof(why)),
	        CFL_EPERM);
	assert_int_equal(
	        cfl_authz_check(a, CFL_RIGHT_COUNT, &lead, NULL, "a.org", why, sizeof(why)),
	        CFL_EPERM);
	/* An empty permissions object denies everything, to everyone. */
	cfl_authz_free(a);
	a = load("{\"format_version\": \"1.0\", \"permissions\": {}}");
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_VIEW, &pa, NULL, "a.org", why, sizeof(why)),
	                 CFL_EPERM);
	cfl_authz_free(a);
}

/* Names and orgs that are missing or empty match nothing, not each other. */
static void test_empty_names(void **state)
{
	struct cfl_authz *a = load("{\"format_version\": \"1.0\", \"permissions\": {"
	                           "\"lead\": {\"operate\": \"o:site\", \"manage_job\": "
	                           "\"n:submitter\", \"download_job\": \"o:submitter\"}}}");
	struct cfl_authz_who noorg = {"lead@a.org", "", "lead"};
	struct cfl_authz_who nullorg = {"lead@a.org", NULL, "lead"};
	struct cfl_authz_who noname = {"", "a.org", "lead"};
	struct cfl_authz_who sub_noorg = {"x@a.org", "", "lead"};
	struct cfl_authz_who sub_noname = {"", "a.org", "lead"};

	(void)state;
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_OPERATE, &noorg, NULL, "", NULL, 0),
	                 CFL_EPERM);
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_OPERATE, &nullorg, NULL, NULL, NULL, 0),
	                 CFL_EPERM);
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_OPERATE, &noname, NULL, NULL, NULL, 0),
	                 CFL_EPERM);
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_OPERATE, &noname, NULL, "a.org", NULL, 0), 0);
	assert_int_equal(
	        cfl_authz_check(a, CFL_RIGHT_MANAGE_JOB, &noname, &sub_noname, "a.org", NULL, 0),
	        CFL_EPERM);
	assert_int_equal(
	        cfl_authz_check(a, CFL_RIGHT_DOWNLOAD_JOB, &noorg, &sub_noorg, "a.org", NULL, 0),
	        CFL_EPERM);
	/* Case counts: "A.org" is another org. */
	noorg.org = "A.org";
	assert_int_equal(cfl_authz_check(a, CFL_RIGHT_OPERATE, &noorg, NULL, "a.org", NULL, 0),
	                 CFL_EPERM);
	cfl_authz_free(a);
}

static void test_right_names(void **state)
{
	static const char *const names[CFL_RIGHT_COUNT] = {
	        "submit_job", "clone_job", "manage_job",     "download_job",
	        "view",       "operate",   "shell_commands", "byoc"};
	enum cfl_right r;

	(void)state;
	for (int i = 0; i < CFL_RIGHT_COUNT; i++) {
		assert_string_equal(cfl_authz_right_name((enum cfl_right)i), names[i]);
		assert_int_equal(cfl_authz_right_parse(names[i], &r), 0);
		assert_int_equal(r, i);
	}
	assert_string_equal(cfl_authz_right_name(CFL_RIGHT_COUNT), "?");
	assert_string_equal(cfl_authz_right_name((enum cfl_right) - 1), "?");
	assert_int_equal(cfl_authz_right_parse("Submit_job", &r), CFL_EINVAL);
	assert_int_equal(cfl_authz_right_parse("", &r), CFL_EINVAL);
	assert_int_equal(cfl_authz_right_parse(NULL, &r), CFL_EINVAL);
}

/* Malformed files: each refused, nothing returned, with the message an operator reads. */
static void test_malformed(void **state)
{
#define CONDS "(any, none, o:site, n:submitter, o:submitter)"
#define RIGHTS \
	"(submit_job, clone_job, manage_job, download_job, view, operate, shell_commands, byoc)"
	char want[512];
	static const struct {
		const char *text, *msg;
	} cases[] = {
	        {"", "line 1: '[' or '{' expected near end of file"},
	        {"{\"format_version\": \"1.0\",\n \"permissions\": {\n",
	         "line 3: string or '}' expected near end of file"},
	        {"{\"format_version\": \"1.0\",\n \"permissions\": {}}\n{}",
	         "line 3: end of file expected near '{'"},
	        {"{\"format_version\": \"1.0\",\n \"permissions\": {\"lead\": \"any\",\n"
	         " \"lead\": \"none\"}}",
	         "line 3: duplicate object key near '\"lead\"'"},
	        {"\n[\"format_version\", \"1.0\"]", "line 2: not a JSON object"},
	        {"{\"permissions\": {}}", "line 1: missing key 'format_version' (\"1.0\")"},
	        {"{\"format_version\": \"1.0\"}", "line 1: missing key 'permissions'"},
	        {"{\n  \"format_version\": 1,\n  \"permissions\": {}\n}",
	         "line 2: format_version: must be the string \"1.0\""},
	        {"{\n  \"format_version\": \"2.0\",\n  \"permissions\": {}\n}",
	         "line 2: format_version: must be the string \"1.0\""},
	        {"{\n  \"format_version\": \"1.0\",\n  \"permissions\": {},\n  \"allow_all\": "
	         "true\n}",
	         "line 4: unknown key 'allow_all' (format_version, permissions)"},
	        {"{\"format_version\": \"1.0\",\n\"permissions\": [\"lead\"]}",
	         "line 2: permissions: must be an object of role: rule"},
	        {"{\"format_version\": \"1.0\",\n\"permissions\": \"any\"}",
	         "line 2: permissions: must be an object of role: rule"},
	        {"{\"format_version\": \"1.0\", \"permissions\": {\n  \"lead\": \"any\",\n"
	         "  \"researcher\": \"any\"}}",
	         "line 3: permissions: unknown role 'researcher' (project_admin, org_admin, lead, "
	         "member)"},
	        {"{\"format_version\": \"1.0\", \"permissions\": {\n  \"Lead\": \"any\"}}",
	         "line 2: permissions: unknown role 'Lead' (project_admin, org_admin, lead, "
	         "member)"},
	        {"{\"format_version\": \"1.0\", \"permissions\": {\n\n  \"lead\": 1}}",
	         "line 3: permissions.lead: must be a condition or an object of right: condition"},
	        {"{\"format_version\": \"1.0\", \"permissions\": {\n  \"lead\": null}}",
	         "line 2: permissions.lead: must be a condition or an object of right: condition"},
	        {"{\"format_version\": \"1.0\", \"permissions\": {\n  \"member\": \"all\"}}",
	         "line 2: permissions.member: unknown condition 'all' " CONDS},
	        {"{\"format_version\": \"1.0\", \"permissions\": {\n  \"member\": \"\"}}",
	         "line 2: permissions.member: unknown condition '' " CONDS},
	        {"{\"format_version\": \"1.0\", \"permissions\": {\"lead\": {\n  \"view\": \"any\","
	         "\n  \"delete_job\": \"any\"}}}",
	         "line 3: permissions.lead: unknown right 'delete_job' " RIGHTS},
	        {"{\"format_version\": \"1.0\", \"permissions\": {\"lead\": {\n  \"byoc\": true}}}",
	         "line 2: permissions.lead.byoc: must be a condition " CONDS},
	        {"{\"format_version\": \"1.0\", \"permissions\": {\"lead\": {\n  \"byoc\": "
	         "[\"any\"]}}}",
	         "line 2: permissions.lead.byoc: must be a condition " CONDS},
	        {"{\"format_version\": \"1.0\", \"permissions\": {\"lead\": {\n  \"byoc\": "
	         "\"o:org\"}}}",
	         "line 2: permissions.lead.byoc: unknown condition 'o:org' " CONDS},
	        {"{\"format_version\": \"1.0\", \"permissions\": {\"lead\": {\n  \"byoc\": "
	         "\"ANY\"}}}",
	         "line 2: permissions.lead.byoc: unknown condition 'ANY' " CONDS},
	        /* A key the text spells with an escape: found by jansson, not by its line. */
	        {"{\"format_version\": \"1.0\", \"permissions\": {\n  \"le\\u0061d\": {\"x\": "
	         "\"any\"}}}",
	         "permissions.lead: unknown right 'x' " RIGHTS},
	        /* Keys named like the path elsewhere do not mislead the line. */
	        {"{\"format_version\": \"1.0\",\n \"permissions\": {\"member\": {\"view\": "
	         "\"any\"},\n"
	         "  \"lead\": {\"view\": \"any\",\n \"byoc\": \"sometimes\"}}}",
	         "line 4: permissions.lead.byoc: unknown condition 'sometimes' " CONDS},
	};

	(void)state;
	for (size_t i = 0; i < N_OF(cases); i++) {
		static char junk;
		struct cfl_authz *a = (struct cfl_authz *)(void *)&junk; /* must come back NULL */
		struct cfl_err e = {0};
		int rc = cfl_authz_load_mem(cases[i].text, strlen(cases[i].text), "p.json", &a, &e);

		snprintf(want, sizeof(want), "p.json: %s", cases[i].msg);
		if (rc != CFL_ECONFIG || a != NULL || strcmp(e.msg, want) != 0)
			fail_msg("case %zu: rc %d, message\n  '%s'\nwant\n  '%s'", i, rc, e.msg,
			         want);
	}
}

/* Bytes that are not text, and the size bound. */
static void test_odd_input(void **state)
{
	static const char nul[] =
	        "{\"format_version\": \"1.0\", \"permissions\": {\"lead\": \"a\0y\"}}";
	struct cfl_authz *a = NULL;
	struct cfl_err e = {0};
	size_t big = (1u << 20) + 1;
	char *text = malloc(big + 1);

	(void)state;
	assert_int_equal(cfl_authz_load_mem(nul, sizeof(nul) - 1, "p.json", &a, &e), CFL_ECONFIG);
	assert_null(a);
	assert_non_null(text);
	memset(text, ' ', big);
	text[big] = '\0';
	memcpy(text, "{\"format_version\": \"1.0\", \"permissions\": {}}", 44);
	assert_int_equal(cfl_authz_load_mem(text, big, "p.json", &a, &e), CFL_ETOOBIG);
	assert_string_equal(e.msg, "p.json: larger than 1048576 bytes");
	assert_int_equal(cfl_authz_load_mem(text, big - 1, "p.json", &a, &e), 0);
	cfl_authz_free(a);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_default_policy),
	        cmocka_unit_test(test_default_reasons),
	        cmocka_unit_test(test_provisioned_template),
	        cmocka_unit_test(test_shorthand),
	        cmocka_unit_test(test_missing_rights),
	        cmocka_unit_test(test_empty_names),
	        cmocka_unit_test(test_right_names),
	        cmocka_unit_test(test_malformed),
	        cmocka_unit_test(test_odd_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
