/* TLS and mTLS over non-blocking sockets (OpenSSL 3 lives behind this header; src/net/tls*.c,
 * split by concern, are the only files that include OpenSSL's SSL headers).
 *
 * A context (`struct cfl_tls_ctx`) holds one role's credentials and policy, read once at setup:
 *
 *   role    mode  presents        verifies the peer
 *   server  mtls  cert_file       requires a client certificate chained to ca_file
 *   server  tls   cert_file       asks for no client certificate (ca_file unused, may be NULL)
 *   client  mtls  cert_file       the server against ca_file, and its host name or IP; the
 *                                 server must ask for the client certificate (a server in tls
 *                                 mode does not: connection_security mismatch)
 *   client  tls   nothing         the server against ca_file (customRootCA.pem when the kit has
 *                                 one, else rootCA.pem), and its host name or IP
 *
 * The trust store is ca_file (the anchor; never the system store) with the issuing chain of the
 * holder's own certificate file (own_cert_file, default cert_file: the leaf, then the CAs below
 * the anchor), which also builds peers' chains. A peer's leaf must be issued by exactly the
 * project's issuing CA: the second certificate of that file, or the anchor when it holds one
 * (a certificate for a participant's name from another intermediate of the same root is
 * refused). With crl_file, peers' leaves are checked against those CRLs ("certificate revoked").
 * A context can be rebuilt while in use (cfl_tls_ctx_reload, cfl_tls_ctx_set_crl): sessions
 * already made keep the generation they were made from. TLS 1.2 is the minimum and 1.3 is
 * preferred; TLS 1.2 is limited to ECDHE with AES-GCM or ChaCha20-Poly1305. No renegotiation,
 * no compression, no session tickets.
 *
 * A session (`struct cfl_tls`) runs over a connected non-blocking socket that the caller owns
 * and polls: each call does what it can without blocking and says which readiness it waits for.
 * Failures come back as readable messages that diagnose the usual misconfigurations, in
 * particular a connection_security mismatch between the two sides (a TLS client facing a clear
 * server, clear frames reaching a TLS listener, a tls-mode client facing an mtls server), an
 * unknown CA and a host name the server certificate does not cover.
 *
 * Threads: a context may be shared by sessions on any threads (it is reference-counted and
 * read-only after creation); a session belongs to one thread at a time. */
#ifndef CFL_TLS_H
#define CFL_TLS_H

#include "cfl/err.h"

#include <stddef.h>
#include <sys/types.h>

/* Connection security (SPEC §4), per project, per participant and per connection. */
enum cfl_conn_sec {
	CFL_SEC_UNSET = 0,
	CFL_SEC_CLEAR,
	CFL_SEC_TLS,
	CFL_SEC_MTLS,
};

/* Parses (project files and kit configs) "clear"/"tls"/"mtls", case-insensitive; CFL_EINVAL
 * otherwise. */
int cfl_conn_sec_parse(const char *s, enum cfl_conn_sec *out);
const char *cfl_conn_sec_name(enum cfl_conn_sec s); /* "clear", "tls", "mtls", "unset" */

struct cfl_tls_ctx;
struct cfl_tls;

struct cfl_tls_config {
	int is_server;
	enum cfl_conn_sec mode; /* CFL_SEC_TLS or CFL_SEC_MTLS (clear needs no context) */
	const char *cert_file;  /* PEM chain; required except for a tls-mode client */
	const char *key_file;   /* PEM private key matching cert_file */
	const char *ca_file;    /* PEM trust anchors; required except for a tls-mode server */
	/* The holder's certificate file whose chain names the issuing CA peers must be issued by;
	 * NULL: cert_file, and without either no issuer pin and no CRL (a tls-mode client whose
	 * ca_file is a proxy's CA). */
	const char *own_cert_file;
	/* PEM CRLs of the issuing CA, or NULL; a missing file means no revocation. Each CRL must
	 * be signed by the issuing CA (else CFL_EVERIFY). One past its nextUpdate still counts. */
	const char *crl_file;
};

/* Reads the files and builds a context. Returns 0 and *out (release with cfl_tls_ctx_free), or
 * CFL_EINVAL (bad config), CFL_ENOENT / CFL_EIO (a file missing or unreadable), CFL_ECRYPTO
 * (a file OpenSSL rejects, or a key that does not match the certificate), with `e` naming the
 * file and the cause. */
int cfl_tls_ctx_new(const struct cfl_tls_config *cfg, struct cfl_tls_ctx **out, struct cfl_err *e);

/* Rebuilds `ctx` from the files of `cfg` (same role and mode; renewal of the certificate and
 * key, a new CRL): new sessions use the new files, live ones go on. The holder's certificate
 * must match its key and chain to ca_file. On failure (errors as cfl_tls_ctx_new) the context
 * is unchanged. Call from one thread at a time; sessions may be made meanwhile on any. */
int cfl_tls_ctx_reload(struct cfl_tls_ctx *ctx, const struct cfl_tls_config *cfg,
                       struct cfl_err *e);

/* Replaces the CRLs with those of `crl_file` (a missing file: none), keeping the credentials
 * and trust read last. A CRL not signed by the issuing CA, or unreadable, leaves the context
 * unchanged (CFL_EVERIFY, CFL_EPARSE, CFL_ETOOBIG with `e` set). No-op (0) for a context
 * that checks no peer certificate chain (a tls-mode server). */
int cfl_tls_ctx_set_crl(struct cfl_tls_ctx *ctx, const char *crl_file, struct cfl_err *e);

/* The number of CRLs in force (for logs). */
int cfl_tls_ctx_crl_count(struct cfl_tls_ctx *ctx);

