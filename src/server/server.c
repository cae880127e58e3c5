/* cfl server: listeners, the login, connection logs, jobs, the admin commands and the policy
 * they follow (the kit's local/authorization.json, read again on SIGHUP). */
#include "cfl/server.h"

#include "cfl/auth.h"
#include "cfl/authz.h"
#include "cfl/conn.h"
#include "cfl/diag.h"
#include "cfl/kit.h"
#include "cfl/log.h"
#include "cfl/loop.h"
#include "cfl/msg.h"
#include "cfl/pki.h"
#include "cfl/tls.h"
#include "admission.h"
#include "server_int.h"
#include "util/fs.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct server {
	struct cfl_kitcfg cfg;
	struct cfl_loop *loop;
	struct cfl_msg_hub *hub;
	struct cfl_tls_ctx *tls;
	struct cfl_listener *fl, *admin;
	struct cfl_auth_server *auth;
	struct cfl_jobs *jobs;
	struct cfl_authz *policy;         /* what admins may do here (docs/security.md) */
	struct cfl_admit *admit;          /* admission control of both listeners (admission.c) */
	struct cfl__server_resources res; /* local/resources.json */
	char local[PATH_MAX];             /* the kit's local/ folder, where the policy lives */
	char crl[PATH_MAX];               /* local/crl.pem: the CRLs in force when present */
	struct cfl_auth_file_watch watch; /* its last seen state, polled on a timer */
	char org[CFL_AUTH_NAME_MAX];      /* the O of the server's certificate */
	int one_listener;                 /* the admin console on the fed_learn_port listener */
	int stopping;
};

static void peer_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct server *s = arg;

	(void)code;
	(void)reason;
	cfl_auth_server_peer_up(s->auth, p);
}

/* While stopping, the last connection to close ends the wait for the GOAWAYs. */
static void peer_gone(struct server *s, int last)
{
	if (!s->stopping)
		cfl_jobs_kick(s->jobs);
	else if (last)
		cfl_loop_stop(s->loop);
}

static void peer_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct server *s = arg;

	(void)code;
	if (p != NULL)
		cfl_auth_server_peer_down(s->auth, p);
	peer_gone(s, p != NULL && cfl_msg_hub_peers(s->hub) == 1); /* p still counts */
	if (p == NULL) /* the admission control logs these per address, once a minute */
		CFL_DEBUG("connection failed: %s", reason ? reason : "closed");
	else if (cfl_peer_name(p)[0] != '\0')
		CFL_INFO("%s disconnected: %s", cfl_peer_name(p), reason ? reason : "closed");
	else
		CFL_INFO("connection from %s closed: %s", cfl_conn_peer_addr(cfl_peer_conn(p)),
		         reason ? reason : "closed");
}

/* --- life cycle ----------------------------------------------------------------------------- */

static void on_stop_timer(struct cfl_loop *loop, uint64_t id, void *arg)
{
	(void)id;
	(void)arg;
	cfl_loop_stop(loop);
}

/* The TLS context and the login's configuration, from the kit (at start and on SIGHUP). */
static struct cfl_tls_config tls_config(const struct server *s)
{
	struct cfl_tls_config tc = {.is_server = 1,
	                            .mode = s->cfg.mode,
	                            .cert_file = s->cfg.cert,
	                            .key_file = s->cfg.key,
	                            .ca_file = s->cfg.root_ca,
	                            .crl_file = s->crl};

	return tc;
}

static struct cfl_auth_server_cfg auth_config(const struct server *s)
{
	struct cfl_auth_server_cfg ac = {.project = s->cfg.project,
	                                 .server_cn = s->cfg.name,
	                                 .cert_file = s->cfg.cert,
	                                 .key_file = s->cfg.key,
	                                 .root_ca = s->cfg.root_ca,
	                                 .crl_file = s->crl,
	                                 .mode = s->cfg.mode};

	cfl_auth_times_default(&ac.times);
	if (s->res.login_timeout_ms != 0)
		ac.times.login_timeout_ms = s->res.login_timeout_ms;
	return ac;
}

