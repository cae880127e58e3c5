/* Request and approval files: their JSON shape, bounds and signatures.
 *
 * A request: {"format": "cfl-cert-request/1", "name", "type": "client"|"admin"|"server",
 * "org"?, "role"?, "host_names"?: [..], "csr": PEM}. Nothing private.
 *
 * An approval: {"format": "cfl-approval/1", "project", "name", "type", "files": {NAME: {"mode":
 * 420|493, "text": ...}}, "signature": base64}, NAME "startup/F" or "local/F": every file of the
 * participant's kit except its private key (including startup/signature.json, the kit manifest
 * the CA signed). The signature, by the issuing CA (the issuer of the certificate the files
 * hold), covers "cfl-approval/1\n" then "project HEX\n", "name HEX\n", "type HEX\n" (SHA-256 of
 * each value) and "NAME MODE HEX\n" for each file in byte order of the names. */
#define _DEFAULT_SOURCE
#include "certfile.h"

#include "cfl/digest.h"
#include "cfl/project.h"

#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {"server", "client", "admin"};

int cfl_cert_type_parse(const char *s, enum cfl_ptype *t)
{
	for (size_t i = 0; s != NULL && i < sizeof(type_names) / sizeof(type_names[0]); i++) {
		if (strcmp(s, type_names[i]) == 0) {
			*t = (enum cfl_ptype)i;
			return 0;
		}
	}
	return CFL_EINVAL;
}

const char *cfl_cert_type_name(enum cfl_ptype t)
{
	return (size_t)t < sizeof(type_names) / sizeof(type_names[0]) ? type_names[t] : "?";
}

void cfl_cert_request_free(struct cfl_cert_request *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n_hosts; i++)
		free(r->hosts[i]);
	free(r->hosts);
	free(r->name);
	free(r->org);
	free(r->role);
	cfl_pki_csr_free(r->csr);
	free(r);
}

/* A bounded string member (absent: NULL when optional). */
static int get_str(json_t *o, const char *key, int required, size_t max, char **out,
                   struct cfl_err *e)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (v == NULL && !required)
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return cfl_err_set(e, CFL_EPARSE, "'%s' is %s", key,
		                   v == NULL ? "missing"
		                             : "not a string of 1 to a few hundred bytes");
	*out = strdup(json_string_value(v));
	return *out != NULL ? 0 : cfl_err_set(e, CFL_ENOMEM, "out of memory");
}

static int get_hosts(json_t *o, struct cfl_cert_request *r, struct cfl_err *e)
{
	json_t *a = json_object_get(o, "host_names"), *v;
	size_t i;

	if (a == NULL)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > CFL_PROJECT_MAX_HOSTS)
		return cfl_err_set(e, CFL_EPARSE, "'host_names' is not a list of at most %d names",
		                   CFL_PROJECT_MAX_HOSTS);
	r->hosts = calloc(json_array_size(a) + 1, sizeof(*r->hosts));
	if (r->hosts == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	json_array_foreach (a, i, v) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > CFL_HOSTNAME_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return cfl_err_set(e, CFL_EPARSE, "host name %zu is not a host name",
			                   i + 1);
		if ((r->hosts[r->n_hosts] = strdup(json_string_value(v))) == NULL)
			return cfl_err_set(e, CFL_ENOMEM, "out of memory");
		r->n_hosts++;
	}
	return 0;
}

static int request_fields(json_t *root, struct cfl_cert_request *r, struct cfl_err *e)
{
	json_t *fmt = json_object_get(root, "format"), *csr = json_object_get(root, "csr");
	char *type = NULL;
	int rc;

	if (!json_is_object(root))
		return cfl_err_set(e, CFL_EPARSE, "not a JSON object");
	if (!json_is_string(fmt) || strcmp(json_string_value(fmt), CFL__REQUEST_FMT) != 0)
		return cfl_err_set(e, CFL_EPARSE, "not a '" CFL__REQUEST_FMT "' request");
	if ((rc = get_str(root, "name", 1, CFL_CN_MAX, &r->name, e)) != 0 ||
	    (rc = get_str(root, "type", 1, 16, &type, e)) != 0 ||
	    (rc = get_str(root, "org", 0, CFL_CN_MAX, &r->org, e)) != 0 ||
	    (rc = get_str(root, "role", 0, 255, &r->role, e)) != 0 ||
	    (rc = get_hosts(root, r, e)) != 0)
		goto out;
	if (cfl_cert_type_parse(type, &r->type) != 0) {
		rc = cfl_err_set(e, CFL_EPARSE, "'type' is '%s', not client, admin or server",
		                 type);
		goto out;
	}
	if (!json_is_string(csr))
		rc = cfl_err_set(e, CFL_EPARSE, "'csr' is missing");
	else
		rc = cfl_pki_csr_load_pem(json_string_value(csr), json_string_length(csr), &r->csr,
		                          e);
out:
	free(type);
	return rc;
}

