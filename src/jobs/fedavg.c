/* The FedAvg ("scatter and gather") workflow of one job on the server.
 *
 * Each round: the global model goes to every connected site of the job (task.train, streamed);
 * each site trains and answers with its step count; the server then pulls the updates one at a
 * time (task.get_update, streamed) straight into a running weighted sum (cfl_agg), so that the
 * memory for aggregation is one model whatever the number of sites. A site lost mid-round is
 * left out of that round; the round completes if at least min_clients updates arrived. After
 * each round the global model and the metrics are saved, so a restarted server resumes after
 * the last completed round. */
#include "cfl/trainer.h"
#include "fedavg_int.h"

#include "cfl/log.h"
#include "cfl/model.h"
#include "cfl/pki.h"
#include "cfl/proto.h"
#include "util/bufsrc.h"
#include "util/fs.h"
#include "util/num.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int too_few_left(struct fedavg *f);
static void dispatch_more(struct fedavg *f);

#define DISPATCH_WINDOW 1024 /* job.deploy requests out at once */

/* --- the run's lifetime -----------------------------------------------------------------------
 *
 * RUNNING (j->run) → RETIRED (a zombie on j->retired while calls are out) → freed.
 *
 * A call is one request of the run (job.deploy, task.train, task.get_update), counted from
 * call_begin, once it is issued, to call_end, which exactly one callback of it runs: its reply,
 * or the end of the reply's stream. Nothing else changes `outstanding` or `zombie`: when
 * callbacks counted down by hand, one of them used the run after it was freed. */

void cfl__fedavg_run_free(struct fedavg *f)
{
	assert(f->outstanding == 0);
	cfl_model_reader_release(&f->gs);
	cfl_model_free(f->global);
	cfl_agg_free(f->agg);
	free(f->init_buf);
	for (size_t i = 0; i < f->n; i++) {
		json_decref(f->parts[i].rows);
		free(f->parts[i].ubuf);
	}
	free(f->parts);
	free(f->trained);
	free(f->bundle);
	free(f);
}

/* A request of the run went out. Called after the request call returned 0: the hub calls back
 * only from the loop, never from inside that call. */
void cfl__fedavg_call_begin(struct fedavg *f)
{
	assert(f->outstanding >= 0 && !f->zombie);
	f->outstanding++;
}

/* Ends a call: the callback that ends it runs this before anything else. Returns 1 if the run
 * goes on; 0 if it is finished: the last call of a finished run frees it (its parts with it),
 * so on 0 the caller returns at once without touching either. */
int cfl__fedavg_call_end(struct fedavg *f)
{
	struct fedavg **pp;

	assert(f->outstanding > 0);
	f->outstanding--;
	if (!f->zombie)
		return 1;
	if (f->outstanding == 0) {
		for (pp = &f->j->retired; *pp != NULL && *pp != f; pp = &(*pp)->next)
			;
		assert(*pp == f);
		if (*pp == f)
			*pp = f->next;
		cfl__fedavg_run_free(f);
	}
	return 0;
}

/* The run is over: the next job may start; the run itself goes with its last call. */
static void run_retire(struct fedavg *f)
{
	struct cfl_jobs *j = f->j;

	assert(!f->zombie && j->run == f);
	j->run = NULL;
	f->zombie = 1;
	if (f->outstanding == 0) {
		cfl__fedavg_run_free(f);
		return;
	}
	/* Listed so that the server's teardown can free it: the hub drops the replies still
	 * awaited without calling back, so its last call_end would never come. */
	f->next = j->retired;
	j->retired = f;
}

/* Server teardown, the hub already freed: no call of any run will end now. */
static void run_drop(struct fedavg *f)
{
	assert(f->outstanding >= 0);
	f->outstanding = 0;
	cfl__fedavg_run_free(f);
}

void cfl__fedavg_free_all(struct cfl_jobs *j)
{
	struct fedavg *f;

	if ((f = j->run) != NULL) {
		j->run = NULL;
		run_drop(f);
	}
	while ((f = j->retired) != NULL) {
		j->retired = f->next;
		run_drop(f);
	}
}

struct cfl_peer *cfl__fedavg_peer_of(struct fedavg *f, const struct part *p)
{
	struct cfl_peer *peer = cfl_msg_hub_find(f->j->hub, p->name);
	enum cfl_auth_kind kind;

