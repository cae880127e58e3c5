/* bench_transport's cfl client: one mTLS connection (bulk, messages) or a fleet of them
 * (idle connections) on a loop of its own. */
#define _GNU_SOURCE
#include "transport.h"

#include "cfl/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs `loop` until *flag reaches `want`, within WAIT_MS. */
void run_until(struct cfl_loop *loop, const int *flag, int want, const char *what)
{
	double end = bt_now_s() + WAIT_MS / 1e3;

	while (*flag < want) {
		if (bt_interrupted())
			bt_die("interrupted");
		if (bt_now_s() > end)
			bt_die("timed out waiting for %s", what);
		if (cfl_loop_run_once(loop, 10) < 0)
			bt_die("event loop failed");
	}
}

/* Keeps DIAL_WINDOW handshakes in flight: thousands at once would only wait in the listen
 * backlog and run into the connect timeout. */
static void cli_dial(struct cli *k)
{
	struct cfl_conn *c;
	struct cfl_err e;

	for (; k->dialed < k->n && k->dialed - k->opened < DIAL_WINDOW; k->dialed++) {
		cfl_err_clear(&e);
		if (cfl_conn_dial(k->loop, LOOPBACK, cfl_port, &k->o, &c, &e) != 0)
			bt_die("cannot dial %s:%d: %s", LOOPBACK, cfl_port, e.msg);
	}
}

void request(struct cli *k)
{
	struct cfl_frame f;

	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_REQUEST;
	f.body = src_buf;
	f.body_len = MSG_SIZE;
	if (cfl_conn_send(k->c, &f) != 0)
		bt_die("cannot send a request");
}

static void cl_open(struct cfl_conn *c, void *user)
{
	struct cli *k = user;

	/* A logged-in site's side, as the server's (cfl_auth_client raises it at login). */
	if (cfl_conn_set_max_payload(c, CFL_FRAME_MAX_PAYLOAD) != 0)
		bt_die("cannot raise the payload limit");
	k->conns[k->opened++] = c;
	snprintf(cfl_cipher, sizeof(cfl_cipher), "%s %s", cfl_conn_tls_version(c),
	         cfl_conn_tls_cipher(c));
	cli_dial(k);
}

/* A reply: note it, and send the next request while round trips are left. */
static void cl_msg(struct cfl_conn *c, const struct cfl_frame *f, int more, void *user)
{
	struct cli *k = user;
	size_t n = f->body_len < MSG_SIZE ? f->body_len : MSG_SIZE;

	(void)c;
	(void)more;
	k->t_reply = bt_now_s();
	memcpy(k->reply, f->body, n);
	k->reply[n] = '\0';
	k->replies++;
	if (k->left > 0 && --k->left > 0)
		request(k);
}

static void cl_close(struct cfl_conn *c, int code, const char *reason, void *user)
{
	struct cli *k = user;

	(void)c;
	if (!k->closing || code != 0)
		bt_die("cfl connection closed (%s): %s", cfl_strerror(code), reason);
	k->closed++;
}

/* Opens `n` mTLS connections to the cfl server and waits until all are open. */
void cli_open(struct cli *k, int n)
{
	struct cfl_conn_opts o = {
	        cli_tls, {cl_open, cl_msg, NULL, NULL, cl_close}, k, WAIT_MS / 4, 0, NULL, 0};
	struct cfl_err e;

	memset(k, 0, sizeof(*k));
	k->o = o;
	k->n = n;
	k->conns = n == 1 ? &k->c : calloc((size_t)n, sizeof(*k->conns));
	cfl_err_clear(&e);
	if (k->conns == NULL || cfl_loop_new(&k->loop, &e) != 0)
		bt_die("cannot make the client: %s", e.msg[0] ? e.msg : "out of memory");
	cli_dial(k);
	run_until(k->loop, &k->opened, n, "the cfl connections to open");
}

void cli_close(struct cli *k)
{
	k->closing = 1;
	for (int i = 0; i < k->n; i++)
		cfl_conn_close(k->conns[i], "benchmark done");
	run_until(k->loop, &k->closed, k->n, "the cfl connections to close");
	cfl_loop_free(k->loop);
	if (k->conns != &k->c)
		free(k->conns);
}

/* The numbers of the last reply: body bytes the server received, one-way messages so far. */
uint64_t reply_num(const struct cli *k, int second)
{
	char *end;
	uint64_t v = strtoull(k->reply, &end, 10);

	return second ? strtoull(end, NULL, 10) : v;
}
