/* Shared pieces of the login exchange: the signed strings, nonces, defaults. */
#include "auth_int.h"

#include "cfl/conn.h"
#include "cfl/digest.h"
#include "cfl/proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

size_t cfl__auth_tbs(uint8_t *buf, size_t cap, const char *label, const char *a, const char *b,
                     const char *c)
{
	const char *parts[4] = {label, a, b, c};
	size_t o = 0;

	for (int i = 0; i < 4; i++) {
		size_t n = parts[i] != NULL ? strlen(parts[i]) : 0;

		if (o + n + 1 > cap)
			return 0;
		memcpy(buf + o, parts[i] != NULL ? parts[i] : "", n);
		o += n;
		buf[o++] = '\0';
	}
	return o;
}

int cfl__auth_sign_b64(const struct cfl_pki_key *key, const uint8_t *tbs, size_t n, char *out,
                       size_t out_size)
{
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	char *b64 = NULL;
	int rc = cfl_pki_sign(key, tbs, n, &sig, &sig_len, NULL);

	if (rc == 0 && cfl_base64_encode(sig, sig_len, &b64) != 0)
		rc = CFL_ENOMEM;
	if (rc == 0 && strlen(b64) >= out_size)
		rc = CFL_ETOOBIG;
	if (rc == 0)
		memcpy(out, b64, strlen(b64) + 1);
	free(sig);
	free(b64);
	return rc;
}

int cfl__auth_verify_b64(const struct cfl_pki_cert *cert, const uint8_t *tbs, size_t n,
                         const char *b64)
{
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	int rc;

	if (cfl_base64_decode(b64, strlen(b64), &sig, &sig_len) != 0)
		return CFL_EVERIFY;
	rc = cfl_pki_verify(cert, tbs, n, sig, sig_len, NULL);
	free(sig);
	return rc == 0 ? 0 : CFL_EVERIFY;
}

int cfl__auth_login_cert(struct cfl_conn *c, const char *pem, size_t len,
                         struct cfl__login_cert *out, struct cfl_err *e)
{
	const void *pin = NULL, *x = c != NULL ? cfl_conn_peer_x509(c, &pin) : NULL;

	memset(out, 0, sizeof(*out));
	if (x != NULL && cfl_pki_cert_wrap_x509(x, &out->cert) == 0) {
		if (cfl_pki_cert_pem_is(pem, len, out->cert)) {
			out->tls = 1;
			if (pin != NULL && cfl_pki_cert_wrap_x509(pin, &out->pin) != 0)
				out->pin = NULL;
			return 0;
		}
		cfl_pki_cert_free(out->cert);
		out->cert = NULL;
	}
	return cfl_pki_cert_load_pem(pem, len, &out->cert, e);
}

int cfl__auth_is_tls_peer(struct cfl_conn *c, const struct cfl_pki_cert *cert)
{
	const void *pin, *x = c != NULL && cert != NULL ? cfl_conn_peer_x509(c, &pin) : NULL;
	struct cfl_pki_cert *t = NULL;
	int same;

	if (x == NULL || cfl_pki_cert_wrap_x509(x, &t) != 0)
		return 0;
	same = cfl_pki_cert_equal(t, cert);
	cfl_pki_cert_free(t);
	return same;
}

void cfl__auth_login_cert_free(struct cfl__login_cert *lc)
{
	cfl_pki_cert_free(lc->cert);
	cfl_pki_cert_free(lc->pin);
	memset(lc, 0, sizeof(*lc));
}

int cfl__auth_nonce(char hex[NONCE_HEX])
{
	uint8_t raw[NONCE_LEN];

	if (cfl_random(raw, sizeof(raw)) != 0)
		return CFL_ECRYPTO;
	cfl_hex(raw, sizeof(raw), hex);
	return 0;
}

#define KEY_IS(h, k) ((h)->key_len == sizeof(k) - 1 && memcmp((h)->key, k, sizeof(k) - 1) == 0)

void cfl__auth_find_hdrs(const struct cfl_frame *f, struct cfl__auth_hdrs *out)
{
	size_t n = f->n_headers < CFL_FRAME_MAX_HEADERS ? f->n_headers : CFL_FRAME_MAX_HEADERS;

	memset(out, 0, sizeof(*out));
	/* Keys are unique in a decoded frame: each match is the only one. */
	for (size_t i = 0; i < n; i++) {
		const struct cfl_header *h = &f->headers[i];

		if (KEY_IS(h, CFL_KEY_CLIENT_NAME))
			out->name = h;
		else if (KEY_IS(h, CFL_KEY_TOKEN))
			out->token = h;
		else if (KEY_IS(h, CFL_KEY_TOKEN_SIGNATURE))
			out->sig = h;
	}
}

int cfl__auth_ct_equal(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	uint64_t acc = 0, u, v;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&u, x + i, 8);
		memcpy(&v, y + i, 8);
		acc |= u ^ v;
		/* Keeps the compiler from stopping at the first difference. */
		__asm__ volatile("" : "+r"(acc));
	}
	for (; i < n; i++) {
		acc |= (uint64_t)(x[i] ^ y[i]);
		__asm__ volatile("" : "+r"(acc));
	}
	acc = (acc | (acc >> 32)) & 0xffffffffu;
	return (int)((acc - 1) >> 63); /* 1 only when acc was 0 */
}

int cfl__auth_hdr_is(const struct cfl_header *h, const char *v, size_t n)
{
	return h != NULL && h->val_len == n && (n == 0 || memcmp(h->val, v, n) == 0);
}

int cfl__auth_hdr(const struct cfl_frame *f, const char *key, char *buf, size_t size)
{
	if (cfl_frame_header_str(f, key, buf, size) != 0) {
		buf[0] = '\0';
		return -1;
	}
	return 0;
}

int64_t cfl__auth_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t env_ms(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	char *end;
	double s;

	if (v == NULL || v[0] == '\0')
		return dflt;
	s = strtod(v, &end);
	if (*end != '\0' || s <= 0 || s > 86400.0 * 365)
		return dflt;
	return (uint64_t)(s * 1000.0);
}

void cfl_auth_times_default(struct cfl_auth_times *t)
{
	t->token_ttl_ms = env_ms("CFL_TOKEN_TTL_S", 3600000);
	t->heartbeat_ms = env_ms("CFL_HEARTBEAT_S", 10000);
	t->dead_ms = env_ms("CFL_DEAD_TIMEOUT_S", 60000);
	t->login_timeout_ms = env_ms("CFL_LOGIN_TIMEOUT_S", 10000);
}

void cfl__auth_why(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
}

int cfl_auth_file_changed(struct cfl_auth_file_watch *w, const char *path)
{
	struct cfl_auth_file_watch now = {.seen = 1};
	struct stat st;
	int changed;

	if (stat(path, &st) == 0) {
		now.exists = 1;
		now.ino = (uint64_t)st.st_ino;
		now.size = (uint64_t)st.st_size;
		now.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	}
	changed = !w->seen || now.exists != w->exists || now.ino != w->ino || now.size != w->size ||
	          now.mtime_ns != w->mtime_ns;
	*w = now;
	return changed;
}

int cfl_auth_file_exists(const struct cfl_auth_file_watch *w)
{
	return w->exists;
}
