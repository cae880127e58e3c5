/* bench_transport's server process and its pipes: bench_proc.h (shared with bench_auth) keeps
 * its state in statics, so this file alone includes it and the others call it through these. */
#define _GNU_SOURCE
#include "transport.h"

#define BENCH_NAME       "bench_transport"
#define BENCH_WAIT_S     (WAIT_MS / 1e3)
#define BENCH_CHILD_SECS 900 /* a server process still alive after this is killed (SIGALRM) */
#include "../bench_proc.h"

void bt_die(const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	die("%s", msg);
}

double bt_now_s(void)
{
	return now_s();
}

double bt_median(double *v, int n)
{
	return median(v, n);
}

void bt_tell(int v)
{
	tell(v);
}

int bt_spawn(int (*fn)(const void *arg), const void *arg)
{
	return spawn(fn, arg);
}

int bt_read_status(struct cfl_loop *loop, const char *what)
{
	return read_status(loop, what);
}

void bt_reap(void)
{
	if (stop_child() != 0)
		die("the server process failed (see its message above)");
}

pid_t bt_child(void)
{
	return child;
}

int bt_ctl_fd(void)
{
	return ctl_fd;
}

int bt_interrupted(void)
{
	return interrupted;
}

void bt_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: blocking calls return and the run stops */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* The run's temporary folder (removed by bt_die and bt_tmp_remove), made from `tmpl`. */
const char *bt_tmp_make(const char *tmpl)
{
	snprintf(tmp_dir, sizeof(tmp_dir), "%s", tmpl);
	if (mkdtemp(tmp_dir) == NULL) {
		tmp_dir[0] = '\0';
		die("mkdtemp: %s", strerror(errno));
	}
	return tmp_dir;
}

void bt_tmp_remove(void)
{
	(void)cfl__fs_rmtree(tmp_dir);
}
