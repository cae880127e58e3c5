/* Unit tests for the messaging hub's dispatch (src/msg/hub.c): topic registration and its
 * limits, request/reply and one-way dispatch, the unknown-topic and error replies, reply
 * timeouts, and a connection lost under a pending request. The fixture is in hub_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "hub_fixture.h"

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
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
