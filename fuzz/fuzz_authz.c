/* libFuzzer target for the federated authorization policy (src/authz/authz_load.c): a
 * participant's local/authorization.json, read by cfl_authz_load_mem().
 *
 * Input: the file's text. Loading must never crash, leak or hang. When it fails, nothing comes
 * back and the message names the file (a policy that cannot be read denies everything: the
 * caller has nothing to check against). When it succeeds, every rule is one of the five
 * conditions or none, and every check agrees with its rule: "any" grants in every situation,
 * "none" and an unlisted right in none, the three others exactly when their names or orgs
 * match. A role that is not one of the four never gets a right. Any broken promise aborts,
 * which libFuzzer reports as a crash. */
#include "cfl/authz.h"
#include "cfl/err.h"
#include "cfl/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NAME "authorization.json"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static const char *const roles[] = {"project_admin", "org_admin", "lead", "member"};

/* Admin x@a.org of a.org, at a site of org `site`; the job, if any, by `sub_name` of `sub_org`. */
struct scene {
	const char *site, *sub_name, *sub_org;
	int o_site, n_sub, o_sub; /* which conditions hold */
};

static const struct scene scenes[] = {
        {"a.org", "x@a.org", "a.org", 1, 1, 1},
        {"b.org", "y@a.org", "a.org", 0, 0, 1},
        {"a.org", "x@a.org", "b.org", 1, 1, 0},
        {"b.org", NULL, NULL, 0, 0, 0},
        {"", "", "", 0, 0, 0},
};

static int expected(const char *rule, const struct scene *s)
{
	if (rule == NULL || strcmp(rule, "none") == 0)
		return 0;
	if (strcmp(rule, "any") == 0)
		return 1;
	if (strcmp(rule, "o:site") == 0)
		return s->o_site;
	if (strcmp(rule, "n:submitter") == 0)
		return s->n_sub;
	check(strcmp(rule, "o:submitter") == 0);
	return s->o_sub;
}

static void check_policy(const struct cfl_authz *a)
{
	char why[256];

	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		for (int r = 0; r < CFL_RIGHT_COUNT; r++) {
			const char *rule = cfl_authz_rule(a, roles[i], (enum cfl_right)r);

			for (size_t k = 0; k < sizeof(scenes) / sizeof(scenes[0]); k++) {
				const struct scene *s = &scenes[k];
				struct cfl_authz_who admin = {"x@a.org", "a.org", roles[i]};
				struct cfl_authz_who sub = {s->sub_name, s->sub_org, "lead"};
				int rc = cfl_authz_check(a, (enum cfl_right)r, &admin,
				                         s->sub_name ? &sub : NULL, s->site, why,
				                         sizeof(why));

				check(rc == 0 || rc == CFL_EPERM);
				check((rc == 0) == expected(rule, s));
				check(memchr(why, '\0', sizeof(why)) != NULL);
			}
		}
	}
	{
		struct cfl_authz_who odd = {"x@a.org", "a.org", "researcher"};

		for (int r = 0; r < CFL_RIGHT_COUNT; r++)
			check(cfl_authz_check(a, (enum cfl_right)r, &odd, NULL, "a.org", NULL, 0) ==
			      CFL_EPERM);
	}
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
	static char junk;
	struct cfl_authz *a = (struct cfl_authz *)(void *)&junk;
	struct cfl_err e = {0};
	int rc = cfl_authz_load_mem((const char *)data, size, NAME, &a, &e);

	if (rc == 0) {
		check(a != NULL);
		check_policy(a);
		cfl_authz_free(a);
	} else {
		check(a == NULL && rc < 0 && e.code == rc);
		check(strncmp(e.msg, NAME ": ", sizeof(NAME) + 1) == 0);
	}
	return 0;
}
