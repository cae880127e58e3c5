/* Unit tests for connections (src/net/conn.c, connect.c, tls.c): clear, tls and mtls pairs
 * exchanging messages on loopback; every connection_security mismatch failing fast with its
 * readable diagnosis; certificate and host-name checks; connect and handshake timeouts;
 * orderly close. Streams and flow control are in test_stream.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "conn_fixture.h"
#include "net/conn_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define MISMATCH "(connection_security mismatch)"

/* The server answers every REQUEST with a REPLY "world" on the same topic. */
static void echo(struct peer *p, const struct cfl_frame *f, int more)
{
	struct cfl_frame r;

	(void)more;
	if (f->type != CFL_FRAME_T_REQUEST)
		return;
	r = text_frame(CFL_FRAME_T_REPLY, p->last.topic, "world");
	r.ref = f->id;
	assert_int_equal(cfl_conn_send(p->c, &r), 0);
}

/* A request from the client and its reply, ids checked (odd from the dialer, even from the
 * acceptor, the reply's ref = the request's id). */
static void exchange(struct world *w)
{
	struct cfl_frame f = text_frame(CFL_FRAME_T_REQUEST, "train", "hello");
	int before = w->cli.msgs;

	w->srv.on_msg = echo;
	f.id = cfl_conn_next_id(w->cli.c);
	assert_true(f.id % 2 == 1);
	assert_int_equal(cfl_conn_send(w->cli.c, &f), 0);
	assert_true(wait_for(w, &w->cli.msgs, before + 1, WAIT_MS));
	assert_int_equal(w->srv.last.type, CFL_FRAME_T_REQUEST);
	assert_int_equal(w->srv.last.id, f.id);
	assert_string_equal(w->srv.last.topic, "train");
	assert_string_equal(w->srv.last.body, "hello");
	assert_int_equal(w->cli.last.type, CFL_FRAME_T_REPLY);
	assert_int_equal(w->cli.last.ref, f.id);
	assert_true(w->cli.last.id % 2 == 0);
	assert_string_equal(w->cli.last.body, "world");
	assert_int_equal(w->cli.last.more, 0);
}

/* Both sides closed within the 5 s budget, each with the expected diagnosis. */
static void expect_failure(struct world *w, const char *cli_text, const char *srv_text)
{
	assert_true(wait_for(w, &w->cli.closed, 1, WAIT_MS));
	if (srv_text != NULL)
		assert_true(wait_for(w, &w->srv.closed, 1, WAIT_MS));
	if (strstr(w->cli.reason, cli_text) == NULL)
		fail_msg("client reason '%s' lacks '%s'", w->cli.reason, cli_text);
	if (srv_text != NULL && strstr(w->srv.reason, srv_text) == NULL)
		fail_msg("server reason '%s' lacks '%s'", w->srv.reason, srv_text);
	assert_int_not_equal(w->cli.code, 0);
	assert_true(w->cli.closed_ms - w->started_ms < 5000);
	if (getenv("CFL_TEST_VERBOSE") != NULL)
		fprintf(stderr, "  client (%s, %llu ms): %s\n  server (%s): %s\n",
		        cfl_strerror(w->cli.code),
		        (unsigned long long)(w->cli.closed_ms - w->started_ms), w->cli.reason,
		        cfl_strerror(w->srv.code), w->srv.reason);
}

