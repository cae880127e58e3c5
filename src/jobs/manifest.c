/* Signed jobs: the manifest of a job's files, its signature by the submitting admin, and the
 * checks the server and every site make of a bundle before they use any of its files
 * (include/cfl/manifest.h, docs/jobs.md "Signed jobs"). */
#include "cfl/manifest.h"
#include "jobs_int.h"

#include "util/reader.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_LEN (sizeof(CFL_MANIFEST_HEADER) - 1)
#define HEX_LEN    (2 * CFL_SHA256_LEN)

/* The roles an admin certificate may name (SPEC §1); a site or server certificate has none. */
static const char *const admin_roles[] = {"project_admin", "org_admin", "lead", "member"};

static int sha256(const void *data, size_t len, uint8_t out[CFL_SHA256_LEN])
{
	struct cfl_sha256 *h = cfl_sha256_new();

	if (h == NULL)
		return CFL_ENOMEM;
	cfl_sha256_update(h, data, len);
	cfl_sha256_final(h, out);
	cfl_sha256_free(h);
	return 0;
}

/* A name as the manifest holds it: NUL-terminated within its array, and a plain name. */
static int good_name(const char name[CFL_MANIFEST_NAME_MAX + 1])
{
	return memchr(name, '\0', CFL_MANIFEST_NAME_MAX + 1) != NULL && cfl__job_safe_name(name);
}

const struct cfl_manifest_file *cfl_manifest_find(const struct cfl_manifest *m, const char *name)
{
	for (size_t i = 0; i < m->n && i < CFL_MANIFEST_MAX_FILES; i++) {
		if (strcmp(m->files[i].name, name) == 0)
			return &m->files[i];
	}
	return NULL;
}

int cfl_manifest_add(struct cfl_manifest *m, const char *name, const void *data, size_t len,
                     struct cfl_err *e)
{
	struct cfl_manifest_file *f;

	if (!cfl__job_safe_name(name))
		return cfl_err_set(e, CFL_EINVAL, "bad file name '%s' in the job", name);
	if (cfl_manifest_find(m, name) != NULL)
		return cfl_err_set(e, CFL_EINVAL, "'%s' is twice in the job", name);
	if (m->n >= CFL_MANIFEST_MAX_FILES)
		return cfl_err_set(e, CFL_ETOOBIG, "the job has more than %d files",
		                   CFL_MANIFEST_MAX_FILES);
	f = &m->files[m->n];
	if (sha256(data, len, f->sha256) != 0)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	snprintf(f->name, sizeof(f->name), "%s", name);
	m->n++;
	return 0;
}

/* --- the text --------------------------------------------------------------------------- */

static int cmp_file(const void *a, const void *b)
{
	return strcmp((*(const struct cfl_manifest_file *const *)a)->name,
	              (*(const struct cfl_manifest_file *const *)b)->name);
}

