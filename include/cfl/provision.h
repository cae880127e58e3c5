/* Provisioning: a project file in, signed startup kits out (SPEC §2). */
#ifndef CFL_PROVISION_H
#define CFL_PROVISION_H

#include "cfl/err.h"
#include "cfl/pki.h"

#include <stddef.h>

struct cfl_provision_opts {
	const char *project_path; /* project.yml */
	const char *workspace;    /* default "workspace" */
	int key_type;             /* -1: as the project says; else an enum cfl_key_type */
	const char *cfl_path;     /* recorded in the start scripts as a fallback, may be NULL */
};

/* Loads and validates the project, then writes WORKSPACE/<project>/prod_NN (next free NN)
 * atomically: everything is built in a temporary folder renamed at the end; on any error
 * nothing new is left in the workspace. Reuses WORKSPACE/<project>/state/ (root CA) when
 * present, else creates it. On success the output folder is written to out_dir.
 * Blocking (key generation); not thread-safe against another run on the same workspace. */
int cfl_provision(const struct cfl_provision_opts *opts, char *out_dir, size_t out_size,
                  struct cfl_err *e);

#endif
