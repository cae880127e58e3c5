/* The source tree, for test programs that read files kept in it (data/, docs/, include/):
 * shared by test_dataset.c, test_trainer.c and test_proto.c. */
#ifndef CFL_TEST_SRC_TREE_H
#define CFL_TEST_SRC_TREE_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The source tree: $CFL_SRC (set by ctest), else derived from this file's path. */
static inline const char *src_dir(void)
{
	static char dir[PATH_MAX];
	const char *env = getenv("CFL_SRC");
	const char *cut;

	if (env != NULL && env[0] != '\0')
		return env;
	cut = strstr(__FILE__, "/tests/unit/");
	snprintf(dir, sizeof(dir), "%.*s", cut != NULL ? (int)(cut - __FILE__) : 1,
	         cut != NULL ? __FILE__ : ".");
	return dir;
}

#endif
