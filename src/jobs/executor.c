/* Client side of FL jobs: job.deploy, task.train, task.get_update, job.end/abort, shutdown. */
#define _DEFAULT_SOURCE
#include "cfl/executor.h"
#include "jobs_int.h"

#include "cfl/trainer.h"
#include "cfl/log.h"
#include "cfl/model.h"
#include "cfl/pki.h"
#include "util/bufsrc.h"
#include "util/fs.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MODEL_MAX  ((uint64_t)4 << 30)
#define BUNDLE_MAX (64u << 20)
#define MAX_ARGS   32

/* A body arriving in pieces into one bounded buffer. */
struct inbuf {
	uint8_t *p;
	size_t len, cap;
	int failed;
};

struct task {
	struct cfl_executor *x;
	struct cfl_peer *peer; /* NULL once the connection is gone */
	uint64_t req_id;
	char job[64];
	int round, site_index, site_count;
	struct inbuf in;
	/* results, from the worker thread */
	struct cfl_model *model;
	uint64_t steps;
	float loss;
	int status;
	char err[CFL_ERR_MSG_MAX];
};

struct cfl_executor {
	struct cfl_msg_hub *hub;
	struct cfl_loop *loop;
	char dir[PATH_MAX];
	char site[256];
	cfl_executor_shutdown_fn on_shutdown;
	void *arg;
	json_t *configs; /* job id -> config.json */
	struct task *running;
	struct task *queued; /* a task that arrived while an older one still trains */
	pthread_t thread;
	int has_thread;
	/* the last update, kept until the server pulls it */
	uint8_t *update;
	size_t update_len, update_sent;
	char update_job[64];
	int update_round;
	/* bundle being received */
	struct inbuf bundle;
	uint64_t bundle_req;
	char bundle_job[64];
};

static int inbuf_add(struct inbuf *b, const uint8_t *d, size_t n, uint64_t max)
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

