/* Signed jobs (docs/jobs.md "Signed jobs", SPEC §10): the manifest of a job's files, signed by
 * the admin who submits it, and checked by the server at submission and by every site before
 * it unpacks or reads any file of the job.
 *
 * The manifest is text, one line per file, sorted by name, each line the file's SHA-256 in
 * lowercase hex, one space, and its name (names are 1..128 of [A-Za-z0-9._-], not starting
 * with '.'), after a first line naming the format:
 *
 *     cfl-job-manifest 1
 *     8f43...e1 config.json
 *     0c1d...7a meta.json
 *
 * There is exactly one text for a set of files, so the signature covers the text as it is.
 * A bundle carries it next to its files: {"files": {name: base64}, "manifest": TEXT,
 * "signature": base64 of cfl_pki_sign(TEXT) with the admin's client.key, "certificate": the
 * admin's client.crt (PEM)}.
 *
 * Everything here is pure computation on the caller's memory: no I/O, no threads of its own;
 * thread-safe on distinct objects. Errors: a negative CFL_E* code with a message in `e`. */
#ifndef CFL_MANIFEST_H
#define CFL_MANIFEST_H

#include "cfl/digest.h"
#include "cfl/err.h"
#include "cfl/pki.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CFL_MANIFEST_MAX_FILES 64
#define CFL_MANIFEST_NAME_MAX  128
#define CFL_MANIFEST_HEADER    "cfl-job-manifest 1\n"
/* The longest manifest: the header and 64 lines of 64 + 1 + 128 + 1 bytes. */
#define CFL_MANIFEST_TEXT_MAX (sizeof(CFL_MANIFEST_HEADER) - 1 + CFL_MANIFEST_MAX_FILES * 194)
/* A base64 signature (RSA-2048 and ECDSA P-256 need at most 344 characters) and a certificate
 * in PEM (an admin's is 0.8 to 1.5 KiB). */
#define CFL_MANIFEST_SIG_MAX  1024
#define CFL_MANIFEST_CERT_MAX 16384

struct cfl_manifest_file {
	char name[CFL_MANIFEST_NAME_MAX + 1];
	uint8_t sha256[CFL_SHA256_LEN];
};

/* Zero-initialise before the first cfl_manifest_add. About 10 KiB. */
struct cfl_manifest {
	size_t n;
	struct cfl_manifest_file files[CFL_MANIFEST_MAX_FILES];
};

/* Who signed a job: the subject of the certificate that verified its signature. */
struct cfl_job_signer {
	char name[256]; /* CN: the admin's e-mail */
	char org[256];  /* O */
	char role[64];  /* project_admin, org_admin, lead or member */
};

/* The signed parts of a bundle, next to its files, as received (borrowed). */
struct cfl_job_sig {
	const char *manifest; /* the manifest text */
	size_t manifest_len;
	const char *signature; /* base64 */
	size_t signature_len;
	const char *certificate; /* PEM, one certificate */
	size_t certificate_len;
};

/* The same, made by cfl_manifest_sign: new NUL-terminated buffers. */
struct cfl_manifest_signed {
	char *manifest;
	char *signature;
	char *certificate;
};

/* Adds file `name` with contents data[0..len) (its SHA-256). CFL_EINVAL for a name that is
 * not a plain name or is already there, CFL_ETOOBIG past CFL_MANIFEST_MAX_FILES files. */
int cfl_manifest_add(struct cfl_manifest *m, const char *name, const void *data, size_t len,
                     struct cfl_err *e);

/* The manifest's text (sorted by name, the canonical form) in a new NUL-terminated buffer
 * (*text, free()); *len excludes the NUL. CFL_EINVAL when it has no file. */
int cfl_manifest_text(const struct cfl_manifest *m, char **text, size_t *len, struct cfl_err *e);

/* Parses a manifest's text (at most CFL_MANIFEST_TEXT_MAX bytes) into *m: the header line,
 * then 1..CFL_MANIFEST_MAX_FILES lines in strictly increasing name order, every line ending
 * in '\n'. Any other text is CFL_EPARSE with the line and the reason; the text a successful
 * parse accepts is exactly what cfl_manifest_text makes of *m. */
int cfl_manifest_parse(const char *text, size_t len, struct cfl_manifest *m, struct cfl_err *e);

/* The entry for `name`, or NULL. */
const struct cfl_manifest_file *cfl_manifest_find(const struct cfl_manifest *m, const char *name);

/* Checks one file against the manifest: CFL_EVERIFY "'NAME' is not in the signed manifest"
 * or "'NAME' does not match its signed digest". */
int cfl_manifest_check(const struct cfl_manifest *m, const char *name, const void *data, size_t len,
                       struct cfl_err *e);

/* Signs the manifest's text with `key`, whose certificate `cert` must match it. On success
 * *out holds the text, the base64 signature and the certificate's PEM; release it with
 * cfl_manifest_signed_release (also after a failure: it is left empty then). */
int cfl_manifest_sign(const struct cfl_manifest *m, const struct cfl_pki_key *key,
                      const struct cfl_pki_cert *cert, struct cfl_manifest_signed *out,
                      struct cfl_err *e);
void cfl_manifest_signed_release(struct cfl_manifest_signed *s);

/* Checks who signed: the certificate (PEM, at most CFL_MANIFEST_CERT_MAX bytes; the leaf
 * alone, the verifier's trust supplies the issuing chain) passes cfl_pki_trust_verify with
 * `trust` (chains to the project's anchor, issued by exactly its issuing CA, not revoked) and
 * is valid at `at` (0: now), names an admin role (project_admin, org_admin, lead, member) and
 * a CN, and its key verifies the signature over the manifest text. Fills *who. The manifest
 * itself is not parsed. CFL_EVERIFY (or CFL_EPARSE for a certificate or signature that cannot
 * be read) with the reason. */
int cfl_manifest_verify_sig(const struct cfl_job_sig *sig, const struct cfl_pki_trust *trust,
                            time_t at, struct cfl_job_signer *who, struct cfl_err *e);

/* A whole job bundle's text ({"files": ..., "manifest": ..., "signature": ...,
 * "certificate": ...}, at most 64 MiB): the signature (cfl_manifest_verify_sig), the manifest
 * (cfl_manifest_parse), and the files: exactly the manifest's, each with its digest. No
 * other member is allowed. Returns 0 and the signer, or CFL_EVERIFY / CFL_EPARSE /
 * CFL_ETOOBIG with a message naming what failed ("'config.json' does not match its signed
 * digest"). The server checks this at submission, each site before it unpacks the job. */
int cfl_manifest_verify_bundle(const char *text, size_t len, const struct cfl_pki_trust *trust,
                               time_t at, struct cfl_job_signer *who, struct cfl_err *e);

#endif
