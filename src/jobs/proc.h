/* Internal to the site's executor: a job program's process group (proc.c, docs/jobs.md). */
#ifndef CFL_JOBS_PROC_H
#define CFL_JOBS_PROC_H

#include "cfl/err.h"

#include <stdatomic.h>

/* How long a program's group has between SIGTERM and SIGKILL. With the worker's 50 ms checks
 * and the kernel's delivery, the group is gone well within 2 s of the request to stop it. */
#define CFL__PROC_GRACE_MS 1000

struct cfl__proc_spec {
	char *const *argv; /* NULL-terminated; argv[0] is looked up in the site's PATH */
	char *const *envp; /* NULL-terminated: the whole environment the program gets */
	const char *dir;   /* its working directory */
	const char *tag;   /* what its output lines are logged under, e.g. "job ID round 2" */
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

#endif
