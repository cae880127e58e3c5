/* Unit tests for the project-file loader (src/provision/project*.c): the two examples of
 * NVFlare's communication-security guide, an NVFlare-style builders list, cfl's own keys,
 * the CN rule, the resolution helpers, every bad fixture in tests/data/bad/ (one per rule,
 * with the exact line:col of the offending node), the kit folder check of provisioning and the
 * bounds against hostile input.
 * Fixture files are found through CFL_SRC, which ctest sets to the source folder. */
#define _DEFAULT_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cfl/err.h"
#include "cfl/log.h"
#include "cfl/project.h"
#include "provision/internal.h"
#include "provision/project_int.h"
#include "util/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------------------- */

#define MAX_LINES 256

struct capture {
	char lines[MAX_LINES][512];
	size_t n;     /* lines kept */
	size_t total; /* lines seen */
};

static struct capture warnings;

static void sink(enum cfl_log_level level, const char *line, void *arg)
{
	struct capture *c = arg;

	if (level != CFL_LOG_WARN)
		return;
	if (c->n < MAX_LINES)
		snprintf(c->lines[c->n++], sizeof(c->lines[0]), "%s", line);
	c->total++;
}

static int setup(void **state)
{
	(void)state;
	memset(&warnings, 0, sizeof(warnings));
	cfl_log_set_sink(sink, &warnings);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cfl_log_set_sink(NULL, NULL);
	return 0;
}

/* Counts the captured warnings that contain `a` and (unless NULL) `b`. */
static size_t warned(const char *a, const char *b)
{
	size_t hits = 0;

	for (size_t i = 0; i < warnings.n; i++)
		if (strstr(warnings.lines[i], a) != NULL &&
		    (b == NULL || strstr(warnings.lines[i], b) != NULL))
			hits++;
	return hits;
}

static void fixture(char *buf, size_t size, const char *kind, const char *name)
{
	const char *src = getenv("CFL_SRC");

	if (src == NULL)
		fail_msg("CFL_SRC is not set (ctest sets it to the source folder)");
	assert_true((size_t)snprintf(buf, size, "%s/tests/data/%s/%s.yml", src, kind, name) < size);
}

static struct cfl_project *load_good(const char *name)
{
	struct cfl_project *p = NULL;
	struct cfl_err e = {0};
	char path[1024];
	int rc;

	fixture(path, sizeof(path), "good", name);
	rc = cfl_project_load(path, &p, &e);
	if (rc != 0)
		fail_msg("%s: rc %d: %s", path, rc, e.msg);
	assert_non_null(p);
	return p;
}

static const struct cfl_participant *find(const struct cfl_project *p, const char *name)
{
	for (size_t i = 0; i < p->n_parts; i++)
		if (strcmp(p->parts[i].name, name) == 0)
			return &p->parts[i];
	fail_msg("no participant '%s'", name);
	return NULL;
}

static void assert_target(const struct cfl_project *p, const char *name, const char *host, int port)
{
	const struct cfl_participant *pt = find(p, name);

	assert_string_equal(cfl_project_target_host(p, pt), host);
	assert_int_equal(cfl_project_target_port(p, pt), port);
}

static int load_str(const char *yml, struct cfl_project **p, struct cfl_err *e)
{
	return cfl_project_load_mem(yml, strlen(yml), "mem.yml", p, e);
}

/* ---- good files -------------------------------------------------------------------- */

static void test_test25(void **state)
{
	struct cfl_project *p = load_good("test25");
	const struct cfl_participant *server = cfl_project_server(p), *site;
	char cn[CFL_CN_MAX + 1];

	(void)state;
	assert_string_equal(p->name, "test25");
	assert_string_equal(p->description, "NVIDIA FLARE sample project yaml file");
	assert_int_equal(p->conn_sec, CFL_SEC_TLS);
	assert_string_equal(p->custom_ca_cert, "/tmp/whatever");
	assert_int_equal(p->key_type, CFL_KEY_P256);
	assert_int_equal(p->cert_validity_days, 0); /* unset */
	assert_int_equal(cfl_project_cert_days(p), 360);
	assert_int_equal(p->n_parts, 2);
	assert_non_null(strstr(p->path, "test25.yml"));

	assert_non_null(server);
	assert_string_equal(server->name, "server");
	assert_string_equal(server->org, "nvidia");
	assert_int_equal(server->fed_learn_port, 8002);
	assert_int_equal(server->admin_port, 8003);
	assert_int_equal(server->line, 9);
	assert_int_equal(server->col, 5);
	/* The server sits behind a TLS-terminating proxy; site-1 uses the project's tls. */
	assert_int_equal(cfl_project_conn_sec(p, server), CFL_SEC_CLEAR);
	site = find(p, "site-1");
	assert_int_equal(site->type, CFL_PT_CLIENT);
	assert_int_equal(site->conn_sec, CFL_SEC_UNSET);
	assert_int_equal(cfl_project_conn_sec(p, site), CFL_SEC_TLS);
	assert_string_equal(cfl_project_custom_ca(p, site), "/tmp/whatever");
	assert_target(p, "site-1", "server", 8002);
	cfl_project_server_cn(p, cn, sizeof(cn));
	assert_string_equal(cn, "server");
	assert_int_equal(warnings.total, 0);
	cfl_project_free(p);
}

