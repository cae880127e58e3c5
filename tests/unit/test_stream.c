/* Unit tests for streams and flow control (src/net/stream.c, stream_in.c): a 64 MiB body in
 * process with every byte checked and the receiver never more than one window behind, the
 * single-frame path, cancelling from either side, idle timeouts in both directions, the
 * pre-login limits, and peers that break the stream rules (a raw socket speaking frames). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "conn_fixture.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sys/socket.h>

struct src {
	uint64_t off;     /* bytes handed out */
	uint64_t fail_at; /* return CFL_EIO once off reaches this (0: never) */
	int done, status;
	uint64_t id;
};

/* One stream being received. */
struct rx {
	uint64_t id, off;
	int last, bad;
};

static struct {
	struct src src[2];
	struct rx rx[2];
	uint64_t max_ahead; /* the most bytes read from a source and not yet consumed */
	uint64_t cancel_at; /* the server cancels the client's stream here (0: never) */
	int cancel_in_msg;  /* the receiver cancels as soon as the head arrives */
	int chunks;
} X;

static void fill_pattern(uint8_t *buf, uint64_t off, size_t len)
{
	size_t got = 0;

	while (got < len) {
		size_t pos = (size_t)((off + got) % PERIOD), n = len - got;

		if (n > PERIOD - pos)
			n = PERIOD - pos;
		memcpy(buf + got, pattern + pos, n);
		got += n;
	}
}

static uint64_t consumed_total(void)
{
	return X.rx[0].off + X.rx[1].off;
}

static int src_read(void *arg, uint8_t *buf, size_t len)
{
	struct src *s = arg;
	uint64_t ahead;

	if (s->fail_at != 0 && s->off >= s->fail_at)
		return CFL_EIO;
	/* Hand out at most 300 KiB a call: the transport must ask again for the rest. */
	if (len > (size_t)300 * 1024)
		len = (size_t)300 * 1024;
	fill_pattern(buf, s->off, len);
	s->off += len;
	ahead = X.src[0].off + X.src[1].off - consumed_total();
	if (ahead > X.max_ahead)
		X.max_ahead = ahead;
	return (int)len;
}

static void src_done(struct cfl_conn *c, uint64_t id, int status, void *arg)
{
	struct src *s = arg;

	(void)c;
	s->done++;
	s->status = status;
	s->id = id;
}

static struct rx *rx_of(uint64_t id)
{
	int i;

	for (i = 0; i < 2; i++)
		if (X.rx[i].id == id)
			return &X.rx[i];
	for (i = 0; i < 2; i++)
		if (X.rx[i].id == 0) {
			X.rx[i].id = id;
			return &X.rx[i];
		}
	fail_msg("more than two streams");
	return NULL;
}

static void rx_msg(struct peer *p, const struct cfl_frame *f, int more)
{
	struct rx *r = rx_of(f->id);

	if (X.cancel_in_msg && more) {
		assert_int_equal(cfl_conn_cancel(p->c, f->id), 0);
		assert_int_equal(cfl_conn_cancel(p->c, f->id), CFL_ENOENT);
		return;
	}
	if (!same_as_pattern(f->body, r->off, f->body_len))
		r->bad++;
	r->off += f->body_len;
	r->last = !more;
}

static void rx_chunk(struct peer *p, uint64_t id, const uint8_t *d, size_t n, int last)
{
	struct rx *r = rx_of(id);

	(void)p;
	X.chunks++;
	if (!same_as_pattern(d, r->off, n))
		r->bad++;
	r->off += n;
	r->last = last;
	if (X.cancel_at != 0 && r->off >= X.cancel_at && !last) {
		X.cancel_at = 0;
		/* The sender gives up: from the client's side, here inside the server's callback.
		 */
		assert_int_equal(cfl_conn_cancel(p->w->cli.c, id), 0);
	}
}

static struct cfl_frame head(void)
{
	return text_frame(CFL_FRAME_T_ONEWAY, "model", NULL);
}

