/* Client side of FL jobs: task.train, task.get_update, job.end/abort, shutdown, and the
 * executor's life (its deployment and the site's policy are in exec_deploy.c).
 *
 * A job's life on a site: DEPLOYED (its signature checked, then unpacked; its config and its
 * submitter kept) → tasks → forgotten at job.end / job.abort. A job whose signature does not
 * hold is never unpacked, and any earlier deployment of the same id is forgotten. */
#define _DEFAULT_SOURCE
#include "cfl/executor.h"

#include "executor_int.h"
#include "proc.h"

#include "cfl/trainer.h"
#include "cfl/log.h"
#include "cfl/model.h"
#include "cfl/pki.h"
#include "cfl/proto.h"
#include "util/bufsrc.h"
#include "util/fs.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* --- helpers both halves use --------------------------------------------------------------- */

int cfl__inbuf_add(struct inbuf *b, const uint8_t *d, size_t n, uint64_t max)
{
	if (b->failed || n == 0)
		return b->failed ? -1 : 0;
	if (b->len + n > max) {
		b->failed = 1;
		return -1;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1 << 16;
		uint8_t *p;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL) {
			b->failed = 1;
			return -1;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
	return 0;
}

void cfl__inbuf_release(struct inbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* Job topics come from the server itself: routed messages carry their sender's name in `src`
 * (the server sets it), and the server never routes these topics anyway. */
int cfl__exec_from_server(struct cfl_peer *p, const struct cfl_frame *f)
{
	char src[64];

	if (cfl_frame_header_str(f, CFL_KEY_SRC, src, sizeof(src)) == 0 &&
	    strcmp(src, "server") == 0)
		return 1;
	CFL_WARN("job message not from the server (src '%s') ignored", src);
	if (f->type == CFL_FRAME_T_REQUEST)
		cfl_peer_reply_error(p, f->id, "forbidden", "job topics come from the server only");
	return 0;
}

/* A job id names a folder: letters, digits and '-' only, so it cannot lead outside. */
static int valid_job_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return 0;
	}
	return 1;
}

/* A header holding a decimal number lo..hi, digits only. 0, or -1 when absent or not one. */
static int hdr_int(const struct cfl_frame *f, const char *key, int lo, int hi, int *out)
{
	char v[16], *end = NULL;
	long n;

	if (cfl_frame_header_str(f, key, v, sizeof(v)) != 0 || v[0] < '0' || v[0] > '9')
		return -1;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < lo || n > hi)
		return -1;
	*out = (int)n;
	return 0;
}

int cfl__executor_hdrs(const struct cfl_frame *f, int want, struct cfl__job_hdrs *h)
{
	memset(h, 0, sizeof(*h));
	if (cfl_frame_header_str(f, CFL_KEY_JOB, h->job, sizeof(h->job)) != 0 ||
	    !valid_job_id(h->job))
		return CFL_EPROTO;
	if ((want & CFL__HDR_ROUND) && hdr_int(f, CFL_KEY_ROUND, 1, JOB_MAX_ROUNDS, &h->round) != 0)
		return CFL_EPROTO;
	/* The site's index is what the trainer splits the data by: always below the count. */
	if ((want & CFL__HDR_SITE) &&
	    (hdr_int(f, CFL_KEY_SITE_COUNT, 1, JOB_MAX_SITES, &h->site_count) != 0 ||
	     hdr_int(f, CFL_KEY_SITE_INDEX, 0, h->site_count - 1, &h->site_index) != 0))
		return CFL_EPROTO;
	return 0;
}

json_t *cfl__executor_config(struct cfl_executor *x, const char *job)
{
	return json_object_get(x->configs, job);
}

/* --- training on the worker thread ---------------------------------------------------------------
 */

