/* The hostile suite's attacks on the transport before login: floods, oversized frames, bytes
 * that are not frames, and a client too slow to ever finish a message. */
#include "hostile.h"

#include "cfl/digest.h"

#include <stdlib.h>
#include <string.h>

#define FLOOD_CONNS     4
#define FLOOD_WINDOW    64    /* challenges outstanding per connection */
#define FLOOD_DEADLINE  60000 /* ms for the whole flood */
#define TRICKLE_STEP_MS 200

/* --- a flood of challenges -------------------------------------------------------------------- */

struct flood {
	struct h_env *e;
	struct h_conn *c[FLOOD_CONNS];
	uint64_t sent_on[FLOOD_CONNS];
	unsigned long target, sent, answered, lost, reconnects;
	/* a logged-in bystander pinging throughout: how long the flood makes others wait */
	struct h_conn *by;
	uint64_t by_id, by_sent_at, by_max_ms;
	unsigned long by_n;
};

/* Keeps one ping of the bystander in flight and notes the slowest answer. */
static void bystander(struct flood *f)
{
	struct h_conn *by = f->by;
	struct h_msg *m = NULL;
	uint64_t now = cfl_loop_now_ms(f->e->loop);
	struct h_hdrs h = {0};

	if (by == NULL || by->closed)
		return;
	if (f->by_id != 0) {
		if (now - f->by_sent_at > f->by_max_ms)
			f->by_max_ms = now - f->by_sent_at;
		if (h_wait_reply(by, f->by_id, 0, &m) != 0)
			return;
		h_msg_free(m);
		f->by_n++;
	}
	h_hdr_auth(&h, by->name, by->token, by->sig);
	f->by_id = h_request(by, "ping", &h, "x", 1);
	f->by_sent_at = now;
}

/* Folds a finished connection's counts in and opens a new one. */
static int flood_refill(struct flood *f, int i, char *how, size_t n)
{
	struct h_conn *hc = f->c[i];
	char why[512] = "";

	if (hc != NULL) {
		f->answered += hc->n_replies;
		f->lost += f->sent_on[i] - hc->n_replies;
		f->reconnects++;
		h_close(hc);
		f->c[i] = NULL;
	}
	f->sent_on[i] = 0;
	if (h_open(f->e, &f->e->site[0], &f->c[i], why, sizeof(why)) != 0) {
		h_cat(how, n, "cannot connect during the flood: %s", why);
		return -1;
	}
	f->c[i]->count_only = 1;
	return 0;
}

static void flood_send(struct flood *f, int i)
{
	struct h_conn *hc = f->c[i];

	while (f->sent < f->target && f->sent_on[i] - hc->n_replies < FLOOD_WINDOW) {
		char nonce[H_NONCE_HEX];
		struct h_hdrs h = {0};

		h_nonce(nonce);
		h_hdr(&h, "client_name", "flood");
		h_hdr(&h, "nonce", nonce);
		h_hdr(&h, "kind", "client");
		if (h_request(hc, "challenge", &h, NULL, 0) == 0)
			return;
		f->sent_on[i]++;
		f->sent++;
	}
}

static unsigned long flood_done(const struct flood *f)
{
	unsigned long d = f->answered + f->lost;

	for (int i = 0; i < FLOOD_CONNS; i++) {
		if (f->c[i] != NULL)
			d += f->c[i]->n_replies;
	}
	return d;
}

static int flood_run(struct flood *f, char *how, size_t n)
{
	uint64_t end = cfl_loop_now_ms(f->e->loop) + FLOOD_DEADLINE;

	while (flood_done(f) < f->target) {
		if (cfl_loop_now_ms(f->e->loop) >= end) {
			h_cat(how, n, "flood not over after %d s (%lu of %lu answered)",
			      FLOOD_DEADLINE / 1000, flood_done(f), f->target);
			return -1;
		}
		for (int i = 0; i < FLOOD_CONNS; i++) {
			/* The login timeout ends each connection: carry on with a new one. */
			if ((f->c[i] == NULL || f->c[i]->closed) && flood_refill(f, i, how, n) != 0)
				return -1;
			flood_send(f, i);
		}
		bystander(f);
		cfl_loop_run_once(f->e->loop, 20);
	}
	return 0;
}

