/* Message authentication benchmark (SPEC §5, docs/security.md): what the token check on every
 * message costs, and what a login costs beside a bare mTLS handshake. Two processes on
 * loopback: this one is the client, a forked child the server. It provisions its own project
 * (server "localhost", mtls, ECDSA P-256, one client per login) into a temporary folder.
 *
 *   messages  64-byte one-way messages (then a request as a barrier) and 64-byte request/reply
 *             round trips on one mTLS connection each: authentication on (cfl_auth_server's
 *             gate on the server hub, cfl_auth_client here) and off (hubs without either);
 *             median of 3 runs, each of 40 slices of on and off in turn
 *   gate      in the server process, the hub's receive callback called with a captured
 *             authenticated frame, for the logged-in peer and for a peer of the hub without
 *             the gate: the difference is the gate's cost per message
 *   logins    distinct identities logging in on one loop, beside bare mTLS handshakes with one
 *             TLS context (hub peers opened, no login), DIAL_WINDOW in flight
 *
 * Every wait has a deadline; the server process dies with its parent (PR_SET_PDEATHSIG) or
 * after BENCH_CHILD_SECS, and is reaped on every path; the temporary folder is removed.
 * Usage: bench_auth [--quick] [--logins] [--window N]   (--logins: only the logins, e.g. under a
 * profiler, with --window: N in flight instead of 64) */
#include "cfl/auth.h"
#include "cfl/conn.h"
#include "cfl/err.h"
#include "cfl/kit.h"
#include "cfl/log.h"
#include "cfl/loop.h"
#include "cfl/msg.h"
#include "cfl/provision.h"
#include "cfl/tls.h"
#include "util/fs.h"

#define BENCH_NAME       "bench_auth"
#define BENCH_WAIT_S     120.0 /* every wait gives up after this */
#define BENCH_CHILD_SECS 900   /* a server process still alive after this is killed (SIGALRM) */
#include "bench_proc.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG_SIZE    64
#define RUNS        3
#define SLICES      40 /* each run alternates on and off this many times */
#define WAIT_S      BENCH_WAIT_S
#define DIAL_WINDOW 64           /* handshakes or logins in flight at once */
static int window = DIAL_WINDOW; /* --window N (fewer under a profiler, within the timeouts) */
#define QUEUE_HIGH (1u << 20)    /* one-way bytes queued before letting the loop run */
#define GATE_CALLS 1000000

static struct {
	int oneways, rtts, logins;
} set = {200000, 20000, 1000};

static char prod[PATH_MAX];
static int port_auth, port_bare; /* the server process's hubs: with the gate, without */
static struct cfl_kitcfg kit_srv, kit_cli, kit_tmp;
static struct cfl_tls_ctx *srv_tls, *cli_tls;
static int closing;   /* connections going away are expected */
static uint64_t nops; /* server process: one-way messages since the last barrier */
static uint8_t body[MSG_SIZE];

/* --- process control --------------------------------------------------------------- */

/* Runs `loop` once (at most 10 ms) unless the deadline passed or the user interrupted. */
static void step(struct cfl_loop *loop, double end, const char *what)
{
	if (interrupted)
		die("interrupted");
	if (now_s() > end)
		die("timed out waiting for %s", what);
	if (cfl_loop_run_once(loop, 10) < 0)
		die("event loop failed");
}

static void run_until(struct cfl_loop *loop, const int *count, int want, const char *what)
{
	double end = now_s() + WAIT_S;

	while (*count < want)
		step(loop, end, what);
}

/* --- the server process ------------------------------------------------------------ */

enum { T_NOP, T_COUNT, T_PING, T_GATE, T_N };
static const char *const topic_name[T_N] = {"nop", "count", "ping", "gate"};
static int topic_id[T_N] = {T_NOP, T_COUNT, T_PING, T_GATE};

static struct cfl_msg_hub *hub_auth;
static struct cfl_conn *cap_conn[2]; /* the first one-way message's connection: [1] auth */
static uint8_t cap_frame[4096];      /* and, on the authenticated one, that frame */
static int cap_len;

