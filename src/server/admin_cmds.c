/* Admin commands on the server: `check_status client|server`, `remove_client NAME`.
 * Only sessions that logged in with an admin certificate may call them. */
#include "server_int.h"

#include "cfl/log.h"
#include "cfl/proto.h"
#include "util/bufsrc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LIST 10000

struct admin {
	struct cfl_auth_server *auth;
	struct cfl_jobs *jobs;
	struct cfl_msg_hub *hub;
	struct cfl__server_info info;
};

/* One admin request, with its body collected (a job bundle may come as a stream). */
struct areq {
	struct admin *a;
	struct cfl_peer *peer;
	uint64_t id;
	char who[256], role[64], cmd[1024];
	char *body;
	size_t len, cap;
	int failed;
};

static void iso_time(int64_t unix_ms, char *buf, size_t size)
{
	time_t t = (time_t)(unix_ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *session_json(const struct cfl_auth_session_info *i)
{
	char seen[32], exp[32];

	iso_time(i->last_seen_ms, seen, sizeof(seen));
	iso_time(i->token_expiry * 1000, exp, sizeof(exp));
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "name", i->name, "address",
	                 i->addr, "via", i->via, "connection_security", cfl_conn_sec_name(i->mode),
	                 "connected", i->connected, "last_heartbeat", seen, "token_expiry", exp,
	                 "role", i->role);
}

static json_t *list_sessions(struct admin *a, enum cfl_auth_kind kind)
{
	struct cfl_auth_session_info *v = calloc(MAX_LIST, sizeof(*v));
	json_t *arr = json_array();
	size_t n;

	if (v == NULL || arr == NULL) {
		free(v);
		json_decref(arr);
		return NULL;
	}
	n = cfl_auth_server_sessions(a->auth, kind, v, MAX_LIST);
	for (size_t i = 0; i < n && i < MAX_LIST; i++)
		json_array_append_new(arr, session_json(&v[i]));
	free(v);
	return arr;
}

static json_t *check_status(struct admin *a, const char *what, char *err, size_t en)
{
	if (strcmp(what, "client") == 0)
		return json_pack("{s:o}", "clients", list_sessions(a, CFL_AUTH_CLIENT));
	if (strcmp(what, "server") == 0) {
		json_t *clients = list_sessions(a, CFL_AUTH_CLIENT);
		json_t *admins = list_sessions(a, CFL_AUTH_ADMIN), *res;
		char started[32];
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		iso_time(a->info.started_ms, started, sizeof(started));
		/* Only the counts go out: the lists are ours to free. */
		res = json_pack("{s:{s:s, s:s, s:s, s:s, s:I, s:I, s:I}}", "server", "name",
		                a->info.name, "project", a->info.project, "status", "started",
		                "started_at", started, "uptime_s",
		                (json_int_t)(ts.tv_sec - a->info.started_ms / 1000), "clients",
		                (json_int_t)json_array_size(clients), "admins",
		                (json_int_t)json_array_size(admins));
		json_decref(clients);
		json_decref(admins);
		return res;
	}
	snprintf(err, en, "usage: check_status server|client");
	return NULL;
}

static void shutdown_one(struct cfl_peer *p, void *arg)
{
	enum cfl_auth_kind kind;
	const char *name = cfl_auth_server_identity(p, &kind, NULL);
	const char *want = arg;

	if (name != NULL && kind == CFL_AUTH_CLIENT &&
	    (strcmp(want, "all") == 0 || strcmp(want, name) == 0))
		cfl_peer_send(p, CFL_TOPIC_SHUTDOWN, NULL, 0, NULL, 0);
}

/* What a role may do (authorization.json.default): project_admin everything; lead runs jobs;
 * org_admin and member look. */
static int allowed(const char *role, const char *verb)
{
	if (strcmp(role, "project_admin") == 0)
		return 1;
	if (strcmp(verb, "check_status") == 0 || strcmp(verb, "list_jobs") == 0)
		return 1;
	return strcmp(role, "lead") == 0 &&
	       (strcmp(verb, "submit_job") == 0 || strcmp(verb, "abort_job") == 0 ||
	        strcmp(verb, "download_job") == 0);
}

static json_t *jobs_cmd(struct areq *r, const char *verb, const char *arg, char *err, size_t en)
{
	struct cfl_err e = {0};
	char id[64], *text;
	json_t *v;

	if (strcmp(verb, "submit_job") == 0) {
		if (cfl_jobs_submit(r->a->jobs, r->body, r->len, r->who, id, &e) != 0) {
			snprintf(err, en, "%s", e.msg);
			return NULL;
		}
		return json_pack("{s:s}", "job_id", id);
	}
	if (strcmp(verb, "list_jobs") == 0) {
		text = cfl_jobs_list(r->a->jobs, arg[0] ? arg : NULL);
		v = text != NULL ? json_loads(text, 0, NULL) : NULL;
		free(text);
		return v;
	}
	if (strcmp(verb, "abort_job") == 0) {
		if (cfl_jobs_abort(r->a->jobs, arg, &e) != 0) {
			snprintf(err, en, "%s", e.msg);
			return NULL;
		}
		return json_pack("{s:s}", "aborted", arg);
	}
	snprintf(err, en, "unknown command '%s'", verb);
	return NULL;
}

#define BLANKS " \t\n\v\f\r" /* isspace() in the C locale, whatever the process's locale */

/* Copies the next word of *s into buf ("" when there is none) and moves *s past it. -1 when it
 * does not fit: a word is never cut. */
static int next_word(const char **s, char *buf, size_t size)
{
	const char *p = *s + strspn(*s, BLANKS);
	size_t n = strcspn(p, BLANKS);

	if (n >= size)
		return -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	*s = p + n;
	return 0;
}

int cfl__admin_cmd_parse(const char *line, struct cfl__admin_cmd *c, char *err, size_t en)
{
	const char *s = line;

	memset(c, 0, sizeof(*c));
	if (next_word(&s, c->verb, sizeof(c->verb)) != 0 ||
	    next_word(&s, c->arg, sizeof(c->arg)) != 0 ||
	    next_word(&s, c->arg2, sizeof(c->arg2)) != 0) {
		snprintf(err, en, "command word too long (%zu bytes at most, %zu for the verb)",
		         sizeof(c->arg) - 1, sizeof(c->verb) - 1);
		return CFL_EINVAL;
	}
	if (c->verb[0] == '\0') {
		snprintf(err, en, "empty command");
		return CFL_EINVAL;
	}
	return 0;
}

static json_t *run(struct areq *r, struct cfl__admin_cmd *c, char *err, size_t en)
{
	struct admin *a = r->a;
	const char *role = r->role, *verb = c->verb, *arg = c->arg;

	if (!allowed(role, verb)) {
		snprintf(err, en, "role '%s' may not run %s", role[0] ? role : "-", verb);
		return NULL;
	}
	if (strcmp(verb, "check_status") == 0)
		return check_status(a, arg, err, en);
	if (strcmp(verb, "shutdown") == 0) {
		if (c->arg2[0] == '\0' || strcmp(arg, "client") != 0) {
			snprintf(err, en, "usage: shutdown client NAME|all");
			return NULL;
		}
		cfl_msg_hub_foreach(a->hub, shutdown_one, c->arg2);
		return json_pack("{s:s}", "shutdown", c->arg2);
	}
	if (strcmp(verb, "remove_client") == 0) {
		if (cfl_auth_server_remove(a->auth, arg, "removed by an admin") != 0) {
			snprintf(err, en, "no client '%s'", arg);
			return NULL;
		}
		return json_pack("{s:s}", "removed", arg);
	}
	return jobs_cmd(r, verb, arg, err, en);
}

static void reply_text(struct areq *r, const char *text, size_t len);

static void areq_run(struct areq *r)
{
	struct cfl_err e = {0};
	struct cfl__admin_cmd c;
	char err[CFL_ERR_MSG_MAX] = "";
	json_t *res;
	char *text;
	size_t len;

	CFL_INFO("admin %s: %s", r->who, r->cmd);
	if (cfl__admin_cmd_parse(r->cmd, &c, err, sizeof(err)) != 0) {
		cfl_peer_reply_error(r->peer, r->id, "failed", err);
		return;
	}
	if (strcmp(c.verb, "download_job") == 0 && allowed(r->role, c.verb)) {
		if (cfl_jobs_download(r->a->jobs, c.arg, &text, &len, &e) != 0) {
			cfl_peer_reply_error(r->peer, r->id, "failed", e.msg);
			return;
		}
		reply_text(r, text, len);
		return;
	}
	res = run(r, &c, err, sizeof(err));
	if (res == NULL) {
		cfl_peer_reply_error(r->peer, r->id, "failed", err[0] ? err : "failed");
		return;
	}
	text = json_dumps(res, JSON_COMPACT);
	json_decref(res);
	if (text == NULL) {
		cfl_peer_reply_error(r->peer, r->id, "failed", "out of memory");
		return;
	}
	reply_text(r, text, strlen(text));
}

/* Large results (a downloaded job) stream out of the buffer, which the done function frees. */
struct outbuf {
	char *p;
	size_t len, off;
};

static int out_read(void *src, uint8_t *buf, size_t len)
{
	struct outbuf *o = src;

	return (int)cfl__buf_take(o->p, o->len, &o->off, buf, len);
}

static void out_done(struct cfl_conn *c, uint64_t id, int status, void *src)
{
	struct outbuf *o = src;

	(void)c;
	(void)id;
	(void)status;
	free(o->p);
	free(o);
}

static void reply_text(struct areq *r, const char *text, size_t len)
{
	struct outbuf *o = calloc(1, sizeof(*o));

	if (o == NULL) {
		free((char *)text);
		cfl_peer_reply_error(r->peer, r->id, "failed", "out of memory");
		return;
	}
	o->p = (char *)text;
	o->len = len;
	if (cfl_peer_reply_stream(r->peer, r->id, NULL, 0, len, out_read, o, out_done) != 0) {
		free(o->p);
		free(o);
		cfl_peer_reply_error(r->peer, r->id, "failed", "cannot send the result");
	}
}

static void areq_data(void *st, const uint8_t *d, size_t n)
{
	struct areq *r = st;

	if (r->failed || n == 0)
		return;
	if (r->len + n > CFL_JOB_BUNDLE_MAX) {
		r->failed = 1;
		return;
	}
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 65536;
		char *p;

		while (cap < r->len + n + 1)
			cap *= 2;
		p = realloc(r->body, cap);
		if (p == NULL) {
			r->failed = 1;
			return;
		}
		r->body = p;
		r->cap = cap;
	}
	memcpy(r->body + r->len, d, n);
	r->len += n;
	r->body[r->len] = '\0';
}