int cfl__executor_plan(json_t *cfg, struct cfl__job_plan *p, struct cfl_err *e)
{
	json_t *ex = json_object_get(cfg, "executor");
	json_t *cmd = json_object_get(ex, "command");
	const char *type = json_string_value(json_object_get(ex, "type"));
	const char *result =
	        json_string_value(json_object_get(json_object_get(cfg, "workflow"), "result"));

	memset(p, 0, sizeof(*p));
	p->ex = ex;
	p->diff = result != NULL && strcmp(result, "diff") == 0;
	if (type == NULL || strcmp(type, "builtin") == 0)
		return 0;
	p->client_api = strcmp(type, "client_api") == 0;
	if (strcmp(type, "command") != 0 && !p->client_api)
		return cfl_err_set(e, CFL_ECONFIG, "unknown executor.type '%s'", type);
	p->params_format = json_string_value(json_object_get(ex, "params_format"));
	if (json_object_get(ex, "params_format") != NULL &&
	    (p->params_format == NULL ||
	     (strcmp(p->params_format, "numpy") != 0 && strcmp(p->params_format, "pytorch") != 0)))
		return cfl_err_set(e, CFL_ECONFIG,
		                   "executor.params_format must be \"numpy\" or \"pytorch\"");
	if (p->params_format == NULL)
		p->params_format = "numpy";
	p->command = 1;
	p->argc = json_array_size(cmd);
	if (p->argc == 0 || p->argc > CFL__JOB_MAX_ARGS)
		return cfl_err_set(e, CFL_ECONFIG, "executor.command must be a list of 1..%d words",
		                   CFL__JOB_MAX_ARGS);
	for (size_t i = 0; i < p->argc; i++) {
		/* A word that is not a string would end argv early, or leave argv[0] NULL. */
		p->argv[i] = json_string_value(json_array_get(cmd, i));
		if (p->argv[i] == NULL)
			return cfl_err_set(e, CFL_ECONFIG, "executor.command[%zu] is not a string",
			                   i);
	}
	return 0;
}

/* The environment a job's program gets: the site's values of these (when it has them), the
 * task's CFL_* variables, nothing else (docs/jobs.md). Secrets that the site's own environment
 * may hold (tokens, proxies' credentials, a key's passphrase) do not reach the job. */
static const char *const kept_env[] = {"PATH", "HOME",         "LANG",      "LC_ALL",
                                       "TZ",   "CFL_DATA_DIR", "CFL_DIGITS"};

/* "NAME=value" of the kept variables the site has, read once on the loop's thread: the worker
 * then never calls getenv, which another thread's setenv could race. */
static int keep_env(struct cfl_executor *x)
{
	for (size_t i = 0; i < sizeof(kept_env) / sizeof(kept_env[0]); i++) {
		const char *v = getenv(kept_env[i]);
		size_t n;

		if (v == NULL)
			continue;
		n = strlen(kept_env[i]) + strlen(v) + 2;
		if ((x->env[x->n_env] = malloc(n)) == NULL)
			return CFL_ENOMEM;
		snprintf(x->env[x->n_env++], n, "%s=%s", kept_env[i], v);
	}
	return 0;
}

/* The job's own command: argv from executor.command, then the global model and output paths,
 * run by cfl__proc_run (proc.c) in the job's folder. */