	if (peer == NULL || cfl_auth_server_identity(peer, &kind, NULL) == NULL ||
	    kind != CFL_AUTH_CLIENT)
		return NULL;
	return peer;
}

/* Ends the run: state, files, the sites told. */
void cfl__fedavg_finish(struct fedavg *f, enum job_state st, const char *why)
{
	struct job *jb = f->jb;

	jb->state = st;
	snprintf(jb->error, sizeof(jb->error), "%s", why != NULL ? why : "");
	cfl__job_save(jb);
	CFL_INFO("job %s %s%s%s", jb->id, cfl__job_state_name(st), why ? ": " : "", why ? why : "");
	for (size_t i = 0; i < f->n; i++) {
		struct cfl_peer *peer = cfl__fedavg_peer_of(f, &f->parts[i]);
		struct cfl_header h = CFL_HDR(CFL_KEY_JOB, jb->id);

		if (peer != NULL)
			cfl_peer_send(peer,
			              st == JOB_COMPLETED ? CFL_TOPIC_JOB_END : CFL_TOPIC_JOB_ABORT,
			              &h, 1, NULL, 0);
	}
	run_retire(f);
}

/* --- results of a round ------------------------------------------------------------------- */

static int save_global(struct fedavg *f)
{
	char path[PATH_MAX];
	struct cfl_err e = {0};

	if (cfl__job_path(f->jb, "model.safetensors", path, sizeof(path)) != 0 ||
	    cfl_model_reader_save(&f->gs, path, &e) != 0) {
		CFL_ERROR("job %s: cannot save the global model: %s", f->jb->id, e.msg);
		return CFL_EIO;
	}
	return 0;
}

int cfl__fedavg_serialize(struct fedavg *f, struct cfl_err *e)
{
	cfl_model_reader_release(&f->gs);
	return cfl_model_reader_init(&f->gs, f->global, e);
}

/* workflow.result "diff": sites send weight differences instead of weights. */
static int diff_job(const struct job *jb)
{
	const char *r = json_string_value(
	        json_object_get(json_object_get(jb->config, "workflow"), "result"));

	return r != NULL && strcmp(r, "diff") == 0;
}

/* avg += global: the averaged differences become the new weights. */
static int add_to(struct cfl_model *avg, const struct cfl_model *global, struct cfl_err *e)
{
	if (global == NULL)
		return cfl_err_set(e, CFL_EINVAL, "no global model to apply the differences to");
	for (size_t i = 0; i < avg->n; i++) {
		const struct cfl_tensor *g = cfl_model_find(global, avg->t[i].name);

		if (g == NULL || g->count != avg->t[i].count)
			return cfl_err_set(e, CFL_EINVAL,
			                   "tensor '%s' differs from the global model",
			                   avg->t[i].name);
		for (size_t k = 0; k < g->count; k++)
			avg->t[i].data[k] += g->data[k];
	}
	return 0;
}

uint64_t cfl__fedavg_task_timeout(const struct job *jb)
{
	const char *type =
	        json_string_value(json_object_get(json_object_get(jb->config, "executor"), "type"));

	return jb->round_timeout_ms +
	       (type != NULL && strcmp(type, "client_api") == 0 ? CFL__FEDAVG_GRACE_MS : 0);
}

/* Jobs of the built-in executor (the server can evaluate them when it has the data). */
int cfl__fedavg_builtin_job(const struct job *jb)
{
	const char *type =
	        json_string_value(json_object_get(json_object_get(jb->config, "executor"), "type"));

	return type == NULL || strcmp(type, "builtin") == 0;
}

static int serialize_global_of(struct fedavg *f, struct cfl_model *m, struct cfl_err *e)
{
	f->global = m;
	return cfl_model_reader_init(&f->gs, m, e);
}

