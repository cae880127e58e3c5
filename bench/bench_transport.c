/* Transport benchmark: cfl's mTLS connections beside baselines measured in the same run, two
 * processes on loopback (this process is the client, a forked child the server). It provisions
 * its own project (server "localhost", one client, mtls) into a temporary folder.
 *
 *   bulk      a 1 GiB body with cfl_conn_send_lent() (lent from memory) and
 *             cfl_conn_send_stream() (copied from a read function) against a minimal OpenSSL
 *             TLS 1.3 mTLS pipe and plain TCP (1 MiB writes, blocking sockets); medians of 5
 *             interleaved runs, and of the 5 ratios of lent to OpenSSL in the same run
 *   messages  64-byte request/reply round trips and one-way messages on one cfl_conn, beside a
 *             64-byte TCP ping-pong with the same server process; 5 paired runs
 *   idle      the server's VmRSS per idle mTLS connection, and the handshake rate
 *
 * Every wait has a deadline; a server process dies with its parent (PR_SET_PDEATHSIG) or after
 * BENCH_CHILD_SECS (alarm), and is reaped on every path. Usage: bench_transport [--quick]
 *
 * This file: the options, the order of the paths and the table; the rest in bench/transport/
 * (transport.h). */

#define _GNU_SOURCE
#include "cfl/log.h"
#include "transport/transport.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

struct bt_settings set = {(uint64_t)1 << 30, 20000, 200000, 5000};
struct bt_results res;
uint8_t src_buf[BUF_SIZE], rx_buf[BUF_SIZE];
char cfl_cipher[96], base_cipher[96];
static int only_messages, only_bulk; /* --messages, --bulk */

static void print_messages(void)
{
	printf("small messages, 64-byte bodies, one connection, medians of %d paired runs\n"
	       "  TCP ping-pong (baseline)         %8.0f round trips/s  (%d a run)\n"
	       "  cfl request/reply (mTLS)         %8.0f round trips/s  (%d a run, %.2f of TCP;\n"
	       "                                   median of the pairs' ratios %.2f, target >= "
	       "0.80)\n"
	       "  cfl one-way (mTLS)               %8.0f messages/s     (%d, then a request)\n"
	       "  OpenSSL mTLS ping-pong (reference) %6.0f round trips/s  (%d a run, blocking both "
	       "sides;\n"
	       "                                   cfl request/reply %.2f of it)\n\n",
	       MSG_RUNS, res.tcp_rtt, set.rtts, res.rtt, set.rtts, res.rtt / res.tcp_rtt,
	       res.rtt_ratio, res.oneway, set.oneways, res.tls_rtt, set.rtts,
	       res.rtt / res.tls_rtt);
}

static void print_bulk(void)
{
	static const char *const label[B_KINDS] = {"cfl mTLS, lent (cfl_conn_send_lent)",
	                                           "cfl mTLS, copied (send_stream)",
	                                           "OpenSSL TLS 1.3 mTLS pipe", "plain TCP"};
	double med[B_KINDS], s[RUNS], pair[RUNS];

	printf("bulk: %" PRIu64 " MiB body, MB/s, %d runs   ", set.bulk >> 20, RUNS);
	for (int r = 0; r < RUNS; r++)
		printf(" %6d", r + 1);
	printf("  median\n");
	for (int k = 0; k < B_KINDS; k++) {
		memcpy(s, res.bulk[k], sizeof(s));
		med[k] = bt_median(s, RUNS);
		printf("  %-34s", label[k]);
		for (int r = 0; r < RUNS; r++)
			printf(" %6.0f", res.bulk[k][r]);
		printf(" %7.0f\n", med[k]);
	}
	for (int r = 0; r < RUNS; r++)
		pair[r] = res.bulk[B_CFL][r] / res.bulk[B_OSSL][r];
	printf("  ratio cfl lent / OpenSSL    %.2f  (median of paired runs %.2f; target >= 0.95)\n"
	       "  ratio cfl copied / OpenSSL  %.2f\n"
	       "  ratio cfl lent / TCP        %.2f\n\n",
	       med[B_CFL] / med[B_OSSL], bt_median(pair, RUNS), med[B_COPY] / med[B_OSSL],
	       med[B_CFL] / med[B_TCP]);
}

static void print_results(void)
{
	printf("cfl transport benchmark: 2 processes on loopback (client, forked server)\n"
	       "  cfl: %s; OpenSSL baseline: %s\n\n",
	       cfl_cipher, base_cipher);
	print_bulk();
	print_messages();
	printf("idle connections: %d mTLS, one cfl_loop per process\n"
	       "  handshakes                       %8.0f connections/s (%.2f s, %d in flight)\n",
	       set.conns, res.hs_rate, res.hs_secs, DIAL_WINDOW);
	printf("  server VmRSS %7ld -> %7ld KiB  %6.1f KiB per connection\n"
	       "  client VmRSS %7ld -> %7ld KiB  %6.1f KiB per connection\n",
	       res.srv_before, res.srv_after, (double)(res.srv_after - res.srv_before) / set.conns,
	       res.cli_before, res.cli_after, (double)(res.cli_after - res.cli_before) / set.conns);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		int help = strcmp(argv[i], "--help") == 0;

		if (strcmp(argv[i], "--quick") == 0) {
			set.bulk = (uint64_t)64 << 20;
			set.rtts = 2000;
			set.oneways = 20000;
			set.conns = 500;
		} else if (strcmp(argv[i], "--messages") == 0) {
			only_messages = 1;
		} else if (strcmp(argv[i], "--bulk") == 0) {
			only_bulk = 1;
		} else {
			fprintf(help ? stdout : stderr,
			        "usage: bench_transport [--quick] [--messages | --bulk]\n"
			        "  --quick     64 MiB, 2,000 round trips, 20,000 one-way, 500 "
			        "connections\n"
			        "  --messages  only the small messages (e.g. under a profiler)\n"
			        "  --bulk      only the bulk transfers\n");
			return help ? 0 : 2;
		}
	}
	bt_signals();
	cfl_log_set_level(CFL_LOG_ERROR);
	for (size_t i = 0; i < BUF_SIZE; i++)
		src_buf[i] = (uint8_t)(i * 131 + 7);
	make_kits();
	if (only_messages) {
		bench_messages();
		print_messages();
	} else if (only_bulk) {
		bench_bulk();
		print_bulk();
	} else {
		bench_bulk();
		bench_messages();
		bench_idle();
		print_results();
	}
	cfl_tls_ctx_free(srv_tls);
	cfl_tls_ctx_free(cli_tls);
	bt_tmp_remove();
	return 0;
}
