/* Client side of message authentication: challenge → register → token; heartbeats, renewal
 * before expiry, and the check of the server's own headers on every message it sends. */
#include "auth_int.h"

#include "cfl/conn.h"
#include "cfl/digest.h"
#include "cfl/log.h"
#include "cfl/proto.h"
#include "util/num.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cfl_auth_client {
	struct cfl_msg_hub *hub;
	struct cfl_loop *loop;
	char name[CFL_AUTH_NAME_MAX], project[CFL_AUTH_NAME_MAX], server_cn[CFL_AUTH_NAME_MAX];
	enum cfl_auth_kind kind;
	enum cfl_conn_sec mode;
	struct cfl_auth_times t;
	struct cfl_pki_key *key;
	struct cfl_pki_trust *trust; /* anchor + issuing chain + the CRLs in force */
	struct cfl_pki_cert *server_cert;
	char *cert_pem;
	size_t cert_pem_len;
	char root_ca[PATH_MAX], cert_file[PATH_MAX]; /* for a CRL reload */
	/* the current login */
	struct cfl_peer *peer;
	int logged_in;
	char nonce[NONCE_HEX];
	char token[TOKEN_MAX], sig[SIG_B64_MAX], srv_token[TOKEN_MAX], srv_sig[SIG_B64_MAX];
	size_t srv_token_len, srv_sig_len; /* compared on every message from the server */
	int64_t expiry;
	uint64_t ttl_ms; /* lifetime left when the token was issued */
	unsigned renewals;
	uint64_t hb_timer, renew_timer;
	cfl_auth_login_fn fn;
	void *arg;
};

static void login_done(struct cfl_auth_client *c, struct cfl_peer *p, int status,
                       const char *reason)
{
	cfl_auth_login_fn fn = c->fn;

	c->fn = NULL;
	if (fn != NULL)
		fn(p, status, reason, c->arg);
}

/* Server messages after login must carry the server's token and its signature (checked once at
 * login; here constant-time comparisons, in place). Before login only replies can arrive. */
static int gate(struct cfl_peer *p, const struct cfl_frame *f, char *why, size_t n, void *arg)
{
	struct cfl_auth_client *c = arg;
	struct cfl__auth_hdrs a;

	(void)p;
	if (!c->logged_in)
		return f->type == CFL_FRAME_T_REPLY ? 0
		                                    : (cfl__auth_why(why, n, "not logged in"), -1);
	cfl__auth_find_hdrs(f, &a);
	if (cfl__auth_hdr_is(a.name, "server", 6) && a.token != NULL && a.sig != NULL &&
	    a.token->val_len == c->srv_token_len && a.sig->val_len == c->srv_sig_len &&
	    cfl__auth_ct_equal(a.token->val, c->srv_token, c->srv_token_len) &&
	    cfl__auth_ct_equal(a.sig->val, c->srv_sig, c->srv_sig_len))
		return 0;
	cfl__auth_why(why, n, "message without the server's token");
	CFL_WARN("dropped a message from the server side that lacks the server's token");
	return CFL_EAUTH;
}

/* --- heartbeats and renewal ------------------------------------------------------------------ */

/* A heartbeat is a request: a path that went dark (no RST, packets dropped) shows as a missing
 * answer, and the connection is dropped so that the client reconnects and logs in again. */
static void heartbeat_reply(struct cfl_peer *p, int status, const char *reason,
                            const struct cfl_frame *f, int more, struct cfl_msg_sink *sink,
                            void *arg)
{
	(void)arg;
	(void)f;
	(void)more;
	(void)sink;
	if (status == CFL_ETIMEDOUT) {
		CFL_WARN("no answer to a heartbeat: dropping the connection");
		cfl_conn_close(cfl_peer_conn(p), "heartbeat timed out");
	} else if (status != 0 && status != CFL_ECLOSED) {
		CFL_WARN("heartbeat failed: %s", reason ? reason : cfl_strerror(status));
	}
}

static void on_heartbeat(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct cfl_auth_client *c = arg;
	uint64_t wait = c->t.heartbeat_ms * 2 < 2000 ? 2000 : c->t.heartbeat_ms * 2;

	(void)id;
	c->hb_timer = 0;
	if (c->peer == NULL || !c->logged_in)
		return;
	cfl_peer_request(c->peer, CFL_TOPIC_HEARTBEAT, NULL, 0, NULL, 0, wait, heartbeat_reply, c);
	c->hb_timer = cfl_loop_timer_add(loop, c->t.heartbeat_ms, on_heartbeat, c);
}

