/* libFuzzer target for CRL loading (cfl_pki_trust_set_crl_pem), the path a kit's
 * local/crl.pem takes. A trust of a fixed CA is made once; every input is offered as its CRL.
 * It must never crash, leak or hang; a refusal says why and leaves the CRLs as they were
 * (here: none, so the CA's own leaf stays unrevoked). */
#include "fuzz_pki.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fuzz_pki pki;
static struct cfl_pki_trust *trust;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfl_err e = {0};

	if (trust == NULL) {
		fuzz_pki_make(&pki, "admin@org", "project_admin", NULL);
		if (cfl_pki_trust_new(pki.ca, NULL, 0, &trust, NULL) != 0)
			abort();
	}
	if (cfl_pki_trust_set_crl_pem(trust, (const char *)data, size, &e) == 0) {
		/* Accepted: a CRL of this CA; reset for the next input with an empty one. */
		char *pem = NULL;
		size_t len = 0;

		(void)cfl_pki_trust_is_revoked(trust, pki.admin);
		if (cfl_pki_crl_create(pki.ca_key, pki.ca, NULL, 0, 1, 1, 0, &pem, &len, NULL) !=
		            0 ||
		    cfl_pki_trust_set_crl_pem(trust, pem, len, NULL) != 0)
			abort();
		free(pem);
	} else if (e.msg[0] == '\0' || cfl_pki_trust_is_revoked(trust, pki.admin)) {
		abort();
	}
	return 0;
}
