/* Federated authorization: the names, NVFlare's default policy and the check itself. The
 * reading of a policy file is authz_load.c. */
#include "authz_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const right_names[CFL_RIGHT_COUNT] = {
        [CFL_RIGHT_SUBMIT_JOB] = "submit_job",
        [CFL_RIGHT_CLONE_JOB] = "clone_job",
        [CFL_RIGHT_MANAGE_JOB] = "manage_job",
        [CFL_RIGHT_DOWNLOAD_JOB] = "download_job",
        [CFL_RIGHT_VIEW] = "view",
        [CFL_RIGHT_OPERATE] = "operate",
        [CFL_RIGHT_SHELL_COMMANDS] = "shell_commands",
        [CFL_RIGHT_BYOC] = "byoc",
};

const char *const cfl__authz_role_names[ROLE_COUNT] = {
        [ROLE_PROJECT_ADMIN] = "project_admin",
        [ROLE_ORG_ADMIN] = "org_admin",
        [ROLE_LEAD] = "lead",
        [ROLE_MEMBER] = "member",
};

const char *const cfl__authz_cond_names[COND_COUNT] = {
        [COND_UNLISTED] = NULL,
        [COND_ANY] = "any",
        [COND_NONE] = "none",
        [COND_O_SITE] = "o:site",
        [COND_N_SUBMITTER] = "n:submitter",
        [COND_O_SUBMITTER] = "o:submitter",
};

/* NVFlare's authorization.json.default (SPEC §10), which provisioning writes into every kit:
 * a project_admin may do anything; an org_admin manages and downloads its org's jobs and
 * operates its org's sites but submits nothing; a lead submits jobs (custom code included),
 * manages and downloads its own, operates its org's sites; a member only looks. */
static const unsigned char flare_default[ROLE_COUNT][CFL_RIGHT_COUNT] = {
        [ROLE_PROJECT_ADMIN] = {COND_ANY, COND_ANY, COND_ANY, COND_ANY, COND_ANY, COND_ANY,
                                COND_ANY, COND_ANY},
        [ROLE_ORG_ADMIN] =
                {
                        [CFL_RIGHT_SUBMIT_JOB] = COND_NONE,
                        [CFL_RIGHT_CLONE_JOB] = COND_NONE,
                        [CFL_RIGHT_MANAGE_JOB] = COND_O_SUBMITTER,
                        [CFL_RIGHT_DOWNLOAD_JOB] = COND_O_SUBMITTER,
                        [CFL_RIGHT_VIEW] = COND_ANY,
                        [CFL_RIGHT_OPERATE] = COND_O_SITE,
                        [CFL_RIGHT_SHELL_COMMANDS] = COND_O_SITE,
                        [CFL_RIGHT_BYOC] = COND_NONE,
                },
        [ROLE_LEAD] =
                {
                        [CFL_RIGHT_SUBMIT_JOB] = COND_ANY,
                        [CFL_RIGHT_CLONE_JOB] = COND_N_SUBMITTER,
                        [CFL_RIGHT_MANAGE_JOB] = COND_N_SUBMITTER,
                        [CFL_RIGHT_DOWNLOAD_JOB] = COND_N_SUBMITTER,
                        [CFL_RIGHT_VIEW] = COND_ANY,
                        [CFL_RIGHT_OPERATE] = COND_O_SITE,
                        [CFL_RIGHT_SHELL_COMMANDS] = COND_O_SITE,
                        [CFL_RIGHT_BYOC] = COND_ANY,
                },
        [ROLE_MEMBER] = {[CFL_RIGHT_VIEW] = COND_ANY},
};

static int find(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s != NULL && i < n; i++) {
		if (names[i] != NULL && strcmp(names[i], s) == 0)
			return (int)i;
	}
	return -1;
}

int cfl__authz_role_parse(const char *s)
{
	return find(cfl__authz_role_names, N_OF(cfl__authz_role_names), s);
}

