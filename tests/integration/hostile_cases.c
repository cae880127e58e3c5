/* The hostile suite's attacks on message authentication (SPEC §5): tokens, the login exchange
 * and certificates. Each case opens its own connections and closes them. */
#include "hostile.h"

#include "cfl/digest.h"

#include <string.h>
#include <time.h>

#define DAY_S ((time_t)24 * 3600)

/* --- helpers ---------------------------------------------------------------------------------- */

/* A connection on which `id` logged in honestly; NULL (with `how` saying why) if it could not. */
static struct h_conn *logged_in(struct h_env *e, struct h_ident *id, const char *kind, char *how,
                                size_t n)
{
	struct h_conn *hc = NULL;
	char why[512] = "";

	if (h_open(e, id, &hc, why, sizeof(why)) != 0 ||
	    h_login(hc, id, kind, why, sizeof(why)) != 0) {
		h_cat(how, n, "setup: honest login of '%s' failed: %s", id->name, why);
		h_close(hc);
		return NULL;
	}
	return hc;
}

static struct h_conn *fresh(struct h_env *e, struct h_ident *as, char *how, size_t n)
{
	struct h_conn *hc = NULL;
	char why[512] = "";

	if (h_open(e, as, &hc, why, sizeof(why)) != 0)
		h_cat(how, n, "setup: cannot connect as '%s': %s", as->name, why);
	return hc;
}

static void label(char *how, size_t n, const char *what)
{
	h_cat(how, n, "%s%s: ", how[0] != '\0' ? "; " : "", what);
}

/* A ping with these authentication headers (name NULL: none), judged. ping is served by every
 * server (the test topics only with --diag), so the gate is probed as deployed. */
static int probe(struct h_conn *hc, const char *what, const char *name, const char *token,
                 const char *sig, char *how, size_t n)
{
	struct h_hdrs h = {0};

	if (name != NULL)
		h_hdr_auth(&h, name, token, sig);
	label(how, n, what);
	return h_expect_reject(hc, h_request(hc, "ping", &h, "x", 1), how, n);
}

/* 1 if a ping with these headers is answered normally: the baseline that makes a rejection
 * afterwards mean something. */
static int works(struct h_conn *hc, const char *name, const char *token, const char *sig, char *how,
                 size_t n)
{
	struct h_hdrs h = {0};
	struct h_msg *m = NULL;
	uint64_t id;
	int ok;

	h_hdr_auth(&h, name, token, sig);
	id = h_request(hc, "ping", &h, "x", 1);
	ok = id != 0 && h_wait_reply(hc, id, H_WAIT_MS, &m) == 0 && !(m->flags & CFL_FRAME_F_ERROR);
	if (!ok)
		h_cat(how, n, "setup: the honest token of '%s' does not work: %s", name,
		      m != NULL    ? (const char *)m->body
		      : hc->closed ? hc->close_reason
		                   : "no answer");
	h_msg_free(m);
	return ok;
}

/* A register for `name` with `id`'s certificate, signed with `key`, on a connection presenting
 * `tls_as` (mtls), after an honest challenge. Refusal at the TLS layer counts. */
static int register_as(struct h_env *e, struct h_ident *tls_as, struct h_ident *id,
                       const char *name, const char *kind, const char *project,
                       const struct cfl_pki_key *key, char *how, size_t n)
{
	char snonce[H_NONCE_HEX], why[512] = "";
	struct h_reg r = {name, project, snonce, kind, id->pem, id->pem_len, key, NULL};
	struct h_conn *hc = NULL;
	int rc = h_open(e, tls_as, &hc, why, sizeof(why)), ok;

	if (rc == CFL_ECLOSED) {
		h_cat(how, n, "refused at the TLS layer: %s", why);
		return 1;
	}
	if (rc != 0) {
		h_cat(how, n, "setup: cannot connect: %s", why);
		return 0;
	}
	if (h_challenge(hc, name, kind, snonce, why, sizeof(why)) != 0) {
		ok = hc->closed;
		h_cat(how, n, "%s%s", ok ? "connection dropped before register: " : "setup: ", why);
		h_close(hc);
		return ok;
	}
	ok = h_expect_reject(hc, h_register(hc, &r), how, n);
	h_close(hc);
	return ok;
}

