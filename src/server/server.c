/* cfl server: listeners, the hello exchange, connection logs, built-in test topics. */
#include "cfl/server.h"

#include "cfl/auth.h"
#include "cfl/conn.h"
#include "cfl/digest.h"
#include "cfl/kitcfg.h"
#include "cfl/log.h"
#include "cfl/loop.h"
#include "cfl/msg.h"
#include "cfl/tls.h"
#include "server_int.h"
#include "util/fs.h"
#include "util/teststream.h"

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
	int one_listener; /* the admin console on the fed_learn_port listener */
	int stopping;
};

static void peer_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct server *s = arg;

	(void)code;
	(void)reason;
	cfl_auth_server_peer_up(s->auth, p);
}

static void peer_gone(struct server *s)
{
	if (!s->stopping)
		cfl_jobs_kick(s->jobs);
}

static void peer_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct server *s = arg;

	(void)code;
	if (p != NULL)
		cfl_auth_server_peer_down(s->auth, p);
	peer_gone(s);
	if (p == NULL)
		CFL_INFO("connection failed: %s", reason ? reason : "closed");
	else if (cfl_peer_name(p)[0] != '\0')
		CFL_INFO("%s disconnected: %s", cfl_peer_name(p), reason ? reason : "closed");
	else
		CFL_INFO("connection from %s closed: %s", cfl_conn_peer_addr(cfl_peer_conn(p)),
		         reason ? reason : "closed");
}

/* --- test topics: echo, ping, sink, source ------------------------------------------------ */

static void on_echo(struct cfl_peer *p, const struct cfl_frame *f, int more,
                    struct cfl_msg_sink *sink, void *arg)
{
	(void)arg;
	(void)sink;
	if (more) {
		cfl_peer_reply_error(p, f->id, "too_big", "echo takes single-frame bodies");
		return;
	}
	if (f->type == CFL_FRAME_T_REQUEST)
		cfl_peer_reply(p, f->id, NULL, 0, f->body, f->body_len);
}

struct sink_state {
	struct cfl_peer *peer;
	uint64_t req_id;
	uint64_t len;
	struct cfl_sha256 *sha;
};

static void sink_data(void *st, const uint8_t *d, size_t n)
{
	struct sink_state *s = st;

	cfl_sha256_update(s->sha, d, n);
	s->len += n;
}

static void sink_reply(struct sink_state *s)
{
	uint8_t md[CFL_SHA256_LEN];
	char hex[2 * CFL_SHA256_LEN + 1], len[24];
	struct cfl_header h[2];

	cfl_sha256_final(s->sha, md);
	cfl_hex(md, sizeof(md), hex);
	snprintf(len, sizeof(len), "%" PRIu64, s->len);
	h[0] = (struct cfl_header){"length", 6, (const uint8_t *)len, strlen(len)};
	h[1] = (struct cfl_header){"sha256", 6, (const uint8_t *)hex, strlen(hex)};
	cfl_peer_reply(s->peer, s->req_id, h, 2, NULL, 0);
}

static void sink_end(void *st, int status, const char *reason)
{
	struct sink_state *s = st;

	if (status == 0)
		sink_reply(s);
	else
		CFL_WARN("%s: upload failed after %" PRIu64 " bytes: %s", cfl_peer_name(s->peer),
		         s->len, reason ? reason : cfl_strerror(status));
	cfl_sha256_free(s->sha);
	free(s);
}

static void on_sink(struct cfl_peer *p, const struct cfl_frame *f, int more,
                    struct cfl_msg_sink *sink, void *arg)
{
	struct sink_state *s = calloc(1, sizeof(*s));

	(void)arg;
	if (s == NULL || (s->sha = cfl_sha256_new()) == NULL) {
		free(s);
		cfl_peer_reply_error(p, f->id, "no_memory", "out of memory");
		return;
	}
	s->peer = p;
	s->req_id = f->id;
	sink_data(s, f->body, f->body_len);
	if (!more) {
		sink_end(s, 0, NULL);
		return;
	}
	*sink = (struct cfl_msg_sink){sink_data, sink_end, s};
}

static int header_u64(const struct cfl_frame *f, const char *key, uint64_t *out)
{
	char buf[32], *end;

	if (cfl_frame_header_str(f, key, buf, sizeof(buf)) != 0 || buf[0] == '\0')
		return CFL_ENOENT;
	*out = strtoull(buf, &end, 10);
	return *end == '\0' ? 0 : CFL_EINVAL;
}

static int source_read(void *src, uint8_t *buf, size_t len)
{
	return (int)cfl__tstream_fill(src, buf, len);
}

static void source_done(struct cfl_conn *c, uint64_t id, int status, void *src)
{
	(void)c;
	(void)id;
	if (status != 0)
		CFL_WARN("download stream ended early: %s", cfl_strerror(status));
	free(src);
}

