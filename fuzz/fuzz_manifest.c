/* libFuzzer target for signed jobs (src/jobs/manifest.c, include/cfl/manifest.h): the manifest
 * parser and the check of a whole bundle that the server makes at submission and every site
 * before it unpacks a job.
 *
 * Input: one mode byte, then the text.
 * - mode 0, a manifest's text: cfl_manifest_parse. Accepted text is canonical:
 *   cfl_manifest_text of the result gives back exactly the input; it lists 1..64 plain names in
 *   strictly increasing order. Refused text leaves an empty manifest and a message.
 * - mode 1, a bundle as it arrives: cfl_manifest_verify_bundle must refuse it (the signing key
 *   is made at start-up, so no input can carry a valid signature). Then the same bundle with
 *   its "manifest" member (whatever string it is) signed here by an admin of the CA: what the
 *   check accepts then has exactly the manifest's files, each with its digest, and the
 *   admin as signer.
 * - mode 2, a bundle whose manifest is built here from its files (cfl_manifest_add) and signed:
 *   the check accepts it exactly when every file is a string of valid base64.
 * Any broken promise aborts, which libFuzzer reports as a crash. */
#include "cfl/digest.h"
#include "cfl/err.h"
#include "cfl/log.h"
#include "cfl/manifest.h"
#include "cfl/pki.h"
#include "fuzz_pki.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN "admin@fuzz.org"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fuzz_pki pki;
static struct cfl_manifest m; /* 10 KiB: not on the stack */

static void check(int ok)
{
	if (!ok)
		abort();
}

static void cleanup(void)
{
	fuzz_pki_release(&pki);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cfl_log_set_level(CFL_LOG_ERROR);
	fuzz_pki_make(&pki, ADMIN, "lead", NULL);
	atexit(cleanup);
	return 0;
}

static void text_mode(const char *text, size_t len)
{
	struct cfl_err e = {0};
	char *again = NULL;
	size_t again_len = 0;

	if (cfl_manifest_parse(text, len, &m, &e) != 0) {
		check(e.code < 0 && e.msg[0] != '\0' && m.n == 0);
		return;
	}
	check(m.n >= 1 && m.n <= CFL_MANIFEST_MAX_FILES);
	for (size_t i = 1; i < m.n; i++)
		check(strcmp(m.files[i - 1].name, m.files[i].name) < 0);
	check(cfl_manifest_text(&m, &again, &again_len, &e) == 0);
	check(again_len == len && memcmp(again, text, len) == 0);
	free(again);
}

/* Verifies the bundle `b` as re-encoded; 0 when accepted. */
static int verify(json_t *b, struct cfl_job_signer *who, struct cfl_err *e)
{
	char *text = json_dumps(b, JSON_COMPACT);
	int rc;

	check(text != NULL);
	rc = cfl_manifest_verify_bundle(text, strlen(text), pki.trust, 0, who, e);
	free(text);
	check(rc == 0 || (rc < 0 && e->code == rc && e->msg[0] != '\0' && who->name[0] == '\0'));
	if (rc == 0)
		check(strcmp(who->name, ADMIN) == 0 && strcmp(who->org, "org") == 0 &&
		      strcmp(who->role, "lead") == 0);
	return rc;
}

/* What an accepted bundle holds: the manifest's files exactly, each with its digest. */
static void check_accepted(json_t *b)
{
	json_t *files = json_object_get(b, "files"), *v;
	const char *man = json_string_value(json_object_get(b, "manifest")), *name;
	struct cfl_err e = {0};

	check(cfl_manifest_parse(man, json_string_length(json_object_get(b, "manifest")), &m, &e) ==
	      0);
	check(json_object_size(files) == m.n);
	json_object_foreach (files, name, v) {
		uint8_t *raw = NULL;
		size_t n = 0;

		check(cfl_base64_decode(json_string_value(v), json_string_length(v), &raw, &n) ==
		      0);
		check(cfl_manifest_check(&m, name, raw, n, &e) == 0);
		free(raw);
	}
}

/* Sets the bundle's signature over `text` by the fuzz admin. */
static void sign_text(json_t *b, const char *text, size_t len)
{
	uint8_t *sig = NULL;
	size_t sig_len = 0, pem_len = 0;
	char *b64 = NULL, *pem = NULL;

	check(cfl_pki_sign(pki.admin_key, text, len, &sig, &sig_len, NULL) == 0);
	check(cfl_base64_encode(sig, sig_len, &b64) == 0);
	check(cfl_pki_cert_to_pem(pki.admin, &pem, &pem_len, NULL) == 0);
	json_object_set_new(b, "signature", json_string(b64));
	json_object_set_new(b, "certificate", json_string(pem));
	free(sig);
	free(b64);
	free(pem);
}

static void resign_mode(const char *text, size_t len)
{
	json_t *b = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL), *man;
	struct cfl_job_signer who;
	struct cfl_err e = {0};

	check(cfl_manifest_verify_bundle(text, len, pki.trust, 0, &who, &e) != 0);
	man = json_object_get(b, "manifest");
	if (!json_is_object(b) || !json_is_string(man)) {
		json_decref(b);
		return;
	}
	sign_text(b, json_string_value(man), json_string_length(man));
	if (verify(b, &who, &e) == 0)
		check_accepted(b);
	json_decref(b);
}

static void build_mode(const char *text, size_t len)
{
	json_t *b = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL), *files, *v;
	struct cfl_manifest_signed sig;
	struct cfl_job_signer who;
	struct cfl_err e = {0};
	const char *name;
	int all_base64 = 1;

	files = json_object_get(b, "files");
	if (!json_is_object(files) || json_object_size(b) != 1) {
		json_decref(b);
		return;
	}
	memset(&m, 0, sizeof(m));
	json_object_foreach (files, name, v) {
		uint8_t *raw = NULL;
		size_t n = 0;

		if (!json_is_string(v) ||
		    cfl_base64_decode(json_string_value(v), json_string_length(v), &raw, &n) != 0) {
			all_base64 = 0;
			/* Its name still goes in: the check must refuse the file, not miss it. */
		}
		if (cfl_manifest_add(&m, name, raw, n, &e) != 0) {
			free(raw);
			json_decref(b);
			return;
		}
		free(raw);
	}
	if (cfl_manifest_sign(&m, pki.admin_key, pki.admin, &sig, &e) != 0) {
		check(m.n == 0); /* the only way a manifest of plain, distinct names fails */
		json_decref(b);
		return;
	}
	json_object_set_new(b, "manifest", json_string(sig.manifest));
	json_object_set_new(b, "signature", json_string(sig.signature));
	json_object_set_new(b, "certificate", json_string(sig.certificate));
	cfl_manifest_signed_release(&sig);
	check((verify(b, &who, &e) == 0) == all_base64);
	json_decref(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data + 1;

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		text_mode(text, size - 1);
		break;
	case 1:
		resign_mode(text, size - 1);
		break;
	default:
		build_mode(text, size - 1);
		break;
	}
	return 0;
}
