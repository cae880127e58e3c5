/* Running a console line: the console's own commands (help, bye), the server's through the
 * session, and the report of a failure. The table and the parsing are admin_parse.c's. */
#include "admin.h"

#include "cmds.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void describe(const struct admin_cmd *c, FILE *out)
{
	char syn[64];

	admin_synopsis(c, syn, sizeof(syn));
	fprintf(out, "  %-29s %s\n", syn, c->help);
}

void admin_cmds_list(FILE *out)
{
	const struct admin_cmd *c;

	for (size_t i = 0; (c = admin_cmd_at(i)) != NULL; i++)
		describe(c, out);
}

/* help [COMMAND] */
static enum admin_next help(struct admin_ctx *x, const char *name)
{
	const struct admin_cmd *c = name != NULL ? admin_cmd_find(name) : NULL;

	if (name != NULL && c == NULL) {
		admin_fail(x, CFL_EINVAL, "unknown command '%s'", name);
		return ADMIN_AGAIN;
	}
	if (c != NULL)
		describe(c, stdout);
	else
		admin_cmds_list(stdout);
	fflush(stdout);
	return ADMIN_AGAIN;
}

enum admin_next admin_run_local(struct admin_ctx *x, const struct admin_line *l)
{
	switch (l->cmd->local) {
	case ADMIN_HELP:
		return help(x, l->argc > 1 ? l->argv[1] : NULL);
	case ADMIN_BYE:
		return ADMIN_QUIT;
	case ADMIN_TO_SERVER:
	default:
		return ADMIN_AGAIN; /* not the console's: admin_dispatch sends those */
	}
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
	if (l.cmd->local != ADMIN_TO_SERVER)
		return admin_run_local(x, &l);
	if (admin_join(&l, cmd, sizeof(cmd)) != 0 || cfl_admin_send(x->s, cmd, &e) != 0) {
		admin_fail(x, e.code ? e.code : CFL_ETOOBIG, "%s",
		           e.code ? e.msg : "the line is too long");
		return ADMIN_AGAIN;
	}
	x->sent = l.cmd;
	return ADMIN_SENT;
}
