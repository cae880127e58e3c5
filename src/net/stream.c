/* The write side of a connection and its streams (docs/protocol.md §2): the write queue,
 * cfl_conn_send(), cfl_conn_send_stream(), credit, WINDOW/CANCEL and the idle timeout.
 *
 * The write queue is a list of buffers. Small frames are encoded back to back into shared
 * buffers (one send() carries many); each chunk of a stream gets a buffer of its own, filled
 * straight from the application's read function after a fixed header written in place, and at
 * most BIG_MAX of those are queued at a time: with the receiver's credit, that is what bounds a
 * sender's memory whatever the body size. */
#define _GNU_SOURCE
#include "net/conn_int.h"
#include "net/frame_int.h"

#include "cfl/log.h"
#include "util/reader.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SMALL_BUF ((size_t)64 * 1024) /* room of a buffer of coalesced small frames */
#define BIG_MAX   2                   /* stream buffers queued per connection */
#define CHUNK_BUF (CFL_FRAME_HEAD_LEN + CFL_FRAME_CHUNK)
/* A lent chunk's own bytes: its header and the first body bytes, one full TLS record. */
#define LENT_BUF ((size_t)16384)

uint64_t cfl_conn_next_id(struct cfl_conn *c)
{
	uint64_t id = c->next_id;

	c->next_id += 2;
	return id;
}

/* --- the write queue -------------------------------------------------------------------- */

static struct wbuf *wbuf_new(size_t cap)
{
	struct wbuf *w = malloc(sizeof(*w) + cap);

	if (w == NULL)
		return NULL;
	memset(w, 0, sizeof(*w));
	w->cap = cap;
	return w;
}

static size_t wbuf_left(const struct wbuf *w)
{
	return w->len + w->ext_len - w->off;
}

static void wbuf_free(struct wbuf *w)
{
	free(w->ext_own);
	free(w);
}

/* A chunk buffer back to the spare slot (a small-frame one too on a busy connection), or
 * freed. */
static void recycle(struct cfl_conn *c, struct wbuf *w)
{
	if (w->cap == CHUNK_BUF && w->ext == NULL && c->spare == NULL) {
		c->spare = w;
	} else if (c->hot && w->cap == SMALL_BUF && w->owner == NULL && w->ext == NULL &&
	           c->small_spare == NULL) {
		c->small_spare = w;
	} else {
		wbuf_free(w);
	}
}

void cfl__conn_drop_spares(struct cfl_conn *c)
{
	free(c->small_spare);
	c->small_spare = NULL;
}

static void note_queued(struct cfl_conn *c, size_t n)
{
	c->queued += n;
	if (c->queued > c->stats.wqueue_peak)
		c->stats.wqueue_peak = c->queued;
}

static void enqueue(struct cfl_conn *c, struct wbuf *w)
{
	w->next = NULL;
	if (c->wq_tail != NULL)
		c->wq_tail->next = w;
	else
		c->wq_head = w;
	c->wq_tail = w;
	note_queued(c, wbuf_left(w));
	if (w->big)
		c->big_queued++;
	if (w->owner != NULL)
		w->owner->in_queue++;
}

/* Room for `len` bytes of small frames at the tail of the queue. */
static uint8_t *reserve_small(struct cfl_conn *c, size_t len)
{
	struct wbuf *t = c->wq_tail, *w;
	uint8_t *p;

	if (t != NULL && t->owner == NULL && !t->big && t->ext == NULL && t->cap - t->len >= len) {
		p = t->data + t->len;
		t->len += len;
		note_queued(c, len);
		return p;
	}
	if (len <= SMALL_BUF && c->small_spare != NULL) {
		w = c->small_spare;
		c->small_spare = NULL;
		memset(w, 0, sizeof(*w));
		w->cap = SMALL_BUF;
	} else {
		w = wbuf_new(len > SMALL_BUF ? len : SMALL_BUF);
	}
	if (w == NULL)
		return NULL;
	w->len = len;
	enqueue(c, w);
	return w->data;
}

static void patch_id(uint8_t *frame, uint64_t id)
{
	struct cfl_writer w;

	cfl__wr_init(&w, frame + 16, 8); /* the id field of the fixed header */
	cfl__wr_put_u64(&w, id);
}

/* cfl__conn_queue_frame for a frame whose encoded size the caller has just computed, and so
 * validated: it is encoded without checking it again (one validation per frame, not three). */
