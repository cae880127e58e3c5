/* Unit tests for message authentication (src/auth/auth_server.c, auth_client.c): a real auth
 * server and auth clients over the hub on loopback, with kits provisioned by the library into
 * a temporary folder. Every branch of the server's gate with its reason text (missing headers,
 * a message before login, another identity's name or token, a wrong signature, an expired
 * token), renewal, heartbeats and the removal of silent sessions, goodbye, the login timeout,
 * every check of register (nonce, project, certificate chain, purpose, CN, role, TLS identity,
 * signature), the client's login failures (a server certificate of the wrong purpose among
 * them) and its own gate on the server's messages.
 *
 * Raw connections log in by hand (challenge, register) so that a test controls every header. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "msg_fixture.h"

#include "auth/auth_int.h"
#include "cfl/auth.h"
#include "cfl/conn.h"
#include "cfl/tls.h"

#include <time.h>

#define MAX_CLI 24
#define PROJECT "authp"

/* authp: the project under test; otherp: another project (another root CA) with the same
 * names. */
static const char authp_yml[] =
        "api_version: 3\n"
        "name: authp\n"
        "connection_security: mtls\n"
        "participants:\n"
        "  - {name: server1, type: server, org: test, fed_learn_port: 8002, admin_port: 8003,\n"
        "     host_names: [localhost, 127.0.0.1]}\n"
        "  - {name: site-1, type: client, org: test}\n"
        "  - {name: site-2, type: client, org: test}\n"
        "  - {name: admin@test.org, type: admin, org: test, role: project_admin}\n";
static const char otherp_yml[] = "api_version: 3\n"
                                 "name: otherp\n"
                                 "participants:\n"
                                 "  - {name: server1, type: server, org: test}\n"
                                 "  - {name: site-1, type: client, org: test}\n";

static char prod[PATH_MAX], other_prod[PATH_MAX];
/* NULL, or the certificate world_start() gives the server instead of its kit's. */
static const char *server_cert_override;

/* <prod>/<participant>/startup/<file> */
static const char *kit(char *buf, size_t size, const char *base, const char *who, const char *file)
{
	if (snprintf(buf, size, "%s/%s/startup/%s", base, who, file) >= (int)size)
		fail_msg("path too long");
	return buf;
}

/* --- what replies carried -------------------------------------------------------------------- */

struct authrep {
	int calls, status;
	char reason[512], status_hdr[64];
	char server_nonce[NONCE_HEX + 1], server_cn[64];
	char token[TOKEN_MAX], sig[SIG_B64_MAX], expiry[24], ttl[24], heartbeat[24], security[16];
	char body[64], signature[SIG_B64_MAX]; /* signature: of a challenge reply */
};

static void on_authrep(struct cfl_peer *p, int status, const char *reason,
                       const struct cfl_frame *f, int more, struct cfl_msg_sink *sink, void *arg)
{
	struct authrep *r = arg;
	size_t n;

	(void)p;
	(void)more;
	(void)sink;
	r->calls++;
	r->status = status;
	snprintf(r->reason, sizeof(r->reason), "%s", reason != NULL ? reason : "");
	if (f == NULL)
		return;
	cfl_frame_header_str(f, "status", r->status_hdr, sizeof(r->status_hdr));
	cfl_frame_header_str(f, "server_nonce", r->server_nonce, sizeof(r->server_nonce));
	cfl_frame_header_str(f, "signature", r->signature, sizeof(r->signature));
	cfl_frame_header_str(f, "server_cn", r->server_cn, sizeof(r->server_cn));
	cfl_frame_header_str(f, "issued_token", r->token, sizeof(r->token));
	cfl_frame_header_str(f, "issued_token_signature", r->sig, sizeof(r->sig));
	cfl_frame_header_str(f, "issued_token_expiry", r->expiry, sizeof(r->expiry));
	cfl_frame_header_str(f, "issued_token_ttl_ms", r->ttl, sizeof(r->ttl));
	cfl_frame_header_str(f, "heartbeat_ms", r->heartbeat, sizeof(r->heartbeat));
	cfl_frame_header_str(f, "security", r->security, sizeof(r->security));
	n = f->body_len < sizeof(r->body) - 1 ? f->body_len : sizeof(r->body) - 1;
	memcpy(r->body, f->body, n);
	r->body[n] = '\0';
}

/* --- the world: a server hub with the auth server, clients ----------------------------------- */

struct world;

struct cli {
	struct world *w;
	struct cfl_msg_hub *hub;
	struct cfl_auth_client *auth; /* NULL: a raw connection that logs in by hand */
	int autologin;
	struct cfl_peer *peer;
	int up, down, down_code;
	char down_reason[512];
	int logins, login_status;
	char login_reason[512];
	int pings;
};

/* What the server's `probe` topic saw (only messages the gate let through). */
struct probe {
	int calls;
	char name[64], token[TOKEN_MAX], sig[SIG_B64_MAX];
};

struct world {
	struct cfl_loop *loop;
	struct cfl_listener *l;
	int port;
	struct cfl_msg_hub *hub;
	struct cfl_auth_server *auth;
	struct cfl_peer *srv_peers[MAX_CLI];
	int srv_up, srv_down;
	struct probe probe;
	struct cli cli[MAX_CLI];
	int n_cli;
};

static void srv_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct world *w = arg;

	(void)code;
	(void)reason;
	cfl_auth_server_peer_up(w->auth, p);
	if (w->srv_up < MAX_CLI)
		w->srv_peers[w->srv_up] = p;
	w->srv_up++;
}

static void srv_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct world *w = arg;

	(void)code;
	(void)reason;
	if (p != NULL)
		cfl_auth_server_peer_down(w->auth, p);
	w->srv_down++;
}

static void on_probe(struct cfl_peer *p, const struct cfl_frame *f, int more,
                     struct cfl_msg_sink *sink, void *arg)
{
	struct probe *pr = arg;

	(void)more;
	(void)sink;
	pr->calls++;
	cfl_frame_header_str(f, "client_name", pr->name, sizeof(pr->name));
	cfl_frame_header_str(f, "token", pr->token, sizeof(pr->token));
	cfl_frame_header_str(f, "token_signature", pr->sig, sizeof(pr->sig));
	if (f->type == CFL_FRAME_T_REQUEST)
		assert_int_equal(cfl_peer_reply(p, f->id, NULL, 0, "ok", 2), 0);
}

static void default_times(struct cfl_auth_times *t)
{
	t->token_ttl_ms = 60000;
	t->heartbeat_ms = 10000;
	t->dead_ms = 60000;
	t->login_timeout_ms = 10000;
}

/* A server on an ephemeral port with `times` (NULL: the defaults above) and `tls` (NULL: clear;
 * the world takes the reference). */
static void world_start(struct world *w, const struct cfl_auth_times *times,
                        struct cfl_tls_ctx *tls)
{
	char crt[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
	struct cfl_auth_server_cfg cfg = {.project = PROJECT, .server_cn = "server1"};
	struct cfl_conn_opts o;
	struct cfl_err e = {0};

	memset(w, 0, sizeof(*w));
	log_capture();
	cfg.cert_file = server_cert_override != NULL
	                        ? server_cert_override
	                        : kit(crt, sizeof(crt), prod, "server1", "server.crt");
	cfg.key_file = kit(key, sizeof(key), prod, "server1", "server.key");
	cfg.root_ca = kit(ca, sizeof(ca), prod, "server1", "rootCA.pem");
	cfg.mode = tls != NULL ? CFL_SEC_MTLS : CFL_SEC_CLEAR;
	if (times != NULL)
		cfg.times = *times;
	else
		default_times(&cfg.times);
	assert_int_equal(cfl_loop_new(&w->loop, &e), 0);
	assert_int_equal(cfl_msg_hub_new(w->loop, "server", &w->hub, &e), 0);
	if (cfl_auth_server_new(w->hub, &cfg, &w->auth, &e) != 0)
		fail_msg("auth server: %s", e.msg);
	cfl_msg_hub_on_peer(w->hub, srv_up, srv_down, w);
	assert_int_equal(cfl_msg_hub_handle(w->hub, "probe", on_probe, &w->probe), 0);
	o = cfl_msg_hub_conn_opts(w->hub, tls);
	if (cfl_listener_new(w->loop, "127.0.0.1", 0, &o, &w->l, &e) != 0)
		fail_msg("listener: %s", e.msg);
	cfl_tls_ctx_free(tls);
	w->port = cfl_listener_port(w->l);
}

static void world_stop(struct world *w)
{
	for (int i = 0; i < w->n_cli; i++)
		cfl_msg_hub_free(w->cli[i].hub);
	for (int i = 0; i < w->n_cli; i++)
		cfl_auth_client_free(w->cli[i].auth);
	cfl_msg_hub_free(w->hub);
	cfl_auth_server_free(w->auth);
	cfl_listener_free(w->l);
	cfl_loop_free(w->loop);
}

/* --- clients --------------------------------------------------------------------------------- */

static void on_login(struct cfl_peer *p, int status, const char *reason, void *arg)
{
	struct cli *c = arg;

	(void)p;
	c->logins++;
	c->login_status = status;
	snprintf(c->login_reason, sizeof(c->login_reason), "%s", reason != NULL ? reason : "");
}

static void cli_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct cli *c = arg;

