/* Internal to the server's job runtime: the job record, the store and the FedAvg run. */
#ifndef CFL_JOBS_INT_H
#define CFL_JOBS_INT_H

#include "cfl/frame.h"
#include "cfl/jobs.h"
#include "cfl/loop.h"
#include "cfl/manifest.h"
#include "cfl/pki.h"

#include <jansson.h>
#include <limits.h>
#include <stdint.h>

enum job_state {
	JOB_SUBMITTED = 0,
	JOB_DISPATCHED,
	JOB_RUNNING,
	JOB_COMPLETED,
	JOB_ABORTED,
	JOB_EXCEPTION,
};

/* The most sites a job takes: beyond what one server holds (a process's descriptors, ~20,000
 * here), bounding the run's per-site records (fedavg.c's parts: ~0.4 KiB each). */
#define JOB_MAX_SITES           100000
#define JOB_MAX_ROUNDS          100000
#define JOB_MAX_ROUND_TIMEOUT_S (30 * 24 * 3600)
#define JOB_MAX_FILES           64 /* files in a job bundle */

struct job {
	struct job *next;
	char id[64];
	char name[128];
	char dir[PATH_MAX];
	struct cfl_jobs_who by; /* the submitter */
	int64_t submitted_at;
	enum job_state state;
	char error[CFL_ERR_MSG_MAX];
	json_t *config; /* config.json */
	int num_rounds, min_clients;
	uint64_t round_timeout_ms;
	uint64_t max_site_weight; /* workflow.max_site_weight; 0: not set (fedavg.c's default) */
	int rounds_done;
	/* The sites of the run, fixed when it starts (sorted), so that each keeps its data split
	 * index across reconnects. */
	char **sites;
	size_t n_sites;
	json_t *metrics; /* array, one object per completed round */
	/* What each site said of the job: {site: {"state": "accepted" | "refused" | "failed",
	 * "reason": text}}; a refusal is final for the job (docs/jobs.md). */
	json_t *site_states;
	/* site_states changed since the last save: written by the scheduler's next tick (at
	 * most a second later) or by the next cfl__job_save, whichever comes first. One write
	 * per site would make a round O(N^2) in bytes written. */
	int dirty;
	size_t n_accepted; /* sites whose state in site_states is "accepted" */
};

struct fedavg;

struct cfl_jobs {
	struct cfl_msg_hub *hub;
	struct cfl_auth_server *auth;
	struct cfl_loop *loop;
	char dir[PATH_MAX];
	struct job *jobs;       /* newest first */
	struct fedavg *run;     /* the running job, or NULL */
	struct fedavg *retired; /* finished runs whose last calls are still out */
	uint64_t sched_timer;
	struct cfl_pki_trust *trust; /* checks the signatures of submitted jobs */
};

const char *cfl__job_state_name(enum job_state s);
int cfl__job_finished(const struct job *jb);
/* Writes the job's state record (job.json) and metrics. */
int cfl__job_save(struct job *jb);
struct job *cfl__job_find(struct cfl_jobs *j, const char *id);
/* Records what `site` said of the job (state "accepted", "refused" or "failed", and why); the
 * job is saved within a second (jb->dirty). */
void cfl__job_site_state(struct job *jb, const char *site, const char *state, const char *reason);
/* A site that failed an earlier round and has trained in `round`: "accepted" again, its reason
 * keeping the failure ("trained again in round 3; round 2: ..."). Nothing for any other. */
void cfl__job_site_trained(struct job *jb, const char *site, int round);
/* Path of a file in the job's folder. */
int cfl__job_path(const struct job *jb, const char *name, char *buf, size_t size);
/* The job's bundle text (bundle.json), new buffer. */
int cfl__job_bundle(const struct job *jb, char **text, size_t *len, struct cfl_err *e);

/* A bundle's file names are plain names (1..128 of [A-Za-z0-9._-], not starting with '.'), so
 * nothing can be written outside the job folder. 1 if `n` is one. */
int cfl__job_safe_name(const char *n);
/* Parses a bundle (at most CFL_JOB_BUNDLE_MAX bytes, at most JOB_MAX_FILES files, each with a
 * safe name and base64 contents) and its config.json and meta.json (objects; meta.json
 * optional). Sets *bundle, *config and *meta to what it parsed, on failure too: the caller
 * json_decref()s all three (NULL-initialised). Returns 0 or CFL_ECONFIG / CFL_ETOOBIG with `e`
 * saying why. The in-memory half of cfl_jobs_submit(), and the bundle fuzz target's. */
