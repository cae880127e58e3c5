/* Shared fixture of test_conn.c, test_stream.c and test_lent.c: certificates made at test time with
 * the openssl command in a mkdtemp directory, a loop with a listener and one dialed connection on
 * loopback (ephemeral port), callbacks that record what happened, bounded waits, and the
 * pseudo-random pattern of test bodies.
 *
 * Everything is static inline so that each test program takes what it uses. */
#ifndef CFL_TEST_CONN_FIXTURE_H
#define CFL_TEST_CONN_FIXTURE_H

#include "cfl/conn.h"
#include "cfl/log.h"
#include "cfl/loop.h"
#include "cfl/tls.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd_fixture.h"

#define WAIT_MS 5000 /* every wait in these tests gives up after this */

static char cert_dir[PATH_MAX];

/* Runs `script` with `sh` inside cert_dir; 0 on success. */
static inline int in_cert_dir(const char *script)
{
	char cmd[8192];

	if (snprintf(cmd, sizeof(cmd), "cd '%s' && (%s) >/dev/null 2>&1", cert_dir, script) >=
	    (int)sizeof(cmd))
		return -1;
	return system(cmd);
}

/* Two CAs and their leaves, P-256, valid two days:
 *   ca      test_project CA          ca2      another project's CA
 *   server  CN=server1, SAN localhost, 127.0.0.1, ::1 (ca)
 *   host    CN=server1, SAN DNS:localhost only (ca)
 *   admin   CN=admin@nvidia.com, O=nvidia, unstructuredName=project_admin (ca)
 *   site    CN=site-1, O=nvidia (ca)
 *   server2 CN=server1, SAN localhost, 127.0.0.1 (ca2)
 *   site2   CN=site-1 (ca2)
 * and leaves of the wrong purpose (ca): srvsite CN=site-1 with EKU serverAuth, casite CN=site-1
 * CA:TRUE with clientAuth, noeku CN=site-1 without EKU, cliserver CN=server1 (SAN localhost,
 * 127.0.0.1) with EKU clientAuth. */
static inline int make_certs(void)
{
	static const char script[] =
	        "printf '[req]\\ndistinguished_name=dn\\n[dn]\\n[v3_ca]\\n"
	        "basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n"
	        "subjectKeyIdentifier=hash\\n' > ca.cnf && "
	        "EC='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes' && "
	        "ca() { openssl req -x509 -config ca.cnf -extensions v3_ca $EC -keyout $1.key "
	        "-out $1.pem -days 2 -subj \"/CN=$2\"; } && "
	        "leaf() { openssl req -new -config ca.cnf $EC -keyout $1.key -out $1.csr "
	        "-subj \"$3\" && printf \"$4\" > $1.ext && openssl x509 -req -in $1.csr -CA $2.pem "
	        "-CAkey $2.key -CAcreateserial -days 2 -out $1.crt -extfile $1.ext; } && "
	        "ca ca test_project && ca ca2 other_project && "
	        "leaf server ca /CN=server1/O=nvidia "
	        "'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\\nextendedKeyUsage="
	        "serverAuth\\n' && "
	        "leaf host ca /CN=server1/O=nvidia "
	        "'subjectAltName=DNS:localhost\\nextendedKeyUsage=serverAuth\\n' && "
	        "leaf admin ca /CN=admin@nvidia.com/O=nvidia/unstructuredName=project_admin "
	        "'extendedKeyUsage=clientAuth\\n' && "
	        "leaf site ca /CN=site-1/O=nvidia 'extendedKeyUsage=clientAuth\\n' && "
	        "leaf server2 ca2 /CN=server1/O=nvidia "
	        "'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' && "
	        "leaf site2 ca2 /CN=site-1/O=nvidia 'extendedKeyUsage=clientAuth\\n' && "
	        "leaf srvsite ca /CN=site-1/O=nvidia 'extendedKeyUsage=serverAuth\\n' && "
	        "leaf casite ca /CN=site-1/O=nvidia "
	        "'basicConstraints=CA:TRUE\\nextendedKeyUsage=clientAuth\\n' && "
	        "leaf noeku ca /CN=site-1/O=nvidia 'subjectAltName=DNS:site-1\\n' && "
	        "leaf cliserver ca /CN=server1/O=nvidia "
	        "'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=clientAuth\\n'";

	snprintf(cert_dir, sizeof(cert_dir), "/tmp/cfl-conn-test.XXXXXX");
	if (mkdtemp(cert_dir) == NULL)
		return -1;
	return in_cert_dir(script) == 0 ? 0 : -1;
}

