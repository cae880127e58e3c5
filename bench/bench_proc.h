/* Shared by the two-process benchmarks (bench_transport, bench_auth): forking the server
 * process, the status pipe it answers on (its ready, the ports it listens on), stopping it,
 * dying cleanly, the clock and medians. Each benchmark includes it in one translation unit
 * (bench_transport: bench/transport/proc.c) and defines before including this: BENCH_NAME,
 * BENCH_WAIT_S (every wait gives up after this many seconds) and BENCH_CHILD_SECS (a server
 * process still alive after this is killed). */
#ifndef CFL_BENCH_PROC_H
#define CFL_BENCH_PROC_H

#include "cfl/loop.h"
#include "util/fs.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmp_dir[PATH_MAX];
static pid_t child = -1;
/* Parent: the control pipe's write end and the status pipe's read end. Child: the other ends. */
static int is_child, ctl_fd = -1, st_fd = -1;
static volatile sig_atomic_t interrupted;

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of v[0..n); sorts v. */
static inline double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Closes the control pipe (the server's cue to stop), gives the server 5 s to exit, then
 * kills it. Returns 0 if it exited with status 0. */
static inline int stop_child(void)
{
	struct timespec tick = {0, 5000000};
	double end = now_s() + 5.0;
	int status = -1;
	pid_t r;

	if (child <= 0)
		return 0;
	close(ctl_fd);
	while ((r = waitpid(child, &status, WNOHANG)) == 0 || (r < 0 && errno == EINTR)) {
		if (now_s() > end) {
			kill(child, SIGKILL);
			(void)waitpid(child, &status, 0);
			status = -1;
			break;
		}
		(void)nanosleep(&tick, NULL);
	}
	close(st_fd);
	child = ctl_fd = st_fd = -1;
	return r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Says why, stops the server process, removes the temp folder, exits 1. */
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, BENCH_NAME ": %s", is_child ? "server process: " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (is_child)
		_exit(1);
	(void)stop_child();
	if (tmp_dir[0] != '\0')
		(void)cfl__fs_rmtree(tmp_dir);
	exit(1);
}

static inline void on_signal(int signo)
{
	(void)signo;
	interrupted = 1;
}

/* Child: a status value for the parent. */
static inline void tell(int v)
{
	if (write(st_fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		die("cannot write to the parent: %s", strerror(errno));
}

/* Parent: the next status value of the server process, running `loop` (if not NULL) meanwhile.
 * Dies when the wait ends (BENCH_WAIT_S), the user interrupts or the server process ends. */
static inline int read_status(struct cfl_loop *loop, const char *what)
{
	double end = now_s() + BENCH_WAIT_S;
	struct pollfd p = {st_fd, POLLIN, 0};
	int v;

	while (!interrupted && now_s() < end) {
		if (loop != NULL && cfl_loop_run_once(loop, 5) < 0)
			die("event loop failed");
		if (poll(&p, 1, loop != NULL ? 0 : 50) <= 0)
			continue;
		if (read(st_fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
			die("the server process ended while waiting for %s", what);
		return v;
	}
	if (interrupted)
		die("interrupted");
	die("timed out waiting for %s", what);
}

/* Forks the server process running fn(arg), which exits 0 if fn returns 0; it dies with this
 * process (PR_SET_PDEATHSIG) or after BENCH_CHILD_SECS (SIGALRM). Returns the first status it
 * sends: its ready, by convention the port it listens on (it binds port 0 and tells the
 * kernel's pick, so no other process can take the port in between). */
static inline int spawn(int (*fn)(const void *arg), const void *arg)
{
	pid_t parent = getpid();
	int ctl[2], st[2];

	if (pipe(ctl) != 0 || pipe(st) != 0)
		die("pipe: %s", strerror(errno));
	fflush(NULL);
	if ((child = fork()) < 0)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		is_child = 1;
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(1);
		alarm(BENCH_CHILD_SECS);
		close(ctl[1]);
		close(st[0]);
		ctl_fd = ctl[0];
		st_fd = st[1];
		_exit(fn(arg) == 0 ? 0 : 1);
	}
	close(ctl[0]);
	close(st[1]);
	ctl_fd = ctl[1];
	st_fd = st[0];
	return read_status(NULL, "the server to start");
}

#endif
