/* Certificate issuance: the self-signed root CA and the leaf certificates it signs
 * (SPEC §3; profile per RFC 5280 §4.2). */
#include "pki/pki_int.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <string.h>

#define SERIAL_BYTES 20  /* RFC 5280 §4.1.2.2: at most 20 octets, positive */
#define ROLE_MAX     255 /* RFC 2985 pkcs-9-ub-pkcs9String */
#define DAYS_MAX     36500
#define SANS_MAX     100
#define DNS_NAME_MAX 253

static int check_text(const char *what, const char *s, size_t max, struct cfl_err *e)
{
	size_t n = strlen(s);

	if (n == 0)
		return cfl_err_set(e, CFL_EINVAL, "%s is empty", what);
	if (n > max)
		return cfl_err_set(e, CFL_EINVAL, "%s '%s' is longer than %zu bytes", what, s, max);
	return 0;
}

/* A dNSName is an IA5String; refusing spaces, controls and non-ASCII here gives a clear error
 * instead of a certificate that no TLS peer will match. */
static int check_san(const char *san, struct cfl_err *e)
{
	int rc = check_text("subject alternative name", san, DNS_NAME_MAX, e);

	if (rc != 0)
		return rc;
	for (const unsigned char *p = (const unsigned char *)san; *p != '\0'; p++) {
		if (*p <= ' ' || *p > '~')
			return cfl_err_set(e, CFL_EINVAL,
			                   "subject alternative name '%s' has a character that is "
			                   "not printable ASCII",
			                   san);
	}
	return 0;
}

static int check_req(const struct cfl_pki_cert_req *req, struct cfl_err *e)
{
	int rc;

	if (req == NULL || req->cn == NULL)
		return cfl_err_set(e, CFL_EINVAL, "certificate request has no common name");
	if ((rc = check_text("common name", req->cn, CFL_PKI_NAME_MAX, e)) != 0 ||
	    (req->org != NULL &&
	     (rc = check_text("organization", req->org, CFL_PKI_NAME_MAX, e)) != 0) ||
	    (req->role != NULL && (rc = check_text("role", req->role, ROLE_MAX, e)) != 0))
		return rc;
	if (req->days < 1 || req->days > DAYS_MAX)
		return cfl_err_set(e, CFL_EINVAL, "validity of %d days for '%s' is not in 1..%d",
		                   req->days, req->cn, DAYS_MAX);
	if (req->n_sans > SANS_MAX || (req->n_sans > 0 && req->sans == NULL))
		return cfl_err_set(e, CFL_EINVAL, "bad list of %zu subject alternative names",
		                   req->n_sans);
	for (size_t i = 0; i < req->n_sans; i++) {
		if (req->sans[i] == NULL)
			return cfl_err_set(e, CFL_EINVAL, "subject alternative name %zu is missing",
			                   i);
		if ((rc = check_san(req->sans[i], e)) != 0)
			return rc;
	}
	return 0;
}

/* A random positive serial of up to 159 bits. Unpredictable serials defeat chosen-prefix
 * collision forgeries (the 2008 MD5 rogue CA relied on guessable ones); CA/B BR §7.1 asks for
 * at least 64 random bits. */
static int set_serial(X509 *x, struct cfl_err *e)
{
	unsigned char buf[SERIAL_BYTES];
	BIGNUM *bn = NULL;
	int rc = 0;

	do {
		if (RAND_bytes(buf, sizeof(buf)) != 1) {
			rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot make serial number");
			goto out;
		}
		buf[0] &= 0x7f;
		BN_free(bn);
		bn = BN_bin2bn(buf, sizeof(buf), NULL);
	} while (bn != NULL && BN_is_zero(bn));
	if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		rc = cfl__pki_openssl_err(e, CFL_ENOMEM, "cannot make serial number");
out:
	BN_free(bn);
	return rc;
}

static int add_name_entry(X509_NAME *name, int nid, const char *value)
{
	return X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (const unsigned char *)value,
	                                  -1, -1, 0);
}

/* Subject DN in NVFlare's order: CN, then O, then the role as unstructuredName. */
static int set_subject(X509 *x, const struct cfl_pki_cert_req *req, struct cfl_err *e)
{
	X509_NAME *name = X509_get_subject_name(x);

	if (!add_name_entry(name, NID_commonName, req->cn) ||
	    (req->org != NULL && !add_name_entry(name, NID_organizationName, req->org)) ||
	    (req->role != NULL && !add_name_entry(name, NID_pkcs9_unstructuredName, req->role)))
		return cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot set subject of '%s'", req->cn);
	return 0;
}

