/* Unit tests for the frame codec (src/net/frame.c) and the reader/writer (src/util/reader.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cfl/err.h"
#include "cfl/frame.h"
#include "util/reader.h"

#include <stdlib.h>
#include <string.h>

#define MAX  CFL_FRAME_MAX_PAYLOAD
#define BUFN (CFL_FRAME_HEAD_LEN + 2 + CFL_FRAME_MAX_HEADERS * (3 + CFL_FRAME_MAX_KEY) + 9000)

static const uint8_t credit[8] = {0, 0, 0, 0, 0, 0x80, 0, 0}; /* 8 MiB */
static const char goodbye[] = "shutting down \xe2\x80\x94 bye \xf0\x9f\x91\x8b";

static void set_header(struct cfl_frame *f, const char *key, const char *val)
{
	struct cfl_header *h = &f->headers[f->n_headers++];

	h->key = key;
	h->key_len = strlen(key);
	h->val = (const uint8_t *)val;
	h->val_len = strlen(val);
}

static void set_body(struct cfl_frame *f, const void *body, size_t len)
{
	f->body = body;
	f->body_len = len;
}

static struct cfl_frame make(uint8_t type, uint16_t flags, uint64_t id, uint64_t ref)
{
	struct cfl_frame f;

	memset(&f, 0, sizeof(f));
	f.type = type;
	f.flags = flags;
	f.id = id;
	f.ref = ref;
	return f;
}

/* A valid frame of each type. */
static struct cfl_frame sample(uint8_t type)
{
	struct cfl_frame f = make(type, 0, 7, 0);

	switch (type) {
	case CFL_FRAME_T_REQUEST:
		set_header(&f, "topic", "train");
		set_header(&f, "client_name", "site-1");
		set_header(&f, "empty", "");
		set_body(&f, "weights", 7);
		break;
	case CFL_FRAME_T_REPLY:
		f = make(type, CFL_FRAME_F_ERROR, 8, 7);
		set_header(&f, "status", "unauthenticated");
		break;
	case CFL_FRAME_T_ONEWAY:
		f.flags = CFL_FRAME_F_MORE;
		set_header(&f, "body-length", "3000000");
		set_body(&f, "abc", 3);
		break;
	case CFL_FRAME_T_CHUNK:
		f.ref = 7;
		set_body(&f, "\0\1\2\3", 4);
		break;
	case CFL_FRAME_T_WINDOW:
		f.ref = 7;
		set_body(&f, credit, 8);
		break;
	case CFL_FRAME_T_PING:
	case CFL_FRAME_T_PONG:
		set_body(&f, "12345678", 8);
		break;
	case CFL_FRAME_T_GOAWAY:
		set_body(&f, goodbye, strlen(goodbye));
		break;
	case CFL_FRAME_T_CANCEL:
		f.ref = 7;
		break;
	default:
		fail();
	}
	return f;
}

static size_t encode(uint8_t *buf, size_t cap, const struct cfl_frame *f)
{
	int n = cfl_frame_encode(buf, cap, f);

	assert_true(n >= CFL_FRAME_HEAD_LEN);
	assert_int_equal((size_t)n, cfl_frame_encoded_size(f));
	return (size_t)n;
}

static void assert_same(const struct cfl_frame *a, const struct cfl_frame *b)
{
	size_t i;

	assert_int_equal(a->type, b->type);
	assert_int_equal(a->flags, b->flags);
	assert_true(a->id == b->id);
	assert_true(a->ref == b->ref);
	assert_int_equal(a->n_headers, b->n_headers);
	for (i = 0; i < a->n_headers; i++) {
		assert_int_equal(a->headers[i].key_len, b->headers[i].key_len);
		assert_memory_equal(a->headers[i].key, b->headers[i].key, a->headers[i].key_len);
		assert_int_equal(a->headers[i].val_len, b->headers[i].val_len);
		if (a->headers[i].val_len > 0)
			assert_memory_equal(a->headers[i].val, b->headers[i].val,
			                    a->headers[i].val_len);
	}
	assert_int_equal(a->body_len, b->body_len);
	if (a->body_len > 0)
		assert_memory_equal(a->body, b->body, a->body_len);
}

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

/* --- malformed input ------------------------------------------------------------------ */

/* Builds a frame byte by byte: fixed header fields as given, then `sect` and `body`. */
struct raw {
	uint8_t magic0, version, type;
	uint16_t flags;
	uint32_t reserved;
	uint64_t ref;
	uint8_t sect[BUFN];
	size_t hlen;
	const void *body;
	size_t body_len;
	long payload; /* -1: hlen + body_len */
};