	(void)code;
	(void)reason;
	c->peer = p;
	c->up++;
	cfl_peer_set_name(p, "server");
	if (c->auth != NULL && c->autologin)
		assert_int_equal(cfl_auth_client_login(c->auth, p, on_login, c), 0);
}

static void cli_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct cli *c = arg;

	c->down++;
	c->down_code = code;
	snprintf(c->down_reason, sizeof(c->down_reason), "%s", reason != NULL ? reason : "");
	if (p != NULL && c->auth != NULL)
		cfl_auth_client_peer_down(c->auth, p);
	c->peer = NULL;
}

/* The server asks clients "ping"; they answer "pong". */
static void on_ping(struct cfl_peer *p, const struct cfl_frame *f, int more,
                    struct cfl_msg_sink *sink, void *arg)
{
	struct cli *c = arg;

	(void)more;
	(void)sink;
	c->pings++;
	assert_int_equal(cfl_peer_reply(p, f->id, NULL, 0, "pong", 4), 0);
}

static struct cli *cli_add(struct world *w, const char *cell)
{
	struct cli *c = &w->cli[w->n_cli++];
	struct cfl_err e = {0};

	assert_true(w->n_cli <= MAX_CLI);
	memset(c, 0, sizeof(*c));
	c->w = w;
	assert_int_equal(cfl_msg_hub_new(w->loop, cell, &c->hub, &e), 0);
	cfl_msg_hub_on_peer(c->hub, cli_up, cli_down, c);
	assert_int_equal(cfl_msg_hub_handle(c->hub, "ping", on_ping, c), 0);
	return c;
}

/* The auth client configuration of kit `who` of project base `base`. */
static void client_cfg(struct cfl_auth_client_cfg *cfg, char paths[3][PATH_MAX], const char *base,
                       const char *who, enum cfl_auth_kind kind)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->name = who;
	cfg->project = PROJECT;
	cfg->server_cn = "server1";
	cfg->cert_file = kit(paths[0], PATH_MAX, base, who, "client.crt");
	cfg->key_file = kit(paths[1], PATH_MAX, base, who, "client.key");
	cfg->root_ca = kit(paths[2], PATH_MAX, base, who, "rootCA.pem");
	cfg->kind = kind;
	cfg->mode = CFL_SEC_CLEAR;
	default_times(&cfg->times);
}

/* A client with cfl_auth_client that logs in as soon as it is connected (autologin). */
static struct cli *cli_auth(struct world *w, const struct cfl_auth_client_cfg *cfg, int autologin)
{
	struct cli *c = cli_add(w, cfg->name);
	struct cfl_err e = {0};

	if (cfl_auth_client_new(c->hub, cfg, &c->auth, &e) != 0)
		fail_msg("auth client: %s", e.msg);
	c->autologin = autologin;
	return c;
}

/* Dials the server (tls: NULL for clear; the reference is taken); both ends up on return, and
 * the login done when the client logs in by itself. */
static void cli_dial(struct cli *c, struct cfl_tls_ctx *tls)
{
	struct cfl_conn_opts o = cfl_msg_hub_conn_opts(c->hub, tls);
	struct cfl_conn *conn;
	struct cfl_err e = {0};
	int srv_up = c->w->srv_up;

	assert_int_equal(cfl_conn_dial(c->w->loop, "127.0.0.1", c->w->port, &o, &conn, &e), 0);
	cfl_tls_ctx_free(tls);
	assert_true(wait_for(c->w->loop, &c->up, 1, WAIT_MS));
	assert_true(wait_for(c->w->loop, &c->w->srv_up, srv_up + 1, WAIT_MS));
	if (c->auth != NULL && c->autologin)
		assert_true(wait_for(c->w->loop, &c->logins, 1, WAIT_MS));
}

/* A connected raw client. */
static struct cli *cli_raw(struct world *w, const char *cell)
{
	struct cli *c = cli_add(w, cell);

	cli_dial(c, NULL);
	return c;
}

/* The server's peer for the connection of client c (the one that came up with it). */
static struct cfl_peer *srv_peer_of(struct world *w, const struct cli *c)
{
	return w->srv_peers[c - w->cli];
}

static void set_auth(struct cli *c, const char *name, const char *token, const char *sig)
{
	static const char *const keys[3] = {"client_name", "token", "token_signature"};
	const char *vals[3] = {name, token, sig};
	size_t n = name == NULL ? 0 : token == NULL ? 1 : sig == NULL ? 2 : 3;

	assert_int_equal(cfl_peer_set_auth(c->peer, keys, vals, n), 0);
}

/* A request from c to the server's topic; waits for its outcome. */
static void ask(struct cli *c, const char *topic, const struct cfl_header *h, size_t nh,
                const void *body, size_t len, struct authrep *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(cfl_peer_request(c->peer, topic, h, nh, body, len, 3000, on_authrep, r),
	                 0);
	assert_true(wait_for(c->w->loop, &r->calls, 1, WAIT_MS));
}

/* probe with the given authentication headers: "" when accepted, else the rejection reason. */
static const char *probe_as(struct cli *c, const char *name, const char *token, const char *sig)
{
	static struct authrep r;

	set_auth(c, name, token, sig);
	ask(c, "probe", NULL, 0, NULL, 0, &r);
	if (r.status == 0) {
		assert_string_equal(r.body, "ok");
		return "";
	}
	assert_int_equal(r.status, CFL_EPROTO);
	assert_string_equal(r.status_hdr, "unauthenticated");
	return r.reason;
}

/* --- logging in by hand ---------------------------------------------------------------------- */

/* One register attempt: what each header and the signature say. */
struct reg {
	const char *name;           /* client_name of register */
	const char *challenge_name; /* of the challenge; NULL: name */
	const char *project;        /* header; NULL: PROJECT */
	const char *signed_project; /* in the signed string; NULL: project */
	const char *cert;           /* the certificate sent; NULL: none */
	const char *key;            /* signs the request */
	const char *kind;           /* NULL: "client" */
	const char *nonce;          /* NULL: the challenge's */
};

static struct cfl_header hdr(const char *k, const char *v)
{
	return (struct cfl_header){k, strlen(k), (const uint8_t *)v, strlen(v)};
}

static void challenge(struct cli *c, const char *name, struct authrep *r)
{
	char nonce[NONCE_HEX];
	struct cfl_header h[3];

	set_auth(c, NULL, NULL, NULL); /* a login starts without a token, as the client's does */
	assert_int_equal(cfl__auth_nonce(nonce), 0);
	h[0] = hdr("client_name", name);
	h[1] = hdr("nonce", nonce);
	h[2] = hdr("kind", "client");
	ask(c, "challenge", h, 3, NULL, 0, r);
}

/* challenge + register as `g` says; on success the client's messages carry the new token. */
static void login_by_hand(struct cli *c, const struct reg *g, struct authrep *r)
{
	const char *project = g->project != NULL ? g->project : PROJECT;
	const char *signed_project = g->signed_project != NULL ? g->signed_project : project;
	char sig[SIG_B64_MAX], nonce[NONCE_HEX + 1], *pem = NULL;
	struct cfl_pki_key *key = NULL;
	struct cfl_header h[5];
	struct cfl_err e = {0};
	uint8_t tbs[1024];
	size_t n, pem_len = 0;

	challenge(c, g->challenge_name != NULL ? g->challenge_name : g->name, r);
	assert_int_equal(r->status, 0);
	assert_string_equal(r->server_cn, "server1");
	/* (r is reused for the reply: the nonce is copied out first) */
	snprintf(nonce, sizeof(nonce), "%s", g->nonce != NULL ? g->nonce : r->server_nonce);
	if (g->cert != NULL)
		assert_int_equal(cfl__fs_read_file(g->cert, 1u << 20, &pem, &pem_len, &e), 0);
	assert_int_equal(cfl_pki_key_load(g->key, &key, &e), 0);
	n = cfl__auth_tbs(tbs, sizeof(tbs), "cfl-register", g->name, nonce, signed_project);
	assert_int_equal(cfl__auth_sign_b64(key, tbs, n, sig, sizeof(sig)), 0);
	cfl_pki_key_free(key);
	h[0] = hdr("client_name", g->name);
	h[1] = hdr("project", project);
	h[2] = hdr("server_nonce", nonce);
	h[3] = hdr("signature", sig);
	h[4] = hdr("kind", g->kind != NULL ? g->kind : "client");
	ask(c, "register", h, 5, pem, pem_len, r);
	free(pem);
	if (r->status == 0)
		set_auth(c, g->name, r->token, r->sig);
}

