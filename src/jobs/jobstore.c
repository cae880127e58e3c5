/* The server's job store: submission, persistence, listing, download, scheduling. */
#define _DEFAULT_SOURCE
#include "jobs_int.h"

#include "cfl/digest.h"
#include "cfl/log.h"
#include "cfl/pki.h"
#include "util/fs.h"

#include <assert.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define STATE_FILE "job.json"

static const char *const state_names[] = {"SUBMITTED",        "DISPATCHED",
                                          "RUNNING",          "FINISHED:COMPLETED",
                                          "FINISHED:ABORTED", "FINISHED:EXECUTION_EXCEPTION"};

const char *cfl__job_state_name(enum job_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

int cfl__job_finished(const struct job *jb)
{
	return jb->state >= JOB_COMPLETED;
}

int cfl__job_path(const struct job *jb, const char *name, char *buf, size_t size)
{
	return cfl__path_join(buf, size, jb->dir, name);
}

struct job *cfl__job_find(struct cfl_jobs *j, const char *id)
{
	for (struct job *jb = j->jobs; jb != NULL; jb = jb->next) {
		if (strcmp(jb->id, id) == 0)
			return jb;
	}
	return NULL;
}

static void job_free(struct job *jb)
{
	if (jb == NULL)
		return;
	json_decref(jb->config);
	json_decref(jb->metrics);
	json_decref(jb->site_states);
	for (size_t i = 0; i < jb->n_sites; i++)
		free(jb->sites[i]);
	free(jb->sites);
	free(jb);
}

static int write_json(const char *path, json_t *v)
{
	char tmp[PATH_MAX];

	/* Write then rename: a crash never leaves half a state file. */
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp) ||
	    json_dump_file(v, tmp, JSON_INDENT(2)) != 0 || rename(tmp, path) != 0)
		return CFL_EIO;
	return 0;
}

static size_t count_state(json_t *states, const char *state)
{
	const char *name;
	size_t n = 0;
	json_t *v;

	json_object_foreach (states, name, v) {
		const char *st = json_string_value(json_object_get(v, "state"));

		n += st != NULL && strcmp(st, state) == 0;
	}
	return n;
}

/* The count of accepted sites is kept as states change (list_jobs reads it while 19,000 sites
 * accept); it is checked against the states at each save, which writes them all anyway. */
static void check_accepted(struct job *jb)
{
	size_t n = count_state(jb->site_states, "accepted");

	if (n == jb->n_accepted)
		return;
	CFL_ERROR("job %s: %zu sites counted as accepted, %zu in their states (counted again)",
	          jb->id, jb->n_accepted, n);
	assert(n == jb->n_accepted);
	jb->n_accepted = n;
}

int cfl__job_save(struct job *jb)
{
	char path[PATH_MAX];
	json_t *sites = json_array(), *v;
	int rc;

	check_accepted(jb);
	for (size_t i = 0; i < jb->n_sites; i++)
		json_array_append_new(sites, json_string(jb->sites[i]));
	v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:i, s:s, s:o, s:O, s:O}", "id", jb->id,
	              "name", jb->name, "state", cfl__job_state_name(jb->state), "submitter",
	              jb->by.name, "submitter_org", jb->by.org, "submitter_role", jb->by.role,
	              "submitted_at", (json_int_t)jb->submitted_at, "rounds_done", jb->rounds_done,
	              "error", jb->error, "sites", sites, "metrics", jb->metrics, "site_states",
	              jb->site_states);
	if (v == NULL || cfl__job_path(jb, STATE_FILE, path, sizeof(path)) != 0)
		rc = CFL_ENOMEM;
	else
		rc = write_json(path, v);
	jb->dirty = rc != 0; /* a failed write is tried again at the next tick */
	json_decref(v);
	if (rc != 0)
		CFL_ERROR("cannot save the state of job %s", jb->id);
	return rc;
}

