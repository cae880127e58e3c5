/* Unit tests for the server's jobs (src/jobs/jobstore.c, fedavg.c): the job store (bundles
 * accepted and refused with their reason, listing, abort, download, states persisted and
 * reloaded) and FedAvg's rounds driven in this process: a server hub with the auth server and
 * the job runtime, and sites on loopback that log in with kits provisioned by the library and
 * run the executor (the "synthetic" model, whose rounds have exact results, or the digits), or
 * stand-ins that drop out in the middle of a round.
 *
 * The synthetic model is one tensor "w" of zeros; site i of a run adds i + 1 to it with weight
 * 1, so a round with sites 0 and 1 moves it by 1.5, a round with site 0 alone by 1. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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

static const char *kit(char *buf, size_t size, const char *who, const char *file)
{
	if (snprintf(buf, size, "%s/%s/startup/%s", prod, who, file) >= (int)size)
		fail_msg("path too long");
	return buf;
}

/* --- bundles --------------------------------------------------------------------------------- */

/* Signs bundle `b` as admin@test.org does, when its names allow a manifest. */
static void sign(json_t *b, const struct cfl_manifest *m, int ok)
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
static char *bundle_with(const char *const *pairs, int signed_by_admin)
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

static char *bundle_of(const char *const *pairs)
{
	return bundle_with(pairs, 1);
}

/* A job of the built-in executor on the synthetic model. */
static char *synthetic_job(int rounds, int min_clients, const char *sites, const char *name)
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

static void srv_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct server *s = arg;

	(void)code;
	(void)reason;
	cfl_auth_server_peer_up(s->auth, p);
}

/* As the server does: a departure may let a waiting run go on. */
static void srv_down(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct server *s = arg;

	(void)code;
	(void)reason;
	if (p != NULL)
		cfl_auth_server_peer_down(s->auth, p);
	if (!s->stopping)
		cfl_jobs_kick(s->jobs);
}

static void jobs_open(struct server *s)
{
	char ca[PATH_MAX], crt[PATH_MAX];
	struct cfl_jobs_cfg cfg = {.dir = s->jobs_dir,
	                           .root_ca = kit(ca, sizeof(ca), "server1", "rootCA.pem"),
	                           .cert_file = kit(crt, sizeof(crt), "server1", "server.crt")};
	struct cfl_err e = {0};

	if (cfl_jobs_new(s->hub, s->auth, &cfg, &s->jobs, &e) != 0)
		fail_msg("jobs: %s", e.msg);
}

static void server_start(struct server *s, const char *tag)
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

static void on_login(struct cfl_peer *p, int status, const char *reason, void *arg)
{
	struct site *st = arg;

	(void)p;
	(void)reason;
	st->logins++;
	st->login_status = status;
}

static void site_up(struct cfl_peer *p, int code, const char *reason, void *arg)
{
	struct site *st = arg;

	(void)code;
	(void)reason;
	st->peer = p;
	st->up++;
	cfl_peer_set_name(p, "server");
	assert_int_equal(cfl_auth_client_login(st->auth, p, on_login, st), 0);
}

static void site_down(struct cfl_peer *p, int code, const char *reason, void *arg)
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

static void fake_deploy_end(void *arg, int status, const char *reason)
{
	struct site *st = arg;

	(void)reason;
	if (status == 0 && st->peer != NULL)
		assert_int_equal(cfl_peer_reply(st->peer, st->deploy_id, NULL, 0, NULL, 0), 0);
}

static void fake_data(void *arg, const uint8_t *d, size_t n)
{
	(void)arg;
	(void)d;
	(void)n;
}

