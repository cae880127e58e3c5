/* Messaging between named cells (SPEC §7): request/reply with timeouts, one-way messages,
 * streamed bodies of any size, and routing by the server between cells.
 *
 * A hub is one process's messaging: its cell name ("server" or a site name), the handlers of
 * the topics it serves, and its peers (one per connection). Drive connections with a hub by
 * passing cfl_msg_hub_conn_opts() into cfl_conn_dial() / cfl_listener_new(). Headers used:
 * `topic` (what a REQUEST/ONEWAY is about), `src` (the sender's cell), `dst` (the target cell;
 * absent = the peer itself), `status` on error replies (the body is the reason). Every topic and
 * header key of the protocol is named in cfl/proto.h.
 *
 * Threads: everything runs on the hub's loop thread, like cfl/conn.h. */
#ifndef CFL_MSG_H
#define CFL_MSG_H

#include "cfl/conn.h"
#include "cfl/err.h"
#include "cfl/frame.h"
#include "cfl/loop.h"

#include <stddef.h>
#include <stdint.h>

struct cfl_msg_hub;
struct cfl_peer;

#define CFL_MSG_DEFAULT_TIMEOUT_MS 30000
#define CFL_MSG_NAME_MAX           256

/* Receives a streamed body: data in order, then end exactly once (status 0: complete; else a
 * CFL_E* code and a reason). */
struct cfl_msg_sink {
	void (*data)(void *st, const uint8_t *p, size_t n);
	void (*end)(void *st, int status, const char *reason);
	void *st;
};

/* A REQUEST or ONEWAY for a topic this hub serves. `f` is valid during the call only. When
 * `more` is set the body continues: point *sink at a receiver (left zeroed, the stream is
 * cancelled: the sender is told to stop, and nothing more of it reaches this side).
 * Answer a REQUEST with cfl_peer_reply*() now or later (e.g. from sink->end). */
typedef void (*cfl_msg_handler)(struct cfl_peer *p, const struct cfl_frame *f, int more,
                                struct cfl_msg_sink *sink, void *arg);

/* The outcome of a request: status 0 with the reply (`more`: set *sink for its body), or a
 * negative CFL_E* (CFL_ETIMEDOUT, CFL_ECLOSED, CFL_EPROTO for an error reply...) with a reason
 * and reply possibly NULL. */
typedef void (*cfl_msg_reply_fn)(struct cfl_peer *p, int status, const char *reason,
                                 const struct cfl_frame *reply, int more, struct cfl_msg_sink *sink,
                                 void *arg);

/* Peer arrival (after the connection opened) and departure. */
typedef void (*cfl_msg_peer_fn)(struct cfl_peer *p, int code, const char *reason, void *arg);

int cfl_msg_hub_new(struct cfl_loop *loop, const char *cell, struct cfl_msg_hub **out,
                    struct cfl_err *e);
/* Frees the hub; its connections must be closed/freed first (cfl_msg_hub_close_all). */
void cfl_msg_hub_free(struct cfl_msg_hub *h);
const char *cfl_msg_hub_cell(const struct cfl_msg_hub *h);
struct cfl_loop *cfl_msg_hub_loop(const struct cfl_msg_hub *h);

/* Registers the handler for `topic` (at most 64 topics). Returns 0, CFL_EEXIST or CFL_ETOOBIG. */
int cfl_msg_hub_handle(struct cfl_msg_hub *h, const char *topic, cfl_msg_handler fn, void *arg);
void cfl_msg_hub_on_peer(struct cfl_msg_hub *h, cfl_msg_peer_fn up, cfl_msg_peer_fn down,
                         void *arg);

/* Connection options whose callbacks feed this hub. tls and timeouts as the caller sets. */
struct cfl_conn_opts cfl_msg_hub_conn_opts(struct cfl_msg_hub *h, struct cfl_tls_ctx *tls);

