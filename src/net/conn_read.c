/* The read side of a connection: reads from the socket or the TLS session (into a buffer on
 * the stack, or into the receive buffer while a frame is incomplete), frame decoding with the
 * limits of protocol.md §2, the end of the peer's stream, and what a busy connection keeps
 * between reads. Dispatching decoded frames is conn.c's (cfl__conn_dispatch). */
#define _GNU_SOURCE
#include "net/conn_int.h"

#include "util/reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RBUF_MIN             ((size_t)16 * 1024)
#define READ_BUDGET          ((size_t)8 << 20) /* bytes read per wake-up before letting others run */
#define READ_BUDGET_PRELOGIN ((size_t)4 << 10) /* the same before the peer logged in */
#define MISMATCH             "(connection_security mismatch)"
#define HOT_GAP_MS           2   /* two reads this close make a connection busy... */
#define COOL_MS              200 /* ...until it reads nothing for this long */

/* Where a read lands when the connection keeps no partial frame: one buffer per thread (reads
 * never nest: they run from the loop only; `scratch_busy` guards that anyway). Not on the
 * stack, where a sanitizer's fake stack would make it look like growing memory. */
static _Thread_local uint8_t scratch[RBUF_MIN];
static _Thread_local int scratch_busy;

/* A fixed header the decoder refused: say what it was, recognising a TLS peer talking to a
 * clear side (a TLS record starts with content type 20-23 and version 3.x). */
