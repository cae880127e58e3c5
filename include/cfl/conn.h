/* Framed connections: TCP (IPv4/IPv6), optionally under TLS or mTLS, driven by a cfl_loop.
 *
 * A `struct cfl_conn` carries cfl frames (cfl/frame.h, docs/protocol.md) in both directions.
 * The client side dials a host and port (cfl_conn_dial); the server side accepts connections on
 * a `struct cfl_listener`. Each connection reports through callbacks:
 *
 *   on_open   the connection is usable (TCP connected, TLS handshake done)
 *   on_msg    a REQUEST, REPLY or ONEWAY arrived: headers and the first body part; `more` set
 *             when the body continues as a stream of on_chunk calls
 *   on_chunk  the next part of a stream's body; `last` set on its final part
 *   on_abort  a stream announced by on_msg(more) ended without its last chunk (cancelled by the
 *             peer, idle timeout, bad length, connection closed)
 *   on_close  the connection is gone: called exactly once for every connection, including ones
 *             that never opened, with a code (0 when this side closed it) and a readable reason
 *
 * Every stream that on_msg announces with `more` ends with exactly one on_chunk(last) or one
 * on_abort. Frames handed to callbacks point into the receive buffer: copy what you keep.
 *
 * Sending: cfl_conn_send() copies one small frame into the write queue (frames queued from a
 * callback of the same connection are written together when the callback returns, in one
 * system call; outside callbacks at once); cfl_conn_send_stream()
 * sends a body of any size pulled from a read function in CFL_FRAME_CHUNK pieces, under the
 * receiver's flow control (protocol.md §2). Memory per connection stays bounded whatever the
 * body size: at most two chunks are buffered per connection on the sending side, and a receiver
 * holds at most one frame plus what its consumer keeps. Streams fail on lack of progress (idle
 * timeout, default 60 s), never on total duration.
 *
 * Built in: PING answered with PONG, GOAWAY logged with its reason, frame ids (odd for the
 * dialing side, even for the accepting side), body-length and credit checks, and readable
 * diagnoses of connection_security mismatches between the two sides (see cfl/tls.h).
 *
 * Lifetime: the library owns a connection from dial/accept until on_close returns; after that
 * the pointer is invalid. cfl_conn_free() ends one early without calling on_close.
 *
 * Threads: all of a connection's functions must run on its loop's thread; callbacks run there.
 * Callbacks may call any function of this module, including closing or freeing the connection
 * they are called for. API functions never call the application's callbacks re-entrantly,
 * except where documented (the read function of a single-frame cfl_conn_send_stream()). */
#ifndef CFL_CONN_H
#define CFL_CONN_H

#include "cfl/err.h"
#include "cfl/frame.h"
#include "cfl/loop.h"
#include "cfl/tls.h"

#include <stddef.h>
#include <stdint.h>

struct cfl_conn;
struct cfl_listener;
struct cfl_admit;

#define CFL_CONN_CONNECT_TIMEOUT_MS 5000        /* TCP connect + TLS handshake */
#define CFL_CONN_IDLE_TIMEOUT_MS    60000       /* a stream without progress fails after this */
#define CFL_CONN_MAX_QUEUED         (64u << 20) /* bytes of small frames waiting to be sent */
#define CFL_CONN_MAX_STREAMS        64 /* incoming streams open at once on one connection */
#define CFL_CONN_ADDR_MAX           64 /* "[v6 address]:port" + NUL */

struct cfl_conn_callbacks {
	void (*on_open)(struct cfl_conn *c, void *user);
	/* `f` (headers, body) is valid during the call only. `more`: a stream follows, ended by
	 * on_chunk(last) or on_abort for msg id f->id. */
	void (*on_msg)(struct cfl_conn *c, const struct cfl_frame *f, int more, void *user);
	/* Stream data in order. Flow-control credit is granted back to the sender when this
	 * returns, so a consumer that is slow here slows the sender down. */
	void (*on_chunk)(struct cfl_conn *c, uint64_t msg_id, const uint8_t *data, size_t len,
	                 int last, void *user);
	void (*on_abort)(struct cfl_conn *c, uint64_t msg_id, int code, const char *reason,
	                 void *user);
	void (*on_close)(struct cfl_conn *c, int code, const char *reason, void *user);
};

