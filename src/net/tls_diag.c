/* Why a TLS handshake failed, in one sentence an operator can act on (see tls.c's header).
 *
 * OpenSSL reports failures as a queue of library reason codes ("wrong version number", "tlsv13
 * alert certificate required"), which are accurate but do not tell an operator which setting to
 * change. So a session keeps the evidence it needs: the first bytes the peer sent (a clear cfl
 * peer starts with the frame magic "CF"), the first certificate verification error with the
 * certificate's subject, issuer and names, and the alerts received; cfl__tls_diagnose() turns
 * them into one sentence. */
#define _GNU_SOURCE
#include "tls_int.h"

#include "cfl/loop.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* --- small helpers ---------------------------------------------------------------------- */

void cfl__tls_appendf(char *buf, size_t size, const char *fmt, ...)
{
	size_t used = strnlen(buf, size);
	va_list ap;

	va_start(ap, fmt);
	if (used + 1 < size)
		vsnprintf(buf + used, size - used, fmt, ap);
	va_end(ap);
}

/* Empties OpenSSL's error queue into `buf` as "reason; reason" (may stay empty); returns the
 * SSL library reason code of the first SSL error, or 0. */
int cfl__tls_drain_errors(char *buf, size_t size)
{
	unsigned long code;
	int first_ssl = 0;

	if (size > 0)
		buf[0] = '\0';
	while ((code = ERR_get_error()) != 0) {
		const char *r = ERR_reason_error_string(code);

		if (first_ssl == 0 && ERR_GET_LIB(code) == ERR_LIB_SSL)
			first_ssl = ERR_GET_REASON(code);
		if (r != NULL)
			cfl__tls_appendf(buf, size, "%s%s", buf[0] ? "; " : "", r);
		else
			cfl__tls_appendf(buf, size, "%serror %08lx", buf[0] ? "; " : "", code);
	}
	return first_ssl;
}

/* Sets `e` to "what 'path': <OpenSSL reasons>" and returns `code`. */
int cfl__tls_fail(struct cfl_err *e, int code, const char *what, const char *path)
{
	char why[512];

	cfl__tls_drain_errors(why, sizeof(why));
	return cfl_err_set(e, code, "%s '%s': %s", what, path, why[0] ? why : "unknown error");
}

/* One-line RFC 2253 form of a name, e.g. "CN=server1,O=nvidia". */
void cfl__tls_name_line(const X509_NAME *n, char *buf, size_t size)
{
	BIO *b = BIO_new(BIO_s_mem());
	int len;

	buf[0] = '\0';
	if (b == NULL)
		return;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0) {
		len = BIO_read(b, buf, (int)size - 1);
		buf[len > 0 ? len : 0] = '\0';
	}
	BIO_free(b);
}

/* --- diagnosis -------------------------------------------------------------------------- */

static void hex_line(const uint8_t *p, size_t n, char *buf, size_t size)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		cfl__tls_appendf(buf, size, "%s%02x", i ? " " : "", p[i]);
}

/* A certificate verification failure, worded for the side that saw it. */
static int verify_message(const struct cfl_tls *t, struct cfl_err *e)
{
	const char *who = t->ctx->is_server ? "client" : "server";

	switch (t->vfy_err) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		return cfl_err_set(e, CFL_EVERIFY,
		                   "server certificate does not match '%s' (its names: %s)",
		                   t->host, t->vfy_names);
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		if (t->ctx->is_server)
			return cfl_err_set(
			        e, CFL_EVERIFY,
			        "client certificate is not signed by the CA in '%s' (is the "
			        "client's kit from another project?): it is '%s', issued by '%s'",
			        t->ctx->ca_file, t->vfy_subject, t->vfy_issuer);
		return cfl_err_set(
		        e, CFL_EVERIFY,
		        "server certificate is not signed by the CA in '%s' (wrong CA or proxy "
		        "certificate: check custom_ca_cert): it is '%s', issued by '%s'",
		        t->ctx->ca_file, t->vfy_subject, t->vfy_issuer);
	case X509_V_ERR_CERT_REVOKED:
		return cfl_err_set(
		        e, CFL_EVERIFY,
		        "%s certificate '%s' (serial %s): certificate revoked (on the CRL "
		        "of '%s')",
		        who, t->vfy_subject, t->vfy_serial, t->vfy_issuer);
	case X509_V_ERR_APPLICATION_VERIFICATION:
		if (t->vfy_pin[0] != '\0')
			return cfl_err_set(e, CFL_EVERIFY,
			                   "%s certificate '%s' is issued by '%s', not by this "
			                   "project's issuing CA '%s'",
			                   who, t->vfy_subject, t->vfy_issuer, t->vfy_pin);
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return cfl_err_set(e, CFL_EVERIFY, "%s certificate '%s' expired on %s", who,
		                   t->vfy_subject, t->vfy_time);
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return cfl_err_set(e, CFL_EVERIFY, "%s certificate '%s' is not valid before %s",
		                   who, t->vfy_subject, t->vfy_time);
	case X509_V_ERR_INVALID_PURPOSE:
		if (t->vfy_unfit[0] != '\0')
			return cfl_err_set(e, CFL_EVERIFY,
			                   "%s certificate '%s' cannot prove a %s: %s", who,
			                   t->vfy_subject, who, t->vfy_unfit);
		return cfl_err_set(
		        e, CFL_EVERIFY,
		        "%s certificate '%s' is not meant for a TLS %s (extended key usage)", who,
		        t->vfy_subject, who);
	default:
		break;
	}
	return cfl_err_set(e, CFL_EVERIFY, "%s certificate '%s' rejected: %s", who, t->vfy_subject,
	                   X509_verify_cert_error_string(t->vfy_err));
}

