/* The server's credentials and the project's trust: read at start, again on reload (renewal:
 * live sessions go on, new logins see the new certificate), and the CRLs in force, whose
 * revoked identities lose their sessions and connections as soon as a CRL is loaded. */
#include "auth_srv.h"

#include "cfl/conn.h"
#include "cfl/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXPIRY_WARN_S (30 * 86400) /* warn this long before a certificate expires */
#define WARNED_MAX    4096         /* certificates remembered as warned about */

/* A certificate whose coming expiry was logged: its holder and notAfter. */
struct warned {
	char name[CFL_AUTH_NAME_MAX];
	int64_t not_after;
};

/* One set of credentials, read whole before anything is replaced. */
struct creds {
	struct cfl_pki_key *key;
	struct cfl_pki_cert *cert;
	struct cfl_pki_trust *trust;
	char *pem;
	size_t pem_len;
};

static void creds_free(struct creds *c)
{
	cfl_pki_key_free(c->key);
	cfl_pki_cert_free(c->cert);
	cfl_pki_trust_free(c->trust);
	free(c->pem);
	memset(c, 0, sizeof(*c));
}

/* The project's trust: the anchor, the issuing chain of `cert_file`, the CRLs of `crl_file`
 * (missing: none). */
static int trust_load(const char *root_ca, const char *cert_file, const char *crl_file,
                      struct cfl_pki_trust **out, struct cfl_err *e)
{
	int rc = cfl_pki_trust_load(root_ca, cert_file, out, e);

	if (rc != 0 || crl_file == NULL)
		return rc;
	rc = cfl_pki_trust_set_crl(*out, crl_file, e);
	if (rc == CFL_ENOENT)
		return 0;
	if (rc != 0) {
		cfl_pki_trust_free(*out);
		*out = NULL;
	}
	return rc;
}

/* Key, certificate (matching the key, chaining to the anchor) and trust. */
static int creds_load(struct creds *c, const char *key_file, const char *cert_file,
                      const char *root_ca, const char *crl_file, int renewal, struct cfl_err *e)
{
	int rc;

	if ((rc = cfl_pki_key_load(key_file, &c->key, e)) != 0 ||
	    (rc = cfl_pki_cert_load(cert_file, &c->cert, e)) != 0 ||
	    (rc = trust_load(root_ca, cert_file, crl_file, &c->trust, e)) != 0 ||
	    (rc = cfl_pki_cert_to_pem(c->cert, &c->pem, &c->pem_len, e)) != 0)
		return rc;
	if (!cfl_pki_cert_matches_key(c->cert, c->key))
		return cfl_err_set(e, CFL_ECRYPTO,
		                   "the key in '%s' does not match the certificate in '%s'",
		                   key_file, cert_file);
	if (renewal && (rc = cfl_pki_trust_verify(c->trust, c->cert, 0, e)) != 0)
		return cfl_err_prefix(e, "the certificate in '%s' is not usable", cert_file);
	return 0;
}

static void creds_take(struct cfl_auth_server *s, struct creds *c)
{
	struct creds old = {s->key, s->cert, s->trust, s->cert_pem, s->cert_pem_len};

	s->key = c->key;
	s->cert = c->cert;
	s->trust = c->trust;
	s->cert_pem = c->pem;
	s->cert_pem_len = c->pem_len;
	memset(c, 0, sizeof(*c));
	creds_free(&old);
}

static int set_paths(struct cfl_auth_server *s, const struct cfl_auth_server_cfg *cfg,
                     struct cfl_err *e)
{
	if (snprintf(s->root_ca, sizeof(s->root_ca), "%s", cfg->root_ca) >=
	            (int)sizeof(s->root_ca) ||
	    snprintf(s->cert_file, sizeof(s->cert_file), "%s", cfg->cert_file) >=
	            (int)sizeof(s->cert_file))
		return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s'", cfg->cert_file);
	return 0;
}

int cfl__auth_server_creds_load(struct cfl_auth_server *s, const struct cfl_auth_server_cfg *cfg,
                                struct cfl_err *e)
{
	struct creds c = {0};
	int rc = set_paths(s, cfg, e);

