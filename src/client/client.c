/* cfl client: dial the server with the kit's connection security, say hello, reconnect with
 * capped exponential backoff, and run the optional test actions. */
#include "cfl/client.h"

#include "cfl/auth.h"
#include "cfl/conn.h"
#include "cfl/digest.h"
#include "cfl/executor.h"
#include "cfl/kitcfg.h"
#include "cfl/log.h"
#include "cfl/loop.h"
#include "cfl/msg.h"
#include "cfl/tls.h"
#include "client_int.h"
#include "util/teststream.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define ONEWAY_BATCH   1000
#define TEST_SEED      20261126u

struct client {
	struct cfl_kitcfg cfg;
	const struct cfl_client_action *act;
	struct cfl_loop *loop;
	struct cfl_msg_hub *hub;
	struct cfl_tls_ctx *tls;
	struct cfl_peer *peer; /* set while connected and logged in */
	struct cfl_auth_client *auth;
	struct cfl_executor *exec;
	uint64_t backoff_ms;
	uint64_t t_start;
	uint64_t done_count; /* ping / oneway progress */
	int finished, stopping, result;
	struct cfl_err err;
	/* pingloop */
	int loop_started;
	uint64_t t_end, sent, ok, failed, offline, outstanding;
	unsigned logins;
	/* send / recv */
	struct cfl__tstream ts;
	struct cfl_sha256 *sha;
	uint64_t got;
};