/* An alert the peer sent (OpenSSL reports alert N as reason SSL_AD_REASON_OFFSET + N). */
static int alert_message(const struct cfl_tls *t, int alert, struct cfl_err *e)
{
	const char *name = SSL_alert_desc_string_long(alert);
	int tls_client = !t->ctx->is_server && t->ctx->mode == CFL_SEC_TLS;

	switch (alert) {
	case TLS13_AD_CERTIFICATE_REQUIRED:
		if (tls_client)
			return cfl_err_set(e, CFL_EVERIFY,
			                   "server requires a client certificate (mtls) but this "
			                   "client is in tls mode");
		return cfl_err_set(e, CFL_EVERIFY, "the peer requires a certificate and got none");
	case SSL_AD_CERTIFICATE_REVOKED:
		return cfl_err_set(e, CFL_EVERIFY,
		                   "the %s refused this side's certificate: certificate revoked "
		                   "(alert '%s'): this identity needs a new certificate",
		                   t->ctx->is_server ? "client" : "server", name);
	case SSL_AD_BAD_CERTIFICATE:
	case SSL_AD_UNSUPPORTED_CERTIFICATE:
	case SSL_AD_CERTIFICATE_EXPIRED:
	case SSL_AD_CERTIFICATE_UNKNOWN:
	case SSL_AD_UNKNOWN_CA:
	case SSL_AD_ACCESS_DENIED:
		return cfl_err_set(e, CFL_EVERIFY,
		                   "the %s rejected this side's certificate (alert '%s'): are both "
		                   "kits from the same project and still valid?",
		                   t->ctx->is_server ? "client" : "server", name);
	case SSL_AD_PROTOCOL_VERSION:
		return cfl_err_set(e, CFL_EPROTO,
		                   "no TLS version in common with the peer (alert '%s'): cfl needs "
		                   "TLS 1.2 or later",
		                   name);
	case SSL_AD_HANDSHAKE_FAILURE:
		return cfl_err_set(e, CFL_EPROTO,
		                   "the peer aborted the TLS handshake (alert '%s'): no cipher "
		                   "suite in common%s",
		                   name,
		                   tls_client ? ", or the server requires a client certificate "
		                                "(mtls) but this client is in tls mode"
		                              : "");
	default:
		return cfl_err_set(e, CFL_EPROTO,
		                   "the peer aborted the TLS connection (alert '%s')", name);
	}
}

/* The peer closed or reset the socket before the handshake finished. */
static int early_close_message(const struct cfl_tls *t, int err_no, struct cfl_err *e)
{
	const char *how = err_no != 0 ? strerror(err_no) : "closed";

	if (!t->ctx->is_server && t->nfirst == 0)
		return cfl_err_set(e, CFL_EPROTO,
		                   "the server %s the connection without answering the TLS "
		                   "handshake: is it in clear mode? " MISMATCH,
		                   err_no != 0 ? "reset" : "closed");
	return cfl_err_set(e, CFL_ECLOSED, "the %s %s the connection during the TLS handshake%s%s",
	                   t->ctx->is_server ? "client" : "server", err_no ? "reset" : "closed",
	                   err_no ? ": " : "", err_no ? how : "");
}