static int run_command(struct task *t, const struct cfl__job_plan *plan, struct cfl_err *e)
{
	char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], meta[PATH_MAX + 8], tag[96];
	char vars[4][sizeof(t->x->site) + 32]; /* CFL_SITE=<site name>, ... */
	char *argv[CFL__JOB_MAX_ARGS + 3], *envp[sizeof(kept_env) / sizeof(kept_env[0]) + 5];
	size_t n = plan->argc, i, k = 0;
	json_t *info, *steps;
	json_int_t count;
	double loss;
	int st = 0, rc;

	if (cfl__path_join(dir, sizeof(dir), t->x->dir, t->job) != 0 ||
	    cfl__path_join(in, sizeof(in), dir, "global.safetensors") != 0 ||
	    cfl__path_join(out, sizeof(out), dir, "update.safetensors") != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long");
	snprintf(meta, sizeof(meta), "%s.json", out);
	unlink(out);
	unlink(meta);
	if (cfl_model_save(t->model, in, NULL, 0, e) != 0)
		return e->code;
	for (i = 0; i < n; i++)
		argv[i] = (char *)plan->argv[i];
	argv[n] = in;
	argv[n + 1] = out;
	argv[n + 2] = NULL;
	for (i = 0; i < t->x->n_env; i++)
		envp[k++] = t->x->env[i];
	snprintf(vars[0], sizeof(vars[0]), "CFL_SITE=%s", t->x->site);
	snprintf(vars[1], sizeof(vars[1]), "CFL_ROUND=%d", t->round);
	snprintf(vars[2], sizeof(vars[2]), "CFL_SITE_INDEX=%d", t->site_index);
	snprintf(vars[3], sizeof(vars[3]), "CFL_SITE_COUNT=%d", t->site_count);
	for (i = 0; i < 4; i++)
		envp[k++] = vars[i];
	envp[k] = NULL;
	snprintf(tag, sizeof(tag), "job %s round %d", t->job, t->round);
	rc = cfl__proc_run(
	        &(struct cfl__proc_spec){.argv = argv, .envp = envp, .dir = dir, .tag = tag},
	        &t->stop, &st, e);
	if (rc != 0)
		return rc;
	if (atomic_load(&t->stop))
		return cfl_err_set(e, CFL_EIO, "'%s' stopped: its job ended or the site stops",
		                   argv[0]);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return cfl_err_set(e, CFL_EIO, "'%s' failed (status %d)", argv[0],
		                   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	cfl_model_free(t->model);
	t->model = NULL;
	if (cfl_model_load(out, MODEL_MAX, &t->model, e) != 0)
		return cfl_err_prefix(e, "'%s' wrote no usable model", argv[0]);
	/* Optional: update.safetensors.json {"steps": N, "loss": x}. */
	info = json_load_file(meta, 0, NULL);
	steps = json_object_get(info, "steps");
	count = json_is_integer(steps) ? json_integer_value(steps) : 1;
	loss = json_number_value(json_object_get(info, "loss"));
	json_decref(info);
	/* The step count is this site's FedAvg weight: a positive count the server accepts. */
	if (count <= 0 || count > ((json_int_t)1 << 53))
		return cfl_err_set(e, CFL_EINVAL,
		                   "'%s' reported %" JSON_INTEGER_FORMAT
		                   " steps: not a positive count up to 2^53",
		                   argv[0], count);
	t->steps = (uint64_t)count;
	t->loss = (float)loss;
	if (!isfinite(t->loss))
		return cfl_err_set(e, CFL_EINVAL, "'%s' reported a loss of %g: not a finite float",
		                   argv[0], loss);
	return 0;
}

static void start_task(struct cfl_executor *x, struct task *t);

/* m -= g, tensor by tensor (same names and shapes, as the trainer keeps them). */
static int subtract(struct cfl_model *m, const struct cfl_model *g, struct cfl_err *e)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct cfl_tensor *b = cfl_model_find(g, m->t[i].name);

		if (b == NULL || b->count != m->t[i].count)
			return cfl_err_set(e, CFL_EINVAL,
			                   "tensor '%s' does not match the global model",
			                   m->t[i].name);
		for (size_t k = 0; k < b->count; k++)
			m->t[i].data[k] -= b->data[k];
	}
	return 0;
}

static void *worker(void *arg)
{
	struct task *t = arg;
	struct cfl__job_plan plan;
	struct cfl_model *global = NULL;
	struct cfl_err e = {0};

	/* t->cfg, not the executor's table, which the loop's thread changes meanwhile. */
	t->status = cfl__executor_plan(t->cfg, &plan, &e);
	if (t->status != 0)
		goto out;
	/* workflow.result "diff": the site returns its weights minus the global model's. The
	 * privacy filters work on that difference too, so they need the global model as well. */
	if ((plan.diff || cfl_privacy_scope_filters(t->scope) > 0) &&
	    cfl_model_clone(t->model, &global) != 0) {
		t->status = cfl_err_set(&e, CFL_ENOMEM, "out of memory");
		goto out;
	}
	if (plan.command)
		t->status = run_command(t, &plan, &e);
	else
		t->status = cfl_trainer_builtin_train(plan.ex, t->site_index, t->site_count,
		                                      t->round, t->model, &t->steps, &t->loss, &e);
	if (t->status == 0)
		t->status = cfl__exec_post(t, &plan, global, &e);
out:
	cfl_model_free(global);
	memcpy(t->err, e.msg, sizeof(t->err));
	cfl_loop_post(t->x->loop, cfl__exec_task_done, t);
	return NULL;
}

int cfl__exec_post(struct task *t, const struct cfl__job_plan *plan, const struct cfl_model *global,
                   struct cfl_err *e)
{
	int rc = 0;

	/* The site's result filters, on what is about to leave the site (SPEC §10). */
	if (t->scope != NULL)
		rc = cfl_privacy_filter_result(t->scope, global, t->model, 0, e);
	if (rc == 0 && plan->diff)
		rc = subtract(t->model, global, e);
	return rc;
}