/* ns per call of the hubs' receive callback for connection `c` (the frame goes to "nop"). */
static double time_receive(const struct cfl_conn_opts *o, struct cfl_conn *c,
                           const struct cfl_frame *f)
{
	uint64_t before = nops;
	double t0 = now_s();

	for (int i = 0; i < GATE_CALLS; i++)
		o->cb.on_msg(c, f, 0, cfl_conn_user(c));
	t0 = now_s() - t0;
	if (nops - before != GATE_CALLS)
		die("the gate refused the captured frame");
	return t0 * 1e9 / GATE_CALLS;
}

/* The gate's cost: the captured authenticated frame through the receive callback (the same
 * function for every hub) of the logged-in peer, and of the peer of the hub without a gate. */
static void gate_reply(struct cfl_peer *p, uint64_t id)
{
	struct cfl_conn_opts o = cfl_msg_hub_conn_opts(hub_auth, NULL);
	double t[2][RUNS];
	struct cfl_frame f;
	char out[64];

	if (cap_conn[0] == NULL || cap_conn[1] == NULL ||
	    cfl_frame_decode(cap_frame, (size_t)cap_len, CFL_FRAME_MAX_PAYLOAD, &f) <= 0)
		die("no captured frame to time");
	for (int r = 0; r < RUNS; r++) {
		for (int i = 1; i >= 0; i--)
			t[i][r] = time_receive(&o, cap_conn[i], &f);
	}
	snprintf(out, sizeof(out), "%.2f %.2f %zu", median(t[1], RUNS), median(t[0], RUNS),
	         f.n_headers);
	cfl_peer_reply(p, id, NULL, 0, out, strlen(out));
}

static void serve(struct cfl_peer *p, const struct cfl_frame *f, int more,
                  struct cfl_msg_sink *sink, void *arg)
{
	int i = cfl_peer_hub(p) == hub_auth;
	char n[48];

	(void)more;
	(void)sink;
	switch (*(const int *)arg) {
	case T_NOP:
		nops++;
		if (cap_conn[i] != NULL)
			break;
		cap_conn[i] = cfl_peer_conn(p);
		if (i && (cap_len = cfl_frame_encode(cap_frame, sizeof(cap_frame), f)) <= 0)
			die("cannot keep the authenticated frame");
		break;
	case T_COUNT: /* the barrier: one-way messages since the last one */
		snprintf(n, sizeof(n), "%" PRIu64, nops);
		nops = 0;
		cfl_peer_reply(p, f->id, NULL, 0, n, strlen(n));
		break;
	case T_PING:
		cfl_peer_reply(p, f->id, NULL, 0, f->body, f->body_len);
		break;
	case T_GATE:
		gate_reply(p, f->id);
		break;
	default:
		break;
	}
}

/* The peers of the hubs without authentication count as logged in: the same frame limit and
 * read budget (src/net/conn.c gives a peer that has not logged in a 4 KiB slice per wake-up). */
static void as_logged_in(struct cfl_peer *p)
{
	if (cfl_conn_set_max_payload(cfl_peer_conn(p), CFL_FRAME_MAX_PAYLOAD) != 0)
		die("cannot raise the payload limit");
}

static void srv_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	(void)code;
	(void)reason;
	if (arg != NULL)
		cfl_auth_server_peer_up(arg, p);
	else
		as_logged_in(p);
}

static void srv_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	(void)code;
	(void)reason;
	if (p != NULL && arg != NULL)
		cfl_auth_server_peer_down(arg, p);
}

/* A server hub with the test topics listening on `port`; behind the gate when `auth`, its
 * peers treated as logged in otherwise. */
static struct cfl_msg_hub *server_hub(struct cfl_loop *loop, int port,
                                      struct cfl_auth_server **auth, struct cfl_listener **l)
{
	struct cfl_auth_server_cfg ac = {kit_srv.project, kit_srv.name, kit_srv.cert, kit_srv.key,
	                                 kit_srv.root_ca, NULL,         CFL_SEC_MTLS, {0, 0, 0, 0}};
	struct cfl_msg_hub *h = NULL;
	struct cfl_conn_opts o;
	struct cfl_err e;

