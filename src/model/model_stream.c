/* The safetensors header codec: the header length, the JSON header with every check of
 * docs/models.md, and the element decoders. Shared by the whole-file parser (model.c) and the
 * streaming aggregator (agg.c), which is why nothing here needs the data buffer itself: a
 * header is checked completely before the first data byte is looked at. */
#include "model/model_int.h"

#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_KEY "__metadata__"

/* Largest element count of one tensor: its bytes in any dtype (at most 8 per element) and as
 * float32 in memory must fit a size_t. */
#define MAX_COUNT (SIZE_MAX / 8)

static const struct {
	const char *name;
	int dtype;
	size_t elsize;
} dtypes[] = {
        {"F32", CFL__DT_F32, 4},
        {"F64", CFL__DT_F64, 8},
        {"F16", CFL__DT_F16, 2},
        {"BF16", CFL__DT_BF16, 2},
};

int cfl__st_header_len(const uint8_t b[8], uint64_t avail, size_t *n, struct cfl_err *e)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | b[i];
	if (v > CFL_MODEL_MAX_HEADER)
		return cfl_err_set(e, CFL_ETOOBIG,
		                   "header length %" PRIu64 " exceeds the limit of %u", v,
		                   CFL_MODEL_MAX_HEADER);
	if (avail != UINT64_MAX && v > avail)
		return cfl_err_set(e, CFL_EPARSE,
		                   "header length %" PRIu64 " exceeds the %" PRIu64
		                   " bytes that follow",
		                   v, avail);
	if (v < 2)
		return cfl_err_set(e, CFL_EPARSE, "header length %" PRIu64 " is too short for json",
		                   v);
	*n = (size_t)v;
	return 0;
}

void cfl__shape_str(const int64_t *shape, int ndim, char *buf, size_t size)
{
	size_t off;
	int i;

	if (size == 0)
		return;
	snprintf(buf, size, "[");
	for (i = 0; i < ndim; i++) {
		off = strlen(buf); /* < size: snprintf always terminates */
		snprintf(buf + off, size - off, "%s%" PRId64, i > 0 ? "," : "", shape[i]);
	}
	off = strlen(buf);
	snprintf(buf + off, size - off, "]");
}

static int check_metadata(json_t *meta, struct cfl_err *e)
{
	const char *key;
	json_t *val;

	if (!json_is_object(meta))
		return cfl_err_set(e, CFL_EPARSE, "'" META_KEY "' must be an object");
	json_object_foreach (meta, key, val) {
		if (!json_is_string(val))
			return cfl_err_set(e, CFL_EPARSE,
			                   "'" META_KEY "' value of '%s' must be a string", key);
	}
	return 0;
}

static int parse_dtype(const char *name, json_t *v, struct cfl__st_entry *t, struct cfl_err *e)
{
	size_t i;

	if (!json_is_string(v))
		return cfl_err_set(e, CFL_EPARSE, "tensor '%s': dtype must be a string", name);
	for (i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++) {
		if (strcmp(json_string_value(v), dtypes[i].name) == 0) {
			t->dtype = dtypes[i].dtype;
			t->elsize = dtypes[i].elsize;
			return 0;
		}
	}
	return cfl_err_set(e, CFL_EUNSUPP,
	                   "tensor '%s': dtype '%.32s' is not supported (F32, F64, F16, BF16 are)",
	                   name, json_string_value(v));
}

static int parse_shape(const char *name, json_t *v, struct cfl__st_entry *t, struct cfl_err *e)
{
	char buf[128];
	size_t i, count = 1;
	int zero = 0;

	if (!json_is_array(v))
		return cfl_err_set(e, CFL_EPARSE, "tensor '%s': shape must be an array", name);
	if (json_array_size(v) > CFL_MODEL_MAX_NDIM)
		return cfl_err_set(e, CFL_ETOOBIG,
		                   "tensor '%s': shape has %zu dimensions, at most %d", name,
		                   json_array_size(v), CFL_MODEL_MAX_NDIM);
	t->ndim = (int)json_array_size(v);
	for (i = 0; i < json_array_size(v); i++) {
		json_t *d = json_array_get(v, i);

		if (!json_is_integer(d) || json_integer_value(d) < 0)
			return cfl_err_set(e, CFL_EPARSE,
			                   "tensor '%s': shape must hold integers >= 0", name);
		t->shape[i] = json_integer_value(d);
		zero |= t->shape[i] == 0;
	}
	/* A zero dimension makes the product 0 whatever the others are; otherwise the product
	 * is bounded before every multiplication, so it cannot overflow. */
	for (i = 0; !zero && i < (size_t)t->ndim; i++) {
		if ((uint64_t)t->shape[i] > MAX_COUNT / count) {
			cfl__shape_str(t->shape, t->ndim, buf, sizeof(buf));
			return cfl_err_set(e, CFL_ETOOBIG, "tensor '%s': shape %s is too large",
			                   name, buf);
		}
		count *= (size_t)t->shape[i];
	}
	t->count = zero ? 0 : count;
	return 0;
}