/* Loads local/crl.pem (again): new TLS connections are checked against it, logins too, and
 * the sessions of revoked certificates end now. One that does not load leaves the CRLs in
 * force. */
static void load_crl(struct server *s, const char *why)
{
	struct cfl_err e = {0};
	int n;

	if (s->tls != NULL && cfl_tls_ctx_set_crl(s->tls, s->crl, &e) != 0) {
		CFL_ERROR("%s: CRL not loaded, the one in force stays: %s", why, e.msg);
		return;
	}
	n = cfl_auth_server_set_crl(s->auth, s->crl, &e);
	if (n < 0) {
		CFL_ERROR("%s: CRL not loaded for logins, the one in force stays: %s", why, e.msg);
		return;
	}
	CFL_INFO("%s: CRL '%s' %s; %d session%s of revoked certificates ended", why, s->crl,
	         cfl_auth_file_exists(&s->watch) ? "loaded" : "absent: no revocation", n,
	         n == 1 ? "" : "s");
}

static void on_crl_poll(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct server *s = arg;

	(void)id;
	if (s->stopping)
		return;
	if (cfl_auth_file_changed(&s->watch, s->crl))
		load_crl(s, "CRL file changed");
	cfl_loop_timer_add(loop, CFL_AUTH_CRL_POLL_MS, on_crl_poll, s);
}

/* SIGHUP: the certificate and key (renewal), the CRL and the policy are read again; each one
 * that does not load leaves the one in force, with a log line. */
static void reload_credentials(struct server *s)
{
	struct cfl_tls_config tc = tls_config(s);
	struct cfl_auth_server_cfg ac = auth_config(s);
	struct cfl_err e = {0};

	(void)cfl_auth_file_changed(&s->watch, s->crl);
	if (s->tls != NULL && cfl_tls_ctx_reload(s->tls, &tc, &e) != 0) {
		CFL_ERROR("SIGHUP: certificate not reloaded, the one in force stays: %s", e.msg);
		return;
	}
	if (cfl_auth_server_reload(s->auth, &ac, &e) != 0) {
		CFL_ERROR("SIGHUP: certificate not reloaded for logins, the one in force stays: %s",
		          e.msg);
		return;
	}
	CFL_INFO("SIGHUP: certificate '%s', key and CRL reloaded (new connections and logins use "
	         "them; live sessions go on)",
	         s->cfg.cert);
}

/* SIGHUP: the policy file is read again. One that does not load leaves the one in force,
 * which was read whole and checked: a typo never turns into "everything allowed", nor locks
 * every admin out of a running server; the log says what is wrong. */
static void reload_policy(struct server *s)
{
	struct cfl_authz *a = NULL;
	struct cfl_err e = {0};

	if (cfl_authz_load(s->local, &a, &e) != 0) {
		CFL_ERROR("SIGHUP: policy not reloaded, '%s' stays in force: %s",
		          cfl_authz_source(s->policy), e.msg);
		return;
	}
	cfl_authz_free(s->policy);
	s->policy = a;
	CFL_INFO("SIGHUP: authorization policy reloaded from '%s'", cfl_authz_source(a));
}

static void on_signal(struct cfl_loop *loop, int signo, void *arg)
{
	struct server *s = arg;

	if (signo == SIGHUP) {
		if (!s->stopping) {
			reload_credentials(s);
			reload_policy(s);
		}
		return;
	}
	if (s->stopping)
		return;
	s->stopping = 1;
	CFL_INFO("shutting down (%s)", signo == SIGINT ? "SIGINT" : "SIGTERM");
	cfl_listener_free(s->fl);
	cfl_listener_free(s->admin);
	s->fl = s->admin = NULL;
	/* Give the GOAWAYs a moment to leave; connections close within their linger time, and
	 * the last one to close stops the loop sooner (none open: no need to wait). */
	cfl_loop_timer_add(loop, cfl_msg_hub_peers(s->hub) > 0 ? 300 : 0, on_stop_timer, s);
	cfl_msg_hub_close_all(s->hub, "server shutting down");
}