/* Opens a pair where both sides count as logged in (streams allowed). */
static void logged_in_pair(struct world *w, struct cfl_tls_ctx *s, struct cfl_tls_ctx *c)
{
	memset(&X, 0, sizeof(X));
	world_init(w);
	w->srv.max_payload_on_open = 1;
	w->cli.max_payload_on_open = 1;
	w->srv.on_msg = rx_msg;
	w->srv.on_chunk = rx_chunk;
	world_listen(w, s);
	world_dial(w, "127.0.0.1", c);
	world_open(w);
}

static void big_stream(struct cfl_tls_ctx *s, struct cfl_tls_ctx *c, const char *label)
{
	const uint64_t total = 64ull * MIB;
	struct cfl_frame h = head();
	struct cfl_conn_stats cs, ss;
	struct world w;
	uint64_t t0, ms;

	logged_in_pair(&w, s, c);
	t0 = cfl_loop_now_ms(w.loop);
	assert_int_equal(cfl_conn_send_stream(w.cli.c, &h, total, src_read, &X.src[0], src_done),
	                 0);
	assert_int_equal(X.src[0].off, 0); /* nothing read from inside the call */
	assert_true(wait_for(&w, &X.rx[0].last, 1, 60000));
	ms = cfl_loop_now_ms(w.loop) - t0;
	assert_true(wait_for(&w, &X.src[0].done, 1, WAIT_MS));
	assert_int_equal(X.src[0].status, 0);
	assert_int_equal(X.rx[0].off, total);
	assert_int_equal(X.rx[0].bad, 0);
	assert_int_equal(w.srv.last.more, 1);
	assert_string_equal(w.srv.last.body_length, "67108864");
	assert_int_equal(X.src[0].id, w.srv.last.id);
	/* The receiver never had more than one window of unconsumed data in flight. */
	assert_true(X.max_ahead <= CFL_FRAME_INITIAL_WINDOW);
	/* Bounded memory: one frame to receive, two chunks (plus small frames) to send. */
	cfl_conn_get_stats(w.srv.c, &ss);
	cfl_conn_get_stats(w.cli.c, &cs);
	assert_true(ss.rbuf_peak <= CFL_FRAME_MAX_PAYLOAD + CFL_FRAME_HEAD_LEN);
	assert_true(cs.wqueue_peak <= 2 * (CFL_FRAME_CHUNK + CFL_FRAME_HEAD_LEN) + 64 * 1024);
	print_message("  %s: 64 MiB in %" PRIu64 " ms (%.0f MiB/s), max ahead %.1f MiB, "
	              "%d chunks, sender queue peak %.2f MiB\n",
	              label, ms, ms ? 64.0 * 1000.0 / (double)ms : 0.0, (double)X.max_ahead / MIB,
	              X.chunks, (double)cs.wqueue_peak / MIB);
	world_stop(&w);
}

static void test_stream_64mib_clear(void **state)
{
	(void)state;
	big_stream(NULL, NULL, "clear");
}

static void test_stream_64mib_mtls(void **state)
{
	(void)state;
	big_stream(tls_ctx(1, CFL_SEC_MTLS, "server", "ca"), tls_ctx(0, CFL_SEC_MTLS, "site", "ca"),
	           "mtls");
}

/* Over 2 GiB: sizes are 64-bit end to end. The source hands out its buffer as it is and the
 * receiver only counts, so that the test measures the transport. */
static uint64_t counted;
static int count_last;

static int src_fast(void *arg, uint8_t *buf, size_t len)
{
	(void)arg;
	(void)buf;
	return (int)len;
}

static void rx_count(struct peer *p, uint64_t id, const uint8_t *d, size_t n, int last)
{
	(void)p;
	(void)id;
	(void)d;
	counted += n;
	count_last += last;
}

static void test_stream_over_2gib(void **state)
{
	const uint64_t total = 2ull * 1024 * MIB + 5;
	struct cfl_frame h = head();
	struct world w;
	uint64_t t0, ms;

	(void)state;
	logged_in_pair(&w, NULL, NULL);
	w.srv.on_chunk = rx_count;
	counted = 0;
	count_last = 0;
	t0 = cfl_loop_now_ms(w.loop);
	assert_int_equal(cfl_conn_send_stream(w.cli.c, &h, total, src_fast, &X.src[0], src_done),
	                 0);
	assert_true(wait_for(&w, &count_last, 1, 120000));
	ms = cfl_loop_now_ms(w.loop) - t0;
	assert_true(wait_for(&w, &X.src[0].done, 1, WAIT_MS));
	assert_int_equal(X.src[0].status, 0);
	assert_int_equal(counted, total);
	assert_string_equal(w.srv.last.body_length, "2147483653");
	print_message("  clear, no checks: 2 GiB + 5 in %" PRIu64 " ms (%.0f MiB/s)\n", ms,
	              ms ? 2048.0 * 1000.0 / (double)ms : 0.0);
	world_stop(&w);
}