static void on_source(struct cfl_peer *p, const struct cfl_frame *f, int more,
                      struct cfl_msg_sink *sink, void *arg)
{
	struct cfl__tstream *ts;
	uint64_t len = 0, seed = 0;

	(void)arg;
	(void)more;
	(void)sink;
	if (header_u64(f, "length", &len) != 0 || header_u64(f, "seed", &seed) != 0) {
		cfl_peer_reply_error(p, f->id, "bad_request", "source needs length and seed");
		return;
	}
	ts = malloc(sizeof(*ts));
	if (ts == NULL) {
		cfl_peer_reply_error(p, f->id, "no_memory", "out of memory");
		return;
	}
	cfl__tstream_init(ts, seed, len);
	if (cfl_peer_reply_stream(p, f->id, NULL, 0, len, source_read, ts, source_done) != 0)
		free(ts);
}

/* --- life cycle ----------------------------------------------------------------------------- */

static void on_stop_timer(struct cfl_loop *loop, uint64_t id, void *arg)
{
	(void)id;
	(void)arg;
	cfl_loop_stop(loop);
}

static void on_signal(struct cfl_loop *loop, int signo, void *arg)
{
	struct server *s = arg;

	if (s->stopping)
		return;
	s->stopping = 1;
	CFL_INFO("shutting down (%s)", signo == SIGINT ? "SIGINT" : "SIGTERM");
	cfl_listener_free(s->fl);
	cfl_listener_free(s->admin);
	s->fl = s->admin = NULL;
	cfl_msg_hub_close_all(s->hub, "server shutting down");
	/* Give the GOAWAYs a moment to leave; connections close within their linger time. */
	cfl_loop_timer_add(loop, 300, on_stop_timer, s);
}

static int listen_on(struct server *s, int port, struct cfl_listener **out, struct cfl_err *e)
{
	struct cfl_conn_opts o = cfl_msg_hub_conn_opts(s->hub, s->tls);
	int rc = cfl_listener_new(s->loop, NULL, port, &o, out, e);

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

static int setup(struct server *s, const char *kit_dir, const struct cfl_server_opts *opts,
                 struct cfl_err *e)
{
	int rc;

	if ((rc = cfl_kitcfg_load(kit_dir, 1, &s->cfg, e)) != 0 ||
	    (rc = cfl_kitcfg_verify_kit(&s->cfg, e)) != 0 ||
	    (rc = cfl_loop_new(&s->loop, e)) != 0 ||
	    (rc = cfl_loop_on_signal(s->loop, on_signal, s, e)) != 0 ||
	    (rc = cfl_msg_hub_new(s->loop, "server", &s->hub, e)) != 0)
		return rc;
	if (s->cfg.mode != CFL_SEC_CLEAR) {
		struct cfl_tls_config tc = {.is_server = 1,
		                            .mode = s->cfg.mode,
		                            .cert_file = s->cfg.cert,
		                            .key_file = s->cfg.key,
		                            .ca_file = s->cfg.root_ca};

		if ((rc = cfl_tls_ctx_new(&tc, &s->tls, e)) != 0)
			return rc;
	}
	{
		struct cfl_auth_server_cfg ac = {.project = s->cfg.project,
		                                 .server_cn = s->cfg.name,
		                                 .cert_file = s->cfg.cert,
		                                 .key_file = s->cfg.key,
		                                 .root_ca = s->cfg.root_ca,
		                                 .mode = s->cfg.mode};

		cfl_auth_times_default(&ac.times);
		if ((rc = cfl_auth_server_new(s->hub, &ac, &s->auth, e)) != 0)
			return rc;
	}
	cfl_msg_hub_on_peer(s->hub, peer_up, peer_down, s);
	{
		struct cfl__server_info info = {s->cfg.name, s->cfg.project, 0};
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		info.started_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		char dir[PATH_MAX];

		if (snprintf(dir, sizeof(dir), "%s/jobs", s->cfg.kit_dir) >= (int)sizeof(dir))
			return cfl_err_set(e, CFL_ETOOBIG, "kit path too long");
		if ((rc = cfl_jobs_new(s->hub, s->auth, dir, &s->jobs, e)) != 0)
			return rc;
		cfl__server_admin_init(s->hub, s->auth, s->jobs, &info);
	}
	cfl_msg_hub_handle(s->hub, "echo", on_echo, s);
	cfl_msg_hub_handle(s->hub, "ping", on_echo, s);
	cfl_msg_hub_handle(s->hub, "sink", on_sink, s);
	cfl_msg_hub_handle(s->hub, "source", on_source, s);
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
	cfl_msg_hub_free(s.hub);
	cfl_jobs_free(s.jobs);
	cfl_auth_server_free(s.auth);
	cfl_tls_ctx_free(s.tls);
	cfl_loop_free(s.loop);
	return rc;
}
