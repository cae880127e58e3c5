/* The hostile suite's plumbing: credentials, connections driven to a deadline, and the login
 * messages, crafted. */
#include "hostile.h"

#include "cfl/digest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void h_cat(char *buf, size_t size, const char *fmt, ...)
{
	size_t used = strnlen(buf, size);
	va_list ap;

	va_start(ap, fmt);
	if (used + 1 < size)
		vsnprintf(buf + used, size - used, fmt, ap);
	va_end(ap);
}

/* --- credentials ------------------------------------------------------------------------------ */

static int ident_load(struct h_ident *id, const char *prod, const char *name, char *err, size_t n)
{
	struct cfl_err e = {0};

	snprintf(id->name, sizeof(id->name), "%s", name);
	snprintf(id->cert_file, sizeof(id->cert_file), "%s/%s/startup/client.crt", prod, name);
	snprintf(id->key_file, sizeof(id->key_file), "%s/%s/startup/client.key", prod, name);
	if (cfl_pki_cert_load(id->cert_file, &id->cert, &e) != 0 ||
	    cfl_pki_key_load(id->key_file, &id->key, &e) != 0 ||
	    cfl_pki_cert_to_pem(id->cert, &id->pem, &id->pem_len, &e) != 0) {
		snprintf(err, n, "cannot load the credentials of '%s': %s", name, e.msg);
		return -1;
	}
	return 0;
}

void h_ident_release(struct h_ident *id)
{
	cfl_pki_key_free(id->key);
	cfl_pki_cert_free(id->cert);
	free(id->pem);
	cfl_tls_ctx_free(id->tls);
	memset(id, 0, sizeof(*id));
}

int h_ident_forge(struct h_env *e, struct h_ident *id, const char *cn, const char *role,
                  const struct cfl_pki_key *ca_key, const struct cfl_pki_cert *ca,
                  time_t not_before, int days, char *err, size_t n)
{
	struct cfl_pki_cert_req req = {.cn = cn,
	                               .org = "test",
	                               .role = role,
	                               .usage = CFL_PKI_USAGE_CLIENT,
	                               .days = days,
	                               .not_before = not_before};
	struct cfl_err ce = {0};
	unsigned k = e->n_forged++;

	memset(id, 0, sizeof(*id));
	snprintf(id->name, sizeof(id->name), "%s", cn);
	snprintf(id->cert_file, sizeof(id->cert_file), "%s/forged-%u.crt", e->tmp, k);
	snprintf(id->key_file, sizeof(id->key_file), "%s/forged-%u.key", e->tmp, k);
	if (cfl_pki_key_generate(CFL_KEY_P256, &id->key, &ce) != 0 ||
	    cfl_pki_cert_issue(ca_key != NULL ? ca_key : e->ca_key, ca != NULL ? ca : e->ca,
	                       id->key, &req, &id->cert, &ce) != 0 ||
	    cfl_pki_cert_to_pem(id->cert, &id->pem, &id->pem_len, &ce) != 0 ||
	    cfl_pki_cert_save(id->cert, id->cert_file, &ce) != 0 ||
	    cfl_pki_key_save(id->key, id->key_file, &ce) != 0) {
		snprintf(err, n, "cannot make a certificate for '%s': %s", cn, ce.msg);
		h_ident_release(id);
		return -1;
	}
	return 0;
}

/* The TLS context that presents `id` (mtls), or the kit's one without a certificate (tls). */
int h_ident_tls(struct h_env *e, struct h_ident *id, struct cfl_tls_ctx **out, char *why, size_t n)
{
	int mtls = e->cfg.mode == CFL_SEC_MTLS;
	struct h_ident *holder = mtls ? id : &e->site[0];
	struct cfl_tls_config tc = {.is_server = 0,
	                            .mode = e->cfg.mode,
	                            .cert_file = mtls ? id->cert_file : NULL,
	                            .key_file = mtls ? id->key_file : NULL,
	                            .ca_file = cfl_kitcfg_trust_file(&e->cfg)};
	struct cfl_err ce = {0};

	*out = NULL;
	if (e->cfg.mode == CFL_SEC_CLEAR)
		return 0;
	if (holder->tls == NULL && cfl_tls_ctx_new(&tc, &holder->tls, &ce) != 0) {
		snprintf(why, n, "cannot make a TLS context for '%s': %s", id->name, ce.msg);
		return -1;
	}
	*out = holder->tls;
	return 0;
}

