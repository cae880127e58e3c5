/* Unit tests for the request / approve / package flow (cfl/provision.h, docs/credentials.md):
 * every refusal of cfl_cert_approve (name, type, org, role, host names, CSR signature, CSR
 * subject) and of cfl_cert_package (key, root CA fingerprint, a changed file, a changed
 * signature, an approval signed by another CA), each with the message naming the cause, and
 * nothing written for a refused request or approval. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cfl/err.h"
#include "cfl/kit.h"
#include "cfl/pki.h"
#include "cfl/provision.h"
#include "provision/certfile.h"
#include "util/fs.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char project_yml[] =
        "api_version: 3\n"
        "name: flow\n"
        "participants:\n"
        "  - {name: server1, type: server, org: a, fed_learn_port: 8002, admin_port: 8003,\n"
        "     host_names: [server1, 127.0.0.1]}\n"
        "  - {name: site-1, type: client, org: a}\n"
        "  - {name: admin@a.org, type: admin, org: a, role: lead}\n";

static char tmp_dir[64];
static char proj[PATH_MAX], ws[PATH_MAX], ws2[PATH_MAX];
/* site-1's good request, its key, and its approval by the workspace's CA (and by ws2's). */
static char good_req[PATH_MAX], good_key[PATH_MAX], approval[PATH_MAX], approval2[PATH_MAX];
static char root_fp[CFL_PKI_FINGERPRINT_MAX];

static void path_of(char *buf, const char *rel)
{
	if (snprintf(buf, PATH_MAX, "%s/%s", tmp_dir, rel) >= PATH_MAX)
		fail_msg("path too long");
}

static void contains(const char *msg, const char *part)
{
	if (strstr(msg, part) == NULL)
		fail_msg("message '%s' does not say '%s'", msg, part);
}

/* A request in tmp/req-TAG/ (a new key there); its path into out (PATH_MAX). */
static void request(const char *tag, const char *name, const char *type, const char *org,
                    const char *role, const char *const *hosts, size_t n_hosts, char *out)
{
	struct cfl_cert_request_opts o = {.name = name,
	                                  .type = type,
	                                  .org = org,
	                                  .role = role,
	                                  .hosts = hosts,
	                                  .n_hosts = n_hosts,
	                                  .key_type = CFL_KEY_P256};
	char dir[PATH_MAX], rel[64];
	struct cfl_err e = {0};

	snprintf(rel, sizeof(rel), "req-%s", tag);
	path_of(dir, rel);
	o.dir = dir;
	if (cfl_cert_request(&o, out, PATH_MAX, &e) != 0)
		fail_msg("request %s: %s", tag, e.msg);
}

static json_t *load_json(const char *path)
{
	json_t *v = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);

	assert_non_null(v);
	return v;
}

/* Writes `v` (consumed) to tmp/NAME; its path into out. */
static void save_json(json_t *v, const char *name, char *out)
{
	path_of(out, name);
	assert_int_equal(json_dump_file(v, out, JSON_INDENT(1) | JSON_SORT_KEYS), 0);
	json_decref(v);
}

static void provision_into(const char *workspace)
{
	struct cfl_provision_opts o = {.project_path = proj, .workspace = workspace};
	char out[PATH_MAX];
	struct cfl_err e = {0};

	o.key_type = CFL_KEY_P256;
	if (cfl_provision(&o, out, sizeof(out), &e) != 0)
		fail_msg("provision: %s", e.msg);
}

