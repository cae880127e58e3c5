/* Server side of message authentication: challenge, register, tokens, the per-message gate,
 * renewal, heartbeats and the removal of silent clients (docs/security.md). */
#include "auth_srv.h"

#include "cfl/conn.h"
#include "cfl/digest.h"
#include "cfl/log.h"
#include "cfl/proto.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct apeer *ap_of(const struct cfl_peer *p)
{
	return cfl_peer_user(p);
}

static struct session *find_session(struct cfl_auth_server *s, const char *name)
{
	for (struct session *x = s->sessions; x != NULL; x = x->next) {
		if (strcmp(x->name, name) == 0)
			return x;
	}
	return NULL;
}

/* What a peer claims reaches the log through cfl_log, which keeps control characters out. */
static void reject_log(struct cfl_peer *p, const char *claimed, const char *why)
{
	CFL_WARN("rejected message from %s (claims '%s'): %s", cfl_conn_peer_addr(cfl_peer_conn(p)),
	         claimed[0] ? claimed : "-", why);
}

/* --- the sessions by the time of their last message --------------------------------------------
 */

static void seen_unlink(struct cfl_auth_server *s, struct session *x)
{
	if (x->seen_prev != NULL)
		x->seen_prev->seen_next = x->seen_next;
	else if (s->seen_head == x)
		s->seen_head = x->seen_next;
	if (x->seen_next != NULL)
		x->seen_next->seen_prev = x->seen_prev;
	else if (s->seen_tail == x)
		s->seen_tail = x->seen_prev;
	x->seen_prev = x->seen_next = NULL;
}

/* x was seen now: last in the list. */
static void seen_now(struct cfl_auth_server *s, struct session *x, uint64_t now)
{
	x->last_seen_ms = now;
	if (s->seen_tail == x)
		return;
	seen_unlink(s, x);
	x->seen_prev = s->seen_tail;
	if (s->seen_tail != NULL)
		s->seen_tail->seen_next = x;
	else
		s->seen_head = x;
	s->seen_tail = x;
}

/* --- the gate: every message after login ------------------------------------------------------ */

/* 1: `token` is this token and `sig` its signature; -1: the token with another signature;
 * 0: another token, or this one expired (*expired). The token is compared in constant time;
 * its signature is no secret from whoever holds the token, so a plain comparison will do. */
static int tok_matches(const struct tok *t, const struct cfl_header *token,
                       const struct cfl_header *sig, uint64_t now, int *expired)
{
	if (t->token_len == 0 || token->val_len != t->token_len ||
	    !cfl__auth_ct_equal(t->token, token->val, t->token_len))
		return 0;
	if (!cfl__auth_hdr_is(sig, t->sig, t->sig_len))
		return -1;
	if (t->deadline_ms <= now) {
		*expired = 1;
		return 0;
	}
	return 1;
}

/* 0 when the headers `a` prove session x's identity on this connection, else the reason. */
static const char *check_msg(struct session *x, const struct cfl__auth_hdrs *a, uint64_t now)
{
	int expired = 0, m;

	/* A token is bound to the identity that earned it on this connection. */
	if (!cfl__auth_hdr_is(a->name, x->name, x->name_len))
		return "client_name is not the identity of this connection";
	m = tok_matches(&x->cur, a->token, a->sig, now, &expired);
	if (m == 0)
		m = tok_matches(&x->prev, a->token, a->sig, now, &expired);
	if (m < 0)
		return "bad token signature";
	if (m == 0)
		return expired ? "token expired" : "unknown token";
	return NULL;
}