static int make_tmp(struct h_env *e, char *err, size_t n)
{
	const char *base = getenv("TMPDIR");

	snprintf(e->tmp, sizeof(e->tmp), "%s/cfl-hostile.XXXXXX",
	         base != NULL && base[0] != '\0' ? base : "/tmp");
	if (mkdtemp(e->tmp) == NULL) {
		snprintf(err, n, "cannot make a temp folder: %s", strerror(errno));
		e->tmp[0] = '\0';
		return -1;
	}
	return 0;
}

int h_env_init(struct h_env *e, const char *prod, const char *const sites[H_SITES],
               const char *admin, const char *ca_key, char *err, size_t n)
{
	struct cfl_err ce = {0};
	char kit[PATH_MAX], key_path[PATH_MAX];

	snprintf(e->prod, sizeof(e->prod), "%s", prod);
	snprintf(kit, sizeof(kit), "%s/%s", prod, sites[0]);
	/* The CA key stays in the workspace's state/ folder, next to prod_NN/. */
	if (ca_key != NULL)
		snprintf(key_path, sizeof(key_path), "%s", ca_key);
	else
		snprintf(key_path, sizeof(key_path), "%s/../state/rootCA.key", prod);
	if (cfl_loop_new(&e->loop, &ce) != 0 || cfl_kitcfg_load(kit, 0, &e->cfg, &ce) != 0 ||
	    cfl_pki_cert_load(e->cfg.root_ca, &e->ca, &ce) != 0 ||
	    cfl_pki_key_load(key_path, &e->ca_key, &ce) != 0) {
		snprintf(err, n, "%s", ce.msg);
		return -1;
	}
	for (int i = 0; i < H_SITES; i++) {
		if (ident_load(&e->site[i], prod, sites[i], err, n) != 0)
			return -1;
	}
	if (ident_load(&e->admin, prod, admin, err, n) != 0)
		return -1;
	return make_tmp(e, err, n);
}

void h_env_release(struct h_env *e)
{
	char path[PATH_MAX + 32];

	for (int i = 0; i < H_SITES; i++)
		h_ident_release(&e->site[i]);
	h_ident_release(&e->admin);
	cfl_pki_key_free(e->ca_key);
	cfl_pki_cert_free(e->ca);
	free(e->server_pem);
	if (e->tmp[0] != '\0') {
		for (unsigned k = 0; k < e->n_forged; k++) {
			snprintf(path, sizeof(path), "%s/forged-%u.crt", e->tmp, k);
			unlink(path);
			snprintf(path, sizeof(path), "%s/forged-%u.key", e->tmp, k);
			unlink(path);
		}
		rmdir(e->tmp);
	}
	cfl_loop_free(e->loop);
}

/* --- connections ------------------------------------------------------------------------------ */

static struct h_msg *msg_copy(const struct cfl_frame *f)
{
	struct h_msg *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->type = f->type;
	m->flags = f->flags;
	m->id = f->id;
	m->ref = f->ref;
	for (size_t i = 0; i < f->n_headers && m->n < H_MAX_HDRS; i++, m->n++) {
		const struct cfl_header *h = &f->headers[i];

		m->key[m->n] = strndup(h->key, h->key_len);
		m->val[m->n] = calloc(1, h->val_len + 1);
		if (m->val[m->n] != NULL)
			memcpy(m->val[m->n], h->val, h->val_len);
	}
	m->body = malloc(f->body_len + 1);
	if (m->body != NULL) {
		memcpy(m->body, f->body, f->body_len);
		m->body[f->body_len] = '\0'; /* reasons are read as text */
		m->body_len = f->body_len;
	}
	return m;
}

