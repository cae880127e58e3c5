/* cfl client: dial the server with the kit's connection security, log in, reconnect with
 * capped exponential backoff, run jobs, and the optional admin or diagnostic action. */
#include "cfl/client.h"

#include "cfl/auth.h"
#include "cfl/conn.h"
#include "cfl/diag.h"
#include "cfl/executor.h"
#include "cfl/kit.h"
#include "cfl/log.h"
#include "cfl/loop.h"
#include "cfl/msg.h"
#include "cfl/pki.h"
#include "cfl/tls.h"
#include "client_int.h"

#include <limits.h>
#include <stdarg.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000

struct client {
	struct cfl_kitcfg cfg;
	const struct cfl_client_action *act;
	struct cfl_loop *loop;
	struct cfl_msg_hub *hub;
	struct cfl_tls_ctx *tls;
	struct cfl_peer *peer; /* set while connected and logged in */
	struct cfl_auth_client *auth;
	struct cfl_executor *exec;
	struct cfl_diag *diag;            /* the diagnostic action, if any */
	struct cfl_admin *admin;          /* the admin session (cfl_admin_run), else NULL */
	char crl[PATH_MAX];               /* local/crl.pem: CRLs the server is checked against */
	struct cfl_auth_file_watch watch; /* its last seen state, polled on a timer */
	uint64_t backoff_ms;
	int finished, stopping, result;
	struct cfl_err err;
};

