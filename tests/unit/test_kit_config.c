/* Unit tests for startup kits' config files (src/kit/kitcfg.c): fed_server.json,
 * fed_client.json and fed_admin.json read into a struct cfl_kitcfg (every field missing, of the
 * wrong type, out of range or too long, with its message; connection_security and secure_train;
 * paths joined under the kit's real folder; the 1 MiB bound). Kits are provisioned by the
 * library, or written here into a temp folder; the fixture is in kit_fixture.h. */
#define _DEFAULT_SOURCE /* realpath */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "kit_fixture.h"

/* --- provisioned kits ------------------------------------------------------------------------ */

static void expect_path(const char *got, const char *dir, const char *file)
{
	char want[PATH_MAX * 3];

	snprintf(want, sizeof(want), "%s/startup/%s", dir, file);
	assert_string_equal(got, want);
}

static void test_provisioned_kits(void **state)
{
	char dir[PATH_MAX], real[PATH_MAX], dotted[PATH_MAX + 16], want[PATH_MAX * 3];
	struct cfl_kitcfg c;
	struct cfl_err e = {0};

	(void)state;
	/* A path with "." and a trailing slash: kit_dir is the real folder. */
	snprintf(dotted, sizeof(dotted), "%s/./server1/", prod);
	assert_int_equal(cfl_kitcfg_load(dotted, SERVER, &c, &e), 0);
	path_join(dir, sizeof(dir), prod, "server1");
	assert_non_null(realpath(dir, real));
	assert_string_equal(c.kit_dir, real);
	assert_int_equal(c.is_server, 1);
	assert_string_equal(c.project, "kitp");
	assert_string_equal(c.name, "server1");
	assert_string_equal(c.identity, "server1");
	assert_int_equal(c.port, 8102);
	assert_int_equal(c.admin_port, 8103);
	assert_int_equal(c.secure_train, 1);
	assert_int_equal(c.mode, CFL_SEC_MTLS);
	expect_path(c.cert, real, "server.crt");
	expect_path(c.key, real, "server.key");
	expect_path(c.root_ca, real, "rootCA.pem");
	assert_string_equal(c.custom_ca, "");
	assert_ptr_equal(cfl_kitcfg_trust_file(&c), c.root_ca);
	assert_int_equal(cfl_kitcfg_verify_kit(&c, CFL_KIT_CHECK_SIGNED, &e), 0);

	path_join(dir, sizeof(dir), prod, "site-1");
	assert_int_equal(cfl_kitcfg_load(dir, CLIENT, &c, &e), 0);
	assert_int_equal(c.is_server, 0);
	assert_string_equal(c.project, "kitp");
	assert_string_equal(c.name, "site-1");
	assert_string_equal(c.identity, "server1");
	assert_string_equal(c.host, "localhost");
	assert_int_equal(c.port, 8102);
	assert_int_equal(c.mode, CFL_SEC_MTLS);
	expect_path(c.cert, c.kit_dir, "client.crt");
	expect_path(c.key, c.kit_dir, "client.key");
	assert_int_equal(cfl_kitcfg_verify_kit(&c, CFL_KIT_CHECK_SIGNED, &e), 0);

	path_join(dir, sizeof(dir), prod, "admin@test.org");
	assert_int_equal(cfl_kitcfg_load(dir, ADMIN, &c, &e), 0);
	assert_int_equal(c.is_server, 0);
	assert_string_equal(c.project, "kitp");
	assert_string_equal(c.name, "admin@test.org");
	assert_string_equal(c.identity, "server1");
	assert_string_equal(c.host, "localhost");
	assert_int_equal(c.port, 8103);
	expect_path(c.root_ca, c.kit_dir, "rootCA.pem");
	assert_int_equal(cfl_kitcfg_verify_kit(&c, CFL_KIT_CHECK_SIGNED, &e), 0);

	/* A kit of one role is not a kit of another. */
	path_join(dir, sizeof(dir), prod, "site-1");
	assert_int_equal(cfl_kitcfg_load(dir, SERVER, &c, &e), CFL_ENOENT);
	assert_non_null(realpath(dir, real));
	snprintf(want, sizeof(want), "'%s' is not a server kit: no '%s/startup/fed_server.json'",
	         dir, real);
	assert_string_equal(e.msg, want);
	assert_int_equal(cfl_kitcfg_load(dir, ADMIN, &c, &e), CFL_ENOENT);
	assert_non_null(strstr(e.msg, "is not an admin kit: no '"));
	path_join(dir, sizeof(dir), prod, "server1");
	assert_int_equal(cfl_kitcfg_load(dir, CLIENT, &c, &e), CFL_ENOENT);
	assert_non_null(strstr(e.msg, "is not a client kit: no '"));
}

