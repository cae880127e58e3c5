/* Unit tests for the messaging hub (src/msg/hub.c, route.c): topic registration and its
 * limits, request/reply and one-way dispatch, the unknown-topic and error replies, reply
 * timeouts, a connection lost under a pending request, peer up/down callbacks, streamed
 * bodies, routing between cells by the `dst` header, and the gate with its exempt topics.
 * Hubs talk over real clear connections on loopback, all driven by one loop in this process. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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

static void side_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct side *s = arg;

	(void)code;
	(void)reason;
	assert_true(s->n_up < 8);
	s->peers[s->n_up++] = p;
	/* As a logged-in peer: big frames and streams allowed. */
	assert_int_equal(cfl_conn_set_max_payload(cfl_peer_conn(p), CFL_FRAME_MAX_PAYLOAD), 0);
}

static void side_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct side *s = arg;

	s->n_down++;
	s->down_null += p == NULL;
	s->down_code = code;
	snprintf(s->down_reason, sizeof(s->down_reason), "%s", reason != NULL ? reason : "");
}

static void side_new(struct net *n, struct side *s, const char *cell)
{
	struct cfl_err e = {0};

	memset(s, 0, sizeof(*s));
	assert_int_equal(cfl_msg_hub_new(n->loop, cell, &s->hub, &e), 0);
	cfl_msg_hub_on_peer(s->hub, side_up, side_down, s);
}

/* Dials the server from a new client hub of cell `cell`; both ends up before it returns. */
static struct side *net_dial(struct net *n, const char *cell)
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

static void net_start(struct net *n)
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

static void net_stop(struct net *n)
{
	for (int i = 0; i < n->n_cli; i++)
		cfl_msg_hub_free(n->cli[i].hub);
	cfl_msg_hub_free(n->srv.hub);
	cfl_listener_free(n->l);
	cfl_loop_free(n->loop);
}

/* The server's peer of client i. */
static struct cfl_peer *srv_peer(struct net *n, int i)
{
	return n->srv.peers[i];
}

static struct cfl_peer *cli_peer(struct net *n, int i)
{
	return n->cli[i].peers[0];
}

/* --- handlers -------------------------------------------------------------------------------- */

static void copy_hdr(const struct cfl_frame *f, const char *key, char *buf, size_t size)
{
	cfl_frame_header_str(f, key, buf, size);
}

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i % 251);
}

static void count_data(void *st, const uint8_t *d, size_t len)
{
	struct rec *r = st;

	for (size_t i = 0; i < len; i++)
		r->bad_byte |= d[i] != pattern(r->got + i);
	r->got += len;
}

static void count_end(void *st, int status, const char *reason)
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

