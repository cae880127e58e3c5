/* cfl provision -p project.yml [-w WORKSPACE] [--key-type TYPE]
 *               [--ca-cert ISSUER.pem --ca-key ISSUER.key [--ca-chain CHAIN.pem]] */
#include "cmds.h"

#include "cfl/project.h"
#include "cfl/provision.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: cfl provision -p PROJECT.yml [-w WORKSPACE] [--key-type TYPE]\n"
	        "                     [--ca-cert ISSUER.pem --ca-key ISSUER.key "
	        "[--ca-chain CHAIN.pem]]\n\n"
	        "Writes one signed startup kit per participant into WORKSPACE/<project>/prod_NN\n"
	        "(the next free NN; earlier outputs are kept). The root CA is kept in\n"
	        "WORKSPACE/<project>/state and reused by later runs.\n\n"
	        "  -p, --project FILE     the project file (FLARE project.yml, api_version 3)\n"
	        "  -w, --workspace DIR    output workspace (default: workspace)\n"
	        "      --key-type TYPE    ecdsa-p256 (default) or rsa-2048; overrides the file\n"
	        "      --ca-cert FILE     an existing (enterprise) issuing CA: leaves are issued\n"
	        "                         by it; kits' rootCA.pem is the top of its chain\n"
	        "      --ca-key FILE      that CA's private key (the root's is never needed)\n"
	        "      --ca-chain FILE    the certificates above it up to the root\n"
	        "  -h, --help             this text\n");
}

int cmd_provision(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"project", required_argument, NULL, 'p'},
	        {"workspace", required_argument, NULL, 'w'},
	        {"key-type", required_argument, NULL, 'k'},
	        {"ca-cert", required_argument, NULL, 'C'},
	        {"ca-key", required_argument, NULL, 'K'},
	        {"ca-chain", required_argument, NULL, 'H'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct cfl_provision_opts o = {.workspace = "workspace", .key_type = -1};
	struct cfl_provision_ca ca = {0};
	char out[PATH_MAX];
	struct cfl_err e = {0};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "p:w:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o.project_path = optarg;
			break;
		case 'w':
			o.workspace = optarg;
			break;
		case 'k': {
			enum cfl_key_type t;

			if (cfl_pki_key_type_parse(optarg, &t) != 0) {
				cmd_error("unknown key type '%s' (allowed: ecdsa-p256, rsa-2048)",
				          optarg);
				return EXIT_USAGE;
			}
			o.key_type = (int)t;
			break;
		}
		case 'C':
			ca.ca_cert = optarg;
			break;
		case 'K':
			ca.ca_key = optarg;
			break;
		case 'H':
			ca.ca_chain = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (o.project_path == NULL || optind != argc) {
		cmd_error(o.project_path == NULL ? "missing -p PROJECT.yml"
		                                 : "unexpected argument '%s'",
		          optind < argc ? argv[optind] : "");
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((ca.ca_cert == NULL) != (ca.ca_key == NULL) ||
	    (ca.ca_chain != NULL && ca.ca_cert == NULL)) {
		cmd_error("--ca-cert and --ca-key go together (--ca-chain needs them)");
		return EXIT_USAGE;
	}
	o.cfl_path = cmd_self_path();
	if (cfl_provision_ca(&o, ca.ca_cert != NULL ? &ca : NULL, out, sizeof(out), &e) != 0) {
		cmd_error("%s", e.msg);
		return EXIT_FAIL;
	}
	printf("%s\n", out);
	return EXIT_OK;
}
