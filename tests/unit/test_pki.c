/* Unit tests for cfl/pki.h: keys, the root CA, leaf certificates, verification, signatures
 * and base64. Certificates are checked through the public API and, independently, through the
 * `openssl` command-line tool. */
#include "cfl/err.h"
#include "cfl/pki.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

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

static void path_of(char *buf, size_t size, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", fx.dir, name);

	assert_true(n > 0 && (size_t)n < size);
}

/* Runs a shell command (stderr folded into stdout) and returns its exit status. */
static int run(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int run(char *out, size_t size, const char *fmt, ...)
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

static void save_cert(const struct cfl_pki_cert *cert, const char *name)
{
	struct cfl_err e = {0};
	char path[256];

	path_of(path, sizeof(path), name);
	assert_int_equal(cfl_pki_cert_save(cert, path, &e), 0);
}

static void save_bytes(const char *name, const void *data, size_t len)
{
	char path[256];
	FILE *f;

	path_of(path, sizeof(path), name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static struct cfl_pki_cert_req leaf_req(const char *cn, enum cfl_pki_usage usage)
{
	struct cfl_pki_cert_req req = {0};

	req.cn = cn;
	req.org = "nvidia";
	req.usage = usage;
	req.days = 30;
	return req;
}

static struct cfl_pki_cert *issue(int t, const struct cfl_pki_key *subject,
                                  const struct cfl_pki_cert_req *req)
{
	struct cfl_pki_cert *cert = NULL;
	struct cfl_err e = {0};
	int rc = cfl_pki_cert_issue(fx.ca_key[t], fx.ca[t], subject, req, &cert, &e);

	if (rc != 0)
		fail_msg("issue '%s': %s", req->cn, e.msg);
	return cert;
}

static struct cfl_pki_cert *make_ca(const struct cfl_pki_key *key, const char *cn, int days)
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

static mode_t file_mode(const char *name)
{
	char path[256];
	struct stat st;

	path_of(path, sizeof(path), name);
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

/* ---- fixture ---- */

static int setup(void **state)
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
static void remove_dir(const char *dir)
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

static int teardown(void **state)
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

/* ---- keys ---- */

static void test_key_type_names(void **state)
{
	enum cfl_key_type t = CFL_KEY_RSA2048;

	(void)state;
	assert_int_equal(cfl_pki_key_type_parse("ECDSA-P256", &t), 0);
	assert_int_equal(t, CFL_KEY_P256);
	assert_int_equal(cfl_pki_key_type_parse("Rsa", &t), 0);
	assert_int_equal(t, CFL_KEY_RSA2048);
	assert_int_equal(cfl_pki_key_type_parse("p256", &t), 0);
	assert_int_equal(cfl_pki_key_type_parse("rsa-2048", &t), 0);
	assert_int_equal(cfl_pki_key_type_parse("rsa-4096", &t), CFL_EINVAL);
	assert_int_equal(cfl_pki_key_type_parse("", &t), CFL_EINVAL);
	assert_string_equal(cfl_pki_key_type_name(CFL_KEY_P256), "ecdsa-p256");
	assert_string_equal(cfl_pki_key_type_name(CFL_KEY_RSA2048), "rsa-2048");
}

static void check_key_roundtrip(enum cfl_key_type type, const char *name, const char *want)
{
	struct cfl_pki_key *key = NULL, *back = NULL;
	struct cfl_pki_cert *ca;
	struct cfl_err e = {0};
	char path[256], out[OUT_MAX];

	assert_int_equal(cfl_pki_key_generate(type, &key, &e), 0);
	path_of(path, sizeof(path), name);
	/* A pre-existing, world-readable file must end up 0600 too. */
	save_bytes(name, "x", 1);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(cfl_pki_key_save(key, path, &e), 0);
	assert_int_equal(file_mode(name), 0600);
	assert_int_equal(run(out, sizeof(out), "head -1 '%s'", path), 0);
	assert_string_equal(out, "-----BEGIN PRIVATE KEY-----\n");
	assert_int_equal(run(out, sizeof(out), "openssl pkey -noout -text -in '%s'", path), 0);
	assert_non_null(strstr(out, want));
	/* The file holds what OpenSSL's own encoder writes, byte for byte (P-256 keys are
	 * encoded by cfl itself, key.c). */
	assert_int_equal(run(out, sizeof(out), "openssl pkey -in '%s' | cmp - '%s'", path, path),
	                 0);

	assert_int_equal(cfl_pki_key_load(path, &back, &e), 0);
	ca = make_ca(key, "roundtrip", 10);
	assert_true(cfl_pki_cert_matches_key(ca, back));
	assert_false(cfl_pki_cert_matches_key(ca, fx.other_key));
	cfl_pki_cert_free(ca);
	cfl_pki_key_free(back);
	cfl_pki_key_free(key);
}

static void test_key_generate_p256(void **state)
{
	(void)state;
	check_key_roundtrip(CFL_KEY_P256, "p256.key", "ASN1 OID: prime256v1");
}

static void test_key_generate_rsa(void **state)
{
	(void)state;
	check_key_roundtrip(CFL_KEY_RSA2048, "rsa.key", "Private-Key: (2048 bit");
}

static void test_key_load_formats(void **state)
{
	struct cfl_pki_key *key = NULL;
	struct cfl_err e = {0};
	char path[256], out[OUT_MAX];

	(void)state;
	/* NVFlare writes "TraditionalOpenSSL" keys; those load too. */
	path_of(path, sizeof(path), "trad.key");
	assert_int_equal(run(out, sizeof(out),
	                     "openssl ecparam -name prime256v1 -genkey -noout -out '%s'", path),
	                 0);
	assert_int_equal(run(out, sizeof(out), "head -1 '%s'", path), 0);
	assert_string_equal(out, "-----BEGIN EC PRIVATE KEY-----\n");
	assert_int_equal(cfl_pki_key_load(path, &key, &e), 0);
	cfl_pki_key_free(key);
	key = NULL;

	path_of(path, sizeof(path), "ed25519.key");
	assert_int_equal(
	        run(out, sizeof(out), "openssl genpkey -algorithm ed25519 -out '%s'", path), 0);
	assert_int_equal(cfl_pki_key_load(path, &key, &e), CFL_EUNSUPP);
	assert_non_null(strstr(e.msg, "unsupported key type"));
	assert_null(key);

	path_of(path, sizeof(path), "p384.key");
	assert_int_equal(run(out, sizeof(out),
	                     "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 "
	                     "-out '%s'",
	                     path),
	                 0);
	assert_int_equal(cfl_pki_key_load(path, &key, &e), CFL_EUNSUPP);

	/* An encrypted key fails at once instead of prompting for a passphrase. */
	path_of(path, sizeof(path), "enc.key");
	assert_int_equal(run(out, sizeof(out),
	                     "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
	                     "-aes256 -pass pass:secret -out '%s'",
	                     path),
	                 0);
	assert_int_equal(cfl_pki_key_load(path, &key, &e), CFL_EPARSE);
	assert_non_null(strstr(e.msg, "cannot load key"));
}

static void test_key_load_errors(void **state)
{
	struct cfl_pki_key *key = NULL;
	struct cfl_err e = {0};
	char path[256];

	(void)state;
	path_of(path, sizeof(path), "missing.key");
	assert_int_equal(cfl_pki_key_load(path, &key, &e), CFL_ENOENT);
	assert_non_null(strstr(e.msg, "missing.key"));

	save_cert(fx.ca[0], "not-a-key.pem");
	path_of(path, sizeof(path), "not-a-key.pem");
	assert_int_equal(cfl_pki_key_load(path, &key, &e), CFL_EPARSE);
	assert_non_null(strstr(e.msg, "cannot load key '"));
	assert_non_null(strstr(e.msg, "not-a-key.pem': "));
	assert_null(key);
}

/* ---- the root CA ---- */

static void check_ca(int t, const char *sigalg)
{
	struct cfl_pki_cert *back = NULL;
	struct cfl_err e = {0};
	char path[256], out[OUT_MAX], buf[128], *pem1 = NULL, *pem2 = NULL;
	size_t len1 = 0, len2 = 0;
	time_t nb, na, now = time(NULL);
	const char *hex;

	save_cert(fx.ca[t], "ca.pem");
	assert_int_equal(file_mode("ca.pem"), 0644);
	path_of(path, sizeof(path), "ca.pem");
	assert_int_equal(cfl_pki_cert_load(path, &back, &e), 0);
	assert_int_equal(cfl_pki_cert_to_pem(fx.ca[t], &pem1, &len1, &e), 0);
	assert_int_equal(cfl_pki_cert_to_pem(back, &pem2, &len2, &e), 0);
	assert_int_equal(len1, strlen(pem1));
	assert_string_equal(pem1, pem2);
	assert_int_equal(strncmp(pem1, "-----BEGIN CERTIFICATE-----\n", 28), 0);
	assert_true(cfl_pki_cert_matches_key(back, fx.ca_key[t]));

	assert_int_equal(cfl_pki_cert_cn(back, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "example_project");
	assert_int_equal(cfl_pki_cert_org(back, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "nvidia");
	assert_int_equal(cfl_pki_cert_role(back, buf, sizeof(buf)), CFL_ENOENT);
	assert_int_equal(cfl_pki_cert_validity(back, &nb, &na), 0);
	assert_true(nb <= now && nb >= fx.created - 1);
	assert_int_equal(na - nb, 360 * DAY);
	assert_int_equal(cfl_pki_cert_verify(back, back, 0, &e), 0);

	assert_int_equal(run(out, sizeof(out), "openssl verify -CAfile '%s' '%s'", path, path), 0);
	assert_int_equal(run(out, sizeof(out),
	                     "openssl x509 -noout -ext basicConstraints,keyUsage,"
	                     "subjectKeyIdentifier -in '%s'",
	                     path),
	                 0);
	assert_non_null(strstr(out, "X509v3 Basic Constraints: critical\n"));
	assert_non_null(strstr(out, "CA:TRUE"));
	assert_non_null(strstr(out, "X509v3 Key Usage: critical\n"));
	assert_non_null(strstr(out, "Certificate Sign, CRL Sign\n"));
	assert_non_null(strstr(out, "X509v3 Subject Key Identifier"));
	assert_int_equal(run(out, sizeof(out), "openssl x509 -noout -text -in '%s'", path), 0);
	assert_non_null(strstr(out, "Version: 3 (0x2)"));
	assert_non_null(strstr(out, sigalg));
	assert_non_null(strstr(out, "Subject: CN = example_project, O = nvidia\n"));
	assert_non_null(strstr(out, "Issuer: CN = example_project, O = nvidia\n"));

	/* Serial: positive, at most 20 octets (RFC 5280 §4.1.2.2), not zero. */
	assert_int_equal(run(out, sizeof(out), "openssl x509 -noout -serial -in '%s'", path), 0);
	assert_int_equal(strncmp(out, "serial=", 7), 0);
	hex = out + 7;
	assert_true(strlen(hex) <= 41 && strlen(hex) > 1);
	assert_true(strlen(hex) < 41 || strchr("01234567", hex[0]) != NULL);
	assert_true(strspn(hex, "0\n") < strlen(hex));

	free(pem1);
	free(pem2);
	cfl_pki_cert_free(back);
}

static void test_ca_p256(void **state)
{
	(void)state;
	check_ca(0, "Signature Algorithm: ecdsa-with-SHA256");
}

static void test_ca_rsa(void **state)
{
	(void)state;
	check_ca(1, "Signature Algorithm: sha256WithRSAEncryption");
}

static void test_ca_serials_differ(void **state)
{
	struct cfl_pki_cert *a = make_ca(fx.other_key, "x", 1), *b = make_ca(fx.other_key, "x", 1);
	char out_a[256], out_b[256], path[256];

	(void)state;
	save_cert(a, "serial-a.pem");
	save_cert(b, "serial-b.pem");
	path_of(path, sizeof(path), "serial-a.pem");
	assert_int_equal(run(out_a, sizeof(out_a), "openssl x509 -noout -serial -in '%s'", path),
	                 0);
	path_of(path, sizeof(path), "serial-b.pem");
	assert_int_equal(run(out_b, sizeof(out_b), "openssl x509 -noout -serial -in '%s'", path),
	                 0);
	assert_string_not_equal(out_a, out_b);
	cfl_pki_cert_free(a);
	cfl_pki_cert_free(b);
}

/* ---- leaf certificates ---- */

/* The last line of `openssl x509 -ext subjectKeyIdentifier` output: the key id in hex. */
static void key_id(const char *file, char *id, size_t size)
{
	char path[256], out[OUT_MAX], *p;

	path_of(path, sizeof(path), file);
	assert_int_equal(run(out, sizeof(out),
	                     "openssl x509 -noout -ext subjectKeyIdentifier "
	                     "-in '%s' | tail -1 | tr -d ' \\n'",
	                     path),
	                 0);
	p = out;
	assert_true(strlen(p) >= 20 && strlen(p) < size);
	memcpy(id, p, strlen(p) + 1);
}

static void check_server_leaf(int t)
{
	struct cfl_pki_cert_req req = leaf_req("server.example.com", CFL_PKI_USAGE_SERVER);
	struct cfl_pki_cert *leaf;
	struct cfl_err e = {0};
	char ca[256], lp[256], out[OUT_MAX], buf[128], ski[128];

	req.sans = server_sans;
	req.n_sans = 3;
	leaf = issue(t, fx.leaf_key[t], &req);
	assert_int_equal(cfl_pki_cert_verify(fx.ca[t], leaf, 0, &e), 0);
	assert_true(cfl_pki_cert_matches_key(leaf, fx.leaf_key[t]));
	assert_false(cfl_pki_cert_matches_key(leaf, fx.ca_key[t]));
	assert_int_equal(cfl_pki_cert_cn(leaf, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "server.example.com");
	assert_int_equal(cfl_pki_cert_role(leaf, buf, sizeof(buf)), CFL_ENOENT);

	save_cert(fx.ca[t], "ca.pem");
	save_cert(leaf, "leaf.pem");
	path_of(ca, sizeof(ca), "ca.pem");
	path_of(lp, sizeof(lp), "leaf.pem");
	assert_int_equal(run(out, sizeof(out), "openssl verify -CAfile '%s' '%s'", ca, lp), 0);
	assert_non_null(strstr(out, "leaf.pem: OK"));
	assert_int_equal(run(out, sizeof(out),
	                     "openssl x509 -noout -ext subjectAltName,extendedKeyUsage,"
	                     "basicConstraints,keyUsage -in '%s'",
	                     lp),
	                 0);
	assert_non_null(
	        strstr(out, "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1\n"));
	/* serverAuth alone: a server's certificate is no client's. */
	assert_non_null(strstr(out, "TLS Web Server Authentication\n"));
	assert_null(strstr(out, "Client Authentication"));
	assert_non_null(strstr(out, "CA:FALSE"));
	assert_non_null(strstr(out, "X509v3 Key Usage: critical\n"));
	/* keyEncipherment is for RSA key transport only (RFC 5480 §3). */
	if (t == 1)
		assert_non_null(strstr(out, "Digital Signature, Key Encipherment\n"));
	else
		assert_non_null(strstr(out, " Digital Signature\n"));

	/* AKI names the CA's SKI, so a verifier can pick the right issuer. */
	key_id("ca.pem", ski, sizeof(ski));
	assert_int_equal(run(out, sizeof(out),
	                     "openssl x509 -noout -ext authorityKeyIdentifier,subjectKeyIdentifier "
	                     "-in '%s'",
	                     lp),
	                 0);
	assert_non_null(strstr(out, ski));
	assert_non_null(strstr(out, "X509v3 Subject Key Identifier"));
	assert_int_equal(run(out, sizeof(out), "openssl x509 -noout -issuer -in '%s'", lp), 0);
	assert_string_equal(out, "issuer=CN = example_project, O = nvidia\n");
	cfl_pki_cert_free(leaf);
}

static void test_leaf_server_p256(void **state)
{
	(void)state;
	check_server_leaf(0);
}

static void test_leaf_server_rsa(void **state)
{
	(void)state;
	check_server_leaf(1);
}

/* An EC leaf under an RSA root, as a project that switches key types would have. */
/* A certificate made by the openssl CLI under CA t=0 with the extensions in `ext` (a config
 * line, or "" for none), CN `cn`. */
static struct cfl_pki_cert *openssl_leaf(const char *cn, const char *ext)
{
	char ca[256], key[256], dir[256], out[OUT_MAX];
	struct cfl_pki_cert *cert = NULL;
	struct cfl_err e = {0};

	save_cert(fx.ca[0], "usage-ca.pem");
	path_of(ca, sizeof(ca), "usage-ca.pem");
	path_of(key, sizeof(key), "usage-ca.key");
	assert_int_equal(cfl_pki_key_save(fx.ca_key[0], key, &e), 0);
	path_of(dir, sizeof(dir), "");
	if (run(out, sizeof(out),
	        "cd '%s' && printf '%s\n' >usage.ext && openssl req -new -newkey ec "
	        "-pkeyopt ec_paramgen_curve:P-256 -nodes -keyout usage.key -subj '/CN=%s' "
	        "-out usage.csr && openssl x509 -req -in usage.csr -CA '%s' -CAkey '%s' "
	        "-CAcreateserial -days 2 -extfile usage.ext -out usage.crt",
	        dir, ext, cn, ca, key) != 0)
		fail_msg("openssl: %s", out);
	path_of(dir, sizeof(dir), "usage.crt");
	assert_int_equal(cfl_pki_cert_load(dir, &cert, &e), 0);
	return cert;
}

/* Which certificate may prove which role: a CA none, a server's only a server, a client's only
 * a client; one without extended key usage neither. */
static void test_check_usage(void **state)
{
	struct cfl_pki_cert_req sreq = leaf_req("server1", CFL_PKI_USAGE_SERVER);
	struct cfl_pki_cert_req creq = leaf_req("site-1", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *srv = issue(0, fx.leaf_key[0], &sreq);
	struct cfl_pki_cert *cli = issue(0, fx.leaf_key[0], &creq);
	struct cfl_pki_cert *both, *none, *ca_true;
	struct cfl_err e = {0};

	(void)state;
	assert_int_equal(cfl_pki_cert_check_usage(srv, CFL_PKI_USAGE_SERVER, &e), 0);
	assert_int_equal(cfl_pki_cert_check_usage(cli, CFL_PKI_USAGE_CLIENT, &e), 0);
	assert_int_equal(cfl_pki_cert_check_usage(srv, CFL_PKI_USAGE_CLIENT, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "certificate 'server1' is a server certificate (extended key "
	                           "usage serverAuth), not a client certificate");
	assert_int_equal(cfl_pki_cert_check_usage(cli, CFL_PKI_USAGE_SERVER, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "certificate 'site-1' is not a server certificate (no extended "
	                           "key usage serverAuth)");
	/* The root CA chains to itself, so only this check keeps it from being an identity. */
	assert_int_equal(cfl_pki_cert_check_usage(fx.ca[0], CFL_PKI_USAGE_CLIENT, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "certificate 'example_project' is a CA certificate (CA:TRUE), "
	                           "not a client certificate");
	assert_int_equal(cfl_pki_cert_check_usage(fx.ca[0], CFL_PKI_USAGE_SERVER, &e), CFL_EVERIFY);
	assert_int_equal(cfl_pki_cert_check_usage(cli, CFL_PKI_USAGE_CA, &e), CFL_EINVAL);

	/* Certificates of other makers: a server's that also says clientAuth (as cfl's did), one
	 * without extended key usage (OpenSSL would allow it every purpose), a CA:TRUE leaf. */
	both = openssl_leaf("old-server", "extendedKeyUsage=serverAuth,clientAuth");
	assert_int_equal(cfl_pki_cert_check_usage(both, CFL_PKI_USAGE_SERVER, &e), 0);
	assert_int_equal(cfl_pki_cert_check_usage(both, CFL_PKI_USAGE_CLIENT, &e), CFL_EVERIFY);
	assert_non_null(strstr(e.msg, "'old-server' is a server certificate"));
	none = openssl_leaf("no-eku", "subjectAltName=DNS:no-eku");
	assert_int_equal(cfl_pki_cert_check_usage(none, CFL_PKI_USAGE_CLIENT, &e), CFL_EVERIFY);
	assert_string_equal(
	        e.msg, "certificate 'no-eku' has no extended key usage (it must say clientAuth)");
	ca_true = openssl_leaf("sub-ca", "basicConstraints=CA:TRUE\\nextendedKeyUsage=clientAuth");
	assert_int_equal(cfl_pki_cert_check_usage(ca_true, CFL_PKI_USAGE_CLIENT, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "certificate 'sub-ca' is a CA certificate (CA:TRUE), not a "
	                           "client certificate");
	cfl_pki_cert_free(both);
	cfl_pki_cert_free(none);
	cfl_pki_cert_free(ca_true);
	cfl_pki_cert_free(srv);
	cfl_pki_cert_free(cli);
}

static void test_leaf_mixed_types(void **state)
{
	struct cfl_pki_cert_req req = leaf_req("site-1", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *leaf;
	struct cfl_err e = {0};

	(void)state;
	leaf = issue(1, fx.leaf_key[0], &req);
	assert_int_equal(cfl_pki_cert_verify(fx.ca[1], leaf, 0, &e), 0);
	assert_int_equal(cfl_pki_cert_verify(fx.ca[0], leaf, 0, &e), CFL_EVERIFY);
	cfl_pki_cert_free(leaf);
}

static void test_leaf_client_role(void **state)
{
	struct cfl_pki_cert_req req = leaf_req("admin@nvidia.com", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *leaf;
	char lp[256], out[OUT_MAX], buf[64];

	(void)state;
	req.role = "project_admin";
	leaf = issue(0, fx.leaf_key[0], &req);
	assert_int_equal(cfl_pki_cert_role(leaf, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "project_admin");
	assert_int_equal(cfl_pki_cert_org(leaf, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "nvidia");
	/* The buffer must hold the text and its NUL. */
	assert_int_equal(cfl_pki_cert_role(leaf, buf, strlen("project_admin")), CFL_ETOOBIG);
	assert_int_equal(cfl_pki_cert_role(leaf, buf, strlen("project_admin") + 1), 0);
	assert_int_equal(cfl_pki_cert_cn(leaf, buf, 4), CFL_ETOOBIG);

	save_cert(leaf, "admin.pem");
	path_of(lp, sizeof(lp), "admin.pem");
	assert_int_equal(run(out, sizeof(out), "openssl x509 -noout -subject -in '%s'", lp), 0);
	assert_string_equal(out, "subject=CN = admin@nvidia.com, O = nvidia, unstructuredName = "
	                         "project_admin\n");
	assert_int_equal(run(out, sizeof(out), "openssl x509 -noout -text -in '%s'", lp), 0);
	assert_non_null(strstr(out, "TLS Web Client Authentication\n"));
	assert_null(strstr(out, "TLS Web Server Authentication"));
	assert_null(strstr(out, "Subject Alternative Name"));
	cfl_pki_cert_free(leaf);
}

static void test_leaf_no_org(void **state)
{
	struct cfl_pki_cert_req req = leaf_req("site-2", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *leaf;
	char buf[64];

	(void)state;
	req.org = NULL;
	leaf = issue(0, fx.leaf_key[0], &req);
	assert_int_equal(cfl_pki_cert_org(leaf, buf, sizeof(buf)), CFL_ENOENT);
	assert_int_equal(cfl_pki_cert_cn(leaf, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "site-2");
	cfl_pki_cert_free(leaf);
}

static void test_leaf_validity_capped(void **state)
{
	struct cfl_pki_cert_req req = leaf_req("site-1", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *ca, *leaf = NULL;
	struct cfl_pki_key *ca_key = fx.other_key;
	struct cfl_err e = {0};
	time_t ca_nb, ca_na, nb, na;

	(void)state;
	ca = make_ca(ca_key, "short_lived", 10);
	assert_int_equal(cfl_pki_cert_validity(ca, &ca_nb, &ca_na), 0);
	req.days = 360;
	assert_int_equal(cfl_pki_cert_issue(ca_key, ca, fx.leaf_key[0], &req, &leaf, &e), 0);
	assert_int_equal(cfl_pki_cert_validity(leaf, &nb, &na), 0);
	assert_int_equal(na, ca_na);
	cfl_pki_cert_free(leaf);
	leaf = NULL;

	req.days = 5;
	assert_int_equal(cfl_pki_cert_issue(ca_key, ca, fx.leaf_key[0], &req, &leaf, &e), 0);
	assert_int_equal(cfl_pki_cert_validity(leaf, &nb, &na), 0);
	assert_int_equal(na - nb, 5 * DAY);
	cfl_pki_cert_free(leaf);
	leaf = NULL;

	/* Starting after the issuer has expired cannot be capped into anything valid. */
	req.not_before = ca_na + DAY;
	assert_int_equal(cfl_pki_cert_issue(ca_key, ca, fx.leaf_key[0], &req, &leaf, &e),
	                 CFL_EINVAL);
	assert_string_equal(e.msg,
	                    "cannot issue 'site-1': it would start after its issuer expires");
	assert_null(leaf);
	cfl_pki_cert_free(ca);
}

/* A P-256 leaf is returned without its decoded public key and parsed again on first need:
 * encoding first, then a signature check and a key match, must all see the same certificate. */
static void test_leaf_key_on_demand(void **state)
{
	struct cfl_pki_cert_req req = leaf_req("site-lazy", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *leaf = issue(0, fx.leaf_key[0], &req), *back = NULL;
	struct cfl_err e = {0};
	uint8_t *sig = NULL;
	size_t sig_len = 0, len = 0;
	char *pem = NULL;

	(void)state;
	assert_int_equal(cfl_pki_cert_to_pem(leaf, &pem, &len, &e), 0);
	assert_int_equal(cfl_pki_cert_load_pem(pem, len, &back, &e), 0);
	assert_true(cfl_pki_cert_equal(leaf, back));
	assert_int_equal(cfl_pki_sign(fx.leaf_key[0], "abc", 3, &sig, &sig_len, &e), 0);
	assert_int_equal(cfl_pki_verify(leaf, "abc", 3, sig, sig_len, &e), 0);
	assert_true(cfl_pki_cert_matches_key(leaf, fx.leaf_key[0]));
	assert_int_equal(cfl_pki_cert_verify(fx.ca[0], leaf, 0, &e), 0);
	assert_true(cfl_pki_cert_equal(leaf, back));
	free(sig);
	free(pem);
	cfl_pki_cert_free(back);
	cfl_pki_cert_free(leaf);
}

static void test_issue_errors(void **state)
{
	static const char *const bad_san[] = {"host name"};
	char cn65[66], cn64[65];
	struct cfl_pki_cert_req req;
	struct cfl_pki_cert *cert = NULL, *sub = NULL;
	struct cfl_err e = {0};

	(void)state;
	memset(cn65, 'a', 65);
	cn65[65] = '\0';
	req = leaf_req(cn65, CFL_PKI_USAGE_SERVER);
	assert_int_equal(
	        cfl_pki_cert_issue(fx.ca_key[0], fx.ca[0], fx.leaf_key[0], &req, &cert, &e),
	        CFL_EINVAL);
	assert_non_null(strstr(e.msg, "cannot issue certificate: common name 'aaaa"));
	assert_non_null(strstr(e.msg, "' is longer than 64 bytes"));
	assert_int_equal(cfl_pki_ca_create(fx.ca_key[0], &req, &cert, &e), CFL_EINVAL);
	assert_non_null(strstr(e.msg, "is longer than 64 bytes"));
	assert_null(cert);

	memset(cn64, 'a', 64);
	cn64[64] = '\0';
	req.cn = cn64;
	cert = issue(0, fx.leaf_key[0], &req);
	cfl_pki_cert_free(cert);
	cert = NULL;

	req.cn = "";
	assert_int_equal(
	        cfl_pki_cert_issue(fx.ca_key[0], fx.ca[0], fx.leaf_key[0], &req, &cert, &e),
	        CFL_EINVAL);
	assert_string_equal(e.msg, "cannot issue certificate: common name is empty");

	req.cn = "site-1";
	req.days = 0;
	assert_int_equal(
	        cfl_pki_cert_issue(fx.ca_key[0], fx.ca[0], fx.leaf_key[0], &req, &cert, &e),
	        CFL_EINVAL);
	assert_non_null(strstr(e.msg, "validity of 0 days for 'site-1'"));

	req.days = 30;
	req.sans = bad_san;
	req.n_sans = 1;
	assert_int_equal(
	        cfl_pki_cert_issue(fx.ca_key[0], fx.ca[0], fx.leaf_key[0], &req, &cert, &e),
	        CFL_EINVAL);
	assert_non_null(strstr(e.msg, "'host name'"));

	req.n_sans = 0;
	req.usage = CFL_PKI_USAGE_CA;
	assert_int_equal(
	        cfl_pki_cert_issue(fx.ca_key[0], fx.ca[0], fx.leaf_key[0], &req, &cert, &e),
	        CFL_EINVAL);
	assert_string_equal(e.msg, "cannot issue 'site-1': usage must be server or client");

	req.usage = CFL_PKI_USAGE_CLIENT;
	assert_int_equal(
	        cfl_pki_cert_issue(fx.ca_key[1], fx.ca[0], fx.leaf_key[0], &req, &cert, &e),
	        CFL_EINVAL);
	assert_string_equal(e.msg,
	                    "cannot issue 'site-1': CA key does not match the CA certificate");

	assert_int_equal(cfl_pki_ca_create(fx.ca_key[0], &req, &cert, &e), CFL_EINVAL);
	assert_string_equal(e.msg, "cannot create CA 'site-1': usage is not CA");

	/* A leaf cannot issue. */
	cert = issue(0, fx.leaf_key[0], &req);
	assert_int_equal(cfl_pki_cert_issue(fx.leaf_key[0], cert, fx.leaf_key[1], &req, &sub, &e),
	                 CFL_EINVAL);
	assert_string_equal(e.msg, "cannot issue 'site-1': issuer certificate is not a CA");
	assert_null(sub);
	cfl_pki_cert_free(cert);
}

/* ---- verification ---- */

static void test_verify_expired(void **state)
{
	struct cfl_pki_cert_req req = leaf_req("site-1", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *leaf;
	struct cfl_err e = {0};

	(void)state;
	req.not_before = time(NULL) - 400 * DAY;
	req.days = 1;
	leaf = issue(0, fx.leaf_key[0], &req);
	assert_int_equal(cfl_pki_cert_verify(fx.ca[0], leaf, 0, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "certificate verify failed: certificate has expired");
	cfl_pki_cert_free(leaf);
}

static void test_verify_not_yet_valid(void **state)
{
	struct cfl_pki_cert_req req = leaf_req("site-1", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *leaf;
	struct cfl_err e = {0};
	time_t start = time(NULL) + 30 * DAY;

	(void)state;
	req.not_before = start;
	req.days = 10;
	leaf = issue(0, fx.leaf_key[0], &req);
	assert_int_equal(cfl_pki_cert_verify(fx.ca[0], leaf, 0, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "certificate verify failed: certificate is not yet valid");
	/* ...and valid at a time inside its window. */
	assert_int_equal(cfl_pki_cert_verify(fx.ca[0], leaf, start + DAY, &e), 0);
	assert_int_equal(cfl_pki_cert_verify(fx.ca[0], leaf, start + 11 * DAY, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "certificate verify failed: certificate has expired");
	cfl_pki_cert_free(leaf);
}

static void test_verify_other_ca(void **state)
{
	struct cfl_pki_cert_req req = leaf_req("site-1", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *leaf, *same_name, *foreign = NULL;
	struct cfl_err e = {0};

	(void)state;
	leaf = issue(0, fx.leaf_key[0], &req);
	assert_int_equal(cfl_pki_cert_verify(fx.other_ca, leaf, 0, &e), CFL_EVERIFY);
	assert_string_equal(e.msg,
	                    "certificate verify failed: unable to get local issuer certificate");

	/* A root with the very same name but another key is no issuer either. */
	same_name = make_ca(fx.other_key, "example_project", 360);
	assert_int_equal(cfl_pki_cert_verify(same_name, leaf, 0, &e), CFL_EVERIFY);
	assert_non_null(strstr(e.msg, "certificate verify failed: "));
	assert_int_equal(
	        cfl_pki_cert_issue(fx.other_key, same_name, fx.leaf_key[0], &req, &foreign, &e), 0);
	assert_int_equal(cfl_pki_cert_verify(fx.ca[0], foreign, 0, &e), CFL_EVERIFY);
	cfl_pki_cert_free(foreign);
	cfl_pki_cert_free(same_name);
	cfl_pki_cert_free(leaf);
}

/* ---- certificate files ---- */

static void test_cert_load_errors(void **state)
{
	static const char garbage[] = "-----BEGIN CERTIFICATE-----\nnot base64\n"
	                              "-----END CERTIFICATE-----\n";
	struct cfl_pki_cert *cert = NULL;
	struct cfl_err e = {0};
	char path[256];

	(void)state;
	path_of(path, sizeof(path), "missing.pem");
	assert_int_equal(cfl_pki_cert_load(path, &cert, &e), CFL_ENOENT);
	assert_non_null(strstr(e.msg, "missing.pem"));

	assert_int_equal(cfl_pki_cert_load_pem(garbage, sizeof(garbage) - 1, &cert, &e),
	                 CFL_EPARSE);
	assert_non_null(strstr(e.msg, "cannot parse certificate: "));
	assert_int_equal(cfl_pki_cert_load_pem("", 0, &cert, &e), CFL_EPARSE);

	save_bytes("garbage.pem", garbage, sizeof(garbage) - 1);
	path_of(path, sizeof(path), "garbage.pem");
	assert_int_equal(cfl_pki_cert_load(path, &cert, &e), CFL_EPARSE);
	assert_non_null(strstr(e.msg, "cannot load '"));
	assert_non_null(strstr(e.msg, "garbage.pem': cannot parse certificate"));
	assert_null(cert);

	/* A private key is not a certificate. */
	path_of(path, sizeof(path), "key-as-cert.pem");
	assert_int_equal(cfl_pki_key_save(fx.leaf_key[0], path, &e), 0);
	assert_int_equal(cfl_pki_cert_load(path, &cert, &e), CFL_EPARSE);
	assert_null(cert);
}

static void test_free_null(void **state)
{
	(void)state;
	cfl_pki_key_free(NULL);
	cfl_pki_cert_free(NULL);
}

/* ---- signatures ---- */

static void check_sign_verify(int t, size_t want_len)
{
	static const char data[] = "config_fed_client.json contents";
	struct cfl_pki_cert_req req = leaf_req("site-1", CFL_PKI_USAGE_CLIENT);
	struct cfl_pki_cert *other;
	struct cfl_err e = {0};
	uint8_t *sig = NULL, *empty_sig = NULL;
	size_t sig_len = 0, empty_len = 0;
	char bad[sizeof(data)];

	assert_int_equal(cfl_pki_sign(fx.ca_key[t], data, sizeof(data) - 1, &sig, &sig_len, &e), 0);
	if (want_len != 0)
		assert_int_equal(sig_len, want_len);
	else
		assert_true(sig_len >= 8 && sig_len <= 72);
	assert_int_equal(cfl_pki_verify(fx.ca[t], data, sizeof(data) - 1, sig, sig_len, &e), 0);

	memcpy(bad, data, sizeof(data));
	bad[0] ^= 1;
	assert_int_equal(cfl_pki_verify(fx.ca[t], bad, sizeof(data) - 1, sig, sig_len, &e),
	                 CFL_EVERIFY);
	assert_string_equal(e.msg, "bad signature");
	assert_int_equal(cfl_pki_verify(fx.ca[t], data, sizeof(data) - 2, sig, sig_len, &e),
	                 CFL_EVERIFY);

	sig[sig_len / 2] ^= 0x40;
	assert_int_equal(cfl_pki_verify(fx.ca[t], data, sizeof(data) - 1, sig, sig_len, &e),
	                 CFL_EVERIFY);
	sig[sig_len / 2] ^= 0x40;
	assert_int_equal(cfl_pki_verify(fx.ca[t], data, sizeof(data) - 1, sig, sig_len - 1, &e),
	                 CFL_EVERIFY);
	assert_int_equal(cfl_pki_verify(fx.ca[t], data, sizeof(data) - 1, sig, 0, &e), CFL_EVERIFY);

	/* The right signature checked against someone else's certificate. */
	other = issue(t, fx.leaf_key[t], &req);
	assert_int_equal(cfl_pki_verify(other, data, sizeof(data) - 1, sig, sig_len, &e),
	                 CFL_EVERIFY);
	assert_int_equal(cfl_pki_verify(fx.ca[1 - t], data, sizeof(data) - 1, sig, sig_len, &e),
	                 CFL_EVERIFY);
	cfl_pki_cert_free(other);

	/* Empty input is a valid message. */
	assert_int_equal(cfl_pki_sign(fx.ca_key[t], NULL, 0, &empty_sig, &empty_len, &e), 0);
	assert_int_equal(cfl_pki_verify(fx.ca[t], "", 0, empty_sig, empty_len, &e), 0);
	free(empty_sig);
	free(sig);
}

static void test_sign_verify_p256(void **state)
{
	(void)state;
	check_sign_verify(0, 0);
}

static void test_sign_verify_rsa(void **state)
{
	(void)state;
	check_sign_verify(1, 256);
}

/* What NVFlare (python `cryptography`) checks: PSS, MGF1-SHA256 and the maximal salt, which for
 * RSA-2048 with SHA-256 is 256 - 32 - 2 = 222 bytes. */
static void test_sign_interop(void **state)
{
	static const char data[] = "fed_server.json";
	struct cfl_err e = {0};
	char ca[256], pub[256], sigp[256], datap[256], out[OUT_MAX];
	uint8_t *sig = NULL;
	size_t sig_len = 0;

	(void)state;
	path_of(ca, sizeof(ca), "ca.pem");
	path_of(pub, sizeof(pub), "pub.pem");
	path_of(sigp, sizeof(sigp), "data.sig");
	path_of(datap, sizeof(datap), "data.bin");
	save_bytes("data.bin", data, sizeof(data) - 1);
	for (int t = 0; t < 2; t++) {
		save_cert(fx.ca[t], "ca.pem");
		assert_int_equal(run(out, sizeof(out),
		                     "openssl x509 -pubkey -noout -in '%s' > '%s'", ca, pub),
		                 0);
		assert_int_equal(
		        cfl_pki_sign(fx.ca_key[t], data, sizeof(data) - 1, &sig, &sig_len, &e), 0);
		save_bytes("data.sig", sig, sig_len);
		free(sig);
		sig = NULL;
		assert_int_equal(
		        run(out, sizeof(out),
		            "openssl dgst -sha256 -verify '%s' -signature '%s' %s '%s'", pub, sigp,
		            t == 1 ? "-sigopt rsa_padding_mode:pss -sigopt rsa_mgf1_md:sha256 "
		                     "-sigopt rsa_pss_saltlen:222"
		                   : "",
		            datap),
		        0);
		assert_string_equal(out, "Verified OK\n");
	}
}

/* ---- base64 ---- */

static void test_base64_vectors(void **state)
{
	/* RFC 4648 §10. */
	static const char *const vec[][2] = {
	        {"", ""},
	        {"f", "Zg=="},
	        {"fo", "Zm8="},
	        {"foo", "Zm9v"},
	        {"foob", "Zm9vYg=="},
	        {"fooba", "Zm9vYmE="},
	        {"foobar", "Zm9vYmFy"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		char *enc = NULL;
		uint8_t *dec = NULL;
		size_t n = 0;

		assert_int_equal(cfl_base64_encode(vec[i][0], strlen(vec[i][0]), &enc), 0);
		assert_string_equal(enc, vec[i][1]);
		assert_int_equal(cfl_base64_decode(vec[i][1], strlen(vec[i][1]), &dec, &n), 0);
		assert_int_equal(n, strlen(vec[i][0]));
		assert_memory_equal(dec, vec[i][0], n);
		free(enc);
		free(dec);
	}
}

static void test_base64_roundtrip(void **state)
{
	uint8_t bytes[256];
	char *enc = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)(255 - i);
	for (size_t len = 0; len <= sizeof(bytes); len += 1 + len / 8) {
		uint8_t *dec = NULL;
		size_t n = 0;

		assert_int_equal(cfl_base64_encode(bytes, len, &enc), 0);
		assert_int_equal(strlen(enc), (len + 2) / 3 * 4);
		assert_int_equal(cfl_base64_decode(enc, strlen(enc), &dec, &n), 0);
		assert_int_equal(n, len);
		if (len > 0)
			assert_memory_equal(dec, bytes, len);
		free(enc);
		free(dec);
	}
	/* The two characters that differ between alphabets. */
	assert_int_equal(cfl_base64_encode("\xfb\xff", 2, &enc), 0);
	assert_string_equal(enc, "+/8=");
	free(enc);
}

static void test_base64_rejects(void **state)
{
	static const char *const bad[] = {
	        "Zg",         /* length not a multiple of 4 */
	        "Zg=",        /* ditto */
	        "Zm9vY",      /* ditto */
	        "Zg==Zg==",   /* padding before the end */
	        "Z===",       /* three pad characters */
	        "====",       /* nothing but padding */
	        "Zm=v",       /* padding in the middle of a quantum */
	        "Zm9v!A==",   /* outside the alphabet */
	        "Zm9v\nZm9v", /* no line breaks (RFC 4648 §3.1) */
	        "Zm9 ",       /* no spaces */
	        "Zm9-",       /* base64url is another alphabet */
	        "Zh==",       /* non-zero pad bits */
	        "Zm9=",       /* ditto */
	};
	uint8_t *dec = NULL;
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cfl_base64_decode(bad[i], strlen(bad[i]), &dec, &n) != CFL_EPARSE)
			fail_msg("accepted '%s'", bad[i]);
	}
	/* An embedded NUL is not the end of the text. */
	assert_int_equal(cfl_base64_decode("Zm9v\0AAA", 8, &dec, &n), CFL_EPARSE);
	assert_null(dec);
	assert_int_equal(cfl_base64_decode(NULL, 4, &dec, &n), CFL_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_key_type_names),
	        cmocka_unit_test(test_key_generate_p256),
	        cmocka_unit_test(test_key_generate_rsa),
	        cmocka_unit_test(test_key_load_formats),
	        cmocka_unit_test(test_key_load_errors),
	        cmocka_unit_test(test_ca_p256),
	        cmocka_unit_test(test_ca_rsa),
	        cmocka_unit_test(test_ca_serials_differ),
	        cmocka_unit_test(test_leaf_server_p256),
	        cmocka_unit_test(test_leaf_server_rsa),
	        cmocka_unit_test(test_check_usage),
	        cmocka_unit_test(test_leaf_mixed_types),
	        cmocka_unit_test(test_leaf_client_role),
	        cmocka_unit_test(test_leaf_no_org),
	        cmocka_unit_test(test_leaf_validity_capped),
	        cmocka_unit_test(test_leaf_key_on_demand),
	        cmocka_unit_test(test_issue_errors),
	        cmocka_unit_test(test_verify_expired),
	        cmocka_unit_test(test_verify_not_yet_valid),
	        cmocka_unit_test(test_verify_other_ca),
	        cmocka_unit_test(test_cert_load_errors),
	        cmocka_unit_test(test_free_null),
	        cmocka_unit_test(test_sign_verify_p256),
	        cmocka_unit_test(test_sign_verify_rsa),
	        cmocka_unit_test(test_sign_interop),
	        cmocka_unit_test(test_base64_vectors),
	        cmocka_unit_test(test_base64_roundtrip),
	        cmocka_unit_test(test_base64_rejects),
	};

	return cmocka_run_group_tests_name("pki", tests, setup, teardown);
}
