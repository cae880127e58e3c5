/* The files of the request/approve/package flow (docs/credentials.md): parsing and checking. */
#ifndef CFL_PROVISION_CERTFILE_H
#define CFL_PROVISION_CERTFILE_H

#include "cfl/provision.h"

#include <jansson.h>

#define CFL__REQUEST_FMT        "cfl-cert-request/1"
#define CFL__APPROVAL_FMT       "cfl-approval/1"
#define CFL__APPROVAL_FILES_MAX 64

/* The canonical text an approval's signature covers (see certfile.c). */
int cfl__approval_canonical(json_t *root, char **out, size_t *len, struct cfl_err *e);

struct cfl_cert_request;
/* The request asks for exactly what the project file says of its participant (*out). */
int cfl__check_request(const struct cfl_project *p, const struct cfl_cert_request *r,
                       const struct cfl_participant **out, struct cfl_err *e);

#endif
