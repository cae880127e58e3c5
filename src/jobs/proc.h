/* Internal to the site's executor: a job program's process group (proc.c, docs/jobs.md). */
#ifndef CFL_JOBS_PROC_H
#define CFL_JOBS_PROC_H

#include "cfl/err.h"

#include <stdatomic.h>
#include <sys/types.h>

/* How long a program's group has between SIGTERM and SIGKILL. With the worker's 50 ms checks
 * and the kernel's delivery, the group is gone well within 2 s of the request to stop it. */
#define CFL__PROC_GRACE_MS 1000

struct cfl__proc_spec {
	char *const *argv; /* NULL-terminated; argv[0] is looked up in the site's PATH */
	char *const *envp; /* NULL-terminated: the whole environment the program gets */
	const char *dir;   /* its working directory */
	const char *tag;   /* what its output lines are logged under, e.g. "job ID round 2" */
	/* A descriptor above 2 that the program gets as CFL__PROC_KEPT_FD (a client_api script's
	 * channel); 0: none, the program has 0-2 only. */
	int keep_fd;
};

#define CFL__PROC_KEPT_FD  3
#define CFL__PROC_LINE_MAX 1024 /* a longer output line is logged in pieces of this size */

/* The program's output, logged a line at a time under `tag`. */
struct cfl__pump {
	int fd; /* -1 once the last writer closed it */
	const char *tag;
	char buf[CFL__PROC_LINE_MAX];
	size_t len;
};

/* A started program (cfl__proc_start), followed by its caller until cfl__proc_finish. */
struct cfl__proc {
	pid_t pid;
	struct cfl__pump out;
};

/* Runs a program to its end: started with posix_spawn as the leader of a new process group,
 * with stdin from /dev/null, stdout and stderr into the site's log (a line at a time, under
 * `tag`), no other descriptor and default signal handling. When it exits, what it left
 * running in its group gets SIGTERM, then SIGKILL after CFL__PROC_GRACE_MS. When *stop becomes
 * nonzero (another thread sets it) the whole group is ended the same way.
 *
 * Blocks until the group is gone (or, for a process that survives SIGKILL, 2 s after it);
 * meant for a worker thread. Returns 0 with the leader's wait status in *status, or CFL_EIO
 * with `e` when it could not be started. */
int cfl__proc_run(const struct cfl__proc_spec *s, atomic_int *stop, int *status, struct cfl_err *e);

/* cfl__proc_run in parts, for a program that lives longer than one call (clientapi.c): start
 * it (0 or CFL_EIO with `e`); log what it wrote so far (cfl__proc_pump, when p->out.fd is
 * readable); whether its leader exited (1, with its exit status, 128 + N for signal N, in
 * *code); and end it as cfl__proc_run does (*stop nonzero: the group is ended now; zero: it
 * is followed until the leader exits), reaping the leader into *status. */
int cfl__proc_start(const struct cfl__proc_spec *s, struct cfl__proc *p, struct cfl_err *e);
void cfl__proc_pump(struct cfl__proc *p);
int cfl__proc_exited(struct cfl__proc *p, int *code);
void cfl__proc_finish(struct cfl__proc *p, atomic_int *stop, int *status);

#endif