int cfl__job_parse_bundle(const char *text, size_t len, json_t **bundle, json_t **config,
                          json_t **meta, struct cfl_err *e);
/* cfl_manifest_verify_bundle() on a bundle already parsed (manifest.c). */
int cfl__manifest_verify_json(json_t *bundle, const struct cfl_pki_trust *trust, time_t at,
                              struct cfl_job_signer *who, struct cfl_err *e);

/* Reads the workflow settings of config.json (docs/jobs.md) into `jb`, which then holds a
 * reference to `config`. Returns 0 or CFL_ECONFIG. */
int cfl__job_settings(struct job *jb, json_t *config, struct cfl_err *e);

/* The FedAvg run of one job (fedavg.c). */
int cfl__fedavg_start(struct cfl_jobs *j, struct job *jb, struct cfl_err *e);
/* Ends the run of `jb` as aborted. Returns 0, or CFL_ENOENT when `jb` is not the job running. */
int cfl__fedavg_abort(struct cfl_jobs *j, const struct job *jb, const char *why);
/* Frees the running and the retired runs. Only after the hub is freed: the replies that
 * they still await are then dropped without their callbacks. */
void cfl__fedavg_free_all(struct cfl_jobs *j);
void cfl__fedavg_kick(struct cfl_jobs *j);

/* The scheduler: starts the next submitted job when none runs (jobstore.c). */
void cfl__jobs_schedule(struct cfl_jobs *j);

/* The site's executor (executor.c): what it makes of the server's messages, exposed for
 * fuzz/fuzz_executor.c and fuzz/fuzz_bundle.c. */
struct cfl_executor;

/* The headers of a job message: always `job` (a valid job id), with CFL__HDR_ROUND `round`
 * (1..JOB_MAX_ROUNDS), with CFL__HDR_SITE `site_count` (1..JOB_MAX_SITES) and `site_index`
 * (below site_count); numbers in decimal digits only. Returns 0, or CFL_EPROTO when one is
 * missing or bad (h->job then holds the job header as far as it was read). */
#define CFL__HDR_ROUND 1
#define CFL__HDR_SITE  2
struct cfl__job_hdrs {
	char job[64];
	int round, site_index, site_count;
};
int cfl__executor_hdrs(const struct cfl_frame *f, int want, struct cfl__job_hdrs *h);

/* The config.json of a deployed job (borrowed), or NULL. Loop thread only. */
json_t *cfl__executor_config(struct cfl_executor *x, const char *job);

/* What a task of the job runs, from its config.json: the built-in trainer on `ex` (the
 * executor section), or executor.command's words (type command, or client_api with its
 * params_format) (1..CFL__JOB_MAX_ARGS strings, borrowed
 * from `cfg`); `diff` for workflow.result "diff". Returns 0 or CFL_ECONFIG with `e`. */
#define CFL__JOB_MAX_ARGS 32
struct cfl__job_plan {
	json_t *ex;
	int command, diff;
	int client_api;            /* executor.type "client_api": command is set too */
	const char *params_format; /* client_api: "numpy" or "pytorch" */
	size_t argc;
	const char *argv[CFL__JOB_MAX_ARGS];
};
int cfl__executor_plan(json_t *cfg, struct cfl__job_plan *p, struct cfl_err *e);

/* What the site does with a job.deploy body: checks the bundle's signature against the
 * site's root CA and every file against the signed manifest (cfl/manifest.h) before anything
 * of the job is written or read, then unpacks it (cfl__executor_unpack) and keeps the
 * verified submitter for the job. `job` must be a valid job id. Returns 0, or a CFL_E* code
 * with `e` naming what failed ("'config.json' does not match its signed digest"); a refused
 * job leaves nothing of it on the site, a copy deployed earlier included. */
int cfl__executor_deploy(struct cfl_executor *x, const char *job, const uint8_t *text, size_t len,
                         struct cfl_err *e);

/* Unpacks a job bundle whose signature cfl__executor_deploy checked into <work dir>/<job>/ and
 * keeps its config.json for the job's tasks; the fuzz targets call it directly, since they
 * cannot sign what they make up. Returns 0 or a CFL_E* code with `e`. */
int cfl__executor_unpack(struct cfl_executor *x, const char *job, const uint8_t *text, size_t len,
                         struct cfl_err *e);

/* Who submitted a job deployed on this site, from the certificate that signed it (never from
 * the server's word): for site policy. NULL when the job is not deployed here. Loop thread. */
const struct cfl_job_signer *cfl__executor_submitter(struct cfl_executor *x, const char *job);

#endif