/* Settings shared by cfl_conn_dial() and cfl_listener_new(); zero fields take the defaults. */
struct cfl_conn_opts {
	struct cfl_tls_ctx *tls;      /* NULL: clear; else a client or server context matching the
	                                 role (the connection takes its own reference) */
	struct cfl_conn_callbacks cb; /* callbacks that are NULL are skipped */
	void *user;                   /* initial user pointer of each connection */
	uint64_t connect_timeout_ms;  /* connect + handshake; default CFL_CONN_CONNECT_TIMEOUT_MS */
	uint64_t idle_timeout_ms;     /* per stream; default CFL_CONN_IDLE_TIMEOUT_MS */
	/* Listeners only: the admission control their connections go through (NULL: none), and
	 * whether this listener is the admin console's (it may use the admin reserve). */
	struct cfl_admit *admit;
	int admit_admin;
};

/* Opens a client connection to host:port. `host` is a DNS name or an IPv4/IPv6 literal; with a
 * TLS context the server certificate must match it. The name is resolved here (getaddrinfo:
 * this can block as long as the resolver does; IP literals never block); each address is then
 * tried in turn without blocking, and connect + handshake must finish within the connect
 * timeout. Returns 0 and *out, after which every outcome is reported by callbacks (on_open or
 * on_close, never from inside this call); or CFL_EINVAL / CFL_ECONN (no such host, no address
 * usable) / CFL_ENOMEM with `e` set and no callback. Frames may be sent before on_open: they
 * wait in the queue. */
int cfl_conn_dial(struct cfl_loop *loop, const char *host, int port,
                  const struct cfl_conn_opts *opts, struct cfl_conn **out, struct cfl_err *e);

/* Starts an orderly close: outgoing streams are abandoned (their done functions get
 * CFL_ECLOSED), a GOAWAY carrying `reason` (may be NULL) is queued after the frames already
 * queued, those are flushed (for at most a second), TLS close_notify is sent, and on_close runs
 * with code 0 and `reason`. Later calls, and calls after a failure, do nothing. */
void cfl_conn_close(struct cfl_conn *c, const char *reason);

/* Tears the connection down now: nothing more is sent, on_close and on_abort are not called
 * (the caller is dropping its state anyway), and each pending outgoing stream's done function
 * gets CFL_ECLOSED so that its source can be released. Safe inside the connection's own
 * callbacks (the memory goes when they return). NULL is a no-op. */
void cfl_conn_free(struct cfl_conn *c);

/* Queues one frame (REQUEST, REPLY, ONEWAY or PING, without the MORE flag) and starts writing
 * it. The frame is encoded into the queue, so `f` and what it points to may be reused on
 * return. f->id 0 means "the next id" (cfl_conn_next_id()); a REQUEST whose reply the caller
 * wants to match must take its id from cfl_conn_next_id() first. Returns 0, CFL_EINVAL (type,
 * flags or id not allowed, or a frame the codec rejects), CFL_ETOOBIG (over
 * CFL_FRAME_MAX_PAYLOAD), CFL_EAGAIN (CFL_CONN_MAX_QUEUED bytes already waiting: the peer is
 * not reading), CFL_ECLOSED (closing or closed). */
int cfl_conn_send(struct cfl_conn *c, const struct cfl_frame *f);

/* Reads body bytes for a stream: fills buf[0..len) completely (it is called again for the rest
 * if it returns less) and returns the count, or a negative CFL_E* code to abandon the stream.
 * Returning 0 before the announced body_len is an error (the source ended early). */
typedef int (*cfl_conn_read_fn)(void *src_arg, uint8_t *buf, size_t len);
/* Called exactly once per stream: status 0 after the last byte went to the socket, or a
 * negative CFL_E* code (CFL_ECLOSED: connection closed or the peer cancelled; CFL_ETIMEDOUT:
 * no progress within the idle timeout; or the read function's error). */
typedef void (*cfl_conn_done_fn)(struct cfl_conn *c, uint64_t msg_id, int status, void *src_arg);

/* Sends a message whose body is `body_len` bytes (any size: 2 GiB and more) pulled from
 * read_fn(src_arg, ...). `head` is a REQUEST, REPLY or ONEWAY with its headers (its body
 * fields are ignored; no `body-length` header of its own). A body of at most CFL_FRAME_CHUNK
 * bytes goes in one frame, read during this call. A larger one goes as `head` with MORE and a
 * `body-length` header, then CHUNK frames read as the receiver's credit and the socket allow
 * (no more than two chunks buffered). head->id 0 means the next id; the id is passed to
 * done_fn. Returns 0 (done_fn will be called, never from inside this call), or an error as
 * cfl_conn_send() or the read function's, in which case done_fn is not called. */
