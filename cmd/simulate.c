#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 700 /* nftw */
/* cfl simulate <job folder> -n N [-w DIR]: a server and N clients on this machine, with
 * secure_train off (clear connections), otherwise the same programs and code paths: the job is
 * submitted and followed through an admin session, like a real deployment.
 *
 * The fixed cost is kept small (docs/BENCHMARKS.md "Simulator fixed cost"): the temporary
 * workspace is in memory (/dev/shm) when there is one, the server's port file is waited for
 * with inotify rather than by sleeping, the sites start together as soon as the port is known,
 * the admin session runs in this process (one login, not one program per command), its polls
 * start at 1 ms and back off, and everything is stopped at once at the end. */
#include "cmds.h"

#include "cfl/admin.h"
#include "cfl/log.h"
#include "cfl/loop.h"
#include "cfl/provision.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 256
#define ADMIN       "admin@sim.local"

#define SERVER_START_S 60      /* the server writes its port file within this */
#define SITES_LOGIN_MS 15000   /* every site has logged in within this */
#define JOB_MAX_MS     1200000 /* the job ends within this (20 min) */
#define POLL_MAX_MS    50      /* the admin's polls: a tenth of the wait so far, 1..50 ms */

struct sim {
	char ws[PATH_MAX / 2], prod[PATH_MAX / 2], job[PATH_MAX];
	char server[16]; /* ":PORT", the --server of the clients */
	int port;
	int n, keep;
	pid_t pids[MAX_CLIENTS + 1];
	int n_pids;
	double t0;
};

/* SIGINT/SIGTERM: stop following the job, stop the processes, remove the temp folder. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: cfl simulate <job folder> -n N [-w DIR]\n\n"
	        "Runs the job with a server and N clients on this machine (clear connections,\n"
	        "secure_train off) and prints the metrics per round.\n\n"
	        "  -n, --clients N     number of sites (1..%d)\n"
	        "  -w, --workspace DIR keep the kits, logs and results in DIR (default: a temp\n"
	        "                      folder, removed at the end)\n",
	        MAX_CLIENTS);
}

/* The kits name port 8002, but the server listens where the kernel puts it (--port 0) and the
 * others are told (--server :PORT): a port picked here and released before the server binds
 * it could be taken by another process meanwhile. */
static int write_project(struct sim *s, const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fprintf(f,
	        "api_version: 3\nname: simulation\nconnection_security: clear\nparticipants:\n"
	        "  - {name: localhost, type: server, org: sim, fed_learn_port: 8002, admin_port: "
	        "8002}\n  - {name: %s, type: admin, org: sim, role: project_admin}\n",
	        ADMIN);
	for (int i = 0; i < s->n; i++)
		fprintf(f, "  - {name: site-%d, type: client, org: sim}\n", i + 1);
	return fclose(f);
}

/* secure_train off, as the simulator of NVFlare does (SPEC §4): clear connections. The edited
 * kits are unsigned, and the simulator runs every process with --unsigned-kit: a kit cannot
 * switch its own check off, the program that wrote it can. */
static int unsecure(const char *kit, const char *file)
{
	char path[PATH_MAX];
	json_t *v;
	int rc;

	if (snprintf(path, sizeof(path), "%s/startup/%s", kit, file) >= (int)sizeof(path))
		return -1;
	v = json_load_file(path, 0, NULL);
	if (v == NULL)
		return -1;
	json_object_set_new(v, "secure_train", json_false());
	rc = json_dump_file(v, path, JSON_INDENT(2));
	json_decref(v);
	/* An edited kit no longer matches its manifest: the simulator's kits are unsigned. */
	if (rc == 0 &&
	    snprintf(path, sizeof(path), "%s/startup/signature.json", kit) < (int)sizeof(path))
		unlink(path);
	return rc;
}

