/* Line-oriented logging with levels. */
#include "cfl/log.h"

#include "cfl/err.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum cfl_log_level max_level = CFL_LOG_INFO;
static cfl_log_sink sink_fn;
static void *sink_arg;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void cfl_log_set_level(enum cfl_log_level level)
{
	max_level = level;
}

enum cfl_log_level cfl_log_get_level(void)
{
	return max_level;
}

int cfl_log_level_parse(const char *s, enum cfl_log_level *out)
{
	for (int i = 0; i <= CFL_LOG_DEBUG; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum cfl_log_level)i;
			return 0;
		}
	}
	return CFL_EINVAL;
}

void cfl_log_set_sink(cfl_log_sink sink, void *arg)
{
	pthread_mutex_lock(&log_lock);
	sink_fn = sink;
	sink_arg = arg;
	pthread_mutex_unlock(&log_lock);
}

void cfl_log(enum cfl_log_level level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	if (level > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One entry, one line: a control character, which texts from peers may carry (names,
	 * reasons, error replies), cannot start a line of its own or hide one. */
	for (char *c = line; *c != '\0'; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	}

	pthread_mutex_lock(&log_lock);
	if (sink_fn != NULL) {
		sink_fn(level, line, sink_arg);
	} else {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %-5s %s\n", stamp, ts.tv_nsec / 1000000L,
		        level_names[level], line);
	}
	pthread_mutex_unlock(&log_lock);
}
