/* signature.json: sign a kit's files with the root CA key, and check them. */
#define _DEFAULT_SOURCE
#include "cfl/kit.h"

#include "cfl/log.h"
#include "util/fs.h"

#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_FILE "signature.json"

const char *cfl_kit_problem_name(enum cfl_kit_problem p)
{
	switch (p) {
	case CFL_KIT_CHANGED:
		return "changed";
	case CFL_KIT_MISSING:
		return "missing";
	case CFL_KIT_ADDED:
		return "added";
	default:
		return "unknown";
	}
}

/* A file list: names relative to the kit folder ("startup/x", "local/y.default"). */
struct names {
	char *v[CFL_KIT_MAX_FILES];
	size_t n;
};

static void names_release(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files of local/ that belong to the signed kit; anything else there is the site's own. */
static int is_local_default(const char *name)
{
	size_t n = strlen(name);

	return (n > 8 && strcmp(name + n - 8, ".default") == 0) ||
	       (n > 7 && strcmp(name + n - 7, ".sample") == 0);
}

/* Lists the signable files of kit/sub into l (as "sub/name"). A missing local/ is fine. */
static int list_dir(const char *kit, const char *sub, struct names *l, struct cfl_err *e)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (cfl__path_join(dir, sizeof(dir), kit, sub) != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", kit);
	d = opendir(dir);
	if (d == NULL) {
		if (strcmp(sub, "local") == 0)
			return 0;
		return cfl_err_set(e, CFL_ENOENT, "cannot open '%s': not a startup kit", dir);
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' &&
		    (de->d_name[1] == '\0' || strcmp(de->d_name, "..") == 0))
			continue;
		if (strcmp(sub, "startup") == 0 && strcmp(de->d_name, SIG_FILE) == 0)
			continue;
		if (strcmp(sub, "local") == 0 && !is_local_default(de->d_name))
			continue;
		if (cfl__path_join(path, sizeof(path), sub, de->d_name) != 0 ||
		    l->n >= CFL_KIT_MAX_FILES) {
			rc = cfl_err_set(e, CFL_ETOOBIG, "too many or too long names in '%s'", dir);
			break;
		}
		l->v[l->n] = strdup(path);
		if (l->v[l->n] == NULL) {
			rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
			break;
		}
		l->n++;
	}
	closedir(d);
	return rc;
}

static int list_kit(const char *kit, struct names *l, struct cfl_err *e)
{
	int rc = list_dir(kit, "startup", l, e);

	if (rc == 0)
		rc = list_dir(kit, "local", l, e);
	if (rc == 0)
		qsort(l->v, l->n, sizeof(l->v[0]), cmp_names);
	return rc;
}

/* The key used in signature.json: bare names for startup/, "local/x" for local/. */
static const char *sig_key(const char *rel)
{
	return strncmp(rel, "startup/", 8) == 0 ? rel + 8 : rel;
}

static int read_kit_file(const char *kit, const char *rel, char **buf, size_t *len,
                         struct cfl_err *e)
{
	char path[PATH_MAX];

	if (cfl__path_join(path, sizeof(path), kit, rel) != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", rel);
	return cfl__fs_read_file(path, CFL_KIT_MAX_FILE_BYTES, buf, len, e);
}

static int sign_one(const char *kit, const char *rel, const struct cfl_pki_key *key, json_t *obj,
                    struct cfl_err *e)
{
	char *buf = NULL, *b64 = NULL;
	uint8_t *sig = NULL;
	size_t len = 0, sig_len = 0;
	int rc;

