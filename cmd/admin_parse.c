/* The console's grammar: the table of its commands and the reading of a line against it, with
 * no output and no terminal (the terminal is admin_console.c's, the printing admin_cmds.c's and
 * admin_show.c's), so that fuzz/fuzz_admin.c can compile this file alone. The server's commands
 * are the ones src/server/admin_cmds.c accepts; the server checks the role (docs/jobs.md), the
 * table only the shape of the line. */
#include "admin.h"

#include <stdio.h>
#include <string.h>

/* What splits words: the server's cfl__admin_cmd_parse splits at the same bytes, so that both
 * see the same words (a \v inside a "word" here would be two words there). */
#define BLANKS " \t\n\v\f\r"

static const char *const status_words[] = {"server", "client", NULL};
static const char *const shutdown_words[] = {"client", NULL};

static const struct admin_cmd commands[] = {
        {.name = "check_status",
         .args = "server|client [PATTERN [FROM]]",
         .help = "the server's state, or the clients (a page of 1,000 from FROM, sorted by name, "
                 "those whose names match PATTERN, e.g. 'site-1*'; '*': all)",
         .min_args = 1,
         .max_args = 3,
         .words = status_words,
         .show = ADMIN_VIEW_STATUS},
        {.name = "list_jobs",
         .args = "[JOB_ID]",
         .help = "the jobs, or one job with its rounds",
         .max_args = 1,
         .show = ADMIN_VIEW_JOBS},
        {.name = "submit_job",
         .args = "FOLDER",
         .help = "send a job folder (config.json, meta.json) to run",
         .min_args = 1,
         .max_args = 1,
         .show = ADMIN_VIEW_SUBMIT},
        {.name = "abort_job",
         .args = "JOB_ID",
         .help = "stop a submitted or running job",
         .min_args = 1,
         .max_args = 1,
         .show = ADMIN_VIEW_ABORT},
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
         .show = ADMIN_VIEW_REMOVE},
        {.name = "shutdown",
         .args = "client NAME|all",
         .help = "stop a site's process, or every site's",
         .min_args = 2,
         .max_args = 2,
         .words = shutdown_words,
         .show = ADMIN_VIEW_SHUTDOWN},
        {.name = "help",
         .alias = "?",
         .args = "[COMMAND]",
         .help = "this list, or one command's use",
         .max_args = 1,
         .local = ADMIN_HELP},
        {.name = "bye",
         .alias = "quit",
         .args = "",
         .help = "leave the console (so does the end of the input)",
         .local = ADMIN_BYE},
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

void admin_synopsis(const struct admin_cmd *c, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s%s%s", c->name, c->alias != NULL ? "|" : "",
	         c->alias != NULL ? c->alias : "", c->args[0] ? " " : "", c->args);
}

/* Splits buf in place at blanks (strtok is banned: it keeps hidden state). */
static int split(char *buf, char **argv, int max)
{
	int n = 0;
	char *p = buf;

	for (;;) {
		p += strspn(p, BLANKS);
		if (*p == '\0')
			return n;
		if (n == max)
			return -1;
		argv[n++] = p;
		p += strcspn(p, BLANKS);
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
		snprintf(l->err, sizeof(l->err), "the line is too long (%d bytes at most)",
		         ADMIN_LINE_MAX);
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
		admin_synopsis(c, syn, sizeof(syn));
		snprintf(l->err, sizeof(l->err), "usage: %s", syn);
		return -1;
	}
	l->cmd = c;
	return 0;
}

int admin_join(const struct admin_line *l, char *out, size_t size)
{
	size_t off = 0;

	if (size == 0)
		return -1;
	out[0] = '\0';
	for (int i = 0; i < l->argc; i++) {
		int n = snprintf(out + off, size - off, "%s%s", i ? " " : "", l->argv[i]);

		if (n < 0 || (size_t)n >= size - off)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

int admin_read_line(FILE *in, char *buf, size_t size)
{
	size_t n = 0, len = 0; /* the command's bytes kept; the line's bytes read */
	int ch, cut = 0, last = 0;

	while ((ch = getc(in)) != EOF && ch != '\n') {
		len++;
		last = ch;
		if (ch == '\r' || ch == '\0')
			cut = 1;
		else if (!cut && n + 1 < size)
			buf[n++] = (char)ch;
	}
	if (ch == EOF && len == 0)
		return 0;
	if (last == '\r')
		len--; /* "\r\n" ends the line: that '\r' is not part of it */
	if (len >= size)
		n = 0; /* too long: no piece of it may pass for a command */
	if (size > 0)
		buf[n] = '\0';
	return len < size ? 1 : -1;
}