static int queue_sized(struct cfl_conn *c, const struct cfl_frame *f, size_t size, int assign_id)
{
	uint8_t *p;

	if (!cfl__conn_alive(c) || c->shut_wr)
		return CFL_ECLOSED;
	/* Control frames (PONG, WINDOW, CANCEL) are queued whatever the application's cap, but a
	 * peer that makes us answer while never reading must not grow the queue forever. */
	if (c->queued + size > 2 * (size_t)CFL_CONN_MAX_QUEUED) {
		cfl__conn_fail(c, CFL_ETOOBIG, 0,
		               "the %s does not read what it is sent (%zu bytes waiting)",
		               cfl__conn_peer_role(c), c->queued);
		return CFL_ECLOSED;
	}
	p = reserve_small(c, size);
	if (p == NULL) {
		cfl__conn_fail(c, CFL_ENOMEM, 0, "out of memory for the write queue");
		return CFL_ENOMEM;
	}
	(void)cfl__frame_encode_sized(p, size, f); /* validated by the size */
	if (assign_id)
		patch_id(p, cfl_conn_next_id(c));
	c->stats.frames_out++;
	return 0;
}

int cfl__conn_queue_frame(struct cfl_conn *c, const struct cfl_frame *f, int assign_id)
{
	size_t size = cfl_frame_encoded_size(f);

	return size == 0 ? CFL_EINVAL : queue_sized(c, f, size, assign_id);
}

static void free_list(struct wbuf *w)
{
	struct wbuf *next;

	for (; w != NULL; w = next) {
		next = w->next;
		wbuf_free(w);
	}
}

void cfl__conn_free_queue(struct cfl_conn *c)
{
	struct out_stream *s, *next;

	free_list(c->wq_head);
	c->wq_head = c->wq_tail = NULL;
	c->queued = 0;
	c->big_queued = 0;
	free(c->spare);
	c->spare = NULL;
	cfl__conn_drop_spares(c);
	for (s = c->outs; s != NULL; s = next) {
		next = s->next;
		free(s);
	}
	c->outs = NULL;
}

/* The first buffer is written out: drop it, and note a stream that it completes. */
static void pop(struct cfl_conn *c, struct wbuf *w)
{
	c->wq_head = w->next;
	if (c->wq_head == NULL)
		c->wq_tail = NULL;
	if (w->big) {
		c->big_queued--;
		/* Room for another chunk: flushes run outside the loop too (cfl_conn_send). */
		if (c->outs != NULL)
			cfl__conn_kick(c);
	}
	if (w->owner != NULL) {
		assert(w->owner->in_queue > 0);
		w->owner->in_queue--;
		w->owner->progress_ms = cfl_loop_now_ms(c->loop);
		if (w->last) {
			w->owner->finished = 1;
			w->owner->status = 0;
			cfl__conn_kick(c); /* done_fn runs from the loop */
		}
	}
	recycle(c, w);
}

/* One write to the socket or the TLS session: bytes written, CFL_EAGAIN, or an error (the
 * connection is then failed). */
static ssize_t write_some(struct cfl_conn *c, const uint8_t *p, size_t len)
{
	struct cfl_err err;
	ssize_t n;
	int want = 0;

	if (c->tls == NULL) {
		n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0)
			return n;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return CFL_EAGAIN;
		n = errno == EPIPE || errno == ECONNRESET ? CFL_ECLOSED : CFL_ECONN;
		snprintf(err.msg, sizeof(err.msg), "cannot write to the %s: %s",
		         cfl__conn_peer_role(c), strerror(errno));
	} else {
		cfl_err_clear(&err);
		n = cfl_tls_write(c->tls, p, len, &want, &err);
		c->wr_wants_read = n == CFL_EAGAIN && want == CFL_EV_READ;
		if (n >= 0 || n == CFL_EAGAIN)
			return n;
	}
	if (n == CFL_ECLOSED) {
		/* The peer is gone; reading tells why (its GOAWAY, if any, is in our input). */
		c->wr_dead = 1;
		c->read_again = 1;
		cfl__conn_kick(c);
		return CFL_ECLOSED;
	}
	cfl__conn_fail(c, (int)n, 0, "%s", err.msg);
	return n;
}

