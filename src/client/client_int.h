/* Internal to the client role: the admin console that runs over a logged-in admin session. */
#ifndef CFL_CLIENT_INT_H
#define CFL_CLIENT_INT_H

#include "cfl/msg.h"

/* Called when the console is done: 0 after the last command, a CFL_E* code on failure. */
typedef void (*cfl__admin_done_fn)(int status, const char *reason, void *arg);

/* Runs `cmd` (or, when NULL, each line of stdin until EOF or "bye") as admin commands on the
 * server, printing each result (JSON with `json`, else a table); download_job writes into
 * `transfer`/<job id>/. Calls done once at the end. */
void cfl__admin_next(struct cfl_peer *p, const char *cmd, int json, const char *transfer,
                     cfl__admin_done_fn done, void *arg);

#endif
