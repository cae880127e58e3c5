/* The client side of the diagnostics: ping, oneway, send, recv, message and pingloop over a
 * logged-in peer, each ending with one summary line. States: READY → RUNNING → DONE (pingloop:
 * RUNNING across reconnects until its deadline, then DONE once every request is accounted for). */
#include "cfl/diag.h"

#include "cfl/digest.h"
#include "cfl/log.h"
#include "cfl/proto.h"
#include "teststream.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ONEWAY_BATCH 1000
#define TEST_SEED    20261126u
#define PINGLOOP_MS  200

struct cfl_diag {
	struct cfl_loop *loop;
	struct cfl_diag_action act;
	cfl_diag_done_fn done;
	void *arg;
	struct cfl_peer *peer; /* NULL while offline */
	uint64_t t_start;
	uint64_t count; /* ping / oneway progress */
	int finished;
	/* pingloop */
	uint64_t timer, t_end, sent, ok, failed, offline, outstanding;
	unsigned logins;
	/* send / recv */
	struct cfl__tstream ts;
	struct cfl_sha256 *sha;
	uint64_t got;
};

static void finish(struct cfl_diag *d, int rc, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void finish(struct cfl_diag *d, int rc, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (d->finished)
		return;
	d->finished = 1;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	d->done(rc, line, d->arg);
}

static double secs(const struct cfl_diag *d)
{
	double s = (double)(cfl_loop_now_ms(d->loop) - d->t_start) / 1e3;

	return s > 0 ? s : 1e-3;
}

static const char *why(int status, const char *reason)
{
	return reason != NULL ? reason : cfl_strerror(status);
}

static int ping(struct cfl_diag *d, uint64_t timeout_ms, cfl_msg_reply_fn fn)
{
	return cfl_peer_request(d->peer, CFL_TOPIC_PING, NULL, 0, "x", 1, timeout_ms, fn, d);
}

/* --- ping and oneway ------------------------------------------------------------------------ */

static void send_oneways(struct cfl_diag *d);

static void ping_reply(struct cfl_peer *p, int status, const char *reason,
                       const struct cfl_frame *f, int more, struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_diag *d = arg;
	int rc;

	(void)p, (void)f, (void)more, (void)sink;
	if (status != 0) {
		finish(d, status, "ping failed: %s", why(status, reason));
	} else if (d->act.kind == CFL_DIAG_ONEWAY) {
		if (d->count < d->act.n)
			send_oneways(d);
		else
			finish(d, 0, "oneway: %" PRIu64 " messages in %.3f s (%.0f/s)", d->act.n,
			       secs(d), (double)d->act.n / secs(d));
	} else if (++d->count < d->act.n) {
		if ((rc = ping(d, 0, ping_reply)) != 0)
			finish(d, rc, "ping failed: %s", cfl_strerror(rc));
	} else {
		finish(d, 0, "ping: %" PRIu64 " round trips in %.3f s (%.0f/s)", d->act.n, secs(d),
		       (double)d->act.n / secs(d));
	}
}

/* A batch of one-way messages, then a request: its reply means all of them arrived. */
static void send_oneways(struct cfl_diag *d)
{
	int rc = 0;

	for (int i = 0; i < ONEWAY_BATCH && d->count < d->act.n && rc == 0; i++) {
		rc = cfl_peer_send(d->peer, CFL_TOPIC_PING, NULL, 0, "x", 1);
		d->count++;
	}
	if (rc == 0)
		rc = ping(d, 0, ping_reply);
	if (rc != 0)
		finish(d, rc, "cannot send: %s", cfl_strerror(rc));
}

/* --- message ---------------------------------------------------------------------------------- */

static void echo_reply(struct cfl_peer *p, int status, const char *reason,
                       const struct cfl_frame *f, int more, struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_diag *d = arg;
	size_t n = strlen(d->act.text);

	(void)p, (void)more, (void)sink;
	if (status != 0)
		finish(d, status, "echo failed: %s", why(status, reason));
	else if (f->body_len != n || memcmp(f->body, d->act.text, n) != 0)
		finish(d, CFL_EVERIFY, "echo came back different");
	else
		finish(d, 0, "message: echoed %zu bytes in %.3f s", n, secs(d));
}

static int send_message(struct cfl_diag *d)
{
	/* With `to`, the server routes the request to that cell (docs/protocol.md §4). */
	const char *to = d->act.to;
	struct cfl_header dst = CFL_HDR_BYTES(CFL_KEY_DST, to, to != NULL ? strlen(to) : 0);

	return cfl_peer_request(d->peer, CFL_TOPIC_ECHO, &dst, to != NULL, d->act.text,
	                        strlen(d->act.text), 0, echo_reply, d);
}

/* --- send: upload the test stream, compare the server's length and digest --------------------- */

static int send_read(void *src, uint8_t *buf, size_t len)
{
	struct cfl_diag *d = src;
	size_t n = cfl__tstream_fill(&d->ts, buf, len);

	cfl_sha256_update(d->sha, buf, n);
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
	struct cfl_diag *d = arg;
	uint8_t md[CFL_SHA256_LEN];
	char hex[2 * CFL_SHA256_LEN + 1], len[24];

	(void)p, (void)more, (void)sink;
	if (status != 0) {
		finish(d, status, "send failed: %s", why(status, reason));
		return;
	}
	cfl_sha256_final(d->sha, md);
	cfl_hex(md, sizeof(md), hex);
	snprintf(len, sizeof(len), "%" PRIu64, d->act.n);
	if (!header_is(f, CFL_KEY_LENGTH, len) || !header_is(f, CFL_KEY_SHA256, hex))
		finish(d, CFL_EVERIFY, "send: the server received different bytes");
	else
		finish(d, 0,
		       "send: %" PRIu64 " bytes intact (sha256 %.16s...) in %.3f s, %.1f MB/s",
		       d->act.n, hex, secs(d), (double)d->act.n / 1e6 / secs(d));
}

/* --- recv: download the test stream, check it against the regenerated digest ------------------ */

static void recv_data(void *st, const uint8_t *b, size_t n)
{
	struct cfl_diag *d = st;

	cfl_sha256_update(d->sha, b, n);
	d->got += n;
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
	struct cfl_diag *d = st;
	uint8_t md[CFL_SHA256_LEN], want[CFL_SHA256_LEN];

	if (status != 0) {
		finish(d, status, "recv failed after %" PRIu64 " bytes: %s", d->got,
		       why(status, reason));
		return;
	}
	cfl_sha256_final(d->sha, md);
	expected_digest(d->act.n, want);
	if (d->got != d->act.n || memcmp(md, want, sizeof(md)) != 0)
		finish(d, CFL_EVERIFY, "recv: got %" PRIu64 " bytes that differ from what was sent",
		       d->got);
	else
		finish(d, 0, "recv: %" PRIu64 " bytes intact in %.3f s, %.1f MB/s", d->got, secs(d),
		       (double)d->got / 1e6 / secs(d));
}

static void recv_reply(struct cfl_peer *p, int status, const char *reason,
                       const struct cfl_frame *f, int more, struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_diag *d = arg;

	(void)p;
	if (status != 0) {
		finish(d, status, "recv failed: %s", why(status, reason));
		return;
	}
	recv_data(d, f->body, f->body_len);
	if (more)
		*sink = (struct cfl_msg_sink){recv_data, recv_end, d};
	else
		recv_end(d, 0, NULL);
}

static int start_recv(struct cfl_diag *d)
{
	char len[24], seed[24];
	struct cfl_header h[2];

	snprintf(len, sizeof(len), "%" PRIu64, d->act.n);
	snprintf(seed, sizeof(seed), "%u", TEST_SEED);
	h[0] = CFL_HDR(CFL_KEY_LENGTH, len);
	h[1] = CFL_HDR(CFL_KEY_SEED, seed);
	return cfl_peer_request(d->peer, CFL_TOPIC_SOURCE, h, 2, NULL, 0, 0, recv_reply, d);
}

/* --- pingloop: requests that must each be answered or reported failed, across reconnects ------ */

static void pingloop_maybe_done(struct cfl_diag *d)
{
	if (cfl_loop_now_ms(d->loop) < d->t_end || d->outstanding > 0)
		return;
	finish(d, d->sent == d->ok + d->failed ? 0 : CFL_EVERIFY,
	       "pingloop: sent %" PRIu64 ", ok %" PRIu64 ", failed %" PRIu64
	       ", not sent (offline) %" PRIu64 ", logins %u",
	       d->sent, d->ok, d->failed, d->offline, d->logins);
}

static void pingloop_reply(struct cfl_peer *p, int status, const char *reason,
                           const struct cfl_frame *f, int more, struct cfl_msg_sink *sink,
                           void *arg)
{
	struct cfl_diag *d = arg;

	(void)p, (void)f, (void)more, (void)sink;
	assert(d->outstanding > 0);
	d->outstanding--;
	if (status == 0) {
		d->ok++;
	} else {
		d->failed++;
		CFL_WARN("pingloop: a request failed: %s", why(status, reason));
	}
	pingloop_maybe_done(d);
}

static void pingloop_tick(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct cfl_diag *d = arg;

	(void)id;
	d->timer = 0;
	if (cfl_loop_now_ms(loop) >= d->t_end) {
		pingloop_maybe_done(d);
		return;
	}
	if (d->peer != NULL && ping(d, 3000, pingloop_reply) == 0) {
		d->sent++;
		d->outstanding++;
	} else {
		d->offline++;
	}
	d->timer = cfl_loop_timer_add(loop, PINGLOOP_MS, pingloop_tick, d);
}

/* --- the action ------------------------------------------------------------------------------- */

int cfl_diag_new(struct cfl_loop *loop, const struct cfl_diag_action *act, cfl_diag_done_fn done,
                 void *arg, struct cfl_diag **out)
{
	struct cfl_diag *d;

	if (act->kind < CFL_DIAG_PING || act->kind > CFL_DIAG_PINGLOOP ||
	    (act->kind == CFL_DIAG_MESSAGE && act->text == NULL))
		return CFL_EINVAL;
	d = calloc(1, sizeof(*d));
	if (d == NULL || (d->sha = cfl_sha256_new()) == NULL) {
		free(d);
		return CFL_ENOMEM;
	}
	d->loop = loop;
	d->act = *act;
	d->done = done;
	d->arg = arg;
	*out = d;
	return 0;
}

void cfl_diag_start(struct cfl_diag *d, struct cfl_peer *p)
{
	int rc = 0;

	d->peer = p;
	if (d->finished)
		return;
	if (d->act.kind == CFL_DIAG_PINGLOOP) {
		if (d->logins++ == 0) {
			d->t_end = cfl_loop_now_ms(d->loop) + d->act.n * 1000;
			d->timer = cfl_loop_timer_add(d->loop, 0, pingloop_tick, d);
		}
		return;
	}
	d->t_start = cfl_loop_now_ms(d->loop);
	switch (d->act.kind) {
	case CFL_DIAG_PING:
		rc = ping(d, 0, ping_reply);
		break;
	case CFL_DIAG_ONEWAY:
		send_oneways(d);
		return;
	case CFL_DIAG_MESSAGE:
		rc = send_message(d);
		break;
	case CFL_DIAG_SEND:
		cfl__tstream_init(&d->ts, TEST_SEED, d->act.n);
		rc = cfl_peer_request_stream(d->peer, &(struct cfl_request){.topic = CFL_TOPIC_SINK,
		                                                            .body_len = d->act.n,
		                                                            .read = send_read,
		                                                            .src = d,
		                                                            .reply = send_reply,
		                                                            .arg = d});
		break;
	case CFL_DIAG_RECV:
		rc = start_recv(d);
		break;
	case CFL_DIAG_PINGLOOP:
	default:
		return;
	}
	if (rc != 0)
		finish(d, rc, "cannot send: %s", cfl_strerror(rc));
}

void cfl_diag_peer_down(struct cfl_diag *d)
{
	d->peer = NULL;
}

int cfl_diag_persistent(const struct cfl_diag *d)
{
	return d->act.kind == CFL_DIAG_PINGLOOP;
}

void cfl_diag_free(struct cfl_diag *d)
{
	if (d == NULL)
		return;
	if (d->timer != 0)
		cfl_loop_timer_cancel(d->loop, d->timer);
	cfl_sha256_free(d->sha);
	free(d);
}

/* A message routed to this site by the server (for tests and operators): answered in kind. */
static void on_site_echo(struct cfl_peer *p, const struct cfl_frame *f, int more,
                         struct cfl_msg_sink *sink, void *arg)
{
	char src[CFL_MSG_NAME_MAX];

	(void)arg, (void)sink;
	cfl_frame_header_str(f, CFL_KEY_SRC, src, sizeof(src));
	CFL_INFO("echo request from %s (%zu bytes)", src, f->body_len);
	if (f->type == CFL_FRAME_T_REQUEST && !more)
		cfl_peer_reply(p, f->id, NULL, 0, f->body, f->body_len);
}

int cfl_diag_serve_echo(struct cfl_msg_hub *hub, struct cfl_err *e)
{
	int rc = cfl_msg_hub_handle(hub, CFL_TOPIC_ECHO, on_site_echo, NULL);

	return rc == 0 ? 0 : cfl_err_set(e, rc, "cannot serve 'echo': %s", cfl_strerror(rc));
}