static void finish(struct client *c, int rc, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Runs that outlive a lost connection: reconnect and log in again instead of failing. */
static int persistent(const struct client *c)
{
	return c->act->kind == CFL_ACT_NONE || (c->diag != NULL && cfl_diag_persistent(c->diag));
}

static void finish(struct client *c, int rc, const char *fmt, ...)
{
	va_list ap;

	if (c->finished)
		return;
	c->finished = 1;
	c->result = rc;
	if (rc != 0) {
		va_start(ap, fmt);
		c->err.code = rc;
		vsnprintf(c->err.msg, sizeof(c->err.msg), fmt, ap);
		va_end(ap);
	}
	if (c->peer != NULL)
		cfl_conn_close(cfl_peer_conn(c->peer), rc == 0 ? "done" : "failed");
	else
		cfl_loop_stop(c->loop);
}

/* --- actions ---------------------------------------------------------------------------- */

static void admin_done(int status, const char *reason, void *arg)
{
	struct client *c = arg;

	if (status != 0)
		finish(c, status, "%s", reason ? reason : cfl_strerror(status));
	else
		finish(c, 0, "ok");
}

static void diag_done(int status, const char *line, void *arg)
{
	struct client *c = arg;

	if (status == 0 && c->act->report != NULL)
		c->act->report(line, c->act->report_arg);
	finish(c, status, "%s", line);
}

static void start_action(struct client *c)
{
	if (c->diag != NULL) {
		cfl_diag_start(c->diag, c->peer);
		return;
	}
	if (c->act->kind == CFL_ACT_ADMIN) {
		char transfer[PATH_MAX];
		struct cfl__admin_kit kit = {transfer, c->cfg.cert, c->cfg.key};

		if (c->admin == NULL) {
			finish(c, CFL_EINVAL, "admin sessions run through cfl_admin_run");
			return;
		}
		if (snprintf(transfer, sizeof(transfer), "%s/transfer", c->cfg.kit_dir) >=
		    (int)sizeof(transfer)) {
			finish(c, CFL_ETOOBIG, "kit path too long");
			return;
		}
		cfl__admin_start(c->admin, c->peer, &kit, admin_done, c);
	}
}

/* --- connection life cycle -------------------------------------------------------------------- */

static void dial(struct client *c);

static void on_retry(struct cfl_loop *loop, uint64_t id, void *arg)
{
	(void)loop;
	(void)id;
	dial(arg);
}

static void retry_later(struct client *c)
{
	/* Jitter (±25 %) keeps a fleet of sites from reconnecting in lockstep. */
	uint64_t jitter = c->backoff_ms / 4,
	         delay = c->backoff_ms - jitter + (jitter ? (uint64_t)rand() % (2 * jitter) : 0);

	CFL_INFO("reconnecting in %.1f s", (double)delay / 1e3);
	cfl_loop_timer_add(c->loop, delay, on_retry, c);
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* This side's certificate is revoked: no later attempt can succeed until it is replaced, so the
 * client stops (exit status non-zero) instead of retrying forever. */
static int revoked_here(int status, const char *reason)
{
	return status == CFL_EPERM ||
	       (reason != NULL && strstr(reason, "refused this side's certificate: certificate "
	                                         "revoked") != NULL);
}

static void login_result(struct cfl_peer *p, int status, const char *reason, void *arg)
{
	struct client *c = arg;

	if (revoked_here(status, reason)) {
		CFL_ERROR("login refused: this %s's certificate is revoked (%s): stopping; it "
		          "needs a "
		          "new certificate",
		          c->act->kind == CFL_ACT_ADMIN ? "admin" : "site", reason);
		finish(c, CFL_EPERM, "certificate revoked: %s", reason);
		return;
	}
	if (status != 0) {
		CFL_ERROR("login failed: %s", reason ? reason : cfl_strerror(status));
		if (!persistent(c))
			finish(c, status, "login failed: %s",
			       reason ? reason : cfl_strerror(status));
		else
			cfl_conn_close(cfl_peer_conn(p), "login failed");
		return;
	}
	c->peer = p;
	c->backoff_ms = BACKOFF_MIN_MS;
	CFL_INFO("logged in to %s:%d as '%s' (%s%s%s), token expires at %lld", c->cfg.host,
	         c->cfg.port, c->cfg.name, cfl_conn_sec_name(c->cfg.mode),
	         c->cfg.mode == CFL_SEC_CLEAR ? "" : ", ",
	         c->cfg.mode == CFL_SEC_CLEAR ? "" : cfl_conn_tls_version(cfl_peer_conn(p)),
	         (long long)cfl_auth_client_token_expiry(c->auth));
	start_action(c);
}

static void peer_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct client *c = arg;
	int rc;

	(void)code;
	(void)reason;
	rc = cfl_peer_set_name(p, "server");
	if (rc == 0)
		rc = cfl_auth_client_login(c->auth, p, login_result, c);
	if (rc != 0)
		cfl_conn_close(cfl_peer_conn(p), "cannot start the login");
}

static void peer_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct client *c = arg;

	if (p != NULL) {
		cfl_auth_client_peer_down(c->auth, p);
		cfl_executor_peer_down(c->exec, p);
	}
	if (c->diag != NULL)
		cfl_diag_peer_down(c->diag);
	if (c->admin != NULL)
		cfl__admin_peer_down(c->admin);
	c->peer = NULL;
	if (c->finished || c->stopping) {
		cfl_loop_stop(c->loop);
		return;
	}
	if (revoked_here(code, reason)) {
		CFL_ERROR("the server refused this site's certificate: certificate revoked (%s): "
		          "stopping; it needs a new certificate",
		          reason);
		finish(c, CFL_EPERM, "certificate revoked: %s", reason);
		return;
	}
	if (!persistent(c)) {
		finish(c, CFL_ECONN, "cannot talk to the server at %s:%d (%s): %s", c->cfg.host,
		       c->cfg.port, cfl_conn_sec_name(c->cfg.mode), reason ? reason : "closed");
		return;
	}
	CFL_WARN("connection to %s:%d lost: %s", c->cfg.host, c->cfg.port,
	         reason ? reason : "closed");
	retry_later(c);
}

