/* Models (named float32 tensors), their safetensors files, and streaming FedAvg aggregation.
 *
 * A model is a list of tensors in memory, always float32. On disk and on the wire it is a
 * safetensors file (the format of Hugging Face's `safetensors`): an 8-byte little-endian header
 * length N, N bytes of JSON naming each tensor's dtype, shape and byte range, then the data.
 * cfl writes F32 only and reads F32, F64, F16 and BF16 (converted to float32). docs/models.md
 * has the details and every rule a file is checked against.
 *
 * Nothing here is shared between threads: a model or an aggregator belongs to one thread at a
 * time; distinct objects may be used from different threads. Nothing blocks, except the file
 * functions (cfl_model_save, cfl_model_load) on the disk. */
#ifndef CFL_MODEL_H
#define CFL_MODEL_H

#include "cfl/err.h"

#include <stddef.h>
#include <stdint.h>

#define CFL_MODEL_MAX_TENSORS 4096
#define CFL_MODEL_MAX_HEADER  (16u << 20) /* JSON header bytes */
#define CFL_MODEL_MAX_NDIM    8
#define CFL_MODEL_NAME_MAX    256 /* including the NUL: names are 1..255 bytes of UTF-8 */

/* One tensor. `count` is the product of the shape (1 for ndim 0, a scalar); `data` holds
 * `count` floats, owned by the model (NULL when count is 0). */
struct cfl_tensor {
	char name[CFL_MODEL_NAME_MAX];
	int ndim;
	int64_t shape[CFL_MODEL_MAX_NDIM];
	size_t count;
	float *data;
};

/* A model: `n` tensors in file order (the order of the header for a file read; the order of
 * cfl_model_add otherwise). Callers may change tensor values in place, not names or shapes. */
struct cfl_model {
	size_t n;
	struct cfl_tensor *t; /* in file order */
};

/* Creates an empty model. Returns 0 or CFL_ENOMEM. The caller frees *out with
 * cfl_model_free(). */
int cfl_model_new(struct cfl_model **out);

/* Adds a tensor (copies data; NULL data = zeros). Names unique.
 * `name` is 1..255 bytes of UTF-8 and not "__metadata__"; `shape` holds `ndim` (0..8)
 * dimensions >= 0 (`shape` may be NULL when ndim is 0). Returns 0, CFL_EINVAL (bad name or
 * shape), CFL_EEXIST (name taken), CFL_ETOOBIG (more than CFL_MODEL_MAX_TENSORS tensors, or a
 * shape too large to address) or CFL_ENOMEM; on error the model is unchanged. */
int cfl_model_add(struct cfl_model *m, const char *name, const int64_t *shape, int ndim,
                  const float *data);

/* Returns the tensor called `name` (owned by the model), or NULL. Linear in the tensor count. */
struct cfl_tensor *cfl_model_find(const struct cfl_model *m, const char *name);

/* Returns the total number of floats in all tensors. */
size_t cfl_model_count(const struct cfl_model *m); /* total floats */

/* Deep copy. Returns 0 or CFL_ENOMEM; the caller frees *out. */
int cfl_model_clone(const struct cfl_model *m, struct cfl_model **out);

/* Frees the model and its tensors; NULL is a no-op. */
void cfl_model_free(struct cfl_model *m);

/* Writes `m` as a safetensors file (F32). Tensors are written sorted by name (bytewise) and
 * the metadata sorted by key, so equal models give equal bytes. `meta_kv` holds `n_meta` pairs
 * as 2 * n_meta strings: key, value, key, value... (e.g. {"format", "cfl", "round", "3"}); it
 * may be NULL when n_meta is 0. Keys must be distinct and not empty, all strings UTF-8.
 * The header is padded with spaces to a multiple of 8 bytes, so the data is 8-byte aligned.
 *
 * cfl_model_save writes a temporary file next to `path` (mode 0600) and renames it over
 * `path`, so a reader never sees half a model. It streams the data: no copy of the model is
 * made. cfl_model_serialize returns the file's bytes in a new buffer (*buf, free()) of *len
 * bytes. Both return 0, CFL_EINVAL (bad metadata), CFL_ETOOBIG (header over
 * CFL_MODEL_MAX_HEADER), CFL_ENOMEM or CFL_EIO, with a message in `e`. */
int cfl_model_save(const struct cfl_model *m, const char *path, const char *const *meta_kv,
                   size_t n_meta, struct cfl_err *e);
int cfl_model_serialize(const struct cfl_model *m, const char *const *meta_kv, size_t n_meta,
                        uint8_t **buf, size_t *len, struct cfl_err *e);

/* Reads a safetensors file of at most `max_bytes` bytes (CFL_ETOOBIG if larger) / parses one
 * from memory (`buf` is only read and may be freed afterwards). Every tensor must be F32, F64,
 * F16 or BF16 (the last three are converted to float32); the metadata is checked (an object
 * of strings) and dropped. Returns 0 and a new model in *out (the caller frees it), or
 * CFL_EPARSE (malformed file; the message in `e` says where), CFL_ETOOBIG (header over
 * CFL_MODEL_MAX_HEADER, or more than CFL_MODEL_MAX_TENSORS tensors), CFL_EUNSUPP (another
 * dtype), CFL_ENOENT/CFL_EIO (cannot read the file) or CFL_ENOMEM. */
int cfl_model_load(const char *path, size_t max_bytes, struct cfl_model **out, struct cfl_err *e);
int cfl_model_parse(const uint8_t *buf, size_t len, struct cfl_model **out, struct cfl_err *e);

