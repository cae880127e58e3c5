/* The project file (FLARE project.yml, api_version 3): load, validate, resolve.
 *
 * The YAML text becomes a small bounded tree (project_yaml.c); this file walks its top level
 * with a table of keys (one handler each; unknown keys get a warning, as NVFlare ignores extra
 * properties), project_parts.c the participants, project_value.c reads typed values and
 * formats messages. The first rule broken is reported as
 * "FILE:LINE:COL: participant 'NAME': RULE"; the rules are listed in docs/provisioning.md. */
#include "cfl/project.h"

#include "provision/project_int.h"
#include "util/fs.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- top-level keys ---------------------------------------------------------------- */

typedef int (*top_fn)(struct cfl__pl *ld, const struct cfl__ynode *v);

static int top_api_version(struct cfl__pl *ld, const struct cfl__ynode *v)
{
	if (v->kind != CFL__Y_SCALAR)
		return CFL__FAIL(ld, v, "'api_version' must be 3, not %s", cfl__yaml_kind_name(v));
	if (strcmp(v->str, "3") != 0)
		return CFL__FAIL(ld, v, "unsupported api_version '%s' (allowed: 3)",
		                 cfl__pl_q(ld, v->str));
	return 0;
}

/* The name is the workspace folder and the root CA's CN. */
static int top_name(struct cfl__pl *ld, const struct cfl__ynode *v)
{
	int rc = cfl__pl_str(ld, "name", v);

	if (rc != 0)
		return rc;
	if (!cfl__is_word(v->str, "_.-") || v->str[0] == '.')
		return CFL__FAIL(ld, v,
		                 "invalid project name '%s' (allowed: letters, digits, '_', '.' "
		                 "and '-', not starting with '.')",
		                 cfl__pl_q(ld, v->str));
	if (v->len > CFL_CN_MAX)
		return CFL__FAIL(
		        ld, v,
		        "project name is longer than %d bytes (it is the root CA's CN; at most %d)",
		        CFL_CN_MAX, CFL_CN_MAX);
	return cfl__pl_dup(ld, "name", v, &ld->p->name);
}

static int top_description(struct cfl__pl *ld, const struct cfl__ynode *v)
{
	return cfl__pl_dup(ld, "description", v, &ld->p->description);
}

static int top_conn_sec(struct cfl__pl *ld, const struct cfl__ynode *v)
{
	return cfl__pl_conn_sec(ld, v, &ld->p->conn_sec);
}

static int top_custom_ca(struct cfl__pl *ld, const struct cfl__ynode *v)
{
	return cfl__pl_path(ld, "custom_ca_cert", v, &ld->p->custom_ca_cert);
}

static int top_key_type(struct cfl__pl *ld, const struct cfl__ynode *v)
{
	ld->top_kt_at = v;
	return cfl__pl_key_type(ld, v, &ld->p->key_type);
}

static int top_cert_days(struct cfl__pl *ld, const struct cfl__ynode *v)
{
	return cfl__pl_int(ld, "cert_validity_days", v, 1, CFL_PROJECT_MAX_CERT_DAYS,
	                   &ld->p->cert_validity_days);
}

static int top_packager(struct cfl__pl *ld, const struct cfl__ynode *v)
{
	cfl__pl_warn(ld, v, "'packager' is not supported by cfl and is ignored");
	return 0;
}

/* NVFlare builder class paths: cfl builds these itself (TemplateBuilder's content is built
 * into cfl); anything else is reported and skipped. */
static const char *const builders_done[] = {"WorkspaceBuilder", "StaticFileBuilder", "CertBuilder",
                                            "SignatureBuilder", "TemplateBuilder"};

static int cert_builder_args(struct cfl__pl *ld, const struct cfl__ynode *args)
{
	const struct cfl__ynode *kt = cfl__pl_find(args, "key_type");

	if (kt == NULL || cfl__yaml_is_null(kt))
		return 0;
	ld->builder_kt_at = kt;
	return cfl__pl_key_type(ld, kt, &ld->builder_kt);
}

