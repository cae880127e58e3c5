/* Internal to provisioning: kit content builders shared by provision.c. */
#ifndef CFL_PROVISION_INTERNAL_H
#define CFL_PROVISION_INTERNAL_H

#include "cfl/err.h"
#include "cfl/project.h"

struct cfl__ca;

/* One participant's kit to build (provision, cert approve). */
struct cfl__kit_spec {
	const char *kit_dir; /* new or empty folder */
	const struct cfl_project *proj;
	const struct cfl_participant *pt;
	const struct cfl__ca *ca;
	const struct cfl_pki_key *subject; /* a private key, or a CSR's public key */
	int save_key;                      /* write startup/<base>.key (a private key only) */
	int days;                          /* 0: the project's cert_validity_days */
	const char *cfl_path;
};

/* Writes the kit: startup/ (certificate + chain, key when save_key, rootCA.pem = the anchor,
 * configs, scripts, signature.json signed by the issuing CA), local/, transfer/. The issued
 * certificate goes to *issued (the caller frees it, also on failure). */
int cfl__kit_build(const struct cfl__kit_spec *s, struct cfl_pki_cert **issued, struct cfl_err *e);

/* The participant's certificate, as provisioning makes it, for `subject`'s public key. */
int cfl__issue_for(const struct cfl_project *p, const struct cfl_participant *pt,
                   const struct cfl__ca *ca, const struct cfl_pki_key *subject, int days,
                   struct cfl_pki_cert **cert, struct cfl_err *e);

/* Writes the start/stop scripts of a participant into startup_dir (mode 0755). */
int cfl__kit_write_scripts(const char *startup_dir, const struct cfl_participant *pt,
                           const char *cfl_path, struct cfl_err *e);

/* Writes the four local/ defaults into local_dir. */
int cfl__kit_write_local(const char *local_dir, const struct cfl_participant *pt,
                         struct cfl_err *e);

/* Writes fed_server.json / fed_client.json / fed_admin.json into startup_dir.
 * has_custom_ca: customRootCA.pem is part of this kit. */
int cfl__kit_write_config(const char *startup_dir, const struct cfl_project *p,
                          const struct cfl_participant *pt, int has_custom_ca, struct cfl_err *e);

/* Writes root/name into buf (PATH_MAX bytes): the kit folder of participant `name`, checked
 * to be a new folder directly inside `root` before anything is written there, whatever the
 * project's name rules let through: `name` must be one path component (not empty, ".", ".."
 * or holding '/') and nothing may exist at that path yet (no link to elsewhere). CFL_ECONFIG
 * with the reason, or CFL_ETOOBIG. */
int cfl__kit_dir(char *buf, const char *root, const char *name, struct cfl_err *e);

/* Generates n keys of `type` into keys[] (zeroed by the caller) on all cores. On failure
 * every key is freed and the first error returned. */
int cfl__keygen_many(enum cfl_key_type type, size_t n, struct cfl_pki_key **keys,
                     struct cfl_err *e);

#endif