/* Takes one more reference on `ctx` (for an object that keeps it, such as a listener);
 * returns `ctx`. Each reference is dropped with cfl_tls_ctx_free(). */
struct cfl_tls_ctx *cfl_tls_ctx_ref(struct cfl_tls_ctx *ctx);

/* Drops the caller's reference; the context lives on while sessions made from it exist.
 * NULL is a no-op. */
void cfl_tls_ctx_free(struct cfl_tls_ctx *ctx);

int cfl_tls_ctx_is_server(const struct cfl_tls_ctx *ctx);
enum cfl_conn_sec cfl_tls_ctx_mode(const struct cfl_tls_ctx *ctx);

/* A session over the connected socket `fd` (not owned: the caller closes it after
 * cfl_tls_free). A client passes the host name or IP literal it dialed as `host`: the server
 * certificate must match it (SAN dNSName or iPAddress) and names are sent as SNI. Servers pass
 * NULL. Returns 0 and *out, or CFL_EINVAL / CFL_ENOMEM / CFL_ECRYPTO with `e` set. */
int cfl_tls_new(struct cfl_tls_ctx *ctx, int fd, const char *host, struct cfl_tls **out,
                struct cfl_err *e);

/* Frees the session without sending anything. NULL is a no-op. */
void cfl_tls_free(struct cfl_tls *t);

/* Advances the handshake. Returns 0 once it is complete, CFL_EAGAIN with *want set to the
 * readiness to wait for (CFL_EV_READ or CFL_EV_WRITE of cfl/loop.h), or an error with `e`
 * set: CFL_EVERIFY (the peer's certificate was rejected, or it rejected ours), CFL_EPROTO (the
 * peer does not speak TLS or no parameters in common; connection_security mismatches are
 * reported this way), CFL_ECLOSED (the peer closed first), CFL_ECONN (socket error). Never
 * blocks. */
int cfl_tls_handshake(struct cfl_tls *t, int *want, struct cfl_err *e);

/* Reads up to `len` decrypted bytes. Returns the count (> 0), CFL_EAGAIN with *want set,
 * CFL_ECLOSED when the peer closed (close_notify or end of stream), or an error as
 * cfl_tls_handshake() with `e` set (e.g. the alert an mtls server sends a client that
 * presented no certificate arrives here, after a TLS 1.3 client finished its handshake). */
ssize_t cfl_tls_read(struct cfl_tls *t, void *buf, size_t len, int *want, struct cfl_err *e);

/* Writes up to `len` bytes; returns the count accepted (> 0, possibly less than len),
 * CFL_EAGAIN with *want set, or an error with `e` set. After CFL_EAGAIN the next call must
 * offer the same bytes again (more may follow them; the buffer may move). */
ssize_t cfl_tls_write(struct cfl_tls *t, const void *buf, size_t len, int *want, struct cfl_err *e);

/* Non-zero when the session holds input already taken from the socket (decrypted bytes, or 1
 * for undecrypted record data): readable without the socket becoming readable again, so a
 * caller polling the socket must read before waiting. */
size_t cfl_tls_pending(const struct cfl_tls *t);

/* 1 when the session holds no input (decrypted or not): with read-ahead the last read from the
 * socket took what it held, so a caller polling it (level-triggered) may wait instead of
 * reading again only to get CFL_EAGAIN. */
int cfl_tls_drained(const struct cfl_tls *t);

/* keep 1: the session keeps its record buffers between reads and writes (a busy connection:
 * no allocation per record); keep 0: it releases them whenever they are empty, and now (an
 * idle one holds none: about 34 KiB less). Sessions start releasing. */
void cfl_tls_keep_buffers(struct cfl_tls *t, int keep);

/* Sends close_notify once, best effort, without waiting for the peer's. */
void cfl_tls_shutdown(struct cfl_tls *t);

/* 1 once the TLS handshake itself completed, even if cfl_tls_handshake() then refused the
 * session (an mtls client whose server did not ask for its certificate): the caller may still
 * tell the peer why, through the session, before closing. */
int cfl_tls_established(const struct cfl_tls *t);

/* 1 if the handshake failed because the peer sent cfl frames in the clear (a server whose
 * client is in clear mode): the caller may answer with a clear GOAWAY explaining it. */
int cfl_tls_peer_spoke_clear(const struct cfl_tls *t);

/* The subject of the peer's certificate after the handshake. */
struct cfl_tls_peer {
	char cn[256];   /* commonName; "" without a peer certificate */
	char org[256];  /* organizationName, or "" */
	char role[256]; /* unstructuredName (the admin role in cfl kits), or "" */
};

/* The peer's certificate as the handshake verified it (an OpenSSL X509 *, borrowed for the
 * session's life), and in *issuer the issuing CA this side pinned it to (X509 *, or NULL when the
 * context pins none); NULL when the peer sent none or the session is not up. For the pki module
 * (cfl_pki_cert_wrap_x509), so that a certificate parsed and verified here is not parsed and
 * verified again. */
const void *cfl_tls_peer_x509(const struct cfl_tls *t, const void **issuer);

/* Fills *out from the peer certificate. Returns 0, or CFL_ENOENT (fields "") when the peer sent
 * none (the client side of a tls-mode server, or before the handshake). */
int cfl_tls_peer(const struct cfl_tls *t, struct cfl_tls_peer *out);

/* Negotiated protocol ("TLSv1.3") and cipher ("TLS_AES_256_GCM_SHA384") for logs; static
 * strings, "none" before the handshake. */
const char *cfl_tls_version(const struct cfl_tls *t);
const char *cfl_tls_cipher(const struct cfl_tls *t);

#endif