static int take_tokens(struct cfl_auth_client *c, const struct cfl_frame *f, char *why, size_t n);
static void schedule_renew(struct cfl_auth_client *c);
static void on_renew(struct cfl_loop *loop, uint64_t id, void *arg);

static void renew_reply(struct cfl_peer *p, int status, const char *reason,
                        const struct cfl_frame *f, int more, struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_auth_client *c = arg;
	char why[256];

	(void)p;
	(void)more;
	(void)sink;
	if (status == CFL_EPROTO || (status == 0 && take_tokens(c, f, why, sizeof(why)) != 0)) {
		/* Refused (the token expired, the session was removed...): only a new login helps.
		 * Dropping the connection makes the client reconnect and log in again. */
		CFL_WARN("token renewal refused: %s: logging in again", status != 0 ? reason : why);
		if (c->peer != NULL)
			cfl_conn_close(cfl_peer_conn(c->peer), "token renewal refused");
		return;
	}
	if (status != 0) {
		/* No answer in time: the old token is still valid until it expires; try again. */
		CFL_WARN("token renewal failed: %s", reason ? reason : cfl_strerror(status));
		if (c->peer != NULL)
			c->renew_timer = cfl_loop_timer_add(c->loop, 1000, on_renew, c);
		return;
	}
	c->renewals++;
	CFL_DEBUG("token renewed, expires at %" PRId64, c->expiry);
	schedule_renew(c);
}

static void on_renew(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct cfl_auth_client *c = arg;

	(void)loop;
	(void)id;
	c->renew_timer = 0;
	if (c->peer != NULL && c->logged_in)
		cfl_peer_request(c->peer, CFL_TOPIC_RENEW, NULL, 0, NULL, 0, 0, renew_reply, c);
}

/* Renew at two thirds of the lifetime: the old token keeps working meanwhile. */
static void schedule_renew(struct cfl_auth_client *c)
{
	/* From the lifetime the server announced, on this side's monotonic clock; a floor of 1 s
	 * keeps a confused server from making it renew in a loop. */
	uint64_t at = c->ttl_ms * 2 / 3 < 1000 ? 1000 : c->ttl_ms * 2 / 3;

	if (c->renew_timer != 0)
		cfl_loop_timer_cancel(c->loop, c->renew_timer);
	c->renew_timer = cfl_loop_timer_add(c->loop, at, on_renew, c);
}

/* --- login -------------------------------------------------------------------------------------
 */

