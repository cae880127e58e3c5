/* Unit tests for signed jobs (cfl/manifest.h, src/jobs/manifest.c): the manifest's canonical
 * text, its parser (every refusal with its message), the signature by an admin and its check
 * (chain, validity, role, key), and the check of a whole bundle that the server and the sites
 * make, with the message naming the file that does not match. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cfl/digest.h"
#include "cfl/err.h"
#include "cfl/manifest.h"
#include "cfl/pki.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY       ((time_t)86400)
#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_ABC   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define H         CFL_MANIFEST_HEADER

/* Made once: the project CA and its admin, a site, and strangers. */
struct fixture {
	struct cfl_pki_key *ca_key, *admin_key, *other_ca_key, *stranger_key;
	struct cfl_pki_cert *ca, *admin, *other_ca;
	struct cfl_pki_cert *site;     /* from the project CA, no role */
	struct cfl_pki_cert *stranger; /* an admin's CN and role, from another CA */
	struct cfl_pki_cert *unknown;  /* from the project CA, role "superuser" */
	struct cfl_pki_cert *future;   /* an admin, valid from tomorrow */
	struct cfl_pki_cert *no_org;   /* an admin without O */
	struct cfl_pki_trust *trust;   /* the project CA issues the leaves */
};

static struct fixture fx;

static struct cfl_pki_cert *issue(struct cfl_pki_key *ca_key, struct cfl_pki_cert *ca,
                                  struct cfl_pki_key *key, const char *cn, const char *org,
                                  const char *role, time_t not_before)
{
	struct cfl_pki_cert_req r = {.cn = cn,
	                             .org = org,
	                             .role = role,
	                             .usage = CFL_PKI_USAGE_CLIENT,
	                             .days = 30,
	                             .not_before = not_before};
	struct cfl_pki_cert *c = NULL;
	struct cfl_err e = {0};

	if (cfl_pki_cert_issue(ca_key, ca, key, &r, &c, &e) != 0)
		fail_msg("issue %s: %s", cn, e.msg);
	return c;
}

