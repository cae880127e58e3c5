/* libFuzzer target for what a site reads from the server (src/jobs/executor.c): the headers of
 * job.deploy, task.train, task.get_update and job.end/abort (cfl__executor_hdrs), the deployed
 * bundle (cfl__executor_deploy, which must refuse it: the input cannot carry a valid
 * signature; then cfl__executor_unpack, what the site does with a bundle whose signature
 * holds, into a temporary folder emptied after each run), a task's
 * global model (cfl_model_parse) and what the task runs per its job's config.json
 * (cfl__executor_plan; the built-in trainer's settings, cfl__trainer_builtin_cfg; the
 * "synthetic" trainer itself, which needs no data). Nothing is trained on real data and no
 * command is run: the plan is checked, not carried out.
 *
 * Input: the frames the server sends, in wire format (docs/protocol.md), read until the first
 * incomplete or invalid one. Each REQUEST or ONEWAY goes where the executor's handler for its
 * `topic` would send it; CHUNK frames continue the body of the message whose id they name. A
 * fresh executor takes each input, so that jobs deployed by one run do not leak into the next.
 *
 * Checked, besides no crash, leak or undefined behaviour: headers that pass are in range (a
 * valid job id, round 1..JOB_MAX_ROUNDS, 0 <= site_index < site_count <= JOB_MAX_SITES); the
 * site writes nothing outside <work>/<job id>/ and only plain files with safe names; a job
 * refused by cfl__executor_deploy leaves no config and no submitter behind; a deployed
 * config is an object; a plan's command is 1..CFL__JOB_MAX_ARGS strings; trainer settings in
 * their documented ranges. Any broken promise aborts, which libFuzzer reports as a crash. */
#define _DEFAULT_SOURCE
#include "cfl/err.h"
#include "cfl/executor.h"
#include "cfl/frame.h"
#include "cfl/log.h"
#include "cfl/model.h"
#include "cfl/msg.h"
#include "cfl/trainer.h"
#include "fuzz_pki.h"
#include "jobs/jobs_int.h"
#include "trainer/trainer_int.h"
#include "util/fs.h"

#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char work[PATH_MAX], ca_file[PATH_MAX + 8];
static struct cfl_loop *loop;
static struct fuzz_pki pki;

/* The message being read: its first frame and its body so far (CHUNKs appended). */
struct msg {
	struct cfl_frame f;
	uint8_t *body;
	size_t len;
	int open; /* more CHUNKs to come */
};

static void check(int ok)
{
	if (!ok)
		abort();
}

static void drop(enum cfl_log_level level, const char *line, void *arg)
{
	(void)level;
	(void)line;
	(void)arg;
}

static void cleanup(void)
{
	cfl_loop_free(loop);
	cfl__fs_rmtree(work);
	unlink(ca_file);
	fuzz_pki_release(&pki);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	struct stat st;

	(void)argc;
	(void)argv;
	cfl_log_set_sink(drop, NULL);
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	snprintf(work, sizeof(work), "%s/cfl-fuzz-executor-XXXXXX", tmp != NULL ? tmp : "/tmp");
	check(mkdtemp(work) != NULL);
	/* Beside the work folder, which each run empties. */
	snprintf(ca_file, sizeof(ca_file), "%s.pem", work);
	fuzz_pki_make(&pki, "admin@fuzz.org", "lead", ca_file);
	check(cfl_loop_new(&loop, NULL) == 0);
	atexit(cleanup);
	return 0;
}

static int job_id_ok(const char *id)
{
	size_t n = strlen(id);

	return n >= 1 && n <= 63 &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                  "0123456789-") == n;
}

static void check_hdrs(const struct cfl__job_hdrs *h, int want)
{
	check(job_id_ok(h->job));
	check(!(want & CFL__HDR_ROUND) || (h->round >= 1 && h->round <= JOB_MAX_ROUNDS));
	check(!(want & CFL__HDR_SITE) || (h->site_count >= 1 && h->site_count <= JOB_MAX_SITES &&
	                                  h->site_index >= 0 && h->site_index < h->site_count));
}

/* Everything under the work folder: job folders holding plain files with safe names. */
static void check_tree(void)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *de, *fe;
	struct stat st;
	DIR *d = opendir(work), *jd;

	check(d != NULL);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		check(job_id_ok(de->d_name) &&
		      cfl__path_join(dir, sizeof(dir), work, de->d_name) == 0);
		jd = opendir(dir);
		check(jd != NULL);
		while ((fe = readdir(jd)) != NULL) {
			if (strcmp(fe->d_name, ".") == 0 || strcmp(fe->d_name, "..") == 0)
				continue;
			check(cfl__job_safe_name(fe->d_name));
			check(cfl__path_join(path, sizeof(path), dir, fe->d_name) == 0);
			check(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
		}
		closedir(jd);
	}
	closedir(d);
}

static void deploy(struct cfl_executor *x, const struct msg *m)
{
	struct cfl__job_hdrs h;
	struct cfl_err e = {0};
	int rc;

	if (cfl__executor_hdrs(&m->f, 0, &h) != 0)
		return;
	check_hdrs(&h, 0);
	rc = cfl__executor_deploy(x, h.job, m->body, m->len, &e);
	check(rc < 0 && e.code == rc && e.msg[0] != '\0');
	check(cfl__executor_config(x, h.job) == NULL && cfl__executor_submitter(x, h.job) == NULL);
	check_tree();
	rc = cfl__executor_unpack(x, h.job, m->body, m->len, &e);
	check(rc == 0 || (rc < 0 && e.code == rc && e.msg[0] != '\0'));
	check(cfl__executor_config(x, h.job) == NULL ||
	      json_is_object(cfl__executor_config(x, h.job)));
	check_tree();
}