static int read_builder(struct cfl__pl *ld, const struct cfl__ynode *b)
{
	const struct cfl__ynode *path, *args;
	const char *cls;
	size_t i = 0;
	int rc;

	if (b->kind != CFL__Y_MAP)
		return CFL__FAIL(ld, b, "a builder must be a mapping {path, args}, not %s",
		                 cfl__yaml_kind_name(b));
	for (size_t k = 0; k + 1 < b->n; k += 2) {
		const struct cfl__ynode *key = b->kids[k];

		if (strcmp(key->str, "path") != 0 && strcmp(key->str, "args") != 0)
			cfl__pl_warn(ld, key, "unknown key '%s' in builder (ignored)",
			             cfl__pl_q(ld, key->str));
	}
	path = cfl__pl_find(b, "path");
	if (path == NULL || cfl__yaml_is_null(path))
		return CFL__FAIL(ld, b,
		                 "builder without 'path' (a class path such as "
		                 "nvflare.lighter.impl.cert.CertBuilder)");
	if ((rc = cfl__pl_str(ld, "path", path)) != 0)
		return rc;
	cls = strrchr(path->str, '.');
	cls = cls != NULL ? cls + 1 : path->str;
	while (i < ARRAY_LEN(builders_done) && strcmp(cls, builders_done[i]) != 0)
		i++;
	if (i == ARRAY_LEN(builders_done))
		cfl__pl_warn(ld, path, "builder '%s' is not implemented by cfl and is ignored",
		             cfl__pl_q(ld, path->str));
	args = cfl__pl_find(b, "args");
	if (args == NULL || cfl__yaml_is_null(args))
		return 0;
	if (args->kind != CFL__Y_MAP)
		return CFL__FAIL(ld, args, "'args' of builder '%s' must be a mapping, not %s",
		                 cfl__pl_q(ld, path->str), cfl__yaml_kind_name(args));
	return strcmp(cls, "CertBuilder") == 0 ? cert_builder_args(ld, args) : 0;
}

static int top_builders(struct cfl__pl *ld, const struct cfl__ynode *v)
{
	int rc;

	if (v->kind != CFL__Y_SEQ)
		return CFL__FAIL(ld, v, "'builders' must be a list, not %s",
		                 cfl__yaml_kind_name(v));
	for (size_t i = 0; i < v->n; i++)
		if ((rc = read_builder(ld, v->kids[i])) != 0)
			return rc;
	return 0;
}

static const struct top_key {
	const char *key;
	top_fn fn;
	int required;
} top_keys[] = {
        {"api_version", top_api_version, 1},
        {"name", top_name, 1},
        {"description", top_description, 0},
        {"participants", cfl__pl_participants, 1},
        {"connection_security", top_conn_sec, 0},
        {"custom_ca_cert", top_custom_ca, 0},
        {"builders", top_builders, 0},
        {"packager", top_packager, 0},
        {"key_type", top_key_type, 0},
        {"cert_validity_days", top_cert_days, 0},
};

static int check_required(struct cfl__pl *ld, const struct cfl__ynode *root,
                          const struct cfl__ynode *const *seen)
{
	for (size_t j = 0; j < ARRAY_LEN(top_keys); j++) {
		if (!top_keys[j].required)
			continue;
		if (seen[j] == NULL)
			return CFL__FAIL(ld, root, "missing required key '%s'%s", top_keys[j].key,
			                 top_keys[j].fn == top_api_version ? " (allowed: 3)" : "");
		if (cfl__yaml_is_null(cfl__pl_find(root, top_keys[j].key)))
			return CFL__FAIL(ld, seen[j], "required key '%s' has no value",
			                 top_keys[j].key);
	}
	return 0;
}

/* The key type may be given at the top level (cfl) or as a CertBuilder arg; two different
 * values would be a silent surprise, so they are an error. */
