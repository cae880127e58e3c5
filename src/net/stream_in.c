/* Streams coming in, credit granted back, cancelling, and the idle timeout of streams in both
 * directions (docs/protocol.md §2.2-2.5).
 *
 * A receiver holds no stream data of its own: each CHUNK goes to on_chunk straight from the
 * receive buffer, and credit is granted back once on_chunk has returned. So the sender can
 * never have more than CFL_FRAME_INITIAL_WINDOW bytes of a stream that the application has not
 * consumed yet, and a slow consumer slows the sender instead of filling memory. */
#define _GNU_SOURCE
#include "net/conn_int.h"

#include "cfl/log.h"
#include "util/reader.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRANT_STEP (CFL_FRAME_INITIAL_WINDOW / 4) /* consumed bytes worth a WINDOW */

static struct in_stream *find_in(struct cfl_conn *c, uint64_t id)
{
	struct in_stream *s;

	for (s = c->ins; s != NULL; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static void unlink_in(struct cfl_conn *c, struct in_stream *s)
{
	struct in_stream **pp = &c->ins;

	while (*pp != NULL && *pp != s)
		pp = &(*pp)->next;
	if (*pp != NULL) {
		*pp = s->next;
		c->n_ins--;
	}
}

/* Incoming streams we dropped: frames of theirs still in flight are ignored (§2.5). */
static void remember_cancelled(struct cfl_conn *c, uint64_t id)
{
	c->cancelled[c->n_cancelled % CANCELLED_RING] = id;
	c->n_cancelled++;
}

static int was_cancelled(const struct cfl_conn *c, uint64_t id)
{
	unsigned i, n = c->n_cancelled < CANCELLED_RING ? c->n_cancelled : CANCELLED_RING;

	for (i = 0; i < n; i++)
		if (c->cancelled[i] == id)
			return 1;
	return 0;
}

static void send_control(struct cfl_conn *c, uint8_t type, uint64_t ref, const uint8_t *body,
                         size_t len)
{
	struct cfl_frame f;

	memset(&f, 0, sizeof(f));
	f.type = type;
	f.ref = ref;
	f.body = body;
	f.body_len = len;
	if (cfl__conn_queue_frame(c, &f, 1) == 0)
		(void)cfl__conn_flush(c);
}

/* Drops an incoming stream: CANCEL to the peer if asked, on_abort to the application. */
static void drop_in(struct cfl_conn *c, struct in_stream *s, int code, int tell_peer,
                    const char *reason)
{
	uint64_t id = s->id;

	unlink_in(c, s);
	free(s);
	remember_cancelled(c, id);
	if (tell_peer)
		send_control(c, CFL_FRAME_T_CANCEL, id, NULL, 0);
	if (c->cb.on_abort != NULL)
		c->cb.on_abort(c, id, code, reason, c->user);
}

/* The application consumed `n` bytes of stream `id`: grant them back in steps. */
static void consumed(struct cfl_conn *c, uint64_t id, uint64_t n)
{
	struct in_stream *s = cfl__conn_alive(c) ? find_in(c, id) : NULL;
	uint8_t credit[8];
	struct cfl_writer w;

	if (s == NULL)
		return;
	s->ungranted += n;
	if (s->ungranted < GRANT_STEP)
		return;
	cfl__wr_init(&w, credit, sizeof(credit));
	cfl__wr_put_u64(&w, s->ungranted);
	s->limit += s->ungranted;
	s->ungranted = 0;
	send_control(c, CFL_FRAME_T_WINDOW, id, credit, sizeof(credit));
}

/* Decimal digits, no sign, no leading zero, at most 2^63 - 1; 0 or -1. */
static int parse_length(const uint8_t *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 19 || (n > 1 && p[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	if (v > INT64_MAX)
		return -1;
	*out = v;
	return 0;
}

void cfl__conn_on_head(struct cfl_conn *c, const struct cfl_frame *f)
{
	const struct cfl_header *h = cfl_frame_header(f, CFL_FRAME_KEY_BODY_LENGTH);
	struct in_stream *s;
	uint64_t total;

	if (c->max_payload <= CFL_FRAME_MAX_PAYLOAD_PRELOGIN) {
		cfl__conn_fail(c, CFL_EPROTO, 1,
		               "peer started a stream before logging in (protocol.md 2.2)");
		return;
	}
	if (h == NULL || parse_length(h->val, h->val_len, &total) != 0 || total < f->body_len) {
		cfl__conn_fail(c, CFL_EPROTO, 1,
		               "peer started a stream without a valid body-length");
		return;
	}
	if (c->n_ins >= CFL_CONN_MAX_STREAMS || find_in(c, f->id) != NULL) {
		cfl__conn_fail(c, CFL_EPROTO, 1,
		               "peer opened more than %d streams at once, or one twice",
		               CFL_CONN_MAX_STREAMS);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		cfl__conn_fail(c, CFL_ENOMEM, 0, "out of memory for a stream");
		return;
	}
	s->id = f->id;
	s->total = total;
	s->received = f->body_len;
	s->limit = CFL_FRAME_INITIAL_WINDOW;
	s->progress_ms = cfl_loop_now_ms(c->loop);
	s->next = c->ins;
	c->ins = s;
	c->n_ins++;
	cfl__conn_arm_idle(c);
	if (c->cb.on_msg != NULL)
		c->cb.on_msg(c, f, 1, c->user);
	consumed(c, f->id, f->body_len);
}

void cfl__conn_on_chunk(struct cfl_conn *c, const struct cfl_frame *f)
{
	struct in_stream *s = find_in(c, f->ref);
	int last = !(f->flags & CFL_FRAME_F_MORE);
	char why[128];

	if (s == NULL) {
		/* A stream we dropped, or one that never existed: cancel it once. */
		if (!was_cancelled(c, f->ref)) {
			remember_cancelled(c, f->ref);
			send_control(c, CFL_FRAME_T_CANCEL, f->ref, NULL, 0);
		}
		return;
	}
	s->received += f->body_len;
	if (s->received > s->limit) {
		cfl__conn_fail(c, CFL_EPROTO, 1,
		               "peer sent beyond its flow-control credit on stream %" PRIu64,
		               s->id);
		return;
	}
	if (s->received > s->total || (last && s->received != s->total)) {
		snprintf(why, sizeof(why),
		         "the stream's body (%s%" PRIu64
		         " bytes) does not match its body-length (%" PRIu64 ")",
		         last ? "" : "at least ", s->received, s->total);
		drop_in(c, s, CFL_EPROTO, 1, why);
		return;
	}
	s->progress_ms = cfl_loop_now_ms(c->loop);
	if (last) {
		unlink_in(c, s);
		free(s);
	}
	if (c->cb.on_chunk != NULL)
		c->cb.on_chunk(c, f->ref, f->body, f->body_len, last, c->user);
	if (!last)
		consumed(c, f->ref, f->body_len);
}

void cfl__conn_on_window(struct cfl_conn *c, const struct cfl_frame *f)
{
	struct out_stream *s = cfl__conn_find_out(c, f->ref);
	struct cfl_reader r;
	uint64_t grant;

	if (s == NULL)
		return; /* finished or cancelled meanwhile */
	cfl__rd_init(&r, f->body, f->body_len);
	grant = cfl__rd_get_u64(&r);
	if (grant > (uint64_t)(INT64_MAX - s->credit)) {
		cfl__conn_fail(c, CFL_EPROTO, 1, "peer granted more than 2^63 - 1 bytes of credit");
		return;
	}
	s->credit += (int64_t)grant;
	s->progress_ms = cfl_loop_now_ms(c->loop);
	c->need_service = 1;
}

void cfl__conn_on_cancel(struct cfl_conn *c, const struct cfl_frame *f)
{
	struct out_stream *out;
	struct in_stream *in;
	char why[64];

	/* The id's parity says whose stream it is (§2.1). */
	if (!cfl__conn_peer_id(c, f->ref)) {
		out = cfl__conn_find_out(c, f->ref);
		if (out != NULL) {
			CFL_DEBUG("conn %s: the %s cancelled stream %" PRIu64, c->peer_addr,
			          cfl__conn_peer_role(c), f->ref);
			cfl__conn_abort_out(c, out, CFL_ECLOSED, 0);
		}
		return;
	}
	in = find_in(c, f->ref);
	if (in != NULL) {
		snprintf(why, sizeof(why), "the %s cancelled the stream", cfl__conn_peer_role(c));
		drop_in(c, in, CFL_ECLOSED, 0, why);
	}
}

int cfl_conn_cancel(struct cfl_conn *c, uint64_t msg_id)
{
	struct out_stream *out;
	struct in_stream *in;

	if (c == NULL || !cfl__conn_alive(c))
		return CFL_ENOENT;
	if (!cfl__conn_peer_id(c, msg_id)) {
		out = cfl__conn_find_out(c, msg_id);
		if (out == NULL)
			return CFL_ENOENT;
		cfl__conn_abort_out(c, out, CFL_ECLOSED, 1);
		return 0;
	}
	in = find_in(c, msg_id);
	if (in == NULL)
		return CFL_ENOENT;
	unlink_in(c, in);
	free(in);
	remember_cancelled(c, msg_id);
	send_control(c, CFL_FRAME_T_CANCEL, msg_id, NULL, 0);
	return 0;
}

/* Streams and on_close at the end of a connection. `call_app` 0 (cfl_conn_free) still calls
 * the done functions, which release the senders' sources, but no on_abort. */
void cfl__conn_report_streams(struct cfl_conn *c, int call_app)
{
	struct out_stream *s, *outs = c->outs;
	struct in_stream *in, *ins = c->ins;
	char why[CFL_ERR_MSG_MAX + 32];

	c->outs = NULL;
	c->ins = NULL;
	c->n_ins = 0;
	/* The queue's buffers point at the streams: they go first (nothing is written now). */
	cfl__conn_free_queue(c);
	snprintf(why, sizeof(why), "connection closed: %s", cfl__conn_reason(c));
	while ((s = outs) != NULL) {
		outs = s->next;
		s->done(c, s->id, s->finished ? s->status : CFL_ECLOSED, s->arg);
		free(s);
	}
	while ((in = ins) != NULL) {
		ins = in->next;
		if (call_app && c->cb.on_abort != NULL && !c->freed)
			c->cb.on_abort(c, in->id, CFL_ECLOSED, why, c->user);
		free(in);
	}
}

/* --- the idle timeout ------------------------------------------------------------------- */

static void on_idle(struct cfl_loop *loop, uint64_t id, void *arg);

/* Ms until the earliest stream deadline (0: one has passed), or -1 with no stream. */
static int64_t next_deadline(struct cfl_conn *c, uint64_t now)
{
	struct out_stream *o;
	struct in_stream *i;
	uint64_t first = UINT64_MAX;

	for (o = c->outs; o != NULL; o = o->next)
		if (!o->finished && o->progress_ms < first)
			first = o->progress_ms;
	for (i = c->ins; i != NULL; i = i->next)
		if (i->progress_ms < first)
			first = i->progress_ms;
	if (first == UINT64_MAX)
		return -1;
	if (first + c->idle_timeout_ms <= now)
		return 0;
	return (int64_t)(first + c->idle_timeout_ms - now);
}

void cfl__conn_arm_idle(struct cfl_conn *c)
{
	int64_t ms;

	if (c->t_idle != 0 || !cfl__conn_alive(c))
		return;
	ms = next_deadline(c, cfl_loop_now_ms(c->loop));
	if (ms >= 0)
		c->t_idle = cfl_loop_timer_add(c->loop, (uint64_t)ms, on_idle, c);
}

/* The first stream past its deadline: outgoing (*out) or incoming (*in). */
static int find_idle(struct cfl_conn *c, uint64_t now, struct out_stream **out,
                     struct in_stream **in)
{
	struct out_stream *o;
	struct in_stream *i;

	*out = NULL;
	*in = NULL;
	for (o = c->outs; o != NULL; o = o->next)
		if (!o->finished && now - o->progress_ms >= c->idle_timeout_ms)
			return (*out = o) != NULL;
	for (i = c->ins; i != NULL; i = i->next)
		if (now - i->progress_ms >= c->idle_timeout_ms)
			return (*in = i) != NULL;
	return 0;
}

static void on_idle(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct cfl_conn *c = arg;
	struct out_stream *out;
	struct in_stream *in;
	uint64_t now = cfl_loop_now_ms(loop);
	char why[96];

	(void)id;
	c->t_idle = 0;
	cfl__conn_hold(c);
	snprintf(why, sizeof(why), "no progress for %" PRIu64 " ms (idle timeout)",
	         c->idle_timeout_ms);
	/* One at a time: on_abort may change the lists. */
	while (cfl__conn_alive(c) && find_idle(c, now, &out, &in)) {
		if (out != NULL) {
			CFL_WARN("conn %s: stream %" PRIu64 " to the %s: %s", c->peer_addr, out->id,
			         cfl__conn_peer_role(c), why);
			cfl__conn_abort_out(c, out, CFL_ETIMEDOUT, 1);
		} else {
			CFL_WARN("conn %s: stream %" PRIu64 " from the %s: %s", c->peer_addr,
			         in->id, cfl__conn_peer_role(c), why);
			drop_in(c, in, CFL_ETIMEDOUT, 1, why);
		}
	}
	cfl__conn_arm_idle(c);
	cfl__conn_release(c);
}

void cfl_conn_set_idle_timeout(struct cfl_conn *c, uint64_t ms)
{
	if (c == NULL || ms == 0)
		return;
	c->idle_timeout_ms = ms;
	cfl_loop_timer_cancel(c->loop, c->t_idle);
	c->t_idle = 0;
	cfl__conn_arm_idle(c);
}
