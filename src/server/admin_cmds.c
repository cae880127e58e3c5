/* Admin commands on the server: check_status, list_jobs, submit_job, abort_job, download_job,
 * remove_client, shutdown. Only sessions that logged in with an admin certificate may call
 * them, and each command needs a right of the server's own policy (its kit's
 * local/authorization.json; docs/security.md, "Console rights"), checked on the request's first
 * frame: a refused request never gets a byte of its body buffered.
 *
 * A request: first frame → parse → authorize → run (or, for submit_job, collect the body,
 * then run) → reply. */
#include "server_int.h"

#include "cfl/log.h"
#include "cfl/proto.h"
#include "util/bufsrc.h"
#include "util/num.h"

#include <fnmatch.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* check_status client answers with at most this many rows (~250 bytes each), sorted by name,
 * with the counts and the offset of the next page: a server holds ~20,000 sessions. */
#define LIST_PAGE 1000

struct admin {
	struct cfl_auth_server *auth;
	struct cfl_jobs *jobs;
	struct cfl_msg_hub *hub;
	struct cfl__server_info info;
};

struct verb;

/* One admin request, with its body collected (a job bundle may come as a stream). */
struct areq {
	struct admin *a;
	struct cfl_peer *peer;
	uint64_t id;
	struct cfl_jobs_who who; /* the admin, from its login certificate */
	char line[1024];
	struct cfl__admin_cmd c;
	const struct verb *v;
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
	char seen[32], exp[32], cert[32];

	iso_time(i->last_seen_ms, seen, sizeof(seen));
	iso_time(i->token_expiry * 1000, exp, sizeof(exp));
	/* The notAfter of the certificate it logged in with. */
	iso_time(i->cert_not_after * 1000, cert, sizeof(cert));
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:s}", "name", i->name,
	                 "address", i->addr, "via", i->via, "connection_security",
	                 cfl_conn_sec_name(i->mode), "connected", i->connected, "last_heartbeat",
	                 seen, "token_expiry", exp, "cert_not_after", cert, "role", i->role);
}

/* Every session of `kind` (*n of them), or NULL (*n 0) when there are none or no memory. */
static struct cfl_auth_session_info *all_sessions(struct admin *a, enum cfl_auth_kind kind,
                                                  size_t *n)
{
	size_t want = cfl_auth_server_sessions(a->auth, kind, NULL, 0);
	struct cfl_auth_session_info *v = want ? calloc(want, sizeof(*v)) : NULL;

	*n = v != NULL ? cfl_auth_server_sessions(a->auth, kind, v, want) : 0;
	*n = *n < want ? *n : want;
	return v;
}

static int by_name(const void *x, const void *y)
{
	return strcmp((*(const struct cfl_auth_session_info *const *)x)->name,
	              (*(const struct cfl_auth_session_info *const *)y)->name);
}

/* The counts of an answer: every client, those connected, those the pattern matched. */
static json_t *client_counts(const struct cfl_auth_session_info *v, size_t n, size_t matched)
{
	size_t up = 0;

	for (size_t i = 0; i < n; i++)
		up += v[i].connected != 0;
	return json_pack("{s:I, s:I, s:I, s:I}", "total", (json_int_t)n, "connected",
	                 (json_int_t)up, "disconnected", (json_int_t)(n - up), "matched",
	                 (json_int_t)matched);
}

/* The page of the clients whose names match `pattern` (a shell pattern, "" for all), from the
 * `from`-th in name order: {"clients": [...], "total", "connected", "disconnected", "matched",
 * "from", "next" (null on the last page)}. */
static json_t *list_clients(struct admin *a, const char *pattern, size_t from)
{
	size_t n, m = 0, to;
	struct cfl_auth_session_info *v = all_sessions(a, CFL_AUTH_CLIENT, &n);
	const struct cfl_auth_session_info **sel = calloc(n ? n : 1, sizeof(*sel));
	json_t *arr = json_array(), *res = NULL;

	if (sel != NULL && arr != NULL) {
		for (size_t i = 0; i < n; i++)
			if (pattern[0] == '\0' || fnmatch(pattern, v[i].name, 0) == 0)
				sel[m++] = &v[i];
		qsort(sel, m, sizeof(*sel), by_name);
		to = from < m ? (m - from > LIST_PAGE ? from + LIST_PAGE : m) : from;
		for (size_t i = from; i < to; i++)
			json_array_append_new(arr, session_json(sel[i]));
		res = client_counts(v, n, m);
		json_object_set_new(res, "pattern", json_string(pattern[0] ? pattern : "*"));
		json_object_set_new(res, "from", json_integer((json_int_t)from));
		json_object_set_new(res, "next",
		                    to < m ? json_integer((json_int_t)to) : json_null());
		json_object_set_new(res, "clients", arr);
		arr = NULL;
	}
	json_decref(arr);
	free(sel);
	free(v);
	return res;
}

