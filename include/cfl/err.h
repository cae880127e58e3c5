/* cfl error codes and the error struct carried by setup paths.
 *
 * Functions return 0 or a negative CFL_E* code. Setup paths (configuration, provisioning,
 * TLS, PKI) also take a `struct cfl_err *` that receives a readable message. */
#ifndef CFL_ERR_H
#define CFL_ERR_H

#include <stddef.h>

/* X-macro: name, value, text. One table generates the enum and cfl_strerror(). */
#define CFL_ERRNO_MAP(X)                        \
	X(OK, 0, "success")                     \
	X(EINVAL, -1, "invalid argument")       \
	X(ENOMEM, -2, "out of memory")          \
	X(EIO, -3, "input/output error")        \
	X(EPARSE, -4, "parse error")            \
	X(ECONFIG, -5, "invalid configuration") \
	X(ECRYPTO, -6, "cryptographic failure") \
	X(EEXIST, -7, "already exists")         \
	X(ENOENT, -8, "not found")              \
	X(EVERIFY, -9, "verification failed")   \
	X(ETOOBIG, -10, "size limit exceeded")  \
	X(ETIMEDOUT, -11, "timed out")          \
	X(ECONN, -12, "connection failed")      \
	X(ECLOSED, -13, "connection closed")    \
	X(EPROTO, -14, "protocol error")        \
	X(EAUTH, -15, "authentication failed")  \
	X(EAGAIN, -16, "try again")             \
	X(EUNSUPP, -17, "not supported")        \
	X(EPERM, -18, "not permitted")

enum cfl_errno {
#define CFL__ERR_ENUM(name, val, text) CFL_##name = (val),
	CFL_ERRNO_MAP(CFL__ERR_ENUM)
#undef CFL__ERR_ENUM
};

/* Returns a static string describing `code`; never NULL. */
const char *cfl_strerror(int code);

#define CFL_ERR_MSG_MAX 1024

/* A readable error: `code` is a CFL_E* value, `msg` a lowercase message without a final
 * period, e.g. "cannot read 'project.yml': no such file". Embedded in the caller's frame. */
struct cfl_err {
	int code;
	char msg[CFL_ERR_MSG_MAX];
};

/* Sets `e` (if not NULL) to `code` and the formatted message; returns `code`. */
int cfl_err_set(struct cfl_err *e, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Prefixes the message already in `e` with the formatted text and ": "; returns e->code. */
int cfl_err_prefix(struct cfl_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resets `e` to no error. */
void cfl_err_clear(struct cfl_err *e);

#endif
