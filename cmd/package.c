/* cfl package APPROVAL --key NAME.key -d KITDIR [--expected-rootca-fingerprint FP] */
#include "cmds.h"

#include "cfl/provision.h"

#include <getopt.h>
#include <stdio.h>

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: cfl package APPROVAL --key DIR/NAME.key -d KITDIR\n"
	        "                   [--expected-rootca-fingerprint SHA256:...]\n\n"
	        "Builds a startup kit (the layout of cfl provision, passing cfl kit verify) from "
	        "an\n"
	        "approval written by cfl cert approve and the key cfl cert request made here.\n"
	        "Refuses a changed approval, a key that does not match the certificate, and a "
	        "root\n"
	        "CA whose SHA-256 fingerprint is not the expected one (hex, with or without "
	        "colons,\n"
	        "or base64).\n");
}

int cmd_package(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"key", required_argument, NULL, 'k'},
	        {"dir", required_argument, NULL, 'd'},
	        {"expected-rootca-fingerprint", required_argument, NULL, 'f'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *key = NULL, *dir = NULL, *want = NULL;
	char fp[CFL_PKI_FINGERPRINT_MAX];
	struct cfl_err e = {0};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "k:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
			key = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'f':
			want = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (key == NULL || dir == NULL || optind != argc - 1) {
		cmd_error("package needs one APPROVAL, --key KEY and -d KITDIR");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cfl_cert_package(argv[optind], key, dir, want, fp, &e) != 0) {
		cmd_error("%s", e.msg);
		return EXIT_FAIL;
	}
	printf("%s\nroot CA fingerprint: %s\n", dir, fp);
	return EXIT_OK;
}
