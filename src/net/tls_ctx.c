/* TLS contexts: credentials, trust (the anchor, the issuing chain from the holder's own
 * certificate file, the pinned issuing CA, the CRLs) and policy; swapped whole on reload while
 * the sessions made from an older one go on with it. */
#define _GNU_SOURCE
#include "tls_int.h"

#include "cfl/log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* TLS 1.2 suites with forward secrecy and an AEAD only; TLS 1.3 suites are all of that kind. */
#define TLS12_CIPHERS                                                \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* TLS 1.3: all AEAD; AES-128-GCM first, the fastest with AES-NI and as strong as needed. */
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define GROUPS       "X25519:P-256:P-384"

#define PEM_FILE_MAX (1u << 20)  /* a certificate, key or anchor file */
#define CRL_FILE_MAX (16u << 20) /* a CRL file: 16 MiB holds some 400 000 serials */

/* --- reading the files ------------------------------------------------------------------- */

/* Opens `path` for PEM reading when it is a regular file of at most `max` bytes. */
static int open_pem(const char *what, const char *path, size_t max, BIO **out, struct cfl_err *e)
{
	struct stat st;

	*out = NULL;
	if (path == NULL || path[0] == '\0')
		return cfl_err_set(e, CFL_EINVAL, "no %s file given", what);
	if (stat(path, &st) != 0)
		return cfl_err_set(e, errno == ENOENT ? CFL_ENOENT : CFL_EIO,
		                   "cannot read %s '%s': %s", what, path, strerror(errno));
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max)
		return cfl_err_set(e, CFL_ETOOBIG, "%s '%s' is not a file of at most %zu bytes",
		                   what, path, max);
	*out = BIO_new_file(path, "r");
	if (*out == NULL)
		return cfl__tls_fail(e, CFL_EIO, "cannot read", path);
	return 0;
}

/* Every certificate of a PEM file, in order; at least one. */
static int read_certs(const char *what, const char *path, STACK_OF(X509) * *out, struct cfl_err *e)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *b = NULL;
	X509 *x;
	int rc = open_pem(what, path, PEM_FILE_MAX, &b, e);

	if (rc == 0 && sk == NULL)
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	while (rc == 0 && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
		}
	}
	ERR_clear_error(); /* the end of the file */
	if (rc == 0 && sk_X509_num(sk) == 0)
		rc = cfl_err_set(e, CFL_ECRYPTO, "cannot load %s '%s': no PEM certificate in it",
		                 what, path);
	BIO_free(b);
	if (rc != 0)
		sk_X509_pop_free(sk, X509_free);
	*out = rc == 0 ? sk : NULL;
	return rc;
}

static int read_key(const char *path, EVP_PKEY **out, struct cfl_err *e)
{
	BIO *b = NULL;
	int rc = open_pem("private key", path, PEM_FILE_MAX, &b, e);

	if (rc != 0)
		return rc;
	*out = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (*out == NULL)
		return cfl__tls_fail(e, CFL_ECRYPTO, "cannot load private key", path);
	return 0;
}

/* The CRLs of a PEM file, each issued and signed by `issuer`. A missing file is no CRL. */
static int read_crls(const char *path, X509 *issuer, STACK_OF(X509_CRL) * *out, struct cfl_err *e)
{
	STACK_OF(X509_CRL) *sk = NULL;
	X509_CRL *crl;
	BIO *b = NULL;
	char name[256];
	int rc = open_pem("CRL", path, CRL_FILE_MAX, &b, e);

	*out = NULL;
	if (rc == CFL_ENOENT)
		return 0;
	if (rc == 0 && (sk = sk_X509_CRL_new_null()) == NULL)
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	cfl__tls_name_line(X509_get_subject_name(issuer), name, sizeof(name));
	while (rc == 0 && (crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)) != NULL) {
		if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0 ||
		    X509_CRL_verify(crl, X509_get0_pubkey(issuer)) != 1)
			rc = cfl_err_set(
			        e, CFL_EVERIFY,
			        "CRL in '%s' is not signed by the project's issuing CA '%s'", path,
			        name);
		else if (X509_CRL_get0_nextUpdate(crl) != NULL &&
		         X509_cmp_time(X509_CRL_get0_nextUpdate(crl), NULL) < 0)
			rc = cfl_err_set(
			        e, CFL_EVERIFY,
			        "CRL in '%s' is out of date (past its nextUpdate): make a new "
			        "one",
			        path);
		if (rc != 0 || sk_X509_CRL_push(sk, crl) <= 0) {
			X509_CRL_free(crl);
			rc = rc != 0 ? rc : cfl_err_set(e, CFL_ENOMEM, "out of memory");
		}
	}
	ERR_clear_error();
	if (rc == 0 && sk_X509_CRL_num(sk) == 0)
		rc = cfl_err_set(e, CFL_EPARSE, "no PEM X.509 CRL in '%s'", path);
	BIO_free(b);
	if (rc != 0)
		sk_X509_CRL_pop_free(sk, X509_CRL_free);
	*out = rc == 0 ? sk : NULL;
	return rc;
}