/* Bodies up to CFL_FRAME_CHUNK go in one frame without MORE or body-length. */
static void test_stream_single_frame(void **state)
{
	struct cfl_frame h = head();
	struct world w;

	(void)state;
	logged_in_pair(&w, NULL, NULL);
	assert_int_equal(cfl_conn_send_stream(w.cli.c, &h, 1000, src_read, &X.src[0], src_done), 0);
	assert_int_equal(X.src[0].off, 1000); /* read during the call */
	assert_true(wait_for(&w, &X.src[0].done, 1, WAIT_MS));
	assert_true(wait_for(&w, &w.srv.msgs, 1, WAIT_MS));
	assert_int_equal(X.src[0].status, 0);
	assert_int_equal(w.srv.last.more, 0);
	assert_string_equal(w.srv.last.body_length, "");
	assert_int_equal(X.rx[0].off, 1000);
	assert_int_equal(X.rx[0].bad, 0);

	X.src[1].off = 0;
	assert_int_equal(
	        cfl_conn_send_stream(w.cli.c, &h, CFL_FRAME_CHUNK, src_read, &X.src[1], src_done),
	        0);
	assert_true(wait_for(&w, &w.srv.msgs, 2, WAIT_MS));
	assert_int_equal(X.rx[1].off, CFL_FRAME_CHUNK);
	assert_int_equal(X.rx[1].bad, 0);
	assert_true(wait_for(&w, &X.src[1].done, 1, WAIT_MS));
	world_stop(&w);
}

/* Two streams at once share the connection and both arrive intact. */
static void test_two_streams(void **state)
{
	struct cfl_frame h = head();
	struct world w;

	(void)state;
	logged_in_pair(&w, NULL, NULL);
	assert_int_equal(cfl_conn_send_stream(w.cli.c, &h, 20 * MIB, src_read, &X.src[0], src_done),
	                 0);
	assert_int_equal(
	        cfl_conn_send_stream(w.cli.c, &h, 20 * MIB + 7, src_read, &X.src[1], src_done), 0);
	assert_true(wait_for(&w, &X.rx[0].last, 1, 30000));
	assert_true(wait_for(&w, &X.rx[1].last, 1, 30000));
	assert_int_equal(X.rx[0].bad + X.rx[1].bad, 0);
	assert_int_equal(X.rx[0].off + X.rx[1].off, 40 * MIB + 7);
	assert_true(wait_for(&w, &X.src[1].done, 1, WAIT_MS));
	assert_true(X.src[0].done == 1 && X.src[0].status == 0 && X.src[1].status == 0);
	world_stop(&w);
}

static void test_receiver_cancels(void **state)
{
	struct cfl_frame h = head(), f = text_frame(CFL_FRAME_T_ONEWAY, "after", "x");
	struct world w;

	(void)state;
	logged_in_pair(&w, NULL, NULL);
	X.cancel_in_msg = 1;
	assert_int_equal(cfl_conn_send_stream(w.cli.c, &h, 32 * MIB, src_read, &X.src[0], src_done),
	                 0);
	assert_true(wait_for(&w, &X.src[0].done, 1, WAIT_MS));
	assert_int_equal(X.src[0].status, CFL_ECLOSED);
	assert_int_equal(X.chunks, 0);
	assert_int_equal(w.srv.aborts, 0); /* the receiver asked: no on_abort */
	/* The connection carries on. */
	assert_int_equal(cfl_conn_send(w.cli.c, &f), 0);
	assert_true(wait_for(&w, &w.srv.msgs, 2, WAIT_MS));
	assert_string_equal(w.srv.last.topic, "after");
	world_stop(&w);
}

