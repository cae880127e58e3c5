/* The FL client process: `cfl client <client kit folder> [action]` (docs/server-client.md). */
#ifndef CFL_CLIENT_H
#define CFL_CLIENT_H

#include "cfl/err.h"

#include <stdint.h>

enum cfl_client_action_kind {
	CFL_ACT_NONE = 0, /* run until SIGTERM/SIGINT, reconnecting after drops */
	CFL_ACT_PING,     /* n request/reply round trips */
	CFL_ACT_SEND,     /* stream n bytes to the server and check its checksum */
	CFL_ACT_RECV,     /* receive n bytes from the server and check them */
	CFL_ACT_MESSAGE,  /* one echo request with `text` */
	CFL_ACT_ONEWAY,   /* n one-way messages, then one request to flush */
	CFL_ACT_PINGLOOP, /* a request every 200 ms for n seconds, surviving reconnects */
	CFL_ACT_ADMIN,    /* admin console: `text` is one command, or NULL to read stdin */
};

struct cfl_client_action {
	enum cfl_client_action_kind kind;
	uint64_t n;
	const char *text;
	int stats;             /* print peak_rss_kib at the end */
	int connect_timeout_s; /* actions: give up after this long without a connection */
	int json;              /* admin: print replies as JSON */
	const char *to;        /* message: the cell to route it to (NULL: the server) */
	/* The server to dial instead of the kit's: NULL or "" keeps the kit's host, 0 its port.
	 * The server's certificate is checked against the host dialed. */
	const char *server_host;
	int server_port;
};

/* Runs the client. Blocks. With an action: returns 0 when it succeeded, else a CFL_E* code with
 * `e` set (a failure to connect is final). Without: returns 0 after SIGTERM/SIGINT. */
int cfl_client_run(const char *kit_dir, const struct cfl_client_action *act, struct cfl_err *e);

#endif
