/* Lent streams (cfl_conn_send_lent: bodies written from the application's memory) and the
 * write coalescing of frames queued inside a callback. Two processes' worth of loopback
 * connections in one process, each with its own loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "conn_fixture.h"
#include "net/conn_int.h"

#define PIECE ((size_t)300 * 1024) /* the most a lend call hands out: memory in pieces */

struct src {
	int done, status, lends;
	uint64_t fail_at; /* lend fails from this offset on (0: never) */
};

struct rx {
	uint64_t off;
	int last, bad;
};

static struct {
	struct world *w[2];
	struct src src[2];
	struct rx rx[2];
	size_t queued_in_cb; /* the server's queue right after its callback sent a burst */
} X;

/* Lends the pattern itself: every connection reads the same memory. */
static int src_lend(void *arg, uint64_t off, size_t len, const uint8_t **p)
{
	struct src *s = arg;
	size_t pos = (size_t)(off % PERIOD), n = len;

	if (s->fail_at != 0 && off >= s->fail_at)
		return CFL_EIO;
	if (n > PERIOD - pos)
		n = PERIOD - pos;
	if (n > PIECE)
		n = PIECE;
	s->lends++;
	*p = pattern + pos;
	return (int)n;
}

static void src_done(struct cfl_conn *c, uint64_t id, int status, void *arg)
{
	struct src *s = arg;

	(void)c;
	(void)id;
	s->done++;
	s->status = status;
}

static struct rx *rx_of(const struct peer *p)
{
	return &X.rx[p->w == X.w[1]];
}

static void rx_msg(struct peer *p, const struct cfl_frame *f, int more)
{
	struct rx *r = rx_of(p);

	if (!same_as_pattern(f->body, r->off, f->body_len))
		r->bad++;
	r->off += f->body_len;
	r->last = !more;
}

static void rx_chunk(struct peer *p, uint64_t id, const uint8_t *d, size_t n, int last)
{
	struct rx *r = rx_of(p);

	(void)id;
	if (!same_as_pattern(d, r->off, n))
		r->bad++;
	r->off += n;
	r->last = last;
}

/* A connection whose two sides count as logged in (streams allowed). */
static void lent_pair(struct world *w, struct cfl_tls_ctx *s, struct cfl_tls_ctx *c)
{
	world_init(w);
	w->srv.max_payload_on_open = 1;
	w->cli.max_payload_on_open = 1;
	w->srv.on_msg = rx_msg;
	w->srv.on_chunk = rx_chunk;
	world_listen(w, s);
	world_dial(w, "127.0.0.1", c);
	world_open(w);
}

/* Runs both loops until every source is done and every receiver saw its end. */
static int pump_both(struct world *w, uint64_t ms)
{
	uint64_t end = cfl_loop_now_ms(w[0].loop) + ms;

	while (!(X.src[0].done && X.src[1].done && (X.rx[0].last || X.src[0].status != 0) &&
	         (X.rx[1].last || X.src[1].status != 0))) {
		if (cfl_loop_now_ms(w[0].loop) > end)
			return 0;
		(void)cfl_loop_run_once(w[0].loop, 1);
		(void)cfl_loop_run_once(w[1].loop, 1);
	}
	return 1;
}

/* The same memory goes out on two connections (one clear, one mTLS) at once, each at its own
 * pace, in pieces that do not line up with the chunks; both bodies arrive intact. */
static void test_lent_shared(void **state)
{
	const uint64_t total = 24 * MIB + 12345;
	struct cfl_frame h = text_frame(CFL_FRAME_T_ONEWAY, "model", NULL);
	struct world w[2];

	(void)state;
	memset(&X, 0, sizeof(X));
	X.w[0] = &w[0];
	X.w[1] = &w[1];
	lent_pair(&w[0], NULL, NULL);
	lent_pair(&w[1], tls_ctx(1, CFL_SEC_MTLS, "server", "ca"),
	          tls_ctx(0, CFL_SEC_MTLS, "site", "ca"));
	for (int i = 0; i < 2; i++)
		assert_int_equal(
		        cfl_conn_send_lent(w[i].cli.c, &h, total, src_lend, &X.src[i], src_done),
		        0);
	assert_int_equal(X.src[0].lends + X.src[1].lends, 0); /* nothing lent inside the call */
	assert_true(pump_both(w, 60000));
	for (int i = 0; i < 2; i++) {
		assert_int_equal(X.src[i].status, 0);
		assert_int_equal(X.src[i].done, 1);
		assert_int_equal(X.rx[i].off, total);
		assert_int_equal(X.rx[i].bad, 0);
		/* Pieces of at most 300 KiB: several lend calls per 1 MiB chunk. */
		assert_true(X.src[i].lends > (int)(total / CFL_FRAME_CHUNK));
	}
	world_stop(&w[0]);
	world_stop(&w[1]);
}

/* A body of one frame is copied at once; a lend error abandons the stream and tells the peer,
 * and the connection carries on. */