struct routed {
	struct h_conn *b, *c;
	uint64_t id;
};

static int routed_or_answered(void *arg)
{
	struct routed *w = arg;
	struct h_msg *m = NULL;

	if (w->b->in != NULL || w->c->closed)
		return 1;
	/* Peek: a reply, if there, goes back for the caller to take. */
	if (h_wait_reply(w->c, w->id, 0, &m) != 0)
		return 0;
	m->next = w->c->in;
	w->c->in = m;
	return 1;
}

/* A login topic (exempt from the gate) sent by a stranger on `c` with `dst` naming the cell
 * that `b` is logged in as: the server must not pass it on. Answering it itself, or refusing
 * it, is fine. */
static int login_topic_routed(struct h_env *e, struct h_conn *b, struct h_conn *c, char *how,
                              size_t n)
{
	char nonce[H_NONCE_HEX];
	struct h_hdrs h = {0};
	struct routed w = {b, c, 0};
	struct h_msg *m = NULL;

	h_nonce(nonce);
	h_hdr(&h, "dst", b->name);
	h_hdr(&h, "client_name", "intruder");
	h_hdr(&h, "nonce", nonce);
	h_hdr(&h, "kind", "client");
	label(how, n, "login topic with dst");
	if ((w.id = h_request(c, "challenge", &h, NULL, 0)) == 0) {
		h_cat(how, n, "connection dropped: %s", c->closed ? c->close_reason : "?");
		return c->closed;
	}
	h_pump(e, H_WAIT_MS, routed_or_answered, &w);
	if (b->in != NULL) {
		const char *from = h_msg_get(b->in, "client_name");
		const char *tok = h_msg_get(b->in, "token");

		h_cat(how, n,
		      "ROUTED: a 'challenge' request without authentication from a connection that "
		      "never logged in reached '%s' (dst header)%s",
		      b->name,
		      from != NULL && strcmp(from, "server") == 0 && tok != NULL &&
		                      strcmp(tok, b->srv_token) == 0
		              ? ", carrying the server's own token for that client"
		              : "");
		return 0;
	}
	if (h_wait_reply(c, w.id, 0, &m) != 0)
		return h_expect_reject(c, 0, how, n);
	if (!(m->flags & CFL_FRAME_F_ERROR)) {
		h_cat(how, n, "answered by the server itself, not passed on");
		h_msg_free(m);
		return 1;
	}
	return h_judge(c, m, how, n);
}

/* --- tokens on every message ------------------------------------------------------------------ */

static int no_auth_headers(struct h_env *e, char *how, size_t n)
{
	struct h_conn *a = logged_in(e, &e->site[0], "client", how, n), *b = NULL, *c = NULL;
	int ok = 0;

	if (a == NULL || !works(a, a->name, a->token, a->sig, how, n))
		goto out;
	ok = probe(a, "logged in, no headers", NULL, NULL, NULL, how, n);
	if ((c = fresh(e, &e->site[0], how, n)) == NULL) {
		ok = 0;
		goto out;
	}
	ok &= probe(c, "never logged in, no headers", NULL, NULL, NULL, how, n);
	/* Login topics are exempt from the gate; they must not become a way past it to another
	 * cell by naming it in `dst`. */
	if ((b = logged_in(e, &e->site[1], "client", how, n)) == NULL) {
		ok = 0;
		goto out;
	}
	ok &= login_topic_routed(e, b, c, how, n);
out:
	h_close(a);
	h_close(b);
	h_close(c);
	return ok;
}

/* "v2.<expiry>.<32 random base64url characters>": the form of a real token (security.md 4.4). */
static void made_up_token(char *token, size_t size, long long expiry)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t raw[32];
	char rnd[sizeof(raw) + 1];

	cfl_random(raw, sizeof(raw));
	for (size_t i = 0; i < sizeof(raw); i++)
		rnd[i] = a[raw[i] & 63];
	rnd[sizeof(raw)] = '\0';
	snprintf(token, size, "v2.%lld.%s", expiry, rnd);
}

