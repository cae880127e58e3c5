/* The client_api executor (docs/jobs.md): a job's script starts once on a site, at its first
 * task, and stays for the job; each task goes to it over a private channel (channel.h) and its
 * result comes back the same way.
 *
 * One session per job, each with a thread of its own that owns the script from its start to
 * its end: the script's process group and output (proc.c), the channel, and the task in hand.
 * The loop's thread hands a task in (cfl__capi_submit) and asks for the end (cfl__capi_stop,
 * cfl__capi_free_all); the session posts each task's end back (cfl__exec_task_done).
 *
 * A session: STARTING → (hello) READY → task sent → result → READY ... → ENDING (stop asked,
 * the script exited, no result in time, a bad message) → DEAD (group gone, leader reaped, the
 * task in hand failed with the reason). A dead session is replaced at the job's next task. */
#define _GNU_SOURCE
#include "executor_int.h"
#include "proc.h"

#include "cfl/log.h"
#include "cfl/model.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS      50
#define STOP_WAIT_MS 5000 /* a script told to stop has this long to exit by itself */
#define EOF_WAIT_MS  2000 /* a script that closed its channel has this long to exit */
#define N_VARS       8

enum { RUN = 0, END = 1, KILL = 2 }; /* capi.stop */

struct capi {
	struct capi *next;
	struct cfl_executor *x;
	char job[64];
	pthread_t thread;
	pthread_mutex_t mu;
	struct task *task; /* under mu: handed in, not yet taken */
	int dead;          /* under mu: the session ended; nothing is taken any more */
	atomic_int stop;   /* RUN, END or KILL */
	int wake[2];       /* the loop's thread writes a byte: look at task and stop */
	/* fixed at the start */
	char dir[PATH_MAX], tag[96];
	char *argv[CFL__JOB_MAX_ARGS + 1];
	char *envp[sizeof(((struct cfl_executor *)0)->env) / sizeof(char *) + N_VARS + 1];
	char vars[N_VARS][PATH_MAX + 32];
};

