/* Unit tests for the sessions of message authentication (src/auth/auth_server.c): logins and
 * the sessions they open, every branch of the server's gate with its reason text (missing
 * headers, a message before login, another identity's name or token, a wrong signature, an
 * expired token), renewal and its rate limit, heartbeats and the removal of silent sessions,
 * goodbye, the login timeout. The fixture is in auth_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth_fixture.h"

/* --- login and sessions ---------------------------------------------------------------------- */

static void test_login_and_sessions(void **state)
{
	char paths[3][PATH_MAX];
	struct cfl_auth_client_cfg cfg;
	struct cfl_auth_session_info info[4];
	struct authrep r;
	struct world w;
	struct cli *s1, *adm, *again;
	enum cfl_auth_kind kind;
	const char *role = NULL;
	int down;
	time_t now = time(NULL);

	(void)state;
	world_start(&w, NULL, NULL);
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	s1 = cli_auth(&w, &cfg, 1);
	cli_dial(s1, NULL);
	assert_int_equal(s1->login_status, 0);
	assert_true(cfl_auth_client_token_expiry(s1->auth) >= (int64_t)now + 59);
	assert_int_equal(cfl_auth_client_renewals(s1->auth), 0);

	/* The server knows the connection by its identity now. */
	assert_string_equal(cfl_peer_name(srv_peer_of(&w, s1)), "site-1");
	assert_string_equal(cfl_auth_server_identity(srv_peer_of(&w, s1), &kind, &role), "site-1");
	assert_int_equal(kind, CFL_AUTH_CLIENT);
	assert_string_equal(role, "");
	assert_string_equal(cfl_auth_server_org(srv_peer_of(&w, s1)), "test");
	assert_int_equal(cfl_conn_max_payload(cfl_peer_conn(srv_peer_of(&w, s1))),
	                 CFL_FRAME_MAX_PAYLOAD);
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 1);
	assert_string_equal(info[0].name, "site-1");
	assert_int_equal(info[0].kind, CFL_AUTH_CLIENT);
	assert_int_equal(info[0].connected, 1);
	assert_int_equal(info[0].mode, CFL_SEC_CLEAR);
	assert_true(info[0].token_expiry >= (int64_t)now + 59);
	assert_int_equal(sessions(&w, CFL_AUTH_ADMIN, info, 4), 0);

	/* Its messages pass the gate with its token, and the server's pass its own gate. */
	ask(s1, "probe", NULL, 0, NULL, 0, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(w.probe.name, "site-1");
	assert_true(strncmp(w.probe.token, "v2.", 3) == 0);
	{
		struct authrep back = {0};

		assert_int_equal(cfl_peer_request(srv_peer_of(&w, s1), "ping", NULL, 0, NULL, 0,
		                                  2000, on_authrep, &back),
		                 0);
		assert_true(wait_for(w.loop, &back.calls, 1, WAIT_MS));
		assert_int_equal(back.status, 0);
		assert_string_equal(back.body, "pong");
	}

	/* An admin: a session of its own kind, with its role; it ends with its connection. */
	client_cfg(&cfg, paths, prod, "admin@test.org", CFL_AUTH_ADMIN);
	adm = cli_auth(&w, &cfg, 1);
	cli_dial(adm, NULL);
	assert_int_equal(adm->login_status, 0);
	assert_int_equal(sessions(&w, CFL_AUTH_ADMIN, info, 4), 1);
	assert_string_equal(info[0].name, "admin@test.org");
	assert_string_equal(info[0].role, "project_admin");
	assert_string_equal(cfl_auth_server_identity(srv_peer_of(&w, adm), &kind, &role),
	                    "admin@test.org");
	assert_int_equal(kind, CFL_AUTH_ADMIN);
	assert_string_equal(role, "project_admin");
	/* Its org, from its certificate: what the server's policy compares (docs/security.md). */
	assert_string_equal(cfl_auth_server_org(srv_peer_of(&w, adm)), "test");
	cli_close(adm);
	assert_int_equal(sessions(&w, CFL_AUTH_ADMIN, info, 4), 0);

	/* The same site logging in again from another connection replaces the first one. */
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	down = w.srv_down;
	again = cli_auth(&w, &cfg, 1);
	cli_dial(again, NULL);
	assert_int_equal(again->login_status, 0);
	assert_true(wait_for(w.loop, &s1->down, 1, WAIT_MS));
	assert_non_null(strstr(s1->down_reason, "replaced by a new login"));
	/* The server's end of the replaced connection closes once the site's end has. */
	assert_true(wait_for(w.loop, &w.srv_down, down + 1, WAIT_MS));
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 1);

	/* A client's session outlives its connection (until the dead timeout)... */
	cli_close(again);
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 1);
	assert_int_equal(info[0].connected, 0);
	/* ...and ends when removed. */
	assert_int_equal(cfl_auth_server_remove(w.auth, "site-9", "test"), CFL_ENOENT);
	assert_int_equal(cfl_auth_server_remove(w.auth, "site-1", "removed by the test"), 0);
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 0);
	world_stop(&w);
}