/* --- what a context is made of -------------------------------------------------------------- */

/* One generation's credentials and trust. */
struct parts {
	X509 *leaf;
	STACK_OF(X509) * chain;
	EVP_PKEY *key;
	STACK_OF(X509) * anchors;
	X509 *issuer;
	STACK_OF(X509_CRL) * crls;
};

static void parts_free(struct parts *p)
{
	X509_free(p->leaf);
	sk_X509_pop_free(p->chain, X509_free);
	EVP_PKEY_free(p->key);
	sk_X509_pop_free(p->anchors, X509_free);
	X509_free(p->issuer);
	sk_X509_CRL_pop_free(p->crls, X509_CRL_free);
	memset(p, 0, sizeof(*p));
}

static int self_signed(X509 *x)
{
	return X509_check_issued(x, x) == X509_V_OK;
}

/* A store for checking certificates against the anchors, with `chain` as intermediates. The
 * anchor need not be self-signed (an enterprise intermediate given alone). */
static X509_STORE *trust_store(STACK_OF(X509) * anchors, STACK_OF(X509) * chain)
{
	X509_STORE *st = X509_STORE_new();
	int i;

	for (i = 0; st != NULL && i < sk_X509_num(anchors); i++)
		X509_STORE_add_cert(st, sk_X509_value(anchors, i));
	for (i = 0; st != NULL && i < sk_X509_num(chain); i++)
		X509_STORE_add_cert(st, sk_X509_value(chain, i));
	if (st != NULL && sk_X509_num(anchors) > 0 && !self_signed(sk_X509_value(anchors, 0)))
		X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
	return st;
}

/* The holder's own certificate must chain to the anchors through its file's chain: a renewed
 * certificate from another CA is refused before it replaces a good one. */
static int check_own_chain(const struct parts *p, const char *path, struct cfl_err *e)
{
	X509_STORE *st = trust_store(p->anchors, NULL);
	X509_STORE_CTX *xs = X509_STORE_CTX_new();
	int ok = st != NULL && xs != NULL && X509_STORE_CTX_init(xs, st, p->leaf, p->chain) == 1 &&
	         X509_verify_cert(xs) == 1;
	int err = xs != NULL ? X509_STORE_CTX_get_error(xs) : 0;

	X509_STORE_CTX_free(xs);
	X509_STORE_free(st);
	ERR_clear_error();
	if (ok)
		return 0;
	return cfl_err_set(e, CFL_EVERIFY, "the certificate in '%s' does not chain to the CA: %s",
	                   path, X509_verify_cert_error_string(err));
}

/* Own certificate, issuing chain and key. */
static int load_own(struct parts *p, const struct cfl_tls_config *cfg, struct cfl_err *e)
{
	STACK_OF(X509) * certs;
	int rc = read_certs("certificate", cfg->cert_file, &certs, e);

	if (rc != 0)
		return rc;
	p->leaf = sk_X509_shift(certs);
	p->chain = certs;
	if ((rc = read_key(cfg->key_file, &p->key, e)) != 0)
		return rc;
	if (X509_check_private_key(p->leaf, p->key) != 1) {
		ERR_clear_error();
		return cfl_err_set(e, CFL_ECRYPTO,
		                   "the key in '%s' does not match the certificate in '%s'",
		                   cfg->key_file, cfg->cert_file);
	}
	return 0;
}