static int listen_on(struct server *s, int port, struct cfl_listener **out, struct cfl_err *e)
{
	struct cfl_conn_opts o = cfl_msg_hub_conn_opts(s->hub, s->tls);
	int rc;

	o.admit = s->admit;
	o.admit_admin = !s->one_listener && out == &s->admin;
	rc = cfl_listener_new(s->loop, NULL, port, &o, out, e);
	if (rc == 0)
		CFL_INFO("listening on port %d (%s)", cfl_listener_port(*out),
		         cfl_conn_sec_name(s->cfg.mode));
	return rc;
}

/* The ports to listen on: the kit's, or the overrides (-1 keeps the kit's). A kit whose
 * admin_port equals its fed_learn_port has one listener for both, and keeps it when only the
 * port is overridden; two ports the kernel picks are two listeners. */
static void choose_ports(struct server *s, const struct cfl_server_opts *o)
{
	int shared = s->cfg.admin_port == s->cfg.port;

	if (o != NULL && o->port >= 0)
		s->cfg.port = o->port;
	if (o != NULL && o->admin_port >= 0)
		s->cfg.admin_port = o->admin_port;
	else if (shared)
		s->cfg.admin_port = s->cfg.port;
	s->one_listener = s->cfg.admin_port == s->cfg.port &&
	                  (s->cfg.port != 0 || o == NULL || o->admin_port < 0);
}

/* Writes "FED ADMIN\n" to a temporary file beside `path`, then renames it to `path`: whoever
 * waits for the file reads both ports or nothing. */
static int write_port_file(const struct server *s, const char *path, struct cfl_err *e)
{
	char tmp[PATH_MAX], line[32];
	int fed = cfl_listener_port(s->fl);
	int admin = s->admin != NULL ? cfl_listener_port(s->admin) : fed;
	int n = snprintf(line, sizeof(line), "%d %d\n", fed, admin);
	int rc;

	if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp))
		return cfl_err_set(e, CFL_ETOOBIG, "port file path too long: '%s'", path);
	if ((rc = cfl__fs_write_file(tmp, line, (size_t)n, 0644, e)) != 0)
		return rc;
	if (rename(tmp, path) != 0) {
		rc = cfl_err_set(e, CFL_EIO, "cannot write the port file '%s': %s", path,
		                 strerror(errno));
		unlink(tmp);
	}
	return rc;
}

/* The server's policy and its own org, which "o:site" compares with an admin's. A policy that
 * is missing or does not load stops the server: it never runs with no rules. */
static int load_policy(struct server *s, struct cfl_err *e)
{
	struct cfl_pki_cert *cert = NULL;
	int rc;

	if (cfl__path_join(s->local, sizeof(s->local), s->cfg.kit_dir, "local") != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "kit path too long");
	if ((rc = cfl_authz_load(s->local, &s->policy, e)) != 0)
		return cfl_err_prefix(e, "cannot load the authorization policy");
	if ((rc = cfl_pki_cert_load(s->cfg.cert, &cert, e)) != 0)
		return rc;
	if (cfl_pki_cert_org(cert, s->org, sizeof(s->org)) != 0)
		s->org[0] = '\0'; /* no O: o:site matches no admin */
	cfl_pki_cert_free(cert);
	CFL_INFO("authorization policy: '%s'; this server's org: '%s'", cfl_authz_source(s->policy),
	         s->org);
	return 0;
}

static int setup(struct server *s, const char *kit_dir, const struct cfl_server_opts *opts,
                 struct cfl_err *e)
{
	int rc;

