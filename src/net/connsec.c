/* Connection security names: "clear", "tls", "mtls" (SPEC §4), as project files and kit
 * configs spell them. */
#include "cfl/tls.h"

#include <stddef.h>
#include <strings.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

int cfl_conn_sec_parse(const char *s, enum cfl_conn_sec *out)
{
	static const enum cfl_conn_sec vals[] = {CFL_SEC_CLEAR, CFL_SEC_TLS, CFL_SEC_MTLS};

	for (size_t i = 0; i < ARRAY_LEN(vals); i++) {
		if (strcasecmp(s, cfl_conn_sec_name(vals[i])) == 0) {
			*out = vals[i];
			return 0;
		}
	}
	return CFL_EINVAL;
}

const char *cfl_conn_sec_name(enum cfl_conn_sec s)
{
	switch (s) {
	case CFL_SEC_CLEAR:
		return "clear";
	case CFL_SEC_TLS:
		return "tls";
	case CFL_SEC_MTLS:
		return "mtls";
	case CFL_SEC_UNSET:
	default:
		return "unset";
	}
}
