/* Unit tests for what a project file brings beyond its own text: `include:` of other YAML
 * files (src/provision/project_include.c) at the top level, inside a participant, as a list,
 * nested from a subfolder; the refusals (a path or a symbolic link leaving the folder, a
 * cycle, too deep, a repeated key, a list where a mapping belongs, from memory) and the file
 * and line every message names; and cfl's `cert_validity_days` as provisioning uses it. */
#define _DEFAULT_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cfl/pki.h"
#include "cfl/project.h"
#include "msg_fixture.h"

#include <sys/stat.h>
#include <time.h>

#define DAY ((time_t)24 * 3600)

static char proj_dir[256]; /* <tmp>/proj: the project file's folder */

/* Writes <proj>/name (folders made as needed). */
static void put(const char *name, const char *text)
{
	char path[PATH_MAX], *slash;
	struct cfl_err e = {0};

	path_join(path, sizeof(path), proj_dir, name);
	slash = strrchr(path, '/');
	*slash = '\0';
	assert_int_equal(cfl__fs_mkdirs(path, 0700, &e), 0);
	*slash = '/';
	write_text(path, text);
}

/* Loads <proj>/name; returns the code, with the project in *p or the message in e. */
static int load(const char *name, struct cfl_project **p, struct cfl_err *e)
{
	char path[PATH_MAX];

	return cfl_project_load(path_join(path, sizeof(path), proj_dir, name), p, e);
}

static struct cfl_project *load_ok(const char *name)
{
	struct cfl_project *p = NULL;
	struct cfl_err e = {0};

	if (load(name, &p, &e) != 0)
		fail_msg("%s: %s", name, e.msg);
	return p;
}

/* Loads a project that must be refused; the message must hold `want` and (unless NULL) the
 * location `at` ("FILE:LINE:COL", FILE relative to the project folder). */
static void refused(const char *name, const char *at, const char *want)
{
	struct cfl_project *p = NULL;
	struct cfl_err e = {0};
	char where[512];

	assert_int_equal(load(name, &p, &e), CFL_ECONFIG);
	assert_null(p);
	if (strstr(e.msg, want) == NULL)
		fail_msg("'%s' not in '%s'", want, e.msg);
	if (at == NULL)
		return;
	snprintf(where, sizeof(where), "%s/%s: ", proj_dir, at);
	if (strncmp(e.msg, where, strlen(where)) != 0)
		fail_msg("'%s' does not start with '%s'", e.msg, where);
}

static const char server_yml[] = "name: server.example.com\ntype: server\norg: o\n";

/* ---- merging ----------------------------------------------------------------------- */

static void test_top_level(void **state)
{
	struct cfl_project *p;

	(void)state;
	put("common.yml", "api_version: 3\nname: incl\nconnection_security: tls\n");
	put("top.yml", "include: common.yml\nparticipants:\n  - name: server.example.com\n"
	               "    type: server\n    org: o\n");
	p = load_ok("top.yml");
	assert_string_equal(p->name, "incl");
	assert_int_equal(p->conn_sec, CFL_SEC_TLS);
	assert_int_equal(p->n_parts, 1);
	cfl_project_free(p);
}

static void test_in_participant(void **state)
{
	struct cfl_project *p;

	(void)state;
	put("server.yml", server_yml);
	put("site-common.yml", "type: client\norg: hospital\n");
	put("part.yml", "api_version: 3\nname: incl\nparticipants:\n  - include: server.yml\n"
	                "  - name: site-1\n    include: site-common.yml\n"
	                "  - name: site-2\n    include: site-common.yml\n");
	p = load_ok("part.yml");
	assert_int_equal(p->n_parts, 3);
	assert_string_equal(p->parts[0].name, "server.example.com");
	assert_int_equal(p->parts[0].type, CFL_PT_SERVER);
	assert_string_equal(p->parts[1].name, "site-1");
	assert_string_equal(p->parts[1].org, "hospital");
	assert_int_equal(p->parts[2].type, CFL_PT_CLIENT);
	cfl_project_free(p);
}

static void test_list_and_nested(void **state)
{
	struct cfl_project *p;

	(void)state;
	put("a.yml", "api_version: 3\n");
	put("b.yml", "name: incl\n");
	/* sub/all.yml's include is relative to sub/, not to the project file. */
	put("sub/site.yml", "name: site-9\ntype: client\norg: o\n");
	put("sub/all.yml", "participants:\n  - include: ../server.yml\n  - include: site.yml\n");
	put("server.yml", server_yml);
	put("list.yml", "include: [a.yml, b.yml, sub/all.yml]\ndescription: three files\n");
	p = load_ok("list.yml");
	assert_string_equal(p->name, "incl");
	assert_string_equal(p->description, "three files");
	assert_int_equal(p->n_parts, 2);
	assert_string_equal(p->parts[1].name, "site-9");
	cfl_project_free(p);
	/* An empty list and an empty file add nothing. */
	put("empty.yml", "");
	put("none.yml",
	    "include: []\napi_version: 3\nname: n\nparticipants:\n  - include: empty.yml\n"
	    "    name: server.example.com\n    type: server\n    org: o\n");
	p = load_ok("none.yml");
	assert_int_equal(p->n_parts, 1);
	cfl_project_free(p);
}

