/* Internal to authz: the policy as a table of conditions, role by right. */
#ifndef CFL_AUTHZ_INT_H
#define CFL_AUTHZ_INT_H

#include "cfl/authz.h"

/* COND_UNLISTED (a right the role's object does not name) denies like "none"; it is kept
 * apart only so that a refusal can say which it was. */
enum cfl__authz_cond {
	COND_UNLISTED = 0,
	COND_ANY,
	COND_NONE,
	COND_O_SITE,
	COND_N_SUBMITTER,
	COND_O_SUBMITTER,
	COND_COUNT
};

enum cfl__authz_role { ROLE_PROJECT_ADMIN, ROLE_ORG_ADMIN, ROLE_LEAD, ROLE_MEMBER, ROLE_COUNT };

struct cfl_authz {
	unsigned char has_role[ROLE_COUNT];              /* the role is in the file */
	unsigned char rule[ROLE_COUNT][CFL_RIGHT_COUNT]; /* enum cfl__authz_cond */
	char *source;
};

/* Names as the file spells them; the index is the enum's value. -1 when `s` is none of them. */
extern const char *const cfl__authz_role_names[ROLE_COUNT];
extern const char *const cfl__authz_cond_names[COND_COUNT]; /* [COND_UNLISTED] is NULL */
int cfl__authz_role_parse(const char *s);
int cfl__authz_cond_parse(const char *s);

/* A new, all-denying policy named `source`; NULL when out of memory. */
struct cfl_authz *cfl__authz_new(const char *source);

#endif
