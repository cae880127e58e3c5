/* Certificate revocation lists: X.509 v2 CRLs signed by the issuing CA (RFC 5280 §5). */
#include "pki/pki_int.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CRL_DAYS_MAX 3650

static const struct {
	const char *name;
	int code;
} reasons[] = {
        {"unspecified", 0},        {"keycompromise", 1}, {"cacompromise", 2},
        {"affiliationchanged", 3}, {"superseded", 4},    {"cessationofoperation", 5},
        {"certificatehold", 6},    {"removefromcrl", 8}, {"privilegewithdrawn", 9},
        {"aacompromise", 10},
};

int cfl_pki_crl_reason_parse(const char *name, int *code)
{
	char flat[32];
	size_t n = 0;

	if (name == NULL || code == NULL)
		return CFL_EINVAL;
	for (const char *p = name; *p != '\0'; p++) {
		if (*p == '-' || *p == '_')
			continue;
		if (n + 1 >= sizeof(flat))
			return CFL_EINVAL;
		flat[n++] = *p;
	}
	flat[n] = '\0';
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (strcasecmp(flat, reasons[i].name) == 0) {
			*code = reasons[i].code;
			return 0;
		}
	}
	return CFL_EINVAL;
}

/* Hex digits only (no sign), at most 20 octets. */
static int parse_serial(const char *hex, BIGNUM **bn)
{
	size_t n = hex != NULL ? strlen(hex) : 0;

	if (n == 0 || n > 40 || strspn(hex, "0123456789abcdefABCDEF") != n)
		return CFL_EINVAL;
	return BN_hex2bn(bn, hex) == (int)n ? 0 : CFL_EINVAL;
}

static int add_entry(X509_CRL *crl, const struct cfl_pki_revoked *r, struct cfl_err *e)
{
	X509_REVOKED *rev = X509_REVOKED_new();
	ASN1_ENUMERATED *reason = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *when = NULL;
	BIGNUM *bn = NULL;
	int ok;

	ok = rev != NULL && parse_serial(r->serial_hex, &bn) == 0 &&
	     (serial = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
	     X509_REVOKED_set_serialNumber(rev, serial) &&
	     (when = ASN1_TIME_set(NULL, r->when)) != NULL &&
	     X509_REVOKED_set_revocationDate(rev, when);
	if (ok && r->reason >= 0) {
		reason = ASN1_ENUMERATED_new();
		ok = reason != NULL && ASN1_ENUMERATED_set(reason, r->reason) &&
		     X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0) == 1;
	}
	if (ok)
		ok = X509_CRL_add0_revoked(crl, rev);
	ASN1_ENUMERATED_free(reason);
	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(when);
	BN_free(bn);
	if (!ok) {
		X509_REVOKED_free(rev);
		return cfl__pki_openssl_err(e, CFL_EINVAL, "cannot add serial '%s' to the CRL",
		                            r->serial_hex != NULL ? r->serial_hex : "?");
	}
	return 0;
}

static int crl_header(X509_CRL *crl, const struct cfl_pki_cert *ca, uint64_t number, int days,
                      time_t this_update, struct cfl_err *e)
{
	time_t start = this_update != 0 ? this_update : time(NULL);
	ASN1_TIME *last = ASN1_TIME_set(NULL, start);
	ASN1_TIME *next = ASN1_TIME_adj(NULL, start, days, 0);
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	int ok;

	ok = last != NULL && next != NULL && num != NULL && X509_CRL_set_version(crl, 1) &&
	     X509_CRL_set_issuer_name(crl, X509_get_subject_name(cfl__pki_cert_full(ca))) &&
	     X509_CRL_set1_lastUpdate(crl, last) && X509_CRL_set1_nextUpdate(crl, next) &&
	     ASN1_INTEGER_set_uint64(num, number) &&
	     X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) == 1;
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	ASN1_INTEGER_free(num);
	if (!ok)
		return cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot make the CRL header");
	return 0;
}

/* AKI from the CA's SKI, so that path builders find the right key. */
static int crl_aki(X509_CRL *crl, const struct cfl_pki_cert *ca, struct cfl_err *e)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, cfl__pki_cert_full(ca), NULL, NULL, crl, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	ok = ext != NULL && X509_CRL_add_ext(crl, ext, -1);
	X509_EXTENSION_free(ext);
	if (!ok)
		return cfl__pki_openssl_err(e, CFL_ECRYPTO,
		                            "cannot add the CRL's authority key id");
	return 0;
}

static int crl_pem(X509_CRL *crl, char **pem, size_t *len, struct cfl_err *e)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int rc;

	if (bio == NULL || !PEM_write_bio_X509_CRL(bio, crl))
		rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot encode the CRL");
	else
		rc = cfl__pki_bio_text(bio, "the CRL", pem, len, e);
	BIO_free(bio);
	return rc;
}

int cfl_pki_crl_create(const struct cfl_pki_key *ca_key, const struct cfl_pki_cert *ca_cert,
                       const struct cfl_pki_revoked *list, size_t n, uint64_t number, int days,
                       time_t this_update, char **pem, size_t *len, struct cfl_err *e)
{
	X509_CRL *crl;
	int rc = 0;

	if (ca_key == NULL || ca_cert == NULL || (n > 0 && list == NULL) || pem == NULL ||
	    len == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot make CRL: missing argument");
	if (days < 1 || days > CRL_DAYS_MAX)
		return cfl_err_set(e, CFL_EINVAL, "CRL validity of %d days is not in 1..%d", days,
		                   CRL_DAYS_MAX);
	if (!cfl_pki_cert_matches_key(ca_cert, ca_key))
		return cfl_err_set(e, CFL_EINVAL, "cannot make CRL: CA key does not match the CA");
	ERR_clear_error();
	crl = X509_CRL_new();
	if (crl == NULL)
		return cfl__pki_openssl_err(e, CFL_ENOMEM, "cannot make CRL");
	rc = crl_header(crl, ca_cert, number, days, this_update, e);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = add_entry(crl, &list[i], e);
	if (rc == 0)
		rc = crl_aki(crl, ca_cert, e);
	if (rc == 0 && (!X509_CRL_sort(crl) || X509_CRL_sign(crl, ca_key->pkey, EVP_sha256()) <= 0))
		rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot sign the CRL");
	if (rc == 0)
		rc = crl_pem(crl, pem, len, e);
	X509_CRL_free(crl);
	return rc;
}
