/* libFuzzer target for approval files (cfl package): cfl_cert_approval_parse() on arbitrary
 * bytes: shape checks, certificate chain, signature. It must never crash, leak or hang; a
 * refusal always says why; an accepted approval has a root CA. */
#include "cfl/provision.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfl_cert_approval *a = NULL;
	struct cfl_err e = {0};

	if (cfl_cert_approval_parse((const char *)data, size, &a, &e) == 0) {
		if (cfl_cert_approval_root(a) == NULL)
			abort();
		cfl_cert_approval_free(a);
	} else if (e.msg[0] == '\0') {
		abort();
	}
	return 0;
}
