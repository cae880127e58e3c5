/* Transport benchmark: cfl's mTLS connections beside baselines measured in the same run, two
 * processes on loopback (this process is the client, a forked child the server). It provisions
 * its own project (server "localhost", one client, mtls) into a temporary folder.
 *
 *   bulk      a 1 GiB body with cfl_conn_send_lent() (lent from memory) and
 *             cfl_conn_send_stream() (copied from a read function) against a minimal OpenSSL
 *             TLS 1.3 mTLS pipe and plain TCP (1 MiB writes, blocking sockets); medians of 5
 *             interleaved runs, and of the 5 ratios of lent to OpenSSL in the same run
 *   messages  64-byte request/reply round trips and one-way messages on one cfl_conn, beside a
 *             64-byte TCP ping-pong with the same server process; 5 paired runs
 *   idle      the server's VmRSS per idle mTLS connection, and the handshake rate
 *
 * Every wait has a deadline; a server process dies with its parent (PR_SET_PDEATHSIG) or after
 * BENCH_CHILD_SECS (alarm), and is reaped on every path. Usage: bench_transport [--quick] */
#define _GNU_SOURCE
#include "cfl/conn.h"
#include "cfl/err.h"
#include "cfl/kit.h"
#include "cfl/log.h"
#include "cfl/loop.h"
#include "cfl/provision.h"
#include "cfl/tls.h"
#include "util/fs.h"

#define WAIT_MS          120000 /* every wait gives up after this */
#define BENCH_NAME       "bench_transport"
#define BENCH_WAIT_S     (WAIT_MS / 1e3)
#define BENCH_CHILD_SECS 900 /* a server process still alive after this is killed (SIGALRM) */
#include "bench_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define BUF_SIZE     ((size_t)1 << 20) /* the bulk source, and each baseline write and read */
#define MSG_SIZE     64
#define RUNS         5
#define NOFILE_MIN   12000
#define DIAL_WINDOW  64                /* handshakes in flight in the idle-connection test */
#define ONEWAY_QUEUE ((size_t)1 << 20) /* one-way bytes queued before letting the loop run */
#define LOOPBACK     "127.0.0.1"
/* cfl offers TLS_AES_128_GCM_SHA256 first, with server preference (src/net/tls.c): the
 * baseline uses the same suite so that both sides of the comparison run the same cipher. */
#define BASE_SUITE "TLS_AES_128_GCM_SHA256"

enum { B_CFL, B_COPY, B_OSSL, B_TCP, B_KINDS };
#define MSG_RUNS 5 /* paired runs of TCP ping-pong and cfl request/reply */

static struct {
	uint64_t bulk;
	int rtts, oneways, conns;
} set = {(uint64_t)1 << 30, 20000, 200000, 5000};

static struct {
	double bulk[B_KINDS][RUNS]; /* MB/s */
	double tcp_rtt, rtt, rtt_ratio, oneway, hs_rate, hs_secs;
	long srv_before, srv_after, cli_before, cli_after; /* VmRSS, KiB */
} res;

static int only_messages, only_bulk; /* --messages, --bulk */
static struct cfl_kitcfg kit_srv, kit_cli;
static int cfl_port; /* where the server process serves cfl */
static struct cfl_tls_ctx *srv_tls, *cli_tls;
static uint8_t src_buf[BUF_SIZE], rx_buf[BUF_SIZE];
static char cfl_cipher[96], base_cipher[96];

/* --- the server process ----------------------------------------------------------------- */

static void reap(void)
{
	if (stop_child() != 0)
		die("the server process failed (see its message above)");
}

/* --- sockets, kits and TLS ---------------------------------------------------------------- */

/* Blocking-socket deadlines and no Nagle delay (cfl sets TCP_NODELAY on its sockets too). */
static void tune(int fd)
{
	struct timeval tv = {WAIT_MS / 1000, 0};
	int one = 1;

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	return a;
}

/* A listening socket on an ephemeral loopback port, stored in *port. */
static int tcp_listen(int *port)
{
	struct sockaddr_in a = loopback(0);
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 128) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		die("cannot listen on %s: %s", LOOPBACK, strerror(errno));
	*port = ntohs(a.sin_port);
	return fd;
}

