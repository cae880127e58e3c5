/* `cfl admin`, the program's side of the admin console: the table of console commands and the
 * parsing of a line (admin_parse.c), running a line (admin_cmds.c), what a person reads of the
 * replies (admin_show.c) and the terminal (admin_console.c), over the library's admin session
 * (cfl/admin.h). */
#ifndef CFL_CMD_ADMIN_H
#define CFL_CMD_ADMIN_H

#include "cfl/admin.h"

#include <stdio.h>

#define ADMIN_ARGS_MAX 8
#define ADMIN_LINE_MAX 1023 /* bytes of a command line, as cfl_admin_send() takes */

/* The console's state, shared by the files above. */
struct admin_ctx {
	struct cfl_admin *s;          /* the session, once logged in */
	const char *once;             /* --cmd: the one command to run, else NULL (the console) */
	int json;                     /* --json: print the server's JSON as it came */
	int started;                  /* --cmd: it was sent */
	int status;                   /* the last command's: 0 or a CFL_E* code */
	int reported;                 /* that failure was printed already */
	const struct admin_cmd *sent; /* the command waiting for its reply */
};

/* What the console does after a line. */
enum admin_next {
	ADMIN_SENT,  /* the command went to the server: wait for its reply */
	ADMIN_AGAIN, /* done here (or refused): read the next line */
	ADMIN_QUIT,  /* leave the console */
};

/* Who runs a command: the server, or the console itself (admin_cmds.c). */
enum admin_local {
	ADMIN_TO_SERVER, /* sent as typed (its words joined by one blank) */
	ADMIN_HELP,
	ADMIN_BYE,
};

/* How a person reads a server command's reply (admin_show.c). */
enum admin_view {
	ADMIN_VIEW_FIELDS, /* key/value lines */
	ADMIN_VIEW_STATUS,
	ADMIN_VIEW_JOBS,
	ADMIN_VIEW_SUBMIT,
	ADMIN_VIEW_ABORT,
	ADMIN_VIEW_REMOVE,
	ADMIN_VIEW_SHUTDOWN,
};

/* One console command. The table in admin_parse.c is the only list of them: dispatch,
 * completion, `cfl admin --help` and `help` all come from it. It names what runs and what
 * prints a command, not the functions, so that the table links without them. */
struct admin_cmd {
	const char *name;
	const char *alias;        /* a second name, or NULL */
	const char *args;         /* the arguments' synopsis ("" for none) */
	const char *help;         /* one line */
	int min_args, max_args;   /* how many arguments it takes */
	const char *const *words; /* the values its first argument may take (and completes to) */
	enum admin_local local;
	enum admin_view show;
};

/* A command line split into words, and its command. */
struct admin_line {
	char buf[ADMIN_LINE_MAX + 1];
	char *argv[ADMIN_ARGS_MAX];
	int argc;
	const struct admin_cmd *cmd;
	char err[256];
};

/* admin_parse.c: no output, no terminal (fuzz/fuzz_admin.c compiles it alone). */
const struct admin_cmd *admin_cmd_at(size_t i); /* the i-th command, NULL past the last */
const struct admin_cmd *admin_cmd_find(const char *name);
/* "name|alias ARGS" into buf[0..size). */
void admin_synopsis(const struct admin_cmd *c, char *buf, size_t size);
/* Splits `line` and checks it against the table: 0 with l->cmd set, else -1 with the reason
 * in l->err ("" for a blank line). A line over ADMIN_LINE_MAX bytes is refused, not cut.
 * `console` picks the hint given for an unknown command. */
int admin_parse(const char *line, int console, struct admin_line *l);
/* The line the server gets: l's words joined by one blank, into out[0..size). 0, or -1 when it
 * does not fit. */
int admin_join(const struct admin_line *l, char *out, size_t size);
/* Reads one line of `in` (up to '\n' or the end of the input) and puts its command in buf: the
 * line up to its first '\r' or NUL (a "\r\n" end, say). Returns 1; 0 at the end of the input;
 * -1, with buf "", for a line of `size` bytes or more (a final '\r' not counted): it was read
 * to its end and is refused whole, so that no piece of it can run as a command. */
int admin_read_line(FILE *in, char *buf, size_t size);

/* admin_cmds.c */
/* Prints the commands, one a line, for `help` and `cfl admin --help`. */
void admin_cmds_list(FILE *out);
/* Runs a command of the console itself (l->cmd->local != ADMIN_TO_SERVER). */
enum admin_next admin_run_local(struct admin_ctx *x, const struct admin_line *l);
/* Runs a line typed at the console or given with --cmd. */
enum admin_next admin_dispatch(struct admin_ctx *x, const char *line);
/* Prints a command's failure ("error: ..." at the console, "cfl: ..." with --cmd) and keeps
 * its status. */
void admin_fail(struct admin_ctx *x, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* admin_show.c: the session's reply callback, which prints the server's replies (tables). */
void admin_show_reply(struct cfl_admin *s, const struct cfl_admin_reply *r, void *arg);

/* admin_console.c: the terminal. begin before the session, end after it (the terminal's modes
 * come back); ready is the session's ready callback at the console. */
void admin_console_begin(struct admin_ctx *x);
void admin_console_ready(struct cfl_admin *s, void *arg);
void admin_console_end(void);

#endif