static void finish(struct client *c, int rc, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Runs that outlive a lost connection: reconnect and log in again instead of failing. */
static int persistent(const struct client *c)
{
	return c->act->kind == CFL_ACT_NONE || c->act->kind == CFL_ACT_PINGLOOP;
}

static void finish(struct client *c, int rc, const char *fmt, ...)
{
	va_list ap;

	if (c->finished)
		return;
	c->finished = 1;
	c->result = rc;
	if (rc != 0) {
		va_start(ap, fmt);
		c->err.code = rc;
		vsnprintf(c->err.msg, sizeof(c->err.msg), fmt, ap);
		va_end(ap);
	}
	if (c->peer != NULL)
		cfl_conn_close(cfl_peer_conn(c->peer), rc == 0 ? "done" : "failed");
	else
		cfl_loop_stop(c->loop);
}

static double secs_since(const struct client *c)
{
	return (double)(cfl_loop_now_ms(c->loop) - c->t_start) / 1e3;
}

/* --- actions ---------------------------------------------------------------------------- */

static void start_action(struct client *c);

static void ping_reply(struct cfl_peer *p, int status, const char *reason,
                       const struct cfl_frame *f, int more, struct cfl_msg_sink *sink, void *arg)
{
	struct client *c = arg;

	(void)p;
	(void)f;
	(void)more;
	(void)sink;
	if (status != 0) {
		finish(c, status, "ping failed: %s", reason ? reason : cfl_strerror(status));
		return;
	}
	if (c->act->kind == CFL_ACT_ONEWAY) {
		if (c->done_count < c->act->n) {
			start_action(c);
			return;
		}
		printf("oneway: %" PRIu64 " messages in %.3f s (%.0f/s)\n", c->act->n,
		       secs_since(c), (double)c->act->n / secs_since(c));
		finish(c, 0, "ok");
		return;
	}
	if (++c->done_count < c->act->n) {
		int rc = cfl_peer_request(c->peer, "ping", NULL, 0, "x", 1, 0, ping_reply, c);

		if (rc != 0)
			finish(c, rc, "ping failed: %s", cfl_strerror(rc));
		return;
	}
	printf("ping: %" PRIu64 " round trips in %.3f s (%.0f/s)\n", c->act->n, secs_since(c),
	       (double)c->act->n / secs_since(c));
	finish(c, 0, "ok");
}

static void echo_reply(struct cfl_peer *p, int status, const char *reason,
                       const struct cfl_frame *f, int more, struct cfl_msg_sink *sink, void *arg)
{
	struct client *c = arg;
	size_t n = strlen(c->act->text);

	(void)p;
	(void)more;
	(void)sink;
	if (status != 0)
		finish(c, status, "echo failed: %s", reason ? reason : cfl_strerror(status));
	else if (f->body_len != n || memcmp(f->body, c->act->text, n) != 0)
		finish(c, CFL_EVERIFY, "echo came back different");
	else {
		printf("message: echoed %zu bytes in %.3f s\n", n, secs_since(c));
		finish(c, 0, "ok");
	}
}

static int send_read(void *src, uint8_t *buf, size_t len)
{
	struct client *c = src;
	size_t n = cfl__tstream_fill(&c->ts, buf, len);

	cfl_sha256_update(c->sha, buf, n);
	return (int)n;
}

static int header_is(const struct cfl_frame *f, const char *key, const char *want)
{
	char buf[128];

	return cfl_frame_header_str(f, key, buf, sizeof(buf)) == 0 && strcmp(buf, want) == 0;
}

static void send_reply(struct cfl_peer *p, int status, const char *reason,
                       const struct cfl_frame *f, int more, struct cfl_msg_sink *sink, void *arg)
{
	struct client *c = arg;
	uint8_t md[CFL_SHA256_LEN];
	char hex[2 * CFL_SHA256_LEN + 1], len[24];

	(void)p;
	(void)more;
	(void)sink;
	if (status != 0) {
		finish(c, status, "send failed: %s", reason ? reason : cfl_strerror(status));
		return;
	}
	cfl_sha256_final(c->sha, md);
	cfl_hex(md, sizeof(md), hex);
	snprintf(len, sizeof(len), "%" PRIu64, c->act->n);
	if (!header_is(f, "length", len) || !header_is(f, "sha256", hex)) {
		finish(c, CFL_EVERIFY, "send: the server received different bytes");
		return;
	}
	printf("send: %" PRIu64 " bytes intact (sha256 %.16s...) in %.3f s, %.1f MB/s\n", c->act->n,
	       hex, secs_since(c), (double)c->act->n / 1e6 / secs_since(c));
	finish(c, 0, "ok");
}

static void recv_data(void *st, const uint8_t *d, size_t n)
{
	struct client *c = st;

	cfl_sha256_update(c->sha, d, n);
	c->got += n;
}

/* The expected digest, regenerated from the seed (the stream is never stored). */
static void expected_digest(uint64_t len, uint8_t md[CFL_SHA256_LEN])
{
	static uint8_t buf[1 << 20];
	struct cfl__tstream ts;
	struct cfl_sha256 *h = cfl_sha256_new();
	size_t n;

	cfl__tstream_init(&ts, TEST_SEED, len);
	while (h != NULL && (n = cfl__tstream_fill(&ts, buf, sizeof(buf))) > 0)
		cfl_sha256_update(h, buf, n);
	if (h != NULL)
		cfl_sha256_final(h, md);
	cfl_sha256_free(h);
}

static void recv_end(void *st, int status, const char *reason)
{
	struct client *c = st;
	uint8_t md[CFL_SHA256_LEN], want[CFL_SHA256_LEN];
	double t = secs_since(c);

	if (status != 0) {
		finish(c, status, "recv failed after %" PRIu64 " bytes: %s", c->got,
		       reason ? reason : cfl_strerror(status));
		return;
	}
	cfl_sha256_final(c->sha, md);
	expected_digest(c->act->n, want);
	if (c->got != c->act->n || memcmp(md, want, sizeof(md)) != 0) {
		finish(c, CFL_EVERIFY, "recv: got %" PRIu64 " bytes that differ from what was sent",
		       c->got);
		return;
	}
	printf("recv: %" PRIu64 " bytes intact in %.3f s, %.1f MB/s\n", c->got, t,
	       (double)c->got / 1e6 / t);
	finish(c, 0, "ok");
}

static void recv_reply(struct cfl_peer *p, int status, const char *reason,
                       const struct cfl_frame *f, int more, struct cfl_msg_sink *sink, void *arg)
{
	struct client *c = arg;

	(void)p;
	if (status != 0) {
		finish(c, status, "recv failed: %s", reason ? reason : cfl_strerror(status));
		return;
	}
	recv_data(c, f->body, f->body_len);
	if (more)
		*sink = (struct cfl_msg_sink){recv_data, recv_end, c};
	else
		recv_end(c, 0, NULL);
}

static void admin_done(int status, const char *reason, void *arg)
{
	struct client *c = arg;

	if (status > 0) /* more commands to read: the console goes on */
		return;
	if (status != 0)
		finish(c, status, "%s", reason ? reason : cfl_strerror(status));
	else
		finish(c, 0, "ok");
}

/* --- pingloop: requests that must each be answered or reported failed, across reconnects --- */

static void pingloop_maybe_done(struct client *c)
{
	if (cfl_loop_now_ms(c->loop) < c->t_end || c->outstanding > 0)
		return;
	printf("pingloop: sent %" PRIu64 ", ok %" PRIu64 ", failed %" PRIu64
	       ", not sent (offline) %" PRIu64 ", logins %u\n",
	       c->sent, c->ok, c->failed, c->offline, c->logins);
	finish(c, c->sent == c->ok + c->failed ? 0 : CFL_EVERIFY, "requests unaccounted for");
}

static void pingloop_reply(struct cfl_peer *p, int status, const char *reason,
                           const struct cfl_frame *f, int more, struct cfl_msg_sink *sink,
                           void *arg)
{
	struct client *c = arg;

	(void)p;
	(void)f;
	(void)more;
	(void)sink;
	c->outstanding--;
	if (status == 0) {
		c->ok++;
	} else {
		c->failed++;
		printf("pingloop: a request failed: %s\n", reason ? reason : cfl_strerror(status));
	}
	pingloop_maybe_done(c);
}

static void pingloop_tick(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct client *c = arg;

	(void)id;
	if (cfl_loop_now_ms(loop) >= c->t_end) {
		pingloop_maybe_done(c);
		return;
	}
	if (c->peer == NULL) {
		c->offline++;
	} else if (cfl_peer_request(c->peer, "ping", NULL, 0, "x", 1, 3000, pingloop_reply, c) ==
	           0) {
		c->sent++;
		c->outstanding++;
	} else {
		c->offline++;
	}
	cfl_loop_timer_add(loop, 200, pingloop_tick, c);
}

/* Requests routed to this site by the server (for tests and operators). */
static void on_echo(struct cfl_peer *p, const struct cfl_frame *f, int more,
                    struct cfl_msg_sink *sink, void *arg)
{
	char src[CFL_MSG_NAME_MAX];

	(void)arg;
	(void)sink;
	cfl_frame_header_str(f, "src", src, sizeof(src));
	CFL_INFO("echo request from %s (%zu bytes)", src, f->body_len);
	if (f->type == CFL_FRAME_T_REQUEST && !more)
		cfl_peer_reply(p, f->id, NULL, 0, f->body, f->body_len);
}

static void start_action(struct client *c)
{
	char len[24], seed[24];
	struct cfl_header h[2];
	int rc = 0;

	snprintf(len, sizeof(len), "%" PRIu64, c->act->n);
	snprintf(seed, sizeof(seed), "%u", TEST_SEED);
	h[0] = (struct cfl_header){"length", 6, (const uint8_t *)len, strlen(len)};
	h[1] = (struct cfl_header){"seed", 4, (const uint8_t *)seed, strlen(seed)};
	switch (c->act->kind) {
	case CFL_ACT_PINGLOOP:
		c->logins++;
		if (!c->loop_started) {
			c->loop_started = 1;
			c->t_end = cfl_loop_now_ms(c->loop) + c->act->n * 1000;
			cfl_loop_timer_add(c->loop, 0, pingloop_tick, c);
		}
		return;
	case CFL_ACT_PING:
		rc = cfl_peer_request(c->peer, "ping", NULL, 0, "x", 1, 0, ping_reply, c);
		break;
	case CFL_ACT_ONEWAY:
		/* A batch of one-way messages, then a request: its reply means all arrived. */
		for (int i = 0; i < ONEWAY_BATCH && c->done_count < c->act->n && rc == 0; i++) {
			rc = cfl_peer_send(c->peer, "ping", NULL, 0, "x", 1);
			c->done_count++;
		}
		if (rc == 0)
			rc = cfl_peer_request(c->peer, "ping", NULL, 0, "x", 1, 0, ping_reply, c);
		break;
	case CFL_ACT_MESSAGE: {
		/* With --to, the server routes the request to that cell (docs/protocol.md §4). */
		struct cfl_header dst = {"dst", 3, (const uint8_t *)c->act->to,
		                         c->act->to != NULL ? strlen(c->act->to) : 0};

		rc = cfl_peer_request(c->peer, "echo", &dst, c->act->to != NULL, c->act->text,
		                      strlen(c->act->text), 0, echo_reply, c);
		break;
	}
	case CFL_ACT_SEND:
		cfl__tstream_init(&c->ts, TEST_SEED, c->act->n);
		rc = cfl_peer_request_stream(c->peer, "sink", NULL, 0, c->act->n, send_read, c, 0,
		                             send_reply, c);
		break;
	case CFL_ACT_ADMIN: {
		char transfer[PATH_MAX];

		if (snprintf(transfer, sizeof(transfer), "%s/transfer", c->cfg.kit_dir) >=
		    (int)sizeof(transfer)) {
			finish(c, CFL_ETOOBIG, "kit path too long");
			return;
		}
		cfl__admin_next(c->peer, c->act->text, c->act->json, transfer, admin_done, c);
	}
		return;
	case CFL_ACT_RECV:
		rc = cfl_peer_request(c->peer, "source", h, 2, NULL, 0, 0, recv_reply, c);
		break;
	default:
		return;
	}
	if (rc != 0)
		finish(c, rc, "cannot send: %s", cfl_strerror(rc));
}

/* --- connection life cycle -------------------------------------------------------------------- */

static void dial(struct client *c);

static void on_retry(struct cfl_loop *loop, uint64_t id, void *arg)
{
	(void)loop;
	(void)id;
	dial(arg);
}

static void retry_later(struct client *c)
{
	/* Jitter (±25 %) keeps a fleet of sites from reconnecting in lockstep. */
	uint64_t jitter = c->backoff_ms / 4,
	         delay = c->backoff_ms - jitter + (jitter ? (uint64_t)rand() % (2 * jitter) : 0);

	CFL_INFO("reconnecting in %.1f s", (double)delay / 1e3);
	cfl_loop_timer_add(c->loop, delay, on_retry, c);
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void login_result(struct cfl_peer *p, int status, const char *reason, void *arg)
{
	struct client *c = arg;

	if (status != 0) {
		CFL_ERROR("login failed: %s", reason ? reason : cfl_strerror(status));
		if (!persistent(c))
			finish(c, status, "login failed: %s",
			       reason ? reason : cfl_strerror(status));
		else
			cfl_conn_close(cfl_peer_conn(p), "login failed");
		return;
	}
	c->peer = p;
	c->backoff_ms = BACKOFF_MIN_MS;
	CFL_INFO("logged in to %s:%d as '%s' (%s%s%s), token expires at %lld", c->cfg.host,
	         c->cfg.port, c->cfg.name, cfl_conn_sec_name(c->cfg.mode),
	         c->cfg.mode == CFL_SEC_CLEAR ? "" : ", ",
	         c->cfg.mode == CFL_SEC_CLEAR ? "" : cfl_conn_tls_version(cfl_peer_conn(p)),
	         (long long)cfl_auth_client_token_expiry(c->auth));
	c->t_start = cfl_loop_now_ms(c->loop);
	start_action(c);
}

static void peer_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct client *c = arg;
	int rc;

	(void)code;
	(void)reason;
	cfl_peer_set_name(p, "server");
	rc = cfl_auth_client_login(c->auth, p, login_result, c);
	if (rc != 0)
		cfl_conn_close(cfl_peer_conn(p), "cannot start the login");
}

static void peer_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct client *c = arg;

	(void)code;
	if (p != NULL) {
		cfl_auth_client_peer_down(c->auth, p);
		cfl_executor_peer_down(c->exec, p);
	}
	c->peer = NULL;
	if (c->finished || c->stopping) {
		cfl_loop_stop(c->loop);
		return;
	}
	if (!persistent(c)) {
		finish(c, CFL_ECONN, "cannot talk to the server at %s:%d (%s): %s", c->cfg.host,
		       c->cfg.port, cfl_conn_sec_name(c->cfg.mode), reason ? reason : "closed");
		return;
	}
	CFL_WARN("connection to %s:%d lost: %s", c->cfg.host, c->cfg.port,
	         reason ? reason : "closed");
	retry_later(c);
}