	cfl_err_clear(&e);
	if (cfl_msg_hub_new(loop, "server", &h, &e) != 0)
		die("server hub: %s", e.msg);
	for (int i = 0; i < T_N; i++) {
		if (cfl_msg_hub_handle(h, topic_name[i], serve, &topic_id[i]) != 0)
			die("cannot serve '%s'", topic_name[i]);
	}
	cfl_auth_times_default(&ac.times);
	if (auth != NULL && cfl_auth_server_new(h, &ac, auth, &e) != 0)
		die("auth server: %s", e.msg);
	cfl_msg_hub_on_peer(h, srv_up, srv_down, auth != NULL ? *auth : NULL);
	o = cfl_msg_hub_conn_opts(h, srv_tls);
	if (cfl_listener_new(loop, NULL, port, &o, l, &e) != 0)
		die("cannot listen: %s", e.msg);
	return h;
}

static void on_ctl(struct cfl_loop *loop, int fd, int events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
	cfl_loop_stop(loop); /* the parent closed the control pipe */
}

/* The authenticated hub and the bare one, each on a port the kernel picks, told to the parent
 * in that order, until the parent closes the control pipe. */
static int server_main(const void *arg)
{
	struct cfl_auth_server *auth = NULL;
	struct cfl_loop *loop = NULL;
	struct cfl_msg_hub *h_bare;
	struct cfl_listener *l[2];
	struct cfl_err e;
	int rc;

	(void)arg;
	cfl_err_clear(&e);
	if (cfl_loop_new(&loop, &e) != 0)
		die("%s", e.msg);
	hub_auth = server_hub(loop, 0, &auth, &l[1]);
	h_bare = server_hub(loop, 0, NULL, &l[0]);
	if (cfl_loop_watch(loop, ctl_fd, CFL_EV_READ, on_ctl, NULL) != 0)
		die("cannot watch the control pipe");
	tell(cfl_listener_port(l[1]));
	tell(cfl_listener_port(l[0]));
	rc = cfl_loop_run(loop);
	closing = 1;
	cfl_listener_free(l[0]);
	cfl_listener_free(l[1]);
	cfl_msg_hub_free(hub_auth);
	cfl_msg_hub_free(h_bare);
	cfl_auth_server_free(auth);
	cfl_loop_free(loop);
	return rc;
}

static void spawn_server(void)
{
	port_auth = spawn(server_main, NULL);
	port_bare = read_status(NULL, "the server's second port");
}

/* --- the client side ----------------------------------------------------------------- */

/* A client hub: one connection (messages, logins) or many (bare handshakes). */
struct cli {
	struct cfl_msg_hub *hub;
	struct cfl_auth_client *auth; /* NULL: authentication off */
	struct cfl_peer *peer;
	int ready;
	const char *name;
};

static int n_ready; /* logins done and bare peers up, all clients together */

static void cli_login(struct cfl_peer *p, int status, const char *reason, void *arg)
{
	struct cli *c = arg;

	if (status != 0)
		die("login of %s failed: %s", c->name, reason ? reason : cfl_strerror(status));
	c->peer = p;
	c->ready++;
	n_ready++;
}

static void cli_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct cli *c = arg;
	int rc;

	(void)code;
	(void)reason;
	cfl_peer_set_name(p, "server");
	if (c->auth == NULL) {
		as_logged_in(p);
		cli_login(p, 0, NULL, c);
	} else if ((rc = cfl_auth_client_login(c->auth, p, cli_login, c)) != 0)
		die("cannot start the login of %s: %s", c->name, cfl_strerror(rc));
}

static void cli_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct cli *c = arg;

	(void)code;
	if (p != NULL && c->auth != NULL)
		cfl_auth_client_peer_down(c->auth, p);
	if (!closing)
		die("connection of %s lost: %s", c->name, reason ? reason : "closed");
}

/* A client hub for kit `k`, with cfl_auth_client when `auth` (it owns its hub's gate, so
 * every identity needs a hub of its own). */
static void cli_init(struct cli *c, struct cfl_loop *loop, const struct cfl_kitcfg *k, int auth)
{
	struct cfl_auth_client_cfg ac = {k->name,      k->project,  k->identity, k->cert,
	                                 k->key,       k->root_ca,  NULL,        CFL_AUTH_CLIENT,
	                                 CFL_SEC_MTLS, {0, 0, 0, 0}};
	struct cfl_err e;

	memset(c, 0, sizeof(*c));
	c->name = k->name;
	cfl_err_clear(&e);
	if (cfl_msg_hub_new(loop, k->name, &c->hub, &e) != 0)
		die("client hub: %s", e.msg);
	cfl_auth_times_default(&ac.times);
	if (auth && cfl_auth_client_new(c->hub, &ac, &c->auth, &e) != 0)
		die("auth client of %s: %s", k->name, e.msg);
	cfl_msg_hub_on_peer(c->hub, cli_up, cli_down, c);
}

