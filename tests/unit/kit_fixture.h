/* Shared fixture of the startup kit tests (test_kit_config.c, test_kit_sign.c; src/kit/): two
 * projects provisioned by the library with their root CA keys, paths into their kits, and kit
 * config files written here from templates with one field changed.
 *
 * Everything is static inline so that each test program takes what it uses. */
#ifndef CFL_TEST_KIT_FIXTURE_H
#define CFL_TEST_KIT_FIXTURE_H

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
static inline const char *kit(char *buf, size_t size, const char *base, const char *who,
                              const char *file)
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
static inline void set_path(json_t *root, const char *path, json_t *val)
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
static inline const char *kit_text(char *dir, size_t size, int role, const char *text)
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
static inline const char *kit_with(char *dir, size_t size, int role, const char *path, json_t *val)
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
static inline void refused(int role, const char *path, json_t *val, int code, const char *why)
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
static inline void loaded(int role, const char *path, json_t *val, struct cfl_kitcfg *cfg)
{
	char dir[PATH_MAX];
	struct cfl_err e = {0};

	kit_with(dir, sizeof(dir), role, path, val);
	if (cfl_kitcfg_load(dir, role, cfg, &e) != 0)
		fail_msg("%s: %s", path ? path : "template", e.msg);
}

static inline json_t *str_of(char c, size_t n)
{
	char buf[1024];

	assert_true(n < sizeof(buf));
	memset(buf, c, n);
	buf[n] = '\0';
	return json_string(buf);
}

/* --- the group setup and teardown ---------------------------------------------------------- */

static inline int load_ca_key(const char *prod_dir, struct cfl_pki_key **out)
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

static inline int setup(void **state)
{
	(void)state;
	cfl_log_set_level(CFL_LOG_ERROR);
	if (tmp_make("test-kit") != 0 || provision("kitp", kitp_yml, prod, sizeof(prod)) != 0 ||
	    provision("otherp", otherp_yml, other_prod, sizeof(other_prod)) != 0 ||
	    load_ca_key(prod, &ca_key) != 0 || load_ca_key(other_prod, &other_ca_key) != 0)
		return -1;
	return 0;
}

static inline int teardown(void **state)
{
	(void)state;
	cfl_pki_key_free(ca_key);
	cfl_pki_key_free(other_ca_key);
	tmp_remove();
	return 0;
}

#endif
