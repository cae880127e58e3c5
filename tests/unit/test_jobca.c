/* Unit tests for job signatures through an enterprise CA (issue 10): a project provisioned
 * with the issuing CA of an organisation's root (root and intermediates made with the openssl
 * command line, as an organisation would) takes a job signed by its admin, with the trust the
 * server and the sites build from their kit (rootCA.pem + the chain of their own certificate);
 * an admin certificate from another intermediate of the same root, or from the root itself, is
 * refused: the project trusts its issuing CA, not everything the root ever signed. The job
 * store, configured as the server configures it (root_ca and cert_file of its kit), applies
 * the same rule at submission. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cfl/err.h"
#include "cfl/jobs.h"
#include "cfl/log.h"
#include "cfl/loop.h"
#include "cfl/manifest.h"
#include "cfl/msg.h"
#include "cfl/pki.h"
#include "cfl/provision.h"
#include "util/fs.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char project_yml[] =
        "api_version: 3\n"
        "name: corp\n"
        "participants:\n"
        "  - {name: server1, type: server, org: a, fed_learn_port: 8002, admin_port: 8003}\n"
        "  - {name: site-1, type: client, org: a}\n"
        "  - {name: admin@a.org, type: admin, org: a, role: lead}\n";

static char tmp_dir[64];
static char prod[PATH_MAX];
static int have_openssl;

static void path_of(char *buf, const char *rel)
{
	if (snprintf(buf, PATH_MAX, "%s/%s", tmp_dir, rel) >= PATH_MAX)
		fail_msg("path too long");
}

static void kit_file(char *buf, const char *who, const char *file)
{
	if (snprintf(buf, PATH_MAX, "%s/%s/startup/%s", prod, who, file) >= PATH_MAX)
		fail_msg("path too long");
}

/* Runs a shell command in tmp_dir, quietly; 0 when it exits 0. */
static int sh(const char *cmd)
{
	char line[2048];

	if (snprintf(line, sizeof(line), "cd '%s' && { %s; } >/dev/null 2>&1", tmp_dir, cmd) >=
	    (int)sizeof(line))
		return -1;
	return system(line) == 0 ? 0 : -1;
}

/* corp-root, and two intermediates it issues: corp-issuing (the project's) and corp-other. */
static int make_cas(void)
{
	static const char *const cmds[] = {
	        "printf "
	        "'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n"
	        "subjectKeyIdentifier=hash\\nauthorityKeyIdentifier=keyid\\n' >ca.ext",
	        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	        "-subj /CN=corp-root -days 100 -keyout root.key -out root.pem",
	        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	        "-subj /CN=corp-issuing -keyout inter.key -out inter.csr",
	        "openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial "
	        "-days 90 -extfile ca.ext -out inter.pem",
	        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	        "-subj /CN=corp-other -keyout other.key -out other.csr",
	        "openssl x509 -req -in other.csr -CA root.pem -CAkey root.key -CAcreateserial "
	        "-days 90 -extfile ca.ext -out other.pem",
	};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (sh(cmds[i]) != 0) {
			fprintf(stderr, "setup: '%s' failed\n", cmds[i]);
			return -1;
		}
	}
	return 0;
}

