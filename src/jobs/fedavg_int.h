/* Internal to the FedAvg run (fedavg.c: rounds; fedavg_start.c: the start and a job's
 * initial model; fedavg_metrics.c: the rounds' files). */
#ifndef CFL_JOBS_FEDAVG_INT_H
#define CFL_JOBS_FEDAVG_INT_H

#include "jobs_int.h"

#include "cfl/auth.h"
#include "cfl/model.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The most a task's answer may take beyond workflow.round_timeout_s: a client_api site ends
 * its script's round at round_timeout_s and says why; the server waits that much longer for
 * the answer, so that it gets the reason rather than a timeout of its own. */
#define CFL__FEDAVG_GRACE_MS 10000

/* P_WAIT: in the round, waiting for its turn in the dispatch window (fedavg.c). */
enum part_state { P_IDLE, P_WAIT, P_DEPLOY, P_TRAIN, P_TRAINED, P_PULL, P_DONE, P_FAILED };

struct fedavg;

struct part {
	struct fedavg *f;
	char name[CFL_AUTH_NAME_MAX];
	int idx;
	enum part_state st;
	uint64_t deployed_to; /* serial of the connection that has the job (0: none) */
	int refused;          /* the site's policy refused the job: final for this run */
	uint64_t steps;       /* this round's FedAvg weight: the step count reported, at most cap */
	uint64_t cap;         /* the most a report of this site counts for (site_caps) */
	double loss;
	uint64_t sent; /* the global model's size once its stream is out, else 0 */
	size_t bsent;  /* bytes of the job bundle streamed so far */
	json_t *rows;  /* this round's metrics from a client_api script ({tag, step, value}) */
	uint8_t *ubuf; /* its update as it arrives, when pulls overlap (fedavg_pull.c) */
	size_t ulen, ucap;
	uint64_t dropped; /* metrics the site dropped this round */
};

struct fedavg {
	struct cfl_jobs *j;
	struct job *jb;
	struct cfl_model *global;
	struct cfl_model_reader gs; /* the global model as safetensors bytes, made on demand */
	struct cfl_agg *agg;
	struct part *parts;
	size_t n;
	int in_round;
	uint64_t round_t0, wait_log;
	int pulling; /* get_update requests out */
	int window;  /* at most so many at once (cfl__fedavg_pull_window) */
	char *bundle;
	size_t bundle_len;
	/* Within a round, after the dispatch, a part's state only moves on (to DONE or FAILED),
	 * so what a round waits for is found in O(1) per event, not by a pass over the parts
	 * (19,000 sites: a pass per reply made the round minutes long): */
	size_t busy_at;  /* parts below it are neither deploying, training nor being pulled */
	size_t drop_at;  /* parts below it need the global model no more */
	size_t *trained; /* a queue of parts whose update waits to be pulled, n long: */
	size_t tq_head, tq_tail;
	size_t dispatch_at; /* parts below it had their turn to be dispatched this round */
	int deploying;      /* job.deploy requests out (at most DISPATCH_WINDOW) */
	int outstanding;    /* calls out: owned by call_begin/call_end */
	int dispatching;    /* start_round is handing out tasks: keep the global model */
	int zombie;         /* finished (run_retire): freed by the last call_end */
	/* executor.initial_model "from_site": before round 1, the sites are asked in their
	 * order for their script's weights (fedavg_start.c) */
	int init;                     /* no global model yet: asking */
	size_t init_at;               /* the site asked, or to ask next */
	int init_busy;                /* a question is out */
	struct cfl_model *init_model; /* what the site sent so far, as bytes: */
	uint8_t *init_buf;
	size_t init_len, init_cap;
	struct fedavg *next; /* in j->retired while a zombie */
};

/* fedavg.c */
void cfl__fedavg_run_free(struct fedavg *f);
void cfl__fedavg_call_begin(struct fedavg *f);
/* 1 if the run goes on; 0 if it is finished and freed (see fedavg.c). */
int cfl__fedavg_call_end(struct fedavg *f);
struct cfl_peer *cfl__fedavg_peer_of(struct fedavg *f, const struct part *p);
void cfl__fedavg_finish(struct fedavg *f, enum job_state st, const char *why);
int cfl__fedavg_serialize(struct fedavg *f, struct cfl_err *e);
int cfl__fedavg_builtin_job(const struct job *jb);
void cfl__fedavg_dispatch(struct fedavg *f, struct part *p, struct cfl_peer *peer);
void cfl__fedavg_start_round(struct fedavg *f);
/* How long a task of the job may take (round_timeout_s, plus the grace for client_api). */
uint64_t cfl__fedavg_task_timeout(const struct job *jb);

/* Closes the round when no site is busy; otherwise pulls what it can (whenever a step ends). */
void cfl__fedavg_round_check(struct fedavg *f);

/* fedavg_pull.c: the updates into the running sum */
/* How many updates of `model_bytes` each are pulled at once: 1 for a large model (each
 * update streams straight into the sum: aggregation holds the sum and one staged update),
 * more for small ones (each buffered whole, then summed: at most PULL_BUDGET bytes), so that
 * 19,000 sites do not wait a round trip each in turn. */
int cfl__fedavg_pull_window(uint64_t model_bytes);
/* Asks trained sites for their updates, up to the window. */
void cfl__fedavg_pull_next(struct fedavg *f);

/* fedavg_start.c: executor.initial_model "from_site" */
/* The site `p`, which has the job, is asked for its weights; p->st is P_FAILED if the question
 * could not go (the caller then asks the next site). */
void cfl__fedavg_ask_weights(struct fedavg *f, struct part *p, struct cfl_peer *peer);
/* Asks the next site that may answer, if none is asked; ends the job when none is left. */
void cfl__fedavg_init_next(struct fedavg *f);
/* Site `p` could not answer (`why`): the next one is asked. */
void cfl__fedavg_init_failed(struct fedavg *f, struct part *p, const char *why);

/* fedavg_metrics.c */
/* Site `p`'s answer body: its script's metric rows, kept for the round's record. */
void cfl__fedavg_take_rows(struct fedavg *f, struct part *p, const uint8_t *body, size_t len);
/* The round's record `m` gets "site_metrics" (rows with the site's name) from the sites that
 * gave an update; the parts' rows are dropped. */
void cfl__fedavg_round_rows(struct fedavg *f, json_t *m);
/* metrics.csv: the rounds, then the sites' metrics (docs/jobs.md). */
void cfl__fedavg_write_csv(const struct job *jb);

#endif