static int settle_key_type(struct cfl__pl *ld)
{
	if (ld->builder_kt_at == NULL)
		return 0;
	if (ld->top_kt_at != NULL && ld->p->key_type != ld->builder_kt)
		return CFL__FAIL(
		        ld, ld->builder_kt_at,
		        "key_type '%s' of CertBuilder conflicts with the top-level key_type '%s'",
		        cfl__pl_q(ld, ld->builder_kt_at->str), cfl__pl_q(ld, ld->top_kt_at->str));
	ld->p->key_type = ld->builder_kt;
	return 0;
}

static int read_top(struct cfl__pl *ld, const struct cfl__ynode *root)
{
	const struct cfl__ynode *seen[ARRAY_LEN(top_keys)] = {NULL};
	int rc;

	if (root == NULL)
		return cfl_err_set(ld->e, CFL_ECONFIG, "%s:1:1: the project file is empty",
		                   ld->file);
	if (root->kind != CFL__Y_MAP)
		return CFL__FAIL(ld, root,
		                 "the project file must be a mapping (api_version, name, "
		                 "participants, ...), not %s",
		                 cfl__yaml_kind_name(root));
	for (size_t i = 0; i + 1 < root->n; i += 2) {
		const struct cfl__ynode *k = root->kids[i], *v = root->kids[i + 1];
		size_t j = 0;

		while (j < ARRAY_LEN(top_keys) && strcmp(k->str, top_keys[j].key) != 0)
			j++;
		if (j == ARRAY_LEN(top_keys)) {
			cfl__pl_warn(ld, k, "unknown key '%s' (ignored)", cfl__pl_q(ld, k->str));
			continue;
		}
		if (seen[j] != NULL)
			return CFL__FAIL(ld, k, "duplicate key '%s' (first at line %d)",
			                 top_keys[j].key, seen[j]->line);
		seen[j] = k;
		if (!cfl__yaml_is_null(v) && (rc = top_keys[j].fn(ld, v)) != 0)
			return rc;
	}
	if ((rc = check_required(ld, root, seen)) != 0)
		return rc;
	return settle_key_type(ld);
}

/* ---- public API -------------------------------------------------------------------- */

/* Reads the tree (already expanded) into a new project. */
static int read_project(struct cfl__pl *ld, const struct cfl__ynode *root)
{
	int rc;

	ld->p = calloc(1, sizeof(*ld->p));
	if (ld->p == NULL || (ld->p->path = strdup(ld->file)) == NULL)
		return cfl__pl_oom(ld);
	ld->p->key_type = CFL_KEY_P256;
	rc = read_top(ld, root);
	free(ld->names.slot);
	return rc;
}

int cfl__project_load_at(const char *data, size_t len, const char *name, const char *dir,
                         const char *self, struct cfl_project **out, struct cfl_err *e)
{
	struct cfl__pl ld = {.file = name != NULL ? name : "<memory>", .e = e};
	struct cfl__ynode *root = NULL;
	struct cfl__yinc inc;
	int rc;

	cfl_err_clear(e);
	if (out == NULL || (data == NULL && len > 0))
		return cfl_err_set(e, CFL_EINVAL, "%s: no project data", ld.file);
	*out = NULL;
	if (len > CFL_PROJECT_MAX_BYTES)
		return cfl_err_set(e, CFL_ETOOBIG,
		                   "%s: larger than %u bytes (the limit for a project file)",
		                   ld.file, CFL_PROJECT_MAX_BYTES);
	if ((rc = cfl__yinc_init(&inc, dir, self, ld.file, e)) == 0 &&
	    (rc = cfl__yaml_load(data != NULL ? data : "", len, ld.file, &root, e)) == 0 &&
	    (rc = cfl__yinc_expand(&inc, root, ld.file)) == 0)
		rc = read_project(&ld, root);
	cfl__yaml_free(root);
	cfl__yinc_free(&inc);
	if (rc != 0) {
		cfl_project_free(ld.p);
		return rc;
	}
	*out = ld.p;
	return 0;
}

int cfl_project_load_mem(const char *data, size_t len, const char *name, struct cfl_project **out,
                         struct cfl_err *e)
{
	return cfl__project_load_at(data, len, name, NULL, NULL, out, e);
}