static void test_multi_address(void **state)
{
	struct cfl_project *p = load_good("multi_address");
	const struct cfl_participant *server = cfl_project_server(p), *admin;

	(void)state;
	assert_int_equal(p->n_parts, 5);
	assert_int_equal(server->n_host_names, 2);
	assert_string_equal(server->host_names[0], "localhost");
	assert_string_equal(server->host_names[1], "127.0.0.1");
	assert_string_equal(server->default_host, "localhost");
	assert_string_equal(cfl_project_default_host(p), "localhost");
	assert_target(p, "red", "127.0.0.1", 8002);
	assert_target(p, "blue", "localhost", 8002);
	assert_target(p, "silver", "localhost", 8002);
	assert_target(p, "admin@nvidia.com", "127.0.0.1", 8003);
	admin = find(p, "admin@nvidia.com");
	assert_int_equal(admin->type, CFL_PT_ADMIN);
	assert_string_equal(admin->role, "project_admin");
	for (size_t i = 0; i < p->n_parts; i++) {
		assert_int_equal(cfl_project_conn_sec(p, &p->parts[i]), CFL_SEC_MTLS);
		assert_null(cfl_project_custom_ca(p, &p->parts[i]));
	}
	assert_int_equal(warnings.total, 0);
	cfl_project_free(p);
}

static void test_flare_builders(void **state)
{
	static const char *const ignored[] = {"nvflare.lighter.impl.he.HEBuilder",
	                                      "nvflare.lighter.impl.docker.DockerBuilder",
	                                      "nvflare.lighter.impl.helm_chart.HelmChartBuilder"};
	struct cfl_project *p = load_good("flare_builders");

	(void)state;
	assert_int_equal(p->n_parts, 4);
	assert_int_equal(p->key_type, CFL_KEY_P256);
	/* One warning per builder cfl does not implement, and one for listening_host. */
	assert_int_equal(warnings.total, 4);
	for (size_t i = 0; i < 3; i++) {
		char what[160];

		snprintf(what, sizeof(what),
		         "builder '%s' is not implemented by cfl and is ignored", ignored[i]);
		assert_int_equal(warned("flare_builders.yml:", what), 1);
	}
	assert_int_equal(
	        warned("flare_builders.yml:41:11: builder 'nvflare.lighter.impl.he.", NULL), 1);
	assert_int_equal(warned("flare_builders.yml:17:5: participant 'site-1': unknown key "
	                        "'listening_host' (ignored)",
	                        NULL),
	                 1);
	assert_int_equal(warned("WorkspaceBuilder", NULL) + warned("StaticFileBuilder", NULL) +
	                         warned("CertBuilder", NULL) + warned("SignatureBuilder", NULL),
	                 0);
	cfl_project_free(p);
}

static void test_connect_to_map(void **state)
{
	struct cfl_project *p = load_good("connect_to_map");
	const struct cfl_participant *server = cfl_project_server(p), *a, *b, *lead;

	(void)state;
	assert_string_equal(p->name, "edge.lab-2");
	assert_int_equal(p->conn_sec, CFL_SEC_MTLS); /* "MTLS": case-insensitive */
	assert_int_equal(p->key_type, CFL_KEY_RSA2048);
	assert_int_equal(p->cert_validity_days, 30);
	assert_int_equal(cfl_project_cert_days(p), 30);
	assert_int_equal(server->fed_learn_port, 9443);
	assert_int_equal(server->admin_port, 9443);
	assert_int_equal(server->n_host_names, 3);
	assert_string_equal(server->host_names[2], "fd00::5");
	assert_null(server->default_host);
	assert_string_equal(cfl_project_default_host(p), "fl.example.org");
	assert_int_equal(cfl_project_conn_sec(p, server), CFL_SEC_TLS);

	a = find(p, "site_a");
	assert_string_equal(a->connect_host, "proxy.example.org");
	assert_int_equal(a->connect_port, 443);
	assert_int_equal(a->connect_sec, CFL_SEC_TLS);
	assert_int_equal(cfl_project_conn_sec(p, a), CFL_SEC_TLS);
	assert_string_equal(cfl_project_custom_ca(p, a), "/etc/ssl/proxy-ca.pem");
	assert_target(p, "site_a", "proxy.example.org", 443);

	b = find(p, "site-b");
	assert_null(b->connect_host);
	assert_null(b->role); /* role does not apply to a client */
	assert_int_equal(cfl_project_conn_sec(p, b), CFL_SEC_MTLS);
	assert_target(p, "site-b", "fl.example.org", 9500);

	lead = find(p, "lead@lab-2.example.org");
	assert_string_equal(lead->role, "lead");
	assert_target(p, "lead@lab-2.example.org", "fd00::5", 9443);

	assert_int_equal(warnings.total, 3);
	assert_int_equal(warned("connect_to_map.yml:8:1: unknown key 'overseer' (ignored)", NULL),
	                 1);
	assert_int_equal(warned("connect_to_map.yml:29:5: participant 'site_a': unknown key "
	                        "'listening_host' (ignored)",
	                        NULL),
	                 1);
	assert_int_equal(warned("connect_to_map.yml:33:5: participant 'site-b': key 'role' does "
	                        "not apply to a client (ignored)",
	                        NULL),
	                 1);
	cfl_project_free(p);
}

