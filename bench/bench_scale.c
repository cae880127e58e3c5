/* Scale benchmark: N authenticated sites on one `cfl server` (docs/BENCHMARKS.md "Scale").
 *
 *   bench_scale N [--keep]
 *
 * Provisions N sites (ECDSA P-256, mtls) into a cached workspace reused by later runs with the
 * same N ($XDG_CACHE_HOME/cfl-bench-scale-N, else /tmp/cfl-bench-scale-N; kept while its stamp
 * matches this program's kit format and its kits load), starts build/cfl's `server` in a
 * process of its own on a port the kernel picks, forks one load process per LOAD_MAX sites
 * (bench_scale_load.h: real mTLS logins and heartbeats, the library's executor per site), then
 * through an admin session (cfl_admin_run) times the status commands, submits a synthetic job
 * (1,000 floats, 1 round, min_clients N) and follows it to its end. It prints the time to log
 * everyone in, logins/s, the server's RSS per session (VmRSS before and after), OpenSSL's share
 * of the server's heap (when build/libbench_scale_memcount.so is there to preload: it counts
 * OpenSSL's allocations through CRYPTO_set_mem_functions), the server's CPU while idle with N
 * sessions (/proc/PID/stat over IDLE_S), the round's wall time and every site that failed.
 *
 * Exit status 0 only when all N sites logged in and the round completed with N updates. Every
 * wait is bounded; the server and the load processes are stopped on every path and the run's
 * temporary folder (server log, site work folders) is removed unless --keep. */