static int take_tokens(struct cfl_auth_client *c, const struct cfl_frame *f, char *why, size_t n)
{
	static const char *const keys[3] = {CFL_KEY_CLIENT_NAME, CFL_KEY_TOKEN,
	                                    CFL_KEY_TOKEN_SIGNATURE};
	char token[TOKEN_MAX], sig[SIG_B64_MAX], stoken[TOKEN_MAX], ssig[SIG_B64_MAX], exp[24];
	const char *vals[3];
	uint8_t tbs[1024];
	uint64_t expiry;
	size_t tl;
	/* Tokens that came over the TLS session of the server's own certificate are the server's:
	 * their signatures need no check here (the gate compares them as they are). */
	int tls = cfl__auth_is_tls_peer(cfl_peer_conn(c->peer), c->server_cert);

	cfl__auth_hdr(f, CFL_KEY_ISSUED_TOKEN, token, sizeof(token));
	cfl__auth_hdr(f, CFL_KEY_ISSUED_TOKEN_SIGNATURE, sig, sizeof(sig));
	cfl__auth_hdr(f, CFL_KEY_SERVER_TOKEN, stoken, sizeof(stoken));
	cfl__auth_hdr(f, CFL_KEY_SERVER_TOKEN_SIGNATURE, ssig, sizeof(ssig));
	cfl__auth_hdr(f, CFL_KEY_ISSUED_TOKEN_EXPIRY, exp, sizeof(exp));
	tl = cfl__auth_tbs(tbs, sizeof(tbs), "cfl-token", c->name, token, NULL);
	if (token[0] == '\0' || (!tls && cfl__auth_verify_b64(c->server_cert, tbs, tl, sig) != 0)) {
		cfl__auth_why(why, n, "the server's token signature does not verify");
		return CFL_EAUTH;
	}
	tl = cfl__auth_tbs(tbs, sizeof(tbs), "cfl-token", "server", stoken, NULL);
	if (stoken[0] == '\0' ||
	    (!tls && cfl__auth_verify_b64(c->server_cert, tbs, tl, ssig) != 0)) {
		cfl__auth_why(why, n, "the server's own token does not verify");
		return CFL_EAUTH;
	}
	snprintf(c->token, sizeof(c->token), "%s", token);
	snprintf(c->sig, sizeof(c->sig), "%s", sig);
	snprintf(c->srv_token, sizeof(c->srv_token), "%s", stoken);
	snprintf(c->srv_sig, sizeof(c->srv_sig), "%s", ssig);
	c->srv_token_len = strlen(c->srv_token);
	c->srv_sig_len = strlen(c->srv_sig);
	if (cfl__num_u64(exp, INT64_MAX / 1000, &expiry) != 0) {
		cfl__auth_why(why, n, "the server's token expiry is not a time");
		return CFL_EAUTH;
	}
	c->expiry = (int64_t)expiry;
	/* The lifetime in ms; absent (an older server): 0, and the wall clocks decide. */
	cfl__auth_hdr(f, CFL_KEY_ISSUED_TOKEN_TTL_MS, exp, sizeof(exp));
	if (cfl__num_u64(exp, UINT64_MAX / 2, &c->ttl_ms) != 0)
		c->ttl_ms = 0;
	if (c->ttl_ms == 0)
		c->ttl_ms = c->expiry * 1000 > cfl__auth_unix_ms()
		                    ? (uint64_t)(c->expiry * 1000 - cfl__auth_unix_ms())
		                    : 0;
	vals[0] = c->name;
	vals[1] = c->token;
	vals[2] = c->sig;
	return cfl_peer_set_auth(c->peer, keys, vals, 3);
}

static void register_reply(struct cfl_peer *p, int status, const char *reason,
                           const struct cfl_frame *f, int more, struct cfl_msg_sink *sink,
                           void *arg)
{
	struct cfl_auth_client *c = arg;
	char why[256], sec[16], hb[24];
	uint64_t hb_ms;

	(void)more;
	(void)sink;
	if (status != 0) {
		/* Revoked: no later attempt can succeed with this certificate. */
		login_done(c, p,
		           reason != NULL && strstr(reason, "certificate revoked") != NULL
		                   ? CFL_EPERM
		                   : CFL_EAUTH,
		           reason ? reason : "register refused");
		return;
	}
	if (take_tokens(c, f, why, sizeof(why)) != 0) {
		login_done(c, p, CFL_EAUTH, why);
		return;
	}
	cfl__auth_hdr(f, CFL_KEY_SECURITY, sec, sizeof(sec));
	/* A tls server never looks at the certificate an mtls client means to prove itself with. */
	if (strcmp(sec, "tls") == 0 && c->mode == CFL_SEC_MTLS) {
		login_done(c, p, CFL_ECONN,
		           "connection_security mismatch: this side is in mtls mode but the server "
		           "is in tls mode");
		return;
	}
	/* The server's heartbeat interval, when it gives one it can mean (1 ms to 1 hour). */
	if (cfl__auth_hdr(f, CFL_KEY_HEARTBEAT_MS, hb, sizeof(hb)) == 0 &&
	    cfl__num_u64(hb, 3600000, &hb_ms) == 0 && hb_ms > 0)
		c->t.heartbeat_ms = hb_ms;
	c->logged_in = 1;
	cfl_conn_set_max_payload(cfl_peer_conn(p), CFL_FRAME_MAX_PAYLOAD);
	c->hb_timer = cfl_loop_timer_add(c->loop, c->t.heartbeat_ms, on_heartbeat, c);
	schedule_renew(c);
	login_done(c, p, 0, NULL);
}

/* Checks that the server proved its identity (SPEC §5 step 1). The certificate the TLS
 * handshake verified on this connection is not parsed, nor its path verified, again, and the
 * handshake's CertificateVerify proved the key: the challenge's signature is then not needed. */