static void cli_dial(struct cli *c, struct cfl_loop *loop, struct cfl_tls_ctx *tls, int port)
{
	struct cfl_conn_opts o = cfl_msg_hub_conn_opts(c->hub, tls);
	struct cfl_conn *conn;
	struct cfl_err e;

	cfl_err_clear(&e);
	o.connect_timeout_ms = (uint64_t)(WAIT_S * 1000);
	if (cfl_conn_dial(loop, kit_cli.host, port, &o, &conn, &e) != 0)
		die("cannot dial %s:%d: %s", kit_cli.host, port, e.msg);
}

/* Drops the hub and its connections at once (set `closing` first). */
static void cli_free(struct cli *c)
{
	cfl_msg_hub_free(c->hub);
	cfl_auth_client_free(c->auth);
	memset(c, 0, sizeof(*c));
}

/* --- message rates and the gate ------------------------------------------------------ */

static int replies, rr_left;
static char reply_text[64];

/* A reply whose body is text (barrier, gate): kept in reply_text. */
static void text_reply(struct cfl_peer *p, int status, const char *reason,
                       const struct cfl_frame *f, int more, struct cfl_msg_sink *sink, void *arg)
{
	size_t n;

	(void)p;
	(void)more;
	(void)sink;
	(void)arg;
	if (status != 0 || f == NULL)
		die("request failed: %s", reason ? reason : cfl_strerror(status));
	n = f->body_len < sizeof(reply_text) ? f->body_len : 0;
	memcpy(reply_text, f->body, n);
	reply_text[n] = '\0';
	replies++;
}

static void ask(struct cfl_loop *loop, struct cli *c, const char *topic)
{
	int rc;

	replies = 0;
	rc = cfl_peer_request(c->peer, topic, NULL, 0, NULL, 0, (uint64_t)(WAIT_S * 1000),
	                      text_reply, NULL);
	if (rc != 0)
		die("request '%s': %s", topic, cfl_strerror(rc));
	run_until(loop, &replies, 1, topic);
}

/* The server answers after everything sent before it: checks its count of one-way ones. */
static void barrier(struct cfl_loop *loop, struct cli *c, int want)
{
	int got = -1;

	ask(loop, c, "count");
	if (sscanf(reply_text, "%d", &got) != 1 || got != want)
		die("the server counted %s one-way messages, not %d", reply_text, want);
}

/* Seconds for n one-way messages and the barrier; *wire gets the frame bytes of each. */
static double run_oneways(struct cfl_loop *loop, struct cli *c, int n, double *wire)
{
	struct cfl_conn *conn = cfl_peer_conn(c->peer);
	struct cfl_conn_stats s0, s1;
	double t0 = now_s(), end = t0 + WAIT_S;
	int sent = 0, rc;

	cfl_conn_get_stats(conn, &s0);
	while (sent < n) {
		while (sent < n && cfl_conn_queued(conn) < QUEUE_HIGH) {
			if ((rc = cfl_peer_send(c->peer, "nop", NULL, 0, body, MSG_SIZE)) != 0)
				die("one-way send failed: %s", cfl_strerror(rc));
			sent++;
		}
		step(loop, end, "the one-way messages to leave");
	}
	cfl_conn_get_stats(conn, &s1);
	barrier(loop, c, n);
	*wire = (double)(s1.bytes_out - s0.bytes_out) / n;
	return now_s() - t0;
}

static void rr_reply(struct cfl_peer *p, int status, const char *reason, const struct cfl_frame *f,
                     int more, struct cfl_msg_sink *sink, void *arg)
{
	int rc;

	(void)more;
	(void)sink;
	(void)arg;
	if (status != 0)
		die("request failed: %s", reason ? reason : cfl_strerror(status));
	if (f->body_len != MSG_SIZE || memcmp(f->body, body, MSG_SIZE) != 0)
		die("a reply came back different");
	if (--rr_left == 0)
		replies++;
	else if ((rc = cfl_peer_request(p, "ping", NULL, 0, body, MSG_SIZE, 0, rr_reply, NULL)) !=
	         0)
		die("request: %s", cfl_strerror(rc));
}

