/* Unit tests for models and their safetensors files (src/fl/model.c, src/fl/model_stream.c).
 *
 * The fixtures under tests/data/models/ were written by make_fixtures.py there, with Python's
 * struct and json only, in the reference implementation's layout; they are found through
 * CFL_SRC, which ctest sets to the source folder. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cfl/err.h"
#include "cfl/model.h"
#include "model/model_int.h"
#include "util/fs.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB ((size_t)1024 * 1024)

/* A file: the 8-byte little-endian length of `json`, `json`, then `data` zero bytes. */
static uint8_t *mk(const char *json, size_t data, size_t *len)
{
	size_t n = strlen(json), i;
	uint8_t *b = calloc(1, 8 + n + data + 1);

	assert_non_null(b);
	for (i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)n >> (8 * i));
	memcpy(b + 8, json, n);
	*len = 8 + n + data;
	return b;
}

static void assert_rejected(const uint8_t *b, size_t len, int rc, const char *msg)
{
	struct cfl_err e = {0, ""};
	struct cfl_model *m = NULL;
	int got = cfl_model_parse(b, len, &m, &e);

	if (got != rc || strstr(e.msg, msg) == NULL)
		fail_msg("got %d '%s', want %d '%s'", got, e.msg, rc, msg);
	assert_null(m);
}

static int same_bits(const float *a, const float *b, size_t n)
{
	return n == 0 || memcmp(a, b, n * sizeof(float)) == 0;
}

/* Same tensors by name: shapes and values bit for bit (NaN payloads, -0.0). */
static void assert_same_model(const struct cfl_model *a, const struct cfl_model *b)
{
	size_t i;
	int k;

	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		const struct cfl_tensor *x = &a->t[i], *y = cfl_model_find(b, x->name);

		assert_non_null(y);
		assert_int_equal(x->ndim, y->ndim);
		for (k = 0; k < x->ndim; k++)
			assert_int_equal(x->shape[k], y->shape[k]);
		assert_int_equal(x->count, y->count);
		assert_true(same_bits(x->data, y->data, x->count));
	}
}

static char *fixture(const char *name)
{
	const char *src = getenv("CFL_SRC");
	static char path[4096];

	if (src == NULL)
		fail_msg("CFL_SRC is not set (ctest sets it to the source folder)");
	snprintf(path, sizeof(path), "%s/tests/data/models/%s", src, name);
	return path;
}

static void test_build(void **state)
{
	const int64_t s23[] = {2, 3}, neg[] = {2, -1}, big[] = {INT64_MAX, 4}, nine[9] = {1};
	const int64_t zero_big[] = {INT64_MAX, INT64_MAX, 0};
	const float v[6] = {1, 2, 3, 4, 5, 6};
	struct cfl_model *m, *c;
	struct cfl_tensor *t;
	char longname[CFL_MODEL_NAME_MAX + 1];

	(void)state;
	assert_int_equal(cfl_model_new(&m), 0);
	assert_int_equal(cfl_model_add(m, "w", s23, 2, v), 0);
	assert_int_equal(cfl_model_add(m, "s", NULL, 0, NULL), 0);
	assert_int_equal(cfl_model_add(m, "void", zero_big, 3, NULL), 0);
	assert_int_equal(cfl_model_add(m, "w", s23, 2, v), CFL_EEXIST);
	assert_int_equal(cfl_model_add(m, "x", neg, 2, NULL), CFL_EINVAL);
	assert_int_equal(cfl_model_add(m, "x", big, 2, NULL), CFL_ETOOBIG);
	assert_int_equal(cfl_model_add(m, "x", nine, 9, NULL), CFL_EINVAL);
	assert_int_equal(cfl_model_add(m, "x", NULL, -1, NULL), CFL_EINVAL);
	assert_int_equal(cfl_model_add(m, "", NULL, 0, NULL), CFL_EINVAL);
	assert_int_equal(cfl_model_add(m, "__metadata__", NULL, 0, NULL), CFL_EINVAL);
	assert_int_equal(cfl_model_add(m, "bad\xff", NULL, 0, NULL), CFL_EINVAL);
	memset(longname, 'n', sizeof(longname) - 1);
	longname[CFL_MODEL_NAME_MAX] = '\0';
	assert_int_equal(cfl_model_add(m, longname, NULL, 0, NULL), CFL_EINVAL);
	longname[CFL_MODEL_NAME_MAX - 1] = '\0';
	assert_int_equal(cfl_model_add(m, longname, NULL, 0, NULL), 0);
	assert_int_equal(m->n, 4);
	assert_int_equal(cfl_model_count(m), 8);
	t = cfl_model_find(m, "w");
	assert_non_null(t);
	assert_int_equal(t->count, 6);
	assert_true(same_bits(t->data, v, 6));
	assert_true(cfl_model_find(m, "s")->data[0] == 0.0f);
	assert_null(cfl_model_find(m, "void")->data);
	assert_null(cfl_model_find(m, "nope"));
	assert_int_equal(cfl_model_clone(m, &c), 0);
	assert_ptr_not_equal(cfl_model_find(c, "w")->data, t->data);
	assert_same_model(m, c);
	cfl_model_free(c);
	cfl_model_free(m);
	cfl_model_free(NULL);
}