static int check_challenge(struct cfl_auth_client *c, struct cfl_peer *p, const struct cfl_frame *f,
                           char *why, size_t n)
{
	char cn[CFL_AUTH_NAME_MAX], sig[SIG_B64_MAX];
	struct cfl__login_cert lc = {0};
	struct cfl_err e = {0};
	uint8_t tbs[1024];
	size_t tl;
	int rc, tls;

	cfl_pki_cert_free(c->server_cert);
	c->server_cert = NULL;
	cfl__auth_hdr(f, CFL_KEY_SIGNATURE, sig, sizeof(sig));
	if (f->body_len == 0 || f->body_len > CERT_PEM_MAX ||
	    cfl__auth_login_cert(cfl_peer_conn(p), (const char *)f->body, f->body_len, &lc, &e) !=
	            0) {
		cfl__auth_why(why, n, "the server sent no readable certificate");
		return CFL_EAUTH;
	}
	c->server_cert = lc.cert;
	tls = lc.tls;
	lc.cert = NULL;
	rc = cfl_pki_trust_verify_validated(c->trust, c->server_cert, lc.pin, &e);
	cfl__auth_login_cert_free(&lc);
	if (rc != 0) {
		/* A revoked certificate is the project's, refused: say so rather than "not ours".
		 */
		cfl__auth_why(why, n, "the server's certificate %s: %s",
		              strstr(e.msg, "certificate revoked") != NULL
		                      ? "is revoked"
		                      : "is not from this project",
		              e.msg);
		return CFL_EAUTH;
	}
	if (cfl_pki_cert_check_usage(c->server_cert, CFL_PKI_USAGE_SERVER, &e) != 0) {
		cfl__auth_why(why, n, "the server's certificate cannot prove a server: %s", e.msg);
		return CFL_EAUTH;
	}
	if (cfl_pki_cert_cn(c->server_cert, cn, sizeof(cn)) != 0 || strcmp(cn, c->server_cn) != 0) {
		cfl__auth_why(why, n, "the server is '%s', not the expected '%s'", cn,
		              c->server_cn);
		return CFL_EAUTH;
	}
	tl = cfl__auth_tbs(tbs, sizeof(tbs), "cfl-challenge", c->server_cn, c->nonce, NULL);
	if (!tls && cfl__auth_verify_b64(c->server_cert, tbs, tl, sig) != 0) {
		cfl__auth_why(why, n, "the server's challenge signature does not verify");
		return CFL_EAUTH;
	}
	return 0;
}

static void challenge_reply(struct cfl_peer *p, int status, const char *reason,
                            const struct cfl_frame *f, int more, struct cfl_msg_sink *sink,
                            void *arg)
{
	struct cfl_auth_client *c = arg;
	char why[512], snonce[NONCE_HEX + 1], sig[SIG_B64_MAX];
	const char *kind = c->kind == CFL_AUTH_ADMIN ? "admin" : "client";
	struct cfl_header h[5];
	uint8_t tbs[1024];
	size_t tl;
	int rc;

	(void)more;
	(void)sink;
	if (status != 0) {
		login_done(c, p, status, reason ? reason : "challenge failed");
		return;
	}
	if (check_challenge(c, p, f, why, sizeof(why)) != 0) {
		login_done(c, p, CFL_EAUTH, why);
		return;
	}
	cfl__auth_hdr(f, CFL_KEY_SERVER_NONCE, snonce, sizeof(snonce));
	tl = cfl__auth_tbs(tbs, sizeof(tbs), "cfl-register", c->name, snonce, c->project);
	if (cfl__auth_sign_b64(c->key, tbs, tl, sig, sizeof(sig)) != 0) {
		login_done(c, p, CFL_ECRYPTO, "cannot sign the register request");
		return;
	}
	h[0] = CFL_HDR(CFL_KEY_CLIENT_NAME, c->name);
	h[1] = CFL_HDR(CFL_KEY_PROJECT, c->project);
	h[2] = CFL_HDR(CFL_KEY_SERVER_NONCE, snonce);
	h[3] = CFL_HDR(CFL_KEY_SIGNATURE, sig);
	h[4] = CFL_HDR(CFL_KEY_KIND, kind);
	rc = cfl_peer_request(p, CFL_TOPIC_REGISTER, h, 5, c->cert_pem, c->cert_pem_len, 10000,
	                      register_reply, c);
	if (rc != 0)
		login_done(c, p, rc, "cannot send register");
}

