/* Unit tests for streaming FedAvg aggregation (src/fl/agg.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cfl/err.h"
#include "cfl/model.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int64_t s34[] = {3, 4}, s4[] = {4}, s0[] = {0};

/* The expected model: w [3,4], b [4], s [] and an empty e [0]; values from `seed`. */
static struct cfl_model *model(uint32_t seed)
{
	struct cfl_model *m;
	float v[12];
	int i;

	for (i = 0; i < 12; i++) {
		seed = seed * 1664525u + 1013904223u;
		v[i] = (float)(seed >> 8) / (float)(1u << 24) * 4.0f - 2.0f;
	}
	assert_int_equal(cfl_model_new(&m), 0);
	assert_int_equal(cfl_model_add(m, "w", s34, 2, v), 0);
	assert_int_equal(cfl_model_add(m, "b", s4, 1, v + 3), 0);
	assert_int_equal(cfl_model_add(m, "s", NULL, 0, v + 11), 0);
	assert_int_equal(cfl_model_add(m, "e", s0, 1, NULL), 0);
	return m;
}

static uint8_t *bytes_of(const struct cfl_model *m, size_t *len)
{
	struct cfl_err e = {0, ""};
	uint8_t *b;

	assert_int_equal(cfl_model_serialize(m, NULL, 0, &b, len, &e), 0);
	return b;
}

/* A file: the 8-byte little-endian length of `json`, `json`, then `data` bytes. */
static uint8_t *mk(const char *json, const void *data, size_t data_len, size_t *len)
{
	size_t n = strlen(json), i;
	uint8_t *b = calloc(1, 8 + n + data_len);

	assert_non_null(b);
	for (i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)n >> (8 * i));
	memcpy(b + 8, json, n);
	if (data_len > 0)
		memcpy(b + 8 + n, data, data_len);
	*len = 8 + n + data_len;
	return b;
}

static void assert_same_bits(const struct cfl_model *a, const struct cfl_model *b)
{
	size_t i;

	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		assert_string_equal(a->t[i].name, b->t[i].name);
		assert_int_equal(a->t[i].count, b->t[i].count);
		if (a->t[i].count > 0)
			assert_memory_equal(a->t[i].data, b->t[i].data,
			                    a->t[i].count * sizeof(float));
	}
}

static void assert_result(const struct cfl_agg *a, const struct cfl_model *want)
{
	struct cfl_err e = {0, ""};
	struct cfl_model *got;

	assert_int_equal(cfl_agg_result(a, &got, &e), 0);
	assert_same_bits(got, want);
	cfl_model_free(got);
}

static struct cfl_model *result(const struct cfl_agg *a)
{
	struct cfl_err e = {0, ""};
	struct cfl_model *got;

	assert_int_equal(cfl_agg_result(a, &got, &e), 0);
	return got;
}

/* Streams `b` as one update, the first piece `k` bytes, the rest in one; returns end()'s. */
static int stream2(struct cfl_agg *a, const uint8_t *b, size_t len, size_t k, double w,
                   struct cfl_err *e)
{
	assert_int_equal(cfl_agg_begin(a, w, e), 0);
	if (cfl_agg_feed(a, b, k, e) == 0)
		(void)cfl_agg_feed(a, b + k, len - k, e);
	return cfl_agg_end(a, e);
}

