/* Unit tests for the messaging hub (src/msg/hub.c, route.c): peer up/down callbacks, streamed
 * bodies, routing between cells by the `dst` header, the gate with its exempt topics, and the
 * sending limits. The fixture is in hub_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "hub_fixture.h"

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
	/* Named again with its own name (which the call frees): still found by it. */
	assert_int_equal(cfl_peer_set_name(srv_peer(&n, 1), cfl_peer_name(srv_peer(&n, 1))), 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_peer_callbacks), cmocka_unit_test(test_streamed_bodies),
	        cmocka_unit_test(test_refused_stream), cmocka_unit_test(test_routing),
	        cmocka_unit_test(test_gate),           cmocka_unit_test(test_send_limits),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