/* Streaming aggregation for FedAvg: memory does not grow with the number of clients.
 *
 * The aggregator holds, for the model given at creation, a float32 running weighted mean and
 * one float32 staging copy for the update in progress: 2x the model, allocated once; with the
 * global model the server keeps, 3x. An update is a client's weights, or the difference of
 * its weights from the global model (NVFlare's DIFF): both are added the same way, as
 * weight * tensor, and the result is then the average weights or the average difference,
 * which the caller adds to its global model. Updates whose values are not finite (NaN, inf)
 * are rejected, so one client cannot poison the average. The average of identical updates is
 * that update, bit for bit.
 *
 * One update at a time: begin, feed..., end (or abort). A server receiving several clients at
 * once queues or spools the later ones. Not thread-safe: one thread per aggregator. */
struct cfl_agg;

/* `shape_of` gives the expected tensors (names, shapes; its values are not used and it is not
 * kept). Returns 0 and a new aggregator in *out (cfl_agg_free), or CFL_ENOMEM / CFL_EINVAL. */
int cfl_agg_new(const struct cfl_model *shape_of, struct cfl_agg **out, struct cfl_err *e);

/* Starts one client's update with `weight` (its training steps; finite and > 0). Returns 0, or
 * CFL_EINVAL if the weight is bad (or would make the total infinite) or an update is already
 * in progress (end or abort it). */
int cfl_agg_begin(struct cfl_agg *a, double weight, struct cfl_err *e);

/* Feeds the next `len` bytes of the update, a safetensors file, in chunks of any size (a
 * number may be split across chunks). The header is checked as soon as it is complete: every
 * expected tensor exactly once with its shape, nothing else. Returns 0, or an error
 * (CFL_EPARSE, CFL_ETOOBIG, CFL_EUNSUPP, CFL_EINVAL for a mismatch with the expected model,
 * CFL_ENOMEM) after which the update is failed: further feeds return the same error, and
 * end() discards it (abort() drops it silently). The chunk is only read. */
int cfl_agg_feed(struct cfl_agg *a, const uint8_t *data, size_t len, struct cfl_err *e);

/* Finishes the update: if it was complete and valid, adds weight * update to the average and
 * returns 0. Otherwise discards it, leaving the average exactly as it was, and returns the
 * error (CFL_EPARSE for a truncated stream). Either way no update is in progress afterwards. */
int cfl_agg_end(struct cfl_agg *a, struct cfl_err *e);

/* Drops the update in progress, if any; the average is unchanged. */
void cfl_agg_abort(struct cfl_agg *a);

/* Adds an update already in memory; `m` must have exactly the expected tensors and shapes (in
 * any order), all values finite. May be called while a streamed update is in progress (it does
 * not touch it). Returns 0, or CFL_EINVAL (bad weight, or a mismatch, with a message) and
 * leaves the average unchanged. */
int cfl_agg_add_model(struct cfl_agg *a, const struct cfl_model *m, double weight,
                      struct cfl_err *e);

/* The weighted average (sum / total weight) into a new model, with the tensors in the order of
 * `shape_of`. Returns 0 (the caller frees *out), CFL_EINVAL if no update was added, or
 * CFL_ENOMEM. */
int cfl_agg_result(const struct cfl_agg *a, struct cfl_model **out, struct cfl_err *e);

/* Frees the staging buffer (one model's worth) while no update is in progress (else does
 * nothing); the next cfl_agg_begin allocates it again. The server calls it before
 * cfl_agg_result so that the average, the new model and the old global are all it holds. */
void cfl_agg_release_stage(struct cfl_agg *a);

/* Updates added, and the sum of their weights, since creation or the last reset. */
size_t cfl_agg_updates(const struct cfl_agg *a);
double cfl_agg_total_weight(const struct cfl_agg *a);

/* Clears the average for the next round (and drops an update in progress); keeps the memory. */
void cfl_agg_reset(struct cfl_agg *a);

/* Frees the aggregator; NULL is a no-op. */
void cfl_agg_free(struct cfl_agg *a);

/* A model read as safetensors bytes on the fly, at any offset, without building the file in
 * memory (the server's global model goes to every site and to disk this way, so aggregation
 * holds one copy of the model, not two). A small value type: embed it, _init/_release. */
struct cfl_model_reader {
	const struct cfl_model *m;
	uint8_t *head; /* 8-byte length + JSON header, padded to 8 */
	size_t head_len;
	const struct cfl_tensor **sorted; /* tensors in file order */
	uint64_t *starts;                 /* byte offset of each one's data after the header */
	uint64_t total;                   /* file size */
};

/* The model must not change while the stream is in use. */
int cfl_model_reader_init(struct cfl_model_reader *s, const struct cfl_model *m, struct cfl_err *e);
/* Copies up to len bytes of the file from offset `off`; returns the count (0 at the end). */
size_t cfl_model_reader_read(const struct cfl_model_reader *s, uint64_t off, uint8_t *buf,
                             size_t len);
/* Points *p at the file's bytes from offset `off` where they lie in memory (the header, or a
 * tensor's data): returns how many are contiguous there, at most len (0 at the end). Valid
 * while the reader and the model are. */
size_t cfl_model_reader_lend(const struct cfl_model_reader *s, uint64_t off, size_t len,
                             const uint8_t **p);
/* Writes the whole file to `path` (through a temp file and a rename). */
int cfl_model_reader_save(const struct cfl_model_reader *s, const char *path, struct cfl_err *e);
void cfl_model_reader_release(struct cfl_model_reader *s);

#endif
