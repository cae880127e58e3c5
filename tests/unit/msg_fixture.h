/* Shared fixture of the programs that talk through the message hub or provision projects
 * (test_authz.c, test_privacy_*.c, test_project_files.c, and the fixtures auth_fixture.h,
 * hub_fixture.h, jobs_fixture.h, kit_fixture.h): a temporary folder, projects provisioned into
 * it by the library, captured log lines, bounded waits on a loop, and a recorder for request
 * outcomes.
 *
 * Everything is static inline so that each test program takes what it uses. */
#ifndef CFL_TEST_MSG_FIXTURE_H
#define CFL_TEST_MSG_FIXTURE_H

#include "cfl/err.h"
#include "cfl/log.h"
#include "cfl/loop.h"
#include "cfl/msg.h"
#include "cfl/provision.h"
#include "util/fs.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd_fixture.h"

#define WAIT_MS 5000 /* every wait for something that should happen gives up after this */

/* --- the temporary folder -------------------------------------------------------------------- */

static char tmp_dir[PATH_MAX];

static inline int tmp_make(const char *tag)
{
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/cfl-%s.XXXXXX", tag);
	return mkdtemp(tmp_dir) != NULL ? 0 : -1;
}

static inline void tmp_remove(void)
{
	if (tmp_dir[0] != '\0')
		(void)cfl__fs_rmtree(tmp_dir);
	tmp_dir[0] = '\0';
}

/* buf = a/b, failing the test if it does not fit. */
static inline const char *path_join(char *buf, size_t size, const char *a, const char *b)
{
	if (cfl__path_join(buf, size, a, b) != 0)
		fail_msg("path too long: %s/%s", a, b);
	return buf;
}

/* Writes `text` to `path` (0644), failing the test on error. */
static inline void write_text(const char *path, const char *text)
{
	struct cfl_err e = {0};

	if (cfl__fs_write_file(path, text, strlen(text), 0644, &e) != 0)
		fail_msg("cannot write '%s': %s", path, e.msg);
}

/* Provisions the project `yml` (written to <tmp>/<tag>.yml) into <tmp>/<tag>; the prod folder
 * goes to `prod`. Returns 0 or -1 (message on stderr): for group setups. */
static inline int provision(const char *tag, const char *yml, char *prod, size_t size)
{
	char project[PATH_MAX], ws[PATH_MAX], name[64];
	struct cfl_provision_opts o = {project, ws, CFL_KEY_P256, NULL};
	struct cfl_err e = {0};

	snprintf(name, sizeof(name), "%s.yml", tag);
	if (cfl__path_join(project, sizeof(project), tmp_dir, name) != 0 ||
	    cfl__path_join(ws, sizeof(ws), tmp_dir, tag) != 0 ||
	    cfl__fs_write_file(project, yml, strlen(yml), 0644, &e) != 0 ||
	    cfl_provision(&o, prod, size, &e) != 0) {
		fprintf(stderr, "cannot provision '%s': %s\n", tag, e.msg);
		return -1;
	}
	return 0;
}

/* --- log lines ------------------------------------------------------------------------------- */

/* Lines up to log_keep_max (warnings and errors unless a test asks for more) are kept for
 * checks of what was logged, nothing is printed; set CFL_TEST_VERBOSE to see every line. */
static char log_text[65536];
static enum cfl_log_level log_keep_max = CFL_LOG_WARN;

static inline void log_keep(enum cfl_log_level level, const char *line, void *arg)
{
	size_t used = strlen(log_text);

	(void)arg;
	if (getenv("CFL_TEST_VERBOSE") != NULL)
		fprintf(stderr, "  log: %s\n", line);
	if (level > log_keep_max)
		return;
	if (used + strlen(line) + 2 >= sizeof(log_text))
		used = 0; /* a long test: keep the latest lines */
	snprintf(log_text + used, sizeof(log_text) - used, "%s\n", line);
}

/* Keeps lines up to `level` from now on (the earlier ones are dropped). */
static inline void log_capture_at(enum cfl_log_level level)
{
	log_text[0] = '\0';
	log_keep_max = level;
	cfl_log_set_level(getenv("CFL_TEST_VERBOSE") != NULL ? CFL_LOG_DEBUG : level);
	cfl_log_set_sink(log_keep, NULL);
}

static inline void log_capture(void)
{
	log_capture_at(CFL_LOG_WARN);
}

/* 1 if one kept line holds `a` (and `b`, unless NULL). */
static inline int logged(const char *a, const char *b)
{
	const char *line = log_text;

	while (*line != '\0') {
		const char *end = strchr(line, '\n');
		size_t n = end != NULL ? (size_t)(end - line) : strlen(line);
		const char *pa = strstr(line, a);

		if (pa != NULL && pa < line + n) {
			const char *pb = b != NULL ? strstr(line, b) : line;

			if (pb != NULL && pb < line + n)
				return 1;
		}
		line += n + (end != NULL);
	}
	return 0;
}

/* --- bounded waits --------------------------------------------------------------------------- */

/* Runs the loop until *flag >= want or `ms` pass; returns 1 if the flag got there. */
static inline int wait_for(struct cfl_loop *loop, const int *flag, int want, uint64_t ms)
{
	uint64_t end = cfl_loop_now_ms(loop) + ms;

	while (*flag < want && cfl_loop_now_ms(loop) < end)
		assert_true(cfl_loop_run_once(loop, 10) >= 0);
	return *flag >= want;
}

/* Runs the loop for `ms`, whatever happens. */
static inline void spin(struct cfl_loop *loop, uint64_t ms)
{
	uint64_t end = cfl_loop_now_ms(loop) + ms;

	while (cfl_loop_now_ms(loop) < end)
		assert_true(cfl_loop_run_once(loop, 10) >= 0);
}

/* --- request outcomes ------------------------------------------------------------------------ */

/* What a cfl_msg_reply_fn saw. */
struct outcome {
	int calls;
	int status;
	char reason[512];
	char status_hdr[64]; /* the `status` header of an error reply */
	char body[1024];
	size_t body_len;
	int had_frame, more;
	uint64_t at_ms;
	char hdr_name[64], hdr_val[512]; /* hdr_name set: the value of that header */
};

static inline void on_outcome(struct cfl_peer *p, int status, const char *reason,
                              const struct cfl_frame *f, int more, struct cfl_msg_sink *sink,
                              void *arg)
{
	struct outcome *o = arg;

	(void)p;
	(void)sink;
	o->calls++;
	o->status = status;
	o->more = more;
	o->at_ms = cfl_loop_now_ms(NULL);
	snprintf(o->reason, sizeof(o->reason), "%s", reason != NULL ? reason : "");
	o->had_frame = f != NULL;
	o->status_hdr[0] = '\0';
	o->body[0] = '\0';
	o->body_len = 0;
	if (f == NULL)
		return;
	cfl_frame_header_str(f, "status", o->status_hdr, sizeof(o->status_hdr));
	o->body_len = f->body_len;
	if (f->body_len < sizeof(o->body)) {
		memcpy(o->body, f->body, f->body_len);
		o->body[f->body_len] = '\0';
	}
	if (o->hdr_name[0] != '\0')
		cfl_frame_header_str(f, o->hdr_name, o->hdr_val, sizeof(o->hdr_val));
}

#endif
