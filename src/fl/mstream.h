/* Internal: a model read as safetensors bytes on the fly, at any offset, without building the
 * file in memory (the server's global model goes to every site and to disk this way, so the
 * aggregation holds one copy of the model, not two). */
#ifndef CFL_FL_MSTREAM_H
#define CFL_FL_MSTREAM_H

#include "cfl/err.h"
#include "cfl/model.h"

#include <stddef.h>
#include <stdint.h>

struct cfl__mstream {
	const struct cfl_model *m;
	uint8_t *head; /* 8-byte length + JSON header, padded to 8 */
	size_t head_len;
	const struct cfl_tensor **sorted; /* tensors in file order */
	uint64_t *starts;                 /* byte offset of each one's data after the header */
	uint64_t total;                   /* file size */
};

/* The model must not change while the stream is in use. */
int cfl__mstream_init(struct cfl__mstream *s, const struct cfl_model *m, struct cfl_err *e);
/* Copies up to len bytes of the file from offset `off`; returns the count (0 at the end). */
size_t cfl__mstream_read(const struct cfl__mstream *s, uint64_t off, uint8_t *buf, size_t len);
/* Writes the whole file to `path` (through a temp file and a rename). */
int cfl__mstream_save(const struct cfl__mstream *s, const char *path, struct cfl_err *e);
void cfl__mstream_release(struct cfl__mstream *s);

#endif
