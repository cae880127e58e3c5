/* Unit tests for the project-file loader (src/provision/project*.c): the two examples of
 * NVFlare's communication-security guide, an NVFlare-style builders list, cfl's own keys, and
 * every bad fixture in tests/data/bad/ (one per rule, with the exact line:col of the offending
 * node). The fixture is in project_fixture.h. */
#define _DEFAULT_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "project_fixture.h"

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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
