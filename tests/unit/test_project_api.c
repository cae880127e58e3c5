/* Unit tests for the project-file loader's API (src/provision/project*.c): defaults, the
 * resolution helpers, the bounds against hostile input (size, participants, aliases, nesting,
 * warnings), loading in parallel, the CN rule and name checks, and the kit folder check of
 * provisioning. The fixture is in project_fixture.h. */
#define _DEFAULT_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "project_fixture.h"
#include "util/fs.h"

#include <fcntl.h>
#include <sys/stat.h>

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