/* The issuing CA peers must be issued by: the second certificate of the holder's file, or the
 * anchor when that file holds the leaf alone. */
static int load_issuer(struct parts *p, const char *own_file, struct cfl_err *e)
{
	STACK_OF(X509) * certs;
	int rc = read_certs("certificate", own_file, &certs, e);

	if (rc != 0)
		return rc;
	p->issuer = sk_X509_num(certs) > 1 ? sk_X509_value(certs, 1) : sk_X509_value(p->anchors, 0);
	X509_up_ref(p->issuer);
	if (p->chain == NULL) {
		/* A tls client: the issuing chain helps build the server's chain too. */
		X509_free(sk_X509_shift(certs));
		p->chain = certs;
	} else {
		sk_X509_pop_free(certs, X509_free);
	}
	return 0;
}

/* Reads everything `cfg` names. On a renewal the holder's certificate must also chain to the
 * anchors (at start, a kit from the wrong project meets its refusal at the handshake, where the
 * message says which side and why). */
static int load_parts(struct parts *p, const struct cfl_tls_config *cfg, int renewal,
                      struct cfl_err *e)
{
	const char *own = cfg->own_cert_file != NULL ? cfg->own_cert_file : cfg->cert_file;
	int rc;

	if ((cfg->is_server || cfg->mode == CFL_SEC_MTLS) && (rc = load_own(p, cfg, e)) != 0)
		return rc;
	if (!cfg->is_server || cfg->mode == CFL_SEC_MTLS) {
		if ((rc = read_certs("CA certificate", cfg->ca_file, &p->anchors, e)) != 0)
			return rc;
		if (own != NULL && (rc = load_issuer(p, own, e)) != 0)
			return rc;
	}
	if (renewal && p->leaf != NULL && p->anchors != NULL &&
	    (rc = check_own_chain(p, cfg->cert_file, e)) != 0)
		return rc;
	if (cfg->crl_file != NULL && p->issuer != NULL)
		return read_crls(cfg->crl_file, p->issuer, &p->crls, e);
	return 0;
}

/* --- building a context --------------------------------------------------------------------- */

/* Protocol floor, suites, options and verification policy for the role and mode. */
static int set_policy(SSL_CTX *ssl, int is_server, enum cfl_conn_sec mode, struct cfl_err *e)
{
	int verify = SSL_VERIFY_NONE;

	if (SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ssl, TLS12_CIPHERS) != 1 ||
	    SSL_CTX_set_ciphersuites(ssl, TLS13_SUITES) != 1 ||
	    SSL_CTX_set1_groups_list(ssl, GROUPS) != 1)
		return cfl__tls_fail(e, CFL_ECRYPTO, "cannot set the TLS policy for", "a context");
	SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	/* Partial writes and a movable buffer fit a write queue that is drained as the socket
	 * allows; released buffers keep idle connections small. */
	SSL_CTX_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                              SSL_MODE_RELEASE_BUFFERS);
	/* Read-ahead: one read takes a record's header, its body and whatever follows, where
	 * OpenSSL would otherwise read the 5-byte header and the body separately. */
	SSL_CTX_set_read_ahead(ssl, 1);
	if (is_server) {
		SSL_CTX_set_num_tickets(ssl, 0);
		SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_OFF);
		if (mode == CFL_SEC_MTLS)
			verify = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	} else {
		verify = SSL_VERIFY_PEER;
		if (mode == CFL_SEC_MTLS)
			SSL_CTX_set_cert_cb(ssl, cfl__tls_cert_requested_cb, NULL);
	}
	SSL_CTX_set_verify(ssl, verify, cfl__tls_verify_cb);
	SSL_CTX_set_verify_depth(ssl, 8);
	return 0;
}

static int use_credentials(SSL_CTX *ssl, const struct parts *p, struct cfl_err *e)
{
	int i;

	if (SSL_CTX_use_certificate(ssl, p->leaf) != 1)
		return cfl__tls_fail(e, CFL_ECRYPTO, "cannot use the certificate", "own");
	for (i = 0; i < sk_X509_num(p->chain); i++) {
		if (SSL_CTX_add1_chain_cert(ssl, sk_X509_value(p->chain, i)) != 1)
			return cfl__tls_fail(e, CFL_ECRYPTO, "cannot use the chain", "own");
	}
	if (SSL_CTX_use_PrivateKey(ssl, p->key) != 1 || SSL_CTX_check_private_key(ssl) != 1)
		return cfl__tls_fail(e, CFL_ECRYPTO, "cannot use the private key", "own");
	return 0;
}

