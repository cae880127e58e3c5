/* Certificates: PEM files, subject fields, validity, chain verification. */
#include "pki/pki_int.h"
#include "util/fs.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

int cfl__pki_cert_wrap(X509 *x, struct cfl_pki_cert **out)
{
	struct cfl_pki_cert *cert;

	if (x == NULL || out == NULL)
		return CFL_EINVAL;
	cert = malloc(sizeof(*cert));
	if (cert == NULL)
		return CFL_ENOMEM;
	if (!X509_up_ref(x)) {
		free(cert);
		return CFL_ENOMEM;
	}
	cert->x509 = x;
	atomic_init(&cert->full, x);
	*out = cert;
	return 0;
}

int cfl__pki_cert_wrap_lazy(X509 *x, struct cfl_pki_cert **out)
{
	int rc = cfl__pki_cert_wrap(x, out);

	if (rc == 0)
		atomic_store(&(*out)->full, NULL);
	return rc;
}

/* x parsed again from its DER, which decodes its public key. */
static X509 *reparse(X509 *x)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	X509 *again = NULL;
	int len = i2d_X509(x, &der);

	p = der;
	if (len > 0)
		again = d2i_X509(NULL, &p, len);
	OPENSSL_free(der);
	ERR_clear_error();
	return again;
}

X509 *cfl__pki_cert_full(const struct cfl_pki_cert *cert)
{
	struct cfl_pki_cert *c = (struct cfl_pki_cert *)cert; /* only `full` changes, once */
	X509 *f = atomic_load(&c->full), *none = NULL;

	if (f != NULL)
		return f;
	/* Out of memory: the key-less original, with which every check fails closed. */
	if ((f = reparse(c->x509)) == NULL)
		return c->x509;
	if (!atomic_compare_exchange_strong(&c->full, &none, f)) {
		X509_free(f);
		return none;
	}
	return f;
}

int cfl_pki_cert_load_pem(const char *pem, size_t len, struct cfl_pki_cert **out, struct cfl_err *e)
{
	X509 *x = NULL;
	BIO *bio;
	int rc;

	if (pem == NULL || out == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot parse certificate: no input or output");
	if (len > CFL_PKI_CERT_FILE_MAX)
		return cfl_err_set(e, CFL_ETOOBIG,
		                   "cannot parse certificate: larger than %zu bytes",
		                   CFL_PKI_CERT_FILE_MAX);
	ERR_clear_error();
	if ((x = cfl__pki_cert_cache_get(pem, len)) == NULL) {
		bio = BIO_new_mem_buf(pem, (int)len);
		if (bio == NULL)
			return cfl__pki_openssl_err(e, CFL_ENOMEM, "cannot parse certificate");
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
		if (x == NULL)
			return cfl__pki_openssl_err(
			        e, CFL_EPARSE, "cannot parse certificate: not a PEM certificate");
		cfl__pki_cert_cache_put(pem, len, x);
	}
	rc = cfl__pki_cert_wrap(x, out);
	X509_free(x);
	if (rc != 0)
		return cfl_err_set(e, rc, "cannot parse certificate: out of memory");
	return 0;
}

int cfl_pki_cert_wrap_x509(const void *x509, struct cfl_pki_cert **out)
{
	return cfl__pki_cert_wrap((X509 *)x509, out);
}

int cfl_pki_cert_pem_is(const char *pem, size_t len, const struct cfl_pki_cert *cert)
{
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL, *mine = NULL;
	long n = 0;
	int m, same = 0;
	BIO *bio;

	if (pem == NULL || cert == NULL || len > CFL_PKI_CERT_FILE_MAX)
		return 0;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio != NULL && PEM_read_bio(bio, &name, &header, &der, &n) == 1 &&
	    strcmp(name, PEM_STRING_X509) == 0 && (m = i2d_X509(cert->x509, &mine)) > 0)
		same = (long)m == n && memcmp(der, mine, (size_t)m) == 0;
	BIO_free(bio);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	OPENSSL_free(mine);
	ERR_clear_error();
	return same;
}

