/* Internal to the server side of message authentication: its records, shared by
 * auth_server.c (login, tokens, the gate) and auth_creds.c (credentials, reload, revocation). */
#ifndef CFL_AUTH_SRV_H
#define CFL_AUTH_SRV_H

#include "auth_int.h"

#include <limits.h>

#define CFL_AUTH_PATH_MAX PATH_MAX

#define MAX_PENDING    1024  /* challenges outstanding at once; the oldest is evicted */
#define PENDING_TTL_MS 30000 /* a challenge must be answered within this */
#define MAX_CHALLENGES 8     /* per connection: one login needs one; a few retries */

struct pend {
	char name[CFL_AUTH_NAME_MAX];
	char nonce[NONCE_HEX];
	uint64_t at_ms;
	int live;
};

struct tok {
	char token[TOKEN_MAX];
	char sig[SIG_B64_MAX];
	size_t token_len, sig_len;
	int64_t expiry_s;     /* unix seconds, told to the site */
	uint64_t deadline_ms; /* the same on the loop's monotonic clock, checked per message */
};

struct session {
	struct session *next, **pprev; /* in s->sessions; pprev: what points at this one */
	char name[CFL_AUTH_NAME_MAX];
	size_t name_len; /* compared with client_name on every message */
	enum cfl_auth_kind kind;
	char role[64];
	char org[CFL_AUTH_NAME_MAX]; /* the certificate's O, "" without one */
	struct cfl_peer *peer;       /* NULL while disconnected */
	uint64_t last_seen_ms;       /* loop clock */
	/* In the server's list by last_seen_ms, oldest first: the reaper looks at its head
	 * only (a pass over 19,000 sessions a second was the idle server's largest cost). */
	struct session *seen_prev, *seen_next;
	struct tok cur, prev; /* prev stays valid until it expires: renewal never interrupts */
	struct tok srv;       /* the server's own token towards this client */
	uint64_t issued_ms;   /* loop clock: when cur was issued (login or renewal) */
	int renew_warned;     /* a refused renewal was logged for this session */
	char addr[64], via[64];
	enum cfl_conn_sec mode;
	struct cfl_pki_cert *cert; /* the certificate it logged in with */
	int64_t cert_not_after;    /* its notAfter, unix seconds */
};

/* Per connection. */
struct apeer {
	struct cfl_auth_server *srv;
	struct session *sess;
	uint64_t login_timer;
	unsigned challenges; /* answered on this connection */
};

struct cfl_auth_server {
	struct cfl_msg_hub *hub;
	struct cfl_loop *loop;
	char project[CFL_AUTH_NAME_MAX], server_cn[CFL_AUTH_NAME_MAX];
	enum cfl_conn_sec mode;
	struct cfl_auth_times t;
	/* Own credentials and the project's trust (auth_creds.c): replaced whole on reload. */
	struct cfl_pki_key *key;
	struct cfl_pki_cert *cert;
	struct cfl_pki_trust *trust; /* anchor + issuing chain + the CRLs in force */
	char *cert_pem;
	size_t cert_pem_len;
	char root_ca[CFL_AUTH_PATH_MAX], cert_file[CFL_AUTH_PATH_MAX];
	struct warned *warned; /* certificates whose coming expiry was logged */
	size_t n_warned;
	struct pend pend[MAX_PENDING];
	size_t pend_next;
	struct session *sessions;
	struct session *seen_head, *seen_tail; /* the sessions by last_seen_ms, oldest first */
	uint64_t reaper;
};

/* Ends session `x`: its tokens stop working (the connection is the caller's business). */
void cfl__auth_end_session(struct cfl_auth_server *s, struct session *x);

/* Reads the server's key, certificate and trust for cfl_auth_server_new. */
int cfl__auth_server_creds_load(struct cfl_auth_server *s, const struct cfl_auth_server_cfg *cfg,
                                struct cfl_err *e);
void cfl__auth_server_creds_free(struct cfl_auth_server *s);

/* Logs, once per certificate, that session `x`'s certificate expires within 30 days. */
void cfl__auth_expiry_check(struct cfl_auth_server *s, struct session *x);

#endif