static void task_free(struct task *t)
{
	if (t == NULL)
		return;
	cfl__inbuf_release(&t->in);
	cfl_model_free(t->model);
	json_decref(t->cfg);
	cfl_privacy_scope_free(t->scope);
	cfl__rows_reset(&t->rows);
	free(t);
}

/* The result replaces the update kept for the server's pull (one at a time). */
static int keep_update(struct cfl_executor *x, const struct task *t, struct cfl_err *e)
{
	free(x->update);
	x->update = NULL;
	return cfl_model_serialize(t->model, NULL, 0, &x->update, &x->update_len, e);
}

static int update_read(void *src, uint8_t *buf, size_t len);
static void update_sent(struct cfl_conn *c, uint64_t id, int status, void *src);

/* A client_api job's initial weights (task.get_weights): the model itself is the answer. */
static void weights_done(struct cfl_executor *x, struct task *t)
{
	struct cfl_err e = {0};

	if (keep_update(x, t, &e) != 0) {
		cfl_peer_reply_error(t->peer, t->req_id, "train_failed", e.msg);
		return;
	}
	x->update_job[0] = '\0'; /* not a round's update */
	x->update_sent = 0;
	CFL_INFO("job %s: sending the script's initial weights", t->job);
	if (cfl_peer_reply_stream(t->peer, t->req_id, NULL, 0, x->update_len, update_read, x,
	                          update_sent) != 0)
		cfl_peer_reply_error(t->peer, t->req_id, "send_failed", "cannot send the weights");
}

void cfl__exec_task_done(struct cfl_loop *loop, void *arg)
{
	struct task *t = arg;
	struct cfl_executor *x = t->x;
	char steps[24], loss[32], *body;
	size_t body_len = 0;
	struct cfl_header h[2];
	struct cfl_err e = {0};

	(void)loop;
	if (!t->capi) {
		pthread_join(x->thread, NULL);
		x->has_thread = 0;
	}
	x->running = NULL;
	if (t->peer == NULL) {
		CFL_WARN("job %s round %d: the server went away while training", t->job, t->round);
	} else if (t->status != 0) {
		CFL_WARN("job %s round %d: training failed: %s", t->job, t->round, t->err);
		cfl_peer_reply_error(t->peer, t->req_id, "train_failed", t->err);
	} else if (t->kind == TASK_GET_WEIGHTS) {
		weights_done(x, t);
	} else if (keep_update(x, t, &e) != 0) {
		cfl_peer_reply_error(t->peer, t->req_id, "train_failed", e.msg);
	} else {
		snprintf(x->update_job, sizeof(x->update_job), "%s", t->job);
		x->update_round = t->round;
		snprintf(steps, sizeof(steps), "%" PRIu64, t->steps);
		snprintf(loss, sizeof(loss), "%.6f", (double)t->loss);
		h[0] = CFL_HDR(CFL_KEY_STEPS, steps);
		h[1] = CFL_HDR(CFL_KEY_LOSS, loss);
		CFL_INFO("job %s round %d: trained on %s samples, loss %s", t->job, t->round, steps,
		         loss);
		/* A client_api script's metrics of the round go with the answer. */
		body = cfl__rows_body(&t->rows, &body_len);
		cfl_peer_reply(t->peer, t->req_id, h, 2, body, body_len);
		free(body);
	}
	task_free(t);
	if (x->queued != NULL) {
		struct task *next = x->queued;

		x->queued = NULL;
		start_task(x, next);
	}
}

static void start_task(struct cfl_executor *x, struct task *t)
{
	struct cfl__job_plan plan;
	struct cfl_err e = {0};

	x->running = t;
	if (cfl__executor_plan(t->cfg, &plan, &e) == 0 && plan.client_api) {
		t->capi = 1;
		if (cfl__capi_submit(x, t, &e) == 0)
			return;
	} else if (t->kind == TASK_GET_WEIGHTS) {
		cfl_err_set(&e, CFL_EINVAL, "only a client_api job gives its initial weights");
	}
	if (e.code != 0) {
		x->running = NULL;
		if (t->peer != NULL)
			cfl_peer_reply_error(t->peer, t->req_id, "train_failed", e.msg);
		task_free(t);
		return;
	}
	if (pthread_create(&x->thread, NULL, worker, t) != 0) {
		x->running = NULL;
		if (t->peer != NULL)
			cfl_peer_reply_error(t->peer, t->req_id, "train_failed",
			                     "cannot start a thread");
		task_free(t);
		return;
	}
	x->has_thread = 1;
}

