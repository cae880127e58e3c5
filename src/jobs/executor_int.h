/* Internal to the executor (executor.c: tasks and the executor's life; exec_deploy.c: job
 * deployment and the site's policy): its records and the helpers both files use. */
#ifndef CFL_JOBS_EXECUTOR_INT_H
#define CFL_JOBS_EXECUTOR_INT_H

#include "cfl/authz.h"
#include "cfl/executor.h"
#include "cfl/manifest.h"
#include "cfl/privacy.h"
#include "channel.h"
#include "jobs_int.h"

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define MODEL_MAX ((uint64_t)4 << 30)

/* A body arriving in pieces into one bounded buffer. */
struct inbuf {
	uint8_t *p;
	size_t len, cap;
	int failed;
};

/* What a task asks: train a round (task.train), or (client_api, executor.initial_model
 * "from_site") the script's initial weights (task.get_weights). */
enum task_kind { TASK_TRAIN = 0, TASK_GET_WEIGHTS };

struct task {
	struct cfl_executor *x;
	enum task_kind kind;
	int capi; /* run by the job's client_api script (clientapi.c), not a worker thread */
	struct cfl_peer *peer; /* NULL once the connection is gone */
	uint64_t req_id;
	char job[64];
	int round, site_index, site_count;
	json_t *cfg;     /* the job's config.json: a reference of the task's own, for the worker */
	atomic_int stop; /* set by the loop's thread: the job ended, or the site stops */
	struct cfl_privacy_scope *scope; /* the result filters: the task's own, for the worker */
	struct inbuf in;
	/* results, from the worker thread */
	struct cfl_model *model;
	uint64_t steps;
	float loss;
	int status;
	char err[CFL_ERR_MSG_MAX];
	struct cfl__rows rows; /* client_api: the round's metrics, sent with the result */
};

/* The verified submitter of each job deployed here (few: one job runs at a time). */
struct deployed {
	struct deployed *next;
	char job[64];
	struct cfl_job_signer who;
	char scope[128]; /* meta.json's "scope", "" when the job names none */
};

struct cfl_executor {
	struct cfl_msg_hub *hub;
	struct cfl_loop *loop;
	char dir[PATH_MAX];
	char site[256];
	char *env[8]; /* what job programs get of the site's environment (keep_env) */
	size_t n_env;
	cfl_executor_shutdown_fn on_shutdown;
	void *arg;
	json_t *configs; /* job id -> config.json */
	struct deployed *deployed;
	struct cfl_pki_trust *trust; /* rootCA.pem + own chain: checks the jobs' signatures */
	/* The site's own policy: who may run what here, and what leaves (docs/security.md). */
	char local[PATH_MAX]; /* the kit's local/ ("": the defaults) */
	char org[256];
	struct cfl_authz *authz;
	struct cfl_privacy *privacy; /* NULL: no privacy.json */
	struct task *running;
	struct task *queued; /* a task that arrived while an older one still trains */
	pthread_t thread;
	int has_thread;
	/* the last update, kept until the server pulls it */
	uint8_t *update;
	size_t update_len, update_sent;
	char update_job[64];
	int update_round;
	/* bundles being received, one record per job.deploy request (exec_deploy.c) */
	struct incoming *incoming;
	/* client_api scripts, one per job at most (clientapi.c) */
	struct capi *sessions;
	char pypath[PATH_MAX]; /* the shipped `cfl` Python package's folder ("": not found) */
};

/* Appends to `b` unless it would pass `max` bytes (then `failed`, and -1). */
int cfl__inbuf_add(struct inbuf *b, const uint8_t *d, size_t n, uint64_t max);
void cfl__inbuf_release(struct inbuf *b);
/* 1 if `f` comes from the server itself; otherwise logs, answers a request "forbidden", 0. */
int cfl__exec_from_server(struct cfl_peer *p, const struct cfl_frame *f);

/* The end of a task, on the loop's thread: answers the server, starts the queued task. Posted
 * by the worker thread, or by the client_api session. */
void cfl__exec_task_done(struct cfl_loop *loop, void *arg);
/* What leaves the site: the site's result filters on t->model (the trained weights), then
 * (plan->diff) the difference from `global`, which may be NULL when neither applies. */
int cfl__exec_post(struct task *t, const struct cfl__job_plan *plan, const struct cfl_model *global,
                   struct cfl_err *e);
/* clientapi.c: the client_api executor, one script per job kept across rounds. */
/* Hands task `t` (x->running) to its job's script, starting one when none runs. The session
 * posts cfl__exec_task_done when the task ends, whatever happened. Returns 0, or a CFL_E*
 * code with `e` (the task was not taken). */
int cfl__capi_submit(struct cfl_executor *x, struct task *t, struct cfl_err *e);
/* The job ended (`ended`: completed, the script may exit by itself within 5 s) or was aborted:
 * its script goes. */
void cfl__capi_stop(struct cfl_executor *x, const char *job, int ended);
/* The site stops: every script is ended, every session thread joined and freed. */
void cfl__capi_free_all(struct cfl_executor *x);
/* Finds the shipped Python package next to the running program (x->pypath). */
void cfl__capi_find_python(struct cfl_executor *x);

/* exec_deploy.c */
/* job.deploy: the bundle is checked (signature, then the site's policy) before it is unpacked. */
void cfl__exec_on_deploy(struct cfl_peer *p, const struct cfl_frame *f, int more,
                         struct cfl_msg_sink *sink, void *arg);
/* Frees the bundles still being received (the executor's end). */
void cfl__exec_incoming_free(struct cfl_executor *x);
/* The job is no longer here: no task of it runs, no policy asks about it. */
void cfl__exec_forget(struct cfl_executor *x, const char *job);
/* Reads the site's authorization and privacy policies from x->local (defaults without one). */
int cfl__exec_load_policy(struct cfl_executor *x, struct cfl_authz **authz,
                          struct cfl_privacy **privacy, struct cfl_err *e);

#endif
