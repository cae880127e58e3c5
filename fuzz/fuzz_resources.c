/* libFuzzer target for the server's local/resources.json (src/server/admission.c), read by
 * cfl__server_resources_parse().
 *
 * Input: the file's text. Parsing must never crash, leak or hang; when it succeeds, every
 * admission limit is 0 (the default) or within 1..2^24 and the login timeout 0 or within
 * 100 ms..1 h, as cfl_admit_new() and the authentication layer take them unchecked; when it
 * fails, the message must name the file. A broken promise aborts. */
#include "cfl/err.h"
#include "cfl/log.h"
#include "server/admission.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PATH "/fuzz/local/resources.json"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static int count_ok(long v)
{
	return v >= 0 && v <= (1L << 24);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cfl_log_set_level(CFL_LOG_ERROR);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfl__server_resources r;
	struct cfl_err e = {0};
	const struct cfl_admit_limits *l = &r.admit;

	if (cfl__server_resources_parse((const char *)data, size, PATH, &r, &e) != 0) {
		check(strstr(e.msg, PATH) != NULL);
		return 0;
	}
	check(count_ok(l->max_connections) && count_ok(l->max_prelogin) &&
	      count_ok(l->max_prelogin_addr) && count_ok(l->challenges_addr_s) &&
	      count_ok(l->admin_reserve) && count_ok(l->fd_reserve));
	check(r.login_timeout_ms == 0 ||
	      (r.login_timeout_ms >= 99 && r.login_timeout_ms <= 3600u * 1000));
	return 0;
}
