/* Establishing connections: dialing (name resolution, trying each address without blocking,
 * the connect timeout) and listening (dual-stack sockets, accepting in batches). What happens
 * once TCP is up is in conn.c; the contract is cfl/conn.h. */
#define _GNU_SOURCE
#include "net/conn_int.h"

#include "cfl/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_BATCH 64
#define ACCEPT_PAUSE 100 /* ms without accepting after running out of descriptors */
#define MISMATCH     "(connection_security mismatch)"

/* --- addresses -------------------------------------------------------------------------- */

static void format_addr(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

	buf[0] = '\0';
	if (ss->ss_family == AF_INET && inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip)) != NULL) {
		snprintf(buf, size, "%s:%u", ip, ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		/* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; show them as IPv4. */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) &&
		    inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip, sizeof(ip)) != NULL)
			snprintf(buf, size, "%s:%u", ip, ntohs(s6->sin6_port));
		else if (inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip)) != NULL)
			snprintf(buf, size, "[%s]:%u", ip, ntohs(s6->sin6_port));
	}
}

static void note_addresses(struct cfl_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int one = 1;

	/* Small frames (requests, replies, WINDOWs) must not wait for Nagle's timer. */
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&ss, 0, sizeof(ss));
	if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0)
		format_addr(&ss, c->peer_addr, sizeof(c->peer_addr));
	len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(c->fd, (struct sockaddr *)&ss, &len) == 0)
		format_addr(&ss, c->local_addr, sizeof(c->local_addr));
}

/* --- dialing ------------------------------------------------------------------------- */

/* TCP is connected: start TLS or open. */
static void connected(struct cfl_conn *c)
{
	struct cfl_err err;

	note_addresses(c);
	if (c->ai_list != NULL)
		freeaddrinfo(c->ai_list);
	c->ai_list = c->ai_next = NULL;
	if (c->tls_ctx == NULL) {
		cfl__conn_open(c);
		return;
	}
	if (cfl_tls_new(c->tls_ctx, c->fd, c->is_server ? NULL : c->dial->host, &c->tls, &err) !=
	    0) {
		cfl__conn_fail(c, err.code, 0, "%s", err.msg);
		return;
	}
	c->state = CS_HANDSHAKE;
	if (c->is_server)
		(void)cfl_loop_watch(c->loop, c->fd, CFL_EV_READ, cfl__conn_on_io, c);
	else
		cfl__conn_handshake(c);
}

/* Starts a non-blocking connect to the next address; 0 when one is under way, CFL_ECONN when
 * none is left (c->dial->tried lists why each failed). */
static int connect_next(struct cfl_conn *c)
{
	char addr[CFL_CONN_ADDR_MAX];

	for (; c->ai_next != NULL; c->ai_next = c->ai_next->ai_next) {
		struct addrinfo *ai = c->ai_next;
		struct sockaddr_storage ss;

		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen < sizeof(ss) ? ai->ai_addrlen : sizeof(ss));
		format_addr(&ss, addr, sizeof(addr));
		c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd >= 0 &&
		    (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) &&
		    cfl_loop_watch(c->loop, c->fd, CFL_EV_WRITE, cfl__conn_on_io, c) == 0) {
			c->ai_next = ai->ai_next;
			return 0;
		}
		snprintf(c->dial->tried + strlen(c->dial->tried),
		         sizeof(c->dial->tried) - strlen(c->dial->tried), "%s%s: %s",
		         c->dial->tried[0] ? "; " : "", addr, strerror(errno));
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
	}
	return CFL_ECONN;
}

/* The pending connect finished: connected, or on to the next address. */
void cfl__conn_connect_result(struct cfl_conn *c)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	struct sockaddr_storage ss;
	socklen_t slen = sizeof(ss);
	char addr[CFL_CONN_ADDR_MAX] = "";

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
		soerr = errno;
	if (soerr == 0) {
		connected(c);
		return;
	}
	memset(&ss, 0, sizeof(ss));
	if (getpeername(c->fd, (struct sockaddr *)&ss, &slen) == 0)
		format_addr(&ss, addr, sizeof(addr));
	snprintf(c->dial->tried + strlen(c->dial->tried),
	         sizeof(c->dial->tried) - strlen(c->dial->tried), "%s%s%s%s",
	         c->dial->tried[0] ? "; " : "", addr, addr[0] ? ": " : "", strerror(soerr));
	cfl_loop_unwatch(c->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	if (connect_next(c) != 0)
		cfl__conn_fail(c, CFL_ECONN, 0, "cannot connect to %s:%d: %s", c->dial->host,
		               c->dial->port, c->dial->tried);
}

