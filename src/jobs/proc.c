/* A job program's process group on a site.
 *
 * RUNNING → (stop asked, or the leader exited leaving others) TERM sent → KILL sent after the
 * grace → group gone → leader reaped.
 *
 * The program starts with posix_spawn, never fork + setenv: the site is multi-threaded, and
 * a forked child of a threaded process may call only async-signal-safe functions before exec
 * (setenv is not one: a lock another thread held at fork time stays held in the child).
 *
 * The leader is reaped last. Until then its pid, and so the group's id, cannot be given to
 * another process (a zombie keeps its pid), so kill(-group) never reaches a stranger; and
 * whether the group still has live members is read from /proc, because kill(-group, 0)
 * succeeds as long as the zombie leader is there. */
#define _GNU_SOURCE
#include "proc.h"

#include "cfl/log.h"
#include "util/num.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS    50   /* how often the worker looks at the stop flag and the leader */
#define GIVE_UP_MS 1000 /* after SIGKILL: a process in uninterruptible sleep is left behind */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- the program's output, logged a line at a time -------------------------------------------- */

static void pump_flush(struct cfl__pump *p)
{
	if (p->len > 0)
		CFL_INFO("%s: %.*s", p->tag, (int)p->len, p->buf);
	p->len = 0;
}

static void pump_add(struct cfl__pump *p, const char *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '\n') {
			pump_flush(p);
			continue;
		}
		p->buf[p->len++] = d[i];
		if (p->len == sizeof(p->buf))
			pump_flush(p);
	}
}

/* Reads what is there, 64 KiB at most (a program that writes without pause must not keep the
 * worker from its other checks); at the end of the output, closes the descriptor. */
static void pump_read(struct cfl__pump *p)
{
	char d[4096];
	ssize_t n;

	for (int i = 0; i < 16 && p->fd >= 0; i++) {
		n = read(p->fd, d, sizeof(d));
		if (n > 0) {
			pump_add(p, d, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN) {
			pump_flush(p);
			close(p->fd);
			p->fd = -1;
		}
		return;
	}
}

static void pump_wait(struct cfl__pump *p, int ms)
{
	struct pollfd pf = {.fd = p->fd, .events = POLLIN};

	if (p->fd < 0) {
		poll(NULL, 0, ms);
		return;
	}
	if (poll(&pf, 1, ms) > 0)
		pump_read(p);
}

/* --- the group -----------------------------------------------------------------------------------
 */

/* The process group of /proc/<name>, or -1 for one that is a zombie (nothing left to end),
 * gone, or not a process. /proc/PID/stat is "pid (comm) state ppid pgrp ...", where comm may
 * hold spaces and parentheses: the fields are read after the last ')'. */
static long stat_group(const char *name)
{
	char path[64], buf[512], *p, *end;
	uint64_t pg;
	ssize_t n;
	int fd;

	if (snprintf(path, sizeof(path), "/proc/%s/stat", name) >= (int)sizeof(path) ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* ") S 123 456 ": the state, then ppid, then pgrp. */
	if (p == NULL || p[1] != ' ' || p[2] == '\0' || p[2] == 'Z' || p[3] != ' ' ||
	    (p = strchr(p + 4, ' ')) == NULL || (end = strchr(p + 1, ' ')) == NULL)
		return -1;
	*end = '\0';
	if (cfl__num_u64(p + 1, INT_MAX, &pg) != 0)
		return -1;
	return (long)pg;
}

/* 1 if a live process other than the leader is in group `pg` (also when /proc cannot be read:
 * then the caller ends the group rather than trust that it is empty). */
static int group_has_others(pid_t pg)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	uint64_t pid;
	int found = 0;

	if (d == NULL)
		return 1;
	while (!found && (de = readdir(d)) != NULL) {
		if (cfl__num_u64(de->d_name, INT_MAX, &pid) == 0 && (pid_t)pid != pg &&
		    stat_group(de->d_name) == (long)pg)
			found = 1;
	}
	closedir(d);
	return found;
}

/* 1 once the leader has exited, with its exit status (128 + N for signal N) in *code; it stays
 * a zombie (WNOWAIT) until cfl__proc_finish reaps it. */
static int leader_exited(pid_t pid, int *code)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid != pid)
		return 0;
	*code = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
	return 1;
}

