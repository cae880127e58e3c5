/* Shared fixture of the jobs tests (test_jobs_store.c, test_jobs_fedavg.c,
 * test_jobs_control.c; src/jobs/jobstore.c, fedavg.c): a project provisioned by the library, job
 * bundles (signed by its admin or not), a server hub with the auth server and the job runtime,
 * and sites on loopback that log in with kits provisioned by the library and run the executor
 * (the "synthetic" model, whose rounds have exact results, or the digits), or stand-ins that drop
 * out in the middle of a round; readers of the job records; the group setup and teardown.
 *
 * The synthetic model is one tensor "w" of zeros; site i of a run adds i + 1 to it with weight
 * 1, so a round with sites 0 and 1 moves it by 1.5, a round with site 0 alone by 1.
 *
 * Everything is static inline so that each test program takes what it uses. */
#ifndef CFL_TEST_JOBS_FIXTURE_H
#define CFL_TEST_JOBS_FIXTURE_H

#include "msg_fixture.h"

#include "cfl/auth.h"
#include "cfl/conn.h"
#include "cfl/executor.h"
#include "cfl/jobs.h"
#include "cfl/manifest.h"
#include "cfl/model.h"
#include "cfl/pki.h"
#include "cfl/proto.h"
#include "cfl/trainer.h"
#include "jobs/jobs_int.h"

#include <jansson.h>
#include <sys/stat.h>

#define JOB_WAIT_MS 8000 /* a whole job of a few rounds */
#define MAX_SITES   4

static const char jobp_yml[] = "api_version: 3\n"
                               "name: jobp\n"
                               "participants:\n"
                               "  - {name: server1, type: server, org: test}\n"
                               "  - {name: site-1, type: client, org: test}\n"
                               "  - {name: site-2, type: client, org: test}\n"
                               "  - {name: admin@test.org, type: admin, org: test, role: lead}\n";

static char prod[PATH_MAX];

static inline const char *kit(char *buf, size_t size, const char *who, const char *file)
{
	if (snprintf(buf, size, "%s/%s/startup/%s", prod, who, file) >= (int)size)
		fail_msg("path too long");
	return buf;
}

/* --- bundles --------------------------------------------------------------------------------- */

/* Signs bundle `b` as admin@test.org does, when its names allow a manifest. */
static inline void sign(json_t *b, const struct cfl_manifest *m, int ok)
{
	char key_path[PATH_MAX], crt_path[PATH_MAX];
	struct cfl_manifest_signed sig;
	struct cfl_pki_key *key = NULL;
	struct cfl_pki_cert *crt = NULL;
	struct cfl_err e = {0};

	if (!ok)
		return; /* a bundle the server refuses before it looks at signatures */
	kit(key_path, sizeof(key_path), "admin@test.org", "client.key");
	kit(crt_path, sizeof(crt_path), "admin@test.org", "client.crt");
	assert_int_equal(cfl_pki_key_load(key_path, &key, &e), 0);
	assert_int_equal(cfl_pki_cert_load(crt_path, &crt, &e), 0);
	if (cfl_manifest_sign(m, key, crt, &sig, &e) != 0)
		fail_msg("sign: %s", e.msg);
	json_object_set_new(b, "manifest", json_string(sig.manifest));
	json_object_set_new(b, "signature", json_string(sig.signature));
	json_object_set_new(b, "certificate", json_string(sig.certificate));
	cfl_manifest_signed_release(&sig);
	cfl_pki_cert_free(crt);
	cfl_pki_key_free(key);
}

/* {"files": {name: base64(text)...}} for the NULL-terminated name/text pairs, signed by the
 * admin when `signed_by_admin`. */
static inline char *bundle_with(const char *const *pairs, int signed_by_admin)
{
	json_t *files = json_object(), *b;
	struct cfl_manifest *m = calloc(1, sizeof(*m));
	char *text, *b64;
	int ok = 1;

	assert_non_null(m);
	for (size_t i = 0; pairs[i] != NULL; i += 2) {
		assert_int_equal(cfl_base64_encode(pairs[i + 1], strlen(pairs[i + 1]), &b64), 0);
		json_object_set_new(files, pairs[i], json_string(b64));
		free(b64);
		ok = ok &&
		     cfl_manifest_add(m, pairs[i], pairs[i + 1], strlen(pairs[i + 1]), NULL) == 0;
	}
	b = json_pack("{s:o}", "files", files);
	sign(b, m, ok && signed_by_admin);
	free(m);
	text = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	assert_non_null(text);
	return text;
}

