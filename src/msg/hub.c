/* Messaging hub: peers, request/reply matching with timeouts, topic dispatch, stream sinks and
 * routing between cells. Sits on cfl/conn.h; knows nothing of TLS or sockets. */
#include "cfl/msg.h"

#include "cfl/log.h"
#include "cfl/proto.h"
#include "hub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cfl_frame_header_str(const struct cfl_frame *f, const char *key, char *buf, size_t size)
{
	const struct cfl_header *h = cfl_frame_header(f, key);

	if (size > 0)
		buf[0] = '\0';
	if (h == NULL)
		return CFL_ENOENT;
	if (h->val_len >= size)
		return CFL_ETOOBIG;
	memcpy(buf, h->val, h->val_len);
	buf[h->val_len] = '\0';
	return 0;
}

int cfl_msg_hub_new(struct cfl_loop *loop, const char *cell, struct cfl_msg_hub **out,
                    struct cfl_err *e)
{
	struct cfl_msg_hub *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	h->kind = KIND_HUB;
	h->loop = loop;
	snprintf(h->cell, sizeof(h->cell), "%s", cell);
	*out = h;
	return 0;
}

static void peer_drop(struct cfl_peer *p);

void cfl_msg_hub_free(struct cfl_msg_hub *h)
{
	if (h == NULL)
		return;
	h->freeing = 1;
	while (h->peers != NULL)
		peer_drop(h->peers);
	free(h->buckets);
	free(h);
}

const char *cfl_msg_hub_cell(const struct cfl_msg_hub *h)
{
	return h->cell;
}

struct cfl_loop *cfl_msg_hub_loop(const struct cfl_msg_hub *h)
{
	return h->loop;
}

int cfl_msg_hub_handle(struct cfl_msg_hub *h, const char *topic, cfl_msg_handler fn, void *arg)
{
	for (size_t i = 0; i < h->n_topics; i++) {
		if (strcmp(h->topics[i].name, topic) == 0)
			return CFL_EEXIST;
	}
	if (h->n_topics >= MAX_TOPICS || strlen(topic) >= sizeof(h->topics[0].name))
		return CFL_ETOOBIG;
	snprintf(h->topics[h->n_topics].name, sizeof(h->topics[0].name), "%s", topic);
	h->topics[h->n_topics].fn = fn;
	h->topics[h->n_topics].arg = arg;
	h->n_topics++;
	return 0;
}

void cfl_msg_hub_on_peer(struct cfl_msg_hub *h, cfl_msg_peer_fn up, cfl_msg_peer_fn down, void *arg)
{
	h->up = up;
	h->down = down;
	h->peer_arg = arg;
}

void cfl_msg_hub_foreach(struct cfl_msg_hub *h, void (*fn)(struct cfl_peer *p, void *arg),
                         void *arg)
{
	struct cfl_peer *next;

	for (struct cfl_peer *p = h->peers; p != NULL; p = next) {
		next = p->next;
		fn(p, arg);
	}
}

size_t cfl_msg_hub_peers(const struct cfl_msg_hub *h)
{
	return h->n_peers;
}

void cfl_msg_hub_close_all(struct cfl_msg_hub *h, const char *reason)
{
	for (struct cfl_peer *p = h->peers; p != NULL; p = p->next)
		cfl_conn_close(p->conn, reason);
}

/* --- peers ------------------------------------------------------------------------------- */

static struct cfl_peer *peer_new(struct cfl_msg_hub *h, struct cfl_conn *c)
{
	struct cfl_peer *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->kind = KIND_PEER;
	p->name = "";
	p->hub = h;
	p->conn = c;
	p->next = h->peers;
	if (h->peers != NULL)
		h->peers->prev = p;
	h->peers = p;
	h->n_peers++;
	p->serial = ++h->serials;
	cfl_conn_set_user(c, p);
	return p;
}

/* The peer of a connection, made on first sight (accepted connections start with the hub). */
static struct cfl_peer *peer_of(struct cfl_conn *c, void *user)
{
	uint32_t kind = *(const uint32_t *)user;

	if (kind == KIND_PEER)
		return user;
	return peer_new(user, c);
}

