/* Safetensors bytes of a model, produced on demand (see mstream.h). Tensors are written in
 * name order, F32 little-endian, the header padded with spaces to a multiple of 8 as the
 * format allows. */
#include "mstream.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mstream writes float32 values as they are in memory: little-endian hosts only"
#endif

static const struct cfl_model *sort_model;

static int by_name(const void *a, const void *b)
{
	return strcmp(sort_model->t[*(const size_t *)a].name, sort_model->t[*(const size_t *)b].name);
}

static json_t *header_json(struct cfl__mstream *s)
{
	json_t *h = json_object();
	uint64_t off = 0;

	for (size_t i = 0; i < s->m->n; i++) {
		const struct cfl_tensor *t = &s->m->t[s->order[i]];
		json_t *shape = json_array();

		for (int d = 0; d < t->ndim; d++)
			json_array_append_new(shape, json_integer(t->shape[d]));
		s->starts[i] = off;
		json_object_set_new(h, t->name,
				    json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape,
					      "data_offsets", (json_int_t)off,
					      (json_int_t)(off + t->count * 4)));
		off += (uint64_t)t->count * 4;
	}
	s->total = off;
	return h;
}

int cfl__mstream_init(struct cfl__mstream *s, const struct cfl_model *m, struct cfl_err *e)
{
	json_t *h;
	char *text;
	size_t tl, padded;

	memset(s, 0, sizeof(*s));
	s->m = m;
	s->order = calloc(m->n ? m->n : 1, sizeof(*s->order));
	s->starts = calloc(m->n ? m->n : 1, sizeof(*s->starts));
	if (s->order == NULL || s->starts == NULL)
		goto nomem;
	for (size_t i = 0; i < m->n; i++)
		s->order[i] = i;
	sort_model = m; /* qsort has no context argument; the loop thread is the only caller */
	qsort(s->order, m->n, sizeof(*s->order), by_name);
	h = header_json(s);
	text = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(h);
	if (text == NULL)
		goto nomem;
	tl = strlen(text);
	padded = (tl + 7) / 8 * 8;
	s->head_len = 8 + padded;
	s->head = malloc(s->head_len);
	if (s->head == NULL) {
		free(text);
		goto nomem;
	}
	for (int i = 0; i < 8; i++)
		s->head[i] = (uint8_t)((uint64_t)padded >> (8 * i));
	memcpy(s->head + 8, text, tl);
	memset(s->head + 8 + tl, ' ', padded - tl);
	free(text);
	s->total += s->head_len;
	return 0;
nomem:
	cfl__mstream_release(s);
	return cfl_err_set(e, CFL_ENOMEM, "out of memory");
}

size_t cfl__mstream_read(const struct cfl__mstream *s, uint64_t off, uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len && off < s->total) {
		size_t n;

		if (off < s->head_len) {
			n = s->head_len - (size_t)off;
			n = n < len - done ? n : len - done;
			memcpy(buf + done, s->head + off, n);
		} else {
			uint64_t d = off - s->head_len;
			size_t i = 0;
			const struct cfl_tensor *t;
			uint64_t in;

			while (i + 1 < s->m->n && s->starts[i + 1] <= d)
				i++;
			t = &s->m->t[s->order[i]];
			in = d - s->starts[i];
			n = (size_t)((uint64_t)t->count * 4 - in);
			n = n < len - done ? n : len - done;
			memcpy(buf + done, (const uint8_t *)t->data + in, n);
		}
		done += n;
		off += n;
	}
	return done;
}

int cfl__mstream_save(const struct cfl__mstream *s, const char *path, struct cfl_err *e)
{
	char tmp[4200];
	static uint8_t buf[1 << 20];
	uint64_t off = 0;
	size_t n;
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return cfl_err_set(e, CFL_ETOOBIG, "path too long");
	f = fopen(tmp, "wb");
	if (f == NULL)
		return cfl_err_set(e, CFL_EIO, "cannot write '%s'", tmp);
	while ((n = cfl__mstream_read(s, off, buf, sizeof(buf))) > 0) {
		if (fwrite(buf, 1, n, f) != n)
			break;
		off += n;
	}
	if (fclose(f) != 0 || off != s->total || rename(tmp, path) != 0) {
		remove(tmp);
		return cfl_err_set(e, CFL_EIO, "cannot write '%s'", path);
	}
	return 0;
}

void cfl__mstream_release(struct cfl__mstream *s)
{
	free(s->head);
	free(s->order);
	free(s->starts);
	memset(s, 0, sizeof(*s));
}