int cfl__conn_flush(struct cfl_conn *c)
{
	struct wbuf *w;
	ssize_t n;

	if (!cfl__conn_alive(c) || c->wr_dead || (c->state != CS_OPEN && c->state != CS_DRAINING))
		return 0;
	c->flush_due = 0;
	while ((w = c->wq_head) != NULL) {
		if (w->off < w->len)
			n = write_some(c, w->data + w->off, w->len - w->off);
		else
			n = write_some(c, w->ext + (w->off - w->len), wbuf_left(w));
		if (n == CFL_EAGAIN)
			break;
		if (n < 0)
			return (int)n;
		w->off += (size_t)n;
		c->queued -= (size_t)n;
		c->stats.bytes_out += (uint64_t)n;
		if (wbuf_left(w) == 0)
			pop(c, w);
	}
	if (c->wq_head == NULL && c->state == CS_DRAINING)
		cfl__conn_drained(c);
	cfl__conn_update_watch(c);
	return 0;
}

/* --- sending ----------------------------------------------------------------------------- */

static int check_send(struct cfl_conn *c, const struct cfl_frame *f, int ping_ok)
{
	if (c == NULL || f == NULL)
		return CFL_EINVAL;
	if (!cfl__conn_alive(c) || c->state == CS_DRAINING)
		return CFL_ECLOSED;
	if (f->type != CFL_FRAME_T_REQUEST && f->type != CFL_FRAME_T_REPLY &&
	    f->type != CFL_FRAME_T_ONEWAY && !(ping_ok && f->type == CFL_FRAME_T_PING))
		return CFL_EINVAL;
	if ((f->flags & CFL_FRAME_F_MORE) || (f->id != 0 && cfl__conn_peer_id(c, f->id)))
		return CFL_EINVAL;
	return 0;
}

int cfl_conn_send(struct cfl_conn *c, const struct cfl_frame *f)
{
	size_t size;
	int rc = check_send(c, f, 1);

	if (rc != 0)
		return rc;
	size = cfl_frame_encoded_size(f);
	if (size == 0)
		return f->body_len > CFL_FRAME_MAX_PAYLOAD ? CFL_ETOOBIG : CFL_EINVAL;
	if (size - CFL_FRAME_HEAD_LEN > CFL_FRAME_MAX_PAYLOAD)
		return CFL_ETOOBIG;
	if (c->queued + size > CFL_CONN_MAX_QUEUED)
		return CFL_EAGAIN;
	rc = queue_sized(c, f, size, f->id == 0);
	if (rc != 0)
		return rc;
	/* Inside a callback of this connection: written with whatever else the callback queues,
	 * when it returns (cfl__conn_release). */
	if (c->holds > 0)
		c->flush_due = 1;
	else
		(void)cfl__conn_flush(c);
	return 0;
}

/* The next piece of a lent body, at most `n` bytes: its size, or a negative code. */
static int lend(struct out_stream *s, size_t n, const uint8_t **p)
{
	int r = s->lend(s->arg, s->off, n, p);

	if (r == 0)
		return CFL_EIO; /* the source ended before body_len */
	if (r > 0 && ((size_t)r > n || *p == NULL))
		return CFL_EINVAL;
	if (r > 0)
		s->off += (uint64_t)r;
	return r;
}

/* Reads exactly `n` bytes of the stream's body (copied, from either kind of source); 0 or a
 * negative code. */
static int pull(struct out_stream *s, uint8_t *buf, size_t n)
{
	const uint8_t *p;
	size_t got = 0;
	int r;

	while (got < n) {
		if (s->lend != NULL) {
			r = lend(s, n - got, &p);
			if (r > 0)
				memcpy(buf + got, p, (size_t)r);
		} else {
			r = s->read(s->arg, buf + got, n - got);
			if (r == 0)
				r = CFL_EIO; /* the source ended before body_len */
			else if (r > 0 && (size_t)r > n - got)
				r = CFL_EINVAL;
		}
		if (r < 0)
			return r;
		got += (size_t)r;
	}
	return 0;
}

static void add_stream(struct cfl_conn *c, struct out_stream *s)
{
	struct out_stream **pp = &c->outs;

	while (*pp != NULL)
		pp = &(*pp)->next;
	s->next = NULL;
	*pp = s;
}