static int provision(void)
{
	char yml[PATH_MAX], ws[PATH_MAX], inter[PATH_MAX], key[PATH_MAX], root[PATH_MAX];
	struct cfl_provision_opts o = {.key_type = CFL_KEY_P256};
	struct cfl_provision_ca ca = {0};
	struct cfl_err e = {0};

	path_of(yml, "project.yml");
	path_of(ws, "ws");
	path_of(inter, "inter.pem");
	path_of(key, "inter.key");
	path_of(root, "root.pem");
	if (cfl__fs_write_file(yml, project_yml, strlen(project_yml), 0644, &e) != 0)
		return -1;
	o.project_path = yml;
	o.workspace = ws;
	ca.ca_cert = inter;
	ca.ca_key = key;
	ca.ca_chain = root;
	if (cfl_provision_ca(&o, &ca, prod, sizeof(prod), &e) != 0) {
		fprintf(stderr, "setup: provision: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int setup(void **state)
{
	(void)state;
	memcpy(tmp_dir, "/tmp/cfl-test-jobca-XXXXXX", sizeof("/tmp/cfl-test-jobca-XXXXXX"));
	if (mkdtemp(tmp_dir) == NULL)
		return -1;
	have_openssl = sh("openssl version") == 0;
	if (!have_openssl)
		return 0;
	return make_cas() == 0 && provision() == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return cfl__fs_rmtree(tmp_dir) == 0 ? 0 : -1;
}

/* The trust a participant builds from its kit: its rootCA.pem and its own certificate file. */
static struct cfl_pki_trust *trust_of(const char *who, const char *cert)
{
	char anchor[PATH_MAX], own[PATH_MAX];
	struct cfl_pki_trust *t = NULL;
	struct cfl_err e = {0};

	kit_file(anchor, who, "rootCA.pem");
	if (cert != NULL)
		kit_file(own, who, cert);
	if (cfl_pki_trust_load(anchor, cert != NULL ? own : NULL, &t, &e) != 0)
		fail_msg("trust of %s: %s", who, e.msg);
	return t;
}

/* A job of one file signed by `key` with `cert`, checked with `t`: 0 or the error code. */
static int check_job(const struct cfl_pki_key *key, const struct cfl_pki_cert *cert,
                     const struct cfl_pki_trust *t, struct cfl_job_signer *who, struct cfl_err *e)
{
	struct cfl_manifest *m = calloc(1, sizeof(*m));
	struct cfl_manifest_signed s;
	struct cfl_job_sig sig;
	int rc;

	assert_non_null(m);
	assert_int_equal(cfl_manifest_add(m, "config.json", "{}", 2, e), 0);
	assert_int_equal(cfl_manifest_sign(m, key, cert, &s, e), 0);
	sig = (struct cfl_job_sig){s.manifest,          strlen(s.manifest), s.signature,
	                           strlen(s.signature), s.certificate,      strlen(s.certificate)};
	rc = cfl_manifest_verify_sig(&sig, t, 0, who, e);
	cfl_manifest_signed_release(&s);
	free(m);
	return rc;
}

/* The project's admin signs: the server and the site accept it. */
static void test_admin_of_the_project(void **state)
{
	struct cfl_pki_trust *server, *site, *anchor_only;
	struct cfl_pki_cert *cert = NULL;
	struct cfl_pki_key *key = NULL;
	struct cfl_job_signer who;
	char path[PATH_MAX];
	struct cfl_err e = {0};

	(void)state;
	if (!have_openssl)
		skip();
	kit_file(path, "admin@a.org", "client.crt");
	assert_int_equal(cfl_pki_cert_load(path, &cert, &e), 0);
	kit_file(path, "admin@a.org", "client.key");
	assert_int_equal(cfl_pki_key_load(path, &key, &e), 0);
	server = trust_of("server1", "server.crt");
	site = trust_of("site-1", "client.crt");
	if (check_job(key, cert, server, &who, &e) != 0)
		fail_msg("the server refuses the admin's job: %s", e.msg);
	assert_string_equal(who.name, "admin@a.org");
	assert_string_equal(who.org, "a");
	assert_string_equal(who.role, "lead");
	if (check_job(key, cert, site, &who, &e) != 0)
		fail_msg("the site refuses the admin's job: %s", e.msg);
	/* rootCA.pem alone (no issuing chain) cannot check it: why the configs take cert_file. */
	anchor_only = trust_of("site-1", NULL);
	assert_int_equal(check_job(key, cert, anchor_only, &who, &e), CFL_EVERIFY);
	assert_non_null(strstr(e.msg, "unable to get local issuer certificate"));
	cfl_pki_trust_free(anchor_only);
	cfl_pki_trust_free(server);
	cfl_pki_trust_free(site);
	cfl_pki_cert_free(cert);
	cfl_pki_key_free(key);
}

/* An admin certificate (the admin's name, org and role) issued by `ca_name`.pem/.key. */
static struct cfl_pki_cert *forge(const char *ca_name, const struct cfl_pki_key *key)
{
	struct cfl_pki_cert_req req = {.cn = "admin@a.org",
	                               .org = "a",
	                               .role = "lead",
	                               .usage = CFL_PKI_USAGE_CLIENT,
	                               .days = 30};
	char rel[64], path[PATH_MAX];
	struct cfl_pki_cert *ca = NULL, *cert = NULL;
	struct cfl_pki_key *ca_key = NULL;
	struct cfl_err e = {0};

	snprintf(rel, sizeof(rel), "%s.pem", ca_name);
	path_of(path, rel);
	assert_int_equal(cfl_pki_cert_load(path, &ca, &e), 0);
	snprintf(rel, sizeof(rel), "%s.key", ca_name);
	path_of(path, rel);
	assert_int_equal(cfl_pki_key_load(path, &ca_key, &e), 0);
	if (cfl_pki_cert_issue(ca_key, ca, key, &req, &cert, &e) != 0)
		fail_msg("issue from %s: %s", ca_name, e.msg);
	cfl_pki_cert_free(ca);
	cfl_pki_key_free(ca_key);
	return cert;
}

/* The same name from another intermediate of the root, or from the root: refused. */
static void test_other_ca_of_the_root(void **state)
{
	struct cfl_pki_trust *server, *site;
	struct cfl_pki_cert *cert;
	struct cfl_pki_key *key = NULL;
	struct cfl_job_signer who;
	struct cfl_err e = {0};

	(void)state;
	if (!have_openssl)
		skip();
	assert_int_equal(cfl_pki_key_generate(CFL_KEY_P256, &key, &e), 0);
	server = trust_of("server1", "server.crt");
	site = trust_of("site-1", "client.crt");
	cert = forge("other", key);
	assert_int_equal(check_job(key, cert, server, &who, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "the job's certificate ('admin@a.org') is not valid for this "
	                           "project: certificate 'admin@a.org' verify failed: unable to "
	                           "get local issuer certificate");
	assert_string_equal(who.name, "");
	assert_int_equal(check_job(key, cert, site, &who, &e), CFL_EVERIFY);
	cfl_pki_cert_free(cert);
	/* The root chains it, but the root is not the project's issuing CA. */
	cert = forge("root", key);
	assert_int_equal(check_job(key, cert, server, &who, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "the job's certificate ('admin@a.org') is not valid for this "
	                           "project: certificate 'admin@a.org' is not issued by the "
	                           "project's issuing CA 'corp-issuing'");
	assert_int_equal(check_job(key, cert, site, &who, &e), CFL_EVERIFY);
	cfl_pki_cert_free(cert);
	cfl_pki_trust_free(server);
	cfl_pki_trust_free(site);
	cfl_pki_key_free(key);
}

static const char config_json[] =
        "{\"workflow\": {\"name\": \"fedavg\", \"num_rounds\": 1, \"min_clients\": 1},"
        " \"executor\": {\"type\": \"builtin\", \"dataset\": \"synthetic\", \"floats\": 10}}";

/* A bundle of config.json and meta.json signed by `key` with `cert` (JSON text, free()). */
static char *bundle_of(const struct cfl_pki_key *key, const struct cfl_pki_cert *cert)
{
	static const char meta[] = "{\"name\": \"corp-job\"}";
	struct cfl_manifest *m = calloc(1, sizeof(*m));
	struct cfl_manifest_signed s;
	struct cfl_err e = {0};
	char *b64c = NULL, *b64m = NULL, *text;
	json_t *b;

	assert_non_null(m);
	assert_int_equal(cfl_manifest_add(m, "config.json", config_json, strlen(config_json), &e),
	                 0);
	assert_int_equal(cfl_manifest_add(m, "meta.json", meta, strlen(meta), &e), 0);
	assert_int_equal(cfl_manifest_sign(m, key, cert, &s, &e), 0);
	assert_int_equal(cfl_base64_encode(config_json, strlen(config_json), &b64c), 0);
	assert_int_equal(cfl_base64_encode(meta, strlen(meta), &b64m), 0);
	b = json_pack("{s:{s:s, s:s}, s:s, s:s, s:s}", "files", "config.json", b64c, "meta.json",
	              b64m, "manifest", s.manifest, "signature", s.signature, "certificate",
	              s.certificate);
	assert_non_null(b);
	text = json_dumps(b, JSON_COMPACT);
	assert_non_null(text);
	json_decref(b);
	free(b64c);
	free(b64m);
	cfl_manifest_signed_release(&s);
	free(m);
	return text;
}

/* Submits the bundle as `by`; returns the code, the reason in e. */
static int submit(struct cfl_jobs *j, const char *bundle, const char *by, struct cfl_err *e)
{
	struct cfl_jobs_who who = {.org = "a", .role = "lead"};
	char id[64];

	snprintf(who.name, sizeof(who.name), "%s", by);
	return cfl_jobs_submit(j, bundle, strlen(bundle), &who, id, e);
}

/* The job store, set up as the server sets it up, checks a submission through the chain of
 * the server's own certificate. The submitter is someone else than the signer, so that an
 * accepted signature shows as that refusal and no job is stored or scheduled. */
static void test_job_store(void **state)
{
	char ca[PATH_MAX], crt[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
	struct cfl_jobs_cfg cfg = {.dir = dir, .root_ca = ca, .cert_file = crt};
	struct cfl_pki_cert *admin = NULL, *rogue;
	struct cfl_pki_key *key = NULL, *rogue_key = NULL;
	struct cfl_msg_hub *hub = NULL;
	struct cfl_loop *loop = NULL;
	struct cfl_jobs *j = NULL;
	struct cfl_err e = {0};
	char *bundle;

	(void)state;
	if (!have_openssl)
		skip();
	kit_file(ca, "server1", "rootCA.pem");
	kit_file(crt, "server1", "server.crt");
	path_of(dir, "jobs");
	kit_file(path, "admin@a.org", "client.crt");
	assert_int_equal(cfl_pki_cert_load(path, &admin, &e), 0);
	kit_file(path, "admin@a.org", "client.key");
	assert_int_equal(cfl_pki_key_load(path, &key, &e), 0);
	assert_int_equal(cfl_pki_key_generate(CFL_KEY_P256, &rogue_key, &e), 0);
	rogue = forge("other", rogue_key);
	cfl_log_set_level(CFL_LOG_ERROR); /* the store warns of each refusal */
	assert_int_equal(cfl_loop_new(&loop, &e), 0);
	assert_int_equal(cfl_msg_hub_new(loop, "server", &hub, &e), 0);
	if (cfl_jobs_new(hub, NULL, &cfg, &j, &e) != 0)
		fail_msg("jobs: %s", e.msg);
	bundle = bundle_of(key, admin);
	assert_int_equal(submit(j, bundle, "someone@a.org", &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "the job is signed by 'admin@a.org', not by 'someone@a.org' who "
	                           "submits it");
	free(bundle);
	bundle = bundle_of(rogue_key, rogue);
	assert_int_equal(submit(j, bundle, "admin@a.org", &e), CFL_EVERIFY);
	assert_non_null(strstr(e.msg, "the job's certificate ('admin@a.org') is not valid for this "
	                              "project"));
	free(bundle);
	cfl_msg_hub_free(hub);
	cfl_jobs_free(j);
	cfl_loop_free(loop);
	cfl_log_set_level(CFL_LOG_INFO);
	cfl_pki_cert_free(admin);
	cfl_pki_cert_free(rogue);
	cfl_pki_key_free(key);
	cfl_pki_key_free(rogue_key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_admin_of_the_project),
	        cmocka_unit_test(test_other_ca_of_the_root),
	        cmocka_unit_test(test_job_store),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
