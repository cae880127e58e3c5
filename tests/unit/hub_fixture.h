/* Shared fixture of the messaging hub tests (test_hub_dispatch.c, test_hub_peers.c;
 * src/msg/hub.c, route.c): a server hub and client hubs in cells talking over real clear
 * connections on loopback, all driven by one loop in this process; what their peer callbacks
 * and topic handlers saw; streamed bodies of a known pattern; the group setup and teardown
 * (no file descriptor leaked).
 *
 * Everything is static inline so that each test program takes what it uses. */
#ifndef CFL_TEST_HUB_FIXTURE_H
#define CFL_TEST_HUB_FIXTURE_H

#include "msg_fixture.h"

#include "cfl/conn.h"
#include "cfl/proto.h"
#include "msg/hub_int.h"

#define MAX_CLIENTS 3
#define BIG_BODY    (2u * CFL_FRAME_CHUNK + 12345) /* a streamed body: three chunks */

/* One hub and what its peer callbacks saw. */
struct side {
	struct cfl_msg_hub *hub;
	struct cfl_peer *peers[8]; /* in the order they came up */
	int n_up, n_down, down_null;
	int down_code;
	char down_reason[512];
};

/* What a topic handler saw, and how it answers. */
/* ANS_ECHO_TOPIC: a reply that also carries a `topic` header, as a hostile peer may send. */
enum answer { ANS_ECHO, ANS_ECHO_TOPIC, ANS_NONE, ANS_ERROR, ANS_COUNT_STREAM };

struct rec {
	enum answer answer;
	const char *err_status, *err_reason; /* ANS_ERROR */
	int calls;
	uint8_t type;
	uint64_t id;
	int more;
	struct cfl_peer *peer;
	char topic[64], src[64], dst[64], x[64], token[64], body[256];
	/* ANS_COUNT_STREAM: the body's bytes, checked against the pattern as they come */
	uint64_t got;
	int bad_byte, ended, end_status;
};

struct net {
	struct cfl_loop *loop;
	struct cfl_listener *l;
	int port;
	struct side srv, cli[MAX_CLIENTS];
	int n_cli;
};

/* --- peers ----------------------------------------------------------------------------------- */

static inline void side_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct side *s = arg;

	(void)code;
	(void)reason;
	assert_true(s->n_up < 8);
	s->peers[s->n_up++] = p;
	/* As a logged-in peer: big frames and streams allowed. */
	assert_int_equal(cfl_conn_set_max_payload(cfl_peer_conn(p), CFL_FRAME_MAX_PAYLOAD), 0);
}

static inline void side_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct side *s = arg;

	s->n_down++;
	s->down_null += p == NULL;
	s->down_code = code;
	snprintf(s->down_reason, sizeof(s->down_reason), "%s", reason != NULL ? reason : "");
}

static inline void side_new(struct net *n, struct side *s, const char *cell)
{
	struct cfl_err e = {0};

	memset(s, 0, sizeof(*s));
	assert_int_equal(cfl_msg_hub_new(n->loop, cell, &s->hub, &e), 0);
	cfl_msg_hub_on_peer(s->hub, side_up, side_down, s);
}

/* Dials the server from a new client hub of cell `cell`; both ends up before it returns. */
static inline struct side *net_dial(struct net *n, const char *cell)
{
	struct side *c = &n->cli[n->n_cli];
	struct cfl_conn_opts o;
	struct cfl_conn *conn;
	struct cfl_err e = {0};

	assert_true(n->n_cli < MAX_CLIENTS);
	side_new(n, c, cell);
	o = cfl_msg_hub_conn_opts(c->hub, NULL);
	assert_int_equal(cfl_conn_dial(n->loop, "127.0.0.1", n->port, &o, &conn, &e), 0);
	assert_true(wait_for(n->loop, &c->n_up, 1, WAIT_MS));
	assert_true(wait_for(n->loop, &n->srv.n_up, n->n_cli + 1, WAIT_MS));
	n->n_cli++;
	return c;
}

static inline void net_start(struct net *n)
{
	struct cfl_conn_opts o;
	struct cfl_err e = {0};

	memset(n, 0, sizeof(*n));
	log_capture();
	assert_int_equal(cfl_loop_new(&n->loop, &e), 0);
	side_new(n, &n->srv, "server");
	o = cfl_msg_hub_conn_opts(n->srv.hub, NULL);
	if (cfl_listener_new(n->loop, "127.0.0.1", 0, &o, &n->l, &e) != 0)
		fail_msg("listener: %s", e.msg);
	n->port = cfl_listener_port(n->l);
}