/* The session thread's own state. */
struct run {
	struct cfl__proc proc;
	int started, chan, hello, eof;
	struct cfl__chan_reader rd;
	struct cfl__rows rows; /* metrics since the last result */
	struct task *cur;      /* the task in hand */
	int sent;              /* cur went to the script */
	uint64_t deadline, timeout_s;
	char why[CFL_ERR_MSG_MAX]; /* why the session ends, for the task in hand */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- the shipped Python package ---------------------------------------------------------- */

void cfl__capi_find_python(struct cfl_executor *x)
{
	static const char *const rel[] = {"python", "../python", "../share/cfl/python"};
	char exe[PATH_MAX], dir[PATH_MAX], path[PATH_MAX + 64], real[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct stat st;

	x->pypath[0] = '\0';
	if (n <= 0)
		return;
	exe[n] = '\0';
	snprintf(dir, sizeof(dir), "%s", dirname(exe));
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s/cfl/__init__.py", dir, rel[i]);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, rel[i]);
		if (realpath(path, real) != NULL)
			snprintf(x->pypath, sizeof(x->pypath), "%s", real);
		return;
	}
}

/* --- messages to the script ------------------------------------------------------------------- */

/* Sends framed `v` (stolen). The script reads one message at a time and the site sends one
 * task per result: a channel that does not take a small message at once is a script that
 * does not read it. */
static int send_msg(struct run *r, json_t *v, struct cfl_err *e)
{
	uint8_t *buf = NULL;
	size_t len = 0, off = 0;
	int rc = cfl__chan_frame(v, &buf, &len, e);

	json_decref(v);
	while (rc == 0 && off < len) {
		ssize_t n = send(r->chan, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = cfl_err_set(e, CFL_EIO, "cannot write to the script's channel: %s",
			                 n < 0 ? strerror(errno) : "closed");
		else
			off += (size_t)n;
	}
	free(buf);
	return rc;
}

static void paths(const struct capi *s, char *model, char *result)
{
	cfl__path_join(model, PATH_MAX, s->dir, "global.safetensors");
	cfl__path_join(result, PATH_MAX, s->dir, "result.safetensors");
}

static int send_task(struct capi *s, struct run *r, struct cfl_err *e)
{
	struct task *t = r->cur;
	char model[PATH_MAX], result[PATH_MAX];
	json_t *wf = json_object_get(t->cfg, "workflow"), *v;
	int train = t->kind == TASK_TRAIN;

	paths(s, model, result);
	unlink(result);
	if (train && cfl_model_save(t->model, model, NULL, 0, e) != 0)
		return e->code;
	v = json_pack("{s:s, s:s, s:i, s:I, s:s?, s:s, s:s, s:{}}", "type", "task", "task",
	              train ? "train" : "get_weights", "current_round", train ? t->round - 1 : 0,
	              "total_rounds", json_integer_value(json_object_get(wf, "num_rounds")),
	              "model", train ? model : NULL, "result", result, "params_type", "FULL",
	              "meta");
	if (v == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	r->sent = 1;
	return send_msg(r, v, e);
}

/* --- the script's result ------------------------------------------------------------------------
 */

static int shape_text(const struct cfl_tensor *t, char *buf, size_t size)
{
	int n = snprintf(buf, size, "[");

	for (int i = 0; i < t->ndim && n > 0 && (size_t)n < size; i++)
		n += snprintf(buf + n, size - (size_t)n, "%s%lld", i ? ", " : "",
		              (long long)t->shape[i]);
	if (n > 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, "]");
	return 0;
}

/* The result has the global model's tensors, names and shapes, nothing more or less. */
static int same_shapes(const struct cfl_model *res, const struct cfl_model *g, struct cfl_err *e)
{
	char a[128], b[128];

	for (size_t i = 0; i < g->n; i++) {
		const struct cfl_tensor *t = cfl_model_find(res, g->t[i].name);

		if (t == NULL)
			return cfl_err_set(e, CFL_EINVAL, "result has no tensor '%s'",
			                   g->t[i].name);
		if (t->ndim != g->t[i].ndim ||
		    memcmp(t->shape, g->t[i].shape, sizeof(t->shape[0]) * (size_t)t->ndim) != 0) {
			shape_text(t, a, sizeof(a));
			shape_text(&g->t[i], b, sizeof(b));
			return cfl_err_set(e, CFL_EINVAL,
			                   "result tensor '%s' has shape %s, expected %s", t->name,
			                   a, b);
		}
	}
	for (size_t i = 0; i < res->n; i++) {
		if (cfl_model_find(g, res->t[i].name) == NULL)
			return cfl_err_set(e, CFL_EINVAL,
			                   "result tensor '%s' is not in the global model",
			                   res->t[i].name);
	}
	return 0;
}

static void add_into(struct cfl_model *m, const struct cfl_model *g)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct cfl_tensor *b = cfl_model_find(g, m->t[i].name);

		for (size_t k = 0; b != NULL && k < b->count; k++)
			m->t[i].data[k] += b->data[k];
	}
}

/* The weights, step count and loss of a train result (t->model holds the global model). */
static int train_result(struct task *t, const struct cfl__chan_msg *m, struct cfl_model *res,
                        struct cfl_err *e)
{
	struct cfl__job_plan plan;
	struct cfl_model *global = t->model;
	int rc;

	if ((rc = same_shapes(res, global, e)) != 0) {
		cfl_model_free(res);
		return rc;
	}
	if (m->has_steps && m->steps == 0) {
		cfl_model_free(res);
		return cfl_err_set(e, CFL_EINVAL,
		                   "the script reported 0 steps (meta.NUM_STEPS_CURRENT_ROUND)");
	}
	t->steps = m->has_steps ? m->steps : 1;
	for (size_t i = 0; i < m->n_metrics; i++) {
		if (strcmp(m->metrics[i].tag, "loss") == 0 ||
		    strcmp(m->metrics[i].tag, "train_loss") == 0)
			t->loss = (float)m->metrics[i].value;
	}
	/* DIFF is turned into weights first: the site's filters work on weights and the global
	 * model, and cfl__exec_post then makes what workflow.result asks. */
	if (m->diff)
		add_into(res, global);
	t->model = res;
	rc = cfl__executor_plan(t->cfg, &plan, e);
	if (rc == 0)
		rc = cfl__exec_post(t, &plan, global, e);
	cfl_model_free(global);
	return rc;
}

static int take_result(struct capi *s, struct run *r, const struct cfl__chan_msg *m,
                       struct cfl_err *e)
{
	struct task *t = r->cur;
	char model[PATH_MAX], result[PATH_MAX];
	struct cfl_model *res = NULL;
	int rc;