/* NVFlare 2.7 behaviour: the CN is cut, default_host keeps the full name. */
static void test_long_server_name(void **state)
{
	struct cfl_project *p = load_good("long_server_name");
	const struct cfl_participant *server = cfl_project_server(p);
	char cn[CFL_CN_MAX + 1], small[8];

	(void)state;
	assert_int_equal(strlen(server->name), 93);
	assert_non_null(server->default_host);
	assert_string_equal(server->default_host, server->name);
	cfl_project_server_cn(p, cn, sizeof(cn));
	assert_int_equal(strlen(cn), CFL_CN_MAX);
	assert_memory_equal(cn, server->name, CFL_CN_MAX);
	cfl_project_server_cn(p, small, sizeof(small));
	assert_string_equal(small, "aaaaaaa");
	assert_target(p, "site-1", server->name, 8002);
	assert_int_equal(p->key_type, CFL_KEY_RSA2048); /* from the CertBuilder's args */
	assert_int_equal(warnings.total, 1);
	assert_int_equal(
	        warned("long_server_name.yml:6:5: participant 'aaaa",
	               "is longer than 64 bytes: the certificate CN is cut to 64 bytes and "
	               "default_host keeps the full name"),
	        1);
	cfl_project_free(p);
}

/* ---- bad files: one per rule ------------------------------------------------------- */

