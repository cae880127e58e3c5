/* FL jobs on the server: the job store, the scheduler and the FedAvg workflow (SPEC §8,
 * docs/jobs.md).
 *
 * A job is a folder submitted by an admin as a bundle (JSON: {"files": {name: base64}}, with
 * meta.json and config.json among the files), signed by that admin (cfl/manifest.h: the
 * bundle's "manifest", "signature" and "certificate"). The server checks the signature at
 * submission, stores the bundle byte for byte and sends it so to every site, which checks it
 * again before it uses the job. The server keeps each job under
 * <server kit>/jobs/<id>/ with its state, its bundle, the global model after the last completed
 * round and the metrics per round, so that a restarted server resumes a running job from its
 * last completed round. One job runs at a time; its states are SUBMITTED → DISPATCHED →
 * RUNNING → FINISHED:COMPLETED, or FINISHED:ABORTED / FINISHED:EXECUTION_EXCEPTION.
 *
 * Threads: the loop's thread only. */
#ifndef CFL_JOBS_H
#define CFL_JOBS_H

#include "cfl/auth.h"
#include "cfl/err.h"
#include "cfl/msg.h"

#include <stddef.h>

#define CFL_JOB_BUNDLE_MAX (64u << 20)

struct cfl_jobs;

struct cfl_jobs_cfg {
	const char *dir; /* where jobs are kept (created if missing) */
	/* The project's rootCA.pem (the trust anchor) and the server's own certificate file
	 * (startup/server.crt: the leaf, then the issuing chain): a job is accepted only when
	 * signed by an admin certificate of the project's issuing CA (the issuer of the server's
	 * own certificate), to the name of the admin who submits it. root_ca is required;
	 * cert_file NULL: the anchor issues the certificates. */
	const char *root_ca;
	const char *cert_file;
};

/* Jobs found in cfg->dir are loaded; a job that was running is resumed. */
int cfl_jobs_new(struct cfl_msg_hub *hub, struct cfl_auth_server *auth,
                 const struct cfl_jobs_cfg *cfg, struct cfl_jobs **out, struct cfl_err *e);
/* Frees the store and its FedAvg runs, finished ones still awaiting replies included. Call it
 * after cfl_msg_hub_free of the hub given to cfl_jobs_new, which drops those replies without
 * calling back. */
void cfl_jobs_free(struct cfl_jobs *j);

/* Who submitted a job, as the admin's login certificate says: CN, O and role. The server's
 * policy checks n:submitter and o:submitter against it (docs/security.md). */
struct cfl_jobs_who {
	char name[CFL_AUTH_NAME_MAX];
	char org[CFL_AUTH_NAME_MAX];
	char role[64];
};

/* Stores a new job from its bundle, submitted by `by` (the logged-in admin), who must have
 * signed it; writes its id into id (size >= 64). CFL_ECONFIG for a bad bundle, CFL_EVERIFY (or
 * CFL_EPARSE) for a bad signature, with the reason in `e`. */
int cfl_jobs_submit(struct cfl_jobs *j, const char *bundle, size_t len,
                    const struct cfl_jobs_who *by, char *id, struct cfl_err *e);
/* The submitter of job `id` into *out. Returns 0 or CFL_ENOENT. */
int cfl_jobs_submitter(struct cfl_jobs *j, const char *id, struct cfl_jobs_who *out);
/* JSON text (new buffer, free()) describing every job, or one job when id is not NULL. */
char *cfl_jobs_list(struct cfl_jobs *j, const char *id);
/* Aborts job `id`: stops its run when it is the one running, else marks it aborted so that
 * it never starts (or resumes). Returns 0, CFL_ENOENT (no such job) or CFL_EINVAL (already
 * finished), with `e`. */
int cfl_jobs_abort(struct cfl_jobs *j, const char *id, struct cfl_err *e);
/* The job's results as a bundle (JSON {"files": {...}}: model.safetensors, metrics.json,
 * metrics.csv, job.json); new buffer, free(). */
int cfl_jobs_download(struct cfl_jobs *j, const char *id, char **bundle, size_t *len,
                      struct cfl_err *e);
/* Tells the scheduler that the set of connected clients changed. */
void cfl_jobs_kick(struct cfl_jobs *j);

#endif
