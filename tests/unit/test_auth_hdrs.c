/* Unit tests for the pieces of the per-message check (src/auth/auth_common.c): the
 * constant-time comparison the gates use for tokens, the one-pass lookup of the three
 * authentication headers, and the in-place comparison of a header with a value. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/auth_int.h"
#include "cfl/frame.h"
#include "cfl/proto.h"

#include <string.h>

/* Every length from 0 to 80 (whole words and tails), a difference at every position and in
 * every bit of that byte. */
static void test_ct_equal(void **state)
{
	uint8_t a[80], b[80];

	(void)state;
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)(i * 37 + 11);
	for (size_t n = 0; n <= sizeof(a); n++) {
		memcpy(b, a, sizeof(a));
		assert_int_equal(cfl__auth_ct_equal(a, b, n), 1);
		for (size_t i = 0; i < n; i++) {
			for (int bit = 0; bit < 8; bit++) {
				b[i] ^= (uint8_t)(1u << bit);
				assert_int_equal(cfl__auth_ct_equal(a, b, n), 0);
				b[i] ^= (uint8_t)(1u << bit);
			}
		}
		/* A difference past n is not looked at. */
		if (n < sizeof(a)) {
			b[n] ^= 0x80;
			assert_int_equal(cfl__auth_ct_equal(a, b, n), 1);
		}
	}
	/* Differences in the high half of a word only (the fold of the accumulator). */
	memset(a, 0, 16);
	memset(b, 0, 16);
	b[7] = 0x80;
	assert_int_equal(cfl__auth_ct_equal(a, b, 16), 0);
	b[7] = 0;
	b[12] = 0xff;
	assert_int_equal(cfl__auth_ct_equal(a, b, 16), 0);
}

static struct cfl_frame frame_with(const struct cfl_header *h, size_t n)
{
	struct cfl_frame f;

	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_ONEWAY;
	for (size_t i = 0; i < n; i++)
		f.headers[f.n_headers++] = h[i];
	return f;
}

/* Found wherever they are among others; keys that only look alike (a prefix, a longer name,
 * another case) are not taken. */
static void test_find_hdrs(void **state)
{
	const struct cfl_header h[] = {
	        CFL_HDR(CFL_KEY_TOPIC, "nop"),
	        CFL_HDR("token_", "x"),
	        CFL_HDR("tok", "y"),
	        CFL_HDR(CFL_KEY_TOKEN_SIGNATURE, "sig"),
	        CFL_HDR("client_names", "z"),
	        CFL_HDR(CFL_KEY_CLIENT_NAME, "site-1"),
	        CFL_HDR(CFL_KEY_TOKEN, "v2.1.abc"),
	};
	struct cfl_frame f = frame_with(h, 7);
	struct cfl__auth_hdrs a;

	(void)state;
	cfl__auth_find_hdrs(&f, &a);
	assert_ptr_equal(a.name, &f.headers[5]);
	assert_ptr_equal(a.token, &f.headers[6]);
	assert_ptr_equal(a.sig, &f.headers[3]);
	assert_true(cfl__auth_hdr_is(a.name, "site-1", 6));
	assert_false(cfl__auth_hdr_is(a.name, "site-", 5));
	assert_false(cfl__auth_hdr_is(a.name, "site-2", 6));
	assert_false(cfl__auth_hdr_is(NULL, "", 0));

	f = frame_with(h, 5); /* none of the three but the signature */
	cfl__auth_find_hdrs(&f, &a);
	assert_null(a.name);
	assert_null(a.token);
	assert_ptr_equal(a.sig, &f.headers[3]);
	f = frame_with(h, 0);
	cfl__auth_find_hdrs(&f, &a);
	assert_null(a.name);
	assert_null(a.token);
	assert_null(a.sig);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ct_equal),
	        cmocka_unit_test(test_find_hdrs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
