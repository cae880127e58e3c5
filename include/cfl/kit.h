/* Startup kits: their signatures and their runtime configuration.
 *
 * Signatures: signature.json (in startup/) is a manifest {"format": "cfl-kit-manifest/1",
 * "files": {NAME: SHA-256 hex}, "signature": base64} where NAME is "startup/<file>" or
 * "local/<file>" (the local/ defaults). The private keys (startup/NAME.key) are left out: a key
 * may be made where it is used (cfl cert request, cfl package), never seen by the CA that
 * signs; instead the check requires the key to match the kit's signed certificate. The one
 * signature, made with the key of the project's issuing CA (the issuer of the kit's own
 * certificate: the root CA cfl made, or an enterprise intermediate; RSA-PSS/SHA-256 or
 * ECDSA/SHA-256, by its key type), covers the canonical text "cfl-kit-manifest/1\n" followed
 * by "NAME DIGEST\n" for every file in byte order of the names: each file's name is bound to
 * its digest, and the kit's set of files to the signature. The verifier takes the issuing CA
 * from the kit's own certificate file (startup/server.crt or client.crt: the leaf, then the
 * issuing chain) when it chains to startup/rootCA.pem, else rootCA.pem itself. */
#ifndef CFL_KIT_H
#define CFL_KIT_H

#include "cfl/err.h"
#include "cfl/pki.h"
#include "cfl/tls.h"

#include <limits.h>

#define CFL_KIT_MAX_FILES      256
#define CFL_KIT_MAX_FILE_BYTES (16u << 20)

/* Signs every regular file in KIT/startup/ (except signature.json and the *.key files) and
 * every file in KIT/local/ whose name ends in ".default" or ".sample" with `ca_key`, the
 * issuing CA's key; writes KIT/startup/signature.json. CFL_EINVAL for a file name with a space
 * or a control character. */
int cfl_kit_sign(const char *kit_dir, const struct cfl_pki_key *ca_key, struct cfl_err *e);

/* One file of a kit held in memory: `name` relative to the kit folder ("startup/fed_client.json",
 * "local/log_config.json.default"). */
struct cfl_kit_file {
	const char *name;
	const void *data;
	size_t len;
};

/* The text of startup/signature.json for a kit whose files are given in memory (what
 * cfl_kit_sign writes for the same files on disk, byte for byte): the files cfl_kit_sign would
 * sign are signed, the others (keys, signature.json, local/ files that are not defaults,
 * anything outside startup/ and local/) are left out. *out is a new NUL-terminated buffer
 * (free()). CFL_EINVAL for a signed name with a space or a control character, CFL_ETOOBIG for
 * more than CFL_KIT_MAX_FILES files or one over CFL_KIT_MAX_FILE_BYTES. */
int cfl_kit_manifest(const struct cfl_kit_file *files, size_t n, const struct cfl_pki_key *ca_key,
                     char **out, size_t *out_len, struct cfl_err *e);

enum cfl_kit_problem { CFL_KIT_CHANGED, CFL_KIT_MISSING, CFL_KIT_ADDED };
const char *cfl_kit_problem_name(enum cfl_kit_problem p); /* "changed", "missing", "added" */

/* Called once per problem found; `file` is relative to the kit folder. */
typedef void (*cfl_kit_problem_fn)(enum cfl_kit_problem what, const char *file, void *arg);

/* Verifies KIT/startup/signature.json: the manifest's signature by the kit's issuing CA
 * (above), then every listed file must be present with its digest, startup/ (and the signed
 * names of local/) must hold no other file but the private keys, and startup/server.key or
 * client.key must match the kit's certificate (else it is reported changed). Reports every
 * problem through `fn` (may be NULL); a manifest whose signature does not verify is reported as
 * "startup/signature.json" changed, and no file is compared with it. Returns 0 when intact,
 * CFL_EVERIFY when anything is changed, missing or added (e->msg names the first ones) or the
 * signature file is malformed, or another code when the kit cannot be read at all (CFL_ENOENT:
 * no signature.json or rootCA.pem). */
int cfl_kit_verify(const char *kit_dir, cfl_kit_problem_fn fn, void *arg, struct cfl_err *e);

/* A startup kit's runtime configuration: fed_server.json / fed_client.json read into a value.
 * Paths in the result are absolute (the kit's startup/ folder joined with the file names the
 * config gives). The file is at most 1 MiB; every string is bounded by the struct's arrays. */
#define CFL_KITCFG_NAME_MAX 256

struct cfl_kitcfg {
	int is_server;
	char kit_dir[PATH_MAX];
	char project[CFL_KITCFG_NAME_MAX];
	char name[CFL_KITCFG_NAME_MAX];     /* server: its CN; client: the site name */
	char identity[CFL_KITCFG_NAME_MAX]; /* the server CN (client: the one it expects) */
	char host[CFL_KITCFG_NAME_MAX];     /* client: host it dials */
	int port;                           /* client: port it dials; server: fed_learn_port */
	int admin_port;                     /* server */
	int secure_train;
	enum cfl_conn_sec mode; /* resolved: explicit value, else secure_train ? mtls : clear */
	char cert[PATH_MAX], key[PATH_MAX], root_ca[PATH_MAX];
	char custom_ca[PATH_MAX]; /* "" when the kit has none */
};

/* Reads KIT/startup/fed_client.json (is_server 0), fed_server.json (1) or fed_admin.json (2).
 * Returns 0, or CFL_ENOENT / CFL_EIO / CFL_ECONFIG with `e` naming the file and the field. */
int cfl_kitcfg_load(const char *kit_dir, int is_server, struct cfl_kitcfg *out, struct cfl_err *e);

/* Same from the file's text (`len` bytes, at most 1 MiB), which cfl_kitcfg_load() reads and
 * passes here: `path` names the file in messages and `kit_dir` (absolute, resolved) is the
 * kit folder the result's paths start with. Used by the fuzz target and tests. */
int cfl_kitcfg_load_mem(const char *text, size_t len, const char *path, const char *kit_dir,
                        int is_server, struct cfl_kitcfg *out, struct cfl_err *e);

/* The CA file a client trusts for its mode: customRootCA.pem in tls mode when present, else
 * rootCA.pem (SPEC §4). */
const char *cfl_kitcfg_trust_file(const struct cfl_kitcfg *c);

/* What the start-up check accepts. Never read from a kit: the program passes it, from an
 * option only the simulator and tests give (--unsigned-kit). */
enum cfl_kit_check {
	CFL_KIT_CHECK_SIGNED = 0,      /* the kit must be signed and intact (every real kit) */
	CFL_KIT_CHECK_UNSIGNED_OK = 1, /* a kit without signature.json runs unchecked, warned */
};

/* At start-up, checks the kit's own signatures (SPEC §3): every problem is logged, and the
 * error names the changed, missing or added files. A kit is checked whatever its config says
 * (secure_train plays no part: a kit's files cannot switch their own check off). 0 when intact,
 * or, with CFL_KIT_CHECK_UNSIGNED_OK only, when the kit has no startup/signature.json (the
 * simulator's kits, which it writes itself); a kit that has one is always checked. */
int cfl_kitcfg_verify_kit(const struct cfl_kitcfg *c, enum cfl_kit_check check, struct cfl_err *e);

#endif
