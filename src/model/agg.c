/* Streaming FedAvg aggregation (SPEC §7–8): a weighted average whose memory does not grow
 * with the number of clients, fed each client's update as a safetensors byte stream.
 *
 * The accumulator is the running weighted mean rather than the weighted sum: after updates
 * x_1..x_k with weights w_1..w_k (W_k their sum), mean += (w_k / W_k) * (x_k - mean). It is the
 * same quantity as sum / W and as accurate (one float rounding per element per update, the
 * arithmetic in double), but it stays within the range of the updates, so large weights times
 * large values cannot overflow a float32 sum, and the average of identical models is that
 * model, bit for bit.
 *
 * Where an update goes before end(): it is decoded into a staging buffer the size of the
 * model, and folded into the mean only when end() has seen all of it. The alternative, adding
 * into the accumulator as bytes arrive and subtracting on failure, is cheaper by one model's
 * memory but does not restore it: in floating point (s + a) - a is not s in general, so a
 * client that breaks off its upload would still nudge the average. Staging keeps a failed
 * update out exactly, costs O(model) memory allocated once, and lets the stream and the
 * in-memory path share one rounding (the same function folds both in). Accumulators are
 * float32: mean + stage + the server's global model = 3x the model (float64 would make it 4x).
 *
 * The stream is a small state machine: LEN (8 bytes) -> HEADER (N bytes of JSON, checked
 * against the expected model as soon as it is complete) -> DATA (the elements, decoded as they
 * arrive; one split across chunks waits in `carry`) -> DONE. Any error moves to FAILED, which
 * is sticky until end() or abort(). */
#include "cfl/model.h"
#include "model/model_int.h"
#include "util/reader.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum agg_state { ST_IDLE, ST_LEN, ST_HEADER, ST_DATA, ST_DONE, ST_FAILED };

/* The header buffer grows with the bytes that actually arrive, from this size up to the
 * length announced, so eight bytes claiming a 16 MiB header cost nothing yet. */
#define HDR_MIN_CAP 4096

struct cfl_agg {
	/* The expected model: names and shapes; t[i].data is NULL, values live in mean/stage. */
	size_t n;
	struct cfl_tensor *t;
	size_t *off;                      /* element offset of t[i] in mean and stage */
	const struct cfl_tensor **byname; /* t sorted by name, for lookups */
	size_t total;                     /* elements in all */
	float *mean;                      /* the weighted mean of the updates so far */
	float *stage;
	size_t updates;
	double weight_sum;

	/* The update in progress. */
	int state; /* enum agg_state */
	double weight;
	struct cfl_err fail; /* the error that moved the stream to ST_FAILED */
	uint8_t len_buf[8];
	size_t len_got;
	uint8_t *hdr;
	size_t hdr_len, hdr_got, hdr_cap;
	struct cfl__st_header h;
	size_t *map;   /* h.order position -> expected tensor index */
	uint8_t *seen; /* per expected tensor, while matching the header */
	size_t cur;    /* position in h.order of the tensor being decoded */
	size_t elem;   /* its elements decoded so far */
	uint8_t carry[8];
	size_t n_carry;
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct cfl_tensor *const *)a)->name,
	              (*(const struct cfl_tensor *const *)b)->name);
}

static int key_cmp(const void *key, const void *elem)
{
	return strcmp(key, (*(const struct cfl_tensor *const *)elem)->name);
}

/* The index of the expected tensor `name`, or a->n. */
static size_t lookup(const struct cfl_agg *a, const char *name)
{
	const struct cfl_tensor **p =
	        bsearch(name, a->byname, a->n, sizeof(const struct cfl_tensor *), key_cmp);

	return p != NULL ? (size_t)(*p - a->t) : a->n;
}

