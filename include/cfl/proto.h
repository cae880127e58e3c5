/* The protocol's vocabulary: every topic and every header key cfl puts on the wire, in one
 * place (docs/protocol.md §5, "Vocabulary").
 *
 * Each word is a string-literal constant, so that it can name a header in CFL_HDR() (its length
 * then counted by sizeof, cfl/frame.h) and a topic in static tables. CFL_TOPICS(X) and
 * CFL_KEYS(X) list the constants, X(NAME) for each CFL_TOPIC_NAME / CFL_KEY_NAME, for code that
 * walks the vocabulary. A word is added in three places together: its constant here, its line
 * in the list below it, its row in docs/protocol.md §5. tests/unit/test_proto.c fails when the
 * constants, the lists and the document disagree, or when a key breaks the frame's rules for
 * keys (1.4).
 *
 * This is the protocol's dictionary, not the hub's: the message hub itself reads only `topic`,
 * `src`, `dst` and `status`; each floor above it (login, jobs, diagnostics, admin) uses its own
 * words from here, and stays the only one that gives them meaning.
 *
 * Header only: no functions, nothing to link. */
#ifndef CFL_PROTO_H
#define CFL_PROTO_H

#include "cfl/frame.h"

/* --- topics: what a REQUEST or ONEWAY is about ------------------------------------------------ */

/* The login (docs/security.md): answered by the server, sent by clients and admin consoles. */
#define CFL_TOPIC_CHALLENGE "challenge" /* step 1: the server proves its identity */
#define CFL_TOPIC_REGISTER  "register"  /* step 2: the site proves its own, gets a token */
#define CFL_TOPIC_RENEW     "renew"     /* a new token before the current one expires */
#define CFL_TOPIC_HEARTBEAT "heartbeat" /* a logged-in site is alive */
#define CFL_TOPIC_GOODBYE   "goodbye"   /* the site leaves: its session ends */
/* Admin commands, from an admin console to the server. */
#define CFL_TOPIC_ADMIN "admin"
/* Jobs, from the server to the sites (docs/jobs.md). */
#define CFL_TOPIC_JOB_DEPLOY       "job.deploy"       /* the job's bundle */
#define CFL_TOPIC_TASK_TRAIN       "task.train"       /* the global model: train a round on it */
#define CFL_TOPIC_TASK_GET_UPDATE  "task.get_update"  /* send the round's update back */
#define CFL_TOPIC_TASK_GET_WEIGHTS "task.get_weights" /* client_api: the script's weights */
#define CFL_TOPIC_JOB_END          "job.end"          /* the job completed */
#define CFL_TOPIC_JOB_ABORT        "job.abort"        /* the job failed or was aborted */
#define CFL_TOPIC_SHUTDOWN         "shutdown"         /* the site process stops */
/* Diagnostics, for tests, benchmarks and operators checking a path: `ping` served by every
 * server; the others only by `cfl server --diag` (and `echo` by sites, routed then). */
#define CFL_TOPIC_ECHO   "echo"   /* the body back */
#define CFL_TOPIC_PING   "ping"   /* an empty answer; one-way pings are dropped */
#define CFL_TOPIC_SINK   "sink"   /* consumes a body: replies with its length and sha256 */
#define CFL_TOPIC_SOURCE "source" /* streams back `length` bytes of the test stream of `seed` */

/* Application topics start with this; the server routes them between sites (and `echo` with
 * --diag: cfl_msg_hub_route). */
#define CFL_TOPIC_APP_PREFIX "app."

#define CFL_TOPICS(X)       \
	X(CHALLENGE)        \
	X(REGISTER)         \
	X(RENEW)            \
	X(HEARTBEAT)        \
	X(GOODBYE)          \
	X(ADMIN)            \
	X(JOB_DEPLOY)       \
	X(TASK_TRAIN)       \
	X(TASK_GET_UPDATE)  \
	X(TASK_GET_WEIGHTS) \
	X(JOB_END)          \
	X(JOB_ABORT)        \
	X(SHUTDOWN)         \
	X(ECHO)             \
	X(PING)             \
	X(SINK)             \
	X(SOURCE)

/* --- header keys -------------------------------------------------------------------------------
 */

