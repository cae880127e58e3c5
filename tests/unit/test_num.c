/* Unit tests for the strict number readers (src/util/num.h): what the wire may say and what
 * must be refused rather than read as 0, cut or wrapped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/num.h"

static void test_u64(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(cfl__num_u64("0", 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(cfl__num_u64("10", 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(cfl__num_u64("18446744073709551615", UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	v = 7;
	/* Refused, and *out untouched. */
	assert_int_equal(cfl__num_u64("11", 10, &v), -1);
	assert_int_equal(cfl__num_u64("18446744073709551616", UINT64_MAX, &v), -1);
	assert_int_equal(cfl__num_u64("", 10, &v), -1);
	assert_int_equal(cfl__num_u64(NULL, 10, &v), -1);
	assert_int_equal(cfl__num_u64("-1", 10, &v), -1);
	assert_int_equal(cfl__num_u64("+1", 10, &v), -1);
	assert_int_equal(cfl__num_u64(" 1", 10, &v), -1);
	assert_int_equal(cfl__num_u64("1 ", 10, &v), -1);
	assert_int_equal(cfl__num_u64("0x1", 10, &v), -1);
	assert_int_equal(cfl__num_u64("9007199254740993", (uint64_t)1 << 53, &v), -1);
	assert_int_equal(v, 7);
}

static void test_finite(void **state)
{
	double d = 7;

	(void)state;
	assert_int_equal(cfl__num_finite("0.25", &d), 0);
	assert_true(d == 0.25);
	assert_int_equal(cfl__num_finite("-1e3", &d), 0);
	assert_true(d == -1000);
	d = 7;
	assert_int_equal(cfl__num_finite("nan", &d), -1);
	assert_int_equal(cfl__num_finite("inf", &d), -1);
	assert_int_equal(cfl__num_finite("1e999", &d), -1);
	assert_int_equal(cfl__num_finite("1.5x", &d), -1);
	assert_int_equal(cfl__num_finite("", &d), -1);
	assert_true(d == 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_u64),
	        cmocka_unit_test(test_finite),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
