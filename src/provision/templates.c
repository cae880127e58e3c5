/* Static kit content: start/stop scripts and the local/ defaults.
 *
 * The scripts run `cfl server|client|admin <kit folder>`; which cfl: $CFL if set, else `cfl`
 * on PATH, else the binary that provisioned the kit (recorded here). */
#include "internal.h"

#include "util/fs.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRIPT_MAX 8192 /* bytes of one script */

/* Common head: where the kit is, which cfl to run, and what this kit is. */
static const char script_head[] = "#!/bin/sh\n"
                                  "# Written by cfl provision. Runs from any working directory.\n"
                                  "DIR=$(cd \"$(dirname \"$0\")\" && pwd)\n"
                                  "KIT=$(dirname \"$DIR\")\n"
                                  "ROLE=%s\n"
                                  "NAME=%s\n"
                                  "if [ -n \"${CFL:-}\" ]; then :\n"
                                  "elif command -v cfl >/dev/null 2>&1; then CFL=cfl\n"
                                  "else CFL=%s\n"
                                  "fi\n";

/* start.sh: runs sub_start.sh in the background, output to KIT/log.txt. */
static const char start_body[] = "\"$DIR/sub_start.sh\" \"$@\" >>\"$KIT/log.txt\" 2>&1 &\n"
                                 "echo \"started $ROLE '$NAME' (pid $!); log: $KIT/log.txt\"\n";

/* sub_start.sh: exec keeps the pid written to pid.fl, which stop_fl.sh uses. */
static const char sub_start_body[] = "echo $$ >\"$KIT/pid.fl\"\n"
                                     "exec \"$CFL\" \"$ROLE\" \"$KIT\" \"$@\"\n";

static const char stop_body[] =
        "if [ ! -f \"$KIT/pid.fl\" ]; then echo \"not running (no $KIT/pid.fl)\" >&2; exit 1; fi\n"
        "pid=$(cat \"$KIT/pid.fl\")\n"
        "kill -TERM \"$pid\" 2>/dev/null || { rm -f \"$KIT/pid.fl\"; echo 'not running'; exit 0; "
        "}\n"
        "i=0\n"
        "while kill -0 \"$pid\" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done\n"
        "if kill -0 \"$pid\" 2>/dev/null; then echo \"pid $pid did not stop\" >&2; exit 1; fi\n"
        "rm -f \"$KIT/pid.fl\"\n"
        "echo \"stopped $ROLE '$NAME'\"\n";

static const char admin_body[] = "exec \"$CFL\" admin \"$KIT\" \"$@\"\n";

/* Single-quotes s for sh into buf: ' becomes '\''. */
static int sh_quote(char *buf, size_t size, const char *s)
{
	size_t o = 0;

	if (size < 3)
		return CFL_ETOOBIG;
	buf[o++] = '\'';
	for (; *s != '\0'; s++) {
		if (o + 6 >= size)
			return CFL_ETOOBIG;
		if (*s == '\'') {
			memcpy(buf + o, "'\\''", 4);
			o += 4;
		} else {
			buf[o++] = *s;
		}
	}
	buf[o++] = '\'';
	buf[o] = '\0';
	return 0;
}