uint64_t cfl_peer_serial(const struct cfl_peer *p)
{
	return p->serial;
}

const char *cfl_peer_name(const struct cfl_peer *p)
{
	return p->name;
}

struct cfl_conn *cfl_peer_conn(const struct cfl_peer *p)
{
	return p->conn;
}

struct cfl_msg_hub *cfl_peer_hub(const struct cfl_peer *p)
{
	return p->hub;
}

void *cfl_peer_user(const struct cfl_peer *p)
{
	return p->user;
}

void cfl_peer_set_user(struct cfl_peer *p, void *user)
{
	p->user = user;
}

/* --- pending requests -------------------------------------------------------------------- */

void cfl__pending_unlink(struct pending *q)
{
	struct pending **pp;

	if (q->peer == NULL)
		return;
	for (pp = &q->peer->pending; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	}
	q->peer = NULL;
}

/* Runs the reply function once and frees the request unless its stream is still sending. */
static void pending_finish(struct pending *q, struct cfl_peer *p, int status, const char *reason,
                           const struct cfl_frame *f, int more, struct cfl_msg_sink *sink)
{
	if (q->timer != 0)
		cfl_loop_timer_cancel(p->hub->loop, q->timer);
	q->timer = 0;
	cfl__pending_unlink(q);
	/* A reply ends the request: a body still streaming out (the peer answered before reading
	 * all of it, e.g. "no such job") stops here, before the reply function may release the
	 * source it reads from. Its done function comes later, from the loop, and frees q. */
	if (q->sending && p->conn != NULL)
		(void)cfl_conn_cancel(p->conn, q->id);
	if (!q->finished) {
		q->finished = 1;
		if (!p->hub->freeing)
			q->fn(p, status, reason, f, more, sink, q->arg);
	}
	if (!q->sending)
		free(q);
}

static void on_request_timeout(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct pending *q = arg;
	struct cfl_peer *p = q->peer;

	(void)loop;
	(void)id;
	q->timer = 0;
	if (p != NULL)
		pending_finish(q, p, CFL_ETIMEDOUT, "no reply in time", NULL, 0, NULL);
}

static struct pending *pending_find(struct cfl_peer *p, uint64_t id)
{
	for (struct pending *q = p->pending; q != NULL; q = q->next) {
		if (q->id == id)
			return q;
	}
	return NULL;
}

struct pending *cfl__pending_new(struct cfl_peer *p, uint64_t timeout_ms, cfl_msg_reply_fn fn,
                                 void *arg)
{
	struct pending *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->peer = p;
	q->id = cfl_conn_next_id(p->conn);
	q->timeout_ms = timeout_ms != 0 ? timeout_ms : CFL_MSG_DEFAULT_TIMEOUT_MS;
	q->fn = fn;
	q->arg = arg;
	q->next = p->pending;
	p->pending = q;
	return q;
}

void cfl__pending_arm(struct pending *q)
{
	q->timer = cfl_loop_timer_add(q->peer->hub->loop, q->timeout_ms, on_request_timeout, q);
}

/* --- sending ------------------------------------------------------------------------------ */

/* Builds a frame with topic/src headers added in front of the caller's. */
static int build(struct cfl_frame *f, struct cfl_peer *p, int type, const char *topic,
                 const struct cfl_header *hdrs, size_t n)
{
	memset(f, 0, sizeof(*f));
	if (n > MAX_OUT_HDRS)
		return CFL_ETOOBIG;
	f->type = (uint8_t)type;
	if (topic != NULL)
		f->headers[f->n_headers++] = CFL_HDR(CFL_KEY_TOPIC, topic);
	if (type != CFL_FRAME_T_REPLY)
		f->headers[f->n_headers++] = CFL_HDR(CFL_KEY_SRC, p->hub->cell);
	for (size_t i = 0; i < p->n_auth; i++)
		f->headers[f->n_headers++] = p->auth[i];
	for (size_t i = 0; i < n; i++)
		f->headers[f->n_headers++] = hdrs[i];
	return 0;
}