static json_t *server_status(struct admin *a)
{
	size_t n, admins = cfl_auth_server_sessions(a->auth, CFL_AUTH_ADMIN, NULL, 0);
	struct cfl_auth_session_info *v = all_sessions(a, CFL_AUTH_CLIENT, &n);
	json_t *counts = client_counts(v, n, n), *res;
	char started[32];
	struct timespec ts;

	free(v);
	clock_gettime(CLOCK_REALTIME, &ts);
	iso_time(a->info.started_ms, started, sizeof(started));
	res = json_pack("{s:{s:s, s:s, s:s, s:s, s:I, s:O, s:O, s:I}}", "server", "name",
	                a->info.name, "project", a->info.project, "status", "started", "started_at",
	                started, "uptime_s", (json_int_t)(ts.tv_sec - a->info.started_ms / 1000),
	                "clients", json_object_get(counts, "total"), "clients_connected",
	                json_object_get(counts, "connected"), "admins", (json_int_t)admins);
	json_decref(counts);
	return res;
}

/* A pattern's '*'s: fnmatch() may backtrack through each against a 255-byte name, for every
 * session: a few are all a name filter needs. */
#define PATTERN_STARS 4

static int stars(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		n += *s == '*';
	return n;
}

/* FROM of `check_status client PATTERN FROM`: decimal digits; -1 if not. */
/* The FROM of a page: "" is 0; else plain digits below 10^9; -1 for anything else. */
static long page_from(const char *s)
{
	uint64_t v = 0;

	if (s[0] != '\0' && cfl__num_u64(s, 999999999, &v) != 0)
		return -1;
	return (long)v;
}

