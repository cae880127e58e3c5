/* cfl server <server kit folder> [--port N] [--admin-port N] [--port-file FILE]
 *            [--unsigned-kit] [--diag] */
#include "cmds.h"

#include "cfl/server.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out, "usage: cfl server <server kit folder> [--port N] [--admin-port N]\n"
	             "                  [--port-file FILE] [--unsigned-kit] [--diag]\n\n"
	             "Runs the FL server from its startup kit (what the kit's start.sh runs):\n"
	             "verifies the kit's signatures, listens on fed_learn_port (and admin_port)\n"
	             "on every interface with the kit's connection security, and serves until\n"
	             "SIGTERM or SIGINT. SIGHUP reads the certificate, key, local/crl.pem and\n"
	             "the policy again; local/crl.pem is also watched for changes. See\n"
	             "docs/server-client.md.\n\n"
	             "  --port N          listen on N instead of the kit's fed_learn_port; 0: a\n"
	             "                    port the kernel picks (a kit whose admin_port equals\n"
	             "                    fed_learn_port keeps one listener for both)\n"
	             "  --admin-port N    listen on N instead of the kit's admin_port; 0: a port\n"
	             "                    the kernel picks\n"
	             "  --port-file FILE  once listening, write \"FED ADMIN\" (the two ports) to\n"
	             "                    FILE (a temporary file renamed: all or nothing)\n"
	             "  --unsigned-kit    run a kit without startup/signature.json unchecked\n"
	             "                    (the simulator's kits, tests); a signed kit is always\n"
	             "                    checked\n"
	             "  --diag            serve the test topics echo, sink and source and route\n"
	             "                    echo between sites (tests, benchmarks, operators\n"
	             "                    checking a path; ping is always served)\n");
}

int cmd_server(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"port", required_argument, NULL, 'p'},
	        {"admin-port", required_argument, NULL, 'a'},
	        {"port-file", required_argument, NULL, 'f'},
	        {"unsigned-kit", no_argument, NULL, 'U'},
	        {"diag", no_argument, NULL, 'D'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct cfl_server_opts o = {.port = -1, .admin_port = -1, .port_file = NULL};
	struct cfl_err e = {0};
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p':
		case 'a':
			if (cmd_parse_port(optarg, 0, ch == 'p' ? &o.port : &o.admin_port) != 0)
				return EXIT_USAGE;
			break;
		case 'f':
			o.port_file = optarg;
			break;
		case 'U':
			o.unsigned_kit = 1;
			break;
		case 'D':
			o.diag = 1;
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
	if (cfl_server_run(argv[optind], &o, &e) != 0) {
		cmd_error("%s", e.msg);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
