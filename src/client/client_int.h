/* Internal to the client role: the admin session (admin_session.c) runs over a logged-in admin
 * client (client.c). */
#ifndef CFL_CLIENT_INT_H
#define CFL_CLIENT_INT_H

#include "cfl/admin.h"
#include "cfl/msg.h"

/* Called once when the session ends: 0, or a CFL_E* code and its reason. */
typedef void (*cfl__admin_done_fn)(int status, const char *reason, void *arg);

/* A session with `ops` (copied), not started: cfl_admin_run() runs it over a client; the fuzz
 * target (fuzz/fuzz_admin.c) starts it over its own peer. NULL when out of memory. */
struct cfl_admin *cfl__admin_new(const struct cfl_admin_ops *ops);
/* Frees `s` (NULL is a no-op); its peer must be gone or no longer used. */
void cfl__admin_free(struct cfl_admin *s);

/* cfl_client_run() for an admin kit: logs in, then drives session `s` (admin_session.c). */
int cfl__client_run_admin(const char *kit_dir, struct cfl_admin *s, struct cfl_err *e);

/* The operations (and server override) session `s` was started with. */
const struct cfl_admin_ops *cfl__admin_ops(const struct cfl_admin *s);

/* What the session uses of the admin's kit (the paths are copied). */
struct cfl__admin_kit {
	const char *transfer; /* download_job writes into transfer/<id>/ */
	const char *cert;     /* submit_job signs the job with client.crt and client.key */
	const char *key;      /* (NULL: submit_job fails) */
};

/* Logged in on `p`: the session starts (ops->ready). `done` runs once, when the session
 * ends. */
void cfl__admin_start(struct cfl_admin *s, struct cfl_peer *p, const struct cfl__admin_kit *kit,
                      cfl__admin_done_fn done, void *arg);

/* The connection went: `p` is no longer valid; the session sends nothing more. */
void cfl__admin_peer_down(struct cfl_admin *s);

#endif