/* Only the project's anchors and issuing chain: never the system store (a public CA must not
 * vouch for a site). With CRLs, the peer's leaf is checked against them. */
static int use_trust(SSL_CTX *ssl, const struct parts *p, int is_server, struct cfl_err *e)
{
	X509_STORE *st = trust_store(p->anchors, p->chain);
	STACK_OF(X509_NAME) *names = is_server ? sk_X509_NAME_new_null() : NULL;
	int i;

	if (st == NULL || (is_server && names == NULL)) {
		X509_STORE_free(st);
		sk_X509_NAME_free(names);
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	}
	for (i = 0; i < sk_X509_CRL_num(p->crls); i++)
		X509_STORE_add_crl(st, sk_X509_CRL_value(p->crls, i));
	if (p->crls != NULL)
		X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
	SSL_CTX_set_cert_store(ssl, st);
	/* Tells clients which CA their certificate must chain to. */
	for (i = 0; names != NULL && i < sk_X509_num(p->anchors); i++) {
		X509_NAME *n = X509_NAME_dup(X509_get_subject_name(sk_X509_value(p->anchors, i)));

		if (n != NULL && sk_X509_NAME_push(names, n) <= 0)
			X509_NAME_free(n);
	}
	if (names != NULL)
		SSL_CTX_set_client_CA_list(ssl, names);
	return 0;
}

static int build(const struct cfl_tls_ctx *ctx, const struct parts *p, SSL_CTX **out,
                 struct cfl_err *e)
{
	SSL_CTX *ssl = SSL_CTX_new(ctx->is_server ? TLS_server_method() : TLS_client_method());
	int rc;

	*out = NULL;
	if (ssl == NULL)
		return cfl__tls_fail(e, CFL_ECRYPTO, "cannot create a TLS context", "openssl");
	if ((rc = set_policy(ssl, ctx->is_server, ctx->mode, e)) != 0 ||
	    (p->leaf != NULL && (rc = use_credentials(ssl, p, e)) != 0) ||
	    (p->anchors != NULL && (rc = use_trust(ssl, p, ctx->is_server, e)) != 0)) {
		SSL_CTX_free(ssl);
		return rc;
	}
	*out = ssl;
	return 0;
}

/* Builds a context from `p` and makes it the current generation (taking `p`'s contents). */
static int install(struct cfl_tls_ctx *ctx, struct parts *p, struct cfl_err *e)
{
	SSL_CTX *ssl;
	struct parts old;
	int rc = build(ctx, p, &ssl, e);

	if (rc != 0)
		return rc;
	pthread_mutex_lock(&ctx->lock);
	SSL_CTX_free(ctx->ssl);
	ctx->ssl = ssl;
	old = (struct parts){ctx->leaf, ctx->chain, ctx->key, ctx->anchors, ctx->issuer, ctx->crls};
	ctx->leaf = p->leaf;
	ctx->chain = p->chain;
	ctx->key = p->key;
	ctx->anchors = p->anchors;
	ctx->issuer = p->issuer;
	ctx->crls = p->crls;
	pthread_mutex_unlock(&ctx->lock);
	memset(p, 0, sizeof(*p));
	parts_free(&old);
	return 0;
}

/* --- contexts ------------------------------------------------------------------------------ */

static int check_config(const struct cfl_tls_config *cfg, struct cfl_err *e)
{
	if (cfg == NULL || (cfg->mode != CFL_SEC_TLS && cfg->mode != CFL_SEC_MTLS))
		return cfl_err_set(e, CFL_EINVAL,
		                   "a TLS context needs connection_security tls or mtls (clear "
		                   "connections use none)");
	return 0;
}

