/* libFuzzer target for certificate request files (cfl cert request / approve):
 * cfl_cert_request_parse() on arbitrary bytes. It must never crash, leak or hang; a parsed
 * request keeps its promises: a name of 1..64 bytes, a known type, a CSR. */
#include "cfl/provision.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfl_cert_request *r = NULL;
	struct cfl_err e = {0};

	if (cfl_cert_request_parse((const char *)data, size, &r, &e) == 0) {
		if (r->name == NULL || strlen(r->name) == 0 || strlen(r->name) > 64 ||
		    r->csr == NULL || r->type > CFL_PT_ADMIN)
			abort();
		cfl_cert_request_free(r);
	} else if (e.msg[0] == '\0') {
		abort();
	}
	return 0;
}
