/* A project's trust (SPEC §3, issue 10): the anchor, the issuing chain below it, the issuing
 * CA's CRLs. A leaf is accepted when it chains to the anchor through the issuing chain, is
 * issued by exactly the issuing CA (not by another CA the anchor signed), is valid, and is on
 * no loaded CRL. */
#include "pki/pki_int.h"
#include "util/fs.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cfl_pki_trust {
	struct cfl_pki_cert *anchor;
	struct cfl_pki_cert *issuer; /* chain[0] or the anchor; a reference of its own */
	STACK_OF(X509) * chain;      /* issuing CA first, anchor excluded */
	STACK_OF(X509_CRL) * crls;   /* of the issuing CA, signatures checked */
};

static void crls_free(STACK_OF(X509_CRL) * crls)
{
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
}

void cfl_pki_trust_free(struct cfl_pki_trust *t)
{
	if (t == NULL)
		return;
	cfl_pki_cert_free(t->anchor);
	cfl_pki_cert_free(t->issuer);
	sk_X509_pop_free(t->chain, X509_free);
	crls_free(t->crls);
	free(t);
}

const struct cfl_pki_cert *cfl_pki_trust_issuer(const struct cfl_pki_trust *t)
{
	return t != NULL ? t->issuer : NULL;
}

const struct cfl_pki_cert *cfl_pki_trust_anchor(const struct cfl_pki_trust *t)
{
	return t != NULL ? t->anchor : NULL;
}

/* Runs OpenSSL's path validation of `x` against the anchor with the issuing chain as the
 * only intermediates. On success and when `path` is not NULL, *path receives the built
 * chain (leaf first, the caller frees it). Returns the X509_V_ code (X509_V_OK = 0) or -1. */
static int validate(const struct cfl_pki_trust *t, X509 *x, time_t at, int check_time,
                    STACK_OF(X509) * *path)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_STORE *store = X509_STORE_new();
	X509_VERIFY_PARAM *param;
	int rc = -1;

	if (ctx == NULL || store == NULL ||
	    !X509_STORE_add_cert(store, cfl__pki_cert_full(t->anchor)) ||
	    !X509_STORE_CTX_init(ctx, store, x, t->chain))
		goto out;
	param = X509_STORE_CTX_get0_param(ctx);
	if (!check_time)
		X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_NO_CHECK_TIME);
	else if (at != 0)
		X509_VERIFY_PARAM_set_time(param, at);
	if (X509_verify_cert(ctx) == 1) {
		rc = X509_V_OK;
		if (path != NULL)
			*path = X509_STORE_CTX_get1_chain(ctx);
	} else {
		rc = X509_STORE_CTX_get_error(ctx);
	}
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

static int cn_of(X509 *x, char *buf, size_t size)
{
	struct cfl_pki_cert c = {.x509 = x};

	if (cfl_pki_cert_cn(&c, buf, size) != 0)
		snprintf(buf, size, "?");
	return 0;
}

/* Each certificate of the issuing chain is a CA that chains to the anchor. */
static int check_chain(const struct cfl_pki_trust *t, struct cfl_err *e)
{
	char cn[CFL_PKI_NAME_MAX + 1];
	int v;

	for (int i = 0; i < sk_X509_num(t->chain); i++) {
		X509 *x = sk_X509_value(t->chain, i);

		cn_of(x, cn, sizeof(cn));
		if (X509_check_ca(x) == 0)
			return cfl_err_set(e, CFL_EVERIFY,
			                   "issuing chain certificate '%s' is not a CA", cn);
		v = validate(t, x, 0, 0, NULL);
		if (v != X509_V_OK)
			return cfl_err_set(
			        e, CFL_EVERIFY,
			        "issuing CA '%s' does not chain to the trust anchor: %s", cn,
			        v < 0 ? "internal error" : X509_verify_cert_error_string(v));
	}
	return 0;
}