static void test_too_many_tensors(void **state)
{
	struct cfl_model *m;
	char name[16];
	int i;

	(void)state;
	assert_int_equal(cfl_model_new(&m), 0);
	for (i = 0; i < CFL_MODEL_MAX_TENSORS; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		assert_int_equal(cfl_model_add(m, name, NULL, 0, NULL), 0);
	}
	assert_int_equal(cfl_model_add(m, "one-more", NULL, 0, NULL), CFL_ETOOBIG);
	cfl_model_free(m);
}

/* The exact bytes of a tiny model, header worked out by hand: tensors sorted by name with
 * consecutive offsets, metadata sorted by key, 151 bytes of JSON + 1 space = 152 = 0x98. */
static void test_exact_bytes(void **state)
{
	static const char header[] =
	        "{\"__metadata__\":{\"format\":\"cfl\",\"round\":\"3\"},"
	        "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
	        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}"
	        "} ";
	static const uint8_t len[8] = {0x98, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t data[12] = {0, 0, 0, 0x3f, 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0};
	const char *meta[] = {"round", "3", "format", "cfl"};
	const int64_t s2[] = {2};
	const float b[] = {1.0f, -2.0f}, a = 0.5f;
	struct cfl_err e = {0, ""};
	struct cfl_model *m;
	uint8_t *buf;
	size_t n;

	(void)state;
	assert_int_equal(sizeof(header) - 1, 152);
	assert_int_equal(cfl_model_new(&m), 0);
	assert_int_equal(cfl_model_add(m, "b", s2, 1, b), 0);
	assert_int_equal(cfl_model_add(m, "a", NULL, 0, &a), 0);
	assert_int_equal(cfl_model_serialize(m, meta, 2, &buf, &n, &e), 0);
	assert_int_equal(n, 8 + 152 + 12);
	assert_memory_equal(buf, len, 8);
	assert_memory_equal(buf + 8, header, 152);
	assert_memory_equal(buf + 160, data, 12);
	free(buf);
	cfl_model_free(m);
}

/* A model with the awkward cases: a scalar, an empty tensor, 8 dimensions, -0.0, a
 * subnormal, inf and NaN with a payload. */
static struct cfl_model *awkward(void)
{
	const int64_t s34[] = {3, 4}, s4[] = {4}, s05[] = {0, 5}, s8[] = {1, 1, 1, 1, 1, 1, 1, 2};
	const uint32_t nan_bits = 0x7fc01234u;
	float w[12], b[4] = {-0.0f, 1e-40f, INFINITY, 0}, z[2] = {3.25f, -7.5f};
	struct cfl_model *m;
	int i;

	memcpy(&b[3], &nan_bits, sizeof(float));
	for (i = 0; i < 12; i++)
		w[i] = (float)i / 3.0f - 1.7f;
	assert_int_equal(cfl_model_new(&m), 0);
	assert_int_equal(cfl_model_add(m, "layer.0.weight", s34, 2, w), 0);
	assert_int_equal(cfl_model_add(m, "layer.0.bias", s4, 1, b), 0);
	assert_int_equal(cfl_model_add(m, "scalar", NULL, 0, &z[0]), 0);
	assert_int_equal(cfl_model_add(m, "empty", s05, 2, NULL), 0);
	assert_int_equal(cfl_model_add(m, "deep", s8, 8, z), 0);
	assert_int_equal(cfl_model_add(m, "caf\xc3\xa9", s4, 1, NULL), 0);
	return m;
}