static void test_clear_exchange(void **state)
{
	struct world w;
	struct cfl_frame f;
	struct cfl_conn_stats st;
	char want[64];
	uint8_t *big;
	uint64_t end;

	(void)state;
	world_start(&w, NULL, NULL, "127.0.0.1");
	world_open(&w);
	assert_int_equal(cfl_conn_mode(w.cli.c), CFL_SEC_CLEAR);
	assert_string_equal(cfl_conn_tls_version(w.cli.c), "none");
	assert_true(cfl_conn_is_open(w.cli.c));
	assert_false(cfl_conn_is_server(w.cli.c));
	assert_true(cfl_conn_is_server(w.srv.c));
	snprintf(want, sizeof(want), "127.0.0.1:%d", w.port);
	assert_string_equal(cfl_conn_peer_addr(w.cli.c), want);
	assert_string_equal(cfl_conn_local_addr(w.srv.c), want);
	assert_memory_equal(cfl_conn_peer_addr(w.srv.c), "127.0.0.1:", 10);
	assert_string_equal(cfl_conn_peer_cn(w.cli.c), "");
	exchange(&w);
	exchange(&w);

	/* A PING is answered by the transport itself. */
	cfl_conn_get_stats(w.cli.c, &st);
	f = text_frame(CFL_FRAME_T_PING, NULL, "12345678");
	f.n_headers = 0;
	assert_int_equal(cfl_conn_send(w.cli.c, &f), 0);
	end = cfl_loop_now_ms(w.loop) + WAIT_MS;
	while (cfl_loop_now_ms(w.loop) < end) {
		struct cfl_conn_stats now;

		(void)cfl_loop_run_once(w.loop, 20);
		cfl_conn_get_stats(w.cli.c, &now);
		if (now.frames_in > st.frames_in)
			break;
	}
	cfl_conn_get_stats(w.cli.c, &st);
	assert_int_equal(st.frames_in, 3);
	assert_int_equal(w.cli.msgs, 2); /* the PONG is not a message */

	/* What cfl_conn_send refuses. */
	f = text_frame(CFL_FRAME_T_CHUNK, NULL, "x");
	assert_int_equal(cfl_conn_send(w.cli.c, &f), CFL_EINVAL);
	f = text_frame(CFL_FRAME_T_ONEWAY, "t", "x");
	f.flags = CFL_FRAME_F_MORE;
	assert_int_equal(cfl_conn_send(w.cli.c, &f), CFL_EINVAL);
	f.flags = 0;
	f.id = 2; /* the acceptor's parity */
	assert_int_equal(cfl_conn_send(w.cli.c, &f), CFL_EINVAL);
	big = calloc(1, CFL_FRAME_MAX_PAYLOAD + 1);
	f.id = 0;
	f.body = big;
	f.body_len = CFL_FRAME_MAX_PAYLOAD + 1;
	assert_int_equal(cfl_conn_send(w.cli.c, &f), CFL_ETOOBIG);
	free(big);
	world_stop(&w);
}

static void test_clear_ipv6(void **state)
{
	struct world w;
	char want[64];

	(void)state;
	world_start(&w, NULL, NULL, "::1");
	assert_true(wait_for(&w, &w.cli.opened, 1, WAIT_MS) || w.cli.closed);
	if (w.cli.closed) {
		world_stop(&w);
		skip(); /* no IPv6 loopback here */
	}
	world_open(&w);
	snprintf(want, sizeof(want), "[::1]:%d", w.port);
	assert_string_equal(cfl_conn_peer_addr(w.cli.c), want);
	assert_string_equal(cfl_conn_local_addr(w.srv.c), want);
	exchange(&w);
	world_stop(&w);
}

static void test_mtls_exchange(void **state)
{
	struct world w;

	(void)state;
	world_start(&w, tls_ctx(1, CFL_SEC_MTLS, "server", "ca"),
	            tls_ctx(0, CFL_SEC_MTLS, "admin", "ca"), "localhost");
	world_open(&w);
	assert_int_equal(cfl_conn_mode(w.cli.c), CFL_SEC_MTLS);
	assert_int_equal(cfl_conn_mode(w.srv.c), CFL_SEC_MTLS);
	assert_string_equal(cfl_conn_tls_version(w.cli.c), "TLSv1.3");
	assert_string_equal(cfl_conn_tls_version(w.srv.c), "TLSv1.3");
	assert_memory_equal(cfl_conn_tls_cipher(w.cli.c), "TLS_", 4);
	assert_string_equal(cfl_conn_peer_cn(w.cli.c), "server1");
	assert_string_equal(cfl_conn_peer_cn(w.srv.c), "admin@nvidia.com");
	assert_string_equal(cfl_conn_peer_org(w.srv.c), "nvidia");
	assert_string_equal(cfl_conn_peer_role(w.srv.c), "project_admin");
	exchange(&w);
	/* With nothing pending, neither side holds a receive buffer (an idle session's memory). */
	assert_null(w.srv.c->rbuf);
	assert_null(w.cli.c->rbuf);
	assert_int_equal(w.srv.c->rcap + w.cli.c->rcap, 0);
	exchange(&w);
	world_stop(&w);
}