static void test_sender_cancels(void **state)
{
	struct cfl_frame h = head();
	struct world w;

	(void)state;
	logged_in_pair(&w, NULL, NULL);
	X.cancel_at = 4 * MIB;
	assert_int_equal(cfl_conn_send_stream(w.cli.c, &h, 32 * MIB, src_read, &X.src[0], src_done),
	                 0);
	assert_true(wait_for(&w, &w.srv.aborts, 1, WAIT_MS));
	assert_int_equal(w.srv.abort_code, CFL_ECLOSED);
	assert_string_equal(w.srv.abort_reason, "the client cancelled the stream");
	assert_true(wait_for(&w, &X.src[0].done, 1, WAIT_MS));
	assert_int_equal(X.src[0].status, CFL_ECLOSED);
	assert_int_equal(X.rx[0].last, 0);
	world_stop(&w);
}

static void test_source_error(void **state)
{
	struct cfl_frame h = head();
	struct world w;

	(void)state;
	logged_in_pair(&w, NULL, NULL);
	X.src[0].fail_at = 5 * MIB;
	assert_int_equal(cfl_conn_send_stream(w.cli.c, &h, 32 * MIB, src_read, &X.src[0], src_done),
	                 0);
	assert_true(wait_for(&w, &X.src[0].done, 1, WAIT_MS));
	assert_int_equal(X.src[0].status, CFL_EIO);
	assert_true(wait_for(&w, &w.srv.aborts, 1, WAIT_MS));
	assert_string_equal(w.srv.abort_reason, "the client cancelled the stream");
	world_stop(&w);
}

/* Closing a connection ends its streams on both sides with their callbacks. */
static void test_close_ends_streams(void **state)
{
	struct cfl_frame h = head();
	struct world w;

	(void)state;
	logged_in_pair(&w, NULL, NULL);
	assert_int_equal(cfl_conn_send_stream(w.cli.c, &h, 64 * MIB, src_read, &X.src[0], src_done),
	                 0);
	assert_true(wait_for(&w, &X.chunks, 2, WAIT_MS));
	cfl_conn_close(w.srv.c, "shutting down");
	assert_true(wait_for(&w, &w.srv.aborts, 1, WAIT_MS));
	assert_int_equal(w.srv.abort_code, CFL_ECLOSED);
	assert_true(wait_for(&w, &X.src[0].done, 1, WAIT_MS));
	assert_int_equal(X.src[0].status, CFL_ECLOSED);
	assert_true(wait_for(&w, &w.cli.closed, 1, WAIT_MS));
	assert_string_equal(w.cli.reason, "server closed the connection: shutting down");
	assert_true(wait_for(&w, &w.srv.closed, 1, WAIT_MS));
	assert_int_equal(w.srv.code, 0);
	world_stop(&w);
}

/* Before login: a frame over 64 KiB closes the connection before its payload is read. */
static void test_oversized_prelogin_frame(void **state)
{
	struct cfl_frame f = text_frame(CFL_FRAME_T_REQUEST, "login", NULL);
	uint8_t *body = calloc(1, (size_t)100 * 1024);
	struct world w;

	(void)state;
	world_start(&w, NULL, NULL, "127.0.0.1");
	world_open(&w);
	assert_int_equal(cfl_conn_max_payload(w.srv.c), CFL_FRAME_MAX_PAYLOAD_PRELOGIN);
	f.body = body;
	f.body_len = (size_t)100 * 1024;
	assert_int_equal(cfl_conn_send(w.cli.c, &f), 0);
	assert_true(wait_for(&w, &w.srv.closed, 1, WAIT_MS));
	assert_int_equal(w.srv.code, CFL_ETOOBIG);
	assert_non_null(strstr(w.srv.reason, "over the limit of 65536 before login"));
	assert_true(w.srv.stats.rbuf_peak <= CFL_FRAME_MAX_PAYLOAD_PRELOGIN);
	assert_int_equal(w.srv.msgs, 0);
	assert_true(wait_for(&w, &w.cli.closed, 1, WAIT_MS));
	assert_non_null(strstr(w.cli.reason, "server closed the connection: peer sent a frame"));
	free(body);
	world_stop(&w);
}