static void test_round_trip(void **state)
{
	const char *meta[] = {"format", "cfl", "round", "3"};
	char dir[] = "/tmp/cfl-test-model-XXXXXX", path[256];
	struct cfl_err e = {0, ""};
	struct cfl_model *m = awkward(), *got = NULL;
	uint8_t *buf;
	char *file;
	size_t n, flen, entries = 0;
	struct stat st;
	DIR *d;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	assert_int_equal(cfl_model_save(m, path, meta, 2, &e), 0);
	assert_int_equal(cfl_model_load(path, 1 * MiB, &got, &e), 0);
	assert_same_model(m, got);
	/* Read back in file order, which is sorted by name. */
	assert_string_equal(got->t[0].name, "caf\xc3\xa9");
	assert_string_equal(got->t[5].name, "scalar");
	/* The file holds what serialize gives, is private, and no temporary is left behind. */
	assert_int_equal(cfl_model_serialize(m, meta, 2, &buf, &n, &e), 0);
	assert_int_equal(cfl__fs_read_file(path, MiB, &file, &flen, &e), 0);
	assert_int_equal(flen, n);
	assert_memory_equal(file, buf, n);
	assert_int_equal((n - 8 - 4 * cfl_model_count(m)) % 8, 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_non_null(d = opendir(dir));
	while (readdir(d) != NULL)
		entries++;
	closedir(d);
	assert_int_equal(entries, 3); /* ., .., model.safetensors */
	/* Saving again replaces the file. */
	assert_int_equal(cfl_model_save(got, path, NULL, 0, &e), 0);
	cfl_model_free(got);
	assert_int_equal(cfl_model_load(path, MiB, &got, &e), 0);
	assert_same_model(m, got);
	free(file);
	free(buf);
	cfl_model_free(got);
	cfl_model_free(m);
	unlink(path);
	rmdir(dir);
}

/* Equal models give equal bytes whatever the order of adding tensors or giving metadata. */
static void test_deterministic(void **state)
{
	const char *m1[] = {"b", "2", "a", "1"}, *m2[] = {"a", "1", "b", "2"};
	struct cfl_model *m = awkward(), *r;
	struct cfl_err e = {0, ""};
	const struct cfl_tensor **sorted;
	uint8_t *b1, *b2, *head;
	size_t n1, n2, i, head_len;

	(void)state;
	assert_int_equal(cfl_model_new(&r), 0);
	for (i = m->n; i > 0; i--) {
		const struct cfl_tensor *t = &m->t[i - 1];

		assert_int_equal(cfl_model_add(r, t->name, t->shape, t->ndim, t->data), 0);
	}
	assert_int_equal(cfl_model_serialize(m, m1, 2, &b1, &n1, &e), 0);
	assert_int_equal(cfl_model_serialize(r, m2, 2, &b2, &n2, &e), 0);
	assert_int_equal(n1, n2);
	assert_memory_equal(b1, b2, n1);
	/* The header alone, for writers that stream the data, is the same prefix. */
	assert_int_equal(cfl__model_header(r, m2, 2, &head, &head_len, &sorted, &e), 0);
	assert_true(head_len < n1);
	assert_memory_equal(head, b1, head_len);
	assert_string_equal(sorted[0]->name, "caf\xc3\xa9");
	assert_string_equal(sorted[m->n - 1]->name, "scalar");
	free(head);
	free(sorted);
	free(b1);
	free(b2);
	cfl_model_free(r);
	cfl_model_free(m);
}

static void test_write_errors(void **state)
{
	const char *dup[] = {"k", "1", "k", "2"}, *nul[] = {"k", NULL}, *bad[] = {"k", "\xc3("};
	const char *empty[] = {"", "x"};
	struct cfl_model *m = awkward();
	struct cfl_err e = {0, ""};
	const char *big[2] = {"huge", NULL};
	char *v;
	uint8_t *buf = NULL;
	size_t n;

	(void)state;
	assert_int_equal(cfl_model_serialize(m, dup, 2, &buf, &n, &e), CFL_EINVAL);
	assert_non_null(strstr(e.msg, "metadata key 'k' given twice"));
	assert_int_equal(cfl_model_serialize(m, nul, 1, &buf, &n, &e), CFL_EINVAL);
	assert_int_equal(cfl_model_serialize(m, empty, 1, &buf, &n, &e), CFL_EINVAL);
	assert_int_equal(cfl_model_serialize(m, bad, 1, &buf, &n, &e), CFL_EINVAL);
	assert_non_null(strstr(e.msg, "not utf-8"));
	v = malloc(CFL_MODEL_MAX_HEADER + 1);
	memset(v, 'x', CFL_MODEL_MAX_HEADER);
	v[CFL_MODEL_MAX_HEADER] = '\0';
	big[1] = v;
	assert_int_equal(cfl_model_serialize(m, big, 1, &buf, &n, &e), CFL_ETOOBIG);
	assert_non_null(strstr(e.msg, "exceeds the limit"));
	free(v);
	assert_null(buf);
	assert_int_equal(cfl_model_save(m, "/nonexistent-dir/m.safetensors", NULL, 0, &e), CFL_EIO);
	assert_string_equal(e.msg, "cannot save '/nonexistent-dir/m.safetensors': "
	                           "No such file or directory");
	cfl_model_free(m);
}

/* Files written by another writer (Python struct + json): read, and ours match them. */
static void test_python_fixtures(void **state)
{
	const char *meta[] = {"format", "pt"};
	const int64_t s22[] = {2, 2}, s2[] = {2}, s03[] = {0, 3};
	const float w[] = {1.5f, -2.0f, 0.25f, 3.0e-5f}, b[] = {-0.5f, 1024.0f}, step = 7.0f;
	struct cfl_err e = {0, ""};
	struct cfl_model *m, *py;
	struct cfl_tensor *t;
	uint8_t *buf;
	char *file;
	size_t n, flen;

	(void)state;
	assert_int_equal(cfl_model_new(&m), 0);
	assert_int_equal(cfl_model_add(m, "weight", s22, 2, w), 0);
	assert_int_equal(cfl_model_add(m, "bias", s2, 1, b), 0);
	assert_int_equal(cfl_model_add(m, "step", NULL, 0, &step), 0);
	assert_int_equal(cfl_model_add(m, "empty", s03, 2, NULL), 0);
	assert_int_equal(cfl_model_load(fixture("py_f32.safetensors"), MiB, &py, &e), 0);
	assert_same_model(m, py);
	assert_int_equal(cfl_model_serialize(m, meta, 1, &buf, &n, &e), 0);
	assert_int_equal(cfl__fs_read_file(fixture("py_f32.safetensors"), MiB, &file, &flen, &e),
	                 0);
	assert_int_equal(n, flen);
	assert_memory_equal(buf, file, n);
	free(buf);
	free(file);
	cfl_model_free(py);
	cfl_model_free(m);

	/* F16, BF16, F64 converted; header order kept; data in another order; no padding. */
	assert_int_equal(cfl_model_load(fixture("py_mixed.safetensors"), MiB, &py, &e), 0);
	assert_int_equal(py->n, 4);
	assert_string_equal(py->t[0].name, "half");
	assert_string_equal(py->t[3].name, "single");
	t = cfl_model_find(py, "half");
	assert_true(t->data[0] == 1.5f && t->data[1] == -65504.0f && t->data[2] == 0x1p-24f);
	t = cfl_model_find(py, "brain");
	assert_int_equal(t->ndim, 2);
	assert_true(t->data[0] == -0.15625f && t->data[1] == 0x1p127f);
	t = cfl_model_find(py, "double");
	assert_true(t->data[0] == 0.1f && t->data[1] == -INFINITY);
	assert_true(cfl_model_find(py, "single")->data[0] == 2.5f);
	cfl_model_free(py);
}

static void test_half_conversions(void **state)
{
	/* F16: inf, NaN, the largest subnormal, -0; F64: a value that rounds up to inf, one
	 * just below, rounded to FLT_MAX. */
	static const char json[] =
	        "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
	        "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[8,24]}}";
	const uint16_t h[4] = {0x7c00, 0x7e00, 0x03ff, 0x8000};
	const double d[2] = {0x1.ffffffp127, 0x1.fffffefp127};
	struct cfl_err e = {0, ""};
	struct cfl_model *m;
	struct cfl_tensor *t;
	size_t len, i;
	uint8_t *b = mk(json, 24, &len);

	(void)state;
	for (i = 0; i < 4; i++) {
		b[len - 24 + 2 * i] = (uint8_t)h[i];
		b[len - 24 + 2 * i + 1] = (uint8_t)(h[i] >> 8);
	}
	for (i = 0; i < 2; i++) {
		uint64_t u;
		int k;

		memcpy(&u, &d[i], 8);
		for (k = 0; k < 8; k++)
			b[len - 16 + 8 * i + (size_t)k] = (uint8_t)(u >> (8 * k));
	}
	assert_int_equal(cfl_model_parse(b, len, &m, &e), 0);
	t = cfl_model_find(m, "h");
	assert_true(isinf(t->data[0]) && t->data[0] > 0);
	assert_true(isnan(t->data[1]));
	assert_true(t->data[2] == 1023 * 0x1p-24f);
	assert_true(t->data[3] == 0 && signbit(t->data[3]));
	t = cfl_model_find(m, "d");
	assert_true(isinf(t->data[0]));
	assert_true(t->data[1] == 0x1.fffffep127f);
	cfl_model_free(m);
	free(b);
}

#define T(name, body)    "\"" name "\":{" body "}"
#define F32(shape, b, e) "\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]"

static const struct bad {
	const char *json;
	size_t data;
	int rc;
	const char *msg;
} bad_files[] = {
        {"{\"a\":", 0, CFL_EPARSE, "header is not valid json"},
        {"[1,2]", 0, CFL_EPARSE, "header must be a json object"},
        {"{\"a\":1}", 0, CFL_EPARSE, "tensor 'a' must be an object"},
        {"{\"\xff\":1}", 0, CFL_EPARSE, "header is not valid json: unable to decode byte 0xff"},
        {"{" T("a", F32("[2]", 0, 8)) "," T("b", F32("[1,3]", 4, 16)) "}", 16, CFL_EPARSE,
         "tensors 'a' and 'b' overlap"},
        {"{" T("a", F32("[2]", 0, 8)) "," T("b", F32("[2]", 0, 8)) "}", 8, CFL_EPARSE,
         "tensors 'a' and 'b' overlap"},
        {"{" T("a", F32("[2]", 0, 8)) "," T("c", F32("[]", 12, 16)) "}", 16, CFL_EPARSE,
         "gap of 4 bytes before tensor 'c' at 12"},
        {"{" T("a", F32("[2]", 4, 12)) "}", 12, CFL_EPARSE, "gap of 4 bytes before tensor 'a'"},
        {"{" T("a", F32("[2]", 0, 8)) "}", 12, CFL_EPARSE, "4 bytes of data after the last tensor"},
        {"{}", 1, CFL_EPARSE, "1 bytes of data after the last tensor"},
        {"{" T("a", F32("[2]", 0, 8)) "}", 4, CFL_EPARSE,
         "tensor 'a': data_offsets [0,8] pass the end of the data (4 bytes)"},
        {"{" T("a", F32("[2]", 0, 9223372036854775807)) "}", 8, CFL_EPARSE, "pass the end"},
        {"{" T("a", F32("[2]", 0, 99999999999999999999)) "}", 8, CFL_EPARSE, "too big integer"},
        {"{" T("a", F32("[2]", 8, 0)) "}", 8, CFL_EPARSE, "data_offsets must be [begin, end]"},
        {"{" T("a", F32("[2]", -8, 0)) "}", 8, CFL_EPARSE, "data_offsets must be [begin, end]"},
        {"{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]") "}", 8, CFL_EPARSE,
         "data_offsets must be [begin, end]"},
        {"{" T("a", "\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]") "}", 8, CFL_EUNSUPP,
         "tensor 'a': dtype 'I32' is not supported (F32, F64, F16, BF16 are)"},
        {"{" T("a", "\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]") "}", 8, CFL_EPARSE,
         "tensor 'a': dtype must be a string"},
        {"{" T("a", F32("[3]", 0, 8)) "}", 8, CFL_EPARSE,
         "tensor 'a': data_offsets [0,8] hold 8 bytes, shape [3] needs 12"},
        {"{" T("a", F32("[1000000000]", 0, 8)) "}", 8, CFL_EPARSE,
         "hold 8 bytes, shape [1000000000] needs 4000000000"},
        {"{" T("a", "\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]") "}", 8, CFL_EPARSE,
         "hold 8 bytes, shape [2] needs 4"},
        {"{" T("a", F32("[]", 0, 4)) "," T("a", F32("[]", 4, 8)) "}", 8, CFL_EPARSE,
         "duplicate object key near '\"a\"'"},
        {"{" T("a", F32("[4294967296,4294967296]", 0, 8)) "}", 8, CFL_ETOOBIG,
         "tensor 'a': shape [4294967296,4294967296] is too large"},
        {"{" T("a", F32("[9223372036854775807,2]", 0, 8)) "}", 8, CFL_ETOOBIG, "is too large"},
        {"{" T("a", F32("[1,1,1,1,1,1,1,1,2]", 0, 8)) "}", 8, CFL_ETOOBIG,
         "tensor 'a': shape has 9 dimensions, at most 8"},
        {"{" T("a", F32("[2,-1]", 0, 8)) "}", 8, CFL_EPARSE, "shape must hold integers >= 0"},
        {"{" T("a", F32("[2.0]", 0, 8)) "}", 8, CFL_EPARSE, "shape must hold integers >= 0"},
        {"{" T("a", F32("2", 0, 8)) "}", 8, CFL_EPARSE, "tensor 'a': shape must be an array"},
        {"{" T("a", F32("[2]", 0, 8) ",\"offsets\":[0,8]") "}", 8, CFL_EPARSE,
         "tensor 'a': unknown key 'offsets'"},
        {"{" T("a", "\"dtype\":\"F32\",\"shape\":[2]") "}", 8, CFL_EPARSE,
         "tensor 'a' needs dtype, shape and data_offsets"},
        {"{" T("", F32("[]", 0, 4)) "}", 4, CFL_EPARSE, "tensor name of 0 bytes (1 to 255"},
        {"{\"__metadata__\":{\"round\":3}}", 0, CFL_EPARSE,
         "'__metadata__' value of 'round' must be a string"},
        {"{\"__metadata__\":[]}", 0, CFL_EPARSE, "'__metadata__' must be an object"},
};