static int add_script(struct cfl__kit_mem *m, const char *file, const char *body, const char *role,
                      const char *name, const char *cfl_path, struct cfl_err *e)
{
	char qname[1024], qcfl[PATH_MAX * 2], *text;
	size_t blen = strlen(body);
	int n;

	if (sh_quote(qname, sizeof(qname), name) != 0 ||
	    sh_quote(qcfl, sizeof(qcfl), cfl_path != NULL ? cfl_path : "cfl") != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "name or cfl path too long for a script");
	text = malloc(SCRIPT_MAX);
	if (text == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	n = snprintf(text, SCRIPT_MAX, script_head, role, qname, qcfl);
	if (n < 0 || (size_t)n + blen >= SCRIPT_MAX) {
		free(text);
		return cfl_err_set(e, CFL_ETOOBIG, "script '%s' too long", file);
	}
	memcpy(text + n, body, blen + 1);
	return cfl__kit_mem_add(m, file, text, (size_t)n + blen, 0755, text, e);
}

int cfl__kit_add_scripts(struct cfl__kit_mem *m, const struct cfl_participant *pt,
                         const char *cfl_path, struct cfl_err *e)
{
	static const char *const roles[] = {"server", "client", "admin"};
	const char *role = roles[pt->type];
	int rc;

	if (pt->type == CFL_PT_ADMIN)
		return add_script(m, "startup/fl_admin.sh", admin_body, role, pt->name, cfl_path,
		                  e);
	rc = add_script(m, "startup/start.sh", start_body, role, pt->name, cfl_path, e);
	if (rc == 0)
		rc = add_script(m, "startup/sub_start.sh", sub_start_body, role, pt->name, cfl_path,
		                e);
	if (rc == 0)
		rc = add_script(m, "startup/stop_fl.sh", stop_body, role, pt->name, cfl_path, e);
	return rc;
}

/* local/ defaults: the site copies a .default to its plain name to change it. */
static const char resources_server[] = "{\n"
                                       "  \"format_version\": 1,\n"
                                       "  \"heartbeat_timeout_s\": 60,\n"
                                       "  \"max_clients\": 1000,\n"
                                       "  \"max_message_bytes\": 4294967296,\n"
                                       "  \"job_storage\": \"jobs\",\n"
                                       "  \"max_connections\": 0,\n"
                                       "  \"max_prelogin_connections\": 1024,\n"
                                       "  \"max_prelogin_per_address\": 64,\n"
                                       "  \"challenges_per_address_per_s\": 100,\n"
                                       "  \"admin_reserve\": 16,\n"
                                       "  \"descriptor_reserve\": 64,\n"
                                       "  \"login_timeout_s\": 10\n"
                                       "}\n";

static const char resources_client[] = "{\n"
                                       "  \"format_version\": 1,\n"
                                       "  \"num_threads\": 2,\n"
                                       "  \"data_dir\": \"data\",\n"
                                       "  \"max_message_bytes\": 4294967296\n"
                                       "}\n";

static const char privacy_sample[] =
        "{\n"
        "  \"format_version\": 1,\n"
        "  \"scopes\": [\n"
        "    {\"name\": \"public\", \"task_result_filters\": []},\n"
        "    {\"name\": \"private\", \"task_result_filters\": [\n"
        "      {\"name\": \"ExcludeVars\", \"args\": {\"exclude_vars\": \"^private_\"}}\n"
        "    ]}\n"
        "  ],\n"
        "  \"default_scope\": \"public\"\n"
        "}\n";

/* NVFlare's default federated authorization policy, in its format (SPEC §10); src/authz reads
 * it, and test_authz checks that it equals cfl_authz_default(). */
static const char authorization_default[] = "{\n"
                                            "  \"format_version\": \"1.0\",\n"
                                            "  \"permissions\": {\n"
                                            "    \"project_admin\": \"any\",\n"
                                            "    \"org_admin\": {\n"
                                            "      \"submit_job\": \"none\",\n"
                                            "      \"clone_job\": \"none\",\n"
                                            "      \"manage_job\": \"o:submitter\",\n"
                                            "      \"download_job\": \"o:submitter\",\n"
                                            "      \"view\": \"any\",\n"
                                            "      \"operate\": \"o:site\",\n"
                                            "      \"shell_commands\": \"o:site\",\n"
                                            "      \"byoc\": \"none\"\n"
                                            "    },\n"
                                            "    \"lead\": {\n"
                                            "      \"submit_job\": \"any\",\n"
                                            "      \"clone_job\": \"n:submitter\",\n"
                                            "      \"manage_job\": \"n:submitter\",\n"
                                            "      \"download_job\": \"n:submitter\",\n"
                                            "      \"view\": \"any\",\n"
                                            "      \"operate\": \"o:site\",\n"
                                            "      \"shell_commands\": \"o:site\",\n"
                                            "      \"byoc\": \"any\"\n"
                                            "    },\n"
                                            "    \"member\": {\n"
                                            "      \"view\": \"any\"\n"
                                            "    }\n"
                                            "  }\n"
                                            "}\n";

static const char log_config_default[] = "{\n"
                                         "  \"format_version\": 1,\n"
                                         "  \"level\": \"info\",\n"
                                         "  \"file\": \"log.txt\",\n"
                                         "  \"max_bytes\": 10485760,\n"
                                         "  \"backups\": 5\n"
                                         "}\n";

int cfl__kit_add_local(struct cfl__kit_mem *m, const struct cfl_participant *pt, struct cfl_err *e)
{
	const char *res = pt->type == CFL_PT_SERVER ? resources_server : resources_client;
	const char *const files[][2] = {
	        {"local/resources.json.default", res},
	        {"local/privacy.json.sample", privacy_sample},
	        {"local/authorization.json.default", authorization_default},
	        {"local/log_config.json.default", log_config_default},
	};
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(files) / sizeof(files[0]); i++)
		rc = cfl__kit_mem_add(m, files[i][0], files[i][1], strlen(files[i][1]), 0644, NULL,
		                      e);
	return rc;
}

int cfl__kit_write_local(const char *local_dir, const struct cfl_participant *pt, struct cfl_err *e)
{
	struct cfl__kit_mem m = {.n = 0};
	char path[PATH_MAX];
	int rc = cfl__kit_add_local(&m, pt, e);

	for (size_t i = 0; rc == 0 && i < m.n; i++) {
		/* "local/NAME" into local_dir/NAME */
		if (cfl__path_join(path, sizeof(path), local_dir, m.f[i].name + 6) != 0)
			rc = cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", local_dir);
		else
			rc = cfl__fs_write_file(path, m.f[i].data, m.f[i].len, 0644, e);
	}
	cfl__kit_mem_release(&m);
	return rc;
}
