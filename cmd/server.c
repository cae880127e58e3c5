/* cfl server <server kit folder> */
#include "cmds.h"

#include "cfl/server.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out, "usage: cfl server <server kit folder>\n\n"
	             "Runs the FL server from its startup kit (what the kit's start.sh runs):\n"
	             "verifies the kit's signatures, listens on fed_learn_port (and admin_port)\n"
	             "on every interface with the kit's connection security, and serves until\n"
	             "SIGTERM or SIGINT. See docs/server-client.md.\n");
}

int cmd_server(int argc, char **argv)
{
	struct cfl_err e = {0};

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return EXIT_OK;
	}
	if (argc != 2 || argv[1][0] == '-') {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cfl_server_run(argv[1], &e) != 0) {
		cmd_error("%s", e.msg);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