static void on_connect_timeout(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct cfl_conn *c = arg;
	double s = (double)c->connect_timeout_ms / 1000.0;

	(void)loop;
	(void)id;
	c->t_connect = 0;
	cfl__conn_hold(c);
	if (c->state == CS_CONNECTING)
		cfl__conn_fail(c, CFL_ETIMEDOUT, 0,
		               "cannot connect to %s:%d: no answer within %g s%s%s%s",
		               c->dial->host, c->dial->port, s, c->dial->tried[0] ? " (tried " : "",
		               c->dial->tried, c->dial->tried[0] ? ")" : "");
	else if (c->state == CS_HANDSHAKE && c->is_server)
		cfl__conn_fail(c, CFL_ETIMEDOUT, 0,
		               "the client did not complete the TLS handshake within %g s", s);
	else if (c->state == CS_HANDSHAKE)
		cfl__conn_fail(c, CFL_ETIMEDOUT, 0,
		               "the TLS handshake with %s:%d did not complete within %g s: the "
		               "server took the connection but did not answer (overloaded, a proxy "
		               "in the way, or a connection_security mismatch?)",
		               c->dial->host, c->dial->port, s);
	cfl__conn_release(c);
}

/* --- creating connections ---------------------------------------------------------------- */

static struct cfl_conn *conn_new(struct cfl_loop *loop, const struct cfl_conn_opts *opts,
                                 int is_server)
{
	struct cfl_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->loop = loop;
	c->fd = -1;
	c->is_server = is_server;
	c->next_id = is_server ? 2 : 1;
	c->max_payload = CFL_FRAME_MAX_PAYLOAD_PRELOGIN;
	c->cb = opts->cb;
	c->user = opts->user;
	c->connect_timeout_ms =
	        opts->connect_timeout_ms ? opts->connect_timeout_ms : CFL_CONN_CONNECT_TIMEOUT_MS;
	c->idle_timeout_ms =
	        opts->idle_timeout_ms ? opts->idle_timeout_ms : CFL_CONN_IDLE_TIMEOUT_MS;
	c->mode = CFL_SEC_CLEAR;
	if (opts->tls != NULL) {
		/* The connection holds its own reference: the context may be freed first. */
		c->tls_ctx = cfl_tls_ctx_ref(opts->tls);
		c->mode = cfl_tls_ctx_mode(opts->tls);
	}
	return c;
}