static const struct bad {
	const char *name;
	int code;
	int line, col;
	const char *rule;
} bad[] = {
        {"syntax_error", CFL_EPARSE, 10, 2, "yaml syntax error: did not find expected key"},
        {"syntax_unclosed", CFL_EPARSE, 9, 1,
         "yaml syntax error: did not find expected ',' or ']'"},
        {"syntax_tab", CFL_EPARSE, 10, 1,
         "yaml syntax error: found a tab character that violates indentation"},
        {"empty", CFL_ECONFIG, 1, 1, "the project file is empty"},
        {"top_not_mapping", CFL_ECONFIG, 2, 1, "the project file must be a mapping"},
        {"alias", CFL_ECONFIG, 10, 10, "yaml aliases are not supported ('*org')"},
        {"multi_document", CFL_ECONFIG, 12, 1, "more than one yaml document"},
        {"too_deep", CFL_ECONFIG, 4, 77, "nested too deeply (at most 64 levels)"},
        {"value_too_long", CFL_ECONFIG, 4, 14, "value longer than 4096 bytes"},
        {"nul_in_value", CFL_ECONFIG, 4, 14, "value contains a NUL character"},
        {"duplicate_top_key", CFL_ECONFIG, 4, 1, "duplicate key 'name' (first at line 3)"},
        {"mapping_key_not_string", CFL_ECONFIG, 4, 3, "mapping keys must be strings, not a list"},
        {"api_version_missing", CFL_ECONFIG, 2, 1,
         "missing required key 'api_version' (allowed: 3)"},
        {"api_version_wrong", CFL_ECONFIG, 2, 14, "unsupported api_version '2' (allowed: 3)"},
        {"name_missing", CFL_ECONFIG, 2, 1, "missing required key 'name'"},
        {"name_empty", CFL_ECONFIG, 3, 1, "required key 'name' has no value"},
        {"name_invalid", CFL_ECONFIG, 3, 7,
         "invalid project name '../evil' (allowed: letters, digits, '_', '.' and '-', not starting "
         "with '.')"},
        {"name_too_long", CFL_ECONFIG, 3, 7, "project name is longer than 64 bytes"},
        {"participants_missing", CFL_ECONFIG, 2, 1, "missing required key 'participants'"},
        {"participants_empty", CFL_ECONFIG, 4, 15, "'participants' is empty"},
        {"participants_not_list", CFL_ECONFIG, 5, 3,
         "'participants' must be a list, not a mapping"},
        {"participant_not_mapping", CFL_ECONFIG, 8, 5,
         "participant #2: a participant must be a mapping"},
        {"participant_no_name", CFL_ECONFIG, 8, 5, "participant #2: missing required key 'name'"},
        {"participant_no_type", CFL_ECONFIG, 8, 5,
         "participant 'site-1': missing required key 'type'"},
        {"participant_no_org", CFL_ECONFIG, 8, 5,
         "participant 'site-1': missing required key 'org'"},
        {"type_unknown", CFL_ECONFIG, 9, 11,
         "participant 'site-1': invalid type 'worker' (allowed: server, client, admin)"},
        {"type_relay", CFL_ECONFIG, 12, 11,
         "participant 'relay-1': relay participants are not supported yet"},
        {"type_overseer", CFL_ECONFIG, 6, 11,
         "overseer participants (NVFlare high availability) are not supported"},
        {"server_name_invalid", CFL_ECONFIG, 5, 11,
         "participant 'server_1': invalid server name 'server_1' (allowed: a host name"},
        {"server_name_label_too_long", CFL_ECONFIG, 5, 11, "invalid server name"},
        {"server_name_numeric", CFL_ECONFIG, 5, 11, "invalid server name '999.1.1.1'"},
        {"host_names_invalid", CFL_ECONFIG, 8, 29,
         "participant 'server.example.com': invalid host_names entry '-bad.example.com'"},
        {"host_names_mapping", CFL_ECONFIG, 9, 7,
         "'host_names' must be a string or a list of strings, not a mapping"},
        {"host_names_too_many", CFL_ECONFIG, 8, 17, "too many host_names (65, at most 64)"},
        {"default_host_invalid", CFL_ECONFIG, 8, 19,
         "invalid default_host 'fl server.example.com'"},
        {"connect_to_invalid", CFL_ECONFIG, 11, 17,
         "participant 'site-1': invalid connect_to 'proxy_1.example.com'"},
        {"connect_to_host_invalid", CFL_ECONFIG, 12, 13, "invalid connect_to host '[::1]'"},
        {"connect_to_list", CFL_ECONFIG, 11, 17,
         "'connect_to' must be a host or a mapping {host, port, connection_security}, not a list"},
        {"connect_to_port_invalid", CFL_ECONFIG, 11, 49,
         "invalid connect_to port '65536' (allowed: an integer 1..65535)"},
        {"client_name_invalid", CFL_ECONFIG, 8, 11,
         "participant 'site.1': invalid client name 'site.1' (allowed: letters, digits, '_' and "
         "'-')"},
        {"client_name_too_long", CFL_ECONFIG, 8, 11, "client name is longer than 64 bytes"},
        {"client_name_server", CFL_ECONFIG, 8, 11,
         "participant 'server': the client name 'server' is reserved for the FL server"},
        {"org_invalid", CFL_ECONFIG, 10, 10,
         "participant 'site-1': invalid org 'nv-idia' (allowed: letters, digits and '_')"},
        {"org_too_long", CFL_ECONFIG, 10, 10, "org is longer than 64 bytes"},
        {"admin_name_invalid", CFL_ECONFIG, 8, 11,
         "participant 'admin': invalid admin name 'admin' (allowed: an e-mail address"},
        {"admin_name_no_dot", CFL_ECONFIG, 8, 11, "invalid admin name 'admin@localhost'"},
        {"admin_name_too_long", CFL_ECONFIG, 8, 11, "admin name is longer than 64 bytes"},
        {"admin_name_path", CFL_ECONFIG, 8, 11,
         "participant '../../x@y.com': invalid admin name '../../x@y.com' (allowed: an e-mail "
         "address user@domain.tld, the user part of letters, digits, '.', '_', '+' and '-', not "
         "starting with '.')"},
        {"admin_name_leading_dot", CFL_ECONFIG, 8, 11,
         "participant '.admin@nvidia.com': invalid admin name '.admin@nvidia.com'"},
        {"admin_name_bad_char", CFL_ECONFIG, 8, 11,
         "participant 'adm!n@nvidia.com': invalid admin name 'adm!n@nvidia.com'"},
        {"role_missing", CFL_ECONFIG, 8, 5,
         "participant 'admin@nvidia.com': missing required key 'role' (allowed: project_admin, "
         "org_admin, lead, member)"},
        {"role_invalid", CFL_ECONFIG, 11, 11,
         "invalid role 'superuser' (allowed: project_admin, org_admin, lead, member)"},
        {"conn_sec_invalid", CFL_ECONFIG, 4, 22,
         "invalid connection_security 'ssl' (allowed: clear, tls, mtls)"},
        {"conn_sec_participant_invalid", CFL_ECONFIG, 11, 26,
         "participant 'site-1': invalid connection_security 'tls1.3' (allowed: clear, tls, mtls)"},
        {"conn_sec_connect_to_invalid", CFL_ECONFIG, 13, 28,
         "invalid connection_security 'none' (allowed: clear, tls, mtls)"},
        {"duplicate_name", CFL_ECONFIG, 11, 11,
         "participant 'site-1': duplicate participant name (first defined at line 8"},
        {"duplicate_participant_key", CFL_ECONFIG, 11, 5,
         "participant 'site-1': duplicate key 'org' (first at line 10)"},
        {"no_server", CFL_ECONFIG, 5, 3, "no server participant (exactly one is required)"},
        {"two_servers", CFL_ECONFIG, 9, 11,
         "participant 'server2.example.com': a second server (the first is 'server.example.com' at "
         "line 5"},
        {"port_not_int", CFL_ECONFIG, 8, 21,
         "invalid fed_learn_port 'abc' (allowed: an integer 1..65535)"},
        {"port_zero", CFL_ECONFIG, 8, 17, "invalid admin_port '0' (allowed: an integer 1..65535)"},
        {"port_too_big", CFL_ECONFIG, 8, 21,
         "invalid fed_learn_port '70000' (allowed: an integer 1..65535)"},
        {"port_float", CFL_ECONFIG, 8, 17,
         "invalid admin_port '1.5' (allowed: an integer 1..65535)"},
        {"port_list", CFL_ECONFIG, 8, 21,
         "'fed_learn_port' must be an integer 1..65535, not a list"},
        {"wrong_type_org", CFL_ECONFIG, 10, 10,
         "participant 'site-1': 'org' must be a string, not a list"},
        {"wrong_type_description", CFL_ECONFIG, 5, 3,
         "'description' must be a string, not a mapping"},
        {"custom_ca_empty", CFL_ECONFIG, 11, 21, "'custom_ca_cert' must be a file path, not empty"},
        {"key_type_invalid", CFL_ECONFIG, 4, 11,
         "invalid key_type 'dsa-1024' (allowed: ecdsa-p256, rsa-2048)"},
        {"key_type_conflict", CFL_ECONFIG, 15, 17,
         "key_type 'rsa-2048' of CertBuilder conflicts with the top-level key_type 'ecdsa-p256'"},
        {"cert_days_invalid", CFL_ECONFIG, 4, 21,
         "invalid cert_validity_days '4000' (allowed: an integer 1..3650)"},
        {"builders_not_list", CFL_ECONFIG, 12, 3, "'builders' must be a list, not a mapping"},
        {"builder_not_mapping", CFL_ECONFIG, 12, 5,
         "a builder must be a mapping {path, args}, not a string"},
        {"builder_no_path", CFL_ECONFIG, 12, 5, "builder without 'path'"},
        {"builder_args_not_mapping", CFL_ECONFIG, 13, 11,
         "'args' of builder 'nvflare.lighter.impl.cert.CertBuilder' must be a mapping, not a list"},
        {"not_utf8", CFL_EPARSE, 4, 17,
         "yaml syntax error: invalid leading UTF-8 octet (byte 0xff)"},
};

