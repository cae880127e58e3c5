/* PKI: keys, certificates, signatures (OpenSSL 3 lives behind this header).
 *
 * All functions are thread-safe on distinct objects, never block on the network, and return
 * 0 or a negative CFL_E* code with a readable message in `e` (OpenSSL's error queue is
 * drained into it). Objects returned through `**out` are owned by the caller. */
#ifndef CFL_PKI_H
#define CFL_PKI_H

#include "cfl/err.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum cfl_key_type {
	CFL_KEY_P256 = 0,    /* ECDSA P-256 with SHA-256: the default (cheap handshakes) */
	CFL_KEY_RSA2048 = 1, /* RSA-2048, RSA-PSS/SHA-256 signatures: NVFlare parity */
};

/* Parses "ecdsa-p256"/"p256"/"ec" and "rsa-2048"/"rsa2048"/"rsa" (case-insensitive). */
int cfl_pki_key_type_parse(const char *s, enum cfl_key_type *out);
const char *cfl_pki_key_type_name(enum cfl_key_type t); /* "ecdsa-p256" or "rsa-2048" */

struct cfl_pki_key;  /* a private key (holds the public half too) */
struct cfl_pki_cert; /* an X.509 certificate */

int cfl_pki_key_generate(enum cfl_key_type type, struct cfl_pki_key **out, struct cfl_err *e);
/* PEM (PKCS#8, unencrypted) to/from files; saved keys get mode 0600. */
int cfl_pki_key_load(const char *path, struct cfl_pki_key **out, struct cfl_err *e);
int cfl_pki_key_save(const struct cfl_pki_key *key, const char *path, struct cfl_err *e);
void cfl_pki_key_free(struct cfl_pki_key *key);

int cfl_pki_cert_load(const char *path, struct cfl_pki_cert **out, struct cfl_err *e);
int cfl_pki_cert_load_pem(const char *pem, size_t len, struct cfl_pki_cert **out,
                          struct cfl_err *e);
int cfl_pki_cert_save(const struct cfl_pki_cert *cert, const char *path, struct cfl_err *e);
/* PEM text in a new NUL-terminated buffer (*pem, free()). */
int cfl_pki_cert_to_pem(const struct cfl_pki_cert *cert, char **pem, size_t *len,
                        struct cfl_err *e);
void cfl_pki_cert_free(struct cfl_pki_cert *cert);

/* Subject CN / O / unstructuredName (admin role) into buf; CFL_ENOENT if absent. */
int cfl_pki_cert_cn(const struct cfl_pki_cert *cert, char *buf, size_t size);
int cfl_pki_cert_org(const struct cfl_pki_cert *cert, char *buf, size_t size);
int cfl_pki_cert_role(const struct cfl_pki_cert *cert, char *buf, size_t size);
/* Validity window as UTC seconds. */
int cfl_pki_cert_validity(const struct cfl_pki_cert *cert, time_t *not_before, time_t *not_after);

enum cfl_pki_usage {
	CFL_PKI_USAGE_CA = 0,     /* root CA: CA:TRUE critical, keyCertSign+cRLSign critical */
	CFL_PKI_USAGE_SERVER = 1, /* EKU serverAuth */
	CFL_PKI_USAGE_CLIENT = 2, /* EKU clientAuth (clients and admins) */
};

/* What a new certificate says. SAN entries: IP literals (v4/v6) become iPAddress, anything
 * else dNSName, in the given order. */
struct cfl_pki_cert_req {
	const char *cn;   /* required, at most 64 bytes */
	const char *org;  /* O, may be NULL */
	const char *role; /* unstructuredName (OID 1.2.840.113549.1.9.2), may be NULL */
	enum cfl_pki_usage usage;
	const char *const *sans; /* may be NULL when n_sans == 0 */
	size_t n_sans;
	int days;          /* validity from now; leaf validity is capped at the issuer's */
	time_t not_before; /* 0 = now; for tests of not-yet-valid certs */
};

/* Self-signed root CA for `key` (usage must be CFL_PKI_USAGE_CA). Random 159-bit serial. */
int cfl_pki_ca_create(const struct cfl_pki_key *key, const struct cfl_pki_cert_req *req,
                      struct cfl_pki_cert **out, struct cfl_err *e);

/* Leaf certificate for `subject` (its public half), signed by the CA. SKI + AKI set. */
int cfl_pki_cert_issue(const struct cfl_pki_key *ca_key, const struct cfl_pki_cert *ca_cert,
                       const struct cfl_pki_key *subject, const struct cfl_pki_cert_req *req,
                       struct cfl_pki_cert **out, struct cfl_err *e);

/* Checks that `cert` chains to `ca` and is valid now (or at `at` when non-zero).
 * CFL_EVERIFY with the reason (expired, not yet valid, unknown issuer...) otherwise. */
int cfl_pki_cert_verify(const struct cfl_pki_cert *ca, const struct cfl_pki_cert *cert, time_t at,
                        struct cfl_err *e);

/* Checks that `cert` may stand for the identity `usage` names, at login or in a TLS handshake
 * (chain and validity are cfl_pki_cert_verify's): not a CA (CA:FALSE, or no basic constraints
 * in a v3 certificate of someone else's CA), and the extended key usage serverAuth
 * (CFL_PKI_USAGE_SERVER), or clientAuth without serverAuth (CFL_PKI_USAGE_CLIENT: a server's
 * certificate is no site's or admin's identity). Returns 0, CFL_EVERIFY with the reason naming
 * the certificate's CN, or CFL_EINVAL for CFL_PKI_USAGE_CA. */
int cfl_pki_cert_check_usage(const struct cfl_pki_cert *cert, enum cfl_pki_usage usage,
                             struct cfl_err *e);

/* 1 if the certificate's public key matches the private key, else 0. */
int cfl_pki_cert_matches_key(const struct cfl_pki_cert *cert, const struct cfl_pki_key *key);

/* Signs `data` with SHA-256: RSA keys use RSA-PSS (MGF1-SHA256, maximal salt, as NVFlare),
 * EC keys ECDSA (DER). *sig is a new buffer (free()). */
int cfl_pki_sign(const struct cfl_pki_key *key, const void *data, size_t len, uint8_t **sig,
                 size_t *sig_len, struct cfl_err *e);
/* Verifies a signature made by cfl_pki_sign with the key of `cert`. CFL_EVERIFY if bad. */
int cfl_pki_verify(const struct cfl_pki_cert *cert, const void *data, size_t len,
                   const uint8_t *sig, size_t sig_len, struct cfl_err *e);

/* Standard base64 (RFC 4648, with padding). Encode: *out new NUL-terminated buffer.
 * Decode rejects bad characters and bad padding. */
int cfl_base64_encode(const void *data, size_t len, char **out);
int cfl_base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len);

#endif
