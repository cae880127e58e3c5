/* Safetensors bytes of a model, produced on demand (see mstream.h): the header comes from the
 * model module (cfl__model_header), so these bytes equal cfl_model_serialize's; the data is
 * read straight out of the tensors. */
#include "cfl/model.h"

#include "model/model_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mstream writes float32 values as they are in memory: little-endian hosts only"
#endif

int cfl_model_reader_init(struct cfl_model_reader *s, const struct cfl_model *m, struct cfl_err *e)
{
	uint64_t off = 0;
	int rc;

	memset(s, 0, sizeof(*s));
	s->m = m;
	rc = cfl__model_header(m, NULL, 0, &s->head, &s->head_len, &s->sorted, e);
	if (rc != 0)
		return rc;
	s->starts = calloc(m->n ? m->n : 1, sizeof(*s->starts));
	if (s->starts == NULL) {
		cfl_model_reader_release(s);
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < m->n; i++) {
		s->starts[i] = off;
		off += (uint64_t)s->sorted[i]->count * 4;
	}
	s->total = s->head_len + off;
	return 0;
}

/* The tensor (in file order) whose data holds data offset `d`: the last one starting at or
 * before it. */
static size_t tensor_at(const struct cfl_model_reader *s, uint64_t d)
{
	size_t lo = 0, hi = s->m->n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->starts[mid] <= d)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

size_t cfl_model_reader_lend(const struct cfl_model_reader *s, uint64_t off, size_t len,
                             const uint8_t **p)
{
	const struct cfl_tensor *t;
	uint64_t d, in, n;
	size_t i;

	*p = NULL;
	if (off >= s->total || len == 0)
		return 0;
	if (off < s->head_len) {
		n = s->head_len - off;
		*p = s->head + off;
	} else {
		d = off - s->head_len;
		i = tensor_at(s, d);
		t = s->sorted[i];
		in = d - s->starts[i];
		n = (uint64_t)t->count * 4 - in;
		*p = (const uint8_t *)t->data + in;
	}
	return n < len ? (size_t)n : len;
}

size_t cfl_model_reader_read(const struct cfl_model_reader *s, uint64_t off, uint8_t *buf,
                             size_t len)
{
	const uint8_t *p;
	size_t done = 0, n;

	while (done < len && (n = cfl_model_reader_lend(s, off, len - done, &p)) > 0) {
		memcpy(buf + done, p, n);
		done += n;
		off += n;
	}
	return done;
}

int cfl_model_reader_save(const struct cfl_model_reader *s, const char *path, struct cfl_err *e)
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
	while ((n = cfl_model_reader_read(s, off, buf, sizeof(buf))) > 0) {
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

void cfl_model_reader_release(struct cfl_model_reader *s)
{
	free(s->head);
	free(s->sorted);
	free(s->starts);
	memset(s, 0, sizeof(*s));
}