int cfl_conn_dial(struct cfl_loop *loop, const char *host, int port,
                  const struct cfl_conn_opts *opts, struct cfl_conn **out, struct cfl_err *e)
{
	struct addrinfo hints;
	struct cfl_conn *c;
	char portstr[16];
	int rc;

	*out = NULL;
	if (loop == NULL || opts == NULL || host == NULL || host[0] == '\0' ||
	    strlen(host) >= sizeof(c->dial->host) || port < 1 || port > 65535)
		return cfl_err_set(e, CFL_EINVAL, "bad address '%s:%d'", host ? host : "", port);
	if (opts->tls != NULL && cfl_tls_ctx_is_server(opts->tls))
		return cfl_err_set(e, CFL_EINVAL, "a server TLS context cannot dial");
	c = conn_new(loop, opts, 0);
	if (c != NULL && (c->dial = calloc(1, sizeof(*c->dial))) == NULL) {
		c->finalized = 1;
		cfl_conn_free(c);
		c = NULL;
	}
	if (c == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	memcpy(c->dial->host, host, strlen(host) + 1);
	c->dial->port = port;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(host, portstr, &hints, &c->ai_list);
	if (rc != 0) {
		c->ai_list = NULL;
		rc = cfl_err_set(e, CFL_ECONN, "cannot resolve '%s': %s", host, gai_strerror(rc));
		goto fail;
	}
	c->ai_next = c->ai_list;
	if (connect_next(c) != 0) {
		rc = cfl_err_set(e, CFL_ECONN, "cannot connect to %s:%d: %s", host, port,
		                 c->dial->tried);
		goto fail;
	}
	c->state = CS_CONNECTING;
	c->t_connect = cfl_loop_timer_add(loop, c->connect_timeout_ms, on_connect_timeout, c);
	*out = c;
	return 0;
fail:
	c->finalized = 1;
	cfl_conn_free(c);
	return rc;
}

/* --- listeners -------------------------------------------------------------------------- */

struct cfl_listener {
	struct cfl_loop *loop;
	int fd;
	int port;
	struct cfl_conn_opts opts; /* holds a reference on opts.tls */
	uint64_t t_pause;
	uint64_t warned_ms, unwarned; /* the last out-of-descriptors line, pauses since */
	int warned;
};

static void on_accept(struct cfl_loop *loop, int fd, int events, void *arg);

static struct cfl_conn *adopt(struct cfl_loop *loop, int fd, const struct cfl_conn_opts *opts,
                              const struct admit_slot *slot)
{
	struct cfl_conn *c = conn_new(loop, opts, 1);

	if (c == NULL)
		return NULL;
	c->fd = fd;
	if (slot != NULL)
		c->adm = *slot; /* before anything can close the socket */
	cfl__conn_hold(c);
	if (c->tls_ctx != NULL)
		c->t_connect =
		        cfl_loop_timer_add(loop, c->connect_timeout_ms, on_connect_timeout, c);
	connected(c);
	cfl__conn_release(c);
	return c;
}

struct cfl_conn *cfl__conn_adopt(struct cfl_loop *loop, int fd, const struct cfl_conn_opts *opts)
{
	return adopt(loop, fd, opts, NULL);
}

static void accepted(struct cfl_listener *l, int fd, const struct sockaddr_storage *ss)
{
	struct admit_slot slot;

	memset(&slot, 0, sizeof(slot));
	if (l->opts.admit != NULL &&
	    cfl__admit_accept(l->opts.admit, ss, fd, l->opts.admit_admin, &slot) != 0) {
		close(fd); /* refused before any TLS work; admit.c logged it */
		return;
	}
	if (adopt(l->loop, fd, &l->opts, &slot) == NULL) {
		CFL_WARN("listener: out of memory, dropping a connection");
		cfl__admit_release(&slot);
		close(fd);
	}
}

static void on_resume(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct cfl_listener *l = arg;

	(void)id;
	l->t_pause = 0;
	(void)cfl_loop_watch(loop, l->fd, CFL_EV_READ, on_accept, l);
}

/* Out of descriptors (or memory): accept-and-close one with the admission control's spare
 * descriptor (0; 1 when none was pending), else pause (-1), with one line a minute.
 * Level-triggered: never spin. */
static int out_of_fds(struct cfl_listener *l, int err)
{
	uint64_t now = cfl_loop_now_ms(l->loop);
	int rc = err == EMFILE && l->opts.admit != NULL ? cfl__admit_emfile(l->opts.admit, l->fd)
	                                                : -1;

	if (rc >= 0)
		return rc; /* 0: one taken and closed, go on; 1: none left */
	l->unwarned++;
	if (!l->warned || now - l->warned_ms >= CFL_ADMIT_LOG_MS) {
		CFL_WARN("listener on port %d: %s; pausing accepts for %d ms (%" PRIu64
		         " pauses since the last line)",
		         l->port, strerror(err), ACCEPT_PAUSE, l->unwarned);
		l->warned = 1;
		l->warned_ms = now;
		l->unwarned = 0;
	}
	cfl_loop_unwatch(l->loop, l->fd);
	l->t_pause = cfl_loop_timer_add(l->loop, ACCEPT_PAUSE, on_resume, l);
	return -1;
}

static void on_accept(struct cfl_loop *loop, int fd, int events, void *arg)
{
	struct cfl_listener *l = arg;
	struct sockaddr_storage ss;
	socklen_t len;
	int i, cfd;

	(void)loop;
	(void)events;
	for (i = 0; i < ACCEPT_BATCH; i++) {
		len = sizeof(ss);
		memset(&ss, 0, sizeof(ss));
		cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd >= 0) {
			accepted(l, cfd, &ss);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			if (out_of_fds(l, errno) == 0)
				continue; /* admit.c logs the refusal */
		} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
			CFL_WARN("listener on port %d: accept: %s", l->port, strerror(errno));
		}
		break;
	}
}