static int wrong_token(struct h_env *e, char *how, size_t n)
{
	struct h_conn *a = logged_in(e, &e->site[0], "client", how, n);
	char token[H_TOKEN_MAX];
	int ok = 0;

	if (a == NULL || !works(a, a->name, a->token, a->sig, how, n))
		goto out;
	/* Well-formed like a real one: same version and expiry, other random part (32 base64url
	 * characters, 24 bytes). */
	made_up_token(token, sizeof(token), a->expiry);
	ok = probe(a, "made-up token", a->name, token, a->sig, how, n);
	snprintf(token, sizeof(token), "%s", a->token);
	token[strlen(token) - 1] = token[strlen(token) - 1] == '0' ? '1' : '0';
	ok &= probe(a, "one character changed", a->name, token, a->sig, how, n);
out:
	h_close(a);
	return ok;
}

static int stolen_token(struct h_env *e, char *how, size_t n)
{
	struct h_conn *a = logged_in(e, &e->site[0], "client", how, n), *b = NULL, *c = NULL;
	int ok = 0;

	if (a == NULL || (b = logged_in(e, &e->site[1], "client", how, n)) == NULL ||
	    !works(b, b->name, b->token, b->sig, how, n) ||
	    (c = fresh(e, &e->site[0], how, n)) == NULL)
		goto out;
	ok = probe(a, "site-2's headers on site-1's connection", b->name, b->token, b->sig, how, n);
	ok &= probe(a, "site-2's token under site-1's name", a->name, b->token, b->sig, how, n);
	ok &= probe(c, "site-2's headers on a fresh connection", b->name, b->token, b->sig, how, n);
	/* The victim is unharmed. */
	if (ok && !works(b, b->name, b->token, b->sig, how, n))
		ok = 0;
out:
	h_close(a);
	h_close(b);
	h_close(c);
	return ok;
}

static int forged_token_signature(struct h_env *e, char *how, size_t n)
{
	struct h_conn *a = logged_in(e, &e->site[0], "client", how, n);
	char sig[H_SIG_MAX];
	size_t mid;
	int ok = 0;

	if (a == NULL || !works(a, a->name, a->token, a->sig, how, n))
		goto out;
	/* The client signs its token itself, with its own (valid) key. */
	if (h_sign(e->site[0].key, "cfl-token", a->name, a->token, NULL, sig, sizeof(sig)) != 0) {
		h_cat(how, n, "setup: cannot sign");
		goto out;
	}
	ok = probe(a, "signed by the client's key", a->name, a->token, sig, how, n);
	snprintf(sig, sizeof(sig), "%s", a->sig);
	mid = strlen(sig) / 2;
	sig[mid] = sig[mid] == 'A' ? 'B' : 'A';
	ok &= probe(a, "server signature altered", a->name, a->token, sig, how, n);
out:
	h_close(a);
	return ok;
}

static int expired_token(struct h_env *e, char *how, size_t n)
{
	struct h_conn *a = logged_in(e, &e->site[0], "client", how, n);
	int64_t wait_ms;
	int ok = 0;

	if (a == NULL || !works(a, a->name, a->token, a->sig, how, n))
		goto out;
	/* No renewal: wait until the token's own expiry has passed. */
	wait_ms = a->expiry * 1000 - (int64_t)time(NULL) * 1000 + 1100;
	if (wait_ms > (int64_t)(e->max_token_wait_s * 1000)) {
		h_cat(how, n,
		      "setup: the token lives %lld s; run the server with a short "
		      "CFL_TOKEN_TTL_S (this case waits at most %.0f s)",
		      (long long)(wait_ms / 1000), e->max_token_wait_s);
		goto out;
	}
	if (wait_ms > 0)
		h_pump(e, (uint64_t)wait_ms, NULL, NULL);
	ok = probe(a, "after its expiry", a->name, a->token, a->sig, how, n);
out:
	h_close(a);
	return ok;
}

