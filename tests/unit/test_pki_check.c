/* Unit tests for cfl/pki.h: verification (expired, not yet valid, another CA), certificate
 * files refused, signatures made and verified (also by `openssl`), and base64. The fixture is
 * in pki_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "pki_fixture.h"

/* ---- verification ---- */

static void test_verify_expired(void **state)
{
	struct cfl_pki_cert_req req = leaf_req("site-1", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *leaf;
	struct cfl_err e = {0};

	(void)state;
	req.not_before = time(NULL) - 400 * DAY;
	req.days = 1;
	leaf = issue(0, fx.leaf_key[0], &req);
	assert_int_equal(cfl_pki_cert_verify(fx.ca[0], leaf, 0, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "certificate verify failed: certificate has expired");
	cfl_pki_cert_free(leaf);
}

static void test_verify_not_yet_valid(void **state)
{
	struct cfl_pki_cert_req req = leaf_req("site-1", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *leaf;
	struct cfl_err e = {0};
	time_t start = time(NULL) + 30 * DAY;

	(void)state;
	req.not_before = start;
	req.days = 10;
	leaf = issue(0, fx.leaf_key[0], &req);
	assert_int_equal(cfl_pki_cert_verify(fx.ca[0], leaf, 0, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "certificate verify failed: certificate is not yet valid");
	/* ...and valid at a time inside its window. */
	assert_int_equal(cfl_pki_cert_verify(fx.ca[0], leaf, start + DAY, &e), 0);
	assert_int_equal(cfl_pki_cert_verify(fx.ca[0], leaf, start + 11 * DAY, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "certificate verify failed: certificate has expired");
	cfl_pki_cert_free(leaf);
}

static void test_verify_other_ca(void **state)
{
	struct cfl_pki_cert_req req = leaf_req("site-1", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *leaf, *same_name, *foreign = NULL;
	struct cfl_err e = {0};

	(void)state;
	leaf = issue(0, fx.leaf_key[0], &req);
	assert_int_equal(cfl_pki_cert_verify(fx.other_ca, leaf, 0, &e), CFL_EVERIFY);
	assert_string_equal(e.msg,
	                    "certificate verify failed: unable to get local issuer certificate");

	/* A root with the very same name but another key is no issuer either. */
	same_name = make_ca(fx.other_key, "example_project", 360);
	assert_int_equal(cfl_pki_cert_verify(same_name, leaf, 0, &e), CFL_EVERIFY);
	assert_non_null(strstr(e.msg, "certificate verify failed: "));
	assert_int_equal(
	        cfl_pki_cert_issue(fx.other_key, same_name, fx.leaf_key[0], &req, &foreign, &e), 0);
	assert_int_equal(cfl_pki_cert_verify(fx.ca[0], foreign, 0, &e), CFL_EVERIFY);
	cfl_pki_cert_free(foreign);
	cfl_pki_cert_free(same_name);
	cfl_pki_cert_free(leaf);
}

/* ---- certificate files ---- */

static void test_cert_load_errors(void **state)
{
	static const char garbage[] = "-----BEGIN CERTIFICATE-----\nnot base64\n"
	                              "-----END CERTIFICATE-----\n";
	struct cfl_pki_cert *cert = NULL;
	struct cfl_err e = {0};
	char path[256];

	(void)state;
	path_of(path, sizeof(path), "missing.pem");
	assert_int_equal(cfl_pki_cert_load(path, &cert, &e), CFL_ENOENT);
	assert_non_null(strstr(e.msg, "missing.pem"));

	assert_int_equal(cfl_pki_cert_load_pem(garbage, sizeof(garbage) - 1, &cert, &e),
	                 CFL_EPARSE);
	assert_non_null(strstr(e.msg, "cannot parse certificate: "));
	assert_int_equal(cfl_pki_cert_load_pem("", 0, &cert, &e), CFL_EPARSE);

	save_bytes("garbage.pem", garbage, sizeof(garbage) - 1);
	path_of(path, sizeof(path), "garbage.pem");
	assert_int_equal(cfl_pki_cert_load(path, &cert, &e), CFL_EPARSE);
	assert_non_null(strstr(e.msg, "cannot load '"));
	assert_non_null(strstr(e.msg, "garbage.pem': cannot parse certificate"));
	assert_null(cert);

	/* A private key is not a certificate. */
	path_of(path, sizeof(path), "key-as-cert.pem");
	assert_int_equal(cfl_pki_key_save(fx.leaf_key[0], path, &e), 0);
	assert_int_equal(cfl_pki_cert_load(path, &cert, &e), CFL_EPARSE);
	assert_null(cert);
}

static void test_free_null(void **state)
{
	(void)state;
	cfl_pki_key_free(NULL);
	cfl_pki_cert_free(NULL);
}

/* ---- signatures ---- */

static void check_sign_verify(int t, size_t want_len)
{
	static const char data[] = "config_fed_client.json contents";
	struct cfl_pki_cert_req req = leaf_req("site-1", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *other;
	struct cfl_err e = {0};
	uint8_t *sig = NULL, *empty_sig = NULL;
	size_t sig_len = 0, empty_len = 0;
	char bad[sizeof(data)];

	assert_int_equal(cfl_pki_sign(fx.ca_key[t], data, sizeof(data) - 1, &sig, &sig_len, &e), 0);
	if (want_len != 0)
		assert_int_equal(sig_len, want_len);
	else
		assert_true(sig_len >= 8 && sig_len <= 72);
	assert_int_equal(cfl_pki_verify(fx.ca[t], data, sizeof(data) - 1, sig, sig_len, &e), 0);

	memcpy(bad, data, sizeof(data));
	bad[0] ^= 1;
	assert_int_equal(cfl_pki_verify(fx.ca[t], bad, sizeof(data) - 1, sig, sig_len, &e),
	                 CFL_EVERIFY);
	assert_string_equal(e.msg, "bad signature");
	assert_int_equal(cfl_pki_verify(fx.ca[t], data, sizeof(data) - 2, sig, sig_len, &e),
	                 CFL_EVERIFY);

	sig[sig_len / 2] ^= 0x40;
	assert_int_equal(cfl_pki_verify(fx.ca[t], data, sizeof(data) - 1, sig, sig_len, &e),
	                 CFL_EVERIFY);
	sig[sig_len / 2] ^= 0x40;
	assert_int_equal(cfl_pki_verify(fx.ca[t], data, sizeof(data) - 1, sig, sig_len - 1, &e),
	                 CFL_EVERIFY);
	assert_int_equal(cfl_pki_verify(fx.ca[t], data, sizeof(data) - 1, sig, 0, &e), CFL_EVERIFY);

	/* The right signature checked against someone else's certificate. */
	other = issue(t, fx.leaf_key[t], &req);
	assert_int_equal(cfl_pki_verify(other, data, sizeof(data) - 1, sig, sig_len, &e),
	                 CFL_EVERIFY);
	assert_int_equal(cfl_pki_verify(fx.ca[1 - t], data, sizeof(data) - 1, sig, sig_len, &e),
	                 CFL_EVERIFY);
	cfl_pki_cert_free(other);

	/* Empty input is a valid message. */
	assert_int_equal(cfl_pki_sign(fx.ca_key[t], NULL, 0, &empty_sig, &empty_len, &e), 0);
	assert_int_equal(cfl_pki_verify(fx.ca[t], "", 0, empty_sig, empty_len, &e), 0);
	free(empty_sig);
	free(sig);
}

static void test_sign_verify_p256(void **state)
{
	(void)state;
	check_sign_verify(0, 0);
}

static void test_sign_verify_rsa(void **state)
{
	(void)state;
	check_sign_verify(1, 256);
}

/* What NVFlare (python `cryptography`) checks: PSS, MGF1-SHA256 and the maximal salt, which for
 * RSA-2048 with SHA-256 is 256 - 32 - 2 = 222 bytes. */
static void test_sign_interop(void **state)
{
	static const char data[] = "fed_server.json";
	struct cfl_err e = {0};
	char ca[256], pub[256], sigp[256], datap[256], out[OUT_MAX];
	uint8_t *sig = NULL;
	size_t sig_len = 0;

	(void)state;
	path_of(ca, sizeof(ca), "ca.pem");
	path_of(pub, sizeof(pub), "pub.pem");
	path_of(sigp, sizeof(sigp), "data.sig");
	path_of(datap, sizeof(datap), "data.bin");
	save_bytes("data.bin", data, sizeof(data) - 1);
	for (int t = 0; t < 2; t++) {
		save_cert(fx.ca[t], "ca.pem");
		assert_int_equal(run(out, sizeof(out),
		                     "openssl x509 -pubkey -noout -in '%s' > '%s'", ca, pub),
		                 0);
		assert_int_equal(
		        cfl_pki_sign(fx.ca_key[t], data, sizeof(data) - 1, &sig, &sig_len, &e), 0);
		save_bytes("data.sig", sig, sig_len);
		free(sig);
		sig = NULL;
		assert_int_equal(
		        run(out, sizeof(out),
		            "openssl dgst -sha256 -verify '%s' -signature '%s' %s '%s'", pub, sigp,
		            t == 1 ? "-sigopt rsa_padding_mode:pss -sigopt rsa_mgf1_md:sha256 "
		                     "-sigopt rsa_pss_saltlen:222"
		                   : "",
		            datap),
		        0);
		assert_string_equal(out, "Verified OK\n");
	}
}

/* ---- base64 ---- */

static void test_base64_vectors(void **state)
{
	/* RFC 4648 §10. */
	static const char *const vec[][2] = {
	        {"", ""},
	        {"f", "Zg=="},
	        {"fo", "Zm8="},
	        {"foo", "Zm9v"},
	        {"foob", "Zm9vYg=="},
	        {"fooba", "Zm9vYmE="},
	        {"foobar", "Zm9vYmFy"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		char *enc = NULL;
		uint8_t *dec = NULL;
		size_t n = 0;

		assert_int_equal(cfl_base64_encode(vec[i][0], strlen(vec[i][0]), &enc), 0);
		assert_string_equal(enc, vec[i][1]);
		assert_int_equal(cfl_base64_decode(vec[i][1], strlen(vec[i][1]), &dec, &n), 0);
		assert_int_equal(n, strlen(vec[i][0]));
		assert_memory_equal(dec, vec[i][0], n);
		free(enc);
		free(dec);
	}
}

static void test_base64_roundtrip(void **state)
{
	uint8_t bytes[256];
	char *enc = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)(255 - i);
	for (size_t len = 0; len <= sizeof(bytes); len += 1 + len / 8) {
		uint8_t *dec = NULL;
		size_t n = 0;

		assert_int_equal(cfl_base64_encode(bytes, len, &enc), 0);
		assert_int_equal(strlen(enc), (len + 2) / 3 * 4);
		assert_int_equal(cfl_base64_decode(enc, strlen(enc), &dec, &n), 0);
		assert_int_equal(n, len);
		if (len > 0)
			assert_memory_equal(dec, bytes, len);
		free(enc);
		free(dec);
	}
	/* The two characters that differ between alphabets. */
	assert_int_equal(cfl_base64_encode("\xfb\xff", 2, &enc), 0);
	assert_string_equal(enc, "+/8=");
	free(enc);
}

static void test_base64_rejects(void **state)
{
	static const char *const bad[] = {
	        "Zg",         /* length not a multiple of 4 */
	        "Zg=",        /* ditto */
	        "Zm9vY",      /* ditto */
	        "Zg==Zg==",   /* padding before the end */
	        "Z===",       /* three pad characters */
	        "====",       /* nothing but padding */
	        "Zm=v",       /* padding in the middle of a quantum */
	        "Zm9v!A==",   /* outside the alphabet */
	        "Zm9v\nZm9v", /* no line breaks (RFC 4648 §3.1) */
	        "Zm9 ",       /* no spaces */
	        "Zm9-",       /* base64url is another alphabet */
	        "Zh==",       /* non-zero pad bits */
	        "Zm9=",       /* ditto */
	};
	uint8_t *dec = NULL;
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cfl_base64_decode(bad[i], strlen(bad[i]), &dec, &n) != CFL_EPARSE)
			fail_msg("accepted '%s'", bad[i]);
	}
	/* An embedded NUL is not the end of the text. */
	assert_int_equal(cfl_base64_decode("Zm9v\0AAA", 8, &dec, &n), CFL_EPARSE);
	assert_null(dec);
	assert_int_equal(cfl_base64_decode(NULL, 4, &dec, &n), CFL_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_verify_expired),  cmocka_unit_test(test_verify_not_yet_valid),
	        cmocka_unit_test(test_verify_other_ca), cmocka_unit_test(test_cert_load_errors),
	        cmocka_unit_test(test_free_null),       cmocka_unit_test(test_sign_verify_p256),
	        cmocka_unit_test(test_sign_verify_rsa), cmocka_unit_test(test_sign_interop),
	        cmocka_unit_test(test_base64_vectors),  cmocka_unit_test(test_base64_roundtrip),
	        cmocka_unit_test(test_base64_rejects),
	};

	return cmocka_run_group_tests_name("pki", tests, setup, teardown);
}
