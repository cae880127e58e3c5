/* Detached signatures over byte strings (kit files, tokens): SHA-256 with RSA-PSS or ECDSA. */
#include "pki/pki_int.h"

#include <openssl/err.h>
#include <openssl/rsa.h>

#include <pthread.h>
#include <stdlib.h>

/* Larger than any signature our key types make (RSA-4096 is 512 bytes, P-256 ECDSA 72). */
#define SIG_MAX 1024

/* NVFlare signs kits with RSA-PSS, MGF1-SHA256 and the maximal salt; a verifier must take
 * whatever salt length the signer used, hence AUTO on that side. */
static int set_pss(EVP_PKEY_CTX *pctx, int saltlen)
{
	return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
	       EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0 &&
	       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen) > 0;
}

/* SHA-256 fetched once: EVP_sha256() makes every EVP_DigestSignInit fetch it again (a lookup
 * under a lock the provisioning threads share). */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	ERR_clear_error();
}

const EVP_MD *cfl__pki_sha256(void)
{
	pthread_once(&sha256_once, fetch_sha256);
	return sha256 != NULL ? sha256 : EVP_sha256();
}

/* A context of one signature with `key` and SHA-256. FINALISE: the signature is computed in
 * this context, not in a copy of it made so that it could be continued (the default). */
EVP_MD_CTX *cfl__pki_sign_ctx(EVP_PKEY *key, EVP_PKEY_CTX **pctx)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (md == NULL || EVP_DigestSignInit(md, pctx, cfl__pki_sha256(), NULL, key) != 1) {
		EVP_MD_CTX_free(md);
		return NULL;
	}
	EVP_MD_CTX_set_flags(md, EVP_MD_CTX_FLAG_FINALISE);
	return md;
}

int cfl_pki_sign(const struct cfl_pki_key *key, const void *data, size_t len, uint8_t **sig,
                 size_t *sig_len, struct cfl_err *e)
{
	static const unsigned char empty[1];
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *buf = NULL;
	size_t n = 0;
	int rc = 0;

	if (key == NULL || (data == NULL && len > 0) || sig == NULL || sig_len == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot sign: missing argument");
	if (data == NULL)
		data = empty;
	ERR_clear_error();
	md = cfl__pki_sign_ctx(key->pkey, &pctx);
	if (md == NULL || (key->type == CFL_KEY_RSA2048 && !set_pss(pctx, RSA_PSS_SALTLEN_MAX)) ||
	    EVP_DigestSign(md, NULL, &n, data, len) != 1) {
		rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot sign");
		goto out;
	}
	buf = malloc(n);
	if (buf == NULL) {
		rc = cfl_err_set(e, CFL_ENOMEM, "cannot sign: out of memory");
		goto out;
	}
	/* The first call gave an upper bound; ECDSA's DER length is only known now. */
	if (EVP_DigestSign(md, buf, &n, data, len) != 1) {
		rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot sign");
		goto out;
	}
	*sig = buf;
	*sig_len = n;
	buf = NULL;
out:
	free(buf);
	EVP_MD_CTX_free(md);
	return rc;
}

int cfl_pki_verify(const struct cfl_pki_cert *cert, const void *data, size_t len,
                   const uint8_t *sig, size_t sig_len, struct cfl_err *e)
{
	static const unsigned char empty[1];
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	enum cfl_key_type type;
	EVP_PKEY *pub;
	int rc = 0, ok;

	if (cert == NULL || (data == NULL && len > 0) || sig == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot verify signature: missing argument");
	if (data == NULL)
		data = empty;
	if (sig_len == 0 || sig_len > SIG_MAX)
		return cfl_err_set(e, CFL_EVERIFY, "bad signature: length %zu", sig_len);
	ERR_clear_error();
	pub = X509_get0_pubkey(cfl__pki_cert_full(cert));
	if (pub == NULL || cfl__pki_key_classify(pub, &type) != 0)
		return cfl__pki_openssl_err(e, CFL_EUNSUPP,
		                            "cannot verify signature: unsupported key type");
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pub) != 1 ||
	    (type == CFL_KEY_RSA2048 && !set_pss(pctx, RSA_PSS_SALTLEN_AUTO))) {
		rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot verify signature");
		goto out;
	}
	ok = EVP_DigestVerify(md, sig, sig_len, data, len);
	if (ok != 1) {
		/* 0 is a plain mismatch; < 0 is a malformed signature. Both mean "not signed by
		 * this key", and OpenSSL's reasons add nothing the caller can act on. */
		ERR_clear_error();
		rc = cfl_err_set(e, CFL_EVERIFY, "bad signature");
	}
out:
	EVP_MD_CTX_free(md);
	return rc;
}
