/* Internal to provisioning: kit content builders shared by provision.c. */
#ifndef CFL_PROVISION_INTERNAL_H
#define CFL_PROVISION_INTERNAL_H

#include "cfl/err.h"
#include "cfl/kit.h"
#include "cfl/project.h"

struct cfl__ca;

/* One participant's kit to build (provision, cert approve). */
struct cfl__kit_spec {
	const char *kit_dir; /* new or empty folder; the path shown in messages */
	/* >= 0: the kit is made as `name` in this folder and must not exist yet (provision);
	 * -1: kit_dir is used as a path and may be an empty folder (cert approve). */
	int root_fd;
	const char *name;
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

/* A kit's files in memory, written at once by cfl__kit_mem_write (kitbuild.c). */
#define CFL__KIT_MEM_MAX 16

struct cfl__kit_mem {
	struct cfl_kit_file f[CFL__KIT_MEM_MAX]; /* names relative to the kit folder */
	unsigned mode[CFL__KIT_MEM_MAX];
	char *owned[CFL__KIT_MEM_MAX];        /* freed by cfl__kit_mem_release; NULL: static text */
	unsigned char wipe[CFL__KIT_MEM_MAX]; /* a secret: overwritten before it is freed */
	size_t n;
};

/* Adds a file; `owned` (malloc'd text, may be NULL) is freed with the list, also when this
 * fails (CFL_ETOOBIG: the list is full). */
int cfl__kit_mem_add(struct cfl__kit_mem *m, const char *name, const void *data, size_t len,
                     unsigned mode, char *owned, struct cfl_err *e);
void cfl__kit_mem_release(struct cfl__kit_mem *m);
/* Creates the kit folder (s->root_fd and s->name, else s->kit_dir, which may then be an empty
 * folder) with startup/, local/ and transfer/, and writes every file of `m` into it, each
 * with one open (relative to the kit folder, created with its final mode), write and close. */
int cfl__kit_mem_write(const struct cfl__kit_mem *m, const struct cfl__kit_spec *s,
                       struct cfl_err *e);

/* Adds the start/stop scripts of a participant (startup/, mode 0755). */
int cfl__kit_add_scripts(struct cfl__kit_mem *m, const struct cfl_participant *pt,
                         const char *cfl_path, struct cfl_err *e);

/* Adds the four local/ defaults. */
int cfl__kit_add_local(struct cfl__kit_mem *m, const struct cfl_participant *pt, struct cfl_err *e);
/* Writes the four local/ defaults into local_dir. */
int cfl__kit_write_local(const char *local_dir, const struct cfl_participant *pt,
                         struct cfl_err *e);

/* Adds startup/fed_server.json, fed_client.json or fed_admin.json.
 * has_custom_ca: customRootCA.pem is part of this kit. */
int cfl__kit_add_config(struct cfl__kit_mem *m, const struct cfl_project *p,
                        const struct cfl_participant *pt, int has_custom_ca, struct cfl_err *e);

/* Writes root/name into buf (PATH_MAX bytes): the kit folder of participant `name`, checked
 * to be a new folder directly inside `root` before anything is written there, whatever the
 * project's name rules let through: `name` must be one path component (not empty, ".", ".."
 * or holding '/') and nothing may exist at that path yet (no link to elsewhere). CFL_ECONFIG
 * with the reason, or CFL_ETOOBIG. */
int cfl__kit_dir(char *buf, const char *root, const char *name, struct cfl_err *e);
/* The same without looking at the file system: for a kit made with mkdirat, which fails on
 * anything already there. */
int cfl__kit_dir_name(char *buf, const char *root, const char *name, struct cfl_err *e);

/* Runs fn(arg, i, e) for every i in 0..n-1 on up to `threads` threads (0: one per core),
 * each thread with its own cfl_err. After a failure no new index is started; the error
 * returned (and put into `e`) is that of the lowest failing index, which is the one a
 * sequential loop would have stopped at: every lower index was run. */
int cfl__parallel(size_t n, int threads, int (*fn)(void *arg, size_t i, struct cfl_err *e),
                  void *arg, struct cfl_err *e);

#endif
