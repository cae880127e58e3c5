/* signature.json: a manifest of a kit's files signed with the issuing CA's key, and its check.
 *
 * The private key (startup/NAME.key) is not in the manifest: it may be made where it is used
 * (cfl cert request / cfl package), where the CA that signs the manifest never sees it. Its
 * integrity is checked instead by its match with the signed certificate. Manifests of older
 * kits that list it are still honoured (its digest is compared like any file's).
 *
 * The manifest maps each signed file's name to its SHA-256, and one signature covers all of it
 * (in the canonical text below), so a file cannot be swapped for another signed file under a
 * different name, nor a file of another kit of the project slipped in: with one signature per
 * file, as NVFlare's signature.json has, both passed, since nothing tied a signature to a name
 * or to the other files. */
#define _DEFAULT_SOURCE
#include "cfl/kit.h"

#include "cfl/digest.h"
#include "cfl/log.h"
#include "util/fs.h"

#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_FILE       "signature.json"
#define SIG_FILE_MAX   (1u << 20)
#define MANIFEST_FMT   "cfl-kit-manifest/1"
#define DIGEST_HEX_LEN (2 * CFL_SHA256_LEN)

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

/* A private key in startup/ (server.key, client.key): not signed, see the top. */
static int is_key_file(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && strcmp(name + n - 4, ".key") == 0;
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
		if (strcmp(sub, "startup") == 0 &&
		    (strcmp(de->d_name, SIG_FILE) == 0 || is_key_file(de->d_name)))
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

/* A name the manifest may hold: "startup/F" or "local/F" (F a signed default), F one path
 * component of printable characters: no space or newline, which separate the canonical text's
 * fields, and nothing that leaves the kit. */
static int name_ok(const char *rel)
{
	const char *f = strncmp(rel, "startup/", 8) == 0 ? rel + 8
	                : strncmp(rel, "local/", 6) == 0 ? rel + 6
	                                                 : NULL;

	if (f == NULL || f[0] == '\0' || strcmp(f, ".") == 0 || strcmp(f, "..") == 0 ||
	    strchr(f, '/') != NULL || strcmp(rel, "startup/" SIG_FILE) == 0)
		return 0;
	for (const char *p = f; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f)
			return 0;
	return f == rel + 8 || is_local_default(f);
}

static int is_digest(const char *s)
{
	if (s == NULL || strlen(s) != DIGEST_HEX_LEN)
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

/* SHA-256 of len bytes in lowercase hex. */
static int mem_digest(const void *data, size_t len, char hex[DIGEST_HEX_LEN + 1], struct cfl_err *e)
{
	uint8_t md[CFL_SHA256_LEN];
	struct cfl_sha256 *h = cfl_sha256_new();

	if (h == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	cfl_sha256_update(h, data, len);
	cfl_sha256_final(h, md);
	cfl_sha256_free(h);
	cfl_hex(md, sizeof(md), hex);
	return 0;
}

/* SHA-256 of kit/rel in lowercase hex. CFL_ENOENT, CFL_ETOOBIG (over 16 MiB) or another code
 * with `e` set when it cannot be read. */
static int file_digest(const char *kit, const char *rel, char hex[DIGEST_HEX_LEN + 1],
                       struct cfl_err *e)
{
	char path[PATH_MAX], *buf = NULL;
	size_t len = 0;
	int rc;

	if (cfl__path_join(path, sizeof(path), kit, rel) != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", rel);
	rc = cfl__fs_read_file(path, CFL_KIT_MAX_FILE_BYTES, &buf, &len, e);
	if (rc == 0)
		rc = mem_digest(buf, len, hex, e);
	free(buf);
	return rc;
}

/* What the signature covers: the format line, then "NAME DIGEST\n" per file in byte order of
 * the names. Names hold no space or newline and digests are hex, so one text reads one way
 * only. `files` is checked (names_ok, digests) by the caller. *out is a new buffer (free()). */
static int canonical(json_t *files, char **out, size_t *out_len, struct cfl_err *e)
{
	const char *keys[CFL_KIT_MAX_FILES], *key;
	size_t n = 0, len = sizeof(MANIFEST_FMT), used;
	json_t *val;
	char *buf;

	json_object_foreach (files, key, val) {
		if (n == CFL_KIT_MAX_FILES)
			return cfl_err_set(e, CFL_ETOOBIG, "more than %d files in the manifest",
			                   CFL_KIT_MAX_FILES);
		keys[n++] = key;
		len += strlen(key) + 1 + DIGEST_HEX_LEN + 1;
	}
	qsort(keys, n, sizeof(keys[0]), cmp_names);
	buf = malloc(len + 1);
	if (buf == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	used = (size_t)snprintf(buf, len + 1, "%s\n", MANIFEST_FMT);
	for (size_t i = 0; i < n; i++)
		used += (size_t)snprintf(buf + used, len + 1 - used, "%s %s\n", keys[i],
		                         json_string_value(json_object_get(files, keys[i])));
	*out = buf;
	*out_len = used;
	return 0;
}

/* A file the manifest covers: startup/F but signature.json and the keys, local/F a default. */
static int is_signed(const char *rel)
{
	if (strncmp(rel, "startup/", 8) == 0)
		return strcmp(rel + 8, SIG_FILE) != 0 && !is_key_file(rel + 8);
	return strncmp(rel, "local/", 6) == 0 && is_local_default(rel + 6);
}

/* {"name": digest} of the signed files into `files`. */
static int add_digests(json_t *files, const struct cfl_kit_file *f, size_t n, struct cfl_err *e)
{
	char hex[DIGEST_HEX_LEN + 1];
	size_t count = 0;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (!is_signed(f[i].name))
			continue;
		if (++count > CFL_KIT_MAX_FILES)
			return cfl_err_set(e, CFL_ETOOBIG, "more than %d files in the manifest",
			                   CFL_KIT_MAX_FILES);
		if (!name_ok(f[i].name))
			return cfl_err_set(e, CFL_EINVAL,
			                   "cannot sign '%s': a name with a space or a control "
			                   "character",
			                   f[i].name);
		if (f[i].len > CFL_KIT_MAX_FILE_BYTES)
			return cfl_err_set(e, CFL_ETOOBIG, "cannot sign '%s': larger than %u bytes",
			                   f[i].name, CFL_KIT_MAX_FILE_BYTES);
		if ((rc = mem_digest(f[i].data, f[i].len, hex, e)) == 0 &&
		    json_object_set_new(files, f[i].name, json_string(hex)) != 0)
			rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	}
	return rc;
}

/* {"format", "files": {name: digest}, "signature"}, signed with `key`. */
static int build_manifest(const struct cfl_kit_file *f, size_t n, const struct cfl_pki_key *key,
                          json_t *root, struct cfl_err *e)
{
	char *text = NULL, *b64 = NULL;
	json_t *files = json_object();
	uint8_t *sig = NULL;
	size_t len = 0, sig_len = 0;
	int rc = files == NULL || json_object_set_new(root, "files", files) != 0
	                 ? cfl_err_set(e, CFL_ENOMEM, "out of memory")
	                 : 0;

	if (rc == 0)
		rc = add_digests(files, f, n, e);
	if (rc == 0)
		rc = canonical(files, &text, &len, e);
	if (rc == 0)
		rc = cfl_pki_sign(key, text, len, &sig, &sig_len, e);
	if (rc == 0 && (cfl_base64_encode(sig, sig_len, &b64) != 0 ||
	                json_object_set_new(root, "signature", json_string(b64)) != 0))
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	free(text);
	free(sig);
	free(b64);
	return rc;
}

int cfl_kit_manifest(const struct cfl_kit_file *files, size_t n, const struct cfl_pki_key *ca_key,
                     char **out, size_t *out_len, struct cfl_err *e)
{
	json_t *root = json_pack("{s:s}", "format", MANIFEST_FMT);
	int rc;

	*out = NULL;
	if (root == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	rc = build_manifest(files, n, ca_key, root, e);
	if (rc == 0) {
		*out = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (*out == NULL)
			rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
		else
			*out_len = strlen(*out);
	}
	json_decref(root);
	return rc;
}

/* Reads the listed files of the kit into f[] (bufs[] owns the data). */
static int read_kit(const char *kit, const struct names *l, struct cfl_kit_file *f, char **bufs,
                    struct cfl_err *e)
{
	char path[PATH_MAX];
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < l->n; i++) {
		if (!name_ok(l->v[i]))
			return cfl_err_set(e, CFL_EINVAL,
			                   "cannot sign '%s': a name with a space or a control "
			                   "character",
			                   l->v[i]);
		if (cfl__path_join(path, sizeof(path), kit, l->v[i]) != 0)
			return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", l->v[i]);
		f[i].name = l->v[i];
		rc = cfl__fs_read_file(path, CFL_KIT_MAX_FILE_BYTES, &bufs[i], &f[i].len, e);
		f[i].data = bufs[i];
	}
	return rc;
}

int cfl_kit_sign(const char *kit_dir, const struct cfl_pki_key *ca_key, struct cfl_err *e)
{
	struct cfl_kit_file f[CFL_KIT_MAX_FILES];
	char *bufs[CFL_KIT_MAX_FILES] = {0};
	struct names l = {.n = 0};
	char path[PATH_MAX], *text = NULL;
	size_t len = 0;
	int rc = list_kit(kit_dir, &l, e);

	if (rc == 0)
		rc = read_kit(kit_dir, &l, f, bufs, e);
	if (rc == 0)
		rc = cfl_kit_manifest(f, l.n, ca_key, &text, &len, e);
	if (rc == 0 && cfl__path_join(path, sizeof(path), kit_dir, "startup/" SIG_FILE) != 0)
		rc = cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", kit_dir);
	if (rc == 0)
		rc = cfl__fs_write_file(path, text, len, 0644, e);
	free(text);
	for (size_t i = 0; i < l.n; i++)
		free(bufs[i]);
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

/* Compares one file with its digest in the (verified) manifest. */
static int check_one(const char *kit, const char *rel, const char *want, struct vstate *v,
                     struct cfl_err *e)
{
	char hex[DIGEST_HEX_LEN + 1];
	struct cfl_err tmp;
	int rc = file_digest(kit, rel, hex, &tmp);

	if (rc == CFL_ENOENT)
		problem(v, CFL_KIT_MISSING, rel);
	else if (rc == CFL_ETOOBIG || (rc == 0 && strcmp(hex, want) != 0))
		problem(v, CFL_KIT_CHANGED, rel);
	else if (rc != 0)
		return cfl_err_set(e, rc, "%s", tmp.msg);
	return 0;
}

/* Reads signature.json and checks its shape: every name one the manifest may hold, every
 * digest SHA-256 hex. A malformed file can only be forged: CFL_EVERIFY. */
static int load_manifest(const char *kit, json_t **out, struct cfl_err *e)
{
	char path[PATH_MAX], *buf = NULL;
	const char *why = NULL, *key;
	json_t *root, *files, *val;
	json_error_t je;
	size_t len = 0;
	int rc;

	*out = NULL;
	if (cfl__path_join(path, sizeof(path), kit, "startup/" SIG_FILE) != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", kit);
	rc = cfl__fs_read_file(path, SIG_FILE_MAX, &buf, &len, e);
	if (rc != 0)
		return rc;
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	free(buf);
	files = json_object_get(root, "files");
	if (root == NULL)
		why = je.text;
	else if (!json_is_object(root))
		why = "not a JSON object";
	else if (!json_is_string(json_object_get(root, "format")) ||
	         strcmp(json_string_value(json_object_get(root, "format")), MANIFEST_FMT) != 0)
		why = "not a '" MANIFEST_FMT "' manifest (a kit signed by an older cfl: provision "
		      "it again)";
	else if (!json_is_object(files))
		why = "no 'files' object";
	else if (!json_is_string(json_object_get(root, "signature")))
		why = "no 'signature'";
	if (why != NULL) {
		json_decref(root);
		return cfl_err_set(e, CFL_EVERIFY, "'%s' is not a valid signature file: %s", path,
		                   why);
	}
	json_object_foreach (files, key, val) {
		/* A name that points outside the kit can only be forged. */
		if (!name_ok(key))
			rc = cfl_err_set(e, CFL_EVERIFY, "signature file names a bad path '%s'",
			                 key);
		else if (!is_digest(json_string_value(val)))
			rc = cfl_err_set(e, CFL_EVERIFY,
			                 "signature file has no SHA-256 digest for '%s'", key);
		if (rc != 0) {
			json_decref(root); /* after the message: `key` lives in it */
			return rc;
		}
	}
	*out = root;
	return 0;
}

/* The manifest's signature by the kit's issuing CA: the issuer of the kit's own certificate
 * (startup/server.crt or client.crt, leaf then chain) when that file chains to rootCA.pem, else
 * rootCA.pem itself. CFL_EVERIFY when it does not verify. */
static int check_signature(const char *kit, json_t *root, const struct cfl_pki_trust *t,
                           struct cfl_err *e)
{
	const struct cfl_pki_cert *ca = cfl_pki_trust_issuer(t);
	int via_chain = !cfl_pki_cert_equal(ca, cfl_pki_trust_anchor(t));
	const char *b64 = json_string_value(json_object_get(root, "signature"));
	uint8_t *sig = NULL;
	size_t len = 0, sig_len = 0;
	struct cfl_err tmp;
	char *text = NULL;
	int rc = canonical(json_object_get(root, "files"), &text, &len, e);

	if (rc == 0 && (cfl_base64_decode(b64, strlen(b64), &sig, &sig_len) != 0 ||
	                cfl_pki_verify(ca, text, len, sig, sig_len, &tmp) != 0))
		rc = cfl_err_set(e, CFL_EVERIFY,
		                 "kit '%s': the signature of 'startup/" SIG_FILE
		                 "' does not verify with %s",
		                 kit,
		                 via_chain ? "the kit's issuing CA (the chain of its certificate)"
		                           : "'startup/rootCA.pem'");
	free(text);
	free(sig);
	return rc;
}

/* The kit's own certificate file, startup/server.crt or startup/client.crt, into buf. */
static int own_cert_path(const char *kit, const char *base, char *buf, size_t size)
{
	char rel[32];

	snprintf(rel, sizeof(rel), "startup/%s.crt", base);
	return cfl__path_join(buf, size, kit, rel) == 0 && cfl__fs_exists(buf) ? 0 : CFL_ENOENT;
}

/* The trust of the kit: rootCA.pem and the chain of its own certificate when there is one
 * that parses and chains; rootCA.pem alone otherwise. */
static int kit_trust(const char *kit, struct cfl_pki_trust **t, struct cfl_err *e)
{
	static const char *const bases[] = {"server", "client"};
	char anchor[PATH_MAX], own[PATH_MAX];
	struct cfl_err tmp;

	if (cfl__path_join(anchor, sizeof(anchor), kit, "startup/rootCA.pem") != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", kit);
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		if (own_cert_path(kit, bases[i], own, sizeof(own)) == 0 &&
		    cfl_pki_trust_load(anchor, own, t, &tmp) == 0)
			return 0;
	}
	if (cfl_pki_trust_load(anchor, NULL, t, e) != 0)
		return cfl_err_prefix(e, "cannot check kit '%s'", kit);
	return 0;
}

/* A private key in the kit must match its certificate (the key is not in the manifest). */
static void check_keys(const char *kit, struct vstate *v)
{
	static const char *const bases[] = {"server", "client"};
	char path[PATH_MAX], rel[32];

	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		struct cfl_pki_cert *cert = NULL;
		struct cfl_pki_key *key = NULL;
		struct cfl_err tmp;

		snprintf(rel, sizeof(rel), "startup/%s.key", bases[i]);
		if (cfl__path_join(path, sizeof(path), kit, rel) != 0 || !cfl__fs_exists(path))
			continue;
		if (own_cert_path(kit, bases[i], path, sizeof(path)) == 0 &&
		    cfl_pki_cert_load(path, &cert, &tmp) == 0 &&
		    cfl__path_join(path, sizeof(path), kit, rel) == 0 &&
		    cfl_pki_key_load(path, &key, &tmp) == 0 && !cfl_pki_cert_matches_key(cert, key))
			problem(v, CFL_KIT_CHANGED, rel);
		cfl_pki_cert_free(cert);
		cfl_pki_key_free(key);
	}
}

int cfl_kit_verify(const char *kit_dir, cfl_kit_problem_fn fn, void *arg, struct cfl_err *e)
{
	struct vstate v = {.fn = fn, .arg = arg, .count = 0, .first = ""};
	struct cfl_pki_trust *trust = NULL;
	struct names l = {.n = 0};
	json_t *root = NULL, *files, *val;
	const char *key;
	int rc;

	rc = list_kit(kit_dir, &l, e);
	if (rc == 0)
		rc = load_manifest(kit_dir, &root, e);
	if (rc == 0)
		rc = kit_trust(kit_dir, &trust, e);
	if (rc == 0 && (rc = check_signature(kit_dir, root, trust, e)) == CFL_EVERIFY) {
		/* Nothing the manifest says can be trusted: no file is compared with it. */
		if (fn != NULL)
			fn(CFL_KIT_CHANGED, "startup/" SIG_FILE, arg);
		CFL_DEBUG("%s", e->msg);
	}
	if (rc != 0)
		goto out;
	files = json_object_get(root, "files");
	json_object_foreach (files, key, val) {
		rc = check_one(kit_dir, key, json_string_value(val), &v, e);
		if (rc != 0)
			goto out;
	}
	for (size_t i = 0; i < l.n; i++) {
		if (json_object_get(files, l.v[i]) == NULL)
			problem(&v, CFL_KIT_ADDED, l.v[i]);
	}
	check_keys(kit_dir, &v);
	if (v.count > 0)
		rc = cfl_err_set(e, CFL_EVERIFY,
		                 "kit '%s' has %d changed, missing or added file%s: %s", kit_dir,
		                 v.count, v.count == 1 ? "" : "s", v.first);
out:
	json_decref(root);
	cfl_pki_trust_free(trust);
	names_release(&l);
	return rc;
}