static int wrap_into(X509 *x, struct cfl_pki_cert **out, struct cfl_err *e)
{
	if (cfl__pki_cert_wrap(x, out) != 0)
		return cfl_err_set(e, CFL_ENOMEM, "cannot build trust: out of memory");
	return 0;
}

int cfl_pki_trust_new(const struct cfl_pki_cert *anchor, struct cfl_pki_cert *const *chain,
                      size_t n_chain, struct cfl_pki_trust **out, struct cfl_err *e)
{
	struct cfl_pki_trust *t;
	int rc;

	if (anchor == NULL || out == NULL || (n_chain > 0 && chain == NULL) ||
	    n_chain > CFL_PKI_CHAIN_MAX)
		return cfl_err_set(e, CFL_EINVAL, "cannot build trust: bad argument");
	t = calloc(1, sizeof(*t));
	if (t == NULL || (t->chain = sk_X509_new_null()) == NULL)
		goto nomem;
	if ((rc = wrap_into(cfl__pki_cert_full(anchor), &t->anchor, e)) != 0)
		goto fail;
	for (size_t i = 0; i < n_chain; i++) {
		/* A root at the end of the file is the anchor again, not an intermediate. */
		if (i == n_chain - 1 &&
		    X509_cmp(cfl__pki_cert_full(chain[i]), cfl__pki_cert_full(anchor)) == 0)
			break;
		if (!X509_add_cert(t->chain, cfl__pki_cert_full(chain[i]), X509_ADD_FLAG_UP_REF))
			goto nomem;
	}
	rc = wrap_into(sk_X509_num(t->chain) > 0 ? sk_X509_value(t->chain, 0)
	                                         : cfl__pki_cert_full(anchor),
	               &t->issuer, e);
	if (rc != 0 || (rc = check_chain(t, e)) != 0)
		goto fail;
	*out = t;
	return 0;
nomem:
	rc = cfl_err_set(e, CFL_ENOMEM, "cannot build trust: out of memory");
fail:
	ERR_clear_error();
	cfl_pki_trust_free(t);
	return rc;
}

int cfl_pki_trust_load(const char *anchor_file, const char *own_cert_file,
                       struct cfl_pki_trust **out, struct cfl_err *e)
{
	struct cfl_pki_cert **own = NULL;
	struct cfl_pki_cert *anchor = NULL;
	size_t n = 0;
	int rc;

	if (anchor_file == NULL || out == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot load trust: no anchor file");
	if ((rc = cfl_pki_cert_load(anchor_file, &anchor, e)) != 0)
		return rc;
	if (own_cert_file != NULL && (rc = cfl_pki_certs_load(own_cert_file, &own, &n, e)) != 0)
		goto out;
	/* own[0] is the holder's leaf; the issuing chain follows it. */
	rc = cfl_pki_trust_new(anchor, n > 1 ? own + 1 : NULL, n > 1 ? n - 1 : 0, out, e);
	if (rc != 0 && own_cert_file != NULL)
		cfl_err_prefix(e, "trust of '%s' and '%s'", anchor_file, own_cert_file);
	else if (rc != 0)
		cfl_err_prefix(e, "trust of '%s'", anchor_file);
out:
	cfl_pki_certs_free(own, n);
	cfl_pki_cert_free(anchor);
	return rc;
}

int cfl_pki_trust_chain_pem(const struct cfl_pki_trust *t, char **pem, size_t *len,
                            struct cfl_err *e)
{
	BIO *bio;
	int rc = 0;

