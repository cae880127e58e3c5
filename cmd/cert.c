/* cfl cert request | approve | revoke (docs/credentials.md). */
#include "cmds.h"

#include "cfl/provision.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: cfl cert request -n NAME -t client|admin|server [--org ORG] [--role ROLE]\n"
	        "                        [--host-names H1,H2] [--key EXISTING.key]\n"
	        "                        [--key-type TYPE] -d DIR\n"
	        "       cfl cert approve -p PROJECT.yml -w WORKSPACE REQUEST [--days N] -o "
	        "APPROVAL\n"
	        "       cfl cert revoke -p PROJECT.yml -w WORKSPACE NAME [--reason REASON]\n\n"
	        "request: writes DIR/NAME.key (0600, new unless --key) and DIR/NAME.request.json\n"
	        "  (a PKCS#10 CSR and what it asks for; nothing private).\n"
	        "approve: checks the request against the project file's participant, issues its\n"
	        "  certificate with the workspace's CA and writes APPROVAL (certificate, CA "
	        "chain,\n"
	        "  kit configuration, signed by the CA); prints the root CA's SHA-256 "
	        "fingerprint.\n"
	        "  --days N: validity (default: the project's cert_validity_days, 360).\n"
	        "revoke: revokes every current certificate of NAME into\n"
	        "  WORKSPACE/<project>/state/crl.pem (copy it to the kits' local/crl.pem).\n"
	        "  REASON: keyCompromise, affiliationChanged, superseded, cessationOfOperation,\n"
	        "  privilegeWithdrawn, ... (RFC 5280).\n");
}

#define MAX_HOSTS 64

static int split_hosts(char *list, const char **hosts, size_t *n)
{
	for (char *tok = strtok(list, ","); tok != NULL; tok = strtok(NULL, ",")) {
		if (*n >= MAX_HOSTS) {
			cmd_error("more than %d host names", MAX_HOSTS);
			return -1;
		}
		hosts[(*n)++] = tok;
	}
	return 0;
}

static int request(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"name", required_argument, NULL, 'n'},
	        {"type", required_argument, NULL, 't'},
	        {"org", required_argument, NULL, 'O'},
	        {"role", required_argument, NULL, 'r'},
	        {"host-names", required_argument, NULL, 'H'},
	        {"key", required_argument, NULL, 'k'},
	        {"key-type", required_argument, NULL, 'K'},
	        {"dir", required_argument, NULL, 'd'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *hosts[MAX_HOSTS];
	struct cfl_cert_request_opts o = {.hosts = hosts, .key_type = CFL_KEY_P256};
	char out[PATH_MAX];
	struct cfl_err e = {0};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "n:t:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			o.name = optarg;
			break;
		case 't':
			o.type = optarg;
			break;
		case 'O':
			o.org = optarg;
			break;
		case 'r':
			o.role = optarg;
			break;
		case 'k':
			o.key_path = optarg;
			break;
		case 'd':
			o.dir = optarg;
			break;
		case 'H':
			if (split_hosts(optarg, hosts, &o.n_hosts) != 0)
				return EXIT_USAGE;
			break;
		case 'K':
			if (cfl_pki_key_type_parse(optarg, &o.key_type) != 0) {
				cmd_error("unknown key type '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (o.name == NULL || o.type == NULL || o.dir == NULL || optind != argc) {
		cmd_error("cert request needs -n NAME, -t TYPE and -d DIR");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cfl_cert_request(&o, out, sizeof(out), &e) != 0) {
		cmd_error("%s", e.msg);
		return EXIT_FAIL;
	}
	printf("%s\n", out);
	return EXIT_OK;
}

static int parse_days(const char *s, int *days)
{
	long v;

	if (cmd_parse_long("--days", s, 1, 36500, &v) != 0)
		return -1;
	*days = (int)v;
	return 0;
}

static int approve(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"project", required_argument, NULL, 'p'},
	        {"workspace", required_argument, NULL, 'w'},
	        {"days", required_argument, NULL, 'D'},
	        {"output", required_argument, NULL, 'o'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *project = NULL, *ws = "workspace", *out = NULL;
	char fp[CFL_PKI_FINGERPRINT_MAX];
	struct cfl_err e = {0};
	int c, days = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "p:w:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			project = optarg;
			break;
		case 'w':
			ws = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'D':
			if (parse_days(optarg, &days) != 0)
				return EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (project == NULL || out == NULL || optind != argc - 1) {
		cmd_error("cert approve needs -p PROJECT.yml, -o APPROVAL and one REQUEST");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cfl_cert_approve(project, ws, argv[optind], days, out, cmd_self_path(), fp, &e) != 0) {
		cmd_error("%s", e.msg);
		return EXIT_FAIL;
	}
	printf("%s\nroot CA fingerprint: %s\n", out, fp);
	return EXIT_OK;
}

static int revoke(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"project", required_argument, NULL, 'p'},
	        {"workspace", required_argument, NULL, 'w'},
	        {"reason", required_argument, NULL, 'r'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *project = NULL, *ws = "workspace", *reason = NULL;
	char crl[PATH_MAX];
	struct cfl_err e = {0};
	int c, n = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "p:w:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			project = optarg;
			break;
		case 'w':
			ws = optarg;
			break;
		case 'r':
			reason = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (project == NULL || optind != argc - 1) {
		cmd_error("cert revoke needs -p PROJECT.yml and one NAME");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cfl_cert_revoke(project, ws, argv[optind], reason, &n, crl, sizeof(crl), &e) != 0) {
		cmd_error("%s", e.msg);
		return EXIT_FAIL;
	}
	printf("%s\nrevoked %d certificate%s of '%s'\n", crl, n, n == 1 ? "" : "s", argv[optind]);
	return EXIT_OK;
}

int cmd_cert(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	if (strcmp(argv[1], "request") == 0)
		return request(argc - 1, argv + 1);
	if (strcmp(argv[1], "approve") == 0)
		return approve(argc - 1, argv + 1);
	if (strcmp(argv[1], "revoke") == 0)
		return revoke(argc - 1, argv + 1);
	cmd_error("unknown cert command '%s' (request, approve, revoke)", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