static json_t *check_status(struct admin *a, const struct cfl__admin_cmd *c, char *err, size_t en)
{
	long from = page_from(c->arg3);
	json_t *v;

	if (strcmp(c->arg, "client") == 0 && from >= 0 && stars(c->arg2) <= PATTERN_STARS) {
		v = list_clients(a, strcmp(c->arg2, "*") == 0 ? "" : c->arg2, (size_t)from);
		if (v == NULL)
			snprintf(err, en, "out of memory");
		return v;
	}
	if (strcmp(c->arg, "server") == 0 && c->arg2[0] == '\0')
		return server_status(a);
	snprintf(err, en, "usage: check_status server|client [PATTERN [FROM]]%s",
	         stars(c->arg2) > PATTERN_STARS ? " (at most 4 '*' in PATTERN)" : "");
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

/* --- the commands --------------------------------------------------------------------------- */

/* A command's work, once allowed: 0 with the reply's text (a new buffer, sent and freed by the
 * caller), or an error with its message in err[0..en). */
typedef int (*verb_fn)(struct areq *r, char **out, size_t *len, char *err, size_t en);

#define JOB_ARG 1u /* the first argument, when given, names a job: its submitter is checked */
#define BODY    2u /* the request carries a body (a job bundle) */
#define LISTING 4u /* without a job, lists only the jobs the admin may see */

/* Each command and the right of the server's policy it needs (docs/security.md). */
struct verb {
	const char *name;
	enum cfl_right right;
	unsigned flags;
	verb_fn fn;
};

/* The JSON value as the reply's text; takes the reference. */
static int reply_json(json_t *v, char **out, size_t *len, char *err, size_t en)
{
	*out = v != NULL ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	if (*out == NULL) {
		snprintf(err, en, "out of memory");
		return CFL_ENOMEM;
	}
	*len = strlen(*out);
	return 0;
}

static int do_check_status(struct areq *r, char **out, size_t *len, char *err, size_t en)
{
	json_t *v = check_status(r->a, &r->c, err, en);

	return v != NULL ? reply_json(v, out, len, err, en) : CFL_EINVAL;
}

/* An admin, or a job's submitter, as the policy sees them. */
static struct cfl_authz_who as_who(const struct cfl_jobs_who *w)
{
	return (struct cfl_authz_who){w->name, w->org, w->role};
}

/* Whether the admin may see job `id` (view, with its submitter). */
static int may_view(struct areq *r, const char *id)
{
	struct cfl_authz_who admin = as_who(&r->who), sub;
	struct cfl_jobs_who by;

	if (cfl_jobs_submitter(r->a->jobs, id, &by) != 0)
		return 0;
	sub = as_who(&by);
	return cfl_authz_check(*r->a->info.policy, CFL_RIGHT_VIEW, &admin, &sub, r->a->info.org,
	                       NULL, 0) == 0;
}

static int do_list_jobs(struct areq *r, char **out, size_t *len, char *err, size_t en)
{
	char *text = cfl_jobs_list(r->a->jobs, r->c.arg[0] ? r->c.arg : NULL);
	json_t *v = text != NULL ? json_loads(text, 0, NULL) : NULL;
	json_t *jobs = json_object_get(v, "jobs");

	free(text);
	/* A policy may let an admin see only its own or its org's jobs (view: n:submitter or
	 * o:submitter): the others are left out. */
	for (size_t i = json_array_size(jobs); i-- > 0;) {
		const char *id = json_string_value(json_object_get(json_array_get(jobs, i), "id"));

		if (id == NULL || !may_view(r, id))
			json_array_remove(jobs, i);
	}
	return reply_json(v, out, len, err, en);
}

static int do_submit_job(struct areq *r, char **out, size_t *len, char *err, size_t en)
{
	struct cfl_err e = {0};
	char id[64];

	if (cfl_jobs_submit(r->a->jobs, r->body, r->len, &r->who, id, &e) != 0) {
		snprintf(err, en, "%s", e.msg);
		return e.code;
	}
	return reply_json(json_pack("{s:s}", "job_id", id), out, len, err, en);
}

static int do_abort_job(struct areq *r, char **out, size_t *len, char *err, size_t en)
{
	struct cfl_err e = {0};

	if (cfl_jobs_abort(r->a->jobs, r->c.arg, &e) != 0) {
		snprintf(err, en, "%s", e.msg);
		return e.code;
	}
	return reply_json(json_pack("{s:s}", "aborted", r->c.arg), out, len, err, en);
}

static int do_download_job(struct areq *r, char **out, size_t *len, char *err, size_t en)
{
	struct cfl_err e = {0};

	if (cfl_jobs_download(r->a->jobs, r->c.arg, out, len, &e) != 0) {
		snprintf(err, en, "%s", e.msg);
		return e.code;
	}
	return 0;
}

static int do_remove_client(struct areq *r, char **out, size_t *len, char *err, size_t en)
{
	if (cfl_auth_server_remove(r->a->auth, r->c.arg, "removed by an admin") != 0) {
		snprintf(err, en, "no client '%s'", r->c.arg);
		return CFL_ENOENT;
	}
	return reply_json(json_pack("{s:s}", "removed", r->c.arg), out, len, err, en);
}

static int do_shutdown(struct areq *r, char **out, size_t *len, char *err, size_t en)
{
	if (r->c.arg2[0] == '\0' || strcmp(r->c.arg, "client") != 0) {
		snprintf(err, en, "usage: shutdown client NAME|all");
		return CFL_EINVAL;
	}
	cfl_msg_hub_foreach(r->a->hub, shutdown_one, r->c.arg2);
	return reply_json(json_pack("{s:s}", "shutdown", r->c.arg2), out, len, err, en);
}

/* tests/integration/test_admin.sh reads the command names from this table. */
static const struct verb verbs[] = {
        {"check_status", CFL_RIGHT_VIEW, 0, do_check_status},
        {"list_jobs", CFL_RIGHT_VIEW, JOB_ARG | LISTING, do_list_jobs},
        {"submit_job", CFL_RIGHT_SUBMIT_JOB, BODY, do_submit_job},
        {"abort_job", CFL_RIGHT_MANAGE_JOB, JOB_ARG, do_abort_job},
        {"download_job", CFL_RIGHT_DOWNLOAD_JOB, JOB_ARG, do_download_job},
        {"remove_client", CFL_RIGHT_OPERATE, 0, do_remove_client},
        {"shutdown", CFL_RIGHT_OPERATE, 0, do_shutdown},
};

static const struct verb *find_verb(const char *name)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(verbs[i].name, name) == 0)
			return &verbs[i];
	}
	return NULL;
}

