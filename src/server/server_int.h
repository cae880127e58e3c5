/* Internal to the server role: the admin commands served over the messaging hub. */
#ifndef CFL_SERVER_INT_H
#define CFL_SERVER_INT_H

#include "cfl/auth.h"
#include "cfl/jobs.h"
#include "cfl/msg.h"

#include <stdint.h>

struct cfl__server_info {
	const char *name;
	const char *project;
	int64_t started_ms; /* unix ms */
};

/* Registers the `admin` topic: commands from logged-in admins (docs/security.md roles). */
int cfl__server_admin_init(struct cfl_msg_hub *hub, struct cfl_auth_server *auth,
                           struct cfl_jobs *jobs, const struct cfl__server_info *info);

#endif