static void dial(struct client *c)
{
	struct cfl_conn_opts o = cfl_msg_hub_conn_opts(c->hub, c->tls);
	struct cfl_conn *conn;
	struct cfl_err e = {0};

	if (c->act->connect_timeout_s > 0)
		o.connect_timeout_ms = (uint64_t)c->act->connect_timeout_s * 1000;
	if (cfl_conn_dial(c->loop, c->cfg.host, c->cfg.port, &o, &conn, &e) == 0)
		return;
	if (!persistent(c)) {
		finish(c, e.code, "%s", e.msg);
		return;
	}
	CFL_WARN("%s", e.msg);
	retry_later(c);
}

static struct cfl_tls_config tls_config(const struct client *c)
{
	/* tls: no client certificate; the server is checked against customRootCA.pem when the kit
	 * has one (a proxy's CA: no issuer pin, no CRL at TLS), else rootCA.pem (SPEC §4). */
	const char *trust = cfl_kitcfg_trust_file(&c->cfg);
	int own_ca = strcmp(trust, c->cfg.root_ca) == 0;
	struct cfl_tls_config tc = {.is_server = 0,
	                            .mode = c->cfg.mode,
	                            .cert_file = c->cfg.mode == CFL_SEC_MTLS ? c->cfg.cert : NULL,
	                            .key_file = c->cfg.mode == CFL_SEC_MTLS ? c->cfg.key : NULL,
	                            .ca_file = trust,
	                            .own_cert_file = own_ca ? c->cfg.cert : NULL,
	                            .crl_file = own_ca ? c->crl : NULL};

	return tc;
}

static struct cfl_auth_client_cfg auth_config(const struct client *c)
{
	struct cfl_auth_client_cfg ac = {.name = c->cfg.name,
	                                 .project = c->cfg.project,
	                                 .server_cn = c->cfg.identity,
	                                 .cert_file = c->cfg.cert,
	                                 .key_file = c->cfg.key,
	                                 .root_ca = c->cfg.root_ca,
	                                 .crl_file = c->crl,
	                                 .kind = c->act->kind == CFL_ACT_ADMIN ? CFL_AUTH_ADMIN
	                                                                       : CFL_AUTH_CLIENT,
	                                 .mode = c->cfg.mode};

	cfl_auth_times_default(&ac.times);
	return ac;
}

/* Loads local/crl.pem (again): the server's certificate is checked against it at the next
 * connection and login, and a live connection to a revoked server is closed now. */
static void load_crl(struct client *c, const char *why)
{
	struct cfl_err e = {0};

	if (c->tls != NULL && cfl_tls_ctx_set_crl(c->tls, c->crl, &e) != 0) {
		CFL_ERROR("%s: CRL not loaded, the one in force stays: %s", why, e.msg);
		return;
	}
	if (cfl_auth_client_set_crl(c->auth, c->crl, &e) < 0) {
		CFL_ERROR("%s: CRL not loaded for logins, the one in force stays: %s", why, e.msg);
		return;
	}
	CFL_INFO("%s: CRL '%s' %s", why, c->crl,
	         cfl_auth_file_exists(&c->watch) ? "loaded" : "absent: no revocation");
}

static void on_crl_poll(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct client *c = arg;

	(void)id;
	if (c->stopping || c->finished)
		return;
	if (cfl_auth_file_changed(&c->watch, c->crl))
		load_crl(c, "CRL file changed");
	cfl_loop_timer_add(loop, CFL_AUTH_CRL_POLL_MS, on_crl_poll, c);
}

/* SIGHUP: renewal. The connection goes on; the next connection and login use the new
 * certificate. One that does not match its key or chain is refused and the old one kept. */
