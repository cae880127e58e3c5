/* Internal to the server role: the admin commands served over the messaging hub. */
#ifndef CFL_SERVER_INT_H
#define CFL_SERVER_INT_H

#include "cfl/auth.h"
#include "cfl/authz.h"
#include "cfl/jobs.h"
#include "cfl/msg.h"

#include <stdint.h>

struct cfl__server_info {
	const char *name;
	const char *project;
	const char *org;    /* the O of the server's certificate: "o:site" for its policy */
	int64_t started_ms; /* unix ms */
	/* The server's policy (its kit's local/authorization.json), read at each command: the
	 * server replaces it on SIGHUP. */
	struct cfl_authz *const *policy;
};

/* Registers the `admin` topic: commands from logged-in admins, each allowed by a right of the
 * server's policy (docs/security.md, "Console rights"). */
int cfl__server_admin_init(struct cfl_msg_hub *hub, struct cfl_auth_server *auth,
                           struct cfl_jobs *jobs, const struct cfl__server_info *info);

/* An admin command line split into words: the verb and the two words after it (more are
 * ignored: no command takes more). */
struct cfl__admin_cmd {
	char verb[64], arg[256], arg2[256], arg3[32];
};

/* Splits `line` (an admin request's `cmd` header) at blanks (space, \t, \n, \v, \f, \r).
 * Returns 0, or CFL_EINVAL with the reason in err[0..en) when it holds no word, or a word too
 * long for its field: such a word is refused, never cut, since its first bytes may name
 * another client or job. Exposed for fuzz/fuzz_admin.c. */
int cfl__admin_cmd_parse(const char *line, struct cfl__admin_cmd *c, char *err, size_t en);

#endif
