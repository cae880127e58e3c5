/* File-system helpers used by provisioning and kit checks. */
#define _XOPEN_SOURCE 700
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cfl__fs_read_file(const char *path, size_t max, char **out, size_t *len, struct cfl_err *e)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cfl_err_set(e, errno == ENOENT ? CFL_ENOENT : CFL_EIO,
		                   "cannot read '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = cfl_err_set(e, CFL_EIO, "cannot read '%s': not a regular file", path);
		goto out;
	}
	if ((unsigned long long)st.st_size > max) {
		rc = cfl_err_set(e, CFL_ETOOBIG, "cannot read '%s': larger than %zu bytes", path,
		                 max);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		rc = cfl_err_set(e, CFL_ENOMEM, "cannot read '%s': out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = cfl_err_set(e, CFL_EIO, "cannot read '%s': %s", path,
			                 n < 0 ? strerror(errno) : "file shrank");
			goto out;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

int cfl__fs_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int cfl__fs_write_file(const char *path, const void *data, size_t len, mode_t mode,
                       struct cfl_err *e)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return cfl_err_set(e, CFL_EIO, "cannot write '%s': %s", path, strerror(errno));
	if (fchmod(fd, mode) != 0 || cfl__fs_write_all(fd, data, len) != 0)
		goto fail;
	if (close(fd) != 0)
		return cfl_err_set(e, CFL_EIO, "cannot write '%s': %s", path, strerror(errno));
	return 0;
fail:
	cfl_err_set(e, CFL_EIO, "cannot write '%s': %s", path, strerror(errno));
	close(fd);
	return CFL_EIO;
}

int cfl__fs_copy_file(const char *src, const char *dst, size_t max, mode_t mode, struct cfl_err *e)
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	rc = cfl__fs_read_file(src, max, &buf, &len, e);
	if (rc == 0)
		rc = cfl__fs_write_file(dst, buf, len, mode, e);
	free(buf);
	return rc;
}

int cfl__fs_mkdirs(const char *path, mode_t mode, struct cfl_err *e)
{
	char tmp[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp))
		return cfl_err_set(e, CFL_EINVAL, "cannot create directory '%s': bad path", path);
	/* Most callers make a folder whose parent exists: one system call, not one per level. */
	if (mkdir(path, mode) == 0 || errno == EEXIST)
		return 0;
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return cfl_err_set(e, CFL_EIO, "cannot create directory '%s': %s", tmp,
			                   strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return cfl_err_set(e, CFL_EIO, "cannot create directory '%s': %s", tmp,
		                   strerror(errno));
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) != 0 ? -1 : 0;
}

int cfl__fs_rmtree(const char *path)
{
	if (!cfl__fs_exists(path))
		return 0;
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : CFL_EIO;
}

int cfl__fs_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int cfl__path_join(char *buf, size_t size, const char *a, const char *b)
{
	int n = snprintf(buf, size, "%s/%s", a, b);

	return (n < 0 || (size_t)n >= size) ? CFL_ETOOBIG : 0;
}