#define _GNU_SOURCE
#include "cfl/admin.h"
#include "cfl/err.h"
#include "cfl/kit.h"
#include "cfl/loop.h"
#include "cfl/provision.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* snprintf into a path buffer: 0, or -1 when it did not fit. */
static int pathf(char *buf, size_t size, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

#include "bench_scale_load.h"

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

static struct {
	int n, n_load, keep;
	char cache[PATH_MAX / 2], prod[PATH_MAX / 2], run[PATH_MAX / 2], self_dir[PATH_MAX / 2];
	char batch[(N_MAX + BATCH - 1) / BATCH][PATH_MAX / 2]; /* output folder of each batch */
	pid_t server;
	int fed_port, admin_port;
	struct loader ld[N_MAX / LOAD_MAX];
	char events[EVENTS_MAX][160];
	int n_events, errors;
} B;

static volatile sig_atomic_t interrupted;

static void on_signal(int signo)
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

static void cleanup(void)
{
	stop_all();
	if (B.run[0] != '\0' && !B.keep)
		(void)cfl__fs_rmtree(B.run);
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
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
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static long nofile_soft(void)
{
	struct rlimit rl;

	return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long)rl.rlim_cur : -1;
}

/* --- /proc figures ---------------------------------------------------------------------- */

/* A "Key:   123 kB" line of /proc/PID/status, in KiB; -1 if unknown. */
static long proc_kib(pid_t pid, const char *key)
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
static long long proc_ticks(pid_t pid)
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
static int memcount(long long *ossl, long long *heap)
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

/* --- the cached kits -------------------------------------------------------------------- */

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
static const char *prod_of(int num)
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

static void provision(void)
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
static void write_job(int min_clients)
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

static void make_run(void)
{
	char job[PATH_MAX];

	snprintf(B.run, sizeof(B.run), "/tmp/cfl-bench-scale-run.XXXXXX");
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

static void start_server(void)
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

/* --- the load processes ------------------------------------------------------------------- */

static void start_loaders(void)
{
	pid_t parent = getpid();

	B.n_load = (B.n + LOAD_MAX - 1) / LOAD_MAX;
	for (int k = 0; k < B.n_load; k++) {
		struct loader *l = &B.ld[k];
		int first = 1 + k * B.n / B.n_load, next = 1 + (k + 1) * B.n / B.n_load;
		int ctl[2], st[2];
		char logf[PATH_MAX];

		if (pipe2(ctl, O_CLOEXEC) != 0 || pipe2(st, O_CLOEXEC) != 0)
			die("pipe: %s", strerror(errno));
		fflush(NULL);
		if ((l->pid = fork()) < 0)
			die("fork: %s", strerror(errno));
		if (l->pid == 0) {
			signal(SIGINT, SIG_IGN); /* the parent stops us */
			signal(SIGTERM, SIG_DFL);
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
				_exit(1);
			for (int j = 0; j < k; j++)
				close(B.ld[j].ctl), close(B.ld[j].st);
			close(ctl[1]);
			close(st[0]);
			snprintf(logf, sizeof(logf), "%s/load-%d.log", B.run, k + 1);
			if (freopen(logf, "w", stderr) == NULL)
				_exit(1);
			_exit(load_main(prod_of, B.run, first, next - first, B.fed_port, ctl[0],
			                st[1]));
		}
		close(ctl[0]);
		close(st[1]);
		l->ctl = ctl[1];
		l->st = st[0];
		(void)fcntl(l->st, F_SETFL, O_NONBLOCK);
	}
}

static void note_event(int k, const char *line)
{
	if (B.n_events < EVENTS_MAX)
		snprintf(B.events[B.n_events], sizeof(B.events[0]), "load %d: %s", k + 1, line);
	B.n_events++;
}

static void parse_line(int k, char *line)
{
	struct loader *l = &B.ld[k];

	if (sscanf(line, "ready %lf", &l->setup_s) == 1)
		l->ready = 1;
	else if (sscanf(line, "n %d %d %d", &l->in, &l->fails, &l->drops) == 3)
		return;
	else {
		B.errors += strncmp(line, "error", 5) == 0;
		note_event(k, line);
	}
}

static void read_loader(int k)
{
	struct loader *l = &B.ld[k];
	ssize_t r;
	char *nl;

	while ((r = read(l->st, l->buf + l->len, sizeof(l->buf) - 1 - l->len)) > 0) {
		l->len += (size_t)r;
		l->buf[l->len] = '\0';
		while ((nl = strchr(l->buf, '\n')) != NULL) {
			*nl = '\0';
			parse_line(k, l->buf);
			l->len -= (size_t)(nl + 1 - l->buf);
			memmove(l->buf, nl + 1, l->len + 1);
		}
		if (l->len == sizeof(l->buf) - 1)
			l->len = 0; /* a line too long: drop it */
	}
	if (r == 0)
		die("load process %d ended (see %s/load-%d.log)", k + 1, B.run, k + 1);
}

/* Reads what the load processes said, waiting up to `ms` for the first line. */
static void drain(int ms)
{
	struct pollfd p[N_MAX / LOAD_MAX];

	if (interrupted)
		die("interrupted");
	for (int k = 0; k < B.n_load; k++)
		p[k] = (struct pollfd){B.ld[k].st, POLLIN, 0};
	if (poll(p, (nfds_t)B.n_load, ms) <= 0)
		return;
	for (int k = 0; k < B.n_load; k++)
		if (p[k].revents != 0)
			read_loader(k);
	if (B.errors > 0)
		die("a load process failed: %s", B.events[0]);
}

static void drain_for(double secs)
{
	double end = now_s() + secs;

	while (now_s() < end)
		drain(50);
}

static int total(size_t field)
{
	int t = 0;

	for (int k = 0; k < B.n_load; k++)
		t += *(const int *)((const char *)&B.ld[k] + field);
	return t;
}

static void wait_ready(void)
{
	double t0 = now_s(), worst = 0;
	int ready;

	do {
		if (now_s() - t0 > SETUP_S)
			die("the load processes did not set their sites up in %.0f s", SETUP_S);
		drain(100);
		ready = 0;
		for (int k = 0; k < B.n_load; k++)
			ready += B.ld[k].ready;
	} while (ready < B.n_load);
	for (int k = 0; k < B.n_load; k++)
		worst = B.ld[k].setup_s > worst ? B.ld[k].setup_s : worst;
	printf("load: %d process%s of up to %d sites, set up in %.2f s (kits, TLS contexts, hubs, "
	       "auth clients, executors)\n",
	       B.n_load, B.n_load > 1 ? "es" : "", LOAD_MAX, worst);
}

/* Logs everyone in: the seconds it took, or -1 when the deadline passed first. */
static double login_all(void)
{
	double t0 = now_s(), last = t0, end = t0 + 60 + B.n / 20.0;
	int in;

	for (int k = 0; k < B.n_load; k++)
		if (write(B.ld[k].ctl, "g", 1) != 1)
			die("cannot start load process %d", k + 1);
	while ((in = total(offsetof(struct loader, in))) < B.n) {
		if (now_s() > end)
			return -1;
		if (now_s() - last >= 5) {
			last = now_s();
			fprintf(stderr, "  %6.1f s: %d of %d logged in, %d failed attempts\n",
			        last - t0, in, B.n, total(offsetof(struct loader, fails)));
		}
		drain(50);
	}
	return now_s() - t0;
}

/* --- the admin session: status commands, the job ----------------------------------------- */

enum adm_step { A_STATUS, A_CLIENTS, A_SUBMIT, A_POLL };

static struct {
	struct cfl_admin *s;
	enum adm_step step;
	double t_sent, t_status, t_clients, t_submit, t_round, t_poll_max, end;
	size_t clients_bytes;
	int listed, total, connected, updates, polls, cap;
	double server_round_s;
	/* CPU ticks from the submission to FINISHED: the server's, the load processes' */
	long long srv_ticks, load_ticks;
	char job_id[64], status[64], why[256];
} A;

/* utime + stime of the load processes, in ticks. */
static long long load_ticks(void)
{
	long long t = 0;

	for (int k = 0; k < B.n_load; k++)
		t += proc_ticks(B.ld[k].pid);
	return t;
}

static void adm_send(const char *line)
{
	struct cfl_err e = {0};

	A.t_sent = now_s();
	if (cfl_admin_send(A.s, line, &e) != 0)
		cfl_admin_quit(A.s, e.code, e.msg);
}

static void on_poll(struct cfl_loop *loop, uint64_t id, void *arg)
{
	char line[128];

	(void)loop;
	(void)id;
	(void)arg;
	if (interrupted || now_s() > A.end) {
		cfl_admin_quit(A.s, CFL_ETIMEDOUT, interrupted ? "interrupted" : "round timed out");
		return;
	}
	snprintf(line, sizeof(line), "list_jobs %s", A.job_id);
	adm_send(line);
}

/* The load processes' lines while the session runs (their pipes must not fill up). */
static void on_drain(struct cfl_loop *loop, uint64_t id, void *arg)
{
	(void)id;
	(void)arg;
	drain(0);
	cfl_loop_timer_add(loop, 100, on_drain, NULL);
}

static void adm_ready(struct cfl_admin *s, void *arg)
{
	char line[PATH_MAX + 16];

	(void)arg;
	if (A.s == NULL)
		on_drain(cfl_admin_loop(s), 0, NULL);
	A.s = s;
	switch (A.step) {
	case A_STATUS:
		adm_send("check_status server");
		break;
	case A_CLIENTS:
		adm_send("check_status client");
		break;
	case A_SUBMIT:
		A.srv_ticks = -proc_ticks(B.server);
		A.load_ticks = -load_ticks();
		snprintf(line, sizeof(line), "submit_job %s/job", B.run);
		adm_send(line);
		break;
	case A_POLL:
		cfl_loop_timer_add(cfl_admin_loop(s), POLL_MS, on_poll, NULL);
		break;
	}
}

/* list_jobs: the job's status; once FINISHED, its round's figures, and the session ends. */
static void adm_job(json_t *v)
{
	json_t *job = json_array_get(json_object_get(v, "jobs"), 0);
	json_t *m = json_array_get(json_object_get(job, "metrics"), 0);
	const char *st = json_string_value(json_object_get(job, "status"));

	A.polls++;
	if (st == NULL || strncmp(st, "FINISHED", 8) != 0)
		return;
	A.t_round = now_s() - A.t_submit;
	A.srv_ticks += proc_ticks(B.server);
	A.load_ticks += load_ticks();
	snprintf(A.status, sizeof(A.status), "%s", st);
	A.updates = (int)json_integer_value(json_object_get(m, "clients"));
	A.server_round_s = json_number_value(json_object_get(m, "seconds"));
	cfl_admin_quit(A.s, 0, NULL);
}

static void adm_reply(struct cfl_admin *s, const struct cfl_admin_reply *r, void *arg)
{
	double dt = now_s() - A.t_sent;
	json_t *v;

	(void)arg;
	/* A server that caps the sites of a job: the round runs over as many as it takes, and
	 * the run reports it (and fails: not every site took part). */
	if (r->status != 0 && A.step == A_SUBMIT && A.cap == 0 &&
	    sscanf(r->error, "workflow.min_clients must be at most %d", &A.cap) == 1 && A.cap > 0) {
		printf("  (the server refused min_clients %d: \"%s\"; the round runs with "
		       "min_clients %d)\n",
		       B.n, r->error, A.cap);
		write_job(A.cap);
		return; /* ready follows: the job goes again */
	}
	if (r->status != 0) {
		snprintf(A.why, sizeof(A.why), "'%s' failed: %s", r->cmd, r->error);
		cfl_admin_quit(s, r->status, A.why);
		return;
	}
	A.t_poll_max = A.step == A_POLL && dt > A.t_poll_max ? dt : A.t_poll_max;
	v = json_loads(r->body, 0, NULL);
	if (A.step == A_STATUS) {
		A.t_status = dt;
	} else if (A.step == A_CLIENTS) {
		A.t_clients = dt;
		A.clients_bytes = r->len;
		A.listed = (int)json_array_size(json_object_get(v, "clients"));
		/* A server that pages the list says how many there are (-1: one that does not). */
		A.total = json_is_integer(json_object_get(v, "total"))
		                  ? (int)json_integer_value(json_object_get(v, "total"))
		                  : -1;
		A.connected = (int)json_integer_value(json_object_get(v, "connected"));
	} else if (A.step == A_SUBMIT) {
		A.t_submit = A.t_sent;
		A.end = now_s() + ROUND_S;
		snprintf(A.job_id, sizeof(A.job_id), "%s",
		         json_string_value(json_object_get(v, "job_id"))
		                 ? json_string_value(json_object_get(v, "job_id"))
		                 : "");
		if (A.job_id[0] == '\0')
			cfl_admin_quit(s, CFL_EPROTO, "submit_job gave no job id");
	} else {
		adm_job(v);
	}
	json_decref(v);
	if (A.step < A_POLL)
		A.step++;
}

static int run_admin(struct cfl_err *e)
{
	char kit[PATH_MAX];
	static struct cfl_admin_ops ops = {adm_ready, adm_reply, NULL, NULL, 0, 0};

	ops.server_port = B.admin_port;
	snprintf(kit, sizeof(kit), "%s/%s", B.prod, ADMIN_NAME);
	return cfl_admin_run(kit, &ops, e);
}

/* --- main ---------------------------------------------------------------------------------- */

static void print_events(void)
{
	int shown = B.n_events < EVENTS_MAX ? B.n_events : EVENTS_MAX;

	if (B.n_events == 0)
		return;
	printf("site events (failed logins, dropped sessions): %d reported in full%s\n", B.n_events,
	       B.n_events > shown ? ", the first shown" : "");
	for (int i = 0; i < shown; i++)
		printf("  %s\n", B.events[i]);
}

static void find_self(void)
{
	char exe[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		die("cannot read /proc/self/exe");
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) != NULL)
		*slash = '\0';
	if (pathf(B.self_dir, sizeof(B.self_dir), "%s", exe) != 0)
		die("path too long: %s", exe);
	snprintf(exe + strlen(exe), sizeof(exe) - strlen(exe), "/cfl");
	if (access(exe, X_OK) != 0)
		die("no cfl program beside this one (%s): build it first", exe);
}

static void parse_args(int argc, char **argv)
{
	char *end = NULL;
	long n = argc >= 2 ? strtol(argv[1], &end, 10) : 0;

	B.keep = argc == 3 && strcmp(argv[2], "--keep") == 0;
	if (argc < 2 || argc > 3 || (argc == 3 && !B.keep) || end == argv[1] || *end != '\0' ||
	    n < 1 || n > N_MAX) {
		fprintf(stderr,
		        "usage: bench_scale N [--keep]\n  N sites (1..%d) log in to one cfl server "
		        "and run one round of a tiny job;\n  --keep keeps the run's folder (server "
		        "log, load logs)\n",
		        N_MAX);
		exit(2);
	}
	B.n = (int)n;
}

struct figures {
	long rss0, rss1, rss2, hwm, load_rss;
	long long ossl0, ossl1, heap0, heap1;
	int have_mc;
	double login_s, idle_cpu;
};

static void measure_idle(struct figures *f)
{
	long long t0, t1;
	double w0, w1;

	drain_for(2); /* the last replies and log lines settle */
	f->rss1 = proc_kib(B.server, "VmRSS");
	f->have_mc = f->have_mc && memcount(&f->ossl1, &f->heap1) == 0;
	f->load_rss = 0;
	for (int k = 0; k < B.n_load; k++)
		f->load_rss += proc_kib(B.ld[k].pid, "VmRSS");
	t0 = proc_ticks(B.server);
	w0 = now_s();
	drain_for(IDLE_S);
	t1 = proc_ticks(B.server);
	w1 = now_s();
	f->idle_cpu = 100.0 * (double)(t1 - t0) / (double)sysconf(_SC_CLK_TCK) / (w1 - w0);
}

static void print_figures(const struct figures *f)
{
	double per = (double)(f->rss1 - f->rss0) / B.n;

	printf("\nscale: %d sites, mtls (ECDSA P-256), one cfl server, descriptors %ld each\n", B.n,
	       nofile_soft());
	printf("  logged in                 %d of %d in %.2f s (%.0f logins/s, %d in flight per "
	       "load process)\n",
	       total(offsetof(struct loader, in)), B.n, f->login_s, B.n / f->login_s, DIAL_WINDOW);
	printf("  failed login attempts     %d; sessions dropped %d\n",
	       total(offsetof(struct loader, fails)), total(offsetof(struct loader, drops)));
	printf("  server VmRSS              %ld -> %ld KiB: %.1f KiB per session\n", f->rss0,
	       f->rss1, per);
	if (f->have_mc)
		printf("  OpenSSL's heap            %.1f KiB per session, of %.1f KiB of heap per "
		       "session (the rest: %.1f KiB)\n",
		       (double)(f->ossl1 - f->ossl0) / 1024 / B.n,
		       (double)(f->heap1 - f->heap0) / 1024 / B.n,
		       (double)((f->heap1 - f->heap0) - (f->ossl1 - f->ossl0)) / 1024 / B.n);
	printf("  server CPU while idle     %.2f %% of one core (%.0f s, heartbeats every 10 s)\n",
	       f->idle_cpu, IDLE_S);
	printf("  load processes' VmRSS     %.1f KiB per site\n", (double)f->load_rss / B.n);
	printf("  check_status server       %.3f s\n", A.t_status);
	if (A.total >= 0)
		printf("  check_status client       %.3f s, %zu bytes: %d sites listed (the first "
		       "page), %d in all, %d connected\n",
		       A.t_clients, A.clients_bytes, A.listed, A.total, A.connected);
	else
		printf("  check_status client       %.3f s, %zu bytes, %d sites listed\n",
		       A.t_clients, A.clients_bytes, A.listed);
	printf("  round (submit to FINISHED) %.2f s: %s, %d updates, server's round %.2f s, "
	       "slowest list_jobs %.3f s\n",
	       A.t_round, A.status[0] ? A.status : "-", A.updates, A.server_round_s, A.t_poll_max);
	printf("  CPU during the round      server %.2f s, load processes %.2f s (%ld cores)\n",
	       (double)A.srv_ticks / (double)sysconf(_SC_CLK_TCK),
	       (double)A.load_ticks / (double)sysconf(_SC_CLK_TCK), sysconf(_SC_NPROCESSORS_ONLN));
	printf("  server VmRSS after round  %ld KiB, peak %ld KiB\n", f->rss2, f->hwm);
}

int main(int argc, char **argv)
{
	struct figures f;
	struct cfl_err e = {0};
	int rc;

	memset(&f, 0, sizeof(f));
	parse_args(argc, argv);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	find_self();
	atexit(cleanup);
	cfl_log_set_level(CFL_LOG_ERROR);
	provision();
	make_run();
	start_server();
	drain_for(0.5);
	f.rss0 = proc_kib(B.server, "VmRSS");
	f.have_mc = memcount(&f.ossl0, &f.heap0) == 0;
	start_loaders();
	wait_ready();
	if ((f.login_s = login_all()) < 0) {
		print_events();
		die("only %d of %d sites logged in before the deadline",
		    total(offsetof(struct loader, in)), B.n);
	}
	measure_idle(&f);
	rc = run_admin(&e);
	drain(0);
	f.rss2 = proc_kib(B.server, "VmRSS");
	f.hwm = proc_kib(B.server, "VmHWM");
	print_figures(&f);
	print_events();
	if (rc != 0)
		die("admin session: %s", e.msg[0] ? e.msg : A.why);
	if (A.total >= 0 && A.connected != B.n)
		die("check_status client counted %d sites connected, not %d", A.connected, B.n);
	if (strcmp(A.status, "FINISHED:COMPLETED") != 0 || A.updates != B.n ||
	    total(offsetof(struct loader, in)) != B.n)
		die("the round did not complete over all %d sites", B.n);
	return 0;
}
