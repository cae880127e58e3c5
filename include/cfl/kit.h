/* Startup-kit signatures: signature.json over a participant's kit files.
 *
 * signature.json (in startup/) maps each signed file to the base64 signature of its bytes
 * made with the root CA key (RSA-PSS/SHA-256 or ECDSA/SHA-256, by the CA's key type).
 * Keys are bare names for files in startup/ and "local/<name>" for the local/ defaults. */
#ifndef CFL_KIT_H
#define CFL_KIT_H

#include "cfl/err.h"
#include "cfl/pki.h"

#define CFL_KIT_MAX_FILES      256
#define CFL_KIT_MAX_FILE_BYTES (16u << 20)

/* Signs every regular file in KIT/startup/ (except signature.json) and every file in
 * KIT/local/ whose name ends in ".default" or ".sample"; writes KIT/startup/signature.json. */
int cfl_kit_sign(const char *kit_dir, const struct cfl_pki_key *ca_key, struct cfl_err *e);

enum cfl_kit_problem { CFL_KIT_CHANGED, CFL_KIT_MISSING, CFL_KIT_ADDED };
const char *cfl_kit_problem_name(enum cfl_kit_problem p); /* "changed", "missing", "added" */

/* Called once per problem found; `file` is relative to the kit folder. */
typedef void (*cfl_kit_problem_fn)(enum cfl_kit_problem what, const char *file, void *arg);

/* Verifies KIT/startup/signature.json against KIT/startup/rootCA.pem: every signed file
 * must be present and unchanged, and startup/ (and the signed names of local/) must hold no
 * other file. Reports every problem through `fn` (may be NULL). Returns 0 when intact,
 * CFL_EVERIFY when any file is changed, missing or added (e->msg names the first ones), or
 * another code when the kit cannot be read at all. */
int cfl_kit_verify(const char *kit_dir, cfl_kit_problem_fn fn, void *arg, struct cfl_err *e);

#endif
