/* bench_transport's bulk path: a large body over cfl (lent and copied) against an OpenSSL
 * TLS 1.3 pipe and plain TCP. */
#define _GNU_SOURCE
#include "transport.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The stream's source lent: the same static 1 MiB over and over, without a copy. */
static int bulk_lend(void *arg, uint64_t off, size_t len, const uint8_t **p)
{
	size_t at = (size_t)(off % BUF_SIZE), n = len < BUF_SIZE - at ? len : BUF_SIZE - at;

	(void)arg;
	*p = src_buf + at;
	return (int)n;
}

/* The stream's source copied: the same static 1 MiB over and over. */
static int bulk_read(void *arg, uint8_t *buf, size_t len)
{
	struct cli *k = arg;
	size_t at = (size_t)(k->off % BUF_SIZE), n = len < BUF_SIZE - at ? len : BUF_SIZE - at;

	memcpy(buf, src_buf + at, n);
	k->off += n;
	return (int)n;
}

static void bulk_done(struct cfl_conn *c, uint64_t id, int status, void *arg)
{
	struct cli *k = arg;

	(void)c;
	(void)id;
	k->status = status;
	k->sent = 1;
}

static double bulk_cfl(int lent)
{
	struct cfl_frame head;
	struct cli k;
	double t0;

	spawn_cfl();
	cli_open(&k, 1);
	memset(&head, 0, sizeof(head));
	head.type = CFL_FRAME_T_REQUEST;
	t0 = bt_now_s();
	if ((lent ? cfl_conn_send_lent(k.c, &head, set.bulk, bulk_lend, &k, bulk_done)
	          : cfl_conn_send_stream(k.c, &head, set.bulk, bulk_read, &k, bulk_done)) != 0)
		bt_die("cannot start the stream");
	run_until(k.loop, &k.replies, 1, "the acknowledgement of the body");
	run_until(k.loop, &k.sent, 1, "the end of the stream");
	if (k.status != 0 || reply_num(&k, 0) != set.bulk)
		bt_die("stream status %d, reply '%s'", k.status, k.reply);
	cli_close(&k);
	bt_reap();
	return (double)set.bulk / (k.t_reply - t0) / 1e6;
}

/* Baseline server: one connection; reads the whole body in 1 MiB reads, acknowledges with one
 * byte, then reads until the client's end of stream. */
static int base_server(const void *arg)
{
	struct io p = {-1, NULL, NULL};
	int port, lfd = tcp_listen(&port);
	struct pollfd pf = {lfd, POLLIN, 0};
	uint64_t got = 0;
	size_t n;

	bt_tell(port);
	if (poll(&pf, 1, WAIT_MS) != 1 || (p.fd = accept(lfd, NULL, NULL)) < 0)
		bt_die("no connection to accept");
	tune(p.fd);
	if (*(const int *)arg)
		ossl_open(&p, 1);
	for (; got < set.bulk; got += n)
		if ((n = io_read(&p, rx_buf, BUF_SIZE)) == 0)
			bt_die("client closed after %" PRIu64 " bytes", got);
	io_write(&p, (const uint8_t *)"k", 1);
	while (io_read(&p, rx_buf, BUF_SIZE) > 0)
		;
	io_close(&p);
	close(lfd);
	return 0;
}

static double bulk_base(int tls)
{
	int port = bt_spawn(base_server, &tls);
	struct io p = {tcp_connect(port), NULL, NULL};
	uint64_t off;
	uint8_t ack;
	double t0, t1;

	if (tls) {
		ossl_open(&p, 0);
		snprintf(base_cipher, sizeof(base_cipher), "%s %s", SSL_get_version(p.ssl),
		         SSL_get_cipher_name(p.ssl));
	}
	t0 = bt_now_s();
	for (off = 0; off < set.bulk; off += BUF_SIZE)
		io_write(&p, src_buf,
		         set.bulk - off < BUF_SIZE ? (size_t)(set.bulk - off) : BUF_SIZE);
	io_read_full(&p, &ack, 1);
	t1 = bt_now_s();
	io_close(&p);
	bt_reap();
	return (double)set.bulk / (t1 - t0) / 1e6;
}

/* Runs of the four kinds interleaved, each run in another order, so that a noisy neighbour
 * hurts all of them alike. */
void bench_bulk(void)
{
	static const char *const name[B_KINDS] = {"cfl", "cfl-copy", "openssl", "tcp"};

	for (int run = 0; run < RUNS; run++) {
		fprintf(stderr, "bulk run %d/%d:", run + 1, RUNS);
		for (int i = 0; i < B_KINDS; i++) {
			int kind = (i + run) % B_KINDS;

			res.bulk[kind][run] = kind == B_CFL || kind == B_COPY
			                              ? bulk_cfl(kind == B_CFL)
			                              : bulk_base(kind == B_OSSL);
			fprintf(stderr, " %s %.0f MB/s", name[kind], res.bulk[kind][run]);
		}
		fputc('\n', stderr);
	}
}
