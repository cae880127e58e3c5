/* bench_scale's server side: the cached kits (provisioned in batches, checked before reuse),
 * the run folder and its job, the `cfl server` process. */
#define _GNU_SOURCE
#include "scale.h"

#include "cfl/err.h"
#include "cfl/kit.h"
#include "cfl/provision.h"
#include "util/fs.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Sites batch b+1 (BATCH of them: cfl_provision takes at most 10,000 participants) with the
 * server and the admin. Every batch is the same project in the same workspace, so all reuse
 * its state/ (one root CA). */
static void write_project(const char *path, int b)
{
	FILE *f = fopen(path, "w");
	int last = (b + 1) * BATCH < B.n ? (b + 1) * BATCH : B.n;

	if (f == NULL)
		die("cannot write %s: %s", path, strerror(errno));
	/* The kit's ports are not used: the server listens where the kernel puts it. */
	fprintf(f,
	        "api_version: 3\nname: bench\nconnection_security: mtls\nparticipants:\n"
	        "  - {name: localhost, type: server, org: bench, fed_learn_port: 8002,\n"
	        "     admin_port: 8003, host_names: [localhost, 127.0.0.1]}\n"
	        "  - {name: %s, type: admin, org: bench, role: project_admin}\n",
	        ADMIN_NAME);
	for (int i = b * BATCH + 1; i <= last; i++)
		fprintf(f, "  - {name: site-%d, type: client, org: bench}\n", i);
	if (fclose(f) != 0)
		die("cannot write %s", path);
}

static int n_batches(void)
{
	return (B.n + BATCH - 1) / BATCH;
}

/* The output folder holding the kit of site-`num`. */
const char *prod_of(int num)
{
	return B.batch[(num - 1) / BATCH];
}

/* 0 when the kit `name` in `prod` loads and its signature holds. */
static int kit_ok(const char *prod, const char *name, int kind)
{
	char dir[PATH_MAX];
	struct cfl_kitcfg *k = calloc(1, sizeof(*k));
	struct cfl_err e = {0};
	int rc = -1;

	snprintf(dir, sizeof(dir), "%s/%s", prod, name);
	if (k != NULL && cfl_kitcfg_load(dir, kind, k, &e) == 0 && k->mode == CFL_SEC_MTLS &&
	    cfl_kitcfg_verify_kit(k, CFL_KIT_CHECK_SIGNED, &e) == 0)
		rc = 0;
	free(k);
	return rc;
}

/* The stamp names the format and the output folders; every site's certificate must be there
 * and the first and last kits (and the server's, the admin's) must load and verify. */
static int cache_valid(const char *stamp)
{
	char line[PATH_MAX], want[256], path[PATH_MAX], last[32];
	struct stat sb;
	FILE *f = fopen(stamp, "r");
	int ok;

	if (f == NULL)
		return 0;
	snprintf(want, sizeof(want), "%s; %d sites\n", KIT_FORMAT, B.n);
	ok = fgets(line, sizeof(line), f) != NULL && strcmp(line, want) == 0;
	for (int b = 0; ok && b < n_batches(); b++) {
		ok = fgets(B.batch[b], sizeof(B.batch[b]), f) != NULL;
		B.batch[b][strcspn(B.batch[b], "\n")] = '\0';
	}
	fclose(f);
	if (!ok)
		return 0;
	for (int i = 1; i <= B.n; i++) {
		snprintf(path, sizeof(path), "%s/site-%d/startup/client.crt", prod_of(i), i);
		if (stat(path, &sb) != 0)
			return 0;
	}
	snprintf(B.prod, sizeof(B.prod), "%s", B.batch[0]);
	snprintf(last, sizeof(last), "site-%d", B.n);
	return kit_ok(B.prod, "localhost", 1) == 0 && kit_ok(B.prod, ADMIN_NAME, 2) == 0 &&
	       kit_ok(prod_of(1), "site-1", 0) == 0 && kit_ok(prod_of(B.n), last, 0) == 0;
}

