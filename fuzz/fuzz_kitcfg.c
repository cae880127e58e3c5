/* libFuzzer target for a startup kit's runtime configuration (src/kit/kitcfg.c):
 * fed_client.json, fed_server.json and fed_admin.json, read by cfl_kitcfg_load_mem().
 *
 * Input: one byte whose value modulo 3 picks the file (0 client, 1 server, 2 admin, as
 * cfl_kitcfg_load's is_server), then the file's text. Loading must never crash, leak or hang;
 * when it succeeds, the value must keep the header's promises, which the server and the client
 * rely on without checking again: every string terminated inside its array and non-empty where
 * it names something, ports 1..65535, a resolved mode, and every file inside the kit's startup/
 * folder. When it fails, the message must name the file. Any broken promise aborts, which
 * libFuzzer reports as a crash. */
#include "cfl/err.h"
#include "cfl/kit.h"
#include "cfl/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KIT  "/fuzz/kit"
#define NAME "fed.json"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static int terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static int named(const char *s, size_t size)
{
	return terminated(s, size) && s[0] != '\0';
}

static int port_ok(int port)
{
	return port >= 1 && port <= 65535;
}

/* A file of the kit: KIT/startup/<name>, with a name that stays in that folder. */
static int kit_file(const char *path)
{
	static const char prefix[] = KIT "/startup/";

	if (!terminated(path, PATH_MAX) || strncmp(path, prefix, sizeof(prefix) - 1) != 0)
		return 0;
	path += sizeof(prefix) - 1;
	return path[0] != '\0' && strchr(path, '/') == NULL && strcmp(path, ".") != 0 &&
	       strcmp(path, "..") != 0;
}

static void check_cfg(const struct cfl_kitcfg *c, int role)
{
	const char *trust = cfl_kitcfg_trust_file(c);

	check(c->is_server == (role == 1) && strcmp(c->kit_dir, KIT) == 0);
	check(terminated(c->project, sizeof(c->project)));
	check(named(c->name, sizeof(c->name)) && named(c->identity, sizeof(c->identity)));
	check(terminated(c->host, sizeof(c->host)) && port_ok(c->port));
	check(role == 1 || c->host[0] != '\0');
	check(role != 1 || port_ok(c->admin_port));
	check(role != 2 || c->project[0] != '\0');
	check(c->secure_train == 0 || c->secure_train == 1);
	check(c->mode == CFL_SEC_CLEAR || c->mode == CFL_SEC_TLS || c->mode == CFL_SEC_MTLS);
	check(kit_file(c->cert) && kit_file(c->key) && kit_file(c->root_ca));
	check(c->custom_ca[0] == '\0' || kit_file(c->custom_ca));
	check(trust == c->root_ca || trust == c->custom_ca);
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
	struct cfl_kitcfg *c;
	struct cfl_err e = {0};
	int role, rc;

	if (size < 1)
		return 0;
	role = data[0] % 3;
	/* The value is some 17 KiB: on the heap, so that ASan sees reads past its arrays. */
	c = malloc(sizeof(*c));
	check(c != NULL);
	rc = cfl_kitcfg_load_mem((const char *)data + 1, size - 1, NAME, KIT, role, c, &e);
	if (rc == 0)
		check_cfg(c, role);
	else
		check(rc < 0 && e.code == rc &&
		      strncmp(e.msg, "'" NAME "': ", sizeof(NAME) + 3) == 0);
	free(c);
	return 0;
}