/* Messages between cells (docs/protocol.md §4), added by the hub. */
#define CFL_KEY_TOPIC       "topic" /* REQUEST, ONEWAY: a CFL_TOPIC_* */
#define CFL_KEY_SRC         "src"   /* REQUEST, ONEWAY: the sending cell */
#define CFL_KEY_DST         "dst"   /* REQUEST, ONEWAY: the target cell; absent: the receiver */
#define CFL_KEY_STATUS      CFL_FRAME_KEY_STATUS      /* REPLY with ERROR: a short word */
#define CFL_KEY_BODY_LENGTH CFL_FRAME_KEY_BODY_LENGTH /* a stream's first frame: total bytes */
/* Authentication, on every message after login (SPEC §5). */
#define CFL_KEY_CLIENT_NAME     "client_name"     /* also on challenge and register */
#define CFL_KEY_TOKEN           "token"           /* the sender's token */
#define CFL_KEY_TOKEN_SIGNATURE "token_signature" /* the server's signature of it */
/* The login exchange. */
#define CFL_KEY_NONCE                  "nonce"        /* challenge: the client's, hex */
#define CFL_KEY_KIND                   "kind"         /* challenge, register: client or admin */
#define CFL_KEY_TLS_CERT               "tls_cert"     /* challenge: the handshake's server cert */
#define CFL_KEY_SERVER_CN              "server_cn"    /* challenge reply */
#define CFL_KEY_SERVER_NONCE           "server_nonce" /* challenge reply, then register */
#define CFL_KEY_SIGNATURE              "signature"    /* challenge reply, register */
#define CFL_KEY_PROJECT                "project"      /* register */
#define CFL_KEY_ISSUED_TOKEN           "issued_token" /* register and renew replies: */
#define CFL_KEY_ISSUED_TOKEN_SIGNATURE "issued_token_signature"
#define CFL_KEY_ISSUED_TOKEN_EXPIRY    "issued_token_expiry" /* unix seconds */
#define CFL_KEY_ISSUED_TOKEN_TTL_MS    "issued_token_ttl_ms" /* lifetime left */
#define CFL_KEY_SERVER_TOKEN           "server_token"        /* the server's own, and */
#define CFL_KEY_SERVER_TOKEN_SIGNATURE "server_token_signature"
#define CFL_KEY_SECURITY               "security"     /* the server's connection_security */
#define CFL_KEY_HEARTBEAT_MS           "heartbeat_ms" /* the heartbeat period it wants */
/* Jobs. */
#define CFL_KEY_JOB        "job"        /* the job id: job.*, task.* */
#define CFL_KEY_ROUND      "round"      /* task.train, task.get_update: from 1 */
#define CFL_KEY_SITE_INDEX "site_index" /* task.train: this site's place, from 0 */
#define CFL_KEY_SITE_COUNT "site_count" /* task.train: sites in the round */
#define CFL_KEY_STEPS      "steps"      /* task.train reply: training steps done */
#define CFL_KEY_LOSS       "loss"       /* task.train reply: the training loss */
/* Diagnostics. */
#define CFL_KEY_LENGTH "length" /* source: bytes wanted; sink reply: bytes received */
#define CFL_KEY_SEED   "seed"   /* source: the test stream's seed */
#define CFL_KEY_SHA256 "sha256" /* sink reply: hex digest of the body */
/* Admin. */
#define CFL_KEY_CMD "cmd" /* admin: the command line */

#define CFL_KEYS(X)               \
	X(TOPIC)                  \
	X(SRC)                    \
	X(DST)                    \
	X(STATUS)                 \
	X(BODY_LENGTH)            \
	X(CLIENT_NAME)            \
	X(TOKEN)                  \
	X(TOKEN_SIGNATURE)        \
	X(NONCE)                  \
	X(KIND)                   \
	X(TLS_CERT)               \
	X(SERVER_CN)              \
	X(SERVER_NONCE)           \
	X(SIGNATURE)              \
	X(PROJECT)                \
	X(ISSUED_TOKEN)           \
	X(ISSUED_TOKEN_SIGNATURE) \
	X(ISSUED_TOKEN_EXPIRY)    \
	X(ISSUED_TOKEN_TTL_MS)    \
	X(SERVER_TOKEN)           \
	X(SERVER_TOKEN_SIGNATURE) \
	X(SECURITY)               \
	X(HEARTBEAT_MS)           \
	X(JOB)                    \
	X(ROUND)                  \
	X(SITE_INDEX)             \
	X(SITE_COUNT)             \
	X(STEPS)                  \
	X(LOSS)                   \
	X(LENGTH)                 \
	X(SEED)                   \
	X(SHA256)                 \
	X(CMD)

/* --- error statuses: the `status` word of an error REPLY that a peer acts on ------------------ */

/* A site's decision not to take a job (its authorization or privacy policy, or the job's
 * signature): final for that job, reported per site by list_jobs (docs/jobs.md). */
#define CFL_STATUS_REFUSED "refused"

#endif