/* --- task.train ------------------------------------------------------------------------------- */

static void train_data(void *st, const uint8_t *d, size_t n)
{
	struct task *t = st;

	cfl__inbuf_add(&t->in, d, n, MODEL_MAX);
}

static void run_or_queue(struct cfl_executor *x, struct task *t);

static void train_end(void *st, int status, const char *reason)
{
	struct task *t = st;
	struct cfl_executor *x = t->x;
	struct cfl_err e = {0};

	if (status != 0 || t->in.failed || t->peer == NULL) {
		CFL_WARN("job %s: global model not received: %s", t->job,
		         reason ? reason : "too large");
		task_free(t);
		return;
	}
	if (cfl_model_parse(t->in.p, t->in.len, &t->model, &e) != 0) {
		cfl_peer_reply_error(t->peer, t->req_id, "bad_model", e.msg);
		task_free(t);
		return;
	}
	cfl__inbuf_release(&t->in);
	run_or_queue(x, t);
}

/* One task at a time: a task that arrives while another runs waits for it. */
static void run_or_queue(struct cfl_executor *x, struct task *t)
{
	if (x->running != NULL) {
		/* Typically the server restarted while this site trained: the new task waits for
		 * the old thread (whose result nobody wants any more) instead of being refused. */
		if (x->queued != NULL) {
			if (x->queued->peer != NULL)
				cfl_peer_reply_error(x->queued->peer, x->queued->req_id, "busy",
				                     "replaced by a newer task");
			task_free(x->queued);
		}
		CFL_INFO("job %s round %d: waiting for the previous task to end", t->job, t->round);
		x->queued = t;
		return;
	}
	start_task(x, t);
}

/* The task's own copy of the result filters of its job's scope (the worker uses it while the
 * loop may reload the policy or forget the job). */
static int task_scope(struct cfl_executor *x, struct task *t, char *why, size_t size)
{
	for (struct deployed *d = x->deployed; d != NULL; d = d->next) {
		if (strcmp(d->job, t->job) == 0)
			return cfl_privacy_scope(x->privacy, d->scope[0] ? d->scope : NULL,
			                         &t->scope, why, size);
	}
	return 0;
}

/* A task of job h->job for request `f`, or NULL after an answer saying why not. */
static struct task *task_for(struct cfl_executor *x, struct cfl_peer *p, const struct cfl_frame *f,
                             const struct cfl__job_hdrs *h, int more, struct cfl_msg_sink *sink)
{
	char why[CFL_ERR_MSG_MAX];
	struct task *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		cfl_peer_reply_error(p, f->id, "no_memory", "out of memory");
		return NULL;
	}
	t->x = x;
	atomic_init(&t->stop, 0);
	t->peer = p;
	t->req_id = f->id;
	memcpy(t->job, h->job, sizeof(t->job));
	t->round = h->round;
	t->site_index = h->site_index;
	t->site_count = h->site_count;
	t->cfg = json_incref(cfl__executor_config(x, t->job));
	if (t->cfg == NULL)
		snprintf(why, sizeof(why), "this site does not have the job");
	/* The scope the job was admitted under may be gone (a policy reloaded since). */
	if (t->cfg == NULL || task_scope(x, t, why, sizeof(why)) != 0) {
		cfl_peer_reply_error(p, f->id, t->cfg == NULL ? "no_job" : "train_failed", why);
		if (more)
			*sink = (struct cfl_msg_sink){NULL, NULL, NULL};
		task_free(t);
		return NULL;
	}
	return t;
}

static void on_train(struct cfl_peer *p, const struct cfl_frame *f, int more,
                     struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_executor *x = arg;
	struct cfl__job_hdrs h;
	struct task *t;

	if (!cfl__exec_from_server(p, f))
		return;
	if (cfl__executor_hdrs(f, CFL__HDR_ROUND | CFL__HDR_SITE, &h) != 0) {
		/* The body, if it streams, is dropped with the sink left zeroed. */
		cfl_peer_reply_error(p, f->id, "bad_task", "bad job, round or site headers");
		return;
	}
	if ((t = task_for(x, p, f, &h, more, sink)) == NULL)
		return;
	cfl__inbuf_add(&t->in, f->body, f->body_len, MODEL_MAX);
	if (more)
		*sink = (struct cfl_msg_sink){train_data, train_end, t};
	else
		train_end(t, 0, NULL);
}