static int tcp_connect(int port)
{
	struct sockaddr_in a = loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("cannot connect to %s:%d: %s", LOOPBACK, port, strerror(errno));
	tune(fd);
	return fd;
}

/* The kits name ports, unused: the server process listens on a port the kernel picks and tells
 * it (a port picked here and closed could be taken by another process before the server binds
 * it). */
static void write_project(const char *path)
{
	FILE *f;

	if ((f = fopen(path, "w")) == NULL)
		die("cannot write '%s': %s", path, strerror(errno));
	fputs("api_version: 3\nname: bench\nconnection_security: mtls\nparticipants:\n"
	      "  - {name: localhost, type: server, org: bench, fed_learn_port: 8002,\n"
	      "     admin_port: 8003, host_names: [localhost, 127.0.0.1]}\n"
	      "  - {name: site-1, type: client, org: bench}\n",
	      f);
	if (fclose(f) != 0)
		die("cannot write '%s'", path);
}

static struct cfl_tls_ctx *kit_tls(const char *prod, const char *name, struct cfl_kitcfg *k,
                                   int server)
{
	struct cfl_tls_config cfg = {server, CFL_SEC_MTLS, k->cert, k->key, k->root_ca, NULL, NULL};
	struct cfl_tls_ctx *ctx = NULL;
	char dir[PATH_MAX];
	struct cfl_err e;

	cfl_err_clear(&e);
	if (cfl__path_join(dir, sizeof(dir), prod, name) != 0 ||
	    cfl_kitcfg_load(dir, server, k, &e) != 0)
		die("cannot load the kit of '%s': %s", name, e.msg);
	if (k->mode != CFL_SEC_MTLS)
		die("the kit of '%s' is not in mtls mode", name);
	if (!server)
		cfg.ca_file = cfl_kitcfg_trust_file(k);
	if (cfl_tls_ctx_new(&cfg, &ctx, &e) != 0)
		die("tls context of '%s': %s", name, e.msg);
	return ctx;
}

static void make_kits(void)
{
	char project[PATH_MAX], ws[PATH_MAX], prod[PATH_MAX];
	struct cfl_provision_opts o = {project, ws, -1, NULL};
	struct cfl_err e;

	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/cfl-bench-transport.XXXXXX");
	if (mkdtemp(tmp_dir) == NULL) {
		tmp_dir[0] = '\0';
		die("mkdtemp: %s", strerror(errno));
	}
	if (cfl__path_join(project, sizeof(project), tmp_dir, "project.yml") != 0 ||
	    cfl__path_join(ws, sizeof(ws), tmp_dir, "workspace") != 0)
		die("temporary path too long");
	write_project(project);
	cfl_err_clear(&e);
	if (cfl_provision(&o, prod, sizeof(prod), &e) != 0)
		die("cannot provision: %s", e.msg);
	srv_tls = kit_tls(prod, "localhost", &kit_srv, 1);
	cli_tls = kit_tls(prod, "site-1", &kit_cli, 0);
}

/* A blocking byte pipe, TLS or plain: the two baselines share their loops. */
struct io {
	int fd;
	SSL *ssl;
	SSL_CTX *ctx;
};