int cfl_pki_cert_load(const char *path, struct cfl_pki_cert **out, struct cfl_err *e)
{
	char *pem = NULL;
	size_t len = 0;
	int rc;

	if (path == NULL || out == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot load certificate: no path or output");
	rc = cfl__fs_read_file(path, CFL_PKI_CERT_FILE_MAX, &pem, &len, e);
	if (rc != 0)
		return rc;
	rc = cfl_pki_cert_load_pem(pem, len, out, e);
	if (rc != 0)
		cfl_err_prefix(e, "cannot load '%s'", path);
	free(pem);
	return rc;
}

int cfl_pki_cert_to_pem(const struct cfl_pki_cert *cert, char **pem, size_t *len, struct cfl_err *e)
{
	BIO *bio;
	int rc;

	if (cert == NULL || pem == NULL || len == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot encode certificate: no input or output");
	ERR_clear_error();
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || !PEM_write_bio_X509(bio, cert->x509))
		rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot encode certificate");
	else
		rc = cfl__pki_bio_text(bio, "certificate", pem, len, e);
	BIO_free(bio);
	return rc;
}

int cfl_pki_cert_save(const struct cfl_pki_cert *cert, const char *path, struct cfl_err *e)
{
	char *pem = NULL;
	size_t len = 0;
	int rc;

	if (cert == NULL || path == NULL)
		return cfl_err_set(e, CFL_EINVAL,
		                   "cannot save certificate: no certificate or path");
	rc = cfl_pki_cert_to_pem(cert, &pem, &len, e);
	if (rc != 0) {
		cfl_err_prefix(e, "cannot save '%s'", path);
		return rc;
	}
	rc = cfl__fs_write_file(path, pem, len, 0644, e);
	free(pem);
	return rc;
}

void cfl_pki_cert_free(struct cfl_pki_cert *cert)
{
	if (cert == NULL)
		return;
	X509 *full = atomic_load(&cert->full);

	if (full != cert->x509)
		X509_free(full);
	X509_free(cert->x509);
	free(cert);
}

/* Copies the first entry of `name` with `nid` into buf as UTF-8. Entries may be BMPString or
 * the like, hence ASN1_STRING_to_UTF8 rather than the raw bytes. */
int cfl__pki_name_field(const X509_NAME *name, int nid, char *buf, size_t size)
{
	unsigned char *utf8 = NULL;
	int idx, n, rc = 0;

	if (name == NULL || buf == NULL || size == 0)
		return CFL_EINVAL;
	idx = X509_NAME_get_index_by_NID(name, nid, -1);
	if (idx < 0)
		return CFL_ENOENT;
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
	if (n < 0) {
		ERR_clear_error();
		return CFL_EPARSE;
	}
	/* An embedded NUL would let "admin\0.evil" pass for "admin" in a C string compare. */
	if (memchr(utf8, '\0', (size_t)n) != NULL)
		rc = CFL_EPARSE;
	else if ((size_t)n >= size)
		rc = CFL_ETOOBIG;
	else {
		memcpy(buf, utf8, (size_t)n);
		buf[n] = '\0';
	}
	OPENSSL_free(utf8);
	return rc;
}

static int subject_field(const struct cfl_pki_cert *cert, int nid, char *buf, size_t size)
{
	if (cert == NULL)
		return CFL_EINVAL;
	return cfl__pki_name_field(X509_get_subject_name(cert->x509), nid, buf, size);
}

int cfl_pki_cert_cn(const struct cfl_pki_cert *cert, char *buf, size_t size)
{
	return subject_field(cert, NID_commonName, buf, size);
}

int cfl_pki_cert_org(const struct cfl_pki_cert *cert, char *buf, size_t size)
{
	return subject_field(cert, NID_organizationName, buf, size);
}

int cfl_pki_cert_role(const struct cfl_pki_cert *cert, char *buf, size_t size)
{
	return subject_field(cert, NID_pkcs9_unstructuredName, buf, size);
}

int cfl_pki_cert_check_usage(const struct cfl_pki_cert *cert, enum cfl_pki_usage usage,
                             struct cfl_err *e)
{
	const char *want = usage == CFL_PKI_USAGE_SERVER ? "server" : "client";
	char cn[CFL_PKI_NAME_MAX + 1] = "?";
	uint32_t flags, xku;

	if (cert == NULL || (usage != CFL_PKI_USAGE_SERVER && usage != CFL_PKI_USAGE_CLIENT))
		return cfl_err_set(e, CFL_EINVAL,
		                   "cannot check a certificate's usage: bad argument");
	cfl_pki_cert_cn(cert, cn, sizeof(cn));
	/* Computes and caches the extension flags; EXFLAG_INVALID when they do not parse. */
	flags = X509_get_extension_flags(cert->x509);
	xku = X509_get_extended_key_usage(cert->x509);
	if ((flags & EXFLAG_INVALID) != 0)
		return cfl_err_set(e, CFL_EVERIFY, "certificate '%s' has malformed extensions", cn);
	if (X509_check_ca(cert->x509) != 0)
		return cfl_err_set(e, CFL_EVERIFY,
		                   "certificate '%s' is a CA certificate (CA:TRUE), not a %s "
		                   "certificate",
		                   cn, want);
	/* Without the extension OpenSSL allows every purpose: ours always say which one. */
	if ((flags & EXFLAG_XKUSAGE) == 0)
		return cfl_err_set(
		        e, CFL_EVERIFY,
		        "certificate '%s' has no extended key usage (it must say %sAuth)", cn,
		        want);
	if (usage == CFL_PKI_USAGE_SERVER && (xku & XKU_SSL_SERVER) == 0)
		return cfl_err_set(e, CFL_EVERIFY,
		                   "certificate '%s' is not a server certificate (no extended key "
		                   "usage serverAuth)",
		                   cn);
	if (usage == CFL_PKI_USAGE_CLIENT && (xku & XKU_SSL_SERVER) != 0)
		return cfl_err_set(e, CFL_EVERIFY,
		                   "certificate '%s' is a server certificate (extended key usage "
		                   "serverAuth), not a client certificate",
		                   cn);
	if (usage == CFL_PKI_USAGE_CLIENT && (xku & XKU_SSL_CLIENT) == 0)
		return cfl_err_set(e, CFL_EVERIFY,
		                   "certificate '%s' is not a client certificate (no extended key "
		                   "usage clientAuth)",
		                   cn);
	return 0;
}

/* Seconds since the epoch, without timegm (not POSIX): the difference from 1970-01-01. */
static int asn1_to_time(const ASN1_TIME *t, time_t *out)
{
	ASN1_TIME *epoch;
	int days = 0, secs = 0, ok;

	epoch = ASN1_TIME_set(NULL, 0);
	if (epoch == NULL)
		return CFL_ENOMEM;
	ok = ASN1_TIME_diff(&days, &secs, epoch, t);
	ASN1_TIME_free(epoch);
	if (!ok) {
		ERR_clear_error();
		return CFL_EPARSE;
	}
	*out = (time_t)days * 86400 + secs;
	return 0;
}

int cfl_pki_cert_validity(const struct cfl_pki_cert *cert, time_t *not_before, time_t *not_after)
{
	int rc;

	if (cert == NULL || not_before == NULL || not_after == NULL)
		return CFL_EINVAL;
	rc = asn1_to_time(X509_get0_notBefore(cert->x509), not_before);
	if (rc == 0)
		rc = asn1_to_time(X509_get0_notAfter(cert->x509), not_after);
	return rc;
}

int cfl_pki_cert_verify(const struct cfl_pki_cert *ca, const struct cfl_pki_cert *cert, time_t at,
                        struct cfl_err *e)
{
	X509_STORE_CTX *ctx = NULL;
	X509_STORE *store = NULL;
	int rc = 0;

	if (ca == NULL || cert == NULL)
		return cfl_err_set(e, CFL_EINVAL,
		                   "cannot verify certificate: no CA or certificate");
	ERR_clear_error();
	store = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	if (store == NULL || ctx == NULL) {
		rc = cfl__pki_openssl_err(e, CFL_ENOMEM, "cannot verify certificate");
		goto out;
	}
	/* The root is the only trust anchor: no system store, no intermediates. */
	if (!X509_STORE_add_cert(store, cfl__pki_cert_full(ca)) ||
	    !X509_STORE_CTX_init(ctx, store, cfl__pki_cert_full(cert), NULL)) {
		rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot verify certificate");
		goto out;
	}
	/* set_time also sets X509_V_FLAG_USE_CHECK_TIME. */
	if (at != 0)
		X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), at);
	if (X509_verify_cert(ctx) != 1) {
		ERR_clear_error();
		rc = cfl_err_set(e, CFL_EVERIFY, "certificate verify failed: %s",
		                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	}
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

int cfl_pki_cert_matches_key(const struct cfl_pki_cert *cert, const struct cfl_pki_key *key)
{
	const EVP_PKEY *pub;
	int match;

	if (cert == NULL || key == NULL)
		return 0;
	pub = X509_get0_pubkey(cfl__pki_cert_full(cert));
	match = pub != NULL && EVP_PKEY_eq(pub, key->pkey) == 1;
	/* A mismatch of key types leaves an entry on the queue; it is not an error here. */
	ERR_clear_error();
	return match;
}
