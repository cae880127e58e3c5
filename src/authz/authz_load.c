/* Reading a policy file: {"format_version": "1.0", "permissions": {ROLE: RULE}} (authz.h).
 *
 * Every error names the file, a line and what is wrong. jansson gives the line of a syntax
 * error; for a value that parses but means nothing (an unknown right, a number where a
 * condition belongs) jansson keeps no positions, so locate() finds the line of its key in
 * the text. */
#include "authz_int.h"

#include "util/fs.h"

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLICY_MAX (1u << 20)

struct ctx {
	const char *text;
	size_t len;
	const char *name; /* the file, for messages */
	struct cfl_err *e;
};

/* The end of the string that starts at t[i] (a '"'), just past its closing quote. */
static size_t string_end(const char *t, size_t len, size_t i)
{
	for (i++; i < len && t[i] != '"'; i++) {
		if (t[i] == '\\')
			i++;
	}
	return i < len ? i + 1 : len;
}

/* The line where the key at `path` starts (path[0] a key of the root object, path[1] a key
 * of its value, and so on), the root's line for depth 0, or 0 when not found: a key written
 * with escapes is compared as written. Only called on text that parsed, whose keys are
 * unique per object (JSON_REJECT_DUPLICATES), so the first match is the one. */
static int locate(const char *t, size_t len, const char *const *path, size_t depth)
{
	size_t i = 0, matched = 0;
	int line = 1, level = 0;

	while (i < len) {
		char ch = t[i];

		if (ch == '\n') {
			line++;
		} else if (ch == '{' || ch == '[') {
			if (depth == 0)
				return line;
			level++;
		} else if (ch == '}' || ch == ']') {
			if (level-- <= (int)matched)
				return 0; /* the object of the last match ended */
		} else if (ch == '"') {
			size_t end = string_end(t, len, i), j = end;
			size_t klen = end - i - 2;

			while (j < len &&
			       (t[j] == ' ' || t[j] == '\t' || t[j] == '\r' || t[j] == '\n'))
				j++;
			if (j < len && t[j] == ':' && level == (int)matched + 1 &&
			    strlen(path[matched]) == klen &&
			    memcmp(t + i + 1, path[matched], klen) == 0) {
				if (++matched == depth)
					return line;
			}
			i = end;
			continue;
		}
		i++;
	}
	return 0;
}

/* Sets the error "NAME: line L: PATH: message", where the line is that of the key at
 * path[0..depth) and PATH shows its first `shown` components ("" when 0). */
static int bad(const struct ctx *c, const char *const *path, size_t depth, size_t shown,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int bad(const struct ctx *c, const char *const *path, size_t depth, size_t shown,
               const char *fmt, ...)
{
	char where[64] = "", what[512], shown_path[512] = "";
	int line = locate(c->text, c->len, path, depth);
	size_t o = 0;
	va_list ap;

	if (line > 0)
		snprintf(where, sizeof(where), " line %d:", line);
	for (size_t k = 0; k < shown && o < sizeof(shown_path); k++) {
		int n = snprintf(shown_path + o, sizeof(shown_path) - o, "%s%s", k ? "." : "",
		                 path[k]);

		o += n > 0 ? (size_t)n : 0;
	}
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return cfl_err_set(c->e, CFL_ECONFIG, "%s:%s %s%s%s", c->name, where, shown_path,
	                   shown ? ": " : "", what);
}

/* "a, b, c" of a table of names (NULL entries skipped). */
static const char *list(char *buf, size_t size, const char *const *names, size_t n)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && o < size; i++) {
		int k;

		if (names[i] == NULL)
			continue;
		k = snprintf(buf + o, size - o, "%s%s", o ? ", " : "", names[i]);
		o += k > 0 ? (size_t)k : 0;
	}
	return buf;
}

static const char *right_list(char *buf, size_t size)
{
	const char *names[CFL_RIGHT_COUNT];

	for (int r = 0; r < CFL_RIGHT_COUNT; r++)
		names[r] = cfl_authz_right_name((enum cfl_right)r);
	return list(buf, size, names, CFL_RIGHT_COUNT);
}

/* A condition at path[0..depth) (a role's shorthand or one right's): its value, or -1 after
 * setting the error. */
static int read_cond(const struct ctx *c, json_t *v, const char *const *path, size_t depth)
{
	char conds[128];
	int k;

	list(conds, sizeof(conds), cfl__authz_cond_names, COND_COUNT);
	if (!json_is_string(v)) {
		bad(c, path, depth, depth, "must be a condition (%s)", conds);
		return -1;
	}
	k = cfl__authz_cond_parse(json_string_value(v));
	if (k < 0) {
		bad(c, path, depth, depth, "unknown condition '%s' (%s)", json_string_value(v),
		    conds);
		return -1;
	}
	return k;
}