/* The baseline's TLS: the same kit files, TLS 1.3 only, the peer verified, as cfl does. */
static void ossl_open(struct io *p, int server)
{
	const struct cfl_kitcfg *k = server ? &kit_srv : &kit_cli;
	SSL_CTX *x = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if ((p->ctx = x) == NULL || SSL_CTX_set_min_proto_version(x, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(x, BASE_SUITE) != 1 ||
	    SSL_CTX_use_certificate_chain_file(x, k->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(x, k->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(x, k->root_ca, NULL) != 1)
		die("openssl baseline: cannot set up the context: %s",
		    ERR_reason_error_string(ERR_get_error()));
	SSL_CTX_set_verify(x, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
	                   NULL);
	if ((p->ssl = SSL_new(x)) == NULL || SSL_set_fd(p->ssl, p->fd) != 1 ||
	    (!server && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p->ssl), LOOPBACK) != 1))
		die("openssl baseline: cannot make a session");
	if ((server ? SSL_accept(p->ssl) : SSL_connect(p->ssl)) != 1)
		die("openssl baseline: handshake failed: %s",
		    ERR_reason_error_string(ERR_get_error()));
}

static void io_write(struct io *p, const uint8_t *buf, size_t len)
{
	ssize_t r;
	size_t n;

	for (; len > 0; buf += n, len -= n) {
		if (p->ssl != NULL) {
			if (SSL_write_ex(p->ssl, buf, len, &n) != 1)
				die("SSL_write failed: %s", strerror(errno));
		} else {
			if ((r = send(p->fd, buf, len, MSG_NOSIGNAL)) <= 0)
				die("send: %s", strerror(errno));
			n = (size_t)r;
		}
	}
}

/* Reads what has arrived, at most `len` bytes; 0 at the end of the stream. */
static size_t io_read(struct io *p, uint8_t *buf, size_t len)
{
	ssize_t r;
	size_t n = 0;
	int err;

	if (p->ssl == NULL) {
		if ((r = recv(p->fd, buf, len, 0)) < 0)
			die("recv: %s", strerror(errno));
		return (size_t)r;
	}
	errno = 0;
	if (SSL_read_ex(p->ssl, buf, len, &n) == 1)
		return n;
	err = SSL_get_error(p->ssl, 0);
	if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && errno == 0))
		return 0;
	die("SSL_read failed (SSL error %d): %s", err, strerror(errno));
}

static void io_read_full(struct io *p, uint8_t *buf, size_t len)
{
	size_t n;

	for (; len > 0; buf += n, len -= n)
		if ((n = io_read(p, buf, len)) == 0)
			die("peer closed the connection early");
}

static void io_close(struct io *p)
{
	if (p->ssl != NULL)
		(void)SSL_shutdown(p->ssl);
	SSL_free(p->ssl);
	SSL_CTX_free(p->ctx);
	close(p->fd);
}

/* --- the cfl server process --------------------------------------------------------------- */

/* Server state: body bytes of the current message, one-way messages, connections seen. */
static uint64_t srv_got, srv_oneways;
static int srv_opened, srv_closed;

static void sv_open(struct cfl_conn *c, void *user)
{
	(void)user;
	/* The benchmark's client stands for a logged-in peer, which may stream. */
	if (cfl_conn_set_max_payload(c, CFL_FRAME_MAX_PAYLOAD) != 0)
		die("cannot raise the payload limit");
	if (++srv_opened == set.conns)
		tell(1);
}

/* Every request gets a 64-byte reply: "<body bytes received> <one-way messages so far>". */
static void sv_reply(struct cfl_conn *c, uint64_t id)
{
	uint8_t body[MSG_SIZE] = {0};
	struct cfl_frame f;

	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_REPLY;
	f.ref = id;
	f.body = body;
	f.body_len = sizeof(body);
	snprintf((char *)body, sizeof(body), "%" PRIu64 " %" PRIu64, srv_got, srv_oneways);
	if (cfl_conn_send(c, &f) != 0)
		die("cannot send a reply");
}

static void sv_msg(struct cfl_conn *c, const struct cfl_frame *f, int more, void *user)
{
	(void)user;
	srv_got = f->body_len;
	if (f->type == CFL_FRAME_T_ONEWAY)
		srv_oneways++;
	else if (!more)
		sv_reply(c, f->id);
}

static void sv_chunk(struct cfl_conn *c, uint64_t id, const uint8_t *data, size_t len, int last,
                     void *user)
{
	(void)data; /* discarded */
	(void)user;
	srv_got += len;
	if (last)
		sv_reply(c, id);
}

static void sv_close(struct cfl_conn *c, int code, const char *reason, void *user)
{
	(void)c;
	(void)code; /* the client's orderly close arrives as CFL_ECLOSED */
	(void)reason;
	(void)user;
	if (++srv_closed == set.conns)
		tell(2);
}

/* The TCP ping-pong baseline's echo, served by the same process and loop as cfl. */
static void echo_io(struct cfl_loop *loop, int fd, int events, void *arg)
{
	uint8_t buf[4096];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	(void)events;
	(void)arg;
	if ((n < 0 && (errno == EAGAIN || errno == EINTR)) ||
	    (n > 0 && send(fd, buf, (size_t)n, MSG_NOSIGNAL) == n))
		return;
	cfl_loop_unwatch(loop, fd);
	close(fd);
}