static int removed_client_token(struct h_env *e, char *how, size_t n)
{
	struct h_conn *v = logged_in(e, &e->site[2], "client", how, n), *adm = NULL, *c = NULL;
	char cmd[H_NAME_MAX + 32];
	struct h_hdrs h = {0};
	struct h_msg *m = NULL;
	uint64_t id;
	int ok = 0;

	if (v == NULL || !works(v, v->name, v->token, v->sig, how, n) ||
	    (adm = logged_in(e, &e->admin, "admin", how, n)) == NULL)
		goto out;
	snprintf(cmd, sizeof(cmd), "remove_client %s", v->name);
	h_hdr_auth(&h, adm->name, adm->token, adm->sig);
	h_hdr(&h, "cmd", cmd);
	id = h_request(adm, "admin", &h, NULL, 0);
	if (id == 0 || h_wait_reply(adm, id, H_WAIT_MS, &m) != 0 ||
	    (m->flags & CFL_FRAME_F_ERROR)) {
		h_cat(how, n, "setup: '%s' failed: %s", cmd,
		      m != NULL ? (const char *)m->body : "-");
		goto out;
	}
	ok = probe(v, "old token on its own connection", v->name, v->token, v->sig, how, n);
	if ((c = fresh(e, &e->site[0], how, n)) == NULL) {
		ok = 0;
		goto out;
	}
	ok &= probe(c, "old token on a new connection", v->name, v->token, v->sig, how, n);
out:
	h_msg_free(m);
	h_close(v);
	h_close(adm);
	h_close(c);
	return ok;
}

static int impersonate_server(struct h_env *e, char *how, size_t n)
{
	struct h_conn *a = logged_in(e, &e->site[0], "client", how, n), *c = NULL;
	struct h_ident srv;
	int ok = 0;

	memset(&srv, 0, sizeof(srv));
	if (a == NULL || e->server_pem == NULL || (c = fresh(e, &e->site[0], how, n)) == NULL)
		goto out;
	/* The server's own token for this session, handed back to it. */
	ok = probe(a, "the server's token reflected", "server", a->srv_token, a->srv_sig, how, n);
	ok &= probe(a, "own token as 'server'", "server", a->token, a->sig, how, n);
	ok &= probe(c, "the server's token on a fresh connection", "server", a->srv_token,
	            a->srv_sig, how, n);
	/* Registering as the server with its (public) certificate, lacking its key. */
	srv.pem = e->server_pem;
	srv.pem_len = e->server_pem_len;
	label(how, n, "register with the server's certificate");
	ok &= register_as(e, &e->site[0], &srv, e->cfg.identity, "client", e->cfg.project,
	                  e->site[0].key, how, n);
out:
	h_close(a);
	h_close(c);
	return ok;
}

/* --- the login exchange ----------------------------------------------------------------------- */

static int register_name_not_cn(struct h_env *e, char *how, size_t n)
{
	return register_as(e, &e->site[0], &e->site[0], e->site[1].name, "client", e->cfg.project,
	                   e->site[0].key, how, n);
}

static int register_wrong_project(struct h_env *e, char *how, size_t n)
{
	char project[H_NAME_MAX + 8];

	snprintf(project, sizeof(project), "%s-evil", e->cfg.project);
	return register_as(e, &e->site[0], &e->site[0], e->site[0].name, "client", project,
	                   e->site[0].key, how, n);
}

static int register_bad_signature(struct h_env *e, char *how, size_t n)
{
	struct cfl_pki_key *other = NULL;
	int ok;

	if (cfl_pki_key_generate(CFL_KEY_P256, &other, NULL) != 0) {
		h_cat(how, n, "setup: cannot make a key");
		return 0;
	}
	ok = register_as(e, &e->site[0], &e->site[0], e->site[0].name, "client", e->cfg.project,
	                 other, how, n);
	cfl_pki_key_free(other);
	return ok;
}

