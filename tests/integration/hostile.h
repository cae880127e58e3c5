/* The hostile-client suite (tests/integration/test_hostile.sh): a program that attacks a running
 * `cfl server` through the library's own transport, one case per function, and reports whether
 * each attack was refused.
 *
 * Everything here is synchronous: each call drives the one event loop until what it waits for
 * happened or its deadline passed (H_WAIT_MS unless said otherwise). Nothing waits forever. */
#ifndef CFL_HOSTILE_H
#define CFL_HOSTILE_H

#include "cfl/conn.h"
#include "cfl/frame.h"
#include "cfl/kit.h"
#include "cfl/loop.h"
#include "cfl/pki.h"
#include "cfl/tls.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define H_WAIT_MS   5000 /* every wait for an answer or a close */
#define H_MAX_HDRS  32
#define H_NAME_MAX  256
#define H_TOKEN_MAX 256
#define H_SIG_MAX   1024
#define H_NONCE_HEX 65 /* 32 random bytes as hex, NUL */
#define H_SITES     3

/* Credentials an attacker may hold: a participant's kit, or a certificate made for the attack. */
struct h_ident {
	char name[H_NAME_MAX];
	struct cfl_pki_key *key;
	struct cfl_pki_cert *cert;
	char *pem; /* the certificate as PEM, sent in register */
	size_t pem_len;
	char cert_file[PATH_MAX], key_file[PATH_MAX]; /* the same on disk, for TLS */
	struct cfl_tls_ctx *tls;                      /* made on first use; NULL in clear mode */
};

struct h_env {
	struct cfl_loop *loop;
	struct cfl_kitcfg cfg; /* the first site's kit: server address, mode, project, server CN */
	char prod[PATH_MAX], tmp[512];
	struct h_ident site[H_SITES], admin;
	struct cfl_pki_key *ca_key; /* the project CA: makes expired and future certificates */
	struct cfl_pki_cert *ca;
	unsigned n_forged;
	char *server_pem; /* the server's certificate, from the first challenge */
	size_t server_pem_len;
	/* settings */
	long server_pid;         /* 0: the flood case cannot look at the server's memory */
	double login_timeout_s;  /* the server's CFL_LOGIN_TIMEOUT_S */
	double max_token_wait_s; /* the longest the expired-token case waits for an expiry */
	unsigned long flood_n;
	unsigned long rss_limit_kib;
	FILE *expect; /* log lines the server must have written, or NULL */
};

/* A message received on an h_conn, copied out of the receive buffer. */
struct h_msg {
	struct h_msg *next;
	uint8_t type;
	uint16_t flags;
	uint64_t id, ref;
	size_t n;
	char *key[H_MAX_HDRS], *val[H_MAX_HDRS];
	uint8_t *body;
	size_t body_len;
};

/* One connection to the server (cfl_conn, with the kit's connection security). */
struct h_conn {
	struct h_env *env;
	struct cfl_conn *c; /* NULL once closed */
	int opened, closed, close_code;
	char close_reason[256];
	char addr[CFL_CONN_ADDR_MAX]; /* our local address: the server logs it */
	struct h_msg *in;             /* messages received and not taken yet */
	int count_only;               /* the flood: count replies, keep nothing */
	uint64_t n_replies;
	/* after h_login */
	char name[H_NAME_MAX], token[H_TOKEN_MAX], sig[H_SIG_MAX];
	char srv_token[H_TOKEN_MAX], srv_sig[H_SIG_MAX];
	int64_t expiry; /* unix seconds */
};

/* Headers to send, pointing at the caller's strings. */
struct h_hdrs {
	struct cfl_header h[H_MAX_HDRS];
	size_t n;
};

/* What a register request says and how it is signed. */
struct h_reg {
	const char *name, *project, *nonce, *kind;
	const char *pem; /* body */
	size_t pem_len;
	const struct cfl_pki_key *key; /* signs "cfl-register" name nonce project */
	const char *sig;               /* sent as is instead (a replay); NULL: sign */
};

/* A plain socket, under the kit's TLS when the server uses TLS: for bytes that are not frames. */
struct h_raw {
	int fd;
	struct cfl_tls *tls;
	char addr[CFL_CONN_ADDR_MAX];
};

/* --- hostile_net.c, hostile_raw.c
 * ---------------------------------------------------------------------------- */

int h_env_init(struct h_env *e, const char *prod, const char *const sites[H_SITES],
               const char *admin, const char *ca_key, char *err, size_t n);
void h_env_release(struct h_env *e);

/* A new key and a certificate for `cn` from `ca_key`/`ca` (NULL: the project CA), written to
 * the temp folder too. role: admin role or NULL. */
int h_ident_forge(struct h_env *e, struct h_ident *id, const char *cn, const char *role,
                  const struct cfl_pki_key *ca_key, const struct cfl_pki_cert *ca,
                  time_t not_before, int days, char *err, size_t n);
