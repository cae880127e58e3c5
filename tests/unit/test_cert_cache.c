/* Unit tests for the process's cache of parsed certificates (src/pki/cert_cache.c): a PEM text
 * parsed again gives the same certificate, a text differing in one byte never gets a cached
 * one, more texts than the cache holds still parse right, and threads share it safely. */
#include "cfl/err.h"
#include "cfl/pki.h"
#include "pki/pki_int.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NCERTS = 12, THREADS = 4, ROUNDS = 200 };

static struct {
	struct cfl_pki_key *key;
	char *pem[NCERTS];
	size_t len[NCERTS];
	char fp[NCERTS][CFL_PKI_FINGERPRINT_MAX];
} fx;

static int setup(void **state)
{
	struct cfl_err e = {0};
	char cn[32];

	(void)state;
	if (cfl_pki_key_generate(CFL_KEY_P256, &fx.key, &e) != 0)
		return -1;
	for (int i = 0; i < NCERTS; i++) {
		struct cfl_pki_cert_req req = {.org = "org", .usage = CFL_PKI_USAGE_CA, .days = 30};
		struct cfl_pki_cert *c = NULL;

		snprintf(cn, sizeof(cn), "ca-%d", i);
		req.cn = cn;
		if (cfl_pki_ca_create(fx.key, &req, &c, &e) != 0 ||
		    cfl_pki_cert_to_pem(c, &fx.pem[i], &fx.len[i], &e) != 0 ||
		    cfl_pki_cert_fingerprint(c, fx.fp[i], sizeof(fx.fp[i])) != 0)
			return -1;
		cfl_pki_cert_free(c);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < NCERTS; i++)
		free(fx.pem[i]);
	cfl_pki_key_free(fx.key);
	return 0;
}

/* Parses text i and returns 1 when it is certificate i. */
static int parses_as(const char *pem, size_t len, int i)
{
	struct cfl_pki_cert *c = NULL;
	struct cfl_err e = {0};
	char fp[CFL_PKI_FINGERPRINT_MAX];
	int same;

	if (cfl_pki_cert_load_pem(pem, len, &c, &e) != 0)
		return 0;
	same = cfl_pki_cert_fingerprint(c, fp, sizeof(fp)) == 0 && strcmp(fp, fx.fp[i]) == 0;
	cfl_pki_cert_free(c);
	return same;
}

static void test_again_and_evicted(void **state)
{
	(void)state;
	/* Twice in a row, then all of them again after more texts than the cache holds. */
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < NCERTS; i++) {
			assert_true(parses_as(fx.pem[i], fx.len[i], i));
			assert_true(parses_as(fx.pem[i], fx.len[i], i));
		}
	}
}

/* The cache is really used: a text just parsed is there; 8 other texts later, it is not. */
static void test_hit_and_evicted(void **state)
{
	X509 *x;

	(void)state;
	assert_true(parses_as(fx.pem[0], fx.len[0], 0));
	x = cfl__pki_cert_cache_get(fx.pem[0], fx.len[0]);
	assert_non_null(x);
	X509_free(x);
	for (int i = 1; i <= 8; i++)
		assert_true(parses_as(fx.pem[i], fx.len[i], i));
	assert_null(cfl__pki_cert_cache_get(fx.pem[0], fx.len[0]));
}

static void test_one_byte_differs(void **state)
{
	char *pem = malloc(fx.len[0]);
	struct cfl_pki_cert *c = NULL;
	struct cfl_err e = {0};
	size_t at = fx.len[0] / 2;

	(void)state;
	assert_non_null(pem);
	assert_true(parses_as(fx.pem[0], fx.len[0], 0)); /* cached */
	memcpy(pem, fx.pem[0], fx.len[0]);
	while (pem[at] == '\n')
		at++;
	pem[at] = pem[at] == 'A' ? 'B' : 'A';
	/* Either it no longer parses, or it is another certificate: never the cached one. */
	if (cfl_pki_cert_load_pem(pem, fx.len[0], &c, &e) == 0) {
		char fp[CFL_PKI_FINGERPRINT_MAX];

		assert_int_equal(cfl_pki_cert_fingerprint(c, fp, sizeof(fp)), 0);
		assert_string_not_equal(fp, fx.fp[0]);
		cfl_pki_cert_free(c);
	}
	/* A shorter text with the same start is not the cached one either. */
	assert_false(parses_as(fx.pem[0], fx.len[0] - 30, 0));
	free(pem);
}

static void *worker(void *arg)
{
	long bad = 0, t = (long)(intptr_t)arg;

	for (int r = 0; r < ROUNDS; r++) {
		int i = (int)((r * 7 + t * 3) % NCERTS);

		bad += !parses_as(fx.pem[i], fx.len[i], i);
	}
	return (void *)(intptr_t)bad;
}

static void test_threads(void **state)
{
	pthread_t th[THREADS];

	(void)state;
	for (long t = 0; t < THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t), 0);
	for (int t = 0; t < THREADS; t++) {
		void *bad = NULL;

		assert_int_equal(pthread_join(th[t], &bad), 0);
		assert_int_equal((intptr_t)bad, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_hit_and_evicted), /* first: the cache starts empty */
	        cmocka_unit_test(test_again_and_evicted),
	        cmocka_unit_test(test_one_byte_differs),
	        cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