static void reload_credentials(struct client *c)
{
	struct cfl_tls_config tc = tls_config(c);
	struct cfl_auth_client_cfg ac = auth_config(c);
	struct cfl_err e = {0};

	(void)cfl_auth_file_changed(&c->watch, c->crl);
	if (c->tls != NULL && cfl_tls_ctx_reload(c->tls, &tc, &e) != 0) {
		CFL_ERROR("SIGHUP: certificate not reloaded, the one in force stays: %s", e.msg);
		return;
	}
	if (cfl_auth_client_reload(c->auth, &ac, &e) != 0) {
		CFL_ERROR("SIGHUP: certificate not reloaded for logins, the one in force stays: %s",
		          e.msg);
		return;
	}
	CFL_INFO("SIGHUP: certificate '%s', key and CRL reloaded (the next login uses them; the "
	         "connection goes on)",
	         c->cfg.cert);
}

static void on_signal(struct cfl_loop *loop, int signo, void *arg)
{
	struct client *c = arg;
	struct cfl_err e = {0};

	/* SIGHUP: the certificate, key and CRL (renewal), and the site's policy files are read
	 * again; one that does not load leaves the one in force (a typo neither opens the site
	 * nor stops it). */
	if (signo == SIGHUP) {
		reload_credentials(c);
		if (c->exec == NULL)
			return;
		if (cfl_executor_reload(c->exec, &e) != 0)
			CFL_ERROR("SIGHUP: site policy not reloaded, the one in force stays: %s",
			          e.msg);
		else
			CFL_INFO("SIGHUP: site policy reloaded");
		return;
	}
	if (c->stopping)
		return;
	c->stopping = 1;
	CFL_INFO("shutting down");
	if (c->peer != NULL)
		cfl_conn_close(cfl_peer_conn(c->peer), "client shutting down");
	else
		cfl_loop_stop(loop);
}

/* An admin's `shutdown client`: the same as SIGTERM. */
static void on_shutdown_request(void *arg)
{
	struct client *c = arg;

	on_signal(c->loop, SIGTERM, c);
}

/* `--server`: another address than the kit's (tests and the simulator give the port the
 * server picked). `:PORT` keeps the kit's host, so the certificate check stays the kit's. */
static int override_server(struct client *c, struct cfl_err *e)
{
	const char *h = c->act->server_host;

	if (h != NULL && h[0] != '\0' &&
	    snprintf(c->cfg.host, sizeof(c->cfg.host), "%s", h) >= (int)sizeof(c->cfg.host))
		return cfl_err_set(e, CFL_EINVAL, "server host too long: '%s'", h);
	if (c->act->server_port > 0)
		c->cfg.port = c->act->server_port;
	return 0;
}

/* A site's executor: jobs under the kit's jobs/, its policy from the kit's local/ (SPEC §10). */
static int start_executor(struct client *c, struct cfl_err *e)
{
	char dir[PATH_MAX], local[PATH_MAX], org[256] = "";
	struct cfl_pki_cert *me = NULL;
	int rc;

	if (snprintf(dir, sizeof(dir), "%s/jobs", c->cfg.kit_dir) >= (int)sizeof(dir) ||
	    snprintf(local, sizeof(local), "%s/local", c->cfg.kit_dir) >= (int)sizeof(local))
		return cfl_err_set(e, CFL_ETOOBIG, "kit path too long");
	/* "o:site" compares an admin's org with this site's, as its certificate says. */
	if ((rc = cfl_pki_cert_load(c->cfg.cert, &me, e)) != 0)
		return rc;
	cfl_pki_cert_org(me, org, sizeof(org));
	cfl_pki_cert_free(me);
	struct cfl_executor_cfg xc = {.work_dir = dir,
	                              .site = c->cfg.name,
	                              .root_ca = c->cfg.root_ca,
	                              .cert_file = c->cfg.cert,
	                              .on_shutdown = on_shutdown_request,
	                              .arg = c,
	                              .local_dir = local,
	                              .org = org};

	return cfl_executor_new(c->hub, &xc, &c->exec, e);
}