	for (size_t i = 0; i < m->n_metrics; i++)
		cfl__rows_add(&r->rows, &m->metrics[i]);
	t->rows = r->rows;
	memset(&r->rows, 0, sizeof(r->rows));
	if (!m->model)
		return cfl_err_set(e, CFL_EINVAL, "the script's result has no model");
	paths(s, model, result);
	if ((rc = cfl_model_load(result, MODEL_MAX, &res, e)) != 0)
		return cfl_err_prefix(e, "the script's result file");
	if (t->kind == TASK_GET_WEIGHTS) {
		cfl_model_free(t->model);
		t->model = res;
		t->steps = 1;
		return 0;
	}
	return train_result(t, m, res, e);
}

/* The task in hand ends: back to the loop's thread. */
static void post(struct capi *s, struct task *t, int status, const char *why)
{
	t->status = status;
	if (status != 0)
		snprintf(t->err, sizeof(t->err), "%s", why);
	if (cfl_loop_post(s->x->loop, cfl__exec_task_done, t) != 0)
		CFL_ERROR("job %s: cannot hand a task's end back (out of memory)", s->job);
}

/* --- the session thread -------------------------------------------------------------------------
 */

/* 1 to go on; 0 when the session must end (r->why says why, "" for no failure). */
static int handle(struct capi *s, struct run *r, const struct cfl__chan_msg *m)
{
	struct cfl_err e = {0};
	int rc;

	if (m->type == CFL__CHAN_HELLO) {
		if (r->hello) {
			snprintf(r->why, sizeof(r->why), "bad message from script: a second hello");
			return 0;
		}
		r->hello = 1;
		return 1;
	}
	if (m->type == CFL__CHAN_METRIC) {
		if (cfl__rows_add(&r->rows, &m->metric))
			CFL_WARN("job %s: more than %d metrics (or %u KiB) this round: the rest "
			         "are dropped",
			         s->job, CFL__CHAN_ROUND_ROWS, CFL__CHAN_ROWS_BYTES >> 10);
		return 1;
	}
	if (r->cur == NULL || !r->sent) {
		snprintf(r->why, sizeof(r->why),
		         "bad message from script: a result without a task");
		return 0;
	}
	rc = take_result(s, r, m, &e);
	post(s, r->cur, rc, e.msg);
	r->cur = NULL;
	r->sent = 0;
	return 1;
}

static int read_channel(struct capi *s, struct run *r)
{
	uint8_t buf[CFL__CHAN_CHUNK];
	struct cfl__chan_msg *m;
	struct cfl_err e = {0};
	ssize_t n = recv(r->chan, buf, sizeof(buf), MSG_DONTWAIT);
	int rc = 1;

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 1 : (r->eof = 1);
	if (n == 0)
		return (r->eof = 1);
	if ((m = malloc(sizeof(*m))) == NULL || cfl__chan_feed(&r->rd, buf, (size_t)n, &e) != 0) {
		free(m);
		snprintf(r->why, sizeof(r->why), "out of memory");
		return 0;
	}
	while (rc == 1 && (rc = cfl__chan_next(&r->rd, m, &e)) == 1)
		rc = handle(s, r, m);
	free(m);
	if (rc < 0)
		snprintf(r->why, sizeof(r->why), "bad message from script: %.900s", e.msg);
	return rc >= 0 && r->why[0] == '\0';
}

static void exit_reason(struct run *r, int code)
{
	if (code > 128)
		snprintf(r->why, sizeof(r->why),
		         "script killed by signal %d before sending its result", code - 128);
	else
		snprintf(r->why, sizeof(r->why),
		         "script exited with status %d before sending its result", code);
}

/* Takes a task handed in; sends the one in hand once the script said hello. */
static int tasks(struct capi *s, struct run *r)
{
	struct cfl_err e = {0};

	pthread_mutex_lock(&s->mu);
	if (r->cur == NULL && s->task != NULL) {
		r->cur = s->task;
		s->task = NULL;
		r->deadline = now_ms() + r->timeout_s * 1000;
	}
	pthread_mutex_unlock(&s->mu);
	if (r->cur != NULL && !r->sent && r->hello && send_task(s, r, &e) != 0) {
		snprintf(r->why, sizeof(r->why), "%.1000s", e.msg);
		return 0;
	}
	if (r->cur != NULL && now_ms() >= r->deadline) {
		snprintf(r->why, sizeof(r->why), "no result from script within %llu s",
		         (unsigned long long)r->timeout_s);
		return 0;
	}
	return 1;
}

/* One turn of the session: 1 to go on, 0 to end it. */
static int step(struct capi *s, struct run *r)
{
	struct pollfd pf[3] = {{.fd = s->wake[0], .events = POLLIN},
	                       {.fd = r->proc.out.fd, .events = POLLIN},
	                       {.fd = r->eof ? -1 : r->chan, .events = POLLIN}};
	char drain[64];
	int code;

	if (poll(pf, 3, TICK_MS) > 0) {
		if (pf[0].revents)
			while (read(s->wake[0], drain, sizeof(drain)) > 0)
				;
		if (pf[1].revents)
			cfl__proc_pump(&r->proc);
		if (pf[2].revents && !read_channel(s, r))
			return 0;
	}
	if (atomic_load(&s->stop) != RUN) {
		if (r->cur != NULL)
			snprintf(r->why, sizeof(r->why),
			         "the script stopped: its job ended or the site stops");
		return 0;
	}
	if (cfl__proc_exited(&r->proc, &code)) {
		exit_reason(r, code);
		return 0;
	}
	if (r->eof) {
		/* The channel closed: the script is on its way out, or will never answer. */
		uint64_t until = now_ms() + EOF_WAIT_MS;

		while (now_ms() < until && !cfl__proc_exited(&r->proc, &code))
			poll(NULL, 0, 20);
		if (cfl__proc_exited(&r->proc, &code))
			exit_reason(r, code);
		else
			snprintf(r->why, sizeof(r->why), "the script closed its channel");
		return 0;
	}
	return tasks(s, r);
}

static int start(struct capi *s, struct run *r, struct cfl_err *e)
{
	int sv[2], rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return cfl_err_set(e, CFL_EIO, "cannot make the script's channel: %s",
		                   strerror(errno));
	/* The script's end goes to its descriptor 3; kept above 2 here so that it is moved. */
	if (sv[1] <= CFL__PROC_KEPT_FD) {
		int hi = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);

		close(sv[1]);
		sv[1] = hi;
	}
	r->chan = sv[0];
	if (sv[1] < 0)
		return cfl_err_set(e, CFL_EIO, "cannot make the script's channel");
	rc = cfl__proc_start(&(struct cfl__proc_spec){.argv = s->argv,
	                                              .envp = s->envp,
	                                              .dir = s->dir,
	                                              .tag = s->tag,
	                                              .keep_fd = sv[1]},
	                     &r->proc, e);
	close(sv[1]);
	r->started = rc == 0;
	if (rc == 0)
		CFL_INFO("%s: started '%s' (pid %d)", s->tag, s->argv[0], (int)r->proc.pid);
	return rc;
}

