/* Error table and the readable error struct. */
#include "cfl/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *cfl_strerror(int code)
{
	switch (code) {
#define CFL__ERR_CASE(name, val, text) \
	case (val):                    \
		return (text);
		CFL_ERRNO_MAP(CFL__ERR_CASE)
#undef CFL__ERR_CASE
	default:
		return "unknown error";
	}
}

int cfl_err_set(struct cfl_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

int cfl_err_prefix(struct cfl_err *e, const char *fmt, ...)
{
	char head[CFL_ERR_MSG_MAX], old[CFL_ERR_MSG_MAX];
	va_list ap;

	if (e == NULL)
		return CFL_EINVAL;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	/* A long message is cut at the buffer's end: the head (the context) matters most. */
	if (snprintf(e->msg, sizeof(e->msg), "%s: %s", head, old) < 0)
		e->msg[0] = '\0';
	return e->code;
}

void cfl_err_clear(struct cfl_err *e)
{
	if (e == NULL)
		return;
	e->code = 0;
	e->msg[0] = '\0';
}
