/* Scale benchmark: N authenticated sites on one `cfl server` (docs/BENCHMARKS.md "Scale").
 *
 *   bench_scale N [--keep]
 *
 * Provisions N sites (ECDSA P-256, mtls) into a cached workspace reused by later runs with the
 * same N ($XDG_CACHE_HOME/cfl-bench-scale-N, else /tmp/cfl-bench-scale-N; kept while its stamp
 * matches this program's kit format and its kits load), starts build/cfl's `server` in a
 * process of its own on a port the kernel picks, forks one load process per LOAD_MAX sites
 * (bench/scale/load.c: real mTLS logins and heartbeats, the library's executor per site), then
 * through an admin session (cfl_admin_run) times the status commands, submits a synthetic job
 * (1,000 floats, 1 round, min_clients N) and follows it to its end. It prints the time to log
 * everyone in, logins/s, the server's RSS per session (VmRSS before and after), OpenSSL's share
 * of the server's heap (when build/libbench_scale_memcount.so is there to preload: it counts
 * OpenSSL's allocations through CRYPTO_set_mem_functions), the server's CPU while idle with N
 * sessions (/proc/PID/stat over IDLE_S), the round's wall time and every site that failed.
 *
 * Exit status 0 only when all N sites logged in and the round completed with N updates. Every
 * wait is bounded; the server and the load processes are stopped on every path and the run's
 * temporary folder (server log, site work folders) is removed unless --keep.
 *
 * This file: the arguments, the order of the steps and the figures; the rest in bench/scale/
 * (scale.h). */
#define _GNU_SOURCE
#include "cfl/err.h"
#include "cfl/log.h"
#include "scale/scale.h"

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct bench_scale B;

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
	printf("  run folder                %s (sites' work folders, server log)\n", B.run);
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
