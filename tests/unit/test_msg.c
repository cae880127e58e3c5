/* Unit tests for the message hub's requests (src/msg/hub.c): two hubs on one loop, joined by a
 * clear loopback connection; requests with no body, a body in memory and a streamed body
 * larger than a chunk, their timeouts, and the descriptors cfl_peer_request_stream() refuses.
 * Every wait has a deadline. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cfl/conn.h"
#include "cfl/loop.h"
#include "cfl/msg.h"
#include "cfl/proto.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 5000
#define BIG     (3 * CFL_FRAME_CHUNK + 17) /* streams in four chunks */

struct side {
	struct cfl_msg_hub *hub;
	struct cfl_peer *peer; /* the one connection's, NULL once it is down */
	int up;
};

struct fx {
	struct cfl_loop *loop;
	struct cfl_listener *l;
	struct side srv, cli;
};

/* What a reply function saw. */
struct outcome {
	int calls, status;
	char body[64], hdr[32];
};

/* The server's sink topic: counts the body and checks its bytes are the test pattern. */
struct count {
	struct cfl_peer *peer;
	uint64_t req_id, n;
	int bad;
};

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 7 + 3);
}

static int wait_for(struct fx *x, const int *flag, int want)
{
	uint64_t end = cfl_loop_now_ms(x->loop) + WAIT_MS;

	while (*flag < want && cfl_loop_now_ms(x->loop) < end)
		assert_true(cfl_loop_run_once(x->loop, 20) >= 0);
	return *flag >= want;
}

static void on_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct side *s = arg;

	(void)code, (void)reason;
	s->peer = p;
	s->up++;
	/* As after a login: streams are allowed only above the pre-login frame limit. */
	assert_int_equal(cfl_conn_set_max_payload(cfl_peer_conn(p), CFL_FRAME_MAX_PAYLOAD), 0);
}

static void on_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct side *s = arg;

	(void)code, (void)reason;
	if (p != NULL && p == s->peer)
		s->peer = NULL;
}

static void on_echo(struct cfl_peer *p, const struct cfl_frame *f, int more,
                    struct cfl_msg_sink *sink, void *arg)
{
	char v[32];
	struct cfl_header h;

	(void)more, (void)sink, (void)arg;
	cfl_frame_header_str(f, "k", v, sizeof(v));
	h = CFL_HDR("k", v);
	cfl_peer_reply(p, f->id, &h, 1, f->body, f->body_len);
}

static void count_data(void *st, const uint8_t *d, size_t n)
{
	struct count *c = st;

	for (size_t i = 0; i < n; i++)
		c->bad |= d[i] != pattern(c->n + i);
	c->n += n;
}

static void count_end(void *st, int status, const char *reason)
{
	struct count *c = st;
	char len[24];
	struct cfl_header h;

	(void)reason;
	snprintf(len, sizeof(len), "%" PRIu64, c->n);
	h = CFL_HDR(CFL_KEY_LENGTH, len);
	if (status == 0 && !c->bad)
		cfl_peer_reply(c->peer, c->req_id, &h, 1, NULL, 0);
	else
		cfl_peer_reply_error(c->peer, c->req_id, "bad_body", "not the pattern");
	free(c);
}

static void on_count(struct cfl_peer *p, const struct cfl_frame *f, int more,
                     struct cfl_msg_sink *sink, void *arg)
{
	struct count *c = calloc(1, sizeof(*c));

	(void)arg;
	assert_non_null(c);
	c->peer = p;
	c->req_id = f->id;
	count_data(c, f->body, f->body_len);
	if (more)
		*sink = (struct cfl_msg_sink){count_data, count_end, c};
	else
		count_end(c, 0, NULL);
}

/* Answers a streamed request on its first frame, without reading the rest. */
static void on_early(struct cfl_peer *p, const struct cfl_frame *f, int more,
                     struct cfl_msg_sink *sink, void *arg)
{
	(void)more, (void)sink, (void)arg;
	cfl_peer_reply_error(p, f->id, "no_job", "not wanted");
}

static void on_silent(struct cfl_peer *p, const struct cfl_frame *f, int more,
                      struct cfl_msg_sink *sink, void *arg)
{
	(void)p, (void)f, (void)more, (void)sink, (void)arg;
}

static void got_reply(struct cfl_peer *p, int status, const char *reason, const struct cfl_frame *f,
                      int more, struct cfl_msg_sink *sink, void *arg)
{
	struct outcome *o = arg;
	size_t n;

	(void)p, (void)reason, (void)more, (void)sink;
	o->calls++;
	o->status = status;
	if (f == NULL || status != 0)
		return;
	n = f->body_len < sizeof(o->body) - 1 ? f->body_len : sizeof(o->body) - 1;
	memcpy(o->body, f->body, n);
	o->body[n] = '\0';
	if (cfl_frame_header_str(f, "k", o->hdr, sizeof(o->hdr)) != 0)
		cfl_frame_header_str(f, CFL_KEY_LENGTH, o->hdr, sizeof(o->hdr));
}