static void end_round(struct fedavg *f, size_t updates, double loss_sum, uint64_t steps_sum)
{
	struct job *jb = f->jb;
	struct cfl_model *next = NULL;
	struct cfl_err e = {0};
	float acc = -1, tloss = -1;
	double secs = (double)(cfl_loop_now_ms(f->j->loop) - f->round_t0) / 1e3;
	json_t *m;
	int rc;

	/* The old global goes first: sum + staging + the new model stay within 3x the model. */
	cfl_model_reader_release(&f->gs);
	cfl_agg_release_stage(f->agg);
	rc = cfl_agg_result(f->agg, &next, &e);
	if (rc == 0 && diff_job(jb))
		rc = add_to(next, f->global, &e);
	cfl_model_free(f->global);
	f->global = NULL;
	if (rc != 0 || serialize_global_of(f, next, &e) != 0) {
		cfl_model_free(next);
		cfl__fedavg_finish(f, JOB_EXCEPTION, e.msg);
		return;
	}
	jb->rounds_done++;
	if (!cfl__fedavg_builtin_job(jb) ||
	    cfl_trainer_builtin_eval(json_object_get(jb->config, "executor"), f->global, &acc,
	                             &tloss, &e) != 0)
		acc = tloss = -1;
	m = json_pack("{s:i, s:I, s:f, s:f, s:f, s:f, s:I}", "round", jb->rounds_done, "clients",
	              (json_int_t)updates, "train_loss",
	              steps_sum ? loss_sum / (double)steps_sum : 0.0, "test_accuracy", (double)acc,
	              "test_loss", (double)tloss, "seconds", secs, "steps", (json_int_t)steps_sum);
	cfl__fedavg_round_rows(f, m);
	json_array_append_new(jb->metrics, m);
	CFL_INFO("job %s round %d/%d: %zu updates, train loss %.4f, test accuracy %.4f (%.2f s)",
	         jb->id, jb->rounds_done, jb->num_rounds, updates,
	         steps_sum ? loss_sum / (double)steps_sum : 0.0, (double)acc, secs);
	save_global(f);
	cfl__fedavg_write_csv(jb);
	cfl__job_save(jb);
	f->in_round = 0;
	if (jb->rounds_done >= jb->num_rounds) {
		cfl__fedavg_finish(f, JOB_COMPLETED, NULL);
		return;
	}
	cfl__fedavg_start_round(f);
}

static int busy(const struct part *p)
{
	return p->st == P_WAIT || p->st == P_DEPLOY || p->st == P_TRAIN || p->st == P_TRAINED ||
	       p->st == P_PULL;
}

void cfl__fedavg_round_check(struct fedavg *f)
{
	size_t done = 0;
	double loss = 0;
	uint64_t steps = 0;

	if (!f->in_round || f->zombie)
		return;
	while (f->busy_at < f->n && !busy(&f->parts[f->busy_at]))
		f->busy_at++;
	if (f->busy_at < f->n) {
		cfl__fedavg_pull_next(f);
		return;
	}
	for (size_t i = 0; i < f->n; i++) {
		struct part *p = &f->parts[i];

		if (p->st == P_DONE) {
			done++;
			loss += p->loss * (double)p->steps;
			steps += p->steps;
		}
	}
	if ((int)done < f->jb->min_clients) {
		char why[128];

		snprintf(why, sizeof(why), "round %d got %zu updates, fewer than min_clients %d",
		         f->jb->rounds_done + 1, done, f->jb->min_clients);
		cfl__fedavg_finish(f, JOB_EXCEPTION, why);
		return;
	}
	end_round(f, done, loss, steps);
}

/* --- sending tasks ------------------------------------------------------------------------------
 */

/* Once every site of the round has the global model, the server no longer needs it (the new
 * one comes from the sum): aggregation then holds the sum and one staged update, 2x. */
static void maybe_drop_global(struct fedavg *f)
{
	/* With differences the new model is the old one plus their average: keep it. */
	if (f->global == NULL || f->dispatching || diff_job(f->jb))
		return;
	for (; f->drop_at < f->n; f->drop_at++) {
		const struct part *p = &f->parts[f->drop_at];

		if (p->st == P_WAIT || p->st == P_DEPLOY ||
		    (p->st == P_TRAIN && p->sent < f->gs.total))
			return;
	}
	cfl_model_reader_release(&f->gs);
	cfl_model_free(f->global);
	f->global = NULL;
}

/* The global model goes out lent, straight from its tensors: every site's stream reads the same
 * memory at its own pace, and nothing of it is queued per connection. */
static int model_lend(void *src, uint64_t off, size_t len, const uint8_t **ptr)
{
	struct part *p = src;

	return (int)cfl_model_reader_lend(&p->f->gs, off, len, ptr);
}

