/* Unit tests for the server's job store (src/jobs/jobstore.c): bundles accepted and refused
 * with their reason, listing, abort, download, states persisted and reloaded. The fixture is in
 * jobs_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "jobs_fixture.h"

/* --- the store ------------------------------------------------------------------------------- */

/* Like refused() (jobs_fixture.h), for jansson's own words: the message starts with `why`. */
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
	assert_int_equal(dir_entries(s.jobs_dir), 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_bad_bundles),
	        cmocka_unit_test(test_store),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
