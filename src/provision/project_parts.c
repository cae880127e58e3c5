/* The participants of a project file: one table of keys, the name rules per type, unique
 * names, exactly one server, and the certificate CN rule (see docs/provisioning.md). */
#include "cfl/project.h"

#include "provision/project_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define DEFAULT_FED_PORT   8002
#define DEFAULT_ADMIN_PORT 8003

/* ---- participant keys -------------------------------------------------------------- */

typedef int (*part_fn)(struct cfl__pl *ld, struct cfl_participant *pt, const struct cfl__ynode *v);

static int pk_conn_sec(struct cfl__pl *ld, struct cfl_participant *pt, const struct cfl__ynode *v)
{
	return cfl__pl_conn_sec(ld, v, &pt->conn_sec);
}

static int pk_fed_port(struct cfl__pl *ld, struct cfl_participant *pt, const struct cfl__ynode *v)
{
	return cfl__pl_int(ld, "fed_learn_port", v, 1, 65535, &pt->fed_learn_port);
}

static int pk_admin_port(struct cfl__pl *ld, struct cfl_participant *pt, const struct cfl__ynode *v)
{
	return cfl__pl_int(ld, "admin_port", v, 1, 65535, &pt->admin_port);
}

static int pk_custom_ca(struct cfl__pl *ld, struct cfl_participant *pt, const struct cfl__ynode *v)
{
	return cfl__pl_path(ld, "custom_ca_cert", v, &pt->custom_ca_cert);
}

static int pk_default_host(struct cfl__pl *ld, struct cfl_participant *pt,
                           const struct cfl__ynode *v)
{
	return cfl__pl_host(ld, "default_host", v, &pt->default_host);
}

/* A single string or a list of strings (NVFlare accepts both). */
static int pk_host_names(struct cfl__pl *ld, struct cfl_participant *pt, const struct cfl__ynode *v)
{
	const struct cfl__ynode *const *items = &v;
	size_t n = 1;
	int rc;

	if (v->kind == CFL__Y_SEQ) {
		items = (const struct cfl__ynode *const *)v->kids;
		n = v->n;
	} else if (v->kind != CFL__Y_SCALAR) {
		return CFL__FAIL(ld, v,
		                 "'host_names' must be a string or a list of strings, not %s",
		                 cfl__yaml_kind_name(v));
	}
	if (n > CFL_PROJECT_MAX_HOSTS)
		return CFL__FAIL(ld, v, "too many host_names (%zu, at most %d)", n,
		                 CFL_PROJECT_MAX_HOSTS);
	pt->host_names = calloc(n ? n : 1, sizeof(char *));
	if (pt->host_names == NULL)
		return cfl__pl_oom(ld);
	for (size_t i = 0; i < n; i++) {
		rc = cfl__pl_host(ld, "host_names entry", items[i], &pt->host_names[i]);
		if (rc != 0)
			return rc;
		pt->n_host_names++;
	}
	return 0;
}

static int pk_connect_to(struct cfl__pl *ld, struct cfl_participant *pt, const struct cfl__ynode *v)
{
	static const char *const known[] = {"host", "port", "connection_security"};
	const struct cfl__ynode *seen[ARRAY_LEN(known)] = {NULL};
	int rc = 0;

	if (v->kind == CFL__Y_SCALAR)
		return cfl__pl_host(ld, "connect_to", v, &pt->connect_host);
	if (v->kind != CFL__Y_MAP)
		return CFL__FAIL(ld, v,
		                 "'connect_to' must be a host or a mapping {host, port, "
		                 "connection_security}, not %s",
		                 cfl__yaml_kind_name(v));
	for (size_t i = 0; i + 1 < v->n && rc == 0; i += 2) {
		const struct cfl__ynode *k = v->kids[i], *val = v->kids[i + 1];
		size_t j = 0;

		while (j < ARRAY_LEN(known) && strcmp(k->str, known[j]) != 0)
			j++;
		if (j == ARRAY_LEN(known)) {
			cfl__pl_warn(ld, k, "unknown key '%s' in connect_to (ignored)",
			             cfl__pl_q(ld, k->str));
			continue;
		}
		if (seen[j] != NULL)
			return CFL__FAIL(ld, k,
			                 "duplicate key '%s' in connect_to (first at line %d)",
			                 known[j], seen[j]->line);
		seen[j] = k;
		if (cfl__yaml_is_null(val))
			continue;
		if (j == 0)
			rc = cfl__pl_host(ld, "connect_to host", val, &pt->connect_host);
		else if (j == 1)
			rc = cfl__pl_int(ld, "connect_to port", val, 1, 65535, &pt->connect_port);
		else
			rc = cfl__pl_conn_sec(ld, val, &pt->connect_sec);
	}
	return rc;
}