static int register_without_challenge(struct h_env *e, char *how, size_t n)
{
	struct h_conn *a = fresh(e, &e->site[0], how, n);
	char nonce[H_NONCE_HEX];
	struct h_reg r = {e->site[0].name, e->cfg.project,     nonce,          "client",
	                  e->site[0].pem,  e->site[0].pem_len, e->site[0].key, NULL};
	int ok = 0;

	if (a != NULL) {
		h_nonce(nonce);
		ok = h_expect_reject(a, h_register(a, &r), how, n);
	}
	h_close(a);
	return ok;
}

static int register_replay(struct h_env *e, char *how, size_t n)
{
	struct h_ident *me = &e->site[0];
	struct h_conn *a = fresh(e, me, how, n), *b = NULL;
	char snonce[H_NONCE_HEX], sig[H_SIG_MAX], why[512] = "";
	struct h_reg r = {me->name, e->cfg.project, snonce,  "client",
	                  me->pem,  me->pem_len,    me->key, sig};
	struct h_msg *m = NULL;
	uint64_t id;
	int ok = 0;

	if (a == NULL)
		goto out;
	if (h_challenge(a, me->name, "client", snonce, why, sizeof(why)) != 0 ||
	    h_sign(me->key, "cfl-register", me->name, snonce, e->cfg.project, sig, sizeof(sig)) !=
	            0) {
		h_cat(how, n, "setup: %s", why);
		goto out;
	}
	id = h_register(a, &r);
	if (id == 0 || h_wait_reply(a, id, H_WAIT_MS, &m) != 0 || h_take_tokens(a, me->name, m)) {
		h_cat(how, n, "setup: the original register failed: %s",
		      m != NULL ? (const char *)m->body : "-");
		goto out;
	}
	/* The very same bytes again, from a new connection (an eavesdropper) and on the old one. */
	if ((b = fresh(e, me, how, n)) == NULL)
		goto out;
	label(how, n, "on a new connection");
	ok = h_expect_reject(b, h_register(b, &r), how, n);
	label(how, n, "on the same connection");
	ok &= h_expect_reject(a, h_register(a, &r), how, n);
out:
	h_msg_free(m);
	h_close(a);
	h_close(b);
	return ok;
}

