/* Framed connections: dialing, accepting, the TLS handshake, reading and dispatching frames,
 * closing. The write queue and streams are in stream.c; the contract is cfl/conn.h.
 *
 * A connection moves CONNECTING → HANDSHAKE (TLS only) → OPEN → (DRAINING) → DEAD. Whatever
 * ends it, cfl__conn_fail() or the end of draining closes the socket at once and arms the work
 * timer; the timer's handler (finalize) then reports the streams and on_close, from the loop
 * and never from inside an API call, and frees the memory when no callback is on the stack.
 * Reading from the socket and decoding frames is in conn_read.c. */
#define _GNU_SOURCE
#include "net/conn_int.h"

#include "cfl/log.h"
#include "util/reader.h"

#include <arpa/inet.h>
#include <assert.h>
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

#define LINGER_MS  1000
#define DRAIN_MAX  ((size_t)256 * 1024) /* input discarded before close, to avoid a RST */
#define MISMATCH   "(connection_security mismatch)"
#define GOAWAY_MAX 256 /* bytes of the peer's GOAWAY reason kept, NUL included */

/* --- lifetime --------------------------------------------------------------------------- */

void cfl__conn_hold(struct cfl_conn *c)
{
	c->holds++;
}

static void destroy(struct cfl_conn *c)
{
	struct in_stream *in, *next_in;

	assert(c->holds == 0);
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
	cfl__admit_release(&c->adm); /* done at close_socket(); a no-op then */
	free(c->rbuf);
	cfl__conn_free_texts(c);
	free(c);
}

void cfl__conn_release(struct cfl_conn *c)
{
	assert(c->holds > 0);
	/* The frames the callbacks queued go out together: one write per loop turn. */
	if (c->holds == 1 && c->flush_due && cfl__conn_alive(c))
		(void)cfl__conn_flush(c);
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
	cfl_loop_timer_cancel(c->loop, c->t_cool);
	c->t_connect = c->t_idle = c->t_linger = c->t_cool = 0;
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
	if (c->tls != NULL && cfl_tls_established(c->tls))
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
	cfl__admit_release(&c->adm);
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
	va_start(ap, fmt);
	/* An application's close in progress keeps its own code and reason. */
	if (c->state != CS_DRAINING) {
		char why[CFL_ERR_MSG_MAX];

		c->close_code = code;
		vsnprintf(why, sizeof(why), fmt, ap);
		cfl__conn_set_reason(c, "%s", why);
	}
	va_end(ap);
	CFL_DEBUG("conn %s: closing: %s", c->peer_addr[0] ? c->peer_addr : cfl__conn_host(c),
	          cfl__conn_reason(c));
	if (!c->opened)
		cfl__admit_failed(&c->adm, cfl__conn_reason(c)); /* logged per address */
	teardown(c, tell_peer ? cfl__conn_reason(c) : NULL);
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
		c->cb.on_close(c, c->close_code, cfl__conn_reason(c), c->user);
	c->freed = 1;
}

static void on_work(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct cfl_conn *c = arg;

	(void)loop;
	(void)id;
	c->t_work = 0;
	cfl__conn_hold(c);
	if (c->state == CS_DEAD) {
		finalize(c);
	} else {
		if (c->read_again) {
			c->read_again = 0;
			cfl__conn_read(c);
		}
		/* A write found the peer gone and reading did not see its end yet. */
		if (cfl__conn_alive(c) && c->wr_dead)
			cfl__conn_fail(c, CFL_ECLOSED, 0, "%s closed the connection",
			               cfl__conn_peer_role(c));
		if (cfl__conn_alive(c))
			cfl__conn_service(c);
	}
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
void cfl__conn_drain_done(struct cfl_conn *c)
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
	cfl__conn_drain_done(c);
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
	cfl__conn_set_reason(c, "%s", reason);
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
		dst[i] = (char)(src[i] < 0x20 || src[i] == 0x7f ? '?' : src[i]);
	dst[i] = '\0';
}

static void on_goaway(struct cfl_conn *c, const struct cfl_frame *f)
{
	size_t size = f->body_len < GOAWAY_MAX ? f->body_len + 1 : GOAWAY_MAX;
	char *text = malloc(size);

	if (text != NULL) {
		printable(text, size, f->body, f->body_len);
		free(c->goaway);
		c->goaway = text;
	}
	c->goaway_seen = 1;
	CFL_INFO("%s %s is going away: %s", cfl__conn_peer_role(c), c->peer_addr,
	         c->goaway != NULL && c->goaway[0] ? c->goaway : "(no reason given)");
}