int cfl_agg_new(const struct cfl_model *shape_of, struct cfl_agg **out, struct cfl_err *e)
{
	struct cfl_agg *a;
	size_t i, n = shape_of->n, cap = n > 0 ? n : 1;

	if (n > CFL_MODEL_MAX_TENSORS)
		return cfl_err_set(e, CFL_EINVAL, "%zu tensors, at most %d", n,
		                   CFL_MODEL_MAX_TENSORS);
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	a->n = n;
	a->t = calloc(cap, sizeof(*a->t));
	a->off = calloc(cap, sizeof(*a->off));
	a->byname = calloc(cap, sizeof(const struct cfl_tensor *));
	a->map = calloc(cap, sizeof(*a->map));
	a->seen = calloc(cap, 1);
	if (a->t == NULL || a->off == NULL || a->byname == NULL || a->map == NULL ||
	    a->seen == NULL)
		goto nomem;
	for (i = 0; i < n; i++) {
		a->t[i] = shape_of->t[i];
		a->t[i].data = NULL;
		a->off[i] = a->total;
		a->byname[i] = &a->t[i];
		/* The model holds these floats already, so the sum cannot overflow a size_t. */
		a->total += a->t[i].count;
	}
	qsort(a->byname, n, sizeof(const struct cfl_tensor *), name_cmp);
	for (i = 1; i < n; i++) {
		if (strcmp(a->byname[i - 1]->name, a->byname[i]->name) == 0) {
			cfl_err_set(e, CFL_EINVAL, "tensor '%s' appears twice", a->byname[i]->name);
			cfl_agg_free(a);
			return CFL_EINVAL;
		}
	}
	a->mean = calloc(a->total > 0 ? a->total : 1, sizeof(float));
	a->stage = calloc(a->total > 0 ? a->total : 1, sizeof(float));
	if (a->mean == NULL || a->stage == NULL)
		goto nomem;
	*out = a;
	return 0;
nomem:
	cfl_agg_free(a);
	return cfl_err_set(e, CFL_ENOMEM, "out of memory");
}

/* Back to no update in progress, freeing what the stream held. */
static void stream_reset(struct cfl_agg *a)
{
	free(a->hdr);
	a->hdr = NULL;
	a->hdr_len = a->hdr_got = a->hdr_cap = 0;
	cfl__st_header_release(&a->h);
	a->len_got = a->cur = a->elem = a->n_carry = 0;
	a->state = ST_IDLE;
}

void cfl_agg_free(struct cfl_agg *a)
{
	if (a == NULL)
		return;
	stream_reset(a);
	free(a->t);
	free(a->off);
	free(a->byname);
	free(a->map);
	free(a->seen);
	free(a->mean);
	free(a->stage);
	free(a);
}

static int check_weight(const struct cfl_agg *a, double w, struct cfl_err *e)
{
	if (!isfinite(w) || w <= 0)
		return cfl_err_set(e, CFL_EINVAL, "update weight %g must be finite and > 0", w);
	if (!isfinite(a->weight_sum + w))
		return cfl_err_set(e, CFL_EINVAL, "total weight overflows with %g", w);
	return 0;
}

