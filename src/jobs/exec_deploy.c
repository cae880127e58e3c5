/* The executor's deployment of jobs and the site's own policy (SPEC §10, docs/security.md §12):
 * a job's bundle is received whole (bounded), its submitter's signature checked, then this
 * site's authorization and privacy policies decide, and only then is it unpacked. A refusal
 * answers `refused` with the site's reason and writes nothing. */
#define _DEFAULT_SOURCE
#include "executor_int.h"

#include "cfl/log.h"
#include "cfl/pki.h"
#include "cfl/proto.h"
#include "util/fs.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- job.deploy --------------------------------------------------------------------------- */

/* Unpacks the parsed bundle `b` (borrowed). */
static int unpack(struct cfl_executor *x, const char *job, json_t *b, struct cfl_err *e)
{
	json_t *files = json_object_get(b, "files"), *v, *cfg;
	char dir[PATH_MAX], path[PATH_MAX];
	const char *name;
	int rc = 0;

	if (!json_is_object(files) || json_object_size(files) > JOB_MAX_FILES)
		return cfl_err_set(e, CFL_ECONFIG, "bad job bundle");
	if (cfl__path_join(dir, sizeof(dir), x->dir, job) != 0 || cfl__fs_mkdirs(dir, 0700, e))
		rc = cfl_err_set(e, CFL_EIO, "cannot create the job folder");
	json_object_foreach (files, name, v) {
		uint8_t *raw = NULL;
		size_t raw_len = 0;

		if (rc != 0)
			break;
		/* The server checked the names at submission; check again, it costs nothing. */
		if (!cfl__job_safe_name(name) || !json_is_string(v) ||
		    cfl_base64_decode(json_string_value(v), json_string_length(v), &raw,
		                      &raw_len) != 0 ||
		    cfl__path_join(path, sizeof(path), dir, name) != 0) {
			rc = cfl_err_set(e, CFL_ECONFIG, "bad file '%s' in the job", name);
		} else {
			rc = cfl__fs_write_file(path, raw, raw_len, 0700, e);
		}
		if (rc == 0 && strcmp(name, "config.json") == 0) {
			cfg = json_loadb((const char *)raw, raw_len, 0, NULL);
			if (!json_is_object(cfg)) {
				json_decref(cfg); /* valid JSON, but not an object */
				rc = cfl_err_set(e, CFL_ECONFIG, "bad config.json");
			} else {
				json_object_set_new(x->configs, job, cfg);
			}
		}
		free(raw);
	}
	return rc;
}

int cfl__executor_unpack(struct cfl_executor *x, const char *job, const uint8_t *text, size_t len,
                         struct cfl_err *e)
{
	json_t *b = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, NULL);
	int rc = unpack(x, job, b, e);

	json_decref(b);
	return rc;
}

const struct cfl_job_signer *cfl__executor_submitter(struct cfl_executor *x, const char *job)
{
	for (struct deployed *d = x->deployed; d != NULL; d = d->next) {
		if (strcmp(d->job, job) == 0)
			return &d->who;
	}
	return NULL;
}

/* The job is no longer here: no task of it runs, no policy asks about it. */
void cfl__exec_forget(struct cfl_executor *x, const char *job)
{
	struct deployed **pp = &x->deployed, *d;

	json_object_del(x->configs, job);
	while ((d = *pp) != NULL) {
		if (strcmp(d->job, job) == 0) {
			*pp = d->next;
			free(d);
		} else {
			pp = &d->next;
		}
	}
}

static int remember(struct cfl_executor *x, const char *job, const struct cfl_job_signer *who,
                    const char *scope, struct cfl_err *e)
{
	struct deployed *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	snprintf(d->job, sizeof(d->job), "%s", job);
	snprintf(d->scope, sizeof(d->scope), "%s", scope);
	d->who = *who;
	d->next = x->deployed;
	x->deployed = d;
	return 0;
}

/* A JSON file of the bundle `b`, decoded (new reference) or NULL. */
static json_t *bundle_json(json_t *b, const char *name)
{
	json_t *v = json_object_get(json_object_get(b, "files"), name), *out = NULL;
	uint8_t *raw = NULL;
	size_t len = 0;

	if (json_is_string(v) &&
	    cfl_base64_decode(json_string_value(v), json_string_length(v), &raw, &len) == 0)
		out = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	return out;
}

/* Whether this site runs the job its submitter `who` signed (checked): its authorization
 * policy must grant the submitter submit_job, and byoc for a job that brings its own code (any
 * executor but the built-in trainer), and its privacy policy must define the job's scope.
 * CFL_EPERM with the site's reason in `e` ("site-b: byoc not granted to lead@a.org (lead:
 * o:site)"); the scope named by the job goes to `scope`. */