void cfl__job_site_state(struct job *jb, const char *site, const char *state, const char *reason)
{
	json_t *now = json_object_get(jb->site_states, site);
	const char *was = json_string_value(json_object_get(now, "state"));
	const char *why = json_string_value(json_object_get(now, "reason"));

	/* Saved only when it changes: a site that takes the job every round says so once. */
	if (was != NULL && why != NULL && strcmp(was, state) == 0 && strcmp(why, reason) == 0)
		return;
	jb->n_accepted -= was != NULL && strcmp(was, "accepted") == 0;
	jb->n_accepted += strcmp(state, "accepted") == 0;
	json_object_set_new(jb->site_states, site,
	                    json_pack("{s:s, s:s}", "state", state, "reason", reason));
	jb->dirty = 1;
}

void cfl__job_site_trained(struct job *jb, const char *site, int round)
{
	json_t *now = json_object_get(jb->site_states, site);
	const char *was = json_string_value(json_object_get(now, "state"));
	const char *why = json_string_value(json_object_get(now, "reason"));
	char reason[1100];

	if (was == NULL || strcmp(was, "failed") != 0)
		return;
	snprintf(reason, sizeof(reason), "trained again in round %d; %.1000s", round,
	         why != NULL ? why : "");
	cfl__job_site_state(jb, site, "accepted", reason);
}

/* The site states recorded since the last save, written now (one file per job changed). */
static void save_dirty(struct cfl_jobs *j)
{
	for (struct job *jb = j->jobs; jb != NULL; jb = jb->next) {
		if (jb->dirty)
			cfl__job_save(jb);
	}
}

/* --- bundles ---------------------------------------------------------------------------- */

int cfl__job_safe_name(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > 128 || n[0] == '.')
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = n[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int cfl__job_parse_bundle(const char *text, size_t len, json_t **bundle, json_t **config,
                          json_t **meta, struct cfl_err *e)
{
	json_error_t je;
	json_t *files, *v;
	const char *name;
	uint8_t *raw = NULL;
	size_t raw_len = 0;

	*bundle = NULL;
	if (len > CFL_JOB_BUNDLE_MAX)
		return cfl_err_set(e, CFL_ETOOBIG, "the job is larger than %u bytes",
		                   CFL_JOB_BUNDLE_MAX);
	*bundle = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	files = json_object_get(*bundle, "files");
	if (!json_is_object(files) || json_object_size(files) > JOB_MAX_FILES)
		return cfl_err_set(e, CFL_ECONFIG, "not a job bundle (a JSON {\"files\": {...}})");
	json_object_foreach (files, name, v) {
		if (!cfl__job_safe_name(name) || !json_is_string(v))
			return cfl_err_set(e, CFL_ECONFIG, "bad file name '%s' in the job", name);
		/* Every file, not only the two read here: a site must be able to unpack it. */
		if (cfl_base64_decode(json_string_value(v), json_string_length(v), &raw,
		                      &raw_len) != 0)
			return cfl_err_set(e, CFL_ECONFIG, "%s is not base64", name);
		free(raw);
	}
	for (int i = 0; i < 2; i++) {
		const char *fn = i == 0 ? "config.json" : "meta.json";
		const char *b64 = json_string_value(json_object_get(files, fn));
		json_t **out = i == 0 ? config : meta;

		if (b64 == NULL) {
			if (i == 1) {
				*out = json_object();
				continue;
			}
			return cfl_err_set(e, CFL_ECONFIG, "the job has no %s", fn);
		}
		if (cfl_base64_decode(b64, strlen(b64), &raw, &raw_len) != 0)
			return cfl_err_set(e, CFL_ECONFIG, "%s is not base64", fn);
		*out = json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES, &je);
		free(raw);
		if (*out == NULL)
			return cfl_err_set(e, CFL_ECONFIG, "%s: line %d: %s", fn, je.line, je.text);
		if (!json_is_object(*out))
			return cfl_err_set(e, CFL_ECONFIG, "%s: not a JSON object", fn);
	}
	return 0;
}

/* What the server can tell of the executor section at submission (the sites check the rest):
 * the initial weights from a site need a script that gives them. */