/* The peer whose cell name is `name`, or NULL. */
struct cfl_peer *cfl_msg_hub_find(struct cfl_msg_hub *h, const char *name);
/* Calls fn for every open peer. */
void cfl_msg_hub_foreach(struct cfl_msg_hub *h, void (*fn)(struct cfl_peer *p, void *arg),
                         void *arg);
size_t cfl_msg_hub_peers(const struct cfl_msg_hub *h);
/* Closes every connection with `reason` (GOAWAY). */
void cfl_msg_hub_close_all(struct cfl_msg_hub *h, const char *reason);

/* A request for cfl_peer_request_stream(). Zero it (designated initialisers do), then set topic,
 * reply and what applies of the rest. The body is one of:
 * - none: body, read and body_len left 0;
 * - in memory: body and body_len, sent in one frame (so with the headers it must fit
 *   CFL_FRAME_MAX_PAYLOAD);
 * - pulled from a source: read, src and body_len, of any size; streamed in CFL_FRAME_CHUNK
 *   pieces under the receiver's flow control (docs/protocol.md §2). read fills its buffer as
 *   cfl/conn.h's cfl_conn_read_fn says; returning an error abandons the request;
 * - lent from memory the caller holds: lend, src and body_len, streamed like a source but
 *   written to the socket from that memory without a copy (cfl_conn_send_lent()), so that one
 *   body sent to many peers is held once. The memory must stay valid until `sent` has run or
 *   the reply function has (whichever comes first): after either, it is no longer read. */
struct cfl_request {
	const char *topic;             /* a CFL_TOPIC_* of cfl/proto.h, or an "app." topic */
	const struct cfl_header *hdrs; /* the caller's headers; the hub adds topic, src and auth */
	size_t n_hdrs;
	uint64_t body_len;     /* bytes of body */
	const void *body;      /* in memory, or NULL */
	cfl_conn_read_fn read; /* or from read(src, ...), or NULL */
	cfl_conn_lend_fn lend; /* or lent by lend(src, ...), or NULL */
	void *src;             /* for read or lend */
	/* Streamed bodies (read or lend), optional: called once when the body has gone out
	 * (status 0) or was abandoned, if that happens before the reply; never after it. */
	void (*sent)(void *src, int status);
	uint64_t timeout_ms;    /* for the reply to start once the body is sent; 0: the default */
	cfl_msg_reply_fn reply; /* the outcome, exactly once */
	void *arg;              /* for reply */
};

/* Sends a request. req->reply runs exactly once, never inside this call: with the reply, or
 * with CFL_ETIMEDOUT (no reply began within timeout_ms, CFL_MSG_DEFAULT_TIMEOUT_MS if 0, after
 * the body was fully sent; a streamed body itself fails only on lack of progress), CFL_ECLOSED
 * (the connection closed first), CFL_EPROTO (an error reply) or the error that stopped a
 * streamed body. Returns 0, or a negative code and reply is never called: CFL_EINVAL
 * (no topic or no reply; both body and read; body_len without either), CFL_ETOOBIG (too many
 * headers, or an in-memory body too large for one frame), CFL_ENOMEM, or what cfl_conn_send() /
 * cfl_conn_send_stream() return (CFL_EAGAIN, CFL_ECLOSED, the read function's error).
 *
 * Ownership: `req` and what it points to are read during the call only (an in-memory body and
 * the headers are copied out), except `src`: read(src, ...) runs during the call for a body of
 * at most one chunk, later for a larger one, until the body has been sent or abandoned. That
 * can outlast the reply (a peer may answer before it has read the whole body): keep src valid
 * while the connection lives or until the body is out.
 *
 * Threads: the hub's loop thread only; reply and read run there too. */
int cfl_peer_request_stream(struct cfl_peer *p, const struct cfl_request *req);
/* A request with its body (if any) in memory: cfl_peer_request_stream() with topic, hdrs,
 * n_hdrs, body, body_len = len, timeout_ms, reply = fn and arg. Same returns and rules. */