/* task.get_weights: the job's client_api script gives its initial weights (from_site). */
static void on_get_weights(struct cfl_peer *p, const struct cfl_frame *f, int more,
                           struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_executor *x = arg;
	struct cfl__job_hdrs h;
	struct task *t;

	if (!cfl__exec_from_server(p, f))
		return;
	if (cfl__executor_hdrs(f, CFL__HDR_SITE, &h) != 0) {
		cfl_peer_reply_error(p, f->id, "bad_task", "bad job or site headers");
		return;
	}
	if ((t = task_for(x, p, f, &h, more, sink)) == NULL)
		return;
	if (more) /* the request has no body: one is not read */
		*sink = (struct cfl_msg_sink){NULL, NULL, NULL};
	/* What leaves this site passes its result filters, and those work on a difference from
	 * a global model, which initial weights do not have: such a site does not give them. */
	if (cfl_privacy_scope_filters(t->scope) > 0) {
		CFL_WARN("job %s: refused to give initial weights: this site filters its results",
		         t->job);
		cfl_peer_reply_error(
		        p, f->id, CFL_STATUS_REFUSED,
		        "this site filters what leaves it (local/privacy.json) and initial "
		        "weights have no global model to filter against: give the job an "
		        "initial model file");
		task_free(t);
		return;
	}
	t->kind = TASK_GET_WEIGHTS;
	run_or_queue(x, t);
}

/* --- task.get_update ------------------------------------------------------------------------- */

static int update_read(void *src, uint8_t *buf, size_t len)
{
	struct cfl_executor *x = src;

	return (int)cfl__buf_take(x->update, x->update_len, &x->update_sent, buf, len);
}

static void update_sent(struct cfl_conn *c, uint64_t id, int status, void *src)
{
	(void)c;
	(void)id;
	(void)status;
	(void)src;
}

static void on_get_update(struct cfl_peer *p, const struct cfl_frame *f, int more,
                          struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_executor *x = arg;
	struct cfl__job_hdrs h;

	(void)more;
	(void)sink;
	if (!cfl__exec_from_server(p, f))
		return;
	if (cfl__executor_hdrs(f, CFL__HDR_ROUND, &h) != 0 || x->update == NULL ||
	    strcmp(h.job, x->update_job) != 0 || h.round != x->update_round) {
		cfl_peer_reply_error(p, f->id, "no_update", "no update for this job and round");
		return;
	}
	x->update_sent = 0;
	if (cfl_peer_reply_stream(p, f->id, NULL, 0, x->update_len, update_read, x, update_sent) !=
	    0)
		cfl_peer_reply_error(p, f->id, "send_failed", "cannot send the update");
}

/* --- job end, abort, shutdown ---------------------------------------------------------------- */

static void on_job_end(struct cfl_peer *p, const struct cfl_frame *f, int more,
                       struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_executor *x = arg;
	struct cfl__job_hdrs h;
	char topic[32];

	(void)more;
	(void)sink;
	if (!cfl__exec_from_server(p, f))
		return;
	if (cfl__executor_hdrs(f, 0, &h) != 0) {
		CFL_WARN("job end without a valid job id ignored");
		return;
	}
	cfl_frame_header_str(f, CFL_KEY_TOPIC, topic, sizeof(topic));
	CFL_INFO("job %s %s", h.job,
	         strcmp(topic, CFL_TOPIC_JOB_END) == 0 ? "finished" : "aborted");
	cfl__exec_forget(x, h.job);
	if (strcmp(h.job, x->update_job) == 0) {
		free(x->update);
		x->update = NULL;
	}
	/* The job's program, if one runs, goes with its whole process group (proc.c); the
	 * built-in trainer finishes its round, whose result the server refuses. */
	if (x->running != NULL && strcmp(x->running->job, h.job) == 0)
		atomic_store(&x->running->stop, 1);
	/* A client_api script: told to stop when the job completed, ended at once on abort. */
	cfl__capi_stop(x, h.job, strcmp(topic, CFL_TOPIC_JOB_END) == 0);
	if (x->queued != NULL && strcmp(x->queued->job, h.job) == 0) {
		if (x->queued->peer != NULL)
			cfl_peer_reply_error(x->queued->peer, x->queued->req_id, "job_ended",
			                     "the job ended");
		task_free(x->queued);
		x->queued = NULL;
	}
}

