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
/* The PEM text cfl_pki_key_save writes, in a new NUL-terminated buffer (*pem): the secret
 * itself, which the caller wipes (cfl_wipe) before free(). */
int cfl_pki_key_to_pem(const struct cfl_pki_key *key, char **pem, size_t *len, struct cfl_err *e);
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

/* ---- Chains, trust anchors and revocation (SPEC §3, issue 10) ---- */

/* Every certificate of a PEM text, in order, into a new array (*certs, free with
 * cfl_pki_certs_free). CFL_EPARSE if there is none or one does not parse. At most
 * CFL_PKI_CHAIN_MAX certificates and CFL_PKI_CERT_FILE_MAX bytes. */
#define CFL_PKI_CHAIN_MAX 16
int cfl_pki_certs_load_pem(const char *pem, size_t len, struct cfl_pki_cert ***certs, size_t *n,
                           struct cfl_err *e);
int cfl_pki_certs_load(const char *path, struct cfl_pki_cert ***certs, size_t *n,
                       struct cfl_err *e);
void cfl_pki_certs_free(struct cfl_pki_cert **certs, size_t n);

/* 1 if the certificate is issued by itself (subject = issuer, its own key signs it). */
int cfl_pki_cert_self_signed(const struct cfl_pki_cert *cert);
/* A certificate sharing an OpenSSL X509 (X509 *; a reference is taken), e.g. the one a TLS
 * handshake parsed and verified (cfl_tls_peer_x509): nothing is parsed again. */
int cfl_pki_cert_wrap_x509(const void *x509, struct cfl_pki_cert **out);
/* 1 if the first certificate of the PEM text has the DER encoding of `cert` (the PEM is
 * decoded, not parsed as a certificate), else 0. */
int cfl_pki_cert_pem_is(const char *pem, size_t len, const struct cfl_pki_cert *cert);
/* 1 if both certificates have the same DER encoding, else 0. */
int cfl_pki_cert_equal(const struct cfl_pki_cert *a, const struct cfl_pki_cert *b);
/* Serial number as uppercase hex without separators into buf (size >= 41 is enough). */
int cfl_pki_cert_serial(const struct cfl_pki_cert *cert, char *buf, size_t size);
/* "SHA256:" + the SHA-256 of the DER certificate as uppercase hex pairs joined by ':' (the
 * `openssl x509 -fingerprint -sha256` digits). buf size >= CFL_PKI_FINGERPRINT_MAX. */
#define CFL_PKI_FINGERPRINT_MAX 104
int cfl_pki_cert_fingerprint(const struct cfl_pki_cert *cert, char *buf, size_t size);
/* 1 if `text` names the certificate's SHA-256 fingerprint, else 0. Accepted: an optional
 * "SHA256:" prefix, then hex (any case, pairs optionally separated by ':') or base64 of the 32
 * bytes with or without '=' padding (the OpenSSH style). */
int cfl_pki_cert_fingerprint_match(const struct cfl_pki_cert *cert, const char *text);

/* An intermediate CA certificate (usage must be CFL_PKI_USAGE_CA) for `subject`, issued by
 * the CA `ca_cert`/`ca_key`; validity capped at the issuer's. For tests and enterprise-like
 * set-ups (production intermediates come from the organisation's own PKI). */
int cfl_pki_ca_issue(const struct cfl_pki_key *ca_key, const struct cfl_pki_cert *ca_cert,
                     const struct cfl_pki_key *subject, const struct cfl_pki_cert_req *req,
                     struct cfl_pki_cert **out, struct cfl_err *e);

/* A project's trust: the anchor (rootCA.pem), the issuing CA chain below it (empty when the
 * anchor issues the leaves), and the issuing CA's CRLs (optional). */
struct cfl_pki_trust;

/* Largest CRL file cfl_pki_trust_set_crl reads, and the most CRLs it keeps. */
#define CFL_PKI_CRL_FILE_MAX ((size_t)16 * 1024 * 1024)
#define CFL_PKI_CRL_MAX      64

/* anchor_file: PEM trust anchor. own_cert_file: the holder's cert file (leaf first, then the
 * issuing chain, issuing CA first), or NULL: the anchor issues leaves. The issuing chain must
 * chain to the anchor (validity times are not checked here); a copy of the anchor at the end
 * of the file is ignored. */
int cfl_pki_trust_load(const char *anchor_file, const char *own_cert_file,
                       struct cfl_pki_trust **out, struct cfl_err *e);
/* The same from certificates in memory: `chain` = the issuing chain, issuing CA first, up to
 * (not including) the anchor; n_chain 0 when the anchor issues the leaves. Copies are kept. */
int cfl_pki_trust_new(const struct cfl_pki_cert *anchor, struct cfl_pki_cert *const *chain,
                      size_t n_chain, struct cfl_pki_trust **out, struct cfl_err *e);
void cfl_pki_trust_free(struct cfl_pki_trust *t);
/* Replaces the CRLs with those in the PEM file (each must verify with the issuing CA; bounded
 * size, CFL_PKI_CRL_FILE_MAX). CFL_ENOENT if the file is missing (CRLs unchanged),
 * CFL_EVERIFY / CFL_EPARSE with the reason otherwise (CRLs unchanged). A CRL whose nextUpdate
 * has passed is refused; revocations loaded earlier stay in force until replaced. */