static void dial(struct client *c)
{
	struct cfl_conn_opts o = cfl_msg_hub_conn_opts(c->hub, c->tls);
	struct cfl_conn *conn;
	struct cfl_err e = {0};

	if (c->act->connect_timeout_s > 0)
		o.connect_timeout_ms = (uint64_t)c->act->connect_timeout_s * 1000;
	if (cfl_conn_dial(c->loop, c->cfg.host, c->cfg.port, &o, &conn, &e) == 0)
		return;
	if (!persistent(c)) {
		finish(c, e.code, "%s", e.msg);
		return;
	}
	CFL_WARN("%s", e.msg);
	retry_later(c);
}

static void on_signal(struct cfl_loop *loop, int signo, void *arg)
{
	struct client *c = arg;

	(void)signo;
	if (c->stopping)
		return;
	c->stopping = 1;
	CFL_INFO("shutting down");
	if (c->peer != NULL)
		cfl_conn_close(cfl_peer_conn(c->peer), "client shutting down");
	else
		cfl_loop_stop(loop);
}

/* An admin's `shutdown client`: the same as SIGTERM. */
static void on_shutdown_request(void *arg)
{
	struct client *c = arg;

	on_signal(c->loop, SIGTERM, c);
}

/* `--server`: another address than the kit's (tests and the simulator give the port the
 * server picked). `:PORT` keeps the kit's host, so the certificate check stays the kit's. */
