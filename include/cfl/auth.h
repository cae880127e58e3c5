/* Message authentication (SPEC §5, docs/security.md): login with kit credentials, a token and
 * token signature on every message, expiry and renewal, heartbeats, dead-client removal.
 *
 * Server side: cfl_auth_server installs a gate on the hub (every message but challenge,
 * register and goodbye must carry client_name + token + token_signature matching a live
 * session of the connection's own identity) and serves the challenge, register, renew,
 * heartbeat and goodbye topics. Client side: cfl_auth_client logs a peer in and keeps its token
 * fresh, and checks the server's own headers on every message it receives.
 *
 * Threads: the loop's thread only. */
#ifndef CFL_AUTH_H
#define CFL_AUTH_H

#include "cfl/err.h"
#include "cfl/msg.h"
#include "cfl/tls.h"

#include <stdint.h>
#include <time.h>

#define CFL_AUTH_NAME_MAX 256

enum cfl_auth_kind { CFL_AUTH_CLIENT = 0, CFL_AUTH_ADMIN = 1 };

struct cfl_auth_times {
	uint64_t token_ttl_ms;     /* token lifetime; default 1 h; renewed at 2/3 of it */
	uint64_t heartbeat_ms;     /* client heartbeat interval; default 10 s */
	uint64_t dead_ms;          /* a session silent this long is removed; default 60 s */
	uint64_t login_timeout_ms; /* a connection must log in within this; default 10 s */
};

/* Defaults, overridden by the environment (for operators and tests): CFL_TOKEN_TTL_S,
 * CFL_HEARTBEAT_S, CFL_DEAD_TIMEOUT_S, CFL_LOGIN_TIMEOUT_S (seconds; fractions allowed). */
void cfl_auth_times_default(struct cfl_auth_times *t);

/* --- server ----------------------------------------------------------------------------- */

struct cfl_auth_server;

struct cfl_auth_server_cfg {
	const char *project;
	const char *server_cn;
	const char *cert_file, *key_file, *root_ca;
	/* The kit's local/crl.pem (CRLs of the issuing CA), or NULL; a missing file: none. */
	const char *crl_file;
	enum cfl_conn_sec mode; /* the server's connection security, told to clients */
	struct cfl_auth_times times;
};

/* Loads the server's key and certificates, installs the gate and the login topics on `hub`.
 * A login's certificate must chain to root_ca through the issuing chain of cert_file, be issued
 * by exactly the issuing CA, and not be on a CRL of crl_file: a revoked one is refused with
 * "certificate revoked" in the log and in the answer. The caller forwards its hub peer
 * callbacks to cfl_auth_server_peer_up/down. */
int cfl_auth_server_new(struct cfl_msg_hub *hub, const struct cfl_auth_server_cfg *cfg,
                        struct cfl_auth_server **out, struct cfl_err *e);
void cfl_auth_server_free(struct cfl_auth_server *s);
/* Renewal: reads cfg's key, certificate, trust and CRLs again. The certificate must match the
 * key and chain to the anchor, else nothing changes (error in `e`). Live sessions go on (their
 * tokens stay valid); challenges answered from now on show the new certificate. */
int cfl_auth_server_reload(struct cfl_auth_server *s, const struct cfl_auth_server_cfg *cfg,
                           struct cfl_err *e);
/* Replaces the CRLs in force with those of `crl_file` (missing: none); one that does not load
 * (not signed by the issuing CA, out of date, unreadable) changes nothing and returns the error.
 * Then ends the sessions, and closes the connections, of every revoked certificate (logged
 * "certificate revoked"). Returns how many were ended. */
int cfl_auth_server_set_crl(struct cfl_auth_server *s, const char *crl_file, struct cfl_err *e);
/* Ends the sessions whose certificate is on a CRL in force; returns how many. */
int cfl_auth_server_sweep(struct cfl_auth_server *s);
void cfl_auth_server_peer_up(struct cfl_auth_server *s, struct cfl_peer *p);
void cfl_auth_server_peer_down(struct cfl_auth_server *s, struct cfl_peer *p);

struct cfl_auth_session_info {
	char name[CFL_AUTH_NAME_MAX];
	enum cfl_auth_kind kind;
	char role[64];
	char addr[64], via[64];
	enum cfl_conn_sec mode;
	int64_t last_seen_ms;   /* unix time of the last authenticated message */
	int64_t token_expiry;   /* unix seconds */
	int64_t cert_not_after; /* notAfter of the certificate it logged in with, unix seconds */
	int connected;
};