/* The standard login of site `who` with its own kit. */
static void good_reg(struct reg *g, char paths[2][PATH_MAX], const char *who)
{
	memset(g, 0, sizeof(*g));
	g->name = who;
	g->cert = kit(paths[0], PATH_MAX, prod, who, "client.crt");
	g->key = kit(paths[1], PATH_MAX, prod, who, "client.key");
}

static void login_ok(struct cli *c, const char *who, struct authrep *r)
{
	char paths[2][PATH_MAX];
	struct reg g;

	good_reg(&g, paths, who);
	login_by_hand(c, &g, r);
	if (r->status != 0)
		fail_msg("login of %s refused: %s", who, r->reason);
	assert_string_equal(r->security, "clear");
	assert_true(strncmp(r->token, "v2.", 3) == 0);
}

/* Closes c's connection and waits until the server saw it go. */
static void cli_close(struct cli *c)
{
	int down = c->w->srv_down;

	cfl_conn_close(cfl_peer_conn(c->peer), "test done");
	assert_true(wait_for(c->w->loop, &c->w->srv_down, down + 1, WAIT_MS));
}

static size_t sessions(struct world *w, enum cfl_auth_kind kind, struct cfl_auth_session_info *out,
                       size_t max)
{
	return cfl_auth_server_sessions(w->auth, kind, out, max);
}

/* --- login and sessions ---------------------------------------------------------------------- */

static void test_login_and_sessions(void **state)
{
	char paths[3][PATH_MAX];
	struct cfl_auth_client_cfg cfg;
	struct cfl_auth_session_info info[4];
	struct authrep r;
	struct world w;
	struct cli *s1, *adm, *again;
	enum cfl_auth_kind kind;
	const char *role = NULL;
	int down;
	time_t now = time(NULL);

	(void)state;
	world_start(&w, NULL, NULL);
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	s1 = cli_auth(&w, &cfg, 1);
	cli_dial(s1, NULL);
	assert_int_equal(s1->login_status, 0);
	assert_true(cfl_auth_client_token_expiry(s1->auth) >= (int64_t)now + 59);
	assert_int_equal(cfl_auth_client_renewals(s1->auth), 0);

	/* The server knows the connection by its identity now. */
	assert_string_equal(cfl_peer_name(srv_peer_of(&w, s1)), "site-1");
	assert_string_equal(cfl_auth_server_identity(srv_peer_of(&w, s1), &kind, &role), "site-1");
	assert_int_equal(kind, CFL_AUTH_CLIENT);
	assert_string_equal(role, "");
	assert_string_equal(cfl_auth_server_org(srv_peer_of(&w, s1)), "test");
	assert_int_equal(cfl_conn_max_payload(cfl_peer_conn(srv_peer_of(&w, s1))),
	                 CFL_FRAME_MAX_PAYLOAD);
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 1);
	assert_string_equal(info[0].name, "site-1");
	assert_int_equal(info[0].kind, CFL_AUTH_CLIENT);
	assert_int_equal(info[0].connected, 1);
	assert_int_equal(info[0].mode, CFL_SEC_CLEAR);
	assert_true(info[0].token_expiry >= (int64_t)now + 59);
	assert_int_equal(sessions(&w, CFL_AUTH_ADMIN, info, 4), 0);

	/* Its messages pass the gate with its token, and the server's pass its own gate. */
	ask(s1, "probe", NULL, 0, NULL, 0, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(w.probe.name, "site-1");
	assert_true(strncmp(w.probe.token, "v2.", 3) == 0);
	{
		struct authrep back = {0};

		assert_int_equal(cfl_peer_request(srv_peer_of(&w, s1), "ping", NULL, 0, NULL, 0,
		                                  2000, on_authrep, &back),
		                 0);
		assert_true(wait_for(w.loop, &back.calls, 1, WAIT_MS));
		assert_int_equal(back.status, 0);
		assert_string_equal(back.body, "pong");
	}

	/* An admin: a session of its own kind, with its role; it ends with its connection. */
	client_cfg(&cfg, paths, prod, "admin@test.org", CFL_AUTH_ADMIN);
	adm = cli_auth(&w, &cfg, 1);
	cli_dial(adm, NULL);
	assert_int_equal(adm->login_status, 0);
	assert_int_equal(sessions(&w, CFL_AUTH_ADMIN, info, 4), 1);
	assert_string_equal(info[0].name, "admin@test.org");
	assert_string_equal(info[0].role, "project_admin");
	assert_string_equal(cfl_auth_server_identity(srv_peer_of(&w, adm), &kind, &role),
	                    "admin@test.org");
	assert_int_equal(kind, CFL_AUTH_ADMIN);
	assert_string_equal(role, "project_admin");
	/* Its org, from its certificate: what the server's policy compares (docs/security.md). */
	assert_string_equal(cfl_auth_server_org(srv_peer_of(&w, adm)), "test");
	cli_close(adm);
	assert_int_equal(sessions(&w, CFL_AUTH_ADMIN, info, 4), 0);

	/* The same site logging in again from another connection replaces the first one. */
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	down = w.srv_down;
	again = cli_auth(&w, &cfg, 1);
	cli_dial(again, NULL);
	assert_int_equal(again->login_status, 0);
	assert_true(wait_for(w.loop, &s1->down, 1, WAIT_MS));
	assert_non_null(strstr(s1->down_reason, "replaced by a new login"));
	/* The server's end of the replaced connection closes once the site's end has. */
	assert_true(wait_for(w.loop, &w.srv_down, down + 1, WAIT_MS));
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 1);

	/* A client's session outlives its connection (until the dead timeout)... */
	cli_close(again);
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 1);
	assert_int_equal(info[0].connected, 0);
	/* ...and ends when removed. */
	assert_int_equal(cfl_auth_server_remove(w.auth, "site-9", "test"), CFL_ENOENT);
	assert_int_equal(cfl_auth_server_remove(w.auth, "site-1", "removed by the test"), 0);
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 0);
	world_stop(&w);
}

/* --- the gate -------------------------------------------------------------------------------- */

static void test_gate_branches(void **state)
{
	struct authrep r1, r2, r;
	char t1[TOKEN_MAX], s1[SIG_B64_MAX], bad_sig[SIG_B64_MAX];
	struct world w;
	struct cli *a, *b, *stranger;
	int calls;

	(void)state;
	world_start(&w, NULL, NULL);
	stranger = cli_raw(&w, "site-1");
	a = cli_raw(&w, "site-1");
	b = cli_raw(&w, "site-2");

	/* Missing headers, each way. */
	assert_string_equal(probe_as(stranger, NULL, NULL, NULL), "missing authentication headers");
	assert_true(logged("(claims '-'): missing authentication headers", NULL));
	assert_string_equal(probe_as(stranger, "site-1", "t", NULL),
	                    "missing authentication headers");
	assert_string_equal(probe_as(stranger, "", "t", "s"), "missing authentication headers");
	/* All three, but this connection never logged in. */
	assert_string_equal(probe_as(stranger, "site-1", "v1.1.ab", "c2ln"),
	                    "not logged in on this connection");
	assert_true(logged("(claims 'site-1'): not logged in on this connection", NULL));

	login_ok(a, "site-1", &r1);
	login_ok(b, "site-2", &r2);
	snprintf(t1, sizeof(t1), "%s", r1.token);
	snprintf(s1, sizeof(s1), "%s", r1.sig);
	assert_string_equal(probe_as(a, "site-1", t1, s1), "");
	assert_string_equal(w.probe.token, t1);
	assert_string_equal(probe_as(b, "site-2", r2.token, r2.sig), "");

	/* Another name on a's connection, with a's token or with b's. */
	assert_string_equal(probe_as(a, "site-2", t1, s1),
	                    "client_name is not the identity of this connection");
	assert_string_equal(probe_as(a, "site-2", r2.token, r2.sig),
	                    "client_name is not the identity of this connection");
	assert_true(logged("(claims 'site-2'): client_name is not the identity", NULL));
	/* b's token under a's name: not a token of this connection's session. */
	assert_string_equal(probe_as(a, "site-1", r2.token, r2.sig), "unknown token");
	/* A token copied to a connection that never logged in. */
	assert_string_equal(probe_as(stranger, "site-1", t1, s1),
	                    "not logged in on this connection");
	assert_string_equal(probe_as(a, "site-1", "v1.99.0000", s1), "unknown token");

	/* The right token with a wrong signature: b's, or one character changed. */
	assert_string_equal(probe_as(a, "site-1", t1, r2.sig), "bad token signature");
	snprintf(bad_sig, sizeof(bad_sig), "%s", s1);
	bad_sig[5] = bad_sig[5] == 'A' ? 'B' : 'A';
	assert_string_equal(probe_as(a, "site-1", t1, bad_sig), "bad token signature");
	assert_string_equal(probe_as(a, "site-1", t1, ""), "bad token signature");

	/* A rejected one-way message never reaches its handler. */
	calls = w.probe.calls;
	set_auth(a, "site-1", t1, bad_sig);
	assert_int_equal(cfl_peer_send(a->peer, "probe", NULL, 0, NULL, 0), 0);
	assert_string_equal(probe_as(a, "site-1", t1, s1), ""); /* after it, in order */
	assert_int_equal(w.probe.calls, calls + 1);
	assert_true(logged("(claims 'site-1'): bad token signature", NULL));

	/* The login topics other than challenge, register and goodbye are behind the gate. */
	set_auth(stranger, NULL, NULL, NULL);
	ask(stranger, "heartbeat", NULL, 0, NULL, 0, &r);
	assert_string_equal(r.status_hdr, "unauthenticated");
	assert_string_equal(r.reason, "missing authentication headers");
	ask(stranger, "renew", NULL, 0, NULL, 0, &r);
	assert_string_equal(r.reason, "missing authentication headers");
	world_stop(&w);
}