/* A body that fits one frame: read it now and queue the whole frame. */
static int send_single(struct cfl_conn *c, struct out_stream *s, const struct cfl_frame *head,
                       size_t body_len)
{
	struct cfl_frame h = *head;
	struct wbuf *w;
	size_t hsize;
	int n, rc;

	h.body = NULL;
	h.body_len = 0;
	hsize = cfl_frame_encoded_size(&h);
	if (hsize == 0)
		return CFL_EINVAL;
	if (c->queued + hsize + body_len > CFL_CONN_MAX_QUEUED)
		return CFL_EAGAIN;
	w = wbuf_new(hsize + body_len);
	if (w == NULL)
		return CFL_ENOMEM;
	n = cfl_frame_encode_head(w->data, w->cap, &h, body_len);
	rc = n < 0 ? n : pull(s, w->data + n, body_len);
	if (rc != 0 || !cfl__conn_alive(c)) {
		free(w);
		return rc != 0 ? rc : CFL_ECLOSED;
	}
	patch_id(w->data, s->id);
	w->len = (size_t)n + body_len;
	w->owner = s;
	w->last = 1;
	w->big = body_len > SMALL_BUF;
	add_stream(c, s);
	enqueue(c, w);
	c->stats.frames_out++;
	return 0;
}

/* A larger body: the head with MORE and body-length now; the chunks as credit allows. */
static int send_head(struct cfl_conn *c, struct out_stream *s, const struct cfl_frame *head,
                     uint64_t body_len)
{
	struct cfl_frame h = *head;
	char len_text[24];
	size_t size;
	int rc;

	if (h.n_headers >= CFL_FRAME_MAX_HEADERS ||
	    cfl_frame_header(&h, CFL_FRAME_KEY_BODY_LENGTH) != NULL)
		return CFL_EINVAL;
	snprintf(len_text, sizeof(len_text), "%" PRIu64, body_len);
	h.headers[h.n_headers++] = CFL_HDR(CFL_FRAME_KEY_BODY_LENGTH, len_text);
	h.flags |= CFL_FRAME_F_MORE;
	h.body = NULL;
	h.body_len = 0;
	h.id = s->id;
	size = cfl_frame_encoded_size(&h);
	if (size == 0)
		return CFL_EINVAL;
	if (c->queued + size > CFL_CONN_MAX_QUEUED)
		return CFL_EAGAIN;
	rc = cfl__conn_queue_frame(c, &h, 0);
	if (rc != 0)
		return rc;
	s->left = body_len;
	add_stream(c, s);
	return 0;
}

static int start_stream(struct cfl_conn *c, const struct cfl_frame *head, uint64_t body_len,
                        struct out_stream *s)
{
	int rc;

	s->id = head->id != 0 ? head->id : cfl_conn_next_id(c);
	s->credit = CFL_FRAME_INITIAL_WINDOW;
	s->progress_ms = cfl_loop_now_ms(c->loop);
	if (body_len <= CFL_FRAME_CHUNK)
		rc = send_single(c, s, head, (size_t)body_len);
	else
		rc = send_head(c, s, head, body_len);
	if (rc != 0) {
		free(s);
		return rc;
	}
	cfl__conn_arm_idle(c);
	(void)cfl__conn_flush(c);
	cfl__conn_kick(c); /* chunks are read from the loop, not from inside this call */
	return 0;
}

static struct out_stream *new_stream(struct cfl_conn *c, const struct cfl_frame *head,
                                     uint64_t body_len, int has_fn, cfl_conn_done_fn done_fn,
                                     int *rc)
{
	struct out_stream *s;

	*rc = check_send(c, head, 0);
	if (*rc != 0)
		return NULL;
	*rc = CFL_EINVAL;
	if (!has_fn || done_fn == NULL || body_len > INT64_MAX)
		return NULL;
	*rc = CFL_ENOMEM;
	s = calloc(1, sizeof(*s));
	if (s != NULL)
		s->done = done_fn;
	return s;
}

int cfl_conn_send_stream(struct cfl_conn *c, const struct cfl_frame *head, uint64_t body_len,
                         cfl_conn_read_fn read_fn, void *src_arg, cfl_conn_done_fn done_fn)
{
	int rc;
	struct out_stream *s = new_stream(c, head, body_len, read_fn != NULL, done_fn, &rc);

	if (s == NULL)
		return rc;
	s->read = read_fn;
	s->arg = src_arg;
	return start_stream(c, head, body_len, s);
}

int cfl_conn_send_lent(struct cfl_conn *c, const struct cfl_frame *head, uint64_t body_len,
                       cfl_conn_lend_fn lend_fn, void *src_arg, cfl_conn_done_fn done_fn)
{
	int rc;
	struct out_stream *s = new_stream(c, head, body_len, lend_fn != NULL, done_fn, &rc);

	if (s == NULL)
		return rc;
	s->lend = lend_fn;
	s->arg = src_arg;
	return start_stream(c, head, body_len, s);
}

/* --- streams going out ------------------------------------------------------------------- */