/* The streamed body: BIG bytes of the pattern. */
static int read_pattern(void *src, uint8_t *buf, size_t len)
{
	uint64_t *off = src;

	for (size_t i = 0; i < len; i++)
		buf[i] = pattern(*off + i);
	*off += len;
	return (int)len;
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	struct cfl_conn_opts o;
	struct cfl_conn *c;
	struct cfl_err e = {0};

	assert_non_null(x);
	assert_int_equal(cfl_loop_new(&x->loop, &e), 0);
	assert_int_equal(cfl_msg_hub_new(x->loop, "server", &x->srv.hub, &e), 0);
	assert_int_equal(cfl_msg_hub_new(x->loop, "site-1", &x->cli.hub, &e), 0);
	cfl_msg_hub_on_peer(x->srv.hub, on_up, on_down, &x->srv);
	cfl_msg_hub_on_peer(x->cli.hub, on_up, on_down, &x->cli);
	assert_int_equal(cfl_msg_hub_handle(x->srv.hub, "t.echo", on_echo, NULL), 0);
	assert_int_equal(cfl_msg_hub_handle(x->srv.hub, "t.count", on_count, NULL), 0);
	assert_int_equal(cfl_msg_hub_handle(x->srv.hub, "t.silent", on_silent, NULL), 0);
	assert_int_equal(cfl_msg_hub_handle(x->srv.hub, "t.early", on_early, NULL), 0);
	o = cfl_msg_hub_conn_opts(x->srv.hub, NULL);
	assert_int_equal(cfl_listener_new(x->loop, "127.0.0.1", 0, &o, &x->l, &e), 0);
	o = cfl_msg_hub_conn_opts(x->cli.hub, NULL);
	assert_int_equal(cfl_conn_dial(x->loop, "127.0.0.1", cfl_listener_port(x->l), &o, &c, &e),
	                 0);
	assert_true(wait_for(x, &x->cli.up, 1));
	assert_true(wait_for(x, &x->srv.up, 1));
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	uint64_t end = cfl_loop_now_ms(x->loop) + WAIT_MS;

	cfl_msg_hub_close_all(x->cli.hub, "done");
	while ((x->cli.peer != NULL || x->srv.peer != NULL) && cfl_loop_now_ms(x->loop) < end)
		cfl_loop_run_once(x->loop, 20);
	cfl_msg_hub_free(x->cli.hub);
	cfl_msg_hub_free(x->srv.hub);
	cfl_listener_free(x->l);
	(void)cfl_loop_run_once(x->loop, 0);
	cfl_loop_free(x->loop);
	free(x);
	return 0;
}

static void test_request_in_memory(void **state)
{
	struct fx *x = *state;
	struct outcome a = {0}, b = {0};
	const struct cfl_header h = CFL_HDR("k", "v1");

	/* The positional form and the descriptor it wraps. */
	assert_int_equal(
	        cfl_peer_request(x->cli.peer, "t.echo", &h, 1, "hello", 5, 0, got_reply, &a), 0);
	assert_int_equal(
	        cfl_peer_request_stream(x->cli.peer, &(struct cfl_request){.topic = "t.echo",
	                                                                   .body = "bye",
	                                                                   .body_len = 3,
	                                                                   .reply = got_reply,
	                                                                   .arg = &b}),
	        0);
	assert_int_equal(a.calls, 0); /* never inside the call */
	assert_true(wait_for(x, &a.calls, 1));
	assert_true(wait_for(x, &b.calls, 1));
	assert_int_equal(a.status, 0);
	assert_string_equal(a.body, "hello");
	assert_string_equal(a.hdr, "v1");
	assert_int_equal(b.status, 0);
	assert_string_equal(b.body, "bye");
	assert_string_equal(b.hdr, "");
}

static void test_request_streamed(void **state)
{
	struct fx *x = *state;
	struct outcome a = {0}, b = {0};
	uint64_t off = 0, off0 = 0;
	char want[24];
	struct cfl_request r = {.topic = "t.count",
	                        .body_len = BIG,
	                        .read = read_pattern,
	                        .src = &off,
	                        .reply = got_reply,
	                        .arg = &a};

	assert_int_equal(cfl_peer_request_stream(x->cli.peer, &r), 0);
	assert_true(wait_for(x, &a.calls, 1));
	assert_int_equal(a.status, 0);
	snprintf(want, sizeof(want), "%d", BIG);
	assert_string_equal(a.hdr, want);
	assert_int_equal(off, BIG);
	/* A read function with no body: one frame, nothing read. */
	r.body_len = 0;
	r.src = &off0;
	r.arg = &b;
	assert_int_equal(cfl_peer_request_stream(x->cli.peer, &r), 0);
	assert_true(wait_for(x, &b.calls, 1));
	assert_int_equal(b.status, 0);
	assert_string_equal(b.hdr, "0");
	assert_int_equal(off0, 0);
	/* Both came back exactly once. */
	(void)cfl_loop_run_once(x->loop, 50);
	assert_int_equal(a.calls + b.calls, 2);
}

