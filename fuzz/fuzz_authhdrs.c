/* libFuzzer target for the per-message authentication check's reading of headers
 * (src/auth/auth_common.c): the one-pass lookup of client_name, token and token_signature and
 * the comparisons the gates make with them; and the challenge's tls_cert, read before login as
 * the server reads it (bounded copy, then cfl_pki_cert_fingerprint_match).
 *
 * The input is read as a stream of frames (max_payload = 64 KiB, as before login) until the
 * first error or incomplete frame. For each frame the one-pass lookup must find exactly what
 * cfl_frame_header() finds, and the constant-time and in-place comparisons of those values with
 * a session's token must agree with memcmp. Any disagreement aborts. */
#include "auth/auth_int.h"
#include "cfl/frame.h"
#include "cfl/proto.h"
#include "fuzz_pki.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAYLOAD CFL_FRAME_MAX_PAYLOAD_PRELOGIN

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char token[] = "v2.1765000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

static void check(int ok)
{
	if (!ok)
		abort();
}

static int same(const struct cfl_header *h, const char *v, size_t n)
{
	return h != NULL && h->val_len == n && memcmp(h->val, v, n) == 0;
}

static struct fuzz_pki pki; /* a certificate for tls_cert to name */

/* As the server reads a challenge's tls_cert (src/auth/auth_server.c, handshake_proved). */
static void check_tls_cert(const struct cfl_frame *f)
{
	char fp[CFL_PKI_FINGERPRINT_MAX];

	if (cfl__auth_hdr(f, CFL_KEY_TLS_CERT, fp, sizeof(fp)) == 0 && fp[0] != '\0')
		(void)cfl_pki_cert_fingerprint_match(pki.ca, fp);
}

static void check_frame(const struct cfl_frame *f)
{
	struct cfl__auth_hdrs a;
	const struct cfl_header *t;

	cfl__auth_find_hdrs(f, &a);
	check(a.name == cfl_frame_header(f, CFL_KEY_CLIENT_NAME));
	check(a.token == cfl_frame_header(f, CFL_KEY_TOKEN));
	check(a.sig == cfl_frame_header(f, CFL_KEY_TOKEN_SIGNATURE));
	t = a.token;
	check(cfl__auth_hdr_is(t, token, sizeof(token) - 1) == same(t, token, sizeof(token) - 1));
	check(cfl__auth_hdr_is(a.name, "site-1", 6) == same(a.name, "site-1", 6));
	if (t != NULL && t->val_len <= sizeof(token) - 1)
		check(cfl__auth_ct_equal(t->val, token, t->val_len) ==
		      (memcmp(t->val, token, t->val_len) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfl_frame f;
	size_t off = 0;
	int n;

	if (pki.ca == NULL) {
		char own[CFL_PKI_FINGERPRINT_MAX];

		fuzz_pki_make(&pki, "admin", "project_admin", NULL);
		check(cfl_pki_cert_fingerprint(pki.ca, own, sizeof(own)) == 0 &&
		      cfl_pki_cert_fingerprint_match(pki.ca, own));
	}
	while (off < size && (n = cfl_frame_decode(data + off, size - off, MAX_PAYLOAD, &f)) > 0) {
		check_frame(&f);
		check_tls_cert(&f);
		off += (size_t)n;
	}
	return 0;
}