static inline void net_stop(struct net *n)
{
	for (int i = 0; i < n->n_cli; i++)
		cfl_msg_hub_free(n->cli[i].hub);
	cfl_msg_hub_free(n->srv.hub);
	cfl_listener_free(n->l);
	cfl_loop_free(n->loop);
}

/* The server's peer of client i. */
static inline struct cfl_peer *srv_peer(struct net *n, int i)
{
	return n->srv.peers[i];
}

static inline struct cfl_peer *cli_peer(struct net *n, int i)
{
	return n->cli[i].peers[0];
}

/* --- handlers -------------------------------------------------------------------------------- */

static inline void copy_hdr(const struct cfl_frame *f, const char *key, char *buf, size_t size)
{
	cfl_frame_header_str(f, key, buf, size);
}

static inline uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i % 251);
}

static inline void count_data(void *st, const uint8_t *d, size_t len)
{
	struct rec *r = st;

	for (size_t i = 0; i < len; i++)
		r->bad_byte |= d[i] != pattern(r->got + i);
	r->got += len;
}

static inline void count_end(void *st, int status, const char *reason)
{
	struct rec *r = st;
	char text[32];

	(void)reason;
	r->ended++;
	r->end_status = status;
	if (status == 0 && r->type == CFL_FRAME_T_REQUEST) {
		snprintf(text, sizeof(text), "%llu", (unsigned long long)r->got);
		assert_int_equal(cfl_peer_reply(r->peer, r->id, NULL, 0, text, strlen(text)), 0);
	}
}

static inline void handler(struct cfl_peer *p, const struct cfl_frame *f, int more,
                           struct cfl_msg_sink *sink, void *arg)
{
	struct rec *r = arg;
	struct cfl_header h[2];
	char body[300];
	size_t n = f->body_len < sizeof(r->body) - 1 ? f->body_len : sizeof(r->body) - 1;

	r->calls++;
	r->type = f->type;
	r->id = f->id;
	r->more = more;
	r->peer = p;
	copy_hdr(f, "topic", r->topic, sizeof(r->topic));
	copy_hdr(f, "src", r->src, sizeof(r->src));
	copy_hdr(f, "dst", r->dst, sizeof(r->dst));
	copy_hdr(f, "x", r->x, sizeof(r->x));
	copy_hdr(f, "token", r->token, sizeof(r->token));
	memcpy(r->body, f->body, n);
	r->body[n] = '\0';
	if (r->answer == ANS_COUNT_STREAM) {
		r->got = 0;
		count_data(r, f->body, f->body_len);
		*sink = (struct cfl_msg_sink){count_data, count_end, r};
		if (!more)
			count_end(r, 0, NULL);
		return;
	}
	if (f->type != CFL_FRAME_T_REQUEST)
		return;
	if (r->answer == ANS_ERROR) {
		assert_int_equal(cfl_peer_reply_error(p, f->id, r->err_status, r->err_reason), 0);
	} else if (r->answer == ANS_ECHO || r->answer == ANS_ECHO_TOPIC) {
		h[0] = CFL_HDR("x-echo", r->topic);
		h[1] = CFL_HDR(CFL_KEY_TOPIC, r->topic);
		snprintf(body, sizeof(body), "re: %s", r->body);
		assert_int_equal(cfl_peer_reply(p, f->id, h, r->answer == ANS_ECHO_TOPIC ? 2 : 1,
		                                body, strlen(body)),
		                 0);
	}
}

static inline struct cfl_header hdr(const char *k, const char *v)
{
	return (struct cfl_header){k, strlen(k), (const uint8_t *)v, strlen(v)};
}

static inline int pattern_read(void *src, uint8_t *buf, size_t len)
{
	uint64_t *off = src;

	for (size_t i = 0; i < len; i++)
		buf[i] = pattern(*off + i);
	*off += len;
	return (int)len;
}

/* Sends a request whose outcome goes to `o`; the call itself must succeed. */
static inline void request(struct cfl_peer *p, const char *topic, const struct cfl_header *h,
                           size_t nh, const void *body, size_t len, uint64_t timeout_ms,
                           struct outcome *o)
{
	assert_int_equal(cfl_peer_request(p, topic, h, nh, body, len, timeout_ms, on_outcome, o),
	                 0);
}

/* Frames the peer's connection received so far. */
static inline uint64_t frames_in(struct cfl_peer *p)
{
	struct cfl_conn_stats st;

	cfl_conn_get_stats(cfl_peer_conn(p), &st);
	return st.frames_in;
}

/* --- the group setup and teardown ---------------------------------------------------------- */

static inline int setup(void **state)
{
	(void)state;
	fds_note();
	return 0;
}

static inline int teardown(void **state)
{
	(void)state;
	cfl_log_set_sink(NULL, NULL);
	return fds_check();
}

#endif