static void test_stream_before_login(void **state)
{
	struct cfl_frame h = head();
	struct world w;

	(void)state;
	memset(&X, 0, sizeof(X));
	world_start(&w, NULL, NULL, "127.0.0.1");
	world_open(&w);
	assert_int_equal(cfl_conn_set_max_payload(w.srv.c, 10), CFL_EINVAL);
	assert_int_equal(cfl_conn_send_stream(w.cli.c, &h, 2 * MIB, src_read, &X.src[0], src_done),
	                 0);
	assert_true(wait_for(&w, &w.srv.closed, 1, WAIT_MS));
	assert_int_equal(w.srv.code, CFL_EPROTO);
	assert_non_null(strstr(w.srv.reason, "peer started a stream before logging in"));
	assert_true(wait_for(&w, &X.src[0].done, 1, WAIT_MS));
	assert_int_not_equal(X.src[0].status, 0);
	world_stop(&w);
}

/* --- a raw peer that speaks frames by hand ---------------------------------------------- */

static int raw_dial(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void raw_send(int fd, const struct cfl_frame *f)
{
	uint8_t buf[4096];
	int n = cfl_frame_encode(buf, sizeof(buf), f);

	assert_true(n > 0);
	assert_int_equal(send(fd, buf, (size_t)n, MSG_NOSIGNAL), n);
}

/* Runs the loop until a whole frame arrives on `fd`; returns its type and its ref. */
static int raw_expect(struct world *w, int fd, uint64_t *ref)
{
	static uint8_t buf[8192];
	static size_t len;
	uint64_t end = cfl_loop_now_ms(w->loop) + WAIT_MS;
	struct cfl_frame f;
	int n;

	while (cfl_loop_now_ms(w->loop) < end) {
		ssize_t r = recv(fd, buf + len, sizeof(buf) - len, MSG_DONTWAIT);

		if (r > 0)
			len += (size_t)r;
		n = cfl_frame_decode(buf, len, CFL_FRAME_MAX_PAYLOAD, &f);
		assert_true(n >= 0);
		if (n > 0) {
			*ref = f.ref;
			memmove(buf, buf + n, len - (size_t)n);
			len -= (size_t)n;
			return f.type;
		}
		(void)cfl_loop_run_once(w->loop, 10);
	}
	return -1;
}

static struct cfl_frame raw_head(uint64_t id, const char *body_length, const char *body)
{
	struct cfl_frame f = text_frame(CFL_FRAME_T_ONEWAY, NULL, body);

	f.id = id;
	f.flags = CFL_FRAME_F_MORE;
	f.headers[0] = CFL_HDR("body-length", body_length);
	f.n_headers = 1;
	return f;
}

static struct cfl_frame raw_chunk(uint64_t id, uint64_t ref, size_t len, int more)
{
	static const uint8_t zeros[2048];
	struct cfl_frame f;

	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_CHUNK;
	f.id = id;
	f.ref = ref;
	f.flags = more ? CFL_FRAME_F_MORE : 0;
	f.body = zeros;
	f.body_len = len;
	return f;
}

static void raw_world(struct world *w, uint64_t idle_ms)
{
	memset(&X, 0, sizeof(X));
	world_init(w);
	w->srv.max_payload_on_open = 1;
	world_listen_idle(w, NULL, idle_ms);
}

static void test_incoming_idle_timeout(void **state)
{
	struct cfl_frame f = raw_head(1, "10485760", "0123456789");
	struct world w;
	uint64_t ref = 0, t0;
	int fd;

	(void)state;
	raw_world(&w, 200);
	fd = raw_dial(w.port);
	assert_true(wait_for(&w, &w.srv.opened, 1, WAIT_MS));
	t0 = cfl_loop_now_ms(w.loop);
	raw_send(fd, &f);
	f = raw_chunk(3, 1, 1000, 1);
	raw_send(fd, &f);
	/* ...and then nothing: the stream stalls. */
	assert_int_equal(raw_expect(&w, fd, &ref), CFL_FRAME_T_CANCEL);
	assert_int_equal(ref, 1);
	assert_int_equal(w.srv.aborts, 1);
	assert_int_equal(w.srv.abort_code, CFL_ETIMEDOUT);
	assert_string_equal(w.srv.abort_reason, "no progress for 200 ms (idle timeout)");
	assert_true(cfl_loop_now_ms(w.loop) - t0 >= 200);
	/* Frames of the dropped stream still in flight are ignored; the connection lives. */
	f = raw_chunk(5, 1, 1000, 1);
	raw_send(fd, &f);
	f = text_frame(CFL_FRAME_T_ONEWAY, "still", "here");
	f.id = 7;
	raw_send(fd, &f);
	assert_true(wait_for(&w, &w.srv.msgs, 2, WAIT_MS));
	assert_string_equal(w.srv.last.topic, "still");
	close(fd);
	world_stop(&w);
}

static void test_body_length_mismatch(void **state)
{
	struct cfl_frame f = raw_head(1, "100", "0123456789");
	struct world w;
	uint64_t ref = 0;
	int fd;

	(void)state;
	raw_world(&w, 0);
	fd = raw_dial(w.port);
	assert_true(wait_for(&w, &w.srv.opened, 1, WAIT_MS));
	raw_send(fd, &f);
	f = raw_chunk(3, 1, 200, 0); /* 210 bytes for a body of 100 */
	raw_send(fd, &f);
	assert_int_equal(raw_expect(&w, fd, &ref), CFL_FRAME_T_CANCEL);
	assert_int_equal(ref, 1);
	assert_int_equal(w.srv.abort_code, CFL_EPROTO);
	assert_non_null(strstr(w.srv.abort_reason, "does not match its body-length (100)"));
	/* A chunk for a stream that never existed is cancelled too. */
	f = raw_chunk(5, 9, 10, 0);
	raw_send(fd, &f);
	assert_int_equal(raw_expect(&w, fd, &ref), CFL_FRAME_T_CANCEL);
	assert_int_equal(ref, 9);
	close(fd);
	world_stop(&w);
}

/* A receiver that never reads: the sender's stream times out, memory stays bounded. */
static void test_outgoing_idle_timeout(void **state)
{
	struct cfl_frame h = head();
	struct cfl_conn_opts o;
	struct cfl_err e;
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	struct cfl_conn_stats st;
	struct world w;
	int lfd;

	(void)state;
	memset(&X, 0, sizeof(X));
	world_init(&w);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	o = peer_opts(&w.cli, NULL);
	o.idle_timeout_ms = 300;
	assert_int_equal(cfl_conn_dial(w.loop, "127.0.0.1", ntohs(a.sin_port), &o, &w.cli.c, &e),
	                 0);
	assert_true(wait_for(&w, &w.cli.opened, 1, WAIT_MS));
	assert_int_equal(
	        cfl_conn_send_stream(w.cli.c, &h, 1024ull * MIB, src_read, &X.src[0], src_done), 0);
	assert_true(wait_for(&w, &X.src[0].done, 1, WAIT_MS));
	assert_int_equal(X.src[0].status, CFL_ETIMEDOUT);
	cfl_conn_get_stats(w.cli.c, &st);
	assert_true(X.src[0].off <= CFL_FRAME_INITIAL_WINDOW);
	assert_true(st.wqueue_peak <= 2 * (CFL_FRAME_CHUNK + CFL_FRAME_HEAD_LEN) + 64 * 1024);
	close(lfd);
	world_stop(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_stream_64mib_clear),
	        cmocka_unit_test(test_stream_64mib_mtls),
	        cmocka_unit_test(test_stream_over_2gib),
	        cmocka_unit_test(test_stream_single_frame),
	        cmocka_unit_test(test_two_streams),
	        cmocka_unit_test(test_receiver_cancels),
	        cmocka_unit_test(test_sender_cancels),
	        cmocka_unit_test(test_source_error),
	        cmocka_unit_test(test_close_ends_streams),
	        cmocka_unit_test(test_oversized_prelogin_frame),
	        cmocka_unit_test(test_stream_before_login),
	        cmocka_unit_test(test_incoming_idle_timeout),
	        cmocka_unit_test(test_body_length_mismatch),
	        cmocka_unit_test(test_outgoing_idle_timeout),
	};

	return cmocka_run_group_tests(tests, conn_setup_with_pattern, conn_teardown);
}