static void test_expired_token(void **state)
{
	struct cfl_auth_times t;
	char paths[2][PATH_MAX];
	struct authrep r, again;
	struct world w;
	struct reg g;
	struct cli *a;

	(void)state;
	default_times(&t);
	t.token_ttl_ms = 800;
	world_start(&w, &t, NULL);
	a = cli_raw(&w, "site-1");
	login_ok(a, "site-1", &r);
	assert_string_equal(probe_as(a, "site-1", r.token, r.sig), "");
	spin(w.loop, 900);
	assert_string_equal(probe_as(a, "site-1", r.token, r.sig), "token expired");
	assert_true(logged("(claims 'site-1'): token expired", NULL));
	/* Too late to renew with it, and one connection holds one identity: log in anew. */
	ask(a, "renew", NULL, 0, NULL, 0, &again);
	assert_string_equal(again.reason, "token expired");
	good_reg(&g, paths, "site-1");
	login_by_hand(a, &g, &again);
	assert_int_equal(again.status, CFL_EPROTO);
	assert_string_equal(again.reason, "already logged in as 'site-1' on this connection");
	world_stop(&w);
}

static void test_renewal(void **state)
{
	char paths[3][PATH_MAX], first[TOKEN_MAX];
	struct cfl_auth_client_cfg cfg;
	struct cfl_auth_times t;
	struct authrep r1, r2, r3, r;
	struct world w;
	struct cli *a, *auto_cli;
	uint64_t t0;

	(void)state;
	/* By hand: each renewal makes a new current token; the previous one keeps working. At most
	 * one renewal per tenth of the lifetime (at least 1 s): 1 s with a lifetime of 5 s. */
	default_times(&t);
	t.token_ttl_ms = 5000;
	world_start(&w, &t, NULL);
	a = cli_raw(&w, "site-1");
	login_ok(a, "site-1", &r1);
	spin(w.loop, 1000);
	ask(a, "renew", NULL, 0, NULL, 0, &r2);
	assert_int_equal(r2.status, 0);
	assert_string_not_equal(r2.token, r1.token);
	assert_true(strncmp(r2.token, "v2.", 3) == 0);
	assert_true(strtoll(r2.expiry, NULL, 10) >= strtoll(r1.expiry, NULL, 10));
	assert_string_equal(probe_as(a, "site-1", r1.token, r1.sig), "");
	assert_string_equal(probe_as(a, "site-1", r2.token, r2.sig), "");
	spin(w.loop, 1000);
	ask(a, "renew", NULL, 0, NULL, 0, &r3);
	assert_int_equal(r3.status, 0);
	/* Only one previous token is kept. */
	assert_string_equal(probe_as(a, "site-1", r1.token, r1.sig), "unknown token");
	assert_string_equal(probe_as(a, "site-1", r2.token, r2.sig), "");
	assert_string_equal(probe_as(a, "site-1", r3.token, r3.sig), "");
	/* A heartbeat request is answered, empty. */
	ask(a, "heartbeat", NULL, 0, NULL, 0, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.body, "");
	world_stop(&w);

	/* The client renews by itself at two thirds of the lifetime (at least 1 s), and carries on
	 * past the first token's expiry. (The lifetime the server states runs to the expiry's
	 * whole second: 1..2 s here, so the renewal comes 1..1.33 s in, before the token's 2 s.) */
	default_times(&t);
	t.token_ttl_ms = 2000;
	world_start(&w, &t, NULL);
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	auto_cli = cli_auth(&w, &cfg, 1);
	t0 = cfl_loop_now_ms(w.loop);
	cli_dial(auto_cli, NULL);
	ask(auto_cli, "probe", NULL, 0, NULL, 0, &r);
	assert_int_equal(r.status, 0);
	snprintf(first, sizeof(first), "%s", w.probe.token);
	{
		uint64_t end = cfl_loop_now_ms(w.loop) + WAIT_MS;

		while (cfl_auth_client_renewals(auto_cli->auth) < 1 &&
		       cfl_loop_now_ms(w.loop) < end)
			assert_true(cfl_loop_run_once(w.loop, 10) >= 0);
	}
	assert_true(cfl_auth_client_renewals(auto_cli->auth) >= 1);
	assert_true(cfl_loop_now_ms(w.loop) - t0 >= 990);
	if (cfl_loop_now_ms(w.loop) - t0 < 2200)
		spin(w.loop, 2200 - (cfl_loop_now_ms(w.loop) - t0));
	ask(auto_cli, "probe", NULL, 0, NULL, 0, &r);
	assert_int_equal(r.status, 0);
	assert_string_not_equal(w.probe.token, first);
	assert_int_equal(auto_cli->down, 0);
	world_stop(&w);
}

/* Lines of the captured log that hold `text`. */
static int logged_times(const char *text)
{
	int n = 0;

	for (const char *at = strstr(log_text, text); at != NULL; at = strstr(at + 1, text))
		n++;
	return n;
}

/* Each renewal costs the server a signature: a session gets at most one per tenth of the
 * token's lifetime (at least 1 s); the excess is refused, logged once per session, and the
 * tokens it had stay valid. */
static void test_renewal_rate_limit(void **state)
{
	struct cfl_auth_times t;
	struct authrep r1, r2, r;
	struct world w;
	struct cli *a, *b;

	(void)state;
	default_times(&t);
	t.token_ttl_ms = 20000; /* one renewal per 2 s */
	world_start(&w, &t, NULL);
	a = cli_raw(&w, "site-1");
	login_ok(a, "site-1", &r1);
	/* Right after the login: too soon. */
	ask(a, "renew", NULL, 0, NULL, 0, &r);
	assert_int_equal(r.status, CFL_EPROTO);
	assert_string_equal(r.status_hdr, "rate_limited");
	/* (how old: a few ms, but a loaded machine may take a tenth of a second or more) */
	assert_true(strncmp(r.reason, "renewal refused: the token is ", 30) == 0);
	assert_non_null(strstr(r.reason, " s old, at most one renewal per 2.0 s"));
	assert_true(logged("site-1: renewal refused: the token is", "(logged once per session)"));
	/* Asking in a loop: every one refused, logged once. */
	for (int i = 0; i < 20; i++) {
		ask(a, "renew", NULL, 0, NULL, 0, &r);
		assert_string_equal(r.status_hdr, "rate_limited");
	}
	assert_int_equal(logged_times("site-1: renewal refused"), 1);
	/* The refusals took nothing away: the token works, the session is there. */
	assert_string_equal(probe_as(a, "site-1", r1.token, r1.sig), "");
	/* Another session has its own allowance and its own log line. */
	b = cli_raw(&w, "site-2");
	login_ok(b, "site-2", &r2);
	ask(b, "renew", NULL, 0, NULL, 0, &r);
	assert_string_equal(r.status_hdr, "rate_limited");
	assert_int_equal(logged_times("site-2: renewal refused"), 1);
	/* Once the gap has passed, a renewal goes through; the next one waits again. */
	spin(w.loop, 2000);
	ask(a, "renew", NULL, 0, NULL, 0, &r);
	assert_int_equal(r.status, 0);
	assert_string_not_equal(r.token, r1.token);
	ask(a, "renew", NULL, 0, NULL, 0, &r);
	assert_string_equal(r.status_hdr, "rate_limited");
	assert_int_equal(logged_times("site-1: renewal refused"), 1);
	world_stop(&w);
}

