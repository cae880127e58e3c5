/* bench_scale's load process: up to LOAD_MAX sites on one event loop, each a real site as far
 * as the server can tell (its own kit's TLS context and certificate, its own hub, cfl_auth_client
 * logging in with challenge and register and heart-beating, cfl_executor running the job's
 * tasks), without a process of its own.
 *
 * Talks with the parent over two pipes: it reads 'g' (start dialing), 's' (the server is going
 * away: stop redialing) or end of file (exit); it writes lines: "ready SECONDS", "n IN FAILS
 * DROPS" (every 200 ms when something changed), "fail SITE REASON" and "drop SITE REASON"
 * (the first FAIL_LINES of each). */
#define _GNU_SOURCE
#include "scale.h"

#include "cfl/auth.h"
#include "cfl/conn.h"
#include "cfl/executor.h"
#include "cfl/kit.h"
#include "cfl/log.h"
#include "cfl/loop.h"
#include "cfl/msg.h"
#include "cfl/tls.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ATTEMPTS 5  /* a site that fails this many logins in a row is given up */
#define FAIL_LINES   20 /* failure lines each load process reports in full */
#define RETRY_MS     1000
#define STATUS_MS    200

enum site_state { S_IDLE, S_DIALING, S_IN, S_GIVEN_UP };

struct site {
	struct cfl_msg_hub *hub;
	struct cfl_auth_client *auth;
	struct cfl_executor *exec;
	struct cfl_tls_ctx *tls;
	enum site_state state;
	int num, attempts;
};

static struct {
	struct cfl_loop *loop;
	struct site *sites;
	int n;
	int *queue, q_head, q_len; /* sites waiting to dial, a ring of n */
	int in_flight, n_in, fails, drops, lines, stopping, started;
	int reported[3];
	char host[256], run_dir[PATH_MAX];
	int port, ctl, st;
} L;

static void load_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void load_die(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	n = n < 0 ? 0 : n > (int)sizeof(line) - 2 ? (int)sizeof(line) - 2 : n;
	line[n++] = '\n';
	fputs(line, stderr);
	(void)!write(L.st, "error ", 6);
	(void)!write(L.st, line, (size_t)n);
	_exit(1);
}

/* One line to the parent; lines are short, so each write is atomic. */
static void load_tell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void load_tell(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n = n > (int)sizeof(line) - 2 ? (int)sizeof(line) - 2 : n;
	line[n++] = '\n';
	if (write(L.st, line, (size_t)n) != n)
		_exit(1); /* the parent is gone */
}

static void load_event(const struct site *s, const char *what, const char *reason)
{
	if (L.lines++ < FAIL_LINES)
		load_tell("%s site-%d %s", what, s->num, reason ? reason : "closed");
}

/* --- dialing ------------------------------------------------------------------------------ */

static void pump(void);

static void enqueue(struct site *s)
{
	L.queue[(L.q_head + L.q_len++) % L.n] = (int)(s - L.sites);
	s->state = S_IDLE;
}

static void on_retry(struct cfl_loop *loop, uint64_t id, void *arg)
{
	(void)loop;
	(void)id;
	if (!L.stopping)
		enqueue(arg);
	pump();
}

/* A login that failed or a session that ended: dial again later, as a real site does, unless
 * it failed MAX_ATTEMPTS times in a row. */
static void retry(struct site *s)
{
	s->state = S_IDLE;
	if (L.stopping)
		return;
	if (++s->attempts >= MAX_ATTEMPTS) {
		s->state = S_GIVEN_UP;
		load_event(s, "gave-up", "too many failed logins");
		return;
	}
	cfl_loop_timer_add(L.loop, RETRY_MS + (uint64_t)(rand() % RETRY_MS), on_retry, s);
}

static void dial(struct site *s)
{
	struct cfl_conn_opts o = cfl_msg_hub_conn_opts(s->hub, s->tls);
	struct cfl_conn *conn;
	struct cfl_err e = {0};

	s->state = S_DIALING;
	L.in_flight++;
	if (cfl_conn_dial(L.loop, L.host, L.port, &o, &conn, &e) != 0) {
		L.in_flight--;
		L.fails++;
		load_event(s, "fail", e.msg);
		retry(s);
	}
}

static void pump(void)
{
	while (L.started && !L.stopping && L.q_len > 0 && L.in_flight < DIAL_WINDOW) {
		struct site *s = &L.sites[L.queue[L.q_head]];

		L.q_head = (L.q_head + 1) % L.n;
		L.q_len--;
		dial(s);
	}
}

static void logged_in(struct cfl_peer *p, int status, const char *reason, void *arg)
{
	struct site *s = arg;

	if (status != 0) {
		load_event(s, "fail", reason ? reason : cfl_strerror(status));
		cfl_conn_close(cfl_peer_conn(p), "login failed");
		return; /* site_down follows */
	}
	s->state = S_IN;
	s->attempts = 0;
	L.in_flight--;
	L.n_in++;
	pump();
}

static void site_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct site *s = arg;

	(void)code;
	(void)reason;
	cfl_peer_set_name(p, "server");
	if (cfl_auth_client_login(s->auth, p, logged_in, s) != 0)
		cfl_conn_close(cfl_peer_conn(p), "cannot start the login");
}

