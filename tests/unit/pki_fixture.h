/* Shared fixture of the cfl/pki.h tests (test_pki_keys.c, test_pki_leaf.c, test_pki_check.c):
 * two CAs (P-256 and RSA) with their leaf keys and another project's CA, made once per run in a
 * temporary folder, files written into it, and the `openssl` command-line tool run on them (the
 * independent check of what the public API made).
 *
 * Everything is static inline so that each test program takes what it uses. */
#ifndef CFL_TEST_PKI_FIXTURE_H
#define CFL_TEST_PKI_FIXTURE_H

#include "cfl/err.h"
#include "cfl/pki.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DAY     ((time_t)86400)
#define OUT_MAX 8192

/* Built once per run: key generation (RSA above all) is the slow part. */
struct fixture {
	char dir[64];
	struct cfl_pki_key *ca_key[2], *leaf_key[2], *other_key;
	struct cfl_pki_cert *ca[2], *other_ca;
	time_t created; /* before the CAs were made */
};

static struct fixture fx;

static const char *const server_sans[] = {"localhost", "127.0.0.1", "::1"};

/* ---- helpers ---- */

static inline void path_of(char *buf, size_t size, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", fx.dir, name);

	assert_true(n > 0 && (size_t)n < size);
}

/* Runs a shell command (stderr folded into stdout) and returns its exit status. */
static int run(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static inline int run(char *out, size_t size, const char *fmt, ...)
{
	char cmd[2048];
	size_t used = 0;
	va_list ap;
	FILE *p;
	int n, status;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd) - 8, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(cmd) - 8);
	memcpy(cmd + n, " 2>&1", 6);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (used + 1 < size) {
		size_t got = fread(out + used, 1, size - 1 - used, p);

		if (got == 0)
			break;
		used += got;
	}
	out[used] = '\0';
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static inline void save_cert(const struct cfl_pki_cert *cert, const char *name)
{
	struct cfl_err e = {0};
	char path[256];

	path_of(path, sizeof(path), name);
	assert_int_equal(cfl_pki_cert_save(cert, path, &e), 0);
}

static inline void save_bytes(const char *name, const void *data, size_t len)
{
	char path[256];
	FILE *f;

	path_of(path, sizeof(path), name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static inline struct cfl_pki_cert_req leaf_req(const char *cn, enum cfl_pki_usage usage)
{
	struct cfl_pki_cert_req req = {0};

	req.cn = cn;
	req.org = "nvidia";
	req.usage = usage;
	req.days = 30;
	return req;
}

static inline struct cfl_pki_cert *issue(int t, const struct cfl_pki_key *subject,
                                         const struct cfl_pki_cert_req *req)
{
	struct cfl_pki_cert *cert = NULL;
	struct cfl_err e = {0};
	int rc = cfl_pki_cert_issue(fx.ca_key[t], fx.ca[t], subject, req, &cert, &e);

	if (rc != 0)
		fail_msg("issue '%s': %s", req->cn, e.msg);
	return cert;
}

static inline struct cfl_pki_cert *make_ca(const struct cfl_pki_key *key, const char *cn, int days)
{
	struct cfl_pki_cert_req req = {0};
	struct cfl_pki_cert *ca = NULL;
	struct cfl_err e = {0};

	req.cn = cn;
	req.org = "nvidia";
	req.usage = CFL_PKI_USAGE_CA;
	req.days = days;
	if (cfl_pki_ca_create(key, &req, &ca, &e) != 0)
		fail_msg("ca_create '%s': %s", cn, e.msg);
	return ca;
}

static inline mode_t file_mode(const char *name)
{
	char path[256];
	struct stat st;

	path_of(path, sizeof(path), name);
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

/* ---- the group setup and teardown ---- */

static inline int setup(void **state)
{
	static const enum cfl_key_type types[2] = {CFL_KEY_P256, CFL_KEY_RSA2048};
	struct cfl_err e = {0};

	(void)state;
	memcpy(fx.dir, "/tmp/cfl-test-pki-XXXXXX", sizeof("/tmp/cfl-test-pki-XXXXXX"));
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	fx.created = time(NULL);
	for (int t = 0; t < 2; t++) {
		if (cfl_pki_key_generate(types[t], &fx.ca_key[t], &e) != 0 ||
		    cfl_pki_key_generate(types[t], &fx.leaf_key[t], &e) != 0) {
			fprintf(stderr, "setup: %s\n", e.msg);
			return -1;
		}
		fx.ca[t] = make_ca(fx.ca_key[t], "example_project", 360);
	}
	if (cfl_pki_key_generate(CFL_KEY_P256, &fx.other_key, &e) != 0)
		return -1;
	fx.other_ca = make_ca(fx.other_key, "other_project", 360);
	return 0;
}

/* The directory is flat: every test writes its files straight into it. */
static inline void remove_dir(const char *dir)
{
	struct dirent *d;
	char path[512];
	DIR *dp = opendir(dir);

	if (dp == NULL)
		return;
	while ((d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		unlink(path);
	}
	closedir(dp);
	rmdir(dir);
}

static inline int teardown(void **state)
{
	(void)state;
	for (int t = 0; t < 2; t++) {
		cfl_pki_key_free(fx.ca_key[t]);
		cfl_pki_key_free(fx.leaf_key[t]);
		cfl_pki_cert_free(fx.ca[t]);
	}
	cfl_pki_key_free(fx.other_key);
	cfl_pki_cert_free(fx.other_ca);
	remove_dir(fx.dir);
	return 0;
}

#endif
