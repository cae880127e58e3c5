/* Internal to the model module: the safetensors header codec shared by the whole-file parser
 * (model.c) and the streaming aggregator (agg.c), both in model_stream.c. */
#ifndef CFL_FL_MODEL_INT_H
#define CFL_FL_MODEL_INT_H

#include "cfl/err.h"
#include "cfl/model.h"

#include <stddef.h>
#include <stdint.h>

/* The dtypes read; cfl writes F32 only. */
enum cfl__dtype { CFL__DT_F32, CFL__DT_F64, CFL__DT_F16, CFL__DT_BF16 };

/* One tensor as the header describes it. */
struct cfl__st_entry {
	char name[CFL_MODEL_NAME_MAX];
	int dtype;     /* enum cfl__dtype */
	size_t elsize; /* bytes per element: 2, 4 or 8 */
	int ndim;
	int64_t shape[CFL_MODEL_MAX_NDIM];
	size_t count;   /* elements */
	uint64_t begin; /* byte range in the data buffer, end - begin == count * elsize */
	uint64_t end;
};

/* A parsed and checked header: the entries in header order, `order` the same entries by data
 * offset, which tile [0, data_len) exactly. */
struct cfl__st_header {
	size_t n;
	struct cfl__st_entry *ent;
	size_t *order;
	uint64_t data_len;
};

/* Reads the 8-byte little-endian header length from `b` and checks it against
 * CFL_MODEL_MAX_HEADER (CFL_ETOOBIG) and, when `avail` is not UINT64_MAX, against the `avail`
 * bytes that follow (CFL_EPARSE). Sets *n; returns 0 or the error. */
int cfl__st_header_len(const uint8_t b[8], uint64_t avail, size_t *n, struct cfl_err *e);

/* Parses the `n` bytes of JSON at `json` into `h` and checks every rule of docs/models.md. The
 * tensors must tile a buffer of at most `max_data` bytes (UINT64_MAX when unknown, as in a
 * stream); the caller compares h->data_len with the bytes it has. Returns 0 (release `h` with
 * cfl__st_header_release) or an error with a message; on error `h` holds nothing. */
int cfl__st_header_parse(const uint8_t *json, size_t n, uint64_t max_data, struct cfl__st_header *h,
                         struct cfl_err *e);
void cfl__st_header_release(struct cfl__st_header *h);

/* Decodes `n` little-endian elements of `dtype` from `p` (n * elsize bytes) into `out`. */
void cfl__st_decode(int dtype, const uint8_t *p, size_t n, float *out);

/* Formats a shape as "[2,3]" into buf (always NUL-terminated, cut if too small). */
void cfl__shape_str(const int64_t *shape, int ndim, char *buf, size_t size);

/* Appends a tensor without the uniqueness check (the parser: JSON keys are already unique);
 * the data is left zeroed. Returns 0 or CFL_ENOMEM / CFL_ETOOBIG. */
int cfl__model_append(struct cfl_model *m, const char *name, const int64_t *shape, int ndim,
                      size_t count);

/* The start of what cfl_model_serialize writes: the 8-byte length and the padded header
 * (*head, free()), and, if `sorted` is not NULL, the tensors in the order their data follows
 * (*sorted, m->n pointers into `m`, free()); each tensor's data is then `count` float32
 * little-endian. For writers that stream the data themselves, so that every path gives the
 * same bytes. Returns 0 or an error as cfl_model_serialize. */
int cfl__model_header(const struct cfl_model *m, const char *const *meta_kv, size_t n_meta,
                      uint8_t **head, size_t *head_len, const struct cfl_tensor ***sorted,
                      struct cfl_err *e);

#endif
