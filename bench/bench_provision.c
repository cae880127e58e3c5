/* Provisioning benchmark: a project with one server, 100 clients and an admin, provisioned
 * with each key type. Prints the median of several runs and the RSA/ECDSA ratio measured in
 * the same run. Usage: bench_provision [clients] [runs] */
#include "cfl/err.h"
#include "cfl/log.h"
#include "cfl/provision.h"
#include "util/fs.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RUNS 15

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

/* Median seconds of `runs` provisionings into fresh workspaces. */
static double measure(const char *dir, const char *project, int key_type, int runs)
{
	double t[MAX_RUNS];
	char ws[PATH_MAX], out[PATH_MAX];

	for (int i = 0; i < runs; i++) {
		struct cfl_provision_opts o = {.project_path = project, .key_type = key_type};
		struct cfl_err e = {0};
		double t0;

		snprintf(ws, sizeof(ws), "%s/ws-%d-%d", dir, key_type, i);
		o.workspace = ws;
		t0 = now_s();
		if (cfl_provision(&o, out, sizeof(out), &e) != 0) {
			fprintf(stderr, "bench_provision: %s\n", e.msg);
			exit(1);
		}
		t[i] = now_s() - t0;
		cfl__fs_rmtree(ws);
	}
	qsort(t, (size_t)runs, sizeof(t[0]), cmp_double);
	return t[runs / 2];
}

int main(int argc, char **argv)
{
	int clients = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 100;
	int runs = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 5;
	char dir[] = "/tmp/cfl-bench-prov.XXXXXX", project[PATH_MAX];
	double ec, rsa;

	if (clients < 1 || clients > 10000 || runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "usage: bench_provision [clients 1..10000] [runs 1..%d]\n",
		        MAX_RUNS);
		return 2;
	}
	cfl_log_set_level(CFL_LOG_ERROR);
	if (mkdtemp(dir) == NULL || cfl__path_join(project, sizeof(project), dir, "project.yml") ||
	    write_project(project, clients) != 0) {
		perror("bench_provision");
		return 1;
	}
	ec = measure(dir, project, CFL_KEY_P256, runs);
	rsa = measure(dir, project, CFL_KEY_RSA2048, runs);
	cfl__fs_rmtree(dir);
	printf("provision: 1 server + %d clients + 1 admin, median of %d runs\n", clients, runs);
	printf("  %-12s %8.3f s  (%6.2f ms per participant)\n", "ecdsa-p256", ec,
	       ec * 1e3 / (clients + 2));
	printf("  %-12s %8.3f s  (%6.2f ms per participant)\n", "rsa-2048", rsa,
	       rsa * 1e3 / (clients + 2));
	printf("  ratio rsa-2048 / ecdsa-p256: %.1fx\n", rsa / ec);
	return 0;
}
