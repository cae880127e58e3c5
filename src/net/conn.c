/* Framed connections: dialing, accepting, the TLS handshake, reading and dispatching frames,
 * closing. The write queue and streams are in stream.c; the contract is cfl/conn.h.
 *
 * A connection moves CONNECTING → HANDSHAKE (TLS only) → OPEN → (DRAINING) → DEAD. Whatever
 * ends it, cfl__conn_fail() or the end of draining closes the socket at once and arms the work
 * timer; the timer's handler (finalize) then reports the streams and on_close, from the loop
 * and never from inside an API call, and frees the memory when no callback is on the stack. */
#define _GNU_SOURCE
#include "net/conn_int.h"

#include "cfl/log.h"
#include "util/reader.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF_MIN      (16 * 1024)
#define RBUF_KEEP     (64 * 1024) /* an idle connection shrinks its receive buffer to this */
#define READ_BUDGET   (8u << 20)  /* bytes read per wake-up before letting others run */
#define LINGER_MS     1000
#define DRAIN_MAX     (256 * 1024) /* input discarded before close, to avoid a RST */
#define ACCEPT_BATCH  64
#define ACCEPT_PAUSE  100 /* ms without accepting after running out of descriptors */
#define MISMATCH      "(connection_security mismatch)"

static void on_io(struct cfl_loop *loop, int fd, int events, void *arg);

/* --- lifetime --------------------------------------------------------------------------- */

void cfl__conn_hold(struct cfl_conn *c)
{
	c->holds++;
}

static void destroy(struct cfl_conn *c)
{
	struct in_stream *in, *next_in;

	cfl_loop_timer_cancel(c->loop, c->t_work);
	cfl__conn_free_queue(c);
	for (in = c->ins; in != NULL; in = next_in) {
		next_in = in->next;
		free(in);
	}
	if (c->ai_list != NULL)
		freeaddrinfo(c->ai_list);
	cfl_tls_free(c->tls);
	cfl_tls_ctx_free(c->tls_ctx);
	free(c->rbuf);
	free(c);
}

void cfl__conn_release(struct cfl_conn *c)
{
	if (--c->holds == 0 && c->freed)
		destroy(c);
}

int cfl__conn_alive(const struct cfl_conn *c)
{
	return c->state != CS_DEAD && !c->freed;
}

const char *cfl__conn_peer_role(const struct cfl_conn *c)
{
	return c->is_server ? "client" : "server";
}

/* 1 if `id` may name a frame the peer numbered (odd from the dialer, even from the acceptor). */
int cfl__conn_peer_id(const struct cfl_conn *c, uint64_t id)
{
	return id != 0 && (id & 1u) == (c->is_server ? 1u : 0u);
}

static void on_work(struct cfl_loop *loop, uint64_t id, void *arg);

void cfl__conn_kick(struct cfl_conn *c)
{
	if (c->t_work == 0 && !c->freed)
		c->t_work = cfl_loop_timer_add(c->loop, 0, on_work, c);
}

static void cancel_timers(struct cfl_conn *c)
{
	cfl_loop_timer_cancel(c->loop, c->t_connect);
	cfl_loop_timer_cancel(c->loop, c->t_idle);
	cfl_loop_timer_cancel(c->loop, c->t_linger);
	c->t_connect = c->t_idle = c->t_linger = 0;
}

/* Writes a GOAWAY with `reason` straight to the socket (or through TLS), best effort: used
 * when the connection is being dropped and nothing else of ours is half-written. */