/* --- the gate -------------------------------------------------------------------------------- */

static void test_gate_branches(void **state)
{
	struct authrep r1, r2, r;
	char t1[TOKEN_MAX], s1[SIG_B64_MAX], bad_sig[SIG_B64_MAX];
	struct world w;
	struct cli *a, *b, *stranger;
	int calls;

	(void)state;
	world_start(&w, NULL, NULL);
	stranger = cli_raw(&w, "site-1");
	a = cli_raw(&w, "site-1");
	b = cli_raw(&w, "site-2");

	/* Missing headers, each way. */
	assert_string_equal(probe_as(stranger, NULL, NULL, NULL), "missing authentication headers");
	assert_true(logged("(claims '-'): missing authentication headers", NULL));
	assert_string_equal(probe_as(stranger, "site-1", "t", NULL),
	                    "missing authentication headers");
	assert_string_equal(probe_as(stranger, "", "t", "s"), "missing authentication headers");
	/* All three, but this connection never logged in. */
	assert_string_equal(probe_as(stranger, "site-1", "v1.1.ab", "c2ln"),
	                    "not logged in on this connection");
	assert_true(logged("(claims 'site-1'): not logged in on this connection", NULL));

	login_ok(a, "site-1", &r1);
	login_ok(b, "site-2", &r2);
	snprintf(t1, sizeof(t1), "%s", r1.token);
	snprintf(s1, sizeof(s1), "%s", r1.sig);
	assert_string_equal(probe_as(a, "site-1", t1, s1), "");
	assert_string_equal(w.probe.token, t1);
	assert_string_equal(probe_as(b, "site-2", r2.token, r2.sig), "");

	/* Another name on a's connection, with a's token or with b's. */
	assert_string_equal(probe_as(a, "site-2", t1, s1),
	                    "client_name is not the identity of this connection");
	assert_string_equal(probe_as(a, "site-2", r2.token, r2.sig),
	                    "client_name is not the identity of this connection");
	assert_true(logged("(claims 'site-2'): client_name is not the identity", NULL));
	/* b's token under a's name: not a token of this connection's session. */
	assert_string_equal(probe_as(a, "site-1", r2.token, r2.sig), "unknown token");
	/* A token copied to a connection that never logged in. */
	assert_string_equal(probe_as(stranger, "site-1", t1, s1),
	                    "not logged in on this connection");
	assert_string_equal(probe_as(a, "site-1", "v1.99.0000", s1), "unknown token");

	/* The right token with a wrong signature: b's, or one character changed. */
	assert_string_equal(probe_as(a, "site-1", t1, r2.sig), "bad token signature");
	snprintf(bad_sig, sizeof(bad_sig), "%s", s1);
	bad_sig[5] = bad_sig[5] == 'A' ? 'B' : 'A';
	assert_string_equal(probe_as(a, "site-1", t1, bad_sig), "bad token signature");
	assert_string_equal(probe_as(a, "site-1", t1, ""), "bad token signature");

	/* A rejected one-way message never reaches its handler. */
	calls = w.probe.calls;
	set_auth(a, "site-1", t1, bad_sig);
	assert_int_equal(cfl_peer_send(a->peer, "probe", NULL, 0, NULL, 0), 0);
	assert_string_equal(probe_as(a, "site-1", t1, s1), ""); /* after it, in order */
	assert_int_equal(w.probe.calls, calls + 1);
	assert_true(logged("(claims 'site-1'): bad token signature", NULL));

	/* The login topics other than challenge, register and goodbye are behind the gate. */
	set_auth(stranger, NULL, NULL, NULL);
	ask(stranger, "heartbeat", NULL, 0, NULL, 0, &r);
	assert_string_equal(r.status_hdr, "unauthenticated");
	assert_string_equal(r.reason, "missing authentication headers");
	ask(stranger, "renew", NULL, 0, NULL, 0, &r);
	assert_string_equal(r.reason, "missing authentication headers");
	world_stop(&w);
}