static void site_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct site *s = arg;

	(void)code;
	if (p != NULL) {
		cfl_auth_client_peer_down(s->auth, p);
		cfl_executor_peer_down(s->exec, p);
	}
	if (s->state == S_IN) {
		L.n_in--;
		L.drops++;
		if (!L.stopping)
			load_event(s, "drop", reason);
	} else if (s->state == S_DIALING) {
		L.in_flight--;
		L.fails++;
		if (!L.stopping)
			load_event(s, "fail", reason);
	}
	retry(s);
	pump();
}

/* --- set-up ------------------------------------------------------------------------------- */

static void site_init(struct site *s, int num, const char *prod)
{
	char dir[PATH_MAX], work[PATH_MAX], local[PATH_MAX];
	struct cfl_kitcfg *k = calloc(1, sizeof(*k));
	struct cfl_err e = {0};

	s->num = num;
	if (k == NULL)
		load_die("out of memory");
	if (pathf(dir, sizeof(dir), "%s/site-%d", prod, num) != 0 ||
	    pathf(work, sizeof(work), "%s/sites/site-%d", L.run_dir, num) != 0 ||
	    pathf(local, sizeof(local), "%s/local", dir) != 0)
		load_die("site-%d: path too long", num);
	if (cfl_kitcfg_load(dir, 0, k, &e) != 0)
		load_die("site-%d: %s", num, e.msg);
	struct cfl_tls_config tc = {.is_server = 0,
	                            .mode = k->mode,
	                            .cert_file = k->cert,
	                            .key_file = k->key,
	                            .ca_file = cfl_kitcfg_trust_file(k)};
	struct cfl_auth_client_cfg ac = {.name = k->name,
	                                 .project = k->project,
	                                 .server_cn = k->identity,
	                                 .cert_file = k->cert,
	                                 .key_file = k->key,
	                                 .root_ca = k->root_ca,
	                                 .kind = CFL_AUTH_CLIENT,
	                                 .mode = k->mode};
	struct cfl_executor_cfg xc = {.work_dir = work,
	                              .site = k->name,
	                              .root_ca = k->root_ca,
	                              .local_dir = local,
	                              .org = "bench"};

	cfl_auth_times_default(&ac.times);
	if (cfl_tls_ctx_new(&tc, &s->tls, &e) != 0 ||
	    cfl_msg_hub_new(L.loop, k->name, &s->hub, &e) != 0 ||
	    cfl_auth_client_new(s->hub, &ac, &s->auth, &e) != 0 ||
	    cfl_executor_new(s->hub, &xc, &s->exec, &e) != 0)
		load_die("site-%d: %s", num, e.msg);
	cfl_msg_hub_on_peer(s->hub, site_up, site_down, s);
	if (L.host[0] == '\0')
		snprintf(L.host, sizeof(L.host), "%s", k->host);
	free(k);
	enqueue(s);
}

/* --- the parent's pipes ------------------------------------------------------------------- */

static void on_status(struct cfl_loop *loop, uint64_t id, void *arg)
{
	int now[3] = {L.n_in, L.fails, L.drops};

	(void)id;
	(void)arg;
	if (memcmp(now, L.reported, sizeof(now)) != 0) {
		memcpy(L.reported, now, sizeof(now));
		load_tell("n %d %d %d", L.n_in, L.fails, L.drops);
	}
	cfl_loop_timer_add(loop, STATUS_MS, on_status, NULL);
}

static void on_ctl(struct cfl_loop *loop, int fd, int events, void *arg)
{
	char c;
	ssize_t r = read(fd, &c, 1);

	(void)events;
	(void)arg;
	if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
		on_status(loop, 0, NULL); /* the last figures, then quit at once */
		_exit(0);
	}
	if (r == 1 && c == 'g') {
		L.started = 1;
		pump();
	} else if (r == 1 && c == 's') {
		L.stopping = 1;
	}
}

/* The load process: sites first..first+count-1, each kit in kit_dir(its number), dialing
 * `port`. */
int load_main(const char *(*kit_dir)(int num), const char *run_dir, int first, int count, int port,
              int ctl, int st)
{
	struct cfl_err e = {0};
	double t0 = now_s();

	L.ctl = ctl;
	L.st = st;
	L.port = port;
	L.n = count;
	snprintf(L.run_dir, sizeof(L.run_dir), "%s", run_dir);
	cfl_log_set_level(CFL_LOG_ERROR);
	srand((unsigned)getpid());
	if ((L.sites = calloc((size_t)count, sizeof(*L.sites))) == NULL ||
	    (L.queue = calloc((size_t)count, sizeof(int))) == NULL)
		load_die("out of memory");
	if (cfl_loop_new(&L.loop, &e) != 0)
		load_die("%s", e.msg);
	for (int i = 0; i < count; i++)
		site_init(&L.sites[i], first + i, kit_dir(first + i));
	if (cfl_loop_watch(L.loop, ctl, CFL_EV_READ, on_ctl, NULL) != 0)
		load_die("cannot watch the control pipe");
	load_tell("ready %.3f", now_s() - t0);
	on_status(L.loop, 0, NULL);
	if (cfl_loop_run(L.loop) != 0)
		load_die("event loop failed");
	return 0;
}
