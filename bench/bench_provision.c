/* Provisioning benchmark: projects of one server, N clients and an admin (P-256), provisioned
 * with one thread per core and, as the baseline measured in the same run, with one thread
 * (CFL_PROVISION_THREADS=1), the two alternating. Prints medians and their ratio for each N,
 * and the median CPU time (user, system) of the runs on all cores;
 * with --rsa also RSA-2048 against P-256 for the first N (RSA key generation takes 0.2-0.5 s a
 * key here). Workspaces are removed only at the end: on an ext4 file system without a journal,
 * as here, every inode freed in the last 60 s (5 minutes more while its inode table block is
 * not yet written back) is skipped one by one when the next is allocated (ext4's
 * recently_deleted()), which a run soon after a large removal would measure instead.
 * Usage: bench_provision [--runs R] [--dir DIR] [--rsa] [N ...]   (default N: 100 1000 10000) */
#include "cfl/err.h"
#include "cfl/log.h"
#include "cfl/provision.h"
#include "util/fs.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_RUNS  15
#define MAX_SIZES 8
#define MAX_N     100000

static char dir[PATH_MAX / 2];
static int ws_count;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *t, int n)
{
	qsort(t, (size_t)n, sizeof(t[0]), cmp_double);
	return t[n / 2];
}

static int write_project(const char *path, int clients)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fprintf(f, "api_version: 3\nname: bench\nparticipants:\n"
	           "  - {name: server, type: server, org: bench, host_names: [localhost, "
	           "127.0.0.1]}\n"
	           "  - {name: admin@bench.org, type: admin, org: bench, role: project_admin}\n");
	for (int i = 0; i < clients; i++)
		fprintf(f, "  - {name: site-%d, type: client, org: bench}\n", i + 1);
	return fclose(f);
}

/* CPU seconds of this process so far, user and system. */
static void cpu_s(double *user, double *sys)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	*sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Seconds of one provisioning into a new workspace (kept until the end); the CPU seconds it
 * took, user and system, into cpu[0] and cpu[1] when not NULL. */
static double once(const char *project, int key_type, const char *threads, double *cpu)
{
	struct cfl_provision_opts o = {.project_path = project, .key_type = key_type};
	char ws[PATH_MAX], out[PATH_MAX];
	struct cfl_err e = {0};
	double t0, u0, s0, u1, s1, t;

	snprintf(ws, sizeof(ws), "%s/ws-%d", dir, ws_count++);
	o.workspace = ws;
	if (threads != NULL)
		setenv("CFL_PROVISION_THREADS", threads, 1);
	else
		unsetenv("CFL_PROVISION_THREADS");
	cpu_s(&u0, &s0);
	t0 = now_s();
	if (cfl_provision(&o, out, sizeof(out), &e) != 0) {
		fprintf(stderr, "bench_provision: %s\n", e.msg);
		exit(1);
	}
	t = now_s() - t0;
	cpu_s(&u1, &s1);
	if (cpu != NULL) {
		cpu[0] = u1 - u0;
		cpu[1] = s1 - s0;
	}
	return t;
}

static void bench_size(int n, int runs, int rsa)
{
	double all[MAX_RUNS], one[MAX_RUNS], r[MAX_RUNS], user[MAX_RUNS], sys[MAX_RUNS], m_all,
	        m_one;
	char project[PATH_MAX];

	snprintf(project, sizeof(project), "%s/project-%d.yml", dir, n);
	if (write_project(project, n) != 0) {
		perror("bench_provision");
		exit(1);
	}
	for (int i = 0; i < runs; i++) {
		double cpu[2];

		all[i] = once(project, CFL_KEY_P256, NULL, cpu);
		one[i] = once(project, CFL_KEY_P256, "1", NULL);
		user[i] = cpu[0];
		sys[i] = cpu[1];
	}
	m_all = median(all, runs);
	m_one = median(one, runs);
	printf("  %6d clients  %8.3f s  (%5.3f ms per participant)   1 thread %8.3f s   "
	       "ratio %.2fx   CPU (all cores): user %.3f s, system %.3f s\n",
	       n, m_all, m_all * 1e3 / (n + 2), m_one, m_one / m_all, median(user, runs),
	       median(sys, runs));
	if (!rsa)
		return;
	for (int i = 0; i < runs; i++)
		r[i] = once(project, CFL_KEY_RSA2048, NULL, NULL);
	printf("  %6d clients  rsa-2048 %8.3f s: ratio rsa-2048 / ecdsa-p256 %.1fx\n", n,
	       median(r, runs), median(r, runs) / m_all);
}

int main(int argc, char **argv)
{
	int sizes[MAX_SIZES] = {100, 1000, 10000}, n_sizes = 0, runs = 3, rsa = 0;
	const char *base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = (int)strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			base = argv[++i];
		else if (strcmp(argv[i], "--rsa") == 0)
			rsa = 1;
		else if (n_sizes < MAX_SIZES && (sizes[n_sizes] = atoi(argv[i])) >= 1 &&
		         sizes[n_sizes] <= MAX_N)
			n_sizes++;
		else
			runs = 0;
	}
	if (runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr,
		        "usage: bench_provision [--runs 1..%d] [--dir DIR] [--rsa] [clients "
		        "1..%d ...]\n",
		        MAX_RUNS, MAX_N);
		return 2;
	}
	n_sizes = n_sizes > 0 ? n_sizes : 3;
	setvbuf(stdout, NULL, _IOLBF, 0); /* each size as it is done */
	cfl_log_set_level(CFL_LOG_ERROR);
	snprintf(dir, sizeof(dir), "%s/cfl-bench-prov.XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		perror("bench_provision");
		return 1;
	}
	printf("provision: 1 server + N clients + 1 admin, ecdsa-p256, median of %d runs; "
	       "baseline: 1 thread, same run\n",
	       runs);
	for (int i = 0; i < n_sizes; i++)
		bench_size(sizes[i], runs, rsa && i == 0);
	cfl__fs_rmtree(dir);
	return 0;
}