/* --- the files themselves -------------------------------------------------------------------- */

static void test_unreadable_files(void **state)
{
	char dir[PATH_MAX], want[PATH_MAX * 3], path[PATH_MAX];
	struct cfl_kitcfg c;
	struct cfl_err e = {0};
	char *big;
	size_t cut;

	(void)state;
	assert_int_equal(cfl_kitcfg_load("/nonexistent/kit", CLIENT, &c, &e), CFL_ENOENT);
	assert_string_equal(e.msg, "cannot open kit '/nonexistent/kit': no such folder");
	assert_int_equal(cfl_kitcfg_load(prod, 3, &c, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "bad kit role");
	assert_int_equal(cfl_kitcfg_load(prod, -1, &c, &e), CFL_EINVAL);

	/* Not JSON, with the line of the error. */
	kit_text(dir, sizeof(dir), SERVER, "{\n  \"servers\": [\n}\n");
	assert_int_equal(cfl_kitcfg_load(dir, SERVER, &c, &e), CFL_ECONFIG);
	snprintf(want, sizeof(want), "'%s/startup/fed_server.json': line 3: ", dir);
	if (strncmp(e.msg, want, strlen(want)) != 0)
		fail_msg("'%s' does not start with '%s'", e.msg, want);
	/* Keys given twice. */
	kit_text(dir, sizeof(dir), CLIENT, "{\"client\": {}, \"client\": {}}");
	assert_int_equal(cfl_kitcfg_load(dir, CLIENT, &c, &e), CFL_ECONFIG);
	assert_non_null(strstr(e.msg, "duplicate object key"));
	/* JSON, but not an object. */
	kit_text(dir, sizeof(dir), ADMIN, "[1, 2]");
	assert_int_equal(cfl_kitcfg_load(dir, ADMIN, &c, &e), CFL_ECONFIG);
	snprintf(want, sizeof(want), "'%s/startup/fed_admin.json': not a JSON object", dir);
	assert_string_equal(e.msg, want);

	/* At most 1 MiB: the template padded with spaces to exactly that loads, one byte more
	 * does not. */
	big = malloc((1u << 20) + 2);
	assert_non_null(big);
	memset(big, ' ', (1u << 20) + 1);
	big[(1u << 20) + 1] = '\0';
	cut = strlen(templates[SERVER]);
	memcpy(big, templates[SERVER], cut);
	big[1u << 20] = '\0';
	kit_text(dir, sizeof(dir), SERVER, big);
	assert_int_equal(cfl_kitcfg_load(dir, SERVER, &c, &e), 0);
	big[1u << 20] = ' ';
	kit_text(dir, sizeof(dir), SERVER, big);
	free(big);
	assert_int_equal(cfl_kitcfg_load(dir, SERVER, &c, &e), CFL_ETOOBIG);
	path_join(path, sizeof(path), dir, "startup/fed_server.json");
	snprintf(want, sizeof(want), "cannot read '%s': larger than 1048576 bytes", path);
	assert_string_equal(e.msg, want);

	/* A folder where the file should be. */
	kit_text(dir, sizeof(dir), CLIENT, "{}");
	path_join(path, sizeof(path), dir, "startup/fed_server.json");
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(cfl_kitcfg_load(dir, SERVER, &c, &e), CFL_EIO);
	assert_non_null(strstr(e.msg, "not a regular file"));
}

/* --- fields ---------------------------------------------------------------------------------- */

static void test_server_fields(void **state)
{
	struct cfl_kitcfg c;

	(void)state;
	refused(SERVER, "servers", NULL, CFL_ECONFIG, "'servers' must hold one server");
	refused(SERVER, "servers", json_array(), CFL_ECONFIG, "'servers' must hold one server");
	refused(SERVER, "servers", json_pack("[i]", 1), CFL_ECONFIG,
	        "'servers' must hold one server");
	refused(SERVER, "servers.0.identity", NULL, CFL_ECONFIG,
	        "'servers[0].identity' is missing or not a string");
	refused(SERVER, "servers.0.identity", json_integer(7), CFL_ECONFIG,
	        "'servers[0].identity' is missing or not a string");
	refused(SERVER, "servers.0.identity", json_string(""), CFL_ECONFIG,
	        "'servers[0].identity' is missing or not a string");
	refused(SERVER, "servers.0.identity", str_of('s', 256), CFL_ECONFIG,
	        "'servers[0].identity' is too long");
	loaded(SERVER, "servers.0.identity", str_of('s', 255), &c);
	assert_int_equal(strlen(c.name), 255);

	refused(SERVER, "servers.0.fed_learn_port", json_string("8102"), CFL_ECONFIG,
	        "'fed_learn_port' must be a port 1..65535");
	refused(SERVER, "servers.0.fed_learn_port", json_integer(0), CFL_ECONFIG,
	        "'fed_learn_port' must be a port 1..65535");
	refused(SERVER, "servers.0.fed_learn_port", json_integer(65536), CFL_ECONFIG,
	        "'fed_learn_port' must be a port 1..65535");
	refused(SERVER, "servers.0.fed_learn_port", json_real(8102.0), CFL_ECONFIG,
	        "'fed_learn_port' must be a port 1..65535");
	refused(SERVER, "servers.0.admin_port", NULL, CFL_ECONFIG,
	        "'admin_port' must be a port 1..65535");
	loaded(SERVER, "servers.0.admin_port", json_integer(65535), &c);
	assert_int_equal(c.admin_port, 65535);

	refused(SERVER, "servers.0.ssl_cert", NULL, CFL_ECONFIG,
	        "'ssl_cert' is missing or not a string");
	refused(SERVER, "servers.0.ssl_private_key", json_true(), CFL_ECONFIG,
	        "'ssl_private_key' is missing or not a string");
	refused(SERVER, "servers.0.ssl_root_cert", json_string("../../other/rootCA.pem"),
	        CFL_ECONFIG, "'ssl_root_cert' must name a file in startup/");
	refused(SERVER, "servers.0.ssl_cert", json_string("/etc/ssl/server.crt"), CFL_ECONFIG,
	        "'ssl_cert' must name a file in startup/");
	refused(SERVER, "servers.0.ssl_cert", str_of('c', 256), CFL_ECONFIG,
	        "'ssl_cert' is too long");
	refused(SERVER, "servers.0.custom_ca_cert", json_string("a/b.pem"), CFL_ECONFIG,
	        "'custom_ca_cert' must name a file in startup/");
	refused(SERVER, "servers.0.connection_security", json_string("tlss"), CFL_ECONFIG,
	        "invalid connection_security (allowed: clear, tls, mtls)");
	refused(SERVER, "servers.0.connection_security", json_integer(2), CFL_ECONFIG,
	        "invalid connection_security (allowed: clear, tls, mtls)");
}

static void test_client_fields(void **state)
{
	struct cfl_kitcfg c;
	char host[300], why[400];

	(void)state;
	refused(CLIENT, "client", NULL, CFL_ECONFIG, "needs 'servers' and 'client'");
	refused(CLIENT, "servers", NULL, CFL_ECONFIG, "needs 'servers' and 'client'");
	refused(CLIENT, "client", json_string("site-1"), CFL_ECONFIG,
	        "needs 'servers' and 'client'");
	refused(CLIENT, "servers.0.identity", NULL, CFL_ECONFIG,
	        "'servers[0].identity' is missing or not a string");
	refused(CLIENT, "servers.0.service", NULL, CFL_ECONFIG,
	        "'servers[0].service.target' is missing or not a string");
	refused(CLIENT, "servers.0.service.target", json_string("localhost"), CFL_ECONFIG,
	        "target 'localhost' is not host:port");
	refused(CLIENT, "servers.0.service.target", json_string("localhost:0"), CFL_ECONFIG,
	        "bad target 'localhost:0'");
	refused(CLIENT, "servers.0.service.target", json_string("localhost:80x"), CFL_ECONFIG,
	        "bad target 'localhost:80x'");
	refused(CLIENT, "servers.0.service.target", json_string(":8102"), CFL_ECONFIG,
	        "bad target ':8102'");
	refused(CLIENT, "servers.0.service.target", json_string("localhost:65536"), CFL_ECONFIG,
	        "bad target 'localhost:65536'");
	/* Host names up to 255 bytes. */
	memset(host, 'h', 255);
	snprintf(host + 255, sizeof(host) - 255, ":1");
	loaded(CLIENT, "servers.0.service.target", json_string(host), &c);
	assert_int_equal(strlen(c.host), 255);
	assert_int_equal(c.port, 1);
	memset(host, 'h', 256);
	snprintf(host + 256, sizeof(host) - 256, ":1");
	snprintf(why, sizeof(why), "bad target '%s'", host);
	refused(CLIENT, "servers.0.service.target", json_string(host), CFL_ECONFIG, why);
	loaded(CLIENT, "servers.0.service.target", json_string("[::1]:8102"), &c);
	assert_string_equal(c.host, "::1");
	assert_int_equal(c.port, 8102);
	loaded(CLIENT, "servers.0.service.target", json_string("10.0.0.7:443"), &c);
	assert_string_equal(c.host, "10.0.0.7");
	assert_int_equal(c.port, 443);

	refused(CLIENT, "client.name", NULL, CFL_ECONFIG,
	        "'client.name' is missing or not a string");
	refused(CLIENT, "client.name", json_null(), CFL_ECONFIG,
	        "'client.name' is missing or not a string");
	refused(CLIENT, "client.ssl_cert", json_string("sub/client.crt"), CFL_ECONFIG,
	        "'ssl_cert' must name a file in startup/");
	refused(CLIENT, "client.ssl_root_cert", NULL, CFL_ECONFIG,
	        "'ssl_root_cert' is missing or not a string");
	refused(CLIENT, "client.connection_security", json_string(""), CFL_ECONFIG,
	        "invalid connection_security (allowed: clear, tls, mtls)");
	/* project_name is optional for sites: empty when absent. */
	loaded(CLIENT, "project_name", NULL, &c);
	assert_string_equal(c.project, "");
}

static void test_admin_fields(void **state)
{
	struct cfl_kitcfg c;

	(void)state;
	refused(ADMIN, "admin", NULL, CFL_ECONFIG, "needs 'admin'");
	refused(ADMIN, "admin", json_array(), CFL_ECONFIG, "needs 'admin'");
	refused(ADMIN, "admin.server_identity", NULL, CFL_ECONFIG,
	        "'admin.server_identity' is missing or not a string");
	refused(ADMIN, "admin.host", json_integer(1), CFL_ECONFIG,
	        "'admin.host' is missing or not a string");
	refused(ADMIN, "admin.port", json_string("8103"), CFL_ECONFIG,
	        "'admin.port' must be a port 1..65535");
	refused(ADMIN, "admin.port", json_integer(-1), CFL_ECONFIG,
	        "'admin.port' must be a port 1..65535");
	refused(ADMIN, "admin.username", NULL, CFL_ECONFIG,
	        "'admin.username' is missing or not a string");
	refused(ADMIN, "admin.project_name", NULL, CFL_ECONFIG,
	        "'admin.project_name' is missing or not a string");
	refused(ADMIN, "admin.project_name", str_of('p', 300), CFL_ECONFIG,
	        "'admin.project_name' is too long");
	refused(ADMIN, "admin.client_cert", NULL, CFL_ECONFIG,
	        "'client_cert' is missing or not a string");
	refused(ADMIN, "admin.client_key", json_string("./client.key"), CFL_ECONFIG,
	        "'client_key' must name a file in startup/");
	refused(ADMIN, "admin.ca_cert", json_string("a/b"), CFL_ECONFIG,
	        "'ca_cert' must name a file in startup/");
	refused(ADMIN, "admin.connection_security", json_string("none"), CFL_ECONFIG,
	        "invalid connection_security (allowed: clear, tls, mtls)");
	loaded(ADMIN, NULL, NULL, &c);
	assert_string_equal(c.project, "kitp");
	assert_string_equal(c.name, "admin@test.org");
	assert_string_equal(c.identity, "server1");
	assert_int_equal(c.port, 8103);
	expect_path(c.cert, c.kit_dir, "client.crt");
	expect_path(c.key, c.kit_dir, "client.key");
	expect_path(c.root_ca, c.kit_dir, "rootCA.pem");
}

/* connection_security when given, else secure_train: true (or absent) means mtls, false clear. */
static void test_connection_security(void **state)
{
	struct cfl_kitcfg c;
	char dir[PATH_MAX];
	json_t *root;
	char *text;
	struct cfl_err e = {0};

	(void)state;
	loaded(SERVER, "servers.0.connection_security", NULL, &c);
	assert_int_equal(c.secure_train, 1);
	assert_int_equal(c.mode, CFL_SEC_MTLS);
	loaded(SERVER, "secure_train", NULL, &c);
	assert_int_equal(c.secure_train, 1);
	assert_int_equal(c.mode, CFL_SEC_MTLS);
	loaded(CLIENT, "client.connection_security", json_string("TLS"), &c);
	assert_int_equal(c.mode, CFL_SEC_TLS);
	loaded(CLIENT, "client.connection_security", json_string("clear"), &c);
	assert_int_equal(c.mode, CFL_SEC_CLEAR);
	assert_int_equal(c.secure_train, 1);
	/* Only a JSON false turns secure_train off. */
	loaded(CLIENT, "secure_train", json_string("false"), &c);
	assert_int_equal(c.secure_train, 1);
	loaded(ADMIN, "secure_train", json_false(), &c);
	assert_int_equal(c.secure_train, 0);
	assert_int_equal(c.mode, CFL_SEC_MTLS); /* the explicit value still wins */

	/* secure_train false and no connection_security: clear. */
	root = json_loads(templates[CLIENT], 0, NULL);
	set_path(root, "secure_train", json_false());
	set_path(root, "client.connection_security", NULL);
	text = json_dumps(root, 0);
	kit_text(dir, sizeof(dir), CLIENT, text);
	free(text);
	json_decref(root);
	assert_int_equal(cfl_kitcfg_load(dir, CLIENT, &c, &e), 0);
	assert_int_equal(c.secure_train, 0);
	assert_int_equal(c.mode, CFL_SEC_CLEAR);

	/* A tls client trusts the custom CA when the kit has one; mtls always the root CA. */
	loaded(CLIENT, "client.custom_ca_cert", json_string("customRootCA.pem"), &c);
	expect_path(c.custom_ca, c.kit_dir, "customRootCA.pem");
	assert_ptr_equal(cfl_kitcfg_trust_file(&c), c.root_ca);
	c.mode = CFL_SEC_TLS;
	assert_ptr_equal(cfl_kitcfg_trust_file(&c), c.custom_ca);
	loaded(CLIENT, "client.connection_security", json_string("tls"), &c);
	assert_ptr_equal(cfl_kitcfg_trust_file(&c), c.root_ca);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_provisioned_kits), cmocka_unit_test(test_unreadable_files),
	        cmocka_unit_test(test_server_fields),    cmocka_unit_test(test_client_fields),
	        cmocka_unit_test(test_admin_fields),     cmocka_unit_test(test_connection_security),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