static void echo_accept(struct cfl_loop *loop, int fd, int events, void *arg)
{
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)events;
	(void)arg;
	if (c < 0)
		return;
	tune(c);
	if (cfl_loop_watch(loop, c, CFL_EV_READ, echo_io, NULL) != 0)
		close(c);
}

static void on_ctl(struct cfl_loop *loop, int fd, int events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
	cfl_loop_stop(loop); /* the parent closed the control pipe */
}

/* Serves cfl and the TCP echo on ports the kernel picks, told to the parent in that order,
 * until the parent closes the control pipe. */
static int cfl_server(const void *arg)
{
	struct cfl_conn_opts o = {
	        srv_tls, {sv_open, sv_msg, sv_chunk, NULL, sv_close}, NULL, 0, 0, NULL, 0};
	struct cfl_listener *l = NULL;
	struct cfl_loop *loop = NULL;
	struct cfl_err e;
	int port, lfd = tcp_listen(&port), rc;

	(void)arg;
	cfl_err_clear(&e);
	if (cfl_loop_new(&loop, &e) != 0 || cfl_listener_new(loop, LOOPBACK, 0, &o, &l, &e) != 0)
		die("cannot serve: %s", e.msg);
	if (cfl_loop_watch(loop, ctl_fd, CFL_EV_READ, on_ctl, NULL) != 0 ||
	    cfl_loop_watch(loop, lfd, CFL_EV_READ, echo_accept, NULL) != 0)
		die("cannot watch the control pipe and the echo port");
	tell(cfl_listener_port(l));
	tell(port);
	rc = cfl_loop_run(loop);
	cfl_listener_free(l);
	return rc;
}

/* Starts the cfl server process: sets cfl_port, returns the TCP echo's port. */
static int spawn_cfl(void)
{
	cfl_port = spawn(cfl_server, NULL);
	return read_status(NULL, "the echo port");
}

/* --- the cfl client ----------------------------------------------------------------------- */

/* The client side: one connection (bulk, messages) or a fleet of them (idle connections). */
struct cli {
	struct cfl_loop *loop;
	struct cfl_conn_opts o;
	struct cfl_conn *c, **conns; /* conns: every open connection; &c when there is one */
	int n, dialed, opened, closing, closed, replies, left, sent, status;
	uint64_t off; /* stream bytes read from the source */
	double t_reply;
	char reply[MSG_SIZE + 1];
};

/* Runs `loop` until *flag reaches `want`, within WAIT_MS. */
static void run_until(struct cfl_loop *loop, const int *flag, int want, const char *what)
{
	double end = now_s() + WAIT_MS / 1e3;

	while (*flag < want) {
		if (interrupted)
			die("interrupted");
		if (now_s() > end)
			die("timed out waiting for %s", what);
		if (cfl_loop_run_once(loop, 10) < 0)
			die("event loop failed");
	}
}

/* Keeps DIAL_WINDOW handshakes in flight: thousands at once would only wait in the listen
 * backlog and run into the connect timeout. */
static void cli_dial(struct cli *k)
{
	struct cfl_conn *c;
	struct cfl_err e;

	for (; k->dialed < k->n && k->dialed - k->opened < DIAL_WINDOW; k->dialed++) {
		cfl_err_clear(&e);
		if (cfl_conn_dial(k->loop, LOOPBACK, cfl_port, &k->o, &c, &e) != 0)
			die("cannot dial %s:%d: %s", LOOPBACK, cfl_port, e.msg);
	}
}

static void request(struct cli *k)
{
	struct cfl_frame f;

	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_REQUEST;
	f.body = src_buf;
	f.body_len = MSG_SIZE;
	if (cfl_conn_send(k->c, &f) != 0)
		die("cannot send a request");
}

static void cl_open(struct cfl_conn *c, void *user)
{
	struct cli *k = user;

	/* A logged-in site's side, as the server's (cfl_auth_client raises it at login). */
	if (cfl_conn_set_max_payload(c, CFL_FRAME_MAX_PAYLOAD) != 0)
		die("cannot raise the payload limit");
	k->conns[k->opened++] = c;
	snprintf(cfl_cipher, sizeof(cfl_cipher), "%s %s", cfl_conn_tls_version(c),
	         cfl_conn_tls_cipher(c));
	cli_dial(k);
}

