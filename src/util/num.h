/* Numbers read from the wire or from files: strict decimal, bounded, or finite. A value that is
 * not exactly a number in range is refused, never read as 0 or cut (STYLE: no unchecked strtol). */
#ifndef CFL_UTIL_NUM_H
#define CFL_UTIL_NUM_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* Plain decimal digits (no sign, no space), at most `max`. Returns 0, or -1 and *out unchanged. */
static inline int cfl__num_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > (max - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* A whole string that strtod reads as a finite number. */
static inline int cfl__num_finite(const char *s, double *out)
{
	char *end;
	double v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (*end != '\0' || errno == ERANGE || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

#endif
