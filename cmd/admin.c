/* cfl admin <admin kit folder> [--cmd "..."] [--json] */
#include "cmds.h"

#include "cfl/client.h"
#include "cfl/log.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out, "usage: cfl admin <admin kit folder> [--cmd COMMAND] [--json]\n"
	             "                 [--server HOST:PORT]\n\n"
	             "Logs in to the server with the admin kit's certificate (identity and role\n"
	             "come from it) and runs COMMAND, or reads commands from stdin.\n\n"
	             "commands:\n"
	             "  check_status server|client   the server, or the logged-in clients\n"
	             "  remove_client NAME           end a client's session (project_admin)\n\n"
	             "  --json    print results as JSON\n"
	             "  --server HOST:PORT  log in there, not at the kit's server; \":PORT\"\n"
	             "            keeps the kit's host (its name is what the certificate\n"
	             "            must match)\n");
}

int cmd_admin(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"cmd", required_argument, NULL, 'c'},
	        {"json", no_argument, NULL, 'j'},
	        {"server", required_argument, NULL, 's'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct cfl_client_action act = {.kind = CFL_ACT_ADMIN};
	struct cfl_err e = {0};
	char host[256];
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			act.text = optarg;
			break;
		case 'j':
			act.json = 1;
			break;
		case 's':
			if (cmd_parse_server(optarg, host, sizeof(host), &act.server_port) != 0)
				return EXIT_USAGE;
			act.server_host = host;
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
	/* Scripts read stdout: keep the log to warnings unless asked otherwise. */
	if (cfl_log_get_level() == CFL_LOG_INFO)
		cfl_log_set_level(CFL_LOG_WARN);
	if (cfl_client_run(argv[optind], &act, &e) != 0) {
		cmd_error("%s", e.msg);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
