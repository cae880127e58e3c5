/* A startup kit's runtime configuration: fed_server.json / fed_client.json read into a value.
 *
 * Paths in the result are absolute (the kit's startup/ folder joined with the file names the
 * config gives). The file is at most 1 MiB; every string is bounded by the struct's arrays. */
#ifndef CFL_KITCFG_H
#define CFL_KITCFG_H

#include "cfl/err.h"
#include "cfl/project.h"

#include <limits.h>

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

/* The CA file a client trusts for its mode: customRootCA.pem in tls mode when present, else
 * rootCA.pem (SPEC §4). */
const char *cfl_kitcfg_trust_file(const struct cfl_kitcfg *c);

/* At start-up, checks the kit's own signatures (SPEC §3): every problem is logged, and the
 * error names the changed, missing or added files. 0 when intact, or when the kit is unsigned
 * (no startup/signature.json) and secure_train is off (the simulator's kits). */
int cfl_kitcfg_verify_kit(const struct cfl_kitcfg *c, struct cfl_err *e);

#endif