/* The site's copy of the global model is out (or abandoned): its stream no longer reads it. */
static void model_sent(void *src, int status)
{
	struct part *p = src;

	(void)status; /* a failed stream ends the call with its reply */
	p->sent = p->f->gs.total;
	maybe_drop_global(p->f);
}

static void train_reply(struct cfl_peer *peer, int status, const char *reason,
                        const struct cfl_frame *fr, int more, struct cfl_msg_sink *sink, void *arg)
{
	struct part *p = arg;
	char v[32];

	(void)peer;
	(void)sink; /* a streamed answer's body (not cfl's) is not read */
	if (!cfl__fedavg_call_end(p->f))
		return;
	if (status != 0) {
		char why[CFL_ERR_MSG_MAX];

		CFL_WARN("job %s: %s dropped out of round %d: %s", p->f->jb->id, p->name,
		         p->f->jb->rounds_done + 1, reason ? reason : cfl_strerror(status));
		/* Why, for list_jobs: the site's own reason ("no result from script ..."). */
		snprintf(why, sizeof(why), "round %d: %.900s", p->f->jb->rounds_done + 1,
		         reason ? reason : cfl_strerror(status));
		cfl__job_site_state(p->f->jb, p->name, "failed", why);
		p->st = P_FAILED;
		maybe_drop_global(p->f);
	} else {
		if (!more)
			cfl__fedavg_take_rows(p->f, p, fr->body, fr->body_len);
		/* A site's step count is its FedAvg weight and its loss goes to the metrics: both
		 * must be numbers (a count of at most 2^53, exact as a double; a finite loss). */
		p->steps = 0;
		p->loss = 0;
		if (cfl_frame_header_str(fr, CFL_KEY_STEPS, v, sizeof(v)) != 0 ||
		    cfl__num_u64(v, (uint64_t)1 << 53, &p->steps) != 0 ||
		    cfl_frame_header_str(fr, CFL_KEY_LOSS, v, sizeof(v)) != 0 ||
		    cfl__num_finite(v, &p->loss) != 0) {
			CFL_WARN("job %s: %s reported a bad step count or loss in round %d",
			         p->f->jb->id, p->name, p->f->jb->rounds_done + 1);
			p->steps = 0;
		}
		if (p->steps > p->cap) {
			CFL_WARN("job %s round %d: %s reported %" PRIu64
			         " steps; counted as %" PRIu64 " (max_site_weight)",
			         p->f->jb->id, p->f->jb->rounds_done + 1, p->name, p->steps,
			         p->cap);
			p->steps = p->cap;
		}
		p->st = p->steps > 0 ? P_TRAINED : P_FAILED;
		if (p->st == P_TRAINED)
			cfl__job_site_trained(p->f->jb, p->name, p->f->jb->rounds_done + 1);
		if (p->st == P_TRAINED && p->f->tq_tail < p->f->n)
			p->f->trained[p->f->tq_tail++] = (size_t)p->idx;
	}
	cfl__fedavg_round_check(p->f);
}

static void send_train(struct fedavg *f, struct part *p, struct cfl_peer *peer)
{
	char round[16], idx[16], n[16];
	struct cfl_header h[4];

	snprintf(round, sizeof(round), "%d", f->jb->rounds_done + 1);
	snprintf(idx, sizeof(idx), "%d", p->idx);
	snprintf(n, sizeof(n), "%zu", f->n);
	h[0] = CFL_HDR(CFL_KEY_JOB, f->jb->id);
	h[1] = CFL_HDR(CFL_KEY_ROUND, round);
	h[2] = CFL_HDR(CFL_KEY_SITE_INDEX, idx);
	h[3] = CFL_HDR(CFL_KEY_SITE_COUNT, n);
	p->sent = 0;
	p->st = P_TRAIN;
	if (cfl_peer_request_stream(
	            peer, &(struct cfl_request){.topic = CFL_TOPIC_TASK_TRAIN,
	                                        .hdrs = h,
	                                        .n_hdrs = 4,
	                                        .body_len = f->gs.total,
	                                        .lend = model_lend,
	                                        .sent = model_sent,
	                                        .src = p,
	                                        .timeout_ms = cfl__fedavg_task_timeout(f->jb),
	                                        .reply = train_reply,
	                                        .arg = p}) != 0) {
		p->st = P_FAILED;
		return;
	}
	cfl__fedavg_call_begin(f);
}