/* ---- refusals ---------------------------------------------------------------------- */

static void test_traversal(void **state)
{
	char outside[PATH_MAX], link[PATH_MAX];

	(void)state;
	write_text(path_join(outside, sizeof(outside), tmp_dir, "outside.yml"), "name: x\n");
	put("trav.yml", "api_version: 3\ninclude: ../outside.yml\n");
	refused("trav.yml", "trav.yml:2:10", "include path escapes root");
	/* An absolute path outside is the same; one inside is fine (checked after realpath). */
	put("abs.yml", "api_version: 3\ninclude: /etc/passwd\n");
	refused("abs.yml", "abs.yml:2:10", "include path escapes root");
	/* A symbolic link inside the folder that points out of it. */
	path_join(link, sizeof(link), proj_dir, "link.yml");
	assert_int_equal(symlink(outside, link), 0);
	put("sym.yml", "api_version: 3\nparticipants:\n  - include: link.yml\n");
	refused("sym.yml", "sym.yml:3:14", "include path escapes root");
	/* A "sub/../" that stays inside is fine to resolve (and then refused for other reasons). */
	put("sub/x.yml", "- a\n");
	put("inside.yml", "include: sub/../sub/x.yml\n");
	refused("inside.yml", "inside.yml:1:10", "the file holds a list, not a mapping");
}

static void test_cycle(void **state)
{
	char want[1024];

	(void)state;
	put("cyc-a.yml", "api_version: 3\ninclude: cyc-b.yml\n");
	put("cyc-b.yml", "name: x\ninclude: cyc-a.yml\n");
	snprintf(want, sizeof(want), "include cycle: %s/cyc-a.yml -> %s/cyc-b.yml -> %s/cyc-a.yml",
	         proj_dir, proj_dir, proj_dir);
	/* The message names the file that closes the cycle, and its line. */
	refused("cyc-a.yml", "cyc-b.yml:2:10", want);
	put("self.yml", "include: [self.yml]\n");
	refused("self.yml", "self.yml:1:11", "include cycle: ");
}

static void test_bounds(void **state)
{
	char name[32], text[64];

	(void)state;
	/* deep-0 includes deep-1 ... deep-9: ten levels, the limit is 8. */
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "deep-%d.yml", i);
		snprintf(text, sizeof(text), "include: deep-%d.yml\n", i + 1);
		put(name, text);
	}
	put("deep-10.yml", "a: 1\n");
	refused("deep-0.yml", "deep-8.yml:1:10", "includes nested more than 8 deep");
	/* The same file many times over is bounded by the number of files. */
	put("leaf.yml", "");
	put("many.yml", "include: [leaf.yml, leaf.yml, leaf.yml, leaf.yml, leaf.yml, leaf.yml, "
	                "leaf.yml, leaf.yml]\n");
	put("wide.yml", "include: [many.yml, many.yml, many.yml, many.yml, many.yml, many.yml, "
	                "many.yml, many.yml, many.yml]\n");
	refused("wide.yml", "many.yml:1:11", "more than 64 included files");
}

static void test_bad_values(void **state)
{
	(void)state;
	put("missing.yml", "api_version: 3\n\ninclude: nope.yml\n");
	refused("missing.yml", "missing.yml:3:10", "include 'nope.yml': cannot open");
	put("map.yml", "include: {a: b}\n");
	refused("map.yml", "map.yml:1:10", "must be a file name or a list of file names");
	put("null.yml", "include:\n");
	refused("null.yml", "null.yml:1:9", "not nothing");
	put("nested-list.yml", "include: [[a.yml]]\n");
	refused("nested-list.yml", "nested-list.yml:1:11", "not a list");
	/* A syntax error in the included file: named with its own line, after the includer's. */
	put("syn.yml", "a: [\n");
	put("use-syn.yml", "api_version: 3\ninclude: syn.yml\n");
	{
		struct cfl_project *p = NULL;
		struct cfl_err e = {0};
		char want[1024];

		assert_int_equal(load("use-syn.yml", &p, &e), CFL_EPARSE);
		snprintf(want, sizeof(want),
		         "%s/use-syn.yml:2:10: include 'syn.yml': %s/syn.yml:2:", proj_dir,
		         proj_dir);
		if (strncmp(e.msg, want, strlen(want)) != 0)
			fail_msg("'%s' does not start with '%s'", e.msg, want);
	}
}