int cfl_agg_begin(struct cfl_agg *a, double weight, struct cfl_err *e)
{
	int rc;

	if (a->state != ST_IDLE)
		return cfl_err_set(e, CFL_EINVAL, "an update is already in progress");
	if ((rc = check_weight(a, weight, e)) != 0)
		return rc;
	/* Staging is made on first use and may be released between rounds. */
	if (a->stage == NULL &&
	    (a->stage = calloc(a->total > 0 ? a->total : 1, sizeof(float))) == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory for the staging buffer");
	a->weight = weight;
	a->state = ST_LEN;
	return 0;
}

void cfl_agg_release_stage(struct cfl_agg *a)
{
	if (a->state == ST_IDLE) {
		free(a->stage);
		a->stage = NULL;
	}
}

/* 0 if the shape (ndim, shape) is that of `want`, else an error naming both. */
static int check_shape(const struct cfl_tensor *want, const char *name, int ndim,
                       const int64_t *shape, struct cfl_err *e)
{
	char w[160], g[160];

	if (ndim == want->ndim && memcmp(shape, want->shape, (size_t)ndim * sizeof(*shape)) == 0)
		return 0;
	cfl__shape_str(want->shape, want->ndim, w, sizeof(w));
	cfl__shape_str(shape, ndim, g, sizeof(g));
	return cfl_err_set(e, CFL_EINVAL, "tensor '%s' has shape %s, expected %s", name, g, w);
}

/* Maps every header entry, in data order, to its expected tensor: each one exactly once,
 * with its shape, and nothing else. */
static int match_header(struct cfl_agg *a, struct cfl_err *e)
{
	size_t i, k;
	int rc;

	memset(a->seen, 0, a->n > 0 ? a->n : 1);
	for (i = 0; i < a->h.n; i++) {
		const struct cfl__st_entry *g = &a->h.ent[a->h.order[i]];

		if ((k = lookup(a, g->name)) == a->n)
			return cfl_err_set(e, CFL_EINVAL, "unexpected tensor '%s'", g->name);
		if (a->seen[k]) /* JSON_REJECT_DUPLICATES makes this unreachable; cheap to keep */
			return cfl_err_set(e, CFL_EINVAL, "tensor '%s' appears twice", g->name);
		if ((rc = check_shape(&a->t[k], g->name, g->ndim, g->shape, e)) != 0)
			return rc;
		a->seen[k] = 1;
		a->map[i] = k;
	}
	for (k = 0; k < a->n; k++) {
		if (!a->seen[k])
			return cfl_err_set(e, CFL_EINVAL, "missing tensor '%s'", a->t[k].name);
	}
	return 0;
}

/* Steps past finished (and empty) tensors; DONE after the last. */
static void next_tensor(struct cfl_agg *a)
{
	while (a->cur < a->h.n && a->elem == a->h.ent[a->h.order[a->cur]].count) {
		a->cur++;
		a->elem = 0;
	}
	a->state = a->cur < a->h.n ? ST_DATA : ST_DONE;
}

static int feed_len(struct cfl_agg *a, struct cfl_reader *r, struct cfl_err *e)
{
	size_t k = 8 - a->len_got, n;
	int rc;

	if (k > cfl__rd_left(r))
		k = cfl__rd_left(r);
	memcpy(a->len_buf + a->len_got, cfl__rd_get_bytes(r, k), k);
	a->len_got += k;
	if (a->len_got < 8)
		return 0;
	if ((rc = cfl__st_header_len(a->len_buf, UINT64_MAX, &n, e)) != 0)
		return rc;
	a->hdr_len = n;
	a->state = ST_HEADER;
	return 0;
}

/* Makes room for `need` header bytes in all, growing by doubling up to hdr_len. */
static int hdr_reserve(struct cfl_agg *a, size_t need)
{
	size_t cap = a->hdr_cap > 0 ? a->hdr_cap : HDR_MIN_CAP;
	uint8_t *p;

	if (need <= a->hdr_cap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (cap > a->hdr_len)
		cap = a->hdr_len;
	if ((p = realloc(a->hdr, cap)) == NULL)
		return CFL_ENOMEM;
	a->hdr = p;
	a->hdr_cap = cap;
	return 0;
}

static int feed_header(struct cfl_agg *a, struct cfl_reader *r, struct cfl_err *e)
{
	size_t k = a->hdr_len - a->hdr_got;
	int rc;

	if (k > cfl__rd_left(r))
		k = cfl__rd_left(r);
	if (hdr_reserve(a, a->hdr_got + k) != 0)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	memcpy(a->hdr + a->hdr_got, cfl__rd_get_bytes(r, k), k);
	a->hdr_got += k;
	if (a->hdr_got < a->hdr_len)
		return 0;
	rc = cfl__st_header_parse(a->hdr, a->hdr_len, UINT64_MAX, &a->h, e);
	free(a->hdr);
	a->hdr = NULL;
	a->hdr_cap = 0;
	if (rc == 0)
		rc = match_header(a, e);
	if (rc == 0)
		next_tensor(a);
	return rc;
}

static int check_finite(const struct cfl_agg *a, const float *v, size_t n, struct cfl_err *e)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!isfinite(v[i]))
			return cfl_err_set(e, CFL_EINVAL, "tensor '%s' holds a non-finite value",
			                   a->t[a->map[a->cur]].name);
	}
	return 0;
}

