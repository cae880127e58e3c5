/* Unit tests for cfl/log.h: an entry is one line, whatever the texts it carries. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cfl/log.h"

#include <stdio.h>
#include <string.h>

static char got[256];

static void sink(enum cfl_log_level level, const char *line, void *arg)
{
	(void)level;
	(void)arg;
	snprintf(got, sizeof(got), "%s", line);
}

/* A peer's name or reason with a newline (header values may hold any byte but NUL) cannot
 * start a log line of its own: control characters become '?', the rest stays. */
static void test_one_line(void **state)
{
	(void)state;
	cfl_log_set_sink(sink, NULL);
	CFL_WARN("rejected '%s': %s", "site-1\n2026-12-07T00:00:00Z info  server1 logged in",
	         "bad\r\tthing\x7f é");
	cfl_log_set_sink(NULL, NULL);
	assert_string_equal(got, "rejected 'site-1?2026-12-07T00:00:00Z info  server1 logged in': "
	                         "bad??thing? é");
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_one_line)};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