static void test_tls_exchange(void **state)
{
	struct world w;

	(void)state;
	world_start(&w, tls_ctx(1, CFL_SEC_TLS, "server", NULL),
	            tls_ctx(0, CFL_SEC_TLS, NULL, "ca"), "127.0.0.1");
	world_open(&w);
	assert_int_equal(cfl_conn_mode(w.cli.c), CFL_SEC_TLS);
	assert_string_equal(cfl_conn_peer_cn(w.cli.c), "server1");
	assert_string_equal(cfl_conn_peer_cn(w.srv.c), ""); /* the client showed no certificate */
	exchange(&w);
	world_stop(&w);
}

/* An mtls client refuses a server that does not ask for its certificate (TLS alone would
 * let it through, silently without the mutual authentication it was configured for). */
static void test_mismatch_mtls_client_tls_server(void **state)
{
	struct world w;

	(void)state;
	world_start(&w, tls_ctx(1, CFL_SEC_TLS, "server", NULL),
	            tls_ctx(0, CFL_SEC_MTLS, "site", "ca"), "127.0.0.1");
	expect_failure(&w,
	               "the server did not ask for a client certificate: it is in tls mode but "
	               "this client is in mtls mode " MISMATCH,
	               "client closed the connection: the server did not ask for a client "
	               "certificate");
	assert_int_equal(w.cli.code, CFL_EPROTO);
	assert_int_equal(w.cli.opened, 0);
	world_stop(&w);
}

/* Frames sent before the handshake completes wait in the queue. */
static void test_send_before_open(void **state)
{
	struct world w;
	struct cfl_frame f = text_frame(CFL_FRAME_T_REQUEST, "early", "bird");

	(void)state;
	world_start(&w, tls_ctx(1, CFL_SEC_MTLS, "server", "ca"),
	            tls_ctx(0, CFL_SEC_MTLS, "site", "ca"), "localhost");
	w.srv.on_msg = echo;
	f.id = cfl_conn_next_id(w.cli.c);
	assert_int_equal(cfl_conn_send(w.cli.c, &f), 0);
	assert_false(cfl_conn_is_open(w.cli.c));
	assert_true(cfl_conn_queued(w.cli.c) > 0);
	assert_true(wait_for(&w, &w.cli.msgs, 1, WAIT_MS));
	assert_int_equal(w.cli.last.ref, f.id);
	assert_string_equal(w.srv.last.topic, "early");
	assert_int_equal(cfl_conn_queued(w.cli.c), 0);
	world_stop(&w);
}

/* Many connections on one loop and one thread, each with a request and its reply. */
static void test_many_connections(void **state)
{
	enum { N = 100 };
	struct world w;
	struct peer *cl = calloc(N, sizeof(*cl));
	struct cfl_tls_ctx *ctx = tls_ctx(0, CFL_SEC_MTLS, "site", "ca");
	struct cfl_frame f = text_frame(CFL_FRAME_T_REQUEST, "train", "hello");
	struct cfl_err e;
	uint64_t end;
	int i, replies = 0;

	(void)state;
	world_init(&w);
	w.srv.on_msg = echo;
	world_listen(&w, tls_ctx(1, CFL_SEC_MTLS, "server", "ca"));
	for (i = 0; i < N; i++) {
		struct cfl_conn_opts o = peer_opts(&cl[i], ctx);

		cl[i].w = &w;
		assert_int_equal(cfl_conn_dial(w.loop, "127.0.0.1", w.port, &o, &cl[i].c, &e), 0);
		assert_int_equal(cfl_conn_send(cl[i].c, &f), 0);
	}
	cfl_tls_ctx_free(ctx);
	end = cfl_loop_now_ms(w.loop) + 4 * WAIT_MS;
	while (replies < N && cfl_loop_now_ms(w.loop) < end) {
		(void)cfl_loop_run_once(w.loop, 20);
		for (replies = 0, i = 0; i < N; i++)
			replies += cl[i].msgs;
	}
	assert_int_equal(replies, N);
	assert_int_equal(w.srv.opened, N);
	for (i = 0; i < N; i++) {
		assert_string_equal(cl[i].last.body, "world");
		cfl_conn_free(cl[i].c);
	}
	assert_true(wait_for(&w, &w.srv.closed, N, WAIT_MS));
	free(cl);
	cfl_listener_free(w.l);
	cfl_loop_free(w.loop);
}