int cfl_peer_set_auth(struct cfl_peer *p, const char *const keys[], const char *const vals[],
                      size_t n)
{
	size_t total = 0, off = 0;
	char *buf;

	if (n > CFL_MSG_AUTH_HDRS)
		return CFL_ETOOBIG;
	for (size_t i = 0; i < n; i++) {
		if (strlen(vals[i]) >= CFL_MSG_AUTH_VAL_MAX)
			return CFL_ETOOBIG;
		total += strlen(vals[i]) + 1;
	}
	if ((buf = malloc(total ? total : 1)) == NULL)
		return CFL_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t vl = strlen(vals[i]);

		memcpy(buf + off, vals[i], vl + 1);
		p->auth[i] = (struct cfl_header){keys[i], strlen(keys[i]),
		                                 (const uint8_t *)buf + off, vl};
		off += vl + 1;
	}
	free(p->auth_buf);
	p->auth_buf = buf;
	p->n_auth = n;
	return 0;
}

void cfl_msg_hub_set_gate(struct cfl_msg_hub *h, cfl_msg_gate_fn fn, void *arg)
{
	h->gate = fn;
	h->gate_arg = arg;
}

int cfl_msg_hub_exempt(struct cfl_msg_hub *h, const char *topic)
{
	for (size_t i = 0; i < h->n_topics; i++) {
		if (strcmp(h->topics[i].name, topic) == 0) {
			h->topics[i].exempt = 1;
			return 0;
		}
	}
	return CFL_ENOENT;
}

int cfl_msg_hub_route(struct cfl_msg_hub *h, const char *topic)
{
	if (topic == NULL || topic[0] == '\0' || strlen(topic) >= sizeof(h->routed[0]))
		return CFL_EINVAL;
	for (size_t i = 0; i < h->n_routed; i++)
		if (strcmp(h->routed[i], topic) == 0)
			return 0;
	if (h->n_routed == MAX_ROUTED)
		return CFL_ETOOBIG;
	memcpy(h->routed[h->n_routed++], topic, strlen(topic) + 1);
	return 0;
}

/* Whether `f` is addressed to a topic of this cell that its owner exempted from the gate. The
 * topic is compared in place; most messages name no exempt topic and end there. */
static int exempt_topic(const struct cfl_msg_hub *h, const struct cfl_frame *f)
{
	const struct cfl_header *t;

	if (f->type == CFL_FRAME_T_REPLY || (t = cfl_frame_header(f, CFL_KEY_TOPIC)) == NULL ||
	    t->val_len >= sizeof(h->topics[0].name))
		return 0;
	for (size_t i = 0; i < h->n_topics; i++) {
		const char *name = h->topics[i].name;

		if (!h->topics[i].exempt || memcmp(name, t->val, t->val_len) != 0 ||
		    name[t->val_len] != '\0')
			continue;
		/* Only for the hub itself: a topic addressed to another cell is routed like any
		 * other message, so it must pass the gate. */
		return cfl_frame_header(f, CFL_KEY_DST) == NULL;
	}
	return 0;
}

static int req_read(void *src, uint8_t *buf, size_t len)
{
	struct pending *q = src;

	return q->read_fn(q->src, buf, len);
}

static int req_lend(void *src, uint64_t off, size_t len, const uint8_t **p)
{
	struct pending *q = src;

	return q->lend_fn(q->src, off, len, p);
}

static void req_done(struct cfl_conn *c, uint64_t id, int status, void *src)
{
	struct pending *q = src;

	(void)c;
	(void)id;
	q->sending = 0;
	if (!q->finished && q->peer != NULL && q->sent_fn != NULL)
		q->sent_fn(q->src, status);
	if (q->finished) {
		free(q);
	} else if (q->peer == NULL) {
		free(q); /* cannot happen: the peer reports finished first */
	} else if (status != 0) {
		pending_finish(q, q->peer, status, "the request body could not be sent", NULL, 0,
		               NULL);
	} else {
		cfl__pending_arm(q);
	}
}

/* A body in memory goes in one frame, copied into the send queue now, and the reply timeout
 * starts at once; a body from a read function streams, and the timeout starts in req_done. */