/* Decodes what `r` holds of the current tensor: whole elements straight from the chunk, an
 * element split across chunks through `carry`. */
static int feed_data(struct cfl_agg *a, struct cfl_reader *r, struct cfl_err *e)
{
	const struct cfl__st_entry *g = &a->h.ent[a->h.order[a->cur]];
	float *dst = a->stage + a->off[a->map[a->cur]] + a->elem;
	size_t k, left = cfl__rd_left(r);
	int rc;

	if (a->n_carry > 0 || left < g->elsize) {
		k = g->elsize - a->n_carry < left ? g->elsize - a->n_carry : left;
		memcpy(a->carry + a->n_carry, cfl__rd_get_bytes(r, k), k);
		a->n_carry += k;
		if (a->n_carry < g->elsize)
			return 0;
		a->n_carry = 0;
		k = 1;
		cfl__st_decode(g->dtype, a->carry, 1, dst);
	} else {
		k = left / g->elsize < g->count - a->elem ? left / g->elsize : g->count - a->elem;
		cfl__st_decode(g->dtype, cfl__rd_get_bytes(r, k * g->elsize), k, dst);
	}
	if ((rc = check_finite(a, dst, k, e)) != 0)
		return rc;
	a->elem += k;
	next_tensor(a);
	return 0;
}

static int fail(struct cfl_agg *a, int rc, const struct cfl_err *err, struct cfl_err *e)
{
	a->fail = *err;
	a->fail.code = rc;
	a->state = ST_FAILED;
	return cfl_err_set(e, rc, "update rejected: %s", err->msg);
}

int cfl_agg_feed(struct cfl_agg *a, const uint8_t *data, size_t len, struct cfl_err *e)
{
	struct cfl_err err = {0, ""};
	struct cfl_reader r;
	int rc = 0;

	if (a->state == ST_IDLE)
		return cfl_err_set(e, CFL_EINVAL, "no update in progress");
	if (a->state == ST_FAILED)
		return cfl_err_set(e, a->fail.code, "update rejected: %s", a->fail.msg);
	cfl__rd_init(&r, data, len);
	while (rc == 0 && cfl__rd_left(&r) > 0) {
		switch (a->state) {
		case ST_LEN:
			rc = feed_len(a, &r, &err);
			break;
		case ST_HEADER:
			rc = feed_header(a, &r, &err);
			break;
		case ST_DATA:
			rc = feed_data(a, &r, &err);
			break;
		case ST_DONE:
			rc = cfl_err_set(&err, CFL_EPARSE, "data continues after the last tensor");
			break;
		default:
			rc = cfl_err_set(&err, CFL_EINVAL, "bad aggregator state %d", a->state);
			break;
		}
	}
	return rc != 0 ? fail(a, rc, &err, e) : 0;
}

/* Folds x in with weight w: mean += w / W * (x - mean), W the total weight with x, in double
 * and rounded once to float. The one place both paths add an update. */
static void accumulate(float *mean, const float *x, size_t n, double w, double total)
{
	double f = w / total;
	size_t i;

	for (i = 0; i < n; i++)
		mean[i] = (float)((double)mean[i] + f * ((double)x[i] - (double)mean[i]));
}

int cfl_agg_end(struct cfl_agg *a, struct cfl_err *e)
{
	int rc = 0;

	switch (a->state) {
	case ST_IDLE:
		return cfl_err_set(e, CFL_EINVAL, "no update in progress");
	case ST_DONE:
		a->weight_sum += a->weight;
		accumulate(a->mean, a->stage, a->total, a->weight, a->weight_sum);
		a->updates++;
		break;
	case ST_FAILED:
		rc = cfl_err_set(e, a->fail.code, "update discarded: %s", a->fail.msg);
		break;
	case ST_LEN:
	case ST_HEADER:
		rc = cfl_err_set(e, CFL_EPARSE, "update discarded: truncated in the header");
		break;
	case ST_DATA:
		rc = cfl_err_set(e, CFL_EPARSE,
		                 "update discarded: truncated in tensor '%s' (%zu of %zu values)",
		                 a->h.ent[a->h.order[a->cur]].name, a->elem,
		                 a->h.ent[a->h.order[a->cur]].count);
		break;
	default:
		rc = cfl_err_set(e, CFL_EINVAL, "bad aggregator state %d", a->state);
		break;
	}
	stream_reset(a);
	return rc;
}

