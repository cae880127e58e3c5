/* The workspace's CA and its records: WORKSPACE/<project>/state/ (docs/credentials.md).
 *
 *   rootCA.pem      the trust anchor (what every kit's rootCA.pem holds)
 *   rootCA.key      the anchor's key, when cfl made the CA (the anchor issues the leaves)
 *   issuingCA.pem   with an enterprise CA: the issuing CA, then the chain above it up to (not
 *                   including) the anchor
 *   issuingCA.key   with an enterprise CA: the issuing CA's key (the root's is never needed)
 *   certs.json      every certificate issued: {"crl_number": N, "certs": [{"name", "serial",
 *                   "not_after", "revoked"?: {"when", "reason"}}]}
 *   crl.pem         the CRL `cfl cert revoke` writes */
#ifndef CFL_PROVISION_CA_STATE_H
#define CFL_PROVISION_CA_STATE_H

#include "cfl/err.h"
#include "cfl/pki.h"

#include <limits.h>
#include <stddef.h>
#include <time.h>

struct cfl__ca {
	struct cfl_pki_key *key;     /* the issuing CA's key */
	struct cfl_pki_cert *cert;   /* the issuing CA */
	struct cfl_pki_cert *anchor; /* rootCA.pem */
	struct cfl_pki_trust *trust;
	char *chain_pem; /* issuing chain, issuing CA first, anchor excluded; "" when none */
	size_t chain_len;
	char *anchor_pem; /* rootCA.pem's text, as every kit holds it */
	size_t anchor_len;
};

/* Loads the CA of `state_dir`. CFL_ENOENT when there is none (no key file). */
int cfl__ca_open(const char *state_dir, struct cfl__ca *ca, struct cfl_err *e);
/* Makes a new self-signed CA (cn, days, key type) and saves it into `state_dir` (exists). */
int cfl__ca_create(const char *state_dir, const char *cn, int days, enum cfl_key_type type,
                   struct cfl__ca *ca, struct cfl_err *e);
/* Takes an existing issuing CA (cert file: the CA, optionally followed by its chain; key; chain
 * file: the certificates above it up to the root, may be NULL) and saves it into `state_dir`.
 * The anchor is the top of the chain, or the CA itself when self-signed. */
int cfl__ca_import(const char *state_dir, const char *cert_file, const char *key_file,
                   const char *chain_file, struct cfl__ca *ca, struct cfl_err *e);
void cfl__ca_release(struct cfl__ca *ca);

/* The leaf followed by the issuing chain, as a kit's certificate file holds it. */
int cfl__ca_leaf_pem(const struct cfl__ca *ca, const struct cfl_pki_cert *leaf, char **pem,
                     size_t *len, struct cfl_err *e);

/* What certs.json records of an issued certificate (besides the name it was issued to). */
struct cfl__ca_entry {
	char serial[64]; /* hex */
	time_t not_after;
};

/* The entry of `cert`: 0, or CFL_ENOMEM / CFL_EPARSE. */
int cfl__ca_entry_of(const struct cfl_pki_cert *cert, struct cfl__ca_entry *out);

/* Appends the certificate issued to `name` to state_dir/certs.json. */
int cfl__ca_record(const char *state_dir, const char *name, const struct cfl_pki_cert *cert,
                   struct cfl_err *e);
/* The same for n certificates at once (names[i] was issued the certificate of entries[i]):
 * one read and one write of certs.json. */
int cfl__ca_record_many(const char *state_dir, const char *const *names,
                        const struct cfl__ca_entry *entries, size_t n, struct cfl_err *e);
/* Marks every unrevoked certificate of `name` revoked (reason code or -1), then rewrites
 * state_dir/crl.pem with all revocations and the next CRL number. *n: how many were revoked
 * now. CFL_ENOENT when no certificate of `name` is recorded. */
int cfl__ca_revoke(const char *state_dir, const struct cfl__ca *ca, const char *name, int reason,
                   int *n, struct cfl_err *e);

/* certs.json: about 130 bytes a certificate, so some 500,000 certificates. */
#define CFL__CA_RECORDS_MAX ((size_t)64 * 1024 * 1024)
#define CFL__CRL_DAYS       30

#endif