static int pk_role(struct cfl__pl *ld, struct cfl_participant *pt, const struct cfl__ynode *v)
{
	static const char *const roles[] = {"project_admin", "org_admin", "lead", "member"};
	int rc = cfl__pl_str(ld, "role", v);

	if (rc != 0)
		return rc;
	for (size_t i = 0; i < ARRAY_LEN(roles); i++)
		if (strcmp(v->str, roles[i]) == 0)
			return cfl__pl_dup(ld, "role", v, &pt->role);
	return CFL__FAIL(ld, v,
	                 "invalid role '%s' (allowed: project_admin, org_admin, lead, member)",
	                 cfl__pl_q(ld, v->str));
}

#define T_SERVER (1u << CFL_PT_SERVER)
#define T_CLIENT (1u << CFL_PT_CLIENT)
#define T_ADMIN  (1u << CFL_PT_ADMIN)
#define T_ALL    (T_SERVER | T_CLIENT | T_ADMIN)

/* name, type and org are read first (they name the participant in messages and decide
 * which keys apply), so they have no handler here. */
static const struct part_key {
	const char *key;
	unsigned types;
	part_fn fn;
} part_keys[] = {
        {"name", T_ALL, NULL},
        {"type", T_ALL, NULL},
        {"org", T_ALL, NULL},
        {"connection_security", T_ALL, pk_conn_sec},
        {"fed_learn_port", T_SERVER, pk_fed_port},
        {"admin_port", T_SERVER, pk_admin_port},
        {"host_names", T_SERVER, pk_host_names},
        {"default_host", T_SERVER, pk_default_host},
        {"custom_ca_cert", T_SERVER | T_CLIENT, pk_custom_ca},
        {"connect_to", T_CLIENT | T_ADMIN, pk_connect_to},
        {"role", T_ADMIN, pk_role},
};

static const char *const type_names[] = {"server", "client", "admin"};

/* ---- participants ------------------------------------------------------------------ */

static size_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)h;
}

/* Adds parts[idx].name; returns the 1-based index of an earlier equal name, or 0. */
static size_t names_add(struct cfl__pl *ld, size_t idx)
{
	const char *name = ld->p->parts[idx].name;
	size_t i = name_hash(name) & (ld->names.cap - 1);

	while (ld->names.slot[i] != 0) {
		size_t other = ld->names.slot[i] - 1;

		if (ld->p->parts[other].name != NULL && strcmp(ld->p->parts[other].name, name) == 0)
			return other + 1;
		i = (i + 1) & (ld->names.cap - 1);
	}
	ld->names.slot[i] = idx + 1;
	return 0;
}

/* A required string key of a participant: the value node, or an error. */
static int required(struct cfl__pl *ld, const struct cfl__ynode *m, const char *key,
                    const struct cfl__ynode **out)
{
	const struct cfl__ynode *v = cfl__pl_find(m, key);

	*out = NULL;
	if (v == NULL)
		return CFL__FAIL(ld, m, "missing required key '%s'", key);
	if (cfl__yaml_is_null(v))
		return CFL__FAIL(ld, v, "required key '%s' has no value", key);
	*out = v;
	return cfl__pl_str(ld, key, v);
}

static int check_type(struct cfl__pl *ld, const struct cfl__ynode *v, enum cfl_ptype *out)
{
	for (size_t i = 0; i < ARRAY_LEN(type_names); i++) {
		if (strcmp(v->str, type_names[i]) == 0) {
			*out = (enum cfl_ptype)i;
			return 0;
		}
	}
	if (strcmp(v->str, "relay") == 0)
		return CFL__FAIL(ld, v, "relay participants are not supported yet");
	if (strcmp(v->str, "overseer") == 0)
		return CFL__FAIL(
		        ld, v,
		        "overseer participants (NVFlare high availability) are not supported "
		        "(allowed: server, client, admin)");
	return CFL__FAIL(ld, v, "invalid type '%s' (allowed: server, client, admin)",
	                 cfl__pl_q(ld, v->str));
}

