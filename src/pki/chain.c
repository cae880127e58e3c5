/* Certificate lists (a leaf file with its issuing chain), identity of certificates: DER
 * equality, serial numbers and SHA-256 fingerprints. */
#include "cfl/digest.h"
#include "pki/pki_int.h"
#include "util/fs.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void cfl_pki_certs_free(struct cfl_pki_cert **certs, size_t n)
{
	if (certs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		cfl_pki_cert_free(certs[i]);
	free(certs);
}

/* Appends the next certificate of `bio` to the list; 1 when one was read, 0 at the end. */
static int read_one(BIO *bio, struct cfl_pki_cert **list, size_t *n, struct cfl_err *e)
{
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	unsigned long err;
	int rc;

	if (x == NULL) {
		err = ERR_peek_last_error();
		if (*n > 0 && ERR_GET_LIB(err) == ERR_LIB_PEM &&
		    ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
			ERR_clear_error();
			return 0;
		}
		return cfl__pki_openssl_err(e, CFL_EPARSE, "certificate %zu does not parse",
		                            *n + 1);
	}
	if (*n >= CFL_PKI_CHAIN_MAX) {
		X509_free(x);
		return cfl_err_set(e, CFL_ETOOBIG, "more than %d certificates", CFL_PKI_CHAIN_MAX);
	}
	rc = cfl__pki_cert_wrap(x, &list[*n]);
	X509_free(x);
	if (rc != 0)
		return cfl_err_set(e, rc, "out of memory");
	(*n)++;
	return 1;
}

int cfl_pki_certs_load_pem(const char *pem, size_t len, struct cfl_pki_cert ***certs, size_t *n,
                           struct cfl_err *e)
{
	struct cfl_pki_cert **list;
	size_t count = 0;
	BIO *bio;
	int rc;

	if (pem == NULL || certs == NULL || n == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot parse certificates: no input or output");
	if (len > CFL_PKI_CERT_FILE_MAX)
		return cfl_err_set(e, CFL_ETOOBIG,
		                   "cannot parse certificates: larger than %zu bytes",
		                   CFL_PKI_CERT_FILE_MAX);
	list = calloc(CFL_PKI_CHAIN_MAX, sizeof(*list));
	bio = BIO_new_mem_buf(pem, (int)len);
	if (list == NULL || bio == NULL) {
		free(list);
		BIO_free(bio);
		return cfl_err_set(e, CFL_ENOMEM, "cannot parse certificates: out of memory");
	}
	ERR_clear_error();
	while ((rc = read_one(bio, list, &count, e)) == 1)
		;
	BIO_free(bio);
	if (rc != 0) {
		cfl_pki_certs_free(list, count);
		return cfl_err_prefix(e, "cannot parse certificates");
	}
	*certs = list;
	*n = count;
	return 0;
}

int cfl_pki_certs_load(const char *path, struct cfl_pki_cert ***certs, size_t *n, struct cfl_err *e)
{
	char *pem = NULL;
	size_t len = 0;
	int rc;

	if (path == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot load certificates: no path");
	rc = cfl__fs_read_file(path, CFL_PKI_CERT_FILE_MAX, &pem, &len, e);
	if (rc != 0)
		return rc;
	rc = cfl_pki_certs_load_pem(pem, len, certs, n, e);
	if (rc != 0)
		cfl_err_prefix(e, "cannot load '%s'", path);
	free(pem);
	return rc;
}

int cfl_pki_cert_self_signed(const struct cfl_pki_cert *cert)
{
	X509 *x;
	int ok;

	if (cert == NULL)
		return 0;
	x = cfl__pki_cert_full(cert);
	ok = X509_check_issued(x, x) == X509_V_OK && X509_verify(x, X509_get0_pubkey(x)) == 1;
	ERR_clear_error();
	return ok;
}

int cfl_pki_cert_equal(const struct cfl_pki_cert *a, const struct cfl_pki_cert *b)
{
	if (a == NULL || b == NULL)
		return 0;
	return X509_cmp(a->x509, b->x509) == 0;
}

int cfl_pki_cert_serial(const struct cfl_pki_cert *cert, char *buf, size_t size)
{
	BIGNUM *bn;
	char *hex;
	int rc = 0;

	if (cert == NULL || buf == NULL || size == 0)
		return CFL_EINVAL;
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert->x509), NULL);
	hex = bn != NULL ? BN_bn2hex(bn) : NULL;
	if (hex == NULL)
		rc = CFL_ENOMEM;
	else if (strlen(hex) >= size)
		rc = CFL_ETOOBIG;
	else
		memcpy(buf, hex, strlen(hex) + 1);
	OPENSSL_free(hex);
	BN_free(bn);
	ERR_clear_error();
	return rc;
}

static int cert_sha256(const struct cfl_pki_cert *cert, uint8_t md[CFL_SHA256_LEN])
{
	unsigned int n = CFL_SHA256_LEN;

	if (cert == NULL || X509_digest(cert->x509, EVP_sha256(), md, &n) != 1 ||
	    n != CFL_SHA256_LEN) {
		ERR_clear_error();
		return CFL_ECRYPTO;
	}
	return 0;
}

int cfl_pki_cert_fingerprint(const struct cfl_pki_cert *cert, char *buf, size_t size)
{
	static const char digits[] = "0123456789ABCDEF";
	uint8_t md[CFL_SHA256_LEN];
	char *p;
	int rc;

	if (buf == NULL || size < CFL_PKI_FINGERPRINT_MAX)
		return CFL_EINVAL;
	if ((rc = cert_sha256(cert, md)) != 0)
		return rc;
	memcpy(buf, "SHA256:", 7);
	p = buf + 7;
	for (size_t i = 0; i < CFL_SHA256_LEN; i++) {
		if (i > 0)
			*p++ = ':';
		*p++ = digits[md[i] >> 4];
		*p++ = digits[md[i] & 15];
	}
	*p = '\0';
	return 0;
}

/* Hex, pairs optionally separated by ':', into out[32]; 0 or -1. */
static int parse_hex(const char *s, uint8_t out[CFL_SHA256_LEN])
{
	size_t i = 0;

	while (i < CFL_SHA256_LEN) {
		char pair[3] = {0};

		if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]))
			return -1;
		pair[0] = s[0];
		pair[1] = s[1];
		out[i++] = (uint8_t)strtoul(pair, NULL, 16);
		s += 2;
		if (*s == ':' && i < CFL_SHA256_LEN)
			s++;
	}
	return *s == '\0' ? 0 : -1;
}

/* Base64 with or without padding into out[32]; 0 or -1. */
static int parse_b64(const char *s, uint8_t out[CFL_SHA256_LEN])
{
	char padded[48];
	size_t n = strlen(s), got = 0;
	uint8_t *raw = NULL;
	int rc = -1;

	if (n > 44 || n < 43)
		return -1;
	memcpy(padded, s, n);
	if (n == 43)
		padded[n++] = '=';
	if (cfl_base64_decode(padded, n, &raw, &got) == 0 && got == CFL_SHA256_LEN) {
		memcpy(out, raw, CFL_SHA256_LEN);
		rc = 0;
	}
	free(raw);
	return rc;
}

int cfl_pki_cert_fingerprint_match(const struct cfl_pki_cert *cert, const char *text)
{
	uint8_t md[CFL_SHA256_LEN], want[CFL_SHA256_LEN];

	if (cert == NULL || text == NULL || cert_sha256(cert, md) != 0)
		return 0;
	if (strncasecmp(text, "SHA256:", 7) == 0)
		text += 7;
	if (parse_hex(text, want) != 0 && parse_b64(text, want) != 0)
		return 0;
	return memcmp(md, want, sizeof(md)) == 0;
}
