/* Models in memory, and their safetensors files (docs/models.md, "Model files").
 *
 * The header is JSON written with jansson in the layout of the reference implementation
 * (compact, "__metadata__" first, each tensor as dtype, shape, data_offsets, padded with
 * spaces to a multiple of 8 bytes), so the data that follows is 8-byte aligned and a file read
 * with mmap can be used in place. Values are little-endian whatever the host. */
#include "cfl/model.h"
#include "model/model_int.h"
#include "util/fs.h"
#include "util/reader.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define META_KEY "__metadata__"

/* Bytes of data encoded per write() when saving. */
#define SAVE_CHUNK ((size_t)64 * 1024)

int cfl_model_new(struct cfl_model **out)
{
	*out = calloc(1, sizeof(**out));
	return *out != NULL ? 0 : CFL_ENOMEM;
}

/* 0 if `name` may name a tensor: 1..255 bytes of UTF-8 (jansson is the judge, as it will
 * write it), not the metadata key. */
static int check_name(const char *name)
{
	size_t len;
	json_t *s;

	if (name == NULL)
		return CFL_EINVAL;
	len = strlen(name);
	if (len == 0 || len >= CFL_MODEL_NAME_MAX || strcmp(name, META_KEY) == 0)
		return CFL_EINVAL;
	s = json_stringn(name, len);
	if (s == NULL)
		return CFL_EINVAL;
	json_decref(s);
	return 0;
}

/* The element count of a shape, bounded like the parser's (docs/models.md). */
static int shape_count(const int64_t *shape, int ndim, size_t *count)
{
	size_t c = 1;
	int i, zero = 0;

	if (ndim < 0 || ndim > CFL_MODEL_MAX_NDIM || (ndim > 0 && shape == NULL))
		return CFL_EINVAL;
	for (i = 0; i < ndim; i++) {
		if (shape[i] < 0)
			return CFL_EINVAL;
		zero |= shape[i] == 0;
	}
	for (i = 0; !zero && i < ndim; i++) {
		if ((uint64_t)shape[i] > (SIZE_MAX / 8) / c)
			return CFL_ETOOBIG;
		c *= (size_t)shape[i];
	}
	*count = zero ? 0 : c;
	return 0;
}

int cfl__model_append(struct cfl_model *m, const char *name, const int64_t *shape, int ndim,
                      size_t count)
{
	struct cfl_tensor *t;
	float *data = NULL;

	if (m->n >= CFL_MODEL_MAX_TENSORS)
		return CFL_ETOOBIG;
	if (count > 0 && (data = calloc(count, sizeof(float))) == NULL)
		return CFL_ENOMEM;
	/* Grow by doubling; n + 1 <= 4096, so no overflow. */
	if ((m->n & (m->n - 1)) == 0) {
		t = realloc(m->t, (m->n > 0 ? 2 * m->n : 1) * sizeof(*t));
		if (t == NULL) {
			free(data);
			return CFL_ENOMEM;
		}
		m->t = t;
	}
	t = &m->t[m->n++];
	memset(t, 0, sizeof(*t));
	memcpy(t->name, name, strlen(name) + 1);
	t->ndim = ndim;
	if (ndim > 0)
		memcpy(t->shape, shape, (size_t)ndim * sizeof(*shape));
	t->count = count;
	t->data = data;
	return 0;
}

int cfl_model_add(struct cfl_model *m, const char *name, const int64_t *shape, int ndim,
                  const float *data)
{
	size_t count;
	int rc;

	if (m == NULL || check_name(name) != 0)
		return CFL_EINVAL;
	if ((rc = shape_count(shape, ndim, &count)) != 0)
		return rc;
	if (cfl_model_find(m, name) != NULL)
		return CFL_EEXIST;
	if ((rc = cfl__model_append(m, name, shape, ndim, count)) != 0)
		return rc;
	if (data != NULL && count > 0)
		memcpy(m->t[m->n - 1].data, data, count * sizeof(float));
	return 0;
}

struct cfl_tensor *cfl_model_find(const struct cfl_model *m, const char *name)
{
	size_t i;

	for (i = 0; m != NULL && name != NULL && i < m->n; i++) {
		if (strcmp(m->t[i].name, name) == 0)
			return &m->t[i];
	}
	return NULL;
}

size_t cfl_model_count(const struct cfl_model *m)
{
	size_t i, n = 0;

	for (i = 0; m != NULL && i < m->n; i++)
		n += m->t[i].count;
	return n;
}