static void test_bad_files(void **state)
{
	static const uint8_t short_file[7] = {2, 0, 0, 0, 0, 0, 0};
	static const uint8_t huge[10] = {0, 0, 0, 0, 0, 1, 0, 0, '{', '}'};
	static const uint8_t over[10] = {1, 0, 0, 1, 0, 0, 0, 0, '{', '}'};
	static const uint8_t longer[10] = {3, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
	static const uint8_t tiny[9] = {1, 0, 0, 0, 0, 0, 0, 0, ' '};
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
		uint8_t *b = mk(bad_files[i].json, bad_files[i].data, &len);

		print_message("bad file %zu: %s\n", i, bad_files[i].msg);
		assert_rejected(b, len, bad_files[i].rc, bad_files[i].msg);
		free(b);
	}
	assert_rejected(short_file, 7, CFL_EPARSE, "7 bytes, too short for a safetensors file");
	assert_rejected(NULL, 0, CFL_EPARSE, "0 bytes, too short");
	assert_rejected(huge, 10, CFL_ETOOBIG,
	                "header length 1099511627776 exceeds the limit of 16777216");
	assert_rejected(over, 10, CFL_ETOOBIG, "header length 16777217 exceeds the limit");
	assert_rejected(longer, 10, CFL_EPARSE, "header length 3 exceeds the 2 bytes that follow");
	assert_rejected(tiny, 9, CFL_EPARSE, "header length 1 is too short for json");
}

