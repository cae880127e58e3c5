/* A connection's texts, allocated when there is something to say (a server holds ~19,000
 * connections, most of them idle): the dial target, the peer's certificate names, the close
 * and GOAWAY reasons; the TLS version and cipher are static strings of OpenSSL's. */
#include "net/conn_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* close_reason when its text could not be allocated. */
static const char oom_reason[] = "connection closed (out of memory for the reason)";

void cfl__conn_set_reason(struct cfl_conn *c, const char *fmt, ...)
{
	char *was = c->close_reason, *buf;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	n = n < 0 ? 0 : n < CFL_ERR_MSG_MAX ? n : CFL_ERR_MSG_MAX - 1;
	if ((buf = malloc((size_t)n + 1)) != NULL) {
		va_start(ap, fmt);
		vsnprintf(buf, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	c->close_reason = buf != NULL ? buf : (char *)oom_reason;
	/* After the new text is made: the old one may be among the arguments. */
	if (was != oom_reason)
		free(was);
}

const char *cfl__conn_host(const struct cfl_conn *c)
{
	return c->dial != NULL ? c->dial->host : "";
}

/* The names of the peer's certificate, kept in one allocation of their size. */
void cfl__conn_keep_peer_names(struct cfl_conn *c)
{
	struct cfl_tls_peer pn;
	size_t a, b, r;
	char *buf;

	if (cfl_tls_peer(c->tls, &pn) != 0)
		return;
	a = strlen(pn.cn) + 1;
	b = strlen(pn.org) + 1;
	r = strlen(pn.role) + 1;
	if ((buf = malloc(a + b + r)) == NULL)
		return; /* unnamed, as a peer without a certificate */
	memcpy(buf, pn.cn, a);
	memcpy(buf + a, pn.org, b);
	memcpy(buf + a + b, pn.role, r);
	free(c->peer_names);
	c->peer_names = buf;
	c->peer_org = buf + a;
	c->peer_role = buf + a + b;
}

void cfl__conn_free_texts(struct cfl_conn *c)
{
	if (c->close_reason != oom_reason)
		free(c->close_reason);
	free(c->goaway);
	free(c->peer_names);
	free(c->dial);
	c->close_reason = c->goaway = c->peer_names = NULL;
	c->dial = NULL;
}

const char *cfl_conn_peer_cn(const struct cfl_conn *c)
{
	return c->peer_names != NULL ? c->peer_names : "";
}

const char *cfl_conn_peer_org(const struct cfl_conn *c)
{
	return c->peer_names != NULL ? c->peer_org : "";
}

const char *cfl_conn_peer_role(const struct cfl_conn *c)
{
	return c->peer_names != NULL ? c->peer_role : "";
}

const char *cfl_conn_tls_version(const struct cfl_conn *c)
{
	return c->tls_version != NULL && c->tls_version[0] ? c->tls_version : "none";
}

const char *cfl_conn_tls_cipher(const struct cfl_conn *c)
{
	return c->tls_cipher != NULL && c->tls_cipher[0] ? c->tls_cipher : "none";
}