static int check_executor(json_t *config, struct cfl_err *e)
{
	json_t *ex = json_object_get(config, "executor");
	const char *type = json_string_value(json_object_get(ex, "type"));
	const char *init = json_string_value(json_object_get(ex, "initial_model"));
	int capi = type != NULL && strcmp(type, "client_api") == 0;
	struct cfl__job_plan plan;

	if (init != NULL && strcmp(init, "from_site") == 0 && !capi)
		return cfl_err_set(
		        e, CFL_ECONFIG,
		        "executor.initial_model \"from_site\" needs executor.type "
		        "\"client_api\" (a site's script gives the weights); executor.type "
		        "is '%s'",
		        type != NULL ? type : "builtin");
	if (capi && cfl__executor_plan(config, &plan, e) != 0)
		return e->code;
	return 0;
}

int cfl__job_settings(struct job *jb, json_t *config, struct cfl_err *e)
{
	json_t *wf = json_object_get(config, "workflow");
	json_t *ex = json_object_get(config, "executor");
	const char *wname = json_string_value(json_object_get(wf, "name"));
	json_t *max_w = json_object_get(wf, "max_site_weight");
	json_int_t rounds, min_clients, timeout_s;

	if (!json_is_object(wf) || !json_is_object(ex))
		return cfl_err_set(e, CFL_ECONFIG, "config.json needs 'workflow' and 'executor'");
	if (wname == NULL || (strcmp(wname, "fedavg") != 0 && strcmp(wname, "scatter_and_gather")))
		return cfl_err_set(e, CFL_ECONFIG, "unknown workflow (allowed: fedavg)");
	/* Ranges checked before the casts: 2^32 + 1 rounds must not become 1. */
	rounds = json_integer_value(json_object_get(wf, "num_rounds"));
	min_clients = json_integer_value(json_object_get(wf, "min_clients"));
	timeout_s = json_integer_value(json_object_get(wf, "round_timeout_s"));
	if (rounds < 1 || rounds > JOB_MAX_ROUNDS)
		return cfl_err_set(e, CFL_ECONFIG, "workflow.num_rounds must be 1..%d",
		                   JOB_MAX_ROUNDS);
	if (min_clients > JOB_MAX_SITES)
		return cfl_err_set(e, CFL_ECONFIG, "workflow.min_clients must be at most %d",
		                   JOB_MAX_SITES);
	if (timeout_s < 0 || timeout_s > JOB_MAX_ROUND_TIMEOUT_S)
		return cfl_err_set(e, CFL_ECONFIG, "workflow.round_timeout_s must be 0..%d",
		                   JOB_MAX_ROUND_TIMEOUT_S);
	/* A site's FedAvg weight is its step count, at most 2^53 (exact as a double). */
	if (max_w != NULL && (!json_is_integer(max_w) || json_integer_value(max_w) < 1 ||
	                      json_integer_value(max_w) > ((json_int_t)1 << 53)))
		return cfl_err_set(e, CFL_ECONFIG,
		                   "workflow.max_site_weight must be an integer 1..2^53");
	if (check_executor(config, e) != 0)
		return e->code;
	jb->max_site_weight = max_w != NULL ? (uint64_t)json_integer_value(max_w) : 0;
	jb->num_rounds = (int)rounds;
	jb->min_clients = min_clients < 1 ? 1 : (int)min_clients;
	jb->round_timeout_ms = timeout_s == 0 ? 3600 * 1000 : (uint64_t)timeout_s * 1000;
	jb->config = json_incref(config);
	return 0;
}

static void make_id(char *id, size_t size)
{
	uint8_t r[3];
	char hex[7];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	if (cfl_random(r, sizeof(r)) != 0)
		memset(r, 0, sizeof(r));
	snprintf(hex, sizeof(hex), "%02x%02x%02x", r[0], r[1], r[2]);
	snprintf(id, size, "%04d%02d%02d-%02d%02d%02d-%s", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, hex);
}