static struct raw raw_of(uint8_t type)
{
	struct raw r;

	memset(&r, 0, sizeof(r));
	r.magic0 = 'C';
	r.version = 1;
	r.type = type;
	r.payload = -1;
	return r;
}

static size_t raw_emit(uint8_t *buf, size_t cap, const struct raw *r)
{
	struct cfl_writer w;

	cfl__wr_init(&w, buf, cap);
	cfl__wr_put_u8(&w, r->magic0);
	cfl__wr_put_u8(&w, 'F');
	cfl__wr_put_u8(&w, r->version);
	cfl__wr_put_u8(&w, r->type);
	cfl__wr_put_u16(&w, r->flags);
	cfl__wr_put_u16(&w, (uint16_t)r->hlen);
	cfl__wr_put_u32(&w,
	                r->payload >= 0 ? (uint32_t)r->payload : (uint32_t)(r->hlen + r->body_len));
	cfl__wr_put_u32(&w, r->reserved);
	cfl__wr_put_u64(&w, 42);
	cfl__wr_put_u64(&w, r->ref);
	cfl__wr_put_bytes(&w, r->sect, r->hlen);
	cfl__wr_put_bytes(&w, r->body, r->body_len);
	assert_int_equal(w.err, 0);
	return w.off;
}

/* Appends one header entry to r->sect (after a count the caller sets with sect_count). */
static void sect_add(struct raw *r, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct cfl_writer w;

	if (r->hlen == 0)
		r->hlen = 2;
	cfl__wr_init(&w, r->sect + r->hlen, sizeof(r->sect) - r->hlen);
	cfl__wr_put_u8(&w, (uint8_t)klen);
	cfl__wr_put_bytes(&w, key, klen);
	cfl__wr_put_u16(&w, (uint16_t)vlen);
	cfl__wr_put_bytes(&w, val, vlen);
	assert_int_equal(w.err, 0);
	r->hlen += w.off;
}

static void sect_count(struct raw *r, uint16_t n)
{
	if (r->hlen == 0)
		r->hlen = 2;
	r->sect[0] = (uint8_t)(n >> 8);
	r->sect[1] = (uint8_t)n;
}

static uint8_t big[BUFN];

/* Decodes `r` and checks the result is `want`: an error code, or 1 for "the whole frame". */
static void expect(const struct raw *r, int want)
{
	struct cfl_frame f;
	size_t n = raw_emit(big, sizeof(big), r);
	int rc = cfl_frame_decode(big, n, MAX, &f);

	if (want == 1)
		assert_int_equal(rc, (int)n);
	else
		assert_int_equal(rc, want);
}

/* A header-carrying frame with one good header, to mutate. */
static struct raw request(void)
{
	struct raw r = raw_of(CFL_FRAME_T_REQUEST);

	sect_count(&r, 1);
	sect_add(&r, "k", 1, "v", 1);
	return r;
}

static void test_reject_fixed_header(void **state)
{
	struct raw r;
	size_t frame_len;

	(void)state;
	expect(&(struct raw){0}, CFL_EPROTO); /* all zero: bad magic */
	r = request();
	expect(&r, 1);
	r.magic0 = 'X';
	expect(&r, CFL_EPROTO);
	r = request();
	expect(&r, 1);
	raw_emit(big, sizeof(big), &r);
	big[1] = 'G';
	assert_int_equal(cfl_frame_peek(big, CFL_FRAME_HEAD_LEN, MAX, &frame_len), CFL_EPROTO);
	r = request();
	r.version = 2;
	expect(&r, CFL_EPROTO);
	r.version = 0;
	expect(&r, CFL_EPROTO);
	r = request();
	r.type = 0;
	expect(&r, CFL_EPROTO);
	r.type = 10;
	expect(&r, CFL_EPROTO);
	r.type = 255;
	expect(&r, CFL_EPROTO);
	r = request();
	r.flags = 1 << 2; /* unknown bit */
	expect(&r, CFL_EPROTO);
	r.flags = 0x8000;
	expect(&r, CFL_EPROTO);
	r.flags = CFL_FRAME_F_ERROR; /* known bit, wrong type */
	expect(&r, CFL_EPROTO);
	r = request();
	r.reserved = 1;
	expect(&r, CFL_EPROTO);
	r = request();
	r.ref = 9; /* REQUEST has no ref */
	expect(&r, CFL_EPROTO);
	/* only the fixed header is needed to see an error: peek agrees */
	r = request();
	r.version = 2;
	raw_emit(big, sizeof(big), &r);
	assert_int_equal(cfl_frame_peek(big, CFL_FRAME_HEAD_LEN, MAX, &frame_len), CFL_EPROTO);
}

