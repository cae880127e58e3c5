/* hostile: attacks a running `cfl server` the way a malicious or broken client would, and
 * checks that every attack is refused (tests/integration/test_hostile.sh drives it).
 *
 *   hostile [options] PROD_DIR [CASE...]
 *
 * PROD_DIR is the provisioned prod_NN folder; the first site's kit says where the server is
 * (--port overrides its port) and in which connection security. Prints one line per case,
 * "PASS name: rejected (how)" or "FAIL name: what happened", and exits 0 only when every case
 * passed (1 otherwise, 2 usage). */
#include "hostile.h"

#include "cfl/log.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define HOW_MAX 2048

struct opts {
	const char *sites[H_SITES];
	const char *admin, *ca_key, *expect_file;
	int port; /* 0: the kit's */
};

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: hostile [options] PROD_DIR [CASE...]\n\n"
	        "Runs every case (or the ones named) against the running server of the project\n"
	        "provisioned in PROD_DIR.\n\n"
	        "  --sites A,B,C        three client kits to attack with (default "
	        "site-1,site-2,site-3)\n"
	        "  --admin NAME         an admin kit with role project_admin (default "
	        "admin@cfl.test)\n"
	        "  --ca-key FILE        the project CA key (default PROD_DIR/../state/rootCA.key)\n"
	        "  --port N             the server's port, instead of the one in the kits\n"
	        "  --server-pid PID     the server's pid: the flood checks its memory\n"
	        "  --login-timeout S    the server's CFL_LOGIN_TIMEOUT_S (default 2)\n"
	        "  --token-wait S       longest wait for a token to expire (default 10)\n"
	        "  --flood N            challenges in the flood (default 20000)\n"
	        "  --rss-limit KIB      allowed growth of the server's memory (default 4096)\n"
	        "  --expect-log FILE    write the log lines the server must have written\n"
	        "  --list               list the cases\n"
	        "  --verbose            the library's own log lines too\n");
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && end != s && *end == '\0' && *out >= lo && *out <= hi ? 0 : -1;
}

/* Splits "a,b,c" into the three site names (in place). */
static int parse_sites(char *s, const char *sites[H_SITES])
{
	for (int i = 0; i < H_SITES; i++) {
		char *comma = strchr(s, ',');

		if ((comma == NULL) != (i == H_SITES - 1) || s[0] == '\0')
			return -1;
		if (comma != NULL)
			*comma = '\0';
		sites[i] = s;
		s = comma != NULL ? comma + 1 : s;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o, struct h_env *e)
{
	static const struct option longopts[] = {
	        {"sites", required_argument, NULL, 's'},
	        {"admin", required_argument, NULL, 'a'},
	        {"ca-key", required_argument, NULL, 'k'},
	        {"port", required_argument, NULL, 'P'},
	        {"server-pid", required_argument, NULL, 'p'},
	        {"login-timeout", required_argument, NULL, 'l'},
	        {"token-wait", required_argument, NULL, 'w'},
	        {"flood", required_argument, NULL, 'f'},
	        {"rss-limit", required_argument, NULL, 'r'},
	        {"expect-log", required_argument, NULL, 'e'},
	        {"list", no_argument, NULL, 'L'},
	        {"verbose", no_argument, NULL, 'v'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	double v;
	int ch;

	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int bad = 0;

		switch (ch) {
		case 's':
			bad = parse_sites(optarg, o->sites);
			break;
		case 'a':
			o->admin = optarg;
			break;
		case 'k':
			o->ca_key = optarg;
			break;
		case 'e':
			o->expect_file = optarg;
			break;
		case 'P':
			bad = parse_num(optarg, 1, 65535, &v);
			o->port = (int)v;
			break;
		case 'p':
			bad = parse_num(optarg, 1, 1 << 30, &v);
			e->server_pid = (long)v;
			break;
		case 'l':
			bad = parse_num(optarg, 0.1, 600, &e->login_timeout_s);
			break;
		case 'w':
			bad = parse_num(optarg, 0, 600, &e->max_token_wait_s);
			break;
		case 'f':
			bad = parse_num(optarg, 1, 1e7, &v);
			e->flood_n = (unsigned long)v;
			break;
		case 'r':
			bad = parse_num(optarg, 1, 1e8, &v);
			e->rss_limit_kib = (unsigned long)v;
			break;
		case 'L':
			for (size_t i = 0; i < h_n_cases; i++)
				printf("%-28s %s\n", h_cases[i].name, h_cases[i].what);
			exit(0);
		case 'v':
			cfl_log_set_level(CFL_LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			bad = 1;
		}
		if (bad) {
			fprintf(stderr, "hostile: bad value '%s' for option\n",
			        optarg ? optarg : "");
			return -1;
		}
	}
	return optind < argc ? 0 : -1;
}

static const struct h_case *find_case(const char *name)
{
	for (size_t i = 0; i < h_n_cases; i++) {
		if (strcmp(h_cases[i].name, name) == 0)
			return &h_cases[i];
	}
	return NULL;
}

static int run_case(struct h_env *e, const struct h_case *c)
{
	char how[HOW_MAX] = "";
	int ok = c->run(e, how, sizeof(how));

	if (ok)
		printf("PASS %s: rejected (%s)\n", c->name, how);
	else
		printf("FAIL %s: %s\n", c->name, how);
	fflush(stdout);
	/* Whatever the case left behind (closing connections) settles before the next one. */
	h_pump(e, 50, NULL, NULL);
	return ok;
}

int main(int argc, char **argv)
{
	struct opts o = {{"site-1", "site-2", "site-3"}, "admin@cfl.test", NULL, NULL, 0};
	struct h_env e;
	char err[1024] = "";
	int failed = 0, rc = 2;

	memset(&e, 0, sizeof(e));
	e.login_timeout_s = 2;
	e.max_token_wait_s = 10;
	e.flood_n = 20000;
	e.rss_limit_kib = 4096;
	cfl_log_set_level(CFL_LOG_ERROR);
	if (parse_args(argc, argv, &o, &e) != 0) {
		usage(stderr);
		return 2;
	}
	for (int i = optind + 1; i < argc; i++) {
		if (find_case(argv[i]) == NULL) {
			fprintf(stderr, "hostile: no case '%s' (see --list)\n", argv[i]);
			return 2;
		}
	}
	if (o.expect_file != NULL && (e.expect = fopen(o.expect_file, "w")) == NULL) {
		fprintf(stderr, "hostile: cannot write '%s': %s\n", o.expect_file, strerror(errno));
		return 2;
	}
	if (h_env_init(&e, argv[optind], o.sites, o.admin, o.ca_key, err, sizeof(err)) != 0) {
		fprintf(stderr, "hostile: %s\n", err);
		goto out;
	}
	if (o.port > 0)
		e.cfg.port = o.port;
	if (optind + 1 == argc) {
		for (size_t i = 0; i < h_n_cases; i++)
			failed += !run_case(&e, &h_cases[i]);
	} else {
		for (int i = optind + 1; i < argc; i++)
			failed += !run_case(&e, find_case(argv[i]));
	}
	printf("%d case(s) failed\n", failed);
	rc = failed == 0 ? 0 : 1;
out:
	h_env_release(&e);
	if (e.expect != NULL)
		fclose(e.expect);
	return rc;
}
