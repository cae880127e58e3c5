/* cfl: federated learning with FLARE-style communication security. */
#include "cmds.h"

#include "cfl/log.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
        {"provision", cmd_provision, "turn a project.yml into signed startup kits"},
        {"cert", cmd_cert, "request, approve or revoke a participant's certificate"},
        {"package", cmd_package, "build a startup kit from an approval and a local key"},
        {"kit", cmd_kit, "check a startup kit's signatures (kit verify)"},
        {"server", cmd_server, "run the FL server from its startup kit"},
        {"client", cmd_client, "run an FL client from its startup kit"},
        {"admin", cmd_admin, "the admin console, from an admin startup kit"},
        {"simulate", cmd_simulate, "run a job with a server and N clients on this machine"},
        {"train", cmd_train, "train a built-in job's model centrally (the baseline)"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: cfl [--log-level LEVEL] <command> [<args>]\n\n"
	             "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'cfl <command> --help' describes a command.\n"
	             "LEVEL is error, warn, info (default) or debug.\n");
}

void cmd_error(const char *fmt, ...)
{
	va_list ap;

	fputs("cfl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

const char *cmd_self_path(void)
{
	static char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

	if (n <= 0)
		return NULL;
	path[n] = '\0';
	return path;
}

int cmd_parse_long(const char *what, const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		cmd_error("bad %s '%s' (%ld..%ld)", what, s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int cmd_parse_port(const char *s, int min, int *port)
{
	long v;

	if (cmd_parse_long("port", s, min, 65535, &v) != 0)
		return -1;
	*port = (int)v;
	return 0;
}

int cmd_parse_server(const char *s, char *host, size_t size, int *port)
{
	const char *colon = strrchr(s, ':'), *h = s;
	size_t n;

	if (colon == NULL) {
		cmd_error("bad server '%s' (HOST:PORT or :PORT)", s);
		return -1;
	}
	n = (size_t)(colon - s);
	/* An IPv6 address is written in brackets (RFC 3986): the brackets are not the host. */
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n >= size || memchr(h, '[', n) != NULL || memchr(h, ']', n) != NULL) {
		cmd_error("bad server host in '%s'", s);
		return -1;
	}
	memcpy(host, h, n);
	host[n] = '\0';
	return cmd_parse_port(colon + 1, 1, port);
}

int main(int argc, char **argv)
{
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return EXIT_OK;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("cfl 0.1.0\n");
			return EXIT_OK;
		}
		if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
			enum cfl_log_level lvl;

			if (cfl_log_level_parse(argv[i + 1], &lvl) != 0) {
				cmd_error("unknown log level '%s'", argv[i + 1]);
				return EXIT_USAGE;
			}
			cfl_log_set_level(lvl);
			i += 2;
			continue;
		}
		cmd_error("unknown option '%s'", argv[i]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		if (strcmp(argv[i], commands[c].name) == 0)
			return commands[c].run(argc - i, argv + i);
	}
	cmd_error("unknown command '%s'", argv[i]);
	usage(stderr);
	return EXIT_USAGE;
}