int cfl_peer_request_stream(struct cfl_peer *p, const struct cfl_request *req)
{
	struct cfl_frame f;
	struct pending *q;
	int rc, streamed = req->read != NULL || req->lend != NULL;

	if (req->topic == NULL || req->reply == NULL ||
	    (req->body != NULL) + (req->read != NULL) + (req->lend != NULL) > 1 ||
	    (req->body_len > 0 && req->body == NULL && !streamed))
		return CFL_EINVAL;
	if (!streamed && (size_t)req->body_len != req->body_len)
		return CFL_ETOOBIG;
	rc = build(&f, p, CFL_FRAME_T_REQUEST, req->topic, req->hdrs, req->n_hdrs);
	if (rc != 0)
		return rc;
	q = cfl__pending_new(p, req->timeout_ms, req->reply, req->arg);
	if (q == NULL)
		return CFL_ENOMEM;
	f.id = q->id;
	if (streamed) {
		q->read_fn = req->read;
		q->lend_fn = req->lend;
		q->sent_fn = req->sent;
		q->src = req->src;
		q->sending = 1;
		rc = req->lend != NULL
		             ? cfl_conn_send_lent(p->conn, &f, req->body_len, req_lend, q, req_done)
		             : cfl_conn_send_stream(p->conn, &f, req->body_len, req_read, q,
		                                    req_done);
	} else {
		f.body = req->body;
		f.body_len = (size_t)req->body_len;
		rc = cfl_conn_send(p->conn, &f);
	}
	if (rc != 0) {
		cfl__pending_unlink(q);
		free(q);
		return rc;
	}
	if (!streamed)
		cfl__pending_arm(q);
	return 0;
}

int cfl_peer_request(struct cfl_peer *p, const char *topic, const struct cfl_header *hdrs,
                     size_t n_hdrs, const void *body, size_t len, uint64_t timeout_ms,
                     cfl_msg_reply_fn fn, void *arg)
{
	const struct cfl_request req = {.topic = topic,
	                                .hdrs = hdrs,
	                                .n_hdrs = n_hdrs,
	                                .body = body,
	                                .body_len = len,
	                                .timeout_ms = timeout_ms,
	                                .reply = fn,
	                                .arg = arg};

	return cfl_peer_request_stream(p, &req);
}

int cfl_peer_send(struct cfl_peer *p, const char *topic, const struct cfl_header *hdrs,
                  size_t n_hdrs, const void *body, size_t len)
{
	struct cfl_frame f;
	int rc = build(&f, p, CFL_FRAME_T_ONEWAY, topic, hdrs, n_hdrs);

	if (rc != 0)
		return rc;
	f.body = body;
	f.body_len = len;
	return cfl_conn_send(p->conn, &f);
}

int cfl_peer_reply(struct cfl_peer *p, uint64_t req_id, const struct cfl_header *hdrs,
                   size_t n_hdrs, const void *body, size_t len)
{
	struct cfl_frame f;
	int rc = build(&f, p, CFL_FRAME_T_REPLY, NULL, hdrs, n_hdrs);

	if (rc != 0)
		return rc;
	f.ref = req_id;
	f.body = body;
	f.body_len = len;
	return cfl_conn_send(p->conn, &f);
}

int cfl_peer_reply_stream(struct cfl_peer *p, uint64_t req_id, const struct cfl_header *hdrs,
                          size_t n_hdrs, uint64_t body_len, cfl_conn_read_fn read_fn, void *src,
                          cfl_conn_done_fn done)
{
	struct cfl_frame f;
	int rc = build(&f, p, CFL_FRAME_T_REPLY, NULL, hdrs, n_hdrs);

	if (rc != 0)
		return rc;
	f.ref = req_id;
	return cfl_conn_send_stream(p->conn, &f, body_len, read_fn, src, done);
}

int cfl_peer_reply_error(struct cfl_peer *p, uint64_t req_id, const char *status,
                         const char *reason)
{
	struct cfl_header h = CFL_HDR(CFL_KEY_STATUS, status);
	struct cfl_frame f;
	int rc = build(&f, p, CFL_FRAME_T_REPLY, NULL, &h, 1);

	if (rc != 0)
		return rc;
	f.flags = CFL_FRAME_F_ERROR;
	f.ref = req_id;
	f.body = (const uint8_t *)reason;
	f.body_len = reason != NULL ? strlen(reason) : 0;
	return cfl_conn_send(p->conn, &f);
}