/* Seconds for n round trips, one after the other. */
static double run_rtts(struct cfl_loop *loop, struct cli *c, int n)
{
	double t0 = now_s();
	int rc;

	replies = 0;
	rr_left = n;
	if ((rc = cfl_peer_request(c->peer, "ping", NULL, 0, body, MSG_SIZE, 0, rr_reply, NULL)) !=
	    0)
		die("request: %s", cfl_strerror(rc));
	run_until(loop, &replies, 1, "the round trips");
	return now_s() - t0;
}

static void print_gate(void)
{
	double on, off;
	int n_hdrs;

	if (sscanf(reply_text, "%lf %lf %d", &on, &off, &n_hdrs) != 3)
		die("the server's gate timing is unreadable: '%s'", reply_text);
	printf("\ngate: in the server process, the hub's receive callback called %d times with a "
	       "captured\n      authenticated 64-byte one-way message (%d headers), median of "
	       "%d\n",
	       GATE_CALLS, n_hdrs, RUNS);
	printf("  %-44s %7.1f ns/message\n", "logged-in peer, hub with the gate", on);
	printf("  %-44s %7.1f ns/message\n", "peer of the hub without the gate", off);
	printf("  %-44s %7.1f ns/message\n", "the gate alone (difference)", on - off);
}

static void bench_messages(struct cfl_loop *loop)
{
	double rate[2][2][RUNS], pair[2][RUNS * SLICES], wire[2], m[2][2];
	struct cli c[2]; /* [1]: authentication on, [0]: off */
	int np = 0;

	closing = 0;
	for (int i = 0; i < 2; i++) {
		cli_init(&c[i], loop, &kit_cli, i);
		cli_dial(&c[i], loop, cli_tls, i ? port_auth : port_bare);
		run_until(loop, &c[i].ready, 1, i ? "the login" : "the connection");
	}
	/* Slices of on and off in turn, so that a burst of load from elsewhere on the machine
	 * falls on both; which one goes first alternates too. A run's rate is its total; the
	 * ratio is the median of the ratios of adjacent on/off slices, the least noisy figure. */
	for (int r = 0; r < RUNS; r++) {
		double t[2][2] = {{0, 0}, {0, 0}}, last[2][2];

		for (int k = 0; k < 2 * SLICES; k++) {
			int i = (r + k + 1) % 2;
			double t_ow = run_oneways(loop, &c[i], set.oneways / SLICES, &wire[i]);
			double t_rt = run_rtts(loop, &c[i], set.rtts / SLICES);

			t[i][0] += t_ow;
			t[i][1] += t_rt;
			last[i][0] = 1 / t_ow;
			last[i][1] = 1 / t_rt;
			if (k % 2 == 0)
				continue;
			pair[0][np] = last[1][0] / last[0][0];
			pair[1][np++] = last[1][1] / last[0][1];
		}
		for (int i = 0; i < 2; i++) {
			rate[i][0][r] = set.oneways / t[i][0];
			rate[i][1][r] = set.rtts / t[i][1];
		}
	}
	for (int i = 0; i < 2; i++) {
		for (int k = 0; k < 2; k++)
			m[i][k] = median(rate[i][k], RUNS);
	}
	printf("\nmessages: 64-byte bodies, one mTLS connection per mode, median of %d runs of %d "
	       "on/off slices\n",
	       RUNS, SLICES);
	printf("  %-32s %10s %10s %13s %13s\n", "", "auth on", "auth off", "on/off pairs",
	       "on/off runs");
	printf("  %-32s %10.0f %10.0f %13.3f %13.3f\n", "one-way messages/s (+ barrier)", m[1][0],
	       m[0][0], median(pair[0], np), m[1][0] / m[0][0]);
	printf("  %-32s %10.0f %10.0f %13.3f %13.3f\n", "request/reply round trips/s", m[1][1],
	       m[0][1], median(pair[1], np), m[1][1] / m[0][1]);
	printf("  %-32s %10.0f %10.0f\n", "frame bytes per one-way message", wire[1], wire[0]);
	printf("  (%d one-way messages and %d round trips per run and mode; target >= 0.98)\n",
	       set.oneways, set.rtts);
	printf("  (on/off pairs: the median of the %d ratios of adjacent on and off slices;\n", np);
	printf("   on/off runs: the ratio of the medians)\n");
	ask(loop, &c[1], "gate");
	print_gate();
	closing = 1;
	cli_free(&c[1]);
	cli_free(&c[0]);
}

