/* cfl package: an approval and the key made at the site become a normal startup kit. */
#define _DEFAULT_SOURCE
#include "certfile.h"

#include "cfl/kit.h"
#include "util/fs.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct cfl_cert_approval {
	json_t *root;
	enum cfl_ptype type;
	struct cfl_pki_cert *root_ca;
	struct cfl_pki_cert **own; /* the certificate file: leaf, then chain */
	size_t n_own;
};

void cfl_cert_approval_free(struct cfl_cert_approval *a)
{
	if (a == NULL)
		return;
	json_decref(a->root);
	cfl_pki_cert_free(a->root_ca);
	cfl_pki_certs_free(a->own, a->n_own);
	free(a);
}

const struct cfl_pki_cert *cfl_cert_approval_root(const struct cfl_cert_approval *a)
{
	return a != NULL ? a->root_ca : NULL;
}

static const char *file_text(json_t *root, const char *rel, size_t *len)
{
	json_t *t = json_object_get(json_object_get(json_object_get(root, "files"), rel), "text");

	*len = json_string_length(t);
	return json_string_value(t);
}

static const char *cert_name(enum cfl_ptype t)
{
	return t == CFL_PT_SERVER ? "startup/server.crt" : "startup/client.crt";
}

/* The root CA and the certificate file; the leaf must chain through the issuing CA. */
static int approval_certs(struct cfl_cert_approval *a, struct cfl_pki_trust **t, struct cfl_err *e)
{
	const char *text;
	size_t len = 0;
	int rc;

	if ((text = file_text(a->root, "startup/rootCA.pem", &len)) == NULL)
		return cfl_err_set(e, CFL_EPARSE, "no startup/rootCA.pem in the approval");
	if ((rc = cfl_pki_cert_load_pem(text, len, &a->root_ca, e)) != 0)
		return rc;
	if ((text = file_text(a->root, cert_name(a->type), &len)) == NULL)
		return cfl_err_set(e, CFL_EPARSE, "no %s in the approval", cert_name(a->type));
	if ((rc = cfl_pki_certs_load_pem(text, len, &a->own, &a->n_own, e)) != 0 ||
	    (rc = cfl_pki_trust_new(a->root_ca, a->own + 1, a->n_own - 1, t, e)) != 0)
		return rc;
	return cfl_pki_trust_verify(*t, a->own[0], 0, e);
}

static int approval_signature(struct cfl_cert_approval *a, const struct cfl_pki_trust *t,
                              struct cfl_err *e)
{
	json_t *s = json_object_get(a->root, "signature");
	uint8_t *sig = NULL;
	size_t len = 0, sig_len = 0;
	char *canon = NULL;
	int rc;

	if (!json_is_string(s))
		return cfl_err_set(e, CFL_EPARSE, "no 'signature'");
	if ((rc = cfl__approval_canonical(a->root, &canon, &len, e)) != 0)
		return rc;
	if (cfl_base64_decode(json_string_value(s), json_string_length(s), &sig, &sig_len) != 0 ||
	    cfl_pki_verify(cfl_pki_trust_issuer(t), canon, len, sig, sig_len, NULL) != 0)
		rc = cfl_err_set(e, CFL_EVERIFY,
		                 "the approval's signature does not verify with its issuing CA "
		                 "(changed after approval?)");
	free(canon);
	free(sig);
	return rc;
}

static int approval_check(struct cfl_cert_approval *a, struct cfl_err *e)
{
	json_t *fmt = json_object_get(a->root, "format");
	struct cfl_pki_trust *t = NULL;
	char *canon = NULL;
	size_t len = 0;
	int rc;

	if (!json_is_object(a->root) || !json_is_string(fmt) ||
	    strcmp(json_string_value(fmt), CFL__APPROVAL_FMT) != 0)
		return cfl_err_set(e, CFL_EPARSE, "not a '" CFL__APPROVAL_FMT "' approval");
	if (cfl_cert_type_parse(json_string_value(json_object_get(a->root, "type")), &a->type) != 0)
		return cfl_err_set(e, CFL_EPARSE, "'type' is not client, admin or server");
	/* The shape (names, modes, texts) first: the canonical text checks it. */
	if ((rc = cfl__approval_canonical(a->root, &canon, &len, e)) != 0)
		return rc;
	free(canon);
	rc = approval_certs(a, &t, e);
	if (rc == 0)
		rc = approval_signature(a, t, e);
	cfl_pki_trust_free(t);
	return rc;
}