/* The name rules by type; client and admin names are certificate CNs. */
static int check_name(struct cfl__pl *ld, const struct cfl_participant *pt,
                      const struct cfl__ynode *v)
{
	const char *s = pt->name, *t = type_names[pt->type];
	int ok;

	switch (pt->type) {
	case CFL_PT_SERVER:
		if (!cfl__is_host(s))
			return CFL__FAIL(ld, v,
			                 "invalid server name '%s' (allowed: " CFL__HOST_RULE ")",
			                 cfl__pl_q(ld, s));
		return 0;
	case CFL_PT_CLIENT:
		ok = cfl__is_word(s, "_-");
		if (!ok)
			return CFL__FAIL(
			        ld, v,
			        "invalid client name '%s' (allowed: letters, digits, '_' and '-')",
			        cfl__pl_q(ld, s));
		/* The messaging layer calls the FL server's cell "server": a site of that name
		 * could not be told apart from it. */
		if (strcmp(s, "server") == 0)
			return CFL__FAIL(ld, v,
			                 "the client name 'server' is reserved for the FL server");
		break;
	case CFL_PT_ADMIN:
	default:
		if (!cfl__is_email(s))
			return CFL__FAIL(
			        ld, v,
			        "invalid admin name '%s' (allowed: an e-mail address "
			        "user@domain.tld, the user part of letters, digits, '.', '_', "
			        "'+' and '-', not starting with '.')",
			        cfl__pl_q(ld, s));
		break;
	}
	if (v->len > CFL_CN_MAX)
		return CFL__FAIL(
		        ld, v,
		        "%s name is longer than %d bytes (it is the certificate CN; at most %d)", t,
		        CFL_CN_MAX, CFL_CN_MAX);
	return 0;
}

static int check_server_count(struct cfl__pl *ld, size_t idx, const struct cfl__ynode *type_v)
{
	if (ld->server_at == NULL) {
		ld->server_at = type_v;
		ld->server_idx = idx;
		return 0;
	}
	return CFL__FAIL(
	        ld, type_v,
	        "a second server (the first is '%s' at line %d; exactly one server is allowed)",
	        cfl__pl_q(ld, ld->p->parts[ld->server_idx].name),
	        ld->p->parts[ld->server_idx].line);
}

/* name, type, org: checked before anything else of the participant. */
static int read_identity(struct cfl__pl *ld, const struct cfl__ynode *m, size_t idx)
{
	struct cfl_participant *pt = &ld->p->parts[idx];
	const struct cfl__ynode *name_v, *type_v, *org_v;
	size_t first;
	int rc;

	if ((rc = required(ld, m, "name", &name_v)) != 0)
		return rc;
	ld->pname = name_v->str;
	if ((rc = required(ld, m, "type", &type_v)) != 0 ||
	    (rc = check_type(ld, type_v, &pt->type)) != 0)
		return rc;
	if ((rc = required(ld, m, "org", &org_v)) != 0)
		return rc;
	if (!cfl__is_word(org_v->str, "_"))
		return CFL__FAIL(ld, org_v, "invalid org '%s' (allowed: letters, digits and '_')",
		                 cfl__pl_q(ld, org_v->str));
	if (org_v->len > CFL_CN_MAX)
		return CFL__FAIL(ld, org_v, "org is longer than %d bytes (it is the certificate O)",
		                 CFL_CN_MAX);
	if ((rc = cfl__pl_dup(ld, "name", name_v, &pt->name)) != 0 ||
	    (rc = cfl__pl_dup(ld, "org", org_v, &pt->org)) != 0 ||
	    (rc = check_name(ld, pt, name_v)) != 0)
		return rc;
	first = names_add(ld, idx);
	if (first != 0)
		return CFL__FAIL(ld, name_v,
		                 "duplicate participant name (first defined at line %d; names must "
		                 "be unique)",
		                 ld->p->parts[first - 1].line);
	return pt->type == CFL_PT_SERVER ? check_server_count(ld, idx, type_v) : 0;
}

/* NVFlare 2.7 keeps a long server name as default_host and cuts the CN (X.509's upper
 * bound for a CN is 64); we do the same and say so. */
