/* A bounds-checked cursor over a byte buffer, and its matching writer.
 *
 * Every wire and file decoder goes through `struct cfl_reader` instead of doing pointer
 * arithmetic of its own (the s2n "stuffer" habit). A read that would pass the end does not
 * happen: it returns 0 (or NULL), leaves the cursor where it was and sets a sticky error, so a
 * parser may read a whole record and check `r->err` once at the end. The first error wins;
 * every later call is a no-op. All integers are big-endian (network order).
 *
 * The writer mirrors it: a put that does not fit writes nothing and sets a sticky
 * CFL_ETOOBIG. A writer set up with cfl__wr_init_count() writes nothing and only counts, so
 * one encoding function can both measure and produce its output.
 *
 * Both are plain values on the caller's stack; they allocate nothing, own nothing, and are as
 * thread-safe as the buffer they point to. Everything here is static inline. */
#ifndef CFL_UTIL_READER_H
#define CFL_UTIL_READER_H

#include "cfl/err.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct cfl_reader {
	const uint8_t *p; /* the buffer (borrowed) */
	size_t len;       /* its size */
	size_t off;       /* next byte to read, always <= len */
	int err;          /* 0, or the first error (CFL_EPARSE on reading past the end) */
};

struct cfl_writer {
	uint8_t *p; /* the buffer (borrowed), NULL in counting mode */
	size_t cap; /* its size */
	size_t off; /* bytes written (or counted) so far */
	int err;    /* 0, or the first error (CFL_ETOOBIG when a put does not fit) */
};

static inline void cfl__rd_init(struct cfl_reader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = p != NULL ? len : 0;
	r->off = 0;
	r->err = 0;
}

/* Bytes left to read (0 once an error is set). */
static inline size_t cfl__rd_left(const struct cfl_reader *r)
{
	return r->err != 0 ? 0 : r->len - r->off;
}

/* Records `code` (a negative CFL_E*) unless an error is already set; parsers use it for
 * semantic failures so they share the sticky error with the bounds checks. */
static inline void cfl__rd_fail(struct cfl_reader *r, int code)
{
	if (r->err == 0)
		r->err = code;
}

/* Returns a pointer to the next `n` bytes and advances past them, or NULL (and sets the error)
 * if fewer than `n` are left. The pointer aliases the buffer: it lives as long as the buffer.
 * For n == 0 it returns a valid, non-dereferenceable pointer. */
static inline const uint8_t *cfl__rd_get_bytes(struct cfl_reader *r, size_t n)
{
	static const uint8_t empty[1];
	const uint8_t *q;

	if (r->err != 0)
		return NULL;
	if (n > r->len - r->off) {
		r->err = CFL_EPARSE;
		return NULL;
	}
	if (n == 0)
		return r->p != NULL ? r->p + r->off : empty;
	q = r->p + r->off;
	r->off += n;
	return q;
}

/* Reads `n` bytes as a big-endian unsigned integer (n <= 8); 0 on error. */
static inline uint64_t cfl__rd_get_be(struct cfl_reader *r, size_t n)
{
	const uint8_t *q = cfl__rd_get_bytes(r, n);
	uint64_t v = 0;
	size_t i;

	if (q == NULL)
		return 0;
	for (i = 0; i < n; i++)
		v = (v << 8) | q[i];
	return v;
}

static inline uint8_t cfl__rd_get_u8(struct cfl_reader *r)
{
	return (uint8_t)cfl__rd_get_be(r, 1);
}

static inline uint16_t cfl__rd_get_u16(struct cfl_reader *r)
{
	return (uint16_t)cfl__rd_get_be(r, 2);
}

static inline uint32_t cfl__rd_get_u32(struct cfl_reader *r)
{
	return (uint32_t)cfl__rd_get_be(r, 4);
}

static inline uint64_t cfl__rd_get_u64(struct cfl_reader *r)
{
	return cfl__rd_get_be(r, 8);
}

/* Skips `n` bytes; returns 0 or the (sticky) error. */
static inline int cfl__rd_skip(struct cfl_reader *r, size_t n)
{
	(void)cfl__rd_get_bytes(r, n);
	return r->err;
}

static inline void cfl__wr_init(struct cfl_writer *w, void *p, size_t cap)
{
	w->p = p;
	w->cap = p != NULL ? cap : 0;
	w->off = 0;
	w->err = 0;
}

/* A writer that only counts: every put succeeds and advances `off` (until SIZE_MAX). */
static inline void cfl__wr_init_count(struct cfl_writer *w)
{
	w->p = NULL;
	w->cap = SIZE_MAX;
	w->off = 0;
	w->err = 0;
}

/* Reserves the next `n` bytes and returns where to write them, or NULL if they do not fit
 * (error set) or the writer only counts (no error). */
static inline uint8_t *cfl__wr_reserve(struct cfl_writer *w, size_t n)
{
	uint8_t *q;

	if (w->err != 0)
		return NULL;
	if (n > w->cap - w->off) {
		w->err = CFL_ETOOBIG;
		return NULL;
	}
	q = w->p != NULL ? w->p + w->off : NULL;
	w->off += n;
	return q;
}

static inline void cfl__wr_put_bytes(struct cfl_writer *w, const void *src, size_t n)
{
	uint8_t *q = cfl__wr_reserve(w, n);

	if (q != NULL && n > 0)
		memcpy(q, src, n);
}

/* Writes the low `n` bytes of `v` big-endian (n <= 8). */
static inline void cfl__wr_put_be(struct cfl_writer *w, uint64_t v, size_t n)
{
	uint8_t *q = cfl__wr_reserve(w, n);
	size_t i;

	if (q == NULL)
		return;
	for (i = n; i > 0; i--) {
		q[i - 1] = (uint8_t)v;
		v >>= 8;
	}
}

static inline void cfl__wr_put_u8(struct cfl_writer *w, uint8_t v)
{
	cfl__wr_put_be(w, v, 1);
}

static inline void cfl__wr_put_u16(struct cfl_writer *w, uint16_t v)
{
	cfl__wr_put_be(w, v, 2);
}

static inline void cfl__wr_put_u32(struct cfl_writer *w, uint32_t v)
{
	cfl__wr_put_be(w, v, 4);
}

static inline void cfl__wr_put_u64(struct cfl_writer *w, uint64_t v)
{
	cfl__wr_put_be(w, v, 8);
}

#endif
