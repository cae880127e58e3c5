/* The hostile suite's plain sockets, for bytes that are not frames (under the kit's TLS when the
 * server uses it), and what it reads about the server process itself. */
#include "hostile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* --- plain sockets ---------------------------------------------------------------------------- */

static void sock_addr(int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "";

	buf[0] = '\0';
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u", ip, ntohs(s4->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u", ip, ntohs(s6->sin6_port));
	}
}

static int wait_fd(int fd, int events, uint64_t ms)
{
	struct pollfd p = {fd, (short)events, 0};

	return poll(&p, 1, (int)ms);
}

/* A non-blocking connect that gives up after H_WAIT_MS. */
static int connect_one(const struct addrinfo *a)
{
	int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK, a->ai_protocol), err = 0;
	socklen_t len = sizeof(err);

	if (fd < 0)
		return -1;
	if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
		return fd;
	if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, H_WAIT_MS) == 1 &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
		return fd;
	close(fd);
	return -1;
}

static int tcp_connect(const struct h_env *e, char *why, size_t n)
{
	struct addrinfo hints = {0}, *res = NULL;
	char port[16];
	int fd = -1;

	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", e->cfg.port);
	if (getaddrinfo(e->cfg.host, port, &hints, &res) != 0) {
		snprintf(why, n, "cannot resolve '%s'", e->cfg.host);
		return -1;
	}
	for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next)
		fd = connect_one(a);
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(why, n, "cannot connect to %s:%d", e->cfg.host, e->cfg.port);
	return fd;
}

int h_raw_open(struct h_env *e, struct h_ident *as, int with_tls, struct h_raw *r, char *why,
               size_t n)
{
	struct cfl_tls_ctx *ctx = NULL;
	struct cfl_err ce = {0};
	uint64_t end = cfl_loop_now_ms(NULL) + H_WAIT_MS;
	int want = 0, rc;

	memset(r, 0, sizeof(*r));
	r->fd = tcp_connect(e, why, n);
	if (r->fd < 0)
		return -1;
	sock_addr(r->fd, r->addr, sizeof(r->addr));
	if (!with_tls || e->cfg.mode == CFL_SEC_CLEAR)
		return 0;
	if (h_ident_tls(e, as, &ctx, why, n) != 0 ||
	    cfl_tls_new(ctx, r->fd, e->cfg.host, &r->tls, &ce) != 0) {
		if (ce.msg[0] != '\0')
			snprintf(why, n, "%s", ce.msg);
		h_raw_close(r);
		return -1;
	}
	while ((rc = cfl_tls_handshake(r->tls, &want, &ce)) == CFL_EAGAIN &&
	       cfl_loop_now_ms(NULL) < end)
		wait_fd(r->fd, want == CFL_EV_WRITE ? POLLOUT : POLLIN, 50);
	if (rc != 0) {
		snprintf(why, n, "TLS handshake: %s", rc == CFL_EAGAIN ? "timed out" : ce.msg);
		h_raw_close(r);
		return -1;
	}
	return 0;
}

/* One read attempt: bytes (> 0), 0 when nothing now, or -1 when the peer is gone. */
static ssize_t raw_read(struct h_raw *r)
{
	uint8_t buf[4096];
	ssize_t got;
	int want = 0;

	if (r->tls == NULL) {
		got = recv(r->fd, buf, sizeof(buf), 0);
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return 0;
		return got > 0 ? got : -1;
	}
	got = cfl_tls_read(r->tls, buf, sizeof(buf), &want, NULL);
	if (got == CFL_EAGAIN)
		return 0;
	return got > 0 ? got : -1;
}

int h_raw_write(struct h_raw *r, const void *p, size_t len, uint64_t ms)
{
	const uint8_t *b = p;
	uint64_t end = cfl_loop_now_ms(NULL) + ms;
	size_t off = 0;
	int want = CFL_EV_WRITE;

	while (off < len) {
		ssize_t w;

		if (cfl_loop_now_ms(NULL) >= end)
			return CFL_ETIMEDOUT;
		if (r->tls != NULL) {
			w = cfl_tls_write(r->tls, b + off, len - off, &want, NULL);
			if (w == CFL_EAGAIN) {
				wait_fd(r->fd, want == CFL_EV_READ ? POLLIN : POLLOUT, 20);
				continue;
			}
		} else {
			w = send(r->fd, b + off, len - off, MSG_NOSIGNAL);
			if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
				wait_fd(r->fd, POLLOUT, 20);
				continue;
			}
		}
		if (w <= 0)
			return CFL_ECLOSED;
		off += (size_t)w;
	}
	return 0;
}

int h_raw_wait_closed(struct h_raw *r, uint64_t ms)
{
	uint64_t end = cfl_loop_now_ms(NULL) + ms;

	for (;;) {
		ssize_t got = raw_read(r);
		uint64_t now = cfl_loop_now_ms(NULL);

		if (got < 0)
			return 1;
		if (got > 0)
			continue;
		if (now >= end)
			return 0;
		wait_fd(r->fd, POLLIN, end - now < 50 ? end - now : 50);
	}
}

void h_raw_close(struct h_raw *r)
{
	cfl_tls_free(r->tls);
	r->tls = NULL;
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

/* --- the server's side of things -------------------------------------------------------------- */

long h_server_rss_kib(const struct h_env *e)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	if (e->server_pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", e->server_pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			char *end;

			kib = strtol(line + 6, &end, 10);
			if (end == line + 6)
				kib = -1;
			break;
		}
	}
	fclose(f);
	return kib;
}

void h_expect_log(struct h_env *e, char kind, const char *addr, const char *text)
{
	if (e->expect == NULL)
		return;
	if (kind == 'R')
		fprintf(e->expect, "R\t%s\t%s\n", addr, text);
	else
		fprintf(e->expect, "L\t%s\n", text);
	fflush(e->expect);
}