/* A reply: note it, and send the next request while round trips are left. */
static void cl_msg(struct cfl_conn *c, const struct cfl_frame *f, int more, void *user)
{
	struct cli *k = user;
	size_t n = f->body_len < MSG_SIZE ? f->body_len : MSG_SIZE;

	(void)c;
	(void)more;
	k->t_reply = now_s();
	memcpy(k->reply, f->body, n);
	k->reply[n] = '\0';
	k->replies++;
	if (k->left > 0 && --k->left > 0)
		request(k);
}

static void cl_close(struct cfl_conn *c, int code, const char *reason, void *user)
{
	struct cli *k = user;

	(void)c;
	if (!k->closing || code != 0)
		die("cfl connection closed (%s): %s", cfl_strerror(code), reason);
	k->closed++;
}

/* Opens `n` mTLS connections to the cfl server and waits until all are open. */
static void cli_open(struct cli *k, int n)
{
	struct cfl_conn_opts o = {
	        cli_tls, {cl_open, cl_msg, NULL, NULL, cl_close}, k, WAIT_MS / 4, 0, NULL, 0};
	struct cfl_err e;

	memset(k, 0, sizeof(*k));
	k->o = o;
	k->n = n;
	k->conns = n == 1 ? &k->c : calloc((size_t)n, sizeof(*k->conns));
	cfl_err_clear(&e);
	if (k->conns == NULL || cfl_loop_new(&k->loop, &e) != 0)
		die("cannot make the client: %s", e.msg[0] ? e.msg : "out of memory");
	cli_dial(k);
	run_until(k->loop, &k->opened, n, "the cfl connections to open");
}

static void cli_close(struct cli *k)
{
	k->closing = 1;
	for (int i = 0; i < k->n; i++)
		cfl_conn_close(k->conns[i], "benchmark done");
	run_until(k->loop, &k->closed, k->n, "the cfl connections to close");
	cfl_loop_free(k->loop);
	if (k->conns != &k->c)
		free(k->conns);
}

/* The numbers of the last reply: body bytes the server received, one-way messages so far. */
static uint64_t reply_num(const struct cli *k, int second)
{
	char *end;
	uint64_t v = strtoull(k->reply, &end, 10);

	return second ? strtoull(end, NULL, 10) : v;
}

/* --- bulk ------------------------------------------------------------------------------- */

/* The stream's source lent: the same static 1 MiB over and over, without a copy. */
static int bulk_lend(void *arg, uint64_t off, size_t len, const uint8_t **p)
{
	size_t at = (size_t)(off % BUF_SIZE), n = len < BUF_SIZE - at ? len : BUF_SIZE - at;

	(void)arg;
	*p = src_buf + at;
	return (int)n;
}

/* The stream's source copied: the same static 1 MiB over and over. */
static int bulk_read(void *arg, uint8_t *buf, size_t len)
{
	struct cli *k = arg;
	size_t at = (size_t)(k->off % BUF_SIZE), n = len < BUF_SIZE - at ? len : BUF_SIZE - at;

	memcpy(buf, src_buf + at, n);
	k->off += n;
	return (int)n;
}

static void bulk_done(struct cfl_conn *c, uint64_t id, int status, void *arg)
{
	struct cli *k = arg;

	(void)c;
	(void)id;
	k->status = status;
	k->sent = 1;
}

static double bulk_cfl(int lent)
{
	struct cfl_frame head;
	struct cli k;
	double t0;

	spawn_cfl();
	cli_open(&k, 1);
	memset(&head, 0, sizeof(head));
	head.type = CFL_FRAME_T_REQUEST;
	t0 = now_s();
	if ((lent ? cfl_conn_send_lent(k.c, &head, set.bulk, bulk_lend, &k, bulk_done)
	          : cfl_conn_send_stream(k.c, &head, set.bulk, bulk_read, &k, bulk_done)) != 0)
		die("cannot start the stream");
	run_until(k.loop, &k.replies, 1, "the acknowledgement of the body");
	run_until(k.loop, &k.sent, 1, "the end of the stream");
	if (k.status != 0 || reply_num(&k, 0) != set.bulk)
		die("stream status %d, reply '%s'", k.status, k.reply);
	cli_close(&k);
	reap();
	return (double)set.bulk / (k.t_reply - t0) / 1e6;
}