/* Sends `target` challenges; the counts are left in *f. */
static int flood(struct h_env *e, struct flood *f, unsigned long target, char *how, size_t n)
{
	char why[512] = "";
	int rc;

	memset(f, 0, sizeof(*f));
	f->e = e;
	f->target = target;
	if (h_open(e, &e->site[1], &f->by, why, sizeof(why)) != 0 ||
	    h_login(f->by, &e->site[1], "client", why, sizeof(why)) != 0) {
		h_cat(how, n, "setup: %s", why);
		h_close(f->by);
		return -1;
	}
	rc = flood_run(f, how, n);
	h_close(f->by);
	for (int i = 0; i < FLOOD_CONNS; i++) {
		if (f->c[i] != NULL)
			f->answered += f->c[i]->n_replies;
		h_close(f->c[i]);
	}
	h_pump(e, 300, NULL, NULL); /* let the server drop the connections */
	return rc;
}

int h_case_challenge_flood(struct h_env *e, char *how, size_t n)
{
	unsigned long warm = e->flood_n / 10 > 1500 ? e->flood_n / 10 : 1500;
	struct flood f;
	struct h_conn *hc = NULL;
	long rss0, rss1;
	uint64_t t0;
	double secs;
	char why[512] = "";
	int ok = 1;

	/* A warm-up first: the fixed table of pending challenges fills (it is meant to), and
	 * allocator caches settle; what must not happen is growth with the number of them. */
	if (flood(e, &f, warm < e->flood_n ? warm : e->flood_n, how, n) != 0)
		return 0;
	rss0 = h_server_rss_kib(e);
	t0 = cfl_loop_now_ms(e->loop);
	if (flood(e, &f, e->flood_n, how, n) != 0)
		return 0;
	secs = (double)(cfl_loop_now_ms(e->loop) - t0) / 1e3;
	rss1 = h_server_rss_kib(e);
	h_cat(how, n,
	      "%lu challenges in %.1f s, %lu answered, %lu reconnects; a logged-in client's "
	      "ping took at most %llu ms meanwhile",
	      f.sent, secs, f.answered, f.reconnects, (unsigned long long)f.by_max_ms);
	if (rss0 < 0 || rss1 < 0) {
		h_cat(how, n, "; server memory NOT checked (no pid)");
	} else {
		h_cat(how, n, "; server RSS %+ld KiB after a %lu-challenge warm-up", rss1 - rss0,
		      warm);
		if (rss1 - rss0 > (long)e->rss_limit_kib) {
			h_cat(how, n, " > %lu KiB: UNBOUNDED", e->rss_limit_kib);
			ok = 0;
		}
	}
	if (h_open(e, &e->site[0], &hc, why, sizeof(why)) != 0 ||
	    h_login(hc, &e->site[0], "client", why, sizeof(why)) != 0) {
		h_cat(how, n, "; honest login afterwards FAILED: %s", why);
		ok = 0;
	} else {
		h_cat(how, n, "; honest login afterwards ok");
	}
	h_close(hc);
	return ok;
}

/* --- oversized frames ------------------------------------------------------------------------- */

int h_case_oversized_frame(struct h_env *e, char *how, size_t n)
{
	struct h_conn *hc = NULL;
	size_t len = CFL_FRAME_CHUNK; /* 1 MiB: fine after login, 16 x the pre-login limit */
	uint8_t *body = malloc(len);
	char why[512] = "";
	int ok = 0;

	if (body == NULL || h_open(e, &e->site[0], &hc, why, sizeof(why)) != 0) {
		h_cat(how, n, "setup: %s", body == NULL ? "out of memory" : why);
		goto out;
	}
	memset(body, 'A', len);
	ok = h_expect_reject(hc, h_request(hc, "echo", NULL, body, len), how, n);
out:
	free(body);
	h_close(hc);
	return ok;
}

