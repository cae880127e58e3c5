/* The updates of a FedAvg round into the running sum (cfl_agg), one site's at a time.
 *
 * A large model's update streams straight into the sum: one request out at once, so that
 * aggregation holds the sum and one staged update. A small model's updates are pulled several
 * at once (the window, within PULL_BUDGET bytes), each buffered whole as it arrives and summed
 * when complete: with 19,000 sites, one round trip each in turn was seconds of the round. */
#include "fedavg_int.h"

#include "cfl/log.h"
#include "cfl/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PULL_BUDGET     ((uint64_t)1 << 20) /* bytes of updates buffered at once */
#define PULL_WINDOW_MAX 64
#define PULL_TIMEOUT_MS 60000

int cfl__fedavg_pull_window(uint64_t model_bytes)
{
	uint64_t w = model_bytes > 0 ? PULL_BUDGET / model_bytes : 1;

	return w < 2 ? 1 : w > PULL_WINDOW_MAX ? PULL_WINDOW_MAX : (int)w;
}

/* An update buffered whole may be at most this long: the model's size and room for its
 * header; anything longer is not an update of this model. */
static size_t ubuf_max(const struct fedavg *f)
{
	return (size_t)(PULL_BUDGET / (uint64_t)f->window) + 65536;
}

/* --- straight into the sum (window 1) -------------------------------------------------------- */

static void update_data(void *st, const uint8_t *d, size_t n)
{
	struct part *p = st;
	struct cfl_err e = {0};

	if (p->st == P_PULL && cfl_agg_feed(p->f->agg, d, n, &e) != 0) {
		CFL_WARN("update from %s rejected: %s", p->name, e.msg);
		cfl_agg_abort(p->f->agg);
		p->st = P_FAILED;
	}
}

static void update_end(void *st, int status, const char *reason)
{
	struct part *p = st;
	struct fedavg *f = p->f;
	struct cfl_err e = {0};

	if (!cfl__fedavg_call_end(f))
		return;
	f->pulling--;
	if (p->st == P_PULL) {
		if (status == 0 && cfl_agg_end(f->agg, &e) == 0) {
			p->st = P_DONE;
		} else {
			CFL_WARN("update from %s lost: %s", p->name,
			         status != 0 ? (reason ? reason : cfl_strerror(status)) : e.msg);
			cfl_agg_abort(f->agg);
			p->st = P_FAILED;
		}
	}
	cfl__fedavg_round_check(f);
}

/* --- buffered whole, then summed (window > 1) ------------------------------------------------ */

static void buffer_data(void *st, const uint8_t *d, size_t n)
{
	struct part *p = st;
	size_t cap;
	uint8_t *b;

	if (p->st != P_PULL || n == 0)
		return;
	if (n > ubuf_max(p->f) - p->ulen) {
		CFL_WARN("update from %s rejected: longer than %zu bytes", p->name, ubuf_max(p->f));
		p->st = P_FAILED;
		return;
	}
	if (p->ulen + n > p->ucap) {
		for (cap = p->ucap ? p->ucap : 4096; cap < p->ulen + n; cap *= 2)
			;
		if ((b = realloc(p->ubuf, cap)) == NULL) {
			CFL_WARN("update from %s lost: out of memory", p->name);
			p->st = P_FAILED;
			return;
		}
		p->ubuf = b;
		p->ucap = cap;
	}
	memcpy(p->ubuf + p->ulen, d, n);
	p->ulen += n;
}

/* The whole update into the sum at once: nothing else feeds it meanwhile. */
static void sum_buffered(struct fedavg *f, struct part *p)
{
	struct cfl_err e = {0};

	if (cfl_agg_begin(f->agg, (double)p->steps, &e) == 0 &&
	    cfl_agg_feed(f->agg, p->ubuf, p->ulen, &e) == 0 && cfl_agg_end(f->agg, &e) == 0) {
		p->st = P_DONE;
		return;
	}
	CFL_WARN("update from %s rejected: %s", p->name, e.msg);
	cfl_agg_abort(f->agg);
	p->st = P_FAILED;
}

static void buffer_end(void *st, int status, const char *reason)
{
	struct part *p = st;
	struct fedavg *f = p->f;

	if (!cfl__fedavg_call_end(f))
		return;
	f->pulling--;
	if (p->st == P_PULL && status != 0) {
		CFL_WARN("update from %s lost: %s", p->name,
		         reason ? reason : cfl_strerror(status));
		p->st = P_FAILED;
	}
	if (p->st == P_PULL)
		sum_buffered(f, p);
	free(p->ubuf);
	p->ubuf = NULL;
	p->ulen = p->ucap = 0;
	cfl__fedavg_round_check(f);
}

/* --- the requests ------------------------------------------------------------------------------
 */

static void update_reply(struct cfl_peer *peer, int status, const char *reason,
                         const struct cfl_frame *fr, int more, struct cfl_msg_sink *sink, void *arg)
{
	struct part *p = arg;
	struct fedavg *f = p->f;
	struct cfl_err e = {0};
	int buffered = f->window > 1;

	(void)peer;
	if (status != 0 || f->zombie ||
	    (!buffered && cfl_agg_begin(f->agg, (double)p->steps, &e) != 0)) {
		if (status != 0)
			CFL_WARN("cannot get the update of %s: %s", p->name,
			         reason ? reason : cfl_strerror(status));
		if (p->st == P_PULL)
			p->st = P_FAILED;
		/* Ends the call, which may free the run (and p with it): nothing of p or f is
		 * touched after it. */
		(buffered ? buffer_end : update_end)(p, CFL_ECLOSED, "no update");
		return;
	}
	(buffered ? buffer_data : update_data)(p, fr->body, fr->body_len);
	if (more)
		*sink = buffered ? (struct cfl_msg_sink){buffer_data, buffer_end, p}
		                 : (struct cfl_msg_sink){update_data, update_end, p};
	else
		(buffered ? buffer_end : update_end)(p, 0, NULL);
}

void cfl__fedavg_pull_next(struct fedavg *f)
{
	char round[16];
	struct cfl_header h[2];

	snprintf(round, sizeof(round), "%d", f->jb->rounds_done + 1);
	h[0] = CFL_HDR(CFL_KEY_JOB, f->jb->id);
	h[1] = CFL_HDR(CFL_KEY_ROUND, round);
	while (f->pulling < f->window && f->tq_head < f->tq_tail) {
		struct part *p = &f->parts[f->trained[f->tq_head++]];
		struct cfl_peer *peer;

		if (p->st != P_TRAINED)
			continue;
		peer = cfl__fedavg_peer_of(f, p);
		if (peer == NULL || cfl_peer_request(peer, CFL_TOPIC_TASK_GET_UPDATE, h, 2, NULL, 0,
		                                     PULL_TIMEOUT_MS, update_reply, p) != 0) {
			p->st = P_FAILED;
			continue;
		}
		p->st = P_PULL;
		f->pulling++;
		cfl__fedavg_call_begin(f);
	}
}