int cfl_cert_request_parse(const char *text, size_t len, struct cfl_cert_request **out,
                           struct cfl_err *e)
{
	struct cfl_cert_request *r;
	json_error_t je;
	json_t *root;
	int rc;

	if (text == NULL || out == NULL)
		return cfl_err_set(e, CFL_EINVAL, "no request");
	if (len > CFL_CERT_FILE_MAX)
		return cfl_err_set(e, CFL_ETOOBIG, "request larger than %zu bytes",
		                   CFL_CERT_FILE_MAX);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return cfl_err_set(e, CFL_EPARSE, "not JSON: %s (line %d)", je.text, je.line);
	r = calloc(1, sizeof(*r));
	rc = r == NULL ? cfl_err_set(e, CFL_ENOMEM, "out of memory") : request_fields(root, r, e);
	json_decref(root);
	if (rc != 0) {
		cfl_cert_request_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* ---- approvals ---- */

/* "startup/F" or "local/F", F one printable component, never a private key. */
static int file_name_ok(const char *rel)
{
	const char *f = strncmp(rel, "startup/", 8) == 0 ? rel + 8
	                : strncmp(rel, "local/", 6) == 0 ? rel + 6
	                                                 : NULL;
	size_t n;

	if (f == NULL || f[0] == '\0' || strcmp(f, ".") == 0 || strcmp(f, "..") == 0 ||
	    strlen(f) > 128)
		return 0;
	for (const char *p = f; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '/')
			return 0;
	n = strlen(f);
	return !(n >= 4 && strcmp(f + n - 4, ".key") == 0);
}

static void sha_hex(const char *s, size_t len, char hex[2 * CFL_SHA256_LEN + 1])
{
	uint8_t md[CFL_SHA256_LEN];
	struct cfl_sha256 *h = cfl_sha256_new();

	memset(md, 0, sizeof(md));
	if (h != NULL) {
		cfl_sha256_update(h, s, len);
		cfl_sha256_final(h, md);
		cfl_sha256_free(h);
	}
	cfl_hex(md, sizeof(md), hex);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks the files' names, modes and texts; their sorted names into keys[]. */
static int check_files(json_t *files, const char **keys, size_t *n, struct cfl_err *e)
{
	const char *k;
	json_t *v;

	*n = 0;
	if (!json_is_object(files) || json_object_size(files) > CFL__APPROVAL_FILES_MAX)
		return cfl_err_set(e, CFL_EPARSE, "'files' is not an object of at most %d files",
		                   CFL__APPROVAL_FILES_MAX);
	json_object_foreach (files, k, v) {
		json_t *mode = json_object_get(v, "mode"), *text = json_object_get(v, "text");

		if (!file_name_ok(k))
			return cfl_err_set(e, CFL_EPARSE, "file name '%.80s' is not allowed", k);
		if (!json_is_integer(mode) ||
		    (json_integer_value(mode) != 0644 && json_integer_value(mode) != 0755) ||
		    !json_is_string(text) ||
		    strlen(json_string_value(text)) != json_string_length(text))
			return cfl_err_set(e, CFL_EPARSE,
			                   "file '%s' has no mode 0644/0755 or no text", k);
		keys[(*n)++] = k;
	}
	qsort(keys, *n, sizeof(keys[0]), cmp_str);
	return 0;
}

int cfl__approval_canonical(json_t *root, char **out, size_t *len, struct cfl_err *e)
{
	static const char *const heads[] = {"project", "name", "type"};
	const char *keys[CFL__APPROVAL_FILES_MAX];
	char hex[2 * CFL_SHA256_LEN + 1], *buf;
	json_t *files = json_object_get(root, "files");
	size_t n = 0, cap, used;
	int rc = check_files(files, keys, &n, e);

	if (rc != 0)
		return rc;
	cap = 64 + 3 * 80 + n * (200 + sizeof(hex));
	buf = malloc(cap);
	if (buf == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	used = (size_t)snprintf(buf, cap, "%s\n", CFL__APPROVAL_FMT);
	for (size_t i = 0; i < 3; i++) {
		json_t *v = json_object_get(root, heads[i]);

		if (!json_is_string(v)) {
			free(buf);
			return cfl_err_set(e, CFL_EPARSE, "'%s' is missing", heads[i]);
		}
		sha_hex(json_string_value(v), json_string_length(v), hex);
		used += (size_t)snprintf(buf + used, cap - used, "%s %s\n", heads[i], hex);
	}
	for (size_t i = 0; i < n; i++) {
		json_t *f = json_object_get(files, keys[i]), *t = json_object_get(f, "text");

		sha_hex(json_string_value(t), json_string_length(t), hex);
		used += (size_t)snprintf(buf + used, cap - used, "%s %o %s\n", keys[i],
		                         (unsigned)json_integer_value(json_object_get(f, "mode")),
		                         hex);
	}
	*out = buf;
	*len = used;
	return 0;
}
