/* bench_scale's internal header: its limits, its state and what its files share (the processes
 * and /proc figures in proc.c; the kits, the run folder and the server in server.c; the load
 * processes seen from the parent in loaders.c; the admin session in admin.c; the load process
 * itself in load.c). */
#ifndef BENCH_SCALE_H
#define BENCH_SCALE_H

#include "cfl/err.h"

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#define LOAD_MAX    5000 /* sites per load process */
#define DIAL_WINDOW 64   /* logins in flight per load process */
#define KIT_FORMAT  "cfl-bench-scale kits 2: mtls, ecdsa-p256, server localhost, admin"
#define ADMIN_NAME  "admin@bench.local"
#define N_MAX       (LOAD_MAX * 4)
#define MODEL_FLOAT 1000
#define IDLE_S      10.0
#define SETUP_S     600.0 /* the load processes' set-up */
#define ROUND_S     600.0
#define POLL_MS     50 /* list_jobs while the round runs */
#define EVENTS_MAX  60
#define BATCH       9000 /* sites provisioned at once */

struct loader {
	pid_t pid;
	int ctl, st, ready, in, fails, drops;
	double setup_s;
	char buf[4096];
	size_t len;
};

struct bench_scale {
	int n, n_load, keep;
	char cache[PATH_MAX / 2], prod[PATH_MAX / 2], run[PATH_MAX / 2], self_dir[PATH_MAX / 2];
	char batch[(N_MAX + BATCH - 1) / BATCH][PATH_MAX / 2]; /* output folder of each batch */
	pid_t server;
	int fed_port, admin_port;
	struct loader ld[N_MAX / LOAD_MAX];
	char events[EVENTS_MAX][160];
	int n_events, errors;
};

extern struct bench_scale B;
extern volatile sig_atomic_t interrupted;

enum adm_step { A_STATUS, A_CLIENTS, A_SUBMIT, A_POLL };

struct adm_state {
	struct cfl_admin *s;
	enum adm_step step;
	double t_sent, t_status, t_clients, t_submit, t_round, t_poll_max, end;
	size_t clients_bytes;
	int listed, total, connected, updates, polls, cap;
	double server_round_s;
	/* CPU ticks from the submission to FINISHED: the server's, the load processes' */
	long long srv_ticks, load_ticks;
	char job_id[64], status[64], why[256];
};

extern struct adm_state A;

/* proc.c */
double now_s(void);
/* snprintf into a path buffer: 0, or -1 when it did not fit. */
int pathf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void on_signal(int signo);
void cleanup(void);
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void raise_nofile(void);
long nofile_soft(void);
long proc_kib(pid_t pid, const char *key);
long long proc_ticks(pid_t pid);
int memcount(long long *ossl, long long *heap);

/* server.c */
const char *prod_of(int num);
void provision(void);
void write_job(int min_clients);
void make_run(void);
void start_server(void);

/* loaders.c */
void start_loaders(void);
void drain(int ms);
void drain_for(double secs);
int total(size_t field);
void wait_ready(void);
double login_all(void);

/* admin.c */
int run_admin(struct cfl_err *e);

/* load.c: the load process, sites first..first+count-1, each kit in kit_dir(its number). */
int load_main(const char *(*kit_dir)(int num), const char *run_dir, int first, int count, int port,
              int ctl, int st);

#endif