static inline char *bundle_of(const char *const *pairs)
{
	return bundle_with(pairs, 1);
}

/* A job of the built-in executor on the synthetic model. */
static inline char *synthetic_job(int rounds, int min_clients, const char *sites, const char *name)
{
	char config[512], meta[128];
	const char *pairs[] = {"config.json", config, "meta.json", meta, NULL};

	snprintf(config, sizeof(config),
	         "{\"workflow\": {\"name\": \"fedavg\", \"num_rounds\": %d, \"min_clients\": %d, "
	         "\"round_timeout_s\": 30}, \"executor\": {\"type\": \"builtin\", \"dataset\": "
	         "\"synthetic\", \"floats\": 4}, \"sites\": %s}",
	         rounds, min_clients, sites);
	snprintf(meta, sizeof(meta), "{\"name\": \"%s\"}", name);
	return bundle_of(pairs);
}

/* --- the server ------------------------------------------------------------------------------ */

struct site;

struct server {
	struct cfl_loop *loop;
	struct cfl_listener *l;
	int port;
	struct cfl_msg_hub *hub;
	struct cfl_auth_server *auth;
	struct cfl_jobs *jobs;
	char jobs_dir[PATH_MAX];
	int stopping;
	struct site *sites[MAX_SITES];
	int n_sites;
};

static inline void srv_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct server *s = arg;

	(void)code;
	(void)reason;
	cfl_auth_server_peer_up(s->auth, p);
}

/* As the server does: a departure may let a waiting run go on. */
static inline void srv_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct server *s = arg;

	(void)code;
	(void)reason;
	if (p != NULL)
		cfl_auth_server_peer_down(s->auth, p);
	if (!s->stopping)
		cfl_jobs_kick(s->jobs);
}

static inline void jobs_open(struct server *s)
{
	char ca[PATH_MAX], crt[PATH_MAX];
	struct cfl_jobs_cfg cfg = {.dir = s->jobs_dir,
	                           .root_ca = kit(ca, sizeof(ca), "server1", "rootCA.pem"),
	                           .cert_file = kit(crt, sizeof(crt), "server1", "server.crt")};
	struct cfl_err e = {0};

	if (cfl_jobs_new(s->hub, s->auth, &cfg, &s->jobs, &e) != 0)
		fail_msg("jobs: %s", e.msg);
}

static inline void server_start(struct server *s, const char *tag)
{
	char crt[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
	struct cfl_auth_server_cfg cfg = {.project = "jobp", .server_cn = "server1"};
	struct cfl_conn_opts o;
	struct cfl_err e = {0};

	memset(s, 0, sizeof(*s));
	log_capture_at(CFL_LOG_INFO);
	cfg.cert_file = kit(crt, sizeof(crt), "server1", "server.crt");
	cfg.key_file = kit(key, sizeof(key), "server1", "server.key");
	cfg.root_ca = kit(ca, sizeof(ca), "server1", "rootCA.pem");
	cfg.mode = CFL_SEC_CLEAR;
	cfl_auth_times_default(&cfg.times);
	path_join(s->jobs_dir, sizeof(s->jobs_dir), tmp_dir, tag);
	assert_int_equal(cfl_loop_new(&s->loop, &e), 0);
	assert_int_equal(cfl_msg_hub_new(s->loop, "server", &s->hub, &e), 0);
	if (cfl_auth_server_new(s->hub, &cfg, &s->auth, &e) != 0)
		fail_msg("auth server: %s", e.msg);
	cfl_msg_hub_on_peer(s->hub, srv_up, srv_down, s);
	jobs_open(s);
	o = cfl_msg_hub_conn_opts(s->hub, NULL);
	if (cfl_listener_new(s->loop, "127.0.0.1", 0, &o, &s->l, &e) != 0)
		fail_msg("listener: %s", e.msg);
	s->port = cfl_listener_port(s->l);
}

/* --- sites ----------------------------------------------------------------------------------- */

/* A site: the real executor, or a stand-in that takes the job and then, on task.train, either
 * drops its connection (drop) or never answers until the job is aborted (hang). */
enum site_kind { SITE_REAL, SITE_DROP, SITE_HANG, SITE_REFUSE };

/* What a refusing stand-in says, as a site's policy would. */
#define REFUSAL "site-2: byoc not granted to lead@a.org (lead: o:site)"

struct site {
	struct server *s;
	enum site_kind kind;
	char name[32], work[PATH_MAX];
	struct cfl_msg_hub *hub;
	struct cfl_auth_client *auth;
	struct cfl_executor *exec;
	struct cfl_peer *peer;
	int up, down, logins, login_status;
	int deploys, trains, ends, aborts;
	uint64_t deploy_id, train_id;
};

static inline void on_login(struct cfl_peer *p, int status, const char *reason, void *arg)
{
	struct site *st = arg;

	(void)p;
	(void)reason;
	st->logins++;
	st->login_status = status;
}

static inline void site_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct site *st = arg;

	(void)code;
	(void)reason;
	st->peer = p;
	st->up++;
	cfl_peer_set_name(p, "server");
	assert_int_equal(cfl_auth_client_login(st->auth, p, on_login, st), 0);
}