static void test_heartbeat_and_reaper(void **state)
{
	char paths[3][PATH_MAX];
	struct cfl_auth_client_cfg cfg;
	struct cfl_auth_session_info info[4];
	struct cfl_auth_times t;
	struct authrep r;
	struct world w;
	struct cli *beating, *silent;

	(void)state;
	default_times(&t);
	t.heartbeat_ms = 200; /* told to the clients: theirs is 10 s */
	t.dead_ms = 1200;
	world_start(&w, &t, NULL);
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	beating = cli_auth(&w, &cfg, 1);
	cli_dial(beating, NULL);
	silent = cli_raw(&w, "site-2");
	login_ok(silent, "site-2", &r);
	assert_string_equal(r.heartbeat, "200");
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 2);

	/* The silent one is removed and its connection closed; the other one lives on. */
	assert_true(wait_for(w.loop, &silent->down, 1, 3000));
	assert_non_null(strstr(silent->down_reason, "no heartbeat: removed"));
	assert_true(logged("site-2 silent for", "removed, its token dropped"));
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 1);
	assert_string_equal(info[0].name, "site-1");
	assert_int_equal(info[0].connected, 1);
	spin(w.loop, 600);
	assert_int_equal(beating->down, 0);
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 1);
	world_stop(&w);
}

static void test_goodbye(void **state)
{
	struct cfl_auth_session_info info[4];
	struct authrep r;
	struct world w;
	struct cli *a, *b, *stranger;

	(void)state;
	world_start(&w, NULL, NULL);
	a = cli_raw(&w, "site-1");
	b = cli_raw(&w, "site-2");
	stranger = cli_raw(&w, "site-1");
	login_ok(a, "site-1", &r);
	login_ok(b, "site-2", &r);
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 2);

	/* Needs no token (it is exempt), and only ends the sender's own connection and session. */
	assert_int_equal(cfl_peer_send(stranger->peer, "goodbye", NULL, 0, NULL, 0), 0);
	assert_true(wait_for(w.loop, &stranger->down, 1, WAIT_MS));
	assert_non_null(strstr(stranger->down_reason, "goodbye"));
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 2);

	set_auth(a, NULL, NULL, NULL);
	assert_int_equal(cfl_peer_send(a->peer, "goodbye", NULL, 0, NULL, 0), 0);
	assert_true(wait_for(w.loop, &a->down, 1, WAIT_MS));
	assert_non_null(strstr(a->down_reason, "goodbye"));
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 4), 1);
	assert_string_equal(info[0].name, "site-2");
	assert_int_equal(b->down, 0);
	world_stop(&w);
}

static void test_login_timeout(void **state)
{
	struct cfl_auth_times t;
	struct authrep r;
	struct world w;
	struct cli *idle, *quick;
	uint64_t t0;

	(void)state;
	default_times(&t);
	t.login_timeout_ms = 300;
	world_start(&w, &t, NULL);
	t0 = cfl_loop_now_ms(w.loop);
	idle = cli_raw(&w, "site-1");
	quick = cli_raw(&w, "site-2");
	login_ok(quick, "site-2", &r);
	assert_true(wait_for(w.loop, &idle->down, 1, 3000));
	assert_true(cfl_loop_now_ms(w.loop) - t0 >= 290);
	assert_non_null(strstr(idle->down_reason, "login timeout"));
	assert_true(logged("did not log in within 0.3 s: closed", NULL));
	spin(w.loop, 300);
	assert_int_equal(quick->down, 0);
	world_stop(&w);
}

/* --- register -------------------------------------------------------------------------------- */

/* One login attempt on a fresh connection; returns the rejection reason ("" when it worked). */
static const char *attempt(struct world *w, const struct reg *g)
{
	static struct authrep r;
	struct cli *c = cli_raw(w, g->name);

	login_by_hand(c, g, &r);
	if (r.status == 0)
		return "";
	assert_int_equal(r.status, CFL_EPROTO);
	assert_string_equal(r.status_hdr, "unauthenticated");
	return r.reason;
}

