/* The server's admission settings from local/resources.json (see admission.h). */
#include "admission.h"

#include "cfl/log.h"
#include "util/fs.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define LIMIT_MAX           (1L << 24) /* no count of connections or challenges goes above this */
#define LOGIN_TIMEOUT_MAX_S 3600

struct key {
	const char *name;
	size_t off; /* of the long in struct cfl_admit_limits */
};

static const struct key keys[] = {
        {"max_connections", offsetof(struct cfl_admit_limits, max_connections)},
        {"max_prelogin_connections", offsetof(struct cfl_admit_limits, max_prelogin)},
        {"max_prelogin_per_address", offsetof(struct cfl_admit_limits, max_prelogin_addr)},
        {"challenges_per_address_per_s", offsetof(struct cfl_admit_limits, challenges_addr_s)},
        {"admin_reserve", offsetof(struct cfl_admit_limits, admin_reserve)},
        {"descriptor_reserve", offsetof(struct cfl_admit_limits, fd_reserve)},
};

/* A count: an integer 0..LIMIT_MAX (0: the default; max_connections 0: from the limit). */
static int read_count(json_t *root, const struct key *k, const char *path,
                      struct cfl_admit_limits *l, struct cfl_err *e)
{
	json_t *v = json_object_get(root, k->name);
	json_int_t n;

	if (v == NULL)
		return 0;
	n = json_integer_value(v);
	if (!json_is_integer(v) || n < 0 || n > LIMIT_MAX)
		return cfl_err_set(e, CFL_ECONFIG,
		                   "'%s': '%s' must be an integer 0..%ld (0: the default)", path,
		                   k->name, LIMIT_MAX);
	*(long *)(void *)((char *)l + k->off) = (long)n;
	return 0;
}

static int read_login_timeout(json_t *root, const char *path, uint64_t *out, struct cfl_err *e)
{
	json_t *v = json_object_get(root, "login_timeout_s");
	double s;

	if (v == NULL)
		return 0;
	s = json_number_value(v);
	if (!json_is_number(v) || !(s >= 0.1 && s <= LOGIN_TIMEOUT_MAX_S))
		return cfl_err_set(e, CFL_ECONFIG,
		                   "'%s': 'login_timeout_s' must be a number 0.1..%d", path,
		                   LOGIN_TIMEOUT_MAX_S);
	*out = (uint64_t)(s * 1000.0);
	return 0;
}

int cfl__server_resources_parse(const char *text, size_t len, const char *path,
                                struct cfl__server_resources *out, struct cfl_err *e)
{
	json_error_t je;
	json_t *root;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (len > CFL__RESOURCES_MAX_BYTES)
		return cfl_err_set(e, CFL_ETOOBIG, "'%s': larger than %u bytes", path,
		                   CFL__RESOURCES_MAX_BYTES);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return cfl_err_set(e, CFL_ECONFIG, "'%s': line %d: %s", path, je.line, je.text);
	if (!json_is_object(root))
		rc = cfl_err_set(e, CFL_ECONFIG, "'%s': not a JSON object", path);
	for (size_t i = 0; rc == 0 && i < sizeof(keys) / sizeof(keys[0]); i++)
		rc = read_count(root, &keys[i], path, &out->admit, e);
	if (rc == 0)
		rc = read_login_timeout(root, path, &out->login_timeout_ms, e);
	json_decref(root);
	return rc;
}

/* Descriptors are what a server of many sites runs out of first: use all the hard limit
 * allows (root without CAP_SYS_RESOURCE cannot go beyond it either). */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		CFL_WARN("cannot raise the descriptor limit to %llu: %s",
		         (unsigned long long)rl.rlim_max, strerror(errno));
}

int cfl__server_resources_load(const char *local_dir, struct cfl__server_resources *out,
                               struct cfl_err *e)
{
	char path[PATH_MAX], *text = NULL;
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	raise_nofile();
	if (cfl__path_join(path, sizeof(path), local_dir, "resources.json") != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "kit path too long");
	if (!cfl__fs_exists(path))
		return 0;
	if ((rc = cfl__fs_read_file(path, CFL__RESOURCES_MAX_BYTES, &text, &len, e)) != 0)
		return rc;
	rc = cfl__server_resources_parse(text, len, path, out, e);
	free(text);
	return rc;
}

int cfl__server_admit_new(struct cfl_loop *loop, const struct cfl__server_resources *r,
                          struct cfl_admit **out, struct cfl_err *e)
{
	struct cfl_admit_limits l;
	int rc = cfl_admit_new(loop, &r->admit, out, e);

	if (rc != 0)
		return rc;
	cfl_admit_limits_get(*out, &l);
	CFL_INFO("admission: max_connections %ld, max_prelogin_connections %ld, "
	         "max_prelogin_per_address %ld, challenges_per_address_per_s %ld, admin_reserve "
	         "%ld, descriptor_reserve %ld",
	         l.max_connections, l.max_prelogin, l.max_prelogin_addr, l.challenges_addr_s,
	         l.admin_reserve, l.fd_reserve);
	return 0;
}
