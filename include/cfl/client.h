/* The FL client process: `cfl client <client kit folder> [action]` (docs/server-client.md). */
#ifndef CFL_CLIENT_H
#define CFL_CLIENT_H

#include "cfl/diag.h"
#include "cfl/err.h"

#include <stdint.h>

enum cfl_client_action_kind {
	CFL_ACT_NONE = 0, /* run until SIGTERM/SIGINT, reconnecting after drops */
	CFL_ACT_DIAG,     /* a diagnostic action (cfl/diag.h) */
	CFL_ACT_ADMIN,    /* internal: admin sessions run through cfl_admin_run (cfl/admin.h) */
};

/* Receives an action's summary line when it succeeded (the program prints it). */
typedef void (*cfl_client_report_fn)(const char *line, void *arg);

struct cfl_client_action {
	enum cfl_client_action_kind kind;
	struct cfl_diag_action diag; /* CFL_ACT_DIAG */
	int connect_timeout_s;       /* actions: give up after this long without a connection */
	cfl_client_report_fn report;
	void *report_arg;
	/* The server to dial instead of the kit's: NULL or "" keeps the kit's host, 0 its port.
	 * The server's certificate is checked against the host dialed. */
	const char *server_host;
	int server_port;
	/* 1: a kit without startup/signature.json runs unchecked (the simulator's kits); a
	 * signed kit is checked either way. Never set from a kit. */
	int unsigned_kit;
};

/* Runs the client. Blocks. With an action: returns 0 when it succeeded, else a CFL_E* code with
 * `e` set (a failure to connect is final). Without: returns 0 after SIGTERM/SIGINT. */
int cfl_client_run(const char *kit_dir, const struct cfl_client_action *act, struct cfl_err *e);

#endif