	if (rc == 0)
		rc = creds_load(&c, cfg->key_file, cfg->cert_file, cfg->root_ca, cfg->crl_file, 0,
		                e);
	if (rc == 0)
		creds_take(s, &c);
	creds_free(&c);
	return rc;
}

void cfl__auth_server_creds_free(struct cfl_auth_server *s)
{
	struct creds c = {s->key, s->cert, s->trust, s->cert_pem, s->cert_pem_len};

	creds_free(&c);
	s->key = NULL;
	s->cert = NULL;
	s->trust = NULL;
	s->cert_pem = NULL;
	free(s->warned);
	s->warned = NULL;
}

int cfl_auth_server_reload(struct cfl_auth_server *s, const struct cfl_auth_server_cfg *cfg,
                           struct cfl_err *e)
{
	struct creds c = {0};
	int rc = creds_load(&c, cfg->key_file, cfg->cert_file, cfg->root_ca, cfg->crl_file, 1, e);

	if (rc == 0 && (rc = set_paths(s, cfg, e)) == 0) {
		creds_take(s, &c);
		cfl_auth_server_sweep(s);
	}
	creds_free(&c);
	return rc;
}

int cfl_auth_server_set_crl(struct cfl_auth_server *s, const char *crl_file, struct cfl_err *e)
{
	struct cfl_pki_trust *t = NULL;
	int rc = trust_load(s->root_ca, s->cert_file, crl_file, &t, e);

	if (rc != 0)
		return rc;
	cfl_pki_trust_free(s->trust);
	s->trust = t;
	return cfl_auth_server_sweep(s);
}

int cfl_auth_server_sweep(struct cfl_auth_server *s)
{
	struct session *x, *next;
	char serial[64];
	int n = 0;

	for (x = s->sessions; x != NULL; x = next) {
		next = x->next;
		if (x->cert == NULL || !cfl_pki_trust_is_revoked(s->trust, x->cert))
			continue;
		if (cfl_pki_cert_serial(x->cert, serial, sizeof(serial)) != 0)
			snprintf(serial, sizeof(serial), "?");
		CFL_WARN("%s%s: certificate revoked (serial %s): session ended%s",
		         x->kind == CFL_AUTH_ADMIN ? "admin " : "", x->name, serial,
		         x->peer != NULL ? ", connection closed" : "");
		if (x->peer != NULL)
			cfl_conn_close(cfl_peer_conn(x->peer), "certificate revoked");
		cfl__auth_end_session(s, x);
		n++;
	}
	return n;
}

/* 1 if `name`'s certificate ending at `not_after` was warned about; else remembers it. */
static int already_warned(struct cfl_auth_server *s, const char *name, int64_t not_after)
{
	struct warned *w;

	for (size_t i = 0; i < s->n_warned; i++) {
		if (s->warned[i].not_after == not_after && strcmp(s->warned[i].name, name) == 0)
			return 1;
	}
	if (s->warned == NULL && (s->warned = calloc(WARNED_MAX, sizeof(*s->warned))) == NULL)
		return 0;
	w = &s->warned[s->n_warned < WARNED_MAX ? s->n_warned++ : (size_t)not_after % WARNED_MAX];
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->not_after = not_after;
	return 0;
}

void cfl__auth_expiry_check(struct cfl_auth_server *s, struct session *x)
{
	time_t nb, na;
	int64_t left;
	char when[32];
	struct tm tm;

	if (x->cert == NULL || cfl_pki_cert_validity(x->cert, &nb, &na) != 0)
		return;
	x->cert_not_after = (int64_t)na;
	left = (int64_t)na - (int64_t)time(NULL);
	if (left > EXPIRY_WARN_S || already_warned(s, x->name, x->cert_not_after))
		return;
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&na, &tm));
	CFL_WARN("%s's certificate expires on %s (in %" PRId64 " days): renew it (cfl cert "
	         "approve, then SIGHUP the participant)",
	         x->name, when, left / 86400);
}