static void test_bad_fixtures(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cfl_project *p = (struct cfl_project *)&p; /* must be reset to NULL */
		struct cfl_err e = {0};
		char path[1024], where[128];
		int rc;

		fixture(path, sizeof(path), "bad", bad[i].name);
		rc = cfl_project_load(path, &p, &e);
		snprintf(where, sizeof(where), "/%s.yml:%d:%d: ", bad[i].name, bad[i].line,
		         bad[i].col);
		if (rc != bad[i].code || e.code != rc || p != NULL ||
		    strstr(e.msg, where) == NULL || strstr(e.msg, bad[i].rule) == NULL)
			fail_msg("%s: rc %d (want %d), message:\n  %s\nwant '%s' and '%s'",
			         bad[i].name, rc, bad[i].code, e.msg, where, bad[i].rule);
	}
}

/* Every file in tests/data/bad/ has a row above, and the other way round. */
static void test_bad_table_complete(void **state)
{
	const size_t rows = sizeof(bad) / sizeof(bad[0]);
	const char *src = getenv("CFL_SRC");
	char dir[1024];
	struct dirent *de;
	size_t files = 0;
	DIR *d;

	(void)state;
	assert_non_null(src);
	snprintf(dir, sizeof(dir), "%s/tests/data/bad", src);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t j = 0, len = strlen(de->d_name);

		if (len < 5 || strcmp(de->d_name + len - 4, ".yml") != 0)
			continue;
		while (j < rows && (strlen(bad[j].name) != len - 4 ||
		                    strncmp(bad[j].name, de->d_name, len - 4) != 0))
			j++;
		if (j == rows)
			fail_msg("tests/data/bad/%s has no row in the table", de->d_name);
		files++;
	}
	closedir(d);
	assert_int_equal(files, rows);
}

/* ---- API details ------------------------------------------------------------------- */

static const char minimal[] = "api_version: 3\n"
                              "name: mini\n"
                              "participants:\n"
                              "  - {name: s.example.com, type: server, org: o}\n"
                              "  - {name: c1, type: client, org: o}\n";

static void test_defaults(void **state)
{
	struct cfl_project *p = NULL;
	struct cfl_err e = {0};
	const struct cfl_participant *c;

	(void)state;
	assert_int_equal(load_str(minimal, &p, &e), 0);
	assert_string_equal(p->path, "mem.yml");
	assert_null(p->description);
	assert_int_equal(p->conn_sec, CFL_SEC_UNSET);
	c = find(p, "c1");
	assert_int_equal(cfl_project_conn_sec(p, c), CFL_SEC_MTLS);
	assert_null(cfl_project_custom_ca(p, c));
	assert_null(c->connect_host);
	assert_int_equal(c->connect_port, 0);
	assert_target(p, "c1", "s.example.com", 8002);
	cfl_project_free(p);
	cfl_project_free(NULL);
}

static void test_conn_sec_names(void **state)
{
	enum cfl_conn_sec s = CFL_SEC_UNSET;

	(void)state;
	assert_int_equal(cfl_conn_sec_parse("mTLS", &s), 0);
	assert_int_equal(s, CFL_SEC_MTLS);
	assert_int_equal(cfl_conn_sec_parse("CLEAR", &s), 0);
	assert_int_equal(s, CFL_SEC_CLEAR);
	assert_int_equal(cfl_conn_sec_parse("Tls", &s), 0);
	assert_int_equal(s, CFL_SEC_TLS);
	assert_int_equal(cfl_conn_sec_parse("ssl", &s), CFL_EINVAL);
	assert_int_equal(cfl_conn_sec_parse("", &s), CFL_EINVAL);
	assert_string_equal(cfl_conn_sec_name(CFL_SEC_CLEAR), "clear");
	assert_string_equal(cfl_conn_sec_name(CFL_SEC_TLS), "tls");
	assert_string_equal(cfl_conn_sec_name(CFL_SEC_MTLS), "mtls");
	assert_string_equal(cfl_conn_sec_name(CFL_SEC_UNSET), "unset");
}

static void test_missing_file(void **state)
{
	struct cfl_project *p = NULL;
	struct cfl_err e = {0};

	(void)state;
	assert_int_equal(cfl_project_load("/nonexistent/project.yml", &p, &e), CFL_ENOENT);
	assert_null(p);
	assert_non_null(strstr(e.msg, "/nonexistent/project.yml"));
}

static void test_size_limit(void **state)
{
	size_t len = CFL_PROJECT_MAX_BYTES + 1;
	char *big = malloc(len);
	struct cfl_project *p = NULL;
	struct cfl_err e = {0};

	(void)state;
	assert_non_null(big);
	memset(big, '#', len);
	assert_int_equal(cfl_project_load_mem(big, len, "big.yml", &p, &e), CFL_ETOOBIG);
	assert_null(p);
	assert_non_null(strstr(e.msg, "big.yml"));
	/* Exactly at the limit is read (and is, here, an empty document). */
	assert_int_equal(cfl_project_load_mem(big, len - 1, "big.yml", &p, &e), CFL_ECONFIG);
	assert_non_null(strstr(e.msg, "the project file is empty"));
	free(big);
}