/* notBefore = req->not_before or now; notAfter = that + days, capped at `cap` when given. */
static int set_validity(X509 *x, const struct cfl_pki_cert_req *req, const ASN1_TIME *cap,
                        struct cfl_err *e)
{
	time_t start = req->not_before != 0 ? req->not_before : time(NULL);

	if (X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &start) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), req->days, 0, &start) == NULL)
		return cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot set validity of '%s'", req->cn);
	if (cap != NULL && ASN1_TIME_compare(X509_get0_notAfter(x), cap) > 0 &&
	    !X509_set1_notAfter(x, cap))
		return cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot set validity of '%s'", req->cn);
	if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notBefore(x)) <= 0)
		return cfl_err_set(e, CFL_EINVAL,
		                   "cannot issue '%s': it would start after its issuer expires",
		                   req->cn);
	return 0;
}

/* The subject public key of a P-256 key from its point, without OpenSSL 3.0's encoder and
 * decoder round trip (X509_set_pubkey sets up both for every key, which costs more than the
 * signature). The certificate then has no decoded key attached: finish() parses the signed
 * certificate again. 1 when done, 0 to use X509_set_pubkey. */
static int set_p256_pubkey(X509 *x, const struct cfl_pki_key *k)
{
	unsigned char point[65], *copy;
	size_t len = 0;

	if (k->type != CFL_KEY_P256 ||
	    EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
	                                    sizeof(point), &len) != 1 ||
	    len != sizeof(point) || point[0] != 0x04 || (copy = OPENSSL_malloc(len)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	memcpy(copy, point, len);
	if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
	                            V_ASN1_OBJECT, OBJ_nid2obj(NID_X9_62_prime256v1), copy,
	                            (int)len)) {
		OPENSSL_free(copy);
		ERR_clear_error();
		return 0;
	}
	return 1;
}

/* Everything both kinds of certificate share. *raw: the key was set by set_p256_pubkey. */
static int new_cert(const struct cfl_pki_cert_req *req, const struct cfl_pki_key *k, X509 **out,
                    int *raw, struct cfl_err *e)
{
	X509 *x = X509_new();
	int rc = 0;

	if (x == NULL)
		return cfl__pki_openssl_err(e, CFL_ENOMEM, "cannot create certificate '%s'",
		                            req->cn);
	if (!X509_set_version(x, X509_VERSION_3) ||
	    (!(*raw = set_p256_pubkey(x, k)) && !X509_set_pubkey(x, k->pkey))) {
		rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot create certificate '%s'",
		                          req->cn);
		goto out;
	}
	if ((rc = set_serial(x, e)) != 0 || (rc = set_subject(x, req, e)) != 0)
		goto out;
	*out = x;
	x = NULL;
out:
	X509_free(x);
	return rc;
}

/* Extensions whose values are fixed strings go through OpenSSL's v3 config syntax; nothing
 * from the request is ever formatted into such a string (see add_sans). */
static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value, struct cfl_err *e)
{
	X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
	int ok;

	if (ext == NULL)
		return cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot add extension %s",
		                            OBJ_nid2sn(nid));
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (!ok)
		return cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot add extension %s",
		                            OBJ_nid2sn(nid));
	return 0;
}

/* One SAN entry: an IPv4/IPv6 literal becomes iPAddress (4 or 16 octets, RFC 5280
 * §4.2.1.6), anything else dNSName. */
static GENERAL_NAME *san_entry(const char *s)
{
	unsigned char ip[16];
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_STRING *val = NULL;
	int type, iplen = 0;

	if (gn == NULL)
		return NULL;
	if (inet_pton(AF_INET, s, ip) == 1)
		iplen = 4;
	else if (inet_pton(AF_INET6, s, ip) == 1)
		iplen = 16;
	if (iplen != 0) {
		type = GEN_IPADD;
		val = ASN1_OCTET_STRING_new();
		if (val != NULL && !ASN1_OCTET_STRING_set(val, ip, iplen))
			goto fail;
	} else {
		type = GEN_DNS;
		val = ASN1_IA5STRING_new();
		if (val != NULL && !ASN1_STRING_set(val, s, -1))
			goto fail;
	}
	if (val == NULL)
		goto fail;
	GENERAL_NAME_set0_value(gn, type, val);
	return gn;
fail:
	ASN1_STRING_free(val);
	GENERAL_NAME_free(gn);
	return NULL;
}

/* Built by hand rather than from "DNS:%s" config text, so a name containing ",IP:..." cannot
 * smuggle in extra entries. */
