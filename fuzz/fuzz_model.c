/* libFuzzer target for safetensors input: the whole-file parser (cfl_model_parse) and the
 * streaming aggregator (cfl_agg_*), fed the same bytes.
 *
 * A model that parses must serialize and parse back to the same tensors, bit for bit. The
 * aggregator expects a fixed model (a [2], b [1,3], c []) and already holds one update; the
 * input is streamed into it in chunks of pseudo-random sizes drawn from the input itself. The
 * stream must be accepted exactly when the parser accepts the file and the in-memory path
 * accepts the parsed model, with the same average to the bit; when it is rejected, the
 * average must be what it was. Any disagreement aborts, which libFuzzer reports as a crash.
 * The seeds (fuzz/corpus/model/) come from tests/data/models/make_fixtures.py. */
#include "cfl/err.h"
#include "cfl/model.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static void check_same(const struct cfl_model *a, const struct cfl_model *b, int by_name)
{
	size_t i;

	check(a->n == b->n);
	for (i = 0; i < a->n; i++) {
		const struct cfl_tensor *x = &a->t[i];
		const struct cfl_tensor *y = by_name ? cfl_model_find(b, x->name) : &b->t[i];

		check(y != NULL && strcmp(x->name, y->name) == 0 && x->ndim == y->ndim);
		check(memcmp(x->shape, y->shape, (size_t)x->ndim * sizeof(int64_t)) == 0);
		check(x->count == y->count);
		check(x->count == 0 || memcmp(x->data, y->data, x->count * sizeof(float)) == 0);
	}
}

static void check_round_trip(const struct cfl_model *m)
{
	struct cfl_model *again = NULL;
	struct cfl_err e;
	uint8_t *buf = NULL;
	size_t len = 0;

	check(cfl_model_serialize(m, NULL, 0, &buf, &len, &e) == 0);
	check(cfl_model_parse(buf, len, &again, &e) == 0);
	check_same(m, again, 1);
	cfl_model_free(again);
	free(buf);
}

static struct cfl_model *expected(void)
{
	static const int64_t s2[] = {2}, s13[] = {1, 3};
	static const float base[6] = {1.0f, -1.0f, 0.5f, 2.0f, -3.0f, 4.0f};
	struct cfl_model *m = NULL;

	check(cfl_model_new(&m) == 0);
	check(cfl_model_add(m, "a", s2, 1, base) == 0);
	check(cfl_model_add(m, "b", s13, 2, base + 2) == 0);
	check(cfl_model_add(m, "c", NULL, 0, base + 5) == 0);
	return m;
}

/* Streams the input in chunks of 1..64 bytes (and now and then all the rest); returns end()'s
 * result. The sizes come from a hash of the input, so a run is reproducible. */
static int stream(struct cfl_agg *a, const uint8_t *data, size_t size)
{
	uint32_t h = 2166136261u;
	struct cfl_err e;
	size_t off = 0, i;
	int rc = 0;

	for (i = 0; i < size && i < 64; i++)
		h = (h ^ data[i]) * 16777619u;
	check(cfl_agg_begin(a, 3.0, &e) == 0);
	while (off < size && rc == 0) {
		size_t n;

		h = h * 1664525u + 1013904223u;
		n = (h >> 24) < 16 ? size - off : 1 + ((h >> 8) & 63);
		if (n > size - off)
			n = size - off;
		rc = cfl_agg_feed(a, data + off, n, &e);
		off += n;
	}
	if (rc != 0 && (h & 1) != 0) {
		cfl_agg_abort(a);
		return rc;
	}
	return cfl_agg_end(a, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfl_model *m = NULL, *want = expected(), *before = NULL, *got = NULL;
	struct cfl_agg *streamed = NULL, *mem = NULL;
	struct cfl_err e;
	int parsed, added = -1, rc;

	parsed = cfl_model_parse(data, size, &m, &e);
	check(parsed <= 0 && (parsed == 0) == (m != NULL));
	if (parsed == 0)
		check_round_trip(m);

	check(cfl_agg_new(want, &streamed, &e) == 0);
	check(cfl_agg_new(want, &mem, &e) == 0);
	check(cfl_agg_add_model(streamed, want, 1.0, &e) == 0);
	check(cfl_agg_add_model(mem, want, 1.0, &e) == 0);
	check(cfl_agg_result(streamed, &before, &e) == 0);
	if (parsed == 0)
		added = cfl_agg_add_model(mem, m, 3.0, &e);

	rc = stream(streamed, data, size);
	check((rc == 0) == (added == 0));
	check(cfl_agg_updates(streamed) == (rc == 0 ? 2u : 1u));
	check(cfl_agg_result(streamed, &got, &e) == 0);
	if (rc == 0) {
		struct cfl_model *mem_avg = NULL;

		check(cfl_agg_result(mem, &mem_avg, &e) == 0);
		check_same(got, mem_avg, 0);
		cfl_model_free(mem_avg);
	} else {
		check_same(got, before, 0);
	}

	cfl_model_free(got);
	cfl_model_free(before);
	cfl_agg_free(mem);
	cfl_agg_free(streamed);
	cfl_model_free(want);
	cfl_model_free(m);
	return 0;
}