int cfl_peer_request(struct cfl_peer *p, const char *topic, const struct cfl_header *hdrs,
                     size_t n_hdrs, const void *body, size_t len, uint64_t timeout_ms,
                     cfl_msg_reply_fn fn, void *arg);
/* One-way message. */
int cfl_peer_send(struct cfl_peer *p, const char *topic, const struct cfl_header *hdrs,
                  size_t n_hdrs, const void *body, size_t len);
/* Replies to request `req_id` of this peer. */
int cfl_peer_reply(struct cfl_peer *p, uint64_t req_id, const struct cfl_header *hdrs,
                   size_t n_hdrs, const void *body, size_t len);
int cfl_peer_reply_stream(struct cfl_peer *p, uint64_t req_id, const struct cfl_header *hdrs,
                          size_t n_hdrs, uint64_t body_len, cfl_conn_read_fn read_fn, void *src,
                          cfl_conn_done_fn done);
/* An error reply: `status` a short word ("unauthenticated", "no_such_topic"...), `reason` text. */
int cfl_peer_reply_error(struct cfl_peer *p, uint64_t req_id, const char *status,
                         const char *reason);

const char *cfl_peer_name(const struct cfl_peer *p); /* "" until named */
/* A number unique to this peer in the process (a new connection of the same site gets a new one).
 */
uint64_t cfl_peer_serial(const struct cfl_peer *p);
/* Names the peer ("" unnames it; `name` may be its current name): 0, or CFL_ENOMEM with the
 * peer left unnamed. */
int cfl_peer_set_name(struct cfl_peer *p, const char *name);
struct cfl_conn *cfl_peer_conn(const struct cfl_peer *p);
struct cfl_msg_hub *cfl_peer_hub(const struct cfl_peer *p);
void *cfl_peer_user(const struct cfl_peer *p);
void cfl_peer_set_user(struct cfl_peer *p, void *user);

#define CFL_MSG_AUTH_HDRS    3
#define CFL_MSG_AUTH_VAL_MAX 512

/* Sets the authentication headers sent with every later message to this peer (client_name,
 * token, token_signature: SPEC §5). Copies the strings. Returns 0 or CFL_ETOOBIG. */
int cfl_peer_set_auth(struct cfl_peer *p, const char *const keys[], const char *const vals[],
                      size_t n);

/* Checks an incoming message before anything else sees it; every REQUEST, ONEWAY and REPLY
 * except those to a topic of this cell marked with cfl_msg_hub_exempt. Returns 0 to accept;
 * otherwise writes the reason into `why`, and the hub drops the message (a REQUEST gets the error
 * reply `unauthenticated` with that reason; a stream is cancelled). The gate logs. */
typedef int (*cfl_msg_gate_fn)(struct cfl_peer *p, const struct cfl_frame *f, char *why,
                               size_t why_size, void *arg);
void cfl_msg_hub_set_gate(struct cfl_msg_hub *h, cfl_msg_gate_fn fn, void *arg);

/* Lets requests and one-way messages to `topic` (already registered with cfl_msg_hub_handle,
 * and addressed to this cell) pass without the gate: the gate's owner names the topics that
 * must work before a peer is authenticated (the login exchange). Returns 0 or CFL_ENOENT. */
int cfl_msg_hub_exempt(struct cfl_msg_hub *h, const char *topic);

/* Lets requests and one-way messages to `topic` pass through this hub between other cells, as
 * the application's "app." topics always do: the floor that serves a topic decides whether it
 * travels (the diagnostics' echo, only when the server serves the test topics). At most 4
 * topics. Returns 0, CFL_EINVAL (empty or too long) or CFL_ETOOBIG. */
int cfl_msg_hub_route(struct cfl_msg_hub *h, const char *topic);

/* The value of header `key` in `f` copied as a NUL-terminated string into buf; "" and
 * CFL_ENOENT when absent, CFL_ETOOBIG when it does not fit. */
int cfl_frame_header_str(const struct cfl_frame *f, const char *key, char *buf, size_t size);

#endif
