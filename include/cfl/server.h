/* The FL server process: `cfl server <server kit folder>` (docs/server-client.md). */
#ifndef CFL_SERVER_H
#define CFL_SERVER_H

#include "cfl/err.h"

/* What `cfl server` may override of its kit (--port, --admin-port, --port-file,
 * --unsigned-kit), and --diag. */
struct cfl_server_opts {
	/* fed_learn_port: -1 the kit's, 0 one the kernel picks, else that port. */
	int port;
	/* admin_port, the same way. -1 with a kit whose admin_port equals fed_learn_port: the
	 * admin console shares the fed_learn_port listener, wherever that is. */
	int admin_port;
	/* NULL, or a file that receives "FED ADMIN\n", the ports listened on, once both listen;
	 * written to a temporary file and renamed, so a reader never sees half of it. */
	const char *port_file;
	/* 1: a kit without startup/signature.json runs unchecked (the simulator's kits, which
	 * it writes itself); a signed kit is checked either way. Never set from a kit. */
	int unsigned_kit;
	/* 1: serve the test topics echo, sink and source, and route echo between sites (tests,
	 * benchmarks, operators checking a path; cfl/diag.h). 0: only ping. */
	int diag;
};

/* Loads the kit, verifies its signature (cfl_kitcfg_verify_kit), listens, and serves until
 * SIGTERM/SIGINT. `opts` may be NULL (the kit's ports). Blocks. Returns 0 after a clean
 * shutdown, or a CFL_E* code with `e` set (kit changed, port in use, bad config...). */
int cfl_server_run(const char *kit_dir, const struct cfl_server_opts *opts, struct cfl_err *e);

#endif