/* The fingerprint of the certificate this connection's TLS handshake verified; "" without one
 * (clear mode). Told to the server, which then need not sign the challenge (check_challenge
 * does not verify that signature when the server logs in with this certificate). */
static void tls_cert_fingerprint(struct cfl_conn *conn, char *fp, size_t size)
{
	const void *pin, *x = cfl_conn_peer_x509(conn, &pin);
	struct cfl_pki_cert *t = NULL;

	fp[0] = '\0';
	if (x != NULL && cfl_pki_cert_wrap_x509(x, &t) == 0 &&
	    cfl_pki_cert_fingerprint(t, fp, size) != 0)
		fp[0] = '\0';
	cfl_pki_cert_free(t);
}

int cfl_auth_client_login(struct cfl_auth_client *c, struct cfl_peer *p, cfl_auth_login_fn fn,
                          void *arg)
{
	const char *kind = c->kind == CFL_AUTH_ADMIN ? "admin" : "client";
	char fp[CFL_PKI_FINGERPRINT_MAX];
	struct cfl_header h[4];

	c->peer = p;
	c->logged_in = 0;
	c->fn = fn;
	c->arg = arg;
	cfl_peer_set_auth(p, NULL, NULL, 0);
	if (cfl__auth_nonce(c->nonce) != 0)
		return CFL_ECRYPTO;
	h[0] = CFL_HDR(CFL_KEY_CLIENT_NAME, c->name);
	h[1] = CFL_HDR(CFL_KEY_NONCE, c->nonce);
	h[2] = CFL_HDR(CFL_KEY_KIND, kind);
	tls_cert_fingerprint(cfl_peer_conn(p), fp, sizeof(fp));
	h[3] = CFL_HDR(CFL_KEY_TLS_CERT, fp);
	return cfl_peer_request(p, CFL_TOPIC_CHALLENGE, h, fp[0] != '\0' ? 4 : 3, NULL, 0, 10000,
	                        challenge_reply, c);
}

void cfl_auth_client_peer_down(struct cfl_auth_client *c, struct cfl_peer *p)
{
	if (c->peer != p)
		return;
	cfl_loop_timer_cancel(c->loop, c->hb_timer);
	cfl_loop_timer_cancel(c->loop, c->renew_timer);
	c->hb_timer = c->renew_timer = 0;
	c->peer = NULL;
	c->logged_in = 0;
	c->fn = NULL;
}

/* Key, certificate (as PEM for the login) and trust, read whole before anything changes. */
struct ccreds {
	struct cfl_pki_key *key;
	struct cfl_pki_trust *trust;
	char *pem;
	size_t pem_len;
};

static void ccreds_free(struct ccreds *k)
{
	cfl_pki_key_free(k->key);
	cfl_pki_trust_free(k->trust);
	free(k->pem);
	memset(k, 0, sizeof(*k));
}

/* The project's trust with the CRLs of `crl_file` (missing: none). */
static int trust_load(const struct cfl_auth_client_cfg *cfg, const char *crl_file,
                      struct cfl_pki_trust **out, struct cfl_err *e)
{
	int rc = cfl_pki_trust_load(cfg->root_ca, cfg->cert_file, out, e);

	if (rc == 0 && crl_file != NULL && (rc = cfl_pki_trust_set_crl(*out, crl_file, e)) != 0) {
		if (rc == CFL_ENOENT)
			return 0;
		cfl_pki_trust_free(*out);
		*out = NULL;
	}
	return rc;
}

static int ccreds_load(struct ccreds *k, const struct cfl_auth_client_cfg *cfg, int renewal,
                       struct cfl_err *e)
{
	struct cfl_pki_cert *cert = NULL;
	int rc;

	if ((rc = cfl_pki_key_load(cfg->key_file, &k->key, e)) != 0 ||
	    (rc = cfl_pki_cert_load(cfg->cert_file, &cert, e)) != 0 ||
	    (rc = trust_load(cfg, cfg->crl_file, &k->trust, e)) != 0 ||
	    (rc = cfl_pki_cert_to_pem(cert, &k->pem, &k->pem_len, e)) != 0)
		goto out;
	if (!cfl_pki_cert_matches_key(cert, k->key))
		rc = cfl_err_set(e, CFL_ECRYPTO,
		                 "the key in '%s' does not match the certificate in '%s'",
		                 cfg->key_file, cfg->cert_file);
	/* A revoked one may still be loaded: the server says so at login, in the site's log. */
	else if (renewal && (rc = cfl_pki_trust_verify(k->trust, cert, 0, e)) != 0 &&
	         strstr(e->msg, "certificate revoked") == NULL)
		cfl_err_prefix(e, "the certificate in '%s' is not usable", cfg->cert_file);
	else
		rc = 0;
out:
	cfl_pki_cert_free(cert);
	return rc;
}