static int malformed_nonce(struct h_env *e, char *how, size_t n)
{
	static const struct {
		const char *what, *name, *nonce;
	} bad[] = {
	        {"no nonce", "site-1", NULL},
	        {"63 hex digits", "site-1",
	         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"},
	        {"65 hex digits", "site-1",
	         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0"},
	        {"not hex", "site-1",
	         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg"},
	        {"upper case", "site-1",
	         "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"},
	        {"no name", "", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
	};
	struct h_conn *a = fresh(e, &e->site[0], how, n);
	int ok = a != NULL;

	for (size_t i = 0; a != NULL && i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct h_hdrs h = {0};

		h_hdr(&h, "client_name", bad[i].name);
		if (bad[i].nonce != NULL)
			h_hdr(&h, "nonce", bad[i].nonce);
		h_hdr(&h, "kind", "client");
		label(how, n, bad[i].what);
		ok &= h_expect_reject(a, h_request(a, "challenge", &h, NULL, 0), how, n);
	}
	h_close(a);
	return ok;
}

/* --- certificates ----------------------------------------------------------------------------- */

/* A register with a made certificate, presented at the TLS layer too (mtls). */
static int forged_register(struct h_env *e, struct h_ident *id, const char *kind, char *how,
                           size_t n)
{
	return register_as(e, id, id, id->name, kind, e->cfg.project, id->key, how, n);
}

static int register_foreign_ca(struct h_env *e, char *how, size_t n)
{
	struct cfl_pki_cert_req req = {.cn = "rogue CA", .usage = CFL_PKI_USAGE_CA, .days = 365};
	struct cfl_pki_key *key = NULL;
	struct cfl_pki_cert *ca = NULL;
	struct h_ident id;
	char err[512] = "";
	int ok = 0;

	memset(&id, 0, sizeof(id));
	if (cfl_pki_key_generate(CFL_KEY_P256, &key, NULL) != 0 ||
	    cfl_pki_ca_create(key, &req, &ca, NULL) != 0 ||
	    h_ident_forge(e, &id, e->site[0].name, NULL, key, ca, 0, 30, err, sizeof(err)) != 0)
		h_cat(how, n, "setup: cannot make the rogue CA %s", err);
	else
		ok = forged_register(e, &id, "client", how, n);
	h_ident_release(&id);
	cfl_pki_cert_free(ca);
	cfl_pki_key_free(key);
	return ok;
}

static int dated_cert(struct h_env *e, time_t not_before, int days, char *how, size_t n)
{
	struct h_ident id;
	char err[512] = "";
	int ok = 0;

	memset(&id, 0, sizeof(id));
	if (h_ident_forge(e, &id, e->site[0].name, NULL, NULL, NULL, not_before, days, err,
	                  sizeof(err)) != 0)
		h_cat(how, n, "setup: %s", err);
	else
		ok = forged_register(e, &id, "client", how, n);
	h_ident_release(&id);
	return ok;
}

static int register_expired_cert(struct h_env *e, char *how, size_t n)
{
	return dated_cert(e, time(NULL) - 10 * DAY_S, 1, how, n);
}

static int register_future_cert(struct h_env *e, char *how, size_t n)
{
	return dated_cert(e, time(NULL) + 10 * DAY_S, 30, how, n);
}

static int admin_cert_as_client(struct h_env *e, char *how, size_t n)
{
	return forged_register(e, &e->admin, "client", how, n);
}

static int client_cert_as_admin(struct h_env *e, char *how, size_t n)
{
	return forged_register(e, &e->site[0], "admin", how, n);
}

const struct h_case h_cases[] = {
        {"no-auth-headers", no_auth_headers, "messages without client_name/token/signature"},
        {"wrong-token", wrong_token, "a token the server never issued"},
        {"stolen-token", stolen_token, "another client's valid token and signature"},
        {"forged-token-signature", forged_token_signature, "a valid token, a wrong signature"},
        {"register-name-not-cn", register_name_not_cn, "register name differs from the cert CN"},
        {"register-foreign-ca", register_foreign_ca, "a certificate from another root CA"},
        {"register-expired-cert", register_expired_cert, "a project certificate that expired"},
        {"register-future-cert", register_future_cert, "a project certificate not yet valid"},
        {"register-without-challenge", register_without_challenge, "a nonce never issued"},
        {"register-replay", register_replay, "a successful register sent again"},
        {"admin-cert-as-client", admin_cert_as_client, "an admin certificate, kind=client"},
        {"client-cert-as-admin", client_cert_as_admin, "a client certificate, kind=admin"},
        {"expired-token", expired_token, "a token past its expiry, never renewed"},
        {"removed-client-token", removed_client_token, "the token of a client an admin removed"},
        {"challenge-flood", h_case_challenge_flood, "many challenges: bounded memory, login works"},
        {"oversized-frame", h_case_oversized_frame, "a 1 MiB frame before login"},
        {"random-bytes", h_case_random_bytes, "bytes that are not frames"},
        {"slow-trickle", h_case_slow_trickle, "one byte every 200 ms, never logging in"},
        {"register-wrong-project", register_wrong_project, "register for another project"},
        {"register-bad-signature", register_bad_signature, "register signed with another key"},
        {"malformed-nonce", malformed_nonce, "challenges with bad nonces or no name"},
        {"impersonate-server", impersonate_server, "messages claiming to be from 'server'"},
        {"unsigned-job", h_case_unsigned_job, "an admin submits a job without a signature"},
        {"job-changed-after-signing", h_case_job_changed_after_signing,
         "a signed job whose config.json was changed"},
        {"job-signed-by-other-admin", h_case_job_signed_by_other_admin,
         "a job signed by another admin of the project"},
        {"job-signed-by-foreign-ca", h_case_job_signed_by_foreign_ca,
         "a job signed with the admin's name from another root CA"},
};
const size_t h_n_cases = sizeof(h_cases) / sizeof(h_cases[0]);