static void test_register_checks(void **state)
{
	char p1[2][PATH_MAX], p2[2][PATH_MAX], adm[2][PATH_MAX], oth[2][PATH_MAX], path[PATH_MAX];
	char nonce[NONCE_HEX + 1];
	struct reg g, ok;
	struct authrep r;
	struct world w;
	struct cli *c;
	const char *why;

	(void)state;
	world_start(&w, NULL, NULL);
	good_reg(&ok, p1, "site-1");

	/* The nonce: unknown, issued to another name, or used before. */
	g = ok;
	g.nonce = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	assert_string_equal(attempt(&w, &g),
	                    "register without a valid challenge (unknown, used or stale nonce)");
	g = ok;
	g.challenge_name = "site-2";
	assert_string_equal(attempt(&w, &g),
	                    "register without a valid challenge (unknown, used or stale nonce)");
	/* A refused register spends its nonce: the same one again, now right, is refused too. */
	c = cli_raw(&w, "site-1");
	challenge(c, "site-1", &r);
	snprintf(nonce, sizeof(nonce), "%s", r.server_nonce);
	g = ok;
	g.project = "otherp";
	g.nonce = nonce;
	login_by_hand(c, &g, &r);
	assert_string_equal(r.reason, "wrong project 'otherp'");
	g.project = NULL;
	login_by_hand(c, &g, &r);
	assert_string_equal(r.reason,
	                    "register without a valid challenge (unknown, used or stale nonce)");
	/* So is a register that worked, replayed on another connection. */
	challenge(c, "site-1", &r);
	snprintf(nonce, sizeof(nonce), "%s", r.server_nonce);
	login_by_hand(c, &g, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(probe_as(c, "site-1", r.token, r.sig), "");
	assert_string_equal(attempt(&w, &g),
	                    "register without a valid challenge (unknown, used or stale nonce)");

	/* The project, in the header and in what was signed. */
	g = ok;
	g.project = "otherp";
	assert_string_equal(attempt(&w, &g), "wrong project 'otherp'");
	g = ok;
	g.signed_project = "otherp";
	assert_string_equal(attempt(&w, &g), "bad register signature");

	/* The certificate: none, garbage, from another project's CA. */
	g = ok;
	g.cert = NULL;
	assert_string_equal(attempt(&w, &g), "no readable certificate");
	g = ok;
	g.cert = kit(path, sizeof(path), prod, "site-1", "fed_client.json");
	assert_string_equal(attempt(&w, &g), "no readable certificate");
	g = ok;
	g.cert = kit(oth[0], PATH_MAX, other_prod, "site-1", "client.crt");
	g.key = kit(oth[1], PATH_MAX, other_prod, "site-1", "client.key");
	why = attempt(&w, &g);
	if (strstr(why, "verify failed: unable to get local issuer certificate") == NULL)
		fail_msg("unexpected reason '%s'", why);

	/* The name must be the certificate's CN. */
	g = ok;
	g.name = "site-2";
	g.challenge_name = "site-2";
	assert_string_equal(attempt(&w, &g),
	                    "name 'site-2' does not match the certificate CN 'site-1'");

	/* Signed by another key than the certificate's. */
	good_reg(&g, p2, "site-2");
	g.key = ok.key;
	assert_string_equal(attempt(&w, &g), "bad register signature");

	/* Roles: an admin certificate is no client, a client certificate no admin. */
	g.name = "admin@test.org";
	g.challenge_name = NULL;
	g.cert = kit(adm[0], PATH_MAX, prod, "admin@test.org", "client.crt");
	g.key = kit(adm[1], PATH_MAX, prod, "admin@test.org", "client.key");
	assert_string_equal(attempt(&w, &g), "an admin certificate cannot log in as a client");
	g.kind = "admin";
	assert_string_equal(attempt(&w, &g), "");
	g = ok;
	g.kind = "admin";
	assert_string_equal(attempt(&w, &g), "not an admin certificate (no role)");
	assert_true(logged("(claims 'site-1'): not an admin certificate (no role)", NULL));

	/* All right at last. */
	assert_string_equal(attempt(&w, &ok), "");
	world_stop(&w);
}

/* <prod>/../state/<file>: the project's root CA key lives there. */
static const char *state_file(char *buf, size_t size, const char *file)
{
	if (snprintf(buf, size, "%s/../state/%s", prod, file) >= (int)size)
		fail_msg("path too long");
	return buf;
}

/* Issues a certificate for `cn` (with `role`, may be NULL) of `usage` to the key of kit `who`
 * (key file `keyfile`), signed by the project's root CA, into tmp_dir/<out>; returns its
 * path in buf. */
static const char *issue_usage(char *buf, size_t size, const char *out, const char *cn,
                               const char *role, const char *who, const char *keyfile,
                               enum cfl_pki_usage usage)
{
	struct cfl_pki_cert_req req = {.cn = cn, .org = "test", .role = role, .usage = usage};
	struct cfl_pki_key *ca_key = NULL, *key = NULL;
	struct cfl_pki_cert *ca = NULL, *cert = NULL;
	char path[PATH_MAX];
	struct cfl_err e = {0};

	req.days = 30;
	assert_int_equal(
	        cfl_pki_key_load(state_file(path, sizeof(path), "rootCA.key"), &ca_key, &e), 0);
	assert_int_equal(cfl_pki_cert_load(state_file(path, sizeof(path), "rootCA.pem"), &ca, &e),
	                 0);
	assert_int_equal(cfl_pki_key_load(kit(path, sizeof(path), prod, who, keyfile), &key, &e),
	                 0);
	if (cfl_pki_cert_issue(ca_key, ca, key, &req, &cert, &e) != 0)
		fail_msg("issue '%s': %s", cn, e.msg);
	path_join(buf, size, tmp_dir, out);
	assert_int_equal(cfl_pki_cert_save(cert, buf, &e), 0);
	cfl_pki_cert_free(cert);
	cfl_pki_cert_free(ca);
	cfl_pki_key_free(key);
	cfl_pki_key_free(ca_key);
	return buf;
}

static int client_login(struct world *w, const struct cfl_auth_client_cfg *cfg, const char **why);

/* A certificate proves only the role it was issued for: the root CA's (which chains to itself)
 * and a server's (which chains to the root) are no site's or admin's identity, and a client's
 * certificate does not make a server. */
static void test_certificate_purposes(void **state)
{
	char cert[PATH_MAX], key[PATH_MAX], paths[3][PATH_MAX];
	struct cfl_auth_client_cfg cfg;
	struct world w;
	struct reg g;
	const char *why;

	(void)state;
	world_start(&w, NULL, NULL);
	/* site-1's own key, in a certificate issued for a server. */
	memset(&g, 0, sizeof(g));
	g.name = "site-1";
	g.cert = issue_usage(cert, sizeof(cert), "site-1-server.crt", "site-1", NULL, "site-1",
	                     "client.key", CFL_PKI_USAGE_SERVER);
	g.key = kit(key, sizeof(key), prod, "site-1", "client.key");
	assert_string_equal(attempt(&w, &g), "certificate 'site-1' is a server certificate "
	                                     "(extended key usage serverAuth), not a client "
	                                     "certificate");
	assert_true(
	        logged("(claims 'site-1'): certificate 'site-1' is a server certificate", NULL));
	/* The server's own certificate and key, as a site named like it. */
	g.name = "server1";
	g.cert = kit(cert, sizeof(cert), prod, "server1", "server.crt");
	g.key = kit(key, sizeof(key), prod, "server1", "server.key");
	assert_string_equal(attempt(&w, &g), "certificate 'server1' is a server certificate "
	                                     "(extended key usage serverAuth), not a client "
	                                     "certificate");
	/* An admin certificate with a role, issued for a server. */
	g.name = "admin@test.org";
	g.kind = "admin";
	g.cert = issue_usage(cert, sizeof(cert), "admin-server.crt", "admin@test.org",
	                     "project_admin", "admin@test.org", "client.key", CFL_PKI_USAGE_SERVER);
	g.key = kit(key, sizeof(key), prod, "admin@test.org", "client.key");
	assert_string_equal(attempt(&w, &g), "certificate 'admin@test.org' is a server certificate "
	                                     "(extended key usage serverAuth), not a client "
	                                     "certificate");
	/* The root CA itself, by whoever holds its key. */
	g.name = PROJECT;
	g.kind = NULL;
	g.cert = state_file(cert, sizeof(cert), "rootCA.pem");
	g.key = state_file(key, sizeof(key), "rootCA.key");
	assert_string_equal(attempt(&w, &g), "certificate 'authp' is a CA certificate (CA:TRUE), "
	                                     "not a client certificate");
	world_stop(&w);

	/* A server that shows a client's certificate (its own key, CN server1). */
	server_cert_override = issue_usage(cert, sizeof(cert), "server1-client.crt", "server1",
	                                   NULL, "server1", "server.key", CFL_PKI_USAGE_CLIENT);
	world_start(&w, NULL, NULL);
	server_cert_override = NULL;
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	assert_int_equal(client_login(&w, &cfg, &why), CFL_EAUTH);
	assert_string_equal(why, "the server's certificate cannot prove a server: certificate "
	                         "'server1' is not a server certificate (no extended key usage "
	                         "serverAuth)");
	world_stop(&w);
}

static void test_challenge_limits(void **state)
{
	struct cfl_header h[2];
	struct authrep r;
	struct world w;
	struct cli *c;

	(void)state;
	world_start(&w, NULL, NULL);
	c = cli_raw(&w, "site-1");
	/* A challenge needs a name and a 32-byte hex nonce. */
	h[0] = hdr("client_name", "site-1");
	h[1] = hdr("nonce", "1234");
	ask(c, "challenge", h, 2, NULL, 0, &r);
	assert_int_equal(r.status, CFL_EPROTO);
	assert_string_equal(r.status_hdr, "bad_request");
	assert_string_equal(r.reason, "challenge needs client_name and nonce");
	ask(c, "challenge", h, 1, NULL, 0, &r);
	assert_string_equal(r.reason, "challenge needs client_name and nonce");
	/* A claimed name cannot write lines of its own into the log: control characters are
	 * replaced (header values may hold any byte but NUL). */
	h[0] = hdr("client_name", "x\nW server1 logged in\r\x1b[2J");
	ask(c, "challenge", h, 1, NULL, 0, &r);
	assert_true(logged("(claims 'x?W server1 logged in??[2J'): challenge without", NULL));
	assert_null(strstr(log_text, "\nW server1"));
	/* Each answer costs a signature: the ninth on one connection closes it. */
	for (int i = 3; i < 8; i++) {
		challenge(c, "site-1", &r);
		assert_int_equal(r.status, 0);
	}
	challenge(c, "site-1", &r);
	assert_int_equal(r.status, CFL_ECLOSED);
	assert_non_null(strstr(r.reason, "too many challenges"));
	assert_true(logged("too many challenges on one connection", NULL));
	world_stop(&w);
}

/* A site whose TLS handshake verified the server's own certificate (tls_cert, its fingerprint)
 * gets no challenge signature; any other fingerprint, or none, gets one that verifies. */
static void test_challenge_tls_cert(void **state)
{
	char path[PATH_MAX], fp[CFL_PKI_FINGERPRINT_MAX], nonce[NONCE_HEX];
	struct cfl_pki_cert *cert = NULL;
	struct cfl_err e = {0};
	struct cfl_header h[4];
	struct authrep r;
	struct world w;
	uint8_t tbs[1024];
	size_t n;
	struct cli *c;

	(void)state;
	assert_int_equal(cfl_pki_cert_load(kit(path, sizeof(path), prod, "server1", "server.crt"),
	                                   &cert, &e),
	                 0);
	assert_int_equal(cfl_pki_cert_fingerprint(cert, fp, sizeof(fp)), 0);
	world_start(&w, NULL, NULL);
	c = cli_raw(&w, "site-1");
	assert_int_equal(cfl__auth_nonce(nonce), 0);
	h[0] = hdr("client_name", "site-1");
	h[1] = hdr("nonce", nonce);
	h[2] = hdr("kind", "client");
	h[3] = hdr("tls_cert", fp);
	ask(c, "challenge", h, 4, NULL, 0, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.signature, "");
	assert_true(r.server_nonce[0] != '\0');
	/* Another certificate's fingerprint (the last digit changed), and none. */
	fp[strlen(fp) - 1] = fp[strlen(fp) - 1] == '0' ? '1' : '0';
	for (size_t k = 4; k >= 3; k--) {
		ask(c, "challenge", h, k, NULL, 0, &r);
		assert_int_equal(r.status, 0);
		n = cfl__auth_tbs(tbs, sizeof(tbs), "cfl-challenge", "server1", nonce, NULL);
		assert_int_equal(cfl__auth_verify_b64(cert, tbs, n, r.signature), 0);
	}
	cfl_pki_cert_free(cert);
	world_stop(&w);
}

/* In mtls mode the name must also be the one the TLS handshake proved. */
static void test_register_mtls_identity(void **state)
{
	char crt[PATH_MAX], key[PATH_MAX], ca[PATH_MAX], p2[2][PATH_MAX];
	struct cfl_tls_config tc = {0};
	struct cfl_tls_ctx *srv = NULL, *cli = NULL;
	struct cfl_auth_session_info info[2];
	struct cfl_err e = {0};
	struct authrep r;
	struct world w;
	struct reg g;
	struct cli *c;

	(void)state;
	tc.is_server = 1;
	tc.mode = CFL_SEC_MTLS;
	tc.cert_file = kit(crt, sizeof(crt), prod, "server1", "server.crt");
	tc.key_file = kit(key, sizeof(key), prod, "server1", "server.key");
	tc.ca_file = kit(ca, sizeof(ca), prod, "server1", "rootCA.pem");
	assert_int_equal(cfl_tls_ctx_new(&tc, &srv, &e), 0);
	tc.is_server = 0;
	tc.cert_file = kit(crt, sizeof(crt), prod, "site-1", "client.crt");
	tc.key_file = kit(key, sizeof(key), prod, "site-1", "client.key");
	tc.ca_file = kit(ca, sizeof(ca), prod, "site-1", "rootCA.pem");
	assert_int_equal(cfl_tls_ctx_new(&tc, &cli, &e), 0);
	world_start(&w, NULL, srv);
	c = cli_add(&w, "site-1");
	cli_dial(c, cli);
	assert_string_equal(cfl_conn_peer_cn(cfl_peer_conn(srv_peer_of(&w, c))), "site-1");
	/* site-2's own certificate and key, over site-1's TLS connection. */
	good_reg(&g, p2, "site-2");
	login_by_hand(c, &g, &r);
	assert_string_equal(r.reason, "name differs from the connection's TLS certificate");
	good_reg(&g, p2, "site-1");
	login_by_hand(c, &g, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.security, "mtls");
	assert_int_equal(sessions(&w, CFL_AUTH_CLIENT, info, 2), 1);
	assert_int_equal(info[0].mode, CFL_SEC_MTLS);
	world_stop(&w);
}

/* An mtls context of kit `who` (server1's server.crt, or a site's client.crt). */
static struct cfl_tls_ctx *mtls_ctx(int is_server, const char *who)
{
	char crt[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
	struct cfl_tls_config tc = {0};
	struct cfl_tls_ctx *ctx = NULL;
	struct cfl_err e = {0};

	tc.is_server = is_server;
	tc.mode = CFL_SEC_MTLS;
	tc.cert_file = kit(crt, sizeof(crt), prod, who, is_server ? "server.crt" : "client.crt");
	tc.key_file = kit(key, sizeof(key), prod, who, is_server ? "server.key" : "client.key");
	tc.ca_file = kit(ca, sizeof(ca), prod, who, "rootCA.pem");
	if (cfl_tls_ctx_new(&tc, &ctx, &e) != 0)
		fail_msg("tls context of %s: %s", who, e.msg);
	return ctx;
}

/* Writes a CRL of the project's root CA that revokes the certificate in `cert_file` into
 * tmp_dir/<out>; returns its path in buf. */
static const char *revoking_crl(char *buf, size_t size, const char *out, const char *cert_file)
{
	struct cfl_pki_key *ca_key = NULL;
	struct cfl_pki_cert *ca = NULL, *cert = NULL;
	struct cfl_pki_revoked r = {.when = time(NULL), .reason = 1};
	char path[PATH_MAX], serial[64], *pem = NULL;
	struct cfl_err e = {0};
	size_t len = 0;

	assert_int_equal(
	        cfl_pki_key_load(state_file(path, sizeof(path), "rootCA.key"), &ca_key, &e), 0);
	assert_int_equal(cfl_pki_cert_load(state_file(path, sizeof(path), "rootCA.pem"), &ca, &e),
	                 0);
	assert_int_equal(cfl_pki_cert_load(cert_file, &cert, &e), 0);
	assert_int_equal(cfl_pki_cert_serial(cert, serial, sizeof(serial)), 0);
	r.serial_hex = serial;
	if (cfl_pki_crl_create(ca_key, ca, &r, 1, 1, 30, time(NULL), &pem, &len, &e) != 0)
		fail_msg("crl: %s", e.msg);
	path_join(buf, size, tmp_dir, out);
	assert_int_equal(cfl__fs_write_file(buf, pem, len, 0644, &e), 0);
	free(pem);
	cfl_pki_cert_free(cert);
	cfl_pki_cert_free(ca);
	cfl_pki_key_free(ca_key);
	return buf;
}

/* The login's certificate is the one the mtls handshake verified (no second parse or path
 * check), but one revoked since the handshake is still refused, on either side. */
static void test_mtls_revoked_after_handshake(void **state)
{
	char paths[3][PATH_MAX], p2[2][PATH_MAX], crl[PATH_MAX], crt[PATH_MAX];
	struct cfl_auth_client_cfg cfg;
	struct cfl_err e = {0};
	struct authrep r;
	struct world w;
	struct reg g;
	struct cli *c;

	(void)state;
	/* The server: site-1's handshake passes (no CRL at TLS), then the CRL arrives. */
	world_start(&w, NULL, mtls_ctx(1, "server1"));
	c = cli_add(&w, "site-1");
	cli_dial(c, mtls_ctx(0, "site-1"));
	revoking_crl(crl, sizeof(crl), "site-1.crl",
	             kit(crt, sizeof(crt), prod, "site-1", "client.crt"));
	assert_int_equal(cfl_auth_server_set_crl(w.auth, crl, &e), 0);
	good_reg(&g, p2, "site-1");
	login_by_hand(c, &g, &r);
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.reason, "certificate revoked"));
	world_stop(&w);

	/* The site: the server's handshake passes, then the site's CRL revokes it. */
	world_start(&w, NULL, mtls_ctx(1, "server1"));
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	cfg.mode = CFL_SEC_MTLS;
	c = cli_auth(&w, &cfg, 0);
	cli_dial(c, mtls_ctx(0, "site-1"));
	revoking_crl(crl, sizeof(crl), "server1.crl",
	             kit(crt, sizeof(crt), prod, "server1", "server.crt"));
	assert_int_equal(cfl_auth_client_set_crl(c->auth, crl, &e), 0);
	assert_int_equal(cfl_auth_client_login(c->auth, c->peer, on_login, c), 0);
	assert_true(wait_for(w.loop, &c->logins, 1, WAIT_MS));
	assert_int_equal(c->login_status, CFL_EAUTH);
	assert_non_null(strstr(c->login_reason, "certificate revoked"));
	world_stop(&w);
}