static void test_lent_single_and_error(void **state)
{
	struct cfl_frame h = text_frame(CFL_FRAME_T_ONEWAY, "model", NULL);
	struct world w[2];

	(void)state;
	memset(&X, 0, sizeof(X));
	X.w[0] = &w[0];
	X.w[1] = &w[1];
	lent_pair(&w[0], NULL, NULL);
	lent_pair(&w[1], NULL, NULL);
	assert_int_equal(
	        cfl_conn_send_lent(w[0].cli.c, &h, 700 * 1024, src_lend, &X.src[0], src_done), 0);
	assert_true(X.src[0].lends >= 3); /* read during the call, in 300 KiB pieces */
	X.src[1].fail_at = 3 * MIB;
	assert_int_equal(cfl_conn_send_lent(w[1].cli.c, &h, 8 * MIB, src_lend, &X.src[1], src_done),
	                 0);
	assert_true(pump_both(w, 30000));
	assert_int_equal(X.src[0].status, 0);
	assert_int_equal(X.rx[0].off, 700 * 1024);
	assert_int_equal(X.rx[0].bad, 0);
	assert_int_equal(X.src[1].status, CFL_EIO);
	assert_true(X.rx[1].off <= 3 * MIB);
	assert_int_equal(X.rx[1].bad, 0);
	assert_true(wait_for(&w[1], &w[1].srv.aborts, 1, WAIT_MS));
	assert_true(cfl_conn_is_open(w[1].cli.c));
	world_stop(&w[0]);
	world_stop(&w[1]);
}

/* Frames sent from inside a callback wait in the queue until it returns, then go out
 * together. */
static void burst(struct peer *p, const struct cfl_frame *f, int more)
{
	struct cfl_frame b = text_frame(CFL_FRAME_T_ONEWAY, "burst", "b");

	(void)f;
	(void)more;
	for (int i = 0; i < 20; i++)
		assert_int_equal(cfl_conn_send(p->c, &b), 0);
	X.queued_in_cb = cfl_conn_queued(p->c);
}

static void test_coalesced_writes(void **state)
{
	struct cfl_frame f = text_frame(CFL_FRAME_T_ONEWAY, "go", "x");
	struct cfl_conn_stats st;
	struct world w;

	(void)state;
	memset(&X, 0, sizeof(X));
	world_init(&w);
	w.srv.on_msg = burst;
	world_listen(&w, tls_ctx(1, CFL_SEC_MTLS, "server", "ca"));
	world_dial(&w, "127.0.0.1", tls_ctx(0, CFL_SEC_MTLS, "site", "ca"));
	world_open(&w);
	assert_int_equal(cfl_conn_send(w.cli.c, &f), 0);
	assert_true(wait_for(&w, &w.cli.msgs, 20, WAIT_MS));
	assert_string_equal(w.cli.last.topic, "burst");
	/* Nothing was written inside the callback; all of it once it returned. */
	assert_true(X.queued_in_cb > 20 * CFL_FRAME_HEAD_LEN);
	assert_int_equal(cfl_conn_queued(w.srv.c), 0);
	cfl_conn_get_stats(w.srv.c, &st);
	assert_int_equal(st.frames_out, 20);
	/* Outside callbacks a frame is written at once. */
	assert_int_equal(cfl_conn_send(w.cli.c, &f), 0);
	assert_int_equal(cfl_conn_queued(w.cli.c), 0);
	world_stop(&w);
}

/* Round trips close together make a connection busy (buffers kept); once it has been quiet
 * it gives them back (TLS's record buffers freed) and carries on as before. */
static int pings_left;

static void echo(struct peer *p, const struct cfl_frame *f, int more)
{
	struct cfl_frame r = text_frame(CFL_FRAME_T_ONEWAY, "pong", "p");

	(void)f;
	(void)more;
	assert_int_equal(cfl_conn_send(p->c, &r), 0);
}

static void again(struct peer *p, const struct cfl_frame *f, int more)
{
	struct cfl_frame q = text_frame(CFL_FRAME_T_ONEWAY, "ping", "q");

	(void)f;
	(void)more;
	if (--pings_left > 0)
		assert_int_equal(cfl_conn_send(p->c, &q), 0);
}

static void pings(struct world *w, int n)
{
	struct cfl_frame q = text_frame(CFL_FRAME_T_ONEWAY, "ping", "q");
	int want = w->cli.msgs + n;

	pings_left = n;
	assert_int_equal(cfl_conn_send(w->cli.c, &q), 0);
	assert_true(wait_for(w, &w->cli.msgs, want, WAIT_MS));
}

static void test_busy_then_idle(void **state)
{
	struct world w;
	uint64_t end;

	(void)state;
	world_init(&w);
	w.srv.on_msg = echo;
	w.cli.on_msg = again;
	/* Logged-in sizes: a connection before login never turns busy. */
	w.srv.max_payload_on_open = 1;
	w.cli.max_payload_on_open = 1;
	world_listen(&w, tls_ctx(1, CFL_SEC_MTLS, "server", "ca"));
	world_dial(&w, "127.0.0.1", tls_ctx(0, CFL_SEC_MTLS, "site", "ca"));
	world_open(&w);
	pings(&w, 200);
	/* Busy: reads in quick succession keep the buffers (a spare for small frames). */
	assert_int_equal(w.cli.c->hot, 1);
	assert_non_null(w.cli.c->small_spare);
	/* Quiet for longer than the cool-down (200 ms): they go. */
	end = cfl_loop_now_ms(w.loop) + 500;
	while (cfl_loop_now_ms(w.loop) < end)
		(void)cfl_loop_run_once(w.loop, 50);
	assert_int_equal(w.cli.c->hot, 0);
	assert_null(w.cli.c->rbuf);
	assert_null(w.cli.c->small_spare);
	pings(&w, 200);
	assert_int_equal(w.cli.c->hot, 1);
	assert_true(cfl_conn_is_open(w.cli.c));
	world_stop(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_lent_shared),
	        cmocka_unit_test(test_lent_single_and_error),
	        cmocka_unit_test(test_coalesced_writes),
	        cmocka_unit_test(test_busy_then_idle),
	};

	return cmocka_run_group_tests(tests, conn_setup_with_pattern, conn_teardown);
}