int cfl_model_clone(const struct cfl_model *m, struct cfl_model **out)
{
	struct cfl_model *c = NULL;
	size_t i;
	int rc;

	if ((rc = cfl_model_new(&c)) != 0)
		return rc;
	for (i = 0; i < m->n && rc == 0; i++)
		rc = cfl_model_add(c, m->t[i].name, m->t[i].shape, m->t[i].ndim, m->t[i].data);
	if (rc != 0) {
		cfl_model_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void cfl_model_free(struct cfl_model *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->n; i++)
		free(m->t[i].data);
	free(m->t);
	free(m);
}

/* ---- reading ---- */

int cfl_model_parse(const uint8_t *buf, size_t len, struct cfl_model **out, struct cfl_err *e)
{
	struct cfl__st_header h;
	struct cfl_model *m = NULL;
	struct cfl_reader r;
	const uint8_t *p;
	size_t n, i;
	int rc;

	cfl__rd_init(&r, buf, len);
	if ((p = cfl__rd_get_bytes(&r, 8)) == NULL)
		return cfl_err_set(e, CFL_EPARSE, "%zu bytes, too short for a safetensors file",
		                   len);
	if ((rc = cfl__st_header_len(p, cfl__rd_left(&r), &n, e)) != 0)
		return rc;
	p = cfl__rd_get_bytes(&r, n);
	if ((rc = cfl__st_header_parse(p, n, cfl__rd_left(&r), &h, e)) != 0)
		return rc;
	if (h.data_len != cfl__rd_left(&r)) {
		rc = cfl_err_set(e, CFL_EPARSE, "%zu bytes of data after the last tensor",
		                 cfl__rd_left(&r) - (size_t)h.data_len);
		goto out;
	}
	if ((rc = cfl_model_new(&m)) != 0)
		goto nomem;
	for (i = 0; i < h.n; i++) {
		rc = cfl__model_append(m, h.ent[i].name, h.ent[i].shape, h.ent[i].ndim,
		                       h.ent[i].count);
		if (rc != 0)
			goto nomem;
	}
	/* The tensors tile the data in offset order: read them in that order. */
	for (i = 0; i < h.n; i++) {
		const struct cfl__st_entry *t = &h.ent[h.order[i]];

		p = cfl__rd_get_bytes(&r, (size_t)(t->end - t->begin));
		if (p == NULL) { /* cannot happen after the checks above; kept as the guard */
			rc = cfl_err_set(e, CFL_EPARSE, "tensor '%s' passes the end", t->name);
			goto out;
		}
		cfl__st_decode(t->dtype, p, t->count, m->t[h.order[i]].data);
	}
	*out = m;
	m = NULL;
	goto out;
nomem:
	rc = cfl_err_set(e, rc, "%s", cfl_strerror(rc));
out:
	cfl_model_free(m);
	cfl__st_header_release(&h);
	return rc;
}

int cfl_model_load(const char *path, size_t max_bytes, struct cfl_model **out, struct cfl_err *e)
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if ((rc = cfl__fs_read_file(path, max_bytes, &buf, &len, e)) != 0)
		return rc;
	if ((rc = cfl_model_parse((const uint8_t *)buf, len, out, e)) != 0)
		cfl_err_prefix(e, "cannot load '%s'", path);
	free(buf);
	return rc;
}

/* ---- writing ---- */

static int tensor_cmp(const void *a, const void *b)
{
	const struct cfl_tensor *x = *(const struct cfl_tensor *const *)a;
	const struct cfl_tensor *y = *(const struct cfl_tensor *const *)b;

	return strcmp(x->name, y->name);
}

static int pair_cmp(const void *a, const void *b)
{
	return strcmp((*(const char *const *const *)a)[0], (*(const char *const *const *)b)[0]);
}

/* Makes the "__metadata__" object, keys sorted, in *out. Returns 0 or an error. */
static int meta_json(const char *const *kv, size_t n, json_t **out, struct cfl_err *e)
{
	const char *const **pairs = NULL;
	json_t *o = NULL;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if (kv == NULL || kv[2 * i] == NULL || kv[2 * i + 1] == NULL ||
		    kv[2 * i][0] == '\0' || strcmp(kv[2 * i], META_KEY) == 0) {
			return cfl_err_set(e, CFL_EINVAL,
			                   "metadata pair %zu: empty key or no value", i);
		}
	}
	pairs = calloc(n, sizeof(*pairs));
	o = json_object();
	if (pairs == NULL || o == NULL) {
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
		goto fail;
	}
	for (i = 0; i < n; i++)
		pairs[i] = kv + 2 * i;
	qsort(pairs, n, sizeof(*pairs), pair_cmp);
	for (i = 0; i < n; i++) {
		const char *k = pairs[i][0], *v = pairs[i][1];

		if (i > 0 && strcmp(k, pairs[i - 1][0]) == 0) {
			rc = cfl_err_set(e, CFL_EINVAL, "metadata key '%s' given twice", k);
			goto fail;
		}
		if (json_object_set_new(o, k, json_string(v)) != 0) {
			rc = cfl_err_set(e, CFL_EINVAL, "metadata '%s' is not utf-8", k);
			goto fail;
		}
	}
	free(pairs);
	*out = o;
	return 0;
