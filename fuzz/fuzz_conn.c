/* libFuzzer target for the receiving side of a connection (src/net/conn.c, stream_in.c): what
 * a peer can make the transport do with the bytes it sends, beyond the single frames that
 * fuzz_frame.c covers (ids, streams, credit, CANCEL, WINDOW, PING, GOAWAY, end of stream).
 *
 * Input: one settings byte, then the bytes the peer sends over a clear connection (a
 * socketpair; the TLS layer is OpenSSL's to fuzz). Settings: bit 0, the peer counts as logged
 * in (streams allowed, 1 MiB frames); bit 1, the application cancels every stream it is
 * offered; bit 2, the peer closes its side after sending.
 *
 * Checked: every stream announced by on_msg(more) ends with exactly one on_chunk(last) or
 * on_abort, before on_close; nothing is called back for a stream it does not know or after
 * on_close; no crash, leak or undefined behaviour (with ASan/UBSan). */
#define _GNU_SOURCE
#include "cfl/conn.h"
#include "cfl/log.h"
#include "net/conn_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_OPEN 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cfl_loop *loop;

static struct {
	uint64_t open[MAX_OPEN];
	int n_open;
	int closed;
	int logged_in, cancel;
} S;

static void check(int ok)
{
	if (!ok)
		abort();
}

static int find_open(uint64_t id)
{
	int i;

	for (i = 0; i < S.n_open; i++)
		if (S.open[i] == id)
			return i;
	return -1;
}

static void end_stream(uint64_t id)
{
	int i = find_open(id);

	check(i >= 0);
	S.open[i] = S.open[--S.n_open];
}

static void on_open(struct cfl_conn *c, void *user)
{
	(void)user;
	check(!S.closed);
	if (S.logged_in)
		check(cfl_conn_set_max_payload(c, CFL_FRAME_MAX_PAYLOAD) == 0);
}

static void on_msg(struct cfl_conn *c, const struct cfl_frame *f, int more, void *user)
{
	(void)user;
	check(!S.closed);
	if (!more)
		return;
	check(find_open(f->id) < 0 && S.n_open < MAX_OPEN);
	S.open[S.n_open++] = f->id;
	if (S.cancel) {
		check(cfl_conn_cancel(c, f->id) == 0);
		end_stream(f->id);
	}
}

static void on_chunk(struct cfl_conn *c, uint64_t id, const uint8_t *d, size_t n, int last,
                     void *user)
{
	(void)c;
	(void)d;
	(void)n;
	(void)user;
	check(!S.closed && find_open(id) >= 0);
	if (last)
		end_stream(id);
}

static void on_abort(struct cfl_conn *c, uint64_t id, int code, const char *reason, void *user)
{
	(void)c;
	(void)user;
	check(!S.closed && code < 0 && reason != NULL);
	end_stream(id);
}

static void on_close(struct cfl_conn *c, int code, const char *reason, void *user)
{
	(void)c;
	(void)code;
	(void)user;
	check(!S.closed && reason != NULL && S.n_open == 0);
	S.closed = 1;
}

static void drain(int fd)
{
	uint8_t sink[4096];

	while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfl_conn_opts o;
	struct cfl_conn *c;
	size_t off = 1;
	int sv[2], rounds;

	if (size < 1)
		return 0;
	if (loop == NULL) {
		cfl_log_set_level(CFL_LOG_ERROR);
		check(cfl_loop_new(&loop, NULL) == 0);
	}
	memset(&S, 0, sizeof(S));
	S.logged_in = data[0] & 1;
	S.cancel = (data[0] >> 1) & 1;
	check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	memset(&o, 0, sizeof(o));
	o.cb.on_open = on_open;
	o.cb.on_msg = on_msg;
	o.cb.on_chunk = on_chunk;
	o.cb.on_abort = on_abort;
	o.cb.on_close = on_close;
	c = cfl__conn_adopt(loop, sv[0], &o);
	check(c != NULL);
	/* Feed the input, letting the connection read (and answer) whenever the pipe is full. */
	for (rounds = 0; off < size && rounds < 10000; rounds++) {
		ssize_t n = send(sv[1], data + off, size - off, MSG_NOSIGNAL);

		if (n > 0)
			off += (size_t)n;
		else if (n < 0 && errno != EAGAIN)
			break;
		(void)cfl_loop_run_once(loop, 0);
		drain(sv[1]);
	}
	if (data[0] & 4)
		(void)shutdown(sv[1], SHUT_WR);
	/* Until a round runs nothing (0-delay timers need a round of their own). */
	for (rounds = 0; rounds < 1000 && cfl_loop_run_once(loop, 0) > 0; rounds++)
		drain(sv[1]);
	if (!S.closed)
		cfl_conn_free(c);
	(void)cfl_loop_run_once(loop, 0);
	close(sv[1]);
	return 0;
}
