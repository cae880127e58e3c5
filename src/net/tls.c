/* TLS contexts and sessions over OpenSSL 3: the only file that includes OpenSSL's SSL headers.
 *
 * Most of the code here is about saying *why* a handshake failed. OpenSSL reports failures as a
 * queue of library reason codes ("wrong version number", "tlsv13 alert certificate required"),
 * which are accurate but do not tell an operator which setting to change. So a session keeps
 * the evidence it needs: the first bytes the peer sent (a clear cfl peer starts with the frame
 * magic "CF"), the first certificate verification error with the certificate's subject, issuer
 * and names, and the alerts received; diagnose() turns them into one sentence. */
#define _GNU_SOURCE
#include "cfl/tls.h"

#include "cfl/log.h"
#include "cfl/loop.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* TLS 1.2 suites with forward secrecy and an AEAD only; TLS 1.3 suites are all of that kind. */
#define TLS12_CIPHERS                                                \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* TLS 1.3: all AEAD; AES-128-GCM first, the fastest with AES-NI and as strong as needed. */
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define GROUPS       "X25519:P-256:P-384"
#define MISMATCH     "(connection_security mismatch)"
#define FIRST_MAX    8

struct cfl_tls_ctx {
	SSL_CTX *ssl;
	atomic_int refs;
	int is_server;
	enum cfl_conn_sec mode;
	char *ca_file; /* for messages */
};

struct cfl_tls {
	struct cfl_tls_ctx *ctx;
	SSL *ssl;
	int fd;
	int done;                 /* handshake complete */
	int sniffed;              /* server: the peer's first byte was checked */
	int clear_peer;           /* server: the peer sent cfl frames in the clear */
	int established;          /* the TLS handshake completed (policy checks may follow) */
	int cert_requested;       /* client: the server sent a CertificateRequest */
	char host[256];           /* client: the name or IP dialed */
	uint8_t first[FIRST_MAX]; /* client: the first bytes the server sent */
	size_t nfirst;
	/* The first certificate verification failure, from verify_cb(). */
	int vfy_err;
	char vfy_subject[256], vfy_issuer[256], vfy_names[512], vfy_time[64];
	char vfy_unfit[96]; /* why the leaf cannot prove its role (leaf_unfit), or "" */
};

static int app_index(void);
static int cert_requested_cb(SSL *ssl, void *arg);

/* --- small helpers ---------------------------------------------------------------------- */

static void appendf(char *buf, size_t size, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void appendf(char *buf, size_t size, const char *fmt, ...)
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
static int drain_errors(char *buf, size_t size)
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
			appendf(buf, size, "%s%s", buf[0] ? "; " : "", r);
		else
			appendf(buf, size, "%serror %08lx", buf[0] ? "; " : "", code);
	}
	return first_ssl;
}

/* Sets `e` to "what 'path': <OpenSSL reasons>" and returns `code`. */
static int ssl_fail(struct cfl_err *e, int code, const char *what, const char *path)
{
	char why[512];

	drain_errors(why, sizeof(why));
	return cfl_err_set(e, code, "%s '%s': %s", what, path, why[0] ? why : "unknown error");
}