static int setup(void **state)
{
	struct cfl_pki_cert_req ca = {.cn = "proj", .usage = CFL_PKI_USAGE_CA, .days = 360};
	struct cfl_pki_cert_req other = {.cn = "other", .usage = CFL_PKI_USAGE_CA, .days = 360};
	time_t now = time(NULL);

	(void)state;
	if (cfl_pki_key_generate(CFL_KEY_P256, &fx.ca_key, NULL) != 0 ||
	    cfl_pki_key_generate(CFL_KEY_P256, &fx.admin_key, NULL) != 0 ||
	    cfl_pki_key_generate(CFL_KEY_P256, &fx.other_ca_key, NULL) != 0 ||
	    cfl_pki_key_generate(CFL_KEY_P256, &fx.stranger_key, NULL) != 0 ||
	    cfl_pki_ca_create(fx.ca_key, &ca, &fx.ca, NULL) != 0 ||
	    cfl_pki_ca_create(fx.other_ca_key, &other, &fx.other_ca, NULL) != 0)
		return -1;
	fx.admin = issue(fx.ca_key, fx.ca, fx.admin_key, "lead@a.org", "a", "lead", 0);
	fx.site = issue(fx.ca_key, fx.ca, fx.admin_key, "site-1", "a", NULL, 0);
	fx.stranger =
	        issue(fx.other_ca_key, fx.other_ca, fx.stranger_key, "lead@a.org", "a", "lead", 0);
	fx.unknown = issue(fx.ca_key, fx.ca, fx.admin_key, "lead@a.org", "a", "superuser", 0);
	fx.future = issue(fx.ca_key, fx.ca, fx.admin_key, "lead@a.org", "a", "lead", now + DAY);
	fx.no_org = issue(fx.ca_key, fx.ca, fx.admin_key, "lead@a.org", NULL, "lead", 0);
	return cfl_pki_trust_new(fx.ca, NULL, 0, &fx.trust, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	cfl_pki_key_free(fx.ca_key);
	cfl_pki_key_free(fx.admin_key);
	cfl_pki_key_free(fx.other_ca_key);
	cfl_pki_key_free(fx.stranger_key);
	cfl_pki_cert_free(fx.ca);
	cfl_pki_cert_free(fx.admin);
	cfl_pki_cert_free(fx.other_ca);
	cfl_pki_cert_free(fx.site);
	cfl_pki_cert_free(fx.stranger);
	cfl_pki_cert_free(fx.unknown);
	cfl_pki_cert_free(fx.future);
	cfl_pki_cert_free(fx.no_org);
	cfl_pki_trust_free(fx.trust);
	return 0;
}

/* --- the text ---------------------------------------------------------------------------- */

static void test_text(void **state)
{
	struct cfl_manifest *m = calloc(1, sizeof(*m)), *back = calloc(1, sizeof(*back));
	struct cfl_err e = {0};
	char *text = NULL;
	size_t len = 0;

	(void)state;
	assert_non_null(m);
	assert_non_null(back);
	/* Added in any order, listed sorted by name (byte order: uppercase first). */
	assert_int_equal(cfl_manifest_add(m, "meta.json", "abc", 3, &e), 0);
	assert_int_equal(cfl_manifest_add(m, "Zeta", "", 0, &e), 0);
	assert_int_equal(cfl_manifest_add(m, "config.json", "", 0, &e), 0);
	assert_int_equal(cfl_manifest_text(m, &text, &len, &e), 0);
	assert_string_equal(text, H SHA_EMPTY " Zeta\n" SHA_EMPTY " config.json\n" SHA_ABC
	                                      " meta.json\n");
	assert_int_equal(len, strlen(text));
	/* The parse gives the same files back, and its text is the same text. */
	assert_int_equal(cfl_manifest_parse(text, len, back, &e), 0);
	assert_int_equal(back->n, 3);
	assert_string_equal(back->files[0].name, "Zeta");
	assert_string_equal(back->files[2].name, "meta.json");
	assert_non_null(cfl_manifest_find(back, "config.json"));
	assert_null(cfl_manifest_find(back, "config"));
	assert_int_equal(cfl_manifest_check(back, "meta.json", "abc", 3, &e), 0);
	free(text);
	assert_int_equal(cfl_manifest_text(back, &text, &len, &e), 0);
	assert_string_equal(text, H SHA_EMPTY " Zeta\n" SHA_EMPTY " config.json\n" SHA_ABC
	                                      " meta.json\n");
	free(text);
	free(m);
	free(back);
}

static void test_add_refused(void **state)
{
	struct cfl_manifest *m = calloc(1, sizeof(*m));
	struct cfl_err e = {0};
	char name[16], *text = (char *)"x";
	size_t len = 1;

	(void)state;
	assert_non_null(m);
	assert_int_equal(cfl_manifest_text(m, &text, &len, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "a job manifest lists 1..64 files");
	assert_null(text);
	assert_int_equal(len, 0);
	assert_int_equal(cfl_manifest_add(m, "../x", "", 0, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "bad file name '../x' in the job");
	assert_int_equal(cfl_manifest_add(m, ".hidden", "", 0, &e), CFL_EINVAL);
	assert_int_equal(cfl_manifest_add(m, "a b", "", 0, &e), CFL_EINVAL);
	assert_int_equal(cfl_manifest_add(m, "", "", 0, &e), CFL_EINVAL);
	assert_int_equal(cfl_manifest_add(m, "a", "", 0, &e), 0);
	assert_int_equal(cfl_manifest_add(m, "a", "b", 1, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "'a' is twice in the job");
	for (int i = 1; i < CFL_MANIFEST_MAX_FILES; i++) {
		snprintf(name, sizeof(name), "f%02d", i);
		assert_int_equal(cfl_manifest_add(m, name, "", 0, &e), 0);
	}
	assert_int_equal(cfl_manifest_add(m, "last", "", 0, &e), CFL_ETOOBIG);
	assert_string_equal(e.msg, "the job has more than 64 files");
	assert_int_equal(m->n, CFL_MANIFEST_MAX_FILES);
	/* The longest manifest fits its bound. */
	assert_int_equal(cfl_manifest_text(m, &text, &len, &e), 0);
	assert_true(len <= CFL_MANIFEST_TEXT_MAX);
	free(text);
	/* A manifest filled by hand is checked too. */
	memset(m, 0, sizeof(*m));
	m->n = 2;
	snprintf(m->files[0].name, sizeof(m->files[0].name), "same");
	snprintf(m->files[1].name, sizeof(m->files[1].name), "same");
	assert_int_equal(cfl_manifest_text(m, &text, &len, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "'same' is twice in the job");
	memset(m->files[1].name, 'x', sizeof(m->files[1].name)); /* no NUL */
	assert_int_equal(cfl_manifest_text(m, &text, &len, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "bad file name in the job manifest");
	free(m);
}

/* `text` is refused with exactly `why`, and leaves an empty manifest. */
static void parse_refused(const char *text, size_t len, int code, const char *why)
{
	static struct cfl_manifest m;
	struct cfl_err e = {0};

	m.n = 7;
	assert_int_equal(cfl_manifest_parse(text, len, &m, &e), code);
	if (strcmp(e.msg, why) != 0)
		fail_msg("message '%s', not '%s'", e.msg, why);
	assert_int_equal(m.n, 0);
}

#define REFUSED(text, why) parse_refused(text, sizeof(text) - 1, CFL_EPARSE, why)

static void test_parse_refused(void **state)
{
	char *big;
	size_t n;

	(void)state;
	REFUSED("", "bad job manifest: line 1: not 'cfl-job-manifest 1'");
	REFUSED("cfl-job-manifest 2\n" SHA_ABC " a\n",
	        "bad job manifest: line 1: not 'cfl-job-manifest 1'");
	REFUSED(SHA_ABC " a\n", "bad job manifest: line 1: not 'cfl-job-manifest 1'");
	REFUSED(H, "bad job manifest: no file");
	REFUSED(H SHA_ABC " b\n" SHA_ABC " a\n",
	        "bad job manifest: line 3: 'a' after 'b' (names are sorted, each once)");
	REFUSED(H SHA_ABC " a\n" SHA_ABC " a\n",
	        "bad job manifest: line 3: 'a' after 'a' (names are sorted, each once)");
	REFUSED(H "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD a\n",
	        "bad job manifest: line 2: no SHA-256 in lowercase hex");
	REFUSED(H "ba7816 a\n", "bad job manifest: line 2: no SHA-256 in lowercase hex");
	REFUSED(H SHA_ABC "  a\n", "bad job manifest: line 2: not a plain file name (1..128 of "
	                           "A-Z a-z 0-9 . _ -)");
	REFUSED(H SHA_ABC "\ta\n", "bad job manifest: line 2: no single space after the digest");
	REFUSED(H SHA_ABC " a\r\n", "bad job manifest: line 2: not a plain file name (1..128 of "
	                            "A-Z a-z 0-9 . _ -)");
	REFUSED(H SHA_ABC " a", "bad job manifest: line 2: no end of line");
	REFUSED(H SHA_ABC " \n", "bad job manifest: line 2: not a plain file name (1..128 of "
	                         "A-Z a-z 0-9 . _ -)");
	REFUSED(H SHA_ABC " a/b\n", "bad job manifest: line 2: not a plain file name (1..128 of "
	                            "A-Z a-z 0-9 . _ -)");
	REFUSED(H SHA_ABC " ..\n", "bad job manifest: line 2: not a plain file name (1..128 of "
	                           "A-Z a-z 0-9 . _ -)");
	REFUSED(H SHA_ABC " a\0b\n", "bad job manifest: line 2: not a plain file name (1..128 of "
	                             "A-Z a-z 0-9 . _ -)");
	REFUSED(H SHA_ABC, "bad job manifest: line 2: no single space after the digest");
	/* 128 bytes of name are fine, 129 are not. */
	big = malloc(CFL_MANIFEST_TEXT_MAX + 200);
	assert_non_null(big);
	n = (size_t)snprintf(big, 512, H SHA_ABC " %0128d\n", 0);
	{
		static struct cfl_manifest m;

		assert_int_equal(cfl_manifest_parse(big, n, &m, NULL), 0);
		assert_int_equal(strlen(m.files[0].name), 128);
	}
	n = (size_t)snprintf(big, 512, H SHA_ABC " %0129d\n", 0);
	parse_refused(
	        big, n, CFL_EPARSE,
	        "bad job manifest: line 2: not a plain file name (1..128 of A-Z a-z 0-9 . _ -)");
	/* 65 lines; and a text past the bound is refused before it is read. */
	n = (size_t)snprintf(big, 64, H);
	for (int i = 0; i < 65; i++)
		n += (size_t)snprintf(big + n, 128, SHA_ABC " f%02d\n", i);
	parse_refused(big, n, CFL_EPARSE, "bad job manifest: line 66: more than 64 files");
	memset(big, 'a', CFL_MANIFEST_TEXT_MAX + 1);
	parse_refused(big, CFL_MANIFEST_TEXT_MAX + 1, CFL_ETOOBIG,
	              "the job manifest is larger than 12435 bytes");
	free(big);
}

static void test_check(void **state)
{
	struct cfl_manifest *m = calloc(1, sizeof(*m));
	struct cfl_err e = {0};

	(void)state;
	assert_non_null(m);
	assert_int_equal(cfl_manifest_add(m, "config.json", "{}", 2, &e), 0);
	assert_int_equal(cfl_manifest_check(m, "config.json", "{}", 2, &e), 0);
	assert_int_equal(cfl_manifest_check(m, "config.json", "{ }", 3, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "'config.json' does not match its signed digest");
	assert_int_equal(cfl_manifest_check(m, "run.sh", "", 0, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "'run.sh' is not in the signed manifest");
	free(m);
}

/* --- signatures --------------------------------------------------------------------------- */

struct signed_job {
	struct cfl_manifest m;
	struct cfl_manifest_signed s;
};

static struct signed_job *sign_abc(const struct cfl_pki_key *key, const struct cfl_pki_cert *cert)
{
	struct signed_job *j = calloc(1, sizeof(*j));
	struct cfl_err e = {0};

	assert_non_null(j);
	assert_int_equal(cfl_manifest_add(&j->m, "a.txt", "abc", 3, &e), 0);
	if (cfl_manifest_sign(&j->m, key, cert, &j->s, &e) != 0)
		fail_msg("sign: %s", e.msg);
	return j;
}

static void signed_free(struct signed_job *j)
{
	cfl_manifest_signed_release(&j->s);
	free(j);
}

static struct cfl_job_sig sig_of(const struct cfl_manifest_signed *s)
{
	return (struct cfl_job_sig){s->manifest,    strlen(s->manifest),
	                            s->signature,   strlen(s->signature),
	                            s->certificate, strlen(s->certificate)};
}

/* The signature by `key` with `cert` is refused with a message starting with `why`. */
static void sig_refused(const struct cfl_pki_key *key, const struct cfl_pki_cert *cert, time_t at,
                        int code, const char *why)
{
	struct signed_job *j = sign_abc(key, cert);
	struct cfl_job_sig s = sig_of(&j->s);
	struct cfl_job_signer who;
	struct cfl_err e = {0};

	assert_int_equal(cfl_manifest_verify_sig(&s, fx.trust, at, &who, &e), code);
	if (strncmp(e.msg, why, strlen(why)) != 0)
		fail_msg("message '%s' does not start with '%s'", e.msg, why);
	assert_string_equal(who.name, "");
	signed_free(j);
}

static void test_sign_verify(void **state)
{
	struct signed_job *j = sign_abc(fx.admin_key, fx.admin);
	struct cfl_job_sig s = sig_of(&j->s);
	struct cfl_manifest_signed none;
	struct cfl_job_signer who;
	struct cfl_err e = {0};

	(void)state;
	assert_string_equal(j->s.manifest, H SHA_ABC " a.txt\n");
	assert_non_null(strstr(j->s.certificate, "-----BEGIN CERTIFICATE-----"));
	assert_int_equal(cfl_manifest_verify_sig(&s, fx.trust, 0, &who, &e), 0);
	assert_string_equal(who.name, "lead@a.org");
	assert_string_equal(who.org, "a");
	assert_string_equal(who.role, "lead");
	/* One byte of the manifest changed. */
	j->s.manifest[strlen(j->s.manifest) - 2] = 'X';
	assert_int_equal(cfl_manifest_verify_sig(&s, fx.trust, 0, &who, &e), CFL_EVERIFY);
	assert_string_equal(e.msg,
	                    "the job's manifest does not match its signature by 'lead@a.org'");
	assert_string_equal(who.name, "");
	/* The signature and the certificate, unreadable or too large. */
	s = sig_of(&j->s);
	s.signature = "not base64!";
	s.signature_len = strlen(s.signature);
	assert_int_equal(cfl_manifest_verify_sig(&s, fx.trust, 0, &who, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "the job's signature is not base64");
	s.signature_len = CFL_MANIFEST_SIG_MAX + 1;
	assert_int_equal(cfl_manifest_verify_sig(&s, fx.trust, 0, &who, &e), CFL_ETOOBIG);
	assert_string_equal(e.msg, "the job's signature is larger than 1024 bytes");
	s = sig_of(&j->s);
	s.certificate = "hello";
	s.certificate_len = 5;
	assert_int_equal(cfl_manifest_verify_sig(&s, fx.trust, 0, &who, &e), CFL_EPARSE);
	/* OpenSSL's reason follows. */
	assert_true(
	        strncmp(e.msg,
	                "the job's certificate: cannot parse certificate: not a PEM certificate",
	                70) == 0);
	s.certificate_len = CFL_MANIFEST_CERT_MAX + 1;
	assert_int_equal(cfl_manifest_verify_sig(&s, fx.trust, 0, &who, &e), CFL_ETOOBIG);
	assert_string_equal(e.msg, "the job's certificate is larger than 16384 bytes");
	signed_free(j);
	/* Whose certificate signs: only a project admin's, valid now. */
	sig_refused(fx.stranger_key, fx.stranger, 0, CFL_EVERIFY,
	            "the job's certificate ('lead@a.org') is not valid for this project: "
	            "certificate 'lead@a.org' verify failed: unable to get local issuer "
	            "certificate");
	sig_refused(fx.admin_key, fx.admin, time(NULL) + 40 * DAY, CFL_EVERIFY,
	            "the job's certificate ('lead@a.org') is not valid for this project: "
	            "certificate 'lead@a.org' verify failed: certificate has expired");
	sig_refused(fx.admin_key, fx.future, 0, CFL_EVERIFY,
	            "the job's certificate ('lead@a.org') is not valid for this project: "
	            "certificate 'lead@a.org' verify failed: certificate is not yet valid");
	sig_refused(fx.admin_key, fx.site, 0, CFL_EVERIFY,
	            "the job's certificate ('site-1') is not an admin's: no admin role");
	sig_refused(fx.admin_key, fx.unknown, 0, CFL_EVERIFY,
	            "the job's certificate ('lead@a.org') is not an admin's: no admin role");
	sig_refused(fx.admin_key, fx.no_org, 0, CFL_EVERIFY,
	            "the job's certificate ('lead@a.org') names no organisation (O)");
	/* The root CA itself is no identity: its certificate cannot sign jobs (it is not one the
	 * issuing CA issued, which is checked first). */
	sig_refused(fx.ca_key, fx.ca, 0, CFL_EVERIFY,
	            "the job's certificate ('proj') is not valid for this project: certificate "
	            "'proj' is not issued by the project's issuing CA 'proj'");
	/* Signing checks that the key is the certificate's. */
	j = calloc(1, sizeof(*j));
	assert_non_null(j);
	assert_int_equal(cfl_manifest_add(&j->m, "a.txt", "abc", 3, &e), 0);
	assert_int_equal(cfl_manifest_sign(&j->m, fx.stranger_key, fx.admin, &none, &e),
	                 CFL_EINVAL);
	assert_string_equal(e.msg, "the certificate does not match the signing key");
	assert_null(none.manifest);
	assert_null(none.signature);
	free(j);
}

/* --- bundles ------------------------------------------------------------------------------ */

static const char *const job_files[] = {"config.json", "{\"workflow\": {}}", "meta.json",
                                        "{\"name\": \"x\"}", NULL};

/* A bundle of the NULL-terminated name/contents `sign_files`, signed by the admin, whose
 * "files" then hold `send_files` (NULL: the same). */
static json_t *bundle(const char *const *sign_files, const char *const *send_files)
{
	struct cfl_manifest *m = calloc(1, sizeof(*m));
	struct cfl_manifest_signed s;
	json_t *files = json_object();
	struct cfl_err e = {0};
	char *b64;

	assert_non_null(m);
	for (size_t i = 0; sign_files[i] != NULL; i += 2)
		assert_int_equal(cfl_manifest_add(m, sign_files[i], sign_files[i + 1],
		                                  strlen(sign_files[i + 1]), &e),
		                 0);
	assert_int_equal(cfl_manifest_sign(m, fx.admin_key, fx.admin, &s, &e), 0);
	send_files = send_files != NULL ? send_files : sign_files;
	for (size_t i = 0; send_files[i] != NULL; i += 2) {
		assert_int_equal(
		        cfl_base64_encode(send_files[i + 1], strlen(send_files[i + 1]), &b64), 0);
		json_object_set_new(files, send_files[i], json_string(b64));
		free(b64);
	}
	free(m);
	json_t *b = json_pack("{s:o, s:s, s:s, s:s}", "files", files, "manifest", s.manifest,
	                      "signature", s.signature, "certificate", s.certificate);
	cfl_manifest_signed_release(&s);
	assert_non_null(b);
	return b;
}

/* Checks bundle `b` (consumed): 0, or `code` with exactly `why`. */
static void expect(json_t *b, int code, const char *why)
{
	char *text = json_dumps(b, JSON_COMPACT);
	struct cfl_job_signer who;
	struct cfl_err e = {0};

	json_decref(b);
	assert_non_null(text);
	assert_int_equal(cfl_manifest_verify_bundle(text, strlen(text), fx.trust, 0, &who, &e),
	                 code);
	free(text);
	if (code == 0) {
		assert_string_equal(who.name, "lead@a.org");
		assert_string_equal(who.role, "lead");
		return;
	}
	if (strcmp(e.msg, why) != 0)
		fail_msg("message '%s', not '%s'", e.msg, why);
	assert_string_equal(who.name, "");
}

static void test_bundle(void **state)
{
	struct cfl_job_signer who;
	struct cfl_err e = {0};
	json_t *b;

	(void)state;
	expect(bundle(job_files, NULL), 0, NULL);
	/* A file changed, added or removed after signing. */
	expect(bundle(job_files, (const char *const[]){"config.json", "{\"workflow\": 1}",
	                                               "meta.json", "{\"name\": \"x\"}", NULL}),
	       CFL_EVERIFY, "'config.json' does not match its signed digest");
	expect(bundle(job_files,
	              (const char *const[]){"config.json", "{\"workflow\": {}}", "meta.json",
	                                    "{\"name\": \"x\"}", "run.sh", "rm -rf ~", NULL}),
	       CFL_EVERIFY, "'run.sh' is not in the signed manifest");
	expect(bundle(job_files, (const char *const[]){"config.json", "{\"workflow\": {}}", NULL}),
	       CFL_EVERIFY, "'meta.json' of the signed manifest is missing from the job");
	/* A file that is not base64, a member beside the signed ones, signatures missing. */
	b = bundle(job_files, NULL);
	json_object_set_new(json_object_get(b, "files"), "meta.json", json_string("!!"));
	expect(b, CFL_EPARSE, "'meta.json' is not base64");
	b = bundle(job_files, NULL);
	json_object_set_new(b, "note", json_string("run me"));
	expect(b, CFL_EVERIFY, "unknown member 'note' in the job bundle");
	for (int i = 0; i < 3; i++) {
		static const char *const parts[] = {"manifest", "signature", "certificate"};

		b = bundle(job_files, NULL);
		json_object_del(b, parts[i]);
		expect(b, CFL_EVERIFY,
		       "the job is not signed (it needs 'manifest', 'signature' and 'certificate' "
		       "strings)");
	}
	b = bundle(job_files, NULL);
	json_object_set_new(b, "manifest", json_integer(1));
	expect(b, CFL_EVERIFY,
	       "the job is not signed (it needs 'manifest', 'signature' and 'certificate' "
	       "strings)");
	/* A manifest signed as it is, but not a manifest: refused after the signature holds. */
	{
		struct cfl_manifest_signed s;
		struct cfl_manifest *m = calloc(1, sizeof(*m));

		assert_non_null(m);
		assert_int_equal(cfl_manifest_add(m, "config.json", "{}", 2, &e), 0);
		assert_int_equal(cfl_manifest_sign(m, fx.admin_key, fx.admin, &s, &e), 0);
		b = bundle(job_files, NULL);
		json_object_set_new(b, "manifest", json_string(s.manifest));
		expect(b, CFL_EVERIFY,
		       "the job's manifest does not match its signature by 'lead@a.org'");
		cfl_manifest_signed_release(&s);
		free(m);
	}
	/* Not a bundle. */
	assert_int_equal(cfl_manifest_verify_bundle("[1]", 3, fx.trust, 0, &who, &e), CFL_EPARSE);
	assert_string_equal(e.msg, "not a job bundle (a JSON {\"files\": {...}})");
	assert_int_equal(cfl_manifest_verify_bundle("{\"files\"", 8, fx.trust, 0, &who, &e),
	                 CFL_EPARSE);
	assert_true(strncmp(e.msg, "not a job bundle: line 1: ", 26) == 0);
	assert_int_equal(cfl_manifest_verify_bundle("{}", (64u << 20) + 1, fx.trust, 0, &who, &e),
	                 CFL_ETOOBIG);
	assert_string_equal(e.msg, "the job is larger than 67108864 bytes");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_text),          cmocka_unit_test(test_add_refused),
	        cmocka_unit_test(test_parse_refused), cmocka_unit_test(test_check),
	        cmocka_unit_test(test_sign_verify),   cmocka_unit_test(test_bundle),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