/* Fills up to `max` entries of kind `kind`; returns the number of sessions. */
size_t cfl_auth_server_sessions(const struct cfl_auth_server *s, enum cfl_auth_kind kind,
                                struct cfl_auth_session_info *out, size_t max);
/* Ends the session of `name`: its tokens stop working and its connection is closed.
 * Returns 0 or CFL_ENOENT. */
int cfl_auth_server_remove(struct cfl_auth_server *s, const char *name, const char *reason);
/* The logged-in identity of a peer: its name and kind, or NULL when not logged in. */
const char *cfl_auth_server_identity(const struct cfl_peer *p, enum cfl_auth_kind *kind,
                                     const char **role);
/* The O (organization) of the certificate the peer logged in with: "" when it names none,
 * NULL when the peer is not logged in. Valid while the session lasts. */
const char *cfl_auth_server_org(const struct cfl_peer *p);

/* --- the CRL file ------------------------------------------------------------------------ */

/* How often a server or client looks whether its local/crl.pem changed (a change is in force
 * within this plus the time to load it). */
#define CFL_AUTH_CRL_POLL_MS 1000

/* What a file looked like last time: existence, inode, size, modification time. */
struct cfl_auth_file_watch {
	int seen, exists;
	uint64_t ino, size;
	int64_t mtime_ns;
};

/* Looks at `path` now: 1 if it differs from what `w` last saw (appeared, vanished, replaced,
 * rewritten), else 0; `w` remembers it. A zeroed `w` has seen nothing (the first call is 1). */
int cfl_auth_file_changed(struct cfl_auth_file_watch *w, const char *path);
/* Whether the file existed at the last look. */
int cfl_auth_file_exists(const struct cfl_auth_file_watch *w);

/* --- client ----------------------------------------------------------------------------- */

struct cfl_auth_client;

struct cfl_auth_client_cfg {
	const char *name; /* site name or admin e-mail: the certificate CN */
	const char *project;
	const char *server_cn; /* the identity the server must prove */
	const char *cert_file, *key_file, *root_ca;
	/* The kit's local/crl.pem: the server's certificate is checked against it; NULL: none. */
	const char *crl_file;
	enum cfl_auth_kind kind;
	enum cfl_conn_sec mode; /* this side's connection security (mismatch check) */
	struct cfl_auth_times times;
};

/* Called once per login attempt: status 0 when logged in, else the reason. CFL_EPERM: the
 * server refused this side's certificate as revoked (the reason says "certificate revoked"):
 * logging in again cannot help until the certificate is replaced. */
typedef void (*cfl_auth_login_fn)(struct cfl_peer *p, int status, const char *reason, void *arg);

int cfl_auth_client_new(struct cfl_msg_hub *hub, const struct cfl_auth_client_cfg *cfg,
                        struct cfl_auth_client **out, struct cfl_err *e);
void cfl_auth_client_free(struct cfl_auth_client *c);
/* Renewal: reads cfg's key, certificate, trust and CRLs again (the certificate must match the
 * key and chain, else nothing changes). The connection goes on; the next login uses them. */
int cfl_auth_client_reload(struct cfl_auth_client *c, const struct cfl_auth_client_cfg *cfg,
                           struct cfl_err *e);
/* Replaces the CRLs in force (missing file: none); one that does not load changes nothing.
 * When the server's certificate of the current login is revoked, the connection is closed
 * ("certificate revoked") and 1 returned, else 0. */
int cfl_auth_client_set_crl(struct cfl_auth_client *c, const char *crl_file, struct cfl_err *e);
/* Starts the login on a freshly opened peer; afterwards heartbeats and renewals run by
 * themselves until the peer goes (call cfl_auth_client_peer_down then). */
int cfl_auth_client_login(struct cfl_auth_client *c, struct cfl_peer *p, cfl_auth_login_fn fn,
                          void *arg);
void cfl_auth_client_peer_down(struct cfl_auth_client *c, struct cfl_peer *p);
/* Current token expiry (unix seconds) and renewal count, for logs and tests. */
int64_t cfl_auth_client_token_expiry(const struct cfl_auth_client *c);
unsigned cfl_auth_client_renewals(const struct cfl_auth_client *c);

#endif