int cfl__authz_cond_parse(const char *s)
{
	return find(cfl__authz_cond_names, N_OF(cfl__authz_cond_names), s);
}

const char *cfl_authz_right_name(enum cfl_right r)
{
	return (unsigned)r < CFL_RIGHT_COUNT ? right_names[r] : "?";
}

int cfl_authz_right_parse(const char *s, enum cfl_right *out)
{
	int i = find(right_names, N_OF(right_names), s);

	if (i < 0)
		return CFL_EINVAL;
	*out = (enum cfl_right)i;
	return 0;
}

struct cfl_authz *cfl__authz_new(const char *source)
{
	struct cfl_authz *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->source = strdup(source);
	if (a->source == NULL) {
		free(a);
		return NULL;
	}
	return a;
}

int cfl_authz_default(struct cfl_authz **out)
{
	struct cfl_authz *a = cfl__authz_new("default");

	*out = NULL;
	if (a == NULL)
		return CFL_ENOMEM;
	memset(a->has_role, 1, sizeof(a->has_role));
	memcpy(a->rule, flare_default, sizeof(a->rule));
	*out = a;
	return 0;
}

void cfl_authz_free(struct cfl_authz *a)
{
	if (a == NULL)
		return;
	free(a->source);
	free(a);
}

const char *cfl_authz_source(const struct cfl_authz *a)
{
	return a->source;
}

const char *cfl_authz_rule(const struct cfl_authz *a, const char *role, enum cfl_right r)
{
	int i = cfl__authz_role_parse(role);

	if (i < 0 || (unsigned)r >= CFL_RIGHT_COUNT || !a->has_role[i])
		return NULL;
	return cfl__authz_cond_names[a->rule[i][r]];
}

/* Two names that are both given and equal: an empty org matches nothing, not another empty
 * org (a certificate without O must not pass o:site on a server without one). */
static int same(const char *x, const char *y)
{
	return x != NULL && y != NULL && x[0] != '\0' && strcmp(x, y) == 0;
}

static int holds(enum cfl__authz_cond c, const struct cfl_authz_who *admin,
                 const struct cfl_authz_who *submitter, const char *site_org)
{
	switch (c) {
	case COND_ANY:
		return 1;
	case COND_O_SITE:
		return same(admin->org, site_org);
	case COND_N_SUBMITTER:
		return submitter != NULL && same(admin->name, submitter->name);
	case COND_O_SUBMITTER:
		return submitter != NULL && same(admin->org, submitter->org);
	case COND_UNLISTED:
	case COND_NONE:
	default:
		return 0;
	}
}

static const char *or_dash(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : "-";
}

int cfl_authz_check(const struct cfl_authz *a, enum cfl_right r, const struct cfl_authz_who *admin,
                    const struct cfl_authz_who *submitter, const char *site_org, char *why,
                    size_t why_size)
{
	const char *right = cfl_authz_right_name(r);
	const char *name = admin != NULL ? or_dash(admin->name) : "-";
	const char *role = admin != NULL ? or_dash(admin->role) : "-";
	int i = admin != NULL ? cfl__authz_role_parse(admin->role) : -1;
	char rule[96];
	int ok = 0;

	if (a == NULL || (unsigned)r >= CFL_RIGHT_COUNT || i < 0) {
		snprintf(rule, sizeof(rule), "role '%s' is not one the policy knows", role);
	} else if (!a->has_role[i]) {
		snprintf(rule, sizeof(rule), "%s: no rule in the policy", role);
	} else {
		enum cfl__authz_cond c = (enum cfl__authz_cond)a->rule[i][r];

		ok = holds(c, admin, submitter, site_org);
		snprintf(rule, sizeof(rule), "%s: %s", role,
		         c == COND_UNLISTED ? "not listed" : cfl__authz_cond_names[c]);
	}
	if (why != NULL && why_size > 0)
		snprintf(why, why_size, "%s %s to %s (%s)", right, ok ? "granted" : "not granted",
		         name, rule);
	return ok ? 0 : CFL_EPERM;
}
