/* bench_transport's small-message path: request/reply round trips and one-way messages on one
 * cfl connection, beside a TCP ping-pong. */
#define _GNU_SOURCE
#include "transport.h"

#include "cfl/err.h"

#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static double pingpong(int port)
{
	struct io p = {tcp_connect(port), NULL, NULL};
	uint8_t buf[MSG_SIZE];
	double t0 = bt_now_s();

	for (int i = 0; i < set.rtts; i++) {
		io_write(&p, src_buf, MSG_SIZE);
		io_read_full(&p, buf, MSG_SIZE);
	}
	t0 = bt_now_s() - t0;
	close(p.fd);
	return set.rtts / t0;
}

/* The OpenSSL ping-pong's server: one mTLS connection, blocking, echoes each 64-byte message
 * until the client closes. */
static int tls_echo(const void *arg)
{
	struct io p = {-1, NULL, NULL};
	int port, lfd = tcp_listen(&port);
	struct pollfd pf = {lfd, POLLIN, 0};
	uint8_t buf[MSG_SIZE];

	(void)arg;
	bt_tell(port);
	if (poll(&pf, 1, WAIT_MS) != 1 || (p.fd = accept(lfd, NULL, NULL)) < 0)
		bt_die("no connection to accept");
	tune(p.fd);
	ossl_open(&p, 1);
	while (io_read(&p, buf, MSG_SIZE) == MSG_SIZE)
		io_write(&p, buf, MSG_SIZE);
	io_close(&p);
	close(lfd);
	return 0;
}

/* A reference, not the target's baseline: MSG_RUNS runs of 64-byte round trips over a bare
 * OpenSSL mTLS connection, blocking on both sides (what TLS itself costs per round trip). */
static double tls_pingpong(void)
{
	struct io p = {-1, NULL, NULL};
	double v[MSG_RUNS], t0;
	uint8_t buf[MSG_SIZE];

	p.fd = tcp_connect(bt_spawn(tls_echo, NULL));
	ossl_open(&p, 0);
	for (int r = 0; r < MSG_RUNS; r++) {
		t0 = bt_now_s();
		for (int i = 0; i < set.rtts; i++) {
			io_write(&p, src_buf, MSG_SIZE);
			io_read_full(&p, buf, MSG_SIZE);
		}
		v[r] = set.rtts / (bt_now_s() - t0);
	}
	io_close(&p);
	bt_reap();
	return bt_median(v, MSG_RUNS);
}

/* One-way messages per second, timed up to the reply to a request sent after them. */
static double oneway_cfl(struct cli *k)
{
	struct cfl_frame f;
	double t0 = bt_now_s(), end = t0 + WAIT_MS / 1e3;
	int sent = 0, rc, want = k->replies + 1;

	memset(&f, 0, sizeof(f));
	f.type = CFL_FRAME_T_ONEWAY;
	f.body = src_buf;
	f.body_len = MSG_SIZE;
	while (sent < set.oneways) {
		rc = cfl_conn_queued(k->c) < ONEWAY_QUEUE ? cfl_conn_send(k->c, &f) : CFL_EAGAIN;
		if (rc == 0) {
			sent++;
			continue;
		}
		if (rc != CFL_EAGAIN)
			bt_die("cannot send a one-way message: %s", cfl_strerror(rc));
		if (bt_interrupted() || bt_now_s() > end)
			bt_die("one-way messages: interrupted or timed out");
		if (cfl_loop_run_once(k->loop, 10) < 0)
			bt_die("event loop failed");
	}
	request(k);
	run_until(k->loop, &k->replies, want, "the reply after the one-way messages");
	if (reply_num(k, 1) != (uint64_t)set.oneways)
		bt_die("the server received %" PRIu64 " of %d one-way messages", reply_num(k, 1),
		       set.oneways);
	return set.oneways / (k->t_reply - t0);
}

/* MSG_RUNS pairs of a TCP ping-pong run and a cfl request/reply run, each pair in another
 * order; the medians of each and of the pairs' ratios. */
void bench_messages(void)
{
	int port;
	double tcp[MSG_RUNS], rtt[MSG_RUNS], ratio[MSG_RUNS], t0;
	struct cli k;

	res.tls_rtt = tls_pingpong();
	port = spawn_cfl();
	cli_open(&k, 1);
	for (int r = 0; r < MSG_RUNS; r++) {
		if (r % 2 == 0)
			tcp[r] = pingpong(port);
		k.left = set.rtts;
		k.replies = 0;
		t0 = bt_now_s();
		request(&k);
		run_until(k.loop, &k.replies, set.rtts, "the round trips");
		rtt[r] = set.rtts / (k.t_reply - t0);
		if (r % 2 == 1)
			tcp[r] = pingpong(port);
		ratio[r] = rtt[r] / tcp[r];
	}
	res.tcp_rtt = bt_median(tcp, MSG_RUNS);
	res.rtt = bt_median(rtt, MSG_RUNS);
	res.rtt_ratio = bt_median(ratio, MSG_RUNS);
	res.oneway = oneway_cfl(&k);
	cli_close(&k);
	bt_reap();
}
