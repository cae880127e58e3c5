/* Logging with levels to stderr (or a sink set by the program or a test).
 * Thread-safe for whole lines. Never pass secrets (keys, tokens, signatures) to these. */
#ifndef CFL_LOG_H
#define CFL_LOG_H

enum cfl_log_level { CFL_LOG_ERROR = 0, CFL_LOG_WARN, CFL_LOG_INFO, CFL_LOG_DEBUG };

/* Sets the most verbose level printed (default CFL_LOG_INFO). */
void cfl_log_set_level(enum cfl_log_level level);
enum cfl_log_level cfl_log_get_level(void);

/* Parses "error", "warn", "info", "debug"; returns 0 or CFL_EINVAL. */
int cfl_log_level_parse(const char *s, enum cfl_log_level *out);

/* A sink receives each line (without newline). NULL restores the default (stderr). */
typedef void (*cfl_log_sink)(enum cfl_log_level level, const char *line, void *arg);
void cfl_log_set_sink(cfl_log_sink sink, void *arg);

void cfl_log(enum cfl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define CFL_ERROR(...) cfl_log(CFL_LOG_ERROR, __VA_ARGS__)
#define CFL_WARN(...)  cfl_log(CFL_LOG_WARN, __VA_ARGS__)
#define CFL_INFO(...)  cfl_log(CFL_LOG_INFO, __VA_ARGS__)
#define CFL_DEBUG(...) cfl_log(CFL_LOG_DEBUG, __VA_ARGS__)

#endif