/* Over mtls, a site whose handshake verified another certificate than the one the server logs
 * in with (as behind a proxy) gets the challenge signed and verifies it. */
static void test_mtls_other_login_cert(void **state)
{
	char paths[3][PATH_MAX], cert[PATH_MAX];
	struct cfl_auth_client_cfg cfg;
	struct world w;
	struct cli *c;

	(void)state;
	/* server1's key, a second server certificate: not the one TLS presents. */
	server_cert_override = issue_usage(cert, sizeof(cert), "server1-second.crt", "server1",
	                                   NULL, "server1", "server.key", CFL_PKI_USAGE_SERVER);
	world_start(&w, NULL, mtls_ctx(1, "server1"));
	server_cert_override = NULL;
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	cfg.mode = CFL_SEC_MTLS;
	c = cli_auth(&w, &cfg, 1);
	cli_dial(c, mtls_ctx(0, "site-1"));
	assert_int_equal(c->login_status, 0);
	assert_string_equal(c->login_reason, "");
	world_stop(&w);
}

/* A server side that answers a challenge with `pem` and no signature. */
struct unsigned_srv {
	struct world *w;
	char *pem;
	size_t len;
	int challenges;
};

static void unsigned_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct unsigned_srv *u = arg;

	(void)p;
	(void)code;
	(void)reason;
	u->w->srv_up++;
}

static void unsigned_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct unsigned_srv *u = arg;

	(void)p;
	(void)code;
	(void)reason;
	u->w->srv_down++;
}

static void unsigned_challenge(struct cfl_peer *p, const struct cfl_frame *f, int more,
                               struct cfl_msg_sink *sink, void *arg)
{
	struct unsigned_srv *u = arg;
	char nonce[NONCE_HEX];
	struct cfl_header h[2];

	(void)more;
	(void)sink;
	u->challenges++;
	assert_int_equal(cfl__auth_nonce(nonce), 0);
	h[0] = hdr("server_cn", "server1");
	h[1] = hdr("server_nonce", nonce);
	assert_int_equal(cfl_peer_reply(p, f->id, h, 2, u->pem, u->len), 0);
}