static void provision_batches(const char *stamp)
{
	char project[PATH_MAX], ws[PATH_MAX];
	struct cfl_provision_opts o = {project, ws, CFL_KEY_P256, NULL};
	struct cfl_err e = {0};
	double t0 = now_s();
	FILE *f;

	snprintf(project, sizeof(project), "%s/project.yml", B.cache);
	snprintf(ws, sizeof(ws), "%s/workspace", B.cache);
	for (int b = 0; b < n_batches(); b++) {
		write_project(project, b);
		if (cfl_provision(&o, B.batch[b], sizeof(B.batch[b]), &e) != 0)
			die("cannot provision: %s", e.msg);
	}
	snprintf(B.prod, sizeof(B.prod), "%s", B.batch[0]);
	printf("kits: %d sites + server + admin, ecdsa-p256, provisioned in %.2f s into %s%s\n",
	       B.n, now_s() - t0, B.prod, n_batches() > 1 ? " and more" : "");
	if ((f = fopen(stamp, "w")) == NULL)
		die("cannot write %s", stamp);
	fprintf(f, "%s; %d sites\n", KIT_FORMAT, B.n);
	for (int b = 0; b < n_batches(); b++)
		fprintf(f, "%s\n", B.batch[b]);
	if (fclose(f) != 0)
		die("cannot write %s", stamp);
}

void provision(void)
{
	char stamp[PATH_MAX];
	struct cfl_err e = {0};
	const char *xdg = getenv("XDG_CACHE_HOME");
	double t0 = now_s();

	if (xdg != NULL && xdg[0] == '/')
		snprintf(B.cache, sizeof(B.cache), "%s/cfl-bench-scale-%d", xdg, B.n);
	else
		snprintf(B.cache, sizeof(B.cache), "/tmp/cfl-bench-scale-%d", B.n);
	snprintf(stamp, sizeof(stamp), "%s/stamp", B.cache);
	if (cache_valid(stamp)) {
		printf("kits: %d sites, reused from %s (checked in %.2f s)\n", B.n, B.cache,
		       now_s() - t0);
		return;
	}
	(void)cfl__fs_rmtree(B.cache);
	if (cfl__fs_mkdirs(B.cache, 0700, &e) != 0)
		die("%s", e.msg);
	provision_batches(stamp);
}

/* --- the run folder, the job, the server -------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		die("cannot write %s", path);
}

/* The job: one round of MODEL_FLOAT synthetic floats over at least `min_clients` sites. */
void write_job(int min_clients)
{
	char job[PATH_MAX], cfg[512];

	snprintf(job, sizeof(job), "%s/job", B.run);
	snprintf(
	        cfg, sizeof(cfg),
	        "{\n  \"workflow\": {\"name\": \"fedavg\", \"num_rounds\": 1, \"min_clients\": %d, "
	        "\"round_timeout_s\": %d},\n  \"executor\": {\"type\": \"builtin\", \"dataset\": "
	        "\"synthetic\", \"floats\": %d},\n  \"sites\": [\"@ALL\"]\n}\n",
	        min_clients, (int)ROUND_S, MODEL_FLOAT);
	write_file(job, "config.json", cfg);
}

/* BENCH_SCALE_RUN_DIR, else /dev/shm when it is a writable folder, else /tmp. */
static const char *run_parent(void)
{
	const char *d = getenv("BENCH_SCALE_RUN_DIR");

	if (d != NULL && d[0] != '\0')
		return d;
	return access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
}

void make_run(void)
{
	char job[PATH_MAX];

	/* The simulated sites' work folders (one job folder each) in memory when /dev/shm is
	 * there: they stand for N machines' disks, not this one's, and on this machine's ext4
	 * creating them after an earlier run's removal costs more than the round (BENCHMARKS.md).
	 */
	snprintf(B.run, sizeof(B.run), "%s/cfl-bench-scale-run.XXXXXX", run_parent());
	if (mkdtemp(B.run) == NULL) {
		B.run[0] = '\0';
		die("mkdtemp: %s", strerror(errno));
	}
	snprintf(job, sizeof(job), "%s/job", B.run);
	if (mkdir(job, 0700) != 0)
		die("mkdir %s: %s", job, strerror(errno));
	write_job(B.n);
	write_file(job, "meta.json",
	           "{\"name\": \"scale\", \"description\": \"bench_scale: a tiny synthetic "
	           "model, one round over every site\"}\n");
}

