/* Unit tests for the trust half of cfl/pki.h: chains through an intermediate, issuer
 * pinning, CRLs (revocation, wrong signer, expiry), fingerprints, serials and CSRs. */
#include "cfl/err.h"
#include "cfl/pki.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DAY ((time_t)86400)

/* root -> inter (the issuing CA) -> leaf; root -> inter2 -> rogue (same CN as leaf). */
struct fixture {
	char dir[64];
	struct cfl_pki_key *root_key, *inter_key, *inter2_key, *leaf_key;
	struct cfl_pki_cert *root, *inter, *inter2, *leaf, *rogue, *direct;
};

static struct fixture fx;

static struct cfl_pki_cert_req req_of(const char *cn, enum cfl_pki_usage usage)
{
	struct cfl_pki_cert_req req = {0};

	req.cn = cn;
	req.org = "org";
	req.usage = usage;
	req.days = 30;
	return req;
}

static struct cfl_pki_cert *leaf_from(const struct cfl_pki_key *ca_key,
                                      const struct cfl_pki_cert *ca, const char *cn)
{
	struct cfl_pki_cert_req req = req_of(cn, CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *cert = NULL;
	struct cfl_err e = {0};

	if (cfl_pki_cert_issue(ca_key, ca, fx.leaf_key, &req, &cert, &e) != 0)
		fail_msg("issue '%s': %s", cn, e.msg);
	return cert;
}

static struct cfl_pki_cert *inter_from(const struct cfl_pki_key *key, const char *cn)
{
	struct cfl_pki_cert_req req = req_of(cn, CFL_PKI_USAGE_CA);
	struct cfl_pki_cert *cert = NULL;
	struct cfl_err e = {0};

	if (cfl_pki_ca_issue(fx.root_key, fx.root, key, &req, &cert, &e) != 0)
		fail_msg("ca_issue '%s': %s", cn, e.msg);
	return cert;
}

static int setup(void **state)
{
	struct cfl_pki_cert_req root = req_of("root", CFL_PKI_USAGE_CA);
	struct cfl_err e = {0};

	(void)state;
	memcpy(fx.dir, "/tmp/cfl-test-trust-XXXXXX", sizeof("/tmp/cfl-test-trust-XXXXXX"));
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	if (cfl_pki_key_generate(CFL_KEY_P256, &fx.root_key, &e) != 0 ||
	    cfl_pki_key_generate(CFL_KEY_P256, &fx.inter_key, &e) != 0 ||
	    cfl_pki_key_generate(CFL_KEY_P256, &fx.inter2_key, &e) != 0 ||
	    cfl_pki_key_generate(CFL_KEY_P256, &fx.leaf_key, &e) != 0 ||
	    cfl_pki_ca_create(fx.root_key, &root, &fx.root, &e) != 0) {
		fprintf(stderr, "setup: %s\n", e.msg);
		return -1;
	}
	fx.inter = inter_from(fx.inter_key, "issuing");
	fx.inter2 = inter_from(fx.inter2_key, "other-issuing");
	fx.leaf = leaf_from(fx.inter_key, fx.inter, "site-1");
	fx.rogue = leaf_from(fx.inter2_key, fx.inter2, "site-1");
	fx.direct = leaf_from(fx.root_key, fx.root, "site-1");
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	cfl_pki_key_free(fx.root_key);
	cfl_pki_key_free(fx.inter_key);
	cfl_pki_key_free(fx.inter2_key);
	cfl_pki_key_free(fx.leaf_key);
	cfl_pki_cert_free(fx.root);
	cfl_pki_cert_free(fx.inter);
	cfl_pki_cert_free(fx.inter2);
	cfl_pki_cert_free(fx.leaf);
	cfl_pki_cert_free(fx.rogue);
	cfl_pki_cert_free(fx.direct);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct cfl_pki_trust *inter_trust(void)
{
	struct cfl_pki_cert *chain[1] = {fx.inter};
	struct cfl_pki_trust *t = NULL;
	struct cfl_err e = {0};

	if (cfl_pki_trust_new(fx.root, chain, 1, &t, &e) != 0)
		fail_msg("trust: %s", e.msg);
	return t;
}

/* A CRL of `ca` revoking `revoked` (NULL: none), thisUpdate `start`, `days` long. */
static char *crl_of(const struct cfl_pki_key *key, const struct cfl_pki_cert *ca,
                    const struct cfl_pki_cert *revoked, time_t start, int days, size_t *len)
{
	struct cfl_pki_revoked r = {0};
	char serial[64];
	struct cfl_err e = {0};
	char *pem = NULL;

	if (revoked != NULL) {
		assert_int_equal(cfl_pki_cert_serial(revoked, serial, sizeof(serial)), 0);
		r.serial_hex = serial;
		r.when = time(NULL);
		r.reason = 1;
	}
	if (cfl_pki_crl_create(key, ca, &r, revoked != NULL ? 1 : 0, 7, days, start, &pem, len,
	                       &e) != 0)
		fail_msg("crl: %s", e.msg);
	return pem;
}

static void write_file(const char *name, const char *text, char *path, size_t size)
{
	FILE *f;

	snprintf(path, size, "%s/%s", fx.dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static char *pem_of(const struct cfl_pki_cert *c)
{
	char *pem = NULL;
	size_t len = 0;

	assert_int_equal(cfl_pki_cert_to_pem(c, &pem, &len, NULL), 0);
	return pem;
}

/* ---- tests ---- */

static void test_chain_through_intermediate(void **state)
{
	struct cfl_pki_trust *t = inter_trust();
	struct cfl_err e = {0};

	(void)state;
	assert_int_equal(cfl_pki_trust_verify(t, fx.leaf, 0, &e), 0);
	assert_true(cfl_pki_cert_equal(cfl_pki_trust_issuer(t), fx.inter));
	assert_true(cfl_pki_cert_equal(cfl_pki_trust_anchor(t), fx.root));
	/* The plain root check cannot build the path without the intermediate. */
	assert_int_equal(cfl_pki_cert_verify(fx.root, fx.leaf, 0, &e), CFL_EVERIFY);
	/* Expired at a time after the leaf's 30 days. */
	assert_int_equal(cfl_pki_trust_verify(t, fx.leaf, time(NULL) + 40 * DAY, &e), CFL_EVERIFY);
	assert_non_null(strstr(e.msg, "expired"));
	cfl_pki_trust_free(t);
}

static void test_second_intermediate_refused(void **state)
{
	struct cfl_pki_trust *t = inter_trust();
	struct cfl_err e = {0};

	(void)state;
	assert_int_equal(cfl_pki_trust_verify(t, fx.rogue, 0, &e), CFL_EVERIFY);
	/* A leaf the root signed itself chains, but the root is not the issuing CA. */
	assert_int_equal(cfl_pki_trust_verify(t, fx.direct, 0, &e), CFL_EVERIFY);
	assert_non_null(strstr(e.msg, "not issued by the project's issuing CA"));
	/* The anchor itself is no leaf. */
	assert_int_equal(cfl_pki_trust_verify(t, fx.root, 0, &e), CFL_EVERIFY);
	cfl_pki_trust_free(t);
}

static void test_anchor_issues(void **state)
{
	struct cfl_pki_trust *t = NULL;
	struct cfl_err e = {0};

	(void)state;
	assert_int_equal(cfl_pki_trust_new(fx.root, NULL, 0, &t, &e), 0);
	assert_int_equal(cfl_pki_trust_verify(t, fx.direct, 0, &e), 0);
	assert_int_equal(cfl_pki_trust_verify(t, fx.leaf, 0, &e), CFL_EVERIFY);
	assert_true(cfl_pki_cert_equal(cfl_pki_trust_issuer(t), fx.root));
	cfl_pki_trust_free(t);
}

static void test_load_files(void **state)
{
	char anchor[256], own[256], both[8192], *r = pem_of(fx.root), *l = pem_of(fx.leaf),
	                                        *i = pem_of(fx.inter), *chain = NULL;
	struct cfl_pki_trust *t = NULL;
	struct cfl_err e = {0};
	size_t len = 0;

	(void)state;
	write_file("root.pem", r, anchor, sizeof(anchor));
	/* leaf, issuing CA, and the root again at the end (ignored). */
	snprintf(both, sizeof(both), "%s%s%s", l, i, r);
	write_file("leaf.pem", both, own, sizeof(own));
	assert_int_equal(cfl_pki_trust_load(anchor, own, &t, &e), 0);
	assert_int_equal(cfl_pki_trust_verify(t, fx.leaf, 0, &e), 0);
	assert_int_equal(cfl_pki_trust_chain_pem(t, &chain, &len, &e), 0);
	assert_string_equal(chain, i);
	free(chain);
	cfl_pki_trust_free(t);
	/* An own file whose chain does not reach the anchor. */
	snprintf(both, sizeof(both), "%s%s", l, i);
	write_file("other-root.pem", l, anchor, sizeof(anchor));
	assert_int_equal(cfl_pki_trust_load(anchor, own, &t, &e), CFL_EVERIFY);
	assert_non_null(strstr(e.msg, "does not chain"));
	assert_int_equal(cfl_pki_trust_load("/nonexistent/root.pem", NULL, &t, &e), CFL_ENOENT);
	free(r);
	free(l);
	free(i);
}

static void test_revoked_refused(void **state)
{
	struct cfl_pki_trust *t = inter_trust();
	struct cfl_err e = {0};
	size_t len = 0;
	char *crl = crl_of(fx.inter_key, fx.inter, fx.leaf, 0, 30, &len), path[256];

	(void)state;
	assert_int_equal(cfl_pki_trust_is_revoked(t, fx.leaf), 0);
	assert_int_equal(cfl_pki_trust_set_crl_pem(t, crl, len, &e), 0);
	assert_int_equal(cfl_pki_trust_is_revoked(t, fx.leaf), 1);
	assert_int_equal(cfl_pki_trust_verify(t, fx.leaf, 0, &e), CFL_EVERIFY);
	assert_non_null(strstr(e.msg, "certificate revoked"));
	/* Same serial issued by another CA is not this CRL's business. */
	assert_int_equal(cfl_pki_trust_is_revoked(t, fx.rogue), 0);
	/* A file: missing = ENOENT and the CRL stays; an empty CRL lifts the revocation. */
	assert_int_equal(cfl_pki_trust_set_crl(t, "/nonexistent/crl.pem", &e), CFL_ENOENT);
	assert_int_equal(cfl_pki_trust_is_revoked(t, fx.leaf), 1);
	free(crl);
	crl = crl_of(fx.inter_key, fx.inter, NULL, 0, 30, &len);
	write_file("crl.pem", crl, path, sizeof(path));
	assert_int_equal(cfl_pki_trust_set_crl(t, path, &e), 0);
	assert_int_equal(cfl_pki_trust_verify(t, fx.leaf, 0, &e), 0);
	free(crl);
	cfl_pki_trust_free(t);
}

/* A path the caller says it validated (the TLS handshake, pinned to the issuing CA): with this
 * trust's issuing CA as the pin, only the leaf's validity and revocation are checked again;
 * any other pin, or none, runs the whole verification. Either way, a certificate the whole
 * verification refuses is refused. */
static void test_verify_validated(void **state)
{
	struct cfl_pki_trust *t = inter_trust();
	struct cfl_pki_cert_req req = req_of("site-1", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *old = NULL, *early = NULL;
	struct cfl_err e = {0};
	size_t len = 0;
	char *crl;

	(void)state;
	assert_int_equal(cfl_pki_trust_verify_validated(t, fx.leaf, fx.inter, &e), 0);
	assert_int_equal(cfl_pki_trust_verify_validated(t, fx.leaf, NULL, &e), 0);
	/* Another intermediate's leaf, and one of the root itself, whatever the pin says. */
	assert_int_equal(cfl_pki_trust_verify_validated(t, fx.rogue, fx.inter, &e), CFL_EVERIFY);
	assert_int_equal(cfl_pki_trust_verify_validated(t, fx.rogue, fx.inter2, &e), CFL_EVERIFY);
	assert_int_equal(cfl_pki_trust_verify_validated(t, fx.direct, fx.root, &e), CFL_EVERIFY);
	assert_int_equal(cfl_pki_trust_verify_validated(t, fx.direct, fx.inter, &e), CFL_EVERIFY);
	/* Expired, and not valid yet, with the right pin. */
	req.not_before = time(NULL) - 40 * DAY;
	req.days = 30;
	assert_int_equal(cfl_pki_cert_issue(fx.inter_key, fx.inter, fx.leaf_key, &req, &old, &e),
	                 0);
	assert_int_equal(cfl_pki_trust_verify_validated(t, old, fx.inter, &e), CFL_EVERIFY);
	assert_non_null(strstr(e.msg, "expired"));
	req.not_before = time(NULL) + DAY;
	assert_int_equal(cfl_pki_cert_issue(fx.inter_key, fx.inter, fx.leaf_key, &req, &early, &e),
	                 0);
	assert_int_equal(cfl_pki_trust_verify_validated(t, early, fx.inter, &e), CFL_EVERIFY);
	assert_non_null(strstr(e.msg, "not yet valid"));
	/* Revoked after the path was validated (a CRL loaded since the handshake). */
	crl = crl_of(fx.inter_key, fx.inter, fx.leaf, 0, 30, &len);
	assert_int_equal(cfl_pki_trust_set_crl_pem(t, crl, len, &e), 0);
	assert_int_equal(cfl_pki_trust_verify_validated(t, fx.leaf, fx.inter, &e), CFL_EVERIFY);
	assert_non_null(strstr(e.msg, "certificate revoked"));
	free(crl);
	cfl_pki_cert_free(old);
	cfl_pki_cert_free(early);
	cfl_pki_trust_free(t);
}

static void test_crl_wrong_ca_refused(void **state)
{
	struct cfl_pki_trust *t = inter_trust();
	struct cfl_err e = {0};
	size_t len = 0, len2 = 0;
	char *good = crl_of(fx.inter_key, fx.inter, fx.leaf, 0, 30, &len);
	char *bad = crl_of(fx.inter2_key, fx.inter2, NULL, 0, 30, &len2);
	char *root = crl_of(fx.root_key, fx.root, NULL, 0, 30, &len);

	(void)state;
	len = strlen(good);
	assert_int_equal(cfl_pki_trust_set_crl_pem(t, good, len, &e), 0);
	assert_int_equal(cfl_pki_trust_set_crl_pem(t, bad, len2, &e), CFL_EVERIFY);
	assert_non_null(strstr(e.msg, "issuing CA"));
	assert_int_equal(cfl_pki_trust_set_crl_pem(t, root, strlen(root), &e), CFL_EVERIFY);
	/* The previous CRL stays in force. */
	assert_int_equal(cfl_pki_trust_is_revoked(t, fx.leaf), 1);
	/* The issuer's name with another key's signature: the signature check catches it. */
	good[len / 2] = good[len / 2] == 'A' ? 'B' : 'A';
	assert_int_not_equal(cfl_pki_trust_set_crl_pem(t, good, len, &e), 0);
	assert_int_equal(cfl_pki_trust_set_crl_pem(t, "junk", 4, &e), CFL_EPARSE);
	assert_int_equal(cfl_pki_trust_set_crl_pem(t, "", 0, &e), CFL_EPARSE);
	free(good);
	free(bad);
	free(root);
	cfl_pki_trust_free(t);
}

static void test_crl_expired_refused(void **state)
{
	struct cfl_pki_trust *t = inter_trust();
	struct cfl_err e = {0};
	size_t len = 0;
	char *old = crl_of(fx.inter_key, fx.inter, fx.leaf, time(NULL) - 10 * DAY, 2, &len);

	(void)state;
	assert_int_equal(cfl_pki_trust_set_crl_pem(t, old, len, &e), CFL_EVERIFY);
	assert_non_null(strstr(e.msg, "expired"));
	assert_int_equal(cfl_pki_trust_is_revoked(t, fx.leaf), 0);
	free(old);
	cfl_pki_trust_free(t);
}

static void test_fingerprint(void **state)
{
	char fp[CFL_PKI_FINGERPRINT_MAX], low[CFL_PKI_FINGERPRINT_MAX], bare[80];
	size_t j = 0;

	(void)state;
	assert_int_equal(cfl_pki_cert_fingerprint(fx.root, fp, sizeof(fp)), 0);
	assert_int_equal(strlen(fp), 7 + 95);
	assert_true(cfl_pki_cert_fingerprint_match(fx.root, fp));
	assert_false(cfl_pki_cert_fingerprint_match(fx.inter, fp));
	for (size_t i = 0; fp[i] != '\0'; i++)
		low[i] =
		        (char)(i < 7 ? fp[i] : (fp[i] >= 'A' && fp[i] <= 'F' ? fp[i] + 32 : fp[i]));
	low[strlen(fp)] = '\0';
	assert_true(cfl_pki_cert_fingerprint_match(fx.root, low));
	for (size_t i = 7; fp[i] != '\0'; i++)
		if (fp[i] != ':')
			bare[j++] = fp[i];
	bare[j] = '\0';
	assert_true(cfl_pki_cert_fingerprint_match(fx.root, bare));
	assert_false(cfl_pki_cert_fingerprint_match(fx.root, "SHA256:00"));
	assert_false(cfl_pki_cert_fingerprint_match(fx.root, ""));
}

static void test_csr(void **state)
{
	struct cfl_pki_cert_req req = req_of("site-9", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_csr *csr = NULL;
	struct cfl_pki_key *pub = NULL;
	struct cfl_pki_cert *cert = NULL;
	struct cfl_err e = {0};
	char *pem = NULL, buf[80];
	size_t len = 0;

	(void)state;
	req.role = "lead";
	assert_int_equal(cfl_pki_csr_create(fx.leaf_key, &req, &pem, &len, &e), 0);
	assert_null(strstr(pem, "PRIVATE"));
	assert_int_equal(cfl_pki_csr_load_pem(pem, len, &csr, &e), 0);
	assert_int_equal(cfl_pki_csr_cn(csr, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "site-9");
	assert_int_equal(cfl_pki_csr_org(csr, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "org");
	assert_int_equal(cfl_pki_csr_role(csr, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "lead");
	assert_int_equal(cfl_pki_csr_public_key(csr, &pub, &e), 0);
	assert_int_equal(cfl_pki_cert_issue(fx.inter_key, fx.inter, pub, &req, &cert, &e), 0);
	assert_true(cfl_pki_cert_matches_key(cert, fx.leaf_key));
	cfl_pki_cert_free(cert);
	cfl_pki_key_free(pub);
	cfl_pki_csr_free(csr);
	/* A flipped byte in the body: the self-signature fails (or it no longer parses). */
	pem[len / 2] = pem[len / 2] == 'A' ? 'B' : 'A';
	assert_int_not_equal(cfl_pki_csr_load_pem(pem, len, &csr, &e), 0);
	free(pem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_chain_through_intermediate),
	        cmocka_unit_test(test_second_intermediate_refused),
	        cmocka_unit_test(test_anchor_issues),
	        cmocka_unit_test(test_load_files),
	        cmocka_unit_test(test_revoked_refused),
	        cmocka_unit_test(test_verify_validated),
	        cmocka_unit_test(test_crl_wrong_ca_refused),
	        cmocka_unit_test(test_crl_expired_refused),
	        cmocka_unit_test(test_fingerprint),
	        cmocka_unit_test(test_csr),
	};

	return cmocka_run_group_tests_name("trust", tests, setup, teardown);
}