/* One-line RFC 2253 form of a name, e.g. "CN=server1,O=nvidia". */
static void name_line(const X509_NAME *n, char *buf, size_t size)
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
			appendf(buf, size, "%sDNS:%.*s", sep, ASN1_STRING_length(g->d.dNSName),
			        (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		} else if (g->type == GEN_IPADD) {
			int len = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *p = ASN1_STRING_get0_data(g->d.iPAddress);

			if ((len == 4 || len == 16) &&
			    inet_ntop(len == 4 ? AF_INET : AF_INET6, p, ip, sizeof(ip)) != NULL)
				appendf(buf, size, "%sIP:%s", sep, ip);
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

/* Checks the leaf's role once the chain verified; records the first verification failure with
 * what the message will need; keeps OpenSSL's verdict otherwise. */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct cfl_tls *t = ssl != NULL ? SSL_get_ex_data(ssl, app_index()) : NULL;
	const char *unfit;
	X509 *cert;

	if (t == NULL || t->vfy_err != 0)
		return ok;
	if (ok && X509_STORE_CTX_get_error_depth(xs) == 0 &&
	    (unfit = leaf_unfit(X509_STORE_CTX_get_current_cert(xs), !t->ctx->is_server)) != NULL) {
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
	/* OpenSSL's own purpose check failed first: say why in the same words as ours. */
	if (t->vfy_err == X509_V_ERR_INVALID_PURPOSE && t->vfy_unfit[0] == '\0' &&
	    X509_STORE_CTX_get_error_depth(xs) == 0 &&
	    (unfit = leaf_unfit(cert, !t->ctx->is_server)) != NULL)
		snprintf(t->vfy_unfit, sizeof(t->vfy_unfit), "%s", unfit);
	name_line(X509_get_subject_name(cert), t->vfy_subject, sizeof(t->vfy_subject));
	name_line(X509_get_issuer_name(cert), t->vfy_issuer, sizeof(t->vfy_issuer));
	san_line(cert, t->vfy_names, sizeof(t->vfy_names));
	time_line(t->vfy_err == X509_V_ERR_CERT_NOT_YET_VALID ? X509_get0_notBefore(cert)
	                                                      : X509_get0_notAfter(cert),
	          t->vfy_time, sizeof(t->vfy_time));
	return ok;
}

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

/* OpenSSL calls this on a client only when the server asks for a certificate: an mtls client
 * uses it to notice a server that does not (one in tls mode). */
static int cert_requested_cb(SSL *ssl, void *arg)
{
	struct cfl_tls *t = SSL_get_ex_data(ssl, app_index());

	(void)arg;
	if (t != NULL)
		t->cert_requested = 1;
	return 1;
}

/* The ex_data slot that links an SSL to its struct cfl_tls (for the callbacks). */
static int app_index(void)
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

/* --- contexts --------------------------------------------------------------------------- */

static int check_readable(const char *what, const char *path, struct cfl_err *e)
{
	FILE *f;

	if (path == NULL || path[0] == '\0')
		return cfl_err_set(e, CFL_EINVAL, "no %s file given", what);
	f = fopen(path, "r");
	if (f == NULL)
		return cfl_err_set(e, errno == ENOENT ? CFL_ENOENT : CFL_EIO,
		                   "cannot read %s '%s': %s", what, path, strerror(errno));
	fclose(f);
	return 0;
}

static int load_credentials(SSL_CTX *ssl, const struct cfl_tls_config *cfg, struct cfl_err *e)
{
	int rc;

	if ((rc = check_readable("certificate", cfg->cert_file, e)) != 0 ||
	    (rc = check_readable("private key", cfg->key_file, e)) != 0)
		return rc;
	if (SSL_CTX_use_certificate_chain_file(ssl, cfg->cert_file) != 1)
		return ssl_fail(e, CFL_ECRYPTO, "cannot load certificate", cfg->cert_file);
	if (SSL_CTX_use_PrivateKey_file(ssl, cfg->key_file, SSL_FILETYPE_PEM) != 1 &&
	    ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH)
		return ssl_fail(e, CFL_ECRYPTO, "cannot load private key", cfg->key_file);
	if (SSL_CTX_check_private_key(ssl) != 1) {
		ERR_clear_error();
		return cfl_err_set(e, CFL_ECRYPTO,
		                   "the key in '%s' does not match the certificate in '%s'",
		                   cfg->key_file, cfg->cert_file);
	}
	return 0;
}

static int load_trust(SSL_CTX *ssl, const struct cfl_tls_config *cfg, struct cfl_err *e)
{
	STACK_OF(X509_NAME) * names;
	int rc;

	if ((rc = check_readable("CA certificate", cfg->ca_file, e)) != 0)
		return rc;
	/* Only the project's CA: never the system store (a public CA must not vouch for a site). */
	if (SSL_CTX_load_verify_locations(ssl, cfg->ca_file, NULL) != 1)
		return ssl_fail(e, CFL_ECRYPTO, "cannot load CA certificate", cfg->ca_file);
	if (cfg->is_server) {
		/* Tells clients which CA their certificate must chain to. */
		names = SSL_load_client_CA_file(cfg->ca_file);
		if (names == NULL)
			return ssl_fail(e, CFL_ECRYPTO, "cannot read CA names from", cfg->ca_file);
		SSL_CTX_set_client_CA_list(ssl, names);
	}
	return 0;
}

/* Protocol floor, suites, options and verification policy for `cfg`'s role and mode. */
static int set_policy(SSL_CTX *ssl, const struct cfl_tls_config *cfg, struct cfl_err *e)
{
	int verify = SSL_VERIFY_NONE;

	if (SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ssl, TLS12_CIPHERS) != 1 ||
	    SSL_CTX_set_ciphersuites(ssl, TLS13_SUITES) != 1 ||
	    SSL_CTX_set1_groups_list(ssl, GROUPS) != 1)
		return ssl_fail(e, CFL_ECRYPTO, "cannot set the TLS policy for",
		                cfg->cert_file ? cfg->cert_file : "a client");
	SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	/* Partial writes and a movable buffer fit a write queue that is drained as the socket
	 * allows; released buffers keep idle connections small. */
	SSL_CTX_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                              SSL_MODE_RELEASE_BUFFERS);
	if (cfg->is_server) {
		SSL_CTX_set_num_tickets(ssl, 0);
		SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_OFF);
		if (cfg->mode == CFL_SEC_MTLS)
			verify = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	} else {
		verify = SSL_VERIFY_PEER;
		if (cfg->mode == CFL_SEC_MTLS)
			SSL_CTX_set_cert_cb(ssl, cert_requested_cb, NULL);
	}
	SSL_CTX_set_verify(ssl, verify, verify_cb);
	SSL_CTX_set_verify_depth(ssl, 8);
	return 0;
}