	if (t == NULL || pem == NULL || len == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot encode chain: bad argument");
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "cannot encode chain: out of memory");
	for (int i = 0; i < sk_X509_num(t->chain) && rc == 0; i++) {
		if (!PEM_write_bio_X509(bio, sk_X509_value(t->chain, i)))
			rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot encode chain");
	}
	if (rc == 0)
		rc = cfl__pki_bio_text(bio, "chain", pem, len, e);
	BIO_free(bio);
	return rc;
}

/* ---- CRLs ---- */

/* One CRL: issued and signed by the issuing CA, not past its nextUpdate. */
static int check_crl(const struct cfl_pki_trust *t, X509_CRL *crl, size_t i, struct cfl_err *e)
{
	X509 *ca = cfl__pki_cert_full(t->issuer);
	const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
	char cn[CFL_PKI_NAME_MAX + 1];

	cn_of(ca, cn, sizeof(cn));
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0)
		return cfl_err_set(e, CFL_EVERIFY, "CRL %zu is not issued by the issuing CA '%s'",
		                   i + 1, cn);
	if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1)
		return cfl_err_set(e, CFL_EVERIFY,
		                   "CRL %zu: signature does not verify with the issuing CA '%s'",
		                   i + 1, cn);
	if (next == NULL)
		return cfl_err_set(e, CFL_EVERIFY, "CRL %zu has no nextUpdate", i + 1);
	if (X509_cmp_current_time(next) <= 0)
		return cfl_err_set(e, CFL_EVERIFY, "CRL %zu has expired (nextUpdate passed)",
		                   i + 1);
	return 0;
}

/* Reads every CRL of the PEM text into *out (at least one). */
static int parse_crls(const char *pem, size_t len, STACK_OF(X509_CRL) * *out, struct cfl_err *e)
{
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509_CRL *crl;
	unsigned long err;
	int rc = 0;

	if (crls == NULL || bio == NULL) {
		rc = cfl_err_set(e, CFL_ENOMEM, "cannot read CRL: out of memory");
		goto out;
	}
	while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_CRL_num(crls) >= CFL_PKI_CRL_MAX || !sk_X509_CRL_push(crls, crl)) {
			X509_CRL_free(crl);
			rc = cfl_err_set(e, CFL_ETOOBIG, "more than %d CRLs", CFL_PKI_CRL_MAX);
			goto out;
		}
	}
	err = ERR_peek_last_error();
	if (sk_X509_CRL_num(crls) == 0 || ERR_GET_LIB(err) != ERR_LIB_PEM ||
	    ERR_GET_REASON(err) != PEM_R_NO_START_LINE) {
		rc = cfl__pki_openssl_err(e, CFL_EPARSE, "CRL %d does not parse",
		                          sk_X509_CRL_num(crls) + 1);
		goto out;
	}
	*out = crls;
	crls = NULL;
out:
	ERR_clear_error();
	BIO_free(bio);
	crls_free(crls);
	return rc;
}

int cfl_pki_trust_set_crl_pem(struct cfl_pki_trust *t, const char *pem, size_t len,
                              struct cfl_err *e)
{
	STACK_OF(X509_CRL) *crls = NULL;
	int rc;

	if (t == NULL || pem == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot load CRL: bad argument");
	if (len > CFL_PKI_CRL_FILE_MAX)
		return cfl_err_set(e, CFL_ETOOBIG, "CRL larger than %zu bytes",
		                   CFL_PKI_CRL_FILE_MAX);
	ERR_clear_error();
	if ((rc = parse_crls(pem, len, &crls, e)) != 0)
		return rc;
	for (int i = 0; i < sk_X509_CRL_num(crls); i++) {
		if ((rc = check_crl(t, sk_X509_CRL_value(crls, i), (size_t)i, e)) != 0) {
			ERR_clear_error();
			crls_free(crls);
			return rc;
		}
	}
	crls_free(t->crls);
	t->crls = crls;
	return 0;
}

int cfl_pki_trust_set_crl(struct cfl_pki_trust *t, const char *crl_file, struct cfl_err *e)
{
	char *pem = NULL;
	size_t len = 0;
	int rc;

	if (t == NULL || crl_file == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot load CRL: bad argument");
	rc = cfl__fs_read_file(crl_file, CFL_PKI_CRL_FILE_MAX, &pem, &len, e);
	if (rc != 0)
		return rc;
	rc = cfl_pki_trust_set_crl_pem(t, pem, len, e);
	if (rc != 0)
		cfl_err_prefix(e, "CRL '%s' refused", crl_file);
	free(pem);
	return rc;
}

int cfl_pki_trust_is_revoked(const struct cfl_pki_trust *t, const struct cfl_pki_cert *cert)
{
	X509_REVOKED *rev = NULL;

	if (t == NULL || cert == NULL || t->crls == NULL)
		return 0;
	for (int i = 0; i < sk_X509_CRL_num(t->crls); i++) {
		X509_CRL *crl = sk_X509_CRL_value(t->crls, i);

		if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
		                  X509_get_issuer_name(cfl__pki_cert_full(cert))) != 0)
			continue;
		/* 2 = removeFromCRL (a delta CRL's un-hold): not revoked. */
		if (X509_CRL_get0_by_serial(crl, &rev,
		                            X509_get0_serialNumber(cfl__pki_cert_full(cert))) == 1)
			return 1;
	}
	return 0;
}