static void test_expired_token(void **state)
{
	struct cfl_auth_times t;
	char paths[2][PATH_MAX];
	struct authrep r, again;
	struct world w;
	struct reg g;
	struct cli *a;

	(void)state;
	default_times(&t);
	t.token_ttl_ms = 800;
	world_start(&w, &t, NULL);
	a = cli_raw(&w, "site-1");
	login_ok(a, "site-1", &r);
	assert_string_equal(probe_as(a, "site-1", r.token, r.sig), "");
	spin(w.loop, 900);
	assert_string_equal(probe_as(a, "site-1", r.token, r.sig), "token expired");
	assert_true(logged("(claims 'site-1'): token expired", NULL));
	/* Too late to renew with it, and one connection holds one identity: log in anew. */
	ask(a, "renew", NULL, 0, NULL, 0, &again);
	assert_string_equal(again.reason, "token expired");
	good_reg(&g, paths, "site-1");
	login_by_hand(a, &g, &again);
	assert_int_equal(again.status, CFL_EPROTO);
	assert_string_equal(again.reason, "already logged in as 'site-1' on this connection");
	world_stop(&w);
}

static void test_renewal(void **state)
{
	char paths[3][PATH_MAX], first[TOKEN_MAX];
	struct cfl_auth_client_cfg cfg;
	struct cfl_auth_times t;
	struct authrep r1, r2, r3, r;
	struct world w;
	struct cli *a, *auto_cli;
	uint64_t t0;

	(void)state;
	/* By hand: each renewal makes a new current token; the previous one keeps working. At most
	 * one renewal per tenth of the lifetime (at least 1 s): 1 s with a lifetime of 5 s. */
	default_times(&t);
	t.token_ttl_ms = 5000;
	world_start(&w, &t, NULL);
	a = cli_raw(&w, "site-1");
	login_ok(a, "site-1", &r1);
	spin(w.loop, 1000);
	ask(a, "renew", NULL, 0, NULL, 0, &r2);
	assert_int_equal(r2.status, 0);
	assert_string_not_equal(r2.token, r1.token);
	assert_true(strncmp(r2.token, "v2.", 3) == 0);
	assert_true(strtoll(r2.expiry, NULL, 10) >= strtoll(r1.expiry, NULL, 10));
	assert_string_equal(probe_as(a, "site-1", r1.token, r1.sig), "");
	assert_string_equal(probe_as(a, "site-1", r2.token, r2.sig), "");
	spin(w.loop, 1000);
	ask(a, "renew", NULL, 0, NULL, 0, &r3);
	assert_int_equal(r3.status, 0);
	/* Only one previous token is kept. */
	assert_string_equal(probe_as(a, "site-1", r1.token, r1.sig), "unknown token");
	assert_string_equal(probe_as(a, "site-1", r2.token, r2.sig), "");
	assert_string_equal(probe_as(a, "site-1", r3.token, r3.sig), "");
	/* A heartbeat request is answered, empty. */
	ask(a, "heartbeat", NULL, 0, NULL, 0, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.body, "");
	world_stop(&w);

	/* The client renews by itself at two thirds of the lifetime (at least 1 s), and carries on
	 * past the first token's expiry. (The lifetime the server states runs to the expiry's
	 * whole second: 1..2 s here, so the renewal comes 1..1.33 s in, before the token's 2 s.) */
	default_times(&t);
	t.token_ttl_ms = 2000;
	world_start(&w, &t, NULL);
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	auto_cli = cli_auth(&w, &cfg, 1);
	t0 = cfl_loop_now_ms(w.loop);
	cli_dial(auto_cli, NULL);
	ask(auto_cli, "probe", NULL, 0, NULL, 0, &r);
	assert_int_equal(r.status, 0);
	snprintf(first, sizeof(first), "%s", w.probe.token);
	{
		uint64_t end = cfl_loop_now_ms(w.loop) + WAIT_MS;

		while (cfl_auth_client_renewals(auto_cli->auth) < 1 &&
		       cfl_loop_now_ms(w.loop) < end)
			assert_true(cfl_loop_run_once(w.loop, 10) >= 0);
	}
	assert_true(cfl_auth_client_renewals(auto_cli->auth) >= 1);
	assert_true(cfl_loop_now_ms(w.loop) - t0 >= 990);
	if (cfl_loop_now_ms(w.loop) - t0 < 2200)
		spin(w.loop, 2200 - (cfl_loop_now_ms(w.loop) - t0));
	ask(auto_cli, "probe", NULL, 0, NULL, 0, &r);
	assert_int_equal(r.status, 0);
	assert_string_not_equal(w.probe.token, first);
	assert_int_equal(auto_cli->down, 0);
	world_stop(&w);
}

