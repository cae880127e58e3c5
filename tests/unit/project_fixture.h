/* Shared fixture of the project-file loader tests (test_project_load.c, test_project_api.c;
 * src/provision/project*.c): warnings captured from the log, fixture files found through
 * CFL_SRC (which ctest sets to the source folder), projects loaded from a file or a string,
 * and lookups of a participant and its connection target.
 *
 * Everything is static inline so that each test program takes what it uses. */
#ifndef CFL_TEST_PROJECT_FIXTURE_H
#define CFL_TEST_PROJECT_FIXTURE_H

#include "cfl/err.h"
#include "cfl/log.h"
#include "cfl/project.h"
#include "provision/internal.h"
#include "provision/project_int.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------------------- */

#define MAX_LINES 256

struct capture {
	char lines[MAX_LINES][512];
	size_t n;     /* lines kept */
	size_t total; /* lines seen */
};

static struct capture warnings;

static inline void sink(enum cfl_log_level level, const char *line, void *arg)
{
	struct capture *c = arg;

	if (level != CFL_LOG_WARN)
		return;
	if (c->n < MAX_LINES)
		snprintf(c->lines[c->n++], sizeof(c->lines[0]), "%s", line);
	c->total++;
}

static inline int setup(void **state)
{
	(void)state;
	memset(&warnings, 0, sizeof(warnings));
	cfl_log_set_sink(sink, &warnings);
	return 0;
}

static inline int teardown(void **state)
{
	(void)state;
	cfl_log_set_sink(NULL, NULL);
	return 0;
}

/* Counts the captured warnings that contain `a` and (unless NULL) `b`. */
static inline size_t warned(const char *a, const char *b)
{
	size_t hits = 0;

	for (size_t i = 0; i < warnings.n; i++)
		if (strstr(warnings.lines[i], a) != NULL &&
		    (b == NULL || strstr(warnings.lines[i], b) != NULL))
			hits++;
	return hits;
}

static inline void fixture(char *buf, size_t size, const char *kind, const char *name)
{
	const char *src = getenv("CFL_SRC");

	if (src == NULL)
		fail_msg("CFL_SRC is not set (ctest sets it to the source folder)");
	assert_true((size_t)snprintf(buf, size, "%s/tests/data/%s/%s.yml", src, kind, name) < size);
}

static inline struct cfl_project *load_good(const char *name)
{
	struct cfl_project *p = NULL;
	struct cfl_err e = {0};
	char path[1024];
	int rc;

	fixture(path, sizeof(path), "good", name);
	rc = cfl_project_load(path, &p, &e);
	if (rc != 0)
		fail_msg("%s: rc %d: %s", path, rc, e.msg);
	assert_non_null(p);
	return p;
}

static inline const struct cfl_participant *find(const struct cfl_project *p, const char *name)
{
	for (size_t i = 0; i < p->n_parts; i++)
		if (strcmp(p->parts[i].name, name) == 0)
			return &p->parts[i];
	fail_msg("no participant '%s'", name);
	return NULL;
}

static inline void assert_target(const struct cfl_project *p, const char *name, const char *host,
                                 int port)
{
	const struct cfl_participant *pt = find(p, name);

	assert_string_equal(cfl_project_target_host(p, pt), host);
	assert_int_equal(cfl_project_target_port(p, pt), port);
}

static inline int load_str(const char *yml, struct cfl_project **p, struct cfl_err *e)
{
	return cfl_project_load_mem(yml, strlen(yml), "mem.yml", p, e);
}

#endif
