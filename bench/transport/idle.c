/* bench_transport's idle-connection path: the handshake rate and the VmRSS per open mTLS
 * connection, in the server process and in this one. */
#define _GNU_SOURCE
#include "transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		bt_die("getrlimit: %s", strerror(errno));
	if (rl.rlim_cur >= NOFILE_MIN)
		return;
	rl.rlim_cur = NOFILE_MIN;
	if (rl.rlim_max < NOFILE_MIN)
		rl.rlim_max = NOFILE_MIN;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		bt_die("cannot raise the open-file limit (RLIMIT_NOFILE) to %d: %s; raise the hard "
		       "limit ('ulimit -Hn') or use --quick",
		       NOFILE_MIN, strerror(errno));
}

static long rss_kib(pid_t pid)
{
	char path[64], line[256], *end;
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		bt_die("cannot open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) != 0)
			continue;
		errno = 0;
		kib = strtol(line + 6, &end, 10);
		if (errno != 0 || end == line + 6)
			kib = -1;
		break;
	}
	fclose(f);
	if (kib < 0)
		bt_die("no VmRSS in %s", path);
	return kib;
}

void bench_idle(void)
{
	struct cli k;
	double t0;

	raise_nofile(); /* before the fork: the server process inherits the limit */
	spawn_cfl();
	res.srv_before = rss_kib(bt_child());
	res.cli_before = rss_kib(getpid());
	t0 = bt_now_s();
	cli_open(&k, set.conns);
	res.hs_secs = bt_now_s() - t0;
	res.hs_rate = set.conns / res.hs_secs;
	if (bt_read_status(k.loop, "the server to see every connection open") != 1)
		bt_die("unexpected status from the server");
	res.srv_after = rss_kib(bt_child());
	res.cli_after = rss_kib(getpid());
	cli_close(&k);
	if (bt_read_status(NULL, "the server to see every connection closed") != 2)
		bt_die("unexpected status from the server");
	bt_reap();
}