static void deploy_reply(struct cfl_peer *peer, int status, const char *reason,
                         const struct cfl_frame *fr, int more, struct cfl_msg_sink *sink, void *arg)
{
	struct part *p = arg;
	char what[32] = "";

	(void)more;
	(void)sink;
	if (!cfl__fedavg_call_end(p->f))
		return;
	p->f->deploying--;
	if (p->f->in_round && !p->f->init)
		dispatch_more(p->f);
	if (status != 0) {
		/* A refusal is the site's decision (its policy, privacy scope or the job's
		 * signature): final for this job, reported per site. Anything else may pass. */
		if (fr != NULL)
			cfl_frame_header_str(fr, CFL_KEY_STATUS, what, sizeof(what));
		p->refused = strcmp(what, CFL_STATUS_REFUSED) == 0;
		CFL_WARN("job %s: %s %s the job: %s", p->f->jb->id, p->name,
		         p->refused ? "refused" : "cannot take",
		         reason ? reason : cfl_strerror(status));
		cfl__job_site_state(p->f->jb, p->name, p->refused ? "refused" : "failed",
		                    reason ? reason : cfl_strerror(status));
		p->st = P_FAILED;
		maybe_drop_global(p->f);
		if (p->refused && too_few_left(p->f))
			return;
		if (p->f->init)
			cfl__fedavg_init_failed(p->f, p, reason ? reason : cfl_strerror(status));
		else
			cfl__fedavg_round_check(p->f);
		return;
	}
	cfl__job_site_state(p->f->jb, p->name, "accepted", "");
	p->deployed_to = cfl_peer_serial(peer);
	if (p->f->init) {
		cfl__fedavg_ask_weights(p->f, p, peer);
		if (p->st == P_FAILED)
			cfl__fedavg_init_next(p->f);
		return;
	}
	send_train(p->f, p, peer);
	cfl__fedavg_round_check(p->f);
}

static int bundle_read(void *src, uint8_t *buf, size_t len)
{
	struct part *p = src;

	return (int)cfl__buf_take(p->f->bundle, p->f->bundle_len, &p->bsent, buf, len);
}

/* The job reaches a site once per connection (a site that reconnects gets it again). */
void cfl__fedavg_dispatch(struct fedavg *f, struct part *p, struct cfl_peer *peer)
{
	struct cfl_header h = CFL_HDR(CFL_KEY_JOB, f->jb->id);

	if (p->deployed_to == cfl_peer_serial(peer)) {
		if (f->init)
			cfl__fedavg_ask_weights(f, p, peer);
		else
			send_train(f, p, peer);
		return;
	}
	p->st = P_DEPLOY;
	p->bsent = 0;
	if (cfl_peer_request_stream(peer, &(struct cfl_request){.topic = CFL_TOPIC_JOB_DEPLOY,
	                                                        .hdrs = &h,
	                                                        .n_hdrs = 1,
	                                                        .body_len = f->bundle_len,
	                                                        .read = bundle_read,
	                                                        .src = p,
	                                                        .timeout_ms = 60000,
	                                                        .reply = deploy_reply,
	                                                        .arg = p}) != 0) {
		p->st = P_FAILED;
		return;
	}
	cfl__fedavg_call_begin(f);
	f->deploying++;
}

/* The sites of the round waiting for their turn get the job while fewer than DISPATCH_WINDOW
 * deployments are out: 19,000 at once flooded the sites' side (each checks the job's
 * signature and unpacks it) for longer than a heartbeat's timeout, and held 19,000 bundles in
 * the send queues. A site deployed already (a later round) gets its task at once. */
static void dispatch_more(struct fedavg *f)
{
	int was = f->dispatching;

	f->dispatching = 1;
	while (f->deploying < DISPATCH_WINDOW && f->dispatch_at < f->n) {
		struct part *p = &f->parts[f->dispatch_at++];
		struct cfl_peer *peer;

		if (p->st != P_WAIT)
			continue;
		if ((peer = cfl__fedavg_peer_of(f, p)) == NULL)
			p->st = P_IDLE; /* gone before its turn: not in this round */
		else
			cfl__fedavg_dispatch(f, p, peer);
	}
	f->dispatching = was;
}