/* Lines of the captured log that hold `text`. */
static int logged_times(const char *text)
{
	int n = 0;

	for (const char *at = strstr(log_text, text); at != NULL; at = strstr(at + 1, text))
		n++;
	return n;
}

/* Each renewal costs the server a signature: a session gets at most one per tenth of the
 * token's lifetime (at least 1 s); the excess is refused, logged once per session, and the
 * tokens it had stay valid. */
static void test_renewal_rate_limit(void **state)
{
	struct cfl_auth_times t;
	struct authrep r1, r2, r;
	struct world w;
	struct cli *a, *b;

	(void)state;
	default_times(&t);
	t.token_ttl_ms = 20000; /* one renewal per 2 s */
	world_start(&w, &t, NULL);
	a = cli_raw(&w, "site-1");
	login_ok(a, "site-1", &r1);
	/* Right after the login: too soon. */
	ask(a, "renew", NULL, 0, NULL, 0, &r);
	assert_int_equal(r.status, CFL_EPROTO);
	assert_string_equal(r.status_hdr, "rate_limited");
	/* (how old: a few ms, but a loaded machine may take a tenth of a second or more) */
	assert_true(strncmp(r.reason, "renewal refused: the token is ", 30) == 0);
	assert_non_null(strstr(r.reason, " s old, at most one renewal per 2.0 s"));
	assert_true(logged("site-1: renewal refused: the token is", "(logged once per session)"));
	/* Asking in a loop: every one refused, logged once. */
	for (int i = 0; i < 20; i++) {
		ask(a, "renew", NULL, 0, NULL, 0, &r);
		assert_string_equal(r.status_hdr, "rate_limited");
	}
	assert_int_equal(logged_times("site-1: renewal refused"), 1);
	/* The refusals took nothing away: the token works, the session is there. */
	assert_string_equal(probe_as(a, "site-1", r1.token, r1.sig), "");
	/* Another session has its own allowance and its own log line. */
	b = cli_raw(&w, "site-2");
	login_ok(b, "site-2", &r2);
	ask(b, "renew", NULL, 0, NULL, 0, &r);
	assert_string_equal(r.status_hdr, "rate_limited");
	assert_int_equal(logged_times("site-2: renewal refused"), 1);
	/* Once the gap has passed, a renewal goes through; the next one waits again. */
	spin(w.loop, 2000);
	ask(a, "renew", NULL, 0, NULL, 0, &r);
	assert_int_equal(r.status, 0);
	assert_string_not_equal(r.token, r1.token);
	ask(a, "renew", NULL, 0, NULL, 0, &r);
	assert_string_equal(r.status_hdr, "rate_limited");
	assert_int_equal(logged_times("site-1: renewal refused"), 1);
	world_stop(&w);
}

