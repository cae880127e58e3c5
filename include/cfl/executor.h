/* The client side of FL jobs: receives jobs and training tasks from the server, runs the
 * built-in trainer or the job's external command on a worker thread, and hands the update
 * back when the server pulls it (docs/jobs.md).
 *
 * Threads: the API runs on the loop's thread; training runs on one worker thread at a time,
 * which hands its result back with cfl_loop_post(). */
#ifndef CFL_EXECUTOR_H
#define CFL_EXECUTOR_H

#include "cfl/err.h"
#include "cfl/msg.h"

struct cfl_executor;

/* Called when an admin asks this site to shut down. */
typedef void (*cfl_executor_shutdown_fn)(void *arg);

struct cfl_executor_cfg {
	const char *work_dir; /* jobs are unpacked under work_dir/<job id>/ */
	const char *site;     /* this site's name */
	/* The kit's rootCA.pem (the trust anchor) and the site's own certificate file
	 * (startup/client.crt: the leaf, then the issuing chain): a job is deployed only when
	 * signed by an admin certificate of the project's issuing CA, the issuer of the site's own
	 * certificate (docs/jobs.md "Signed jobs"). root_ca is required; cert_file NULL: the
	 * anchor issues the certificates. */
	const char *root_ca;
	const char *cert_file;
	cfl_executor_shutdown_fn on_shutdown; /* may be NULL */
	void *arg;                            /* for on_shutdown */
	/* The site's own policy (SPEC §10, docs/security.md): the kit's local/ folder, from which
	 * authorization.json (else authorization.json.default) decides who may run what here and
	 * privacy.json which result filters apply. NULL: NVFlare's default authorization policy
	 * and no privacy policy (in-process tests). */
	const char *local_dir;
	const char *org; /* this site's org (its certificate's O), for "o:site"; NULL: "" */
};

/* Registers the job topics on `hub`. Loads the trust (root CA and issuing chain): CFL_EINVAL /
 * CFL_EIO / CFL_EPARSE with `e` when it cannot. */
int cfl_executor_new(struct cfl_msg_hub *hub, const struct cfl_executor_cfg *cfg,
                     struct cfl_executor **out, struct cfl_err *e);
/* Reads the site's policy files again (SIGHUP). One that does not load leaves the policy in
 * force and returns its error; jobs already deployed keep their decision. */
int cfl_executor_reload(struct cfl_executor *x, struct cfl_err *e);
/* The connection to the server is gone: a result still being computed is dropped. */
void cfl_executor_peer_down(struct cfl_executor *x, struct cfl_peer *p);
/* Waits for a running training thread, then frees. NULL is a no-op. */
void cfl_executor_free(struct cfl_executor *x);

#endif