	rc = read_kit_file(kit, rel, &buf, &len, e);
	if (rc == 0)
		rc = cfl_pki_sign(key, buf, len, &sig, &sig_len, e);
	if (rc == 0 && cfl_base64_encode(sig, sig_len, &b64) != 0)
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	if (rc == 0 && json_object_set_new(obj, sig_key(rel), json_string(b64)) != 0)
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	free(buf);
	free(sig);
	free(b64);
	return rc;
}

int cfl_kit_sign(const char *kit_dir, const struct cfl_pki_key *ca_key, struct cfl_err *e)
{
	struct names l = {.n = 0};
	char path[PATH_MAX];
	json_t *obj = json_object();
	char *text = NULL;
	int rc;

	if (obj == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	rc = list_kit(kit_dir, &l, e);
	for (size_t i = 0; rc == 0 && i < l.n; i++)
		rc = sign_one(kit_dir, l.v[i], ca_key, obj, e);
	if (rc == 0) {
		text = json_dumps(obj, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (text == NULL)
			rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	}
	if (rc == 0 && cfl__path_join(path, sizeof(path), kit_dir, "startup/" SIG_FILE) != 0)
		rc = cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", kit_dir);
	if (rc == 0)
		rc = cfl__fs_write_file(path, text, strlen(text), 0644, e);
	free(text);
	json_decref(obj);
	names_release(&l);
	return rc;
}

/* Verification state: the first problems are kept for the error message. */
struct vstate {
	cfl_kit_problem_fn fn;
	void *arg;
	int count;
	char first[512];
};

static void problem(struct vstate *v, enum cfl_kit_problem what, const char *file)
{
	size_t used = strlen(v->first);

	CFL_DEBUG("kit file '%s' is %s", file, cfl_kit_problem_name(what));
	if (v->fn != NULL)
		v->fn(what, file, v->arg);
	if (v->count < 8 && used < sizeof(v->first))
		snprintf(v->first + used, sizeof(v->first) - used, "%s'%s' %s",
		         v->count > 0 ? ", " : "", file, cfl_kit_problem_name(what));
	v->count++;
}

/* Checks one signed file; a bad or undecodable signature counts as a change. */
static int check_one(const char *kit, const char *rel, const char *b64,
                     const struct cfl_pki_cert *ca, struct vstate *v, struct cfl_err *e)
{
	char *buf = NULL;
	uint8_t *sig = NULL;
	size_t len = 0, sig_len = 0;
	struct cfl_err tmp;
	int rc;

	rc = read_kit_file(kit, rel, &buf, &len, &tmp);
	if (rc == CFL_ENOENT) {
		problem(v, CFL_KIT_MISSING, rel);
		return 0;
	}
	if (rc != 0 && rc != CFL_ETOOBIG)
		return cfl_err_set(e, rc, "%s", tmp.msg);
	if (rc != 0 || b64 == NULL || cfl_base64_decode(b64, strlen(b64), &sig, &sig_len) != 0 ||
	    cfl_pki_verify(ca, buf, len, sig, sig_len, &tmp) != 0)
		problem(v, CFL_KIT_CHANGED, rel);
	free(buf);
	free(sig);
	return 0;
}

static int load_sigs(const char *kit, json_t **out, struct cfl_err *e)
{
	char path[PATH_MAX], *buf = NULL;
	size_t len = 0;
	json_error_t je;
	int rc;

	if (cfl__path_join(path, sizeof(path), kit, "startup/" SIG_FILE) != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", kit);
	rc = cfl__fs_read_file(path, 1u << 20, &buf, &len, e);
	if (rc != 0)
		return rc;
	*out = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	free(buf);
	if (*out == NULL || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return cfl_err_set(e, CFL_EVERIFY, "'%s' is not a valid signature file: %s", path,
		                   je.text[0] != '\0' ? je.text : "not a JSON object");
	}
	return 0;
}

int cfl_kit_verify(const char *kit_dir, cfl_kit_problem_fn fn, void *arg, struct cfl_err *e)
{
	struct vstate v = {.fn = fn, .arg = arg, .count = 0, .first = ""};
	struct cfl_pki_cert *ca = NULL;
	struct names l = {.n = 0};
	json_t *sigs = NULL, *val;
	char path[PATH_MAX], rel[PATH_MAX];
	const char *key;
	int rc;

	if (cfl__path_join(path, sizeof(path), kit_dir, "startup/rootCA.pem") != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", kit_dir);
	rc = list_kit(kit_dir, &l, e);
	if (rc == 0)
		rc = load_sigs(kit_dir, &sigs, e);
	if (rc == 0 && cfl_pki_cert_load(path, &ca, e) != 0)
		rc = cfl_err_prefix(e, "cannot check kit '%s'", kit_dir);
	if (rc != 0)
		goto out;
	json_object_foreach (sigs, key, val) {
		if (strchr(key, '/') != NULL
		            ? strncmp(key, "local/", 6) != 0 || strchr(key + 6, '/') != NULL ||
		                      !is_local_default(key + 6)
		            : strcmp(key, "..") == 0 || strcmp(key, ".") == 0) {
			/* A name that points outside the kit can only be forged. */
			rc = cfl_err_set(e, CFL_EVERIFY, "signature file names a bad path '%s'",
			                 key);
			goto out;
		}
		snprintf(rel, sizeof(rel), "%s%s", strchr(key, '/') ? "" : "startup/", key);
		rc = check_one(kit_dir, rel, json_string_value(val), ca, &v, e);
		if (rc != 0)
			goto out;
	}
	for (size_t i = 0; i < l.n; i++) {
		if (json_object_get(sigs, sig_key(l.v[i])) == NULL)
			problem(&v, CFL_KIT_ADDED, l.v[i]);
	}
	if (v.count > 0)
		rc = cfl_err_set(e, CFL_EVERIFY,
		                 "kit '%s' has %d changed, missing or added file%s: %s", kit_dir,
		                 v.count, v.count == 1 ? "" : "s", v.first);
out:
	json_decref(sigs);
	cfl_pki_cert_free(ca);
	names_release(&l);
	return rc;
}