int cfl_pki_trust_set_crl(struct cfl_pki_trust *t, const char *crl_file, struct cfl_err *e);
/* Same from memory (fuzz target, tests). */
int cfl_pki_trust_set_crl_pem(struct cfl_pki_trust *t, const char *pem, size_t len,
                              struct cfl_err *e);
/* 1 if `cert`'s serial is on a loaded CRL of the issuing CA, else 0. */
int cfl_pki_trust_is_revoked(const struct cfl_pki_trust *t, const struct cfl_pki_cert *cert);
/* Chains to the anchor through the issuing chain, issued by exactly the issuing CA, valid at
 * `at` (0 = now), not revoked. CFL_EVERIFY with a reason; a revoked one's message contains
 * "certificate revoked". */
int cfl_pki_trust_verify(const struct cfl_pki_trust *t, const struct cfl_pki_cert *cert, time_t at,
                         struct cfl_err *e);
/* cfl_pki_trust_verify() (at = now) of a certificate whose path someone already validated up to
 * `validated_by` (NULL: nobody), such as the TLS handshake with its issuer pin: when that is
 * this trust's issuing CA and the certificate is within its validity, only the revocation is
 * left to check (no signature is verified again); else the whole verification runs.
 * SECURITY: `validated_by` must come only from a verification that really ran on this very
 * certificate (the handshake's own pinned issuer, cfl_conn_peer_x509); passing a CA from
 * anywhere else skips the signature check of `cert`. */
int cfl_pki_trust_verify_validated(const struct cfl_pki_trust *t, const struct cfl_pki_cert *cert,
                                   const struct cfl_pki_cert *validated_by, struct cfl_err *e);
/* The issuing CA (the anchor when no chain) and the anchor; owned by the trust. */
const struct cfl_pki_cert *cfl_pki_trust_issuer(const struct cfl_pki_trust *t);
const struct cfl_pki_cert *cfl_pki_trust_anchor(const struct cfl_pki_trust *t);
/* The issuing chain as PEM (issuing CA first, anchor excluded; "" when empty) in a new
 * NUL-terminated buffer (*pem, free()). What a leaf file carries after the leaf. */
int cfl_pki_trust_chain_pem(const struct cfl_pki_trust *t, char **pem, size_t *len,
                            struct cfl_err *e);

/* One entry of a CRL to make. */
struct cfl_pki_revoked {
	const char *serial_hex; /* as cfl_pki_cert_serial writes it */
	time_t when;            /* revocation date */
	int reason;             /* RFC 5280 CRLReason code, or -1 for no reason extension */
};

/* Parses an RFC 5280 reason name ("keyCompromise", "superseded", ..., case-insensitive, '-'
 * and '_' ignored) into its code. CFL_EINVAL for an unknown name. */
int cfl_pki_crl_reason_parse(const char *name, int *code);

/* A PEM X.509 v2 CRL signed by the CA: CRL number `number`, thisUpdate `this_update` (0 =
 * now), nextUpdate `days` later, the entries in the given order. *pem: new buffer (free()). */
int cfl_pki_crl_create(const struct cfl_pki_key *ca_key, const struct cfl_pki_cert *ca_cert,
                       const struct cfl_pki_revoked *list, size_t n, uint64_t number, int days,
                       time_t this_update, char **pem, size_t *len, struct cfl_err *e);

/* ---- Certificate signing requests (PKCS#10) ---- */

struct cfl_pki_csr;

/* A PEM CSR for `key` whose subject is req->cn / org / role (as a certificate's); the SANs,
 * usage and days of `req` are not part of it. *pem: new NUL-terminated buffer (free()). */
int cfl_pki_csr_create(const struct cfl_pki_key *key, const struct cfl_pki_cert_req *req,
                       char **pem, size_t *len, struct cfl_err *e);
/* Parses a PEM CSR (at most CFL_PKI_CERT_FILE_MAX bytes) and checks its self-signature
 * (CFL_EVERIFY "CSR signature does not verify" when it fails) and key type (P-256 or RSA of at
 * least 2048 bits). */
int cfl_pki_csr_load_pem(const char *pem, size_t len, struct cfl_pki_csr **out, struct cfl_err *e);
void cfl_pki_csr_free(struct cfl_pki_csr *csr);
/* Subject CN / O / unstructuredName, as the cfl_pki_cert_* ones; CFL_ENOENT if absent. */
int cfl_pki_csr_cn(const struct cfl_pki_csr *csr, char *buf, size_t size);
int cfl_pki_csr_org(const struct cfl_pki_csr *csr, char *buf, size_t size);
int cfl_pki_csr_role(const struct cfl_pki_csr *csr, char *buf, size_t size);
/* A key handle that holds only the CSR's public key: usable as the `subject` of
 * cfl_pki_cert_issue, never to sign. */
int cfl_pki_csr_public_key(const struct cfl_pki_csr *csr, struct cfl_pki_key **out,
                           struct cfl_err *e);

#endif