void h_msg_free(struct h_msg *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->key[i]);
		free(m->val[i]);
	}
	free(m->body);
	free(m);
}

const char *h_msg_get(const struct h_msg *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++) {
		if (m->key[i] != NULL && m->val[i] != NULL && strcmp(m->key[i], key) == 0)
			return m->val[i];
	}
	return NULL;
}

static void cb_open(struct cfl_conn *c, void *user)
{
	struct h_conn *hc = user;

	hc->opened = 1;
	snprintf(hc->addr, sizeof(hc->addr), "%s", cfl_conn_local_addr(c));
}

static void cb_msg(struct cfl_conn *c, const struct cfl_frame *f, int more, void *user)
{
	struct h_conn *hc = user;
	struct h_msg *m, **pp;

	if (more)
		cfl_conn_cancel(c, f->id); /* nothing in this suite asks for a stream */
	if (hc->count_only) {
		hc->n_replies += f->type == CFL_FRAME_T_REPLY;
		return;
	}
	m = msg_copy(f);
	if (m == NULL)
		return;
	for (pp = &hc->in; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = m;
}

static void cb_close(struct cfl_conn *c, int code, const char *reason, void *user)
{
	struct h_conn *hc = user;

	(void)c;
	hc->closed = 1;
	hc->close_code = code;
	hc->c = NULL;
	snprintf(hc->close_reason, sizeof(hc->close_reason), "%s",
	         reason != NULL ? reason : cfl_strerror(code));
}

void h_pump(struct h_env *e, uint64_t ms, int (*stop)(void *), void *arg)
{
	uint64_t end = cfl_loop_now_ms(e->loop) + ms;

	while (stop == NULL || !stop(arg)) {
		uint64_t now = cfl_loop_now_ms(e->loop);

		if (now >= end)
			return;
		cfl_loop_run_once(e->loop, (int)(end - now < 20 ? end - now : 20));
	}
}

static int opened_or_closed(void *arg)
{
	const struct h_conn *hc = arg;

	return hc->opened || hc->closed;
}

int h_open(struct h_env *e, struct h_ident *as, struct h_conn **out, char *why, size_t n)
{
	struct h_conn *hc = calloc(1, sizeof(*hc));
	struct cfl_conn_opts o;
	struct cfl_err ce = {0};
	struct cfl_tls_ctx *tls;

	*out = NULL;
	if (hc == NULL || h_ident_tls(e, as, &tls, why, n) != 0) {
		free(hc);
		return CFL_ENOMEM;
	}
	hc->env = e;
	memset(&o, 0, sizeof(o));
	o.tls = tls;
	o.user = hc;
	o.connect_timeout_ms = H_WAIT_MS;
	o.cb.on_open = cb_open;
	o.cb.on_msg = cb_msg;
	o.cb.on_close = cb_close;
	if (cfl_conn_dial(e->loop, e->cfg.host, e->cfg.port, &o, &hc->c, &ce) != 0) {
		snprintf(why, n, "cannot dial: %s", ce.msg);
		free(hc);
		return CFL_ECONN;
	}
	h_pump(e, H_WAIT_MS + 500, opened_or_closed, hc);
	if (!hc->opened) {
		int rc = hc->closed ? CFL_ECLOSED : CFL_ETIMEDOUT;

		snprintf(why, n, "%s",
		         hc->closed ? hc->close_reason : "connection not open in time");
		h_close(hc);
		return rc;
	}
	*out = hc;
	return 0;
}

void h_close(struct h_conn *hc)
{
	if (hc == NULL)
		return;
	cfl_conn_free(hc->c);
	while (hc->in != NULL) {
		struct h_msg *m = hc->in;

		hc->in = m->next;
		h_msg_free(m);
	}
	free(hc);
}

void h_hdr(struct h_hdrs *h, const char *key, const char *val)
{
	if (h->n < H_MAX_HDRS)
		h->h[h->n++] =
		        (struct cfl_header){key, strlen(key), (const uint8_t *)val, strlen(val)};
}

void h_hdr_auth(struct h_hdrs *h, const char *name, const char *token, const char *sig)
{
	h_hdr(h, "client_name", name);
	h_hdr(h, "token", token);
	h_hdr(h, "token_signature", sig);
}

uint64_t h_request(struct h_conn *hc, const char *topic, const struct h_hdrs *h, const void *body,
                   size_t len)
{
	struct cfl_frame f;
	size_t k = 0;

	if (hc->c == NULL)
		return 0;
	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_REQUEST;
	f.id = cfl_conn_next_id(hc->c);
	f.headers[k++] = CFL_HDR("topic", topic);
	for (size_t i = 0; h != NULL && i < h->n && k < CFL_FRAME_MAX_HEADERS; i++)
		f.headers[k++] = h->h[i];
	f.n_headers = k;
	f.body = body;
	f.body_len = len;
	return cfl_conn_send(hc->c, &f) == 0 ? f.id : 0;
}

struct reply_wait {
	struct h_conn *hc;
	uint64_t id;
};

static struct h_msg *take_reply(struct h_conn *hc, uint64_t id)
{
	for (struct h_msg **pp = &hc->in; *pp != NULL; pp = &(*pp)->next) {
		struct h_msg *m = *pp;

		if (m->type == CFL_FRAME_T_REPLY && m->ref == id) {
			*pp = m->next;
			m->next = NULL;
			return m;
		}
	}
	return NULL;
}

static int reply_or_closed(void *arg)
{
	const struct reply_wait *w = arg;

	if (w->hc->closed)
		return 1;
	for (const struct h_msg *m = w->hc->in; m != NULL; m = m->next) {
		if (m->type == CFL_FRAME_T_REPLY && m->ref == w->id)
			return 1;
	}
	return 0;
}

int h_wait_reply(struct h_conn *hc, uint64_t id, uint64_t ms, struct h_msg **out)
{
	struct reply_wait w = {hc, id};

	*out = NULL;
	h_pump(hc->env, ms, reply_or_closed, &w);
	*out = take_reply(hc, id);
	if (*out != NULL)
		return 0;
	return hc->closed ? CFL_ECLOSED : CFL_ETIMEDOUT;
}

int h_judge(struct h_conn *hc, struct h_msg *m, char *how, size_t n)
{
	const char *status = h_msg_get(m, "status");

	if (!(m->flags & CFL_FRAME_F_ERROR)) {
		h_cat(how, n, "ACCEPTED: the server answered normally");
		h_msg_free(m);
		return 0;
	}
	h_cat(how, n, "%s: %s", status != NULL ? status : "error", (const char *)m->body);
	/* The gate and register log the reason they answer with; a refused challenge logs its
	 * own wording, so only its count is checked. */
	if (status != NULL && strcmp(status, "unauthenticated") == 0)
		h_expect_log(hc->env, 'R', hc->addr, (const char *)m->body);
	else if (status != NULL && strcmp(status, "bad_request") == 0)
		h_expect_log(hc->env, 'R', hc->addr, "*");
	h_msg_free(m);
	return 1;
}

int h_expect_reject(struct h_conn *hc, uint64_t id, char *how, size_t n)
{
	struct h_msg *m = NULL;
	int rc = id != 0 ? h_wait_reply(hc, id, H_WAIT_MS, &m) : (hc->closed ? CFL_ECLOSED : -1);

	if (rc == CFL_ECLOSED) {
		h_cat(how, n, "connection dropped: %s", hc->close_reason);
		return 1;
	}
	if (rc == CFL_ETIMEDOUT) {
		h_cat(how, n, "no answer within %d s", H_WAIT_MS / 1000);
		return 0;
	}
	if (rc != 0) {
		h_cat(how, n, "could not send the request");
		return 0;
	}
	return h_judge(hc, m, how, n);
}

/* --- the login messages ----------------------------------------------------------------------- */

void h_nonce(char hex[H_NONCE_HEX])
{
	uint8_t raw[(H_NONCE_HEX - 1) / 2];

	if (cfl_random(raw, sizeof(raw)) != 0)
		memset(raw, 0x5a, sizeof(raw));
	cfl_hex(raw, sizeof(raw), hex);
}

/* The signed bytes of docs/security.md: label, then up to three fields, each ended by a NUL. */
static size_t tbs(uint8_t *buf, size_t cap, const char *label, const char *a, const char *b,
                  const char *c)
{
	const char *part[4] = {label, a, b, c};
	size_t o = 0;

	for (int i = 0; i < 4; i++) {
		size_t len = part[i] != NULL ? strlen(part[i]) : 0;

		if (o + len + 1 > cap)
			return 0;
		if (len > 0)
			memcpy(buf + o, part[i], len);
		o += len;
		buf[o++] = '\0';
	}
	return o;
}

int h_sign(const struct cfl_pki_key *key, const char *label, const char *a, const char *b,
           const char *c, char *out, size_t size)
{
	uint8_t buf[2048], *sig = NULL;
	size_t len = tbs(buf, sizeof(buf), label, a, b, c), sig_len = 0;
	char *b64 = NULL;
	int rc = len == 0 ? CFL_ETOOBIG : cfl_pki_sign(key, buf, len, &sig, &sig_len, NULL);

	if (rc == 0 && cfl_base64_encode(sig, sig_len, &b64) != 0)
		rc = CFL_ENOMEM;
	if (rc == 0 && strlen(b64) >= size)
		rc = CFL_ETOOBIG;
	if (rc == 0)
		snprintf(out, size, "%s", b64);
	free(sig);
	free(b64);
	return rc;
}

/* The server proves who it is before anyone sends it a certificate (SPEC §5 step 1). */
static int check_proof(struct h_env *e, const struct h_msg *m, const char *nonce, char *why,
                       size_t n)
{
	const char *cn = h_msg_get(m, "server_cn"), *sig = h_msg_get(m, "signature");
	struct cfl_pki_cert *cert = NULL;
	uint8_t buf[2048], *raw = NULL;
	size_t len, raw_len = 0;
	char got[H_NAME_MAX] = "";
	int ok = 0;

	if (cn != NULL && sig != NULL &&
	    cfl_pki_cert_load_pem((const char *)m->body, m->body_len, &cert, NULL) == 0 &&
	    cfl_pki_cert_verify(e->ca, cert, 0, NULL) == 0 &&
	    cfl_pki_cert_cn(cert, got, sizeof(got)) == 0 && strcmp(got, e->cfg.identity) == 0 &&
	    strcmp(cn, e->cfg.identity) == 0 &&
	    (len = tbs(buf, sizeof(buf), "cfl-challenge", cn, nonce, NULL)) > 0 &&
	    cfl_base64_decode(sig, strlen(sig), &raw, &raw_len) == 0 &&
	    cfl_pki_verify(cert, buf, len, raw, raw_len, NULL) == 0)
		ok = 1;
	if (!ok)
		snprintf(why, n, "the server's challenge proof does not check out (cn '%s')", got);
	else if (e->server_pem == NULL && (e->server_pem = malloc(m->body_len + 1)) != NULL) {
		memcpy(e->server_pem, m->body, m->body_len + 1);
		e->server_pem_len = m->body_len;
	}
	free(raw);
	cfl_pki_cert_free(cert);
	return ok ? 0 : -1;
}

int h_challenge(struct h_conn *hc, const char *name, const char *kind, char snonce[H_NONCE_HEX],
                char *why, size_t n)
{
	char nonce[H_NONCE_HEX];
	struct h_hdrs h = {0};
	struct h_msg *m = NULL;
	const char *sn;
	uint64_t id;
	int rc;

	h_nonce(nonce);
	h_hdr(&h, "client_name", name);
	h_hdr(&h, "nonce", nonce);
	h_hdr(&h, "kind", kind);
	id = h_request(hc, "challenge", &h, NULL, 0);
	rc = id != 0 ? h_wait_reply(hc, id, H_WAIT_MS, &m) : CFL_ECLOSED;
	if (rc != 0) {
		snprintf(why, n, "challenge: %s",
		         rc == CFL_ECLOSED ? hc->close_reason : "no answer in time");
		return rc;
	}
	rc = -1;
	if (m->flags & CFL_FRAME_F_ERROR)
		snprintf(why, n, "challenge refused: %s", (const char *)m->body);
	else if (check_proof(hc->env, m, nonce, why, n) != 0)
		;
	else if ((sn = h_msg_get(m, "server_nonce")) == NULL || strlen(sn) != H_NONCE_HEX - 1)
		snprintf(why, n, "challenge reply without a server nonce");
	else {
		snprintf(snonce, H_NONCE_HEX, "%s", sn);
		rc = 0;
	}
	h_msg_free(m);
	return rc;
}

uint64_t h_register(struct h_conn *hc, const struct h_reg *r)
{
	char sig[H_SIG_MAX];
	struct h_hdrs h = {0};

	if (r->sig != NULL)
		snprintf(sig, sizeof(sig), "%s", r->sig);
	else if (h_sign(r->key, "cfl-register", r->name, r->nonce, r->project, sig, sizeof(sig)) !=
	         0)
		return 0;
	h_hdr(&h, "client_name", r->name);
	h_hdr(&h, "project", r->project);
	h_hdr(&h, "server_nonce", r->nonce);
	h_hdr(&h, "signature", sig);
	h_hdr(&h, "kind", r->kind);
	return h_request(hc, "register", &h, r->pem, r->pem_len);
}

int h_take_tokens(struct h_conn *hc, const char *name, const struct h_msg *reply)
{
	const char *t = h_msg_get(reply, "issued_token");
	const char *s = h_msg_get(reply, "issued_token_signature");
	const char *x = h_msg_get(reply, "issued_token_expiry");
	const char *st = h_msg_get(reply, "server_token");
	const char *ss = h_msg_get(reply, "server_token_signature");
	char *end = NULL;

	if ((reply->flags & CFL_FRAME_F_ERROR) || t == NULL || s == NULL || x == NULL ||
	    st == NULL || ss == NULL)
		return -1;
	errno = 0;
	hc->expiry = strtoll(x, &end, 10);
	if (errno != 0 || end == x || *end != '\0')
		return -1;
	snprintf(hc->name, sizeof(hc->name), "%s", name);
	snprintf(hc->token, sizeof(hc->token), "%s", t);
	snprintf(hc->sig, sizeof(hc->sig), "%s", s);
	snprintf(hc->srv_token, sizeof(hc->srv_token), "%s", st);
	snprintf(hc->srv_sig, sizeof(hc->srv_sig), "%s", ss);
	return 0;
}

int h_login(struct h_conn *hc, struct h_ident *id, const char *kind, char *why, size_t n)
{
	char snonce[H_NONCE_HEX];
	struct h_reg r = {id->name, hc->env->cfg.project, snonce,  kind,
	                  id->pem,  id->pem_len,          id->key, NULL};
	struct h_msg *m = NULL;
	uint64_t rid;
	int rc;

	if ((rc = h_challenge(hc, id->name, kind, snonce, why, n)) != 0)
		return rc;
	rid = h_register(hc, &r);
	rc = rid != 0 ? h_wait_reply(hc, rid, H_WAIT_MS, &m) : CFL_ECLOSED;
	if (rc != 0) {
		snprintf(why, n, "register of '%s': %s", id->name,
		         rc == CFL_ECLOSED ? hc->close_reason : "no answer in time");
		return rc;
	}
	rc = h_take_tokens(hc, id->name, m);
	if (rc != 0)
		snprintf(why, n, "honest register of '%s' refused: %s", id->name,
		         (m->flags & CFL_FRAME_F_ERROR) ? (const char *)m->body : "no tokens");
	h_msg_free(m);
	return rc;
}