/* cfl__parallel: every index runs once; after failures, the lowest failing index's error is
 * the one returned, and every index below it has run. */
struct par {
	unsigned char ran[3000];
};

static int par_item(void *arg, size_t i, struct cfl_err *e)
{
	struct par *p = arg;

	p->ran[i]++;
	if (i == 2900 || i == 1700 || i == 2200)
		return cfl_err_set(e, CFL_EIO, "item %zu failed", i);
	return 0;
}

static int par_ok(void *arg, size_t i, struct cfl_err *e)
{
	(void)e;
	((struct par *)arg)->ran[i]++;
	return 0;
}

static void test_parallel(void **state)
{
	static struct par p;
	struct cfl_err e = {0};

	(void)state;
	for (int threads = 0; threads <= 3; threads++) {
		memset(&p, 0, sizeof(p));
		assert_int_equal(cfl__parallel(sizeof(p.ran), threads, par_ok, &p, &e), 0);
		for (size_t i = 0; i < sizeof(p.ran); i++)
			assert_int_equal(p.ran[i], 1);
		memset(&p, 0, sizeof(p));
		assert_int_equal(cfl__parallel(sizeof(p.ran), threads, par_item, &p, &e), CFL_EIO);
		assert_string_equal(e.msg, "item 1700 failed");
		for (size_t i = 0; i < sizeof(p.ran); i++)
			assert_true(i <= 1700 ? p.ran[i] == 1 : p.ran[i] <= 1);
	}
	assert_int_equal(cfl__parallel(0, 0, par_item, &p, &e), 0);
}

static void test_participant_limit(void **state)
{
	size_t n = CFL_PROJECT_MAX_PARTICIPANTS + 1, cap = 64 + n * 6, len;
	char *yml = malloc(cap);
	struct cfl_project *p = NULL;
	struct cfl_err e = {0};

	(void)state;
	assert_non_null(yml);
	len = (size_t)snprintf(yml, cap, "api_version: 3\nname: many\nparticipants:\n");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(yml + len, cap - len, "  - x\n");
	assert_int_equal(cfl_project_load_mem(yml, len, "many.yml", &p, &e), CFL_ECONFIG);
	assert_non_null(
	        strstr(e.msg, "many.yml:4:3: too many participants (100001, at most 100000)"));
	free(yml);
}

/* 2,000 valid clients load; names are checked for uniqueness in one pass. */
static void test_many_participants(void **state)
{
	size_t n = 2000, cap = 128 + n * 64, len;
	char *yml = malloc(cap);
	struct cfl_project *p = NULL;
	struct cfl_err e = {0};

	(void)state;
	assert_non_null(yml);
	len = (size_t)snprintf(yml, cap,
	                       "api_version: 3\nname: many\nparticipants:\n"
	                       "  - {name: s.example.com, type: server, org: o}\n");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(yml + len, cap - len,
		                        "  - {name: site-%zu, type: client, org: o}\n", i);
	assert_int_equal(cfl_project_load_mem(yml, len, "many.yml", &p, &e), 0);
	assert_int_equal(p->n_parts, n + 1);
	cfl_project_free(p);
	/* The same name again at the end is found. */
	len += (size_t)snprintf(yml + len, cap - len, "  - {name: site-7, type: client, org: o}\n");
	assert_int_equal(cfl_project_load_mem(yml, len, "many.yml", &p, &e), CFL_ECONFIG);
	assert_non_null(strstr(e.msg, "many.yml:2005:12: participant 'site-7': duplicate"));
	free(yml);
}

/* The classic exponential alias expansion is refused at the first alias. */
static void test_alias_bomb(void **state)
{
	static const char bomb[] = "a: &a [x, x, x, x, x, x, x, x, x]\n"
	                           "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	                           "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	                           "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	                           "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	                           "participants: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
	static const char cycle[] = "participants: &p [*p]\n";
	struct cfl_project *p = NULL;
	struct cfl_err e = {0};

	(void)state;
	assert_int_equal(load_str(bomb, &p, &e), CFL_ECONFIG);
	assert_non_null(strstr(e.msg, "mem.yml:2:8: yaml aliases are not supported ('*a')"));
	assert_int_equal(load_str(cycle, &p, &e), CFL_ECONFIG);
	assert_non_null(strstr(e.msg, "mem.yml:1:19: yaml aliases are not supported"));
	assert_null(p);
}

static void test_deep_nesting(void **state)
{
	size_t depth = 100000, len = 2 * depth;
	char *yml = malloc(len);
	struct cfl_project *p = NULL;
	struct cfl_err e = {0};

	(void)state;
	assert_non_null(yml);
	memset(yml, '[', depth);
	memset(yml + depth, ']', depth);
	assert_int_equal(cfl_project_load_mem(yml, len, "deep.yml", &p, &e), CFL_ECONFIG);
	assert_non_null(strstr(e.msg, "deep.yml:1:65: lists and mappings nested too deeply"));
	free(yml);
}

static void test_warning_cap(void **state)
{
	char yml[8192];
	size_t len = 0;
	struct cfl_project *p = NULL;
	struct cfl_err e = {0};

	(void)state;
	len += (size_t)snprintf(yml + len, sizeof(yml) - len, "%s", minimal);
	for (int i = 0; i < 150; i++)
		len += (size_t)snprintf(yml + len, sizeof(yml) - len, "extra_%d: 1\n", i);
	assert_int_equal(cfl_project_load_mem(yml, len, "noisy.yml", &p, &e), 0);
	assert_int_equal(warnings.total, 101);
	assert_non_null(strstr(warnings.lines[0], "noisy.yml:6:1: unknown key 'extra_0'"));
	assert_non_null(strstr(warnings.lines[100], "more than 100 warnings"));
	cfl_project_free(p);
}

