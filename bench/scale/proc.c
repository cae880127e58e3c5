/* bench_scale's processes: the clock, stopping the server and the load processes, dying
 * cleanly, the descriptor limit, the figures read from /proc and the preloaded counter. */
#define _GNU_SOURCE
#include "scale.h"

#include "util/fs.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* snprintf into a path buffer: 0, or -1 when it did not fit. */
int pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

volatile sig_atomic_t interrupted;

void on_signal(int signo)
{
	(void)signo;
	interrupted = 1;
}

/* --- processes -------------------------------------------------------------------------- */

/* Waits up to `secs` for `pid`; SIGKILL after. */
static void reap(pid_t pid, double secs)
{
	double end = now_s() + secs;
	struct timespec tick = {0, 20000000};

	while (waitpid(pid, NULL, WNOHANG) == 0) {
		if (now_s() > end) {
			kill(pid, SIGKILL);
			(void)waitpid(pid, NULL, 0);
			return;
		}
		(void)nanosleep(&tick, NULL);
	}
}

/* The server first (its sites stop redialing before), then the load processes. */
static void stop_all(void)
{
	for (int i = 0; i < B.n_load; i++)
		if (B.ld[i].pid > 0)
			(void)!write(B.ld[i].ctl, "s", 1);
	if (B.server > 0) {
		kill(B.server, SIGTERM);
		reap(B.server, 10);
		B.server = 0;
	}
	for (int i = 0; i < B.n_load; i++) {
		if (B.ld[i].pid <= 0)
			continue;
		close(B.ld[i].ctl);
		reap(B.ld[i].pid, 10);
		B.ld[i].pid = 0;
	}
}

void cleanup(void)
{
	stop_all();
	if (B.run[0] != '\0' && !B.keep)
		(void)cfl__fs_rmtree(B.run);
}

void die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench_scale: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (B.run[0] != '\0')
		fprintf(stderr, "bench_scale: server log: %s/server.log%s\n", B.run,
		        B.keep ? "" : " (removed; run with --keep to keep it)");
	exit(1); /* cleanup() runs from atexit */
}

/* Every process: the soft descriptor limit up to the hard one (root cannot go beyond). */
void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

long nofile_soft(void)
{
	struct rlimit rl;

	return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long)rl.rlim_cur : -1;
}

/* --- /proc figures ---------------------------------------------------------------------- */

/* A "Key:   123 kB" line of /proc/PID/status, in KiB; -1 if unknown. */
long proc_kib(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t kl = strlen(key);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, kl) == 0 && line[kl] == ':')
			v = strtol(line + kl + 1, NULL, 10);
	fclose(f);
	return v;
}

/* utime + stime of `pid`, in clock ticks; -1 if unknown. */
long long proc_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* After the command's closing parenthesis: state is field 3, utime 14, stime 15. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

/* What the preloaded counter last wrote: OpenSSL's live bytes and the whole heap's. */
int memcount(long long *ossl, long long *heap)
{
	char path[PATH_MAX];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/memcount", B.run);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	ok = fscanf(f, "%lld %lld", ossl, heap) == 2;
	fclose(f);
	return ok ? 0 : -1;
}