/* Cut anywhere, a valid file is rejected, never read short. */
static void test_truncated(void **state)
{
	struct cfl_model *m = awkward(), *got;
	struct cfl_err e = {0, ""};
	uint8_t *buf;
	size_t n, k;

	(void)state;
	assert_int_equal(cfl_model_serialize(m, NULL, 0, &buf, &n, &e), 0);
	for (k = 0; k < n; k++) {
		got = NULL;
		assert_int_equal(cfl_model_parse(buf, k, &got, &e), CFL_EPARSE);
		assert_null(got);
	}
	assert_int_equal(cfl_model_parse(buf, n, &got, &e), 0);
	cfl_model_free(got);
	free(buf);
	cfl_model_free(m);
}

static void test_limits(void **state)
{
	char *json = malloc((size_t)64 * (CFL_MODEL_MAX_TENSORS + 2)), name[CFL_MODEL_NAME_MAX + 1];
	struct cfl_err e = {0, ""};
	struct cfl_model *m;
	size_t off = 1, last = 0, len;
	uint8_t *b;
	int i;

	(void)state;
	/* Too many tensors. */
	json[0] = '{';
	for (i = 0; i <= CFL_MODEL_MAX_TENSORS; i++) {
		last = off;
		off += (size_t)snprintf(json + off, 64,
		                        "%s\"t%d\":{\"dtype\":\"F32\",\"shape\":[0],"
		                        "\"data_offsets\":[0,0]}",
		                        i > 0 ? "," : "", i);
	}
	snprintf(json + off, 2, "}");
	b = mk(json, 0, &len);
	assert_rejected(b, len, CFL_ETOOBIG, "4097 tensors, at most 4096");
	free(b);
	/* Exactly the limit is fine; zero-size tensors may share an offset. */
	json[last] = '}';
	json[last + 1] = '\0';
	assert_non_null(strstr(json, "\"t4095\":{\"dtype\":\"F32\",\"shape\":[0],"
	                             "\"data_offsets\":[0,0]}}"));
	b = mk(json, 0, &len);
	assert_int_equal(cfl_model_parse(b, len, &m, &e), 0);
	assert_int_equal(m->n, CFL_MODEL_MAX_TENSORS);
	cfl_model_free(m);
	free(b);
	/* Names of 255 bytes are read, 256 are not. */
	memset(name, 'n', sizeof(name));
	name[255] = '\0';
	snprintf(json, 1024, "{\"%s\":{" F32("[]", 0, 4) "}}", name);
	b = mk(json, 4, &len);
	assert_int_equal(cfl_model_parse(b, len, &m, &e), 0);
	cfl_model_free(m);
	free(b);
	name[255] = 'n';
	name[256] = '\0';
	snprintf(json, 1024, "{\"%s\":{" F32("[]", 0, 4) "}}", name);
	b = mk(json, 4, &len);
	assert_rejected(b, len, CFL_EPARSE, "tensor name of 256 bytes (1 to 255 allowed)");
	free(b);
	free(json);
}