/* Values from the file are quoted safely in messages: control bytes become '?'. */
static void test_message_quoting(void **state)
{
	static const char yml[] = "api_version: 3\n"
	                          "name: \"bad\\e[31mname\"\n"
	                          "participants: [{name: s, type: server, org: o}]\n";
	struct cfl_project *p = NULL;
	struct cfl_err e = {0};

	(void)state;
	assert_int_equal(load_str(yml, &p, &e), CFL_ECONFIG);
	assert_non_null(strstr(e.msg, "mem.yml:2:7: invalid project name 'bad?[31mname'"));
}

/* Every prefix of a real file either loads or fails cleanly (ASan watches for the rest). */
static void test_prefixes(void **state)
{
	char path[1024], *buf;
	size_t len;
	FILE *f;

	(void)state;
	fixture(path, sizeof(path), "good", "flare_builders");
	f = fopen(path, "rb");
	assert_non_null(f);
	buf = malloc(8192);
	assert_non_null(buf);
	len = fread(buf, 1, 8192, f);
	fclose(f);
	for (size_t n = 0; n <= len; n++) {
		struct cfl_project *p = NULL;
		struct cfl_err e = {0};
		int rc = cfl_project_load_mem(buf, n, "prefix.yml", &p, &e);

		assert_true(rc == 0 || rc == CFL_ECONFIG || rc == CFL_EPARSE);
		assert_true(rc != 0 || p != NULL);
		assert_true(rc == 0 || (p == NULL && strncmp(e.msg, "prefix.yml", 10) == 0));
		cfl_project_free(p);
	}
	free(buf);
}

/* ---- name checks ------------------------------------------------------------------- */

static void test_host_checks(void **state)
{
	static const char *const good[] = {
	        "localhost",   "server", "fl-1.example.com",      "127.0.0.1",     "::1", "fd00::5",
	        "2001:db8::1", "a.b",    "xn--bcher-kva.example", "0a.example.com"};
	static const char *const bad_hosts[] = {
	        "",      "-a.example.com", "a-.example.com", "a..b",      "a.b.",
	        ".a",    "under_score",    "sp ace",         "999.1.1.1", "1.2.3",
	        "[::1]", "fe80::1%eth0",   "host:8002",      "a/b",       "caf\xc3\xa9.example"};
	char label[70], longname[300];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!cfl__is_host(good[i]))
			fail_msg("'%s' should be a valid host", good[i]);
	for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++)
		if (cfl__is_host(bad_hosts[i]))
			fail_msg("'%s' should be rejected", bad_hosts[i]);
	memset(label, 'l', 63);
	label[63] = '\0';
	assert_true(cfl__is_hostname(label));
	label[63] = 'l';
	label[64] = '\0';
	assert_false(cfl__is_hostname(label));
	/* 255 bytes in total is the limit: 4 labels of 63 and dots make 255. */
	snprintf(longname, sizeof(longname), "%.63s.%.63s.%.63s.%.63s", label, label, label, label);
	assert_int_equal(strlen(longname), 255);
	assert_true(cfl__is_hostname(longname));
	snprintf(longname, sizeof(longname), "%.63s.%.63s.%.63s.%.63s.a", label, label, label,
	         label);
	assert_false(cfl__is_hostname(longname));
}

static void test_name_checks(void **state)
{
	(void)state;
	assert_true(cfl__is_email("admin@nvidia.com"));
	assert_true(cfl__is_email("first.last+tag@lab-2.example.org"));
	assert_false(cfl__is_email("admin"));
	assert_false(cfl__is_email("@nvidia.com"));
	assert_false(cfl__is_email("a@b@nvidia.com"));
	assert_false(cfl__is_email("a b@nvidia.com"));
	assert_false(cfl__is_email("admin@localhost"));
	assert_false(cfl__is_email("admin@127.0.0.1"));
	assert_false(cfl__is_email("admin@-x.com"));
	/* The user part: letters, digits, '.', '_', '+', '-', not starting with '.'. */
	assert_true(cfl__is_email("a_b-c+d.e@x.org"));
	assert_true(cfl__is_email("a.@x.org"));
	assert_false(cfl__is_email("../../x@y.com"));
	assert_false(cfl__is_email("a/b@x.org"));
	assert_false(cfl__is_email(".a@x.org"));
	assert_false(cfl__is_email("..@x.org"));
	assert_false(cfl__is_email("a\\b@x.org"));
	assert_false(cfl__is_email("a!b@x.org"));
	assert_false(cfl__is_email("\"a\"@x.org"));
	assert_false(cfl__is_email("caf\xc3\xa9@x.org"));
	assert_true(cfl__is_word("site-1", "_-"));
	assert_true(cfl__is_word("site_1", "_-"));
	assert_false(cfl__is_word("site.1", "_-"));
	assert_false(cfl__is_word("", "_-"));
	assert_false(cfl__is_word("nv-idia", "_"));
}

/* Defence in depth behind the name rules: a kit folder is a new folder directly inside the
 * output folder, or nothing is written. */
