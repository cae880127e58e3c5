/* Unit tests for cfl/pki.h: keys (generated, saved, loaded in each format, refused) and the
 * root CA, checked through the public API and through the `openssl` command-line tool. The
 * fixture is in pki_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "pki_fixture.h"

/* ---- keys ---- */

static void test_key_type_names(void **state)
{
	enum cfl_key_type t = CFL_KEY_RSA2048;

	(void)state;
	assert_int_equal(cfl_pki_key_type_parse("ECDSA-P256", &t), 0);
	assert_int_equal(t, CFL_KEY_P256);
	assert_int_equal(cfl_pki_key_type_parse("Rsa", &t), 0);
	assert_int_equal(t, CFL_KEY_RSA2048);
	assert_int_equal(cfl_pki_key_type_parse("p256", &t), 0);
	assert_int_equal(cfl_pki_key_type_parse("rsa-2048", &t), 0);
	assert_int_equal(cfl_pki_key_type_parse("rsa-4096", &t), CFL_EINVAL);
	assert_int_equal(cfl_pki_key_type_parse("", &t), CFL_EINVAL);
	assert_string_equal(cfl_pki_key_type_name(CFL_KEY_P256), "ecdsa-p256");
	assert_string_equal(cfl_pki_key_type_name(CFL_KEY_RSA2048), "rsa-2048");
}

static void check_key_roundtrip(enum cfl_key_type type, const char *name, const char *want)
{
	struct cfl_pki_key *key = NULL, *back = NULL;
	struct cfl_pki_cert *ca;
	struct cfl_err e = {0};
	char path[256], out[OUT_MAX];

	assert_int_equal(cfl_pki_key_generate(type, &key, &e), 0);
	path_of(path, sizeof(path), name);
	/* A pre-existing, world-readable file must end up 0600 too. */
	save_bytes(name, "x", 1);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(cfl_pki_key_save(key, path, &e), 0);
	assert_int_equal(file_mode(name), 0600);
	assert_int_equal(run(out, sizeof(out), "head -1 '%s'", path), 0);
	assert_string_equal(out, "-----BEGIN PRIVATE KEY-----\n");
	assert_int_equal(run(out, sizeof(out), "openssl pkey -noout -text -in '%s'", path), 0);
	assert_non_null(strstr(out, want));
	/* The file holds what OpenSSL's own encoder writes, byte for byte (P-256 keys are
	 * encoded by cfl itself, key.c). */
	assert_int_equal(run(out, sizeof(out), "openssl pkey -in '%s' | cmp - '%s'", path, path),
	                 0);

	assert_int_equal(cfl_pki_key_load(path, &back, &e), 0);
	ca = make_ca(key, "roundtrip", 10);
	assert_true(cfl_pki_cert_matches_key(ca, back));
	assert_false(cfl_pki_cert_matches_key(ca, fx.other_key));
	cfl_pki_cert_free(ca);
	cfl_pki_key_free(back);
	cfl_pki_key_free(key);
}

static void test_key_generate_p256(void **state)
{
	(void)state;
	check_key_roundtrip(CFL_KEY_P256, "p256.key", "ASN1 OID: prime256v1");
}

static void test_key_generate_rsa(void **state)
{
	(void)state;
	check_key_roundtrip(CFL_KEY_RSA2048, "rsa.key", "Private-Key: (2048 bit");
}

static void test_key_load_formats(void **state)
{
	struct cfl_pki_key *key = NULL;
	struct cfl_err e = {0};
	char path[256], out[OUT_MAX];

	(void)state;
	/* NVFlare writes "TraditionalOpenSSL" keys; those load too. */
	path_of(path, sizeof(path), "trad.key");
	assert_int_equal(run(out, sizeof(out),
	                     "openssl ecparam -name prime256v1 -genkey -noout -out '%s'", path),
	                 0);
	assert_int_equal(run(out, sizeof(out), "head -1 '%s'", path), 0);
	assert_string_equal(out, "-----BEGIN EC PRIVATE KEY-----\n");
	assert_int_equal(cfl_pki_key_load(path, &key, &e), 0);
	cfl_pki_key_free(key);
	key = NULL;

	path_of(path, sizeof(path), "ed25519.key");
	assert_int_equal(
	        run(out, sizeof(out), "openssl genpkey -algorithm ed25519 -out '%s'", path), 0);
	assert_int_equal(cfl_pki_key_load(path, &key, &e), CFL_EUNSUPP);
	assert_non_null(strstr(e.msg, "unsupported key type"));
	assert_null(key);

	path_of(path, sizeof(path), "p384.key");
	assert_int_equal(run(out, sizeof(out),
	                     "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 "
	                     "-out '%s'",
	                     path),
	                 0);
	assert_int_equal(cfl_pki_key_load(path, &key, &e), CFL_EUNSUPP);

	/* An encrypted key fails at once instead of prompting for a passphrase. */
	path_of(path, sizeof(path), "enc.key");
	assert_int_equal(run(out, sizeof(out),
	                     "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
	                     "-aes256 -pass pass:secret -out '%s'",
	                     path),
	                 0);
	assert_int_equal(cfl_pki_key_load(path, &key, &e), CFL_EPARSE);
	assert_non_null(strstr(e.msg, "cannot load key"));
}

