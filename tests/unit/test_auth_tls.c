/* Unit tests for logging in over mtls (src/auth/auth_server.c, auth_client.c): the name must be
 * the one the TLS handshake proved, a certificate revoked since the handshake is refused on
 * either side, a server that logs in with another certificate than its TLS one, and a
 * challenge reply without a signature. The fixture is in auth_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth_fixture.h"

/* --- logging in over mtls -------------------------------------------------------------------- */

/* In mtls mode the name must also be the one the TLS handshake proved. */
static void test_register_mtls_identity(void **state)
{
	char crt[PATH_MAX], key[PATH_MAX], ca[PATH_MAX], p2[2][PATH_MAX];
	struct cfl_tls_config tc = {0};
	struct cfl_tls_ctx *srv = NULL, *cli = NULL;
	struct cfl_auth_session_info info[2];
	struct cfl_err e = {0};
	struct authrep r;
	struct world w;
	struct reg g;
	struct cli *c;

	(void)state;
	tc.is_server = 1;
	tc.mode = CFL_SEC_MTLS;
	tc.cert_file = kit(crt, sizeof(crt), prod, "server1", "server.crt");
	tc.key_file = kit(key, sizeof(key), prod, "server1", "server.key");
	tc.ca_file = kit(ca, sizeof(ca), prod, "server1", "rootCA.pem");
	assert_int_equal(cfl_tls_ctx_new(&tc, &srv, &e), 0);
	tc.is_server = 0;
	tc.cert_file = kit(crt, sizeof(crt), prod, "site-1", "client.crt");
	tc.key_file = kit(key, sizeof(key), prod, "site-1", "client.key");
	tc.ca_file = kit(ca, sizeof(ca), prod, "site-1", "rootCA.pem");
	assert_int_equal(cfl_tls_ctx_new(&tc, &cli, &e), 0);
	world_start(&w, NULL, srv);
	c = cli_add(&w, "site-1");
	cli_dial(c, cli);
	assert_string_equal(cfl_conn_peer_cn(cfl_peer_conn(srv_peer_of(&w, c))), "site-1");
	/* site-2's own certificate and key, over site-1's TLS connection. */
	good_reg(&g, p2, "site-2");
	login_by_hand(c, &g, &r);
	assert_string_equal(r.reason, "name differs from the connection's TLS certificate");
	good_reg(&g, p2, "site-1");
	login_by_hand(c, &g, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.security, "mtls");
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 2), 1);
	assert_int_equal(info[0].mode, CFL_SEC_MTLS);
	world_stop(&w);
}

