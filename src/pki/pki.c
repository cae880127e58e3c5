/* Shared PKI helpers: OpenSSL error reporting and key type names. */
#include "pki/pki_int.h"

#include <openssl/bio.h>
#include <openssl/err.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int cfl__pki_openssl_err(struct cfl_err *e, int code, const char *fmt, ...)
{
	const char *sep = ": ";
	unsigned long err;
	va_list ap;
	size_t used;

	if (e == NULL) {
		ERR_clear_error();
		return code;
	}
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	/* Drain the whole queue even when the message is full, so that stale entries never
	 * show up in a later, unrelated error. */
	while ((err = ERR_get_error()) != 0) {
		char one[256];

		used = strlen(e->msg);
		ERR_error_string_n(err, one, sizeof(one));
		snprintf(e->msg + used, sizeof(e->msg) - used, "%s%s", sep, one);
		sep = "; ";
	}
	return code;
}

int cfl_pki_key_type_parse(const char *s, enum cfl_key_type *out)
{
	static const struct {
		const char *name;
		enum cfl_key_type type;
	} names[] = {
	        {"ecdsa-p256", CFL_KEY_P256}, {"p256", CFL_KEY_P256},
	        {"ec", CFL_KEY_P256},         {"rsa-2048", CFL_KEY_RSA2048},
	        {"rsa2048", CFL_KEY_RSA2048}, {"rsa", CFL_KEY_RSA2048},
	};

	if (s == NULL || out == NULL)
		return CFL_EINVAL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*out = names[i].type;
			return 0;
		}
	}
	return CFL_EINVAL;
}

const char *cfl_pki_key_type_name(enum cfl_key_type t)
{
	switch (t) {
	case CFL_KEY_P256:
		return "ecdsa-p256";
	case CFL_KEY_RSA2048:
		return "rsa-2048";
	default:
		return "unknown";
	}
}

int cfl__pki_bio_text(BIO *bio, const char *what, char **out, size_t *len, struct cfl_err *e)
{
	char *data = NULL, *copy;
	long n = BIO_get_mem_data(bio, &data);

	copy = malloc((size_t)n + 1);
	if (copy == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "cannot encode %s: out of memory", what);
	if (n > 0)
		memcpy(copy, data, (size_t)n);
	copy[n] = '\0';
	*out = copy;
	*len = (size_t)n;
	return 0;
}