/* --- receiving ---------------------------------------------------------------------------- */

static void discard_data(void *st, const uint8_t *d, size_t n)
{
	(void)st;
	(void)d;
	(void)n;
}

static void discard_end(void *st, int status, const char *reason)
{
	(void)st;
	(void)status;
	(void)reason;
}

/* Keeps the sink for the rest of stream `id` (a drop sink when the receiver set none). */
static void stream_add(struct cfl_peer *p, uint64_t id, const struct cfl_msg_sink *sink)
{
	struct instream *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		if (sink->end != NULL)
			sink->end(sink->st, CFL_ENOMEM, "out of memory");
		cfl_conn_cancel(p->conn, id);
		return;
	}
	s->id = id;
	s->sink = *sink;
	if (s->sink.data == NULL)
		s->sink.data = discard_data;
	if (s->sink.end == NULL)
		s->sink.end = discard_end;
	s->next = p->streams;
	p->streams = s;
}

static struct instream *stream_take(struct cfl_peer *p, uint64_t id, int remove)
{
	for (struct instream **pp = &p->streams; *pp != NULL; pp = &(*pp)->next) {
		struct instream *s = *pp;

		if (s->id != id)
			continue;
		if (remove)
			*pp = s->next;
		return s;
	}
	return NULL;
}

static void on_reply(struct cfl_peer *p, const struct cfl_frame *f, int more)
{
	struct pending *q = pending_find(p, f->ref);
	struct cfl_msg_sink sink = {0};
	char reason[512], status[64];

	if (q == NULL) {
		CFL_DEBUG("%s: reply to unknown or expired request %llu dropped", p->name,
		          (unsigned long long)f->ref);
		if (more)
			cfl_conn_cancel(p->conn, f->id);
		return;
	}
	if (f->flags & CFL_FRAME_F_ERROR) {
		size_t n = f->body_len < sizeof(reason) - 1 ? f->body_len : sizeof(reason) - 1;

		cfl_frame_header_str(f, CFL_KEY_STATUS, status, sizeof(status));
		memcpy(reason, f->body, n);
		reason[n] = '\0';
		CFL_DEBUG("%s: request %llu failed: %s: %s", p->name, (unsigned long long)f->ref,
		          status, reason);
		pending_finish(q, p, CFL_EPROTO, reason[0] ? reason : status, f, more, &sink);
	} else {
		pending_finish(q, p, 0, NULL, f, more, &sink);
	}
	if (more)
		stream_add(p, f->id, &sink);
}

static void on_request(struct cfl_peer *p, const struct cfl_frame *f, int more)
{
	struct cfl_msg_sink sink = {0};
	char topic[64], dst[CFL_MSG_NAME_MAX];

	if (cfl_frame_header_str(f, CFL_KEY_DST, dst, sizeof(dst)) == 0 && dst[0] != '\0' &&
	    strcmp(dst, p->hub->cell) != 0) {
		cfl__msg_route(p, f, more, dst);
		return;
	}
	cfl_frame_header_str(f, CFL_KEY_TOPIC, topic, sizeof(topic));
	for (size_t i = 0; i < p->hub->n_topics; i++) {
		struct topic *t = &p->hub->topics[i];

		if (strcmp(t->name, topic) != 0)
			continue;
		t->fn(p, f, more, &sink, t->arg);
		/* A handler that took no sink refused the body: the sender is told to stop, rather
		 * than have the rest sent for nothing. */
		if (more && sink.data == NULL && sink.end == NULL)
			cfl_conn_cancel(p->conn, f->id);
		else if (more)
			stream_add(p, f->id, &sink);
		return;
	}
	CFL_WARN("%s: no handler for topic '%s'", p->name[0] ? p->name : "peer", topic);
	if (f->type == CFL_FRAME_T_REQUEST)
		cfl_peer_reply_error(p, f->id, "no_such_topic", "no handler for this topic");
	if (more)
		cfl_conn_cancel(p->conn, f->id);
}