/* Every message after login: one pass over the headers, one clock read, two comparisons. */
static int gate(struct cfl_peer *p, const struct cfl_frame *f, char *why, size_t n, void *arg)
{
	struct cfl_auth_server *s = arg;
	struct apeer *ap = ap_of(p);
	struct cfl__auth_hdrs a;
	char name[CFL_AUTH_NAME_MAX] = "";
	const char *bad;
	uint64_t now;

	cfl__auth_find_hdrs(f, &a);
	if (a.name == NULL || a.token == NULL || a.sig == NULL || a.name->val_len == 0) {
		cfl__auth_why(why, n, "missing authentication headers");
		goto reject;
	}
	if (ap == NULL || ap->sess == NULL) {
		cfl__auth_why(why, n, "not logged in on this connection");
		goto reject;
	}
	now = cfl_loop_now_ms(s->loop);
	if ((bad = check_msg(ap->sess, &a, now)) != NULL) {
		cfl__auth_why(why, n, "%s", bad);
		goto reject;
	}
	seen_now(s, ap->sess, now);
	return 0;
reject:
	if (a.name != NULL)
		cfl_frame_header_str(f, CFL_KEY_CLIENT_NAME, name, sizeof(name));
	reject_log(p, name, why);
	return CFL_EAUTH;
}

/* --- tokens --------------------------------------------------------------------------------- */

/* base64url (RFC 4648 section 5) of n bytes, n a multiple of 3: no padding; out holds 4n/3 + 1. */
static void b64url(const uint8_t *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	for (size_t i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		for (int k = 0; k < 4; k++)
			*out++ = a[(v >> (18 - 6 * k)) & 63];
	}
	*out = '\0';
}

/* A token: "v2.<expiry, unix seconds>.<TOKEN_RANDOM random bytes, base64url>", 46 characters
 * until 2286 (docs/security.md 4.4). */
static int issue(struct cfl_auth_server *s, const char *name, struct tok *t)
{
	uint8_t raw[TOKEN_RANDOM], tbs[1024];
	char rnd[4 * TOKEN_RANDOM / 3 + 1];
	size_t n;

	if (cfl_random(raw, sizeof(raw)) != 0)
		return CFL_ECRYPTO;
	b64url(raw, sizeof(raw), rnd);
	cfl_wipe(raw, sizeof(raw));
	t->expiry_s = cfl__auth_unix_ms() / 1000 + (int64_t)(s->t.token_ttl_ms / 1000) +
	              (s->t.token_ttl_ms % 1000 ? 1 : 0);
	t->deadline_ms = cfl_loop_now_ms(s->loop) + s->t.token_ttl_ms;
	snprintf(t->token, sizeof(t->token), "v2.%" PRId64 ".%s", t->expiry_s, rnd);
	cfl_wipe(rnd, sizeof(rnd));
	t->token_len = strlen(t->token);
	n = cfl__auth_tbs(tbs, sizeof(tbs), "cfl-token", name, t->token, NULL);
	if (cfl__auth_sign_b64(s->key, tbs, n, t->sig, sizeof(t->sig)) != 0)
		return CFL_ECRYPTO;
	t->sig_len = strlen(t->sig);
	return 0;
}

static int reply_tokens(struct cfl_peer *p, uint64_t id, struct cfl_auth_server *s,
                        struct session *x)
{
	char exp[24], hb[24];
	const char *sec = cfl_conn_sec_name(s->mode);
	struct cfl_header h[8];
	char left[24];
	int64_t left_ms = x->cur.expiry_s * 1000 - cfl__auth_unix_ms();

	snprintf(exp, sizeof(exp), "%" PRId64, x->cur.expiry_s);
	/* The lifetime left, so that a site schedules its renewal on its own monotonic clock and
	 * does not depend on the two wall clocks agreeing. */
	snprintf(left, sizeof(left), "%" PRId64, left_ms > 0 ? left_ms : 0);
	snprintf(hb, sizeof(hb), "%" PRIu64, s->t.heartbeat_ms);
	/* Not "token": the reply carries the server's own token under that name. */
	h[0] = CFL_HDR(CFL_KEY_ISSUED_TOKEN, x->cur.token);
	h[1] = CFL_HDR(CFL_KEY_ISSUED_TOKEN_SIGNATURE, x->cur.sig);
	h[2] = CFL_HDR(CFL_KEY_ISSUED_TOKEN_EXPIRY, exp);
	h[3] = CFL_HDR(CFL_KEY_SERVER_TOKEN, x->srv.token);
	h[4] = CFL_HDR(CFL_KEY_SERVER_TOKEN_SIGNATURE, x->srv.sig);
	h[5] = CFL_HDR(CFL_KEY_SECURITY, sec);
	h[6] = CFL_HDR(CFL_KEY_HEARTBEAT_MS, hb);
	h[7] = CFL_HDR(CFL_KEY_ISSUED_TOKEN_TTL_MS, left);
	return cfl_peer_reply(p, id, h, 8, NULL, 0);
}