static inline void site_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct site *st = arg;

	(void)code;
	(void)reason;
	st->down++;
	if (p != NULL) {
		cfl_auth_client_peer_down(st->auth, p);
		cfl_executor_peer_down(st->exec, p);
	}
	st->peer = NULL;
}

/* --- the stand-ins' topics ------------------------------------------------------------------- */

static inline void fake_deploy_end(void *arg, int status, const char *reason)
{
	struct site *st = arg;

	(void)reason;
	if (status == 0 && st->peer != NULL)
		assert_int_equal(cfl_peer_reply(st->peer, st->deploy_id, NULL, 0, NULL, 0), 0);
}

static inline void fake_data(void *arg, const uint8_t *d, size_t n)
{
	(void)arg;
	(void)d;
	(void)n;
}

static inline void fake_deploy(struct cfl_peer *p, const struct cfl_frame *f, int more,
                               struct cfl_msg_sink *sink, void *arg)
{
	struct site *st = arg;

	(void)p;
	st->deploys++;
	st->deploy_id = f->id;
	if (st->kind == SITE_REFUSE) {
		/* At the first frame, before any of the job: the rest of the body is cancelled. */
		assert_int_equal(cfl_peer_reply_error(p, f->id, CFL_STATUS_REFUSED, REFUSAL), 0);
		return;
	}
	if (more)
		*sink = (struct cfl_msg_sink){fake_data, fake_deploy_end, st};
	else
		fake_deploy_end(st, 0, NULL);
}

static inline void fake_train(struct cfl_peer *p, const struct cfl_frame *f, int more,
                              struct cfl_msg_sink *sink, void *arg)
{
	struct site *st = arg;

	(void)more;
	(void)sink;
	st->trains++;
	st->train_id = f->id;
	if (st->kind == SITE_DROP)
		cfl_conn_close(cfl_peer_conn(p), "site lost");
}

static inline void fake_end(struct cfl_peer *p, const struct cfl_frame *f, int more,
                            struct cfl_msg_sink *sink, void *arg)
{
	struct site *st = arg;
	char topic[32];

	(void)more;
	(void)sink;
	cfl_frame_header_str(f, "topic", topic, sizeof(topic));
	if (strcmp(topic, "job.abort") == 0) {
		st->aborts++;
		/* The training in progress ends with the job. */
		if (st->kind == SITE_HANG && st->trains > 0)
			cfl_peer_reply_error(p, st->train_id, "aborted", "the job was aborted");
	} else {
		st->ends++;
	}
}