/* Every site checks the signature before it takes the job; the server checks it first so
 * that an unsigned job, or one signed by someone else than the admin submitting it, is
 * refused at once rather than by every site later. */
static int check_signed(struct cfl_jobs *j, json_t *b, const char *submitter, struct cfl_err *e)
{
	struct cfl_job_signer who;
	int rc = cfl__manifest_verify_json(b, j->trust, 0, &who, e);

	if (rc == 0 && strcmp(who.name, submitter) != 0)
		rc = cfl_err_set(e, CFL_EVERIFY,
		                 "the job is signed by '%s', not by '%s' who submits it", who.name,
		                 submitter);
	/* Someone tried to slip a job past its submitter: worth a line in the server's log. */
	if (rc != 0)
		CFL_WARN("job submitted by %s refused: %s", submitter, e != NULL ? e->msg : "");
	return rc;
}

int cfl_jobs_submit(struct cfl_jobs *j, const char *bundle, size_t len,
                    const struct cfl_jobs_who *by, char *id, struct cfl_err *e)
{
	json_t *b = NULL, *config = NULL, *meta = NULL;
	struct job *jb = calloc(1, sizeof(*jb));
	char path[PATH_MAX];
	const char *name;
	int rc;

	if (jb == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	rc = cfl__job_parse_bundle(bundle, len, &b, &config, &meta, e);
	if (rc == 0)
		rc = cfl__job_settings(jb, config, e);
	if (rc == 0)
		rc = check_signed(j, b, by->name, e);
	if (rc != 0)
		goto out;
	make_id(jb->id, sizeof(jb->id));
	name = json_string_value(json_object_get(meta, "name"));
	snprintf(jb->name, sizeof(jb->name), "%s", name != NULL ? name : "job");
	jb->by = *by;
	jb->submitted_at = (int64_t)time(NULL);
	jb->metrics = json_array();
	jb->site_states = json_object();
	if (cfl__path_join(jb->dir, sizeof(jb->dir), j->dir, jb->id) != 0 ||
	    cfl__fs_mkdirs(jb->dir, 0700, e) != 0 ||
	    cfl__job_path(jb, "bundle.json", path, sizeof(path)) != 0 ||
	    cfl__fs_write_file(path, bundle, len, 0600, e) != 0 || cfl__job_save(jb) != 0) {
		rc = cfl_err_set(e, CFL_EIO, "cannot store the job");
		goto out;
	}
	jb->next = j->jobs;
	j->jobs = jb;
	snprintf(id, 64, "%s", jb->id);
	CFL_INFO("job %s ('%s') submitted by %s: %d rounds, at least %d clients", jb->id, jb->name,
	         by->name, jb->num_rounds, jb->min_clients);
	jb = NULL;
	cfl__jobs_schedule(j);
out:
	job_free(jb);
	json_decref(b);
	json_decref(config);
	json_decref(meta);
	return rc;
}

int cfl__job_bundle(const struct job *jb, char **text, size_t *len, struct cfl_err *e)
{
	char path[PATH_MAX];

	if (cfl__job_path(jb, "bundle.json", path, sizeof(path)) != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long");
	return cfl__fs_read_file(path, CFL_JOB_BUNDLE_MAX, text, len, e);
}

/* --- listing and download ------------------------------------------------------------------- */

static json_t *job_json(const struct job *jb)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:i, s:i, s:s}", "id", jb->id, "name", jb->name,
	                 "status", cfl__job_state_name(jb->state), "submitter", jb->by.name,
	                 "submitted_at", (json_int_t)jb->submitted_at, "rounds_done",
	                 jb->rounds_done, "num_rounds", jb->num_rounds, "error", jb->error);
}

/* list_jobs ID gives what each site said of the job, bounded: every site while there are at
 * most SITES_SHOWN, else the sites that did not accept it first (what an admin looks for),
 * up to SITES_SHOWN, with "sites_omitted"; "site_counts" always counts them all. */
#define SITES_SHOWN 1000

