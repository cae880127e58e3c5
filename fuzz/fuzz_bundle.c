/* libFuzzer target for job bundles ({"files": {name: base64}}, docs/jobs.md): the server's
 * checks at submission (cfl__job_parse_bundle, cfl__job_settings in src/jobs/jobstore.c) and
 * the site's unpacking of the same bytes (cfl__executor_unpack in src/jobs/executor.c, what a
 * site does once the bundle's signature held: fuzz_manifest.c covers the signature), which
 * writes into a temporary folder (under /dev/shm when there is one) emptied after each run.
 *
 * Input: the bundle's text. Checked, besides no crash, leak or undefined behaviour:
 * - whatever the bytes, the site writes nothing but plain files with safe names, all of them
 *   named in the bundle, and all inside <work>/<job>/;
 * - a bundle the server accepts has a config.json and a meta.json that are objects, at most
 *   JOB_MAX_FILES files with safe names, and settings in their documented ranges;
 * - a bundle the server accepts, the site unpacks: every file, with its decoded contents.
 * Any broken promise aborts, which libFuzzer reports as a crash. */
#define _DEFAULT_SOURCE
#include "cfl/err.h"
#include "cfl/executor.h"
#include "cfl/log.h"
#include "cfl/pki.h"
#include "fuzz_pki.h"
#include "jobs/jobs_int.h"
#include "util/fs.h"

#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOB "20260101-000000-abcdef"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char work[PATH_MAX], job_dir[PATH_MAX], ca_file[PATH_MAX + 8];
static struct fuzz_pki pki;
static struct cfl_loop *loop;
static struct cfl_msg_hub *hub;
static struct cfl_executor *x;

static void check(int ok)
{
	if (!ok)
		abort();
}

static void cleanup(void)
{
	cfl_executor_free(x);
	cfl_msg_hub_free(hub);
	cfl_loop_free(loop);
	cfl__fs_rmtree(work);
	unlink(ca_file);
	fuzz_pki_release(&pki);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	struct stat st;

	(void)argc;
	(void)argv;
	cfl_log_set_level(CFL_LOG_ERROR);
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	snprintf(work, sizeof(work), "%s/cfl-fuzz-bundle-XXXXXX", tmp != NULL ? tmp : "/tmp");
	check(mkdtemp(work) != NULL);
	check(cfl__path_join(job_dir, sizeof(job_dir), work, JOB) == 0);
	check(cfl_loop_new(&loop, NULL) == 0 && cfl_msg_hub_new(loop, "site-1", &hub, NULL) == 0);
	snprintf(ca_file, sizeof(ca_file), "%s.pem", work);
	fuzz_pki_make(&pki, "admin@fuzz.org", "lead", ca_file);
	check(cfl_executor_new(hub,
	                       &(struct cfl_executor_cfg){
	                               .work_dir = work, .site = "site-1", .root_ca = ca_file},
	                       &x, NULL) == 0);
	atexit(cleanup);
	return 0;
}

/* The file `name` of the job folder holds exactly the decoded `b64`. */
static void check_file(const char *name, const char *b64, size_t b64_len)
{
	char path[PATH_MAX], *got = NULL;
	uint8_t *want = NULL;
	size_t got_len = 0, want_len = 0;

	check(cfl__path_join(path, sizeof(path), job_dir, name) == 0);
	check(cfl_base64_decode(b64, b64_len, &want, &want_len) == 0);
	check(cfl__fs_read_file(path, want_len, &got, &got_len, NULL) == 0);
	check(got_len == want_len && memcmp(got, want, want_len) == 0);
	free(got);
	free(want);
}

/* What the site wrote: only plain files with safe names from `files`, inside the job folder.
 * Returns how many. */
static size_t check_written(json_t *files)
{
	struct dirent *de;
	struct stat st;
	char path[PATH_MAX];
	size_t n = 0;
	DIR *d = opendir(work);

	check(d != NULL);
	while ((de = readdir(d)) != NULL)
		check(strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		      strcmp(de->d_name, JOB) == 0);
	closedir(d);
	d = opendir(job_dir);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		check(cfl__path_join(path, sizeof(path), job_dir, de->d_name) == 0);
		check(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
		check(cfl__job_safe_name(de->d_name) && json_object_get(files, de->d_name) != NULL);
		n++;
	}
	closedir(d);
	return n;
}

/* The server's view. Returns 1 when it accepts the job. */
static int server_accepts(const uint8_t *data, size_t size)
{
	json_t *b = NULL, *config = NULL, *meta = NULL, *v;
	struct job jb;
	struct cfl_err e = {0};
	const char *name;
	int ok = 0;

	memset(&jb, 0, sizeof(jb));
	if (cfl__job_parse_bundle((const char *)data, size, &b, &config, &meta, &e) != 0) {
		check(e.code < 0 && e.msg[0] != '\0');
		goto out;
	}
	check(json_is_object(config) && json_is_object(meta));
	check(json_object_size(json_object_get(b, "files")) <= JOB_MAX_FILES);
	json_object_foreach (json_object_get(b, "files"), name, v)
		check(cfl__job_safe_name(name) && json_is_string(v));
	if (cfl__job_settings(&jb, config, &e) != 0) {
		check(e.code < 0 && e.msg[0] != '\0' && jb.config == NULL);
		goto out;
	}
	check(jb.config == config && jb.num_rounds >= 1 && jb.num_rounds <= JOB_MAX_ROUNDS);
	check(jb.min_clients >= 1 && jb.min_clients <= JOB_MAX_SITES);
	check(jb.round_timeout_ms >= 1000 &&
	      jb.round_timeout_ms <= (uint64_t)JOB_MAX_ROUND_TIMEOUT_S * 1000);
	json_decref(jb.config);
	ok = 1;
out:
	json_decref(b);
	json_decref(config);
	json_decref(meta);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *b = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL), *v;
	json_t *files = json_object_get(b, "files");
	struct cfl_err e = {0};
	const char *name;
	int accepted = server_accepts(data, size);
	int rc = cfl__executor_unpack(x, JOB, data, size, &e);
	size_t written = check_written(files);

	check(rc == 0 || (rc < 0 && e.code == rc && e.msg[0] != '\0'));
	if (accepted) {
		check(rc == 0 && written == json_object_size(files));
		json_object_foreach (files, name, v)
			check_file(name, json_string_value(v), json_string_length(v));
	}
	json_decref(b);
	cfl__fs_rmtree(job_dir);
	return 0;
}
