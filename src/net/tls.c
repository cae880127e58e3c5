/* TLS sessions over OpenSSL 3. The TLS code is split by concern, and src/net/tls*.c (with
 * tls_int.h) are the only files that include OpenSSL's SSL headers: tls_ctx.c builds contexts
 * (credentials, trust, revocation, policy), tls_diag.c says why a handshake failed, and this
 * file runs the sessions: handshake, reads, writes, shutdown and the peer's identity. */
#define _GNU_SOURCE
#include "tls_int.h"

#include "cfl/loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Bytes one socket read of a busy session may take (read-ahead): four full records of a bulk
 * transfer. Other sessions (a handshake, an idle or a pre-login peer) read one record's worth,
 * so that connections that hold a partial record (10,000 junk ones, say) hold 17 KiB each. */
#define BUSY_READ ((size_t)64 * 1024)

/* Remembers the first bytes the server sends, to recognise a server that is not speaking TLS
 * (e.g. a clear cfl server's GOAWAY) when the handshake fails. */
static long first_bytes_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
                           int ret, size_t *processed)
{
	struct cfl_tls *t = (struct cfl_tls *)BIO_get_callback_arg(b);
	size_t n;

	(void)len;
	(void)argi;
	(void)argl;
	if (oper != (BIO_CB_READ | BIO_CB_RETURN) || ret <= 0 || processed == NULL || t == NULL ||
	    argp == NULL)
		return ret;
	n = *processed;
	if (n > FIRST_MAX - t->nfirst)
		n = FIRST_MAX - t->nfirst;
	memcpy(t->first + t->nfirst, argp, n);
	t->nfirst += n;
	return ret;
}

/* --- sessions --------------------------------------------------------------------------- */

static int is_ip_literal(const char *host)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* Client: what the server certificate must match, and SNI for names (RFC 6066 §3 forbids IP
 * literals in SNI). */
static int set_peer_host(struct cfl_tls *t, const char *host, struct cfl_err *e)
{
	X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);

	if (host == NULL || host[0] == '\0' || strlen(host) >= sizeof(t->host))
		return cfl_err_set(e, CFL_EINVAL, "a TLS client needs the host name it dialed");
	memcpy(t->host, host, strlen(host) + 1);
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (is_ip_literal(host)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1)
			return cfl__tls_fail(e, CFL_EINVAL, "cannot check the server against",
			                     host);
		return 0;
	}
	if (SSL_set1_host(t->ssl, host) != 1 || SSL_set_tlsext_host_name(t->ssl, host) != 1)
		return cfl__tls_fail(e, CFL_EINVAL, "cannot check the server against", host);
	return 0;
}

int cfl_tls_new(struct cfl_tls_ctx *ctx, int fd, const char *host, struct cfl_tls **out,
                struct cfl_err *e)
{
	struct cfl_tls *t;
	SSL_CTX *ssl_ctx;
	int rc;

	*out = NULL;
	if (ctx == NULL || fd < 0)
		return cfl_err_set(e, CFL_EINVAL, "no TLS context or socket");
	ERR_clear_error();
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	t->ctx = cfl_tls_ctx_ref(ctx);
	t->fd = fd;
	ssl_ctx = cfl__tls_ctx_current(ctx, &t->issuer);
	t->ssl = SSL_new(ssl_ctx);
	SSL_CTX_free(ssl_ctx); /* the session holds its own reference */
	if (t->ssl == NULL || SSL_set_fd(t->ssl, fd) != 1 ||
	    SSL_set_ex_data(t->ssl, cfl__tls_app_index(), t) != 1) {
		rc = cfl__tls_fail(e, CFL_ECRYPTO, "cannot create a TLS session on", "socket");
		goto fail;
	}
	if (ctx->is_server) {
		SSL_set_accept_state(t->ssl);
	} else {
		if ((rc = set_peer_host(t, host, e)) != 0)
			goto fail;
		BIO_set_callback_ex(SSL_get_rbio(t->ssl), first_bytes_cb);
		BIO_set_callback_arg(SSL_get_rbio(t->ssl), (char *)t);
		SSL_set_connect_state(t->ssl);
	}
	*out = t;
	return 0;
fail:
	cfl_tls_free(t);
	return rc;
}

