/* Shared by the test programs that check, in their group teardown, that no file descriptor
 * leaked: the count of this process's open descriptors is noted at the start and compared at
 * the end (included by conn_fixture.h and msg_fixture.h); and the count of a folder's entries.
 *
 * Everything is static inline so that each test program takes what it uses. */
#ifndef CFL_TEST_FD_FIXTURE_H
#define CFL_TEST_FD_FIXTURE_H

#include <dirent.h>

static int fds_at_start;

/* Entries of the folder `dir` but "." and "..", or -1 if it cannot be read. */
static inline int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Open file descriptors of this process: equal before and after the tests, or one leaked. */
static inline int open_fds(void)
{
	return dir_entries("/proc/self/fd");
}

/* Notes the count at the start of the group. */
static inline void fds_note(void)
{
	fds_at_start = open_fds();
}

/* 0 if as many are open as at the start, else -1 with the counts printed: for teardowns. */
static inline int fds_check(void)
{
	int now = open_fds();

	if (now != fds_at_start) {
		print_error("file descriptors leaked: %d open at the start, %d now\n", fds_at_start,
		            now);
		return -1;
	}
	return 0;
}

#endif