static void send_cancel(struct cfl_conn *c, uint64_t stream_id)
{
	struct cfl_frame f;

	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_CANCEL;
	f.ref = stream_id;
	if (cfl__conn_queue_frame(c, &f, 1) == 0)
		(void)cfl__conn_flush(c);
}

/* A half-written lent frame outlives its stream (the byte stream needs the rest of it): it
 * takes a copy of the lent bytes, which the application may free once done_fn has run. */
static void own_ext(struct cfl_conn *c, struct wbuf *w)
{
	if (w->ext == NULL || w->ext_own != NULL)
		return;
	w->ext_own = malloc(w->ext_len ? w->ext_len : 1);
	if (w->ext_own == NULL) {
		cfl__conn_fail(c, CFL_ENOMEM, 0, "out of memory for an abandoned stream's frame");
		return;
	}
	memcpy(w->ext_own, w->ext, w->ext_len);
	w->ext = w->ext_own;
}

/* Ends an outgoing stream with `status`: its buffers not yet started leave the queue (one
 * half-written must finish, or the byte stream would break). */
void cfl__conn_abort_out(struct cfl_conn *c, struct out_stream *s, int status, int tell_peer)
{
	struct wbuf **pp = &c->wq_head, *w, *prev = NULL;

	if (s->finished)
		return;
	s->finished = 1;
	s->status = status;
	while ((w = *pp) != NULL) {
		if (w->owner != s) {
			prev = w;
			pp = &w->next;
			continue;
		}
		assert(s->in_queue > 0);
		s->in_queue--;
		if (w == c->wq_head && w->off > 0) {
			w->owner = NULL;
			own_ext(c, w);
			prev = w;
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		if (c->wq_tail == w)
			c->wq_tail = prev;
		c->queued -= wbuf_left(w);
		if (w->big)
			c->big_queued--;
		recycle(c, w);
	}
	if (tell_peer && cfl__conn_alive(c))
		send_cancel(c, s->id);
	cfl__conn_kick(c);
}

void cfl__conn_abort_outgoing(struct cfl_conn *c, int status)
{
	struct out_stream *s;

	for (s = c->outs; s != NULL; s = s->next)
		cfl__conn_abort_out(c, s, status, 0);
}

struct out_stream *cfl__conn_find_out(struct cfl_conn *c, uint64_t id)
{
	struct out_stream *s;

	for (s = c->outs; s != NULL; s = s->next)
		if (s->id == id && !s->finished)
			return s;
	return NULL;
}

/* The next stream that may send, round robin (streams rotate to the tail after a chunk). */
static struct out_stream *next_ready(struct cfl_conn *c)
{
	struct out_stream *s;

	for (s = c->outs; s != NULL; s = s->next)
		if (!s->finished && s->left > 0 && s->credit > 0)
			return s;
	return NULL;
}

static void rotate(struct cfl_conn *c, struct out_stream *s)
{
	struct out_stream **pp = &c->outs;

	while (*pp != NULL && *pp != s)
		pp = &(*pp)->next;
	if (*pp == NULL || s->next == NULL)
		return;
	*pp = s->next;
	add_stream(c, s);
}

/* Queues a chunk buffer made for `s` (its frame's n body bytes) and rotates the streams. */
static int queue_chunk(struct cfl_conn *c, struct out_stream *s, struct wbuf *w, size_t n)
{
	patch_id(w->data, cfl_conn_next_id(c));
	w->owner = s;
	w->last = s->left == n;
	w->big = 1;
	s->left -= n;
	s->credit -= (int64_t)n;
	enqueue(c, w);
	c->stats.frames_out++;
	rotate(c, s);
	return 0;
}

/* Fills a lent chunk of at most `n` body bytes: the first ones copied after the header (hl
 * bytes, in place) up to one TLS record, then at most one lent piece. Returns the body bytes,
 * or a negative code. */
static int lend_chunk(struct out_stream *s, struct wbuf *w, size_t hl, size_t n)
{
	size_t got = 0, room = w->cap - hl, take;
	const uint8_t *p;
	int r;

	while (got < n) {
		r = lend(s, n - got, &p);
		if (r < 0)
			return r;
		take = (size_t)r < room ? (size_t)r : room;
		memcpy(w->data + hl + got, p, take);
		room -= take;
		got += take;
		if (take < (size_t)r) {
			w->ext = p + take;
			w->ext_len = (size_t)r - take;
			got += w->ext_len;
			break;
		}
	}
	w->len = hl + (got - w->ext_len);
	return (int)got;
}

/* Queues the next CHUNK of a lent stream. 0, or -1 if nothing was queued. */
static int make_lent_chunk(struct cfl_conn *c, struct out_stream *s, size_t n)
{
	struct cfl_frame f;
	struct wbuf *w = wbuf_new(LENT_BUF);
	int hl, got;

	if (w == NULL) {
		cfl__conn_fail(c, CFL_ENOMEM, 0, "out of memory for a stream chunk");
		return -1;
	}
	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_CHUNK;
	f.ref = s->id;
	hl = cfl_frame_encode_head(w->data, w->cap, &f, n);
	got = hl < 0 ? hl : lend_chunk(s, w, (size_t)hl, n);
	if (!cfl__conn_alive(c) || c->shut_wr || s->finished || got < 0) {
		wbuf_free(w);
		if (got < 0 && cfl__conn_alive(c))
			cfl__conn_abort_out(c, s, got, 1);
		return -1;
	}
	f.flags = s->left > (uint64_t)got ? CFL_FRAME_F_MORE : 0;
	(void)cfl_frame_encode_head(w->data, w->cap, &f, (size_t)got); /* the same length */
	return queue_chunk(c, s, w, (size_t)got);
}

/* Queues the next CHUNK of `s`, read straight into its buffer. 0, or -1 if nothing was
 * queued. */
static int make_chunk(struct cfl_conn *c, struct out_stream *s)
{
	size_t n = CFL_FRAME_CHUNK;
	struct cfl_frame f;
	struct wbuf *w;
	int hl, rc;

	if (s->left < n)
		n = (size_t)s->left;
	if ((uint64_t)s->credit < n)
		n = (size_t)s->credit;
	if (s->lend != NULL)
		return make_lent_chunk(c, s, n);
	w = c->spare != NULL ? c->spare : wbuf_new(CHUNK_BUF);
	c->spare = NULL;
	if (w == NULL) {
		cfl__conn_fail(c, CFL_ENOMEM, 0, "out of memory for a stream chunk");
		return -1;
	}
	memset(w, 0, sizeof(*w));
	w->cap = CHUNK_BUF;
	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_CHUNK;
	f.flags = s->left > n ? CFL_FRAME_F_MORE : 0;
	f.ref = s->id;
	hl = cfl_frame_encode_head(w->data, w->cap, &f, n);
	rc = hl < 0 ? hl : pull(s, w->data + hl, n);
	/* The read function may have closed the connection or cancelled the stream. */
	if (!cfl__conn_alive(c) || c->shut_wr || s->finished || rc != 0) {
		recycle(c, w);
		if (rc != 0 && cfl__conn_alive(c))
			cfl__conn_abort_out(c, s, rc, 1);
		return -1;
	}
	w->len = (size_t)hl + n;
	return queue_chunk(c, s, w, n);
}

static int fill(struct cfl_conn *c)
{
	struct out_stream *s;
	int made = 0;

	while (cfl__conn_alive(c) && !c->shut_wr && c->big_queued < BIG_MAX &&
	       (s = next_ready(c)) != NULL) {
		if (make_chunk(c, s) == 0)
			made++;
	}
	return made;
}

/* Calls done_fn for the streams that ended; from the loop only. */
void cfl__conn_notify(struct cfl_conn *c)
{
	struct out_stream **pp = &c->outs, *s, *ended = NULL, **tail = &ended;

	/* Detach first: a done function may send, cancel or free. */
	while ((s = *pp) != NULL) {
		if (s->finished && s->in_queue == 0) {
			*pp = s->next;
			s->next = NULL;
			*tail = s;
			tail = &s->next;
		} else {
			pp = &s->next;
		}
	}
	if (c->outs == NULL && c->spare != NULL) {
		free(c->spare);
		c->spare = NULL;
	}
	while ((s = ended) != NULL) {
		ended = s->next;
		s->done(c, s->id, s->status, s->arg);
		free(s);
	}
}

void cfl__conn_service(struct cfl_conn *c)
{
	unsigned before;
	int made;

	if (!cfl__conn_alive(c))
		return;
	/* Until the socket pushes back (the queue stays full: the write watch calls again) or no
	 * stream can send (a WINDOW will call again). A full queue that the flush emptied is
	 * progress too, even though fill() made nothing on that turn. */
	do {
		made = fill(c);
		before = c->big_queued;
		if (cfl__conn_flush(c) != 0 || !cfl__conn_alive(c))
			break;
	} while ((made > 0 || c->big_queued < before) && c->big_queued < BIG_MAX);
	cfl__conn_notify(c);
}