static void test_load_errors(void **state)
{
	char dir[] = "/tmp/cfl-test-model-XXXXXX", path[256];
	struct cfl_model *m = NULL;
	struct cfl_err e = {0, ""};
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/none.safetensors", dir);
	assert_int_equal(cfl_model_load(path, MiB, &m, &e), CFL_ENOENT);
	assert_non_null(strstr(e.msg, "none.safetensors"));
	assert_int_equal(cfl_model_load(fixture("py_f32.safetensors"), 100, &m, &e), CFL_ETOOBIG);
	snprintf(path, sizeof(path), "%s/bad.safetensors", dir);
	assert_non_null(f = fopen(path, "wb"));
	fwrite("\x02\0\0\0\0\0\0\0{}\0", 1, 11, f);
	fclose(f);
	assert_int_equal(cfl_model_load(path, MiB, &m, &e), CFL_EPARSE);
	assert_non_null(strstr(e.msg, "cannot load '"));
	assert_non_null(strstr(e.msg, "bad.safetensors': 1 bytes of data after the last tensor"));
	assert_null(m);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_build),           cmocka_unit_test(test_too_many_tensors),
	        cmocka_unit_test(test_exact_bytes),     cmocka_unit_test(test_round_trip),
	        cmocka_unit_test(test_deterministic),   cmocka_unit_test(test_write_errors),
	        cmocka_unit_test(test_python_fixtures), cmocka_unit_test(test_half_conversions),
	        cmocka_unit_test(test_bad_files),       cmocka_unit_test(test_truncated),
	        cmocka_unit_test(test_limits),          cmocka_unit_test(test_load_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