/* The source of a body that must not be read once its request has been answered. */
struct guarded {
	uint64_t off;
	int answered, reads_after;
};

static int read_guarded(void *src, uint8_t *buf, size_t len)
{
	struct guarded *g = src;

	g->reads_after += g->answered;
	return read_pattern(&g->off, buf, len);
}

static void guarded_reply(struct cfl_peer *p, int status, const char *reason,
                          const struct cfl_frame *f, int more, struct cfl_msg_sink *sink, void *arg)
{
	struct guarded *g = arg;

	(void)p, (void)reason, (void)f, (void)more, (void)sink;
	g->answered = status == 0 ? -1 : 1; /* the caller would release its source now */
}

/* A reply that comes before the body has gone out stops the body: the source is never read
 * after the reply function ran (it may have freed it). */
static void test_request_answered_early(void **state)
{
	struct fx *x = *state;
	struct guarded g = {0};
	struct outcome after = {0};
	struct cfl_request r = {.topic = "t.early",
	                        .body_len = (uint64_t)64 << 20,
	                        .read = read_guarded,
	                        .src = &g,
	                        .reply = guarded_reply,
	                        .arg = &g};

	assert_int_equal(cfl_peer_request_stream(x->cli.peer, &r), 0);
	assert_true(wait_for(x, &g.answered, 1));
	/* Give a stream that was not stopped time to ask for more, then check the link works. */
	for (int i = 0; i < 10; i++)
		(void)cfl_loop_run_once(x->loop, 10);
	assert_int_equal(g.reads_after, 0);
	assert_true(g.off < ((uint64_t)64 << 20));
	assert_int_equal(
	        cfl_peer_request(x->cli.peer, "t.echo", NULL, 0, "ok", 2, 0, got_reply, &after), 0);
	assert_true(wait_for(x, &after.calls, 1));
	assert_int_equal(after.status, 0);
}

static void test_request_times_out(void **state)
{
	struct fx *x = *state;
	struct outcome a = {0}, b = {0};
	uint64_t off = 0, t0 = cfl_loop_now_ms(x->loop);

	assert_int_equal(
	        cfl_peer_request(x->cli.peer, "t.silent", NULL, 0, NULL, 0, 100, got_reply, &a), 0);
	assert_int_equal(
	        cfl_peer_request_stream(x->cli.peer, &(struct cfl_request){.topic = "t.silent",
	                                                                   .body_len = BIG,
	                                                                   .read = read_pattern,
	                                                                   .src = &off,
	                                                                   .timeout_ms = 100,
	                                                                   .reply = got_reply,
	                                                                   .arg = &b}),
	        0);
	assert_true(wait_for(x, &a.calls, 1));
	assert_true(wait_for(x, &b.calls, 1));
	assert_int_equal(a.status, CFL_ETIMEDOUT);
	assert_int_equal(b.status, CFL_ETIMEDOUT);
	assert_int_equal(off, BIG); /* the timeout counted from the end of the body */
	assert_true(cfl_loop_now_ms(x->loop) - t0 >= 100);
}

static void test_request_refuses_bad_descriptors(void **state)
{
	struct fx *x = *state;
	struct outcome a = {0};
	uint64_t off = 0;
	const struct cfl_request bad[] = {
	        {.reply = got_reply, .arg = &a}, /* no topic */
	        {.topic = "t.echo"},             /* no reply */
	        {.topic = "t.echo",
	         .body = "x",
	         .body_len = 1,
	         .read = read_pattern,
	         .src = &off,
	         .reply = got_reply,
	         .arg = &a},                                                       /* two bodies */
	        {.topic = "t.echo", .body_len = 1, .reply = got_reply, .arg = &a}, /* no body */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cfl_peer_request_stream(x->cli.peer, &bad[i]), CFL_EINVAL);
	assert_int_equal(
	        cfl_peer_request(x->cli.peer, "t.echo", NULL, 0, NULL, 4, 0, got_reply, &a),
	        CFL_EINVAL);
	(void)cfl_loop_run_once(x->loop, 50);
	assert_int_equal(a.calls, 0);
	assert_int_equal(off, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_request_in_memory, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_request_streamed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_request_answered_early, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_request_times_out, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_request_refuses_bad_descriptors, setup,
	                                        teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
