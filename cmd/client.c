/* cfl client <client kit folder> [action] */
#include "cmds.h"

#include "cfl/client.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: cfl client <client kit folder> [action] [--stats] [--server HOST:PORT]\n"
	        "                  [--unsigned-kit]\n\n"
	        "Runs an FL client from its startup kit (what the kit's start.sh runs): verifies\n"
	        "the kit, connects to the server with the kit's connection security and keeps\n"
	        "reconnecting until SIGTERM or SIGINT (it exits 1 when the server refuses its\n"
	        "certificate as revoked). SIGHUP reads the certificate, key, local/crl.pem and\n"
	        "the site policy again. With an action it does that, reports and exits (0\n"
	        "success, 1 failure):\n\n"
	        "  --ping N         N request/reply round trips\n"
	        "  --ping-for S     a request every 200 ms for S seconds, across reconnects;\n"
	        "                   every one must be answered or reported failed\n"
	        "  --oneway N       N one-way messages\n"
	        "  --send BYTES     stream BYTES to the server and check its checksum\n"
	        "  --recv BYTES     receive BYTES from the server and check them\n"
	        "  --message TEXT   one echo request\n"
	        "  --to CELL        send the --message to another site, routed by the server\n"
	        "  --stats          print peak_rss_kib at exit\n"
	        "  --connect-timeout S  connect + handshake limit (default 5)\n"
	        "  --server HOST:PORT   dial there, not the kit's server; \":PORT\" keeps the\n"
	        "                   kit's host (the name the server certificate must match)\n"
	        "  --unsigned-kit   run a kit without startup/signature.json unchecked (the\n"
	        "                   simulator's kits, tests); a signed kit is always checked\n");
}

static void print_line(const char *line, void *arg)
{
	(void)arg;
	printf("%s\n", line);
	fflush(stdout);
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return (errno != 0 || end == s || *end != '\0' || s[0] == '-') ? -1 : 0;
}

int cmd_client(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"ping", required_argument, NULL, 'p'},
	        {"ping-for", required_argument, NULL, 'P'},
	        {"oneway", required_argument, NULL, 'o'},
	        {"send", required_argument, NULL, 's'},
	        {"recv", required_argument, NULL, 'r'},
	        {"message", required_argument, NULL, 'm'},
	        {"to", required_argument, NULL, 'T'},
	        {"stats", no_argument, NULL, 'S'},
	        {"connect-timeout", required_argument, NULL, 't'},
	        {"server", required_argument, NULL, 'A'},
	        {"unsigned-kit", no_argument, NULL, 'U'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct cfl_client_action act = {.report = print_line};
	struct cfl_err e = {0};
	char host[256];
	uint64_t v;
	int ch, stats = 0, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p':
		case 'P':
		case 'o':
		case 's':
		case 'r':
		case 't':
			if (parse_u64(optarg, &v) != 0 || (ch != 's' && ch != 'r' && v == 0)) {
				cmd_error("bad number '%s'", optarg);
				return EXIT_USAGE;
			}
			if (ch == 't') {
				act.connect_timeout_s = v > 3600 ? 3600 : (int)v;
				break;
			}
			act.kind = CFL_ACT_DIAG;
			act.diag.kind = ch == 'p'   ? CFL_DIAG_PING
			                : ch == 'P' ? CFL_DIAG_PINGLOOP
			                : ch == 'o' ? CFL_DIAG_ONEWAY
			                : ch == 's' ? CFL_DIAG_SEND
			                            : CFL_DIAG_RECV;
			act.diag.n = v;
			break;
		case 'm':
			act.kind = CFL_ACT_DIAG;
			act.diag.kind = CFL_DIAG_MESSAGE;
			act.diag.text = optarg;
			break;
		case 'S':
			stats = 1;
			break;
		case 'U':
			act.unsigned_kit = 1;
			break;
		case 'T':
			act.diag.to = optarg;
			break;
		case 'A':
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
	rc = cfl_client_run(argv[optind], &act, &e);
	if (stats) {
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		printf("peak_rss_kib=%ld\n", ru.ru_maxrss);
	}
	if (rc != 0) {
		cmd_error("%s", e.msg);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
