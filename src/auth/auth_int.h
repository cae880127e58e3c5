/* Internal to message authentication: the signed byte strings, nonces, header helpers. */
#ifndef CFL_AUTH_INT_H
#define CFL_AUTH_INT_H

#include "cfl/auth.h"
#include "cfl/pki.h"

#include <stddef.h>
#include <stdint.h>

#define NONCE_LEN    32
#define NONCE_HEX    (2 * NONCE_LEN + 1)
#define TOKEN_MAX    128
#define TOKEN_RANDOM 24 /* random bytes in a token: 192 bits */
#define SIG_B64_MAX  512
#define CERT_PEM_MAX (16u << 10)

/* What each signature covers, with a label per purpose so that a signature made for one step
 * can never be replayed as another (docs/security.md). Fields are NUL-separated. */
size_t cfl__auth_tbs(uint8_t *buf, size_t cap, const char *label, const char *a, const char *b,
                     const char *c);

/* Signs / verifies the tbs string as base64. */
int cfl__auth_sign_b64(const struct cfl_pki_key *key, const uint8_t *tbs, size_t n, char *out,
                       size_t out_size);
int cfl__auth_verify_b64(const struct cfl_pki_cert *cert, const uint8_t *tbs, size_t n,
                         const char *b64);

/* The certificate a login message carries. When it is the one the connection's TLS handshake
 * verified (the site's under mtls, the server's under tls or mtls), that parsed certificate is
 * shared instead of parsing the PEM again, `tls` is set (the peer proved it holds the key, in
 * the handshake's CertificateVerify) and `pin` is the issuing CA the handshake pinned it to
 * (NULL when none): cfl_pki_trust_verify_validated() then need not verify the path again. */
struct cfl__login_cert {
	struct cfl_pki_cert *cert, *pin;
	int tls;
};
struct cfl_conn;
int cfl__auth_login_cert(struct cfl_conn *c, const char *pem, size_t len,
                         struct cfl__login_cert *out, struct cfl_err *e);
void cfl__auth_login_cert_free(struct cfl__login_cert *lc);
/* 1 if `cert` is the certificate the connection's TLS handshake verified, else 0. */
int cfl__auth_is_tls_peer(struct cfl_conn *c, const struct cfl_pki_cert *cert);

/* The three headers every message after the login carries, found in one pass over `f` (keys
 * compared by length first, in place); NULL where absent. */
struct cfl__auth_hdrs {
	const struct cfl_header *name, *token, *sig;
};
void cfl__auth_find_hdrs(const struct cfl_frame *f, struct cfl__auth_hdrs *out);

/* 1 if a[0..n) == b[0..n), in time that depends on n only (8 bytes a step): for tokens. */
int cfl__auth_ct_equal(const void *a, const void *b, size_t n);

/* 1 if header `h` holds exactly the n bytes of `v` (a plain comparison). */
int cfl__auth_hdr_is(const struct cfl_header *h, const char *v, size_t n);

/* A fresh random nonce as hex. */
int cfl__auth_nonce(char hex[NONCE_HEX]);

/* Copies header `key` of f into buf; "" when absent or too long (returns -1 then). */
int cfl__auth_hdr(const struct cfl_frame *f, const char *key, char *buf, size_t size);

int64_t cfl__auth_unix_ms(void);

/* Writes a rejection reason; long reasons are cut to the buffer (the start says what failed). */
void cfl__auth_why(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