void cfl_tls_free(struct cfl_tls *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);
	X509_free(t->issuer);
	cfl_tls_ctx_free(t->ctx);
	free(t);
}

/* --- I/O -------------------------------------------------------------------------------- */

int cfl_tls_handshake(struct cfl_tls *t, int *want, struct cfl_err *e)
{
	int rc, err, err_no;

	if (t->done)
		return 0;
	if (t->established)
		return cfl_err_set(e, CFL_EPROTO, "the TLS session was refused");
	if (t->ctx->is_server && !t->sniffed && (rc = cfl__tls_sniff(t, want, e)) != 0)
		return rc;
	ERR_clear_error();
	errno = 0;
	rc = SSL_do_handshake(t->ssl);
	err_no = errno;
	if (rc == 1) {
		t->established = 1;
		if (!t->ctx->is_server)
			BIO_set_callback_ex(SSL_get_rbio(t->ssl), NULL);
		/* TLS alone lets an mtls client talk to a server that never asks for its
		 * certificate; mutual authentication is what this side was configured for. */
		if (!t->ctx->is_server && t->ctx->mode == CFL_SEC_MTLS && !t->cert_requested)
			return cfl_err_set(e, CFL_EPROTO,
			                   "the server did not ask for a client certificate: it is "
			                   "in tls mode but this client is in mtls mode " MISMATCH);
		t->done = 1;
		return 0;
	}
	err = SSL_get_error(t->ssl, rc);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		*want = err == SSL_ERROR_WANT_READ ? CFL_EV_READ : CFL_EV_WRITE;
		return CFL_EAGAIN;
	}
	return cfl__tls_diagnose(t, err, err_no, e);
}

/* OpenSSL's error queue must be empty before an I/O call for SSL_get_error() to be right;
 * clearing it costs more than looking (all of its slots), and it is empty nearly always. */
static void clear_errors(void)
{
	if (ERR_peek_error() != 0)
		ERR_clear_error();
}

/* Maps the failure of an SSL_read_ex/SSL_write_ex after the handshake. */
static int io_error(struct cfl_tls *t, int err, int err_no, int *want, struct cfl_err *e)
{
	switch (err) {
	case SSL_ERROR_WANT_READ:
		*want = CFL_EV_READ;
		return CFL_EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		*want = CFL_EV_WRITE;
		return CFL_EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		return cfl_err_set(e, CFL_ECLOSED, "peer closed the connection");
	case SSL_ERROR_SYSCALL:
		if (err_no == EPIPE || err_no == ECONNRESET) {
			ERR_clear_error();
			return cfl_err_set(e, CFL_ECLOSED, "peer closed the connection (%s)",
			                   strerror(err_no));
		}
		if (err_no != 0) {
			ERR_clear_error();
			return cfl_err_set(e, CFL_ECONN, "connection failed: %s", strerror(err_no));
		}
		return cfl__tls_diagnose(t, err, err_no, e);
	default:
		return cfl__tls_diagnose(t, err, err_no, e);
	}
}

ssize_t cfl_tls_read(struct cfl_tls *t, void *buf, size_t len, int *want, struct cfl_err *e)
{
	size_t n = 0;
	int err_no;

	clear_errors();
	errno = 0;
	if (SSL_read_ex(t->ssl, buf, len, &n) == 1)
		return (ssize_t)n;
	err_no = errno;
	return io_error(t, SSL_get_error(t->ssl, 0), err_no, want, e);
}

ssize_t cfl_tls_write(struct cfl_tls *t, const void *buf, size_t len, int *want, struct cfl_err *e)
{
	size_t n = 0;
	int err_no;

	clear_errors();
	errno = 0;
	if (SSL_write_ex(t->ssl, buf, len, &n) == 1)
		return (ssize_t)n;
	err_no = errno;
	return io_error(t, SSL_get_error(t->ssl, 0), err_no, want, e);
}