/* Weights 1 and 3, values exact in binary: (1*x + 3*y) / 4 by hand. */
static void test_weighted_exact(void **state)
{
	const int64_t s22[] = {2, 2};
	const float x[4] = {1.0f, 2.0f, -4.0f, 0.5f}, y[4] = {5.0f, 2.0f, 4.0f, 0.25f};
	const float want[4] = {4.0f, 2.0f, 2.0f, 0.3125f};
	struct cfl_model *mx, *my, *got;
	struct cfl_err e = {0, ""};
	struct cfl_agg *a;
	uint8_t *b;
	size_t len;

	(void)state;
	assert_int_equal(cfl_model_new(&mx), 0);
	assert_int_equal(cfl_model_add(mx, "w", s22, 2, x), 0);
	assert_int_equal(cfl_model_new(&my), 0);
	assert_int_equal(cfl_model_add(my, "w", s22, 2, y), 0);
	assert_int_equal(cfl_agg_new(mx, &a, &e), 0);
	assert_int_equal(cfl_agg_result(a, &got, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "no update to average");
	assert_int_equal(cfl_agg_add_model(a, mx, 1.0, &e), 0);
	b = bytes_of(my, &len);
	assert_int_equal(stream2(a, b, len, len / 2, 3.0, &e), 0);
	assert_int_equal(cfl_agg_updates(a), 2);
	assert_true(cfl_agg_total_weight(a) == 4.0);
	got = result(a);
	assert_int_equal(got->n, 1);
	assert_string_equal(got->t[0].name, "w");
	assert_int_equal(got->t[0].ndim, 2);
	assert_memory_equal(got->t[0].data, want, sizeof(want));
	cfl_model_free(got);
	/* A reset starts the next round from nothing. */
	cfl_agg_reset(a);
	assert_int_equal(cfl_agg_updates(a), 0);
	assert_true(cfl_agg_total_weight(a) == 0.0);
	assert_int_equal(cfl_agg_add_model(a, my, 2.0, &e), 0);
	got = result(a);
	assert_memory_equal(got->t[0].data, y, sizeof(y));
	cfl_model_free(got);
	free(b);
	cfl_agg_free(a);
	cfl_model_free(mx);
	cfl_model_free(my);
}

/* Split at every byte, and fed one byte at a time, a stream sums exactly as the model does in
 * memory (random values, so any difference in rounding would show). */
static void test_split_everywhere(void **state)
{
	struct cfl_model *x = model(1), *y = model(2), *want;
	struct cfl_err e = {0, ""};
	struct cfl_agg *mem, *a;
	uint8_t *b;
	size_t len, k;

	(void)state;
	assert_int_equal(cfl_agg_new(x, &mem, &e), 0);
	assert_int_equal(cfl_agg_add_model(mem, x, 3.0, &e), 0);
	assert_int_equal(cfl_agg_add_model(mem, y, 7.0, &e), 0);
	want = result(mem);
	assert_int_equal(cfl_agg_new(x, &a, &e), 0);
	b = bytes_of(y, &len);
	for (k = 0; k <= len; k++) {
		cfl_agg_reset(a);
		assert_int_equal(cfl_agg_add_model(a, x, 3.0, &e), 0);
		if (stream2(a, b, len, k, 7.0, &e) != 0)
			fail_msg("split at %zu: %s", k, e.msg);
		assert_result(a, want);
	}
	cfl_agg_reset(a);
	assert_int_equal(cfl_agg_add_model(a, x, 3.0, &e), 0);
	assert_int_equal(cfl_agg_begin(a, 7.0, &e), 0);
	for (k = 0; k < len; k++)
		assert_int_equal(cfl_agg_feed(a, b + k, 1, &e), 0);
	assert_int_equal(cfl_agg_end(a, &e), 0);
	assert_result(a, want);
	free(b);
	cfl_model_free(want);
	cfl_agg_free(a);
	cfl_agg_free(mem);
	cfl_model_free(x);
	cfl_model_free(y);
}

/* 2- and 8-byte elements split across chunks too: a stream of F16, BF16 and F64 sums as its
 * parsed model does. */
static void test_split_other_dtypes(void **state)
{
	static const char json[] =
	        "{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[16,22]},"
	        "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
	        "\"g\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[22,24]}}";
	const int64_t s3[] = {3}, s2[] = {2}, s1[] = {1};
	uint8_t data[24];
	const double d[2] = {0.1, -3.75};
	struct cfl_model *shape, *parsed, *want;
	struct cfl_err e = {0, ""};
	struct cfl_agg *a;
	uint8_t *b;
	size_t len, k;

	(void)state;
	memcpy(data, d, 16); /* the test hosts are little-endian, as the asserts check */
	memcpy(data + 16, "\x00\x3e\x00\xbc\x01\x00\x20\x41", 8); /* 1.5, -1, 2^-24; 10 */
	b = mk(json, data, sizeof(data), &len);
	assert_int_equal(cfl_model_parse(b, len, &parsed, &e), 0);
	assert_true(parsed->t[0].data[0] == 1.5f && parsed->t[0].data[1] == -1.0f);
	assert_true(parsed->t[1].data[0] == 0.1f && parsed->t[2].data[0] == 10.0f);
	assert_int_equal(cfl_model_new(&shape), 0);
	assert_int_equal(cfl_model_add(shape, "d", s2, 1, NULL), 0);
	assert_int_equal(cfl_model_add(shape, "g", s1, 1, NULL), 0);
	assert_int_equal(cfl_model_add(shape, "h", s3, 1, NULL), 0);
	assert_int_equal(cfl_agg_new(shape, &a, &e), 0);
	assert_int_equal(cfl_agg_add_model(a, parsed, 5.0, &e), 0);
	want = result(a);
	for (k = 0; k <= len; k++) {
		cfl_agg_reset(a);
		if (stream2(a, b, len, k, 5.0, &e) != 0)
			fail_msg("split at %zu: %s", k, e.msg);
		assert_result(a, want);
	}
	free(b);
	cfl_model_free(want);
	cfl_model_free(parsed);
	cfl_model_free(shape);
	cfl_agg_free(a);
}

/* Every way an update can fail leaves the sum exactly as it was. */
static void test_failed_update(void **state)
{
	static const char *wrong_shape =
	        "{\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
	        "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,16]},"
	        "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[16,20]},"
	        "\"w\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[20,68]}}";
	struct cfl_model *x = model(1), *y = model(2), *odd, *want;
	struct cfl_err e = {0, ""};
	struct cfl_agg *a;
	uint8_t *b, *bad, zeros[68] = {0};
	size_t len, k, bad_len;
	const float nan = NAN;

	(void)state;
	assert_int_equal(cfl_agg_new(x, &a, &e), 0);
	assert_int_equal(cfl_agg_add_model(a, x, 2.0, &e), 0);
	want = result(a);
	b = bytes_of(y, &len);

	/* Cut short anywhere, header or data. */
	for (k = 0; k < len; k++) {
		assert_int_equal(cfl_agg_begin(a, 1.0, &e), 0);
		assert_int_equal(cfl_agg_feed(a, b, k, &e), 0);
		assert_int_equal(cfl_agg_end(a, &e), CFL_EPARSE);
		assert_non_null(strstr(e.msg, "update discarded: truncated in "));
		assert_result(a, want);
	}
	assert_int_equal(cfl_agg_begin(a, 1.0, &e), 0);
	assert_int_equal(cfl_agg_feed(a, b, len - 1, &e), 0);
	assert_int_equal(cfl_agg_end(a, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "update discarded: truncated in tensor 'w' (11 of 12 values)");

	/* Bytes after the end: the data of every tensor was in, yet nothing is added. */
	assert_int_equal(cfl_agg_begin(a, 1.0, &e), 0);
	assert_int_equal(cfl_agg_feed(a, b, len, &e), 0);
	assert_int_equal(cfl_agg_feed(a, b, 1, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "update rejected: data continues after the last tensor");
	assert_int_equal(cfl_agg_feed(a, b, 1, &e), CFL_EPARSE); /* sticky */
	assert_int_equal(cfl_agg_end(a, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "update discarded: data continues after the last tensor");
	assert_result(a, want);

	/* Abort half way. */
	assert_int_equal(cfl_agg_begin(a, 1.0, &e), 0);
	assert_int_equal(cfl_agg_feed(a, b, len - 20, &e), 0);
	cfl_agg_abort(a);
	assert_result(a, want);

	/* The wrong shape, found when the header is complete. */
	bad = mk(wrong_shape, zeros, sizeof(zeros), &bad_len);
	assert_int_equal(stream2(a, bad, bad_len, bad_len, 1.0, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "update discarded: tensor 'w' has shape [4,3], expected [3,4]");
	free(bad);

	/* A tensor missing, one too many, a NaN: by stream and in memory. */
	assert_int_equal(cfl_model_new(&odd), 0);
	assert_int_equal(cfl_model_add(odd, "w", s34, 2, NULL), 0);
	assert_int_equal(cfl_model_add(odd, "b", s4, 1, NULL), 0);
	assert_int_equal(cfl_model_add(odd, "e", s0, 1, NULL), 0);
	bad = bytes_of(odd, &bad_len);
	assert_int_equal(stream2(a, bad, bad_len, 9, 1.0, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "update discarded: missing tensor 's'");
	free(bad);
	assert_int_equal(cfl_agg_add_model(a, odd, 1.0, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "update rejected: missing tensor 's'");
	assert_int_equal(cfl_model_add(odd, "s", NULL, 0, &nan), 0);
	bad = bytes_of(odd, &bad_len);
	assert_int_equal(stream2(a, bad, bad_len, bad_len - 3, 1.0, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "update discarded: tensor 's' holds a non-finite value");
	free(bad);
	assert_int_equal(cfl_agg_add_model(a, odd, 1.0, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "update rejected: tensor 's' holds a non-finite value");
	cfl_model_find(odd, "s")->data[0] = 1.0f;
	assert_int_equal(cfl_model_add(odd, "x", NULL, 0, NULL), 0);
	bad = bytes_of(odd, &bad_len);
	assert_int_equal(stream2(a, bad, bad_len, 1, 1.0, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "update discarded: unexpected tensor 'x'");
	free(bad);
	assert_int_equal(cfl_agg_add_model(a, odd, 1.0, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "update rejected: unexpected tensor 'x'");
	cfl_model_free(odd);

	/* Not a safetensors file at all. */
	assert_int_equal(
	        stream2(a, (const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff", 8, 3, 1.0, &e),
	        CFL_ETOOBIG);
	assert_non_null(strstr(e.msg, "exceeds the limit of 16777216"));

	assert_int_equal(cfl_agg_updates(a), 1);
	assert_true(cfl_agg_total_weight(a) == 2.0);
	assert_result(a, want);
	/* And the next good update counts. */
	assert_int_equal(stream2(a, b, len, 100, 1.0, &e), 0);
	assert_int_equal(cfl_agg_updates(a), 2);
	free(b);
	cfl_model_free(want);
	cfl_agg_free(a);
	cfl_model_free(x);
	cfl_model_free(y);
}

static void test_misuse(void **state)
{
	struct cfl_model *x = model(1), *none, *got;
	struct cfl_err e = {0, ""};
	struct cfl_agg *a;
	uint8_t *b;
	size_t len;

	(void)state;
	assert_int_equal(cfl_agg_new(x, &a, &e), 0);
	assert_int_equal(cfl_agg_feed(a, (const uint8_t *)"x", 1, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "no update in progress");
	assert_int_equal(cfl_agg_end(a, &e), CFL_EINVAL);
	assert_int_equal(cfl_agg_begin(a, 0.0, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "update weight 0 must be finite and > 0");
	assert_int_equal(cfl_agg_begin(a, -1.0, &e), CFL_EINVAL);
	assert_int_equal(cfl_agg_begin(a, NAN, &e), CFL_EINVAL);
	assert_int_equal(cfl_agg_begin(a, INFINITY, &e), CFL_EINVAL);
	assert_int_equal(cfl_agg_add_model(a, x, 0.0, &e), CFL_EINVAL);
	assert_int_equal(cfl_agg_begin(a, 1.0, &e), 0);
	assert_int_equal(cfl_agg_begin(a, 1.0, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "an update is already in progress");
	/* The in-memory path does not touch the update in progress. */
	assert_int_equal(cfl_agg_add_model(a, x, 1.0, &e), 0);
	b = bytes_of(x, &len);
	assert_int_equal(cfl_agg_feed(a, b, len, &e), 0);
	assert_int_equal(cfl_agg_end(a, &e), 0);
	assert_result(a, x);
	/* Without its staging buffer (released between rounds) it streams again. */
	cfl_agg_release_stage(a);
	cfl_agg_release_stage(a);
	assert_int_equal(stream2(a, b, len, 5, 2.0, &e), 0);
	assert_result(a, x);
	assert_int_equal(cfl_agg_begin(a, 1.0, &e), 0);
	cfl_agg_release_stage(a); /* in progress: kept */
	assert_int_equal(cfl_agg_feed(a, b, len, &e), 0);
	assert_int_equal(cfl_agg_end(a, &e), 0);
	cfl_agg_release_stage(a);
	cfl_agg_free(a);
	free(b);
	cfl_agg_free(NULL);

	/* A model without tensors aggregates too ("{}" and padding). */
	assert_int_equal(cfl_model_new(&none), 0);
	assert_int_equal(cfl_agg_new(none, &a, &e), 0);
	b = bytes_of(none, &len);
	assert_int_equal(len, 16);
	assert_int_equal(stream2(a, b, len, 3, 1.0, &e), 0);
	assert_int_equal(cfl_agg_result(a, &got, &e), 0);
	assert_int_equal(got->n, 0);
	cfl_model_free(got);
	free(b);
	cfl_agg_free(a);
	cfl_model_free(none);
	cfl_model_free(x);
}

/* Memory does not grow with the number of clients: after the first few updates, the heap in
 * use stays put (glibc's count; under ASan it reads 0 and the check is moot). */
static void test_many_clients(void **state)
{
	struct cfl_model *x = model(7), *got;
	struct cfl_err e = {0, ""};
	struct cfl_agg *a;
	size_t len, i, before = 0;
	uint8_t *b;

	(void)state;
	assert_int_equal(cfl_agg_new(x, &a, &e), 0);
	b = bytes_of(x, &len);
	for (i = 0; i < 2000; i++) {
		if (i == 10)
			before = mallinfo2().uordblks;
		assert_int_equal(stream2(a, b, len, (i * 37) % len, 1.0 + (double)(i % 5), &e), 0);
	}
	assert_int_equal(mallinfo2().uordblks, before);
	assert_int_equal(cfl_agg_updates(a), 2000);
	assert_true(cfl_agg_total_weight(a) == 6000.0);
	assert_int_equal(cfl_agg_result(a, &got, &e), 0);
	/* The average of identical models is that model, bit for bit. */
	assert_same_bits(got, x);
	cfl_model_free(got);
	free(b);
	cfl_agg_free(a);
	cfl_model_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_weighted_exact),
	        cmocka_unit_test(test_split_everywhere),
	        cmocka_unit_test(test_split_other_dtypes),
	        cmocka_unit_test(test_failed_update),
	        cmocka_unit_test(test_misuse),
	        cmocka_unit_test(test_many_clients),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