/* Baseline server: one connection; reads the whole body in 1 MiB reads, acknowledges with one
 * byte, then reads until the client's end of stream. */
static int base_server(const void *arg)
{
	struct io p = {-1, NULL, NULL};
	int port, lfd = tcp_listen(&port);
	struct pollfd pf = {lfd, POLLIN, 0};
	uint64_t got = 0;
	size_t n;

	tell(port);
	if (poll(&pf, 1, WAIT_MS) != 1 || (p.fd = accept(lfd, NULL, NULL)) < 0)
		die("no connection to accept");
	tune(p.fd);
	if (*(const int *)arg)
		ossl_open(&p, 1);
	for (; got < set.bulk; got += n)
		if ((n = io_read(&p, rx_buf, BUF_SIZE)) == 0)
			die("client closed after %" PRIu64 " bytes", got);
	io_write(&p, (const uint8_t *)"k", 1);
	while (io_read(&p, rx_buf, BUF_SIZE) > 0)
		;
	io_close(&p);
	close(lfd);
	return 0;
}

static double bulk_base(int tls)
{
	int port = spawn(base_server, &tls);
	struct io p = {tcp_connect(port), NULL, NULL};
	uint64_t off;
	uint8_t ack;
	double t0, t1;

	if (tls) {
		ossl_open(&p, 0);
		snprintf(base_cipher, sizeof(base_cipher), "%s %s", SSL_get_version(p.ssl),
		         SSL_get_cipher_name(p.ssl));
	}
	t0 = now_s();
	for (off = 0; off < set.bulk; off += BUF_SIZE)
		io_write(&p, src_buf,
		         set.bulk - off < BUF_SIZE ? (size_t)(set.bulk - off) : BUF_SIZE);
	io_read_full(&p, &ack, 1);
	t1 = now_s();
	io_close(&p);
	reap();
	return (double)set.bulk / (t1 - t0) / 1e6;
}

/* Runs of the four kinds interleaved, each run in another order, so that a noisy neighbour
 * hurts all of them alike. */
static void bench_bulk(void)
{
	static const char *const name[B_KINDS] = {"cfl", "cfl-copy", "openssl", "tcp"};

	for (int run = 0; run < RUNS; run++) {
		fprintf(stderr, "bulk run %d/%d:", run + 1, RUNS);
		for (int i = 0; i < B_KINDS; i++) {
			int kind = (i + run) % B_KINDS;

			res.bulk[kind][run] = kind == B_CFL || kind == B_COPY
			                              ? bulk_cfl(kind == B_CFL)
			                              : bulk_base(kind == B_OSSL);
			fprintf(stderr, " %s %.0f MB/s", name[kind], res.bulk[kind][run]);
		}
		fputc('\n', stderr);
	}
}

/* --- small messages --------------------------------------------------------------------- */

static double pingpong(int port)
{
	struct io p = {tcp_connect(port), NULL, NULL};
	uint8_t buf[MSG_SIZE];
	double t0 = now_s();

	for (int i = 0; i < set.rtts; i++) {
		io_write(&p, src_buf, MSG_SIZE);
		io_read_full(&p, buf, MSG_SIZE);
	}
	t0 = now_s() - t0;
	close(p.fd);
	return set.rtts / t0;
}