static int setup(struct client *c, const char *kit_dir, struct cfl_err *e)
{
	int rc;

	int admin = c->act->kind == CFL_ACT_ADMIN;

	if ((rc = cfl_kitcfg_load(kit_dir, admin ? 2 : 0, &c->cfg, e)) != 0 ||
	    (rc = cfl_kitcfg_verify_kit(
	             &c->cfg,
	             c->act->unsigned_kit ? CFL_KIT_CHECK_UNSIGNED_OK : CFL_KIT_CHECK_SIGNED, e)) !=
	            0 ||
	    (rc = override_server(c, e)) != 0 || (rc = cfl_loop_new(&c->loop, e)) != 0 ||
	    (rc = cfl_loop_on_signal(c->loop, on_signal, c, e)) != 0 ||
	    (rc = cfl_msg_hub_new(c->loop, c->cfg.name, &c->hub, e)) != 0)
		return rc;
	if (snprintf(c->crl, sizeof(c->crl), "%s/local/crl.pem", c->cfg.kit_dir) >=
	    (int)sizeof(c->crl))
		return cfl_err_set(e, CFL_ETOOBIG, "kit path too long");
	(void)cfl_auth_file_changed(&c->watch, c->crl);
	if (c->cfg.mode != CFL_SEC_CLEAR) {
		struct cfl_tls_config tc = tls_config(c);

		if ((rc = cfl_tls_ctx_new(&tc, &c->tls, e)) != 0)
			return rc;
	}
	{
		struct cfl_auth_client_cfg ac = auth_config(c);

		if ((rc = cfl_auth_client_new(c->hub, &ac, &c->auth, e)) != 0)
			return rc;
	}
	cfl_loop_timer_add(c->loop, CFL_AUTH_CRL_POLL_MS, on_crl_poll, c);
	if (c->act->kind == CFL_ACT_DIAG &&
	    (rc = cfl_diag_new(c->loop, &c->act->diag, diag_done, c, &c->diag)) != 0)
		return cfl_err_set(e, rc, "bad diagnostic action");
	cfl_msg_hub_on_peer(c->hub, peer_up, peer_down, c);
	if ((rc = cfl_diag_serve_echo(c->hub, e)) != 0)
		return rc;
	if (!admin && (rc = start_executor(c, e)) != 0)
		return rc;
	c->backoff_ms = BACKOFF_MIN_MS;
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	return 0;
}

static int run(const char *kit_dir, const struct cfl_client_action *act, struct cfl_admin *admin,
               struct cfl_err *e)
{
	struct client c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.act = act;
	c.admin = admin;
	rc = setup(&c, kit_dir, e);
	if (rc == 0) {
		CFL_INFO("client '%s' dialing %s:%d (%s)", c.cfg.name, c.cfg.host, c.cfg.port,
		         cfl_conn_sec_name(c.cfg.mode));
		dial(&c);
		if (!c.finished || c.peer != NULL)
			rc = cfl_loop_run(c.loop);
		if (c.result != 0) {
			rc = c.result;
			if (e != NULL)
				*e = c.err;
		}
	}
	cfl_msg_hub_free(c.hub);
	cfl_executor_free(c.exec);
	cfl_auth_client_free(c.auth);
	cfl_tls_ctx_free(c.tls);
	cfl_diag_free(c.diag);
	cfl_loop_free(c.loop);
	return rc;
}

int cfl_client_run(const char *kit_dir, const struct cfl_client_action *act, struct cfl_err *e)
{
	return run(kit_dir, act, NULL, e);
}

int cfl__client_run_admin(const char *kit_dir, struct cfl_admin *s, struct cfl_err *e)
{
	const struct cfl_admin_ops *ops = cfl__admin_ops(s);
	const struct cfl_client_action act = {.kind = CFL_ACT_ADMIN,
	                                      .server_host = ops->server_host,
	                                      .server_port = ops->server_port,
	                                      .unsigned_kit = ops->unsigned_kit};

	return run(kit_dir, &act, s, e);
}