/* Turns a failed SSL call into one readable error in `e`; drains the OpenSSL error queue. */
int cfl__tls_diagnose(struct cfl_tls *t, int ssl_err, int err_no, struct cfl_err *e)
{
	char why[512], bytes[3 * FIRST_MAX];
	int reason = cfl__tls_drain_errors(why, sizeof(why));

	/* A server answering with anything but a TLS record (content types 20-23, version 3.x). */
	if (!t->ctx->is_server && t->nfirst > 0 &&
	    (t->first[0] < 20 || t->first[0] > 23 || (t->nfirst > 1 && t->first[1] != 3))) {
		if (t->first[0] == 'C' && (t->nfirst < 2 || t->first[1] == 'F'))
			return cfl_err_set(e, CFL_EPROTO,
			                   "the server did not answer with TLS: is it in clear "
			                   "mode? " MISMATCH);
		hex_line(t->first, t->nfirst, bytes, sizeof(bytes));
		return cfl_err_set(e, CFL_EPROTO,
		                   "the server did not answer with TLS (it sent %s): is it in "
		                   "clear mode, or another service? " MISMATCH,
		                   bytes);
	}
	if (t->vfy_err != 0)
		return verify_message(t, e);
	if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
		return cfl_err_set(e, CFL_EVERIFY,
		                   "client presented no certificate but the server requires mTLS");
	if (reason > SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256)
		return alert_message(t, reason - SSL_AD_REASON_OFFSET, e);
	if (ssl_err == SSL_ERROR_ZERO_RETURN || reason == SSL_R_UNEXPECTED_EOF_WHILE_READING ||
	    (ssl_err == SSL_ERROR_SYSCALL && reason == 0))
		return t->done ? cfl_err_set(e, CFL_ECLOSED, "peer closed the connection")
		               : early_close_message(t, err_no, e);
	if (reason == SSL_R_NO_SHARED_CIPHER || reason == SSL_R_UNSUPPORTED_PROTOCOL ||
	    reason == SSL_R_NO_PROTOCOLS_AVAILABLE)
		return cfl_err_set(e, CFL_EPROTO,
		                   "no TLS version or cipher suite in common with the peer (cfl "
		                   "needs TLS 1.2+ with ECDHE and AES-GCM or ChaCha20): %s",
		                   why);
	return cfl_err_set(e, CFL_EPROTO, "TLS %s failed: %s", t->done ? "connection" : "handshake",
	                   why[0] ? why : "unknown error");
}

/* Server: a look at the first byte before OpenSSL sees anything. A TLS connection starts with
 * a handshake record (22); a clear cfl peer starts with the frame magic "CF". Deciding here
 * keeps OpenSSL from answering a clear peer with a TLS alert it cannot read. */
int cfl__tls_sniff(struct cfl_tls *t, int *want, struct cfl_err *e)
{
	uint8_t buf[FIRST_MAX];
	char bytes[3 * FIRST_MAX];
	ssize_t n = recv(t->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		*want = CFL_EV_READ;
		return CFL_EAGAIN;
	}
	if (n < 0)
		return cfl_err_set(e, CFL_ECONN, "cannot read from the client: %s",
		                   strerror(errno));
	if (n == 0)
		return cfl_err_set(e, CFL_ECLOSED,
		                   "the client closed the connection before the TLS handshake");
	t->sniffed = 1;
	if (buf[0] == 22)
		return 0;
	if (buf[0] == 'C' && (n < 2 || buf[1] == 'F')) {
		t->clear_peer = 1;
		return cfl_err_set(e, CFL_EPROTO,
		                   "peer sent clear-text frames to a TLS listener " MISMATCH);
	}
	if (n >= 4 && (memcmp(buf, "GET ", 4) == 0 || memcmp(buf, "POST", 4) == 0 ||
	               memcmp(buf, "HEAD", 4) == 0 || memcmp(buf, "PUT ", 4) == 0))
		return cfl_err_set(e, CFL_EPROTO, "peer sent an HTTP request to a TLS listener");
	hex_line(buf, (size_t)n, bytes, sizeof(bytes));
	return cfl_err_set(e, CFL_EPROTO,
	                   "peer did not start a TLS handshake (it sent %s): is it in clear mode, "
	                   "or another service? " MISMATCH,
	                   bytes);
}