static void ccreds_take(struct cfl_auth_client *c, struct ccreds *k)
{
	struct ccreds old = {c->key, c->trust, c->cert_pem, c->cert_pem_len};

	c->key = k->key;
	c->trust = k->trust;
	c->cert_pem = k->pem;
	c->cert_pem_len = k->pem_len;
	memset(k, 0, sizeof(*k));
	ccreds_free(&old);
}

int cfl_auth_client_new(struct cfl_msg_hub *hub, const struct cfl_auth_client_cfg *cfg,
                        struct cfl_auth_client **out, struct cfl_err *e)
{
	struct cfl_auth_client *c = calloc(1, sizeof(*c));
	struct ccreds k = {0};
	int rc;

	if (c == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	c->hub = hub;
	c->loop = cfl_msg_hub_loop(hub);
	c->kind = cfg->kind;
	c->mode = cfg->mode;
	c->t = cfg->times;
	snprintf(c->name, sizeof(c->name), "%s", cfg->name);
	snprintf(c->project, sizeof(c->project), "%s", cfg->project);
	snprintf(c->server_cn, sizeof(c->server_cn), "%s", cfg->server_cn);
	snprintf(c->root_ca, sizeof(c->root_ca), "%s", cfg->root_ca);
	snprintf(c->cert_file, sizeof(c->cert_file), "%s", cfg->cert_file);
	if ((rc = ccreds_load(&k, cfg, 0, e)) != 0) {
		ccreds_free(&k);
		cfl_auth_client_free(c);
		return rc;
	}
	ccreds_take(c, &k);
	cfl_msg_hub_set_gate(hub, gate, c);
	*out = c;
	return 0;
}

int cfl_auth_client_reload(struct cfl_auth_client *c, const struct cfl_auth_client_cfg *cfg,
                           struct cfl_err *e)
{
	struct ccreds k = {0};
	int rc = ccreds_load(&k, cfg, 1, e);

	if (rc == 0) {
		snprintf(c->root_ca, sizeof(c->root_ca), "%s", cfg->root_ca);
		snprintf(c->cert_file, sizeof(c->cert_file), "%s", cfg->cert_file);
		ccreds_take(c, &k);
	}
	ccreds_free(&k);
	return rc;
}

int cfl_auth_client_set_crl(struct cfl_auth_client *c, const char *crl_file, struct cfl_err *e)
{
	struct cfl_auth_client_cfg cfg = {.root_ca = c->root_ca, .cert_file = c->cert_file};
	struct cfl_pki_trust *t = NULL;
	int rc = trust_load(&cfg, crl_file, &t, e);

	if (rc != 0)
		return rc;
	cfl_pki_trust_free(c->trust);
	c->trust = t;
	if (c->peer == NULL || c->server_cert == NULL ||
	    !cfl_pki_trust_is_revoked(c->trust, c->server_cert))
		return 0;
	CFL_WARN("the server's certificate is revoked (certificate revoked): closing the "
	         "connection");
	cfl_conn_close(cfl_peer_conn(c->peer), "the server's certificate is revoked");
	return 1;
}

void cfl_auth_client_free(struct cfl_auth_client *c)
{
	struct ccreds k;

	if (c == NULL)
		return;
	cfl_loop_timer_cancel(c->loop, c->hb_timer);
	cfl_loop_timer_cancel(c->loop, c->renew_timer);
	k = (struct ccreds){c->key, c->trust, c->cert_pem, c->cert_pem_len};
	ccreds_free(&k);
	cfl_pki_cert_free(c->server_cert);
	cfl_wipe(c->token, sizeof(c->token));
	cfl_wipe(c->sig, sizeof(c->sig));
	free(c);
}

int64_t cfl_auth_client_token_expiry(const struct cfl_auth_client *c)
{
	return c->expiry;
}

unsigned cfl_auth_client_renewals(const struct cfl_auth_client *c)
{
	return c->renewals;
}