static int accepted(json_t *v)
{
	const char *st = json_string_value(json_object_get(v, "state"));

	return st != NULL && strcmp(st, "accepted") == 0;
}

/* Polled by consoles while a job of 19,000 sites runs: a pass over the sites only when some
 * did not accept it (jb->n_accepted counts those that did). */
static void add_sites(json_t *o, const struct job *jb)
{
	json_t *states = jb->site_states, *shown = json_object(), *v;
	size_t n = json_object_size(states), acc = jb->n_accepted, ref = 0, other = 0;
	const char *name;

	json_object_foreach (states, name, v) {
		if (n > SITES_SHOWN && (other == n - acc || json_object_size(shown) >= SITES_SHOWN))
			break;
		if (n <= SITES_SHOWN || !accepted(v)) {
			json_object_set(shown, name, v);
			other += !accepted(v);
		}
	}
	if (acc < n)
		ref = count_state(states, "refused");
	json_object_foreach (states, name, v) {
		if (json_object_size(shown) >= SITES_SHOWN)
			break;
		if (json_object_get(shown, name) == NULL)
			json_object_set(shown, name, v);
	}
	json_object_set_new(o, "sites", shown);
	json_object_set_new(o, "site_counts",
	                    json_pack("{s:I, s:I, s:I}", "accepted", (json_int_t)acc, "refused",
	                              (json_int_t)ref, "failed", (json_int_t)(n - acc - ref)));
	if (json_object_size(shown) < n)
		json_object_set_new(o, "sites_omitted",
		                    json_integer((json_int_t)(n - json_object_size(shown))));
}

char *cfl_jobs_list(struct cfl_jobs *j, const char *id)
{
	json_t *arr = json_array(), *v;
	char *text;

	for (struct job *jb = j->jobs; jb != NULL; jb = jb->next) {
		if (id == NULL || strcmp(jb->id, id) == 0) {
			json_t *o = job_json(jb);

			if (id != NULL) {
				json_object_set(o, "metrics", jb->metrics);
				add_sites(o, jb);
			}
			json_array_append_new(arr, o);
		}
	}
	v = json_pack("{s:o}", "jobs", arr);
	text = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	return text;
}

static int add_file(json_t *files, const char *name, const char *path, struct cfl_err *e)
{
	char *buf = NULL, *b64 = NULL;
	size_t len = 0;
	int rc = cfl__fs_read_file(path, CFL_JOB_BUNDLE_MAX, &buf, &len, e);

	if (rc == CFL_ENOENT)
		return 0; /* not produced (yet) */
	if (rc == 0 && cfl_base64_encode(buf, len, &b64) != 0)
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	if (rc == 0)
		json_object_set_new(files, name, json_string(b64));
	free(buf);
	free(b64);
	return rc;
}

int cfl_jobs_download(struct cfl_jobs *j, const char *id, char **bundle, size_t *len,
                      struct cfl_err *e)
{
	static const char *const names[] = {"model.safetensors", "metrics.json", "metrics.csv",
	                                    STATE_FILE};
	struct job *jb = cfl__job_find(j, id);
	json_t *files, *v;
	char path[PATH_MAX];
	int rc = 0;

	if (jb == NULL)
		return cfl_err_set(e, CFL_ENOENT, "no job '%s'", id);
	files = json_object();
	for (size_t i = 0; rc == 0 && i < sizeof(names) / sizeof(names[0]); i++) {
		if (cfl__job_path(jb, names[i], path, sizeof(path)) == 0)
			rc = add_file(files, names[i], path, e);
	}
	v = json_pack("{s:s, s:o}", "id", jb->id, "files", files);
	*bundle = rc == 0 ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	if (rc == 0 && *bundle == NULL)
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	if (rc == 0)
		*len = strlen(*bundle);
	return rc;
}