/* permissions.ROLE: a condition for every right, or {RIGHT: CONDITION}. */
static int read_rule(const struct ctx *c, struct cfl_authz *a, int role, json_t *rule)
{
	const char *path[3] = {"permissions", cfl__authz_role_names[role], NULL};
	const char *key;
	char rights[160];
	json_t *v;
	int k;

	a->has_role[role] = 1;
	if (json_is_string(rule)) {
		if ((k = read_cond(c, rule, path, 2)) < 0)
			return CFL_ECONFIG;
		memset(a->rule[role], k, sizeof(a->rule[role]));
		return 0;
	}
	if (!json_is_object(rule))
		return bad(c, path, 2, 2, "must be a condition or an object of right: condition");
	json_object_foreach (rule, key, v) {
		enum cfl_right r;

		path[2] = key;
		if (cfl_authz_right_parse(key, &r) != 0)
			return bad(c, path, 3, 2, "unknown right '%s' (%s)", key,
			           right_list(rights, sizeof(rights)));
		if ((k = read_cond(c, v, path, 3)) < 0)
			return CFL_ECONFIG;
		a->rule[role][r] = (unsigned char)k;
	}
	return 0;
}

static int read_permissions(const struct ctx *c, struct cfl_authz *a, json_t *perms)
{
	const char *path[2] = {"permissions", NULL};
	char roles[96];
	const char *key;
	json_t *v;
	int rc;

	if (!json_is_object(perms))
		return bad(c, path, 1, 1, "must be an object of role: rule");
	json_object_foreach (perms, key, v) {
		int role = cfl__authz_role_parse(key);

		path[1] = key;
		if (role < 0)
			return bad(c, path, 2, 1, "unknown role '%s' (%s)", key,
			           list(roles, sizeof(roles), cfl__authz_role_names, ROLE_COUNT));
		if ((rc = read_rule(c, a, role, v)) != 0)
			return rc;
	}
	return 0;
}

static int read_policy(const struct ctx *c, struct cfl_authz *a, json_t *root)
{
	const char *path[1] = {NULL};
	const char *key;
	json_t *v;

	if (!json_is_object(root))
		return bad(c, path, 0, 0, "not a JSON object");
	json_object_foreach (root, key, v) {
		path[0] = key;
		if (strcmp(key, "format_version") != 0 && strcmp(key, "permissions") != 0)
			return bad(c, path, 1, 0, "unknown key '%s' (format_version, permissions)",
			           key);
	}
	v = json_object_get(root, "format_version");
	path[0] = "format_version";
	if (v == NULL)
		return bad(c, path, 0, 0, "missing key 'format_version' (\"1.0\")");
	if (!json_is_string(v) || strcmp(json_string_value(v), "1.0") != 0)
		return bad(c, path, 1, 1, "must be the string \"1.0\"");
	v = json_object_get(root, "permissions");
	path[0] = "permissions";
	if (v == NULL)
		return bad(c, path, 0, 0, "missing key 'permissions'");
	return read_permissions(c, a, v);
}

int cfl_authz_load_mem(const char *text, size_t len, const char *name, struct cfl_authz **out,
                       struct cfl_err *e)
{
	struct ctx c = {text, len, name, e};
	struct cfl_authz *a = NULL;
	json_error_t je;
	json_t *root;
	int rc;

	*out = NULL;
	if (len > POLICY_MAX)
		return cfl_err_set(e, CFL_ETOOBIG, "%s: larger than %u bytes", name, POLICY_MAX);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return cfl_err_set(e, CFL_ECONFIG, "%s: line %d: %s", name, je.line, je.text);
	a = cfl__authz_new(name);
	rc = a == NULL ? cfl_err_set(e, CFL_ENOMEM, "out of memory") : read_policy(&c, a, root);
	json_decref(root);
	if (rc != 0) {
		cfl_authz_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

int cfl_authz_load(const char *local_dir, struct cfl_authz **out, struct cfl_err *e)
{
	static const char *const files[] = {"authorization.json", "authorization.json.default"};
	char path[PATH_MAX], *text = NULL;
	size_t len = 0;
	int rc = CFL_ENOENT;

	*out = NULL;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && rc == CFL_ENOENT; i++) {
		if (cfl__path_join(path, sizeof(path), local_dir, files[i]) != 0)
			return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", local_dir);
		rc = cfl__fs_read_file(path, POLICY_MAX, &text, &len, e);
	}
	if (rc == CFL_ENOENT)
		return cfl_err_set(e, CFL_ENOENT,
		                   "no authorization policy in '%s' (authorization.json or "
		                   "authorization.json.default)",
		                   local_dir);
	if (rc == 0)
		rc = cfl_authz_load_mem(text, len, path, out, e);
	free(text);
	return rc;
}
