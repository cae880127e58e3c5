/* Checking a peer's certificate during the handshake, beyond OpenSSL's chain check: the leaf
 * must be fit for its role, and issued by exactly the project's issuing CA (a certificate for a
 * participant's name issued by another intermediate of the same root is refused); a CRL past its
 * nextUpdate still counts. The first failure is recorded for tls_diag.c's message. */
#define _GNU_SOURCE
#include "tls_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static void time_line(const ASN1_TIME *t, char *buf, size_t size)
{
	BIO *b = BIO_new(BIO_s_mem());
	int len;

	buf[0] = '\0';
	if (b == NULL)
		return;
	if (ASN1_TIME_print(b, t) == 1) {
		len = BIO_read(b, buf, (int)size - 1);
		buf[len > 0 ? len : 0] = '\0';
	}
	BIO_free(b);
}

/* "DNS:localhost, IP:127.0.0.1": the names a host-name check looks at. */
static void san_line(X509 *cert, char *buf, size_t size)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	char ip[INET6_ADDRSTRLEN];
	int i;

	buf[0] = '\0';
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const char *sep = buf[0] ? ", " : "";

		if (g->type == GEN_DNS) {
			cfl__tls_appendf(buf, size, "%sDNS:%.*s", sep,
			                 ASN1_STRING_length(g->d.dNSName),
			                 (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		} else if (g->type == GEN_IPADD) {
			int len = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *p = ASN1_STRING_get0_data(g->d.iPAddress);

			if ((len == 4 || len == 16) &&
			    inet_ntop(len == 4 ? AF_INET : AF_INET6, p, ip, sizeof(ip)) != NULL)
				cfl__tls_appendf(buf, size, "%sIP:%s", sep, ip);
		}
	}
	GENERAL_NAMES_free(gens);
	if (buf[0] == '\0')
		snprintf(buf, size, "none: the certificate has no subjectAltName");
}

/* Whether the peer's own certificate may prove its role, beyond OpenSSL's purpose check (which
 * lets a certificate without extended key usage pass, and a server's that also says clientAuth
 * pass for a client): a server's says serverAuth, a client's clientAuth and not serverAuth, and
 * neither is a CA. NULL when fit, else why not (the same rule as cfl_pki_cert_check_usage, which
 * the login applies; net sits below pki, so it is said again here). */
static const char *leaf_unfit(X509 *x, int peer_is_server)
{
	uint32_t flags = X509_get_extension_flags(x), xku = X509_get_extended_key_usage(x);

	if (X509_check_ca(x) != 0)
		return "it is a CA certificate (CA:TRUE)";
	if ((flags & EXFLAG_XKUSAGE) == 0)
		return peer_is_server ? "it has no extended key usage serverAuth"
		                      : "it has no extended key usage clientAuth";
	if (peer_is_server)
		return (xku & XKU_SSL_SERVER) != 0 ? NULL
		                                   : "its extended key usage is not serverAuth";
	if ((xku & XKU_SSL_SERVER) != 0)
		return "it is a server certificate (extended key usage serverAuth)";
	return (xku & XKU_SSL_CLIENT) != 0 ? NULL : "its extended key usage is not clientAuth";
}

/* The leaf's issuer in the chain OpenSSL built is not the pinned issuing CA: records both
 * names and returns 1 (a chain of one certificate has no issuer to compare: OpenSSL's own
 * error stands). */
static int wrong_issuer(struct cfl_tls *t, X509_STORE_CTX *xs)
{
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(xs);
	char want[256];

	if (t->issuer == NULL || chain == NULL || sk_X509_num(chain) < 2 ||
	    X509_cmp(sk_X509_value(chain, 1), t->issuer) == 0)
		return 0;
	cfl__tls_name_line(X509_get_subject_name(t->issuer), want, sizeof(want));
	snprintf(t->vfy_pin, sizeof(t->vfy_pin), "%s", want);
	return 1;
}

/* The leaf's serial number in hex, for the message about a revoked certificate. */
static void serial_line(X509 *cert, char *buf, size_t size)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;

	snprintf(buf, size, "%s", hex != NULL ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
}

/* Checks the leaf's issuer and role; forgives a CRL past its nextUpdate (the serials it lists are
 * still revoked, and refusing every peer until a fresh CRL arrives would stop the federation);
 * records the first verification failure with what the message will need; keeps OpenSSL's
 * verdict otherwise. */
int cfl__tls_verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct cfl_tls *t = ssl != NULL ? SSL_get_ex_data(ssl, cfl__tls_app_index()) : NULL;
	int err = X509_STORE_CTX_get_error(xs), depth = X509_STORE_CTX_get_error_depth(xs);
	const char *unfit;
	X509 *cert;

	if (t == NULL || t->vfy_err != 0)
		return ok;
	if (!ok && (err == X509_V_ERR_CRL_HAS_EXPIRED || err == X509_V_ERR_CRL_NOT_YET_VALID))
		return 1;
	if (depth == 0 && wrong_issuer(t, xs)) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
		ok = 0;
	} else if (ok && depth == 0 &&
	           (unfit = leaf_unfit(X509_STORE_CTX_get_current_cert(xs), !t->ctx->is_server)) !=
	                   NULL) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_INVALID_PURPOSE);
		snprintf(t->vfy_unfit, sizeof(t->vfy_unfit), "%s", unfit);
		ok = 0;
	}
	if (ok)
		return ok;
	t->vfy_err = X509_STORE_CTX_get_error(xs);
	cert = X509_STORE_CTX_get_current_cert(xs);
	if (cert == NULL)
		return ok;
	serial_line(cert, t->vfy_serial, sizeof(t->vfy_serial));
	/* OpenSSL's own purpose check failed first: say why in the same words as ours. */
	if (t->vfy_err == X509_V_ERR_INVALID_PURPOSE && t->vfy_unfit[0] == '\0' &&
	    X509_STORE_CTX_get_error_depth(xs) == 0 &&
	    (unfit = leaf_unfit(cert, !t->ctx->is_server)) != NULL)
		snprintf(t->vfy_unfit, sizeof(t->vfy_unfit), "%s", unfit);
	cfl__tls_name_line(X509_get_subject_name(cert), t->vfy_subject, sizeof(t->vfy_subject));
	cfl__tls_name_line(X509_get_issuer_name(cert), t->vfy_issuer, sizeof(t->vfy_issuer));
	san_line(cert, t->vfy_names, sizeof(t->vfy_names));
	time_line(t->vfy_err == X509_V_ERR_CERT_NOT_YET_VALID ? X509_get0_notBefore(cert)
	                                                      : X509_get0_notAfter(cert),
	          t->vfy_time, sizeof(t->vfy_time));
	return ok;
}

/* OpenSSL calls this on a client only when the server asks for a certificate: an mtls client
 * uses it to notice a server that does not (one in tls mode). */
int cfl__tls_cert_requested_cb(SSL *ssl, void *arg)
{
	struct cfl_tls *t = SSL_get_ex_data(ssl, cfl__tls_app_index());

	(void)arg;
	if (t != NULL)
		t->cert_requested = 1;
	return 1;
}

/* The ex_data slot that links an SSL to its struct cfl_tls (for the callbacks). */
int cfl__tls_app_index(void)
{
	static atomic_int idx = -1;
	int i = atomic_load(&idx);

	if (i < 0) {
		int fresh = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL), expected = -1;

		/* Two threads may race here; the loser's slot simply goes unused. */
		if (!atomic_compare_exchange_strong(&idx, &expected, fresh))
			return expected;
		i = fresh;
	}
	return i;
}