static int server_cn_rule(struct cfl__pl *ld, struct cfl_participant *pt,
                          const struct cfl__ynode *m)
{
	if (strlen(pt->name) <= CFL_CN_MAX)
		return 0;
	if (pt->default_host != NULL) {
		cfl__pl_warn(ld, m,
		             "server name '%s' is longer than %d bytes: the certificate CN is cut "
		             "to %d bytes",
		             cfl__pl_q(ld, pt->name), CFL_CN_MAX, CFL_CN_MAX);
		return 0;
	}
	cfl__pl_warn(ld, m,
	             "server name '%s' is longer than %d bytes: the certificate CN is cut to %d "
	             "bytes and "
	             "default_host keeps the full name",
	             cfl__pl_q(ld, pt->name), CFL_CN_MAX, CFL_CN_MAX);
	pt->default_host = strdup(pt->name);
	if (pt->default_host == NULL)
		return cfl__pl_oom(ld);
	return 0;
}

static int read_keys(struct cfl__pl *ld, struct cfl_participant *pt, const struct cfl__ynode *m)
{
	const struct cfl__ynode *seen[ARRAY_LEN(part_keys)] = {NULL};

	for (size_t i = 0; i + 1 < m->n; i += 2) {
		const struct cfl__ynode *k = m->kids[i], *v = m->kids[i + 1];
		size_t j = 0;
		int rc;

		while (j < ARRAY_LEN(part_keys) && strcmp(k->str, part_keys[j].key) != 0)
			j++;
		if (j == ARRAY_LEN(part_keys)) {
			cfl__pl_warn(ld, k, "unknown key '%s' (ignored)", cfl__pl_q(ld, k->str));
			continue;
		}
		if (seen[j] != NULL)
			return CFL__FAIL(ld, k, "duplicate key '%s' (first at line %d)",
			                 part_keys[j].key, seen[j]->line);
		seen[j] = k;
		if (!(part_keys[j].types & (1u << pt->type))) {
			cfl__pl_warn(ld, k, "key '%s' does not apply to a %s (ignored)",
			             part_keys[j].key, type_names[pt->type]);
			continue;
		}
		if (part_keys[j].fn == NULL || cfl__yaml_is_null(v))
			continue;
		rc = part_keys[j].fn(ld, pt, v);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int read_participant(struct cfl__pl *ld, const struct cfl__ynode *m, size_t idx)
{
	struct cfl_participant *pt = &ld->p->parts[idx];
	int rc;

	ld->pname = NULL;
	ld->pidx = idx + 1;
	pt->line = m->line;
	pt->col = m->col;
	pt->fed_learn_port = DEFAULT_FED_PORT;
	pt->admin_port = DEFAULT_ADMIN_PORT;
	if (m->kind != CFL__Y_MAP)
		return CFL__FAIL(ld, m,
		                 "a participant must be a mapping with name, type and org, not %s",
		                 cfl__yaml_kind_name(m));
	if ((rc = read_identity(ld, m, idx)) != 0 || (rc = read_keys(ld, pt, m)) != 0)
		return rc;
	if (pt->type == CFL_PT_ADMIN && pt->role == NULL)
		return CFL__FAIL(ld, m,
		                 "missing required key 'role' (allowed: project_admin, org_admin, "
		                 "lead, member)");
	if (pt->type == CFL_PT_SERVER)
		return server_cn_rule(ld, pt, m);
	return 0;
}

int cfl__pl_participants(struct cfl__pl *ld, const struct cfl__ynode *v)
{
	struct cfl_project *p = ld->p;
	size_t cap = 16;
	int rc;

	if (v->kind != CFL__Y_SEQ)
		return CFL__FAIL(ld, v, "'participants' must be a list, not %s",
		                 cfl__yaml_kind_name(v));
	if (v->n == 0)
		return CFL__FAIL(ld, v, "'participants' is empty (exactly one server is required)");
	if (v->n > CFL_PROJECT_MAX_PARTICIPANTS)
		return CFL__FAIL(ld, v, "too many participants (%zu, at most %d)", v->n,
		                 CFL_PROJECT_MAX_PARTICIPANTS);
	while (cap < 2 * v->n)
		cap *= 2;
	p->parts = calloc(v->n, sizeof(*p->parts));
	ld->names.slot = calloc(cap, sizeof(size_t));
	ld->names.cap = cap;
	if (p->parts == NULL || ld->names.slot == NULL)
		return cfl__pl_oom(ld);
	for (size_t i = 0; i < v->n; i++) {
		p->n_parts = i + 1; /* so that cfl_project_free sees what this one holds */
		rc = read_participant(ld, v->kids[i], i);
		if (rc != 0)
			return rc;
	}
	ld->pname = NULL;
	ld->pidx = 0;
	if (ld->server_at == NULL)
		return CFL__FAIL(ld, v, "no server participant (exactly one is required)");
	return 0;
}