/* One-way messages per second, timed up to the reply to a request sent after them. */
static double oneway_cfl(struct cli *k)
{
	struct cfl_frame f;
	double t0 = now_s(), end = t0 + WAIT_MS / 1e3;
	int sent = 0, rc, want = k->replies + 1;

	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_ONEWAY;
	f.body = src_buf;
	f.body_len = MSG_SIZE;
	while (sent < set.oneways) {
		rc = cfl_conn_queued(k->c) < ONEWAY_QUEUE ? cfl_conn_send(k->c, &f) : CFL_EAGAIN;
		if (rc == 0) {
			sent++;
			continue;
		}
		if (rc != CFL_EAGAIN)
			die("cannot send a one-way message: %s", cfl_strerror(rc));
		if (interrupted || now_s() > end)
			die("one-way messages: interrupted or timed out");
		if (cfl_loop_run_once(k->loop, 10) < 0)
			die("event loop failed");
	}
	request(k);
	run_until(k->loop, &k->replies, want, "the reply after the one-way messages");
	if (reply_num(k, 1) != (uint64_t)set.oneways)
		die("the server received %" PRIu64 " of %d one-way messages", reply_num(k, 1),
		    set.oneways);
	return set.oneways / (k->t_reply - t0);
}

/* MSG_RUNS pairs of a TCP ping-pong run and a cfl request/reply run, each pair in another
 * order; the medians of each and of the pairs' ratios. */
static void bench_messages(void)
{
	int port = spawn_cfl();
	double tcp[MSG_RUNS], rtt[MSG_RUNS], ratio[MSG_RUNS], t0;
	struct cli k;

	cli_open(&k, 1);
	for (int r = 0; r < MSG_RUNS; r++) {
		if (r % 2 == 0)
			tcp[r] = pingpong(port);
		k.left = set.rtts;
		k.replies = 0;
		t0 = now_s();
		request(&k);
		run_until(k.loop, &k.replies, set.rtts, "the round trips");
		rtt[r] = set.rtts / (k.t_reply - t0);
		if (r % 2 == 1)
			tcp[r] = pingpong(port);
		ratio[r] = rtt[r] / tcp[r];
	}
	res.tcp_rtt = median(tcp, MSG_RUNS);
	res.rtt = median(rtt, MSG_RUNS);
	res.rtt_ratio = median(ratio, MSG_RUNS);
	res.oneway = oneway_cfl(&k);
	cli_close(&k);
	reap();
}

/* --- idle connections ------------------------------------------------------------------- */

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("getrlimit: %s", strerror(errno));
	if (rl.rlim_cur >= NOFILE_MIN)
		return;
	rl.rlim_cur = NOFILE_MIN;
	if (rl.rlim_max < NOFILE_MIN)
		rl.rlim_max = NOFILE_MIN;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("cannot raise the open-file limit (RLIMIT_NOFILE) to %d: %s; raise the hard "
		    "limit ('ulimit -Hn') or use --quick",
		    NOFILE_MIN, strerror(errno));
}

static long rss_kib(pid_t pid)
{
	char path[64], line[256], *end;
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		die("cannot open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) != 0)
			continue;
		errno = 0;
		kib = strtol(line + 6, &end, 10);
		if (errno != 0 || end == line + 6)
			kib = -1;
		break;
	}
	fclose(f);
	if (kib < 0)
		die("no VmRSS in %s", path);
	return kib;
}

static void bench_idle(void)
{
	struct cli k;
	double t0;

	raise_nofile(); /* before the fork: the server process inherits the limit */
	spawn_cfl();
	res.srv_before = rss_kib(child);
	res.cli_before = rss_kib(getpid());
	t0 = now_s();
	cli_open(&k, set.conns);
	res.hs_secs = now_s() - t0;
	res.hs_rate = set.conns / res.hs_secs;
	if (read_status(k.loop, "the server to see every connection open") != 1)
		die("unexpected status from the server");
	res.srv_after = rss_kib(child);
	res.cli_after = rss_kib(getpid());
	cli_close(&k);
	if (read_status(NULL, "the server to see every connection closed") != 2)
		die("unexpected status from the server");
	reap();
}

/* --- main ------------------------------------------------------------------------------- */

static void print_messages(void)
{
	printf("small messages, 64-byte bodies, one connection, medians of %d paired runs\n"
	       "  TCP ping-pong (baseline)         %8.0f round trips/s  (%d a run)\n"
	       "  cfl request/reply (mTLS)         %8.0f round trips/s  (%d a run, %.2f of TCP;\n"
	       "                                   median of the pairs' ratios %.2f, target >= "
	       "0.80)\n"
	       "  cfl one-way (mTLS)               %8.0f messages/s     (%d, then a request)\n\n",
	       MSG_RUNS, res.tcp_rtt, set.rtts, res.rtt, set.rtts, res.rtt / res.tcp_rtt,
	       res.rtt_ratio, res.oneway, set.oneways);
}