int cfl_conn_send_stream(struct cfl_conn *c, const struct cfl_frame *head, uint64_t body_len,
                         cfl_conn_read_fn read_fn, void *src_arg, cfl_conn_done_fn done_fn);

/* Lends body bytes for a stream without copying them: sets *p to bytes [off, off + n) of the
 * body and returns n (0 < n <= len; less where the source's memory is not contiguous), or a
 * negative CFL_E* code to abandon the stream. The bytes must stay valid and unchanged until the
 * stream's done function has been called (or cfl_conn_free() returned): the connection writes
 * them to the socket from there, several connections from the same memory. */
typedef int (*cfl_conn_lend_fn)(void *src_arg, uint64_t off, size_t len, const uint8_t **p);

/* cfl_conn_send_stream() for a body the application holds in memory: the chunks are written
 * from the lent memory (each chunk's first TLS record, its header and the first body bytes, is
 * copied; a single-frame body is copied whole). Memory per connection stays a few KiB whatever
 * the body size, and several connections can send the same memory at their own pace. Same
 * returns and callbacks as cfl_conn_send_stream(). */
int cfl_conn_send_lent(struct cfl_conn *c, const struct cfl_frame *head, uint64_t body_len,
                       cfl_conn_lend_fn lend_fn, void *src_arg, cfl_conn_done_fn done_fn);

/* Abandons stream `msg_id`, outgoing (its done function gets CFL_ECLOSED) or incoming (no
 * further on_chunk; no on_abort either: the caller asked), and tells the peer with CANCEL.
 * Returns 0 or CFL_ENOENT. */
int cfl_conn_cancel(struct cfl_conn *c, uint64_t msg_id);

/* The next frame id of this side (odd when it dialed, even when it accepted); never 0. */
uint64_t cfl_conn_next_id(struct cfl_conn *c);

/* Largest frame payload accepted from the peer; a larger frame closes the connection
 * (CFL_ETOOBIG) before its payload is read. Starts at CFL_FRAME_MAX_PAYLOAD_PRELOGIN; the
 * authentication layer raises it (up to CFL_FRAME_MAX_PAYLOAD) once the peer has logged in.
 * Above the pre-login value the peer may also start streams (protocol.md §2.2: a stranger may
 * not). Returns 0 or CFL_EINVAL (below 1 KiB or above CFL_FRAME_MAX_PAYLOAD). */
int cfl_conn_set_max_payload(struct cfl_conn *c, size_t max_payload);
size_t cfl_conn_max_payload(const struct cfl_conn *c);

/* Changes the per-stream idle timeout (ms, > 0) for streams in both directions. */
void cfl_conn_set_idle_timeout(struct cfl_conn *c, uint64_t ms);

/* Accessors. Strings belong to the connection and live as long as it. */
void *cfl_conn_user(const struct cfl_conn *c);
void cfl_conn_set_user(struct cfl_conn *c, void *user);
struct cfl_loop *cfl_conn_loop(const struct cfl_conn *c);
int cfl_conn_is_server(const struct cfl_conn *c);          /* 1 if accepted by a listener */
int cfl_conn_is_open(const struct cfl_conn *c);            /* on_open ran and no close started */
enum cfl_conn_sec cfl_conn_mode(const struct cfl_conn *c); /* clear, tls or mtls */
/* "203.0.113.5:40112" or "[2001:db8::1]:8002" ("" before connect); IPv4-mapped IPv6 addresses
 * are shown as IPv4. The local address tells which server address a client came in on. */
const char *cfl_conn_peer_addr(const struct cfl_conn *c);
const char *cfl_conn_local_addr(const struct cfl_conn *c);
/* Subject of the peer certificate ("" without one): CN, O and unstructuredName (the admin
 * role in cfl kits). */
const char *cfl_conn_peer_cn(const struct cfl_conn *c);
/* The peer certificate the TLS handshake verified and the issuing CA it was pinned to, as
 * cfl_tls_peer_x509() (OpenSSL X509 pointers, borrowed while the connection lives); NULL in
 * clear mode or without a peer certificate. */
const void *cfl_conn_peer_x509(const struct cfl_conn *c, const void **issuer);
const char *cfl_conn_peer_org(const struct cfl_conn *c);
const char *cfl_conn_peer_role(const struct cfl_conn *c);
/* Negotiated TLS version and cipher for logs, "none" for clear connections. */
const char *cfl_conn_tls_version(const struct cfl_conn *c);
const char *cfl_conn_tls_cipher(const struct cfl_conn *c);
/* Bytes of frames queued and not yet written to the socket. */
size_t cfl_conn_queued(const struct cfl_conn *c);