int cfl_jobs_abort(struct cfl_jobs *j, const char *id, struct cfl_err *e)
{
	struct job *jb = cfl__job_find(j, id);

	if (jb == NULL)
		return cfl_err_set(e, CFL_ENOENT, "no job '%s'", id);
	if (cfl__job_finished(jb))
		return cfl_err_set(e, CFL_EINVAL, "job %s already %s", id,
		                   cfl__job_state_name(jb->state));
	if (cfl__fedavg_abort(j, jb, "aborted by an admin") == 0)
		return 0;
	/* Not the job running: one waiting to start, or one that was running when the server
	 * stopped and waits to resume. It must never run; the run going on is another job's. */
	snprintf(jb->error, sizeof(jb->error), "%s",
	         jb->state == JOB_SUBMITTED ? "aborted before it started" : "aborted by an admin");
	jb->state = JOB_ABORTED;
	cfl__job_save(jb);
	return 0;
}

int cfl_jobs_submitter(struct cfl_jobs *j, const char *id, struct cfl_jobs_who *out)
{
	const struct job *jb = cfl__job_find(j, id);

	if (jb == NULL)
		return CFL_ENOENT;
	*out = jb->by;
	return 0;
}

/* --- loading and scheduling ----------------------------------------------------------------- */

static const char *str_or(const json_t *v, const char *dflt)
{
	const char *s = json_string_value(v);

	return s != NULL ? s : dflt;
}

static struct job *load_job(struct cfl_jobs *j, const char *id)
{
	struct job *jb = calloc(1, sizeof(*jb));
	char path[PATH_MAX], *bundle = NULL;
	json_t *st = NULL, *b = NULL, *config = NULL, *meta = NULL, *v;
	struct cfl_err e = {0};
	size_t len = 0, i;

	if (jb == NULL || cfl__path_join(jb->dir, sizeof(jb->dir), j->dir, id) != 0 ||
	    cfl__job_path(jb, STATE_FILE, path, sizeof(path)) != 0)
		goto fail;
	st = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(st) || cfl__job_bundle(jb, &bundle, &len, &e) != 0 ||
	    cfl__job_parse_bundle(bundle, len, &b, &config, &meta, &e) != 0 ||
	    cfl__job_settings(jb, config, &e) != 0)
		goto fail;
	snprintf(jb->id, sizeof(jb->id), "%s", id);
	snprintf(jb->name, sizeof(jb->name), "%s", str_or(json_object_get(st, "name"), "job"));
	snprintf(jb->by.name, sizeof(jb->by.name), "%s",
	         str_or(json_object_get(st, "submitter"), ""));
	snprintf(jb->by.org, sizeof(jb->by.org), "%s",
	         str_or(json_object_get(st, "submitter_org"), ""));
	snprintf(jb->by.role, sizeof(jb->by.role), "%s",
	         str_or(json_object_get(st, "submitter_role"), ""));
	snprintf(jb->error, sizeof(jb->error), "%s", str_or(json_object_get(st, "error"), ""));
	jb->submitted_at = json_integer_value(json_object_get(st, "submitted_at"));
	jb->rounds_done = (int)json_integer_value(json_object_get(st, "rounds_done"));
	jb->state = JOB_SUBMITTED;
	for (int s = 0; s <= JOB_EXCEPTION; s++) {
		const char *name = json_string_value(json_object_get(st, "state"));

		if (name != NULL && strcmp(name, state_names[s]) == 0)
			jb->state = (enum job_state)s;
	}
	jb->site_states = json_incref(json_object_get(st, "site_states"));
	if (!json_is_object(jb->site_states)) {
		json_decref(jb->site_states);
		jb->site_states = json_object();
	}
	jb->n_accepted = count_state(jb->site_states, "accepted");
	jb->metrics = json_incref(json_object_get(st, "metrics"));
	if (!json_is_array(jb->metrics)) {
		json_decref(jb->metrics);
		jb->metrics = json_array();
	}
	v = json_object_get(st, "sites");
	jb->n_sites = json_array_size(v) < JOB_MAX_SITES ? json_array_size(v) : 0;
	jb->sites = jb->n_sites ? calloc(jb->n_sites, sizeof(char *)) : NULL;
	for (i = 0; jb->sites != NULL && i < jb->n_sites; i++)
		jb->sites[i] = strdup(str_or(json_array_get(v, i), ""));
	free(bundle);
	json_decref(st);
	json_decref(b);
	json_decref(config);
	json_decref(meta);
	return jb;
