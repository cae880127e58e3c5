/* The project loader's messages and typed values: every error and warning gets the
 * "FILE:LINE:COL: participant 'NAME': " prefix here, and every scalar is read as a string,
 * integer, host, path, connection security or key type here, with its rule in the message. */
#include "cfl/log.h"
#include "cfl/project.h"
#include "provision/project_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define MAX_WARNINGS 100 /* per load; a hostile file must not flood the log */

/* ---- messages ---------------------------------------------------------------------- */

/* A value from the file, made safe and short for a message; four live at a time. */
const char *cfl__pl_q(struct cfl__pl *ld, const char *s)
{
	char *b = ld->qbuf[ld->qi++ % ARRAY_LEN(ld->qbuf)];

	cfl__quote(b, sizeof(ld->qbuf[0]), s);
	return b;
}

/* The node's own file: an included one, or the project file. */
static void where(struct cfl__pl *ld, const struct cfl__ynode *at, char *buf, size_t size)
{
	const char *file = at->file != NULL ? at->file : ld->file;

	if (ld->pname != NULL)
		snprintf(buf, size, "%s:%d:%d: participant '%s': ", file, at->line, at->col,
		         cfl__pl_q(ld, ld->pname));
	else if (ld->pidx > 0)
		snprintf(buf, size, "%s:%d:%d: participant #%zu: ", file, at->line, at->col,
		         ld->pidx);
	else
		snprintf(buf, size, "%s:%d:%d: ", file, at->line, at->col);
}

/* Sets the error for the rule broken at `at`. Used through CFL__FAIL(), which also yields the
 * code, so that every caller can write `return CFL__FAIL(...)`. */
void cfl__pl_report(struct cfl__pl *ld, const struct cfl__ynode *at, const char *fmt, ...)
{
	char head[384], rule[640];
	va_list ap;

	where(ld, at, head, sizeof(head));
	va_start(ap, fmt);
	vsnprintf(rule, sizeof(rule), fmt, ap);
	va_end(ap);
	cfl_err_set(ld->e, CFL_ECONFIG, "%s%s", head, rule);
}

int cfl__pl_oom(struct cfl__pl *ld)
{
	cfl_err_set(ld->e, CFL_ENOMEM, "%s: out of memory", ld->file);
	return CFL_ENOMEM;
}

void cfl__pl_warn(struct cfl__pl *ld, const struct cfl__ynode *at, const char *fmt, ...)
{
	char head[384], rule[640];
	va_list ap;

	if (ld->warnings++ >= MAX_WARNINGS) {
		if (ld->warnings == MAX_WARNINGS + 1)
			CFL_WARN("%s: more than %d warnings, the rest are not shown", ld->file,
			         MAX_WARNINGS);
		return;
	}
	where(ld, at, head, sizeof(head));
	va_start(ap, fmt);
	vsnprintf(rule, sizeof(rule), fmt, ap);
	va_end(ap);
	CFL_WARN("%s%s", head, rule);
}

/* ---- typed values ------------------------------------------------------------------ */

const struct cfl__ynode *cfl__pl_find(const struct cfl__ynode *m, const char *key)
{
	for (size_t i = 0; i + 1 < m->n; i += 2)
		if (strcmp(m->kids[i]->str, key) == 0)
			return m->kids[i + 1];
	return NULL;
}

int cfl__pl_str(struct cfl__pl *ld, const char *key, const struct cfl__ynode *v)
{
	if (v->kind != CFL__Y_SCALAR)
		return CFL__FAIL(ld, v, "'%s' must be a string, not %s", key,
		                 cfl__yaml_kind_name(v));
	return 0;
}

int cfl__pl_dup(struct cfl__pl *ld, const char *key, const struct cfl__ynode *v, char **out)
{
	int rc = cfl__pl_str(ld, key, v);

	if (rc != 0)
		return rc;
	free(*out);
	*out = strdup(v->str);
	if (*out == NULL)
		return cfl__pl_oom(ld);
	return 0;
}

/* Decimal integer in lo..hi. Quoted digits are accepted too: a port is a port. */
int cfl__pl_int(struct cfl__pl *ld, const char *key, const struct cfl__ynode *v, int lo, int hi,
                int *out)
{
	const char *s;
	long long val = 0; /* at most 10 digits are read: no overflow */
	int neg = 0, digits = 0;

	if (v->kind != CFL__Y_SCALAR)
		return CFL__FAIL(ld, v, "'%s' must be an integer %d..%d, not %s", key, lo, hi,
		                 cfl__yaml_kind_name(v));
	s = v->str;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	for (; *s >= '0' && *s <= '9' && digits < 10; s++, digits++)
		val = val * 10 + (*s - '0');
	if (neg)
		val = -val;
	if (*s != '\0' || digits == 0 || digits >= 10 || val < lo || val > hi)
		return CFL__FAIL(ld, v, "invalid %s '%s' (allowed: an integer %d..%d)", key,
		                 cfl__pl_q(ld, v->str), lo, hi);
	*out = (int)val;
	return 0;
}

int cfl__pl_conn_sec(struct cfl__pl *ld, const struct cfl__ynode *v, enum cfl_conn_sec *out)
{
	int rc = cfl__pl_str(ld, "connection_security", v);

	if (rc == 0 && cfl_conn_sec_parse(v->str, out) != 0)
		rc = CFL__FAIL(ld, v,
		               "invalid connection_security '%s' (allowed: clear, tls, mtls)",
		               cfl__pl_q(ld, v->str));
	return rc;
}

int cfl__pl_key_type(struct cfl__pl *ld, const struct cfl__ynode *v, enum cfl_key_type *out)
{
	int rc = cfl__pl_str(ld, "key_type", v);

	if (rc == 0 && cfl_pki_key_type_parse(v->str, out) != 0)
		rc = CFL__FAIL(ld, v, "invalid key_type '%s' (allowed: ecdsa-p256, rsa-2048)",
		               cfl__pl_q(ld, v->str));
	return rc;
}

int cfl__pl_host(struct cfl__pl *ld, const char *key, const struct cfl__ynode *v, char **out)
{
	int rc = cfl__pl_str(ld, key, v);

	if (rc == 0 && !cfl__is_host(v->str))
		rc = CFL__FAIL(ld, v, "invalid %s '%s' (allowed: " CFL__HOST_RULE ")", key,
		               cfl__pl_q(ld, v->str));
	return rc != 0 ? rc : cfl__pl_dup(ld, key, v, out);
}

int cfl__pl_path(struct cfl__pl *ld, const char *key, const struct cfl__ynode *v, char **out)
{
	int rc = cfl__pl_str(ld, key, v);

	if (rc == 0 && v->len == 0)
		rc = CFL__FAIL(ld, v, "'%s' must be a file path, not empty", key);
	return rc != 0 ? rc : cfl__pl_dup(ld, key, v, out);
}