static void handler(struct cfl_peer *p, const struct cfl_frame *f, int more,
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

static struct cfl_header hdr(const char *k, const char *v)
{
	return (struct cfl_header){k, strlen(k), (const uint8_t *)v, strlen(v)};
}

static int pattern_read(void *src, uint8_t *buf, size_t len)
{
	uint64_t *off = src;

	for (size_t i = 0; i < len; i++)
		buf[i] = pattern(*off + i);
	*off += len;
	return (int)len;
}

/* Sends a request whose outcome goes to `o`; the call itself must succeed. */
static void request(struct cfl_peer *p, const char *topic, const struct cfl_header *h, size_t nh,
                    const void *body, size_t len, uint64_t timeout_ms, struct outcome *o)
{
	assert_int_equal(cfl_peer_request(p, topic, h, nh, body, len, timeout_ms, on_outcome, o),
	                 0);
}

/* Frames the peer's connection received so far. */
static uint64_t frames_in(struct cfl_peer *p)
{
	struct cfl_conn_stats st;

	cfl_conn_get_stats(cfl_peer_conn(p), &st);
	return st.frames_in;
}

/* --- registration ---------------------------------------------------------------------------- */

static void test_topic_registration(void **state)
{
	struct cfl_msg_hub *h = NULL;
	struct cfl_loop *loop = NULL;
	struct cfl_err e = {0};
	struct rec r = {0};
	char name[128];

	(void)state;
	assert_int_equal(cfl_loop_new(&loop, &e), 0);
	assert_int_equal(cfl_msg_hub_new(loop, "server", &h, &e), 0);
	assert_string_equal(cfl_msg_hub_cell(h), "server");
	assert_ptr_equal(cfl_msg_hub_loop(h), loop);
	assert_int_equal(cfl_msg_hub_peers(h), 0);
	assert_null(cfl_msg_hub_find(h, "site-1"));

	assert_int_equal(cfl_msg_hub_handle(h, "train", handler, &r), 0);
	assert_int_equal(cfl_msg_hub_handle(h, "train", handler, &r), CFL_EEXIST);
	/* Names are at most 63 bytes. */
	memset(name, 'n', 63);
	name[63] = '\0';
	assert_int_equal(cfl_msg_hub_handle(h, name, handler, &r), 0);
	name[63] = 'n';
	name[64] = '\0';
	assert_int_equal(cfl_msg_hub_handle(h, name, handler, &r), CFL_ETOOBIG);
	/* At most 64 topics; a duplicate is still told apart from a full table. */
	for (int i = 2; i < MAX_TOPICS; i++) {
		snprintf(name, sizeof(name), "topic-%d", i);
		assert_int_equal(cfl_msg_hub_handle(h, name, handler, &r), 0);
	}
	assert_int_equal(cfl_msg_hub_handle(h, "one-too-many", handler, &r), CFL_ETOOBIG);
	assert_int_equal(cfl_msg_hub_handle(h, "topic-2", handler, &r), CFL_EEXIST);
	/* Only registered topics can be exempted from the gate. */
	assert_int_equal(cfl_msg_hub_exempt(h, "one-too-many"), CFL_ENOENT);
	assert_int_equal(cfl_msg_hub_exempt(h, "train"), 0);
	cfl_msg_hub_free(h);
	cfl_msg_hub_free(NULL);
	cfl_loop_free(loop);
}

static void test_frame_header_str(void **state)
{
	struct cfl_frame f;
	char buf[8];

	(void)state;
	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_REQUEST;
	f.headers[0] = hdr("topic", "train");
	f.headers[1] = hdr("long", "12345678");
	f.n_headers = 2;
	assert_int_equal(cfl_frame_header_str(&f, "topic", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "train");
	assert_int_equal(cfl_frame_header_str(&f, "missing", buf, sizeof(buf)), CFL_ENOENT);
	assert_string_equal(buf, "");
	/* 8 bytes do not fit with their NUL: nothing half-copied is left behind. */
	assert_int_equal(cfl_frame_header_str(&f, "long", buf, sizeof(buf)), CFL_ETOOBIG);
	assert_string_equal(buf, "");
}

/* --- request/reply and one-way --------------------------------------------------------------- */

static void test_request_reply(void **state)
{
	struct rec ping = {.answer = ANS_ECHO}, ask = {.answer = ANS_ECHO};
	struct outcome o[3] = {{0}}, back = {0};
	struct cfl_header h = hdr("x", "42");
	struct net n;
	char body[8];

	(void)state;
	net_start(&n);
	assert_int_equal(cfl_msg_hub_handle(n.srv.hub, "ping", handler, &ping), 0);
	net_dial(&n, "site-1");
	assert_int_equal(cfl_msg_hub_handle(n.cli[0].hub, "ask", handler, &ask), 0);

	/* Three requests in flight at once, each reply matched to its own request. */
	for (int i = 0; i < 3; i++) {
		snprintf(o[i].hdr_name, sizeof(o[i].hdr_name), "x-echo");
		snprintf(body, sizeof(body), "hello%d", i);
		request(cli_peer(&n, 0), "ping", &h, 1, body, strlen(body), 2000, &o[i]);
		assert_int_equal(o[i].calls, 0); /* never from inside the call */
	}
	for (int i = 0; i < 3; i++) {
		assert_true(wait_for(n.loop, &o[i].calls, 1, WAIT_MS));
		assert_int_equal(o[i].status, 0);
		assert_string_equal(o[i].reason, "");
		snprintf(body, sizeof(body), "hello%d", i);
		assert_string_equal(o[i].body + 4, body);
		assert_memory_equal(o[i].body, "re: ", 4);
		assert_string_equal(o[i].hdr_val, "ping");
		assert_string_equal(o[i].status_hdr, "");
	}
	assert_int_equal(ping.calls, 3);
	assert_int_equal(ping.type, CFL_FRAME_T_REQUEST);
	assert_string_equal(ping.topic, "ping");
	assert_string_equal(ping.src, "site-1"); /* the sending hub's cell */
	assert_string_equal(ping.x, "42");
	assert_ptr_equal(ping.peer, srv_peer(&n, 0));

	/* The other way: the server asks the client. */
	request(srv_peer(&n, 0), "ask", NULL, 0, "q", 1, 2000, &back);
	assert_true(wait_for(n.loop, &back.calls, 1, WAIT_MS));
	assert_int_equal(back.status, 0);
	assert_string_equal(back.body, "re: q");
	assert_string_equal(ask.src, "server");
	/* Every reply arrived exactly once. */
	spin(n.loop, 50);
	for (int i = 0; i < 3; i++)
		assert_int_equal(o[i].calls, 1);
	net_stop(&n);
}

static void test_default_timeout(void **state)
{
	struct rec ping = {.answer = ANS_NONE};
	struct outcome o = {0};
	struct net n;

	(void)state;
	net_start(&n);
	assert_int_equal(cfl_msg_hub_handle(n.srv.hub, "ping", handler, &ping), 0);
	net_dial(&n, "site-1");
	/* timeout 0 takes the default (30 s) */
	request(cli_peer(&n, 0), "ping", NULL, 0, NULL, 0, 0, &o);
	assert_non_null(cli_peer(&n, 0)->pending);
	assert_int_equal(cli_peer(&n, 0)->pending->timeout_ms, CFL_MSG_DEFAULT_TIMEOUT_MS);
	assert_true(wait_for(n.loop, &ping.calls, 1, WAIT_MS));
	/* Freeing the hub with the request pending calls nobody back. */
	net_stop(&n);
	assert_int_equal(o.calls, 0);
}

static void test_oneway(void **state)
{
	struct rec note = {.answer = ANS_ECHO};
	struct net n;
	uint64_t before;

	(void)state;
	net_start(&n);
	assert_int_equal(cfl_msg_hub_handle(n.srv.hub, "note", handler, &note), 0);
	net_dial(&n, "site-1");
	before = frames_in(cli_peer(&n, 0));
	assert_int_equal(cfl_peer_send(cli_peer(&n, 0), "note", NULL, 0, "fyi", 3), 0);
	assert_true(wait_for(n.loop, &note.calls, 1, WAIT_MS));
	assert_int_equal(note.type, CFL_FRAME_T_ONEWAY);
	assert_string_equal(note.body, "fyi");
	assert_string_equal(note.src, "site-1");
	/* A one-way message to a topic nobody serves: logged, never answered. */
	assert_int_equal(cfl_peer_send(cli_peer(&n, 0), "nobody", NULL, 0, "x", 1), 0);
	spin(n.loop, 150);
	assert_true(logged("no handler for topic 'nobody'", NULL));
	assert_int_equal(frames_in(cli_peer(&n, 0)), before);
	net_stop(&n);
}

static void test_unknown_topic_and_error_replies(void **state)
{
	struct rec busy = {
	        .answer = ANS_ERROR, .err_status = "busy", .err_reason = "come back later"};
	struct rec bare = {.answer = ANS_ERROR, .err_status = "overloaded", .err_reason = ""};
	struct outcome o1 = {0}, o2 = {0}, o3 = {0};
	struct net n;

	(void)state;
	net_start(&n);
	assert_int_equal(cfl_msg_hub_handle(n.srv.hub, "busy", handler, &busy), 0);
	assert_int_equal(cfl_msg_hub_handle(n.srv.hub, "bare", handler, &bare), 0);
	net_dial(&n, "site-1");
	cfl_peer_set_name(srv_peer(&n, 0), "site-1");

	request(cli_peer(&n, 0), "nope", NULL, 0, NULL, 0, 2000, &o1);
	assert_true(wait_for(n.loop, &o1.calls, 1, WAIT_MS));
	assert_int_equal(o1.status, CFL_EPROTO);
	assert_string_equal(o1.reason, "no handler for this topic");
	assert_string_equal(o1.status_hdr, "no_such_topic");
	assert_true(logged("site-1: no handler for topic 'nope'", NULL));

	/* An error reply: its status word in the header, its reason as the outcome's reason. */
	request(cli_peer(&n, 0), "busy", NULL, 0, NULL, 0, 2000, &o2);
	assert_true(wait_for(n.loop, &o2.calls, 1, WAIT_MS));
	assert_int_equal(o2.status, CFL_EPROTO);
	assert_string_equal(o2.reason, "come back later");
	assert_string_equal(o2.status_hdr, "busy");
	/* Without a reason the status word stands in. */
	request(cli_peer(&n, 0), "bare", NULL, 0, NULL, 0, 2000, &o3);
	assert_true(wait_for(n.loop, &o3.calls, 1, WAIT_MS));
	assert_int_equal(o3.status, CFL_EPROTO);
	assert_string_equal(o3.reason, "overloaded");
	net_stop(&n);
}

/* --- timeouts and lost connections ----------------------------------------------------------- */

static void test_reply_timeout(void **state)
{
	struct rec slow = {.answer = ANS_NONE};
	struct outcome o = {0};
	struct net n;
	uint64_t t0;

	(void)state;
	net_start(&n);
	assert_int_equal(cfl_msg_hub_handle(n.srv.hub, "slow", handler, &slow), 0);
	net_dial(&n, "site-1");
	t0 = cfl_loop_now_ms(n.loop);
	request(cli_peer(&n, 0), "slow", NULL, 0, NULL, 0, 300, &o);
	assert_true(wait_for(n.loop, &o.calls, 1, WAIT_MS));
	assert_int_equal(o.status, CFL_ETIMEDOUT);
	assert_string_equal(o.reason, "no reply in time");
	assert_false(o.had_frame);
	assert_true(o.at_ms - t0 >= 290);
	assert_true(o.at_ms - t0 < 3000);
	assert_int_equal(slow.calls, 1);
	assert_null(cli_peer(&n, 0)->pending);
	/* The late reply finds no request: dropped, the outcome is not called again. */
	assert_int_equal(cfl_peer_reply(slow.peer, slow.id, NULL, 0, "late", 4), 0);
	spin(n.loop, 150);
	assert_int_equal(o.calls, 1);
	net_stop(&n);
}

static void test_connection_lost_under_request(void **state)
{
	struct rec slow = {.answer = ANS_NONE};
	struct outcome o = {0};
	struct net n;

	(void)state;
	net_start(&n);
	assert_int_equal(cfl_msg_hub_handle(n.srv.hub, "slow", handler, &slow), 0);
	net_dial(&n, "site-1");
	request(cli_peer(&n, 0), "slow", NULL, 0, NULL, 0, 4000, &o);
	assert_true(wait_for(n.loop, &slow.calls, 1, WAIT_MS));
	cfl_conn_close(cfl_peer_conn(srv_peer(&n, 0)), "bye for now");
	assert_true(wait_for(n.loop, &o.calls, 1, WAIT_MS));
	assert_int_equal(o.status, CFL_ECLOSED);
	if (strstr(o.reason, "bye for now") == NULL)
		fail_msg("reason '%s' lacks the GOAWAY's", o.reason);
	assert_true(wait_for(n.loop, &n.cli[0].n_down, 1, WAIT_MS));
	assert_true(wait_for(n.loop, &n.srv.n_down, 1, WAIT_MS));
	assert_int_equal(n.srv.down_code, 0); /* this side closed it */
	assert_string_equal(n.srv.down_reason, "bye for now");
	assert_int_not_equal(n.cli[0].down_code, 0);
	assert_non_null(strstr(n.cli[0].down_reason, "bye for now"));
	assert_int_equal(cfl_msg_hub_peers(n.srv.hub), 0);
	assert_int_equal(cfl_msg_hub_peers(n.cli[0].hub), 0);
	net_stop(&n);
}

/* --- peer callbacks -------------------------------------------------------------------------- */

static void count_peer(struct cfl_peer *p, void *arg)
{
	(void)p;
	(*(int *)arg)++;
}

static void test_peer_callbacks(void **state)
{
	struct cfl_conn_opts o;
	struct cfl_conn *conn;
	struct cfl_err e = {0};
	struct net n;
	int seen = 0, dead_port, marker = 7;

	(void)state;
	net_start(&n);
	net_dial(&n, "site-1");
	net_dial(&n, "site-2");
	assert_int_equal(cfl_msg_hub_peers(n.srv.hub), 2);
	assert_int_equal(n.srv.n_up, 2);
	assert_int_equal(n.cli[0].n_up, 1);
	assert_true(cfl_peer_serial(srv_peer(&n, 1)) > cfl_peer_serial(srv_peer(&n, 0)));
	assert_ptr_equal(cfl_peer_hub(srv_peer(&n, 0)), n.srv.hub);
	assert_non_null(cfl_peer_conn(srv_peer(&n, 0)));
	/* Peers are unnamed until someone names them (the login does). */
	assert_string_equal(cfl_peer_name(srv_peer(&n, 0)), "");
	assert_null(cfl_msg_hub_find(n.srv.hub, ""));
	cfl_peer_set_name(srv_peer(&n, 1), "site-2");
	assert_ptr_equal(cfl_msg_hub_find(n.srv.hub, "site-2"), srv_peer(&n, 1));
	assert_null(cfl_msg_hub_find(n.srv.hub, "site-1"));
	/* The index of names: a renamed peer is found by its new name only; of two peers of a
	 * name, the one named last; unnamed again (""), by none. */
	cfl_peer_set_name(srv_peer(&n, 1), "site-b");
	assert_null(cfl_msg_hub_find(n.srv.hub, "site-2"));
	assert_ptr_equal(cfl_msg_hub_find(n.srv.hub, "site-b"), srv_peer(&n, 1));
	cfl_peer_set_name(srv_peer(&n, 0), "site-b");
	assert_ptr_equal(cfl_msg_hub_find(n.srv.hub, "site-b"), srv_peer(&n, 0));
	assert_string_equal(cfl_peer_name(srv_peer(&n, 0)), "site-b");
	cfl_peer_set_name(srv_peer(&n, 0), "");
	assert_string_equal(cfl_peer_name(srv_peer(&n, 0)), "");
	assert_ptr_equal(cfl_msg_hub_find(n.srv.hub, "site-b"), srv_peer(&n, 1));
	cfl_peer_set_name(srv_peer(&n, 1), "site-2");
	assert_null(cfl_msg_hub_find(n.srv.hub, "site-b"));
	assert_ptr_equal(cfl_msg_hub_find(n.srv.hub, "site-2"), srv_peer(&n, 1));
	cfl_peer_set_user(srv_peer(&n, 0), &marker);
	assert_ptr_equal(cfl_peer_user(srv_peer(&n, 0)), &marker);
	cfl_msg_hub_foreach(n.srv.hub, count_peer, &seen);
	assert_int_equal(seen, 2);

	/* close_all: every client hears the reason, the server's down runs for each. */
	cfl_msg_hub_close_all(n.srv.hub, "maintenance");
	assert_true(wait_for(n.loop, &n.srv.n_down, 2, WAIT_MS));
	assert_true(wait_for(n.loop, &n.cli[0].n_down, 1, WAIT_MS));
	assert_true(wait_for(n.loop, &n.cli[1].n_down, 1, WAIT_MS));
	assert_non_null(strstr(n.cli[1].down_reason, "maintenance"));
	assert_int_equal(n.srv.down_null, 0);
	assert_int_equal(cfl_msg_hub_peers(n.srv.hub), 0);

	/* A connection that never opens: down with no peer, up never. */
	{
		struct cfl_listener *l = NULL;
		struct cfl_conn_opts lo = cfl_msg_hub_conn_opts(n.srv.hub, NULL);

		assert_int_equal(cfl_listener_new(n.loop, "127.0.0.1", 0, &lo, &l, &e), 0);
		dead_port = cfl_listener_port(l);
		cfl_listener_free(l);
	}
	o = cfl_msg_hub_conn_opts(n.cli[0].hub, NULL);
	assert_int_equal(cfl_conn_dial(n.loop, "127.0.0.1", dead_port, &o, &conn, &e), 0);
	assert_true(wait_for(n.loop, &n.cli[0].n_down, 2, WAIT_MS));
	assert_int_equal(n.cli[0].down_null, 1);
	assert_int_equal(n.cli[0].n_up, 1);
	assert_int_not_equal(n.cli[0].down_code, 0);
	net_stop(&n);
}

/* --- streams --------------------------------------------------------------------------------- */

static void test_streamed_bodies(void **state)
{
	struct rec big = {.answer = ANS_COUNT_STREAM};
	struct outcome o = {0};
	uint64_t off = 0;
	struct net n;
	char want[32];

	(void)state;
	net_start(&n);
	assert_int_equal(cfl_msg_hub_handle(n.srv.hub, "upload", handler, &big), 0);
	net_dial(&n, "site-1");
	assert_int_equal(
	        cfl_peer_request_stream(cli_peer(&n, 0), &(struct cfl_request){.topic = "upload",
	                                                                       .body_len = BIG_BODY,
	                                                                       .read = pattern_read,
	                                                                       .src = &off,
	                                                                       .timeout_ms = 3000,
	                                                                       .reply = on_outcome,
	                                                                       .arg = &o}),
	        0);
	assert_true(wait_for(n.loop, &o.calls, 1, WAIT_MS));
	assert_int_equal(o.status, 0);
	snprintf(want, sizeof(want), "%u", BIG_BODY);
	assert_string_equal(o.body, want);
	assert_int_equal(big.more, 1);
	assert_int_equal(big.ended, 1);
	assert_int_equal(big.end_status, 0);
	assert_int_equal(big.got, BIG_BODY);
	assert_int_equal(big.bad_byte, 0);
	assert_int_equal(off, BIG_BODY);
	net_stop(&n);
}

/* A handler that takes no sink for a streamed request refuses its body: the hub cancels the
 * stream, so that even a sender that has not heard the answer yet stops within its credit
 * instead of sending the whole body to be thrown away. Here the handler does not answer at
 * all: only the cancel can stop the sender. */
static void test_refused_stream(void **state)
{
	struct rec no = {.answer = ANS_NONE};
	const uint64_t len = 64u * CFL_FRAME_CHUNK;
	struct outcome o = {0};
	uint64_t off = 0;
	struct net n;

	(void)state;
	net_start(&n);
	assert_int_equal(cfl_msg_hub_handle(n.srv.hub, "upload", handler, &no), 0);
	net_dial(&n, "site-1");
	assert_int_equal(
	        cfl_peer_request_stream(cli_peer(&n, 0), &(struct cfl_request){.topic = "upload",
	                                                                       .body_len = len,
	                                                                       .read = pattern_read,
	                                                                       .src = &off,
	                                                                       .timeout_ms = 3000,
	                                                                       .reply = on_outcome,
	                                                                       .arg = &o}),
	        0);
	assert_true(wait_for(n.loop, &no.calls, 1, WAIT_MS));
	assert_int_equal(no.more, 1);
	assert_true(wait_for(n.loop, &o.calls, 1, WAIT_MS));
	if (off > CFL_FRAME_INITIAL_WINDOW + 2u * CFL_FRAME_CHUNK)
		fail_msg("the sender sent %llu bytes of a refused %llu-byte body",
		         (unsigned long long)off, (unsigned long long)len);
	assert_int_not_equal(o.status, 0);
	spin(n.loop, 100);
	assert_int_equal(o.calls, 1);
	/* The connection is still good for the next request. */
	no.answer = ANS_ECHO;
	memset(&o, 0, sizeof(o));
	request(cli_peer(&n, 0), "upload", NULL, 0, "hi", 2, 2000, &o);
	assert_true(wait_for(n.loop, &o.calls, 1, WAIT_MS));
	assert_int_equal(o.status, 0);
	net_stop(&n);
}

/* --- routing --------------------------------------------------------------------------------- */

static void test_routing(void **state)
{
	static const char *const keys[3] = {"client_name", "token", "token_signature"};
	static const char *const srv_vals[3] = {"server", "server-token", "server-sig"};
	static const char *const a_vals[3] = {"site-a", "a-token", "a-sig"};
	static const char *const b_vals[3] = {"site-b", "b-token", "b-sig"};
	struct rec b_echo = {.answer = ANS_ECHO}, b_note = {.answer = ANS_ECHO};
	struct rec b_fail = {.answer = ANS_ERROR, .err_status = "nope", .err_reason = "not today"};
	struct rec b_train = {.answer = ANS_ECHO}, b_hang = {.answer = ANS_NONE};
	struct rec s_echo = {.answer = ANS_ECHO};
	struct outcome o[8] = {{0}};
	struct cfl_header h[2] = {hdr("dst", "site-b"), hdr("x", "7")};
	struct cfl_header to_srv = hdr("dst", "server"), to_z = hdr("dst", "site-z");
	uint64_t off = 0;
	struct net n;
	struct side *a, *b, *c;

	(void)state;
	net_start(&n);
	assert_int_equal(cfl_msg_hub_handle(n.srv.hub, "echo", handler, &s_echo), 0);
	a = net_dial(&n, "liar"); /* claims another cell name than the server knows it by */
	b = net_dial(&n, "site-b");
	c = net_dial(&n, "site-c");
	cfl_peer_set_name(srv_peer(&n, 0), "site-a");
	cfl_peer_set_name(srv_peer(&n, 1), "site-b");
	/* site-c stays unnamed: not logged in */
	assert_int_equal(cfl_msg_hub_handle(b->hub, "echo", handler, &b_echo), 0);
	assert_int_equal(cfl_msg_hub_handle(b->hub, "app.note", handler, &b_note), 0);
	assert_int_equal(cfl_msg_hub_handle(b->hub, "app.fail", handler, &b_fail), 0);
	assert_int_equal(cfl_msg_hub_handle(b->hub, "train", handler, &b_train), 0);
	assert_int_equal(cfl_msg_hub_handle(b->hub, "app.hang", handler, &b_hang), 0);
	/* Each link carries its own authentication headers. */
	assert_int_equal(cfl_peer_set_auth(cli_peer(&n, 0), keys, a_vals, 3), 0);
	assert_int_equal(cfl_peer_set_auth(cli_peer(&n, 1), keys, b_vals, 3), 0);
	assert_int_equal(cfl_peer_set_auth(srv_peer(&n, 1), keys, srv_vals, 3), 0);

	/* echo travels only once the server's owner says so (cfl server --diag). */
	request(a->peers[0], "echo", h, 2, "hi", 2, 2000, &o[0]);
	assert_true(wait_for(n.loop, &o[0].calls, 1, WAIT_MS));
	assert_string_equal(o[0].status_hdr, "no_route");
	assert_string_equal(o[0].reason,
	                    "only app.* topics and those this server routes travel between cells");
	assert_int_equal(b_echo.calls, 0);
	assert_int_equal(cfl_msg_hub_route(n.srv.hub, "echo"), 0);
	assert_int_equal(cfl_msg_hub_route(n.srv.hub, "echo"), 0); /* once is enough */
	assert_int_equal(cfl_msg_hub_route(n.srv.hub, ""), CFL_EINVAL);

	/* A request for site-b goes through the server and its reply comes back. */
	memset(&o[0], 0, sizeof(o[0]));
	snprintf(o[0].hdr_name, sizeof(o[0].hdr_name), "token");
	request(a->peers[0], "echo", h, 2, "hi", 2, 2000, &o[0]);
	assert_true(wait_for(n.loop, &o[0].calls, 1, WAIT_MS));
	assert_int_equal(o[0].status, 0);
	assert_string_equal(o[0].body, "re: hi");
	assert_string_equal(o[0].hdr_val, ""); /* site-b's token stayed on its own link */
	assert_int_equal(b_echo.calls, 1);
	assert_int_equal(s_echo.calls, 0);
	assert_string_equal(b_echo.src, "site-a"); /* the name the server knows, not the claim */
	assert_string_equal(b_echo.token, "server-token");
	assert_string_equal(b_echo.dst, "site-b");
	assert_string_equal(b_echo.x, "7");
	assert_string_equal(b_echo.body, "hi");
	assert_ptr_equal(b_echo.peer, b->peers[0]);

	/* One-way messages to app.* topics are passed on too. */
	assert_int_equal(cfl_peer_send(a->peers[0], "app.note", h, 1, "psst", 4), 0);
	assert_true(wait_for(n.loop, &b_note.calls, 1, WAIT_MS));
	assert_int_equal(b_note.type, CFL_FRAME_T_ONEWAY);
	assert_string_equal(b_note.src, "site-a");
	assert_string_equal(b_note.body, "psst");

	/* An error reply is passed back as route_failed with its reason. */
	request(a->peers[0], "app.fail", h, 1, NULL, 0, 2000, &o[1]);
	assert_true(wait_for(n.loop, &o[1].calls, 1, WAIT_MS));
	assert_int_equal(o[1].status, CFL_EPROTO);
	assert_string_equal(o[1].status_hdr, "route_failed");
	assert_string_equal(o[1].reason, "not today");

	/* The server's own topics never travel between sites. */
	request(a->peers[0], "train", h, 1, NULL, 0, 2000, &o[2]);
	assert_true(wait_for(n.loop, &o[2].calls, 1, WAIT_MS));
	assert_int_equal(o[2].status, CFL_EPROTO);
	assert_string_equal(o[2].status_hdr, "no_route");
	assert_string_equal(o[2].reason,
	                    "only app.* topics and those this server routes travel between cells");
	assert_int_equal(b_train.calls, 0);

	/* No such cell. */
	request(a->peers[0], "echo", &to_z, 1, NULL, 0, 2000, &o[3]);
	assert_true(wait_for(n.loop, &o[3].calls, 1, WAIT_MS));
	assert_string_equal(o[3].status_hdr, "no_route");
	assert_string_equal(o[3].reason, "no such cell connected");

	/* Streams are not routed. */
	assert_int_equal(
	        cfl_peer_request_stream(a->peers[0], &(struct cfl_request){.topic = "app.note",
	                                                                   .hdrs = h,
	                                                                   .n_hdrs = 1,
	                                                                   .body_len = BIG_BODY,
	                                                                   .read = pattern_read,
	                                                                   .src = &off,
	                                                                   .timeout_ms = 2000,
	                                                                   .reply = on_outcome,
	                                                                   .arg = &o[4]}),
	        0);
	assert_true(wait_for(n.loop, &o[4].calls, 1, WAIT_MS));
	assert_string_equal(o[4].status_hdr, "no_route");
	assert_string_equal(o[4].reason, "streams are not routed");
	assert_int_equal(b_note.calls, 1);

	/* Addressed to the server's own cell: served there. */
	request(a->peers[0], "echo", &to_srv, 1, "me", 2, 2000, &o[5]);
	assert_true(wait_for(n.loop, &o[5].calls, 1, WAIT_MS));
	assert_int_equal(o[5].status, 0);
	assert_int_equal(s_echo.calls, 1);
	assert_int_equal(b_echo.calls, 1);

	/* A sender the server has not named (not logged in) cannot route. */
	request(c->peers[0], "echo", h, 1, NULL, 0, 2000, &o[6]);
	assert_true(wait_for(n.loop, &o[6].calls, 1, WAIT_MS));
	assert_int_equal(o[6].status, CFL_EPROTO);
	assert_string_equal(o[6].status_hdr, "no_route");
	assert_int_equal(b_echo.calls, 1);

	/* The target goes away while it holds a routed request: the sender hears of it. */
	request(a->peers[0], "app.hang", h, 1, NULL, 0, 4000, &o[7]);
	assert_true(wait_for(n.loop, &b_hang.calls, 1, WAIT_MS));
	cfl_conn_close(cfl_peer_conn(b->peers[0]), "site-b leaving");
	assert_true(wait_for(n.loop, &o[7].calls, 1, WAIT_MS));
	assert_int_equal(o[7].status, CFL_EPROTO);
	assert_string_equal(o[7].status_hdr, "route_failed");
	if (strstr(o[7].reason, "site-b leaving") == NULL)
		fail_msg("reason '%s' lacks the target's GOAWAY", o[7].reason);
	net_stop(&n);
}

/* --- the gate -------------------------------------------------------------------------------- */

struct gate_log {
	int calls, replies;
	uint8_t last_type;
};

/* Lets through what carries a `pass` header. */
static int pass_gate(struct cfl_peer *p, const struct cfl_frame *f, char *why, size_t size,
                     void *arg)
{
	struct gate_log *g = arg;
	char topic[64];

	(void)p;
	g->calls++;
	g->replies += f->type == CFL_FRAME_T_REPLY;
	g->last_type = f->type;
	if (cfl_frame_header(f, "pass") != NULL)
		return 0;
	cfl_frame_header_str(f, "topic", topic, sizeof(topic));
	snprintf(why, size, "no pass for '%s'", topic);
	return CFL_EAUTH;
}

static void test_gate(void **state)
{
	struct rec work = {.answer = ANS_ECHO}, login = {.answer = ANS_ECHO};
	struct rec cli_login = {.answer = ANS_ECHO_TOPIC}, big = {.answer = ANS_COUNT_STREAM};
	struct gate_log g = {0};
	struct outcome o[7] = {{0}};
	struct cfl_header pass = hdr("pass", "1"), away = hdr("dst", "site-b");
	uint64_t before, off = 0;
	struct net n;
	struct cfl_peer *cp;

	(void)state;
	net_start(&n);
	assert_int_equal(cfl_msg_hub_handle(n.srv.hub, "work", handler, &work), 0);
	assert_int_equal(cfl_msg_hub_handle(n.srv.hub, "login", handler, &login), 0);
	assert_int_equal(cfl_msg_hub_handle(n.srv.hub, "upload", handler, &big), 0);
	assert_int_equal(cfl_msg_hub_exempt(n.srv.hub, "login"), 0);
	cfl_msg_hub_set_gate(n.srv.hub, pass_gate, &g);
	net_dial(&n, "site-1");
	cp = cli_peer(&n, 0);
	assert_int_equal(cfl_msg_hub_handle(n.cli[0].hub, "login", handler, &cli_login), 0);

	/* Rejected: the request learns why, the handler never sees it. */
	request(cp, "work", NULL, 0, NULL, 0, 2000, &o[0]);
	assert_true(wait_for(n.loop, &o[0].calls, 1, WAIT_MS));
	assert_int_equal(o[0].status, CFL_EPROTO);
	assert_string_equal(o[0].status_hdr, "unauthenticated");
	assert_string_equal(o[0].reason, "no pass for 'work'");
	assert_int_equal(work.calls, 0);
	assert_int_equal(g.calls, 1);

	/* Accepted. */
	request(cp, "work", &pass, 1, NULL, 0, 2000, &o[1]);
	assert_true(wait_for(n.loop, &o[1].calls, 1, WAIT_MS));
	assert_int_equal(o[1].status, 0);
	assert_int_equal(work.calls, 1);
	assert_int_equal(g.calls, 2);

	/* A rejected one-way message is dropped without an answer. */
	before = frames_in(cp);
	assert_int_equal(cfl_peer_send(cp, "work", NULL, 0, "x", 1), 0);
	spin(n.loop, 150);
	assert_int_equal(g.calls, 3);
	assert_int_equal(work.calls, 1);
	assert_int_equal(frames_in(cp), before);

	/* An exempt topic addressed to this cell skips the gate... */
	request(cp, "login", NULL, 0, NULL, 0, 2000, &o[2]);
	assert_true(wait_for(n.loop, &o[2].calls, 1, WAIT_MS));
	assert_int_equal(o[2].status, 0);
	assert_int_equal(login.calls, 1);
	assert_int_equal(g.calls, 3);
	assert_int_equal(cfl_peer_send(cp, "login", NULL, 0, NULL, 0), 0);
	assert_true(wait_for(n.loop, &login.calls, 2, WAIT_MS));
	assert_int_equal(g.calls, 3);

	/* ...but not when it is addressed to another cell... */
	request(cp, "login", &away, 1, NULL, 0, 2000, &o[3]);
	assert_true(wait_for(n.loop, &o[3].calls, 1, WAIT_MS));
	assert_string_equal(o[3].status_hdr, "unauthenticated");
	assert_string_equal(o[3].reason, "no pass for 'login'");
	assert_int_equal(g.calls, 4);
	assert_int_equal(login.calls, 2);

	/* ...and never for replies, even one that names an exempt topic. */
	request(srv_peer(&n, 0), "login", NULL, 0, NULL, 0, 300, &o[4]);
	assert_true(wait_for(n.loop, &o[4].calls, 1, WAIT_MS));
	assert_int_equal(cli_login.calls, 1); /* the client answered */
	assert_int_equal(o[4].status, CFL_ETIMEDOUT);
	assert_int_equal(g.replies, 1);
	assert_int_equal(g.last_type, CFL_FRAME_T_REPLY);

	/* A rejected stream is cancelled; its handler never runs. */
	assert_int_equal(cfl_peer_request_stream(cp, &(struct cfl_request){.topic = "upload",
	                                                                   .body_len = BIG_BODY,
	                                                                   .read = pattern_read,
	                                                                   .src = &off,
	                                                                   .timeout_ms = 2000,
	                                                                   .reply = on_outcome,
	                                                                   .arg = &o[5]}),
	                 0);
	assert_true(wait_for(n.loop, &o[5].calls, 1, WAIT_MS));
	assert_string_equal(o[5].status_hdr, "unauthenticated");
	assert_string_equal(o[5].reason, "no pass for 'upload'");
	assert_int_equal(big.calls, 0);

	/* Without a gate everything passes. */
	cfl_msg_hub_set_gate(n.srv.hub, NULL, NULL);
	request(cp, "work", NULL, 0, NULL, 0, 2000, &o[6]);
	assert_true(wait_for(n.loop, &o[6].calls, 1, WAIT_MS));
	assert_int_equal(o[6].status, 0);
	assert_int_equal(work.calls, 2);
	net_stop(&n);
}

/* --- sending limits -------------------------------------------------------------------------- */

static void test_send_limits(void **state)
{
	static const char *const keys[4] = {"client_name", "token", "token_signature", "extra"};
	struct cfl_header many[MAX_OUT_HDRS + 1];
	const char *vals[4] = {"a", "b", "c", "d"};
	char long_val[CFL_MSG_AUTH_VAL_MAX + 1];
	struct outcome o = {0};
	struct net n;

	(void)state;
	net_start(&n);
	net_dial(&n, "site-1");
	for (size_t i = 0; i < MAX_OUT_HDRS + 1; i++)
		many[i] = hdr("k", "v");
	assert_int_equal(cfl_peer_request(cli_peer(&n, 0), "t", many, MAX_OUT_HDRS + 1, NULL, 0,
	                                  1000, on_outcome, &o),
	                 CFL_ETOOBIG);
	assert_int_equal(cfl_peer_send(cli_peer(&n, 0), "t", many, MAX_OUT_HDRS + 1, NULL, 0),
	                 CFL_ETOOBIG);
	assert_null(cli_peer(&n, 0)->pending);
	assert_int_equal(cfl_peer_set_auth(cli_peer(&n, 0), keys, vals, 4), CFL_ETOOBIG);
	memset(long_val, 'v', CFL_MSG_AUTH_VAL_MAX);
	long_val[CFL_MSG_AUTH_VAL_MAX] = '\0';
	vals[1] = long_val;
	assert_int_equal(cfl_peer_set_auth(cli_peer(&n, 0), keys, vals, 3), CFL_ETOOBIG);
	spin(n.loop, 50);
	assert_int_equal(o.calls, 0); /* refused calls never call back */
	net_stop(&n);
}

static int fds_at_start;

static int setup(void **state)
{
	(void)state;
	fds_at_start = open_fds();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cfl_log_set_sink(NULL, NULL);
	if (open_fds() != fds_at_start) {
		print_error("file descriptors leaked: %d open at the start, %d now\n", fds_at_start,
		            open_fds());
		return -1;
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_topic_registration),
	        cmocka_unit_test(test_frame_header_str),
	        cmocka_unit_test(test_request_reply),
	        cmocka_unit_test(test_default_timeout),
	        cmocka_unit_test(test_oneway),
	        cmocka_unit_test(test_unknown_topic_and_error_replies),
	        cmocka_unit_test(test_reply_timeout),
	        cmocka_unit_test(test_connection_lost_under_request),
	        cmocka_unit_test(test_peer_callbacks),
	        cmocka_unit_test(test_streamed_bodies),
	        cmocka_unit_test(test_refused_stream),
	        cmocka_unit_test(test_routing),
	        cmocka_unit_test(test_gate),
	        cmocka_unit_test(test_send_limits),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
