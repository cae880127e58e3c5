/* libFuzzer target for the project-file loader (src/provision/project*.c).
 *
 * The input is a project.yml. Includes need files: the input is loaded as if it were
 * DIR/fuzz.yml, DIR being a temporary folder made at start with a few fixed files to include
 * (a participant, a list of them, a nested include, a cycle, a list where a mapping belongs, a
 * syntax error, a symbolic link out of the folder); the fuzzer finds their names through the
 * seeds. Nothing the input says can make the loader read outside DIR (that is a rule under
 * test), and the fixed files are never written again, so runs stay independent. Loading must never
 * crash, leak or hang, whatever the bytes; when it succeeds, the result must keep the promises the
 * header makes (exactly one server, every name and host valid, ports in range, resolved values
 * defined), which the provisioning code relies on without checking again. Any broken promise
 * aborts, which libFuzzer reports as a crash. Warnings go to a sink that drops them. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include "cfl/err.h"
#include "cfl/log.h"
#include "cfl/project.h"
#include "provision/project_int.h"
#include "util/fs.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static void drop(enum cfl_log_level level, const char *line, void *arg)
{
	(void)level;
	(void)line;
	(void)arg;
}

static int port_ok(int port)
{
	return port >= 1 && port <= 65535;
}

static void check_participant(const struct cfl_project *p, const struct cfl_participant *pt)
{
	const char *host = cfl_project_target_host(p, pt);
	enum cfl_conn_sec sec = cfl_project_conn_sec(p, pt);

	check(pt->name != NULL && pt->org != NULL && pt->name[0] != '\0');
	check(strlen(pt->org) <= CFL_CN_MAX);
	check(pt->type != CFL_PT_SERVER || strlen(pt->name) <= CFL_HOSTNAME_MAX);
	check(pt->type == CFL_PT_SERVER || strlen(pt->name) <= CFL_CN_MAX);
	check(pt->type != CFL_PT_ADMIN || pt->role != NULL);
	check(pt->n_host_names <= CFL_PROJECT_MAX_HOSTS);
	for (size_t i = 0; i < pt->n_host_names; i++)
		check(pt->host_names[i] != NULL && strlen(pt->host_names[i]) <= CFL_HOSTNAME_MAX);
	check(port_ok(pt->fed_learn_port) && port_ok(pt->admin_port));
	check(pt->connect_port == 0 || port_ok(pt->connect_port));
	check(host != NULL && strlen(host) <= CFL_HOSTNAME_MAX);
	check(port_ok(cfl_project_target_port(p, pt)));
	check(sec == CFL_SEC_CLEAR || sec == CFL_SEC_TLS || sec == CFL_SEC_MTLS);
	(void)cfl_project_custom_ca(p, pt);
}

static void check_project(const struct cfl_project *p)
{
	const struct cfl_participant *server = cfl_project_server(p);
	char cn[CFL_CN_MAX + 1];
	size_t servers = 0;

	check(p->name != NULL && p->path != NULL && p->n_parts > 0);
	check(p->n_parts <= CFL_PROJECT_MAX_PARTICIPANTS);
	check(p->cert_validity_days == 0 ||
	      (p->cert_validity_days >= 1 && p->cert_validity_days <= 3650));
	check(cfl_project_cert_days(p) >= 1 && cfl_project_cert_days(p) <= 3650);
	check(p->key_type == CFL_KEY_P256 || p->key_type == CFL_KEY_RSA2048);
	check(server != NULL && cfl_project_default_host(p) != NULL);
	cfl_project_server_cn(p, cn, sizeof(cn));
	check(cn[0] != '\0' && strncmp(cn, server->name, CFL_CN_MAX) == 0);
	for (size_t i = 0; i < p->n_parts; i++) {
		servers += p->parts[i].type == CFL_PT_SERVER;
		check_participant(p, &p->parts[i]);
	}
	check(servers == 1);
}

static char dir[] = "/tmp/fuzz_project.XXXXXX";

static const struct {
	const char *name, *text;
} files[] = {
        {"site.yml", "name: site-9\ntype: client\norg: o\n"},
        {"server.yml", "name: s.example.com\ntype: server\norg: o\n"},
        {"parts.yml", "participants:\n  - include: server.yml\n  - {name: a, type: client, "
                      "org: o}\n"},
        {"sub/nested.yml", "include: ../site.yml\n"},
        {"loop.yml", "include: sub/loop2.yml\n"},
        {"sub/loop2.yml", "include: ../loop.yml\n"},
        {"list.yml", "- a\n- b\n"},
        {"bad.yml", "a: [\n"},
        {"empty.yml", ""},
};

static void cleanup(void)
{
	cfl__fs_rmtree(dir);
}

static void write_fixtures(void)
{
	char path[PATH_MAX];
	struct cfl_err e;

	check(mkdtemp(dir) != NULL);
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/sub", dir);
	check(cfl__fs_mkdirs(path, 0700, &e) == 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
		check(cfl__fs_write_file(path, files[i].text, strlen(files[i].text), 0600, &e) ==
		      0);
	}
	snprintf(path, sizeof(path), "%s/out.yml", dir);
	check(symlink("/etc/passwd", path) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cfl_log_set_sink(drop, NULL);
	write_fixtures();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfl_project *p = NULL;
	struct cfl_err e;
	int rc;

	rc = cfl__project_load_at((const char *)data, size, "fuzz.yml", dir, NULL, &p, &e);
	if (rc == 0)
		check_project(p);
	else /* the message names the input, or an included file by the name the input gave */
		check(p == NULL && e.code == rc && e.msg[0] != '\0' && strchr(e.msg, ':') != NULL);
	cfl_project_free(p);
	return 0;
}