static void test_key_load_errors(void **state)
{
	struct cfl_pki_key *key = NULL;
	struct cfl_err e = {0};
	char path[256];

	(void)state;
	path_of(path, sizeof(path), "missing.key");
	assert_int_equal(cfl_pki_key_load(path, &key, &e), CFL_ENOENT);
	assert_non_null(strstr(e.msg, "missing.key"));

	save_cert(fx.ca[0], "not-a-key.pem");
	path_of(path, sizeof(path), "not-a-key.pem");
	assert_int_equal(cfl_pki_key_load(path, &key, &e), CFL_EPARSE);
	assert_non_null(strstr(e.msg, "cannot load key '"));
	assert_non_null(strstr(e.msg, "not-a-key.pem': "));
	assert_null(key);
}

/* ---- the root CA ---- */

static void check_ca(int t, const char *sigalg)
{
	struct cfl_pki_cert *back = NULL;
	struct cfl_err e = {0};
	char path[256], out[OUT_MAX], buf[128], *pem1 = NULL, *pem2 = NULL;
	size_t len1 = 0, len2 = 0;
	time_t nb, na, now = time(NULL);
	const char *hex;

	save_cert(fx.ca[t], "ca.pem");
	assert_int_equal(file_mode("ca.pem"), 0644);
	path_of(path, sizeof(path), "ca.pem");
	assert_int_equal(cfl_pki_cert_load(path, &back, &e), 0);
	assert_int_equal(cfl_pki_cert_to_pem(fx.ca[t], &pem1, &len1, &e), 0);
	assert_int_equal(cfl_pki_cert_to_pem(back, &pem2, &len2, &e), 0);
	assert_int_equal(len1, strlen(pem1));
	assert_string_equal(pem1, pem2);
	assert_int_equal(strncmp(pem1, "-----BEGIN CERTIFICATE-----\n", 28), 0);
	assert_true(cfl_pki_cert_matches_key(back, fx.ca_key[t]));

	assert_int_equal(cfl_pki_cert_cn(back, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "example_project");
	assert_int_equal(cfl_pki_cert_org(back, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "nvidia");
	assert_int_equal(cfl_pki_cert_role(back, buf, sizeof(buf)), CFL_ENOENT);
	assert_int_equal(cfl_pki_cert_validity(back, &nb, &na), 0);
	assert_true(nb <= now && nb >= fx.created - 1);
	assert_int_equal(na - nb, 360 * DAY);
	assert_int_equal(cfl_pki_cert_verify(back, back, 0, &e), 0);

	assert_int_equal(run(out, sizeof(out), "openssl verify -CAfile '%s' '%s'", path, path), 0);
	assert_int_equal(run(out, sizeof(out),
	                     "openssl x509 -noout -ext basicConstraints,keyUsage,"
	                     "subjectKeyIdentifier -in '%s'",
	                     path),
	                 0);
	assert_non_null(strstr(out, "X509v3 Basic Constraints: critical\n"));
	assert_non_null(strstr(out, "CA:TRUE"));
	assert_non_null(strstr(out, "X509v3 Key Usage: critical\n"));
	assert_non_null(strstr(out, "Certificate Sign, CRL Sign\n"));
	assert_non_null(strstr(out, "X509v3 Subject Key Identifier"));
	assert_int_equal(run(out, sizeof(out), "openssl x509 -noout -text -in '%s'", path), 0);
	assert_non_null(strstr(out, "Version: 3 (0x2)"));
	assert_non_null(strstr(out, sigalg));
	assert_non_null(strstr(out, "Subject: CN = example_project, O = nvidia\n"));
	assert_non_null(strstr(out, "Issuer: CN = example_project, O = nvidia\n"));

	/* Serial: positive, at most 20 octets (RFC 5280 §4.1.2.2), not zero. */
	assert_int_equal(run(out, sizeof(out), "openssl x509 -noout -serial -in '%s'", path), 0);
	assert_int_equal(strncmp(out, "serial=", 7), 0);
	hex = out + 7;
	assert_true(strlen(hex) <= 41 && strlen(hex) > 1);
	assert_true(strlen(hex) < 41 || strchr("01234567", hex[0]) != NULL);
	assert_true(strspn(hex, "0\n") < strlen(hex));

	free(pem1);
	free(pem2);
	cfl_pki_cert_free(back);
}

static void test_ca_p256(void **state)
{
	(void)state;
	check_ca(0, "Signature Algorithm: ecdsa-with-SHA256");
}

static void test_ca_rsa(void **state)
{
	(void)state;
	check_ca(1, "Signature Algorithm: sha256WithRSAEncryption");
}

static void test_ca_serials_differ(void **state)
{
	struct cfl_pki_cert *a = make_ca(fx.other_key, "x", 1), *b = make_ca(fx.other_key, "x", 1);
	char out_a[256], out_b[256], path[256];

	(void)state;
	save_cert(a, "serial-a.pem");
	save_cert(b, "serial-b.pem");
	path_of(path, sizeof(path), "serial-a.pem");
	assert_int_equal(run(out_a, sizeof(out_a), "openssl x509 -noout -serial -in '%s'", path),
	                 0);
	path_of(path, sizeof(path), "serial-b.pem");
	assert_int_equal(run(out_b, sizeof(out_b), "openssl x509 -noout -serial -in '%s'", path),
	                 0);
	assert_string_not_equal(out_a, out_b);
	cfl_pki_cert_free(a);
	cfl_pki_cert_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_key_type_names),   cmocka_unit_test(test_key_generate_p256),
	        cmocka_unit_test(test_key_generate_rsa), cmocka_unit_test(test_key_load_formats),
	        cmocka_unit_test(test_key_load_errors),  cmocka_unit_test(test_ca_p256),
	        cmocka_unit_test(test_ca_rsa),           cmocka_unit_test(test_ca_serials_differ),
	};

	return cmocka_run_group_tests_name("pki", tests, setup, teardown);
}