static void cb_open(struct cfl_conn *c, void *user)
{
	struct cfl_peer *p = peer_of(c, user);

	if (p == NULL) {
		cfl_conn_close(c, "out of memory");
		return;
	}
	p->up = 1;
	if (p->hub->up != NULL)
		p->hub->up(p, 0, NULL, p->hub->peer_arg);
}

static void cb_msg(struct cfl_conn *c, const struct cfl_frame *f, int more, void *user)
{
	struct cfl_peer *p = peer_of(c, user);

	if (p == NULL)
		return;
	if (p->hub->gate != NULL && !exempt_topic(p->hub, f)) {
		char why[256] = "";
		int rc = p->hub->gate(p, f, why, sizeof(why), p->hub->gate_arg);

		if (rc != 0) {
			/* Dropped: a request learns why; nothing of it reaches a handler. */
			if (f->type == CFL_FRAME_T_REQUEST)
				cfl_peer_reply_error(p, f->id, "unauthenticated", why);
			if (more)
				cfl_conn_cancel(c, f->id);
			return;
		}
	}
	if (f->type == CFL_FRAME_T_REPLY)
		on_reply(p, f, more);
	else
		on_request(p, f, more);
}

static void cb_chunk(struct cfl_conn *c, uint64_t id, const uint8_t *data, size_t len, int last,
                     void *user)
{
	struct cfl_peer *p = peer_of(c, user);
	struct instream *s = p != NULL ? stream_take(p, id, last) : NULL;

	if (s == NULL)
		return;
	if (len > 0)
		s->sink.data(s->sink.st, data, len);
	if (last) {
		s->sink.end(s->sink.st, 0, NULL);
		free(s);
	}
}

static void cb_abort(struct cfl_conn *c, uint64_t id, int code, const char *reason, void *user)
{
	struct cfl_peer *p = peer_of(c, user);
	struct instream *s = p != NULL ? stream_take(p, id, 1) : NULL;

	if (s == NULL)
		return;
	s->sink.end(s->sink.st, code, reason);
	free(s);
}

/* Ends the peer's streams and requests and unlinks it; the caller frees it. */
static void peer_end(struct cfl_peer *p, int code, const char *reason)
{
	struct cfl_msg_hub *h = p->hub;

	while (p->streams != NULL) {
		struct instream *s = p->streams;

		p->streams = s->next;
		if (!h->freeing)
			s->sink.end(s->sink.st, CFL_ECLOSED, reason);
		free(s);
	}
	while (p->pending != NULL)
		pending_finish(p->pending, p, CFL_ECLOSED, reason ? reason : "connection closed",
		               NULL, 0, NULL);
	if (h->down != NULL)
		h->down(p, code, reason, h->peer_arg);
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		h->peers = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	h->n_peers--;
	cfl__hub_unindex(h, p);
}

static void peer_free(struct cfl_peer *p)
{
	if (p->name[0] != '\0')
		free(p->name);
	free(p->auth_buf);
	free(p);
}

/* Hub teardown: the connection goes without callbacks (its streams' done functions still run
 * and find their requests finished). */
static void peer_drop(struct cfl_peer *p)
{
	struct cfl_conn *c = p->conn;

	peer_end(p, CFL_ECLOSED, "shutting down");
	cfl_conn_free(c);
	peer_free(p);
}

static void cb_close(struct cfl_conn *c, int code, const char *reason, void *user)
{
	struct cfl_msg_hub *h;

	(void)c;
	if (*(const uint32_t *)user != KIND_PEER) {
		h = user; /* closed before it ever opened: no peer was made */
		if (h->down != NULL)
			h->down(NULL, code, reason, h->peer_arg);
		return;
	}
	peer_end(user, code, reason);
	peer_free(user);
}

struct cfl_conn_opts cfl_msg_hub_conn_opts(struct cfl_msg_hub *h, struct cfl_tls_ctx *tls)
{
	struct cfl_conn_opts o;

	memset(&o, 0, sizeof(o));
	o.tls = tls;
	o.user = h;
	o.cb.on_open = cb_open;
	o.cb.on_msg = cb_msg;
	o.cb.on_chunk = cb_chunk;
	o.cb.on_abort = cb_abort;
	o.cb.on_close = cb_close;
	return o;
}