static int admit(struct cfl_executor *x, json_t *b, const struct cfl_job_signer *who, char *scope,
                 size_t scope_size, struct cfl_err *e)
{
	struct cfl_authz_who by = {who->name, who->org, who->role};
	json_t *config = bundle_json(b, "config.json"), *meta = bundle_json(b, "meta.json");
	const char *type =
	        json_string_value(json_object_get(json_object_get(config, "executor"), "type"));
	const char *name = json_string_value(json_object_get(meta, "scope"));
	struct cfl_privacy_scope *s = NULL;
	char why[CFL_ERR_MSG_MAX - 300] = "";
	int rc;

	if (!json_is_object(config)) {
		rc = cfl_err_set(e, CFL_ECONFIG, "the job has no usable config.json");
		goto out;
	}
	if (json_object_get(meta, "scope") != NULL && name == NULL) {
		rc = cfl_err_set(e, CFL_ECONFIG, "meta.json: \"scope\" is not a string");
		goto out;
	}
	rc = cfl_authz_check(x->authz, CFL_RIGHT_SUBMIT_JOB, &by, &by, x->org, why, sizeof(why));
	if (rc == 0 && (type == NULL || strcmp(type, "builtin") != 0))
		rc = cfl_authz_check(x->authz, CFL_RIGHT_BYOC, &by, &by, x->org, why, sizeof(why));
	if (rc == 0)
		rc = cfl_privacy_scope(x->privacy, name, &s, why, sizeof(why));
	if (rc != 0) {
		rc = cfl_err_set(e, CFL_EPERM, "%s: %s", x->site, why);
		goto out;
	}
	snprintf(scope, scope_size, "%s", name != NULL ? name : "");
out:
	cfl_privacy_scope_free(s);
	json_decref(config);
	json_decref(meta);
	return rc;
}
/* The site's CRL (local/crl.pem), read again before each job's signature is checked: a job
 * signed by an admin revoked since, and deployed later, is refused here too. A missing file
 * leaves the CRLs in force; a bad one is logged and they stay. */
static void refresh_crl(struct cfl_executor *x)
{
	char path[PATH_MAX];
	struct cfl_err e = {0};
	int rc;

	if (x->local[0] == '\0' || cfl__path_join(path, sizeof(path), x->local, "crl.pem") != 0)
		return;
	rc = cfl_pki_trust_set_crl(x->trust, path, &e);
	if (rc != 0 && rc != CFL_ENOENT)
		CFL_WARN("CRL '%s' not loaded for job signatures, the one in force stays: %s", path,
		         e.msg);
}

int cfl__executor_deploy(struct cfl_executor *x, const char *job, const uint8_t *text, size_t len,
                         struct cfl_err *e)
{
	json_t *b = NULL;
	struct cfl_job_signer who;
	char scope[128] = "";
	json_error_t je;
	int rc;

	/* A redeployment replaces what this site had of the job, or, refused, removes it. */
	cfl__exec_forget(x, job);
	if (len > CFL_JOB_BUNDLE_MAX)
		return cfl_err_set(e, CFL_ETOOBIG, "the job is larger than %u bytes",
		                   CFL_JOB_BUNDLE_MAX);
	b = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &je);
	if (b == NULL)
		return cfl_err_set(e, CFL_EPARSE, "not a job bundle: line %d: %s", je.line,
		                   je.text);
	/* Nothing of the job is written or read before its submitter's signature holds: neither
	 * the server nor anyone who changed the stored job can make this site run it. */
	refresh_crl(x);
	rc = cfl__manifest_verify_json(b, x->trust, 0, &who, e);
	/* Then this site's decision, still before anything is written (SPEC §10). */
	if (rc == 0)
		rc = admit(x, b, &who, scope, sizeof(scope), e);
	if (rc == 0)
		rc = unpack(x, job, b, e);
	if (rc == 0)
		rc = remember(x, job, &who, scope, e);
	if (rc == 0)
		CFL_INFO("job %s signed by %s (%s, %s)", job, who.name, who.org, who.role);
	else
		cfl__exec_forget(x, job);
	json_decref(b);
	return rc;
}

/* One job.deploy request's bundle as it arrives: each request its own, as the hub keeps a sink
 * per stream (a second deployment while one streams must not mix into it). */
struct incoming {
	struct incoming *next;
	struct cfl_executor *x;
	uint64_t req;
	char job[64];
	struct inbuf in;
};

static void incoming_drop(struct incoming *in)
{
	struct incoming **pp = &in->x->incoming;

	while (*pp != NULL && *pp != in)
		pp = &(*pp)->next;
	if (*pp == in)
		*pp = in->next;
	cfl__inbuf_release(&in->in);
	free(in);
}

void cfl__exec_incoming_free(struct cfl_executor *x)
{
	while (x->incoming != NULL)
		incoming_drop(x->incoming);
}