/* --- parsing and authorizing ------------------------------------------------------------------ */

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
	    next_word(&s, c->arg2, sizeof(c->arg2)) != 0 ||
	    next_word(&s, c->arg3, sizeof(c->arg3)) != 0) {
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

/* Whether the server's policy gives the admin the command's right. Returns 0 or CFL_EPERM with
 * the reason in err[0..en). */
static int authorize(struct areq *r, char *err, size_t en)
{
	const struct verb *v = r->v;
	const struct cfl_authz *pol = *r->a->info.policy;
	struct cfl_authz_who admin = as_who(&r->who), sub;
	const struct cfl_authz_who *submitter = NULL;
	const char *rule = cfl_authz_rule(pol, r->who.role, v->right);
	char why[512];
	struct cfl_jobs_who by;

	if ((v->flags & JOB_ARG) && r->c.arg[0] != '\0') {
		/* A job that does not exist has no submitter: n:submitter and o:submitter refuse
		 * it, and only an admin whose rule passes anyway learns that it does not exist. */
		if (cfl_jobs_submitter(r->a->jobs, r->c.arg, &by) == 0) {
			sub = as_who(&by);
			submitter = &sub;
		}
	} else if (v->right == CFL_RIGHT_SUBMIT_JOB) {
		submitter = &admin; /* the job will be the admin's own */
	} else if ((v->flags & LISTING) && rule != NULL &&
	           (strcmp(rule, "n:submitter") == 0 || strcmp(rule, "o:submitter") == 0)) {
		return 0; /* every job is checked as it is listed */
	}
	if (cfl_authz_check(pol, v->right, &admin, submitter, r->a->info.org, why, sizeof(why)) ==
	    0)
		return 0;
	/* "abort_job: manage_job not granted to lead@b.org (lead: n:submitter)" */
	if (strcmp(v->name, cfl_authz_right_name(v->right)) == 0)
		snprintf(err, en, "%s", why);
	else
		snprintf(err, en, "%s: %s", v->name, why);
	return CFL_EPERM;
}

/* Parses the command line and authorizes it. Returns 0, or an error with the reply's status
 * word in *status and its reason in err[0..en). */
static int admit(struct areq *r, const struct cfl_frame *f, int more, const char **status,
                 char *err, size_t en)
{
	int rc;

	*status = "failed";
	if ((rc = cfl__admin_cmd_parse(r->line, &r->c, err, en)) != 0)
		return rc;
	if ((r->v = find_verb(r->c.verb)) == NULL) {
		snprintf(err, en, "unknown command '%s'", r->c.verb);
		return CFL_EINVAL;
	}
	if ((rc = authorize(r, err, en)) != 0) {
		if (rc == CFL_EPERM)
			*status = "forbidden";
		return rc;
	}
	if (!(r->v->flags & BODY) && (more || f->body_len > 0)) {
		snprintf(err, en, "%s takes no body", r->v->name);
		return CFL_EINVAL;
	}
	return 0;
}

/* --- replies ---------------------------------------------------------------------------------- */

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

/* Sends `text` (len bytes, taken) as the reply. */
static void reply_text(struct areq *r, char *text, size_t len)
{
	struct outbuf *o = calloc(1, sizeof(*o));

	if (o == NULL) {
		free(text);
		cfl_peer_reply_error(r->peer, r->id, "failed", "out of memory");
		return;
	}
	o->p = text;
	o->len = len;
	if (cfl_peer_reply_stream(r->peer, r->id, NULL, 0, len, out_read, o, out_done) != 0) {
		free(o->p);
		free(o);
		cfl_peer_reply_error(r->peer, r->id, "failed", "cannot send the result");
	}
}

static void areq_run(struct areq *r)
{
	char err[CFL_ERR_MSG_MAX] = "", *text = NULL;
	size_t len = 0;

	if (r->v->fn(r, &text, &len, err, sizeof(err)) != 0) {
		cfl_peer_reply_error(r->peer, r->id, "failed", err[0] ? err : "failed");
		return;
	}
	reply_text(r, text, len);
}

static void areq_free(struct areq *r)
{
	free(r->body);
	free(r);
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
	areq_free(r);
}

static void on_admin(struct cfl_peer *p, const struct cfl_frame *f, int more,
                     struct cfl_msg_sink *sink, void *arg)
{
	struct admin *a = arg;
	enum cfl_auth_kind kind;
	const char *role = "", *status;
	const char *who = cfl_auth_server_identity(p, &kind, &role);
	const char *org = cfl_auth_server_org(p);
	char err[CFL_ERR_MSG_MAX] = "";
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
	snprintf(r->who.name, sizeof(r->who.name), "%s", who);
	snprintf(r->who.org, sizeof(r->who.org), "%s", org != NULL ? org : "");
	snprintf(r->who.role, sizeof(r->who.role), "%s", role);
	cfl_frame_header_str(f, CFL_KEY_CMD, r->line, sizeof(r->line));
	CFL_INFO("admin %s: %s", r->who.name, r->line);
	/* Refused here, on the first frame: the sink stays zeroed, so the hub cancels the rest of
	 * a streamed body instead of taking it. */
	if (admit(r, f, more, &status, err, sizeof(err)) != 0) {
		CFL_WARN("admin %s: '%s' refused: %s", r->who.name, r->c.verb, err);
		cfl_peer_reply_error(p, f->id, status, err);
		areq_free(r);
		return;
	}
	if (!(r->v->flags & BODY)) {
		areq_run(r);
		areq_free(r);
		return;
	}
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
