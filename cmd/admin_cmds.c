/* The console's commands: one table, from which the dispatch, the completion, `help` and
 * `cfl admin --help` all come. The server's commands are the ones src/server/admin_cmds.c
 * accepts; the server checks the role (docs/jobs.md), the table only the shape of the line. */
#include "admin.h"

#include "cmds.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static enum admin_next help(struct admin_ctx *x, int argc, char **argv);
static enum admin_next bye(struct admin_ctx *x, int argc, char **argv);

static const char *const status_words[] = {"server", "client", NULL};
static const char *const shutdown_words[] = {"client", NULL};

static const struct admin_cmd commands[] = {
        {.name = "check_status",
         .args = "server|client",
         .help = "the server's state, or the logged-in clients",
         .min_args = 1,
         .max_args = 1,
         .words = status_words,
         .show = admin_show_status},
        {.name = "list_jobs",
         .args = "[JOB_ID]",
         .help = "the jobs, or one job with its rounds",
         .max_args = 1,
         .show = admin_show_jobs},
        {.name = "submit_job",
         .args = "FOLDER",
         .help = "send a job folder (config.json, meta.json) to run",
         .min_args = 1,
         .max_args = 1,
         .show = admin_show_submit},
        {.name = "abort_job",
         .args = "JOB_ID",
         .help = "stop a submitted or running job",
         .min_args = 1,
         .max_args = 1,
         .show = admin_show_abort},
        {.name = "download_job",
         .args = "JOB_ID",
         .help = "fetch a job's results into <kit>/transfer/JOB_ID/",
         .min_args = 1,
         .max_args = 1},
        {.name = "remove_client",
         .args = "NAME",
         .help = "end a site's session (it may log in again)",
         .min_args = 1,
         .max_args = 1,
         .show = admin_show_remove},
        {.name = "shutdown",
         .args = "client NAME|all",
         .help = "stop a site's process, or every site's",
         .min_args = 2,
         .max_args = 2,
         .words = shutdown_words,
         .show = admin_show_shutdown},
        {.name = "help",
         .alias = "?",
         .args = "[COMMAND]",
         .help = "this list, or one command's use",
         .max_args = 1,
         .local = help},
        {.name = "bye",
         .alias = "quit",
         .args = "",
         .help = "leave the console (so does the end of the input)",
         .local = bye},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

const struct admin_cmd *admin_cmd_at(size_t i)
{
	return i < N_COMMANDS ? &commands[i] : NULL;
}

const struct admin_cmd *admin_cmd_find(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct admin_cmd *c = &commands[i];

		if (strcmp(name, c->name) == 0 || (c->alias != NULL && strcmp(name, c->alias) == 0))
			return c;
	}
	return NULL;
}

static void synopsis(const struct admin_cmd *c, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s%s%s", c->name, c->alias != NULL ? "|" : "",
	         c->alias != NULL ? c->alias : "", c->args[0] ? " " : "", c->args);
}

static void describe(const struct admin_cmd *c, FILE *out)
{
	char syn[64];

	synopsis(c, syn, sizeof(syn));
	fprintf(out, "  %-29s %s\n", syn, c->help);
}

void admin_cmds_list(FILE *out)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		describe(&commands[i], out);
}

static enum admin_next help(struct admin_ctx *x, int argc, char **argv)
{
	const struct admin_cmd *c = argc > 1 ? admin_cmd_find(argv[1]) : NULL;

	if (argc > 1 && c == NULL) {
		admin_fail(x, CFL_EINVAL, "unknown command '%s'", argv[1]);
		return ADMIN_AGAIN;
	}
	if (c != NULL)
		describe(c, stdout);
	else
		admin_cmds_list(stdout);
	fflush(stdout);
	return ADMIN_AGAIN;
}

static enum admin_next bye(struct admin_ctx *x, int argc, char **argv)
{
	(void)x;
	(void)argc;
	(void)argv;
	return ADMIN_QUIT;
}

/* Splits buf in place at blanks (strtok is banned: it keeps hidden state). */
static int split(char *buf, char **argv, int max)
{
	int n = 0;
	char *p = buf;

	for (;;) {
		p += strspn(p, " \t\r\n");
		if (*p == '\0')
			return n;
		if (n == max)
			return -1;
		argv[n++] = p;
		p += strcspn(p, " \t\r\n");
		if (*p != '\0')
			*p++ = '\0';
	}
}

static int one_of(const char *w, const char *const *words)
{
	for (; *words != NULL; words++) {
		if (strcmp(w, *words) == 0)
			return 1;
	}
	return 0;
}

int admin_parse(const char *line, int console, struct admin_line *l)
{
	const struct admin_cmd *c;
	char syn[64];
	int nargs;

	l->cmd = NULL;
	l->err[0] = '\0';
	if (snprintf(l->buf, sizeof(l->buf), "%s", line) >= (int)sizeof(l->buf)) {
		snprintf(l->err, sizeof(l->err), "the line is too long (%zu bytes at most)",
		         sizeof(l->buf) - 1);
		return -1;
	}
	l->argc = split(l->buf, l->argv, ADMIN_ARGS_MAX);
	if (l->argc <= 0) {
		if (l->argc < 0)
			snprintf(l->err, sizeof(l->err), "too many words");
		return -1;
	}
	c = admin_cmd_find(l->argv[0]);
	if (c == NULL) {
		snprintf(l->err, sizeof(l->err), "unknown command '%s' (%s lists the commands)",
		         l->argv[0], console ? "help" : "'cfl admin --help'");
		return -1;
	}
	nargs = l->argc - 1;
	if (nargs < c->min_args || nargs > c->max_args ||
	    (c->words != NULL && !one_of(l->argv[1], c->words))) {
		synopsis(c, syn, sizeof(syn));
		snprintf(l->err, sizeof(l->err), "usage: %s", syn);
		return -1;
	}
	l->cmd = c;
	return 0;
}

void admin_fail(struct admin_ctx *x, int status, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs(x->once != NULL ? "cfl: " : "error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	x->status = status;
	x->reported = 1;
}

/* The server gets the line with its words joined by one blank. */
static int join(const struct admin_line *l, char *out, size_t size)
{
	size_t off = 0;

	for (int i = 0; i < l->argc; i++) {
		int n = snprintf(out + off, size - off, "%s%s", i ? " " : "", l->argv[i]);

		if (n < 0 || (size_t)n >= size - off)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

enum admin_next admin_dispatch(struct admin_ctx *x, const char *line)
{
	struct admin_line l;
	struct cfl_err e = {0};
	char cmd[sizeof(l.buf)];

	if (admin_parse(line, x->once == NULL, &l) != 0) {
		if (l.err[0] != '\0')
			admin_fail(x, CFL_EINVAL, "%s", l.err);
		return ADMIN_AGAIN;
	}
	if (l.cmd->local != NULL)
		return l.cmd->local(x, l.argc, l.argv);
	if (join(&l, cmd, sizeof(cmd)) != 0 || cfl_admin_send(x->s, cmd, &e) != 0) {
		admin_fail(x, e.code ? e.code : CFL_ETOOBIG, "%s",
		           e.code ? e.msg : "the line is too long");
		return ADMIN_AGAIN;
	}
	x->sent = l.cmd;
	return ADMIN_SENT;
}