/* Follows the group until it is gone: the output logged, the stop flag obeyed. */
static void follow(pid_t pid, struct cfl__pump *out, atomic_int *stop, const char *tag)
{
	uint64_t term_at = 0, kill_at = 0;
	int exited = 0, warned = 0, code;

	for (;;) {
		pump_wait(out, TICK_MS);
		if (!exited)
			exited = leader_exited(pid, &code);
		if (term_at == 0 && (atomic_load(stop) || (exited && group_has_others(pid)))) {
			CFL_INFO("%s: ending process group %d%s", tag, (int)pid,
			         exited ? " (left behind by the program)" : "");
			kill(-pid, SIGTERM);
			term_at = now_ms();
		}
		if (term_at != 0 && kill_at == 0 && now_ms() - term_at >= CFL__PROC_GRACE_MS) {
			kill(-pid, SIGKILL);
			kill_at = now_ms();
		}
		if (exited && (term_at == 0 || !group_has_others(pid)))
			return;
		/* A process in uninterruptible sleep outlives SIGKILL for a while: once the leader
		 * is gone (it must be waited for, to be reaped), the rest is left behind. */
		if (kill_at != 0 && now_ms() - kill_at >= GIVE_UP_MS) {
			if (!warned)
				CFL_WARN("%s: process group %d survives SIGKILL", tag, (int)pid);
			warned = 1;
			if (exited)
				return;
		}
	}
}

static int spawn(const struct cfl__proc_spec *s, int out_fd, pid_t *pid, struct cfl_err *e)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int rc;

	sigemptyset(&none);
	sigfillset(&all);
	if (posix_spawn_file_actions_init(&fa) != 0)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	if (posix_spawnattr_init(&at) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	}
	/* The site's loop blocks SIGTERM and SIGINT in every thread (they arrive by signalfd) and
	 * ignores SIGPIPE: the program gets an empty mask and every default action back. */
	rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
	if (rc == 0)
		rc = posix_spawn_file_actions_addchdir_np(&fa, s->dir);
	/* The channel of a client_api script (clientapi.c) becomes its descriptor 3. */
	if (rc == 0 && s->keep_fd > 2)
		rc = posix_spawn_file_actions_adddup2(&fa, s->keep_fd, CFL__PROC_KEPT_FD);
	if (rc == 0)
		rc = posix_spawn_file_actions_addclosefrom_np(&fa, s->keep_fd > 2 ? 4 : 3);
	if (rc == 0)
		rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
		                                           POSIX_SPAWN_SETSIGDEF);
	if (rc == 0)
		rc = posix_spawnattr_setpgroup(&at, 0);
	if (rc == 0)
		rc = posix_spawnattr_setsigmask(&at, &none);
	if (rc == 0)
		rc = posix_spawnattr_setsigdefault(&at, &all);
	if (rc == 0)
		rc = posix_spawnp(pid, s->argv[0], &fa, &at, s->argv, s->envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0)
		return cfl_err_set(e, CFL_EIO, "cannot start '%s': %s", s->argv[0], strerror(rc));
	return 0;
}

int cfl__proc_start(const struct cfl__proc_spec *s, struct cfl__proc *p, struct cfl_err *e)
{
	int fds[2], rc;

	memset(p, 0, sizeof(*p));
	p->pid = -1;
	p->out.fd = -1;
	p->out.tag = s->tag;
	/* Both ends close on exec: the child's copy of the write end is the dup2'd 1 and 2. */
	if (pipe2(fds, O_CLOEXEC) != 0)
		return cfl_err_set(e, CFL_EIO, "cannot make a pipe: %s", strerror(errno));
	rc = spawn(s, fds[1], &p->pid, e);
	close(fds[1]);
	if (rc != 0) {
		close(fds[0]);
		return rc;
	}
	/* Only our end reads without blocking: the program's stdout stays a blocking pipe. */
	fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
	p->out.fd = fds[0];
	return 0;
}

void cfl__proc_pump(struct cfl__proc *p)
{
	pump_read(&p->out);
}

int cfl__proc_exited(struct cfl__proc *p, int *code)
{
	return leader_exited(p->pid, code);
}

void cfl__proc_finish(struct cfl__proc *p, atomic_int *stop, int *status)
{
	follow(p->pid, &p->out, stop, p->out.tag);
	while (waitpid(p->pid, status, 0) < 0 && errno == EINTR)
		;
	/* What is still in the pipe; a process outside the group that holds its write end (one
	 * that made itself a session of its own) keeps no one waiting. */
	pump_read(&p->out);
	pump_flush(&p->out);
	if (p->out.fd >= 0)
		close(p->out.fd);
	p->out.fd = -1;
}

int cfl__proc_run(const struct cfl__proc_spec *s, atomic_int *stop, int *status, struct cfl_err *e)
{
	struct cfl__proc p;
	int rc = cfl__proc_start(s, &p, e);

	if (rc != 0)
		return rc;
	cfl__proc_finish(&p, stop, status);
	return 0;
}
