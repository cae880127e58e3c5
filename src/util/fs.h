/* Internal file-system helpers: bounded reads, whole-file writes with a mode, trees. */
#ifndef CFL_UTIL_FS_H
#define CFL_UTIL_FS_H

#include "cfl/err.h"

#include <stddef.h>
#include <sys/types.h>

/* Reads at most `max` bytes of `path` into a new NUL-terminated buffer (*out, free()).
 * Fails with CFL_ETOOBIG if the file is larger, CFL_ENOENT if it does not exist. */
int cfl__fs_read_file(const char *path, size_t max, char **out, size_t *len, struct cfl_err *e);

/* Writes all of data to fd (EINTR retried): 0, or -1 with errno set. */
int cfl__fs_write_all(int fd, const void *data, size_t len);

/* Creates or truncates `path` with `mode` (mode applied even if umask is stricter). */
int cfl__fs_write_file(const char *path, const void *data, size_t len, mode_t mode,
                       struct cfl_err *e);

/* Copies a regular file (up to `max` bytes) to `dst` with `mode`. */
int cfl__fs_copy_file(const char *src, const char *dst, size_t max, mode_t mode, struct cfl_err *e);

/* mkdir -p. */
int cfl__fs_mkdirs(const char *path, mode_t mode, struct cfl_err *e);

/* rm -rf, not following symbolic links. Returns 0 or CFL_EIO. */
int cfl__fs_rmtree(const char *path);

/* 1 if `path` exists (any type), else 0. */
int cfl__fs_exists(const char *path);

/* Writes "a/b" into buf; CFL_ETOOBIG if it does not fit. */
int cfl__path_join(char *buf, size_t size, const char *a, const char *b);

#endif
