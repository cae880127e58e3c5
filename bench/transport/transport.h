/* bench_transport's internal header: its settings, its results and what its files share (the
 * server process behind bt_*, in proc.c; sockets, kits and the baselines' pipes in kits.c; the
 * cfl server process in server.c; the cfl client in client.c; one file per measured path:
 * bulk.c, messages.c, idle.c). */
#ifndef BENCH_TRANSPORT_H
#define BENCH_TRANSPORT_H

#include "cfl/conn.h"
#include "cfl/kit.h"
#include "cfl/loop.h"
#include "cfl/tls.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#define WAIT_MS      120000            /* every wait gives up after this */
#define BUF_SIZE     ((size_t)1 << 20) /* the bulk source, and each baseline write and read */
#define MSG_SIZE     64
#define RUNS         5
#define NOFILE_MIN   12000
#define DIAL_WINDOW  64                /* handshakes in flight in the idle-connection test */
#define ONEWAY_QUEUE ((size_t)1 << 20) /* one-way bytes queued before letting the loop run */
#define LOOPBACK     "127.0.0.1"
/* cfl offers TLS_AES_128_GCM_SHA256 first, with server preference (src/net/tls.c): the
 * baseline uses the same suite so that both sides of the comparison run the same cipher. */
#define BASE_SUITE "TLS_AES_128_GCM_SHA256"

enum { B_CFL, B_COPY, B_OSSL, B_TCP, B_KINDS };
#define MSG_RUNS 5 /* paired runs of TCP ping-pong and cfl request/reply */

struct bt_settings {
	uint64_t bulk;
	int rtts, oneways, conns;
};

struct bt_results {
	double bulk[B_KINDS][RUNS]; /* MB/s */
	double tcp_rtt, tls_rtt, rtt, rtt_ratio, oneway, hs_rate, hs_secs;
	long srv_before, srv_after, cli_before, cli_after; /* VmRSS, KiB */
};

extern struct bt_settings set;
extern struct bt_results res;
extern struct cfl_kitcfg kit_srv, kit_cli;
extern int cfl_port; /* where the server process serves cfl */
extern struct cfl_tls_ctx *srv_tls, *cli_tls;
extern uint8_t src_buf[BUF_SIZE], rx_buf[BUF_SIZE];
extern char cfl_cipher[96], base_cipher[96];

/* proc.c: bench_proc.h's server process, its pipes, dying cleanly, the clock, medians. */
void bt_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
double bt_now_s(void);
double bt_median(double *v, int n);
void bt_tell(int v);
int bt_spawn(int (*fn)(const void *arg), const void *arg);
int bt_read_status(struct cfl_loop *loop, const char *what);
void bt_reap(void);
pid_t bt_child(void);
int bt_ctl_fd(void);
int bt_interrupted(void);
void bt_signals(void);
const char *bt_tmp_make(const char *tmpl);
void bt_tmp_remove(void);

/* kits.c */
void tune(int fd);
int tcp_listen(int *port);
int tcp_connect(int port);
void make_kits(void);

/* A blocking byte pipe, TLS or plain: the two baselines share their loops. */
struct io {
	int fd;
	SSL *ssl;
	SSL_CTX *ctx;
};

void ossl_open(struct io *p, int server);
void io_write(struct io *p, const uint8_t *buf, size_t len);
size_t io_read(struct io *p, uint8_t *buf, size_t len);
void io_read_full(struct io *p, uint8_t *buf, size_t len);
void io_close(struct io *p);

/* server.c */
int spawn_cfl(void);

/* client.c: one connection (bulk, messages) or a fleet of them (idle connections). */
struct cli {
	struct cfl_loop *loop;
	struct cfl_conn_opts o;
	struct cfl_conn *c, **conns; /* conns: every open connection; &c when there is one */
	int n, dialed, opened, closing, closed, replies, left, sent, status;
	uint64_t off; /* stream bytes read from the source */
	double t_reply;
	char reply[MSG_SIZE + 1];
};

void run_until(struct cfl_loop *loop, const int *flag, int want, const char *what);
void request(struct cli *k);
void cli_open(struct cli *k, int n);
void cli_close(struct cli *k);
uint64_t reply_num(const struct cli *k, int second);

/* The measured paths: bulk.c, messages.c, idle.c. */
void bench_bulk(void);
void bench_messages(void);
void bench_idle(void);

#endif