static void test_mismatch_tls_client_clear_server(void **state)
{
	struct world w;

	(void)state;
	world_start(&w, NULL, tls_ctx(0, CFL_SEC_TLS, NULL, "ca"), "127.0.0.1");
	expect_failure(&w, "the server did not answer with TLS: is it in clear mode? " MISMATCH,
	               "peer started a TLS handshake but this listener is in clear mode " MISMATCH);
	assert_int_equal(w.cli.code, CFL_EPROTO);
	assert_int_equal(w.cli.opened, 0);
	world_stop(&w);
}

static void test_mismatch_clear_client_tls_server(void **state)
{
	struct world w;
	struct cfl_frame f = text_frame(CFL_FRAME_T_REQUEST, "login", "site-1");

	(void)state;
	world_start(&w, tls_ctx(1, CFL_SEC_MTLS, "server", "ca"), NULL, "127.0.0.1");
	assert_true(wait_for(&w, &w.cli.opened, 1, WAIT_MS)); /* clear: open once connected */
	assert_int_equal(cfl_conn_send(w.cli.c, &f), 0);
	expect_failure(&w, "this listener requires TLS",
	               "peer sent clear-text frames to a TLS listener " MISMATCH);
	assert_non_null(strstr(w.cli.reason, MISMATCH));
	assert_int_equal(w.srv.opened, 0);
	world_stop(&w);
}

static void test_mismatch_tls_client_mtls_server(void **state)
{
	struct world w;

	(void)state;
	world_start(&w, tls_ctx(1, CFL_SEC_MTLS, "server", "ca"),
	            tls_ctx(0, CFL_SEC_TLS, NULL, "ca"), "localhost");
	expect_failure(&w,
	               "server requires a client certificate (mtls) but this client is in tls "
	               "mode",
	               "client presented no certificate but the server requires mTLS");
	assert_int_equal(w.cli.code, CFL_EVERIFY);
	assert_int_equal(w.srv.code, CFL_EVERIFY);
	world_stop(&w);
}

static void test_unknown_ca(void **state)
{
	struct world w;
	char want[PATH_MAX + 128];

	(void)state;
	world_start(&w, tls_ctx(1, CFL_SEC_TLS, "server2", NULL),
	            tls_ctx(0, CFL_SEC_TLS, NULL, "ca"), "127.0.0.1");
	snprintf(want, sizeof(want),
	         "server certificate is not signed by the CA in '%s/ca.pem' (wrong CA or proxy "
	         "certificate: check custom_ca_cert)",
	         cert_dir);
	expect_failure(&w, want, "the client rejected this side's certificate");
	assert_non_null(strstr(w.cli.reason, "issued by 'CN=other_project'"));
	world_stop(&w);
}

static void test_client_cert_from_other_project(void **state)
{
	struct world w;

	(void)state;
	world_start(&w, tls_ctx(1, CFL_SEC_MTLS, "server", "ca"),
	            tls_ctx(0, CFL_SEC_MTLS, "site2", "ca"), "127.0.0.1");
	expect_failure(&w, "the server rejected this side's certificate",
	               "client certificate is not signed by the CA in");
	world_stop(&w);
}

/* A certificate proves the role it was issued for: under mtls the server refuses a client
 * that shows a server's certificate, a CA's, or one without extended key usage (OpenSSL alone
 * lets all three through), and a client refuses a server with a client's certificate. */
static void test_certificate_purpose(void **state)
{
	static const struct {
		const char *leaf, *why;
	} clients[] = {
	        {"srvsite", "it is a server certificate (extended key usage serverAuth)"},
	        {"casite", "it is a CA certificate (CA:TRUE)"},
	        {"noeku", "it has no extended key usage clientAuth"},
	};
	struct world w;
	char want[256];

	(void)state;
	for (size_t i = 0; i < sizeof(clients) / sizeof(clients[0]); i++) {
		world_start(&w, tls_ctx(1, CFL_SEC_MTLS, "server", "ca"),
		            tls_ctx(0, CFL_SEC_MTLS, clients[i].leaf, "ca"), "127.0.0.1");
		snprintf(want, sizeof(want),
		         "client certificate 'O=nvidia,CN=site-1' cannot prove a client: %s",
		         clients[i].why);
		expect_failure(&w, "the server rejected this side's certificate", want);
		world_stop(&w);
	}
	world_start(&w, tls_ctx(1, CFL_SEC_TLS, "cliserver", NULL),
	            tls_ctx(0, CFL_SEC_TLS, NULL, "ca"), "127.0.0.1");
	expect_failure(&w,
	               "server certificate 'O=nvidia,CN=server1' cannot prove a server: its "
	               "extended key usage is not serverAuth",
	               NULL);
	world_stop(&w);
}

