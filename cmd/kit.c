/* cfl kit verify <participant folder> */
#include "cmds.h"

#include "cfl/kit.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out, "usage: cfl kit verify <participant folder>\n\n"
	             "Checks the kit's startup/signature.json against its rootCA.pem. Exit 0 when\n"
	             "intact; exit 1 naming every changed, missing or added file.\n");
}

static void report(enum cfl_kit_problem what, const char *file, void *arg)
{
	(void)arg;
	printf("%s: %s\n", cfl_kit_problem_name(what), file);
}

int cmd_kit(int argc, char **argv)
{
	struct cfl_err e = {0};

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return EXIT_OK;
	}
	if (argc == 3 && strcmp(argv[1], "verify") == 0 &&
	    (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
		usage(stdout);
		return EXIT_OK;
	}
	if (argc != 3 || strcmp(argv[1], "verify") != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cfl_kit_verify(argv[2], report, NULL, &e) != 0) {
		cmd_error("%s", e.msg);
		return EXIT_FAIL;
	}
	printf("kit '%s' is intact\n", argv[2]);
	return EXIT_OK;
}
