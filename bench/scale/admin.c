/* bench_scale's admin session: the status commands, the job submitted and followed to its
 * end. */
#define _GNU_SOURCE
#include "scale.h"

#include "cfl/admin.h"
#include "cfl/err.h"
#include "cfl/loop.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

struct adm_state A;

/* utime + stime of the load processes, in ticks. */
static long long load_ticks(void)
{
	long long t = 0;

	for (int k = 0; k < B.n_load; k++)
		t += proc_ticks(B.ld[k].pid);
	return t;
}

static void adm_send(const char *line)
{
	struct cfl_err e = {0};

	A.t_sent = now_s();
	if (cfl_admin_send(A.s, line, &e) != 0)
		cfl_admin_quit(A.s, e.code, e.msg);
}

static void on_poll(struct cfl_loop *loop, uint64_t id, void *arg)
{
	char line[128];

	(void)loop;
	(void)id;
	(void)arg;
	if (interrupted || now_s() > A.end) {
		cfl_admin_quit(A.s, CFL_ETIMEDOUT, interrupted ? "interrupted" : "round timed out");
		return;
	}
	snprintf(line, sizeof(line), "list_jobs %s", A.job_id);
	adm_send(line);
}

/* The load processes' lines while the session runs (their pipes must not fill up). */
static void on_drain(struct cfl_loop *loop, uint64_t id, void *arg)
{
	(void)id;
	(void)arg;
	drain(0);
	cfl_loop_timer_add(loop, 100, on_drain, NULL);
}

static void adm_ready(struct cfl_admin *s, void *arg)
{
	char line[PATH_MAX + 16];

	(void)arg;
	if (A.s == NULL)
		on_drain(cfl_admin_loop(s), 0, NULL);
	A.s = s;
	switch (A.step) {
	case A_STATUS:
		adm_send("check_status server");
		break;
	case A_CLIENTS:
		adm_send("check_status client");
		break;
	case A_SUBMIT:
		A.srv_ticks = -proc_ticks(B.server);
		A.load_ticks = -load_ticks();
		snprintf(line, sizeof(line), "submit_job %s/job", B.run);
		adm_send(line);
		break;
	case A_POLL:
		cfl_loop_timer_add(cfl_admin_loop(s), POLL_MS, on_poll, NULL);
		break;
	}
}

/* list_jobs: the job's status; once FINISHED, its round's figures, and the session ends. */
static void adm_job(json_t *v)
{
	json_t *job = json_array_get(json_object_get(v, "jobs"), 0);
	json_t *m = json_array_get(json_object_get(job, "metrics"), 0);
	const char *st = json_string_value(json_object_get(job, "status"));

	A.polls++;
	if (st == NULL || strncmp(st, "FINISHED", 8) != 0)
		return;
	A.t_round = now_s() - A.t_submit;
	A.srv_ticks += proc_ticks(B.server);
	A.load_ticks += load_ticks();
	snprintf(A.status, sizeof(A.status), "%s", st);
	A.updates = (int)json_integer_value(json_object_get(m, "clients"));
	A.server_round_s = json_number_value(json_object_get(m, "seconds"));
	cfl_admin_quit(A.s, 0, NULL);
}

static void adm_reply(struct cfl_admin *s, const struct cfl_admin_reply *r, void *arg)
{
	double dt = now_s() - A.t_sent;
	json_t *v;

	(void)arg;
	/* A server that caps the sites of a job: the round runs over as many as it takes, and
	 * the run reports it (and fails: not every site took part). */
	if (r->status != 0 && A.step == A_SUBMIT && A.cap == 0 &&
	    sscanf(r->error, "workflow.min_clients must be at most %d", &A.cap) == 1 && A.cap > 0) {
		printf("  (the server refused min_clients %d: \"%s\"; the round runs with "
		       "min_clients %d)\n",
		       B.n, r->error, A.cap);
		write_job(A.cap);
		return; /* ready follows: the job goes again */
	}
	if (r->status != 0) {
		snprintf(A.why, sizeof(A.why), "'%s' failed: %s", r->cmd, r->error);
		cfl_admin_quit(s, r->status, A.why);
		return;
	}
	A.t_poll_max = A.step == A_POLL && dt > A.t_poll_max ? dt : A.t_poll_max;
	v = json_loads(r->body, 0, NULL);
	if (A.step == A_STATUS) {
		A.t_status = dt;
	} else if (A.step == A_CLIENTS) {
		A.t_clients = dt;
		A.clients_bytes = r->len;
		A.listed = (int)json_array_size(json_object_get(v, "clients"));
		/* A server that pages the list says how many there are (-1: one that does not). */
		A.total = json_is_integer(json_object_get(v, "total"))
		                  ? (int)json_integer_value(json_object_get(v, "total"))
		                  : -1;
		A.connected = (int)json_integer_value(json_object_get(v, "connected"));
	} else if (A.step == A_SUBMIT) {
		A.t_submit = A.t_sent;
		A.end = now_s() + ROUND_S;
		snprintf(A.job_id, sizeof(A.job_id), "%s",
		         json_string_value(json_object_get(v, "job_id"))
		                 ? json_string_value(json_object_get(v, "job_id"))
		                 : "");
		if (A.job_id[0] == '\0')
			cfl_admin_quit(s, CFL_EPROTO, "submit_job gave no job id");
	} else {
		adm_job(v);
	}
	json_decref(v);
	if (A.step < A_POLL)
		A.step++;
}

int run_admin(struct cfl_err *e)
{
	char kit[PATH_MAX];
	static struct cfl_admin_ops ops = {adm_ready, adm_reply, NULL, NULL, 0, 0};

	ops.server_port = B.admin_port;
	snprintf(kit, sizeof(kit), "%s/%s", B.prod, ADMIN_NAME);
	return cfl_admin_run(kit, &ops, e);
}