static int override_server(struct client *c, struct cfl_err *e)
{
	const char *h = c->act->server_host;

	if (h != NULL && h[0] != '\0' &&
	    snprintf(c->cfg.host, sizeof(c->cfg.host), "%s", h) >= (int)sizeof(c->cfg.host))
		return cfl_err_set(e, CFL_EINVAL, "server host too long: '%s'", h);
	if (c->act->server_port > 0)
		c->cfg.port = c->act->server_port;
	return 0;
}

static int setup(struct client *c, const char *kit_dir, struct cfl_err *e)
{
	int rc;

	int admin = c->act->kind == CFL_ACT_ADMIN;

	if ((rc = cfl_kitcfg_load(kit_dir, admin ? 2 : 0, &c->cfg, e)) != 0 ||
	    (rc = cfl_kitcfg_verify_kit(&c->cfg, e)) != 0 || (rc = override_server(c, e)) != 0 ||
	    (rc = cfl_loop_new(&c->loop, e)) != 0 ||
	    (rc = cfl_loop_on_signal(c->loop, on_signal, c, e)) != 0 ||
	    (rc = cfl_msg_hub_new(c->loop, c->cfg.name, &c->hub, e)) != 0)
		return rc;
	if (c->cfg.mode != CFL_SEC_CLEAR) {
		/* tls: no client certificate; the server is checked against customRootCA.pem when
		 * the kit has one (a proxy's CA), else rootCA.pem (SPEC §4). */
		struct cfl_tls_config tc = {
		        .is_server = 0,
		        .mode = c->cfg.mode,
		        .cert_file = c->cfg.mode == CFL_SEC_MTLS ? c->cfg.cert : NULL,
		        .key_file = c->cfg.mode == CFL_SEC_MTLS ? c->cfg.key : NULL,
		        .ca_file = cfl_kitcfg_trust_file(&c->cfg)};

		if ((rc = cfl_tls_ctx_new(&tc, &c->tls, e)) != 0)
			return rc;
	}
	{
		struct cfl_auth_client_cfg ac = {.name = c->cfg.name,
		                                 .project = c->cfg.project,
		                                 .server_cn = c->cfg.identity,
		                                 .cert_file = c->cfg.cert,
		                                 .key_file = c->cfg.key,
		                                 .root_ca = c->cfg.root_ca,
		                                 .kind = admin ? CFL_AUTH_ADMIN : CFL_AUTH_CLIENT,
		                                 .mode = c->cfg.mode};

		cfl_auth_times_default(&ac.times);
		if ((rc = cfl_auth_client_new(c->hub, &ac, &c->auth, e)) != 0)
			return rc;
	}
	c->sha = cfl_sha256_new();
	if (c->sha == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	cfl_msg_hub_on_peer(c->hub, peer_up, peer_down, c);
	cfl_msg_hub_handle(c->hub, "echo", on_echo, c);
	if (!admin) {
		char dir[PATH_MAX];

		if (snprintf(dir, sizeof(dir), "%s/jobs", c->cfg.kit_dir) >= (int)sizeof(dir))
			return cfl_err_set(e, CFL_ETOOBIG, "kit path too long");
		if ((rc = cfl_executor_new(c->hub, dir, c->cfg.name, on_shutdown_request, c,
		                           &c->exec, e)) != 0)
			return rc;
	}
	c->backoff_ms = BACKOFF_MIN_MS;
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	return 0;
}

int cfl_client_run(const char *kit_dir, const struct cfl_client_action *act, struct cfl_err *e)
{
	struct client c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.act = act;
	rc = setup(&c, kit_dir, e);
	if (rc == 0) {
		CFL_INFO("client '%s' dialing %s:%d (%s)", c.cfg.name, c.cfg.host, c.cfg.port,
		         cfl_conn_sec_name(c.cfg.mode));
		dial(&c);
		if (!c.finished || c.peer != NULL)
			rc = cfl_loop_run(c.loop);
		if (c.result != 0) {
			rc = c.result;
			if (e != NULL)
				*e = c.err;
		}
	}
	if (act->stats) {
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		printf("peak_rss_kib=%ld\n", ru.ru_maxrss);
	}
	cfl_msg_hub_free(c.hub);
	cfl_executor_free(c.exec);
	cfl_auth_client_free(c.auth);
	cfl_tls_ctx_free(c.tls);
	cfl_sha256_free(c.sha);
	cfl_loop_free(c.loop);
	return rc;
}