/* --- bytes that are not frames ---------------------------------------------------------------- */

static int random_on(struct h_env *e, int with_tls, char *how, size_t n)
{
	uint8_t junk[16384];
	struct h_raw r;
	char why[512] = "";
	int ok;

	if (h_raw_open(e, &e->site[0], with_tls, &r, why, sizeof(why)) != 0) {
		h_cat(how, n, "setup: %s", why);
		return 0;
	}
	cfl_random(junk, sizeof(junk));
	/* A header of ones would be a valid-looking type and a huge length; random is random. */
	if (h_raw_write(&r, junk, sizeof(junk), H_WAIT_MS) == CFL_ECLOSED) {
		h_cat(how, n, "connection dropped while writing");
		ok = 1;
	} else {
		ok = h_raw_wait_closed(&r, H_WAIT_MS);
		h_cat(how, n, ok ? "connection dropped" : "connection still open after %d s",
		      H_WAIT_MS / 1000);
	}
	h_raw_close(&r);
	return ok;
}

int h_case_random_bytes(struct h_env *e, char *how, size_t n)
{
	int ok;

	if (e->cfg.mode == CFL_SEC_CLEAR)
		return random_on(e, 0, how, n);
	h_cat(how, n, "instead of a TLS handshake: ");
	ok = random_on(e, 0, how, n);
	h_cat(how, n, "; inside TLS: ");
	ok &= random_on(e, 1, how, n);
	return ok;
}

/* --- a slow client ---------------------------------------------------------------------------- */

int h_case_slow_trickle(struct h_env *e, char *how, size_t n)
{
	uint8_t frame[512];
	char nonce[H_NONCE_HEX];
	struct cfl_frame f;
	struct h_raw r;
	char why[512] = "", text[128];
	uint64_t t0, limit_ms = (uint64_t)(e->login_timeout_s * 1000) + 1500;
	double secs;
	int len, closed = 0;
	size_t sent = 0;

	/* A real challenge, sent a byte at a time: it never completes before the timeout. */
	h_nonce(nonce);
	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_REQUEST;
	f.id = 1;
	f.headers[0] = CFL_HDR("topic", "challenge");
	f.headers[1] = CFL_HDR("client_name", "slow");
	f.headers[2] = CFL_HDR("nonce", nonce);
	f.n_headers = 3;
	len = cfl_frame_encode(frame, sizeof(frame), &f);
	if (len <= 0 || h_raw_open(e, &e->site[0], 1, &r, why, sizeof(why)) != 0) {
		h_cat(how, n, "setup: %s", len <= 0 ? "cannot encode" : why);
		return 0;
	}
	t0 = cfl_loop_now_ms(NULL);
	while (!closed && sent < (size_t)len && cfl_loop_now_ms(NULL) - t0 < limit_ms + 2000) {
		int rc = h_raw_write(&r, frame + sent, 1, 1000);

		if (rc == CFL_ECLOSED)
			closed = 1;
		else if (rc == 0)
			sent++;
		closed = closed || h_raw_wait_closed(&r, TRICKLE_STEP_MS);
	}
	secs = (double)(cfl_loop_now_ms(NULL) - t0) / 1e3;
	h_raw_close(&r);
	if (!closed) {
		h_cat(how, n, "%s after %.1f s and %zu bytes",
		      sent == (size_t)len ? "the whole frame went through" : "still open", secs,
		      sent);
		return 0;
	}
	h_cat(how, n, "connection dropped after %.1f s and %zu of %d bytes", secs, sent, len);
	if (secs * 1000 > (double)limit_ms) {
		h_cat(how, n, ": LATER than the login timeout of %.1f s", e->login_timeout_s);
		return 0;
	}
	snprintf(text, sizeof(text), "connection from %s did not log in", r.addr);
	h_expect_log(e, 'L', NULL, text);
	return 1;
}
