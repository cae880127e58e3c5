/* Hostile cases against job submission (docs/jobs.md "Signed jobs"): an admin, logged in
 * honestly, hands the server bundles that `cfl admin` would never make: unsigned, signed by
 * someone else, signed by a certificate of another project, changed after signing. The server
 * must refuse each at submission with its reason, and log it. */
#include "hostile.h"

#include "cfl/manifest.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char config[] = "{\"workflow\": {\"name\": \"fedavg\", \"num_rounds\": 1}, "
                             "\"executor\": {\"type\": \"command\", \"command\": [\"true\"]}}";
static const char meta[] = "{\"name\": \"hostile\"}";

/* {"files": {config.json, meta.json}}, signed by `by` (NULL: unsigned); then config.json is
 * replaced by `changed` when not NULL. New text, or NULL. */
static char *bundle(const struct h_ident *by, const char *changed)
{
	struct cfl_manifest *m = calloc(1, sizeof(*m));
	struct cfl_manifest_signed s = {0};
	json_t *files = json_object(), *b = NULL;
	char *c64 = NULL, *m64 = NULL, *text = NULL;

	if (m == NULL || files == NULL || cfl_base64_encode(meta, strlen(meta), &m64) != 0 ||
	    cfl_base64_encode(changed != NULL ? changed : config,
	                      strlen(changed != NULL ? changed : config), &c64) != 0 ||
	    cfl_manifest_add(m, "config.json", config, strlen(config), NULL) != 0 ||
	    cfl_manifest_add(m, "meta.json", meta, strlen(meta), NULL) != 0 ||
	    (by != NULL && cfl_manifest_sign(m, by->key, by->cert, &s, NULL) != 0))
		goto out;
	json_object_set_new(files, "config.json", json_string(c64));
	json_object_set_new(files, "meta.json", json_string(m64));
	b = json_pack("{s:O}", "files", files);
	if (b != NULL && by != NULL) {
		json_object_set_new(b, "manifest", json_string(s.manifest));
		json_object_set_new(b, "signature", json_string(s.signature));
		json_object_set_new(b, "certificate", json_string(s.certificate));
	}
	text = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
out:
	cfl_manifest_signed_release(&s);
	json_decref(files);
	json_decref(b);
	free(c64);
	free(m64);
	free(m);
	return text;
}

/* Submits `text` as e->admin; refused with a reason holding `want` passes. The server must
 * have logged the refusal. */
static int submit_refused(struct h_env *e, char *text, const char *want, char *how, size_t n)
{
	struct h_conn *adm = NULL;
	struct h_hdrs h = {0};
	struct h_msg *m = NULL;
	char why[512] = "", line[600];
	uint64_t id;
	int ok = 0;

	if (text == NULL) {
		h_cat(how, n, "setup: cannot make the bundle");
		return 0;
	}
	if (h_open(e, &e->admin, &adm, why, sizeof(why)) != 0 ||
	    h_login(adm, &e->admin, "admin", why, sizeof(why)) != 0) {
		h_cat(how, n, "setup: honest login of '%s' failed: %s", e->admin.name, why);
		goto out;
	}
	h_hdr_auth(&h, adm->name, adm->token, adm->sig);
	h_hdr(&h, "cmd", "submit_job");
	id = h_request(adm, "admin", &h, text, strlen(text));
	if (id == 0 || h_wait_reply(adm, id, H_WAIT_MS, &m) != 0) {
		h_cat(how, n, "no answer to submit_job");
		goto out;
	}
	if (!(m->flags & CFL_FRAME_F_ERROR)) {
		h_cat(how, n, "ACCEPTED: %.*s", (int)m->body_len, (const char *)m->body);
		goto out;
	}
	h_cat(how, n, "%.*s", (int)m->body_len, (const char *)m->body);
	if (strstr((const char *)m->body, want) == NULL) {
		h_cat(how, n, " (not the reason expected: '%s')", want);
		goto out;
	}
	snprintf(line, sizeof(line), "submitted by %s refused: %s", e->admin.name, want);
	h_expect_log(e, 'L', NULL, line);
	ok = 1;
out:
	h_msg_free(m);
	h_close(adm);
	free(text);
	return ok;
}

int h_case_unsigned_job(struct h_env *e, char *how, size_t n)
{
	return submit_refused(e, bundle(NULL, NULL), "the job is not signed", how, n);
}

int h_case_job_changed_after_signing(struct h_env *e, char *how, size_t n)
{
	return submit_refused(e,
	                      bundle(&e->admin, "{\"workflow\": {\"name\": \"fedavg\", "
	                                        "\"num_rounds\": 1}, \"executor\": {\"type\": "
	                                        "\"command\", \"command\": [\"sh\", \"-c\", "
	                                        "\"cat startup/client.key\"]}}"),
	                      "'config.json' does not match its signed digest", how, n);
}

int h_case_job_signed_by_other_admin(struct h_env *e, char *how, size_t n)
{
	struct h_ident other;
	char err[512] = "", want[600];
	int ok = 0;

	if (h_ident_forge(e, &other, "other@cfl.test", "project_admin", NULL, NULL, 0, 30, err,
	                  sizeof(err)) != 0) {
		h_cat(how, n, "setup: %s", err);
		return 0;
	}
	snprintf(want, sizeof(want), "the job is signed by 'other@cfl.test', not by '%s'",
	         e->admin.name);
	ok = submit_refused(e, bundle(&other, NULL), want, how, n);
	h_ident_release(&other);
	return ok;
}

int h_case_job_signed_by_foreign_ca(struct h_env *e, char *how, size_t n)
{
	struct cfl_pki_cert_req req = {.cn = "rogue CA", .usage = CFL_PKI_USAGE_CA, .days = 365};
	struct cfl_pki_key *key = NULL;
	struct cfl_pki_cert *ca = NULL;
	struct h_ident id;
	char err[512] = "", want[600];
	int ok = 0;

	memset(&id, 0, sizeof(id));
	if (cfl_pki_key_generate(CFL_KEY_P256, &key, NULL) != 0 ||
	    cfl_pki_ca_create(key, &req, &ca, NULL) != 0 ||
	    h_ident_forge(e, &id, e->admin.name, "project_admin", key, ca, 0, 30, err,
	                  sizeof(err)) != 0) {
		h_cat(how, n, "setup: cannot make the rogue CA %s", err);
	} else {
		/* The admin's own name and role, from a CA the project does not know. */
		snprintf(want, sizeof(want),
		         "the job's certificate ('%s') is not valid for this project",
		         e->admin.name);
		ok = submit_refused(e, bundle(&id, NULL), want, how, n);
	}
	h_ident_release(&id);
	cfl_pki_cert_free(ca);
	cfl_pki_key_free(key);
	return ok;
}