static int parse_offsets(const char *name, json_t *v, uint64_t max_data, struct cfl__st_entry *t,
                         struct cfl_err *e)
{
	json_t *b = json_array_get(v, 0), *x = json_array_get(v, 1);
	char buf[128];

	if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(b) ||
	    !json_is_integer(x) || json_integer_value(b) < 0 ||
	    json_integer_value(x) < json_integer_value(b))
		return cfl_err_set(e, CFL_EPARSE,
		                   "tensor '%s': data_offsets must be [begin, end] with "
		                   "0 <= begin <= end",
		                   name);
	t->begin = (uint64_t)json_integer_value(b);
	t->end = (uint64_t)json_integer_value(x);
	if (t->end > max_data)
		return cfl_err_set(e, CFL_EPARSE,
		                   "tensor '%s': data_offsets [%" PRIu64 ",%" PRIu64
		                   "] pass the end of the data (%" PRIu64 " bytes)",
		                   name, t->begin, t->end, max_data);
	/* count <= SIZE_MAX / 8, so count * elsize does not overflow. */
	if (t->end - t->begin != (uint64_t)t->count * t->elsize) {
		cfl__shape_str(t->shape, t->ndim, buf, sizeof(buf));
		return cfl_err_set(e, CFL_EPARSE,
		                   "tensor '%s': data_offsets [%" PRIu64 ",%" PRIu64
		                   "] hold %" PRIu64 " bytes, shape %s needs %" PRIu64,
		                   name, t->begin, t->end, t->end - t->begin, buf,
		                   (uint64_t)t->count * t->elsize);
	}
	return 0;
}

/* Fills `t` from the header entry `name`: {"dtype": .., "shape": [..], "data_offsets": [..]}. */
static int parse_entry(const char *name, json_t *v, uint64_t max_data, struct cfl__st_entry *t,
                       struct cfl_err *e)
{
	const char *key;
	json_t *val;
	size_t len = strlen(name);
	int rc;

	if (len == 0 || len >= CFL_MODEL_NAME_MAX)
		return cfl_err_set(e, CFL_EPARSE, "tensor name of %zu bytes (1 to %d allowed)", len,
		                   CFL_MODEL_NAME_MAX - 1);
	memcpy(t->name, name, len + 1);
	if (!json_is_object(v))
		return cfl_err_set(e, CFL_EPARSE, "tensor '%s' must be an object", name);
	json_object_foreach (v, key, val) {
		if (strcmp(key, "dtype") != 0 && strcmp(key, "shape") != 0 &&
		    strcmp(key, "data_offsets") != 0)
			return cfl_err_set(e, CFL_EPARSE, "tensor '%s': unknown key '%.64s'", name,
			                   key);
	}
	if (json_object_get(v, "dtype") == NULL || json_object_get(v, "shape") == NULL ||
	    json_object_get(v, "data_offsets") == NULL)
		return cfl_err_set(e, CFL_EPARSE, "tensor '%s' needs dtype, shape and data_offsets",
		                   name);
	rc = parse_dtype(name, json_object_get(v, "dtype"), t, e);
	if (rc == 0)
		rc = parse_shape(name, json_object_get(v, "shape"), t, e);
	if (rc == 0)
		rc = parse_offsets(name, json_object_get(v, "data_offsets"), max_data, t, e);
	return rc;
}