/* --- logins beside bare handshakes ---------------------------------------------------- */

struct ident {
	struct cli c;
	struct cfl_tls_ctx *tls;
	char name[64];
};

static struct cfl_loop *d_loop;
static struct ident *ids;
static struct cli bare; /* one hub for every bare connection */

static void bare_dial(int i)
{
	(void)i;
	cli_dial(&bare, d_loop, cli_tls, port_bare);
}

static void login_dial(int i)
{
	cli_dial(&ids[i].c, d_loop, ids[i].tls, port_auth);
}

/* Connections per second: `n` dialed with DIAL_WINDOW in flight until each is up (a login, or
 * a bare hub peer opened); thousands at once would only wait in the listen backlog. */
static double dial_all(struct cfl_loop *loop, int n, void (*dial)(int i), const char *what)
{
	double t0 = now_s(), end = t0 + WAIT_S;
	int next = 0;

	d_loop = loop;
	n_ready = 0;
	while (n_ready < n) {
		while (next < n && next - n_ready < window)
			dial(next++);
		step(loop, end, what);
	}
	return n / (now_s() - t0);
}

static double bench_handshakes(struct cfl_loop *loop)
{
	struct timespec settle = {0, 300000000};
	double rate;

	closing = 0;
	cli_init(&bare, loop, &kit_cli, 0);
	rate = dial_all(loop, set.logins, bare_dial, "the handshakes");
	closing = 1;
	cli_free(&bare);
	(void)nanosleep(&settle, NULL); /* the server drops them before the next test */
	return rate;
}

static struct cfl_tls_ctx *tls_for(const struct cfl_kitcfg *k, int server)
{
	struct cfl_tls_config cfg = {server,
	                             CFL_SEC_MTLS,
	                             k->cert,
	                             k->key,
	                             server ? k->root_ca : cfl_kitcfg_trust_file(k),
	                             NULL,
	                             NULL};
	struct cfl_tls_ctx *ctx = NULL;
	struct cfl_err e;

	cfl_err_clear(&e);
	if (cfl_tls_ctx_new(&cfg, &ctx, &e) != 0)
		die("tls context of '%s': %s", k->name, e.msg);
	return ctx;
}

static void load_kit(const char *name, int server, struct cfl_kitcfg *k)
{
	char dir[PATH_MAX];
	struct cfl_err e;

	cfl_err_clear(&e);
	if (cfl__path_join(dir, sizeof(dir), prod, name) != 0 ||
	    cfl_kitcfg_load(dir, server, k, &e) != 0)
		die("cannot load the kit of '%s': %s", name, e.msg);
	if (k->mode != CFL_SEC_MTLS)
		die("the kit of '%s' is not in mtls mode", name);
}

/* Logins per second of set.logins distinct identities, all on one loop. The kits, TLS
 * contexts, hubs and auth clients are made before the clock starts (*setup_s). */
static double bench_storm(struct cfl_loop *loop, double *setup_s)
{
	double t0 = now_s(), rate;

	closing = 0;
	if ((ids = calloc((size_t)set.logins, sizeof(*ids))) == NULL)
		die("out of memory");
	for (int i = 0; i < set.logins; i++) {
		snprintf(ids[i].name, sizeof(ids[i].name), "site-%d", i + 1);
		load_kit(ids[i].name, 0, &kit_tmp);
		ids[i].tls = tls_for(&kit_tmp, 0);
		cli_init(&ids[i].c, loop, &kit_tmp, 1);
		ids[i].c.name = ids[i].name;
	}
	*setup_s = now_s() - t0;
	rate = dial_all(loop, set.logins, login_dial, "the logins");
	closing = 1;
	for (int i = 0; i < set.logins; i++) {
		cli_free(&ids[i].c);
		cfl_tls_ctx_free(ids[i].tls);
	}
	free(ids);
	return rate;
}

