/* The server's admission settings: local/resources.json read into the limits of cfl/conn.h's
 * admission control and the login timeout (docs/server-client.md, "Admission control"). */
#ifndef CFL_SERVER_ADMISSION_H
#define CFL_SERVER_ADMISSION_H

#include "cfl/conn.h"
#include "cfl/err.h"

#include <stddef.h>
#include <stdint.h>

#define CFL__RESOURCES_MAX_BYTES (1u << 20)

struct cfl__server_resources {
	struct cfl_admit_limits admit; /* 0 fields: the defaults */
	uint64_t login_timeout_ms;     /* 0: the authentication layer's default */
};

/* Parses the text of a resources.json (`len` bytes, at most CFL__RESOURCES_MAX_BYTES; `path`
 * names it in messages). Keys it does not know are left alone (the file holds other settings);
 * a known key with a wrong type or range is CFL_ECONFIG naming the file and the key. */
int cfl__server_resources_parse(const char *text, size_t len, const char *path,
                                struct cfl__server_resources *out, struct cfl_err *e);

/* Reads LOCAL_DIR/resources.json when it exists (else every setting is its default), raises
 * the soft descriptor limit to the hard one, and logs the limits in force once `a` is made. */
int cfl__server_resources_load(const char *local_dir, struct cfl__server_resources *out,
                               struct cfl_err *e);

/* Makes the admission control for the server's listeners from `r` and logs its limits. */
int cfl__server_admit_new(struct cfl_loop *loop, const struct cfl__server_resources *r,
                          struct cfl_admit **out, struct cfl_err *e);

#endif
