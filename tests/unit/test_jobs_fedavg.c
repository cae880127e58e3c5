/* Unit tests for FedAvg's rounds (src/jobs/fedavg.c) driven in this process: exact results of
 * the synthetic model, the digits, sites lost in the middle of a round or refusing it, and
 * min_clients not met. The fixture is in jobs_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "jobs_fixture.h"

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
	char config[PATH_MAX + 512], data[PATH_MAX], id[64], *b;
	const char *pairs[] = {"config.json", config, NULL};
	struct job_view v;
	struct server s;

	(void)state;
	digits_or_skip(data, sizeof(data));
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_fedavg_two_rounds),
	        cmocka_unit_test(test_fedavg_digits),
	        cmocka_unit_test(test_site_lost_mid_round),
	        cmocka_unit_test(test_site_lost_below_min_clients),
	        cmocka_unit_test(test_site_refuses),
	        cmocka_unit_test(test_refusals_below_min_clients),
	        cmocka_unit_test(test_min_clients_not_met),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