static inline void remove_certs(void)
{
	char cmd[PATH_MAX + 16];

	if (cert_dir[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cert_dir);
	(void)system(cmd);
	cert_dir[0] = '\0';
}

static inline const char *cert_path(char *buf, size_t size, const char *name)
{
	if (snprintf(buf, size, "%s/%s", cert_dir, name) >= (int)size)
		fail_msg("path too long: %s/%s", cert_dir, name);
	return buf;
}

/* A context for `role` (1 = server) in `mode` with leaf `leaf` (NULL: none) and trust `ca`
 * ("ca" or "ca2", NULL: none). Fails the test on error. */
static inline struct cfl_tls_ctx *tls_ctx(int server, enum cfl_conn_sec mode, const char *leaf,
                                          const char *ca)
{
	char crt[PATH_MAX], key[PATH_MAX], cap[PATH_MAX], name[64];
	struct cfl_tls_config cfg;
	struct cfl_tls_ctx *ctx = NULL;
	struct cfl_err e;

	memset(&cfg, 0, sizeof(cfg));
	cfg.is_server = server;
	cfg.mode = mode;
	if (leaf != NULL) {
		snprintf(name, sizeof(name), "%s.crt", leaf);
		cfg.cert_file = cert_path(crt, sizeof(crt), name);
		snprintf(name, sizeof(name), "%s.key", leaf);
		cfg.key_file = cert_path(key, sizeof(key), name);
	}
	if (ca != NULL) {
		snprintf(name, sizeof(name), "%s.pem", ca);
		cfg.ca_file = cert_path(cap, sizeof(cap), name);
	}
	cfl_err_clear(&e);
	if (cfl_tls_ctx_new(&cfg, &ctx, &e) != 0)
		fail_msg("cfl_tls_ctx_new: %s", e.msg);
	return ctx;
}

/* --- recording callbacks ----------------------------------------------------------------- */

struct peer;
typedef void (*peer_msg_hook)(struct peer *p, const struct cfl_frame *f, int more);
typedef void (*peer_chunk_hook)(struct peer *p, uint64_t id, const uint8_t *d, size_t n, int last);

struct peer {
	struct world *w;
	struct cfl_conn *c;
	int opened, closed, code, msgs, aborts, abort_code;
	char reason[CFL_ERR_MSG_MAX];
	char abort_reason[256];
	uint64_t closed_ms;
	struct cfl_conn_stats stats; /* as on_close saw them */
	/* the last message */
	struct {
		uint8_t type;
		uint16_t flags;
		uint64_t id, ref;
		int more;
		char topic[64];
		char body[256];
		size_t body_len;
		char body_length[32];
	} last;
	peer_msg_hook on_msg;
	peer_chunk_hook on_chunk;
	int max_payload_on_open; /* raise the limit at open (a logged-in peer) */
};

struct world {
	struct cfl_loop *loop;
	struct cfl_listener *l;
	int port;
	struct peer srv, cli;
	uint64_t started_ms;
};

static inline void copy_val(char *dst, size_t size, const struct cfl_header *h)
{
	size_t n = h == NULL ? 0 : h->val_len < size - 1 ? h->val_len : size - 1;

	if (n > 0)
		memcpy(dst, h->val, n);
	dst[n] = '\0';
}

static inline void cb_open(struct cfl_conn *c, void *user)
{
	struct peer *p = user;

	p->c = c;
	p->opened++;
	if (p->max_payload_on_open)
		assert_int_equal(cfl_conn_set_max_payload(c, CFL_FRAME_MAX_PAYLOAD), 0);
}

static inline void cb_msg(struct cfl_conn *c, const struct cfl_frame *f, int more, void *user)
{
	struct peer *p = user;
	size_t n = f->body_len < sizeof(p->last.body) ? f->body_len : sizeof(p->last.body);

	p->c = c;
	p->msgs++;
	p->last.type = f->type;
	p->last.flags = f->flags;
	p->last.id = f->id;
	p->last.ref = f->ref;
	p->last.more = more;
	copy_val(p->last.topic, sizeof(p->last.topic), cfl_frame_header(f, "topic"));
	copy_val(p->last.body_length, sizeof(p->last.body_length),
	         cfl_frame_header(f, "body-length"));
	memcpy(p->last.body, f->body, n);
	p->last.body_len = f->body_len;
	if (p->on_msg != NULL)
		p->on_msg(p, f, more);
}

static inline void cb_chunk(struct cfl_conn *c, uint64_t id, const uint8_t *d, size_t n, int last,
                            void *user)
{
	struct peer *p = user;

	(void)c;
	if (p->on_chunk != NULL)
		p->on_chunk(p, id, d, n, last);
}

static inline void cb_abort(struct cfl_conn *c, uint64_t id, int code, const char *reason,
                            void *user)
{
	struct peer *p = user;

	(void)c;
	(void)id;
	p->aborts++;
	p->abort_code = code;
	snprintf(p->abort_reason, sizeof(p->abort_reason), "%s", reason);
}

static inline void cb_close(struct cfl_conn *c, int code, const char *reason, void *user)
{
	struct peer *p = user;

	p->c = c;
	p->closed++;
	p->code = code;
	p->closed_ms = cfl_loop_now_ms(NULL);
	cfl_conn_get_stats(c, &p->stats);
	snprintf(p->reason, sizeof(p->reason), "%s", reason);
	p->c = NULL; /* gone when this returns */
}

static inline struct cfl_conn_opts peer_opts(struct peer *p, struct cfl_tls_ctx *tls)
{
	struct cfl_conn_opts o;

	memset(&o, 0, sizeof(o));
	o.tls = tls;
	o.user = p;
	o.cb.on_open = cb_open;
	o.cb.on_msg = cb_msg;
	o.cb.on_chunk = cb_chunk;
	o.cb.on_abort = cb_abort;
	o.cb.on_close = cb_close;
	return o;
}

/* --- the world --------------------------------------------------------------------------- */

/* Runs the loop until *flag >= want or `ms` pass; returns 1 if the flag got there. */
static inline int wait_for(struct world *w, const int *flag, int want, uint64_t ms)
{
	uint64_t end = cfl_loop_now_ms(w->loop) + ms;

	while (*flag < want && cfl_loop_now_ms(w->loop) < end)
		assert_true(cfl_loop_run_once(w->loop, 20) >= 0);
	return *flag >= want;
}

static inline void world_init(struct world *w)
{
	struct cfl_err e;

	memset(w, 0, sizeof(*w));
	w->srv.w = w;
	w->cli.w = w;
	assert_int_equal(cfl_loop_new(&w->loop, &e), 0);
	w->started_ms = cfl_loop_now_ms(w->loop);
}

/* A listener with `srv_tls` (NULL: clear) and a stream idle timeout (0: the default); the
 * context is released (connections and the listener keep their own references). */
static inline void world_listen_idle(struct world *w, struct cfl_tls_ctx *srv_tls, uint64_t idle_ms)
{
	struct cfl_conn_opts o = peer_opts(&w->srv, srv_tls);
	struct cfl_err e;

	o.idle_timeout_ms = idle_ms;
	cfl_err_clear(&e);
	if (cfl_listener_new(w->loop, NULL, 0, &o, &w->l, &e) != 0)
		fail_msg("listener: %s", e.msg);
	cfl_tls_ctx_free(srv_tls);
	w->port = cfl_listener_port(w->l);
	assert_true(w->port > 0);
}

static inline void world_listen(struct world *w, struct cfl_tls_ctx *srv_tls)
{
	world_listen_idle(w, srv_tls, 0);
}

static inline void world_dial(struct world *w, const char *host, struct cfl_tls_ctx *cli_tls)
{
	struct cfl_conn_opts o = peer_opts(&w->cli, cli_tls);
	struct cfl_err e;

	cfl_err_clear(&e);
	if (cfl_conn_dial(w->loop, host, w->port, &o, &w->cli.c, &e) != 0)
		fail_msg("dial: %s", e.msg);
	cfl_tls_ctx_free(cli_tls);
}

static inline void world_start(struct world *w, struct cfl_tls_ctx *srv_tls,
                               struct cfl_tls_ctx *cli_tls, const char *host)
{
	world_init(w);
	world_listen(w, srv_tls);
	world_dial(w, host, cli_tls);
}

/* Both sides open, within the deadline. */
static inline void world_open(struct world *w)
{
	assert_true(wait_for(w, &w->cli.opened, 1, WAIT_MS));
	assert_true(wait_for(w, &w->srv.opened, 1, WAIT_MS));
}

/* Frees whatever is left: the client, then the server side once it saw the end. */
static inline void world_stop(struct world *w)
{
	if (w->cli.c != NULL && !w->cli.closed)
		cfl_conn_free(w->cli.c);
	w->cli.c = NULL;
	if (w->srv.c != NULL || w->srv.opened)
		(void)wait_for(w, &w->srv.closed, 1, 1000);
	if (w->srv.c != NULL && !w->srv.closed)
		cfl_conn_free(w->srv.c);
	cfl_listener_free(w->l);
	/* Let timers of connections that finished run out (they hold no memory of ours). */
	(void)cfl_loop_run_once(w->loop, 0);
	cfl_loop_free(w->loop);
}

/* A small frame with a topic header and a text body. */
static inline struct cfl_frame text_frame(uint8_t type, const char *topic, const char *body)
{
	struct cfl_frame f;

	memset(&f, 0, sizeof(f));
	f.type = type;
	if (topic != NULL) {
		f.headers[0] = CFL_HDR("topic", topic);
		f.n_headers = 1;
	}
	f.body = (const uint8_t *)body;
	f.body_len = body != NULL ? strlen(body) : 0;
	return f;
}

/* --- the pattern of test bodies ---------------------------------------------------------- */

#define MIB    ((uint64_t)1024 * 1024)
#define PERIOD ((size_t)MIB + 4093) /* pattern length: chunk boundaries never line up with it */

/* Byte i of every test body is pattern[i % PERIOD] (pattern_make fills it, pseudo-random). */
static uint8_t *pattern;

static inline int pattern_make(void)
{
	uint64_t x = 88172645463325252ull;

	pattern = malloc(PERIOD);
	if (pattern == NULL)
		return -1;
	for (size_t i = 0; i < PERIOD; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pattern[i] = (uint8_t)(x >> 24);
	}
	return 0;
}

/* 1 if buf holds the pattern's bytes from offset `off`. */
static inline int same_as_pattern(const uint8_t *buf, uint64_t off, size_t len)
{
	size_t got = 0;

	while (got < len) {
		size_t pos = (size_t)((off + got) % PERIOD), n = len - got;

		if (n > PERIOD - pos)
			n = PERIOD - pos;
		if (memcmp(buf + got, pattern + pos, n) != 0)
			return 0;
		got += n;
	}
	return 1;
}

/* Log lines are kept (for checks on what was logged), not printed. */
static char log_lines[16384];

static inline void log_sink(enum cfl_log_level level, const char *line, void *arg)
{
	size_t used = strlen(log_lines);

	(void)arg;
	(void)level;
	if (used + strlen(line) + 2 < sizeof(log_lines))
		snprintf(log_lines + used, sizeof(log_lines) - used, "%s\n", line);
}

static inline void capture_logs(void)
{
	log_lines[0] = '\0';
	cfl_log_set_level(CFL_LOG_INFO);
	cfl_log_set_sink(log_sink, NULL);
}

/* --- the group setup and teardown ------------------------------------------------------------ */

/* Certificates made, the open descriptors noted; conn_teardown also frees the pattern (if
 * pattern_make made it). */
static inline int conn_setup(void **state)
{
	(void)state;
	cfl_log_set_level(CFL_LOG_ERROR);
	fds_note();
	return make_certs();
}

static inline int conn_setup_with_pattern(void **state)
{
	return pattern_make() == 0 ? conn_setup(state) : -1;
}

static inline int conn_teardown(void **state)
{
	(void)state;
	free(pattern);
	pattern = NULL;
	remove_certs();
	return fds_check();
}

#endif