static inline struct site *site_new(struct server *s, const char *name, enum site_kind kind)
{
	struct site *st = calloc(1, sizeof(*st));
	char crt[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
	struct cfl_auth_client_cfg cfg = {.name = name, .project = "jobp", .server_cn = "server1"};
	struct cfl_err e = {0};

	assert_non_null(st);
	assert_true(s->n_sites < MAX_SITES);
	s->sites[s->n_sites++] = st;
	st->s = s;
	st->kind = kind;
	snprintf(st->name, sizeof(st->name), "%s", name);
	cfg.cert_file = kit(crt, sizeof(crt), name, "client.crt");
	cfg.key_file = kit(key, sizeof(key), name, "client.key");
	cfg.root_ca = kit(ca, sizeof(ca), name, "rootCA.pem");
	cfg.kind = CFL_AUTH_CLIENT;
	cfg.mode = CFL_SEC_CLEAR;
	cfl_auth_times_default(&cfg.times);
	assert_int_equal(cfl_msg_hub_new(s->loop, name, &st->hub, &e), 0);
	if (cfl_auth_client_new(st->hub, &cfg, &st->auth, &e) != 0)
		fail_msg("auth client: %s", e.msg);
	cfl_msg_hub_on_peer(st->hub, site_up, site_down, st);
	if (kind == SITE_REAL) {
		static int serial;
		struct cfl_executor_cfg xc = {.work_dir = st->work, .site = name, .root_ca = ca};
		char sub[64];

		snprintf(sub, sizeof(sub), "work%d-%s", serial++, name);
		path_join(st->work, sizeof(st->work), tmp_dir, sub);
		if (cfl_executor_new(st->hub, &xc, &st->exec, &e) != 0)
			fail_msg("executor: %s", e.msg);
	} else {
		assert_int_equal(cfl_msg_hub_handle(st->hub, "job.deploy", fake_deploy, st), 0);
		assert_int_equal(cfl_msg_hub_handle(st->hub, "task.train", fake_train, st), 0);
		assert_int_equal(cfl_msg_hub_handle(st->hub, "job.end", fake_end, st), 0);
		assert_int_equal(cfl_msg_hub_handle(st->hub, "job.abort", fake_end, st), 0);
	}
	return st;
}

/* Connects and logs in; the scheduler is told, as the server's tick would. */
static inline struct site *site_join(struct server *s, const char *name, enum site_kind kind)
{
	struct site *st = site_new(s, name, kind);
	struct cfl_conn_opts o = cfl_msg_hub_conn_opts(st->hub, NULL);
	struct cfl_conn *conn;
	struct cfl_err e = {0};

	assert_int_equal(cfl_conn_dial(s->loop, "127.0.0.1", s->port, &o, &conn, &e), 0);
	assert_true(wait_for(s->loop, &st->logins, 1, WAIT_MS));
	assert_int_equal(st->login_status, 0);
	cfl_jobs_kick(s->jobs);
	return st;
}

static inline void server_stop(struct server *s)
{
	s->stopping = 1;
	for (int i = 0; i < s->n_sites; i++)
		cfl_msg_hub_free(s->sites[i]->hub);
	cfl_msg_hub_free(s->hub);
	/* No loop round after this: a training result posted to the loop is dropped with it. */
	for (int i = 0; i < s->n_sites; i++) {
		cfl_executor_free(s->sites[i]->exec);
		cfl_auth_client_free(s->sites[i]->auth);
		free(s->sites[i]);
	}
	cfl_jobs_free(s->jobs);
	cfl_auth_server_free(s->auth);
	cfl_listener_free(s->l);
	cfl_loop_free(s->loop);
}

/* Submitters: an admin of the project's org, and one with no org or role. */
static const struct cfl_jobs_who admin_who = {"admin@test.org", "test", "project_admin"};
static const struct cfl_jobs_who a_who = {"a", "", ""};
static const struct cfl_jobs_who lead_who = {"lead@test.org", "test", "lead"};

/* --- job records ----------------------------------------------------------------------------- */

struct job_view {
	char id[64], name[128], status[64], submitter[64], error[256];
	int rounds_done, num_rounds, metrics;
	json_t *m; /* the metrics (owned) */
};

/* The job as cfl_jobs_list shows it; 0, or -1 when there is no such job. */
static inline int view(struct cfl_jobs *j, const char *id, struct job_view *v)
{
	char *text = cfl_jobs_list(j, id);
	json_t *root = json_loads(text, 0, NULL), *o;

	free(text);
	memset(v, 0, sizeof(*v));
	o = json_array_get(json_object_get(root, "jobs"), 0);
	if (o == NULL) {
		json_decref(root);
		return -1;
	}
	snprintf(v->id, sizeof(v->id), "%s", json_string_value(json_object_get(o, "id")));
	snprintf(v->name, sizeof(v->name), "%s", json_string_value(json_object_get(o, "name")));
	snprintf(v->status, sizeof(v->status), "%s",
	         json_string_value(json_object_get(o, "status")));
	snprintf(v->submitter, sizeof(v->submitter), "%s",
	         json_string_value(json_object_get(o, "submitter")));
	snprintf(v->error, sizeof(v->error), "%s", json_string_value(json_object_get(o, "error")));
	v->rounds_done = (int)json_integer_value(json_object_get(o, "rounds_done"));
	v->num_rounds = (int)json_integer_value(json_object_get(o, "num_rounds"));
	v->m = json_incref(json_object_get(o, "metrics"));
	v->metrics = (int)json_array_size(v->m);
	json_decref(root);
	return 0;
}

static inline void view_release(struct job_view *v)
{
	json_decref(v->m);
	v->m = NULL;
}

/* Runs the loop until job `id` is in `status` (bounded); fails the test otherwise. */
static inline void wait_status(struct server *s, const char *id, const char *status, uint64_t ms)
{
	uint64_t end = cfl_loop_now_ms(s->loop) + ms;
	struct job_view v;

	for (;;) {
		assert_int_equal(view(s->jobs, id, &v), 0);
		view_release(&v);
		if (strcmp(v.status, status) == 0)
			return;
		if (cfl_loop_now_ms(s->loop) >= end)
			fail_msg("job %s is %s (%s), not %s after %llu ms", id, v.status, v.error,
			         status, (unsigned long long)ms);
		assert_true(cfl_loop_run_once(s->loop, 10) >= 0);
	}
}

static inline void submit(struct server *s, const char *bundle, char *id)
{
	struct cfl_err e = {0};

	if (cfl_jobs_submit(s->jobs, bundle, strlen(bundle), &admin_who, id, &e) != 0)
		fail_msg("submit: %s", e.msg);
}

/* The global model the job saved: every value of "w" must be `want`. */
static inline void expect_model(struct server *s, const char *id, size_t count, float want)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct cfl_model *m = NULL;
	struct cfl_err e = {0};
	const struct cfl_tensor *w;

	path_join(dir, sizeof(dir), s->jobs_dir, id);
	if (cfl_model_load(path_join(path, sizeof(path), dir, "model.safetensors"), 1u << 20, &m,
	                   &e) != 0)
		fail_msg("model: %s", e.msg);
	w = cfl_model_find(m, "w");
	assert_non_null(w);
	assert_int_equal(w->count, count);
	for (size_t i = 0; i < w->count; i++)
		if (w->data[i] != want)
			fail_msg("w[%zu] = %g, not %g", i, (double)w->data[i], (double)want);
	cfl_model_free(m);
}