static void goaway_now(struct cfl_conn *c, const char *reason)
{
	struct cfl_frame f;
	uint8_t buf[CFL_FRAME_HEAD_LEN + 1024];
	struct cfl_writer w;
	int n, want;

	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_GOAWAY;
	f.id = cfl_conn_next_id(c);
	f.body = (const uint8_t *)reason;
	f.body_len = strnlen(reason, 1024);
	n = cfl_frame_encode(buf, sizeof(buf), &f);
	if (n <= 0)
		return;
	cfl__wr_init(&w, buf + 16, 8);
	cfl__wr_put_u64(&w, f.id);
	if (c->tls != NULL && c->state != CS_HANDSHAKE)
		(void)cfl_tls_write(c->tls, buf, (size_t)n, &want, NULL);
	else
		(void)send(c->fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Closes the socket without leaving a RST behind where that can be helped: input still unread
 * when a socket closes makes the kernel reset the connection, and a reset can destroy the
 * GOAWAY we just sent before the peer reads it. */
static void close_socket(struct cfl_conn *c)
{
	uint8_t sink[4096];
	size_t drained = 0;
	ssize_t n;

	if (c->fd < 0)
		return;
	cfl_loop_unwatch(c->loop, c->fd);
	(void)shutdown(c->fd, SHUT_WR);
	while (drained < DRAIN_MAX && (n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
		drained += (size_t)n;
	close(c->fd);
	c->fd = -1;
}

/* Drops the socket and everything that depends on it; the streams and on_close are reported
 * later by finalize(). */
static void teardown(struct cfl_conn *c, const char *goaway)
{
	cancel_timers(c);
	if (c->fd >= 0 && goaway != NULL &&
	    (c->wq_head == NULL || c->wq_head->off == 0 || c->state == CS_HANDSHAKE))
		goaway_now(c, goaway);
	close_socket(c);
	cfl_tls_free(c->tls);
	c->tls = NULL;
	free(c->rbuf);
	c->rbuf = NULL;
	c->rlen = c->rcap = 0;
	if (c->ai_list != NULL)
		freeaddrinfo(c->ai_list);
	c->ai_list = c->ai_next = NULL;
	c->state = CS_DEAD;
}

void cfl__conn_fail(struct cfl_conn *c, int code, int tell_peer, const char *fmt, ...)
{
	va_list ap;

	if (!cfl__conn_alive(c))
		return;
	/* An application's close in progress keeps its own code and reason. */
	if (c->state != CS_DRAINING) {
		c->close_code = code;
		va_start(ap, fmt);
		vsnprintf(c->close_reason, sizeof(c->close_reason), fmt, ap);
		va_end(ap);
	}
	CFL_DEBUG("conn %s: closing: %s", c->peer_addr[0] ? c->peer_addr : c->host,
		  c->close_reason);
	teardown(c, tell_peer ? c->close_reason : NULL);
	cfl__conn_kick(c);
}

/* Reports the end of a dead connection: its streams, then on_close; frees it afterwards. */
static void finalize(struct cfl_conn *c)
{
	if (c->finalized)
		return;
	c->finalized = 1;
	cfl__conn_report_streams(c, 1);
	if (c->cb.on_close != NULL && !c->freed)
		c->cb.on_close(c, c->close_code, c->close_reason, c->user);
	c->freed = 1;
}

static void on_work(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct cfl_conn *c = arg;

	(void)loop;
	(void)id;
	c->t_work = 0;
	cfl__conn_hold(c);
	if (c->state == CS_DEAD)
		finalize(c);
	else
		cfl__conn_service(c);
	cfl__conn_release(c);
}

void cfl_conn_free(struct cfl_conn *c)
{
	if (c == NULL || c->freed)
		return;
	if (c->state != CS_DEAD)
		teardown(c, NULL);
	cancel_timers(c);
	if (!c->finalized) {
		c->finalized = 1;
		cfl__conn_report_streams(c, 0);
	}
	c->freed = 1;
	if (c->holds == 0)
		destroy(c);
}

/* The orderly end of draining: the peer closed, or it did not within the linger time. */
static void drain_done(struct cfl_conn *c)
{
	teardown(c, NULL);
	cfl__conn_kick(c);
}

static void on_linger(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct cfl_conn *c = arg;

	(void)loop;
	(void)id;
	c->t_linger = 0;
	cfl__conn_hold(c);
	drain_done(c);
	cfl__conn_release(c);
}

/* Draining, with the queue written out: say goodbye at the TLS and TCP level, then wait for
 * the peer's end of stream. */
void cfl__conn_drained(struct cfl_conn *c)
{
	if (c->shut_wr)
		return;
	c->shut_wr = 1;
	cfl_tls_shutdown(c->tls);
	(void)shutdown(c->fd, SHUT_WR);
}

void cfl_conn_close(struct cfl_conn *c, const char *reason)
{
	struct cfl_frame f;

	if (c == NULL || !cfl__conn_alive(c) || c->state == CS_DRAINING)
		return;
	if (reason == NULL || reason[0] == '\0')
		reason = "closed by this side";
	if (c->state != CS_OPEN) {
		cfl__conn_fail(c, 0, 0, "%s (before the connection was open)", reason);
		return;
	}
	cfl__conn_abort_outgoing(c, CFL_ECLOSED);
	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_GOAWAY;
	f.body = (const uint8_t *)reason;
	f.body_len = strnlen(reason, 1024);
	if (cfl__conn_queue_frame(c, &f, 1) != 0) {
		f.body_len = 0; /* not UTF-8: go away without a reason */
		(void)cfl__conn_queue_frame(c, &f, 1);
	}
	c->state = CS_DRAINING;
	c->close_code = 0;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
	c->t_linger = cfl_loop_timer_add(c->loop, LINGER_MS, on_linger, c);
	(void)cfl__conn_flush(c);
	cfl__conn_kick(c);
}

/* --- reading ---------------------------------------------------------------------------- */

/* Copies a peer-supplied text for logs: printable ASCII and UTF-8 kept, controls as '?'. */
static void printable(char *dst, size_t size, const uint8_t *src, size_t len)
{
	size_t i;

	for (i = 0; i < len && i + 1 < size; i++)
		dst[i] = src[i] < 0x20 || src[i] == 0x7f ? '?' : (char)src[i];
	dst[i] = '\0';
}

static void on_goaway(struct cfl_conn *c, const struct cfl_frame *f)
{
	printable(c->goaway, sizeof(c->goaway), f->body, f->body_len);
	c->goaway_seen = 1;
	CFL_INFO("%s %s is going away: %s", cfl__conn_peer_role(c), c->peer_addr,
		 c->goaway[0] ? c->goaway : "(no reason given)");
}

static void answer_ping(struct cfl_conn *c, const struct cfl_frame *ping)
{
	struct cfl_frame f;

	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_PONG;
	f.id = ping->id;
	f.body = ping->body;
	f.body_len = ping->body_len;
	(void)cfl__conn_queue_frame(c, &f, 0);
}

/* Id rules of protocol.md §2.1 for one received frame; 0 if they hold. */
static int check_ids(const struct cfl_conn *c, const struct cfl_frame *f)
{
	switch (f->type) {
	case CFL_FRAME_T_PONG:
		return f->id != 0 && !cfl__conn_peer_id(c, f->id) ? 0 : -1;
	case CFL_FRAME_T_REPLY:
	case CFL_FRAME_T_WINDOW:
		return cfl__conn_peer_id(c, f->id) && f->ref != 0 && !cfl__conn_peer_id(c, f->ref)
			       ? 0
			       : -1;
	case CFL_FRAME_T_CHUNK:
		return cfl__conn_peer_id(c, f->id) && cfl__conn_peer_id(c, f->ref) ? 0 : -1;
	case CFL_FRAME_T_CANCEL:
		return cfl__conn_peer_id(c, f->id) && f->ref != 0 ? 0 : -1;
	default:
		return cfl__conn_peer_id(c, f->id) ? 0 : -1;
	}
}

static void dispatch(struct cfl_conn *c, const struct cfl_frame *f)
{
	if (check_ids(c, f) != 0) {
		cfl__conn_fail(c, CFL_EPROTO, 1, "peer sent a %s frame with a bad id or ref "
						 "(protocol.md 2.1)", cfl_frame_type_name(f->type));
		return;
	}
	switch (f->type) {
	case CFL_FRAME_T_REQUEST:
	case CFL_FRAME_T_REPLY:
	case CFL_FRAME_T_ONEWAY:
		if (f->flags & CFL_FRAME_F_MORE)
			cfl__conn_on_head(c, f);
		else if (c->cb.on_msg != NULL)
			c->cb.on_msg(c, f, 0, c->user);
		break;
	case CFL_FRAME_T_CHUNK:
		cfl__conn_on_chunk(c, f);
		break;
	case CFL_FRAME_T_WINDOW:
		cfl__conn_on_window(c, f);
		break;
	case CFL_FRAME_T_CANCEL:
		cfl__conn_on_cancel(c, f);
		break;
	case CFL_FRAME_T_PING:
		answer_ping(c, f);
		break;
	case CFL_FRAME_T_PONG:
		break;
	case CFL_FRAME_T_GOAWAY:
		on_goaway(c, f);
		break;
	default:
		cfl__conn_fail(c, CFL_EPROTO, 1, "peer sent an unknown frame type %u", f->type);
		break;
	}
}

/* A fixed header the decoder refused: say what it was, recognising a TLS peer talking to a
 * clear side (a TLS record starts with content type 20-23 and version 3.x). */
static void bad_header(struct cfl_conn *c, const uint8_t *p, size_t len, int rc)
{
	struct cfl_reader r;
	uint32_t payload;

	if (len >= 2 && p[0] >= 20 && p[0] <= 23 && p[1] == 3) {
		if (c->is_server)
			cfl__conn_fail(c, CFL_EPROTO, 1, "peer started a TLS handshake but this "
							 "listener is in clear mode " MISMATCH);
		else
			cfl__conn_fail(c, CFL_EPROTO, 1, "the server answered with TLS but this "
							 "client is in clear mode " MISMATCH);
		return;
	}
	if (rc == CFL_ETOOBIG) {
		cfl__rd_init(&r, p, len);
		(void)cfl__rd_skip(&r, 8);
		payload = cfl__rd_get_u32(&r);
		cfl__conn_fail(c, CFL_ETOOBIG, 1, "peer sent a frame with a payload of %u bytes, "
						  "over the limit of %zu%s", payload, c->max_payload,
			       c->max_payload <= CFL_FRAME_MAX_PAYLOAD_PRELOGIN ? " before login" : "");
		return;
	}
	cfl__conn_fail(c, CFL_EPROTO, 1, "peer sent bytes that are not a cfl frame (bad magic, "
					 "version or header)");
}

/* Grows the receive buffer to hold a frame of `need` bytes (never beyond max payload + 32,
 * which cfl_frame_peek already enforced). */
static int grow_rbuf(struct cfl_conn *c, size_t need)
{
	uint8_t *p;

	if (need <= c->rcap)
		return 0;
	p = realloc(c->rbuf, need);
	if (p == NULL) {
		cfl__conn_fail(c, CFL_ENOMEM, 0, "out of memory for a %zu-byte frame", need);
		return CFL_ENOMEM;
	}
	c->rbuf = p;
	c->rcap = need;
	if (need > c->stats.rbuf_peak)
		c->stats.rbuf_peak = need;
	return 0;
}

/* Decodes and dispatches every complete frame in the buffer; keeps a partial one. */
static void process_frames(struct cfl_conn *c)
{
	size_t off = 0, need = 0, flen;
	struct cfl_frame f;
	int rc;

	while (cfl__conn_alive(c) && off < c->rlen) {
		const uint8_t *p = c->rbuf + off;
		size_t len = c->rlen - off;

		rc = cfl_frame_peek(p, len, c->max_payload, &flen);
		if (rc == CFL_EAGAIN)
			break;
		if (rc != 0) {
			bad_header(c, p, len, rc);
			return;
		}
		if (flen > len) {
			need = flen;
			break;
		}
		rc = cfl_frame_decode(p, len, c->max_payload, &f);
		if (rc <= 0) {
			cfl__conn_fail(c, CFL_EPROTO, 1, "peer sent a malformed %s frame",
				       cfl_frame_type_name(p[3]));
			return;
		}
		off += (size_t)rc;
		c->stats.frames_in++;
		if (c->state == CS_OPEN)
			dispatch(c, &f);
	}
	if (!cfl__conn_alive(c) || c->rbuf == NULL)
		return;
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
	if (need > 0)
		(void)grow_rbuf(c, need);
}

static void on_eof(struct cfl_conn *c)
{
	if (c->state == CS_DRAINING) {
		drain_done(c);
		return;
	}
	if (c->goaway_seen)
		cfl__conn_fail(c, CFL_ECLOSED, 0, "%s closed the connection: %s",
			       cfl__conn_peer_role(c), c->goaway[0] ? c->goaway : "no reason given");
	else if (c->rlen > 0)
		cfl__conn_fail(c, CFL_ECLOSED, 0, "%s closed the connection in the middle of a frame",
			       cfl__conn_peer_role(c));
	else
		cfl__conn_fail(c, CFL_ECLOSED, 0, "%s closed the connection", cfl__conn_peer_role(c));
}

/* One read from the socket or the TLS session: > 0 bytes, 0 at end of stream, CFL_EAGAIN, or
 * another error (the connection is then failed). */
static ssize_t read_some(struct cfl_conn *c, uint8_t *buf, size_t len)
{
	struct cfl_err err;
	ssize_t n;
	int want = 0;

	if (c->tls == NULL) {
		n = recv(c->fd, buf, len, MSG_DONTWAIT);
		if (n >= 0)
			return n;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return CFL_EAGAIN;
		if (errno == ECONNRESET)
			return 0;
		cfl__conn_fail(c, CFL_ECONN, 0, "cannot read from the %s: %s", cfl__conn_peer_role(c),
			       strerror(errno));
		return CFL_ECONN;
	}
	cfl_err_clear(&err);
	n = cfl_tls_read(c->tls, buf, len, &want, &err);
	if (n == CFL_EAGAIN) {
		c->rd_wants_write = want == CFL_EV_WRITE;
		return CFL_EAGAIN;
	}
	c->rd_wants_write = 0;
	if (n == CFL_ECLOSED && err.msg[0] != '\0' && strcmp(err.msg, "peer closed the connection") == 0)
		return 0;
	if (n < 0)
		cfl__conn_fail(c, (int)n, 0, "%s", err.msg);
	return n;
}

static void do_read(struct cfl_conn *c)
{
	size_t budget = READ_BUDGET;
	ssize_t n;

	while (cfl__conn_alive(c)) {
		if (c->rcap - c->rlen == 0 && grow_rbuf(c, c->rcap ? c->rcap * 2 : RBUF_MIN) != 0)
			return;
		n = read_some(c, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (n == CFL_EAGAIN)
			break;
		if (n == 0) {
			on_eof(c);
			return;
		}
		if (n < 0)
			return;
		c->rlen += (size_t)n;
		c->stats.bytes_in += (uint64_t)n;
		process_frames(c);
		if ((size_t)n >= budget) {
			/* Let other connections run. Level-triggered epoll calls us again for data
			 * in the socket, but not for data already decrypted inside TLS. */
			if (c->tls != NULL && cfl_tls_pending(c->tls) > 0)
				c->need_service = 1;
			break;
		}
		budget -= (size_t)n;
	}
	/* An idle connection gives back a buffer grown for one large frame. */
	if (cfl__conn_alive(c) && c->rlen == 0 && c->rcap > RBUF_KEEP && c->ins == NULL) {
		free(c->rbuf);
		c->rbuf = NULL;
		c->rcap = 0;
	}
}

/* --- connecting and the handshake ------------------------------------------------------- */

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
	if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0)
		format_addr(&ss, c->peer_addr, sizeof(c->peer_addr));
	len = sizeof(ss);
	if (getsockname(c->fd, (struct sockaddr *)&ss, &len) == 0)
		format_addr(&ss, c->local_addr, sizeof(c->local_addr));
}

static void open_conn(struct cfl_conn *c)
{
	cfl_loop_timer_cancel(c->loop, c->t_connect);
	c->t_connect = 0;
	c->state = CS_OPEN;
	c->opened = 1;
	if (c->tls != NULL) {
		(void)cfl_tls_peer(c->tls, &c->peer);
		snprintf(c->tls_version, sizeof(c->tls_version), "%s", cfl_tls_version(c->tls));
		snprintf(c->tls_cipher, sizeof(c->tls_cipher), "%s", cfl_tls_cipher(c->tls));
	}
	CFL_DEBUG("conn %s: open (%s%s%s%s%s)", c->peer_addr, cfl_conn_sec_name(c->mode),
		  c->tls ? ", " : "", c->tls ? c->tls_version : "", c->peer.cn[0] ? ", peer " : "",
		  c->peer.cn);
	cfl__conn_update_watch(c);
	if (c->cb.on_open != NULL)
		c->cb.on_open(c, c->user);
	if (cfl__conn_alive(c))
		cfl__conn_service(c);
}

static void do_handshake(struct cfl_conn *c)
{
	struct cfl_err err;
	int want = 0, rc;

	cfl_err_clear(&err);
	rc = cfl_tls_handshake(c->tls, &want, &err);
	if (rc == 0) {
		open_conn(c);
		return;
	}
	if (rc == CFL_EAGAIN) {
		(void)cfl_loop_watch(c->loop, c->fd, want, on_io, c);
		return;
	}
	if (cfl_tls_peer_spoke_clear(c->tls))
		cfl__conn_fail(c, rc, 1, "%s; this listener requires tls or mtls", err.msg);
	else
		cfl__conn_fail(c, rc, 0, "%s", err.msg);
}

/* TCP is connected: start TLS or open. */
static void connected(struct cfl_conn *c)
{
	struct cfl_err err;

	note_addresses(c);
	if (c->ai_list != NULL)
		freeaddrinfo(c->ai_list);
	c->ai_list = c->ai_next = NULL;
	if (c->tls_ctx == NULL) {
		open_conn(c);
		return;
	}
	if (cfl_tls_new(c->tls_ctx, c->fd, c->is_server ? NULL : c->host, &c->tls, &err) != 0) {
		cfl__conn_fail(c, err.code, 0, "%s", err.msg);
		return;
	}
	c->state = CS_HANDSHAKE;
	if (c->is_server)
		(void)cfl_loop_watch(c->loop, c->fd, CFL_EV_READ, on_io, c);
	else
		do_handshake(c);
}

/* Starts a non-blocking connect to the next address; 0 when one is under way, CFL_ECONN when
 * none is left (c->tried lists why each failed). */
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
		if (c->fd >= 0 && (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
				   errno == EINPROGRESS) &&
		    cfl_loop_watch(c->loop, c->fd, CFL_EV_WRITE, on_io, c) == 0) {
			c->ai_next = ai->ai_next;
			return 0;
		}
		snprintf(c->tried + strlen(c->tried), sizeof(c->tried) - strlen(c->tried), "%s%s: %s",
			 c->tried[0] ? "; " : "", addr, strerror(errno));
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
	}
	return CFL_ECONN;
}

/* The pending connect finished: connected, or on to the next address. */
static void connect_result(struct cfl_conn *c)
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
	if (getpeername(c->fd, (struct sockaddr *)&ss, &slen) == 0)
		format_addr(&ss, addr, sizeof(addr));
	snprintf(c->tried + strlen(c->tried), sizeof(c->tried) - strlen(c->tried), "%s%s%s%s",
		 c->tried[0] ? "; " : "", addr, addr[0] ? ": " : "", strerror(soerr));
	cfl_loop_unwatch(c->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	if (connect_next(c) != 0)
		cfl__conn_fail(c, CFL_ECONN, 0, "cannot connect to %s:%d: %s", c->host, c->port,
			       c->tried);
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
		cfl__conn_fail(c, CFL_ETIMEDOUT, 0, "cannot connect to %s:%d: no answer within %g s%s%s",
			       c->host, c->port, s, c->tried[0] ? " (" : "", c->tried);
	else if (c->state == CS_HANDSHAKE && c->is_server)
		cfl__conn_fail(c, CFL_ETIMEDOUT, 0, "the client did not complete the TLS handshake "
						    "within %g s", s);
	else if (c->state == CS_HANDSHAKE)
		cfl__conn_fail(c, CFL_ETIMEDOUT, 0, "the TLS handshake with %s:%d did not complete "
						    "within %g s: is the server in clear mode, or "
						    "a proxy in the way? " MISMATCH "?",
			       c->host, c->port, s);
	cfl__conn_release(c);
}

static void on_io(struct cfl_loop *loop, int fd, int events, void *arg)
{
	struct cfl_conn *c = arg;

	(void)loop;
	(void)fd;
	cfl__conn_hold(c);
	switch (c->state) {
	case CS_CONNECTING:
		connect_result(c);
		break;
	case CS_HANDSHAKE:
		do_handshake(c);
		break;
	case CS_OPEN:
	case CS_DRAINING:
		if ((events & CFL_EV_READ) || c->rd_wants_write)
			do_read(c);
		if (cfl__conn_alive(c) && ((events & CFL_EV_WRITE) || c->wr_wants_read))
			c->need_service = 1;
		if (cfl__conn_alive(c) && c->need_service) {
			c->need_service = 0;
			cfl__conn_service(c);
		}
		break;
	default:
		break;
	}
	cfl__conn_release(c);
}

void cfl__conn_update_watch(struct cfl_conn *c)
{
	int ev = CFL_EV_READ;

	if (c->fd < 0 || (c->state != CS_OPEN && c->state != CS_DRAINING))
		return;
	if ((c->wq_head != NULL && !c->wr_wants_read && !c->shut_wr) || c->rd_wants_write)
		ev |= CFL_EV_WRITE;
	(void)cfl_loop_watch(c->loop, c->fd, ev, on_io, c);
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
	c->connect_timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms
							 : CFL_CONN_CONNECT_TIMEOUT_MS;
	c->idle_timeout_ms = opts->idle_timeout_ms ? opts->idle_timeout_ms : CFL_CONN_IDLE_TIMEOUT_MS;
	c->mode = CFL_SEC_CLEAR;
	if (opts->tls != NULL) {
		c->tls_ctx = opts->tls;
		c->mode = cfl_tls_ctx_mode(opts->tls);
		/* The connection holds its own reference: the context may be freed first. */
		(void)cfl_tls_ctx_is_server(opts->tls);
	}
	return c;
}

/* Takes the reference conn_new() only borrowed. cfl_tls_new() adds one per session, but a
 * connection needs the context before its session exists. */
static int hold_ctx(struct cfl_conn *c, struct cfl_err *e);

int cfl_conn_dial(struct cfl_loop *loop, const char *host, int port,
		  const struct cfl_conn_opts *opts, struct cfl_conn **out, struct cfl_err *e)
{
	struct addrinfo hints;
	struct cfl_conn *c;
	char portstr[16];
	int rc;

	*out = NULL;
	if (loop == NULL || opts == NULL || host == NULL || host[0] == '\0' ||
	    strlen(host) >= sizeof(c->host) || port < 1 || port > 65535)
		return cfl_err_set(e, CFL_EINVAL, "bad address '%s:%d'", host ? host : "", port);
	if (opts->tls != NULL && cfl_tls_ctx_is_server(opts->tls))
		return cfl_err_set(e, CFL_EINVAL, "a server TLS context cannot dial");
	c = conn_new(loop, opts, 0);
	if (c == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	if ((rc = hold_ctx(c, e)) != 0)
		goto fail;
	memcpy(c->host, host, strlen(host) + 1);
	c->port = port;
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
		rc = cfl_err_set(e, CFL_ECONN, "cannot connect to %s:%d: %s", host, port, c->tried);
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
};

static void on_accept(struct cfl_loop *loop, int fd, int events, void *arg);

static void accepted(struct cfl_listener *l, int fd)
{
	struct cfl_conn *c = conn_new(l->loop, &l->opts, 1);

	if (c == NULL || hold_ctx(c, NULL) != 0) {
		CFL_WARN("listener: out of memory, dropping a connection");
		free(c);
		close(fd);
		return;
	}
	c->fd = fd;
	cfl__conn_hold(c);
	if (c->tls_ctx != NULL)
		c->t_connect =
			cfl_loop_timer_add(l->loop, c->connect_timeout_ms, on_connect_timeout, c);
	connected(c);
	cfl__conn_release(c);
}

static void on_resume(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct cfl_listener *l = arg;

	(void)id;
	l->t_pause = 0;
	(void)cfl_loop_watch(loop, l->fd, CFL_EV_READ, on_accept, l);
}

static void on_accept(struct cfl_loop *loop, int fd, int events, void *arg)
{
	struct cfl_listener *l = arg;
	int i, cfd;

	(void)events;
	for (i = 0; i < ACCEPT_BATCH; i++) {
		cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd >= 0) {
			accepted(l, cfd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* Level-triggered: without a pause the loop would spin on the backlog. */
			CFL_WARN("listener on port %d: %s; pausing accepts", l->port, strerror(errno));
			cfl_loop_unwatch(loop, fd);
			l->t_pause = cfl_loop_timer_add(loop, ACCEPT_PAUSE, on_resume, l);
		} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
			CFL_WARN("listener on port %d: accept: %s", l->port, strerror(errno));
		}
		break;
	}
}

/* A bound, listening socket for host (NULL: all interfaces) and port, or -1 with `e` set. */
static int listen_socket(const char *host, int port, struct cfl_err *e)
{
	struct sockaddr_in6 any6;
	struct sockaddr_in any4;
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[16];
	int fd = -1, one = 1, zero = 0, err = 0, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	if (host != NULL && (rc = getaddrinfo(host, portstr, &hints, &res)) != 0) {
		cfl_err_set(e, CFL_ECONN, "cannot resolve '%s': %s", host, gai_strerror(rc));
		return -1;
	}
	memset(&any6, 0, sizeof(any6));
	any6.sin6_family = AF_INET6;
	any6.sin6_addr = in6addr_any;
	any6.sin6_port = htons((uint16_t)port);
	memset(&any4, 0, sizeof(any4));
	any4.sin_family = AF_INET;
	any4.sin_addr.s_addr = htonl(INADDR_ANY);
	any4.sin_port = htons((uint16_t)port);
	for (ai = res; host == NULL ? fd < 0 && err != -2 : ai != NULL; ai = ai ? ai->ai_next : NULL) {
		int family = host != NULL ? ai->ai_family : (err == 0 ? AF_INET6 : AF_INET);
		const struct sockaddr *sa = host != NULL ? ai->ai_addr
					    : family == AF_INET6 ? (const struct sockaddr *)&any6
								 : (const struct sockaddr *)&any4;
		socklen_t salen = host != NULL ? ai->ai_addrlen
				  : family == AF_INET6 ? sizeof(any6) : sizeof(any4);

		fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (family == AF_INET6 && host == NULL)
				(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
			if (bind(fd, sa, salen) == 0 && listen(fd, SOMAXCONN) == 0)
				break;
		}
		err = errno;
		if (fd >= 0)
			close(fd);
		fd = -1;
		/* Without IPv6 ("::" unavailable) fall back to 0.0.0.0; any other error is final. */
		if (host == NULL && family == AF_INET6 &&
		    (err == EAFNOSUPPORT || err == EADDRNOTAVAIL || err == EPROTONOSUPPORT))
			err = 1;
		else if (host == NULL)
			err = -2;
	}
	if (res != NULL)
		freeaddrinfo(res);
	if (fd < 0) {
		err = errno;
		cfl_err_set(e, CFL_ECONN, "cannot listen on %s port %d: %s%s",
			    host ? host : "all interfaces", port, strerror(err),
			    err == EADDRINUSE ? " (is another server running?)" : "");
	}
	return fd;
}

int cfl_listener_new(struct cfl_loop *loop, const char *host, int port,
		     const struct cfl_conn_opts *opts, struct cfl_listener **out,
		     struct cfl_err *e)
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
	if (getsockname(l->fd, (struct sockaddr *)&ss, &len) == 0)
		l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							 : ((struct sockaddr_in *)&ss)->sin_port);
	if (cfl_loop_watch(loop, l->fd, CFL_EV_READ, on_accept, l) != 0) {
		close(l->fd);
		free(l);
		return cfl_err_set(e, CFL_EIO, "cannot watch the listening socket");
	}
	if (opts->tls != NULL) {
		struct cfl_tls *none = NULL;

		(void)none;
		l->opts.tls = opts->tls;
		cfl__tls_ctx_ref(opts->tls);
	}
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
