/* bench_transport's cfl server process: serves cfl (replies to requests, counts one-way
 * messages and connections) and the TCP ping-pong baseline's echo on one loop. */
#define _GNU_SOURCE
#include "transport.h"

#include "cfl/err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int cfl_port;

/* Server state: body bytes of the current message, one-way messages, connections seen. */
static uint64_t srv_got, srv_oneways;
static int srv_opened, srv_closed;

static void sv_open(struct cfl_conn *c, void *user)
{
	(void)user;
	/* The benchmark's client stands for a logged-in peer, which may stream. */
	if (cfl_conn_set_max_payload(c, CFL_FRAME_MAX_PAYLOAD) != 0)
		bt_die("cannot raise the payload limit");
	if (++srv_opened == set.conns)
		bt_tell(1);
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
		bt_die("cannot send a reply");
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
		bt_tell(2);
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
		bt_die("cannot serve: %s", e.msg);
	if (cfl_loop_watch(loop, bt_ctl_fd(), CFL_EV_READ, on_ctl, NULL) != 0 ||
	    cfl_loop_watch(loop, lfd, CFL_EV_READ, echo_accept, NULL) != 0)
		bt_die("cannot watch the control pipe and the echo port");
	bt_tell(cfl_listener_port(l));
	bt_tell(port);
	rc = cfl_loop_run(loop);
	cfl_listener_free(l);
	return rc;
}

/* Starts the cfl server process: sets cfl_port, returns the TCP echo's port. */
int spawn_cfl(void)
{
	cfl_port = bt_spawn(cfl_server, NULL);
	return bt_read_status(NULL, "the echo port");
}
