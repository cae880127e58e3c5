/* SHA-256 through OpenSSL's EVP interface. */
#include "cfl/digest.h"

#include "cfl/err.h"
#include "pki/pki_int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

struct cfl_sha256 {
	EVP_MD_CTX *ctx;
};

struct cfl_sha256 *cfl_sha256_new(void)
{
	struct cfl_sha256 *h = OPENSSL_zalloc(sizeof(*h));

	if (h == NULL)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, cfl__pki_sha256(), NULL) != 1) {
		cfl_sha256_free(h);
		return NULL;
	}
	return h;
}

void cfl_sha256_update(struct cfl_sha256 *h, const void *data, size_t len)
{
	EVP_DigestUpdate(h->ctx, data, len);
}

void cfl_sha256_final(struct cfl_sha256 *h, uint8_t out[CFL_SHA256_LEN])
{
	unsigned int n = CFL_SHA256_LEN;

	EVP_DigestFinal_ex(h->ctx, out, &n);
	EVP_DigestInit_ex(h->ctx, cfl__pki_sha256(), NULL);
}

void cfl_sha256_free(struct cfl_sha256 *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->ctx);
	OPENSSL_free(h);
}

void cfl_hex(const uint8_t *data, size_t len, char *buf)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		buf[2 * i] = digits[data[i] >> 4];
		buf[2 * i + 1] = digits[data[i] & 15];
	}
	buf[2 * len] = '\0';
}

int cfl_ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

int cfl_random(void *buf, size_t n)
{
	return RAND_bytes(buf, (int)n) == 1 ? 0 : CFL_ECRYPTO;
}

void cfl_wipe(void *p, size_t n)
{
	OPENSSL_cleanse(p, n);
}