static inline json_t *metric(const struct job_view *v, int round, const char *key)
{
	return json_object_get(json_array_get(v->m, (size_t)round - 1), key);
}

/* Submitting `pairs` as a bundle fails with `why`. */
static inline void refused(struct server *s, const char *const *pairs, const char *why)
{
	char *bundle = bundle_of(pairs), id[64] = "";
	struct cfl_err e = {0};

	assert_int_equal(cfl_jobs_submit(s->jobs, bundle, strlen(bundle), &a_who, id, &e),
	                 CFL_ECONFIG);
	free(bundle);
	if (strcmp(e.msg, why) != 0)
		fail_msg("message '%s', not '%s'", e.msg, why);
	assert_string_equal(id, "");
}

/* The digits of the source tree ($CFL_SRC/data/digits.csv.gz) into `data`; skips the test when
 * they cannot be read. */
static inline void digits_or_skip(char *data, size_t size)
{
	const char *src = getenv("CFL_SRC");

	if (src == NULL)
		skip();
	path_join(data, size, src, "data/digits.csv.gz");
	if (access(data, R_OK) != 0)
		skip();
}

/* --- the group setup and teardown ---------------------------------------------------------- */

static inline int setup(void **state)
{
	(void)state;
	cfl_log_set_level(CFL_LOG_ERROR);
	return tmp_make("test-jobs") == 0 && provision("jobp", jobp_yml, prod, sizeof(prod)) == 0
	               ? 0
	               : -1;
}

static inline int teardown(void **state)
{
	(void)state;
	cfl_log_set_sink(NULL, NULL);
	tmp_remove();
	return 0;
}

#endif
