/* Internals of cfl_conn shared by conn.c (sockets, TLS, reading, lifetime) and stream.c (the
 * write queue, streams and flow control). Not installed; nothing outside src/net includes it.
 *
 * Lifetime rules (see conn.c): callbacks into the application run only from loop-driven entry
 * points (I/O, timers) that hold a reference (`holds`) on the connection, so that the
 * application may close or free it from inside a callback; the memory goes when the last hold
 * is released. A failure never calls back directly: cfl__conn_fail() tears the socket down at
 * once and arms the work timer, whose handler reports on_abort/done/on_close. */
#ifndef CFL_NET_CONN_INT_H
#define CFL_NET_CONN_INT_H

#include "cfl/conn.h"

#include <stddef.h>
#include <stdint.h>

struct addrinfo;

enum conn_state {
	CS_CONNECTING, /* client: TCP connect in progress */
	CS_HANDSHAKE,  /* TLS handshake in progress */
	CS_OPEN,
	CS_DRAINING, /* cfl_conn_close(): flushing the queue, then waiting for the peer's EOF */
	CS_DEAD,     /* socket gone; on_close pending or done */
};

/* One buffer of the write queue: small frames coalesced, or one frame of a stream. A frame of
 * a lent stream continues past data[0..len) with ext[0..ext_len), memory the application lent
 * (or ext_own, a copy made when the stream was abandoned half-written). */
struct wbuf {
	struct wbuf *next;
	struct out_stream *owner; /* stream frame, else NULL */
	size_t len, off, cap;     /* bytes in data, bytes written (data, then ext), room */
	const uint8_t *ext;       /* lent bytes after data, or NULL */
	size_t ext_len;
	uint8_t *ext_own; /* ext when this buffer owns it (freed with it) */
	int last;         /* writing it completes `owner` */
	int big;          /* counts against the two-chunk budget */
	uint8_t data[];
};

struct out_stream {
	struct out_stream *next;
	uint64_t id;
	uint64_t left;  /* body bytes not yet read from the source */
	int64_t credit; /* bytes the receiver still allows: initial + grants - sent */
	uint64_t progress_ms;
	cfl_conn_read_fn read; /* copies the body, or */
	cfl_conn_lend_fn lend; /* lends it (zero-copy) */
	uint64_t off;          /* body bytes read or lent so far */
	void *arg;
	cfl_conn_done_fn done;
	int in_queue; /* buffers of it in the write queue */
	int finished; /* done_fn due with `status` */
	int status;
};

struct in_stream {
	struct in_stream *next;
	uint64_t id;
	uint64_t total;     /* body-length */
	uint64_t received;  /* body bytes so far */
	uint64_t limit;     /* initial window + grants: received may not pass it */
	uint64_t ungranted; /* consumed bytes not yet granted back */
	uint64_t progress_ms;
};

#define CANCELLED_RING 16

/* What a dialing connection keeps of its target (cfl_conn_dial); accepted ones have none. */
struct conn_dial {
	char host[256];
	int port;
	char tried[512]; /* "127.0.0.1: connection refused; ..." */
};

/* A connection's place in the admission control (admit.c); all zero without one. */
struct admit_slot {
	struct cfl_admit *a;
	struct admit_ent *ent; /* its address's entry; NULL when the table was full */
	unsigned counted : 1;  /* in the connection count */
	unsigned pre : 1;      /* in the pre-login counts */
	unsigned admin : 1;    /* came in on the admin listener */
};

struct cfl_conn {
	struct cfl_loop *loop;
	int fd;
	enum conn_state state;
	int is_server;
	int opened; /* on_open ran */
	enum cfl_conn_sec mode;
	struct cfl_tls_ctx *tls_ctx;
	struct cfl_tls *tls;
	struct cfl_conn_callbacks cb;
	void *user;
	uint64_t connect_timeout_ms, idle_timeout_ms;

	/* Texts are allocated when there is something to say (a server holds ~19,000 of these,
	 * most of them idle): the dial target, the peer's names, the close and GOAWAY reasons. */
	struct conn_dial *dial; /* client */
	struct addrinfo *ai_list, *ai_next;

	char peer_addr[CFL_CONN_ADDR_MAX], local_addr[CFL_CONN_ADDR_MAX];
	char *peer_names;                     /* cn, org and role, one allocation */
	const char *peer_org, *peer_role;     /* in peer_names (peer_names is the cn) */
	const char *tls_version, *tls_cipher; /* static strings of cfl_tls_version/cipher */

	uint64_t next_id;
	size_t max_payload;

	/* reading */
	uint8_t *rbuf;
	size_t rlen, rcap;
	int rd_wants_write; /* TLS read waits for writability */
	int wr_wants_read;  /* TLS write waits for readability */
	char *goaway;       /* the peer's GOAWAY reason, printable; NULL before one came */
	int goaway_seen;

	/* writing */
	struct wbuf *wq_head, *wq_tail;
	size_t queued;       /* bytes not yet written */
	unsigned big_queued; /* stream buffers in the queue */
	struct wbuf *spare;  /* a chunk buffer kept for the next chunk */
	int shut_wr;         /* FIN sent (draining) */
	int wr_dead;         /* a write found the peer gone: reading will say why */
	struct out_stream *outs;
	struct in_stream *ins;
	unsigned n_ins;
	uint64_t cancelled[CANCELLED_RING]; /* incoming streams we dropped: ignore their tail */
	unsigned n_cancelled;
	int need_service; /* a WINDOW or writability: run cfl__conn_service() */
	int flush_due;    /* frames queued inside a loop-driven call: written at its end */
	/* Busy ("hot": two reads within HOT_GAP_MS) until COOL_MS without a read: meanwhile the
	 * receive buffer, a small-frame buffer and TLS's record buffers are kept, not allocated
	 * per message; an idle connection holds none of them. */
	int hot;
	uint64_t last_read_ms;
	struct wbuf *small_spare;
	int read_again; /* decrypted input left behind by the read budget */

