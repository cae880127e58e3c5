/* libFuzzer target for the frame decoder (src/net/frame.c).
 *
 * The input is read as a stream of frames, the way a connection before login sees it
 * (max_payload = 64 KiB), until the first error or incomplete frame. Every frame that decodes
 * must re-encode to exactly the bytes it came from (the encoding is unique; also through the
 * send path's encoder of a frame already sized), peek must agree on
 * its length, any strict prefix of it must be "need more", and its headers must be found by
 * name. Any disagreement aborts, which libFuzzer reports as a crash. */
#include "cfl/err.h"
#include "cfl/frame.h"
#include "net/frame_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAYLOAD CFL_FRAME_MAX_PAYLOAD_PRELOGIN

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[CFL_FRAME_HEAD_LEN + MAX_PAYLOAD];

static void check(int ok)
{
	if (!ok)
		abort();
}

static void check_headers(const struct cfl_frame *f)
{
	char key[CFL_FRAME_MAX_KEY + 1];
	size_t i;

	for (i = 0; i < f->n_headers; i++) {
		check(f->headers[i].key_len > 0 && f->headers[i].key_len <= CFL_FRAME_MAX_KEY);
		memcpy(key, f->headers[i].key, f->headers[i].key_len);
		key[f->headers[i].key_len] = '\0';
		check(cfl_frame_header(f, key) == &f->headers[i]);
	}
}

/* `in` holds exactly one frame of `n` bytes, which decoded to `f`. */
static void check_frame(const uint8_t *in, size_t n, const struct cfl_frame *f)
{
	struct cfl_frame g;
	size_t frame_len = 0;
	int head;

	check(cfl_frame_peek(in, n, MAX_PAYLOAD, &frame_len) == 0 && frame_len == n);
	check(cfl_frame_decode(in, n - 1, MAX_PAYLOAD, &g) == 0);
	check(cfl_frame_encoded_size(f) == n);
	check(cfl_frame_encode(out, sizeof(out), f) == (int)n);
	check(memcmp(out, in, n) == 0);
	check(cfl_frame_encode(out, n - 1, f) == CFL_ETOOBIG);
	memset(out, 0, n);
	check(cfl__frame_encode_sized(out, n, f) == (int)n); /* the send path's, unchecked */
	check(memcmp(out, in, n) == 0);
	head = cfl_frame_encode_head(out, sizeof(out), f, f->body_len);
	check(head >= CFL_FRAME_HEAD_LEN && (size_t)head + f->body_len == n);
	check(memcmp(out, in, (size_t)head) == 0);
	check(f->body_len == 0 || f->body == in + head); /* zero copy */
	check_headers(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		struct cfl_frame f;
		int n = cfl_frame_decode(data + off, size - off, MAX_PAYLOAD, &f);

		if (n <= 0) {
			check(n == 0 || n == CFL_EPROTO || n == CFL_ETOOBIG);
			break;
		}
		check((size_t)n <= size - off);
		check_frame(data + off, (size_t)n, &f);
		off += (size_t)n;
	}
	return 0;
}