/* --- challenge ------------------------------------------------------------------------------- */

static int is_hex(const char *s, size_t len)
{
	if (strlen(s) != len)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

/* Whether the site says its TLS handshake verified the certificate this server logs in with
 * (tls_cert: its SHA-256 fingerprint). Such a site relies on the handshake's CertificateVerify,
 * which proved this key on its connection, and does not verify the challenge's signature:
 * none is made. Any other site (clear mode, behind a proxy, an older one) gets a signature. */
static int handshake_proved(const struct cfl_auth_server *s, const struct cfl_frame *f)
{
	char fp[CFL_PKI_FINGERPRINT_MAX];

	return cfl__auth_hdr(f, CFL_KEY_TLS_CERT, fp, sizeof(fp)) == 0 && fp[0] != '\0' &&
	       cfl_pki_cert_fingerprint_match(s->cert, fp);
}

static void on_challenge(struct cfl_peer *p, const struct cfl_frame *f, int more,
                         struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_auth_server *s = arg;
	char name[CFL_AUTH_NAME_MAX], nonce[NONCE_HEX + 1], sig[SIG_B64_MAX] = "";
	struct pend *pe = &s->pend[s->pend_next++ % MAX_PENDING];
	struct cfl_header h[3];
	uint8_t tbs[1024];
	size_t n;

	(void)more;
	(void)sink;
	if (f->type != CFL_FRAME_T_REQUEST)
		return;
	/* Each answer costs a signature: a connection that keeps asking is cut off. */
	if (ap_of(p) != NULL && ++ap_of(p)->challenges > MAX_CHALLENGES) {
		reject_log(p, "", "too many challenges on one connection");
		cfl_conn_close(cfl_peer_conn(p), "too many challenges");
		return;
	}
	/* And per address, across connections (admission control; it logs the refusal). */
	if (!cfl_conn_admit_challenge(cfl_peer_conn(p))) {
		cfl_peer_reply_error(p, f->id, "rate_limited",
		                     "too many login challenges from "
		                     "this address: try again shortly");
		return;
	}
	cfl__auth_hdr(f, CFL_KEY_CLIENT_NAME, name, sizeof(name));
	cfl__auth_hdr(f, CFL_KEY_NONCE, nonce, sizeof(nonce));
	if (name[0] == '\0' || !is_hex(nonce, NONCE_HEX - 1)) {
		reject_log(p, name, "challenge without a name or a 32-byte hex nonce");
		cfl_peer_reply_error(p, f->id, "bad_request",
		                     "challenge needs client_name and nonce");
		return;
	}
	/* Bounded: a flood of challenges only recycles this fixed table. */
	memset(pe, 0, sizeof(*pe));
	snprintf(pe->name, sizeof(pe->name), "%s", name);
	pe->at_ms = cfl_loop_now_ms(s->loop);
	pe->live = cfl__auth_nonce(pe->nonce) == 0;
	n = cfl__auth_tbs(tbs, sizeof(tbs), "cfl-challenge", s->server_cn, nonce, NULL);
	if (!pe->live || (!handshake_proved(s, f) &&
	                  cfl__auth_sign_b64(s->key, tbs, n, sig, sizeof(sig)) != 0)) {
		cfl_peer_reply_error(p, f->id, "internal", "cannot sign");
		return;
	}
	h[0] = CFL_HDR(CFL_KEY_SERVER_CN, s->server_cn);
	h[1] = CFL_HDR(CFL_KEY_SERVER_NONCE, pe->nonce);
	h[2] = CFL_HDR(CFL_KEY_SIGNATURE, sig);
	cfl_peer_reply(p, f->id, h, sig[0] != '\0' ? 3 : 2, s->cert_pem, s->cert_pem_len);
}

/* --- register --------------------------------------------------------------------------------- */

/* Finds and consumes the challenge: single use, so a replayed register finds nothing. */
static int take_nonce(struct cfl_auth_server *s, const char *name, const char *nonce)
{
	uint64_t now = cfl_loop_now_ms(s->loop);

	if (!is_hex(nonce, NONCE_HEX - 1))
		return 0;
	for (size_t i = 0; i < MAX_PENDING; i++) {
		struct pend *pe = &s->pend[i];

		if (!pe->live || !cfl_ct_equal(pe->nonce, nonce, NONCE_HEX - 1))
			continue;
		pe->live = 0;
		return strcmp(pe->name, name) == 0 && now - pe->at_ms <= PENDING_TTL_MS;
	}
	return 0;
}

/* What a register request's certificate says of its holder, once check_register accepted it:
 * the admin role ("" for a site) and the O that the server's policy compares. */
struct holder {
	char role[64];
	char org[CFL_AUTH_NAME_MAX];
	struct cfl_pki_cert *cert; /* the certificate, passed on to the session */
};

/* Every check of SPEC §5 step 2; writes the reason of the first failure. */
static int check_register(struct cfl_auth_server *s, struct cfl_peer *p, const struct cfl_frame *f,
                          const char *name, enum cfl_auth_kind kind, struct holder *h, char *why,
                          size_t n)
{
	char project[CFL_AUTH_NAME_MAX], nonce[NONCE_HEX + 1], sig[SIG_B64_MAX],
	        cn[CFL_AUTH_NAME_MAX];
	struct cfl__login_cert lc = {0};
	struct cfl_pki_cert *cert = NULL;
	struct cfl_err e = {0};
	uint8_t tbs[1024];
	size_t tl;
	int rc = CFL_EAUTH;

	cfl__auth_hdr(f, CFL_KEY_PROJECT, project, sizeof(project));
	cfl__auth_hdr(f, CFL_KEY_SERVER_NONCE, nonce, sizeof(nonce));
	cfl__auth_hdr(f, CFL_KEY_SIGNATURE, sig, sizeof(sig));
	if (!take_nonce(s, name, nonce)) {
		cfl__auth_why(why, n,
		              "register without a valid challenge (unknown, used or stale nonce)");
	} else if (strcmp(project, s->project) != 0) {
		cfl__auth_why(why, n, "wrong project '%s'", project);
	} else if (f->body_len == 0 || f->body_len > CERT_PEM_MAX ||
	           cfl__auth_login_cert(cfl_peer_conn(p), (const char *)f->body, f->body_len, &lc,
	                                &e) != 0) {
		cfl__auth_why(why, n, "no readable certificate");
	} else if (cfl_pki_cert_check_usage((cert = lc.cert), CFL_PKI_USAGE_CLIENT, &e) != 0) {
		/* The root CA's own certificate chains to itself, and a server's to the root:
		 * neither is a site's or an admin's identity. */
		cfl__auth_why(why, n, "%s", e.msg);
	} else if (cfl_pki_trust_verify_validated(s->trust, cert, lc.pin, &e) != 0) {
		/* "certificate revoked" for a revoked one: the site's log says so too. */
		cfl__auth_why(why, n, "%s", e.msg);
	} else if (cfl_pki_cert_cn(cert, cn, sizeof(cn)) != 0 || strcmp(cn, name) != 0) {
		cfl__auth_why(why, n, "name '%s' does not match the certificate CN '%s'", name, cn);
	} else if (cfl_pki_cert_role(cert, h->role, sizeof(h->role)) != 0 &&
	           kind == CFL_AUTH_ADMIN) {
		cfl__auth_why(why, n, "not an admin certificate (no role)");
	} else if (h->role[0] != '\0' && kind == CFL_AUTH_CLIENT) {
		cfl__auth_why(why, n, "an admin certificate cannot log in as a client");
	} else if (cfl_conn_mode(cfl_peer_conn(p)) == CFL_SEC_MTLS &&
	           strcmp(cfl_conn_peer_cn(cfl_peer_conn(p)), name) != 0) {
		cfl__auth_why(why, n, "name differs from the connection's TLS certificate");
	} else if ((tl = cfl__auth_tbs(tbs, sizeof(tbs), "cfl-register", name, nonce, project)) ==
	                   0 ||
	           cfl__auth_verify_b64(cert, tbs, tl, sig) != 0) {
		/* Checked even where the handshake proved the same key: the server refuses a login
		 * message that does not hold together. */
		cfl__auth_why(why, n, "bad register signature");
	} else {
		rc = 0;
		/* What the server's policy compares for o:site and o:submitter ("" without one). */
		if (cfl_pki_cert_org(cert, h->org, sizeof(h->org)) != 0)
			h->org[0] = '\0';
		h->cert = cert;
		lc.cert = NULL;
	}
	cfl__auth_login_cert_free(&lc);
	return rc;
}

void cfl__auth_end_session(struct cfl_auth_server *s, struct session *x)
{
	/* O(1): the reaper may end thousands at once (a mass disconnect at 19,000 sites). */
	if (x->pprev != NULL) {
		*x->pprev = x->next;
		if (x->next != NULL)
			x->next->pprev = x->pprev;
	}
	seen_unlink(s, x);
	if (x->peer != NULL && ap_of(x->peer) != NULL)
		ap_of(x->peer)->sess = NULL;
	cfl_pki_cert_free(x->cert);
	cfl_wipe(x, sizeof(*x)); /* tokens and their signatures */
	free(x);
}

static struct session *new_session(struct cfl_auth_server *s, struct cfl_peer *p, const char *name,
                                   enum cfl_auth_kind kind, const char *role)
{
	struct session *old = find_session(s, name), *x = calloc(1, sizeof(*x));
	struct cfl_conn *c = cfl_peer_conn(p);

	if (x == NULL)
		return NULL;
	if (old != NULL) {
		if (old->peer != NULL && old->peer != p) {
			CFL_INFO("%s logged in again: closing its previous connection", name);
			cfl_conn_close(cfl_peer_conn(old->peer), "replaced by a new login");
		}
		cfl__auth_end_session(s, old);
	}
	snprintf(x->name, sizeof(x->name), "%s", name);
	x->name_len = strlen(x->name);
	snprintf(x->role, sizeof(x->role), "%s", role);
	snprintf(x->addr, sizeof(x->addr), "%s", cfl_conn_peer_addr(c));
	snprintf(x->via, sizeof(x->via), "%s", cfl_conn_local_addr(c));
	x->kind = kind;
	x->mode = cfl_conn_mode(c);
	x->peer = p;
	x->issued_ms = cfl_loop_now_ms(s->loop);
	if (issue(s, name, &x->cur) != 0 || issue(s, "server", &x->srv) != 0) {
		free(x);
		return NULL;
	}
	seen_now(s, x, x->issued_ms);
	x->next = s->sessions;
	if (x->next != NULL)
		x->next->pprev = &x->next;
	x->pprev = &s->sessions;
	s->sessions = x;
	return x;
}

static void on_register(struct cfl_peer *p, const struct cfl_frame *f, int more,
                        struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_auth_server *s = arg;
	struct apeer *ap = ap_of(p);
	char name[CFL_AUTH_NAME_MAX], kindv[16], why[512];
	struct holder h = {"", "", NULL};
	enum cfl_auth_kind kind;
	struct cfl_conn *c = cfl_peer_conn(p);
	struct session *x;
	static const char *const keys[3] = {CFL_KEY_CLIENT_NAME, CFL_KEY_TOKEN,
	                                    CFL_KEY_TOKEN_SIGNATURE};
	const char *vals[3];
	int rc;

	(void)more;
	(void)sink;
	if (f->type != CFL_FRAME_T_REQUEST || ap == NULL)
		return;
	cfl__auth_hdr(f, CFL_KEY_CLIENT_NAME, name, sizeof(name));
	cfl__auth_hdr(f, CFL_KEY_KIND, kindv, sizeof(kindv));
	kind = strcmp(kindv, "admin") == 0 ? CFL_AUTH_ADMIN : CFL_AUTH_CLIENT;
	/* One identity per connection: a second register would leave the first session pointing
	 * at a connection it no longer owns. */
	if (ap->sess != NULL) {
		snprintf(why, sizeof(why), "already logged in as '%s' on this connection",
		         ap->sess->name);
		reject_log(p, name, why);
		cfl_peer_reply_error(p, f->id, "unauthenticated", why);
		return;
	}
	if (check_register(s, p, f, name, kind, &h, why, sizeof(why)) != 0) {
		reject_log(p, name, why);
		cfl_peer_reply_error(p, f->id, "unauthenticated", why);
		return;
	}
	x = new_session(s, p, name, kind, h.role);
	if (x == NULL) {
		cfl_pki_cert_free(h.cert);
		cfl_peer_reply_error(p, f->id, "internal", "cannot issue a token");
		return;
	}
	snprintf(x->org, sizeof(x->org), "%s", h.org);
	x->cert = h.cert;
	cfl__auth_expiry_check(s, x);
	ap->sess = x;
	cfl_loop_timer_cancel(s->loop, ap->login_timer);
	ap->login_timer = 0;
	vals[0] = "server";
	vals[1] = x->srv.token;
	vals[2] = x->srv.sig;
	if (cfl_peer_set_name(p, name) != 0 || cfl_peer_set_auth(p, keys, vals, 3) != 0) {
		cfl__auth_end_session(s, x);
		cfl_peer_reply_error(p, f->id, "internal", "out of memory");
		return;
	}
	cfl_conn_set_max_payload(c, CFL_FRAME_MAX_PAYLOAD);
	CFL_INFO("%s%s logged in from %s to %s (%s%s%s)", kind == CFL_AUTH_ADMIN ? "admin " : "",
	         name, cfl_conn_peer_addr(c), cfl_conn_local_addr(c),
	         cfl_conn_sec_name(cfl_conn_mode(c)), cfl_conn_mode(c) == CFL_SEC_CLEAR ? "" : ", ",
	         cfl_conn_mode(c) == CFL_SEC_CLEAR ? "" : cfl_conn_tls_version(c));
	if ((rc = reply_tokens(p, f->id, s, x)) != 0)
		CFL_ERROR("cannot send the tokens to %s: %s", name, cfl_strerror(rc));
}

/* --- after login: renew, heartbeat, goodbye --------------------------------------------------- */

/* The shortest time between two tokens of one session: a tenth of their lifetime, at least 1 s.
 * Our client renews at two thirds of it (at least 1 s after the last token came), so only a
 * client that asks in a loop, to make the server sign, meets the limit. */
static uint64_t renew_gap_ms(const struct cfl_auth_server *s)
{
	return s->t.token_ttl_ms / 10 > 1000 ? s->t.token_ttl_ms / 10 : 1000;
}

static void on_renew(struct cfl_peer *p, const struct cfl_frame *f, int more,
                     struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_auth_server *s = arg;
	struct apeer *ap = ap_of(p);
	uint64_t now, gap = renew_gap_ms(s);
	char why[160];
	struct tok t;

	(void)more;
	(void)sink;
	if (f->type != CFL_FRAME_T_REQUEST || ap == NULL || ap->sess == NULL)
		return;
	now = cfl_loop_now_ms(s->loop);
	if (now - ap->sess->issued_ms < gap) {
		snprintf(why, sizeof(why),
		         "renewal refused: the token is %.1f s old, at most one renewal per %.1f s",
		         (double)(now - ap->sess->issued_ms) / 1e3, (double)gap / 1e3);
		/* Once per session: a client asking in a loop must not flood the log either. */
		if (!ap->sess->renew_warned) {
			ap->sess->renew_warned = 1;
			CFL_WARN("%s: %s (logged once per session)", ap->sess->name, why);
		}
		cfl_peer_reply_error(p, f->id, "rate_limited", why);
		return;
	}
	if (issue(s, ap->sess->name, &t) != 0) {
		cfl_peer_reply_error(p, f->id, "internal", "cannot issue a token");
		return;
	}
	ap->sess->prev = ap->sess->cur;
	ap->sess->cur = t;
	ap->sess->issued_ms = now;
	CFL_DEBUG("%s renewed its token", ap->sess->name);
	reply_tokens(p, f->id, s, ap->sess);
}

static void on_heartbeat(struct cfl_peer *p, const struct cfl_frame *f, int more,
                         struct cfl_msg_sink *sink, void *arg)
{
	(void)arg;
	(void)more;
	(void)sink;
	/* The gate already refreshed last_seen; a request form gets an answer for RTT checks. */
	if (f->type == CFL_FRAME_T_REQUEST)
		cfl_peer_reply(p, f->id, NULL, 0, NULL, 0);
}

static void on_goodbye(struct cfl_peer *p, const struct cfl_frame *f, int more,
                       struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_auth_server *s = arg;
	struct apeer *ap = ap_of(p);

	(void)f;
	(void)more;
	(void)sink;
	/* Unauthenticated by design (SPEC §5): it can only end the sender's own connection. */
	if (ap != NULL && ap->sess != NULL) {
		CFL_INFO("%s said goodbye", ap->sess->name);
		cfl__auth_end_session(s, ap->sess);
	}
	cfl_conn_close(cfl_peer_conn(p), "goodbye");
}

/* --- connections and the reaper ----------------------------------------------------------------
 */

static void on_login_timeout(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct cfl_peer *p = arg;
	struct apeer *ap = ap_of(p);

	(void)loop;
	(void)id;
	ap->login_timer = 0;
	CFL_WARN("connection from %s did not log in within %.1f s: closed",
	         cfl_conn_peer_addr(cfl_peer_conn(p)), (double)ap->srv->t.login_timeout_ms / 1e3);
	cfl_conn_close(cfl_peer_conn(p), "login timeout");
}

void cfl_auth_server_peer_up(struct cfl_auth_server *s, struct cfl_peer *p)
{
	struct apeer *ap = calloc(1, sizeof(*ap));

	if (ap == NULL) {
		cfl_conn_close(cfl_peer_conn(p), "out of memory");
		return;
	}
	ap->srv = s;
	cfl_peer_set_user(p, ap);
	ap->login_timer = cfl_loop_timer_add(s->loop, s->t.login_timeout_ms, on_login_timeout, p);
}

void cfl_auth_server_peer_down(struct cfl_auth_server *s, struct cfl_peer *p)
{
	struct apeer *ap = ap_of(p);

	if (ap == NULL)
		return;
	cfl_loop_timer_cancel(s->loop, ap->login_timer);
	/* The session outlives the connection until the dead timeout: a client that lost its
	 * path logs in again and carries on. */
	if (ap->sess != NULL && ap->sess->peer == p) {
		ap->sess->peer = NULL;
		/* An admin console's session ends with its connection. */
		if (ap->sess->kind == CFL_AUTH_ADMIN)
			cfl__auth_end_session(s, ap->sess);
	}
	cfl_peer_set_user(p, NULL);
	free(ap);
}

static void on_reap(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct cfl_auth_server *s = arg;
	uint64_t now = cfl_loop_now_ms(loop);
	struct session *x = s->seen_head, *next;

	(void)id;
	/* Oldest first: the first one seen within dead_ms ends the pass. */
	for (; x != NULL; x = next) {
		next = x->seen_next;
		if (now - x->last_seen_ms <= s->t.dead_ms)
			break;
		CFL_WARN("%s silent for %.1f s: removed, its token dropped", x->name,
		         (double)(now - x->last_seen_ms) / 1e3);
		if (x->peer != NULL)
			cfl_conn_close(cfl_peer_conn(x->peer), "no heartbeat: removed");
		cfl__auth_end_session(s, x);
	}
	s->reaper = cfl_loop_timer_add(loop, s->t.dead_ms / 4 > 1000 ? 1000 : s->t.dead_ms / 4 + 1,
	                               on_reap, s);
}

/* --- setup and queries ----------------------------------------------------------------------- */

int cfl_auth_server_new(struct cfl_msg_hub *hub, const struct cfl_auth_server_cfg *cfg,
                        struct cfl_auth_server **out, struct cfl_err *e)
{
	struct cfl_auth_server *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	s->hub = hub;
	s->loop = cfl_msg_hub_loop(hub);
	s->mode = cfg->mode;
	s->t = cfg->times;
	snprintf(s->project, sizeof(s->project), "%s", cfg->project);
	snprintf(s->server_cn, sizeof(s->server_cn), "%s", cfg->server_cn);
	if ((rc = cfl__auth_server_creds_load(s, cfg, e)) != 0) {
		cfl_auth_server_free(s);
		return rc;
	}
	cfl_msg_hub_set_gate(hub, gate, s);
	cfl_msg_hub_handle(hub, CFL_TOPIC_CHALLENGE, on_challenge, s);
	cfl_msg_hub_handle(hub, CFL_TOPIC_REGISTER, on_register, s);
	cfl_msg_hub_handle(hub, CFL_TOPIC_RENEW, on_renew, s);
	cfl_msg_hub_handle(hub, CFL_TOPIC_HEARTBEAT, on_heartbeat, s);
	cfl_msg_hub_handle(hub, CFL_TOPIC_GOODBYE, on_goodbye, s);
	/* The login exchange itself must work before the gate can pass anything (SPEC §5). */
	cfl_msg_hub_exempt(hub, CFL_TOPIC_CHALLENGE);
	cfl_msg_hub_exempt(hub, CFL_TOPIC_REGISTER);
	cfl_msg_hub_exempt(hub, CFL_TOPIC_GOODBYE);
	s->reaper = cfl_loop_timer_add(s->loop, 1000, on_reap, s);
	*out = s;
	return 0;
}

void cfl_auth_server_free(struct cfl_auth_server *s)
{
	if (s == NULL)
		return;
	cfl_loop_timer_cancel(s->loop, s->reaper);
	while (s->sessions != NULL)
		cfl__auth_end_session(s, s->sessions);
	cfl__auth_server_creds_free(s);
	free(s);
}

size_t cfl_auth_server_sessions(const struct cfl_auth_server *s, enum cfl_auth_kind kind,
                                struct cfl_auth_session_info *out, size_t max)
{
	size_t n = 0;

	for (const struct session *x = s->sessions; x != NULL; x = x->next) {
		struct cfl_auth_session_info *i;

		if (x->kind != kind)
			continue;
		if (n < max) {
			i = &out[n];
			memset(i, 0, sizeof(*i));
			snprintf(i->name, sizeof(i->name), "%s", x->name);
			snprintf(i->role, sizeof(i->role), "%s", x->role);
			snprintf(i->addr, sizeof(i->addr), "%s", x->addr);
			snprintf(i->via, sizeof(i->via), "%s", x->via);
			i->kind = x->kind;
			i->mode = x->mode;
			/* The monotonic time of the last message, as wall-clock time now. */
			i->last_seen_ms = cfl__auth_unix_ms() -
			                  (int64_t)(cfl_loop_now_ms(s->loop) - x->last_seen_ms);
			i->token_expiry = x->cur.expiry_s;
			i->cert_not_after = x->cert_not_after;
			i->connected = x->peer != NULL;
		}
		n++;
	}
	return n;
}

int cfl_auth_server_remove(struct cfl_auth_server *s, const char *name, const char *reason)
{
	struct session *x = find_session(s, name);

	if (x == NULL)
		return CFL_ENOENT;
	CFL_INFO("%s removed: %s", name, reason);
	if (x->peer != NULL)
		cfl_conn_close(cfl_peer_conn(x->peer), reason);
	cfl__auth_end_session(s, x);
	return 0;
}

const char *cfl_auth_server_identity(const struct cfl_peer *p, enum cfl_auth_kind *kind,
                                     const char **role)
{
	const struct apeer *ap = cfl_peer_user(p);

	if (ap == NULL || ap->sess == NULL)
		return NULL;
	if (kind != NULL)
		*kind = ap->sess->kind;
	if (role != NULL)
		*role = ap->sess->role;
	return ap->sess->name;
}

const char *cfl_auth_server_org(const struct cfl_peer *p)
{
	const struct apeer *ap = cfl_peer_user(p);

	return ap != NULL && ap->sess != NULL ? ap->sess->org : NULL;
}
