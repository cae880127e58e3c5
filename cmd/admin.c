/* cfl admin <admin kit folder> [--cmd "..."] [--json] */
#include "admin.h"

#include "cmds.h"

#include "cfl/log.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: cfl admin <admin kit folder> [--cmd COMMAND] [--json]\n"
	        "                 [--server HOST:PORT] [--unsigned-kit]\n\n"
	        "Logs in to the server with the admin kit's certificate (identity and role\n"
	        "come from it) and runs COMMAND, or reads commands from stdin: at a terminal,\n"
	        "a console with line editing, history and completion.\n\n"
	        "commands:\n");
	admin_cmds_list(out);
	fprintf(out,
	        "\n  --cmd COMMAND   run one command and exit (1 if it failed)\n"
	        "  --json          print the server's replies as JSON, as they come\n"
	        "  --server HOST:PORT  log in there, not at the kit's server; \":PORT\"\n"
	        "                  keeps the kit's host (its name is what the certificate\n"
	        "                  must match)\n"
	        "  --unsigned-kit  run a kit without startup/signature.json unchecked (the\n"
	        "                  simulator's kits, tests); a signed kit is always checked\n");
}

/* --cmd: the session's ready callback sends the command, then ends the session. */
static void once_ready(struct cfl_admin *s, void *arg)
{
	struct admin_ctx *x = arg;

	x->s = s;
	if (!x->started) {
		x->started = 1;
		if (admin_dispatch(x, x->once) == ADMIN_SENT)
			return;
	}
	cfl_admin_quit(s, x->status, NULL);
}

/* --cmd: a line that is not a command is a usage error, found before logging in; the console's
 * own commands (help) need no login. Returns -1 to go on, else the exit code. */
static int check_once(struct admin_ctx *x)
{
	struct admin_line l;

	if (admin_parse(x->once, 0, &l) != 0) {
		cmd_error("%s", l.err[0] ? l.err : "empty command");
		return EXIT_USAGE;
	}
	if (l.cmd->local != ADMIN_TO_SERVER) {
		admin_run_local(x, &l);
		return x->status == 0 ? EXIT_OK : EXIT_FAIL;
	}
	return -1;
}

int cmd_admin(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"cmd", required_argument, NULL, 'c'},    {"json", no_argument, NULL, 'j'},
	        {"server", required_argument, NULL, 's'}, {"unsigned-kit", no_argument, NULL, 'U'},
	        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	struct admin_ctx x = {0};
	struct cfl_admin_ops ops = {
	        .ready = admin_console_ready, .reply = admin_show_reply, .arg = &x};
	struct cfl_err e = {0};
	int ch, rc;
	char host[256];

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			x.once = optarg;
			break;
		case 'j':
			x.json = 1;
			break;
		case 's':
			if (cmd_parse_server(optarg, host, sizeof(host), &ops.server_port) != 0)
				return EXIT_USAGE;
			ops.server_host = host;
			break;
		case 'U':
			ops.unsigned_kit = 1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (x.once != NULL && (rc = check_once(&x)) >= 0)
		return rc;
	/* Scripts read stdout: keep the log to warnings unless asked otherwise. */
	if (cfl_log_get_level() == CFL_LOG_INFO)
		cfl_log_set_level(CFL_LOG_WARN);
	tzset(); /* the tables show local times */
	if (x.once != NULL)
		ops.ready = once_ready;
	else
		admin_console_begin(&x);
	rc = cfl_admin_run(argv[optind], &ops, &e);
	if (x.once == NULL)
		admin_console_end();
	if (rc != 0) {
		if (!x.reported)
			cmd_error("%s", e.msg);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