int cfl_tls_ctx_new(const struct cfl_tls_config *cfg, struct cfl_tls_ctx **out, struct cfl_err *e)
{
	struct cfl_tls_ctx *ctx = NULL;
	int rc;

	*out = NULL;
	if (cfg == NULL || (cfg->mode != CFL_SEC_TLS && cfg->mode != CFL_SEC_MTLS))
		return cfl_err_set(e, CFL_EINVAL,
		                   "a TLS context needs connection_security tls or mtls (clear "
		                   "connections use none)");
	ERR_clear_error();
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	atomic_init(&ctx->refs, 1);
	ctx->is_server = cfg->is_server != 0;
	ctx->mode = cfg->mode;
	ctx->ssl = SSL_CTX_new(cfg->is_server ? TLS_server_method() : TLS_client_method());
	if (ctx->ssl == NULL) {
		rc = ssl_fail(e, CFL_ECRYPTO, "cannot create a TLS context", "openssl");
		goto out;
	}
	if ((rc = set_policy(ctx->ssl, cfg, e)) != 0)
		goto out;
	if ((cfg->is_server || cfg->mode == CFL_SEC_MTLS) &&
	    (rc = load_credentials(ctx->ssl, cfg, e)) != 0)
		goto out;
	if (!cfg->is_server || cfg->mode == CFL_SEC_MTLS) {
		if ((rc = load_trust(ctx->ssl, cfg, e)) != 0)
			goto out;
		ctx->ca_file = strdup(cfg->ca_file);
		if (ctx->ca_file == NULL) {
			rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
			goto out;
		}
	}
	*out = ctx;
	ctx = NULL;
	rc = 0;
out:
	cfl_tls_ctx_free(ctx);
	return rc;
}

struct cfl_tls_ctx *cfl_tls_ctx_ref(struct cfl_tls_ctx *ctx)
{
	if (ctx != NULL) {
		assert(atomic_load(&ctx->refs) > 0);
		atomic_fetch_add(&ctx->refs, 1);
	}
	return ctx;
}

void cfl_tls_ctx_free(struct cfl_tls_ctx *ctx)
{
	int left;

	if (ctx == NULL)
		return;
	left = atomic_fetch_sub(&ctx->refs, 1) - 1;
	assert(left >= 0);
	if (left > 0)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx->ca_file);
	free(ctx);
}

int cfl_tls_ctx_is_server(const struct cfl_tls_ctx *ctx)
{
	return ctx != NULL && ctx->is_server;
}

enum cfl_conn_sec cfl_tls_ctx_mode(const struct cfl_tls_ctx *ctx)
{
	return ctx != NULL ? ctx->mode : CFL_SEC_UNSET;
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
			return ssl_fail(e, CFL_EINVAL, "cannot check the server against", host);
		return 0;
	}
	if (SSL_set1_host(t->ssl, host) != 1 || SSL_set_tlsext_host_name(t->ssl, host) != 1)
		return ssl_fail(e, CFL_EINVAL, "cannot check the server against", host);
	return 0;
}

int cfl_tls_new(struct cfl_tls_ctx *ctx, int fd, const char *host, struct cfl_tls **out,
                struct cfl_err *e)
{
	struct cfl_tls *t;
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
	t->ssl = SSL_new(ctx->ssl);
	if (t->ssl == NULL || SSL_set_fd(t->ssl, fd) != 1 ||
	    SSL_set_ex_data(t->ssl, app_index(), t) != 1) {
		rc = ssl_fail(e, CFL_ECRYPTO, "cannot create a TLS session on", "socket");
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
	cfl_tls_ctx_free(t->ctx);
	free(t);
}

/* --- diagnosis -------------------------------------------------------------------------- */

static void hex_line(const uint8_t *p, size_t n, char *buf, size_t size)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		appendf(buf, size, "%s%02x", i ? " " : "", p[i]);
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
		return cfl_err_set(e, CFL_EVERIFY, "%s certificate '%s' rejected: %s", who,
		                   t->vfy_subject, X509_verify_cert_error_string(t->vfy_err));
	}
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
	case SSL_AD_BAD_CERTIFICATE:
	case SSL_AD_UNSUPPORTED_CERTIFICATE:
	case SSL_AD_CERTIFICATE_REVOKED:
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
static int diagnose(struct cfl_tls *t, int ssl_err, int err_no, struct cfl_err *e)
{
	char why[512], bytes[3 * FIRST_MAX];
	int reason = drain_errors(why, sizeof(why));

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
static int sniff(struct cfl_tls *t, int *want, struct cfl_err *e)
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

/* --- I/O -------------------------------------------------------------------------------- */

int cfl_tls_handshake(struct cfl_tls *t, int *want, struct cfl_err *e)
{
	int rc, err, err_no;

	if (t->done)
		return 0;
	if (t->established)
		return cfl_err_set(e, CFL_EPROTO, "the TLS session was refused");
	if (t->ctx->is_server && !t->sniffed && (rc = sniff(t, want, e)) != 0)
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
	return diagnose(t, err, err_no, e);
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
		return diagnose(t, err, err_no, e);
	default:
		return diagnose(t, err, err_no, e);
	}
}

ssize_t cfl_tls_read(struct cfl_tls *t, void *buf, size_t len, int *want, struct cfl_err *e)
{
	size_t n = 0;
	int err_no;

	ERR_clear_error();
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

	ERR_clear_error();
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