void cfl_agg_abort(struct cfl_agg *a)
{
	if (a != NULL)
		stream_reset(a);
}

/* Checks `m` against the expected model, as match_header does for a stream. */
static int match_model(struct cfl_agg *a, const struct cfl_model *m, struct cfl_err *e)
{
	size_t i, k;
	int rc;

	memset(a->seen, 0, a->n > 0 ? a->n : 1);
	for (i = 0; i < m->n; i++) {
		const struct cfl_tensor *g = &m->t[i];
		size_t j;

		if ((k = lookup(a, g->name)) == a->n)
			return cfl_err_set(e, CFL_EINVAL, "unexpected tensor '%s'", g->name);
		if (a->seen[k])
			return cfl_err_set(e, CFL_EINVAL, "tensor '%s' appears twice", g->name);
		if ((rc = check_shape(&a->t[k], g->name, g->ndim, g->shape, e)) != 0)
			return rc;
		for (j = 0; j < g->count; j++) {
			if (!isfinite(g->data[j]))
				return cfl_err_set(e, CFL_EINVAL,
				                   "tensor '%s' holds a non-finite value", g->name);
		}
		a->seen[k] = 1;
	}
	for (k = 0; k < a->n; k++) {
		if (!a->seen[k])
			return cfl_err_set(e, CFL_EINVAL, "missing tensor '%s'", a->t[k].name);
	}
	return 0;
}

int cfl_agg_add_model(struct cfl_agg *a, const struct cfl_model *m, double weight,
                      struct cfl_err *e)
{
	size_t i;
	int rc;

	if ((rc = check_weight(a, weight, e)) != 0)
		return rc;
	/* The whole model is checked before anything is added: nothing to undo on error. */
	if ((rc = match_model(a, m, e)) != 0) {
		cfl_err_prefix(e, "update rejected");
		return rc;
	}
	a->weight_sum += weight;
	for (i = 0; i < m->n; i++) {
		size_t k = lookup(a, m->t[i].name);

		accumulate(a->mean + a->off[k], m->t[i].data, m->t[i].count, weight, a->weight_sum);
	}
	a->updates++;
	return 0;
}

int cfl_agg_result(const struct cfl_agg *a, struct cfl_model **out, struct cfl_err *e)
{
	struct cfl_model *m = NULL;
	size_t i;
	int rc;

	if (a->updates == 0)
		return cfl_err_set(e, CFL_EINVAL, "no update to average");
	if ((rc = cfl_model_new(&m)) != 0)
		return cfl_err_set(e, rc, "out of memory");
	for (i = 0; i < a->n; i++) {
		const struct cfl_tensor *t = &a->t[i];

		rc = cfl__model_append(m, t->name, t->shape, t->ndim, t->count);
		if (rc != 0) {
			cfl_model_free(m);
			return cfl_err_set(e, rc, "out of memory");
		}
		if (t->count > 0)
			memcpy(m->t[i].data, a->mean + a->off[i], t->count * sizeof(float));
	}
	*out = m;
	return 0;
}

size_t cfl_agg_updates(const struct cfl_agg *a)
{
	return a->updates;
}

double cfl_agg_total_weight(const struct cfl_agg *a)
{
	return a->weight_sum;
}

void cfl_agg_reset(struct cfl_agg *a)
{
	stream_reset(a);
	memset(a->mean, 0, (a->total > 0 ? a->total : 1) * sizeof(float));
	a->updates = 0;
	a->weight_sum = 0;
}