/* An mtls context of kit `who` (server1's server.crt, or a site's client.crt). */
static struct cfl_tls_ctx *mtls_ctx(int is_server, const char *who)
{
	char crt[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
	struct cfl_tls_config tc = {0};
	struct cfl_tls_ctx *ctx = NULL;
	struct cfl_err e = {0};

	tc.is_server = is_server;
	tc.mode = CFL_SEC_MTLS;
	tc.cert_file = kit(crt, sizeof(crt), prod, who, is_server ? "server.crt" : "client.crt");
	tc.key_file = kit(key, sizeof(key), prod, who, is_server ? "server.key" : "client.key");
	tc.ca_file = kit(ca, sizeof(ca), prod, who, "rootCA.pem");
	if (cfl_tls_ctx_new(&tc, &ctx, &e) != 0)
		fail_msg("tls context of %s: %s", who, e.msg);
	return ctx;
}

/* Writes a CRL of the project's root CA that revokes the certificate in `cert_file` into
 * tmp_dir/<out>; returns its path in buf. */
static const char *revoking_crl(char *buf, size_t size, const char *out, const char *cert_file)
{
	struct cfl_pki_key *ca_key = NULL;
	struct cfl_pki_cert *ca = NULL, *cert = NULL;
	struct cfl_pki_revoked r = {.when = time(NULL), .reason = 1};
	char path[PATH_MAX], serial[64], *pem = NULL;
	struct cfl_err e = {0};
	size_t len = 0;

	assert_int_equal(
	        cfl_pki_key_load(state_file(path, sizeof(path), "rootCA.key"), &ca_key, &e), 0);
	assert_int_equal(cfl_pki_cert_load(state_file(path, sizeof(path), "rootCA.pem"), &ca, &e),
	                 0);
	assert_int_equal(cfl_pki_cert_load(cert_file, &cert, &e), 0);
	assert_int_equal(cfl_pki_cert_serial(cert, serial, sizeof(serial)), 0);
	r.serial_hex = serial;
	if (cfl_pki_crl_create(ca_key, ca, &r, 1, 1, 30, time(NULL), &pem, &len, &e) != 0)
		fail_msg("crl: %s", e.msg);
	path_join(buf, size, tmp_dir, out);
	assert_int_equal(cfl__fs_write_file(buf, pem, len, 0644, &e), 0);
	free(pem);
	cfl_pki_cert_free(cert);
	cfl_pki_cert_free(ca);
	cfl_pki_key_free(ca_key);
	return buf;
}

/* The login's certificate is the one the mtls handshake verified (no second parse or path
 * check), but one revoked since the handshake is still refused, on either side. */
static void test_mtls_revoked_after_handshake(void **state)
{
	char paths[3][PATH_MAX], p2[2][PATH_MAX], crl[PATH_MAX], crt[PATH_MAX];
	struct cfl_auth_client_cfg cfg;
	struct cfl_err e = {0};
	struct authrep r;
	struct world w;
	struct reg g;
	struct cli *c;

	(void)state;
	/* The server: site-1's handshake passes (no CRL at TLS), then the CRL arrives. */
	world_start(&w, NULL, mtls_ctx(1, "server1"));
	c = cli_add(&w, "site-1");
	cli_dial(c, mtls_ctx(0, "site-1"));
	revoking_crl(crl, sizeof(crl), "site-1.crl",
	             kit(crt, sizeof(crt), prod, "site-1", "client.crt"));
	assert_int_equal(cfl_auth_server_set_crl(w.auth, crl, &e), 0);
	good_reg(&g, p2, "site-1");
	login_by_hand(c, &g, &r);
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.reason, "certificate revoked"));
	world_stop(&w);

	/* The site: the server's handshake passes, then the site's CRL revokes it. */
	world_start(&w, NULL, mtls_ctx(1, "server1"));
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	cfg.mode = CFL_SEC_MTLS;
	c = cli_auth(&w, &cfg, 0);
	cli_dial(c, mtls_ctx(0, "site-1"));
	revoking_crl(crl, sizeof(crl), "server1.crl",
	             kit(crt, sizeof(crt), prod, "server1", "server.crt"));
	assert_int_equal(cfl_auth_client_set_crl(c->auth, crl, &e), 0);
	assert_int_equal(cfl_auth_client_login(c->auth, c->peer, on_login, c), 0);
	assert_true(wait_for(w.loop, &c->logins, 1, WAIT_MS));
	assert_int_equal(c->login_status, CFL_EAUTH);
	assert_non_null(strstr(c->login_reason, "certificate revoked"));
	world_stop(&w);
}

/* Over mtls, a site whose handshake verified another certificate than the one the server logs
 * in with (as behind a proxy) gets the challenge signed and verifies it. */
static void test_mtls_other_login_cert(void **state)
{
	char paths[3][PATH_MAX], cert[PATH_MAX];
	struct cfl_auth_client_cfg cfg;
	struct world w;
	struct cli *c;

	(void)state;
	/* server1's key, a second server certificate: not the one TLS presents. */
	server_cert_override = issue_usage(cert, sizeof(cert), "server1-second.crt", "server1",
	                                   NULL, "server1", "server.key", CFL_PKI_USAGE_SERVER);
	world_start(&w, NULL, mtls_ctx(1, "server1"));
	server_cert_override = NULL;
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	cfg.mode = CFL_SEC_MTLS;
	c = cli_auth(&w, &cfg, 1);
	cli_dial(c, mtls_ctx(0, "site-1"));
	assert_int_equal(c->login_status, 0);
	assert_string_equal(c->login_reason, "");
	world_stop(&w);
}