static void deploy_data(void *st, const uint8_t *d, size_t n)
{
	struct incoming *in = st;

	cfl__inbuf_add(&in->in, d, n, CFL_JOB_BUNDLE_MAX);
}

static void deploy_end(void *st, int status, const char *reason)
{
	struct incoming *in = st;
	struct cfl_executor *x = in->x;
	struct cfl_peer *p = cfl_msg_hub_find(x->hub, "server");
	struct cfl_err e = {0};
	int rc;

	if (status != 0 || in->in.failed) {
		CFL_WARN("job %s: bundle not received: %s", in->job,
		         reason ? reason : "too large (or out of memory)");
		/* Too large: the server learns why at once rather than at its timeout. */
		if (status == 0 && p != NULL)
			cfl_peer_reply_error(p, in->req, "bad_job", "the job bundle is too large");
	} else if ((rc = cfl__executor_deploy(x, in->job, in->in.p, in->in.len, &e)) != 0) {
		/* This site's decision (its policy, or a signature that does not hold) is final for
		 * the job; anything else may be tried again. */
		CFL_WARN("job %s %s: %s", in->job,
		         rc == CFL_EPERM || rc == CFL_EVERIFY ? "refused" : "not deployed", e.msg);
		if (p != NULL)
			cfl_peer_reply_error(p, in->req,
			                     rc == CFL_EPERM || rc == CFL_EVERIFY
			                             ? CFL_STATUS_REFUSED
			                             : "bad_job",
			                     e.msg);
	} else {
		CFL_INFO("job %s deployed", in->job);
		if (p != NULL)
			cfl_peer_reply(p, in->req, NULL, 0, NULL, 0);
	}
	incoming_drop(in);
}

void cfl__exec_on_deploy(struct cfl_peer *p, const struct cfl_frame *f, int more,
                         struct cfl_msg_sink *sink, void *arg)
{
	struct cfl_executor *x = arg;
	struct cfl__job_hdrs h;
	struct incoming *in;

	if (!cfl__exec_from_server(p, f))
		return;
	if (cfl__executor_hdrs(f, 0, &h) != 0) {
		/* One answer; a streamed body stops there (no sink: the hub cancels it). */
		cfl_peer_reply_error(p, f->id, "bad_job", "bad job id");
		return;
	}
	in = calloc(1, sizeof(*in));
	if (in == NULL) {
		cfl_peer_reply_error(p, f->id, "no_memory", "out of memory");
		return;
	}
	in->x = x;
	in->req = f->id;
	memcpy(in->job, h.job, sizeof(in->job));
	in->next = x->incoming;
	x->incoming = in;
	cfl__inbuf_add(&in->in, f->body, f->body_len, CFL_JOB_BUNDLE_MAX);
	if (more)
		*sink = (struct cfl_msg_sink){deploy_data, deploy_end, in};
	else
		deploy_end(in, 0, NULL);
}

/* The site's authorization and privacy policies from its local/ folder (docs/security.md). */
int cfl__exec_load_policy(struct cfl_executor *x, struct cfl_authz **authz,
                          struct cfl_privacy **privacy, struct cfl_err *e)
{
	int rc;

	*authz = NULL;
	*privacy = NULL;
	if (x->local[0] == '\0')
		return cfl_authz_default(authz) == 0 ? 0
		                                     : cfl_err_set(e, CFL_ENOMEM, "out of memory");
	if ((rc = cfl_authz_load(x->local, authz, e)) != 0)
		return cfl_err_prefix(e, "cannot load the site's authorization policy");
	if ((rc = cfl_privacy_load(x->local, privacy, e)) != 0) {
		cfl_authz_free(*authz);
		cfl_privacy_free(*privacy);
		*authz = NULL;
		*privacy = NULL;
		return cfl_err_prefix(e, "cannot load the site's privacy policy");
	}
	/* A scope with an unknown filter or a bad argument refuses the jobs that name it (with
	 * the problem as the reason), not the site's other jobs: said once here. */
	if (cfl_privacy_validate(*privacy, e) != 0)
		CFL_WARN("privacy.json: %s", e->msg);
	CFL_INFO("site policy: authorization from '%s'%s", cfl_authz_source(*authz),
	         *privacy != NULL ? ", privacy.json" : ", no privacy.json");
	return 0;
}

int cfl_executor_reload(struct cfl_executor *x, struct cfl_err *e)
{
	struct cfl_authz *a;
	struct cfl_privacy *p;
	int rc = cfl__exec_load_policy(x, &a, &p, e);

	if (rc != 0)
		return rc;
	cfl_authz_free(x->authz);
	cfl_privacy_free(x->privacy);
	x->authz = a;
	x->privacy = p;
	return 0;
}
