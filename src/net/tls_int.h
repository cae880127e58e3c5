/* Internal to TLS (src/net/tls*.c, the only files that include OpenSSL's SSL headers): the
 * context and session records and the helpers the three files share. tls_ctx.c builds contexts
 * (credentials, trust, revocation, policy) and swaps them on reload; tls_diag.c turns failed
 * handshakes into one readable sentence; tls.c runs sessions. */
#ifndef CFL_TLS_INT_H
#define CFL_TLS_INT_H

#include "cfl/tls.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define MISMATCH  "(connection_security mismatch)"
#define FIRST_MAX 8

struct cfl_tls_ctx {
	atomic_int refs;
	int is_server;
	enum cfl_conn_sec mode;
	char *ca_file;        /* for messages */
	pthread_mutex_t lock; /* guards the generation below (reload vs new sessions) */
	/* The current generation: what new sessions are made from. A session keeps its own
	 * references (SSL_new takes one on the SSL_CTX), so a reload never touches it. */
	SSL_CTX *ssl;
	X509 *issuer;              /* a peer's leaf must be issued by exactly this; NULL: no pin */
	X509 *leaf;                /* own certificate, or NULL (a tls-mode client) */
	STACK_OF(X509) * chain;    /* own issuing chain below the anchor (may be empty) */
	EVP_PKEY *key;             /* own private key, or NULL */
	STACK_OF(X509) * anchors;  /* the trust anchors of ca_file (NULL: none) */
	STACK_OF(X509_CRL) * crls; /* the issuing CA's CRLs (NULL: no revocation check) */
};

struct cfl_tls {
	struct cfl_tls_ctx *ctx;
	SSL *ssl;
	X509 *issuer; /* the context's pin when the session was made (a reference), or NULL */
	int fd;
	int done;                 /* handshake complete */
	int sniffed;              /* server: the peer's first byte was checked */
	int clear_peer;           /* server: the peer sent cfl frames in the clear */
	int established;          /* the TLS handshake completed (policy checks may follow) */
	int cert_requested;       /* client: the server sent a CertificateRequest */
	char host[256];           /* client: the name or IP dialed */
	uint8_t first[FIRST_MAX]; /* client: the first bytes the server sent */
	size_t nfirst;
	/* The first certificate verification failure, from the verify callback. */
	int vfy_err;
	char vfy_subject[256], vfy_issuer[256], vfy_names[512], vfy_time[64];
	char vfy_unfit[96];  /* why the leaf cannot prove its role (leaf_unfit), or "" */
	char vfy_pin[320];   /* the project's issuing CA, when the leaf has another issuer */
	char vfy_serial[80]; /* the leaf's serial (hex), for a revoked one */
};

/* The ex_data slot that links an SSL to its struct cfl_tls (for the callbacks). */
int cfl__tls_app_index(void);

/* For a new session: the current generation's SSL_CTX and pinned issuer, each with a reference
 * the caller drops (tls_ctx.c). */
SSL_CTX *cfl__tls_ctx_current(struct cfl_tls_ctx *ctx, X509 **issuer);

/* The verify callback of every context (tls_ctx.c). */
int cfl__tls_verify_cb(int ok, X509_STORE_CTX *xs);
/* OpenSSL calls this on a client only when the server asks for a certificate. */
int cfl__tls_cert_requested_cb(SSL *ssl, void *arg);

void cfl__tls_appendf(char *buf, size_t size, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Empties OpenSSL's error queue into `buf` as "reason; reason" (may stay empty); returns the
 * SSL library reason code of the first SSL error, or 0. */
int cfl__tls_drain_errors(char *buf, size_t size);
/* Sets `e` to "what 'path': <OpenSSL reasons>" and returns `code`. */
int cfl__tls_fail(struct cfl_err *e, int code, const char *what, const char *path);
/* One-line RFC 2253 form of a name, e.g. "CN=server1,O=nvidia". */
void cfl__tls_name_line(const X509_NAME *n, char *buf, size_t size);

/* Turns a failed SSL call into one readable error in `e`; drains the error queue
 * (tls_diag.c). */
int cfl__tls_diagnose(struct cfl_tls *t, int ssl_err, int err_no, struct cfl_err *e);
/* Server: the first byte before OpenSSL sees anything (a clear cfl peer starts with "CF"). */
int cfl__tls_sniff(struct cfl_tls *t, int *want, struct cfl_err *e);

#endif