static void areq_end(void *st, int status, const char *reason)
{
	struct areq *r = st;

	(void)reason;
	if (status == 0 && !r->failed)
		areq_run(r);
	else if (status == 0)
		cfl_peer_reply_error(r->peer, r->id, "too_big", "the job is too large");
	free(r->body);
	free(r);
}

static void on_admin(struct cfl_peer *p, const struct cfl_frame *f, int more,
                     struct cfl_msg_sink *sink, void *arg)
{
	struct admin *a = arg;
	enum cfl_auth_kind kind;
	const char *role = "";
	const char *who = cfl_auth_server_identity(p, &kind, &role);
	struct areq *r;

	if (f->type != CFL_FRAME_T_REQUEST)
		return;
	if (who == NULL || kind != CFL_AUTH_ADMIN) {
		CFL_WARN("admin command from a non-admin session '%s' refused", who ? who : "-");
		cfl_peer_reply_error(p, f->id, "forbidden", "admin commands need an admin login");
		return;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		cfl_peer_reply_error(p, f->id, "failed", "out of memory");
		return;
	}
	r->a = a;
	r->peer = p;
	r->id = f->id;
	snprintf(r->who, sizeof(r->who), "%s", who);
	snprintf(r->role, sizeof(r->role), "%s", role);
	cfl_frame_header_str(f, CFL_KEY_CMD, r->cmd, sizeof(r->cmd));
	areq_data(r, f->body, f->body_len);
	if (more)
		*sink = (struct cfl_msg_sink){areq_data, areq_end, r};
	else
		areq_end(r, 0, NULL);
}

int cfl__server_admin_init(struct cfl_msg_hub *hub, struct cfl_auth_server *auth,
                           struct cfl_jobs *jobs, const struct cfl__server_info *info)
{
	static struct admin a; /* one server per process */

	a.auth = auth;
	a.jobs = jobs;
	a.hub = hub;
	a.info = *info;
	return cfl_msg_hub_handle(hub, CFL_TOPIC_ADMIN, on_admin, &a);
}