/* A non-blocking socket bound to `sa` and listening, or -1 with errno set. */
static int bind_listen(int family, const struct sockaddr *sa, socklen_t len, int dual_stack)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, zero = 0;
	int err;

	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (dual_stack)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, sa, len) == 0 && listen(fd, SOMAXCONN) == 0)
		return fd;
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

/* Every interface: "::" taking IPv4 too, or 0.0.0.0 on a host without IPv6. */
static int listen_any(int port)
{
	struct sockaddr_in6 a6;
	struct sockaddr_in a4;
	int fd;

	memset(&a6, 0, sizeof(a6));
	a6.sin6_family = AF_INET6;
	a6.sin6_addr = in6addr_any;
	a6.sin6_port = htons((uint16_t)port);
	fd = bind_listen(AF_INET6, (const struct sockaddr *)&a6, sizeof(a6), 1);
	if (fd >= 0 ||
	    (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL && errno != EPROTONOSUPPORT))
		return fd;
	memset(&a4, 0, sizeof(a4));
	a4.sin_family = AF_INET;
	a4.sin_addr.s_addr = htonl(INADDR_ANY);
	a4.sin_port = htons((uint16_t)port);
	return bind_listen(AF_INET, (const struct sockaddr *)&a4, sizeof(a4), 0);
}

/* A listening socket for host (NULL: all interfaces) and port, or -1 with `e` set. */
static int listen_socket(const char *host, int port, struct cfl_err *e)
{
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[16];
	int fd = -1, rc;

	if (host == NULL) {
		fd = listen_any(port);
	} else {
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
		snprintf(portstr, sizeof(portstr), "%d", port);
		rc = getaddrinfo(host, portstr, &hints, &res);
		if (rc != 0) {
			cfl_err_set(e, CFL_ECONN, "cannot resolve '%s': %s", host,
			            gai_strerror(rc));
			return -1;
		}
		for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
			fd = bind_listen(ai->ai_family, ai->ai_addr, ai->ai_addrlen, 0);
		rc = errno;
		freeaddrinfo(res);
		errno = rc;
	}
	if (fd < 0)
		cfl_err_set(e, CFL_ECONN, "cannot listen on %s port %d: %s%s",
		            host ? host : "all interfaces", port, strerror(errno),
		            errno == EADDRINUSE ? " (is another server running?)" : "");
	return fd;
}

int cfl_listener_new(struct cfl_loop *loop, const char *host, int port,
                     const struct cfl_conn_opts *opts, struct cfl_listener **out, struct cfl_err *e)
{
	struct cfl_listener *l;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	*out = NULL;
	if (loop == NULL || opts == NULL || port < 0 || port > 65535)
		return cfl_err_set(e, CFL_EINVAL, "bad listener arguments (port %d)", port);
	if (opts->tls != NULL && !cfl_tls_ctx_is_server(opts->tls))
		return cfl_err_set(e, CFL_EINVAL, "a listener needs a server TLS context");
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	l->loop = loop;
	l->opts = *opts;
	l->opts.tls = NULL;
	l->fd = listen_socket(host, port, e);
	if (l->fd < 0) {
		free(l);
		return e != NULL ? e->code : CFL_ECONN;
	}
	memset(&ss, 0, sizeof(ss));
	if (getsockname(l->fd, (struct sockaddr *)&ss, &len) == 0)
		l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                         : ((struct sockaddr_in *)&ss)->sin_port);
	if (cfl_loop_watch(loop, l->fd, CFL_EV_READ, on_accept, l) != 0) {
		close(l->fd);
		free(l);
		return cfl_err_set(e, CFL_EIO, "cannot watch the listening socket");
	}
	l->opts.tls = cfl_tls_ctx_ref(opts->tls);
	*out = l;
	return 0;
}

void cfl_listener_free(struct cfl_listener *l)
{
	if (l == NULL)
		return;
	cfl_loop_timer_cancel(l->loop, l->t_pause);
	cfl_loop_unwatch(l->loop, l->fd);
	close(l->fd);
	cfl_tls_ctx_free(l->opts.tls);
	free(l);
}

int cfl_listener_port(const struct cfl_listener *l)
{
	return l != NULL ? l->port : 0;
}
