#define _DEFAULT_SOURCE
/* cfl simulate <job folder> -n N [-w DIR]: a server and N clients on this machine, with
 * secure_train off (clear connections), otherwise the same programs and code paths: the job is
 * submitted and followed through the admin console, like a real deployment. */
#include "cmds.h"

#include "cfl/log.h"
#include "cfl/provision.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 256
#define ADMIN       "admin@sim.local"

struct sim {
	char ws[PATH_MAX / 2], prod[PATH_MAX / 2], job[PATH_MAX];
	char server[16]; /* ":PORT", the --server of the clients and the admin */
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

/* Runs `cfl admin --cmd CMD --json` and returns its parsed output (NULL on failure). */
static json_t *admin(struct sim *s, const char *cmd)
{
	char kit[PATH_MAX], buf[1 << 16];
	char *argv[] = {"cfl",     "--log-level",    "error", "admin",     kit,      "--server",
	                s->server, "--unsigned-kit", "--cmd", (char *)cmd, "--json", NULL};
	size_t len = 0;
	ssize_t n;
	int fds[2], st = -1;
	pid_t pid, r;

	snprintf(kit, sizeof(kit), "%s/%s", s->prod, ADMIN);
	if (pipe(fds) != 0)
		return NULL;
	pid = spawn(NULL, argv, fds[1]);
	close(fds[1]);
	if (pid < 0) { /* no child to read from or to wait for */
		close(fds[0]);
		return NULL;
	}
	while (len < sizeof(buf) - 1 && (n = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fds[0]);
	while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	buf[len] = '\0';
	return r == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? json_loads(buf, 0, NULL) : NULL;
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
	return 0;
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
	if ((pid = spawn(log, argv, -1)) < 0) {
		cmd_error("cannot start the server: %s", strerror(errno));
		return -1;
	}
	s->pids[s->n_pids++] = pid;
	for (int tries = 0; tries < 1200 && !interrupted; tries++) {
		if (read_port_file(s, ports) == 0)
			return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			s->n_pids--; /* reaped: nothing to stop */
			break;
		}
		usleep(50000);
	}
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

/* Waits until every site is logged in (bounded). */
static int wait_sites(struct sim *s)
{
	for (int tries = 0; tries < 300 && !interrupted; tries++) {
		json_t *v = admin(s, "check_status client");
		size_t n = json_array_size(json_object_get(v, "clients"));

		json_decref(v);
		if ((int)n >= s->n)
			return 0;
		usleep(50000);
	}
	return -1;
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

/* Submits the job and follows it to its end. Returns 0 when it completed. */
static int run_job(struct sim *s)
{
	char cmd[PATH_MAX + 32], id[64] = "";
	json_t *v;
	const char *st = "";

	snprintf(cmd, sizeof(cmd), "submit_job %s", s->job);
	v = admin(s, cmd);
	if (json_string_value(json_object_get(v, "job_id")) != NULL)
		snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(v, "job_id")));
	json_decref(v);
	if (id[0] == '\0') {
		cmd_error("the job was not accepted (see %s/server.log)", s->ws);
		return -1;
	}
	printf("job %s submitted\n", id);
	snprintf(cmd, sizeof(cmd), "list_jobs %s", id);
	for (int tries = 0; tries < 20 * 60 * 10 && !interrupted; tries++) {
		json_t *job;

		v = admin(s, cmd);
		job = json_array_get(json_object_get(v, "jobs"), 0);
		st = json_string_value(json_object_get(job, "status"));
		if (st != NULL && strncmp(st, "FINISHED", 8) == 0) {
			print_metrics(job);
			printf("job %s: %s in %.2f s\n", id, st, now_s() - s->t0);
			tries = strcmp(st, "FINISHED:COMPLETED") == 0 ? 0 : -1;
			json_decref(v);
			return tries;
		}
		json_decref(v);
		usleep(50000);
	}
	cmd_error(interrupted ? "interrupted" : "the job did not finish in time");
	return -1;
}

static int remove_tree(const char *dir)
{
	char *argv[] = {"rm", "-rf", (char *)dir, NULL};
	pid_t pid = fork();

	if (pid == 0) {
		execvp("rm", argv);
		_exit(127);
	}
	return pid > 0 && waitpid(pid, NULL, 0) > 0 ? 0 : -1;
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
	int ch, rc;

	memset(&s, 0, sizeof(s));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "n:w:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			s.n = (int)strtol(optarg, NULL, 10);
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
		snprintf(s.ws, sizeof(s.ws), "/tmp/cfl-sim.XXXXXX");
		if (mkdtemp(s.ws) == NULL) {
			cmd_error("cannot create a temp folder");
			return EXIT_FAIL;
		}
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
	if (rc == 0 && (rc = wait_sites(&s)) != 0)
		cmd_error("the sites did not log in (see %s)", s.ws);
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
