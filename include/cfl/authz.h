/* Federated authorization: a participant's own policy of who may do what (SPEC §10), in
 * NVFlare's format, read from the kit's local/authorization.json:
 *
 *   {"format_version": "1.0", "permissions": {ROLE: RULE}}
 *
 * ROLE is project_admin, org_admin, lead or member; RULE is one condition for every right, or
 * an object {RIGHT: CONDITION} where a right not listed is denied. Conditions: "any", "none",
 * "o:site" (the admin's org is this participant's org), "n:submitter" (the admin submitted the
 * job), "o:submitter" (the admin's org is the submitter's org).
 *
 * Everything unknown or of the wrong type is an error: a policy that cannot be read denies,
 * it never allows. A loaded policy is immutable; checks on it may run from any thread. */
#ifndef CFL_AUTHZ_H
#define CFL_AUTHZ_H

#include "cfl/err.h"

#include <stddef.h>

enum cfl_right {
	CFL_RIGHT_SUBMIT_JOB,
	CFL_RIGHT_CLONE_JOB,
	CFL_RIGHT_MANAGE_JOB,   /* abort, delete */
	CFL_RIGHT_DOWNLOAD_JOB, /* a job's results */
	CFL_RIGHT_VIEW,         /* list jobs, status */
	CFL_RIGHT_OPERATE,      /* shut down, remove a client */
	CFL_RIGHT_SHELL_COMMANDS,
	CFL_RIGHT_BYOC, /* a job that brings its own code (a `command` executor) */
	CFL_RIGHT_COUNT
};

/* An admin as its certificate names it: CN (an e-mail), O and role (unstructuredName). */
struct cfl_authz_who {
	const char *name, *org, *role;
};

struct cfl_authz;

/* Loads <local_dir>/authorization.json, else <local_dir>/authorization.json.default (NVFlare's
 * order: the site's own file wins over the provisioned default). Returns 0 with *out (free
 * with cfl_authz_free), CFL_ENOENT when neither file exists, or CFL_ECONFIG / CFL_EIO /
 * CFL_ETOOBIG with `e` as "FILE: line L: reason". Blocking (reads a file). */
int cfl_authz_load(const char *local_dir, struct cfl_authz **out, struct cfl_err *e);

/* The same from `len` bytes of text (at most 1 MiB); `name` stands for the file in messages.
 * Returns 0 with *out, or CFL_ECONFIG / CFL_ETOOBIG / CFL_ENOMEM with `e`. */
int cfl_authz_load_mem(const char *text, size_t len, const char *name, struct cfl_authz **out,
                       struct cfl_err *e);

/* NVFlare's default policy (the content of a provisioned authorization.json.default; SPEC
 * §10). Returns 0 with *out, or CFL_ENOMEM. */
int cfl_authz_default(struct cfl_authz **out);

/* Whether `admin` holds right `r` here. `submitter` is the job's submitter when the right
 * concerns a job, else NULL (then n:submitter and o:submitter deny); `site_org` is this
 * participant's own org (NULL or "": o:site denies). Empty names and orgs never match.
 * Returns 0 when granted, CFL_EPERM when not; either way writes the reason into why[0..size)
 * (may be NULL), e.g. "byoc not granted to lead@a.org (lead: o:site)". */
int cfl_authz_check(const struct cfl_authz *a, enum cfl_right r, const struct cfl_authz_who *admin,
                    const struct cfl_authz_who *submitter, const char *site_org, char *why,
                    size_t why_size);

/* The condition the policy gives `role` for `r` ("any", "o:site"...), or NULL when the role
 * is unknown or has no rule for `r` (denied). Static strings. */
const char *cfl_authz_rule(const struct cfl_authz *a, const char *role, enum cfl_right r);

/* Where the policy came from: the file name given to the loader, or "default". */
const char *cfl_authz_source(const struct cfl_authz *a);

/* "submit_job"... for a right; "?" when out of range. */
const char *cfl_authz_right_name(enum cfl_right r);
/* Parses a right's name. Returns 0 or CFL_EINVAL. */
int cfl_authz_right_parse(const char *s, enum cfl_right *out);

/* NULL is a no-op. */
void cfl_authz_free(struct cfl_authz *a);

#endif
