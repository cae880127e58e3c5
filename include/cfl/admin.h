/* The admin session (docs/jobs.md "The admin console"): logs in to the server with an admin
 * startup kit, sends commands to the server's `admin` topic and hands each reply back as data.
 *
 * It does no terminal I/O: the program reads the command lines, from wherever it likes, and
 * prints the replies. Commands go one at a time: after the login and after each reply the
 * session calls `ready`, and the program answers with cfl_admin_send() or cfl_admin_quit(),
 * at once or later from a callback of the session's event loop (cfl_admin_loop()), which is
 * how a console waits for a person to type without starving the session's heartbeats.
 *
 * Two commands touch local files: `submit_job FOLDER` sends the folder's regular files (at most
 * 64 of 16 MiB), and `download_job ID` writes the job's files into <kit>/transfer/<ID>/ (ID a
 * plain name; the server's answer must be for that job, with at most 64 plain file names).
 *
 * Threads: everything runs on the thread that called cfl_admin_run(), in its event loop; the
 * callbacks run there, and the other functions may only be called from those callbacks. */
#ifndef CFL_ADMIN_H
#define CFL_ADMIN_H

#include "cfl/err.h"

#include <stddef.h>

struct cfl_admin; /* one logged-in session; it lives until cfl_admin_run() returns */
struct cfl_loop;

/* The outcome of one command; valid during the `reply` callback only. */
struct cfl_admin_reply {
	const char *cmd;      /* the command line as sent */
	int status;           /* 0, else a CFL_E* code: CFL_EPROTO when the server refused it */
	const char *error;    /* when status != 0: why (the server's own words when it refused) */
	const char *body;     /* the server's answer, JSON text, NUL-terminated ("" on failure) */
	size_t len;           /* strlen(body) */
	const char *saved_to; /* download_job: the folder the job's files went to, else NULL */
};

struct cfl_admin_ops {
	/* The session waits for the next command: after the login and after each reply (not
	 * after a reply whose failure ended the connection: the session is over then). */
	void (*ready)(struct cfl_admin *s, void *arg);
	/* The reply to the command sent last, or why it failed. */
	void (*reply)(struct cfl_admin *s, const struct cfl_admin_reply *r, void *arg);
	void *arg;
	/* The server to log in to instead of the kit's: NULL or "" keeps the kit's host, 0 its
	 * port. The server's certificate is checked against the host dialed. */
	const char *server_host;
	int server_port;
	/* 1: an admin kit without startup/signature.json runs unchecked (the simulator's); a
	 * signed kit is checked either way. */
	int unsigned_kit;
};

/* Logs in with the admin kit in `kit_dir` and runs the session until cfl_admin_quit(), a lost
 * connection or SIGINT/SIGTERM. Blocks. Returns 0, or the status given to cfl_admin_quit(), or
 * the CFL_E* code of the failure (kit, connection, login) with `e` set. `ops` must outlive the
 * call. */
int cfl_admin_run(const char *kit_dir, const struct cfl_admin_ops *ops, struct cfl_err *e);

/* Sends one command line ("list_jobs", "submit_job ./my-job", ...); its reply comes through
 * ops->reply, then ops->ready. Returns 0, or a CFL_E* code with `e` set and no callback:
 * CFL_EAGAIN while another command waits for its reply, CFL_ECLOSED once the connection is
 * gone, CFL_EINVAL for an empty or too long line (1023 bytes) or a download_job whose id is
 * not a plain name (empty, holding '/', or starting with '.'), or the reason a job folder
 * cannot be sent. */
int cfl_admin_send(struct cfl_admin *s, const char *line, struct cfl_err *e);

/* Ends the session: cfl_admin_run() closes the connection and returns `status` (with `reason`
 * in its `e` when status != 0). Later calls are no-ops. */
void cfl_admin_quit(struct cfl_admin *s, int status, const char *reason);

/* The event loop the session runs in (cfl/loop.h), to watch the program's own inputs. Valid
 * until cfl_admin_run() returns; it frees every watch and timer left on it. */
struct cfl_loop *cfl_admin_loop(struct cfl_admin *s);

#endif