static int add_sans(X509 *x, const struct cfl_pki_cert_req *req, struct cfl_err *e)
{
	GENERAL_NAMES *names;
	int rc = 0;

	if (req->n_sans == 0)
		return 0;
	names = GENERAL_NAMES_new();
	if (names == NULL)
		return cfl__pki_openssl_err(e, CFL_ENOMEM, "cannot add subject alternative names");
	for (size_t i = 0; i < req->n_sans; i++) {
		GENERAL_NAME *gn = san_entry(req->sans[i]);

		if (gn == NULL || !sk_GENERAL_NAME_push(names, gn)) {
			GENERAL_NAME_free(gn);
			rc = cfl__pki_openssl_err(e, CFL_ENOMEM,
			                          "cannot add subject alternative name '%s'",
			                          req->sans[i]);
			goto out;
		}
	}
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) != 1)
		rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot add subject alternative names");
out:
	GENERAL_NAMES_free(names);
	return rc;
}

static int sign_cert(X509 *x, EVP_PKEY *key, const char *cn, struct cfl_err *e)
{
	/* SHA-256 with the key's natural scheme: sha256WithRSAEncryption or ecdsa-with-SHA256
	 * (what X509_sign(x, key, EVP_sha256()) makes, without its per-call digest fetch and
	 * context copy). */
	EVP_MD_CTX *md = cfl__pki_sign_ctx(key, NULL);
	int ok = md != NULL && X509_sign_ctx(x, md) > 0;

	EVP_MD_CTX_free(md);
	if (!ok)
		return cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot sign certificate '%s'", cn);
	return 0;
}

/* The signed certificate in a handle. One whose key was set raw carries no decoded public
 * key: a CA is parsed again from its DER now (it is shared and used to verify others), a leaf
 * only when something needs its key (cfl__pki_cert_full): provisioning only encodes it. */
static int wrap_new(X509 *x, int raw, int leaf, const char *cn, struct cfl_pki_cert **out,
                    struct cfl_err *e)
{
	struct cfl_pki_cert *tmp = NULL;
	int rc;

	if (!raw || leaf)
		rc = raw ? cfl__pki_cert_wrap_lazy(x, out) : cfl__pki_cert_wrap(x, out);
	else if ((rc = cfl__pki_cert_wrap_lazy(x, &tmp)) == 0) {
		X509 *full = cfl__pki_cert_full(tmp);

		rc = full == tmp->x509 ? CFL_ENOMEM : cfl__pki_cert_wrap(full, out);
		cfl_pki_cert_free(tmp);
	}
	if (rc != 0)
		return cfl_err_set(e, rc, "cannot create certificate '%s': out of memory", cn);
	return 0;
}