/* Counters for logs, benchmarks and tests of the memory bounds. */
struct cfl_conn_stats {
	uint64_t bytes_in, bytes_out;   /* frame bytes (TLS record overhead not counted) */
	uint64_t frames_in, frames_out; /* frames decoded / queued (PONG, WINDOW... included) */
	size_t rbuf_peak;               /* largest receive buffer held */
	size_t wqueue_peak;             /* most bytes queued for writing at once */
};

/* Copies the counters into *out. Cheap; any time before on_close returns. */
void cfl_conn_get_stats(const struct cfl_conn *c, struct cfl_conn_stats *out);

/* Listens on `port` (0: an ephemeral port, see cfl_listener_port) on `host`, or on every
 * interface when host is NULL ("::" dual-stack, falling back to 0.0.0.0 without IPv6).
 * Accepted connections take opts (opts->tls must be a server context, or NULL for clear) and
 * start with user pointer opts->user; their on_open runs when the handshake is done. Returns 0
 * and *out, or CFL_EINVAL / CFL_ECONN (e.g. "port 8002 is in use") with `e` set. */
int cfl_listener_new(struct cfl_loop *loop, const char *host, int port,
                     const struct cfl_conn_opts *opts, struct cfl_listener **out,
                     struct cfl_err *e);

/* Stops listening and frees the listener; connections already accepted live on. NULL is a
 * no-op. */
void cfl_listener_free(struct cfl_listener *l);

/* The port actually bound. */
int cfl_listener_port(const struct cfl_listener *l);

/* --- admission control (docs/security.md §9, docs/server-client.md "Admission") -------------
 *
 * One `struct cfl_admit` is shared by a server's listeners (cfl_conn_opts.admit). Each accepted
 * connection is counted from accept until its socket closes, and as "pre-login" until it logs
 * in (cfl_conn_set_max_payload() above CFL_FRAME_MAX_PAYLOAD_PRELOGIN: the authentication layer
 * does that at login). A connection beyond a limit is closed at once after accept, before any
 * TLS work. Refusals are logged once per address per minute with a count (IPv4 addresses one by
 * one, IPv6 by /64). Running out of descriptors in accept() never spins: a spare descriptor is
 * given up to accept the connection and close it. */
struct cfl_admit_limits {
	long max_connections;   /* all connections; 0: descriptor limit - both reserves */
	long max_prelogin;      /* not logged in yet, all addresses (site listener) */
	long max_prelogin_addr; /* not logged in yet, from one address (each listener) */
	long challenges_addr_s; /* login challenges per address and second (burst: as many) */
	long admin_reserve;     /* connections only the admin listener may open beyond the cap */
	long fd_reserve;        /* descriptors kept for files, pipes and the loop */
};

#define CFL_ADMIT_MAX_PRELOGIN      1024
#define CFL_ADMIT_MAX_PRELOGIN_ADDR 64
#define CFL_ADMIT_CHALLENGES_ADDR_S 100
#define CFL_ADMIT_ADMIN_RESERVE     16
#define CFL_ADMIT_FD_RESERVE        64
#define CFL_ADMIT_LOG_MS            60000 /* one refusal line per address per this */

/* The defaults above; max_connections 0 (resolved by cfl_admit_new). */
void cfl_admit_defaults(struct cfl_admit_limits *l);

/* Makes the admission control with `limits` (0 fields: the default). It keeps a spare
 * descriptor for accept() at EMFILE and resolves max_connections against RLIMIT_NOFILE (a value
 * above what the limit allows is lowered, with a warning). CFL_EINVAL for a negative limit. */
int cfl_admit_new(struct cfl_loop *loop, const struct cfl_admit_limits *limits,
                  struct cfl_admit **out, struct cfl_err *e);
/* Frees it; call after the listeners and connections that use it are gone. NULL: no-op. */
void cfl_admit_free(struct cfl_admit *a);

/* The limits in force (resolved). */
void cfl_admit_limits_get(const struct cfl_admit *a, struct cfl_admit_limits *out);

struct cfl_admit_stats {
	long connections, prelogin, admin_prelogin; /* now */
	uint64_t refused, emfile;                   /* since start */
};
void cfl_admit_stats_get(const struct cfl_admit *a, struct cfl_admit_stats *out);

/* For the login layer: 1 if connection `c`'s address may ask for one more login challenge now
 * (a token bucket per address), else 0, the refusal counted and logged as others are. 1 for a
 * connection without admission control. */
int cfl_conn_admit_challenge(struct cfl_conn *c);

#endif
