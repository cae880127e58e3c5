/* SHA-256, incremental (OpenSSL behind it). For checksums of streamed bodies and models. */
#ifndef CFL_DIGEST_H
#define CFL_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define CFL_SHA256_LEN 32

struct cfl_sha256;

/* Returns a new context, or NULL when out of memory. */
struct cfl_sha256 *cfl_sha256_new(void);
void cfl_sha256_update(struct cfl_sha256 *h, const void *data, size_t len);
/* Writes the digest and resets the context for reuse. */
void cfl_sha256_final(struct cfl_sha256 *h, uint8_t out[CFL_SHA256_LEN]);
void cfl_sha256_free(struct cfl_sha256 *h);

/* Lowercase hex of `len` bytes into buf (size >= 2*len+1). */
void cfl_hex(const uint8_t *data, size_t len, char *buf);

#endif