static void print_bulk(void)
{
	static const char *const label[B_KINDS] = {"cfl mTLS, lent (cfl_conn_send_lent)",
	                                           "cfl mTLS, copied (send_stream)",
	                                           "OpenSSL TLS 1.3 mTLS pipe", "plain TCP"};
	double med[B_KINDS], s[RUNS], pair[RUNS];

	printf("bulk: %" PRIu64 " MiB body, MB/s, %d runs   ", set.bulk >> 20, RUNS);
	for (int r = 0; r < RUNS; r++)
		printf(" %6d", r + 1);
	printf("  median\n");
	for (int k = 0; k < B_KINDS; k++) {
		memcpy(s, res.bulk[k], sizeof(s));
		med[k] = median(s, RUNS);
		printf("  %-34s", label[k]);
		for (int r = 0; r < RUNS; r++)
			printf(" %6.0f", res.bulk[k][r]);
		printf(" %7.0f\n", med[k]);
	}
	for (int r = 0; r < RUNS; r++)
		pair[r] = res.bulk[B_CFL][r] / res.bulk[B_OSSL][r];
	printf("  ratio cfl lent / OpenSSL    %.2f  (median of paired runs %.2f; target >= 0.95)\n"
	       "  ratio cfl copied / OpenSSL  %.2f\n"
	       "  ratio cfl lent / TCP        %.2f\n\n",
	       med[B_CFL] / med[B_OSSL], median(pair, RUNS), med[B_COPY] / med[B_OSSL],
	       med[B_CFL] / med[B_TCP]);
}

static void print_results(void)
{
	printf("cfl transport benchmark: 2 processes on loopback (client, forked server)\n"
	       "  cfl: %s; OpenSSL baseline: %s\n\n",
	       cfl_cipher, base_cipher);
	print_bulk();
	print_messages();
	printf("idle connections: %d mTLS, one cfl_loop per process\n"
	       "  handshakes                       %8.0f connections/s (%.2f s, %d in flight)\n",
	       set.conns, res.hs_rate, res.hs_secs, DIAL_WINDOW);
	printf("  server VmRSS %7ld -> %7ld KiB  %6.1f KiB per connection\n"
	       "  client VmRSS %7ld -> %7ld KiB  %6.1f KiB per connection\n",
	       res.srv_before, res.srv_after, (double)(res.srv_after - res.srv_before) / set.conns,
	       res.cli_before, res.cli_after, (double)(res.cli_after - res.cli_before) / set.conns);
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	for (int i = 1; i < argc; i++) {
		int help = strcmp(argv[i], "--help") == 0;

		if (strcmp(argv[i], "--quick") == 0) {
			set.bulk = (uint64_t)64 << 20;
			set.rtts = 2000;
			set.oneways = 20000;
			set.conns = 500;
		} else if (strcmp(argv[i], "--messages") == 0) {
			only_messages = 1;
		} else if (strcmp(argv[i], "--bulk") == 0) {
			only_bulk = 1;
		} else {
			fprintf(help ? stdout : stderr,
			        "usage: bench_transport [--quick] [--messages | --bulk]\n"
			        "  --quick     64 MiB, 2,000 round trips, 20,000 one-way, 500 "
			        "connections\n"
			        "  --messages  only the small messages (e.g. under a profiler)\n"
			        "  --bulk      only the bulk transfers\n");
			return help ? 0 : 2;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: blocking calls return and the run stops */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	cfl_log_set_level(CFL_LOG_ERROR);
	for (size_t i = 0; i < BUF_SIZE; i++)
		src_buf[i] = (uint8_t)(i * 131 + 7);
	make_kits();
	if (only_messages) {
		bench_messages();
		print_messages();
	} else if (only_bulk) {
		bench_bulk();
		print_bulk();
	} else {
		bench_bulk();
		bench_messages();
		bench_idle();
		print_results();
	}
	cfl_tls_ctx_free(srv_tls);
	cfl_tls_ctx_free(cli_tls);
	(void)cfl__fs_rmtree(tmp_dir);
	return 0;
}
