/* The workspace's CA (self-made or enterprise), the record of issued certificates and the
 * CRL. See ca_state.h for the files. */
#include "ca_state.h"

#include "util/fs.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int path_in(char *buf, const char *dir, const char *file, struct cfl_err *e)
{
	if (cfl__path_join(buf, PATH_MAX, dir, file) != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s/%s'", dir, file);
	return 0;
}

void cfl__ca_release(struct cfl__ca *ca)
{
	cfl_pki_key_free(ca->key);
	cfl_pki_cert_free(ca->cert);
	cfl_pki_cert_free(ca->anchor);
	cfl_pki_trust_free(ca->trust);
	free(ca->chain_pem);
	free(ca->anchor_pem);
	memset(ca, 0, sizeof(*ca));
}

/* Trust and chain text from anchor + issuing certs; the key must match the issuing CA. */
static int finish(struct cfl__ca *ca, struct cfl_pki_cert **chain, size_t n, struct cfl_err *e)
{
	int rc = cfl_pki_trust_new(ca->anchor, chain, n, &ca->trust, e);

	if (rc == 0)
		rc = cfl_pki_trust_chain_pem(ca->trust, &ca->chain_pem, &ca->chain_len, e);
	if (rc == 0)
		rc = cfl_pki_cert_to_pem(ca->anchor, &ca->anchor_pem, &ca->anchor_len, e);
	if (rc == 0 && !cfl_pki_cert_matches_key(cfl_pki_trust_issuer(ca->trust), ca->key))
		rc = cfl_err_set(e, CFL_EVERIFY, "the CA key does not match the issuing CA");
	if (rc == 0 && ca->cert == NULL && (ca->cert = n > 0 ? chain[0] : NULL) != NULL)
		chain[0] = NULL; /* moved */
	return rc;
}

int cfl__ca_open(const char *state_dir, struct cfl__ca *ca, struct cfl_err *e)
{
	char key[PATH_MAX], anchor[PATH_MAX], issuing[PATH_MAX];
	struct cfl_pki_cert **chain = NULL;
	size_t n = 0;
	int rc;

	memset(ca, 0, sizeof(*ca));
	if ((rc = path_in(anchor, state_dir, "rootCA.pem", e)) != 0 ||
	    (rc = path_in(issuing, state_dir, "issuingCA.pem", e)) != 0 ||
	    (rc = path_in(key, state_dir, "issuingCA.key", e)) != 0)
		return rc;
	if (!cfl__fs_exists(key)) {
		if ((rc = path_in(key, state_dir, "rootCA.key", e)) != 0)
			return rc;
		issuing[0] = '\0';
	}
	if (!cfl__fs_exists(key))
		return cfl_err_set(e, CFL_ENOENT, "no CA in '%s'", state_dir);
	if ((rc = cfl_pki_key_load(key, &ca->key, e)) == 0 &&
	    (rc = cfl_pki_cert_load(anchor, &ca->anchor, e)) == 0 && issuing[0] != '\0')
		rc = cfl_pki_certs_load(issuing, &chain, &n, e);
	if (rc == 0)
		rc = finish(ca, chain, n, e);
	if (rc == 0 && ca->cert == NULL && (rc = cfl_pki_cert_load(anchor, &ca->cert, e)) != 0)
		rc = cfl_err_prefix(e, "CA in '%s'", state_dir);
	cfl_pki_certs_free(chain, n);
	if (rc != 0) {
		cfl__ca_release(ca);
		return cfl_err_prefix(e, "cannot use the CA in '%s'", state_dir);
	}
	return 0;
}

int cfl__ca_create(const char *state_dir, const char *cn, int days, enum cfl_key_type type,
                   struct cfl__ca *ca, struct cfl_err *e)
{
	struct cfl_pki_cert_req req = {.cn = cn, .usage = CFL_PKI_USAGE_CA, .days = days};
	char key[PATH_MAX], cert[PATH_MAX];
	int rc;

	memset(ca, 0, sizeof(*ca));
	if ((rc = path_in(key, state_dir, "rootCA.key", e)) != 0 ||
	    (rc = path_in(cert, state_dir, "rootCA.pem", e)) != 0)
		return rc;
	if ((rc = cfl_pki_key_generate(type, &ca->key, e)) == 0 &&
	    (rc = cfl_pki_ca_create(ca->key, &req, &ca->anchor, e)) == 0 &&
	    (rc = cfl_pki_key_save(ca->key, key, e)) == 0 &&
	    (rc = cfl_pki_cert_save(ca->anchor, cert, e)) == 0 &&
	    (rc = finish(ca, NULL, 0, e)) == 0)
		rc = cfl_pki_cert_load(cert, &ca->cert, e);
	if (rc != 0)
		cfl__ca_release(ca);
	return rc;
}

/* The enterprise CA's certificates: the issuing CA, then the chain; the anchor at the end
 * (or the issuing CA when it is self-signed). all[] receives up to CFL_PKI_CHAIN_MAX. */
static int gather(const char *cert_file, const char *chain_file, struct cfl_pki_cert ***all,
                  size_t *n, struct cfl_err *e)
{
	struct cfl_pki_cert **more = NULL;
	size_t m = 0;
	int rc = cfl_pki_certs_load(cert_file, all, n, e);

	if (rc != 0 || chain_file == NULL)
		return rc;
	if ((rc = cfl_pki_certs_load(chain_file, &more, &m, e)) == 0 && *n + m > CFL_PKI_CHAIN_MAX)
		rc = cfl_err_set(e, CFL_ETOOBIG, "more than %d certificates in '%s' and '%s'",
		                 CFL_PKI_CHAIN_MAX, cert_file, chain_file);
	for (size_t i = 0; rc == 0 && i < m; i++) {
		(*all)[(*n)++] = more[i];
		more[i] = NULL;
	}
	cfl_pki_certs_free(more, m);
	return rc;
}

static int save_text(const char *dir, const char *file, const char *text, size_t len, unsigned mode,
                     struct cfl_err *e)
{
	char path[PATH_MAX];
	int rc = path_in(path, dir, file, e);

	return rc != 0 ? rc : cfl__fs_write_file(path, text, len, mode, e);
}

int cfl__ca_import(const char *state_dir, const char *cert_file, const char *key_file,
                   const char *chain_file, struct cfl__ca *ca, struct cfl_err *e)
{
	struct cfl_pki_cert **all = NULL;
	char key[PATH_MAX], *pem = NULL;
	size_t n = 0, len = 0;
	int rc;

	memset(ca, 0, sizeof(*ca));
	if ((rc = cfl_pki_key_load(key_file, &ca->key, e)) != 0 ||
	    (rc = gather(cert_file, chain_file, &all, &n, e)) != 0)
		goto out;
	/* The top certificate is the anchor (a root); a lone self-signed CA anchors itself. */
	if (!cfl_pki_cert_self_signed(all[n - 1])) {
		rc = cfl_err_set(e, CFL_ECONFIG,
		                 "'%s' does not end in a self-signed root: give the chain up to "
		                 "the root with --ca-chain",
		                 chain_file != NULL ? chain_file : cert_file);
		goto out;
	}
	if ((rc = cfl_pki_cert_to_pem(all[n - 1], &pem, &len, e)) != 0 ||
	    (rc = cfl_pki_cert_load_pem(pem, len, &ca->anchor, e)) != 0)
		goto out;
	rc = finish(ca, all, n > 1 ? n - 1 : 0, e);
	if (rc == 0 && ca->cert == NULL)
		rc = cfl_pki_cert_load_pem(pem, len, &ca->cert, e);
	if (rc != 0) {
		cfl_err_prefix(e, "enterprise CA '%s'", cert_file);
		goto out;
	}
	if ((rc = save_text(state_dir, "rootCA.pem", pem, len, 0644, e)) != 0 ||
	    (rc = path_in(key, state_dir, n > 1 ? "issuingCA.key" : "rootCA.key", e)) != 0 ||
	    (rc = cfl_pki_key_save(ca->key, key, e)) != 0)
		goto out;
	/* chain_pem starts with the issuing CA itself. */
	if (n > 1)
		rc = save_text(state_dir, "issuingCA.pem", ca->chain_pem, ca->chain_len, 0644, e);
out:
	free(pem);
	cfl_pki_certs_free(all, n);
	if (rc != 0)
		cfl__ca_release(ca);
	return rc;
}

int cfl__ca_leaf_pem(const struct cfl__ca *ca, const struct cfl_pki_cert *leaf, char **pem,
                     size_t *len, struct cfl_err *e)
{
	char *one = NULL, *both;
	size_t n = 0;
	int rc = cfl_pki_cert_to_pem(leaf, &one, &n, e);

	if (rc != 0)
		return rc;
	both = malloc(n + ca->chain_len + 1);
	if (both == NULL) {
		free(one);
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	}
	memcpy(both, one, n);
	memcpy(both + n, ca->chain_pem, ca->chain_len);
	both[n + ca->chain_len] = '\0';
	free(one);
	*pem = both;
	*len = n + ca->chain_len;
	return 0;
}

/* ---- records and the CRL ---- */

static int records_load(const char *path, json_t **out, struct cfl_err *e)
{
	char *text = NULL;
	size_t len = 0;
	json_error_t je;
	json_t *root;
	int rc = cfl__fs_read_file(path, CFL__CA_RECORDS_MAX, &text, &len, e);

	if (rc == CFL_ENOENT) {
		*out = json_pack("{s:I, s:[]}", "crl_number", (json_int_t)0, "certs");
		return *out != NULL ? 0 : cfl_err_set(e, CFL_ENOMEM, "out of memory");
	}
	if (rc != 0)
		return rc;
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	free(text);
	if (!json_is_object(root) || !json_is_array(json_object_get(root, "certs")) ||
	    !json_is_integer(json_object_get(root, "crl_number"))) {
		json_decref(root);
		return cfl_err_set(e, CFL_EPARSE, "'%s' is not a certificate record", path);
	}
	*out = root;
	return 0;
}

static int records_save(const char *path, json_t *root, struct cfl_err *e)
{
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	int rc;

	if (text == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	rc = cfl__fs_write_file(path, text, strlen(text), 0600, e);
	free(text);
	return rc;
}

int cfl__ca_entry_of(const struct cfl_pki_cert *cert, struct cfl__ca_entry *out)
{
	time_t nb = 0;

	if (cfl_pki_cert_serial(cert, out->serial, sizeof(out->serial)) != 0 ||
	    cfl_pki_cert_validity(cert, &nb, &out->not_after) != 0)
		return CFL_EPARSE;
	return 0;
}

static int record_one(json_t *certs, const char *name, const struct cfl__ca_entry *en,
                      struct cfl_err *e)
{
	if (json_array_append_new(certs,
	                          json_pack("{s:s, s:s, s:I}", "name", name, "serial", en->serial,
	                                    "not_after", (json_int_t)en->not_after)) != 0)
		return cfl_err_set(e, CFL_ENOMEM, "cannot record the certificate of '%s'", name);
	return 0;
}

int cfl__ca_record_many(const char *state_dir, const char *const *names,
                        const struct cfl__ca_entry *entries, size_t n, struct cfl_err *e)
{
	char path[PATH_MAX];
	json_t *root = NULL;
	int rc;

	if ((rc = path_in(path, state_dir, "certs.json", e)) != 0 ||
	    (rc = records_load(path, &root, e)) != 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = record_one(json_object_get(root, "certs"), names[i], &entries[i], e);
	if (rc == 0)
		rc = records_save(path, root, e);
	json_decref(root);
	return rc;
}

int cfl__ca_record(const char *state_dir, const char *name, const struct cfl_pki_cert *cert,
                   struct cfl_err *e)
{
	struct cfl__ca_entry en;

	if (cfl__ca_entry_of(cert, &en) != 0)
		return cfl_err_set(e, CFL_ENOMEM, "cannot record the certificate of '%s'", name);
	return cfl__ca_record_many(state_dir, &name, &en, 1, e);
}

/* Marks name's unrevoked entries; counts them into *n and every revoked entry into *all. */
static void mark(json_t *certs, const char *name, int reason, time_t now, int *n, size_t *all)
{
	size_t i;
	json_t *c;

	*n = 0;
	*all = 0;
	json_array_foreach (certs, i, c) {
		json_t *rev = json_object_get(c, "revoked");
		const char *who = json_string_value(json_object_get(c, "name"));

		if (rev == NULL && who != NULL && strcmp(who, name) == 0) {
			json_object_set_new(
			        c, "revoked",
			        json_pack("{s:I, s:i}", "when", (json_int_t)now, "reason", reason));
			(*n)++;
		}
		if (json_object_get(c, "revoked") != NULL)
			(*all)++;
	}
}

static int write_crl(const char *state_dir, const struct cfl__ca *ca, json_t *root, size_t all,
                     struct cfl_err *e)
{
	struct cfl_pki_revoked *list = calloc(all + 1, sizeof(*list));
	json_int_t number = json_integer_value(json_object_get(root, "crl_number")) + 1;
	char *pem = NULL;
	size_t i, k = 0, len = 0;
	json_t *c;
	int rc;

	if (list == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	json_array_foreach (json_object_get(root, "certs"), i, c) {
		json_t *rev = json_object_get(c, "revoked");

		if (rev == NULL || k >= all)
			continue;
		list[k].serial_hex = json_string_value(json_object_get(c, "serial"));
		list[k].when = (time_t)json_integer_value(json_object_get(rev, "when"));
		list[k++].reason = (int)json_integer_value(json_object_get(rev, "reason"));
	}
	rc = cfl_pki_crl_create(ca->key, ca->cert, list, k, (uint64_t)number, CFL__CRL_DAYS, 0,
	                        &pem, &len, e);
	if (rc == 0)
		rc = save_text(state_dir, "crl.pem", pem, len, 0644, e);
	if (rc == 0)
		json_object_set_new(root, "crl_number", json_integer(number));
	free(pem);
	free(list);
	return rc;
}

int cfl__ca_revoke(const char *state_dir, const struct cfl__ca *ca, const char *name, int reason,
                   int *n, struct cfl_err *e)
{
	char path[PATH_MAX];
	json_t *root = NULL;
	size_t all = 0;
	int rc, had = 0;
	size_t i;
	json_t *c;

	if ((rc = path_in(path, state_dir, "certs.json", e)) != 0 ||
	    (rc = records_load(path, &root, e)) != 0)
		return rc;
	json_array_foreach (json_object_get(root, "certs"), i, c) {
		const char *who = json_string_value(json_object_get(c, "name"));

		had |= who != NULL && strcmp(who, name) == 0;
	}
	if (!had) {
		json_decref(root);
		return cfl_err_set(e, CFL_ENOENT, "no certificate of '%s' is recorded in '%s'",
		                   name, path);
	}
	mark(json_object_get(root, "certs"), name, reason, time(NULL), n, &all);
	rc = write_crl(state_dir, ca, root, all, e);
	if (rc == 0)
		rc = records_save(path, root, e);
	json_decref(root);
	return rc;
}