static void test_kit_dir(void **state)
{
	static const char *const bad_names[] = {"", ".", "..", "../../x@y.com", "a/b", "/etc"};
	char root[] = "/tmp/cfl-kitdir.XXXXXX", buf[PATH_MAX], link[PATH_MAX + 8];
	struct cfl_err e = {0};

	(void)state;
	assert_non_null(mkdtemp(root));
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		char want[PATH_MAX + 96];

		snprintf(want, sizeof(want),
		         "the kit folder '%s' would not be a folder inside '%s'", bad_names[i],
		         root);
		assert_int_equal(cfl__kit_dir(buf, root, bad_names[i], &e), CFL_ECONFIG);
		assert_string_equal(e.msg, want);
	}
	assert_int_equal(cfl__kit_dir(buf, root, "admin@x.org", &e), 0);
	snprintf(link, sizeof(link), "%s/admin@x.org", root);
	assert_string_equal(buf, link);
	/* A link planted where a kit goes would send its files elsewhere. */
	assert_int_equal(symlink("/tmp", link), 0);
	assert_int_equal(cfl__kit_dir(buf, root, "admin@x.org", &e), CFL_ECONFIG);
	assert_non_null(strstr(e.msg, "admin@x.org' already exists"));
	unlink(link);
	rmdir(root);
}

/* A kit made relative to the open output folder: its folders and files with their modes (a
 * key's 0600 whatever the umask), and a link planted where it goes is refused, nothing is
 * written through it. */
static void test_kit_write_at(void **state)
{
	char root[] = "/tmp/cfl-kitat.XXXXXX", other[] = "/tmp/cfl-kitat-other.XXXXXX";
	char path[PATH_MAX + 64], *secret = strdup("not a real key\n");
	struct cfl__kit_mem m = {.n = 0};
	struct cfl__kit_spec s = {.kit_dir = "kit-a", .name = "kit-a"};
	struct cfl_err e = {0};
	struct stat st;
	mode_t old = umask(077);

	(void)state;
	assert_non_null(secret);
	assert_non_null(mkdtemp(root));
	assert_non_null(mkdtemp(other));
	s.root_fd = open(root, O_RDONLY | O_DIRECTORY);
	assert_true(s.root_fd >= 0);
	assert_int_equal(cfl__kit_mem_add(&m, "startup/a.json", "{}\n", 3, 0644, NULL, &e), 0);
	assert_int_equal(cfl__kit_mem_add(&m, "startup/client.key", secret, strlen(secret), 0600,
	                                  secret, &e),
	                 0);
	m.wipe[1] = 1;
	assert_int_equal(cfl__kit_mem_write(&m, &s, &e), 0);
	snprintf(path, sizeof(path), "%s/kit-a/startup/a.json", root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	snprintf(path, sizeof(path), "%s/kit-a/startup/client.key", root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 15);
	snprintf(path, sizeof(path), "%s/kit-a/transfer", root);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* Made already (here by the same call): refused. */
	assert_int_equal(cfl__kit_mem_write(&m, &s, &e), CFL_ECONFIG);
	assert_non_null(strstr(e.msg, "the kit folder 'kit-a' already exists"));
	/* A link to another folder where the next kit goes. */
	s.kit_dir = s.name = "kit-b";
	snprintf(path, sizeof(path), "%s/kit-b", root);
	assert_int_equal(symlink(other, path), 0);
	assert_int_equal(cfl__kit_mem_write(&m, &s, &e), CFL_ECONFIG);
	snprintf(path, sizeof(path), "%s/startup", other);
	assert_int_equal(lstat(path, &st), -1);
	cfl__kit_mem_release(&m);
	umask(old);
	close(s.root_fd);
	assert_int_equal(cfl__fs_rmtree(root), 0);
	assert_int_equal(rmdir(other), 0);
}

static void test_quote(void **state)
{
	char buf[96], small[8], longv[200];

	(void)state;
	cfl__quote(buf, sizeof(buf),
	           "a\tb\x7f"
	           "c");
	assert_string_equal(buf, "a?b?c");
	cfl__quote(small, sizeof(small), "abcdefghij");
	assert_string_equal(small, "abcd...");
	memset(longv, 'x', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	cfl__quote(buf, sizeof(buf), longv);
	assert_int_equal(strlen(buf), 80);
	/* A cut never splits a UTF-8 sequence. */
	cfl__quote(small, sizeof(small), "abc\xc3\xa9xyz");
	assert_string_equal(small, "abc...");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_test25, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_multi_address, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_flare_builders, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_connect_to_map, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_long_server_name, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bad_fixtures, setup, teardown),
	        cmocka_unit_test(test_bad_table_complete),
	        cmocka_unit_test(test_kit_dir),
	        cmocka_unit_test(test_kit_write_at),
	        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
	        cmocka_unit_test(test_conn_sec_names),
	        cmocka_unit_test(test_missing_file),
	        cmocka_unit_test(test_size_limit),
	        cmocka_unit_test(test_participant_limit),
	        cmocka_unit_test(test_many_participants),
	        cmocka_unit_test(test_alias_bomb),
	        cmocka_unit_test(test_deep_nesting),
	        cmocka_unit_test_setup_teardown(test_warning_cap, setup, teardown),
	        cmocka_unit_test(test_message_quoting),
	        cmocka_unit_test_setup_teardown(test_prefixes, setup, teardown),
	        cmocka_unit_test(test_host_checks),
	        cmocka_unit_test(test_name_checks),
	        cmocka_unit_test(test_quote),
	        cmocka_unit_test(test_parallel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