fail:
	CFL_WARN("cannot load job '%s': %s", id, e.msg[0] ? e.msg : "bad state file");
	free(bundle);
	json_decref(st);
	json_decref(b);
	json_decref(config);
	json_decref(meta);
	job_free(jb);
	return NULL;
}

static void load_all(struct cfl_jobs *j)
{
	struct dirent *de;
	DIR *d = opendir(j->dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		struct job *jb;

		if (de->d_name[0] == '.')
			continue;
		jb = load_job(j, de->d_name);
		if (jb == NULL)
			continue;
		jb->next = j->jobs;
		j->jobs = jb;
		if (jb->state == JOB_RUNNING || jb->state == JOB_DISPATCHED)
			CFL_INFO("job %s was running when the server stopped: resuming after round "
			         "%d",
			         jb->id, jb->rounds_done);
	}
	closedir(d);
}

void cfl__jobs_schedule(struct cfl_jobs *j)
{
	struct job *next = NULL;
	struct cfl_err e = {0};

	if (j->run != NULL) {
		cfl__fedavg_kick(j);
		return;
	}
	/* Oldest first; an interrupted run before anything new. */
	for (struct job *jb = j->jobs; jb != NULL; jb = jb->next) {
		if (jb->state == JOB_RUNNING || jb->state == JOB_DISPATCHED) {
			next = jb;
			break;
		}
		if (jb->state == JOB_SUBMITTED)
			next = jb;
	}
	if (next != NULL && cfl__fedavg_start(j, next, &e) != 0) {
		next->state = JOB_EXCEPTION;
		snprintf(next->error, sizeof(next->error), "%s", e.msg);
		CFL_ERROR("job %s cannot start: %s", next->id, e.msg);
		cfl__job_save(next);
	}
}

static void on_sched(struct cfl_loop *loop, uint64_t id, void *arg)
{
	struct cfl_jobs *j = arg;

	(void)id;
	save_dirty(j);
	cfl__jobs_schedule(j);
	j->sched_timer = cfl_loop_timer_add(loop, 1000, on_sched, j);
}

void cfl_jobs_kick(struct cfl_jobs *j)
{
	if (j != NULL)
		cfl__jobs_schedule(j);
}

int cfl_jobs_new(struct cfl_msg_hub *hub, struct cfl_auth_server *auth,
                 const struct cfl_jobs_cfg *cfg, struct cfl_jobs **out, struct cfl_err *e)
{
	struct cfl_jobs *j;
	int rc;

	if (cfg == NULL || cfg->dir == NULL || cfg->root_ca == NULL)
		return cfl_err_set(e, CFL_EINVAL, "the job store needs a folder and a root CA");
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	j->hub = hub;
	j->auth = auth;
	j->loop = cfl_msg_hub_loop(hub);
	snprintf(j->dir, sizeof(j->dir), "%s", cfg->dir);
	if ((rc = cfl_pki_trust_load(cfg->root_ca, cfg->cert_file, &j->trust, e)) != 0 ||
	    (rc = cfl__fs_mkdirs(cfg->dir, 0700, e)) != 0) {
		cfl_pki_trust_free(j->trust);
		free(j);
		return rc;
	}
	load_all(j);
	j->sched_timer = cfl_loop_timer_add(j->loop, 1000, on_sched, j);
	*out = j;
	return 0;
}

void cfl_jobs_free(struct cfl_jobs *j)
{
	if (j == NULL)
		return;
	cfl_loop_timer_cancel(j->loop, j->sched_timer);
	save_dirty(j);
	cfl__fedavg_free_all(j);
	while (j->jobs != NULL) {
		struct job *next = j->jobs->next;

		job_free(j->jobs);
		j->jobs = next;
	}
	cfl_pki_trust_free(j->trust);
	free(j);
}