static void on_shutdown_msg(struct cfl_peer *p, const struct cfl_frame *f, int more,
                            struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_executor *x = arg;

	(void)more;
	(void)sink;
	if (!cfl__exec_from_server(p, f))
		return;
	CFL_INFO("the server asks this site to shut down");
	if (x->on_shutdown != NULL)
		x->on_shutdown(x->arg);
}

int cfl_executor_new(struct cfl_msg_hub *hub, const struct cfl_executor_cfg *cfg,
                     struct cfl_executor **out, struct cfl_err *e)
{
	struct cfl_executor *x;
	int rc;

	if (cfg == NULL || cfg->work_dir == NULL || cfg->site == NULL || cfg->root_ca == NULL)
		return cfl_err_set(e, CFL_EINVAL,
		                   "an executor needs a work folder, a site name and a root CA");
	x = calloc(1, sizeof(*x));
	if (x == NULL || (x->configs = json_object()) == NULL) {
		free(x);
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	}
	if ((rc = cfl_pki_trust_load(cfg->root_ca, cfg->cert_file, &x->trust, e)) != 0) {
		json_decref(x->configs);
		free(x);
		return rc;
	}
	snprintf(x->local, sizeof(x->local), "%s", cfg->local_dir != NULL ? cfg->local_dir : "");
	snprintf(x->org, sizeof(x->org), "%s", cfg->org != NULL ? cfg->org : "");
	/* A policy that does not load stops the site (fail closed), never "allow all". */
	if ((rc = cfl__exec_load_policy(x, &x->authz, &x->privacy, e)) != 0) {
		cfl_pki_trust_free(x->trust);
		json_decref(x->configs);
		free(x);
		return rc;
	}
	if (keep_env(x) != 0) {
		cfl_executor_free(x);
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	}
	x->hub = hub;
	x->loop = cfl_msg_hub_loop(hub);
	x->on_shutdown = cfg->on_shutdown;
	x->arg = cfg->arg;
	snprintf(x->dir, sizeof(x->dir), "%s", cfg->work_dir);
	snprintf(x->site, sizeof(x->site), "%s", cfg->site);
	cfl__capi_find_python(x);
	cfl_msg_hub_handle(hub, CFL_TOPIC_JOB_DEPLOY, cfl__exec_on_deploy, x);
	cfl_msg_hub_handle(hub, CFL_TOPIC_TASK_TRAIN, on_train, x);
	cfl_msg_hub_handle(hub, CFL_TOPIC_TASK_GET_UPDATE, on_get_update, x);
	cfl_msg_hub_handle(hub, CFL_TOPIC_TASK_GET_WEIGHTS, on_get_weights, x);
	cfl_msg_hub_handle(hub, CFL_TOPIC_JOB_END, on_job_end, x);
	cfl_msg_hub_handle(hub, CFL_TOPIC_JOB_ABORT, on_job_end, x);
	cfl_msg_hub_handle(hub, CFL_TOPIC_SHUTDOWN, on_shutdown_msg, x);
	*out = x;
	return 0;
}

void cfl_executor_peer_down(struct cfl_executor *x, struct cfl_peer *p)
{
	if (x != NULL && x->running != NULL && x->running->peer == p)
		x->running->peer = NULL;
	if (x != NULL && x->queued != NULL && x->queued->peer == p) {
		task_free(x->queued);
		x->queued = NULL;
	}
}

void cfl_executor_free(struct cfl_executor *x)
{
	if (x == NULL)
		return;
	/* The site stops: client_api scripts are ended, not waited for; their tasks' posted
	 * ends are dropped with the loop, and the task running is freed below. */
	cfl__capi_free_all(x);
	if (x->has_thread) {
		/* A job program running now is ended, not waited for. */
		atomic_store(&x->running->stop, 1);
		pthread_join(x->thread, NULL);
	}
	if (x->running != NULL && (x->has_thread || x->running->capi))
		task_free(x->running); /* its posted completion is dropped with the loop */
	task_free(x->queued);
	cfl__exec_incoming_free(x);
	free(x->update);
	while (x->deployed != NULL) {
		struct deployed *next = x->deployed->next;

		free(x->deployed);
		x->deployed = next;
	}
	cfl_authz_free(x->authz);
	cfl_privacy_free(x->privacy);
	cfl_pki_trust_free(x->trust);
	json_decref(x->configs);
	for (size_t i = 0; i < x->n_env; i++)
		free(x->env[i]);
	cfl_trainer_builtin_release();
	free(x);
}
