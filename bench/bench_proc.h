/* Shared by the two-process benchmarks (bench_transport, bench_auth): the forked server's
 * bookkeeping, stopping it, dying cleanly, the clock and medians. Each benchmark is one
 * translation unit and defines BENCH_NAME before including this. */
#ifndef CFL_BENCH_PROC_H
#define CFL_BENCH_PROC_H

#include "util/fs.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

#endif