static int setup(void **state)
{
	char fp[CFL_PKI_FINGERPRINT_MAX], dir[PATH_MAX];
	struct cfl_err e = {0};

	(void)state;
	memcpy(tmp_dir, "/tmp/cfl-test-certflow-XXXXXX", sizeof("/tmp/cfl-test-certflow-XXXXXX"));
	if (mkdtemp(tmp_dir) == NULL)
		return -1;
	path_of(proj, "project.yml");
	path_of(ws, "ws");
	path_of(ws2, "ws2");
	if (cfl__fs_write_file(proj, project_yml, strlen(project_yml), 0644, &e) != 0)
		return -1;
	provision_into(ws);
	provision_into(ws2); /* another CA, for the same project */
	request("good", "site-1", "client", "a", NULL, NULL, 0, good_req);
	path_of(good_key, "req-good/site-1.key");
	path_of(approval, "site-1.approval.json");
	path_of(approval2, "site-1.approval2.json");
	if (cfl_cert_approve(proj, ws, good_req, 0, approval, NULL, root_fp, &e) != 0 ||
	    cfl_cert_approve(proj, ws2, good_req, 0, approval2, NULL, fp, &e) != 0) {
		fprintf(stderr, "setup: approve: %s\n", e.msg);
		return -1;
	}
	/* The kit of a good approval and key: the positive control of the package tests. */
	path_of(dir, "kit-good");
	if (cfl_cert_package(approval, good_key, dir, root_fp, fp, &e) != 0) {
		fprintf(stderr, "setup: package: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return cfl__fs_rmtree(tmp_dir) == 0 ? 0 : -1;
}

/* ---- approve ---- */

/* The request is refused with CFL_EVERIFY, the message naming the request and `why`, and no
 * approval is written. */
static void approve_refused(const char *req, const char *why)
{
	char out[PATH_MAX], fp[CFL_PKI_FINGERPRINT_MAX] = "", head[PATH_MAX + 32];
	struct cfl_err e = {0};

	path_of(out, "refused.approval.json");
	assert_int_equal(cfl_cert_approve(proj, ws, req, 0, out, NULL, fp, &e), CFL_EVERIFY);
	snprintf(head, sizeof(head), "request '%s'", req);
	if (strncmp(e.msg, head, strlen(head)) != 0)
		fail_msg("message '%s' does not start with \"%s\"", e.msg, head);
	contains(e.msg, why);
	assert_false(cfl__fs_exists(out));
}

static void test_approve_good(void **state)
{
	char kit[PATH_MAX], crt[PATH_MAX];
	struct cfl_pki_cert *cert = NULL, *root = NULL;
	struct cfl_err e = {0};

	(void)state;
	path_of(kit, "kit-good");
	assert_int_equal(cfl_kit_verify(kit, NULL, NULL, &e), 0);
	path_of(crt, "kit-good/startup/client.crt");
	assert_int_equal(cfl_pki_cert_load(crt, &cert, &e), 0);
	path_of(crt, "ws/flow/state/rootCA.pem");
	assert_int_equal(cfl_pki_cert_load(crt, &root, &e), 0);
	assert_int_equal(cfl_pki_cert_verify(root, cert, 0, &e), 0);
	assert_true(cfl_pki_cert_fingerprint_match(root, root_fp));
	cfl_pki_cert_free(cert);
	cfl_pki_cert_free(root);
}

static void test_approve_name(void **state)
{
	char req[PATH_MAX], why[PATH_MAX + 64];

	(void)state;
	request("name", "site-9", "client", "a", NULL, NULL, 0, req);
	snprintf(why, sizeof(why), "refused: name differs: no participant 'site-9' in '%s'", proj);
	approve_refused(req, why);
}

static void test_approve_type(void **state)
{
	char req[PATH_MAX];

	(void)state;
	request("type", "site-1", "admin", "a", NULL, NULL, 0, req);
	approve_refused(req, "refused: type differs: the request asks for 'admin', the project "
	                     "file says 'client'");
}

static void test_approve_org(void **state)
{
	char req[PATH_MAX];

	(void)state;
	request("org", "site-1", "client", "b", NULL, NULL, 0, req);
	approve_refused(req, "refused: org differs: the request asks for 'b', the project file "
	                     "says 'a'");
	request("no-org", "site-1", "client", NULL, NULL, NULL, 0, req);
	approve_refused(req, "refused: org differs: the request asks for none, the project file "
	                     "says 'a'");
}

static void test_approve_role(void **state)
{
	char req[PATH_MAX];

	(void)state;
	request("role", "admin@a.org", "admin", "a", "project_admin", NULL, 0, req);
	approve_refused(req, "refused: role differs: the request asks for 'project_admin', the "
	                     "project file says 'lead'");
	/* A site has no role: one asked for is refused too. */
	request("site-role", "site-1", "client", "a", "lead", NULL, 0, req);
	approve_refused(req, "refused: role differs: the request asks for 'lead', the project "
	                     "file says none");
}

static void test_approve_hosts(void **state)
{
	static const char *const other[] = {"server1", "10.0.0.1"};
	static const char *const swapped[] = {"127.0.0.1", "server1"};
	char req[PATH_MAX];

	(void)state;
	request("hosts", "server1", "server", "a", NULL, other, 2, req);
	approve_refused(req, "refused: host names differ: the request asks for 2 name(s) "
	                     "starting server1, the project file says 2 starting server1");
	request("hosts-order", "server1", "server", "a", NULL, swapped, 2, req);
	approve_refused(req, "refused: host names differ");
	request("hosts-none", "server1", "server", "a", NULL, NULL, 0, req);
	approve_refused(req, "refused: host names differ: the request asks for 0 name(s), the "
	                     "project file says 2 starting server1");
}

/* A byte of the CSR's signature (its DER's last byte) changed. */
static void test_approve_csr_signature(void **state)
{
	json_t *r = load_json(good_req);
	const char *pem = json_string_value(json_object_get(r, "csr"));
	char b64[8192], *p = b64, *enc = NULL, csr[8192], req[PATH_MAX];
	uint8_t *der = NULL;
	size_t der_len = 0;

	(void)state;
	/* The base64 body between the PEM lines. */
	for (const char *s = strchr(pem, '\n') + 1; *s != '\0' && *s != '-'; s++)
		if (*s != '\n')
			*p++ = *s;
	*p = '\0';
	assert_int_equal(cfl_base64_decode(b64, strlen(b64), &der, &der_len), 0);
	der[der_len - 1] ^= 0x01;
	assert_int_equal(cfl_base64_encode(der, der_len, &enc), 0);
	snprintf(csr, sizeof(csr),
	         "-----BEGIN CERTIFICATE REQUEST-----\n%s\n-----END CERTIFICATE REQUEST-----\n",
	         enc);
	json_object_set_new(r, "csr", json_string(csr));
	save_json(r, "bad-sig.request.json", req);
	approve_refused(req, "CSR signature does not verify");
	free(der);
	free(enc);
}

/* The request says site-1 of org a (as the project file), its CSR another subject. */
static void test_approve_csr_subject(void **state)
{
	char other[PATH_MAX], req[PATH_MAX];
	json_t *r, *o;

	(void)state;
	request("csr-cn", "site-2", "client", "a", NULL, NULL, 0, other);
	r = load_json(good_req);
	o = load_json(other);
	json_object_set(r, "csr", json_object_get(o, "csr"));
	save_json(r, "csr-cn.request.json", req);
	approve_refused(req, "refused: the CSR's name 'site-2' is not the request's 'site-1'");
	json_decref(o);
	request("csr-org", "site-1", "client", "b", NULL, NULL, 0, other);
	r = load_json(good_req);
	o = load_json(other);
	json_object_set(r, "csr", json_object_get(o, "csr"));
	save_json(r, "csr-org.request.json", req);
	approve_refused(req, "refused: the CSR's organisation or role is not the request's");
	json_decref(o);
}

/* ---- package ---- */

/* Packaging `appr` with `key` (NULL: the good key) is refused with `code` and a message
 * containing `why`; no kit is made. */
static void package_refused(const char *appr, const char *key, const char *expected_fp, int code,
                            const char *why)
{
	char kit[PATH_MAX], fp[CFL_PKI_FINGERPRINT_MAX] = "";
	struct cfl_err e = {0};

	path_of(kit, "kit-refused");
	assert_int_equal(
	        cfl_cert_package(appr, key != NULL ? key : good_key, kit, expected_fp, fp, &e),
	        code);
	contains(e.msg, why);
	assert_false(cfl__fs_exists(kit));
}

static void test_package_key(void **state)
{
	char req[PATH_MAX], key[PATH_MAX], why[PATH_MAX + 64];

	(void)state;
	request("key", "site-1", "client", "a", NULL, NULL, 0, req);
	path_of(key, "req-key/site-1.key");
	snprintf(why, sizeof(why), "key '%s' does not match the approved certificate", key);
	package_refused(approval, key, NULL, CFL_EVERIFY, why);
	package_refused(approval, key, root_fp, CFL_EVERIFY, why);
}

static void test_package_fingerprint(void **state)
{
	char why[256], other_fp[CFL_PKI_FINGERPRINT_MAX], kit[PATH_MAX];
	struct cfl_err e = {0};

	(void)state;
	snprintf(why, sizeof(why), "the approval's root CA fingerprint is %s, not the expected %s",
	         root_fp, "SHA256:00:11:22");
	package_refused(approval, NULL, "SHA256:00:11:22", CFL_EVERIFY, why);
	/* The fingerprint of another project's root (ws2's), and the approval of ws2 against
	 * this one's. */
	path_of(kit, "kit-other");
	assert_int_equal(cfl_cert_package(approval2, good_key, kit, NULL, other_fp, &e), 0);
	assert_string_not_equal(other_fp, root_fp);
	snprintf(why, sizeof(why), "not the expected %s", other_fp);
	package_refused(approval, NULL, other_fp, CFL_EVERIFY, why);
	snprintf(why, sizeof(why), "not the expected %s", root_fp);
	package_refused(approval2, NULL, root_fp, CFL_EVERIFY, why);
}

#define CHANGED \
	"the approval's signature does not verify with its issuing CA (changed after approval?)"

/* One byte of a file the approval carries changed. */
static void test_package_changed_file(void **state)
{
	static const char *const names[] = {"startup/fed_client.json",
	                                    "local/resources.json.default",
	                                    "startup/signature.json"};
	char path[PATH_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		json_t *a = load_json(approval);
		json_t *f = json_object_get(json_object_get(a, "files"), names[i]);
		char *text;

		if (f == NULL)
			fail_msg("no %s in the approval", names[i]);
		text = strdup(json_string_value(json_object_get(f, "text")));
		assert_non_null(text);
		text[strlen(text) / 2] ^= 0x01;
		json_object_set_new(f, "text", json_string(text));
		free(text);
		save_json(a, "changed-file.approval.json", path);
		package_refused(path, NULL, NULL, CFL_EVERIFY, CHANGED);
	}
}

/* A file's mode changed, and one more file. */
static void test_package_changed_mode(void **state)
{
	json_t *a = load_json(approval);
	json_t *f = json_object_get(json_object_get(a, "files"), "startup/fed_client.json");
	char path[PATH_MAX];

	(void)state;
	json_object_set_new(f, "mode", json_integer(0755));
	save_json(a, "changed-mode.approval.json", path);
	package_refused(path, NULL, NULL, CFL_EVERIFY, CHANGED);
	a = load_json(approval);
	json_object_set_new(json_object_get(a, "files"), "local/extra.json.default",
	                    json_pack("{s:i, s:s}", "mode", 0644, "text", "{}"));
	save_json(a, "added-file.approval.json", path);
	package_refused(path, NULL, NULL, CFL_EVERIFY, CHANGED);
}

/* One byte of the signature changed. */
static void test_package_changed_signature(void **state)
{
	json_t *a = load_json(approval);
	const char *b64 = json_string_value(json_object_get(a, "signature"));
	char path[PATH_MAX], *enc = NULL;
	uint8_t *sig = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(cfl_base64_decode(b64, strlen(b64), &sig, &len), 0);
	sig[len - 1] ^= 0x01;
	assert_int_equal(cfl_base64_encode(sig, len, &enc), 0);
	json_object_set_new(a, "signature", json_string(enc));
	save_json(a, "changed-sig.approval.json", path);
	package_refused(path, NULL, NULL, CFL_EVERIFY, CHANGED);
	free(sig);
	free(enc);
}

/* Signs approval `a`'s canonical text with the key at `key_path`. */
static void resign(json_t *a, const char *key_path)
{
	struct cfl_pki_key *key = NULL;
	char *canon = NULL, *b64 = NULL;
	uint8_t *sig = NULL;
	size_t len = 0, sig_len = 0;
	struct cfl_err e = {0};

	assert_int_equal(cfl_pki_key_load(key_path, &key, &e), 0);
	assert_int_equal(cfl__approval_canonical(a, &canon, &len, &e), 0);
	assert_int_equal(cfl_pki_sign(key, canon, len, &sig, &sig_len, &e), 0);
	assert_int_equal(cfl_base64_encode(sig, sig_len, &b64), 0);
	json_object_set_new(a, "signature", json_string(b64));
	cfl_pki_key_free(key);
	free(canon);
	free(b64);
	free(sig);
}

/* An approval signed by another CA: this project's files signed with ws2's CA key; and ws2's
 * certificate with this project's root put in, signed by ws2's CA (the chain breaks). */
static void test_package_other_ca(void **state)
{
	char key2[PATH_MAX], path[PATH_MAX];
	json_t *a, *mine;

	(void)state;
	path_of(key2, "ws2/flow/state/rootCA.key");
	a = load_json(approval);
	resign(a, key2);
	save_json(a, "other-ca.approval.json", path);
	package_refused(path, NULL, NULL, CFL_EVERIFY, CHANGED);
	/* Resigned by this project's own CA, it is accepted: the test changes only the signer. */
	path_of(key2, "ws/flow/state/rootCA.key");
	a = load_json(approval);
	resign(a, key2);
	save_json(a, "own-ca.approval.json", path);
	{
		char kit[PATH_MAX], fp[CFL_PKI_FINGERPRINT_MAX];
		struct cfl_err e = {0};

		path_of(kit, "kit-resigned");
		if (cfl_cert_package(path, good_key, kit, root_fp, fp, &e) != 0)
			fail_msg("re-signed by its own CA: %s", e.msg);
	}
	/* ws2's approval claiming this project's root CA, signed by ws2's CA. */
	path_of(key2, "ws2/flow/state/rootCA.key");
	a = load_json(approval2);
	mine = load_json(approval);
	json_object_set(json_object_get(a, "files"), "startup/rootCA.pem",
	                json_object_get(json_object_get(mine, "files"), "startup/rootCA.pem"));
	json_decref(mine);
	resign(a, key2);
	save_json(a, "swapped-root.approval.json", path);
	package_refused(
	        path, NULL, root_fp, CFL_EVERIFY,
	        "certificate 'site-1' verify failed: unable to get local issuer certificate");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_approve_good),
	        cmocka_unit_test(test_approve_name),
	        cmocka_unit_test(test_approve_type),
	        cmocka_unit_test(test_approve_org),
	        cmocka_unit_test(test_approve_role),
	        cmocka_unit_test(test_approve_hosts),
	        cmocka_unit_test(test_approve_csr_signature),
	        cmocka_unit_test(test_approve_csr_subject),
	        cmocka_unit_test(test_package_key),
	        cmocka_unit_test(test_package_fingerprint),
	        cmocka_unit_test(test_package_changed_file),
	        cmocka_unit_test(test_package_changed_mode),
	        cmocka_unit_test(test_package_changed_signature),
	        cmocka_unit_test(test_package_other_ca),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