static void test_heartbeat_and_reaper(void **state)
{
	char paths[3][PATH_MAX];
	struct cfl_auth_client_cfg cfg;
	struct cfl_auth_session_info info[4];
	struct cfl_auth_times t;
	struct authrep r;
	struct world w;
	struct cli *beating, *silent;

	(void)state;
	default_times(&t);
	t.heartbeat_ms = 200; /* told to the clients: theirs is 10 s */
	t.dead_ms = 1200;
	world_start(&w, &t, NULL);
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	beating = cli_auth(&w, &cfg, 1);
	cli_dial(beating, NULL);
	silent = cli_raw(&w, "site-2");
	login_ok(silent, "site-2", &r);
	assert_string_equal(r.heartbeat, "200");
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 2);

	/* The silent one is removed and its connection closed; the other one lives on. */
	assert_true(wait_for(w.loop, &silent->down, 1, 3000));
	assert_non_null(strstr(silent->down_reason, "no heartbeat: removed"));
	assert_true(logged("site-2 silent for", "removed, its token dropped"));
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 1);
	assert_string_equal(info[0].name, "site-1");
	assert_int_equal(info[0].connected, 1);
	spin(w.loop, 600);
	assert_int_equal(beating->down, 0);
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 1);
	world_stop(&w);
}

static void test_goodbye(void **state)
{
	struct cfl_auth_session_info info[4];
	struct authrep r;
	struct world w;
	struct cli *a, *b, *stranger;

	(void)state;
	world_start(&w, NULL, NULL);
	a = cli_raw(&w, "site-1");
	b = cli_raw(&w, "site-2");
	stranger = cli_raw(&w, "site-1");
	login_ok(a, "site-1", &r);
	login_ok(b, "site-2", &r);
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 2);

	/* Needs no token (it is exempt), and only ends the sender's own connection and session. */
	assert_int_equal(cfl_peer_send(stranger->peer, "goodbye", NULL, 0, NULL, 0), 0);
	assert_true(wait_for(w.loop, &stranger->down, 1, WAIT_MS));
	assert_non_null(strstr(stranger->down_reason, "goodbye"));
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 2);

	set_auth(a, NULL, NULL, NULL);
	assert_int_equal(cfl_peer_send(a->peer, "goodbye", NULL, 0, NULL, 0), 0);
	assert_true(wait_for(w.loop, &a->down, 1, WAIT_MS));
	assert_non_null(strstr(a->down_reason, "goodbye"));
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 1);
	assert_string_equal(info[0].name, "site-2");
	assert_int_equal(b->down, 0);
	world_stop(&w);
}

static void test_login_timeout(void **state)
{
	struct cfl_auth_times t;
	struct authrep r;
	struct world w;
	struct cli *idle, *quick;
	uint64_t t0;

	(void)state;
	default_times(&t);
	t.login_timeout_ms = 300;
	world_start(&w, &t, NULL);
	t0 = cfl_loop_now_ms(w.loop);
	idle = cli_raw(&w, "site-1");
	quick = cli_raw(&w, "site-2");
	login_ok(quick, "site-2", &r);
	assert_true(wait_for(w.loop, &idle->down, 1, 3000));
	assert_true(cfl_loop_now_ms(w.loop) - t0 >= 290);
	assert_non_null(strstr(idle->down_reason, "login timeout"));
	assert_true(logged("did not log in within 0.3 s: closed", NULL));
	spin(w.loop, 300);
	assert_int_equal(quick->down, 0);
	world_stop(&w);
}

/* --- main ------------------------------------------------------------------------------------ */

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_login_and_sessions),
	        cmocka_unit_test(test_gate_branches),
	        cmocka_unit_test(test_expired_token),
	        cmocka_unit_test(test_renewal),
	        cmocka_unit_test(test_renewal_rate_limit),
	        cmocka_unit_test(test_heartbeat_and_reaper),
	        cmocka_unit_test(test_goodbye),
	        cmocka_unit_test(test_login_timeout),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