int cfl_cert_approval_parse(const char *text, size_t len, struct cfl_cert_approval **out,
                            struct cfl_err *e)
{
	struct cfl_cert_approval *a;
	json_error_t je;
	int rc;

	if (text == NULL || out == NULL)
		return cfl_err_set(e, CFL_EINVAL, "no approval");
	if (len > CFL_CERT_FILE_MAX)
		return cfl_err_set(e, CFL_ETOOBIG, "approval larger than %zu bytes",
		                   CFL_CERT_FILE_MAX);
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	a->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	rc = a->root == NULL
	             ? cfl_err_set(e, CFL_EPARSE, "not JSON: %s (line %d)", je.text, je.line)
	             : approval_check(a, e);
	if (rc != 0) {
		cfl_cert_approval_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

/* ---- writing the kit ---- */

static int write_files(const struct cfl_cert_approval *a, const char *kit, struct cfl_err *e)
{
	static const char *const dirs[] = {"startup", "local", "transfer"};
	char path[PATH_MAX];
	const char *rel;
	json_t *f;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (cfl__path_join(path, sizeof(path), kit, dirs[i]) != 0)
			return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", kit);
		rc = cfl__fs_mkdirs(path, 0755, e);
	}
	json_object_foreach (json_object_get(a->root, "files"), rel, f) {
		json_t *t = json_object_get(f, "text");

		if (rc != 0)
			break;
		if (cfl__path_join(path, sizeof(path), kit, rel) != 0)
			return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", kit);
		rc = cfl__fs_write_file(path, json_string_value(t), json_string_length(t),
		                        (mode_t)json_integer_value(json_object_get(f, "mode")), e);
	}
	return rc;
}

static int load_approval(const char *path, struct cfl_cert_approval **a, struct cfl_err *e)
{
	char *text = NULL;
	size_t len = 0;
	int rc = cfl__fs_read_file(path, CFL_CERT_FILE_MAX, &text, &len, e);

	if (rc == 0 && (rc = cfl_cert_approval_parse(text, len, a, e)) != 0)
		cfl_err_prefix(e, "approval '%s' refused", path);
	free(text);
	return rc;
}

/* The kit folder must be new (or an empty folder). */
static int check_kit_dir(const char *kit, struct cfl_err *e)
{
	struct stat st;

	if (lstat(kit, &st) != 0)
		return errno == ENOENT ? 0 : cfl_err_set(e, CFL_EIO, "cannot use '%s'", kit);
	if (!S_ISDIR(st.st_mode) || rmdir(kit) != 0)
		return cfl_err_set(e, CFL_EEXIST, "'%s' exists and is not an empty folder", kit);
	return 0;
}

int cfl_cert_package(const char *approval, const char *key_path, const char *kit_dir,
                     const char *expected_fp, char *fp, struct cfl_err *e)
{
	struct cfl_cert_approval *a = NULL;
	struct cfl_pki_key *key = NULL;
	char path[PATH_MAX];
	int rc;

	if ((rc = load_approval(approval, &a, e)) != 0 ||
	    (rc = cfl_pki_cert_fingerprint(a->root_ca, fp, CFL_PKI_FINGERPRINT_MAX)) != 0)
		goto out;
	if (expected_fp != NULL && !cfl_pki_cert_fingerprint_match(a->root_ca, expected_fp)) {
		rc = cfl_err_set(e, CFL_EVERIFY,
		                 "the approval's root CA fingerprint is %s, not the expected %s",
		                 fp, expected_fp);
		goto out;
	}
	if ((rc = cfl_pki_key_load(key_path, &key, e)) != 0)
		goto out;
	if (!cfl_pki_cert_matches_key(a->own[0], key)) {
		rc = cfl_err_set(e, CFL_EVERIFY, "key '%s' does not match the approved certificate",
		                 key_path);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/startup/%s.key", kit_dir,
	         a->type == CFL_PT_SERVER ? "server" : "client");
	if ((rc = check_kit_dir(kit_dir, e)) != 0 || (rc = cfl__fs_mkdirs(kit_dir, 0755, e)) != 0 ||
	    (rc = write_files(a, kit_dir, e)) != 0 || (rc = cfl_pki_key_save(key, path, e)) != 0)
		goto out;
	rc = cfl_kit_verify(kit_dir, NULL, NULL, e);
out:
	cfl_pki_key_free(key);
	cfl_cert_approval_free(a);
	return rc;
}