void h_ident_release(struct h_ident *id);
/* The TLS context that presents `id` (mtls), or the kit's one without a certificate (tls);
 * NULL in clear mode. Made on first use, owned by the identity. */
int h_ident_tls(struct h_env *e, struct h_ident *id, struct cfl_tls_ctx **out, char *why, size_t n);

/* Dials the server presenting `as` in mtls mode (the TLS certificate; ignored in clear and tls).
 * Returns 0, or CFL_ECLOSED / CFL_ETIMEDOUT with `why` set (the server refused the connection). */
int h_open(struct h_env *e, struct h_ident *as, struct h_conn **out, char *why, size_t n);
void h_close(struct h_conn *hc);
void h_msg_free(struct h_msg *m);
const char *h_msg_get(const struct h_msg *m, const char *key); /* NULL when absent */

void h_hdr(struct h_hdrs *h, const char *key, const char *val);
/* The three authentication headers. */
void h_hdr_auth(struct h_hdrs *h, const char *name, const char *token, const char *sig);

/* Sends a REQUEST; returns its id, or 0 when it could not be sent. */
uint64_t h_request(struct h_conn *hc, const char *topic, const struct h_hdrs *h, const void *body,
                   size_t len);
/* Waits for the reply to `id`: 0 and *out (h_msg_free), CFL_ECLOSED or CFL_ETIMEDOUT. */
int h_wait_reply(struct h_conn *hc, uint64_t id, uint64_t ms, struct h_msg **out);
/* Runs the loop for `ms` (or until `stop` returns non-zero). */
void h_pump(struct h_env *e, uint64_t ms, int (*stop)(void *), void *arg);

/* The verdict on request `id`: 1 if refused (an error reply, or the connection dropped), with
 * `how` saying so; 0 if it was accepted or nothing happened within H_WAIT_MS. An error reply
 * from the server's authentication is noted in the expected-log file. */
int h_expect_reject(struct h_conn *hc, uint64_t id, char *how, size_t n);
/* The same verdict on a reply in hand (consumed). */
int h_judge(struct h_conn *hc, struct h_msg *m, char *how, size_t n);

/* The login steps. h_challenge checks the server's proof (cert, CN, signature). */
int h_challenge(struct h_conn *hc, const char *name, const char *kind, char snonce[H_NONCE_HEX],
                char *why, size_t n);
/* Signs and sends a register request; returns its id or 0. */
uint64_t h_register(struct h_conn *hc, const struct h_reg *r);
/* Reads the tokens of a successful register reply into hc. */
int h_take_tokens(struct h_conn *hc, const char *name, const struct h_msg *reply);
/* An honest login of `id` (kind "client" or "admin"). */
int h_login(struct h_conn *hc, struct h_ident *id, const char *kind, char *why, size_t n);

void h_nonce(char hex[H_NONCE_HEX]);
/* base64 signature of the NUL-separated label a b c (each followed by a NUL). */
int h_sign(const struct cfl_pki_key *key, const char *label, const char *a, const char *b,
           const char *c, char *out, size_t size);

int h_raw_open(struct h_env *e, struct h_ident *as, int with_tls, struct h_raw *r, char *why,
               size_t n);
/* Writes everything within `ms`; 0, or CFL_ECLOSED when the peer is gone. */
int h_raw_write(struct h_raw *r, const void *p, size_t len, uint64_t ms);
/* Reads and discards until the peer closes: 1 if it did within `ms`, else 0. */
int h_raw_wait_closed(struct h_raw *r, uint64_t ms);
void h_raw_close(struct h_raw *r);

/* The server's resident memory in KiB (VmRSS), or -1. */
long h_server_rss_kib(const struct h_env *e);
/* Notes a log line the server must have written: "R ADDR WHY" (a rejection, exactly once per
 * ADDR and WHY) or "L TEXT" (any line containing TEXT). */
void h_expect_log(struct h_env *e, char kind, const char *addr, const char *text);

void h_cat(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* --- hostile_cases.c / hostile_abuse.c -------------------------------------------------------- */

/* A case returns 1 when the attack was refused (PASS), 0 when not; `how` says what happened. */
typedef int (*h_case_fn)(struct h_env *e, char *how, size_t n);

struct h_case {
	const char *name;
	h_case_fn run;
	const char *what;
};

extern const struct h_case h_cases[];
extern const size_t h_n_cases;

int h_case_challenge_flood(struct h_env *e, char *how, size_t n);
/* hostile_jobs.c */
int h_case_unsigned_job(struct h_env *e, char *how, size_t n);
int h_case_job_changed_after_signing(struct h_env *e, char *how, size_t n);
int h_case_job_signed_by_other_admin(struct h_env *e, char *how, size_t n);
int h_case_job_signed_by_foreign_ca(struct h_env *e, char *how, size_t n);
int h_case_oversized_frame(struct h_env *e, char *how, size_t n);
int h_case_random_bytes(struct h_env *e, char *how, size_t n);
int h_case_slow_trickle(struct h_env *e, char *how, size_t n);

#endif