static int unsecure_all(struct sim *s)
{
	char kit[PATH_MAX];
	int rc;

	snprintf(kit, sizeof(kit), "%s/localhost", s->prod);
	rc = unsecure(kit, "fed_server.json");
	snprintf(kit, sizeof(kit), "%s/%s", s->prod, ADMIN);
	rc |= unsecure(kit, "fed_admin.json");
	for (int i = 0; rc == 0 && i < s->n; i++) {
		snprintf(kit, sizeof(kit), "%s/site-%d", s->prod, i + 1);
		rc |= unsecure(kit, "fed_client.json");
	}
	return rc == 0 ? 0 : -1;
}

/* Runs this cfl with argv, stderr to `log` (NULL: /dev/null), stdout to out_fd or the log.
 * Returns the child's pid, or -1 when fork failed. */
static pid_t spawn(const char *log, char *const argv[], int out_fd)
{
	sigset_t stop, old;
	pid_t pid;

	/* A SIGTERM from stop_all between fork and exec would reach the child's copy of
	 * on_interrupt and vanish with the exec, leaving a process nobody stops: the child takes
	 * the default actions back while the signals wait, blocked. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop, &old);
	pid = fork();
	if (pid == 0) {
		/* The admin polls while the server starts: its refusals are expected noise. */
		FILE *f = freopen(log != NULL ? log : "/dev/null", "w", stderr);

		(void)f;
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (out_fd >= 0)
			dup2(out_fd, STDOUT_FILENO);
		else if (log != NULL)
			dup2(STDERR_FILENO, STDOUT_FILENO);
		execv(cmd_self_path(), argv);
		_exit(127);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return pid;
}

/* Reads "FED ADMIN" from the server's port file into s->server (":FED"). 0, or -1 while the
 * file is not there (it appears whole: the server renames it into place). */
static int read_port_file(struct sim *s, const char *path)
{
	char line[64], *end;
	FILE *f = fopen(path, "r");
	long port = -1;

	if (f == NULL)
		return -1;
	if (fgets(line, sizeof(line), f) != NULL) {
		errno = 0;
		port = strtol(line, &end, 10);
		if (errno != 0 || end == line || *end != ' ' || port < 1 || port > 65535)
			port = -1;
	}
	fclose(f);
	if (port < 0)
		return -1;
	snprintf(s->server, sizeof(s->server), ":%ld", port);
	s->port = (int)port;
	return 0;
}

/* Waits for the server's port file: inotify wakes this up when the server renames it into
 * place (without inotify, a 5 ms poll). The 100 ms wait only bounds how late a server that
 * died is noticed. */
static int wait_port_file(struct sim *s, pid_t pid, const char *ports)
{
	int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	double deadline = now_s() + SERVER_START_S;
	char events[4096];

	if (fd >= 0 && inotify_add_watch(fd, s->ws, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		close(fd);
		fd = -1;
	}
	while (!interrupted && now_s() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		if (read_port_file(s, ports) == 0)
			break;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			s->n_pids--; /* reaped: nothing to stop */
			break;
		}
		if (poll(&p, fd >= 0, fd >= 0 ? 100 : 5) > 0)
			while (read(fd, events, sizeof(events)) > 0)
				;
	}
	if (fd >= 0)
		close(fd);
	return s->port > 0 ? 0 : -1;
}

/* Starts the server on a port the kernel picks and waits (60 s at most) for the file where it
 * writes it. */
static int start_server(struct sim *s)
{
	char kit[PATH_MAX], log[PATH_MAX], ports[PATH_MAX];
	char *argv[] = {"cfl", "server",         kit, "--port", "0", "--port-file",
	                ports, "--unsigned-kit", NULL};
	pid_t pid;

	snprintf(kit, sizeof(kit), "%s/localhost", s->prod);
	snprintf(log, sizeof(log), "%s/server.log", s->ws);
	snprintf(ports, sizeof(ports), "%s/server.ports", s->ws);
	unlink(ports); /* a kept workspace's last run left one */
	if ((pid = spawn(log, argv, -1)) < 0) {
		cmd_error("cannot start the server: %s", strerror(errno));
		return -1;
	}
	s->pids[s->n_pids++] = pid;
	if (wait_port_file(s, pid, ports) == 0)
		return 0;
	if (interrupted)
		cmd_error("interrupted");
	else
		cmd_error("the server did not start (see %s)", log);
	return -1;
}