fail:
	free(pairs);
	json_decref(o);
	return rc;
}

static json_t *tensor_json(const struct cfl_tensor *t, uint64_t begin)
{
	json_t *o = json_object(), *shape = json_array(), *off = json_array();
	uint64_t end = begin + 4 * (uint64_t)t->count; /* the caller checked it fits */
	int i, bad = o == NULL || shape == NULL || off == NULL;

	for (i = 0; !bad && i < t->ndim; i++)
		bad = json_array_append_new(shape, json_integer(t->shape[i])) != 0;
	if (!bad)
		bad = json_array_append_new(off, json_integer((json_int_t)begin)) != 0 ||
		      json_array_append_new(off, json_integer((json_int_t)end)) != 0;
	if (!bad)
		bad = json_object_set_new(o, "dtype", json_string("F32")) != 0 ||
		      json_object_set(o, "shape", shape) != 0 ||
		      json_object_set(o, "data_offsets", off) != 0;
	json_decref(shape);
	json_decref(off);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* An encoding: the 8-byte length and the padded header, and the tensors in written order. */
struct enc {
	uint8_t *head; /* 8 + hlen bytes */
	size_t head_len;
	const struct cfl_tensor **sorted;
	size_t data_len;
};

static int enc_header(json_t *root, struct enc *x, struct cfl_err *e)
{
	char *s = json_dumps(root, JSON_COMPACT);
	size_t n, padded, i;

	if (s == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "cannot encode the header");
	n = strlen(s);
	padded = (n + 7) & ~(size_t)7;
	if (padded > CFL_MODEL_MAX_HEADER) {
		free(s);
		return cfl_err_set(e, CFL_ETOOBIG, "header of %zu bytes exceeds the limit of %u",
		                   padded, CFL_MODEL_MAX_HEADER);
	}
	x->head_len = 8 + padded;
	if ((x->head = malloc(x->head_len)) == NULL) {
		free(s);
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	}
	for (i = 0; i < 8; i++)
		x->head[i] = (uint8_t)((uint64_t)padded >> (8 * i));
	memcpy(x->head + 8, s, n);
	memset(x->head + 8 + n, ' ', padded - n);
	free(s);
	return 0;
}

static void enc_release(struct enc *x)
{
	free(x->head);
	free(x->sorted);
	memset(x, 0, sizeof(*x));
}

/* Lays out `m` sorted by name and encodes the header. */
static int enc_prepare(const struct cfl_model *m, const char *const *kv, size_t n_meta,
                       struct enc *x, struct cfl_err *e)
{
	json_t *root = json_object(), *v = NULL;
	uint64_t at = 0;
	size_t i;
	int rc = 0;

	memset(x, 0, sizeof(*x));
	x->sorted = calloc(m->n > 0 ? m->n : 1, sizeof(const struct cfl_tensor *));
	if (root == NULL || x->sorted == NULL) {
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < m->n; i++)
		x->sorted[i] = &m->t[i];
	qsort(x->sorted, m->n, sizeof(const struct cfl_tensor *), tensor_cmp);
	if (n_meta > 0) {
		if ((rc = meta_json(kv, n_meta, &v, e)) != 0)
			goto out;
		if (json_object_set_new(root, META_KEY, v) != 0) {
			rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
			goto out;
		}
	}
	for (i = 0; i < m->n && rc == 0; i++) {
		const struct cfl_tensor *t = x->sorted[i];

		if (t->count > (UINT64_MAX - at) / 4 || at + 4 * t->count > (uint64_t)INT64_MAX)
			rc = cfl_err_set(e, CFL_ETOOBIG, "model too large");
		else if ((v = tensor_json(t, at)) == NULL ||
		         json_object_set_new(root, t->name, v) != 0)
			rc = cfl_err_set(e, CFL_EINVAL, "cannot encode tensor '%s'", t->name);
		at += 4 * t->count;
	}
	if (rc == 0 && at > SIZE_MAX - 8 - CFL_MODEL_MAX_HEADER)
		rc = cfl_err_set(e, CFL_ETOOBIG, "model too large");
	x->data_len = (size_t)at;
	if (rc == 0)
		rc = enc_header(root, x, e);
out:
	json_decref(root);
	if (rc != 0)
		enc_release(x);
	return rc;
}

int cfl__model_header(const struct cfl_model *m, const char *const *meta_kv, size_t n_meta,
                      uint8_t **head, size_t *head_len, const struct cfl_tensor ***sorted,
                      struct cfl_err *e)
{
	struct enc x;
	int rc;

	if ((rc = enc_prepare(m, meta_kv, n_meta, &x, e)) != 0)
		return rc;
	*head = x.head;
	*head_len = x.head_len;
	if (sorted != NULL)
		*sorted = x.sorted;
	else
		free(x.sorted);
	return 0;
}

static void put_f32(uint8_t *q, const float *f, size_t n)
{
	size_t i, k;
	uint32_t u;

	for (i = 0; i < n; i++) {
		memcpy(&u, &f[i], sizeof(u));
		for (k = 0; k < 4; k++)
			q[4 * i + k] = (uint8_t)(u >> (8 * k));
	}
}

int cfl_model_serialize(const struct cfl_model *m, const char *const *meta_kv, size_t n_meta,
                        uint8_t **buf, size_t *len, struct cfl_err *e)
{
	struct cfl_writer w;
	struct enc x;
	uint8_t *out;
	size_t i;
	int rc;

	if ((rc = enc_prepare(m, meta_kv, n_meta, &x, e)) != 0)
		return rc;
	if ((out = malloc(x.head_len + x.data_len)) == NULL) {
		enc_release(&x);
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	}
	cfl__wr_init(&w, out, x.head_len + x.data_len);
	cfl__wr_put_bytes(&w, x.head, x.head_len);
	for (i = 0; i < m->n; i++) {
		uint8_t *q = cfl__wr_reserve(&w, 4 * x.sorted[i]->count);

		if (q != NULL)
			put_f32(q, x.sorted[i]->data, x.sorted[i]->count);
	}
	*buf = out;
	*len = w.off;
	enc_release(&x);
	return 0;
}

/* Writes the encoded model to `fd`, the data encoded SAVE_CHUNK bytes at a time. */
static int write_model(int fd, const struct enc *x, size_t n, uint8_t *chunk)
{
	size_t i, done, k;

	if (cfl__fs_write_all(fd, x->head, x->head_len) != 0)
		return -1;
	for (i = 0; i < n; i++) {
		const struct cfl_tensor *t = x->sorted[i];

		for (done = 0; done < t->count; done += k) {
			k = t->count - done < SAVE_CHUNK / 4 ? t->count - done : SAVE_CHUNK / 4;
			put_f32(chunk, t->data + done, k);
			if (cfl__fs_write_all(fd, chunk, 4 * k) != 0)
				return -1;
		}
	}
	return fsync(fd);
}

int cfl_model_save(const struct cfl_model *m, const char *path, const char *const *meta_kv,
                   size_t n_meta, struct cfl_err *e)
{
	size_t plen = strlen(path);
	uint8_t *chunk = NULL;
	char *tmp = NULL;
	struct enc x;
	int fd, rc;

	if ((rc = enc_prepare(m, meta_kv, n_meta, &x, e)) != 0) {
		cfl_err_prefix(e, "cannot save '%s'", path);
		return rc;
	}
	tmp = malloc(plen + sizeof(".XXXXXX"));
	chunk = malloc(SAVE_CHUNK);
	if (tmp == NULL || chunk == NULL) {
		rc = cfl_err_set(e, CFL_ENOMEM, "cannot save '%s': out of memory", path);
		goto out;
	}
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".XXXXXX", sizeof(".XXXXXX"));
	/* A temporary file renamed over the target: readers see the old model or the new one. */
	if ((fd = mkstemp(tmp)) < 0) {
		rc = cfl_err_set(e, CFL_EIO, "cannot save '%s': %s", path, strerror(errno));
		goto out;
	}
	if (write_model(fd, &x, m->n, chunk) != 0) {
		rc = cfl_err_set(e, CFL_EIO, "cannot save '%s': %s", path, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		rc = cfl_err_set(e, CFL_EIO, "cannot save '%s': %s", path, strerror(errno));
		unlink(tmp);
	}
out:
	enc_release(&x);
	free(chunk);
	free(tmp);
	return rc;
}