size_t cfl_tls_pending(const struct cfl_tls *t)
{
	int n = t != NULL ? SSL_pending(t->ssl) : 0;

	if (n > 0)
		return (size_t)n;
	/* Record bytes read from the socket but not decrypted yet (possible with read-ahead). */
	return t != NULL && SSL_has_pending(t->ssl) ? 1 : 0;
}

int cfl_tls_drained(const struct cfl_tls *t)
{
	/* With read-ahead, a socket read takes all it can (up to the buffer): when nothing of it
	 * is left, the socket was empty then, or the buffer ended exactly at a record's end and
	 * the socket stays readable (level-triggered: the loop calls again). */
	return t != NULL && SSL_pending(t->ssl) == 0 && !SSL_has_pending(t->ssl);
}

void cfl_tls_keep_buffers(struct cfl_tls *t, int keep)
{
	if (t == NULL || t->ssl == NULL)
		return;
	/* Busy: a read-ahead buffer of BUSY_READ (its next allocation: the current one goes now
	 * if it is empty), kept. Idle: OpenSSL's default (one record), released when empty. */
	SSL_set_default_read_buffer_len(t->ssl, keep ? BUSY_READ : 0);
	if (keep)
		SSL_clear_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS);
	else
		SSL_set_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS);
	(void)SSL_free_buffers(t->ssl); /* refused (0) while a buffer holds data: kept then */
	ERR_clear_error();
}

void cfl_tls_shutdown(struct cfl_tls *t)
{
	if (t == NULL || !t->done)
		return;
	/* One attempt: close_notify goes out if the socket has room; the reply is not awaited
	 * (RFC 8446 §6.1 lets the closing side not wait). */
	ERR_clear_error();
	if (SSL_get_shutdown(t->ssl) == 0)
		(void)SSL_shutdown(t->ssl);
	ERR_clear_error();
}

int cfl_tls_peer_spoke_clear(const struct cfl_tls *t)
{
	return t != NULL && t->clear_peer;
}

int cfl_tls_established(const struct cfl_tls *t)
{
	return t != NULL && t->established;
}

/* Copies one subject attribute as UTF-8, control characters replaced by '?'. */
static void name_entry(const X509_NAME *n, int nid, char *buf, size_t size)
{
	int i = X509_NAME_get_index_by_NID(n, nid, -1), len;
	unsigned char *u = NULL;
	size_t k;

	buf[0] = '\0';
	if (i < 0)
		return;
	len = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
	if (len < 0)
		return;
	for (k = 0; k < (size_t)len && k + 1 < size; k++)
		buf[k] = (char)(u[k] < 0x20 || u[k] == 0x7f ? '?' : u[k]);
	buf[k] = '\0';
	OPENSSL_free(u);
}

const void *cfl_tls_peer_x509(const struct cfl_tls *t, const void **issuer)
{
	X509 *cert = t != NULL && t->done ? SSL_get0_peer_certificate(t->ssl) : NULL;

	*issuer = NULL;
	if (cert == NULL || SSL_get_verify_result(t->ssl) != X509_V_OK)
		return NULL;
	*issuer = t->issuer;
	return cert;
}

int cfl_tls_peer(const struct cfl_tls *t, struct cfl_tls_peer *out)
{
	X509 *cert = t != NULL && t->done ? SSL_get0_peer_certificate(t->ssl) : NULL;
	const X509_NAME *n;

	memset(out, 0, sizeof(*out));
	if (cert == NULL)
		return CFL_ENOENT;
	n = X509_get_subject_name(cert);
	name_entry(n, NID_commonName, out->cn, sizeof(out->cn));
	name_entry(n, NID_organizationName, out->org, sizeof(out->org));
	name_entry(n, NID_pkcs9_unstructuredName, out->role, sizeof(out->role));
	return 0;
}

const char *cfl_tls_version(const struct cfl_tls *t)
{
	return t != NULL && t->done ? SSL_get_version(t->ssl) : "none";
}

const char *cfl_tls_cipher(const struct cfl_tls *t)
{
	const SSL_CIPHER *c = t != NULL && t->done ? SSL_get_current_cipher(t->ssl) : NULL;

	return c != NULL ? SSL_CIPHER_get_name(c) : "none";
}
