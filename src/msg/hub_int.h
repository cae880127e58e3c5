/* Internal to the messaging hub: its records, shared by hub.c (peers, requests, dispatch)
 * and route.c (passing messages between cells). */
#ifndef CFL_MSG_HUB_INT_H
#define CFL_MSG_HUB_INT_H

#include "cfl/msg.h"

#include <stdint.h>

#define MAX_TOPICS 64
#define MAX_ROUTED 4 /* topics besides app.* routed between cells (cfl_msg_hub_route) */
#define KIND_HUB   0x48554221u
#define KIND_PEER  0x50454552u

struct topic {
	char name[64];
	cfl_msg_handler fn;
	void *arg;
	int exempt; /* requests to this cell pass without the gate (cfl_msg_hub_exempt) */
};

/* A request waiting for its reply. */
struct pending {
	struct pending *next;
	struct cfl_peer *peer; /* NULL once the peer is gone (a stream may still be sending) */
	uint64_t id;
	uint64_t timeout_ms;
	uint64_t timer;
	int sending;  /* the body is still streaming out: done_fn will come */
	int finished; /* reply_fn has run */
	cfl_msg_reply_fn fn;
	void *arg;
	cfl_conn_read_fn read_fn; /* streamed requests: the caller's source, */
	cfl_conn_lend_fn lend_fn; /* or its lent memory */
	void (*sent_fn)(void *src, int status);
	void *src;
};

/* An incoming body being delivered to a sink. */
struct instream {
	struct instream *next;
	uint64_t id;
	struct cfl_msg_sink sink;
};

struct cfl_peer {
	uint32_t kind;   /* first: tells a peer from a hub behind a conn's user pointer */
	uint64_t serial; /* unique in the process: pointers are reused, serials not */
	struct cfl_msg_hub *hub;
	struct cfl_peer *next, *prev;
	struct cfl_conn *conn;
	char *name;             /* "" (static) until named, then a copy of its own */
	uint32_t hash;          /* of the name, for the hub's index */
	struct cfl_peer *hnext; /* the next named peer in its bucket of the index */
	struct pending *pending;
	struct instream *streams;
	void *user;
	int up; /* the hub's up callback ran */
	/* Authentication headers added to every message this side sends to the peer. */
	struct cfl_header auth[CFL_MSG_AUTH_HDRS];
	char *auth_buf; /* their values, one allocation of the size they take */
	size_t n_auth;
};

struct cfl_msg_hub {
	uint32_t kind;    /* first, as in struct cfl_peer */
	uint64_t serials; /* the last peer serial given out */
	struct cfl_loop *loop;
	char cell[CFL_MSG_NAME_MAX];
	struct topic topics[MAX_TOPICS];
	size_t n_topics;
	struct cfl_peer *peers;
	size_t n_peers;
	/* The named peers by name (cfl_msg_hub_find is on every job message of the server): a
	 * chained hash table of n_buckets (a power of two, or 0 before the first name). */
	struct cfl_peer **buckets;
	size_t n_buckets, n_named;
	cfl_msg_peer_fn up, down;
	void *peer_arg;
	int freeing; /* cfl_msg_hub_free is running: no callbacks into the application */
	cfl_msg_gate_fn gate;
	void *gate_arg;
	char routed[MAX_ROUTED][64];
	size_t n_routed;
};

#define MAX_OUT_HDRS (CFL_FRAME_MAX_HEADERS - 4 - CFL_MSG_AUTH_HDRS)

/* A request waiting for its reply on peer p; cfl__pending_arm starts its timeout. */
struct pending *cfl__pending_new(struct cfl_peer *p, uint64_t timeout_ms, cfl_msg_reply_fn fn,
                                 void *arg);
void cfl__pending_unlink(struct pending *q);
void cfl__pending_arm(struct pending *q);

/* Takes a peer out of the index of names, before it goes (hub_names.c). */
void cfl__hub_unindex(struct cfl_msg_hub *h, struct cfl_peer *p);

/* Passes a REQUEST or ONEWAY addressed to cell `dst` on to it (route.c). */
int cfl__msg_route(struct cfl_peer *p, const struct cfl_frame *f, int more, const char *dst);

#endif