static size_t connected(struct fedavg *f)
{
	size_t n = 0;

	for (size_t i = 0; i < f->n; i++)
		n += !f->parts[i].refused && cfl__fedavg_peer_of(f, &f->parts[i]) != NULL;
	return n;
}

/* Ends the job when the sites that refused it leave fewer than min_clients that may take it
 * (the job goes on with those that accepted when enough did). Returns 1 if it ended. */
static int too_few_left(struct fedavg *f)
{
	size_t left = 0;
	char why[CFL_ERR_MSG_MAX];
	int n;

	for (size_t i = 0; i < f->n; i++)
		left += !f->parts[i].refused;
	if ((int)left >= f->jb->min_clients)
		return 0;
	n = snprintf(why, sizeof(why),
	             "%zu of %zu sites may run the job, fewer than min_clients %d:", left, f->n,
	             f->jb->min_clients);
	for (size_t i = 0; i < f->n && n > 0 && (size_t)n < sizeof(why); i++) {
		const char *r = json_string_value(json_object_get(
		        json_object_get(f->jb->site_states, f->parts[i].name), "reason"));

		size_t len = strlen(f->parts[i].name);

		/* A site's own reason names it already ("site-b: byoc not granted ..."). */
		if (f->parts[i].refused && r != NULL && strncmp(r, f->parts[i].name, len) == 0 &&
		    r[len] == ':')
			n += snprintf(why + n, sizeof(why) - (size_t)n, " %s;", r);
		else if (f->parts[i].refused)
			n += snprintf(why + n, sizeof(why) - (size_t)n, " %s: %s;",
			              f->parts[i].name, r != NULL ? r : "refused");
	}
	cfl__fedavg_finish(f, JOB_EXCEPTION, why);
	return 1;
}

void cfl__fedavg_start_round(struct fedavg *f)
{
	size_t have = connected(f);

	if ((int)have < f->jb->min_clients) {
		uint64_t now = cfl_loop_now_ms(f->j->loop);

		if (now - f->wait_log > 10000) {
			CFL_INFO("job %s waiting for clients: %zu of %d connected", f->jb->id, have,
			         f->jb->min_clients);
			f->wait_log = now;
		}
		return; /* the scheduler's tick tries again */
	}
	cfl_agg_reset(f->agg);
	f->in_round = 1;
	f->pulling = 0;
	f->busy_at = f->drop_at = f->tq_head = f->tq_tail = 0;
	f->window = cfl__fedavg_pull_window(f->gs.total);
	f->round_t0 = cfl_loop_now_ms(f->j->loop);
	if (f->jb->state != JOB_RUNNING) {
		f->jb->state = JOB_RUNNING;
		cfl__job_save(f->jb);
	}
	CFL_INFO("job %s round %d/%d: %zu sites", f->jb->id, f->jb->rounds_done + 1,
	         f->jb->num_rounds, have);
	f->dispatching = 1;
	for (size_t i = 0; i < f->n; i++) {
		struct part *p = &f->parts[i];

		p->st = P_IDLE;
		p->steps = 0;
		json_decref(p->rows);
		p->rows = NULL;
		p->dropped = 0;
	}
	for (size_t i = 0; i < f->n; i++) {
		struct part *p = &f->parts[i];

		if (!p->refused && cfl__fedavg_peer_of(f, p) != NULL)
			p->st = P_WAIT;
	}
	f->dispatch_at = 0;
	dispatch_more(f);
	f->dispatching = 0;
	maybe_drop_global(f);
	cfl__fedavg_round_check(f);
}

void cfl__fedavg_kick(struct cfl_jobs *j)
{
	struct fedavg *f = j->run;

	if (f != NULL && f->init)
		cfl__fedavg_init_next(f);
	else if (f != NULL && !f->in_round)
		cfl__fedavg_start_round(f);
}

int cfl__fedavg_abort(struct cfl_jobs *j, const struct job *jb, const char *why)
{
	if (j->run == NULL || j->run->jb != jb)
		return CFL_ENOENT;
	cfl__fedavg_finish(j->run, JOB_ABORTED, why);
	return 0;
}