static void test_reject_header_section(void **state)
{
	char key65[65], key64[64];
	static uint8_t v8193[8193];
	struct raw r;
	int i;

	(void)state;
	memset(key65, 'k', sizeof(key65));
	memset(key64, 'k', sizeof(key64));
	memset(v8193, 'v', sizeof(v8193));

	/* the section length must match the entries exactly */
	r = request();
	r.hlen -= 1;
	expect(&r, CFL_EPROTO);
	r = request();
	r.hlen += 1; /* one stray byte after the last entry */
	expect(&r, CFL_EPROTO);
	r = request();
	sect_count(&r, 2); /* counts more entries than there are */
	expect(&r, CFL_EPROTO);
	r = request();
	r.payload = (long)r.hlen - 1; /* section longer than the payload */
	expect(&r, CFL_EPROTO);
	r = raw_of(CFL_FRAME_T_REQUEST);
	expect(&r, CFL_EPROTO); /* no section at all: REQUEST needs at least the count */
	sect_count(&r, 0);
	expect(&r, 1);

	/* keys */
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 1);
	sect_add(&r, key64, 64, "v", 1);
	expect(&r, 1);
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 1);
	sect_add(&r, key65, 65, "v", 1);
	expect(&r, CFL_EPROTO);
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 1);
	sect_add(&r, "", 0, "v", 1);
	expect(&r, CFL_EPROTO);
	for (i = 0; i < 5; i++) {
		static const char *bad[] = {"Key", "a b", "a/b", "a:b", "\xc3\xa9"};

		r = raw_of(CFL_FRAME_T_REQUEST);
		sect_count(&r, 1);
		sect_add(&r, bad[i], strlen(bad[i]), "v", 1);
		expect(&r, CFL_EPROTO);
	}
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 1);
	sect_add(&r, "a-z.0_9", 7, "v", 1);
	expect(&r, 1);

	/* values */
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 1);
	sect_add(&r, "k", 1, v8193, 8192);
	expect(&r, 1);
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 1);
	sect_add(&r, "k", 1, v8193, 8193);
	expect(&r, CFL_EPROTO);
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 1);
	sect_add(&r, "k", 1, "a\0b", 3);
	expect(&r, CFL_EPROTO);

	/* duplicates and counts */
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 3);
	sect_add(&r, "a", 1, "1", 1);
	sect_add(&r, "b", 1, "2", 1);
	sect_add(&r, "a", 1, "3", 1);
	expect(&r, CFL_EPROTO);
	r = raw_of(CFL_FRAME_T_REQUEST);
	sect_count(&r, 64);
	for (i = 0; i < 64; i++) {
		char k[3] = {(char)('a' + i / 26), (char)('a' + i % 26), 0};

		sect_add(&r, k, 2, "", 0);
	}
	expect(&r, 1);
	sect_count(&r, 65);
	sect_add(&r, "zz", 2, "", 0);
	expect(&r, CFL_EPROTO);

	/* no section outside REQUEST / REPLY / ONEWAY, not even an empty count */
	for (i = CFL_FRAME_T_CHUNK; i <= CFL_FRAME_T_CANCEL; i++) {
		r = raw_of((uint8_t)i);
		r.ref = i == CFL_FRAME_T_CHUNK || i == CFL_FRAME_T_WINDOW ||
		        i == CFL_FRAME_T_CANCEL;
		if (i == CFL_FRAME_T_WINDOW) {
			r.body = credit;
			r.body_len = sizeof(credit);
		}
		expect(&r, 1);
		sect_count(&r, 0);
		expect(&r, CFL_EPROTO);
		sect_count(&r, 1);
		sect_add(&r, "k", 1, "v", 1);
		expect(&r, CFL_EPROTO);
	}
}