	if ((rc = cfl_kitcfg_load(kit_dir, 1, &s->cfg, e)) != 0 ||
	    (rc = cfl_kitcfg_verify_kit(&s->cfg,
	                                opts != NULL && opts->unsigned_kit
	                                        ? CFL_KIT_CHECK_UNSIGNED_OK
	                                        : CFL_KIT_CHECK_SIGNED,
	                                e)) != 0 ||
	    (rc = load_policy(s, e)) != 0 ||
	    (rc = cfl__server_resources_load(s->local, &s->res, e)) != 0 ||
	    (rc = cfl_loop_new(&s->loop, e)) != 0 ||
	    (rc = cfl__server_admit_new(s->loop, &s->res, &s->admit, e)) != 0 ||
	    (rc = cfl_loop_on_signal(s->loop, on_signal, s, e)) != 0 ||
	    (rc = cfl_msg_hub_new(s->loop, "server", &s->hub, e)) != 0)
		return rc;
	if (cfl__path_join(s->crl, sizeof(s->crl), s->local, "crl.pem") != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "kit path too long");
	(void)cfl_auth_file_changed(&s->watch, s->crl);
	if (s->cfg.mode != CFL_SEC_CLEAR) {
		struct cfl_tls_config tc = tls_config(s);

		if ((rc = cfl_tls_ctx_new(&tc, &s->tls, e)) != 0)
			return rc;
	}
	{
		struct cfl_auth_server_cfg ac = auth_config(s);

		if ((rc = cfl_auth_server_new(s->hub, &ac, &s->auth, e)) != 0)
			return rc;
	}
	if (cfl_auth_file_exists(&s->watch))
		CFL_INFO("CRL '%s' in force", s->crl);
	cfl_loop_timer_add(s->loop, CFL_AUTH_CRL_POLL_MS, on_crl_poll, s);
	cfl_msg_hub_on_peer(s->hub, peer_up, peer_down, s);
	{
		struct cfl__server_info info = {s->cfg.name, s->cfg.project, s->org, 0, &s->policy};
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		info.started_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		char dir[PATH_MAX];

		if (snprintf(dir, sizeof(dir), "%s/jobs", s->cfg.kit_dir) >= (int)sizeof(dir))
			return cfl_err_set(e, CFL_ETOOBIG, "kit path too long");
		struct cfl_jobs_cfg jc = {.dir = dir, .root_ca = s->cfg.root_ca};

		jc.cert_file = s->cfg.cert; /* its chain names the project's issuing CA */
		if ((rc = cfl_jobs_new(s->hub, s->auth, &jc, &s->jobs, e)) != 0)
			return rc;
		cfl__server_admin_init(s->hub, s->auth, s->jobs, &info);
	}
	/* The test topics move data of any size for any logged-in peer: off unless asked. */
	if (opts != NULL && opts->diag) {
		CFL_INFO("serving the test topics echo, sink and source (--diag)");
		rc = cfl_diag_serve(s->hub, e);
	} else {
		rc = cfl_diag_serve_ping(s->hub, e);
	}
	if (rc != 0)
		return rc;
	choose_ports(s, opts);
	if ((rc = listen_on(s, s->cfg.port, &s->fl, e)) != 0)
		return rc;
	if (!s->one_listener && (rc = listen_on(s, s->cfg.admin_port, &s->admin, e)) != 0)
		return rc;
	if (opts != NULL && opts->port_file != NULL)
		return write_port_file(s, opts->port_file, e);
	return 0;
}

int cfl_server_run(const char *kit_dir, const struct cfl_server_opts *opts, struct cfl_err *e)
{
	struct server s;
	int rc;

	memset(&s, 0, sizeof(s));
	rc = setup(&s, kit_dir, opts, e);
	if (rc == 0) {
		CFL_INFO("server '%s' of project '%s' started", s.cfg.name, s.cfg.project);
		rc = cfl_loop_run(s.loop);
		if (rc != 0)
			cfl_err_set(e, rc, "event loop failed");
	}
	cfl_listener_free(s.fl);
	cfl_listener_free(s.admin);
	s.stopping = 1;
	/* The hub before the jobs: it drops the replies still awaited without calling back, then
	 * cfl_jobs_free frees the runs that awaited them. */
	cfl_msg_hub_free(s.hub);
	cfl_jobs_free(s.jobs);
	cfl_auth_server_free(s.auth);
	cfl_admit_free(s.admit); /* after the hub: its connections held slots */
	cfl_tls_ctx_free(s.tls);
	cfl_loop_free(s.loop);
	cfl_authz_free(s.policy);
	return rc;
}
