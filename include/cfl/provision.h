/* Provisioning: a project file in, signed startup kits out (SPEC §2). */
#ifndef CFL_PROVISION_H
#define CFL_PROVISION_H

#include "cfl/err.h"
#include "cfl/pki.h"
#include "cfl/project.h"

#include <stddef.h>

struct cfl_provision_opts {
	const char *project_path; /* project.yml */
	const char *workspace;    /* default "workspace" */
	int key_type;             /* -1: as the project says; else an enum cfl_key_type */
	const char *cfl_path;     /* recorded in the start scripts as a fallback, may be NULL */
};

/* An enterprise issuing CA for cfl_provision_ca. */
struct cfl_provision_ca {
	const char *ca_cert;  /* the issuing CA, optionally followed by its chain */
	const char *ca_key;   /* its private key */
	const char *ca_chain; /* the certificates above it up to the root, may be NULL */
};

/* Loads and validates the project, then writes WORKSPACE/<project>/prod_NN (next free NN)
 * atomically: everything is built in a temporary folder renamed at the end; on any error
 * nothing new is left in the workspace. Reuses WORKSPACE/<project>/state/ (root CA) when
 * present, else creates it. On success the output folder is written to out_dir.
 * Blocking: the kits (keys, certificates, files) are built on one thread per core, or on
 * $CFL_PROVISION_THREADS threads (1..16) when set; not thread-safe against another run on the
 * same workspace. */
int cfl_provision(const struct cfl_provision_opts *opts, char *out_dir, size_t out_size,
                  struct cfl_err *e);

/* cfl_provision with an enterprise CA (`ca` NULL: as cfl_provision). The leaves are issued by
 * ca->ca_cert, every kit's rootCA.pem is the top of the chain (the anchor), leaf certificate
 * files carry the chain, kits are signed with the issuing key. Used only when the workspace
 * has no CA yet; given again, it must be the workspace's issuing CA. */
int cfl_provision_ca(const struct cfl_provision_opts *opts, const struct cfl_provision_ca *ca,
                     char *out_dir, size_t out_size, struct cfl_err *e);

/* ---- Requests, approvals, packages, revocation (docs/credentials.md) ---- */

/* Request and approval files are at most this large. */
#define CFL_CERT_FILE_MAX ((size_t)1 << 20)

int cfl_cert_type_parse(const char *s, enum cfl_ptype *t); /* "server", "client", "admin" */
const char *cfl_cert_type_name(enum cfl_ptype t);

struct cfl_cert_request_opts {
	const char *name, *type, *org, *role; /* org, role may be NULL */
	const char *const *hosts;             /* --host-names */
	size_t n_hosts;
	const char *key_path; /* an existing key, or NULL: make DIR/NAME.key (0600) */
	const char *dir;
	enum cfl_key_type key_type; /* for a new key */
};

/* Writes DIR/NAME.key (unless key_path) and DIR/NAME.request.json; its path into req_path. */
int cfl_cert_request(const struct cfl_cert_request_opts *o, char *req_path, size_t size,
                     struct cfl_err *e);

/* A parsed request: the CSR's self-signature is checked. */
struct cfl_cert_request {
	char *name;
	enum cfl_ptype type;
	char *org, *role; /* NULL when absent */
	char **hosts;
	size_t n_hosts;
	struct cfl_pki_csr *csr;
};
int cfl_cert_request_parse(const char *text, size_t len, struct cfl_cert_request **out,
                           struct cfl_err *e);
void cfl_cert_request_free(struct cfl_cert_request *r);

/* Checks the request against the project's participant (CFL_EVERIFY naming the field that
 * differs), issues its certificate with the workspace's CA (days: 0 = the project's
 * cert_validity_days; capped by the CA), records the serial, writes the approval to `out`.
 * The root CA fingerprint goes to fp (CFL_PKI_FINGERPRINT_MAX bytes). */
int cfl_cert_approve(const char *project, const char *workspace, const char *request, int days,
                     const char *out, const char *cfl_path, char *fp, struct cfl_err *e);

/* A parsed approval whose signature verified with the issuing CA of its certificate chain. */
struct cfl_cert_approval;
int cfl_cert_approval_parse(const char *text, size_t len, struct cfl_cert_approval **out,
                            struct cfl_err *e);
void cfl_cert_approval_free(struct cfl_cert_approval *a);
/* The approval's root CA (its kit's rootCA.pem), owned by the approval. */
const struct cfl_pki_cert *cfl_cert_approval_root(const struct cfl_cert_approval *a);

/* Builds KITDIR from the approval and the key: refuses a tampered approval, a key that does
 * not match the certificate, a root CA whose fingerprint is not `expected_fp` (when given);
 * the kit passes cfl_kit_verify. The root CA fingerprint goes to fp. */
int cfl_cert_package(const char *approval, const char *key, const char *kit_dir,
                     const char *expected_fp, char *fp, struct cfl_err *e);

/* Revokes every current certificate of participant `name` and writes
 * WORKSPACE/<project>/state/crl.pem (path into crl_path). reason: an RFC 5280 name or NULL. */
int cfl_cert_revoke(const char *project, const char *workspace, const char *name,
                    const char *reason, int *n_revoked, char *crl_path, size_t size,
                    struct cfl_err *e);

#endif
