/* The FL server process: `cfl server <server kit folder>` (docs/server-client.md). */
#ifndef CFL_SERVER_H
#define CFL_SERVER_H

#include "cfl/err.h"

/* Loads the kit, verifies its signature when secure_train is on, listens, and serves until
 * SIGTERM/SIGINT. Blocks. Returns 0 after a clean shutdown, or a CFL_E* code with `e` set
 * (kit changed, port in use, bad config...). */
int cfl_server_run(const char *kit_dir, struct cfl_err *e);

#endif