/* ---- verification ---- */

int cfl_pki_trust_verify_validated(const struct cfl_pki_trust *t, const struct cfl_pki_cert *cert,
                                   const struct cfl_pki_cert *validated_by, struct cfl_err *e)
{
	char cn[CFL_PKI_NAME_MAX + 1];

	if (t == NULL || cert == NULL || validated_by == NULL ||
	    X509_cmp(cfl__pki_cert_full(validated_by), cfl__pki_cert_full(t->issuer)) != 0 ||
	    X509_check_issued(cfl__pki_cert_full(t->issuer), cfl__pki_cert_full(cert)) !=
	            X509_V_OK ||
	    X509_cmp_current_time(X509_get0_notBefore(cfl__pki_cert_full(cert))) >= 0 ||
	    X509_cmp_current_time(X509_get0_notAfter(cfl__pki_cert_full(cert))) <= 0)
		return cfl_pki_trust_verify(t, cert, 0, e);
	if (!cfl_pki_trust_is_revoked(t, cert))
		return 0;
	cn_of(cfl__pki_cert_full(cert), cn, sizeof(cn));
	return cfl_err_set(e, CFL_EVERIFY, "certificate '%s' verify failed: certificate revoked",
	                   cn);
}

int cfl_pki_trust_verify(const struct cfl_pki_trust *t, const struct cfl_pki_cert *cert, time_t at,
                         struct cfl_err *e)
{
	STACK_OF(X509) *path = NULL;
	char cn[CFL_PKI_NAME_MAX + 1], ca[CFL_PKI_NAME_MAX + 1];
	int v, rc = 0;

	if (t == NULL || cert == NULL)
		return cfl_err_set(e, CFL_EINVAL,
		                   "cannot verify certificate: no trust or certificate");
	cn_of(cfl__pki_cert_full(cert), cn, sizeof(cn));
	cn_of(cfl__pki_cert_full(t->issuer), ca, sizeof(ca));
	v = validate(t, cfl__pki_cert_full(cert), at, 1, &path);
	if (v != X509_V_OK)
		return cfl_err_set(e, v < 0 ? CFL_ENOMEM : CFL_EVERIFY,
		                   "certificate '%s' verify failed: %s", cn,
		                   v < 0 ? "internal error" : X509_verify_cert_error_string(v));
	/* path = leaf, its issuer, ..., anchor. A lone entry is the anchor itself. */
	if (sk_X509_num(path) < 2 ||
	    X509_cmp(sk_X509_value(path, 1), cfl__pki_cert_full(t->issuer)) != 0)
		rc = cfl_err_set(e, CFL_EVERIFY,
		                 "certificate '%s' is not issued by the project's issuing CA '%s'",
		                 cn, ca);
	else if (cfl_pki_trust_is_revoked(t, cert))
		rc = cfl_err_set(e, CFL_EVERIFY,
		                 "certificate '%s' verify failed: certificate revoked", cn);
	sk_X509_pop_free(path, X509_free);
	return rc;
}