/* "FED ADMIN" from the server's port file; 0 once it is there. */
static int read_ports(const char *path)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (f == NULL)
		return -1;
	ok = fscanf(f, "%d %d", &B.fed_port, &B.admin_port) == 2;
	fclose(f);
	return ok && B.fed_port > 0 && B.admin_port > 0 ? 0 : -1;
}

static void exec_server(const char *ports)
{
	char kit[PATH_MAX], cfl[PATH_MAX], logf[PATH_MAX], lib[PATH_MAX], mc[PATH_MAX];
	char *argv[] = {"cfl",          "server", kit,           "--port",      "0",
	                "--admin-port", "0",      "--port-file", (char *)ports, NULL};
	const char *wrap = getenv("BENCH_SCALE_WRAP");

	snprintf(kit, sizeof(kit), "%s/localhost", B.prod);
	snprintf(cfl, sizeof(cfl), "%s/cfl", B.self_dir);
	snprintf(logf, sizeof(logf), "%s/server.log", B.run);
	snprintf(lib, sizeof(lib), "%s/libbench_scale_memcount.so", B.self_dir);
	snprintf(mc, sizeof(mc), "%s/memcount", B.run);
	if (access(lib, R_OK) == 0 && getenv("BENCH_SCALE_NO_MEMCOUNT") == NULL) {
		setenv("LD_PRELOAD", lib, 1);
		setenv("CFL_MEMCOUNT_FILE", mc, 1);
	}
	if (freopen(logf, "w", stderr) == NULL)
		_exit(126);
	dup2(STDERR_FILENO, STDOUT_FILENO);
	if (wrap != NULL && wrap[0] != '\0') {
		/* BENCH_SCALE_WRAP="perf record -g -o FILE" or "valgrind --tool=massif": the
		 * server runs under it, as the same process (exec). */
		char cmd[1024];
		char *sh[] = {
		        "sh", "-c",           cmd, cfl,           "server",      kit, "--port",
		        "0",  "--admin-port", "0", "--port-file", (char *)ports, NULL};

		snprintf(cmd, sizeof(cmd), "exec %s \"$0\" \"$@\"", wrap);
		execv("/bin/sh", sh);
	} else {
		execv(cfl, argv);
	}
	_exit(127);
}

void start_server(void)
{
	char ports[PATH_MAX], local[PATH_MAX];
	struct timespec tick = {0, 20000000};
	double end = now_s() + 30;

	/* Every site comes from one address here (the loopback), as a federation behind one NAT
	 * would: the per-address admission limits (docs/server-client.md) are raised to the
	 * global ones, in the kit's own local/resources.json. */
	/* The jobs of earlier runs stay in the cached kit: the server would load them (their
	 * site states are megabytes at 19,000 sites) and resume one left running. */
	snprintf(local, sizeof(local), "%s/localhost/jobs", B.prod);
	(void)cfl__fs_rmtree(local);
	snprintf(local, sizeof(local), "%s/localhost/local", B.prod);
	write_file(
	        local, "resources.json",
	        "{\"max_prelogin_per_address\": 1024, \"challenges_per_address_per_s\": 100000}\n");
	snprintf(ports, sizeof(ports), "%s/server.ports", B.run);
	fflush(NULL);
	if ((B.server = fork()) < 0)
		die("fork: %s", strerror(errno));
	if (B.server == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		exec_server(ports);
	}
	while (read_ports(ports) != 0) {
		if (interrupted || now_s() > end || waitpid(B.server, NULL, WNOHANG) == B.server) {
			B.server = 0;
			die("the server did not start");
		}
		(void)nanosleep(&tick, NULL);
	}
}
