/* Private keys: generation, PEM files, classification. */
#include "pki/pki_int.h"
#include "util/fs.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* NVFlare parity and today's floor for RSA; P-256 is the only curve we issue or accept. */
#define RSA_MIN_BITS 2048

static int is_p256(const EVP_PKEY *pkey)
{
	char group[64];
	size_t len = 0;

	/* Keys with explicit curve parameters have no group name and are refused here: they
	 * are a known source of parser bugs and no peer of ours produces them. */
	if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
	                                    &len))
		return 0;
	return OBJ_txt2nid(group) == NID_X9_62_prime256v1;
}

int cfl__pki_key_classify(const EVP_PKEY *pkey, enum cfl_key_type *type)
{
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pkey) < RSA_MIN_BITS)
			return CFL_EUNSUPP;
		*type = CFL_KEY_RSA2048;
		return 0;
	case EVP_PKEY_EC:
		if (!is_p256(pkey))
			return CFL_EUNSUPP;
		*type = CFL_KEY_P256;
		return 0;
	default:
		return CFL_EUNSUPP;
	}
}

static int wrap_key(EVP_PKEY *pkey, enum cfl_key_type type, struct cfl_pki_key **out,
                    struct cfl_err *e)
{
	struct cfl_pki_key *key = malloc(sizeof(*key));

	if (key == NULL) {
		EVP_PKEY_free(pkey);
		return cfl_err_set(e, CFL_ENOMEM, "cannot allocate key: out of memory");
	}
	key->pkey = pkey;
	key->type = type;
	*out = key;
	return 0;
}

/* The P-256 group as key parameters, made once: a key generated from it copies the group,
 * where EVP_PKEY_Q_keygen builds it from the curve's numbers (and looks the algorithm up by
 * name) for every key, which costs a third of the key. NULL when it could not be made. */
static EVP_PKEY *p256_params;
static pthread_once_t p256_once = PTHREAD_ONCE_INIT;

static void make_p256_params(void)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);

	/* Named curve: the keys encode the curve by name, never as explicit parameters. */
	if (ctx == NULL || EVP_PKEY_paramgen_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_group_name(ctx, "P-256") != 1 ||
	    EVP_PKEY_paramgen(ctx, &p256_params) != 1)
		p256_params = NULL;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
}

static EVP_PKEY *p256_generate(void)
{
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;

	pthread_once(&p256_once, make_p256_params);
	if (p256_params == NULL)
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, p256_params, NULL);
	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_generate(ctx, &pkey) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

int cfl_pki_key_generate(enum cfl_key_type type, struct cfl_pki_key **out, struct cfl_err *e)
{
	EVP_PKEY *pkey;

	if (out == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot generate key: no output");
	ERR_clear_error();
	switch (type) {
	case CFL_KEY_P256:
		pkey = p256_generate();
		break;
	case CFL_KEY_RSA2048:
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		break;
	default:
		return cfl_err_set(e, CFL_EINVAL, "cannot generate key: unknown key type %d",
		                   (int)type);
	}
	if (pkey == NULL)
		return cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot generate %s key",
		                            cfl_pki_key_type_name(type));
	return wrap_key(pkey, type, out, e);
}

/* Encrypted keys are not part of a kit; answering "no passphrase" keeps OpenSSL from ever
 * prompting on the terminal of a server process. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static int parse_key(const char *path, const char *pem, size_t len, struct cfl_pki_key **out,
                     struct cfl_err *e)
{
	enum cfl_key_type type;
	EVP_PKEY *pkey = NULL;
	BIO *bio;
	int rc;

	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		return cfl__pki_openssl_err(e, CFL_ENOMEM, "cannot load key '%s'", path);
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (pkey == NULL)
		return cfl__pki_openssl_err(
		        e, CFL_EPARSE, "cannot load key '%s': not an unencrypted PEM private key",
		        path);
	rc = cfl__pki_key_classify(pkey, &type);
	if (rc != 0) {
		cfl_err_set(e, rc, "cannot load key '%s': unsupported key type (want %s or %s)",
		            path, cfl_pki_key_type_name(CFL_KEY_P256),
		            cfl_pki_key_type_name(CFL_KEY_RSA2048));
		goto out;
	}
	/* wrap_key owns pkey from here on, even when it fails. */
	rc = wrap_key(pkey, type, out, e);
	pkey = NULL;
