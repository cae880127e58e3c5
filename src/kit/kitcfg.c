/* Reading a kit's fed_server.json / fed_client.json (the fields cfl provision writes). */
#define _DEFAULT_SOURCE
#include "cfl/kit.h"

#include "cfl/kit.h"
#include "cfl/log.h"
#include "util/fs.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_MAX_BYTES (1u << 20)

static int copy_str(char *dst, size_t size, json_t *v, const char *path, const char *field,
                    struct cfl_err *e)
{
	const char *s = json_string_value(v);

	if (s == NULL || s[0] == '\0')
		return cfl_err_set(e, CFL_ECONFIG, "'%s': '%s' is missing or not a string", path,
		                   field);
	if (strlen(s) >= size)
		return cfl_err_set(e, CFL_ECONFIG, "'%s': '%s' is too long", path, field);
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static int kit_file(char *dst, const struct cfl_kitcfg *c, json_t *v, const char *path,
                    const char *field, struct cfl_err *e)
{
	char name[CFL_KITCFG_NAME_MAX];
	int rc = copy_str(name, sizeof(name), v, path, field, e);

	if (rc != 0)
		return rc;
	if (strchr(name, '/') != NULL || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return cfl_err_set(e, CFL_ECONFIG, "'%s': '%s' must name a file in startup/", path,
		                   field);
	if (snprintf(dst, PATH_MAX, "%s/startup/%s", c->kit_dir, name) >= PATH_MAX)
		return cfl_err_set(e, CFL_ETOOBIG, "'%s': path too long", path);
	return 0;
}

static int port_of(json_t *v, const char *path, const char *field, int *out, struct cfl_err *e)
{
	json_int_t n = json_integer_value(v);

	if (!json_is_integer(v) || n < 1 || n > 65535)
		return cfl_err_set(e, CFL_ECONFIG, "'%s': '%s' must be a port 1..65535", path,
		                   field);
	*out = (int)n;
	return 0;
}

/* Explicit mode wins; without one secure_train decides (SPEC §4). */
static int mode_of(json_t *v, int secure_train, enum cfl_conn_sec *out, const char *path,
                   struct cfl_err *e)
{
	if (v == NULL) {
		*out = secure_train ? CFL_SEC_MTLS : CFL_SEC_CLEAR;
		return 0;
	}
	if (!json_is_string(v) || cfl_conn_sec_parse(json_string_value(v), out) != 0)
		return cfl_err_set(e, CFL_ECONFIG,
		                   "'%s': invalid connection_security (allowed: clear, tls, mtls)",
		                   path);
	return 0;
}

/* "host:port" or "[v6]:port". */
static int split_target(const char *t, struct cfl_kitcfg *c, const char *path, struct cfl_err *e)
{
	const char *colon = strrchr(t, ':');
	const char *h = t;
	size_t hl;
	char *end = NULL;
	long port;

	if (colon == NULL)
		return cfl_err_set(e, CFL_ECONFIG, "'%s': target '%s' is not host:port", path, t);
	hl = (size_t)(colon - t);
	if (t[0] == '[' && hl >= 2 && t[hl - 1] == ']') {
		h = t + 1;
		hl -= 2;
	}
	/* Digits only: strtol alone would also take " 80" and "+80". */
	port = colon[1] >= '0' && colon[1] <= '9' ? strtol(colon + 1, &end, 10) : 0;
	if (hl == 0 || hl >= sizeof(c->host) || port < 1 || port > 65535 || *end != '\0')
		return cfl_err_set(e, CFL_ECONFIG, "'%s': bad target '%s'", path, t);
	memcpy(c->host, h, hl);
	c->host[hl] = '\0';
	c->port = (int)port;
	return 0;
}

static int load_server(json_t *root, struct cfl_kitcfg *c, const char *path, struct cfl_err *e)
{
	json_t *s = json_array_get(json_object_get(root, "servers"), 0);
	int rc;

	if (!json_is_object(s))
		return cfl_err_set(e, CFL_ECONFIG, "'%s': 'servers' must hold one server", path);
	if ((rc = copy_str(c->name, sizeof(c->name), json_object_get(s, "identity"), path,
	                   "servers[0].identity", e)) != 0 ||
	    (rc = port_of(json_object_get(s, "fed_learn_port"), path, "fed_learn_port", &c->port,
	                  e)) != 0 ||
	    (rc = port_of(json_object_get(s, "admin_port"), path, "admin_port", &c->admin_port,
	                  e)) != 0 ||
	    (rc = kit_file(c->cert, c, json_object_get(s, "ssl_cert"), path, "ssl_cert", e)) != 0 ||
	    (rc = kit_file(c->key, c, json_object_get(s, "ssl_private_key"), path,
	                   "ssl_private_key", e)) != 0 ||
	    (rc = kit_file(c->root_ca, c, json_object_get(s, "ssl_root_cert"), path,
	                   "ssl_root_cert", e)) != 0)
		return rc;
	memcpy(c->identity, c->name, sizeof(c->name));
	if (json_object_get(s, "custom_ca_cert") != NULL &&
	    (rc = kit_file(c->custom_ca, c, json_object_get(s, "custom_ca_cert"), path,
	                   "custom_ca_cert", e)) != 0)
		return rc;
	return mode_of(json_object_get(s, "connection_security"), c->secure_train, &c->mode, path,
	               e);
}

static int load_client(json_t *root, struct cfl_kitcfg *c, const char *path, struct cfl_err *e)
{
	json_t *s = json_array_get(json_object_get(root, "servers"), 0);
	json_t *cl = json_object_get(root, "client");
	char target[CFL_KITCFG_NAME_MAX + 16];
	int rc;

	if (!json_is_object(s) || !json_is_object(cl))
		return cfl_err_set(e, CFL_ECONFIG, "'%s': needs 'servers' and 'client'", path);
	if ((rc = copy_str(c->identity, sizeof(c->identity), json_object_get(s, "identity"), path,
	                   "servers[0].identity", e)) != 0 ||
	    (rc = copy_str(target, sizeof(target),
	                   json_object_get(json_object_get(s, "service"), "target"), path,
	                   "servers[0].service.target", e)) != 0 ||
	    (rc = split_target(target, c, path, e)) != 0 ||
	    (rc = copy_str(c->name, sizeof(c->name), json_object_get(cl, "name"), path,
	                   "client.name", e)) != 0 ||
	    (rc = kit_file(c->cert, c, json_object_get(cl, "ssl_cert"), path, "ssl_cert", e)) !=
	            0 ||
	    (rc = kit_file(c->key, c, json_object_get(cl, "ssl_private_key"), path,
	                   "ssl_private_key", e)) != 0 ||
	    (rc = kit_file(c->root_ca, c, json_object_get(cl, "ssl_root_cert"), path,
	                   "ssl_root_cert", e)) != 0)
		return rc;
	if (json_object_get(cl, "custom_ca_cert") != NULL &&
	    (rc = kit_file(c->custom_ca, c, json_object_get(cl, "custom_ca_cert"), path,
	                   "custom_ca_cert", e)) != 0)
		return rc;
	return mode_of(json_object_get(cl, "connection_security"), c->secure_train, &c->mode, path,
	               e);
}

static int load_admin(json_t *root, struct cfl_kitcfg *c, const char *path, struct cfl_err *e)
{
	json_t *a = json_object_get(root, "admin");
	int rc;

	if (!json_is_object(a))
		return cfl_err_set(e, CFL_ECONFIG, "'%s': needs 'admin'", path);
	if ((rc = copy_str(c->identity, sizeof(c->identity), json_object_get(a, "server_identity"),
	                   path, "admin.server_identity", e)) != 0 ||
	    (rc = copy_str(c->host, sizeof(c->host), json_object_get(a, "host"), path, "admin.host",
	                   e)) != 0 ||
	    (rc = port_of(json_object_get(a, "port"), path, "admin.port", &c->port, e)) != 0 ||
	    (rc = copy_str(c->name, sizeof(c->name), json_object_get(a, "username"), path,
	                   "admin.username", e)) != 0 ||
	    (rc = copy_str(c->project, sizeof(c->project), json_object_get(a, "project_name"), path,
	                   "admin.project_name", e)) != 0 ||
	    (rc = kit_file(c->cert, c, json_object_get(a, "client_cert"), path, "client_cert",
	                   e)) != 0 ||
	    (rc = kit_file(c->key, c, json_object_get(a, "client_key"), path, "client_key", e)) !=
	            0 ||
	    (rc = kit_file(c->root_ca, c, json_object_get(a, "ca_cert"), path, "ca_cert", e)) != 0)
		return rc;
	if (json_object_get(a, "custom_ca_cert") != NULL &&
	    (rc = kit_file(c->custom_ca, c, json_object_get(a, "custom_ca_cert"), path,
	                   "custom_ca_cert", e)) != 0)
		return rc;
	return mode_of(json_object_get(a, "connection_security"), c->secure_train, &c->mode, path,
	               e);
}

int cfl_kitcfg_load_mem(const char *text, size_t len, const char *path, const char *kit_dir,
                        int is_server, struct cfl_kitcfg *out, struct cfl_err *e)
{
	json_error_t je;
	json_t *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if (is_server < 0 || is_server > 2)
		return cfl_err_set(e, CFL_EINVAL, "bad kit role");
	if (text == NULL && len > 0)
		return cfl_err_set(e, CFL_EINVAL, "'%s': no data", path);
	if (len > CFG_MAX_BYTES)
		return cfl_err_set(e, CFL_ETOOBIG, "'%s': larger than %u bytes", path,
		                   CFG_MAX_BYTES);
	out->is_server = is_server == 1;
	if (snprintf(out->kit_dir, sizeof(out->kit_dir), "%s", kit_dir) >=
	    (int)sizeof(out->kit_dir))
		return cfl_err_set(e, CFL_ETOOBIG, "kit path too long: '%s'", kit_dir);
	root = json_loadb(text != NULL ? text : "", len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return cfl_err_set(e, CFL_ECONFIG, "'%s': line %d: %s", path, je.line, je.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return cfl_err_set(e, CFL_ECONFIG, "'%s': not a JSON object", path);
	}
	/* Kits always say true; only the simulator runs with it false (SPEC §4). It picks the
	 * default connection security, nothing else: the kit check does not depend on it. */
	out->secure_train = !json_is_false(json_object_get(root, "secure_train"));
	snprintf(out->project, sizeof(out->project), "%s",
	         json_string_value(json_object_get(root, "project_name")) != NULL
	                 ? json_string_value(json_object_get(root, "project_name"))
	                 : "");
	rc = is_server == 1   ? load_server(root, out, path, e)
	     : is_server == 2 ? load_admin(root, out, path, e)
	                      : load_client(root, out, path, e);
	json_decref(root);
	return rc;
}

int cfl_kitcfg_load(const char *kit_dir, int is_server, struct cfl_kitcfg *out, struct cfl_err *e)
{
	static const char *const files[] = {"fed_client.json", "fed_server.json", "fed_admin.json"};
	static const char *const kinds[] = {"a client", "a server", "an admin"};

	char path[PATH_MAX], dir[PATH_MAX], *buf = NULL;
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (is_server < 0 || is_server > 2)
		return cfl_err_set(e, CFL_EINVAL, "bad kit role");
	if (realpath(kit_dir, dir) == NULL)
		return cfl_err_set(e, CFL_ENOENT, "cannot open kit '%s': no such folder", kit_dir);
	if (snprintf(path, sizeof(path), "%s/startup/%s", dir, files[is_server]) >=
	    (int)sizeof(path))
		return cfl_err_set(e, CFL_ETOOBIG, "kit path too long: '%s'", kit_dir);
	rc = cfl__fs_read_file(path, CFG_MAX_BYTES, &buf, &len, e);
	if (rc != 0)
		return rc == CFL_ENOENT ? cfl_err_set(e, rc, "'%s' is not %s kit: no '%s'", kit_dir,
		                                      kinds[is_server], path)
		                        : rc;
	rc = cfl_kitcfg_load_mem(buf, len, path, dir, is_server, out, e);
	free(buf);
	return rc;
}

const char *cfl_kitcfg_trust_file(const struct cfl_kitcfg *c)
{
	if (c->mode == CFL_SEC_TLS && c->custom_ca[0] != '\0')
		return c->custom_ca;
	return c->root_ca;
}

static void kit_problem(enum cfl_kit_problem what, const char *file, void *arg)
{
	(void)arg;
	CFL_ERROR("kit file '%s' is %s", file, cfl_kit_problem_name(what));
}

int cfl_kitcfg_verify_kit(const struct cfl_kitcfg *c, enum cfl_kit_check check, struct cfl_err *e)
{
	char sig[PATH_MAX + 32];

	/* Only the caller may waive the check, and only for a kit without a signature file:
	 * nothing in a kit (secure_train off, signature.json deleted) can switch it off. */
	snprintf(sig, sizeof(sig), "%s/startup/signature.json", c->kit_dir);
	if (!cfl__fs_exists(sig)) {
		if (check == CFL_KIT_CHECK_UNSIGNED_OK) {
			CFL_WARN("kit '%s' is not signed: not checked (--unsigned-kit)",
			         c->kit_dir);
			return 0;
		}
		CFL_ERROR("kit file 'startup/signature.json' is missing");
		return cfl_err_set(e, CFL_EVERIFY,
		                   "refusing to start: kit '%s' is not signed (no "
		                   "startup/signature.json)",
		                   c->kit_dir);
	}
	if (cfl_kit_verify(c->kit_dir, kit_problem, NULL, e) != 0)
		return cfl_err_prefix(e, "refusing to start");
	return 0;
}