int cfl_manifest_text(const struct cfl_manifest *m, char **text, size_t *len, struct cfl_err *e)
{
	const struct cfl_manifest_file *v[CFL_MANIFEST_MAX_FILES];
	struct cfl_writer w;
	char hex[HEX_LEN + 1], *buf;

	*text = NULL;
	*len = 0;
	if (m->n == 0 || m->n > CFL_MANIFEST_MAX_FILES)
		return cfl_err_set(e, CFL_EINVAL, "a job manifest lists 1..%d files",
		                   CFL_MANIFEST_MAX_FILES);
	for (size_t i = 0; i < m->n; i++) {
		if (!good_name(m->files[i].name))
			return cfl_err_set(e, CFL_EINVAL, "bad file name in the job manifest");
		v[i] = &m->files[i];
	}
	/* Sorted, so that one set of files has one text: the signature covers it byte for byte. */
	qsort(v, m->n, sizeof(v[0]), cmp_file);
	for (size_t i = 1; i < m->n; i++) {
		if (strcmp(v[i - 1]->name, v[i]->name) == 0)
			return cfl_err_set(e, CFL_EINVAL, "'%s' is twice in the job", v[i]->name);
	}
	buf = malloc(CFL_MANIFEST_TEXT_MAX + 1);
	if (buf == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	cfl__wr_init(&w, buf, CFL_MANIFEST_TEXT_MAX);
	cfl__wr_put_bytes(&w, CFL_MANIFEST_HEADER, HEADER_LEN);
	for (size_t i = 0; i < m->n; i++) {
		cfl_hex(v[i]->sha256, CFL_SHA256_LEN, hex);
		cfl__wr_put_bytes(&w, hex, HEX_LEN);
		cfl__wr_put_u8(&w, ' ');
		cfl__wr_put_bytes(&w, v[i]->name, strlen(v[i]->name));
		cfl__wr_put_u8(&w, '\n');
	}
	if (w.err != 0) { /* CFL_MANIFEST_TEXT_MAX fits 64 of the longest lines */
		free(buf);
		return cfl_err_set(e, CFL_ETOOBIG, "the job manifest is too long");
	}
	buf[w.off] = '\0';
	*text = buf;
	*len = w.off;
	return 0;
}

static int unhex_lower(const uint8_t *hex, uint8_t out[CFL_SHA256_LEN])
{
	for (size_t i = 0; i < HEX_LEN; i++) {
		uint8_t c = hex[i], d;

		/* Lowercase only: "AB" and "ab" would be two texts for one manifest. */
		if (c >= '0' && c <= '9')
			d = (uint8_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (uint8_t)(c - 'a' + 10);
		else
			return -1;
		out[i / 2] = (uint8_t)(i % 2 == 0 ? d << 4 : out[i / 2] | d);
	}
	return 0;
}

static int name_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

/* One line: 64 lowercase hex digits, one space, a plain name, '\n'. NULL, or why not. */
static const char *parse_line(struct cfl_reader *r, struct cfl_manifest_file *f)
{
	const uint8_t *hex = cfl__rd_get_bytes(r, HEX_LEN);
	size_t n = 0;
	uint8_t c;

	if (hex == NULL || unhex_lower(hex, f->sha256) != 0)
		return "no SHA-256 in lowercase hex";
	if (cfl__rd_get_u8(r) != ' ' || r->err != 0)
		return "no single space after the digest";
	for (;;) {
		c = cfl__rd_get_u8(r);
		if (r->err != 0)
			return "no end of line";
		if (c == '\n')
			break;
		if (!name_char(c) || n == CFL_MANIFEST_NAME_MAX)
			return "not a plain file name (1..128 of A-Z a-z 0-9 . _ -)";
		f->name[n++] = (char)c;
	}
	f->name[n] = '\0';
	if (!cfl__job_safe_name(f->name))
		return "not a plain file name (1..128 of A-Z a-z 0-9 . _ -)";
	return NULL;
}

int cfl_manifest_parse(const char *text, size_t len, struct cfl_manifest *m, struct cfl_err *e)
{
	struct cfl_reader r;
	const uint8_t *head;
	const char *why;
	int line = 1;

	m->n = 0;
	if (len > CFL_MANIFEST_TEXT_MAX)
		return cfl_err_set(e, CFL_ETOOBIG, "the job manifest is larger than %zu bytes",
		                   (size_t)CFL_MANIFEST_TEXT_MAX);
	cfl__rd_init(&r, text, len);
	head = cfl__rd_get_bytes(&r, HEADER_LEN);
	if (head == NULL || memcmp(head, CFL_MANIFEST_HEADER, HEADER_LEN) != 0)
		return cfl_err_set(e, CFL_EPARSE,
		                   "bad job manifest: line 1: not 'cfl-job-manifest 1'");
	while (cfl__rd_left(&r) > 0) {
		struct cfl_manifest_file *f = &m->files[m->n];

		line++;
		if (m->n == CFL_MANIFEST_MAX_FILES) {
			m->n = 0;
			return cfl_err_set(e, CFL_EPARSE,
			                   "bad job manifest: line %d: more than %d files", line,
			                   CFL_MANIFEST_MAX_FILES);
		}
		if ((why = parse_line(&r, f)) != NULL) {
			m->n = 0;
			return cfl_err_set(e, CFL_EPARSE, "bad job manifest: line %d: %s", line,
			                   why);
		}
		if (m->n > 0 && strcmp(m->files[m->n - 1].name, f->name) >= 0) {
			const char *prev = m->files[m->n - 1].name;

			m->n = 0;
			return cfl_err_set(e, CFL_EPARSE,
			                   "bad job manifest: line %d: '%s' after '%s' (names are "
			                   "sorted, each once)",
			                   line, f->name, prev);
		}
		m->n++;
	}
	if (m->n == 0)
		return cfl_err_set(e, CFL_EPARSE, "bad job manifest: no file");
	return 0;
}

int cfl_manifest_check(const struct cfl_manifest *m, const char *name, const void *data, size_t len,
                       struct cfl_err *e)
{
	const struct cfl_manifest_file *f = cfl_manifest_find(m, name);
	uint8_t d[CFL_SHA256_LEN];

	if (f == NULL)
		return cfl_err_set(e, CFL_EVERIFY, "'%s' is not in the signed manifest", name);
	if (sha256(data, len, d) != 0)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	if (!cfl_ct_equal(d, f->sha256, sizeof(d)))
		return cfl_err_set(e, CFL_EVERIFY, "'%s' does not match its signed digest", name);
	return 0;
}

/* --- signing ------------------------------------------------------------------------------ */

void cfl_manifest_signed_release(struct cfl_manifest_signed *s)
{
	if (s == NULL)
		return;
	free(s->manifest);
	free(s->signature);
	free(s->certificate);
	memset(s, 0, sizeof(*s));
}

int cfl_manifest_sign(const struct cfl_manifest *m, const struct cfl_pki_key *key,
                      const struct cfl_pki_cert *cert, struct cfl_manifest_signed *out,
                      struct cfl_err *e)
{
	uint8_t *sig = NULL;
	size_t sig_len = 0, text_len = 0, pem_len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!cfl_pki_cert_matches_key(cert, key))
		return cfl_err_set(e, CFL_EINVAL, "the certificate does not match the signing key");
	if ((rc = cfl_manifest_text(m, &out->manifest, &text_len, e)) != 0 ||
	    (rc = cfl_pki_sign(key, out->manifest, text_len, &sig, &sig_len, e)) != 0 ||
	    (rc = cfl_pki_cert_to_pem(cert, &out->certificate, &pem_len, e)) != 0)
		goto out;
	if (cfl_base64_encode(sig, sig_len, &out->signature) != 0)
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
out:
	free(sig);
	if (rc != 0)
		cfl_manifest_signed_release(out);
	return rc;
}

/* --- verifying ---------------------------------------------------------------------------- */

static int admin_role(const char *role)
{
	for (size_t i = 0; i < sizeof(admin_roles) / sizeof(admin_roles[0]); i++) {
		if (strcmp(role, admin_roles[i]) == 0)
			return 1;
	}
	return 0;
}

/* The certificate's subject into *who: an admin of the project, valid at `at`. */
static int check_signer(const struct cfl_pki_cert *cert, const struct cfl_pki_trust *trust,
                        time_t at, struct cfl_job_signer *who, struct cfl_err *e)
{
	int rc;

	if (cfl_pki_cert_cn(cert, who->name, sizeof(who->name)) != 0 || who->name[0] == '\0')
		return cfl_err_set(e, CFL_EVERIFY, "the job's certificate names no one (no CN)");
	if ((rc = cfl_pki_trust_verify(trust, cert, at, e)) != 0) {
		cfl_err_prefix(e, "the job's certificate ('%s') is not valid for this project",
		               who->name);
		return rc;
	}
	/* An identity certificate, not a CA's or the server's (the same rule as at login). */
	if ((rc = cfl_pki_cert_check_usage(cert, CFL_PKI_USAGE_CLIENT, e)) != 0) {
		cfl_err_prefix(e, "the job's certificate ('%s') cannot sign jobs", who->name);
		return rc;
	}
	/* A site's or the server's certificate has no role: only admins sign jobs. */
	if (cfl_pki_cert_role(cert, who->role, sizeof(who->role)) != 0 || !admin_role(who->role))
		return cfl_err_set(e, CFL_EVERIFY,
		                   "the job's certificate ('%s') is not an admin's: no admin role",
		                   who->name);
	if (cfl_pki_cert_org(cert, who->org, sizeof(who->org)) != 0 || who->org[0] == '\0')
		return cfl_err_set(e, CFL_EVERIFY,
		                   "the job's certificate ('%s') names no organisation (O)",
		                   who->name);
	return 0;
}

int cfl_manifest_verify_sig(const struct cfl_job_sig *s, const struct cfl_pki_trust *trust,
                            time_t at, struct cfl_job_signer *who, struct cfl_err *e)
{
	struct cfl_pki_cert *cert = NULL;
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	int rc;

	memset(who, 0, sizeof(*who));
	if (s->certificate_len > CFL_MANIFEST_CERT_MAX)
		return cfl_err_set(e, CFL_ETOOBIG, "the job's certificate is larger than %d bytes",
		                   CFL_MANIFEST_CERT_MAX);
	if (s->signature_len > CFL_MANIFEST_SIG_MAX)
		return cfl_err_set(e, CFL_ETOOBIG, "the job's signature is larger than %d bytes",
		                   CFL_MANIFEST_SIG_MAX);
	if ((rc = cfl_pki_cert_load_pem(s->certificate, s->certificate_len, &cert, e)) != 0) {
		cfl_err_prefix(e, "the job's certificate");
		return rc;
	}
	if ((rc = check_signer(cert, trust, at, who, e)) != 0)
		goto out;
	if (cfl_base64_decode(s->signature, s->signature_len, &sig, &sig_len) != 0) {
		rc = cfl_err_set(e, CFL_EPARSE, "the job's signature is not base64");
		goto out;
	}
	if (cfl_pki_verify(cert, s->manifest, s->manifest_len, sig, sig_len, e) != 0)
		rc = cfl_err_set(e, CFL_EVERIFY,
		                 "the job's manifest does not match its signature by '%s'",
		                 who->name);
out:
	if (rc != 0)
		memset(who, 0, sizeof(*who));
	free(sig);
	cfl_pki_cert_free(cert);
	return rc;
}

/* The bundle's files are exactly the manifest's, each with its digest. */
static int check_files(const struct cfl_manifest *m, json_t *files, struct cfl_err *e)
{
	const char *name;
	json_t *v;
	int rc = 0;

	if (json_object_size(files) > CFL_MANIFEST_MAX_FILES)
		return cfl_err_set(e, CFL_ETOOBIG, "the job has more than %d files",
		                   CFL_MANIFEST_MAX_FILES);
	json_object_foreach (files, name, v) {
		uint8_t *raw = NULL;
		size_t raw_len = 0;

		if (cfl_manifest_find(m, name) == NULL)
			return cfl_err_set(e, CFL_EVERIFY, "'%s' is not in the signed manifest",
			                   name);
		if (!json_is_string(v) ||
		    cfl_base64_decode(json_string_value(v), json_string_length(v), &raw, &raw_len))
			return cfl_err_set(e, CFL_EPARSE, "'%s' is not base64", name);
		rc = cfl_manifest_check(m, name, raw, raw_len, e);
		free(raw);
		if (rc != 0)
			return rc;
	}
	for (size_t i = 0; i < m->n; i++) {
		if (json_object_get(files, m->files[i].name) == NULL)
			return cfl_err_set(e, CFL_EVERIFY,
			                   "'%s' of the signed manifest is missing from the job",
			                   m->files[i].name);
	}
	return 0;
}

/* The string member `key` of the bundle, or NULL. */
static const char *member(json_t *b, const char *key, size_t *len)
{
	json_t *v = json_object_get(b, key);

	*len = json_string_length(v);
	return json_string_value(v);
}

int cfl__manifest_verify_json(json_t *b, const struct cfl_pki_trust *trust, time_t at,
                              struct cfl_job_signer *who, struct cfl_err *e)
{
	static const char *const known[] = {"files", "manifest", "signature", "certificate"};
	struct cfl_manifest *m = NULL;
	struct cfl_job_sig s;
	const char *key;
	json_t *v;
	int rc;

	memset(who, 0, sizeof(*who));
	if (!json_is_object(json_object_get(b, "files")))
		return cfl_err_set(e, CFL_EPARSE, "not a job bundle (a JSON {\"files\": {...}})");
	/* Anything beside the signed files would be data no one signed. */
	json_object_foreach (b, key, v) {
		size_t i = 0;

		while (i < sizeof(known) / sizeof(known[0]) && strcmp(key, known[i]) != 0)
			i++;
		if (i == sizeof(known) / sizeof(known[0]))
			return cfl_err_set(e, CFL_EVERIFY, "unknown member '%s' in the job bundle",
			                   key);
	}
	s.manifest = member(b, "manifest", &s.manifest_len);
	s.signature = member(b, "signature", &s.signature_len);
	s.certificate = member(b, "certificate", &s.certificate_len);
	if (s.manifest == NULL || s.signature == NULL || s.certificate == NULL)
		return cfl_err_set(e, CFL_EVERIFY,
		                   "the job is not signed (it needs 'manifest', 'signature' and "
		                   "'certificate' strings)");
	/* The signature first: the manifest's text is parsed only once an admin vouched for it. */
	if ((rc = cfl_manifest_verify_sig(&s, trust, at, who, e)) != 0)
		return rc;
	m = malloc(sizeof(*m));
	if (m == NULL)
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	else if ((rc = cfl_manifest_parse(s.manifest, s.manifest_len, m, e)) == 0)
		rc = check_files(m, json_object_get(b, "files"), e);
	free(m);
	if (rc != 0)
		memset(who, 0, sizeof(*who));
	return rc;
}

int cfl_manifest_verify_bundle(const char *text, size_t len, const struct cfl_pki_trust *trust,
                               time_t at, struct cfl_job_signer *who, struct cfl_err *e)
{
	json_error_t je;
	json_t *b;
	int rc;

	memset(who, 0, sizeof(*who));
	if (len > CFL_JOB_BUNDLE_MAX)
		return cfl_err_set(e, CFL_ETOOBIG, "the job is larger than %u bytes",
		                   CFL_JOB_BUNDLE_MAX);
	b = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (b == NULL)
		return cfl_err_set(e, CFL_EPARSE, "not a job bundle: line %d: %s", je.line,
		                   je.text);
	rc = cfl__manifest_verify_json(b, trust, at, who, e);
	json_decref(b);
	return rc;
}
