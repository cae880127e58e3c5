/* Unit tests for logging in (src/auth/auth_server.c, auth_client.c): every check of register
 * (nonce, project, certificate chain, purpose, CN, role, signature), the limits of challenge
 * and its signature, the client's login failures (a server certificate of the wrong purpose
 * among them) and the client's own gate on the server's messages. The fixture is in
 * auth_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth_fixture.h"

/* --- register -------------------------------------------------------------------------------- */

/* One login attempt on a fresh connection; returns the rejection reason ("" when it worked). */
static const char *attempt(struct world *w, const struct reg *g)
{
	static struct authrep r;
	struct cli *c = cli_raw(w, g->name);

	login_by_hand(c, g, &r);
	if (r.status == 0)
		return "";
	assert_int_equal(r.status, CFL_EPROTO);
	assert_string_equal(r.status_hdr, "unauthenticated");
	return r.reason;
}

static void test_register_checks(void **state)
{
	char p1[2][PATH_MAX], p2[2][PATH_MAX], adm[2][PATH_MAX], oth[2][PATH_MAX], path[PATH_MAX];
	char nonce[NONCE_HEX + 1];
	struct reg g, ok;
	struct authrep r;
	struct world w;
	struct cli *c;
	const char *why;

	(void)state;
	world_start(&w, NULL, NULL);
	good_reg(&ok, p1, "site-1");

	/* The nonce: unknown, issued to another name, or used before. */
	g = ok;
	g.nonce = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	assert_string_equal(attempt(&w, &g),
	                    "register without a valid challenge (unknown, used or stale nonce)");
	g = ok;
	g.challenge_name = "site-2";
	assert_string_equal(attempt(&w, &g),
	                    "register without a valid challenge (unknown, used or stale nonce)");
	/* A refused register spends its nonce: the same one again, now right, is refused too. */
	c = cli_raw(&w, "site-1");
	challenge(c, "site-1", &r);
	snprintf(nonce, sizeof(nonce), "%s", r.server_nonce);
	g = ok;
	g.project = "otherp";
	g.nonce = nonce;
	login_by_hand(c, &g, &r);
	assert_string_equal(r.reason, "wrong project 'otherp'");
	g.project = NULL;
	login_by_hand(c, &g, &r);
	assert_string_equal(r.reason,
	                    "register without a valid challenge (unknown, used or stale nonce)");
	/* So is a register that worked, replayed on another connection. */
	challenge(c, "site-1", &r);
	snprintf(nonce, sizeof(nonce), "%s", r.server_nonce);
	login_by_hand(c, &g, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(probe_as(c, "site-1", r.token, r.sig), "");
	assert_string_equal(attempt(&w, &g),
	                    "register without a valid challenge (unknown, used or stale nonce)");

	/* The project, in the header and in what was signed. */
	g = ok;
	g.project = "otherp";
	assert_string_equal(attempt(&w, &g), "wrong project 'otherp'");
	g = ok;
	g.signed_project = "otherp";
	assert_string_equal(attempt(&w, &g), "bad register signature");

	/* The certificate: none, garbage, from another project's CA. */
	g = ok;
	g.cert = NULL;
	assert_string_equal(attempt(&w, &g), "no readable certificate");
	g = ok;
	g.cert = kit(path, sizeof(path), prod, "site-1", "fed_client.json");
	assert_string_equal(attempt(&w, &g), "no readable certificate");
	g = ok;
	g.cert = kit(oth[0], PATH_MAX, other_prod, "site-1", "client.crt");
	g.key = kit(oth[1], PATH_MAX, other_prod, "site-1", "client.key");
	why = attempt(&w, &g);
	if (strstr(why, "verify failed: unable to get local issuer certificate") == NULL)
		fail_msg("unexpected reason '%s'", why);

	/* The name must be the certificate's CN. */
	g = ok;
	g.name = "site-2";
	g.challenge_name = "site-2";
	assert_string_equal(attempt(&w, &g),
	                    "name 'site-2' does not match the certificate CN 'site-1'");

	/* Signed by another key than the certificate's. */
	good_reg(&g, p2, "site-2");
	g.key = ok.key;
	assert_string_equal(attempt(&w, &g), "bad register signature");

	/* Roles: an admin certificate is no client, a client certificate no admin. */
	g.name = "admin@test.org";
	g.challenge_name = NULL;
	g.cert = kit(adm[0], PATH_MAX, prod, "admin@test.org", "client.crt");
	g.key = kit(adm[1], PATH_MAX, prod, "admin@test.org", "client.key");
	assert_string_equal(attempt(&w, &g), "an admin certificate cannot log in as a client");
	g.kind = "admin";
	assert_string_equal(attempt(&w, &g), "");
	g = ok;
	g.kind = "admin";
	assert_string_equal(attempt(&w, &g), "not an admin certificate (no role)");
	assert_true(logged("(claims 'site-1'): not an admin certificate (no role)", NULL));

	/* All right at last. */
	assert_string_equal(attempt(&w, &ok), "");
	world_stop(&w);
}

/* Logs in a client with `cfg` and returns its login status and reason. */
static int client_login(struct world *w, const struct cfl_auth_client_cfg *cfg, const char **why)
{
	struct cli *c = cli_auth(w, cfg, 1);

	cli_dial(c, NULL);
	*why = c->login_reason;
	return c->login_status;
}

/* A certificate proves only the role it was issued for: the root CA's (which chains to itself)
 * and a server's (which chains to the root) are no site's or admin's identity, and a client's
 * certificate does not make a server. */
static void test_certificate_purposes(void **state)
{
	char cert[PATH_MAX], key[PATH_MAX], paths[3][PATH_MAX];
	struct cfl_auth_client_cfg cfg;
	struct world w;
	struct reg g;
	const char *why;

	(void)state;
	world_start(&w, NULL, NULL);
	/* site-1's own key, in a certificate issued for a server. */
	memset(&g, 0, sizeof(g));
	g.name = "site-1";
	g.cert = issue_usage(cert, sizeof(cert), "site-1-server.crt", "site-1", NULL, "site-1",
	                     "client.key", CFL_PKI_USAGE_SERVER);
	g.key = kit(key, sizeof(key), prod, "site-1", "client.key");
	assert_string_equal(attempt(&w, &g), "certificate 'site-1' is a server certificate "
	                                     "(extended key usage serverAuth), not a client "
	                                     "certificate");
	assert_true(
	        logged("(claims 'site-1'): certificate 'site-1' is a server certificate", NULL));
	/* The server's own certificate and key, as a site named like it. */
	g.name = "server1";
	g.cert = kit(cert, sizeof(cert), prod, "server1", "server.crt");
	g.key = kit(key, sizeof(key), prod, "server1", "server.key");
	assert_string_equal(attempt(&w, &g), "certificate 'server1' is a server certificate "
	                                     "(extended key usage serverAuth), not a client "
	                                     "certificate");
	/* An admin certificate with a role, issued for a server. */
	g.name = "admin@test.org";
	g.kind = "admin";
	g.cert = issue_usage(cert, sizeof(cert), "admin-server.crt", "admin@test.org",
	                     "project_admin", "admin@test.org", "client.key", CFL_PKI_USAGE_SERVER);
	g.key = kit(key, sizeof(key), prod, "admin@test.org", "client.key");
	assert_string_equal(attempt(&w, &g), "certificate 'admin@test.org' is a server certificate "
	                                     "(extended key usage serverAuth), not a client "
	                                     "certificate");
	/* The root CA itself, by whoever holds its key. */
	g.name = PROJECT;
	g.kind = NULL;
	g.cert = state_file(cert, sizeof(cert), "rootCA.pem");
	g.key = state_file(key, sizeof(key), "rootCA.key");
	assert_string_equal(attempt(&w, &g), "certificate 'authp' is a CA certificate (CA:TRUE), "
	                                     "not a client certificate");
	world_stop(&w);

	/* A server that shows a client's certificate (its own key, CN server1). */
	server_cert_override = issue_usage(cert, sizeof(cert), "server1-client.crt", "server1",
	                                   NULL, "server1", "server.key", CFL_PKI_USAGE_CLIENT);
	world_start(&w, NULL, NULL);
	server_cert_override = NULL;
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	assert_int_equal(client_login(&w, &cfg, &why), CFL_EAUTH);
	assert_string_equal(why, "the server's certificate cannot prove a server: certificate "
	                         "'server1' is not a server certificate (no extended key usage "
	                         "serverAuth)");
	world_stop(&w);
}

static void test_challenge_limits(void **state)
{
	struct cfl_header h[2];
	struct authrep r;
	struct world w;
	struct cli *c;

	(void)state;
	world_start(&w, NULL, NULL);
	c = cli_raw(&w, "site-1");
	/* A challenge needs a name and a 32-byte hex nonce. */
	h[0] = hdr("client_name", "site-1");
	h[1] = hdr("nonce", "1234");
	ask(c, "challenge", h, 2, NULL, 0, &r);
	assert_int_equal(r.status, CFL_EPROTO);
	assert_string_equal(r.status_hdr, "bad_request");
	assert_string_equal(r.reason, "challenge needs client_name and nonce");
	ask(c, "challenge", h, 1, NULL, 0, &r);
	assert_string_equal(r.reason, "challenge needs client_name and nonce");
	/* A claimed name cannot write lines of its own into the log: control characters are
	 * replaced (header values may hold any byte but NUL). */
	h[0] = hdr("client_name", "x\nW server1 logged in\r\x1b[2J");
	ask(c, "challenge", h, 1, NULL, 0, &r);
	assert_true(logged("(claims 'x?W server1 logged in??[2J'): challenge without", NULL));
	assert_null(strstr(log_text, "\nW server1"));
	/* Each answer costs a signature: the ninth on one connection closes it. */
	for (int i = 3; i < 8; i++) {
		challenge(c, "site-1", &r);
		assert_int_equal(r.status, 0);
	}
	challenge(c, "site-1", &r);
	assert_int_equal(r.status, CFL_ECLOSED);
	assert_non_null(strstr(r.reason, "too many challenges"));
	assert_true(logged("too many challenges on one connection", NULL));
	world_stop(&w);
}

/* A site whose TLS handshake verified the server's own certificate (tls_cert, its fingerprint)
 * gets no challenge signature; any other fingerprint, or none, gets one that verifies. */
static void test_challenge_tls_cert(void **state)
{
	char path[PATH_MAX], fp[CFL_PKI_FINGERPRINT_MAX], nonce[NONCE_HEX];
	struct cfl_pki_cert *cert = NULL;
	struct cfl_err e = {0};
	struct cfl_header h[4];
	struct authrep r;
	struct world w;
	uint8_t tbs[1024];
	size_t n;
	struct cli *c;

	(void)state;
	assert_int_equal(cfl_pki_cert_load(kit(path, sizeof(path), prod, "server1", "server.crt"),
	                                   &cert, &e),
	                 0);
	assert_int_equal(cfl_pki_cert_fingerprint(cert, fp, sizeof(fp)), 0);
	world_start(&w, NULL, NULL);
	c = cli_raw(&w, "site-1");
	assert_int_equal(cfl__auth_nonce(nonce), 0);
	h[0] = hdr("client_name", "site-1");
	h[1] = hdr("nonce", nonce);
	h[2] = hdr("kind", "client");
	h[3] = hdr("tls_cert", fp);
	ask(c, "challenge", h, 4, NULL, 0, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.signature, "");
	assert_true(r.server_nonce[0] != '\0');
	/* Another certificate's fingerprint (the last digit changed), and none. */
	fp[strlen(fp) - 1] = fp[strlen(fp) - 1] == '0' ? '1' : '0';
	for (size_t k = 4; k >= 3; k--) {
		ask(c, "challenge", h, k, NULL, 0, &r);
		assert_int_equal(r.status, 0);
		n = cfl__auth_tbs(tbs, sizeof(tbs), "cfl-challenge", "server1", nonce, NULL);
		assert_int_equal(cfl__auth_verify_b64(cert, tbs, n, r.signature), 0);
	}
	cfl_pki_cert_free(cert);
	world_stop(&w);
}

/* --- the client side ------------------------------------------------------------------------- */

static void test_client_login_failures(void **state)
{
	char paths[3][PATH_MAX], other[3][PATH_MAX];
	struct cfl_auth_client_cfg cfg;
	struct world w;
	const char *why;

	(void)state;
	world_start(&w, NULL, NULL);
	/* The server must prove the identity the kit names... */
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	cfg.server_cn = "server9";
	assert_int_equal(client_login(&w, &cfg, &why), CFL_EAUTH);
	assert_string_equal(why, "the server is 'server1', not the expected 'server9'");
	/* ...with a certificate of the client's own project. */
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	cfg.root_ca = kit(other[2], PATH_MAX, other_prod, "site-1", "rootCA.pem");
	assert_int_equal(client_login(&w, &cfg, &why), CFL_EAUTH);
	assert_string_equal(why, "the server's certificate is not from this project: certificate "
	                         "'server1' verify failed: unable to get local issuer certificate");
	/* The server's refusals reach the client with their reason. */
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	cfg.project = "otherp";
	assert_int_equal(client_login(&w, &cfg, &why), CFL_EAUTH);
	assert_string_equal(why, "wrong project 'otherp'");
	client_cfg(&cfg, other, other_prod, "site-1", CFL_AUTH_CLIENT);
	cfg.root_ca = kit(paths[2], PATH_MAX, prod, "site-1", "rootCA.pem");
	assert_int_equal(client_login(&w, &cfg, &why), CFL_EAUTH);
	assert_string_equal(
	        why, "certificate 'site-1' verify failed: unable to get local issuer certificate");
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	assert_int_equal(client_login(&w, &cfg, &why), 0);
	assert_string_equal(why, "");
	world_stop(&w);
}

/* The client drops what the server side sends without the server's token, and everything but
 * replies before its login. */
static void test_client_gate(void **state)
{
	char paths[3][PATH_MAX];
	struct cfl_auth_client_cfg cfg;
	struct authrep back;
	struct world w;
	struct cli *c;
	struct cfl_peer *sp;

	(void)state;
	world_start(&w, NULL, NULL);
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	c = cli_auth(&w, &cfg, 0);
	cli_dial(c, NULL);
	sp = srv_peer_of(&w, c);

	/* Before the login: refused. Its error reply is unauthenticated itself, so the server's
	 * gate drops it in turn (logged) and the request times out. */
	memset(&back, 0, sizeof(back));
	assert_int_equal(cfl_peer_request(sp, "ping", NULL, 0, NULL, 0, 300, on_authrep, &back), 0);
	assert_true(wait_for(w.loop, &back.calls, 1, WAIT_MS));
	assert_int_equal(back.status, CFL_ETIMEDOUT);
	assert_int_equal(c->pings, 0);
	assert_true(logged("(claims '-'): missing authentication headers", NULL));

	assert_int_equal(cfl_auth_client_login(c->auth, c->peer, on_login, c), 0);
	assert_true(wait_for(w.loop, &c->logins, 1, WAIT_MS));
	assert_int_equal(c->login_status, 0);
	memset(&back, 0, sizeof(back));
	assert_int_equal(cfl_peer_request(sp, "ping", NULL, 0, NULL, 0, 2000, on_authrep, &back),
	                 0);
	assert_true(wait_for(w.loop, &back.calls, 1, WAIT_MS));
	assert_int_equal(back.status, 0);
	assert_int_equal(c->pings, 1);

	/* Without the server's token, or with a forged one. */
	{
		static const char *const keys[3] = {"client_name", "token", "token_signature"};
		static const char *const forged[3] = {"server", "v1.1.00", "c2ln"};

		assert_int_equal(cfl_peer_set_auth(sp, keys, forged, 3), 0);
		memset(&back, 0, sizeof(back));
		assert_int_equal(
		        cfl_peer_request(sp, "ping", NULL, 0, NULL, 0, 2000, on_authrep, &back), 0);
		assert_true(wait_for(w.loop, &back.calls, 1, WAIT_MS));
		assert_string_equal(back.reason, "message without the server's token");
		assert_int_equal(cfl_peer_set_auth(sp, NULL, NULL, 0), 0);
		memset(&back, 0, sizeof(back));
		assert_int_equal(
		        cfl_peer_request(sp, "ping", NULL, 0, NULL, 0, 2000, on_authrep, &back), 0);
		assert_true(wait_for(w.loop, &back.calls, 1, WAIT_MS));
		assert_string_equal(back.status_hdr, "unauthenticated");
		assert_string_equal(back.reason, "message without the server's token");
	}
	assert_int_equal(c->pings, 1);
	assert_true(logged("lacks the server's token", NULL));
	world_stop(&w);
}

/* --- main ------------------------------------------------------------------------------------ */

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_register_checks),
	        cmocka_unit_test(test_certificate_purposes),
	        cmocka_unit_test(test_challenge_limits),
	        cmocka_unit_test(test_challenge_tls_cert),
	        cmocka_unit_test(test_client_login_failures),
	        cmocka_unit_test(test_client_gate),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
