/* PKI internals: the bodies of the opaque handles and helpers shared by the files of src/pki/.
 * Other library modules may include it to reach the OpenSSL objects (a TLS peer's certificate,
 * for one). Never installed; nothing outside src/ includes it. */
#ifndef CFL_PKI_INT_H
#define CFL_PKI_INT_H

#include "cfl/pki.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stdatomic.h>

/* Bounds on what we read from disk: a PEM key or certificate is a few KiB; a file far larger
 * than that is not what the caller thinks it is. */
#define CFL_PKI_KEY_FILE_MAX  ((size_t)64 * 1024)
#define CFL_PKI_CERT_FILE_MAX ((size_t)256 * 1024)

/* RFC 5280 ub-common-name and ub-organization-name. */
#define CFL_PKI_NAME_MAX 64

struct cfl_pki_key {
	EVP_PKEY *pkey;
	/* The family. A loaded RSA key may be longer than 2048 bits; it still signs with PSS. */
	enum cfl_key_type type;
};

struct cfl_pki_cert {
	X509 *x509; /* as issued or loaded; see `full` for what needs its public key */
	/* x509 itself, or NULL for a certificate just issued with its P-256 key set from the raw
	 * point (no decoded key attached): cfl__pki_cert_full parses it again on first need. */
	_Atomic(X509 *) full;
};

/* The certificate with its decoded public key: for verification, key comparison and anything
 * that hands the X509 on (trust stores, chains). DER-only uses (encoding, names, serial,
 * validity, digest) may read cert->x509. Safe from several threads. */
X509 *cfl__pki_cert_full(const struct cfl_pki_cert *cert);

/* The text a memory BIO holds, copied NUL-terminated into `*out` (free()) with its length;
 * CFL_ENOMEM ("cannot encode WHAT: out of memory"). The BIO stays the caller's. */
int cfl__pki_bio_text(BIO *bio, const char *what, char **out, size_t *len, struct cfl_err *e);

/* The process's few recently parsed certificates (cert_cache.c), matched on their exact PEM
 * text: get returns a new reference or NULL; put keeps a reference to `x`. */
X509 *cfl__pki_cert_cache_get(const char *pem, size_t len);
void cfl__pki_cert_cache_put(const char *pem, size_t len, X509 *x);

/* Like cfl__pki_cert_wrap for a freshly signed leaf whose public key is not decoded. */
int cfl__pki_cert_wrap_lazy(X509 *x, struct cfl_pki_cert **out);

/* Sets `e` to `code` and the formatted message, then appends and clears OpenSSL's error queue
 * (": " then each entry, "; "-separated). Returns `code`. */
int cfl__pki_openssl_err(struct cfl_err *e, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Wraps `x` (for example a TLS peer's certificate) in a new handle that holds its own
 * reference; the caller keeps its reference. Returns 0 or CFL_ENOMEM / CFL_EINVAL. */
int cfl__pki_cert_wrap(X509 *x, struct cfl_pki_cert **out);

/* Classifies `pkey`: RSA of at least 2048 bits or EC on P-256. CFL_EUNSUPP otherwise. */
int cfl__pki_key_classify(const EVP_PKEY *pkey, enum cfl_key_type *type);

/* The first entry of `name` with `nid`, as UTF-8, into buf: CFL_ENOENT without one,
 * CFL_EPARSE for an entry that is not text or holds a NUL, CFL_ETOOBIG if it does not fit. */
int cfl__pki_name_field(const X509_NAME *name, int nid, char *buf, size_t size);

/* SHA-256, fetched once (EVP_sha256() when the fetch failed). */
const EVP_MD *cfl__pki_sha256(void);

/* A new context for one signature with `key` over SHA-256 (*pctx, when not NULL, gets its key
 * context for padding settings); NULL on failure (OpenSSL's error queue says why). */
EVP_MD_CTX *cfl__pki_sign_ctx(EVP_PKEY *key, EVP_PKEY_CTX **pctx);

#endif