static void test_hostname_check(void **state)
{
	struct world w;

	(void)state;
	/* Dialing an address the certificate does not name fails... */
	world_start(&w, tls_ctx(1, CFL_SEC_TLS, "host", NULL), tls_ctx(0, CFL_SEC_TLS, NULL, "ca"),
	            "127.0.0.1");
	expect_failure(&w,
	               "server certificate does not match '127.0.0.1' (its names: DNS:localhost)",
	               NULL);
	assert_int_equal(w.cli.code, CFL_EVERIFY);
	world_stop(&w);
	/* ...and the name it does carry works. */
	world_start(&w, tls_ctx(1, CFL_SEC_TLS, "host", NULL), tls_ctx(0, CFL_SEC_TLS, NULL, "ca"),
	            "localhost");
	world_open(&w);
	exchange(&w);
	world_stop(&w);
}

static void test_connect_refused(void **state)
{
	struct world w;
	char want[64];

	(void)state;
	world_init(&w);
	world_listen(&w, NULL);
	cfl_listener_free(w.l); /* the port is now (very likely) closed */
	w.l = NULL;
	world_dial(&w, "127.0.0.1", NULL);
	assert_true(wait_for(&w, &w.cli.closed, 1, WAIT_MS));
	assert_int_equal(w.cli.code, CFL_ECONN);
	snprintf(want, sizeof(want), "cannot connect to 127.0.0.1:%d", w.port);
	assert_non_null(strstr(w.cli.reason, want));
	assert_non_null(strstr(w.cli.reason, "refused"));
	world_stop(&w);
}