static int start_all(struct sim *s)
{
	char kit[PATH_MAX], log[PATH_MAX];
	char *argv[] = {"cfl", "client", kit, "--server", s->server, "--unsigned-kit", NULL};
	pid_t pid;

	if (start_server(s) != 0)
		return -1;
	for (int i = 0; i < s->n; i++) {
		snprintf(kit, sizeof(kit), "%s/site-%d", s->prod, i + 1);
		snprintf(log, sizeof(log), "%s/site-%d.log", s->ws, i + 1);
		if ((pid = spawn(log, argv, -1)) < 0) {
			cmd_error("cannot start site-%d: %s", i + 1, strerror(errno));
			return -1;
		}
		s->pids[s->n_pids++] = pid;
	}
	return 0;
}

/* Peak resident memory of a child (VmHWM), in KiB; -1 if unknown. */
static long peak_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmHWM:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	}
	fclose(f);
	return kib;
}

static void stop_all(struct sim *s)
{
	if (s->n_pids > 0)
		printf("server peak RSS: %.1f MiB\n", (double)peak_rss_kib(s->pids[0]) / 1024.0);
	for (int i = s->n_pids - 1; i >= 0; i--)
		kill(s->pids[i], SIGTERM);
	for (int i = 0; i < s->n_pids; i++)
		waitpid(s->pids[i], NULL, 0);
	s->n_pids = 0;
}

static void print_metrics(json_t *job)
{
	json_t *m, *metrics = json_object_get(job, "metrics");
	size_t i;

	printf("round  clients  train loss  test accuracy\n");
	json_array_foreach (metrics, i, m) {
		printf("%5d  %7d  %10.4f  %13.4f\n",
		       (int)json_integer_value(json_object_get(m, "round")),
		       (int)json_integer_value(json_object_get(m, "clients")),
		       json_real_value(json_object_get(m, "train_loss")),
		       json_real_value(json_object_get(m, "test_accuracy")));
	}
}

/* ---- the admin session: wait for the sites, submit, follow ---------------------------- */

enum phase { WAIT_SITES, SUBMIT, FOLLOW };

struct drive {
	struct sim *s;
	struct cfl_admin *adm;
	enum phase phase;
	char cmd[PATH_MAX + 32], id[64];
	uint64_t delay_ms, start_ms, deadline_ms;
	int done;      /* the job finished (completed or not) */
	int completed; /* FINISHED:COMPLETED */
};

static void send_cmd(struct drive *d)
{
	struct cfl_err e = {0};

	if (cfl_admin_send(d->adm, d->cmd, &e) != 0)
		cfl_admin_quit(d->adm, e.code, e.msg);
}

static void on_poll_timer(struct cfl_loop *loop, uint64_t id, void *arg)
{
	(void)loop;
	(void)id;
	send_cmd(arg);
}

/* After the login and after each reply: the next command, now or after the poll delay. */
static void on_ready(struct cfl_admin *adm, void *arg)
{
	struct drive *d = arg;

	d->adm = adm;
	if (d->done)
		return;
	if (d->delay_ms == 0)
		send_cmd(d);
	else if (cfl_loop_timer_add(cfl_admin_loop(adm), d->delay_ms, on_poll_timer, d) == 0)
		cfl_admin_quit(adm, CFL_ENOMEM, "out of memory");
}