int cfl_tls_ctx_new(const struct cfl_tls_config *cfg, struct cfl_tls_ctx **out, struct cfl_err *e)
{
	struct cfl_tls_ctx *ctx;
	struct parts p = {0};
	int rc;

	*out = NULL;
	if ((rc = check_config(cfg, e)) != 0)
		return rc;
	ERR_clear_error();
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL || pthread_mutex_init(&ctx->lock, NULL) != 0) {
		free(ctx);
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	}
	atomic_init(&ctx->refs, 1);
	ctx->is_server = cfg->is_server != 0;
	ctx->mode = cfg->mode;
	if (cfg->ca_file != NULL && (ctx->ca_file = strdup(cfg->ca_file)) == NULL)
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	if (rc == 0 && (rc = load_parts(&p, cfg, 0, e)) == 0)
		rc = install(ctx, &p, e);
	parts_free(&p);
	if (rc != 0) {
		cfl_tls_ctx_free(ctx);
		return rc;
	}
	*out = ctx;
	return 0;
}

int cfl_tls_ctx_reload(struct cfl_tls_ctx *ctx, const struct cfl_tls_config *cfg, struct cfl_err *e)
{
	struct parts p = {0};
	int rc = check_config(cfg, e);

	if (rc == 0 && ((cfg->is_server != 0) != ctx->is_server || cfg->mode != ctx->mode))
		rc = cfl_err_set(e, CFL_EINVAL, "a TLS context cannot change its role or mode");
	ERR_clear_error();
	if (rc == 0 && (rc = load_parts(&p, cfg, 1, e)) == 0)
		rc = install(ctx, &p, e);
	parts_free(&p);
	return rc;
}

/* Takes a reference on each of the current generation's parts. */
static void parts_copy(const struct cfl_tls_ctx *ctx, struct parts *p)
{
	p->leaf = ctx->leaf;
	p->key = ctx->key;
	p->issuer = ctx->issuer;
	if (p->leaf != NULL)
		X509_up_ref(p->leaf);
	if (p->key != NULL)
		EVP_PKEY_up_ref(p->key);
	if (p->issuer != NULL)
		X509_up_ref(p->issuer);
	p->chain = ctx->chain != NULL ? X509_chain_up_ref(ctx->chain) : NULL;
	p->anchors = ctx->anchors != NULL ? X509_chain_up_ref(ctx->anchors) : NULL;
}

int cfl_tls_ctx_set_crl(struct cfl_tls_ctx *ctx, const char *crl_file, struct cfl_err *e)
{
	struct parts p = {0};
	int rc;

	pthread_mutex_lock(&ctx->lock);
	parts_copy(ctx, &p);
	pthread_mutex_unlock(&ctx->lock);
	ERR_clear_error();
	if (p.issuer == NULL)
		rc = 0; /* nothing to check peers against (a tls server, a proxy's CA) */
	else if ((rc = read_crls(crl_file, p.issuer, &p.crls, e)) == 0)
		rc = install(ctx, &p, e);
	parts_free(&p);
	return rc;
}

int cfl_tls_ctx_crl_count(struct cfl_tls_ctx *ctx)
{
	int n;

	pthread_mutex_lock(&ctx->lock);
	n = ctx->crls != NULL ? sk_X509_CRL_num(ctx->crls) : 0;
	pthread_mutex_unlock(&ctx->lock);
	return n;
}

/* For a new session: the current SSL_CTX and pin, each with a reference of its own. */
SSL_CTX *cfl__tls_ctx_current(struct cfl_tls_ctx *ctx, X509 **issuer)
{
	SSL_CTX *ssl;

	pthread_mutex_lock(&ctx->lock);
	ssl = ctx->ssl;
	SSL_CTX_up_ref(ssl);
	*issuer = ctx->issuer;
	if (*issuer != NULL)
		X509_up_ref(*issuer);
	pthread_mutex_unlock(&ctx->lock);
	return ssl;
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
	struct parts p;
	int left;

	if (ctx == NULL)
		return;
	left = atomic_fetch_sub(&ctx->refs, 1) - 1;
	assert(left >= 0);
	if (left > 0)
		return;
	SSL_CTX_free(ctx->ssl);
	p = (struct parts){ctx->leaf, ctx->chain, ctx->key, ctx->anchors, ctx->issuer, ctx->crls};
	parts_free(&p);
	pthread_mutex_destroy(&ctx->lock);
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