static void inbuf_release(struct inbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* Job topics come from the server itself: routed messages carry their sender's name in `src`
 * (the server sets it), and the server never routes these topics anyway. */
static int from_server(struct cfl_peer *p, const struct cfl_frame *f)
{
	char src[64];

	if (cfl_frame_header_str(f, "src", src, sizeof(src)) == 0 && strcmp(src, "server") == 0)
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

static int hdr_int(const struct cfl_frame *f, const char *key)
{
	char v[24];

	if (cfl_frame_header_str(f, key, v, sizeof(v)) != 0)
		return -1;
	return (int)strtol(v, NULL, 10);
}

/* --- job.deploy --------------------------------------------------------------------------- */

int cfl__executor_unpack(struct cfl_executor *x, const char *job, const uint8_t *text, size_t len,
                         struct cfl_err *e)
{
	json_t *b = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, NULL), *v, *cfg;
	json_t *files = json_object_get(b, "files");
	char dir[PATH_MAX], path[PATH_MAX];
	const char *name;
	int rc = 0;

	if (!json_is_object(files) || json_object_size(files) > JOB_MAX_FILES) {
		json_decref(b);
		return cfl_err_set(e, CFL_ECONFIG, "bad job bundle");
	}
	if (cfl__path_join(dir, sizeof(dir), x->dir, job) != 0 || cfl__fs_mkdirs(dir, 0700, e))
		rc = cfl_err_set(e, CFL_EIO, "cannot create the job folder");
	json_object_foreach (files, name, v) {
		uint8_t *raw = NULL;
		size_t raw_len = 0;

		if (rc != 0)
			break;
		/* The server checked the names at submission; check again, it costs nothing. */
		if (!cfl__job_safe_name(name) || !json_is_string(v) ||
		    cfl_base64_decode(json_string_value(v), json_string_length(v), &raw,
		                      &raw_len) != 0 ||
		    cfl__path_join(path, sizeof(path), dir, name) != 0) {
			rc = cfl_err_set(e, CFL_ECONFIG, "bad file '%s' in the job", name);
		} else {
			rc = cfl__fs_write_file(path, raw, raw_len, 0700, e);
		}
		if (rc == 0 && strcmp(name, "config.json") == 0) {
			cfg = json_loadb((const char *)raw, raw_len, 0, NULL);
			if (!json_is_object(cfg)) {
				json_decref(cfg); /* valid JSON, but not an object */
				rc = cfl_err_set(e, CFL_ECONFIG, "bad config.json");
			} else {
				json_object_set_new(x->configs, job, cfg);
			}
		}
		free(raw);
	}
	json_decref(b);
	return rc;
}

static void deploy_data(void *st, const uint8_t *d, size_t n)
{
	struct cfl_executor *x = st;

	inbuf_add(&x->bundle, d, n, BUNDLE_MAX);
}

static void deploy_end(void *st, int status, const char *reason)
{
	struct cfl_executor *x = st;
	struct cfl_peer *p = cfl_msg_hub_find(x->hub, "server");
	struct cfl_err e = {0};

	if (status != 0 || x->bundle.failed) {
		CFL_WARN("job %s: bundle not received: %s", x->bundle_job,
		         reason ? reason : "too large");
	} else if (cfl__executor_unpack(x, x->bundle_job, x->bundle.p, x->bundle.len, &e) != 0) {
		CFL_WARN("job %s: %s", x->bundle_job, e.msg);
		if (p != NULL)
			cfl_peer_reply_error(p, x->bundle_req, "bad_job", e.msg);
	} else {
		CFL_INFO("job %s deployed", x->bundle_job);
		if (p != NULL)
			cfl_peer_reply(p, x->bundle_req, NULL, 0, NULL, 0);
	}
	inbuf_release(&x->bundle);
}

static void on_deploy(struct cfl_peer *p, const struct cfl_frame *f, int more,
                      struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_executor *x = arg;

	if (!from_server(p, f))
		return;
	inbuf_release(&x->bundle);
	x->bundle_req = f->id;
	cfl_frame_header_str(f, "job", x->bundle_job, sizeof(x->bundle_job));
	if (!valid_job_id(x->bundle_job)) {
		cfl_peer_reply_error(p, f->id, "bad_job", "bad job id");
		x->bundle.failed = 1;
		if (!more)
			return;
	}
	inbuf_add(&x->bundle, f->body, f->body_len, BUNDLE_MAX);
	if (more)
		*sink = (struct cfl_msg_sink){deploy_data, deploy_end, x};
	else
		deploy_end(x, 0, NULL);
}

/* --- training on the worker thread ---------------------------------------------------------------
 */

/* The job's own command: argv from executor.command, then the global model and output paths. */
static int run_command(struct task *t, json_t *ex, struct cfl_err *e)
{
	json_t *cmd = json_object_get(ex, "command");
	char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], meta[PATH_MAX + 8], env[5][64];
	char *argv[MAX_ARGS + 3];
	size_t n = json_array_size(cmd), i;
	json_t *info;
	pid_t pid;
	int st = 0;

	if (n == 0 || n > MAX_ARGS)
		return cfl_err_set(e, CFL_ECONFIG, "executor.command must be a list of 1..%d words",
		                   MAX_ARGS);
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
		argv[i] = (char *)json_string_value(json_array_get(cmd, i));
	argv[n] = in;
	argv[n + 1] = out;
	argv[n + 2] = NULL;
	snprintf(env[0], sizeof(env[0]), "%d", t->round);
	snprintf(env[1], sizeof(env[1]), "%d", t->site_index);
	snprintf(env[2], sizeof(env[2]), "%d", t->site_count);
	pid = fork();
	if (pid == 0) {
		if (chdir(dir) != 0)
			_exit(126);
		setenv("CFL_SITE", t->x->site, 1);
		setenv("CFL_ROUND", env[0], 1);
		setenv("CFL_SITE_INDEX", env[1], 1);
		setenv("CFL_SITE_COUNT", env[2], 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid < 0)
		return cfl_err_set(e, CFL_EIO, "cannot start '%s': %s", argv[0], strerror(errno));
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return cfl_err_set(e, CFL_EIO, "'%s' failed (status %d)", argv[0],
		                   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	cfl_model_free(t->model);
	t->model = NULL;
	if (cfl_model_load(out, MODEL_MAX, &t->model, e) != 0)
		return cfl_err_prefix(e, "'%s' wrote no usable model", argv[0]);
	/* Optional: update.safetensors.json {"steps": N, "loss": x}. */
	info = json_load_file(meta, 0, NULL);
	t->steps = json_is_integer(json_object_get(info, "steps"))
	                   ? (uint64_t)json_integer_value(json_object_get(info, "steps"))
	                   : 1;
	t->loss = (float)json_number_value(json_object_get(info, "loss"));
	json_decref(info);
	return 0;
}

static void task_done(struct cfl_loop *loop, void *arg);
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
	json_t *cfg = json_object_get(t->x->configs, t->job);
	json_t *ex = json_object_get(cfg, "executor");
	const char *type = json_string_value(json_object_get(ex, "type"));
	const char *result =
	        json_string_value(json_object_get(json_object_get(cfg, "workflow"), "result"));
	int diff = result != NULL && strcmp(result, "diff") == 0;
	struct cfl_model *global = NULL;
	struct cfl_err e = {0};

	/* workflow.result "diff": the site returns its weights minus the global model's. */
	if (diff && cfl_model_clone(t->model, &global) != 0) {
		t->status = cfl_err_set(&e, CFL_ENOMEM, "out of memory");
		goto out;
	}
	if (type == NULL || strcmp(type, "builtin") == 0)
		t->status = cfl_trainer_builtin_train(ex, t->site_index, t->site_count, t->round,
		                                      t->model, &t->steps, &t->loss, &e);
	else if (strcmp(type, "command") == 0)
		t->status = run_command(t, ex, &e);
	else
		t->status = cfl_err_set(&e, CFL_ECONFIG, "unknown executor.type '%s'", type);
	if (t->status == 0 && diff)
		t->status = subtract(t->model, global, &e);
out:
	cfl_model_free(global);
	memcpy(t->err, e.msg, sizeof(t->err));
	cfl_loop_post(t->x->loop, task_done, t);
	return NULL;
}

static void task_free(struct task *t)
{
	if (t == NULL)
		return;
	inbuf_release(&t->in);
	cfl_model_free(t->model);
	free(t);
}

static void task_done(struct cfl_loop *loop, void *arg)
{
	struct task *t = arg;
	struct cfl_executor *x = t->x;
	char steps[24], loss[32];
	struct cfl_header h[2];
	struct cfl_err e = {0};

	(void)loop;
	pthread_join(x->thread, NULL);
	x->has_thread = 0;
	x->running = NULL;
	if (t->peer == NULL) {
		CFL_WARN("job %s round %d: the server went away while training", t->job, t->round);
	} else if (t->status != 0) {
		CFL_WARN("job %s round %d: training failed: %s", t->job, t->round, t->err);
		cfl_peer_reply_error(t->peer, t->req_id, "train_failed", t->err);
	} else if (free(x->update), x->update = NULL,
	           cfl_model_serialize(t->model, NULL, 0, &x->update, &x->update_len, &e) != 0) {
		cfl_peer_reply_error(t->peer, t->req_id, "train_failed", e.msg);
	} else {
		snprintf(x->update_job, sizeof(x->update_job), "%s", t->job);
		x->update_round = t->round;
		snprintf(steps, sizeof(steps), "%" PRIu64, t->steps);
		snprintf(loss, sizeof(loss), "%.6f", (double)t->loss);
		h[0] = (struct cfl_header){"steps", 5, (const uint8_t *)steps, strlen(steps)};
		h[1] = (struct cfl_header){"loss", 4, (const uint8_t *)loss, strlen(loss)};
		CFL_INFO("job %s round %d: trained on %s samples, loss %s", t->job, t->round, steps,
		         loss);
		cfl_peer_reply(t->peer, t->req_id, h, 2, NULL, 0);
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
	x->running = t;
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

	inbuf_add(&t->in, d, n, MODEL_MAX);
}

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
	inbuf_release(&t->in);
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

static void on_train(struct cfl_peer *p, const struct cfl_frame *f, int more,
                     struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_executor *x = arg;
	struct task *t;

	if (!from_server(p, f))
		return;
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		cfl_peer_reply_error(p, f->id, "no_memory", "out of memory");
		return;
	}
	t->x = x;
	t->peer = p;
	t->req_id = f->id;
	cfl_frame_header_str(f, "job", t->job, sizeof(t->job));
	t->round = hdr_int(f, "round");
	t->site_index = hdr_int(f, "site_index");
	t->site_count = hdr_int(f, "site_count");
	if (json_object_get(x->configs, t->job) == NULL) {
		cfl_peer_reply_error(p, f->id, "no_job", "this site does not have the job");
		if (more)
			*sink = (struct cfl_msg_sink){NULL, NULL, NULL};
		task_free(t);
		return;
	}
	inbuf_add(&t->in, f->body, f->body_len, MODEL_MAX);
	if (more)
		*sink = (struct cfl_msg_sink){train_data, train_end, t};
	else
		train_end(t, 0, NULL);
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
	char job[64];

	(void)more;
	(void)sink;
	if (!from_server(p, f))
		return;
	cfl_frame_header_str(f, "job", job, sizeof(job));
	if (x->update == NULL || strcmp(job, x->update_job) != 0 ||
	    hdr_int(f, "round") != x->update_round) {
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
	char job[64], topic[32];

	(void)more;
	(void)sink;
	if (!from_server(p, f))
		return;
	cfl_frame_header_str(f, "job", job, sizeof(job));
	cfl_frame_header_str(f, "topic", topic, sizeof(topic));
	CFL_INFO("job %s %s", job, strcmp(topic, "job.end") == 0 ? "finished" : "aborted");
	json_object_del(x->configs, job);
	if (strcmp(job, x->update_job) == 0) {
		free(x->update);
		x->update = NULL;
	}
	/* A training thread of an aborted job finishes and its result is refused by the server. */
}

static void on_shutdown_msg(struct cfl_peer *p, const struct cfl_frame *f, int more,
                            struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_executor *x = arg;

	(void)more;
	(void)sink;
	if (!from_server(p, f))
		return;
	CFL_INFO("the server asks this site to shut down");
	if (x->on_shutdown != NULL)
		x->on_shutdown(x->arg);
}

int cfl_executor_new(struct cfl_msg_hub *hub, const char *work_dir, const char *site,
                     cfl_executor_shutdown_fn shutdown_fn, void *arg, struct cfl_executor **out,
                     struct cfl_err *e)
{
	struct cfl_executor *x = calloc(1, sizeof(*x));

	if (x == NULL || (x->configs = json_object()) == NULL) {
		free(x);
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	}
	x->hub = hub;
	x->loop = cfl_msg_hub_loop(hub);
	x->on_shutdown = shutdown_fn;
	x->arg = arg;
	snprintf(x->dir, sizeof(x->dir), "%s", work_dir);
	snprintf(x->site, sizeof(x->site), "%s", site);
	cfl_msg_hub_handle(hub, "job.deploy", on_deploy, x);
	cfl_msg_hub_handle(hub, "task.train", on_train, x);
	cfl_msg_hub_handle(hub, "task.get_update", on_get_update, x);
	cfl_msg_hub_handle(hub, "job.end", on_job_end, x);
	cfl_msg_hub_handle(hub, "job.abort", on_job_end, x);
	cfl_msg_hub_handle(hub, "shutdown", on_shutdown_msg, x);
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
	if (x->has_thread) {
		pthread_join(x->thread, NULL);
		task_free(x->running); /* its posted completion is dropped with the loop */
	}
	task_free(x->queued);
	inbuf_release(&x->bundle);
	free(x->update);
	json_decref(x->configs);
	cfl_trainer_builtin_release();
	free(x);
}