static void bad_header(struct cfl_conn *c, const uint8_t *p, size_t len, int rc)
{
	struct cfl_reader r;
	uint32_t payload;

	if (len >= 2 && p[0] >= 20 && p[0] <= 23 && p[1] == 3) {
		if (c->is_server)
			cfl__conn_fail(c, CFL_EPROTO, 1,
			               "peer started a TLS handshake but this listener is in clear "
			               "mode " MISMATCH);
		else
			cfl__conn_fail(c, CFL_EPROTO, 1,
			               "the server answered with TLS but this client is in clear "
			               "mode " MISMATCH);
		return;
	}
	if (rc == CFL_ETOOBIG) {
		cfl__rd_init(&r, p, len);
		(void)cfl__rd_skip(&r, 8);
		payload = cfl__rd_get_u32(&r);
		cfl__conn_fail(
		        c, CFL_ETOOBIG, 1,
		        "peer sent a frame with a payload of %u bytes, over the limit of %zu%s",
		        payload, c->max_payload,
		        c->max_payload <= CFL_FRAME_MAX_PAYLOAD_PRELOGIN ? " before login" : "");
		return;
	}
	cfl__conn_fail(c, CFL_EPROTO, 1,
	               "peer sent bytes that are not a cfl frame (bad magic, version or header)");
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

/* Decodes and dispatches every complete frame of p[0..len); returns the bytes consumed (the
 * complete frames), with *need set to the size of a partial frame that follows, if known.
 * The connection may have failed on return. */
static size_t process_frames(struct cfl_conn *c, const uint8_t *p, size_t len, size_t *need)
{
	size_t off = 0, flen;
	struct cfl_frame f;
	int rc;

	*need = 0;
	while (cfl__conn_alive(c) && off < len) {
		rc = cfl_frame_peek(p + off, len - off, c->max_payload, &flen);
		if (rc == CFL_EAGAIN)
			break;
		if (rc != 0) {
			bad_header(c, p + off, len - off, rc);
			break;
		}
		if (flen > len - off) {
			*need = flen;
			break;
		}
		rc = cfl_frame_decode(p + off, len - off, c->max_payload, &f);
		if (rc <= 0) {
			cfl__conn_fail(c, CFL_EPROTO, 1, "peer sent a malformed %s frame",
			               cfl_frame_type_name(p[off + 3]));
			break;
		}
		off += (size_t)rc;
		c->stats.frames_in++;
		if (c->state == CS_OPEN)
			cfl__conn_dispatch(c, &f);
	}
	return off;
}

/* Frames read into the receive buffer: the complete ones dispatched, a partial one kept at the
 * start with room for all of it. */
static void process_rbuf(struct cfl_conn *c)
{
	size_t need, off = process_frames(c, c->rbuf, c->rlen, &need);

	if (!cfl__conn_alive(c) || c->rbuf == NULL)
		return;
	/* Nothing consumed: a frame (up to 1 MiB) still coming in stays where it is. */
	if (off > 0) {
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
	if (need > 0)
		(void)grow_rbuf(c, need);
}

/* Frames read into the scratch buffer (the receive buffer was empty): what a partial frame
 * left at the end goes to the receive buffer, which holds nothing otherwise. */
static void process_scratch(struct cfl_conn *c, const uint8_t *p, size_t len)
{
	size_t need, off = process_frames(c, p, len, &need), rest = len - off;

	if (!cfl__conn_alive(c) || rest == 0)
		return;
	if (grow_rbuf(c, need > RBUF_MIN ? need : RBUF_MIN) != 0)
		return;
	memcpy(c->rbuf, p + off, rest);
	c->rlen = rest;
}

static void on_eof(struct cfl_conn *c)
{
	if (c->state == CS_DRAINING) {
		cfl__conn_drain_done(c);
		return;
	}
	if (c->goaway_seen)
		cfl__conn_fail(c, CFL_ECLOSED, 0, "%s closed the connection: %s",
		               cfl__conn_peer_role(c),
		               c->goaway != NULL && c->goaway[0] ? c->goaway : "no reason given");
	else if (c->rlen > 0)
		cfl__conn_fail(c, CFL_ECLOSED, 0,
		               "%s closed the connection in the middle of a frame",
		               cfl__conn_peer_role(c));
	else
		cfl__conn_fail(c, CFL_ECLOSED, 0, "%s closed the connection",
		               cfl__conn_peer_role(c));
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
		cfl__conn_fail(c, CFL_ECONN, 0, "cannot read from the %s: %s",
		               cfl__conn_peer_role(c), strerror(errno));
		return CFL_ECONN;
	}
	cfl_err_clear(&err);
	n = cfl_tls_read(c->tls, buf, len, &want, &err);
	if (n == CFL_EAGAIN) {
		c->rd_wants_write = want == CFL_EV_WRITE;
		return CFL_EAGAIN;
	}
	c->rd_wants_write = 0;
	if (n == CFL_ECLOSED)
		return 0; /* on_eof() words it, with the GOAWAY reason if there was one */
	if (n < 0)
		cfl__conn_fail(c, (int)n, 0, "%s", err.msg);
	return n;
}

/* The connection goes idle: what it kept for being busy goes. */
static void cool_down(struct cfl_conn *c)
{
	c->hot = 0;
	cfl_tls_keep_buffers(c->tls, 0);
	cfl__conn_drop_spares(c);
	if (c->rlen == 0 && c->ins == NULL) {
		free(c->rbuf);
		c->rbuf = NULL;
		c->rcap = 0;
	}
}

static void on_cool(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct cfl_conn *c = arg;
	uint64_t idle = cfl_loop_now_ms(loop) - c->last_read_ms;

	(void)id;
	c->t_cool = 0;
	if (!cfl__conn_alive(c))
		return;
	if (idle < COOL_MS)
		c->t_cool = cfl_loop_timer_add(loop, COOL_MS - idle, on_cool, c);
	else
		cool_down(c);
}

/* A read: a second one soon after the first makes a logged-in peer's connection busy (a
 * stranger's never is: its buffers stay small). */
static void note_read(struct cfl_conn *c)
{
	uint64_t now = cfl_loop_now_ms(c->loop);

	if (!c->hot && now - c->last_read_ms <= HOT_GAP_MS &&
	    c->max_payload > CFL_FRAME_MAX_PAYLOAD_PRELOGIN) {
		c->t_cool = cfl_loop_timer_add(c->loop, COOL_MS, on_cool, c);
		if (c->t_cool != 0) {
			c->hot = 1;
			cfl_tls_keep_buffers(c->tls, 1);
		}
	}
	c->last_read_ms = now;
}

/* 1 when the last read emptied the socket: a read now would only return CFL_EAGAIN, and the
 * loop (level-triggered) calls again for anything that arrives meanwhile. */
static int drained(const struct cfl_conn *c, size_t asked, size_t got)
{
	return c->tls != NULL ? cfl_tls_drained(c->tls) : got < asked;
}

/* Makes room in the receive buffer for the next read: 0, or the connection failed. */
static int rbuf_room(struct cfl_conn *c)
{
	/* Only while a frame's first 32 bytes are not in yet: after that, process_rbuf() makes
	 * room for all of it. */
	size_t cap = c->rcap * 2;

	if (c->rcap > c->rlen)
		return 0;
	if (cap > c->max_payload + CFL_FRAME_HEAD_LEN)
		cap = c->max_payload + CFL_FRAME_HEAD_LEN;
	if (cap <= c->rcap || grow_rbuf(c, cap) != 0) {
		cfl__conn_fail(c, CFL_ETOOBIG, 1, "receive buffer full");
		return -1;
	}
	return 0;
}

/* Reads what the socket holds, up to a budget, and dispatches the frames. Without a partial
 * frame kept from an earlier read, input lands in the thread's scratch buffer: a connection holds
 * a receive buffer only while a frame is incomplete or a stream is coming in, and small
 * messages cost no allocation (an idle session holds none: 16 KiB each at 19,000 sessions). */
void cfl__conn_read(struct cfl_conn *c)
{
	/* A peer that has not logged in gets a small slice: its frames may each cost the server
	 * a signature (challenges), and it must not stall everyone else. */
	size_t budget = c->max_payload <= CFL_FRAME_MAX_PAYLOAD_PRELOGIN ? READ_BUDGET_PRELOGIN
	                                                                 : READ_BUDGET;
	size_t asked;
	ssize_t n;

	note_read(c);
	if (scratch_busy && c->rbuf == NULL && grow_rbuf(c, RBUF_MIN) != 0)
		return;
	scratch_busy++;
	while (cfl__conn_alive(c)) {
		if (c->rbuf != NULL && rbuf_room(c) != 0)
			break;
		asked = c->rbuf != NULL ? c->rcap - c->rlen : sizeof(scratch);
		n = read_some(c, c->rbuf != NULL ? c->rbuf + c->rlen : scratch, asked);
		if (n == CFL_EAGAIN)
			break;
		if (n <= 0) {
			if (n == 0)
				on_eof(c);
			break; /* else the connection failed */
		}
		c->stats.bytes_in += (uint64_t)n;
		if (c->rbuf != NULL) {
			c->rlen += (size_t)n;
			process_rbuf(c);
		} else {
			process_scratch(c, scratch, (size_t)n);
		}
		if (!cfl__conn_alive(c) || drained(c, asked, (size_t)n))
			break;
		if ((size_t)n >= budget) {
			/* Let other connections run. Level-triggered epoll calls us again for data
			 * in the socket, but not for data already decrypted inside TLS. */
			if (c->tls != NULL && cfl_tls_pending(c->tls) > 0) {
				c->read_again = 1;
				cfl__conn_kick(c);
			}
			break;
		}
		budget -= (size_t)n;
	}
	scratch_busy--;
	/* Nothing pending and no stream coming in: the receive buffer goes, unless the connection
	 * is busy (then it goes when it cools down). */
	if (cfl__conn_alive(c) && !c->hot && c->rlen == 0 && c->rbuf != NULL && c->ins == NULL) {
		free(c->rbuf);
		c->rbuf = NULL;
		c->rcap = 0;
	}
}