struct span {
	uint64_t begin, end;
	size_t idx;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sorts the entries by offset into h->order and checks they tile [0, data_len): no overlap,
 * no gap (the rule of the reference implementation, which leaves no byte unaccounted for). */
static int check_tiling(struct cfl__st_header *h, struct cfl_err *e)
{
	struct span *s = calloc(h->n > 0 ? h->n : 1, sizeof(*s));
	uint64_t at = 0;
	size_t i;
	int rc = 0;

	if (s == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	for (i = 0; i < h->n; i++)
		s[i] = (struct span){h->ent[i].begin, h->ent[i].end, i};
	qsort(s, h->n, sizeof(*s), span_cmp);
	for (i = 0; i < h->n && rc == 0; i++) {
		if (s[i].begin < at)
			rc = cfl_err_set(e, CFL_EPARSE, "tensors '%s' and '%s' overlap",
			                 h->ent[s[i - 1].idx].name, h->ent[s[i].idx].name);
		else if (s[i].begin > at)
			rc = cfl_err_set(e, CFL_EPARSE,
			                 "gap of %" PRIu64 " bytes before tensor '%s' at %" PRIu64,
			                 s[i].begin - at, h->ent[s[i].idx].name, s[i].begin);
		at = s[i].end;
		h->order[i] = s[i].idx;
	}
	h->data_len = at;
	free(s);
	return rc;
}

static int parse_root(json_t *root, uint64_t max_data, struct cfl__st_header *h, struct cfl_err *e)
{
	json_t *meta = json_object_get(root, META_KEY), *val;
	size_t n = json_object_size(root) - (meta != NULL);
	const char *key;
	int rc;

	if (meta != NULL && (rc = check_metadata(meta, e)) != 0)
		return rc;
	if (n > CFL_MODEL_MAX_TENSORS)
		return cfl_err_set(e, CFL_ETOOBIG, "%zu tensors, at most %d", n,
		                   CFL_MODEL_MAX_TENSORS);
	h->ent = calloc(n > 0 ? n : 1, sizeof(*h->ent));
	h->order = calloc(n > 0 ? n : 1, sizeof(*h->order));
	if (h->ent == NULL || h->order == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	json_object_foreach (root, key, val) {
		if (strcmp(key, META_KEY) == 0)
			continue;
		rc = parse_entry(key, val, max_data, &h->ent[h->n], e);
		if (rc != 0)
			return rc;
		h->n++;
	}
	return check_tiling(h, e);
}

int cfl__st_header_parse(const uint8_t *json, size_t n, uint64_t max_data, struct cfl__st_header *h,
                         struct cfl_err *e)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	memset(h, 0, sizeof(*h));
	/* Duplicate keys would make "which tensor is 'w'" depend on the reader. */
	root = json_loadb((const char *)json, n, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return cfl_err_set(e, CFL_EPARSE, "header is not valid json: %s (at byte %d)",
		                   jerr.text, jerr.position);
	if (!json_is_object(root))
		rc = cfl_err_set(e, CFL_EPARSE, "header must be a json object");
	else
		rc = parse_root(root, max_data, h, e);
	json_decref(root);
	if (rc != 0)
		cfl__st_header_release(h);
	return rc;
}

void cfl__st_header_release(struct cfl__st_header *h)
{
	free(h->ent);
	free(h->order);
	memset(h, 0, sizeof(*h));
}

static float f32_of(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* IEEE half to single: exact (every half is a float). */
static float f16_of(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16, ex = (h >> 10) & 0x1fu, man = h & 0x3ffu;
	float f;

	if (ex == 0x1f)
		return f32_of(sign | 0x7f800000u | man << 13);
	if (ex != 0)
		return f32_of(sign | (ex + 112) << 23 | man << 13);
	f = (float)man * 0x1p-24f; /* zero or subnormal: man * 2^-24 */
	return sign != 0 ? -f : f;
}

/* Double to single, rounding to nearest. A finite double out of the float range is undefined
 * behaviour to convert in C, so those saturate the way IEEE rounding would. */
static float f64_of(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	if (d >= 0x1.ffffffp127)
		return INFINITY;
	if (d <= -0x1.ffffffp127)
		return -INFINITY;
	if (d > FLT_MAX)
		return FLT_MAX;
	if (d < -FLT_MAX)
		return -FLT_MAX;
	return (float)d;
}

static uint64_t le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = (v << 8) | p[n];
	return v;
}

void cfl__st_decode(int dtype, const uint8_t *p, size_t n, float *out)
{
	size_t i;

	switch (dtype) {
	case CFL__DT_F32:
		for (i = 0; i < n; i++)
			out[i] = f32_of((uint32_t)le(p + 4 * i, 4));
		break;
	case CFL__DT_F64:
		for (i = 0; i < n; i++)
			out[i] = f64_of(le(p + 8 * i, 8));
		break;
	case CFL__DT_F16:
		for (i = 0; i < n; i++)
			out[i] = f16_of((uint16_t)le(p + 2 * i, 2));
		break;
	case CFL__DT_BF16:
		for (i = 0; i < n; i++)
			out[i] = f32_of((uint32_t)le(p + 2 * i, 2) << 16);
		break;
	default:
		memset(out, 0, n * sizeof(*out));
		break;
	}
}