static void answer_ping(struct cfl_conn *c, const struct cfl_frame *ping)
{
	struct cfl_frame f;

	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_PONG;
	f.id = ping->id;
	f.body = ping->body;
	f.body_len = ping->body_len;
	if (cfl__conn_queue_frame(c, &f, 0) == 0)
		(void)cfl__conn_flush(c);
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

void cfl__conn_dispatch(struct cfl_conn *c, const struct cfl_frame *f)
{
	if (check_ids(c, f) != 0) {
		cfl__conn_fail(c, CFL_EPROTO, 1,
		               "peer sent a %s frame with a bad id or ref (protocol.md 2.1)",
		               cfl_frame_type_name(f->type));
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

/* --- opening and the handshake ------------------------------------------------------- */

void cfl__conn_open(struct cfl_conn *c)
{
	cfl_loop_timer_cancel(c->loop, c->t_connect);
	c->t_connect = 0;
	c->state = CS_OPEN;
	c->opened = 1;
	if (c->tls != NULL) {
		cfl__conn_keep_peer_names(c);
		c->tls_version = cfl_tls_version(c->tls);
		c->tls_cipher = cfl_tls_cipher(c->tls);
	}
	CFL_DEBUG("conn %s: open (%s%s%s%s%s)", c->peer_addr, cfl_conn_sec_name(c->mode),
	          c->tls ? ", " : "", c->tls ? c->tls_version : "",
	          cfl_conn_peer_cn(c)[0] ? ", peer " : "", cfl_conn_peer_cn(c));
	cfl__conn_update_watch(c);
	/* Input that arrived with the end of the handshake is inside TLS, not in the socket. */
	if (c->tls != NULL && cfl_tls_pending(c->tls) > 0) {
		c->read_again = 1;
		cfl__conn_kick(c);
	}
	if (c->cb.on_open != NULL)
		c->cb.on_open(c, c->user);
	if (cfl__conn_alive(c))
		cfl__conn_service(c);
}

void cfl__conn_handshake(struct cfl_conn *c)
{
	struct cfl_err err;
	int want = 0, rc;

	cfl_err_clear(&err);
	rc = cfl_tls_handshake(c->tls, &want, &err);
	if (rc == 0) {
		cfl__conn_open(c);
		return;
	}
	if (rc == CFL_EAGAIN) {
		(void)cfl_loop_watch(c->loop, c->fd, want, cfl__conn_on_io, c);
		return;
	}
	/* A clear cfl client cannot read a TLS alert: tell it in a frame it understands. A TLS
	 * session that is up but refused by our policy can carry the reason itself. */
	if (cfl_tls_established(c->tls))
		goaway_now(c, err.msg);
	else if (cfl_tls_peer_spoke_clear(c->tls))
		goaway_now(c, "this listener requires TLS (connection_security tls or mtls) but "
		              "the client sent clear-text frames " MISMATCH);
	cfl__conn_fail(c, rc, 0, "%s", err.msg);
}

void cfl__conn_on_io(struct cfl_loop *loop, int fd, int events, void *arg)
{
	struct cfl_conn *c = arg;

	(void)loop;
	(void)fd;
	cfl__conn_hold(c);
	switch (c->state) {
	case CS_CONNECTING:
		cfl__conn_connect_result(c);
		break;
	case CS_HANDSHAKE:
		cfl__conn_handshake(c);
		break;
	case CS_OPEN:
	case CS_DRAINING:
		if ((events & CFL_EV_READ) || c->rd_wants_write)
			cfl__conn_read(c);
		if (cfl__conn_alive(c) && ((events & CFL_EV_WRITE) || c->wr_wants_read))
			c->need_service = 1;
		if (cfl__conn_alive(c) && c->need_service) {
			c->need_service = 0;
			cfl__conn_service(c);
		}
		/* What the callbacks queued goes out now, in one write (the flush then updates the
		 * watch); else a TLS read may now wait for writability, or a write for
		 * readability. */
		if (cfl__conn_alive(c) && c->flush_due)
			(void)cfl__conn_flush(c);
		else if (cfl__conn_alive(c))
			cfl__conn_update_watch(c);
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
	(void)cfl_loop_watch(c->loop, c->fd, ev, cfl__conn_on_io, c);
}

/* --- settings and accessors -------------------------------------------------------------- */

int cfl_conn_set_max_payload(struct cfl_conn *c, size_t max_payload)
{
	if (c == NULL || max_payload < 1024 || max_payload > CFL_FRAME_MAX_PAYLOAD)
		return CFL_EINVAL;
	/* Raised above the pre-login size at login (cfl/conn.h): the connection leaves the
	 * admission control's pre-login counts. */
	if (max_payload > CFL_FRAME_MAX_PAYLOAD_PRELOGIN)
		cfl__admit_logged_in(&c->adm);
	c->max_payload = max_payload;
	return 0;
}

size_t cfl_conn_max_payload(const struct cfl_conn *c)
{
	return c->max_payload;
}

void *cfl_conn_user(const struct cfl_conn *c)
{
	return c->user;
}

void cfl_conn_set_user(struct cfl_conn *c, void *user)
{
	c->user = user;
}

struct cfl_loop *cfl_conn_loop(const struct cfl_conn *c)
{
	return c->loop;
}

int cfl_conn_is_server(const struct cfl_conn *c)
{
	return c->is_server;
}

int cfl_conn_is_open(const struct cfl_conn *c)
{
	return c->state == CS_OPEN && !c->freed;
}

enum cfl_conn_sec cfl_conn_mode(const struct cfl_conn *c)
{
	return c->mode;
}

const char *cfl_conn_peer_addr(const struct cfl_conn *c)
{
	return c->peer_addr;
}

const char *cfl_conn_local_addr(const struct cfl_conn *c)
{
	return c->local_addr;
}

const void *cfl_conn_peer_x509(const struct cfl_conn *c, const void **issuer)
{
	*issuer = NULL;
	return c->tls != NULL && c->state == CS_OPEN ? cfl_tls_peer_x509(c->tls, issuer) : NULL;
}

size_t cfl_conn_queued(const struct cfl_conn *c)
{
	return c->queued;
}

void cfl_conn_get_stats(const struct cfl_conn *c, struct cfl_conn_stats *out)
{
	*out = c->stats;
}