/* A reply without a signature is accepted only with the very certificate the handshake
 * verified: one that carries another certificate of the server (one a proxy or a man in the
 * middle could show) is refused. */
static void test_unsigned_challenge_refused(void **state)
{
	char paths[3][PATH_MAX], cert[PATH_MAX];
	struct unsigned_srv u = {0};
	struct cfl_auth_client_cfg cfg;
	struct cfl_conn_opts o;
	struct cfl_err e = {0};
	struct world w;
	struct cli *c;

	(void)state;
	issue_usage(cert, sizeof(cert), "server1-third.crt", "server1", NULL, "server1",
	            "server.key", CFL_PKI_USAGE_SERVER);
	assert_int_equal(cfl__fs_read_file(cert, 1u << 20, &u.pem, &u.len, &e), 0);
	memset(&w, 0, sizeof(w));
	log_capture();
	u.w = &w;
	assert_int_equal(cfl_loop_new(&w.loop, &e), 0);
	assert_int_equal(cfl_msg_hub_new(w.loop, "server", &w.hub, &e), 0);
	cfl_msg_hub_on_peer(w.hub, unsigned_up, unsigned_down, &u);
	assert_int_equal(cfl_msg_hub_handle(w.hub, "challenge", unsigned_challenge, &u), 0);
	o = cfl_msg_hub_conn_opts(w.hub, mtls_ctx(1, "server1"));
	if (cfl_listener_new(w.loop, "127.0.0.1", 0, &o, &w.l, &e) != 0)
		fail_msg("listener: %s", e.msg);
	cfl_tls_ctx_free(o.tls);
	w.port = cfl_listener_port(w.l);
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	cfg.mode = CFL_SEC_MTLS;
	c = cli_auth(&w, &cfg, 1);
	cli_dial(c, mtls_ctx(0, "site-1"));
	assert_int_equal(u.challenges, 1);
	assert_int_equal(c->login_status, CFL_EAUTH);
	assert_string_equal(c->login_reason, "the server's challenge signature does not verify");
	free(u.pem);
	world_stop(&w);
}

/* --- the client side ------------------------------------------------------------------------- */

/* Logs in a client with `cfg` and returns its login status and reason. */
static int client_login(struct world *w, const struct cfl_auth_client_cfg *cfg, const char **why)
{
	struct cli *c = cli_auth(w, cfg, 1);

	cli_dial(c, NULL);
	*why = c->login_reason;
	return c->login_status;
}

static void test_client_login_failures(void **state)
{
	char paths[3][PATH_MAX], other[3][PATH_MAX];
	struct cfl_auth_client_cfg cfg;
	struct world w;
	const char *why;

	(void)state;
	world_start(&w, NULL, NULL);
	/* The server must prove the identity the kit names... */
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	cfg.server_cn = "server9";
	assert_int_equal(client_login(&w, &cfg, &why), CFL_EAUTH);
	assert_string_equal(why, "the server is 'server1', not the expected 'server9'");
	/* ...with a certificate of the client's own project. */
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	cfg.root_ca = kit(other[2], PATH_MAX, other_prod, "site-1", "rootCA.pem");
	assert_int_equal(client_login(&w, &cfg, &why), CFL_EAUTH);
	assert_string_equal(why, "the server's certificate is not from this project: certificate "
	                         "'server1' verify failed: unable to get local issuer certificate");
	/* The server's refusals reach the client with their reason. */
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	cfg.project = "otherp";
	assert_int_equal(client_login(&w, &cfg, &why), CFL_EAUTH);
	assert_string_equal(why, "wrong project 'otherp'");
	client_cfg(&cfg, other, other_prod, "site-1", CFL_AUTH_CLIENT);
	cfg.root_ca = kit(paths[2], PATH_MAX, prod, "site-1", "rootCA.pem");
	assert_int_equal(client_login(&w, &cfg, &why), CFL_EAUTH);
	assert_string_equal(
	        why, "certificate 'site-1' verify failed: unable to get local issuer certificate");
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	assert_int_equal(client_login(&w, &cfg, &why), 0);
	assert_string_equal(why, "");
	world_stop(&w);
}

/* The client drops what the server side sends without the server's token, and everything but
 * replies before its login. */
static void test_client_gate(void **state)
{
	char paths[3][PATH_MAX];
	struct cfl_auth_client_cfg cfg;
	struct authrep back;
	struct world w;
	struct cli *c;
	struct cfl_peer *sp;

	(void)state;
	world_start(&w, NULL, NULL);
	client_cfg(&cfg, paths, prod, "site-1", CFL_AUTH_CLIENT);
	c = cli_auth(&w, &cfg, 0);
	cli_dial(c, NULL);
	sp = srv_peer_of(&w, c);

	/* Before the login: refused. Its error reply is unauthenticated itself, so the server's
	 * gate drops it in turn (logged) and the request times out. */
	memset(&back, 0, sizeof(back));
	assert_int_equal(cfl_peer_request(sp, "ping", NULL, 0, NULL, 0, 300, on_authrep, &back), 0);
	assert_true(wait_for(w.loop, &back.calls, 1, WAIT_MS));
	assert_int_equal(back.status, CFL_ETIMEDOUT);
	assert_int_equal(c->pings, 0);
	assert_true(logged("(claims '-'): missing authentication headers", NULL));

	assert_int_equal(cfl_auth_client_login(c->auth, c->peer, on_login, c), 0);
	assert_true(wait_for(w.loop, &c->logins, 1, WAIT_MS));
	assert_int_equal(c->login_status, 0);
	memset(&back, 0, sizeof(back));
	assert_int_equal(cfl_peer_request(sp, "ping", NULL, 0, NULL, 0, 2000, on_authrep, &back),
	                 0);
	assert_true(wait_for(w.loop, &back.calls, 1, WAIT_MS));
	assert_int_equal(back.status, 0);
	assert_int_equal(c->pings, 1);

	/* Without the server's token, or with a forged one. */
	{
		static const char *const keys[3] = {"client_name", "token", "token_signature"};
		static const char *const forged[3] = {"server", "v1.1.00", "c2ln"};

		assert_int_equal(cfl_peer_set_auth(sp, keys, forged, 3), 0);
		memset(&back, 0, sizeof(back));
		assert_int_equal(
		        cfl_peer_request(sp, "ping", NULL, 0, NULL, 0, 2000, on_authrep, &back), 0);
		assert_true(wait_for(w.loop, &back.calls, 1, WAIT_MS));
		assert_string_equal(back.reason, "message without the server's token");
		assert_int_equal(cfl_peer_set_auth(sp, NULL, NULL, 0), 0);
		memset(&back, 0, sizeof(back));
		assert_int_equal(
		        cfl_peer_request(sp, "ping", NULL, 0, NULL, 0, 2000, on_authrep, &back), 0);
		assert_true(wait_for(w.loop, &back.calls, 1, WAIT_MS));
		assert_string_equal(back.status_hdr, "unauthenticated");
		assert_string_equal(back.reason, "message without the server's token");
	}
	assert_int_equal(c->pings, 1);
	assert_true(logged("lacks the server's token", NULL));
	world_stop(&w);
}

/* --- main ------------------------------------------------------------------------------------ */

static int setup(void **state)
{
	(void)state;
	cfl_log_set_level(CFL_LOG_ERROR);
	if (tmp_make("test-auth") != 0 || provision("authp", authp_yml, prod, sizeof(prod)) != 0 ||
	    provision("otherp", otherp_yml, other_prod, sizeof(other_prod)) != 0)
		return -1;
	fds_note();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cfl_log_set_sink(NULL, NULL);
	tmp_remove();
	return fds_check();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_login_and_sessions),
	        cmocka_unit_test(test_gate_branches),
	        cmocka_unit_test(test_expired_token),
	        cmocka_unit_test(test_renewal),
	        cmocka_unit_test(test_renewal_rate_limit),
	        cmocka_unit_test(test_heartbeat_and_reaper),
	        cmocka_unit_test(test_goodbye),
	        cmocka_unit_test(test_login_timeout),
	        cmocka_unit_test(test_register_checks),
	        cmocka_unit_test(test_certificate_purposes),
	        cmocka_unit_test(test_challenge_limits),
	        cmocka_unit_test(test_challenge_tls_cert),
	        cmocka_unit_test(test_register_mtls_identity),
	        cmocka_unit_test(test_mtls_revoked_after_handshake),
	        cmocka_unit_test(test_mtls_other_login_cert),
	        cmocka_unit_test(test_unsigned_challenge_refused),
	        cmocka_unit_test(test_client_login_failures),
	        cmocka_unit_test(test_client_gate),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
