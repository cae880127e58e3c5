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

/* 1 if a[0..n) == b[0..n), in time independent of the contents (for tokens and MACs). */
int cfl_ct_equal(const void *a, const void *b, size_t n);

/* Overwrites a secret in memory the compiler may not optimise away (OPENSSL_cleanse). */
void cfl_wipe(void *p, size_t n);

/* Fills buf with n cryptographically random bytes; 0 or CFL_ECRYPTO. */
int cfl_random(void *buf, size_t n);

#endif
