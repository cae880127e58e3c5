/* Shared fixture of the auth tests (test_auth_gate.c, test_auth_login.c, test_auth_tls.c;
 * src/auth/auth_server.c, auth_client.c): a real auth server and auth clients over the hub on
 * loopback, with kits provisioned by the library into a temporary folder (the project under
 * test and another project with the same names); what replies carried; the world (a server hub
 * with the auth server and a `probe` topic behind its gate) and its clients, raw or with
 * cfl_auth_client; logging in by hand (challenge, register) so that a test controls
 * every header; certificates of a chosen purpose issued by the project's root CA; the group
 * setup and teardown (which checks that no file descriptor leaked).
 *
 * Everything is static inline so that each test program takes what it uses. */
#ifndef CFL_TEST_AUTH_FIXTURE_H
#define CFL_TEST_AUTH_FIXTURE_H

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
static inline const char *kit(char *buf, size_t size, const char *base, const char *who,
                              const char *file)
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

static inline void on_authrep(struct cfl_peer *p, int status, const char *reason,
                              const struct cfl_frame *f, int more, struct cfl_msg_sink *sink,
                              void *arg)
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

static inline void srv_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct world *w = arg;

	(void)code;
	(void)reason;
	cfl_auth_server_peer_up(w->auth, p);
	if (w->srv_up < MAX_CLI)
		w->srv_peers[w->srv_up] = p;
	w->srv_up++;
}

static inline void srv_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct world *w = arg;

	(void)code;
	(void)reason;
	if (p != NULL)
		cfl_auth_server_peer_down(w->auth, p);
	w->srv_down++;
}

static inline void on_probe(struct cfl_peer *p, const struct cfl_frame *f, int more,
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

static inline void default_times(struct cfl_auth_times *t)
{
	t->token_ttl_ms = 60000;
	t->heartbeat_ms = 10000;
	t->dead_ms = 60000;
	t->login_timeout_ms = 10000;
}

/* A server on an ephemeral port with `times` (NULL: the defaults above) and `tls` (NULL: clear;
 * the world takes the reference). */
static inline void world_start(struct world *w, const struct cfl_auth_times *times,
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

static inline void world_stop(struct world *w)
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

static inline void on_login(struct cfl_peer *p, int status, const char *reason, void *arg)
{
	struct cli *c = arg;

	(void)p;
	c->logins++;
	c->login_status = status;
	snprintf(c->login_reason, sizeof(c->login_reason), "%s", reason != NULL ? reason : "");
}

static inline void cli_up(struct cfl_peer *p, int code, const char *reason, void *arg)
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

static inline void cli_down(struct cfl_peer *p, int code, const char *reason, void *arg)
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
static inline void on_ping(struct cfl_peer *p, const struct cfl_frame *f, int more,
                           struct cfl_msg_sink *sink, void *arg)
{
	struct cli *c = arg;

	(void)more;
	(void)sink;
	c->pings++;
	assert_int_equal(cfl_peer_reply(p, f->id, NULL, 0, "pong", 4), 0);
}

static inline struct cli *cli_add(struct world *w, const char *cell)
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
static inline void client_cfg(struct cfl_auth_client_cfg *cfg, char paths[3][PATH_MAX],
                              const char *base, const char *who, enum cfl_auth_kind kind)
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
static inline struct cli *cli_auth(struct world *w, const struct cfl_auth_client_cfg *cfg,
                                   int autologin)
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
static inline void cli_dial(struct cli *c, struct cfl_tls_ctx *tls)
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
static inline struct cli *cli_raw(struct world *w, const char *cell)
{
	struct cli *c = cli_add(w, cell);

	cli_dial(c, NULL);
	return c;
}

/* The server's peer for the connection of client c (the one that came up with it). */
static inline struct cfl_peer *srv_peer_of(struct world *w, const struct cli *c)
{
	return w->srv_peers[c - w->cli];
}

static inline void set_auth(struct cli *c, const char *name, const char *token, const char *sig)
{
	static const char *const keys[3] = {"client_name", "token", "token_signature"};
	const char *vals[3] = {name, token, sig};
	size_t n = name == NULL ? 0 : token == NULL ? 1 : sig == NULL ? 2 : 3;

	assert_int_equal(cfl_peer_set_auth(c->peer, keys, vals, n), 0);
}

/* A request from c to the server's topic; waits for its outcome. */
static inline void ask(struct cli *c, const char *topic, const struct cfl_header *h, size_t nh,
                       const void *body, size_t len, struct authrep *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(cfl_peer_request(c->peer, topic, h, nh, body, len, 3000, on_authrep, r),
	                 0);
	assert_true(wait_for(c->w->loop, &r->calls, 1, WAIT_MS));
}

/* probe with the given authentication headers: "" when accepted, else the rejection reason. */
static inline const char *probe_as(struct cli *c, const char *name, const char *token,
                                   const char *sig)
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

static inline struct cfl_header hdr(const char *k, const char *v)
{
	return (struct cfl_header){k, strlen(k), (const uint8_t *)v, strlen(v)};
}

static inline void challenge(struct cli *c, const char *name, struct authrep *r)
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
static inline void login_by_hand(struct cli *c, const struct reg *g, struct authrep *r)
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
static inline void good_reg(struct reg *g, char paths[2][PATH_MAX], const char *who)
{
	memset(g, 0, sizeof(*g));
	g->name = who;
	g->cert = kit(paths[0], PATH_MAX, prod, who, "client.crt");
	g->key = kit(paths[1], PATH_MAX, prod, who, "client.key");
}

static inline void login_ok(struct cli *c, const char *who, struct authrep *r)
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
static inline void cli_close(struct cli *c)
{
	int down = c->w->srv_down;

	cfl_conn_close(cfl_peer_conn(c->peer), "test done");
	assert_true(wait_for(c->w->loop, &c->w->srv_down, down + 1, WAIT_MS));
}

static inline size_t sessions(struct world *w, enum cfl_auth_kind kind,
                              struct cfl_auth_session_info *out, size_t max)
{
	return cfl_auth_server_sessions(w->auth, kind, out, max);
}

/* --- certificates of a chosen purpose -------------------------------------------------------- */

/* <prod>/../state/<file>: the project's root CA key lives there. */
static inline const char *state_file(char *buf, size_t size, const char *file)
{
	if (snprintf(buf, size, "%s/../state/%s", prod, file) >= (int)size)
		fail_msg("path too long");
	return buf;
}

/* Issues a certificate for `cn` (with `role`, may be NULL) of `usage` to the key of kit `who`
 * (key file `keyfile`), signed by the project's root CA, into tmp_dir/<out>; returns its
 * path in buf. */
static inline const char *issue_usage(char *buf, size_t size, const char *out, const char *cn,
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

/* --- the group setup and teardown ------------------------------------------------------------ */

static inline int setup(void **state)
{
	(void)state;
	cfl_log_set_level(CFL_LOG_ERROR);
	if (tmp_make("test-auth") != 0 || provision("authp", authp_yml, prod, sizeof(prod)) != 0 ||
	    provision("otherp", otherp_yml, other_prod, sizeof(other_prod)) != 0)
		return -1;
	fds_note();
	return 0;
}

static inline int teardown(void **state)
{
	(void)state;
	cfl_log_set_sink(NULL, NULL);
	tmp_remove();
	return fds_check();
}

#endif