static void test_duplicates(void **state)
{
	(void)state;
	put("name.yml", "name: from-include\n");
	put("dup.yml", "api_version: 3\nname: mine\ninclude: name.yml\n");
	refused("dup.yml", "name.yml:1:1", "key 'name' is given twice in one mapping");
	put("dup2.yml", "api_version: 3\ninclude: [name.yml, name.yml]\n");
	refused("dup2.yml", "name.yml:1:1", "given twice");
	put("site-common.yml", "type: client\norg: hospital\n");
	put("dup3.yml", "participants:\n  - include: site-common.yml\n    org: other\n");
	refused("dup3.yml", "dup3.yml:3:5", "key 'org' is given twice");
}

/* Rules broken inside an included file are reported at that file's own line. */
static void test_error_location(void **state)
{
	(void)state;
	put("badport.yml", "name: server.example.com\ntype: server\norg: o\n"
	                   "fed_learn_port: 99999\n");
	put("useport.yml", "api_version: 3\nname: x\nparticipants:\n  - include: badport.yml\n");
	refused("useport.yml", "badport.yml:4:17", "participant 'server.example.com'");
}

static void test_from_memory(void **state)
{
	static const char text[] = "api_version: 3\ninclude: a.yml\n";
	struct cfl_project *p = NULL;
	struct cfl_err e = {0};

	(void)state;
	assert_int_equal(cfl_project_load_mem(text, strlen(text), "mem.yml", &p, &e), CFL_ECONFIG);
	assert_string_equal(e.msg, "mem.yml:2:1: 'include' needs the project file's folder to find "
	                           "the file (this project was given from memory)");
}

/* ---- cert_validity_days ------------------------------------------------------------ */

static time_t leaf_days(const char *prod, const char *who)
{
	char path[PATH_MAX];
	struct cfl_pki_cert *cert = NULL;
	struct cfl_err e = {0};
	time_t nb, na;

	snprintf(path, sizeof(path), "%s/%s/startup/client.crt", prod, who);
	if (cfl_pki_cert_load(path, &cert, &e) != 0)
		fail_msg("%s", e.msg);
	assert_int_equal(cfl_pki_cert_validity(cert, &nb, &na), 0);
	cfl_pki_cert_free(cert);
	return (na - nb + DAY / 2) / DAY;
}

static void test_cert_validity_days(void **state)
{
	static const char base[] =
	        "api_version: 3\nname: days%s\n%s"
	        "participants:\n  - {name: s.example.com, type: server, org: o}\n"
	        "  - {name: site-1, type: client, org: o}\n";
	char yml[512], prod[PATH_MAX];
	struct cfl_project p = {0};

	(void)state;
	snprintf(yml, sizeof(yml), base, "30", "cert_validity_days: 30\n");
	assert_int_equal(provision("days30", yml, prod, sizeof(prod)), 0);
	assert_int_equal(leaf_days(prod, "site-1"), 30);
	snprintf(yml, sizeof(yml), base, "def", "");
	assert_int_equal(provision("daysdef", yml, prod, sizeof(prod)), 0);
	assert_int_equal(leaf_days(prod, "site-1"), 360);
	/* A project built in memory without the field gets the default too. */
	assert_int_equal(cfl_project_cert_days(&p), CFL_PROJECT_DEFAULT_CERT_DAYS);
	p.cert_validity_days = 7;
	assert_int_equal(cfl_project_cert_days(&p), 7);
}

/* ---- main -------------------------------------------------------------------------- */

static int setup(void **state)
{
	struct cfl_err e = {0};

	(void)state;
	cfl_log_set_level(CFL_LOG_ERROR);
	if (tmp_make("test-project-files") != 0)
		return -1;
	snprintf(proj_dir, sizeof(proj_dir), "%.200s/proj", tmp_dir);
	return cfl__fs_mkdirs(proj_dir, 0700, &e) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	tmp_remove();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_top_level),
	        cmocka_unit_test(test_in_participant),
	        cmocka_unit_test(test_list_and_nested),
	        cmocka_unit_test(test_traversal),
	        cmocka_unit_test(test_cycle),
	        cmocka_unit_test(test_bounds),
	        cmocka_unit_test(test_bad_values),
	        cmocka_unit_test(test_duplicates),
	        cmocka_unit_test(test_error_location),
	        cmocka_unit_test(test_from_memory),
	        cmocka_unit_test(test_cert_validity_days),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
