/* PKCS#10 certificate signing requests: a key's holder asks for a certificate without the
 * key leaving its machine (issue 10). */
#include "pki/pki_int.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <stdlib.h>
#include <string.h>

struct cfl_pki_csr {
	X509_REQ *req;
};

static int add_name(X509_NAME *name, int nid, const char *value)
{
	return X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (const unsigned char *)value,
	                                  -1, -1, 0);
}

static int req_pem(X509_REQ *req, char **pem, size_t *len, struct cfl_err *e)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int rc;

	if (bio == NULL || !PEM_write_bio_X509_REQ(bio, req))
		rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot encode the request");
	else
		rc = cfl__pki_bio_text(bio, "the request", pem, len, e);
	BIO_free(bio);
	return rc;
}

int cfl_pki_csr_create(const struct cfl_pki_key *key, const struct cfl_pki_cert_req *req,
                       char **pem, size_t *len, struct cfl_err *e)
{
	X509_REQ *x;
	X509_NAME *name;
	int rc = 0;

	if (key == NULL || req == NULL || req->cn == NULL || pem == NULL || len == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot make a request: missing argument");
	if (strlen(req->cn) == 0 || strlen(req->cn) > CFL_PKI_NAME_MAX ||
	    (req->org != NULL && (strlen(req->org) == 0 || strlen(req->org) > CFL_PKI_NAME_MAX)))
		return cfl_err_set(e, CFL_EINVAL,
		                   "cannot make a request: name or org empty or longer than %d",
		                   CFL_PKI_NAME_MAX);
	ERR_clear_error();
	x = X509_REQ_new();
	if (x == NULL)
		return cfl__pki_openssl_err(e, CFL_ENOMEM, "cannot make a request");
	name = X509_REQ_get_subject_name(x);
	if (!X509_REQ_set_version(x, X509_REQ_VERSION_1) || !X509_REQ_set_pubkey(x, key->pkey) ||
	    !add_name(name, NID_commonName, req->cn) ||
	    (req->org != NULL && !add_name(name, NID_organizationName, req->org)) ||
	    (req->role != NULL && !add_name(name, NID_pkcs9_unstructuredName, req->role)) ||
	    X509_REQ_sign(x, key->pkey, EVP_sha256()) <= 0)
		rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot make a request for '%s'",
		                          req->cn);
	if (rc == 0)
		rc = req_pem(x, pem, len, e);
	X509_REQ_free(x);
	return rc;
}

void cfl_pki_csr_free(struct cfl_pki_csr *csr)
{
	if (csr == NULL)
		return;
	X509_REQ_free(csr->req);
	free(csr);
}

static int check_csr(X509_REQ *x, struct cfl_err *e)
{
	EVP_PKEY *pub = X509_REQ_get0_pubkey(x);
	enum cfl_key_type type;
	int rc;

	if (pub == NULL)
		return cfl__pki_openssl_err(e, CFL_EPARSE, "CSR has no usable public key");
	if ((rc = cfl__pki_key_classify(pub, &type)) != 0)
		return cfl_err_set(e, rc, "CSR key is neither P-256 nor RSA of 2048 bits or more");
	if (X509_REQ_verify(x, pub) != 1)
		return cfl__pki_openssl_err(e, CFL_EVERIFY, "CSR signature does not verify");
	return 0;
}

int cfl_pki_csr_load_pem(const char *pem, size_t len, struct cfl_pki_csr **out, struct cfl_err *e)
{
	struct cfl_pki_csr *csr;
	X509_REQ *x;
	BIO *bio;
	int rc;

	if (pem == NULL || out == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot parse CSR: no input or output");
	if (len > CFL_PKI_CERT_FILE_MAX)
		return cfl_err_set(e, CFL_ETOOBIG, "cannot parse CSR: larger than %zu bytes",
		                   CFL_PKI_CERT_FILE_MAX);
	ERR_clear_error();
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		return cfl__pki_openssl_err(e, CFL_ENOMEM, "cannot parse CSR");
	x = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (x == NULL)
		return cfl__pki_openssl_err(e, CFL_EPARSE, "cannot parse CSR: not a PEM request");
	if ((rc = check_csr(x, e)) != 0) {
		ERR_clear_error();
		X509_REQ_free(x);
		return rc;
	}
	csr = malloc(sizeof(*csr));
	if (csr == NULL) {
		X509_REQ_free(x);
		return cfl_err_set(e, CFL_ENOMEM, "cannot parse CSR: out of memory");
	}
	csr->req = x;
	*out = csr;
	return 0;
}

static int subject_field(const struct cfl_pki_csr *csr, int nid, char *buf, size_t size)
{
	if (csr == NULL)
		return CFL_EINVAL;
	return cfl__pki_name_field(X509_REQ_get_subject_name(csr->req), nid, buf, size);
}

int cfl_pki_csr_cn(const struct cfl_pki_csr *csr, char *buf, size_t size)
{
	return subject_field(csr, NID_commonName, buf, size);
}

int cfl_pki_csr_org(const struct cfl_pki_csr *csr, char *buf, size_t size)
{
	return subject_field(csr, NID_organizationName, buf, size);
}

int cfl_pki_csr_role(const struct cfl_pki_csr *csr, char *buf, size_t size)
{
	return subject_field(csr, NID_pkcs9_unstructuredName, buf, size);
}

int cfl_pki_csr_public_key(const struct cfl_pki_csr *csr, struct cfl_pki_key **out,
                           struct cfl_err *e)
{
	struct cfl_pki_key *key;
	EVP_PKEY *pub;
	int rc;

	if (csr == NULL || out == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot read CSR key: bad argument");
	key = calloc(1, sizeof(*key));
	pub = X509_REQ_get_pubkey(csr->req);
	if (key == NULL || pub == NULL) {
		free(key);
		EVP_PKEY_free(pub);
		return cfl__pki_openssl_err(e, CFL_ENOMEM, "cannot read CSR key");
	}
	if ((rc = cfl__pki_key_classify(pub, &key->type)) != 0) {
		EVP_PKEY_free(pub);
		free(key);
		return cfl_err_set(e, rc, "CSR key type is not supported");
	}
	key->pkey = pub;
	*out = key;
	return 0;
}