/* A listening socket that never accepts: the kernel completes TCP, nobody speaks TLS. */
static int silent_listener(int *port)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void test_handshake_timeouts(void **state)
{
	struct world w;
	struct cfl_conn_opts o;
	struct cfl_err e;
	struct sockaddr_in a;
	int fd, raw;

	(void)state;
	/* Client side: connected, but no TLS answer within the connect timeout. */
	world_init(&w);
	fd = silent_listener(&w.port);
	o = peer_opts(&w.cli, tls_ctx(0, CFL_SEC_TLS, NULL, "ca"));
	o.connect_timeout_ms = 300;
	assert_int_equal(cfl_conn_dial(w.loop, "127.0.0.1", w.port, &o, &w.cli.c, &e), 0);
	cfl_tls_ctx_free(o.tls);
	assert_true(wait_for(&w, &w.cli.closed, 1, WAIT_MS));
	assert_int_equal(w.cli.code, CFL_ETIMEDOUT);
	assert_non_null(strstr(w.cli.reason, "did not complete within 0.3 s"));
	assert_true(w.cli.closed_ms - w.started_ms < 2000);
	close(fd);
	world_stop(&w);

	/* Server side: a client that connects and says nothing. */
	world_init(&w);
	o = peer_opts(&w.srv, tls_ctx(1, CFL_SEC_MTLS, "server", "ca"));
	o.connect_timeout_ms = 300;
	assert_int_equal(cfl_listener_new(w.loop, "127.0.0.1", 0, &o, &w.l, &e), 0);
	cfl_tls_ctx_free(o.tls);
	raw = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)cfl_listener_port(w.l));
	assert_int_equal(connect(raw, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_true(wait_for(&w, &w.srv.closed, 1, WAIT_MS));
	assert_int_equal(w.srv.code, CFL_ETIMEDOUT);
	assert_non_null(strstr(w.srv.reason, "the client did not complete the TLS handshake"));
	close(raw);
	world_stop(&w);
}

static void test_close_sends_goaway(void **state)
{
	struct world w;
	struct cfl_frame f = text_frame(CFL_FRAME_T_ONEWAY, "t", "x");

	(void)state;
	capture_logs();
	world_start(&w, tls_ctx(1, CFL_SEC_MTLS, "server", "ca"),
	            tls_ctx(0, CFL_SEC_MTLS, "site", "ca"), "localhost");
	world_open(&w);
	assert_int_equal(cfl_conn_send(w.cli.c, &f), 0);
	cfl_conn_close(w.cli.c, "bye now");
	assert_int_equal(cfl_conn_send(w.cli.c, &f), CFL_ECLOSED);
	cfl_conn_close(w.cli.c, "twice"); /* no effect */
	assert_true(wait_for(&w, &w.cli.closed, 1, WAIT_MS));
	assert_true(wait_for(&w, &w.srv.closed, 1, WAIT_MS));
	assert_int_equal(w.cli.code, 0);
	assert_string_equal(w.cli.reason, "bye now");
	assert_int_equal(w.srv.code, CFL_ECLOSED);
	assert_string_equal(w.srv.reason, "client closed the connection: bye now");
	assert_int_equal(w.srv.msgs, 1); /* what was queued before the close went out */
	assert_non_null(strstr(log_lines, "is going away: bye now"));
	cfl_log_set_sink(NULL, NULL);
	world_stop(&w);
}

/* The application frees a connection from inside its own callback; the frame after it in the
 * same read is not delivered, and nothing is touched after the free. */
static void free_on_msg(struct peer *p, const struct cfl_frame *f, int more)
{
	(void)f;
	(void)more;
	cfl_conn_free(p->c);
	cfl_conn_free(p->c); /* a second free inside the callback is harmless */
	p->c = NULL;
}

static void test_free_inside_callback(void **state)
{
	struct world w;
	struct cfl_frame f = text_frame(CFL_FRAME_T_ONEWAY, "t", "x");

	(void)state;
	world_start(&w, NULL, NULL, "127.0.0.1");
	world_open(&w);
	w.srv.on_msg = free_on_msg;
	assert_int_equal(cfl_conn_send(w.cli.c, &f), 0);
	assert_int_equal(cfl_conn_send(w.cli.c, &f), 0);
	assert_true(wait_for(&w, &w.cli.closed, 1, WAIT_MS));
	assert_int_equal(w.cli.code, CFL_ECLOSED);
	assert_string_equal(w.cli.reason, "server closed the connection");
	assert_int_equal(w.srv.msgs, 1);
	assert_int_equal(w.srv.closed, 0); /* freed, not closed: no on_close */
	world_stop(&w);
}

static void test_tls_ctx_errors(void **state)
{
	struct cfl_tls_config cfg;
	struct cfl_tls_ctx *ctx = NULL;
	struct cfl_err e;
	char crt[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.is_server = 1;
	cfg.mode = CFL_SEC_CLEAR;
	assert_int_equal(cfl_tls_ctx_new(&cfg, &ctx, &e), CFL_EINVAL);
	assert_non_null(strstr(e.msg, "clear connections use none"));

	cfg.mode = CFL_SEC_MTLS;
	cfg.cert_file = cert_path(crt, sizeof(crt), "nosuch.crt");
	cfg.key_file = cert_path(key, sizeof(key), "server.key");
	cfg.ca_file = cert_path(ca, sizeof(ca), "ca.pem");
	assert_int_equal(cfl_tls_ctx_new(&cfg, &ctx, &e), CFL_ENOENT);
	assert_non_null(strstr(e.msg, "cannot read certificate '"));
	assert_non_null(strstr(e.msg, "nosuch.crt': No such file or directory"));

	cfg.cert_file = cert_path(crt, sizeof(crt), "server.crt");
	cfg.key_file = cert_path(key, sizeof(key), "site.key");
	assert_int_equal(cfl_tls_ctx_new(&cfg, &ctx, &e), CFL_ECRYPTO);
	assert_non_null(strstr(e.msg, "site.key' does not match the certificate in"));

	cfg.key_file = cert_path(key, sizeof(key), "ca.cnf"); /* not a key at all */
	assert_int_equal(cfl_tls_ctx_new(&cfg, &ctx, &e), CFL_ECRYPTO);
	assert_non_null(strstr(e.msg, "cannot load private key"));

	cfg.is_server = 0;
	cfg.mode = CFL_SEC_TLS;
	cfg.ca_file = NULL;
	assert_int_equal(cfl_tls_ctx_new(&cfg, &ctx, &e), CFL_EINVAL);
	assert_non_null(strstr(e.msg, "no CA certificate file given"));
	assert_null(ctx);
	cfl_tls_ctx_free(NULL);
}

/* buf = a/b, failing the test if it does not fit. */
static const char *join(char *buf, size_t size, const char *a, const char *b)
{
	assert_true(snprintf(buf, size, "%s/%s", a, b) < (int)size);
	return buf;
}

/* Kits made by `cfl provision` from examples/project.yml work as they are. */
static void test_provisioned_kits(void **state)
{
	const char *bin = getenv("CFL_BIN"), *src = getenv("CFL_SRC");
	char cmd[PATH_MAX * 3], base[PATH_MAX];
	struct cfl_tls_config cfg;
	struct cfl_tls_ctx *s = NULL, *c = NULL;
	char crt[PATH_MAX], key[PATH_MAX], ca[PATH_MAX], ca2[PATH_MAX];
	struct cfl_err e;
	struct world w;

	(void)state;
	if (bin == NULL || src == NULL || access(bin, X_OK) != 0)
		skip();
	snprintf(cmd, sizeof(cmd), "'%s' provision -p '%s/examples/project.yml' -w kits", bin, src);
	if (in_cert_dir(cmd) != 0)
		skip(); /* provisioning is another module's test */
	join(base, sizeof(base), cert_dir, "kits/example_project/prod_00");
	memset(&cfg, 0, sizeof(cfg));
	cfg.is_server = 1;
	cfg.mode = CFL_SEC_MTLS;
	join(crt, sizeof(crt), base, "server1/startup/server.crt");
	join(key, sizeof(key), base, "server1/startup/server.key");
	join(ca, sizeof(ca), base, "server1/startup/rootCA.pem");
	cfg.cert_file = crt;
	cfg.key_file = key;
	cfg.ca_file = ca;
	assert_int_equal(cfl_tls_ctx_new(&cfg, &s, &e), 0);
	cfg.is_server = 0;
	join(crt, sizeof(crt), base, "admin@nvidia.com/startup/client.crt");
	join(key, sizeof(key), base, "admin@nvidia.com/startup/client.key");
	join(ca2, sizeof(ca2), base, "admin@nvidia.com/startup/rootCA.pem");
	cfg.ca_file = ca2;
	assert_int_equal(cfl_tls_ctx_new(&cfg, &c, &e), 0);
	world_start(&w, s, c, "127.0.0.1"); /* host_names: [localhost, 127.0.0.1] */
	world_open(&w);
	assert_string_equal(cfl_conn_peer_cn(w.cli.c), "server1");
	assert_string_equal(cfl_conn_peer_cn(w.srv.c), "admin@nvidia.com");
	assert_string_equal(cfl_conn_peer_role(w.srv.c), "project_admin");
	exchange(&w);
	/* With nothing pending, neither side holds a receive buffer (an idle session's memory). */
	assert_null(w.srv.c->rbuf);
	assert_null(w.cli.c->rbuf);
	assert_int_equal(w.srv.c->rcap + w.cli.c->rcap, 0);
	exchange(&w);
	world_stop(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_clear_exchange),
	        cmocka_unit_test(test_clear_ipv6),
	        cmocka_unit_test(test_mtls_exchange),
	        cmocka_unit_test(test_tls_exchange),
	        cmocka_unit_test(test_mismatch_mtls_client_tls_server),
	        cmocka_unit_test(test_send_before_open),
	        cmocka_unit_test(test_many_connections),
	        cmocka_unit_test(test_mismatch_tls_client_clear_server),
	        cmocka_unit_test(test_mismatch_clear_client_tls_server),
	        cmocka_unit_test(test_mismatch_tls_client_mtls_server),
	        cmocka_unit_test(test_unknown_ca),
	        cmocka_unit_test(test_client_cert_from_other_project),
	        cmocka_unit_test(test_hostname_check),
	        cmocka_unit_test(test_connect_refused),
	        cmocka_unit_test(test_handshake_timeouts),
	        cmocka_unit_test(test_certificate_purpose),
	        cmocka_unit_test(test_close_sends_goaway),
	        cmocka_unit_test(test_free_inside_callback),
	        cmocka_unit_test(test_tls_ctx_errors),
	        cmocka_unit_test(test_provisioned_kits),
	};

	return cmocka_run_group_tests(tests, conn_setup, conn_teardown);
}