static void check_trainer_cfg(json_t *ex)
{
	struct cfl_trainer_cfg c;
	struct cfl_err e = {0};

	if (cfl__trainer_builtin_cfg(ex, &c, &e) != 0) {
		check(e.code == CFL_ECONFIG);
		return;
	}
	check(c.arch == CFL_ARCH_MLP || c.arch == CFL_ARCH_SOFTMAX);
	check(c.hidden >= 1 && c.hidden <= CFL_TRAINER_MAX_HIDDEN);
	check(c.epochs >= 1 && c.epochs <= CFL_TRAINER_MAX_EPOCHS);
	check(c.batch >= 1 && c.batch <= CFL_TRAINER_MAX_BATCH);
	check(c.lr > 0 && c.lr < 100);
}

/* What the worker would run: checked, and run only for the synthetic trainer (no data). */
static void plan(const struct cfl__job_hdrs *h, json_t *cfg, struct cfl_model *model)
{
	struct cfl__job_plan p;
	struct cfl_err e = {0};
	const char *dataset;
	uint64_t steps = 0;
	float loss = 0;

	if (cfl__executor_plan(cfg, &p, &e) != 0) {
		check(e.code == CFL_ECONFIG);
		return;
	}
	if (p.command) {
		check(p.argc >= 1 && p.argc <= CFL__JOB_MAX_ARGS);
		for (size_t i = 0; i < p.argc; i++)
			check(p.argv[i] != NULL);
		return;
	}
	dataset = json_string_value(json_object_get(p.ex, "dataset"));
	if (dataset != NULL && strcmp(dataset, "synthetic") == 0)
		check(cfl_trainer_builtin_train(p.ex, h->site_index, h->site_count, h->round, model,
		                                &steps, &loss, &e) == 0);
	else
		check_trainer_cfg(p.ex);
}

static void train(struct cfl_executor *x, const struct msg *m)
{
	struct cfl__job_hdrs h;
	struct cfl_model *model = NULL;
	struct cfl_err e = {0};
	json_t *cfg;

	if (cfl__executor_hdrs(&m->f, CFL__HDR_ROUND | CFL__HDR_SITE, &h) != 0)
		return;
	check_hdrs(&h, CFL__HDR_ROUND | CFL__HDR_SITE);
	cfg = cfl__executor_config(x, h.job);
	if (cfg == NULL)
		return;
	if (cfl_model_parse(m->body, m->len, &model, &e) == 0)
		plan(&h, cfg, model);
	cfl_model_free(model);
}

static void dispatch(struct cfl_executor *x, const struct msg *m)
{
	struct cfl__job_hdrs h;
	char topic[64];

	cfl_frame_header_str(&m->f, "topic", topic, sizeof(topic));
	if (strcmp(topic, "job.deploy") == 0) {
		deploy(x, m);
	} else if (strcmp(topic, "task.train") == 0) {
		train(x, m);
	} else if (strcmp(topic, "task.get_update") == 0) {
		if (cfl__executor_hdrs(&m->f, CFL__HDR_ROUND, &h) == 0)
			check_hdrs(&h, CFL__HDR_ROUND);
	} else if (strcmp(topic, "job.end") == 0 || strcmp(topic, "job.abort") == 0) {
		if (cfl__executor_hdrs(&m->f, 0, &h) == 0)
			check_hdrs(&h, 0);
	}
}

static void msg_reset(struct msg *m)
{
	free(m->body);
	memset(m, 0, sizeof(*m));
}

static void append(struct msg *m, const uint8_t *d, size_t n)
{
	uint8_t *p;

	if (n == 0)
		return;
	p = realloc(m->body, m->len + n);
	check(p != NULL);
	memcpy(p + m->len, d, n);
	m->body = p;
	m->len += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfl_msg_hub *hub = NULL;
	struct cfl_executor *x = NULL;
	struct msg m;
	size_t off = 0;

	memset(&m, 0, sizeof(m));
	check(cfl_msg_hub_new(loop, "site-1", &hub, NULL) == 0);
	check(cfl_executor_new(hub,
	                       &(struct cfl_executor_cfg){
	                               .work_dir = work, .site = "site-1", .root_ca = ca_file},
	                       &x, NULL) == 0);
	while (off < size) {
		struct cfl_frame f;
		int n = cfl_frame_decode(data + off, size - off, CFL_FRAME_MAX_PAYLOAD, &f);

		if (n <= 0)
			break;
		off += (size_t)n;
		if (f.type == CFL_FRAME_T_CHUNK) {
			if (!m.open || f.ref != m.f.id)
				continue;
		} else if (f.type == CFL_FRAME_T_REQUEST || f.type == CFL_FRAME_T_ONEWAY) {
			msg_reset(&m); /* a message still streaming never ends: dropped */
			m.f = f;       /* its headers point into `data`, which outlives it */
		} else {
			continue;
		}
		append(&m, f.body, f.body_len);
		m.open = (f.flags & CFL_FRAME_F_MORE) != 0;
		if (!m.open) {
			dispatch(x, &m);
			msg_reset(&m);
		}
	}
	msg_reset(&m);
	cfl_executor_free(x);
	cfl_msg_hub_free(hub);
	cfl__fs_rmtree(work);
	check(mkdir(work, 0700) == 0);
	return 0;
}
