/* The start of a job's FedAvg run: its sites, the bound on each site's weight, and its initial
 * model: the built-in trainer's, a file of the job, the last saved one (a resumed job), or
 * (executor.initial_model "from_site") the weights a site's client_api script gives, asked
 * of the job's sites in their sorted order before round 1 (task.get_weights). */
#include "fedavg_int.h"

#include "cfl/log.h"
#include "cfl/model.h"
#include "cfl/pki.h"
#include "cfl/proto.h"
#include "cfl/trainer.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_FILE "initial_model.safetensors"
#define INIT_MAX     (CFL_JOB_BUNDLE_MAX * 64ull) /* the weights' bytes */

static const char *str_or(const json_t *v, const char *dflt)
{
	const char *s = json_string_value(v);

	return s != NULL ? s : dflt;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sites of the run: the job's list, or (for "@ALL") the clients logged in now. */
static int choose_sites(struct cfl_jobs *j, struct job *jb, struct cfl_err *e)
{
	json_t *sites = json_object_get(jb->config, "sites");
	struct cfl_auth_session_info *v;
	size_t n, i;

	if (jb->n_sites > 0)
		return 0; /* resumed: keep the original assignment */
	if (json_is_array(sites) && json_array_size(sites) > 0 &&
	    strcmp(str_or(json_array_get(sites, 0), ""), "@ALL") != 0) {
		n = json_array_size(sites) < JOB_MAX_SITES ? json_array_size(sites) : JOB_MAX_SITES;
		jb->sites = calloc(n, sizeof(char *));
		for (i = 0; jb->sites != NULL && i < n; i++)
			jb->sites[jb->n_sites++] = strdup(str_or(json_array_get(sites, i), ""));
	} else {
		/* Every client session, connected or not: the count first, then the copy. */
		n = cfl_auth_server_sessions(j->auth, CFL_AUTH_CLIENT, NULL, 0);
		n = n < JOB_MAX_SITES ? n : JOB_MAX_SITES;
		v = n ? calloc(n, sizeof(*v)) : NULL;
		if (v == NULL || cfl_auth_server_sessions(j->auth, CFL_AUTH_CLIENT, v, n) < n)
			n = 0;
		jb->sites = n ? calloc(n, sizeof(char *)) : NULL;
		for (i = 0; jb->sites != NULL && i < n; i++) {
			if (v[i].connected)
				jb->sites[jb->n_sites++] = strdup(v[i].name);
		}
		free(v);
	}
	if (jb->n_sites == 0 || (int)jb->n_sites < jb->min_clients) {
		for (i = 0; i < jb->n_sites; i++)
			free(jb->sites[i]);
		free(jb->sites);
		jb->sites = NULL;
		jb->n_sites = 0;
		return cfl_err_set(e, CFL_EAGAIN, "not enough sites yet");
	}
	qsort(jb->sites, jb->n_sites, sizeof(char *), cmp_str);
	return 0;
}

/* The most each site's step count weighs. FedAvg weights a site by the steps it reports, and
 * in FLARE that is whatever it says (SPEC §10): one site could outweigh all the others. The
 * bound is workflow.max_site_weight; without it, for the built-in trainer, the site's share of
 * the data (its split's samples times epochs, from the same deterministic split the site trains
 * on: exactly what an honest site reports); for any other job, 1 (equal weights). */
static void site_caps(struct fedavg *f)
{
	struct job *jb = f->jb;
	struct cfl_err e = {0};
	uint64_t *shares = NULL;
	size_t i;

	for (i = 0; i < f->n; i++)
		f->parts[i].cap = jb->max_site_weight != 0 ? jb->max_site_weight : 1;
	if (jb->max_site_weight != 0) {
		CFL_INFO("job %s: a site counts at most %" PRIu64 " (workflow.max_site_weight)",
		         jb->id, jb->max_site_weight);
		return;
	}
	if (!cfl__fedavg_builtin_job(jb)) {
		CFL_INFO("job %s: every site counts 1 (a command job without "
		         "workflow.max_site_weight)",
		         jb->id);
		return;
	}
	shares = calloc(f->n, sizeof(*shares));
	if (shares == NULL) {
		cfl_err_set(&e, CFL_ENOMEM, "out of memory");
	} else if (cfl_trainer_builtin_shares(json_object_get(jb->config, "executor"), (int)f->n,
	                                      shares, &e) == 0) {
		for (i = 0; i < f->n; i++)
			f->parts[i].cap = shares[i];
	} else {
		/* Fail closed: without the data the server cannot tell an honest count. */
		CFL_WARN("job %s: cannot compute the sites' shares of the data (%s): every site "
		         "counts 1 (workflow.max_site_weight sets a bound instead)",
		         jb->id, e.msg);
	}
	free(shares);
}

/* An external executor's job carries its initial weights (executor.initial_model). */
static int initial_from_bundle(const char *bundle, size_t len, json_t *ex, struct cfl_model **out,
                               struct cfl_err *e)
{
	const char *name = json_string_value(json_object_get(ex, "initial_model"));
	json_t *b = json_loadb(bundle, len, 0, NULL);
	const char *b64 = json_string_value(json_object_get(json_object_get(b, "files"), name));
	uint8_t *raw = NULL;
	size_t raw_len = 0;
	int rc;

	if (name == NULL || b64 == NULL) {
		json_decref(b);
		return cfl_err_set(e, CFL_ECONFIG,
		                   "executor.initial_model must name a model file of the job");
	}
	rc = cfl_base64_decode(b64, strlen(b64), &raw, &raw_len) != 0
	             ? cfl_err_set(e, CFL_ECONFIG, "'%s' is not base64", name)
	             : cfl_model_parse(raw, raw_len, out, e);
	free(raw);
	json_decref(b);
	return rc;
}

/* executor.initial_model "from_site": the first site's script gives the initial weights. */
static int from_site(const struct job *jb)
{
	const char *v = json_string_value(
	        json_object_get(json_object_get(jb->config, "executor"), "initial_model"));

	return v != NULL && strcmp(v, "from_site") == 0;
}

static int initial_model(struct fedavg *f, struct cfl_err *e)
{
	char path[PATH_MAX];
	json_t *ex = json_object_get(f->jb->config, "executor");
	const char *type = json_string_value(json_object_get(ex, "type"));

	/* A resumed job carries on from its last saved global model. */
	if (f->jb->rounds_done > 0 &&
	    cfl__job_path(f->jb, "model.safetensors", path, sizeof(path)) == 0 &&
	    cfl_model_load(path, CFL_JOB_BUNDLE_MAX * 64ull, &f->global, e) == 0)
		return 0;
	f->jb->rounds_done = 0;
	json_array_clear(f->jb->metrics);
	if (type == NULL || strcmp(type, "builtin") == 0)
		return cfl_trainer_builtin_init_model(ex, &f->global, e);
	if (from_site(f->jb)) {
		/* Asked before the server restarted: what the site gave is the initial model. */
		if (cfl__job_path(f->jb, INITIAL_FILE, path, sizeof(path)) == 0 &&
		    cfl_model_load(path, CFL_JOB_BUNDLE_MAX * 64ull, &f->global, NULL) == 0)
			return 0;
		f->init = 1;
		return 0;
	}
	return initial_from_bundle(f->bundle, f->bundle_len, ex, &f->global, e);
}

int cfl__fedavg_start(struct cfl_jobs *j, struct job *jb, struct cfl_err *e)
{
	struct fedavg *f;
	int rc = choose_sites(j, jb, e);

	if (rc == CFL_EAGAIN)
		return 0; /* try at the next tick */
	if (rc != 0)
		return rc;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	f->j = j;
	f->jb = jb;
	f->n = jb->n_sites;
	f->parts = calloc(f->n, sizeof(*f->parts));
	f->trained = calloc(f->n, sizeof(*f->trained));
	if (f->parts == NULL || f->trained == NULL) {
		free(f->parts);
		free(f->trained);
		free(f);
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < f->n; i++) {
		f->parts[i].f = f;
		f->parts[i].idx = (int)i;
		snprintf(f->parts[i].name, sizeof(f->parts[i].name), "%s", jb->sites[i]);
	}
	if ((rc = cfl__job_bundle(jb, &f->bundle, &f->bundle_len, e)) != 0 ||
	    (rc = initial_model(f, e)) != 0 ||
	    (!f->init && (rc = cfl_agg_new(f->global, &f->agg, e)) != 0) ||
	    (!f->init && (rc = cfl__fedavg_serialize(f, e)) != 0)) {
		cfl__fedavg_run_free(f);
		return rc;
	}
	site_caps(f);
	jb->state = JOB_DISPATCHED;
	cfl__job_save(jb);
	j->run = f;
	CFL_INFO("job %s starts: %zu sites, %d rounds (%d done)%s", jb->id, f->n, jb->num_rounds,
	         jb->rounds_done, f->init ? "; the initial weights come from a site" : "");
	if (f->init)
		cfl__fedavg_init_next(f);
	else
		cfl__fedavg_start_round(f);
	return 0;
}

/* --- executor.initial_model "from_site" ------------------------------------------------------- */

void cfl__fedavg_init_next(struct fedavg *f)
{
	size_t left = 0;

	if (!f->init || f->init_busy || f->zombie)
		return;
	for (size_t i = 0; i < f->n; i++) {
		struct part *p = &f->parts[i];
		struct cfl_peer *peer;

		if (p->refused || p->st == P_FAILED)
			continue;
		left++;
		if ((peer = cfl__fedavg_peer_of(f, p)) == NULL)
			continue; /* the first logged-in site is asked */
		f->init_busy = 1;
		f->init_at = i;
		cfl__fedavg_dispatch(f, p, peer);
		if (p->st != P_FAILED)
			return;
		f->init_busy = 0;
	}
	if (left == 0)
		cfl__fedavg_finish(f, JOB_EXCEPTION,
		                   "no site gave the job's initial weights (executor.initial_model "
		                   "\"from_site\"): see each site's reason");
}

void cfl__fedavg_init_failed(struct fedavg *f, struct part *p, const char *why)
{
	char msg[CFL_ERR_MSG_MAX];

	snprintf(msg, sizeof(msg), "initial weights: %.900s", why);
	CFL_WARN("job %s: %s gave no initial weights: %s", f->jb->id, p->name, why);
	if (!p->refused)
		cfl__job_site_state(f->jb, p->name, "failed", msg);
	p->st = P_FAILED;
	f->init_busy = 0;
	free(f->init_buf);
	f->init_buf = NULL;
	f->init_len = f->init_cap = 0;
	cfl__fedavg_init_next(f);
}

static void weights_data(void *st, const uint8_t *d, size_t n)
{
	struct part *p = st;
	struct fedavg *f = p->f;

	if (f->init_len == SIZE_MAX || n == 0)
		return;
	if (f->init_len + n > INIT_MAX) {
		f->init_len = SIZE_MAX; /* too large: refused at the end */
		return;
	}
	if (f->init_len + n > f->init_cap) {
		size_t cap = f->init_cap ? f->init_cap : 1 << 16;
		uint8_t *b;

		while (cap < f->init_len + n)
			cap *= 2;
		if ((b = realloc(f->init_buf, cap)) == NULL) {
			f->init_len = SIZE_MAX;
			return;
		}
		f->init_buf = b;
		f->init_cap = cap;
	}
	memcpy(f->init_buf + f->init_len, d, n);
	f->init_len += n;
}

/* The weights as the round-1 global model: finite values, at least one tensor. */
static int take_weights(struct fedavg *f, struct cfl_err *e)
{
	struct cfl_model *m = NULL;
	char path[PATH_MAX];
	int rc = cfl_model_parse(f->init_buf, f->init_len, &m, e);

	for (size_t i = 0; rc == 0 && i < m->n; i++) {
		for (size_t k = 0; k < m->t[i].count; k++) {
			if (!isfinite(m->t[i].data[k])) {
				rc = cfl_err_set(e, CFL_EINVAL,
				                 "tensor '%s' holds a value that is "
				                 "not finite",
				                 m->t[i].name);
				break;
			}
		}
	}
	if (rc == 0 && m->n == 0)
		rc = cfl_err_set(e, CFL_EINVAL, "a model without tensors");
	if (rc != 0) {
		cfl_model_free(m);
		return rc;
	}
	f->global = m;
	if (cfl__job_path(f->jb, INITIAL_FILE, path, sizeof(path)) != 0 ||
	    cfl_model_save(m, path, NULL, 0, e) != 0)
		CFL_ERROR("job %s: cannot save its initial model", f->jb->id);
	return 0;
}

static void weights_end(void *st, int status, const char *reason)
{
	struct part *p = st;
	struct fedavg *f = p->f;
	struct cfl_err e = {0};

	if (!cfl__fedavg_call_end(f))
		return;
	if (status != 0 || f->init_len == SIZE_MAX) {
		cfl__fedavg_init_failed(f, p,
		                        status != 0 ? (reason ? reason : cfl_strerror(status))
		                                    : "the weights are too large");
		return;
	}
	if (take_weights(f, &e) != 0) {
		cfl__fedavg_init_failed(f, p, e.msg);
		return;
	}
	free(f->init_buf);
	f->init_buf = NULL;
	f->init_len = f->init_cap = 0;
	f->init = f->init_busy = 0;
	if (cfl_agg_new(f->global, &f->agg, &e) != 0 || cfl__fedavg_serialize(f, &e) != 0) {
		cfl__fedavg_finish(f, JOB_EXCEPTION, e.msg);
		return;
	}
	CFL_INFO("job %s: the initial weights come from %s (%zu tensors)", f->jb->id, p->name,
	         f->global->n);
	cfl__fedavg_start_round(f);
}

static void weights_reply(struct cfl_peer *peer, int status, const char *reason,
                          const struct cfl_frame *fr, int more, struct cfl_msg_sink *sink,
                          void *arg)
{
	struct part *p = arg;

	(void)peer;
	if (status != 0) {
		weights_end(p, status, reason);
		return;
	}
	weights_data(p, fr->body, fr->body_len);
	if (more)
		*sink = (struct cfl_msg_sink){weights_data, weights_end, p};
	else
		weights_end(p, 0, NULL);
}

void cfl__fedavg_ask_weights(struct fedavg *f, struct part *p, struct cfl_peer *peer)
{
	char idx[16], n[16];
	struct cfl_header h[3];

	snprintf(idx, sizeof(idx), "%d", p->idx);
	snprintf(n, sizeof(n), "%zu", f->n);
	h[0] = CFL_HDR(CFL_KEY_JOB, f->jb->id);
	h[1] = CFL_HDR(CFL_KEY_SITE_INDEX, idx);
	h[2] = CFL_HDR(CFL_KEY_SITE_COUNT, n);
	p->st = P_TRAIN;
	f->init_len = 0;
	/* A failure here is not followed by the next site at once: the caller may be
	 * cfl__fedavg_init_next itself, which goes on with the next one. */
	if (cfl_peer_request(peer, CFL_TOPIC_TASK_GET_WEIGHTS, h, 3, NULL, 0,
	                     cfl__fedavg_task_timeout(f->jb), weights_reply, p) != 0) {
		CFL_WARN("job %s: cannot ask %s for its initial weights", f->jb->id, p->name);
		p->st = P_FAILED;
		f->init_busy = 0;
		return;
	}
	cfl__fedavg_call_begin(f);
	CFL_INFO("job %s: asking %s for its script's initial weights", f->jb->id, p->name);
}