	/* timers (0 = not armed) */
	uint64_t t_connect, t_idle, t_work, t_linger, t_cool;

	/* closing */
	int close_code;
	char *close_reason; /* "" (static) until set, else allocated (cfl__conn_set_reason) */
	int holds;          /* loop-driven calls in progress on this connection */
	int freed;          /* the memory goes at the last release */
	int finalized;      /* on_close reported */
	struct cfl_conn_stats stats;
	struct admit_slot adm;
};

/* conn.c (its texts: conn_text.c) */
void cfl__conn_on_io(struct cfl_loop *loop, int fd, int events, void *arg);
void cfl__conn_open(struct cfl_conn *c);
void cfl__conn_handshake(struct cfl_conn *c);
void cfl__conn_hold(struct cfl_conn *c);
void cfl__conn_release(struct cfl_conn *c);
void cfl__conn_fail(struct cfl_conn *c, int code, int tell_peer, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
void cfl__conn_kick(struct cfl_conn *c);
void cfl__conn_update_watch(struct cfl_conn *c);
int cfl__conn_alive(const struct cfl_conn *c);
int cfl__conn_peer_id(const struct cfl_conn *c, uint64_t id);
void cfl__conn_drained(struct cfl_conn *c);
/* The end of draining: the peer closed, or it did not within the linger time. */
void cfl__conn_drain_done(struct cfl_conn *c);
/* Hands one decoded frame to the stream code or the application (after the id rules). */
void cfl__conn_dispatch(struct cfl_conn *c, const struct cfl_frame *f);

/* conn_read.c: reads what the socket holds (up to a budget) and dispatches the frames. */
void cfl__conn_read(struct cfl_conn *c);
const char *cfl__conn_peer_role(const struct cfl_conn *c);
/* Sets close_reason (at most CFL_ERR_MSG_MAX - 1 bytes; a fixed text when out of memory). */
void cfl__conn_set_reason(struct cfl_conn *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* The dial target's host for logs: "" for an accepted connection. */
const char *cfl__conn_host(const struct cfl_conn *c);
/* The names of the peer's certificate (after the handshake), kept for cfl_conn_peer_cn() etc. */
void cfl__conn_keep_peer_names(struct cfl_conn *c);
/* conn_text.c: frees the texts above (destroy). */
void cfl__conn_free_texts(struct cfl_conn *c);
static inline const char *cfl__conn_reason(const struct cfl_conn *c)
{
	return c->close_reason != NULL ? c->close_reason : "";
}

/* connect.c */
void cfl__conn_connect_result(struct cfl_conn *c);
/* Makes the accepting side of a connection over the connected socket `fd` (owned from now
 * on), as a listener does; NULL if out of memory (fd untouched). The pointer is only valid
 * until on_close returns (a clear connection may even fail inside on_open). For listeners
 * and the transport fuzz target. */
struct cfl_conn *cfl__conn_adopt(struct cfl_loop *loop, int fd, const struct cfl_conn_opts *opts);

/* admit.c: admission control. cfl__admit_accept() decides on a socket just accepted from
 * `ss` (0: admitted and *slot filled; else refused, counted and logged: close it);
 * cfl__admit_emfile() handles EMFILE on `lfd` with the spare descriptor (0: one connection
 * accepted and closed, try again; 1: none was pending; negative: pause). cfl__admit_logged_in() and
 * cfl__admit_release() follow the connection. */
struct sockaddr_storage;
int cfl__admit_accept(struct cfl_admit *a, const struct sockaddr_storage *ss, int fd, int admin,
                      struct admit_slot *slot);
int cfl__admit_emfile(struct cfl_admit *a, int lfd);
void cfl__admit_logged_in(struct admit_slot *slot);
/* A connection admitted and not logged in failed (`reason`): counted, logged per address. */
void cfl__admit_failed(struct admit_slot *slot, const char *reason);
void cfl__admit_release(struct admit_slot *slot);

/* stream.c: the write queue and outgoing streams */
int cfl__conn_queue_frame(struct cfl_conn *c, const struct cfl_frame *f, int assign_id);
int cfl__conn_flush(struct cfl_conn *c);
void cfl__conn_service(struct cfl_conn *c);
void cfl__conn_notify(struct cfl_conn *c);
void cfl__conn_free_queue(struct cfl_conn *c);
void cfl__conn_drop_spares(struct cfl_conn *c);
struct out_stream *cfl__conn_find_out(struct cfl_conn *c, uint64_t id);
void cfl__conn_abort_out(struct cfl_conn *c, struct out_stream *s, int status, int tell_peer);
void cfl__conn_abort_outgoing(struct cfl_conn *c, int status);

/* stream_in.c: incoming streams, cancelling, idle timeout */
void cfl__conn_on_head(struct cfl_conn *c, const struct cfl_frame *f);
void cfl__conn_on_chunk(struct cfl_conn *c, const struct cfl_frame *f);
void cfl__conn_on_window(struct cfl_conn *c, const struct cfl_frame *f);
void cfl__conn_on_cancel(struct cfl_conn *c, const struct cfl_frame *f);
void cfl__conn_report_streams(struct cfl_conn *c, int call_app);
void cfl__conn_arm_idle(struct cfl_conn *c);

#endif
