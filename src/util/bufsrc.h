/* A memory buffer read in order by a stream's read function (cfl_conn_read_fn). */
#ifndef CFL_UTIL_BUFSRC_H
#define CFL_UTIL_BUFSRC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Copies the next min(len, left) bytes of p[0..n) from *off into buf; returns the count. */
static inline size_t cfl__buf_take(const void *p, size_t n, size_t *off, uint8_t *buf, size_t len)
{
	size_t k = n - *off < len ? n - *off : len;

	memcpy(buf, (const uint8_t *)p + *off, k);
	*off += k;
	return k;
}

#endif