static void test_reject_body(void **state)
{
	static const char *bad_utf8[] = {
	        "\xff",     "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",         "\xf4\x90\x80\x80",
	        "\xe2\x82", "\x80",     "a\xc3(",       "\xf8\x88\x80\x80\x80", "\xc1\xbf",
	};
	struct raw r;
	size_t i;

	(void)state;
	r = raw_of(CFL_FRAME_T_WINDOW);
	r.ref = 1;
	r.body = credit;
	r.body_len = 8;
	expect(&r, 1);
	r.body_len = 7;
	expect(&r, CFL_EPROTO);
	r.body = "\0\0\0\0\0\0\0\0\0";
	r.body_len = 8; /* a grant of nothing */
	expect(&r, CFL_EPROTO);
	r.body_len = 9;
	expect(&r, CFL_EPROTO);

	r = raw_of(CFL_FRAME_T_CANCEL);
	r.ref = 1;
	expect(&r, 1);
	r.body = "x";
	r.body_len = 1;
	expect(&r, CFL_EPROTO);

	r = raw_of(CFL_FRAME_T_PING);
	r.body = "123456789";
	r.body_len = 9;
	expect(&r, CFL_EPROTO);
	r.body_len = 0;
	expect(&r, 1);

	r = raw_of(CFL_FRAME_T_CHUNK);
	r.ref = 1;
	r.flags = CFL_FRAME_F_MORE; /* an empty chunk that promises more */
	expect(&r, CFL_EPROTO);
	r.flags = 0; /* an empty last chunk is fine */
	expect(&r, 1);

	r = raw_of(CFL_FRAME_T_REPLY);
	r.ref = 1;
	r.flags = CFL_FRAME_F_ERROR;
	sect_count(&r, 1);
	sect_add(&r, "reason", 6, "x", 1);
	expect(&r, CFL_EPROTO); /* ERROR without a status */

	r = raw_of(CFL_FRAME_T_GOAWAY);
	r.body = "\xe2\x98\x83 ok";
	r.body_len = 6;
	expect(&r, 1);
	for (i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		r.body = bad_utf8[i];
		r.body_len = strlen(bad_utf8[i]);
		expect(&r, CFL_EPROTO);
	}
	r.body = "a\0b";
	r.body_len = 3;
	expect(&r, CFL_EPROTO);
}

static void test_too_big_from_header_alone(void **state)
{
	struct raw r = raw_of(CFL_FRAME_T_ONEWAY);
	struct cfl_frame f;
	size_t frame_len = 0;

	(void)state;
	sect_count(&r, 0);
	r.payload = CFL_FRAME_MAX_PAYLOAD_PRELOGIN + 1;
	raw_emit(big, sizeof(big), &r);
	/* only the 32 header bytes are supplied: the verdict comes before any body */
	assert_int_equal(
	        cfl_frame_peek(big, CFL_FRAME_HEAD_LEN, CFL_FRAME_MAX_PAYLOAD_PRELOGIN, &frame_len),
	        CFL_ETOOBIG);
	assert_int_equal(
	        cfl_frame_decode(big, CFL_FRAME_HEAD_LEN, CFL_FRAME_MAX_PAYLOAD_PRELOGIN, &f),
	        CFL_ETOOBIG);
	/* exactly at the limit is fine (and incomplete here) */
	r.payload = CFL_FRAME_MAX_PAYLOAD_PRELOGIN;
	raw_emit(big, sizeof(big), &r);
	assert_int_equal(
	        cfl_frame_peek(big, CFL_FRAME_HEAD_LEN, CFL_FRAME_MAX_PAYLOAD_PRELOGIN, &frame_len),
	        0);
	assert_int_equal(frame_len, CFL_FRAME_HEAD_LEN + CFL_FRAME_MAX_PAYLOAD_PRELOGIN);
	assert_int_equal(
	        cfl_frame_decode(big, CFL_FRAME_HEAD_LEN, CFL_FRAME_MAX_PAYLOAD_PRELOGIN, &f), 0);
	/* whatever the caller allows, a frame must fit the int decode returns */
	r.payload = 0xffffffff;
	raw_emit(big, sizeof(big), &r);
	assert_int_equal(cfl_frame_peek(big, CFL_FRAME_HEAD_LEN, SIZE_MAX, &frame_len),
	                 CFL_ETOOBIG);
	assert_int_equal(cfl_frame_peek(big, CFL_FRAME_HEAD_LEN, SIZE_MAX, NULL), CFL_EINVAL);
	assert_int_equal(cfl_frame_decode(big, CFL_FRAME_HEAD_LEN, SIZE_MAX, NULL), CFL_EINVAL);
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
	        cmocka_unit_test(test_reject_fixed_header),
	        cmocka_unit_test(test_reject_header_section),
	        cmocka_unit_test(test_reject_body),
	        cmocka_unit_test(test_too_big_from_header_alone),
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
