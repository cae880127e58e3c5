/* Internal to the server's job runtime: the job record, the store and the FedAvg run. */
#ifndef CFL_JOBS_INT_H
#define CFL_JOBS_INT_H

#include "cfl/jobs.h"
#include "cfl/loop.h"

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

#define JOB_MAX_SITES 1024

struct job {
	struct job *next;
	char id[64];
	char name[128];
	char dir[PATH_MAX];
	char submitter[256];
	int64_t submitted_at;
	enum job_state state;
	char error[CFL_ERR_MSG_MAX];
	json_t *config; /* config.json */
	int num_rounds, min_clients;
	uint64_t round_timeout_ms;
	int rounds_done;
	/* The sites of the run, fixed when it starts (sorted), so that each keeps its data split
	 * index across reconnects. */
	char **sites;
	size_t n_sites;
	json_t *metrics; /* array, one object per completed round */
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
};

const char *cfl__job_state_name(enum job_state s);
int cfl__job_finished(const struct job *jb);
/* Writes the job's state record (job.json) and metrics. */
int cfl__job_save(const struct job *jb);
struct job *cfl__job_find(struct cfl_jobs *j, const char *id);
/* Path of a file in the job's folder. */
int cfl__job_path(const struct job *jb, const char *name, char *buf, size_t size);
/* The job's bundle text (bundle.json), new buffer. */
int cfl__job_bundle(const struct job *jb, char **text, size_t *len, struct cfl_err *e);

/* The FedAvg run of one job (fedavg.c). */
int cfl__fedavg_start(struct cfl_jobs *j, struct job *jb, struct cfl_err *e);
void cfl__fedavg_abort(struct cfl_jobs *j, const char *why);
/* Frees the running and the retired runs. Only after the hub is freed: the replies that
 * they still await are then dropped without their callbacks. */
void cfl__fedavg_free_all(struct cfl_jobs *j);
void cfl__fedavg_kick(struct cfl_jobs *j);

/* The scheduler: starts the next submitted job when none runs (jobstore.c). */
void cfl__jobs_schedule(struct cfl_jobs *j);

#endif