static void bench_logins(struct cfl_loop *loop)
{
	double hs[2], storm, setup, hs_mean;

	hs[0] = bench_handshakes(loop);
	storm = bench_storm(loop, &setup);
	hs[1] = bench_handshakes(loop);
	hs_mean = (hs[0] + hs[1]) / 2;
	printf("\nlogins: %d connections on one loop, %d in flight\n", set.logins, window);
	printf("  %-44s %7.0f /s  (before %.0f, after %.0f)\n",
	       "bare mTLS handshakes, one TLS context", hs_mean, hs[0], hs[1]);
	printf("  %-44s %7.0f /s\n", "logins of distinct identities (mTLS + login)", storm);
	printf("  %-44s %7.3f\n", "ratio logins / handshakes", storm / hs_mean);
	printf("  %-44s %7.2f ms\n", "login time beyond the handshake, per login",
	       (1 / storm - 1 / hs_mean) * 1e3);
	printf("  (made before timing: %d kits, TLS contexts, hubs and auth clients in %.2f s)\n",
	       set.logins, setup);
}

/* --- setup --------------------------------------------------------------------------- */

static void make_kits(void)
{
	char project[PATH_MAX], ws[PATH_MAX];
	struct cfl_provision_opts o = {project, ws, CFL_KEY_P256, NULL};
	struct cfl_err e;
	double t0;
	FILE *f;

	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/cfl-bench-auth.XXXXXX");
	if (mkdtemp(tmp_dir) == NULL) {
		tmp_dir[0] = '\0';
		die("mkdtemp: %s", strerror(errno));
	}
	if (cfl__path_join(project, sizeof(project), tmp_dir, "project.yml") != 0 ||
	    cfl__path_join(ws, sizeof(ws), tmp_dir, "workspace") != 0 ||
	    (f = fopen(project, "w")) == NULL)
		die("cannot write the project file");
	/* The kit's ports are not used: the server process listens on ports the kernel picks. */
	fputs("api_version: 3\nname: bench\nconnection_security: mtls\nparticipants:\n"
	      "  - {name: localhost, type: server, org: bench, fed_learn_port: 8002,\n"
	      "     admin_port: 8003, host_names: [localhost, 127.0.0.1]}\n",
	      f);
	for (int i = 0; i < set.logins; i++)
		fprintf(f, "  - {name: site-%d, type: client, org: bench}\n", i + 1);
	if (fclose(f) != 0)
		die("cannot write the project file");
	cfl_err_clear(&e);
	t0 = now_s();
	if (cfl_provision(&o, prod, sizeof(prod), &e) != 0)
		die("cannot provision: %s", e.msg);
	printf("project: server 'localhost' + %d clients, mtls, ecdsa-p256, provisioned in %.2f "
	       "s\n",
	       set.logins, now_s() - t0);
	load_kit("localhost", 1, &kit_srv);
	load_kit("site-1", 0, &kit_cli);
	srv_tls = tls_for(&kit_srv, 1);
	cli_tls = tls_for(&kit_cli, 0);
}

/* Each process holds one connection per login at most, plus a few. */
static void raise_nofile(void)
{
	rlim_t need = (rlim_t)set.logins * 2 + 256;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
		return;
	rl.rlim_cur = need;
	if (rl.rlim_max < need || setrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("cannot raise the open-file limit to %lu: raise 'ulimit -Hn' or use --quick",
		    (unsigned long)need);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	struct cfl_loop *loop = NULL;
	struct cfl_err e;

	int logins_only = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			set.oneways = 20000;
			set.rtts = 2000;
			set.logins = 100;
		} else if (strcmp(argv[i], "--logins") == 0) {
			logins_only = 1; /* e.g. under a profiler */
		} else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc &&
		           atoi(argv[i + 1]) > 0) {
			window = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: bench_auth [--quick] [--logins] [--window N]\n");
			return 2;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	cfl_log_set_level(CFL_LOG_ERROR);
	for (int i = 0; i < MSG_SIZE; i++)
		body[i] = (uint8_t)('a' + i % 26);
	raise_nofile();
	make_kits();
	spawn_server();
	cfl_err_clear(&e);
	if (cfl_loop_new(&loop, &e) != 0)
		die("%s", e.msg);
	if (!logins_only)
		bench_messages(loop);
	bench_logins(loop);
	cfl_loop_free(loop);
	if (stop_child() != 0)
		die("the server process failed (see its message above)");
	cfl_tls_ctx_free(srv_tls);
	cfl_tls_ctx_free(cli_tls);
	(void)cfl__fs_rmtree(tmp_dir);
	return 0;
}
