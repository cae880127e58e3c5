/* Diagnostics over a logged-in session, for tests, benchmarks and operators checking a path
 * (docs/server-client.md): the topics a server answers (ping always; echo, sink, source with
 * `cfl server --diag`) and the client-side actions that drive them.
 *
 * An action runs on the loop's thread over the peer it is given; `pingloop` outlives lost
 * connections (cfl_diag_start again after each login). The library prints nothing: the
 * action's summary line goes to its done callback, for the program to show. */
#ifndef CFL_DIAG_H
#define CFL_DIAG_H

#include "cfl/err.h"
#include "cfl/loop.h"
#include "cfl/msg.h"

#include <stdint.h>

enum cfl_diag_kind {
	CFL_DIAG_PING = 1, /* n request/reply round trips */
	CFL_DIAG_SEND,     /* stream n bytes to the server and check its checksum */
	CFL_DIAG_RECV,     /* receive n bytes from the server and check them */
	CFL_DIAG_MESSAGE,  /* one echo request with `text`, to the cell `to` (NULL: the server) */
	CFL_DIAG_ONEWAY,   /* n one-way messages, then one request to flush */
	CFL_DIAG_PINGLOOP, /* a request every 200 ms for n seconds, surviving reconnects */
};

struct cfl_diag_action {
	enum cfl_diag_kind kind;
	uint64_t n;
	const char *text;
	const char *to;
};

/* Called once when the action ends: status 0 and its summary ("ping: 1000 round trips in
 * 0.081 s (12345/s)"), or a CFL_E* code and the reason. */
typedef void (*cfl_diag_done_fn)(int status, const char *line, void *arg);

struct cfl_diag;

/* Prepares an action (nothing is sent yet). Returns 0, CFL_EINVAL or CFL_ENOMEM. The action's
 * strings must outlive it. */
int cfl_diag_new(struct cfl_loop *loop, const struct cfl_diag_action *act, cfl_diag_done_fn done,
                 void *arg, struct cfl_diag **out);

/* Starts (or, for pingloop after a reconnect, resumes) the action over `p`. */
void cfl_diag_start(struct cfl_diag *d, struct cfl_peer *p);

/* The peer is gone: pingloop counts ticks as offline until the next start. */
void cfl_diag_peer_down(struct cfl_diag *d);

/* Whether the action survives lost connections (the client then reconnects). */
int cfl_diag_persistent(const struct cfl_diag *d);

/* Frees the action; NULL is a no-op. Pending requests must be gone (their peer closed). */
void cfl_diag_free(struct cfl_diag *d);

/* Registers `ping` on a server's hub (an empty answer: what a heartbeat costs). Every server
 * serves it, so an operator can check a path against a production server (cfl client
 * --ping). */
int cfl_diag_serve_ping(struct cfl_msg_hub *hub, struct cfl_err *e);

/* Registers the test topics on a server's hub, for tests, benchmarks and operators checking a
 * path, only when `cfl server --diag` starts it: echo (the body back), sink (an upload of any
 * size), source (a download of any size), ping; and lets echo be routed between sites. */
int cfl_diag_serve(struct cfl_msg_hub *hub, struct cfl_err *e);

/* Registers `echo` on a site's hub, so a message routed to the site is answered (--to). */
int cfl_diag_serve_echo(struct cfl_msg_hub *hub, struct cfl_err *e);

#endif
