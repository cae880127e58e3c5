/* The project file (FLARE project.yml, api_version 3): loading and validation.
 *
 * The loader reads YAML with libyaml, checks every rule of docs/provisioning.md and reports
 * the first violation as "FILE:LINE:COL: participant 'NAME': RULE" in `e` (CFL_ECONFIG, or
 * CFL_EPARSE for YAML syntax). Warnings (unknown builders, truncated CN...) go to the log at
 * CFL_LOG_WARN. Bounds: the file is at most CFL_PROJECT_MAX_BYTES, at most
 * CFL_PROJECT_MAX_PARTICIPANTS participants, every string at most 4096 bytes. */
#ifndef CFL_PROJECT_H
#define CFL_PROJECT_H

#include "cfl/err.h"
#include "cfl/pki.h"
#include "cfl/tls.h" /* enum cfl_conn_sec */

#include <stddef.h>

#define CFL_PROJECT_MAX_BYTES         (16u << 20)
#define CFL_PROJECT_MAX_PARTICIPANTS  100000
#define CFL_PROJECT_MAX_HOSTS         64
#define CFL_CN_MAX                    64
#define CFL_HOSTNAME_MAX              255
#define CFL_PROJECT_DEFAULT_CERT_DAYS 360 /* `cert_validity_days` when absent */
#define CFL_PROJECT_MAX_CERT_DAYS     3650

enum cfl_ptype {
	CFL_PT_SERVER = 0,
	CFL_PT_CLIENT,
	CFL_PT_ADMIN,
};

struct cfl_participant {
	char *name;
	enum cfl_ptype type;
	char *org;
	enum cfl_conn_sec conn_sec; /* as written, CFL_SEC_UNSET when absent */
	char *custom_ca_cert;       /* path as written, NULL when absent */
	int line, col;              /* where the participant's mapping starts (1-based) */

	/* server */
	int fed_learn_port; /* default 8002 */
	int admin_port;     /* default 8003 */
	char **host_names;  /* as written, in order */
	size_t n_host_names;
	char *default_host; /* as written, or the full name when the CN was truncated; NULL */

	/* client and admin: connect_to */
	char *connect_host;            /* NULL when absent */
	int connect_port;              /* 0 when absent */
	enum cfl_conn_sec connect_sec; /* from the connect_to map, CFL_SEC_UNSET when absent */

	/* admin */
	char *role; /* project_admin, org_admin, lead, member */
};

struct cfl_project {
	char *path; /* the file it came from */
	char *name;
	char *description;
	enum cfl_conn_sec conn_sec; /* project level, CFL_SEC_UNSET when absent */
	char *custom_ca_cert;       /* project level path, NULL when absent */
	enum cfl_key_type key_type; /* `key_type:` top level or cert builder arg; default P-256 */
	int cert_validity_days;     /* 1..3650; 0 = unset (cfl_project_cert_days gives 360) */
	struct cfl_participant *parts;
	size_t n_parts;
};

/* Loads and validates `path`, with the files its `include:` keys name (docs/provisioning.md:
 * relative to the including file, never outside the folder of `path`).
 * *out is owned by the caller (cfl_project_free). */
int cfl_project_load(const char *path, struct cfl_project **out, struct cfl_err *e);

/* Same from memory; `name` is used in messages. There is no folder to resolve `include:`
 * against, so an include is refused. Used by tests. */
int cfl_project_load_mem(const char *data, size_t len, const char *name, struct cfl_project **out,
                         struct cfl_err *e);

void cfl_project_free(struct cfl_project *p);

/* The single server participant (validation guarantees there is exactly one). */
const struct cfl_participant *cfl_project_server(const struct cfl_project *p);

/* Resolved values (SPEC §4, §6). */
/* Validity of the certificates provisioning issues: cert_validity_days, else 360. */
int cfl_project_cert_days(const struct cfl_project *p);
/* participant (connect_to map first) → project → mtls */
enum cfl_conn_sec cfl_project_conn_sec(const struct cfl_project *p,
                                       const struct cfl_participant *pt);
/* participant → project custom_ca_cert, or NULL */
const char *cfl_project_custom_ca(const struct cfl_project *p, const struct cfl_participant *pt);
/* The server certificate CN: the server name, cut to CFL_CN_MAX bytes. */
void cfl_project_server_cn(const struct cfl_project *p, char *buf, size_t size);
/* The server's default host: default_host, else the full server name. */
const char *cfl_project_default_host(const struct cfl_project *p);
/* Host and port a client/admin dials: connect_to host, else default host; connect_to port,
 * else fed_learn_port (client) or admin_port (admin). */
const char *cfl_project_target_host(const struct cfl_project *p, const struct cfl_participant *pt);
int cfl_project_target_port(const struct cfl_project *p, const struct cfl_participant *pt);

#endif
