/* Unit tests for the jobs' control (src/jobs/jobstore.c, fedavg.c): job signatures checked by
 * the server and the sites, the submitter a deploy names, aborts of running jobs, and the
 * weight a site reports bounded. The fixture is in jobs_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "jobs_fixture.h"

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
	assert_int_equal(dir_entries(s.jobs_dir), 0);
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
	char data[PATH_MAX];
	uint64_t shares[3], steps, sum = 0;
	struct cfl_model *m = NULL;
	struct cfl_err e = {0};
	float loss;
	json_t *ex;

	(void)state;
	digits_or_skip(data, sizeof(data));
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_abort_running),
	        cmocka_unit_test(test_signatures),
	        cmocka_unit_test(test_deploy_submitter),
	        cmocka_unit_test(test_abort_names_the_job),
	        cmocka_unit_test(test_site_weight_bounded),
	        cmocka_unit_test(test_builtin_shares_match_training),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
