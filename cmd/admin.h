/* `cfl admin`, the program's side of the admin console: the table of console commands
 * (admin_cmds.c), what a person reads of the replies (admin_show.c) and the terminal
 * (admin_console.c), over the library's admin session (cfl/admin.h). */
#ifndef CFL_CMD_ADMIN_H
#define CFL_CMD_ADMIN_H

#include "cfl/admin.h"

#include <jansson.h>
#include <stdio.h>

#define ADMIN_ARGS_MAX 8

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

/* One console command. The table in admin_cmds.c is the only list of them: dispatch,
 * completion, `cfl admin --help` and `help` all come from it. */
struct admin_cmd {
	const char *name;
	const char *alias;        /* a second name, or NULL */
	const char *args;         /* the arguments' synopsis ("" for none) */
	const char *help;         /* one line */
	int min_args, max_args;   /* how many arguments it takes */
	const char *const *words; /* the values its first argument may take (and completes to) */
	/* Runs a command of the console itself (help, bye); NULL for the server's commands,
	 * which go to the server as typed. */
	enum admin_next (*local)(struct admin_ctx *x, int argc, char **argv);
	/* The server's reply, for a person; NULL prints it as key/value lines. */
	void (*show)(json_t *res);
};

/* A command line split into words, and its command. */
struct admin_line {
	char buf[1024];
	char *argv[ADMIN_ARGS_MAX];
	int argc;
	const struct admin_cmd *cmd;
	char err[256];
};

/* admin_cmds.c */
const struct admin_cmd *admin_cmd_at(size_t i); /* the i-th command, NULL past the last */
const struct admin_cmd *admin_cmd_find(const char *name);
/* Prints the commands, one a line, for `help` and `cfl admin --help`. */
void admin_cmds_list(FILE *out);
/* Splits `line` and checks it against the table: 0 with l->cmd set, else -1 with the reason
 * in l->err ("" for a blank line). `console` picks the hint given for an unknown command. */
int admin_parse(const char *line, int console, struct admin_line *l);
/* Runs a line typed at the console or given with --cmd. */
enum admin_next admin_dispatch(struct admin_ctx *x, const char *line);
/* Prints a command's failure ("error: ..." at the console, "cfl: ..." with --cmd) and keeps
 * its status. */
void admin_fail(struct admin_ctx *x, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* admin_show.c: the session's reply callback, and the tables of the server's replies. */
void admin_show_reply(struct cfl_admin *s, const struct cfl_admin_reply *r, void *arg);
void admin_show_status(json_t *res);
void admin_show_jobs(json_t *res);
void admin_show_submit(json_t *res);
void admin_show_abort(json_t *res);
void admin_show_remove(json_t *res);
void admin_show_shutdown(json_t *res);

/* admin_console.c: the terminal. begin before the session, end after it (the terminal's modes
 * come back); ready is the session's ready callback at the console. */
void admin_console_begin(struct admin_ctx *x);
void admin_console_ready(struct cfl_admin *s, void *arg);
void admin_console_end(void);

#endif
