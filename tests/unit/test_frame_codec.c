/* Unit tests for the frame codec (src/net/frame.c) and the reader/writer (src/util/reader.h):
 * every type encoded and decoded again, the layout on the wire, header lookup, input given in
 * every prefix and split at every byte, the encoder's own refusals. The fixture is in
 * frame_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "frame_fixture.h"

static void test_roundtrip_every_type(void **state)
{
	uint8_t buf[256], again[256];
	unsigned type;

	(void)state;
	for (type = CFL_FRAME_T_REQUEST; type <= CFL_FRAME_T_CANCEL; type++) {
		struct cfl_frame f = sample((uint8_t)type), g;
		size_t n = encode(buf, sizeof(buf), &f), frame_len = 0;

		assert_int_equal(cfl_frame_peek(buf, n, MAX, &frame_len), 0);
		assert_int_equal(frame_len, n);
		assert_int_equal(cfl_frame_decode(buf, n, MAX, &g), (int)n);
		assert_same(&f, &g);
		/* zero copy: the body points into the input */
		if (g.body_len > 0)
			assert_ptr_equal(g.body, buf + n - g.body_len);
		assert_int_equal(encode(again, sizeof(again), &g), n);
		assert_memory_equal(buf, again, n);
	}
}

/* Pins the byte layout documented in docs/protocol.md (the example there is this frame). */
static void test_layout(void **state)
{
	static const uint8_t want[] = {
	        'C', 'F', 1,   2,                /* magic, version 1, type REPLY */
	        0,   1,   0,   7,                /* flags MORE, header section 7 bytes */
	        0,   0,   0,   10,               /* payload: 7 + 3 body bytes */
	        0,   0,   0,   0,                /* reserved */
	        1,   2,   3,   4,  5,   6, 7, 8, /* id */
	        0,   0,   0,   0,  0,   0, 1, 0, /* ref */
	        0,   1,                          /* 1 header */
	        1,   'a', 0,   1,  'b',          /* a: b */
	        0,   'x', 'y',                   /* body */
	};
	struct cfl_frame f = make(CFL_FRAME_T_REPLY, CFL_FRAME_F_MORE, 0x0102030405060708ull, 256);
	uint8_t buf[64];

	(void)state;
	set_header(&f, "a", "b");
	set_body(&f, "\0xy", 3);
	assert_int_equal(encode(buf, sizeof(buf), &f), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_header_lookup(void **state)
{
	struct cfl_frame f = sample(CFL_FRAME_T_REQUEST), g;
	uint8_t buf[256];
	const struct cfl_header *h;
	size_t n = encode(buf, sizeof(buf), &f);

	(void)state;
	assert_int_equal(cfl_frame_decode(buf, n, MAX, &g), (int)n);
	h = cfl_frame_header(&g, "client_name");
	assert_non_null(h);
	assert_int_equal(h->val_len, 6);
	assert_memory_equal(h->val, "site-1", 6);
	h = cfl_frame_header(&g, "empty");
	assert_non_null(h);
	assert_int_equal(h->val_len, 0);
	assert_null(cfl_frame_header(&g, "client"));
	assert_null(cfl_frame_header(&g, "client_name2"));
	assert_null(cfl_frame_header(&g, ""));
	assert_null(cfl_frame_header(NULL, "topic"));
	assert_null(cfl_frame_header(&g, NULL));
}

static void test_type_names(void **state)
{
	(void)state;
	assert_string_equal(cfl_frame_type_name(CFL_FRAME_T_REQUEST), "REQUEST");
	assert_string_equal(cfl_frame_type_name(CFL_FRAME_T_CANCEL), "CANCEL");
	assert_string_equal(cfl_frame_type_name(0), "UNKNOWN");
	assert_string_equal(cfl_frame_type_name(10), "UNKNOWN");
	assert_string_equal(cfl_frame_type_name(-1), "UNKNOWN");
}

/* --- partial and split input --------------------------------------------------------- */

static void test_every_prefix_needs_more(void **state)
{
	unsigned type;

	(void)state;
	for (type = CFL_FRAME_T_REQUEST; type <= CFL_FRAME_T_CANCEL; type++) {
		struct cfl_frame f = sample((uint8_t)type), g;
		uint8_t buf[256];
		size_t n = encode(buf, sizeof(buf), &f), k, frame_len;

		for (k = 0; k < n; k++) {
			/* a copy of exactly k bytes, so ASan sees any read past it */
			uint8_t *p = k > 0 ? malloc(k) : NULL;

			if (k > 0) {
				assert_non_null(p);
				memcpy(p, buf, k);
			}
			assert_int_equal(cfl_frame_decode(p, k, MAX, &g), 0);
			frame_len = 0;
			assert_int_equal(cfl_frame_peek(p, k, MAX, &frame_len),
			                 k < CFL_FRAME_HEAD_LEN ? CFL_EAGAIN : 0);
			if (k >= CFL_FRAME_HEAD_LEN)
				assert_int_equal(frame_len, n);
			free(p);
		}
	}
}

/* A receiver that gets the stream in two reads, split at every byte. */
static void test_split_at_every_byte(void **state)
{
	uint8_t stream[1024], rx[1024];
	struct cfl_frame want[9], got;
	size_t ends[9], total = 0, split;
	unsigned type;

	(void)state;
	for (type = CFL_FRAME_T_REQUEST; type <= CFL_FRAME_T_CANCEL; type++) {
		want[type - 1] = sample((uint8_t)type);
		total += encode(stream + total, sizeof(stream) - total, &want[type - 1]);
		ends[type - 1] = total;
	}
	for (split = 0; split <= total; split++) {
		size_t have = 0, off = 0, next = 0;
		int n;

		memcpy(rx, stream, split);
		have = split;
		for (;;) {
			n = cfl_frame_decode(rx + off, have - off, MAX, &got);
			assert_true(n >= 0);
			if (n == 0) {
				assert_true(have < total);
				memcpy(rx + have, stream + have, total - have);
				have = total;
				continue;
			}
			assert_same(&want[next], &got);
			off += (size_t)n;
			assert_int_equal(off, ends[next]);
			if (++next == 9)
				break;
		}
		assert_int_equal(off, total);
	}
}

/* --- the encoder ---------------------------------------------------------------------- */

static void test_encoder_buffer_too_small(void **state)
{
	uint8_t buf[256], head[256];
	unsigned type;

	(void)state;
	for (type = CFL_FRAME_T_REQUEST; type <= CFL_FRAME_T_CANCEL; type++) {
		struct cfl_frame f = sample((uint8_t)type);
		size_t n = encode(buf, sizeof(buf), &f), cap;
		int hn;

		for (cap = 0; cap < n; cap++)
			assert_int_equal(cfl_frame_encode(buf, cap, &f), CFL_ETOOBIG);
		assert_int_equal(cfl_frame_encode(NULL, 0, &f), CFL_ETOOBIG);
		assert_int_equal(cfl_frame_encode(buf, n, &f), (int)n);
		assert_int_equal(cfl_frame_encode(buf, SIZE_MAX, &f), (int)n); /* "room enough" */
		/* head + body written separately are the same bytes */
		hn = cfl_frame_encode_head(head, sizeof(head), &f, f.body_len);
		assert_int_equal((size_t)hn + f.body_len, n);
		assert_memory_equal(head, buf, (size_t)hn);
		if (f.body_len > 0)
			assert_memory_equal(buf + hn, f.body, f.body_len);
		for (cap = 0; cap < (size_t)hn; cap++)
			assert_int_equal(cfl_frame_encode_head(head, cap, &f, f.body_len),
			                 CFL_ETOOBIG);
	}
}

static void test_encode_head_streams_big_body(void **state)
{
	struct cfl_frame f = make(CFL_FRAME_T_REQUEST, CFL_FRAME_F_MORE, 1, 0), g;
	uint8_t head[64];
	int n;

	(void)state;
	set_header(&f, "body-length", "4294967296");
	/* the frame's own share of the body: one chunk, not read by encode_head */
	n = cfl_frame_encode_head(head, sizeof(head), &f, CFL_FRAME_CHUNK);
	assert_true(n > CFL_FRAME_HEAD_LEN);
	assert_int_equal(cfl_frame_decode(head, (size_t)n, MAX, &g), 0); /* body still to come */
	/* a body that would overflow the u32 payload length */
	assert_int_equal(cfl_frame_encode_head(head, sizeof(head), &f, UINT32_MAX), CFL_ETOOBIG);
}

static void test_encoder_rejects_invalid(void **state)
{
	uint8_t buf[256];
	struct cfl_frame f;
	char key65[66];

	(void)state;
	memset(key65, 'k', 65);
	key65[65] = 0;
	assert_int_equal(cfl_frame_encode(buf, sizeof(buf), NULL), CFL_EINVAL);
	assert_int_equal(cfl_frame_encoded_size(NULL), 0);
	assert_int_equal(cfl_frame_encode_head(buf, sizeof(buf), NULL, 0), CFL_EINVAL);
#define BAD(stmt)                                                                     \
	do {                                                                          \
		f = sample(CFL_FRAME_T_REQUEST);                                      \
		stmt;                                                                 \
		assert_int_equal(cfl_frame_encode(buf, sizeof(buf), &f), CFL_EINVAL); \
		assert_int_equal(cfl_frame_encoded_size(&f), 0);                      \
	} while (0)
	BAD(f.type = 0);
	BAD(f.type = 10);
	BAD(f.flags = 4);
	BAD(f.flags = CFL_FRAME_F_ERROR);
	BAD(f.ref = 1);
	BAD(f.headers[0].key_len = 0);
	BAD(f.headers[0].key = "Topic");
	BAD(f.headers[0].key = NULL);
	BAD(set_header(&f, key65, "x"));
	BAD(set_header(&f, "topic", "again"));
	BAD(f.headers[0].val_len = 8193);
	BAD(f.headers[0].val = NULL);
	BAD(f.headers[0].val = (const uint8_t *)"a\0b"; f.headers[0].val_len = 3);
	BAD(f.n_headers = 65);
	BAD(f.body = NULL);
	BAD(f.type = CFL_FRAME_T_CHUNK; f.ref = 1);
	BAD(f = sample(CFL_FRAME_T_WINDOW); f.body_len = 4);
	BAD(f = sample(CFL_FRAME_T_WINDOW); f.body = (const uint8_t *)"\0\0\0\0\0\0\0\0");
	BAD(f = sample(CFL_FRAME_T_GOAWAY); f.body = (const uint8_t *)"\xc0\x80");
	BAD(f = sample(CFL_FRAME_T_REPLY); f.headers[0].key = "reason");
	BAD(f = sample(CFL_FRAME_T_CHUNK); f.flags = CFL_FRAME_F_MORE; f.body_len = 0);
#undef BAD
	/* a header section over 64 KiB cannot be described by its u16 length */
	{
		static char vals[8][8193];
		static const char *keys[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
		int i;

		f = make(CFL_FRAME_T_ONEWAY, 0, 1, 0);
		for (i = 0; i < 8; i++) {
			memset(vals[i], 'v', 8192);
			set_header(&f, keys[i], vals[i]);
		}
		assert_int_equal(cfl_frame_encoded_size(&f), 0);
		assert_int_equal(cfl_frame_encode(big, sizeof(big), &f), CFL_ETOOBIG);
		f.n_headers = 7;
		assert_true(cfl_frame_encoded_size(&f) > (size_t)7 * 8192);
	}
}

/* --- the reader and writer ------------------------------------------------------------ */

static void test_reader(void **state)
{
	static const uint8_t in[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
	struct cfl_reader r;

	(void)state;
	cfl__rd_init(&r, in, sizeof(in));
	assert_int_equal(cfl__rd_get_u8(&r), 1);
	assert_int_equal(cfl__rd_get_u16(&r), 0x0203);
	assert_int_equal(cfl__rd_get_u32(&r), 0x04050607);
	assert_int_equal(cfl__rd_left(&r), 8);
	assert_true(cfl__rd_get_u64(&r) == 0x08090a0b0c0d0e0full);
	assert_ptr_equal(cfl__rd_get_bytes(&r, 0), in + 15);
	assert_int_equal(r.err, 0);
	/* past the end: nothing read, cursor kept, sticky error */
	assert_int_equal(cfl__rd_get_u16(&r), 0);
	assert_int_equal(r.off, 15);
	assert_int_equal(r.err, CFL_EPARSE);
	assert_null(cfl__rd_get_bytes(&r, 0));
	cfl__rd_fail(&r, CFL_EPROTO);
	assert_int_equal(r.err, CFL_EPARSE);

	cfl__rd_init(&r, in, 3);
	assert_int_equal(cfl__rd_get_u32(&r), 0); /* partial reads take nothing */
	assert_int_equal(r.off, 0);
	cfl__rd_init(&r, in, 3);
	assert_int_equal(cfl__rd_skip(&r, 2), 0);
	assert_null(cfl__rd_get_bytes(&r, SIZE_MAX)); /* no overflow in the bound */
	assert_int_equal(r.err, CFL_EPARSE);
	cfl__rd_init(&r, in, 3);
	cfl__rd_fail(&r, CFL_EPROTO);
	assert_int_equal(cfl__rd_left(&r), 0);
	assert_int_equal(cfl__rd_get_u8(&r), 0);
	assert_int_equal(r.err, CFL_EPROTO);
	cfl__rd_init(&r, NULL, 100); /* no buffer means no bytes */
	assert_int_equal(cfl__rd_left(&r), 0);
	assert_non_null(cfl__rd_get_bytes(&r, 0));
	assert_int_equal(cfl__rd_get_u8(&r), 0);
	assert_int_equal(r.err, CFL_EPARSE);
}

static void test_writer(void **state)
{
	static const uint8_t want[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 'x'};
	uint8_t out[16];
	struct cfl_writer w;

	(void)state;
	cfl__wr_init(&w, out, sizeof(out));
	cfl__wr_put_u8(&w, 1);
	cfl__wr_put_u16(&w, 0x0203);
	cfl__wr_put_u32(&w, 0x04050607);
	cfl__wr_put_u64(&w, 0x08090a0b0c0d0e0full);
	cfl__wr_put_bytes(&w, "x", 1);
	assert_int_equal(w.err, 0);
	assert_int_equal(w.off, 16);
	assert_memory_equal(out, want, 16);
	cfl__wr_put_u8(&w, 0);
	assert_int_equal(w.err, CFL_ETOOBIG);
	assert_int_equal(w.off, 16);

	cfl__wr_init(&w, out, 3);
	cfl__wr_put_u32(&w, 0xffffffff); /* does not fit: nothing written */
	assert_int_equal(w.err, CFL_ETOOBIG);
	assert_int_equal(out[0], 1);
	cfl__wr_put_u8(&w, 9); /* sticky */
	assert_int_equal(w.off, 0);

	cfl__wr_init_count(&w);
	cfl__wr_put_u64(&w, 1);
	cfl__wr_put_bytes(&w, big, 1000); /* counted, not copied */
	assert_int_equal(w.err, 0);
	assert_int_equal(w.off, 1008);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_roundtrip_every_type),
	        cmocka_unit_test(test_layout),
	        cmocka_unit_test(test_header_lookup),
	        cmocka_unit_test(test_type_names),
	        cmocka_unit_test(test_every_prefix_needs_more),
	        cmocka_unit_test(test_split_at_every_byte),
	        cmocka_unit_test(test_encoder_buffer_too_small),
	        cmocka_unit_test(test_encode_head_streams_big_body),
	        cmocka_unit_test(test_encoder_rejects_invalid),
	        cmocka_unit_test(test_reader),
	        cmocka_unit_test(test_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
