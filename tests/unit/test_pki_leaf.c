/* Unit tests for cfl/pki.h: leaf certificates (server and client roles, key usage, mixed key
 * types, validity capped by the CA's, keys made on demand, refused requests), checked through
 * the public API and through the `openssl` command-line tool. The fixture is in
 * pki_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "pki_fixture.h"

/* ---- leaf certificates ---- */

/* The last line of `openssl x509 -ext subjectKeyIdentifier` output: the key id in hex. */
static void key_id(const char *file, char *id, size_t size)
{
	char path[256], out[OUT_MAX], *p;

	path_of(path, sizeof(path), file);
	assert_int_equal(run(out, sizeof(out),
	                     "openssl x509 -noout -ext subjectKeyIdentifier "
	                     "-in '%s' | tail -1 | tr -d ' \\n'",
	                     path),
	                 0);
	p = out;
	assert_true(strlen(p) >= 20 && strlen(p) < size);
	memcpy(id, p, strlen(p) + 1);
}

static void check_server_leaf(int t)
{
	struct cfl_pki_cert_req req = leaf_req("server.example.com", CFL_PKI_USAGE_SERVER);
	struct cfl_pki_cert *leaf;
	struct cfl_err e = {0};
	char ca[256], lp[256], out[OUT_MAX], buf[128], ski[128];

	req.sans = server_sans;
	req.n_sans = 3;
	leaf = issue(t, fx.leaf_key[t], &req);
	assert_int_equal(cfl_pki_cert_verify(fx.ca[t], leaf, 0, &e), 0);
	assert_true(cfl_pki_cert_matches_key(leaf, fx.leaf_key[t]));
	assert_false(cfl_pki_cert_matches_key(leaf, fx.ca_key[t]));
	assert_int_equal(cfl_pki_cert_cn(leaf, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "server.example.com");
	assert_int_equal(cfl_pki_cert_role(leaf, buf, sizeof(buf)), CFL_ENOENT);

	save_cert(fx.ca[t], "ca.pem");
	save_cert(leaf, "leaf.pem");
	path_of(ca, sizeof(ca), "ca.pem");
	path_of(lp, sizeof(lp), "leaf.pem");
	assert_int_equal(run(out, sizeof(out), "openssl verify -CAfile '%s' '%s'", ca, lp), 0);
	assert_non_null(strstr(out, "leaf.pem: OK"));
	assert_int_equal(run(out, sizeof(out),
	                     "openssl x509 -noout -ext subjectAltName,extendedKeyUsage,"
	                     "basicConstraints,keyUsage -in '%s'",
	                     lp),
	                 0);
	assert_non_null(
	        strstr(out, "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1\n"));
	/* serverAuth alone: a server's certificate is no client's. */
	assert_non_null(strstr(out, "TLS Web Server Authentication\n"));
	assert_null(strstr(out, "Client Authentication"));
	assert_non_null(strstr(out, "CA:FALSE"));
	assert_non_null(strstr(out, "X509v3 Key Usage: critical\n"));
	/* keyEncipherment is for RSA key transport only (RFC 5480 §3). */
	if (t == 1)
		assert_non_null(strstr(out, "Digital Signature, Key Encipherment\n"));
	else
		assert_non_null(strstr(out, " Digital Signature\n"));

	/* AKI names the CA's SKI, so a verifier can pick the right issuer. */
	key_id("ca.pem", ski, sizeof(ski));
	assert_int_equal(run(out, sizeof(out),
	                     "openssl x509 -noout -ext authorityKeyIdentifier,subjectKeyIdentifier "
	                     "-in '%s'",
	                     lp),
	                 0);
	assert_non_null(strstr(out, ski));
	assert_non_null(strstr(out, "X509v3 Subject Key Identifier"));
	assert_int_equal(run(out, sizeof(out), "openssl x509 -noout -issuer -in '%s'", lp), 0);
	assert_string_equal(out, "issuer=CN = example_project, O = nvidia\n");
	cfl_pki_cert_free(leaf);
}

static void test_leaf_server_p256(void **state)
{
	(void)state;
	check_server_leaf(0);
}

static void test_leaf_server_rsa(void **state)
{
	(void)state;
	check_server_leaf(1);
}

/* An EC leaf under an RSA root, as a project that switches key types would have. */
/* A certificate made by the openssl CLI under CA t=0 with the extensions in `ext` (a config
 * line, or "" for none), CN `cn`. */
static struct cfl_pki_cert *openssl_leaf(const char *cn, const char *ext)
{
	char ca[256], key[256], dir[256], out[OUT_MAX];
	struct cfl_pki_cert *cert = NULL;
	struct cfl_err e = {0};

	save_cert(fx.ca[0], "usage-ca.pem");
	path_of(ca, sizeof(ca), "usage-ca.pem");
	path_of(key, sizeof(key), "usage-ca.key");
	assert_int_equal(cfl_pki_key_save(fx.ca_key[0], key, &e), 0);
	path_of(dir, sizeof(dir), "");
	if (run(out, sizeof(out),
	        "cd '%s' && printf '%s\n' >usage.ext && openssl req -new -newkey ec "
	        "-pkeyopt ec_paramgen_curve:P-256 -nodes -keyout usage.key -subj '/CN=%s' "
	        "-out usage.csr && openssl x509 -req -in usage.csr -CA '%s' -CAkey '%s' "
	        "-CAcreateserial -days 2 -extfile usage.ext -out usage.crt",
	        dir, ext, cn, ca, key) != 0)
		fail_msg("openssl: %s", out);
	path_of(dir, sizeof(dir), "usage.crt");
	assert_int_equal(cfl_pki_cert_load(dir, &cert, &e), 0);
	return cert;
}

/* Which certificate may prove which role: a CA none, a server's only a server, a client's only
 * a client; one without extended key usage neither. */
static void test_check_usage(void **state)
{
	struct cfl_pki_cert_req sreq = leaf_req("server1", CFL_PKI_USAGE_SERVER);
	struct cfl_pki_cert_req creq = leaf_req("site-1", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *srv = issue(0, fx.leaf_key[0], &sreq);
	struct cfl_pki_cert *cli = issue(0, fx.leaf_key[0], &creq);
	struct cfl_pki_cert *both, *none, *ca_true;
	struct cfl_err e = {0};

	(void)state;
	assert_int_equal(cfl_pki_cert_check_usage(srv, CFL_PKI_USAGE_SERVER, &e), 0);
	assert_int_equal(cfl_pki_cert_check_usage(cli, CFL_PKI_USAGE_CLIENT, &e), 0);
	assert_int_equal(cfl_pki_cert_check_usage(srv, CFL_PKI_USAGE_CLIENT, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "certificate 'server1' is a server certificate (extended key "
	                           "usage serverAuth), not a client certificate");
	assert_int_equal(cfl_pki_cert_check_usage(cli, CFL_PKI_USAGE_SERVER, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "certificate 'site-1' is not a server certificate (no extended "
	                           "key usage serverAuth)");
	/* The root CA chains to itself, so only this check keeps it from being an identity. */
	assert_int_equal(cfl_pki_cert_check_usage(fx.ca[0], CFL_PKI_USAGE_CLIENT, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "certificate 'example_project' is a CA certificate (CA:TRUE), "
	                           "not a client certificate");
	assert_int_equal(cfl_pki_cert_check_usage(fx.ca[0], CFL_PKI_USAGE_SERVER, &e), CFL_EVERIFY);
	assert_int_equal(cfl_pki_cert_check_usage(cli, CFL_PKI_USAGE_CA, &e), CFL_EINVAL);

	/* Certificates of other makers: a server's that also says clientAuth (as cfl's did), one
	 * without extended key usage (OpenSSL would allow it every purpose), a CA:TRUE leaf. */
	both = openssl_leaf("old-server", "extendedKeyUsage=serverAuth,clientAuth");
	assert_int_equal(cfl_pki_cert_check_usage(both, CFL_PKI_USAGE_SERVER, &e), 0);
	assert_int_equal(cfl_pki_cert_check_usage(both, CFL_PKI_USAGE_CLIENT, &e), CFL_EVERIFY);
	assert_non_null(strstr(e.msg, "'old-server' is a server certificate"));
	none = openssl_leaf("no-eku", "subjectAltName=DNS:no-eku");
	assert_int_equal(cfl_pki_cert_check_usage(none, CFL_PKI_USAGE_CLIENT, &e), CFL_EVERIFY);
	assert_string_equal(
	        e.msg, "certificate 'no-eku' has no extended key usage (it must say clientAuth)");
	ca_true = openssl_leaf("sub-ca", "basicConstraints=CA:TRUE\\nextendedKeyUsage=clientAuth");
	assert_int_equal(cfl_pki_cert_check_usage(ca_true, CFL_PKI_USAGE_CLIENT, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "certificate 'sub-ca' is a CA certificate (CA:TRUE), not a "
	                           "client certificate");
	cfl_pki_cert_free(both);
	cfl_pki_cert_free(none);
	cfl_pki_cert_free(ca_true);
	cfl_pki_cert_free(srv);
	cfl_pki_cert_free(cli);
}

static void test_leaf_mixed_types(void **state)
{
	struct cfl_pki_cert_req req = leaf_req("site-1", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *leaf;
	struct cfl_err e = {0};

	(void)state;
	leaf = issue(1, fx.leaf_key[0], &req);
	assert_int_equal(cfl_pki_cert_verify(fx.ca[1], leaf, 0, &e), 0);
	assert_int_equal(cfl_pki_cert_verify(fx.ca[0], leaf, 0, &e), CFL_EVERIFY);
	cfl_pki_cert_free(leaf);
}

static void test_leaf_client_role(void **state)
{
	struct cfl_pki_cert_req req = leaf_req("admin@nvidia.com", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *leaf;
	char lp[256], out[OUT_MAX], buf[64];

	(void)state;
	req.role = "project_admin";
	leaf = issue(0, fx.leaf_key[0], &req);
	assert_int_equal(cfl_pki_cert_role(leaf, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "project_admin");
	assert_int_equal(cfl_pki_cert_org(leaf, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "nvidia");
	/* The buffer must hold the text and its NUL. */
	assert_int_equal(cfl_pki_cert_role(leaf, buf, strlen("project_admin")), CFL_ETOOBIG);
	assert_int_equal(cfl_pki_cert_role(leaf, buf, strlen("project_admin") + 1), 0);
	assert_int_equal(cfl_pki_cert_cn(leaf, buf, 4), CFL_ETOOBIG);

	save_cert(leaf, "admin.pem");
	path_of(lp, sizeof(lp), "admin.pem");
	assert_int_equal(run(out, sizeof(out), "openssl x509 -noout -subject -in '%s'", lp), 0);
	assert_string_equal(out, "subject=CN = admin@nvidia.com, O = nvidia, unstructuredName = "
	                         "project_admin\n");
	assert_int_equal(run(out, sizeof(out), "openssl x509 -noout -text -in '%s'", lp), 0);
	assert_non_null(strstr(out, "TLS Web Client Authentication\n"));
	assert_null(strstr(out, "TLS Web Server Authentication"));
	assert_null(strstr(out, "Subject Alternative Name"));
	cfl_pki_cert_free(leaf);
}

static void test_leaf_no_org(void **state)
{
	struct cfl_pki_cert_req req = leaf_req("site-2", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *leaf;
	char buf[64];

	(void)state;
	req.org = NULL;
	leaf = issue(0, fx.leaf_key[0], &req);
	assert_int_equal(cfl_pki_cert_org(leaf, buf, sizeof(buf)), CFL_ENOENT);
	assert_int_equal(cfl_pki_cert_cn(leaf, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "site-2");
	cfl_pki_cert_free(leaf);
}

static void test_leaf_validity_capped(void **state)
{
	struct cfl_pki_cert_req req = leaf_req("site-1", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *ca, *leaf = NULL;
	struct cfl_pki_key *ca_key = fx.other_key;
	struct cfl_err e = {0};
	time_t ca_nb, ca_na, nb, na;

	(void)state;
	ca = make_ca(ca_key, "short_lived", 10);
	assert_int_equal(cfl_pki_cert_validity(ca, &ca_nb, &ca_na), 0);
	req.days = 360;
	assert_int_equal(cfl_pki_cert_issue(ca_key, ca, fx.leaf_key[0], &req, &leaf, &e), 0);
	assert_int_equal(cfl_pki_cert_validity(leaf, &nb, &na), 0);
	assert_int_equal(na, ca_na);
	cfl_pki_cert_free(leaf);
	leaf = NULL;

	req.days = 5;
	assert_int_equal(cfl_pki_cert_issue(ca_key, ca, fx.leaf_key[0], &req, &leaf, &e), 0);
	assert_int_equal(cfl_pki_cert_validity(leaf, &nb, &na), 0);
	assert_int_equal(na - nb, 5 * DAY);
	cfl_pki_cert_free(leaf);
	leaf = NULL;

	/* Starting after the issuer has expired cannot be capped into anything valid. */
	req.not_before = ca_na + DAY;
	assert_int_equal(cfl_pki_cert_issue(ca_key, ca, fx.leaf_key[0], &req, &leaf, &e),
	                 CFL_EINVAL);
	assert_string_equal(e.msg,
	                    "cannot issue 'site-1': it would start after its issuer expires");
	assert_null(leaf);
	cfl_pki_cert_free(ca);
}

/* A P-256 leaf is returned without its decoded public key and parsed again on first need:
 * encoding first, then a signature check and a key match, must all see the same certificate. */
static void test_leaf_key_on_demand(void **state)
{
	struct cfl_pki_cert_req req = leaf_req("site-lazy", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *leaf = issue(0, fx.leaf_key[0], &req), *back = NULL;
	struct cfl_err e = {0};
	uint8_t *sig = NULL;
	size_t sig_len = 0, len = 0;
	char *pem = NULL;

	(void)state;
	assert_int_equal(cfl_pki_cert_to_pem(leaf, &pem, &len, &e), 0);
	assert_int_equal(cfl_pki_cert_load_pem(pem, len, &back, &e), 0);
	assert_true(cfl_pki_cert_equal(leaf, back));
	assert_int_equal(cfl_pki_sign(fx.leaf_key[0], "abc", 3, &sig, &sig_len, &e), 0);
	assert_int_equal(cfl_pki_verify(leaf, "abc", 3, sig, sig_len, &e), 0);
	assert_true(cfl_pki_cert_matches_key(leaf, fx.leaf_key[0]));
	assert_int_equal(cfl_pki_cert_verify(fx.ca[0], leaf, 0, &e), 0);
	assert_true(cfl_pki_cert_equal(leaf, back));
	free(sig);
	free(pem);
	cfl_pki_cert_free(back);
	cfl_pki_cert_free(leaf);
}

static void test_issue_errors(void **state)
{
	static const char *const bad_san[] = {"host name"};
	char cn65[66], cn64[65];
	struct cfl_pki_cert_req req;
	struct cfl_pki_cert *cert = NULL, *sub = NULL;
	struct cfl_err e = {0};

	(void)state;
	memset(cn65, 'a', 65);
	cn65[65] = '\0';
	req = leaf_req(cn65, CFL_PKI_USAGE_SERVER);
	assert_int_equal(
	        cfl_pki_cert_issue(fx.ca_key[0], fx.ca[0], fx.leaf_key[0], &req, &cert, &e),
	        CFL_EINVAL);
	assert_non_null(strstr(e.msg, "cannot issue certificate: common name 'aaaa"));
	assert_non_null(strstr(e.msg, "' is longer than 64 bytes"));
	assert_int_equal(cfl_pki_ca_create(fx.ca_key[0], &req, &cert, &e), CFL_EINVAL);
	assert_non_null(strstr(e.msg, "is longer than 64 bytes"));
	assert_null(cert);

	memset(cn64, 'a', 64);
	cn64[64] = '\0';
	req.cn = cn64;
	cert = issue(0, fx.leaf_key[0], &req);
	cfl_pki_cert_free(cert);
	cert = NULL;

	req.cn = "";
	assert_int_equal(
	        cfl_pki_cert_issue(fx.ca_key[0], fx.ca[0], fx.leaf_key[0], &req, &cert, &e),
	        CFL_EINVAL);
	assert_string_equal(e.msg, "cannot issue certificate: common name is empty");

	req.cn = "site-1";
	req.days = 0;
	assert_int_equal(
	        cfl_pki_cert_issue(fx.ca_key[0], fx.ca[0], fx.leaf_key[0], &req, &cert, &e),
	        CFL_EINVAL);
	assert_non_null(strstr(e.msg, "validity of 0 days for 'site-1'"));

	req.days = 30;
	req.sans = bad_san;
	req.n_sans = 1;
	assert_int_equal(
	        cfl_pki_cert_issue(fx.ca_key[0], fx.ca[0], fx.leaf_key[0], &req, &cert, &e),
	        CFL_EINVAL);
	assert_non_null(strstr(e.msg, "'host name'"));

	req.n_sans = 0;
	req.usage = CFL_PKI_USAGE_CA;
	assert_int_equal(
	        cfl_pki_cert_issue(fx.ca_key[0], fx.ca[0], fx.leaf_key[0], &req, &cert, &e),
	        CFL_EINVAL);
	assert_string_equal(e.msg, "cannot issue 'site-1': usage must be server or client");

	req.usage = CFL_PKI_USAGE_CLIENT;
	assert_int_equal(
	        cfl_pki_cert_issue(fx.ca_key[1], fx.ca[0], fx.leaf_key[0], &req, &cert, &e),
	        CFL_EINVAL);
	assert_string_equal(e.msg,
	                    "cannot issue 'site-1': CA key does not match the CA certificate");

	assert_int_equal(cfl_pki_ca_create(fx.ca_key[0], &req, &cert, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "cannot create CA 'site-1': usage is not CA");

	/* A leaf cannot issue. */
	cert = issue(0, fx.leaf_key[0], &req);
	assert_int_equal(cfl_pki_cert_issue(fx.leaf_key[0], cert, fx.leaf_key[1], &req, &sub, &e),
	                 CFL_EINVAL);
	assert_string_equal(e.msg, "cannot issue 'site-1': issuer certificate is not a CA");
	assert_null(sub);
	cfl_pki_cert_free(cert);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_leaf_server_p256),
	        cmocka_unit_test(test_leaf_server_rsa),
	        cmocka_unit_test(test_check_usage),
	        cmocka_unit_test(test_leaf_mixed_types),
	        cmocka_unit_test(test_leaf_client_role),
	        cmocka_unit_test(test_leaf_no_org),
	        cmocka_unit_test(test_leaf_validity_capped),
	        cmocka_unit_test(test_leaf_key_on_demand),
	        cmocka_unit_test(test_issue_errors),
	};

	return cmocka_run_group_tests_name("pki", tests, setup, teardown);
}