static int ca_extensions(X509 *x, struct cfl_err *e)
{
	X509V3_CTX ctx;
	int rc;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE", e)) != 0 ||
	    (rc = add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign", e)) != 0 ||
	    (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash", e)) != 0)
		return rc;
	return 0;
}

int cfl_pki_ca_create(const struct cfl_pki_key *key, const struct cfl_pki_cert_req *req,
                      struct cfl_pki_cert **out, struct cfl_err *e)
{
	X509 *x = NULL;
	int rc, raw = 0;

	if (key == NULL || out == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot create CA: no key or output");
	if ((rc = check_req(req, e)) != 0) {
		cfl_err_prefix(e, "cannot create CA");
		return rc;
	}
	if (req->usage != CFL_PKI_USAGE_CA)
		return cfl_err_set(e, CFL_EINVAL, "cannot create CA '%s': usage is not CA",
		                   req->cn);
	ERR_clear_error();
	if ((rc = new_cert(req, key, &x, &raw, e)) != 0)
		return rc;
	/* SANs name TLS endpoints; a root is never one, so req->sans is ignored here. */
	if (!X509_set_issuer_name(x, X509_get_subject_name(x))) {
		rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot create CA '%s'", req->cn);
		goto out;
	}
	if ((rc = set_validity(x, req, NULL, e)) != 0 || (rc = ca_extensions(x, e)) != 0 ||
	    (rc = sign_cert(x, key->pkey, req->cn, e)) != 0)
		goto out;
	rc = wrap_new(x, raw, 0, req->cn, out, e);
out:
	X509_free(x);
	return rc;
}

static int leaf_extensions(X509 *x, X509 *ca, const struct cfl_pki_key *subject,
                           const struct cfl_pki_cert_req *req, struct cfl_err *e)
{
	/* keyEncipherment only means something for RSA key transport (RFC 5480 §3 forbids it
	 * for EC keys). */
	const char *ku = subject->type == CFL_KEY_RSA2048
	                         ? "critical,digitalSignature,keyEncipherment"
	                         : "critical,digitalSignature";
	/* One purpose each: a server certificate that also said clientAuth could pass for a
	 * client in a TLS handshake (the login refuses it either way: cfl_pki_cert_check_usage). */
	const char *eku = req->usage == CFL_PKI_USAGE_SERVER ? "serverAuth" : "clientAuth";
	X509V3_CTX ctx;
	int rc;

	X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
	if ((rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE", e)) != 0 ||
	    (rc = add_ext(x, &ctx, NID_key_usage, ku, e)) != 0 ||
	    (rc = add_ext(x, &ctx, NID_ext_key_usage, eku, e)) != 0 ||
	    (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash", e)) != 0 ||
	    (rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", e)) != 0 ||
	    (rc = add_sans(x, req, e)) != 0)
		return rc;
	return 0;
}

static int check_issuer(const struct cfl_pki_key *ca_key, const struct cfl_pki_cert *ca_cert,
                        struct cfl_err *e)
{
	if (X509_check_ca(ca_cert->x509) == 0)
		return cfl_err_set(e, CFL_EINVAL, "issuer certificate is not a CA");
	if (!cfl_pki_cert_matches_key(ca_cert, ca_key))
		return cfl_err_set(e, CFL_EINVAL, "CA key does not match the CA certificate");
	return 0;
}

int cfl_pki_cert_issue(const struct cfl_pki_key *ca_key, const struct cfl_pki_cert *ca_cert,
                       const struct cfl_pki_key *subject, const struct cfl_pki_cert_req *req,
                       struct cfl_pki_cert **out, struct cfl_err *e)
{
	X509 *x = NULL;
	int rc, raw = 0;

	if (ca_key == NULL || ca_cert == NULL || subject == NULL || out == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot issue certificate: missing argument");
	if ((rc = check_req(req, e)) != 0) {
		cfl_err_prefix(e, "cannot issue certificate");
		return rc;
	}
	if (req->usage != CFL_PKI_USAGE_SERVER && req->usage != CFL_PKI_USAGE_CLIENT)
		return cfl_err_set(e, CFL_EINVAL,
		                   "cannot issue '%s': usage must be server or client", req->cn);
	if ((rc = check_issuer(ca_key, ca_cert, e)) != 0) {
		cfl_err_prefix(e, "cannot issue '%s'", req->cn);
		return rc;
	}
	ERR_clear_error();
	if ((rc = new_cert(req, subject, &x, &raw, e)) != 0)
		return rc;
	if (!X509_set_issuer_name(x, X509_get_subject_name(ca_cert->x509))) {
		rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot issue '%s'", req->cn);
		goto out;
	}
	if ((rc = set_validity(x, req, X509_get0_notAfter(ca_cert->x509), e)) != 0 ||
	    (rc = leaf_extensions(x, ca_cert->x509, subject, req, e)) != 0 ||
	    (rc = sign_cert(x, ca_key->pkey, req->cn, e)) != 0)
		goto out;
	rc = wrap_new(x, raw, 1, req->cn, out, e);
out:
	X509_free(x);
	return rc;
}

int cfl_pki_ca_issue(const struct cfl_pki_key *ca_key, const struct cfl_pki_cert *ca_cert,
                     const struct cfl_pki_key *subject, const struct cfl_pki_cert_req *req,
                     struct cfl_pki_cert **out, struct cfl_err *e)
{
	X509V3_CTX ctx;
	X509 *x = NULL;
	int rc, raw = 0;

	if (ca_key == NULL || ca_cert == NULL || subject == NULL || out == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot issue CA: missing argument");
	if ((rc = check_req(req, e)) != 0)
		return cfl_err_prefix(e, "cannot issue CA");
	if (req->usage != CFL_PKI_USAGE_CA)
		return cfl_err_set(e, CFL_EINVAL, "cannot issue CA '%s': usage is not CA", req->cn);
	if ((rc = check_issuer(ca_key, ca_cert, e)) != 0)
		return cfl_err_prefix(e, "cannot issue CA '%s'", req->cn);
	ERR_clear_error();
	if ((rc = new_cert(req, subject, &x, &raw, e)) != 0)
		return rc;
	if (!X509_set_issuer_name(x, X509_get_subject_name(ca_cert->x509))) {
		rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot issue CA '%s'", req->cn);
		goto out;
	}
	if ((rc = set_validity(x, req, X509_get0_notAfter(ca_cert->x509), e)) != 0 ||
	    (rc = ca_extensions(x, e)) != 0)
		goto out;
	X509V3_set_ctx(&ctx, ca_cert->x509, x, NULL, NULL, 0);
	if ((rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", e)) != 0 ||
	    (rc = sign_cert(x, ca_key->pkey, req->cn, e)) != 0)
		goto out;
	rc = wrap_new(x, raw, 0, req->cn, out, e);
out:
	X509_free(x);
	return rc;
}