int cfl_project_load(const char *path, struct cfl_project **out, struct cfl_err *e)
{
	const char *slash = path != NULL ? strrchr(path, '/') : NULL;
	char dir[PATH_MAX], *buf = NULL;
	size_t len = 0;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (path == NULL)
		return cfl_err_set(e, CFL_EINVAL, "no project file");
	/* Includes resolve against the folder the project file is in, as named. */
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if ((size_t)(slash - path) >= sizeof(dir))
		return cfl_err_set(e, CFL_EINVAL, "'%s': path too long", path);
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	rc = cfl__fs_read_file(path, CFL_PROJECT_MAX_BYTES, &buf, &len, e);
	if (rc != 0)
		return rc;
	rc = cfl__project_load_at(buf, len, path, dir, path, out, e);
	free(buf);
	return rc;
}

static void participant_release(struct cfl_participant *pt)
{
	free(pt->name);
	free(pt->org);
	free(pt->custom_ca_cert);
	for (size_t i = 0; i < pt->n_host_names; i++)
		free(pt->host_names[i]);
	free(pt->host_names);
	free(pt->default_host);
	free(pt->connect_host);
	free(pt->role);
}

void cfl_project_free(struct cfl_project *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n_parts; i++)
		participant_release(&p->parts[i]);
	free(p->parts);
	free(p->path);
	free(p->name);
	free(p->description);
	free(p->custom_ca_cert);
	free(p);
}

int cfl_project_cert_days(const struct cfl_project *p)
{
	return p->cert_validity_days > 0 ? p->cert_validity_days : CFL_PROJECT_DEFAULT_CERT_DAYS;
}

const struct cfl_participant *cfl_project_server(const struct cfl_project *p)
{
	for (size_t i = 0; i < p->n_parts; i++)
		if (p->parts[i].type == CFL_PT_SERVER)
			return &p->parts[i];
	return NULL;
}

enum cfl_conn_sec cfl_project_conn_sec(const struct cfl_project *p,
                                       const struct cfl_participant *pt)
{
	if (pt != NULL && pt->connect_sec != CFL_SEC_UNSET)
		return pt->connect_sec;
	if (pt != NULL && pt->conn_sec != CFL_SEC_UNSET)
		return pt->conn_sec;
	if (p->conn_sec != CFL_SEC_UNSET)
		return p->conn_sec;
	return CFL_SEC_MTLS;
}

const char *cfl_project_custom_ca(const struct cfl_project *p, const struct cfl_participant *pt)
{
	if (pt != NULL && pt->custom_ca_cert != NULL)
		return pt->custom_ca_cert;
	return p->custom_ca_cert;
}

void cfl_project_server_cn(const struct cfl_project *p, char *buf, size_t size)
{
	const struct cfl_participant *s = cfl_project_server(p);
	size_t n;

	if (size == 0)
		return;
	n = s != NULL ? strlen(s->name) : 0;
	if (n > CFL_CN_MAX)
		n = CFL_CN_MAX;
	if (n > size - 1)
		n = size - 1;
	if (n > 0)
		memcpy(buf, s->name, n);
	buf[n] = '\0';
}

const char *cfl_project_default_host(const struct cfl_project *p)
{
	const struct cfl_participant *s = cfl_project_server(p);

	if (s == NULL)
		return NULL;
	return s->default_host != NULL ? s->default_host : s->name;
}

const char *cfl_project_target_host(const struct cfl_project *p, const struct cfl_participant *pt)
{
	if (pt != NULL && pt->connect_host != NULL)
		return pt->connect_host;
	return cfl_project_default_host(p);
}

int cfl_project_target_port(const struct cfl_project *p, const struct cfl_participant *pt)
{
	const struct cfl_participant *s = cfl_project_server(p);

	if (pt != NULL && pt->connect_port != 0)
		return pt->connect_port;
	if (s == NULL)
		return 0;
	return pt != NULL && pt->type == CFL_PT_ADMIN ? s->admin_port : s->fed_learn_port;
}