/* The next command of `phase`, sent at once; `limit_ms` bounds the phase. */
static void next_phase(struct drive *d, enum phase phase, uint64_t limit_ms)
{
	d->phase = phase;
	d->delay_ms = 0;
	d->start_ms = cfl_loop_now_ms(NULL);
	d->deadline_ms = d->start_ms + limit_ms;
	if (phase == WAIT_SITES)
		snprintf(d->cmd, sizeof(d->cmd), "check_status client");
	else if (phase == SUBMIT)
		snprintf(d->cmd, sizeof(d->cmd), "submit_job %s", d->s->job);
	else
		snprintf(d->cmd, sizeof(d->cmd), "list_jobs %s", d->id);
}

/* Polls again after a tenth of the time waited so far (1 to POLL_MAX_MS ms): what ends is
 * seen at most 10 % late (a few ms for the sites' logins and a short job), and a long job costs
 * the server 20 commands a second, as the simulator's polls always did. */
static void poll_again(struct drive *d, const char *what)
{
	uint64_t now = cfl_loop_now_ms(NULL);

	if (now > d->deadline_ms) {
		cfl_admin_quit(d->adm, CFL_ETIMEDOUT, what);
		return;
	}
	d->delay_ms = (now - d->start_ms) / 10;
	if (d->delay_ms < 1)
		d->delay_ms = 1;
	if (d->delay_ms > POLL_MAX_MS)
		d->delay_ms = POLL_MAX_MS;
}

static void on_sites(struct drive *d, json_t *v)
{
	size_t n = json_array_size(json_object_get(v, "clients"));

	if ((int)n >= d->s->n)
		next_phase(d, SUBMIT, SITES_LOGIN_MS);
	else
		poll_again(d, "the sites did not log in");
}

static void on_submitted(struct drive *d, json_t *v)
{
	const char *id = json_string_value(json_object_get(v, "job_id"));

	if (id == NULL) {
		cfl_admin_quit(d->adm, CFL_EPROTO, "the job was not accepted");
		return;
	}
	snprintf(d->id, sizeof(d->id), "%s", id);
	printf("job %s submitted\n", d->id);
	fflush(stdout);
	next_phase(d, FOLLOW, JOB_MAX_MS);
}

static void on_job(struct drive *d, json_t *v)
{
	json_t *job = json_array_get(json_object_get(v, "jobs"), 0);
	const char *st = json_string_value(json_object_get(job, "status"));

	if (st == NULL || strncmp(st, "FINISHED", 8) != 0) {
		poll_again(d, "the job did not finish in time");
		return;
	}
	print_metrics(job);
	printf("job %s: %s in %.2f s\n", d->id, st, now_s() - d->s->t0);
	d->done = 1;
	d->completed = strcmp(st, "FINISHED:COMPLETED") == 0;
	cfl_admin_quit(d->adm, 0, NULL);
}

static void on_reply(struct cfl_admin *adm, const struct cfl_admin_reply *r, void *arg)
{
	struct drive *d = arg;
	json_t *v;

	d->adm = adm;
	if (r->status != 0) {
		cfl_admin_quit(adm, r->status, r->error);
		return;
	}
	v = json_loads(r->body, 0, NULL);
	if (d->phase == WAIT_SITES)
		on_sites(d, v);
	else if (d->phase == SUBMIT)
		on_submitted(d, v);
	else
		on_job(d, v);
	json_decref(v);
}