/* A server side that answers a challenge with `pem` and no signature. */
struct unsigned_srv {
	struct world *w;
	char *pem;
	size_t len;
	int challenges;
};

static void unsigned_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct unsigned_srv *u = arg;

	(void)p;
	(void)code;
	(void)reason;
	u->w->srv_up++;
}

static void unsigned_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct unsigned_srv *u = arg;

	(void)p;
	(void)code;
	(void)reason;
	u->w->srv_down++;
}

static void unsigned_challenge(struct cfl_peer *p, const struct cfl_frame *f, int more,
                               struct cfl_msg_sink *sink, void *arg)
{
	struct unsigned_srv *u = arg;
	char nonce[NONCE_HEX];
	struct cfl_header h[2];

	(void)more;
	(void)sink;
	u->challenges++;
	assert_int_equal(cfl__auth_nonce(nonce), 0);
	h[0] = hdr("server_cn", "server1");
	h[1] = hdr("server_nonce", nonce);
	assert_int_equal(cfl_peer_reply(p, f->id, h, 2, u->pem, u->len), 0);
}

/* A reply without a signature is accepted only with the very certificate the handshake
 * verified: one that carries another certificate of the server (one a proxy or a man in the
 * middle could show) is refused. */
static void test_unsigned_challenge_refused(void **state)
{
	char paths[3][PATH_MAX], cert[PATH_MAX];
	struct unsigned_srv u = {0};
	struct cfl_auth_client_cfg cfg;
	struct cfl_conn_opts o;
	struct cfl_err e = {0};
	struct world w;
	struct cli *c;

	(void)state;
	issue_usage(cert, sizeof(cert), "server1-third.crt", "server1", NULL, "server1",
	            "server.key", CFL_PKI_USAGE_SERVER);
	assert_int_equal(cfl__fs_read_file(cert, 1u << 20, &u.pem, &u.len, &e), 0);
	memset(&w, 0, sizeof(w));
	log_capture();
	u.w = &w;
	assert_int_equal(cfl_loop_new(&w.loop, &e), 0);
	assert_int_equal(cfl_msg_hub_new(w.loop, "server", &w.hub, &e), 0);
	cfl_msg_hub_on_peer(w.hub, unsigned_up, unsigned_down, &u);
	assert_int_equal(cfl_msg_hub_handle(w.hub, "challenge", unsigned_challenge, &u), 0);
	o = cfl_msg_hub_conn_opts(w.hub, mtls_ctx(1, "server1"));
	if (cfl_listener_new(w.loop, "127.0.0.1", 0, &o, &w.l, &e) != 0)
		fail_msg("listener: %s", e.msg);
	cfl_tls_ctx_free(o.tls);
	w.port = cfl_listener_port(w.l);
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	cfg.mode = CFL_SEC_MTLS;
	c = cli_auth(&w, &cfg, 1);
	cli_dial(c, mtls_ctx(0, "site-1"));
	assert_int_equal(u.challenges, 1);
	assert_int_equal(c->login_status, CFL_EAUTH);
	assert_string_equal(c->login_reason, "the server's challenge signature does not verify");
	free(u.pem);
	world_stop(&w);
}

/* --- main ------------------------------------------------------------------------------------ */

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_register_mtls_identity),
	        cmocka_unit_test(test_mtls_revoked_after_handshake),
	        cmocka_unit_test(test_mtls_other_login_cert),
	        cmocka_unit_test(test_unsigned_challenge_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