/* Ends the script: a stop message (the job ended: up to 5 s to exit by itself), then its
 * whole group; the leader reaped. */
static void end_script(struct capi *s, struct run *r)
{
	atomic_int now;
	int st = 0, code;
	uint64_t until;

	atomic_init(&now, 1);
	if (!r->eof && r->hello && !cfl__proc_exited(&r->proc, &code)) {
		struct cfl_err e = {0};
		json_t *v = json_pack("{s:s}", "type", "stop");

		if (v != NULL && send_msg(r, v, &e) == 0 && atomic_load(&s->stop) == END &&
		    r->cur == NULL) {
			until = now_ms() + STOP_WAIT_MS;
			while (now_ms() < until && !cfl__proc_exited(&r->proc, &code) &&
			       atomic_load(&s->stop) == END) {
				struct pollfd pf = {.fd = r->proc.out.fd, .events = POLLIN};

				if (poll(&pf, 1, TICK_MS) > 0)
					cfl__proc_pump(&r->proc);
			}
		}
	}
	atomic_store(&now, !cfl__proc_exited(&r->proc, &code));
	cfl__proc_finish(&r->proc, &now, &st);
	CFL_INFO("%s: the script ended (%s %d)", s->tag, WIFEXITED(st) ? "status" : "signal",
	         WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

static void *session_main(void *arg)
{
	struct capi *s = arg;
	struct run r = {.chan = -1};
	struct cfl_err e = {0};
	struct task *left;

	pthread_mutex_lock(&s->mu);
	r.timeout_s = 3600;
	if (s->task != NULL) {
		json_int_t t = json_integer_value(json_object_get(
		        json_object_get(s->task->cfg, "workflow"), "round_timeout_s"));

		r.timeout_s = t > 0 ? (uint64_t)t : 3600;
	}
	pthread_mutex_unlock(&s->mu);
	if (start(s, &r, &e) != 0)
		snprintf(r.why, sizeof(r.why), "%.1000s", e.msg);
	else
		while (step(s, &r))
			;
	if (r.started)
		end_script(s, &r);
	if (r.chan >= 0)
		close(r.chan);
	cfl__chan_reader_release(&r.rd);
	cfl__rows_reset(&r.rows);
	/* Dead before the task's end goes back: the next round's task, which that end lets the
	 * server send, must find this session ending and start a new one, not be handed here. */
	pthread_mutex_lock(&s->mu);
	s->dead = 1;
	left = s->task;
	s->task = NULL;
	pthread_mutex_unlock(&s->mu);
	if (r.cur != NULL)
		post(s, r.cur, CFL_EIO, r.why);
	if (left != NULL)
		post(s, left, CFL_EIO, r.why[0] ? r.why : "the script ended");
	if (r.why[0] != '\0')
		CFL_WARN("%s: %s", s->tag, r.why);
	return NULL;
}

/* --- the loop's side -------------------------------------------------------------------------- */

static void session_free(struct capi *s)
{
	for (size_t i = 0; s->argv[i] != NULL; i++)
		free(s->argv[i]);
	close(s->wake[0]);
	close(s->wake[1]);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static void wake(struct capi *s)
{
	ssize_t n = write(s->wake[1], "", 1);

	(void)n; /* a full pipe wakes the session as well */
}

/* The script's environment: the site's kept variables, then the channel's and the job's. */
static void environment(struct capi *s, const struct task *t, const struct cfl__job_plan *plan)
{
	struct cfl_executor *x = t->x;
	size_t k = 0, v = 0;

	for (size_t i = 0; i < x->n_env; i++)
		s->envp[k++] = x->env[i];
	snprintf(s->vars[v++], sizeof(s->vars[0]), "CFL_SITE=%s", x->site);
	snprintf(s->vars[v++], sizeof(s->vars[0]), "CFL_JOB_ID=%s", t->job);
	snprintf(s->vars[v++], sizeof(s->vars[0]), "CFL_SITE_INDEX=%d", t->site_index);
	snprintf(s->vars[v++], sizeof(s->vars[0]), "CFL_SITE_COUNT=%d", t->site_count);
	snprintf(s->vars[v++], sizeof(s->vars[0]), "CFL_PARAMS_FORMAT=%s", plan->params_format);
	snprintf(s->vars[v++], sizeof(s->vars[0]), "CFL_CHANNEL_FD=%d", CFL__PROC_KEPT_FD);
	/* print() reaches the site's log as it happens, not when a block buffer fills. */
	snprintf(s->vars[v++], sizeof(s->vars[0]), "PYTHONUNBUFFERED=1");
	if (x->pypath[0] != '\0')
		snprintf(s->vars[v++], sizeof(s->vars[0]), "PYTHONPATH=%s", x->pypath);
	for (size_t i = 0; i < v; i++)
		s->envp[k++] = s->vars[i];
	s->envp[k] = NULL;
}

static struct capi *session_new(struct cfl_executor *x, const struct task *t,
                                const struct cfl__job_plan *plan, struct cfl_err *e)
{
	struct capi *s = calloc(1, sizeof(*s));

	if (s == NULL || pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		free(s);
		cfl_err_set(e, CFL_EIO, "cannot start the script's session");
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	atomic_init(&s->stop, RUN);
	s->x = x;
	snprintf(s->job, sizeof(s->job), "%s", t->job);
	snprintf(s->tag, sizeof(s->tag), "job %s", t->job);
	for (size_t i = 0; i < plan->argc; i++) {
		if ((s->argv[i] = strdup(plan->argv[i])) == NULL) {
			session_free(s);
			cfl_err_set(e, CFL_ENOMEM, "out of memory");
			return NULL;
		}
	}
	if (cfl__path_join(s->dir, sizeof(s->dir), x->dir, t->job) != 0) {
		session_free(s);
		cfl_err_set(e, CFL_ETOOBIG, "path too long");
		return NULL;
	}
	environment(s, t, plan);
	return s;
}

/* Drops the sessions that ended (their threads are done or about to be). */
static void reap(struct cfl_executor *x)
{
	struct capi **pp = &x->sessions, *s;

	while ((s = *pp) != NULL) {
		int dead;

		pthread_mutex_lock(&s->mu);
		dead = s->dead;
		pthread_mutex_unlock(&s->mu);
		if (!dead) {
			pp = &s->next;
			continue;
		}
		pthread_join(s->thread, NULL);
		*pp = s->next;
		session_free(s);
	}
}

int cfl__capi_submit(struct cfl_executor *x, struct task *t, struct cfl_err *e)
{
	struct cfl__job_plan plan;
	struct capi *s;
	int rc;

	reap(x);
	if ((rc = cfl__executor_plan(t->cfg, &plan, e)) != 0)
		return rc;
	for (s = x->sessions; s != NULL; s = s->next) {
		if (strcmp(s->job, t->job) != 0)
			continue;
		pthread_mutex_lock(&s->mu);
		rc = s->dead || s->task != NULL;
		if (!rc)
			s->task = t;
		pthread_mutex_unlock(&s->mu);
		if (rc)
			break; /* ending: a new session takes the task once this one is gone */
		wake(s);
		return 0;
	}
	if (s != NULL) {
		atomic_store(&s->stop, KILL);
		wake(s);
		pthread_join(s->thread, NULL);
		for (struct capi **pp = &x->sessions; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == s) {
				*pp = s->next;
				break;
			}
		}
		session_free(s);
	}
	if ((s = session_new(x, t, &plan, e)) == NULL)
		return e->code;
	s->task = t;
	if (pthread_create(&s->thread, NULL, session_main, s) != 0) {
		session_free(s);
		return cfl_err_set(e, CFL_EIO, "cannot start a thread");
	}
	s->next = x->sessions;
	x->sessions = s;
	return 0;
}

void cfl__capi_stop(struct cfl_executor *x, const char *job, int ended)
{
	for (struct capi *s = x->sessions; s != NULL; s = s->next) {
		if (strcmp(s->job, job) == 0) {
			atomic_store(&s->stop, ended ? END : KILL);
			wake(s);
		}
	}
	reap(x);
}

void cfl__capi_free_all(struct cfl_executor *x)
{
	struct capi *s;

	for (s = x->sessions; s != NULL; s = s->next) {
		atomic_store(&s->stop, KILL);
		wake(s);
	}
	while ((s = x->sessions) != NULL) {
		pthread_join(s->thread, NULL);
		x->sessions = s->next;
		session_free(s);
	}
}