out:
	EVP_PKEY_free(pkey);
	return rc;
}

int cfl_pki_key_load(const char *path, struct cfl_pki_key **out, struct cfl_err *e)
{
	char *pem = NULL;
	size_t len = 0;
	int rc;

	if (path == NULL || out == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot load key: no path or output");
	ERR_clear_error();
	rc = cfl__fs_read_file(path, CFL_PKI_KEY_FILE_MAX, &pem, &len, e);
	if (rc != 0)
		return rc;
	rc = parse_key(path, pem, len, out, e);
	/* The file text is the secret itself. */
	OPENSSL_cleanse(pem, len);
	free(pem);
	return rc;
}

/* PKCS#8 PrivateKeyInfo of a P-256 key, as OpenSSL 3 encodes it (curve named in the algorithm,
 * ECPrivateKey without parameters, with the public key), built from the key's numbers: OpenSSL
 * 3.0 sets up an encoder context for every key it writes, which costs more than making the key.
 * 138 bytes; returns 0, or -1 to let OpenSSL's encoder do it. */
#define P256_PKCS8_LEN 138

static int p256_pkcs8(const EVP_PKEY *pkey, unsigned char der[P256_PKCS8_LEN])
{
	static const unsigned char head[] = {0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06,
	                                     0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
	                                     0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
	                                     0x04, 0x6d, 0x30, 0x6b, 0x02, 0x01, 0x01, 0x04, 0x20};
	static const unsigned char mid[] = {0xa1, 0x44, 0x03, 0x42, 0x00};
	unsigned char *priv = der + sizeof(head), *pub = priv + 32 + sizeof(mid);
	BIGNUM *d = NULL;
	size_t len = 0;
	int ok;

	memcpy(der, head, sizeof(head));
	memcpy(priv + 32, mid, sizeof(mid));
	ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1 &&
	     BN_bn2binpad(d, priv, 32) == 32 &&
	     EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, 65,
	                                     &len) == 1 &&
	     len == 65 && pub[0] == 0x04;
	BN_clear_free(d);
	ERR_clear_error();
	return ok ? 0 : -1;
}

/* The PEM text of the key into the memory BIO. */
static int key_pem(const struct cfl_pki_key *key, BIO *bio)
{
	unsigned char der[P256_PKCS8_LEN];
	int ok;

	if (key->type == CFL_KEY_P256 && p256_pkcs8(key->pkey, der) == 0) {
		ok = PEM_write_bio(bio, "PRIVATE KEY", "", der, sizeof(der)) > 0;
		OPENSSL_cleanse(der, sizeof(der));
		return ok;
	}
	/* PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY") in OpenSSL 3. */
	return PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL);
}

int cfl_pki_key_to_pem(const struct cfl_pki_key *key, char **pem, size_t *len, struct cfl_err *e)
{
	BIO *bio;
	int rc = 0;

	if (key == NULL || pem == NULL || len == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot encode key: no key or output");
	ERR_clear_error();
	/* A memory BIO frees its buffer with OPENSSL_clear_free, so the PEM text is wiped. */
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL)
		return cfl__pki_openssl_err(e, CFL_ENOMEM, "cannot encode key");
	if (!key_pem(key, bio)) {
		rc = cfl__pki_openssl_err(e, CFL_ECRYPTO, "cannot encode key");
		goto out;
	}
	rc = cfl__pki_bio_text(bio, "key", pem, len, e);
out:
	BIO_free(bio);
	return rc;
}

int cfl_pki_key_save(const struct cfl_pki_key *key, const char *path, struct cfl_err *e)
{
	char *pem = NULL;
	size_t len = 0;
	int rc;

	if (key == NULL || path == NULL)
		return cfl_err_set(e, CFL_EINVAL, "cannot save key: no key or path");
	if ((rc = cfl_pki_key_to_pem(key, &pem, &len, e)) != 0) {
		cfl_err_prefix(e, "cannot save key '%s'", path);
		return rc;
	}
	rc = cfl__fs_write_file(path, pem, len, 0600, e);
	OPENSSL_cleanse(pem, len);
	free(pem);
	return rc;
}

void cfl_pki_key_free(struct cfl_pki_key *key)
{
	if (key == NULL)
		return;
	EVP_PKEY_free(key->pkey);
	free(key);
}