/* Runs the admin session in this process until the job ends. Returns 0 when it completed. */
static int run_job(struct sim *s)
{
	struct drive d = {.s = s};
	struct cfl_admin_ops ops = {.ready = on_ready,
	                            .reply = on_reply,
	                            .arg = &d,
	                            .server_port = s->port,
	                            .unsigned_kit = 1};
	enum cfl_log_level level = cfl_log_get_level();
	struct cfl_err e = {0};
	char kit[PATH_MAX];
	sigset_t mask;
	int rc;

	snprintf(kit, sizeof(kit), "%s/%s", s->prod, ADMIN);
	next_phase(&d, WAIT_SITES, SITES_LOGIN_MS);
	/* The session routes SIGINT/SIGTERM to its own loop (it ends then) and leaves them
	 * blocked: the mask is put back for this program's own handler. */
	sigprocmask(SIG_SETMASK, NULL, &mask);
	if (level > CFL_LOG_ERROR)
		cfl_log_set_level(CFL_LOG_ERROR); /* "kit not signed", "logged in": not news here */
	rc = cfl_admin_run(kit, &ops, &e);
	cfl_log_set_level(level);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	if (d.done)
		return d.completed ? 0 : -1;
	if (d.phase == WAIT_SITES)
		cmd_error("the sites did not log in (see %s)%s%s", s->ws, rc != 0 ? ": " : "",
		          rc != 0 ? e.msg : "");
	else if (rc != 0)
		cmd_error("the admin session ended: %s (see %s/server.log)", e.msg, s->ws);
	else
		cmd_error("interrupted (see %s/server.log)", s->ws);
	return -1;
}

/* rm -rf, not following symbolic links. */
static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) == 0 || errno == ENOENT ? 0 : -1;
}

static int remove_tree(const char *dir)
{
	return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The temporary workspace: in TMPDIR when it is set, else in memory (/dev/shm: provisioning
 * writes some 25 files per participant, each ~0.25 ms on a disk file system), else in /tmp. */
static int make_temp(struct sim *s)
{
	const char *base = getenv("TMPDIR");

	if (base == NULL || base[0] == '\0')
		base = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
	if (snprintf(s->ws, sizeof(s->ws), "%s/cfl-sim.XXXXXX", base) >= (int)sizeof(s->ws) ||
	    mkdtemp(s->ws) == NULL) {
		cmd_error("cannot create a temp folder in '%s'", base);
		return -1;
	}
	return 0;
}

int cmd_simulate(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"clients", required_argument, NULL, 'n'},
	        {"workspace", required_argument, NULL, 'w'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct sim s;
	struct cfl_provision_opts po = {.key_type = -1};
	struct cfl_err e = {0};
	char project[PATH_MAX];
	long v;
	int ch, rc;

	memset(&s, 0, sizeof(s));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "n:w:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			if (cmd_parse_long("number of clients", optarg, 1, MAX_CLIENTS, &v) != 0) {
				usage(stderr);
				return EXIT_USAGE;
			}
			s.n = (int)v;
			break;
		case 'w':
			snprintf(s.ws, sizeof(s.ws), "%s", optarg);
			s.keep = 1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || s.n < 1 || s.n > MAX_CLIENTS) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (realpath(argv[optind], s.job) == NULL) {
		cmd_error("no job folder '%s'", argv[optind]);
		return EXIT_FAIL;
	}
	s.t0 = now_s();
	signal(SIGINT, on_interrupt);
	signal(SIGTERM, on_interrupt);
	if (!s.keep) {
		if (make_temp(&s) != 0)
			return EXIT_FAIL;
	} else if (mkdir(s.ws, 0755) != 0 && errno != EEXIST) {
		cmd_error("cannot create '%s': %s", s.ws, strerror(errno));
		return EXIT_FAIL;
	}
	snprintf(project, sizeof(project), "%s/project.yml", s.ws);
	po.project_path = project;
	po.workspace = s.ws;
	po.cfl_path = cmd_self_path();
	rc = write_project(&s, project) != 0 ? -1 : cfl_provision(&po, s.prod, sizeof(s.prod), &e);
	if (rc != 0) {
		cmd_error("cannot provision the simulation: %s", e.msg[0] ? e.msg : "write failed");
		goto out;
	}
	rc = unsecure_all(&s);
	if (rc == 0)
		rc = start_all(&s);
	if (rc == 0)
		rc = run_job(&s);
	stop_all(&s);
	if (s.keep)
		printf("kits, logs and results: %s\n", s.ws);
out:
	if (!s.keep)
		remove_tree(s.ws);
	return rc == 0 ? EXIT_OK : EXIT_FAIL;
}
