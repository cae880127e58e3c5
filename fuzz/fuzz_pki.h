/* Credentials for the fuzz targets that deploy jobs: a project root CA (a site needs one to
 * check job signatures) and an admin it issued, made once per process with P-256 keys (cheap).
 * Everything is static inline so that each target takes what it uses. */
#ifndef CFL_FUZZ_PKI_H
#define CFL_FUZZ_PKI_H

#include "cfl/pki.h"

#include <stdlib.h>

struct fuzz_pki {
	struct cfl_pki_key *ca_key, *admin_key;
	struct cfl_pki_cert *ca, *admin;
	struct cfl_pki_trust *trust; /* the CA as the project's anchor and issuer */
};

/* Makes the CA and an admin (CN `admin`, O "org", role `role`), and writes the CA's
 * certificate to `ca_path` (when not NULL). Aborts when it cannot. */
static inline void fuzz_pki_make(struct fuzz_pki *p, const char *admin, const char *role,
                                 const char *ca_path)
{
	struct cfl_pki_cert_req ca = {.cn = "fuzz", .usage = CFL_PKI_USAGE_CA, .days = 30};
	struct cfl_pki_cert_req ad = {
	        .cn = admin, .org = "org", .role = role, .usage = CFL_PKI_USAGE_CLIENT, .days = 30};

	if (cfl_pki_key_generate(CFL_KEY_P256, &p->ca_key, NULL) != 0 ||
	    cfl_pki_ca_create(p->ca_key, &ca, &p->ca, NULL) != 0 ||
	    cfl_pki_key_generate(CFL_KEY_P256, &p->admin_key, NULL) != 0 ||
	    cfl_pki_cert_issue(p->ca_key, p->ca, p->admin_key, &ad, &p->admin, NULL) != 0 ||
	    cfl_pki_trust_new(p->ca, NULL, 0, &p->trust, NULL) != 0 ||
	    (ca_path != NULL && cfl_pki_cert_save(p->ca, ca_path, NULL) != 0))
		abort();
}

static inline void fuzz_pki_release(struct fuzz_pki *p)
{
	cfl_pki_key_free(p->ca_key);
	cfl_pki_key_free(p->admin_key);
	cfl_pki_cert_free(p->ca);
	cfl_pki_cert_free(p->admin);
	cfl_pki_trust_free(p->trust);
}

#endif