static void fake_deploy(struct cfl_peer *p, const struct cfl_frame *f, int more,
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

static void fake_train(struct cfl_peer *p, const struct cfl_frame *f, int more,
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

static void fake_end(struct cfl_peer *p, const struct cfl_frame *f, int more,
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

static struct site *site_new(struct server *s, const char *name, enum site_kind kind)
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
static struct site *site_join(struct server *s, const char *name, enum site_kind kind)
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

static void server_stop(struct server *s)
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
static int view(struct cfl_jobs *j, const char *id, struct job_view *v)
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

static void view_release(struct job_view *v)
{
	json_decref(v->m);
	v->m = NULL;
}

/* Runs the loop until job `id` is in `status` (bounded); fails the test otherwise. */
static void wait_status(struct server *s, const char *id, const char *status, uint64_t ms)
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

static void submit(struct server *s, const char *bundle, char *id)
{
	struct cfl_err e = {0};

	if (cfl_jobs_submit(s->jobs, bundle, strlen(bundle), &admin_who, id, &e) != 0)
		fail_msg("submit: %s", e.msg);
}

/* The global model the job saved: every value of "w" must be `want`. */
static void expect_model(struct server *s, const char *id, size_t count, float want)
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

static json_t *metric(const struct job_view *v, int round, const char *key)
{
	return json_object_get(json_array_get(v->m, (size_t)round - 1), key);
}

/* --- the store ------------------------------------------------------------------------------- */

/* Submitting `pairs` as a bundle fails with `why`. */
static void refused(struct server *s, const char *const *pairs, const char *why)
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

/* The same, for jansson's own words: the message starts with `why`. */
static void refused_syntax(struct server *s, const char *const *pairs, const char *why)
{
	char *bundle = bundle_of(pairs), id[64] = "";
	struct cfl_err e = {0};

	assert_int_equal(cfl_jobs_submit(s->jobs, bundle, strlen(bundle), &a_who, id, &e),
	                 CFL_ECONFIG);
	free(bundle);
	if (strncmp(e.msg, why, strlen(why)) != 0 || strlen(e.msg) <= strlen(why))
		fail_msg("message '%s' does not start with '%s'", e.msg, why);
}

static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_bad_bundles(void **state)
{
	static const char wf[] = "{\"workflow\": {\"name\": \"fedavg\", \"num_rounds\": 1}, "
	                         "\"executor\": {}}";
	char many[66][16], *text, id[64];
	const char *pairs[2 * 66 + 1];
	struct cfl_err e = {0};
	struct server s;

	(void)state;
	server_start(&s, "jobs-bad");
	/* Not a bundle at all. */
	text = "not json";
	assert_int_equal(cfl_jobs_submit(s.jobs, text, strlen(text), &a_who, id, &e), CFL_ECONFIG);
	assert_string_equal(e.msg, "not a job bundle (a JSON {\"files\": {...}})");
	text = "{\"files\": []}";
	assert_int_equal(cfl_jobs_submit(s.jobs, text, strlen(text), &a_who, id, &e), CFL_ECONFIG);
	assert_string_equal(e.msg, "not a job bundle (a JSON {\"files\": {...}})");
	/* At most 64 files. */
	for (int i = 0; i < 65; i++) {
		snprintf(many[i], sizeof(many[i]), "f%d.txt", i);
		pairs[2 * i] = many[i];
		pairs[2 * i + 1] = "x";
	}
	pairs[130] = NULL;
	refused(&s, pairs, "not a job bundle (a JSON {\"files\": {...}})");
	/* File names are plain names. */
	refused(&s, (const char *const[]){"config.json", wf, "../evil.sh", "x", NULL},
	        "bad file name '../evil.sh' in the job");
	refused(&s, (const char *const[]){"config.json", wf, "sub/evil.sh", "x", NULL},
	        "bad file name 'sub/evil.sh' in the job");
	refused(&s, (const char *const[]){"config.json", wf, ".hidden", "x", NULL},
	        "bad file name '.hidden' in the job");
	refused(&s, (const char *const[]){"config.json", wf, "a b", "x", NULL},
	        "bad file name 'a b' in the job");
	text = "{\"files\": {\"config.json\": 5}}";
	assert_int_equal(cfl_jobs_submit(s.jobs, text, strlen(text), &a_who, id, &e), CFL_ECONFIG);
	assert_string_equal(e.msg, "bad file name 'config.json' in the job");
	/* config.json: present, base64, JSON, an object, with a known workflow. */
	refused(&s, (const char *const[]){"meta.json", "{}", NULL}, "the job has no config.json");
	text = "{\"files\": {\"config.json\": \"!!!!\"}}";
	assert_int_equal(cfl_jobs_submit(s.jobs, text, strlen(text), &a_who, id, &e), CFL_ECONFIG);
	assert_string_equal(e.msg, "config.json is not base64");
	refused_syntax(&s, (const char *const[]){"config.json", "{\"workflow\": ", NULL},
	               "config.json: line 1: ");
	refused(&s, (const char *const[]){"config.json", "[1]", NULL},
	        "config.json: not a JSON object");
	refused_syntax(&s, (const char *const[]){"config.json", wf, "meta.json", "\n{,}", NULL},
	               "meta.json: line 2: ");
	refused(&s, (const char *const[]){"config.json", wf, "meta.json", "[]", NULL},
	        "meta.json: not a JSON object");
	refused(&s, (const char *const[]){"config.json", "{\"executor\": {}}", NULL},
	        "config.json needs 'workflow' and 'executor'");
	refused(&s,
	        (const char *const[]){"config.json",
	                              "{\"workflow\": {\"name\": \"cyclic\"}, \"executor\": {}}",
	                              NULL},
	        "unknown workflow (allowed: fedavg)");
	refused(&s,
	        (const char *const[]){"config.json",
	                              "{\"workflow\": {\"name\": \"fedavg\", \"num_rounds\": 0}, "
	                              "\"executor\": {}}",
	                              NULL},
	        "workflow.num_rounds must be 1..100000");
	refused(&s,
	        (const char *const[]){"config.json",
	                              "{\"workflow\": {\"name\": \"fedavg\", \"num_rounds\": "
	                              "100001}, \"executor\": {}}",
	                              NULL},
	        "workflow.num_rounds must be 1..100000");
	/* Nothing of them was kept. */
	assert_int_equal(entries(s.jobs_dir), 0);
	text = cfl_jobs_list(s.jobs, NULL);
	assert_string_equal(text, "{\"jobs\":[]}");
	free(text);
	server_stop(&s);
}

static void test_store(void **state)
{
	char *b1 = synthetic_job(3, 2, "[\"@ALL\"]", "first"), id1[64], id2[64], id3[64];
	const char *pairs[] = {"config.json",
	                       "{\"workflow\": {\"name\": \"scatter_and_gather\", \"num_rounds\": "
	                       "2}, \"executor\": {\"type\": \"builtin\", \"dataset\": "
	                       "\"synthetic\"}}",
	                       NULL};
	char *b2 = bundle_of(pairs), *list, *dl = NULL, path[PATH_MAX], dir[PATH_MAX];
	struct cfl_err e = {0};
	struct job_view v;
	struct server s;
	struct stat st;
	size_t len = 0;
	json_t *root, *files;

	(void)state;
	server_start(&s, "jobs-store");
	submit(&s, b1, id1);
	submit(&s, b2, id2);
	free(b1);
	free(b2);
	/* Ids: UTC time and 6 random hex digits. */
	assert_int_equal(strlen(id1), 22);
	assert_true(id1[8] == '-' && id1[15] == '-');
	assert_string_not_equal(id1, id2);

	/* No site is connected: both wait, as submitted. */
	spin(s.loop, 50);
	assert_int_equal(view(s.jobs, id1, &v), 0);
	assert_string_equal(v.name, "first");
	assert_string_equal(v.status, "SUBMITTED");
	assert_string_equal(v.submitter, "admin@test.org");
	assert_int_equal(v.num_rounds, 3);
	assert_int_equal(v.rounds_done, 0);
	assert_int_equal(v.metrics, 0);
	view_release(&v);
	assert_int_equal(view(s.jobs, id2, &v), 0);
	assert_string_equal(v.name, "job"); /* no meta.json */
	assert_string_equal(v.status, "SUBMITTED");
	view_release(&v);
	assert_int_equal(view(s.jobs, "nope", &v), -1);
	/* The list: newest first. */
	list = cfl_jobs_list(s.jobs, NULL);
	root = json_loads(list, 0, NULL);
	free(list);
	assert_int_equal(json_array_size(json_object_get(root, "jobs")), 2);
	assert_string_equal(json_string_value(json_object_get(
	                            json_array_get(json_object_get(root, "jobs"), 0), "id")),
	                    id2);
	json_decref(root);
	/* Its folder: the bundle as submitted (private) and the state. */
	path_join(dir, sizeof(dir), s.jobs_dir, id1);
	assert_int_equal(stat(path_join(path, sizeof(path), dir, "bundle.json"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(path_join(path, sizeof(path), dir, "job.json"), &st), 0);

	/* Abort before it started; not twice; not an unknown job. */
	assert_int_equal(cfl_jobs_abort(s.jobs, id1, &e), 0);
	assert_int_equal(view(s.jobs, id1, &v), 0);
	assert_string_equal(v.status, "FINISHED:ABORTED");
	assert_string_equal(v.error, "aborted before it started");
	view_release(&v);
	assert_int_equal(cfl_jobs_abort(s.jobs, id1, &e), CFL_EINVAL);
	snprintf(path, sizeof(path), "job %s already FINISHED:ABORTED", id1);
	assert_string_equal(e.msg, path);
	assert_int_equal(cfl_jobs_abort(s.jobs, "nope", &e), CFL_ENOENT);
	assert_string_equal(e.msg, "no job 'nope'");

	/* Download: what exists of the results (here only the state). */
	assert_int_equal(cfl_jobs_download(s.jobs, "nope", &dl, &len, &e), CFL_ENOENT);
	assert_string_equal(e.msg, "no job 'nope'");
	assert_int_equal(cfl_jobs_download(s.jobs, id1, &dl, &len, &e), 0);
	assert_int_equal(len, strlen(dl));
	root = json_loads(dl, 0, NULL);
	free(dl);
	assert_string_equal(json_string_value(json_object_get(root, "id")), id1);
	files = json_object_get(root, "files");
	assert_int_equal(json_object_size(files), 1);
	{
		const char *b64 = json_string_value(json_object_get(files, "job.json"));
		uint8_t *raw = NULL;
		size_t raw_len = 0;
		json_t *state_rec;

		assert_non_null(b64);
		assert_int_equal(cfl_base64_decode(b64, strlen(b64), &raw, &raw_len), 0);
		state_rec = json_loadb((const char *)raw, raw_len, 0, NULL);
		free(raw);
		assert_string_equal(json_string_value(json_object_get(state_rec, "state")),
		                    "FINISHED:ABORTED");
		json_decref(state_rec);
	}
	json_decref(root);

	/* A restarted server finds the jobs as they were; a folder that is no job is skipped. */
	path_join(path, sizeof(path), s.jobs_dir, "not-a-job");
	assert_int_equal(mkdir(path, 0700), 0);
	cfl_jobs_free(s.jobs);
	jobs_open(&s);
	assert_true(logged("cannot load job 'not-a-job'", NULL));
	assert_int_equal(view(s.jobs, id1, &v), 0);
	assert_string_equal(v.status, "FINISHED:ABORTED");
	assert_string_equal(v.error, "aborted before it started");
	assert_string_equal(v.name, "first");
	assert_string_equal(v.submitter, "admin@test.org");
	view_release(&v);
	{
		/* The submitter's org and role too: the server's policy checks them. */
		struct cfl_jobs_who by;

		assert_int_equal(cfl_jobs_submitter(s.jobs, id1, &by), 0);
		assert_memory_equal(&by, &admin_who, sizeof(by));
		assert_int_equal(cfl_jobs_submitter(s.jobs, "nope", &by), CFL_ENOENT);
	}
	assert_int_equal(view(s.jobs, id2, &v), 0);
	assert_string_equal(v.status, "SUBMITTED");
	assert_int_equal(v.num_rounds, 2);
	view_release(&v);
	/* A third job after the restart. */
	b1 = synthetic_job(1, 1, "[\"@ALL\"]", "third");
	submit(&s, b1, id3);
	free(b1);
	assert_int_equal(view(s.jobs, id3, &v), 0);
	assert_string_equal(v.status, "SUBMITTED");
	view_release(&v);
	server_stop(&s);
}

/* --- FedAvg ---------------------------------------------------------------------------------- */

static void test_fedavg_two_rounds(void **state)
{
	char *b = synthetic_job(2, 2, "[\"@ALL\"]", "synth"), id[64], *dl = NULL, *csv = NULL;
	char dir[PATH_MAX], path[PATH_MAX];
	struct cfl_err e = {0};
	struct job_view v;
	struct server s;
	struct site *s1, *s2;
	size_t len = 0;
	json_t *root, *files;

	(void)state;
	server_start(&s, "jobs-fedavg");
	s1 = site_join(&s, "site-1", SITE_REAL);
	s2 = site_join(&s, "site-2", SITE_REAL);
	submit(&s, b, id);
	free(b);
	wait_status(&s, id, "FINISHED:COMPLETED", JOB_WAIT_MS);

	assert_int_equal(view(s.jobs, id, &v), 0);
	assert_int_equal(v.rounds_done, 2);
	assert_string_equal(v.error, "");
	assert_int_equal(v.metrics, 2);
	for (int r = 1; r <= 2; r++) {
		assert_int_equal(json_integer_value(metric(&v, r, "round")), r);
		assert_int_equal(json_integer_value(metric(&v, r, "clients")), 2);
		assert_int_equal(json_integer_value(metric(&v, r, "steps")), 2);
		/* No test data for the synthetic model. */
		assert_true(json_real_value(metric(&v, r, "test_accuracy")) == -1.0);
	}
	view_release(&v);
	/* Round 1: 0 + (1 + 2) / 2; round 2: 1.5 + 1.5. */
	expect_model(&s, id, 4, 3.0f);
	path_join(dir, sizeof(dir), s.jobs_dir, id);
	assert_int_equal(cfl__fs_read_file(path_join(path, sizeof(path), dir, "metrics.csv"),
	                                   1u << 20, &csv, &len, &e),
	                 0);
	assert_memory_equal(
	        csv, "round,clients,train_loss,test_accuracy,test_loss,seconds\n1,2,",
	        strlen("round,clients,train_loss,test_accuracy,test_loss,seconds\n1,2,"));
	assert_non_null(strstr(csv, "\n2,2,"));
	free(csv);
	/* Each site got the job (unpacked in its work folder). */
	path_join(dir, sizeof(dir), s1->work, id);
	assert_int_equal(access(path_join(path, sizeof(path), dir, "config.json"), F_OK), 0);
	path_join(dir, sizeof(dir), s2->work, id);
	assert_int_equal(access(path_join(path, sizeof(path), dir, "config.json"), F_OK), 0);

	/* The results as a bundle. */
	assert_int_equal(cfl_jobs_download(s.jobs, id, &dl, &len, &e), 0);
	root = json_loads(dl, 0, NULL);
	free(dl);
	files = json_object_get(root, "files");
	assert_non_null(json_object_get(files, "model.safetensors"));
	assert_non_null(json_object_get(files, "metrics.csv"));
	assert_non_null(json_object_get(files, "job.json"));
	{
		const char *b64 = json_string_value(json_object_get(files, "model.safetensors"));
		struct cfl_model *m = NULL;
		uint8_t *raw = NULL;
		size_t raw_len = 0;

		assert_int_equal(cfl_base64_decode(b64, strlen(b64), &raw, &raw_len), 0);
		assert_int_equal(cfl_model_parse(raw, raw_len, &m, &e), 0);
		free(raw);
		assert_true(cfl_model_find(m, "w")->data[3] == 3.0f);
		cfl_model_free(m);
	}
	json_decref(root);

	/* After a restart: still completed, its metrics kept; nothing runs again. */
	cfl_jobs_free(s.jobs);
	jobs_open(&s);
	spin(s.loop, 100);
	assert_int_equal(view(s.jobs, id, &v), 0);
	assert_string_equal(v.status, "FINISHED:COMPLETED");
	assert_int_equal(v.rounds_done, 2);
	assert_int_equal(v.metrics, 2);
	view_release(&v);
	server_stop(&s);
}

/* The built-in trainer keeps its data in one cache per process, loaded by whoever needs it
 * first. Real sites are processes of their own; here two executors' worker threads share this
 * process, so the cache is filled on this thread before they start (and only read after). */
static void preload_digits(const char *data)
{
	json_t *ex = json_pack("{s:s, s:s, s:s}", "dataset", "digits", "data_path", data, "arch",
	                       "softmax");
	struct cfl_model *m = NULL;
	struct cfl_err e = {0};
	float acc = 0, loss = 0;

	assert_int_equal(cfl_trainer_builtin_init_model(ex, &m, &e), 0);
	if (cfl_trainer_builtin_eval(ex, m, &acc, &loss, &e) != 0)
		fail_msg("digits: %s", e.msg);
	cfl_model_free(m);
	json_decref(ex);
}

/* The built-in trainer on the 8x8 digits, two sites, two rounds: the model learns. */
static void test_fedavg_digits(void **state)
{
	const char *src = getenv("CFL_SRC");
	char config[PATH_MAX + 512], data[PATH_MAX], id[64], *b;
	const char *pairs[] = {"config.json", config, NULL};
	struct job_view v;
	struct server s;

	(void)state;
	if (src == NULL)
		skip();
	path_join(data, sizeof(data), src, "data/digits.csv.gz");
	if (access(data, R_OK) != 0)
		skip();
	snprintf(config, sizeof(config),
	         "{\"workflow\": {\"name\": \"fedavg\", \"num_rounds\": 2, \"min_clients\": 2}, "
	         "\"executor\": {\"type\": \"builtin\", \"dataset\": \"digits\", \"data_path\": "
	         "\"%s\", \"arch\": \"softmax\", \"lr\": 0.1, \"epochs\": 2, \"batch\": 16}, "
	         "\"sites\": [\"site-1\", \"site-2\"]}",
	         data);
	b = bundle_of(pairs);
	server_start(&s, "jobs-digits");
	preload_digits(data);
	site_join(&s, "site-1", SITE_REAL);
	site_join(&s, "site-2", SITE_REAL);
	submit(&s, b, id);
	free(b);
	wait_status(&s, id, "FINISHED:COMPLETED", JOB_WAIT_MS);
	assert_int_equal(view(s.jobs, id, &v), 0);
	assert_int_equal(v.metrics, 2);
	for (int r = 1; r <= 2; r++) {
		/* Each site trains 2 epochs on its half of the 1347 training digits. */
		assert_int_equal(json_integer_value(metric(&v, r, "clients")), 2);
		assert_true(json_integer_value(metric(&v, r, "steps")) > 1000);
		assert_true(json_real_value(metric(&v, r, "train_loss")) > 0);
	}
	if (!(json_real_value(metric(&v, 2, "test_accuracy")) > 0.8))
		fail_msg("test accuracy %g after 2 rounds",
		         json_real_value(metric(&v, 2, "test_accuracy")));
	view_release(&v);
	server_stop(&s);
}

/* A site lost in the middle of round 1: left out of that round, the run goes on without it
 * when min_clients allows. */
static void test_site_lost_mid_round(void **state)
{
	char *b = synthetic_job(2, 1, "[\"site-1\", \"site-2\"]", "lossy"), id[64];
	struct job_view v;
	struct server s;
	struct site *lost;

	(void)state;
	server_start(&s, "jobs-lost");
	site_join(&s, "site-1", SITE_REAL);
	lost = site_join(&s, "site-2", SITE_DROP);
	submit(&s, b, id);
	free(b);
	wait_status(&s, id, "FINISHED:COMPLETED", JOB_WAIT_MS);
	assert_int_equal(lost->deploys, 1);
	assert_int_equal(lost->trains, 1);
	assert_int_equal(lost->down, 1);
	assert_true(logged("site-2 dropped out of round 1", NULL));
	assert_int_equal(view(s.jobs, id, &v), 0);
	assert_int_equal(v.rounds_done, 2);
	assert_int_equal(json_integer_value(metric(&v, 1, "clients")), 1);
	assert_int_equal(json_integer_value(metric(&v, 2, "clients")), 1);
	view_release(&v);
	/* site-1 (index 0) alone: +1 per round. */
	expect_model(&s, id, 4, 2.0f);
	server_stop(&s);
}

/* The state list_jobs ID shows for `site` ("accepted", "refused", "failed") and its reason. */
static void site_state(struct cfl_jobs *j, const char *id, const char *site, char *state,
                       char *reason, size_t size)
{
	char *text = cfl_jobs_list(j, id);
	json_t *root = json_loads(text, 0, NULL);
	json_t *o = json_object_get(
	        json_object_get(json_array_get(json_object_get(root, "jobs"), 0), "sites"), site);

	free(text);
	snprintf(state, size, "%s",
	         o != NULL ? json_string_value(json_object_get(o, "state")) : "");
	snprintf(reason, size, "%s",
	         o != NULL ? json_string_value(json_object_get(o, "reason")) : "");
	json_decref(root);
}

/* A site that refuses the job: asked once, never again for that job; the job goes on with the
 * site that accepted (min_clients 1), and list_jobs shows both sites' answers. */
static void test_site_refuses(void **state)
{
	char *b = synthetic_job(2, 1, "[\"@ALL\"]", "refused"), id[64], st[256], why[256];
	struct server s;
	struct site *no;

	(void)state;
	server_start(&s, "jobs-refuse");
	site_join(&s, "site-1", SITE_REAL);
	no = site_join(&s, "site-2", SITE_REFUSE);
	submit(&s, b, id);
	free(b);
	wait_status(&s, id, "FINISHED:COMPLETED", JOB_WAIT_MS);
	assert_int_equal(no->deploys, 1);
	assert_int_equal(no->trains, 0);
	site_state(s.jobs, id, "site-2", st, why, sizeof(st));
	assert_string_equal(st, "refused");
	assert_string_equal(why, REFUSAL);
	site_state(s.jobs, id, "site-1", st, why, sizeof(st));
	assert_string_equal(st, "accepted");
	assert_true(logged("site-2 refused the job: " REFUSAL, NULL));
	expect_model(&s, id, 4, 2.0f);
	server_stop(&s);
}

/* Refusals that leave fewer than min_clients sites end the job at once, naming them. */
static void test_refusals_below_min_clients(void **state)
{
	char *b = synthetic_job(2, 2, "[\"@ALL\"]", "refused2"), id[64];
	struct job_view v;
	struct server s;

	(void)state;
	server_start(&s, "jobs-refuse2");
	site_join(&s, "site-1", SITE_REAL);
	site_join(&s, "site-2", SITE_REFUSE);
	submit(&s, b, id);
	free(b);
	wait_status(&s, id, "FINISHED:EXECUTION_EXCEPTION", JOB_WAIT_MS);
	assert_int_equal(view(s.jobs, id, &v), 0);
	assert_string_equal(v.error,
	                    "1 of 2 sites may run the job, fewer than min_clients 2: " REFUSAL ";");
	view_release(&v);
	server_stop(&s);
}

/* The same loss with min_clients 2: the round fails, and the job with it. */
static void test_site_lost_below_min_clients(void **state)
{
	char *b = synthetic_job(2, 2, "[\"@ALL\"]", "strict"), id[64];
	struct job_view v;
	struct server s;

	(void)state;
	server_start(&s, "jobs-strict");
	site_join(&s, "site-1", SITE_REAL);
	site_join(&s, "site-2", SITE_DROP);
	submit(&s, b, id);
	free(b);
	wait_status(&s, id, "FINISHED:EXECUTION_EXCEPTION", JOB_WAIT_MS);
	assert_int_equal(view(s.jobs, id, &v), 0);
	assert_string_equal(v.error, "round 1 got 1 updates, fewer than min_clients 2");
	assert_int_equal(v.rounds_done, 0);
	assert_int_equal(v.metrics, 0);
	view_release(&v);
	server_stop(&s);
}

/* Too few sites: an @ALL job waits as submitted, a job naming its sites waits dispatched;
 * both run once the missing site logs in. */
static void test_min_clients_not_met(void **state)
{
	char *all = synthetic_job(1, 2, "[\"@ALL\"]", "all"), id_all[64];
	char *named = synthetic_job(1, 2, "[\"site-1\", \"site-2\"]", "named"), id_named[64];
	struct job_view v;
	struct server s;

	(void)state;
	server_start(&s, "jobs-min");
	site_join(&s, "site-1", SITE_REAL);
	submit(&s, all, id_all);
	free(all);
	spin(s.loop, 1200); /* a tick of the scheduler */
	assert_int_equal(view(s.jobs, id_all, &v), 0);
	assert_string_equal(v.status, "SUBMITTED");
	view_release(&v);
	site_join(&s, "site-2", SITE_REAL);
	wait_status(&s, id_all, "FINISHED:COMPLETED", JOB_WAIT_MS);
	expect_model(&s, id_all, 4, 1.5f);

	/* Now site-2 leaves, and a job that names it waits for it. */
	cfl_conn_close(cfl_peer_conn(s.sites[1]->peer), "bye");
	assert_true(wait_for(s.loop, &s.sites[1]->down, 1, WAIT_MS));
	submit(&s, named, id_named);
	free(named);
	spin(s.loop, 1200);
	assert_int_equal(view(s.jobs, id_named, &v), 0);
	assert_string_equal(v.status, "DISPATCHED");
	assert_int_equal(v.rounds_done, 0);
	view_release(&v);
	assert_true(logged("waiting for clients: 1 of 2 connected", NULL));
	site_join(&s, "site-2", SITE_REAL);
	wait_status(&s, id_named, "FINISHED:COMPLETED", JOB_WAIT_MS);
	expect_model(&s, id_named, 4, 1.5f);
	server_stop(&s);
}

/* The job's signature: the server refuses a job its submitter did not sign at submission; a
 * site refuses a job changed after it (here in the server's store), naming the file, and the
 * server logs the refusal per site. */
static void test_signatures(void **state)
{
	const char *pairs[] = {"config.json",
	                       "{\"workflow\": {\"name\": \"fedavg\", \"num_rounds\": 1}, "
	                       "\"executor\": {\"type\": \"builtin\", \"dataset\": \"synthetic\"}}",
	                       NULL};
	char *b = bundle_with(pairs, 0), id[64] = "", path[PATH_MAX], dir[PATH_MAX], *b64;
	struct cfl_err e = {0};
	struct job_view v;
	struct server s;
	json_t *stored;

	(void)state;
	server_start(&s, "jobs-signed");
	assert_int_equal(cfl_jobs_submit(s.jobs, b, strlen(b), &admin_who, id, &e), CFL_EVERIFY);
	assert_string_equal(e.msg, "the job is not signed (it needs 'manifest', 'signature' and "
	                           "'certificate' strings)");
	free(b);
	/* Signed by admin@test.org, submitted by another admin. */
	b = bundle_of(pairs);
	assert_int_equal(cfl_jobs_submit(s.jobs, b, strlen(b), &lead_who, id, &e), CFL_EVERIFY);
	assert_string_equal(e.msg,
	                    "the job is signed by 'admin@test.org', not by 'lead@test.org' who "
	                    "submits it");
	assert_string_equal(id, "");
	assert_int_equal(entries(s.jobs_dir), 0);
	free(b);

	/* Stored as signed, then changed on the server's disk before any site has it. */
	b = synthetic_job(1, 2, "[\"@ALL\"]", "changed");
	submit(&s, b, id);
	free(b);
	path_join(dir, sizeof(dir), s.jobs_dir, id);
	path_join(path, sizeof(path), dir, "bundle.json");
	stored = json_load_file(path, 0, NULL);
	assert_non_null(stored);
	b = "{\"workflow\": {\"name\": \"fedavg\", \"num_rounds\": 1, \"min_clients\": 2}, "
	    "\"executor\": {\"type\": \"command\", \"command\": [\"touch\", \"pwned\"]}}";
	assert_int_equal(cfl_base64_encode(b, strlen(b), &b64), 0);
	json_object_set_new(json_object_get(stored, "files"), "config.json", json_string(b64));
	free(b64);
	assert_int_equal(json_dump_file(stored, path, JSON_COMPACT), 0);
	json_decref(stored);
	site_join(&s, "site-1", SITE_REAL);
	site_join(&s, "site-2", SITE_REAL);
	wait_status(&s, id, "FINISHED:EXECUTION_EXCEPTION", JOB_WAIT_MS);
	assert_int_equal(view(s.jobs, id, &v), 0);
	/* The first refusal leaves one site for min_clients 2: the job ends, naming it. */
	assert_true(strncmp(v.error,
	                    "1 of 2 sites may run the job, fewer than min_clients 2: site-",
	                    61) == 0);
	assert_non_null(strstr(v.error, ": 'config.json' does not match its signed digest;"));
	view_release(&v);
	assert_true(logged("refused the job: 'config.json' does not match its signed digest", id));
	/* Nothing of the job is kept on the sites. */
	for (int i = 0; i < 2; i++) {
		assert_null(cfl__executor_config(s.sites[i]->exec, id));
		assert_null(cfl__executor_submitter(s.sites[i]->exec, id));
	}
	server_stop(&s);
}

/* The executor's deployment on its own: who signed is kept with the job, a refused bundle
 * replaces nothing and leaves nothing. */
static void test_deploy_submitter(void **state)
{
	const char *pairs[] = {"config.json", "{\"executor\": {}}", "meta.json", "{}", NULL};
	const char *job = "20260101-000000-abcdef";
	char *good = bundle_of(pairs), *bad;
	const struct cfl_job_signer *who;
	struct cfl_err e = {0};
	struct server s;
	struct site *st;
	json_t *b;

	(void)state;
	server_start(&s, "jobs-deploy");
	st = site_new(&s, "site-1", SITE_REAL);
	assert_int_equal(
	        cfl__executor_deploy(st->exec, job, (const uint8_t *)good, strlen(good), &e), 0);
	who = cfl__executor_submitter(st->exec, job);
	assert_non_null(who);
	assert_string_equal(who->name, "admin@test.org");
	assert_string_equal(who->org, "test");
	assert_string_equal(who->role, "lead");
	assert_non_null(cfl__executor_config(st->exec, job));
	/* The same job again, with meta.json gone: refused, and the earlier copy forgotten. */
	b = json_loads(good, 0, NULL);
	json_object_del(json_object_get(b, "files"), "meta.json");
	bad = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	assert_int_equal(cfl__executor_deploy(st->exec, job, (const uint8_t *)bad, strlen(bad), &e),
	                 CFL_EVERIFY);
	assert_string_equal(e.msg, "'meta.json' of the signed manifest is missing from the job");
	assert_null(cfl__executor_submitter(st->exec, job));
	assert_null(cfl__executor_config(st->exec, job));
	free(good);
	free(bad);
	server_stop(&s);
}

/* An admin aborts a running job: its sites are told, its state says why. */
static void test_abort_running(void **state)
{
	char *b = synthetic_job(3, 1, "[\"site-1\"]", "long"), id[64];
	struct cfl_err e = {0};
	struct job_view v;
	struct server s;
	struct site *hang;

	(void)state;
	server_start(&s, "jobs-abort");
	hang = site_join(&s, "site-1", SITE_HANG);
	submit(&s, b, id);
	free(b);
	wait_status(&s, id, "RUNNING", JOB_WAIT_MS);
	assert_true(wait_for(s.loop, &hang->trains, 1, WAIT_MS));
	assert_int_equal(cfl_jobs_abort(s.jobs, id, &e), 0);
	assert_int_equal(view(s.jobs, id, &v), 0);
	assert_string_equal(v.status, "FINISHED:ABORTED");
	assert_string_equal(v.error, "aborted by an admin");
	view_release(&v);
	assert_true(wait_for(s.loop, &hang->aborts, 1, WAIT_MS));
	assert_int_equal(hang->ends, 0);
	spin(s.loop, 100); /* the training's answer comes back to a finished run */
	assert_int_equal(cfl_jobs_abort(s.jobs, id, &e), CFL_EINVAL);
	server_stop(&s);
}

/* The state record of job `id` says `state`, as if the server had stopped there. */
static void set_state(struct server *s, const char *id, const char *state)
{
	char dir[PATH_MAX], path[PATH_MAX];
	json_t *st;

	path_join(dir, sizeof(dir), s->jobs_dir, id);
	st = json_load_file(path_join(path, sizeof(path), dir, "job.json"), 0, NULL);
	assert_non_null(st);
	assert_int_equal(json_object_set_new(st, "state", json_string(state)), 0);
	assert_int_equal(json_dump_file(st, path, 0), 0);
	json_decref(st);
}

/* abort_job ID stops that job, not whichever runs: two jobs were running when the server
 * stopped; they resume one at a time, and aborting the waiting one leaves the other running. */
static void test_abort_names_the_job(void **state)
{
	char *b = synthetic_job(3, 1, "[\"site-1\"]", "long"), ids[2][64], line[256];
	struct cfl_err e = {0};
	struct job_view v;
	struct server s;
	struct site *hang;
	int run;

	(void)state;
	server_start(&s, "jobs-abort-id");
	submit(&s, b, ids[0]);
	submit(&s, b, ids[1]);
	free(b);
	cfl_jobs_free(s.jobs);
	set_state(&s, ids[0], "RUNNING");
	set_state(&s, ids[1], "RUNNING");
	log_capture_at(CFL_LOG_INFO); /* a job may have started before: only what follows counts */
	jobs_open(&s);
	hang = site_join(&s, "site-1", SITE_HANG);
	assert_true(wait_for(s.loop, &hang->trains, 1, WAIT_MS));
	snprintf(line, sizeof(line), "job %s starts", ids[0]);
	run = logged(line, NULL) ? 0 : 1;
	snprintf(line, sizeof(line), "job %s starts", ids[run]);
	assert_true(logged(line, NULL));

	assert_int_equal(cfl_jobs_abort(s.jobs, ids[1 - run], &e), 0);
	assert_int_equal(view(s.jobs, ids[1 - run], &v), 0);
	assert_string_equal(v.status, "FINISHED:ABORTED");
	view_release(&v);
	spin(s.loop, 100);
	assert_int_equal(view(s.jobs, ids[run], &v), 0);
	assert_string_equal(v.status, "RUNNING");
	view_release(&v);
	assert_int_equal(hang->aborts, 0);

	assert_int_equal(cfl_jobs_abort(s.jobs, ids[run], &e), 0);
	assert_int_equal(view(s.jobs, ids[run], &v), 0);
	assert_string_equal(v.status, "FINISHED:ABORTED");
	view_release(&v);
	assert_true(wait_for(s.loop, &hang->aborts, 1, WAIT_MS));
	server_stop(&s);
}

/* --- the weight a site reports ---------------------------------------------------------------- */

/* A site that claims a huge step count: its update, when the server pulls it, is w = 10. */
static void liar_update(struct cfl_peer *p, const struct cfl_frame *f, int more,
                        struct cfl_msg_sink *sink, void *arg)
{
	int64_t shape = 4;
	struct cfl_model *m = NULL;
	struct cfl_err e = {0};
	uint8_t *body = NULL;
	size_t len = 0;

	(void)more;
	(void)sink;
	(void)arg;
	assert_int_equal(cfl_model_new(&m), 0);
	assert_int_equal(cfl_model_add(m, "w", &shape, 1, NULL), 0);
	for (size_t i = 0; i < 4; i++)
		m->t[0].data[i] = 10.0f;
	assert_int_equal(cfl_model_serialize(m, NULL, 0, &body, &len, &e), 0);
	assert_int_equal(cfl_peer_reply(p, f->id, NULL, 0, body, len), 0);
	free(body);
	cfl_model_free(m);
}

/* One round with site-1 (the real executor: +1 with weight 1) and site-2, which answers 10
 * claiming 10^6 steps; `workflow` adds to the workflow settings. Returns the round's model. */
static void liar_round(struct server *s, struct site *liar, const char *workflow, float want,
                       const char *counted)
{
	char config[512], id[64], *b, line[160];
	const char *pairs[] = {"config.json", config, NULL};
	struct cfl_header h[2] = {CFL_HDR("steps", "1000000"), CFL_HDR("loss", "0.5")};
	int trains = liar->trains + 1;

	snprintf(
	        config, sizeof(config),
	        "{\"workflow\": {\"name\": \"fedavg\", \"num_rounds\": 1, \"min_clients\": 2%s}, "
	        "\"executor\": {\"type\": \"builtin\", \"dataset\": \"synthetic\", \"floats\": 4}, "
	        "\"sites\": [\"site-1\", \"site-2\"]}",
	        workflow);
	b = bundle_of(pairs);
	submit(s, b, id);
	free(b);
	assert_true(wait_for(s->loop, &liar->trains, trains, WAIT_MS));
	assert_int_equal(cfl_peer_reply(liar->peer, liar->train_id, h, 2, NULL, 0), 0);
	wait_status(s, id, "FINISHED:COMPLETED", JOB_WAIT_MS);
	expect_model(s, id, 4, want);
	snprintf(line, sizeof(line), "job %s round 1: site-2 reported 1000000 steps; counted as %s",
	         id, counted);
	if (!logged(line, "(max_site_weight)"))
		fail_msg("not logged: '%s'", line);
	assert_false(logged("site-1 reported", NULL));
}

/* A site's FedAvg weight is bounded: by the site's share of the data for the built-in trainer
 * (the synthetic data: 1, what an honest site reports), else by workflow.max_site_weight, which
 * must be an integer 1..2^53. */
static void test_site_weight_bounded(void **state)
{
	static const char *const bad[] = {"0", "-1", "3.5", "\"3\"", "9007199254740993", NULL};
	char config[256];
	struct server s;
	struct site *liar;

	(void)state;
	server_start(&s, "jobs-weight");
	for (int i = 0; bad[i] != NULL; i++) {
		snprintf(config, sizeof(config),
		         "{\"workflow\": {\"name\": \"fedavg\", \"num_rounds\": 1, "
		         "\"max_site_weight\": %s}, \"executor\": {}}",
		         bad[i]);
		refused(&s, (const char *const[]){"config.json", config, NULL},
		        "workflow.max_site_weight must be an integer 1..2^53");
	}
	site_join(&s, "site-1", SITE_REAL);
	liar = site_join(&s, "site-2", SITE_HANG);
	assert_int_equal(cfl_msg_hub_handle(liar->hub, "task.get_update", liar_update, liar), 0);
	/* (1 * 1 + 1 * 10) / 2, not ~10. */
	liar_round(&s, liar, "", 5.5f, "1");
	/* (1 * 1 + 3 * 10) / 4. */
	liar_round(&s, liar, ", \"max_site_weight\": 3", 7.75f, "3");
	server_stop(&s);
}

/* The server's bound for the built-in trainer is exactly what an honest site reports: its
 * split's samples times epochs, IID and label-skewed. */
static void test_builtin_shares_match_training(void **state)
{
	const char *src = getenv("CFL_SRC");
	char data[PATH_MAX];
	uint64_t shares[3], steps, sum = 0;
	struct cfl_model *m = NULL;
	struct cfl_err e = {0};
	float loss;
	json_t *ex;

	(void)state;
	if (src == NULL)
		skip();
	path_join(data, sizeof(data), src, "data/digits.csv.gz");
	if (access(data, R_OK) != 0)
		skip();
	for (int skew = 0; skew < 2; skew++) {
		ex = json_pack("{s:s, s:s, s:s, s:i, s:f, s:i}", "dataset", "digits", "data_path",
		               data, "arch", "softmax", "epochs", 2, "alpha", skew ? 0.5 : 0.0,
		               "split_seed", 3);
		if (cfl_trainer_builtin_shares(ex, 3, shares, &e) != 0)
			fail_msg("shares: %s", e.msg);
		sum = 0;
		for (int i = 0; i < 3; i++) {
			assert_int_equal(cfl_trainer_builtin_init_model(ex, &m, &e), 0);
			if (cfl_trainer_builtin_train(ex, i, 3, 1, m, &steps, &loss, &e) != 0)
				fail_msg("train: %s", e.msg);
			assert_int_equal(steps, shares[i]);
			sum += steps;
			cfl_model_free(m);
		}
		/* The three parts cover the 1348 training digits, twice (2 epochs). */
		assert_int_equal(sum, 2 * 1348);
		json_decref(ex);
	}
	cfl_trainer_builtin_release();
}

/* --- main ------------------------------------------------------------------------------------ */

static int setup(void **state)
{
	(void)state;
	cfl_log_set_level(CFL_LOG_ERROR);
	return tmp_make("test-jobs") == 0 && provision("jobp", jobp_yml, prod, sizeof(prod)) == 0
	               ? 0
	               : -1;
}

static int teardown(void **state)
{
	(void)state;
	cfl_log_set_sink(NULL, NULL);
	tmp_remove();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_bad_bundles),
	        cmocka_unit_test(test_store),
	        cmocka_unit_test(test_fedavg_two_rounds),
	        cmocka_unit_test(test_fedavg_digits),
	        cmocka_unit_test(test_site_lost_mid_round),
	        cmocka_unit_test(test_site_lost_below_min_clients),
	        cmocka_unit_test(test_site_refuses),
	        cmocka_unit_test(test_refusals_below_min_clients),
	        cmocka_unit_test(test_min_clients_not_met),
	        cmocka_unit_test(test_abort_running),
	        cmocka_unit_test(test_signatures),
	        cmocka_unit_test(test_deploy_submitter),
	        cmocka_unit_test(test_abort_names_the_job),
	        cmocka_unit_test(test_site_weight_bounded),
	        cmocka_unit_test(test_builtin_shares_match_training),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
